//! Reading the client's request: content type, size limit, and the few fields the gateway must know.

use actix_web::http::header::CONTENT_TYPE;
use actix_web::{web, HttpRequest};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use serde::de::IgnoredAny;
use serde::Deserialize;

use crate::actors::provider_registry::Target;
use crate::error::GatewayError;
use crate::providers::Operation;

/// What the gateway reads from a request body; everything else is forwarded untouched.
#[derive(Debug, Clone)]
pub struct ParsedRequest {
    pub model: String,
    pub stream: bool,
}

#[derive(Deserialize)]
struct Envelope {
    model: Option<String>,
    stream: Option<bool>,
    messages: Option<Vec<IgnoredAny>>,
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
    })
}

/// The body to send to `target`: the client's bytes unchanged, unless the target's model id
/// differs from the one asked for (a `provider/model` pin), which is then rewritten.
pub fn body_for_target(
    body: &Bytes,
    parsed: &ParsedRequest,
    target: &Target,
) -> Result<Bytes, GatewayError> {
    if target.model == parsed.model {
        return Ok(body.clone());
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
    }
    serde_json::to_vec(&value)
        .map(Bytes::from)
        .map_err(|e| GatewayError::Internal {
            message: format!("failed to encode the request body: {e}"),
        })
}
