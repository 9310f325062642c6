//! The ledger: requests, attempts, hourly rollups and projects, with the indexes the stats queries use.

use sea_orm_migration::prelude::*;

/// Creates the ledger tables.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Requests {
    Table,
    Id,
    TsMs,
    Project,
    Source,
    KeyLabel,
    Endpoint,
    ProviderId,
    ProviderType,
    ModelRequested,
    ModelUsed,
    Status,
    Outcome,
    ErrorKind,
    ErrorMessage,
    Streamed,
    LatencyMs,
    TtfbMs,
    InputTokens,
    OutputTokens,
    CachedInputTokens,
    CacheWriteTokens,
    CostUsd,
    Priced,
    UsageEstimated,
    SanitizerFindings,
    RouteProfile,
    Attempts,
}

#[derive(DeriveIden)]
enum Attempts {
    Table,
    Id,
    RequestId,
    TsMs,
    Attempt,
    ProviderId,
    Model,
    Status,
    ErrorKind,
    ErrorMessage,
    LatencyMs,
    Mitigated,
}

#[derive(DeriveIden)]
enum RollupsHourly {
    Table,
    HourMs,
    Model,
    ProviderId,
    Source,
    Project,
    KeyLabel,
    Requests,
    Errors,
    InputTokens,
    OutputTokens,
    CachedInputTokens,
    CacheWriteTokens,
    CostUsd,
    Unpriced,
    Estimated,
    LatencyMsSum,
}

#[derive(DeriveIden)]
enum Projects {
    Table,
    Id,
    FirstSeenMs,
    LastSeenMs,
}

fn text(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).string().not_null().to_owned()
}
fn text_null(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).string().null().to_owned()
}
fn big(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col)
        .big_integer()
        .not_null()
        .default(0)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Requests::Table)
                    .if_not_exists()
                    .col(text(Requests::Id).primary_key())
                    .col(ColumnDef::new(Requests::TsMs).big_integer().not_null())
                    .col(text_null(Requests::Project))
                    .col(text_null(Requests::Source))
                    .col(text_null(Requests::KeyLabel))
                    .col(text(Requests::Endpoint))
                    .col(text_null(Requests::ProviderId))
                    .col(text_null(Requests::ProviderType))
                    .col(text_null(Requests::ModelRequested))
                    .col(text_null(Requests::ModelUsed))
                    .col(ColumnDef::new(Requests::Status).integer().not_null())
                    .col(text(Requests::Outcome))
                    .col(text_null(Requests::ErrorKind))
                    .col(text_null(Requests::ErrorMessage))
                    .col(ColumnDef::new(Requests::Streamed).boolean().not_null())
                    .col(big(Requests::LatencyMs))
                    .col(ColumnDef::new(Requests::TtfbMs).big_integer().null())
                    .col(big(Requests::InputTokens))
                    .col(big(Requests::OutputTokens))
                    .col(big(Requests::CachedInputTokens))
                    .col(big(Requests::CacheWriteTokens))
                    .col(ColumnDef::new(Requests::CostUsd).double().null())
                    .col(ColumnDef::new(Requests::Priced).boolean().not_null())
                    .col(
                        ColumnDef::new(Requests::UsageEstimated)
                            .boolean()
                            .not_null(),
                    )
                    .col(text_null(Requests::SanitizerFindings))
                    .col(text_null(Requests::RouteProfile))
                    .col(
                        ColumnDef::new(Requests::Attempts)
                            .integer()
                            .not_null()
                            .default(0),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, cols) in [
            ("idx_requests_ts", vec![Requests::TsMs]),
            (
                "idx_requests_project_ts",
                vec![Requests::Project, Requests::TsMs],
            ),
            (
                "idx_requests_source_ts",
                vec![Requests::Source, Requests::TsMs],
            ),
            (
                "idx_requests_model_ts",
                vec![Requests::ModelUsed, Requests::TsMs],
            ),
        ] {
            let mut index = Index::create();
            index.name(name).table(Requests::Table).if_not_exists();
            for col in cols {
                index.col(col);
            }
            manager.create_index(index.to_owned()).await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(Attempts::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(Attempts::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(text(Attempts::RequestId))
                    .col(ColumnDef::new(Attempts::TsMs).big_integer().not_null())
                    .col(ColumnDef::new(Attempts::Attempt).integer().not_null())
                    .col(text(Attempts::ProviderId))
                    .col(text(Attempts::Model))
                    .col(ColumnDef::new(Attempts::Status).integer().null())
                    .col(text_null(Attempts::ErrorKind))
                    .col(text_null(Attempts::ErrorMessage))
                    .col(big(Attempts::LatencyMs))
                    .col(ColumnDef::new(Attempts::Mitigated).boolean().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_attempts_request")
                    .table(Attempts::Table)
                    .col(Attempts::RequestId)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_attempts_ts")
                    .table(Attempts::Table)
                    .col(Attempts::TsMs)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(RollupsHourly::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(RollupsHourly::HourMs)
                            .big_integer()
                            .not_null(),
                    )
                    .col(text(RollupsHourly::Model))
                    .col(text(RollupsHourly::ProviderId))
                    .col(text(RollupsHourly::Source))
                    .col(text(RollupsHourly::Project))
                    .col(text(RollupsHourly::KeyLabel))
                    .col(big(RollupsHourly::Requests))
                    .col(big(RollupsHourly::Errors))
                    .col(big(RollupsHourly::InputTokens))
                    .col(big(RollupsHourly::OutputTokens))
                    .col(big(RollupsHourly::CachedInputTokens))
                    .col(big(RollupsHourly::CacheWriteTokens))
                    .col(
                        ColumnDef::new(RollupsHourly::CostUsd)
                            .double()
                            .not_null()
                            .default(0.0),
                    )
                    .col(big(RollupsHourly::Unpriced))
                    .col(big(RollupsHourly::Estimated))
                    .col(big(RollupsHourly::LatencyMsSum))
                    .primary_key(
                        Index::create()
                            .col(RollupsHourly::HourMs)
                            .col(RollupsHourly::Model)
                            .col(RollupsHourly::ProviderId)
                            .col(RollupsHourly::Source)
                            .col(RollupsHourly::Project)
                            .col(RollupsHourly::KeyLabel),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Projects::Table)
                    .if_not_exists()
                    .col(text(Projects::Id).primary_key())
                    .col(
                        ColumnDef::new(Projects::FirstSeenMs)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Projects::LastSeenMs)
                            .big_integer()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Requests::Table.into_iden(),
            Attempts::Table.into_iden(),
            RollupsHourly::Table.into_iden(),
            Projects::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}
