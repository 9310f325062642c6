//! Reading token usage out of provider answers as they pass: JSON bodies, OpenAI and Anthropic streams.

use std::borrow::Cow;

use bytes::{Bytes, BytesMut};
use serde::Deserialize;

use super::sse::{event_data, SseSplitter};
use crate::providers::ApiFormat;

/// Largest non-streamed body kept to read its usage; the client gets every byte regardless.
const MAX_JSON_BODY: usize = 16 * 1024 * 1024;
/// Longest upstream error message kept for the ledger.
const MAX_ERROR_MESSAGE: usize = 500;

/// Tokens of one call. `input` counts every prompt token, including `cached_input` (cache
/// reads) and `cache_write` (cache creation), which are priced at their own rates.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub input: u64,
    pub output: u64,
    pub cached_input: u64,
    pub cache_write: u64,
}

/// Watches a response body and learns its usage, the model that answered, and any error.
#[derive(Debug)]
pub struct UsageMeter {
    api: ApiFormat,
    streaming: bool,
    /// Drop the usage-only chunk the gateway asked OpenAI for on the client's behalf.
    strip_usage_chunk: bool,
    sse: SseSplitter,
    json: BytesMut,
    json_overflow: bool,
    pub usage: Option<Usage>,
    pub model: Option<String>,
    /// Characters of generated text passed to the client, for estimates.
    pub delivered_chars: u64,
    /// `(kind, message)` of an error the upstream reported in its body.
    pub error: Option<(String, String)>,
}

impl UsageMeter {
    /// A meter for a response of `api`, streamed or not.
    pub fn new(api: ApiFormat, streaming: bool, strip_usage_chunk: bool) -> Self {
        Self {
            api,
            streaming,
            strip_usage_chunk,
            sse: SseSplitter::default(),
            json: BytesMut::new(),
            json_overflow: false,
            usage: None,
            model: None,
            delivered_chars: 0,
            error: None,
        }
    }

    /// Observes one chunk and returns the bytes to forward: the chunk itself, or, when the
    /// usage chunk is being removed, the complete events it finishes minus that chunk.
    pub fn on_chunk(&mut self, chunk: Bytes) -> Bytes {
        if !self.streaming {
            if self.json.len() + chunk.len() <= MAX_JSON_BODY {
                self.json.extend_from_slice(&chunk);
            } else {
                self.json_overflow = true;
            }
            return chunk;
        }
        let events = self.sse.push(&chunk);
        if !self.strip_usage_chunk {
            for event in &events {
                self.on_event(event);
            }
            return chunk;
        }
        let mut out = BytesMut::new();
        for event in events {
            if self.on_event(&event) {
                out.extend_from_slice(&event);
            }
        }
        out.freeze()
    }

    /// The end of the body: bytes still held (stripping mode), and the final reading of a JSON body.
    pub fn on_end(&mut self) -> Option<Bytes> {
        if !self.streaming {
            if !self.json_overflow {
                let body = std::mem::take(&mut self.json);
                self.read_json_body(&body);
            }
            return None;
        }
        let rest = self.sse.finish()?;
        let keep = self.on_event(&rest);
        (self.strip_usage_chunk && keep).then_some(rest)
    }

    /// Reads one event; false when it is the usage-only chunk to be removed.
    fn on_event(&mut self, event: &[u8]) -> bool {
        let Some(data) = event_data(event) else {
            return true;
        };
        match self.api {
            ApiFormat::OpenAi => self.on_openai_chunk(&data),
            ApiFormat::Anthropic => {
                self.on_anthropic_event(&data);
                true
            }
        }
    }

    fn on_openai_chunk(&mut self, data: &[u8]) -> bool {
        let Ok(chunk) = serde_json::from_slice::<OpenAiBody>(data) else {
            return true;
        };
        if let Some(model) = chunk.model {
            if self.model.is_none() {
                self.model = Some(model.into_owned());
            }
        }
        for choice in &chunk.choices {
            if let Some(delta) = &choice.delta {
                self.delivered_chars += delta.text_len();
            }
        }
        if let Some(error) = chunk.error {
            self.error = Some(error.into_kind_message("upstream_stream_error"));
        }
        if let Some(usage) = chunk.usage {
            self.usage = Some(usage.into());
            return !(self.strip_usage_chunk && chunk.choices.is_empty());
        }
        true
    }

    fn on_anthropic_event(&mut self, data: &[u8]) {
        let Ok(event) = serde_json::from_slice::<AnthropicEvent>(data) else {
            return;
        };
        match event {
            AnthropicEvent::MessageStart { message } => {
                self.model = message.model.map(Cow::into_owned);
                if let Some(usage) = message.usage {
                    self.usage = Some(usage.apply_to(Usage::default()));
                }
            }
            AnthropicEvent::MessageDelta { usage } => {
                if let Some(usage) = usage {
                    self.usage = Some(usage.apply_to(self.usage.unwrap_or_default()));
                }
            }
            AnthropicEvent::ContentBlockDelta { delta } => {
                self.delivered_chars += delta.text_len();
            }
            AnthropicEvent::Error { error } => {
                self.error = Some(error.into_kind_message("upstream_stream_error"));
            }
            AnthropicEvent::Other => {}
        }
    }

    /// A whole JSON answer is read for its usage, model and error first; its text is measured
    /// (a second pass) only when there is no usage to record, to estimate it from the text.
    fn read_json_body(&mut self, body: &[u8]) {
        match self.api {
            ApiFormat::OpenAi => {
                let Ok(answer) =
                    serde_json::from_slice::<JsonAnswer<OpenAiUsage, UpstreamError>>(body)
                else {
                    return;
                };
                self.model = answer.model.map(Cow::into_owned);
                self.usage = answer.usage.map(Usage::from);
                self.error = answer.error.map(|e| e.into_kind_message("upstream_error"));
                if self.usage.is_none() {
                    self.delivered_chars =
                        serde_json::from_slice::<OpenAiBody>(body).map_or(0, |parsed| {
                            parsed
                                .choices
                                .iter()
                                .filter_map(|c| c.message.as_ref())
                                .map(OpenAiDelta::text_len)
                                .sum()
                        });
                }
            }
            ApiFormat::Anthropic => {
                let Ok(answer) =
                    serde_json::from_slice::<JsonAnswer<AnthropicUsage, UpstreamErrorBody>>(body)
                else {
                    return;
                };
                self.model = answer.model.map(Cow::into_owned);
                self.usage = answer.usage.map(|u| u.apply_to(Usage::default()));
                self.error = answer.error.map(|e| e.into_kind_message("upstream_error"));
                if self.usage.is_none() {
                    self.delivered_chars = serde_json::from_slice::<AnthropicMessage>(body)
                        .map_or(0, |parsed| {
                            parsed.content.iter().map(AnthropicDelta::text_len).sum()
                        });
                }
            }
        }
    }
}

/// The first reading of a whole JSON answer (and Anthropic's `message_start` message):
/// everything else in it (the choices or content blocks with their text) is skipped, not decoded.
#[derive(Deserialize)]
struct JsonAnswer<'a, U, E> {
    #[serde(borrow, default)]
    model: Option<Cow<'a, str>>,
    // Missing means None (serde's rule for Option; `default` would ask U and E for Default).
    usage: Option<U>,
    error: Option<E>,
}

#[derive(Deserialize)]
struct OpenAiBody<'a> {
    #[serde(borrow, default)]
    model: Option<Cow<'a, str>>,
    #[serde(default)]
    choices: Vec<OpenAiChoice<'a>>,
    #[serde(default)]
    usage: Option<OpenAiUsage>,
    #[serde(default)]
    error: Option<UpstreamError>,
}

#[derive(Deserialize)]
struct OpenAiChoice<'a> {
    #[serde(borrow, default)]
    delta: Option<OpenAiDelta<'a>>,
    #[serde(borrow, default)]
    message: Option<OpenAiDelta<'a>>,
}

#[derive(Deserialize)]
struct OpenAiDelta<'a> {
    #[serde(borrow, default)]
    content: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    reasoning_content: Option<Cow<'a, str>>,
    #[serde(default)]
    tool_calls: Option<Vec<serde_json::Value>>,
}

impl OpenAiDelta<'_> {
    fn text_len(&self) -> u64 {
        let text = self.content.as_deref().map_or(0, str::len)
            + self.reasoning_content.as_deref().map_or(0, str::len);
        let tools: usize = self
            .tool_calls
            .iter()
            .flatten()
            .filter_map(|t| t.pointer("/function/arguments").and_then(|a| a.as_str()))
            .map(str::len)
            .sum();
        (text + tools) as u64
    }
}

#[derive(Deserialize)]
struct OpenAiUsage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
    #[serde(default)]
    prompt_tokens_details: Option<OpenAiPromptDetails>,
}

#[derive(Deserialize)]
struct OpenAiPromptDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
}

impl From<OpenAiUsage> for Usage {
    fn from(u: OpenAiUsage) -> Self {
        Self {
            input: u.prompt_tokens.unwrap_or(0),
            output: u.completion_tokens.unwrap_or(0),
            cached_input: u
                .prompt_tokens_details
                .and_then(|d| d.cached_tokens)
                .unwrap_or(0),
            cache_write: 0,
        }
    }
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum AnthropicEvent<'a> {
    MessageStart {
        #[serde(borrow)]
        message: JsonAnswer<'a, AnthropicUsage, UpstreamErrorBody>,
    },
    MessageDelta {
        #[serde(default)]
        usage: Option<AnthropicUsage>,
    },
    ContentBlockDelta {
        #[serde(borrow)]
        delta: AnthropicDelta<'a>,
    },
    Error {
        error: UpstreamErrorBody,
    },
    #[serde(other)]
    Other,
}

/// A whole Anthropic message, read for the length of its text.
#[derive(Deserialize)]
struct AnthropicMessage<'a> {
    #[serde(borrow, default)]
    content: Vec<AnthropicDelta<'a>>,
}

/// A content block or a streamed delta: text, thinking, or tool input.
#[derive(Deserialize)]
struct AnthropicDelta<'a> {
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    thinking: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    partial_json: Option<Cow<'a, str>>,
}

impl AnthropicDelta<'_> {
    fn text_len(&self) -> u64 {
        [&self.text, &self.thinking, &self.partial_json]
            .iter()
            .map(|t| t.as_deref().map_or(0, str::len) as u64)
            .sum()
    }
}

/// Anthropic's usage: `input_tokens` excludes the cache tokens, which are reported apart.
#[derive(Deserialize)]
struct AnthropicUsage {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
}

impl AnthropicUsage {
    /// Updates `usage` with the fields present (message_delta repeats only what changed).
    fn apply_to(self, mut usage: Usage) -> Usage {
        let uncached = usage
            .input
            .saturating_sub(usage.cached_input)
            .saturating_sub(usage.cache_write);
        let uncached = self.input_tokens.unwrap_or(uncached);
        if let Some(read) = self.cache_read_input_tokens {
            usage.cached_input = read;
        }
        if let Some(write) = self.cache_creation_input_tokens {
            usage.cache_write = write;
        }
        // Saturating: the numbers are the upstream's, and any u64 parses.
        usage.input = uncached
            .saturating_add(usage.cached_input)
            .saturating_add(usage.cache_write);
        if let Some(output) = self.output_tokens {
            usage.output = output;
        }
        usage
    }
}

/// OpenAI's `error` object, or Anthropic's inner `error`.
#[derive(Deserialize)]
struct UpstreamErrorBody {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

/// OpenAI sends `error` as an object; a few compatible servers send a string.
#[derive(Deserialize)]
#[serde(untagged)]
enum UpstreamError {
    Object(UpstreamErrorBody),
    Text(String),
}

impl UpstreamErrorBody {
    fn into_kind_message(self, default_kind: &str) -> (String, String) {
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

impl UpstreamError {
    fn into_kind_message(self, default_kind: &str) -> (String, String) {
        match self {
            Self::Object(body) => body.into_kind_message(default_kind),
            Self::Text(text) => (
                default_kind.to_string(),
                text.chars().take(MAX_ERROR_MESSAGE).collect(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(meter: &mut UsageMeter, parts: &[&str]) -> String {
        let mut out = String::new();
        for part in parts {
            out.push_str(
                std::str::from_utf8(&meter.on_chunk(Bytes::copy_from_slice(part.as_bytes())))
                    .unwrap_or(""),
            );
        }
        if let Some(rest) = meter.on_end() {
            out.push_str(std::str::from_utf8(&rest).unwrap_or(""));
        }
        out
    }

    #[test]
    fn openai_json_usage_with_cached_tokens() {
        let mut meter = UsageMeter::new(ApiFormat::OpenAi, false, false);
        feed(
            &mut meter,
            &[
                r#"{"model":"gpt-4o-2024-08-06","choices":[{"message":{"content":"hello"}}],"usage":{"prompt_tokens":100,"completion_tokens":7,"prompt_tokens_details":{"cached_tokens":64}}}"#,
            ],
        );
        assert_eq!(
            meter.usage,
            Some(Usage {
                input: 100,
                output: 7,
                cached_input: 64,
                cache_write: 0
            })
        );
        assert_eq!(meter.model.as_deref(), Some("gpt-4o-2024-08-06"));
        // With usage reported, the text is not measured: nothing needs an estimate.
        assert_eq!(meter.delivered_chars, 0);
    }

    #[test]
    fn json_answers_without_usage_have_their_text_measured() {
        let mut meter = UsageMeter::new(ApiFormat::OpenAi, false, false);
        feed(
            &mut meter,
            &[
                r#"{"model":"llama3","choices":[{"message":{"content":"hello","tool_calls":[{"function":{"arguments":"{\"a\":1}"}}]}},{"message":{"content":"hi"}}]}"#,
            ],
        );
        assert_eq!(meter.usage, None);
        assert_eq!(meter.model.as_deref(), Some("llama3"));
        assert_eq!(meter.delivered_chars, 5 + 7 + 2);

        let mut meter = UsageMeter::new(ApiFormat::Anthropic, false, false);
        feed(
            &mut meter,
            &[
                r#"{"model":"claude-x","content":[{"type":"text","text":"hello"},{"type":"thinking","thinking":"hmm"}]}"#,
            ],
        );
        assert_eq!(meter.usage, None);
        assert_eq!(meter.model.as_deref(), Some("claude-x"));
        assert_eq!(meter.delivered_chars, 8);

        // Usage still counts when the choices have a shape the text reading does not know.
        let mut meter = UsageMeter::new(ApiFormat::OpenAi, false, false);
        feed(
            &mut meter,
            &[r#"{"choices":{"odd":true},"usage":{"prompt_tokens":3,"completion_tokens":4}}"#],
        );
        assert_eq!(meter.usage.map(|u| (u.input, u.output)), Some((3, 4)));
    }

    #[test]
    fn the_openai_usage_chunk_is_read_and_removed_only_when_asked() {
        let stream = [
            "data: {\"model\":\"gpt-4o\",\"choices\":[{\"delta\":{\"content\":\"hi\"}}],\"usage\":null}\n\n",
            "data: {\"model\":\"gpt-4o\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":2}}\n",
            "\ndata: [DONE]\n\n",
        ];
        let mut stripping = UsageMeter::new(ApiFormat::OpenAi, true, true);
        let out = feed(&mut stripping, &stream);
        assert!(
            !out.contains("prompt_tokens") && out.contains("[DONE]") && out.contains("\"hi\""),
            "{out}"
        );
        assert_eq!(
            stripping.usage,
            Some(Usage {
                input: 9,
                output: 2,
                cached_input: 0,
                cache_write: 0
            })
        );

        let mut keeping = UsageMeter::new(ApiFormat::OpenAi, true, false);
        assert_eq!(feed(&mut keeping, &stream), stream.concat());
        assert_eq!(keeping.usage.map(|u| u.output), Some(2));
    }

    #[test]
    fn anthropic_stream_usage_counts_cache_tokens_once() {
        let mut meter = UsageMeter::new(ApiFormat::Anthropic, true, false);
        feed(&mut meter, &[
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"model\":\"claude-sonnet-4-20250514\",\"usage\":{\"input_tokens\":10,\"cache_read_input_tokens\":100,\"cache_creation_input_tokens\":20,\"output_tokens\":1}}}\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"abcd\"}}\n\n",
            "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{},\"usage\":{\"output_tokens\":42}}\n\n",
        ]);
        assert_eq!(
            meter.usage,
            Some(Usage {
                input: 130,
                output: 42,
                cached_input: 100,
                cache_write: 20
            })
        );
        assert_eq!(meter.delivered_chars, 4);
    }

    #[test]
    fn upstream_errors_are_read_from_the_body() {
        let mut meter = UsageMeter::new(ApiFormat::Anthropic, false, false);
        feed(
            &mut meter,
            &[r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#],
        );
        assert_eq!(
            meter.error,
            Some(("overloaded_error".into(), "Overloaded".into()))
        );
    }
}
