//! Provider keys never appear in a response, a log line (even at trace level) or the ledger database.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::json;

use crate::helpers::*;

const KEYS: [&str; 4] = [
    "sk-openai-provider-key",
    "azure-provider-key",
    "sk-ant-provider-key",
    "sk-alpha-secret",
];

#[actix_web::test]
async fn provider_keys_appear_in_no_response_and_no_log_line() {
    let mock = MockUpstream::start().unwrap();
    mock.set_models(&["llama3:8b"]);
    let db_dir = tempfile::tempdir().unwrap();
    let db_path = db_dir.path().join("ledger.db");
    let config = format!(
        "{}\n[key_map.team-alpha-key]\nlabel = \"Team Alpha\"\nopenai_key = \"sk-alpha-secret\"\n\n[database]\nurl = \"sqlite://{}?mode=rwc\"\nspool_dir = \"{}\"\n",
        four_providers(&mock),
        db_path.display(),
        db_dir.path().join("spool").display()
    );
    let (dir, path) = write_config(&config);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log_path = dir.path().join("gateway.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_llm-gateway"))
        .args([
            "--config",
            path.to_str().unwrap(),
            "--port",
            &port.to_string(),
        ])
        .env("RUST_LOG", "trace")
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut up = false;
    for _ in 0..100 {
        if client.get(format!("{base}/health")).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "the gateway starts");

    let mut bodies = String::new();
    let calls = [
        (
            "/v1/chat/completions",
            chat_body("gpt-4o", false),
            "team-alpha-key",
        ),
        (
            "/v1/chat/completions",
            chat_body("gpt-4o", true),
            "unmapped",
        ),
        (
            "/v1/chat/completions",
            chat_body("my-gpt4o", false),
            "unmapped",
        ),
        (
            "/v1/messages",
            messages_body("claude-sonnet-4-20250514", true),
            "unmapped",
        ),
        (
            "/v1/chat/completions",
            chat_body("gpt-4o", false),
            "team-alpha-key",
        ),
    ];
    for (i, (path, body, token)) in calls.iter().enumerate() {
        let mut request = client
            .post(format!("{base}{path}"))
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {token}"))
            .body(body.to_string());
        if i == 4 {
            request = request.header("x-mock-status", "500");
        }
        if i >= 5 {
            // A careless upstream that repeats the key it received in its error message.
            request = request
                .header("x-mock-status", "401")
                .header("x-mock-echo-key", "1");
        }
        let response = request.send().await.unwrap();
        bodies.push_str(&format!("{:?}", response.headers()));
        bodies.push_str(&response.text().await.unwrap());
    }
    for path in ["/v1/providers", "/v1/models", "/health"] {
        bodies.push_str(
            &client
                .get(format!("{base}{path}"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap(),
        );
    }
    let refused = client
        .post(format!("{base}/v1/providers"))
        .json(&json!({"id": "openai", "provider_type": "openai", "api_key": "sk-openai-provider-key"}))
        .send()
        .await
        .unwrap();
    bodies.push_str(&refused.text().await.unwrap());
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "the gateway exits cleanly on SIGTERM: {status}"
    );

    let mut logs = String::new();
    std::fs::File::open(&log_path)
        .unwrap()
        .read_to_string(&mut logs)
        .unwrap();
    assert!(logs.contains("proxied"), "the requests were logged");
    for key in KEYS {
        assert!(!bodies.contains(key), "{key} appeared in a response");
        assert!(!logs.contains(key), "{key} appeared in the log");
    }
    assert_eq!(
        mock.requests()
            .iter()
            .filter(|r| r.method == "POST")
            .count(),
        5
    );
}

#[actix_web::test]
async fn a_provider_key_echoed_in_headers_or_split_across_stream_chunks_never_reaches_the_client() {
    let mock = MockUpstream::start().unwrap();
    let app = spawn_app(&four_providers(&mock)).await;
    let echo = [("x-mock-echo-key", "1"), ("x-mock-chunk-delay-ms", "30")];
    let rejected = [("x-mock-echo-key", "1"), ("x-mock-status", "401")];

    let mut seen = Vec::new();
    for (body, headers) in [
        (chat_body("gpt-4o", false), &rejected[..]),
        (chat_body("gpt-4o", false), &echo[..]),
        (chat_body("gpt-4o", true), &echo[..]),
    ] {
        let response = app.post("/v1/chat/completions", &body, headers).await;
        let status = response.status();
        let head = format!("{:?}", response.headers());
        let declared = response.content_length();
        let text = response.text().await.unwrap();
        if let Some(length) = declared {
            assert_eq!(length as usize, text.len(), "the declared length is kept");
        }
        seen.push((status, head, text));
    }

    let (status, head, text) = &seen[0];
    assert_eq!(*status, 401);
    assert!(head.contains("www-authenticate"), "{head}");
    let (_, ok_head, ok_text) = &seen[1];
    assert!(ok_head.contains("x-mock-echo"), "{ok_head}");
    let (_, _, stream) = &seen[2];
    assert!(stream.contains("you sent Bearer [REDACTED"), "{stream}");
    assert!(stream.contains("[DONE]"), "{stream}");
    for part in [head, text, ok_head, ok_text, stream] {
        assert!(
            !part.contains("sk-openai-provider-key"),
            "the key leaked: {part}"
        );
    }
    let records = app.records(3).await;
    assert!(records[0]["output_tokens"].as_i64().unwrap() > 0);
}
