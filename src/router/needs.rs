//! What a request needs of a model, read from the request itself: tools present → `tools`; an
//! image → `vision`; a PDF → `pdf`; a JSON schema response format → `json_schema`; thinking or
//! a reasoning effort → `reasoning`; `stream: true` → `streaming`; and its size (an estimate of
//! the prompt's tokens, plus `max_tokens`) against the context window. Both APIs' shapes.

use serde::Deserialize;
use serde_json::Value;

use crate::catalog::{Capabilities, Capability};

/// Characters per token in the estimate of a prompt's size.
const CHARS_PER_TOKEN: usize = 4;
/// Tokens counted for one image (about what a 1-megapixel image costs at the providers).
const TOKENS_PER_IMAGE: u64 = 1_600;
/// Tokens counted for one PDF document when its size is unknown.
const TOKENS_PER_DOCUMENT: u64 = 3_000;

/// What a request needs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Needs {
    pub capabilities: Capabilities,
    /// Estimated tokens of the prompt (messages, system prompt, tool definitions).
    pub prompt_tokens: u64,
    /// The output the request asks room for (`max_tokens`, `max_completion_tokens`).
    pub max_tokens: Option<u64>,
    /// A context window the caller asks for on top (`requirements.min_context`).
    pub min_context: Option<u64>,
}

/// Explicit requirements of a routing request (`POST /v1/route`'s `requirements`).
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Requirements {
    /// Capabilities every candidate must have.
    #[serde(default)]
    pub capabilities: Vec<Capability>,
    /// Prompt tokens to plan for (instead of, or above, the estimate from `messages`).
    #[serde(default)]
    pub prompt_tokens: Option<u64>,
    /// Output tokens to plan for.
    #[serde(default)]
    pub max_tokens: Option<u64>,
    /// The smallest context window acceptable.
    #[serde(default)]
    pub min_context: Option<u64>,
}

impl Needs {
    /// Reads what a chat-completions or messages body needs.
    pub fn of_body(body: &Value) -> Self {
        let mut needs = Self::default();
        let Some(object) = body.as_object() else {
            return needs;
        };
        let mut chars = 0usize;
        let mut extra_tokens = 0u64;
        if object
            .get("tools")
            .and_then(Value::as_array)
            .is_some_and(|t| !t.is_empty())
            || object
                .get("functions")
                .and_then(Value::as_array)
                .is_some_and(|f| !f.is_empty())
        {
            needs.capabilities.insert(Capability::Tools);
        }
        if object.get("parallel_tool_calls") == Some(&Value::Bool(true)) {
            needs.capabilities.insert(Capability::ParallelTools);
        }
        if object.get("stream") == Some(&Value::Bool(true)) {
            needs.capabilities.insert(Capability::Streaming);
        }
        let format = object
            .get("response_format")
            .and_then(|f| f.get("type"))
            .and_then(Value::as_str);
        if format == Some("json_schema") {
            needs.capabilities.insert(Capability::JsonSchema);
        }
        let thinking = object
            .get("thinking")
            .and_then(|t| t.get("type"))
            .and_then(Value::as_str);
        if thinking == Some("enabled")
            || object.get("reasoning_effort").is_some_and(|e| !e.is_null())
        {
            needs.capabilities.insert(Capability::Reasoning);
        }
        needs.max_tokens = ["max_tokens", "max_completion_tokens"]
            .iter()
            .find_map(|k| object.get(*k).and_then(Value::as_u64));
        for key in ["messages", "system", "tools", "functions"] {
            if let Some(value) = object.get(key) {
                walk(
                    value,
                    &mut chars,
                    &mut extra_tokens,
                    &mut needs.capabilities,
                );
            }
        }
        needs.prompt_tokens = (chars.div_ceil(CHARS_PER_TOKEN) as u64).saturating_add(extra_tokens);
        needs
    }

    /// Adds explicit requirements.
    pub fn with(mut self, requirements: &Requirements) -> Self {
        for cap in &requirements.capabilities {
            self.capabilities.insert(*cap);
        }
        if let Some(tokens) = requirements.prompt_tokens {
            self.prompt_tokens = self.prompt_tokens.max(tokens);
        }
        if requirements.max_tokens.is_some() {
            self.max_tokens = requirements.max_tokens;
        }
        self.min_context = requirements.min_context;
        self
    }

    /// The tokens the request needs the window to hold: the prompt and the output asked for.
    pub fn window(&self) -> u64 {
        self.prompt_tokens
            .saturating_add(self.max_tokens.unwrap_or(0))
    }
}

/// Counts the text and marks the media of a part of a request.
fn walk(value: &Value, chars: &mut usize, extra: &mut u64, caps: &mut Capabilities) {
    match value {
        Value::String(text) => *chars += text.len(),
        Value::Array(items) => {
            for item in items {
                walk(item, chars, extra, caps);
            }
        }
        Value::Object(object) => {
            match object.get("type").and_then(Value::as_str) {
                // OpenAI's image part, Anthropic's image block, the Responses API's input image.
                Some("image_url" | "image" | "input_image") => {
                    caps.insert(Capability::Vision);
                    *extra += TOKENS_PER_IMAGE;
                    return;
                }
                // Anthropic's document block, OpenAI's file part.
                Some("document" | "file" | "input_file") => {
                    caps.insert(Capability::Pdf);
                    *extra += TOKENS_PER_DOCUMENT;
                    return;
                }
                _ => {}
            }
            for (key, item) in object {
                // Keys and ids are not prompt text worth counting; the signature of a
                // thinking block is opaque.
                if !matches!(
                    key.as_str(),
                    "type" | "id" | "tool_use_id" | "signature" | "role"
                ) {
                    walk(item, chars, extra, caps);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tools_images_schemas_and_size_are_read_from_either_api() {
        let openai = json!({
            "model": "auto",
            "messages": [{"role": "user", "content": [
                {"type": "text", "text": "x".repeat(400)},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
            ]}],
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "s", "schema": {}}},
            "max_tokens": 50,
        });
        let needs = Needs::of_body(&openai);
        for cap in [
            Capability::Tools,
            Capability::Vision,
            Capability::JsonSchema,
        ] {
            assert!(needs.capabilities.contains(cap), "{cap:?}");
        }
        assert!(!needs.capabilities.contains(Capability::Streaming));
        assert!(needs.prompt_tokens >= 100 + TOKENS_PER_IMAGE);
        assert_eq!(needs.max_tokens, Some(50));
        let anthropic = json!({
            "model": "auto", "max_tokens": 10, "stream": true,
            "system": [{"type": "text", "text": "be brief"}],
            "thinking": {"type": "enabled", "budget_tokens": 1024},
            "messages": [{"role": "user", "content": [
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "A".repeat(100_000)}},
                {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "AAAA"}}
            ]}]
        });
        let needs = Needs::of_body(&anthropic);
        for cap in [
            Capability::Vision,
            Capability::Pdf,
            Capability::Reasoning,
            Capability::Streaming,
        ] {
            assert!(needs.capabilities.contains(cap), "{cap:?}");
        }
        // The image's base64 is not counted as text.
        assert!(needs.prompt_tokens < 10_000, "{}", needs.prompt_tokens);
    }
}
