//! Provider administration: list, register and remove providers at runtime.

use actix_web::{delete, get, post, web, HttpRequest, HttpResponse};

use crate::access::Admin;

use crate::actors::provider_registry::{AddProvider, ListProviders, RemoveProvider};
use crate::error::GatewayError;
use crate::providers::ProviderView;
use crate::settings::ProviderSettings;
use crate::startup::AppState;

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
    responses((status = 200, description = "The providers, in configuration order", body = [ProviderView]))
)]
#[get("/v1/providers")]
pub async fn list_providers(
    _: Admin,
    state: web::Data<AppState>,
) -> Result<HttpResponse, GatewayError> {
    let providers = state
        .registry
        .send(ListProviders)
        .await
        .map_err(mailbox_error)?;
    Ok(HttpResponse::Ok().json(providers))
}

/// Registers a provider. Kept in memory: add it to config.toml to keep it across restarts.
#[utoipa::path(
    post, path = "/v1/providers", tag = "admin",
    request_body(content = serde_json::Value, description = "A [[providers]] entry as JSON: id, provider_type, endpoint, api_key, deployment, api_version, enabled, models, timeouts", content_type = "application/json"),
    responses(
        (status = 201, description = "Registered", body = ProviderView),
        (status = 400, description = "Invalid provider"),
        (status = 401, description = "Missing or wrong admin token"),
        (status = 409, description = "A provider with that id exists"),
    )
)]
#[post("/v1/providers")]
pub async fn add_provider(
    _: Admin,
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<ProviderSettings>,
) -> Result<HttpResponse, GatewayError> {
    let settings = body.into_inner();
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
        (status = 401, description = "Missing or wrong admin token"),
        (status = 404, description = "No such provider"),
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
        .registry
        .send(RemoveProvider(id.clone()))
        .await
        .map_err(mailbox_error)??;
    tracing::warn!(client = %client_address(&req), provider = %id, %endpoint, "admin: provider removed");
    Ok(HttpResponse::NoContent().finish())
}
