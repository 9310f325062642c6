//! The Router: model cards and routing profiles in, a ranked route out, explainable layer by
//! layer. The five layers:
//! 1. **inventory**: every model each configured provider serves (catalog cards of its type,
//!    its configured models, what a local server reported);
//! 2. **capability and context**: the caller's API, the capabilities the request needs, its
//!    size against the context window and the output limit;
//! 3. **policy**: disabled providers, the profile's lists, required capabilities and caps,
//!    retired models, open circuit breakers;
//! 4. **scoring**: cost (the request's estimated USD), latency (time to first token plus the
//!    expected output at the stream rate) and quality (the card's prior for the profile's task)
//!    each normalised over the candidates and weighted by the profile; live figures replace the
//!    priors once there are enough samples;
//! 5. **ranking**: by score, into a primary and a failover chain that spreads over providers.
//!
//! The request path calls [`Routing::route`] on shared state (the registry snapshot, the
//! catalog, the breakers, the published live figures): no actor round trip per request.

pub mod breaker;
pub mod live;
pub mod needs;
pub mod profile;

use std::borrow::Cow;
use std::sync::Arc;

use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};

use crate::api::ApiFormat;
use crate::catalog::{Catalog, ModelCard};
use crate::providers::snapshot::RegistrySnapshot;
use crate::providers::{Provider, ProviderKind};
use breaker::{Admission, BreakerPolicy, Breakers};
use live::LiveFigures;
use needs::Needs;
use profile::{Profile, Profiles};

/// `[routing]` settings other than the profiles.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RouterTuning {
    /// Streamed answers needed before live latency replaces a card's prior.
    pub min_live_samples: u32,
    /// Targets in a route at most: the primary and its failover chain.
    pub max_targets: usize,
    /// Output tokens assumed when a request sets no `max_tokens` (for cost and latency).
    pub expected_output_tokens: u64,
    /// How often the live figures are republished, milliseconds.
    pub live_refresh_ms: u64,
    pub breaker: BreakerPolicy,
}

/// What the request path and the admin views share: profiles, breakers, live figures.
pub struct Routing {
    pub profiles: Profiles,
    pub breakers: Breakers,
    pub live: Arc<ArcSwap<LiveFigures>>,
    pub tuning: RouterTuning,
}

/// One routing question.
pub struct RouteQuery<'a> {
    /// The caller's API: until requests are translated, candidates must speak it. None: any.
    pub api: Option<ApiFormat>,
    pub profile: &'a Profile,
    pub needs: Needs,
    /// Today (UTC), for retirement dates, as YYYY-MM-DD.
    pub today: String,
    /// Build the layer-by-layer trace.
    pub explain: bool,
}

/// One place of a route.
#[derive(Debug, Clone)]
pub struct Ranked {
    pub provider: Arc<Provider>,
    pub model: String,
    pub score: f64,
}

/// The router's answer: the ranked targets (first is primary) and, when asked, the trace.
#[derive(Debug)]
pub struct Decision {
    pub profile: String,
    pub targets: Vec<Ranked>,
    pub trace: Option<Trace>,
}

/// A candidate dropped by a layer, and why.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Dropped {
    pub provider: String,
    pub model: String,
    pub reason: String,
}

/// One layer of the trace.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LayerTrace {
    pub layer: u8,
    pub name: &'static str,
    /// `provider/model` of each candidate that entered the layer.
    pub entered: Vec<String>,
    pub dropped: Vec<Dropped>,
    /// How many went on to the next layer.
    pub kept: usize,
}

/// One part of a score.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ScorePart {
    /// The figure scored: USD of this request (cost), milliseconds (latency), 0–1 (quality).
    pub figure: f64,
    /// The figure normalised over the candidates, 0 (worst) to 1 (best).
    pub normalised: f64,
    /// The profile's weight, divided by the sum of the weights.
    pub weight: f64,
    /// `prior` (the card) or `live` (observed).
    pub basis: &'static str,
    /// Samples behind a live figure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub samples: Option<u32>,
}

/// A candidate's score with its parts.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Score {
    pub provider: String,
    pub model: String,
    /// weight·normalised summed over the parts, plus the preference bonus.
    pub total: f64,
    pub cost: ScorePart,
    pub latency: ScorePart,
    pub quality: ScorePart,
    pub preference_bonus: f64,
}

/// The ranked outcome.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RankedView {
    pub rank: usize,
    pub provider: String,
    pub model: String,
    pub score: f64,
}

/// The whole explanation of a decision.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Trace {
    pub layers: Vec<LayerTrace>,
    /// Layer 4's scores, best first.
    pub scores: Vec<Score>,
    /// Layer 5: the primary (rank 0) and the failover chain.
    pub ranking: Vec<RankedView>,
}

/// No candidate survived; the trace says where each one fell.
#[derive(Debug)]
pub struct NoRoute {
    pub profile: String,
    pub trace: Trace,
    /// Open breakers dropped candidates that would otherwise have been routed to.
    pub only_breakers: bool,
    /// The shortest wait until a breaker lets a probe through.
    pub retry_in_ms: Option<u64>,
}

impl NoRoute {
    /// A short account of why nothing was left, for the error message.
    pub fn summary(&self) -> String {
        // Alike drops group together by the reason's words before its figures (the first
        // one's figures shown as an example).
        let mut reasons: Vec<(&str, &str, usize)> = Vec::new();
        for layer in &self.trace.layers {
            for d in &layer.dropped {
                let (key, detail) = d.reason.split_once(": ").unwrap_or((&d.reason, ""));
                match reasons.iter_mut().find(|(r, _, _)| *r == key) {
                    Some((_, _, n)) => *n += 1,
                    None => reasons.push((key, detail, 1)),
                }
            }
        }
        if reasons.is_empty() {
            return "no provider serves any model".into();
        }
        reasons
            .iter()
            .take(6)
            .map(|(r, detail, n)| match detail {
                &"" => format!("{n} × {r}"),
                detail => format!("{n} × {r} (e.g. {detail})"),
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// A model at a provider, with its card.
pub struct Candidate<'a> {
    pub provider: &'a Arc<Provider>,
    /// The provider's position in the configuration (ties go to the earlier).
    pub order: usize,
    /// The model id sent to the provider.
    pub model: Cow<'a, str>,
    pub card: CardRef<'a>,
}

/// A candidate's card: the catalog's, or one made for it (boxed, so that a candidate stays
/// small as the layers move it).
pub enum CardRef<'a> {
    Catalog(&'a ModelCard),
    Made(Box<ModelCard>),
}

impl std::ops::Deref for CardRef<'_> {
    type Target = ModelCard;

    fn deref(&self) -> &ModelCard {
        match self {
            Self::Catalog(card) => card,
            Self::Made(card) => card,
        }
    }
}

/// Layer 1: every model each configured provider serves: for OpenAI and Anthropic the
/// catalog's cards of their type and the configured models the catalog knows; for Azure its
/// deployment and models with a card; for a local server what it reported, with the catalog's
/// card or a card of conservative defaults.
pub fn inventory<'a>(snapshot: &'a RegistrySnapshot, catalog: &'a Catalog) -> Vec<Candidate<'a>> {
    let mut inventory: Vec<Candidate<'a>> = Vec::new();
    for (order, provider) in snapshot.providers.iter().enumerate() {
        let mut push = |model, card| {
            inventory.push(Candidate {
                provider,
                order,
                model,
                card,
            })
        };
        match provider.kind {
            ProviderKind::OpenAi | ProviderKind::Anthropic => {
                for card in catalog
                    .models()
                    .iter()
                    .filter(|c| c.provider_type == provider.kind)
                {
                    push(Cow::Borrowed(card.id.as_str()), CardRef::Catalog(card));
                }
                for model in &provider.models {
                    if let Some(card) = catalog
                        .card(model)
                        .filter(|c| c.provider_type != provider.kind)
                    {
                        push(Cow::Borrowed(model.as_str()), CardRef::Catalog(card));
                    }
                }
            }
            ProviderKind::AzureOpenAi => {
                for model in provider.configured_models() {
                    if let Some(card) = catalog.card(model) {
                        push(Cow::Borrowed(model), CardRef::Catalog(card));
                    }
                }
            }
            ProviderKind::Local => {
                let reported = snapshot.discovered.get(&provider.id);
                for model in reported.iter().flat_map(|m| m.iter()) {
                    // The server's own window binds: it may serve a model with less context
                    // than the model has.
                    let window = snapshot.reported_context(&provider.id, model);
                    let card = match (catalog.local_card(model), window) {
                        (Some(card), Some(w)) if w < card.context_window => {
                            let mut card = card.clone();
                            card.context_window = w;
                            card.max_output_tokens = card.max_output_tokens.min(w);
                            card.sources.limits =
                                Cow::Borrowed("context window reported by the local server");
                            CardRef::Made(Box::new(card))
                        }
                        (Some(card), _) => CardRef::Catalog(card),
                        (None, window) => {
                            CardRef::Made(Box::new(ModelCard::local_default(model, window)))
                        }
                    };
                    push(Cow::Borrowed(model.as_str()), card);
                }
            }
        }
    }
    inventory
}

impl Candidate<'_> {
    fn name(&self) -> String {
        format!("{}/{}", self.provider.id, self.model)
    }
}

/// The candidates of one layer and what the layer dropped.
struct Layer<'a> {
    explain: bool,
    trace: Vec<LayerTrace>,
    kept: Vec<Candidate<'a>>,
}

impl<'a> Layer<'a> {
    /// Runs one filtering layer: `verdict` returns why a candidate is dropped, or None.
    fn filter(
        &mut self,
        layer: u8,
        name: &'static str,
        mut verdict: impl FnMut(&Candidate<'a>) -> Option<Cow<'static, str>>,
    ) {
        let entered = std::mem::take(&mut self.kept);
        let mut trace = LayerTrace {
            layer,
            name,
            entered: Vec::new(),
            dropped: Vec::new(),
            kept: 0,
        };
        for c in entered {
            if self.explain {
                trace.entered.push(c.name());
            }
            match verdict(&c) {
                Some(reason) => {
                    if self.explain {
                        trace.dropped.push(Dropped {
                            provider: c.provider.id.clone(),
                            model: c.model.to_string(),
                            reason: reason.into_owned(),
                        });
                    }
                }
                None => self.kept.push(c),
            }
        }
        trace.kept = self.kept.len();
        if self.explain {
            self.trace.push(trace);
        }
    }
}

/// Log-scale min-max normalisation, lower is better: the lowest figure scores 1, the highest 0.
fn lower_is_better(value: f64, min: f64, max: f64) -> f64 {
    let floor = 1e-9;
    let (v, lo, hi) = (value.max(floor), min.max(floor), max.max(floor));
    if hi <= lo * (1.0 + 1e-12) {
        return 1.0;
    }
    1.0 - (v / lo).ln() / (hi / lo).ln()
}

impl Routing {
    pub fn new(profiles: Profiles, tuning: RouterTuning) -> Self {
        Self {
            profiles,
            breakers: Breakers::new(tuning.breaker),
            live: Arc::new(ArcSwap::from_pointee(LiveFigures::default())),
            tuning,
        }
    }

    /// The profile of an id; the error lists the known ones.
    pub fn profile(&self, id: &str) -> Result<&Profile, String> {
        self.profiles.get(id).ok_or_else(|| {
            format!(
                "unknown routing profile `{id}`; GET /v1/profiles lists them ({})",
                self.profiles.ids()
            )
        })
    }

    /// The estimated cost (USD) and latency (ms, with its basis) of a request on a candidate.
    fn figures(
        &self,
        card: &ModelCard,
        provider: &str,
        model: &str,
        needs: &Needs,
        live: &LiveFigures,
    ) -> Figures {
        let output = needs
            .max_tokens
            .unwrap_or(self.tuning.expected_output_tokens)
            .min(card.max_output_tokens) as f64;
        let prompt = needs.prompt_tokens as f64;
        let (input_rate, output_rate) = match card.long_context {
            Some(tier) if needs.prompt_tokens > tier.above_input_tokens => {
                (tier.input_per_mtok, tier.output_per_mtok)
            }
            _ => (card.input_per_mtok, card.output_per_mtok),
        };
        let cost = (prompt * input_rate + output * output_rate) / 1e6;
        let observed = live
            .get(provider, model)
            .filter(|l| l.latency_samples >= self.tuning.min_live_samples);
        let (ttft, tps, samples) = match observed {
            Some(l) => (
                l.ttft_ms_p50.unwrap_or(card.latency.ttft_ms),
                l.output_tokens_per_s_p50
                    .unwrap_or(card.latency.output_tokens_per_s),
                Some(l.latency_samples),
            ),
            None => (card.latency.ttft_ms, card.latency.output_tokens_per_s, None),
        };
        Figures {
            cost,
            ttft,
            latency: ttft + output / tps.max(1e-3) * 1000.0,
            latency_samples: samples,
        }
    }

    /// Routes one request through the five layers over the current providers and catalog.
    pub fn route<'a>(
        &self,
        snapshot: &'a RegistrySnapshot,
        catalog: &'a Catalog,
        query: &RouteQuery<'_>,
    ) -> Result<Decision, NoRoute> {
        let profile = query.profile;
        let needs = &query.needs;
        let live = self.live.load();
        let now = self.breakers.now();

        // Layer 1: inventory.
        let inventory = inventory(snapshot, catalog);
        let mut layers = Layer {
            explain: query.explain,
            trace: Vec::new(),
            kept: inventory,
        };
        layers.filter(1, "inventory", |_| None);

        // A drop's reason is written out only when the trace is asked for.
        let explain = query.explain;
        macro_rules! reason {
            ($($arg:tt)*) => {
                if explain {
                    Cow::Owned(format!($($arg)*))
                } else {
                    Cow::Borrowed("")
                }
            };
        }
        // Layer 2: capabilities and context.
        layers.filter(2, "capabilities and context", |c| {
            let card = &c.card;
            if let Some(api) = query.api.filter(|api| *api != c.provider.kind.api()) {
                return Some(
                    reason!(
                        "speaks the {} API, the request the {} API: requests are not translated between APIs yet",
                        c.provider.kind.api().name(),
                        api.name()
                    ),
                );
            }
            let mut missing = card.capabilities.missing(needs.capabilities).peekable();
            if missing.peek().is_some() {
                let list: Vec<&str> = missing.map(|m| m.as_str()).collect();
                return Some(reason!("lacks a capability the request needs: {}", list.join(", ")));
            }
            if needs.window() > card.context_window {
                return Some(
                    reason!(
                        "context window too small: the request needs about {} tokens ({} prompt + {} output), the window is {}",
                        needs.window(),
                        needs.prompt_tokens,
                        needs.max_tokens.unwrap_or(0),
                        card.context_window
                    ),
                );
            }
            if let Some(max) = needs.max_tokens.filter(|m| *m > card.max_output_tokens) {
                return Some(
                    reason!(
                        "output limit too small: the request asks for {max} output tokens, the model writes at most {}",
                        card.max_output_tokens
                    ),
                );
            }
            if let Some(min) = needs.min_context.filter(|m| *m > card.context_window) {
                return Some(
                    reason!(
                        "context window too small: at least {min} tokens required, the window is {}",
                        card.context_window
                    ),
                );
            }
            None
        });

        // Layer 3: policy and health.
        let mut breaker_drops = 0usize;
        let mut retry_in: Option<u64> = None;
        let caps = profile.spec.caps;
        layers.filter(3, "policy and health", |c| {
            let card = &c.card;
            if !c.provider.enabled {
                return Some(reason!("provider disabled: `{}`", c.provider.id));
            }
            if let Some(reason) = profile.refuses_provider(c.provider, explain) {
                return Some(reason.into());
            }
            if let Some(reason) = profile.refuses_model(&[card.id.as_str(), &c.model], explain) {
                return Some(reason.into());
            }
            let mut missing = card.capabilities.missing(profile.require).peekable();
            if missing.peek().is_some() {
                let list: Vec<&str> = missing.map(|m| m.as_str()).collect();
                return Some(reason!(
                    "lacks a capability profile `{}` requires: {}",
                    profile.id,
                    list.join(", ")
                ));
            }
            if let Some(date) = card
                .retires
                .as_deref()
                .filter(|d| *d <= query.today.as_str())
            {
                return Some(reason!("retired: since {date}"));
            }
            if let Some(max) = caps.max_input_per_mtok.filter(|m| card.input_per_mtok > *m) {
                return Some(reason!(
                    "over the profile's price cap: input {} USD/Mtok > {max}",
                    card.input_per_mtok
                ));
            }
            if let Some(max) = caps
                .max_output_per_mtok
                .filter(|m| card.output_per_mtok > *m)
            {
                return Some(reason!(
                    "over the profile's price cap: output {} USD/Mtok > {max}",
                    card.output_per_mtok
                ));
            }
            if let Some(min) = caps.min_context.filter(|m| card.context_window < *m) {
                return Some(reason!(
                    "under the profile's minimum context: {} < {min} tokens",
                    card.context_window
                ));
            }
            if let Some(max) = caps.max_ttft_ms {
                let ttft = self
                    .figures(card, &c.provider.id, &c.model, needs, &live)
                    .ttft;
                if ttft > max {
                    return Some(reason!(
                        "over the profile's time-to-first-token cap: {ttft:.0} ms > {max:.0} ms"
                    ));
                }
            }
            if let Admission::Refuse { retry_in_ms } =
                self.breakers.admit(&c.provider.id, &c.model, now, false)
            {
                breaker_drops += 1;
                retry_in = Some(retry_in.map_or(retry_in_ms, |r| r.min(retry_in_ms)));
                return Some(reason!(
                    "circuit breaker open: a probe is let through in {retry_in_ms} ms"
                ));
            }
            None
        });

        // Layer 4: scoring.
        let candidates = std::mem::take(&mut layers.kept);
        let entered: Vec<String> = if query.explain {
            candidates.iter().map(Candidate::name).collect()
        } else {
            Vec::new()
        };
        let figures: Vec<Figures> = candidates
            .iter()
            .map(|c| self.figures(&c.card, &c.provider.id, &c.model, needs, &live))
            .collect();
        let range = |f: fn(&Figures) -> f64| {
            figures
                .iter()
                .map(f)
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                    (lo.min(v), hi.max(v))
                })
        };
        let (cost_lo, cost_hi) = range(|f| f.cost);
        let (lat_lo, lat_hi) = range(|f| f.latency);
        let w = profile.spec.weights;
        let sum = w.cost + w.latency + w.quality;
        let (wc, wl, wq) = (w.cost / sum, w.latency / sum, w.quality / sum);
        let mut scored: Vec<(f64, usize)> = Vec::with_capacity(candidates.len());
        let mut scores: Vec<Score> = Vec::new();
        for (i, (c, f)) in candidates.iter().zip(&figures).enumerate() {
            let cost = lower_is_better(f.cost, cost_lo, cost_hi);
            let latency = lower_is_better(f.latency, lat_lo, lat_hi);
            let quality = c.card.quality.for_task(profile.spec.task).clamp(0.0, 1.0);
            let bonus = profile.preference(c.provider, &c.model);
            let total = wc * cost + wl * latency + wq * quality + bonus;
            scored.push((total, i));
            if query.explain {
                scores.push(Score {
                    provider: c.provider.id.clone(),
                    model: c.model.to_string(),
                    total,
                    cost: ScorePart {
                        figure: f.cost,
                        normalised: cost,
                        weight: wc,
                        basis: "prior",
                        samples: None,
                    },
                    latency: ScorePart {
                        figure: f.latency,
                        normalised: latency,
                        weight: wl,
                        basis: if f.latency_samples.is_some() {
                            "live"
                        } else {
                            "prior"
                        },
                        samples: f.latency_samples,
                    },
                    quality: ScorePart {
                        figure: quality,
                        normalised: quality,
                        weight: wq,
                        basis: "prior",
                        samples: None,
                    },
                    preference_bonus: bonus,
                });
            }
        }

        // Layer 5: ranking. Ties: the cheaper, then the earlier provider, then the model id.
        scored.sort_by(|(a, i), (b, j)| {
            b.total_cmp(a)
                .then(figures[*i].cost.total_cmp(&figures[*j].cost))
                .then(candidates[*i].order.cmp(&candidates[*j].order))
                .then(candidates[*i].model.cmp(&candidates[*j].model))
        });
        let mut chain: Vec<usize> = Vec::with_capacity(self.tuning.max_targets);
        let mut rest: Vec<usize> = scored.iter().map(|(_, i)| *i).collect();
        while chain.len() < self.tuning.max_targets && !rest.is_empty() {
            // The best candidate at a provider not yet in the chain, else the best left.
            let pick = rest
                .iter()
                .position(|i| {
                    !chain
                        .iter()
                        .any(|j| candidates[*j].provider.id == candidates[*i].provider.id)
                })
                .unwrap_or(0);
            chain.push(rest.remove(pick));
        }
        let total_of = |i: usize| {
            scored
                .iter()
                .find(|(_, j)| *j == i)
                .map_or(0.0, |(t, _)| *t)
        };
        let trace = query.explain.then(|| {
            let mut layer_traces = std::mem::take(&mut layers.trace);
            layer_traces.push(LayerTrace {
                layer: 4,
                name: "scoring",
                entered,
                dropped: Vec::new(),
                kept: candidates.len(),
            });
            layer_traces.push(LayerTrace {
                layer: 5,
                name: "ranking",
                entered: scored.iter().map(|(_, i)| candidates[*i].name()).collect(),
                dropped: Vec::new(),
                kept: chain.len(),
            });
            scores.sort_by(|a, b| b.total.total_cmp(&a.total));
            Trace {
                layers: layer_traces,
                scores,
                ranking: chain
                    .iter()
                    .enumerate()
                    .map(|(rank, i)| RankedView {
                        rank,
                        provider: candidates[*i].provider.id.clone(),
                        model: candidates[*i].model.to_string(),
                        score: total_of(*i),
                    })
                    .collect(),
            }
        });
        if chain.is_empty() {
            let trace = match trace {
                Some(trace) => trace,
                // Asked without a trace: run again with one, for the error's explanation.
                None => {
                    let again = RouteQuery {
                        api: query.api,
                        profile: query.profile,
                        needs: query.needs,
                        today: query.today.clone(),
                        explain: true,
                    };
                    return self.route(snapshot, catalog, &again);
                }
            };
            return Err(NoRoute {
                profile: profile.id.clone(),
                // Nothing passed layer 3, and breakers stopped some: closed, they would route.
                only_breakers: breaker_drops > 0,
                retry_in_ms: retry_in,
                trace,
            });
        }
        Ok(Decision {
            profile: profile.id.clone(),
            targets: chain
                .iter()
                .map(|i| Ranked {
                    provider: candidates[*i].provider.clone(),
                    model: candidates[*i].model.to_string(),
                    score: total_of(*i),
                })
                .collect(),
            trace,
        })
    }
}

/// Today's date in UTC as YYYY-MM-DD (the form of the cards' retirement dates).
pub fn today() -> String {
    chrono::Utc::now().format("%Y-%m-%d").to_string()
}

struct Figures {
    cost: f64,
    ttft: f64,
    latency: f64,
    latency_samples: Option<u32>,
}
