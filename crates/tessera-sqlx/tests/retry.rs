//! The retries of conflicting store calls (`src/tx.rs`), on real databases:
//!
//! * a real deadlock (PostgreSQL, MySQL/MariaDB) between a signing-key
//!   rotation and a second connection that locks the same two rows the
//!   other way round: the store's transaction is the one the server aborts,
//!   and the store runs it again and succeeds;
//! * a real Galera certification failure: a rotation on one node holds its
//!   transaction open while another node commits a write to the same row;
//!   the rotation's commit is refused with 1213 and the whole rotation runs
//!   again (its decision is taken twice, the second time on the new row);
//! * a lost answer (every backend): the store's attempt commits, then the
//!   call is told it met a conflict (fault injection in `testing::faults`).
//!   The retry must find its own result: a create makes one session, a
//!   promotion reports success once and promotes once, a rotation rotates
//!   once;
//! * conflicts that never end: the call gives up after its attempts with a
//!   retryable General error that says so.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sqlx::{Connection, Executor};
use tessera::{GeneralKind, NewSession, Promotion, SigningKeys, Store, UserId};
use tessera_sqlx::testing::faults::losing_answers;
use tessera_sqlx::testing::{available_backends, discard, fresh_urls, Backend};
use tessera_sqlx::{conflict_retries, connect, SqlStore};
use tessera_testkit::store_suite::{hash, key};

const CURRENT: &str = "access_token_signing_key";
const PREVIOUS: &str = "access_token_signing_key_previous";

/// Runs `body` on each available backend with the fresh database's URLs
/// (one per Galera node, else one).
async fn on_backends<F, Fut>(test: &str, which: &[Backend], body: F)
where
    F: Fn(Backend, Vec<String>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for backend in available_backends() {
        if !which.contains(&backend) {
            continue;
        }
        eprintln!("retry {test}: backend {backend}");
        let urls = fresh_urls(backend).await;
        body(backend, urls.clone()).await;
        discard(backend, &urls[0]).await;
    }
}

const ALL: &[Backend] = &[
    Backend::Sqlite,
    Backend::Postgres,
    Backend::MySql,
    Backend::Galera,
];

fn session<'a>(handle: &'a str, user: &'a UserId, h2: &'a str) -> NewSession<'a> {
    NewSession {
        session_handle: handle,
        user_id: user,
        refresh_token_hash_2: h2,
        session_info: "{}",
        jwt_payload: "{}",
        created_at_ms: 1_000,
        expires_at_ms: 10_000_000,
        user_agent: None,
        client_address: None,
        device_label: None,
    }
}

/// A rotation decision that always rotates to the key of `byte`, counting
/// how often it is asked.
fn rotate_to(byte: u8, asked: Arc<AtomicUsize>) -> impl Fn(&SigningKeys) -> Option<SigningKeys> {
    move |stored: &SigningKeys| {
        asked.fetch_add(1, Ordering::SeqCst);
        if stored.current.value == vec![byte; 32] {
            return None;
        }
        Some(SigningKeys {
            current: key(byte, 5_000),
            previous: Some(stored.current.clone()),
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_whose_answer_was_lost_makes_one_session() {
    on_backends("lost_create", ALL, |_, urls| async move {
        let store = connect(&urls[0]).await.unwrap();
        let user = UserId::from("u");
        let h2 = hash('a');
        let before = conflict_retries();
        losing_answers(1, store.insert_session(&session("h1", &user, &h2)))
            .await
            .expect("the retry finds the row its first attempt committed");
        assert!(conflict_retries() > before);
        assert_eq!(
            store.session_handles_for_user(&user).await.unwrap(),
            vec!["h1".to_owned()]
        );
        // A row of another session under the same handle is not ours: the
        // retry still refuses to overwrite it.
        let other = hash('b');
        let e = losing_answers(1, store.insert_session(&session("h1", &user, &other)))
            .await
            .expect_err("a different row with the same handle");
        assert_eq!(e.kind(), GeneralKind::Internal, "{e}");
        let row = store.load_session("h1").await.unwrap().unwrap();
        assert_eq!(row.refresh_token_hash_2, h2);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promotion_whose_answer_was_lost_succeeds_once() {
    on_backends("lost_promotion", ALL, |_, urls| async move {
        let store = connect(&urls[0]).await.unwrap();
        let user = UserId::from("u");
        let (old, new) = (hash('a'), hash('b'));
        store
            .insert_session(&session("h1", &user, &old))
            .await
            .unwrap();
        let promotion = Promotion {
            session_handle: "h1",
            expected_hash_2: &old,
            new_hash_2: &new,
            new_expires_at_ms: 20_000_000,
            new_hash_1: None,
            not_superseded_after_ms: i64::MAX,
        };
        let promoted = losing_answers(1, store.compare_and_set_refresh_hash(&promotion, 2_000))
            .await
            .unwrap();
        assert!(promoted, "the retry sees its own promotion as success");
        let row = store.load_session("h1").await.unwrap().unwrap();
        assert_eq!(
            (row.refresh_token_hash_2.as_str(), row.expires_at_ms),
            (new.as_str(), 20_000_000)
        );
        // The same promotion made again outside a retry is a lost race, not
        // a success: the guard only speaks for a call's own earlier attempt.
        assert!(!store
            .compare_and_set_refresh_hash(&promotion, 2_000)
            .await
            .unwrap());
        // A retried promotion whose expected hash is gone and whose result
        // is not there (someone else promoted another child) fails.
        let third = hash('c');
        let other = Promotion {
            session_handle: "h1",
            expected_hash_2: &old,
            new_hash_2: &third,
            new_expires_at_ms: 30_000_000,
            new_hash_1: None,
            not_superseded_after_ms: i64::MAX,
        };
        assert!(
            !losing_answers(1, store.compare_and_set_refresh_hash(&other, 2_000))
                .await
                .unwrap()
        );
        let row = store.load_session("h1").await.unwrap().unwrap();
        assert_eq!(row.refresh_token_hash_2, new);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_whose_answer_was_lost_rotates_once() {
    on_backends("lost_rotation", ALL, |_, urls| async move {
        let store = connect(&urls[0]).await.unwrap();
        let asked = Arc::new(AtomicUsize::new(0));
        let decide = rotate_to(9, asked.clone());
        let keys = losing_answers(1, store.signing_keys(&key(1, 1_000), &decide))
            .await
            .unwrap();
        assert_eq!(keys.current, key(9, 5_000));
        assert_eq!(keys.previous, Some(key(1, 1_000)));
        assert_eq!(asked.load(Ordering::SeqCst), 2, "decided twice");
        let stored = store.signing_keys(&key(2, 0), &|_| None).await.unwrap();
        assert_eq!(
            stored, keys,
            "rotated once: the previous key is the first one"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicts_that_never_end_give_up_with_a_retryable_error() {
    on_backends("endless_conflicts", ALL, |_, urls| async move {
        let store = connect(&urls[0]).await.unwrap();
        let user = UserId::from("u");
        let h2 = hash('a');
        let started = std::time::Instant::now();
        let e = losing_answers(1_000, store.insert_session(&session("h1", &user, &h2)))
            .await
            .expect_err("every attempt meets a conflict");
        assert_eq!(e.kind(), GeneralKind::Unavailable, "{e}");
        assert!(e.kind().is_retryable());
        assert!(e.to_string().contains("10 attempts"), "{e}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "bounded backoff: {:?}",
            started.elapsed()
        );
    })
    .await;
}

/// Runs one statement on a raw connection.
async fn exec<C>(conn: &mut C, sql: &str)
where
    for<'c> &'c mut C: Executor<'c>,
{
    conn.execute(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// Creates both signing-key rows (a first rotation), so that both can be
/// locked.
async fn both_key_rows(store: &SqlStore) {
    let asked = Arc::new(AtomicUsize::new(0));
    store
        .signing_keys(&key(1, 1_000), &rotate_to(2, asked))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadlocked_rotation_runs_again() {
    on_backends(
        "deadlock",
        &[Backend::Postgres, Backend::MySql],
        |backend, urls| async move {
            let store = Arc::new(connect(&urls[0]).await.unwrap());
            both_key_rows(&store).await;
            let before = conflict_retries();
            let asked = Arc::new(AtomicUsize::new(0));
            // The other connection takes the previous row first, then, while
            // the rotation holds the current row and waits for the previous
            // one, asks for the current row: a cycle. The server aborts the
            // rotation (PostgreSQL: its deadlock check runs first, the other
            // connection's is set to 10 s; InnoDB: it rolls back the
            // transaction that changed fewer rows, and the other one inserted
            // some).
            type Rotation = tokio::task::JoinHandle<tessera::StoreResult<SigningKeys>>;
            let run = |rotation: Rotation, asked: Arc<AtomicUsize>| async move {
                let keys: SigningKeys = tokio::time::timeout(Duration::from_secs(20), rotation)
                    .await
                    .expect("the rotation finishes")
                    .unwrap()
                    .expect("the deadlocked rotation was retried and succeeded");
                assert_eq!(keys.current, key(3, 5_000));
                assert!(asked.load(Ordering::SeqCst) >= 1);
            };
            let spawn_rotation = |store: Arc<SqlStore>, asked: Arc<AtomicUsize>| {
                tokio::spawn(async move {
                    store
                        .signing_keys(&key(1, 1_000), &rotate_to(3, asked))
                        .await
                })
            };
            let lock = |name: &str| {
                format!("SELECT key_name FROM tessera_keys WHERE key_name = '{name}' FOR UPDATE")
            };
            match backend {
                Backend::Postgres => {
                    let mut other = sqlx::PgConnection::connect(&urls[0]).await.unwrap();
                    exec(&mut other, "BEGIN").await;
                    exec(&mut other, "SET LOCAL deadlock_timeout = '10s'").await;
                    exec(&mut other, &lock(PREVIOUS)).await;
                    let rotation = spawn_rotation(store.clone(), asked.clone());
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    exec(&mut other, &lock(CURRENT)).await;
                    exec(&mut other, "COMMIT").await;
                    run(rotation, asked).await;
                }
                _ => {
                    let mut other = sqlx::MySqlConnection::connect(&urls[0]).await.unwrap();
                    exec(&mut other, "BEGIN").await;
                    for i in 0..20 {
                        exec(
                            &mut other,
                            &format!(
                                "INSERT INTO tessera_sessions (session_handle, user_id, \
                                 refresh_token_hash_2, session_info, jwt_payload, created_at, \
                                 expires_at) VALUES ('weight{i}', '\"w\"', \
                                 '{}', '{{}}', '{{}}', 1, 2)",
                                hash('w')
                            ),
                        )
                        .await;
                    }
                    exec(&mut other, &lock(PREVIOUS)).await;
                    let rotation = spawn_rotation(store.clone(), asked.clone());
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    exec(&mut other, &lock(CURRENT)).await;
                    exec(&mut other, "ROLLBACK").await;
                    run(rotation, asked).await;
                }
            }
            assert!(conflict_retries() > before, "the deadlock was retried");
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_refused_at_commit_by_certification_runs_again() {
    on_backends("certification", &[Backend::Galera], |_, urls| async move {
        assert!(urls.len() >= 2, "a Galera test needs two nodes");
        let store = Arc::new(connect(&urls[0]).await.unwrap());
        both_key_rows(&store).await;
        let before = conflict_retries();
        let asked = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let rx = std::sync::Mutex::new(rx);
        let decide = {
            let asked = asked.clone();
            move |stored: &SigningKeys| {
                // The first time, hold the transaction open (the current row
                // locked on this node only) until the other node committed.
                if asked.fetch_add(1, Ordering::SeqCst) == 0 {
                    // block_in_place: the worker's other duties (the timer
                    // and I/O drivers) move to another thread meanwhile.
                    let _ = tokio::task::block_in_place(|| {
                        rx.lock().unwrap().recv_timeout(Duration::from_secs(10))
                    });
                }
                Some(SigningKeys {
                    current: key(stored.current.value[0] + 10, 6_000),
                    previous: Some(stored.current.clone()),
                })
            }
        };
        let rotation = {
            let store = store.clone();
            tokio::spawn(async move { store.signing_keys(&key(1, 1_000), &decide).await })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut other = sqlx::MySqlConnection::connect(&urls[1]).await.unwrap();
        exec(
            &mut other,
            &format!(
                "UPDATE tessera_keys SET key_value = '{}' WHERE key_name = '{CURRENT}'",
                tessera_sqlx_test_key(40)
            ),
        )
        .await;
        let sent = tx.send(());
        if sent.is_err() {
            panic!("the rotation ended early: {:?}", rotation.await);
        }
        let keys = tokio::time::timeout(Duration::from_secs(20), rotation)
            .await
            .expect("the rotation finishes")
            .unwrap()
            .expect("the refused rotation was retried and succeeded");
        assert_eq!(
            asked.load(Ordering::SeqCst),
            2,
            "decided again after the refusal"
        );
        assert_eq!(
            keys.current.value,
            vec![50; 32],
            "decided on the other node's key"
        );
        assert_eq!(keys.previous.map(|k| k.value), Some(vec![40; 32]));
        assert!(conflict_retries() > before);
    })
    .await;
}

/// A key of 32 bytes `byte` as `tessera_keys.key_value` holds it.
fn tessera_sqlx_test_key(byte: u8) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode([byte; 32])
}
