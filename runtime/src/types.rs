//! The Rust types behind a spec's built-in types, for generated code, with
//! the JSON forms the language reference gives them: a generated crate
//! depends on `choreo-runtime` alone and names these as
//! `::choreo_runtime::codegen::…` (the contract module re-exports them).
//!
//! | spec | Rust | JSON |
//! |---|---|---|
//! | `uuid` | [`Uuid`] | string |
//! | `timestamp` | [`Timestamp`] | RFC 3339 string |
//! | `duration` | [`Duration`] | ISO 8601 duration string (`"PT30S"`) |
//! | `decimal` | [`Decimal`] | string, to stay exact |
//! | `bytes` | [`Bytes`] | base64 string |
//! | `json` | [`Json`] | any JSON value |

use std::fmt;

use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use jiff::SignedDuration as Duration;
pub use jiff::Timestamp;
pub use rust_decimal::Decimal;
pub use serde_json::Value as Json;
pub use uuid::Uuid;

/// Binary data, base64 (standard alphabet, padded) in JSON.
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Bytes(pub Vec<u8>);

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bytes({} bytes)", self.0.len())
    }
}

impl From<Vec<u8>> for Bytes {
    fn from(bytes: Vec<u8>) -> Self {
        Bytes(bytes)
    }
}

impl AsRef<[u8]> for Bytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&base64::engine::general_purpose::STANDARD.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        base64::engine::general_purpose::STANDARD
            .decode(text.as_bytes())
            .map(Bytes)
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct All {
        id: Uuid,
        at: Timestamp,
        took: Duration,
        amount: Decimal,
        data: Bytes,
        extra: Json,
    }

    #[test]
    fn json_forms_round_trip() {
        let text = r#"{"id":"67e55044-10b1-426f-9247-bb680e5fe0c8","at":"2026-11-25T12:00:00Z","took":"PT30S","amount":"12.50","data":"AQID","extra":{"a":[1]}}"#;
        let value: All = serde_json::from_str(text).unwrap();
        assert_eq!(value.amount.to_string(), "12.50");
        assert_eq!(value.data.0, vec![1, 2, 3]);
        assert_eq!(value.took, Duration::from_secs(30));
        let back = serde_json::to_string(&value).unwrap();
        assert_eq!(back, text);
        assert!(serde_json::from_str::<Bytes>("\"!!\"").is_err());
    }
}
