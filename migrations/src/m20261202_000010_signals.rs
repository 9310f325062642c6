//! Quality signals reported against proxied requests (`POST /v1/signals`): one row per
//! (request, kind, source), with the provider and model that answered the request.

use sea_orm_migration::prelude::*;

/// Creates `signals` and its indexes.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Signals {
    Table,
    Id,
    TsMs,
    RequestId,
    Signal,
    Value,
    Comment,
    Source,
    ProviderId,
    Model,
    RouteProfile,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let text = |col: Signals| ColumnDef::new(col).string().not_null().to_owned();
        manager
            .create_table(
                Table::create()
                    .table(Signals::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(Signals::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Signals::TsMs).big_integer().not_null())
                    .col(text(Signals::RequestId))
                    .col(text(Signals::Signal))
                    .col(ColumnDef::new(Signals::Value).double().null())
                    .col(ColumnDef::new(Signals::Comment).string().null())
                    .col(
                        ColumnDef::new(Signals::Source)
                            .string()
                            .not_null()
                            .default(""),
                    )
                    .col(text(Signals::ProviderId))
                    .col(text(Signals::Model))
                    .col(ColumnDef::new(Signals::RouteProfile).string().null())
                    .to_owned(),
            )
            .await?;
        // A repeat of the same (request, kind, source) is a no-op: inserts say ON CONFLICT
        // DO NOTHING against the unique index. The evidence (per provider and model) and the
        // report's window use the others.
        for (name, cols, unique) in [
            (
                "idx_signals_once",
                vec![Signals::RequestId, Signals::Signal, Signals::Source],
                true,
            ),
            (
                "idx_signals_provider_model_ts",
                vec![Signals::ProviderId, Signals::Model, Signals::TsMs],
                false,
            ),
            ("idx_signals_ts", vec![Signals::TsMs], false),
        ] {
            let mut index = Index::create();
            index.name(name).table(Signals::Table).if_not_exists();
            for col in cols {
                index.col(col);
            }
            if unique {
                index.unique();
            }
            manager.create_index(index.to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Signals::Table).to_owned())
            .await
    }
}
