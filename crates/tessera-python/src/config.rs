//! `settings.SUPER_TOKENS` (already merged with the defaults by the Python
//! side) → [`tessera::Config`].
//!
//! Keys keep the names and units of `supertokens-jwt-ref` 2.0 (the reference
//! library): validities of refresh tokens and the key interval in hours, the
//! access-token validity in seconds. The reference library accepts any
//! positive number for these, so the core's builder is used in its
//! [`danger_allow_any_positive_validity`](tessera::ConfigBuilder::danger_allow_any_positive_validity)
//! mode; values outside the core's recommended ranges are reported by
//! [`recommended_range_warnings`] (`manage.py check` warnings) instead of
//! being refused. Other messages of the builder are passed on prefixed with
//! `SUPER_TOKENS`.

use std::sync::Arc;
use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyString};
use tessera::{
    BoxError, Config, CookieNamePrefix, ManualClock, SameSite, SigningKeyFn, SigningKeySource,
};

fn err(message: String) -> tessera::Error {
    tessera::Error::invalid_argument(message)
}

fn item<'py>(config: &Bound<'py, PyDict>, key: &str) -> tessera::Result<Bound<'py, PyAny>> {
    config
        .get_item(key)
        .ok()
        .flatten()
        .ok_or_else(|| err(format!("SUPER_TOKENS: {key} is missing")))
}

fn type_name(value: &Bound<'_, PyAny>) -> String {
    value
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into())
}

fn boolean(config: &Bound<'_, PyDict>, key: &str) -> tessera::Result<bool> {
    let v = item(config, key)?;
    // Only True/False: a string such as "False" is truthy and a classic trap.
    v.cast::<PyBool>().map(|b| b.is_true()).map_err(|_| {
        err(format!(
            "SUPER_TOKENS: {key} must be True or False, not {}",
            type_name(&v)
        ))
    })
}

fn number(config: &Bound<'_, PyDict>, key: &str) -> tessera::Result<f64> {
    let v = item(config, key)?;
    let numeric = (v.is_instance_of::<PyInt>() || v.is_instance_of::<PyFloat>())
        && !v.is_instance_of::<PyBool>();
    let value = if numeric {
        v.extract::<f64>().ok()
    } else {
        None
    };
    value.filter(|x| x.is_finite()).ok_or_else(|| {
        err(format!(
            "SUPER_TOKENS: {key} must be a number, not {}",
            type_name(&v)
        ))
    })
}

/// The longest validity or key interval used: 1000 years. Longer values
/// (any positive number is accepted) are cut to it, so that every expiry,
/// including a cookie's `Expires` date, stays a four-digit year.
pub(crate) const LONGEST: Duration = Duration::from_secs(1000 * 36525 * 864);

fn duration(
    config: &Bound<'_, PyDict>,
    key: &str,
    unit_secs: f64,
    unit: &str,
) -> tessera::Result<Duration> {
    let n = number(config, key)?;
    let positive = || {
        err(format!(
            "SUPER_TOKENS: {key} must be a positive number of {unit}, not {n}"
        ))
    };
    if n <= 0.0 {
        return Err(positive());
    }
    // Beyond `Duration`'s range (about 5.8e11 years) is longer than LONGEST.
    let d = Duration::try_from_secs_f64(n * unit_secs).unwrap_or(Duration::MAX);
    // A positive value too small for a nanosecond would be zero.
    (!d.is_zero())
        .then_some(d.min(LONGEST))
        .ok_or_else(positive)
}

fn text(config: &Bound<'_, PyDict>, key: &str) -> tessera::Result<String> {
    let v = item(config, key)?;
    v.cast::<PyString>()
        .ok()
        .and_then(|s| s.to_str().ok().map(str::to_owned))
        .ok_or_else(|| {
            err(format!(
                "SUPER_TOKENS: {key} must be a string, not {}",
                type_name(&v)
            ))
        })
}

fn optional_text(config: &Bound<'_, PyDict>, key: &str) -> tessera::Result<Option<String>> {
    if item(config, key)?.is_none() {
        Ok(None)
    } else {
        text(config, key).map(Some)
    }
}

/// The user's `ACCESS_TOKEN_SIGNING_KEY_GET_FUNCTION` as the core's key
/// function. The core calls it on every sign and verify, from a thread that
/// has released the GIL, so it attaches to the interpreter for the call. It
/// must return the key as `str` (UTF-8 bytes are used) or `bytes`.
fn key_function(function: Py<PyAny>) -> SigningKeyFn {
    Arc::new(move || -> Result<Vec<u8>, BoxError> {
        Python::attach(|py| {
            let value = function.call0(py).map_err(|e| -> BoxError {
                format!("ACCESS_TOKEN_SIGNING_KEY_GET_FUNCTION raised {e}").into()
            })?;
            let value = value.bind(py);
            if let Ok(s) = value.cast::<PyString>() {
                return Ok(s
                    .to_str()
                    .map_err(|e| -> BoxError { e.to_string().into() })?
                    .as_bytes()
                    .to_vec());
            }
            if let Ok(b) = value.cast::<PyBytes>() {
                return Ok(b.as_bytes().to_vec());
            }
            Err(format!(
                "ACCESS_TOKEN_SIGNING_KEY_GET_FUNCTION must return str or bytes, not {}",
                type_name(value)
            )
            .into())
        })
    })
}

/// Builds and validates the core's configuration.
pub(crate) fn build(
    config: &Bound<'_, PyDict>,
    key_fn: Option<Py<PyAny>>,
    clock: Option<Arc<ManualClock>>,
) -> tessera::Result<Config> {
    let signing_key = match key_fn {
        Some(f) => SigningKeySource::Function(key_function(f)),
        None if boolean(config, "ACCESS_TOKEN_SIGNING_KEY_IS_DYNAMIC")? => {
            SigningKeySource::Dynamic {
                update_interval: duration(
                    config,
                    "ACCESS_TOKEN_SIGNING_KEY_UPDATE_INTERVAL",
                    3600.0,
                    "hours",
                )?,
            }
        }
        None => SigningKeySource::Static,
    };
    let same_site = match text(config, "COOKIE_SAME_SITE")?
        .to_ascii_lowercase()
        .as_str()
    {
        "lax" => SameSite::Lax,
        "strict" => SameSite::Strict,
        "none" => SameSite::None,
        other => {
            return Err(err(format!(
            "SUPER_TOKENS: COOKIE_SAME_SITE must be \"Lax\", \"Strict\" or \"None\", not {other:?}"
        )))
        }
    };
    // New key: absent (a config dict built before it existed) means None.
    let prefix_text = match config.get_item("COOKIE_NAME_PREFIX").ok().flatten() {
        Some(_) => optional_text(config, "COOKIE_NAME_PREFIX")?,
        None => None,
    };
    let prefix = match prefix_text.as_deref() {
        None => CookieNamePrefix::None,
        Some("__Secure-") => CookieNamePrefix::Secure,
        Some("__Host-") => CookieNamePrefix::Host,
        Some(other) => {
            return Err(err(format!(
                "SUPER_TOKENS: COOKIE_NAME_PREFIX must be None, \"__Secure-\" or \"__Host-\", not {other:?}"
            )))
        }
    };
    let status_value = item(config, "SESSION_EXPIRED_STATUS_CODE")?;
    let status = (!status_value.is_instance_of::<PyBool>())
        .then(|| status_value.extract::<u16>().ok())
        .flatten()
        .ok_or_else(|| err("SUPER_TOKENS: SESSION_EXPIRED_STATUS_CODE must be an HTTP status such as 401 or 440".into()))?;
    let mut builder = Config::builder()
        // The reference library accepts any positive validity and interval;
        // `recommended_range_warnings` reports values outside the ranges.
        .danger_allow_any_positive_validity()
        .with_signing_key(signing_key)
        .with_access_token_validity(duration(config, "ACCESS_TOKEN_VALIDITY", 1.0, "seconds")?)
        .with_blacklisting(boolean(config, "ACCESS_TOKEN_ENABLE_BLACKLISTING")?)
        .with_access_token_path(text(config, "ACCESS_TOKEN_PATH")?)
        .with_anti_csrf(boolean(config, "ANTI_CSRF_ENABLE")?)
        .with_refresh_token_validity(duration(config, "REFRESH_TOKEN_VALIDITY", 3600.0, "hours")?)
        .with_refresh_path(text(config, "REFRESH_TOKEN_PATH")?)
        .with_cookie_domain(optional_text(config, "COOKIE_DOMAIN")?)
        .with_cookie_secure(boolean(config, "COOKIE_SECURE")?)
        .with_same_site(same_site)
        .with_cookie_name_prefix(prefix)
        .with_session_expired_status(status)
        .with_revoke_session_on_theft(boolean(config, "REVOKE_SESSION_ON_TOKEN_THEFT")?)
        // The reference library has no refresh grace window: any reuse of a
        // superseded refresh token is theft.
        .without_refresh_grace()
        .with_accept_previous_signing_key(boolean(config, "ACCEPT_PREVIOUS_SIGNING_KEY")?);
    // New keys: absent (a config dict built before they existed) means the
    // reference profile alone.
    if config
        .get_item("REFERENCE_PROFILE")
        .ok()
        .flatten()
        .is_some()
    {
        builder = builder.with_reference_profile(boolean(config, "REFERENCE_PROFILE")?);
    }
    builder = builder.with_current_sdk(current_sdk(config)?);
    builder = builder
        .with_idle_timeout(optional_seconds(config, "IDLE_TIMEOUT")?)
        .with_absolute_lifetime(optional_seconds(config, "ABSOLUTE_LIFETIME")?);
    if config
        .get_item("REFRESH_TOKEN_GRACE_PERIOD")
        .ok()
        .flatten()
        .is_some()
    {
        let secs = number(config, "REFRESH_TOKEN_GRACE_PERIOD")?;
        if !(0.0..=tessera::REFRESH_GRACE_MAX.as_secs_f64()).contains(&secs) {
            return Err(err(format!(
                "SUPER_TOKENS: REFRESH_TOKEN_GRACE_PERIOD must be between 0 (off) and {} seconds, not {}",
                tessera::REFRESH_GRACE_MAX.as_secs(),
                shown(secs)
            )));
        }
        builder = builder.with_refresh_grace(Duration::from_secs_f64(secs));
    }
    if config
        .get_item("ACCESS_TOKEN_ALGORITHM")
        .ok()
        .flatten()
        .is_some()
    {
        let name = text(config, "ACCESS_TOKEN_ALGORITHM")?;
        let alg = tessera::AccessTokenAlgorithm::parse(&name).ok_or_else(|| {
            err(format!(
                "SUPER_TOKENS: ACCESS_TOKEN_ALGORITHM must be \"HS256\", \"EdDSA\", \"ES256\" or \"RS256\", not {name:?}"
            ))
        })?;
        builder = builder.with_access_token_algorithm(alg);
    }
    if config
        .get_item("ACCESS_TOKEN_ISSUER")
        .ok()
        .flatten()
        .is_some()
    {
        builder = builder.with_access_token_issuer(text(config, "ACCESS_TOKEN_ISSUER")?);
    }
    if config
        .get_item("ACCESS_TOKEN_AUDIENCE")
        .ok()
        .flatten()
        .is_some()
    {
        builder =
            builder.with_access_token_audience(optional_text(config, "ACCESS_TOKEN_AUDIENCE")?);
    }
    if config
        .get_item("RECORD_CLIENT_ADDRESS")
        .ok()
        .flatten()
        .is_some()
    {
        builder = builder.with_record_client_address(boolean(config, "RECORD_CLIENT_ADDRESS")?);
    }
    if let Some(clock) = clock {
        builder = builder.with_clock(clock);
    }
    builder
        .build()
        .map_err(|e| err(format!("SUPER_TOKENS: {e}")))
}

/// An optional number of seconds (`None` or absent: not set); zero,
/// negative and non-numbers are refused, longer than 1000 years is 1000
/// years.
fn optional_seconds(config: &Bound<'_, PyDict>, key: &str) -> tessera::Result<Option<Duration>> {
    match config.get_item(key).ok().flatten() {
        None => Ok(None),
        Some(v) if v.is_none() => Ok(None),
        Some(_) => {
            let secs = number(config, key)?;
            if secs <= 0.0 {
                return Err(err(format!(
                    "SUPER_TOKENS: {key} must be None or a positive number of seconds, not {}",
                    shown(secs)
                )));
            }
            Ok(Some(Duration::from_secs_f64(
                secs.min(LONGEST.as_secs_f64()),
            )))
        }
    }
}

/// `CURRENT_SDK`: `None`, or a dict with `API_BASE_PATH`, `COOKIE` and
/// `HEADER` (the Python side fills in the defaults and refuses unknown
/// keys).
fn current_sdk(config: &Bound<'_, PyDict>) -> tessera::Result<Option<tessera::CurrentSdk>> {
    let Some(value) = config.get_item("CURRENT_SDK").ok().flatten() else {
        return Ok(None);
    };
    if value.is_none() {
        return Ok(None);
    }
    let sdk = value.cast::<PyDict>().map_err(|_| {
        err(format!(
            "SUPER_TOKENS: CURRENT_SDK must be None or a dict, not {}",
            type_name(&value)
        ))
    })?;
    let base = item(sdk, "API_BASE_PATH")?;
    let base = base
        .cast::<PyString>()
        .map_err(|_| err("SUPER_TOKENS: CURRENT_SDK[\"API_BASE_PATH\"] must be a str".into()))?
        .to_str()
        .map_err(|_| err("SUPER_TOKENS: CURRENT_SDK[\"API_BASE_PATH\"] is not valid text".into()))?
        .to_owned();
    let flag = |key: &str| {
        boolean(sdk, key).map_err(|_| {
            err(format!(
                "SUPER_TOKENS: CURRENT_SDK[\"{key}\"] must be True or False"
            ))
        })
    };
    Ok(Some(
        tessera::CurrentSdk::new(base)
            .with_cookies(flag("COOKIE")?)
            .with_header(flag("HEADER")?),
    ))
}

/// `manage.py check` warnings for durations outside the core's recommended
/// ranges (the bounds its builder enforces without
/// `danger_allow_any_positive_validity`), for a configuration that [`build`]
/// accepts. Each names the key, its value and the range.
pub(crate) fn recommended_range_warnings(
    config: &Bound<'_, PyDict>,
    has_key_function: bool,
) -> tessera::Result<Vec<String>> {
    let mut warnings = Vec::new();
    let mut check = |key: &str, unit: &str, unit_secs: f64, min: Duration, max: Duration| {
        let n = number(config, key)?;
        let secs = n * unit_secs;
        let (lo, hi) = (min.as_secs_f64() / unit_secs, max.as_secs_f64() / unit_secs);
        if secs < min.as_secs_f64() || secs > max.as_secs_f64() {
            let mut text = format!(
                "SUPER_TOKENS: {key} is {} {unit}, outside the recommended range of {lo} to {hi} {unit}",
                shown(n)
            );
            if secs > LONGEST.as_secs_f64() {
                text.push_str("; it is used as 1000 years");
            }
            warnings.push(text);
        }
        // What is used: cut to LONGEST.
        Ok::<f64, tessera::Error>(secs.min(LONGEST.as_secs_f64()))
    };
    let access = check(
        "ACCESS_TOKEN_VALIDITY",
        "seconds",
        1.0,
        tessera::ACCESS_TOKEN_VALIDITY_MIN,
        tessera::ACCESS_TOKEN_VALIDITY_MAX,
    )?;
    let refresh = check(
        "REFRESH_TOKEN_VALIDITY",
        "hours",
        3600.0,
        tessera::REFRESH_TOKEN_VALIDITY_MIN,
        tessera::REFRESH_TOKEN_VALIDITY_MAX,
    )?;
    if !has_key_function && boolean(config, "ACCESS_TOKEN_SIGNING_KEY_IS_DYNAMIC")? {
        check(
            "ACCESS_TOKEN_SIGNING_KEY_UPDATE_INTERVAL",
            "hours",
            3600.0,
            tessera::KEY_UPDATE_INTERVAL_MIN,
            tessera::KEY_UPDATE_INTERVAL_MAX,
        )?;
    }
    if access < 1.0 {
        let prefix = "SUPER_TOKENS: ACCESS_TOKEN_VALIDITY is";
        if let Some(text) = warnings.iter_mut().find(|w| w.starts_with(prefix)) {
            text.push_str(
                "; below 1 second a token can be expired when it is issued \
                 (token times are whole seconds, rounded down)",
            );
        }
    }
    if refresh < access {
        warnings.push(format!(
            "SUPER_TOKENS: REFRESH_TOKEN_VALIDITY ({} hours) is shorter than \
             ACCESS_TOKEN_VALIDITY ({} seconds): a session ends while its access \
             token is still accepted; make the refresh-token validity at least as long",
            shown(refresh / 3600.0),
            shown(access)
        ));
    }
    Ok(warnings)
}

/// A number for a message: `1e300`, not three hundred digits.
fn shown(n: f64) -> String {
    if n.abs() >= 1e15 {
        format!("{n:e}")
    } else {
        n.to_string()
    }
}
