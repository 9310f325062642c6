//! Translation between OpenAI Chat Completions and Anthropic Messages: requests, JSON answers,
//! SSE streams (event by event) and error bodies.
//!
//! `request` reads a client's body and builds the upstream's, returning a [`Translation`] that
//! knows how to bring the upstream's answer, stream or error back into the client's shape.
//! Each direction lives in its own file: `openai_client` (an OpenAI client before an Anthropic
//! upstream) and `anthropic_client` (an Anthropic client before an OpenAI upstream).
//!
//! Streams: an upstream event whose `data:` is not JSON of the expected shape becomes a
//! client-shaped error event (`data: {"error":…}` for OpenAI clients, `event: error` for
//! Anthropic clients); events of types this module does not know are skipped.

mod anthropic_client;
mod names;
mod openai_client;
mod responses;

use std::borrow::Cow;

use bytes::BytesMut;

use crate::api::sse::{event_data, SseSplitter};
use crate::api::ApiFormat;

pub use names::short_tool_name;

/// What the chosen upstream model is and takes: the facts a translation depends on.
pub struct Target<'a> {
    /// The model id to put in the upstream body.
    pub model: &'a str,
    /// The card's max output tokens: the default `max_tokens` toward Anthropic (which requires
    /// it), and the cap of what a client asks.
    pub max_output_tokens: u64,
    /// The target model takes PDF documents.
    pub pdf: bool,
    /// The target model takes images.
    pub vision: bool,
    /// The target model reasons (takes `reasoning_effort` / `thinking`).
    pub reasoning: bool,
    /// True: an OpenAI-compatible local server (sent `max_tokens`); false: OpenAI/Azure (sent
    /// `max_completion_tokens`).
    pub local: bool,
}

/// A request that cannot be translated: the pipeline answers 400 naming `param`.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    /// The field at fault, e.g. `messages[2].content[1]`.
    pub param: String,
    /// Why, for the client.
    pub message: String,
}

impl Refusal {
    fn new(param: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            param: param.into(),
            message: message.into(),
        }
    }
}

/// What a request's translation decided, kept to bring the answer back.
#[derive(Debug, Clone)]
pub struct Translation {
    /// What the client speaks.
    pub client: ApiFormat,
    /// What the upstream speaks.
    pub upstream: ApiFormat,
    /// The client asked for a stream.
    pub stream: bool,
    /// An OpenAI client asked `stream_options.include_usage`.
    pub client_include_usage: bool,
    /// What could not be honoured and was removed, e.g. "cache_control", "top_k" (no
    /// duplicates).
    pub removed: Vec<String>,
    /// Tool names shortened for OpenAI: (sent name, client's name).
    tool_names: Vec<(String, String)>,
    /// `response_format: json_schema` was sent to Anthropic as the forced tool
    /// [`openai_client::JSON_TOOL`]: its input is the answer's content.
    json_tool: bool,
    /// The client speaks OpenAI's Responses API: its request was made a Chat Completions
    /// request (then, toward Anthropic, translated on as an OpenAI client's), and the answer
    /// comes back the same way (`responses`).
    responses: Option<Box<responses::Session>>,
}

impl Translation {
    fn new(client: ApiFormat, upstream: ApiFormat) -> Self {
        Self {
            client,
            upstream,
            stream: false,
            client_include_usage: false,
            removed: Vec::new(),
            tool_names: Vec::new(),
            json_tool: false,
            responses: None,
        }
    }

    /// Whether the client speaks OpenAI's Responses API.
    pub fn is_responses(&self) -> bool {
        self.responses.is_some()
    }

    /// Notes something removed, once.
    fn remove(&mut self, what: &str) {
        if !self.removed.iter().any(|r| r == what) {
            self.removed.push(what.to_owned());
        }
    }

    /// The client's name of a tool the upstream knows as `sent`.
    fn original_name<'a>(&'a self, sent: &'a str) -> &'a str {
        names::original(&self.tool_names, sent)
    }

    /// A 2xx JSON answer of the upstream in the client's shape; Err says why it is unreadable.
    pub fn answer(&self, body: &[u8]) -> Result<Vec<u8>, String> {
        if let Some(session) = &self.responses {
            // The chat answer first: the upstream's own, or Anthropic's translated.
            let chat = match self.upstream {
                ApiFormat::OpenAi => Cow::Borrowed(body),
                ApiFormat::Anthropic => Cow::Owned(openai_client::answer(self, body)?),
            };
            return responses::answer(session, &chat);
        }
        match self.client {
            ApiFormat::OpenAi => openai_client::answer(self, body),
            ApiFormat::Anthropic => anthropic_client::answer(self, body),
        }
    }

    /// An upstream error body (any shape, maybe not JSON) in the client's error shape: the
    /// upstream's message kept, the type chosen from the status.
    pub fn error(&self, status: u16, body: &[u8]) -> Vec<u8> {
        let (message, kind) = error_message(status, body);
        let value = match self.client {
            ApiFormat::OpenAi => crate::api::openai::error_body(
                status,
                &message,
                kind.as_deref().unwrap_or("upstream_error"),
                None,
            ),
            ApiFormat::Anthropic => crate::api::anthropic::error_body(status, &message),
        };
        serde_json::to_vec(&value).unwrap_or_default()
    }

    /// A translator for the upstream's stream.
    pub fn stream(&self) -> StreamTranslator {
        let inner = match (&self.responses, self.client) {
            (Some(session), _) => Inner::Responses {
                chat: (self.upstream == ApiFormat::Anthropic)
                    .then(|| Box::new(openai_client::Stream::new(self))),
                responses: Box::new(responses::Stream::new((**session).clone())),
            },
            (None, ApiFormat::OpenAi) => Inner::OpenAi(openai_client::Stream::new(self)),
            (None, ApiFormat::Anthropic) => Inner::Anthropic(anthropic_client::Stream::new(self)),
        };
        StreamTranslator {
            splitter: SseSplitter::default(),
            inner,
        }
    }
}

/// Translates a client's request body for the upstream `target`.
pub fn request(
    client: ApiFormat,
    body: &[u8],
    target: &Target,
) -> Result<(Vec<u8>, Translation), Refusal> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| Refusal::new("body", format!("the body is not JSON: {e}")))?;
    let serde_json::Value::Object(object) = value else {
        return Err(Refusal::new("body", "the body is not a JSON object"));
    };
    let (out, translation) = match client {
        ApiFormat::OpenAi => openai_client::request(object, target)?,
        ApiFormat::Anthropic => anthropic_client::request(object, target)?,
    };
    let bytes = serde_json::to_vec(&out)
        .map_err(|e| Refusal::new("body", format!("failed to write the body: {e}")))?;
    Ok((bytes, translation))
}

/// Translates a Responses API body for `target`, whose provider speaks `upstream`: a Chat
/// Completions body for an OpenAI-API server, an Anthropic Messages body for Anthropic.
pub fn request_responses(
    body: &[u8],
    target: &Target,
    upstream: ApiFormat,
) -> Result<(Vec<u8>, Translation), Refusal> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| Refusal::new("body", format!("the body is not JSON: {e}")))?;
    let serde_json::Value::Object(object) = value else {
        return Err(Refusal::new("body", "the body is not a JSON object"));
    };
    let (mut chat, session) = responses::to_chat(&object)?;
    let (out, mut translation) = match upstream {
        ApiFormat::OpenAi => {
            chat.insert("model".into(), serde_json::Value::from(target.model));
            let mut translation = Translation::new(ApiFormat::OpenAi, ApiFormat::OpenAi);
            translation.stream = chat.contains_key("stream");
            translation.client_include_usage = translation.stream;
            (serde_json::Value::Object(chat), translation)
        }
        ApiFormat::Anthropic => openai_client::request(chat, target)?,
    };
    for removed in &session.removed {
        translation.remove(removed);
    }
    translation.responses = Some(Box::new(session));
    let bytes = serde_json::to_vec(&out)
        .map_err(|e| Refusal::new("body", format!("failed to write the body: {e}")))?;
    Ok((bytes, translation))
}

/// Turns an upstream's SSE stream into the client's, one complete event at a time.
pub struct StreamTranslator {
    splitter: SseSplitter,
    inner: Inner,
}

/// The client's API the upstream's stream is translated to.
enum Inner {
    OpenAi(openai_client::Stream),
    Anthropic(anthropic_client::Stream),
    /// To the Responses API, from chat chunks: the upstream's own, or (`chat`) Anthropic's
    /// events made chat chunks first.
    Responses {
        chat: Option<Box<openai_client::Stream>>,
        responses: Box<responses::Stream>,
    },
}

impl StreamTranslator {
    /// Raw upstream bytes (any chunking): the client events that the upstream events they
    /// complete make, appended to `out`.
    pub fn push(&mut self, chunk: &[u8], out: &mut BytesMut) {
        for event in self.splitter.push(chunk) {
            self.event(&event, out);
        }
    }

    /// The upstream ended: its last event (even without a blank line) and what closes the
    /// client's stream if the upstream did not send it (open blocks, `message_stop`, `[DONE]`).
    pub fn finish(&mut self, out: &mut BytesMut) {
        if let Some(rest) = self.splitter.finish() {
            self.event(&rest, out);
        }
        match &mut self.inner {
            Inner::OpenAi(s) => s.finish(out),
            Inner::Anthropic(s) => s.finish(out),
            Inner::Responses { chat, responses } => {
                if let Some(chat) = chat {
                    let mut chunks = BytesMut::new();
                    chat.finish(&mut chunks);
                    chat_events(&chunks, responses, out);
                }
                responses.finish(out);
            }
        }
    }

    fn event(&mut self, event: &[u8], out: &mut BytesMut) {
        let Some(data) = data_of(event) else {
            return;
        };
        let data = trim(&data);
        if data.is_empty() {
            return;
        }
        match &mut self.inner {
            Inner::OpenAi(s) => s.event(data, out),
            Inner::Anthropic(s) => s.event(data, out),
            Inner::Responses {
                chat: Some(chat),
                responses,
            } => {
                let mut chunks = BytesMut::new();
                chat.event(data, &mut chunks);
                chat_events(&chunks, responses, out);
            }
            Inner::Responses {
                chat: None,
                responses,
            } => responses.event(data, out),
        }
    }

    #[cfg(test)]
    fn set_created(&mut self, created: u64) {
        if let Inner::OpenAi(s) = &mut self.inner {
            s.created = created;
        }
    }
}

/// Chat chunks a translator wrote (whole `data:` events) given to the Responses stream.
fn chat_events(chunks: &[u8], responses: &mut responses::Stream, out: &mut BytesMut) {
    for event in chunks.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        if let Some(data) = event.strip_prefix(b"data: ") {
            responses.event(trim(data), out);
        }
    }
}

/// An event's `data:` payload, borrowed when it is on one line (the usual case).
fn data_of(event: &[u8]) -> Option<Cow<'_, [u8]>> {
    let mut found: Option<&[u8]> = None;
    for line in event.split(|b| *b == b'\n') {
        if let Some(rest) = line.strip_prefix(b"data:") {
            if found.is_some() {
                return event_data(event).map(Cow::Owned);
            }
            let rest = rest.strip_suffix(b"\r").unwrap_or(rest);
            found = Some(rest.strip_prefix(b" ").unwrap_or(rest));
        }
    }
    found.map(Cow::Borrowed)
}

fn trim(data: &[u8]) -> &[u8] {
    let start = data
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(data.len());
    let end = data
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |i| i + 1);
    &data[start..end.max(start)]
}

/// The message of an upstream error body (OpenAI's or Anthropic's shape, or any text) and its
/// type when it names one.
fn error_message(status: u16, body: &[u8]) -> (String, Option<String>) {
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) {
        let error = value.get("error").unwrap_or(&value);
        let message = error
            .get("message")
            .and_then(|m| m.as_str())
            .or_else(|| error.as_str())
            .or_else(|| value.get("message").and_then(|m| m.as_str()));
        if let Some(message) = message {
            let kind = error
                .get("type")
                .or_else(|| error.get("code"))
                .and_then(|t| t.as_str())
                .map(str::to_owned);
            return (message.to_owned(), kind);
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    let cut = match text.char_indices().nth(500) {
        Some((i, _)) => &text[..i],
        None => text,
    };
    (format!("upstream answered {status}: {cut}"), None)
}

/// Seconds since the epoch, for `created`.
fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Appends `data: <json>\n\n` (and `event: <name>\n` before it when named).
fn write_event(out: &mut BytesMut, name: Option<&str>, value: &impl serde::Serialize) {
    use bytes::BufMut;
    if let Some(name) = name {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\n");
    }
    out.extend_from_slice(b"data: ");
    let mut writer = out.writer();
    // Writing into memory fails only if serialization itself does, which our types do not.
    let _ = serde_json::to_writer(&mut writer, value);
    let out = writer.into_inner();
    out.extend_from_slice(b"\n\n");
}

#[cfg(test)]
mod tests;
