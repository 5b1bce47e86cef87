//! # The Tessera demo
//!
//! `cargo run --release` from the repository root serves a small web
//! application on <http://127.0.0.1:3000> over an SQLite file
//! (`tessera-demo.sqlite` in the current directory): sign up, sign in, see
//! the session, edit its info, list and revoke sessions, log out here or
//! everywhere. The page refreshes expired access tokens by itself.
//!
//! The same binary has admin subcommands and the original walkthrough:
//!
//! ```text
//! tessera-demo [serve] [--listen ADDR]      the web application (default)
//! tessera-demo walkthrough                  the session lifecycle, printed step by step
//! tessera-demo sessions USER                list a user's sessions (USER: name or id)
//! tessera-demo revoke HANDLE                revoke one session
//! tessera-demo revoke-all USER              revoke every session of a user
//! tessera-demo cleanup [--batch-size N]     remove expired sessions, with progress
//! tessera-demo rotate-key                   replace the access-token signing key now
//! ```
//!
//! Settings: `--database` / `TESSERA_DATABASE_URL` (`sqlite://…`,
//! `postgres://…`, `mysql://…`), `--listen` / `TESSERA_LISTEN`,
//! `--access-token-secs` / `TESSERA_DEMO_ACCESS_TOKEN_SECS` (default 60, so
//! that refreshes happen while you watch; below 10 s only for tests),
//! `--access-token-algorithm` / `TESSERA_DEMO_ACCESS_TOKEN_ALGORITHM`
//! (`hs256`, the default, or `eddsa`, `es256`, `rs256`: signed with a key
//! pair whose public keys are served at `/.well-known/jwks.json`),
//! `--header-read-timeout-secs` / `TESSERA_DEMO_HEADER_READ_TIMEOUT_SECS`
//! (default 10: a client that has not sent a request's headers by then, or
//! an idle keep-alive connection, is disconnected), `--max-connections` /
//! `TESSERA_DEMO_MAX_CONNECTIONS` (default 1024, lowered to fit the
//! open-files limit; more connections wait until one closes).
//!
//! Sign-in and sign-up hash passwords (Argon2id, 19 MiB each) on one thread
//! per core with a short queue; when it is full they answer 503 with
//! `Retry-After`. Failed sign-ins are limited per user name (5, then one a
//! minute) and per client address (20, then one every 30 s), answered 429
//! with `Retry-After`; a successful sign-in clears the name's count.
//!
//! This is a **development configuration**: plain HTTP, so cookies are sent
//! without `Secure`. Serve a real deployment over HTTPS with the default
//! (secure) cookies.

mod admin;
mod limits;
mod listing;
mod server;
mod users;
mod walkthrough;

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Parser, Subcommand};
use tessera::{AccessTokenAlgorithm, Config, SessionManager};

fn parse_algorithm(s: &str) -> Result<AccessTokenAlgorithm, String> {
    AccessTokenAlgorithm::parse(s)
        .ok_or_else(|| format!("{s:?} is not one of hs256, eddsa, es256, rs256"))
}

#[derive(Parser)]
#[command(
    name = "tessera-demo",
    version,
    about = "The Tessera demo: a web application with sign-in and sessions, plus admin commands"
)]
struct Cli {
    /// Database URL: sqlite://FILE, postgres://…, mysql://…
    #[arg(
        long,
        global = true,
        env = "TESSERA_DATABASE_URL",
        default_value = "sqlite://tessera-demo.sqlite"
    )]
    database: String,

    /// Address the web server listens on.
    #[arg(
        long,
        global = true,
        env = "TESSERA_LISTEN",
        default_value = "127.0.0.1:3000"
    )]
    listen: SocketAddr,

    /// Access-token validity in seconds (values below 10 are for tests).
    #[arg(
        long,
        global = true,
        env = "TESSERA_DEMO_ACCESS_TOKEN_SECS",
        default_value_t = 60.0
    )]
    access_token_secs: f64,

    /// Access-token signature: hs256 (the reference format, the default),
    /// eddsa, es256 or rs256. With a key pair the public keys are served at
    /// /.well-known/jwks.json.
    #[arg(
        long,
        global = true,
        env = "TESSERA_DEMO_ACCESS_TOKEN_ALGORITHM",
        default_value = "hs256",
        value_parser = parse_algorithm
    )]
    access_token_algorithm: AccessTokenAlgorithm,

    /// Refresh grace window in seconds (0, the default, turns it off): a
    /// superseded refresh token reused this soon after its rotation gets a
    /// child of the committed one instead of counting as theft.
    #[arg(
        long,
        global = true,
        env = "TESSERA_DEMO_REFRESH_GRACE_SECS",
        default_value_t = 0.0
    )]
    refresh_grace_secs: f64,

    /// Record each session's client address (the sign-in request's peer
    /// address) and show it in the session list. Off by default: an IP
    /// address is personal data.
    #[arg(
        long,
        global = true,
        env = "TESSERA_DEMO_RECORD_CLIENT_ADDRESS",
        default_value_t = false
    )]
    record_client_address: bool,

    /// Idle timeout in seconds (default none): a session whose tokens were
    /// not rotated for this long is gone. Longer than the access-token
    /// validity.
    #[arg(long, global = true, env = "TESSERA_DEMO_IDLE_TIMEOUT_SECS")]
    idle_timeout_secs: Option<f64>,

    /// Absolute session lifetime in seconds (default none): a session older
    /// than this is gone whatever its refreshes.
    #[arg(long, global = true, env = "TESSERA_DEMO_ABSOLUTE_LIFETIME_SECS")]
    absolute_lifetime_secs: Option<f64>,

    /// Seconds a client may take to send a request's headers (and how long
    /// an idle keep-alive connection stays open); then it is disconnected.
    #[arg(
        long,
        global = true,
        env = "TESSERA_DEMO_HEADER_READ_TIMEOUT_SECS",
        default_value_t = 10.0
    )]
    header_read_timeout_secs: f64,

    /// Most client connections served at once; more wait until one closes.
    #[arg(
        long,
        global = true,
        env = "TESSERA_DEMO_MAX_CONNECTIONS",
        default_value_t = 1024
    )]
    max_connections: usize,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the web application (the default command).
    Serve,
    /// Walk through a session's life with the core API and print each step.
    Walkthrough,
    /// List a user's live sessions (USER is a user name or a numeric id).
    Sessions { user: String },
    /// Revoke one session by its handle.
    Revoke { handle: String },
    /// Revoke every session of a user.
    RevokeAll { user: String },
    /// Remove expired sessions in batches, showing progress.
    Cleanup {
        /// Rows deleted per statement.
        #[arg(long, default_value_t = 1000)]
        batch_size: u32,
    },
    /// Replace the access-token signing key now.
    RotateKey,
}

/// The URL with any password replaced, for printing.
pub(crate) fn redact_url(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        if let Some((userinfo, host)) = rest.rsplit_once('@') {
            if let Some((user, _password)) = userinfo.split_once(':') {
                return format!("{scheme}://{user}:***@{host}");
            }
        }
    }
    url.to_owned()
}

fn database_kind(url: &str) -> &'static str {
    match url.split(':').next().unwrap_or_default() {
        "sqlite" => "SQLite",
        "postgres" | "postgresql" => "PostgreSQL",
        "mysql" | "mariadb" => "MySQL/MariaDB",
        _ => "unknown",
    }
}

/// Whether access tokens signed with the previous signing key stay valid
/// after a rotation (the core's `with_accept_previous_signing_key`). Off, as
/// in the reference library: a key change makes them refresh. The
/// `rotate-key` message depends on it.
pub(crate) const ACCEPT_PREVIOUS_SIGNING_KEY: bool = false;

/// A duration flag in seconds: `what` names it in the error.
fn secs_flag(
    value: f64,
    what: &str,
    zero_ok: bool,
) -> Result<Duration, Box<dyn std::error::Error>> {
    if !(value.is_finite() && (value > 0.0 || (zero_ok && value == 0.0))) || value > 1e12 {
        let expected = if zero_ok {
            "zero or a positive"
        } else {
            "a positive"
        };
        return Err(format!("{what} must be {expected} number of seconds").into());
    }
    Ok(Duration::from_secs_f64(value))
}

fn config(cli: &Cli) -> Result<Config, Box<dyn std::error::Error>> {
    let access_token_secs = cli.access_token_secs;
    let algorithm = cli.access_token_algorithm;
    if !(access_token_secs.is_finite() && access_token_secs > 0.0) {
        return Err("--access-token-secs must be a positive number".into());
    }
    let grace = secs_flag(cli.refresh_grace_secs, "--refresh-grace-secs", true)?;
    let idle = cli
        .idle_timeout_secs
        .map(|v| secs_flag(v, "--idle-timeout-secs", false))
        .transpose()?;
    let absolute = cli
        .absolute_lifetime_secs
        .map(|v| secs_flag(v, "--absolute-lifetime-secs", false))
        .transpose()?;
    // Development configuration: plain HTTP on localhost, so no `Secure`.
    let mut b = Config::builder()
        .with_cookie_secure(false)
        .with_accept_previous_signing_key(ACCEPT_PREVIOUS_SIGNING_KEY)
        // Besides the 4.2.0 front end: the current supertokens-website SDK
        // in cookie and header mode, and `Authorization: Bearer` API
        // clients (docs/PROTOCOL.md §9). Requests without `st-auth-mode`
        // keep the 4.2.0 profile.
        .with_current_sdk(Some(tessera::CurrentSdk::new("/auth")))
        .with_access_token_validity(Duration::from_secs_f64(access_token_secs))
        .with_access_token_algorithm(algorithm)
        .with_refresh_grace(grace)
        .with_record_client_address(cli.record_client_address)
        .with_idle_timeout(idle)
        .with_absolute_lifetime(absolute);
    if access_token_secs < 10.0 {
        eprintln!(
            "warning: access-token validity {access_token_secs} s is below the 10 s minimum; \
             allowed for tests only"
        );
        b = b.danger_allow_short_validity_for_tests();
    }
    Ok(b.build()?)
}

fn connection_limits(
    header_read_timeout_secs: f64,
    max_connections: usize,
) -> Result<server::ConnectionLimits, Box<dyn std::error::Error>> {
    if !(header_read_timeout_secs.is_finite() && header_read_timeout_secs > 0.0) {
        return Err("--header-read-timeout-secs must be a positive number".into());
    }
    if max_connections == 0 {
        return Err("--max-connections must be at least 1".into());
    }
    Ok(server::ConnectionLimits {
        header_read_timeout: Duration::from_secs_f64(header_read_timeout_secs),
        max_connections,
    })
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,tessera=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    if let Err(e) = run(Cli::parse()).await {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    // Checked here, reported only by the commands that use it.
    let config = config(&cli);
    let url = cli.database;
    let command = cli.command.unwrap_or(Command::Serve);
    if let Command::Walkthrough = command {
        return walkthrough::run(&url).await;
    }
    let store = tessera_sqlx::connect(&url)
        .await
        .map_err(|e| format!("cannot open {}: {e}", redact_url(&url)))?;
    let users = users::Users::open(&store)
        .await
        .map_err(|e| format!("cannot create the users table: {e}"))?;
    let manager = SessionManager::new(config?, store).await?;
    match command {
        Command::Serve => {
            println!(
                "Tessera demo: DEVELOPMENT CONFIGURATION (plain HTTP, cookies without Secure)"
            );
            println!("  database:           {}", redact_url(&url));
            println!(
                "  access tokens live: {} s (then the page refreshes them)",
                cli.access_token_secs
            );
            let alg = cli.access_token_algorithm;
            if alg.is_asymmetric() {
                println!(
                    "  access tokens:      {} signatures; public keys at {}",
                    alg.jws_name(),
                    tessera_axum::JWKS_PATH
                );
            } else {
                println!("  access tokens:      HS256 (the reference format; no JWKS)");
            }
            let limits = connection_limits(cli.header_read_timeout_secs, cli.max_connections)?;
            server::serve(manager, users, database_kind(&url), cli.listen, limits).await
        }
        Command::Walkthrough => unreachable!("handled above"),
        Command::Sessions { user } => admin::list(&manager, &users, &user).await,
        Command::Revoke { handle } => admin::revoke(&manager, &handle).await,
        Command::RevokeAll { user } => admin::revoke_all(&manager, &users, &user).await,
        Command::Cleanup { batch_size } => admin::cleanup(&manager, batch_size.max(1)).await,
        Command::RotateKey => admin::rotate_key(&manager).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_not_printed() {
        assert_eq!(
            redact_url("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact_url("sqlite://x.sqlite"), "sqlite://x.sqlite");
        assert_eq!(
            redact_url("mysql://root@127.0.0.1/db"),
            "mysql://root@127.0.0.1/db"
        );
        assert_eq!(
            redact_url("postgres://u:p@ss@h/db"),
            "postgres://u:***@h/db"
        );
    }

    #[test]
    fn lifetime_flags_reach_the_config() {
        let c = config(&Cli::try_parse_from(["tessera-demo"]).unwrap()).unwrap();
        assert_eq!(c.refresh_grace(), Duration::ZERO);
        assert_eq!(c.idle_timeout(), None);
        assert_eq!(c.absolute_lifetime(), None);
        assert!(!c.record_client_address(), "addresses are off by default");
        let cli = Cli::try_parse_from(["tessera-demo", "--record-client-address"]).unwrap();
        assert!(config(&cli).unwrap().record_client_address());
        let cli = Cli::try_parse_from([
            "tessera-demo",
            "--refresh-grace-secs",
            "30",
            "--idle-timeout-secs",
            "900",
            "--absolute-lifetime-secs",
            "86400",
        ])
        .unwrap();
        let c = config(&cli).unwrap();
        assert_eq!(c.refresh_grace(), Duration::from_secs(30));
        assert_eq!(c.idle_timeout(), Some(Duration::from_secs(900)));
        assert_eq!(c.absolute_lifetime(), Some(Duration::from_secs(86400)));
        for (flag, value, says) in [
            ("--refresh-grace-secs", "-1", "--refresh-grace-secs"),
            ("--refresh-grace-secs", "NaN", "--refresh-grace-secs"),
            ("--idle-timeout-secs", "0", "--idle-timeout-secs"),
            // Not longer than the 60 s access-token validity.
            ("--idle-timeout-secs", "60", "idle timeout"),
            ("--absolute-lifetime-secs", "0", "--absolute-lifetime-secs"),
            (
                "--absolute-lifetime-secs",
                "inf",
                "--absolute-lifetime-secs",
            ),
        ] {
            let arg = format!("{flag}={value}");
            let cli = Cli::try_parse_from(["tessera-demo", arg.as_str()]).unwrap();
            let e = config(&cli).unwrap_err().to_string();
            assert!(e.contains(says), "{flag} {value}: {e}");
        }
    }

    #[test]
    fn cli_defaults_to_serve() {
        let cli = Cli::try_parse_from(["tessera-demo"]).unwrap();
        assert!(cli.command.is_none());
        let cli = Cli::try_parse_from(["tessera-demo", "cleanup", "--batch-size", "5"]).unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::Cleanup { batch_size: 5 })
        ));
    }
}
