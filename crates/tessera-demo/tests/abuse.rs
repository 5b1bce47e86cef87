//! The demo server under abuse, over real HTTP and TCP against the real
//! binary: a burst of wrong-password sign-ins (bounded hashing and memory),
//! repeated failures for one name or from one address (429), half-sent
//! requests (closed after the header-read timeout) and more connections
//! than the cap (they wait, real requests still get through).
//!
//! Client addresses: Linux routes all of 127.0.0.0/8 to the loopback
//! interface, so a client bound to 127.0.0.N is a distinct address.

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{env_number, proc_status_kib, socket_count, Demo};
use serde_json::json;
use tessera_sqlx::testing::{fresh_url, Backend};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const MIB: u64 = 1024;

fn client_from(last_octet: u8) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last_octet)))
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

struct Answer {
    status: u16,
    retry_after: Option<u64>,
}

async fn post(http: &reqwest::Client, base: &str, path: &str, user: &str, pw: &str) -> Answer {
    let res = http
        .post(format!("{base}{path}"))
        .header("content-type", "application/json")
        .body(json!({"username": user, "password": pw}).to_string())
        .send()
        .await
        .expect("request");
    let retry_after = res
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse().expect("Retry-After: seconds"));
    Answer {
        status: res.status().as_u16(),
        retry_after,
    }
}

/// 150 concurrent wrong-password sign-ins, each from its own address and at
/// most 5 per user name (so the failure limiter does not step in): hashing
/// is bounded, the excess gets 503 with `Retry-After`, nothing answers 500,
/// and the server's peak memory since start (30 sign-ups and the burst)
/// stays within a few hashes' worth (it grew by 2.7 GiB when every request
/// hashed at once).
#[tokio::test]
async fn concurrent_wrong_password_sign_ins_are_bounded() {
    const N: u8 = 150;
    let db = fresh_url(Backend::Sqlite).await;
    let demo = Demo::start(&db, &[], "60");
    let base = demo.base.clone();
    const USERS: u8 = 30;
    let hwm_start = proc_status_kib(demo.pid(), "VmHWM");
    let http = client_from(1);
    for u in 0..USERS {
        let r = post(
            &http,
            &base,
            "/api/signup",
            &format!("owner{u}"),
            "right password",
        )
        .await;
        assert_eq!(r.status, 200);
    }
    // Warm up: the dummy hash for unknown names, one verification.
    assert_eq!(
        post(&http, &base, "/api/signin", "nobody", "wrong password")
            .await
            .status,
        403
    );
    let hwm_before = proc_status_kib(demo.pid(), "VmHWM");

    let start = Arc::new(tokio::sync::Barrier::new(N as usize));
    let mut tasks = Vec::new();
    for i in 0..N {
        let (base, start) = (base.clone(), start.clone());
        tasks.push(tokio::spawn(async move {
            let http = client_from(2 + i);
            start.wait().await;
            let user = format!("owner{}", i % USERS);
            post(&http, &base, "/api/signin", &user, &format!("wrong {i}")).await
        }));
    }
    let mut counts = std::collections::BTreeMap::new();
    for t in tasks {
        let a = t.await.unwrap();
        *counts.entry(a.status).or_insert(0u32) += 1;
        match a.status {
            403 => {}
            503 | 429 => {
                let secs = a.retry_after.expect("503/429 without Retry-After");
                assert!((1..=60).contains(&secs), "Retry-After {secs}");
            }
            s => panic!("sign-in answered {s}: {counts:?}"),
        }
    }
    let hwm_after = proc_status_kib(demo.pid(), "VmHWM");
    let rss_after = proc_status_kib(demo.pid(), "VmRSS");
    let grown = hwm_after.saturating_sub(hwm_start);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    println!(
        "sign-in burst: {N} concurrent wrong-password sign-ins: {counts:?}; peak RSS (VmHWM) \
         {} MiB at start, {} MiB after {USERS} sign-ups, {} MiB after the burst; RSS now {} MiB; \
         {cores} core(s)",
        hwm_start / MIB,
        hwm_before / MIB,
        hwm_after / MIB,
        rss_after / MIB
    );
    assert!(
        counts.get(&503).copied().unwrap_or(0) + counts.get(&429).copied().unwrap_or(0) > 0,
        "a burst of {N} was all hashed: {counts:?}"
    );
    assert!(counts.get(&403).copied().unwrap_or(0) > 0, "{counts:?}");
    // One hash holds 19 MiB; the pool runs one per core, each with one
    // reused buffer. The rest is room for connection buffers and allocator
    // slack. Measured from the start, so that memory the allocator keeps
    // after the sign-ups counts too.
    let bound = cores * 20 * MIB + 100 * MIB;
    assert!(
        grown <= bound,
        "peak RSS grew {} MiB since start, more than {} MiB",
        grown / MIB,
        bound / MIB
    );
    // And the server still serves.
    assert_eq!(
        post(&http, &base, "/api/signin", "owner0", "right password")
            .await
            .status,
        200
    );
}

/// Failed sign-ins: after 5 for one name that name gets 429 with
/// `Retry-After` (from any address, even with the right password) while
/// another name still signs in; a successful sign-in clears the count; after
/// 20 from one address that address gets 429 while another address works.
#[tokio::test]
async fn failed_sign_ins_are_limited_per_name_and_per_address() {
    let db = fresh_url(Backend::Sqlite).await;
    let demo = Demo::start(&db, &[], "60");
    let base = demo.base.as_str();
    let setup = client_from(1);
    for (user, pw) in [("ivan", "ivan password"), ("jane", "jane password")] {
        assert_eq!(
            post(&setup, base, "/api/signup", user, pw).await.status,
            200
        );
    }

    let a = client_from(2);
    for _ in 0..4 {
        assert_eq!(
            post(&a, base, "/api/signin", "ivan", "wrong").await.status,
            403
        );
    }
    // Four failures, then success: the count starts again.
    assert_eq!(
        post(&a, base, "/api/signin", "ivan", "ivan password")
            .await
            .status,
        200
    );
    for i in 0..5 {
        let r = post(&a, base, "/api/signin", "ivan", "wrong").await;
        assert_eq!(r.status, 403, "failure {} after the reset", i + 1);
    }
    for (from, pw) in [(&a, "ivan password"), (&client_from(3), "ivan password")] {
        let r = post(from, base, "/api/signin", "ivan", pw).await;
        assert_eq!(r.status, 429, "the sixth attempt for the name");
        let secs = r.retry_after.expect("429 without Retry-After");
        assert!((1..=60).contains(&secs), "Retry-After {secs}");
    }
    // Another name from the same address is not affected.
    assert_eq!(
        post(&a, base, "/api/signin", "jane", "jane password")
            .await
            .status,
        200
    );

    // Per address: 20 failures spread over names that are never throttled.
    let b = client_from(4);
    for i in 0..20 {
        let r = post(&b, base, "/api/signin", &format!("ghost{i}"), "wrong").await;
        assert_eq!(r.status, 403, "failure {} from the address", i + 1);
    }
    let r = post(&b, base, "/api/signin", "jane", "jane password").await;
    assert_eq!(r.status, 429, "the address is throttled");
    let secs = r.retry_after.expect("429 without Retry-After");
    assert!((1..=30).contains(&secs), "Retry-After {secs}");
    assert_eq!(
        post(
            &client_from(5),
            base,
            "/api/signin",
            "jane",
            "jane password"
        )
        .await
        .status,
        200,
        "another address is not"
    );
}

/// Opens `n` connections that each send a request line and one header but
/// never the blank line that ends the head.
async fn half_sent(base: &str, n: usize) -> Vec<tokio::net::TcpStream> {
    let addr = base.trim_start_matches("http://").to_owned();
    let mut conns = Vec::new();
    for _ in 0..n {
        let mut s = tokio::net::TcpStream::connect(&addr)
            .await
            .expect("connect");
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
            .await
            .expect("write");
        conns.push(s);
    }
    conns
}

/// How many of `conns` the server has not closed by `deadline` (a read that
/// ends, with or without a last response, or fails, means closed).
async fn still_open_at(conns: Vec<tokio::net::TcpStream>, deadline: Instant) -> usize {
    let mut tasks = Vec::new();
    for mut c in conns {
        tasks.push(tokio::spawn(async move {
            let mut sink = Vec::new();
            let left = deadline.saturating_duration_since(Instant::now());
            tokio::time::timeout(left, c.read_to_end(&mut sink))
                .await
                .is_err()
        }));
    }
    let mut open = 0;
    for t in tasks {
        open += usize::from(t.await.unwrap());
    }
    open
}

async fn get_config(base: &str) -> u16 {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
        .get(format!("{base}/api/config"))
        .send()
        .await
        .expect("a real request")
        .status()
        .as_u16()
}

/// 200 half-sent requests: a real request is served while they are open,
/// and the server closes every one of them after the header-read timeout
/// (they all stayed open for good before it had one).
#[tokio::test]
async fn half_sent_requests_are_closed_after_the_header_timeout() {
    const N: usize = 200;
    let timeout_secs: u64 = 2;
    // The margin after the timeout before a connection counts as left open.
    let margin: u64 = env_number("TESSERA_TEST_HALF_OPEN_MARGIN_SECS", 10);
    let db = fresh_url(Backend::Sqlite).await;
    let t = timeout_secs.to_string();
    let demo = Demo::start(&db, &["--header-read-timeout-secs", &t], "60");
    let opened = Instant::now();
    let conns = half_sent(&demo.base, N).await;
    assert_eq!(get_config(&demo.base).await, 200, "while they are open");
    let wait = timeout_secs + margin;
    let open = still_open_at(conns, opened + Duration::from_secs(wait)).await;
    println!("half-open: {open} of {N} half-sent requests still open {wait} s after they were sent (header-read timeout {timeout_secs} s)");
    assert_eq!(open, 0, "half-sent requests the server did not close");
    assert_eq!(get_config(&demo.base).await, 200);
}

/// With a cap of 16 connections, 40 half-sent requests never hold more than
/// 16 of the server's sockets; the rest wait until the first are reaped,
/// and a real request sent behind them all is still served.
#[tokio::test]
async fn connections_beyond_the_cap_wait_and_are_served() {
    const CAP: usize = 16;
    const N: usize = 40;
    let db = fresh_url(Backend::Sqlite).await;
    let demo = Demo::start(
        &db,
        &[
            "--header-read-timeout-secs",
            "1",
            "--max-connections",
            &CAP.to_string(),
        ],
        "60",
    );
    // The listener and whatever else the process holds.
    assert_eq!(get_config(&demo.base).await, 200);
    let pid = demo.pid();
    let baseline = socket_count(pid);
    let opened = Instant::now();
    let conns = half_sent(&demo.base, N).await;

    let sampling = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let sampling = sampling.clone();
        std::thread::spawn(move || {
            let mut most = 0;
            while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                most = most.max(socket_count(pid));
                std::thread::sleep(Duration::from_millis(10));
            }
            most
        })
    };
    // Sent after all 40: it waits behind them, and is served once the
    // header-read timeout has freed enough slots.
    assert_eq!(
        get_config(&demo.base).await,
        200,
        "behind the half-open ones"
    );
    let open = still_open_at(conns, opened + Duration::from_secs(20)).await;
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    let most = sampler.join().unwrap();
    println!(
        "connection cap {CAP}: {N} half-sent requests; at most {} client sockets open at once \
         in the server; {open} left open after 20 s",
        most.saturating_sub(baseline)
    );
    assert_eq!(open, 0);
    // +1: the real request's connection.
    assert!(
        most <= baseline + CAP + 1,
        "{most} sockets, more than the cap {CAP} over {baseline}"
    );
}
