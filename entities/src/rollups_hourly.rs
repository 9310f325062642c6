//! Per hour and model/provider/source/project/key label: sums maintained as records land, so stats stay fast.

use sea_orm::entity::prelude::*;
use serde::Serialize;

/// An hourly rollup row. Absent dimensions are stored as '' so that the key is unique.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize)]
#[sea_orm(table_name = "rollups_hourly")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub hour_ms: i64,
    #[sea_orm(primary_key, auto_increment = false)]
    pub model: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub provider_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub source: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub project: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub key_label: String,
    pub requests: i64,
    pub errors: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cached_input_tokens: i64,
    pub cache_write_tokens: i64,
    pub cost_usd: f64,
    pub unpriced: i64,
    pub estimated: i64,
    pub latency_ms_sum: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
