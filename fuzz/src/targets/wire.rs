//! Decoders of peer bytes: frames and messages, entries, headers, bodies.

use ctix::crypto::{EntryHeader, HEADER_BYTES_MAX};
use ctix::log::{self, SignedEntry};
use ctix::model::Body;
use ctix::model::drill::DrillRecord;
use ctix::model::time::format_time;
use ctix::wire::{self, BODY_BYTES_MAX, ENTRY_BYTES_MAX, FRAME_BYTES_MAX, Message};

use crate::fixtures::{federation, vectors};

/// A peer's unidirectional stream as `Net::read_frames` reads it: `u32be length ‖ payload`
/// frames back to back. A refused length or payload ends the stream (the connection closes).
pub fn frame(data: &[u8]) {
    let mut rest = data;
    while let Some((prefix, tail)) = rest.split_first_chunk::<4>() {
        let Ok(len) = wire::frame_len(*prefix) else { return };
        assert!(len <= FRAME_BYTES_MAX);
        let Some((payload, tail)) = tail.split_at_checked(len) else { return };
        let Ok(m) = wire::decode_message(payload) else { return };
        check_message(&m);
        rest = tail;
    }
}

/// What holds for every message `decode_message` accepts.
pub fn check_message(m: &Message) {
    m.check_limits().expect("decode_message checks the limits");
    let bytes = wire::encode(m);
    assert!(bytes.len() <= FRAME_BYTES_MAX, "an accepted message re-encodes within a frame");
    assert_eq!(wire::decode_message(&bytes).as_ref(), Ok(m), "messages round-trip");
    let frame = wire::encode_frame(m);
    let prefix: [u8; 4] = frame[..4].try_into().expect("4 bytes");
    assert_eq!(wire::frame_len(prefix), Ok(bytes.len()));
    if let Message::Entries { entries, .. } = m {
        for w in entries {
            // What `Sync::on_entries` does with each; a canonical header re-encodes to itself.
            if let Ok(e) = SignedEntry::from_wire(w.clone()) {
                assert_eq!(&e.to_wire(), w, "an entry that decodes re-encodes to the same fields");
            }
        }
    }
}

/// One stored or relayed entry: `SignedEntry::decode`, then `log::authenticate` against the
/// golden vectors' roster and the fixture federation's (their names overlap, their keys do not),
/// so that the seeds' entries authenticate and every check before the signature runs on
/// mutated ones.
pub fn entry(data: &[u8]) {
    let Ok(e) = SignedEntry::decode(data) else { return };
    assert!(data.len() <= ENTRY_BYTES_MAX);
    assert_eq!(e.encode(), data, "entries are canonical");
    let hash = e.hash();
    for roster in [&vectors().roster, &federation().roster] {
        let Ok(a) = log::authenticate(roster, e.clone()) else { continue };
        assert_eq!(a.hash(), hash);
        if let Some(body) = a.body() {
            assert_eq!(body.kind() as u8, a.header().kind, "authenticated bodies agree with their header");
            assert_eq!(body.audience(), a.header().audience);
            assert!(body.validate().is_ok(), "authenticated bodies are valid");
        }
        let _ = a.link(None);
    }
}

/// The canonical header codec.
pub fn header(data: &[u8]) {
    let Ok(h) = EntryHeader::decode(data) else { return };
    assert!(data.len() <= HEADER_BYTES_MAX, "decoded headers are within HEADER_BYTES_MAX");
    assert_eq!(h.encode(), data, "headers are canonical");
    assert!(h.seq >= 1);
    assert!(h.audience.validate().is_ok());
    assert_eq!(h.hash(), ctix::crypto::sha256(&h.signing_input()));
}

/// Body bytes: `decode_body`, then what a node does with a body it accepted: validation, and for
/// valid ones the views built from them (times, STIX patterns, drill scenarios).
pub fn body(data: &[u8]) {
    let Ok(b) = wire::decode_body(data) else { return };
    assert!(data.len() <= BODY_BYTES_MAX);
    assert_eq!(wire::encode_body(&b), data, "bodies are canonical");
    let _ = b.audience();
    if b.validate().is_err() {
        return;
    }
    match &b {
        Body::Indicator(i) => {
            let _ = i.content_id();
            let _ = ctix::interop::stix::pattern(i.itype, &i.value);
            let _ = format_time(i.valid_from_ms);
            let _ = i.valid_until_ms.map(format_time);
        }
        Body::Sighting(s) => {
            let _ = (format_time(s.first_seen_ms), format_time(s.last_seen_ms));
        }
        Body::Retraction(_) => {}
        Body::Drill(DrillRecord::Start { scenario, start_ms }) => {
            let _ = format_time(start_ms.saturating_add(scenario.duration_ms()));
            let _ = scenario.delivery_within_ms();
            for speed in [2, 100] {
                let _ = scenario.scaled(speed);
            }
        }
        Body::Drill(d) => {
            let _ = d.drill();
        }
    }
}
