//! Service health and the Prometheus metrics.

use actix_web::{get, web, HttpRequest, HttpResponse};
use serde::Serialize;

use crate::access::AdminGate;
use crate::api::ApiFormat;
use crate::state::AppState;

/// The answer of `GET /health`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Health {
    pub status: &'static str,
    pub version: &'static str,
    pub uptime_secs: u64,
    pub port: u16,
    /// Ids of the enabled providers.
    pub providers: Vec<String>,
}

/// Service health, uptime, and the enabled providers.
#[utoipa::path(get, path = "/health", tag = "health", responses((status = 200, body = Health)))]
#[get("/health")]
pub async fn health(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
        uptime_secs: state.started_at.elapsed().as_secs(),
        port: state.port,
        providers: state.pipeline.providers.load().enabled_ids(),
    })
}

/// Prometheus metrics: requests and latency by provider, model and status; gateway overhead;
/// upstream errors; failovers; circuit breakers; routing; tokens and cost; the ledger's queue and writes.
#[utoipa::path(get, path = "/metrics", tag = "health", responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
#[get("/metrics")]
pub async fn metrics(
    req: HttpRequest,
    state: web::Data<AppState>,
    gate: web::Data<AdminGate>,
) -> HttpResponse {
    if !state.metrics_public {
        if let Err(refused) = gate.check(req.headers()) {
            return refused.to_response(ApiFormat::OpenAi);
        }
    }
    let pipeline = &state.pipeline;
    let breakers = &pipeline.routing.breakers;
    let gauge = &pipeline.recorder.metrics.breaker_state;
    gauge.reset();
    for (provider, view) in breakers.views(breakers.now()) {
        gauge
            .with_label_values(&[provider.as_str(), ""])
            .set(view.provider.state.gauge());
        for (model, breaker) in &view.models {
            // Only a model the catalog knows becomes a label (the series stay bounded).
            let model = if pipeline.catalog.card(model).is_some() {
                model.as_str()
            } else {
                crate::pipeline::meter::OTHER_MODEL_LABEL
            };
            let series = gauge.with_label_values(&[provider.as_str(), model]);
            series.set(series.get().max(breaker.state.gauge()));
        }
    }
    match pipeline.recorder.metrics.render() {
        Ok(text) => HttpResponse::Ok()
            .content_type("text/plain; version=0.0.4; charset=utf-8")
            .body(text),
        Err(e) => crate::error::GatewayError::Internal {
            message: format!("failed to render metrics: {e}"),
        }
        .to_response(ApiFormat::OpenAi),
    }
}
