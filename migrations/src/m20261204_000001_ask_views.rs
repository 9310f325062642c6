//! Views for `POST /v1/ask`: one row per request and one per attempt, with the day and hour
//! (UTC) and plain column names, so that the SQL a model writes for a question stays simple.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DatabaseBackend};

/// Creates `ask_requests` and `ask_attempts`.
#[derive(DeriveMigrationName)]
pub struct Migration;

/// `day` (YYYY-MM-DD) and `hour` (0–23) of `ts_ms` (Unix milliseconds), UTC, per backend.
fn day_and_hour(backend: DatabaseBackend) -> (&'static str, &'static str) {
    match backend {
        DatabaseBackend::Postgres => (
            "to_char(to_timestamp(ts_ms / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
            "CAST(EXTRACT(HOUR FROM to_timestamp(ts_ms / 1000.0) AT TIME ZONE 'UTC') AS INTEGER)",
        ),
        _ => (
            "strftime('%Y-%m-%d', ts_ms / 1000, 'unixepoch')",
            "CAST(strftime('%H', ts_ms / 1000, 'unixepoch') AS INTEGER)",
        ),
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let (day, hour) = day_and_hour(manager.get_database_backend());
        db.execute_unprepared(&format!(
            "CREATE VIEW ask_requests AS SELECT \
               id, ts_ms, {day} AS day, {hour} AS hour, \
               COALESCE(model_used, model_requested) AS model, model_requested, \
               provider_id AS provider, provider_type, source, project, key_label AS label, \
               endpoint, status, outcome, \
               CASE WHEN outcome = 'error' THEN 1 ELSE 0 END AS is_error, \
               error_kind, streamed, cost_usd, priced, \
               input_tokens, output_tokens, cached_input_tokens, cache_write_tokens, \
               input_tokens + output_tokens AS tokens, \
               latency_ms, ttfb_ms, route_profile, translated, attempts \
             FROM requests"
        ))
        .await?;
        db.execute_unprepared(&format!(
            "CREATE VIEW ask_attempts AS SELECT \
               id, request_id, ts_ms, {day} AS day, {hour} AS hour, attempt, \
               provider_id AS provider, model, status, error_kind, latency_ms, mitigated, \
               CASE WHEN error_kind IS NULL THEN 0 ELSE 1 END AS is_error \
             FROM attempts"
        ))
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared("DROP VIEW IF EXISTS ask_attempts")
            .await?;
        db.execute_unprepared("DROP VIEW IF EXISTS ask_requests")
            .await?;
        Ok(())
    }
}
