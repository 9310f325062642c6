//! The mock over HTTP: tool calls, tool results and reasoning in the OpenAI and Anthropic wire
//! formats, JSON and SSE, and the default answers unchanged.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read as _, Write as _};
use std::net::TcpStream;

use mock_upstream::{prompt_tokens, MockUpstream};
use serde_json::{json, Value};

/// An answer: status, lowercased head, body (de-chunked).
struct Answer {
    status: u16,
    head: String,
    body: String,
}

/// POSTs `body` to the mock with `headers`, over a plain connection closed after the answer.
fn post(mock: &MockUpstream, path: &str, headers: &[(&str, &str)], body: &Value) -> Answer {
    let body = body.to_string();
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(&body);
    let mut stream = TcpStream::connect(("127.0.0.1", mock.port)).expect("connect to the mock");
    stream.write_all(request.as_bytes()).expect("send");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read");
    let raw = String::from_utf8(raw).expect("utf-8 answer");
    let (head, rest) = raw.split_once("\r\n\r\n").expect("a head");
    let head = head.to_ascii_lowercase();
    let status = head[9..12].parse().expect("a status");
    let body = if head.contains("transfer-encoding: chunked") {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    Answer { status, head, body }
}

fn dechunk(mut rest: &str) -> String {
    let mut body = String::new();
    loop {
        let (size, after) = rest.split_once("\r\n").expect("a chunk size");
        let size = usize::from_str_radix(size.trim(), 16).expect("a hex size");
        if size == 0 {
            return body;
        }
        body.push_str(&after[..size]);
        rest = &after[size + 2..];
    }
}

/// An OpenAI stream's `data:` payloads (`[DONE]` as the string "[DONE]").
fn openai_events(body: &str) -> Vec<Value> {
    body.split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| {
            let data = e.strip_prefix("data: ").expect("a data line");
            serde_json::from_str(data).unwrap_or_else(|_| json!(data))
        })
        .collect()
}

/// An Anthropic stream's events: (event name, data).
fn anthropic_events(body: &str) -> Vec<(String, Value)> {
    body.split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| {
            let (name, data) = e.split_once('\n').expect("two lines");
            let name = name.strip_prefix("event: ").expect("an event line");
            let data = data.strip_prefix("data: ").expect("a data line");
            (
                name.to_string(),
                serde_json::from_str(data).expect("JSON data"),
            )
        })
        .collect()
}

fn openai_request(stream: bool) -> Value {
    json!({"model": "gpt-4o", "stream": stream,
        "messages": [{"role": "user", "content": "What is the weather in Paris?"}],
        "tools": [{"type": "function", "function": {"name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]})
}

fn anthropic_request(stream: bool) -> Value {
    json!({"model": "claude-sonnet-4-5", "max_tokens": 100, "stream": stream,
        "messages": [{"role": "user", "content": "What is the weather in Paris?"}],
        "tools": [{"name": "get_weather", "input_schema": {"type": "object",
            "properties": {"city": {"type": "string"}}}}]})
}

const TOOL: (&str, &str) = ("x-mock-tool", "get_weather");
const ARGS: (&str, &str) = ("x-mock-tool-args", r#"{"city":"Paris","days":3}"#);
const ARGUMENTS: &str = r#"{"city":"Paris","days":3}"#;

/// The deltas of an OpenAI stream's chunks (the usage chunk and `[DONE]` left out).
fn deltas(events: &[Value]) -> Vec<Value> {
    events
        .iter()
        .filter_map(|e| e["choices"].get(0).map(|c| c["delta"].clone()))
        .collect()
}

/// The `finish_reason` of an OpenAI stream's last choice chunk.
fn stream_finish(events: &[Value]) -> Value {
    events
        .iter()
        .filter_map(|e| e["choices"].get(0))
        .next_back()
        .map(|c| c["finish_reason"].clone())
        .unwrap_or(Value::Null)
}

// --- defaults ------------------------------------------------------------------------------

#[test]
fn the_default_openai_stream_is_unchanged() {
    let mock = MockUpstream::start().expect("mock");
    let request = json!({"model": "gpt-4o", "stream": true, "stream_options": {"include_usage": true},
        "messages": [{"role": "user", "content": "hi"}]});
    let answer = post(&mock, "/v1/chat/completions", &[], &request);
    let input = prompt_tokens(request.to_string().as_bytes());
    let chunk = |delta: &str, finish: &str| {
        format!(
            r#"data: {{"choices":[{{"delta":{delta},"finish_reason":{finish},"index":0,"logprobs":null}}],"created":1700000000,"id":"chatcmpl-mock","model":"gpt-4o","object":"chat.completion.chunk","system_fingerprint":"fp_mock"}}"#
        )
    };
    let expected = [
        chunk(r#"{"content":"","role":"assistant"}"#, "null"),
        chunk(r#"{"content":"chunk0 "}"#, "null"),
        chunk(r#"{"content":"chunk1 "}"#, "null"),
        chunk(r#"{"content":"chunk2 "}"#, "null"),
        chunk("{}", r#""stop""#),
        format!(
            r#"data: {{"choices":[],"created":1700000000,"id":"chatcmpl-mock","model":"gpt-4o","object":"chat.completion.chunk","system_fingerprint":"fp_mock","usage":{{"completion_tokens":3,"prompt_tokens":{input},"prompt_tokens_details":{{"cached_tokens":0}},"total_tokens":{}}}}}"#,
            input + 3
        ),
        "data: [DONE]".to_string(),
    ];
    // Keys compared in order-insensitive form: serde_json's map order depends on features.
    let got: Vec<Value> = openai_events(&answer.body);
    let want: Vec<Value> = openai_events(&(expected.join("\n\n") + "\n\n"));
    assert_eq!(got, want);
}

#[test]
fn the_default_anthropic_stream_is_unchanged() {
    let mock = MockUpstream::start().expect("mock");
    let request = json!({"model": "claude-sonnet-4-5", "max_tokens": 10, "stream": true,
        "messages": [{"role": "user", "content": "hi"}]});
    let answer = post(&mock, "/v1/messages", &[], &request);
    let names: Vec<String> = anthropic_events(&answer.body)
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
}

#[test]
fn a_tool_the_request_does_not_offer_gets_the_default_text() {
    let mock = MockUpstream::start().expect("mock");
    let mut request = openai_request(false);
    request["tools"][0]["function"]["name"] = json!("other");
    let answer = post(&mock, "/v1/chat/completions", &[TOOL], &request);
    let body: Value = serde_json::from_str(&answer.body).expect("JSON");
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "chunk0 chunk1 chunk2 "
    );
    assert_eq!(body["choices"][0]["finish_reason"], "stop");

    let mut request = anthropic_request(false);
    request["tools"][0]["name"] = json!("other");
    let answer = post(&mock, "/v1/messages", &[TOOL], &request);
    let body: Value = serde_json::from_str(&answer.body).expect("JSON");
    assert_eq!(
        body["content"],
        json!([{"type": "text", "text": "chunk0 chunk1 chunk2 "}])
    );
    assert_eq!(body["stop_reason"], "end_turn");
}

// --- OpenAI --------------------------------------------------------------------------------

#[test]
fn openai_json_answers_with_a_call_of_the_steered_tool() {
    let mock = MockUpstream::start().expect("mock");
    let answer = post(
        &mock,
        "/v1/chat/completions",
        &[TOOL, ARGS],
        &openai_request(false),
    );
    assert_eq!(answer.status, 200);
    let body: Value = serde_json::from_str(&answer.body).expect("JSON");
    let choice = &body["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert_eq!(choice["message"]["content"], Value::Null);
    assert_eq!(
        choice["message"]["tool_calls"],
        json!([{"id": "call_mock_0", "type": "function",
                "function": {"name": "get_weather", "arguments": ARGUMENTS}}])
    );
    assert_eq!(body["usage"]["completion_tokens"], 3);
}

#[test]
fn openai_tool_arguments_default_to_an_empty_object() {
    let mock = MockUpstream::start().expect("mock");
    let answer = post(
        &mock,
        "/v1/chat/completions",
        &[TOOL],
        &openai_request(false),
    );
    let body: Value = serde_json::from_str(&answer.body).expect("JSON");
    assert_eq!(
        body["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"],
        "{}"
    );
}

#[test]
fn openai_json_answers_parallel_calls() {
    let mock = MockUpstream::start().expect("mock");
    let answer = post(
        &mock,
        "/v1/chat/completions",
        &[TOOL, ARGS, ("x-mock-tools", "3")],
        &openai_request(false),
    );
    let body: Value = serde_json::from_str(&answer.body).expect("JSON");
    let calls = body["choices"][0]["message"]["tool_calls"]
        .as_array()
        .expect("calls")
        .clone();
    let ids: Vec<&str> = calls.iter().filter_map(|c| c["id"].as_str()).collect();
    assert_eq!(ids, ["call_mock_0", "call_mock_1", "call_mock_2"]);
}

#[test]
fn an_openai_stream_sends_the_call_head_then_argument_fragments() {
    let mock = MockUpstream::start().expect("mock");
    let mut request = openai_request(true);
    request["stream_options"] = json!({"include_usage": true});
    let answer = post(&mock, "/v1/chat/completions", &[TOOL, ARGS], &request);
    assert!(answer.head.contains("content-type: text/event-stream"));
    let events = openai_events(&answer.body);
    let deltas = deltas(&events);
    assert_eq!(
        deltas[0],
        json!({"role": "assistant", "content": null, "refusal": null})
    );
    assert_eq!(
        deltas[1],
        json!({"tool_calls": [{"index": 0, "id": "call_mock_0", "type": "function",
                               "function": {"name": "get_weather", "arguments": ""}}]})
    );
    let fragments: Vec<String> = deltas[2..deltas.len() - 1]
        .iter()
        .map(|d| {
            assert_eq!(d["tool_calls"][0]["index"], 0);
            assert!(d["tool_calls"][0].get("id").is_none());
            d["tool_calls"][0]["function"]["arguments"]
                .as_str()
                .expect("a fragment")
                .to_string()
        })
        .collect();
    assert!(fragments.len() > 2, "several fragments: {fragments:?}");
    assert!(fragments.iter().all(|f| f.chars().count() <= 5));
    assert_eq!(fragments.concat(), ARGUMENTS);
    assert_eq!(deltas[deltas.len() - 1], json!({}));
    assert_eq!(stream_finish(&events), "tool_calls");
    // The usage chunk, then [DONE], as before.
    assert_eq!(events[events.len() - 2]["choices"], json!([]));
    assert_eq!(events[events.len() - 2]["usage"]["completion_tokens"], 3);
    assert_eq!(events[events.len() - 1], "[DONE]");
}

#[test]
fn an_openai_stream_without_include_usage_sends_no_usage_chunk() {
    let mock = MockUpstream::start().expect("mock");
    let answer = post(
        &mock,
        "/v1/chat/completions",
        &[TOOL, ARGS],
        &openai_request(true),
    );
    let events = openai_events(&answer.body);
    assert!(events.iter().all(|e| e.get("usage").is_none()));
    assert_eq!(events[events.len() - 1], "[DONE]");
}

#[test]
fn parallel_calls_in_an_openai_stream_interleave() {
    let mock = MockUpstream::start().expect("mock");
    let answer = post(
        &mock,
        "/v1/chat/completions",
        &[TOOL, ARGS, ("x-mock-tools", "2")],
        &openai_request(true),
    );
    let events = openai_events(&answer.body);
    let calls: Vec<Value> = deltas(&events)
        .into_iter()
        .filter_map(|d| d["tool_calls"].get(0).cloned())
        .collect();
    let heads: Vec<&Value> = calls.iter().filter(|c| c.get("id").is_some()).collect();
    assert_eq!(heads[0]["id"], "call_mock_0");
    assert_eq!(heads[1]["id"], "call_mock_1");
    let order: Vec<u64> = calls
        .iter()
        .filter(|c| c.get("id").is_none())
        .filter_map(|c| c["index"].as_u64())
        .collect();
    assert_eq!(&order[..4], [0, 1, 0, 1]);
    for index in 0..2 {
        let arguments: String = calls
            .iter()
            .filter(|c| c["index"] == index)
            .filter_map(|c| c["function"]["arguments"].as_str())
            .collect();
        assert_eq!(arguments, ARGUMENTS);
    }
    assert_eq!(stream_finish(&events), "tool_calls");
}

fn openai_with_result(stream: bool, result: &str) -> Value {
    let mut request = openai_request(stream);
    let messages = request["messages"].as_array_mut().expect("messages");
    messages.push(
        json!({"role": "assistant", "content": null, "tool_calls": [{"id": "call_mock_0",
        "type": "function", "function": {"name": "get_weather", "arguments": ARGUMENTS}}]}),
    );
    messages.push(json!({"role": "tool", "tool_call_id": "call_mock_0", "content": result}));
    request
}

#[test]
fn openai_answers_a_tool_result_with_its_text() {
    let mock = MockUpstream::start().expect("mock");
    let answer = post(
        &mock,
        "/v1/chat/completions",
        &[TOOL, ARGS],
        &openai_with_result(false, "sunny, 21 C"),
    );
    let body: Value = serde_json::from_str(&answer.body).expect("JSON");
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "tool result: sunny, 21 C"
    );
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert!(body["choices"][0]["message"].get("tool_calls").is_none());

    let answer = post(
        &mock,
        "/v1/chat/completions",
        &[TOOL, ARGS],
        &openai_with_result(true, "sunny, 21 C"),
    );
    let events = openai_events(&answer.body);
    let text: String = deltas(&events)
        .iter()
        .filter_map(|d| d["content"].as_str())
        .collect();
    assert_eq!(text, "tool result: sunny, 21 C");
    assert_eq!(stream_finish(&events), "stop");
}

#[test]
fn a_tool_result_is_cut_to_200_characters() {
    let mock = MockUpstream::start().expect("mock");
    let long = "é".repeat(300);
    let answer = post(
        &mock,
        "/v1/chat/completions",
        &[TOOL],
        &openai_with_result(false, &long),
    );
    let body: Value = serde_json::from_str(&answer.body).expect("JSON");
    assert_eq!(
        body["choices"][0]["message"]["content"],
        format!("tool result: {}", "é".repeat(200))
    );
}

#[test]
fn openai_answers_carry_reasoning_content() {
    let mock = MockUpstream::start().expect("mock");
    let reasoning = ("x-mock-reasoning", "Let me think about this.");
    let request = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]});
    let answer = post(&mock, "/v1/chat/completions", &[reasoning], &request);
    let body: Value = serde_json::from_str(&answer.body).expect("JSON");
    assert_eq!(
        body["choices"][0]["message"]["reasoning_content"],
        "Let me think about this."
    );
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "chunk0 chunk1 chunk2 "
    );

    let mut request = request;
    request["stream"] = json!(true);
    let answer = post(&mock, "/v1/chat/completions", &[reasoning], &request);
    let deltas = deltas(&openai_events(&answer.body));
    let first_content = deltas
        .iter()
        .position(|d| d["content"].as_str().is_some_and(|c| !c.is_empty()))
        .expect("content");
    let last_reasoning = deltas
        .iter()
        .rposition(|d| d.get("reasoning_content").is_some())
        .expect("reasoning");
    assert!(last_reasoning < first_content);
    let reasoning: String = deltas
        .iter()
        .filter_map(|d| d["reasoning_content"].as_str())
        .collect();
    assert_eq!(reasoning, "Let me think about this.");
    assert!(
        deltas
            .iter()
            .filter(|d| d.get("reasoning_content").is_some())
            .count()
            > 1
    );
}

// --- Anthropic -----------------------------------------------------------------------------

#[test]
fn anthropic_json_answers_with_a_tool_use() {
    let mock = MockUpstream::start().expect("mock");
    let answer = post(
        &mock,
        "/v1/messages",
        &[TOOL, ARGS],
        &anthropic_request(false),
    );
    let body: Value = serde_json::from_str(&answer.body).expect("JSON");
    assert_eq!(body["stop_reason"], "tool_use");
    assert_eq!(
        body["content"],
        json!([{"type": "text", "text": "calling get_weather"},
               {"type": "tool_use", "id": "toolu_mock_0", "name": "get_weather",
                "input": {"city": "Paris", "days": 3}}])
    );
    assert_eq!(body["usage"]["output_tokens"], 3);
}

#[test]
fn anthropic_json_answers_parallel_tool_uses_after_thinking() {
    let mock = MockUpstream::start().expect("mock");
    let answer = post(
        &mock,
        "/v1/messages",
        &[TOOL, ("x-mock-tools", "2"), ("x-mock-reasoning", "hmm")],
        &anthropic_request(false),
    );
    let body: Value = serde_json::from_str(&answer.body).expect("JSON");
    assert_eq!(
        body["content"],
        json!([{"type": "thinking", "thinking": "hmm", "signature": "sig-mock-1"},
               {"type": "text", "text": "calling get_weather"},
               {"type": "tool_use", "id": "toolu_mock_0", "name": "get_weather", "input": {}},
               {"type": "tool_use", "id": "toolu_mock_1", "name": "get_weather", "input": {}}])
    );
}

#[test]
fn an_anthropic_stream_sends_a_tool_use_block_in_fragments() {
    let mock = MockUpstream::start().expect("mock");
    let answer = post(
        &mock,
        "/v1/messages",
        &[TOOL, ARGS],
        &anthropic_request(true),
    );
    let events = anthropic_events(&answer.body);
    let (start, rest) = events.split_first().expect("message_start");
    assert_eq!(start.0, "message_start");
    assert!(start.1["message"]["usage"]["input_tokens"].as_u64() > Some(0));
    let at = |name: &str, index: u64| {
        rest.iter()
            .position(|(n, d)| n == name && d["index"] == index)
            .unwrap_or_else(|| panic!("{name} {index}"))
    };
    // The text block first, then the tool_use block.
    assert_eq!(
        rest[at("content_block_start", 0)].1["content_block"],
        json!({"type": "text", "text": ""})
    );
    let text: String = rest
        .iter()
        .filter(|(_, d)| d["index"] == 0 && d["delta"]["type"] == "text_delta")
        .filter_map(|(_, d)| d["delta"]["text"].as_str())
        .collect();
    assert_eq!(text, "calling get_weather");
    assert!(at("content_block_stop", 0) < at("content_block_start", 1));
    assert_eq!(
        rest[at("content_block_start", 1)].1["content_block"],
        json!({"type": "tool_use", "id": "toolu_mock_0", "name": "get_weather", "input": {}})
    );
    let fragments: Vec<&str> = rest
        .iter()
        .filter(|(_, d)| d["index"] == 1 && d["delta"]["type"] == "input_json_delta")
        .filter_map(|(_, d)| d["delta"]["partial_json"].as_str())
        .collect();
    assert!(fragments.len() > 2, "several fragments: {fragments:?}");
    assert_eq!(fragments.concat(), ARGUMENTS);
    assert!(at("content_block_stop", 1) > at("content_block_start", 1));
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names[names.len() - 2..], ["message_delta", "message_stop"]);
    let delta = &events[events.len() - 2].1;
    assert_eq!(
        delta["delta"],
        json!({"stop_reason": "tool_use", "stop_sequence": null})
    );
    assert_eq!(delta["usage"], json!({"output_tokens": 3}));
}

#[test]
fn parallel_tool_uses_in_an_anthropic_stream_are_blocks_in_turn() {
    let mock = MockUpstream::start().expect("mock");
    let answer = post(
        &mock,
        "/v1/messages",
        &[TOOL, ARGS, ("x-mock-tools", "2")],
        &anthropic_request(true),
    );
    let starts: Vec<Value> = anthropic_events(&answer.body)
        .into_iter()
        .filter(|(n, _)| n == "content_block_start")
        .map(|(_, d)| {
            json!([
                d["index"],
                d["content_block"]["type"],
                d["content_block"]["id"]
            ])
        })
        .collect();
    assert_eq!(
        starts,
        [
            json!([0, "text", null]),
            json!([1, "tool_use", "toolu_mock_0"]),
            json!([2, "tool_use", "toolu_mock_1"])
        ]
    );
}

fn anthropic_with_result(stream: bool, result: Value) -> Value {
    let mut request = anthropic_request(stream);
    let messages = request["messages"].as_array_mut().expect("messages");
    messages.push(json!({"role": "assistant", "content": [
        {"type": "tool_use", "id": "toolu_mock_0", "name": "get_weather", "input": {}}]}));
    messages.push(json!({"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_mock_0", "content": result},
        {"type": "text", "text": "not a result"}]}));
    request
}

#[test]
fn anthropic_answers_a_tool_result_with_its_text() {
    let mock = MockUpstream::start().expect("mock");
    let answer = post(
        &mock,
        "/v1/messages",
        &[TOOL],
        &anthropic_with_result(false, json!("sunny")),
    );
    let body: Value = serde_json::from_str(&answer.body).expect("JSON");
    assert_eq!(
        body["content"],
        json!([{"type": "text", "text": "tool result: sunny"}])
    );
    assert_eq!(body["stop_reason"], "end_turn");

    // Block content, streamed.
    let answer = post(
        &mock,
        "/v1/messages",
        &[TOOL],
        &anthropic_with_result(true, json!([{"type": "text", "text": "rain"}])),
    );
    let events = anthropic_events(&answer.body);
    let text: String = events
        .iter()
        .filter_map(|(_, d)| d["delta"]["text"].as_str())
        .collect();
    assert_eq!(text, "tool result: rain");
    assert!(events
        .iter()
        .all(|(_, d)| d["content_block"]["type"] != "tool_use"));
    assert_eq!(
        events[events.len() - 2].1["delta"]["stop_reason"],
        "end_turn"
    );
}

#[test]
fn an_anthropic_stream_opens_with_a_thinking_block() {
    let mock = MockUpstream::start().expect("mock");
    let request = json!({"model": "claude-sonnet-4-5", "max_tokens": 100, "stream": true,
        "messages": [{"role": "user", "content": "hi"}]});
    let answer = post(
        &mock,
        "/v1/messages",
        &[("x-mock-reasoning", "Let me think about this.")],
        &request,
    );
    let events = anthropic_events(&answer.body);
    let kinds: Vec<String> = events
        .iter()
        .map(|(n, d)| match n.as_str() {
            "content_block_start" => format!("start {} {}", d["index"], d["content_block"]["type"]),
            "content_block_delta" => format!("delta {} {}", d["index"], d["delta"]["type"]),
            "content_block_stop" => format!("stop {}", d["index"]),
            other => other.to_string(),
        })
        .collect();
    let mut expected = vec!["message_start", "start 0 \"thinking\"", "ping"];
    expected.extend(["delta 0 \"thinking_delta\""; 3]);
    expected.extend(["delta 0 \"signature_delta\"", "stop 0", "start 1 \"text\""]);
    expected.extend(["delta 1 \"text_delta\""; 3]);
    expected.extend(["stop 1", "message_delta", "message_stop"]);
    assert_eq!(kinds, expected);
    assert_eq!(
        events[1].1["content_block"],
        json!({"type": "thinking", "thinking": "", "signature": ""})
    );
    let thinking: String = events
        .iter()
        .filter_map(|(_, d)| d["delta"]["thinking"].as_str())
        .collect();
    assert_eq!(thinking, "Let me think about this.");
    assert!(events
        .iter()
        .any(|(_, d)| d["delta"]["signature"] == "sig-mock-1"));
    assert_eq!(
        events[events.len() - 2].1["usage"],
        json!({"output_tokens": 3})
    );
}

#[test]
fn anthropic_json_answers_open_with_thinking() {
    let mock = MockUpstream::start().expect("mock");
    let request = json!({"model": "claude-sonnet-4-5", "max_tokens": 100,
        "messages": [{"role": "user", "content": "hi"}]});
    let answer = post(
        &mock,
        "/v1/messages",
        &[("x-mock-reasoning", "deep")],
        &request,
    );
    let body: Value = serde_json::from_str(&answer.body).expect("JSON");
    assert_eq!(
        body["content"],
        json!([{"type": "thinking", "thinking": "deep", "signature": "sig-mock-1"},
               {"type": "text", "text": "chunk0 chunk1 chunk2 "}])
    );
}

// --- The SQL writer ------------------------------------------------------------------------

#[test]
fn a_mock_sql_model_writes_the_query_its_question_asks_for_in_both_apis() {
    let mock = MockUpstream::start().expect("mock");
    let question = |text: &str| {
        json!({"model": "mock-sql-writer", "max_tokens": 64,
               "messages": [{"role": "system", "content": "Write SQL."}, {"role": "user", "content": text}]})
    };
    let answer = post(
        &mock,
        "/v1/chat/completions",
        &[],
        &question("What did each model cost?"),
    );
    let body: Value = serde_json::from_str(&answer.body).expect("JSON");
    let text = body["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(
        text.contains(
            "```sql\nSELECT model, ROUND(SUM(cost_usd), 6) AS spend_usd FROM ask_requests"
        ),
        "{text}"
    );

    let answer = post(
        &mock,
        "/v1/messages",
        &[],
        &question("Which source asked most?"),
    );
    let body: Value = serde_json::from_str(&answer.body).expect("JSON");
    let text = body["content"][0]["text"].as_str().unwrap();
    assert!(
        text.contains("SELECT source, COUNT(*) AS requests FROM ask_requests"),
        "{text}"
    );

    // Any other model answers as before.
    let mut other = question("What did each model cost?");
    other["model"] = json!("gpt-4o");
    let answer = post(&mock, "/v1/chat/completions", &[], &other);
    let body: Value = serde_json::from_str(&answer.body).expect("JSON");
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "chunk0 chunk1 chunk2 "
    );
}
