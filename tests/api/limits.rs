//! Budgets and rate limits per virtual key and project: each trips at the right request, in
//! the caller's error shape, with nothing forwarded, and resets with its window on the
//! limiter's clock (set by the test, never slept on); spend survives a restart; concurrent
//! requests overshoot a budget by at most what is in flight; free local models pass.

use crate::helpers::*;
use serde_json::{json, Value};

/// 2026-12-03T10:00:00Z, a Thursday: the tests' clock starts here.
pub(crate) const T0: i64 = 1_796_292_000_000;
const MINUTE: i64 = 60_000;
const DAY: i64 = 86_400_000;

pub(crate) fn config(mock: &MockUpstream, limits: &str, extra: &str) -> String {
    format!(
        r#"
[[providers]]
id = "openai"
provider_type = "openai"
api_key = "sk-org-openai"
endpoint = "{url}"
models = ["gpt-4o-mini"]

[[providers]]
id = "anthropic"
provider_type = "anthropic"
api_key = "sk-ant-org"
endpoint = "{url}"

[[providers]]
id = "ollama"
provider_type = "local"
endpoint = "{url}"
models = ["house-model:7b"]

[key_map.team-alpha-key]
label = "alpha"
local_key = "ollama-alpha"
{limits}

[key_map.team-beta-key]
label = "beta"
{extra}
"#,
        url = mock.url()
    )
}

pub(crate) const ALPHA: (&str, &str) = ("authorization", "Bearer team-alpha-key");

/// Waits until no admitted request of the limiter is still in flight (its cost settled) and
/// no call to the shared counters is still on its way.
pub(crate) async fn settled(app: &TestApp) {
    for _ in 0..500 {
        let busy = app.limits.views().iter().any(|v| v.in_flight > 0)
            || app.limits.store_calls_pending() > 0;
        if !busy {
            return;
        }
        actix_rt::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    panic!("requests stayed in flight");
}

/// `GET /v1/keys` (loopback: no admin token), and the entry of the key labelled `label`.
pub(crate) async fn key_limits(app: &TestApp, label: &str) -> (Value, Value) {
    let keys: Value = app.get("/v1/keys").await.json().await.unwrap();
    let entry = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["label"] == label)
        .cloned()
        .unwrap();
    (keys, entry)
}

pub(crate) async fn chat(
    app: &TestApp,
    model: &str,
    headers: &[(&str, &str)],
) -> (u16, Option<String>, Value) {
    let response = app
        .post("/v1/chat/completions", &chat_body(model, false), headers)
        .await;
    let status = response.status().as_u16();
    let retry = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    let body: Value = response.json().await.unwrap();
    settled(app).await;
    (status, retry, body)
}

#[actix_web::test]
async fn an_rpm_limit_refuses_the_request_past_it_and_resets_with_the_minute() {
    let mock = MockUpstream::start().unwrap();
    let app = spawn_app(&config(&mock, "rpm = 3", "")).await;
    app.limits.clock.set(T0 + 15_000);

    for _ in 0..3 {
        assert_eq!(chat(&app, "gpt-4o", &[ALPHA]).await.0, 200);
    }
    let forwarded = mock.requests().len();
    let (status, retry, body) = chat(&app, "gpt-4o", &[ALPHA]).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    assert_eq!(body["error"]["type"], "requests");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("key `alpha`") && message.contains("3 requests per minute (rpm)"),
        "{message}"
    );
    assert!(message.contains("2026-12-03T10:01:00Z"), "{message}");
    assert_eq!(retry.as_deref(), Some("45"));
    assert_eq!(mock.requests().len(), forwarded, "nothing was forwarded");
    // Another key is not limited by alpha's rpm.
    assert_eq!(
        chat(&app, "gpt-4o", &[("authorization", "Bearer team-beta-key")])
            .await
            .0,
        200
    );

    // The next minute starts again.
    app.limits.clock.set(T0 + MINUTE);
    assert_eq!(chat(&app, "gpt-4o", &[ALPHA]).await.0, 200);
}

#[actix_web::test]
async fn a_tpm_limit_counts_the_tokens_of_the_minute_and_resets() {
    let mock = MockUpstream::start().unwrap();
    let app = spawn_app(&config(&mock, "tpm = 20", "")).await;
    app.limits.clock.set(T0);

    // The first request is under the limit; its tokens (the mock's: prompt ≈ body/4, and 3
    // out) take the minute past 20.
    assert_eq!(chat(&app, "gpt-4o", &[ALPHA]).await.0, 200);
    let view = app
        .limits
        .views()
        .into_iter()
        .find(|v| v.id == "alpha")
        .unwrap();
    let record = &app.records(1).await[0];
    let tokens =
        record["input_tokens"].as_u64().unwrap() + record["output_tokens"].as_u64().unwrap();
    assert_eq!(
        view.tokens_this_minute, tokens,
        "reconciled with the real tokens"
    );
    assert!(tokens >= 20, "{tokens}");

    let (status, retry, body) = chat(&app, "gpt-4o", &[ALPHA]).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["type"], "tokens");
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    assert_eq!(retry.as_deref(), Some("60"));

    app.limits.clock.advance(MINUTE);
    assert_eq!(chat(&app, "gpt-4o", &[ALPHA]).await.0, 200);
}

/// The cost of one `chat_body("gpt-4o")` call through the mock, as the ledger prices it.
pub(crate) async fn one_call_cost(mock: &MockUpstream) -> f64 {
    let app = spawn_app(&config(mock, "", "")).await;
    assert_eq!(chat(&app, "gpt-4o", &[ALPHA]).await.0, 200);
    app.records(1).await[0]["cost_usd"].as_f64().unwrap()
}

#[actix_web::test]
async fn a_daily_budget_refuses_once_spent_and_starts_again_the_next_day() {
    let mock = MockUpstream::start().unwrap();
    let cost = one_call_cost(&mock).await;
    // Room for three calls: the fourth finds 3 × cost ≥ 2.5 × cost.
    let limits = format!("max_budget_usd = {}\nbudget_period = \"daily\"", cost * 2.5);
    let app = spawn_app(&config(&mock, &limits, "")).await;
    app.limits.clock.set(T0);

    for i in 0..3 {
        assert_eq!(chat(&app, "gpt-4o", &[ALPHA]).await.0, 200, "call {i}");
    }
    let forwarded = mock.requests().len();
    let (status, retry, body) = chat(&app, "gpt-4o", &[ALPHA]).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "insufficient_quota");
    assert_eq!(body["error"]["type"], "insufficient_quota");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("the budget of key `alpha` is spent"),
        "{message}"
    );
    assert!(
        message.contains("2026-12-04T00:00:00Z (daily budget)"),
        "{message}"
    );
    assert_eq!(
        retry.as_deref(),
        Some(&*(14 * 3600).to_string()),
        "seconds to midnight UTC"
    );
    assert_eq!(mock.requests().len(), forwarded, "nothing was forwarded");

    // The Anthropic endpoint is held to the same budget, in its own error shape.
    let response = app
        .post(
            "/v1/messages",
            &messages_body("claude-sonnet-4-20250514", false),
            &[ALPHA],
        )
        .await;
    assert_eq!(response.status(), 429);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "rate_limit_error");

    // GET /v1/keys (loopback: no admin token) shows the spend, never a token.
    let (keys, alpha) = key_limits(&app, "alpha").await;
    let spent = alpha["limits"]["budget"]["spent_usd"].as_f64().unwrap();
    // Shared counters (on PostgreSQL) count whole micro-USD.
    assert!((spent - 3.0 * cost).abs() < 1e-5, "{alpha}");
    assert_eq!(alpha["limits"]["budget"]["period"], "daily");
    assert!(
        !keys.to_string().contains("team-alpha-key"),
        "no token in {keys}"
    );

    // The next day the budget starts again.
    app.limits.clock.set(T0 + DAY);
    assert_eq!(chat(&app, "gpt-4o", &[ALPHA]).await.0, 200);
}

#[actix_web::test]
async fn a_restart_keeps_the_spend() {
    let mock = MockUpstream::start().unwrap();
    let cost = one_call_cost(&mock).await;
    let limits = format!("max_budget_usd = {}", cost * 1.5);
    let config = config(&mock, &limits, "");
    let first = spawn_app(&config).await;
    assert_eq!(chat(&first, "gpt-4o", &[ALPHA]).await.0, 200);
    assert_eq!(chat(&first, "gpt-4o", &[ALPHA]).await.0, 200);
    assert_eq!(chat(&first, "gpt-4o", &[ALPHA]).await.0, 429);
    first.records(3).await;

    // Another gateway on the same ledger (a restart) knows what was spent.
    let second = spawn_app_on(&config, Some(&first.db_url)).await;
    let (status, _, body) = chat(&second, "gpt-4o", &[ALPHA]).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "insufficient_quota");
    let me: Value = second
        .get_with("/v1/keys/self", &[ALPHA])
        .await
        .json()
        .await
        .unwrap();
    let spent = me["limits"]["budget"]["spent_usd"].as_f64().unwrap();
    assert!((spent - 2.0 * cost).abs() < 1e-5, "{me}");
}

#[actix_web::test]
async fn fifty_concurrent_requests_overshoot_a_nearly_spent_budget_by_at_most_what_was_in_flight() {
    let mock = MockUpstream::start().unwrap();
    let cost = one_call_cost(&mock).await;
    // After one call, half a call's worth is left.
    let limits = format!("max_budget_usd = {}", cost * 1.5);
    let app = spawn_app(&config(&mock, &limits, "")).await;
    assert_eq!(chat(&app, "gpt-4o", &[ALPHA]).await.0, 200);

    let slow = [ALPHA, ("x-mock-delay-ms", "200")];
    let body = chat_body("gpt-4o", false);
    let calls = (0..50).map(|_| app.post("/v1/chat/completions", &body, &slow));
    let statuses: Vec<u16> = futures_util::future::join_all(calls)
        .await
        .into_iter()
        .map(|r| r.status().as_u16())
        .collect();
    settled(&app).await;
    let admitted = statuses.iter().filter(|s| **s == 200).count();
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 429),
        "{statuses:?}"
    );
    // Each admitted request reserves its expected cost (the gateway's estimate of the prompt
    // and the typical output: about half of what the mock, which counts a token per 4 bytes
    // of the body, then bills), so with half a call left one or two fit; all 50 are in flight
    // together, and the spend ends over the budget by at most the calls that were.
    assert!((1..=2).contains(&admitted), "{statuses:?}");
    let spent = app.limits.views()[0].budget.as_ref().unwrap().spent_usd;
    let budget = cost * 1.5;
    let over = spent - budget;
    #[allow(clippy::print_stdout)]
    {
        println!("50 concurrent: {admitted} admitted, 50 - {admitted} refused; spent {spent:.6} of {budget:.6} USD: over by {over:.6}, in flight {:.6}", admitted as f64 * cost);
    }
    assert!(
        over <= admitted as f64 * cost + 1e-5,
        "over by more than was in flight"
    );
    // Every request has its record; the refused ones say why and cost nothing.
    let records = app.records(51).await;
    let refused: Vec<&Value> = records.iter().filter(|r| r["status"] == 429).collect();
    assert_eq!(refused.len(), 50 - admitted);
    assert!(
        refused
            .iter()
            .all(|r| r["error_kind"] == "insufficient_quota" && r["cost_usd"] == 0.0),
        "{:?}",
        refused[0]
    );
}

#[actix_web::test]
async fn free_local_models_pass_a_spent_budget_when_exempt() {
    let mock = MockUpstream::start().unwrap();
    let app = spawn_app(&config(&mock, "max_budget_usd = 0", "")).await;
    assert_eq!(chat(&app, "gpt-4o", &[ALPHA]).await.0, 429);
    assert_eq!(chat(&app, "house-model:7b", &[ALPHA]).await.0, 200);

    let strict = format!(
        "{}\n[limits]\nfree_models_exempt = false\n",
        config(&mock, "max_budget_usd = 0", "")
    );
    let app = spawn_app(&strict).await;
    let (status, _, body) = chat(&app, "house-model:7b", &[ALPHA]).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "insufficient_quota");
}

#[actix_web::test]
async fn a_model_outside_the_keys_list_is_refused_and_routing_keeps_to_the_list() {
    let mock = MockUpstream::start().unwrap();
    let app = spawn_app(&config(
        &mock,
        r#"models = ["gpt-4o-mini", "claude-*"]"#,
        "",
    ))
    .await;
    let (status, _, body) = chat(&app, "gpt-4o", &[ALPHA]).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "model_not_allowed");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("gpt-4o-mini, claude-*"));
    assert_eq!(chat(&app, "gpt-4o-mini", &[ALPHA]).await.0, 200);
    // The router's choice for alpha comes from the list.
    let (status, _, body) = chat(&app, "auto", &[ALPHA]).await;
    assert_eq!(status, 200, "{body}");
    let model = body["model"].as_str().unwrap();
    assert!(
        model == "gpt-4o-mini" || model.starts_with("claude-"),
        "{model}"
    );
}

#[actix_web::test]
async fn project_limits_hold_every_key_of_the_project_and_count_tokens_counts() {
    let mock = MockUpstream::start().unwrap();
    let extra = "\n[projects.apollo]\nrpm = 2\n";
    let app = spawn_app(&config(&mock, "", extra)).await;
    app.limits.clock.set(T0);
    let apollo = |key: &'static str| [("authorization", key), ("x-project", "apollo")];
    assert_eq!(
        chat(&app, "gpt-4o", &apollo("Bearer team-alpha-key"))
            .await
            .0,
        200
    );
    let response = app
        .post(
            "/v1/messages/count_tokens",
            &messages_body("claude-sonnet-4-20250514", false),
            &apollo("Bearer team-beta-key"),
        )
        .await;
    assert_eq!(response.status(), 200);
    settled(&app).await;
    let (status, _, body) = chat(&app, "gpt-4o", &apollo("Bearer team-beta-key")).await;
    assert_eq!(status, 429, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("project `apollo`"));
    // Outside the project, the keys are not limited.
    assert_eq!(chat(&app, "gpt-4o", &[ALPHA]).await.0, 200);
}

#[actix_web::test]
async fn a_key_reads_its_own_limits_and_nobody_elses() {
    let mock = MockUpstream::start().unwrap();
    let app = spawn_app(&config(
        &mock,
        "max_budget_usd = 10\nbudget_period = \"monthly\"\nrpm = 100",
        "",
    ))
    .await;
    let me: Value = app
        .get_with("/v1/keys/self", &[ALPHA])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["label"], "alpha");
    assert_eq!(me["limits"]["budget"]["limit_usd"], 10.0);
    assert_eq!(me["limits"]["rpm"], 100);
    let beta: Value = app
        .get_with("/v1/keys/self", &[("x-api-key", "team-beta-key")])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(beta["label"], "beta");
    assert!(beta["limits"].is_null(), "{beta}");
    let anonymous = app.get("/v1/keys/self").await;
    assert_eq!(anonymous.status(), 401);
    let body: Value = anonymous.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
}

#[test]
fn bad_limits_are_refused_naming_the_key() {
    for (limits, key, fragment) in [
        (
            "budget_period = \"daily\"",
            "budget_period",
            "without max_budget_usd",
        ),
        ("max_budget_usd = -1", "max_budget_usd", "0 or more"),
        ("rpm = 0", "rpm", "at least 1"),
        ("models = []", "models", "allow no model"),
        ("models = [\"gpt-[\"]", "models", "not a valid glob"),
        (
            "budget_period = \"hourly\"\nmax_budget_usd = 1",
            "budget_period",
            "hourly",
        ),
    ] {
        let config = format!("[key_map.tok]\nlabel = \"alpha\"\n{limits}\n");
        let err = load_settings(&config).expect_err(limits).to_string();
        assert!(
            err.contains(key) && err.contains(fragment),
            "{limits}: {err}"
        );
    }
    let err = load_settings("[projects.apollo]\nrpm = 0\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("projects.apollo.rpm"), "{err}");
    let err = load_settings("[projects.apollo]\nrmp = 5\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("rmp"), "{err}");
    let shared = "[key_map.a]\nlabel = \"team\"\nrpm = 5\n[key_map.b]\nlabel = \"team\"\n";
    let err = load_settings(shared).unwrap_err().to_string();
    assert!(err.contains("shares its label"), "{err}");
}

#[actix_web::test]
async fn a_key_past_its_budgets_low_share_is_routed_under_the_cheaper_profile() {
    let mock = MockUpstream::start().unwrap();
    let profile = r#"
[routing.profiles.team]
description = "Quality first, cheaper when the budget runs low."
weights = { cost = 0.1, latency = 0.1, quality = 0.8 }
on_budget_low = "cost-optimized"
"#;
    let app = spawn_app(&format!(
        "{}{profile}",
        config(&mock, "max_budget_usd = 1.0", "")
    ))
    .await;
    let routed = |key: &'static str| [("authorization", key), ("x-route-profile", "team")];
    // Under 80% of the budget: the profile asked for.
    assert_eq!(
        chat(&app, "auto", &routed("Bearer team-alpha-key")).await.0,
        200
    );
    // 90% spent: the cheaper profile.
    app.limits
        .add_spend(&llm_gateway::limits::Subject::Key("alpha".into()), 0.9)
        .await;
    let response = app
        .post(
            "/v1/chat/completions",
            &chat_body("auto", false),
            &routed("Bearer team-alpha-key"),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-route-profile"], "cost-optimized");
    response.bytes().await.unwrap();
    // A key without a budget keeps its profile.
    assert_eq!(
        chat(&app, "auto", &routed("Bearer team-beta-key")).await.0,
        200
    );

    let records = app.records(3).await; // most recent first
    let by = |r: &Value| (r["route_profile"].clone(), r["route_decided_by"].clone());
    assert_eq!(by(&records[2]).0, "team");
    assert_ne!(by(&records[2]).1, "budget_low");
    assert_eq!(
        by(&records[1]),
        (json!("cost-optimized"), json!("budget_low"))
    );
    assert_eq!(by(&records[0]).0, "team");
}

#[test]
fn on_budget_low_must_name_another_profile() {
    let config = r#"
[routing.profiles.team]
description = "x"
weights = { cost = 0.1, latency = 0.1, quality = 0.8 }
on_budget_low = "cheapest"
"#;
    let err = load_settings(config).unwrap_err().to_string();
    assert!(
        err.contains("routing.profiles.team.on_budget_low") && err.contains("cheapest"),
        "{err}"
    );
    let err = load_settings("[limits]\nbudget_low_share = 1.5\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("limits.budget_low_share"), "{err}");
}
