//! Routing that learns, simulated: three local providers serve the same model, each with its
//! own latency, error rate and quality. Every answer reports its live figures (as the meter
//! does) and a quality signal drawn from the provider's true quality, which the Router never
//! sees; live figures and signals are republished every ten requests (as the actors do on
//! their interval). The Router must find the best provider, then move off it when it degrades.
#![allow(clippy::print_stdout)] // the shares are printed: what the simulation shows

use std::collections::HashMap;
use std::sync::Arc;

use llm_gateway::api::ApiFormat;
use llm_gateway::providers::snapshot::RegistrySnapshot;
use llm_gateway::router::live::{LiveTally, Observation};
use llm_gateway::router::needs::Needs;
use llm_gateway::router::{RouteQuery, Routing};
use llm_gateway::runtime::Runtime;
use llm_gateway::settings::{self, ConfigSource};
use llm_gateway::signals::{Evidence, EvidenceTally};

const MODEL: &str = "llama3.1:8b";

const CONFIG: &str = r#"
[[providers]]
id = "a"
provider_type = "local"
endpoint = "http://127.0.0.1:9"

[[providers]]
id = "b"
provider_type = "local"
endpoint = "http://127.0.0.1:9"

[[providers]]
id = "c"
provider_type = "local"
endpoint = "http://127.0.0.1:9"
"#;

/// What a provider really is.
#[derive(Clone, Copy)]
struct Truth {
    ttft_ms: f64,
    tokens_per_s: f64,
    error_rate: f64,
    quality: f64,
}

struct Sim {
    runtime: Runtime,
    snapshot: Arc<RegistrySnapshot>,
    live: LiveTally,
    evidence: EvidenceTally,
    rng: fastrand::Rng,
    truth: HashMap<&'static str, Truth>,
}

impl Sim {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, CONFIG).unwrap();
        let source = ConfigSource {
            path,
            explicit: true,
        };
        let settings = settings::load_with_env(&source, Vec::new()).unwrap();
        let runtime = Runtime::build(&settings).unwrap();
        let served = Arc::new(vec![MODEL.to_string()]);
        let snapshot = Arc::new(RegistrySnapshot {
            providers: runtime.providers.clone(),
            discovered: ["a", "b", "c"]
                .into_iter()
                .map(|p| (p.to_string(), served.clone()))
                .collect(),
            contexts: HashMap::new(),
        });
        // The Router's own draws (power of two choices) come from this thread's generator.
        fastrand::seed(11);
        Self {
            runtime,
            snapshot,
            live: LiveTally::default(),
            evidence: EvidenceTally::default(),
            rng: fastrand::Rng::with_seed(7),
            truth: HashMap::new(),
        }
    }

    fn routing(&self) -> &Routing {
        &self.runtime.routing
    }

    /// Routes one request and plays it out; the provider that answered, if any.
    fn request(&mut self) -> Option<String> {
        let routing = &self.runtime.routing;
        let profile = routing.profile("balanced").unwrap();
        let needs = Needs::of_json(br#"{"messages":[{"role":"user","content":"hello"}]}"#).unwrap();
        let query = RouteQuery {
            api: Some(ApiFormat::OpenAi),
            profile,
            needs,
            today: llm_gateway::router::today(),
            task: None,
            pinned: None,
            balance: true,
            explain: false,
        };
        let decision = routing
            .route(&self.snapshot, &self.runtime.catalog, &query)
            .ok()?;
        for target in &decision.targets {
            let provider = target.provider.id.as_str();
            let truth = self.truth[provider];
            let now = routing.breakers.now();
            let noise = |rng: &mut fastrand::Rng| 0.8 + 0.4 * rng.f64();
            if self.rng.f64() < truth.error_rate {
                routing.breakers.record(provider, &target.model, true, now);
                self.live.observe(Observation {
                    provider: provider.into(),
                    model: target.model.clone(),
                    failed: true,
                    ttft_ms: None,
                    output_tokens_per_s: None,
                });
                continue;
            }
            routing.breakers.record(provider, &target.model, false, now);
            self.live.observe(Observation {
                provider: provider.into(),
                model: target.model.clone(),
                failed: false,
                ttft_ms: Some(truth.ttft_ms * noise(&mut self.rng)),
                output_tokens_per_s: Some(truth.tokens_per_s * noise(&mut self.rng)),
            });
            let outcome = if self.rng.f64() < truth.quality {
                1.0
            } else {
                0.0
            };
            self.evidence
                .add(provider, &target.model, Evidence { n: 1, sum: outcome });
            return Some(provider.to_string());
        }
        None
    }

    /// Republishes what the actors would on their interval.
    fn publish(&mut self) {
        if let Some(live) = self.live.publish() {
            self.routing().live.store(Arc::new(live));
        }
        if let Some(signals) = self.evidence.publish() {
            self.routing().signals.store(Arc::new(signals));
        }
    }

    /// Plays `n` requests; which provider answered each.
    fn run(&mut self, n: usize) -> Vec<Option<String>> {
        (0..n)
            .map(|i| {
                if i % 10 == 0 {
                    self.publish();
                }
                self.request()
            })
            .collect()
    }
}

fn share(served: &[Option<String>], provider: &str) -> f64 {
    served
        .iter()
        .filter(|p| p.as_deref() == Some(provider))
        .count() as f64
        / served.len() as f64
}

fn shares(served: &[Option<String>]) -> String {
    ["a", "b", "c"]
        .iter()
        .map(|p| format!("{p} {:.0}%", 100.0 * share(served, p)))
        .collect::<Vec<_>>()
        .join(", ")
}

#[test]
fn routing_finds_the_best_provider_from_signals_and_live_latency_and_leaves_it_when_it_degrades() {
    let mut sim = Sim::new();
    let good = Truth {
        ttft_ms: 300.0,
        tokens_per_s: 80.0,
        error_rate: 0.01,
        quality: 0.9,
    };
    sim.truth.insert(
        "a",
        Truth {
            ttft_ms: 500.0,
            tokens_per_s: 60.0,
            error_rate: 0.03,
            quality: 0.7,
        },
    );
    // b is the best in hindsight: the fastest, the most reliable and the best answers.
    sim.truth.insert("b", good);
    sim.truth.insert(
        "c",
        Truth {
            ttft_ms: 800.0,
            tokens_per_s: 40.0,
            error_rate: 0.10,
            quality: 0.55,
        },
    );
    let learning = sim.run(1_000);
    let last = &learning[800..];
    println!("first 200: {}", shares(&learning[..200]));
    println!("last 200 of 1,000: {}", shares(last));
    assert!(
        share(last, "b") >= 0.8,
        "the best provider serves at least 80% of the last 200: {}",
        shares(last)
    );

    // b degrades: slow, failing, poor answers. a is now the best.
    sim.truth.insert(
        "b",
        Truth {
            ttft_ms: 2_000.0,
            tokens_per_s: 20.0,
            error_rate: 0.2,
            quality: 0.3,
        },
    );
    let after = sim.run(200);
    println!("after b degrades, requests 1-50: {}", shares(&after[..50]));
    println!(
        "after b degrades, requests 51-100: {}",
        shares(&after[50..100])
    );
    println!(
        "after b degrades, requests 101-200: {}",
        shares(&after[100..])
    );
    assert!(
        share(&after[50..100], "b") <= 0.2,
        "within 100 requests the traffic has moved off b: {}",
        shares(&after[50..100])
    );
}

#[test]
fn quality_signals_alone_decide_between_providers_alike_in_speed() {
    let mut sim = Sim::new();
    let alike = |quality| Truth {
        ttft_ms: 300.0,
        tokens_per_s: 80.0,
        error_rate: 0.01,
        quality,
    };
    sim.truth.insert("a", alike(0.6));
    sim.truth.insert("b", alike(0.9));
    sim.truth.insert("c", alike(0.5));
    let learning = sim.run(1_000);
    println!("first 200: {}", shares(&learning[..200]));
    println!("last 200 of 1,000: {}", shares(&learning[800..]));
    assert!(
        share(&learning[800..], "b") >= 0.8,
        "{}",
        shares(&learning[800..])
    );
    // b's answers get worse; nothing else about it changes.
    sim.truth.insert("b", alike(0.2));
    let after = sim.run(200);
    println!("after b's answers worsen, 1-50: {}", shares(&after[..50]));
    println!(
        "after b's answers worsen, 51-100: {}",
        shares(&after[50..100])
    );
    println!(
        "after b's answers worsen, 101-200: {}",
        shares(&after[100..])
    );
    assert!(
        share(&after[50..100], "b") <= 0.2,
        "{}",
        shares(&after[50..100])
    );
}
