//! `/v1/models` and `/health`: the union over enabled providers, local discovery, and the health shape.

use serde_json::{json, Value};

use crate::helpers::*;

#[actix_web::test]
async fn models_are_the_union_of_catalog_deployments_and_discovered_local_models() {
    let mock = MockUpstream::start().unwrap();
    mock.set_models(&["llama3:8b", "qwen2.5:7b"]);
    let app = spawn_app(&four_providers(&mock)).await;

    let response = app.get("/v1/models").await;

    assert_eq!(response.status(), 200);
    let json: Value = response.json().await.unwrap();
    assert_eq!(json["object"], "list");
    let entries = json["data"].as_array().unwrap();
    let find = |id: &str| entries.iter().find(|m| m["id"] == id).cloned();
    assert_eq!(find("gpt-4o").unwrap()["provider"], "openai");
    assert_eq!(
        find("claude-sonnet-4-20250514").unwrap()["owned_by"],
        "anthropic"
    );
    assert_eq!(find("my-gpt4o").unwrap()["provider"], "azure");
    assert_eq!(find("llama3:8b").unwrap()["provider"], "ollama");
    assert_eq!(find("qwen2.5:7b").unwrap()["owned_by"], "local");
    assert!(entries.iter().all(|m| m["object"] == "model"));
}

#[actix_web::test]
async fn a_local_server_that_is_down_does_not_fail_the_model_list() {
    let app = spawn_app(
        "[[providers]]\nid = \"openai\"\nprovider_type = \"openai\"\n\n[[providers]]\nid = \"ollama\"\nprovider_type = \"local\"\nendpoint = \"http://127.0.0.1:1\"\n",
    )
    .await;

    let response = app.get("/v1/models").await;

    assert_eq!(response.status(), 200);
    let json: Value = response.json().await.unwrap();
    let data = json["data"].as_array().unwrap();
    assert!(data.iter().any(|m| m["id"] == "gpt-4o"));
    assert!(data.iter().all(|m| m["provider"] != "ollama"));
}

#[actix_web::test]
async fn disabled_providers_serve_nothing() {
    let mock = MockUpstream::start().unwrap();
    let app = spawn_app(&format!(
        "[[providers]]\nid = \"openai\"\nprovider_type = \"openai\"\nendpoint = \"{}\"\nenabled = false\n",
        mock.url()
    ))
    .await;

    let models: Value = app.get("/v1/models").await.json().await.unwrap();
    let chat = app
        .post("/v1/chat/completions", &chat_body("gpt-4o", false), &[])
        .await;

    assert_eq!(models["data"], json!([]));
    assert_eq!(chat.status(), 404);
    assert!(mock.requests().is_empty());
}

#[actix_web::test]
async fn health_reports_status_version_uptime_port_and_enabled_providers() {
    let mock = MockUpstream::start().unwrap();
    let app = spawn_app(&four_providers(&mock)).await;

    let json: Value = app.get("/health").await.json().await.unwrap();

    assert_eq!(json["status"], "ok");
    assert_eq!(json["version"], env!("CARGO_PKG_VERSION"));
    assert!(json["uptime_secs"].is_u64());
    assert_eq!(json["port"], app.port);
    assert_eq!(
        json["providers"],
        json!(["openai", "azure", "anthropic", "ollama"])
    );
}

#[actix_web::test]
async fn the_openapi_document_lists_every_endpoint() {
    let app = spawn_app("").await;

    let json: Value = app.get("/openapi.json").await.json().await.unwrap();

    assert!(json["openapi"].as_str().unwrap().starts_with("3.1"));
    for path in [
        "/v1/chat/completions",
        "/v1/messages",
        "/v1/messages/count_tokens",
        "/v1/models",
        "/v1/providers",
        "/v1/providers/{id}",
        "/v1/records/{id}",
        "/health",
    ] {
        assert!(json["paths"][path].is_object(), "{path} is documented");
    }
}
