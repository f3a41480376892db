//! What a generated HTTP ingress uses (feature `http`): axum, and the
//! responses every route gives, so that generated routes stay short.
//!
//! A generated ingress decodes a request body into the command's type
//! before anything is sent: a body that does not decode is answered `400`
//! with the reason, and nothing reaches the broker. An accepted command is
//! answered `202` with the instance key and the command's event id, and a
//! `Location` header where the instance's state can be read.
//!
//! What a route also does, and why, is in docs/codegen.md ("The HTTP
//! ingress"): the instance key from the path or the [`KEY_HEADER`], a
//! generated key only for `uuid` keys, [`idempotency`] under an
//! `Idempotency-Key`, the body limit ([`IngressOptions::body_limit`]), and
//! [`auth::bearer`] as the authentication hook.

pub mod auth;
pub mod idempotency;

use std::sync::Arc;
use std::time::Instant;

use serde::de::DeserializeOwned;

pub use axum;
use axum::extract::rejection::BytesRejection;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

pub use auth::bearer;
use idempotency::{IdempotencyKeys, IdempotencyOptions, Seen};

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

/// The answer when the broker did not take the command: `503`. The
/// client ([`Client::send`](crate::service::Client::send)) has tried it
/// again through an outage for its patience (10 s) first.
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

/// The header a client gives the instance key in when the route's path
/// does not name it.
pub const KEY_HEADER: &str = "choreo-key";

/// The header that makes a retried request the same command
/// ([`idempotency`]).
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";

/// The largest request body taken by default, in bytes (64 KiB).
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;

/// How a generated ingress treats requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IngressOptions {
    /// The largest request body taken, in bytes; a larger one is answered
    /// `413` ([`DEFAULT_BODY_LIMIT`] by default).
    pub body_limit: usize,
    /// How many `Idempotency-Key`s are remembered, and for how long.
    pub idempotency: IdempotencyOptions,
}

impl Default for IngressOptions {
    fn default() -> Self {
        IngressOptions {
            body_limit: DEFAULT_BODY_LIMIT,
            idempotency: IdempotencyOptions::default(),
        }
    }
}

/// What the routes of one generated ingress share besides its commands:
/// the instance tracker, the options and the `Idempotency-Key`s seen.
#[derive(Clone)]
pub struct IngressState {
    /// The tracker the `GET` routes read.
    pub tracker: Arc<InstanceTracker>,
    options: IngressOptions,
    keys: Arc<IdempotencyKeys>,
}

impl IngressState {
    /// The state of an ingress reading `tracker`, under `options`.
    pub fn new(tracker: Arc<InstanceTracker>, options: IngressOptions) -> Self {
        IngressState {
            tracker,
            options,
            keys: Arc::new(IdempotencyKeys::new(options.idempotency)),
        }
    }

    /// The options.
    pub fn options(&self) -> IngressOptions {
        self.options
    }

    /// The event id of a command of type `command` for instance `key`,
    /// with `body`: derived from the request's `Idempotency-Key` when it
    /// has one, else fresh. The same key with another command, instance or
    /// body (while the key is remembered) is a `422` response.
    #[allow(clippy::result_large_err)]
    pub fn event_id(
        &self,
        request: &CommandRequest<'_>,
        key: &str,
        body: &[u8],
    ) -> Result<EventId, Response> {
        let Some(idempotency_key) = request.idempotency_key else {
            return Ok(EventId::now());
        };
        let digest = idempotency::request_digest(request.command, key, body);
        match self.keys.admit(idempotency_key, digest, Instant::now()) {
            Seen::First | Seen::Again => {
                Ok(idempotency::event_id(idempotency_key, request.command, key))
            }
            Seen::Conflict => Err(error(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!(
                    "the idempotency key `{idempotency_key}` was used for another request; \
                     a retry must send the same command, instance key and body"
                ),
            )),
        }
    }
}

/// The headers of a command's request that choose its instance key and
/// event id.
#[derive(Debug, Clone, Copy)]
pub struct CommandRequest<'a> {
    command: &'static str,
    idempotency_key: Option<&'a str>,
    key_header: Option<&'a str>,
}

impl<'a> CommandRequest<'a> {
    /// Reads the headers of a request for a command of type `command`
    /// (its wire type); a `400` response when the `Idempotency-Key` or
    /// [`KEY_HEADER`] is not visible ASCII, or the key is longer than
    /// [`idempotency::MAX_KEY_LEN`].
    #[allow(clippy::result_large_err)]
    pub fn read(headers: &'a HeaderMap, command: &'static str) -> Result<Self, Response> {
        let text = |name: &str| -> Result<Option<&'a str>, Response> {
            let Some(value) = headers.get(name) else {
                return Ok(None);
            };
            match value.to_str() {
                Ok(v) if !v.trim().is_empty() => Ok(Some(v.trim())),
                _ => Err(error(
                    StatusCode::BAD_REQUEST,
                    format!("the `{name}` header must be visible ASCII text, not empty"),
                )),
            }
        };
        let idempotency_key = text(IDEMPOTENCY_HEADER)?;
        if idempotency_key.is_some_and(|k| k.len() > idempotency::MAX_KEY_LEN) {
            return Err(error(
                StatusCode::BAD_REQUEST,
                format!(
                    "the `{IDEMPOTENCY_HEADER}` header is longer than {} bytes",
                    idempotency::MAX_KEY_LEN
                ),
            ));
        }
        Ok(CommandRequest {
            command,
            idempotency_key,
            key_header: text(KEY_HEADER)?,
        })
    }

    /// The `Idempotency-Key`, if given.
    pub fn idempotency_key(&self) -> Option<&'a str> {
        self.idempotency_key
    }

    /// The instance key given in the [`KEY_HEADER`], if any.
    pub fn key_header(&self) -> Option<&'a str> {
        self.key_header
    }

    /// The instance key given in the [`KEY_HEADER`]; a `400` response
    /// naming `route` and the key `key_name` when there is none.
    #[allow(clippy::result_large_err)]
    pub fn required_key(&self, route: &str, key_name: &str) -> Result<&'a str, Response> {
        self.key_header.ok_or_else(|| {
            error(
                StatusCode::BAD_REQUEST,
                format!(
                    "`{route}` needs the instance key `{key_name}`: \
                     give it in the `{KEY_HEADER}` header"
                ),
            )
        })
    }

    /// A `uuid` instance key for a request that gives none: derived from
    /// the `Idempotency-Key` (so that a retry gets the same), else random
    /// (version 4).
    pub fn new_uuid_key(&self) -> crate::types::Uuid {
        match self.idempotency_key {
            Some(k) => idempotency::instance_key(k, self.command),
            None => crate::types::Uuid::new_v4(),
        }
    }
}

/// The request body, or the response to a body that could not be read:
/// `413` past the `limit` (in bytes), else the rejection's own status,
/// with a JSON error either way.
#[allow(clippy::result_large_err)]
pub fn read_body(
    body: Result<bytes::Bytes, BytesRejection>,
    limit: usize,
) -> Result<bytes::Bytes, Response> {
    body.map_err(|rejection| {
        let status = rejection.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            too_large(limit)
        } else {
            error(
                status,
                format!("the request body cannot be read: {}", rejection.body_text()),
            )
        }
    })
}

/// `413` for a body over `limit` bytes.
pub fn too_large(limit: usize) -> Response {
    error(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("the request body is larger than the limit of {limit} bytes"),
    )
}
