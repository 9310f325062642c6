//! Anthropic Messages on the wire: the usage readers of its answers and stream events
//! (borrowing from the bytes), and its error shape.

use std::borrow::Cow;

use serde::Deserialize;

use super::{ErrorObject, Reading, Usage};

/// The error body in Anthropic's shape: `{"type": "error", "error": {type, message}}`.
pub fn error_body(status: u16, message: &str) -> serde_json::Value {
    serde_json::json!({
        "type": "error",
        "error": {"type": error_type(status), "message": message},
    })
}

/// Anthropic's `error.type` for a status.
fn error_type(status: u16) -> &'static str {
    match status {
        400 | 405 | 409 | 415 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 | 431 => "request_too_large",
        408 | 504 => "timeout_error",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        _ => "api_error",
    }
}

/// Reads one stream event (the `data:` payload).
pub fn read_event(reading: &mut Reading, data: &[u8]) {
    let Ok(event) = serde_json::from_slice::<Event>(data) else {
        return;
    };
    match event {
        Event::MessageStart { message } => {
            reading.model = message.model.map(Cow::into_owned);
            if let Some(usage) = message.usage {
                reading.usage = Some(usage.apply_to(Usage::default()));
            }
        }
        Event::MessageDelta { usage } => {
            if let Some(usage) = usage {
                reading.usage = Some(usage.apply_to(reading.usage.unwrap_or_default()));
            }
        }
        Event::ContentBlockDelta { delta } => {
            reading.delivered_chars += delta.text_len();
        }
        Event::Error { error } => {
            reading.error = Some(error.into_kind_message("upstream_stream_error"));
        }
        Event::Other => {}
    }
}

/// Reads a whole JSON answer for its usage, model and error first; its text is measured (a
/// second pass) only when there is no usage to record.
pub fn read_body(reading: &mut Reading, body: &[u8]) {
    let Ok(answer) = serde_json::from_slice::<Answer>(body) else {
        return;
    };
    reading.model = answer.model.map(Cow::into_owned);
    reading.usage = answer.usage.map(|u| u.apply_to(Usage::default()));
    reading.error = answer.error.map(|e| e.into_kind_message("upstream_error"));
    if reading.usage.is_none() {
        reading.delivered_chars = serde_json::from_slice::<Message>(body)
            .map_or(0, |parsed| parsed.content.iter().map(Delta::text_len).sum());
    }
}

/// The first reading of a whole answer (and of `message_start`'s message): the content
/// blocks are skipped, not decoded.
#[derive(Deserialize)]
struct Answer<'a> {
    #[serde(borrow, default)]
    model: Option<Cow<'a, str>>,
    usage: Option<WireUsage>,
    error: Option<ErrorObject>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Event<'a> {
    MessageStart {
        #[serde(borrow)]
        message: Answer<'a>,
    },
    MessageDelta {
        #[serde(default)]
        usage: Option<WireUsage>,
    },
    ContentBlockDelta {
        #[serde(borrow)]
        delta: Delta<'a>,
    },
    Error {
        error: ErrorObject,
    },
    #[serde(other)]
    Other,
}

/// A whole message, read for the length of its text.
#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow, default)]
    content: Vec<Delta<'a>>,
}

/// A content block or a streamed delta: text, thinking, or tool input.
#[derive(Deserialize)]
struct Delta<'a> {
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    thinking: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    partial_json: Option<Cow<'a, str>>,
}

impl Delta<'_> {
    fn text_len(&self) -> u64 {
        [&self.text, &self.thinking, &self.partial_json]
            .iter()
            .map(|t| t.as_deref().map_or(0, str::len) as u64)
            .sum()
    }
}

/// Anthropic's usage: `input_tokens` excludes the cache tokens, which are reported apart.
#[derive(Deserialize)]
struct WireUsage {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
}

impl WireUsage {
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
