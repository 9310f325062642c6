//! Bad input: each case answered in the caller's API error shape with a fitting status, never a panic.

use serde_json::{json, Value};

use crate::helpers::*;

/// Asserts the status, the `x-request-id` and the error shape of the endpoint's API, and returns the message.
async fn error_message(response: reqwest::Response, path: &str, status: u16) -> String {
    assert_eq!(response.status(), status, "{path}");
    assert!(
        response.headers().contains_key("x-request-id"),
        "{path}: errors carry x-request-id too"
    );
    let json: Value = response.json().await.unwrap();
    if path.starts_with("/v1/messages") {
        assert_eq!(json["type"], "error", "{json}");
        json["error"]["message"].as_str().unwrap().to_string()
    } else {
        assert!(json["error"]["type"].is_string(), "{json}");
        json["error"]["message"].as_str().unwrap().to_string()
    }
}

const PATHS: [&str; 3] = [
    "/v1/chat/completions",
    "/v1/messages",
    "/v1/messages/count_tokens",
];

async fn raw(
    app: &TestApp,
    path: &str,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    app.client
        .post(format!("{}{path}", app.address))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

#[actix_web::test]
async fn malformed_json_is_a_400() {
    let mock = MockUpstream::start().unwrap();
    let app = spawn_app(&four_providers(&mock)).await;
    for path in PATHS {
        for body in [
            "{\"model\": ",
            "not json",
            "[1,2]",
            "",
            "{\"model\": 42, \"messages\": []}",
        ] {
            let message =
                error_message(raw(&app, path, "application/json", body).await, path, 400).await;
            assert!(!message.is_empty());
        }
    }
    assert!(
        mock.requests().iter().all(|r| r.method != "POST"),
        "nothing forwarded"
    );
}

#[actix_web::test]
async fn a_missing_model_or_messages_is_a_400_naming_the_field() {
    let mock = MockUpstream::start().unwrap();
    let app = spawn_app(&four_providers(&mock)).await;
    for path in PATHS {
        let no_model = app
            .post(
                path,
                &json!({"messages": [{"role": "user", "content": "hi"}]}),
                &[],
            )
            .await;
        assert!(error_message(no_model, path, 400).await.contains("`model`"));
        let no_messages = app.post(path, &json!({"model": "gpt-4o"}), &[]).await;
        assert!(error_message(no_messages, path, 400)
            .await
            .contains("`messages`"));
    }
}

#[actix_web::test]
async fn an_unknown_model_is_a_404_that_says_where_to_look() {
    let mock = MockUpstream::start().unwrap();
    let app = spawn_app(&four_providers(&mock)).await;

    let chat = app
        .post(
            "/v1/chat/completions",
            &chat_body("no-such-model", false),
            &[],
        )
        .await;
    let messages = app
        .post("/v1/messages", &messages_body("no-such-model", false), &[])
        .await;

    assert!(error_message(chat, "/v1/chat/completions", 404)
        .await
        .contains("/v1/models"));
    assert!(error_message(messages, "/v1/messages", 404)
        .await
        .contains("/v1/models"));
}

#[actix_web::test]
async fn a_body_over_max_body_bytes_is_a_413_declared_or_streamed() {
    let mock = MockUpstream::start().unwrap();
    let app = spawn_app(&format!(
        "{}\n[server]\nmax_body_bytes = 1024\n",
        four_providers(&mock)
    ))
    .await;
    let big =
        json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "x".repeat(4096)}]})
            .to_string();

    for path in PATHS {
        let declared = raw(&app, path, "application/json", big.clone()).await;
        assert!(error_message(declared, path, 413).await.contains("1024"));
        let chunks = futures_util::stream::iter(
            big.clone()
                .into_bytes()
                .chunks(512)
                .map(|c| Ok::<_, std::io::Error>(c.to_vec()))
                .collect::<Vec<_>>(),
        );
        let streamed = raw(
            &app,
            path,
            "application/json",
            reqwest::Body::wrap_stream(chunks),
        )
        .await;
        error_message(streamed, path, 413).await;
    }
    assert!(
        mock.requests().iter().all(|r| r.method != "POST"),
        "nothing forwarded"
    );
}

#[actix_web::test]
async fn a_wrong_content_type_is_a_415() {
    let mock = MockUpstream::start().unwrap();
    let app = spawn_app(&four_providers(&mock)).await;
    for path in PATHS {
        let body = chat_body("gpt-4o", false).to_string();
        let response = raw(&app, path, "application/x-www-form-urlencoded", body).await;
        assert!(error_message(response, path, 415)
            .await
            .contains("application/json"));
    }
}

#[actix_web::test]
async fn an_upstream_that_refuses_connections_is_a_502() {
    let app = spawn_app(
        r#"
[[providers]]
id = "openai"
provider_type = "openai"
endpoint = "http://127.0.0.1:1"

[[providers]]
id = "anthropic"
provider_type = "anthropic"
endpoint = "http://127.0.0.1:1"
"#,
    )
    .await;

    let chat = app
        .post("/v1/chat/completions", &chat_body("gpt-4o", false), &[])
        .await;
    let messages = app
        .post(
            "/v1/messages",
            &messages_body("claude-sonnet-4-20250514", true),
            &[],
        )
        .await;

    assert!(error_message(chat, "/v1/chat/completions", 502)
        .await
        .contains("openai"));
    assert!(error_message(messages, "/v1/messages", 502)
        .await
        .contains("anthropic"));
}

#[actix_web::test]
async fn an_upstream_that_does_not_answer_in_time_is_a_504() {
    let mock = MockUpstream::start().unwrap();
    let app = spawn_app(&format!(
        r#"
[[providers]]
id = "openai"
provider_type = "openai"
endpoint = "{url}"
read_timeout_ms = 300

[[providers]]
id = "anthropic"
provider_type = "anthropic"
endpoint = "{url}"
read_timeout_ms = 300
"#,
        url = mock.url()
    ))
    .await;

    let chat = app
        .post(
            "/v1/chat/completions",
            &chat_body("gpt-4o", false),
            &[("x-mock-delay-ms", "3000")],
        )
        .await;
    let messages = app
        .post(
            "/v1/messages",
            &messages_body("claude-sonnet-4-20250514", false),
            &[("x-mock-delay-ms", "3000")],
        )
        .await;

    assert!(error_message(chat, "/v1/chat/completions", 504)
        .await
        .contains("300 ms"));
    assert!(error_message(messages, "/v1/messages", 504)
        .await
        .contains("300 ms"));
}

#[actix_web::test]
async fn a_stream_that_stalls_past_the_read_timeout_is_cut_off() {
    let mock = MockUpstream::start().unwrap();
    let app = spawn_app(&format!(
        "[[providers]]\nid = \"openai\"\nprovider_type = \"openai\"\nendpoint = \"{}\"\nread_timeout_ms = 300\n",
        mock.url()
    ))
    .await;

    let response = app
        .post(
            "/v1/chat/completions",
            &chat_body("gpt-4o", true),
            &[("x-mock-chunk-delay-ms", "3000")],
        )
        .await;

    assert_eq!(response.status(), 200);
    let body = response.bytes().await;
    assert!(body.is_err() || !String::from_utf8_lossy(&body.unwrap()).contains("[DONE]"));
}

#[actix_web::test]
async fn unknown_routes_answer_json_404s() {
    let app = spawn_app("").await;

    let response = app.get("/v1/nope").await;

    assert!(error_message(response, "/v1/nope", 404)
        .await
        .contains("/v1/nope"));
}
