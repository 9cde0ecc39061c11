//! Golden test vectors: `proto/vectors/entries.json` pins the signing input, hashes and entry
//! encoding byte for byte. Regenerate (only for a deliberate protocol change) with
//! `CTIX_BLESS=1 cargo test --test it vectors`.

use ctix::crypto::{self, ENTRY_DOMAIN};
use ctix::log::{self, SignedEntry, VerifiedEntry};
use ctix::model::Body;
use ed25519_dalek::{Signature, VerifyingKey};
use serde_json::{Value, json};

use crate::support::*;

const PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/proto/vectors/entries.json");

/// The vector entries, built from fixed keys, bodies and clocks.
fn build() -> Vec<(String, VerifiedEntry, bool)> {
    let (ee, lv) = (name("ee"), name("lv"));
    let mut out = Vec::new();
    let mut push = |desc: &str, v: VerifiedEntry| {
        out.push((desc.to_string(), v.clone(), true));
        v.tip()
    };
    let ee1 = push(
        "ee:1 indicator ipv4, TLP:AMBER (default), genesis",
        VerifiedEntry::sign_own(&key("ee"), &ee, None, T0, indicator("ipv4", "203.0.113.7")),
    );
    let ee2 = push(
        "ee:2 indicator domain (IDN, normalised to A-labels)",
        VerifiedEntry::sign_own(&key("ee"), &ee, Some(&ee1), T0 + 1, indicator("domain", "Bücher.Example.")),
    );
    let lv1 = push(
        "lv:1 indicator TLP:RED for ee (audience Only)",
        VerifiedEntry::sign_own(&key("lv"), &lv, None, T0 + 2, red_indicator("c2.example.net", &["ee"])),
    );
    push(
        "lv:2 sighting of ee:1, count 3",
        VerifiedEntry::sign_own(&key("lv"), &lv, Some(&lv1), T0 + 3, sighting("ee", 1, 3)),
    );
    push("ee:3 retraction of ee:2", VerifiedEntry::sign_own(&key("ee"), &ee, Some(&ee2), T0 + 4, retraction(2)));
    let bad = out[0].1.clone();
    out.push(("ee:1 with one signature bit flipped: must not verify".into(), bad, false));
    out
}

fn to_json((desc, v, valid): &(String, VerifiedEntry, bool)) -> Value {
    let e = v.entry();
    let mut sig = e.signature;
    if !valid {
        sig[0] ^= 0x01;
    }
    let signed = SignedEntry { signature: sig, ..e.clone() };
    let body = e.body.clone().unwrap_or_default();
    json!({
        "description": desc,
        "valid": valid,
        "public_key_hex": hex::encode(key(v.header().origin.as_str()).verifying_key().as_bytes()),
        "header_hex": hex::encode(e.header.encode()),
        "signing_input_hex": hex::encode(e.header.signing_input()),
        "signature_hex": hex::encode(sig),
        "entry_hash_hex": hex::encode(e.header.hash()),
        "body_hex": hex::encode(&body),
        "body_hash_hex": hex::encode(crypto::body_hash(&body)),
        "entry_hex": hex::encode(signed.encode()),
    })
}

fn field(v: &Value, k: &str) -> Vec<u8> {
    hex::decode(v[k].as_str().unwrap_or_else(|| panic!("vector lacks {k}"))).unwrap()
}

#[test]
fn code_reproduces_golden_vectors() {
    let built: Vec<Value> = build().iter().map(to_json).collect();
    if std::env::var("CTIX_BLESS").is_ok() {
        std::fs::write(PATH, serde_json::to_string_pretty(&built).unwrap() + "\n").unwrap();
    }
    let text = std::fs::read_to_string(PATH).expect("proto/vectors/entries.json exists");
    let stored: Vec<Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(stored.len(), built.len());
    for (s, b) in stored.iter().zip(&built) {
        assert_eq!(s, b, "vector {} differs from what the code produces", s["description"]);
    }
}

/// Checks the vectors on their own terms, as an implementation in another language would.
#[test]
fn vectors_verify_independently() {
    let stored: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(PATH).unwrap()).unwrap();
    assert!(stored.iter().any(|v| v["valid"] == false), "at least one invalid vector");
    for v in &stored {
        let pk = VerifyingKey::from_bytes(&field(v, "public_key_hex").try_into().unwrap()).unwrap();
        let input = field(v, "signing_input_hex");
        let sig: [u8; 64] = field(v, "signature_hex").try_into().unwrap();
        let valid = v["valid"].as_bool().unwrap();
        assert!(input.starts_with(ENTRY_DOMAIN));
        assert_eq!(&input[ENTRY_DOMAIN.len()..], field(v, "header_hex").as_slice());
        assert_eq!(pk.verify_strict(&input, &Signature::from_bytes(&sig)).is_ok(), valid, "{}", v["description"]);
        assert_eq!(crypto::sha256(&input).to_vec(), field(v, "entry_hash_hex"));
        let mut body_input = b"ctix/body/v1".to_vec();
        body_input.extend(field(v, "body_hex"));
        assert_eq!(crypto::sha256(&body_input).to_vec(), field(v, "body_hash_hex"));
        let entry = SignedEntry::decode(&field(v, "entry_hex")).unwrap();
        assert_eq!(log::authenticate(&roster(&["ee", "lv"]), entry).is_ok(), valid);
        if valid {
            let body = ctix::wire::decode_body(&field(v, "body_hex")).unwrap();
            assert!(matches!(body, Body::Indicator(_) | Body::Sighting(_) | Body::Retraction(_)));
        }
    }
}
