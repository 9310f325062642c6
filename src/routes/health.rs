//! Service health and the OpenAPI document.

use actix_web::{get, web, HttpResponse};
use serde::Serialize;
use utoipa::OpenApi;

use crate::startup::AppState;

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
        providers: state.registry_snapshot.load().enabled_ids(),
    })
}

/// The OpenAPI 3.1 description of this service.
#[utoipa::path(get, path = "/openapi.json", tag = "health", responses((status = 200, description = "OpenAPI 3.1 document")))]
#[get("/openapi.json")]
pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(crate::openapi::ApiDoc::openapi())
}
