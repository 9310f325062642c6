//! OpenAI's Responses API on the wire (`POST /v1/responses`): the usage readers of its answers
//! and of its typed stream events. A stream's usage arrives in its last event
//! (`response.completed`, or `response.incomplete` / `response.failed`), inside the response
//! object; the text deltas on the way are counted for estimates when the stream breaks first.
//! Errors are in OpenAI's shape (`api::openai::error_body`).

use std::borrow::Cow;

use serde::Deserialize;

use super::{ErrorObject, Reading, Usage};

/// Reads one stream event (the `data:` payload).
pub fn read_event(reading: &mut Reading, data: &[u8]) {
    let Ok(event) = serde_json::from_slice::<Event>(data) else {
        return;
    };
    match event.kind.as_deref() {
        Some("response.output_text.delta")
        | Some("response.function_call_arguments.delta")
        | Some("response.reasoning_summary_text.delta")
        | Some("response.refusal.delta") => {
            reading.delivered_chars += event.delta.as_deref().map_or(0, |d| d.len() as u64);
        }
        Some("error") => {
            let kind = event.code.unwrap_or_else(|| "upstream_stream_error".into());
            let message = event.message.unwrap_or_default();
            reading.error = Some((
                kind.into_owned(),
                message.chars().take(super::MAX_ERROR_MESSAGE).collect(),
            ));
        }
        _ => {}
    }
    if let Some(response) = event.response {
        read_response(reading, response);
    }
}

/// Reads a whole JSON answer (a response object) for its usage, model and error.
pub fn read_body(reading: &mut Reading, body: &[u8]) {
    if let Ok(response) = serde_json::from_slice::<ResponseObject>(body) {
        read_response(reading, response);
    }
}

fn read_response(reading: &mut Reading, response: ResponseObject<'_>) {
    if let Some(model) = response.model {
        if reading.model.is_none() {
            reading.model = Some(model.into_owned());
        }
    }
    if let Some(usage) = response.usage {
        reading.usage = Some(usage.into());
    }
    if let Some(error) = response.error {
        reading.error = Some(error.into_kind_message("upstream_error"));
    }
}

#[derive(Deserialize)]
struct Event<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    delta: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    response: Option<ResponseObject<'a>>,
    /// An `error` event's fields.
    #[serde(borrow, default)]
    code: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    message: Option<Cow<'a, str>>,
}

/// The response object as far as the ledger reads it; its output is skipped, not decoded.
#[derive(Deserialize)]
struct ResponseObject<'a> {
    #[serde(borrow, default)]
    model: Option<Cow<'a, str>>,
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(default)]
    error: Option<ErrorObject>,
}

#[derive(Deserialize)]
struct WireUsage {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    input_tokens_details: Option<InputDetails>,
}

#[derive(Deserialize)]
struct InputDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
}

impl From<WireUsage> for Usage {
    fn from(u: WireUsage) -> Self {
        Self {
            input: u.input_tokens.unwrap_or(0),
            output: u.output_tokens.unwrap_or(0),
            cached_input: u
                .input_tokens_details
                .and_then(|d| d.cached_tokens)
                .unwrap_or(0),
            cache_write: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_whole_answer_gives_its_usage_and_model() {
        let mut reading = Reading::default();
        read_body(
            &mut reading,
            br#"{"id":"resp_1","object":"response","model":"gpt-4o-2024-08-06","output":[{"type":"message","content":[{"type":"output_text","text":"hi"}]}],"usage":{"input_tokens":12,"input_tokens_details":{"cached_tokens":4},"output_tokens":3,"total_tokens":15},"error":null}"#,
        );
        assert_eq!(reading.model.as_deref(), Some("gpt-4o-2024-08-06"));
        assert_eq!(
            reading.usage,
            Some(Usage {
                input: 12,
                output: 3,
                cached_input: 4,
                cache_write: 0
            })
        );
        assert!(reading.error.is_none());
    }

    #[test]
    fn a_stream_gives_its_usage_at_completion_and_counts_deltas_before() {
        let mut reading = Reading::default();
        read_event(
            &mut reading,
            br#"{"type":"response.created","sequence_number":0,"response":{"model":"gpt-4o","usage":null}}"#,
        );
        read_event(
            &mut reading,
            br#"{"type":"response.output_text.delta","sequence_number":3,"delta":"Hello"}"#,
        );
        assert_eq!(reading.delivered_chars, 5);
        assert!(reading.usage.is_none());
        read_event(
            &mut reading,
            br#"{"type":"response.completed","sequence_number":9,"response":{"model":"gpt-4o","usage":{"input_tokens":7,"output_tokens":2}}}"#,
        );
        assert_eq!(reading.usage.map(|u| (u.input, u.output)), Some((7, 2)));
        read_event(
            &mut reading,
            br#"{"type":"error","code":"server_error","message":"boom"}"#,
        );
        assert_eq!(
            reading.error,
            Some(("server_error".to_string(), "boom".to_string()))
        );
    }
}
