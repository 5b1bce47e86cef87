//! Store-level tests, run against every available backend: SQLite always,
//! PostgreSQL and MySQL/MariaDB when `TESSERA_TEST_POSTGRES_URL` /
//! `TESSERA_TEST_MYSQL_URL` are set. Each test prints the backends it ran on
//! (visible with `--nocapture`).

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use tessera::{NewSession, SigningKeys, Store, UserId};
use tessera_sqlx::testing::{available_backends, discard, fresh_url, fresh_urls, Backend};
use tessera_sqlx::{connect, connect_with, SqlStore, StoreOptions};
use tessera_testkit::store_suite::{hash, insert, key, rotate_if_old};

/// Runs `body` once per available backend, each time on a fresh database,
/// and reports which backends ran.
async fn on_every_backend<F, Fut>(test: &str, body: F)
where
    F: Fn(Backend, String) -> Fut,
    Fut: Future<Output = ()>,
{
    let backends = available_backends();
    for &backend in &backends {
        let url = fresh_url(backend).await;
        body(backend, url.clone()).await;
        discard(backend, &url).await;
    }
    let names: Vec<String> = backends.iter().map(|b| b.to_string()).collect();
    eprintln!(
        "[tessera-sqlx] {test}: ran on {} backend(s): {}",
        backends.len(),
        names.join(", ")
    );
}

/// Runs one SQL statement with no parameters directly on the store's pool.
async fn raw(store: &SqlStore, sql: &str) {
    use sqlx::Executor;
    match store {
        SqlStore::Sqlite(s) => drop(s.pool().execute(sql).await.unwrap()),
        SqlStore::Postgres(s) => drop(s.pool().execute(sql).await.unwrap()),
        SqlStore::MySql(s) => drop(s.pool().execute(sql).await.unwrap()),
        _ => unreachable!(),
    }
}

/// The store conformance suite of `tessera-testkit` (the contract of
/// `tessera::Store`, which the in-memory store passes too), on each backend:
/// two pools on one fresh database per case.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_store_suite_passes_on_every_backend() {
    for backend in available_backends() {
        let label = backend.to_string();
        let made = Arc::new(std::sync::Mutex::new(Vec::new()));
        tessera_testkit::store_suite::run(&label, || {
            let made = Arc::clone(&made);
            async move {
                // On Galera the two pools are on two nodes.
                let urls = fresh_urls(backend).await;
                made.lock().unwrap().push(urls[0].clone());
                let first = connect(&urls[0]).await.unwrap();
                let second = connect(&urls[1 % urls.len()]).await.unwrap();
                (
                    Arc::new(first) as Arc<dyn Store>,
                    Arc::new(second) as Arc<dyn Store>,
                )
            }
        })
        .await;
        let urls = std::mem::take(&mut *made.lock().unwrap());
        for url in urls {
            discard(backend, &url).await;
        }
    }
}

/// The refresh-token key's row is found by its exact name (the store suite
/// checks that concurrent callers agree on one key): a row whose name
/// differs only in case is another row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_token_key_is_found_by_its_exact_name() {
    on_every_backend("refresh_token_key", |backend, url| async move {
        let store = connect(&url).await.unwrap();
        raw(
            &store,
            &format!(
                "INSERT INTO tessera_keys (key_name, key_value, created_at) \
                 VALUES ('Refresh_Token_Key', '{}', 77)",
                base64::engine::general_purpose::STANDARD.encode(key(77, 77).value)
            ),
        )
        .await;
        let got = store.refresh_token_key(&key(1, 1)).await.unwrap();
        assert_eq!(
            got,
            key(1, 1),
            "{backend}: the row of another name was used"
        );
        assert_eq!(
            store.refresh_token_key(&key(2, 2)).await.unwrap(),
            key(1, 1)
        );
        store.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_decision_writes_nothing_and_leaves_the_pool_usable() {
    on_every_backend("signing_keys_panic", |backend, url| async move {
        // One connection: if it went back to the pool mid-transaction, the
        // next call would find it there.
        let store = Arc::new(
            connect_with(&url, StoreOptions::new().max_connections(1))
                .await
                .unwrap(),
        );
        let original = key(1, 1_000);
        store
            .signing_keys(&original, &|_: &SigningKeys| None)
            .await
            .unwrap();

        let task = {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let boom = |_: &SigningKeys| -> Option<SigningKeys> { panic!("decision failed") };
                store.signing_keys(&key(2, 0), &boom).await
            })
        };
        assert!(task.await.unwrap_err().is_panic());

        let rotations = Arc::new(AtomicUsize::new(0));
        let decide = rotate_if_old(Arc::clone(&rotations), key(3, 7_000));
        let keys = tokio::time::timeout(
            Duration::from_secs(30),
            store.signing_keys(&key(4, 0), &decide),
        )
        .await
        .expect("signing_keys hung after a panic")
        .unwrap();
        assert_eq!(keys.previous, Some(original), "{backend}");
        assert_eq!(rotations.load(Ordering::SeqCst), 1);
        insert(&*store, "h", &UserId::from("u"), &hash('a'), 0, 10).await;
        store.close().await;
    })
    .await;
}

/// A lock that blocks `signing_keys`, held on a connection of another pool.
enum HeldLock {
    Sqlite(sqlx::pool::PoolConnection<sqlx::Sqlite>),
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
    MySql(sqlx::Transaction<'static, sqlx::MySql>),
}

async fn hold_signing_key_lock(store: &SqlStore) -> HeldLock {
    let lock = "SELECT key_value FROM tessera_keys \
                WHERE key_name = 'access_token_signing_key' FOR UPDATE";
    match store {
        SqlStore::Sqlite(s) => {
            // The database's write lock.
            let mut conn = s.pool().acquire().await.unwrap();
            sqlx::query("BEGIN IMMEDIATE")
                .execute(&mut *conn)
                .await
                .unwrap();
            HeldLock::Sqlite(conn)
        }
        SqlStore::Postgres(s) => {
            let mut tx = s.pool().begin().await.unwrap();
            sqlx::query(lock).execute(&mut *tx).await.unwrap();
            HeldLock::Postgres(tx)
        }
        SqlStore::MySql(s) => {
            let mut tx = s.pool().begin().await.unwrap();
            sqlx::query(lock).execute(&mut *tx).await.unwrap();
            HeldLock::MySql(tx)
        }
        _ => unreachable!(),
    }
}

async fn release(held: HeldLock) {
    match held {
        HeldLock::Sqlite(mut conn) => {
            sqlx::query("ROLLBACK").execute(&mut *conn).await.unwrap();
            // sqlx did not see this transaction; do not pool the connection.
            conn.close().await.unwrap();
        }
        HeldLock::Postgres(tx) => tx.rollback().await.unwrap(),
        HeldLock::MySql(tx) => tx.rollback().await.unwrap(),
    }
}

/// Holds the signing-key lock from another pool, starts a rotation that has
/// to wait for it, cancels that rotation, then releases the lock. Nothing
/// may be written, and the cancelled call's connection must not come back to
/// the pool still inside a transaction (on SQLite the worker thread finishes
/// `BEGIN IMMEDIATE` after the future is gone).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_rotation_writes_nothing_and_holds_no_lock() {
    on_every_backend("signing_keys_cancelled", |backend, url| async move {
        let store = Arc::new(
            connect_with(&url, StoreOptions::new().max_connections(1))
                .await
                .unwrap(),
        );
        let original = key(1, 1_000);
        store
            .signing_keys(&original, &|_: &SigningKeys| None)
            .await
            .unwrap();
        let holder = connect(&url).await.unwrap();

        // Take the lock the rotation needs and keep it.
        let held = hold_signing_key_lock(&holder).await;
        let rotations = Arc::new(AtomicUsize::new(0));
        let waiting = {
            let store = Arc::clone(&store);
            let decide = rotate_if_old(Arc::clone(&rotations), key(2, 7_000));
            tokio::spawn(async move { store.signing_keys(&key(3, 0), &decide).await })
        };
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(!waiting.is_finished(), "{backend}: the lock did not block");
        waiting.abort();
        assert!(waiting.await.unwrap_err().is_cancelled());
        release(held).await;

        // The single pooled connection must be usable and hold no lock:
        // another pool can write at once, and this pool can rotate.
        let fast = Duration::from_secs(5);
        tokio::time::timeout(
            fast,
            holder.insert_session(&NewSession {
                session_handle: "from-holder",
                user_id: &UserId::from("u"),
                refresh_token_hash_2: &hash('a'),
                session_info: "{}",
                jwt_payload: "{}",
                created_at_ms: 0,
                expires_at_ms: 10,
                user_agent: None,
                client_address: None,
                device_label: None,
            }),
        )
        .await
        .expect("a lock was left behind")
        .unwrap();
        let keys = tokio::time::timeout(
            Duration::from_secs(30),
            store.signing_keys(&key(4, 0), &|_: &SigningKeys| None),
        )
        .await
        .expect("signing_keys hung after a cancellation")
        .unwrap();
        assert_eq!(
            keys.current, original,
            "{backend}: cancelled rotation was written"
        );
        assert_eq!(keys.previous, None);
        assert_eq!(rotations.load(Ordering::SeqCst), 0);
        store.close().await;
        holder.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_rows_are_errors_not_panics() {
    on_every_backend("corrupt_rows", |backend, url| async move {
        let store = connect(&url).await.unwrap();
        raw(
            &store,
            "INSERT INTO tessera_sessions (session_handle, user_id, refresh_token_hash_2, \
             session_info, jwt_payload, created_at, expires_at) VALUES ('bad', '[1]', \
             'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', '{}', '{}', 0, 10)",
        )
        .await;
        assert!(store.load_session("bad").await.is_err(), "{backend}");
        // Listings do not need the user id and still work.
        assert!(store.session_is_live("bad", 0).await.unwrap());
        raw(
            &store,
            "INSERT INTO tessera_keys (key_name, key_value, created_at) \
             VALUES ('refresh_token_key', '%%% not base64', 0)",
        )
        .await;
        assert!(store.refresh_token_key(&key(1, 1)).await.is_err());
        store.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_are_idempotent_and_reopening_keeps_data() {
    on_every_backend("migrations", |_backend, url| async move {
        let store = connect(&url).await.unwrap();
        insert(&store, "h", &UserId::from("u"), &hash('a'), 0, 10).await;
        store.migrate().await.unwrap();
        store.close().await;
        let reopened = connect(&url).await.unwrap();
        assert!(reopened.load_session("h").await.unwrap().is_some());
        reopened.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn urls_are_parsed_and_unknown_schemes_refused() {
    let err = connect("oracle://scott@db/orcl").await.unwrap_err();
    let message = err.to_string();
    assert!(message.contains("unsupported"), "{message}");
    assert!(message.contains("oracle"), "{message}");
    assert!(!message.contains("scott"), "{message}");
    assert!(connect("no scheme at all").await.is_err());

    // An in-memory database shared by every use of the store, even under
    // concurrency.
    let store = Arc::new(connect("sqlite::memory:").await.unwrap());
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            insert(
                &*store,
                &format!("m{i}"),
                &UserId::from(1),
                &hash('a'),
                i,
                100,
            )
            .await;
            store
                .signing_keys(&key(1, 1), &|_: &SigningKeys| None)
                .await
                .unwrap()
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap().current, key(1, 1));
    }
    assert_eq!(
        store
            .session_handles_for_user(&UserId::from(1))
            .await
            .unwrap()
            .len(),
        8
    );

    // mariadb:// is the MySQL driver.
    let mut ran = vec!["sqlite::memory:"];
    if available_backends().contains(&Backend::MySql) {
        let url = fresh_url(Backend::MySql).await;
        let maria = url.replacen("mysql://", "mariadb://", 1);
        let store = connect(&maria).await.unwrap();
        assert!(matches!(store, SqlStore::MySql(_)));
        store.close().await;
        discard(Backend::MySql, &url).await;
        ran.push("mariadb://");
    }
    if available_backends().contains(&Backend::Postgres) {
        let url = fresh_url(Backend::Postgres).await;
        let store = connect(&url.replacen("postgres://", "postgresql://", 1))
            .await
            .unwrap();
        assert!(matches!(store, SqlStore::Postgres(_)));
        store.close().await;
        discard(Backend::Postgres, &url).await;
        ran.push("postgresql://");
    }
    eprintln!("[tessera-sqlx] urls: checked {}", ran.join(", "));
}

/// The stored `key_value` text of the current signing key.
async fn current_key_text(store: &SqlStore) -> String {
    let sql = "SELECT key_value FROM tessera_keys WHERE key_name = 'access_token_signing_key'";
    match store {
        SqlStore::Sqlite(s) => sqlx::query_scalar(sql).fetch_one(s.pool()).await.unwrap(),
        SqlStore::Postgres(s) => sqlx::query_scalar(sql).fetch_one(s.pool()).await.unwrap(),
        // A `utf8mb4_bin` column reads as bytes.
        SqlStore::MySql(s) => {
            let b: Vec<u8> = sqlx::query_scalar(sql).fetch_one(s.pool()).await.unwrap();
            String::from_utf8(b).unwrap()
        }
        _ => unreachable!(),
    }
}

/// Asymmetric signing keys (docs/PROTOCOL.md §5.3) in the real stores: the
/// key pair is written once as `tessera:v1:<alg>:<PKCS#8>` text and every
/// instance on the database signs and verifies with it; a rotation by one
/// instance reaches the other through the stored rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_pairs_are_stored_as_text_and_shared_by_every_instance() {
    use http::header::{HeaderMap, HeaderValue, AUTHORIZATION};
    use tessera::{AccessTokenAlgorithm, Config, CurrentSdk, ManualClock, SessionManager};
    on_every_backend("key_pairs_shared", |backend, url| async move {
        for (alg, name) in [
            (AccessTokenAlgorithm::EdDsa, "eddsa"),
            (AccessTokenAlgorithm::Es256, "es256"),
            (AccessTokenAlgorithm::Rs256, "rs256"),
        ] {
            let clock = Arc::new(ManualClock::starting_now());
            let config = || {
                // No change feed: B learns of A's rotation only from a
                // token naming the new key (the unknown-kid reload).
                Config::builder()
                    .with_clock(clock.clone())
                    .with_change_feed(None)
                    .with_current_sdk(Some(CurrentSdk::new("/auth")))
                    .with_access_token_algorithm(alg)
                    .build()
                    .unwrap()
            };
            let a_store = connect(&url).await.unwrap();
            let a = SessionManager::new(config(), a_store.clone())
                .await
                .unwrap();
            let b = SessionManager::new(config(), connect(&url).await.unwrap())
                .await
                .unwrap();
            let text = current_key_text(&a_store).await;
            assert!(
                text.starts_with(&format!("tessera:v1:{name}:")),
                "{backend} {name}: {}",
                &text[..text.len().min(20)]
            );
            let login = |m: SessionManager| async move {
                let mut req = HeaderMap::new();
                req.insert("st-auth-mode", HeaderValue::from_static("header"));
                let mut resp = HeaderMap::new();
                m.create_new_session_for_request(
                    &req,
                    &mut resp,
                    "alice",
                    serde_json::json!({}),
                    serde_json::json!({}),
                )
                .await
                .unwrap();
                resp["st-access-token"].to_str().unwrap().to_owned()
            };
            let verify = |m: SessionManager, t: String| async move {
                let mut h = HeaderMap::new();
                h.insert(
                    AUTHORIZATION,
                    HeaderValue::from_str(&format!("Bearer {t}")).unwrap(),
                );
                m.get_session(&h, &mut HeaderMap::new(), false).await
            };
            // One instance signs, the other verifies, and both publish the
            // same key.
            let t = login(a.clone()).await;
            verify(b.clone(), t.clone()).await.unwrap();
            let (ja, jb) = (a.jwks().await, b.jwks().await);
            assert_eq!(ja.as_ref().map(|j| &j.json), jb.as_ref().map(|j| &j.json));
            // A rotates; B learns the new key from the first token naming it.
            a.rotate_signing_key().await.unwrap();
            assert_ne!(current_key_text(&a_store).await, text, "{backend} {name}");
            let t2 = login(a.clone()).await;
            verify(b.clone(), t2).await.unwrap();
            let jb = b.jwks().await.unwrap();
            assert!(
                jb.json.matches("\"kid\"").count() == 2,
                "{backend} {name}: {}",
                jb.json
            );
            // The private key is not in what a manager shows.
            let pkcs8 = text.rsplit(':').next().unwrap();
            assert!(!format!("{a:?}").contains(&pkcs8[..24]));
            // The database gone while the keys are due for a check: the
            // instance still publishes the keys it holds.
            let before = a.jwks().await.unwrap().json;
            clock.advance(Duration::from_secs(61));
            a_store.close().await;
            let during = a.jwks().await.expect("the cached keys");
            assert_eq!(during.json, before, "{backend} {name}");
        }
    })
    .await;
}

/// A store on `url` whose schema is what the embedded migrations `files`
/// alone make (applied by sqlx from a copy of those files): a database of
/// an earlier release, for the upgrade tests. Its store runs no migrations.
async fn old_schema_store(backend: Backend, url: &str, files: &[&str]) -> SqlStore {
    let dir_name = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
        _ => "mysql",
    };
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(dir_name);
    let old = std::env::temp_dir().join(format!(
        "tessera-upgrade-{}-{dir_name}-{}",
        files.len(),
        std::process::id()
    ));
    std::fs::create_dir_all(&old).unwrap();
    for f in files {
        std::fs::copy(source.join(f), old.join(f)).unwrap();
    }
    let migrator = sqlx::migrate::Migrator::new(old.as_path()).await.unwrap();
    assert_eq!(migrator.iter().count(), files.len());
    let store = connect_with(url, StoreOptions::new().run_migrations(false))
        .await
        .unwrap();
    if backend == Backend::Galera {
        // The Galera test database arrives migrated (see
        // `tessera_sqlx::testing::fresh_url`): back to an empty one, so
        // that the old schema is made here as on the other backends.
        for table in [
            "tessera_sessions",
            "tessera_keys",
            "tessera_changes",
            "_sqlx_migrations",
        ] {
            raw(&store, &format!("DROP TABLE IF EXISTS {table}")).await;
        }
    }
    match &store {
        SqlStore::Sqlite(s) => migrator.run(s.pool()).await.unwrap(),
        SqlStore::Postgres(s) => migrator.run(s.pool()).await.unwrap(),
        SqlStore::MySql(s) => migrator.run(s.pool()).await.unwrap(),
        _ => unreachable!(),
    }
    std::fs::remove_dir_all(&old).unwrap();
    store
}

/// Whether `query` fails on `store` (a column the schema does not have).
async fn fails(store: &SqlStore, query: &str) -> bool {
    match store {
        SqlStore::Sqlite(s) => sqlx::query(query).fetch_all(s.pool()).await.is_err(),
        SqlStore::Postgres(s) => sqlx::query(query).fetch_all(s.pool()).await.is_err(),
        SqlStore::MySql(s) => sqlx::query(query).fetch_all(s.pool()).await.is_err(),
        _ => unreachable!(),
    }
}

/// A database made by the schema before migration 0005 (migrations 0001 and
/// 0004 only, applied by sqlx from a copy of those two files) with a live
/// session in it: the embedded migrations bring it up to date without losing
/// the row, and the session refreshes, promotes (writing the new columns)
/// and refreshes again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_0004_database_upgrades_and_its_sessions_still_refresh() {
    use tessera_testkit::flow::{login, refresh, verify};
    on_every_backend("upgrade from 0004", |backend, url| async move {
        let store = old_schema_store(
            backend,
            &url,
            &["0001_tessera_tables.sql", "0004_change_log.sql"],
        )
        .await;
        // The old schema has no history columns.
        assert!(
            fails(&store, "SELECT committed_hash_1 FROM tessera_sessions").await,
            "{backend}: the 0004 schema already has 0005's columns"
        );
        // A session made on it (creating one touches no new column).
        let config = || {
            tessera::Config::builder()
                .with_change_feed(None)
                .build()
                .unwrap()
        };
        let m = tessera::SessionManager::new(config(), store.clone())
            .await
            .unwrap();
        let mut b = login(&m, "upgraded", serde_json::json!({"p": 1})).await;
        let handle = verify(&m, &mut b).await.unwrap().handle().to_owned();
        store.close().await;

        // Upgrade: connect runs the embedded migrations, 0005 among them.
        let store = connect(&url).await.unwrap();
        let row = store.load_session(&handle).await.unwrap().expect("the row");
        assert_eq!(
            (
                row.committed_hash_1,
                row.previous_hash_2,
                row.superseded_at_ms
            ),
            (None, None, None),
            "{backend}: an upgraded row has no history"
        );
        let m = tessera::SessionManager::new(config(), store.clone())
            .await
            .unwrap();
        assert_eq!(
            m.get_session_info(&handle).await.unwrap(),
            serde_json::json!({"info": true})
        );
        refresh(&m, &mut b).await.unwrap();
        verify(&m, &mut b).await.unwrap();
        let row = store.load_session(&handle).await.unwrap().expect("the row");
        assert!(
            row.superseded_at_ms.is_some() && row.previous_hash_2.is_some(),
            "{backend}: the promotion wrote the history"
        );
        // No grace window configured: the committed token's H1 is not kept.
        assert_eq!(row.committed_hash_1, None);
        refresh(&m, &mut b).await.unwrap();
        verify(&m, &mut b).await.unwrap();
        store.close().await;
    })
    .await;
}

/// A database made by the schema before migration 0006 (migrations 0001 to
/// 0005 only, applied by sqlx from a copy of those files) with a session in
/// it that has been refreshed once: the embedded migrations add the device
/// columns without losing the row or its history. The session still
/// refreshes, its info and last refresh are intact, its device fields are
/// `None`, and a session created afterwards records its device.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_0005_database_upgrades_and_its_sessions_still_refresh() {
    use tessera_testkit::flow::{login, refresh, verify};
    on_every_backend("upgrade from 0005", |backend, url| async move {
        let store = old_schema_store(
            backend,
            &url,
            &[
                "0001_tessera_tables.sql",
                "0004_change_log.sql",
                "0005_session_lifecycle.sql",
            ],
        )
        .await;
        assert!(
            fails(
                &store,
                "SELECT user_agent, client_address, device_label FROM tessera_sessions"
            )
            .await,
            "{backend}: the 0005 schema already has 0006's columns"
        );
        let config = || {
            tessera::Config::builder()
                .with_change_feed(None)
                .build()
                .unwrap()
        };
        // A session made and refreshed on the old schema (one without device
        // information writes only the old columns).
        let m = tessera::SessionManager::new(config(), store.clone())
            .await
            .unwrap();
        let user = UserId::from("upgraded");
        let mut b = login(&m, user.clone(), serde_json::json!({"p": 1})).await;
        let handle = verify(&m, &mut b).await.unwrap().handle().to_owned();
        refresh(&m, &mut b).await.unwrap();
        verify(&m, &mut b).await.unwrap();
        let before = store.load_session(&handle).await.unwrap().expect("the row");
        assert!(before.superseded_at_ms.is_some(), "{backend}: promoted");
        store.close().await;

        // Upgrade: connect runs the embedded migrations, 0006 among them.
        let store = connect(&url).await.unwrap();
        let after = store.load_session(&handle).await.unwrap().expect("the row");
        assert_eq!(after, before, "{backend}: the row is unchanged");
        let m = tessera::SessionManager::new(config(), store.clone())
            .await
            .unwrap();
        assert_eq!(
            m.get_session_info(&handle).await.unwrap(),
            serde_json::json!({"info": true})
        );
        let listed = m.list_sessions_for_user(&user).await.unwrap();
        assert_eq!(listed.len(), 1, "{backend}");
        assert_eq!(listed[0].session_handle, handle);
        assert_eq!(listed[0].created_at_ms, before.created_at_ms);
        assert_eq!(listed[0].last_refreshed_at_ms, before.superseded_at_ms);
        assert_eq!(
            (
                &listed[0].user_agent,
                &listed[0].client_address,
                &listed[0].device_label
            ),
            (&None, &None, &None),
            "{backend}: an upgraded row has no device"
        );
        refresh(&m, &mut b).await.unwrap();
        verify(&m, &mut b).await.unwrap();
        refresh(&m, &mut b).await.unwrap();
        verify(&m, &mut b).await.unwrap();

        // A session created now records its device.
        let mut resp = http::HeaderMap::new();
        m.create_new_session_with_device(
            tessera::Transport::Reference,
            &mut resp,
            user.clone(),
            serde_json::json!({}),
            serde_json::json!({}),
            tessera::SessionDevice::default()
                .with_user_agent("upgrade-test/1")
                .with_label("laptop"),
        )
        .await
        .unwrap();
        let listed = m.list_sessions_for_user(&user).await.unwrap();
        assert_eq!(listed.len(), 2, "{backend}");
        let new = listed.iter().find(|s| s.session_handle != handle).unwrap();
        assert_eq!(new.user_agent.as_deref(), Some("upgrade-test/1"));
        assert_eq!(new.device_label.as_deref(), Some("laptop"));
        store.close().await;
    })
    .await;
}
