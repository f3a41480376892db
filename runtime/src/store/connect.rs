//! [`Stores`]: the inbox and state store a service runs with, chosen by
//! URL the way brokers are.

use std::sync::Arc;

use super::{InboxStore, MemoryInbox, MemoryStateStore, StateStore, StoreError, StoreOptions};

/// The stores a service keeps its idempotency and join state in.
#[derive(Clone)]
pub struct Stores {
    /// Deduplication by event id.
    pub inbox: Arc<dyn InboxStore>,
    /// Join slots and `@bounded` counters.
    pub state: Arc<dyn StateStore>,
    /// What they are, for logs and health (`memory`, `nats KV at …`),
    /// without credentials.
    pub description: String,
}

impl std::fmt::Debug for Stores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stores")
            .field("description", &self.description)
            .finish_non_exhaustive()
    }
}

impl Stores {
    /// Both stores in memory (lost with the process, and not shared with
    /// replicas: for the memory broker, tests and one-process runs).
    pub fn memory() -> Self {
        Stores::new(
            Arc::new(MemoryInbox::new()),
            Arc::new(MemoryStateStore::new()),
            "memory",
        )
    }

    /// Stores of your own.
    pub fn new(
        inbox: Arc<dyn InboxStore>,
        state: Arc<dyn StateStore>,
        description: impl Into<String>,
    ) -> Self {
        Stores {
            inbox,
            state,
            description: description.into(),
        }
    }

    /// The stores a URL names:
    /// - `memory://` (or empty): [`Stores::memory`];
    /// - `nats://host:port` (`tls://host:port` over TLS): JetStream
    ///   Key-Value buckets (feature `nats`);
    /// - `redis://host:port[/db]` (`rediss://` over TLS): Redis keys
    ///   (feature `redis`);
    /// - `postgres://user@host/db` or `postgresql://…` (`?sslmode=verify-full`
    ///   over TLS): tables (feature `postgres`).
    ///
    /// TLS and credentials are set as for the brokers (docs/brokers.md,
    /// "Secure set-up").
    ///
    /// Each keeps its state under `options.prefix`. An unreachable server is
    /// an error that names it without its credentials.
    pub async fn connect(url: &str, options: &StoreOptions) -> Result<Stores, StoreError> {
        let scheme = url.split_once("://").map_or(url, |(s, _)| s);
        let shown = describe(url);
        let failed = |e: StoreError| match e {
            // The client libraries' errors may quote the URL.
            StoreError::Backend(reason) => StoreError::Backend(format!(
                "cannot open the stores at {shown}: {}",
                crate::secret::scrub(&reason, url)
            )),
            StoreError::Config(reason) => StoreError::Config(crate::secret::scrub(&reason, url)),
            other => other,
        };
        match scheme {
            "" | "memory" => Ok(Stores::memory()),
            "nats" | "tls" => nats(url, options, &shown).await.map_err(failed),
            "redis" | "rediss" => redis(url, options, &shown).await.map_err(failed),
            "postgres" | "postgresql" => postgres(url, options, &shown).await.map_err(failed),
            _ => Err(StoreError::Config(format!(
                "unknown store URL scheme in `{shown}`: expected memory://, nats://, tls://, redis://, rediss:// or postgres://"
            ))),
        }
    }

    /// The stores a deployment on the broker at `broker_url` gets unless
    /// told otherwise: its own server's durable stores (NATS Key-Value on
    /// NATS, keys on Redis), so that no other server is needed, and memory
    /// on the memory broker, whose events die with the process anyway.
    pub async fn for_broker(
        broker_url: &str,
        options: &StoreOptions,
    ) -> Result<Stores, StoreError> {
        Stores::connect(broker_url, options).await
    }

    /// [`Stores::for_broker`] for a broker already connected, by the URL
    /// it was connected with. A broker without one
    /// ([`Broker::url`](crate::broker::Broker::url)) gets
    /// memory stores, with a warning: its deployment should choose.
    pub async fn of_broker(
        broker: &crate::broker::SharedBroker,
        options: &StoreOptions,
    ) -> Result<Stores, StoreError> {
        match broker.url() {
            Some(url) => Stores::for_broker(url, options).await,
            None => {
                tracing::warn!(
                    broker = broker.kind(),
                    "the broker has no URL to open durable stores on; memory stores are used (pass stores to choose)"
                );
                Ok(Stores::memory())
            }
        }
    }
}

impl Default for Stores {
    fn default() -> Self {
        Stores::memory()
    }
}

/// `url` as it may be shown: [`crate::secret::redact`], under the name
/// the stores have always given it.
pub use crate::secret::redact as describe;

#[cfg(not(all(feature = "nats", feature = "redis", feature = "postgres")))]
fn disabled(feature: &str, shown: &str) -> StoreError {
    StoreError::Config(format!(
        "the stores at `{shown}` need the `{feature}` feature of choreo-runtime (this build was made without it)"
    ))
}

#[cfg(feature = "nats")]
async fn nats(url: &str, options: &StoreOptions, shown: &str) -> Result<Stores, StoreError> {
    let s = super::NatsKvStores::connect(url, options).await?;
    let names = super::NatsKvStores::bucket_names(options).join(", ");
    Ok(Stores::new(
        Arc::new(s.inbox()),
        Arc::new(s.state()),
        format!("NATS Key-Value at {shown} (buckets {names})"),
    ))
}

#[cfg(not(feature = "nats"))]
async fn nats(_: &str, _: &StoreOptions, shown: &str) -> Result<Stores, StoreError> {
    Err(disabled("nats", shown))
}

#[cfg(feature = "redis")]
async fn redis(url: &str, options: &StoreOptions, shown: &str) -> Result<Stores, StoreError> {
    let s = super::RedisStores::connect(url, options).await?;
    Ok(Stores::new(
        Arc::new(s.inbox()),
        Arc::new(s.state()),
        format!("Redis at {shown} (keys `{}choreo:*`)", options.prefix),
    ))
}

#[cfg(not(feature = "redis"))]
async fn redis(_: &str, _: &StoreOptions, shown: &str) -> Result<Stores, StoreError> {
    Err(disabled("redis", shown))
}

#[cfg(feature = "postgres")]
async fn postgres(url: &str, options: &StoreOptions, shown: &str) -> Result<Stores, StoreError> {
    let prefix = super::postgres::table_prefix(&options.prefix);
    let s = super::PgStores::connect_with(url, &prefix, options).await?;
    Ok(Stores::new(
        Arc::new(s.inbox()),
        Arc::new(s.state()),
        format!("PostgreSQL at {shown} (tables `{prefix}*`)"),
    ))
}

#[cfg(not(feature = "postgres"))]
async fn postgres(_: &str, _: &StoreOptions, shown: &str) -> Result<Stores, StoreError> {
    Err(disabled("postgres", shown))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_urls_and_unknown_schemes() {
        let o = StoreOptions::default();
        assert_eq!(
            Stores::connect("memory://", &o).await.unwrap().description,
            "memory"
        );
        assert_eq!(Stores::connect("", &o).await.unwrap().description, "memory");
        let err = Stores::connect("mongodb://u:pw@h", &o).await.unwrap_err();
        assert!(
            err.to_string().contains("unknown store URL scheme"),
            "{err}"
        );
        assert!(!err.to_string().contains("pw"), "{err}");
    }
}
