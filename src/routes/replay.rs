//! `POST /v1/route/replay`: the ledger's past answered requests routed again under a profile,
//! with what they would have cost and taken beside what they did (admin token).

use actix_web::{post, web, HttpResponse};
use serde::Deserialize;

use super::analytics::{bad, internal, WindowQuery};
use crate::access::Admin;
use crate::actors::cost_ledger::ReadPastRequests;
use crate::error::GatewayError;
use crate::ledger::route_replay::{PastPage, ReplayReport, Replayer, Tally};
use crate::state::AppState;

/// Requests replayed at most, and by default.
pub const MAX_REPLAY_REQUESTS: u64 = 100_000;
/// Requests read from the ledger at a time.
const PAGE: u64 = 1_000;
/// The window when `since` is not given: the 30 days before `until`.
const DEFAULT_WINDOW_MS: i64 = 30 * 86_400_000;

/// A time in the body: RFC 3339 text or Unix seconds.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum TimeBound {
    /// RFC 3339 (`2026-11-01T00:00:00Z`), or Unix seconds as text.
    Text(String),
    /// Unix seconds.
    Seconds(i64),
}

impl TimeBound {
    fn text(self) -> String {
        match self {
            Self::Text(text) => text,
            Self::Seconds(seconds) => seconds.to_string(),
        }
    }
}

/// The body of `POST /v1/route/replay`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    /// The profile to route the past requests under (GET /v1/profiles).
    pub profile: String,
    /// Start (inclusive): RFC 3339 or Unix seconds; default: 30 days before `until`.
    #[serde(default)]
    pub since: Option<TimeBound>,
    /// End (exclusive): RFC 3339 or Unix seconds; default: now.
    #[serde(default)]
    pub until: Option<TimeBound>,
    /// Requests replayed at most, oldest first: 1 to 100000 (the default).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 100000)]
    pub limit: Option<u64>,
}

/// Routes the ledger's answered requests of a window (status under 400, served by a provider,
/// with tokens) again under a profile, each from its recorded capabilities, prompt tokens and
/// `max_tokens`, over today's providers, cards, breakers and live figures; and answers what
/// the profile's primary choices would have cost (the gateway's prices for the actual tokens),
/// their expected latency and quality prior, beside what was actually spent and taken.
#[utoipa::path(
    post, path = "/v1/route/replay", tag = "analytics",
    request_body(content = ReplayRequest, content_type = "application/json",
        example = json!({"profile": "cost-optimized", "since": "2026-11-01T00:00:00Z", "until": "2026-12-01T00:00:00Z"})),
    responses(
        (status = 200, description = "The replay's figures beside the actual ones", body = ReplayReport),
        (status = 400, description = "Malformed body, an unknown member, a bad time or limit (`param` names it), `since` after `until`, or an unknown profile (code `unknown_profile`)", body = crate::error::OpenAiErrorBody),
        (status = 415, description = "Content-Type is not application/json", body = crate::error::OpenAiErrorBody),
    )
)]
#[post("/v1/route/replay")]
pub async fn replay(
    _: Admin,
    state: web::Data<AppState>,
    body: web::Json<serde_json::Map<String, serde_json::Value>>,
) -> Result<HttpResponse, GatewayError> {
    let request: ReplayRequest =
        serde_json::from_value(serde_json::Value::Object(body.into_inner())).map_err(|e| {
            GatewayError::InvalidRequest {
                message: format!("invalid replay request: {e}"),
                param: None,
            }
        })?;
    let window = WindowQuery {
        since: request.since.map(TimeBound::text),
        until: request.until.map(TimeBound::text),
    }
    .window()?;
    let until_ms = window.until_ms.unwrap_or_else(crate::ledger::now_ms);
    let since_ms = window
        .since_ms
        .unwrap_or_else(|| until_ms.saturating_sub(DEFAULT_WINDOW_MS).max(0));
    if since_ms > until_ms {
        return Err(bad("since", "`since` is after `until`".into()));
    }
    let limit = request.limit.unwrap_or(MAX_REPLAY_REQUESTS);
    if !(1..=MAX_REPLAY_REQUESTS).contains(&limit) {
        return Err(bad(
            "limit",
            format!("`limit` must be between 1 and {MAX_REPLAY_REQUESTS}"),
        ));
    }
    let pipeline = &state.pipeline;
    let replayer = std::sync::Arc::new(
        Replayer::new(
            pipeline.routing.clone(),
            &request.profile,
            pipeline.providers.load_full(),
            pipeline.catalog.clone(),
            pipeline.recorder.pricing.clone(),
        )
        .map_err(|message| GatewayError::UnknownProfile { message })?,
    );

    let mut tally = Tally::default();
    let mut truncated_at = None;
    loop {
        let left = limit - tally.requests();
        // One more than the limit leaves room for, to learn whether it cut the window.
        let asked = PAGE.min(left + 1);
        let mut page = state
            .ledger
            .send(ReadPastRequests(PastPage {
                since_ms,
                until_ms,
                after: tally.last.clone(),
                limit: asked,
            }))
            .await
            .map_err(internal("ask the ledger"))?
            .map_err(internal("read the ledger"))?;
        let end = (page.len() as u64) < asked;
        if page.len() as u64 > left {
            truncated_at = page.get(left as usize).map(|p| p.ts_ms);
            page.truncate(left as usize);
        }
        // Routing is CPU work: off the async worker.
        let replayer = replayer.clone();
        tally = web::block(move || {
            replayer.replay(&mut tally, &page);
            tally
        })
        .await
        .map_err(internal("replay the requests"))?;
        if end || truncated_at.is_some() {
            break;
        }
    }
    Ok(HttpResponse::Ok().json(tally.report(request.profile, since_ms, until_ms, truncated_at)))
}
