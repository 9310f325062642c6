//! The per-request context: what a proxied call is given ([`Inbound`]: plain values, no
//! HTTP-server types, so the pipeline can be called from inside the gateway), its tracking
//! facts ([`RequestMeta`]), and what the stages learn of it ([`ProxyCall`]).

use std::time::Instant;

use actix_web::http::header::{HeaderMap, HeaderName};
use bytes::Bytes;

use super::inbound::{BodyReservation, ParsedRequest};
use crate::api::Operation;
use crate::catalog::TaskKind;
use crate::error::GatewayError;
use crate::keys::Caller;

/// At most this many characters of each tracking header are kept.
const MAX_TRACKING_CHARS: usize = 200;

/// The tracking facts of one proxied request.
#[derive(Debug, Clone)]
pub struct RequestMeta {
    /// The ledger id, returned as `x-request-id`.
    pub request_id: String,
    pub source: Option<String>,
    pub project: Option<String>,
    /// `x-route-profile`, kept for the router.
    pub route_profile: Option<String>,
    /// When the request reached the gateway (the start of its latency and overhead).
    pub arrived: Instant,
}

impl RequestMeta {
    /// The facts of a request with these headers (`x-source`, `x-project`, `x-route-profile`).
    pub fn from_headers(headers: &HeaderMap, request_id: String, arrived: Instant) -> Self {
        Self {
            request_id,
            source: tracking_header(headers, "x-source"),
            project: project(headers),
            route_profile: tracking_header(headers, "x-route-profile"),
            arrived,
        }
    }
}

/// The project a request names in `x-project`, as the proxy keeps it: its limits and its
/// place in the ledger.
pub fn project(headers: &HeaderMap) -> Option<String> {
    tracking_header(headers, "x-project")
}

/// A tracking header's value: absent when empty or not text, cut to [`MAX_TRACKING_CHARS`].
fn tracking_header(headers: &HeaderMap, name: &'static str) -> Option<String> {
    let value = headers
        .get(HeaderName::from_static(name))
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())?;
    let end = value
        .char_indices()
        .nth(MAX_TRACKING_CHARS)
        .map_or(value.len(), |(at, _)| at);
    Some(value[..end].to_owned())
}

/// The task kind a request names in `x-task-kind` (`general`, `coding`, `reasoning`,
/// `long_context`), for the Router's quality figures; another value is refused.
pub fn task_kind(headers: &HeaderMap) -> Result<Option<TaskKind>, GatewayError> {
    let Some(value) = headers.get(HeaderName::from_static("x-task-kind")) else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .and_then(TaskKind::parse)
        .map(Some)
        .ok_or_else(|| GatewayError::InvalidRequest {
            message: "`x-task-kind` must be one of general, coding, reasoning, long_context".into(),
            param: Some("x-task-kind".into()),
        })
}

/// A call as the pipeline receives it: the endpoint's operation, the client's headers and
/// query, and the whole body.
pub struct Inbound<'a> {
    pub op: Operation,
    pub meta: RequestMeta,
    pub headers: &'a HeaderMap,
    /// The client's query string (kept on the upstream URL).
    pub query: &'a str,
    pub body: Bytes,
    /// The body's share of the gateway's body budget, held until the answer's head.
    pub reservation: Option<BodyReservation>,
}

/// What the stages know of a call once it is parsed and its caller identified; the later
/// stages read it (and the sanitizer replaces its body).
pub struct ProxyCall<'a> {
    pub op: Operation,
    pub meta: RequestMeta,
    pub headers: &'a HeaderMap,
    pub query: &'a str,
    /// The body to forward (the client's, or the sanitizer's redaction of it).
    pub body: Bytes,
    pub parsed: ParsedRequest,
    pub caller: Caller,
}
