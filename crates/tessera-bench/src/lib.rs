//! # Tessera benchmarks
//!
//! Benchmarks, not tests: three binaries that measure Tessera on the machine
//! they run on and print Markdown that `scripts/bench.sh` assembles into
//! `BENCHMARKS.md`.
//!
//! * `bench-core`: `get_session` on a valid access token with anti-CSRF on,
//!   from the `Cookie` header to the [`tessera::Session`], with no database,
//!   against the bare HMAC-SHA256 of the same token (the physical floor),
//!   plus a breakdown of the path into its parts.
//! * `bench-store`: `create_new_session`, `refresh_session` and
//!   `revoke_session` on SQLite, PostgreSQL and MariaDB with 1, 2, 8 and 32
//!   concurrent tasks, durable commits.
//! * `bench-scale`: a table of 1,000,000 sessions; listing and revoking the
//!   10,000 sessions of one user; removing 500,000 expired sessions while
//!   `get_session` and `refresh_session` keep being served; the query plans.
//!
//! ## Method
//!
//! This crate has its own small harness instead of criterion (fewer
//! dependencies to build on a 2-core machine, and control over the one thing
//! that matters here): **every ratio is taken between measurements made in
//! the same process, interleaved in time.** Each benchmark is first warmed up
//! and calibrated so that one sample lasts a fixed time; then the samples of
//! all benchmarks being compared are taken in turns (A, B, C, A, B, C, …), so
//! that a noisy neighbour slows all of them alike. We report the minimum (the
//! least disturbed run, the best estimate of the cost of the code) and the
//! median (what a typical moment on this machine gives) of the per-sample
//! means. Throughput runs are repeated in rounds and report the median round
//! and the spread.
//!
//! `--quick` shrinks every iteration count and duration so that the whole
//! suite runs in about a minute: CI uses it to check that the benchmarks
//! build and run, and its numbers mean nothing.
#![warn(missing_docs)]

use std::fmt::Write as _;
use std::time::{Duration, Instant};

/// Command-line options shared by the three binaries.
#[derive(Debug, Clone, Default)]
pub struct Opts {
    /// Tiny iteration counts: checks that the benchmark runs, nothing more.
    pub quick: bool,
    /// Backends to run on (`sqlite`, `postgres`, `mysql`); empty = all
    /// available (SQLite always, the others when their URL variable is set).
    pub backends: Vec<String>,
    /// Free arguments left after the known flags.
    pub rest: Vec<String>,
}

impl Opts {
    /// Parses `--quick` and `--backends a,b` from the process arguments.
    pub fn from_args() -> Opts {
        let mut opts = Opts::default();
        let mut args = std::env::args().skip(1);
        while let Some(a) = args.next() {
            match a.as_str() {
                "--quick" => opts.quick = true,
                "--backends" => {
                    let list = args.next().unwrap_or_default();
                    opts.backends = list
                        .split(',')
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect();
                }
                _ => opts.rest.push(a),
            }
        }
        opts
    }

    /// The backends to measure, in a fixed order.
    pub fn backends(&self) -> Vec<tessera_sqlx::testing::Backend> {
        use tessera_sqlx::testing::{available_backends, Backend};
        let all = available_backends();
        if self.backends.is_empty() {
            return all;
        }
        let wanted = |b: &Backend| self.backends.iter().any(|w| *w == b.to_string());
        let out: Vec<Backend> = all.into_iter().filter(wanted).collect();
        for w in &self.backends {
            if !out.iter().any(|b| b.to_string() == *w) {
                eprintln!(
                    "warning: backend {w:?} is not available (is its TESSERA_TEST_*_URL set?)"
                );
            }
        }
        out
    }

    /// How a micro-benchmark samples in this mode.
    pub fn sampling(&self) -> Sampling {
        if self.quick {
            Sampling {
                warmup: Duration::from_millis(20),
                sample: Duration::from_millis(2),
                samples: 3,
            }
        } else {
            Sampling {
                warmup: Duration::from_millis(500),
                sample: Duration::from_millis(20),
                samples: 41,
            }
        }
    }
}

/// How a micro-benchmark is sampled.
#[derive(Debug, Clone, Copy)]
pub struct Sampling {
    /// Time spent running each benchmark before sampling.
    pub warmup: Duration,
    /// Target duration of one sample (the iteration count is calibrated).
    pub sample: Duration,
    /// Samples per benchmark.
    pub samples: usize,
}

/// Summary of a set of per-operation times, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stats {
    /// Fastest sample.
    pub min: f64,
    /// Median sample.
    pub median: f64,
    /// 90th-percentile sample.
    pub p90: f64,
    /// Number of samples.
    pub n: usize,
}

/// Summarises samples (any unit).
pub fn summarize(mut v: Vec<f64>) -> Stats {
    assert!(!v.is_empty(), "no samples");
    v.sort_by(f64::total_cmp);
    Stats {
        min: v[0],
        median: percentile_sorted(&v, 50.0),
        p90: percentile_sorted(&v, 90.0),
        n: v.len(),
    }
}

/// The `p`-th percentile (nearest rank) of sorted values.
pub fn percentile_sorted<T: Copy>(sorted: &[T], p: f64) -> T {
    assert!(!sorted.is_empty(), "no values");
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// One micro-benchmark: a closure that runs the operation `iters` times and
/// returns how long that took.
pub struct Micro<'a> {
    /// Name shown in the report.
    pub name: String,
    run: Box<dyn FnMut(u64) -> Duration + 'a>,
}

impl<'a> Micro<'a> {
    /// A benchmark of `run(iters) -> elapsed`.
    pub fn new(name: impl Into<String>, run: impl FnMut(u64) -> Duration + 'a) -> Self {
        Micro {
            name: name.into(),
            run: Box::new(run),
        }
    }
}

/// Warms up and calibrates every benchmark, then samples them interleaved.
/// Returns per-operation statistics in nanoseconds, in the input order.
pub fn compare(benches: &mut [Micro<'_>], s: Sampling) -> Vec<Stats> {
    let mut iters = Vec::with_capacity(benches.len());
    for b in benches.iter_mut() {
        // Warm up (caches, branch predictors, lazily loaded keys), doubling
        // the iteration count until one run lasts a sample's length.
        let start = Instant::now();
        let mut n: u64 = 1;
        let mut per_op = f64::INFINITY;
        while start.elapsed() < s.warmup || per_op.is_infinite() {
            let t = (b.run)(n);
            per_op = t.as_nanos() as f64 / n as f64;
            if t < s.sample && n < 1 << 40 {
                n *= 2;
            }
        }
        let calibrated = (s.sample.as_nanos() as f64 / per_op.max(0.1)).ceil() as u64;
        iters.push(calibrated.max(1));
    }
    let mut samples: Vec<Vec<f64>> = vec![Vec::with_capacity(s.samples); benches.len()];
    for _ in 0..s.samples {
        for (i, b) in benches.iter_mut().enumerate() {
            let t = (b.run)(iters[i]);
            samples[i].push(t.as_nanos() as f64 / iters[i] as f64);
        }
    }
    samples.into_iter().map(summarize).collect()
}

/// Formats nanoseconds with a unit suited to the size.
pub fn fmt_ns(ns: f64) -> String {
    if ns < 1_000.0 {
        format!("{ns:.0} ns")
    } else if ns < 1_000_000.0 {
        format!("{:.2} µs", ns / 1_000.0)
    } else if ns < 1_000_000_000.0 {
        format!("{:.2} ms", ns / 1_000_000.0)
    } else {
        format!("{:.2} s", ns / 1_000_000_000.0)
    }
}

/// Formats a duration like [`fmt_ns`].
pub fn fmt_dur(d: Duration) -> String {
    fmt_ns(d.as_nanos() as f64)
}

/// Formats a rate with thousands separators.
pub fn fmt_rate(per_sec: f64) -> String {
    let n = per_sec.round() as u64;
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A Markdown document under construction.
#[derive(Debug, Default)]
pub struct Report {
    md: String,
}

impl Report {
    /// An empty report.
    pub fn new() -> Self {
        Report::default()
    }

    /// A heading of the given level.
    pub fn heading(&mut self, level: usize, text: &str) {
        let _ = writeln!(self.md, "\n{} {text}\n", "#".repeat(level));
    }

    /// A paragraph.
    pub fn para(&mut self, text: &str) {
        let _ = writeln!(self.md, "{text}\n");
    }

    /// A table.
    pub fn table(&mut self, header: &[&str], rows: &[Vec<String>]) {
        let _ = writeln!(self.md, "| {} |", header.join(" | "));
        let _ = writeln!(
            self.md,
            "|{}",
            header.iter().map(|_| "---|").collect::<String>()
        );
        for r in rows {
            let _ = writeln!(self.md, "| {} |", r.join(" | "));
        }
        self.md.push('\n');
    }

    /// A fenced code block.
    pub fn code(&mut self, lang: &str, text: &str) {
        let _ = writeln!(self.md, "```{lang}\n{}\n```\n", text.trim_end());
    }

    /// The Markdown text.
    pub fn into_string(self) -> String {
        self.md
    }

    /// Prints the report to standard output (where `scripts/bench.sh` reads it).
    pub fn print(self) {
        print!("{}", self.md);
    }
}

/// Facts about the machine for the report header.
pub fn machine_summary() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    format!("{cpu}, {cores} cores")
}

/// A current-thread Tokio runtime (micro-benchmarks: no thread hops).
pub fn current_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// A multi-thread Tokio runtime with one worker per core (store benchmarks).
pub fn multi_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Per-operation latencies collected by concurrent tasks, in nanoseconds.
#[derive(Debug, Default, Clone)]
pub struct Latencies(pub Vec<u64>);

impl Latencies {
    /// Adds the latencies of another task.
    pub fn extend(&mut self, other: Latencies) {
        self.0.extend(other.0);
    }

    /// (p50, p99, max) in nanoseconds; zeros when empty.
    pub fn p50_p99_max(&mut self) -> (f64, f64, f64) {
        if self.0.is_empty() {
            return (0.0, 0.0, 0.0);
        }
        self.0.sort_unstable();
        (
            percentile_sorted(&self.0, 50.0) as f64,
            percentile_sorted(&self.0, 99.0) as f64,
            *self.0.last().unwrap_or(&0) as f64,
        )
    }
}

/// The value of cookie `name` in a response's `Set-Cookie` headers.
pub fn set_cookie_value(response: &http::HeaderMap, name: &str) -> Option<String> {
    response
        .get_all(http::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            let first = v.split(';').next()?;
            let (n, value) = first.split_once('=')?;
            (n == name).then(|| value.to_owned())
        })
}

/// A request carrying the given cookies in one `Cookie` header, as a
/// browser sends them.
pub fn request_with_cookies(cookies: &[(&str, &str)]) -> http::HeaderMap {
    let joined = cookies
        .iter()
        .map(|(n, v)| format!("{n}={v}"))
        .collect::<Vec<_>>()
        .join("; ");
    let mut h = http::HeaderMap::new();
    h.insert(
        http::header::COOKIE,
        http::HeaderValue::from_str(&joined).expect("cookie values are header-safe"),
    );
    h
}

/// What each backend does to make a commit durable, read from the server.
pub async fn durability_note(store: &tessera_sqlx::SqlStore) -> String {
    use tessera_sqlx::SqlStore;
    match store {
        SqlStore::Sqlite(s) => {
            let mode: Result<(String,), _> = sqlx::query_as("PRAGMA journal_mode")
                .fetch_one(s.pool())
                .await;
            let sync: Result<(i64,), _> = sqlx::query_as("PRAGMA synchronous")
                .fetch_one(s.pool())
                .await;
            format!(
                "SQLite journal_mode={}, synchronous={} (2 = FULL: every commit is fsynced)",
                mode.map(|m| m.0).unwrap_or_else(|_| "?".into()),
                sync.map(|m| m.0.to_string()).unwrap_or_else(|_| "?".into())
            )
        }
        SqlStore::Postgres(s) => {
            let v: Result<(String, String, String), _> = sqlx::query_as(
                "SELECT current_setting('server_version'), current_setting('synchronous_commit'), \
                 current_setting('fsync')",
            )
            .fetch_one(s.pool())
            .await;
            match v {
                Ok((ver, sc, fsync)) => {
                    format!("PostgreSQL {ver}, synchronous_commit={sc}, fsync={fsync}")
                }
                Err(e) => format!("PostgreSQL (settings unreadable: {e})"),
            }
        }
        SqlStore::MySql(s) => {
            let v: Result<(String, i64), _> = sqlx::query_as(
                "SELECT CAST(@@version AS CHAR), CAST(@@innodb_flush_log_at_trx_commit AS SIGNED)",
            )
            .fetch_one(s.pool())
            .await;
            match v {
                Ok((ver, f)) => format!("MariaDB/MySQL {ver}, innodb_flush_log_at_trx_commit={f}"),
                Err(e) => format!("MySQL (settings unreadable: {e})"),
            }
        }
        #[allow(unreachable_patterns)]
        _ => "unknown store".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_formatting() {
        let s = summarize(vec![5.0, 1.0, 3.0, 2.0, 4.0]);
        assert_eq!((s.min, s.median, s.p90, s.n), (1.0, 3.0, 5.0, 5));
        assert_eq!(percentile_sorted(&[10, 20, 30, 40], 50.0), 20);
        assert_eq!(fmt_rate(1234567.4), "1,234,567");
        assert_eq!(fmt_rate(999.0), "999");
        assert_eq!(fmt_ns(612.4), "612 ns");
        assert_eq!(fmt_ns(1_500.0), "1.50 µs");
    }
}
