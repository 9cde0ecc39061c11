//! The committed seed corpus (`corpus/<target>/`), written by `replay --write-seeds`: real
//! encodings (golden vectors, the fixture federation's entries and messages), the repository's
//! fixtures (`tests/data/`, `deploy/drills/`) and hand-picked values. Seeds are named by content,
//! so rewriting them is idempotent.

use std::path::Path;

use ctix::config::{
    ApiSection, ApiToken, ConfigFile, DrillSection, KeysSection, LogSection, NetSection, Role, StartupSection,
    StoreSection,
};
use ctix::interop::{misp, stix};
use ctix::model::drill::{DrillRecord, FaultState, InjectPayload};
use ctix::model::{Body, EntryId, IndicatorType};
use ctix::wire::{self, Message, WireHead};

use crate::fixtures::{NOW_MS, federation, indicator, name, vectors};

/// Writes every target's seeds under `corpus` (`corpus/<target>/<hash>`).
pub fn write_all(corpus: &Path) -> std::io::Result<usize> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("fuzz/ is in the repository");
    let read = |p: &str| std::fs::read(repo.join(p));
    let mut n = 0;
    let mut put = |target: &str, bytes: &[u8]| -> std::io::Result<()> {
        let dir = corpus.join(target);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join(format!("{:016x}", fnv1a(bytes))), bytes)?;
        n += 1;
        Ok(())
    };
    let f = federation();
    let v = vectors();
    let all: Vec<&ctix::log::VerifiedEntry> = f.names.iter().flat_map(|o| f.truth.log(o)).collect();

    for h in &v.headers {
        put("header", h)?;
    }
    for e in &all {
        put("header", &e.header().encode())?;
    }
    for e in &v.entries {
        put("entry", e)?;
    }
    for w in &f.pool {
        put("entry", &wire::encode_entry(w))?;
    }
    let mut bodies: Vec<Vec<u8>> = v.bodies.clone();
    bodies.extend(all.iter().filter_map(|e| e.entry().body.clone()));
    bodies.extend(f.bodies.iter().map(wire::encode_body));
    for b in drill_bodies(repo)? {
        bodies.push(wire::encode_body(&b));
    }
    for b in &bodies {
        put("body", b)?;
    }

    // Messages, each as one frame, and one stream of several.
    let heads: Vec<WireHead> = f
        .names
        .iter()
        .map(|o| {
            let e = f.truth.log(o).last().expect("non-empty logs");
            WireHead { origin: o.to_string(), seq: e.header().seq, hash: e.hash() }
        })
        .collect();
    let lv_log: Vec<_> = f.truth.log(&f.names[1]).iter().map(|e| e.for_recipient(&f.names[0]).to_wire()).collect();
    let messages = [
        Message::Hello { version: wire::PROTOCOL_VERSION, heads: heads.clone() },
        Message::Heads { heads },
        Message::Request { id: 7, origin: "ee".into(), from_seq: 1, limit: 200 },
        Message::Entries { reply_to: Some(7), entries: lv_log },
        Message::Entries { reply_to: None, entries: f.pool[..4].to_vec() },
        Message::WantBodies { ids: vec![("lv".into(), 2), ("ee".into(), 2)] },
    ];
    let frames: Vec<Vec<u8>> = messages.iter().map(wire::encode_frame).collect();
    for fr in &frames {
        put("frame", fr)?;
    }
    put("frame", &frames.concat())?;

    // Sync scripts (see `targets::sync`): connect, then raw frames (op 5) from lv and lt,
    // timers (op 6) and own appends (op 7).
    let raw = |peer: u8, m: &Message| {
        let body = wire::encode(m);
        let mut s = vec![5, peer];
        s.extend_from_slice(&(body.len() as u16).to_le_bytes());
        s.extend_from_slice(&body);
        s
    };
    let hello = &messages[0];
    let mut script = vec![0, 0];
    script.extend(raw(0, hello));
    script.extend(raw(0, &messages[3]));
    script.extend([6, 0, 0x10, 0x27, 0, 0]);
    script.extend([7, 0, 1]);
    put("sync", &script)?;
    let mut script = vec![0, 1, 0, 0];
    script.extend(raw(1, hello));
    script.extend(raw(0, hello));
    script.extend(raw(1, &messages[2]));
    script.extend(raw(1, &messages[5]));
    script.extend(raw(0, &messages[4]));
    script.extend([6, 0, 0xff, 0xff, 0xff, 0]);
    put("sync", &script)?;
    // Structured messages (ops 2-4) of every kind from lv after a connect.
    for kind in 0..5u8 {
        put("sync", &[0, 0, 2, 0, kind, 1, 3, 10, 0, 2, 20, 1, 3, 0, 1, 2, 7, 0])?;
    }

    // API bodies.
    let lines = read("tests/data/interop/indicators.jsonl")?;
    let lines = String::from_utf8(lines).expect("UTF-8");
    for l in lines.lines() {
        put("api_json", l.as_bytes())?;
    }
    let inputs: Vec<serde_json::Value> = lines.lines().map(|l| serde_json::from_str(l).expect("JSON lines")).collect();
    put("api_json", serde_json::json!({ "indicators": inputs }).to_string().as_bytes())?;
    put("api_json", serde_json::json!({ "indicators": inputs[..2], "atomic": true }).to_string().as_bytes())?;
    put("api_json", br#"{"reason": "false positive: a CDN address"}"#)?;
    put("api_json", br#"{"count": 3, "first_seen": "2026-11-28T08:00:00Z", "last_seen": "-1h", "note": "IDS hits"}"#)?;
    put("api_json", br#"{}"#)?;
    let comms = String::from_utf8(read("deploy/drills/comms-check.toml")?).expect("UTF-8");
    put("api_json", serde_json::json!({ "scenario": comms, "speed": 10 }).to_string().as_bytes())?;
    put("api_json", br#"{"inject": "comm-check", "note": "seen by the duty officer"}"#)?;

    // Values: the first byte picks the parser (`targets::values`).
    let examples = [
        "203.0.113.7",
        "2001:DB8::7",
        "10.1.2.3/8",
        "B\u{fc}cher.Example.",
        "HTTPS://Login.Example.NET:443/portal#x",
        "phish@Example.COM",
        "D41D8CD98F00B204E9800998ECF8427E",
        "da39a3ee5e6b4b0d3255bfef95601890afd80709",
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "invoice.pdf.exe",
        "cve-2021-44228",
    ];
    for (i, example) in examples.iter().enumerate().take(IndicatorType::ALL.len()) {
        put("values", &[&[i as u8][..], example.as_bytes()].concat())?;
    }
    for (sel, s) in [
        (11u8, "2026-11-28T14:00:00.123+02:00"),
        (11, "30d"),
        (11, "2026-11-28"),
        (12, "24h"),
        (12, "2026-11-28 12:00:00Z"),
        (13, "ee:42"),
        (14, "TLP:AMBER+STRICT"),
        (14, "IPv4"),
        (15, "1m30s"),
        (15, "1.5s"),
    ] {
        put("values", &[&[sel][..], s.as_bytes()].concat())?;
    }

    // Files.
    for d in ["comms-check", "ddos-cut-link", "ransomware-energy"] {
        put("scenario", &read(&format!("deploy/drills/{d}.toml"))?)?;
    }
    put("config", config_text().as_bytes())?;
    put("config", README_CONFIG.as_bytes())?;
    put("roster", f.roster.to_toml().as_bytes())?;
    put("roster", format!("federation = \"baltic\"\n{}", v.roster.to_toml()).as_bytes())?;

    // Imports: the repository's fixtures, and our own exports.
    put("stix", &read("tests/data/stix/sample-bundle.json")?)?;
    put("stix", &read("tests/data/stix/python-stix2-bundle.json")?)?;
    put("misp", &read("tests/data/misp/event-phishing.json")?)?;
    let views = fixture_views();
    put("stix", serde_json::to_string_pretty(&stix::bundle(&views)).expect("JSON").as_bytes())?;
    for event in misp::feed(&views, NOW_MS).events.values() {
        put("misp", serde_json::to_string_pretty(event).expect("JSON").as_bytes())?;
    }
    Ok(n)
}

/// FNV-1a, for content names of seeds and crash files.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// One of each drill record: the start records of the example scenarios, and the others.
fn drill_bodies(repo: &Path) -> std::io::Result<Vec<Body>> {
    let mut out = Vec::new();
    for d in ["comms-check", "ransomware-energy"] {
        let text = std::fs::read_to_string(repo.join(format!("deploy/drills/{d}.toml")))?;
        let scenario = ctix::drill::scenario::parse(&text).expect("the example scenarios parse");
        out.push(Body::Drill(DrillRecord::Start { scenario, start_ms: NOW_MS }));
    }
    let drill = EntryId { origin: name("ee"), seq: 9 };
    let Body::Indicator(ind) = indicator("ipv4", "192.0.2.1", "clear", &[]) else { unreachable!() };
    out.extend(
        [
            DrillRecord::Inject {
                drill: drill.clone(),
                inject: "wave-1".into(),
                item: 3,
                payload: InjectPayload::Indicator(ind),
            },
            DrillRecord::Inject {
                drill: drill.clone(),
                inject: "spotted".into(),
                item: 0,
                payload: InjectPayload::Sighting { wave: "wave-1".into(), count: 2 },
            },
            DrillRecord::Ack {
                drill: drill.clone(),
                inject: "comm-check".into(),
                received_ms: NOW_MS,
                via: Some(name("lv")),
                human: Some("ok".into()),
            },
            DrillRecord::Fault {
                drill: drill.clone(),
                inject: "cut".into(),
                state: FaultState::Applied,
                at_ms: NOW_MS,
            },
            DrillRecord::End { drill, aborted: true, reason: "called off".into() },
        ]
        .map(Body::Drill),
    );
    Ok(out)
}

/// A config as `ctix dev-federation` writes it.
fn config_text() -> String {
    let file = ConfigFile {
        node: "ee".into(),
        data_dir: "data".into(),
        keys: KeysSection {
            signing_key: "node.key".into(),
            tls_cert: "tls/ee.crt".into(),
            tls_key: "tls/ee.key".into(),
            ca_cert: "../ca/ca.crt".into(),
            roster: "../roster.toml".into(),
        },
        net: NetSection { listen: "127.0.0.1:7401".parse().expect("address"), blocked_peers: vec!["lt".into()] },
        api: ApiSection {
            listen: "127.0.0.1:7501".parse().expect("address"),
            tokens: vec![
                ApiToken { name: "analysts".into(), role: Role::Rw, token: "a".repeat(64) },
                ApiToken { name: "constituents".into(), role: Role::Ro, token: "b".repeat(64) },
            ],
        },
        startup: StartupSection::default(),
        drill: DrillSection { allow_faults: true },
        log: LogSection::default(),
        store: StoreSection::default(),
    };
    toml::to_string(&file).expect("configs serialise")
}

/// README "Configuration", with a token of valid length.
const README_CONFIG: &str = r#"node = "ee"
data_dir = "data"

[keys]
signing_key = "node.key"
tls_cert = "tls/ee.crt"
tls_key = "tls/ee.key"
ca_cert = "../ca/ca.crt"
roster = "../roster.toml"

[net]
listen = "0.0.0.0:7401"
blocked_peers = []

[api]
listen = "127.0.0.1:7480"

[[api.tokens]]
name = "analysts"
role = "rw"
token = "0123456789abcdef0123456789abcdef"

[startup]
own_head_wait_ms = 10000
on_no_peers = "refuse"

[drill]
allow_faults = false

[store]
cache_mib = 32
"#;

/// API views of the fixture federation's indicators, for export seeds.
fn fixture_views() -> Vec<ctix::view::IndicatorView> {
    let f = federation();
    let mut out = Vec::new();
    for e in f.names.iter().flat_map(|o| f.truth.log(o)) {
        if let Some(Body::Indicator(i)) = e.body() {
            let mut v = crate::targets::view_of(i);
            v.id = e.id().to_string();
            v.origin = e.header().origin.to_string();
            v.seq = e.header().seq;
            out.push(v);
        }
    }
    out
}
