//! Connecting: the adapter's options, choreo's settings in the URL (the
//! client's own and TLS: [`super::url`]), and the connections.

use std::sync::Arc;
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{Client, RedisError, Script};

use super::scripts::PUBLISH;
use super::{unavailable, Inner, RedisBroker};
use crate::broker::pull::{self, Lifecycle};
use crate::broker::BrokerError;

/// Settings of a [`RedisBroker`]. [`RedisOptions::default`] is what
/// `connect("redis://…")` uses.
#[derive(Debug, Clone, PartialEq)]
pub struct RedisOptions {
    /// Put in front of every key this adapter uses.
    pub key_prefix: String,
    /// How long a published id is remembered, at least (at most twice
    /// this), to drop a second publish of it on the same topic. `None`, the
    /// default: no deduplication by the broker, whose script costs the
    /// server about twice the CPU of a plain `XADD` per message; the
    /// services' inboxes deduplicate whatever the broker. The URL setting
    /// `?dedup=2m` turns it on (see [`RedisBroker::connect_with`]).
    pub dedup_window: Option<Duration>,
    /// Trim each stream to about this many entries on publish (`None`:
    /// keep everything). Trimming drops entries whether or not every group
    /// has read them.
    pub max_len: Option<usize>,
    /// The longest wait to connect before [`RedisBroker::connect`] gives up.
    pub connect_timeout: Duration,
    /// The longest wait for the answer to a command.
    pub response_timeout: Duration,
    /// How long one `XREADGROUP` blocks waiting for entries.
    pub block: Duration,
    /// How often a member looks for entries left unacked by others
    /// (`XAUTOCLAIM`).
    pub claim_interval: Duration,
}

impl Default for RedisOptions {
    fn default() -> Self {
        RedisOptions {
            key_prefix: "choreo:".into(),
            dedup_window: None,
            max_len: None,
            connect_timeout: Duration::from_secs(5),
            response_timeout: Duration::from_secs(5),
            block: Duration::from_millis(500),
            claim_interval: Duration::from_millis(500),
        }
    }
}

impl RedisOptions {
    /// The key of the stream of `topic`.
    pub fn stream_key(&self, topic: &str) -> String {
        format!("{}{topic}", self.key_prefix)
    }
}

/// The URL without choreo's own settings (for the Redis client, which
/// ignores what it does not know), and `options` with them applied.
fn url_settings(
    url: &str,
    mut options: RedisOptions,
) -> Result<(String, RedisOptions), BrokerError> {
    let bad = |reason: String| {
        BrokerError::Other(format!(
            "Redis URL `{}`: {reason}",
            crate::secret::redact(url)
        ))
    };
    let Ok(parsed) = url::Url::parse(url) else {
        // Not a URL this code can read: the client says what is wrong.
        return Ok((url.to_owned(), options));
    };
    let mut kept = Vec::new();
    let mut dedup = None;
    let mut maxlen = None;
    for (k, v) in parsed.query_pairs() {
        match &*k {
            "dedup" => dedup = Some(v.into_owned()),
            "maxlen" => maxlen = Some(v.into_owned()),
            _ => kept.push((k.into_owned(), v.into_owned())),
        }
    }
    if dedup.is_none() && maxlen.is_none() {
        return Ok((url.to_owned(), options));
    }
    if let Some(maxlen) = maxlen {
        // The streams' retention by size: `?maxlen=100000` trims each
        // stream to about that many entries as it grows.
        options.max_len = match maxlen.parse::<usize>() {
            Ok(0) => None,
            Ok(n) => Some(n),
            Err(_) => {
                return Err(bad(format!(
                    "`maxlen={maxlen}` is not a number of entries (0: keep everything)"
                )))
            }
        };
    }
    let Some(dedup) = dedup else {
        return Ok((strip(parsed, kept), options));
    };
    options.dedup_window = if dedup == "off" {
        None
    } else {
        let window: jiff::SignedDuration = dedup.parse().map_err(|e| {
            bad(format!(
                "`dedup={dedup}` is neither `off` nor a duration such as `2m` ({e})"
            ))
        })?;
        let window = Duration::try_from(window)
            .ok()
            .filter(|w| *w >= Duration::from_millis(1))
            .ok_or_else(|| bad(format!("`dedup={dedup}` is not a positive duration")))?;
        Some(window)
    };
    Ok((strip(parsed, kept), options))
}

/// `parsed` with only the `kept` query pairs (those of the client).
fn strip(mut parsed: url::Url, kept: Vec<(String, String)>) -> String {
    if kept.is_empty() {
        parsed.set_query(None);
    } else {
        parsed.query_pairs_mut().clear().extend_pairs(kept);
    }
    parsed.into()
}

impl RedisBroker {
    /// Connects to `url` with the default [`RedisOptions`].
    pub async fn connect(url: &str) -> Result<RedisBroker, BrokerError> {
        RedisBroker::connect_with(url, RedisOptions::default()).await
    }

    /// Connects to `url` (`redis://[user:password@]host:port[/db][?dedup=…]`,
    /// `rediss://…` over TLS with the settings of
    /// [`url`](super::url): `?tls_ca=/etc/choreo/ca.pem`) and
    /// checks that the server answers, within `options.connect_timeout`.
    ///
    /// The URL's `dedup` setting overrides `options.dedup_window`: a
    /// duration (`dedup=2m`, `dedup=90s`, `dedup=PT2M`) turns deduplication
    /// by the broker on with that window, `dedup=off` turns it off. Its
    /// `maxlen=N` sets `options.max_len`, the streams' retention by size
    /// (`maxlen=0`: none).
    pub async fn connect_with(
        url: &str,
        options: RedisOptions,
    ) -> Result<RedisBroker, BrokerError> {
        let (server_url, options) = url_settings(url, options)?;
        let url = server_url.as_str();
        let client = super::url::client(url).map_err(BrokerError::Other)?;
        let attempt = async {
            let conn = connection(&client, &options, options.response_timeout).await?;
            let mut c = conn.clone();
            let _: String = ::redis::cmd("PING")
                .query_async(&mut c)
                .await
                .map_err(|e| unavailable("PING", e))?;
            // Whether what was acknowledged survives a restart: AOF on.
            // A user with least privilege may not read the configuration
            // (`choreoc export permissions` grants no `CONFIG`): then it
            // is not known, and not said to be off.
            let appendonly: Result<Vec<String>, RedisError> = ::redis::cmd("CONFIG")
                .arg("GET")
                .arg("appendonly")
                .query_async(&mut c)
                .await;
            let refused = appendonly
                .as_ref()
                .is_err_and(|e| e.code() == Some("NOPERM"));
            let durable = appendonly
                .unwrap_or_default()
                .get(1)
                .is_some_and(|v| v == "yes");
            Ok::<_, BrokerError>((conn, durable, refused))
        };
        let (conn, durable, refused) =
            pull::within(options.connect_timeout, "Redis", attempt).await?;
        if refused {
            tracing::info!(
                url = %crate::store::describe(url),
                "this Redis user may not read whether appendonly is on (CONFIG GET refused)"
            );
        } else if !durable {
            tracing::warn!(
                url = %crate::secret::redact(url),
                "Redis runs without appendonly: a restart of the server loses the streams"
            );
        }
        Ok(RedisBroker {
            inner: Arc::new(Inner {
                url: url.to_owned(),
                client,
                conn,
                options,
                publish: Script::new(PUBLISH),
                durable,
                life: Lifecycle::new(),
            }),
        })
    }

    /// A connection to the server, for administration beyond the broker
    /// contract (trimming, clean-up).
    pub fn connection(&self) -> ConnectionManager {
        self.inner.conn.clone()
    }

    /// The key of the stream of `topic`.
    pub fn stream_key(&self, topic: &str) -> String {
        self.inner.key(topic)
    }
}

/// A connection that reconnects by itself.
pub(super) async fn connection(
    client: &Client,
    options: &RedisOptions,
    response_timeout: Duration,
) -> Result<ConnectionManager, BrokerError> {
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(options.connect_timeout))
        .set_response_timeout(Some(response_timeout))
        .set_number_of_retries(2)
        .set_max_delay(Duration::from_secs(1));
    ConnectionManager::new_with_config(client.clone(), config)
        .await
        .map_err(|e| unavailable("connect", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(url: &str) -> Result<(String, Option<Duration>), BrokerError> {
        url_settings(url, RedisOptions::default()).map(|(u, o)| (u, o.dedup_window))
    }

    #[test]
    fn the_url_turns_broker_deduplication_on_and_off() {
        assert_eq!(
            settings("redis://127.0.0.1:6379").unwrap(),
            ("redis://127.0.0.1:6379".into(), None),
            "off by default, the URL untouched"
        );
        assert_eq!(
            settings("redis://127.0.0.1:6379/2?dedup=2m").unwrap(),
            (
                "redis://127.0.0.1:6379/2".into(),
                Some(Duration::from_secs(120))
            )
        );
        assert_eq!(
            settings("redis://h:1?protocol=resp3&dedup=PT90S").unwrap(),
            (
                "redis://h:1?protocol=resp3".into(),
                Some(Duration::from_secs(90))
            ),
            "the client's own settings stay"
        );
        let on = RedisOptions {
            dedup_window: Some(Duration::from_secs(5)),
            ..RedisOptions::default()
        };
        assert_eq!(
            url_settings("redis://h:1?dedup=off", on)
                .unwrap()
                .1
                .dedup_window,
            None
        );
    }

    #[test]
    fn the_url_sets_the_streams_retention_by_size() {
        let (url, o) = url_settings(
            "redis://h:1/2?maxlen=5000&dedup=2m",
            RedisOptions::default(),
        )
        .unwrap();
        assert_eq!(url, "redis://h:1/2");
        assert_eq!(
            (o.max_len, o.dedup_window),
            (Some(5000), Some(Duration::from_secs(120)))
        );
        let (url, o) = url_settings("redis://h:1?maxlen=0", RedisOptions::default()).unwrap();
        assert_eq!((url.as_str(), o.max_len), ("redis://h:1", None));
        let e = url_settings("redis://:pw@h:1?maxlen=lots", RedisOptions::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("maxlen=lots") && !e.contains("pw"), "{e}");
    }

    #[test]
    fn a_bad_dedup_setting_is_a_clear_error() {
        for bad in ["soon", "-5s", "0s", ""] {
            let err = settings(&format!("redis://h:1?dedup={bad}")).unwrap_err();
            let text = err.to_string();
            assert!(text.contains(&format!("`dedup={bad}`")), "{text}");
        }
    }
}
