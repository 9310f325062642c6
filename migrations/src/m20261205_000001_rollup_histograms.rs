//! What the portal's overview and record views read: per hour, how often failover, the
//! sanitizer and the circuit breakers stepped in, with latency and time-to-first-byte
//! histograms (for p50 and p95 without scanning records); per record, its route trace and how
//! many targets open breakers took from it.

use sea_orm_migration::prelude::*;

/// Adds the rollup counters and histograms, and `requests.route_plan`,
/// `requests.route_decided_by` and `requests.breaker_skips`.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Requests {
    Table,
    /// JSON array of `provider/model`, in ranked order (at most 8).
    RoutePlan,
    /// `score`, `load`, `affinity` (the router) or `explicit` (the client named the model).
    RouteDecidedBy,
    /// Targets an open circuit breaker removed from the route or skipped while forwarding.
    BreakerSkips,
}

#[derive(DeriveIden, Clone, Copy)]
enum RollupsHourly {
    Table,
}

/// The buckets of each histogram; their bounds live with the code that reads them
/// (`ledger::histogram` in the gateway), the schema needs only the count.
const BUCKETS: usize = 16;

/// The counters added to `rollups_hourly`, each a sum of its hour's records.
fn rollup_columns() -> Vec<String> {
    let mut columns: Vec<String> = [
        "mitigated",
        "sanitized",
        "sanitizer_blocked",
        "breaker_steered",
        "ttfb_ms_sum",
        "ttfb_count",
    ]
    .into_iter()
    .map(str::to_string)
    .collect();
    for prefix in ["lat", "ttfb"] {
        columns.extend((0..BUCKETS).map(|i| format!("{prefix}_b{i:02}")));
    }
    columns
}

async fn add_column(
    manager: &SchemaManager<'_>,
    table: impl IntoTableRef,
    column: ColumnDef,
) -> Result<(), DbErr> {
    manager
        .alter_table(Table::alter().table(table).add_column(column).to_owned())
        .await
}

async fn drop_column(
    manager: &SchemaManager<'_>,
    table: impl IntoTableRef,
    column: impl IntoIden,
) -> Result<(), DbErr> {
    manager
        .alter_table(Table::alter().table(table).drop_column(column).to_owned())
        .await
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one thing at a time. Old rows read 0 (or
        // NULL for the route trace) through the column defaults.
        for column in rollup_columns() {
            let column = ColumnDef::new(Alias::new(column))
                .big_integer()
                .not_null()
                .default(0)
                .to_owned();
            add_column(manager, RollupsHourly::Table, column).await?;
        }
        for column in [
            ColumnDef::new(Requests::RoutePlan).text().null().to_owned(),
            ColumnDef::new(Requests::RouteDecidedBy)
                .string()
                .null()
                .to_owned(),
            ColumnDef::new(Requests::BreakerSkips)
                .integer()
                .not_null()
                .default(0)
                .to_owned(),
        ] {
            add_column(manager, Requests::Table, column).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            Requests::RoutePlan,
            Requests::RouteDecidedBy,
            Requests::BreakerSkips,
        ] {
            drop_column(manager, Requests::Table, column).await?;
        }
        for column in rollup_columns() {
            drop_column(manager, RollupsHourly::Table, Alias::new(column)).await?;
        }
        Ok(())
    }
}
