//! A provider key the gateway holds, with what it takes to find it in an answer, built once.

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};

/// The text that stands in for a key: as long as the key, so a body's length stays right.
const MASK: &[u8] = b"[REDACTED]";

/// A key held by the gateway (a provider's own, or a virtual key's), shared by every request
/// that sends it: the searcher and the same-length mask are built when the config is loaded,
/// not per request.
pub struct HeldKey {
    secret: SecretString,
    finder: memchr::memmem::Finder<'static>,
    replacement: Vec<u8>,
}

impl std::fmt::Debug for HeldKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HeldKey([REDACTED])")
    }
}

impl HeldKey {
    /// The key `secret`; None when it is empty (an empty key is no key).
    pub fn new(secret: SecretString) -> Option<Arc<Self>> {
        let len = secret.expose_secret().len();
        if len == 0 {
            return None;
        }
        let finder = memchr::memmem::Finder::new(secret.expose_secret().as_bytes()).into_owned();
        Some(Arc::new(Self {
            secret,
            finder,
            replacement: replacement(len),
        }))
    }

    /// The secret itself, for the upstream's credential header.
    pub fn secret(&self) -> &SecretString {
        &self.secret
    }

    /// The key's bytes.
    pub fn bytes(&self) -> &[u8] {
        self.secret.expose_secret().as_bytes()
    }

    /// Where the key first occurs in `haystack`.
    pub fn find(&self, haystack: &[u8]) -> Option<usize> {
        self.finder.find(haystack)
    }

    /// What replaces the key: `[REDACTED]` stretched or cut to the key's length.
    pub fn replacement(&self) -> &[u8] {
        &self.replacement
    }
}

/// `[REDACTED]` stretched or cut to `len` bytes.
fn replacement(len: usize) -> Vec<u8> {
    if len < MASK.len() {
        return vec![b'*'; len];
    }
    let mut out = MASK[..MASK.len() - 1].to_vec();
    out.resize(len - 1, b'*');
    out.push(b']');
    out
}
