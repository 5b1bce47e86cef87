//! The walkthrough (`tessera-demo walkthrough`): creates, verifies,
//! refreshes and revokes a session with the core API alone (no HTTP server)
//! and prints each step, with the response headers a browser would receive.

use http::header::{HeaderMap, HeaderValue, COOKIE, SET_COOKIE};
use serde_json::json;
use tessera::{Config, Error, SessionManager, UserId};

/// Keeps what a browser would keep: cookies and the anti-CSRF token.
#[derive(Default, Clone)]
struct Jar {
    cookies: Vec<(String, String)>,
    anti_csrf: Option<String>,
}

impl Jar {
    fn absorb(&mut self, response: &HeaderMap) {
        for v in response.get_all(SET_COOKIE) {
            let Ok(s) = v.to_str() else { continue };
            let pair = s.split(';').next().unwrap_or_default();
            if let Some((name, value)) = pair.split_once('=') {
                self.cookies.retain(|(n, _)| n != name);
                if !value.is_empty() {
                    self.cookies.push((name.to_owned(), value.to_owned()));
                }
            }
        }
        if let Some(t) = response.get("anti-csrf").and_then(|v| v.to_str().ok()) {
            self.anti_csrf = Some(t.to_owned());
        }
    }

    fn request(&self) -> HeaderMap {
        let mut h = HeaderMap::new();
        let cookie = self
            .cookies
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            h.insert(COOKIE, v);
        }
        if let Some(t) = self
            .anti_csrf
            .as_deref()
            .and_then(|t| HeaderValue::from_str(t).ok())
        {
            h.insert("anti-csrf", t);
        }
        h
    }
}

fn show(step: &str, response: &HeaderMap) {
    println!("\n== {step}");
    for (name, value) in response {
        let v = value.to_str().unwrap_or("<binary>");
        // Shorten tokens so the output stays readable; never log them in a
        // real application.
        let short: String = if v.len() > 72 {
            format!("{}…", &v[..60])
        } else {
            v.to_owned()
        };
        println!("   {name}: {short}");
    }
}

pub(crate) async fn run(url: &str) -> Result<(), Box<dyn std::error::Error>> {
    println!("Tessera walkthrough on {}", crate::redact_url(url));
    let store = tessera_sqlx::connect(url).await?;
    // Plain HTTP on localhost in a demo, so cookies without `Secure`.
    let config = Config::builder().with_cookie_secure(false).build()?;
    let manager = SessionManager::new(config, store).await?;
    let mut browser = Jar::default();

    let mut resp = HeaderMap::new();
    let session = manager
        .create_new_session(
            &mut resp,
            UserId::from("alice"),
            json!({"role": "reader"}),
            json!({"cart": []}),
        )
        .await?;
    show("create_new_session(\"alice\") sets", &resp);
    println!("   session handle: {}", session.handle());
    browser.absorb(&resp);

    let mut resp = HeaderMap::new();
    let s = manager
        .get_session(&browser.request(), &mut resp, true)
        .await?;
    println!(
        "\n== get_session: user {:?}, payload {}, no database access",
        s.user_id(),
        s.jwt_payload()
    );

    let mut resp = HeaderMap::new();
    s.update_session_info(&json!({"cart": ["book"]}), &mut resp)
        .await?;
    println!(
        "\n== session info now {}",
        s.get_session_info(&mut resp).await?
    );

    let stolen = browser.clone();
    let mut resp = HeaderMap::new();
    manager
        .refresh_session(&browser.request(), &mut resp)
        .await?;
    show("refresh_session rotates the tokens", &resp);
    browser.absorb(&resp);

    let mut resp = HeaderMap::new();
    manager
        .get_session(&browser.request(), &mut resp, true)
        .await?;
    show(
        "get_session with the new access token promotes the new refresh token",
        &resp,
    );
    browser.absorb(&resp);

    let mut resp = HeaderMap::new();
    match manager.refresh_session(&stolen.request(), &mut resp).await {
        Err(Error::TokenTheftDetected {
            user_id,
            session_handle,
            reuse,
        }) => {
            show("replaying the old refresh token", &resp);
            println!(
                "   token theft detected: user {user_id:?}, session {session_handle} (revoked; reuse: {reuse})"
            );
        }
        other => return Err(format!("expected theft detection, got {other:?}").into()),
    }

    let mut resp = HeaderMap::new();
    match manager.refresh_session(&browser.request(), &mut resp).await {
        Err(Error::Unauthorized { reason }) => {
            println!("\n== the legitimate client is now logged out too: {reason}")
        }
        other => return Err(format!("expected Unauthorized, got {other:?}").into()),
    }

    let mut resp = HeaderMap::new();
    let again = manager
        .create_new_session(&mut resp, UserId::from("alice"), json!(null), json!(null))
        .await?;
    println!(
        "\n== alice logs in again; her sessions: {:?}",
        manager
            .get_all_session_handles_for_user(&UserId::from("alice"))
            .await?
    );
    println!(
        "== revoke_session -> {}",
        manager.revoke_session(again.handle()).await?
    );
    println!(
        "== removed {} expired sessions\n\nDone.",
        manager.remove_expired_sessions(1000, |_| {}).await?
    );
    Ok(())
}
