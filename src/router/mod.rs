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

pub mod affinity;
pub mod breaker;
pub mod live;
pub mod needs;
pub mod profile;

use std::borrow::Cow;
use std::sync::Arc;

use arc_swap::{ArcSwap, ArcSwapOption};
use serde::{Deserialize, Serialize};

use crate::api::ApiFormat;
use crate::catalog::{Catalog, ModelCard, TaskKind};
use crate::providers::snapshot::RegistrySnapshot;
use crate::providers::{Provider, ProviderKind};
use crate::signals::{ProviderSignals, Recent, SignalFigures};
use breaker::{Admission, BreakerPolicy, Breakers};
use live::{LiveFigures, ProviderLive};
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
    /// The signals a card's quality prior counts as (`[routing] quality_prior_weight`).
    pub quality_prior_weight: f64,
    /// Scores within this of the best are near-equal: load decides among them.
    pub near_equal: f64,
    pub breaker: BreakerPolicy,
    pub affinity: affinity::AffinitySettings,
}

/// What the request path and the admin views share: profiles, breakers, live figures.
pub struct Routing {
    pub profiles: Profiles,
    /// Each profile's prepared candidates over the current state (see [`PreparedSet`]).
    prepared: PreparedSlots,
    pub breakers: Breakers,
    pub live: Arc<ArcSwap<LiveFigures>>,
    /// The quality signals per provider and model (published by the SignalCollector).
    pub signals: Arc<ArcSwap<SignalFigures>>,
    /// Each conversation's provider and model (prompt-cache affinity).
    pub affinity: affinity::Affinity,
    pub tuning: RouterTuning,
}

/// One routing question.
pub struct RouteQuery<'a> {
    /// The caller's API (None: any). Every candidate serves it: a provider of the other API is
    /// reached through translation (`translate`); the prepared sets are kept per API.
    pub api: Option<ApiFormat>,
    pub profile: &'a Profile,
    pub needs: Needs,
    /// Today (UTC), for retirement dates, as YYYY-MM-DD ([`today`]).
    pub today: Arc<str>,
    /// The request's task kind (`x-task-kind`), over the profile's, for the quality figures.
    pub task: Option<TaskKind>,
    /// The provider and model that served the conversation last (prompt-cache affinity): it
    /// goes first while it passes every layer.
    pub pinned: Option<(&'a str, &'a str)>,
    /// Spread near-equal candidates by load (power of two choices): the request path. Off, the
    /// best score always goes first (replays of past traffic).
    pub balance: bool,
    /// Build the layer-by-layer trace.
    pub explain: bool,
}

/// One place of a route.
#[derive(Debug, Clone)]
pub struct Ranked {
    pub provider: Arc<Provider>,
    pub model: String,
    pub score: f64,
    /// The figures it was scored by: time to first token (ms) and output rate (tokens/s),
    /// live or the card's, and the quality weighed (0–1).
    pub ttft_ms: f64,
    pub tokens_per_s: f64,
    pub quality: f64,
    /// Its card.
    pub card: Arc<ModelCard>,
}

/// The router's answer: the ranked targets (first is primary) and, when asked, the trace.
#[derive(Debug)]
pub struct Decision {
    pub profile: String,
    pub targets: Vec<Ranked>,
    /// What put the primary first.
    pub decided_by: DecidedBy,
    /// Candidates an open circuit breaker dropped (layer 3).
    pub breaker_drops: usize,
    pub trace: Option<Trace>,
}

/// What put a route's primary first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DecidedBy {
    /// The best score.
    Score,
    /// Of the near-equal best, the one with less load × expected latency (of two drawn).
    Load,
    /// The conversation's provider and model (prompt-cache affinity).
    Affinity,
    /// The caller's budget: past `[limits] budget_low_share`, the decision was made under the
    /// profile's `on_budget_low` profile. Set by the caller of [`Routing::route`] (which knows
    /// the budgets), never by the router itself.
    BudgetLow,
}

impl DecidedBy {
    /// The name as serialized (and kept on the ledger record).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Score => "score",
            Self::Load => "load",
            Self::Affinity => "affinity",
            Self::BudgetLow => "budget_low",
        }
    }
}

impl Decision {
    /// Marks the decision (and its trace) as made under the cheaper profile of a low budget.
    pub fn mark_budget_low(&mut self) {
        self.decided_by = DecidedBy::BudgetLow;
        if let Some(trace) = &mut self.trace {
            trace.decided_by = DecidedBy::BudgetLow;
        }
    }
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

/// A near-equal candidate as the power of two choices saw it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LoadView {
    pub provider: String,
    pub model: String,
    /// Requests in flight at the provider.
    pub in_flight: usize,
    /// (in flight + 1) × expected latency (ms): the lower goes first.
    pub load: f64,
}

/// The whole explanation of a decision.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Trace {
    /// What put the primary first: its score, the load among near-equals, or affinity.
    pub decided_by: DecidedBy,
    /// Of near-equal candidates (within `[routing] near_equal` of the best), the two drawn
    /// and their load × latency, when load decided.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub load: Vec<LoadView>,
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
    pub trace: Box<Trace>,
    /// Open breakers dropped candidates that would otherwise have been routed to.
    pub only_breakers: bool,
    /// Candidates an open circuit breaker dropped (layer 3).
    pub breaker_drops: usize,
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
#[derive(Clone)]
pub struct Candidate {
    pub provider: Arc<Provider>,
    /// The provider's position in the configuration (ties go to the earlier).
    pub order: usize,
    /// The model id sent to the provider when it is not the card's id ([`Candidate::model`]).
    own_name: Option<String>,
    /// The catalog's card, or one made for it (a local model the catalog does not know, or
    /// one whose server reports a smaller window).
    pub card: Arc<ModelCard>,
}

/// Layer 1: every model each configured provider serves: for OpenAI and Anthropic the
/// catalog's cards of their type and the configured models the catalog knows; for Azure its
/// deployment and models with a card; for a local server what it reported, with the catalog's
/// card or a card of conservative defaults.
pub fn inventory(snapshot: &RegistrySnapshot, catalog: &Catalog) -> Vec<Candidate> {
    let mut inventory: Vec<Candidate> = Vec::new();
    walk_inventory(snapshot, catalog, |_| true, |c| inventory.push(c));
    inventory
}

/// [`inventory`] as a walk: each provider `serves` lets through, then each of its candidates
/// to `found`, in the inventory's order. A prepared set's rebuild skips a provider the
/// profile refuses without looking at its models, and keeps no list of the rest.
fn walk_inventory(
    snapshot: &RegistrySnapshot,
    catalog: &Catalog,
    mut serves: impl FnMut(&Provider) -> bool,
    mut found: impl FnMut(Candidate),
) {
    for (order, provider) in snapshot.providers.iter().enumerate() {
        if !serves(provider) {
            continue;
        }
        let mut push = |model: &str, card: &Arc<ModelCard>| {
            found(Candidate {
                provider: provider.clone(),
                order,
                own_name: (model != card.id).then(|| model.to_string()),
                card: card.clone(),
            })
        };
        match provider.kind {
            ProviderKind::OpenAi | ProviderKind::Anthropic => {
                for card in catalog
                    .models()
                    .iter()
                    .filter(|c| c.provider_type == provider.kind)
                {
                    push(&card.id, card);
                }
                for model in &provider.models {
                    if let Some(card) = catalog
                        .shared_card(model)
                        .filter(|c| c.provider_type != provider.kind)
                    {
                        push(model, card);
                    }
                }
            }
            ProviderKind::AzureOpenAi => {
                for model in provider.configured_models() {
                    if let Some(card) = catalog.shared_card(model) {
                        push(model, card);
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
                            let mut card = (**card).clone();
                            card.context_window = w;
                            card.max_output_tokens = card.max_output_tokens.min(w);
                            card.sources.limits =
                                Cow::Borrowed("context window reported by the local server");
                            Arc::new(card)
                        }
                        (Some(card), _) => card.clone(),
                        (None, window) => Arc::new(ModelCard::local_default(model, window)),
                    };
                    push(model, &card);
                }
            }
        }
    }
}

impl Candidate {
    /// The model id sent to the provider.
    pub fn model(&self) -> &str {
        self.own_name.as_deref().unwrap_or(&self.card.id)
    }

    fn name(&self) -> String {
        format!("{}/{}", self.provider.id, self.model())
    }

    /// The recent quality signals of the candidate. Signals are recorded under the model the
    /// provider answered with: the candidate's id, or any id of its card (a dated snapshot).
    pub fn recent_signals(&self, signals: &SignalFigures) -> Recent {
        self.recent_of(signals.of_provider(&self.provider.id))
    }

    /// [`Candidate::recent_signals`] over its provider's part of the figures.
    fn recent_of(&self, signals: Option<ProviderSignals<'_>>) -> Recent {
        let mut recent = Recent::default();
        let Some(signals) = signals else {
            return recent;
        };
        let model = self.model();
        let card = &self.card;
        let mut add = |id: &str| {
            if let Some(r) = signals.recent(id) {
                recent.weight += r.weight;
                recent.sum += r.sum;
            }
        };
        // Each id once, the id sent first: it is often the card's, and an alias list may
        // repeat one (a few ids: a scan beats a set).
        add(model);
        if card.id != model {
            add(&card.id);
        }
        for (i, alias) in card.aliases.iter().enumerate() {
            if alias != model && *alias != card.id && !card.aliases[..i].contains(alias) {
                add(alias);
            }
        }
        recent
    }
}

/// The live figures and signals of the provider of the candidates being prepared, looked up
/// once per provider (the inventory lists a provider's models together).
struct Learned<'a> {
    live: &'a LiveFigures,
    signals: &'a SignalFigures,
    last: Option<(
        *const Provider,
        Option<ProviderLive<'a>>,
        Option<ProviderSignals<'a>>,
    )>,
}

impl<'a> Learned<'a> {
    fn new(live: &'a LiveFigures, signals: &'a SignalFigures) -> Self {
        Self {
            live,
            signals,
            last: None,
        }
    }

    fn of(
        &mut self,
        provider: &Arc<Provider>,
    ) -> (Option<ProviderLive<'a>>, Option<ProviderSignals<'a>>) {
        let key = Arc::as_ptr(provider);
        match self.last {
            Some((last, live, signals)) if last == key => (live, signals),
            _ => {
                let live = self.live.of_provider(&provider.id);
                let signals = self.signals.of_provider(&provider.id);
                self.last = Some((key, live, signals));
                (live, signals)
            }
        }
    }
}

/// A candidate with the figures that do not depend on the request: its latency parts (live
/// once there are enough samples, else the card's prior), its quality for the profile's
/// task, and the profile's preference bonus.
#[derive(Clone, Copy)]
struct Prepared {
    /// The candidate's place in the list it was prepared from (the set's `eligible`, or the
    /// inventory of a traced decision): a rebuild clones no candidate.
    at: usize,
    ttft: f64,
    tokens_per_s: f64,
    /// Samples behind live latency figures (None: the prior).
    latency_samples: Option<u32>,
    /// The expected latency (ms) and its logarithm of a request that sets no `max_tokens`.
    default_latency: (f64, f64),
    /// The quality weighed: the card's prior blended with the signals, times the share of
    /// recent attempts that succeeded.
    quality: f64,
    /// The weight of the signals behind `quality` (0: the prior alone).
    quality_signals: f64,
    bonus: f64,
}

/// What a profile's routes start from over one state of the world: the candidates that pass
/// the request-independent checks of layers 2 and 3 (the API, the profile's policy, retired
/// models), prepared. Built on the first request after the providers, the live figures, the
/// signals or the date change, then shared by every request until the next change; what
/// depends on the request (its capabilities and size, the breakers, the scores) is decided
/// per request.
struct PreparedSet {
    profile: String,
    state: StateKey,
    /// The inventory's candidates the profile's card and provider checks let through: what a
    /// rebuild after only the live figures or the signals changed starts from.
    eligible: Arc<Vec<Candidate>>,
    candidates: Vec<Prepared>,
}

/// The candidates of a previous prepared set over the same live figures and signals, read in
/// the inventory's order alongside a rebuild's.
struct Earlier<'s> {
    set: &'s PreparedSet,
    /// The next of `set.eligible` to compare, and the next of `set.candidates`.
    next: usize,
    next_prepared: usize,
}

impl<'s> Earlier<'s> {
    fn new(set: &'s PreparedSet) -> Self {
        Self {
            set,
            next: 0,
            next_prepared: 0,
        }
    }

    /// The same candidate in the previous set, if it had it: its figures, or None when the
    /// time-to-first-token cap dropped it. The inventory keeps its order, so the candidate is
    /// mostly the next one.
    fn of(&mut self, c: &Candidate) -> Option<Option<&'s Prepared>> {
        let same = |e: &Candidate| {
            Arc::ptr_eq(&e.provider, &c.provider)
                && Arc::ptr_eq(&e.card, &c.card)
                && e.own_name == c.own_name
        };
        let found = self.next + self.set.eligible[self.next..].iter().position(same)?;
        self.next = found + 1;
        let prepared = &self.set.candidates[self.next_prepared..];
        let skipped = prepared.iter().take_while(|p| p.at < found).count();
        self.next_prepared += skipped;
        Some(
            self.set
                .candidates
                .get(self.next_prepared)
                .filter(|p| p.at == found)
                .inspect(|_| self.next_prepared += 1),
        )
    }
}

/// The state a prepared set was built over.
struct StateKey {
    api: Option<ApiFormat>,
    task: TaskKind,
    // Held, not only compared: while the set lives, no other value can take their addresses.
    snapshot: Arc<RegistrySnapshot>,
    catalog: Arc<Catalog>,
    live: Arc<LiveFigures>,
    signals: Arc<SignalFigures>,
    today: Arc<str>,
}

impl StateKey {
    /// Whether the inventory and the card checks over `other` are those over `self`: the same
    /// providers, catalog, day, API and task (the live figures and signals may differ).
    fn same_inventory(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.snapshot, &other.snapshot)
            && Arc::ptr_eq(&self.catalog, &other.catalog)
            && self.task == other.task
            && self.api == other.api
            && self.today == other.today
    }
}

impl PartialEq for StateKey {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.snapshot, &other.snapshot)
            && Arc::ptr_eq(&self.live, &other.live)
            && Arc::ptr_eq(&self.signals, &other.signals)
            && self.task == other.task
            && Arc::ptr_eq(&self.catalog, &other.catalog)
            && self.api == other.api
            && self.today == other.today
    }
}

/// The prepared sets, one slot per profile, API (`None`, OpenAI, Anthropic) and task kind.
struct PreparedSlots(Box<[ArcSwapOption<PreparedSet>]>);

const SLOTS_PER_PROFILE: usize = 3 * TaskKind::ALL.len();

impl PreparedSlots {
    fn new(profiles: &Profiles) -> Self {
        Self(
            (0..profiles.by_id.len() * SLOTS_PER_PROFILE)
                .map(|_| ArcSwapOption::empty())
                .collect(),
        )
    }

    fn slot(
        &self,
        profile: &Profile,
        api: Option<ApiFormat>,
        task: TaskKind,
    ) -> Option<&ArcSwapOption<PreparedSet>> {
        let api = match api {
            None => 0,
            Some(ApiFormat::OpenAi) => 1,
            Some(ApiFormat::Anthropic) => 2,
        };
        let task = TaskKind::ALL.iter().position(|t| *t == task)?;
        self.0
            .get(profile.index * SLOTS_PER_PROFILE + api * TaskKind::ALL.len() + task)
    }
}

/// A drop's reason, written out only when the trace is asked for.
macro_rules! reason {
    ($explain:expr, $($arg:tt)*) => {
        if $explain {
            Some(Cow::Owned(format!($($arg)*)))
        } else {
            Some(Cow::Borrowed(""))
        }
    };
}

/// Whether a model has the capabilities and the room a request needs ([`fit_verdict`]'s
/// test, without the reason).
#[inline]
fn fits(card: &ModelCard, needs: &Needs) -> bool {
    card.capabilities.covers(needs.capabilities)
        && needs.window() <= card.context_window
        && needs.max_tokens.is_none_or(|m| m <= card.max_output_tokens)
        && needs.min_context.is_none_or(|m| m <= card.context_window)
}

/// Layer 2, the part that depends on the request: its capabilities and its size.
fn fit_verdict(card: &ModelCard, needs: &Needs, explain: bool) -> Option<Cow<'static, str>> {
    if fits(card, needs) {
        return None;
    }
    let mut missing = card.capabilities.missing(needs.capabilities).peekable();
    if missing.peek().is_some() {
        let list: Vec<&str> = missing.map(|m| m.as_str()).collect();
        return reason!(
            explain,
            "lacks a capability the request needs: {}",
            list.join(", ")
        );
    }
    if needs.window() > card.context_window {
        return reason!(
            explain,
            "context window too small: the request needs about {} tokens ({} prompt + {} output), the window is {}",
            needs.window(),
            needs.prompt_tokens,
            needs.max_tokens.unwrap_or(0),
            card.context_window
        );
    }
    if let Some(max) = needs.max_tokens.filter(|m| *m > card.max_output_tokens) {
        return reason!(
            explain,
            "output limit too small: the request asks for {max} output tokens, the model writes at most {}",
            card.max_output_tokens
        );
    }
    if let Some(min) = needs.min_context.filter(|m| *m > card.context_window) {
        return reason!(
            explain,
            "context window too small: at least {min} tokens required, the window is {}",
            card.context_window
        );
    }
    None
}

/// Layer 3, the part that depends on the profile and the day: disabled providers, the
/// profile's lists, required capabilities and caps, retired models.
fn policy_verdict(
    p: &Entry<'_>,
    profile: &Profile,
    today: &str,
    explain: bool,
) -> Option<Cow<'static, str>> {
    card_policy_verdict(p.c, profile, today, explain).or_else(|| ttft_verdict(p, profile, explain))
}

/// The part of [`policy_verdict`] a candidate's card and provider decide: checked before the
/// candidate's figures are prepared, so that a dropped one costs none.
fn card_policy_verdict(
    c: &Candidate,
    profile: &Profile,
    today: &str,
    explain: bool,
) -> Option<Cow<'static, str>> {
    provider_policy_verdict(&c.provider, profile, explain)
        .or_else(|| model_policy_verdict(c, profile, today, explain))
}

/// The part of [`card_policy_verdict`] the provider alone decides: disabled, or refused by
/// the profile's provider lists (checked once per provider when a prepared set is built).
fn provider_policy_verdict(
    provider: &Provider,
    profile: &Profile,
    explain: bool,
) -> Option<Cow<'static, str>> {
    if !provider.enabled {
        return reason!(explain, "provider disabled: `{}`", provider.id);
    }
    profile.refuses_provider(provider, explain).map(Cow::Owned)
}

/// The part of [`card_policy_verdict`] the card and the model id decide: the profile's model
/// lists, required capabilities and caps, retired models.
fn model_policy_verdict(
    c: &Candidate,
    profile: &Profile,
    today: &str,
    explain: bool,
) -> Option<Cow<'static, str>> {
    let card = &c.card;
    if let Some(reason) = profile.refuses_model(&[card.id.as_str(), c.model()], explain) {
        return Some(reason.into());
    }
    if !card.capabilities.covers(profile.require) {
        let list: Vec<&str> = card
            .capabilities
            .missing(profile.require)
            .map(|m| m.as_str())
            .collect();
        return reason!(
            explain,
            "lacks a capability profile `{}` requires: {}",
            profile.id,
            list.join(", ")
        );
    }
    if let Some(date) = card.retires.as_deref().filter(|d| *d <= today) {
        return reason!(explain, "retired: since {date}");
    }
    let caps = profile.spec.caps;
    if let Some(max) = caps.max_input_per_mtok.filter(|m| card.input_per_mtok > *m) {
        return reason!(
            explain,
            "over the profile's price cap: input {} USD/Mtok > {max}",
            card.input_per_mtok
        );
    }
    if let Some(max) = caps
        .max_output_per_mtok
        .filter(|m| card.output_per_mtok > *m)
    {
        return reason!(
            explain,
            "over the profile's price cap: output {} USD/Mtok > {max}",
            card.output_per_mtok
        );
    }
    if let Some(min) = caps.min_context.filter(|m| card.context_window < *m) {
        return reason!(
            explain,
            "under the profile's minimum context: {} < {min} tokens",
            card.context_window
        );
    }
    None
}

/// The part of [`policy_verdict`] that needs the prepared figures: the time-to-first-token cap
/// (live or the card's).
fn ttft_verdict(p: &Prepared, profile: &Profile, explain: bool) -> Option<Cow<'static, str>> {
    if let Some(max) = profile.spec.caps.max_ttft_ms.filter(|max| p.ttft > *max) {
        return reason!(
            explain,
            "over the profile's time-to-first-token cap: {:.0} ms > {max:.0} ms",
            p.ttft
        );
    }
    None
}

/// A prepared candidate with the candidate it was prepared from (reads as its [`Prepared`]).
#[derive(Clone, Copy)]
struct Entry<'p> {
    c: &'p Candidate,
    p: &'p Prepared,
}

impl std::ops::Deref for Entry<'_> {
    type Target = Prepared;

    fn deref(&self) -> &Prepared {
        self.p
    }
}

impl<'p> Entry<'p> {
    /// The entries of prepared candidates over the list they were prepared from.
    fn of(from: &'p [Candidate], prepared: &'p [Prepared]) -> impl Iterator<Item = Self> {
        prepared.iter().map(move |p| Entry { c: &from[p.at], p })
    }
}

/// The candidates of one layer and what the layer dropped.
struct Layer<'p> {
    explain: bool,
    trace: Vec<LayerTrace>,
    kept: Vec<Entry<'p>>,
}

impl<'p> Layer<'p> {
    /// Runs one filtering layer: `verdict` returns why a candidate is dropped, or None.
    fn filter(
        &mut self,
        layer: u8,
        name: &'static str,
        mut verdict: impl FnMut(&Entry<'_>) -> Option<Cow<'static, str>>,
    ) {
        let mut trace = LayerTrace {
            layer,
            name,
            entered: Vec::new(),
            dropped: Vec::new(),
            kept: 0,
        };
        let explain = self.explain;
        self.kept.retain(|p| {
            if explain {
                trace.entered.push(p.c.name());
            }
            match verdict(p) {
                Some(reason) => {
                    if explain {
                        trace.dropped.push(Dropped {
                            provider: p.c.provider.id.clone(),
                            model: p.c.model().to_string(),
                            reason: reason.into_owned(),
                        });
                    }
                    false
                }
                None => true,
            }
        });
        trace.kept = self.kept.len();
        if explain {
            self.trace.push(trace);
        }
    }
}

/// Figures at or below this count as this (their logarithm stays finite).
const FLOOR: f64 = 1e-9;

/// The expected latency (ms) of `output` tokens at a time to first token and an output rate.
fn latency_of(ttft_ms: f64, tokens_per_s: f64, output: f64) -> f64 {
    ttft_ms + output / tokens_per_s.max(1e-3) * 1000.0
}

/// The logarithm of a figure, for [`LowerIsBetter`].
fn log_of(figure: f64) -> f64 {
    figure.max(FLOOR).ln()
}

/// Log-scale min-max normalisation, lower is better: of figures whose logarithms span
/// `(lo, hi)`, the lowest scores 1, the highest 0, with the span taken as at least a doubling
/// ([`MIN_SPAN`]): figures within a factor of two of each other are not stretched over the
/// whole range, so that noise between near-alike candidates (two providers of one model,
/// 5% apart) cannot outweigh what really differs.
struct LowerIsBetter {
    lo: f64,
    /// 1 / max(hi - lo, MIN_SPAN).
    inverse_span: f64,
}

/// The smallest span of logarithms normalised over: ln 2.
const MIN_SPAN: f64 = std::f64::consts::LN_2;

impl LowerIsBetter {
    fn over((lo, hi): (f64, f64)) -> Self {
        Self {
            lo,
            inverse_span: 1.0 / (hi - lo).max(MIN_SPAN),
        }
    }

    fn score(&self, ln_value: f64) -> f64 {
        1.0 - (ln_value - self.lo) * self.inverse_span
    }
}

impl Routing {
    pub fn new(profiles: Profiles, tuning: RouterTuning) -> Self {
        Self {
            prepared: PreparedSlots::new(&profiles),
            profiles,
            breakers: Breakers::new(tuning.breaker),
            live: Arc::new(ArcSwap::from_pointee(LiveFigures::default())),
            signals: Arc::new(ArcSwap::from_pointee(SignalFigures::default())),
            affinity: affinity::Affinity::new(tuning.affinity),
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

    /// A candidate's request-independent figures.
    fn prepare(
        &self,
        c: &Candidate,
        at: usize,
        profile: &Profile,
        task: TaskKind,
        learned: &mut Learned<'_>,
    ) -> Prepared {
        let card = &c.card;
        let (live, signals) = learned.of(&c.provider);
        let observed = live.and_then(|l| l.get(c.model()));
        let enough = |samples: u32| samples >= self.tuning.min_live_samples;
        let latency = observed.filter(|l| enough(l.latency_samples));
        let (ttft, tokens_per_s, latency_samples) = match latency {
            Some(l) => (
                l.ttft_ms_ewma.unwrap_or(card.latency.ttft_ms),
                l.output_tokens_per_s_ewma
                    .unwrap_or(card.latency.output_tokens_per_s),
                Some(l.latency_samples),
            ),
            None => (card.latency.ttft_ms, card.latency.output_tokens_per_s, None),
        };
        let recent = c.recent_of(signals);
        let prior = card.quality.for_task(task).clamp(0.0, 1.0);
        let k = self.tuning.quality_prior_weight;
        let blended = (k * prior + recent.sum) / (k + recent.weight);
        let succeeded = observed
            .filter(|l| enough(l.attempts))
            .map_or(1.0, |l| 1.0 - l.error_rate);
        let output = self
            .tuning
            .expected_output_tokens
            .min(card.max_output_tokens) as f64;
        let default_latency = latency_of(ttft, tokens_per_s, output);
        Prepared {
            default_latency: (default_latency, log_of(default_latency)),
            quality: (blended * succeeded).clamp(0.0, 1.0),
            quality_signals: recent.weight,
            bonus: profile.preference(&c.provider, c.model()),
            ttft,
            tokens_per_s,
            latency_samples,
            at,
        }
    }

    /// The estimated cost (USD) and latency (ms) of a request on a prepared candidate.
    fn figures(&self, p: &Entry<'_>, needs: &Needs) -> Figures {
        let card = &p.c.card;
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
        // Without max_tokens the latency is the candidate's own: prepared once.
        let (latency, ln_latency) = match needs.max_tokens {
            None => p.default_latency,
            Some(_) => {
                let latency = latency_of(p.ttft, p.tokens_per_s, output);
                (latency, log_of(latency))
            }
        };
        Figures {
            cost,
            latency,
            ln_cost: log_of(cost),
            ln_latency,
        }
    }

    /// The prepared set of a profile and API over the current state, built if the state
    /// changed since the last one.
    fn prepared(
        &self,
        snapshot: &Arc<RegistrySnapshot>,
        catalog: &Arc<Catalog>,
        query: &RouteQuery<'_>,
    ) -> Arc<PreparedSet> {
        let task = query.task.unwrap_or(query.profile.spec.task);
        let state = StateKey {
            api: query.api,
            task,
            snapshot: snapshot.clone(),
            catalog: catalog.clone(),
            live: self.live.load_full(),
            signals: self.signals.load_full(),
            today: query.today.clone(),
        };
        let slot = self.prepared.slot(query.profile, query.api, task);
        let previous = slot
            .and_then(|s| s.load_full())
            .filter(|set| set.profile == query.profile.id);
        if let Some(set) = previous.as_ref().filter(|set| set.state == state) {
            return set.clone();
        }
        // Only the live figures or the signals changed (every few seconds under traffic): the
        // same eligible candidates, their figures prepared again.
        let kept = previous.as_ref().map_or(0, |set| set.eligible.len());
        // Only the providers changed: a candidate the previous set prepared, at the same
        // provider with the same card, keeps its figures (they depend on nothing else).
        let mut earlier = previous
            .as_ref()
            .filter(|set| {
                Arc::ptr_eq(&set.state.live, &state.live)
                    && Arc::ptr_eq(&set.state.signals, &state.signals)
            })
            .map(|set| Earlier::new(set));
        let eligible = match previous
            .as_ref()
            .filter(|set| set.state.same_inventory(&state))
        {
            Some(set) => set.eligible.clone(),
            None => {
                let (profile, today) = (query.profile, &query.today);
                let mut eligible = Vec::with_capacity(kept);
                walk_inventory(
                    snapshot,
                    catalog,
                    |provider| provider_policy_verdict(provider, profile, false).is_none(),
                    |c| {
                        if model_policy_verdict(&c, profile, today, false).is_none() {
                            eligible.push(c);
                        }
                    },
                );
                Arc::new(eligible)
            }
        };
        let mut learned = Learned::new(&state.live, &state.signals);
        let mut candidates = Vec::with_capacity(eligible.len());
        for (at, c) in eligible.iter().enumerate() {
            match earlier.as_mut().and_then(|e| e.of(c)) {
                Some(Some(p)) => candidates.push(Prepared { at, ..*p }),
                // The time-to-first-token cap dropped it then, over the same figures.
                Some(None) => {}
                None => {
                    let p = self.prepare(c, at, query.profile, task, &mut learned);
                    if ttft_verdict(&p, query.profile, false).is_none() {
                        candidates.push(p);
                    }
                }
            }
        }
        let set = Arc::new(PreparedSet {
            profile: query.profile.id.clone(),
            state,
            eligible,
            candidates,
        });
        if let Some(slot) = slot {
            slot.store(Some(set.clone()));
        }
        set
    }

    /// Routes one request through the five layers over the current providers and catalog.
    /// Without a trace, the request-independent part comes from the profile's prepared set;
    /// with one, every layer runs in full, so that each drop has its reason.
    pub fn route(
        &self,
        snapshot: &Arc<RegistrySnapshot>,
        catalog: &Arc<Catalog>,
        query: &RouteQuery<'_>,
    ) -> Result<Decision, NoRoute> {
        let profile = query.profile;
        let needs = &query.needs;
        let explain = query.explain;
        let mut breakers = self.breakers.reader();
        let mut breaker_drops = 0usize;
        let mut retry_in: Option<u64> = None;
        let mut health = |p: &Entry<'_>| {
            if let Admission::Refuse { retry_in_ms } = breakers.admit(&p.c.provider.id, p.c.model())
            {
                breaker_drops += 1;
                retry_in = Some(retry_in.map_or(retry_in_ms, |r| r.min(retry_in_ms)));
                return reason!(
                    explain,
                    "circuit breaker open: a probe is let through in {retry_in_ms} ms"
                );
            }
            None
        };

        let set;
        let (inventory_of, all): (Vec<Candidate>, Vec<Prepared>);
        let mut layers = if explain {
            let live = self.live.load();
            let signals = self.signals.load();
            let task = query.task.unwrap_or(profile.spec.task);
            let mut learned = Learned::new(&live, &signals);
            inventory_of = inventory(snapshot, catalog);
            all = inventory_of
                .iter()
                .enumerate()
                .map(|(at, c)| self.prepare(c, at, profile, task, &mut learned))
                .collect();
            let mut layers = Layer {
                explain,
                trace: Vec::new(),
                kept: Entry::of(&inventory_of, &all).collect(),
            };
            layers.filter(1, "inventory", |_| None);
            layers.filter(2, "capabilities and context", |p| {
                fit_verdict(&p.c.card, needs, explain)
            });
            layers.filter(3, "policy and health", |p| {
                policy_verdict(p, profile, &query.today, explain).or_else(|| health(p))
            });
            layers
        } else {
            set = self.prepared(snapshot, catalog, query);
            Layer {
                explain,
                trace: Vec::new(),
                kept: Entry::of(&set.eligible, &set.candidates)
                    .filter(|p| fits(&p.c.card, needs) && health(p).is_none())
                    .collect(),
            }
        };

        // Layer 4: scoring.
        let candidates = std::mem::take(&mut layers.kept);
        let figures: Vec<Figures> = candidates.iter().map(|p| self.figures(p, needs)).collect();
        let range = |f: fn(&Figures) -> f64| {
            figures
                .iter()
                .map(f)
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                    (lo.min(v), hi.max(v))
                })
        };
        let cost_scale = LowerIsBetter::over(range(|f| f.ln_cost));
        let latency_scale = LowerIsBetter::over(range(|f| f.ln_latency));
        let w = profile.spec.weights;
        let sum = w.cost + w.latency + w.quality;
        let (wc, wl, wq) = (w.cost / sum, w.latency / sum, w.quality / sum);
        let mut scored: Vec<(f64, usize)> = Vec::with_capacity(candidates.len());
        let mut scores: Vec<Score> = Vec::new();
        for (i, (p, f)) in candidates.iter().zip(&figures).enumerate() {
            let cost = cost_scale.score(f.ln_cost);
            let latency = latency_scale.score(f.ln_latency);
            let total = wc * cost + wl * latency + wq * p.quality + p.bonus;
            scored.push((total, i));
            if explain {
                scores.push(Score {
                    provider: p.c.provider.id.clone(),
                    model: p.c.model().to_string(),
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
                        basis: if p.latency_samples.is_some() {
                            "live"
                        } else {
                            "prior"
                        },
                        samples: p.latency_samples,
                    },
                    quality: ScorePart {
                        figure: p.quality,
                        normalised: p.quality,
                        weight: wq,
                        basis: if p.quality_signals > 0.0 {
                            "live"
                        } else {
                            "prior"
                        },
                        samples: (p.quality_signals > 0.0)
                            .then(|| p.quality_signals.round() as u32),
                    },
                    preference_bonus: p.bonus,
                });
            }
        }

        // Layer 5: ranking. Ties: the cheaper, then the earlier provider, then the model id.
        let tie = |i: usize, j: usize| {
            figures[i]
                .cost
                .total_cmp(&figures[j].cost)
                .then(candidates[i].c.order.cmp(&candidates[j].c.order))
                .then_with(|| candidates[i].c.model().cmp(candidates[j].c.model()))
                .is_lt()
        };
        let better = |(a, i): (f64, usize), (b, j): (f64, usize)| {
            // Scores rarely tie: the comparison of the rest only when they do.
            if a != b {
                a > b
            } else {
                tie(i, j)
            }
        };
        let order = |a: (f64, usize), b: (f64, usize)| {
            if better(a, b) {
                std::cmp::Ordering::Less
            } else if better(b, a) {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        };
        let ranked: Vec<String> = if explain {
            let mut sorted = scored.clone();
            sorted.sort_by(|a, b| order(*a, *b));
            sorted
                .iter()
                .map(|(_, i)| candidates[*i].c.name())
                .collect()
        } else {
            Vec::new()
        };
        // The first place: the conversation's provider and model while it passed every
        // layer; else, of the near-equal best, the one with less load × expected latency of
        // two drawn at random (power of two choices); else the best.
        let mut decided_by = DecidedBy::Score;
        let mut load: Vec<LoadView> = Vec::new();
        let mut first: Option<(f64, usize)> = None;
        if let Some((provider, model)) = query.pinned {
            first = scored.iter().copied().find(|(_, i)| {
                candidates[*i].c.provider.id == provider && candidates[*i].c.model() == model
            });
            if first.is_some() {
                decided_by = DecidedBy::Affinity;
            }
        }
        if first.is_none() && query.balance && self.tuning.near_equal > 0.0 && scored.len() > 1 {
            let best = scored
                .iter()
                .map(|(t, _)| *t)
                .fold(f64::NEG_INFINITY, f64::max);
            let near: Vec<(f64, usize)> = scored
                .iter()
                .copied()
                .filter(|(t, _)| *t >= best - self.tuning.near_equal)
                .collect();
            if near.len() > 1 {
                let a = fastrand::usize(..near.len());
                let b = (a + 1 + fastrand::usize(..near.len() - 1)) % near.len();
                let load_of = |(_, i): (f64, usize)| {
                    let provider = &candidates[i].c.provider;
                    let in_flight = provider
                        .max_connections
                        .saturating_sub(provider.connections.available_permits());
                    (in_flight, (in_flight as f64 + 1.0) * figures[i].latency)
                };
                let (la, lb) = (load_of(near[a]), load_of(near[b]));
                let b_first = lb.1 < la.1 || (lb.1 == la.1 && better(near[b], near[a]));
                first = Some(if b_first { near[b] } else { near[a] });
                decided_by = DecidedBy::Load;
                if explain {
                    for (entry, (in_flight, l)) in [(near[a], la), (near[b], lb)] {
                        load.push(LoadView {
                            provider: candidates[entry.1].c.provider.id.clone(),
                            model: candidates[entry.1].c.model().to_string(),
                            in_flight,
                            load: l,
                        });
                    }
                }
            }
        }
        let chain = chain_of(&scored, self.tuning.max_targets, first, better, |i, j| {
            Arc::ptr_eq(&candidates[i].c.provider, &candidates[j].c.provider)
        });
        let trace = explain.then(|| {
            let mut layer_traces = std::mem::take(&mut layers.trace);
            layer_traces.push(LayerTrace {
                layer: 4,
                name: "scoring",
                entered: candidates.iter().map(|p| p.c.name()).collect(),
                dropped: Vec::new(),
                kept: candidates.len(),
            });
            layer_traces.push(LayerTrace {
                layer: 5,
                name: "ranking",
                entered: ranked,
                dropped: Vec::new(),
                kept: chain.len(),
            });
            scores.sort_by(|a, b| b.total.total_cmp(&a.total));
            Trace {
                decided_by,
                load,
                layers: layer_traces,
                scores,
                ranking: chain
                    .iter()
                    .enumerate()
                    .map(|(rank, (score, i))| RankedView {
                        rank,
                        provider: candidates[*i].c.provider.id.clone(),
                        model: candidates[*i].c.model().to_string(),
                        score: *score,
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
                        task: query.task,
                        pinned: query.pinned,
                        balance: query.balance,
                        explain: true,
                    };
                    return self.route(snapshot, catalog, &again);
                }
            };
            return Err(NoRoute {
                profile: profile.id.clone(),
                // Nothing passed layer 3, and breakers stopped some: closed, they would route.
                only_breakers: breaker_drops > 0,
                breaker_drops,
                retry_in_ms: retry_in,
                trace: Box::new(trace),
            });
        }
        Ok(Decision {
            profile: profile.id.clone(),
            decided_by,
            breaker_drops,
            targets: chain
                .iter()
                .map(|(score, i)| {
                    let p = candidates[*i];
                    Ranked {
                        provider: p.c.provider.clone(),
                        model: p.c.model().to_string(),
                        score: *score,
                        ttft_ms: p.ttft,
                        tokens_per_s: p.tokens_per_s,
                        quality: p.quality,
                        card: p.c.card.clone(),
                    }
                })
                .collect(),
            trace,
        })
    }
}

/// The route's chain from the scored candidates `(score, index)`: `first` (when given) in
/// the first place, then in each place the best candidate (by `better`) at a provider not yet
/// in it, else the best left, `max` places at most. In one pass: each provider's best and the
/// best `max` overall; the chain is the providers' bests in order, then the best others.
fn chain_of(
    scored: &[(f64, usize)],
    max: usize,
    first: Option<(f64, usize)>,
    better: impl Fn((f64, usize), (f64, usize)) -> bool,
    same_provider: impl Fn(usize, usize) -> bool,
) -> Vec<(f64, usize)> {
    let mut firsts: Vec<(f64, usize)> = Vec::new();
    let mut top: Vec<(f64, usize)> = Vec::with_capacity(max + 1);
    for &entry in scored {
        if let Some((_, f)) = first {
            if f == entry.1 {
                continue;
            }
        }
        let taken = first.is_some_and(|(_, f)| same_provider(f, entry.1));
        match firsts.iter_mut().find(|(_, j)| same_provider(*j, entry.1)) {
            _ if taken => {}
            Some(best) if better(entry, *best) => *best = entry,
            Some(_) => {}
            None => firsts.push(entry),
        }
        if top.len() < max || top.last().is_some_and(|last| better(entry, *last)) {
            let at = top
                .iter()
                .position(|t| better(entry, *t))
                .unwrap_or(top.len());
            top.insert(at, entry);
            top.truncate(max);
        }
    }
    let mut chain: Vec<(f64, usize)> = Vec::with_capacity(max);
    chain.extend(first.filter(|_| max > 0));
    let seeded = chain.len();
    // Insertion sort: stable, and the providers are few.
    for best in firsts {
        let at = chain[seeded..]
            .iter()
            .position(|c| better(best, *c))
            .map_or(chain.len(), |at| seeded + at);
        chain.insert(at, best);
    }
    chain.truncate(max);
    for entry in top {
        if chain.len() >= max {
            break;
        }
        if !chain.iter().any(|(_, i)| *i == entry.1) {
            chain.push(entry);
        }
    }
    chain
}

/// Today's date in UTC as YYYY-MM-DD (the form of the cards' retirement dates), formatted
/// once a day.
pub fn today() -> Arc<str> {
    static TODAY: ArcSwapOption<(i64, Arc<str>)> = ArcSwapOption::const_empty();
    let now = chrono::Utc::now();
    let day = now.timestamp().div_euclid(86_400);
    if let Some(today) = TODAY.load().as_ref().filter(|t| t.0 == day) {
        return today.1.clone();
    }
    let text: Arc<str> = now.format("%Y-%m-%d").to_string().into();
    TODAY.store(Some(Arc::new((day, text.clone()))));
    text
}

struct Figures {
    cost: f64,
    latency: f64,
    ln_cost: f64,
    ln_latency: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_decided_is_named_as_it_is_serialized() {
        for decided in [
            DecidedBy::Score,
            DecidedBy::Load,
            DecidedBy::Affinity,
            DecidedBy::BudgetLow,
        ] {
            assert_eq!(
                serde_json::to_value(decided).ok(),
                Some(serde_json::Value::from(decided.as_str()))
            );
        }
    }

    /// The chain as the ranking defines it: sort everything, then take the best candidate at
    /// a provider not yet in the chain, else the best left.
    fn chain_by_sorting(
        scored: &[(f64, usize)],
        max: usize,
        first: Option<(f64, usize)>,
        provider: &[usize],
    ) -> Vec<(f64, usize)> {
        let mut rest = scored.to_vec();
        rest.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        let mut chain: Vec<(f64, usize)> = Vec::new();
        if let Some(first) = first.filter(|_| max > 0) {
            rest.retain(|e| e.1 != first.1);
            chain.push(first);
        }
        while chain.len() < max && !rest.is_empty() {
            let pick = rest
                .iter()
                .position(|(_, i)| !chain.iter().any(|(_, j)| provider[*j] == provider[*i]))
                .unwrap_or(0);
            chain.push(rest.remove(pick));
        }
        chain
    }

    #[test]
    fn the_one_pass_chain_is_the_chain_of_the_sorted_ranking() {
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for _ in 0..5_000 {
            let n = next(40) as usize;
            let providers = 1 + next(5) as usize;
            let max = 1 + next(5) as usize;
            // Few distinct scores, so that ties are common.
            let scored: Vec<(f64, usize)> = (0..n).map(|i| (next(8) as f64 / 4.0, i)).collect();
            let provider: Vec<usize> = (0..n).map(|_| next(providers as u64) as usize).collect();
            let better = |(a, i): (f64, usize), (b, j): (f64, usize)| {
                b.total_cmp(&a).then(i.cmp(&j)).is_lt()
            };
            let first = (n > 0 && next(2) == 0).then(|| scored[next(n as u64) as usize]);
            let fast = chain_of(&scored, max, first, better, |i, j| {
                provider[i] == provider[j]
            });
            assert_eq!(
                fast,
                chain_by_sorting(&scored, max, first, &provider),
                "{scored:?} {provider:?} max {max} first {first:?}"
            );
        }
    }
}
