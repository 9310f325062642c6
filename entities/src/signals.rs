//! One row per quality signal reported against a proxied request (`POST /v1/signals`).

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// A signal, with the provider and model that answered its request. (request_id, signal,
/// source) is unique: a repeat is not stored again.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "signals")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// When the signal was reported, Unix milliseconds.
    pub ts_ms: i64,
    /// The `x-request-id` of the proxied answer.
    pub request_id: String,
    /// `thumbs_up`, `thumbs_down`, `score`, `retry`, `bad_format`, `tool_error` or `accepted`.
    pub signal: String,
    /// A `score`'s value, 0 to 1.
    pub value: Option<f64>,
    pub comment: Option<String>,
    /// Who reported it ('' when unnamed).
    pub source: String,
    pub provider_id: String,
    /// The model used (the request's `model_used`).
    pub model: String,
    pub route_profile: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
