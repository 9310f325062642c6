//! One row per upstream try of a request, for failover and the errors view.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// An upstream attempt.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "attempts")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub request_id: String,
    pub ts_ms: i64,
    /// 0 for the first try.
    pub attempt: i32,
    pub provider_id: String,
    pub model: String,
    /// The upstream's status, when it answered.
    pub status: Option<i32>,
    pub error_kind: Option<String>,
    pub error_message: Option<String>,
    pub latency_ms: i64,
    /// Failed, but a later attempt of the same request succeeded.
    pub mitigated: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
