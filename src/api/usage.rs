//! The usage meter: watches an answer on its way to the client (a JSON body, or an OpenAI or
//! Anthropic stream) and learns its usage, the model that answered and any error, through the
//! readers of `api::openai` and `api::anthropic`; it can also remove the usage-only chunk the
//! gateway asked for on the client's behalf.

use bytes::{Bytes, BytesMut};

use super::sse::{event_data, SseSplitter};
use super::{anthropic, openai, responses, ApiFormat, Operation, Reading};

/// Largest non-streamed body kept to read its usage; the client gets every byte regardless.
const MAX_JSON_BODY: usize = 16 * 1024 * 1024;

/// Watches a response body; what it learnt is its [`Reading`] (`meter.usage`, `meter.model`, …).
#[derive(Debug)]
pub struct UsageMeter {
    wire: Wire,
    streaming: bool,
    /// Drop the usage-only chunk the gateway asked OpenAI for on the client's behalf.
    strip_usage_chunk: bool,
    sse: SseSplitter,
    json: BytesMut,
    json_overflow: bool,
    reading: Reading,
}

impl std::ops::Deref for UsageMeter {
    type Target = Reading;

    fn deref(&self) -> &Reading {
        &self.reading
    }
}

/// Which readers an answer needs: its API's, or for OpenAI's Responses API its own.
#[derive(Debug, Clone, Copy)]
enum Wire {
    OpenAi,
    Anthropic,
    Responses,
}

impl UsageMeter {
    /// A meter for a response of `api`, streamed or not.
    pub fn new(api: ApiFormat, streaming: bool, strip_usage_chunk: bool) -> Self {
        let wire = match api {
            ApiFormat::OpenAi => Wire::OpenAi,
            ApiFormat::Anthropic => Wire::Anthropic,
        };
        Self::of(wire, streaming, strip_usage_chunk)
    }

    /// A meter for the answer of `op` as sent upstream (its API's readers, or the Responses
    /// API's for `Operation::Responses`).
    pub fn for_operation(op: Operation, streaming: bool, strip_usage_chunk: bool) -> Self {
        match op {
            Operation::Responses => Self::of(Wire::Responses, streaming, strip_usage_chunk),
            op => Self::new(op.api(), streaming, strip_usage_chunk),
        }
    }

    fn of(wire: Wire, streaming: bool, strip_usage_chunk: bool) -> Self {
        Self {
            wire,
            streaming,
            strip_usage_chunk,
            sse: SseSplitter::default(),
            json: BytesMut::new(),
            json_overflow: false,
            reading: Reading::default(),
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
                match self.wire {
                    Wire::OpenAi => openai::read_body(&mut self.reading, &body),
                    Wire::Anthropic => anthropic::read_body(&mut self.reading, &body),
                    Wire::Responses => responses::read_body(&mut self.reading, &body),
                }
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
        match self.wire {
            Wire::OpenAi => openai::read_chunk(&mut self.reading, &data, self.strip_usage_chunk),
            Wire::Anthropic => {
                anthropic::read_event(&mut self.reading, &data);
                true
            }
            Wire::Responses => {
                responses::read_event(&mut self.reading, &data);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Usage;

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
