//! `POST /v1/route/replay` through the real gateway: a seeded ledger replayed under
//! `cost-optimized` and `quality-first` with every figure computed by hand from the cards, the
//! limit cutting the window, the default window, what each proxied call records for it, and
//! bad bodies and the admin gate. On SQLite, and on PostgreSQL with `TEST_DATABASE_URL`.

use entities::requests;
use llm_gateway::ledger::{store, LedgerRecord};
use serde_json::{json, Value};

use crate::helpers::{chat_body, four_providers, spawn_app, MockUpstream, TestApp};

/// Two local models with cards of our own.
///
/// | model   | in $/M | cached $/M | out $/M | long tier (> 32000 in) | context | caps                   | ttft ms | tok/s | general |
/// |---------|--------|------------|---------|------------------------|---------|------------------------|---------|-------|---------|
/// | r-cheap | 1      | (= in)     | 2       | —                      | 32768   | streaming              | 500     | 50    | 0.4     |
/// | r-big   | 10     | 1          | 30      | in 20, out 40          | 200000  | streaming tools vision | 1000    | 100   | 0.9     |
const CARDS: &str = r#"
[[models]]
id = "r-cheap"
provider_type = "local"
input_per_mtok = 1.0
output_per_mtok = 2.0
context_window = 32768
max_output_tokens = 4096
capabilities = ["streaming"]
latency = { ttft_ms = 500, output_tokens_per_s = 50 }
quality = { general = 0.4, coding = 0.4, reasoning = 0.4, long_context = 0.4 }

[[models]]
id = "r-big"
provider_type = "local"
input_per_mtok = 10.0
output_per_mtok = 30.0
cached_input_per_mtok = 1.0
long_context = { above_input_tokens = 32000, input_per_mtok = 20.0, output_per_mtok = 40.0 }
context_window = 200000
max_output_tokens = 8192
capabilities = ["streaming", "tools", "vision"]
latency = { ttft_ms = 1000, output_tokens_per_s = 100 }
quality = { general = 0.9, coding = 0.9, reasoning = 0.9, long_context = 0.9 }
"#;

/// 2026-11-01T00:00:00Z and 2026-11-10, Unix milliseconds.
const NOV_1: i64 = 1_793_491_200_000;
const NOV_10: i64 = 1_794_268_800_000;
const HOUR: i64 = 3_600_000;

async fn lab() -> (MockUpstream, TestApp) {
    let mock = MockUpstream::start().unwrap();
    mock.set_models(&["r-cheap", "r-big"]);
    let config = format!(
        "{CARDS}\n[[providers]]\nid = \"lab0\"\nprovider_type = \"local\"\nendpoint = \"{}\"\n",
        mock.url()
    );
    let app = spawn_app(&config).await;
    // Local discovery: the router routes only to models the server reported.
    let list: Value = app.get("/v1/models").await.json().await.unwrap();
    assert!(list.to_string().contains("r-big"), "{list}");
    (mock, app)
}

/// An answered chat record at lab0.
fn record(
    id: &str,
    ts_ms: i64,
    model: &str,
    tokens: (i64, i64, i64),
    cost: f64,
) -> requests::Model {
    let (input, cached, output) = tokens;
    requests::Model {
        id: id.into(),
        ts_ms,
        endpoint: "chat_completions".into(),
        provider_id: Some("lab0".into()),
        provider_type: Some("local".into()),
        model_requested: Some(model.into()),
        model_used: Some(model.into()),
        status: 200,
        outcome: "ok".into(),
        input_tokens: input,
        cached_input_tokens: cached,
        output_tokens: output,
        cost_usd: Some(cost),
        priced: true,
        attempts: 1,
        ..requests::Model::default()
    }
}

async fn seed(app: &TestApp, rows: Vec<requests::Model>) {
    let db = store::connect(&app.db_url).await.unwrap();
    let batch: Vec<LedgerRecord> = rows
        .into_iter()
        .map(|request| LedgerRecord {
            request,
            attempts: Vec::new(),
        })
        .collect();
    store::write_batch(&db, &batch).await.unwrap();
    let _ = db.close().await;
}

/// The seeded ledger of the hand-computed replays:
/// - a: r-big, 1000 in, 200 out, recorded $0.50, 3000 ms, no needs;
/// - b: r-big, 2000 in (1000 cached), 400 out, $0.10, 5000 ms, needs tools;
/// - c: r-cheap, 40000 in, 100 out, $0.05, 2000 ms (past r-cheap's 32768 window);
/// - d: r-big, $0.002, needs pdf, which neither card has: unroutable;
/// - and three that are not replayed: a 500, one without tokens, one before the window.
fn ledger() -> Vec<requests::Model> {
    let a = requests::Model {
        latency_ms: 3000,
        prompt_tokens_estimate: Some(900),
        ..record("a", NOV_10, "r-big", (1000, 0, 200), 0.5)
    };
    let b = requests::Model {
        latency_ms: 5000,
        needs: Some("tools".into()),
        max_tokens: Some(1000),
        ..record("b", NOV_10 + HOUR, "r-big", (2000, 1000, 400), 0.1)
    };
    let c = requests::Model {
        latency_ms: 2000,
        ..record("c", NOV_10 + 2 * HOUR, "r-cheap", (40_000, 0, 100), 0.05)
    };
    let d = requests::Model {
        needs: Some("pdf".into()),
        latency_ms: 800,
        ..record("d", NOV_10 + 3 * HOUR, "r-big", (100, 0, 10), 0.002)
    };
    let failed = requests::Model {
        status: 500,
        outcome: "error".into(),
        ..record("failed", NOV_10, "r-big", (0, 0, 0), 0.0)
    };
    let empty = record("empty", NOV_10, "r-big", (0, 0, 0), 0.0);
    let before = record("before", NOV_1 - HOUR, "r-big", (1000, 0, 200), 9.0);
    vec![a, b, c, d, failed, empty, before]
}

async fn replay(app: &TestApp, body: Value) -> (u16, Value) {
    let response = app.post("/v1/route/replay", &body, &[]).await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

fn close(answer: &Value, pointer: &str, expected: f64) {
    let got = answer
        .pointer(pointer)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("{pointer} in {answer}"));
    assert!(
        (got - expected).abs() < 1e-9 * expected.abs().max(1.0),
        "{pointer}: {got} != {expected} in {answer}"
    );
}

/// The actual side is the same under every profile: a, b and c (d is unroutable).
fn assert_actual(answer: &Value) {
    assert_eq!(answer["requests"], 4, "{answer}");
    assert_eq!(answer["routed"], 3);
    assert_eq!(answer["truncated"], false);
    assert!(answer.get("replayed_until").is_none());
    assert_eq!(answer["unroutable"]["requests"], 1);
    close(answer, "/unroutable/actual_cost_usd", 0.002);
    let example = &answer["unroutable"]["examples"][0];
    assert_eq!(example["request_id"], "d");
    assert_eq!(example["model"], "r-big");
    assert!(
        example["reason"]
            .as_str()
            .unwrap()
            .contains("2 × lacks a capability the request needs (e.g. pdf)"),
        "{example}"
    );
    close(answer, "/actual/cost_usd", 0.5 + 0.1 + 0.05);
    assert_eq!(answer["actual"]["unpriced_requests"], 0);
    close(
        answer,
        "/actual/latency_ms_mean",
        (3000.0 + 5000.0 + 2000.0) / 3.0,
    );
    close(answer, "/actual/latency_ms_p50", 3000.0);
}

/// The replayed side and the savings against the actual $0.65: the replayed costs and
/// expected latencies of a, b and c, and their mean quality.
fn assert_replayed(answer: &Value, costs: [f64; 3], latencies: [f64; 3], quality: f64) {
    let replayed: f64 = costs.iter().sum();
    let mut sorted = latencies;
    sorted.sort_by(f64::total_cmp);
    close(answer, "/replayed/cost_usd", replayed);
    close(
        answer,
        "/replayed/latency_ms_mean",
        latencies.iter().sum::<f64>() / 3.0,
    );
    close(answer, "/replayed/latency_ms_p50", sorted[1]);
    close(answer, "/replayed/quality_mean", quality);
    close(answer, "/savings_usd", 0.65 - replayed);
    close(answer, "/savings_pct", (0.65 - replayed) / 0.65 * 100.0);
}

/// `by_model`, in order: (from model, to model, requests, actual cost, replayed cost), all at lab0.
fn assert_moves(answer: &Value, expected: &[(&str, &str, u64, f64, f64)]) {
    let moves = answer["by_model"].as_array().unwrap();
    assert_eq!(moves.len(), expected.len(), "{answer}");
    for (m, (from, to, n, actual, cost)) in moves.iter().zip(expected) {
        assert_eq!(m["from_provider"], "lab0");
        assert_eq!(m["to_provider"], "lab0");
        assert_eq!(
            (&m["from_model"], &m["to_model"]),
            (&json!(from), &json!(to)),
            "{m}"
        );
        assert_eq!(m["requests"], *n, "{m}");
        assert!(
            (m["actual_cost_usd"].as_f64().unwrap() - actual).abs() < 1e-12,
            "{m}"
        );
        assert!(
            (m["replayed_cost_usd"].as_f64().unwrap() - cost).abs() < 1e-12,
            "{m}"
        );
    }
}

#[actix_rt::test]
async fn cost_optimized_replays_the_seeded_ledger_to_the_figures_computed_by_hand() {
    let (_mock, app) = lab().await;
    seed(&app, ledger()).await;

    let (status, answer) = replay(
        &app,
        json!({"profile": "cost-optimized", "since": "2026-11-01T00:00:00Z", "until": 1_796_083_200}),
    )
    .await;

    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["profile"], "cost-optimized");
    assert_eq!(answer["since"], "2026-11-01T00:00:00.000Z");
    assert_eq!(answer["until"], "2026-12-01T00:00:00.000Z");
    assert_actual(&answer);
    // Routing (weights cost .7, latency .1, quality .2; scores over r-cheap and r-big, with the
    // 500 output tokens assumed where no max_tokens was asked):
    // - a needs nothing: r-cheap's cost scores 1 and its latency 0 (500 + 500/50 s = 10500 ms
    //   against r-big's 1000 + 5000 = 6000 ms): .7 + .2·.4 = .78 against r-big's .1 + .2·.9 =
    //   .28 → r-cheap: 1000·$1 + 200·$2 per M = $0.0014; 500 + 200/50 s = 4500 ms; quality .4.
    // - b needs tools: r-big only → 1000 uncached·$10 + 1000 cached·$1 + 400·$30 per M =
    //   $0.023; 1000 + 400/100 s = 5000 ms; .9.
    // - c's 40000 prompt tokens pass r-cheap's window: r-big, past its 32000 long-context
    //   threshold, so all at the long rates: 40000·$20 + 100·$40 per M = $0.804; 2000 ms; .9.
    assert_replayed(
        &answer,
        [0.0014, 0.023, 0.804],
        [4500.0, 5000.0, 2000.0],
        (0.4 + 0.9 + 0.9) / 3.0,
    );
    // One request each: by actual cost.
    assert_moves(
        &answer,
        &[
            ("r-big", "r-cheap", 1, 0.5, 0.0014),
            ("r-big", "r-big", 1, 0.1, 0.023),
            ("r-cheap", "r-big", 1, 0.05, 0.804),
        ],
    );
}

#[actix_rt::test]
async fn quality_first_sends_everything_to_the_strong_model_and_costs_more_than_was_spent() {
    let (_mock, app) = lab().await;
    seed(&app, ledger()).await;

    let (status, answer) = replay(
        &app,
        json!({"profile": "quality-first", "since": NOV_1 / 1000, "until": "2026-12-01T00:00:00Z"}),
    )
    .await;

    assert_eq!(status, 200, "{answer}");
    assert_actual(&answer);
    // Weights .05, .05, .9: r-big's .05 (latency) + .9·.9 = .86 beats r-cheap's .05 + .9·.4 =
    // .41, so a goes to r-big too: 1000·$10 + 200·$30 per M = $0.016, 1000 + 2000 = 3000 ms.
    assert_replayed(
        &answer,
        [0.016, 0.023, 0.804],
        [3000.0, 5000.0, 2000.0],
        0.9,
    );
    // r-big → r-big holds a and b: two requests first.
    assert_moves(
        &answer,
        &[
            ("r-big", "r-big", 2, 0.6, 0.039),
            ("r-cheap", "r-big", 1, 0.05, 0.804),
        ],
    );
}

#[actix_rt::test]
async fn the_limit_cuts_the_window_and_says_where_and_the_default_window_is_the_last_30_days() {
    let (_mock, app) = lab().await;
    let now = chrono::Utc::now().timestamp_millis();
    let rows: Vec<requests::Model> = (0..5)
        .map(|i| {
            record(
                &format!("r{i}"),
                now - 86_400_000 + i * 1000,
                "r-big",
                (1000, 0, 200),
                0.5,
            )
        })
        .chain([record(
            "old",
            now - 31 * 86_400_000,
            "r-big",
            (1000, 0, 200),
            0.5,
        )])
        .collect();
    seed(&app, rows).await;

    let (status, all) = replay(&app, json!({"profile": "cost-optimized"})).await;
    let (_, cut) = replay(&app, json!({"profile": "cost-optimized", "limit": 2})).await;

    assert_eq!(status, 200, "{all}");
    assert_eq!(
        all["requests"], 5,
        "the 31-day-old record is outside: {all}"
    );
    assert_eq!(all["truncated"], false);
    close(&all, "/actual/cost_usd", 2.5);
    close(&all, "/replayed/cost_usd", 5.0 * 0.0014);
    assert_eq!(cut["requests"], 2, "{cut}");
    assert_eq!(cut["truncated"], true);
    assert_eq!(
        cut["replayed_until"],
        llm_gateway::ledger::report::rfc3339(now - 86_400_000 + 2000),
        "the oldest are replayed first; the third is the first left out"
    );
    close(&cut, "/actual/cost_usd", 1.0);
}

#[actix_rt::test]
async fn a_proxied_call_records_its_needs_its_prompt_estimate_and_its_max_tokens() {
    let mock = MockUpstream::start().unwrap();
    let app = spawn_app(&four_providers(&mock)).await;
    let body = json!({
        "model": "gpt-4o",
        "max_tokens": 300,
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": "x".repeat(400)},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
        ]}],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]
    });
    let response = app.post("/v1/chat/completions", &body, &[]).await;
    assert_eq!(response.status(), 200);
    let _ = response.bytes().await;
    let response = app
        .post("/v1/chat/completions", &chat_body("gpt-4o", false), &[])
        .await;
    let _ = response.bytes().await;

    let records = app.records(2).await;

    // Most recent first. 400 characters of text and the tool's name `f`: 401 / 4 → 101
    // tokens, and 1600 for the image.
    let rich = &records[1];
    assert_eq!(rich["needs"], json!(["tools", "vision"]), "{rich}");
    assert_eq!(rich["prompt_tokens_estimate"], 101 + 1600);
    assert_eq!(rich["max_tokens"], 300);
    // "Hello": 5 characters, 2 tokens; nothing needed, no max_tokens.
    let plain = &records[0];
    assert!(plain["needs"].is_null(), "{plain}");
    assert_eq!(plain["prompt_tokens_estimate"], 2);
    assert!(plain["max_tokens"].is_null());
    // And the row itself.
    let db = store::connect(&app.db_url).await.unwrap();
    use sea_orm::EntityTrait;
    let row = requests::Entity::find_by_id(rich["id"].as_str().unwrap().to_string())
        .one(&db)
        .await
        .unwrap()
        .unwrap();
    let _ = db.close().await;
    assert_eq!(row.needs.as_deref(), Some("tools,vision"));
    assert_eq!(row.prompt_tokens_estimate, Some(1701));
    assert_eq!(row.max_tokens, Some(300));
}

#[actix_rt::test]
async fn bad_replay_bodies_are_400s_in_the_openai_shape_naming_what_is_wrong() {
    let app = spawn_app("").await;
    for (body, code, param) in [
        (
            json!({"profile": "no-such-profile"}),
            "unknown_profile",
            Value::Null,
        ),
        (
            json!({"profile": "balanced", "since": "2026-12-01T00:00:00Z", "until": "2026-11-01T00:00:00Z"}),
            "invalid_request",
            json!("since"),
        ),
        (
            json!({"profile": "balanced", "since": "last tuesday"}),
            "invalid_request",
            json!("since"),
        ),
        (
            json!({"profile": "balanced", "limit": 0}),
            "invalid_request",
            json!("limit"),
        ),
        (
            json!({"profile": "balanced", "limit": 100_001}),
            "invalid_request",
            json!("limit"),
        ),
        (json!({"since": 0}), "invalid_request", Value::Null),
        (
            json!({"profile": "balanced", "window": "30d"}),
            "invalid_request",
            Value::Null,
        ),
        (json!(["balanced"]), "invalid_request", Value::Null),
    ] {
        let (status, answer) = replay(&app, body.clone()).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert_eq!(answer["error"]["type"], "invalid_request_error", "{answer}");
        assert_eq!(answer["error"]["code"], code, "{body}: {answer}");
        assert_eq!(answer["error"]["param"], param, "{body}: {answer}");
    }
    let malformed = app
        .client
        .post(format!("{}/v1/route/replay", app.address))
        .header("content-type", "application/json")
        .body("{\"profile\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
    let answer: Value = malformed.json().await.unwrap();
    assert_eq!(answer["error"]["type"], "invalid_request_error", "{answer}");
}

#[actix_rt::test]
async fn the_replay_needs_the_admin_token_and_is_documented() {
    let app = spawn_app("[server]\nadmin_token = \"s3cret-admin\"\n").await;
    let body = json!({"profile": "balanced"});

    let without = app.post("/v1/route/replay", &body, &[]).await;
    let wrong = app
        .post(
            "/v1/route/replay",
            &body,
            &[("authorization", "Bearer nope")],
        )
        .await;
    let with = app
        .post(
            "/v1/route/replay",
            &body,
            &[("authorization", "Bearer s3cret-admin")],
        )
        .await;

    assert_eq!(without.status(), 401);
    assert_eq!(wrong.status(), 401);
    assert_eq!(with.status(), 200);
    let empty: Value = with.json().await.unwrap();
    assert_eq!(empty["requests"], 0, "{empty}");
    assert!(
        empty.get("savings_pct").is_none(),
        "nothing was spent: {empty}"
    );
    let doc: Value = app.get("/openapi.json").await.json().await.unwrap();
    let operation = &doc["paths"]["/v1/route/replay"]["post"];
    assert!(operation["security"].is_array(), "{operation}");
    for schema in [
        "ReplayRequest",
        "ReplayReport",
        "ActualFigures",
        "ReplayedFigures",
        "ModelShift",
        "Unroutable",
    ] {
        assert!(
            doc["components"]["schemas"][schema].is_object(),
            "{schema} is in the document"
        );
    }
}
