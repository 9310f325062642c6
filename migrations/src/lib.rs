//! The ledger schema's migrations, applied in order at start-up.

pub use sea_orm_migration::prelude::*;

mod m20261125_000001_create_ledger;
mod m20261202_000001_route_rank;
mod m20261202_000010_signals;
mod m20261202_000020_request_needs;
mod m20261203_000001_request_translated;
mod m20261204_000001_ask_views;
mod m20261205_000001_rollup_histograms;
mod m20261206_000001_rollup_limit_refusals;
mod m20261206_000010_limit_counters;

/// All migrations of the gateway's database.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261125_000001_create_ledger::Migration),
            Box::new(m20261202_000001_route_rank::Migration),
            Box::new(m20261202_000010_signals::Migration),
            Box::new(m20261202_000020_request_needs::Migration),
            Box::new(m20261203_000001_request_translated::Migration),
            Box::new(m20261204_000001_ask_views::Migration),
            Box::new(m20261205_000001_rollup_histograms::Migration),
            Box::new(m20261206_000001_rollup_limit_refusals::Migration),
            Box::new(m20261206_000010_limit_counters::Migration),
        ]
    }
}
