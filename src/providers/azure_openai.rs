//! Azure OpenAI: `{endpoint}/openai/deployments/{deployment}/chat/completions?api-version=…` with an `api-key` header.

use awc::http::header::{HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};

use super::{join_url, secret_header, InvalidCredential, Provider};
use crate::api::Operation;

/// The URL of an operation on the provider's deployment. The configured `api-version`
/// wins over one in the client's query; the client's other parameters are kept.
pub fn url(provider: &Provider, op: Operation, query: &str) -> String {
    if op == Operation::Responses {
        // The Responses API is on Azure's v1 path, without a deployment in the path or an
        // `api-version` (the body's `model` names the deployment: [`body_model`]).
        return responses_url(provider, "", query);
    }
    let deployment = provider.deployment.as_deref().unwrap_or_default();
    let operation = match op {
        Operation::ChatCompletions => "chat/completions",
        Operation::Messages => "messages",
        Operation::CountTokens => "messages/count_tokens",
        Operation::Embeddings => "embeddings",
        Operation::Completions => "completions",
        Operation::Responses => "responses",
    };
    let path = format!("/openai/deployments/{deployment}/{operation}");
    let mut params = vec![format!(
        "api-version={}",
        provider.api_version.as_deref().unwrap_or_default()
    )];
    params.extend(
        query
            .split('&')
            .filter(|p| !p.is_empty() && !p.starts_with("api-version="))
            .map(str::to_string),
    );
    join_url(&provider.endpoint, &path, &params.join("&"))
}

/// `{endpoint}/openai/v1/responses{rest}` with the client's query, less any `api-version`.
pub fn responses_url(provider: &Provider, rest: &str, query: &str) -> String {
    let params: Vec<&str> = query
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("api-version="))
        .collect();
    join_url(
        &provider.endpoint,
        &format!("/openai/v1/responses{rest}"),
        &params.join("&"),
    )
}

/// The `model` a Responses request names on Azure: the provider's deployment, when it has one.
pub fn body_model(provider: &Provider) -> Option<&str> {
    provider.deployment.as_deref().filter(|d| !d.is_empty())
}

/// Azure takes its key in the `api-key` header.
pub fn auth_header(key: &SecretString) -> Result<(HeaderName, HeaderValue), InvalidCredential> {
    Ok((
        HeaderName::from_static("api-key"),
        secret_header(key.expose_secret().to_string())?,
    ))
}

/// Azure OpenAI streams report usage only when asked, as OpenAI's do.
pub fn asks_stream_usage(op: Operation) -> bool {
    super::openai::asks_stream_usage(op)
}
