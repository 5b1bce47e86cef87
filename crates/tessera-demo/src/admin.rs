//! Admin subcommands: list, revoke, clean up, rotate the signing key.

use std::io::{IsTerminal, Write};

use tessera::{http_date, SessionManager, UserId};

use crate::users::Users;

type CmdResult = Result<(), Box<dyn std::error::Error>>;

/// A user given on the command line: a number is a user id, anything else a
/// user name looked up in the users table.
pub(crate) async fn resolve_user(users: &Users, user: &str) -> Result<UserId, String> {
    if let Ok(id) = user.parse::<i64>() {
        return Ok(UserId::Int(id));
    }
    match users.find_by_name(user).await {
        Ok(Some((u, _))) => Ok(UserId::Int(u.id)),
        Ok(None) => Err(format!("no user named {user:?}")),
        Err(e) => Err(format!("cannot read the users table: {e}")),
    }
}

pub(crate) async fn list(manager: &SessionManager, users: &Users, user: &str) -> CmdResult {
    let uid = resolve_user(users, user).await?;
    let sessions = manager.list_sessions_for_user(&uid).await?;
    if sessions.is_empty() {
        println!("user {uid} has no live sessions");
        return Ok(());
    }
    println!(
        "{:<44}  {:<29}  {:<29}",
        "session handle", "created", "expires"
    );
    for s in &sessions {
        println!(
            "{:<44}  {:<29}  {:<29}",
            s.session_handle,
            http_date(s.created_at_ms),
            http_date(s.expires_at_ms)
        );
    }
    println!("{} session(s) of user {uid}", sessions.len());
    Ok(())
}

pub(crate) async fn revoke(manager: &SessionManager, handle: &str) -> CmdResult {
    if manager.revoke_session(handle).await? {
        println!("revoked session {handle}");
        Ok(())
    } else {
        Err(format!("no session {handle:?} (already revoked or never existed)").into())
    }
}

pub(crate) async fn revoke_all(manager: &SessionManager, users: &Users, user: &str) -> CmdResult {
    let uid = resolve_user(users, user).await?;
    let n = manager.revoke_all_sessions_for_user(&uid).await?;
    println!("revoked {n} session(s) of user {uid}");
    Ok(())
}

pub(crate) async fn cleanup(manager: &SessionManager, batch_size: u32) -> CmdResult {
    let total = manager.count_expired_sessions().await?;
    if total == 0 {
        println!("no expired sessions");
        return Ok(());
    }
    println!("removing {total} expired session(s) in batches of {batch_size}");
    let tty = std::io::stderr().is_terminal();
    let mut last_tenth = 0;
    let mut finished = false;
    let removed = manager
        .remove_expired_sessions(batch_size, |done| {
            let pct = (done * 100).checked_div(total).unwrap_or(100).min(100);
            if tty {
                let width = 40;
                let filled = (pct as usize * width) / 100;
                eprint!(
                    "\r[{}{}] {done}/{total} ({pct}%)",
                    "#".repeat(filled),
                    " ".repeat(width - filled)
                );
                let _ = std::io::stderr().flush();
            } else if pct / 10 > last_tenth || (done >= total && !finished) {
                last_tenth = pct / 10;
                finished = done >= total;
                eprintln!("removed {done}/{total} ({pct}%)");
            }
        })
        .await?;
    if tty {
        eprintln!();
    }
    println!("removed {removed} expired session(s)");
    Ok(())
}

/// What `rotate-key` prints. It must say what really happens (see
/// `tessera`'s `keys.rs`): the command writes a new current key to the
/// database and exits; servers that are running hold their keys in memory
/// and only pick the new one up when they next reload them.
pub(crate) fn rotate_key_message() -> String {
    let recheck = tessera::KEY_RECHECK_INTERVAL.as_secs();
    let old_tokens = if crate::ACCEPT_PREVIOUS_SIGNING_KEY {
        "a server that has reloaded keeps accepting them until they expire".to_owned()
    } else {
        "a server that has reloaded answers them TryRefreshToken (401 try_refresh_token) and \
         the page refreshes them; the demo does not accept the previous key, so they are not \
         honoured until they expire"
            .to_owned()
    };
    format!(
        "signing key rotated: the database now holds a new current key.\n\
         - running servers keep signing new access tokens with the old key, and accepting it, \
         until they reload their keys: on their first request once {recheck} s have passed \
         since their last load (the key recheck interval; that request may still be served \
         with the old key), or at once when a request brings an access token signed with the \
         new key (at most one such reload per second). Servers started from now on use the new \
         key from the start.\n\
         - access tokens signed with the old key: {old_tokens}. A refresh answered by a server \
         that has not reloaded yet still issues an old-key token, which needs one more refresh \
         later.\n\
         - sessions and refresh tokens are not affected: nobody is signed out."
    )
}

pub(crate) async fn rotate_key(manager: &SessionManager) -> CmdResult {
    manager.rotate_signing_key().await?;
    println!("{}", rotate_key_message());
    Ok(())
}
