//! Measures the ledger spool: records appended and read back per second.
//!
//! On records shaped like the benchmark's: appends (serializing and `write(2)`, as the spooler
//! does every 5 ms), the same lines through serde_json for comparison, and reads (parsing, as the
//! start-up replay does). `cargo run --release --example spool_throughput`.
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use entities::{attempts, requests};
use llm_gateway::ledger::spool::{self, Cursor, Spool};
use llm_gateway::ledger::LedgerRecord;

/// Records: 200,000, in appends of 80 (a 5 ms tick at 16k requests/s).
const RECORDS: usize = 200_000;
const PER_APPEND: usize = 80;

fn record(i: usize) -> LedgerRecord {
    let id = format!("0193a1b2-c3d4-7e5f-8a9b-{i:012x}");
    LedgerRecord {
        request: requests::Model {
            id: id.clone(),
            ts_ms: 1_764_633_600_000 + i as i64,
            project: Some("bench".into()),
            source: Some("wrk".into()),
            key_label: Some("Bench Team".into()),
            endpoint: "chat_completions".into(),
            provider_id: Some("openai".into()),
            provider_type: Some("openai".into()),
            model_requested: Some("gpt-4o".into()),
            model_used: Some("gpt-4o-2024-08-06".into()),
            status: 200,
            outcome: "ok".into(),
            error_kind: None,
            error_message: None,
            streamed: false,
            latency_ms: 1,
            ttfb_ms: Some(1),
            input_tokens: 19,
            output_tokens: 9,
            cached_input_tokens: 0,
            cache_write_tokens: 0,
            cost_usd: Some(0.0001375),
            priced: true,
            usage_estimated: false,
            sanitizer_findings: None,
            route_profile: None,
            route_rank: None,
            needs: None,
            prompt_tokens_estimate: Some(5),
            max_tokens: None,
            translated: None,
            route_plan: Some("[\"openai/gpt-4o\"]".into()),
            route_decided_by: Some("explicit".into()),
            breaker_skips: 0,
            attempts: 1,
        },
        attempts: vec![attempts::Model {
            id: 0,
            request_id: id,
            ts_ms: 1_764_633_600_000 + i as i64,
            attempt: 0,
            provider_id: "openai".into(),
            model: "gpt-4o".into(),
            status: Some(200),
            error_kind: None,
            error_message: None,
            latency_ms: 1,
            mitigated: false,
        }],
    }
}

/// The spool's line as serde_json writes it (the spool writes the same bytes by hand).
#[derive(serde::Serialize)]
struct Line<'a> {
    seq: u64,
    request: &'a requests::Model,
    attempts: &'a [attempts::Model],
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let records: Vec<LedgerRecord> = (0..RECORDS).map(record).collect();

    let started = Instant::now();
    let mut buf = Vec::with_capacity(PER_APPEND * 1024);
    for chunk in records.chunks(PER_APPEND) {
        buf.clear();
        for (seq, r) in (1..).zip(chunk) {
            let line = Line {
                seq,
                request: &r.request,
                attempts: r.attempts_kept(),
            };
            serde_json::to_writer(&mut buf, &line).unwrap();
            buf.push(b'\n');
        }
        std::hint::black_box(&buf);
    }
    let serialize = started.elapsed();

    // Large segments, kept: the read below parses them all.
    let mut spool = Spool::open(dir.path(), 1 << 30).unwrap();
    let started = Instant::now();
    for chunk in records.chunks(PER_APPEND) {
        spool.append(chunk).result.unwrap();
    }
    let append = started.elapsed();
    let bytes = spool.bytes();
    spool.close();

    let started = Instant::now();
    let mut cursor = Cursor::from(1);
    let mut read = 0;
    loop {
        let batch = spool::read(dir.path(), &cursor, None, 2000).unwrap();
        if batch.records.is_empty() {
            break;
        }
        read += batch.records.len();
        cursor = batch.cursor;
    }
    let replay = started.elapsed();
    assert_eq!(read, RECORDS);

    let per_second = |d: std::time::Duration| RECORDS as f64 / d.as_secs_f64();
    println!(
        "spool: {RECORDS} records, {:.0} bytes each",
        bytes as f64 / RECORDS as f64
    );
    println!(
        "serde_json, serializing alone (for comparison): {:.0} records/s, {:.2} µs a record",
        per_second(serialize),
        serialize.as_secs_f64() * 1e6 / RECORDS as f64
    );
    println!(
        "append (serialize + write, {PER_APPEND} a call): {:.0} records/s, {:.2} µs a record",
        per_second(append),
        append.as_secs_f64() * 1e6 / RECORDS as f64
    );
    println!(
        "read back (parse, as the replay): {:.0} records/s, {:.2} µs a record",
        per_second(replay),
        replay.as_secs_f64() * 1e6 / RECORDS as f64
    );
}
