//! Provider administration: list, register and remove providers at runtime.

use actix_web::{delete, get, post, web, HttpRequest, HttpResponse};
use secrecy::ExposeSecret;

use crate::actors::provider_registry::{AddProvider, ListProviders, RemoveProvider};
use crate::error::GatewayError;
use crate::providers::ProviderView;
use crate::settings::ProviderSettings;
use crate::startup::AppState;

/// Refuses the call unless it carries `[server] admin_token` (when one is set).
fn check_admin(req: &HttpRequest, state: &AppState) -> Result<(), GatewayError> {
    let Some(expected) = &state.admin_token else {
        return Ok(());
    };
    let presented = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if presented
        .is_some_and(|p| constant_time_eq(p.as_bytes(), expected.expose_secret().as_bytes()))
    {
        Ok(())
    } else {
        Err(GatewayError::Unauthorized {
            message: "this admin endpoint requires `Authorization: Bearer <admin_token>`".into(),
        })
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
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
pub async fn list_providers(state: web::Data<AppState>) -> Result<HttpResponse, GatewayError> {
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
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<ProviderSettings>,
) -> Result<HttpResponse, GatewayError> {
    check_admin(&req, &state)?;
    let view = state
        .registry
        .send(AddProvider(body.into_inner()))
        .await
        .map_err(mailbox_error)??;
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
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, GatewayError> {
    check_admin(&req, &state)?;
    state
        .registry
        .send(RemoveProvider(id.into_inner()))
        .await
        .map_err(mailbox_error)??;
    Ok(HttpResponse::NoContent().finish())
}
