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
}

impl Check {
    /// Whether `value` (the `secret` group, or the whole match) passes.
    pub fn passes(self, value: &[u8]) -> bool {
        match self {
            Self::DigitAndLetter => {
                value.iter().any(u8::is_ascii_digit) && value.iter().any(u8::is_ascii_alphabetic)
            }
            Self::NotPlaceholder => !is_placeholder(value),
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
];

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

    #[test]
    fn checksums() {
        assert!(Check::Luhn.passes(b"4111 1111 1111 1111"));
        assert!(!Check::Luhn.passes(b"4111 1111 1111 1112"));
        assert!(Check::Luhn.passes(b"378282246310005"));
        assert!(!Check::Luhn.passes(b"9111111111111111"));
        assert!(Check::Iban.passes(b"DE89 3704 0044 0532 0130 00"));
        assert!(Check::Iban.passes(b"GB82WEST12345698765432"));
        assert!(!Check::Iban.passes(b"DE89 3704 0044 0532 0130 01"));
        assert!(Check::Ssn.passes(b"123-45-6789"));
        assert!(!Check::Ssn.passes(b"666-45-6789") || !Check::Ssn.passes(b"000-12-3456"));
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
            assert!(!Check::NotPlaceholder.passes(p.as_bytes()), "{p}");
        }
        for s in ["hunter22", "changeme", "S3cr3t!pass", "Tr0ub4dor&3"] {
            assert!(Check::NotPlaceholder.passes(s.as_bytes()), "{s}");
        }
    }
}
