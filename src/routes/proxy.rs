//! The proxy endpoints: OpenAI chat completions, the Responses API, embeddings and legacy
//! completions, Anthropic messages and token counting, and the models.

use actix_web::http::Method;
use actix_web::{delete, dev, get, post, web, FromRequest, HttpMessage, HttpRequest, HttpResponse};
use futures_util::future::LocalBoxFuture;

use crate::actors::provider_registry::ListModels;
use crate::api::Operation;
use crate::error::{ApiError, GatewayError};
use crate::pipeline::call::RequestMeta;
use crate::pipeline::{http, upstream::UpstreamClients};
use crate::request_context::{ArrivedAt, RequestId};
use crate::state::AppState;

/// What a proxy endpoint takes, extracted at once: the request, its body still to be read, the
/// state, this worker's upstream clients and the request's id.
pub struct Proxied {
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    clients: web::Data<UpstreamClients>,
    request_id: RequestId,
}

impl FromRequest for Proxied {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut dev::Payload) -> Self::Future {
        let parts = <(
            web::Payload,
            web::Data<AppState>,
            web::Data<UpstreamClients>,
            RequestId,
        )>::from_request(req, payload);
        let req = req.clone();
        Box::pin(async move {
            let (payload, state, clients, request_id) = parts.await?;
            Ok(Self {
                req,
                payload,
                state,
                clients,
                request_id,
            })
        })
    }
}

impl Proxied {
    /// A stored response, asked of the providers that keep them.
    async fn stored(self, method: Method, id: &str) -> Result<HttpResponse, GatewayError> {
        crate::pipeline::stored::stored_response(
            &self.state.pipeline,
            &self.clients,
            method,
            id,
            self.req.headers(),
            self.req.query_string(),
        )
        .await
    }

    /// Serves the call as `op` through the pipeline.
    async fn serve(self, op: Operation) -> Result<HttpResponse, ApiError> {
        let Self {
            req,
            payload,
            state,
            clients,
            request_id,
        } = self;
        let arrived = req
            .extensions()
            .get::<ArrivedAt>()
            .map_or_else(std::time::Instant::now, |a| a.0);
        let meta = RequestMeta::from_headers(req.headers(), request_id.text(), arrived);
        http::serve(&state.pipeline, op, &req, payload, &clients, meta).await
    }
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
pub async fn chat_completions(call: Proxied) -> Result<HttpResponse, ApiError> {
    call.serve(Operation::ChatCompletions).await
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
pub async fn messages(call: Proxied) -> Result<HttpResponse, ApiError> {
    call.serve(Operation::Messages).await
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
pub async fn count_tokens(call: Proxied) -> Result<HttpResponse, ApiError> {
    call.serve(Operation::CountTokens).await
}

/// Forwards an OpenAI embeddings request to OpenAI, Azure OpenAI (the deployment's
/// `/embeddings`) or a local server: `input` as a string, strings, or token arrays;
/// `dimensions` and `encoding_format` go as sent, and a base64 answer comes back untouched.
/// Metered (`usage.prompt_tokens`), priced, sanitized (the input text is scanned) and limited
/// like chat. A model served only by Anthropic providers is refused (400
/// `endpoint_not_served`); `model: "auto"` is refused (name the model).
#[utoipa::path(
    post, path = "/v1/embeddings", tag = "proxy",
    params(ProxyHeaders),
    request_body(content = crate::api::schema::EmbeddingsRequest, description = "An OpenAI embeddings body; members the gateway does not read go to the provider as sent", content_type = "application/json"),
    responses(
        (status = 200, description = "The provider's answer, unchanged", body = crate::api::schema::EmbeddingList),
        (status = 400, description = "Invalid request; `code: endpoint_not_served` when the model's providers speak Anthropic's API", body = crate::error::OpenAiErrorBody),
    )
)]
#[post("/v1/embeddings")]
pub async fn embeddings(call: Proxied) -> Result<HttpResponse, ApiError> {
    call.serve(Operation::Embeddings).await
}

/// Forwards a legacy OpenAI completions request (`prompt`, and `suffix` for the
/// fill-in-the-middle that Continue's autocomplete sends) to OpenAI, Azure OpenAI (the
/// deployment's `/completions`) or a local server; streamed unbuffered with `"stream": true`.
/// Metered from `usage` (in a stream, its last chunk: the gateway asks OpenAI and Azure for it
/// and keeps it from a client that did not), else estimated.
#[utoipa::path(
    post, path = "/v1/completions", tag = "proxy",
    params(ProxyHeaders),
    request_body(content = crate::api::schema::CompletionRequest, description = "An OpenAI legacy completions body; members the gateway does not read go to the provider as sent", content_type = "application/json"),
    responses(
        (status = 200, description = "The provider's answer, unchanged (JSON, or text/event-stream with \"stream\": true)",
            content((crate::api::schema::TextCompletion = "application/json"), (crate::api::schema::ServerSentEvent = "text/event-stream"))),
        (status = 400, description = "Invalid request; `code: endpoint_not_served` when the model's providers speak Anthropic's API", body = crate::error::OpenAiErrorBody),
    )
)]
#[post("/v1/completions")]
pub async fn completions(call: Proxied) -> Result<HttpResponse, ApiError> {
    call.serve(Operation::Completions).await
}

/// Forwards an OpenAI Responses API request: passed through to OpenAI and Azure OpenAI (its
/// typed stream events unbuffered, usage read from `response.completed`); translated, through
/// Chat Completions, for Anthropic models and local servers (text, `instructions`, function
/// tools and their outputs, images, JSON-schema output, streaming events, usage). What needs
/// OpenAI's servers (`previous_response_id`, `conversation`, hosted tools such as web search)
/// cannot be translated: 400 `untranslatable` naming the field. Routed, failed over, metered,
/// sanitized and limited like chat; `model: "auto"` hands the choice to the Router.
#[utoipa::path(
    post, path = "/v1/responses", tag = "proxy",
    params(ProxyHeaders, RoutingHeaders),
    request_body(content = crate::api::schema::ResponsesRequest, description = "An OpenAI Responses API body; members the gateway does not read go to the provider as sent", content_type = "application/json"),
    responses(
        (status = 200, description = "The provider's answer, unchanged (JSON, or text/event-stream of typed events with \"stream\": true); from an Anthropic model or a local server, translated to this API, with `x-gateway-translated: responses->anthropic` or `responses->openai`",
            content((crate::api::schema::ResponseObject = "application/json"), (crate::api::schema::ServerSentEvent = "text/event-stream"))),
        (status = 400, description = "Invalid request; `code: untranslatable` with `param` naming what the target cannot take", body = crate::error::OpenAiErrorBody),
    )
)]
#[post("/v1/responses")]
pub async fn responses(call: Proxied) -> Result<HttpResponse, ApiError> {
    call.serve(Operation::Responses).await
}

/// A response OpenAI or Azure OpenAI stored (`store`, OpenAI's default), from the first
/// enabled provider of those types that knows the id and that the caller has a key for.
#[utoipa::path(
    get, path = "/v1/responses/{id}", tag = "proxy",
    params(("id" = String, Path, description = "The response's id (`resp_…`)")),
    responses(
        (status = 200, description = "The provider's answer, unchanged", body = crate::api::schema::ResponseObject),
        (status = 400, description = "Not a response id (`param: id`)", body = crate::error::OpenAiErrorBody),
        (status = 401, description = "The gateway requires a virtual key and got none it knows", body = crate::error::OpenAiErrorBody),
        (status = 404, description = "No provider keeps the response (`code: response_not_found`)", body = crate::error::OpenAiErrorBody),
        (status = 502, description = "No provider answered that it keeps the response, and one could not be asked (unreachable, or timed out): its error", body = crate::error::OpenAiErrorBody),
    )
)]
#[get("/v1/responses/{id}")]
pub async fn get_response(
    call: Proxied,
    id: web::Path<String>,
) -> Result<HttpResponse, GatewayError> {
    call.stored(Method::GET, &id).await
}

/// Deletes a response OpenAI or Azure OpenAI stored, where it is kept.
#[utoipa::path(
    delete, path = "/v1/responses/{id}", tag = "proxy",
    params(("id" = String, Path, description = "The response's id (`resp_…`)")),
    responses(
        (status = 200, description = "The provider's answer, unchanged (`{id, object: \"response\", deleted: true}`)"),
        (status = 400, description = "Not a response id (`param: id`)", body = crate::error::OpenAiErrorBody),
        (status = 401, description = "The gateway requires a virtual key and got none it knows", body = crate::error::OpenAiErrorBody),
        (status = 404, description = "No provider keeps the response (`code: response_not_found`)", body = crate::error::OpenAiErrorBody),
        (status = 502, description = "No provider answered that it keeps the response, and one could not be asked (unreachable, or timed out): its error", body = crate::error::OpenAiErrorBody),
    )
)]
#[delete("/v1/responses/{id}")]
pub async fn delete_response(
    call: Proxied,
    id: web::Path<String>,
) -> Result<HttpResponse, GatewayError> {
    call.stored(Method::DELETE, &id).await
}

/// The models of every enabled provider: well-known ids for cloud providers, and what each
/// local server's own `GET /v1/models` reports (cached briefly; a server that is down is skipped).
#[utoipa::path(
    get, path = "/v1/models", tag = "proxy",
    responses((status = 200, description = "OpenAI-style model list", body = ModelList))
)]
#[get("/v1/models")]
pub async fn list_models(state: web::Data<AppState>) -> Result<HttpResponse, GatewayError> {
    Ok(HttpResponse::Ok().json(ModelList {
        object: "list",
        data: models(&state).await?,
    }))
}

/// One model of `GET /v1/models`, as OpenAI's `GET /v1/models/{id}` answers (the first
/// provider listing it); an id may hold `/` (a Hugging Face repo id a local server reports).
#[utoipa::path(
    get, path = "/v1/models/{id}", tag = "proxy",
    params(("id" = String, Path, description = "A model id as `GET /v1/models` lists it")),
    responses(
        (status = 200, description = "OpenAI-style model object", body = crate::actors::provider_registry::ModelEntry),
        (status = 404, description = "No enabled provider lists the model", body = crate::error::OpenAiErrorBody),
    )
)]
#[get("/v1/models/{id:.+}")]
pub async fn get_model(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, GatewayError> {
    let id = id.into_inner();
    let model = models(&state).await?.into_iter().find(|m| m.id == id);
    model
        .map(|m| HttpResponse::Ok().json(m))
        .ok_or(GatewayError::ModelNotFound { model: id })
}

/// The models of every enabled provider, from the registry.
async fn models(
    state: &AppState,
) -> Result<Vec<crate::actors::provider_registry::ModelEntry>, GatewayError> {
    state
        .pipeline
        .registry
        .send(ListModels)
        .await
        .map_err(|e| GatewayError::Internal {
            message: format!("failed to ask the provider registry: {e}"),
        })
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
