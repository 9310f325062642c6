//! The request body parser and the body sent upstream: no input panics them, and the upstream
//! body is the client's with only the model and the usage request changed.

use std::sync::Arc;

use bytes::Bytes;
use llm_gateway::api::Operation;
use llm_gateway::pipeline::inbound::{body_for_target, parse};
use llm_gateway::pipeline::plan::{Target, Why};
use llm_gateway::providers::{tls, ProviderKind};
use llm_gateway::runtime::build_provider;
use llm_gateway::settings::{ProviderDefaults, ProviderSettings};
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{json, Map, Value};

use crate::generators;

const OPERATIONS: [Operation; 3] = [
    Operation::ChatCompletions,
    Operation::Messages,
    Operation::CountTokens,
];
const KINDS: [ProviderKind; 4] = [
    ProviderKind::OpenAi,
    ProviderKind::AzureOpenAi,
    ProviderKind::Anthropic,
    ProviderKind::Local,
];

/// A provider of `kind` serving `model`, as the registry would resolve it.
fn target(kind: ProviderKind, model: &str) -> Target {
    let settings = ProviderSettings {
        id: kind.as_str().to_string(),
        provider_type: kind,
        api_key: None,
        api_key_env: None,
        endpoint: Some("http://127.0.0.1:9".into()),
        deployment: (kind == ProviderKind::AzureOpenAi).then(|| model.to_string()),
        api_version: None,
        enabled: true,
        models: Vec::new(),
        connect_timeout_ms: None,
        read_timeout_ms: None,
        max_connections: None,
        ca_file: None,
        ca_certs: None,
    };
    let defaults = ProviderDefaults {
        connect_timeout_ms: 1000,
        read_timeout_ms: 1000,
        max_connections: 16,
    };
    let tls = tls::default_client_config().unwrap();
    Target {
        provider: Arc::new(build_provider(&settings, &defaults, &tls).unwrap()),
        model: model.to_string(),
        why: Why::Catalog,
    }
}

/// A value for `stream_options`: absent, null, an object with or without `include_usage`, or odd.
fn stream_options() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        Just(None),
        Just(Some(Value::Null)),
        Just(Some(json!({}))),
        any::<bool>().prop_map(|b| Some(json!({ "include_usage": b }))),
        Just(Some(json!({ "include_usage": null }))),
        generators::leaf().prop_map(Some),
    ]
}

/// A request body as clients write them: model, messages, stream, stream_options and other
/// members in any order, some of them of the wrong type, with any whitespace around.
fn request_body() -> impl Strategy<Value = Vec<u8>> {
    let model = prop_oneof![
        4 => select(&["gpt-4o", "claude-sonnet-4-20250514", "llama3:8b", " "][..])
            .prop_map(Value::from),
        1 => generators::leaf(),
    ];
    let messages = prop_oneof![
        4 => prop::collection::vec(generators::value(), 0..3).prop_map(Value::Array),
        1 => generators::leaf(),
    ];
    let stream = prop_oneof![
        3 => any::<bool>().prop_map(Value::Bool),
        1 => generators::leaf(),
    ];
    (
        proptest::option::weighted(0.9, model),
        proptest::option::weighted(0.9, messages),
        proptest::option::of(stream),
        stream_options(),
        prop::collection::vec((generators::key(), generators::value()), 0..3),
        any::<bool>(),
        select(&["", " ", "\n", "\t\r\n "][..]),
        proptest::bool::weighted(0.1),
    )
        .prop_map(
            |(model, messages, stream, options, extra, pretty, pad, as_array)| {
                if as_array {
                    // The envelope's fields in order: serde reads a struct from an array too.
                    let fields = [model, stream, messages, options];
                    let array = fields.into_iter().map(Option::unwrap_or_default).collect();
                    return format!("{pad}{}{pad}", Value::Array(array)).into_bytes();
                }
                let mut object = Map::new();
                for (name, value) in extra {
                    object.insert(name, value);
                }
                for (name, value) in [
                    ("model", model),
                    ("messages", messages),
                    ("stream", stream),
                    ("stream_options", options),
                ] {
                    if let Some(value) = value {
                        object.insert(name.to_string(), value);
                    }
                }
                let value = Value::Object(object);
                let text = if pretty {
                    serde_json::to_string_pretty(&value).unwrap()
                } else {
                    value.to_string()
                };
                format!("{pad}{text}{pad}").into_bytes()
            },
        )
}

/// The body as a provider reads it: JSON, a repeated member's last value winning.
fn as_provider_reads(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap_or_else(|e| {
        panic!(
            "the upstream body is JSON ({e}): {}",
            String::from_utf8_lossy(body)
        )
    })
}

/// Checks what `body_for_target` sends for one accepted request and one target.
fn check_upstream_body(op: Operation, body: &[u8], kind: ProviderKind, target_model: &str) {
    let parsed = parse(op, body).unwrap();
    let target = target(kind, target_model);
    let client = Bytes::copy_from_slice(body);
    let upstream = body_for_target(op, &client, &parsed, &target).unwrap();
    let ask_usage = op == Operation::ChatCompletions
        && parsed.stream
        && matches!(kind, ProviderKind::OpenAi | ProviderKind::AzureOpenAi);
    if target_model == parsed.model && !ask_usage {
        assert_eq!(upstream.body, client, "the client's bytes go unchanged");
    }
    assert_eq!(
        upstream.strip_usage_chunk,
        ask_usage && !parsed.include_usage
    );

    let sent = as_provider_reads(&upstream.body);
    let mut asked = as_provider_reads(body);
    assert_eq!(
        sent["model"],
        json!(target_model),
        "the target's model is sent"
    );
    if ask_usage {
        assert_eq!(
            sent["stream_options"]["include_usage"],
            json!(true),
            "an OpenAI stream asks for its usage: {}",
            String::from_utf8_lossy(&upstream.body)
        );
    }
    // Everything else is the client's.
    let (mut sent, asked) = (sent, asked.as_object_mut().unwrap().clone());
    let sent = sent.as_object_mut().unwrap();
    for (name, value) in &asked {
        match name.as_str() {
            "model" => {}
            "stream_options" if ask_usage => {
                let mut options = value.as_object().cloned().unwrap_or_default();
                options.insert("include_usage".into(), json!(true));
                assert_eq!(sent["stream_options"], Value::Object(options));
            }
            _ => assert_eq!(&sent[name], value, "member `{name}` is the client's"),
        }
    }
    assert_eq!(
        sent.keys()
            .filter(|k| !asked.contains_key(*k) && *k != "model" && *k != "stream_options")
            .count(),
        0,
        "no member is added but the model and stream_options"
    );
}

proptest! {
    #![proptest_config(crate::config(512))]

    #[test]
    fn parsing_arbitrary_bytes_never_panics(body in prop::collection::vec(any::<u8>(), 0..512)) {
        for op in OPERATIONS {
            let _ = parse(op, &body);
        }
    }

    #[test]
    fn parsing_json_ish_bodies_never_panics(body in generators::json_ish_bytes()) {
        for op in OPERATIONS {
            let _ = parse(op, &body);
        }
    }

    #[test]
    fn an_accepted_body_goes_upstream_with_only_the_model_and_usage_request_changed(
        body in request_body(),
        other_model in select(&["gpt-4o-mini", "claude-3-5-haiku-latest", "llama3:8b"][..]),
    ) {
        for op in OPERATIONS {
            let Ok(parsed) = parse(op, &body) else { continue };
            prop_assert!(!parsed.model.trim().is_empty());
            prop_assert!(!parsed.stream || op != Operation::CountTokens);
            for kind in KINDS {
                for model in [parsed.model.as_str(), other_model] {
                    check_upstream_body(op, &body, kind, model);
                }
            }
        }
    }
}

#[test]
fn a_json_array_is_not_a_request() {
    for op in OPERATIONS {
        assert!(parse(op, br#"["gpt-4o", false, []]"#).is_err());
        assert!(parse(op, br#" ["gpt-4o", true, [{}], {"include_usage": true}]"#).is_err());
    }
}

#[test]
fn a_null_stream_options_still_gets_the_usage_request() {
    let body = br#"{"model":"gpt-4o","messages":[],"stream":true,"stream_options":null}"#;
    for model in ["gpt-4o", "gpt-4o-mini"] {
        check_upstream_body(
            Operation::ChatCompletions,
            body,
            ProviderKind::OpenAi,
            model,
        );
    }
}

#[test]
fn a_re_encoded_body_keeps_the_clients_numbers_exactly() {
    // serde_json's default float parsing is not correctly rounded: without `float_roundtrip`
    // this number came back one unit in the last place away.
    let body = br#"{"model":"gpt-4o","messages":[],"temperature":-2.748632510526217e277}"#;
    let parsed = parse(Operation::ChatCompletions, body).unwrap();
    let pinned = target(ProviderKind::OpenAi, "gpt-4o-mini");
    let upstream = body_for_target(
        Operation::ChatCompletions,
        &Bytes::from_static(body),
        &parsed,
        &pinned,
    )
    .unwrap();
    let sent = std::str::from_utf8(&upstream.body).unwrap();
    let number = sent
        .strip_prefix(r#"{"model":"gpt-4o-mini","messages":[],"temperature":"#)
        .and_then(|rest| rest.strip_suffix('}'))
        .unwrap_or_else(|| panic!("{sent}"));
    // Read back by Rust's own (correctly rounded) parser, not serde_json's.
    assert_eq!(
        number.parse::<f64>().unwrap(),
        "-2.748632510526217e277".parse::<f64>().unwrap(),
        "{sent}"
    );
}
