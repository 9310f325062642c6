//! The errors view: every failed upstream attempt listed, marked mitigated when failover saved
//! the request and customer-impacting when it did not, with its filters, paging and counts.

use serde_json::{json, Value};

use crate::helpers::*;

/// A provider that answers every request with a 500 in OpenAI's error shape.
fn failing_upstream() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = actix_web::HttpServer::new(|| {
        actix_web::App::new().default_service(actix_web::web::to(|| async {
            actix_web::HttpResponse::InternalServerError().json(
                json!({"error": {"message": "the server had an error", "type": "server_error"}}),
            )
        }))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .unwrap()
    .run();
    actix_rt::spawn(server);
    url
}

/// An OpenAI-type provider at `endpoint` serving `shared-model`.
fn shared_model_provider(id: &str, endpoint: &str) -> String {
    format!("\n[[providers]]\nid = \"{id}\"\nprovider_type = \"openai\"\napi_key = \"sk-{id}-provider-key\"\nendpoint = \"{endpoint}\"\nmodels = [\"shared-model\"]\n")
}

/// The provider `openai` at `mock`, the only one serving `solo-model`.
fn solo_provider(mock: &MockUpstream) -> String {
    format!("\n[[providers]]\nid = \"openai\"\nprovider_type = \"openai\"\napi_key = \"sk-openai-provider-key\"\nendpoint = \"{}\"\nmodels = [\"solo-model\"]\n", mock.url())
}

/// Nothing listens on port 1.
const UNREACHABLE: &str = "http://127.0.0.1:1";

/// Sends a chat request; returns its request id and the status the client got.
async fn chat(app: &TestApp, model: &str, headers: &[(&str, &str)]) -> (String, u16) {
    send(
        app,
        "/v1/chat/completions",
        &chat_body(model, false),
        headers,
    )
    .await
}

/// `GET /v1/errors` with `query`, which must answer 200.
async fn errors(app: &TestApp, query: &str) -> Value {
    let response = app.get(&format!("/v1/errors{query}")).await;
    assert_eq!(response.status(), 200, "/v1/errors{query}");
    response.json().await.unwrap()
}

/// The listed attempts as (request id, attempt, provider, impact).
fn listed(page: &Value) -> Vec<(String, i64, String, String)> {
    page["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["request_id"].as_str().unwrap().to_string(),
                e["attempt"].as_i64().unwrap(),
                e["provider"].as_str().unwrap().to_string(),
                e["impact"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn row(id: &str, attempt: i64, provider: &str, impact: &str) -> (String, i64, String, String) {
    (id.into(), attempt, provider.into(), impact.into())
}

#[actix_web::test]
async fn a_failed_attempt_that_failover_recovered_is_listed_as_mitigated() {
    let steady = MockUpstream::start().unwrap();
    let config = shared_model_provider("flaky", &failing_upstream())
        + &shared_model_provider("steady", &steady.url());
    let app = spawn_app(&config).await;

    let (id, status) = chat(
        &app,
        "shared-model",
        &[("x-source", "cli"), ("x-project", "apollo")],
    )
    .await;

    assert_eq!(status, 200);
    let records = app.records(1).await;
    assert_eq!(records[0]["outcome"], "mitigated");
    let page = errors(&app, "").await;
    assert_eq!(listed(&page), vec![row(&id, 0, "flaky", "mitigated")]);
    let error = &page["errors"][0];
    assert_eq!(error["status"], 500);
    assert_eq!(error["model"], "shared-model");
    assert_eq!(error["endpoint"], "chat_completions");
    assert_eq!(error["source"], "cli");
    assert_eq!(error["project"], "apollo");
    assert_eq!(error["outcome"], "mitigated");
    assert!(error["error_kind"].is_string(), "{error}");
    assert!(error["latency_ms"].is_i64(), "{error}");
    let ts = error["ts"].as_str().unwrap();
    assert!(chrono::DateTime::parse_from_rfc3339(ts).is_ok(), "{ts}");
    assert_eq!(page["total"], 1);
    assert_eq!(
        page["counts"]["by_impact"],
        json!({"customer_impacting": 0, "mitigated": 1})
    );
    assert_eq!(
        (&page["since"], &page["until"]),
        (&Value::Null, &Value::Null)
    );
}

#[actix_web::test]
async fn when_every_provider_fails_the_client_gets_a_502_and_each_attempt_is_customer_impacting() {
    let config = shared_model_provider("flaky", &failing_upstream())
        + &shared_model_provider("down", UNREACHABLE);
    let app = spawn_app(&config).await;

    let (id, status) = chat(&app, "shared-model", &[]).await;

    assert_eq!(status, 502);
    let records = app.records(1).await;
    assert_eq!(records[0]["outcome"], "error");
    let page = errors(&app, "").await;
    assert_eq!(
        listed(&page),
        vec![
            row(&id, 1, "down", "customer_impacting"),
            row(&id, 0, "flaky", "customer_impacting"),
        ],
        "newest first"
    );
    assert_eq!(page["errors"][0]["error_kind"], "upstream_connect");
    assert_eq!(page["errors"][0]["status"], Value::Null);
    assert_eq!(page["errors"][1]["status"], 500);
    assert_eq!(page["errors"][0]["outcome"], "error");
    assert_eq!(page["total"], 2);
    assert_eq!(
        page["counts"]["by_impact"],
        json!({"customer_impacting": 2, "mitigated": 0})
    );
    assert_eq!(page["counts"]["by_kind"]["upstream_connect"], 1);
}

#[actix_web::test]
async fn the_one_attempt_of_a_request_that_failed_outright_is_listed_and_a_success_is_not() {
    let mock = MockUpstream::start().unwrap();
    let config = solo_provider(&mock) + &shared_model_provider("down", UNREACHABLE);
    let app = spawn_app(&config).await;

    let (ok, ok_status) = chat(&app, "solo-model", &[]).await;
    let (rejected, rejected_status) = chat(
        &app,
        "solo-model",
        &[("x-mock-status", "401"), ("x-mock-echo-key", "1")],
    )
    .await;
    let (unreachable, unreachable_status) = chat(&app, "shared-model", &[]).await;

    assert_eq!(
        (ok_status, rejected_status, unreachable_status),
        (200, 401, 502)
    );
    app.records(3).await;
    let page = errors(&app, "").await;
    assert_eq!(
        listed(&page),
        vec![
            row(&unreachable, 0, "down", "customer_impacting"),
            row(&rejected, 0, "openai", "customer_impacting"),
        ]
    );
    assert!(listed(&page).iter().all(|(id, ..)| *id != ok));
    let rejected = &page["errors"][1];
    assert_eq!(rejected["status"], 401);
    assert_eq!(rejected["error_kind"], "upstream_http_401");
    let message = rejected["message"].as_str().unwrap();
    assert!(message.contains("mock upstream error 401"), "{message}");
    assert!(
        !page.to_string().contains("sk-openai-provider-key"),
        "no provider key in the errors view: {page}"
    );
}

#[actix_web::test]
async fn errors_filter_by_provider_impact_model_and_time_page_and_count_the_whole_window() {
    let mock = MockUpstream::start().unwrap();
    let config = solo_provider(&mock)
        + &shared_model_provider("flaky", &failing_upstream())
        + &shared_model_provider("steady", &mock.url());
    let app = spawn_app(&config).await;
    // Two requests saved by failover, then (later) one 503 passed on to the client and one more saved.
    let (first, _) = chat(&app, "shared-model", &[]).await;
    let (second, _) = chat(&app, "shared-model", &[]).await;
    app.records(2).await;
    let between = chrono::Utc::now() + chrono::Duration::milliseconds(5);
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let (refused, status) = chat(&app, "solo-model", &[("x-mock-status", "503")]).await;
    assert_eq!(status, 503);
    let (last, _) = chat(&app, "shared-model", &[]).await;
    app.records(4).await;
    let since = between.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);

    let all = errors(&app, "").await;
    let flaky = errors(&app, "?provider=flaky").await;
    let openai = errors(&app, "?provider=openai&model=solo-model").await;
    let mitigated = errors(&app, "?impact=mitigated").await;
    let impacting = errors(&app, "?impact=customer_impacting").await;
    let recent = errors(&app, &format!("?since={since}")).await;
    let earlier = errors(&app, &format!("?until={since}")).await;
    let page_one = errors(&app, "?limit=2").await;
    let page_two = errors(&app, "?limit=2&offset=2").await;
    let beyond = errors(&app, "?offset=10").await;
    let unknown = errors(&app, "?model=no-such-model").await;

    assert_eq!(
        listed(&all),
        vec![
            row(&last, 0, "flaky", "mitigated"),
            row(&refused, 0, "openai", "customer_impacting"),
            row(&second, 0, "flaky", "mitigated"),
            row(&first, 0, "flaky", "mitigated"),
        ]
    );
    assert_eq!(all["total"], 4);
    assert_eq!(
        all["counts"]["by_impact"],
        json!({"customer_impacting": 1, "mitigated": 3})
    );
    let by_kind = all["counts"]["by_kind"].as_object().unwrap();
    assert_eq!(by_kind["upstream_http_503"], 1);
    assert_eq!(
        by_kind.values().map(|n| n.as_i64().unwrap()).sum::<i64>(),
        4
    );

    assert_eq!(flaky["total"], 3);
    assert!(listed(&flaky).iter().all(|(_, _, p, _)| p == "flaky"));
    assert_eq!(
        listed(&openai),
        vec![row(&refused, 0, "openai", "customer_impacting")]
    );
    assert_eq!(mitigated["total"], 3);
    assert_eq!(
        mitigated["counts"]["by_impact"],
        json!({"customer_impacting": 0, "mitigated": 3})
    );
    assert_eq!(
        listed(&impacting),
        vec![row(&refused, 0, "openai", "customer_impacting")]
    );
    assert_eq!(
        listed(&recent),
        vec![
            row(&last, 0, "flaky", "mitigated"),
            row(&refused, 0, "openai", "customer_impacting"),
        ]
    );
    assert_eq!(recent["since"], since);
    assert_eq!(recent["until"], Value::Null);
    assert_eq!(earlier["total"], 2);
    assert_eq!(earlier["until"], since);

    assert_eq!(listed(&page_one), listed(&all)[..2].to_vec());
    assert_eq!(listed(&page_two), listed(&all)[2..].to_vec());
    assert_eq!(page_one["total"], 4, "the total counts every page");
    assert_eq!(page_one["counts"], all["counts"]);
    assert_eq!(beyond["errors"], json!([]));
    assert_eq!(beyond["total"], 4);
    assert_eq!(unknown["errors"], json!([]));
    assert_eq!(unknown["total"], 0);
    assert_eq!(
        unknown["counts"],
        json!({"by_kind": {}, "by_impact": {"customer_impacting": 0, "mitigated": 0}})
    );
}

#[actix_web::test]
async fn bad_errors_parameters_get_a_400_in_the_openai_shape_that_names_them() {
    let app = spawn_app("").await;
    for (query, param) in [
        ("impact=everything", "impact"),
        ("impact=", "impact"),
        ("since=yesterday", "since"),
        ("until=2026-13-45", "until"),
        (
            "since=2026-11-25T12:00:00Z&until=2026-11-24T12:00:00Z",
            "since",
        ),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=ten", "limit"),
        ("offset=-1", "offset"),
        ("offset=9223372036854775808", "offset"),
        ("colour=red", "colour"),
        ("status=500", "status"),
    ] {
        let response = app.get(&format!("/v1/errors?{query}")).await;
        assert_eq!(response.status(), 400, "{query}");
        let body: Value = response.json().await.unwrap();
        let error = &body["error"];
        assert_eq!(error["type"], "invalid_request_error", "{query}: {body}");
        assert_eq!(error["code"], "invalid_request", "{query}: {body}");
        let message = error["message"].as_str().unwrap();
        assert!(message.contains(param), "{query}: {message}");
        if !["colour", "status"].contains(&param) {
            assert_eq!(error["param"], param, "{query}: {body}");
        }
    }
}

#[actix_web::test]
async fn the_errors_view_is_documented_with_its_parameters_behind_the_admin_gate() {
    let app = spawn_app("").await;

    let doc: Value = app.get("/openapi.json").await.json().await.unwrap();

    let operation = &doc["paths"]["/v1/errors"]["get"];
    assert!(operation["security"].is_array(), "{operation}");
    let params: Vec<&str> = operation["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        params,
        ["since", "until", "provider", "model", "impact", "limit", "offset"]
    );
    for schema in ["ErrorsPage", "ErrorView", "ErrorCounts", "Impact"] {
        assert!(
            doc["components"]["schemas"][schema].is_object(),
            "{schema} is in the document"
        );
    }
}
