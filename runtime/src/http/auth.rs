//! A bearer-token check in front of an ingress: a tower layer, added with
//! `router.layer(bearer(token))` like any other.
//!
//! tower-http's own `ValidateRequestHeaderLayer::bearer` is deprecated and
//! compares tokens with `==`; this check compares them in constant time
//! (`subtle`), so how long a refusal takes does not tell how much of a
//! guessed token was right (a token's length is not hidden).

use axum::http::{header, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;
use tower_http::validate_request::{ValidateRequest, ValidateRequestHeaderLayer};

/// Lets through only requests with `Authorization: Bearer <token>`; any
/// other is answered `401` with `WWW-Authenticate: Bearer` and a JSON
/// error, before its body is read.
///
/// An empty token lets nothing through.
pub fn bearer(token: impl Into<String>) -> ValidateRequestHeaderLayer<Bearer> {
    ValidateRequestHeaderLayer::custom(Bearer {
        expected: std::sync::Arc::from(format!("Bearer {}", token.into()).into_bytes()),
    })
}

/// The check of [`bearer`].
#[derive(Clone)]
pub struct Bearer {
    // The whole header value expected, `Bearer <token>`.
    expected: std::sync::Arc<[u8]>,
}

// Never shows the token.
impl std::fmt::Debug for Bearer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Bearer(..)")
    }
}

impl<B> ValidateRequest<B> for Bearer {
    type ResponseBody = axum::body::Body;

    fn validate(&mut self, request: &mut Request<B>) -> Result<(), Response> {
        let given = request.headers().get(header::AUTHORIZATION);
        let why = match given {
            None => "this ingress needs `Authorization: Bearer <token>`",
            Some(v) => {
                let token_given = v.as_bytes().len() > "Bearer ".len();
                if token_given && bool::from(v.as_bytes().ct_eq(&self.expected)) {
                    return Ok(());
                }
                "the bearer token is not the one this ingress takes"
            }
        };
        let mut response = super::error(StatusCode::UNAUTHORIZED, why).into_response();
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
        Err(response)
    }
}
