//! Prices per model (the catalog, overridden by `[[pricing]]` in the config) and the cost of a call.

use std::collections::HashMap;
use std::sync::LazyLock;

use regex::Regex;

use crate::api::Usage;
use crate::catalog::card::LongContextPrice;
use crate::catalog::Catalog;
use crate::providers::ProviderKind;
use crate::settings::PricingSettings;

/// A price in USD per million tokens. Cached reads and cache writes default to the input rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Price {
    pub input_per_mtok: f64,
    pub output_per_mtok: f64,
    pub cached_input_per_mtok: Option<f64>,
    pub cache_write_per_mtok: Option<f64>,
    /// Rates for the whole request once its input passes a size, where published.
    pub long_context: Option<LongContextPrice>,
}

/// A trailing release date: `-2024-08-06` or `-20250514`.
static DATE_SUFFIX: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"-(\d{4}-\d{2}-\d{2}|\d{8})$").ok());

/// Prices by model id.
#[derive(Debug, Default)]
pub struct Pricing {
    by_model: HashMap<String, Price>,
}

impl Pricing {
    /// The catalog's prices with the configuration's added or overriding them.
    pub fn new(catalog: &Catalog, overrides: &[PricingSettings]) -> Self {
        let mut by_model: HashMap<String, Price> = HashMap::new();
        for card in catalog.models() {
            let price = Price {
                input_per_mtok: card.input_per_mtok,
                output_per_mtok: card.output_per_mtok,
                cached_input_per_mtok: card.cached_input_per_mtok,
                cache_write_per_mtok: card.cache_write_per_mtok,
                long_context: card.long_context,
            };
            by_model.extend(card.ids().map(|id| (id.to_string(), price)));
        }
        for card in catalog.embeddings() {
            let price = Price {
                input_per_mtok: card.input_per_mtok,
                output_per_mtok: 0.0,
                cached_input_per_mtok: None,
                cache_write_per_mtok: None,
                long_context: None,
            };
            by_model.extend(card.ids().map(|id| (id.to_string(), price)));
        }
        for o in overrides {
            let price = Price {
                input_per_mtok: o.input_per_mtok,
                output_per_mtok: o.output_per_mtok,
                cached_input_per_mtok: o.cached_input_per_mtok,
                cache_write_per_mtok: o.cache_write_per_mtok,
                long_context: None,
            };
            by_model.insert(o.model.clone(), price);
        }
        Self { by_model }
    }

    /// The price of the first of `models` that has one (exactly, or without its date
    /// suffix). Local models cost nothing unless configured. None: unpriced.
    pub fn price(&self, models: &[&str], provider: ProviderKind) -> Option<Price> {
        let exact = models.iter().find_map(|m| self.by_model.get(*m));
        let undated = || {
            models.iter().find_map(|m| {
                let re = DATE_SUFFIX.as_ref()?;
                let base = re.replace(m, "");
                (base != *m)
                    .then(|| self.by_model.get(base.as_ref()))
                    .flatten()
            })
        };
        exact.or_else(undated).copied().or_else(|| {
            (provider == ProviderKind::Local).then_some(Price {
                input_per_mtok: 0.0,
                output_per_mtok: 0.0,
                cached_input_per_mtok: None,
                cache_write_per_mtok: None,
                long_context: None,
            })
        })
    }
}

impl Price {
    /// The cost in USD of `usage`; cached reads and cache writes at their own rates, never twice.
    /// A request whose input (cached and cache-written tokens included) passes the long-context
    /// threshold is billed entirely at the long-context rates.
    pub fn cost(&self, usage: &Usage) -> f64 {
        if let Some(tier) = self
            .long_context
            .filter(|tier| usage.input > tier.above_input_tokens)
        {
            let long = Price {
                input_per_mtok: tier.input_per_mtok,
                output_per_mtok: tier.output_per_mtok,
                cached_input_per_mtok: tier.cached_input_per_mtok,
                cache_write_per_mtok: tier.cache_write_per_mtok,
                long_context: None,
            };
            return long.cost(usage);
        }
        let uncached = usage
            .input
            .saturating_sub(usage.cached_input)
            .saturating_sub(usage.cache_write);
        let per = |tokens: u64, rate: f64| tokens as f64 * rate / 1_000_000.0;
        per(uncached, self.input_per_mtok)
            + per(
                usage.cached_input,
                self.cached_input_per_mtok.unwrap_or(self.input_per_mtok),
            )
            + per(
                usage.cache_write,
                self.cache_write_per_mtok.unwrap_or(self.input_per_mtok),
            )
            + per(usage.output, self.output_per_mtok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pricing() -> Pricing {
        let catalog = Catalog::embedded().unwrap_or_else(|e| panic!("{e}"));
        Pricing::new(&catalog, &[])
    }

    #[test]
    fn cached_and_cache_write_tokens_are_priced_at_their_own_rate_once() {
        let price = pricing()
            .price(&["claude-sonnet-4-20250514"], ProviderKind::Anthropic)
            .unwrap_or_else(|| panic!("priced"));
        let usage = Usage {
            input: 100_000 + 80_000 + 10_000,
            output: 10_000,
            cached_input: 80_000,
            cache_write: 10_000,
        };
        // 100k uncached at $3, 80k cache reads at $0.30, 10k cache writes at $3.75, 10k output at $15.
        let expected = 0.3 + 0.024 + 0.0375 + 0.15;
        assert!((price.cost(&usage) - expected).abs() < 1e-9);
    }

    #[test]
    fn a_prompt_past_the_long_context_threshold_bills_the_whole_request_at_the_long_rates() {
        let price = Price {
            input_per_mtok: 3.0,
            output_per_mtok: 15.0,
            cached_input_per_mtok: None,
            cache_write_per_mtok: None,
            long_context: Some(LongContextPrice {
                above_input_tokens: 200_000,
                input_per_mtok: 6.0,
                output_per_mtok: 22.5,
                cached_input_per_mtok: None,
                cache_write_per_mtok: None,
            }),
        };
        let at = |input| Usage {
            input,
            output: 1_000_000,
            cached_input: 0,
            cache_write: 0,
        };
        assert!((price.cost(&at(200_000)) - (0.6 + 15.0)).abs() < 1e-9);
        assert!((price.cost(&at(1_000_000)) - (6.0 + 22.5)).abs() < 1e-9);
    }

    #[test]
    fn dated_ids_take_the_undated_price_and_unknown_cloud_models_are_unpriced() {
        let pricing = pricing();
        assert_eq!(
            pricing.price(&["gpt-4o-2024-08-06"], ProviderKind::OpenAi),
            pricing.price(&["gpt-4o"], ProviderKind::OpenAi)
        );
        assert_ne!(
            pricing.price(&["gpt-4o-2024-05-13"], ProviderKind::OpenAi),
            pricing.price(&["gpt-4o"], ProviderKind::OpenAi)
        );
        assert_eq!(
            pricing.price(&["gpt-9-preview"], ProviderKind::OpenAi),
            None
        );
        assert_eq!(
            pricing
                .price(&["llama3:8b"], ProviderKind::Local)
                .map(|p| p.input_per_mtok),
            Some(0.0)
        );
    }
}
