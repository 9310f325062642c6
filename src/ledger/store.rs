//! Ledger storage through sea-orm: connect and migrate, write batches with their rollups, and the
//! queries behind stats, records, sources and projects. The same code serves SQLite and PostgreSQL.

use std::collections::HashMap;
use std::time::Duration;

use entities::{attempts, projects, requests, rollups_hourly};
use migrations::{Migrator, MigratorTrait};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ActiveValue::NotSet, ColumnTrait, ConnectOptions, ConnectionTrait, Database,
    DatabaseConnection, DbBackend, DbErr, EntityTrait, FromQueryResult, QueryFilter, QueryOrder,
    QuerySelect, Statement, TransactionTrait, Value,
};

use super::sums::{self, Sums};
use super::LedgerRecord;

/// Most rows per INSERT: well under SQLite's 32,766 bound parameters for the widest table.
const INSERT_CHUNK: usize = 256;

/// Splits `items` into INSERTs of 256 rows and then powers of two: a handful of distinct
/// statements that the driver prepares once and reuses, instead of one per remainder size
/// (each a large prepared statement held in the connection's cache).
pub(crate) fn insert_chunks<T>(items: &[T]) -> Vec<&[T]> {
    let mut chunks = Vec::new();
    let mut rest = items;
    while !rest.is_empty() {
        let size = if rest.len() >= INSERT_CHUNK {
            INSERT_CHUNK
        } else {
            1 << (usize::BITS - 1 - rest.len().leading_zeros())
        };
        let (chunk, tail) = rest.split_at(size);
        chunks.push(chunk);
        rest = tail;
    }
    chunks
}
const HOUR_MS: i64 = 3_600_000;
/// Prepared statements kept per connection: enough for every statement the ledger uses.
const STATEMENT_CACHE: usize = 48;

#[cfg(test)]
mod tests {
    #[test]
    fn inserts_come_in_few_distinct_sizes() {
        let items: Vec<u32> = (0..1000).collect();
        let sizes: Vec<usize> = super::insert_chunks(&items)
            .iter()
            .map(|c| c.len())
            .collect();
        assert_eq!(sizes, vec![256, 256, 256, 128, 64, 32, 8]);
        assert_eq!(sizes.iter().sum::<usize>(), 1000);
    }

    #[test]
    fn request_columns_are_the_entity_columns_in_order() {
        use sea_orm::{Iden, Iterable};
        let entity: Vec<String> = entities::requests::Column::iter()
            .map(|c| c.to_string())
            .collect();
        assert_eq!(entity, super::REQUEST_COLUMNS.to_vec());
    }

    #[test]
    fn rollup_columns_are_the_entity_columns_in_order() {
        use sea_orm::{Iden, Iterable};
        let entity: Vec<String> = entities::rollups_hourly::Column::iter()
            .map(|c| c.to_string())
            .collect();
        assert_eq!(entity, super::rollup_upsert().columns);
    }

    #[test]
    fn insert_statements_number_their_parameters_per_backend() {
        let sqlite = super::requests_insert_sql(sea_orm::DbBackend::Sqlite, 2);
        assert_eq!(sqlite.matches('?').count(), 70);
        assert!(sqlite.ends_with("ON CONFLICT (id) DO NOTHING"));
        let pg = super::requests_insert_sql(sea_orm::DbBackend::Postgres, 2);
        assert!(pg.contains("($1, $2,") && pg.contains("$70)"));
        assert!(!pg.contains("$71"));
    }
}

/// Connects to the ledger database and brings its schema up to date.
pub async fn connect(url: &str) -> Result<DatabaseConnection, DbErr> {
    let mut options = ConnectOptions::new(url.to_string());
    options
        .sqlx_logging(false)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(10));
    if url.starts_with("sqlite:") {
        // WAL lets the stats queries read while a batch is written.
        options.max_connections(2).map_sqlx_sqlite_opts(|o| {
            use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
            o.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .statement_cache_capacity(STATEMENT_CACHE)
                // A multi-row INSERT inside a transaction keeps a statement journal, which
                // SQLite spills to a temporary file past 64 KiB: on disk that was a file
                // created, written (~60 KB) and deleted for every 256-row INSERT.
                .pragma("temp_store", "memory")
        });
    } else {
        options
            .max_connections(8)
            .map_sqlx_postgres_opts(|o| o.statement_cache_capacity(STATEMENT_CACHE));
    }
    let db = Database::connect(options).await?;
    Migrator::up(&db, None).await?;
    Ok(db)
}

/// Sums for one combination of model, provider, source, project and key label ('' when absent).
#[derive(Debug, Clone, FromQueryResult)]
pub struct GroupSums {
    pub model: String,
    pub provider_id: String,
    pub source: String,
    pub project: String,
    pub key_label: String,
    #[sea_orm(nested)]
    pub sums: Sums,
}

/// The model a record is counted under: the one that answered, else the one asked for.
fn model_of(r: &requests::Model) -> &str {
    r.model_used
        .as_deref()
        .or(r.model_requested.as_deref())
        .unwrap_or_default()
}

/// The columns of `requests`, in the order `push_request_values` gives their values.
const REQUEST_COLUMNS: [&str; 35] = [
    "id",
    "ts_ms",
    "project",
    "source",
    "key_label",
    "endpoint",
    "provider_id",
    "provider_type",
    "model_requested",
    "model_used",
    "status",
    "outcome",
    "error_kind",
    "error_message",
    "streamed",
    "latency_ms",
    "ttfb_ms",
    "input_tokens",
    "output_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "cost_usd",
    "priced",
    "usage_estimated",
    "sanitizer_findings",
    "route_profile",
    "route_rank",
    "needs",
    "prompt_tokens_estimate",
    "max_tokens",
    "translated",
    "route_plan",
    "route_decided_by",
    "breaker_skips",
    "attempts",
];

/// Appends one request's values in `REQUEST_COLUMNS` order.
fn push_request_values(r: &requests::Model, values: &mut Vec<Value>) {
    values.extend([
        Value::from(r.id.clone()),
        r.ts_ms.into(),
        r.project.clone().into(),
        r.source.clone().into(),
        r.key_label.clone().into(),
        r.endpoint.clone().into(),
        r.provider_id.clone().into(),
        r.provider_type.clone().into(),
        r.model_requested.clone().into(),
        r.model_used.clone().into(),
        r.status.into(),
        r.outcome.clone().into(),
        r.error_kind.clone().into(),
        r.error_message.clone().into(),
        r.streamed.into(),
        r.latency_ms.into(),
        r.ttfb_ms.into(),
        r.input_tokens.into(),
        r.output_tokens.into(),
        r.cached_input_tokens.into(),
        r.cache_write_tokens.into(),
        r.cost_usd.into(),
        r.priced.into(),
        r.usage_estimated.into(),
        r.sanitizer_findings.clone().into(),
        r.route_profile.clone().into(),
        r.route_rank.into(),
        r.needs.clone().into(),
        r.prompt_tokens_estimate.into(),
        r.max_tokens.into(),
        r.translated.clone().into(),
        r.route_plan.clone().into(),
        r.route_decided_by.clone().into(),
        r.breaker_skips.into(),
        r.attempts.into(),
    ]);
}

/// The INSERT of `rows` requests for `backend`. Requests are the bulk of the ledger's writes:
/// their values are bound straight from the records, instead of going through an ActiveModel
/// and a query builder for every row (which cost more than SQLite's own work).
fn requests_insert_sql(backend: DbBackend, rows: usize) -> String {
    insert_sql(
        backend,
        "requests",
        &REQUEST_COLUMNS,
        rows,
        "ON CONFLICT (id) DO NOTHING",
    )
}

/// `INSERT INTO table (columns) VALUES (…), … tail` with `rows` rows of parameters, numbered
/// as `backend` wants them (`?` for SQLite, `$1…` for PostgreSQL).
pub(crate) fn insert_sql(
    backend: DbBackend,
    table: &str,
    columns: &[&str],
    rows: usize,
    tail: &str,
) -> String {
    let width = columns.len();
    let mut sql = String::with_capacity(100 + rows * width * 6);
    sql.push_str("INSERT INTO ");
    sql.push_str(table);
    sql.push_str(" (");
    sql.push_str(&columns.join(", "));
    sql.push_str(") VALUES ");
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for column in 0..width {
            if column > 0 {
                sql.push_str(", ");
            }
            match backend {
                DbBackend::Postgres => {
                    sql.push('$');
                    sql.push_str(&(row * width + column + 1).to_string());
                }
                _ => sql.push('?'),
            }
        }
        sql.push(')');
    }
    sql.push(' ');
    sql.push_str(tail);
    sql
}

/// The key columns of `rollups_hourly`, in the order `write_batch` gives their values.
const ROLLUP_KEY: [&str; 6] = [
    "hour_ms",
    "model",
    "provider_id",
    "source",
    "project",
    "key_label",
];

/// The INSERT of rollup rows: their columns, and the tail that adds a row to the one of its
/// hour and group already there.
struct RollupUpsert {
    columns: Vec<String>,
    tail: String,
}

fn rollup_upsert() -> &'static RollupUpsert {
    static UPSERT: std::sync::LazyLock<RollupUpsert> = std::sync::LazyLock::new(|| {
        let sums = sums::columns();
        let add: Vec<String> = sums
            .iter()
            .map(|c| format!("{0} = rollups_hourly.{0} + excluded.{0}", c.name))
            .collect();
        RollupUpsert {
            columns: ROLLUP_KEY
                .iter()
                .map(|c| c.to_string())
                .chain(sums.iter().map(|c| c.name.clone()))
                .collect(),
            tail: format!(
                "ON CONFLICT ({}) DO UPDATE SET {}",
                ROLLUP_KEY.join(", "),
                add.join(", ")
            ),
        }
    });
    &UPSERT
}

/// Writes a batch in one transaction: the requests, their attempts, the hourly rollups and
/// the projects' first/last seen. A request already written (a retried batch) is skipped.
pub async fn write_batch(db: &DatabaseConnection, batch: &[LedgerRecord]) -> Result<(), DbErr> {
    let txn = db.begin().await?;
    let backend = db.get_database_backend();
    for chunk in insert_chunks(batch) {
        let mut values = Vec::with_capacity(chunk.len() * REQUEST_COLUMNS.len());
        for record in chunk {
            push_request_values(&record.request, &mut values);
        }
        let sql = requests_insert_sql(backend, chunk.len());
        txn.execute_raw(Statement::from_sql_and_values(backend, sql, values))
            .await?;
    }
    let attempts: Vec<attempts::ActiveModel> = batch
        .iter()
        .flat_map(|r| r.attempts_kept().iter().cloned())
        .map(|a| {
            let mut row = attempts::ActiveModel::from(a);
            row.id = NotSet;
            row
        })
        .collect();
    for chunk in insert_chunks(&attempts) {
        attempts::Entity::insert_many(chunk.to_vec())
            .exec(&txn)
            .await?;
    }

    // Keys borrow from the batch: a batch has thousands of records and a handful of groups.
    type GroupKey<'a> = (i64, &'a str, &'a str, &'a str, &'a str, &'a str);
    // foldhash: these maps are filled once per record, where SipHash's cost showed.
    let mut groups: HashMap<GroupKey, Sums, foldhash::fast::RandomState> = HashMap::default();
    let mut seen: HashMap<&str, (i64, i64), foldhash::fast::RandomState> = HashMap::default();
    for record in batch {
        let r = &record.request;
        let key = (
            r.ts_ms - r.ts_ms.rem_euclid(HOUR_MS),
            model_of(r),
            r.provider_id.as_deref().unwrap_or_default(),
            r.source.as_deref().unwrap_or_default(),
            r.project.as_deref().unwrap_or_default(),
            r.key_label.as_deref().unwrap_or_default(),
        );
        groups.entry(key).or_default().add(&Sums::of(r));
        if let Some(project) = r.project.as_deref() {
            let entry = seen.entry(project).or_insert((r.ts_ms, r.ts_ms));
            entry.0 = Ord::min(entry.0, r.ts_ms);
            entry.1 = Ord::max(entry.1, r.ts_ms);
        }
    }
    let groups: Vec<(GroupKey, Sums)> = groups.into_iter().collect();
    let rollup = rollup_upsert();
    for chunk in insert_chunks(&groups) {
        let mut values = Vec::with_capacity(chunk.len() * rollup.columns.len());
        for ((hour_ms, model, provider_id, source, project, key_label), s) in chunk {
            values.push(Value::from(*hour_ms));
            for key in [model, provider_id, source, project, key_label] {
                values.push(Value::from(key.to_string()));
            }
            s.push_values(&mut values);
        }
        let columns: Vec<&str> = rollup.columns.iter().map(String::as_str).collect();
        let sql = insert_sql(
            backend,
            "rollups_hourly",
            &columns,
            chunk.len(),
            &rollup.tail,
        );
        txn.execute_raw(Statement::from_sql_and_values(backend, sql, values))
            .await?;
    }

    let projects: Vec<projects::ActiveModel> = seen
        .into_iter()
        .map(|(id, (first_seen_ms, last_seen_ms))| {
            projects::ActiveModel::from(projects::Model {
                id: id.to_string(),
                first_seen_ms,
                last_seen_ms,
            })
        })
        .collect();
    if !projects.is_empty() {
        projects::Entity::insert_many(projects)
            .on_conflict(
                OnConflict::column(projects::Column::Id)
                    .value(
                        projects::Column::FirstSeenMs,
                        Expr::cust("CASE WHEN excluded.first_seen_ms < projects.first_seen_ms THEN excluded.first_seen_ms ELSE projects.first_seen_ms END"),
                    )
                    .value(
                        projects::Column::LastSeenMs,
                        Expr::cust("CASE WHEN excluded.last_seen_ms > projects.last_seen_ms THEN excluded.last_seen_ms ELSE projects.last_seen_ms END"),
                    )
                    .to_owned(),
            )
            .exec(&txn)
            .await?;
    }
    txn.commit().await
}

/// Most ids per `SELECT … WHERE id IN (…)`.
const LOOKUP_CHUNK: usize = 500;

/// Writes the records of `batch` the database does not have yet (as [`write_batch`]); returns
/// how many that was. For a batch that may have been written before — replayed from the spool
/// after a crash, or retried after an error that may have followed its commit — so that its
/// rollups are not counted twice.
pub async fn write_unwritten(
    db: &DatabaseConnection,
    batch: &[LedgerRecord],
) -> Result<usize, DbErr> {
    let mut written: std::collections::HashSet<String, foldhash::fast::RandomState> =
        Default::default();
    for chunk in batch.chunks(LOOKUP_CHUNK) {
        let ids: Vec<String> = chunk.iter().map(|r| r.request.id.clone()).collect();
        let found: Vec<String> = requests::Entity::find()
            .select_only()
            .column(requests::Column::Id)
            .filter(requests::Column::Id.is_in(ids))
            .into_tuple()
            .all(db)
            .await?;
        written.extend(found);
    }
    // `insert` also leaves out a second copy of an id within the batch.
    let keep: Vec<bool> = batch
        .iter()
        .map(|r| written.insert(r.request.id.clone()))
        .collect();
    if keep.iter().all(|k| *k) {
        write_batch(db, batch).await?;
        return Ok(batch.len());
    }
    let rest: Vec<LedgerRecord> = batch
        .iter()
        .zip(&keep)
        .filter(|(_, keep)| **keep)
        .map(|(r, _)| r.clone())
        .collect();
    if !rest.is_empty() {
        write_batch(db, &rest).await?;
    }
    Ok(rest.len())
}

/// A time window in Unix milliseconds, either end open.
#[derive(Debug, Clone, Copy, Default)]
pub struct Window {
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
}

/// Sums per group over a window: whole hours from the rollups, the partial hours at either
/// end from the raw records. Stays fast however many records there are.
pub async fn group_sums(db: &DatabaseConnection, window: Window) -> Result<Vec<GroupSums>, DbErr> {
    let ceil_hour = |t: i64| t + (HOUR_MS - t.rem_euclid(HOUR_MS)) % HOUR_MS;
    let floor_hour = |t: i64| t - t.rem_euclid(HOUR_MS);
    let full_from = window.since_ms.map(ceil_hour);
    let full_to = window.until_ms.map(floor_hour);
    if let (Some(from), Some(to)) = (full_from, full_to) {
        if from >= to {
            // The window lies within one hour (or two partial hours): raw records only.
            return raw_group_sums(db, window.since_ms, window.until_ms).await;
        }
    }
    let mut out = rollup_group_sums(db, full_from, full_to).await?;
    if let (Some(since), Some(from)) = (window.since_ms, full_from) {
        if since < from {
            out.extend(raw_group_sums(db, Some(since), Some(from)).await?);
        }
    }
    if let (Some(until), Some(to)) = (window.until_ms, full_to) {
        if to < until {
            out.extend(raw_group_sums(db, Some(to), Some(until)).await?);
        }
    }
    Ok(out)
}

async fn rollup_group_sums(
    db: &DatabaseConnection,
    from: Option<i64>,
    to: Option<i64>,
) -> Result<Vec<GroupSums>, DbErr> {
    use rollups_hourly::Column as R;
    let mut query = rollups_hourly::Entity::find()
        .select_only()
        .column(R::Model)
        .column(R::ProviderId)
        .column(R::Source)
        .column(R::Project)
        .column(R::KeyLabel);
    for c in sums::columns() {
        query = query.column_as(Expr::cust(c.of_rollups.as_str()), c.name.as_str());
    }
    if let Some(from) = from {
        query = query.filter(R::HourMs.gte(from));
    }
    if let Some(to) = to {
        query = query.filter(R::HourMs.lt(to));
    }
    query
        .group_by(R::Model)
        .group_by(R::ProviderId)
        .group_by(R::Source)
        .group_by(R::Project)
        .group_by(R::KeyLabel)
        .into_model::<GroupSums>()
        .all(db)
        .await
}

async fn raw_group_sums(
    db: &DatabaseConnection,
    since: Option<i64>,
    until: Option<i64>,
) -> Result<Vec<GroupSums>, DbErr> {
    use requests::Column as C;
    let dims = [
        ("model", "COALESCE(model_used, model_requested, '')"),
        ("provider_id", "COALESCE(provider_id, '')"),
        ("source", "COALESCE(source, '')"),
        ("project", "COALESCE(project, '')"),
        ("key_label", "COALESCE(key_label, '')"),
    ];
    let mut query = requests::Entity::find().select_only();
    for (alias, expr) in dims {
        query = query.column_as(Expr::cust(expr), alias);
    }
    for c in sums::columns() {
        query = query.column_as(Expr::cust(c.of_records.as_str()), c.name.as_str());
    }
    if let Some(since) = since {
        query = query.filter(C::TsMs.gte(since));
    }
    if let Some(until) = until {
        query = query.filter(C::TsMs.lt(until));
    }
    for (_, expr) in dims {
        query = query.group_by(Expr::cust(expr));
    }
    query.into_model::<GroupSums>().all(db).await
}

/// Which records to list.
#[derive(Debug, Clone, Default)]
pub struct RecordFilter {
    pub project: Option<String>,
    pub source: Option<String>,
    pub model: Option<String>,
    pub provider: Option<String>,
    pub key_label: Option<String>,
    /// `ok`, `error` or `mitigated`.
    pub outcome: Option<String>,
    /// An HTTP status.
    pub status: Option<i32>,
    pub window: Window,
    pub limit: u64,
    pub offset: u64,
}

/// Records matching the filter, most recent first.
pub async fn records(
    db: &DatabaseConnection,
    f: &RecordFilter,
) -> Result<Vec<requests::Model>, DbErr> {
    use requests::Column as C;
    let mut query = requests::Entity::find();
    if let Some(v) = &f.project {
        query = query.filter(C::Project.eq(v.clone()));
    }
    if let Some(v) = &f.source {
        query = query.filter(C::Source.eq(v.clone()));
    }
    if let Some(v) = &f.model {
        query = query.filter(
            C::ModelUsed
                .eq(v.clone())
                .or(C::ModelRequested.eq(v.clone())),
        );
    }
    if let Some(v) = &f.provider {
        query = query.filter(C::ProviderId.eq(v.clone()));
    }
    if let Some(v) = &f.key_label {
        query = query.filter(C::KeyLabel.eq(v.clone()));
    }
    if let Some(v) = &f.outcome {
        query = query.filter(C::Outcome.eq(v.clone()));
    }
    if let Some(v) = f.status {
        query = query.filter(C::Status.eq(v));
    }
    if let Some(v) = f.window.since_ms {
        query = query.filter(C::TsMs.gte(v));
    }
    if let Some(v) = f.window.until_ms {
        query = query.filter(C::TsMs.lt(v));
    }
    // The drivers bind LIMIT and OFFSET as i64 and panic on a larger u64 (sea-query-sqlx
    // unwraps the conversion); no table has that many rows, so the page is empty either way.
    let bound = |n: u64| std::cmp::min(n, i64::MAX as u64);
    query
        .order_by_desc(C::TsMs)
        .order_by_desc(C::Id)
        .limit(bound(f.limit))
        .offset(bound(f.offset))
        .all(db)
        .await
}

/// Projects, optionally only those seen since `active_since_ms`, most recently seen first.
pub async fn projects(
    db: &DatabaseConnection,
    active_since_ms: Option<i64>,
) -> Result<Vec<projects::Model>, DbErr> {
    let mut query = projects::Entity::find();
    if let Some(since) = active_since_ms {
        query = query.filter(projects::Column::LastSeenMs.gte(since));
    }
    query
        .order_by_desc(projects::Column::LastSeenMs)
        .all(db)
        .await
}

/// Whether a project has ever sent a request.
pub async fn project_exists(db: &DatabaseConnection, id: &str) -> Result<bool, DbErr> {
    Ok(projects::Entity::find_by_id(id.to_string())
        .one(db)
        .await?
        .is_some())
}

/// Deletes raw records (and their attempts) older than `cutoff_ms`; rollups stay.
pub async fn delete_before(db: &DatabaseConnection, cutoff_ms: i64) -> Result<u64, DbErr> {
    let attempts = attempts::Entity::delete_many()
        .filter(attempts::Column::TsMs.lt(cutoff_ms))
        .exec(db)
        .await?;
    let requests = requests::Entity::delete_many()
        .filter(requests::Column::TsMs.lt(cutoff_ms))
        .exec(db)
        .await?;
    Ok(requests.rows_affected + attempts.rows_affected)
}

/// Sums of the requests in one time bucket (an hour or a day), from the hourly rollups.
#[derive(Debug, Clone, PartialEq, FromQueryResult)]
pub struct BucketSums {
    /// Start of the bucket, Unix milliseconds.
    pub bucket_ms: i64,
    #[sea_orm(nested)]
    pub sums: Sums,
}

/// Sums per bucket of `bucket_ms` (an hour or a day) over the hours from `from_ms` (inclusive)
/// to `to_ms` (exclusive), both on hour boundaries. Read from the hourly rollups alone, one
/// `GROUP BY` over at most the window's hours × groups: fast however large the ledger.
pub async fn bucket_sums(
    db: &DatabaseConnection,
    from_ms: i64,
    to_ms: i64,
    bucket_ms: i64,
) -> Result<Vec<BucketSums>, DbErr> {
    use rollups_hourly::Column as R;
    // Integer arithmetic that SQLite and PostgreSQL evaluate alike (hour_ms is never negative).
    let bucket = format!("(hour_ms - (hour_ms % {bucket_ms}))");
    let mut query = rollups_hourly::Entity::find()
        .select_only()
        .column_as(Expr::cust(bucket.clone()), "bucket_ms");
    for c in sums::columns() {
        query = query.column_as(Expr::cust(c.of_rollups.as_str()), c.name.as_str());
    }
    query
        .filter(R::HourMs.gte(from_ms))
        .filter(R::HourMs.lt(to_ms))
        .group_by(Expr::cust(bucket.clone()))
        .order_by_asc(Expr::cust(bucket))
        .into_model::<BucketSums>()
        .all(db)
        .await
}
