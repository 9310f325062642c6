//! The OpenAPI 3.1 document, generated from the handlers' annotations, with the admin gate
//! and the error shape added to every operation it concerns; the handler that serves it; and
//! the fallback that answers unknown routes from it (404, or 405 with `Allow`).

use actix_web::{get, HttpRequest, HttpResponse};
use utoipa::openapi::path::Operation;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{ContentBuilder, Ref};
use utoipa::{Modify, OpenApi};

use crate::api::ApiFormat;
use crate::error::GatewayError;

/// Every documented endpoint and schema.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "llm-gateway",
        description = "A self-hostable gateway for LLM providers: one endpoint for the OpenAI and Anthropic APIs, virtual keys, streaming passthrough."
    ),
    paths(
        crate::routes::proxy::chat_completions,
        crate::routes::proxy::messages,
        crate::routes::proxy::count_tokens,
        crate::routes::proxy::embeddings,
        crate::routes::proxy::completions,
        crate::routes::proxy::responses,
        crate::routes::proxy::get_response,
        crate::routes::proxy::delete_response,
        crate::routes::proxy::list_models,
        crate::routes::proxy::get_model,
        crate::routes::routing::route,
        crate::routes::routing::profiles,
        crate::routes::routing::catalog,
        crate::routes::admin::list_providers,
        crate::routes::admin::add_provider,
        crate::routes::admin::remove_provider,
        crate::routes::keys::keys,
        crate::routes::keys::key_self,
        crate::routes::analytics::stats,
        crate::routes::analytics::timeseries,
        crate::routes::analytics::records,
        crate::routes::analytics::record,
        crate::routes::analytics::sources,
        crate::routes::analytics::projects,
        crate::routes::analytics::project_records,
        crate::routes::analytics::errors,
        crate::routes::ask::ask,
        crate::routes::replay::replay,
        crate::routes::signals::report_signal,
        crate::routes::signals::signals,
        crate::routes::health::health,
        crate::openapi::openapi_json,
        crate::routes::health::metrics,
        crate::routes::portal::index,
        crate::routes::portal::docs,
        crate::routes::portal::asset,
    ),
    components(schemas(
        crate::error::OpenAiErrorBody,
        crate::error::ErrorDetail,
        crate::error::AnthropicErrorBody,
        crate::error::AnthropicErrorDetail
    )),
    modifiers(&AdminGateDoc, &VirtualKeyDoc, &ErrorsDoc),
    tags(
        (name = "proxy", description = "Calls forwarded to providers"),
        (name = "routing", description = "The model catalog, routing profiles and routing decisions (POST /v1/route follows the proxy's virtual-key rules; the catalog's live figures need the admin token)"),
        (name = "admin", description = "Provider administration and every key's limits (admin token)"),
        (name = "keys", description = "A virtual key's own limits and spend (its own token, no admin token)"),
        (name = "analytics", description = "Usage, cost, errors and quality signals from the ledger, and past traffic replayed under a routing profile (admin token)"),
        (name = "signals", description = "Quality signals about proxied answers (follows the proxy's virtual-key rules); GET /v1/signals, under analytics, reports them"),
        (name = "health", description = "Health and service description"),
        (name = "portal", description = "The portal and these API docs (`/docs`), served from the binary"),
    )
)]
pub struct ApiDoc;

/// Name of the security scheme of the admin token.
const ADMIN_SCHEME: &str = "admin_token";

/// Marks the operations behind the admin gate (tags `admin` and `analytics`, and `/metrics`):
/// their security requirement and the 401 and 403 answers of the gate.
struct AdminGateDoc;

impl Modify for AdminGateDoc {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            ADMIN_SCHEME,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("[server] admin_token"))
                    .build(),
            ),
        );
        for (path, item) in openapi.paths.paths.iter_mut() {
            let operations = [item.get.as_mut(), item.post.as_mut(), item.delete.as_mut()];
            for operation in operations.into_iter().flatten() {
                if is_gated(path, operation) {
                    gate(operation);
                }
            }
        }
    }
}

/// The virtual-key schemes: how a caller of the proxy, `POST /v1/route` and `POST /v1/signals`
/// names its key-map entry (or sends its own provider key). Optional unless `[auth]
/// require_key`: each such operation lists "no key" among its requirements.
const KEY_SCHEMES: [(&str, Option<&str>, &str); 3] = [
    (
        "virtual_key",
        None,
        "Authorization: Bearer <virtual key> ([key_map]), or the client's own provider key",
    ),
    (
        "virtual_key_x_api_key",
        Some("x-api-key"),
        "x-api-key: <virtual key>, as Anthropic clients send it",
    ),
    (
        "virtual_key_api_key",
        Some("api-key"),
        "api-key: <virtual key>, as Azure OpenAI clients send it",
    ),
];

/// Marks the operations that follow the proxy's virtual-key rules with the key schemes.
struct VirtualKeyDoc;

impl Modify for VirtualKeyDoc {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        for (name, header, description) in KEY_SCHEMES {
            let scheme = match header {
                None => SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .description(Some(description))
                        .build(),
                ),
                Some(header) => SecurityScheme::ApiKey(ApiKey::Header(
                    ApiKeyValue::with_description(header, description),
                )),
            };
            components.add_security_scheme(name, scheme);
        }
        for (path, item) in openapi.paths.paths.iter_mut() {
            let Some(operation) = item.post.as_mut() else {
                continue;
            };
            let keyed = matches!(path.as_str(), "/v1/route" | "/v1/signals")
                || operation.tags.iter().flatten().any(|t| t == "proxy");
            if keyed {
                let mut requirements = vec![SecurityRequirement::default()];
                requirements.extend(
                    KEY_SCHEMES
                        .iter()
                        .map(|(name, _, _)| SecurityRequirement::new(*name, Vec::<String>::new())),
                );
                operation.security = Some(requirements);
            }
        }
    }
}

fn is_gated(path: &str, operation: &Operation) -> bool {
    path == "/metrics"
        || operation
            .tags
            .iter()
            .flatten()
            .any(|t| t == "admin" || t == "analytics")
}

fn gate(operation: &mut Operation) {
    operation.security = Some(vec![SecurityRequirement::new(
        ADMIN_SCHEME,
        Vec::<String>::new(),
    )]);
    add_errors(
        operation,
        "OpenAiErrorBody",
        &[
            ("401", "Missing or wrong admin token"),
            (
                "403",
                "Listening beyond loopback without an admin token: set [server] admin_token",
            ),
        ],
    );
}

/// The gateway's own errors on the proxy endpoints, in the caller's API shape.
const PROXY_ERRORS: &[(&str, &str)] = &[
    ("400", "Malformed body (not UTF-8 JSON, missing model or messages), or a model served only through the other API"),
    ("401", "Unknown virtual key where keys are required"),
    ("403", "No key for the provider, blocked by the compliance gate, or a model outside the key's or project's `models` (`code: model_not_allowed`)"),
    ("404", "No enabled provider serves the model"),
    ("408", "The body did not arrive within [server] body_timeout_ms"),
    ("413", "Body larger than [server] max_body_bytes"),
    ("415", "Content-Type is not application/json"),
    ("429", "A key's or project's budget is spent (`code: insufficient_quota`) or its `rpm` / `tpm` reached (`code: rate_limit_exceeded`); `Retry-After` says when it resets, and nothing was forwarded"),
    ("502", "The provider could not be reached"),
    ("503", "The gateway holds [server] max_buffered_body_bytes of request bodies; retry shortly"),
    ("504", "The provider did not answer in time"),
];

/// Documents the errors every operation can answer: the head-size limit everywhere; on the
/// proxy endpoints the gateway's own errors, and the provider's errors passed through.
struct ErrorsDoc;

impl Modify for ErrorsDoc {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            let shape = match ApiFormat::for_path(path) {
                ApiFormat::OpenAi => "OpenAiErrorBody",
                ApiFormat::Anthropic => "AnthropicErrorBody",
            };
            let proxied = item.post.is_some()
                && item
                    .post
                    .as_ref()
                    .and_then(|o| o.tags.as_ref())
                    .is_some_and(|tags| tags.iter().any(|t| t == "proxy"));
            let operations = [item.get.as_mut(), item.post.as_mut(), item.delete.as_mut()];
            for operation in operations.into_iter().flatten() {
                add_errors(
                    operation,
                    shape,
                    &[(
                        "431",
                        "Request headers larger than [server] max_header_bytes",
                    )],
                );
                if proxied {
                    add_errors(operation, shape, PROXY_ERRORS);
                    let passed = ResponseBuilder::new()
                        .description("The provider's own error, passed through with its status and body (a provider key it repeats is masked)")
                        .build();
                    operation
                        .responses
                        .responses
                        .entry("default".to_string())
                        .or_insert(passed.into());
                }
            }
        }
    }
}

/// Adds each `(status, description)` not yet documented, with the error schema `shape`.
fn add_errors(operation: &mut Operation, shape: &str, errors: &[(&str, &str)]) {
    for (status, description) in errors {
        let response = ResponseBuilder::new()
            .description(*description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name(shape)))
                    .build(),
            )
            .build();
        operation
            .responses
            .responses
            .entry(status.to_string())
            .or_insert(response.into());
    }
}

/// The OpenAPI 3.1 description of this service.
#[utoipa::path(get, path = "/openapi.json", tag = "health", responses((status = 200, description = "OpenAPI 3.1 document")))]
#[get("/openapi.json")]
pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}

/// The documented paths (from the OpenAPI document) with the methods each serves.
fn known_routes() -> &'static [(actix_web::dev::ResourceDef, String)] {
    static ROUTES: std::sync::OnceLock<Vec<(actix_web::dev::ResourceDef, String)>> =
        std::sync::OnceLock::new();
    ROUTES.get_or_init(|| {
        let doc = ApiDoc::openapi();
        let mut routes = Vec::new();
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
/// documented path asked with another method, else 404.
pub async fn unknown_route(req: HttpRequest) -> HttpResponse {
    let api = ApiFormat::for_path(req.path());
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
