//! Calling a generated HTTP ingress, as a client of the example would.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
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
#[derive(Debug, Clone)]
pub struct HttpClient {
    base: String,
    http: reqwest::Client,
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
        }
    }

    /// `POST path` with `body`: the command was accepted.
    pub async fn post<B: Serialize + ?Sized>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<Accepted, ClientError> {
        self.send("POST", self.http.post(self.url(path)).json(body), path)
            .await
    }

    /// `PUT path` with `body`.
    pub async fn put<B: Serialize + ?Sized>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<Accepted, ClientError> {
        self.send("PUT", self.http.put(self.url(path)).json(body), path)
            .await
    }

    /// `DELETE path` with `body`.
    pub async fn delete<B: Serialize + ?Sized>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<Accepted, ClientError> {
        self.send("DELETE", self.http.delete(self.url(path)).json(body), path)
            .await
    }

    /// `GET path`, decoded.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.send("GET", self.http.get(self.url(path)), path).await
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
            .http
            .request(method, &url)
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

    async fn send<T: DeserializeOwned>(
        &self,
        method: &'static str,
        request: reqwest::RequestBuilder,
        path: &str,
    ) -> Result<T, ClientError> {
        let url = self.url(path);
        let transport = |source| ClientError::Transport {
            method,
            url: url.clone(),
            source,
        };
        let response = request.send().await.map_err(transport)?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(ClientError::Status {
                method,
                url,
                status,
                body,
            });
        }
        response.json::<T>().await.map_err(transport)
    }
}
