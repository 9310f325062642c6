//! OpenAI: `{endpoint}/v1/chat/completions` (and `/v1/embeddings`, `/v1/completions`) with `Authorization: Bearer`.

use awc::http::header::{HeaderName, HeaderValue};
use secrecy::SecretString;

use super::{bearer_header, join_url, InvalidCredential};
use crate::api::Operation;

/// The official base URL.
pub const DEFAULT_ENDPOINT: &str = "https://api.openai.com";

/// The URL of an operation (OpenAI-shaped servers serve chat, embeddings and legacy completions).
pub fn url(endpoint: &str, op: Operation, query: &str) -> String {
    let path = match op {
        Operation::ChatCompletions => "/v1/chat/completions",
        Operation::Messages => "/v1/messages",
        Operation::CountTokens => "/v1/messages/count_tokens",
        Operation::Embeddings => "/v1/embeddings",
        Operation::Completions => "/v1/completions",
        Operation::Responses => "/v1/responses",
    };
    join_url(endpoint, path, query)
}

/// OpenAI takes its key as a bearer token.
pub fn auth_header(key: &SecretString) -> Result<(HeaderName, HeaderValue), InvalidCredential> {
    bearer_header(key)
}

/// OpenAI streams (chat and legacy completions) report usage only when asked
/// (`stream_options.include_usage`).
pub fn asks_stream_usage(op: Operation) -> bool {
    matches!(op, Operation::ChatCompletions | Operation::Completions)
}
