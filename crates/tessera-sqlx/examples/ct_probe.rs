//! The workload of `scripts/ct-check.sh` (security checklist item 3): runs
//! `get_session` on one kind of bad input, so that callgrind can count the
//! instructions spent in `tessera::crypto::ct_eq`. Not an example of use.
//!
//! `ct_probe MODE [ROUNDS]`, MODE one of:
//!
//! * `valid`: a correct token and anti-CSRF header;
//! * `mac-first` / `mac-last`: the signature differs in its first / last
//!   character (the first / last byte of the MAC);
//! * `csrf-first` / `csrf-last`: the `anti-csrf` header differs in its first
//!   / last character.
//!
//! The session lives in a temporary SQLite file; everything random (keys,
//! tokens) differs between runs, which is the point: the count inside
//! `ct_eq` must depend on neither the data nor where a mismatch is.

use http::header::{HeaderMap, HeaderValue, COOKIE, SET_COOKIE};
use serde_json::json;
use tessera::{Config, Error, SessionManager};

fn flip_char(s: &str, i: usize, mask: u8) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut b = s.as_bytes().to_vec();
    let idx = A.iter().position(|&c| c == b[i]).expect("base64url");
    b[i] = A[idx ^ usize::from(mask)];
    String::from_utf8(b).unwrap()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().expect("mode");
    let rounds: usize = args.next().map_or(20, |r| r.parse().unwrap());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let path =
            std::env::temp_dir().join(format!("tessera_ct_probe_{}.sqlite", std::process::id()));
        let url = format!("sqlite://{}", path.display());
        let store = tessera_sqlx::connect(&url).await.expect("sqlite");
        let m = SessionManager::new(Config::default(), store).await.unwrap();
        let mut resp = HeaderMap::new();
        m.create_new_session(&mut resp, "probe", json!({"k": 1}), json!(null))
            .await
            .unwrap();
        let mut cookies = Vec::new();
        for v in resp.get_all(SET_COOKIE) {
            let pair = v.to_str().unwrap().split(';').next().unwrap().to_owned();
            cookies.push(pair);
        }
        let csrf = resp["anti-csrf"].to_str().unwrap().to_owned();
        let access_name = m.config().access_token_cookie_name();
        let access = cookies
            .iter()
            .find_map(|c| c.strip_prefix(&format!("{access_name}=")))
            .unwrap()
            .to_owned();
        let sig_start = access.rfind('.').unwrap() + 1;
        assert_eq!(access.len() - sig_start, 43);
        // The last character carries 4 bits of the MAC: flip one of them.
        let (token, header, expect_ok) = match mode.as_str() {
            "valid" => (access.clone(), csrf.clone(), true),
            "mac-first" => (flip_char(&access, sig_start, 1), csrf.clone(), false),
            "mac-last" => (flip_char(&access, access.len() - 1, 4), csrf.clone(), false),
            "csrf-first" => (access.clone(), flip_char(&csrf, 0, 1), false),
            "csrf-last" => (access.clone(), flip_char(&csrf, csrf.len() - 1, 4), false),
            other => panic!("unknown mode {other}"),
        };
        let others: Vec<&String> = cookies
            .iter()
            .filter(|c| !c.starts_with(&format!("{access_name}=")))
            .collect();
        let cookie = format!(
            "{}; {access_name}={token}",
            others
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        );
        let mut req = HeaderMap::new();
        req.insert(COOKIE, HeaderValue::from_str(&cookie).unwrap());
        req.insert("anti-csrf", HeaderValue::from_str(&header).unwrap());
        for _ in 0..rounds {
            let mut out = HeaderMap::new();
            let r = m.get_session(&req, &mut out, true).await;
            match (&r, expect_ok) {
                (Ok(_), true) | (Err(Error::TryRefreshToken { .. }), false) => {}
                _ => panic!("{mode}: unexpected {r:?}"),
            }
        }
        let _ = std::fs::remove_file(&path);
        for suffix in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    });
}
