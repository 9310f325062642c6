//! Seeds a SQLite ledger with synthetic traffic for the benchmark's portal lane: N records
//! (default 1,000,000) over the last D days (default 30), written through the ledger's own
//! batch path (`ledger::store::write_batch`), so the hourly rollups and projects are what the
//! gateway itself would have written.
//!
//! The traffic is shaped like a team's: five key labels (one of them no virtual key), each with
//! its projects, sources and models (providers follow the model); busier by day than by night;
//! ~3 % of requests mitigated by failover (a failed attempt, then one that answered), ~3 %
//! errors (429, 5xx, timeouts, a few 400s), 2 % with sanitizer findings, 40 % streamed, 8 %
//! routed by a profile, a local model left unpriced. Deterministic (a fixed seed).
//!
//! `cargo run --release --example seed_ledger -- <db file> [records] [days]`; prints JSON
//! (`records`, `seconds`, `records_per_s`, `rollup_rows`, `db_bytes`).
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use entities::{attempts, requests};
use llm_gateway::ledger::{store, LedgerRecord};
use sea_orm::{ConnectionTrait, Statement};

const HOUR_MS: i64 = 3_600_000;
/// Records per write: about what the ledger's actor writes under load.
const BATCH: usize = 2_000;

/// A model as the traffic uses it: id, provider id, provider type, endpoint, USD per million
/// input and output tokens (None: unpriced), typical latency in ms.
struct Model {
    id: &'static str,
    provider: &'static str,
    provider_type: &'static str,
    endpoint: &'static str,
    price: Option<(f64, f64)>,
    latency_ms: i64,
}

const MODELS: [Model; 8] = [
    Model {
        id: "gpt-4o",
        provider: "openai",
        provider_type: "openai",
        endpoint: "chat_completions",
        price: Some((2.5, 10.0)),
        latency_ms: 900,
    },
    Model {
        id: "gpt-4o-mini",
        provider: "openai",
        provider_type: "openai",
        endpoint: "chat_completions",
        price: Some((0.15, 0.6)),
        latency_ms: 600,
    },
    Model {
        id: "o3-mini",
        provider: "openai",
        provider_type: "openai",
        endpoint: "chat_completions",
        price: Some((1.1, 4.4)),
        latency_ms: 2400,
    },
    Model {
        id: "gpt-4o-azure",
        provider: "azure",
        provider_type: "azure_openai",
        endpoint: "chat_completions",
        price: Some((2.5, 10.0)),
        latency_ms: 1000,
    },
    Model {
        id: "claude-sonnet-4-20250514",
        provider: "anthropic",
        provider_type: "anthropic",
        endpoint: "messages",
        price: Some((3.0, 15.0)),
        latency_ms: 1400,
    },
    Model {
        id: "claude-3-5-haiku-20241022",
        provider: "anthropic",
        provider_type: "anthropic",
        endpoint: "messages",
        price: Some((0.8, 4.0)),
        latency_ms: 700,
    },
    Model {
        id: "claude-opus-4-20250514",
        provider: "anthropic",
        provider_type: "anthropic",
        endpoint: "messages",
        price: Some((15.0, 75.0)),
        latency_ms: 3000,
    },
    Model {
        id: "llama3:8b",
        provider: "local",
        provider_type: "local",
        endpoint: "chat_completions",
        price: None,
        latency_ms: 400,
    },
];

/// A team: its key label (None: callers without a virtual key), its share of the traffic,
/// projects, sources and the models it uses (indexes into `MODELS`, weighted).
struct Team {
    label: Option<&'static str>,
    weight: u32,
    projects: &'static [&'static str],
    sources: &'static [&'static str],
    models: &'static [(usize, u32)],
}

const TEAMS: [Team; 5] = [
    Team {
        label: Some("Platform"),
        weight: 35,
        projects: &["apollo", "hermes"],
        sources: &["claude-code", "cli"],
        models: &[(4, 6), (0, 3), (1, 2), (6, 1)],
    },
    Team {
        label: Some("Search"),
        weight: 25,
        projects: &["gemini", "atlas"],
        sources: &["search-api", "notebook"],
        models: &[(1, 5), (0, 3), (3, 2), (5, 2)],
    },
    Team {
        label: Some("Support Bot"),
        weight: 20,
        projects: &["helpdesk"],
        sources: &["support-bot"],
        models: &[(5, 5), (1, 3), (4, 1)],
    },
    Team {
        label: Some("Data Science"),
        weight: 12,
        projects: &["atlas", "orion"],
        sources: &["notebook", "jupyter"],
        models: &[(2, 3), (7, 3), (0, 2), (4, 1)],
    },
    Team {
        label: None,
        weight: 8,
        projects: &["sandbox"],
        sources: &["curl", "cli"],
        models: &[(7, 4), (1, 3), (4, 1)],
    },
];

fn pick<T>(rng: &mut fastrand::Rng, items: &[(T, u32)]) -> usize {
    let total: u32 = items.iter().map(|(_, w)| w).sum();
    let mut n = rng.u32(0..total);
    for (i, (_, w)) in items.iter().enumerate() {
        if n < *w {
            return i;
        }
        n -= w;
    }
    items.len() - 1
}

/// Relative traffic of an hour of the day (UTC): a working day's curve, never zero.
fn hour_weight(hour_of_day: i64) -> f64 {
    let phase = (hour_of_day as f64 - 14.0) / 24.0 * std::f64::consts::TAU;
    1.0 + 0.8 * phase.cos()
}

/// How a synthetic request ends.
enum Ending {
    Ok,
    /// The first attempt failed with (status, kind); a second provider's answered.
    Mitigated(Option<i32>, &'static str),
    /// Every attempt failed; the client got `status`.
    Failed(i32, &'static str, &'static str),
}

fn ending(rng: &mut fastrand::Rng) -> Ending {
    match rng.u32(0..1000) {
        0..=939 => Ending::Ok,
        940..=954 => Ending::Mitigated(Some(429), "upstream_http_429"),
        955..=964 => Ending::Mitigated(Some(503), "upstream_http_503"),
        965..=969 => Ending::Mitigated(None, "upstream_timeout"),
        970..=979 => Ending::Failed(429, "upstream_http_429", "rate limit exceeded"),
        980..=987 => Ending::Failed(502, "upstream_http_502", "bad gateway"),
        988..=992 => Ending::Failed(
            504,
            "upstream_timeout",
            "the provider did not answer in time",
        ),
        993..=996 => Ending::Failed(500, "upstream_http_500", "internal server error"),
        _ => Ending::Failed(400, "upstream_http_400", "invalid request"),
    }
}

const FINDINGS: [&str; 4] = [
    r#"{"email":1}"#,
    r#"{"email":2,"phone":1}"#,
    r#"{"openai_key":1}"#,
    r#"{"aws_access_key_id":1}"#,
];

fn record(rng: &mut fastrand::Rng, ts_ms: i64, team_weights: &[(usize, u32)]) -> LedgerRecord {
    let team = &TEAMS[pick(rng, team_weights)];
    let model = &MODELS[team.models[pick(rng, team.models)].0];
    let project = team.projects[rng.usize(..team.projects.len())];
    let source = team.sources[rng.usize(..team.sources.len())];
    let routed = rng.u32(0..100) < 8;
    let streamed = rng.u32(0..100) < 40;
    let ending = ending(rng);
    let endpoint = if model.endpoint == "messages" && rng.u32(0..100) < 3 {
        "count_tokens"
    } else {
        model.endpoint
    };
    let seconds = ts_ms.div_euclid(1000);
    let nanos = (ts_ms.rem_euclid(1000) * 1_000_000) as u32 + rng.u32(0..1_000_000);
    let id = uuid::Uuid::new_v7(uuid::Timestamp::from_unix(
        uuid::NoContext,
        seconds as u64,
        nanos,
    ))
    .to_string();
    let latency = (model.latency_ms as f64 * (0.4 + rng.f64() * 1.4)) as i64;
    let answered = !matches!(ending, Ending::Failed(..));
    let (input, output) = if answered && endpoint != "count_tokens" {
        (200 + rng.i64(0..3_800), 20 + rng.i64(0..780))
    } else {
        (0, 0)
    };
    let cached = if answered && model.provider_type == "anthropic" && rng.bool() {
        input / 2
    } else {
        0
    };
    let cost = model
        .price
        .map(|(i, o)| (input as f64 * i + output as f64 * o) / 1e6);
    let mut attempts = Vec::new();
    let attempt = |n: i32,
                   provider: &str,
                   model: &str,
                   status: Option<i32>,
                   kind: Option<&str>,
                   mitigated: bool| attempts::Model {
        id: 0,
        request_id: id.clone(),
        ts_ms: ts_ms + i64::from(n) * 50,
        attempt: n,
        provider_id: provider.to_string(),
        model: model.to_string(),
        status,
        error_kind: kind.map(str::to_string),
        error_message: kind.map(|k| format!("{k} from {provider}")),
        latency_ms: latency / 2,
        mitigated,
    };
    let (status, outcome, error_kind, error_message) = match &ending {
        Ending::Ok => {
            attempts.push(attempt(0, model.provider, model.id, Some(200), None, false));
            (200, "ok", None, None)
        }
        Ending::Mitigated(status, kind) => {
            // The fallback: the same model's other provider (OpenAI and Azure for each other;
            // Anthropic's and the local models are tried again on their own provider).
            let fallback = match model.provider {
                "openai" => "azure",
                "azure" => "openai",
                other => other,
            };
            attempts.push(attempt(
                0,
                model.provider,
                model.id,
                *status,
                Some(*kind),
                true,
            ));
            attempts.push(attempt(1, fallback, model.id, Some(200), None, false));
            (200, "mitigated", None, None)
        }
        Ending::Failed(status, kind, message) => {
            let upstream = (*status != 504).then_some(*status);
            attempts.push(attempt(
                0,
                model.provider,
                model.id,
                upstream,
                Some(*kind),
                false,
            ));
            (
                *status,
                "error",
                Some(kind.to_string()),
                Some(message.to_string()),
            )
        }
    };
    let request = requests::Model {
        id: id.clone(),
        ts_ms,
        project: Some(project.to_string()),
        source: Some(source.to_string()),
        key_label: team.label.map(str::to_string),
        endpoint: endpoint.to_string(),
        provider_id: Some(
            attempts
                .last()
                .map_or(model.provider, |a| a.provider_id.as_str())
                .to_string(),
        ),
        provider_type: Some(model.provider_type.to_string()),
        model_requested: Some(if routed { "auto" } else { model.id }.to_string()),
        model_used: answered.then(|| model.id.to_string()),
        status,
        outcome: outcome.to_string(),
        error_kind,
        error_message,
        streamed: streamed && endpoint != "count_tokens",
        latency_ms: latency,
        ttfb_ms: (answered && streamed).then_some(latency / 4),
        input_tokens: input,
        output_tokens: output,
        cached_input_tokens: cached,
        cache_write_tokens: 0,
        cost_usd: if answered {
            cost
        } else {
            model.price.map(|_| 0.0)
        },
        priced: model.price.is_some(),
        usage_estimated: answered && model.provider_type == "local" && rng.u32(0..10) == 0,
        sanitizer_findings: (rng.u32(0..100) < 2)
            .then(|| FINDINGS[rng.usize(..FINDINGS.len())].to_string()),
        route_profile: routed.then(|| "balanced".to_string()),
        route_rank: routed.then(|| i32::from(matches!(ending, Ending::Mitigated(..)))),
        needs: None,
        prompt_tokens_estimate: Some(input.max(1)),
        max_tokens: (model.endpoint == "messages").then_some(1024),
        translated: None,
        attempts: attempts.len() as i32,
        route_plan: Some(
            serde_json::json!([format!("{}/{}", model.provider, model.id)]).to_string(),
        ),
        route_decided_by: Some(if routed { "score" } else { "explicit" }.to_string()),
        breaker_skips: 0,
    };
    LedgerRecord { request, attempts }
}

/// Rows of `table`.
async fn count(db: &sea_orm::DatabaseConnection, table: &str) -> i64 {
    let sql = format!("SELECT COUNT(*) FROM {table}");
    db.query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .expect("count rows")
        .and_then(|row| row.try_get_by_index::<i64>(0).ok())
        .unwrap_or(0)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .expect("usage: seed_ledger <db file> [records] [days]");
    let total: u64 = args
        .next()
        .map_or(1_000_000, |n| n.parse().expect("records: a number"));
    let days: i64 = args
        .next()
        .map_or(30, |n| n.parse().expect("days: a number"));
    let db = store::connect(&format!("sqlite://{path}?mode=rwc"))
        .await
        .expect("open the ledger");

    let started = Instant::now();
    let mut rng = fastrand::Rng::with_seed(18);
    // The hours of the window, the current one included up to now; each gets its share of
    // the records by the time of day, with the last record shortly before now.
    let now = llm_gateway::ledger::now_ms() - 1_000;
    let first_hour = now - now.rem_euclid(HOUR_MS) - (days * 24 - 1) * HOUR_MS;
    let hours: Vec<(i64, f64)> = (0..days * 24)
        .map(|h| {
            let start = first_hour + h * HOUR_MS;
            let span = (now - start).min(HOUR_MS) as f64 / HOUR_MS as f64;
            (
                start,
                hour_weight(start.div_euclid(HOUR_MS).rem_euclid(24)) * span,
            )
        })
        .collect();
    let team_weights: Vec<(usize, u32)> = TEAMS
        .iter()
        .enumerate()
        .map(|(i, t)| (i, t.weight))
        .collect();
    let weight_sum: f64 = hours.iter().map(|(_, w)| w).sum();
    let mut written = 0u64;
    let mut carry = 0.0;
    let mut batch = Vec::with_capacity(BATCH);
    for (i, (start, weight)) in hours.iter().enumerate() {
        let share = total as f64 * weight / weight_sum + carry;
        let mut n = share.floor() as u64;
        carry = share - n as f64;
        if i + 1 == hours.len() {
            n = total - written;
        }
        let span = (now - start).clamp(1, HOUR_MS);
        let mut stamps: Vec<i64> = (0..n).map(|_| start + rng.i64(0..span)).collect();
        stamps.sort_unstable();
        for ts in stamps {
            batch.push(record(&mut rng, ts, &team_weights));
            if batch.len() == BATCH {
                store::write_batch(&db, &batch)
                    .await
                    .expect("write a batch");
                batch.clear();
            }
        }
        written += n;
    }
    if !batch.is_empty() {
        store::write_batch(&db, &batch)
            .await
            .expect("write a batch");
    }
    let seconds = started.elapsed().as_secs_f64();
    let records = count(&db, "requests").await;
    let rollup_rows = count(&db, "rollups_hourly").await;
    let attempts = count(&db, "attempts").await;
    db.execute_unprepared("PRAGMA wal_checkpoint(TRUNCATE)")
        .await
        .expect("checkpoint");
    let db_bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
    println!(
        "{}",
        serde_json::json!({
            "records": records, "days": days, "seconds": (seconds * 10.0).round() / 10.0,
            "records_per_s": (written as f64 / seconds).round(), "rollup_rows": rollup_rows,
            "attempt_rows": attempts, "db_bytes": db_bytes,
        })
    );
}
