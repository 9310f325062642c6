//! Passing the upstream's answer through: status and headers as they are, the body streamed chunk by chunk.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::{BodyStream, SizedStream};
use actix_web::http::header::{self, HeaderName};
use actix_web::HttpResponse;
use awc::error::PayloadError;
use awc::ClientResponse;
use bytes::Bytes;
use std::future::Future;

use actix_web::HttpMessage;
use futures_util::Stream;
use tokio::time::{sleep, Instant, Sleep};

use super::mask::KeyMask;

use super::meter::RequestMeter;
use crate::error::GatewayError;
use crate::translate::{StreamTranslator, Translation};

/// Response headers the gateway does not pass on: hop-by-hop headers, the length (the
/// body is re-framed), and cookies set for the provider's own domain.
fn is_passed_back(name: &HeaderName) -> bool {
    !matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "content-length"
            | "set-cookie"
            | "x-request-id"
    )
}

/// Largest error body read whole; a larger one is cut there.
const MAX_ERROR_BODY: usize = 1024 * 1024;

/// An upstream error answer, read whole: same status and headers, the body with any
/// occurrence of the gateway's provider key masked (some servers echo the key they got);
/// through a translation, the error in the client's API's shape.
pub async fn error_answer(
    mut upstream: ClientResponse,
    mask: Option<KeyMask>,
    mut meter: RequestMeter,
    translation: Option<&Translation>,
) -> HttpResponse {
    let mut builder = response_head(&upstream, mask.as_ref());
    let body = match upstream.body().limit(MAX_ERROR_BODY).await {
        Ok(body) => body,
        Err(e) => {
            let error = GatewayError::UpstreamBroken {
                provider: String::new(),
                message: e.to_string(),
            };
            meter.fail(&error);
            return builder.finish();
        }
    };
    let body = match &mask {
        Some(mask) => mask.all(body),
        None => body,
    };
    let body = meter.on_chunk(body);
    let _ = meter.on_end();
    match translation {
        Some(translation) => {
            let status = upstream.status().as_u16();
            builder
                .insert_header((header::CONTENT_TYPE, "application/json"))
                .body(translation.error(status, &body))
        }
        None => builder.body(body),
    }
}

/// A whole JSON answer of the other API, read (within the provider's read timeout), masked,
/// metered in the upstream's shape, and given to the client in its own.
pub async fn translated_answer(
    mut upstream: ClientResponse,
    read_timeout: Duration,
    provider: &str,
    mask: Option<KeyMask>,
    mut meter: RequestMeter,
    translation: &Translation,
) -> HttpResponse {
    let mut builder = response_head(&upstream, mask.as_ref());
    let body =
        match tokio::time::timeout(read_timeout, upstream.body().limit(MAX_ANSWER_BODY)).await {
            Ok(Ok(body)) => body,
            failed => {
                let error = match failed {
                    Ok(Err(e)) => GatewayError::UpstreamBroken {
                        provider: provider.to_string(),
                        message: e.to_string(),
                    },
                    _ => GatewayError::UpstreamTimeout {
                        provider: provider.to_string(),
                        timeout_ms: read_timeout.as_millis() as u64,
                    },
                };
                meter.fail(&error);
                return error.to_response(translation.client);
            }
        };
    let body = match &mask {
        Some(mask) => mask.all(body),
        None => body,
    };
    let body = meter.on_chunk(body);
    let _ = meter.on_end();
    match translation.answer(&body) {
        Ok(answer) => builder
            .insert_header((header::CONTENT_TYPE, "application/json"))
            .body(answer),
        Err(message) => GatewayError::UpstreamBroken {
            provider: provider.to_string(),
            message: format!("its answer could not be translated: {message}"),
        }
        .to_response(translation.client),
    }
}

/// Largest whole answer read to be translated.
pub(super) const MAX_ANSWER_BODY: usize = 64 * 1024 * 1024;

/// The gateway's own `count_tokens` answer, marked as an estimate by the tokenizer it used.
pub fn counted(input_tokens: u64, mut meter: RequestMeter) -> HttpResponse {
    let body = serde_json::json!({
        "input_tokens": input_tokens,
        "estimate": true,
        "tokenizer": super::translation::TOKENIZER,
    })
    .to_string();
    let body = meter.on_chunk(Bytes::from(body));
    let _ = meter.on_end();
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .insert_header(("x-gateway-token-estimate", super::translation::TOKENIZER))
        .body(body)
}

/// The client's response head from the upstream's: status and headers, less hop-by-hop
/// ones, the provider key masked in any value that repeats it; the upstream's `x-request-id`
/// becomes `x-upstream-request-id`.
pub(super) fn response_head(
    upstream: &ClientResponse,
    mask: Option<&KeyMask>,
) -> actix_web::HttpResponseBuilder {
    let mut builder = HttpResponse::build(upstream.status());
    for (name, value) in upstream.headers() {
        let value = match mask {
            Some(mask) => mask.header(value),
            None => value.clone(),
        };
        if is_passed_back(name) {
            builder.append_header((name.clone(), value));
        } else if name.as_str() == "x-request-id" {
            builder.append_header(("x-upstream-request-id", value));
        }
    }
    builder
}

/// Builds the client's response from the upstream's: same status, same headers, the body
/// streamed as it arrives; the upstream's own `x-request-id` becomes `x-upstream-request-id`
/// (the gateway's id is set on every response by the request-id middleware).
pub fn passthrough(
    mut upstream: ClientResponse,
    read_timeout: Duration,
    provider: &str,
    mask: Option<KeyMask>,
    permit: tokio::sync::OwnedSemaphorePermit,
    meter: RequestMeter,
    translator: Option<StreamTranslator>,
) -> HttpResponse {
    let mut builder = response_head(&upstream, mask.as_ref());
    let length = upstream
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    // A translated stream's length is its own.
    let length = length.filter(|_| translator.is_none());
    let body = Metered {
        inner: IdleTimeout::new(upstream.take_payload(), read_timeout, provider),
        mask,
        translator,
        _permit: permit,
        meter: Some(meter),
        remaining: length,
        ended: false,
    };
    // A known length (non-streamed JSON, passed through unchanged) stays known to the client.
    match length {
        Some(length) => builder.body(SizedStream::new(length, body)),
        None => builder.body(BodyStream::new(body)),
    }
}

/// The body on its way to the client, the provider key masked, shown to the request's meter
/// chunk by chunk; the meter records the request when the body ends, breaks, or is dropped.
struct Metered<S> {
    inner: S,
    mask: Option<KeyMask>,
    /// The other API's events, each turned into the client's as it completes.
    translator: Option<StreamTranslator>,
    /// The provider's connection slot, freed when the body ends or the client leaves.
    _permit: tokio::sync::OwnedSemaphorePermit,
    meter: Option<RequestMeter>,
    /// Bytes still due when the length is known: the body ends with its last byte, whether
    /// or not the server polls for the end.
    remaining: Option<u64>,
    ended: bool,
}

impl<S> Stream for Metered<S>
where
    S: Stream<Item = Result<Bytes, GatewayError>> + Unpin,
{
    type Item = Result<Bytes, GatewayError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.ended {
            return Poll::Ready(None);
        }
        loop {
            return match Pin::new(&mut this.inner).poll_next(cx) {
                Poll::Ready(Some(Ok(chunk))) => {
                    let chunk = match this.mask.as_mut() {
                        Some(mask) => mask.chunk(chunk),
                        None => chunk,
                    };
                    let out = match this.meter.as_mut() {
                        Some(meter) => meter.on_chunk(chunk),
                        None => chunk,
                    };
                    let out = match this.translator.as_mut() {
                        Some(translator) => {
                            let mut translated = bytes::BytesMut::new();
                            translator.push(&out, &mut translated);
                            translated.freeze()
                        }
                        None => out,
                    };
                    if let Some(remaining) = this.remaining.as_mut() {
                        *remaining = remaining.saturating_sub(out.len() as u64);
                        if *remaining == 0 {
                            // A sized body is never transformed, so nothing is held back; the
                            // upstream is still read to its end so its connection is reused.
                            if let Some(mut meter) = this.meter.take() {
                                let _ = meter.on_end();
                            }
                        }
                    }
                    if out.is_empty() {
                        // Held back (an event not yet complete, or the usage chunk): read on.
                        continue;
                    }
                    Poll::Ready(Some(Ok(out)))
                }
                Poll::Ready(Some(Err(error))) => {
                    this.ended = true;
                    if let Some(mut meter) = this.meter.take() {
                        meter.fail(&error);
                    }
                    Poll::Ready(Some(Err(error)))
                }
                Poll::Ready(None) => {
                    this.ended = true;
                    // A tail the mask held back (the start of something key-like) goes out now.
                    let held = this.mask.as_mut().map(KeyMask::finish).unwrap_or_default();
                    let held = match this.meter.as_mut() {
                        Some(meter) if !held.is_empty() => meter.on_chunk(held),
                        _ => held,
                    };
                    let rest = this.meter.take().and_then(|mut meter| meter.on_end());
                    let out = match rest {
                        Some(rest) if !held.is_empty() => [held, rest].concat().into(),
                        Some(rest) => rest,
                        None => held,
                    };
                    let out = match this.translator.as_mut() {
                        Some(translator) => {
                            let mut translated = bytes::BytesMut::new();
                            translator.push(&out, &mut translated);
                            translator.finish(&mut translated);
                            translated.freeze()
                        }
                        None => out,
                    };
                    Poll::Ready((!out.is_empty()).then_some(Ok(out)))
                }
                Poll::Pending => Poll::Pending,
            };
        }
    }
}

/// The upstream body, ended with an error when no chunk arrives for `limit`. Dropping it
/// (the client went away) drops the upstream connection, which ends the upstream request.
struct IdleTimeout<S> {
    inner: S,
    limit: Duration,
    deadline: Pin<Box<Sleep>>,
    provider: String,
}

impl<S> IdleTimeout<S> {
    fn new(inner: S, limit: Duration, provider: &str) -> Self {
        Self {
            inner,
            limit,
            deadline: Box::pin(sleep(limit)),
            provider: provider.to_string(),
        }
    }
}

impl<S> Stream for IdleTimeout<S>
where
    S: Stream<Item = Result<Bytes, PayloadError>> + Unpin,
{
    type Item = Result<Bytes, GatewayError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                let next = Instant::now() + this.limit;
                this.deadline.as_mut().reset(next);
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(e))) => {
                tracing::warn!(provider = %this.provider, error = %e, "upstream body broke off");
                Poll::Ready(Some(Err(GatewayError::UpstreamBroken {
                    provider: this.provider.clone(),
                    message: e.to_string(),
                })))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match this.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    tracing::warn!(provider = %this.provider, "upstream body stalled past read_timeout_ms");
                    Poll::Ready(Some(Err(GatewayError::UpstreamTimeout {
                        provider: this.provider.clone(),
                        timeout_ms: this.limit.as_millis() as u64,
                    })))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }
}
