//! The pipeline's core called as a function, with plain values (no HTTP server between):
//! an answer, a refusal that says it is the client's, and every target failing.

use std::time::Instant;

use actix_web::http::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use llm_gateway::api::Operation;
use llm_gateway::error::{GatewayError, Origin};
use llm_gateway::pipeline::call::{Inbound, RequestMeta};
use llm_gateway::pipeline::upstream::UpstreamClients;
use llm_gateway::pipeline::Reply;
use llm_gateway::settings::{self, ConfigSource};
use llm_gateway::startup::Application;

use crate::helpers::*;

async fn build(config: &str) -> (Application, tempfile::TempDir) {
    let (dir, path) = write_config(config);
    let mut settings = settings::load_with_env(
        &ConfigSource {
            path,
            explicit: true,
        },
        Vec::new(),
    )
    .unwrap();
    settings.server.port = 0;
    settings.server.workers = 1;
    settings.database.url = format!("sqlite://{}?mode=rwc", dir.path().join("l.db").display());
    settings.database.spool_dir = dir.path().join("spool");
    (Application::build(settings).await.unwrap(), dir)
}

fn inbound<'a>(headers: &'a HeaderMap, body: &serde_json::Value) -> Inbound<'a> {
    Inbound {
        op: Operation::ChatCompletions,
        meta: RequestMeta::from_headers(headers, "inside-1".into(), Instant::now()),
        headers,
        query: "",
        body: serde_json::to_vec(body).unwrap().into(),
        reservation: None,
    }
}

#[actix_web::test]
async fn the_core_runs_a_call_given_as_plain_values() {
    let mock = MockUpstream::start().unwrap();
    let (app, _dir) = build(&format!(
        "[[providers]]\nid = \"openai\"\nprovider_type = \"openai\"\nendpoint = \"{}\"\n",
        mock.url()
    ))
    .await;
    let state = app.state();
    let pipeline = &state.pipeline;
    let clients = UpstreamClients::default();
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));

    let meta = RequestMeta::from_headers(&headers, "inside-1".into(), Instant::now());
    let mut meter = pipeline.meter(Operation::ChatCompletions, &meta);
    let answer = pipeline
        .call(
            inbound(&headers, &chat_body("gpt-4o", false)),
            &clients,
            &mut meter,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(answer.provider_id, "openai");
    let Reply::Upstream { mut response, .. } = answer.reply else {
        panic!("an upstream answer was expected");
    };
    assert_eq!(response.status(), 200);
    let body = response.body().await.unwrap();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(
        json["choices"][0]["message"]["content"].is_string(),
        "{json}"
    );

    // A model nobody serves: the client's request is at fault, and no other target would help.
    let mut meter = pipeline.meter(Operation::ChatCompletions, &meta);
    let error = pipeline
        .call(
            inbound(&headers, &chat_body("no-such-model", false)),
            &clients,
            &mut meter,
        )
        .await
        .err()
        .unwrap();
    assert!(
        matches!(error, GatewayError::ModelNotFound { .. }),
        "{error}"
    );
    assert_eq!(error.origin(), Origin::Client);
    assert!(!error.may_help_elsewhere());
}

#[actix_web::test]
async fn when_every_target_fails_the_error_names_each_provider_and_failure() {
    let (app, _dir) = build(
        "[[providers]]\nid = \"first\"\nprovider_type = \"openai\"\nendpoint = \"http://127.0.0.1:1\"\n\n\
         [[providers]]\nid = \"second\"\nprovider_type = \"openai\"\nendpoint = \"http://127.0.0.1:1\"\n",
    )
    .await;
    let state = app.state();
    let pipeline = &state.pipeline;
    let headers = HeaderMap::new();
    let meta = RequestMeta::from_headers(&headers, "inside-2".into(), Instant::now());
    let mut meter = pipeline.meter(Operation::ChatCompletions, &meta);
    let error = pipeline
        .call(
            inbound(&headers, &chat_body("gpt-4o", false)),
            &UpstreamClients::default(),
            &mut meter,
        )
        .await
        .err()
        .unwrap();
    let GatewayError::AllTargetsFailed { failures, .. } = &error else {
        panic!("{error}");
    };
    let providers: Vec<&str> = failures.iter().map(|f| f.provider.as_str()).collect();
    assert_eq!(providers, ["first", "second"]);
    assert_eq!(error.origin(), Origin::Upstream);
    assert_eq!(error.status(), 502);
    let message = error.to_string();
    assert!(
        message.starts_with("all 2 targets failed: first: "),
        "{message}"
    );
    assert!(message.contains("; second: "), "{message}");
}
