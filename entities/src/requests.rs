//! One row per proxied request: who, where, what it cost, how it went.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// A ledger record. Token counts are totals: `input_tokens` includes the cached and
/// cache-write tokens, which are also counted on their own for pricing.
#[derive(Clone, Debug, Default, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "requests")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// Start of the request, Unix milliseconds.
    pub ts_ms: i64,
    pub project: Option<String>,
    pub source: Option<String>,
    pub key_label: Option<String>,
    /// `chat_completions`, `messages` or `count_tokens`.
    pub endpoint: String,
    pub provider_id: Option<String>,
    pub provider_type: Option<String>,
    pub model_requested: Option<String>,
    pub model_used: Option<String>,
    /// HTTP status the client received.
    pub status: i32,
    /// `ok`, `error` or `mitigated` (an attempt failed, a later one succeeded).
    pub outcome: String,
    pub error_kind: Option<String>,
    pub error_message: Option<String>,
    pub streamed: bool,
    pub latency_ms: i64,
    pub ttfb_ms: Option<i64>,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cached_input_tokens: i64,
    pub cache_write_tokens: i64,
    /// None when the model has no known price (`priced` is false).
    pub cost_usd: Option<f64>,
    pub priced: bool,
    /// The provider reported no usage; tokens were estimated.
    pub usage_estimated: bool,
    /// Sanitizer finding kinds and counts as a JSON object; never the matched text.
    pub sanitizer_findings: Option<String>,
    pub route_profile: Option<String>,
    /// The place in the router's ranking of the target that served it (0: the primary);
    /// None for an explicit model.
    #[serde(default)]
    pub route_rank: Option<i32>,
    /// The capabilities the request needed, comma-separated in `Capability::ALL` order
    /// (`tools,vision`); None when it needed none.
    #[serde(default)]
    pub needs: Option<String>,
    /// The gateway's estimate of the prompt's tokens, made before the call.
    #[serde(default)]
    pub prompt_tokens_estimate: Option<i64>,
    /// The output tokens the client asked room for (`max_tokens`, `max_completion_tokens`).
    #[serde(default)]
    pub max_tokens: Option<i64>,
    /// The translation the call went through, client API to upstream API
    /// (`openai->anthropic`, `anthropic->openai`); None when the upstream spoke the client's API.
    #[serde(default)]
    pub translated: Option<String>,
    /// The route plan as a JSON array of `provider/model`, in ranked order (at most 8): the
    /// Router's ranking, or the providers serving an explicit model. None when the request
    /// ended before a plan was made.
    #[serde(default)]
    pub route_plan: Option<String>,
    /// What decided the plan's first place: `score`, `load` or `affinity` (the Router), or
    /// `explicit` (the client named the model).
    #[serde(default)]
    pub route_decided_by: Option<String>,
    /// Targets an open circuit breaker took from this request: removed by the Router's
    /// health layer, or skipped while forwarding.
    #[serde(default)]
    pub breaker_skips: i32,
    pub attempts: i32,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
