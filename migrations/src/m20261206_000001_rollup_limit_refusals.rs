//! What the portal's overview reads of the limits: per hour, the requests refused for a spent
//! budget, those refused past a rate limit, and those routed under a cheaper profile because
//! a budget ran low.

use sea_orm_migration::prelude::*;

/// Adds `budget_refused`, `rate_limited` and `budget_rerouted` to `rollups_hourly`.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum RollupsHourly {
    Table,
    /// Requests whose error kind is `insufficient_quota`.
    BudgetRefused,
    /// Requests whose error kind is `rate_limit_exceeded`.
    RateLimited,
    /// Requests whose `route_decided_by` is `budget_low`.
    BudgetRerouted,
}

const COLUMNS: [RollupsHourly; 3] = [
    RollupsHourly::BudgetRefused,
    RollupsHourly::RateLimited,
    RollupsHourly::BudgetRerouted,
];

/// A change to `rollups_hourly`, to be given its column.
fn alter() -> TableAlterStatement {
    Table::alter().table(RollupsHourly::Table).to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one thing at a time. Hours rolled up before
        // this migration read 0: their refusals are counted in the raw records only.
        for column in COLUMNS {
            let column = ColumnDef::new(column)
                .big_integer()
                .not_null()
                .default(0)
                .to_owned();
            manager
                .alter_table(alter().add_column(column).to_owned())
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in COLUMNS {
            manager
                .alter_table(alter().drop_column(column).to_owned())
                .await?;
        }
        Ok(())
    }
}
