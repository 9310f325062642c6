//! HTTP handlers, grouped as the URL space is: proxy, admin, health and docs, portal.

pub mod admin;
pub mod analytics;
pub mod health;
pub mod portal;
pub mod proxy;

use actix_web::{web, HttpRequest, HttpResponse};

use crate::error::GatewayError;

/// Mounts every route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(proxy::chat_completions)
        .service(proxy::messages)
        .service(proxy::count_tokens)
        .service(proxy::list_models)
        .service(admin::list_providers)
        .service(admin::add_provider)
        .service(admin::remove_provider)
        .service(analytics::stats)
        .service(analytics::records)
        .service(analytics::sources)
        .service(analytics::projects)
        .service(analytics::project_records)
        .service(health::health)
        .service(health::openapi_json)
        .service(health::metrics)
        .service(portal::index)
        .default_service(web::to(not_found));
}

/// Unknown paths answer in JSON, in the API shape their path suggests.
async fn not_found(req: HttpRequest) -> HttpResponse {
    let api = if req.path().starts_with("/v1/messages") {
        crate::providers::ApiFormat::Anthropic
    } else {
        crate::providers::ApiFormat::OpenAi
    };
    GatewayError::RouteNotFound {
        method: req.method().to_string(),
        path: req.path().chars().take(200).collect(),
    }
    .to_response(api)
}

/// Turns a JSON extractor failure into a 400 in the OpenAI error shape.
pub fn json_error(err: actix_web::error::JsonPayloadError, _: &HttpRequest) -> actix_web::Error {
    GatewayError::InvalidRequest {
        message: format!("invalid JSON body: {err}"),
        param: None,
    }
    .into()
}

/// Turns a query-string failure (an unknown parameter, say) into a 400 in the OpenAI error shape.
pub fn query_error(err: actix_web::error::QueryPayloadError, _: &HttpRequest) -> actix_web::Error {
    let detail = match &err {
        actix_web::error::QueryPayloadError::Deserialize(e) => e.to_string(),
        other => other.to_string(),
    };
    GatewayError::InvalidRequest {
        message: format!("invalid query parameters: {detail}"),
        param: None,
    }
    .into()
}
