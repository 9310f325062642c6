//! OpenAI's Responses API (`POST /v1/responses`, `GET`/`DELETE /v1/responses/{id}`) through the
//! real gateway against the mock: passed through to OpenAI and Azure OpenAI (JSON and typed
//! stream events, usage from `response.completed`), translated toward a Claude model and a
//! local server (text, instructions, function calls and their outputs, streams), the records'
//! tokens and cost, refusals naming the field, failover, and the stored responses.

use serde_json::{json, Value};

use crate::helpers::*;
use crate::translation::{events, header, streamed, CLAUDE};

/// gpt-4o's prices per token in the shipped catalog ($2.50 / $10 per 1M).
const GPT4O: (f64, f64) = (2.5 / 1_000_000.0, 10.0 / 1_000_000.0);
/// claude-sonnet-4-0's ($3 / $15 per 1M).
const SONNET: (f64, f64) = (3.0 / 1_000_000.0, 15.0 / 1_000_000.0);

async fn app_and_mock() -> (TestApp, MockUpstream) {
    let mock = MockUpstream::start().unwrap();
    mock.set_models(&["llama3.1:8b"]);
    let app = spawn_app(&four_providers(&mock)).await;
    (app, mock)
}

/// What the mock received besides the local server's model discovery.
fn upstream_requests(mock: &MockUpstream) -> Vec<mock_upstream::Recorded> {
    mock.requests()
        .into_iter()
        .filter(|r| r.path != "/v1/models")
        .collect()
}

fn assert_cost(record: &Value, price: (f64, f64)) {
    let cost = record["input_tokens"].as_f64().unwrap() * price.0
        + record["output_tokens"].as_f64().unwrap() * price.1;
    let recorded = record["cost_usd"].as_f64().unwrap_or(f64::NAN);
    assert!((recorded - cost).abs() < 1e-12, "cost {cost}: {record}");
}

/// The typed events of a Responses stream, parsed; each event's name matches its `type`, and
/// the sequence numbers count up from 0.
fn typed_events(body: &str) -> Vec<Value> {
    let parsed: Vec<Value> = events(body)
        .into_iter()
        .map(|(name, data)| {
            let event: Value = serde_json::from_str(&data).unwrap_or_else(|_| panic!("{data}"));
            assert_eq!(name.as_deref(), event["type"].as_str(), "{body}");
            event
        })
        .collect();
    for (i, event) in parsed.iter().enumerate() {
        assert_eq!(event["sequence_number"], i as u64, "{body}");
    }
    parsed
}

fn deltas(events: &[Value], kind: &str) -> String {
    events
        .iter()
        .filter(|e| e["type"] == kind)
        .map(|e| e["delta"].as_str().unwrap().to_string())
        .collect()
}

#[actix_web::test]
async fn responses_pass_through_to_openai_and_azure_and_are_metered_from_the_answer() {
    let (app, mock) = app_and_mock().await;
    let cases = [
        ("openai/gpt-4o", "openai", "/v1/responses", "gpt-4o"),
        ("azure/gpt-4o", "azure", "/openai/v1/responses", "my-gpt4o"),
    ];
    let mut expected = Vec::new();
    for (model, provider, path, upstream_model) in cases {
        for stream in [false, true] {
            let body = json!({"model": model, "instructions": "Be brief.", "input": "Hello",
                "stream": stream, "store": true});
            let response = app.post("/v1/responses", &body, &[]).await;
            assert_eq!(response.status(), 200, "{provider}");
            assert_eq!(header(&response, "x-gateway-translated"), None);
            let text = streamed(response).await;
            let upstream = mock.last_request().unwrap();
            assert_eq!(upstream.path, path, "{provider}");
            assert_eq!(upstream.query, "", "no api-version on Azure's v1 path");
            let mut sent = body.clone();
            sent["model"] = json!(upstream_model);
            assert_eq!(
                upstream.json(),
                sent,
                "{provider}: the body as sent, model aside"
            );
            if stream {
                let events = typed_events(&text);
                assert_eq!(events[0]["type"], "response.created");
                assert_eq!(
                    deltas(&events, "response.output_text.delta"),
                    "chunk0 chunk1 chunk2 "
                );
                let last = events.last().unwrap();
                assert_eq!(last["type"], "response.completed", "{text}");
                assert_eq!(last["response"]["usage"]["output_tokens"], 3);
            } else {
                let answer: Value = serde_json::from_str(&text).unwrap();
                assert_eq!(answer["object"], "response");
                assert_eq!(
                    answer["output"][0]["content"][0]["text"],
                    "chunk0 chunk1 chunk2 "
                );
            }
            let input = mock_upstream::prompt_tokens(&upstream.body) as i64;
            expected.push((provider, stream, input));
        }
    }
    let records = app.records(expected.len()).await;
    for (record, (provider, stream, input)) in records.iter().rev().zip(&expected) {
        assert_eq!(record["endpoint"], "responses", "{record}");
        assert_eq!(record["provider_id"], *provider, "{record}");
        assert_eq!(record["streamed"], *stream, "{record}");
        assert_eq!(record["usage_estimated"], false, "{record}");
        assert_eq!(record["input_tokens"], *input, "{record}");
        assert_eq!(record["output_tokens"], 3, "{record}");
        assert!(record["translated"].is_null(), "{record}");
        assert_cost(record, GPT4O);
    }
}

fn weather_tool() -> Value {
    json!({"type": "function", "name": "get_weather", "description": "The weather in a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                          "required": ["city"]}})
}

#[actix_web::test]
async fn a_responses_client_calls_a_function_of_a_claude_model_through_translation() {
    let (app, mock) = app_and_mock().await;
    let steer = [
        ("x-mock-tool", "get_weather"),
        ("x-mock-tool-args", r#"{"city":"Paris"}"#),
    ];
    let body = json!({"model": CLAUDE, "instructions": "Be brief.", "max_output_tokens": 200,
        "input": [{"role": "user", "content": [{"type": "input_text", "text": "Weather in Paris?"}]}],
        "tools": [weather_tool()], "tool_choice": "auto", "store": false, "metadata": {"a": "b"}});
    let response = app.post("/v1/responses", &body, &steer).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        header(&response, "x-gateway-translated"),
        Some("responses->anthropic")
    );
    assert_eq!(
        header(&response, "x-gateway-translation-removed"),
        Some("store"),
        "`metadata` stays on the response object; `store` is dropped"
    );
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["object"], "response");
    assert_eq!(answer["status"], "completed");
    assert_eq!(answer["instructions"], "Be brief.");
    // Claude's text before its call, then the call: two items in order.
    assert_eq!(answer["output"][0]["type"], "message", "{answer}");
    let call = &answer["output"][1];
    assert_eq!(call["type"], "function_call", "{answer}");
    assert_eq!(call["name"], "get_weather");
    assert_eq!(call["arguments"], r#"{"city":"Paris"}"#);
    assert_eq!(call["call_id"], "toolu_mock_0");

    let upstream = mock.last_request().unwrap();
    assert_eq!(upstream.path, "/v1/messages");
    let sent = upstream.json();
    assert_eq!(sent["model"], CLAUDE);
    assert_eq!(sent["max_tokens"], 200);
    assert_eq!(sent["system"], "Be brief.");
    assert_eq!(sent["messages"][0]["role"], "user");
    assert_eq!(sent["tools"][0]["name"], "get_weather");
    assert_eq!(sent["tools"][0]["input_schema"]["required"][0], "city");

    // The next turn gives the call's output back.
    let body = json!({"model": CLAUDE, "instructions": "Be brief.", "tools": [weather_tool()],
    "input": [
        {"role": "user", "content": "Weather in Paris?"},
        {"type": "function_call", "call_id": "toolu_mock_0", "name": "get_weather",
         "arguments": r#"{"city":"Paris"}"#},
        {"type": "function_call_output", "call_id": "toolu_mock_0", "output": "18 C and sunny"},
    ]});
    let response = app.post("/v1/responses", &body, &steer).await;
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["output"][0]["type"], "message", "{answer}");
    assert_eq!(
        answer["output"][0]["content"][0]["text"],
        "tool result: 18 C and sunny"
    );
    let sent = mock.last_request().unwrap().json();
    let messages = sent["messages"].as_array().unwrap();
    assert_eq!(messages[1]["content"][0]["type"], "tool_use", "{sent}");
    assert_eq!(messages[1]["content"][0]["id"], "toolu_mock_0");
    assert_eq!(messages[2]["content"][0]["type"], "tool_result", "{sent}");

    let records = app.records(2).await;
    for record in &records {
        assert_eq!(record["endpoint"], "responses", "{record}");
        assert_eq!(record["provider_id"], "anthropic");
        assert_eq!(record["translated"], "responses->anthropic");
        assert!(record["input_tokens"].as_i64().unwrap() > 0, "{record}");
        assert_eq!(record["usage_estimated"], false, "{record}");
        assert_cost(record, SONNET);
    }
    assert_eq!(
        answer["usage"]["input_tokens"], records[0]["input_tokens"],
        "the client's usage is the record's"
    );
}

#[actix_web::test]
async fn a_responses_stream_from_a_claude_model_is_typed_events_with_usage_at_completion() {
    let (app, mock) = app_and_mock().await;
    let body = json!({"model": CLAUDE, "input": "Hello", "stream": true});
    let response = app.post("/v1/responses", &body, &[]).await;
    assert_eq!(response.status(), 200);
    assert!(header(&response, "content-type")
        .unwrap()
        .starts_with("text/event-stream"));
    let text = streamed(response).await;
    let events = typed_events(&text);
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed",
        ],
        "{text}"
    );
    assert_eq!(
        deltas(&events, "response.output_text.delta"),
        "chunk0 chunk1 chunk2 "
    );
    let completed = &events.last().unwrap()["response"];
    assert_eq!(completed["status"], "completed");
    assert_eq!(
        completed["output"][0]["content"][0]["text"],
        "chunk0 chunk1 chunk2 "
    );
    assert_eq!(completed["id"], events[0]["response"]["id"]);
    let upstream = mock.last_request().unwrap();
    assert_eq!(upstream.path, "/v1/messages");
    assert_eq!(upstream.json()["stream"], true);

    let record = &app.records(1).await[0];
    assert_eq!(record["streamed"], true);
    assert_eq!(record["translated"], "responses->anthropic");
    assert_eq!(record["usage_estimated"], false, "{record}");
    assert_eq!(completed["usage"]["input_tokens"], record["input_tokens"]);
    assert_eq!(completed["usage"]["output_tokens"], record["output_tokens"]);
    assert_cost(record, SONNET);

    // A streamed function call: its arguments in deltas, then the item done.
    let body =
        json!({"model": CLAUDE, "input": "Weather?", "tools": [weather_tool()], "stream": true});
    let steer = [
        ("x-mock-tool", "get_weather"),
        ("x-mock-tool-args", r#"{"city":"Paris"}"#),
    ];
    let text = streamed(app.post("/v1/responses", &body, &steer).await).await;
    let events = typed_events(&text);
    assert_eq!(
        deltas(&events, "response.function_call_arguments.delta"),
        r#"{"city":"Paris"}"#
    );
    let done = events
        .iter()
        .find(|e| e["type"] == "response.output_item.done" && e["item"]["type"] != "message")
        .unwrap();
    assert_eq!(done["item"]["type"], "function_call");
    assert_eq!(done["item"]["name"], "get_weather");
    assert_eq!(done["item"]["arguments"], r#"{"city":"Paris"}"#);
    let completed = &events.last().unwrap()["response"];
    assert_eq!(events.last().unwrap()["type"], "response.completed");
    assert_eq!(
        completed["output"][1]["call_id"], "toolu_mock_0",
        "{completed}"
    );
}

#[actix_web::test]
async fn a_local_server_is_sent_chat_completions_for_a_responses_request() {
    let (app, mock) = app_and_mock().await;
    for stream in [false, true] {
        let body = json!({"model": "ollama/llama3.1:8b", "instructions": "Be brief.",
            "input": "Hello", "max_output_tokens": 64, "stream": stream,
            "text": {"format": {"type": "json_schema", "name": "reply",
                                "schema": {"type": "object"}, "strict": true}}});
        let response = app.post("/v1/responses", &body, &[]).await;
        assert_eq!(response.status(), 200);
        assert_eq!(
            header(&response, "x-gateway-translated"),
            Some("responses->openai")
        );
        let text = streamed(response).await;
        let upstream = upstream_requests(&mock).pop().unwrap();
        assert_eq!(upstream.path, "/v1/chat/completions");
        let sent = upstream.json();
        assert_eq!(sent["model"], "llama3.1:8b");
        assert_eq!(
            sent["messages"],
            json!([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}])
        );
        assert_eq!(sent["max_tokens"], 64);
        assert_eq!(
            sent["response_format"],
            json!({"type": "json_schema", "json_schema": {"name": "reply", "schema": {"type": "object"}, "strict": true}})
        );
        if stream {
            assert_eq!(sent["stream_options"], json!({"include_usage": true}));
            let events = typed_events(&text);
            assert_eq!(
                deltas(&events, "response.output_text.delta"),
                "chunk0 chunk1 chunk2 "
            );
            let completed = events.last().unwrap();
            assert_eq!(completed["type"], "response.completed");
            assert_eq!(completed["response"]["usage"]["output_tokens"], 3);
        } else {
            let answer: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(
                answer["output"][0]["content"][0]["text"],
                "chunk0 chunk1 chunk2 "
            );
            assert_eq!(answer["usage"]["output_tokens"], 3);
            assert_eq!(
                answer["usage"]["input_tokens"],
                mock_upstream::prompt_tokens(&upstream.body)
            );
        }
    }
    let records = app.records(2).await;
    for record in &records {
        assert_eq!(record["endpoint"], "responses");
        assert_eq!(record["provider_id"], "ollama");
        assert_eq!(record["translated"], "responses->openai");
        assert_eq!(record["output_tokens"], 3, "{record}");
        assert_eq!(record["usage_estimated"], false, "{record}");
        assert_eq!(record["cost_usd"], 0.0);
    }
}

#[actix_web::test]
async fn what_needs_openais_servers_is_refused_toward_other_providers_naming_the_field() {
    let (app, mock) = app_and_mock().await;
    let cases = [
        (
            json!({"model": CLAUDE, "input": "Go on", "previous_response_id": "resp_123"}),
            "previous_response_id",
        ),
        (
            json!({"model": CLAUDE, "input": "Search", "tools": [{"type": "web_search"}]}),
            "tools[0].type",
        ),
        (
            json!({"model": "ollama/llama3.1:8b", "input": [{"type": "item_reference", "id": "msg_1"}]}),
            "input[0].type",
        ),
        (
            json!({"model": CLAUDE, "input": [{"role": "user", "content": [{"type": "input_image", "file_id": "file-1"}]}]}),
            "input[0].content[0].image_url",
        ),
    ];
    for (body, param) in cases {
        let response = app.post("/v1/responses", &body, &[]).await;
        assert_eq!(response.status(), 400, "{body}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"]["code"], "untranslatable", "{error}");
        assert_eq!(error["error"]["param"], param, "{error}");
    }
    assert!(upstream_requests(&mock).is_empty(), "nothing was forwarded");

    // Bad input in OpenAI's error shape, before any upstream.
    let response = app
        .post("/v1/responses", &json!({"model": "gpt-4o"}), &[])
        .await;
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["param"], "input", "{error}");

    // The same state-bound request passes through to OpenAI, which keeps the state.
    let body =
        json!({"model": "openai/gpt-4o", "input": "Go on", "previous_response_id": "resp_123"});
    let response = app.post("/v1/responses", &body, &[]).await;
    assert_eq!(response.status(), 200);
    assert_eq!(mock.last_request().unwrap().json(), {
        let mut sent = body.clone();
        sent["model"] = json!("gpt-4o");
        sent
    });
}

#[actix_web::test]
async fn a_responses_request_fails_over_to_the_next_provider() {
    let down = MockUpstream::start().unwrap();
    down.set_failing(Some(503));
    let up = MockUpstream::start().unwrap();
    let config = format!(
        r#"
[[providers]]
id = "openai"
provider_type = "openai"
api_key = "sk-openai-provider-key"
endpoint = "{down}"

[[providers]]
id = "azure"
provider_type = "azure_openai"
api_key = "azure-provider-key"
endpoint = "{up}"
deployment = "gpt-4o"
api_version = "2024-10-21"
"#,
        down = down.url(),
        up = up.url()
    );
    let app = spawn_app(&config).await;
    let response = app
        .post(
            "/v1/responses",
            &json!({"model": "gpt-4o", "input": "Hi", "stream": true}),
            &[],
        )
        .await;
    assert_eq!(response.status(), 200);
    let events = typed_events(&streamed(response).await);
    assert_eq!(events.last().unwrap()["type"], "response.completed");
    assert_eq!(down.requests().len(), 1);
    assert_eq!(up.last_request().unwrap().path, "/openai/v1/responses");
    let record = &app.records(1).await[0];
    assert_eq!(record["provider_id"], "azure");
    assert_eq!(record["attempts"], 2);
    assert_eq!(record["output_tokens"], 3);
}

#[actix_web::test]
async fn stored_responses_are_read_and_deleted_where_they_are_kept() {
    let (app, mock) = app_and_mock().await;
    let response = app
        .post(
            "/v1/responses",
            &json!({"model": "openai/gpt-4o", "input": "Remember me"}),
            &[],
        )
        .await;
    let created: Value = response.json().await.unwrap();
    let id = created["id"].as_str().unwrap();

    let response = app.get(&format!("/v1/responses/{id}")).await;
    assert_eq!(response.status(), 200);
    let read: Value = response.json().await.unwrap();
    assert_eq!(read, created);
    let asked = mock.last_request().unwrap();
    assert_eq!(
        (asked.method.as_str(), asked.path.as_str()),
        ("GET", &*format!("/v1/responses/{id}"))
    );
    assert_eq!(
        asked.header("authorization"),
        Some("Bearer sk-openai-provider-key")
    );

    let deleted: Value = app
        .client
        .delete(format!("{}/v1/responses/{id}", app.address))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        deleted,
        json!({"id": id, "object": "response", "deleted": true})
    );

    // Gone: every provider that keeps responses was asked (OpenAI's, then Azure's path).
    let response = app.get(&format!("/v1/responses/{id}")).await;
    assert_eq!(response.status(), 404);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["code"], "response_not_found", "{error}");
    let paths: Vec<String> = mock
        .requests()
        .iter()
        .rev()
        .take(2)
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(
        paths,
        [
            format!("/openai/v1/responses/{id}"),
            format!("/v1/responses/{id}")
        ]
    );

    let response = app.get("/v1/responses/bad%20id").await;
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["param"], "id", "{error}");
}

#[actix_web::test]
async fn the_router_the_sanitizer_and_the_budget_treat_responses_like_chat() {
    let mock = MockUpstream::start().unwrap();
    mock.set_models(&["llama3.1:8b"]);
    let config = format!(
        "{}\n[sanitization]\nenabled = true\ncompliance_gate = true\n\n[key_map.spent-key]\nlabel = \"spent\"\nmax_budget_usd = 0\n",
        four_providers(&mock)
    );
    let app = spawn_app(&config).await;

    // model: "auto" under a profile: routed, and answered in the Responses API's shape
    // whichever API the chosen provider speaks.
    for stream in [false, true] {
        let body = json!({"model": "auto", "input": "Hello", "stream": stream});
        let response = app
            .post(
                "/v1/responses",
                &body,
                &[("x-route-profile", "quality-first")],
            )
            .await;
        assert_eq!(response.status(), 200);
        assert_eq!(header(&response, "x-route-profile"), Some("quality-first"));
        assert!(header(&response, "x-route-model").is_some());
        let text = streamed(response).await;
        if stream {
            assert_eq!(
                typed_events(&text).last().unwrap()["type"],
                "response.completed"
            );
        } else {
            let answer: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(
                answer["output"][0]["content"][0]["text"],
                "chunk0 chunk1 chunk2 "
            );
        }
    }
    let records = app.records(2).await;
    for record in &records {
        assert_eq!(record["endpoint"], "responses");
        assert_eq!(record["route_profile"], "quality-first", "{record}");
    }

    // A secret in an input item is blocked before any upstream.
    let before = upstream_requests(&mock).len();
    let body = json!({"model": "gpt-4o", "input": [{"role": "user", "content": [
        {"type": "input_text", "text": "my key is sk-ant-api03-rFd5xpSkDIgOw3gcHN1yxohPQHxYNsJIx3gRe1GK0YxNVYdM32ll4Tm3ZhzEZam6yvdWSwQTy4eirzmgy0ps6fp_rK88iAA"}]}]});
    let response = app.post("/v1/responses", &body, &[]).await;
    assert_eq!(response.status(), 403);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["error"]["code"], "compliance_blocked", "{answer}");
    assert_eq!(upstream_requests(&mock).len(), before);

    // A spent budget: 429 in OpenAI's shape, nothing forwarded.
    let body = json!({"model": "gpt-4o", "input": "Hello"});
    let response = app
        .post(
            "/v1/responses",
            &body,
            &[("authorization", "Bearer spent-key")],
        )
        .await;
    assert_eq!(response.status(), 429);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["error"]["code"], "insufficient_quota", "{answer}");
    assert_eq!(upstream_requests(&mock).len(), before);
}
