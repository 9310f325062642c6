//! The admission stage: the caller's key and project limits, after the plan (which targets may
//! answer, and so what the request may cost) and before anything is forwarded.

use crate::api::Operation;
use crate::api::Usage;
use crate::error::GatewayError;
use crate::ledger::pricing::Pricing;
use crate::limits::{Hold, Limiter, Refusal, Request};
use crate::providers::ProviderKind;

use super::call::ProxyCall;
use super::plan::RoutePlan;

/// What the request asks of a model, for its expected cost.
#[derive(Debug, Clone, Copy)]
pub struct Size {
    pub prompt_tokens: u64,
    pub max_tokens: Option<u64>,
    /// When neither the ledger nor the request says: `[routing] expected_output_tokens`.
    pub default_output: u64,
}

/// Who asks for what: the parts of a call admission reads.
#[derive(Debug, Clone, Copy)]
pub struct Asker<'a> {
    /// The virtual key's label.
    pub key: Option<&'a str>,
    /// `x-project`.
    pub project: Option<&'a str>,
    /// The model the request names.
    pub model: &'a str,
    /// A count of tokens (costs nothing, counts toward `rpm`).
    pub counting: bool,
}

/// Admits the call under its key's and project's limits, keeping in the plan only the
/// targets their model lists allow; the hold reserves its expected cost and tokens.
pub async fn admit(
    limits: &std::sync::Arc<Limiter>,
    pricing: &Pricing,
    call: &ProxyCall<'_>,
    plan: &mut RoutePlan,
    size: Size,
) -> Result<Option<Hold>, GatewayError> {
    if limits.is_empty() {
        return Ok(None);
    }
    let asker = Asker {
        key: call.caller.label(),
        project: call.meta.project.as_deref(),
        model: call.parsed.model.as_str(),
        counting: call.op == Operation::CountTokens,
    };
    admit_asker(limits, pricing, asker, plan, size).await
}

/// [`admit`] from the call's parts (the benchmark times this: `examples/admission.rs`).
pub async fn admit_asker(
    limits: &std::sync::Arc<Limiter>,
    pricing: &Pricing,
    asker: Asker<'_>,
    plan: &mut RoutePlan,
    size: Size,
) -> Result<Option<Hold>, GatewayError> {
    if limits.is_empty() {
        return Ok(None);
    }
    let Asker {
        key,
        project,
        model: asked,
        counting,
    } = asker;
    if limits.has_model_lists(key, project) {
        let mut refusal = None;
        plan.targets.retain(
            |t| match limits.allows(key, project, &[asked, t.model.as_str()]) {
                Ok(()) => true,
                Err(r) => {
                    refusal.get_or_insert(r);
                    false
                }
            },
        );
        if plan.targets.is_empty() {
            if let Some(r) = refusal {
                return Err(refused(r));
            }
        }
    }
    // The dearest target's price of the prompt and the typical output (capped by max_tokens).
    let mut cost_usd: f64 = 0.0;
    let mut free = true;
    let mut output = 0;
    for t in &plan.targets {
        let typical = limits
            .typical_output(&t.model)
            .unwrap_or(size.default_output);
        let expected = size.max_tokens.map_or(typical, |m| m.min(typical));
        output = output.max(expected);
        let usage = Usage {
            input: size.prompt_tokens,
            output: expected,
            cached_input: 0,
            cache_write: 0,
        };
        match pricing.price(&[t.model.as_str(), asked], t.provider.kind) {
            Some(price) => {
                let cost = price.cost(&usage);
                free &= cost <= 0.0;
                cost_usd = cost_usd.max(cost);
            }
            // A local model the catalog has no price for costs nothing; a cloud one is unpriced.
            None => free &= t.provider.kind == ProviderKind::Local,
        }
    }
    let request = Request {
        key,
        project,
        cost_usd: if counting { 0.0 } else { cost_usd },
        tokens: if counting {
            0
        } else {
            size.prompt_tokens + output
        },
        free: free || counting,
    };
    limits.admit(&request).await.map_err(refused)
}

/// The refusal as the caller's error: 429 for a budget or a rate, 403 for a model.
fn refused(refusal: Refusal) -> GatewayError {
    match refusal {
        Refusal::Budget {
            subject,
            limit_usd,
            spent_usd,
            reserved_usd,
            period,
            resets_at,
            retry_after_secs,
        } => {
            let held = if reserved_usd > 0.0 {
                format!(", {reserved_usd:.4} USD more held by requests in flight")
            } else {
                String::new()
            };
            let when = match resets_at {
                Some(at) => format!("it resets at {at} ({} budget)", period.as_str()),
                None => "it is a total budget and does not reset: raise max_budget_usd in the config to go on".into(),
            };
            GatewayError::BudgetExhausted {
                message: format!(
                    "the budget of {subject} is spent: {spent_usd:.4} of {limit_usd} USD{held}; {when}. Nothing was forwarded"
                ),
                retry_after_secs,
            }
        }
        Refusal::Rate {
            subject,
            limit,
            value,
            resets_at,
            retry_after_secs,
        } => {
            let what = if limit == "rpm" { "requests" } else { "tokens" };
            GatewayError::RateLimited {
                message: format!(
                    "the rate limit of {subject} is reached: {value} {what} per minute ({limit}); it resets at {resets_at}. Nothing was forwarded"
                ),
                limit,
                retry_after_secs,
            }
        }
        Refusal::Model {
            subject,
            model,
            allowed,
        } => GatewayError::ModelNotAllowed {
            message: format!(
                "{subject} may not use model `{model}`; its models are: {}",
                allowed.join(", ")
            ),
        },
    }
}
