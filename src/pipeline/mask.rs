//! Masking the provider key in whatever an upstream sends back (headers, whole bodies, streamed
//! bodies across chunk boundaries), so a team holding only a virtual key never sees the real one.

use std::sync::Arc;

use actix_web::http::header::HeaderValue;
use bytes::{Bytes, BytesMut};

use crate::secret::HeldKey;

/// Masks one key in a stream of chunks. A chunk that ends with the start of the key keeps that
/// tail back until the next chunk says whether the key follows; any other chunk passes at once.
#[derive(Debug)]
pub struct KeyMask {
    key: Arc<HeldKey>,
    carry: BytesMut,
}

impl KeyMask {
    /// A mask for `key`; None when the gateway holds no key for the request.
    pub fn new(key: Option<&Arc<HeldKey>>) -> Option<Self> {
        key.map(|key| Self {
            key: key.clone(),
            carry: BytesMut::new(),
        })
    }

    /// The bytes of `chunk` (after any held-back tail) that are safe to send now.
    pub fn chunk(&mut self, chunk: Bytes) -> Bytes {
        if self.carry.is_empty()
            && self.key.find(&chunk).is_none()
            && self.partial_tail(&chunk) == 0
        {
            return chunk;
        }
        let mut buffer = std::mem::take(&mut self.carry);
        buffer.extend_from_slice(&chunk);
        self.mask_in_place(&mut buffer);
        let hold = self.partial_tail(&buffer);
        self.carry = buffer.split_off(buffer.len() - hold);
        buffer.freeze()
    }

    /// The tail held back, at the end of the stream (a partial key is not the key).
    pub fn finish(&mut self) -> Bytes {
        std::mem::take(&mut self.carry).freeze()
    }

    /// `bytes` with every occurrence of the key masked.
    pub fn all(&self, bytes: Bytes) -> Bytes {
        if self.key.find(&bytes).is_none() {
            return bytes;
        }
        let mut buffer = BytesMut::from(bytes.as_ref());
        self.mask_in_place(&mut buffer);
        buffer.freeze()
    }

    /// `value` with the key masked, if it holds the key.
    pub fn header(&self, value: &HeaderValue) -> HeaderValue {
        if self.key.find(value.as_bytes()).is_none() {
            return value.clone();
        }
        let masked = self.all(Bytes::copy_from_slice(value.as_bytes()));
        HeaderValue::from_maybe_shared(masked)
            .unwrap_or_else(|_| HeaderValue::from_static("[REDACTED]"))
    }

    fn mask_in_place(&self, buffer: &mut BytesMut) {
        let mut from = 0;
        while let Some(at) = self.key.find(&buffer[from..]) {
            let start = from + at;
            let len = self.key.bytes().len();
            buffer[start..start + len].copy_from_slice(self.key.replacement());
            from = start + len;
        }
    }

    /// The length of the longest tail of `bytes` that is a proper prefix of the key.
    fn partial_tail(&self, bytes: &[u8]) -> usize {
        let key = self.key.bytes();
        let window = bytes.len().min(key.len() - 1);
        let tail = &bytes[bytes.len() - window..];
        memchr::memchr_iter(key[0], tail)
            .map(|at| &tail[at..])
            .find(|rest| key.starts_with(rest))
            .map_or(0, <[u8]>::len)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    fn mask(key: &str) -> KeyMask {
        KeyMask::new(HeldKey::new(SecretString::from(key.to_string())).as_ref()).unwrap()
    }

    #[test]
    fn a_key_split_anywhere_across_chunks_never_passes() {
        let key = "sk-live-0123456789abcdef";
        let text = format!("data: {{\"content\": \"you sent {key} and {key}\"}}\n\n");
        for first in 0..text.len() {
            for second in first..text.len() {
                let mut m = mask(key);
                let mut out = Vec::new();
                for part in [&text[..first], &text[first..second], &text[second..]] {
                    out.extend_from_slice(&m.chunk(Bytes::copy_from_slice(part.as_bytes())));
                }
                out.extend_from_slice(&m.finish());
                let out = String::from_utf8(out).unwrap();
                assert!(!out.contains(key), "{first}/{second}: {out}");
                assert_eq!(out.len(), text.len(), "the length is kept");
                assert!(out.contains("[REDACTED**************]"), "{out}");
            }
        }
    }

    #[test]
    fn chunks_without_the_key_pass_unchanged_and_at_once() {
        let mut m = mask("sk-live-0123456789abcdef");
        let chunk = Bytes::from_static(b"data: {\"content\": \"hello s\"}\n\n");
        assert_eq!(m.chunk(chunk.clone()), chunk);
        let tail = m.chunk(Bytes::from_static(b"data: sk-li"));
        assert_eq!(
            tail,
            Bytes::from_static(b"data: "),
            "a possible key start waits"
        );
        assert_eq!(
            m.chunk(Bytes::from_static(b"ght\n\n")),
            Bytes::from_static(b"sk-light\n\n")
        );
    }

    #[test]
    fn short_keys_and_header_values_are_masked() {
        let m = mask("abc");
        assert_eq!(
            m.all(Bytes::from_static(b"xabcx")),
            Bytes::from_static(b"x***x")
        );
        let value = HeaderValue::from_static("Bearer error=\"abc\"");
        assert_eq!(m.header(&value), "Bearer error=\"***\"");
    }
}
