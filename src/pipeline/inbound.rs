//! Reading the client's request: content type, size limit, and the few fields the gateway must
//! know; and the body sent to a target (the model pin, the usage request its provider type needs).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header::{HeaderMap, CONTENT_TYPE};
use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use serde::de::IgnoredAny;
use serde::Deserialize;

use super::plan::Target;
use crate::api::{openai, Operation};
use crate::error::GatewayError;
use crate::providers::{azure_openai, ProviderKind};

/// What the gateway reads from a request body; everything else is forwarded untouched.
#[derive(Debug, Clone)]
pub struct ParsedRequest {
    pub model: String,
    /// Where the `model` member's value (its quoted string) lies in the body, so that a
    /// target's model id can take its place without re-encoding the rest.
    pub model_span: Option<std::ops::Range<usize>>,
    pub stream: bool,
    /// Whether the body has a `stream_options` object at all.
    pub has_stream_options: bool,
    /// Whether the client asked for the usage chunk itself (`stream_options.include_usage`).
    pub include_usage: bool,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    model: Option<&'a serde_json::value::RawValue>,
    stream: Option<bool>,
    messages: Option<Vec<IgnoredAny>>,
    /// Embeddings' text: a string, strings, or token arrays.
    input: Option<IgnoredAny>,
    /// Legacy completions' text: a string, strings, or token arrays.
    prompt: Option<IgnoredAny>,
    /// `Some(None)` for `"stream_options": null`: there, so not to be added a second time.
    #[serde(default, deserialize_with = "present")]
    stream_options: Option<Option<StreamOptions>>,
}

/// A member that is there, even as `null` (which a plain `Option` reads as absent).
fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

#[derive(Deserialize)]
struct StreamOptions {
    include_usage: Option<bool>,
}

/// What bounds a request body: its size, the time it may take to arrive, and the bytes that
/// all bodies being read or forwarded may hold at once.
#[derive(Debug)]
pub struct BodyLimits {
    pub max_bytes: usize,
    pub timeout: Duration,
    pub budget: Arc<BodyBudget>,
}

/// The bytes of request bodies held across all requests, against a cap.
#[derive(Debug)]
pub struct BodyBudget {
    held: AtomicUsize,
    cap: usize,
}

impl BodyBudget {
    /// A budget of `cap` bytes.
    pub fn new(cap: usize) -> Self {
        Self {
            held: AtomicUsize::new(0),
            cap,
        }
    }

    /// The bytes held now (for metrics and tests).
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }
}

/// One request's share of the [`BodyBudget`], given back when dropped.
#[derive(Debug)]
pub struct BodyReservation {
    budget: Arc<BodyBudget>,
    bytes: usize,
}

impl BodyReservation {
    fn grow(&mut self, bytes: usize) -> Result<(), GatewayError> {
        let before = self.budget.held.fetch_add(bytes, Ordering::Relaxed);
        if before + bytes > self.budget.cap {
            self.budget.held.fetch_sub(bytes, Ordering::Relaxed);
            return Err(GatewayError::Overloaded {
                message: format!(
                    "the gateway holds its limit of {} bytes of request bodies ([server] max_buffered_body_bytes); retry shortly",
                    self.budget.cap
                ),
            });
        }
        self.bytes += bytes;
        Ok(())
    }
}

impl Drop for BodyReservation {
    fn drop(&mut self) {
        self.budget.held.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

/// Reads the body, refusing non-JSON content types, bodies over `max_bytes`, bodies that do
/// not arrive within `timeout`, and bodies that would take the gateway past its budget. The
/// reservation holds the body's share of the budget; keep it while the body is kept.
pub async fn read_body<S, E>(
    headers: &HeaderMap,
    mut payload: S,
    limits: &BodyLimits,
) -> Result<(Bytes, BodyReservation), GatewayError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    if let Some(value) = headers.get(CONTENT_TYPE) {
        let text = value.to_str().unwrap_or("");
        let mime = text
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if mime != "application/json" && !mime.ends_with("+json") {
            return Err(GatewayError::UnsupportedMediaType {
                content_type: text.chars().take(100).collect(),
            });
        }
    }
    let limit = limits.max_bytes;
    let declared = headers
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > limit) {
        return Err(GatewayError::PayloadTooLarge { limit });
    }
    let mut reservation = BodyReservation {
        budget: limits.budget.clone(),
        bytes: 0,
    };
    let mut body = BodyBuffer::new(declared);
    let read = async {
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|e| GatewayError::InvalidRequest {
                message: format!("failed to read the request body: {e}"),
                param: None,
            })?;
            if body.len() + chunk.len() > limit {
                return Err(GatewayError::PayloadTooLarge { limit });
            }
            reservation.grow(chunk.len())?;
            body.extend(&chunk, limit);
        }
        Ok(())
    };
    match tokio::time::timeout(limits.timeout, read).await {
        Ok(result) => result?,
        Err(_) => {
            return Err(GatewayError::BodyTimeout {
                timeout_ms: limits.timeout.as_millis() as u64,
            })
        }
    }
    Ok((body.freeze(), reservation))
}

/// Bodies at least this large are read into memory mapped from the OS for them alone: when
/// the request ends it goes straight back (an allocator keeps freed memory for reuse, so a
/// burst of large bodies would leave the process's RSS high long after).
const MAPPED_BODY_BYTES: usize = 256 * 1024;

/// Where a body is read to: the heap for small bodies, an anonymous mapping for large ones.
/// A mapping costs only the pages written, so one sized by `Content-Length` holds what
/// arrived, not what was declared.
enum BodyBuffer {
    Heap(BytesMut),
    Mapped { map: memmap2::MmapMut, len: usize },
}

/// A filled mapping as the bytes of a body.
struct MappedBody {
    map: memmap2::MmapMut,
    len: usize,
}

impl AsRef<[u8]> for MappedBody {
    fn as_ref(&self) -> &[u8] {
        &self.map[..self.len]
    }
}

impl BodyBuffer {
    fn new(declared: Option<usize>) -> Self {
        match declared {
            Some(size) if size >= MAPPED_BODY_BYTES => Self::mapped(size, &[]),
            _ => Self::Heap(BytesMut::with_capacity(
                declared.unwrap_or(8 * 1024).min(MAPPED_BODY_BYTES),
            )),
        }
    }

    /// A mapping of `size` bytes starting with `start`; the heap if the OS refuses one.
    fn mapped(size: usize, start: &[u8]) -> Self {
        match memmap2::MmapMut::map_anon(size) {
            Ok(mut map) => {
                map[..start.len()].copy_from_slice(start);
                Self::Mapped {
                    map,
                    len: start.len(),
                }
            }
            Err(_) => Self::Heap(BytesMut::from(start)),
        }
    }

    fn len(&self) -> usize {
        match self {
            Self::Heap(bytes) => bytes.len(),
            Self::Mapped { len, .. } => *len,
        }
    }

    /// Appends `chunk`; the caller has checked that the body stays within `limit`.
    fn extend(&mut self, chunk: &[u8], limit: usize) {
        let needed = self.len() + chunk.len();
        if let Self::Heap(bytes) = self {
            if needed >= MAPPED_BODY_BYTES {
                // A body without a declared length that turned out large.
                *self = Self::mapped(limit.max(needed), bytes);
            }
        }
        match self {
            Self::Heap(bytes) => bytes.extend_from_slice(chunk),
            Self::Mapped { map, len } if needed <= map.len() => {
                map[*len..needed].copy_from_slice(chunk);
                *len = needed;
            }
            Self::Mapped { map, len } => {
                // More than declared (the HTTP layer frames bodies by their length, so this
                // does not happen): carried on in the heap.
                let mut bytes = BytesMut::with_capacity(needed);
                bytes.extend_from_slice(&map[..*len]);
                bytes.extend_from_slice(chunk);
                *self = Self::Heap(bytes);
            }
        }
    }

    fn freeze(self) -> Bytes {
        match self {
            Self::Heap(bytes) => bytes.freeze(),
            Self::Mapped { map, len } => Bytes::from_owner(MappedBody { map, len }),
        }
    }
}

/// Reads `model`, `stream` and checks the operation's required member (`messages`, `input`
/// or `prompt`); the error says which field is wrong.
pub fn parse(op: Operation, body: &[u8]) -> Result<ParsedRequest, GatewayError> {
    let required = op.required_member();
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(GatewayError::InvalidRequest {
            message: format!(
                "the request body is empty: send a JSON object with `model` and `{required}`"
            ),
            param: None,
        });
    }
    // JSON is UTF-8 (RFC 8259), and serde skips the strings it does not keep unchecked:
    // checked here, so no provider receives a string it cannot decode.
    if let Err(e) = std::str::from_utf8(body) {
        return Err(GatewayError::InvalidRequest {
            message: format!(
                "the request body is not valid UTF-8 (at byte {}): JSON must be UTF-8",
                e.valid_up_to()
            ),
            param: None,
        });
    }
    // Serde reads a struct from an array too (`["gpt-4o", false, []]`), which no provider takes.
    if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return Err(GatewayError::InvalidRequest {
            message: format!(
                "the request body is a JSON array: send a JSON object with `model` and `{required}`"
            ),
            param: None,
        });
    }
    let envelope: Envelope =
        serde_json::from_slice(body).map_err(|e| GatewayError::InvalidRequest {
            message: format!("the request body is not valid JSON for this endpoint: {e}"),
            param: None,
        })?;
    let model_span = envelope.model.map(|raw| {
        let start = raw.get().as_ptr() as usize - body.as_ptr() as usize;
        start..start + raw.get().len()
    });
    let model = envelope
        .model
        .map(|raw| serde_json::from_str::<Option<String>>(raw.get()))
        .transpose()
        .map_err(|_| GatewayError::InvalidRequest {
            message: "`model` must be a string".into(),
            param: Some("model".into()),
        })?
        .flatten()
        .filter(|m| !m.trim().is_empty())
        .ok_or_else(|| GatewayError::InvalidRequest {
            message: "missing required field `model`".into(),
            param: Some("model".into()),
        })?;
    let present = match op {
        Operation::Embeddings | Operation::Responses => envelope.input.is_some(),
        Operation::Completions => envelope.prompt.is_some(),
        Operation::ChatCompletions | Operation::Messages | Operation::CountTokens => {
            envelope.messages.is_some()
        }
    };
    if !present {
        return Err(GatewayError::InvalidRequest {
            message: format!("missing required field `{required}`"),
            param: Some(required.into()),
        });
    }
    Ok(ParsedRequest {
        model,
        model_span,
        stream: op.can_stream() && envelope.stream.unwrap_or(false),
        has_stream_options: envelope.stream_options.is_some(),
        include_usage: envelope
            .stream_options
            .flatten()
            .and_then(|o| o.include_usage)
            .unwrap_or(false),
    })
}

/// What goes upstream: the body, and whether the gateway added the usage request (so the
/// usage-only chunk must be kept from the client, who did not ask for it).
pub struct UpstreamBody {
    pub body: Bytes,
    pub strip_usage_chunk: bool,
    /// Set when the body was translated for a provider of the other API.
    pub translation: Option<crate::translate::Translation>,
}

/// The body to send to `target`: the client's bytes unchanged, except (a) the model id when it
/// differs from the one asked for (a `provider/model` pin), and (b) for an OpenAI or Azure
/// stream, `stream_options.include_usage`, so the ledger learns the stream's usage.
pub fn body_for_target(
    op: Operation,
    body: &Bytes,
    parsed: &ParsedRequest,
    target: &Target,
) -> Result<UpstreamBody, GatewayError> {
    let ask_usage =
        parsed.stream && !parsed.include_usage && target.provider.kind.asks_stream_usage(op);
    // Azure's Responses API names the deployment in the body (its other paths carry it).
    let model = match (op, target.provider.kind) {
        (Operation::Responses, ProviderKind::AzureOpenAi) => {
            azure_openai::body_model(&target.provider).unwrap_or(&target.model)
        }
        _ => target.model.as_str(),
    };
    let same_model = model == parsed.model;
    if same_model && !ask_usage {
        return Ok(UpstreamBody {
            body: body.clone(),
            strip_usage_chunk: false,
            translation: None,
        });
    }
    // The cheap way: the target's model id in place of the client's, and the usage request
    // added after the opening brace; the rest stays byte for byte.
    let spliced = match (&parsed.model_span, same_model) {
        (_, true) => Some(body.clone()),
        (Some(span), false) => serde_json::to_vec(model).ok().map(|model| {
            let mut out = Vec::with_capacity(body.len() + model.len());
            out.extend_from_slice(&body[..span.start]);
            out.extend_from_slice(&model);
            out.extend_from_slice(&body[span.end..]);
            Bytes::from(out)
        }),
        (None, false) => None,
    };
    if let Some(spliced) = spliced {
        if !ask_usage {
            return Ok(UpstreamBody {
                body: spliced,
                strip_usage_chunk: false,
                translation: None,
            });
        }
        if !parsed.has_stream_options {
            if let Some(out) = openai::with_include_usage(&spliced) {
                return Ok(UpstreamBody {
                    body: Bytes::from(out),
                    strip_usage_chunk: true,
                    translation: None,
                });
            }
        }
    }
    let mut value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| GatewayError::InvalidRequest {
            message: format!("the request body is not valid JSON: {e}"),
            param: None,
        })?;
    if let Some(object) = value.as_object_mut() {
        object.insert("model".into(), serde_json::Value::from(model));
        if ask_usage {
            openai::set_include_usage(object);
        }
    }
    serde_json::to_vec(&value)
        .map(|b| UpstreamBody {
            body: Bytes::from(b),
            strip_usage_chunk: ask_usage,
            translation: None,
        })
        .map_err(|e| GatewayError::Internal {
            message: format!("failed to encode the request body: {e}"),
        })
}
