//! What a generated HTTP ingress uses (feature `http`): axum, and the
//! responses every route gives, so that generated routes stay short.
//!
//! A generated ingress decodes a request body into the command's type
//! before anything is sent: a body that does not decode is answered `400`
//! with the reason, and nothing reaches the broker. An accepted command is
//! answered `202` with the instance key and the command's event id, and a
//! `Location` header where the instance's state can be read.

use serde::de::DeserializeOwned;

pub use axum;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use crate::broker::BrokerError;
use crate::envelope::EventId;
use crate::progress::{InstanceProgress, InstanceTracker, TerminalKind};

/// `{"error": message}` with `status`.
pub fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "error": message.into() }))).into_response()
}

/// Decodes a JSON request body; an empty body is `{}`, so commands whose
/// fields are all optional need none. A body that does not decode is a
/// `400` response naming the problem.
// The error is the response a handler returns at once; boxing it would
// only add an allocation to the rejection path.
#[allow(clippy::result_large_err)]
pub fn decode_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, Response> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        &b"{}"[..]
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            format!(
                "the request body is not a valid {}: {e}",
                short_type_name::<T>()
            ),
        )
    })
}

fn short_type_name<T>() -> &'static str {
    let full = std::any::type_name::<T>();
    full.rsplit("::").next().unwrap_or(full)
}

/// Parses the instance key of a path; a `400` response when it is not one.
#[allow(clippy::result_large_err)]
pub fn parse_key<K: std::str::FromStr>(raw: &str, key_name: &str) -> Result<K, Response>
where
    K::Err: std::fmt::Display,
{
    raw.parse::<K>().map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            format!("`{raw}` is not a valid {key_name}: {e}"),
        )
    })
}

/// `202 Accepted`: the command was sent for instance `key`.
pub fn accepted(key: &str, id: &EventId, location: &str) -> Response {
    (
        StatusCode::ACCEPTED,
        [(header::LOCATION, location.to_string())],
        axum::Json(json!({ "key": key, "event_id": id.to_string(), "state": location })),
    )
        .into_response()
}

/// The answer when the broker refused the command: `503`, nothing sent.
pub fn unavailable(e: BrokerError) -> Response {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("the command was not sent: {e}"),
    )
}

/// `200` with how far instance `key` has got, or `404` if the tracker has
/// not seen it.
pub fn state(tracker: &InstanceTracker, key: &str) -> Response {
    match tracker.instance(key) {
        Some(progress) => axum::Json(progress_json(&progress)).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            format!("no instance `{key}` is known"),
        ),
    }
}

/// An instance's progress as JSON.
pub fn progress_json(p: &InstanceProgress) -> Value {
    json!({
        "key": p.key.as_str(),
        "settled": p.settled,
        "outcome": p.outcome.as_ref().map(|o| json!({
            "event": o.event_type.as_str(),
            "kind": match o.kind { TerminalKind::Success => "success", TerminalKind::Failure => "failure" },
        })),
        "events": p.events.iter().map(|e| json!({ "id": e.id.to_string(), "type": e.ty.as_str() })).collect::<Vec<_>>(),
        "pending": p.pending.iter().map(|r| json!({
            "participant": r.participant.as_str(),
            "reaction": r.reaction.as_str(),
            "event": r.event_type.as_str(),
        })).collect::<Vec<_>>(),
        "dead_letters": p.dead_letters.iter().map(|d| json!({
            "participant": d.participant.as_str(),
            "reaction": d.reaction.as_str(),
            "event_id": d.event_id.to_string(),
            "reason": d.reason,
        })).collect::<Vec<_>>(),
    })
}

/// A fresh numeric key, for choreographies keyed by integers whose
/// starting command does not name its key.
pub fn new_numeric_key() -> u64 {
    fastrand::u64(1..u64::MAX / 2)
}
