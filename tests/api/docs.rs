//! The API docs and the portal's files: `/docs` and the vendored Swagger UI served from the
//! binary with their content types, nothing outside `static/` reachable, and the OpenAPI
//! document describing the portal's paths and the proxied bodies.

use std::time::Duration;

use serde_json::Value;

use crate::helpers::*;

async fn content_type_and_body(app: &TestApp, path: &str) -> (u16, String, String) {
    let response = app.get(path).await;
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, content_type, response.text().await.unwrap())
}

#[actix_web::test]
async fn the_docs_page_and_the_vendored_swagger_ui_are_served_from_the_binary() {
    let app = spawn_app("providers = []").await;

    let (status, content_type, page) = content_type_and_body(&app, "/docs").await;
    assert_eq!(status, 200);
    assert_eq!(content_type, "text/html; charset=utf-8");
    for script in [
        "/portal/vendor/swagger-ui/swagger-ui-bundle.js",
        "/portal/vendor/swagger-ui/swagger-ui.css",
        "/portal/docs.js",
    ] {
        assert!(page.contains(script), "the page loads {script}");
    }
    assert!(
        !page.contains("https://") && !page.contains("http://"),
        "the page loads nothing from elsewhere"
    );

    let (status, content_type, script) = content_type_and_body(&app, "/portal/docs.js").await;
    assert_eq!(
        (status, content_type.as_str()),
        (200, "text/javascript; charset=utf-8")
    );
    assert!(script.contains("url: '/openapi.json'") && script.contains("validatorUrl: null"));

    for (file, expected, marker) in [
        (
            "swagger-ui-bundle.js",
            "text/javascript; charset=utf-8",
            "SwaggerUIBundle",
        ),
        ("swagger-ui.css", "text/css; charset=utf-8", ".swagger-ui"),
        ("LICENSE", "text/plain; charset=utf-8", "Apache License"),
    ] {
        let (status, content_type, body) =
            content_type_and_body(&app, &format!("/portal/vendor/swagger-ui/{file}")).await;
        assert_eq!(status, 200, "{file}");
        assert_eq!(content_type, expected, "{file}");
        assert!(body.contains(marker), "{file} is the vendored file");
    }
}

#[actix_web::test]
async fn no_path_outside_the_portal_folder_is_served() {
    let app = spawn_app("providers = []").await;

    // Written raw: an HTTP client would resolve the dot segments before sending.
    for path in [
        "/portal/../Cargo.toml",
        "/portal/../../Cargo.toml",
        "/portal/vendor/../../Cargo.toml",
        "/portal/vendor/swagger-ui/../../../src/main.rs",
        "/portal/%2e%2e/Cargo.toml",
        "/portal/%2E%2E/%2e%2e/Cargo.toml",
        "/portal/..%2fCargo.toml",
        "/portal/..%5cCargo.toml",
        "/portal/./app.js",
        "/portal/vendor//swagger-ui/LICENSE",
        "/portal//etc/passwd",
        "/portal/vendor/",
        "/portal/",
        "/portal/index.html",
        "/portal/docs.html",
        "/portal/no-such-file.js",
    ] {
        let mut stream = raw(
            &app,
            &format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"),
        )
        .await;
        let text = answer(&mut stream, Duration::from_secs(5)).await;
        assert!(
            text.starts_with("HTTP/1.1 404"),
            "{path}: {}",
            text.lines().next().unwrap_or_default()
        );
        assert!(!text.contains("[package]"), "{path} leaked a file");
    }
}

#[actix_web::test]
async fn the_document_lists_the_portal_and_describes_each_proxied_body() {
    let app = spawn_app("providers = []").await;
    let doc: Value = app.get("/openapi.json").await.json().await.unwrap();

    for path in ["/", "/docs", "/portal/{path}"] {
        assert!(
            doc["paths"][path]["get"].is_object(),
            "{path} is documented"
        );
    }
    for (path, schema) in [
        ("/v1/chat/completions", "ChatCompletionRequest"),
        ("/v1/messages", "MessagesRequest"),
        ("/v1/messages/count_tokens", "CountTokensRequest"),
    ] {
        let body = &doc["paths"][path]["post"]["requestBody"]["content"]["application/json"];
        assert_eq!(
            body["schema"]["$ref"],
            format!("#/components/schemas/{schema}"),
            "{path}"
        );
        let properties = &doc["components"]["schemas"][schema]["properties"];
        assert!(properties["model"].is_object() && properties["messages"].is_object());
        let headers: Vec<&str> = doc["paths"][path]["post"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["in"] == "header")
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        for header in ["x-source", "x-project", "x-route-profile", "x-task-kind"] {
            assert!(headers.contains(&header), "{path} documents {header}");
        }
        // The virtual key is a security scheme (OpenAPI ignores an `Authorization` parameter),
        // optional: "no key" is one of the alternatives.
        let security = doc["paths"][path]["post"]["security"].as_array().unwrap();
        assert!(security.contains(&serde_json::json!({})), "{path}");
        assert!(
            security.contains(&serde_json::json!({"virtual_key": []})),
            "{path}"
        );
    }
}
