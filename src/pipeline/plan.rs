//! The route plan: where a request may go, in order, each target with the reason it is there;
//! and the one rule that decides whether a failed attempt moves on to the next target.
//! An explicit model resolves here ([`RoutePlan::resolve`]); `model: "auto"` or a routing
//! profile goes through the Router ([`RoutePlan::routed`]). The failover loop in
//! `pipeline::forward` walks whatever plan it is given, past open circuit breakers.

use std::sync::Arc;

use crate::actors::provider_registry::RegistrySnapshot;
use crate::api::Operation;
use crate::catalog::Catalog;
use crate::error::GatewayError;
use crate::providers::{Provider, ProviderKind};

/// One place a request can go: a provider and the model id to ask it for.
#[derive(Debug, Clone)]
pub struct Target {
    pub provider: Arc<Provider>,
    pub model: String,
    /// Why the target is in the plan.
    pub why: Why,
}

/// Why a target is in a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// The client pinned the provider (`provider_id/model`).
    Pinned,
    /// The provider lists the model (its `models`, its Azure deployment, or what a local
    /// server reported).
    Listed,
    /// The catalog gives the model (by id or by family) to the provider's type.
    Catalog,
    /// The Router ranked it (0: its primary choice).
    Routed { rank: u8 },
}

impl Why {
    /// The reason as a word, for logs and traces.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pinned => "pinned",
            Self::Listed => "listed",
            Self::Catalog => "catalog",
            Self::Routed { .. } => "routed",
        }
    }
}

/// The ordered targets of one request: the first is tried first, the rest are failover
/// candidates in order.
#[derive(Debug, Clone)]
pub struct RoutePlan {
    pub targets: Vec<Target>,
    /// The routing profile that ranked the targets (None for an explicit model).
    pub profile: Option<String>,
    /// What put the first target first: the Router's `score`, `load` or `affinity`, or
    /// `explicit` (the client named the model; the targets are its providers in order).
    pub decided_by: &'static str,
    /// Candidates the Router dropped because their circuit breaker was open.
    pub breaker_drops: usize,
}

/// `RoutePlan::decided_by` of a plan for a model the client named.
pub const EXPLICIT: &str = "explicit";

/// `RoutePlan::decided_by` of a plan made under a profile's `on_budget_low` profile, the
/// caller's budget being past `[limits] budget_low_share`.
pub const BUDGET_LOW: &str = crate::router::DecidedBy::BudgetLow.as_str();

/// A routed request decided under its profile's `on_budget_low` profile: its key or project
/// had used at least `[limits] budget_low_share` of a budget.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct BudgetLow {
    /// The profile asked for.
    pub from: String,
    /// Its `on_budget_low` profile, which made the decision.
    pub to: String,
    /// The largest share of a budget used (spent and held ÷ limit) of the key and project.
    pub used_share: f64,
    /// `[limits] budget_low_share`: the share past which the cheaper profile is taken.
    pub low_share: f64,
}

impl RoutePlan {
    /// The plan of a Router decision, in its ranking's order.
    pub fn routed(decision: crate::router::Decision) -> Self {
        Self {
            targets: decision
                .targets
                .into_iter()
                .enumerate()
                .map(|(rank, t)| Target {
                    provider: t.provider,
                    model: t.model,
                    why: Why::Routed {
                        rank: u8::try_from(rank).unwrap_or(u8::MAX),
                    },
                })
                .collect(),
            profile: Some(decision.profile),
            decided_by: decision.decided_by.as_str(),
            breaker_drops: decision.breaker_drops,
        }
    }

    /// The enabled providers able to serve `model` for `op`, in configuration order.
    /// `provider/model` pins one provider.
    pub fn resolve(
        snapshot: &RegistrySnapshot,
        catalog: &Catalog,
        op: Operation,
        model: &str,
    ) -> Result<Self, GatewayError> {
        if let Some((id, rest)) = model.split_once('/') {
            if let Some(provider) = snapshot.providers.iter().find(|p| p.id == id) {
                if !provider.enabled {
                    return Err(GatewayError::ProviderDisabled { id: id.to_string() });
                }
                if !op.reaches(provider.kind.api()) {
                    return Err(not_served(op, model, [provider]));
                }
                return Ok(Self {
                    targets: vec![Target {
                        provider: provider.clone(),
                        model: rest.to_string(),
                        why: Why::Pinned,
                    }],
                    profile: None,
                    decided_by: EXPLICIT,
                    breaker_drops: 0,
                });
            }
        }
        let catalog_kind = catalog.provider_kind_of(model);
        let serving: Vec<&Arc<Provider>> = snapshot
            .providers
            .iter()
            .filter(|p| {
                // Only a local server has a reported list (a lookup cloud providers skip).
                let discovered = (p.kind == ProviderKind::Local)
                    .then(|| snapshot.discovered.get(&p.id).map(|m| m.as_slice()))
                    .flatten();
                p.enabled && p.serves(model, catalog_kind, discovered)
            })
            .collect();
        // An endpoint the serving providers' API lacks (embeddings toward Anthropic) is named.
        let (serving, unreached): (Vec<&Arc<Provider>>, Vec<_>) =
            serving.into_iter().partition(|p| op.reaches(p.kind.api()));
        if serving.is_empty() && !unreached.is_empty() {
            return Err(not_served(op, model, unreached));
        }
        // Providers of the client's API first; the others are reached through translation.
        let (native, translated): (Vec<&Arc<Provider>>, Vec<_>) =
            serving.iter().partition(|p| !p.kind.translates(op));
        let targets: Vec<Target> = native
            .into_iter()
            .chain(translated)
            .map(|p| Target {
                provider: (*p).clone(),
                model: model.to_string(),
                why: if p.kind == ProviderKind::Local || p.configured_models().any(|m| m == model) {
                    Why::Listed
                } else {
                    Why::Catalog
                },
            })
            .collect();
        if targets.is_empty() {
            return Err(GatewayError::ModelNotFound {
                model: model.to_string(),
            });
        }
        Ok(Self {
            targets,
            profile: None,
            decided_by: EXPLICIT,
            breaker_drops: 0,
        })
    }
}

/// The refusal of `op` for `model`, whose providers have no endpoint for it.
fn not_served<'p>(
    op: Operation,
    model: &str,
    providers: impl IntoIterator<Item = &'p Arc<Provider>>,
) -> GatewayError {
    GatewayError::EndpointNotServed {
        endpoint: op.endpoint(),
        model: model.to_string(),
        providers: providers
            .into_iter()
            .map(|p| format!("`{}` ({})", p.id, p.kind.as_str()))
            .collect(),
    }
}

/// How an attempt failed.
#[derive(Debug)]
pub enum Failure {
    /// The upstream answered, with an error status.
    Status(u16),
    /// No answer: the gateway's error for the attempt.
    Error(GatewayError),
}

impl Failure {
    /// Whether the failure counts against the provider's health (its circuit breaker and its
    /// error rate): a 429 or a 5xx, or an upstream that could not be reached or did not
    /// answer in time. A 4xx is the request's fault, not the provider's.
    pub fn counts_against_provider(&self) -> bool {
        match self {
            Failure::Status(status) => *status == 429 || (500..600).contains(status),
            Failure::Error(error) => error_counts_against_provider(error),
        }
    }
}

/// Whether a gateway error of an attempt counts against the provider's health.
pub fn error_counts_against_provider(error: &GatewayError) -> bool {
    matches!(
        error,
        GatewayError::UpstreamConnect { .. }
            | GatewayError::UpstreamTimeout { .. }
            | GatewayError::UpstreamBroken { .. }
    )
}

/// Whether a failed attempt moves on to the next target of the plan (when there is one):
/// a 429 or a 5xx from one provider, or an upstream that could not be reached or did not
/// answer in time, is worth another provider's try. Anything else (a 4xx, an error of the
/// client's request or of the gateway) would fail the same way elsewhere.
pub fn moves_on(failure: &Failure) -> bool {
    match failure {
        Failure::Status(status) => *status == 429 || (500..600).contains(status),
        Failure::Error(error) => error.may_help_elsewhere(),
    }
}
