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

/// The context windows a local server reports beside its models, by model id: vLLM's
/// `max_model_len`, LM Studio's `max_context_length`, `context_length` (several servers), or
/// llama.cpp's `meta.n_ctx_train`. Ollama reports none.
pub fn parse_model_contexts(body: &[u8]) -> std::collections::HashMap<String, u64> {
    let value: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let Some(data) = value.get("data").and_then(|d| d.as_array()) else {
        return Default::default();
    };
    data.iter()
        .filter_map(|m| {
            let id = m.get("id")?.as_str()?;
            let window = ["max_model_len", "max_context_length", "context_length"]
                .iter()
                .find_map(|k| m.get(*k).and_then(serde_json::Value::as_u64))
                .or_else(|| m.get("meta")?.get("n_ctx_train")?.as_u64())
                .filter(|w| *w > 0)?;
            Some((id.to_string(), window))
        })
        .collect()
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

#[cfg(test)]
mod tests {
    #[test]
    fn context_windows_are_read_from_each_servers_own_field() {
        let body = br#"{"object":"list","data":[
            {"id":"meta-llama/Llama-3.1-8B-Instruct","max_model_len":16384},
            {"id":"qwen2.5-7b-instruct","max_context_length":32768},
            {"id":"gguf","meta":{"n_ctx_train":131072}},
            {"id":"llama3.1:8b"}]}"#;
        let contexts = super::parse_model_contexts(body);
        assert_eq!(
            contexts.get("meta-llama/Llama-3.1-8B-Instruct"),
            Some(&16384)
        );
        assert_eq!(contexts.get("qwen2.5-7b-instruct"), Some(&32768));
        assert_eq!(contexts.get("gguf"), Some(&131072));
        assert_eq!(contexts.get("llama3.1:8b"), None);
    }
}
