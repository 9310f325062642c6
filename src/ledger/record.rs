//! One record with what happened around it — its upstream attempts and the quality signals
//! reported on it — read for `GET /v1/records/{id}`, and the shape of that answer.

use entities::{attempts, requests, signals};
use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder};
use serde::Serialize;

use super::report::{rfc3339, RecordView};

/// A record, its attempts and its signals, as read.
#[derive(Debug, Clone)]
pub struct RecordDetail {
    pub record: requests::Model,
    /// The attempts the ledger kept (`LedgerRecord::attempts_kept`: none for a request its
    /// first attempt answered), in order.
    pub attempts: Vec<attempts::Model>,
    /// The signals reported on it, in time order.
    pub signals: Vec<signals::Model>,
}

/// The record `id` with its attempts and signals; None when the ledger has no such record.
pub async fn read(db: &DatabaseConnection, id: &str) -> Result<Option<RecordDetail>, DbErr> {
    let Some(record) = requests::Entity::find_by_id(id.to_string()).one(db).await? else {
        return Ok(None);
    };
    let attempts = attempts::Entity::find()
        .filter(attempts::Column::RequestId.eq(id))
        .order_by_asc(attempts::Column::Attempt)
        .order_by_asc(attempts::Column::Id)
        .all(db)
        .await?;
    let signals = signals::Entity::find()
        .filter(signals::Column::RequestId.eq(id))
        .order_by_asc(signals::Column::TsMs)
        .order_by_asc(signals::Column::Id)
        .all(db)
        .await?;
    Ok(Some(RecordDetail {
        record,
        attempts,
        signals,
    }))
}

/// An upstream attempt as the API shows it (`/v1/errors`, `/v1/records/{id}`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Attempt {
    /// 0 for the request's first try.
    pub attempt: i32,
    /// When the attempt ended, RFC 3339.
    pub ts: String,
    /// Provider id.
    pub provider: String,
    /// The model asked of the provider.
    pub model: String,
    /// The provider's status, when it answered.
    pub status: Option<i32>,
    /// `upstream_connect`, `upstream_timeout`, `upstream_http_503`, …
    pub error_kind: Option<String>,
    /// What went wrong, with the provider's key scrubbed.
    pub message: Option<String>,
    pub latency_ms: i64,
}

impl From<attempts::Model> for Attempt {
    fn from(a: attempts::Model) -> Self {
        Self {
            attempt: a.attempt,
            ts: rfc3339(a.ts_ms),
            provider: a.provider_id,
            model: a.model,
            status: a.status,
            error_kind: a.error_kind,
            message: a.error_message,
            latency_ms: a.latency_ms,
        }
    }
}

/// One upstream attempt of a record.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RecordAttempt {
    #[serde(flatten)]
    pub attempt: Attempt,
    /// It failed, and a later attempt of the request succeeded.
    pub mitigated: bool,
}

/// A quality signal reported on a record.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SignalView {
    /// `thumbs_up`, `thumbs_down`, `score`, `retry`, `bad_format`, `tool_error` or `accepted`.
    pub signal: String,
    /// A `score`'s value, 0 to 1.
    pub value: Option<f64>,
    pub comment: Option<String>,
    /// Who reported it ('' when unnamed).
    pub source: String,
    /// When it was reported, RFC 3339.
    pub ts: String,
}

/// `GET /v1/records/{id}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RecordDetailView {
    /// The record as a `/v1/records` row shows it.
    #[schema(value_type = Object)]
    pub record: RecordView,
    pub attempts: Vec<RecordAttempt>,
    pub signals: Vec<SignalView>,
}

impl From<RecordDetail> for RecordDetailView {
    fn from(detail: RecordDetail) -> Self {
        Self {
            record: RecordView::of(detail.record),
            attempts: detail
                .attempts
                .into_iter()
                .map(|a| RecordAttempt {
                    mitigated: a.mitigated,
                    attempt: Attempt::from(a),
                })
                .collect(),
            signals: detail
                .signals
                .into_iter()
                .map(|s| SignalView {
                    signal: s.signal,
                    value: s.value,
                    comment: s.comment,
                    source: s.source,
                    ts: rfc3339(s.ts_ms),
                })
                .collect(),
        }
    }
}
