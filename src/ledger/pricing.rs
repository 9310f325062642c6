//! Prices per model (the catalog, overridden by `[[pricing]]` in the config) and the cost of a call.

use std::collections::HashMap;
use std::sync::LazyLock;

use regex::Regex;

use crate::api::Usage;
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
        let mut by_model: HashMap<String, Price> = catalog
            .models()
            .iter()
            .map(|m| {
                let price = Price {
                    input_per_mtok: m.input_per_mtok,
                    output_per_mtok: m.output_per_mtok,
                    cached_input_per_mtok: m.cached_input_per_mtok,
                    cache_write_per_mtok: m.cache_write_per_mtok,
                };
                (m.id.clone(), price)
            })
            .collect();
        for o in overrides {
            let price = Price {
                input_per_mtok: o.input_per_mtok,
                output_per_mtok: o.output_per_mtok,
                cached_input_per_mtok: o.cached_input_per_mtok,
                cache_write_per_mtok: o.cache_write_per_mtok,
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
            })
        })
    }
}

impl Price {
    /// The cost in USD of `usage`; cached reads and cache writes at their own rates, never twice.
    pub fn cost(&self, usage: &Usage) -> f64 {
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
            input: 1_000_000 + 2_000_000 + 100_000,
            output: 10_000,
            cached_input: 2_000_000,
            cache_write: 100_000,
        };
        // 1M uncached at $3, 2M cache reads at $0.30, 100k cache writes at $3.75, 10k output at $15.
        let expected = 3.0 + 0.6 + 0.375 + 0.15;
        assert!((price.cost(&usage) - expected).abs() < 1e-9);
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
