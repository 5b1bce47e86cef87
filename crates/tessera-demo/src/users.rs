//! The demo's user accounts: a small table in the same database as the
//! sessions, passwords hashed with Argon2id.
//!
//! The table is created with `CREATE TABLE IF NOT EXISTS` at start-up (it
//! belongs to the demo, not to Tessera, so it is not one of the store's
//! migrations). User ids are the table's integer key, and sessions are
//! created for `UserId::Int(id)`.

use std::cell::RefCell;

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tessera_sqlx::SqlStore;

/// A user row (the password hash stays in the database layer).
#[derive(Debug, Clone)]
pub(crate) struct User {
    pub(crate) id: i64,
    pub(crate) username: String,
}

/// Why signing up failed.
#[derive(Debug)]
pub(crate) enum SignupError {
    Taken,
    Db(sqlx::Error),
}

/// The users table on whichever database the store uses.
#[derive(Clone)]
pub(crate) enum Users {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
    MySql(sqlx::MySqlPool),
}

const SQLITE_DDL: &str = "CREATE TABLE IF NOT EXISTS tessera_demo_users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    username      TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,
    created_at    BIGINT  NOT NULL
)";
const POSTGRES_DDL: &str = "CREATE TABLE IF NOT EXISTS tessera_demo_users (
    id            BIGSERIAL    PRIMARY KEY,
    username      VARCHAR(64)  NOT NULL UNIQUE,
    password_hash VARCHAR(255) NOT NULL,
    created_at    BIGINT       NOT NULL
)";
const MYSQL_DDL: &str = "CREATE TABLE IF NOT EXISTS tessera_demo_users (
    id            BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    username      VARCHAR(64)  NOT NULL UNIQUE,
    password_hash VARCHAR(255) NOT NULL,
    created_at    BIGINT       NOT NULL
) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin";

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Users {
    /// Uses the store's own pool and creates the table if needed.
    pub(crate) async fn open(store: &SqlStore) -> Result<Users, sqlx::Error> {
        #[allow(unreachable_patterns)]
        let users = match store {
            SqlStore::Sqlite(s) => Users::Sqlite(s.pool().clone()),
            SqlStore::Postgres(s) => Users::Postgres(s.pool().clone()),
            SqlStore::MySql(s) => Users::MySql(s.pool().clone()),
            _ => return Err(sqlx::Error::Configuration("unsupported database".into())),
        };
        match &users {
            Users::Sqlite(p) => {
                sqlx::query(SQLITE_DDL).execute(p).await?;
            }
            Users::Postgres(p) => {
                // Two instances starting together would otherwise race on
                // PostgreSQL's catalog (CREATE … IF NOT EXISTS is not atomic).
                let mut tx = p.begin().await?;
                sqlx::query("SELECT pg_advisory_xact_lock(7365323501)")
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(POSTGRES_DDL).execute(&mut *tx).await?;
                tx.commit().await?;
            }
            Users::MySql(p) => {
                sqlx::query(MYSQL_DDL).execute(p).await?;
            }
        }
        Ok(users)
    }

    /// Creates a user. The password must already be hashed.
    pub(crate) async fn create(
        &self,
        username: &str,
        password_hash: &str,
    ) -> Result<User, SignupError> {
        let now = now_ms();
        let r: Result<i64, sqlx::Error> = match self {
            Users::Sqlite(p) => sqlx::query_scalar(
                "INSERT INTO tessera_demo_users (username, password_hash, created_at) VALUES (?, ?, ?) RETURNING id",
            )
            .bind(username)
            .bind(password_hash)
            .bind(now)
            .fetch_one(p)
            .await,
            Users::Postgres(p) => sqlx::query_scalar(
                "INSERT INTO tessera_demo_users (username, password_hash, created_at) VALUES ($1, $2, $3) RETURNING id",
            )
            .bind(username)
            .bind(password_hash)
            .bind(now)
            .fetch_one(p)
            .await,
            Users::MySql(p) => sqlx::query(
                "INSERT INTO tessera_demo_users (username, password_hash, created_at) VALUES (?, ?, ?)",
            )
            .bind(username)
            .bind(password_hash)
            .bind(now)
            .execute(p)
            .await
            .map(|r| r.last_insert_id() as i64),
        };
        match r {
            Ok(id) => Ok(User {
                id,
                username: username.to_owned(),
            }),
            Err(e)
                if e.as_database_error()
                    .is_some_and(|d| d.is_unique_violation()) =>
            {
                Err(SignupError::Taken)
            }
            Err(e) => Err(SignupError::Db(e)),
        }
    }

    /// The user and password hash for a user name.
    pub(crate) async fn find_by_name(
        &self,
        username: &str,
    ) -> Result<Option<(User, String)>, sqlx::Error> {
        let row: Option<(i64, String, String)> = match self {
            Users::Sqlite(p) => {
                sqlx::query_as(
                    "SELECT id, username, password_hash FROM tessera_demo_users WHERE username = ?",
                )
                .bind(username)
                .fetch_optional(p)
                .await?
            }
            Users::Postgres(p) => sqlx::query_as(
                "SELECT id, username, password_hash FROM tessera_demo_users WHERE username = $1",
            )
            .bind(username)
            .fetch_optional(p)
            .await?,
            Users::MySql(p) => {
                // Binary-collation columns come back as VARBINARY on MySQL.
                let row: Option<(i64, Vec<u8>, Vec<u8>)> = sqlx::query_as(
                    "SELECT id, username, password_hash FROM tessera_demo_users WHERE username = ?",
                )
                .bind(username)
                .fetch_optional(p)
                .await?;
                match row {
                    Some((id, name, hash)) => Some((
                        id,
                        String::from_utf8(name).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
                        String::from_utf8(hash).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
                    )),
                    None => None,
                }
            }
        };
        Ok(row.map(|(id, username, hash)| (User { id, username }, hash)))
    }
}

/// Longest accepted password, so that hashing cost stays bounded.
pub(crate) const MAX_PASSWORD_LEN: usize = 256;
/// Shortest accepted password.
pub(crate) const MIN_PASSWORD_LEN: usize = 8;

/// A user name the demo accepts: 1 to 32 of `A-Z a-z 0-9 _ . -`.
pub(crate) fn valid_username(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// Argon2 memory blocks kept per thread for reuse, at most 64 MiB; a stored
/// hash asking for more gets a buffer of its own for that one call.
const MAX_REUSED_BLOCKS: usize = 64 * 1024;

thread_local! {
    /// The Argon2 working memory of this thread (19 MiB with the defaults).
    /// Hashing runs on a few fixed threads (`limits::HashPool`), so the demo
    /// holds exactly one buffer per hashing thread. Allocating 19 MiB per
    /// hash instead left the allocator holding on to freed buffers: the
    /// process grew by about 19 MiB per hash for the first dozens of hashes.
    static BLOCKS: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with `n` Argon2 blocks of this thread's reused memory. Their
/// contents are left from the previous hash; Argon2 overwrites every block
/// in its first pass before reading it.
fn with_blocks<T>(n: usize, f: impl FnOnce(&mut [Block]) -> T) -> T {
    if n > MAX_REUSED_BLOCKS {
        return f(&mut vec![Block::default(); n]);
    }
    BLOCKS.with(|b| {
        let mut b = b.borrow_mut();
        if b.len() < n {
            b.resize(n, Block::default());
        }
        f(&mut b[..n])
    })
}

/// Argon2id (the crate's defaults: 19 MiB, 2 passes) with a random salt from
/// the OS, as a PHC string. CPU-heavy: call it on the hashing pool.
pub(crate) fn hash_password(password: &str) -> Result<String, String> {
    let mut salt = [0u8; 16];
    getrandom::getrandom(&mut salt).map_err(|e| e.to_string())?;
    let salt_b64 = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    let params = Params::default();
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    with_blocks(params.block_count(), |blocks| {
        argon.hash_password_into_with_memory(password.as_bytes(), &salt, &mut out, blocks)
    })
    .map_err(|e| e.to_string())?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| e.to_string())?,
        salt: Some(salt_b64.as_salt()),
        hash: Some(Output::new(&out).map_err(|e| e.to_string())?),
    };
    Ok(phc.to_string())
}

/// Checks a password against a stored PHC string, with the algorithm,
/// version and parameters it names (the comparison is `Output`'s, constant
/// time). A malformed stored hash never matches.
pub(crate) fn verify_password(password: &str, stored: &str) -> bool {
    verify(password, stored).unwrap_or(false)
}

fn verify(password: &str, stored: &str) -> Option<bool> {
    let phc = PasswordHash::new(stored).ok()?;
    let algorithm = Algorithm::try_from(phc.algorithm).ok()?;
    let version = match phc.version {
        Some(v) => Version::try_from(v).ok()?,
        None => Version::default(),
    };
    let params = Params::try_from(&phc).ok()?;
    let expected = phc.hash?;
    let mut salt_buf = [0u8; 64];
    let salt = phc.salt?.decode_b64(&mut salt_buf).ok()?;
    let argon = Argon2::new(algorithm, version, params.clone());
    let mut out = vec![0u8; expected.len()];
    with_blocks(params.block_count(), |blocks| {
        argon.hash_password_into_with_memory(password.as_bytes(), salt, &mut out, blocks)
    })
    .ok()?;
    Some(Output::new(&out).ok()? == expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_differ() {
        let a = hash_password("correct horse").unwrap();
        let b = hash_password("correct horse").unwrap();
        assert_ne!(a, b, "random salt");
        assert!(a.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &a));
        assert!(!verify_password("correct horsf", &a));
        assert!(!verify_password("x", "not a phc string"));
    }

    /// The reused-memory hashing agrees with the argon2 crate's own
    /// `PasswordHasher` / `PasswordVerifier`, both ways, hash after hash on
    /// one thread (so on reused, dirty memory).
    #[test]
    fn agrees_with_the_argon2_crate() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        for i in 0..3 {
            let pw = format!("password number {i}");
            let ours = hash_password(&pw).unwrap();
            let parsed = PasswordHash::new(&ours).unwrap();
            assert!(Argon2::default()
                .verify_password(pw.as_bytes(), &parsed)
                .is_ok());
            assert!(Argon2::default()
                .verify_password(b"another password", &parsed)
                .is_err());
            let salt = SaltString::encode_b64(&[i as u8; 16]).unwrap();
            let theirs = Argon2::default()
                .hash_password(pw.as_bytes(), &salt)
                .unwrap()
                .to_string();
            assert!(verify_password(&pw, &theirs), "{theirs}");
            assert!(!verify_password("another password", &theirs));
            // Other parameters than ours are honoured (here: 8 MiB, 3 passes).
            let other = Argon2::new(
                Algorithm::Argon2id,
                Version::V0x13,
                Params::new(8 * 1024, 3, 1, None).unwrap(),
            )
            .hash_password(pw.as_bytes(), &salt)
            .unwrap()
            .to_string();
            assert!(verify_password(&pw, &other), "{other}");
            assert!(!verify_password("x", &other.replace("t=3", "t=2")));
        }
    }

    #[test]
    fn usernames() {
        assert!(valid_username("alice.b-c_9"));
        for bad in ["", "a b", "ä", "x;y", &"a".repeat(33)] {
            assert!(!valid_username(bad), "{bad:?}");
        }
    }
}
