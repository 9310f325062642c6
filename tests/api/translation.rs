//! Any client to any model: an OpenAI Chat Completions client reaching a Claude model and an
//! Anthropic Messages client reaching OpenAI's and a local server's models, through the real
//! gateway against the mock upstreams; what the upstream received, what the client got
//! (JSON and streams), the ledger's record, refusals and translated errors.

use futures_util::StreamExt;
use serde_json::{json, Value};

use crate::helpers::*;

pub(crate) const CLAUDE: &str = "claude-sonnet-4-20250514";

pub(crate) async fn app_and_mock() -> (TestApp, MockUpstream) {
    let mock = MockUpstream::start().unwrap();
    mock.set_models(&["llama3.1:8b"]);
    let app = spawn_app(&four_providers(&mock)).await;
    (app, mock)
}

/// The `data:` payloads of an SSE body, with each event's `event:` name (None without one).
pub(crate) fn events(body: &str) -> Vec<(Option<String>, String)> {
    body.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let mut name = None;
            let mut data = String::new();
            for line in e.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    name = Some(n.to_string());
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data.push_str(d);
                }
            }
            (name, data)
        })
        .collect()
}

/// Reads a streamed answer chunk by chunk, as a client does.
pub(crate) async fn streamed(response: reqwest::Response) -> String {
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        body.extend_from_slice(&chunk.unwrap());
    }
    String::from_utf8(body).unwrap()
}

/// What the mock received besides the local server's model discovery.
pub(crate) fn chat_requests(mock: &MockUpstream) -> Vec<mock_upstream::Recorded> {
    mock.requests()
        .into_iter()
        .filter(|r| r.path != "/v1/models")
        .collect()
}

pub(crate) fn header<'a>(response: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

#[actix_rt::test]
async fn an_openai_client_gets_a_chat_completion_from_a_claude_model() {
    let (app, mock) = app_and_mock().await;
    let body = json!({
        "model": CLAUDE, "max_tokens": 50, "temperature": 0.5, "top_p": 0.9, "stop": ["END"],
        "user": "user-7",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hello"},
            {"role": "assistant", "content": "Hi, how can I help?"},
            {"role": "user", "content": [{"type": "text", "text": "Tell me a joke"}]},
        ],
    });
    let response = app
        .post(
            "/v1/chat/completions",
            &body,
            &[
                ("x-mock-cached-tokens", "10"),
                ("x-mock-cache-write-tokens", "5"),
            ],
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        header(&response, "x-gateway-translated"),
        Some("openai->anthropic")
    );
    let answer: Value = response.json().await.unwrap();

    let sent = mock.last_request().unwrap();
    assert_eq!(sent.path, "/v1/messages");
    assert_eq!(sent.header("x-api-key"), Some("sk-ant-provider-key"));
    assert!(sent.header("anthropic-version").is_some());
    assert!(sent.header("authorization").is_none());
    let upstream = sent.json();
    assert_eq!(upstream["model"], CLAUDE);
    assert_eq!(upstream["max_tokens"], 50);
    assert_eq!(upstream["temperature"], 0.5);
    assert_eq!(upstream["top_p"], 0.9);
    assert_eq!(upstream["stop_sequences"], json!(["END"]));
    assert_eq!(upstream["metadata"]["user_id"], "user-7");
    let system = match &upstream["system"] {
        Value::String(s) => s.clone(),
        blocks => blocks[0]["text"].as_str().unwrap().to_string(),
    };
    assert_eq!(system, "Be brief.");
    let messages = upstream["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 3, "{upstream}");
    assert_eq!(messages[0]["role"], "user");
    assert_eq!(messages[1]["role"], "assistant");
    assert_eq!(messages[2]["role"], "user");

    assert_eq!(answer["object"], "chat.completion");
    assert_eq!(answer["model"], CLAUDE);
    let choice = &answer["choices"][0];
    assert_eq!(choice["message"]["role"], "assistant");
    assert_eq!(choice["message"]["content"], mock_upstream::reply_text(3));
    assert_eq!(choice["finish_reason"], "stop");
    // Anthropic's input_tokens leave out cache reads and writes; OpenAI's prompt_tokens hold them.
    let input = mock_upstream::prompt_tokens(&sent.body);
    assert_eq!(answer["usage"]["prompt_tokens"], input + 15);
    assert_eq!(
        answer["usage"]["prompt_tokens_details"]["cached_tokens"],
        10
    );
    assert_eq!(answer["usage"]["completion_tokens"], 3);
    assert_eq!(answer["usage"]["total_tokens"], input + 15 + 3);

    let record = &app.records(1).await[0];
    assert_eq!(record["translated"], "openai->anthropic");
    assert_eq!(record["provider_id"], "anthropic");
    assert_eq!(record["input_tokens"], input + 15);
    assert_eq!(record["cached_input_tokens"], 10);
    assert_eq!(record["output_tokens"], 3);
    assert!(record["cost_usd"].as_f64().unwrap() > 0.0, "{record}");
}

#[actix_rt::test]
async fn an_openai_client_streams_from_a_claude_model_event_by_event() {
    let (app, mock) = app_and_mock().await;
    let body = json!({"model": CLAUDE, "stream": true, "stream_options": {"include_usage": true},
                      "messages": [{"role": "user", "content": "Hello"}]});
    let response = app
        .post("/v1/chat/completions", &body, &[("x-mock-chunks", "4")])
        .await;
    assert_eq!(response.status(), 200);
    assert!(header(&response, "content-type")
        .unwrap()
        .starts_with("text/event-stream"));
    let text = streamed(response).await;
    let events = events(&text);
    assert_eq!(events.last().unwrap().1, "[DONE]", "{text}");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|(name, data)| {
            assert!(name.is_none(), "OpenAI chunks have no event names: {text}");
            serde_json::from_str(data).unwrap()
        })
        .collect();
    assert!(chunks
        .iter()
        .all(|c| c["object"] == "chat.completion.chunk"));
    let ids: std::collections::HashSet<String> = chunks
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 1, "one id for the whole stream");
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let content: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(content, mock_upstream::reply_text(4));
    let finishes: Vec<&Value> = chunks
        .iter()
        .map(|c| &c["choices"][0]["finish_reason"])
        .filter(|f| !f.is_null())
        .collect();
    assert_eq!(finishes, vec![&json!("stop")]);
    let usage = &chunks.last().unwrap()["usage"];
    assert_eq!(chunks.last().unwrap()["choices"], json!([]));
    assert_eq!(usage["completion_tokens"], 4);

    let sent = mock.last_request().unwrap();
    assert_eq!(sent.path, "/v1/messages");
    assert_eq!(sent.json()["stream"], true);
    let catalog = llm_gateway::catalog::Catalog::embedded().unwrap();
    assert_eq!(
        sent.json()["max_tokens"].as_u64(),
        Some(catalog.card(CLAUDE).unwrap().max_output_tokens),
        "Anthropic requires max_tokens: the card's maximum output"
    );
    let record = &app.records(1).await[0];
    assert_eq!(record["translated"], "openai->anthropic");
    assert_eq!(record["output_tokens"], 4);
    assert_eq!(record["input_tokens"], usage["prompt_tokens"]);
}

#[actix_rt::test]
async fn an_anthropic_client_gets_a_message_from_gpt_4o_with_what_openai_cannot_take_removed() {
    let (app, mock) = app_and_mock().await;
    let body = json!({
        "model": "gpt-4o", "max_tokens": 64, "top_k": 5,
        "metadata": {"user_id": "user-9"},
        "system": [{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral", "ttl": "1h"}}],
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": "Hello", "cache_control": {"type": "ephemeral"}}]}],
    });
    let response = app
        .post(
            "/v1/messages?beta=true",
            &body,
            &[
                ("anthropic-version", "2023-06-01"),
                (
                    "anthropic-beta",
                    "prompt-caching-2024-07-31,interleaved-thinking-2025-05-14",
                ),
                ("x-mock-cached-tokens", "4"),
            ],
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        header(&response, "x-gateway-translated"),
        Some("anthropic->openai")
    );
    let removed = header(&response, "x-gateway-translation-removed")
        .unwrap()
        .to_string();
    for what in [
        "cache_control",
        "top_k",
        "anthropic-beta: prompt-caching-2024-07-31",
        "anthropic-beta: interleaved-thinking-2025-05-14",
    ] {
        assert!(removed.contains(what), "{what} in {removed}");
    }
    let answer: Value = response.json().await.unwrap();

    let sent = mock.last_request().unwrap();
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(
        sent.query, "",
        "Claude Code's ?beta=true means nothing to OpenAI"
    );
    assert_eq!(
        sent.header("authorization"),
        Some("Bearer sk-openai-provider-key")
    );
    assert!(sent.header("anthropic-beta").is_none() && sent.header("anthropic-version").is_none());
    let raw = String::from_utf8(sent.body.to_vec()).unwrap();
    assert!(
        !raw.contains("cache_control") && !raw.contains("top_k"),
        "{raw}"
    );
    let upstream = sent.json();
    assert_eq!(upstream["model"], "gpt-4o");
    assert_eq!(upstream["max_completion_tokens"], 64);
    assert_eq!(upstream["user"], "user-9");
    assert_eq!(upstream["messages"][0]["role"], "system");
    assert_eq!(upstream["messages"][1]["role"], "user");

    assert_eq!(answer["type"], "message");
    assert_eq!(answer["role"], "assistant");
    assert_eq!(answer["content"][0]["type"], "text");
    assert_eq!(answer["content"][0]["text"], mock_upstream::reply_text(3));
    assert_eq!(answer["stop_reason"], "end_turn");
    let prompt = mock_upstream::prompt_tokens(&sent.body);
    assert_eq!(
        answer["usage"]["input_tokens"],
        prompt - 4,
        "cache reads are not counted twice"
    );
    assert_eq!(answer["usage"]["cache_read_input_tokens"], 4);
    assert_eq!(answer["usage"]["output_tokens"], 3);

    let record = &app.records(1).await[0];
    assert_eq!(record["translated"], "anthropic->openai");
    assert_eq!(record["provider_id"], "openai");
    assert_eq!(record["input_tokens"], prompt);
    assert_eq!(record["cached_input_tokens"], 4);
}

#[actix_rt::test]
async fn an_anthropic_client_streams_from_gpt_4o_with_consistent_blocks() {
    let (app, mock) = app_and_mock().await;
    let response = app
        .post(
            "/v1/messages",
            &messages_body("gpt-4o", true),
            &[("x-mock-chunks", "5")],
        )
        .await;
    assert_eq!(response.status(), 200);
    let text = streamed(response).await;
    let events = events(&text);
    let names: Vec<&str> = events
        .iter()
        .map(|(n, _)| n.as_deref().unwrap_or(""))
        .collect();
    assert_eq!(names.first(), Some(&"message_start"), "{text}");
    assert_eq!(names.last(), Some(&"message_stop"), "{text}");
    let mut open: Option<u64> = None;
    let mut text_out = String::new();
    let mut delta_usage = None;
    for (name, data) in &events {
        let event: Value = serde_json::from_str(data).unwrap();
        assert_eq!(event["type"].as_str(), name.as_deref(), "{text}");
        match name.as_deref().unwrap() {
            "content_block_start" => {
                assert!(
                    open.is_none(),
                    "a block starts while another is open: {text}"
                );
                open = event["index"].as_u64();
            }
            "content_block_delta" => {
                assert_eq!(
                    event["index"].as_u64(),
                    open,
                    "a delta for a block not started: {text}"
                );
                text_out.push_str(event["delta"]["text"].as_str().unwrap());
            }
            "content_block_stop" => {
                assert_eq!(event["index"].as_u64(), open);
                open = None;
            }
            "message_delta" => {
                assert_eq!(event["delta"]["stop_reason"], "end_turn");
                delta_usage = Some(event["usage"].clone());
            }
            _ => {}
        }
    }
    assert_eq!(text_out, mock_upstream::reply_text(5));
    assert_eq!(delta_usage.unwrap()["output_tokens"], 5);
    let sent = mock.last_request().unwrap();
    assert_eq!(sent.json()["stream_options"]["include_usage"], true);
    let record = &app.records(1).await[0];
    assert_eq!(record["translated"], "anthropic->openai");
    assert_eq!(record["output_tokens"], 5);
    assert_eq!(
        record["input_tokens"],
        mock_upstream::prompt_tokens(&sent.body)
    );
}

#[actix_rt::test]
async fn a_local_model_gets_max_tokens_and_answers_an_anthropic_client() {
    let (app, mock) = app_and_mock().await;
    let response = app
        .post("/v1/messages", &messages_body("llama3.1:8b", false), &[])
        .await;
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["content"][0]["text"], mock_upstream::reply_text(3));
    let sent = mock.last_request().unwrap();
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(sent.json()["max_tokens"], 64);
    assert!(sent.json().get("max_completion_tokens").is_none());
}

#[actix_rt::test]
async fn what_cannot_be_translated_is_refused_naming_the_field_and_nothing_is_sent() {
    let (app, mock) = app_and_mock().await;
    for (body, param) in [
        (
            json!({"model": CLAUDE, "n": 2, "messages": [{"role": "user", "content": "Hi"}]}),
            "n",
        ),
        (
            json!({"model": CLAUDE, "logprobs": true, "messages": [{"role": "user", "content": "Hi"}]}),
            "logprobs",
        ),
    ] {
        let response = app.post("/v1/chat/completions", &body, &[]).await;
        assert_eq!(response.status(), 400);
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"]["type"], "invalid_request_error", "{error}");
        assert_eq!(error["error"]["code"], "untranslatable");
        assert_eq!(error["error"]["param"], param, "{error}");
        assert!(error["error"]["message"].as_str().unwrap().contains(param));
    }
    assert!(chat_requests(&mock).is_empty(), "nothing was forwarded");
    let records = app.records(2).await;
    assert!(records.iter().all(|r| r["status"] == 400));
}

#[actix_rt::test]
async fn count_tokens_for_an_openai_model_is_the_gateways_estimate() {
    let (app, mock) = app_and_mock().await;
    let body = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "Hello"}]});
    let response = app.post("/v1/messages/count_tokens", &body, &[]).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        header(&response, "x-gateway-token-estimate"),
        Some("o200k_base")
    );
    let answer: Value = response.json().await.unwrap();
    // "Hello" (one o200k token) and its newline, 3 of framing for the message, 3 for the reply.
    assert_eq!(answer["input_tokens"], 8, "{answer}");
    assert_eq!(answer["estimate"], true);
    assert!(
        chat_requests(&mock).is_empty(),
        "OpenAI has no count_tokens endpoint"
    );
    let record = &app.records(1).await[0];
    assert_eq!(record["endpoint"], "count_tokens");
    assert_eq!(record["status"], 200);
}

#[actix_rt::test]
async fn upstream_errors_come_back_in_the_clients_shape() {
    let (app, _mock) = app_and_mock().await;
    let response = app
        .post(
            "/v1/messages",
            &messages_body("gpt-4o", false),
            &[("x-mock-status", "429")],
        )
        .await;
    assert_eq!(response.status(), 429);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["type"], "error", "{error}");
    assert_eq!(error["error"]["type"], "rate_limit_error");
    assert!(error["error"]["message"]
        .as_str()
        .unwrap()
        .contains("mock upstream error 429"));

    let response = app
        .post(
            "/v1/chat/completions",
            &chat_body(CLAUDE, true),
            &[("x-mock-status", "400")],
        )
        .await;
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["type"], "invalid_request_error", "{error}");
    assert!(error["error"]["message"]
        .as_str()
        .unwrap()
        .contains("mock upstream error 400"));
}
