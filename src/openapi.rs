//! The OpenAPI 3.1 document, generated from the handlers' annotations.

use utoipa::OpenApi;

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
    tags(
        (name = "proxy", description = "Calls forwarded to providers"),
        (name = "admin", description = "Provider administration"),
        (name = "analytics", description = "Usage and cost from the ledger"),
        (name = "health", description = "Health and service description"),
    )
)]
pub struct ApiDoc;
