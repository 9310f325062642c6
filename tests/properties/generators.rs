//! Generators shared by the properties: JSON-ish values built from the words the readers look
//! for, and byte strings split at arbitrary points.

use proptest::prelude::*;
use proptest::sample::select;
use serde_json::Value;

/// Member names the gateway's readers look for, so that generated objects reach their branches.
const WORDS: &[&str] = &[
    "model",
    "messages",
    "stream",
    "stream_options",
    "include_usage",
    "usage",
    "prompt_tokens",
    "completion_tokens",
    "prompt_tokens_details",
    "cached_tokens",
    "choices",
    "delta",
    "message",
    "content",
    "reasoning_content",
    "tool_calls",
    "function",
    "arguments",
    "error",
    "type",
    "text",
    "thinking",
    "partial_json",
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "message_start",
    "message_delta",
    "content_block_delta",
    "url",
    "data",
    "base64",
    "id",
    "role",
    "source",
    "system",
];

/// A member name: usually one the readers know, sometimes anything.
pub fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => select(WORDS).prop_map(str::to_string),
        1 => any::<String>(),
    ]
}

/// A string value: a known word, text with a credential or an email in it, or anything.
pub fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => select(WORDS).prop_map(str::to_string),
        1 => Just("data:image/png;base64,iVBORw0KGgo=".to_string()),
        2 => (any::<String>(), select(crate::sanitizer::SECRETS), any::<String>())
            .prop_map(|(a, (planted, _), b)| format!("{a} {planted} {b}")),
        3 => any::<String>(),
    ]
}

/// A scalar: null, a boolean, an integer of any size or sign, a finite float, a string.
pub fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
        text().prop_map(Value::String),
    ]
}

/// A JSON value a few levels deep, its objects keyed mostly by the readers' words.
pub fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..6)
                .prop_map(|members| Value::Object(members.into_iter().collect())),
        ]
    })
}

/// Bytes near JSON: a value's text, whole or cut short, or arbitrary bytes.
pub fn json_ish_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => value().prop_map(|v| v.to_string().into_bytes()),
        2 => (value(), any::<prop::sample::Index>()).prop_map(|(v, cut)| {
            let text = v.to_string().into_bytes();
            let at = cut.index(text.len() + 1);
            text[..at].to_vec()
        }),
        1 => prop::collection::vec(any::<u8>(), 0..256),
    ]
}

/// Arbitrary places to cut a byte string (taken modulo its length).
pub fn cuts() -> impl Strategy<Value = Vec<prop::sample::Index>> {
    prop::collection::vec(any::<prop::sample::Index>(), 0..8)
}

/// `bytes` cut at `cuts`, in order; empty pieces included, as a network may deliver them.
pub fn split<'a>(bytes: &'a [u8], cuts: &[prop::sample::Index]) -> Vec<&'a [u8]> {
    let mut at: Vec<usize> = cuts.iter().map(|c| c.index(bytes.len() + 1)).collect();
    at.sort_unstable();
    let mut pieces = Vec::with_capacity(at.len() + 1);
    let mut start = 0;
    for end in at {
        pieces.push(&bytes[start..end]);
        start = end;
    }
    pieces.push(&bytes[start..]);
    pieces
}
