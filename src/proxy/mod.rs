//! The request pipeline of the proxy endpoints, stage by stage:
//! read → parse → identify the caller → sanitize → resolve the targets → forward (failing over) → pass the answer through,
//! with a meter following the request from start to end so that it leaves exactly one ledger record.

pub mod inbound;
pub mod mask;
pub mod response;
pub mod upstream;

use std::time::{Duration, Instant};

use actix_web::{web, HttpRequest, HttpResponse};

use crate::actors::provider_registry::{RefreshLocalModels, Target};
use crate::actors::sanitizer::SanitizerHandle;
use bytes::Bytes;

use crate::error::{ApiError, GatewayError};
use crate::ledger::meter::RequestMeter;
use crate::providers::{Credential, Operation};
use crate::startup::AppState;
use mask::KeyMask;
use upstream::UpstreamClients;

/// How fresh a local server's model list must be before a model it does not list is refused.
const MISS_REFRESH_AGE: Duration = Duration::from_secs(5);

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

/// Runs one proxied call through every stage and answers in the caller's API shape. Every
/// call leaves exactly one ledger record, through its meter, however it ends.
pub async fn handle(
    op: Operation,
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    clients: web::Data<UpstreamClients>,
    meta: RequestMeta,
) -> Result<HttpResponse, ApiError> {
    let mut meter = RequestMeter::start(op, &meta, state.recorder.clone());
    match forward(op, &req, payload, &state, &clients, &meta, &mut meter).await {
        Ok(answer) => {
            state
                .metrics
                .overhead
                .observe(answer.overhead.as_secs_f64());
            let mut response = if answer.response.status().as_u16() >= 400 {
                // An error answer is small: read whole, so a key the provider echoes can be masked.
                response::error_answer(answer.response, KeyMask::new(answer.secret.as_ref()), meter)
                    .await
            } else {
                response::passthrough(
                    answer.response,
                    answer.read_timeout,
                    &answer.provider_id,
                    KeyMask::new(answer.secret.as_ref()),
                    answer.permit,
                    meter,
                )
            };
            response.headers_mut().insert(
                actix_web::http::header::HeaderName::from_static("x-gateway-overhead-ms"),
                millis_header(answer.overhead),
            );
            Ok(response)
        }
        Err(error) => {
            meter.fail(&error);
            Err(error.in_shape(op.api()))
        }
    }
}

/// An upstream answer ready to be passed through.
struct Answer {
    response: awc::ClientResponse,
    /// The provider's connection slot, held until the answer has been passed on.
    permit: tokio::sync::OwnedSemaphorePermit,
    read_timeout: Duration,
    provider_id: String,
    /// The key the gateway sent, if it holds it (never shown back to the client).
    secret: Option<std::sync::Arc<crate::secret::HeldKey>>,
    /// Time spent in the gateway so far, excluding waits for upstreams.
    overhead: Duration,
}

/// The stages up to the upstream's response head, failing over between targets.
async fn forward(
    op: Operation,
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
    clients: &UpstreamClients,
    meta: &RequestMeta,
    meter: &mut RequestMeter,
) -> Result<Answer, GatewayError> {
    let started = meta.arrived;
    // The reservation keeps the body's share of the memory budget until the answer's head.
    let (mut body, _reservation) = inbound::read_body(req, payload, &state.body_limits).await?;
    let parsed = inbound::parse(op, &body)?;
    meter.request(&parsed.model, parsed.stream, body.len());
    let caller = state.keys.identify(req.headers())?;
    meter.caller(caller.label());
    if let Some(sanitizer) = &state.sanitizer {
        body = sanitize(sanitizer, body, meta, meter).await?;
    }
    let targets = resolve_targets(state, op, &parsed.model).await?;

    let mut last_error = None;
    let mut upstream_wait = Duration::ZERO;
    let attempts = targets.len();
    for (attempt, target) in targets.into_iter().enumerate() {
        let is_last = attempt + 1 == attempts;
        let attempt_started = Instant::now();
        let credential = caller.credential_for(&target.provider)?;
        let upstream_body = inbound::body_for_target(op, &body, &parsed, &target)?;
        let waited = Instant::now();
        let sent = match connection_permit(state, &target).await {
            Ok(permit) => {
                upstream::send(clients, &target, op, req, upstream_body.body, &credential)
                    .await
                    .map(|response| (response, permit))
            }
            Err(error) => Err(error),
        };
        upstream_wait += waited.elapsed();
        match sent {
            Ok((response, permit)) => {
                let status = response.status();
                // A 429 or 5xx from one provider is worth another provider's try, when there is one.
                if !is_last && (status.as_u16() == 429 || status.is_server_error()) {
                    let error = GatewayError::UpstreamBroken {
                        provider: target.provider.id.clone(),
                        message: format!("status {status}"),
                    };
                    tracing::warn!(provider = %target.provider.id, %status, "upstream failed, failing over");
                    meter.attempt_failed(&target, attempt_started, Some(status.as_u16()), &error);
                    state
                        .metrics
                        .failovers
                        .with_label_values(&[target.provider.id.as_str()])
                        .inc();
                    last_error = Some(error);
                    continue;
                }
                tracing::info!(
                    request_id = %meta.request_id,
                    provider = %target.provider.id,
                    model = %target.model,
                    label = caller.label().unwrap_or(""),
                    source = meta.source.as_deref().unwrap_or(""),
                    project = meta.project.as_deref().unwrap_or(""),
                    status = status.as_u16(),
                    stream = parsed.stream,
                    head_ms = started.elapsed().as_millis() as u64,
                    "proxied"
                );
                let secret = match &credential {
                    Credential::Key(key) => Some(key.clone()),
                    _ => None,
                };
                meter.answered(
                    &target,
                    attempt_started,
                    status.as_u16(),
                    credential,
                    upstream_body.strip_usage_chunk,
                );
                return Ok(Answer {
                    response,
                    permit,
                    read_timeout: target.provider.read_timeout,
                    provider_id: target.provider.id.clone(),
                    secret,
                    overhead: started.elapsed().saturating_sub(upstream_wait),
                });
            }
            Err(error) => {
                tracing::warn!(provider = %target.provider.id, error = %error, "upstream attempt failed");
                meter.attempt_failed(&target, attempt_started, None, &error);
                let retry = error.is_retryable() && !is_last;
                last_error = Some(error);
                if !retry {
                    break;
                }
                state
                    .metrics
                    .failovers
                    .with_label_values(&[target.provider.id.as_str()])
                    .inc();
            }
        }
    }
    Err(last_error.unwrap_or_else(|| GatewayError::Internal {
        message: "no upstream attempt was made".into(),
    }))
}

/// One of the target provider's `max_connections` slots: at once when one is free; else after
/// a wait (measured), which gives up after the connect timeout so that failover can help.
async fn connection_permit(
    state: &AppState,
    target: &Target,
) -> Result<tokio::sync::OwnedSemaphorePermit, GatewayError> {
    let provider = &target.provider;
    if let Ok(permit) = provider.connections.clone().try_acquire_owned() {
        return Ok(permit);
    }
    let waited = Instant::now();
    let permit = tokio::time::timeout(
        provider.connect_timeout,
        provider.connections.clone().acquire_owned(),
    )
    .await;
    state
        .metrics
        .connection_wait
        .with_label_values(&[provider.id.as_str()])
        .observe(waited.elapsed().as_secs_f64());
    match permit {
        Ok(Ok(permit)) => Ok(permit),
        Ok(Err(_)) => Err(GatewayError::Internal {
            message: format!(
                "the connection slots of provider `{}` were closed",
                provider.id
            ),
        }),
        Err(_) => {
            tracing::warn!(provider = %provider.id, max_connections = provider.max_connections, "no free upstream connection within the connect timeout");
            Err(GatewayError::UpstreamTimeout {
                provider: provider.id.clone(),
                timeout_ms: provider.connect_timeout.as_millis() as u64,
            })
        }
    }
}

/// Scans the body: records the findings, refuses the request when one blocks, and returns
/// the body to forward (redacted where redaction applies).
async fn sanitize(
    sanitizer: &SanitizerHandle,
    body: Bytes,
    meta: &RequestMeta,
    meter: &mut RequestMeter,
) -> Result<Bytes, GatewayError> {
    let scan = sanitizer.scan(body.clone()).await?;
    if scan.findings.is_empty() {
        return Ok(body);
    }
    tracing::warn!(
        request_id = %meta.request_id,
        findings = ?scan.findings,
        redacted = scan.redacted.is_some(),
        blocked = !scan.blocking.is_empty(),
        "sanitizer findings"
    );
    meter.findings(&scan.findings);
    if !scan.blocking.is_empty() {
        return Err(GatewayError::ComplianceBlocked {
            kinds: scan.blocking,
        });
    }
    Ok(scan.redacted.map_or(body, Bytes::from))
}

/// Resolves a model to its targets; a miss asks local servers for their current models once.
async fn resolve_targets(
    state: &AppState,
    op: Operation,
    model: &str,
) -> Result<Vec<Target>, GatewayError> {
    let snapshot = state.registry_snapshot.load();
    match snapshot.resolve(&state.catalog, op, model) {
        Err(GatewayError::ModelNotFound { .. }) if snapshot.has_local_providers() => {
            state
                .registry
                .send(RefreshLocalModels {
                    max_age: MISS_REFRESH_AGE,
                })
                .await
                .map_err(|e| GatewayError::Internal {
                    message: format!("failed to ask the provider registry: {e}"),
                })?;
            state
                .registry_snapshot
                .load()
                .resolve(&state.catalog, op, model)
        }
        other => other,
    }
}

/// `d` in milliseconds with three decimals (`0.042`), written digit by digit: float formatting
/// cost more than the rest of the header work on every proxied call.
fn millis_header(d: Duration) -> actix_web::http::header::HeaderValue {
    let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
    let mut text = [0u8; 24];
    let mut at = text.len();
    let mut put = |byte: u8| {
        at -= 1;
        text[at] = byte;
    };
    let fraction = micros % 1000;
    for place in [1, 10, 100] {
        put(b'0' + (fraction / place % 10) as u8);
    }
    put(b'.');
    let mut whole = micros / 1000;
    loop {
        put(b'0' + (whole % 10) as u8);
        whole /= 10;
        if whole == 0 {
            break;
        }
    }
    actix_web::http::header::HeaderValue::from_bytes(&text[at..])
        .unwrap_or_else(|_| actix_web::http::header::HeaderValue::from_static("0.000"))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn overhead_is_written_in_milliseconds_with_three_decimals() {
        for (d, text) in [
            (Duration::ZERO, "0.000"),
            (Duration::from_nanos(999), "0.000"),
            (Duration::from_micros(42), "0.042"),
            (Duration::from_micros(1_005), "1.005"),
            (Duration::from_micros(12_340), "12.340"),
            (Duration::from_secs(90_061), "90061000.000"),
        ] {
            assert_eq!(super::millis_header(d).to_str().ok(), Some(text));
        }
    }
}
