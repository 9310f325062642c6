//! The cost ledger: one record per request with the right tokens and cost, stats equal to the
//! sums of the records, the same answers from a second instance, and clear errors for bad queries.

use std::collections::HashMap;

use serde_json::{json, Value};

use crate::helpers::*;

fn config(mock: &MockUpstream) -> String {
    format!(
        "{}\n[key_map.team-alpha-key]\nlabel = \"Team Alpha\"\nopenai_key = \"sk-alpha\"\n",
        four_providers(mock)
    )
}

/// USD for `tokens` at `per_million`.
fn usd(tokens: u64, per_million: f64) -> f64 {
    tokens as f64 * per_million / 1_000_000.0
}

struct Sent {
    id: String,
    /// Expected: (provider, status, outcome, input, output, cached, cache_write, cost or None if unpriced, estimated)
    expect: Expect,
}

#[derive(Debug, Clone)]
struct Expect {
    provider: Option<&'static str>,
    status: i64,
    outcome: &'static str,
    input: u64,
    output: u64,
    cached: u64,
    cache_write: u64,
    cost: Option<f64>,
    estimated: bool,
    streamed: bool,
}

/// The prompt tokens the mock reports for the `n`th POST it received.
fn mock_prompt(mock: &MockUpstream, n: usize) -> u64 {
    let posts: Vec<_> = mock
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .collect();
    mock_upstream::prompt_tokens(&posts[n].body)
}

#[actix_web::test]
async fn every_request_leaves_one_record_with_its_tokens_and_cost_and_stats_are_their_sums() {
    let mock = MockUpstream::start().unwrap();
    mock.set_models(&["llama3:8b"]);
    let app = spawn_app(&config(&mock)).await;
    let mut sent: Vec<Sent> = Vec::new();
    let mut posts = 0usize;
    let base = |provider, streamed| Expect {
        provider: Some(provider),
        status: 200,
        outcome: "ok",
        input: 0,
        output: 3,
        cached: 0,
        cache_write: 0,
        cost: Some(0.0),
        estimated: false,
        streamed,
    };

    // 1. OpenAI, not streamed: prompt at $2.50/M, 3 output tokens at $10/M.
    let (id, _) = send(
        &app,
        "/v1/chat/completions",
        &chat_body("gpt-4o", false),
        &[("x-source", "app-a"), ("x-project", "p1")],
    )
    .await;
    let p = mock_prompt(&mock, posts);
    posts += 1;
    sent.push(Sent {
        id,
        expect: Expect {
            input: p,
            cost: Some(usd(p, 2.5) + usd(3, 10.0)),
            ..base("openai", false)
        },
    });

    // 2. OpenAI streamed, 8 cached prompt tokens at $1.25/M; usage from the chunk the gateway asked for.
    let (id, _) = send(
        &app,
        "/v1/chat/completions",
        &chat_body("gpt-4o", true),
        &[
            ("x-mock-cached-tokens", "8"),
            ("x-source", "app-a"),
            ("authorization", "Bearer team-alpha-key"),
        ],
    )
    .await;
    let p = mock_prompt(&mock, posts);
    posts += 1;
    sent.push(Sent {
        id,
        expect: Expect {
            input: p,
            cached: 8,
            cost: Some(usd(p - 8, 2.5) + usd(8, 1.25) + usd(3, 10.0)),
            ..base("openai", true)
        },
    });

    // 3. Anthropic, not streamed, 100 cache reads ($0.30/M) and 20 cache writes ($3.75/M) on top of the uncached input ($3/M).
    let (id, _) = send(
        &app,
        "/v1/messages",
        &messages_body("claude-sonnet-4-20250514", false),
        &[
            ("x-mock-cached-tokens", "100"),
            ("x-mock-cache-write-tokens", "20"),
            ("x-project", "p1"),
        ],
    )
    .await;
    let p = mock_prompt(&mock, posts);
    posts += 1;
    sent.push(Sent {
        id,
        expect: Expect {
            input: p + 120,
            cached: 100,
            cache_write: 20,
            cost: Some(usd(p, 3.0) + usd(100, 0.3) + usd(20, 3.75) + usd(3, 15.0)),
            ..base("anthropic", false)
        },
    });

    // 4. Anthropic streamed, 5 chunks: usage from message_start and message_delta.
    let (id, _) = send(
        &app,
        "/v1/messages",
        &messages_body("claude-sonnet-4-20250514", true),
        &[("x-mock-chunks", "5"), ("x-project", "p2")],
    )
    .await;
    let p = mock_prompt(&mock, posts);
    posts += 1;
    sent.push(Sent {
        id,
        expect: Expect {
            input: p,
            output: 5,
            cost: Some(usd(p, 3.0) + usd(5, 15.0)),
            ..base("anthropic", true)
        },
    });

    // 5. Azure under a deployment name the catalog does not price: unpriced, not $0.
    let (id, _) = send(
        &app,
        "/v1/chat/completions",
        &chat_body("my-gpt4o", false),
        &[],
    )
    .await;
    let p = mock_prompt(&mock, posts);
    posts += 1;
    sent.push(Sent {
        id,
        expect: Expect {
            input: p,
            cost: None,
            ..base("azure", false)
        },
    });

    // 6. A new OpenAI model by family: routed, recorded as unpriced.
    let (id, _) = send(
        &app,
        "/v1/chat/completions",
        &chat_body("gpt-9-preview", false),
        &[],
    )
    .await;
    let p = mock_prompt(&mock, posts);
    posts += 1;
    sent.push(Sent {
        id,
        expect: Expect {
            input: p,
            cost: None,
            ..base("openai", false)
        },
    });

    // 7. A local model: free.
    let (id, _) = send(
        &app,
        "/v1/chat/completions",
        &chat_body("llama3:8b", false),
        &[],
    )
    .await;
    let p = mock_prompt(&mock, posts);
    posts += 1;
    sent.push(Sent {
        id,
        expect: Expect {
            input: p,
            ..base("ollama", false)
        },
    });

    // 8. A local server that reports no usage: estimated at 4 characters a token.
    let body = chat_body("llama3:8b", true);
    let (id, _) = send(
        &app,
        "/v1/chat/completions",
        &body,
        &[("x-mock-no-usage", "1")],
    )
    .await;
    posts += 1;
    let estimated_input = (body.to_string().len() as u64).div_ceil(4);
    let estimated_output = (mock_upstream::reply_text(3).len() as u64).div_ceil(4);
    sent.push(Sent {
        id,
        expect: Expect {
            input: estimated_input,
            output: estimated_output,
            estimated: true,
            ..base("ollama", true)
        },
    });

    // 9. An upstream error, passed through: recorded with no tokens.
    let (id, status) = send(
        &app,
        "/v1/chat/completions",
        &chat_body("gpt-4o", false),
        &[("x-mock-status", "500")],
    )
    .await;
    posts += 1;
    assert_eq!(status, 500);
    sent.push(Sent {
        id,
        expect: Expect {
            status: 500,
            outcome: "error",
            output: 0,
            ..base("openai", false)
        },
    });

    // 10. A streamed upstream error (Anthropic 429).
    let (id, _) = send(
        &app,
        "/v1/messages",
        &messages_body("claude-sonnet-4-20250514", true),
        &[("x-mock-status", "429")],
    )
    .await;
    posts += 1;
    sent.push(Sent {
        id,
        expect: Expect {
            status: 429,
            outcome: "error",
            output: 0,
            ..base("anthropic", true)
        },
    });

    // 11. A gateway error before any upstream: unknown model.
    let (id, status) = send(
        &app,
        "/v1/chat/completions",
        &chat_body("no-such-model", false),
        &[("x-source", "app-b")],
    )
    .await;
    assert_eq!(status, 404);
    sent.push(Sent {
        id,
        expect: Expect {
            provider: None,
            status: 404,
            outcome: "error",
            output: 0,
            ..base("openai", false)
        },
    });
    assert_eq!(
        posts,
        mock.requests()
            .iter()
            .filter(|r| r.method == "POST")
            .count()
    );

    let records = app.records(sent.len()).await;
    let by_id: HashMap<&str, &Value> = records
        .iter()
        .map(|r| (r["id"].as_str().unwrap(), r))
        .collect();
    for (i, s) in sent.iter().enumerate() {
        let r = by_id
            .get(s.id.as_str())
            .unwrap_or_else(|| panic!("request {} has a record", i + 1));
        let e = &s.expect;
        let ctx = format!("request {}: {r}", i + 1);
        assert_eq!(r["provider_id"].as_str(), e.provider, "{ctx}");
        assert_eq!(r["status"], e.status, "{ctx}");
        assert_eq!(r["outcome"], e.outcome, "{ctx}");
        assert_eq!(r["streamed"], e.streamed, "{ctx}");
        assert_eq!(r["input_tokens"], e.input, "{ctx}");
        assert_eq!(r["output_tokens"], e.output, "{ctx}");
        assert_eq!(r["cached_input_tokens"], e.cached, "{ctx}");
        assert_eq!(r["cache_write_tokens"], e.cache_write, "{ctx}");
        assert_eq!(r["usage_estimated"], e.estimated, "{ctx}");
        match e.cost {
            Some(cost) => {
                assert_eq!(r["priced"], true, "{ctx}");
                assert!(
                    (r["cost_usd"].as_f64().unwrap() - cost).abs() < 1e-12,
                    "{ctx}: expected {cost}"
                );
            }
            None => {
                assert_eq!(r["priced"], false, "{ctx}");
                assert_eq!(r["cost_usd"], Value::Null, "{ctx}");
            }
        }
    }
    let alpha = by_id[sent[1].id.as_str()];
    assert_eq!(alpha["key_label"], "Team Alpha");
    assert_eq!(alpha["source"], "app-a");
    assert!(alpha["ttfb_ms"].is_i64() && alpha["latency_ms"].is_i64());

    let stats: Value = app.get("/v1/stats").await.json().await.unwrap();
    assert_stats_are_sums_of(&stats, &records);
    assert_eq!(stats["unpriced_requests"], 2);
    assert_eq!(stats["by_model"]["my-gpt4o"]["pricing"], "unpriced");
    assert_eq!(stats["by_project"]["p1"]["requests"], 2);
    assert_eq!(stats["by_key_label"]["Team Alpha"]["requests"], 1);

    // Another gateway on the same database answers the same.
    let again = spawn_app_on(&config(&mock), Some(&app.db_url)).await;
    let stats_again: Value = again.get("/v1/stats").await.json().await.unwrap();
    assert_eq!(stats_again, stats);
}

/// The totals and every breakdown of `stats` equal the sums over `records`.
fn assert_stats_are_sums_of(stats: &Value, records: &[Value]) {
    let int = |r: &Value, f: &str| r[f].as_i64().unwrap_or(0);
    let sum = |f: &str| records.iter().map(|r| int(r, f)).sum::<i64>();
    let cost: f64 = records.iter().filter_map(|r| r["cost_usd"].as_f64()).sum();
    assert_eq!(stats["total_requests"], records.len() as i64);
    assert_eq!(
        stats["failed_requests"],
        records.iter().filter(|r| r["outcome"] == "error").count() as i64
    );
    for field in [
        "input_tokens",
        "output_tokens",
        "cached_input_tokens",
        "cache_write_tokens",
    ] {
        assert_eq!(stats[field], sum(field), "{field}");
    }
    assert!((stats["total_cost_usd"].as_f64().unwrap() - cost).abs() < 1e-9);
    for (breakdown, field) in [
        ("by_model", "model_used"),
        ("by_provider", "provider_id"),
        ("by_source", "source"),
        ("by_project", "project"),
    ] {
        let mut expected: HashMap<String, (i64, i64, f64, i64, i64)> = HashMap::new();
        for r in records {
            let key = match field {
                "model_used" => r["model_used"].as_str().or(r["model_requested"].as_str()),
                f => r[f].as_str(),
            }
            .filter(|k| !k.is_empty())
            .unwrap_or("(none)")
            .to_string();
            let e = expected.entry(key).or_default();
            e.0 += 1;
            e.1 += int(r, "input_tokens") + int(r, "output_tokens");
            e.2 += r["cost_usd"].as_f64().unwrap_or(0.0);
            e.3 += int(r, "cached_input_tokens");
            e.4 += int(r, "input_tokens");
        }
        let got = stats[breakdown].as_object().unwrap();
        assert_eq!(got.len(), expected.len(), "{breakdown}: {got:?}");
        for (key, (requests, tokens, cost, cached, input)) in expected {
            let b = &got[&key];
            assert_eq!(b["requests"], requests, "{breakdown}.{key}");
            assert_eq!(
                int(b, "input_tokens") + int(b, "output_tokens"),
                tokens,
                "{breakdown}.{key}"
            );
            assert!(
                (b["cost_usd"].as_f64().unwrap() - cost).abs() < 1e-9,
                "{breakdown}.{key}"
            );
            // The share of input read from the prompt cache: its records' cached ÷ input.
            let share = if input > 0 {
                cached as f64 / input as f64
            } else {
                0.0
            };
            assert!(
                (b["cache_read_share"].as_f64().unwrap() - share).abs() < 1e-12,
                "{breakdown}.{key}: {b}"
            );
        }
    }
}

#[actix_web::test]
async fn an_abandoned_stream_is_billed_for_what_was_delivered() {
    let mock = MockUpstream::start().unwrap();
    let app = spawn_app(&config(&mock)).await;

    for (path, body) in [
        (
            "/v1/messages",
            messages_body("claude-sonnet-4-20250514", true),
        ),
        ("/v1/chat/completions", chat_body("gpt-4o", true)),
    ] {
        let response = app
            .post(
                path,
                &body,
                &[("x-mock-chunks", "500"), ("x-mock-chunk-delay-ms", "20")],
            )
            .await;
        let mut stream = futures_util::StreamExt::boxed(response.bytes_stream());
        let mut got = 0;
        while got < 3 {
            futures_util::StreamExt::next(&mut stream)
                .await
                .unwrap()
                .unwrap();
            got += 1;
        }
        drop(stream);
    }

    let records = app.records(2).await;
    for r in &records {
        assert_eq!(r["error_kind"], "client_disconnected", "{r}");
        assert_eq!(r["status"], 200, "{r}");
        assert!(r["input_tokens"].as_i64().unwrap() > 0, "{r}");
        assert!(r["output_tokens"].as_i64().unwrap() >= 1, "{r}");
        assert!(
            r["output_tokens"].as_i64().unwrap() < 500,
            "billed for what was delivered, not the whole answer: {r}"
        );
        assert!(r["cost_usd"].as_f64().unwrap() > 0.0, "{r}");
    }
}

#[actix_web::test]
async fn projects_and_sources_report_their_usage() {
    let mock = MockUpstream::start().unwrap();
    let app = spawn_app(&config(&mock)).await;
    for (project, source, status) in [
        ("alpha", "cli", None),
        ("alpha", "ide", Some("500")),
        ("beta", "cli", None),
    ] {
        let mut headers = vec![("x-project", project), ("x-source", source)];
        if let Some(s) = status {
            headers.push(("x-mock-status", s));
        }
        send(
            &app,
            "/v1/chat/completions",
            &chat_body("gpt-4o", false),
            &headers,
        )
        .await;
    }
    app.records(3).await;

    let projects: Value = app.get("/v1/projects").await.json().await.unwrap();
    let recent: Value = app
        .get("/v1/projects?active_since_mins=60")
        .await
        .json()
        .await
        .unwrap();
    let sources: Value = app.get("/v1/sources").await.json().await.unwrap();
    let alpha_records: Value = app
        .get("/v1/projects/alpha/records")
        .await
        .json()
        .await
        .unwrap();

    let list = projects["data"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["id"], "beta", "most recently active first");
    let alpha = list.iter().find(|p| p["id"] == "alpha").unwrap();
    assert_eq!(alpha["requests"], 2);
    assert_eq!(alpha["errors"], 1);
    assert_eq!(alpha["success_rate"], 0.5);
    assert_eq!(alpha["sources"], json!(["cli", "ide"]));
    assert_eq!(recent["data"].as_array().unwrap().len(), 2);
    let cli = sources["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["source"] == "cli")
        .unwrap();
    assert_eq!(cli["requests"], 2);
    assert_eq!(cli["success_rate"], 1.0);
    assert_eq!(cli["by_model"]["gpt-4o"]["requests"], 2);
    let alpha_list = alpha_records["data"].as_array().unwrap();
    assert_eq!(alpha_list.len(), 2);
    assert!(
        alpha_list[0]["ts_ms"].as_i64() >= alpha_list[1]["ts_ms"].as_i64(),
        "most recent first"
    );
    assert_eq!(app.get("/v1/projects/nobody/records").await.status(), 404);
}

#[actix_web::test]
async fn records_filter_and_page() {
    let mock = MockUpstream::start().unwrap();
    let app = spawn_app(&config(&mock)).await;
    for i in 0..5 {
        let status = if i == 4 { "500" } else { "200" };
        send(
            &app,
            "/v1/chat/completions",
            &chat_body("gpt-4o", false),
            &[
                ("x-source", if i % 2 == 0 { "even" } else { "odd" }),
                ("x-mock-status", status),
            ],
        )
        .await;
    }
    app.records(5).await;

    let page: Value = app.get("/v1/records?limit=2").await.json().await.unwrap();
    let next: Value = app
        .get("/v1/records?limit=2&offset=4")
        .await
        .json()
        .await
        .unwrap();
    let even: Value = app
        .get("/v1/records?source=even")
        .await
        .json()
        .await
        .unwrap();
    let errors: Value = app
        .get("/v1/records?status=error")
        .await
        .json()
        .await
        .unwrap();
    let by_code: Value = app
        .get("/v1/records?status=500")
        .await
        .json()
        .await
        .unwrap();
    let future: Value = app
        .get("/v1/records?since=2999-01-01T00:00:00Z")
        .await
        .json()
        .await
        .unwrap();

    assert_eq!(page["data"].as_array().unwrap().len(), 2);
    assert_eq!(page["has_more"], true);
    assert_eq!(next["data"].as_array().unwrap().len(), 1);
    assert_eq!(next["has_more"], false);
    assert_eq!(even["data"].as_array().unwrap().len(), 3);
    assert_eq!(errors["data"].as_array().unwrap().len(), 1);
    assert_eq!(by_code["data"][0]["status"], 500);
    assert_eq!(future["data"], json!([]));
}

#[actix_web::test]
async fn stats_since_a_time_count_only_what_came_after() {
    let mock = MockUpstream::start().unwrap();
    let app = spawn_app(&config(&mock)).await;
    send(
        &app,
        "/v1/chat/completions",
        &chat_body("gpt-4o", false),
        &[],
    )
    .await;
    app.records(1).await;
    let between = chrono::Utc::now() + chrono::Duration::milliseconds(5);
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    send(
        &app,
        "/v1/chat/completions",
        &chat_body("gpt-4o", false),
        &[],
    )
    .await;
    app.records(2).await;

    let all: Value = app.get("/v1/stats").await.json().await.unwrap();
    let since: Value = app
        .get(&format!(
            "/v1/stats?since={}",
            between.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        ))
        .await
        .json()
        .await
        .unwrap();
    let until: Value = app
        .get(&format!("/v1/stats?until={}", between.timestamp()))
        .await
        .json()
        .await
        .unwrap();

    assert_eq!(all["total_requests"], 2);
    assert_eq!(since["total_requests"], 1);
    assert!(until["total_requests"].as_i64().unwrap() <= 1);
}

#[actix_web::test]
async fn bad_query_parameters_get_a_400_that_names_them() {
    let app = spawn_app("").await;
    for (path, needle) in [
        ("/v1/stats?since=yesterday", "since"),
        ("/v1/stats?until=2026-13-45", "until"),
        (
            "/v1/stats?since=2026-11-25T12:00:00Z&until=2026-11-24T12:00:00Z",
            "since",
        ),
        ("/v1/stats?colour=red", "colour"),
        ("/v1/records?limit=0", "limit"),
        ("/v1/records?limit=5000", "limit"),
        ("/v1/records?limit=abc", "limit"),
        ("/v1/records?offset=-1", "offset"),
        ("/v1/records?status=weird", "status"),
        ("/v1/sources?since=soon", "since"),
        ("/v1/projects?active_since_mins=-5", "active_since_mins"),
        ("/v1/projects?active_since_mins=ten", "active_since_mins"),
        ("/v1/projects/x/records?limit=0", "limit"),
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status(), 400, "{path}");
        let json: Value = response.json().await.unwrap();
        let message = json["error"]["message"].as_str().unwrap();
        assert!(message.contains(needle), "{path}: {message}");
    }
}

#[actix_web::test]
async fn two_instances_on_one_database_answer_the_same_stats() {
    let mock = MockUpstream::start().unwrap();
    let first = spawn_app(&config(&mock)).await;
    let second = spawn_app_on(&config(&mock), Some(&first.db_url)).await;

    send(
        &first,
        "/v1/chat/completions",
        &chat_body("gpt-4o", false),
        &[("x-project", "shared")],
    )
    .await;
    send(
        &second,
        "/v1/messages",
        &messages_body("claude-sonnet-4-20250514", false),
        &[("x-project", "shared")],
    )
    .await;
    send(
        &second,
        "/v1/chat/completions",
        &chat_body("gpt-4o", true),
        &[],
    )
    .await;
    first.records(3).await;
    second.records(3).await;

    let a: Value = first.get("/v1/stats").await.json().await.unwrap();
    let b: Value = second.get("/v1/stats").await.json().await.unwrap();
    assert_eq!(a, b);
    assert_eq!(a["total_requests"], 3);
    let pa: Value = first.get("/v1/projects").await.json().await.unwrap();
    let pb: Value = second.get("/v1/projects").await.json().await.unwrap();
    assert_eq!(pa, pb);
    assert_eq!(pa["data"][0]["requests"], 2);
}

#[actix_web::test]
async fn a_configured_price_prices_a_model_the_catalog_does_not_know() {
    let mock = MockUpstream::start().unwrap();
    let app = spawn_app(&format!(
        "{}\n[[pricing]]\nmodel = \"my-gpt4o\"\ninput_per_mtok = 1000.0\noutput_per_mtok = 2000.0\n",
        config(&mock)
    ))
    .await;

    send(
        &app,
        "/v1/chat/completions",
        &chat_body("my-gpt4o", false),
        &[],
    )
    .await;

    let records = app.records(1).await;
    let p = mock_prompt(&mock, 0);
    assert_eq!(records[0]["priced"], true);
    assert!(
        (records[0]["cost_usd"].as_f64().unwrap() - (usd(p, 1000.0) + usd(3, 2000.0))).abs()
            < 1e-12
    );
}

#[actix_web::test]
async fn retention_prunes_raw_records_and_keeps_the_rollups() {
    let mock = MockUpstream::start().unwrap();
    let app = spawn_app(&config(&mock)).await;
    for _ in 0..3 {
        send(
            &app,
            "/v1/chat/completions",
            &chat_body("gpt-4o", false),
            &[("x-project", "old")],
        )
        .await;
    }
    app.records(3).await;
    let before: Value = app.get("/v1/stats").await.json().await.unwrap();

    // What the hourly retention job runs, with a cutoff after every record.
    let db = sea_orm::Database::connect(app.db_url.as_str())
        .await
        .unwrap();
    let deleted =
        llm_gateway::ledger::store::delete_before(&db, llm_gateway::ledger::now_ms() + 1000)
            .await
            .unwrap();

    assert_eq!(
        deleted, 3,
        "3 requests (their single successful attempts are not stored apart)"
    );
    let page: Value = app.get("/v1/records").await.json().await.unwrap();
    assert_eq!(page["data"], json!([]));
    let after: Value = app.get("/v1/stats").await.json().await.unwrap();
    assert_eq!(after, before, "stats come from the rollups, which are kept");
}

#[actix_web::test]
async fn a_locked_database_neither_stalls_requests_nor_loses_records() {
    use sea_orm::ConnectionTrait;
    let mock = MockUpstream::start().unwrap();
    let app = spawn_app(&config(&mock)).await;
    send(
        &app,
        "/v1/chat/completions",
        &chat_body("gpt-4o", false),
        &[],
    )
    .await;
    app.records(1).await;

    // Another client holds the ledger locked, as a long migration or a stuck backup would.
    let mut options = sea_orm::ConnectOptions::new(app.db_url.clone());
    options.max_connections(1).sqlx_logging(false);
    let locker = sea_orm::Database::connect(options).await.unwrap();
    if app.db_url.starts_with("sqlite:") {
        locker.execute_unprepared("BEGIN EXCLUSIVE").await.unwrap();
    } else {
        locker.execute_unprepared("BEGIN").await.unwrap();
        locker
            .execute_unprepared("LOCK TABLE requests IN ACCESS EXCLUSIVE MODE")
            .await
            .unwrap();
    }

    // Every request is answered while the lock is still held: recording is off the request path.
    for i in 0..10 {
        let (_, status) = send(
            &app,
            "/v1/chat/completions",
            &chat_body("gpt-4o", i % 2 == 0),
            &[],
        )
        .await;
        assert_eq!(status, 200);
    }
    let pending = app
        .ledger
        .send(llm_gateway::actors::cost_ledger::PendingRecords)
        .await
        .unwrap();
    assert!(pending > 0, "the records wait for the database");

    locker.execute_unprepared("COMMIT").await.unwrap();
    app.records(11).await;
}

/// SQLite's driver threads yield to the HTTP workers (a batch insert must not hold up requests).
#[cfg(target_os = "linux")]
#[actix_web::test]
async fn the_sqlite_threads_run_at_a_lower_priority_than_the_workers() {
    let dir = tempfile::tempdir().unwrap();
    let db_url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("ledger.db").display()
    );
    let mock = MockUpstream::start().unwrap();
    let _app = spawn_app_on(&four_providers(&mock), Some(&db_url)).await;

    let mut nice = std::collections::BTreeMap::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap();
        // Field 19 of stat is the nice value; the command name (field 2) may hold spaces.
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap();
        let after_comm = &stat[stat.rfind(')').unwrap() + 2..];
        let value: i32 = after_comm.split(' ').nth(16).unwrap().parse().unwrap();
        nice.insert(
            comm.trim().to_string() + "/" + &task.file_name().to_string_lossy(),
            value,
        );
    }
    let db_threads: Vec<_> = nice
        .iter()
        .filter(|(k, _)| k.starts_with("sqlx-sqlite"))
        .collect();
    assert!(
        !db_threads.is_empty(),
        "no SQLite driver thread among {nice:?}"
    );
    assert!(
        db_threads
            .iter()
            .all(|(_, v)| **v == llm_gateway::ledger::priority::DB_THREAD_NICE),
        "{nice:?}"
    );
    let workers: Vec<_> = nice
        .iter()
        .filter(|(k, _)| k.starts_with("actix"))
        .collect();
    assert!(
        !workers.is_empty() && workers.iter().all(|(_, v)| **v == 0),
        "{nice:?}"
    );
}

#[actix_web::test]
async fn the_time_series_puts_each_request_in_its_hour_and_sums_to_the_stats() {
    let mock = MockUpstream::start().unwrap();
    let app = spawn_app(&config(&mock)).await;
    for _ in 0..3 {
        send(
            &app,
            "/v1/chat/completions",
            &chat_body("gpt-4o", false),
            &[],
        )
        .await;
    }
    app.records(3).await;

    let stats: Value = app.get("/v1/stats").await.json().await.unwrap();
    let hourly: Value = app.get("/v1/stats/timeseries").await.json().await.unwrap();
    let daily: Value = app
        .get("/v1/stats/timeseries?bucket=day")
        .await
        .json()
        .await
        .unwrap();

    assert_eq!(hourly["bucket"], "hour");
    let buckets = hourly["buckets"].as_array().unwrap();
    assert_eq!(buckets.len(), 24, "a day of hours by default");
    let sum = |series: &Value, field: &str| -> i64 {
        series["buckets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b[field].as_i64().unwrap())
            .sum()
    };
    assert_eq!(
        sum(&hourly, "requests"),
        stats["total_requests"].as_i64().unwrap()
    );
    assert_eq!(
        sum(&hourly, "input_tokens"),
        stats["input_tokens"].as_i64().unwrap()
    );
    assert_eq!(sum(&daily, "requests"), 3);
    assert_eq!(daily["buckets"].as_array().unwrap().len(), 30);
    let cost: f64 = buckets
        .iter()
        .map(|b| b["cost_usd"].as_f64().unwrap())
        .sum();
    assert!((cost - stats["total_cost_usd"].as_f64().unwrap()).abs() < 1e-9);

    for (path, needle) in [
        ("/v1/stats/timeseries?bucket=week", "bucket"),
        ("/v1/stats/timeseries?since=0", "since"),
        ("/v1/stats/timeseries?until=soon", "until"),
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status(), 400, "{path}");
        let json: Value = response.json().await.unwrap();
        assert!(
            json["error"]["message"].as_str().unwrap().contains(needle),
            "{path}"
        );
    }
}
