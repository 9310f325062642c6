//! Signal storage through sea-orm: batches written once per (request, kind, source), the
//! request a signal is about, the evidence per provider and model, and the rows behind
//! `GET /v1/signals`. The same SQL serves SQLite and PostgreSQL.

use entities::{requests, signals};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, DatabaseConnection, DbErr, EntityTrait, FromQueryResult, QueryFilter, QuerySelect,
    QueryTrait, Statement, TransactionTrait, Value,
};

use super::store::{insert_chunks, insert_sql, Window};
use crate::signals::recent::{Answered, Finished};
use crate::signals::SignalKind;

/// The columns of `signals` a batch writes, in the order `push_values` gives them.
const SIGNAL_COLUMNS: [&str; 9] = [
    "ts_ms",
    "request_id",
    "signal",
    "value",
    "comment",
    "source",
    "provider_id",
    "model",
    "route_profile",
];

/// What a repeat of (request, kind, source) does: nothing. The rows actually written come
/// back, so that the evidence counts each signal once, whoever wrote it first.
const ONCE: &str = "ON CONFLICT (request_id, signal, source) DO NOTHING RETURNING provider_id, model, signal, value";

fn push_values(row: &signals::Model, values: &mut Vec<Value>) {
    values.extend([
        Value::from(row.ts_ms),
        row.request_id.clone().into(),
        row.signal.clone().into(),
        row.value.into(),
        row.comment.clone().into(),
        row.source.clone().into(),
        row.provider_id.clone().into(),
        row.model.clone().into(),
        row.route_profile.clone().into(),
    ]);
}

/// A signal the database took.
#[derive(Debug, Clone, PartialEq, FromQueryResult)]
pub struct Written {
    pub provider_id: String,
    pub model: String,
    pub signal: String,
    pub value: Option<f64>,
}

/// Writes a batch in one transaction (`id` is the database's); a signal already stored is
/// skipped. Returns the signals written.
pub async fn write_batch(
    db: &DatabaseConnection,
    batch: &[signals::Model],
) -> Result<Vec<Written>, DbErr> {
    let txn = db.begin().await?;
    let backend = db.get_database_backend();
    let mut written = Vec::with_capacity(batch.len());
    for chunk in insert_chunks(batch) {
        let mut values = Vec::with_capacity(chunk.len() * SIGNAL_COLUMNS.len());
        for row in chunk {
            push_values(row, &mut values);
        }
        let sql = insert_sql(backend, "signals", &SIGNAL_COLUMNS, chunk.len(), ONCE);
        let statement = Statement::from_sql_and_values(backend, sql, values);
        written.extend(Written::find_by_statement(statement).all(&txn).await?);
    }
    txn.commit().await?;
    Ok(written)
}

/// Whether the database holds this (request, kind, source) already.
pub async fn stored(
    db: &DatabaseConnection,
    request_id: &str,
    kind: SignalKind,
    source: &str,
) -> Result<bool, DbErr> {
    use signals::Column as S;
    let found: Option<i64> = signals::Entity::find()
        .select_only()
        .column(S::Id)
        .filter(S::RequestId.eq(request_id))
        .filter(S::Signal.eq(kind.as_str()))
        .filter(S::Source.eq(source))
        .into_tuple()
        .one(db)
        .await?;
    Ok(found.is_some())
}

/// How a request of the ledger ended, as far as signals go; None when the ledger has no
/// request of that id.
pub async fn finished(
    db: &DatabaseConnection,
    request_id: &str,
) -> Result<Option<Finished>, DbErr> {
    use requests::Column as R;
    let row: Option<(Option<String>, Option<String>, Option<String>)> =
        requests::Entity::find_by_id(request_id.to_string())
            .select_only()
            .columns([R::ProviderId, R::ModelUsed, R::RouteProfile])
            .into_tuple()
            .one(db)
            .await?;
    Ok(row.map(
        |(provider_id, model, route_profile)| match (provider_id, model) {
            (Some(provider_id), Some(model)) => Finished::Answered(std::sync::Arc::new(Answered {
                provider_id,
                model,
                route_profile,
            })),
            _ => Finished::Unanswered,
        },
    ))
}

/// The outcome of a stored signal, as SQL ([`SignalKind::outcome`] in a CASE).
fn outcome_sql() -> String {
    let mut sql = String::from("CASE signal");
    for kind in SignalKind::ALL {
        let then = match kind {
            SignalKind::Score => "COALESCE(value, 0.0)".to_string(),
            other => format!("{:.1}", other.outcome(None)),
        };
        sql.push_str(&format!(" WHEN '{}' THEN {then}", kind.as_str()));
    }
    sql.push_str(" ELSE 0.0 END");
    sql
}

/// Signals and the sum of their outcomes, per provider and model.
#[derive(Debug, Clone, PartialEq, FromQueryResult)]
pub struct EvidenceSums {
    pub provider_id: String,
    pub model: String,
    pub n: i64,
    pub sum: f64,
}

/// Every provider and model's signals and outcome sum (the SignalCollector's start).
pub async fn evidence(db: &DatabaseConnection) -> Result<Vec<EvidenceSums>, DbErr> {
    use signals::Column as S;
    signals::Entity::find()
        .select_only()
        .column(S::ProviderId)
        .column(S::Model)
        .column_as(Expr::cust("CAST(COUNT(*) AS BIGINT)"), "n")
        .column_as(
            Expr::cust(format!("CAST(SUM({}) AS DOUBLE PRECISION)", outcome_sql())),
            "sum",
        )
        .group_by(S::ProviderId)
        .group_by(S::Model)
        .into_model::<EvidenceSums>()
        .all(db)
        .await
}

/// The time buckets of a report's trend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Bucket {
    Hour,
    Day,
}

impl Bucket {
    /// The bucket named in a query (`hour` or `day`).
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "hour" => Some(Self::Hour),
            "day" => Some(Self::Day),
            _ => None,
        }
    }

    /// Its length in milliseconds (buckets start at whole UTC hours or days).
    pub fn ms(self) -> i64 {
        match self {
            Self::Hour => 3_600_000,
            Self::Day => 86_400_000,
        }
    }
}

/// Which signals a report covers.
#[derive(Debug, Clone)]
pub struct SignalFilter {
    /// When the signals were reported.
    pub window: Window,
    pub bucket: Bucket,
    pub model: Option<String>,
    pub provider: Option<String>,
    pub profile: Option<String>,
    pub source: Option<String>,
}

/// Signals of one model, provider, profile, source, kind and time bucket.
#[derive(Debug, Clone, PartialEq, FromQueryResult)]
pub struct SignalGroup {
    pub model: String,
    pub provider_id: String,
    /// '' when the request was not routed by a profile.
    pub route_profile: String,
    pub source: String,
    pub signal: String,
    /// Start of the bucket, Unix milliseconds.
    pub bucket_ms: i64,
    pub n: i64,
    pub sum: f64,
}

/// The signals the filter matches, grouped finely enough for every breakdown of the report.
pub async fn groups(db: &DatabaseConnection, f: &SignalFilter) -> Result<Vec<SignalGroup>, DbErr> {
    use signals::Column as S;
    let bucket = format!("ts_ms - (ts_ms % {})", f.bucket.ms());
    let profile = "COALESCE(route_profile, '')";
    signals::Entity::find()
        .select_only()
        .column(S::Model)
        .column(S::ProviderId)
        .column_as(Expr::cust(profile), "route_profile")
        .column(S::Source)
        .column(S::Signal)
        .column_as(Expr::cust(bucket.clone()), "bucket_ms")
        .column_as(Expr::cust("CAST(COUNT(*) AS BIGINT)"), "n")
        .column_as(
            Expr::cust(format!("CAST(SUM({}) AS DOUBLE PRECISION)", outcome_sql())),
            "sum",
        )
        .apply_if(f.window.since_ms, |q, v| q.filter(S::TsMs.gte(v)))
        .apply_if(f.window.until_ms, |q, v| q.filter(S::TsMs.lt(v)))
        .apply_if(f.model.clone(), |q, v| q.filter(S::Model.eq(v)))
        .apply_if(f.provider.clone(), |q, v| q.filter(S::ProviderId.eq(v)))
        .apply_if(f.profile.clone(), |q, v| q.filter(S::RouteProfile.eq(v)))
        .apply_if(f.source.clone(), |q, v| q.filter(S::Source.eq(v)))
        .group_by(S::Model)
        .group_by(S::ProviderId)
        .group_by(Expr::cust(profile))
        .group_by(S::Source)
        .group_by(S::Signal)
        .group_by(Expr::cust(bucket))
        .into_model::<SignalGroup>()
        .all(db)
        .await
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_outcome_of_each_kind_is_one_sql_case() {
        assert_eq!(
            super::outcome_sql(),
            "CASE signal WHEN 'thumbs_up' THEN 1.0 WHEN 'thumbs_down' THEN 0.0 WHEN 'score' THEN COALESCE(value, 0.0) WHEN 'retry' THEN 0.0 WHEN 'bad_format' THEN 0.0 WHEN 'tool_error' THEN 0.0 WHEN 'accepted' THEN 1.0 ELSE 0.0 END"
        );
    }
}
