//! What the gateway attaches to every request before any handler runs: its id (returned as
//! `x-request-id`, and the ledger id of a proxied call), the moment it arrived (the start of its
//! latency and overhead), and a tracing span carrying the id for whatever the handler logs.
//!
//! This replaces a generic request-logging middleware: that one built a span with a dozen
//! eagerly formatted fields and wrapped every response body chunk in it, which was a measurable
//! share of the gateway's own time per request; here the span is built only when INFO is on.

use std::future::{ready, Future, Ready};
use std::time::Instant;

use actix_web::dev::{Payload, Service, ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use futures_util::future::Either;
use tracing::Instrument;

/// The id of one request: a UUIDv7, so ids sort by time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestId(uuid::Uuid);

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl RequestId {
    /// The id as text (hyphenated, lower case) in `buffer` (from `Uuid::encode_buffer`),
    /// written without the formatting machinery.
    pub fn encode<'b>(&self, buffer: &'b mut [u8]) -> &'b str {
        self.0.hyphenated().encode_lower(buffer)
    }

    /// The id as an owned string.
    pub fn text(&self) -> String {
        self.encode(&mut uuid::Uuid::encode_buffer()).to_owned()
    }
}

impl FromRequest for RequestId {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        // Every request passes the middleware; the fallback only serves handlers called without it.
        let id = req
            .extensions()
            .get::<RequestId>()
            .copied()
            .unwrap_or_else(|| RequestId(uuid::Uuid::now_v7()));
        ready(Ok(id))
    }
}

/// When a request reached the gateway's middleware.
#[derive(Debug, Clone, Copy)]
pub struct ArrivedAt(pub Instant);

/// The middleware (`App::wrap_fn`): stamps the request with its id and arrival, runs the rest
/// inside the request's span, sets `x-request-id` on the answer, and logs server-side failures.
/// A head larger than `max_header_bytes` (names and values of every header) is answered 431
/// in the API shape of its path, before any handler runs.
pub fn stamp<S>(
    req: ServiceRequest,
    service: &S,
    max_header_bytes: usize,
) -> impl Future<Output = Result<ServiceResponse, actix_web::Error>>
where
    S: Service<ServiceRequest, Response = ServiceResponse, Error = actix_web::Error>,
{
    // The earliest point the gateway's own code sees the request: the start of its overhead.
    let arrived = Instant::now();
    let id = RequestId(uuid::Uuid::now_v7());
    {
        let mut extensions = req.extensions_mut();
        extensions.insert(ArrivedAt(arrived));
        extensions.insert(id);
    }
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %req.method(),
        path = %req.path()
    );
    let head_bytes: usize = req
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    let response = if head_bytes > max_header_bytes {
        let api = crate::api::ApiFormat::for_path(req.path());
        let refusal = crate::error::GatewayError::HeadersTooLarge {
            limit: max_header_bytes,
        }
        .to_response(api);
        Either::Left(ready(Ok(req.into_response(refusal))))
    } else {
        Either::Right(span.in_scope(|| service.call(req)))
    };
    async move {
        let mut response = response.await?;
        if let Some(error) = response.response().error() {
            let status = response.status();
            if status.is_server_error() {
                tracing::warn!(request_id = %id, status = status.as_u16(), error = %error, "request failed");
            } else {
                tracing::debug!(request_id = %id, status = status.as_u16(), error = %error, "request refused");
            }
        }
        let mut text = uuid::Uuid::encode_buffer();
        if let Ok(value) = HeaderValue::from_str(id.encode(&mut text)) {
            response
                .headers_mut()
                .insert(HeaderName::from_static("x-request-id"), value);
        }
        Ok(response)
    }
    .instrument(span)
}
