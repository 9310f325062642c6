//! One spool line: a ledger record as JSON, written by hand, read back with serde.
//!
//! `{"seq":N,"request":{…},"attempts":[…]}`. Every record is written (by hand, for speed); only
//! replays read lines back (with serde).
//! serde_json escapes every key and value byte by byte (about 14 instructions a byte), which made
//! serializing most of the spool's cost: ~9k instructions a record, 6% of a proxied request's.
//! Here the keys are constants and a value is copied whole unless it holds a character JSON
//! escapes. The line is the same JSON serde would write; a test holds the two to each other, and
//! one reads every field back, so a column added to the entities without its line here fails.

use entities::{attempts, requests};
use serde::Deserialize;

use super::LedgerRecord;

/// Every line starts so: the sequence number can be read without parsing the record.
pub(super) const SEQ_PREFIX: &[u8] = b"{\"seq\":";

/// `,"name":` as one constant, copied in one go.
macro_rules! key {
    ($name:literal) => {
        concat!(",\"", $name, "\":").as_bytes()
    };
}

/// Appends `record` as the line of sequence number `seq`, newline included. Only the attempts
/// the database keeps are written.
pub(super) fn write(out: &mut Vec<u8>, seq: u64, record: &LedgerRecord) {
    let r = &record.request;
    let mut j = Json(out);
    j.raw(SEQ_PREFIX);
    j.int(seq);
    j.raw(b",\"request\":{\"id\":");
    j.str(&r.id);
    j.key(key!("ts_ms")).int(r.ts_ms);
    j.key(key!("project")).opt_str(&r.project);
    j.key(key!("source")).opt_str(&r.source);
    j.key(key!("key_label")).opt_str(&r.key_label);
    j.key(key!("endpoint")).str(&r.endpoint);
    j.key(key!("provider_id")).opt_str(&r.provider_id);
    j.key(key!("provider_type")).opt_str(&r.provider_type);
    j.key(key!("model_requested")).opt_str(&r.model_requested);
    j.key(key!("model_used")).opt_str(&r.model_used);
    j.key(key!("status")).int(i64::from(r.status));
    j.key(key!("outcome")).str(&r.outcome);
    j.key(key!("error_kind")).opt_str(&r.error_kind);
    j.key(key!("error_message")).opt_str(&r.error_message);
    j.key(key!("streamed")).bool(r.streamed);
    j.key(key!("latency_ms")).int(r.latency_ms);
    j.key(key!("ttfb_ms")).opt_int(r.ttfb_ms);
    j.key(key!("input_tokens")).int(r.input_tokens);
    j.key(key!("output_tokens")).int(r.output_tokens);
    j.key(key!("cached_input_tokens"))
        .int(r.cached_input_tokens);
    j.key(key!("cache_write_tokens")).int(r.cache_write_tokens);
    j.key(key!("cost_usd")).opt_float(r.cost_usd);
    j.key(key!("priced")).bool(r.priced);
    j.key(key!("usage_estimated")).bool(r.usage_estimated);
    j.key(key!("sanitizer_findings"))
        .opt_str(&r.sanitizer_findings);
    j.key(key!("route_profile")).opt_str(&r.route_profile);
    j.key(key!("route_rank"))
        .opt_int(r.route_rank.map(i64::from));
    j.key(key!("needs")).opt_str(&r.needs);
    j.key(key!("prompt_tokens_estimate"))
        .opt_int(r.prompt_tokens_estimate);
    j.key(key!("max_tokens")).opt_int(r.max_tokens);
    j.key(key!("translated")).opt_str(&r.translated);
    j.key(key!("route_plan")).opt_str(&r.route_plan);
    j.key(key!("route_decided_by")).opt_str(&r.route_decided_by);
    j.key(key!("breaker_skips")).int(i64::from(r.breaker_skips));
    j.key(key!("attempts")).int(i64::from(r.attempts));
    j.raw(b"},\"attempts\":[");
    for (i, a) in record.attempts_kept().iter().enumerate() {
        j.raw(if i == 0 { b"{\"id\":" } else { b",{\"id\":" });
        j.int(a.id);
        j.key(key!("request_id")).str(&a.request_id);
        j.key(key!("ts_ms")).int(a.ts_ms);
        j.key(key!("attempt")).int(i64::from(a.attempt));
        j.key(key!("provider_id")).str(&a.provider_id);
        j.key(key!("model")).str(&a.model);
        j.key(key!("status")).opt_int(a.status.map(i64::from));
        j.key(key!("error_kind")).opt_str(&a.error_kind);
        j.key(key!("error_message")).opt_str(&a.error_message);
        j.key(key!("latency_ms")).int(a.latency_ms);
        j.key(key!("mitigated")).bool(a.mitigated);
        j.raw(b"}");
    }
    j.raw(b"]}\n");
}

/// A line as read back.
#[derive(Deserialize)]
struct Line {
    seq: u64,
    request: requests::Model,
    attempts: Vec<attempts::Model>,
}

/// Parses a line (with or without its newline).
pub(super) fn parse(line: &[u8]) -> serde_json::Result<(u64, LedgerRecord)> {
    let line: Line = serde_json::from_slice(line)?;
    Ok((
        line.seq,
        LedgerRecord {
            request: line.request,
            attempts: line.attempts,
        },
    ))
}

/// The sequence number a line starts with, read without parsing the rest.
pub(super) fn seq(line: &[u8]) -> Option<u64> {
    let digits = line.strip_prefix(SEQ_PREFIX)?;
    let end = digits.iter().position(|b| !b.is_ascii_digit())?;
    std::str::from_utf8(&digits[..end]).ok()?.parse().ok()
}

/// JSON values appended to a buffer.
struct Json<'a>(&'a mut Vec<u8>);

impl Json<'_> {
    fn raw(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
    }

    /// A `key!`: names are constants without characters to escape.
    fn key(&mut self, key: &[u8]) -> &mut Self {
        self.0.extend_from_slice(key);
        self
    }

    fn int(&mut self, n: impl itoa::Integer) {
        self.0
            .extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
    }

    fn opt_int(&mut self, n: Option<i64>) {
        match n {
            Some(n) => self.int(n),
            None => self.raw(b"null"),
        }
    }

    fn bool(&mut self, b: bool) {
        self.raw(if b { b"true" } else { b"false" });
    }

    /// As serde_json writes a float: the shortest form that reads back to the same value;
    /// `null` for what JSON cannot hold (NaN, infinities).
    fn opt_float(&mut self, f: Option<f64>) {
        match f {
            Some(f) if f.is_finite() => self
                .0
                .extend_from_slice(ryu::Buffer::new().format_finite(f).as_bytes()),
            _ => self.raw(b"null"),
        }
    }

    fn opt_str(&mut self, s: &Option<String>) {
        match s {
            Some(s) => self.str(s),
            None => self.raw(b"null"),
        }
    }

    fn str(&mut self, s: &str) {
        let bytes = s.as_bytes();
        // Nearly every value (ids, names, models) has nothing to escape: one pass without an
        // early exit, which the compiler turns into wide compares, then one copy.
        let plain = bytes.iter().fold(true, |plain, &b| {
            plain & (b >= 0x20 && b != b'"' && b != b'\\')
        });
        self.0.reserve(bytes.len() + 2);
        self.0.push(b'"');
        if plain {
            self.0.extend_from_slice(bytes);
            self.0.push(b'"');
            return;
        }
        let mut copied = 0;
        for (i, &b) in bytes.iter().enumerate() {
            let short: &[u8] = match b {
                b'"' => b"\\\"",
                b'\\' => b"\\\\",
                b'\n' => b"\\n",
                b'\r' => b"\\r",
                b'\t' => b"\\t",
                0x08 => b"\\b",
                0x0c => b"\\f",
                0x00..=0x1f => b"",
                _ => continue,
            };
            self.0.extend_from_slice(&bytes[copied..i]);
            if short.is_empty() {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                self.0.extend_from_slice(b"\\u00");
                self.0.push(HEX[usize::from(b >> 4)]);
                self.0.push(HEX[usize::from(b & 0xf)]);
            } else {
                self.0.extend_from_slice(short);
            }
            copied = i + 1;
        }
        self.0.extend_from_slice(&bytes[copied..]);
        self.0.push(b'"');
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    /// A record with every field set, and strings JSON must escape.
    fn full() -> LedgerRecord {
        let tricky = "quote \" backslash \\ newline \n tab \t cr \r bell \u{7} backspace \u{8} form feed \u{c} nul \u{0} é 😀 \u{2028}";
        let attempt = |n: i32, error: Option<&str>| attempts::Model {
            id: 7 + i64::from(n),
            request_id: "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b".into(),
            ts_ms: 1_764_633_600_123,
            attempt: n,
            provider_id: "azure \"eu\"".into(),
            model: "gpt-4o".into(),
            status: Some(500 + n),
            error_kind: error.map(str::to_string),
            error_message: error.map(|_| tricky.to_string()),
            latency_ms: -3,
            mitigated: n == 0,
        };
        LedgerRecord {
            request: requests::Model {
                id: "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b".into(),
                ts_ms: -1,
                project: Some("proj/\"x\"".into()),
                source: Some("wrk".into()),
                key_label: Some("Team \\ Alpha".into()),
                endpoint: "chat_completions".into(),
                provider_id: Some("azure".into()),
                provider_type: Some("azure_openai".into()),
                model_requested: Some("gpt-4o".into()),
                model_used: Some("gpt-4o-2024-08-06".into()),
                status: 502,
                outcome: "mitigated".into(),
                error_kind: Some("upstream_http_502".into()),
                error_message: Some(tricky.into()),
                streamed: true,
                latency_ms: i64::MAX,
                ttfb_ms: Some(i64::MIN),
                input_tokens: 1,
                output_tokens: 2,
                cached_input_tokens: 3,
                cache_write_tokens: 4,
                cost_usd: Some(0.000_137_5),
                priced: true,
                usage_estimated: true,
                route_rank: Some(1),
                needs: Some("tools,vision".into()),
                prompt_tokens_estimate: Some(1_701),
                max_tokens: Some(300),
                translated: Some("anthropic->openai".into()),
                route_plan: Some("[\"openai/gpt-4o\",\"azure \\\"eu\\\"/gpt-4o\"]".into()),
                route_decided_by: Some("affinity".into()),
                breaker_skips: 2,
                sanitizer_findings: Some("{\"email\":2}".into()),
                route_profile: Some("cheap".into()),
                attempts: 2,
            },
            attempts: vec![attempt(0, Some("connect")), attempt(1, None)],
        }
    }

    fn line_of(record: &LedgerRecord) -> Vec<u8> {
        let mut out = Vec::new();
        write(&mut out, 42, record);
        out
    }

    #[test]
    fn every_field_reads_back_as_it_was() {
        let record = full();

        let (seq, back) = parse(&line_of(&record)).unwrap();

        assert_eq!(seq, 42);
        assert_eq!(back.request, record.request);
        assert_eq!(back.attempts, record.attempts);
    }

    #[test]
    fn the_line_is_the_json_serde_writes() {
        #[derive(serde::Serialize)]
        struct Serde<'a> {
            seq: u64,
            request: &'a requests::Model,
            attempts: &'a [attempts::Model],
        }
        let mut empty = LedgerRecord {
            request: requests::Model::default(),
            attempts: Vec::new(),
        };
        empty.request.cost_usd = Some(f64::NAN);
        for record in [full(), empty] {
            let line = line_of(&record);
            let expected = serde_json::to_vec(&Serde {
                seq: 42,
                request: &record.request,
                attempts: record.attempts_kept(),
            })
            .unwrap();

            assert_eq!(line.last(), Some(&b'\n'));
            assert_eq!(
                String::from_utf8(line[..line.len() - 1].to_vec()).unwrap(),
                String::from_utf8(expected).unwrap()
            );
        }
    }

    #[test]
    fn the_sequence_number_is_read_from_the_start_of_the_line() {
        let line = line_of(&full());

        assert_eq!(seq(&line), Some(42));
        assert_eq!(seq(b"{\"seq\":12"), None, "cut before its end");
        assert_eq!(seq(b"garbage"), None);
    }
}
