//! User ids: a string or an integer, and the type is preserved end to end.

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

/// Longest storage form of a user id (see [`UserId::to_storage`]), in bytes.
/// Every store's `user_id` column holds at least this much.
pub const MAX_USER_ID_STORAGE_LEN: usize = 255;

/// The id of a user, as the application gave it.
///
/// The reference library accepts `string | number`; Tessera keeps which of the two it was,
/// so `UserId::from(7)` and `UserId::from("7")` are different users and a
/// session created for `7` reports `7`, not `"7"`.
#[derive(Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(untagged)]
pub enum UserId {
    /// A textual id.
    Str(String),
    /// An integer id.
    Int(i64),
}

impl UserId {
    /// The canonical text kept in the database: the user id as JSON
    /// (`"alice"` with quotes, `42` without). It is unambiguous, keeps the
    /// type, and is what stores index and compare.
    pub fn to_storage(&self) -> String {
        match self {
            UserId::Str(s) => serde_json::to_string(s).expect("strings always serialize"),
            UserId::Int(i) => i.to_string(),
        }
    }

    /// Inverse of [`UserId::to_storage`]; `None` for text that is not one.
    pub fn from_storage(s: &str) -> Option<UserId> {
        serde_json::from_str(s).ok()
    }

    /// Converts a JSON value; only strings and integers that fit in `i64`
    /// are user ids.
    pub fn from_json(value: &serde_json::Value) -> Option<UserId> {
        match value {
            serde_json::Value::String(s) => Some(UserId::Str(s.clone())),
            serde_json::Value::Number(n) => n.as_i64().map(UserId::Int),
            _ => None,
        }
    }

    /// The id as a JSON value (string or number).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            UserId::Str(s) => serde_json::Value::String(s.clone()),
            UserId::Int(i) => serde_json::Value::from(*i),
        }
    }
}

// Written by hand rather than `#[serde(untagged)]`: untagged enums buffer the
// input first, and this runs on every `get_session`.
impl<'de> Deserialize<'de> for UserId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = UserId;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an integer")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<UserId, E> {
                Ok(UserId::Str(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<UserId, E> {
                Ok(UserId::Str(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<UserId, E> {
                Ok(UserId::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<UserId, E> {
                i64::try_from(v)
                    .map(UserId::Int)
                    .map_err(|_| E::custom("integer user id out of range"))
            }
        }
        d.deserialize_any(V)
    }
}

impl fmt::Debug for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UserId::Str(s) => write!(f, "{s:?}"),
            UserId::Int(i) => write!(f, "{i}"),
        }
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UserId::Str(s) => f.write_str(s),
            UserId::Int(i) => write!(f, "{i}"),
        }
    }
}

impl From<&str> for UserId {
    fn from(s: &str) -> Self {
        UserId::Str(s.to_owned())
    }
}

impl From<String> for UserId {
    fn from(s: String) -> Self {
        UserId::Str(s)
    }
}

impl From<i64> for UserId {
    fn from(i: i64) -> Self {
        UserId::Int(i)
    }
}

impl From<i32> for UserId {
    fn from(i: i32) -> Self {
        UserId::Int(i.into())
    }
}

impl From<u32> for UserId {
    fn from(i: u32) -> Self {
        UserId::Int(i.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_form_keeps_the_type() {
        let s = UserId::from("7");
        let i = UserId::from(7);
        assert_eq!(s.to_storage(), "\"7\"");
        assert_eq!(i.to_storage(), "7");
        assert_eq!(UserId::from_storage(&s.to_storage()), Some(s));
        assert_eq!(UserId::from_storage(&i.to_storage()), Some(i));
        assert_eq!(UserId::from_storage("[1]"), None);
        assert_eq!(UserId::from_storage("1.5"), None);
    }
}
