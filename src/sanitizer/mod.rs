//! The sanitizer's engine: the patterns of `settings/sanitizer.toml` (and the config's own),
//! matched over every string a provider would receive; findings counted by kind, and redacted
//! or blocked as configured. The matched text never leaves this module.

pub mod checks;
pub mod text;

use std::collections::BTreeMap;

use regex::bytes::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};
use serde::Deserialize;

use crate::settings::{CustomPatternAction, SanitizationSettings};
use checks::Check;

const PATTERNS_TOML: &str = include_str!("../../settings/sanitizer.toml");
/// Priority of configured patterns: above the generic rules, below the specific key formats.
const CUSTOM_PRIORITY: i32 = 50;

/// Whether a kind is a credential, personal data, or the operator's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Credential,
    Pii,
    Custom,
}

/// How sure a finding is: by its format (prefix, length, charset, checksum) or only by the
/// name it is assigned to and how random it looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Confidence {
    /// A known format that passed its checks: blocked by `compliance_gate`.
    Certain,
    /// A secret's name and a random-looking value, or a bearer credential of no known
    /// format: blocked only with `compliance_gate_likely` too.
    Likely,
}

/// What to do with a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Log and record it; forward the text.
    Report,
    /// Replace it with `[REDACTED_<KIND>]` before forwarding.
    Redact,
    /// Refuse the request (403); nothing is forwarded.
    Block,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PatternFile {
    /// Documented example keys: a value holding one is not a finding, whatever its kind.
    examples: Vec<String>,
    patterns: Vec<PatternSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PatternSpec {
    kind: String,
    category: Category,
    regex: String,
    #[serde(default)]
    checks: Vec<Check>,
    priority: i32,
    confidence: Confidence,
}

struct Pattern {
    kind: String,
    regex: Regex,
    checks: Vec<Check>,
    /// Credentials pass the example rule too (`checks::is_example`).
    credential: bool,
    priority: i32,
    confidence: Confidence,
    action: Action,
    placeholder: String,
}

/// Counts by kind; never the matched text.
pub type Findings = BTreeMap<String, u32>;

/// What a scan found and what it did.
#[derive(Debug, Default, Clone)]
pub struct ScanOutcome {
    pub findings: Findings,
    /// Kinds that block the request (empty when it may go on).
    pub blocking: Vec<String>,
    /// The body with redactions applied, when any were made.
    pub redacted: Option<Vec<u8>>,
}

/// The compiled patterns and the policy deciding each kind's action.
pub struct Sanitizer {
    patterns: Vec<Pattern>,
    prefilter: RegexSet,
    examples: Vec<String>,
}

impl std::fmt::Debug for Sanitizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sanitizer")
            .field("patterns", &self.patterns.len())
            .finish()
    }
}

fn compile(regex: &str) -> Result<Regex, regex::Error> {
    // ASCII rules keep \b and \d cheap and the DFA fast on any text.
    RegexBuilder::new(regex)
        .unicode(false)
        .size_limit(16 << 20)
        .build()
}

/// A match accepted as a finding: its span (the `secret` group) and pattern.
#[derive(Debug, Clone, Copy)]
struct Hit {
    start: usize,
    end: usize,
    pattern: usize,
}

impl Sanitizer {
    /// Builds the engine from the shipped patterns and the configuration; an invalid custom
    /// pattern is an error naming it.
    pub fn new(settings: &SanitizationSettings) -> Result<Self, String> {
        let file: PatternFile = toml::from_str(PATTERNS_TOML)
            .map_err(|e| format!("invalid settings/sanitizer.toml: {e}"))?;
        let mut patterns = Vec::new();
        for spec in file.patterns {
            let enabled = match spec.category {
                Category::Credential => settings.scan_credentials,
                Category::Pii => settings.scan_pii || settings.redact_pii,
                Category::Custom => true,
            };
            if !enabled {
                continue;
            }
            let redact = match spec.category {
                Category::Credential => settings.redact_credentials,
                Category::Pii => settings.redact_pii,
                Category::Custom => false,
            };
            let gated = match spec.confidence {
                Confidence::Certain => settings.compliance_gate,
                Confidence::Likely => settings.compliance_gate && settings.compliance_gate_likely,
            };
            let action = if redact {
                Action::Redact
            } else if gated {
                Action::Block
            } else {
                Action::Report
            };
            let regex = compile(&spec.regex).map_err(|e| {
                format!(
                    "invalid pattern `{}` in settings/sanitizer.toml: {e}",
                    spec.kind
                )
            })?;
            patterns.push(Pattern {
                placeholder: format!("[REDACTED_{}]", spec.kind.to_ascii_uppercase()),
                kind: spec.kind,
                regex,
                checks: spec.checks,
                credential: spec.category == Category::Credential,
                priority: spec.priority,
                confidence: spec.confidence,
                action,
            });
        }
        for (i, custom) in settings.patterns.iter().enumerate() {
            let regex = compile(&custom.regex).map_err(|e| {
                format!(
                    "[[sanitization.patterns]] {i} (`{}`): invalid regex: {e}",
                    custom.name
                )
            })?;
            patterns.push(Pattern {
                placeholder: format!("[REDACTED_{}]", custom.name.to_ascii_uppercase()),
                kind: custom.name.clone(),
                regex,
                checks: Vec::new(),
                credential: false,
                priority: CUSTOM_PRIORITY,
                confidence: Confidence::Certain,
                action: match custom.action {
                    CustomPatternAction::Report if settings.compliance_gate => Action::Block,
                    CustomPatternAction::Report => Action::Report,
                    CustomPatternAction::Redact => Action::Redact,
                    CustomPatternAction::Block => Action::Block,
                },
            });
        }
        let prefilter = RegexSetBuilder::new(patterns.iter().map(|p| p.regex.as_str()))
            .unicode(false)
            .size_limit(64 << 20)
            .build()
            .map_err(|e| format!("failed to combine the sanitizer patterns: {e}"))?;
        Ok(Self {
            patterns,
            prefilter,
            examples: file.examples,
        })
    }

    /// The confidence of a kind's findings (the highest, where patterns of the kind differ).
    pub fn confidence(&self, kind: &str) -> Option<Confidence> {
        let mut found = None;
        for pattern in self.patterns.iter().filter(|p| p.kind == kind) {
            if pattern.confidence == Confidence::Certain {
                return Some(Confidence::Certain);
            }
            found = Some(pattern.confidence);
        }
        found
    }

    /// Findings in one piece of text, overlaps resolved, in text order.
    fn hits(&self, text: &[u8]) -> Vec<Hit> {
        let matching = self.prefilter.matches(text);
        if !matching.matched_any() {
            return Vec::new();
        }
        let mut candidates: Vec<Hit> = Vec::new();
        for index in matching.iter() {
            let pattern = &self.patterns[index];
            let mut at = 0;
            while let Some(caps) = pattern.regex.captures_at(text, at) {
                let Some(whole) = caps.get(0) else {
                    break;
                };
                let span = caps.name("secret").unwrap_or(whole);
                let value = span.as_bytes();
                if pattern
                    .checks
                    .iter()
                    .all(|c| c.passes(whole.as_bytes(), value))
                    && !(pattern.credential && checks::is_example(value, &self.examples))
                {
                    candidates.push(Hit {
                        start: span.start(),
                        end: span.end(),
                        pattern: index,
                    });
                }
                // A pattern may end with one byte of context after its secret (`(?:[^0-9]|$)`:
                // the regex crate has no look-ahead), which the next match may need as its
                // context before (two phone numbers on consecutive lines): the search goes on
                // from the secret's end then, else from the match's end.
                let next = if whole.end() - span.end() == 1 {
                    span.end()
                } else {
                    whole.end()
                };
                at = if next > at { next } else { at + 1 };
                if at > text.len() {
                    break;
                }
            }
        }
        // Higher priority first, then longer: a specific key format beats `Bearer`, and one
        // secret is one finding.
        candidates.sort_by_key(|h| {
            (
                std::cmp::Reverse(self.patterns[h.pattern].priority),
                std::cmp::Reverse(h.end - h.start),
                h.start,
            )
        });
        let mut accepted: Vec<Hit> = Vec::new();
        for hit in candidates {
            if accepted
                .iter()
                .all(|a| hit.end <= a.start || hit.start >= a.end)
            {
                accepted.push(hit);
            }
        }
        accepted.sort_by_key(|h| h.start);
        accepted
    }

    /// Scans free text (one string); returns the findings and the redacted text if changed.
    pub fn scan_text(
        &self,
        text: &[u8],
        findings: &mut Findings,
        blocking: &mut Vec<String>,
    ) -> Option<Vec<u8>> {
        let hits = self.hits(text);
        if hits.is_empty() {
            return None;
        }
        let mut out: Option<Vec<u8>> = None;
        let mut copied = 0;
        for hit in &hits {
            let pattern = &self.patterns[hit.pattern];
            *findings.entry(pattern.kind.clone()).or_default() += 1;
            match pattern.action {
                Action::Report => {}
                Action::Block => {
                    if !blocking.contains(&pattern.kind) {
                        blocking.push(pattern.kind.clone());
                    }
                }
                Action::Redact => {
                    // A match that starts or ends inside a multi-byte character (a custom
                    // pattern's `.`) takes the whole character with it: the text stays UTF-8.
                    let start = char_start(text, hit.start).max(copied);
                    let end = char_end(text, hit.end).max(start);
                    let buf = out.get_or_insert_with(|| Vec::with_capacity(text.len()));
                    buf.extend_from_slice(&text[copied..start]);
                    buf.extend_from_slice(pattern.placeholder.as_bytes());
                    copied = end;
                }
            }
        }
        if let Some(buf) = out.as_mut() {
            buf.extend_from_slice(&text[copied..]);
        }
        out
    }

    /// Scans a request body (JSON): every string the provider would receive.
    pub fn scan_body(&self, body: &[u8]) -> ScanOutcome {
        text::scan_json(self, body)
    }
}

/// A UTF-8 continuation byte: the second, third or fourth byte of a character.
fn continues_char(byte: u8) -> bool {
    byte & 0xC0 == 0x80
}

/// `at`, moved back to the start of the character it falls in (at most three bytes).
fn char_start(text: &[u8], at: usize) -> usize {
    let mut at = at.min(text.len());
    for _ in 0..3 {
        if at == 0 || at == text.len() || !continues_char(text[at]) {
            break;
        }
        at -= 1;
    }
    at
}

/// `at`, moved on past the rest of the character it falls in (at most three bytes).
fn char_end(text: &[u8], at: usize) -> usize {
    let mut at = at.min(text.len());
    for _ in 0..3 {
        if at == text.len() || !continues_char(text[at]) {
            break;
        }
        at += 1;
    }
    at
}
