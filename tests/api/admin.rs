//! Provider administration: list without keys, add, route to the new provider, remove, admin token.

use serde_json::{json, Value};

use crate::helpers::*;

#[actix_web::test]
async fn providers_are_listed_without_their_keys() {
    let mock = MockUpstream::start().unwrap();
    let app = spawn_app(&four_providers(&mock)).await;

    let response = app.get("/v1/providers").await;

    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    let json: Value = serde_json::from_str(&text).unwrap();
    let ids: Vec<&str> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["openai", "azure", "anthropic", "ollama"]);
    assert_eq!(json[0]["has_api_key"], true);
    assert_eq!(json[3]["has_api_key"], false);
    for key in [
        "sk-openai-provider-key",
        "azure-provider-key",
        "sk-ant-provider-key",
    ] {
        assert!(!text.contains(key), "{key} leaked");
    }
}

#[actix_web::test]
async fn a_provider_added_at_runtime_serves_requests_until_it_is_removed() {
    let mock = MockUpstream::start().unwrap();
    mock.set_models(&["qwen2.5:7b"]);
    let app = spawn_app("providers = []").await;
    let body = chat_body("qwen2.5:7b", false);
    assert_eq!(
        app.post("/v1/chat/completions", &body, &[]).await.status(),
        404
    );

    let added = app
        .post("/v1/providers", &json!({"id": "ollama", "provider_type": "local", "endpoint": mock.url(), "api_key": "local-secret"}), &[])
        .await;
    assert_eq!(added.status(), 201);
    let text = added.text().await.unwrap();
    assert!(!text.contains("local-secret"));
    let health: Value = app.get("/health").await.json().await.unwrap();
    assert_eq!(health["providers"], json!(["ollama"]));

    let routed = app.post("/v1/chat/completions", &body, &[]).await;
    assert_eq!(routed.status(), 200);
    assert_eq!(
        mock.last_request().unwrap().header("authorization"),
        Some("Bearer local-secret")
    );

    let removed = app
        .client
        .delete(format!("{}/v1/providers/ollama", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status(), 204);
    assert_eq!(
        app.post("/v1/chat/completions", &body, &[]).await.status(),
        404
    );
    let again = app
        .client
        .delete(format!("{}/v1/providers/ollama", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 404);
}

#[actix_web::test]
async fn invalid_or_duplicate_providers_are_refused_with_a_clear_error() {
    let mock = MockUpstream::start().unwrap();
    let app = spawn_app(&four_providers(&mock)).await;

    let duplicate = app
        .post(
            "/v1/providers",
            &json!({"id": "openai", "provider_type": "openai"}),
            &[],
        )
        .await;
    let no_endpoint = app
        .post(
            "/v1/providers",
            &json!({"id": "x", "provider_type": "local"}),
            &[],
        )
        .await;
    let bad_type = app
        .post(
            "/v1/providers",
            &json!({"id": "x", "provider_type": "gemini"}),
            &[],
        )
        .await;
    let unknown_field = app
        .post(
            "/v1/providers",
            &json!({"id": "x", "provider_type": "openai", "colour": "red"}),
            &[],
        )
        .await;
    let azure_without_deployment = app
        .post("/v1/providers", &json!({"id": "az", "provider_type": "azure_openai", "endpoint": "https://x.openai.azure.com"}), &[])
        .await;

    assert_eq!(duplicate.status(), 409);
    for (response, needle) in [
        (no_endpoint, "endpoint"),
        (bad_type, "gemini"),
        (unknown_field, "colour"),
        (azure_without_deployment, "deployment"),
    ] {
        assert_eq!(response.status(), 400);
        let json: Value = response.json().await.unwrap();
        let message = json["error"]["message"].as_str().unwrap();
        assert!(message.contains(needle), "{message}");
    }
}

#[actix_web::test]
async fn the_admin_token_guards_provider_changes() {
    let app = spawn_app("providers = []\n[server]\nadmin_token = \"s3cret-admin\"").await;
    let body = json!({"id": "ollama", "provider_type": "local", "endpoint": "http://127.0.0.1:1"});

    let without = app.post("/v1/providers", &body, &[]).await;
    let wrong = app
        .post("/v1/providers", &body, &[("authorization", "Bearer nope")])
        .await;
    let right = app
        .post(
            "/v1/providers",
            &body,
            &[("authorization", "Bearer s3cret-admin")],
        )
        .await;
    let delete_without = app
        .client
        .delete(format!("{}/v1/providers/ollama", app.address))
        .send()
        .await
        .unwrap();

    assert_eq!(without.status(), 401);
    assert_eq!(wrong.status(), 401);
    assert_eq!(right.status(), 201);
    assert_eq!(delete_without.status(), 401);
}
