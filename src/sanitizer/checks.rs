//! Validators a pattern's match must also pass: checksums and the tests that tell a secret from a placeholder.

/// A named validator from `settings/sanitizer.toml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    /// Holds at least one ASCII digit and one ASCII letter (keys, not words).
    DigitAndLetter,
    /// Not a placeholder, a type name, or a reference to where the secret really is.
    NotPlaceholder,
    /// Digits (separators ignored) with a card issuer prefix and a valid Luhn check digit.
    Luhn,
    /// A valid ISO 7064 mod-97 IBAN checksum and length.
    Iban,
    /// A US SSN outside the never-issued ranges.
    Ssn,
    /// An email whose "TLD" is not a file extension (icon@2x.png).
    NotFileExtension,
    /// An international number with 8 to 15 digits in all.
    PhoneDigits,
    /// Looks random: 12+ characters, a digit and a letter, and at least 3 bits of entropy per
    /// character, for values whose name alone (token, auth, creds) is weak evidence.
    Random,
    /// A PEM block whose body holds at least 40 base64 characters: not a word, not empty.
    PemBody,
    /// A JWT whose header decodes to JSON naming an `alg`; with an empty signature, `none`.
    JwtHeader,
}

/// Names that end in `token` but stand for a cursor or a counter, not a credential.
const CURSOR_NAMES: &[&str] = &[
    "page_token",
    "pagetoken",
    "next_token",
    "nexttoken",
    "next_page_token",
    "nextpagetoken",
    "pagination_token",
    "continuation_token",
    "continuationtoken",
    "sync_token",
    "synctoken",
    "cancel_token",
    "cancellation_token",
    "cancellationtoken",
    "csrf_token",
    "csrftoken",
    "resume_token",
    "max_token",
];

impl Check {
    /// Whether `value` (the `secret` group, or the whole match) passes; `whole` is the match.
    pub fn passes(self, whole: &[u8], value: &[u8]) -> bool {
        match self {
            Self::Random => random(value) && !cursor_name(whole),
            Self::PemBody => pem_body(value),
            Self::JwtHeader => jwt_header(value),
            Self::DigitAndLetter => {
                value.iter().any(u8::is_ascii_digit) && value.iter().any(u8::is_ascii_alphabetic)
            }
            Self::NotPlaceholder => {
                !is_placeholder(value) && !reference_name(whole) && !known_format(value)
            }
            Self::Luhn => card(value),
            Self::Iban => iban(value),
            Self::Ssn => ssn(value),
            Self::NotFileExtension => !file_extension_tld(value),
            Self::PhoneDigits => {
                (8..=15).contains(&value.iter().filter(|b| b.is_ascii_digit()).count())
            }
        }
    }
}

/// Words that stand where a secret would, but are not one.
const NOT_SECRETS: &[&str] = &[
    "string",
    "str",
    "undefined",
    "required",
    "optional",
    "boolean",
    "number",
    "bytes",
    "secret",
    "password",
    "hidden",
    "sensitive",
    "redacted",
    "changeit_later",
    "example",
    "placeholder",
    "your_password",
    "your-password",
    "yourpassword",
    "notarealpassword",
    "not-needed",
    "not_needed",
    "notneeded",
    "unused",
    "anything",
    "ignored",
];

/// The endings of type names that stand where a secret's value would (`secret: SecretString`,
/// `key: ApiKey`): a CamelCase word of letters only with one of these last.
const TYPE_ENDINGS: &[&str] = &[
    "String",
    "Str",
    "Secret",
    "Token",
    "Key",
    "Password",
    "Credentials",
    "Config",
];

/// A CamelCase type name such as `SecretString` or `Option<ApiKey>`'s `ApiKey`.
fn type_name(text: &str) -> bool {
    text.starts_with(|c: char| c.is_ascii_uppercase())
        && text.chars().all(|c| c.is_ascii_alphabetic())
        && text.chars().filter(char::is_ascii_uppercase).count() >= 2
        && TYPE_ENDINGS.iter().any(|e| text.ends_with(e))
}

/// Fragments of documentation placeholders ("sk-your-key-here", "my_example_token").
const PLACEHOLDER_FRAGMENTS: &[&str] = &[
    "your-",
    "your_",
    "yourkey",
    "-here",
    "_here",
    "example",
    "placeholder",
    "replace-me",
    "replace_me",
];

/// References to where a secret lives, rather than the secret.
const REFERENCES: &[&str] = &[
    "process.env",
    "os.environ",
    "os.getenv",
    "env.",
    "env[",
    "settings.",
    "config.",
    "self.",
    "this.",
    "secrets.",
    "vault:",
    "arn:aws:",
];

fn is_placeholder(value: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(value) else {
        return false;
    };
    let trimmed = text.trim_matches(|c| c == '"' || c == '\'');
    let lower = trimmed.to_ascii_lowercase();
    let first = trimmed.chars().next().unwrap_or(' ');
    matches!(first, '$' | '<' | '{' | '%' | '[')
        || trimmed.chars().all(|c| matches!(c, '*' | 'x' | 'X' | '.' | '-' | '_' | '•'))
        || matches!(lower.as_str(), "null" | "none" | "nil" | "true" | "false" | "")
        || NOT_SECRETS.contains(&lower.as_str())
        || type_name(trimmed)
        || REFERENCES.iter().any(|r| lower.starts_with(r))
        || PLACEHOLDER_FRAGMENTS.iter().any(|f| lower.contains(f))
        // An ellipsis stands for the rest of a key in documentation ("sk-...", "sk-ant-…").
        || trimmed.contains("...")
        || trimmed.contains('…')
        // An environment variable's name (DB_PASSWORD, YOUR_API_TOKEN), not its value.
        || (trimmed.contains('_')
            && trimmed.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
        // ALL-CAPS words such as YOURTOKENHERE.
        || (trimmed.len() >= 6 && trimmed.chars().all(|c| c.is_ascii_uppercase()))
}

/// Words that mark a documentation value in any token ("AKIA…EXAMPLE", "sk_test_dummy…").
const EXAMPLE_WORDS: &[&str] = &[
    "example",
    "sample",
    "dummy",
    "placeholder",
    "your-",
    "your_",
    "yourkey",
    "yourtoken",
    "insert",
    "replace-me",
    "replace_me",
    "redacted",
];

/// The rule every credential kind passes: not a documented example key (`examples`, from
/// settings/sanitizer.toml), not a value marked as one, not a run of one character (`xxxx`,
/// `0000`, `####`, `****`) nor a counting sequence (`abcdefgh`, `12345678`), not `<…>`,
/// `${…}` or `{{…}}`. A multi-line value (a PEM block) is judged by its words only: runs of
/// `A` there are DER's zero bytes, not a placeholder.
pub fn is_example(value: &[u8], examples: &[String]) -> bool {
    let Ok(text) = std::str::from_utf8(value) else {
        return false;
    };
    let lower = text.to_ascii_lowercase();
    if examples.iter().any(|e| text.contains(e.as_str()))
        || EXAMPLE_WORDS.iter().any(|w| lower.contains(w))
        || text.contains("${")
        || text.contains("{{")
        || text.contains('<')
        || text.contains("...")
        || text.contains('…')
    {
        return true;
    }
    if text.contains('\n') || text.contains("\\n") {
        return false;
    }
    longest_run(text.as_bytes()) >= 6 || longest_sequence(text.as_bytes()) >= 8
}

/// The longest run of one character (`x` and `X` count as one: `xXxX` is a stand-in too).
fn longest_run(bytes: &[u8]) -> usize {
    let (mut best, mut run) = (0, 0);
    let mut last = None;
    for &b in bytes {
        let b = if b == b'X' { b'x' } else { b };
        run = if Some(b) == last { run + 1 } else { 1 };
        last = Some(b);
        best = best.max(run);
    }
    best
}

/// The longest run of letters or digits counting up by one (`0123`, `abcd`, `aBcD`).
fn longest_sequence(bytes: &[u8]) -> usize {
    let (mut best, mut run) = (0, 0);
    let mut last: Option<u8> = None;
    for &b in bytes {
        let b = b.to_ascii_lowercase();
        run = match last {
            Some(prev) if b.is_ascii_alphanumeric() && prev.wrapping_add(1) == b => run + 1,
            _ if b.is_ascii_alphanumeric() => 1,
            _ => 0,
        };
        last = Some(b);
        best = best.max(run);
    }
    best
}

/// Shannon entropy in bits per character.
fn entropy(bytes: &[u8]) -> f64 {
    let mut counts = [0u32; 256];
    for &b in bytes {
        counts[usize::from(b)] += 1;
    }
    let n = bytes.len() as f64;
    counts
        .iter()
        .filter(|c| **c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum()
}

/// Prefixes of the formats the sanitizer knows: a value that opens with one is judged by its
/// format's pattern alone, so a truncated or malformed key (`sk-ant-api03-Xk3r…` cut short,
/// `xoxp-12345-abcde`) assigned to a secret's name is not a generic finding either.
const FORMAT_PREFIXES: &[&str] = &[
    "sk-ant-",
    "sk-proj-",
    "sk-svcacct-",
    "sk-admin-",
    "sk-or-",
    "sk_live_",
    "sk_test_",
    "rk_live_",
    "rk_test_",
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "github_pat_",
    "glpat-",
    "gldt-",
    "glrt-",
    "glptt-",
    "xoxb-",
    "xoxp-",
    "xoxa-",
    "xoxr-",
    "xoxs-",
    "xoxe",
    "xapp-",
    "gsk_",
    "hf_",
    "r8_",
    "npm_",
    "pypi-",
    "shpat_",
    "shpca_",
    "shppa_",
    "shpss_",
    "AKIA",
    "ASIA",
    "AIza",
];

/// Whether the value opens with a known format's prefix (see [`FORMAT_PREFIXES`]).
fn known_format(value: &[u8]) -> bool {
    let value = trim_quotes(value);
    FORMAT_PREFIXES
        .iter()
        .any(|p| value.starts_with(p.as_bytes()))
}

fn random(value: &[u8]) -> bool {
    let value = trim_quotes(value);
    value.len() >= 12
        && value.iter().any(u8::is_ascii_digit)
        && value.iter().any(u8::is_ascii_alphabetic)
        && entropy(value) >= 3.0
        && !is_placeholder(value)
        && !known_format(value)
}

fn trim_quotes(value: &[u8]) -> &[u8] {
    let start = value
        .iter()
        .position(|b| !matches!(b, b'"' | b'\'' | b'`'))
        .unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| !matches!(b, b'"' | b'\'' | b'`'))
        .map_or(start, |e| e + 1);
    &value[start..end.max(start)]
}

/// The assignment's name (the match up to its operator), lower case, `-` read as `_`.
fn name_of(whole: &[u8]) -> String {
    let name: Vec<u8> = whole
        .iter()
        .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'$'))
        .map(|b| {
            if *b == b'-' {
                b'_'
            } else {
                b.to_ascii_lowercase()
            }
        })
        .collect();
    String::from_utf8_lossy(&name).into_owned()
}

/// Whether the assignment's name is a cursor's (page_token, next_token).
fn cursor_name(whole: &[u8]) -> bool {
    let name = name_of(whole);
    CURSOR_NAMES.iter().any(|c| name.ends_with(c))
}

/// Whether the name says its value is where a secret is kept (Helm's existingSecret,
/// externalSecret, Kubernetes' fromSecret), not the secret.
fn reference_name(whole: &[u8]) -> bool {
    let name = name_of(whole).replace('_', "");
    let name = name.rsplit(['.', '$']).next().unwrap_or_default();
    ["existing", "external", "from"]
        .iter()
        .any(|p| name.starts_with(p))
}

fn pem_body(value: &[u8]) -> bool {
    let text = String::from_utf8_lossy(value).replace("\\n", "\n");
    let body: usize = text
        .lines()
        .filter(|l| !l.contains("-----") && !l.contains(':'))
        .map(|l| {
            l.bytes()
                .filter(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
                .count()
        })
        .sum();
    body >= 40
}

/// Decodes base64url (or base64) without padding; `None` on any other character.
fn base64url(text: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for &c in text {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            b'=' => break,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

fn jwt_header(value: &[u8]) -> bool {
    let mut parts = value.split(|b| *b == b'.');
    let (Some(header), Some(_payload), signature) = (parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let Some(header) = base64url(header) else {
        return false;
    };
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(&header) else {
        return false;
    };
    let Some(alg) = json.get("alg").and_then(serde_json::Value::as_str) else {
        return false;
    };
    let unsigned = signature.is_none_or(<[u8]>::is_empty);
    !unsigned || alg.eq_ignore_ascii_case("none")
}

fn digits(value: &[u8]) -> Vec<u8> {
    value
        .iter()
        .filter(|b| b.is_ascii_digit())
        .map(|b| b - b'0')
        .collect()
}

/// A card number: issuer prefix, length, Luhn.
fn card(value: &[u8]) -> bool {
    let d = digits(value);
    let prefix = |n: usize| {
        d.iter()
            .take(n)
            .fold(0u32, |acc, x| acc * 10 + u32::from(*x))
    };
    let issuer = match d.first() {
        Some(4) => matches!(d.len(), 13 | 16 | 19),
        Some(5) => (51..=55).contains(&prefix(2)) && d.len() == 16,
        Some(2) => (2221..=2720).contains(&prefix(4)) && d.len() == 16,
        Some(3) => matches!(prefix(2), 34 | 37) && d.len() == 15,
        Some(6) => (prefix(4) == 6011 || prefix(2) == 65) && d.len() == 16,
        _ => false,
    };
    issuer && luhn(&d)
}

fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 {
                    doubled - 9
                } else {
                    doubled
                }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

fn iban(value: &[u8]) -> bool {
    let compact: Vec<u8> = value.iter().copied().filter(|b| *b != b' ').collect();
    if !(15..=34).contains(&compact.len()) {
        return false;
    }
    let (head, tail) = compact.split_at(4);
    let mut remainder: u32 = 0;
    for &c in tail.iter().chain(head) {
        let n = match c {
            b'0'..=b'9' => u32::from(c - b'0'),
            b'A'..=b'Z' => u32::from(c - b'A') + 10,
            _ => return false,
        };
        remainder = if n >= 10 {
            (remainder * 100 + n) % 97
        } else {
            (remainder * 10 + n) % 97
        };
    }
    remainder == 1
}

fn ssn(value: &[u8]) -> bool {
    let d = digits(value);
    if d.len() != 9 {
        return false;
    }
    let area = u32::from(d[0]) * 100 + u32::from(d[1]) * 10 + u32::from(d[2]);
    let group = u32::from(d[3]) * 10 + u32::from(d[4]);
    let serial = d[5..].iter().fold(0u32, |acc, x| acc * 10 + u32::from(*x));
    area != 0 && area != 666 && area < 900 && group != 0 && serial != 0
}

const FILE_EXTENSIONS: &[&str] = &[
    "png", "jpg", "jpeg", "gif", "svg", "webp", "ico", "bmp", "tif", "tiff", "avif", "heic", "pdf",
    "js", "mjs", "ts", "tsx", "jsx", "css", "scss", "html", "htm", "json", "xml", "yml", "yaml",
    "txt", "md", "csv", "zip", "gz", "tar", "mp3", "mp4", "mov", "wav", "woff", "woff2", "ttf",
    "otf", "map", "lock", "py", "rb", "rs", "go", "java", "kt", "swift", "php", "sh",
];

fn file_extension_tld(value: &[u8]) -> bool {
    let tld = value.rsplit(|b| *b == b'.').next().unwrap_or_default();
    let tld = String::from_utf8_lossy(tld).to_ascii_lowercase();
    FILE_EXTENSIONS.contains(&tld.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pass(check: Check, value: &[u8]) -> bool {
        check.passes(value, value)
    }

    #[test]
    fn checksums() {
        assert!(pass(Check::Luhn, b"4111 1111 1111 1111"));
        assert!(!pass(Check::Luhn, b"4111 1111 1111 1112"));
        assert!(pass(Check::Luhn, b"378282246310005"));
        assert!(!pass(Check::Luhn, b"9111111111111111"));
        assert!(pass(Check::Iban, b"DE89 3704 0044 0532 0130 00"));
        assert!(pass(Check::Iban, b"GB82WEST12345698765432"));
        assert!(!pass(Check::Iban, b"DE89 3704 0044 0532 0130 01"));
        assert!(pass(Check::Ssn, b"123-45-6789"));
        assert!(!pass(Check::Ssn, b"666-45-6789") || !pass(Check::Ssn, b"000-12-3456"));
    }

    #[test]
    fn placeholders_are_not_secrets() {
        for p in [
            "${DB_PASS}",
            "<password>",
            "********",
            "xxxxxxxx",
            "process.env.DB_PASSWORD",
            "DB_PASSWORD",
            "YOURTOKENHERE",
            "null",
            "sk-...",
            "\"sk-ant-...\"",
            "sk-proj-…",
        ] {
            assert!(!pass(Check::NotPlaceholder, p.as_bytes()), "{p}");
        }
        for s in ["hunter22", "changeme", "S3cr3t!pass", "Tr0ub4dor&3"] {
            assert!(pass(Check::NotPlaceholder, s.as_bytes()), "{s}");
        }
    }

    #[test]
    fn a_value_named_weakly_must_look_random() {
        for random in [
            "Vq8rT2mZ4kLpW9sYc3Nd",
            "\"b5e303db4d4f7127ab1be460d786e34f\"",
        ] {
            assert!(pass(Check::Random, random.as_bytes()), "{random}");
        }
        for plain in [
            "authentication-required",
            "abc123",
            "aaaaaaaaaaaa1",
            "xoxp-12345-abcdefgh",
            "${VAULT_TOKEN}",
        ] {
            assert!(!pass(Check::Random, plain.as_bytes()), "{plain}");
        }
        let cursor = b"next_page_token = Vq8rT2mZ4kLpW9sYc3Nd";
        assert!(!Check::Random.passes(cursor, b"Vq8rT2mZ4kLpW9sYc3Nd"));
    }

    #[test]
    fn a_jwt_names_its_alg_and_an_unsigned_one_says_none() {
        // {"alg":"HS256","typ":"JWT"} / {"alg":"none"} / {"foo":"bar"}
        let hs256 = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";
        let none = "eyJhbGciOiJub25lIn0";
        let no_alg = "eyJmb28iOiJiYXIifQ";
        let payload = "eyJzdWIiOiIxIn0";
        assert!(pass(
            Check::JwtHeader,
            format!("{hs256}.{payload}.c2lnbmF0dXJlMTIz").as_bytes()
        ));
        assert!(pass(
            Check::JwtHeader,
            format!("{none}.{payload}.").as_bytes()
        ));
        assert!(!pass(
            Check::JwtHeader,
            format!("{hs256}.{payload}.").as_bytes()
        ));
        assert!(!pass(
            Check::JwtHeader,
            format!("{no_alg}.{payload}.c2lnbmF0dXJlMTIz").as_bytes()
        ));
    }

    #[test]
    fn the_example_rule_knows_runs_sequences_words_and_listed_keys() {
        let listed = vec!["AKIAIOSFODNN7EXAMPLE".to_string()];
        for stand_in in [
            "ghp_xxxxxxxxxxxxxxxxxxxx",
            "ghp_XxXxXxXxXxXx",
            "SK000000abc",
            "xoxp-####-######",
            "sk_live_abcdefghij",
            "key-12345678",
            "sk-sample-key",
            "AKIAIOSFODNN7EXAMPLE",
            "${TOKEN}",
            "<token>",
        ] {
            assert!(is_example(stand_in.as_bytes(), &listed), "{stand_in}");
        }
        for real in [
            "ghp_pyCVxlGeL844p6TBL0eg9mY7FC7zmwDuEQPo",
            "AKIAOWF7KW23WF4ZECIR",
        ] {
            assert!(!is_example(real.as_bytes(), &listed), "{real}");
        }
        // A PEM body's runs of A are DER's zero bytes.
        let pem = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAAB\n-----END OPENSSH PRIVATE KEY-----";
        assert!(!is_example(pem.as_bytes(), &listed));
    }
}
