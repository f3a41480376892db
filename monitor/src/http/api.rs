//! The JSON API: the summary, the instances by state, one instance.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use super::Site;
use crate::watch::InstanceView;
use crate::InstanceState;

/// The most instances one request lists.
pub const MAX_LIMIT: usize = 10_000;
const DEFAULT_LIMIT: usize = 100;

/// An error, as JSON: `{"error": "…"}`.
pub(super) fn error(status: StatusCode, message: impl Into<String>) -> Response {
    #[derive(Serialize)]
    struct Error {
        error: String,
    }
    (
        status,
        Json(Error {
            error: message.into(),
        }),
    )
        .into_response()
}

pub(super) async fn summary(State(site): State<Site>) -> Response {
    Json(site.monitor().summary()).into_response()
}

/// One instance in a list: its key, state and why.
#[derive(Debug, Clone, Serialize)]
pub(super) struct Brief {
    key: String,
    state: InstanceState,
    reason: Option<String>,
    /// When its first event was seen (milliseconds since the epoch).
    started_ms: Option<i64>,
    /// When its last event was seen.
    last_ms: Option<i64>,
    /// Events seen.
    events: usize,
    /// Who it waits for: `Seller on PaymentApproved`.
    waiting: Vec<String>,
}

impl From<InstanceView> for Brief {
    fn from(v: InstanceView) -> Brief {
        Brief {
            started_ms: v.events.first().map(|e| e.at_ms),
            last_ms: v.events.iter().map(|e| e.at_ms).max(),
            events: v.events.len(),
            waiting: v
                .waiting
                .iter()
                .map(|w| format!("{} on {}", w.participant, w.events.join(", ")))
                .collect(),
            key: v.key,
            state: v.state,
            reason: v.reason,
        }
    }
}

/// `state` and `limit` of a query string, or what is wrong with it.
fn list_query(query: Option<&str>) -> Result<(Option<InstanceState>, usize), String> {
    let mut state = None;
    let mut limit = DEFAULT_LIMIT;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        match name {
            "state" if !value.is_empty() => state = Some(value.parse::<InstanceState>()?),
            "state" => {}
            "limit" => {
                limit = value.parse::<usize>().map_err(|_| {
                    format!("`limit` takes a number from 1 to {MAX_LIMIT}, not `{value}`")
                })?;
                if limit == 0 || limit > MAX_LIMIT {
                    return Err(format!(
                        "`limit` takes a number from 1 to {MAX_LIMIT}, not `{value}`"
                    ));
                }
            }
            other => {
                return Err(format!(
                    "no query parameter `{other}`: the parameters are `state` and `limit`"
                ))
            }
        }
    }
    Ok((state, limit))
}

pub(super) async fn instances(State(site): State<Site>, RawQuery(query): RawQuery) -> Response {
    match list_query(query.as_deref()) {
        Ok((state, limit)) => {
            let list: Vec<Brief> = site
                .monitor()
                .instances(state, limit)
                .into_iter()
                .map(Brief::from)
                .collect();
            Json(list).into_response()
        }
        Err(message) => error(StatusCode::BAD_REQUEST, message),
    }
}

pub(super) async fn instance(State(site): State<Site>, Path(key): Path<String>) -> Response {
    match site.monitor().instance(&key) {
        Some(view) => Json(view).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            format!("no instance `{key}`: none of its events was seen, or it settled long enough ago to be forgotten"),
        ),
    }
}

pub(super) async fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "no such page: the API is under /api/summary, /api/instances and /metrics",
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn query_strings_are_read_or_refused_with_a_reason() {
        assert_eq!(list_query(None).unwrap(), (None, DEFAULT_LIMIT));
        assert_eq!(
            list_query(Some("state=stuck&limit=5")).unwrap(),
            (Some(InstanceState::Stuck), 5)
        );
        assert_eq!(list_query(Some("state=&limit=7")).unwrap(), (None, 7));
        assert!(list_query(Some("state=lost"))
            .unwrap_err()
            .contains("`lost`"));
        assert!(list_query(Some("limit=0")).is_err());
        assert!(list_query(Some("limit=-1")).is_err());
        assert!(list_query(Some("limit=99999999")).is_err());
        assert!(list_query(Some("order=asc"))
            .unwrap_err()
            .contains("`order`"));
    }
}
