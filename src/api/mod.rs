//! The two wire APIs the gateway speaks, one file each (`openai`, `anthropic`): the request and
//! answer shapes as far as the gateway reads them, their error shapes, their usage readers; SSE
//! framing (`sse`), the usage meter that drives the readers (`usage`), and the bodies as the
//! OpenAPI document describes them (`schema`). This file holds the
//! types they share and calls none of them. Nothing in `api` knows providers, the pipeline or HTTP.

pub mod anthropic;
pub mod openai;
pub mod responses;
pub mod schema;
pub mod sse;
pub mod usage;

/// The two wire APIs: what a client speaks and what a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApiFormat {
    /// OpenAI Chat Completions (also Azure OpenAI and local servers).
    OpenAi,
    /// Anthropic Messages.
    Anthropic,
}

impl ApiFormat {
    /// The API whose error shape a caller of `path` expects: Anthropic's under `/v1/messages`,
    /// OpenAI's elsewhere (the admin and analytics endpoints answer in OpenAI's shape too).
    pub fn for_path(path: &str) -> Self {
        if path.starts_with("/v1/messages") {
            Self::Anthropic
        } else {
            Self::OpenAi
        }
    }

    /// The API's name, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::OpenAi => "OpenAI Chat Completions",
            Self::Anthropic => "Anthropic Messages",
        }
    }

    /// The endpoint a client of this API calls, for messages.
    pub fn endpoint(self) -> &'static str {
        match self {
            Self::OpenAi => "POST /v1/chat/completions",
            Self::Anthropic => "POST /v1/messages",
        }
    }
}

/// The upstream operation a proxied call maps to: one per proxied endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    ChatCompletions,
    Messages,
    CountTokens,
    /// OpenAI's `POST /v1/embeddings`: OpenAI's API only, never streamed.
    Embeddings,
    /// OpenAI's legacy `POST /v1/completions` (a `prompt`, and `suffix` for fill-in-the-middle):
    /// OpenAI's API only.
    Completions,
    /// OpenAI's `POST /v1/responses`: passed through to OpenAI and Azure OpenAI, translated
    /// (through Chat Completions) toward Anthropic and local servers (`translate::responses`).
    Responses,
}

impl Operation {
    /// The API whose shape the client expects, for answers and errors.
    pub fn api(self) -> ApiFormat {
        match self {
            Self::ChatCompletions | Self::Embeddings | Self::Completions | Self::Responses => {
                ApiFormat::OpenAi
            }
            Self::Messages | Self::CountTokens => ApiFormat::Anthropic,
        }
    }

    /// The name recorded for this kind of endpoint.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ChatCompletions => "chat_completions",
            Self::Messages => "messages",
            Self::CountTokens => "count_tokens",
            Self::Embeddings => "embeddings",
            Self::Completions => "completions",
            Self::Responses => "responses",
        }
    }

    /// The endpoint a client calls for this operation, for messages.
    pub fn endpoint(self) -> &'static str {
        match self {
            Self::ChatCompletions => "POST /v1/chat/completions",
            Self::Messages => "POST /v1/messages",
            Self::CountTokens => "POST /v1/messages/count_tokens",
            Self::Embeddings => "POST /v1/embeddings",
            Self::Completions => "POST /v1/completions",
            Self::Responses => "POST /v1/responses",
        }
    }

    /// The member of the body that holds what the call is about: `messages` for the chat
    /// APIs, `input` for embeddings and responses, `prompt` for legacy completions.
    pub fn required_member(self) -> &'static str {
        match self {
            Self::ChatCompletions | Self::Messages | Self::CountTokens => "messages",
            Self::Embeddings | Self::Responses => "input",
            Self::Completions => "prompt",
        }
    }

    /// Whether a provider of `api` has an endpoint for this operation, itself or through
    /// translation: embeddings and legacy completions exist in OpenAI's API alone.
    pub fn reaches(self, api: ApiFormat) -> bool {
        match self {
            Self::Embeddings | Self::Completions => api == ApiFormat::OpenAi,
            Self::ChatCompletions | Self::Messages | Self::CountTokens | Self::Responses => true,
        }
    }

    /// Whether the Router may choose the model (`model: "auto"`, `x-route-profile`): its
    /// candidates are chat models, so only the chat operations (the Responses API's among them).
    pub fn routable(self) -> bool {
        matches!(
            self,
            Self::ChatCompletions | Self::Messages | Self::CountTokens | Self::Responses
        )
    }

    /// The operation that serves this one on a provider of `api`: itself on its own API; the
    /// other API's chat endpoint through translation; None for count_tokens on OpenAI's API,
    /// which has no such endpoint (the gateway counts with a tokenizer instead), and for
    /// embeddings and legacy completions on Anthropic's, which has none either ([`Self::reaches`]).
    /// A provider's own view (a local server has no Responses API) is
    /// `ProviderKind::operation_for`.
    pub fn on(self, api: ApiFormat) -> Option<Self> {
        match (self, api) {
            (op, api) if op.api() == api => Some(op),
            (Self::ChatCompletions | Self::Responses, _) => Some(Self::Messages),
            (Self::Messages, _) => Some(Self::ChatCompletions),
            (Self::CountTokens | Self::Embeddings | Self::Completions, _) => None,
        }
    }

    /// Whether the answer can be a stream (count_tokens and embeddings never are).
    pub fn can_stream(self) -> bool {
        !matches!(self, Self::CountTokens | Self::Embeddings)
    }
}

/// Tokens of one call. `input` counts every prompt token, including `cached_input` (cache
/// reads) and `cache_write` (cache creation), which are priced at their own rates.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub input: u64,
    pub output: u64,
    pub cached_input: u64,
    pub cache_write: u64,
}

/// What the readers have learnt of an answer so far.
#[derive(Debug, Default)]
pub struct Reading {
    pub usage: Option<Usage>,
    /// The model that answered, as the answer names it.
    pub model: Option<String>,
    /// Characters of generated text passed to the client, for estimates.
    pub delivered_chars: u64,
    /// `(kind, message)` of an error the upstream reported in its body.
    pub error: Option<(String, String)>,
}

/// Longest upstream error message kept.
pub const MAX_ERROR_MESSAGE: usize = 500;

/// The `{type, message}` error object both APIs use (OpenAI's `error`, Anthropic's inner `error`).
#[derive(serde::Deserialize)]
pub struct ErrorObject {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

impl ErrorObject {
    /// `(kind, message)`, the message cut to [`MAX_ERROR_MESSAGE`] characters.
    pub fn into_kind_message(self, default_kind: &str) -> (String, String) {
        let message: String = self
            .message
            .unwrap_or_default()
            .chars()
            .take(MAX_ERROR_MESSAGE)
            .collect();
        (
            self.kind.unwrap_or_else(|| default_kind.to_string()),
            message,
        )
    }
}
