//! One function from a URL to a broker.

use super::memory::MemoryBroker;
use super::SharedBroker;

/// A broker URL that names no adapter compiled into this build.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectError {
    /// The scheme is not one this runtime knows.
    #[error("unknown broker URL scheme in {0:?}: expected memory://")]
    UnknownScheme(String),
    /// The scheme is known but its adapter's cargo feature is off.
    #[error("broker URL {url:?} needs the `{feature}` feature of choreo-runtime")]
    FeatureDisabled {
        /// The URL.
        url: String,
        /// The feature to enable.
        feature: &'static str,
    },
    /// The adapter could not connect.
    #[error("cannot connect to {url:?}: {reason}")]
    Failed {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
}

/// Connects to the broker a URL names: `memory://` (or an empty string)
/// is a new embedded [`MemoryBroker`]; `nats://` and `redis://` are the
/// adapters of the `nats` and `redis` features (issue 7).
pub async fn connect(url: &str) -> Result<SharedBroker, ConnectError> {
    let scheme = url.split_once("://").map_or(url, |(s, _)| s);
    match scheme {
        "" | "memory" => Ok(std::sync::Arc::new(MemoryBroker::new())),
        // Adapters of later issues plug in here, each behind its feature.
        "nats" => Err(ConnectError::FeatureDisabled {
            url: url.to_owned(),
            feature: "nats",
        }),
        "redis" => Err(ConnectError::FeatureDisabled {
            url: url.to_owned(),
            feature: "redis",
        }),
        _ => Err(ConnectError::UnknownScheme(url.to_owned())),
    }
}
