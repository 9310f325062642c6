//! A gateway reachable beyond loopback, tried as an attacker would: every admin and analytics
//! endpoint refused without the admin token, the provider-swap and `api_key_env` attacks
//! refused, and start-up refused where anyone could spend the providers' keys.

use serde_json::{json, Value};

use crate::helpers::*;

const TOKEN: &str = "adm-7c1f0e9b2a";

/// Every operation the OpenAPI document puts behind the admin gate, as (method, path),
/// with `{id}` filled in.
async fn gated_operations(app: &TestApp) -> Vec<(String, String)> {
    let doc: Value = app.get("/openapi.json").await.json().await.unwrap();
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let gated = operation["security"]
                .as_array()
                .is_some_and(|all| all.iter().any(|r| r.get("admin_token").is_some()));
            if gated {
                out.push((method.clone(), path.replace("{id}", "some-id")));
            }
        }
    }
    out
}

async fn call(app: &TestApp, method: &str, path: &str, token: Option<&str>) -> reqwest::Response {
    let url = format!("{}{path}", app.address);
    let mut request = match method {
        "get" => app.client.get(url),
        "delete" => app.client.delete(url),
        _ => app
            .client
            .post(url)
            .header("content-type", "application/json")
            .body(
                json!({"id": "probe", "provider_type": "local", "endpoint": "http://127.0.0.1:9"})
                    .to_string(),
            ),
    };
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    request.send().await.unwrap()
}

fn exposed_with_token(mock: &MockUpstream) -> String {
    format!(
        r#"
[server]
host = "0.0.0.0"
admin_token = "{TOKEN}"

[auth]
require_key = true

[key_map.team-key]
label = "Team"

[[providers]]
id = "openai"
provider_type = "openai"
api_key = "sk-openai-provider-key"
endpoint = "{}"
"#,
        mock.url()
    )
}

#[actix_web::test]
async fn every_admin_and_analytics_endpoint_needs_the_admin_token_on_an_exposed_gateway() {
    let mock = MockUpstream::start().unwrap();
    let app = spawn_app(&exposed_with_token(&mock)).await;
    let operations = gated_operations(&app).await;
    for expected in [
        "/v1/providers",
        "/v1/stats",
        "/v1/records",
        "/v1/records/some-id",
        "/v1/sources",
        "/v1/projects",
        "/v1/projects/some-id/records",
        "/metrics",
    ] {
        assert!(
            operations.iter().any(|(_, p)| p == expected),
            "{expected} is documented as gated: {operations:?}"
        );
    }

    for (method, path) in &operations {
        let without = call(&app, method, path, None).await;
        assert_eq!(without.status(), 401, "{method} {path} without a token");
        let body: Value = without.json().await.unwrap();
        assert!(body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("admin_token"));
        let wrong = call(&app, method, path, Some("adm-7c1f0e9b2b")).await;
        assert_eq!(wrong.status(), 401, "{method} {path} with a wrong token");
        let virtual_key = call(&app, method, path, Some("team-key")).await;
        assert_eq!(virtual_key.status(), 401, "{method} {path} with a team key");
    }
    for (method, path) in &operations {
        let with = call(&app, method, path, Some(TOKEN)).await;
        assert!(
            ![401, 403].contains(&with.status().as_u16()),
            "{method} {path} with the token: {}",
            with.status()
        );
    }
}

#[actix_web::test]
async fn an_exposed_gateway_without_an_admin_token_refuses_the_provider_swap() {
    let mock = MockUpstream::start().unwrap();
    let attacker = MockUpstream::start().unwrap();
    let config = format!(
        "[server]\nhost = \"0.0.0.0\"\n[[providers]]\nid = \"openai\"\nprovider_type = \"openai\"\nendpoint = \"{}\"\n",
        mock.url()
    );
    let app = spawn_app(&config).await;

    let delete = app
        .client
        .delete(format!("{}/v1/providers/openai", app.address))
        .send()
        .await
        .unwrap();
    let add = app
        .post(
            "/v1/providers",
            &json!({"id": "openai2", "provider_type": "openai", "endpoint": attacker.url(), "models": ["gpt-4o"]}),
            &[],
        )
        .await;
    let team_call = app
        .post(
            "/v1/chat/completions",
            &chat_body("gpt-4o", false),
            &[("authorization", "Bearer sk-team-own-key")],
        )
        .await;

    assert_eq!(delete.status(), 403);
    assert_eq!(add.status(), 403);
    let message: Value = add.json().await.unwrap();
    assert!(message["error"]["message"]
        .as_str()
        .unwrap()
        .contains("[server] admin_token"));
    assert_eq!(team_call.status(), 200);
    assert_eq!(
        mock.requests().len(),
        1,
        "the team's call went to its provider"
    );
    assert!(
        attacker.requests().is_empty(),
        "nothing reached the attacker"
    );
    for path in [
        "/v1/records",
        "/v1/stats",
        "/v1/projects",
        "/v1/sources",
        "/metrics",
        "/v1/providers",
    ] {
        assert_eq!(app.get(path).await.status(), 403, "{path}");
    }
}

#[actix_web::test]
async fn no_request_can_name_an_environment_variable_or_a_file_for_the_gateway_to_read() {
    let mock = MockUpstream::start().unwrap();
    std::env::set_var("GW_TEST_SECRET_VARIABLE", "aws-secret-value-1234");
    let app = spawn_app(&exposed_with_token(&mock)).await;
    let auth = format!("Bearer {TOKEN}");

    let env_attack = app
        .post(
            "/v1/providers",
            &json!({"id": "evil", "provider_type": "openai", "endpoint": mock.url(),
                    "api_key_env": "GW_TEST_SECRET_VARIABLE", "models": ["evil-model"]}),
            &[("authorization", &auth)],
        )
        .await;
    let started = std::time::Instant::now();
    let file_attack = app
        .post(
            "/v1/providers",
            &json!({"id": "evil2", "provider_type": "openai", "endpoint": mock.url(), "ca_file": "/dev/zero"}),
            &[("authorization", &auth)],
        )
        .await;
    let took = started.elapsed();
    let anonymous = app
        .post(
            "/v1/providers",
            &json!({"id": "evil3", "provider_type": "openai", "endpoint": mock.url(), "api_key_env": "GW_TEST_SECRET_VARIABLE"}),
            &[],
        )
        .await;

    assert_eq!(env_attack.status(), 400);
    let body: Value = env_attack.json().await.unwrap();
    assert_eq!(body["error"]["param"], "api_key_env");
    assert_eq!(file_attack.status(), 400);
    let body: Value = file_attack.json().await.unwrap();
    assert_eq!(body["error"]["param"], "ca_file");
    assert!(took < std::time::Duration::from_secs(2), "nothing was read");
    assert_eq!(anonymous.status(), 401);
    let providers = app
        .client
        .get(format!("{}/v1/providers", app.address))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !providers.contains("evil"),
        "no provider was added: {providers}"
    );
    assert!(mock
        .requests()
        .iter()
        .all(|r| r.header("authorization") != Some("Bearer aws-secret-value-1234")));
}

#[actix_web::test]
async fn metrics_can_be_made_public_while_the_rest_stays_guarded() {
    let mock = MockUpstream::start().unwrap();
    let config =
        exposed_with_token(&mock).replace("[server]\n", "[server]\nmetrics_public = true\n");
    let app = spawn_app(&config).await;

    assert_eq!(app.get("/metrics").await.status(), 200);
    assert_eq!(app.get("/v1/stats").await.status(), 401);
}

#[test]
fn an_exposed_gateway_whose_providers_hold_keys_needs_virtual_keys_or_an_explicit_opt_in() {
    let exposed = "[server]\nhost = \"0.0.0.0\"\n[[providers]]\nid = \"openai\"\nprovider_type = \"openai\"\napi_key = \"sk-held-by-gateway\"\n";

    let refused = load_settings(exposed).unwrap_err().to_string();
    let opted_in = load_settings(&format!("{exposed}[auth]\nallow_anonymous = true\n"));
    let keyed = load_settings(&format!(
        "{exposed}[auth]\nrequire_key = true\n[key_map.t]\nlabel = \"T\"\n"
    ));
    let loopback = load_settings(&exposed.replace("0.0.0.0", "127.0.0.1"));
    let keyless = load_settings(&exposed.replace("api_key = \"sk-held-by-gateway\"\n", ""));

    assert!(refused.contains("allow_anonymous"), "{refused}");
    assert!(refused.contains("require_key"), "{refused}");
    assert!(refused.contains("openai"), "{refused}");
    assert!(!refused.contains("sk-held-by-gateway"), "{refused}");
    assert!(opted_in.is_ok());
    assert!(keyed.is_ok());
    assert!(loopback.is_ok());
    assert!(
        keyless.is_ok(),
        "clients bringing their own keys spend nothing of ours"
    );
}

#[test]
fn the_admin_token_can_come_from_the_environment() {
    std::env::set_var("GW_TEST_ADMIN_TOKEN", "from-env-token");
    let settings = load_settings("[server]\nadmin_token_env = \"GW_TEST_ADMIN_TOKEN\"\n").unwrap();
    let missing = load_settings("[server]\nadmin_token_env = \"GW_TEST_UNSET_VARIABLE_X\"\n")
        .unwrap_err()
        .to_string();
    let both =
        load_settings("[server]\nadmin_token = \"x\"\nadmin_token_env = \"GW_TEST_ADMIN_TOKEN\"\n")
            .unwrap_err()
            .to_string();

    use secrecy::ExposeSecret;
    assert_eq!(
        settings.server.admin_token.unwrap().expose_secret(),
        "from-env-token"
    );
    assert!(missing.contains("GW_TEST_UNSET_VARIABLE_X"), "{missing}");
    assert!(both.contains("not both"), "{both}");
}
