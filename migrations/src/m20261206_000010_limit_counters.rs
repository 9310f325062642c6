//! The budget and rate-limit counters that several gateway instances on one PostgreSQL ledger
//! share (src/limits/shared.rs): one row per subject, metric and window, changed only by
//! atomic conditional updates. Created on SQLite too (the schema stays one), where nothing
//! uses it.

use sea_orm_migration::prelude::*;

/// Creates `limit_counters`.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum LimitCounters {
    Table,
    /// `<metric>:<window start ms>:<k|p>:<label or project id>`.
    Key,
    /// Units committed: spend and in-flight reservations and unused leases (micro-USD,
    /// requests or tokens).
    Used,
    /// What the last lease granted (read back in the same statement).
    Granted,
    /// When the row's window ends (Unix ms); null for a total budget.
    ExpiresAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(LimitCounters::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(LimitCounters::Key)
                            .string()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(LimitCounters::Used).big_integer().not_null())
                    .col(
                        ColumnDef::new(LimitCounters::Granted)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .col(
                        ColumnDef::new(LimitCounters::ExpiresAt)
                            .big_integer()
                            .null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_limit_counters_expires_at")
                    .table(LimitCounters::Table)
                    .col(LimitCounters::ExpiresAt)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(LimitCounters::Table).to_owned())
            .await
    }
}
