//! `/metrics` in Prometheus text format, and the `x-gateway-overhead-ms` of every proxied answer.

use crate::helpers::*;

#[actix_web::test]
async fn proxied_answers_carry_the_gateway_overhead() {
    let mock = MockUpstream::start().unwrap();
    let app = spawn_app(&four_providers(&mock)).await;

    for stream in [false, true] {
        let response = app
            .post(
                "/v1/chat/completions",
                &chat_body("gpt-4o", stream),
                &[("x-mock-delay-ms", "50")],
            )
            .await;
        let overhead: f64 = response.headers()["x-gateway-overhead-ms"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        // The 50 ms the upstream took is not the gateway's.
        assert!((0.0..50.0).contains(&overhead), "{overhead}");
    }
}

#[actix_web::test]
async fn metrics_count_requests_tokens_failovers_and_the_ledger() {
    let mock = MockUpstream::start().unwrap();
    let app = spawn_app(&format!(
        "{}\n[[providers]]\nid = \"down\"\nprovider_type = \"openai\"\nendpoint = \"http://127.0.0.1:1\"\nmodels = [\"shared-model\"]\n\n[[providers]]\nid = \"up\"\nprovider_type = \"openai\"\nendpoint = \"{}\"\nmodels = [\"shared-model\"]\n",
        four_providers(&mock),
        mock.url()
    ))
    .await;
    for _ in 0..2 {
        app.post("/v1/chat/completions", &chat_body("gpt-4o", false), &[])
            .await
            .bytes()
            .await
            .unwrap();
    }
    app.post(
        "/v1/messages",
        &messages_body("claude-sonnet-4-20250514", true),
        &[],
    )
    .await
    .bytes()
    .await
    .unwrap();
    app.post(
        "/v1/chat/completions",
        &chat_body("shared-model", false),
        &[],
    )
    .await
    .bytes()
    .await
    .unwrap();
    app.records(4).await;

    let response = app.get("/metrics").await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = response.text().await.unwrap();
    for needle in [
        r#"llm_gateway_requests_total{endpoint="chat_completions",model="gpt-4o",provider="openai",status="200"} 2"#,
        r#"llm_gateway_requests_total{endpoint="messages",model="claude-sonnet-4-20250514",provider="anthropic",status="200"} 1"#,
        r#"llm_gateway_failovers_total{provider="down"} 1"#,
        r#"llm_gateway_tokens_total{model="gpt-4o",provider="openai",type="output"} 6"#,
        "llm_gateway_overhead_seconds_count 4",
        "llm_gateway_request_duration_seconds_bucket",
        "llm_gateway_ledger_queue_depth",
        "llm_gateway_ledger_write_seconds_count",
        "llm_gateway_cost_usd_total",
    ] {
        assert!(text.contains(needle), "missing {needle} in:\n{text}");
    }
}
