//! Shared fixtures: deterministic keys, a three-member roster, sample bodies.

use ctix::log::{ChainTip, VerifiedEntry};
use ctix::model::{Body, Indicator, IndicatorInput, NodeName, Retraction, Sighting};
use ctix::roster::{Member, Roster};
use ed25519_dalek::SigningKey;

/// A fixed clock value: 2026-11-28T12:00:00Z.
pub const T0: u64 = 1_795_867_200_000;

pub fn name(s: &str) -> NodeName {
    NodeName::new(s).unwrap()
}

/// The signing key of a test member; deterministic per name.
pub fn key(node: &str) -> SigningKey {
    let mut seed = [0u8; 32];
    for (i, b) in node.bytes().enumerate() {
        seed[i] = b;
    }
    seed[31] = 0x5a;
    SigningKey::from_bytes(&seed)
}

pub fn roster(nodes: &[&str]) -> Roster {
    Roster::new(
        nodes
            .iter()
            .enumerate()
            .map(|(i, n)| Member::new(name(n), key(n).verifying_key(), format!("127.0.0.1:{}", 7400 + i))),
    )
    .unwrap()
}

pub fn baltic() -> Roster {
    roster(&["ee", "lv", "lt"])
}

pub fn indicator(itype: &str, value: &str) -> Body {
    let input = IndicatorInput { itype: itype.into(), value: value.into(), ..Default::default() };
    Body::Indicator(Indicator::from_input(&input, T0).unwrap())
}

pub fn red_indicator(value: &str, recipients: &[&str]) -> Body {
    let input = IndicatorInput {
        itype: "domain".into(),
        value: value.into(),
        tlp: "red".into(),
        recipients: recipients.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    };
    Body::Indicator(Indicator::from_input(&input, T0).unwrap())
}

pub fn retraction(target_seq: u64) -> Body {
    Body::Retraction(Retraction { target_seq, reason: "false positive".into() })
}

pub fn sighting(origin: &str, seq: u64, count: u32) -> Body {
    Body::Sighting(Sighting {
        indicator: ctix::model::EntryId { origin: name(origin), seq },
        count,
        first_seen_ms: T0,
        last_seen_ms: T0 + 1000,
        note: String::new(),
    })
}

/// A chain of `n` indicator entries of `origin`, signed with its test key.
pub fn chain(origin: &str, n: u64) -> Vec<VerifiedEntry> {
    let k = key(origin);
    let o = name(origin);
    let mut tip: Option<ChainTip> = None;
    (1..=n)
        .map(|i| {
            let v = VerifiedEntry::sign_own(
                &k,
                &o,
                tip.as_ref(),
                T0 + i,
                indicator("ipv4", &format!("203.0.113.{}", i % 250)),
            );
            tip = Some(v.tip());
            v
        })
        .collect()
}
