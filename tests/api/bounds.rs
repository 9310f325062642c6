//! Every resource a client can hold is bounded: body time, head size, body memory, connections,
//! upstream connections; and the HTTP layer answers strictly (UTF-8 bodies, 405, 431) in the
//! caller's API shape.

use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;

/// Whether the mock received no proxied call (local model discovery aside).
fn nothing_forwarded(mock: &MockUpstream) -> bool {
    mock.requests().iter().all(|r| r.method != "POST")
}

fn chat_head(length: usize) -> String {
    format!("POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {length}\r\n\r\n")
}

#[actix_web::test]
async fn a_body_that_never_arrives_or_trickles_is_cut_off_with_a_408() {
    let mock = MockUpstream::start().unwrap();
    let app = spawn_app(&format!(
        "{}\n[server]\nbody_timeout_ms = 400\n",
        four_providers(&mock)
    ))
    .await;

    let started = Instant::now();
    let mut silent = raw(&app, &chat_head(5000)).await;
    let mut trickle = raw(&app, &chat_head(5000)).await;
    let trickling = async {
        for _ in 0..10 {
            if trickle.write_all(b" ").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        answer(&mut trickle, Duration::from_secs(5)).await
    };
    let (silent_answer, trickled) =
        tokio::join!(answer(&mut silent, Duration::from_secs(5)), trickling);

    for text in [&silent_answer, &trickled] {
        assert!(text.starts_with("HTTP/1.1 408"), "{text}");
        assert!(text.contains("body_timeout_ms"), "{text}");
    }
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(nothing_forwarded(&mock), "nothing was forwarded");
    assert_eq!(app.records(2).await[0]["status"], 408);
}

#[actix_web::test]
async fn headers_over_the_limit_get_a_431_in_the_callers_api_shape() {
    let mock = MockUpstream::start().unwrap();
    let app = spawn_app(&four_providers(&mock)).await;
    let big = "a".repeat(40 * 1024);

    let openai = app
        .post(
            "/v1/chat/completions",
            &chat_body("gpt-4o", false),
            &[("x-big", &big)],
        )
        .await;
    let anthropic = app
        .post(
            "/v1/messages",
            &messages_body("claude-sonnet-4-20250514", false),
            &[("x-big", &big)],
        )
        .await;

    assert_eq!(openai.status(), 431);
    let body: Value = openai.json().await.unwrap();
    assert_eq!(body["error"]["code"], "headers_too_large");
    assert_eq!(anthropic.status(), 431);
    let body: Value = anthropic.json().await.unwrap();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "request_too_large");
    assert!(nothing_forwarded(&mock));
}

#[actix_web::test]
async fn invalid_utf8_inside_a_json_string_is_refused_not_forwarded() {
    let mock = MockUpstream::start().unwrap();
    let app = spawn_app(&four_providers(&mock)).await;
    let mut body = br#"{"model": "gpt-4o", "messages": [{"role": "user", "content": "caf"#.to_vec();
    body.extend_from_slice(&[0xC3, 0x28]);
    body.extend_from_slice(br#""}]}"#);

    let response = app
        .client
        .post(format!("{}/v1/chat/completions", app.address))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("UTF-8"));
    assert!(nothing_forwarded(&mock));
}

#[actix_web::test]
async fn a_known_path_with_another_method_gets_405_with_allow() {
    let app = spawn_app("providers = []").await;

    let get_chat = app.get("/v1/chat/completions").await;
    let delete_stats = app
        .client
        .delete(format!("{}/v1/stats", app.address))
        .send()
        .await
        .unwrap();
    let put_provider = app
        .client
        .put(format!("{}/v1/providers/openai", app.address))
        .send()
        .await
        .unwrap();
    let get_messages = app.get("/v1/messages").await;
    let unknown = app.get("/v1/nothing-here").await;

    assert_eq!(get_chat.status(), 405);
    assert_eq!(get_chat.headers()["allow"], "POST");
    assert_eq!(delete_stats.status(), 405);
    assert_eq!(delete_stats.headers()["allow"], "GET");
    assert_eq!(put_provider.status(), 405);
    assert_eq!(put_provider.headers()["allow"], "DELETE");
    assert_eq!(get_messages.status(), 405);
    let body: Value = get_messages.json().await.unwrap();
    assert_eq!(body["type"], "error", "Anthropic's shape on /v1/messages");
    assert_eq!(unknown.status(), 404);
}

#[actix_web::test]
async fn bodies_held_at_once_are_capped_and_given_back() {
    let mock = MockUpstream::start().unwrap();
    let app = spawn_app(&format!(
        "{}\n[server]\nmax_body_bytes = 1048576\nmax_buffered_body_bytes = 2097152\n",
        four_providers(&mock)
    ))
    .await;
    let part = vec![b' '; 900 * 1024];

    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = raw(&app, &chat_head(1024 * 1024)).await;
        stream.write_all(&part).await.unwrap();
        held.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut third = raw(&app, &chat_head(1024 * 1024)).await;
    let _ = third.write_all(&part).await;
    let refused = answer(&mut third, Duration::from_secs(5)).await;
    drop(held);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = app
        .post("/v1/chat/completions", &chat_body("gpt-4o", false), &[])
        .await;

    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    assert!(refused.contains("max_buffered_body_bytes"), "{refused}");
    assert_eq!(after.status(), 200, "the budget was given back");
}

#[actix_web::test]
async fn connections_past_max_connections_wait_until_one_closes() {
    let mock = MockUpstream::start().unwrap();
    let app = spawn_app(&format!(
        "{}\n[server]\nmax_connections = 2\n",
        four_providers(&mock)
    ))
    .await;
    let health = "GET /health HTTP/1.1\r\nhost: x\r\n\r\n";

    let first = raw(&app, health).await;
    let second = raw(&app, health).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut third = raw(&app, health).await;
    let mut buffer = [0u8; 64];
    let waiting = tokio::time::timeout(Duration::from_millis(500), third.read(&mut buffer)).await;
    drop(first);
    let served = tokio::time::timeout(Duration::from_secs(5), third.read(&mut buffer)).await;

    assert!(
        waiting.is_err(),
        "the third connection waits while two are open"
    );
    assert!(
        matches!(served, Ok(Ok(n)) if n > 0),
        "and is served once one closes"
    );
    drop(second);
}

#[actix_web::test]
async fn requests_past_a_providers_max_connections_wait_for_a_slot_and_the_wait_is_measured() {
    let mock = MockUpstream::start().unwrap();
    let config = four_providers(&mock).replace(
        "api_key = \"sk-openai-provider-key\"",
        "api_key = \"sk-openai-provider-key\"\nmax_connections = 1",
    );
    let app = spawn_app(&config).await;
    let slow = [("x-mock-chunks", "4"), ("x-mock-chunk-delay-ms", "100")];

    let body = chat_body("gpt-4o", true);
    let first = app.post("/v1/chat/completions", &body, &slow);
    let second = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let started = Instant::now();
        let response = app.post("/v1/chat/completions", &body, &[]).await;
        (response.status(), started.elapsed())
    };
    let (first, (second_status, second_took)) = tokio::join!(first, second);
    let first_text = first.text().await.unwrap();

    assert!(first_text.contains("[DONE]"));
    assert_eq!(second_status, 200);
    assert!(second_took >= Duration::from_millis(200), "{second_took:?}");
    let metrics = app.get("/metrics").await.text().await.unwrap();
    let waits = metrics
        .lines()
        .find(|l| {
            l.starts_with("llm_gateway_upstream_connection_wait_seconds_count{provider=\"openai\"}")
        })
        .unwrap_or_default()
        .to_string();
    assert!(waits.ends_with(" 1"), "{waits}");
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[actix_web::test]
async fn memory_taken_by_a_burst_of_partial_bodies_is_given_back_after_they_close() {
    let mock = MockUpstream::start().unwrap();
    // Its own spool, not one in the working directory that another test may hold.
    let spool = tempfile::tempdir().unwrap();
    let (_dir, config) = write_config(&format!(
        "{}\n[database]\nurl = \"sqlite::memory:\"\nspool_dir = \"{}\"\n",
        four_providers(&mock),
        spool.path().display()
    ));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_llm-gateway"))
        .args([
            "--config",
            config.to_str().unwrap(),
            "--port",
            &port.to_string(),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    for _ in 0..200 {
        if client.get(format!("{base}/health")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    for _ in 0..20 {
        let _ = client
            .post(format!("{base}/v1/chat/completions"))
            .header("content-type", "application/json")
            .body(chat_body("gpt-4o", false).to_string())
            .send()
            .await;
    }
    let idle = rss_kib(child.id());

    let part = vec![b' '; 9 * 1024 * 1024];
    let mut open = Vec::new();
    for _ in 0..60 {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        stream
            .write_all(chat_head(10 * 1024 * 1024).as_bytes())
            .await
            .unwrap();
        let _ = stream.write_all(&part).await;
        open.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let peak = rss_kib(child.id());
    drop(open);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut after = rss_kib(child.id());
    while after > 2 * idle && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
        after = rss_kib(child.id());
    }
    let _ = child.kill();
    let _ = child.wait();
    eprintln!("RSS: idle {idle} KiB, peak {peak} KiB, after {after} KiB");

    assert!(
        peak < idle + 400 * 1024,
        "bodies held at once are capped (256 MiB): idle {idle} KiB, peak {peak} KiB"
    );
    assert!(
        after <= 2 * idle,
        "RSS back within 2x of idle within 10 s: idle {idle} KiB, peak {peak} KiB, after {after} KiB"
    );
}

#[actix_web::test]
async fn an_oversized_mistyped_or_array_admin_body_is_refused_with_the_right_status() {
    let app = spawn_app("providers = []").await;
    let huge = serde_json::json!({"id": "x", "provider_type": "local", "endpoint": "http://127.0.0.1:9",
        "models": vec!["m".repeat(1000); 300]});

    let too_large = app.post("/v1/providers", &huge, &[]).await;
    let wrong_type = app
        .client
        .post(format!("{}/v1/providers", app.address))
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();

    let array = app
        .post(
            "/v1/providers",
            &serde_json::json!(["x", "local", null, "http://127.0.0.1:9"]),
            &[],
        )
        .await;

    assert_eq!(too_large.status(), 413);
    assert_eq!(wrong_type.status(), 415);
    assert_eq!(array.status(), 400, "a provider is an object, not an array");
}
