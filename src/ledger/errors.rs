//! The errors view: failed upstream attempts with the request each belonged to, each marked
//! customer-impacting or mitigated by failover, and their counts by kind and impact.

use std::collections::BTreeMap;

use entities::{attempts, requests};
use sea_orm::{
    ColumnTrait, Condition, DatabaseConnection, DbErr, EntityTrait, FromQueryResult, JoinType,
    QueryFilter, QueryOrder, QuerySelect, QueryTrait, Select,
};
use serde::Serialize;

use super::record::Attempt;
use super::report::{rfc3339, NONE_KEY};
use super::store::Window;

/// Whether a failed attempt reached the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Impact {
    /// No later attempt of the request succeeded: the client got an error.
    CustomerImpacting,
    /// A later attempt of the same request succeeded.
    Mitigated,
}

impl Impact {
    /// The impact named in a query (`customer_impacting` or `mitigated`).
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "customer_impacting" => Some(Self::CustomerImpacting),
            "mitigated" => Some(Self::Mitigated),
            _ => None,
        }
    }

    fn of(mitigated: bool) -> Self {
        if mitigated {
            Self::Mitigated
        } else {
            Self::CustomerImpacting
        }
    }
}

/// Which failed attempts to list.
#[derive(Debug, Clone, Default)]
pub struct ErrorFilter {
    pub provider: Option<String>,
    /// The model asked of the provider.
    pub model: Option<String>,
    pub impact: Option<Impact>,
    /// When the attempt ended.
    pub window: Window,
    pub limit: u64,
    pub offset: u64,
}

/// A failed attempt as read, with the columns of its request.
#[derive(Debug, FromQueryResult)]
struct FailedAttempt {
    #[sea_orm(nested)]
    attempt: attempts::Model,
    // Null only for an attempt whose request retention has already pruned.
    endpoint: Option<String>,
    source: Option<String>,
    project: Option<String>,
    outcome: Option<String>,
}

/// Failed attempts of one kind and impact.
#[derive(Debug, FromQueryResult)]
struct KindCount {
    error_kind: Option<String>,
    mitigated: bool,
    count: i64,
}

/// One failed attempt in `GET /v1/errors`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorView {
    pub request_id: String,
    #[serde(flatten)]
    pub attempt: Attempt,
    pub impact: Impact,
    /// The request's endpoint kind (`chat_completions`, `messages`, …).
    pub endpoint: Option<String>,
    /// The request's `x-source`.
    pub source: Option<String>,
    /// The request's `x-project`.
    pub project: Option<String>,
    /// How the request ended: `error` or `mitigated`.
    pub outcome: Option<String>,
}

/// Failed attempts by impact.
#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct ImpactCounts {
    pub customer_impacting: i64,
    pub mitigated: i64,
}

/// Counts over every failed attempt the filter matches, not just the page.
#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct ErrorCounts {
    /// By `error_kind` (`(none)` for an error status without a kind).
    pub by_kind: BTreeMap<String, i64>,
    pub by_impact: ImpactCounts,
}

/// `GET /v1/errors`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorsPage {
    /// Newest first.
    pub errors: Vec<ErrorView>,
    /// Failed attempts the filter matches, across every page.
    pub total: i64,
    pub counts: ErrorCounts,
    pub since: Option<String>,
    pub until: Option<String>,
}

/// Attempts that failed and match the filter (paging aside). An attempt failed when the
/// provider answered with an error status or the attempt has an error kind (it could not
/// connect, timed out, or the answer broke off).
fn matching(f: &ErrorFilter) -> Select<attempts::Entity> {
    use attempts::Column as A;
    attempts::Entity::find()
        .filter(
            Condition::any()
                .add(A::Status.gte(400))
                .add(A::ErrorKind.is_not_null()),
        )
        .apply_if(f.provider.clone(), |q, v| q.filter(A::ProviderId.eq(v)))
        .apply_if(f.model.clone(), |q, v| q.filter(A::Model.eq(v)))
        .apply_if(f.impact, |q, v| {
            q.filter(A::Mitigated.eq(v == Impact::Mitigated))
        })
        .apply_if(f.window.since_ms, |q, v| q.filter(A::TsMs.gte(v)))
        .apply_if(f.window.until_ms, |q, v| q.filter(A::TsMs.lt(v)))
}

/// The page of failed attempts the filter asks for, newest first, with the counts over all
/// of them.
pub async fn page(db: &DatabaseConnection, f: &ErrorFilter) -> Result<ErrorsPage, DbErr> {
    use attempts::Column as A;
    use requests::Column as R;
    // The drivers bind LIMIT and OFFSET as i64 (see `store::records`).
    let bound = |n: u64| std::cmp::min(n, i64::MAX as u64);
    let request = attempts::Entity::belongs_to(requests::Entity)
        .from(A::RequestId)
        .to(R::Id)
        .into();
    let rows = matching(f)
        .select_only()
        .columns([
            A::Id,
            A::RequestId,
            A::TsMs,
            A::Attempt,
            A::ProviderId,
            A::Model,
            A::Status,
            A::ErrorKind,
            A::ErrorMessage,
            A::LatencyMs,
            A::Mitigated,
        ])
        .columns([R::Endpoint, R::Source, R::Project, R::Outcome])
        .join(JoinType::LeftJoin, request)
        .order_by_desc(A::TsMs)
        .order_by_desc(A::Id)
        .limit(bound(f.limit))
        .offset(bound(f.offset))
        .into_model::<FailedAttempt>()
        .all(db)
        .await?;
    let groups = matching(f)
        .select_only()
        .column(A::ErrorKind)
        .column(A::Mitigated)
        .column_as(A::Id.count(), "count")
        .group_by(A::ErrorKind)
        .group_by(A::Mitigated)
        .into_model::<KindCount>()
        .all(db)
        .await?;

    let mut counts = ErrorCounts::default();
    for g in &groups {
        let kind = g.error_kind.as_deref().unwrap_or(NONE_KEY);
        *counts.by_kind.entry(kind.to_string()).or_default() += g.count;
        match Impact::of(g.mitigated) {
            Impact::CustomerImpacting => counts.by_impact.customer_impacting += g.count,
            Impact::Mitigated => counts.by_impact.mitigated += g.count,
        }
    }
    Ok(ErrorsPage {
        errors: rows.into_iter().map(view).collect(),
        total: counts.by_impact.customer_impacting + counts.by_impact.mitigated,
        counts,
        since: f.window.since_ms.map(rfc3339),
        until: f.window.until_ms.map(rfc3339),
    })
}

fn view(a: FailedAttempt) -> ErrorView {
    ErrorView {
        request_id: a.attempt.request_id.clone(),
        impact: Impact::of(a.attempt.mitigated),
        attempt: Attempt::from(a.attempt),
        endpoint: a.endpoint,
        source: a.source,
        project: a.project,
        outcome: a.outcome,
    }
}
