//! The ledger's tables as sea-orm entities: requests, attempts, hourly rollups, projects, signals.

pub mod attempts;
pub mod projects;
pub mod requests;
pub mod rollups_hourly;
pub mod signals;
