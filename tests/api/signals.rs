//! Quality signals: `POST /v1/signals` validates every member and names the one at fault,
//! finds a request answered a moment ago before the ledger has written it, takes each
//! (request, kind, source) once; `GET /v1/signals` reports counts, means with their Wilson
//! intervals, breakdowns and the trend; the evidence per provider and model is published.

use llm_gateway::actors::cost_ledger::FlushLedger;
use llm_gateway::actors::signal_collector::FlushSignals;
use llm_gateway::signals::Evidence;
use serde_json::{json, Value};

use crate::helpers::*;

/// A request id no proxied request has.
const UNKNOWN_ID: &str = "0193a6c4-1f2e-7cc1-9d35-6a1c2b3d4e5f";

/// Proxies a chat request for `model`; returns its request id (the call must succeed).
async fn answered(app: &TestApp, model: &str) -> String {
    let (id, status) = send(app, "/v1/chat/completions", &chat_body(model, false), &[]).await;
    assert_eq!(status, 200, "the proxied call of {model}");
    id
}

/// POSTs a signal; returns the status and the answer's JSON.
async fn signal(app: &TestApp, body: &Value) -> (u16, Value) {
    let response = app.post("/v1/signals", body, &[]).await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// `GET /v1/signals` with `query`, which must answer 200.
async fn report(app: &TestApp, query: &str) -> Value {
    let response = app.get(&format!("/v1/signals{query}")).await;
    assert_eq!(response.status(), 200, "/v1/signals{query}");
    response.json().await.unwrap()
}

fn close(value: &Value, expected: f64) -> bool {
    value.as_f64().is_some_and(|v| (v - expected).abs() < 1e-4)
}

#[actix_web::test]
async fn every_bad_member_gets_a_400_naming_it() {
    let mock = MockUpstream::start().unwrap();
    let app = spawn_app(&four_providers(&mock)).await;
    let id = answered(&app, "gpt-4o").await;

    let cases = [
        (json!({"signal": "thumbs_up"}), "request_id"),
        (
            json!({"request_id": "", "signal": "thumbs_up"}),
            "request_id",
        ),
        (
            json!({"request_id": 42, "signal": "thumbs_up"}),
            "request_id",
        ),
        (json!({"request_id": id}), "signal"),
        (
            json!({"request_id": id, "signal": "thumbs_sideways"}),
            "signal",
        ),
        (json!({"request_id": id, "signal": "score"}), "value"),
        (
            json!({"request_id": id, "signal": "score", "value": 1.01}),
            "value",
        ),
        (
            json!({"request_id": id, "signal": "score", "value": -1}),
            "value",
        ),
        (
            json!({"request_id": id, "signal": "score", "value": "NaN"}),
            "value",
        ),
        (
            json!({"request_id": id, "signal": "thumbs_up", "value": 1}),
            "value",
        ),
        (
            json!({"request_id": id, "signal": "retry", "comment": "x".repeat(2001)}),
            "comment",
        ),
        (
            json!({"request_id": id, "signal": "retry", "source": ["a"]}),
            "source",
        ),
        (
            json!({"request_id": id, "signal": "retry", "stars": 5}),
            "stars",
        ),
    ];
    for (body, field) in cases {
        let (status, answer) = signal(&app, &body).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(answer["error"]["param"], field, "{body}: {answer}");
        assert_eq!(answer["error"]["code"], "invalid_request");
        assert!(
            answer["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains(field)),
            "{answer}"
        );
    }

    for malformed in [
        "{\"request_id\": ",
        &format!("{{\"request_id\": \"{id}\", \"signal\": \"score\", \"value\": NaN}}"),
        "[]",
    ] {
        let response = app
            .client
            .post(format!("{}/v1/signals", app.address))
            .header("content-type", "application/json")
            .body(malformed.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{malformed}");
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["error"]["param"], Value::Null);
    }

    let (status, answer) = signal(
        &app,
        &json!({"request_id": UNKNOWN_ID, "signal": "thumbs_up"}),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(answer["error"]["code"], "request_not_found");
    assert!(answer["error"]["message"]
        .as_str()
        .unwrap()
        .contains(UNKNOWN_ID));

    // A comment of exactly 2000 characters, of several bytes each, is kept.
    let (status, answer) = signal(
        &app,
        &json!({"request_id": id, "signal": "score", "value": 1, "comment": "é".repeat(2000)}),
    )
    .await;
    assert_eq!(
        (status, answer),
        (200, json!({"accepted": true, "duplicate": false}))
    );
}

#[actix_web::test]
async fn a_request_no_model_answered_gets_a_409() {
    let mock = MockUpstream::start().unwrap();
    let app = spawn_app(&four_providers(&mock)).await;
    let (id, status) = send(
        &app,
        "/v1/chat/completions",
        &chat_body("no-such-model-xyz", false),
        &[],
    )
    .await;
    assert_eq!(status, 404, "no provider serves the model");

    let (status, answer) = signal(&app, &json!({"request_id": id, "signal": "thumbs_down"})).await;
    assert_eq!(status, 409, "{answer}");
    assert!(answer["error"]["message"]
        .as_str()
        .unwrap()
        .contains("not answered by a model"));

    // Still so once the ledger has written the request (the database answers then).
    app.ledger.send(FlushLedger).await.unwrap();
    let again = spawn_app_on(&four_providers(&mock), Some(&app.db_url)).await;
    let (status, _) = signal(&again, &json!({"request_id": id, "signal": "thumbs_down"})).await;
    assert_eq!(status, 409);
}

#[actix_web::test]
async fn a_signal_right_after_the_answer_is_taken_before_the_ledger_writes_the_request() {
    let mock = MockUpstream::start().unwrap();
    // The ledger writes once a minute: the request is in memory only while the signal comes.
    let app = spawn_app_tuned(&four_providers(&mock), None, |s| {
        s.database.flush_interval_ms = 60_000;
    })
    .await;
    let id = answered(&app, "gpt-4o").await;
    let page: Value = app.get("/v1/records").await.json().await.unwrap();
    assert_eq!(
        page["data"].as_array().map(Vec::len),
        Some(0),
        "not written yet"
    );

    let (status, answer) = signal(&app, &json!({"request_id": id, "signal": "accepted"})).await;
    assert_eq!(
        (status, answer),
        (200, json!({"accepted": true, "duplicate": false}))
    );
    app.signals.send(FlushSignals).await.unwrap();
    let figures = report(&app, "").await;
    assert_eq!(
        figures["by_model"]["gpt-4o"]["by_provider"]["openai"]["counts"]["accepted"],
        1
    );
}

#[actix_web::test]
async fn without_the_recent_index_the_request_is_found_in_the_database() {
    let mock = MockUpstream::start().unwrap();
    let app = spawn_app_tuned(&four_providers(&mock), None, |s| {
        s.signals.recent_requests = 0;
    })
    .await;
    let id = answered(&app, "gpt-4o").await;
    app.records(1).await;
    let (status, answer) = signal(&app, &json!({"request_id": id, "signal": "thumbs_up"})).await;
    assert_eq!(
        (status, answer),
        (200, json!({"accepted": true, "duplicate": false}))
    );
}

#[actix_web::test]
async fn the_same_request_kind_and_source_is_taken_once() {
    let mock = MockUpstream::start().unwrap();
    let app = spawn_app(&four_providers(&mock)).await;
    let id = answered(&app, "gpt-4o").await;
    let first = json!({"request_id": id, "signal": "thumbs_up", "source": "ide"});

    let taken = json!({"accepted": true, "duplicate": false});
    let repeat = json!({"accepted": false, "duplicate": true});
    assert_eq!(signal(&app, &first).await, (200, taken.clone()));
    assert_eq!(
        signal(&app, &first).await,
        (200, repeat.clone()),
        "held, not yet written"
    );
    app.signals.send(FlushSignals).await.unwrap();
    assert_eq!(signal(&app, &first).await, (200, repeat.clone()), "written");
    let other_source = json!({"request_id": id, "signal": "thumbs_up", "source": "review"});
    assert_eq!(signal(&app, &other_source).await, (200, taken.clone()));
    let other_kind = json!({"request_id": id, "signal": "retry", "source": "ide"});
    assert_eq!(signal(&app, &other_kind).await, (200, taken.clone()));
    app.signals.send(FlushSignals).await.unwrap();

    // Another instance on the same database knows nothing of these in memory: the database
    // tells it, and its evidence starts from what the database holds.
    let second = spawn_app_on(&four_providers(&mock), Some(&app.db_url)).await;
    assert_eq!(signal(&second, &first).await, (200, repeat));
    assert_eq!(
        second.signal_figures.load().get("openai", "gpt-4o"),
        Some(Evidence { n: 3, sum: 2.0 })
    );
    let totals = report(&second, "").await;
    assert_eq!(totals["total"]["signals"], 3, "three rows: {totals}");
    assert_eq!(totals["total"]["counts"]["thumbs_up"], 2);
}

#[actix_web::test]
async fn the_report_gives_counts_means_intervals_breakdowns_and_trend() {
    let mock = MockUpstream::start().unwrap();
    let app = spawn_app(&four_providers(&mock)).await;
    let gpt: Vec<String> =
        futures_util::future::join_all((0..3).map(|_| answered(&app, "gpt-4o"))).await;
    let claude = {
        let (id, status) = send(
            &app,
            "/v1/messages",
            &messages_body("claude-sonnet-4-20250514", false),
            &[],
        )
        .await;
        assert_eq!(status, 200);
        id
    };
    for body in [
        json!({"request_id": gpt[0], "signal": "thumbs_up", "source": "a"}),
        json!({"request_id": gpt[0], "signal": "score", "value": 0.5, "source": "a"}),
        json!({"request_id": gpt[1], "signal": "thumbs_down"}),
        json!({"request_id": gpt[2], "signal": "accepted", "source": "b", "comment": "applied as is"}),
        json!({"request_id": claude, "signal": "retry"}),
    ] {
        assert_eq!(signal(&app, &body).await.0, 200, "{body}");
    }
    app.signals.send(FlushSignals).await.unwrap();

    let all = report(&app, "").await;
    // Five signals, outcomes 1 + 0.5 + 0 + 1 + 0.
    assert_eq!(all["bucket"], "day");
    assert_eq!(all["total"]["signals"], 5);
    assert!(close(&all["total"]["mean"], 0.5));
    assert!(
        close(&all["total"]["ci95"]["low"], 0.1704) && close(&all["total"]["ci95"]["high"], 0.8296),
        "{}",
        all["total"]
    );

    let model = &all["by_model"]["gpt-4o"];
    assert_eq!(model["signals"], 4);
    assert_eq!(
        model["counts"],
        json!({"thumbs_up": 1, "thumbs_down": 1, "score": 1, "retry": 0, "bad_format": 0, "tool_error": 0, "accepted": 1})
    );
    // Mean 2.5 / 4; Wilson at n = 4, z = 1.96: (0.2194, 0.9081).
    assert!(close(&model["mean"], 0.625));
    assert!(
        close(&model["ci95"]["low"], 0.2194) && close(&model["ci95"]["high"], 0.9081),
        "{model}"
    );
    assert_eq!(
        model["by_provider"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["openai"]
    );
    assert_eq!(model["by_profile"]["(none)"]["signals"], 4);
    let source_a = &model["by_source"]["a"];
    assert_eq!(source_a["signals"], 2);
    assert!(close(&source_a["mean"], 0.75));
    assert!(close(&source_a["ci95"]["low"], 0.1979) && close(&source_a["ci95"]["high"], 0.9733));
    assert_eq!(model["by_source"]["b"]["mean"], 1.0);
    assert_eq!(model["by_source"]["(none)"]["mean"], 0.0);
    let trend = model["trend"].as_array().unwrap();
    assert_eq!(trend.len(), 1, "all today: {trend:?}");
    assert_eq!(trend[0]["signals"], 4);
    assert!(trend[0]["start"]
        .as_str()
        .unwrap()
        .ends_with("T00:00:00.000Z"));

    let claude_figures = &all["by_model"]["claude-sonnet-4-20250514"];
    assert_eq!(claude_figures["counts"]["retry"], 1);
    assert_eq!(claude_figures["by_provider"]["anthropic"]["mean"], 0.0);

    // Filters, hourly buckets, and windows.
    let hourly = report(&app, "?bucket=hour&provider=anthropic").await;
    assert_eq!(hourly["total"]["signals"], 1);
    assert!(
        hourly["by_model"]["claude-sonnet-4-20250514"]["trend"][0]["start"]
            .as_str()
            .unwrap()
            .ends_with(":00:00.000Z")
    );
    assert_eq!(report(&app, "?source=a").await["total"]["signals"], 2);
    assert_eq!(
        report(&app, "?model=gpt-4o&source=b").await["total"]["signals"],
        1
    );
    let past = report(
        &app,
        "?since=2020-01-01T00:00:00Z&until=2020-01-02T00:00:00Z",
    )
    .await;
    assert_eq!(past["total"]["signals"], 0);
    assert_eq!(past["total"]["mean"], Value::Null);
    assert_eq!(past["by_model"], json!({}));

    for (query, param) in [
        ("?bucket=week", "bucket"),
        ("?since=yesterday", "since"),
        ("?color=red", ""),
    ] {
        let response = app.get(&format!("/v1/signals{query}")).await;
        assert_eq!(response.status(), 400, "{query}");
        if !param.is_empty() {
            let answer: Value = response.json().await.unwrap();
            assert_eq!(answer["error"]["param"], param);
        }
    }

    // The evidence the router reads: per provider and model, n signals and their outcome sum.
    let figures = app.signal_figures.load();
    assert_eq!(
        figures.get("openai", "gpt-4o"),
        Some(Evidence { n: 4, sum: 2.5 })
    );
    assert_eq!(
        figures.get("anthropic", "claude-sonnet-4-20250514"),
        Some(Evidence { n: 1, sum: 0.0 })
    );
    assert_eq!(figures.get("azure", "gpt-4o"), None);
}

#[actix_web::test]
async fn signals_follow_the_virtual_key_rules_and_the_report_the_admin_token() {
    let mock = MockUpstream::start().unwrap();
    let config = format!(
        "[server]\nadmin_token = \"admin-secret\"\n\n[auth]\nrequire_key = true\n\n[key_map.team-key]\nlabel = \"team\"\nopenai_key = \"sk-team\"\n{}",
        four_providers(&mock)
    );
    let app = spawn_app(&config).await;
    let key = [("authorization", "Bearer team-key")];
    let (id, status) = send(
        &app,
        "/v1/chat/completions",
        &chat_body("gpt-4o", false),
        &key,
    )
    .await;
    assert_eq!(status, 200);
    let body = json!({"request_id": id, "signal": "thumbs_up"});

    assert_eq!(app.post("/v1/signals", &body, &[]).await.status(), 401);
    let wrong = [("authorization", "Bearer not-a-key")];
    assert_eq!(app.post("/v1/signals", &body, &wrong).await.status(), 401);
    assert_eq!(app.post("/v1/signals", &body, &key).await.status(), 200);

    assert_eq!(app.get("/v1/signals").await.status(), 401);
    let with_token = app
        .client
        .get(format!("{}/v1/signals", app.address))
        .bearer_auth("admin-secret")
        .send()
        .await
        .unwrap();
    assert_eq!(with_token.status(), 200);
}
