//! Measures the admission stage per request with limits on (`pipeline::admission::admit_asker`:
//! the plan's prices, then the key's budget, `rpm` and `tpm`; and the settle at the request's
//! end), with the counters kept four ways:
//! - **off**: no limit configured (the stage returns at once): the baseline;
//! - **local**: this instance's own counters (a SQLite ledger);
//! - **redis**: shared with other instances through Redis (`[limits] redis_url`);
//! - **postgres**: shared in a PostgreSQL ledger's `limit_counters`.
//!
//! Shared counters are leased a slice at a time (`[limits] lease_share`, 5%), and the next
//! slice is leased in the background; the limits here are a large team's (a budget of 1,000 USD
//! a day, 600,000 requests and 10^9 tokens a minute), so that a run of 200,000 requests leases
//! a few times, as traffic does: p99.9 and max show the requests that waited on a lease.
//!
//! Run by `bench/run.sh`: `cargo run --release --example admission [REQUESTS]`. Redis from
//! `ADMISSION_REDIS_URL` (default `redis://127.0.0.1:6379`), PostgreSQL from
//! `ADMISSION_PG_URL` (default `postgres://postgres@127.0.0.1:5432/test`; a database of its
//! own is made and dropped); either set empty (or unreachable) is left out. JSON on stdout.
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

#[path = "common/timings.rs"]
mod timings;

use std::sync::Arc;
use std::time::Instant;

use llm_gateway::limits::shared::{PgStore, RedisStore, Store};
use llm_gateway::pipeline::admission::{admit_asker, Asker, Size};
use llm_gateway::pipeline::plan::{RoutePlan, Target, Why, EXPLICIT};
use llm_gateway::runtime::Runtime;
use llm_gateway::settings::{self, ConfigSource};
use sea_orm::ConnectionTrait;
use timings::Timings;

const REQUESTS: usize = 200_000;

const CONFIG: &str = r#"
[[providers]]
id = "openai"
provider_type = "openai"
api_key = "sk-bench"
endpoint = "http://127.0.0.1:9"
models = ["gpt-4o"]

[key_map.bench-key]
label = "team"
LIMITS
"#;

const LIMITS: &str =
    "max_budget_usd = 1000\nbudget_period = \"daily\"\nrpm = 600000\ntpm = 1000000000";

fn runtime(limits: &str) -> Runtime {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, CONFIG.replace("LIMITS", limits)).unwrap();
    let source = ConfigSource {
        path,
        explicit: true,
    };
    let settings = settings::load_with_env(&source, Vec::new()).expect("settings");
    Runtime::build(&settings).expect("runtime")
}

/// Times `requests` admissions and settles of a chat request of key `team` for `gpt-4o`.
async fn measure(runtime: &Runtime, requests: usize) -> Timings {
    let plan = RoutePlan {
        targets: vec![Target {
            provider: runtime.providers[0].clone(),
            model: "gpt-4o".into(),
            why: Why::Listed,
        }],
        profile: None,
        decided_by: EXPLICIT,
        breaker_drops: 0,
    };
    let asker = Asker {
        key: Some("team"),
        project: None,
        model: "gpt-4o",
        counting: false,
    };
    let size = Size {
        prompt_tokens: 120,
        max_tokens: Some(256),
        default_output: 256,
    };
    let mut times = Vec::with_capacity(requests);
    for i in 0..requests + requests / 10 {
        let mut plan = plan.clone();
        let start = Instant::now();
        let hold = admit_asker(&runtime.limits, &runtime.pricing, asker, &mut plan, size)
            .await
            .expect("admitted");
        if let Some(hold) = hold {
            hold.settle(0.0012, 376);
        }
        let took = start.elapsed();
        if i >= requests / 10 {
            times.push(took);
        }
        // Between requests, the runtime runs what was spawned (a lease of the next slice).
        tokio::task::yield_now().await;
    }
    Timings::new(times)
}

fn figures(t: &Timings) -> serde_json::Value {
    serde_json::json!({
        "p50_us": t.percentile(50.0),
        "p99_us": t.percentile(99.0),
        "p999_us": t.percentile(99.9),
        "max_us": t.percentile(100.0),
        "mean_us": t.mean(),
    })
}

fn main() {
    let requests: usize = std::env::args()
        .nth(1)
        .map_or(REQUESTS, |n| n.parse().expect("REQUESTS: a number"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut out = serde_json::Map::new();
    rt.block_on(async {
        let off = measure(&runtime(""), requests).await;
        out.insert("off".into(), figures(&off));
        let local = measure(&runtime(LIMITS), requests).await;
        out.insert("local".into(), figures(&local));

        let redis_url = std::env::var("ADMISSION_REDIS_URL")
            .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
        if !redis_url.is_empty() {
            let prefix = format!("gw-bench:{}:", uuid::Uuid::now_v7().simple());
            match RedisStore::connect(&redis_url, &prefix).await {
                Ok(store) => {
                    let runtime = runtime(LIMITS);
                    let store: Arc<dyn Store> = Arc::new(store);
                    runtime.limits.share(store, 0.05).unwrap();
                    out.insert("redis".into(), figures(&measure(&runtime, requests).await));
                }
                Err(e) => eprintln!("admission: Redis left out: {e}"),
            }
        }

        let pg_url = std::env::var("ADMISSION_PG_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        if !pg_url.is_empty() {
            match sea_orm::Database::connect(pg_url.as_str()).await {
                Ok(admin) => {
                    let name = format!("gw_bench_{}", uuid::Uuid::now_v7().simple());
                    admin
                        .execute_unprepared(&format!("CREATE DATABASE {name}"))
                        .await
                        .unwrap();
                    let (server, _) = pg_url.rsplit_once('/').unwrap();
                    let db = llm_gateway::ledger::store::connect(&format!("{server}/{name}"))
                        .await
                        .unwrap();
                    let runtime = runtime(LIMITS);
                    let store: Arc<dyn Store> = Arc::new(PgStore::new(db.clone()));
                    runtime.limits.share(store, 0.05).unwrap();
                    out.insert(
                        "postgres".into(),
                        figures(&measure(&runtime, requests).await),
                    );
                    drop(runtime);
                    let _ = db.close().await;
                    let _ = admin
                        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name}"))
                        .await;
                }
                Err(e) => eprintln!("admission: PostgreSQL left out: {e}"),
            }
        }
    });
    let mean = |k: &str| out.get(k).map(|v| v["mean_us"].as_f64().unwrap());
    let off = mean("off").unwrap_or(0.0);
    for k in ["local", "redis", "postgres"] {
        if let Some(m) = mean(k) {
            eprintln!("admission with limits, counters {k}: {:.2} µs per request more than with no limits", m - off);
        }
    }
    out.insert("requests".into(), requests.into());
    println!("{}", serde_json::Value::Object(out));
}
