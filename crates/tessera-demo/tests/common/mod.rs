//! Runs the real demo binary and talks to it over HTTP, keeping cookies and
//! the anti-CSRF token as a browser would.
#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;
use tessera_testkit::jar::{self, CookieJar};

pub const BIN: &str = env!("CARGO_BIN_EXE_tessera-demo");

/// A running `tessera-demo` server; killed on drop.
pub struct Demo {
    child: Child,
    pub base: String,
}

impl Demo {
    /// Starts the binary with `args` on `database` and a free port, and waits
    /// for its `listening on` line.
    pub fn start(database: &str, args: &[&str], access_token_secs: &str) -> Demo {
        Demo::start_with_env(database, args, access_token_secs, &[])
    }

    /// [`Demo::start`] with extra environment variables (set last, so they
    /// may override `RUST_LOG`).
    pub fn start_with_env(
        database: &str,
        args: &[&str],
        access_token_secs: &str,
        env: &[(&str, &str)],
    ) -> Demo {
        let mut child = Command::new(BIN)
            .args(args)
            .env("TESSERA_DATABASE_URL", database)
            .env("TESSERA_LISTEN", "127.0.0.1:0")
            .env("TESSERA_DEMO_ACCESS_TOKEN_SECS", access_token_secs)
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn tessera-demo");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("listening on ") {
                    let url = rest
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_owned();
                    let _ = tx.send(url);
                }
            }
        });
        let base = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the demo did not start listening within 60 s");
        Demo { child, base }
    }
}

impl Demo {
    /// Kills the server with SIGKILL (no shutdown code runs) and waits for
    /// it. Panics if it had already exited by itself: a crash test must know
    /// that the kill, not the server, ended it.
    pub fn sigkill(&mut self) {
        use std::os::unix::process::ExitStatusExt;
        if let Some(status) = self.child.try_wait().expect("try_wait") {
            panic!("the demo exited by itself before the kill: {status}");
        }
        self.child.kill().expect("SIGKILL the demo");
        let status = self.child.wait().expect("wait for the demo");
        assert_eq!(
            status.signal(),
            Some(9),
            "the demo ended by SIGKILL: {status}"
        );
    }
}

impl Demo {
    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// A `kB` field of `/proc/<pid>/status` (`VmRSS`, `VmHWM`: peak RSS), in KiB.
pub fn proc_status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// How many sockets a process has open (`/proc/<pid>/fd`).
pub fn socket_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("/proc fd")
        .filter_map(Result::ok)
        .filter(|e| {
            std::fs::read_link(e.path()).is_ok_and(|t| t.to_string_lossy().starts_with("socket:"))
        })
        .count()
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs an admin subcommand to completion.
pub fn admin(database: &str, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("TESSERA_DATABASE_URL", database)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run tessera-demo")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A browser: the testkit's cookie jar (which it derefs to: cookies, the
/// anti-CSRF token) and requests to the demo over real HTTP.
#[derive(Clone, Default, Debug)]
pub struct Browser(pub CookieJar);

impl std::ops::Deref for Browser {
    type Target = CookieJar;
    fn deref(&self) -> &CookieJar {
        &self.0
    }
}

impl std::ops::DerefMut for Browser {
    fn deref_mut(&mut self) -> &mut CookieJar {
        &mut self.0
    }
}

pub struct Reply {
    pub status: u16,
    pub body: Value,
    /// The names of the cookies the response set or cleared, in order.
    pub set_cookies: Vec<String>,
}

/// A request that did not complete: the connection failed or was cut before
/// the whole response arrived (what a client sees when the server dies).
#[derive(Debug)]
pub struct NotAcknowledged(pub String);

impl Browser {
    pub async fn send(
        &mut self,
        base: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Reply {
        let client = reqwest::Client::new();
        let req = self.request_to(&client, base, method, path, body);
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        self.absorb(&headers);
        let text = res.text().await.unwrap();
        reply(status, &headers, text)
    }

    /// The request a browser would send: its cookies, the anti-CSRF header
    /// on anything but GET, and a JSON body.
    fn request_to(
        &self,
        client: &reqwest::Client,
        base: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> reqwest::RequestBuilder {
        let mut req = client
            .request(method.parse().unwrap(), format!("{base}{path}"))
            .headers(self.request_headers(method != "GET"));
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        req
    }

    /// Like [`Browser::send`] on a shared `client` (connection reuse, as a
    /// browser does), but a transport failure is returned instead of
    /// panicking, and cookies and the anti-CSRF token are taken from the
    /// response only once the whole response has arrived: a response cut
    /// short leaves the browser as it was before the request.
    pub async fn try_send(
        &mut self,
        client: &reqwest::Client,
        base: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Reply, NotAcknowledged> {
        let req = self.request_to(client, base, method, path, body);
        let res = req
            .send()
            .await
            .map_err(|e| NotAcknowledged(format!("{method} {path}: {e}")))?;
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let text = res
            .text()
            .await
            .map_err(|e| NotAcknowledged(format!("{method} {path}: body: {e}")))?;
        self.absorb(&headers);
        Ok(reply(status, &headers, text))
    }
}

fn reply(status: u16, headers: &http::HeaderMap, text: String) -> Reply {
    Reply {
        status,
        body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
        set_cookies: jar::set_cookie_names(headers),
    }
}

/// A small seeded pseudo-random generator (SplitMix64) so that a failing
/// run can be repeated with the seed it printed.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The seed from `var` if set (decimal), else a fresh random one.
    pub fn seed_from_env(var: &str) -> u64 {
        match std::env::var(var) {
            Ok(v) if !v.trim().is_empty() => v.trim().parse().expect("seed: a decimal u64"),
            _ => {
                let mut b = [0u8; 8];
                getrandom::getrandom(&mut b).expect("OS random source");
                u64::from_le_bytes(b)
            }
        }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// An environment variable parsed as a number, or `default` when unset.
pub fn env_number<T: std::str::FromStr>(var: &str, default: T) -> T {
    match std::env::var(var) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{var}={v:?} is not a number")),
        _ => default,
    }
}

/// The backends a soak test runs on: those available, narrowed by
/// `TESSERA_SOAK_BACKENDS` (e.g. `sqlite,postgres`). A missing PostgreSQL or
/// MySQL URL is reported under `suite`, and fails the test when
/// `TESSERA_REQUIRE_ALL_BACKENDS=1`.
pub fn soak_backends(suite: &str) -> Vec<tessera_sqlx::testing::Backend> {
    for var in ["TESSERA_TEST_POSTGRES_URL", "TESSERA_TEST_MYSQL_URL"] {
        if std::env::var(var).map_or(true, |v| v.trim().is_empty()) {
            assert!(
                std::env::var("TESSERA_REQUIRE_ALL_BACKENDS").as_deref() != Ok("1"),
                "{var} is not set"
            );
            println!("{suite}: {var} is not set, that backend is skipped");
        }
    }
    let wanted = std::env::var("TESSERA_SOAK_BACKENDS").unwrap_or_default();
    tessera_sqlx::testing::available_backends()
        .into_iter()
        .filter(|b| {
            wanted.trim().is_empty() || wanted.split(',').any(|w| w.trim() == b.to_string())
        })
        .collect()
}
