//! The limits as the other endpoints report them: `POST /v1/route` decides under the cheaper
//! profile a proxied call would get when a budget runs low, and `/v1/stats` counts the
//! requests refused by budgets and rate limits and those routed to the cheaper profile.

use crate::helpers::*;
use crate::ledger_views::series_sum;
use crate::limits::ALPHA;
use llm_gateway::limits::Subject;
use serde_json::{json, Value};

/// 2026-12-03T10:00:00Z: the limiter's clock in these tests.
const T0: i64 = 1_796_292_000_000;

/// Alpha's budget is $1 in total, beta's rate 1 request a minute; project apollo has $1 too.
/// Profile `team` falls back to `cost-optimized` when a budget runs low.
fn config(mock: &MockUpstream) -> String {
    let rest = r#"
[projects.apollo]
max_budget_usd = 1.0

[routing.profiles.team]
description = "Quality first, cheaper when the budget runs low."
weights = { cost = 0.1, latency = 0.1, quality = 0.8 }
on_budget_low = "cost-optimized"
"#;
    crate::limits::config(mock, "max_budget_usd = 1.0", &format!("rpm = 1\n{rest}"))
}

const BETA: (&str, &str) = ("authorization", "Bearer team-beta-key");

async fn route(app: &TestApp, headers: &[(&str, &str)]) -> Value {
    let body = json!({"profile": "team", "messages": [{"role": "user", "content": "Hello"}]});
    let response = app.post("/v1/route", &body, headers).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

#[actix_web::test]
async fn the_route_endpoint_decides_under_the_cheaper_profile_once_a_budget_runs_low() {
    let mock = MockUpstream::start().unwrap();
    let app = spawn_app(&config(&mock)).await;

    // Under 80% of the budget: the profile asked for, decided by the router.
    let fresh = route(&app, &[ALPHA]).await;
    assert_eq!(fresh["profile"], "team", "{fresh}");
    assert_ne!(fresh["decided_by"], "budget_low", "{fresh}");
    assert!(fresh.get("budget_low").is_none(), "{fresh}");

    // 90% spent: the cheaper profile, and the answer says why.
    app.limits
        .add_spend(&Subject::Key("alpha".into()), 0.9)
        .await;
    let low = route(&app, &[ALPHA]).await;
    assert_eq!(low["profile"], "cost-optimized", "{low}");
    assert_eq!(low["decided_by"], "budget_low", "{low}");
    assert_eq!(low["budget_low"]["from"], "team");
    assert_eq!(low["budget_low"]["to"], "cost-optimized");
    assert_eq!(low["budget_low"]["low_share"], 0.8);
    let used = low["budget_low"]["used_share"].as_f64().unwrap();
    assert!((used - 0.9).abs() < 1e-9, "{low}");
    assert_eq!(
        low["layers"].as_array().unwrap().len(),
        5,
        "the trace is whole"
    );

    // A key without a budget keeps its profile, unless its project's budget runs low.
    assert_eq!(route(&app, &[BETA]).await["profile"], "team");
    assert_eq!(
        route(&app, &[BETA, ("x-project", "apollo")]).await["profile"],
        "team"
    );
    app.limits
        .add_spend(&Subject::Project("apollo".into()), 0.85)
        .await;
    let project = route(&app, &[BETA, ("x-project", "apollo")]).await;
    assert_eq!(project["profile"], "cost-optimized", "{project}");
    assert_eq!(project["decided_by"], "budget_low", "{project}");

    // What /v1/route said is what the proxy does.
    let response = app
        .post(
            "/v1/chat/completions",
            &chat_body("auto", false),
            &[ALPHA, ("x-route-profile", "team")],
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-route-profile"], "cost-optimized");
}

#[actix_web::test]
async fn the_stats_count_requests_refused_by_budgets_and_rate_limits_and_those_rerouted() {
    let mock = MockUpstream::start().unwrap();
    let app = spawn_app(&config(&mock)).await;
    app.limits.clock.set(T0 + 1_000);
    let call = |model: &'static str, headers: Vec<(&'static str, &'static str)>| {
        let app = &app;
        async move {
            let response = app
                .post("/v1/chat/completions", &chat_body(model, false), &headers)
                .await;
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap();
            (status, body["error"]["code"].clone())
        }
    };

    // Beta: one request a minute; the second is refused.
    assert_eq!(call("gpt-4o", vec![BETA]).await.0, 200);
    let limited = call("gpt-4o", vec![BETA]).await;
    assert_eq!(limited, (429, json!("rate_limit_exceeded")));
    // Alpha past 80% of its budget: routed under the cheaper profile; then spent: refused.
    app.limits
        .add_spend(&Subject::Key("alpha".into()), 0.9)
        .await;
    let routed = call("auto", vec![ALPHA, ("x-route-profile", "team")]).await;
    assert_eq!(routed.0, 200, "{routed:?}");
    app.limits
        .add_spend(&Subject::Key("alpha".into()), 0.2)
        .await;
    let refused = call("gpt-4o", vec![ALPHA]).await;
    assert_eq!(refused, (429, json!("insufficient_quota")));
    app.records(4).await;

    let stats: Value = app.get("/v1/stats").await.json().await.unwrap();
    assert_eq!(stats["total_requests"], 4, "{stats}");
    assert_eq!(stats["failed_requests"], 2, "{stats}");
    assert_eq!(stats["budget_refused_requests"], 1, "{stats}");
    assert_eq!(stats["rate_limited_requests"], 1, "{stats}");
    assert_eq!(stats["budget_rerouted_requests"], 1, "{stats}");
    assert_eq!(stats["by_key_label"]["beta"]["requests"], 2, "{stats}");
    assert_eq!(series_sum(&app, "budget_refused").await, 1);
    assert_eq!(series_sum(&app, "rate_limited").await, 1);
    assert_eq!(series_sum(&app, "budget_rerouted").await, 1);
}

/// A member of an object schema, also when flattened members made it an `allOf`.
fn property<'a>(schema: &'a Value, name: &str) -> Option<&'a Value> {
    let parts = schema["allOf"].as_array().into_iter().flatten();
    std::iter::once(schema)
        .chain(parts)
        .find_map(|part| part["properties"].get(name))
}

#[actix_web::test]
async fn the_document_describes_the_budget_low_switch_and_the_refusal_counts() {
    let app = spawn_app("providers = []").await;
    let doc: Value = app.get("/openapi.json").await.json().await.unwrap();
    let schemas = &doc["components"]["schemas"];
    let switch = property(&schemas["RouteAnswer"], "budget_low").unwrap();
    assert!(
        switch
            .to_string()
            .contains("#/components/schemas/BudgetLow"),
        "{switch}"
    );
    for field in ["from", "to", "used_share", "low_share"] {
        assert!(property(&schemas["BudgetLow"], field).is_some(), "{field}");
    }
    let decided = &schemas["DecidedBy"]["enum"];
    assert!(
        decided.as_array().unwrap().contains(&json!("budget_low")),
        "{decided}"
    );
    for field in [
        "budget_refused_requests",
        "rate_limited_requests",
        "budget_rerouted_requests",
    ] {
        assert!(property(&schemas["Stats"], field).is_some(), "{field}");
    }
}
