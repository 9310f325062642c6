//! The usage readers: no answer panics them, streamed or not, in either API's format; a stream
//! split at any byte gives the same usage and the same bytes to the client as it does whole; and
//! the usage a provider reports is the usage recorded.

use bytes::Bytes;
use llm_gateway::api::usage::UsageMeter;
use llm_gateway::api::{ApiFormat, Usage};
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{json, Value};

use crate::generators::{self, cuts, split};

/// What a meter made of one answer: the bytes the client got, and what it read.
#[derive(Debug, PartialEq)]
struct Reading {
    delivered: Vec<u8>,
    usage: Option<Usage>,
    model: Option<String>,
    delivered_chars: u64,
    error: Option<(String, String)>,
}

fn read(api: ApiFormat, streaming: bool, strip: bool, pieces: &[&[u8]]) -> Reading {
    let mut meter = UsageMeter::new(api, streaming, strip);
    let mut delivered = Vec::new();
    for piece in pieces {
        delivered.extend_from_slice(&meter.on_chunk(Bytes::copy_from_slice(piece)));
    }
    if let Some(rest) = meter.on_end() {
        delivered.extend_from_slice(&rest);
    }
    Reading {
        delivered,
        usage: meter.usage,
        model: meter.model.clone(),
        delivered_chars: meter.delivered_chars,
        error: meter.error.clone(),
    }
}

fn api() -> impl Strategy<Value = ApiFormat> {
    select(&[ApiFormat::OpenAi, ApiFormat::Anthropic][..])
}

/// One SSE event with `data`, its lines ended by LF or CRLF, with an `event:` line or not.
fn event(name: Option<&str>, data: &str, crlf: bool) -> String {
    let eol = if crlf { "\r\n" } else { "\n" };
    let name = name.map(|n| format!("event: {n}{eol}")).unwrap_or_default();
    format!("{name}data: {data}{eol}{eol}")
}

/// Tokens a provider reports, of realistic size.
fn tokens() -> impl Strategy<Value = u64> + Clone {
    0u64..1 << 40
}

/// An OpenAI stream as providers send it, its events and what a reader should learn from it.
#[derive(Debug, Clone)]
struct OpenAiStream {
    events: Vec<String>,
    /// Index of the usage-only chunk, when there is one.
    usage_event: Option<usize>,
    usage: Option<Usage>,
    text_chars: u64,
}

fn openai_stream() -> impl Strategy<Value = OpenAiStream> {
    (
        select(&["gpt-4o", "gpt-4o-2024-08-06", "llama3:8b"][..]),
        prop::collection::vec(any::<String>(), 0..5),
        proptest::option::of((tokens(), tokens(), tokens())),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(model, texts, usage, crlf, comments, usage_in_last)| {
            let chunk = |delta: Value, finish: Value| {
                json!({"id": "c", "object": "chat.completion.chunk", "model": model,
                       "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
            };
            let mut data = vec![chunk(
                json!({"role": "assistant", "content": ""}),
                Value::Null,
            )];
            for text in &texts {
                data.push(chunk(json!({"content": text}), Value::Null));
            }
            let mut finish = chunk(json!({}), json!("stop"));
            let mut usage_event = None;
            if let Some((prompt, completion, cached)) = usage {
                let reported = json!({"prompt_tokens": prompt, "completion_tokens": completion,
                                      "prompt_tokens_details": {"cached_tokens": cached}});
                if usage_in_last {
                    // Some servers put the usage in the last chunk with choices.
                    finish["usage"] = reported;
                } else {
                    usage_event = Some(data.len() + 1);
                    data.push(finish);
                    finish = json!({"id": "c", "model": model, "choices": [], "usage": reported});
                }
            }
            data.push(finish);
            let mut events: Vec<String> = data
                .iter()
                .map(|d| event(None, &d.to_string(), crlf))
                .collect();
            events.push(event(None, "[DONE]", crlf));
            if comments {
                events.insert(
                    1,
                    if crlf {
                        ": keep-alive\r\n\r\n"
                    } else {
                        ": keep-alive\n\n"
                    }
                    .into(),
                );
                usage_event = usage_event.map(|i| i + 1);
            }
            OpenAiStream {
                events,
                usage_event,
                usage: usage.map(|(input, output, cached_input)| Usage {
                    input,
                    output,
                    cached_input,
                    cache_write: 0,
                }),
                text_chars: texts.iter().map(|t| t.len() as u64).sum(),
            }
        })
}

/// An Anthropic stream as the API sends it, and the usage it reports.
fn anthropic_stream(
    tokens: impl Strategy<Value = u64> + Clone,
) -> impl Strategy<Value = (Vec<String>, Usage, u64)> {
    (
        (tokens.clone(), tokens.clone(), tokens.clone(), tokens),
        prop::collection::vec(
            (
                select(&["text", "thinking", "partial_json"][..]),
                any::<String>(),
            ),
            0..5,
        ),
        any::<bool>(),
    )
        .prop_map(|((input, read, write, output), deltas, crlf)| {
            let mut events = vec![event(
                Some("message_start"),
                &json!({"type": "message_start", "message": {"id": "m", "model": "claude-x",
                    "usage": {"input_tokens": input, "cache_read_input_tokens": read,
                              "cache_creation_input_tokens": write, "output_tokens": 1}}})
                .to_string(),
                crlf,
            )];
            events.push(event(Some("ping"), r#"{"type": "ping"}"#, crlf));
            for (field, text) in &deltas {
                let mut inner = serde_json::Map::new();
                inner.insert("type".into(), json!("x"));
                inner.insert((*field).into(), json!(text));
                let delta = json!({"type": "content_block_delta", "index": 0, "delta": inner});
                events.push(event(Some("content_block_delta"), &delta.to_string(), crlf));
            }
            events.push(event(
                Some("message_delta"),
                &json!({"type": "message_delta", "delta": {}, "usage": {"output_tokens": output}})
                    .to_string(),
                crlf,
            ));
            events.push(event(
                Some("message_stop"),
                r#"{"type":"message_stop"}"#,
                crlf,
            ));
            let usage = Usage {
                input: input.saturating_add(read).saturating_add(write),
                output,
                cached_input: read,
                cache_write: write,
            };
            let chars = deltas.iter().map(|(_, t)| t.len() as u64).sum();
            (events, usage, chars)
        })
}

/// Any answer body: a generated stream of either API, JSON-ish events, or arbitrary bytes.
fn any_answer() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        openai_stream().prop_map(|s| s.events.concat().into_bytes()),
        anthropic_stream(tokens()).prop_map(|(events, _, _)| events.concat().into_bytes()),
        prop::collection::vec((generators::value(), any::<bool>()), 0..6).prop_map(|values| {
            values
                .iter()
                .map(|(v, crlf)| event(None, &v.to_string(), *crlf))
                .collect::<String>()
                .into_bytes()
        }),
        generators::json_ish_bytes(),
    ]
}

proptest! {
    #![proptest_config(crate::config(256))]

    #[test]
    fn no_answer_panics_a_meter_however_it_is_split(
        body in any_answer(),
        cuts in cuts(),
        api in api(),
        streaming in any::<bool>(),
        strip in any::<bool>(),
    ) {
        read(api, streaming, strip, &split(&body, &cuts));
    }

    #[test]
    fn an_answer_split_anywhere_reads_and_delivers_as_it_does_whole(
        body in any_answer(),
        cuts in cuts(),
        api in api(),
        streaming in any::<bool>(),
        strip in any::<bool>(),
    ) {
        let whole = read(api, streaming, strip, &[&body]);
        prop_assert_eq!(read(api, streaming, strip, &split(&body, &cuts)), whole);
    }

    #[test]
    fn a_meter_that_strips_nothing_delivers_every_byte(
        body in any_answer(),
        cuts in cuts(),
        api in api(),
        streaming in any::<bool>(),
    ) {
        prop_assert_eq!(read(api, streaming, false, &split(&body, &cuts)).delivered, body);
    }

    #[test]
    fn an_openai_stream_reports_its_usage_and_only_the_usage_chunk_is_kept_back(
        stream in openai_stream(),
        cuts in cuts(),
        strip in any::<bool>(),
        unterminated in any::<bool>(),
    ) {
        let mut body = stream.events.concat();
        if unterminated {
            // A stream cut off after its last event's data line.
            let trimmed = body.trim_end_matches(['\r', '\n']).len();
            body.truncate(trimmed);
        }
        let reading = read(ApiFormat::OpenAi, true, strip, &split(body.as_bytes(), &cuts));
        prop_assert_eq!(reading.usage, stream.usage);
        prop_assert_eq!(reading.model.as_deref().map(|m| !m.is_empty()), Some(true));
        prop_assert_eq!(reading.delivered_chars, stream.text_chars);
        let mut expected = body.clone();
        if strip {
            if let Some(i) = stream.usage_event {
                expected = stream
                    .events
                    .iter()
                    .enumerate()
                    .filter(|(at, _)| *at != i)
                    .map(|(_, e)| e.as_str())
                    .collect();
                if unterminated {
                    let trimmed = expected.trim_end_matches(['\r', '\n']).len();
                    expected.truncate(trimmed);
                }
            }
        }
        prop_assert_eq!(String::from_utf8_lossy(&reading.delivered), expected);
    }

    #[test]
    fn an_anthropic_stream_reports_its_usage_cache_tokens_counted_once(
        (events, usage, chars) in anthropic_stream(tokens()),
        cuts in cuts(),
    ) {
        let body = events.concat();
        let reading = read(ApiFormat::Anthropic, true, false, &split(body.as_bytes(), &cuts));
        prop_assert_eq!(reading.usage, Some(usage));
        prop_assert_eq!(reading.model.as_deref(), Some("claude-x"));
        prop_assert_eq!(reading.delivered_chars, chars);
        prop_assert_eq!(reading.delivered, body.into_bytes());
    }

    #[test]
    fn token_counts_of_any_size_never_panic(
        (events, _, _) in anthropic_stream(any::<u64>()),
        (p, c, cached) in (any::<u64>(), any::<u64>(), any::<u64>()),
    ) {
        read(ApiFormat::Anthropic, true, false, &[events.concat().as_bytes()]);
        let message = json!({"model": "claude-x", "usage": {"input_tokens": p,
            "cache_read_input_tokens": c, "cache_creation_input_tokens": cached, "output_tokens": p}});
        read(ApiFormat::Anthropic, false, false, &[message.to_string().as_bytes()]);
        let answer = json!({"model": "gpt-4o", "usage": {"prompt_tokens": p,
            "completion_tokens": c, "prompt_tokens_details": {"cached_tokens": cached}}});
        read(ApiFormat::OpenAi, false, false, &[answer.to_string().as_bytes()]);
    }

    #[test]
    fn a_json_answer_reports_its_usage_in_either_format(
        (input, output, read_tokens, write) in (tokens(), tokens(), tokens(), tokens()),
        text in any::<String>(),
        cuts in cuts(),
    ) {
        let openai = json!({"id": "c", "object": "chat.completion", "model": "gpt-4o",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": input, "completion_tokens": output,
                      "prompt_tokens_details": {"cached_tokens": read_tokens}}})
        .to_string();
        let reading = read(ApiFormat::OpenAi, false, false, &split(openai.as_bytes(), &cuts));
        prop_assert_eq!(reading.usage, Some(Usage { input, output, cached_input: read_tokens, cache_write: 0 }));
        prop_assert_eq!(reading.delivered, openai.into_bytes());

        let anthropic = json!({"id": "m", "type": "message", "model": "claude-x",
            "content": [{"type": "text", "text": text}],
            "usage": {"input_tokens": input, "output_tokens": output,
                      "cache_read_input_tokens": read_tokens, "cache_creation_input_tokens": write}})
        .to_string();
        let reading = read(ApiFormat::Anthropic, false, false, &split(anthropic.as_bytes(), &cuts));
        prop_assert_eq!(
            reading.usage,
            Some(Usage { input: input + read_tokens + write, output, cached_input: read_tokens, cache_write: write })
        );
    }
}

#[test]
fn an_anthropic_usage_too_large_to_add_up_does_not_panic() {
    let start = json!({"type": "message_start", "message": {"model": "claude-x",
        "usage": {"input_tokens": u64::MAX, "cache_read_input_tokens": 1, "output_tokens": 1}}});
    let body = event(Some("message_start"), &start.to_string(), false);
    let reading = read(ApiFormat::Anthropic, true, false, &[body.as_bytes()]);
    assert_eq!(reading.usage.map(|u| u.input), Some(u64::MAX));
}
