//! Each provider type, streaming and not: the URL, headers and key the upstream received, and the bytes the client got.

use serde_json::Value;

use crate::helpers::*;

struct Case {
    name: &'static str,
    path: &'static str,
    body: fn(bool) -> Value,
    upstream_path: &'static str,
    upstream_query: &'static str,
    /// The credential header the upstream must receive.
    auth: Option<(&'static str, &'static str)>,
    /// Streams of this type get `stream_options.include_usage` so the ledger learns their usage.
    asks_usage: bool,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "openai",
            path: "/v1/chat/completions",
            body: |s| chat_body("gpt-4o", s),
            upstream_path: "/v1/chat/completions",
            upstream_query: "",
            auth: Some(("authorization", "Bearer sk-openai-provider-key")),
            asks_usage: true,
        },
        Case {
            name: "azure_openai",
            path: "/v1/chat/completions",
            body: |s| chat_body("my-gpt4o", s),
            upstream_path: "/openai/deployments/my-gpt4o/chat/completions",
            upstream_query: "api-version=2024-10-21",
            auth: Some(("api-key", "azure-provider-key")),
            asks_usage: true,
        },
        Case {
            name: "anthropic",
            path: "/v1/messages",
            body: |s| messages_body("claude-sonnet-4-20250514", s),
            upstream_path: "/v1/messages",
            upstream_query: "",
            auth: Some(("x-api-key", "sk-ant-provider-key")),
            asks_usage: false,
        },
        Case {
            name: "local",
            path: "/v1/chat/completions",
            body: |s| chat_body("llama3:8b", s),
            upstream_path: "/v1/chat/completions",
            upstream_query: "",
            // The local provider holds no key: the client's own token goes through (bring your own key).
            auth: Some(("authorization", "Bearer not-needed")),
            asks_usage: false,
        },
    ]
}

/// Sends the same request straight to the mock, for the bytes a client would get without the gateway.
async fn direct(mock: &MockUpstream, case: &Case, body: &Value) -> (String, bytes::Bytes) {
    let mut url = format!("{}{}", mock.url(), case.upstream_path);
    if !case.upstream_query.is_empty() {
        url = format!("{url}?{}", case.upstream_query);
    }
    let response = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    (content_type, response.bytes().await.unwrap())
}

async fn each_provider_type_forwards(stream: bool) {
    for case in cases() {
        let mock = MockUpstream::start().unwrap();
        mock.set_models(&["llama3:8b"]);
        let app = spawn_app(&four_providers(&mock)).await;
        let body = (case.body)(stream);

        let response = app
            .post(
                case.path,
                &body,
                &[
                    ("authorization", "Bearer not-needed"),
                    ("x-source", "tests"),
                    ("openai-organization", "org-42"),
                    ("anthropic-beta", "tools-2024"),
                ],
            )
            .await;
        let status = response.status();
        let request_id = response.headers().get("x-request-id").cloned();
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_string();
        let got = response.bytes().await.unwrap();

        assert_eq!(
            status,
            200,
            "{}: {}",
            case.name,
            String::from_utf8_lossy(&got)
        );
        assert!(request_id.is_some(), "{}: x-request-id", case.name);
        let upstream = mock
            .requests()
            .into_iter()
            .find(|r| r.method == "POST")
            .unwrap();
        assert_eq!(upstream.path, case.upstream_path, "{}", case.name);
        assert_eq!(upstream.query, case.upstream_query, "{}", case.name);
        let sent = body.to_string();
        let expected_upstream = if stream && case.asks_usage {
            // The one change: the usage request, added after the opening brace.
            format!(
                "{{\"stream_options\":{{\"include_usage\":true}},{}",
                &sent[1..]
            )
        } else {
            sent
        };
        assert_eq!(
            String::from_utf8_lossy(&upstream.body),
            expected_upstream,
            "{}: body otherwise unchanged",
            case.name
        );
        match case.auth {
            Some((name, value)) => assert_eq!(upstream.header(name), Some(value), "{}", case.name),
            None => assert_eq!(upstream.header("authorization"), None, "{}", case.name),
        }
        for leaked in ["authorization", "x-api-key", "api-key"] {
            if case.auth.map(|(n, _)| n) != Some(leaked) {
                assert_eq!(
                    upstream.header(leaked),
                    None,
                    "{}: {leaked} must not reach upstream",
                    case.name
                );
            }
        }
        assert_eq!(
            upstream.header("x-source"),
            None,
            "{}: gateway headers stay in the gateway",
            case.name
        );
        assert_eq!(
            upstream.header("openai-organization"),
            Some("org-42"),
            "{}",
            case.name
        );
        assert_eq!(
            upstream.header("anthropic-beta"),
            Some("tools-2024"),
            "{}",
            case.name
        );
        if case.name == "anthropic" {
            assert_eq!(upstream.header("anthropic-version"), Some("2023-06-01"));
        }

        let (direct_type, expected) = direct(&mock, &case, &body).await;
        assert_eq!(content_type, direct_type, "{}", case.name);
        assert_eq!(
            got, expected,
            "{}: the client gets the upstream's bytes",
            case.name
        );
        if stream {
            assert!(
                content_type.starts_with("text/event-stream"),
                "{}",
                case.name
            );
        }
    }
}

#[actix_web::test]
async fn each_provider_type_forwards_a_non_streaming_request() {
    each_provider_type_forwards(false).await;
}

#[actix_web::test]
async fn each_provider_type_forwards_a_streaming_request() {
    each_provider_type_forwards(true).await;
}

#[actix_web::test]
async fn anthropic_count_tokens_and_query_strings_are_forwarded() {
    let mock = MockUpstream::start().unwrap();
    let app = spawn_app(&four_providers(&mock)).await;
    let body = messages_body("claude-sonnet-4-20250514", false);

    let response = app
        .post(
            "/v1/messages/count_tokens?beta=true",
            &body,
            &[("anthropic-version", "2023-06-01")],
        )
        .await;

    assert_eq!(response.status(), 200);
    let json: Value = response.json().await.unwrap();
    assert_eq!(
        json["input_tokens"],
        mock_upstream::prompt_tokens(body.to_string().as_bytes())
    );
    let upstream = mock.last_request().unwrap();
    assert_eq!(upstream.path, "/v1/messages/count_tokens");
    assert_eq!(upstream.query, "beta=true");
    assert_eq!(upstream.header("x-api-key"), Some("sk-ant-provider-key"));
}

#[actix_web::test]
async fn unknown_fields_survive_and_upstream_errors_come_back_unchanged() {
    let mock = MockUpstream::start().unwrap();
    let app = spawn_app(&four_providers(&mock)).await;
    let mut body = chat_body("gpt-4o", false);
    body["some_future_field"] = serde_json::json!({"nested": [1, 2, 3]});

    let response = app
        .post("/v1/chat/completions", &body, &[("x-mock-status", "429")])
        .await;

    assert_eq!(response.status(), 429);
    let json: Value = response.json().await.unwrap();
    assert_eq!(json["error"]["type"], "rate_limit_error");
    assert_eq!(json["error"]["message"], "mock upstream error 429");
    assert_eq!(
        mock.last_request().unwrap().json()["some_future_field"]["nested"][2],
        3
    );
}

#[actix_web::test]
async fn an_upstream_redirect_goes_back_to_the_client_and_is_not_followed() {
    let mock = MockUpstream::start().unwrap();
    let app = spawn_app(&four_providers(&mock)).await;
    // Following it would send the provider key to wherever the redirect points.
    let elsewhere = format!("{}/v1/chat/completions?followed=1", mock.url());
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    let response = client
        .post(format!("{}/v1/chat/completions", app.address))
        .header("content-type", "application/json")
        .header("x-mock-status", "307")
        .header("x-mock-location", elsewhere.as_str())
        .body(chat_body("gpt-4o", false).to_string())
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 307);
    assert_eq!(
        response
            .headers()
            .get("location")
            .unwrap()
            .to_str()
            .unwrap(),
        elsewhere
    );
    let calls = mock
        .requests()
        .into_iter()
        .filter(|r| r.path == "/v1/chat/completions")
        .count();
    assert_eq!(calls, 1, "the gateway followed the redirect");
}

#[actix_web::test]
async fn a_pinned_provider_gets_the_model_without_its_prefix() {
    let mock = MockUpstream::start().unwrap();
    let app = spawn_app(&four_providers(&mock)).await;

    let response = app
        .post(
            "/v1/chat/completions",
            &chat_body("ollama/some-unlisted-model", false),
            &[],
        )
        .await;

    assert_eq!(response.status(), 200);
    let upstream = mock.last_request().unwrap();
    assert_eq!(upstream.json()["model"], "some-unlisted-model");
    assert_eq!(upstream.json()["messages"][0]["content"], "Hello");
}

#[actix_web::test]
async fn a_failing_provider_fails_over_to_the_next_that_serves_the_model() {
    let healthy = MockUpstream::start().unwrap();
    let config = format!(
        r#"
[[providers]]
id = "openai"
provider_type = "openai"
api_key = "k1"
endpoint = "http://127.0.0.1:1"  # nothing listens on port 1

[[providers]]
id = "azure"
provider_type = "azure_openai"
api_key = "k2"
endpoint = "{}"
deployment = "gpt-4o"
api_version = "2024-10-21"
"#,
        healthy.url()
    );
    let app = spawn_app(&config).await;

    let response = app
        .post("/v1/chat/completions", &chat_body("gpt-4o", false), &[])
        .await;

    assert_eq!(response.status(), 200);
    assert_eq!(
        healthy.last_request().unwrap().path,
        "/openai/deployments/gpt-4o/chat/completions"
    );
}

#[actix_web::test]
async fn upstream_connections_are_kept_alive_and_reused() {
    let mock = MockUpstream::start().unwrap();
    let app = spawn_app(&four_providers(&mock)).await;

    for stream in [false, true, false, true] {
        let response = app
            .post("/v1/chat/completions", &chat_body("gpt-4o", stream), &[])
            .await;
        assert_eq!(response.status(), 200);
        response.bytes().await.unwrap();
    }

    let peers: std::collections::HashSet<_> = mock
        .requests()
        .iter()
        .filter(|r| r.method == "POST")
        .map(|r| r.peer.expect("the mock knows the peer address"))
        .collect();
    assert_eq!(
        peers.len(),
        1,
        "four sequential calls share one upstream connection: {peers:?}"
    );
}
