//! Measures one routing decision (`Routing::route`, the five layers over the whole catalog) for
//! each shipped profile: p50, p99 and mean, per decision, four ways:
//! - **whole** (`p50_us`…): every layer from the inventory on, as the first request after the
//!   providers change pays it (each timed decision sees a registry snapshot the previous one
//!   did not, so the profile's prepared set is built from the inventory again);
//! - **refresh** (`refresh_p50_us`…): what the first request after new live figures or signals
//!   pays (every few seconds under traffic): the eligible candidates kept, their figures
//!   prepared again;
//! - **warm** (`warm_p50_us`…): what every other `model: "auto"` request pays, the
//!   request-dependent part over the profile's prepared set;
//! - **explain** (`explain_p50_us`…): with the layer-by-layer trace `POST /v1/route` builds.
//!
//! Learning is on: every candidate has live figures and quality signals, so that each one's
//! latency is its moving averages and its quality the prior blended with its signals.
//!
//! Run by `bench/run.sh`: `cargo run --release --example route_decision [DECISIONS]`. Prints
//! JSON on stdout, `{profile: {p50_us, p99_us, mean_us, warm_p50_us, candidates, …}}`, and a
//! summary on stderr. `route_decision DECISIONS whole` times the whole decision alone (no
//! warm-up, no other way), for counting its instructions:
//! `valgrind --tool=callgrind target/release/examples/route_decision 1000 whole`.
//!
//! The inventory is built as the gateway builds it (`Runtime::build` over a configuration
//! file: the embedded catalog, the shipped profiles, the default `[routing]` tuning): OpenAI,
//! Anthropic, an Azure OpenAI deployment `gpt-4o`, and a local server that reported every local
//! model of the catalog and a few it has no card for. The body is the benchmark's chat body.
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

#[path = "common/timings.rs"]
mod timings;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use llm_gateway::api::ApiFormat;
use llm_gateway::catalog::Catalog;
use llm_gateway::providers::snapshot::RegistrySnapshot;
use llm_gateway::providers::ProviderKind;
use llm_gateway::router::live::{LiveTally, Observation};
use llm_gateway::router::needs::Needs;
use llm_gateway::router::profile::Profile;
use llm_gateway::router::{RouteQuery, Routing};
use llm_gateway::runtime::Runtime;
use llm_gateway::settings::{self, ConfigSource};
use llm_gateway::signals::{Evidence, EvidenceTally};
use timings::Timings;

// The gateway's allocator (src/main.rs): the router allocates on every decision.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Decisions timed per profile without the trace (the first argument overrides it), after a
/// tenth as many untimed; a tenth as many are timed with the trace (each builds a few hundred
/// strings).
const DECISIONS: usize = 200_000;

const CONFIG: &str = r#"
[[providers]]
id = "openai"
provider_type = "openai"
api_key = "sk-bench"

[[providers]]
id = "anthropic"
provider_type = "anthropic"
api_key = "sk-ant-bench"

[[providers]]
id = "azure"
provider_type = "azure_openai"
endpoint = "https://bench.openai.azure.com"
deployment = "gpt-4o"
api_version = "2024-10-21"
api_key = "azure-bench"

[[providers]]
id = "local"
provider_type = "local"
endpoint = "http://127.0.0.1:11434"
"#;

/// Models a local server reports that the catalog has no card for (they get default cards).
const UNKNOWN_LOCAL: [&str; 4] = [
    "nomic-embed-text:latest",
    "my-team-finetune:latest",
    "Qwen/Qwen2.5-7B-Instruct",
    "phi4:14b-q8_0",
];

const BODY: &str =
    r#"{"model":"auto","messages":[{"role":"user","content":"Hello, how are you today?"}]}"#;

/// Times `runs` decisions after `warmup` untimed ones, over the snapshots in turn (two
/// snapshots alike but for their address: each decision finds the prepared set stale).
fn time(
    routing: &Routing,
    snapshots: &[Arc<RegistrySnapshot>],
    catalog: &Arc<Catalog>,
    query: &RouteQuery<'_>,
    warmup: usize,
    runs: usize,
) -> Timings {
    time_with(routing, snapshots, catalog, query, warmup, runs, |_| {})
}

/// [`time`], with `before(i)` run untimed before decision `i` (to publish new live figures).
fn time_with(
    routing: &Routing,
    snapshots: &[Arc<RegistrySnapshot>],
    catalog: &Arc<Catalog>,
    query: &RouteQuery<'_>,
    warmup: usize,
    runs: usize,
    before: impl Fn(usize),
) -> Timings {
    for i in 0..warmup {
        before(i);
        let snapshot = &snapshots[i % snapshots.len()];
        std::hint::black_box(routing.route(snapshot, catalog, query).ok());
    }
    let mut times = Vec::with_capacity(runs);
    for i in 0..runs {
        before(i);
        let snapshot = &snapshots[i % snapshots.len()];
        let start = Instant::now();
        let decision = routing.route(snapshot, catalog, std::hint::black_box(query));
        drop(std::hint::black_box(decision));
        times.push(start.elapsed());
    }
    Timings::new(times)
}

/// What the request path asks for a chat completion (`api` OpenAI) of these needs.
fn chat_query<'p>(
    profile: &'p Profile,
    needs: Needs,
    today: &Arc<str>,
    explain: bool,
) -> RouteQuery<'p> {
    RouteQuery {
        api: Some(ApiFormat::OpenAi),
        profile,
        needs,
        today: today.clone(),
        task: None,
        pinned: None,
        balance: true,
        explain,
    }
}

fn main() {
    let decisions: usize = std::env::args()
        .nth(1)
        .map_or(DECISIONS, |n| n.parse().expect("DECISIONS: a number"));
    let whole_only = std::env::args().nth(2).as_deref() == Some("whole");
    let (warmup, explained_runs) = (decisions / 10, (decisions / 10).max(1));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, CONFIG).unwrap();
    let source = ConfigSource {
        path,
        explicit: true,
    };
    let settings = settings::load_with_env(&source, Vec::new()).expect("settings");
    let runtime = Runtime::build(&settings).expect("runtime");
    let catalog = &runtime.catalog;
    let routing = &runtime.routing;

    let mut reported: Vec<String> = catalog
        .models()
        .iter()
        .filter(|c| c.provider_type == ProviderKind::Local)
        .map(|c| c.id.clone())
        .collect();
    let known_local = reported.len();
    reported.extend(UNKNOWN_LOCAL.iter().map(|m| m.to_string()));
    let snapshot = RegistrySnapshot {
        providers: runtime.providers.clone(),
        discovered: HashMap::from([("local".to_string(), Arc::new(reported))]),
        // Ollama reports no context windows: the cards' windows stand.
        contexts: HashMap::new(),
    };
    let snapshot = Arc::new(snapshot);
    let changing = [snapshot.clone(), Arc::new((*snapshot).clone())];
    let same = [snapshot.clone()];
    let candidates = llm_gateway::router::inventory(&snapshot, catalog);
    let inventory = candidates.len();
    // Learning on: every candidate has live figures (moving averages, an error rate) and quality
    // signals, as on a gateway that has served them all for a while.
    let mut tally = LiveTally::default();
    let mut evidence = EvidenceTally::default();
    for c in &candidates {
        for i in 0..30u32 {
            tally.observe(Observation {
                provider: c.provider.id.clone(),
                model: c.model().to_string(),
                failed: i % 10 == 0,
                ttft_ms: Some(300.0 + f64::from(i)),
                output_tokens_per_s: Some(50.0 + f64::from(i)),
            });
        }
        evidence.add(&c.provider.id, c.model(), Evidence { n: 40, sum: 30.0 });
    }
    let live = Arc::new(tally.publish().unwrap());
    // The same figures at another address: each refresh decision finds them newly published.
    let lives = [live.clone(), Arc::new((*live).clone())];
    routing.live.store(live);
    routing.signals.store(Arc::new(evidence.publish().unwrap()));

    let needs = Needs::of_json(BODY.as_bytes()).unwrap();
    let today = llm_gateway::router::today();
    let query = |profile, explain| chat_query(profile, needs, &today, explain);

    let mut out = serde_json::Map::new();
    eprintln!(
        "route_decision: {} providers, {inventory} models in the inventory ({known_local} local with a card, {} without); \
         {decisions} decisions per profile, {explained_runs} with the trace",
        snapshot.providers.len(),
        UNKNOWN_LOCAL.len()
    );
    for (id, profile) in &routing.profiles.by_id {
        // What the decision looks like, from one traced run: layer 4 scores the candidates.
        let traced = routing
            .route(&snapshot, catalog, &query(profile, true))
            .unwrap_or_else(|none| panic!("profile {id}: no route: {}", none.summary()));
        let trace = traced.trace.as_ref().expect("trace");
        let candidates = trace
            .layers
            .iter()
            .find(|l| l.layer == 4)
            .map_or(0, |l| l.kept);
        let primary = traced
            .targets
            .first()
            .map(|t| format!("{}/{}", t.provider.id, t.model))
            .unwrap_or_default();

        if whole_only {
            let plain = time(
                routing,
                &changing,
                catalog,
                &query(profile, false),
                0,
                decisions,
            );
            eprintln!(
                "  {id:<15} {candidates:>3} candidates → {primary:<32} p50 {:6.2} µs  p99 {:6.2} µs",
                plain.percentile(50.0),
                plain.percentile(99.0),
            );
            continue;
        }
        let plain = time(
            routing,
            &changing,
            catalog,
            &query(profile, false),
            warmup,
            decisions,
        );
        let warm = time(
            routing,
            &same,
            catalog,
            &query(profile, false),
            warmup,
            decisions,
        );
        let refresh = time_with(
            routing,
            &same,
            catalog,
            &query(profile, false),
            warmup,
            decisions,
            |i| routing.live.store(lives[i % 2].clone()),
        );
        routing.live.store(lives[0].clone());
        let explained = time(
            routing,
            &same,
            catalog,
            &query(profile, true),
            warmup / 10,
            explained_runs,
        );
        eprintln!(
            "  {id:<15} {candidates:>3} candidates → {primary:<32} p50 {:6.2} µs  p99 {:6.2} µs  mean {:6.2} µs  \
             (after new live figures: p50 {:5.2} µs, p99 {:5.2} µs; warm: p50 {:5.2} µs, p99 {:5.2} µs; \
             explain: p50 {:6.2} µs, p99 {:6.2} µs)",
            plain.percentile(50.0),
            plain.percentile(99.0),
            plain.mean(),
            refresh.percentile(50.0),
            refresh.percentile(99.0),
            warm.percentile(50.0),
            warm.percentile(99.0),
            explained.percentile(50.0),
            explained.percentile(99.0),
        );
        out.insert(
            id.clone(),
            serde_json::json!({
                "p50_us": plain.percentile(50.0),
                "p99_us": plain.percentile(99.0),
                "mean_us": plain.mean(),
                "refresh_p50_us": refresh.percentile(50.0),
                "refresh_p99_us": refresh.percentile(99.0),
                "warm_p50_us": warm.percentile(50.0),
                "warm_p99_us": warm.percentile(99.0),
                "warm_mean_us": warm.mean(),
                "candidates": candidates,
                "inventory": inventory,
                "targets": traced.targets.len(),
                "primary": primary,
                "decisions": decisions,
                "explain_p50_us": explained.percentile(50.0),
                "explain_p99_us": explained.percentile(99.0),
                "explain_mean_us": explained.mean(),
                "explained": explained_runs,
            }),
        );
    }
    println!("{}", serde_json::Value::Object(out));
}
