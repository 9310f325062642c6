//! A target of the other wire API: the request translated for it (`translate::request`, with
//! what its model card allows), and the count_tokens answer the gateway gives itself for a
//! model whose API has no such endpoint.

use actix_web::http::header::HeaderMap;
use bytes::Bytes;

use super::call::ProxyCall;
use super::plan::Target;
use crate::api::{ApiFormat, Operation};
use crate::catalog::{Capability, Catalog, ModelCard};
use crate::error::GatewayError;
use crate::providers::ProviderKind;
use crate::translate::{self, Translation};

/// Output tokens assumed for a model without a card (what a card of defaults says too).
const DEFAULT_MAX_OUTPUT: u64 = 4096;

/// The card of a target's model: the catalog's, or for a local server its local card.
pub fn card_of<'c>(catalog: &'c Catalog, target: &Target) -> Option<&'c ModelCard> {
    match target.provider.kind {
        ProviderKind::Local => catalog.local_card(&target.model).map(|c| &**c),
        _ => catalog.card(&target.model),
    }
}

/// The client's body in the target's API, and what its answer needs to come back; `param`
/// of the error names what the target's API cannot take.
pub fn body(
    call: &ProxyCall<'_>,
    target: &Target,
    card: Option<&ModelCard>,
) -> Result<(Bytes, Translation), GatewayError> {
    let has = |cap| card.is_some_and(|c: &ModelCard| c.capabilities.contains(cap));
    let wanted = translate::Target {
        model: &target.model,
        max_output_tokens: card.map_or(DEFAULT_MAX_OUTPUT, |c| c.max_output_tokens),
        pdf: has(Capability::Pdf),
        vision: has(Capability::Vision),
        reasoning: has(Capability::Reasoning),
        local: target.provider.kind == ProviderKind::Local,
    };
    let upstream = target.provider.kind.api();
    let translated = if call.op == Operation::Responses {
        translate::request_responses(&call.body, &wanted, upstream)
    } else {
        translate::request(call.op.api(), &call.body, &wanted)
    };
    let (body, mut translation) = translated.map_err(|refusal| GatewayError::Untranslatable {
        message: format!(
            "`{}` cannot be sent to {}/{} ({} API): {}",
            refusal.param,
            target.provider.id,
            target.model,
            target.provider.kind.api().name(),
            refusal.message
        ),
        param: refusal.param,
    })?;
    noted_headers(call.headers, target.provider.kind.api(), &mut translation);
    Ok((Bytes::from(body), translation))
}

/// The client's API-specific headers the target's API has no use for (they are not sent):
/// each `anthropic-beta` value is named among what was removed.
fn noted_headers(headers: &HeaderMap, upstream: ApiFormat, translation: &mut Translation) {
    if upstream == ApiFormat::Anthropic {
        return;
    }
    for value in headers.get_all("anthropic-beta") {
        for beta in value.to_str().unwrap_or("").split(',') {
            let note = format!("anthropic-beta: {}", beta.trim());
            if !beta.trim().is_empty() && !translation.removed.contains(&note) {
                translation.removed.push(note);
            }
        }
    }
}

/// The `x-gateway-translated` value of a translation (`anthropic->openai`), as recorded.
pub fn direction(translation: &Translation) -> &'static str {
    if translation.is_responses() {
        return match translation.upstream {
            ApiFormat::OpenAi => "responses->openai",
            ApiFormat::Anthropic => "responses->anthropic",
        };
    }
    match (translation.client, translation.upstream) {
        (ApiFormat::Anthropic, ApiFormat::OpenAi) => "anthropic->openai",
        (ApiFormat::OpenAi, ApiFormat::Anthropic) => "openai->anthropic",
        _ => "none",
    }
}

/// The tokenizer the gateway counts with for models of OpenAI's API (`count_tokens` toward
/// them is answered by the gateway, marked as an estimate).
pub const TOKENIZER: &str = "o200k_base";

/// Tokens of an Anthropic `count_tokens` body as an OpenAI-API model would count them: the
/// o200k tokens of the system prompt, every message's text, tool calls and results, and the
/// tools' definitions, plus OpenAI's framing (3 per message, 3 for the reply) and 85 per image.
/// Runs on the blocking pool: a long prompt takes milliseconds to tokenize.
pub async fn count_tokens(body: Bytes) -> Result<u64, GatewayError> {
    actix_web::rt::task::spawn_blocking(move || count_tokens_now(&body))
        .await
        .map_err(|e| GatewayError::Internal {
            message: format!("the token count failed: {e}"),
        })?
}

fn count_tokens_now(body: &[u8]) -> Result<u64, GatewayError> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| GatewayError::InvalidRequest {
            message: format!("the request body is not valid JSON: {e}"),
            param: None,
        })?;
    let mut text = String::new();
    let mut images = 0u64;
    let mut messages = 0u64;
    if let Some(system) = value.get("system") {
        gather(system, &mut text, &mut images);
        messages += 1;
    }
    for message in value
        .get("messages")
        .and_then(|m| m.as_array())
        .into_iter()
        .flatten()
    {
        messages += 1;
        if let Some(content) = message.get("content") {
            gather(content, &mut text, &mut images);
        }
    }
    for tool in value
        .get("tools")
        .and_then(|t| t.as_array())
        .into_iter()
        .flatten()
    {
        for key in ["name", "description"] {
            if let Some(s) = tool.get(key).and_then(|v| v.as_str()) {
                text.push_str(s);
                text.push('\n');
            }
        }
        if let Some(schema) = tool.get("input_schema") {
            text.push_str(&schema.to_string());
            text.push('\n');
        }
    }
    let bpe = tiktoken_rs::o200k_base_singleton();
    let tokens = bpe.encode_ordinary(&text).len() as u64;
    Ok(tokens + 3 * messages + 3 + 85 * images)
}

/// The text of a content value (a string, or blocks: text, tool inputs and results).
fn gather(content: &serde_json::Value, text: &mut String, images: &mut u64) {
    match content {
        serde_json::Value::String(s) => {
            text.push_str(s);
            text.push('\n');
        }
        serde_json::Value::Array(blocks) => {
            for block in blocks {
                match block.get("type").and_then(|t| t.as_str()) {
                    Some("image") | Some("document") => *images += 1,
                    Some("tool_use") => {
                        if let Some(name) = block.get("name").and_then(|n| n.as_str()) {
                            text.push_str(name);
                            text.push('\n');
                        }
                        if let Some(input) = block.get("input") {
                            text.push_str(&input.to_string());
                            text.push('\n');
                        }
                    }
                    Some("tool_result") => {
                        if let Some(inner) = block.get("content") {
                            gather(inner, text, images);
                        }
                    }
                    _ => {
                        for key in ["text", "thinking"] {
                            if let Some(s) = block.get(key).and_then(|v| v.as_str()) {
                                text.push_str(s);
                                text.push('\n');
                            }
                        }
                    }
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    #[test]
    fn counts_come_from_the_o200k_tokenizer_with_openai_framing() {
        // "Hello" is one o200k token; one message: 3 of framing and 3 for the reply.
        let body = br#"{"model":"gpt-4o","messages":[{"role":"user","content":"Hello"}]}"#;
        let hello = super::count_tokens_now(body).unwrap();
        assert_eq!(hello, 1 + 1 + 3 + 3, "'Hello' and its newline, framing");
        let longer = br#"{"model":"gpt-4o","system":"Be brief.","messages":[{"role":"user","content":[{"type":"text","text":"Hello there, how are you today?"},{"type":"image","source":{"type":"base64","media_type":"image/png","data":"AAAA"}}]}]}"#;
        let n = super::count_tokens_now(longer).unwrap();
        assert!(n > hello + 85, "{n}");
        assert!(super::count_tokens_now(b"{").is_err());
    }
}
