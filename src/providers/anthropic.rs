//! Anthropic: `{endpoint}/v1/messages` with `x-api-key` and `anthropic-version`.

use awc::http::header::{HeaderMap, HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};

use super::{bearer_header, join_url, secret_header, InvalidCredential};
use crate::api::Operation;

/// The official base URL.
pub const DEFAULT_ENDPOINT: &str = "https://api.anthropic.com";

/// The `anthropic-version` sent when the client sends none.
pub const DEFAULT_VERSION: &str = "2023-06-01";

/// The URL of an operation.
pub fn url(endpoint: &str, op: Operation, query: &str) -> String {
    let path = match op {
        Operation::Messages => "/v1/messages",
        Operation::CountTokens => "/v1/messages/count_tokens",
        Operation::ChatCompletions => "/v1/chat/completions",
        // Anthropic has neither; the plan never sends them here (`Operation::reaches`).
        Operation::Embeddings => "/v1/embeddings",
        Operation::Completions => "/v1/completions",
        Operation::Responses => "/v1/responses",
    };
    join_url(endpoint, path, query)
}

/// Anthropic takes API keys in `x-api-key`; a client that brought its own OAuth token as
/// `Authorization: Bearer` (Claude Code with a subscription) keeps that form.
pub fn auth_header(
    key: &SecretString,
    client_bearer: bool,
) -> Result<(HeaderName, HeaderValue), InvalidCredential> {
    if client_bearer {
        return bearer_header(key);
    }
    Ok((
        HeaderName::from_static("x-api-key"),
        secret_header(key.expose_secret().to_string())?,
    ))
}

/// `anthropic-version` when the client sent none (Anthropic refuses requests without it).
pub fn version_header(client: &HeaderMap) -> Option<(HeaderName, HeaderValue)> {
    (!client.contains_key("anthropic-version")).then(|| {
        (
            HeaderName::from_static("anthropic-version"),
            HeaderValue::from_static(DEFAULT_VERSION),
        )
    })
}
