//! The proxy endpoints: OpenAI chat completions, Anthropic messages and token counting, and the model list.

use actix_web::{get, post, web, HttpMessage, HttpRequest, HttpResponse};

use crate::actors::provider_registry::ListModels;
use crate::api::Operation;
use crate::error::{ApiError, GatewayError};
use crate::pipeline::call::RequestMeta;
use crate::pipeline::{http, upstream::UpstreamClients};
use crate::request_context::{ArrivedAt, RequestId};
use crate::state::AppState;

/// Extracts what a proxy endpoint takes and serves it through the pipeline.
async fn proxied(
    op: Operation,
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    clients: web::Data<UpstreamClients>,
    request_id: RequestId,
) -> Result<HttpResponse, ApiError> {
    let arrived = req
        .extensions()
        .get::<ArrivedAt>()
        .map_or_else(std::time::Instant::now, |a| a.0);
    let meta = RequestMeta::from_headers(req.headers(), request_id.text(), arrived);
    http::serve(&state.pipeline, op, &req, payload, &clients, meta).await
}

/// Forwards an OpenAI Chat Completions request to OpenAI, Azure OpenAI or a local server, or,
/// translated to Anthropic Messages and back (JSON and streams, tools, thinking as
/// `reasoning_content`), to an Anthropic model. What Anthropic cannot take (`n` > 1, `logprobs`,
/// audio, a temperature above 1…) is refused with 400 `untranslatable` naming the field.
#[utoipa::path(
    post, path = "/v1/chat/completions", tag = "proxy",
    params(ProxyHeaders, RoutingHeaders),
    request_body(content = crate::api::schema::ChatCompletionRequest, description = "An OpenAI Chat Completions body; members the gateway does not read go to the provider as sent", content_type = "application/json"),
    responses(
        (status = 200, description = "The provider's answer, unchanged (JSON, or text/event-stream with \"stream\": true); from an Anthropic model, translated to this API, with `x-gateway-translated: openai->anthropic` and, when something could not be honoured and was removed, `x-gateway-translation-removed` naming it",
            content((crate::api::schema::ChatCompletion = "application/json"), (crate::api::schema::ServerSentEvent = "text/event-stream"))),
        (status = 400, description = "Invalid request; `code: untranslatable` with `param` naming what the target's API cannot take", body = crate::error::OpenAiErrorBody),
    )
)]
#[post("/v1/chat/completions")]
pub async fn chat_completions(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    clients: web::Data<UpstreamClients>,
    request_id: RequestId,
) -> Result<HttpResponse, ApiError> {
    proxied(
        Operation::ChatCompletions,
        req,
        payload,
        state,
        clients,
        request_id,
    )
    .await
}

/// Forwards an Anthropic Messages request to Anthropic, or, translated to Chat Completions and
/// back (JSON and streams with consistent content blocks, tools, tool names over 64
/// characters shortened reversibly), to an OpenAI, Azure OpenAI or local model. `cache_control`,
/// `top_k`, thinking blocks of earlier turns and `anthropic-beta` values are removed toward
/// them and named in `x-gateway-translation-removed`; server tools are refused with 400.
#[utoipa::path(
    post, path = "/v1/messages", tag = "proxy",
    params(ProxyHeaders, RoutingHeaders,
        ("anthropic-version" = Option<String>, Header, description = "Forwarded; 2023-06-01 when absent")),
    request_body(content = crate::api::schema::MessagesRequest, description = "An Anthropic Messages body; members the gateway does not read go to the provider as sent", content_type = "application/json"),
    responses(
        (status = 200, description = "The provider's answer, unchanged (JSON, or text/event-stream with \"stream\": true); from an OpenAI-API model, translated to this API, with `x-gateway-translated: anthropic->openai` and `x-gateway-translation-removed` naming what was removed",
            content((crate::api::schema::Message = "application/json"), (crate::api::schema::ServerSentEvent = "text/event-stream"))),
        (status = 400, description = "Invalid request, or something the target's API cannot take (the message names the field)", body = crate::error::AnthropicErrorBody),
    )
)]
#[post("/v1/messages")]
pub async fn messages(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    clients: web::Data<UpstreamClients>,
    request_id: RequestId,
) -> Result<HttpResponse, ApiError> {
    proxied(
        Operation::Messages,
        req,
        payload,
        state,
        clients,
        request_id,
    )
    .await
}

/// Forwards an Anthropic token-counting request to Anthropic. For a model of OpenAI's API
/// (which has no such endpoint) the gateway counts itself with the o200k tokenizer and says so:
/// `{"input_tokens": N, "estimate": true, "tokenizer": "o200k_base"}` and an
/// `x-gateway-token-estimate: o200k_base` header.
#[utoipa::path(
    post, path = "/v1/messages/count_tokens", tag = "proxy",
    params(ProxyHeaders, RoutingHeaders,
        ("anthropic-version" = Option<String>, Header, description = "Forwarded; 2023-06-01 when absent")),
    request_body(content = crate::api::schema::CountTokensRequest, description = "An Anthropic count_tokens body; members the gateway does not read go to the provider as sent", content_type = "application/json"),
    responses((status = 200, description = "The provider's answer, unchanged; for an OpenAI-API model the gateway's estimate, marked `estimate: true`", body = crate::api::schema::TokenCount))
)]
#[post("/v1/messages/count_tokens")]
pub async fn count_tokens(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    clients: web::Data<UpstreamClients>,
    request_id: RequestId,
) -> Result<HttpResponse, ApiError> {
    proxied(
        Operation::CountTokens,
        req,
        payload,
        state,
        clients,
        request_id,
    )
    .await
}

/// The models of every enabled provider: well-known ids for cloud providers, and what each
/// local server's own `GET /v1/models` reports (cached briefly; a server that is down is skipped).
#[utoipa::path(
    get, path = "/v1/models", tag = "proxy",
    responses((status = 200, description = "OpenAI-style model list", body = ModelList))
)]
#[get("/v1/models")]
pub async fn list_models(state: web::Data<AppState>) -> Result<HttpResponse, GatewayError> {
    let data = state
        .pipeline
        .registry
        .send(ListModels)
        .await
        .map_err(|e| GatewayError::Internal {
            message: format!("failed to ask the provider registry: {e}"),
        })?;
    Ok(HttpResponse::Ok().json(ModelList {
        object: "list",
        data,
    }))
}

/// The headers a proxied call is tracked by in the ledger (the key is a security scheme of the
/// document: `virtual_key`, `virtual_key_x_api_key`, `virtual_key_api_key`).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
pub struct ProxyHeaders {
    /// Who is calling (a tool's name, e.g. `claude-code`): the ledger's per-source breakdown.
    #[param(rename = "x-source")]
    pub source: Option<String>,
    /// The project the call belongs to: the ledger's per-project breakdown, and the limits of
    /// `[projects.<id>]`.
    #[param(rename = "x-project")]
    pub project: Option<String>,
}

/// The headers the router reads, on the proxy endpoints and `POST /v1/route`.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
pub struct RoutingHeaders {
    /// Hands the choice of model to the router under this profile (as `model: "auto"` does
    /// under `[routing] default_profile`).
    #[param(rename = "x-route-profile")]
    pub route_profile: Option<String>,
    /// The kind of task whose quality figures score the candidates: `general`, `coding`,
    /// `reasoning` or `long_context` (read when the router chooses; anything else is a 400).
    #[param(rename = "x-task-kind")]
    pub task_kind: Option<String>,
    /// A conversation's id: a routed conversation stays on the provider and model that served
    /// it last (prompt-cache affinity) while they pass every layer; ignored past 256 bytes.
    #[param(rename = "x-session-id")]
    pub session_id: Option<String>,
    /// As `x-session-id`, as Claude Code sends it.
    #[param(rename = "x-claude-code-session-id")]
    pub claude_code_session_id: Option<String>,
}

/// The answer of `GET /v1/models`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ModelList {
    pub object: &'static str,
    pub data: Vec<crate::actors::provider_registry::ModelEntry>,
}
