//! Files a user writes: drill scenarios, node configs, rosters (all TOML).

use ctix::config::{API_TOKEN_CHARS_MIN, Config, ConfigFile};
use ctix::drill::scenario::{self, START_RECORD_SLACK_BYTES};
use ctix::model::drill::{DrillRecord, Scenario};
use ctix::model::{Body, NodeName};
use ctix::roster::{MEMBERS_MAX, Roster};
use ctix::wire::{self, BODY_BYTES_MAX};

use crate::fixtures::roster_file;

/// `drill::scenario::parse` (what `ctix drill start` and `POST /api/v1/drills` run). A scenario
/// it accepts validates, fits in its start record with `START_RECORD_SLACK_BYTES` to spare, and
/// stays so when run faster.
pub fn scenario(data: &[u8]) {
    // Both callers hand over text: `load` refuses non-UTF-8, the API gets a JSON string.
    let Ok(text) = std::str::from_utf8(data) else { return };
    let s = match scenario::parse(text) {
        Ok(s) => s,
        Err(e) => {
            let _ = (e.to_string(), e.line(), e.column(), e.field());
            return;
        }
    };
    let start = Body::Drill(DrillRecord::Start { scenario: s.clone(), start_ms: u64::MAX });
    assert!(wire::encode_body(&start).len() <= BODY_BYTES_MAX - START_RECORD_SLACK_BYTES);
    check_scenario(&s);
    for speed in [2, 7, 100] {
        check_scenario(&s.scaled(speed));
    }
}

/// A scenario a node may start: valid, and its start record a valid body that round-trips.
pub fn check_scenario(s: &Scenario) {
    s.validate().expect("parsed (and scaled) scenarios validate");
    let start = Body::Drill(DrillRecord::Start { scenario: s.clone(), start_ms: u64::MAX });
    let bytes = wire::encode_body(&start);
    assert!(bytes.len() <= BODY_BYTES_MAX, "a start record fits in a body ({} bytes)", bytes.len());
    assert_eq!(wire::decode_body(&bytes), Ok(start), "start records round-trip");
    let _ = (s.duration_ms(), s.delivery_within_ms());
}

/// A node config: the TOML into `ConfigFile` as `Config::load` parses it, then `Config::resolve`.
/// The roster path is pinned to a fixture file, so that the fuzzer never makes the harness read
/// arbitrary files (`/dev/zero` would be a finding of its own, not of the parser).
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(mut file) = toml::from_str::<ConfigFile>(text) else { return };
    file.keys.roster = roster_file().clone();
    let base = roster_file().parent().expect("a directory");
    let Ok(cfg) = Config::resolve(file, base) else { return };
    assert!(cfg.roster.get(&cfg.node).is_some(), "the node is a member");
    assert!(cfg.blocked_peers.iter().all(|p| cfg.roster.get(p).is_some()));
    assert!(cfg.api_tokens.iter().all(|t| t.token.chars().count() >= API_TOKEN_CHARS_MIN));
    for p in [&cfg.data_dir, &cfg.signing_key, &cfg.tls_cert, &cfg.tls_key, &cfg.ca_cert] {
        assert!(p.is_absolute(), "paths are resolved against the config's directory");
    }
}

/// `Roster::from_toml`: a roster it accepts is within `MEMBERS_MAX` and survives `to_toml`.
pub fn roster(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(r) = Roster::from_toml(text) else { return };
    assert!(r.len() <= MEMBERS_MAX);
    let names: Vec<&NodeName> = r.names().collect();
    assert!(names.windows(2).all(|w| w[0] < w[1]), "names are unique");
    assert_eq!(Roster::from_toml(&r.to_toml()), Ok(r), "rosters round-trip");
}
