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

/// Most members in one federation. QUIC connections are a full mesh, so this also bounds the
/// connections a node holds; 64 covers every NATO and EU member state with room to spare.
pub const MEMBERS_MAX: usize = 64;
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

/// One federation member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub name: NodeName,
    /// Verifies every log entry this member originates.
    pub public_key: VerifyingKey,
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
}

impl Roster {
    /// Builds a roster, checking that names and keys are unique and keys are strong.
    pub fn new(members: impl IntoIterator<Item = Member>) -> Result<Roster, String> {
        let mut map = BTreeMap::new();
        for m in members {
            if map.len() == MEMBERS_MAX {
                return Err(format!("more than {MEMBERS_MAX} members"));
            }
            if m.public_key.is_weak() {
                return Err(format!("member {}: public key is a weak (small-order) key", m.name));
            }
            if map.values().any(|o: &Member| o.public_key == m.public_key) {
                return Err(format!("member {}: public key is already listed for another member", m.name));
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
        let meta = std::fs::metadata(path).map_err(|source| RosterError::Read { path: p.clone(), source })?;
        if meta.len() > ROSTER_FILE_BYTES_MAX {
            return Err(RosterError::Invalid { path: p, reason: format!("over {ROSTER_FILE_BYTES_MAX} bytes") });
        }
        // The size above may not hold for a special file (a FIFO, /dev/zero): read at most one
        // byte over the limit whatever the metadata said.
        let mut text = String::new();
        let read = std::fs::File::open(path).and_then(|f| {
            std::io::Read::read_to_string(&mut std::io::Read::take(f, ROSTER_FILE_BYTES_MAX + 1), &mut text)
        });
        read.map_err(|source| RosterError::Read { path: p.clone(), source })?;
        if text.len() as u64 > ROSTER_FILE_BYTES_MAX {
            return Err(RosterError::Invalid { path: p, reason: format!("over {ROSTER_FILE_BYTES_MAX} bytes") });
        }
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
            members.push(Member { name, public_key, quic_addr: m.quic_addr });
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
                })
                .collect(),
        };
        toml::to_string(&file).expect("roster serialises")
    }

    pub fn get(&self, name: &NodeName) -> Option<&Member> {
        self.members.get(name)
    }

    /// The key that signs `origin`'s log, if `origin` is a member.
    pub fn key(&self, origin: &NodeName) -> Option<&VerifyingKey> {
        self.members.get(origin).map(|m| &m.public_key)
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
        Member {
            name: NodeName::new(name).unwrap(),
            public_key: SigningKey::from_bytes(&[seed; 32]).verifying_key(),
            quic_addr: "127.0.0.1:7401".into(),
        }
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

    #[test]
    fn rejects_bad_key_text() {
        let text = "[[member]]\nname = \"ee\"\npublic_key = \"abcd\"\nquic_addr = \"127.0.0.1:1\"\n";
        assert!(Roster::from_toml(text).unwrap_err().contains("64 hex digits"));
    }
}
