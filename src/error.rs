//! One error type for the gateway, classified: which side failed (the client's request, the
//! gateway, an upstream), whether another target may help, its kind (an enum, down to the
//! ledger), its HTTP status, and its rendering in the caller's API shape.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

use crate::api::{anthropic, openai, ApiFormat};

/// Which side a failure comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The client's request is at fault (malformed, too large, not allowed): resending it
    /// unchanged fails again.
    Client,
    /// The gateway itself (its limits, its configuration, a bug).
    Gateway,
    /// An upstream provider (unreachable, too slow, broken answer).
    Upstream,
}

/// One target's failure, as the client's answer names it when every target failed.
#[derive(Debug, Clone)]
pub struct TargetFailure {
    pub provider: String,
    /// What went wrong, never a key (`status 503`, or the error's message).
    pub failure: String,
}

/// Everything that can go wrong in the gateway, with the context to explain it.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("{message}")]
    InvalidRequest {
        message: String,
        param: Option<String>,
    },
    #[error("unsupported Content-Type `{content_type}`: send the body as JSON with `Content-Type: application/json`")]
    UnsupportedMediaType { content_type: String },
    #[error("the request body is larger than this endpoint's limit of {limit} bytes (on the proxy endpoints: [server] max_body_bytes)")]
    PayloadTooLarge { limit: usize },
    #[error("the request body did not arrive within {timeout_ms} ms ([server] body_timeout_ms)")]
    BodyTimeout { timeout_ms: u64 },
    #[error("{message}")]
    Overloaded { message: String },
    #[error("the request headers are larger than the gateway's limit of {limit} bytes ([server] max_header_bytes)")]
    HeadersTooLarge { limit: usize },
    #[error("{method} is not allowed on {path}; allowed: {allowed}")]
    MethodNotAllowed {
        method: String,
        path: String,
        allowed: String,
    },
    #[error("{message}")]
    Unauthorized { message: String },
    #[error("the admin and analytics endpoints are locked: this gateway listens beyond loopback and has no admin token. Set [server] admin_token (or admin_token_env) in the config file and send `Authorization: Bearer <admin_token>`")]
    AdminLocked,
    #[error("virtual key `{label}` has no key for provider `{provider}`, and the provider has no api_key of its own")]
    NoKeyForProvider { label: String, provider: String },
    #[error("the request was blocked by the compliance gate: it contains {}; nothing was forwarded", kinds.join(", "))]
    ComplianceBlocked { kinds: Vec<String> },
    #[error("model `{model}` is not served by any enabled provider; GET /v1/models lists the models available, and `provider_id/model` sends to one provider")]
    ModelNotFound { model: String },
    /// The request has something the target's API cannot take (translating between the two
    /// APIs); `param` names it.
    #[error("{message}")]
    Untranslatable { param: String, message: String },
    #[error("{message}")]
    UnknownProfile { message: String },
    /// The model's providers are all of an API without this endpoint (embeddings or legacy
    /// completions toward Anthropic).
    #[error("{endpoint} is not served for model `{model}`: its provider(s) {} speak Anthropic's API, which has no such endpoint; it goes to providers of type openai, azure_openai or local", providers.join(", "))]
    EndpointNotServed {
        endpoint: &'static str,
        model: String,
        providers: Vec<String>,
    },
    /// A key's or project's budget is spent (429 `insufficient_quota`); nothing was forwarded.
    #[error("{message}")]
    BudgetExhausted {
        message: String,
        retry_after_secs: Option<u64>,
    },
    /// A key's or project's `rpm` or `tpm` is reached (429 `rate_limit_exceeded`).
    #[error("{message}")]
    RateLimited {
        message: String,
        /// `rpm` or `tpm`.
        limit: &'static str,
        retry_after_secs: u64,
    },
    /// The model is outside the key's or project's `models` (403).
    #[error("{message}")]
    ModelNotAllowed { message: String },
    #[error("no model fits this request under routing profile `{profile}`: {summary}. POST /v1/route with the same body shows each layer's drops")]
    NoRoute { profile: String, summary: String },
    #[error("the circuit breakers of {} are open after repeated failures; a probe is let through in {retry_in_ms} ms", providers.join(", "))]
    CircuitOpen {
        providers: Vec<String>,
        retry_in_ms: u64,
    },
    #[error("no route for {method} {path}; GET /openapi.json lists the endpoints")]
    RouteNotFound { method: String, path: String },
    #[error("no project `{id}` has sent requests; GET /v1/projects lists them")]
    ProjectNotFound { id: String },
    #[error("the ledger has no record `{id}`; GET /v1/records lists them (a request is written a moment after its answer)")]
    RecordNotFound { id: String },
    #[error("no proxied request has id `{id}`: report a signal against the x-request-id header of a proxied answer (this gateway, or one sharing its database)")]
    RequestNotFound { id: String },
    #[error("no provider of this gateway keeps a response `{id}`: only OpenAI and Azure OpenAI store responses (those the gateway translated for other providers are not stored)")]
    ResponseNotFound { id: String },
    #[error("no provider with id `{id}`; GET /v1/providers lists them")]
    ProviderNotFound { id: String },
    #[error("provider `{id}` is disabled")]
    ProviderDisabled { id: String },
    #[error("{message}")]
    Conflict { message: String },
    #[error("failed to connect to provider `{provider}`: {message}")]
    UpstreamConnect { provider: String, message: String },
    #[error("provider `{provider}` did not answer within {timeout_ms} ms")]
    UpstreamTimeout { provider: String, timeout_ms: u64 },
    #[error("failed to read the answer of provider `{provider}`: {message}")]
    UpstreamBroken { provider: String, message: String },
    #[error("internal error: {message}")]
    Internal { message: String },
    /// `POST /v1/ask` without a model to write its SQL.
    #[error("no model writes the SQL of POST /v1/ask: set `[analytics] model` in the config file to a model id (e.g. \"gpt-4o\") or a routing profile (e.g. \"balanced\")")]
    AnalyticsNotConfigured,
    /// The model's SQL did not pass the read-only check; `sql` is what it wrote.
    #[error("the SQL was refused: {reason}")]
    SqlRefused { reason: String, sql: String },
    /// The checked SQL failed at the database (after the repair round).
    #[error("the SQL failed at the database: {error}")]
    SqlFailed { error: String, sql: String },
    /// The checked SQL ran past `[analytics] timeout_ms` and was stopped.
    #[error("the SQL was stopped at the time limit of {timeout_ms} ms ([analytics] timeout_ms)")]
    SqlTimeout { timeout_ms: u64, sql: String },
    /// Every target of the route plan failed; the last one's error decides the status.
    #[error("all {} targets failed: {}", failures.len(), failures.iter().map(|f| format!("{}: {}", f.provider, f.failure)).collect::<Vec<_>>().join("; "))]
    AllTargetsFailed {
        failures: Vec<TargetFailure>,
        last: Box<GatewayError>,
    },
}

/// What kind of failure a request ended with: the gateway's own errors, or what the upstream
/// said. Written to the ledger (`error_kind`) and the metrics as [`ErrorKind::as_str`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// One of the gateway's errors (its `code`).
    Gateway(&'static str),
    /// The upstream answered with an error status.
    UpstreamStatus(u16),
    /// The upstream reported an error in its body or stream, with its own type.
    UpstreamReported(String),
    /// The client went away before the answer ended.
    ClientDisconnected,
}

impl ErrorKind {
    /// The kind as stored: `upstream_timeout`, `upstream_http_503`, `overloaded_error`, …
    pub fn as_str(&self) -> std::borrow::Cow<'_, str> {
        match self {
            Self::Gateway(code) => (*code).into(),
            Self::UpstreamStatus(status) => format!("upstream_http_{status}").into(),
            Self::UpstreamReported(kind) => kind.as_str().into(),
            Self::ClientDisconnected => "client_disconnected".into(),
        }
    }
}

impl GatewayError {
    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::InvalidRequest { .. }
            | Self::Untranslatable { .. }
            | Self::UnknownProfile { .. }
            | Self::EndpointNotServed { .. }
            | Self::NoRoute { .. } => StatusCode::BAD_REQUEST,
            Self::CircuitOpen { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::BudgetExhausted { .. } | Self::RateLimited { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            Self::ModelNotAllowed { .. } => StatusCode::FORBIDDEN,
            Self::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            Self::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            Self::Overloaded { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::HeadersTooLarge { .. } => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::NoKeyForProvider { .. } | Self::ComplianceBlocked { .. } | Self::AdminLocked => {
                StatusCode::FORBIDDEN
            }
            Self::ModelNotFound { .. }
            | Self::RouteNotFound { .. }
            | Self::ProjectNotFound { .. }
            | Self::RecordNotFound { .. }
            | Self::RequestNotFound { .. }
            | Self::ResponseNotFound { .. }
            | Self::ProviderNotFound { .. }
            | Self::ProviderDisabled { .. } => StatusCode::NOT_FOUND,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::UpstreamConnect { .. } | Self::UpstreamBroken { .. } => StatusCode::BAD_GATEWAY,
            Self::UpstreamTimeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            Self::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            // The gateway is not set up for it: nothing the caller can change in the request.
            Self::AnalyticsNotConfigured => StatusCode::SERVICE_UNAVAILABLE,
            Self::SqlRefused { .. } | Self::SqlFailed { .. } | Self::SqlTimeout { .. } => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Self::AllTargetsFailed { last, .. } => last.status(),
        }
    }

    /// Which side failed.
    pub fn origin(&self) -> Origin {
        match self {
            Self::InvalidRequest { .. }
            | Self::UnsupportedMediaType { .. }
            | Self::PayloadTooLarge { .. }
            | Self::BodyTimeout { .. }
            | Self::HeadersTooLarge { .. }
            | Self::MethodNotAllowed { .. }
            | Self::Unauthorized { .. }
            | Self::ComplianceBlocked { .. }
            | Self::ModelNotFound { .. }
            | Self::Untranslatable { .. }
            | Self::UnknownProfile { .. }
            | Self::EndpointNotServed { .. }
            | Self::BudgetExhausted { .. }
            | Self::RateLimited { .. }
            | Self::ModelNotAllowed { .. }
            | Self::NoRoute { .. }
            | Self::RouteNotFound { .. }
            | Self::ProjectNotFound { .. }
            | Self::RecordNotFound { .. }
            | Self::RequestNotFound { .. }
            | Self::ResponseNotFound { .. }
            | Self::ProviderNotFound { .. }
            | Self::Conflict { .. }
            | Self::SqlRefused { .. }
            | Self::SqlFailed { .. }
            | Self::SqlTimeout { .. } => Origin::Client,
            Self::Overloaded { .. }
            | Self::AdminLocked
            | Self::NoKeyForProvider { .. }
            | Self::ProviderDisabled { .. }
            | Self::AnalyticsNotConfigured
            | Self::Internal { .. } => Origin::Gateway,
            Self::UpstreamConnect { .. }
            | Self::UpstreamTimeout { .. }
            | Self::UpstreamBroken { .. }
            | Self::CircuitOpen { .. }
            | Self::AllTargetsFailed { .. } => Origin::Upstream,
        }
    }

    /// Whether another target might succeed where this attempt failed: an upstream that
    /// could not be reached or did not answer in time. (A broken answer is not retried: part
    /// of it may have reached the client.)
    pub fn may_help_elsewhere(&self) -> bool {
        matches!(
            self,
            Self::UpstreamConnect { .. } | Self::UpstreamTimeout { .. }
        )
    }

    /// The gateway's machine-readable code for this error (the `code` of OpenAI-shaped answers).
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest { .. } => "invalid_request",
            Self::UnsupportedMediaType { .. } => "unsupported_media_type",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::Unauthorized { .. } => "unauthorized",
            Self::BodyTimeout { .. } => "body_timeout",
            Self::Overloaded { .. } => "overloaded",
            Self::HeadersTooLarge { .. } => "headers_too_large",
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::AdminLocked => "admin_locked",
            Self::NoKeyForProvider { .. } => "no_key_for_provider",
            Self::ComplianceBlocked { .. } => "compliance_blocked",
            Self::ModelNotFound { .. } => "model_not_found",
            Self::RouteNotFound { .. } => "route_not_found",
            Self::UnknownProfile { .. } => "unknown_profile",
            Self::EndpointNotServed { .. } => "endpoint_not_served",
            Self::BudgetExhausted { .. } => "insufficient_quota",
            Self::RateLimited { .. } => "rate_limit_exceeded",
            Self::ModelNotAllowed { .. } => "model_not_allowed",
            Self::NoRoute { .. } => "no_route",
            Self::CircuitOpen { .. } => "circuit_open",
            Self::ProjectNotFound { .. } => "project_not_found",
            Self::RecordNotFound { .. } => "record_not_found",
            Self::RequestNotFound { .. } => "request_not_found",
            Self::ResponseNotFound { .. } => "response_not_found",
            Self::Untranslatable { .. } => "untranslatable",
            Self::ProviderNotFound { .. } => "provider_not_found",
            Self::ProviderDisabled { .. } => "provider_disabled",
            Self::Conflict { .. } => "conflict",
            Self::UpstreamConnect { .. } => "upstream_connect",
            Self::UpstreamTimeout { .. } => "upstream_timeout",
            Self::UpstreamBroken { .. } => "upstream_broken",
            Self::Internal { .. } => "internal",
            Self::AnalyticsNotConfigured => "analytics_model_not_configured",
            Self::SqlRefused { .. } => "sql_refused",
            Self::SqlFailed { .. } => "sql_failed",
            Self::SqlTimeout { .. } => "sql_timeout",
            // The last failure is what the client is told to act on.
            Self::AllTargetsFailed { last, .. } => last.code(),
        }
    }

    /// The kind recorded in the ledger and the metrics.
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::Gateway(self.code())
    }

    /// The JSON body of this error in the given API's shape.
    pub fn body(&self, api: ApiFormat) -> serde_json::Value {
        let message = self.to_string();
        let status = self.status().as_u16();
        match api {
            ApiFormat::OpenAi => {
                let param = match self {
                    Self::InvalidRequest { param, .. } => param.as_deref(),
                    Self::Untranslatable { param, .. } => Some(param.as_str()),
                    _ => None,
                };
                let mut body = openai::error_body(status, &message, self.code(), param);
                // OpenAI's own types of these 429s, which its SDKs and tools tell apart.
                match self {
                    Self::BudgetExhausted { .. } => {
                        body["error"]["type"] = "insufficient_quota".into()
                    }
                    Self::RateLimited { limit, .. } => {
                        body["error"]["type"] = if *limit == "tpm" {
                            "tokens"
                        } else {
                            "requests"
                        }
                        .into();
                    }
                    _ => {}
                }
                // The ask endpoint's refusals carry the SQL they are about.
                if let Self::SqlRefused { sql, .. }
                | Self::SqlFailed { sql, .. }
                | Self::SqlTimeout { sql, .. } = self
                {
                    body["sql"] = serde_json::Value::String(sql.clone());
                }
                body
            }
            ApiFormat::Anthropic => anthropic::error_body(status, &message),
        }
    }

    /// The full HTTP answer in the given API's shape (with `Retry-After` where waiting helps).
    pub fn to_response(&self, api: ApiFormat) -> HttpResponse {
        let mut response = HttpResponse::build(self.status());
        if let Some(seconds) = self.retry_after_secs() {
            response.insert_header((actix_web::http::header::RETRY_AFTER, seconds.to_string()));
        }
        response.json(self.body(api))
    }

    /// Seconds to wait before a retry can succeed, where the gateway knows.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            Self::CircuitOpen { retry_in_ms, .. } => Some(retry_in_ms.div_ceil(1000).max(1)),
            Self::BudgetExhausted {
                retry_after_secs, ..
            } => *retry_after_secs,
            Self::RateLimited {
                retry_after_secs, ..
            } => Some(*retry_after_secs),
            Self::AllTargetsFailed { last, .. } => last.retry_after_secs(),
            _ => None,
        }
    }

    /// Attaches the API whose shape the caller expects.
    pub fn in_shape(self, api: ApiFormat) -> ApiError {
        ApiError { error: self, api }
    }
}

/// The OpenAI error shape, as the OpenAPI document shows it.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct OpenAiErrorBody {
    pub error: ErrorDetail,
}

/// The `error` member of [`OpenAiErrorBody`].
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    pub message: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub param: Option<String>,
    /// A machine-readable kind, e.g. `invalid_request`.
    pub code: Option<String>,
}

/// The Anthropic error shape, as the OpenAPI document shows it.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct AnthropicErrorBody {
    /// Always `error`.
    #[serde(rename = "type")]
    pub kind: String,
    pub error: AnthropicErrorDetail,
}

/// The `error` member of [`AnthropicErrorBody`].
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct AnthropicErrorDetail {
    #[serde(rename = "type")]
    pub kind: String,
    pub message: String,
}

/// Admin and analytics endpoints answer in the OpenAI shape.
impl ResponseError for GatewayError {
    fn status_code(&self) -> StatusCode {
        self.status()
    }

    fn error_response(&self) -> HttpResponse {
        self.to_response(ApiFormat::OpenAi)
    }
}

/// A [`GatewayError`] bound to the API shape the caller speaks.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct ApiError {
    pub error: GatewayError,
    pub api: ApiFormat,
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.error.status()
    }

    fn error_response(&self) -> HttpResponse {
        self.error.to_response(self.api)
    }
}

#[cfg(test)]
mod tests {
    use super::GatewayError;

    #[test]
    fn refused_requests_are_recorded_with_the_kinds_the_rollups_count() {
        use crate::ledger::sums::{BUDGET_REFUSED_KIND, RATE_LIMITED_KIND, SANITIZER_BLOCKED_KIND};
        let refusals = [
            (
                GatewayError::ComplianceBlocked { kinds: Vec::new() },
                SANITIZER_BLOCKED_KIND,
            ),
            (
                GatewayError::BudgetExhausted {
                    message: String::new(),
                    retry_after_secs: None,
                },
                BUDGET_REFUSED_KIND,
            ),
            (
                GatewayError::RateLimited {
                    message: String::new(),
                    limit: "rpm",
                    retry_after_secs: 1,
                },
                RATE_LIMITED_KIND,
            ),
        ];
        for (error, counted) in refusals {
            assert_eq!(error.kind().as_str(), counted, "{error:?}");
        }
    }
}
