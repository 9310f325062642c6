//! What routing needs of each ledger record, so that past traffic can be routed again
//! (`POST /v1/route/replay`): the capabilities the request needed, the gateway's estimate of
//! its prompt before the call, and the output the client asked room for.

use sea_orm_migration::prelude::*;

/// Adds `requests.needs`, `requests.prompt_tokens_estimate` and `requests.max_tokens`.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Requests {
    Table,
    /// Capability names, comma-separated in `Capability::ALL` order; NULL when none.
    Needs,
    PromptTokensEstimate,
    MaxTokens,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one thing at a time.
        for column in [
            ColumnDef::new(Requests::Needs).text().null().to_owned(),
            ColumnDef::new(Requests::PromptTokensEstimate)
                .big_integer()
                .null()
                .to_owned(),
            ColumnDef::new(Requests::MaxTokens)
                .big_integer()
                .null()
                .to_owned(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Requests::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            Requests::Needs,
            Requests::PromptTokensEstimate,
            Requests::MaxTokens,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Requests::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
