//! What the portal's overview and record views read: latency and time-to-first-byte
//! percentiles and the failover, sanitizer and breaker counts of `/v1/stats` and
//! `/v1/stats/timeseries` (computed by hand, the same from the hourly rollups as from the raw
//! records), and `GET /v1/records/{id}` with a record's attempts, route plan and signals.

use entities::requests;
use llm_gateway::actors::signal_collector::FlushSignals;
use llm_gateway::ledger::store;
use llm_gateway::ledger::LedgerRecord;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::routing::{chats, discovered, hello, lab_config, lab_mock, OPENS_AFTER_TWO};

/// 2026-11-25T10:00:00Z, the first hour of the seeded ledger.
const HOUR: i64 = 1_795_600_800_000;
const MINUTE: i64 = 60_000;

/// One seeded record: minutes after `HOUR`, model, latency, time to first byte, outcome,
/// error kind, whether the sanitizer found something, breaker skips.
type Seed = (
    i64,
    &'static str,
    i64,
    Option<i64>,
    &'static str,
    Option<&'static str>,
    bool,
    i32,
);

/// Six records in the first hour, four in the first half of the second:
///
/// | hour | latencies (ms)                 | ttfb (ms)  | mitigated | sanitized | blocked | steered | errors |
/// |------|--------------------------------|------------|-----------|-----------|---------|---------|--------|
/// | 10h  | 5, 40, 120, 150, 300, 25000    | 30, 60, 90 | 2         | 2         | 1       | 2       | 1      |
/// | 11h  | 8, 40, 180, 800                | 400        | 0         | 1         | 0       | 0       | 1      |
const SEEDS: [Seed; 10] = [
    (5, "m-a", 5, Some(30), "ok", None, false, 0),
    (10, "m-a", 40, None, "mitigated", None, false, 0),
    (15, "m-b", 120, Some(60), "ok", None, true, 0),
    (
        20,
        "m-b",
        150,
        None,
        "error",
        Some("compliance_blocked"),
        true,
        0,
    ),
    (25, "m-a", 300, None, "ok", None, false, 1),
    (55, "m-b", 25_000, Some(90), "mitigated", None, false, 2),
    (65, "m-a", 8, None, "ok", None, true, 0),
    (70, "m-a", 40, Some(400), "ok", None, false, 0),
    (
        75,
        "m-b",
        180,
        None,
        "error",
        Some("upstream_http_500"),
        false,
        0,
    ),
    (85, "m-b", 800, None, "ok", None, false, 0),
];

async fn seed(app: &TestApp) {
    let batch: Vec<LedgerRecord> = SEEDS
        .iter()
        .enumerate()
        .map(
            |(i, &(minute, model, latency, ttfb, outcome, error_kind, findings, skips))| {
                LedgerRecord {
                    request: requests::Model {
                        id: format!("seed-{i:02}"),
                        ts_ms: HOUR + minute * MINUTE,
                        endpoint: "chat_completions".into(),
                        provider_id: Some("openai".into()),
                        model_requested: Some(model.into()),
                        model_used: Some(model.into()),
                        status: match error_kind {
                            Some("compliance_blocked") => 403,
                            Some(_) => 500,
                            None => 200,
                        },
                        outcome: outcome.into(),
                        error_kind: error_kind.map(str::to_string),
                        latency_ms: latency,
                        ttfb_ms: ttfb,
                        cost_usd: Some(0.0),
                        priced: true,
                        sanitizer_findings: findings.then(|| "{\"email\":1}".to_string()),
                        breaker_skips: skips,
                        attempts: 1,
                        ..requests::Model::default()
                    },
                    attempts: Vec::new(),
                }
            },
        )
        .collect();
    let db = store::connect(&app.db_url).await.unwrap();
    store::write_batch(&db, &batch).await.unwrap();
    let _ = db.close().await;
}

/// `path` over `since`..`until` (Unix milliseconds, as RFC 3339).
fn windowed(path: &str, since: i64, until: i64) -> String {
    use llm_gateway::ledger::report::rfc3339;
    let sep = if path.contains('?') { '&' } else { '?' };
    format!(
        "{path}{sep}since={}&until={}",
        rfc3339(since),
        rfc3339(until)
    )
}

async fn json_of(app: &TestApp, path: &str) -> Value {
    let response = app.get(path).await;
    assert_eq!(response.status(), 200, "{path}");
    response.json().await.unwrap()
}

/// `value` is the number `expected` (to 1e-6), or null when `expected` is None.
fn assert_figure(value: &Value, expected: Option<f64>, what: &str) {
    match expected {
        Some(e) => assert!(
            value.as_f64().is_some_and(|v| (v - e).abs() < 1e-6),
            "{what}: {value}, expected {e}"
        ),
        None => assert!(value.is_null(), "{what}: {value}, expected null"),
    }
}

/// The figures of a group of seeded records: (requests, errors, mitigated, sanitized,
/// blocked, steered, latency p50, p95, ttfb p50, p95).
type Figures = (
    i64,
    i64,
    i64,
    i64,
    i64,
    i64,
    f64,
    f64,
    Option<f64>,
    Option<f64>,
);

/// Both hours: latency buckets [0,10]: 2, (25,50]: 2, (100,200]: 3, (200,350]: 1,
/// (750,1000]: 1, beyond 20 s: 1. p50 is rank 5 of 10, the first of 3 in (100,200]:
/// 100 + 100 × 1/3; p95 is rank 9.5, in the open bucket: its lower bound, 20000.
/// TTFB (30, 60, 90, 400): p50 rank 2, the first of 2 in (50,100]: 75; p95 rank 3.8 in
/// (350,500]: 350 + 150 × 0.8 = 470.
const BOTH_HOURS: Figures = (
    10,
    2,
    2,
    3,
    1,
    2,
    100.0 + 100.0 / 3.0,
    20_000.0,
    Some(75.0),
    Some(470.0),
);
/// 10h: latency buckets [0,10]: 1, (25,50]: 1, (100,200]: 2, (200,350]: 1, beyond 20 s: 1.
/// p50 is rank 3 of 6, halfway through (100,200]: 150; p95 rank 5.7 in the open bucket,
/// 20000. TTFB (30, 60, 90): p50 rank 1.5, 0.5 of 2 into (50,100]: 62.5; p95 rank 2.85,
/// 1.85 of 2: 96.25.
const FIRST_HOUR: Figures = (6, 1, 2, 2, 1, 2, 150.0, 20_000.0, Some(62.5), Some(96.25));
/// 11h: p50 rank 2 of 4, the end of (25,50]: 50; p95 rank 3.8, 0.8 into (750,1000]: 950.
/// TTFB (400): p50 350 + 150 × 0.5 = 425; p95 350 + 150 × 0.95 = 492.5.
const SECOND_HOUR: Figures = (4, 1, 0, 1, 0, 0, 50.0, 950.0, Some(425.0), Some(492.5));

/// The count fields of `/v1/stats`, in [`Figures`] order.
const STATS: [&str; 6] = [
    "total_requests",
    "failed_requests",
    "mitigated_requests",
    "sanitized_requests",
    "sanitizer_blocked_requests",
    "breaker_steered_requests",
];
/// The count fields of a time-series bucket, in [`Figures`] order.
const BUCKET: [&str; 6] = [
    "requests",
    "errors",
    "mitigated",
    "sanitized",
    "sanitizer_blocked",
    "breaker_steered",
];

/// `answer` (stats or a bucket, whose counts are named `counts`) has the figures `f`.
fn assert_figures(answer: &Value, counts: [&str; 6], f: Figures, what: &str) {
    let (requests, errors, mitigated, sanitized, blocked, steered, p50, p95, t50, t95) = f;
    let expected = [requests, errors, mitigated, sanitized, blocked, steered];
    for (field, expected) in counts.iter().zip(expected) {
        assert_eq!(answer[field], expected, "{what}: {field} in {answer}");
    }
    assert_figure(&answer["latency_ms_p50"], Some(p50), what);
    assert_figure(&answer["latency_ms_p95"], Some(p95), what);
    assert_figure(&answer["ttfb_ms_p50"], t50, what);
    assert_figure(&answer["ttfb_ms_p95"], t95, what);
}

#[actix_web::test]
async fn percentiles_and_counts_by_hand_are_the_same_from_the_rollups_and_the_raw_records() {
    let app = spawn_app("providers = []").await;
    seed(&app).await;
    let stats = |since: i64, until: i64| windowed("/v1/stats", since, until);
    // Whole hours: the rollups alone.
    let rollups = json_of(&app, &stats(HOUR, HOUR + 120 * MINUTE)).await;
    // The first hour from its rollups, the second's first half from the raw records.
    let mixed = json_of(&app, &stats(HOUR, HOUR + 90 * MINUTE)).await;
    // Within less than two hours, starting after a boundary: the raw records alone.
    let raw = json_of(&app, &stats(HOUR + 1000, HOUR + 90 * MINUTE)).await;

    for (answer, what) in [(&rollups, "rollups"), (&mixed, "mixed"), (&raw, "raw")] {
        assert_figures(answer, STATS, BOTH_HOURS, what);
        assert_figure(&answer["avg_ttfb_ms"], Some(145.0), what);
    }
    assert_figures(
        &json_of(&app, &stats(HOUR, HOUR + 60 * MINUTE)).await,
        STATS,
        FIRST_HOUR,
        "the first hour's rollups",
    );
    assert_figures(
        &json_of(&app, &stats(HOUR + 1000, HOUR + 60 * MINUTE - 1000)).await,
        STATS,
        FIRST_HOUR,
        "the first hour's raw records",
    );

    let hourly = json_of(
        &app,
        &windowed("/v1/stats/timeseries", HOUR, HOUR + 120 * MINUTE),
    )
    .await;
    let buckets = hourly["buckets"].as_array().unwrap();
    assert_eq!(buckets.len(), 2, "{hourly}");
    assert_figures(&buckets[0], BUCKET, FIRST_HOUR, "10h");
    assert_figures(&buckets[1], BUCKET, SECOND_HOUR, "11h");
    let daily = json_of(
        &app,
        &windowed("/v1/stats/timeseries?bucket=day", HOUR, HOUR + 120 * MINUTE),
    )
    .await;
    assert_figures(&daily["buckets"][0], BUCKET, BOTH_HOURS, "the day");

    // No sample: null percentiles and mean time to first byte, zero counts.
    let empty = json_of(&app, &stats(HOUR - 240 * MINUTE, HOUR - 120 * MINUTE)).await;
    for field in [
        "latency_ms_p50",
        "latency_ms_p95",
        "ttfb_ms_p50",
        "ttfb_ms_p95",
        "avg_ttfb_ms",
    ] {
        assert!(empty[field].is_null(), "{field}: {empty}");
    }
    assert_eq!(empty["mitigated_requests"], 0);
    let quiet = json_of(
        &app,
        &windowed("/v1/stats/timeseries", HOUR - 120 * MINUTE, HOUR),
    )
    .await;
    assert!(quiet["buckets"][0]["latency_ms_p50"].is_null(), "{quiet}");
    assert_eq!(quiet["buckets"][0]["mitigated"], 0, "{quiet}");
}

/// The record of `GET /v1/records/{id}`.
async fn record_of(app: &TestApp, id: &str) -> Value {
    json_of(app, &format!("/v1/records/{id}")).await["record"].clone()
}

/// Sums a field over the default time series (the last 24 hours).
pub(crate) async fn series_sum(app: &TestApp, field: &str) -> i64 {
    let series = json_of(app, "/v1/stats/timeseries").await;
    series["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b[field].as_i64().unwrap())
        .sum()
}

#[actix_web::test]
async fn a_failover_is_recorded_mitigated_and_its_record_shows_both_attempts_its_plan_and_a_signal()
{
    let healthy = MockUpstream::start().unwrap();
    let app = spawn_app(&format!(
        "[[providers]]\nid = \"openai\"\nprovider_type = \"openai\"\nendpoint = \"http://127.0.0.1:1\"\n\n[[providers]]\nid = \"azure\"\nprovider_type = \"azure_openai\"\nendpoint = \"{}\"\ndeployment = \"gpt-4o\"\napi_version = \"2024-10-21\"\n",
        healthy.url()
    ))
    .await;
    let (id, status) = send(
        &app,
        "/v1/chat/completions",
        &chat_body("gpt-4o", false),
        &[],
    )
    .await;
    assert_eq!(status, 200);
    app.records(1).await;

    let response = app
        .post(
            "/v1/signals",
            &json!({"request_id": id, "signal": "thumbs_up", "comment": "good", "source": "ide"}),
            &[],
        )
        .await;
    assert_eq!(response.status(), 200);
    app.signals.send(FlushSignals).await.unwrap();
    let detail = json_of(&app, &format!("/v1/records/{id}")).await;

    let record = &detail["record"];
    assert_eq!(record["id"], id.as_str());
    assert_eq!(record["outcome"], "mitigated");
    assert_eq!(record["attempts"], 2);
    assert_eq!(record["provider_id"], "azure");
    assert_eq!(
        record["route_plan"],
        json!(["openai/gpt-4o", "azure/gpt-4o"])
    );
    assert_eq!(record["route_decided_by"], "explicit");
    assert_eq!(record["breaker_skips"], 0);
    assert!(record["timestamp"].is_string(), "{record}");
    let attempts = detail["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{detail}");
    assert_eq!(attempts[0]["attempt"], 0);
    assert_eq!(attempts[0]["provider"], "openai");
    assert_eq!(attempts[0]["model"], "gpt-4o");
    assert_eq!(attempts[0]["error_kind"], "upstream_connect");
    assert_eq!(attempts[0]["mitigated"], true);
    assert!(attempts[0]["message"].is_string(), "{detail}");
    assert_eq!(attempts[1]["provider"], "azure");
    assert_eq!(attempts[1]["status"], 200);
    assert_eq!(attempts[1]["mitigated"], false);
    assert!(attempts[1]["ts"].is_string() && attempts[1]["latency_ms"].is_i64());
    assert_eq!(
        detail["signals"],
        json!([{"signal": "thumbs_up", "value": null, "comment": "good", "source": "ide",
                "ts": detail["signals"][0]["ts"]}])
    );
    assert!(detail["signals"][0]["ts"].is_string(), "{detail}");

    let stats = json_of(&app, "/v1/stats").await;
    assert_eq!(stats["mitigated_requests"], 1, "{stats}");
    assert_eq!(series_sum(&app, "mitigated").await, 1);
    // The listing shows the same row.
    let page = json_of(&app, "/v1/records").await;
    assert_eq!(&page["data"][0], record);
}

#[actix_web::test]
async fn an_auto_request_records_its_route_plan_and_open_breakers_count_as_steering() {
    let (a, b) = (lab_mock(), lab_mock());
    let app = spawn_app(&lab_config(&[&a, &b], OPENS_AFTER_TWO)).await;
    discovered(&app).await;
    let (auto, status) = send(
        &app,
        "/v1/chat/completions",
        &json!({"model": "auto", "messages": hello()}),
        &[],
    )
    .await;
    assert_eq!(status, 200);
    // lab0 fails twice (each time failing over to lab1): its breaker opens.
    a.set_failing(Some(500));
    for _ in 0..2 {
        let (_, status) = send(
            &app,
            "/v1/chat/completions",
            &json!({"model": "m-fast", "messages": hello()}),
            &[],
        )
        .await;
        assert_eq!(status, 200);
    }
    let tried = chats(&a);
    // Open: the router drops lab0's candidates; an explicit model's plan skips lab0.
    let (steered_auto, _) = send(
        &app,
        "/v1/chat/completions",
        &json!({"model": "auto", "messages": hello()}),
        &[],
    )
    .await;
    let (steered_explicit, _) = send(
        &app,
        "/v1/chat/completions",
        &json!({"model": "m-fast", "messages": hello()}),
        &[],
    )
    .await;
    assert_eq!(chats(&a), tried, "nothing sent to the open breaker");
    app.records(5).await;

    let first = record_of(&app, &auto).await;
    let plan = first["route_plan"].as_array().unwrap();
    assert!(!plan.is_empty() && plan.len() <= 8, "{first}");
    assert_eq!(
        plan[0],
        format!(
            "{}/{}",
            first["provider_id"].as_str().unwrap(),
            first["model_used"].as_str().unwrap()
        ),
        "the first of the plan answered: {first}"
    );
    assert!(
        ["score", "load"].contains(&first["route_decided_by"].as_str().unwrap()),
        "{first}"
    );
    assert_eq!(first["breaker_skips"], 0);

    let routed = record_of(&app, &steered_auto).await;
    assert!(routed["breaker_skips"].as_i64().unwrap() >= 1, "{routed}");
    assert!(
        routed["route_plan"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t.as_str().unwrap().starts_with("lab1/")),
        "{routed}"
    );
    let explicit = record_of(&app, &steered_explicit).await;
    assert_eq!(explicit["breaker_skips"], 1, "{explicit}");
    assert_eq!(
        explicit["route_plan"],
        json!(["lab0/m-fast", "lab1/m-fast"])
    );
    assert_eq!(explicit["route_decided_by"], "explicit");

    let stats = json_of(&app, "/v1/stats").await;
    assert_eq!(stats["breaker_steered_requests"], 2, "{stats}");
    assert_eq!(stats["mitigated_requests"], 2, "{stats}");
    assert_eq!(series_sum(&app, "breaker_steered").await, 2);
}

#[actix_web::test]
async fn sanitizer_findings_and_blocks_are_counted() {
    let mock = MockUpstream::start().unwrap();
    let app = spawn_app(&format!(
        "{}\n[sanitization]\nenabled = true\nredact_pii = true\n[[sanitization.patterns]]\nname = \"codename\"\nregex = 'Project Nightingale'\naction = \"block\"\n",
        four_providers(&mock)
    ))
    .await;
    let chat =
        |text: &str| json!({"model": "gpt-4o", "messages": [{"role": "user", "content": text}]});

    let (_, redacted) = send(
        &app,
        "/v1/chat/completions",
        &chat("Mail ops@example.com"),
        &[],
    )
    .await;
    let (_, blocked) = send(
        &app,
        "/v1/chat/completions",
        &chat("About Project Nightingale"),
        &[],
    )
    .await;
    let (_, clean) = send(&app, "/v1/chat/completions", &chat("Hello"), &[]).await;
    assert_eq!((redacted, blocked, clean), (200, 403, 200));
    app.records(3).await;

    let stats = json_of(&app, "/v1/stats").await;
    assert_eq!(stats["sanitized_requests"], 2, "{stats}");
    assert_eq!(stats["sanitizer_blocked_requests"], 1, "{stats}");
    assert_eq!(series_sum(&app, "sanitized").await, 2);
    assert_eq!(series_sum(&app, "sanitizer_blocked").await, 1);
}

#[actix_web::test]
async fn a_record_is_behind_the_admin_gate_and_an_unknown_or_malformed_id_is_refused() {
    let mock = MockUpstream::start().unwrap();
    let app = spawn_app(&format!(
        "{}\n[server]\nadmin_token = \"s3cret-admin\"\n",
        four_providers(&mock)
    ))
    .await;
    let get = |path: String, token: Option<&'static str>| {
        let mut request = app.client.get(format!("{}{path}", app.address));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move { request.send().await.unwrap() }
    };
    let (id, _) = send(
        &app,
        "/v1/chat/completions",
        &chat_body("gpt-4o", false),
        &[],
    )
    .await;
    let _ = app
        .ledger
        .send(llm_gateway::actors::cost_ledger::FlushLedger)
        .await;

    let without = get(format!("/v1/records/{id}"), None).await;
    let found = get(format!("/v1/records/{id}"), Some("s3cret-admin")).await;
    let unknown = get(
        "/v1/records/0193a6c4-1f2e-7cc1-9d35-6a1c2b3d4e5f".into(),
        Some("s3cret-admin"),
    )
    .await;
    let malformed = get(
        format!("/v1/records/{}", "x".repeat(201)),
        Some("s3cret-admin"),
    )
    .await;

    assert_eq!(without.status(), 401);
    assert_eq!(found.status(), 200);
    let detail: Value = found.json().await.unwrap();
    assert_eq!(detail["record"]["id"], id.as_str());
    assert_eq!(detail["attempts"], json!([]), "a first try that answered");
    assert_eq!(detail["signals"], json!([]));
    assert_eq!(unknown.status(), 404);
    let body: Value = unknown.json().await.unwrap();
    assert_eq!(body["error"]["code"], "record_not_found", "{body}");
    assert_eq!(body["error"]["type"], "invalid_request_error", "{body}");
    assert_eq!(malformed.status(), 400);
    let body: Value = malformed.json().await.unwrap();
    assert_eq!(body["error"]["param"], "id", "{body}");
}
