//! The store conformance suite: the contract of [`tessera::Store`] as
//! tests. Every implementation runs it; see [`run`].
//!
//! Each case gets a fresh, empty database and two handles on it (two
//! connection pools for a SQL store, two clones for the memory store), so
//! that what one instance writes is checked from another. Failures panic
//! with the store's label in the message.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tessera::{
    Change, ChangeKind, ExpiryCutoff, GeneralKind, NewSession, Promotion, SessionSummary,
    SigningKeys, Store, StoredKey, UserId,
};

/// Two handles on one fresh database.
pub type Handles = (Arc<dyn Store>, Arc<dyn Store>);

/// The cases, by name.
pub const CASES: &[&str] = &[
    "round_trip",
    "compare_and_set",
    "promotion_history",
    "liveness_and_listings",
    "devices",
    "session_info",
    "delete_expired",
    "delete_expired_lifetimes",
    "refresh_token_key",
    "signing_keys_rotation",
    "signing_keys_panic",
    "change_log",
];

/// Runs every case of the suite. `open` gives two handles on a new, empty
/// database each time it is called. Prints one line per case
/// (`store-suite CASE: store LABEL`). Needs a multi-threaded tokio runtime
/// (the concurrency cases spawn tasks that must overlap).
pub async fn run<F, Fut>(label: &str, open: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Handles>,
{
    for case in CASES {
        let handles = open().await;
        eprintln!("store-suite {case}: store {label}");
        match *case {
            "round_trip" => round_trip(label, handles).await,
            "compare_and_set" => compare_and_set(label, handles).await,
            "promotion_history" => promotion_history(label, handles).await,
            "liveness_and_listings" => liveness_and_listings(handles).await,
            "devices" => devices(label, handles).await,
            "session_info" => session_info(label, handles).await,
            "delete_expired" => delete_expired(label, handles).await,
            "delete_expired_lifetimes" => delete_expired_lifetimes(label, handles).await,
            "refresh_token_key" => refresh_token_key(label, handles).await,
            "signing_keys_rotation" => signing_keys_rotation(label, handles).await,
            "signing_keys_panic" => signing_keys_panic(label, handles).await,
            "change_log" => change_log(label, handles).await,
            other => unreachable!("unknown case {other}"),
        }
    }
}

/// A 64-character hash made of one repeated character.
pub fn hash(c: char) -> String {
    c.to_string().repeat(64)
}

/// A 32-byte key of one repeated byte.
pub fn key(byte: u8, created_at_ms: i64) -> StoredKey {
    StoredKey {
        value: vec![byte; 32],
        created_at_ms,
    }
}

/// Inserts a session row with fixed info and payload.
pub async fn insert(
    store: &dyn Store,
    handle: &str,
    user: &UserId,
    hash_2: &str,
    created_at_ms: i64,
    expires_at_ms: i64,
) {
    store
        .insert_session(&NewSession {
            session_handle: handle,
            user_id: user,
            refresh_token_hash_2: hash_2,
            session_info: r#"{"info":true}"#,
            jwt_payload: r#"{"role":"admin"}"#,
            created_at_ms,
            expires_at_ms,
            user_agent: None,
            client_address: None,
            device_label: None,
        })
        .await
        .unwrap();
}

async fn round_trip(label: &str, (store, other): Handles) {
    let text_seven = UserId::from("7");
    let int_seven = UserId::from(7);
    let info = "x".repeat(200_000);
    let payload = r#"{"name":"Zoë 🦀","n":[1,2,3]}"#;
    store
        .insert_session(&NewSession {
            session_handle: "h-text",
            user_id: &text_seven,
            refresh_token_hash_2: &hash('a'),
            session_info: &info,
            jwt_payload: payload,
            created_at_ms: 1_000,
            expires_at_ms: 9_000,
            user_agent: None,
            client_address: None,
            device_label: None,
        })
        .await
        .unwrap();
    insert(&*store, "h-int", &int_seven, &hash('b'), 1_001, 9_001).await;

    // Read from the other handle: committed means visible everywhere.
    let row = other.load_session("h-text").await.unwrap().unwrap();
    assert_eq!(row.session_handle, "h-text");
    assert_eq!(row.user_id, text_seven);
    assert_eq!(row.refresh_token_hash_2, hash('a'));
    assert_eq!(row.jwt_payload, payload);
    assert_eq!((row.created_at_ms, row.expires_at_ms), (1_000, 9_000));
    assert_eq!(
        other.get_session_info("h-text", 0).await.unwrap(),
        Some(info)
    );
    assert_eq!(
        other.load_session("h-int").await.unwrap().unwrap().user_id,
        int_seven
    );

    // "7" and 7 are different users.
    assert_eq!(
        store.session_handles_for_user(&text_seven).await.unwrap(),
        ["h-text"]
    );
    assert_eq!(
        store.session_handles_for_user(&int_seven).await.unwrap(),
        ["h-int"]
    );

    // Case and trailing spaces matter, in user ids and in handles.
    let alice = UserId::from("Alice");
    insert(&*store, "h-Alice", &alice, &hash('c'), 1, 9_000).await;
    insert(
        &*store,
        "h-alice",
        &UserId::from("alice"),
        &hash('c'),
        2,
        9_000,
    )
    .await;
    insert(
        &*store,
        "h-alice-sp",
        &UserId::from("alice "),
        &hash('c'),
        3,
        9_000,
    )
    .await;
    assert_eq!(
        store.session_handles_for_user(&alice).await.unwrap(),
        ["h-Alice"]
    );
    assert!(store
        .session_handles_for_user(&UserId::from("ALICE"))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(store.delete_sessions_for_user(&alice).await.unwrap(), 1);
    assert!(store.load_session("h-alice").await.unwrap().is_some());
    assert!(store.load_session("H-ALICE").await.unwrap().is_none());
    assert!(store.load_session("h-alice ").await.unwrap().is_none());
    assert!(!store.session_is_live("h-alice ", 0).await.unwrap());

    // Missing rows, duplicate handles, bad handles and hashes, too-long
    // user ids: refused as the caller's misuse, nothing written.
    assert!(store.load_session("missing").await.unwrap().is_none());
    let new = |handle: &'static str, user: &'static UserId, hash_2: &'static str| NewSession {
        session_handle: handle,
        user_id: user,
        refresh_token_hash_2: hash_2,
        session_info: "{}",
        jwt_payload: "{}",
        created_at_ms: 0,
        expires_at_ms: 1,
        user_agent: None,
        client_address: None,
        device_label: None,
    };
    static SEVEN: std::sync::LazyLock<UserId> = std::sync::LazyLock::new(|| UserId::from("7"));
    static LONG: std::sync::LazyLock<UserId> =
        std::sync::LazyLock::new(|| UserId::from("x".repeat(300)));
    static Z: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| hash('z'));
    let dup = store.insert_session(&new("h-int", &SEVEN, &Z)).await;
    assert!(dup.is_err(), "{label}: duplicate handle accepted");
    for bad in [
        new("", &SEVEN, &Z),
        new("ends with space ", &SEVEN, &Z),
        new(
            "hhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhh",
            &SEVEN,
            &Z,
        ),
        new("h-short-hash", &SEVEN, "abc"),
        new("h-long-user", &LONG, &Z),
    ] {
        let handle = bad.session_handle;
        let e = store.insert_session(&bad).await.unwrap_err();
        assert_eq!(
            e.kind(),
            GeneralKind::InvalidArgument,
            "{label}: {handle:?}: {e}"
        );
        if !handle.is_empty() {
            assert!(store.load_session(handle).await.unwrap().is_none());
        }
    }
    assert_eq!(
        store.load_session("h-int").await.unwrap().unwrap().user_id,
        int_seven,
        "{label}: the duplicate did not overwrite"
    );
}

async fn compare_and_set(label: &str, (store, other): Handles) {
    let user = UserId::from("u");
    insert(&*store, "h", &user, &hash('a'), 0, 1_000).await;

    // Wrong expected hash, missing row: nothing changes.
    assert!(!store
        .compare_and_set_refresh_hash(
            &Promotion {
                session_handle: "h",
                expected_hash_2: &hash('x'),
                new_hash_2: &hash('b'),
                new_expires_at_ms: 5_000,
                new_hash_1: Some(&hash('1')),
                not_superseded_after_ms: i64::MAX,
            },
            500,
        )
        .await
        .unwrap());
    assert!(!store
        .compare_and_set_refresh_hash(
            &Promotion {
                session_handle: "nope",
                expected_hash_2: &hash('a'),
                new_hash_2: &hash('b'),
                new_expires_at_ms: 5_000,
                new_hash_1: Some(&hash('1')),
                not_superseded_after_ms: i64::MAX,
            },
            500,
        )
        .await
        .unwrap());
    let row = store.load_session("h").await.unwrap().unwrap();
    assert_eq!(
        (row.refresh_token_hash_2, row.expires_at_ms),
        (hash('a'), 1_000)
    );

    // Succeeds once.
    assert!(store
        .compare_and_set_refresh_hash(
            &Promotion {
                session_handle: "h",
                expected_hash_2: &hash('a'),
                new_hash_2: &hash('b'),
                new_expires_at_ms: 2_000,
                new_hash_1: Some(&hash('1')),
                not_superseded_after_ms: i64::MAX,
            },
            500,
        )
        .await
        .unwrap());
    assert!(!other
        .compare_and_set_refresh_hash(
            &Promotion {
                session_handle: "h",
                expected_hash_2: &hash('a'),
                new_hash_2: &hash('c'),
                new_expires_at_ms: 3_000,
                new_hash_1: Some(&hash('1')),
                not_superseded_after_ms: i64::MAX,
            },
            500,
        )
        .await
        .unwrap());
    let row = other.load_session("h").await.unwrap().unwrap();
    assert_eq!(
        (row.refresh_token_hash_2, row.expires_at_ms),
        (hash('b'), 2_000)
    );

    // Writing the values the row already has still reports success.
    assert!(store
        .compare_and_set_refresh_hash(
            &Promotion {
                session_handle: "h",
                expected_hash_2: &hash('b'),
                new_hash_2: &hash('b'),
                new_expires_at_ms: 2_000,
                new_hash_1: Some(&hash('1')),
                not_superseded_after_ms: i64::MAX,
            },
            500,
        )
        .await
        .unwrap());

    // Expired (expires_at <= now): refused, unchanged.
    assert!(!store
        .compare_and_set_refresh_hash(
            &Promotion {
                session_handle: "h",
                expected_hash_2: &hash('b'),
                new_hash_2: &hash('c'),
                new_expires_at_ms: 9_000,
                new_hash_1: Some(&hash('1')),
                not_superseded_after_ms: i64::MAX,
            },
            2_000,
        )
        .await
        .unwrap());
    let row = store.load_session("h").await.unwrap().unwrap();
    assert_eq!(
        (row.refresh_token_hash_2, row.expires_at_ms),
        (hash('b'), 2_000)
    );

    // Ten concurrent promotions from the same expected hash, from both
    // handles: exactly one wins.
    let mut tasks = Vec::new();
    for i in 0..10u8 {
        let s = Arc::clone(if i % 2 == 0 { &store } else { &other });
        tasks.push(tokio::spawn(async move {
            let new = hash(char::from(b'c' + i));
            s.compare_and_set_refresh_hash(
                &Promotion {
                    session_handle: "h",
                    expected_hash_2: &hash('b'),
                    new_hash_2: &new,
                    new_expires_at_ms: 3_000,
                    new_hash_1: Some(&hash('1')),
                    not_superseded_after_ms: i64::MAX,
                },
                500,
            )
            .await
            .unwrap()
        }));
    }
    let mut wins = 0;
    for task in tasks {
        wins += usize::from(task.await.unwrap());
    }
    assert_eq!(wins, 1, "{label}: concurrent compare-and-set winners");
    let row = store.load_session("h").await.unwrap().unwrap();
    assert_ne!(row.refresh_token_hash_2, hash('b'));
    assert_eq!(row.expires_at_ms, 3_000);
}

/// What a promotion remembers for the refresh grace window: the committed
/// token's `H1`, the superseded `H2` and when (docs/PROTOCOL.md §3.9), and
/// the freeze: no promotion while the last one is newer than
/// `not_superseded_after_ms`.
async fn promotion_history(label: &str, (store, other): Handles) {
    let user = UserId::from("u");
    insert(&*store, "h", &user, &hash('a'), 0, 10_000).await;
    let row = store.load_session("h").await.unwrap().unwrap();
    assert_eq!(
        (
            row.committed_hash_1,
            row.previous_hash_2,
            row.superseded_at_ms
        ),
        (None, None, None),
        "{label}: a new row has no history"
    );
    let promote = |expected: char, new: char, new_1: char, after: i64| {
        let store = Arc::clone(&store);
        async move {
            store
                .compare_and_set_refresh_hash(
                    &Promotion {
                        session_handle: "h",
                        expected_hash_2: &hash(expected),
                        new_hash_2: &hash(new),
                        new_expires_at_ms: 20_000,
                        new_hash_1: Some(&hash(new_1)),
                        not_superseded_after_ms: after,
                    },
                    1_000,
                )
                .await
                .unwrap()
        }
    };
    // A row never promoted has no freeze, whatever the bound.
    assert!(
        promote('a', 'b', '1', i64::MIN).await,
        "{label}: first promotion"
    );
    let row = other.load_session("h").await.unwrap().unwrap();
    assert_eq!(
        (
            row.refresh_token_hash_2.as_str(),
            row.committed_hash_1.as_deref(),
            row.previous_hash_2.as_deref(),
            row.superseded_at_ms,
            row.expires_at_ms
        ),
        (
            hash('b').as_str(),
            Some(hash('1').as_str()),
            Some(hash('a').as_str()),
            Some(1_000),
            20_000
        ),
        "{label}: the promotion's history"
    );
    // Frozen: the last promotion (1000) is after the bound (999).
    assert!(
        !promote('b', 'c', '2', 999).await,
        "{label}: promoted inside the freeze"
    );
    let row = other.load_session("h").await.unwrap().unwrap();
    assert_eq!(
        (
            row.refresh_token_hash_2.as_str(),
            row.committed_hash_1.as_deref(),
            row.previous_hash_2.as_deref()
        ),
        (
            hash('b').as_str(),
            Some(hash('1').as_str()),
            Some(hash('a').as_str())
        ),
        "{label}: a refused promotion changed the history"
    );
    // At the bound the freeze is over; the history moves one generation.
    assert!(
        promote('b', 'c', '2', 1_000).await,
        "{label}: after the freeze"
    );
    let row = other.load_session("h").await.unwrap().unwrap();
    assert_eq!(
        (
            row.refresh_token_hash_2.as_str(),
            row.committed_hash_1.as_deref(),
            row.previous_hash_2.as_deref()
        ),
        (
            hash('c').as_str(),
            Some(hash('2').as_str()),
            Some(hash('b').as_str())
        ),
        "{label}: the second promotion's history"
    );
    // A promotion that keeps no H1 (no window configured) opens no freeze.
    let bare = |expected: char, new: char, after: i64| {
        let store = Arc::clone(&store);
        async move {
            store
                .compare_and_set_refresh_hash(
                    &Promotion {
                        session_handle: "h",
                        expected_hash_2: &hash(expected),
                        new_hash_2: &hash(new),
                        new_expires_at_ms: 20_000,
                        new_hash_1: None,
                        not_superseded_after_ms: after,
                    },
                    1_000,
                )
                .await
                .unwrap()
        }
    };
    assert!(!bare('c', 'd', 999).await, "{label}: still frozen");
    assert!(
        bare('c', 'd', 1_000).await,
        "{label}: a promotion without H1"
    );
    let row = other.load_session("h").await.unwrap().unwrap();
    assert_eq!(
        (row.committed_hash_1, row.previous_hash_2.as_deref()),
        (None, Some(hash('c').as_str())),
        "{label}: no H1 kept"
    );
    assert!(bare('d', 'e', 999).await, "{label}: frozen without an H1");
}

async fn liveness_and_listings((store, other): Handles) {
    let user = UserId::from(42);
    // Created out of order; listings follow created_at.
    insert(&*store, "h3", &user, &hash('a'), 300, 5_000).await;
    insert(&*store, "h1", &user, &hash('a'), 100, 1_000).await;
    insert(&*store, "h2", &user, &hash('a'), 200, 5_000).await;
    insert(&*store, "other", &UserId::from(43), &hash('a'), 50, 5_000).await;

    assert!(other.session_is_live("h1", 999).await.unwrap());
    assert!(!other.session_is_live("h1", 1_000).await.unwrap());
    assert!(!other.session_is_live("missing", 0).await.unwrap());

    // Handles include expired rows; summaries do not.
    assert_eq!(
        other.session_handles_for_user(&user).await.unwrap(),
        ["h1", "h2", "h3"]
    );
    assert_eq!(
        other.sessions_for_user(&user, 1_000).await.unwrap(),
        vec![
            SessionSummary {
                session_handle: "h2".into(),
                created_at_ms: 200,
                expires_at_ms: 5_000,
                ..SessionSummary::default()
            },
            SessionSummary {
                session_handle: "h3".into(),
                created_at_ms: 300,
                expires_at_ms: 5_000,
                ..SessionSummary::default()
            },
        ]
    );

    assert!(store.delete_session("h2").await.unwrap());
    assert!(!other.delete_session("h2").await.unwrap());
    assert!(!store.delete_session("missing").await.unwrap());
    assert_eq!(store.delete_sessions_for_user(&user).await.unwrap(), 2);
    assert_eq!(other.delete_sessions_for_user(&user).await.unwrap(), 0);
    assert!(other
        .session_handles_for_user(&user)
        .await
        .unwrap()
        .is_empty());
    assert!(other.load_session("other").await.unwrap().is_some());
}

/// The device columns (migration 0006) and the last refresh in listings:
/// what `insert_session` is given comes back from `sessions_for_user` as it
/// was, absent fields stay `None`, and `last_refreshed_at_ms` is the time of
/// the last promotion.
async fn devices(label: &str, (store, other): Handles) {
    let user = UserId::from("device-user");
    // At the widths of the columns, with multibyte text.
    let user_agent = format!("Mozilla/5.0 Zoë 🦀 {}", "x".repeat(234));
    assert_eq!(user_agent.len(), tessera::MAX_USER_AGENT_LEN);
    let label_text = format!("Alice’s phone {}", "é".repeat(56));
    assert!(label_text.len() <= tessera::MAX_DEVICE_LABEL_LEN);
    let address = "2001:db8:85a3::8a2e:370:7334";
    store
        .insert_session(&NewSession {
            session_handle: "with-device",
            user_id: &user,
            refresh_token_hash_2: &hash('a'),
            session_info: "{}",
            jwt_payload: "{}",
            created_at_ms: 100,
            expires_at_ms: 10_000,
            user_agent: Some(&user_agent),
            client_address: Some(address),
            device_label: Some(&label_text),
        })
        .await
        .unwrap();
    store
        .insert_session(&NewSession {
            session_handle: "agent-only",
            user_id: &user,
            refresh_token_hash_2: &hash('b'),
            session_info: "{}",
            jwt_payload: "{}",
            created_at_ms: 200,
            expires_at_ms: 10_000,
            user_agent: Some("curl/8.5.0"),
            client_address: None,
            device_label: None,
        })
        .await
        .unwrap();
    insert(&*store, "bare", &user, &hash('c'), 300, 10_000).await;

    let listed = other.sessions_for_user(&user, 1_000).await.unwrap();
    assert_eq!(
        listed,
        vec![
            SessionSummary {
                session_handle: "with-device".into(),
                created_at_ms: 100,
                expires_at_ms: 10_000,
                last_refreshed_at_ms: None,
                user_agent: Some(user_agent.clone()),
                client_address: Some(address.into()),
                device_label: Some(label_text.clone()),
            },
            SessionSummary {
                session_handle: "agent-only".into(),
                created_at_ms: 200,
                expires_at_ms: 10_000,
                last_refreshed_at_ms: None,
                user_agent: Some("curl/8.5.0".into()),
                client_address: None,
                device_label: None,
            },
            SessionSummary {
                session_handle: "bare".into(),
                created_at_ms: 300,
                expires_at_ms: 10_000,
                ..SessionSummary::default()
            },
        ],
        "{label}: device fields round-trip; absent ones stay None"
    );
    assert_eq!(listed[0].last_active_at_ms(), 100);

    // A promotion sets the last refresh to its time and leaves the device
    // columns as they were.
    assert!(store
        .compare_and_set_refresh_hash(
            &Promotion {
                session_handle: "with-device",
                expected_hash_2: &hash('a'),
                new_hash_2: &hash('d'),
                new_expires_at_ms: 20_000,
                new_hash_1: None,
                not_superseded_after_ms: i64::MAX,
            },
            2_500,
        )
        .await
        .unwrap());
    let listed = other.sessions_for_user(&user, 3_000).await.unwrap();
    assert_eq!(
        (
            listed[0].last_refreshed_at_ms,
            listed[0].last_active_at_ms(),
            listed[0].expires_at_ms
        ),
        (Some(2_500), 2_500, 20_000),
        "{label}: the last refresh is the promotion's time"
    );
    assert_eq!(
        (
            listed[0].user_agent.as_deref(),
            listed[0].client_address.as_deref(),
            listed[0].device_label.as_deref()
        ),
        (
            Some(user_agent.as_str()),
            Some(address),
            Some(label_text.as_str())
        ),
        "{label}: a promotion keeps the device columns"
    );
    assert_eq!(
        listed[1].last_refreshed_at_ms, None,
        "{label}: only the promoted row has a last refresh"
    );

    // Wider than a column: refused by every store alike, never cut there.
    let too_long = "x".repeat(tessera::MAX_USER_AGENT_LEN + 1);
    let e = store
        .insert_session(&NewSession {
            session_handle: "too-long",
            user_id: &user,
            refresh_token_hash_2: &hash('e'),
            session_info: "{}",
            jwt_payload: "{}",
            created_at_ms: 400,
            expires_at_ms: 10_000,
            user_agent: Some(&too_long),
            client_address: None,
            device_label: None,
        })
        .await
        .unwrap_err();
    assert_eq!(
        e.kind(),
        GeneralKind::InvalidArgument,
        "{label}: an over-long user agent"
    );
    assert!(other.load_session("too-long").await.unwrap().is_none());
}

async fn session_info(label: &str, (store, other): Handles) {
    insert(&*store, "h", &UserId::from("u"), &hash('a'), 0, 1_000).await;

    assert_eq!(
        store.get_session_info("h", 999).await.unwrap().as_deref(),
        Some(r#"{"info":true}"#)
    );
    assert_eq!(store.get_session_info("h", 1_000).await.unwrap(), None);
    assert_eq!(store.get_session_info("missing", 0).await.unwrap(), None);

    assert!(store
        .update_session_info("h", r#"{"v":2}"#, 999)
        .await
        .unwrap());
    // Identical info again: still a live row, still true.
    assert!(
        other
            .update_session_info("h", r#"{"v":2}"#, 999)
            .await
            .unwrap(),
        "{label}: identical update reported no row"
    );
    assert!(!store
        .update_session_info("h", r#"{"v":3}"#, 1_000)
        .await
        .unwrap());
    assert!(!store.update_session_info("missing", "{}", 0).await.unwrap());
    assert_eq!(
        other.get_session_info("h", 0).await.unwrap().as_deref(),
        Some(r#"{"v":2}"#)
    );
}

async fn delete_expired(label: &str, (store, other): Handles) {
    let user = UserId::from("u");
    for i in 0..25 {
        insert(&*store, &format!("old{i}"), &user, &hash('a'), i, 100 + i).await;
    }
    for i in 0..5 {
        insert(&*store, &format!("live{i}"), &user, &hash('a'), i, 10_000).await;
    }
    // An edge: expires exactly now counts as expired.
    let now = 1_000;
    insert(&*store, "edge", &user, &hash('a'), 0, now).await;

    assert_eq!(
        other
            .count_expired_sessions(ExpiryCutoff::at(now))
            .await
            .unwrap(),
        26
    );
    let mut batches = Vec::new();
    loop {
        let n = store
            .delete_expired_sessions(ExpiryCutoff::at(now), 10)
            .await
            .unwrap();
        batches.push(n);
        if n == 0 {
            break;
        }
    }
    assert_eq!(batches, [10, 10, 6, 0], "{label}");
    assert_eq!(
        other
            .count_expired_sessions(ExpiryCutoff::at(now))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .delete_expired_sessions(ExpiryCutoff::at(now), 0)
            .await
            .unwrap(),
        0
    );
    let left = other.session_handles_for_user(&user).await.unwrap();
    assert_eq!(left, ["live0", "live1", "live2", "live3", "live4"]);
}

/// Cleanup with an idle timeout and an absolute lifetime: a row's activity
/// is its last promotion (`superseded_at`) or its creation; the bounds are
/// inclusive, like the refresh expiry's.
async fn delete_expired_lifetimes(label: &str, (store, other): Handles) {
    let user = UserId::from("u");
    let far = 1_000_000;
    // (handle, created_at, promoted at, expires_at)
    let rows: &[(&str, i64, Option<i64>, i64)] = &[
        ("fresh", 900, None, far),
        ("idle", 400, None, far),
        ("idle_edge", 500, None, far),
        ("promoted", 200, Some(800), far),
        ("promoted_idle", 300, Some(450), far),
        ("old", 100, Some(950), far),
        ("refresh_expired", 900, None, 1_000),
    ];
    for &(handle, created, promoted, expires) in rows {
        insert(&*store, handle, &user, &hash('a'), created, expires).await;
        if let Some(at) = promoted {
            assert!(
                store
                    .compare_and_set_refresh_hash(
                        &Promotion {
                            session_handle: handle,
                            expected_hash_2: &hash('a'),
                            new_hash_2: &hash('b'),
                            new_expires_at_ms: expires,
                            new_hash_1: None,
                            not_superseded_after_ms: i64::MAX,
                        },
                        at,
                    )
                    .await
                    .unwrap(),
                "{label}: promote {handle}"
            );
        }
    }
    let now = 1_000;
    let both = ExpiryCutoff {
        now_ms: now,
        idle_cutoff_ms: Some(500),
        created_cutoff_ms: Some(100),
    };
    let idle_only = ExpiryCutoff {
        created_cutoff_ms: None,
        ..both
    };
    let created_only = ExpiryCutoff {
        idle_cutoff_ms: None,
        ..both
    };
    let count = |c| {
        let other = other.clone();
        async move { other.count_expired_sessions(c).await.unwrap() }
    };
    assert_eq!(
        count(ExpiryCutoff::at(now)).await,
        1,
        "{label}: expiry only"
    );
    assert_eq!(count(idle_only).await, 4, "{label}: idle timeout");
    assert_eq!(count(created_only).await, 2, "{label}: absolute lifetime");
    assert_eq!(count(both).await, 5, "{label}: both");
    let mut batches = Vec::new();
    loop {
        let n = store.delete_expired_sessions(both, 2).await.unwrap();
        batches.push(n);
        if n == 0 {
            break;
        }
    }
    assert_eq!(batches, [2, 2, 1, 0], "{label}");
    assert_eq!(count(both).await, 0, "{label}");
    let left = other.session_handles_for_user(&user).await.unwrap();
    let mut left: Vec<&str> = left.iter().map(String::as_str).collect();
    left.sort_unstable();
    assert_eq!(left, ["fresh", "promoted"], "{label}");
}

async fn refresh_token_key(label: &str, (first, second): Handles) {
    let mut tasks = Vec::new();
    for i in 0..10u8 {
        let store = Arc::clone(if i % 2 == 0 { &first } else { &second });
        tasks.push(tokio::spawn(async move {
            store
                .refresh_token_key(&key(i, i64::from(i)))
                .await
                .unwrap()
        }));
    }
    let mut keys = Vec::new();
    for task in tasks {
        keys.push(task.await.unwrap());
    }
    assert!(
        keys.iter().all(|k| *k == keys[0]),
        "{label}: callers disagree"
    );
    assert!((0..10).any(|i| keys[0] == key(i, i64::from(i))));
    // Later callers keep getting it, from either handle, whatever their
    // candidate.
    for s in [&first, &second] {
        assert_eq!(s.refresh_token_key(&key(99, 99)).await.unwrap(), keys[0]);
    }
    // It is independent of the signing keys.
    let signing = first
        .signing_keys(&key(42, 42), &|_: &SigningKeys| None)
        .await
        .unwrap();
    assert_eq!(signing.current, key(42, 42));
    assert_eq!(
        first.refresh_token_key(&key(98, 98)).await.unwrap(),
        keys[0]
    );
}

/// Rotates when the current key is older than 5 000 ms; counts decisions to
/// write. Deciding takes a moment (a blocking sleep, as a slow callback
/// would) so that concurrent callers overlap unless the store serialises
/// them.
pub fn rotate_if_old(
    rotations: Arc<AtomicUsize>,
    fresh: StoredKey,
) -> impl Fn(&SigningKeys) -> Option<SigningKeys> + Send + Sync {
    move |stored: &SigningKeys| {
        std::thread::sleep(Duration::from_millis(100));
        if stored.current.created_at_ms < 5_000 {
            rotations.fetch_add(1, Ordering::SeqCst);
            Some(SigningKeys {
                current: fresh.clone(),
                previous: Some(stored.current.clone()),
            })
        } else {
            None
        }
    }
}

async fn signing_keys_rotation(label: &str, (first, second): Handles) {
    // First use: the candidate becomes the current key, no previous.
    let original = key(1, 1_000);
    let keep = |_: &SigningKeys| None;
    let keys = first.signing_keys(&original, &keep).await.unwrap();
    assert_eq!(
        keys,
        SigningKeys {
            current: original.clone(),
            previous: None
        }
    );
    // Another candidate does not replace it.
    let keys = second.signing_keys(&key(2, 2_000), &keep).await.unwrap();
    assert_eq!(keys.current, original);

    let rotations = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for i in 0..10u8 {
        let store = Arc::clone(if i % 2 == 0 { &first } else { &second });
        let decide = rotate_if_old(Arc::clone(&rotations), key(10 + i, 6_000 + i64::from(i)));
        tasks.push(tokio::spawn(async move {
            store.signing_keys(&key(50 + i, 0), &decide).await.unwrap()
        }));
    }
    let mut seen = Vec::new();
    for task in tasks {
        seen.push(task.await.unwrap());
    }
    // A store may ask for the decision again when its first transaction was
    // refused at commit and run once more (a Galera certification failure:
    // two nodes decided to rotate, one committed). What must hold is that
    // exactly one rotation committed: the previous key is the original one
    // (a second rotation would have made the first one's key the previous)
    // and every caller saw the committed keys.
    assert!(
        rotations.load(Ordering::SeqCst) >= 1,
        "{label}: no rotation"
    );
    let stored = first.signing_keys(&key(3, 3_000), &keep).await.unwrap();
    assert_eq!(
        stored.previous.as_ref(),
        Some(&original),
        "{label}: one rotation committed"
    );
    assert!(stored.current.created_at_ms >= 6_000);
    assert!(
        seen.iter().all(|k| *k == stored),
        "{label}: a caller saw keys other than the committed ones"
    );

    // A decision without a previous key removes the previous one.
    let newest = key(9, 9_000);
    let replace = |_: &SigningKeys| {
        Some(SigningKeys {
            current: newest.clone(),
            previous: None,
        })
    };
    first.signing_keys(&key(4, 0), &replace).await.unwrap();
    let stored = second.signing_keys(&key(5, 0), &keep).await.unwrap();
    assert_eq!(
        stored,
        SigningKeys {
            current: newest.clone(),
            previous: None
        }
    );
}

async fn signing_keys_panic(label: &str, (store, other): Handles) {
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
    // Nothing was written, and the next rotation, from either handle, is
    // not blocked by the one that panicked.
    let rotations = Arc::new(AtomicUsize::new(0));
    let decide = rotate_if_old(Arc::clone(&rotations), key(3, 7_000));
    for s in [&store, &other] {
        let keys =
            tokio::time::timeout(Duration::from_secs(30), s.signing_keys(&key(4, 0), &decide))
                .await
                .expect("signing_keys hung after a panic")
                .unwrap();
        assert_eq!(keys.previous, Some(original.clone()), "{label}");
    }
    assert_eq!(rotations.load(Ordering::SeqCst), 1);
    insert(&*store, "h", &UserId::from("u"), &hash('a'), 0, 10).await;
}

/// The change log (for a store that keeps one): a row per revoked session
/// and per key write, in the revocation's own transaction, read in order
/// from either handle, and pruned by age.
async fn change_log(label: &str, (store, other): Handles) {
    if !store.keeps_change_log() {
        return;
    }
    let all = |s: Arc<dyn Store>| async move { s.changes_after(0, 1000).await.unwrap() };
    let kinds = |c: &[Change]| -> Vec<(ChangeKind, String)> {
        c.iter().map(|c| (c.kind, c.subject.clone())).collect()
    };
    assert!(
        all(store.clone()).await.is_empty(),
        "{label}: a fresh log is empty"
    );
    let (u, v) = (UserId::from("u"), UserId::from("v"));
    insert(&*store, "h1", &u, &hash('a'), 1_000, 9_000).await;
    insert(&*store, "h2", &u, &hash('b'), 1_001, 9_000).await;
    insert(&*store, "h3", &u, &hash('c'), 1_002, 9_000).await;
    insert(&*store, "h4", &v, &hash('d'), 1_003, 9_000).await;
    // Creating and updating sessions is not a change the feed needs.
    assert!(all(other.clone()).await.is_empty(), "{label}");

    assert!(store.delete_session("h1").await.unwrap());
    // Nothing deleted, nothing logged.
    assert!(!store.delete_session("h1").await.unwrap());
    assert!(!store.delete_session("nope").await.unwrap());
    assert_eq!(
        kinds(&all(other.clone()).await),
        [(ChangeKind::Revoked, "h1".to_owned())],
        "{label}"
    );
    assert_eq!(store.delete_sessions_for_user(&u).await.unwrap(), 2);
    assert_eq!(other.delete_sessions_for_user(&u).await.unwrap(), 0);
    let log = all(other.clone()).await;
    let mut revoked: Vec<String> = log[1..].iter().map(|c| c.subject.clone()).collect();
    revoked.sort();
    assert_eq!(revoked, ["h2", "h3"], "{label}");
    assert!(log.iter().all(|c| c.kind == ChangeKind::Revoked));
    // h4 (another user) is untouched and unlogged.
    assert!(other.load_session("h4").await.unwrap().is_some());

    // Key writes: the first key is no change (nothing was signed before
    // it); a rotation is; a decision to keep is not.
    store
        .signing_keys(&key(1, 1_000), &|_: &SigningKeys| None)
        .await
        .unwrap();
    assert_eq!(all(store.clone()).await.len(), 3, "{label}");
    other
        .signing_keys(&key(2, 2_000), &|k: &SigningKeys| {
            Some(SigningKeys {
                current: key(3, 3_000),
                previous: Some(k.current.clone()),
            })
        })
        .await
        .unwrap();
    let log = all(store.clone()).await;
    assert_eq!(log.len(), 4, "{label}: {log:?}");
    assert_eq!(log[3].kind, ChangeKind::SigningKeys);
    assert!(
        log.windows(2).all(|w| w[0].seq < w[1].seq),
        "{label}: {log:?}"
    );

    // Paging: after a number, at most `limit` rows, in order.
    let page = store.changes_after(log[0].seq, 2).await.unwrap();
    assert_eq!(page, log[1..3].to_vec(), "{label}");
    assert!(store
        .changes_after(log[3].seq, 10)
        .await
        .unwrap()
        .is_empty());

    // Pruning by age: nothing is an hour old; everything is older than 0.
    assert_eq!(
        store
            .prune_changes(Duration::from_secs(3600))
            .await
            .unwrap(),
        0
    );
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(
        store.prune_changes(Duration::ZERO).await.unwrap(),
        4,
        "{label}"
    );
    assert!(all(other.clone()).await.is_empty());
    // Numbers are never reused after pruning.
    assert!(store.delete_session("h4").await.unwrap());
    let after = all(other).await;
    assert_eq!(after.len(), 1);
    assert!(after[0].seq > log[3].seq, "{label}: {after:?}");
}
