//! The in-memory store passes the store conformance suite.

use std::sync::Arc;

use tessera_testkit::{store_suite, MemoryStore};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_store_passes_the_store_suite() {
    store_suite::run("memory", || async {
        let store = MemoryStore::new();
        let other = store.clone();
        (
            Arc::new(store) as Arc<dyn tessera::Store>,
            Arc::new(other) as Arc<dyn tessera::Store>,
        )
    })
    .await;
}
