//! Private database servers that a fault test may stop, kill and restart.
//!
//! The shared servers on 5432 / 3306 are never touched: each [`Instance`]
//! initialises its own data directory under the temp dir, listens on a free
//! port on 127.0.0.1 and is owned by the test:
//!
//! * the server is a direct child of the test process (PostgreSQL's
//!   postmaster runs as the `postgres` user through `Command::uid`, with no
//!   `pg_ctl` or `runuser` in between), so the test reaps it and a `kill -9`
//!   leaves no stale lock file behind;
//! * `Drop` kills the server (`SIGKILL`) and removes the directory, also when
//!   the test panics;
//! * a watchdog shell waits for the test process to die and then does the
//!   same, so that not even a test killed with `SIGKILL` leaves a server
//!   running.

use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Postgres,
    MariaDb,
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Kind::Postgres => "postgres",
            Kind::MariaDb => "mariadb",
        })
    }
}

/// How to take the server down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// PostgreSQL fast shutdown (SIGINT: sessions are terminated, a
    /// checkpoint is written); MariaDB normal shutdown (SIGTERM).
    Clean,
    /// `kill -9` of the server, and on PostgreSQL of every backend too: a
    /// crash. The restart runs crash recovery.
    Kill9,
}

pub(crate) struct Instance {
    pub(crate) kind: Kind,
    pub(crate) port: u16,
    dir: PathBuf,
    server: Option<Child>,
    watchdog: Option<Child>,
    /// uid/gid the PostgreSQL server runs as.
    pg_ids: (u32, u32),
    /// Processes stopped by [`Instance::freeze`], to continue on thaw.
    frozen: Vec<u32>,
}

fn lookup_ids(user: &str) -> (u32, u32) {
    let passwd = std::fs::read_to_string("/etc/passwd").expect("read /etc/passwd");
    for line in passwd.lines() {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() > 3 && f[0] == user {
            return (f[2].parse().unwrap(), f[3].parse().unwrap());
        }
    }
    panic!("no user {user} in /etc/passwd");
}

/// Where reserved ports are recorded (one empty file per port), so that two
/// test processes never pick the same one.
fn port_reservations() -> PathBuf {
    std::env::temp_dir().join("tessera-faults-ports")
}

/// A free port of our own for the whole life of the instance.
///
/// Not `bind(0)`: that hands out ephemeral ports, and while our server is
/// stopped (the outage) its port is free again, so another test's server
/// started with `bind(0)` could take it and our clients would silently reach
/// the wrong database. So: a random port below the kernel's ephemeral range
/// (32768 and up; neither `bind(0)` nor outgoing connections use it),
/// reserved with an exclusive file until `Drop`.
fn free_port() -> u16 {
    let dir = port_reservations();
    std::fs::create_dir_all(&dir).unwrap();
    for _ in 0..1000 {
        let mut b = [0u8; 2];
        getrandom::getrandom(&mut b).unwrap();
        let port = 20_000 + u16::from_le_bytes(b) % 12_000;
        let reserved = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(dir.join(port.to_string()));
        if reserved.is_err() {
            continue;
        }
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
        let _ = std::fs::remove_file(dir.join(port.to_string()));
    }
    panic!("no free port in 20000..32000");
}

fn random_suffix() -> String {
    let mut b = [0u8; 6];
    getrandom::getrandom(&mut b).unwrap();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The fields of a /proc `stat` file after the command name ("state ppid
/// …"): "pid (comm) state …", where comm may hold spaces, so split after
/// the last ')'.
fn stat_fields(path: &str) -> Option<String> {
    let stat = std::fs::read_to_string(path).ok()?;
    stat.rsplit_once(')').map(|(_, rest)| rest.to_owned())
}

/// The direct children of `pid` (from /proc).
fn children_of(pid: u32) -> Vec<u32> {
    let mut kids = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return kids;
    };
    for entry in dir.flatten() {
        let Ok(p) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Some(stat) = stat_fields(&format!("/proc/{p}/stat")) else {
            continue;
        };
        let mut f = stat.split_whitespace();
        let (_state, ppid) = (f.next(), f.next());
        if ppid.and_then(|x| x.parse::<u32>().ok()) == Some(pid) {
            kids.push(p);
        }
    }
    kids
}

/// Whether every thread of `pid` is stopped ('T') or exited (zombie), from
/// /proc/PID/task/*/stat. A process that is gone counts as stopped.
fn all_threads_stopped(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return true;
    };
    tasks.flatten().all(|t| {
        let Some(stat) = stat_fields(&t.path().join("stat").to_string_lossy()) else {
            return true;
        };
        let state = stat.split_whitespace().next();
        // Stopped, or exited (a zombie backend counts: it answers nothing).
        matches!(state, Some("T" | "t" | "Z" | "X" | "x"))
    })
}

fn signal(sig: &str, pids: &[u32]) {
    if pids.is_empty() {
        return;
    }
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .args(pids.iter().map(u32::to_string))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

impl Instance {
    /// Initialises and starts a private server; returns once it accepts
    /// TCP connections (the caller still waits for it to answer queries).
    pub(crate) fn start(kind: Kind) -> Instance {
        let dir = std::env::temp_dir().join(format!("tessera-faults-{kind}-{}", random_suffix()));
        std::fs::create_dir_all(&dir).unwrap();
        let pg_ids = lookup_ids("postgres");
        let mut inst = Instance {
            kind,
            port: free_port(),
            dir,
            server: None,
            watchdog: None,
            pg_ids,
            frozen: Vec::new(),
        };
        match kind {
            Kind::Postgres => {
                std::os::unix::fs::chown(&inst.dir, Some(pg_ids.0), Some(pg_ids.1)).unwrap();
                std::fs::set_permissions(&inst.dir, std::fs::Permissions::from_mode(0o700))
                    .unwrap();
                run(
                    Command::new(format!("{PG_BIN}/initdb"))
                        .uid(pg_ids.0)
                        .gid(pg_ids.1)
                        .env("HOME", &inst.dir)
                        .current_dir(&inst.dir)
                        .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"])
                        .arg("-D")
                        .arg(inst.dir.join("data")),
                    "initdb",
                );
            }
            Kind::MariaDb => {
                run(
                    Command::new("mariadb-install-db")
                        .arg("--no-defaults")
                        .arg(format!("--datadir={}", inst.dir.join("data").display()))
                        .args([
                            "--user=root",
                            "--auth-root-authentication-method=normal",
                            "--skip-test-db",
                        ]),
                    "mariadb-install-db",
                );
            }
        }
        inst.spawn_watchdog();
        inst.launch();
        inst
    }

    /// The URL the store under test connects to.
    pub(crate) fn url(&self) -> String {
        match self.kind {
            Kind::Postgres => format!("postgres://postgres@127.0.0.1:{}/postgres", self.port),
            Kind::MariaDb => format!("mysql://root@127.0.0.1:{}/tessera", self.port),
        }
    }

    /// A URL for administration (the MariaDB database may not exist yet).
    pub(crate) fn admin_url(&self) -> String {
        match self.kind {
            Kind::Postgres => self.url(),
            Kind::MariaDb => format!("mysql://root@127.0.0.1:{}/mysql", self.port),
        }
    }

    fn pid_file(&self) -> PathBuf {
        self.dir.join("server.pid")
    }

    fn launch(&mut self) {
        assert!(self.server.is_none(), "server already running");
        let data = self.dir.join("data");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("server.log"))
            .unwrap();
        let mut cmd = match self.kind {
            Kind::Postgres => {
                let mut c = Command::new(format!("{PG_BIN}/postgres"));
                c.uid(self.pg_ids.0)
                    .gid(self.pg_ids.1)
                    .arg("-D")
                    .arg(&data)
                    .arg("-p")
                    .arg(self.port.to_string())
                    .arg("-k")
                    .arg(&self.dir)
                    .args(["-c", "listen_addresses=127.0.0.1"])
                    .args(["-c", "max_connections=60"])
                    .args(["-c", "shared_buffers=16MB"]);
                c
            }
            Kind::MariaDb => {
                let mut c = Command::new("mariadbd");
                c.arg("--no-defaults")
                    .arg(format!("--datadir={}", data.display()))
                    .arg(format!("--port={}", self.port))
                    .arg(format!("--socket={}", self.dir.join("sock").display()))
                    .arg(format!(
                        "--pid-file={}",
                        self.dir.join("mariadb.pid").display()
                    ))
                    .args([
                        "--bind-address=127.0.0.1",
                        "--user=root",
                        "--innodb-buffer-pool-size=32M",
                        "--max-connections=60",
                    ]);
                c
            }
        };
        let child = cmd
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start the database server");
        std::fs::write(self.pid_file(), child.id().to_string()).unwrap();
        self.server = Some(child);
        // Up when it accepts TCP connections.
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(child) = self.server.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!(
                        "{} server exited at start ({status}); log:\n{}",
                        self.kind,
                        self.log_tail()
                    );
                }
            }
            assert!(
                Instant::now() < deadline,
                "{} server did not start; log:\n{}",
                self.kind,
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub(crate) fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// Takes the server down and returns once the process is gone and the
    /// port refuses connections.
    pub(crate) fn stop(&mut self, how: Stop) {
        let Some(mut child) = self.server.take() else {
            return;
        };
        let pid = child.id();
        match how {
            Stop::Clean => {
                let sig = if self.kind == Kind::Postgres {
                    "INT"
                } else {
                    "TERM"
                };
                signal(sig, &[pid]);
                let deadline = Instant::now() + Duration::from_secs(60);
                loop {
                    if child.try_wait().ok().flatten().is_some() {
                        break;
                    }
                    if Instant::now() > deadline {
                        let _ = child.kill();
                        let _ = child.wait();
                        panic!("{} did not shut down within 60 s", self.kind);
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
            Stop::Kill9 => {
                // The postmaster first (so it does not restart its children),
                // then every backend: the whole server dies at once.
                // SIGSTOP first so that no backend is forked in between.
                signal("STOP", &[pid]);
                let kids = children_of(pid);
                let _ = child.kill();
                signal("KILL", &kids);
                let _ = child.wait();
                // Backends are reparented; wait until none is left running
                // (they hold the shared memory and their sockets).
                let deadline = Instant::now() + Duration::from_secs(10);
                while kids.iter().any(|k| {
                    std::fs::read_to_string(format!("/proc/{k}/stat")).is_ok_and(|s| {
                        !s.rsplit_once(')')
                            .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
                    })
                }) && Instant::now() < deadline
                {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
        let _ = std::fs::remove_file(self.pid_file());
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            assert!(Instant::now() < deadline, "port still open after stop");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Freezes the server without closing anything: SIGSTOP to the server
    /// and, on PostgreSQL, to every backend (the postmaster first, so that it
    /// forks none in between). Open connections stay open and the kernel
    /// still accepts new ones into the listen queue, but nothing answers: a
    /// hung host, or a network that silently drops packets.
    pub(crate) fn freeze(&mut self) {
        let pid = self.server.as_ref().expect("a running server").id();
        signal("STOP", &[pid]);
        let mut all = vec![pid];
        all.extend(children_of(pid));
        signal("STOP", &all);
        // `kill` returns once the signal is queued, not once the process has
        // stopped: on a loaded machine a server thread can go on answering
        // for a few milliseconds. The outage starts when every thread of
        // every process is seen stopped.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !all.iter().all(|&p| all_threads_stopped(p)) {
            assert!(
                Instant::now() < deadline,
                "the server did not stop on SIGSTOP"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        self.frozen = all;
    }

    /// Lets a frozen server go on where it stopped.
    pub(crate) fn thaw(&mut self) {
        signal("CONT", &std::mem::take(&mut self.frozen));
    }

    /// Starts the stopped server again on the same port and data directory.
    pub(crate) fn restart(&mut self) {
        self.launch();
    }

    /// A watchdog that outlives the test process only to clean up after it.
    fn spawn_watchdog(&mut self) {
        let script = format!(
            "while kill -0 {me} 2>/dev/null; do sleep 1; done; \
             if [ -f {pidf} ]; then kill -9 $(cat {pidf}) 2>/dev/null; fi; \
             sleep 1; rm -rf {dir}",
            me = std::process::id(),
            pidf = sh_quote(&self.pid_file()),
            dir = sh_quote(&self.dir),
        );
        let child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the watchdog");
        self.watchdog = Some(child);
    }
}

fn sh_quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', "'\\''"))
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Some(mut child) = self.server.take() {
            let kids = children_of(child.id());
            let _ = child.kill();
            signal("KILL", &kids);
            let _ = child.wait();
        }
        if let Some(mut w) = self.watchdog.take() {
            let _ = w.kill();
            let _ = w.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = std::fs::remove_file(port_reservations().join(self.port.to_string()));
    }
}
