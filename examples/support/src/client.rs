//! Calling a generated HTTP ingress, as a client of the example would.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// What an ingress answers a command it sent (`202 Accepted`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Accepted {
    /// The instance key.
    pub key: String,
    /// The command's event id.
    pub event_id: String,
    /// Where the instance's state can be read.
    pub state: String,
}

/// A request the ingress did not accept, or that did not reach it.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No answer.
    #[error("{method} {url}: {source}")]
    Transport {
        /// The method.
        method: &'static str,
        /// The URL.
        url: String,
        /// Why.
        source: reqwest::Error,
    },
    /// An answer other than the one expected.
    #[error("{method} {url}: {status}: {body}")]
    Status {
        /// The method.
        method: &'static str,
        /// The URL.
        url: String,
        /// The status.
        status: reqwest::StatusCode,
        /// The body.
        body: String,
    },
}

/// A JSON client of one ingress.
///
/// Like a real client, it sends a command again when the ingress could
/// not send it: answered `503 Service Unavailable` (the ingress's broker
/// did not take it, as during a broker restart: nothing was sent), or the
/// connection refused (the request never reached the server). It waits
/// between tries from [`RETRY_FIRST`], doubling up to [`RETRY_CAP`], each
/// wait drawn at random between half of it and all of it, and gives up at
/// the deadline of [`HttpClient::retry_until`] (by default
/// [`RETRY_FOR`] after the request was first sent) with the last error.
/// Any other status is an error at once. Clones share the counts
/// ([`HttpClient::retried`]).
///
/// Every command it sends carries an `Idempotency-Key` of its own, the
/// same on each try, so that a try whose answer was lost (a timeout, a
/// cut connection) and that the ingress took after all is not a second
/// command. With [`HttpClient::with_token`] every request carries
/// `Authorization: Bearer <token>`.
#[derive(Clone)]
pub struct HttpClient {
    base: String,
    http: reqwest::Client,
    until: Option<tokio::time::Instant>,
    retries: Arc<Retries>,
    token: Option<Arc<str>>,
}

// Never shows the token.
impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("base", &self.base)
            .field("token", &self.token.as_ref().map(|_| ".."))
            .finish_non_exhaustive()
    }
}

/// The first wait before a command is sent again.
pub const RETRY_FIRST: Duration = Duration::from_millis(50);
/// The longest wait between two tries of a command.
pub const RETRY_CAP: Duration = Duration::from_secs(2);
/// How long a request is tried again without [`HttpClient::retry_until`].
pub const RETRY_FOR: Duration = Duration::from_secs(30);

#[derive(Debug, Default)]
struct Retries {
    after_503: AtomicU64,
    after_refusal: AtomicU64,
}

/// Why a try failed in a way worth another.
enum Retry {
    Unavailable,
    Refused,
}

impl HttpClient {
    /// A client of the ingress at `base` (`http://127.0.0.1:8080`).
    pub fn new(base: impl Into<String>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(256)
            .build()
            .unwrap_or_default();
        HttpClient {
            base: base.into().trim_end_matches('/').to_string(),
            http,
            until: None,
            retries: Arc::default(),
            token: None,
        }
    }

    /// The ingress's URL (`http://127.0.0.1:8080`).
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends `Authorization: Bearer <token>` with every request (none:
    /// no header).
    pub fn with_token(mut self, token: Option<&str>) -> Self {
        self.token = token.map(Arc::from);
        self
    }

    /// `request` with the bearer token, if any.
    fn authorized(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(t) => request.bearer_auth(t),
            None => request,
        }
    }

    /// `request` of a command: the bearer token, and `key` as its
    /// `Idempotency-Key`.
    fn command(&self, request: reqwest::RequestBuilder, key: &str) -> reqwest::RequestBuilder {
        self.authorized(request).header("idempotency-key", key)
    }

    /// Tries a request answered `503`, or whose connection was refused,
    /// again until `deadline` (a run's own timeout), instead of for
    /// [`RETRY_FOR`] from its first try.
    pub fn retry_until(mut self, deadline: tokio::time::Instant) -> Self {
        self.until = Some(deadline);
        self
    }

    /// Requests sent again after a `503` (by this client and its clones).
    pub fn retried(&self) -> u64 {
        self.retries.after_503.load(Ordering::Relaxed)
    }

    /// Requests sent again after the connection was refused (by this
    /// client and its clones).
    pub fn retried_after_refusal(&self) -> u64 {
        self.retries.after_refusal.load(Ordering::Relaxed)
    }

    /// `POST path` with `body`: the command was accepted.
    pub async fn post<B: Serialize + ?Sized>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<Accepted, ClientError> {
        let url = self.url(path);
        let key = choreo_runtime::types::Uuid::new_v4().to_string();
        self.send("POST", &url, || {
            self.command(self.http.post(&url), &key).json(body)
        })
        .await
    }

    /// `PUT path` with `body`.
    pub async fn put<B: Serialize + ?Sized>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<Accepted, ClientError> {
        let url = self.url(path);
        let key = choreo_runtime::types::Uuid::new_v4().to_string();
        self.send("PUT", &url, || {
            self.command(self.http.put(&url), &key).json(body)
        })
        .await
    }

    /// `DELETE path` with `body`.
    pub async fn delete<B: Serialize + ?Sized>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<Accepted, ClientError> {
        let url = self.url(path);
        let key = choreo_runtime::types::Uuid::new_v4().to_string();
        self.send("DELETE", &url, || {
            self.command(self.http.delete(&url), &key).json(body)
        })
        .await
    }

    /// `GET path`, decoded.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let url = self.url(path);
        self.send("GET", &url, || self.authorized(self.http.get(&url)))
            .await
    }

    /// `method path` with a raw body: the status and body of the answer,
    /// whatever they are (for tests of bad requests).
    pub async fn raw(
        &self,
        method: reqwest::Method,
        path: &str,
        body: impl Into<reqwest::Body>,
    ) -> Result<(reqwest::StatusCode, String), ClientError> {
        let url = self.url(path);
        let transport = |source| ClientError::Transport {
            method: "request",
            url: url.clone(),
            source,
        };
        let response = self
            .authorized(self.http.request(method, &url))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(transport)?;
        let status = response.status();
        let text = response.text().await.map_err(transport)?;
        Ok((status, text))
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends what `request` makes, again after a `503` or a refused
    /// connection (see [`HttpClient`]), and decodes a success.
    async fn send<T: DeserializeOwned>(
        &self,
        method: &'static str,
        url: &str,
        request: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<T, ClientError> {
        let deadline = self
            .until
            .unwrap_or_else(|| tokio::time::Instant::now() + RETRY_FOR);
        let mut wait = RETRY_FIRST;
        loop {
            let (error, why) = match self.try_once(method, url, request()).await {
                Ok(answer) => return Ok(answer),
                Err(e) => {
                    let why = match &e {
                        ClientError::Status { status, .. }
                            if *status == reqwest::StatusCode::SERVICE_UNAVAILABLE =>
                        {
                            Retry::Unavailable
                        }
                        ClientError::Transport { source, .. } if source.is_connect() => {
                            Retry::Refused
                        }
                        _ => return Err(e),
                    };
                    (e, why)
                }
            };
            // Between half the wait and all of it, so that clients turned
            // away together do not come back together.
            let half = wait / 2;
            let pause = half + half.mul_f64(fastrand::f64());
            if tokio::time::Instant::now() + pause >= deadline {
                return Err(error);
            }
            tokio::time::sleep(pause).await;
            wait = (wait * 2).min(RETRY_CAP);
            let counter = match why {
                Retry::Unavailable => &self.retries.after_503,
                Retry::Refused => &self.retries.after_refusal,
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// One try: the decoded answer, or why not.
    async fn try_once<T: DeserializeOwned>(
        &self,
        method: &'static str,
        url: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<T, ClientError> {
        let transport = |source| ClientError::Transport {
            method,
            url: url.to_string(),
            source,
        };
        let response = request.send().await.map_err(transport)?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(ClientError::Status {
                method,
                url: url.to_string(),
                status,
                body,
            });
        }
        response.json::<T>().await.map_err(transport)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::serve;
    use choreo_runtime::http::axum;
    use std::sync::atomic::AtomicUsize;

    /// An ingress whose `POST /orders` answers `503` to the first `k`
    /// requests (as one whose broker is restarting), then `202`; and whose
    /// `POST /bad` answers `400`.
    fn flaky(k: usize, calls: Arc<AtomicUsize>) -> axum::Router {
        use axum::http::StatusCode;
        let orders = move || {
            let calls = calls.clone();
            async move {
                let n = calls.fetch_add(1, Ordering::SeqCst);
                if n < k {
                    return choreo_runtime::http::error(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "the command was not sent: the broker is away",
                    );
                }
                let id = choreo_runtime::EventId::from(format!("event-{n}").as_str());
                choreo_runtime::http::accepted(&format!("key-{n}"), &id, "/orders/key")
            }
        };
        let bad =
            || async { choreo_runtime::http::error(StatusCode::BAD_REQUEST, "no such product") };
        axum::Router::new()
            .route("/orders", axum::routing::post(orders))
            .route("/bad", axum::routing::post(bad))
    }

    #[tokio::test]
    async fn a_503_is_sent_again_until_accepted_and_counted() {
        let calls = Arc::new(AtomicUsize::new(0));
        let server = serve(flaky(3, calls.clone()), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let client = HttpClient::new(server.base_url())
            .retry_until(tokio::time::Instant::now() + Duration::from_secs(20));
        let accepted = client
            .post("/orders", &serde_json::json!({ "product_id": 1 }))
            .await
            .unwrap();
        // The 202's answer, after three 503s.
        assert_eq!(accepted.key, "key-3");
        assert_eq!(accepted.event_id, "event-3");
        assert_eq!(calls.load(Ordering::SeqCst), 4);
        assert_eq!((client.retried(), client.retried_after_refusal()), (3, 0));
        // Clones share the counts.
        let clone = client.clone();
        clone.post("/orders", &serde_json::json!({})).await.unwrap();
        assert_eq!(client.retried(), 3);
        // Any other status is an error at once.
        match client.post("/bad", &serde_json::json!({})).await {
            Err(ClientError::Status { status, body, .. }) => {
                assert_eq!(status, reqwest::StatusCode::BAD_REQUEST);
                assert!(body.contains("no such product"), "{body}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(client.retried(), 3);
        server.shutdown().await.unwrap();
    }

    #[tokio::test]
    async fn a_503_past_the_deadline_is_the_error() {
        let calls = Arc::new(AtomicUsize::new(0));
        let server = serve(
            flaky(usize::MAX, calls.clone()),
            "127.0.0.1:0".parse().unwrap(),
        )
        .await
        .unwrap();
        let started = tokio::time::Instant::now();
        let client =
            HttpClient::new(server.base_url()).retry_until(started + Duration::from_millis(400));
        match client.post("/orders", &serde_json::json!({})).await {
            Err(ClientError::Status { status, .. }) => {
                assert_eq!(status, reqwest::StatusCode::SERVICE_UNAVAILABLE);
            }
            other => panic!("{other:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(2));
        let tries = calls.load(Ordering::SeqCst) as u64;
        assert!(tries >= 2, "{tries}");
        assert_eq!(client.retried(), tries - 1);
        server.shutdown().await.unwrap();
    }

    #[tokio::test]
    async fn a_refused_connection_is_tried_again_until_the_server_listens() {
        // A port nothing listens on, for a while.
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let calls = Arc::new(AtomicUsize::new(0));
        let late = tokio::spawn({
            let calls = calls.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(400)).await;
                serve(flaky(0, calls), addr).await.unwrap()
            }
        });
        let client = HttpClient::new(format!("http://{addr}"))
            .retry_until(tokio::time::Instant::now() + Duration::from_secs(20));
        let accepted = client
            .post("/orders", &serde_json::json!({}))
            .await
            .unwrap();
        assert_eq!(accepted.key, "key-0");
        assert!(client.retried_after_refusal() >= 1);
        assert_eq!(client.retried(), 0);
        late.await.unwrap().shutdown().await.unwrap();
    }
}
