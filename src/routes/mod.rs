//! HTTP handlers, grouped as the URL space is: proxy, admin, analytics, signals, health, portal. A
//! handler extracts what its endpoint takes and calls the pipeline or an actor; nothing more.

pub mod admin;
pub mod analytics;
pub mod ask;
pub mod health;
pub mod keys;
pub mod portal;
pub mod proxy;
pub mod replay;
pub mod routing;
pub mod signals;

use actix_web::{web, HttpRequest};

use crate::error::GatewayError;

/// Mounts every handler of `routes` (startup adds the OpenAPI document and the fallback,
/// which live with the document).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(proxy::chat_completions)
        .service(proxy::messages)
        .service(proxy::count_tokens)
        .service(proxy::embeddings)
        .service(proxy::completions)
        .service(proxy::responses)
        .service(proxy::get_response)
        .service(proxy::delete_response)
        .service(proxy::list_models)
        .service(proxy::get_model)
        .service(routing::route)
        .service(routing::profiles)
        .service(routing::catalog)
        .service(replay::replay)
        .service(admin::list_providers)
        .service(admin::add_provider)
        .service(admin::remove_provider)
        .service(keys::keys)
        .service(keys::key_self)
        .service(analytics::stats)
        .service(analytics::timeseries)
        .service(analytics::records)
        .service(analytics::record)
        .service(analytics::sources)
        .service(analytics::projects)
        .service(analytics::project_records)
        .service(analytics::errors)
        .service(ask::ask)
        .service(signals::report_signal)
        .service(signals::signals)
        .service(health::health)
        .service(health::metrics)
        .service(portal::index)
        .service(portal::docs)
        .service(portal::asset);
}

/// Turns a JSON extractor failure into a 400 in the OpenAI error shape.
pub fn json_error(err: actix_web::error::JsonPayloadError, req: &HttpRequest) -> actix_web::Error {
    use actix_web::error::JsonPayloadError;
    match err {
        JsonPayloadError::Overflow { limit }
        | JsonPayloadError::OverflowKnownLength { limit, .. } => {
            GatewayError::PayloadTooLarge { limit }
        }
        JsonPayloadError::ContentType => GatewayError::UnsupportedMediaType {
            content_type: req
                .headers()
                .get(actix_web::http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .chars()
                .take(100)
                .collect(),
        },
        other => GatewayError::InvalidRequest {
            message: format!("invalid JSON body: {other}"),
            param: None,
        },
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
