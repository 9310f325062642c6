//! `POST /v1/ask`: a question about the ledger in plain language, answered with rows by SQL a
//! model wrote and the gateway checked and ran read-only (admin token).

use actix_web::{post, web, HttpResponse};

use crate::access::Admin;
use crate::ask::{AskAnswer, AskRequest};
use crate::error::GatewayError;
use crate::pipeline::upstream::UpstreamClients;
use crate::state::AppState;

/// Answers a question about the ledger.
#[utoipa::path(
    post, path = "/v1/ask", tag = "analytics",
    request_body(content = AskRequest, content_type = "application/json",
        example = json!({"question": "How much did each model cost over the last 7 days?"})),
    responses(
        (status = 200, description = "The rows the checked SQL returned, with the SQL, the model that wrote it and a chart hint", body = AskAnswer,
            example = json!({"question": "How much did each model cost over the last 7 days?",
                "sql": "SELECT model, ROUND(SUM(cost_usd), 6) AS spend_usd FROM ask_requests WHERE ts_ms >= 1796342400000 GROUP BY model ORDER BY spend_usd DESC",
                "columns": ["model", "spend_usd"], "rows": [["gpt-4o", 1.25], ["claude-sonnet-4-5", 0.5]],
                "truncated": false, "model": "gpt-4o", "elapsed_ms": 812,
                "chart": {"kind": "bar", "x": "model", "y": "spend_usd"}, "repaired": false})),
        (status = 400, description = "A bad body: no `question`, an empty one or one over 2000 characters, an unknown member, malformed JSON", body = crate::error::OpenAiErrorBody),
        (status = 413, description = "Body over 256 KiB", body = crate::error::OpenAiErrorBody),
        (status = 415, description = "Body not application/json", body = crate::error::OpenAiErrorBody),
        (status = 422, description = "The SQL was refused by the read-only check (`code: sql_refused`, naming why), failed at the database after the repair round (`sql_failed`, with the database's error), or ran past [analytics] timeout_ms (`sql_timeout`); `sql` holds the SQL", body = crate::error::OpenAiErrorBody),
        (status = 502, description = "The model that writes the SQL could not be reached or answered with an error", body = crate::error::OpenAiErrorBody),
        (status = 503, description = "No model writes the SQL: set [analytics] model (`code: analytics_model_not_configured`)", body = crate::error::OpenAiErrorBody),
        (status = 504, description = "The model that writes the SQL did not answer in time", body = crate::error::OpenAiErrorBody),
    )
)]
#[post("/v1/ask")]
pub async fn ask(
    _: Admin,
    state: web::Data<AppState>,
    clients: web::Data<UpstreamClients>,
    body: web::Json<AskRequest>,
) -> Result<HttpResponse, GatewayError> {
    let answer: AskAnswer = state
        .analyst
        .ask(&state.pipeline, &clients, &body.question)
        .await?;
    Ok(HttpResponse::Ok().json(answer))
}
