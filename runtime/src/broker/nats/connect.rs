//! Connecting: the adapter's options, the connection (with the URL's
//! settings, [`super::url`]) and the check that JetStream answers.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_nats::jetstream;
use bytes::Bytes;

use super::url::url_settings;
use super::{unavailable, Inner, NatsBroker};
use crate::broker::pull::{self, Lifecycle};
use crate::broker::BrokerError;

/// Settings of a [`NatsBroker`]. [`NatsOptions::default`] is what
/// `connect("nats://…")` uses.
#[derive(Debug, Clone, PartialEq)]
pub struct NatsOptions {
    /// The longest wait to connect (and to find JetStream) before
    /// [`NatsBroker::connect`] gives up.
    pub connect_timeout: Duration,
    /// The longest wait for a JetStream API answer or a publish
    /// acknowledgement.
    pub request_timeout: Duration,
    /// Replicas of the streams this adapter creates (1 on a single server;
    /// 3 on a cluster for durability against the loss of a node).
    pub replicas: usize,
    /// The age after which the streams this adapter creates drop messages
    /// (zero: never).
    pub max_age: Duration,
    /// How long the streams this adapter creates remember message ids to
    /// drop a second publish of one.
    pub duplicate_window: Duration,
    /// How long one pull request waits on the server for messages.
    pub pull_expires: Duration,
}

impl Default for NatsOptions {
    fn default() -> Self {
        NatsOptions {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(5),
            replicas: 1,
            max_age: Duration::ZERO,
            duplicate_window: Duration::from_secs(120),
            pull_expires: Duration::from_secs(2),
        }
    }
}

/// The inbox prefix of a connection as `user`: `_INBOX_<user>` (characters
/// a subject token cannot have become `_`). Its replies (JetStream's
/// answers and acknowledgements, pulled messages) come on
/// `_INBOX_<user>.>`, the one subject its permissions let it subscribe to.
pub fn inbox_prefix(user: &str) -> String {
    let token: String = user
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("_INBOX_{token}")
}

impl NatsBroker {
    /// Connects to `url` with the default [`NatsOptions`].
    pub async fn connect(url: &str) -> Result<NatsBroker, BrokerError> {
        NatsBroker::connect_with(url, NatsOptions::default()).await
    }

    /// Connects to `url` (`nats://host:port`, several comma-separated;
    /// `tls://` for TLS) and checks that JetStream answers, all within
    /// `options.connect_timeout`. The URL's query sets what it names over
    /// `options`, and TLS and credentials (see [`url_settings`] and the
    /// module [`url`](super::url)): `?replicas=3&max_age=7d`,
    /// `?tls_ca=/etc/choreo/ca.pem&nkey_seed_file=/run/secrets/seed`.
    pub async fn connect_with(
        url: &str,
        mut options: NatsOptions,
    ) -> Result<NatsBroker, BrokerError> {
        let (servers, settings) = url_settings(url)?;
        if let Some(r) = settings.replicas {
            options.replicas = r;
        }
        if let Some(age) = settings.max_age {
            options.max_age = age;
        }
        // The broker keeps the URL as given: stores opened from it
        // (`Stores::of_broker`) read the same settings.
        let given = url;
        let attempt = async {
            let base = async_nats::ConnectOptions::new()
                .name("choreo")
                .connection_timeout(options.connect_timeout)
                .request_timeout(Some(options.request_timeout));
            let client = super::url::connect(base, &servers, &settings)
                .await
                .map_err(|e| unavailable("connect", e))?;
            let js = jetstream::ContextBuilder::new()
                .timeout(options.request_timeout)
                .build(client.clone());
            // The account's JetStream information; parsed loosely, as
            // servers of different versions answer with different fields.
            let no_js = "JetStream (is the server started with -js?)";
            let answer = client
                .request("$JS.API.INFO", Bytes::new())
                .await
                .map_err(|e| unavailable(no_js, e))?;
            let info: serde_json::Value =
                serde_json::from_slice(&answer.payload).map_err(|e| unavailable(no_js, e))?;
            if let Some(err) = info.get("error") {
                return Err(unavailable(no_js, err));
            }
            Ok::<_, BrokerError>((client, js))
        };
        let (client, js) = pull::within(options.connect_timeout, "NATS", attempt).await?;
        Ok(NatsBroker {
            inner: Arc::new(Inner {
                url: given.to_owned(),
                client,
                js,
                options,
                streams: RwLock::new(HashMap::new()),
                life: Lifecycle::new(),
            }),
        })
    }

    /// The JetStream context this broker uses, for administration (stream
    /// limits, clean-up) beyond the broker contract.
    pub fn jetstream(&self) -> &jetstream::Context {
        &self.inner.js
    }
}
