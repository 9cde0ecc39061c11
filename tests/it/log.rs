//! The signed log: sign → verify, and every tamper rejected.

use ctix::crypto::{EntryHeader, GENESIS_PREV_HASH};
use ctix::log::{self, ChainError, SignedEntry, VerifiedEntry, VerifyError};
use proptest::prelude::*;

use crate::support::*;

fn first(body: ctix::model::Body) -> VerifiedEntry {
    VerifiedEntry::sign_own(&key("ee"), &name("ee"), None, T0, body)
}

#[test]
fn sign_verify_round_trip() {
    let v = first(indicator("domain", "Evil.Example.COM."));
    let bytes = v.entry().encode();
    let back = SignedEntry::decode(&bytes).unwrap();
    let a = log::authenticate(&baltic(), back).unwrap();
    assert_eq!(a.hash(), v.hash());
    assert_eq!(a.body(), v.body());
    let linked = a.link(None).unwrap();
    assert_eq!(linked.tip().seq, 1);
    assert_eq!(linked.header().prev_hash, GENESIS_PREV_HASH);
}

#[test]
fn every_header_bit_flip_is_rejected() {
    let v = first(indicator("ipv4", "198.51.100.7"));
    let w = v.entry().to_wire();
    for byte in 0..w.header.len() {
        for bit in 0..8 {
            let mut t = w.clone();
            t.header[byte] ^= 1 << bit;
            let accepted = SignedEntry::from_wire(t).and_then(|e| log::authenticate(&baltic(), e));
            assert!(accepted.is_err(), "header byte {byte} bit {bit} flipped was accepted");
        }
    }
}

#[test]
fn body_tamper_is_rejected() {
    let v = first(indicator("ipv4", "198.51.100.7"));
    let mut e = v.entry().clone();
    let body = e.body.as_mut().unwrap();
    let last = body.len() - 1;
    body[last] ^= 1;
    assert!(matches!(log::authenticate(&baltic(), e), Err(VerifyError::BodyHash(_))));
}

#[test]
fn signature_tamper_is_rejected() {
    let v = first(indicator("ipv4", "198.51.100.7"));
    for byte in [0, 31, 32, 63] {
        let mut e = v.entry().clone();
        e.signature[byte] ^= 0x80;
        assert!(matches!(log::authenticate(&baltic(), e), Err(VerifyError::BadSignature(_))), "byte {byte}");
    }
}

#[test]
fn wrong_key_is_rejected() {
    // Signed with lv's key but claiming to be ee's entry.
    let v = VerifiedEntry::sign_own(&key("lv"), &name("ee"), None, T0, indicator("ipv4", "198.51.100.7"));
    assert!(matches!(log::authenticate(&baltic(), v.entry().clone()), Err(VerifyError::BadSignature(_))));
}

#[test]
fn unknown_origin_is_rejected() {
    let v = VerifiedEntry::sign_own(&key("pl"), &name("pl"), None, T0, indicator("ipv4", "198.51.100.7"));
    assert!(matches!(log::authenticate(&baltic(), v.entry().clone()), Err(VerifyError::UnknownOrigin(_))));
}

#[test]
fn wrong_prev_hash_gap_and_genesis_are_rejected() {
    let c = chain("ee", 3);
    let roster = baltic();
    // Entry 3 does not extend entry 1.
    let a3 = log::authenticate(&roster, c[2].entry().clone()).unwrap();
    let (a3, err) = a3.link(Some(&c[0].tip())).unwrap_err();
    assert_eq!(err, ChainError::Gap { have: 1, got: 3 });
    // Entry 3 claims a predecessor other than the held entry 2.
    let forged_tip = ctix::log::ChainTip { seq: 2, hash: [7; 32] };
    assert_eq!(a3.link(Some(&forged_tip)).unwrap_err().1, ChainError::Mismatch(2));
    // A seq-1 entry with a non-zero prev_hash.
    let mut h: EntryHeader = c[0].header().clone();
    h.prev_hash = [1; 32];
    let sig = ctix::crypto::sign_header(&key("ee"), &h);
    let e = SignedEntry { header: h, signature: sig, body: c[0].entry().body.clone() };
    let a = log::authenticate(&roster, e).unwrap();
    assert_eq!(a.link(None).unwrap_err().1, ChainError::BadGenesis);
}

#[test]
fn replay_of_an_old_entry_does_not_link() {
    let c = chain("ee", 3);
    let a1 = log::authenticate(&baltic(), c[0].entry().clone()).unwrap();
    assert_eq!(a1.link(Some(&c[2].tip())).unwrap_err().1, ChainError::NotNext { have: 3, got: 1 });
}

#[test]
fn body_that_disagrees_with_header_is_rejected() {
    // A body whose audience does not match the signed header's audience.
    let red = first(red_indicator("secret.example", &["lv"]));
    let green_body = ctix::wire::encode_body(&indicator("domain", "secret.example"));
    let mut h = red.header().clone();
    h.body_hash = ctix::crypto::body_hash(&green_body);
    let sig = ctix::crypto::sign_header(&key("ee"), &h);
    let e = SignedEntry { header: h, signature: sig, body: Some(green_body) };
    assert!(matches!(log::authenticate(&baltic(), e), Err(VerifyError::HeaderMismatch { what: "audience", .. })));
}

#[test]
fn redacted_stub_verifies_and_chains() {
    let red = first(red_indicator("secret.example", &["lv"]));
    assert!(red.for_recipient(&name("lv")).body.is_some());
    let stub = red.for_recipient(&name("lt"));
    assert!(stub.body.is_none());
    let a = log::authenticate(&baltic(), stub).unwrap();
    assert!(a.is_stub());
    assert_eq!(a.link(None).unwrap().hash(), red.hash());
}

#[test]
fn batch_verification_pins_the_bad_one() {
    let c = chain("lv", 20);
    let mut entries: Vec<SignedEntry> = c.iter().map(|v| v.entry().clone()).collect();
    entries[7].signature[5] ^= 1;
    let results = log::authenticate_batch(&baltic(), entries);
    for (i, r) in results.iter().enumerate() {
        assert_eq!(r.is_ok(), i != 7, "entry {i}");
    }
}

proptest! {
    #[test]
    fn any_bit_flip_in_an_encoded_entry_is_rejected(pos in any::<prop::sample::Index>(), bit in 0u8..8) {
        let v = first(indicator("url", "https://example.com/login?x=1"));
        let mut bytes = v.entry().encode();
        let i = pos.index(bytes.len());
        bytes[i] ^= 1 << bit;
        let r = SignedEntry::decode(&bytes).and_then(|e| log::authenticate(&baltic(), e));
        prop_assert!(r.is_err(), "flip at byte {} bit {} accepted", i, bit);
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = SignedEntry::decode(&bytes);
        let _ = EntryHeader::decode(&bytes);
        let _ = ctix::wire::decode_body(&bytes);
        let _ = ctix::wire::decode_message(&bytes);
    }

    #[test]
    fn decoding_mutated_messages_never_panics(pos in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let v = first(indicator("domain", "c2.example.org"));
        let msg = ctix::wire::Message::Entries { reply_to: Some(7), entries: vec![v.entry().to_wire(); 3] };
        let mut bytes = ctix::wire::encode_frame(&msg)[4..].to_vec();
        let i = pos.index(bytes.len());
        bytes[i] = byte;
        let _ = ctix::wire::decode_message(&bytes);
    }
}
