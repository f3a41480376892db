//! One function from a URL to a broker.

use super::memory::MemoryBroker;
use super::SharedBroker;

/// A broker URL that names no adapter compiled into this build, or whose
/// server cannot be reached. The URLs it holds are as they may be shown
/// ([`crate::secret::redact`]), and the reasons are scrubbed of the URL's
/// secrets ([`crate::secret::scrub`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectError {
    /// The scheme is not one this runtime knows (the URL, redacted).
    #[error("unknown broker URL scheme in {0:?}: expected memory://, nats://, tls:// (NATS over TLS), redis:// or rediss://")]
    UnknownScheme(String),
    /// The scheme is known but its adapter's cargo feature is off.
    #[error("broker URL {url:?} needs the `{feature}` feature of choreo-runtime (this build was made without it)")]
    FeatureDisabled {
        /// The URL, redacted.
        url: String,
        /// The feature to enable.
        feature: &'static str,
    },
    /// The adapter could not connect.
    #[error("cannot connect to {url:?}: {reason}")]
    Failed {
        /// The URL, redacted.
        url: String,
        /// Why, without the URL's secrets.
        reason: String,
    },
}

/// Connects to the broker a URL names: `memory://` (or an empty string)
/// is a new embedded [`MemoryBroker`]; `nats://host:port` is NATS JetStream
/// (feature `nats`; `tls://host:port` over TLS), `redis://host:port` Redis
/// Streams (feature `redis`; `rediss://host:port` over TLS), each with its
/// default options but for what the URL sets (see
/// [`RedisBroker::connect_with`](super::RedisBroker::connect_with) for
/// Redis' `?dedup=` and TLS settings, [`nats::url`](super::nats::url) for
/// NATS' TLS and credentials). An unreachable server
/// is an error naming the URL, after at most the adapter's connect timeout
/// (5 s).
pub async fn connect(url: &str) -> Result<SharedBroker, ConnectError> {
    let scheme = url.split_once("://").map_or(url, |(s, _)| s);
    match scheme {
        "" | "memory" => Ok(std::sync::Arc::new(MemoryBroker::new())),
        "nats" | "tls" => connect_nats(url).await,
        "redis" | "rediss" => connect_redis(url).await,
        _ => Err(ConnectError::UnknownScheme(crate::secret::redact(url))),
    }
}

#[cfg(any(feature = "nats", feature = "redis"))]
fn failed(url: &str, e: impl std::fmt::Display) -> ConnectError {
    ConnectError::Failed {
        url: crate::secret::redact(url),
        // The client libraries' errors may quote the URL or the password.
        reason: crate::secret::scrub(&e.to_string(), url),
    }
}

#[cfg(feature = "nats")]
async fn connect_nats(url: &str) -> Result<SharedBroker, ConnectError> {
    match super::nats::NatsBroker::connect(url).await {
        Ok(b) => Ok(std::sync::Arc::new(b)),
        Err(e) => Err(failed(url, e)),
    }
}

#[cfg(not(feature = "nats"))]
async fn connect_nats(url: &str) -> Result<SharedBroker, ConnectError> {
    Err(ConnectError::FeatureDisabled {
        url: crate::secret::redact(url),
        feature: "nats",
    })
}

#[cfg(feature = "redis")]
async fn connect_redis(url: &str) -> Result<SharedBroker, ConnectError> {
    match super::redis::RedisBroker::connect(url).await {
        Ok(b) => Ok(std::sync::Arc::new(b)),
        Err(e) => Err(failed(url, e)),
    }
}

#[cfg(not(feature = "redis"))]
async fn connect_redis(url: &str) -> Result<SharedBroker, ConnectError> {
    Err(ConnectError::FeatureDisabled {
        url: crate::secret::redact(url),
        feature: "redis",
    })
}
