//! Bounds on what sign-in and sign-up can cost.
//!
//! * [`HashPool`]: Argon2id runs on a fixed set of threads, one per core,
//!   fed by a short bounded queue. Each hash holds 19 MiB while it runs, so
//!   at most `workers × 19 MiB` is in use however many requests arrive; a
//!   request that finds the queue full is answered 503 with `Retry-After` at
//!   once instead of waiting (and instead of a thread and 19 MiB of its own:
//!   150 concurrent sign-ins used to grow the process by 2.7 GiB).
//! * [`FailureLimiter`]: failed sign-ins per user name and per client
//!   address, as token buckets in two bounded in-memory tables. An empty
//!   bucket is answered 429 with `Retry-After` before any hashing.
//!
//! Both are per process: several instances behind a load balancer each
//! apply them on their own, so the effective limits are that many times
//! higher. A shared store (the database, Redis) would be needed to make them
//! global.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

type Job = Box<dyn FnOnce() + Send + 'static>;

/// The hashing threads are busy and the queue is full: try again shortly.
#[derive(Debug)]
pub(crate) struct Busy;

/// What [`HashPool::run`] can fail with.
#[derive(Debug)]
pub(crate) enum HashError {
    /// Saturated: answer 503 with `Retry-After`.
    Busy(Busy),
    /// The job panicked (a bug); answer 500.
    Panicked,
}

/// A fixed set of threads for password hashing with a bounded queue.
#[derive(Clone)]
pub(crate) struct HashPool {
    queue: SyncSender<Job>,
}

/// Hashes queued per hashing thread beyond those running. One Argon2id hash
/// (19 MiB, 2 passes) takes some 20–40 ms of one core, so a full queue is
/// 0.2–0.3 s of waiting: short enough that a queued request is answered long
/// before a browser gives up, long enough to absorb a burst of real sign-ins
/// (64 at once on two cores still gets most of them through). A request kept
/// waiting costs only its password string, but waiting longer helps nobody:
/// past that the machine is saturated and `Retry-After` is the honest answer.
pub(crate) const QUEUE_PER_WORKER: usize = 8;

/// Seconds a client told "busy" should wait: the queue drains in well under
/// a second.
pub(crate) const BUSY_RETRY_AFTER_SECS: u64 = 1;

impl HashPool {
    /// One thread per core (`std::thread::available_parallelism`): hashing
    /// is pure CPU, more threads would only share the same cores while
    /// holding more memory.
    pub(crate) fn for_this_machine() -> HashPool {
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
        HashPool::new(workers, workers * QUEUE_PER_WORKER)
    }

    pub(crate) fn new(workers: usize, queue: usize) -> HashPool {
        let (tx, rx) = sync_channel::<Job>(queue);
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..workers.max(1) {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("password-hash-{i}"))
                .spawn(move || worker(&rx))
                .expect("cannot start a password-hashing thread");
        }
        HashPool { queue: tx }
    }

    /// Runs `f` on a hashing thread and returns its result, or
    /// [`HashError::Busy`] at once if every thread is busy and the queue is
    /// full. The async caller only awaits; no runtime thread is blocked.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(f());
        });
        match self.queue.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(HashError::Busy(Busy)),
            Err(TrySendError::Disconnected(_)) => return Err(HashError::Panicked),
        }
        // The sender is dropped without a value only if `f` panicked.
        rx.await.map_err(|_| HashError::Panicked)
    }
}

fn worker(rx: &Mutex<Receiver<Job>>) {
    loop {
        let job = match rx.lock() {
            Ok(queue) => queue.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        // A panicking job loses its answer (the caller sees `Panicked`), not
        // the thread.
        let _ = catch_unwind(AssertUnwindSafe(job));
    }
}

// -- failed sign-ins ------------------------------------------------------------

/// Failed sign-ins allowed for one user name before it is throttled. A
/// person who mistypes rarely fails more than a few times in a row.
pub(crate) const NAME_BURST: f64 = 5.0;
/// Then one more attempt per minute for that name: online guessing against
/// one account is held to 1,440 guesses a day, from however many addresses.
pub(crate) const NAME_REFILL_PER_SEC: f64 = 1.0 / 60.0;
/// Failed sign-ins allowed from one client address (IPv6: one /64, what a
/// single host usually gets) across all names: room for several people
/// behind one NAT mistyping.
pub(crate) const ADDRESS_BURST: f64 = 20.0;
/// Then one attempt per 30 s from that address: spraying many names from
/// one host is held to 120 guesses an hour.
pub(crate) const ADDRESS_REFILL_PER_SEC: f64 = 1.0 / 30.0;
/// Entries per table. An entry is well under 100 bytes, so each table stays
/// under about 1 MB whatever an attacker sends. When a table is full the
/// entry closest to a full bucket (the least throttled) is dropped, so a
/// flood of fresh names or addresses evicts its own entries, not those of a
/// throttled victim.
pub(crate) const MAX_ENTRIES: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets keyed by `K`, at most `max_entries` of them. A key without
/// an entry has a full bucket.
struct Buckets<K> {
    map: HashMap<K, Bucket>,
    burst: f64,
    per_sec: f64,
    max_entries: usize,
}

impl<K: Hash + Eq + Clone> Buckets<K> {
    fn new(burst: f64, per_sec: f64, max_entries: usize) -> Self {
        Buckets {
            map: HashMap::new(),
            burst,
            per_sec,
            max_entries: max_entries.max(1),
        }
    }

    fn level_of(&self, b: &Bucket, now: Instant) -> f64 {
        let refill = now.saturating_duration_since(b.at).as_secs_f64() * self.per_sec;
        (b.tokens + refill).min(self.burst)
    }

    fn level(&self, key: &K, now: Instant) -> f64 {
        self.map
            .get(key)
            .map_or(self.burst, |b| self.level_of(b, now))
    }

    /// How long until `level` reaches one token.
    fn wait_for_token(&self, level: f64) -> Duration {
        Duration::from_secs_f64(((1.0 - level).max(0.0) / self.per_sec).max(0.0))
    }

    fn set(&mut self, key: &K, tokens: f64, now: Instant) {
        if tokens >= self.burst {
            // A full bucket carries no information.
            self.map.remove(key);
            return;
        }
        if !self.map.contains_key(key) && self.map.len() >= self.max_entries {
            self.evict(now);
        }
        self.map.insert(key.clone(), Bucket { tokens, at: now });
    }

    /// Drops the entry nearest to a full bucket.
    fn evict(&mut self, now: Instant) {
        let fullest = self
            .map
            .iter()
            .map(|(k, b)| (k, self.level_of(b, now)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(k, _)| k.clone());
        if let Some(k) = fullest {
            self.map.remove(&k);
        }
    }

    fn add(&mut self, key: &K, delta: f64, now: Instant) {
        let level = self.level(key, now);
        self.set(key, level + delta, now);
    }
}

/// A client address as the limiter counts it: IPv4 whole, IPv6 by /64.
fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 => v4,
    }
}

struct Tables {
    names: Buckets<String>,
    addresses: Buckets<IpAddr>,
}

/// Failed sign-ins per user name and per client address (see the constants).
#[derive(Clone)]
pub(crate) struct FailureLimiter {
    tables: Arc<Mutex<Tables>>,
}

impl FailureLimiter {
    pub(crate) fn new() -> FailureLimiter {
        FailureLimiter::with_limits(
            (NAME_BURST, NAME_REFILL_PER_SEC),
            (ADDRESS_BURST, ADDRESS_REFILL_PER_SEC),
            MAX_ENTRIES,
        )
    }

    fn with_limits(name: (f64, f64), address: (f64, f64), max_entries: usize) -> FailureLimiter {
        FailureLimiter {
            tables: Arc::new(Mutex::new(Tables {
                names: Buckets::new(name.0, name.1, max_entries),
                addresses: Buckets::new(address.0, address.1, max_entries),
            })),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tables> {
        // The tables stay consistent even if a holder panicked.
        self.tables.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts a sign-in attempt: takes a token from the name's bucket and
    /// the address's, or says how long to wait if either is empty. The
    /// attempt counts as failed unless [`Attempt::succeeded`] or
    /// [`Attempt::not_made`] is called, so an attempt abandoned half-way
    /// (the client disconnected during hashing) still counts, and concurrent
    /// attempts cannot all slip past a nearly empty bucket.
    pub(crate) fn begin(&self, name: &str, ip: IpAddr) -> Result<Attempt, Duration> {
        let now = Instant::now();
        let addr = address_key(ip);
        let name = name.to_owned();
        let mut t = self.lock();
        let (n, a) = (t.names.level(&name, now), t.addresses.level(&addr, now));
        if n < 1.0 || a < 1.0 {
            let wait = [
                (n < 1.0).then(|| t.names.wait_for_token(n)),
                (a < 1.0).then(|| t.addresses.wait_for_token(a)),
            ]
            .into_iter()
            .flatten()
            .max()
            .unwrap_or_default();
            return Err(wait);
        }
        t.names.set(&name, n - 1.0, now);
        t.addresses.set(&addr, a - 1.0, now);
        Ok(Attempt {
            limiter: self.clone(),
            key: Some((name, addr)),
        })
    }
}

/// One sign-in attempt in progress; counts as a failure when dropped.
pub(crate) struct Attempt {
    limiter: FailureLimiter,
    key: Option<(String, IpAddr)>,
}

impl Attempt {
    /// The password was right: the name's failures are forgotten and the
    /// address gets its token back.
    pub(crate) fn succeeded(mut self) {
        if let Some((name, addr)) = self.key.take() {
            let now = Instant::now();
            let mut t = self.limiter.lock();
            t.names.map.remove(&name);
            t.addresses.add(&addr, 1.0, now);
        }
    }

    /// No password was checked (the server was busy or failed): both tokens
    /// go back.
    pub(crate) fn not_made(mut self) {
        if let Some((name, addr)) = self.key.take() {
            let now = Instant::now();
            let mut t = self.limiter.lock();
            t.names.add(&name, 1.0, now);
            t.addresses.add(&addr, 1.0, now);
        }
    }
}

/// `Retry-After` in whole seconds, at least one.
pub(crate) fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs_f64().ceil().max(1.0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn names_and_addresses_run_out_separately() {
        let l = FailureLimiter::with_limits((3.0, 1e-6), (5.0, 1e-6), 100);
        for _ in 0..3 {
            drop(l.begin("ann", ip("10.0.0.1")).unwrap());
        }
        let wait = l.begin("ann", ip("10.0.0.2")).map(|_| ()).unwrap_err();
        assert!(wait > Duration::from_secs(1000), "{wait:?}");
        // Another name from the same address still has room (5 - 3 = 2).
        l.begin("bob", ip("10.0.0.1")).unwrap().succeeded();
        drop(l.begin("bob", ip("10.0.0.1")).unwrap());
        drop(l.begin("cat", ip("10.0.0.1")).unwrap());
        assert!(l.begin("dan", ip("10.0.0.1")).is_err(), "address empty");
        assert!(l.begin("dan", ip("10.0.0.3")).is_ok());
    }

    #[test]
    fn success_resets_the_name_and_not_made_gives_back() {
        let l = FailureLimiter::with_limits((2.0, 1e-6), (100.0, 1e-6), 100);
        drop(l.begin("ann", ip("10.0.0.1")).unwrap());
        l.begin("ann", ip("10.0.0.1")).unwrap().succeeded();
        for _ in 0..5 {
            l.begin("ann", ip("10.0.0.1")).unwrap().not_made();
        }
        drop(l.begin("ann", ip("10.0.0.1")).unwrap());
        drop(l.begin("ann", ip("10.0.0.1")).unwrap());
        assert!(l.begin("ann", ip("10.0.0.1")).is_err());
    }

    #[test]
    fn tables_stay_bounded_and_keep_the_throttled() {
        let l = FailureLimiter::with_limits((2.0, 1e-6), (1e9, 0.0), 50);
        drop(l.begin("victim", ip("10.0.0.1")).unwrap());
        drop(l.begin("victim", ip("10.0.0.1")).unwrap());
        for i in 0..1000 {
            drop(l.begin(&format!("spray{i}"), ip("10.0.0.1")).unwrap());
        }
        assert!(l.lock().names.map.len() <= 50);
        assert!(l.begin("victim", ip("10.0.0.9")).is_err(), "not evicted");
    }

    #[test]
    fn ipv6_counts_by_slash_64() {
        assert_eq!(
            address_key(ip("2001:db8:1:2:aaaa::1")),
            address_key(ip("2001:db8:1:2:bbbb::2"))
        );
        assert_ne!(
            address_key(ip("2001:db8:1:2::1")),
            address_key(ip("2001:db8:1:3::1"))
        );
        assert_eq!(address_key(ip("::ffff:10.0.0.1")), ip("10.0.0.1"));
    }

    #[tokio::test]
    async fn the_pool_answers_busy_beyond_its_queue() {
        let pool = HashPool::new(1, 1);
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let (started_tx, started_rx) = std::sync::mpsc::channel::<()>();
        // The only worker runs a job that waits for `release`...
        let blocker: Job = Box::new(move || {
            started_tx.send(()).unwrap();
            release_rx.recv().unwrap();
        });
        assert!(pool.queue.try_send(blocker).is_ok());
        started_rx.recv().unwrap();
        // ...one more job fills the queue, and the next is refused at once.
        assert!(pool.queue.try_send(Box::new(|| {})).is_ok());
        assert!(matches!(pool.run(|| 3).await, Err(HashError::Busy(_))));
        release_tx.send(()).unwrap();
        // Busy until the worker has drained the queue.
        let four = loop {
            match pool.run(|| 4).await {
                Err(HashError::Busy(_)) => tokio::time::sleep(Duration::from_millis(5)).await,
                r => break r.unwrap(),
            }
        };
        assert_eq!(four, 4);
        // A panicking job loses its answer, not the worker.
        assert!(matches!(
            pool.run(|| panic!("a bug")).await,
            Err(HashError::Panicked)
        ));
        assert_eq!(pool.run(|| 5).await.unwrap(), 5);
    }
}
