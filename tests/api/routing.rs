//! The router through the real gateway: each shipped profile's choice computed by hand from
//! the cards, the five-layer trace, requirements read from the request, `model: "auto"` on the
//! proxy routes, failover and circuit breakers, cards from the config, and bad routing requests.

use serde_json::{json, Value};

use crate::helpers::{spawn_app, MockUpstream, TestApp};

/// Four local models with cards of our own, so that every figure the router uses is known.
/// Prompt "Hello" is 2 tokens; with no max_tokens, 500 output tokens are assumed.
///
/// | model   | in $/M | out $/M | context | caps                  | ttft ms | tok/s | general coding reasoning long |
/// |---------|--------|---------|---------|-----------------------|---------|-------|-------------------------------|
/// | m-cheap | 0.1    | 0.4     | 32768   | streaming             | 600     | 50    | .4 .3 .3 .2                   |
/// | m-fast  | 0.5    | 2       | 65536   | streaming             | 150     | 250   | .5 .4 .4 .3                   |
/// | m-coder | 1      | 4       | 131072  | streaming tools       | 700     | 80    | .7 .9 .6 .5                   |
/// | m-big   | 5      | 25      | 1000000 | streaming tools vision| 1800    | 40    | .95 .85 .95 .9                |
const CARDS: &str = r#"
[[models]]
id = "m-cheap"
provider_type = "local"
input_per_mtok = 0.1
output_per_mtok = 0.4
context_window = 32768
max_output_tokens = 8192
capabilities = ["streaming"]
latency = { ttft_ms = 600, output_tokens_per_s = 50 }
quality = { general = 0.4, coding = 0.3, reasoning = 0.3, long_context = 0.2 }

[[models]]
id = "m-fast"
provider_type = "local"
input_per_mtok = 0.5
output_per_mtok = 2.0
context_window = 65536
max_output_tokens = 8192
capabilities = ["streaming"]
latency = { ttft_ms = 150, output_tokens_per_s = 250 }
quality = { general = 0.5, coding = 0.4, reasoning = 0.4, long_context = 0.3 }

[[models]]
id = "m-coder"
provider_type = "local"
input_per_mtok = 1.0
output_per_mtok = 4.0
context_window = 131072
max_output_tokens = 16384
capabilities = ["streaming", "tools"]
latency = { ttft_ms = 700, output_tokens_per_s = 80 }
quality = { general = 0.7, coding = 0.9, reasoning = 0.6, long_context = 0.5 }

[[models]]
id = "m-big"
provider_type = "local"
input_per_mtok = 5.0
output_per_mtok = 25.0
context_window = 1000000
max_output_tokens = 32768
capabilities = ["streaming", "tools", "vision"]
latency = { ttft_ms = 1800, output_tokens_per_s = 40 }
quality = { general = 0.95, coding = 0.85, reasoning = 0.95, long_context = 0.9 }
"#;

const MODELS: [&str; 4] = ["m-cheap", "m-fast", "m-coder", "m-big"];

pub(crate) fn lab_config(mocks: &[&MockUpstream], extra: &str) -> String {
    let mut config = String::from(CARDS);
    for (i, mock) in mocks.iter().enumerate() {
        config.push_str(&format!(
            "\n[[providers]]\nid = \"lab{i}\"\nprovider_type = \"local\"\nendpoint = \"{}\"\n",
            mock.url()
        ));
    }
    config.push_str(extra);
    config
}

/// Breakers that open after two failures in a row and stay open for ten minutes.
pub(crate) const OPENS_AFTER_TWO: &str = "\n[routing.breaker]\nconsecutive_failures = 2\nerror_rate = 0.5\nmin_requests = 20\nwindow_ms = 60000\ncooldown_ms = 600000\n";

pub(crate) fn lab_mock() -> MockUpstream {
    let mock = MockUpstream::start().unwrap();
    mock.set_models(&MODELS);
    mock
}

/// Waits until local discovery has the models (GET /v1/models asks the servers).
pub(crate) async fn discovered(app: &TestApp) {
    let list: Value = app.get("/v1/models").await.json().await.unwrap();
    assert!(
        list["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["id"] == "m-big"),
        "{list}"
    );
}

async fn route(app: &TestApp, body: Value) -> (u16, Value) {
    let response = app.post("/v1/route", &body, &[]).await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// The chat requests a mock received (not its model listings).
pub(crate) fn chats(mock: &MockUpstream) -> usize {
    mock.requests()
        .iter()
        .filter(|r| r.path == "/v1/chat/completions")
        .count()
}

pub(crate) fn hello() -> Value {
    json!([{"role": "user", "content": "Hello"}])
}

#[actix_rt::test]
async fn each_shipped_profile_picks_the_model_its_weights_give_by_hand() {
    let mock = lab_mock();
    let app = spawn_app(&lab_config(&[&mock], "")).await;
    discovered(&app).await;
    // By hand, per candidate: cost = (2·in + 500·out)/1e6 USD; latency = ttft + 500/tps·1000 ms.
    //   m-cheap 200.2e-6 USD 10600 ms; m-fast 1001e-6 2150 ms; m-coder 2002e-6 6950 ms;
    //   m-big 12510e-6 14300 ms.
    // Each is normalised on a log scale over the candidates (best 1, worst 0):
    //   n(x) = 1 - ln(x/min)/ln(max/min); the total is Σ weight/Σweights · n + quality part.
    // E.g. balanced: m-fast cost n = 1 - ln(1001/200.2)/ln(12510/200.2) = 0.6111, latency 1,
    //   quality .5 → (0.6111 + 1 + 0.5)/3 = 0.7037.
    for (profile, winner, score, runner_up) in [
        ("balanced", "m-fast", 0.7036, "m-cheap"),
        ("cost-optimized", "m-cheap", 0.7958, "m-fast"),
        ("quality-first", "m-big", 0.855, "m-coder"),
        // max_ttft_ms 2000 keeps all four here (m-big's 1800 is under it).
        ("low-latency", "m-fast", 0.9111, "m-coder"),
        // Requires tools: m-coder and m-big only, scored by coding quality.
        ("coding", "m-coder", 0.94, "m-big"),
    ] {
        let (status, answer) = route(&app, json!({"profile": profile, "messages": hello()})).await;
        assert_eq!(status, 200, "{profile}: {answer}");
        assert_eq!(answer["model"], winner, "{profile}: {answer}");
        assert_eq!(answer["provider"], "lab0");
        let top = answer["scores"][0]["total"].as_f64().unwrap();
        assert!((top - score).abs() < 1e-3, "{profile}: {top} vs {score}");
        assert_eq!(answer["scores"][1]["model"], runner_up, "{profile}");
    }
    // long-context: min_context 200000 leaves m-big alone: 0.3·1 + 0.1·1 + 0.6·0.9 = 0.94.
    let (_, answer) = route(
        &app,
        json!({"profile": "long-context", "messages": hello()}),
    )
    .await;
    assert_eq!(answer["model"], "m-big");
    assert!((answer["scores"][0]["total"].as_f64().unwrap() - 0.94).abs() < 1e-3);
    let layer3 = &answer["layers"][2];
    assert_eq!(layer3["dropped"].as_array().unwrap().len(), 3, "{layer3}");
    assert!(layer3["dropped"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("minimum context"));
}

#[actix_rt::test]
async fn local_only_drops_every_cloud_model_and_scores_the_local_ones() {
    let mock = lab_mock();
    let extra = r#"
[[providers]]
id = "openai"
provider_type = "openai"
api_key = "sk-test"
endpoint = "http://127.0.0.1:9"
"#;
    let app = spawn_app(&lab_config(&[&mock], extra)).await;
    discovered(&app).await;
    // Cost weight 0: 0.5·latency + 0.5·quality; m-fast: 0.5·1 + 0.5·0.5 = 0.75.
    let (status, answer) = route(&app, json!({"profile": "local-only", "messages": hello()})).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["model"], "m-fast");
    assert!((answer["scores"][0]["total"].as_f64().unwrap() - 0.75).abs() < 1e-3);
    let layer3 = &answer["layers"][2];
    let dropped = layer3["dropped"].as_array().unwrap();
    assert!(dropped.len() > 10, "every cloud card is dropped: {layer3}");
    assert!(dropped.iter().all(|d| d["provider"] == "openai"
        && d["reason"]
            .as_str()
            .unwrap()
            .contains("allows only providers local")));
}

#[actix_rt::test]
async fn the_trace_shows_five_layers_with_entries_drops_scores_and_a_failover_chain() {
    let (a, b) = (lab_mock(), lab_mock());
    let app = spawn_app(&lab_config(&[&a, &b], "")).await;
    discovered(&app).await;
    let (status, answer) = route(
        &app,
        json!({"profile": "balanced", "messages": hello(),
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let layers = answer["layers"].as_array().unwrap();
    let names: Vec<&str> = layers.iter().map(|l| l["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "inventory",
            "capabilities and context",
            "policy and health",
            "scoring",
            "ranking"
        ]
    );
    assert_eq!(layers[0]["entered"].as_array().unwrap().len(), 8);
    // Tools: m-cheap and m-fast are dropped at both providers, with the capability named.
    let dropped = layers[1]["dropped"].as_array().unwrap();
    assert_eq!(dropped.len(), 4);
    assert!(dropped
        .iter()
        .all(|d| d["reason"].as_str().unwrap().contains("tools")));
    for (i, layer) in layers.iter().enumerate() {
        let entered = layer["entered"].as_array().unwrap().len();
        let gone = layer["dropped"].as_array().unwrap().len();
        if i < 4 {
            assert_eq!(
                entered - gone,
                layer["kept"].as_u64().unwrap() as usize,
                "{layer}"
            );
        }
    }
    let score = &answer["scores"][0];
    for part in ["cost", "latency", "quality"] {
        assert_eq!(score[part]["basis"], "prior", "{score}");
        assert!(score[part]["weight"].as_f64().unwrap() > 0.0);
    }
    // The failover chain spreads over providers: the same model at the other server next.
    assert_eq!(answer["needs"]["capabilities"], json!(["tools"]));
    let primary = (answer["provider"].clone(), answer["model"].clone());
    assert_eq!(primary.0, "lab0");
    assert_eq!(answer["failover"][0]["provider"], "lab1");
    assert_eq!(answer["failover"][0]["model"], primary.1);
}

#[actix_rt::test]
async fn requirements_are_read_from_the_request_itself() {
    let mock = lab_mock();
    let app = spawn_app(&lab_config(&[&mock], "")).await;
    discovered(&app).await;
    // An image: only m-big sees.
    let (_, answer) = route(
        &app,
        json!({"profile": "cost-optimized", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}]}),
    )
    .await;
    assert_eq!(answer["model"], "m-big", "{answer}");
    assert!(answer["layers"][1]["dropped"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("vision"));
    // A prompt of about 40,000 tokens is too long for m-cheap's 32,768.
    let long = "word ".repeat(32_000);
    let (_, answer) = route(
        &app,
        json!({"profile": "cost-optimized",
        "messages": [{"role": "user", "content": long}]}),
    )
    .await;
    let dropped = answer["layers"][1]["dropped"].as_array().unwrap();
    assert_eq!(dropped.len(), 1, "{dropped:?}");
    assert_eq!(dropped[0]["model"], "m-cheap");
    assert!(dropped[0]["reason"]
        .as_str()
        .unwrap()
        .contains("context window"));
    assert_eq!(answer["model"], "m-fast");
    // Explicit requirements add to what the request shows.
    let (_, answer) = route(
        &app,
        json!({"profile": "cost-optimized",
        "requirements": {"capabilities": ["tools"], "min_context": 100000}, "messages": hello()}),
    )
    .await;
    assert_eq!(answer["model"], "m-coder", "{answer}");
    // Nothing fits: 400 naming the layers' reasons.
    let (status, answer) = route(
        &app,
        json!({"profile": "balanced",
        "requirements": {"capabilities": ["pdf"]}, "messages": hello()}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(answer["error"]["code"], "no_route");
    assert!(answer["error"]["message"].as_str().unwrap().contains("pdf"));
}

#[actix_rt::test]
async fn model_auto_and_the_profile_header_go_through_the_router_and_are_recorded() {
    let mock = lab_mock();
    let app = spawn_app(&lab_config(&[&mock], "")).await;
    discovered(&app).await;
    let response = app
        .post(
            "/v1/chat/completions",
            &json!({"model": "auto", "messages": hello()}),
            &[("x-route-profile", "quality-first")],
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-route-profile"], "quality-first");
    assert_eq!(response.headers()["x-route-model"], "m-big");
    let _ = response.bytes().await;
    assert_eq!(mock.last_request().unwrap().json()["model"], "m-big");
    // No header: the default profile (balanced).
    let response = app
        .post(
            "/v1/chat/completions",
            &json!({"model": "auto", "messages": hello()}),
            &[],
        )
        .await;
    assert_eq!(response.headers()["x-route-profile"], "balanced");
    assert_eq!(response.headers()["x-route-model"], "m-fast");
    let _ = response.bytes().await;
    // An explicit model is not routed.
    let response = app
        .post(
            "/v1/chat/completions",
            &json!({"model": "m-cheap", "messages": hello()}),
            &[],
        )
        .await;
    assert!(response.headers().get("x-route-profile").is_none());
    let _ = response.bytes().await;
    let records = app.records(3).await;
    let by_model = |m: &str| {
        records
            .iter()
            .find(|r| r["model_used"] == m)
            .unwrap()
            .clone()
    };
    assert_eq!(by_model("m-big")["route_profile"], "quality-first");
    assert_eq!(by_model("m-big")["route_rank"], 0);
    assert_eq!(by_model("m-fast")["route_profile"], "balanced");
    assert!(by_model("m-cheap")["route_rank"].is_null());
}

#[actix_rt::test]
async fn one_provider_down_the_request_is_mitigated_and_every_provider_down_is_502() {
    let (a, b) = (lab_mock(), lab_mock());
    let app = spawn_app(&lab_config(&[&a, &b], "")).await;
    discovered(&app).await;
    a.set_failing(Some(503));
    let response = app
        .post(
            "/v1/chat/completions",
            &json!({"model": "auto", "messages": hello()}),
            &[],
        )
        .await;
    assert_eq!(response.status(), 200);
    let _ = response.bytes().await;
    let records = app.records(1).await;
    assert_eq!(records[0]["outcome"], "mitigated");
    assert_eq!(records[0]["provider_id"], "lab1");
    assert_eq!(records[0]["route_rank"], 1);
    let errors: Value = app.get("/v1/errors").await.json().await.unwrap();
    assert_eq!(errors["errors"][0]["provider"], "lab0", "{errors}");
    assert_eq!(errors["errors"][0]["impact"], "mitigated");

    // Every provider down (nothing listens at either): 502, customer-impacting.
    let down = r#"
[[providers]]
id = "east"
provider_type = "openai"
api_key = "sk-test"
endpoint = "http://127.0.0.1:9"

[[providers]]
id = "west"
provider_type = "openai"
api_key = "sk-test"
endpoint = "http://127.0.0.1:9"
"#;
    let app = spawn_app(down).await;
    let response = app
        .post(
            "/v1/chat/completions",
            &json!({"model": "gpt-4o", "messages": hello()}),
            &[],
        )
        .await;
    assert_eq!(response.status(), 502);
    let body: Value = response.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("east") && message.contains("west"),
        "{message}"
    );
    app.records(1).await;
    let errors: Value = app
        .get("/v1/errors?impact=customer_impacting")
        .await
        .json()
        .await
        .unwrap();
    let listed = errors["errors"].as_array().unwrap();
    assert_eq!(listed.len(), 2, "{errors}");
    assert!(listed.iter().all(|e| e["impact"] == "customer_impacting"));
}

#[actix_rt::test]
async fn a_breaker_opens_after_failures_then_the_provider_is_skipped_and_shown_open() {
    let (a, b) = (lab_mock(), lab_mock());
    let app = spawn_app(&lab_config(&[&a, &b], OPENS_AFTER_TWO)).await;
    discovered(&app).await;
    a.set_failing(Some(500));
    // An explicit model served by both: lab0 first, failing over to lab1.
    for _ in 0..2 {
        let response = app
            .post(
                "/v1/chat/completions",
                &json!({"model": "m-fast", "messages": hello()}),
                &[],
            )
            .await;
        assert_eq!(response.status(), 200);
        let _ = response.bytes().await;
    }
    let tried = chats(&a);
    assert_eq!(tried, 2);
    // Open: the next requests go straight to lab1, routed or explicit.
    for model in ["m-fast", "auto"] {
        let response = app
            .post(
                "/v1/chat/completions",
                &json!({"model": model, "messages": hello()}),
                &[],
            )
            .await;
        assert_eq!(response.status(), 200);
        let _ = response.bytes().await;
    }
    assert_eq!(chats(&a), tried, "no attempt at an open breaker");
    let providers: Value = app.get("/v1/providers").await.json().await.unwrap();
    let lab0 = providers
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "lab0")
        .unwrap();
    assert_eq!(lab0["breaker"]["state"], "open", "{lab0}");
    assert_eq!(lab0["breaker"]["times_opened"], 1);
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("llm_gateway_breaker_state{model=\"\",provider=\"lab0\"} 2"),
        "{metrics}"
    );
    let catalog: Value = app
        .get("/v1/catalog?served=true")
        .await
        .json()
        .await
        .unwrap();
    let fast = catalog["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == "m-fast")
        .unwrap();
    let serving = fast["serving"].as_array().unwrap();
    assert_eq!(serving.len(), 2);
    assert_eq!(serving[0]["breaker"], "open");
    assert_eq!(serving[1]["breaker"], "closed");
    // Both open: 503 with Retry-After, at once, nothing sent.
    b.set_failing(Some(500));
    for _ in 0..2 {
        let _ = app
            .post(
                "/v1/chat/completions",
                &json!({"model": "m-fast", "messages": hello()}),
                &[],
            )
            .await
            .bytes()
            .await;
    }
    let sent = chats(&b);
    let response = app
        .post(
            "/v1/chat/completions",
            &json!({"model": "m-fast", "messages": hello()}),
            &[],
        )
        .await;
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "circuit_open");
    assert_eq!(chats(&b), sent);
}

#[actix_rt::test]
async fn a_card_is_overridden_from_the_config_and_bad_cards_stop_start_up() {
    let mock = lab_mock();
    let extra = r#"
[[providers]]
id = "openai"
provider_type = "openai"
api_key = "sk-test"
endpoint = "http://127.0.0.1:9"

[[models]]
id = "gpt-4o"
context_window = 64000
source = "our contract"
"#;
    let app = spawn_app(&lab_config(&[&mock], extra)).await;
    let catalog: Value = app.get("/v1/catalog").await.json().await.unwrap();
    let card = catalog["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == "gpt-4o")
        .unwrap();
    assert_eq!(card["context_window"], 64000);
    assert_eq!(card["origin"], "config");
    assert_eq!(card["sources"]["limits"], "our contract");
    assert!(
        card["input_per_mtok"].as_f64().unwrap() > 0.0,
        "prices kept"
    );
    let lab = catalog["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == "m-coder")
        .unwrap();
    assert_eq!(lab["capabilities"], json!(["tools", "streaming"]));
    // The router uses the override: 70k tokens no longer fit gpt-4o.
    let (_, answer) = route(
        &app,
        json!({"profile": "balanced", "requirements": {"prompt_tokens": 70000},
        "messages": hello()}),
    )
    .await;
    let dropped = answer["layers"][1]["dropped"].as_array().unwrap();
    assert!(dropped.iter().any(
        |d| d["model"] == "gpt-4o" && d["reason"].as_str().unwrap().contains("window is 64000")
    ));

    for (config, key) in [
        ("[[models]]\nid = \"new-model\"\nprovider_type = \"openai\"\n", "models[0].input_per_mtok"),
        ("[[models]]\nid = \"gpt-4o\"\nquality = { general = 2, coding = 0, reasoning = 0, long_context = 0 }\n", "models[0].quality.general"),
        ("[routing]\ndefault_profile = \"nope\"\n", "routing.default_profile"),
        ("[routing.profiles.x]\ndescription = \"x\"\nweights = { cost = 0, latency = 0, quality = 0 }\n", "routing.profiles.x.weights"),
    ] {
        let err = crate::helpers::load_settings(config).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains(key), "{key}: {err}");
    }
}

#[actix_rt::test]
async fn bad_routing_requests_are_answered_in_the_callers_error_shape() {
    let mock = lab_mock();
    let app = spawn_app(&lab_config(&[&mock], "")).await;
    let (status, answer) = route(&app, json!({"profile": "nope", "messages": hello()})).await;
    assert_eq!(status, 400);
    assert_eq!(answer["error"]["code"], "unknown_profile");
    assert!(answer["error"]["message"]
        .as_str()
        .unwrap()
        .contains("balanced"));
    let response = app
        .post(
            "/v1/route",
            &json!({"profile": "nope"}),
            &[("anthropic-version", "2023-06-01")],
        )
        .await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "invalid_request_error");
    for bad in [
        json!([1, 2]),
        json!({"requirements": {"capabilities": ["telepathy"]}}),
        json!({"requirements": {"nope": 1}}),
        json!({"profile": 7}),
        json!({"api": "cobol"}),
    ] {
        let (status, answer) = route(&app, bad.clone()).await;
        assert_eq!(status, 400, "{bad}: {answer}");
        assert!(answer["error"]["message"].is_string());
    }
    let response = app
        .client
        .post(format!("{}/v1/route", app.address))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    // On the proxy routes: an unknown profile header, in each API's shape.
    let response = app
        .post(
            "/v1/messages",
            &json!({"model": "auto", "max_tokens": 5, "messages": hello()}),
            &[("x-route-profile", "nope")],
        )
        .await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], "error");
    let response = app
        .post(
            "/v1/chat/completions",
            &json!({"model": "auto", "messages": hello()}),
            &[("x-route-profile", "nope")],
        )
        .await;
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unknown_profile");
    // GET /v1/profiles lists the shipped ones, the default marked.
    let profiles: Value = app.get("/v1/profiles").await.json().await.unwrap();
    let ids: Vec<&str> = profiles
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    for id in [
        "balanced",
        "cost-optimized",
        "quality-first",
        "low-latency",
        "coding",
        "long-context",
        "local-only",
    ] {
        assert!(ids.contains(&id), "{id}");
    }
    assert!(profiles
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["id"] == "balanced" && p["default"] == true));
}

#[actix_rt::test]
async fn a_conversation_keeps_its_provider_moves_when_its_breaker_opens_and_then_stays() {
    let (a, b) = (lab_mock(), lab_mock());
    // One failure opens a breaker; a millisecond later it lets a probe through.
    let breaker = "\n[routing.breaker]\nconsecutive_failures = 1\nerror_rate = 0.5\nmin_requests = 20\nwindow_ms = 60000\ncooldown_ms = 1\n";
    let app = spawn_app(&lab_config(&[&a, &b], breaker)).await;
    discovered(&app).await;
    let ask = |session: &'static str| {
        let app = &app;
        async move {
            let response = app
                .post(
                    "/v1/chat/completions",
                    &json!({"model": "auto", "messages": hello()}),
                    &[("x-session-id", session)],
                )
                .await;
            assert_eq!(response.status(), 200);
            let _ = response.bytes().await;
        }
    };
    // lab0 and lab1 are alike: the first conversation lands on lab0 and stays.
    for _ in 0..4 {
        ask("s1").await;
    }
    assert_eq!((chats(&a), chats(&b)), (4, 0));

    // lab0 fails: its breaker opens, the request fails over to lab1, the conversation with it.
    a.set_failing(Some(500));
    ask("s1").await;
    assert_eq!((chats(&a), chats(&b)), (5, 1));
    let records = app.records(5).await;
    assert_eq!(records[0]["outcome"], "mitigated", "{}", records[0]);
    ask("s1").await;
    assert_eq!(
        (chats(&a), chats(&b)),
        (5, 2),
        "straight to lab1: no try at lab0"
    );

    // lab0 recovers; a new conversation's probe closes its breaker and goes on there, while
    // the first stays where its cache is warm.
    a.set_failing(None);
    std::thread::sleep(std::time::Duration::from_millis(5));
    ask("s2").await;
    assert_eq!((chats(&a), chats(&b)), (6, 2));
    for _ in 0..3 {
        ask("s1").await;
    }
    assert_eq!((chats(&a), chats(&b)), (6, 5));
    ask("s2").await;
    assert_eq!((chats(&a), chats(&b)), (7, 5));

    // The trace says when affinity decided: /v1/route takes no session, so score decides.
    let (_, answer) = route(&app, json!({"messages": hello()})).await;
    assert_ne!(answer["decided_by"], "affinity");
}
