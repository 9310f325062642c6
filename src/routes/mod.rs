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

/// The documented paths (from the OpenAPI document) with the methods each serves.
fn known_routes() -> &'static [(actix_web::dev::ResourceDef, String)] {
    static ROUTES: std::sync::OnceLock<Vec<(actix_web::dev::ResourceDef, String)>> =
        std::sync::OnceLock::new();
    ROUTES.get_or_init(|| {
        use utoipa::OpenApi;
        let doc = crate::openapi::ApiDoc::openapi();
        let mut routes = vec![(actix_web::dev::ResourceDef::new("/"), "GET".to_string())];
        for (path, item) in &doc.paths.paths {
            let methods: Vec<&str> = [
                ("GET", item.get.is_some()),
                ("POST", item.post.is_some()),
                ("DELETE", item.delete.is_some()),
            ]
            .into_iter()
            .filter_map(|(m, served)| served.then_some(m))
            .collect();
            routes.push((
                actix_web::dev::ResourceDef::new(path.as_str()),
                methods.join(", "),
            ));
        }
        routes
    })
}

/// Unknown paths answer in JSON, in the API shape their path suggests: 405 with `Allow` for a
/// known path asked with another method, else 404.
async fn not_found(req: HttpRequest) -> HttpResponse {
    let api = crate::providers::ApiFormat::for_path(req.path());
    if let Some((_, allowed)) = known_routes()
        .iter()
        .find(|(route, _)| route.is_match(req.path()))
    {
        let mut response = GatewayError::MethodNotAllowed {
            method: req.method().to_string(),
            path: req.path().chars().take(200).collect(),
            allowed: allowed.clone(),
        }
        .to_response(api);
        if let Ok(value) = actix_web::http::header::HeaderValue::from_str(allowed) {
            response
                .headers_mut()
                .insert(actix_web::http::header::ALLOW, value);
        }
        return response;
    }
    GatewayError::RouteNotFound {
        method: req.method().to_string(),
        path: req.path().chars().take(200).collect(),
    }
    .to_response(api)
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
