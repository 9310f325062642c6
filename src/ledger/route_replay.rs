//! Past traffic routed again under a profile (`POST /v1/route/replay`): the ledger's answered
//! requests read in pages, each routed from its recorded needs and tokens, priced with the
//! gateway's prices for its actual tokens, timed with the latency the router expects, and
//! summed beside what it actually cost and took.
//!
//! Not to be confused with [`super::replay`], which writes the spool back at start-up.

use std::collections::HashMap;
use std::sync::Arc;

use entities::requests;
use sea_orm::sea_query::{Condition, Expr};
use sea_orm::{
    ColumnTrait, DatabaseConnection, DbErr, EntityTrait, FromQueryResult, QueryFilter, QueryOrder,
    QuerySelect,
};
use serde::Serialize;

use super::pricing::{Price, Pricing};
use super::report::rfc3339;
use crate::api::{ApiFormat, Operation, Usage};
use crate::catalog::{Capabilities, Capability, Catalog};
use crate::providers::snapshot::RegistrySnapshot;
use crate::router::needs::Needs;
use crate::router::{RouteQuery, Routing};

/// Unroutable requests whose reason the answer shows.
const EXAMPLES: usize = 5;
/// Rows of `by_model` in the answer.
const TOP_MODELS: usize = 20;

/// A past answered request: what routing it again and comparing needs.
#[derive(Debug, Clone, Default, FromQueryResult)]
pub struct PastRequest {
    pub id: String,
    pub ts_ms: i64,
    pub endpoint: String,
    pub provider_id: String,
    /// The model that answered, else the one asked for.
    pub model: String,
    pub latency_ms: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cached_input_tokens: i64,
    pub cache_write_tokens: i64,
    pub cost_usd: Option<f64>,
    pub needs: Option<String>,
    pub prompt_tokens_estimate: Option<i64>,
    pub max_tokens: Option<i64>,
}

/// Where a page of past requests starts: after this record (in time, then id, order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct After {
    pub ts_ms: i64,
    pub id: String,
}

/// One page of past requests to read.
#[derive(Debug, Clone)]
pub struct PastPage {
    /// Start (inclusive) and end (exclusive), Unix milliseconds.
    pub since_ms: i64,
    pub until_ms: i64,
    pub after: Option<After>,
    pub limit: u64,
}

/// The answered requests of a window (status under 400, a provider, some tokens, a chat or
/// messages call), oldest first, from `page.after` on. Pages by key, not offset: each page
/// costs the same however deep into the window it lies.
pub async fn past_requests(
    db: &DatabaseConnection,
    page: &PastPage,
) -> Result<Vec<PastRequest>, DbErr> {
    use requests::Column as C;
    let mut query = requests::Entity::find()
        .select_only()
        .columns([
            C::Id,
            C::TsMs,
            C::Endpoint,
            C::ProviderId,
            C::LatencyMs,
            C::InputTokens,
            C::OutputTokens,
            C::CachedInputTokens,
            C::CacheWriteTokens,
            C::CostUsd,
            C::Needs,
            C::PromptTokensEstimate,
            C::MaxTokens,
        ])
        .column_as(
            Expr::cust("COALESCE(model_used, model_requested, '')"),
            "model",
        )
        .filter(C::TsMs.gte(page.since_ms))
        .filter(C::TsMs.lt(page.until_ms))
        .filter(C::Status.lt(400))
        .filter(C::ProviderId.is_not_null())
        .filter(C::Endpoint.is_in([
            Operation::ChatCompletions.as_str(),
            Operation::Messages.as_str(),
        ]))
        .filter(
            Condition::any()
                .add(C::InputTokens.gt(0))
                .add(C::OutputTokens.gt(0)),
        );
    if let Some(after) = &page.after {
        query = query.filter(
            Condition::any().add(C::TsMs.gt(after.ts_ms)).add(
                Condition::all()
                    .add(C::TsMs.eq(after.ts_ms))
                    .add(C::Id.gt(after.id.clone())),
            ),
        );
    }
    query
        .order_by_asc(C::TsMs)
        .order_by_asc(C::Id)
        .limit(page.limit.min(i64::MAX as u64))
        .into_model::<PastRequest>()
        .all(db)
        .await
}

impl PastRequest {
    /// What the request needed, as the router reads it: the recorded capabilities; as the
    /// prompt, the tokens the provider counted (the estimate where it counted none); the
    /// output room the client asked for.
    pub fn needs(&self) -> Needs {
        let mut capabilities = Capabilities::default();
        for name in self.needs.as_deref().unwrap_or_default().split(',') {
            if let Some(c) = Capability::ALL.into_iter().find(|c| c.as_str() == name) {
                capabilities.insert(c);
            }
        }
        let prompt = match self.input_tokens {
            0 => self.prompt_tokens_estimate.unwrap_or(0),
            n => n,
        };
        Needs {
            capabilities,
            prompt_tokens: u64::try_from(prompt).unwrap_or(0),
            max_tokens: self.max_tokens.and_then(|m| u64::try_from(m).ok()),
            min_context: None,
            conversation: None,
        }
    }

    /// The API the client spoke.
    pub fn api(&self) -> ApiFormat {
        if self.endpoint == Operation::Messages.as_str() {
            Operation::Messages.api()
        } else {
            Operation::ChatCompletions.api()
        }
    }

    fn usage(&self) -> Usage {
        let n = |t: i64| u64::try_from(t).unwrap_or(0);
        Usage {
            input: n(self.input_tokens),
            output: n(self.output_tokens),
            cached_input: n(self.cached_input_tokens),
            cache_write: n(self.cache_write_tokens),
        }
    }
}

/// Routes past requests again under one profile, over the providers, catalog, prices and
/// live figures of the moment it was made.
pub struct Replayer {
    routing: Arc<Routing>,
    profile: String,
    snapshot: Arc<RegistrySnapshot>,
    catalog: Arc<Catalog>,
    pricing: Arc<Pricing>,
    today: Arc<str>,
}

impl Replayer {
    /// A replayer of `profile`; the error (an unknown profile) lists the known ones.
    pub fn new(
        routing: Arc<Routing>,
        profile: &str,
        snapshot: Arc<RegistrySnapshot>,
        catalog: Arc<Catalog>,
        pricing: Arc<Pricing>,
    ) -> Result<Self, String> {
        let profile = routing.profile(profile)?.id.clone();
        Ok(Self {
            routing,
            profile,
            snapshot,
            catalog,
            pricing,
            today: crate::router::today(),
        })
    }

    /// Routes each request of `page` and adds it to `tally`.
    pub fn replay(&self, tally: &mut Tally, page: &[PastRequest]) {
        let Ok(profile) = self.routing.profile(&self.profile) else {
            return;
        };
        for past in page {
            let query = RouteQuery {
                api: Some(past.api()),
                profile,
                needs: past.needs(),
                today: self.today.clone(),
                task: None,
                pinned: None,
                // A replay asks what the profile prefers, not how load would have spread.
                balance: false,
                explain: false,
            };
            let routed = self
                .routing
                .route(&self.snapshot, &self.catalog, &query)
                .map_err(|none| none.summary())
                .and_then(|decision| {
                    decision
                        .targets
                        .into_iter()
                        .next()
                        .ok_or_else(|| "the router returned an empty route".to_string())
                });
            let primary = match routed {
                Ok(routed) => routed,
                Err(reason) => {
                    tally.unroutable(past, reason);
                    continue;
                }
            };
            let usage = past.usage();
            let card = &primary.card;
            let price = self
                .pricing
                .price(&[&primary.model, &card.id], primary.provider.kind)
                .unwrap_or(Price {
                    input_per_mtok: card.input_per_mtok,
                    output_per_mtok: card.output_per_mtok,
                    cached_input_per_mtok: card.cached_input_per_mtok,
                    cache_write_per_mtok: card.cache_write_per_mtok,
                    long_context: card.long_context,
                });
            // The latency and the quality the router scored it by (live figures where it has
            // them, the card's otherwise), over the request's actual output.
            let latency =
                primary.ttft_ms + usage.output as f64 / primary.tokens_per_s.max(1e-3) * 1000.0;
            tally.routed(
                past,
                Replayed {
                    provider: &primary.provider.id,
                    model: &primary.model,
                    cost_usd: price.cost(&usage),
                    latency_ms: latency,
                    quality: primary.quality,
                },
            );
        }
    }
}

/// One request as replayed.
struct Replayed<'a> {
    provider: &'a str,
    model: &'a str,
    cost_usd: f64,
    latency_ms: f64,
    quality: f64,
}

/// From provider and model, to provider and model.
type Move = (String, String, String, String);

/// The sums of a replay so far.
#[derive(Debug, Default)]
pub struct Tally {
    /// The last request added (where the next page starts).
    pub last: Option<After>,
    requests: u64,
    actual_cost: f64,
    actual_unpriced: u64,
    actual_latencies: Vec<i64>,
    replayed_cost: f64,
    replayed_latencies: Vec<f64>,
    quality_sum: f64,
    unroutable: u64,
    unroutable_cost: f64,
    examples: Vec<UnroutableExample>,
    by_model: HashMap<Move, (u64, f64, f64)>,
}

impl Tally {
    /// Requests added so far.
    pub fn requests(&self) -> u64 {
        self.requests
    }

    fn seen(&mut self, past: &PastRequest) {
        self.requests += 1;
        self.last = Some(After {
            ts_ms: past.ts_ms,
            id: past.id.clone(),
        });
    }

    fn unroutable(&mut self, past: &PastRequest, reason: String) {
        self.seen(past);
        self.unroutable += 1;
        self.unroutable_cost += past.cost_usd.unwrap_or(0.0);
        if self.examples.len() < EXAMPLES {
            self.examples.push(UnroutableExample {
                request_id: past.id.clone(),
                model: past.model.clone(),
                reason,
            });
        }
    }

    fn routed(&mut self, past: &PastRequest, to: Replayed<'_>) {
        self.seen(past);
        let actual = past.cost_usd.unwrap_or(0.0);
        self.actual_cost += actual;
        self.actual_unpriced += u64::from(past.cost_usd.is_none());
        self.actual_latencies.push(past.latency_ms);
        self.replayed_cost += to.cost_usd;
        self.replayed_latencies.push(to.latency_ms);
        self.quality_sum += to.quality;
        let key = (
            past.provider_id.clone(),
            past.model.clone(),
            to.provider.to_string(),
            to.model.to_string(),
        );
        let entry = self.by_model.entry(key).or_default();
        entry.0 += 1;
        entry.1 += actual;
        entry.2 += to.cost_usd;
    }

    /// The answer. `truncated_at`: the time of the first request the limit left out.
    pub fn report(
        self,
        profile: String,
        since_ms: i64,
        until_ms: i64,
        truncated_at: Option<i64>,
    ) -> ReplayReport {
        let routed = self.requests - self.unroutable;
        let mean = |sum: f64| (routed > 0).then(|| sum / routed as f64);
        let mut actual: Vec<f64> = self.actual_latencies.iter().map(|l| *l as f64).collect();
        let mut replayed = self.replayed_latencies;
        let savings = self.actual_cost - self.replayed_cost;
        let mut by_model: Vec<ModelShift> = self
            .by_model
            .into_iter()
            .map(
                |((from_provider, from_model, to_provider, to_model), (n, a, r))| ModelShift {
                    from_provider,
                    from_model,
                    to_provider,
                    to_model,
                    requests: n,
                    actual_cost_usd: a,
                    replayed_cost_usd: r,
                },
            )
            .collect();
        by_model.sort_by(|a, b| {
            b.requests
                .cmp(&a.requests)
                .then(b.actual_cost_usd.total_cmp(&a.actual_cost_usd))
                .then_with(|| {
                    (&a.from_provider, &a.from_model, &a.to_provider, &a.to_model).cmp(&(
                        &b.from_provider,
                        &b.from_model,
                        &b.to_provider,
                        &b.to_model,
                    ))
                })
        });
        by_model.truncate(TOP_MODELS);
        ReplayReport {
            profile,
            since: rfc3339(since_ms),
            until: rfc3339(until_ms),
            requests: self.requests,
            routed,
            unroutable: Unroutable {
                requests: self.unroutable,
                actual_cost_usd: self.unroutable_cost,
                examples: self.examples,
            },
            truncated: truncated_at.is_some(),
            replayed_until: truncated_at.map(rfc3339),
            actual: ActualFigures {
                cost_usd: self.actual_cost,
                unpriced_requests: self.actual_unpriced,
                latency_ms_mean: mean(actual.iter().sum()),
                latency_ms_p50: median(&mut actual),
            },
            replayed: ReplayedFigures {
                cost_usd: self.replayed_cost,
                latency_ms_mean: mean(replayed.iter().sum()),
                latency_ms_p50: median(&mut replayed),
                quality_mean: mean(self.quality_sum),
            },
            savings_usd: savings,
            savings_pct: (self.actual_cost > 0.0).then(|| savings / self.actual_cost * 100.0),
            by_model,
        }
    }
}

/// The middle value (the mean of the two middle ones for an even count); None for none.
fn median(values: &mut [f64]) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(values[n / 2]),
        _ => Some((values[n / 2 - 1] + values[n / 2]) / 2.0),
    }
}

/// `POST /v1/route/replay`'s answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReplayReport {
    pub profile: String,
    /// The window replayed: start (inclusive) and end (exclusive), RFC 3339.
    pub since: String,
    pub until: String,
    /// Answered requests of the window replayed (status under 400, a provider, tokens).
    pub requests: u64,
    /// Those the profile routes today; `actual` and `replayed` both sum these, so that they
    /// compare the same requests.
    pub routed: u64,
    pub unroutable: Unroutable,
    /// The limit cut the window: only requests before `replayed_until` were replayed.
    pub truncated: bool,
    /// When truncated: the time of the first request left out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replayed_until: Option<String>,
    /// What the routed requests cost and took.
    pub actual: ActualFigures,
    /// What they would have cost and taken on the profile's choice.
    pub replayed: ReplayedFigures,
    /// `actual.cost_usd - replayed.cost_usd`: negative when the profile costs more.
    pub savings_usd: f64,
    /// `savings_usd` as a percentage of `actual.cost_usd` (absent when that is 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub savings_pct: Option<f64>,
    /// Where the requests went and would go, the 20 largest moves by requests.
    pub by_model: Vec<ModelShift>,
}

/// The requests no candidate fits under the profile.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Unroutable {
    pub requests: u64,
    /// What they actually cost (not in `actual.cost_usd`).
    pub actual_cost_usd: f64,
    /// The first five, with the router's account of why.
    pub examples: Vec<UnroutableExample>,
}

/// One unroutable request.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UnroutableExample {
    pub request_id: String,
    /// The model that served it.
    pub model: String,
    /// Which layer dropped what, as the proxy's `no_route` error says it.
    pub reason: String,
}

/// What the routed requests actually cost and took.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ActualFigures {
    /// The ledger's `cost_usd`, summed.
    pub cost_usd: f64,
    /// Requests of a model without a known price: their cost is not in `cost_usd`.
    pub unpriced_requests: u64,
    /// Mean and median of the recorded latency (the whole call), ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms_mean: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms_p50: Option<f64>,
}

/// What the routed requests would have cost and taken on the profile's primary choice.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReplayedFigures {
    /// The gateway's price of the chosen model (long-context tiers included) for each
    /// request's actual input, output, cached and cache-write tokens, summed.
    pub cost_usd: f64,
    /// Mean and median of the expected latency, ms: time to first token plus the actual
    /// output tokens at the output rate (the card's priors, or live medians once there are
    /// `min_live_samples`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms_mean: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms_p50: Option<f64>,
    /// Mean of the chosen cards' quality prior for the profile's task, 0–1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quality_mean: Option<f64>,
}

/// Requests that went to one model and would go to another.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ModelShift {
    pub from_provider: String,
    pub from_model: String,
    pub to_provider: String,
    pub to_model: String,
    pub requests: u64,
    pub actual_cost_usd: f64,
    pub replayed_cost_usd: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median(&mut []), None);
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), Some(2.5));
    }

    #[test]
    fn the_api_is_the_one_the_client_spoke() {
        let past = |endpoint: &str| PastRequest {
            endpoint: endpoint.into(),
            ..PastRequest::default()
        };
        assert_eq!(past("chat_completions").api(), ApiFormat::OpenAi);
        assert_eq!(past("messages").api(), ApiFormat::Anthropic);
    }

    #[test]
    fn needs_come_from_the_record_and_the_prompt_from_its_actual_tokens() {
        let past = PastRequest {
            needs: Some("tools,vision,no-such-capability".into()),
            input_tokens: 1_200,
            prompt_tokens_estimate: Some(900),
            max_tokens: Some(300),
            ..PastRequest::default()
        };
        let needs = past.needs();
        assert_eq!(
            needs.capabilities,
            Capabilities::of(&[Capability::Tools, Capability::Vision])
        );
        assert_eq!(needs.prompt_tokens, 1_200);
        assert_eq!(needs.max_tokens, Some(300));
        let estimated = PastRequest {
            input_tokens: 0,
            ..past
        };
        assert_eq!(estimated.needs().prompt_tokens, 900);
    }
}
