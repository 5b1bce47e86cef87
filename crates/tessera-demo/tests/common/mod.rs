//! Runs the real demo binary and talks to it over HTTP, keeping cookies and
//! the anti-CSRF token as a browser would.
#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

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
        let mut child = Command::new(BIN)
            .args(args)
            .env("TESSERA_DATABASE_URL", database)
            .env("TESSERA_LISTEN", "127.0.0.1:0")
            .env("TESSERA_DEMO_ACCESS_TOKEN_SECS", access_token_secs)
            .env("RUST_LOG", "warn")
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

#[derive(Clone, Default, Debug)]
pub struct Browser {
    pub cookies: BTreeMap<String, String>,
    pub anti_csrf: Option<String>,
}

pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub set_cookies: Vec<String>,
}

impl Browser {
    pub async fn send(
        &mut self,
        base: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Reply {
        let client = reqwest::Client::new();
        let mut req = client.request(method.parse().unwrap(), format!("{base}{path}"));
        if !self.cookies.is_empty() {
            let c: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            req = req.header("cookie", c.join("; "));
        }
        if method != "GET" {
            if let Some(t) = &self.anti_csrf {
                req = req.header("anti-csrf", t);
            }
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        let mut set_cookies = Vec::new();
        for v in res.headers().get_all("set-cookie") {
            let s = v.to_str().unwrap();
            let (name, value) = s.split(';').next().unwrap().split_once('=').unwrap();
            set_cookies.push(name.to_owned());
            if value.is_empty() {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        if let Some(t) = res.headers().get("anti-csrf") {
            self.anti_csrf = Some(t.to_str().unwrap().to_owned());
        }
        let text = res.text().await.unwrap();
        Reply {
            status,
            body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
            set_cookies,
        }
    }
}
