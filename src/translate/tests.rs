//! Round trips of both directions: requests, answers, streams in odd chunkings, errors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::BytesMut;
use serde_json::{json, Value};

use super::*;

fn target() -> Target<'static> {
    Target {
        model: "up-model",
        max_output_tokens: 32000,
        pdf: true,
        vision: true,
        reasoning: true,
        local: false,
    }
}

fn translate(client: ApiFormat, body: Value, target: &Target) -> (Value, Translation) {
    let (bytes, t) = request(client, &serde_json::to_vec(&body).unwrap(), target).unwrap();
    (serde_json::from_slice(&bytes).unwrap(), t)
}

fn refusal(client: ApiFormat, body: Value, target: &Target) -> Refusal {
    request(client, &serde_json::to_vec(&body).unwrap(), target).unwrap_err()
}

/// The client stream for `input` pushed `size` bytes at a time.
fn run(t: &Translation, input: &[u8], size: usize) -> Vec<u8> {
    let mut s = t.stream();
    s.set_created(1700000000);
    let mut out = BytesMut::new();
    for piece in input.chunks(size) {
        s.push(piece, &mut out);
    }
    s.finish(&mut out);
    out.to_vec()
}

/// The client stream, checked to be the same however the input is cut.
fn run_all(t: &Translation, input: &[u8]) -> Vec<u8> {
    let whole = run(t, input, input.len().max(1));
    for size in [1, 2, 7, 64] {
        assert_eq!(run(t, input, size), whole, "chunks of {size} bytes");
    }
    whole
}

/// Anthropic events as (event name, data).
fn anthropic_events(bytes: &[u8]) -> Vec<(String, Value)> {
    let text = std::str::from_utf8(bytes).unwrap();
    text.split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| {
            let (name, data) = e.split_once('\n').unwrap();
            let name = name.strip_prefix("event: ").unwrap().to_owned();
            let data = data.strip_prefix("data: ").unwrap();
            let value: Value = serde_json::from_str(data).unwrap();
            assert_eq!(value["type"], name.as_str());
            (name, value)
        })
        .collect()
}

/// OpenAI chunks' data (`[DONE]` as a JSON string).
fn openai_chunks(bytes: &[u8]) -> Vec<Value> {
    let text = std::str::from_utf8(bytes).unwrap();
    text.split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| {
            let data = e.strip_prefix("data: ").unwrap();
            if data == "[DONE]" {
                Value::from("[DONE]")
            } else {
                serde_json::from_str(data).unwrap()
            }
        })
        .collect()
}

fn anthropic_sse(events: &[Value]) -> Vec<u8> {
    let mut out = String::new();
    for e in events {
        out.push_str(&format!(
            "event: {}\ndata: {}\n\n",
            e["type"].as_str().unwrap(),
            e
        ));
    }
    out.into_bytes()
}

fn openai_sse(chunks: &[Value]) -> Vec<u8> {
    let mut out = String::new();
    for c in chunks {
        out.push_str(&format!("data: {c}\n\n"));
    }
    out.push_str("data: [DONE]\n\n");
    out.into_bytes()
}

const MCP_NAME: &str = "mcp__claude_in_chrome_devtools_server__take_full_page_screenshot_nowok";

// ---- OpenAI client → Anthropic upstream.

#[test]
fn an_openai_request_becomes_an_anthropic_request() {
    let body = json!({
        "model": "gpt-x",
        "messages": [
            {"role": "system", "content": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}]},
            {"role": "developer", "content": "Use tools."},
            {"role": "user", "content": [
                {"type": "text", "text": "Look:"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                {"type": "image_url", "image_url": {"url": "https://x.test/a.png", "detail": "high"}},
                {"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBE"}}
            ]},
            {"role": "assistant", "content": "Checking.",
             "thinking_blocks": [{"type": "thinking", "thinking": "hmm", "signature": "sig=="}, {"type": "redacted_thinking", "data": "xyz"}],
             "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get", "arguments": "{\"a\":1}"}},
                {"id": "call_2", "type": "function", "function": {"name": "put", "arguments": ""}}
             ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "one"},
            {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "two"}]},
            {"role": "user", "content": "thanks"}
        ],
        "tools": [
            {"type": "function", "function": {"name": "get", "description": "Get", "parameters": {"type": "object", "properties": {"a": {"type": "integer"}}}}},
            {"type": "function", "function": {"name": "put"}}
        ],
        "tool_choice": "required",
        "parallel_tool_calls": false,
        "max_completion_tokens": 500,
        "stop": "END",
        "temperature": 0.5,
        "top_p": 0.9,
        "user": "u-1",
        "stream": true,
        "stream_options": {"include_usage": true},
        "seed": 7,
        "frequency_penalty": 0,
        "presence_penalty": 0.0,
        "logit_bias": null,
        "store": false
    });
    let (out, t) = translate(ApiFormat::OpenAi, body, &target());
    assert_eq!(
        out,
        json!({
            "model": "up-model",
            "max_tokens": 500,
            "system": [
                {"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}},
                {"type": "text", "text": "Use tools."}
            ],
            "messages": [
                {"role": "user", "content": [
                    {"type": "text", "text": "Look:"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}},
                    {"type": "image", "source": {"type": "url", "url": "https://x.test/a.png"}},
                    {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"}}
                ]},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "hmm", "signature": "sig=="},
                    {"type": "redacted_thinking", "data": "xyz"},
                    {"type": "text", "text": "Checking."},
                    {"type": "tool_use", "id": "call_1", "name": "get", "input": {"a": 1}},
                    {"type": "tool_use", "id": "call_2", "name": "put", "input": {}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "call_1", "content": "one"},
                    {"type": "tool_result", "tool_use_id": "call_2", "content": [{"type": "text", "text": "two"}]},
                    {"type": "text", "text": "thanks"}
                ]}
            ],
            "tools": [
                {"name": "get", "description": "Get", "input_schema": {"type": "object", "properties": {"a": {"type": "integer"}}}},
                {"name": "put", "input_schema": {"type": "object", "properties": {}}}
            ],
            "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
            "stop_sequences": ["END"],
            "temperature": 0.5,
            "top_p": 0.9,
            "metadata": {"user_id": "u-1"},
            "stream": true
        })
    );
    assert!(t.stream && t.client_include_usage);
    assert_eq!(t.removed, vec!["seed"]);
    assert_eq!(
        (t.client, t.upstream),
        (ApiFormat::OpenAi, ApiFormat::Anthropic)
    );
}

#[test]
fn a_tool_result_after_user_text_goes_first_and_plain_system_is_a_string() {
    let body = json!({"messages": [
        {"role": "system", "content": "S"},
        {"role": "user", "content": "q"},
        {"role": "tool", "tool_call_id": "c", "content": "r"}
    ], "tool_choice": {"type": "function", "function": {"name": "f"}}});
    let (out, t) = translate(ApiFormat::OpenAi, body, &target());
    assert_eq!(out["system"], "S");
    assert_eq!(out["max_tokens"], 32000);
    assert_eq!(out["tool_choice"], json!({"type": "tool", "name": "f"}));
    assert_eq!(
        out["messages"],
        json!([{"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "c", "content": "r"},
            {"type": "text", "text": "q"}
        ]}])
    );
    assert!(!t.stream && t.removed.is_empty());
}

#[test]
fn reasoning_effort_becomes_thinking_and_removes_what_thinking_forbids() {
    let body = json!({"messages": [{"role": "user", "content": "q"}], "reasoning_effort": "medium",
        "max_tokens": 1000, "temperature": 0.3, "top_p": 0.5, "top_k": 5});
    let (out, t) = translate(ApiFormat::OpenAi, body.clone(), &target());
    assert_eq!(
        out["thinking"],
        json!({"type": "enabled", "budget_tokens": 8192})
    );
    assert_eq!(out["max_tokens"], 9192);
    assert!(
        out.get("temperature").is_none()
            && out.get("top_p").is_none()
            && out.get("top_k").is_none()
    );
    assert_eq!(t.removed, vec!["temperature", "top_k", "top_p"]);

    let small = Target {
        max_output_tokens: 4096,
        ..target()
    };
    let (out, _) = translate(ApiFormat::OpenAi, body.clone(), &small);
    assert_eq!(out["thinking"]["budget_tokens"], 4095);
    assert_eq!(out["max_tokens"], 4096);

    let plain = Target {
        reasoning: false,
        ..target()
    };
    let (out, t) = translate(ApiFormat::OpenAi, body, &plain);
    assert!(out.get("thinking").is_none());
    assert_eq!(out["temperature"], 0.3);
    assert_eq!(t.removed, vec!["reasoning_effort"]);
}

#[test]
fn what_anthropic_cannot_do_is_refused_naming_the_field() {
    let user = |content: Value| json!({"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": content}]});
    let mut cases = vec![
        (json!({"messages": [], "n": 2}), "n"),
        (json!({"messages": [], "logprobs": true}), "logprobs"),
        (json!({"messages": [], "top_logprobs": 3}), "top_logprobs"),
        (
            json!({"messages": [], "modalities": ["text", "audio"]}),
            "modalities",
        ),
        (json!({"messages": [], "audio": {"voice": "x"}}), "audio"),
        (
            json!({"messages": [], "prediction": {"type": "content", "content": "x"}}),
            "prediction",
        ),
        (json!({"messages": [], "temperature": 1.5}), "temperature"),
        (json!({"messages": "x"}), "messages"),
        (
            user(
                json!([{"type": "text", "text": "a"}, {"type": "input_audio", "input_audio": {}}]),
            ),
            "messages[1].content[1]",
        ),
        (
            json!({"messages": [{"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "{oops"}}]}]}),
            "messages[0].tool_calls[0].function.arguments",
        ),
        (
            json!({"messages": [{"role": "wizard", "content": "x"}]}),
            "messages[0].role",
        ),
    ];
    let image = user(
        json!([{"type": "text", "text": "a"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}}]),
    );
    let pdf =
        user(json!([{"type": "file", "file": {"file_data": "data:application/pdf;base64,AA"}}]));
    for (body, param) in cases.drain(..) {
        assert_eq!(refusal(ApiFormat::OpenAi, body, &target()).param, param);
    }
    let blind = Target {
        vision: false,
        pdf: false,
        ..target()
    };
    assert_eq!(
        refusal(ApiFormat::OpenAi, image, &blind).param,
        "messages[1].content[1]"
    );
    assert_eq!(
        refusal(ApiFormat::OpenAi, pdf, &blind).param,
        "messages[1].content[0]"
    );
    assert_eq!(
        request(ApiFormat::OpenAi, b"{nope", &target())
            .unwrap_err()
            .param,
        "body"
    );
}

#[test]
fn non_default_openai_only_members_are_dropped_with_a_note() {
    let body = json!({"messages": [{"role": "user", "content": "q"}], "frequency_penalty": 0.5,
        "presence_penalty": 1, "seed": 3, "logit_bias": {"1": 2}, "service_tier": "flex", "store": true,
        "metadata": {"a": "b"}, "response_format": {"type": "json_object"}});
    let (out, t) = translate(ApiFormat::OpenAi, body, &target());
    assert_eq!(
        t.removed,
        vec![
            "response_format json_object (asked in the system prompt)",
            "frequency_penalty",
            "presence_penalty",
            "seed",
            "logit_bias",
            "service_tier",
            "store",
            "metadata"
        ]
    );
    assert_eq!(
        out["system"],
        "Respond with a single JSON object and nothing else."
    );
    assert!(out.get("metadata").is_none());
}

#[test]
fn an_anthropic_answer_becomes_a_chat_completion() {
    let (_, t) = translate(
        ApiFormat::OpenAi,
        json!({"messages": [{"role": "user", "content": "q"}]}),
        &target(),
    );
    let answer = json!({
        "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-x",
        "content": [
            {"type": "thinking", "thinking": "First ", "signature": "s1"},
            {"type": "redacted_thinking", "data": "r1"},
            {"type": "text", "text": "Hello "},
            {"type": "text", "text": "there"},
            {"type": "tool_use", "id": "toolu_1", "name": "get", "input": {"b": [1, 2], "a": "x"}}
        ],
        "stop_reason": "tool_use", "stop_sequence": null,
        "usage": {"input_tokens": 10, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 5, "output_tokens": 7}
    });
    let out: Value =
        serde_json::from_slice(&t.answer(&serde_json::to_vec(&answer).unwrap()).unwrap()).unwrap();
    assert!(out["created"].as_u64().unwrap() > 1_600_000_000);
    assert_eq!(out["id"], "chatcmpl-01");
    assert_eq!(out["object"], "chat.completion");
    assert_eq!(out["model"], "claude-x");
    assert_eq!(
        out["choices"],
        json!([{"index": 0, "message": {
            "role": "assistant", "content": "Hello there", "reasoning_content": "First ",
            "thinking_blocks": [{"type": "thinking", "thinking": "First ", "signature": "s1"}, {"type": "redacted_thinking", "data": "r1"}],
            "tool_calls": [{"id": "toolu_1", "type": "function", "function": {"name": "get", "arguments": "{\"b\":[1,2],\"a\":\"x\"}"}}]
        }, "logprobs": null, "finish_reason": "tool_calls"}])
    );
    assert_eq!(
        out["usage"],
        json!({"prompt_tokens": 115, "completion_tokens": 7, "total_tokens": 122, "prompt_tokens_details": {"cached_tokens": 100}})
    );
    for (reason, finish) in [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("pause_turn", "stop"),
        ("max_tokens", "length"),
        ("refusal", "content_filter"),
    ] {
        let a = json!({"id": "msg_2", "model": "m", "content": [], "stop_reason": reason});
        let out: Value =
            serde_json::from_slice(&t.answer(&serde_json::to_vec(&a).unwrap()).unwrap()).unwrap();
        assert_eq!(out["choices"][0]["finish_reason"], finish);
    }
    assert!(t.answer(b"not json").is_err());
    assert!(t.answer(b"{\"id\":1}").is_err());
}

#[test]
fn json_schema_travels_as_a_forced_tool_and_comes_back_as_content() {
    let schema = json!({"type": "object", "properties": {"n": {"type": "integer"}}});
    let body = json!({"messages": [{"role": "user", "content": "q"}], "stream": true,
        "response_format": {"type": "json_schema", "json_schema": {"name": "r", "schema": schema}}});
    let (out, t) = translate(ApiFormat::OpenAi, body, &target());
    assert_eq!(out["tools"][0]["name"], "json_response");
    assert_eq!(out["tools"][0]["input_schema"], schema);
    assert_eq!(
        out["tool_choice"],
        json!({"type": "tool", "name": "json_response"})
    );

    let answer = json!({"id": "msg_1", "model": "m", "stop_reason": "tool_use",
        "content": [{"type": "tool_use", "id": "t", "name": "json_response", "input": {"n": 3}}]});
    let got: Value =
        serde_json::from_slice(&t.answer(&serde_json::to_vec(&answer).unwrap()).unwrap()).unwrap();
    assert_eq!(
        got["choices"][0]["message"],
        json!({"role": "assistant", "content": "{\"n\":3}"})
    );
    assert_eq!(got["choices"][0]["finish_reason"], "stop");

    let events = anthropic_sse(&[
        json!({"type": "message_start", "message": {"id": "msg_1", "model": "m", "usage": {"input_tokens": 3, "output_tokens": 1}}}),
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "tool_use", "id": "t", "name": "json_response", "input": {}}}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": "{\"n\":"}}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": "3}"}}),
        json!({"type": "content_block_stop", "index": 0}),
        json!({"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 5}}),
        json!({"type": "message_stop"}),
    ]);
    let chunks = openai_chunks(&run_all(&t, &events));
    let deltas: Vec<&Value> = chunks[..4]
        .iter()
        .map(|c| &c["choices"][0]["delta"])
        .collect();
    assert_eq!(
        deltas,
        [
            &json!({"role": "assistant", "content": ""}),
            &json!({"content": "{\"n\":"}),
            &json!({"content": "3}"}),
            &json!({})
        ]
    );
    assert_eq!(chunks[3]["choices"][0]["finish_reason"], "stop");
    assert_eq!(chunks[4], "[DONE]");
}

#[test]
fn text_beside_the_forced_json_tool_is_not_part_of_the_content() {
    let body = json!({"messages": [{"role": "user", "content": "q"}], "stream": true,
        "response_format": {"type": "json_schema", "json_schema": {"name": "r", "schema": {"type": "object"}}}});
    let (_, t) = translate(ApiFormat::OpenAi, body, &target());
    let answer = json!({"id": "msg_1", "model": "m", "stop_reason": "tool_use", "content": [
        {"type": "text", "text": "Here it is:"},
        {"type": "tool_use", "id": "t", "name": "json_response", "input": {"n": 3}}]});
    let got: Value =
        serde_json::from_slice(&t.answer(&serde_json::to_vec(&answer).unwrap()).unwrap()).unwrap();
    assert_eq!(got["choices"][0]["message"]["content"], "{\"n\":3}");

    let start = json!({"type": "message_start", "message": {"id": "msg_1", "model": "m", "usage": {"input_tokens": 3, "output_tokens": 1}}});
    let text = [
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Here it is:"}}),
        json!({"type": "content_block_stop", "index": 0}),
    ];
    let tool = [
        json!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "t", "name": "json_response", "input": {}}}),
        json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"n\":3}"}}),
        json!({"type": "content_block_stop", "index": 1}),
    ];
    let end = [
        json!({"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 5}}),
        json!({"type": "message_stop"}),
    ];
    let content = |events: Vec<Value>| -> String {
        openai_chunks(&run_all(&t, &anthropic_sse(&events)))
            .iter()
            .filter_map(|c| {
                c["choices"][0]["delta"]["content"]
                    .as_str()
                    .map(str::to_owned)
            })
            .collect()
    };
    let with_tool: Vec<Value> = std::iter::once(start.clone())
        .chain(text.clone())
        .chain(tool)
        .chain(end.clone())
        .collect();
    assert_eq!(content(with_tool), "{\"n\":3}");
    // Without the tool (it was forced: this should not happen), the text is all there is.
    let text_only: Vec<Value> = std::iter::once(start).chain(text).chain(end).collect();
    assert_eq!(content(text_only), "Here it is:");
}

#[test]
fn an_anthropic_stream_becomes_chat_chunks_event_by_event() {
    let (_, t) = translate(
        ApiFormat::OpenAi,
        json!({"messages": [{"role": "user", "content": "q"}],
        "stream": true, "stream_options": {"include_usage": true}}),
        &target(),
    );
    let input = anthropic_sse(&[
        json!({"type": "message_start", "message": {"id": "msg_9", "type": "message", "role": "assistant", "model": "claude-x", "content": [],
            "usage": {"input_tokens": 20, "cache_read_input_tokens": 50, "cache_creation_input_tokens": 0, "output_tokens": 1}}}),
        json!({"type": "ping"}),
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": "", "signature": ""}}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "Let me \"think\"\n"}}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "SIG"}}),
        json!({"type": "content_block_stop", "index": 0}),
        json!({"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}}),
        json!({"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Héllo"}}),
        json!({"type": "content_block_stop", "index": 1}),
        json!({"type": "content_block_start", "index": 2, "content_block": {"type": "tool_use", "id": "toolu_a", "name": "get", "input": {}}}),
        json!({"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": "{\"a\":"}}),
        json!({"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": "1}"}}),
        json!({"type": "content_block_stop", "index": 2}),
        json!({"type": "content_block_start", "index": 3, "content_block": {"type": "tool_use", "id": "toolu_b", "name": "put", "input": {}}}),
        json!({"type": "content_block_delta", "index": 3, "delta": {"type": "input_json_delta", "partial_json": "{}"}}),
        json!({"type": "content_block_stop", "index": 3}),
        json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null}, "usage": {"output_tokens": 42}}),
        json!({"type": "message_stop"}),
    ]);
    let chunks = openai_chunks(&run_all(&t, &input));
    for c in &chunks[..chunks.len() - 1] {
        assert_eq!(
            (&c["id"], &c["created"], &c["model"]),
            (&json!("chatcmpl-9"), &json!(1700000000), &json!("claude-x"))
        );
        assert_eq!(c["object"], "chat.completion.chunk");
    }
    let deltas: Vec<Value> = chunks[..chunks.len() - 2]
        .iter()
        .map(|c| c["choices"][0]["delta"].clone())
        .collect();
    assert_eq!(
        deltas,
        vec![
            json!({"role": "assistant", "content": ""}),
            json!({"reasoning_content": "Let me \"think\"\n"}),
            json!({"thinking_blocks": [{"type": "thinking", "thinking": "", "signature": "SIG"}]}),
            json!({"content": "Héllo"}),
            json!({"tool_calls": [{"index": 0, "id": "toolu_a", "type": "function", "function": {"name": "get", "arguments": ""}}]}),
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"a\":"}}]}),
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]}),
            json!({"tool_calls": [{"index": 1, "id": "toolu_b", "type": "function", "function": {"name": "put", "arguments": ""}}]}),
            json!({"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]}),
            json!({}),
        ]
    );
    assert_eq!(chunks[9]["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(chunks[8]["choices"][0]["finish_reason"], Value::Null);
    let usage = &chunks[10];
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(
        usage["usage"],
        json!({"prompt_tokens": 70, "completion_tokens": 42, "total_tokens": 112, "prompt_tokens_details": {"cached_tokens": 50}})
    );
    assert_eq!(chunks[11], "[DONE]");
    assert_eq!(chunks.len(), 12);
}

#[test]
fn an_anthropic_stream_error_and_an_abrupt_end_reach_the_openai_client() {
    let (_, t) = translate(
        ApiFormat::OpenAi,
        json!({"messages": [{"role": "user", "content": "q"}], "stream": true}),
        &target(),
    );
    let input = anthropic_sse(&[
        json!({"type": "message_start", "message": {"id": "msg_1", "model": "m"}}),
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
    ]);
    let chunks = openai_chunks(&run_all(&t, &input));
    assert_eq!(
        chunks[1],
        json!({"error": {"message": "Overloaded", "type": "api_error", "param": null, "code": "overloaded_error"}})
    );
    assert_eq!(chunks[2], "[DONE]");
    assert_eq!(chunks.len(), 3);

    let garbled = openai_chunks(&run(
        &t,
        b"event: x\ndata: {\"type\":\"content_block_delta\"}\n\n",
        3,
    ));
    assert_eq!(garbled[0]["error"]["type"], "api_error");
    assert_eq!(garbled[1], "[DONE]");
}

// ---- Anthropic client → OpenAI upstream.

/// A request as Claude Code sends it: system blocks with cache_control, MCP tools with long
/// names, a tool_use / tool_result history and thinking blocks.
fn claude_code_request() -> Value {
    json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 64000,
        "stream": true,
        "system": [
            {"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude."},
            {"type": "text", "text": "Work in /repo.", "cache_control": {"type": "ephemeral"}}
        ],
        "tools": [
            {"name": "Bash", "description": "Run a command", "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}},
            {"name": MCP_NAME, "description": "Screenshot", "input_schema": {"type": "object", "properties": {}}, "cache_control": {"type": "ephemeral"}}
        ],
        "tool_choice": {"type": "auto"},
        "metadata": {"user_id": "user_abc_session_1"},
        "thinking": {"type": "enabled", "budget_tokens": 10000},
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Take a screenshot and list files.", "cache_control": {"type": "ephemeral"}}]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "I should call both.", "signature": "EqQB"},
                {"type": "text", "text": "Sure."},
                {"type": "tool_use", "id": "toolu_01", "name": MCP_NAME, "input": {}},
                {"type": "tool_use", "id": "toolu_02", "name": "Bash", "input": {"command": "ls"}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01", "content": [{"type": "text", "text": "saved"}]},
                {"type": "tool_result", "tool_use_id": "toolu_02", "content": "a.rs\nb.rs", "is_error": false},
                {"type": "text", "text": "Now summarise."}
            ]}
        ]
    })
}

#[test]
fn a_claude_code_request_becomes_a_chat_completions_request() {
    let (out, t) = translate(ApiFormat::Anthropic, claude_code_request(), &target());
    let short = short_tool_name(MCP_NAME).into_owned();
    assert_eq!(short.len(), 64);
    assert!(short.starts_with(&MCP_NAME[..55]));
    assert_eq!(
        out,
        json!({
            "model": "up-model",
            "messages": [
                {"role": "system", "content": "You are Claude Code, Anthropic's official CLI for Claude.\n\nWork in /repo."},
                {"role": "user", "content": "Take a screenshot and list files."},
                {"role": "assistant", "content": "Sure.", "tool_calls": [
                    {"id": "toolu_01", "type": "function", "function": {"name": short, "arguments": "{}"}},
                    {"id": "toolu_02", "type": "function", "function": {"name": "Bash", "arguments": "{\"command\":\"ls\"}"}}
                ]},
                {"role": "tool", "tool_call_id": "toolu_01", "content": "saved"},
                {"role": "tool", "tool_call_id": "toolu_02", "content": "a.rs\nb.rs"},
                {"role": "user", "content": "Now summarise."}
            ],
            "tools": [
                {"type": "function", "function": {"name": "Bash", "description": "Run a command", "parameters": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}}},
                {"type": "function", "function": {"name": short, "description": "Screenshot", "parameters": {"type": "object", "properties": {}}}}
            ],
            "tool_choice": "auto",
            "max_completion_tokens": 32000,
            "user": "user_abc_session_1",
            "reasoning_effort": "high",
            "stream": true,
            "stream_options": {"include_usage": true}
        })
    );
    assert_eq!(
        t.removed,
        vec!["cache_control", "thinking blocks of earlier turns"]
    );
    assert!(t.stream);

    // The answer names the tool as the client knows it.
    let answer = json!({"id": "chatcmpl-abc", "model": "gpt-up", "choices": [{"index": 0, "finish_reason": "tool_calls",
        "message": {"role": "assistant", "content": null, "tool_calls": [{"id": "call_9", "type": "function", "function": {"name": short, "arguments": "{\"full\":true}"}}]}}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 2}});
    let got: Value =
        serde_json::from_slice(&t.answer(&serde_json::to_vec(&answer).unwrap()).unwrap()).unwrap();
    assert_eq!(
        got["content"],
        json!([{"type": "tool_use", "id": "call_9", "name": MCP_NAME, "input": {"full": true}}])
    );
}

#[test]
fn anthropic_parameters_map_to_openai_ones() {
    let body = json!({"max_tokens": 100, "messages": [{"role": "user", "content": "q"}],
        "tools": [{"name": "f", "input_schema": {"type": "object"}}, {"type": "custom", "name": "g.h"}],
        "tool_choice": {"type": "tool", "name": "g.h", "disable_parallel_tool_use": true},
        "stop_sequences": ["X"], "temperature": 0.2, "top_p": 0.8, "top_k": 4,
        "thinking": {"type": "enabled", "budget_tokens": 2048}, "service_tier": "auto"});
    let local = Target {
        local: true,
        ..target()
    };
    let (out, t) = translate(ApiFormat::Anthropic, body.clone(), &local);
    let g = short_tool_name("g.h").into_owned();
    assert!(g.starts_with("g_h_") && g.len() == 12);
    assert_eq!(
        out["tools"][1]["function"],
        json!({"name": g, "parameters": {"type": "object", "properties": {}}})
    );
    assert_eq!(
        out["tool_choice"],
        json!({"type": "function", "function": {"name": g}})
    );
    assert_eq!(out["parallel_tool_calls"], false);
    assert_eq!(out["max_tokens"], 100);
    assert!(out.get("max_completion_tokens").is_none());
    assert_eq!(
        (&out["stop"], &out["temperature"], &out["top_p"]),
        (&json!(["X"]), &json!(0.2), &json!(0.8))
    );
    assert_eq!(out["reasoning_effort"], "low");
    assert!(out.get("stream_options").is_none());
    assert_eq!(t.removed, vec!["top_k", "service_tier"]);

    let plain = Target {
        reasoning: false,
        ..target()
    };
    let (out, t) = translate(ApiFormat::Anthropic, body, &plain);
    assert!(out.get("reasoning_effort").is_none());
    assert!(t.removed.contains(&"thinking".to_owned()));
    for (choice, expected) in [("auto", "auto"), ("any", "required"), ("none", "none")] {
        let (out, _) = translate(
            ApiFormat::Anthropic,
            json!({"messages": [], "tool_choice": {"type": choice}}),
            &target(),
        );
        assert_eq!(out["tool_choice"], expected);
    }
}

#[test]
fn anthropic_content_the_model_cannot_take_is_refused() {
    let web = json!({"messages": [], "tools": [{"name": "f", "input_schema": {}}, {"type": "web_search_20250305", "name": "web_search"}]});
    assert_eq!(
        refusal(ApiFormat::Anthropic, web, &target()).param,
        "tools[1]"
    );
    let bash = json!({"messages": [], "tools": [{"type": "bash_20250124", "name": "bash"}]});
    assert_eq!(
        refusal(ApiFormat::Anthropic, bash, &target()).param,
        "tools[0]"
    );
    let image = json!({"messages": [{"role": "user", "content": [{"type": "text", "text": "a"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AA"}}]}]});
    let pdf = json!({"messages": [{"role": "user", "content": [
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JV"}}]}]});
    let blind = Target {
        vision: false,
        pdf: false,
        ..target()
    };
    assert_eq!(
        refusal(ApiFormat::Anthropic, image.clone(), &blind).param,
        "messages[0].content[1]"
    );
    assert_eq!(
        refusal(ApiFormat::Anthropic, pdf.clone(), &blind).param,
        "messages[0].content[0]"
    );
    let (out, _) = translate(ApiFormat::Anthropic, image, &target());
    assert_eq!(
        out["messages"][0]["content"],
        json!([{"type": "text", "text": "a"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}}])
    );
    let (out, _) = translate(ApiFormat::Anthropic, pdf, &target());
    assert_eq!(
        out["messages"][0]["content"],
        json!([{"type": "file", "file": {"filename": "document.pdf", "file_data": "data:application/pdf;base64,JV"}}])
    );
    assert_eq!(
        refusal(
            ApiFormat::Anthropic,
            json!({"messages": [{"role": "bot", "content": "x"}]}),
            &target()
        )
        .param,
        "messages[0].role"
    );
}

#[test]
fn an_openai_answer_becomes_an_anthropic_message() {
    let (_, t) = translate(
        ApiFormat::Anthropic,
        json!({"messages": [], "tools": [{"name": MCP_NAME, "input_schema": {}}]}),
        &target(),
    );
    let short = short_tool_name(MCP_NAME).into_owned();
    let answer = json!({"id": "chatcmpl-77", "object": "chat.completion", "model": "gpt-5", "choices": [{"index": 0,
        "message": {"role": "assistant", "content": "Done.", "reasoning_content": "why",
            "tool_calls": [
                {"type": "function", "function": {"name": short, "arguments": "{\"x\":1}"}},
                {"id": "call_2", "type": "function", "function": {"name": "other", "arguments": "{broken"}}
            ]},
        "finish_reason": "tool_calls"}],
        "usage": {"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150, "prompt_tokens_details": {"cached_tokens": 100}}});
    let got: Value =
        serde_json::from_slice(&t.answer(&serde_json::to_vec(&answer).unwrap()).unwrap()).unwrap();
    let generated = got["content"][2]["id"].as_str().unwrap();
    assert!(generated.starts_with("toolu_") && generated.len() > 10);
    assert_eq!(
        got,
        json!({"id": "msg_77", "type": "message", "role": "assistant", "model": "gpt-5",
            "content": [
                {"type": "thinking", "thinking": "why", "signature": ""},
                {"type": "text", "text": "Done."},
                {"type": "tool_use", "id": generated, "name": MCP_NAME, "input": {"x": 1}},
                {"type": "tool_use", "id": "call_2", "name": "other", "input": {}}
            ],
            "stop_reason": "tool_use", "stop_sequence": null,
            "usage": {"input_tokens": 20, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 0, "output_tokens": 30}})
    );
    for (finish, stop) in [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("function_call", "tool_use"),
        ("content_filter", "refusal"),
    ] {
        let a = json!({"id": "c", "model": "m", "choices": [{"message": {"content": "x", "reasoning": "r"}, "finish_reason": finish}]});
        let got: Value =
            serde_json::from_slice(&t.answer(&serde_json::to_vec(&a).unwrap()).unwrap()).unwrap();
        assert_eq!(got["stop_reason"], stop);
        assert_eq!(
            got["content"][0],
            json!({"type": "thinking", "thinking": "r", "signature": ""})
        );
    }
    assert!(t.answer(b"[]").is_err());
}

#[test]
fn an_openai_stream_with_two_parallel_tool_calls_becomes_anthropic_events() {
    let (_, t) = translate(
        ApiFormat::Anthropic,
        json!({"stream": true, "messages": [], "tools": [{"name": MCP_NAME, "input_schema": {}}]}),
        &target(),
    );
    let short = short_tool_name(MCP_NAME).into_owned();
    let head = |delta: Value, finish: Value| {
        json!({"id": "chatcmpl-P", "object": "chat.completion.chunk", "created": 1, "model": "gpt-up",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    };
    let input = openai_sse(&[
        head(json!({"role": "assistant", "content": ""}), Value::Null),
        head(json!({"content": "Two calls."}), Value::Null),
        head(
            json!({"tool_calls": [{"index": 0, "id": "call_A", "type": "function", "function": {"name": short, "arguments": ""}}]}),
            Value::Null,
        ),
        head(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"pa"}}]}),
            Value::Null,
        ),
        head(
            json!({"tool_calls": [{"index": 1, "id": "call_B", "type": "function", "function": {"name": "Bash", "arguments": "{\"command\":"}}]}),
            Value::Null,
        ),
        head(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "ge\":1}"}}, {"index": 1, "function": {"arguments": "\"ls\"}"}}]}),
            Value::Null,
        ),
        head(json!({}), json!("tool_calls")),
        json!({"id": "chatcmpl-P", "object": "chat.completion.chunk", "created": 1, "model": "gpt-up", "choices": [],
            "usage": {"prompt_tokens": 50, "completion_tokens": 9, "total_tokens": 59, "prompt_tokens_details": {"cached_tokens": 40}}}),
    ]);
    let events = anthropic_events(&run_all(&t, &input));
    let expected = vec![
        json!({"type": "message_start", "message": {"id": "msg_P", "type": "message", "role": "assistant", "model": "gpt-up", "content": [],
            "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 0, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 0}}}),
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Two calls."}}),
        json!({"type": "content_block_stop", "index": 0}),
        json!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "call_A", "name": MCP_NAME, "input": {}}}),
        json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"pa"}}),
        json!({"type": "content_block_start", "index": 2, "content_block": {"type": "tool_use", "id": "call_B", "name": "Bash", "input": {}}}),
        json!({"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": "{\"command\":"}}),
        json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "ge\":1}"}}),
        json!({"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": "\"ls\"}"}}),
        json!({"type": "content_block_stop", "index": 1}),
        json!({"type": "content_block_stop", "index": 2}),
        json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null},
            "usage": {"input_tokens": 10, "output_tokens": 9, "cache_read_input_tokens": 40}}),
        json!({"type": "message_stop"}),
    ];
    let got: Vec<Value> = events.into_iter().map(|(_, v)| v).collect();
    assert_eq!(got, expected);
}

#[test]
fn an_openai_stream_with_reasoning_holds_message_delta_until_the_usage() {
    let (_, t) = translate(
        ApiFormat::Anthropic,
        json!({"stream": true, "messages": []}),
        &target(),
    );
    let c = |delta: Value, finish: Value| json!({"id": "chatcmpl-R", "model": "m", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
    let input = openai_sse(&[
        c(
            json!({"role": "assistant", "reasoning_content": "Hmm"}),
            Value::Null,
        ),
        c(json!({"reasoning": ", ok"}), Value::Null),
        c(json!({"content": "Answer"}), Value::Null),
        c(json!({}), json!("length")),
    ]);
    let out = run_all(&t, &input);
    let names: Vec<String> = anthropic_events(&out).into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    let events = anthropic_events(&out);
    assert_eq!(
        events[1].1["content_block"],
        json!({"type": "thinking", "thinking": "", "signature": ""})
    );
    assert_eq!(
        events[3].1["delta"],
        json!({"type": "thinking_delta", "thinking": ", ok"})
    );
    assert_eq!(
        events[6].1,
        json!({"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Answer"}})
    );
    assert_eq!(events[8].1["delta"]["stop_reason"], "max_tokens");

    // Nothing after the finish chunk until the usage chunk comes.
    let mut s = t.stream();
    let mut out = BytesMut::new();
    let finish = format!("data: {}\n\n", c(json!({"content": "x"}), json!("stop")));
    let mut before = BytesMut::new();
    s.push(finish.as_bytes(), &mut before);
    assert!(!String::from_utf8_lossy(&before).contains("message_delta"));
    s.push(
        b"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2}}\n\n",
        &mut out,
    );
    let events = anthropic_events(&out);
    assert_eq!(
        events[0].1["usage"],
        json!({"input_tokens": 5, "output_tokens": 2, "cache_read_input_tokens": 0})
    );
    assert_eq!(events.len(), 2);
}

#[test]
fn an_openai_stream_that_ends_early_or_errs_is_closed_for_the_anthropic_client() {
    let (_, t) = translate(
        ApiFormat::Anthropic,
        json!({"stream": true, "messages": []}),
        &target(),
    );
    let cut = b"data: {\"id\":\"chatcmpl-E\",\"model\":\"m\",\"choices\":[{\"delta\":{\"content\":\"par\"}}]}\n\ndata: {\"choices\":[{\"delta\":{\"content\":\"tial\"}}]}";
    let names: Vec<String> = anthropic_events(&run_all(&t, cut))
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );

    let err = b"data: {\"error\":{\"message\":\"rate limited\",\"type\":\"rate_limit\"}}\n\n";
    let events = anthropic_events(&run_all(&t, err));
    assert_eq!(
        events,
        vec![(
            "error".to_owned(),
            json!({"type": "error", "error": {"type": "api_error", "message": "rate limited"}})
        )]
    );
}

// ---- Errors.

#[test]
fn upstream_errors_take_the_clients_shape_and_keep_the_message() {
    let (_, to_anthropic) = translate(ApiFormat::Anthropic, json!({"messages": []}), &target());
    let (_, to_openai) = translate(ApiFormat::OpenAi, json!({"messages": []}), &target());
    let openai_error = br#"{"error":{"message":"Bad key","type":"invalid_request_error","code":"invalid_api_key","param":null}}"#;
    let got: Value = serde_json::from_slice(&to_anthropic.error(401, openai_error)).unwrap();
    assert_eq!(
        got,
        json!({"type": "error", "error": {"type": "authentication_error", "message": "Bad key"}})
    );

    let anthropic_error =
        br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
    let got: Value = serde_json::from_slice(&to_openai.error(529, anthropic_error)).unwrap();
    assert_eq!(
        got,
        json!({"error": {"message": "Overloaded", "type": "api_error", "param": null, "code": "overloaded_error"}})
    );

    let html = format!("<html>{}</html>", "x".repeat(600));
    let got: Value = serde_json::from_slice(&to_openai.error(502, html.as_bytes())).unwrap();
    let message = got["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("upstream answered 502: <html>xx"));
    assert_eq!(message.len(), "upstream answered 502: ".len() + 500);
    let got: Value = serde_json::from_slice(&to_anthropic.error(404, b"not found")).unwrap();
    assert_eq!(
        got["error"],
        json!({"type": "not_found_error", "message": "upstream answered 404: not found"})
    );
}

#[test]
fn short_tool_names_are_stable_valid_and_leave_valid_names_alone() {
    assert_eq!(short_tool_name("Bash"), "Bash");
    let a = short_tool_name(MCP_NAME);
    assert_eq!(a, short_tool_name(MCP_NAME));
    assert_ne!(a, short_tool_name(&format!("{MCP_NAME}x")));
    assert!(
        a.len() <= 64
            && a.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    );
    assert_eq!(short_tool_name("a b").len(), 3 + 1 + 8);
}
