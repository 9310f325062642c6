//! Local OpenAI-compatible servers (Ollama, vLLM, LM Studio, llama.cpp): same paths as OpenAI, models discovered.

use super::join_url;
use crate::api::Operation;

/// The URL of an operation; local servers expose the OpenAI paths.
pub fn url(endpoint: &str, op: Operation, query: &str) -> String {
    super::openai::url(endpoint, op, query)
}

/// Where a local server lists the models it serves.
pub fn models_url(endpoint: &str) -> String {
    join_url(endpoint, "/v1/models", "")
}

/// Reads the model ids out of an OpenAI-shaped `GET /v1/models` answer.
pub fn parse_models(body: &[u8]) -> Option<Vec<String>> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let data = value.get("data")?.as_array()?;
    Some(
        data.iter()
            .filter_map(|m| m.get("id").and_then(|id| id.as_str()).map(str::to_string))
            .collect(),
    )
}

/// Local servers are not asked for stream usage: not every one accepts `stream_options`,
/// and those that report usage do so unasked.
pub fn asks_stream_usage(_: Operation) -> bool {
    false
}

/// A local server serves the models it reported.
pub fn serves(model: &str, discovered: Option<&[String]>) -> bool {
    discovered.is_some_and(|models| models.iter().any(|m| m == model))
}
