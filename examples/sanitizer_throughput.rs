//! Measures the sanitizer on a realistic 100 KB prompt (prose, code, logs, a few secrets and
//! personal data): time per scan and MB/s, all patterns on. Run by `bench/run.sh`:
//! `cargo run --release --example sanitizer_throughput`.
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use llm_gateway::sanitizer::Sanitizer;
use llm_gateway::settings::{self, ConfigSource};

fn prompt(target: usize) -> String {
    let parts = [
        "The quarterly report shows revenue growth of 12% across all regions, driven by strong demand in the enterprise segment. ",
        "fn main() {\n    let config = Config::load(\"app.toml\").expect(\"config\");\n    let client = Client::new(&config.endpoint);\n    println!(\"{}\", client.status());\n}\n",
        "2026-11-25T10:15:32.123Z INFO request_id=0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b path=/api/v1/orders status=200 latency_ms=42\n",
        "Please summarise the following customer feedback and list the three most common complaints, with examples. ",
        "{\"order_id\": 2025551234, \"items\": [{\"sku\": \"AB-1234\", \"qty\": 2}], \"shipped\": true, \"version\": \"1.2.3\"}\n",
        "commit 3f2a9c1d8e7b6a5f4c3d2e1f0a9b8c7d6e5f4a3b\nAuthor: Dev <dev@example.com>\n\n    Fix race in the scheduler\n",
    ];
    let mut text = String::with_capacity(target + 1024);
    let mut i = 0;
    while text.len() < target {
        text.push_str(parts[i % parts.len()]);
        i += 1;
    }
    text.push_str(" Also, my key is AKIAWHQHBLWEVGK3RLCE and call me at +44 20 7946 0958.");
    text
}

fn main() {
    let source = ConfigSource {
        path: "/nonexistent".into(),
        explicit: false,
    };
    let mut config = settings::load_with_env(&source, Vec::new())
        .expect("defaults")
        .sanitization;
    config.enabled = true;
    config.redact_pii = true;
    let sanitizer = Sanitizer::new(&config).expect("patterns");
    let text = prompt(100 * 1024);
    let body = serde_json::to_vec(&serde_json::json!({
        "model": "gpt-4o",
        "messages": [{"role": "user", "content": text}],
    }))
    .unwrap();

    for _ in 0..20 {
        std::hint::black_box(sanitizer.scan_body(&body));
    }
    let runs = 500;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        let outcome = sanitizer.scan_body(std::hint::black_box(&body));
        times.push(start.elapsed());
        std::hint::black_box(outcome);
    }
    times.sort();
    let p50 = times[runs / 2];
    let p99 = times[runs * 99 / 100];
    let outcome = sanitizer.scan_body(&body);
    let mb_s = body.len() as f64 / p50.as_secs_f64() / 1e6;
    println!(
        "{{\"bytes\": {}, \"p50_us\": {:.1}, \"p99_us\": {:.1}, \"mb_per_s\": {:.1}, \"findings\": {:?}, \"redacted\": {}}}",
        body.len(),
        p50.as_secs_f64() * 1e6,
        p99.as_secs_f64() * 1e6,
        mb_s,
        serde_json::to_string(&outcome.findings).unwrap(),
        outcome.redacted.is_some()
    );
}
