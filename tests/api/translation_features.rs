//! Translation of what goes beyond text, through the real gateway against the mock upstreams,
//! both ways, JSON and streams: tools (definitions, `tool_choice`, calls with their ids, results,
//! parallel calls, names too long for OpenAI), thinking, images and PDFs, sampling parameters,
//! `response_format` toward Claude, failover from one API to the other, and upstream errors in
//! the client's shape. Each test asserts what the upstream received, what the client got and the
//! ledger's record.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::helpers::*;
use crate::translation::{app_and_mock, chat_requests, events, header, streamed, CLAUDE};

const WEATHER: &str = "get_weather";
const ARGS: &str = r#"{"city":"Paris","unit":"celsius"}"#;
const REASONING: &str = "Let me think about it.";

/// An OpenAI function tool.
fn openai_tool(name: &str) -> Value {
    json!({"type": "function", "function": {"name": name, "description": "The weather of a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}})
}

/// The same tool as Anthropic defines it.
fn anthropic_tool(name: &str) -> Value {
    json!({"name": name, "description": "The weather of a city.",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}})
}

/// The chunks of an OpenAI client's stream, which ends with `[DONE]`.
fn openai_chunks(text: &str) -> Vec<Value> {
    let events = events(text);
    assert_eq!(
        events.last().map(|e| e.1.as_str()),
        Some("[DONE]"),
        "{text}"
    );
    events[..events.len() - 1]
        .iter()
        .map(|(name, data)| {
            assert!(name.is_none(), "OpenAI chunks have no event names: {text}");
            serde_json::from_str(data).unwrap()
        })
        .collect()
}

/// The `content` deltas of an OpenAI stream, joined.
fn openai_content(chunks: &[Value]) -> String {
    chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect()
}

/// The non-null finish reasons of an OpenAI stream.
fn finish_reasons(chunks: &[Value]) -> Vec<Value> {
    chunks
        .iter()
        .map(|c| c["choices"][0]["finish_reason"].clone())
        .filter(|f| !f.is_null())
        .collect()
}

/// An Anthropic client's stream, checked event by event: it opens with `message_start` and
/// closes with `message_stop`, block indices count up from 0, every delta follows its block's
/// start and comes before its stop, and `message_delta` comes once every block is stopped.
#[derive(Default, Debug)]
struct Blocks {
    /// Each block's `content_block` of its start, by index.
    starts: Vec<Value>,
    /// Each block's text, thinking, partial JSON and signature deltas, joined.
    text: Vec<String>,
    thinking: Vec<String>,
    json: Vec<String>,
    signature: Vec<String>,
    stop_reason: Value,
    usage: Value,
}

fn anthropic_blocks(text: &str) -> Blocks {
    let events = events(text);
    let names: Vec<&str> = events
        .iter()
        .map(|(n, _)| n.as_deref().unwrap_or(""))
        .collect();
    assert_eq!(names.first(), Some(&"message_start"), "{text}");
    assert_eq!(names.last(), Some(&"message_stop"), "{text}");
    let mut blocks = Blocks::default();
    let mut open = BTreeSet::new();
    let mut deltas = 0;
    for (name, data) in &events {
        let event: Value = serde_json::from_str(data).unwrap();
        assert_eq!(event["type"].as_str(), name.as_deref(), "{text}");
        let index = event["index"].as_u64().map(|i| i as usize);
        match name.as_deref().unwrap() {
            "content_block_start" => {
                let i = index.unwrap();
                assert_eq!(i, blocks.starts.len(), "block indices count up: {text}");
                open.insert(i);
                blocks.starts.push(event["content_block"].clone());
                for list in [
                    &mut blocks.text,
                    &mut blocks.thinking,
                    &mut blocks.json,
                    &mut blocks.signature,
                ] {
                    list.push(String::new());
                }
            }
            "content_block_delta" => {
                let i = index.unwrap();
                assert!(open.contains(&i), "a delta for block {i}, not open: {text}");
                deltas += 1;
                let delta = &event["delta"];
                let (list, key) = match delta["type"].as_str().unwrap() {
                    "text_delta" => (&mut blocks.text, "text"),
                    "thinking_delta" => (&mut blocks.thinking, "thinking"),
                    "input_json_delta" => (&mut blocks.json, "partial_json"),
                    "signature_delta" => (&mut blocks.signature, "signature"),
                    other => panic!("unknown delta {other}: {text}"),
                };
                list[i].push_str(delta[key].as_str().unwrap());
            }
            "content_block_stop" => {
                assert!(
                    open.remove(&index.unwrap()),
                    "a stop for a block not open: {text}"
                );
            }
            "message_delta" => {
                assert!(open.is_empty(), "message_delta with blocks open: {text}");
                assert!(blocks.stop_reason.is_null(), "one message_delta: {text}");
                blocks.stop_reason = event["delta"]["stop_reason"].clone();
                blocks.usage = event["usage"].clone();
            }
            _ => {}
        }
    }
    assert!(deltas > 0, "{text}");
    blocks
}

/// The record's cost is its tokens at the model's prices (USD per million, no cache use).
fn assert_cost(record: &Value, input_per_mtok: f64, output_per_mtok: f64) {
    let input = record["input_tokens"].as_f64().unwrap();
    let output = record["output_tokens"].as_f64().unwrap();
    let expected = (input * input_per_mtok + output * output_per_mtok) / 1e6;
    let cost = record["cost_usd"].as_f64().unwrap();
    assert!(
        (cost - expected).abs() < 1e-9,
        "cost {cost}, expected {expected}: {record}"
    );
}

// ---- Tools.

#[actix_rt::test]
async fn an_openai_client_calls_a_tool_of_claude_and_sends_the_result_back_under_the_same_id() {
    let (app, mock) = app_and_mock().await;
    let steer = [("x-mock-tool", WEATHER), ("x-mock-tool-args", ARGS)];
    let body = json!({"model": CLAUDE, "tools": [openai_tool(WEATHER)], "tool_choice": "auto",
                      "messages": [{"role": "user", "content": "Weather in Paris?"}]});
    let response = app.post("/v1/chat/completions", &body, &steer).await;
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();

    let sent = mock.last_request().unwrap().json();
    assert_eq!(sent["tools"], json!([anthropic_tool(WEATHER)]));
    assert_eq!(sent["tool_choice"], json!({"type": "auto"}));
    let choice = &answer["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls", "{answer}");
    assert_eq!(choice["message"]["content"], "calling get_weather");
    assert_eq!(
        choice["message"]["tool_calls"],
        json!([{"id": "toolu_mock_0", "type": "function",
                "function": {"name": WEATHER, "arguments": ARGS}}])
    );

    // The result goes back as a tool_result under Anthropic's id.
    let body = json!({"model": CLAUDE, "tools": [openai_tool(WEATHER)], "messages": [
        {"role": "user", "content": "Weather in Paris?"},
        choice["message"].clone(),
        {"role": "tool", "tool_call_id": "toolu_mock_0", "content": "18 degrees, sunny"},
    ]});
    let response = app.post("/v1/chat/completions", &body, &steer).await;
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    let sent = mock.last_request().unwrap();
    let upstream = sent.json();
    assert_eq!(
        upstream["messages"],
        json!([
            {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]},
            {"role": "assistant", "content": [
                {"type": "text", "text": "calling get_weather"},
                {"type": "tool_use", "id": "toolu_mock_0", "name": WEATHER,
                 "input": {"city": "Paris", "unit": "celsius"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_mock_0", "content": "18 degrees, sunny"}]},
        ])
    );
    assert_eq!(
        answer["choices"][0]["message"]["content"],
        "tool result: 18 degrees, sunny"
    );
    assert_eq!(answer["choices"][0]["finish_reason"], "stop");
    assert!(answer["choices"][0]["message"].get("tool_calls").is_none());

    let records = app.records(2).await;
    let record = &records[0];
    assert_eq!(record["translated"], "openai->anthropic");
    assert_eq!(record["outcome"], "ok");
    assert_eq!(record["attempts"], 1);
    assert_eq!(
        record["input_tokens"],
        mock_upstream::prompt_tokens(&sent.body)
    );
    assert_eq!(record["output_tokens"], 3);
    assert_eq!(record["cached_input_tokens"], 0);
    assert_cost(record, 3.0, 15.0);
}

#[actix_rt::test]
async fn an_anthropic_client_calls_a_tool_of_gpt_4o_and_sends_the_result_back_under_the_same_id() {
    let (app, mock) = app_and_mock().await;
    let steer = [("x-mock-tool", WEATHER), ("x-mock-tool-args", ARGS)];
    let body = json!({"model": "gpt-4o", "max_tokens": 200, "tools": [anthropic_tool(WEATHER)],
                      "tool_choice": {"type": "auto"},
                      "messages": [{"role": "user", "content": "Weather in Paris?"}]});
    let response = app.post("/v1/messages", &body, &steer).await;
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();

    let sent = mock.last_request().unwrap().json();
    assert_eq!(sent["tools"], json!([openai_tool(WEATHER)]));
    assert_eq!(sent["tool_choice"], "auto");
    assert_eq!(answer["stop_reason"], "tool_use", "{answer}");
    assert_eq!(
        answer["content"],
        json!([{"type": "tool_use", "id": "call_mock_0", "name": WEATHER,
                "input": {"city": "Paris", "unit": "celsius"}}])
    );

    let body = json!({"model": "gpt-4o", "max_tokens": 200, "tools": [anthropic_tool(WEATHER)],
    "messages": [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": answer["content"].clone()},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "call_mock_0", "content": "18 degrees, sunny"}]},
    ]});
    let response = app.post("/v1/messages", &body, &steer).await;
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    let sent = mock.last_request().unwrap();
    assert_eq!(
        sent.json()["messages"],
        json!([
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "call_mock_0", "type": "function",
                "function": {"name": WEATHER, "arguments": ARGS}}]},
            {"role": "tool", "tool_call_id": "call_mock_0", "content": "18 degrees, sunny"},
        ])
    );
    assert_eq!(
        answer["content"],
        json!([{"type": "text", "text": "tool result: 18 degrees, sunny"}])
    );
    assert_eq!(answer["stop_reason"], "end_turn");

    let records = app.records(2).await;
    let record = &records[0];
    assert_eq!(record["translated"], "anthropic->openai");
    assert_eq!(record["provider_id"], "openai");
    assert_eq!(record["outcome"], "ok");
    assert_eq!(
        record["input_tokens"],
        mock_upstream::prompt_tokens(&sent.body)
    );
    assert_eq!(record["output_tokens"], 3);
    assert_cost(record, 2.5, 10.0);
}

#[actix_rt::test]
async fn tool_choice_is_mapped_both_ways() {
    let (app, mock) = app_and_mock().await;
    for (choice, expected) in [
        (json!("auto"), json!({"type": "auto"})),
        (json!("required"), json!({"type": "any"})),
        (json!("none"), json!({"type": "none"})),
        (
            json!({"type": "function", "function": {"name": WEATHER}}),
            json!({"type": "tool", "name": WEATHER}),
        ),
    ] {
        let body = json!({"model": CLAUDE, "tools": [openai_tool(WEATHER)], "tool_choice": choice,
                          "messages": [{"role": "user", "content": "Hi"}]});
        let response = app.post("/v1/chat/completions", &body, &[]).await;
        assert_eq!(response.status(), 200, "{choice}");
        let sent = mock.last_request().unwrap().json();
        assert_eq!(sent["tool_choice"], expected, "{choice}");
        assert_eq!(sent["tools"][0]["name"], WEATHER);
    }
    for (choice, expected) in [
        (json!({"type": "auto"}), json!("auto")),
        (json!({"type": "any"}), json!("required")),
        (json!({"type": "none"}), json!("none")),
        (
            json!({"type": "tool", "name": WEATHER}),
            json!({"type": "function", "function": {"name": WEATHER}}),
        ),
    ] {
        let body = json!({"model": "gpt-4o", "max_tokens": 64, "tools": [anthropic_tool(WEATHER)],
                          "tool_choice": choice, "messages": [{"role": "user", "content": "Hi"}]});
        let response = app.post("/v1/messages", &body, &[]).await;
        assert_eq!(response.status(), 200, "{choice}");
        let sent = mock.last_request().unwrap().json();
        assert_eq!(sent["tool_choice"], expected, "{choice}");
        assert_eq!(sent["tools"][0]["function"]["name"], WEATHER);
    }
    // With parallel use disabled, each API's own switch.
    let body = json!({"model": CLAUDE, "tools": [openai_tool(WEATHER)], "parallel_tool_calls": false,
                      "messages": [{"role": "user", "content": "Hi"}]});
    assert_eq!(
        app.post("/v1/chat/completions", &body, &[]).await.status(),
        200
    );
    assert_eq!(
        mock.last_request().unwrap().json()["tool_choice"],
        json!({"type": "auto", "disable_parallel_tool_use": true})
    );
    let body = json!({"model": "gpt-4o", "max_tokens": 64, "tools": [anthropic_tool(WEATHER)],
                      "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
                      "messages": [{"role": "user", "content": "Hi"}]});
    assert_eq!(app.post("/v1/messages", &body, &[]).await.status(), 200);
    let sent = mock.last_request().unwrap().json();
    assert_eq!(sent["tool_choice"], "required");
    assert_eq!(sent["parallel_tool_calls"], false);
    let records = app.records(10).await;
    assert!(records.iter().all(|r| r["status"] == 200));
}

#[actix_rt::test]
async fn an_anthropic_client_streams_three_parallel_tool_calls_of_gpt_4o_block_by_block() {
    let (app, mock) = app_and_mock().await;
    let mut body = json!({"model": "gpt-4o", "max_tokens": 200, "stream": true,
                          "tools": [anthropic_tool(WEATHER)],
                          "messages": [{"role": "user", "content": "Weather in three cities?"}]});
    let steer = [
        ("x-mock-tool", WEATHER),
        ("x-mock-tool-args", ARGS),
        ("x-mock-tools", "3"),
    ];
    for model in ["gpt-4o", "llama3.1:8b"] {
        body["model"] = json!(model);
        let response = app.post("/v1/messages", &body, &steer).await;
        assert_eq!(response.status(), 200);
        let text = streamed(response).await;
        let blocks = anthropic_blocks(&text);
        assert_eq!(blocks.starts.len(), 3, "{text}");
        for (i, start) in blocks.starts.iter().enumerate() {
            assert_eq!(
                start,
                &json!({"type": "tool_use", "id": format!("call_mock_{i}"), "name": WEATHER, "input": {}}),
                "{text}"
            );
            assert_eq!(blocks.json[i], ARGS, "block {i}: {text}");
            assert_eq!(blocks.text[i], "");
        }
        assert_eq!(blocks.stop_reason, "tool_use");
        assert_eq!(blocks.usage["output_tokens"], 3);
        // The upstream interleaved the calls' fragments.
        let sent = mock.last_request().unwrap();
        assert_eq!(sent.json()["model"], model);
        assert_eq!(sent.json()["stream_options"]["include_usage"], true);
    }
    let records = app.records(2).await;
    for record in &records {
        assert_eq!(record["translated"], "anthropic->openai");
        assert_eq!(record["output_tokens"], 3);
        assert_eq!(record["outcome"], "ok");
    }
    assert_eq!(records[0]["provider_id"], "ollama");
    assert_eq!(records[1]["provider_id"], "openai");
}

#[actix_rt::test]
async fn an_openai_client_streams_three_parallel_tool_calls_of_claude_index_by_index() {
    let (app, mock) = app_and_mock().await;
    let body = json!({"model": CLAUDE, "stream": true, "stream_options": {"include_usage": true},
                      "tools": [openai_tool(WEATHER)],
                      "messages": [{"role": "user", "content": "Weather in three cities?"}]});
    let response = app
        .post(
            "/v1/chat/completions",
            &body,
            &[
                ("x-mock-tool", WEATHER),
                ("x-mock-tool-args", ARGS),
                ("x-mock-tools", "3"),
            ],
        )
        .await;
    assert_eq!(response.status(), 200);
    let text = streamed(response).await;
    let chunks = openai_chunks(&text);
    let mut calls: Vec<(Value, Value, String)> = Vec::new();
    for chunk in &chunks {
        for call in chunk["choices"][0]["delta"]["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let index = call["index"].as_u64().unwrap() as usize;
            if index == calls.len() {
                calls.push((
                    call["id"].clone(),
                    call["function"]["name"].clone(),
                    String::new(),
                ));
            } else {
                assert!(index < calls.len(), "a call's index skips ahead: {text}");
                assert!(call.get("id").is_none(), "the id comes once: {text}");
            }
            calls[index]
                .2
                .push_str(call["function"]["arguments"].as_str().unwrap());
        }
    }
    assert_eq!(calls.len(), 3, "{text}");
    for (i, (id, name, arguments)) in calls.iter().enumerate() {
        assert_eq!(id, &json!(format!("toolu_mock_{i}")));
        assert_eq!(name, WEATHER);
        assert_eq!(arguments, ARGS, "call {i}: {text}");
    }
    assert_eq!(openai_content(&chunks), "calling get_weather");
    assert_eq!(finish_reasons(&chunks), vec![json!("tool_calls")]);
    assert_eq!(chunks.last().unwrap()["usage"]["completion_tokens"], 3);

    let sent = mock.last_request().unwrap();
    assert_eq!(sent.path, "/v1/messages");
    let record = &app.records(1).await[0];
    assert_eq!(record["translated"], "openai->anthropic");
    assert_eq!(record["output_tokens"], 3);
    assert_eq!(
        record["input_tokens"],
        mock_upstream::prompt_tokens(&sent.body)
    );
}

#[actix_rt::test]
async fn a_tool_name_longer_than_64_characters_reaches_openai_shortened_and_comes_back_whole() {
    let (app, mock) = app_and_mock().await;
    let long: String = format!("mcp__some_server__{}", "get_weather_forecast_".repeat(3))
        .chars()
        .take(70)
        .collect();
    assert_eq!(long.len(), 70);
    let short = llm_gateway::translate::short_tool_name(&long).into_owned();
    assert!(short.len() <= 64, "{short}");
    assert!(
        short
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
        "{short}"
    );
    assert_ne!(short, long);
    let steer = [
        ("x-mock-tool", short.as_str()),
        ("x-mock-tool-args", r#"{"city":"Rome"}"#),
    ];
    let mut body = json!({"model": "gpt-4o", "max_tokens": 200,
        "tools": [anthropic_tool(&long), anthropic_tool(WEATHER)],
        "tool_choice": {"type": "tool", "name": long},
        "messages": [{"role": "user", "content": "Weather in Rome?"}]});

    let response = app.post("/v1/messages", &body, &steer).await;
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    let sent = mock.last_request().unwrap().json();
    assert_eq!(sent["tools"][0]["function"]["name"], short.as_str());
    assert_eq!(
        sent["tools"][1]["function"]["name"], WEATHER,
        "a valid name is kept"
    );
    assert_eq!(
        sent["tool_choice"],
        json!({"type": "function", "function": {"name": short}})
    );
    assert_eq!(
        answer["content"],
        json!([{"type": "tool_use", "id": "call_mock_0", "name": long, "input": {"city": "Rome"}}])
    );

    body["stream"] = json!(true);
    let response = app.post("/v1/messages", &body, &steer).await;
    assert_eq!(response.status(), 200);
    let text = streamed(response).await;
    let blocks = anthropic_blocks(&text);
    assert_eq!(
        blocks.starts,
        vec![json!({"type": "tool_use", "id": "call_mock_0", "name": long, "input": {}})]
    );
    assert_eq!(blocks.json[0], r#"{"city":"Rome"}"#);
    assert!(
        !text.contains(&short),
        "the short name stays upstream: {text}"
    );

    // The history's tool use carries the same short name as the tool's definition.
    let body = json!({"model": "gpt-4o", "max_tokens": 200, "tools": [anthropic_tool(&long)],
    "messages": [
        {"role": "user", "content": "Weather in Rome?"},
        {"role": "assistant", "content": [
            {"type": "tool_use", "id": "toolu_earlier", "name": long, "input": {"city": "Rome"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_earlier", "content": "sunny"}]},
    ]});
    let response = app.post("/v1/messages", &body, &steer).await;
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    let sent = mock.last_request().unwrap().json();
    assert_eq!(sent["tools"][0]["function"]["name"], short.as_str());
    assert_eq!(
        sent["messages"][1]["tool_calls"][0]["function"]["name"],
        short.as_str()
    );
    assert_eq!(sent["messages"][2]["tool_call_id"], "toolu_earlier");
    assert!(!sent.to_string().contains(&long), "{sent}");
    assert_eq!(answer["content"][0]["text"], "tool result: sunny");
    let records = app.records(3).await;
    assert!(records
        .iter()
        .all(|r| r["translated"] == "anthropic->openai" && r["status"] == 200));
}

// ---- Thinking.

#[actix_rt::test]
async fn an_openai_client_gets_claudes_thinking_and_can_send_it_back_signed() {
    let (app, mock) = app_and_mock().await;
    let steer = [("x-mock-reasoning", REASONING)];
    let mut body = json!({"model": CLAUDE, "reasoning_effort": "low",
                          "messages": [{"role": "user", "content": "Hello"}]});
    let response = app.post("/v1/chat/completions", &body, &steer).await;
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    let sent = mock.last_request().unwrap().json();
    assert_eq!(
        sent["thinking"],
        json!({"type": "enabled", "budget_tokens": 2048})
    );
    assert_eq!(sent["max_tokens"], 64000);
    let message = &answer["choices"][0]["message"];
    assert_eq!(message["content"], mock_upstream::reply_text(3));
    assert_eq!(message["reasoning_content"], REASONING);
    let thinking = json!({"type": "thinking", "thinking": REASONING, "signature": "sig-mock-1"});
    assert_eq!(message["thinking_blocks"], json!([thinking]));

    // Streamed: the reasoning in deltas of its own, before the content; the signature after.
    body["stream"] = json!(true);
    body["reasoning_effort"] = json!("high");
    let response = app.post("/v1/chat/completions", &body, &steer).await;
    assert_eq!(response.status(), 200);
    let text = streamed(response).await;
    let chunks = openai_chunks(&text);
    let sent = mock.last_request().unwrap().json();
    assert_eq!(
        sent["thinking"],
        json!({"type": "enabled", "budget_tokens": 16384})
    );
    let deltas: Vec<&Value> = chunks.iter().map(|c| &c["choices"][0]["delta"]).collect();
    let reasoning: String = deltas
        .iter()
        .filter_map(|d| d["reasoning_content"].as_str())
        .collect();
    assert_eq!(reasoning, REASONING);
    assert_eq!(openai_content(&chunks), mock_upstream::reply_text(3));
    assert!(
        deltas
            .iter()
            .all(|d| d["reasoning_content"].is_null() || d["content"].is_null()),
        "{text}"
    );
    let last_reasoning = deltas
        .iter()
        .rposition(|d| d["reasoning_content"].is_string())
        .unwrap();
    let first_content = deltas
        .iter()
        .position(|d| d["content"].as_str().is_some_and(|c| !c.is_empty()))
        .unwrap();
    assert!(last_reasoning < first_content, "{text}");
    let signed: Vec<&Value> = deltas
        .iter()
        .filter(|d| !d["thinking_blocks"].is_null())
        .copied()
        .collect();
    assert_eq!(
        signed,
        vec![
            &json!({"thinking_blocks": [{"type": "thinking", "thinking": "", "signature": "sig-mock-1"}]})
        ]
    );

    // The thinking block sent back on the assistant turn reaches Anthropic as it came.
    let body = json!({"model": CLAUDE, "reasoning_effort": "low", "messages": [
        {"role": "user", "content": "Hello"},
        message.clone(),
        {"role": "user", "content": "And then?"},
    ]});
    let response = app.post("/v1/chat/completions", &body, &[]).await;
    assert_eq!(response.status(), 200);
    let sent = mock.last_request().unwrap().json();
    assert_eq!(
        sent["messages"][1],
        json!({"role": "assistant", "content": [thinking,
            {"type": "text", "text": mock_upstream::reply_text(3)}]})
    );
    let records = app.records(3).await;
    assert!(records
        .iter()
        .all(|r| r["translated"] == "openai->anthropic" && r["outcome"] == "ok"));
}

#[actix_rt::test]
async fn an_anthropic_client_gets_the_reasoning_of_gpt_4o_and_of_a_local_model_as_a_thinking_block_first(
) {
    let (app, _mock) = app_and_mock().await;
    let steer = [("x-mock-reasoning", REASONING)];
    for model in ["gpt-4o", "llama3.1:8b"] {
        let response = app
            .post("/v1/messages", &messages_body(model, false), &steer)
            .await;
        assert_eq!(response.status(), 200);
        let answer: Value = response.json().await.unwrap();
        assert_eq!(
            answer["content"],
            json!([
                {"type": "thinking", "thinking": REASONING, "signature": ""},
                {"type": "text", "text": mock_upstream::reply_text(3)},
            ]),
            "{model}"
        );

        let response = app
            .post("/v1/messages", &messages_body(model, true), &steer)
            .await;
        assert_eq!(response.status(), 200);
        let text = streamed(response).await;
        let blocks = anthropic_blocks(&text);
        assert_eq!(
            blocks.starts,
            vec![
                json!({"type": "thinking", "thinking": "", "signature": ""}),
                json!({"type": "text", "text": ""}),
            ],
            "{text}"
        );
        assert_eq!(blocks.thinking[0], REASONING);
        assert_eq!(blocks.text[0], "");
        assert_eq!(blocks.text[1], mock_upstream::reply_text(3));
        assert_eq!(blocks.stop_reason, "end_turn");
    }
    let records = app.records(4).await;
    assert!(records
        .iter()
        .all(|r| r["translated"] == "anthropic->openai" && r["output_tokens"] == 3));
}

#[actix_rt::test]
async fn a_thinking_budget_becomes_reasoning_effort_only_for_a_model_that_reasons() {
    let (app, mock) = app_and_mock().await;
    let catalog = llm_gateway::catalog::Catalog::embedded().unwrap();
    let reasons = |model: &str| {
        catalog
            .card(model)
            .unwrap()
            .capabilities
            .contains(llm_gateway::catalog::Capability::Reasoning)
    };
    assert!(!reasons("gpt-4o") && reasons("gpt-5"));
    let mut body = json!({"model": "gpt-4o", "max_tokens": 8000,
                          "thinking": {"type": "enabled", "budget_tokens": 4096},
                          "messages": [{"role": "user", "content": "Hello"}]});

    let response = app.post("/v1/messages", &body, &[]).await;
    assert_eq!(response.status(), 200);
    let removed = header(&response, "x-gateway-translation-removed")
        .unwrap_or("")
        .to_string();
    assert_eq!(removed, "thinking");
    let sent = mock.last_request().unwrap().json();
    assert!(sent.get("reasoning_effort").is_none(), "{sent}");
    assert!(sent.get("thinking").is_none(), "{sent}");

    for (budget, effort) in [(2048, "low"), (4096, "medium"), (20000, "high")] {
        body["model"] = json!("gpt-5");
        body["max_tokens"] = json!(30000);
        body["thinking"]["budget_tokens"] = json!(budget);
        let response = app.post("/v1/messages", &body, &[]).await;
        assert_eq!(response.status(), 200);
        assert!(
            header(&response, "x-gateway-translation-removed").is_none(),
            "{budget}"
        );
        let sent = mock.last_request().unwrap();
        assert_eq!(sent.path, "/v1/chat/completions");
        let sent = sent.json();
        assert_eq!(sent["model"], "gpt-5");
        assert_eq!(sent["reasoning_effort"], effort, "{budget}");
        assert_eq!(sent["max_completion_tokens"], 30000);
        assert!(sent.get("thinking").is_none(), "{sent}");
    }
    let records = app.records(4).await;
    assert!(records
        .iter()
        .all(|r| r["translated"] == "anthropic->openai"));
    assert_eq!(records[0]["model_used"], "gpt-5");
}

// ---- Images and documents.

const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAE=";
const CAT: &str = "https://example.com/cat.png";

#[actix_rt::test]
async fn images_travel_as_base64_and_as_urls_both_ways() {
    let (app, mock) = app_and_mock().await;
    let body = json!({"model": CLAUDE, "messages": [{"role": "user", "content": [
        {"type": "text", "text": "What are these?"},
        {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{PNG}")}},
        {"type": "image_url", "image_url": {"url": CAT, "detail": "low"}},
    ]}]});
    let response = app.post("/v1/chat/completions", &body, &[]).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        mock.last_request().unwrap().json()["messages"][0]["content"],
        json!([
            {"type": "text", "text": "What are these?"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
            {"type": "image", "source": {"type": "url", "url": CAT}},
        ])
    );

    let body = json!({"model": "gpt-4o", "max_tokens": 64, "messages": [{"role": "user", "content": [
        {"type": "text", "text": "What are these?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "image", "source": {"type": "url", "url": CAT}},
    ]}]});
    let response = app.post("/v1/messages", &body, &[]).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        mock.last_request().unwrap().json()["messages"][0]["content"],
        json!([
            {"type": "text", "text": "What are these?"},
            {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{PNG}")}},
            {"type": "image_url", "image_url": {"url": CAT}},
        ])
    );
    let records = app.records(2).await;
    assert_eq!(records[0]["translated"], "anthropic->openai");
    assert_eq!(records[1]["translated"], "openai->anthropic");
}

const PDF: &str = "JVBERi0xLjQK";

fn pdf_message() -> Value {
    json!([{"role": "user", "content": [
        {"type": "text", "text": "Summarise this."},
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": PDF}},
    ]}])
}

#[actix_rt::test]
async fn a_pdf_toward_a_model_without_pdf_is_refused_naming_the_field_and_nothing_is_sent() {
    let (app, mock) = app_and_mock().await;
    let body = json!({"model": "llama3.1:8b", "max_tokens": 64, "messages": pdf_message()});
    let response = app.post("/v1/messages", &body, &[]).await;
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["type"], "error", "{error}");
    assert_eq!(error["error"]["type"], "invalid_request_error");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(message.contains("messages[0].content[1]"), "{message}");
    assert!(message.contains("PDF"), "{message}");
    assert!(chat_requests(&mock).is_empty(), "nothing was forwarded");
    let record = &app.records(1).await[0];
    assert_eq!(record["status"], 400);
    assert_eq!(record["outcome"], "error");
    assert_eq!(record["error_kind"], "untranslatable");
}

#[actix_rt::test]
async fn a_target_that_cannot_take_a_pdf_is_passed_over_for_the_next_one() {
    // A local server that serves a `gpt-4o` of its own (no card: no PDFs), listed first, and
    // OpenAI's.
    let mock = MockUpstream::start().unwrap();
    mock.set_models(&["gpt-4o"]);
    let url = mock.url();
    let app = spawn_app(&format!(
        "[[providers]]\nid = \"ollama\"\nprovider_type = \"local\"\nendpoint = \"{url}\"\n\n\
         [[providers]]\nid = \"openai\"\nprovider_type = \"openai\"\napi_key = \"sk-openai-provider-key\"\nendpoint = \"{url}\"\n"
    ))
    .await;
    let models: Value = app.get("/v1/models").await.json().await.unwrap();
    assert!(models.to_string().contains("ollama"), "{models}");

    let body = json!({"model": "gpt-4o", "max_tokens": 64, "messages": pdf_message()});
    let response = app.post("/v1/messages", &body, &[]).await;
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["content"][0]["text"], mock_upstream::reply_text(3));
    let sent = chat_requests(&mock);
    assert_eq!(sent.len(), 1, "only the target that takes PDFs was sent it");
    assert_eq!(
        sent[0].header("authorization"),
        Some("Bearer sk-openai-provider-key")
    );
    assert_eq!(
        sent[0].json()["messages"][0]["content"][1],
        json!({"type": "file", "file": {"filename": "document.pdf",
            "file_data": format!("data:application/pdf;base64,{PDF}")}})
    );
    let record = &app.records(1).await[0];
    assert_eq!(record["provider_id"], "openai");
    assert_eq!(record["translated"], "anthropic->openai");
    assert_eq!(record["status"], 200);
}

// ---- Parameters.

#[actix_rt::test]
async fn sampling_parameters_stop_sequences_and_the_user_are_mapped_both_ways() {
    let (app, mock) = app_and_mock().await;
    let body = json!({"model": "gpt-4o", "max_tokens": 99, "temperature": 0.3, "top_p": 0.8,
        "stop_sequences": ["END", "STOP"], "metadata": {"user_id": "user-1"},
        "messages": [{"role": "user", "content": "Hello"}]});
    let response = app.post("/v1/messages", &body, &[]).await;
    assert_eq!(response.status(), 200);
    assert!(header(&response, "x-gateway-translation-removed").is_none());
    let sent = mock.last_request().unwrap().json();
    assert_eq!(
        sent,
        json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "Hello"}],
            "max_completion_tokens": 99, "stop": ["END", "STOP"], "temperature": 0.3,
            "top_p": 0.8, "user": "user-1"})
    );

    let body = json!({"model": CLAUDE, "max_tokens": 99, "temperature": 0.3, "top_p": 0.8,
        "stop": "END", "user": "user-2", "messages": [{"role": "user", "content": "Hello"}]});
    let response = app.post("/v1/chat/completions", &body, &[]).await;
    assert_eq!(response.status(), 200);
    assert!(header(&response, "x-gateway-translation-removed").is_none());
    let sent = mock.last_request().unwrap().json();
    assert_eq!(
        sent,
        json!({"model": CLAUDE, "max_tokens": 99,
            "messages": [{"role": "user", "content": [{"type": "text", "text": "Hello"}]}],
            "stop_sequences": ["END"], "temperature": 0.3, "top_p": 0.8,
            "metadata": {"user_id": "user-2"}})
    );
    app.records(2).await;
}

#[actix_rt::test]
async fn an_anthropic_client_reaches_an_azure_deployment_with_tools_through_translation() {
    let (app, mock) = app_and_mock().await;
    let body = json!({"model": "my-gpt4o", "max_tokens": 64, "tools": [anthropic_tool(WEATHER)],
                      "messages": [{"role": "user", "content": "Weather in Paris?"}]});
    let response = app
        .post(
            "/v1/messages",
            &body,
            &[("x-mock-tool", WEATHER), ("x-mock-tool-args", ARGS)],
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        header(&response, "x-gateway-translated"),
        Some("anthropic->openai")
    );
    let answer: Value = response.json().await.unwrap();
    let sent = mock.last_request().unwrap();
    assert_eq!(sent.path, "/openai/deployments/my-gpt4o/chat/completions");
    assert_eq!(sent.query, "api-version=2024-10-21");
    assert_eq!(sent.header("api-key"), Some("azure-provider-key"));
    assert!(sent.header("authorization").is_none() && sent.header("x-api-key").is_none());
    assert_eq!(sent.json()["tools"], json!([openai_tool(WEATHER)]));
    assert_eq!(
        answer["content"],
        json!([{"type": "tool_use", "id": "call_mock_0", "name": WEATHER,
                "input": {"city": "Paris", "unit": "celsius"}}])
    );
    assert_eq!(answer["stop_reason"], "tool_use");
    let record = &app.records(1).await[0];
    assert_eq!(record["provider_id"], "azure");
    assert_eq!(record["translated"], "anthropic->openai");
    assert_eq!(
        record["input_tokens"],
        mock_upstream::prompt_tokens(&sent.body)
    );
}

#[actix_rt::test]
async fn max_tokens_toward_claude_is_the_cards_output_limit_unless_asked_and_never_more() {
    let (app, mock) = app_and_mock().await;
    let catalog = llm_gateway::catalog::Catalog::embedded().unwrap();
    let limit = catalog.card(CLAUDE).unwrap().max_output_tokens;
    assert_eq!(limit, 64000);
    for (asked, sent) in [
        (json!({}), limit),
        (json!({"max_tokens": 100_000}), limit),
        (json!({"max_completion_tokens": 500}), 500),
    ] {
        let mut body = chat_body(CLAUDE, false);
        for (k, v) in asked.as_object().unwrap() {
            body[k] = v.clone();
        }
        let response = app.post("/v1/chat/completions", &body, &[]).await;
        assert_eq!(response.status(), 200);
        assert_eq!(
            mock.last_request().unwrap().json()["max_tokens"],
            sent,
            "{asked}"
        );
    }
    app.records(3).await;
}

#[actix_rt::test]
async fn a_json_schema_response_format_reaches_claude_as_a_forced_tool_and_comes_back_as_content() {
    let (app, mock) = app_and_mock().await;
    let schema = json!({"type": "object", "properties": {"answer": {"type": "integer"}},
                        "required": ["answer"]});
    let mut body = json!({"model": CLAUDE, "messages": [{"role": "user", "content": "6 x 7?"}],
        "response_format": {"type": "json_schema",
                            "json_schema": {"name": "answer", "schema": schema, "strict": true}}});
    let steer = [
        ("x-mock-tool", "json_response"),
        ("x-mock-tool-args", r#"{"answer":42}"#),
    ];
    let response = app.post("/v1/chat/completions", &body, &steer).await;
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    let sent = mock.last_request().unwrap().json();
    assert_eq!(
        sent["tools"],
        json!([{"name": "json_response",
                "description": "Respond with a JSON value matching this schema.",
                "input_schema": schema}])
    );
    assert_eq!(
        sent["tool_choice"],
        json!({"type": "tool", "name": "json_response"})
    );
    let choice = &answer["choices"][0];
    assert_eq!(choice["message"]["content"], r#"{"answer":42}"#, "{answer}");
    assert_eq!(choice["finish_reason"], "stop");
    assert!(choice["message"].get("tool_calls").is_none(), "{answer}");

    body["stream"] = json!(true);
    let response = app.post("/v1/chat/completions", &body, &steer).await;
    assert_eq!(response.status(), 200);
    let text = streamed(response).await;
    let chunks = openai_chunks(&text);
    assert_eq!(openai_content(&chunks), r#"{"answer":42}"#, "{text}");
    assert_eq!(finish_reasons(&chunks), vec![json!("stop")]);
    assert!(!text.contains("tool_calls"), "{text}");
    let records = app.records(2).await;
    assert!(records
        .iter()
        .all(|r| r["translated"] == "openai->anthropic" && r["status"] == 200));
}

// ---- Failover across APIs.

#[actix_rt::test]
async fn a_failing_openai_provider_fails_over_to_claude_through_translation() {
    let failing = MockUpstream::start().unwrap();
    failing.set_failing(Some(500));
    let healthy = MockUpstream::start().unwrap();
    let app = spawn_app(&format!(
        r#"
[[providers]]
id = "openai"
provider_type = "openai"
api_key = "sk-openai-provider-key"
endpoint = "{}"

[[providers]]
id = "anthropic"
provider_type = "anthropic"
api_key = "sk-ant-provider-key"
endpoint = "{}"

# claude-sonnet-4-0 (claude-sonnet-4-20250514) is retired by its card: the router passes it over.
[routing.profiles.pair]
description = "gpt-4o first, Claude next"
task = "general"
weights = {{ cost = 1.0, latency = 1.0, quality = 0.0 }}
providers = {{ allow = ["openai", "anthropic"] }}
models = {{ allow = ["gpt-4o", "claude-sonnet-4-6"], prefer = ["gpt-4o"] }}
"#,
        failing.url(),
        healthy.url()
    ))
    .await;

    for stream in [false, true] {
        // Another conversation each time: a conversation stays where it was last answered.
        let mut body = chat_body("auto", stream);
        body["messages"][0]["content"] = json!(format!("Hello (stream: {stream})"));
        let response = app
            .post(
                "/v1/chat/completions",
                &body,
                &[("x-route-profile", "pair")],
            )
            .await;
        assert_eq!(response.status(), 200, "stream {stream}");
        assert_eq!(
            header(&response, "x-gateway-translated"),
            Some("openai->anthropic")
        );
        assert_eq!(header(&response, "x-route-profile"), Some("pair"));
        assert_eq!(
            header(&response, "x-route-model"),
            Some("claude-sonnet-4-6")
        );
        let content = if stream {
            openai_content(&openai_chunks(&streamed(response).await))
        } else {
            let answer: Value = response.json().await.unwrap();
            assert_eq!(answer["object"], "chat.completion");
            answer["choices"][0]["message"]["content"]
                .as_str()
                .unwrap()
                .to_string()
        };
        assert_eq!(content, mock_upstream::reply_text(3));

        let tried = failing.last_request().unwrap();
        assert_eq!(tried.path, "/v1/chat/completions");
        assert_eq!(tried.json()["model"], "gpt-4o");
        let sent = healthy.last_request().unwrap();
        assert_eq!(sent.path, "/v1/messages");
        assert_eq!(sent.json()["model"], "claude-sonnet-4-6");
        assert_eq!(sent.header("x-api-key"), Some("sk-ant-provider-key"));
    }
    assert_eq!(failing.requests().len(), 2);
    let records = app.records(2).await;
    for record in &records {
        assert_eq!(record["translated"], "openai->anthropic", "{record}");
        assert_eq!(record["provider_id"], "anthropic");
        assert_eq!(record["attempts"], 2);
        assert_eq!(record["outcome"], "mitigated");
        assert_eq!(record["route_profile"], "pair");
        assert_eq!(record["route_rank"], 1);
        assert_eq!(record["output_tokens"], 3);
        assert_cost(record, 3.0, 15.0);
    }
    let errors: Value = app.get("/v1/errors").await.json().await.unwrap();
    let errors = errors["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2, "{errors:?}");
    for error in errors {
        assert_eq!(error["provider"], "openai");
        assert_eq!(error["impact"], "mitigated");
    }
}

// ---- Errors.

#[actix_rt::test]
async fn upstream_errors_of_translated_streams_come_back_in_the_clients_shape() {
    let (app, _mock) = app_and_mock().await;
    let anthropic_cases = [
        (429, "rate_limit_error"),
        (500, "api_error"),
        (502, "api_error"),
        (503, "overloaded_error"),
        (529, "overloaded_error"),
    ];
    for (status, kind) in anthropic_cases {
        let response = app
            .post(
                "/v1/messages",
                &messages_body("llama3.1:8b", true),
                &[("x-mock-status", &status.to_string())],
            )
            .await;
        assert_eq!(response.status(), status);
        assert_eq!(header(&response, "content-type"), Some("application/json"));
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["type"], "error", "{error}");
        assert_eq!(error["error"]["type"], kind, "{status}: {error}");
        assert_eq!(
            error["error"]["message"],
            format!("mock upstream error {status}")
        );
    }
    let openai_cases = [
        (429, "rate_limit_error"),
        (500, "api_error"),
        (529, "overloaded_error"),
    ];
    for (status, upstream_kind) in openai_cases {
        let response = app
            .post(
                "/v1/chat/completions",
                &chat_body(CLAUDE, true),
                &[("x-mock-status", &status.to_string())],
            )
            .await;
        assert_eq!(response.status(), status);
        let error: Value = response.json().await.unwrap();
        // The gateway's OpenAI type for the status; the code keeps Anthropic's type.
        assert_eq!(error["error"]["type"], "api_error", "{status}: {error}");
        assert_eq!(error["error"]["code"], upstream_kind, "{status}: {error}");
        assert_eq!(
            error["error"]["message"],
            format!("mock upstream error {status}")
        );
    }
    let records = app.records(8).await;
    for record in &records {
        assert_eq!(record["outcome"], "error", "{record}");
        assert!(record["translated"].as_str().unwrap().contains("->"));
        assert_eq!(record["output_tokens"], 0);
        assert_eq!(record["cost_usd"], 0.0);
    }
    let statuses: Vec<i64> = records
        .iter()
        .rev()
        .map(|r| r["status"].as_i64().unwrap())
        .collect();
    assert_eq!(statuses, vec![429, 500, 502, 503, 529, 429, 500, 529]);
}
