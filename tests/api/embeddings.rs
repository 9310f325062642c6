//! The rest of OpenAI's API that tools call: `POST /v1/embeddings` and the legacy
//! `POST /v1/completions` to each OpenAI-API provider type (the answer passed through byte for
//! byte, the record's endpoint, tokens and cost), failover, the sanitizer and the budget on
//! them, their refusal toward Anthropic and for `model: "auto"`; and `GET /v1/models/{id}`.

use serde_json::{json, Value};

use crate::helpers::*;

/// text-embedding-3-small's price per token in the shipped catalog ($0.02 / 1M).
const SMALL_PER_TOKEN: f64 = 0.02 / 1_000_000.0;
/// The price the config gives gpt-3.5-turbo-instruct (it has no card: the catalog's cards are
/// chat models).
const INSTRUCT: (f64, f64) = (1.5 / 1_000_000.0, 2.0 / 1_000_000.0);

/// The four provider types on `mock` (`four_providers`), with an Azure deployment per
/// operation, an Anthropic provider listing a model of its own, and a price for the completion
/// model.
fn config(mock: &MockUpstream, extra: &str) -> String {
    let azure = |id: &str, deployment: &str| {
        format!(
            "[[providers]]\nid = \"{id}\"\nprovider_type = \"azure_openai\"\napi_key = \"azure-provider-key\"\nendpoint = \"{}\"\ndeployment = \"{deployment}\"\napi_version = \"2024-10-21\"\n",
            mock.url()
        )
    };
    format!(
        r#"{four}
{embed}
{instruct}
[[providers]]
id = "anthropic-embed"
provider_type = "anthropic"
endpoint = "{url}"
models = ["claude-embedder"]

[[pricing]]
model = "gpt-3.5-turbo-instruct"
input_per_mtok = 1.5
output_per_mtok = 2.0
{extra}
"#,
        four = four_providers(mock),
        embed = azure("azure-embed", "text-embedding-3-small"),
        instruct = azure("azure-instruct", "gpt-3.5-turbo-instruct"),
        url = mock.url()
    )
}

/// A mock serving the local models of these tests.
fn mock() -> MockUpstream {
    let mock = MockUpstream::start().unwrap();
    mock.set_models(&["nomic-embed-text", "qwen2.5-coder:1.5b"]);
    mock
}

/// One provider type: the model id that pins it, where the upstream is asked, and the price.
struct Case {
    provider: &'static str,
    model: &'static str,
    upstream_path: &'static str,
    upstream_query: &'static str,
    /// Streams of this type get `stream_options.include_usage` added.
    asks_usage: bool,
    /// USD per (input, output) token; (0, 0) for a free local model.
    price: (f64, f64),
}

fn embedding_cases() -> [Case; 3] {
    [
        Case {
            provider: "openai",
            model: "openai/text-embedding-3-small",
            upstream_path: "/v1/embeddings",
            upstream_query: "",
            asks_usage: false,
            price: (SMALL_PER_TOKEN, 0.0),
        },
        Case {
            provider: "azure-embed",
            model: "azure-embed/text-embedding-3-small",
            upstream_path: "/openai/deployments/text-embedding-3-small/embeddings",
            upstream_query: "api-version=2024-10-21",
            asks_usage: false,
            price: (SMALL_PER_TOKEN, 0.0),
        },
        Case {
            provider: "ollama",
            model: "ollama/nomic-embed-text",
            upstream_path: "/v1/embeddings",
            upstream_query: "",
            asks_usage: false,
            price: (0.0, 0.0),
        },
    ]
}

fn completion_cases() -> [Case; 3] {
    [
        Case {
            provider: "openai",
            model: "openai/gpt-3.5-turbo-instruct",
            upstream_path: "/v1/completions",
            upstream_query: "",
            asks_usage: true,
            price: INSTRUCT,
        },
        Case {
            provider: "azure-instruct",
            model: "azure-instruct/gpt-3.5-turbo-instruct",
            upstream_path: "/openai/deployments/gpt-3.5-turbo-instruct/completions",
            upstream_query: "api-version=2024-10-21",
            asks_usage: true,
            price: INSTRUCT,
        },
        Case {
            provider: "ollama",
            model: "ollama/qwen2.5-coder:1.5b",
            upstream_path: "/v1/completions",
            upstream_query: "",
            asks_usage: false,
            price: (0.0, 0.0),
        },
    ]
}

/// The body `case`'s upstream receives for `sent` (the pin removed from the model id).
fn upstream_body(case: &Case, sent: &Value) -> Value {
    let mut body = sent.clone();
    body["model"] = json!(case.model.split_once('/').unwrap().1);
    body
}

/// POSTs `body` straight to the mock at `case`'s path: the bytes a client would get there.
async fn direct(mock: &MockUpstream, case: &Case, body: &Value) -> bytes::Bytes {
    let mut url = format!("{}{}", mock.url(), case.upstream_path);
    if !case.upstream_query.is_empty() {
        url = format!("{url}?{}", case.upstream_query);
    }
    reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
}

/// Checks a record's endpoint, provider, tokens and cost.
fn assert_record(record: &Value, endpoint: &str, case: &Case, tokens: (i64, i64)) {
    let ctx = format!("{endpoint} via {}: {record}", case.provider);
    assert_eq!(record["endpoint"], endpoint, "{ctx}");
    assert_eq!(record["provider_id"], case.provider, "{ctx}");
    assert_eq!(record["status"], 200, "{ctx}");
    assert_eq!(record["input_tokens"], tokens.0, "{ctx}");
    assert_eq!(record["output_tokens"], tokens.1, "{ctx}");
    let cost = tokens.0 as f64 * case.price.0 + tokens.1 as f64 * case.price.1;
    let recorded = record["cost_usd"].as_f64().unwrap_or(f64::NAN);
    assert!((recorded - cost).abs() < 1e-12, "{ctx}: cost {cost}");
}

#[actix_web::test]
async fn embeddings_reach_each_openai_api_provider_type_and_are_metered_and_priced() {
    let mock = mock();
    let app = spawn_app(&config(&mock, "")).await;
    let inputs = [
        json!("The quick brown fox"),
        json!(["first document", "second, longer document", "third"]),
        json!([1, 2, 3, 4, 5]),
        json!([[1, 2], [3, 4, 5]]),
    ];

    let mut expected = Vec::new();
    for case in embedding_cases() {
        for (i, input) in inputs.iter().enumerate() {
            let mut body = json!({"model": case.model, "input": input});
            if i == 1 {
                body["dimensions"] = json!(4);
                body["encoding_format"] = json!("base64");
            }
            let response = app.post("/v1/embeddings", &body, &[]).await;
            assert_eq!(response.status(), 200, "{}", case.provider);
            let got = response.bytes().await.unwrap();

            let upstream = mock.last_request().unwrap();
            assert_eq!(upstream.path, case.upstream_path);
            assert_eq!(upstream.query, case.upstream_query);
            assert_eq!(upstream.json(), upstream_body(&case, &body));
            let direct = direct(&mock, &case, &upstream.json()).await;
            assert_eq!(got, direct, "{}: the answer passes through", case.provider);
            let answer: Value = serde_json::from_slice(&got).unwrap();
            let items = answer["data"].as_array().unwrap();
            assert_eq!(items.len(), [1, 3, 1, 2][i], "one item per input");
            if i == 1 {
                assert!(items[0]["embedding"].is_string(), "base64 stays base64");
            }
            let tokens = answer["usage"]["prompt_tokens"].as_i64().unwrap();
            assert!(tokens > 0);
            expected.push((tokens, case.provider));
        }
    }

    let records = app.records(expected.len()).await;
    let cases = embedding_cases();
    for (record, (tokens, provider)) in records.iter().rev().zip(&expected) {
        let case = cases.iter().find(|c| c.provider == *provider).unwrap();
        assert_record(record, "embeddings", case, (*tokens, 0));
        assert_eq!(record["streamed"], false);
    }
}

async fn completions_reach_each_openai_api_provider_type(stream: bool) {
    let mock = mock();
    let app = spawn_app(&config(&mock, "")).await;
    let mut expected = Vec::new();
    for case in completion_cases() {
        // Continue's autocomplete: fill-in-the-middle with `suffix`.
        let body = json!({"model": case.model, "prompt": "def add(a, b):\n    ",
            "suffix": "\n\nprint(add(1, 2))", "max_tokens": 32, "stream": stream});
        let response = app.post("/v1/completions", &body, &[]).await;
        assert_eq!(response.status(), 200, "{}", case.provider);
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_string();
        let got = response.bytes().await.unwrap();

        let upstream = mock.last_request().unwrap();
        assert_eq!(upstream.path, case.upstream_path);
        assert_eq!(upstream.query, case.upstream_query);
        let mut sent = upstream_body(&case, &body);
        if stream && case.asks_usage {
            sent["stream_options"] = json!({"include_usage": true});
        }
        assert_eq!(upstream.json(), sent, "{}: suffix and all", case.provider);
        // What the client gets is what the upstream sends a client that did not ask for the
        // usage chunk.
        let direct = direct(&mock, &case, &upstream_body(&case, &body)).await;
        assert_eq!(got, direct, "{}: the answer passes through", case.provider);
        let text = String::from_utf8_lossy(&got);
        if stream {
            assert!(content_type.starts_with("text/event-stream"));
            assert!(text.contains("\"text\":\"chunk0 \"") && text.ends_with("data: [DONE]\n\n"));
        } else {
            assert!(text.contains("\"object\":\"text_completion\""), "{text}");
        }
        let input = mock_upstream::prompt_tokens(&upstream.body) as i64;
        expected.push((input, case.provider));
    }

    let records = app.records(expected.len()).await;
    let cases = completion_cases();
    for (record, (input, provider)) in records.iter().rev().zip(&expected) {
        let case = cases.iter().find(|c| c.provider == *provider).unwrap();
        assert_eq!(record["streamed"], stream);
        if stream && !case.asks_usage {
            // A local server's stream without usage: estimated, as chat's is.
            assert_eq!(record["usage_estimated"], true, "{record}");
            assert_eq!(record["endpoint"], "completions");
            assert_eq!(record["output_tokens"], 6, "`chunk0 chunk1 chunk2 ` / 4");
        } else {
            assert_record(record, "completions", case, (*input, 3));
        }
    }
}

#[actix_web::test]
async fn legacy_completions_reach_each_openai_api_provider_type() {
    completions_reach_each_openai_api_provider_type(false).await;
}

#[actix_web::test]
async fn legacy_completion_streams_reach_each_openai_api_provider_type() {
    completions_reach_each_openai_api_provider_type(true).await;
}

#[actix_web::test]
async fn a_completion_stream_keeps_the_usage_chunk_the_client_asked_for() {
    let mock = mock();
    let app = spawn_app(&config(&mock, "")).await;
    let body = json!({"model": "gpt-3.5-turbo-instruct", "prompt": "Say hi", "stream": true,
        "stream_options": {"include_usage": true}});
    let response = app.post("/v1/completions", &body, &[]).await;
    let text = response.text().await.unwrap();
    assert!(text.contains("\"choices\":[],"), "{text}");
    assert!(text.contains("\"completion_tokens\":3"), "{text}");
    let record = &app.records(1).await[0];
    assert_eq!(record["usage_estimated"], false);
    assert_eq!(record["output_tokens"], 3);
}

#[actix_web::test]
async fn embeddings_fail_over_to_the_next_provider_listing_the_model() {
    let down = MockUpstream::start().unwrap();
    down.set_failing(Some(503));
    let up = mock();
    let config = format!(
        r#"
[[providers]]
id = "openai"
provider_type = "openai"
api_key = "sk-openai-provider-key"
endpoint = "{down}"

[[providers]]
id = "azure-embed"
provider_type = "azure_openai"
api_key = "azure-provider-key"
endpoint = "{up}"
deployment = "text-embedding-3-small"
api_version = "2024-10-21"
"#,
        down = down.url(),
        up = up.url()
    );
    let app = spawn_app(&config).await;
    let body = json!({"model": "text-embedding-3-small", "input": ["a", "b"]});
    let response = app.post("/v1/embeddings", &body, &[]).await;
    assert_eq!(response.status(), 200);
    response.bytes().await.unwrap();
    assert_eq!(down.requests().len(), 1);
    assert_eq!(
        up.last_request().unwrap().path,
        "/openai/deployments/text-embedding-3-small/embeddings"
    );
    let record = &app.records(1).await[0];
    assert_eq!(record["provider_id"], "azure-embed");
    assert_eq!(record["attempts"], 2);
}

#[actix_web::test]
async fn embeddings_and_completions_toward_anthropic_are_refused_naming_why() {
    let mock = mock();
    let app = spawn_app(&config(&mock, "")).await;
    for (path, body) in [
        (
            "/v1/embeddings",
            json!({"model": "claude-embedder", "input": "x"}),
        ),
        (
            "/v1/embeddings",
            json!({"model": "anthropic/claude-sonnet-4-20250514", "input": "x"}),
        ),
        (
            "/v1/completions",
            json!({"model": "claude-sonnet-4-20250514", "prompt": "x"}),
        ),
    ] {
        let response = app.post(path, &body, &[]).await;
        assert_eq!(response.status(), 400, "{path} {body}");
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["error"]["code"], "endpoint_not_served", "{answer}");
        assert_eq!(answer["error"]["type"], "invalid_request_error");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("(anthropic)") && message.contains("Anthropic's API"),
            "{message}"
        );
    }
    assert!(mock.requests().iter().all(|r| r.method != "POST"));
}

#[actix_web::test]
async fn embeddings_and_completions_do_not_route_and_need_their_input() {
    let mock = mock();
    let app = spawn_app(&config(&mock, "")).await;
    for (path, body, headers, param) in [
        (
            "/v1/embeddings",
            json!({"model": "auto", "input": "x"}),
            &[][..],
            "model",
        ),
        (
            "/v1/completions",
            json!({"model": "gpt-3.5-turbo-instruct", "prompt": "x"}),
            &[("x-route-profile", "balanced")][..],
            "model",
        ),
        (
            "/v1/embeddings",
            json!({"model": "text-embedding-3-small", "messages": []}),
            &[][..],
            "input",
        ),
        (
            "/v1/completions",
            json!({"model": "gpt-3.5-turbo-instruct"}),
            &[][..],
            "prompt",
        ),
    ] {
        let response = app.post(path, &body, headers).await;
        assert_eq!(response.status(), 400, "{path} {body}");
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["error"]["param"], param, "{answer}");
    }
}

#[actix_web::test]
async fn a_secret_in_an_embeddings_input_is_blocked_or_redacted_as_in_chat() {
    const LEAKY: &str = "Deploy with AWS key AKIAWHQHBLWEVGK3RLCE and mail ops@example.com";
    let body = json!({"model": "text-embedding-3-small", "input": ["clean text", LEAKY]});

    let mock = mock();
    let gate = "[sanitization]\nenabled = true\ncompliance_gate = true";
    let app = spawn_app(&config(&mock, gate)).await;
    let response = app.post("/v1/embeddings", &body, &[]).await;
    assert_eq!(response.status(), 403);
    let answer: Value = response.json().await.unwrap();
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(message.contains("aws_access_key_id") && !message.contains("AKIA"));
    assert!(mock.requests().iter().all(|r| r.method != "POST"));
    assert_eq!(app.records(1).await[0]["error_kind"], "compliance_blocked");

    let mock = MockUpstream::start().unwrap();
    let redact = "[sanitization]\nenabled = true\nredact_pii = true";
    let app = spawn_app(&config(&mock, redact)).await;
    let response = app.post("/v1/embeddings", &body, &[]).await;
    assert_eq!(response.status(), 200);
    response.bytes().await.unwrap();
    let upstream = mock.last_request().unwrap().json();
    let sent = upstream["input"][1].as_str().unwrap();
    assert!(
        sent.contains("[REDACTED_EMAIL]") && !sent.contains("ops@example.com"),
        "{sent}"
    );
    let record = &app.records(1).await[0];
    let findings: Value = record["sanitizer_findings"].clone();
    assert_eq!(findings["email"], 1, "{record}");
}

#[actix_web::test]
async fn a_key_whose_budget_is_spent_gets_429_on_embeddings() {
    let mock = mock();
    let app = spawn_app(&config(
        &mock,
        "[key_map.team-alpha-key]\nlabel = \"alpha\"\nmax_budget_usd = 0",
    ))
    .await;
    let body = json!({"model": "text-embedding-3-small", "input": "some text"});
    let response = app
        .post(
            "/v1/embeddings",
            &body,
            &[("authorization", "Bearer team-alpha-key")],
        )
        .await;
    assert_eq!(response.status(), 429);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["error"]["code"], "insufficient_quota", "{answer}");
    assert!(mock.requests().iter().all(|r| r.method != "POST"));
    let record = &app.records(1).await[0];
    assert_eq!(record["endpoint"], "embeddings");
    assert_eq!(record["error_kind"], "insufficient_quota");
}

#[actix_web::test]
async fn one_model_is_answered_in_openais_shape_and_an_unknown_one_is_a_404() {
    let mock = mock();
    mock.set_models(&["nomic-embed-text", "Qwen/Qwen2.5-7B-Instruct"]);
    let app = spawn_app(&config(&mock, "")).await;

    for (id, owner) in [
        ("text-embedding-3-small", "openai"),
        ("gpt-4o", "openai"),
        ("claude-embedder", "anthropic"),
        ("Qwen/Qwen2.5-7B-Instruct", "local"),
    ] {
        let response = app.get(&format!("/v1/models/{id}")).await;
        assert_eq!(response.status(), 200, "{id}");
        let model: Value = response.json().await.unwrap();
        assert_eq!(model["id"], id);
        assert_eq!(model["object"], "model");
        assert_eq!(model["owned_by"], owner);
        assert!(model["created"].is_i64(), "{model}");
    }

    let response = app.get("/v1/models/no-such-model").await;
    assert_eq!(response.status(), 404);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["error"]["code"], "model_not_found");
    assert_eq!(answer["error"]["type"], "invalid_request_error");
}
