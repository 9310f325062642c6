//! OpenAI's API on the wire (chat completions, and the embeddings and legacy completions that
//! share its usage and error shapes): the usage readers of its answers and stream chunks
//! (borrowing from the bytes, decoding only the fields the ledger needs), its error shape, and
//! the `stream_options.include_usage` member that makes a stream report its usage.

use std::borrow::Cow;

use serde::Deserialize;

use super::{ErrorObject, Reading, Usage, MAX_ERROR_MESSAGE};

/// The error body in OpenAI's shape: `{"error": {message, type, param, code}}`.
pub fn error_body(
    status: u16,
    message: &str,
    code: &str,
    param: Option<&str>,
) -> serde_json::Value {
    serde_json::json!({"error": {
        "message": message,
        "type": error_type(status),
        "param": param,
        "code": code,
    }})
}

/// OpenAI's `error.type` for a status.
fn error_type(status: u16) -> &'static str {
    match status {
        400 | 404 | 405 | 408 | 409 | 413 | 415 | 431 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        _ => "api_error",
    }
}

/// The member added to a stream request so that its usage is reported in a last chunk.
pub const INCLUDE_USAGE: &[u8] = br#""stream_options":{"include_usage":true},"#;

/// `body` (a JSON object) with `stream_options.include_usage` set, every other byte kept,
/// when the body has no `stream_options` member yet; None otherwise.
pub fn with_include_usage(body: &[u8]) -> Option<Vec<u8>> {
    let open = body
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .filter(|&i| body[i] == b'{')?;
    let mut out = Vec::with_capacity(body.len() + INCLUDE_USAGE.len());
    out.extend_from_slice(&body[..=open]);
    out.extend_from_slice(INCLUDE_USAGE);
    out.extend_from_slice(&body[open + 1..]);
    Some(out)
}

/// Sets `stream_options.include_usage` in a parsed body (one that has `stream_options`).
pub fn set_include_usage(object: &mut serde_json::Map<String, serde_json::Value>) {
    let options = object
        .entry("stream_options")
        .or_insert(serde_json::Value::Null);
    if options.is_null() {
        *options = serde_json::json!({});
    }
    if let Some(options) = options.as_object_mut() {
        options.insert("include_usage".into(), serde_json::Value::Bool(true));
    }
}

/// Reads one stream chunk (the `data:` payload); false when it is the usage-only chunk and
/// `strip_usage_chunk` asks for it to be removed.
pub fn read_chunk(reading: &mut Reading, data: &[u8], strip_usage_chunk: bool) -> bool {
    let Ok(chunk) = serde_json::from_slice::<Body>(data) else {
        return true;
    };
    if let Some(model) = chunk.model {
        if reading.model.is_none() {
            reading.model = Some(model.into_owned());
        }
    }
    for choice in &chunk.choices {
        reading.delivered_chars += choice.text_len();
    }
    if let Some(error) = chunk.error {
        reading.error = Some(error.into_kind_message("upstream_stream_error"));
    }
    if let Some(usage) = chunk.usage {
        reading.usage = Some(usage.into());
        return !(strip_usage_chunk && chunk.choices.is_empty());
    }
    true
}

/// Reads a whole JSON answer for its usage, model and error first; its text is measured (a
/// second pass) only when there is no usage to record, to estimate it from the text.
pub fn read_body(reading: &mut Reading, body: &[u8]) {
    let Ok(answer) = serde_json::from_slice::<Answer>(body) else {
        return;
    };
    reading.model = answer.model.map(Cow::into_owned);
    reading.usage = answer.usage.map(Usage::from);
    reading.error = answer.error.map(|e| e.into_kind_message("upstream_error"));
    if reading.usage.is_none() {
        reading.delivered_chars = serde_json::from_slice::<Body>(body).map_or(0, |parsed| {
            parsed.choices.iter().map(Choice::text_len).sum()
        });
    }
}

/// The first reading of a whole answer: the choices with their text are skipped, not decoded.
#[derive(Deserialize)]
struct Answer<'a> {
    #[serde(borrow, default)]
    model: Option<Cow<'a, str>>,
    usage: Option<WireUsage>,
    error: Option<WireError>,
}

#[derive(Deserialize)]
struct Body<'a> {
    #[serde(borrow, default)]
    model: Option<Cow<'a, str>>,
    #[serde(default)]
    choices: Vec<Choice<'a>>,
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(default)]
    error: Option<WireError>,
}

#[derive(Deserialize)]
struct Choice<'a> {
    #[serde(borrow, default)]
    delta: Option<Delta<'a>>,
    #[serde(borrow, default)]
    message: Option<Delta<'a>>,
    /// A legacy completion's text (`POST /v1/completions`, its answer and its chunks).
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
}

impl Choice<'_> {
    /// The generated text's length: a chunk's delta, an answer's message, a completion's text.
    fn text_len(&self) -> u64 {
        let delta = self.delta.as_ref().map_or(0, Delta::text_len);
        let message = self.message.as_ref().map_or(0, Delta::text_len);
        delta + message + self.text.as_deref().map_or(0, |t| t.len() as u64)
    }
}

#[derive(Deserialize)]
struct Delta<'a> {
    #[serde(borrow, default)]
    content: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    reasoning_content: Option<Cow<'a, str>>,
    #[serde(default)]
    tool_calls: Option<Vec<serde_json::Value>>,
}

impl Delta<'_> {
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
struct WireUsage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
    #[serde(default)]
    prompt_tokens_details: Option<PromptDetails>,
}

#[derive(Deserialize)]
struct PromptDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
}

impl From<WireUsage> for Usage {
    fn from(u: WireUsage) -> Self {
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

/// OpenAI sends `error` as an object; a few compatible servers send a string.
#[derive(Deserialize)]
#[serde(untagged)]
enum WireError {
    Object(ErrorObject),
    Text(String),
}

impl WireError {
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
