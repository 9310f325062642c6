//! The proxied bodies as the OpenAPI document describes them: the Chat Completions, Messages,
//! count_tokens, embeddings and legacy completions requests and their answers. Documentation only: the gateway reads `model`,
//! `messages`, `stream` and `stream_options` (`inbound::parse`) and forwards the rest as sent,
//! so the provider validates every other field; members not listed here pass through too.

use serde_json::Value;
use utoipa::ToSchema;

/// An OpenAI Chat Completions request (`POST /v1/chat/completions`).
#[derive(ToSchema)]
#[schema(example = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "Hello"}]}))]
pub struct ChatCompletionRequest {
    /// A model id; `provider_id/model` pins a provider; `auto` lets the router choose (under
    /// `[routing] default_profile`, or the `x-route-profile` header's profile).
    #[schema(min_length = 1, example = "gpt-4o")]
    pub model: String,
    /// The conversation so far.
    pub messages: Vec<ChatMessage>,
    /// Answer as server-sent events (`text/event-stream`), passed through chunk by chunk.
    pub stream: Option<bool>,
    pub stream_options: Option<StreamOptions>,
    /// Output tokens at most (older name of `max_completion_tokens`).
    #[schema(minimum = 1)]
    pub max_tokens: Option<u32>,
    /// Output tokens at most, reasoning included.
    #[schema(minimum = 1)]
    pub max_completion_tokens: Option<u32>,
    #[schema(minimum = 0, maximum = 2)]
    pub temperature: Option<f64>,
    #[schema(minimum = 0, maximum = 1)]
    pub top_p: Option<f64>,
    /// Choices to generate (an Anthropic model takes only 1).
    #[schema(minimum = 1)]
    pub n: Option<u32>,
    /// Up to 4 sequences where the answer stops: a string or an array of strings.
    pub stop: Option<Value>,
    #[schema(minimum = -2, maximum = 2)]
    pub presence_penalty: Option<f64>,
    #[schema(minimum = -2, maximum = 2)]
    pub frequency_penalty: Option<f64>,
    pub seed: Option<i64>,
    /// Functions the model may call.
    pub tools: Option<Vec<ChatTool>>,
    /// `none`, `auto`, `required`, or `{"type": "function", "function": {"name": …}}`.
    pub tool_choice: Option<Value>,
    pub parallel_tool_calls: Option<bool>,
    /// `{"type": "text"}`, `{"type": "json_object"}` or `{"type": "json_schema", "json_schema": {…}}`.
    #[schema(value_type = Option<Object>)]
    pub response_format: Option<Value>,
    /// `low`, `medium` or `high`, for reasoning models.
    pub reasoning_effort: Option<String>,
    pub logprobs: Option<bool>,
    #[schema(minimum = 0, maximum = 20)]
    pub top_logprobs: Option<u32>,
    /// The end user, for the provider's abuse monitoring.
    pub user: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
}

/// One message of a Chat Completions conversation.
#[derive(ToSchema)]
pub struct ChatMessage {
    pub role: ChatRole,
    /// Text, or an array of content parts (`{"type": "text", "text": …}`,
    /// `{"type": "image_url", "image_url": {"url": …}}`); null for an assistant's tool calls.
    pub content: Option<Value>,
    pub name: Option<String>,
    /// An assistant's calls: `{"id", "type": "function", "function": {"name", "arguments"}}`.
    #[schema(value_type = Option<Vec<Object>>)]
    pub tool_calls: Option<Vec<Value>>,
    /// For `role: tool`: the call this answers.
    pub tool_call_id: Option<String>,
}

/// Who speaks a Chat Completions message.
#[derive(serde::Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChatRole {
    System,
    Developer,
    User,
    Assistant,
    /// A tool's result, answering `tool_call_id`.
    Tool,
}

/// `stream_options` of a streamed Chat Completions request.
#[derive(ToSchema)]
pub struct StreamOptions {
    /// A last chunk with the usage. The gateway asks for it where the provider type needs it
    /// (to meter the call) and keeps that chunk from a client that did not ask.
    pub include_usage: Option<bool>,
}

/// A function a Chat Completions model may call.
#[derive(ToSchema)]
pub struct ChatTool {
    /// `function`.
    #[schema(example = "function")]
    pub r#type: String,
    /// `{"name", "description", "parameters": <JSON Schema>, "strict"}`.
    #[schema(value_type = Object)]
    pub function: Value,
}

/// A Chat Completions answer (`stream` false), as the provider sent it or translated from
/// an Anthropic model's answer.
#[derive(ToSchema)]
pub struct ChatCompletion {
    pub id: Option<String>,
    /// `chat.completion`.
    pub object: Option<String>,
    /// Unix seconds.
    pub created: Option<i64>,
    pub model: Option<String>,
    /// `{"index", "message": {"role", "content", "tool_calls"}, "finish_reason"}` per choice.
    #[schema(value_type = Vec<Object>)]
    pub choices: Vec<Value>,
    /// `{"prompt_tokens", "completion_tokens", "total_tokens", …}`.
    #[schema(value_type = Option<Object>)]
    pub usage: Option<Value>,
}

/// One server-sent event of a streamed answer (`text/event-stream`), passed through as the
/// provider sent it (or translated, event by event).
#[derive(ToSchema)]
pub struct ServerSentEvent {
    /// Anthropic's event name (`message_start`, `content_block_delta`, `message_stop`, …);
    /// absent in OpenAI's stream.
    pub event: Option<String>,
    /// The event's JSON: a `chat.completion.chunk` (OpenAI; the last `data` is `[DONE]`), or
    /// the event's object (Anthropic).
    pub data: String,
    pub id: Option<String>,
    pub retry: Option<u64>,
}

/// An Anthropic Messages request (`POST /v1/messages`).
#[derive(ToSchema)]
#[schema(example = json!({"model": "claude-sonnet-4-20250514", "max_tokens": 256, "messages": [{"role": "user", "content": "Hello"}]}))]
pub struct MessagesRequest {
    /// A model id; `provider_id/model` pins a provider; `auto` lets the router choose (under
    /// `[routing] default_profile`, or the `x-route-profile` header's profile).
    #[schema(min_length = 1, example = "claude-sonnet-4-20250514")]
    pub model: String,
    /// The conversation so far.
    pub messages: Vec<AnthropicMessage>,
    /// Output tokens at most (Anthropic requires it).
    #[schema(minimum = 1)]
    pub max_tokens: Option<u32>,
    /// Text, or an array of text blocks.
    pub system: Option<Value>,
    /// Answer as server-sent events (`text/event-stream`), passed through event by event.
    pub stream: Option<bool>,
    #[schema(minimum = 0, maximum = 1)]
    pub temperature: Option<f64>,
    #[schema(minimum = 0, maximum = 1)]
    pub top_p: Option<f64>,
    /// Removed toward an OpenAI-API model (named in `x-gateway-translation-removed`).
    #[schema(minimum = 0)]
    pub top_k: Option<u32>,
    pub stop_sequences: Option<Vec<String>>,
    /// Tools the model may use: `{"name", "description", "input_schema"}`.
    #[schema(value_type = Option<Vec<Object>>)]
    pub tools: Option<Vec<Value>>,
    /// `{"type": "auto" | "any" | "tool" | "none", …}`.
    #[schema(value_type = Option<Object>)]
    pub tool_choice: Option<Value>,
    /// `{"type": "enabled", "budget_tokens": N}` for extended thinking.
    #[schema(value_type = Option<Object>)]
    pub thinking: Option<Value>,
    /// `{"user_id": …}`.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
}

/// One message of a Messages conversation.
#[derive(ToSchema)]
pub struct AnthropicMessage {
    pub role: AnthropicRole,
    /// Text, or an array of content blocks (`text`, `image`, `tool_use`, `tool_result`, …).
    pub content: Value,
}

/// Who speaks a Messages message (the system prompt is `system`, apart).
#[derive(serde::Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AnthropicRole {
    User,
    Assistant,
}

/// A Messages answer (`stream` false), as the provider sent it or translated from an
/// OpenAI-API model's answer.
#[derive(ToSchema)]
pub struct Message {
    pub id: Option<String>,
    /// `message`.
    pub r#type: Option<String>,
    /// `assistant`.
    pub role: Option<String>,
    /// Content blocks: `{"type": "text", "text"}`, `{"type": "tool_use", …}`, `{"type": "thinking", …}`.
    #[schema(value_type = Vec<Object>)]
    pub content: Vec<Value>,
    pub model: Option<String>,
    pub stop_reason: Option<String>,
    /// `{"input_tokens", "output_tokens", "cache_read_input_tokens", …}`.
    #[schema(value_type = Option<Object>)]
    pub usage: Option<Value>,
}

/// An Anthropic token-counting request (`POST /v1/messages/count_tokens`).
#[derive(ToSchema)]
#[schema(example = json!({"model": "claude-sonnet-4-20250514", "messages": [{"role": "user", "content": "Hello"}]}))]
pub struct CountTokensRequest {
    /// A model id, or `provider_id/model` to pin a provider.
    #[schema(min_length = 1, example = "claude-sonnet-4-20250514")]
    pub model: String,
    pub messages: Vec<AnthropicMessage>,
    /// Text, or an array of text blocks.
    pub system: Option<Value>,
    #[schema(value_type = Option<Vec<Object>>)]
    pub tools: Option<Vec<Value>>,
    #[schema(value_type = Option<Object>)]
    pub thinking: Option<Value>,
}

/// The answer of `POST /v1/messages/count_tokens`.
#[derive(ToSchema)]
pub struct TokenCount {
    pub input_tokens: u64,
    /// True when the gateway counted (a model of OpenAI's API, which has no such endpoint).
    pub estimate: Option<bool>,
    /// The tokenizer of an estimate (`o200k_base`).
    pub tokenizer: Option<String>,
}

/// An OpenAI embeddings request (`POST /v1/embeddings`).
#[derive(ToSchema)]
#[schema(example = json!({"model": "text-embedding-3-small", "input": "The quick brown fox"}))]
pub struct EmbeddingsRequest {
    /// A model id, or `provider_id/model` to pin a provider (`auto` is refused: name the model).
    #[schema(min_length = 1, example = "text-embedding-3-small")]
    pub model: String,
    /// A string, an array of strings, an array of token ids, or an array of token-id arrays.
    pub input: EmbeddingInput,
    /// `float` (the default) or `base64`; a base64 answer is passed through as sent.
    pub encoding_format: Option<EncodingFormat>,
    /// The vectors' length, for the models that can shorten them (text-embedding-3-*).
    #[schema(minimum = 1)]
    pub dimensions: Option<u32>,
    /// The end user, for the provider's abuse monitoring.
    pub user: Option<String>,
}

/// What an embeddings request embeds, or a legacy completion's prompt.
#[derive(serde::Serialize, ToSchema)]
#[serde(untagged)]
pub enum EmbeddingInput {
    Text(String),
    Texts(Vec<String>),
    Tokens(Vec<u32>),
    TokenArrays(Vec<Vec<u32>>),
}

/// How an embeddings answer encodes its vectors.
#[derive(serde::Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum EncodingFormat {
    Float,
    Base64,
}

/// An embeddings answer, as the provider sent it.
#[derive(ToSchema)]
pub struct EmbeddingList {
    /// `list`.
    pub object: Option<String>,
    /// `{"object": "embedding", "index", "embedding"}` per input: an array of floats, or a
    /// base64 string of little-endian float32s.
    #[schema(value_type = Vec<Object>)]
    pub data: Vec<Value>,
    pub model: Option<String>,
    /// `{"prompt_tokens", "total_tokens"}`.
    #[schema(value_type = Option<Object>)]
    pub usage: Option<Value>,
}

/// A legacy OpenAI completions request (`POST /v1/completions`).
#[derive(ToSchema)]
#[schema(example = json!({"model": "gpt-3.5-turbo-instruct", "prompt": "def add(a, b):", "suffix": "\n\nprint(add(1, 2))", "max_tokens": 32}))]
pub struct CompletionRequest {
    /// A model id, or `provider_id/model` to pin a provider (`auto` is refused: name the model).
    #[schema(min_length = 1, example = "gpt-3.5-turbo-instruct")]
    pub model: String,
    /// A string, an array of strings, an array of token ids, or an array of token-id arrays.
    pub prompt: EmbeddingInput,
    /// The text after the insertion point (fill-in-the-middle).
    pub suffix: Option<String>,
    /// Answer as server-sent events (`text/event-stream`), passed through chunk by chunk.
    pub stream: Option<bool>,
    pub stream_options: Option<StreamOptions>,
    #[schema(minimum = 1)]
    pub max_tokens: Option<u32>,
    #[schema(minimum = 0, maximum = 2)]
    pub temperature: Option<f64>,
    #[schema(minimum = 0, maximum = 1)]
    pub top_p: Option<f64>,
    #[schema(minimum = 1)]
    pub n: Option<u32>,
    /// Up to 4 sequences where the answer stops: a string or an array of strings.
    pub stop: Option<Value>,
    pub echo: Option<bool>,
    pub seed: Option<i64>,
    pub user: Option<String>,
}

/// A legacy completions answer (`stream` false), as the provider sent it.
#[derive(ToSchema)]
pub struct TextCompletion {
    pub id: Option<String>,
    /// `text_completion`.
    pub object: Option<String>,
    /// Unix seconds.
    pub created: Option<i64>,
    pub model: Option<String>,
    /// `{"index", "text", "finish_reason", "logprobs"}` per choice.
    #[schema(value_type = Vec<Object>)]
    pub choices: Vec<Value>,
    /// `{"prompt_tokens", "completion_tokens", "total_tokens"}`.
    #[schema(value_type = Option<Object>)]
    pub usage: Option<Value>,
}

/// An OpenAI Responses API request (`POST /v1/responses`).
#[derive(ToSchema)]
#[schema(example = json!({"model": "gpt-4o", "instructions": "Be brief.", "input": "What is the capital of France?"}))]
pub struct ResponsesRequest {
    /// A model id, `provider_id/model` to pin a provider, or `auto` for the Router.
    #[schema(min_length = 1, example = "gpt-4o")]
    pub model: String,
    /// A string (one user message), or an array of items: messages (`{role, content}` with
    /// `input_text`, `input_image`, `input_file` parts), `function_call` and
    /// `function_call_output` items.
    #[schema(value_type = Object)]
    pub input: Value,
    /// The system prompt.
    pub instructions: Option<String>,
    /// Function tools (`{type: "function", name, description, parameters, strict}`); OpenAI's
    /// hosted tools pass through to OpenAI and Azure only.
    #[schema(value_type = Option<Vec<Object>>)]
    pub tools: Option<Vec<Value>>,
    /// `auto`, `none`, `required` or `{type: "function", name}`.
    #[schema(value_type = Option<Object>)]
    pub tool_choice: Option<Value>,
    pub parallel_tool_calls: Option<bool>,
    #[schema(minimum = 1)]
    pub max_output_tokens: Option<u32>,
    #[schema(minimum = 0, maximum = 2)]
    pub temperature: Option<f64>,
    #[schema(minimum = 0, maximum = 1)]
    pub top_p: Option<f64>,
    /// `{format: {type: "text" | "json_object" | "json_schema", …}}`.
    #[schema(value_type = Option<Object>)]
    pub text: Option<Value>,
    /// `{effort: "low" | "medium" | "high"}`.
    #[schema(value_type = Option<Object>)]
    pub reasoning: Option<Value>,
    /// Answer as the Responses API's typed server-sent events (`response.created`, …,
    /// `response.completed`).
    pub stream: Option<bool>,
    /// Whether OpenAI keeps the response (its default: true); the gateway's translations
    /// store nothing.
    pub store: Option<bool>,
    /// A response OpenAI stored, to continue from (OpenAI and Azure only).
    pub previous_response_id: Option<String>,
    pub user: Option<String>,
}

/// A response object (`object: "response"`), as the provider sent it or as the gateway
/// translated it.
#[derive(ToSchema)]
pub struct ResponseObject {
    /// `resp_…`.
    pub id: String,
    /// `response`.
    pub object: String,
    /// Unix seconds.
    pub created_at: i64,
    /// `completed`, `incomplete`, `failed`, `in_progress`.
    pub status: String,
    pub model: String,
    /// Items: `message` (with `output_text` parts), `function_call`, `reasoning`, ….
    #[schema(value_type = Vec<Object>)]
    pub output: Vec<Value>,
    /// `{input_tokens, input_tokens_details: {cached_tokens}, output_tokens, total_tokens}`.
    #[schema(value_type = Option<Object>)]
    pub usage: Option<Value>,
}
