//! Server-sent-event framing over the raw upstream bytes: complete events out, byte for byte.
//!
//! Written here rather than taken from an SSE crate because the gateway must forward the
//! upstream's exact bytes: parsers such as eventsource-stream hand back decoded events, from
//! which the original framing (comments, `event:` lines, CRLF) cannot be rebuilt.

use bytes::{Bytes, BytesMut};

/// Splits a byte stream into complete SSE events, each with its terminating blank line.
#[derive(Debug, Default)]
pub struct SseSplitter {
    pending: BytesMut,
    /// How far `pending` is known to hold no event end: each byte is searched about once,
    /// however many chunks an event takes (an upstream that never ends one costs linear time).
    scanned: usize,
}

impl SseSplitter {
    /// Adds bytes and returns the events they complete.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<Bytes> {
        self.pending.extend_from_slice(chunk);
        let mut events = Vec::new();
        while let Some(end) = event_end(&self.pending[self.scanned..]) {
            events.push(self.pending.split_to(self.scanned + end).freeze());
            self.scanned = 0;
        }
        // An end ("\r\n\r\n" at most) may begin in the last three bytes.
        self.scanned = self.pending.len().saturating_sub(3);
        events
    }

    /// What is left when the stream ends: an event without its blank line, if any.
    pub fn finish(&mut self) -> Option<Bytes> {
        self.scanned = 0;
        (!self.pending.is_empty()).then(|| self.pending.split().freeze())
    }
}

/// The end (exclusive) of the first complete event: after "\n\n" or "\r\n\r\n".
fn event_end(buf: &[u8]) -> Option<usize> {
    let lf = memchr::memmem::find(buf, b"\n\n").map(|i| i + 2);
    let crlf = memchr::memmem::find(buf, b"\r\n\r\n").map(|i| i + 4);
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The `data:` payload of an event (several data lines joined by '\n'); None without data.
pub fn event_data(event: &[u8]) -> Option<Vec<u8>> {
    let mut data: Option<Vec<u8>> = None;
    for line in event.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Some(rest) = line.strip_prefix(b"data:") {
            let rest = rest.strip_prefix(b" ").unwrap_or(rest);
            match &mut data {
                Some(d) => {
                    d.push(b'\n');
                    d.extend_from_slice(rest);
                }
                None => data = Some(rest.to_vec()),
            }
        }
    }
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_chunks_come_out_whole_and_unchanged() {
        let mut splitter = SseSplitter::default();
        assert!(splitter.push(b"data: {\"a\"").is_empty());
        let events = splitter.push(b":1}\n\nevent: x\r\ndata: 2\r\n\r\ndata: 3");
        assert_eq!(
            events,
            vec![
                Bytes::from_static(b"data: {\"a\":1}\n\n"),
                Bytes::from_static(b"event: x\r\ndata: 2\r\n\r\n")
            ]
        );
        assert_eq!(splitter.finish(), Some(Bytes::from_static(b"data: 3")));
    }

    #[test]
    fn data_lines_are_joined_and_other_fields_ignored() {
        assert_eq!(
            event_data(b"event: ping\ndata: {\"type\": \"ping\"}\n\n"),
            Some(b"{\"type\": \"ping\"}".to_vec())
        );
        assert_eq!(event_data(b"data:a\ndata: b\n\n"), Some(b"a\nb".to_vec()));
        assert_eq!(event_data(b": comment\n\n"), None);
    }
}
