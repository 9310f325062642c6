//! Usage analytics: stats, records, requesters, projects and errors, all computed from the ledger database.

use actix_web::{get, web, HttpResponse};
use serde::Deserialize;

use crate::access::Admin;
use crate::actors::cost_ledger::{
    CostLedger, ListErrors, ListRecords, ReadRecord, SumBuckets, SumUsage,
};
use crate::actors::project_tracker::{ListProjects, ProjectRecords};
use crate::error::GatewayError;
use crate::ledger::errors::{ErrorFilter, ErrorsPage, Impact};
use crate::ledger::record::RecordDetailView;
use crate::ledger::report::{self, rfc3339};
use crate::ledger::store::{RecordFilter, Window};
use crate::state::AppState;

const DEFAULT_LIMIT: u64 = 100;
const MAX_LIMIT: u64 = 1000;
/// The largest `offset`: the databases take a signed 64-bit offset.
const MAX_OFFSET: u64 = i64::MAX as u64;

pub(super) fn bad(param: &str, message: String) -> GatewayError {
    GatewayError::InvalidRequest {
        message,
        param: Some(param.to_string()),
    }
}

pub(super) fn internal<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> GatewayError {
    move |e| GatewayError::Internal {
        message: format!("failed to {what}: {e}"),
    }
}

/// Reads a whole number, naming the parameter when it is not one.
fn parse_number<T: std::str::FromStr>(
    param: &str,
    value: Option<&str>,
) -> Result<Option<T>, GatewayError> {
    value
        .map(|v| {
            v.parse::<T>().map_err(|_| {
                bad(
                    param,
                    format!("`{param}` must be a whole number, not `{v}`"),
                )
            })
        })
        .transpose()
}

/// Latest time accepted in a query: 9999-12-31T23:59:59Z, in Unix seconds. Bounding times
/// keeps the hour arithmetic of the stats queries far from overflow.
const MAX_TIME_SECS: i64 = 253_402_300_799;

/// Reads a time: RFC 3339 (`2026-11-25T12:00:00Z`) or Unix seconds, from 1970 to 9999.
fn parse_time(param: &str, value: &str) -> Result<i64, GatewayError> {
    let millis = match value.parse::<i64>() {
        Ok(seconds) => seconds.saturating_mul(1000),
        Err(_) => chrono::DateTime::parse_from_rfc3339(value)
            .map(|t| t.timestamp_millis())
            .map_err(|_| bad(param, format!("`{param}` must be an RFC 3339 time (e.g. 2026-11-25T12:00:00Z) or Unix seconds, not `{value}`")))?,
    };
    if !(0..=MAX_TIME_SECS * 1000 + 999).contains(&millis) {
        return Err(bad(
            param,
            format!("`{param}` must lie between 1970-01-01 and 9999-12-31 (Unix seconds 0 to {MAX_TIME_SECS})"),
        ));
    }
    Ok(millis)
}

/// `since` and `until` query parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct WindowQuery {
    /// Start (inclusive): RFC 3339 or Unix seconds, 1970 to 9999.
    #[param(
        pattern = r"^([0-9]{1,12}|[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2}))$",
        example = "2026-11-25T12:00:00Z"
    )]
    pub(super) since: Option<String>,
    /// End (exclusive): RFC 3339 or Unix seconds, 1970 to 9999.
    #[param(
        pattern = r"^([0-9]{1,12}|[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2}))$",
        example = "2026-11-26T12:00:00Z"
    )]
    pub(super) until: Option<String>,
}

impl WindowQuery {
    pub(super) fn window(&self) -> Result<Window, GatewayError> {
        let window = Window {
            since_ms: self
                .since
                .as_deref()
                .map(|v| parse_time("since", v))
                .transpose()?,
            until_ms: self
                .until
                .as_deref()
                .map(|v| parse_time("until", v))
                .transpose()?,
        };
        if let (Some(s), Some(u)) = (window.since_ms, window.until_ms) {
            if s > u {
                return Err(bad("since", "`since` is after `until`".into()));
            }
        }
        Ok(window)
    }
}

/// Sends a query to the ledger actor and waits for its answer.
async fn ask_ledger<M, T>(state: &AppState, query: M) -> Result<T, GatewayError>
where
    M: actix::Message<Result = Result<T, sea_orm::DbErr>> + Send + 'static,
    T: Send + 'static,
    CostLedger: actix::Handler<M>,
{
    state
        .ledger
        .send(query)
        .await
        .map_err(internal("ask the ledger"))?
        .map_err(internal("read the ledger"))
}

async fn sums(
    state: &AppState,
    window: Window,
) -> Result<Vec<crate::ledger::store::GroupSums>, GatewayError> {
    ask_ledger(state, SumUsage(window)).await
}

/// Totals across all proxied requests — tokens, cost, latency (mean, p50, p95) and time to
/// first byte, how often failover, the sanitizer and open circuit breakers stepped in — with
/// breakdowns by model, provider, source, project and key label. Unpriced requests are
/// counted apart. Percentiles are estimated from fixed histogram buckets (10 ms … 20 s),
/// linearly within a bucket; null without samples.
#[utoipa::path(get, path = "/v1/stats", tag = "analytics", params(WindowQuery),
    responses((status = 200, body = report::Stats), (status = 400, description = "Bad query parameter", body = crate::error::OpenAiErrorBody)))]
#[get("/v1/stats")]
pub async fn stats(
    _: Admin,
    state: web::Data<AppState>,
    query: web::Query<WindowQuery>,
) -> Result<HttpResponse, GatewayError> {
    let window = query.window()?;
    let groups = sums(&state, window).await?;
    Ok(HttpResponse::Ok().json(report::stats(
        &groups,
        window.since_ms.map(rfc3339),
        window.until_ms.map(rfc3339),
    )))
}

/// The most buckets one time series answers: a month of hours, two years of days.
const MAX_BUCKETS: i64 = 744;
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;

/// Query of `GET /v1/stats/timeseries`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TimeSeriesQuery {
    /// `hour` (default) or `day` (UTC days).
    #[param(pattern = "^(hour|day)$")]
    bucket: Option<String>,
    /// Start: RFC 3339 or Unix seconds, rounded down to its bucket; default 24 hours (or 30
    /// days) before `until`.
    #[param(
        pattern = r"^([0-9]{1,12}|[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2}))$",
        example = "2026-11-25T12:00:00Z"
    )]
    since: Option<String>,
    /// End: RFC 3339 or Unix seconds, rounded up to its bucket; default now.
    #[param(
        pattern = r"^([0-9]{1,12}|[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2}))$",
        example = "2026-11-26T12:00:00Z"
    )]
    until: Option<String>,
}

/// Requests, errors, tokens, spend, mean and p50/p95 latency and time to first byte, and the
/// requests failover rescued, the sanitizer flagged or refused and open breakers steered, per
/// hour or day, for the portal's charts: read from the hourly rollups (whole hours; the window
/// is rounded out to whole buckets), every bucket listed, empty ones as zeros (null
/// percentiles); at most 744 buckets.
#[utoipa::path(get, path = "/v1/stats/timeseries", tag = "analytics", params(TimeSeriesQuery),
    responses((status = 200, body = report::TimeSeries), (status = 400, description = "Bad query parameter", body = crate::error::OpenAiErrorBody)))]
#[get("/v1/stats/timeseries")]
pub async fn timeseries(
    _: Admin,
    state: web::Data<AppState>,
    query: web::Query<TimeSeriesQuery>,
) -> Result<HttpResponse, GatewayError> {
    let (bucket, bucket_ms, default_buckets) = match query.bucket.as_deref() {
        None | Some("hour") => ("hour", HOUR_MS, 24),
        Some("day") => ("day", DAY_MS, 30),
        Some(other) => {
            return Err(bad(
                "bucket",
                format!("`bucket` must be hour or day, not `{other}`"),
            ))
        }
    };
    let window = WindowQuery {
        since: query.since.clone(),
        until: query.until.clone(),
    }
    .window()?;
    let until = window
        .until_ms
        .unwrap_or_else(|| chrono::Utc::now().timestamp_millis());
    let to_ms = until + (bucket_ms - until.rem_euclid(bucket_ms)) % bucket_ms;
    let since = window
        .since_ms
        .unwrap_or(to_ms - default_buckets * bucket_ms)
        .max(0);
    let from_ms = since - since.rem_euclid(bucket_ms);
    if (to_ms - from_ms) / bucket_ms > MAX_BUCKETS {
        return Err(bad(
            "since",
            format!("a time series has at most {MAX_BUCKETS} buckets: narrow `since`..`until` or use `bucket=day`"),
        ));
    }
    let sums = ask_ledger(
        &state,
        SumBuckets {
            from_ms,
            to_ms,
            bucket_ms,
        },
    )
    .await?;
    Ok(HttpResponse::Ok().json(report::time_series(
        bucket, bucket_ms, from_ms, to_ms, &sums,
    )))
}

/// Filters and paging of `GET /v1/records`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RecordsQuery {
    project: Option<String>,
    source: Option<String>,
    /// The model asked for or used.
    model: Option<String>,
    /// Provider id.
    provider: Option<String>,
    key_label: Option<String>,
    /// `ok`, `error`, `mitigated`, or an HTTP status such as 429.
    status: Option<String>,
    /// Start (inclusive): RFC 3339 or Unix seconds, 1970 to 9999.
    #[param(
        pattern = r"^([0-9]{1,12}|[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2}))$",
        example = "2026-11-25T12:00:00Z"
    )]
    since: Option<String>,
    /// End (exclusive): RFC 3339 or Unix seconds, 1970 to 9999.
    #[param(
        pattern = r"^([0-9]{1,12}|[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2}))$",
        example = "2026-11-25T12:00:00Z"
    )]
    until: Option<String>,
    /// Documented by [`PageParams`].
    #[param(ignore)]
    limit: Option<String>,
    #[param(ignore)]
    offset: Option<String>,
}

/// The paging parameters of the list endpoints, for the document (each endpoint's own query
/// type reads them, as text, so that a bad value gets a 400 naming it: see [`paging`]).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// 1 to 1000, default 100.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u64>,
    /// Rows to skip, default 0.
    #[param(minimum = 0, maximum = 9223372036854775807_u64)]
    pub offset: Option<u64>,
}

/// Reads `limit` (1 to 1000, default 100) and `offset` (0 to 2^63-1, default 0).
fn paging(limit: Option<&str>, offset: Option<&str>) -> Result<(u64, u64), GatewayError> {
    let limit = parse_number::<u64>("limit", limit)?.unwrap_or(DEFAULT_LIMIT);
    let offset = parse_number::<u64>("offset", offset)?.unwrap_or(0);
    if offset > MAX_OFFSET {
        return Err(bad(
            "offset",
            format!("`offset` must be between 0 and {MAX_OFFSET}"),
        ));
    }
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(bad(
            "limit",
            format!("`limit` must be between 1 and {MAX_LIMIT}"),
        ));
    }
    Ok((limit, offset))
}

impl RecordsQuery {
    fn filter(self, project: Option<String>) -> Result<RecordFilter, GatewayError> {
        let window = WindowQuery {
            since: self.since,
            until: self.until,
        }
        .window()?;
        let (limit, offset) = paging(self.limit.as_deref(), self.offset.as_deref())?;
        let (outcome, status) = match self.status.as_deref() {
            None => (None, None),
            Some(s @ ("ok" | "error" | "mitigated")) => (Some(s.to_string()), None),
            Some(s) => match s.parse::<i32>() {
                Ok(code) if (100..600).contains(&code) => (None, Some(code)),
                _ => {
                    return Err(bad(
                        "status",
                        format!(
                            "`status` must be ok, error, mitigated or an HTTP status, not `{s}`"
                        ),
                    ))
                }
            },
        };
        Ok(RecordFilter {
            project: project.or(self.project),
            source: self.source,
            model: self.model,
            provider: self.provider,
            key_label: self.key_label,
            outcome,
            status,
            window,
            // One more than asked, to learn whether another page follows.
            limit: limit + 1,
            offset,
        })
    }
}

/// Every recorded proxy call, most recent first: provider, model, tokens, cost, latency, status.
#[utoipa::path(get, path = "/v1/records", tag = "analytics", params(RecordsQuery, PageParams),
    responses((status = 200, body = report::RecordPage), (status = 400, description = "Bad query parameter", body = crate::error::OpenAiErrorBody)))]
#[get("/v1/records")]
pub async fn records(
    _: Admin,
    state: web::Data<AppState>,
    query: web::Query<RecordsQuery>,
) -> Result<HttpResponse, GatewayError> {
    let filter = query.into_inner().filter(None)?;
    let (limit, offset) = (filter.limit - 1, filter.offset);
    let rows = ask_ledger(&state, ListRecords(filter)).await?;
    Ok(HttpResponse::Ok().json(report::record_page(rows, limit, offset)))
}

/// The longest record id accepted: ids are the gateway's UUIDs (36 characters).
const MAX_RECORD_ID: usize = 200;

/// One record, as a `/v1/records` row shows it, with the upstream attempts the ledger kept
/// (a failover's, or a failed one's; none for a request its first attempt answered) and the
/// quality signals reported on it, each in time order.
#[utoipa::path(get, path = "/v1/records/{id}", tag = "analytics",
    params(("id" = String, Path, max_length = 200, description = "Record id (the x-request-id of the proxied answer)")),
    responses((status = 200, body = RecordDetailView), (status = 400, description = "Malformed id", body = crate::error::OpenAiErrorBody), (status = 404, description = "No such record", body = crate::error::OpenAiErrorBody)))]
#[get("/v1/records/{id}")]
pub async fn record(
    _: Admin,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, GatewayError> {
    let id = id.into_inner();
    if id.len() > MAX_RECORD_ID || id.chars().any(char::is_control) {
        return Err(bad(
            "id",
            format!("a record id is at most {MAX_RECORD_ID} printable characters"),
        ));
    }
    let detail = ask_ledger(&state, ReadRecord(id.clone()))
        .await?
        .ok_or(GatewayError::RecordNotFound { id })?;
    Ok(HttpResponse::Ok().json(RecordDetailView::from(detail)))
}

/// Per requester (`x-source`): requests, success rate, tokens and cost, by model.
#[utoipa::path(get, path = "/v1/sources", tag = "analytics", params(WindowQuery),
    responses((status = 200, body = report::List<report::SourceUsage>), (status = 400, description = "Bad query parameter", body = crate::error::OpenAiErrorBody)))]
#[get("/v1/sources")]
pub async fn sources(
    _: Admin,
    state: web::Data<AppState>,
    query: web::Query<WindowQuery>,
) -> Result<HttpResponse, GatewayError> {
    let groups = sums(&state, query.window()?).await?;
    Ok(HttpResponse::Ok().json(report::List::of(report::sources(&groups))))
}

/// `GET /v1/projects` parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ProjectsQuery {
    /// Only projects active within the last N minutes.
    #[param(value_type = Option<u64>, minimum = 0, maximum = 153722867280912_u64)]
    active_since_mins: Option<String>,
}

/// Every project (`x-project`) that has sent requests, most recently active first, with its usage.
#[utoipa::path(get, path = "/v1/projects", tag = "analytics", params(ProjectsQuery),
    responses((status = 200, body = report::List<report::ProjectUsage>), (status = 400, description = "Bad query parameter", body = crate::error::OpenAiErrorBody)))]
#[get("/v1/projects")]
pub async fn projects(
    _: Admin,
    state: web::Data<AppState>,
    query: web::Query<ProjectsQuery>,
) -> Result<HttpResponse, GatewayError> {
    let active_since_ms =
        match parse_number::<u64>("active_since_mins", query.active_since_mins.as_deref())? {
            Some(mins) => Some(
                mins.checked_mul(60_000)
                    .and_then(|ms| i64::try_from(ms).ok())
                    .map(|ms| crate::ledger::now_ms().saturating_sub(ms))
                    .ok_or_else(|| {
                        bad(
                            "active_since_mins",
                            "`active_since_mins` is too large".into(),
                        )
                    })?,
            ),
            None => None,
        };
    let (projects, groups) = state
        .projects
        .send(ListProjects { active_since_ms })
        .await
        .map_err(internal("ask the project tracker"))?
        .map_err(internal("read the ledger"))?;
    Ok(HttpResponse::Ok().json(report::List::of(report::projects(&projects, &groups))))
}

/// A project's records, most recent first (same filters and paging as `/v1/records`).
#[utoipa::path(get, path = "/v1/projects/{id}/records", tag = "analytics",
    params(("id" = String, Path, description = "Project id (x-project)"), RecordsQuery, PageParams),
    responses((status = 200, body = report::RecordPage), (status = 400, description = "Bad query parameter", body = crate::error::OpenAiErrorBody), (status = 404, description = "No such project", body = crate::error::OpenAiErrorBody)))]
#[get("/v1/projects/{id}/records")]
pub async fn project_records(
    _: Admin,
    state: web::Data<AppState>,
    id: web::Path<String>,
    query: web::Query<RecordsQuery>,
) -> Result<HttpResponse, GatewayError> {
    let id = id.into_inner();
    let filter = query.into_inner().filter(Some(id.clone()))?;
    let (limit, offset) = (filter.limit - 1, filter.offset);
    let rows = state
        .projects
        .send(ProjectRecords(filter))
        .await
        .map_err(internal("ask the project tracker"))?
        .map_err(internal("read the ledger"))?
        .ok_or(GatewayError::ProjectNotFound { id })?;
    Ok(HttpResponse::Ok().json(report::record_page(rows, limit, offset)))
}

/// Filters and paging of `GET /v1/errors`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ErrorsQuery {
    /// Documented by [`WindowQuery`]: when the attempt ended.
    #[param(ignore)]
    since: Option<String>,
    #[param(ignore)]
    until: Option<String>,
    /// Provider id.
    provider: Option<String>,
    /// The model asked of the provider.
    model: Option<String>,
    /// `customer_impacting` (no later attempt helped) or `mitigated` (failover did).
    #[param(value_type = Option<Impact>)]
    impact: Option<String>,
    /// Documented by [`PageParams`].
    #[param(ignore)]
    limit: Option<String>,
    #[param(ignore)]
    offset: Option<String>,
}

impl ErrorsQuery {
    fn filter(self) -> Result<ErrorFilter, GatewayError> {
        let window = WindowQuery {
            since: self.since,
            until: self.until,
        }
        .window()?;
        let (limit, offset) = paging(self.limit.as_deref(), self.offset.as_deref())?;
        let impact = self
            .impact
            .map(|v| {
                Impact::parse(&v).ok_or_else(|| {
                    bad(
                        "impact",
                        format!("`impact` must be customer_impacting or mitigated, not `{v}`"),
                    )
                })
            })
            .transpose()?;
        Ok(ErrorFilter {
            provider: self.provider,
            model: self.model,
            impact,
            window,
            limit,
            offset,
        })
    }
}

/// Failed upstream attempts, newest first, each marked customer-impacting or mitigated by
/// failover, with counts by error kind and impact over every attempt the filters match.
#[utoipa::path(get, path = "/v1/errors", tag = "analytics", params(WindowQuery, ErrorsQuery, PageParams),
    responses((status = 200, body = ErrorsPage), (status = 400, description = "Bad query parameter", body = crate::error::OpenAiErrorBody)))]
#[get("/v1/errors")]
pub async fn errors(
    _: Admin,
    state: web::Data<AppState>,
    query: web::Query<ErrorsQuery>,
) -> Result<HttpResponse, GatewayError> {
    let filter = query.into_inner().filter()?;
    let page = ask_ledger(&state, ListErrors(filter)).await?;
    Ok(HttpResponse::Ok().json(page))
}
