//! Fixed inputs the targets share, built once per process: the golden vectors, a small
//! federation with signed logs, and a roster file for config resolution.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ctix::crypto::EntryHeader;
use ctix::log::{self, SignedEntry, VerifiedEntry};
use ctix::model::{Body, Hash, Indicator, IndicatorInput, NodeName, Retraction, Sighting};
use ctix::roster::{Member, Roster, parse_public_key};
use ctix::sim::{MemLog, sim_key};
use ctix::store::{Store, StoreOptions};
use ctix::wire::WireEntry;

/// The fixed "now" of every target that takes one (2027-01-15), so runs are deterministic.
pub const NOW_MS: u64 = 1_800_000_000_000;

pub fn name(s: &str) -> NodeName {
    NodeName::new(s).expect("fixture names are valid")
}

/// `proto/vectors/entries.json`: entries, headers and bodies, and a roster of their keys.
pub struct Vectors {
    pub roster: Roster,
    pub entries: Vec<Vec<u8>>,
    pub headers: Vec<Vec<u8>>,
    pub bodies: Vec<Vec<u8>>,
}

pub fn vectors() -> &'static Vectors {
    static V: OnceLock<Vectors> = OnceLock::new();
    V.get_or_init(|| {
        let json: serde_json::Value =
            serde_json::from_str(include_str!("../../proto/vectors/entries.json")).expect("vectors are JSON");
        let list = json.as_array().expect("a list of vectors");
        let field = |v: &serde_json::Value, k: &str| hex(v[k].as_str().expect("hex field"));
        let mut members = Vec::new();
        for v in list {
            let header = EntryHeader::decode(&field(v, "header_hex")).expect("vector headers decode");
            let key = parse_public_key(v["public_key_hex"].as_str().expect("key")).expect("vector keys parse");
            if !members.iter().any(|m: &Member| m.name == header.origin) {
                members.push(Member::new(header.origin, key, "vector:1".into()));
            }
        }
        Vectors {
            roster: Roster::new(members).expect("vector roster"),
            entries: list.iter().map(|v| field(v, "entry_hex")).collect(),
            headers: list.iter().map(|v| field(v, "header_hex")).collect(),
            bodies: list.iter().map(|v| field(v, "body_hex")).collect(),
        }
    })
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex")).collect()
}

/// Three members with signed logs. `ee` is the node under test; it starts holding part of the
/// others' logs (one entry only as a redacted stub), and the pool holds what peers may send.
pub struct Federation {
    /// `ee`, `lv`, `lt`: `ee` first.
    pub names: Vec<NodeName>,
    pub roster: Roster,
    /// Every origin's complete log.
    pub truth: MemLog,
    /// What `ee` holds at the start.
    pub held: MemLog,
    /// Entries a peer may send: every entry in full and as a stub, and two forks.
    pub pool: Vec<WireEntry>,
    /// Hashes of every entry in the pool, for plausible version vectors.
    pub hashes: Vec<Hash>,
    /// Valid bodies `ee` may append.
    pub bodies: Vec<Body>,
}

pub fn federation() -> &'static Federation {
    static F: OnceLock<Federation> = OnceLock::new();
    F.get_or_init(build_federation)
}

/// The indicator of a simple input, for fixtures.
pub fn indicator(itype: &str, value: &str, tlp: &str, recipients: &[&str]) -> Body {
    let input = IndicatorInput {
        itype: itype.into(),
        value: value.into(),
        tlp: tlp.into(),
        recipients: recipients.iter().map(|r| r.to_string()).collect(),
        tags: vec!["fuzz".into()],
        ..IndicatorInput::default()
    };
    Body::Indicator(Indicator::from_input(&input, NOW_MS).expect("fixture indicators are valid"))
}

pub fn sighting(origin: &str, seq: u64) -> Body {
    let indicator = ctix::model::EntryId { origin: name(origin), seq };
    Body::Sighting(Sighting {
        indicator,
        count: 2,
        first_seen_ms: NOW_MS,
        last_seen_ms: NOW_MS + 1,
        note: String::new(),
    })
}

pub fn retraction(target_seq: u64) -> Body {
    Body::Retraction(Retraction { target_seq, reason: "false positive".into() })
}

fn build_federation() -> Federation {
    let names: Vec<NodeName> = ["ee", "lv", "lt"].into_iter().map(name).collect();
    let keys: Vec<_> = names.iter().map(sim_key).collect();
    let roster = Roster::new(
        names
            .iter()
            .zip(&keys)
            .enumerate()
            .map(|(i, (n, k))| Member::new(n.clone(), k.verifying_key(), format!("127.0.0.1:{}", 7401 + i))),
    )
    .expect("fixture roster");
    let logs: [Vec<Body>; 3] = [
        vec![
            indicator("ipv4", "203.0.113.7", "amber", &[]),
            indicator("domain", "exfil.example.org", "red", &["lv"]),
            sighting("lv", 1),
            retraction(1),
        ],
        vec![
            indicator("url", "https://phish.example.com/login", "green", &[]),
            indicator("sha256", &"ab".repeat(32), "red", &["lt"]),
            indicator("email", "ceo@example.net", "red", &["ee"]),
            indicator("cidr", "198.51.100.0/24", "clear", &[]),
        ],
        vec![indicator("cve", "CVE-2021-44228", "amber+strict", &[]), sighting("ee", 1), retraction(1)],
    ];
    let mut truth = MemLog::default();
    let mut now = NOW_MS;
    for (i, bodies) in logs.iter().enumerate() {
        for b in bodies {
            now += 1;
            truth.append(&keys[i], &names[i], now, b.clone());
        }
    }
    // Two forks: a second lv:3 and a second lt:2, both validly signed.
    let fork = |i: usize, seq: u64, body: Body| {
        let prev = truth.log(&names[i])[seq as usize - 2].tip();
        VerifiedEntry::sign_own(&keys[i], &names[i], Some(&prev), now + 100, body)
    };
    let forks = [fork(1, 3, indicator("ipv6", "2001:db8::66", "green", &[])), fork(2, 2, sighting("lv", 4))];
    let me = &names[0];
    let mut held = MemLog::default();
    let held_upto = [3usize, 2, 1];
    for (i, upto) in held_upto.into_iter().enumerate() {
        let entries: Vec<SignedEntry> = truth.log(&names[i])[..upto].iter().map(|e| e.for_recipient(me)).collect();
        let (stored, forked, gaps, rejected) = held.ingest(&roster, entries);
        assert!(stored.len() == upto && forked.is_empty() && gaps.is_empty() && rejected == 0, "fixture logs ingest");
    }
    let mut pool = Vec::new();
    let mut hashes = Vec::new();
    for e in names.iter().flat_map(|n| truth.log(n)).chain(&forks) {
        pool.push(e.entry().to_wire());
        pool.push(SignedEntry { body: None, ..e.entry().clone() }.to_wire());
        hashes.push(e.hash());
    }
    let bodies = vec![
        indicator("filename", "invoice.pdf.exe", "green", &[]),
        indicator("md5", "d41d8cd98f00b204e9800998ecf8427e", "red", &["lt", "lv"]),
        sighting("lt", 1),
        retraction(2),
    ];
    Federation { names, roster, truth, held, pool, hashes, bodies }
}

/// Where fixture files go: the fuzz package's `target/fixtures/`.
fn fixtures_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/fixtures");
    std::fs::create_dir_all(&dir).expect("create fuzz/target/fixtures");
    dir
}

/// A store holding what `Federation::held` holds, opened once per process (sled locks its
/// directory, so each process has its own; those of finished processes are removed first).
pub fn held_store() -> &'static Store {
    static S: OnceLock<Store> = OnceLock::new();
    S.get_or_init(|| {
        let dir = fixtures_dir();
        for e in std::fs::read_dir(&dir).expect("list fuzz/target/fixtures").flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix("store-")
                && !Path::new("/proc").join(pid).exists()
            {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
        let path = dir.join(format!("store-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        let store = Store::open(&path, &StoreOptions::default()).expect("open the fixture store");
        let f = federation();
        for o in &f.names {
            let entries = f.held.log(o).iter().map(|e| e.entry().clone()).collect();
            let authentic = log::authenticate_batch(&f.roster, entries).into_iter().map(|r| r.expect("authentic"));
            store.ingest(authentic.collect()).expect("ingest the fixture log");
        }
        store
    })
}

/// A roster file for `Config::resolve`, written once under the fuzz package's `target/`.
pub fn roster_file() -> &'static PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        let dir = fixtures_dir();
        let path = dir.join("roster.toml");
        // Written under a per-process name and renamed: parallel fuzz jobs share the path.
        let tmp = dir.join(format!("roster.toml.{}", std::process::id()));
        std::fs::write(&tmp, federation().roster.to_toml()).expect("write the fixture roster");
        std::fs::rename(&tmp, &path).expect("rename the fixture roster");
        path
    })
}
