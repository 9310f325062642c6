//! Which parts of a request body are scanned: every string the provider would read, whatever the
//! API shape (messages, system prompts, content parts, tool arguments and results, metadata),
//! except fields that name things (model, role, type, ids) and inline base64 media.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::{Findings, Sanitizer, ScanOutcome};

/// Fields whose strings are names and ids chosen by the client's code, not prompt text.
const NOT_TEXT: &[&str] = &[
    "model",
    "role",
    "type",
    "id",
    "tool_call_id",
    "tool_use_id",
    "media_type",
    "detail",
    "format",
];

/// A `url` that carries its content inline (`data:` URL): media, not text.
fn is_inline_url(url: &str) -> bool {
    url.starts_with("data:")
}

/// A `data` string long and unbroken enough to be encoded media, not text.
fn is_inline_data(data: &str) -> bool {
    data.len() > 4096 && !data.contains(' ')
}

/// Scans every text string of a JSON body; a body that is not JSON is scanned as text.
///
/// Most bodies hold nothing to find, so a first pass reads the JSON in place (strings borrowed
/// from the body, no tree built) and stops at the first string with a hit. Only then, or for a
/// body that is not JSON, is the body scanned again in full, as a tree that can be redacted.
/// The first pass looks at every string the full scan looks at, so a clean answer from it is
/// the full scan's answer.
pub fn scan_json(sanitizer: &Sanitizer, body: &[u8]) -> ScanOutcome {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let clean = Node::plain(sanitizer)
        .deserialize(&mut deserializer)
        .and_then(|()| deserializer.end())
        .is_ok();
    if clean {
        return ScanOutcome::default();
    }
    scan_json_tree(sanitizer, body)
}

/// The full scan: the body parsed into a tree, every text string scanned and redacted in place.
fn scan_json_tree(sanitizer: &Sanitizer, body: &[u8]) -> ScanOutcome {
    let mut findings = Findings::new();
    let mut blocking = Vec::new();
    let Ok(mut value) = serde_json::from_slice::<Value>(body) else {
        let redacted = sanitizer.scan_text(body, &mut findings, &mut blocking);
        return ScanOutcome {
            findings,
            blocking,
            redacted,
        };
    };
    let mut changed = false;
    walk(
        sanitizer,
        &mut value,
        &mut findings,
        &mut blocking,
        &mut changed,
    );
    let redacted = if changed {
        serde_json::to_vec(&value).ok()
    } else {
        None
    };
    ScanOutcome {
        findings,
        blocking,
        redacted,
    }
}

fn walk(
    sanitizer: &Sanitizer,
    value: &mut Value,
    findings: &mut Findings,
    blocking: &mut Vec<String>,
    changed: &mut bool,
) {
    match value {
        Value::String(text) => {
            if let Some(redacted) = sanitizer.scan_text(text.as_bytes(), findings, blocking) {
                // Redactions replace whole characters (`scan_text`), so the text stays UTF-8.
                if let Ok(redacted) = String::from_utf8(redacted) {
                    *text = redacted;
                    *changed = true;
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                walk(sanitizer, item, findings, blocking, changed);
            }
        }
        Value::Object(map) => {
            let base64_source = map.get("type").and_then(Value::as_str) == Some("base64");
            for (key, item) in map.iter_mut() {
                let skip = NOT_TEXT.contains(&key.as_str())
                    || (base64_source && key == "data")
                    || (key == "url" && item.as_str().is_some_and(is_inline_url))
                    || (key == "data" && item.as_str().is_some_and(is_inline_data));
                if !skip {
                    walk(sanitizer, item, findings, blocking, changed);
                }
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// The first pass over one JSON value: succeeds when no string in it has a hit, and fails
/// (ending the parse) at the first one that has, or when the JSON is malformed.
#[derive(Clone, Copy)]
struct Node<'s> {
    sanitizer: &'s Sanitizer,
    /// A string value this says yes to is left unscanned (inline media under `url`/`data`,
    /// as `walk` skips it); only the member's own value, not what is nested in it.
    skip: fn(&str) -> bool,
}

/// A string value that was scanned and had a hit (the parse stops there).
const HIT: &str = "sanitizer hit";

impl<'s> Node<'s> {
    fn plain(sanitizer: &'s Sanitizer) -> Self {
        Self {
            sanitizer,
            skip: |_| false,
        }
    }

    fn skipping(self, skip: fn(&str) -> bool) -> Self {
        Self { skip, ..self }
    }

    fn nested(self) -> Self {
        Self::plain(self.sanitizer)
    }
}

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<(), E> {
        if (self.skip)(v) || self.sanitizer.hits(v.as_bytes()).is_empty() {
            Ok(())
        } else {
            Err(E::custom(HIT))
        }
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(self.nested())?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        // A short base64 `data` under `"type": "base64"` is scanned here (the type may come
        // after it): a hit only sends the body to the full scan, which skips it.
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::NotText => {
                    map.next_value::<IgnoredAny>()?;
                }
                Key::Url => map.next_value_seed(self.nested().skipping(is_inline_url))?,
                Key::Data => map.next_value_seed(self.nested().skipping(is_inline_data))?,
                Key::Other => map.next_value_seed(self.nested())?,
            }
        }
        Ok(())
    }
}

/// How the first pass treats a member, by its key (as `walk` does).
enum Key {
    NotText,
    Url,
    Data,
    Other,
}

impl<'de> serde::Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(KeyVisitor)
    }
}

struct KeyVisitor;

impl Visitor<'_> for KeyVisitor {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E>(self, key: &str) -> Result<Key, E> {
        Ok(match key {
            "url" => Key::Url,
            "data" => Key::Data,
            key if NOT_TEXT.contains(&key) => Key::NotText,
            _ => Key::Other,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::SanitizationSettings;

    fn engine() -> Sanitizer {
        let settings = SanitizationSettings {
            enabled: true,
            scan_credentials: true,
            scan_pii: true,
            redact_pii: true,
            redact_credentials: false,
            compliance_gate: false,
            compliance_gate_likely: false,
            inline_scan_bytes: 32 * 1024,
            patterns: Vec::new(),
        };
        Sanitizer::new(&settings).unwrap_or_else(|e| panic!("the shipped patterns compile: {e}"))
    }

    fn same(sanitizer: &Sanitizer, body: &[u8]) {
        let fast = scan_json(sanitizer, body);
        let full = scan_json_tree(sanitizer, body);
        assert_eq!(
            fast.findings,
            full.findings,
            "{}",
            String::from_utf8_lossy(body)
        );
        assert_eq!(fast.blocking, full.blocking);
        assert_eq!(fast.redacted, full.redacted);
    }

    #[test]
    fn the_first_pass_answers_as_the_full_scan_does() {
        let sanitizer = engine();
        let corpus = include_str!("../../tests/sanitizer/corpus.jsonl");
        let mut cases = 0;
        for line in corpus.lines().filter(|l| !l.trim().is_empty()) {
            let case: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}"));
            let text = case["text"].clone();
            // The same text where each API shape carries it, and under keys that are skipped.
            for body in [
                serde_json::json!({"model": "gpt-4o", "messages": [{"role": "user", "content": text}]}),
                serde_json::json!({"model": "claude", "system": [{"type": "text", "text": text}], "messages": []}),
                serde_json::json!({"model": text, "id": text, "messages": [{"role": "tool", "tool_call_id": text, "content": [{"type": "text", "text": "ok"}]}]}),
                serde_json::json!({"messages": [{"content": [{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": text}}]}]}),
                serde_json::json!({"messages": [{"content": [{"type": "image_url", "image_url": {"url": text}}]}], "metadata": {"note": [1, true, null, text]}}),
            ] {
                same(&sanitizer, body.to_string().as_bytes());
                cases += 1;
            }
        }
        assert!(cases > 1000, "the corpus was read ({cases} bodies)");
    }

    #[test]
    fn inline_media_and_malformed_bodies_are_treated_as_before() {
        let sanitizer = engine();
        let key = "sk-proj-GQW8Z4PyTXlj91tc9SVua3xUWoSnZCrKTnzJ2t8ZNdbGumO2bs1dACKokBnlDLgFLMO_Fqj1ZsT3BlbkFJwbAVWLbaw";
        let long = format!("{}{key}", "A".repeat(5000));
        for body in [
            format!(
                r#"{{"messages":[{{"content":[{{"source":{{"data":"{key}","type":"base64"}}}}]}}]}}"#
            ),
            format!(r#"{{"messages":[{{"content":[{{"data":"{long}"}}]}}]}}"#),
            format!(r#"{{"messages":[{{"content":[{{"url":"data:image/png;base64,{key}"}}]}}]}}"#),
            format!(r#"{{"messages":[{{"content":[{{"url":"https://x.test/?k={key}"}}]}}]}}"#),
            format!(r#"{{"messages":[{{"content":"{key}"}}"#),
            format!("not json at all {key}"),
            format!(r#"{{"messages":[]}} trailing {key}"#),
            format!(r#""{key}""#),
        ] {
            same(&sanitizer, body.as_bytes());
        }
        let found = scan_json(&sanitizer, format!(r#"{{"content":"{key}"}}"#).as_bytes());
        assert_eq!(found.findings.get("openai_key"), Some(&1));
    }
}
