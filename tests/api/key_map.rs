//! Virtual keys: bearer and x-api-key tokens map to provider keys; require_key; bring-your-own-key.

use crate::helpers::*;

fn config(mock: &MockUpstream, require_key: bool) -> String {
    format!(
        r#"
[auth]
require_key = {require_key}

[[providers]]
id = "openai"
provider_type = "openai"
api_key = "sk-org-openai"
endpoint = "{url}"

[[providers]]
id = "anthropic"
provider_type = "anthropic"
endpoint = "{url}"

[[providers]]
id = "ollama"
provider_type = "local"
endpoint = "{url}"
models = ["llama3:8b"]

[key_map.team-alpha-key]
label = "Team Alpha"
anthropic_key = "sk-ant-alpha"
openai_key = "sk-alpha"

[key_map.team-beta-key]
label = "Team Beta"
openai_key = "sk-beta"
"#,
        url = mock.url()
    )
}

#[actix_web::test]
async fn a_bearer_virtual_key_sends_the_teams_provider_key() {
    let mock = MockUpstream::start().unwrap();
    let app = spawn_app(&config(&mock, false)).await;

    let response = app
        .post(
            "/v1/chat/completions",
            &chat_body("gpt-4o", false),
            &[("authorization", "Bearer team-alpha-key")],
        )
        .await;

    assert_eq!(response.status(), 200);
    assert_eq!(
        mock.last_request().unwrap().header("authorization"),
        Some("Bearer sk-alpha")
    );
}

#[actix_web::test]
async fn an_x_api_key_virtual_key_sends_the_teams_anthropic_key() {
    let mock = MockUpstream::start().unwrap();
    let app = spawn_app(&config(&mock, false)).await;

    let response = app
        .post(
            "/v1/messages",
            &messages_body("claude-sonnet-4-20250514", false),
            &[("x-api-key", "team-alpha-key")],
        )
        .await;

    assert_eq!(response.status(), 200);
    let upstream = mock.last_request().unwrap();
    assert_eq!(upstream.header("x-api-key"), Some("sk-ant-alpha"));
    assert_eq!(upstream.header("authorization"), None);
}

#[actix_web::test]
async fn a_team_without_a_key_for_a_keyless_provider_is_refused() {
    let mock = MockUpstream::start().unwrap();
    let app = spawn_app(&config(&mock, false)).await;

    let response = app
        .post(
            "/v1/messages",
            &messages_body("claude-sonnet-4-20250514", false),
            &[("x-api-key", "team-beta-key")],
        )
        .await;

    assert_eq!(response.status(), 403);
    let json: serde_json::Value = response.json().await.unwrap();
    assert_eq!(json["type"], "error");
    assert_eq!(json["error"]["type"], "permission_error");
    assert!(json["error"]["message"]
        .as_str()
        .unwrap()
        .contains("Team Beta"));
    assert!(
        mock.requests().iter().all(|r| r.path != "/v1/messages"),
        "nothing forwarded"
    );
}

#[actix_web::test]
async fn require_key_refuses_a_missing_or_unknown_key_in_the_callers_shape() {
    let mock = MockUpstream::start().unwrap();
    let app = spawn_app(&config(&mock, true)).await;

    let missing = app
        .post("/v1/chat/completions", &chat_body("gpt-4o", false), &[])
        .await;
    let unknown = app
        .post(
            "/v1/messages",
            &messages_body("claude-sonnet-4-20250514", false),
            &[("x-api-key", "who-knows")],
        )
        .await;
    let known = app
        .post(
            "/v1/chat/completions",
            &chat_body("gpt-4o", false),
            &[("x-api-key", "team-beta-key")],
        )
        .await;

    assert_eq!(missing.status(), 401);
    let json: serde_json::Value = missing.json().await.unwrap();
    assert_eq!(json["error"]["type"], "authentication_error");
    assert_eq!(unknown.status(), 401);
    let json: serde_json::Value = unknown.json().await.unwrap();
    assert_eq!(json["error"]["type"], "authentication_error");
    assert_eq!(known.status(), 200);
    assert_eq!(
        mock.requests()
            .iter()
            .filter(|r| r.method == "POST")
            .count(),
        1
    );
}

#[actix_web::test]
async fn an_unmapped_token_uses_the_providers_key_or_is_forwarded_when_there_is_none() {
    let mock = MockUpstream::start().unwrap();
    let app = spawn_app(&config(&mock, false)).await;

    app.post(
        "/v1/chat/completions",
        &chat_body("gpt-4o", false),
        &[("authorization", "Bearer sk-my-own")],
    )
    .await;
    let with_provider_key = mock.last_request().unwrap();
    app.post(
        "/v1/messages",
        &messages_body("claude-sonnet-4-20250514", false),
        &[("x-api-key", "sk-ant-my-own")],
    )
    .await;
    let byok_x_api_key = mock.last_request().unwrap();
    app.post(
        "/v1/messages",
        &messages_body("claude-sonnet-4-20250514", false),
        &[("authorization", "Bearer oauth-token")],
    )
    .await;
    let byok_bearer = mock.last_request().unwrap();
    app.post("/v1/chat/completions", &chat_body("llama3:8b", false), &[])
        .await;
    let keyless = mock.last_request().unwrap();

    assert_eq!(
        with_provider_key.header("authorization"),
        Some("Bearer sk-org-openai")
    );
    assert_eq!(byok_x_api_key.header("x-api-key"), Some("sk-ant-my-own"));
    assert_eq!(
        byok_bearer.header("authorization"),
        Some("Bearer oauth-token")
    );
    assert_eq!(byok_bearer.header("x-api-key"), None);
    assert_eq!(keyless.path, "/v1/chat/completions");
    assert_eq!(keyless.header("authorization"), None);
}
