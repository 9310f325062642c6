//! Provider administration: list, register and remove providers at runtime.

use actix_web::{delete, get, post, web, HttpRequest, HttpResponse};

use crate::access::Admin;

use crate::actors::provider_registry::{AddProvider, ListProviders, RemoveProvider};
use crate::error::GatewayError;
use crate::providers::ProviderView;
use crate::settings::ProviderSettings;
use crate::state::AppState;

/// The body of `POST /v1/providers`, as documented: a `[[providers]]` entry without the
/// fields only the config file may set. (The handler reads [`ProviderSettings`] so that it
/// can name `api_key_env` or `ca_file` when a request tries them.)
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct ProviderRequest {
    /// Letters, digits, `-`, `_` and `.`.
    #[schema(pattern = r"^[A-Za-z0-9._-]+$")]
    id: String,
    provider_type: crate::providers::ProviderKind,
    /// http:// or https:// base URL; required for azure_openai and local.
    #[schema(pattern = r"^https?://")]
    endpoint: Option<String>,
    /// Kept in memory, never shown.
    api_key: Option<String>,
    /// azure_openai: the deployment (also the model id clients send).
    deployment: Option<String>,
    /// azure_openai: e.g. 2024-10-21.
    api_version: Option<String>,
    enabled: Option<bool>,
    /// Extra model ids it serves.
    models: Option<Vec<String>>,
    #[schema(minimum = 1, maximum = 86_400_000)]
    connect_timeout_ms: Option<u64>,
    #[schema(minimum = 1, maximum = 86_400_000)]
    read_timeout_ms: Option<u64>,
    #[schema(minimum = 1, maximum = 1_000_000)]
    max_connections: Option<u64>,
}

/// A provider as `GET /v1/providers` shows it: its settings (never its key) and its
/// circuit breakers.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ProviderStatus {
    #[serde(flatten)]
    pub view: ProviderView,
    pub breaker: crate::router::breaker::ProviderBreakerView,
}

/// The address of the client that made an admin change, for the log.
fn client_address(req: &HttpRequest) -> String {
    req.peer_addr()
        .map_or_else(|| "unknown".to_string(), |a| a.to_string())
}

fn mailbox_error(e: actix::MailboxError) -> GatewayError {
    GatewayError::Internal {
        message: format!("failed to ask the provider registry: {e}"),
    }
}

/// All configured providers. API keys are never included.
#[utoipa::path(
    get, path = "/v1/providers", tag = "admin",
    responses((status = 200, description = "The providers, in configuration order", body = [ProviderStatus]))
)]
#[get("/v1/providers")]
pub async fn list_providers(
    _: Admin,
    state: web::Data<AppState>,
) -> Result<HttpResponse, GatewayError> {
    let providers = state
        .pipeline
        .registry
        .send(ListProviders)
        .await
        .map_err(mailbox_error)?;
    let breakers = &state.pipeline.routing.breakers;
    let mut views = breakers.views(breakers.now());
    let list: Vec<ProviderStatus> = providers
        .into_iter()
        .map(|view| ProviderStatus {
            breaker: views
                .remove(&view.id)
                .unwrap_or_else(|| breakers.closed_view()),
            view,
        })
        .collect();
    Ok(HttpResponse::Ok().json(list))
}

/// Registers a provider. Kept in memory: add it to config.toml to keep it across restarts.
#[utoipa::path(
    post, path = "/v1/providers", tag = "admin",
    request_body(content = ProviderRequest, description = "A [[providers]] entry as JSON (api_key_env and ca_file only in the config file)", content_type = "application/json"),
    responses(
        (status = 201, description = "Registered", body = ProviderView),
        (status = 400, description = "Invalid provider", body = crate::error::OpenAiErrorBody),
        (status = 409, description = "A provider with that id exists", body = crate::error::OpenAiErrorBody),
        (status = 413, description = "Body over 256 KiB", body = crate::error::OpenAiErrorBody),
        (status = 415, description = "Content-Type is not application/json", body = crate::error::OpenAiErrorBody),
    )
)]
#[post("/v1/providers")]
pub async fn add_provider(
    _: Admin,
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<serde_json::Map<String, serde_json::Value>>,
) -> Result<HttpResponse, GatewayError> {
    // An object, read as a [[providers]] entry (serde would read an entry from an array too).
    let settings: ProviderSettings =
        serde_json::from_value(serde_json::Value::Object(body.into_inner())).map_err(|e| {
            GatewayError::InvalidRequest {
                message: format!("invalid provider: {e}"),
                param: None,
            }
        })?;
    // Which environment variable or file the gateway reads is the operator's choice, made
    // in the config file: a request naming one could read any secret or block on any file.
    for (field, set) in [
        ("api_key_env", settings.api_key_env.is_some()),
        ("ca_file", settings.ca_file.is_some()),
    ] {
        if set {
            return Err(GatewayError::InvalidRequest {
                message: format!(
                    "`{field}` can only be set in the config file, not through the API"
                ),
                param: Some(field.into()),
            });
        }
    }
    let id = settings.id.clone();
    let view = state
        .pipeline
        .registry
        .send(AddProvider(settings))
        .await
        .map_err(mailbox_error)??;
    tracing::warn!(client = %client_address(&req), provider = %id, endpoint = %view.endpoint, "admin: provider added");
    Ok(HttpResponse::Created().json(view))
}

/// Removes a provider by id.
#[utoipa::path(
    delete, path = "/v1/providers/{id}", tag = "admin",
    params(("id" = String, Path, description = "Provider id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such provider", body = crate::error::OpenAiErrorBody),
    )
)]
#[delete("/v1/providers/{id}")]
pub async fn remove_provider(
    _: Admin,
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, GatewayError> {
    let id = id.into_inner();
    let endpoint = state
        .pipeline
        .registry
        .send(RemoveProvider(id.clone()))
        .await
        .map_err(mailbox_error)??;
    // A provider added again under this id starts with closed breakers.
    state.pipeline.routing.breakers.forget(&id);
    tracing::warn!(client = %client_address(&req), provider = %id, %endpoint, "admin: provider removed");
    Ok(HttpResponse::NoContent().finish())
}
