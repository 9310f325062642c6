//! The SSE readers: any bytes, split anywhere, come out as the same events, byte for byte, and
//! every event ends at its first blank line.

use llm_gateway::api::sse::{event_data, SseSplitter};
use proptest::prelude::*;
use proptest::sample::select;

use crate::generators::{cuts, split};

/// The events of `pieces` fed one after another, and what `finish` hands back.
fn events_of(pieces: &[&[u8]]) -> (Vec<Vec<u8>>, Option<Vec<u8>>) {
    let mut splitter = SseSplitter::default();
    let mut events = Vec::new();
    for piece in pieces {
        events.extend(splitter.push(piece).into_iter().map(|e| e.to_vec()));
    }
    (events, splitter.finish().map(|rest| rest.to_vec()))
}

/// Bytes that look like an event stream: fields, comments and blank lines, LF and CRLF.
fn stream_ish() -> impl Strategy<Value = Vec<u8>> {
    let token = select(
        &[
            "data: ",
            "data:",
            "event: ",
            ": ping",
            "id: 1",
            "{\"a\":1}",
            "[DONE]",
            "\n",
            "\r\n",
            "\r",
            "\n\n",
            "\r\n\r\n",
            "x",
        ][..],
    );
    prop::collection::vec(token, 0..40).prop_map(|tokens| tokens.concat().into_bytes())
}

fn any_stream() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        2 => stream_ish(),
        1 => prop::collection::vec(any::<u8>(), 0..256),
    ]
}

proptest! {
    #![proptest_config(crate::config(512))]

    #[test]
    fn a_stream_split_anywhere_yields_the_events_it_yields_whole(
        stream in any_stream(),
        cuts in cuts(),
    ) {
        let whole = events_of(&[&stream]);
        let pieces = split(&stream, &cuts);
        prop_assert_eq!(events_of(&pieces), whole);
    }

    #[test]
    fn no_byte_is_lost_added_or_reordered(stream in any_stream(), cuts in cuts()) {
        let (events, rest) = events_of(&split(&stream, &cuts));
        let mut out = events.concat();
        out.extend(rest.unwrap_or_default());
        prop_assert_eq!(out, stream);
    }

    #[test]
    fn every_event_ends_at_its_first_blank_line(stream in any_stream()) {
        let (events, rest) = events_of(&[&stream]);
        for event in &events {
            let first_end = [&b"\n\n"[..], b"\r\n\r\n"]
                .iter()
                .filter_map(|end| {
                    event.windows(end.len()).position(|w| w == *end).map(|at| at + end.len())
                })
                .min();
            prop_assert_eq!(first_end, Some(event.len()), "{:?}", String::from_utf8_lossy(event));
        }
        if let Some(rest) = rest {
            prop_assert!(!rest.is_empty());
            prop_assert!(!rest.windows(2).any(|w| w == b"\n\n"));
            prop_assert!(!rest.windows(4).any(|w| w == b"\r\n\r\n"));
        }
    }

    #[test]
    fn reading_the_data_of_arbitrary_bytes_never_panics(event in any_stream()) {
        let _ = event_data(&event);
    }

    #[test]
    fn data_lines_come_back_joined(
        lines in prop::collection::vec("[^\r\n]{0,20}", 1..4),
        crlf in any::<bool>(),
        space in any::<bool>(),
    ) {
        let eol = if crlf { "\r\n" } else { "\n" };
        let sep = if space { " " } else { "" };
        let mut event = format!("event: x{eol}: comment{eol}");
        for line in &lines {
            event.push_str(&format!("data:{sep}{line}{eol}"));
        }
        event.push_str(eol);
        // One leading space is the field's separator, not the data's.
        let expected: Vec<String> = lines
            .iter()
            .map(|l| if space { l.clone() } else { l.strip_prefix(' ').unwrap_or(l).to_string() })
            .collect();
        prop_assert_eq!(event_data(event.as_bytes()), Some(expected.join("\n").into_bytes()));
    }
}
