//! The limits of virtual keys and projects: every one for the admin (`GET /v1/keys`), a key's
//! own for its holder (`GET /v1/keys/self`). Labels and ids only, never a token.

use actix_web::{get, web, HttpRequest, HttpResponse};

use crate::access::Admin;
use crate::error::GatewayError;
use crate::keys::Caller;
use crate::limits::{LimitView, Subject};
use crate::state::AppState;

/// `GET /v1/keys`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct KeysReport {
    /// Each virtual key by label: its limits and counters (null: none set).
    pub keys: Vec<KeyLimits>,
    /// Each project with limits (`[projects.<id>]`).
    pub projects: Vec<LimitView>,
}

/// One virtual key, by its label.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct KeyLimits {
    pub label: String,
    /// Its limits and where they stand; null when the key has none.
    pub limits: Option<LimitView>,
}

/// Every virtual key's and limited project's budget (spend, held, remaining, when it resets),
/// rate limits with this minute's counts, and model list.
#[utoipa::path(
    get, path = "/v1/keys", tag = "admin",
    responses((status = 200, description = "Keys by label (never their tokens) and limited projects", body = KeysReport))
)]
#[get("/v1/keys")]
pub async fn keys(_: Admin, state: web::Data<AppState>) -> HttpResponse {
    let limits = &state.pipeline.limits;
    limits.refresh(None).await;
    let keys = state
        .pipeline
        .keys
        .labels()
        .into_iter()
        .map(|label| KeyLimits {
            limits: limits.view(&Subject::Key(label.clone())),
            label,
        })
        .collect();
    let projects = limits
        .views()
        .into_iter()
        .filter(|v| v.kind == "project")
        .collect();
    HttpResponse::Ok().json(KeysReport { keys, projects })
}

/// The calling virtual key's own limits and spend (its token in `Authorization: Bearer` or
/// `x-api-key`); no admin token needed.
#[utoipa::path(
    get, path = "/v1/keys/self", tag = "keys",
    responses(
        (status = 200, description = "The key's label, limits and counters", body = KeyLimits),
        (status = 401, description = "No virtual key of this gateway was sent", body = crate::error::OpenAiErrorBody),
    )
)]
#[get("/v1/keys/self")]
pub async fn key_self(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, GatewayError> {
    match state.pipeline.keys.identify(req.headers())? {
        Caller::Virtual(key) => {
            let subject = Subject::Key(key.label.clone());
            let limits = &state.pipeline.limits;
            limits.refresh(Some(&subject)).await;
            Ok(HttpResponse::Ok().json(KeyLimits {
                limits: limits.view(&subject),
                label: key.label.clone(),
            }))
        }
        Caller::Unmapped(_) => Err(GatewayError::Unauthorized {
            message: "send a virtual key of this gateway (`Authorization: Bearer <key>` or `x-api-key: <key>`) to read its limits".into(),
        }),
    }
}
