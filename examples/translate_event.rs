//! Measures the translation of one streamed event (`translate::StreamTranslator::push`), both
//! ways: an OpenAI chat chunk into Anthropic events (an Anthropic client on an OpenAI-API
//! model) and an Anthropic `content_block_delta` into a chat chunk (an OpenAI client on a
//! Claude model), text deltas and tool-argument deltas, each event pushed whole as an upstream
//! writes it.
//!
//! Run by `bench/run.sh`: `cargo run --release --example translate_event [EVENTS]`. Prints JSON
//! on stdout, `{direction: {p50_ns, p99_ns, mean_ns, events}}`, and a summary on stderr.

#![allow(clippy::print_stdout)]

use std::time::Instant;

use bytes::BytesMut;
use llm_gateway::api::ApiFormat;
use llm_gateway::translate::{self, Target};

// The gateway's allocator (src/main.rs).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const TARGET: Target<'static> = Target {
    model: "bench-model",
    max_output_tokens: 8192,
    pdf: false,
    vision: true,
    reasoning: false,
    local: false,
};

/// A client body of `client`'s API with one tool, streamed.
fn body(client: ApiFormat) -> &'static [u8] {
    match client {
        ApiFormat::Anthropic => br#"{"model":"bench-model","max_tokens":256,"stream":true,"tools":[{"name":"get_weather","description":"Weather of a city","input_schema":{"type":"object","properties":{"city":{"type":"string"}}}}],"messages":[{"role":"user","content":"Hello, how are you today?"}]}"#,
        ApiFormat::OpenAi => br#"{"model":"bench-model","stream":true,"stream_options":{"include_usage":true},"tools":[{"type":"function","function":{"name":"get_weather","description":"Weather of a city","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}],"messages":[{"role":"user","content":"Hello, how are you today?"}]}"#,
    }
}

/// The upstream's opening events and one repeated delta event, in the upstream's API.
fn upstream_events(upstream: ApiFormat, tool: bool) -> (Vec<String>, String) {
    match upstream {
        ApiFormat::OpenAi => {
            let chunk = |delta: &str| {
                format!(
                    r#"data: {{"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,"model":"bench-model","system_fingerprint":"fp_bench","choices":[{{"index":0,"delta":{delta},"logprobs":null,"finish_reason":null}}]}}"#
                ) + "\n\n"
            };
            if tool {
                (
                    vec![chunk(
                        r#"{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_bench","type":"function","function":{"name":"get_weather","arguments":""}}]}"#,
                    )],
                    chunk(r#"{"tool_calls":[{"index":0,"function":{"arguments":"{\"ci"}}]}"#),
                )
            } else {
                (
                    vec![chunk(r#"{"role":"assistant","content":""}"#)],
                    chunk(r#"{"content":"chunk7 "}"#),
                )
            }
        }
        ApiFormat::Anthropic => {
            let start = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_bench\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"bench-model\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\n".to_string();
            if tool {
                (
                    vec![start, "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_bench\",\"name\":\"get_weather\",\"input\":{}}}\n\n".to_string()],
                    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"ci\"}}\n\n".to_string(),
                )
            } else {
                (
                    vec![start, "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n".to_string()],
                    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"chunk7 \"}}\n\n".to_string(),
                )
            }
        }
    }
}

struct Figures {
    p50: u128,
    p99: u128,
    mean: u128,
}

/// Pushes `events` delta events one at a time through a fresh translator; each push timed.
fn measure(client: ApiFormat, tool: bool, events: usize) -> Figures {
    let upstream = match client {
        ApiFormat::OpenAi => ApiFormat::Anthropic,
        ApiFormat::Anthropic => ApiFormat::OpenAi,
    };
    let (_, translation) = translate::request(client, body(client), &TARGET)
        .unwrap_or_else(|e| panic!("the bench body translates: {e:?}"));
    let (opening, delta) = upstream_events(upstream, tool);
    let mut times = Vec::with_capacity(events);
    let mut out = BytesMut::with_capacity(1 << 16);
    let mut translator = translation.stream();
    for event in &opening {
        translator.push(event.as_bytes(), &mut out);
    }
    assert!(!out.is_empty(), "the opening events translate to something");
    // Warm-up, then the timed pushes; the output is cleared as the response body would send it.
    for i in 0..events + events / 10 {
        out.clear();
        let start = Instant::now();
        translator.push(std::hint::black_box(delta.as_bytes()), &mut out);
        let took = start.elapsed();
        assert!(!out.is_empty(), "each delta becomes a client event");
        if i >= events / 10 {
            times.push(took.as_nanos());
        }
    }
    times.sort_unstable();
    let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    Figures {
        p50: at(0.50),
        p99: at(0.99),
        mean: times.iter().sum::<u128>() / times.len() as u128,
    }
}

fn main() {
    let events: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(200_000);
    let mut json = Vec::new();
    for (name, client, tool) in [
        ("openai_to_anthropic_text", ApiFormat::Anthropic, false),
        ("openai_to_anthropic_tool_args", ApiFormat::Anthropic, true),
        ("anthropic_to_openai_text", ApiFormat::OpenAi, false),
        ("anthropic_to_openai_tool_args", ApiFormat::OpenAi, true),
    ] {
        let f = measure(client, tool, events);
        eprintln!(
            "  {name:<32} p50 {:>6} ns  p99 {:>6} ns  mean {:>6} ns  ({events} events)",
            f.p50, f.p99, f.mean
        );
        json.push(format!(
            "\"{name}\":{{\"p50_ns\":{},\"p99_ns\":{},\"mean_ns\":{},\"events\":{events}}}",
            f.p50, f.p99, f.mean
        ));
    }
    println!("{{{}}}", json.join(","));
}
