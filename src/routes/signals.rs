//! Quality signals: `POST /v1/signals` (a client's verdict on a proxied answer, under the
//! proxy's virtual-key rules) and `GET /v1/signals` (the figures per model, admin token).

use actix_web::{get, post, web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

use super::analytics::{bad, internal, WindowQuery};
use crate::access::Admin;
use crate::actors::signal_collector::{RecordSignal, Recorded, ReportSignals, SignalRefused};
use crate::error::GatewayError;
use crate::ledger::signal_report::SignalsReport;
use crate::ledger::signals::{Bucket, SignalFilter};
use crate::pipeline::inbound::{self, BodyLimits};
use crate::signals::{SignalBody, SignalReport};
use crate::state::AppState;

/// The largest body of a signal (a comment of 2000 characters fits many times over).
const SIGNAL_BODY_LIMIT: usize = 64 * 1024;
/// The window of `GET /v1/signals` when `since` is not given: the last 7 days.
const DEFAULT_WINDOW_MS: i64 = 7 * 86_400_000;

/// The answer of `POST /v1/signals`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SignalAnswer {
    /// The signal was taken (it is written with the next batch).
    pub accepted: bool,
    /// The same request, kind and source was reported before: nothing changed.
    pub duplicate: bool,
}

/// Reports a quality signal about a proxied answer, by its `x-request-id`. A repeat of the
/// same (request_id, signal, source) changes nothing. Follows the proxy's virtual-key rules.
#[utoipa::path(
    post, path = "/v1/signals", tag = "signals",
    request_body(content = SignalBody, content_type = "application/json",
        example = json!({"request_id": "0193a6c4-1f2e-7cc1-9d35-6a1c2b3d4e5f", "signal": "score", "value": 0.8,
            "comment": "right answer, verbose", "source": "code-review-bot"})),
    responses(
        (status = 200, description = "Taken (`accepted: true`), or a repeat that changed nothing (`duplicate: true`)", body = SignalAnswer,
            example = json!({"accepted": true, "duplicate": false})),
        (status = 400, description = "A bad member (`param` names it): unknown kind, a score without a value or outside 0..1, a comment over 2000 characters, an unknown member, malformed JSON", body = crate::error::OpenAiErrorBody),
        (status = 401, description = "A virtual key is required ([auth] require_key)", body = crate::error::OpenAiErrorBody),
        (status = 404, description = "No proxied request has this id", body = crate::error::OpenAiErrorBody),
        (status = 409, description = "The request ended before any provider answered it: there is no model to rate", body = crate::error::OpenAiErrorBody),
        (status = 413, description = "Body over 64 KiB", body = crate::error::OpenAiErrorBody),
        (status = 415, description = "Content-Type is not application/json", body = crate::error::OpenAiErrorBody),
        (status = 503, description = "Too many signals wait for the database ([signals] max_pending)", body = crate::error::OpenAiErrorBody),
    )
)]
#[post("/v1/signals")]
pub async fn report_signal(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, GatewayError> {
    let pipeline = &state.pipeline;
    pipeline.keys.identify(req.headers())?;
    let limits = BodyLimits {
        max_bytes: SIGNAL_BODY_LIMIT.min(pipeline.body_limits.max_bytes),
        timeout: pipeline.body_limits.timeout,
        budget: pipeline.body_limits.budget.clone(),
    };
    let (body, _reservation) = inbound::read_body(req.headers(), payload, &limits).await?;
    let value: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| GatewayError::InvalidRequest {
            message: format!("the body is not valid JSON: {e}"),
            param: None,
        })?;
    let report = SignalReport::from_json(value).map_err(|e| GatewayError::InvalidRequest {
        message: e.message,
        param: e.field,
    })?;
    let recorded = state
        .signals
        .send(RecordSignal(report))
        .await
        .map_err(internal("ask the signal collector"))?
        .map_err(|refused| match refused {
            SignalRefused::UnknownRequest(id) => GatewayError::RequestNotFound { id },
            SignalRefused::NotAnswered(id) => GatewayError::Conflict {
                message: format!("request `{id}` was not answered by a model (it ended before any provider answered: refused, blocked or unroutable), so a signal about it would rate no model"),
            },
            SignalRefused::Backlog(n) => GatewayError::Overloaded {
                message: format!("{n} signals wait for the database ([signals] max_pending); retry shortly"),
            },
            SignalRefused::Database(e) => internal("look up the request in the ledger")(e),
        })?;
    Ok(HttpResponse::Ok().json(SignalAnswer {
        accepted: recorded == Recorded::Accepted,
        duplicate: recorded == Recorded::Duplicate,
    }))
}

/// Filters of `GET /v1/signals`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SignalsQuery {
    /// Documented by [`WindowQuery`]: when the signal was reported; default 7 days before `until`.
    #[param(ignore)]
    since: Option<String>,
    #[param(ignore)]
    until: Option<String>,
    /// The trend's buckets: `day` (default) or `hour`, whole UTC days or hours.
    #[param(value_type = Option<Bucket>)]
    bucket: Option<String>,
    /// The model that answered.
    model: Option<String>,
    /// Provider id.
    provider: Option<String>,
    /// The routing profile of the request.
    profile: Option<String>,
    /// The source the signal was reported with.
    source: Option<String>,
}

impl SignalsQuery {
    fn filter(self) -> Result<SignalFilter, GatewayError> {
        let mut window = WindowQuery {
            since: self.since,
            until: self.until,
        }
        .window()?;
        let end = window.until_ms.unwrap_or_else(crate::ledger::now_ms);
        window.since_ms = Some(window.since_ms.unwrap_or((end - DEFAULT_WINDOW_MS).max(0)));
        let bucket = match self.bucket.as_deref() {
            None => Bucket::Day,
            Some(name) => Bucket::parse(name).ok_or_else(|| {
                bad(
                    "bucket",
                    format!("`bucket` must be hour or day, not `{name}`"),
                )
            })?,
        };
        Ok(SignalFilter {
            window,
            bucket,
            model: self.model,
            provider: self.provider,
            profile: self.profile,
            source: self.source,
        })
    }
}

/// Quality per model from the reported signals: counts per kind, the mean outcome (thumbs_up
/// and accepted 1, a score its value, the other kinds 0) with its 95% Wilson interval, the
/// same by provider, routing profile and source, and the trend per day or hour. Computed from
/// the database: every instance sharing it gives the same answer.
#[utoipa::path(get, path = "/v1/signals", tag = "analytics", params(WindowQuery, SignalsQuery),
    responses((status = 200, body = SignalsReport), (status = 400, description = "Bad query parameter", body = crate::error::OpenAiErrorBody)))]
#[get("/v1/signals")]
pub async fn signals(
    _: Admin,
    state: web::Data<AppState>,
    query: web::Query<SignalsQuery>,
) -> Result<HttpResponse, GatewayError> {
    let filter = query.into_inner().filter()?;
    let report = state
        .signals
        .send(ReportSignals(filter))
        .await
        .map_err(internal("ask the signal collector"))?
        .map_err(internal("read the signals"))?;
    Ok(HttpResponse::Ok().json(report))
}
