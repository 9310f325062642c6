//! Reading the client's request: content type, size limit, and the few fields the gateway must know.

use actix_web::http::header::CONTENT_TYPE;
use actix_web::{web, HttpRequest};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use serde::de::IgnoredAny;
use serde::Deserialize;

use crate::actors::provider_registry::Target;
use crate::error::GatewayError;
use crate::providers::{Operation, ProviderKind};

/// What the gateway reads from a request body; everything else is forwarded untouched.
#[derive(Debug, Clone)]
pub struct ParsedRequest {
    pub model: String,
    pub stream: bool,
    /// Whether the body has a `stream_options` object at all.
    pub has_stream_options: bool,
    /// Whether the client asked for the usage chunk itself (`stream_options.include_usage`).
    pub include_usage: bool,
}

#[derive(Deserialize)]
struct Envelope {
    model: Option<String>,
    stream: Option<bool>,
    messages: Option<Vec<IgnoredAny>>,
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

/// Reads the body, refusing non-JSON content types and bodies over `limit` bytes.
pub async fn read_body(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<Bytes, GatewayError> {
    if let Some(value) = req.headers().get(CONTENT_TYPE) {
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
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > limit) {
        return Err(GatewayError::PayloadTooLarge { limit });
    }
    let mut body = BytesMut::with_capacity(declared.unwrap_or(8 * 1024).min(limit));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| GatewayError::InvalidRequest {
            message: format!("failed to read the request body: {e}"),
            param: None,
        })?;
        if body.len() + chunk.len() > limit {
            return Err(GatewayError::PayloadTooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Reads `model`, `stream` and checks `messages`; the error says which field is wrong.
pub fn parse(op: Operation, body: &[u8]) -> Result<ParsedRequest, GatewayError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(GatewayError::InvalidRequest {
            message: "the request body is empty: send a JSON object with `model` and `messages`"
                .into(),
            param: None,
        });
    }
    // Serde reads a struct from an array too (`["gpt-4o", false, []]`), which no provider takes.
    if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return Err(GatewayError::InvalidRequest {
            message:
                "the request body is a JSON array: send a JSON object with `model` and `messages`"
                    .into(),
            param: None,
        });
    }
    let envelope: Envelope =
        serde_json::from_slice(body).map_err(|e| GatewayError::InvalidRequest {
            message: format!("the request body is not valid JSON for this endpoint: {e}"),
            param: None,
        })?;
    let model = envelope
        .model
        .filter(|m| !m.trim().is_empty())
        .ok_or_else(|| GatewayError::InvalidRequest {
            message: "missing required field `model`".into(),
            param: Some("model".into()),
        })?;
    if envelope.messages.is_none() {
        return Err(GatewayError::InvalidRequest {
            message: "missing required field `messages`".into(),
            param: Some("messages".into()),
        });
    }
    Ok(ParsedRequest {
        model,
        stream: op != Operation::CountTokens && envelope.stream.unwrap_or(false),
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
    let ask_usage = op == Operation::ChatCompletions
        && parsed.stream
        && !parsed.include_usage
        && matches!(
            target.provider.kind,
            ProviderKind::OpenAi | ProviderKind::AzureOpenAi
        );
    let same_model = target.model == parsed.model;
    if same_model && !ask_usage {
        return Ok(UpstreamBody {
            body: body.clone(),
            strip_usage_chunk: false,
        });
    }
    if same_model && !parsed.has_stream_options {
        // The cheap way: add the member after the opening brace; the rest stays byte for byte.
        if let Some(open) = body
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .filter(|&i| body[i] == b'{')
        {
            let mut out = Vec::with_capacity(body.len() + INCLUDE_USAGE.len());
            out.extend_from_slice(&body[..=open]);
            out.extend_from_slice(INCLUDE_USAGE);
            out.extend_from_slice(&body[open + 1..]);
            return Ok(UpstreamBody {
                body: Bytes::from(out),
                strip_usage_chunk: true,
            });
        }
    }
    let mut value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| GatewayError::InvalidRequest {
            message: format!("the request body is not valid JSON: {e}"),
            param: None,
        })?;
    if let Some(object) = value.as_object_mut() {
        object.insert(
            "model".into(),
            serde_json::Value::String(target.model.clone()),
        );
        if ask_usage {
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
    }
    serde_json::to_vec(&value)
        .map(|b| UpstreamBody {
            body: Bytes::from(b),
            strip_usage_chunk: ask_usage,
        })
        .map_err(|e| GatewayError::Internal {
            message: format!("failed to encode the request body: {e}"),
        })
}

/// The member added to OpenAI stream requests so that usage is reported.
const INCLUDE_USAGE: &[u8] = br#""stream_options":{"include_usage":true},"#;
