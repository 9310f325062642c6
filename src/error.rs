//! One error type for the gateway, classified: its HTTP status, whether failover may help, and its
//! rendering in the caller's API shape (OpenAI or Anthropic).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

use crate::providers::{ApiFormat, ProviderKind};

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
    #[error("model `{model}` is served by provider `{provider}` ({}), which speaks the {} API: send it to {}", provider_type.as_str(), api_name(provider_type.api()), api_path(provider_type.api()))]
    WrongApi {
        model: String,
        provider: String,
        provider_type: ProviderKind,
    },
    #[error("no route for {method} {path}; GET /openapi.json lists the endpoints")]
    RouteNotFound { method: String, path: String },
    #[error("no project `{id}` has sent requests; GET /v1/projects lists them")]
    ProjectNotFound { id: String },
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
}

fn api_name(api: ApiFormat) -> &'static str {
    match api {
        ApiFormat::OpenAi => "OpenAI Chat Completions",
        ApiFormat::Anthropic => "Anthropic Messages",
    }
}

fn api_path(api: ApiFormat) -> &'static str {
    match api {
        ApiFormat::OpenAi => "POST /v1/chat/completions",
        ApiFormat::Anthropic => "POST /v1/messages",
    }
}

impl GatewayError {
    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::InvalidRequest { .. } | Self::WrongApi { .. } => StatusCode::BAD_REQUEST,
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
            | Self::ProviderNotFound { .. }
            | Self::ProviderDisabled { .. } => StatusCode::NOT_FOUND,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::UpstreamConnect { .. } | Self::UpstreamBroken { .. } => StatusCode::BAD_GATEWAY,
            Self::UpstreamTimeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            Self::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Whether another provider might succeed where this attempt failed (failover).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::UpstreamConnect { .. } | Self::UpstreamTimeout { .. }
        )
    }

    /// A short machine-readable kind, for logs and the ledger.
    pub fn kind(&self) -> &'static str {
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
            Self::ProjectNotFound { .. } => "project_not_found",
            Self::WrongApi { .. } => "wrong_api",
            Self::ProviderNotFound { .. } => "provider_not_found",
            Self::ProviderDisabled { .. } => "provider_disabled",
            Self::Conflict { .. } => "conflict",
            Self::UpstreamConnect { .. } => "upstream_connect",
            Self::UpstreamTimeout { .. } => "upstream_timeout",
            Self::UpstreamBroken { .. } => "upstream_broken",
            Self::Internal { .. } => "internal",
        }
    }

    fn openai_type(&self) -> &'static str {
        match self.status().as_u16() {
            400 | 404 | 405 | 408 | 409 | 413 | 415 | 431 => "invalid_request_error",
            401 => "authentication_error",
            403 => "permission_error",
            _ => "api_error",
        }
    }

    fn anthropic_type(&self) -> &'static str {
        match self.status().as_u16() {
            400 | 405 | 409 | 415 => "invalid_request_error",
            401 => "authentication_error",
            403 => "permission_error",
            404 => "not_found_error",
            413 | 431 => "request_too_large",
            408 | 504 => "timeout_error",
            503 => "overloaded_error",
            _ => "api_error",
        }
    }

    /// The JSON body of this error in the given API's shape.
    pub fn body(&self, api: ApiFormat) -> serde_json::Value {
        let message = self.to_string();
        match api {
            ApiFormat::OpenAi => {
                let param = match self {
                    Self::InvalidRequest { param, .. } => param.clone(),
                    _ => None,
                };
                json!({"error": {
                    "message": message,
                    "type": self.openai_type(),
                    "param": param,
                    "code": self.kind(),
                }})
            }
            ApiFormat::Anthropic => json!({
                "type": "error",
                "error": {"type": self.anthropic_type(), "message": message},
            }),
        }
    }

    /// The full HTTP answer in the given API's shape.
    pub fn to_response(&self, api: ApiFormat) -> HttpResponse {
        HttpResponse::build(self.status()).json(self.body(api))
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
