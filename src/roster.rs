//! The federation roster: every member's name, ed25519 log key and QUIC address.
//!
//! The roster is the root of trust for log entries: an entry of origin `lv` verifies only under
//! the key the roster lists for `lv`. TLS certificates (from the federation CA) authenticate the
//! transport; the roster key authenticates the data, whoever relays it.

use std::collections::BTreeMap;
use std::path::Path;

use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};

use crate::model::NodeName;
use crate::textfile::LimitedReadError;

/// Most members in one federation. QUIC connections are a full mesh, so this also bounds the
/// connections a node holds; 64 covers every NATO and EU member state with room to spare.
pub const MEMBERS_MAX: usize = 64;
/// Most retired keys listed per member. A retired key must stay listed while any log holds
/// entries it signed (a node joining later verifies the whole history), so this bounds the
/// rotations a member can make: 16 is a rotation a year for 16 years.
pub const RETIRED_KEYS_MAX: usize = 16;
/// Largest roster file accepted (a 64-member roster is about 10 KiB).
pub const ROSTER_FILE_BYTES_MAX: u64 = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum RosterError {
    /// The roster file could not be read.
    #[error("cannot read roster {path}: {source}")]
    Read { path: String, source: std::io::Error },
    /// The file is not valid roster TOML.
    #[error("roster {path} is not valid: {reason}")]
    Invalid { path: String, reason: String },
}

/// A key a member signed with before a rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetiredKey {
    pub public_key: VerifyingKey,
    /// Entries created (header `created_ms`) at or after this time, ms since the Unix epoch, do
    /// not verify under this key.
    pub retired_at_ms: u64,
}

/// What the roster says about one key of one member at one time (`Roster::key_status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyStatus {
    /// The member's current key.
    Current,
    /// A retired key still inside its overlap window: valid until `retired_at_ms`.
    Retiring { retired_at_ms: u64 },
    /// A retired key past its retirement time.
    Retired { retired_at_ms: u64 },
    /// Not a key of this member (or not a member).
    Unknown,
}

/// One federation member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub name: NodeName,
    /// The current key: verifies every log entry this member originates.
    pub public_key: VerifyingKey,
    /// Keys retired by rotations, still accepted for entries created before their retirement.
    pub retired_keys: Vec<RetiredKey>,
    /// `host:port` of the member's QUIC endpoint.
    pub quic_addr: String,
}

/// All members, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Roster {
    members: BTreeMap<NodeName, Member>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RosterFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    federation: Option<String>,
    #[serde(default, rename = "member")]
    members: Vec<MemberFile>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MemberFile {
    name: String,
    public_key: String,
    quic_addr: String,
    #[serde(default, rename = "retired_key", skip_serializing_if = "Vec::is_empty")]
    retired_keys: Vec<RetiredKeyFile>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RetiredKeyFile {
    public_key: String,
    /// RFC 3339 time.
    retired_at: String,
}

impl Member {
    /// A member with one key and no retired keys.
    pub fn new(name: NodeName, public_key: VerifyingKey, quic_addr: String) -> Member {
        Member { name, public_key, retired_keys: Vec::new(), quic_addr }
    }

    /// Every key of this member: the current one first, then the retired ones.
    pub fn keys(&self) -> impl Iterator<Item = &VerifyingKey> {
        std::iter::once(&self.public_key).chain(self.retired_keys.iter().map(|r| &r.public_key))
    }
}

impl Roster {
    /// Builds a roster, checking that names and keys are unique and keys are strong.
    pub fn new(members: impl IntoIterator<Item = Member>) -> Result<Roster, String> {
        let mut map = BTreeMap::new();
        for m in members {
            if map.len() == MEMBERS_MAX {
                return Err(format!("more than {MEMBERS_MAX} members"));
            }
            if m.retired_keys.len() > RETIRED_KEYS_MAX {
                return Err(format!(
                    "member {}: {} retired keys listed, at most {RETIRED_KEYS_MAX}: drop the oldest ones",
                    m.name,
                    m.retired_keys.len()
                ));
            }
            for (i, k) in m.keys().enumerate() {
                if k.is_weak() {
                    return Err(format!("member {}: public key is a weak (small-order) key", m.name));
                }
                if m.keys().take(i).any(|o| o == k) {
                    return Err(format!("member {}: a key is listed twice (current or retired)", m.name));
                }
                if map.values().any(|o: &Member| o.keys().any(|ok| ok == k)) {
                    return Err(format!("member {}: public key is already listed for another member", m.name));
                }
            }
            if m.quic_addr.trim().is_empty() {
                return Err(format!("member {}: quic_addr is empty (use host:port)", m.name));
            }
            let name = m.name.clone();
            if map.insert(name.clone(), m).is_some() {
                return Err(format!("member {name} is listed twice"));
            }
        }
        Ok(Roster { members: map })
    }

    pub fn load(path: &Path) -> Result<Roster, RosterError> {
        let p = path.display().to_string();
        let text = crate::textfile::read_limited(path, ROSTER_FILE_BYTES_MAX).map_err(|e| match e {
            LimitedReadError::Io(source) => RosterError::Read { path: p.clone(), source },
            LimitedReadError::TooLarge => {
                RosterError::Invalid { path: p.clone(), reason: format!("over {ROSTER_FILE_BYTES_MAX} bytes") }
            }
        })?;
        Roster::from_toml(&text).map_err(|reason| RosterError::Invalid { path: p, reason })
    }

    /// Parses roster TOML: `[[member]]` tables with `name`, `public_key` (64 hex digits) and
    /// `quic_addr`.
    pub fn from_toml(text: &str) -> Result<Roster, String> {
        let file: RosterFile = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut members = Vec::with_capacity(file.members.len());
        for m in file.members {
            let name = NodeName::new(&m.name).map_err(|e| e.to_string())?;
            let public_key = parse_public_key(&m.public_key).map_err(|r| format!("member {name}: public_key {r}"))?;
            let mut retired_keys = Vec::with_capacity(m.retired_keys.len());
            for r in m.retired_keys {
                let public_key = parse_public_key(&r.public_key)
                    .map_err(|e| format!("member {name}: retired_key public_key {e}"))?;
                let retired_at_ms = crate::model::time::parse_rfc3339_ms(&r.retired_at).map_err(|e| {
                    format!(
                        "member {name}: retired_key retired_at {:?}: {e} (use RFC 3339, e.g. 2026-12-01T00:00:00Z)",
                        r.retired_at
                    )
                })?;
                retired_keys.push(RetiredKey { public_key, retired_at_ms });
            }
            members.push(Member { name, public_key, retired_keys, quic_addr: m.quic_addr });
        }
        Roster::new(members)
    }

    pub fn to_toml(&self) -> String {
        let file = RosterFile {
            federation: None,
            members: self
                .members
                .values()
                .map(|m| MemberFile {
                    name: m.name.to_string(),
                    public_key: hex::encode(m.public_key.as_bytes()),
                    quic_addr: m.quic_addr.clone(),
                    retired_keys: m
                        .retired_keys
                        .iter()
                        .map(|r| RetiredKeyFile {
                            public_key: hex::encode(r.public_key.as_bytes()),
                            retired_at: crate::model::time::format_time(r.retired_at_ms),
                        })
                        .collect(),
                })
                .collect(),
        };
        toml::to_string(&file).expect("roster serialises")
    }

    /// Makes `new` the current key of `member` and retires its current key at `retired_at_ms`.
    pub fn rotate_key(&mut self, member: &NodeName, new: VerifyingKey, retired_at_ms: u64) -> Result<(), String> {
        let mut members: Vec<Member> = self.members.values().cloned().collect();
        let m = members.iter_mut().find(|m| &m.name == member).ok_or_else(|| format!("{member} is not a member"))?;
        let old = std::mem::replace(&mut m.public_key, new);
        m.retired_keys.push(RetiredKey { public_key: old, retired_at_ms });
        *self = Roster::new(members)?;
        Ok(())
    }

    pub fn get(&self, name: &NodeName) -> Option<&Member> {
        self.members.get(name)
    }

    /// The current key of `origin`, if `origin` is a member.
    pub fn key(&self, origin: &NodeName) -> Option<&VerifyingKey> {
        self.members.get(origin).map(|m| &m.public_key)
    }

    /// The keys `origin` retired, if any.
    pub fn retired_keys(&self, origin: &NodeName) -> &[RetiredKey] {
        self.members.get(origin).map_or(&[], |m| &m.retired_keys)
    }

    /// Whether `key` may sign `origin`'s entries created at `at_ms`.
    pub fn key_status(&self, origin: &NodeName, key: &VerifyingKey, at_ms: u64) -> KeyStatus {
        let Some(m) = self.members.get(origin) else { return KeyStatus::Unknown };
        if &m.public_key == key {
            return KeyStatus::Current;
        }
        match m.retired_keys.iter().find(|r| &r.public_key == key) {
            None => KeyStatus::Unknown,
            Some(r) if at_ms < r.retired_at_ms => KeyStatus::Retiring { retired_at_ms: r.retired_at_ms },
            Some(r) => KeyStatus::Retired { retired_at_ms: r.retired_at_ms },
        }
    }

    pub fn members(&self) -> impl Iterator<Item = &Member> {
        self.members.values()
    }

    pub fn names(&self) -> impl Iterator<Item = &NodeName> {
        self.members.keys()
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }
}

/// Parses 64 hex digits into an ed25519 public key.
pub fn parse_public_key(s: &str) -> Result<VerifyingKey, String> {
    let bytes = hex::decode(s.trim()).map_err(|_| format!("{s:?} is not hex"))?;
    let arr: [u8; 32] = bytes.try_into().map_err(|_| "must be 64 hex digits (32 bytes)".to_string())?;
    VerifyingKey::from_bytes(&arr).map_err(|_| "is not a valid ed25519 point".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A special file whose metadata says 0 bytes is still read no further than the limit.
    #[test]
    fn endless_files_are_refused_at_the_limit() {
        let e = Roster::load(Path::new("/dev/zero")).unwrap_err().to_string();
        assert!(e.contains("over"), "{e}");
        let e = crate::config::Config::load(Path::new("/dev/zero")).unwrap_err().to_string();
        assert!(e.contains("over"), "{e}");
    }

    use ed25519_dalek::SigningKey;

    fn member(name: &str, seed: u8) -> Member {
        Member::new(
            NodeName::new(name).unwrap(),
            SigningKey::from_bytes(&[seed; 32]).verifying_key(),
            "127.0.0.1:7401".into(),
        )
    }

    #[test]
    fn toml_round_trip() {
        let r = Roster::new([member("ee", 1), member("lv", 2)]).unwrap();
        let back = Roster::from_toml(&r.to_toml()).unwrap();
        assert_eq!(r, back);
    }

    #[test]
    fn rejects_duplicates() {
        assert!(Roster::new([member("ee", 1), member("ee", 2)]).unwrap_err().contains("twice"));
        assert!(Roster::new([member("ee", 1), member("lv", 1)]).unwrap_err().contains("already listed"));
    }

    fn key(seed: u8) -> VerifyingKey {
        SigningKey::from_bytes(&[seed; 32]).verifying_key()
    }

    fn rotated(name: &str, current: u8, retired: &[(u8, u64)]) -> Member {
        let mut m = member(name, current);
        m.retired_keys = retired.iter().map(|&(s, at)| RetiredKey { public_key: key(s), retired_at_ms: at }).collect();
        m
    }

    #[test]
    fn retired_keys_round_trip_and_answer_by_time() {
        let r = Roster::new([rotated("ee", 3, &[(1, 1_790_000_000_000), (2, 1_800_000_000_000)]), member("lv", 4)])
            .unwrap();
        let text = r.to_toml();
        assert!(
            text.contains("[[member.retired_key]]") && text.contains("retired_at = \"2027-01-15T08:00:00.000Z\""),
            "{text}"
        );
        assert_eq!(Roster::from_toml(&text).unwrap(), r);
        let ee = NodeName::new("ee").unwrap();
        let t = 1_800_000_000_000;
        assert_eq!(r.key_status(&ee, &key(3), 0), KeyStatus::Current);
        assert_eq!(r.key_status(&ee, &key(2), t - 1), KeyStatus::Retiring { retired_at_ms: t });
        assert_eq!(r.key_status(&ee, &key(2), t), KeyStatus::Retired { retired_at_ms: t });
        assert_eq!(r.key_status(&ee, &key(4), 0), KeyStatus::Unknown, "lv's key is not ee's");
        assert_eq!(r.key_status(&NodeName::new("xx").unwrap(), &key(3), 0), KeyStatus::Unknown);
        assert_eq!(r.retired_keys(&NodeName::new("lv").unwrap()), &[]);
    }

    #[test]
    fn rejects_reused_and_too_many_retired_keys() {
        let e = Roster::new([rotated("ee", 1, &[(1, 5)])]).unwrap_err();
        assert!(e.contains("listed twice"), "{e}");
        let e = Roster::new([member("lv", 2), rotated("ee", 1, &[(2, 5)])]).unwrap_err();
        assert!(e.contains("already listed for another member"), "{e}");
        let many: Vec<(u8, u64)> = (10..10 + RETIRED_KEYS_MAX as u8 + 1).map(|s| (s, 5)).collect();
        let e = Roster::new([rotated("ee", 1, &many)]).unwrap_err();
        assert!(e.contains("drop the oldest"), "{e}");
    }

    #[test]
    fn rejects_a_retirement_time_that_is_not_rfc3339() {
        let k = hex::encode(key(1).as_bytes());
        let old = hex::encode(key(2).as_bytes());
        for bad in ["30d", "2026-12-01", "soon"] {
            let text = format!(
                "[[member]]\nname = \"ee\"\npublic_key = \"{k}\"\nquic_addr = \"127.0.0.1:1\"\n[[member.retired_key]]\npublic_key = \"{old}\"\nretired_at = \"{bad}\"\n"
            );
            let e = Roster::from_toml(&text).unwrap_err();
            assert!(e.contains("member ee: retired_key retired_at") && e.contains("RFC 3339"), "{bad}: {e}");
        }
    }

    #[test]
    fn rejects_bad_key_text() {
        let text = "[[member]]\nname = \"ee\"\npublic_key = \"abcd\"\nquic_addr = \"127.0.0.1:1\"\n";
        assert!(Roster::from_toml(text).unwrap_err().contains("64 hex digits"));
    }
}
