//! The OpenAPI 3.1 document, generated from the handlers' annotations, with the admin gate
//! and the error shape added to every operation it concerns.

use utoipa::openapi::path::Operation;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref};
use utoipa::{Modify, OpenApi};

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
        crate::routes::proxy::list_models,
        crate::routes::admin::list_providers,
        crate::routes::admin::add_provider,
        crate::routes::admin::remove_provider,
        crate::routes::analytics::stats,
        crate::routes::analytics::records,
        crate::routes::analytics::sources,
        crate::routes::analytics::projects,
        crate::routes::analytics::project_records,
        crate::routes::health::health,
        crate::routes::health::openapi_json,
        crate::routes::health::metrics,
    ),
    components(schemas(crate::error::OpenAiErrorBody, crate::error::ErrorDetail)),
    modifiers(&AdminGateDoc),
    tags(
        (name = "proxy", description = "Calls forwarded to providers"),
        (name = "admin", description = "Provider administration (admin token)"),
        (name = "analytics", description = "Usage and cost from the ledger (admin token)"),
        (name = "health", description = "Health and service description"),
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
    for (status, description) in [
        ("401", "Missing or wrong admin token"),
        (
            "403",
            "Listening beyond loopback without an admin token: set [server] admin_token",
        ),
    ] {
        let response = ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("OpenAiErrorBody")))
                    .build(),
            )
            .build();
        operation
            .responses
            .responses
            .insert(status.to_string(), response.into());
    }
}
