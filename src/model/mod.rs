//! Domain types: indicators, sightings, retractions, TLP and audiences, with validation.
//!
//! Everything here is plain data. Constructors validate and normalise, so a value of these types
//! that came through `Indicator::from_input` (or was re-checked with `validate`) is well formed.
//! Bytes on the wire are `wire`'s business; this module knows nothing of encodings.

pub mod drill;
mod normalize;
pub mod time;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use normalize::normalize_value;

/// Longest node name: short state codes (`ee`, `lv`) with room for agency suffixes.
pub const NODE_NAME_BYTES_MAX: usize = 32;
/// Longest normalised indicator value (long URLs exist; a megabyte "URL" is an attack).
pub const VALUE_BYTES_MAX: usize = 2048;
/// Most tags on one indicator.
pub const TAGS_MAX: usize = 32;
/// Longest tag.
pub const TAG_BYTES_MAX: usize = 64;
/// Longest free-text description.
pub const DESCRIPTION_BYTES_MAX: usize = 4096;
/// Most ATT&CK technique ids or kill-chain phases on one indicator.
pub const TECHNIQUES_MAX: usize = 32;
/// Most named recipients of a TLP:RED indicator (the federation is a few dozen states at most).
pub const RECIPIENTS_MAX: usize = 64;
/// Longest retraction reason or sighting note.
pub const REASON_BYTES_MAX: usize = 1024;

/// A user-facing validation error: which field is wrong and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field}: {reason}")]
pub struct ModelError {
    /// The field at fault, named as in the API and CLI (`value`, `tlp`, `confidence` …).
    pub field: &'static str,
    /// What is wrong and, where it helps, what a valid value looks like.
    pub reason: String,
}

impl ModelError {
    pub fn new(field: &'static str, reason: impl Into<String>) -> Self {
        ModelError { field, reason: reason.into() }
    }
}

/// A 32-byte SHA-256 digest.
pub type Hash = [u8; 32];

/// The name of a federation member, e.g. `ee`, `lv`, `lt`: 1–32 of `[a-z0-9-]`, starting with a
/// letter. It is also the DNS name in the member's TLS certificate.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NodeName(String);

impl NodeName {
    pub fn new(name: &str) -> Result<Self, ModelError> {
        let ok_len = !name.is_empty() && name.len() <= NODE_NAME_BYTES_MAX;
        let ok_chars = name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        let ok_start = name.bytes().next().is_some_and(|b| b.is_ascii_lowercase());
        if ok_len && ok_chars && ok_start {
            Ok(NodeName(name.to_owned()))
        } else {
            Err(ModelError::new(
                "node",
                format!(
                    "{name:?} is not a node name: use 1-{NODE_NAME_BYTES_MAX} lower-case letters, digits or '-', starting with a letter (e.g. \"ee\")"
                ),
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for NodeName {
    type Error = ModelError;
    fn try_from(s: String) -> Result<Self, ModelError> {
        NodeName::new(&s)
    }
}

impl From<NodeName> for String {
    fn from(n: NodeName) -> String {
        n.0
    }
}

impl FromStr for NodeName {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self, ModelError> {
        NodeName::new(s)
    }
}

impl fmt::Display for NodeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Traffic Light Protocol 2.0 levels. Recipients of `Red` are carried by the indicator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Tlp {
    Clear,
    Green,
    Amber,
    AmberStrict,
    Red,
}

impl Tlp {
    pub const ALL: [Tlp; 5] = [Tlp::Clear, Tlp::Green, Tlp::Amber, Tlp::AmberStrict, Tlp::Red];

    /// The TLP 2.0 label in lower case, as used in the CLI and API (`amber+strict`).
    pub fn as_str(self) -> &'static str {
        match self {
            Tlp::Clear => "clear",
            Tlp::Green => "green",
            Tlp::Amber => "amber",
            Tlp::AmberStrict => "amber+strict",
            Tlp::Red => "red",
        }
    }
}

impl FromStr for Tlp {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self, ModelError> {
        let t = s.trim().to_ascii_lowercase();
        let t = t.strip_prefix("tlp:").unwrap_or(&t);
        match t {
            "clear" | "white" => Ok(Tlp::Clear),
            "green" => Ok(Tlp::Green),
            "amber" => Ok(Tlp::Amber),
            "amber+strict" | "amber-strict" | "amber_strict" => Ok(Tlp::AmberStrict),
            "red" => Ok(Tlp::Red),
            _ => Err(ModelError::new(
                "tlp",
                format!("{s:?} is not a TLP 2.0 level: use clear, green, amber, amber+strict or red"),
            )),
        }
    }
}

impl fmt::Display for Tlp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who may read an entry's body. Everyone else receives only the signed header (a redacted stub).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Audience {
    /// Every federation member (TLP:CLEAR, GREEN, AMBER, AMBER+STRICT).
    All,
    /// Only these members, sorted and without duplicates (TLP:RED). The origin always may read
    /// its own entries, listed or not.
    Only(Vec<NodeName>),
}

impl Audience {
    /// Whether `node` may receive the body of an entry of `origin` with this audience.
    pub fn admits(&self, origin: &NodeName, node: &NodeName) -> bool {
        match self {
            Audience::All => true,
            Audience::Only(list) => origin == node || list.binary_search(node).is_ok(),
        }
    }

    /// Checks the canonical form: sorted, unique, bounded.
    pub fn validate(&self) -> Result<(), ModelError> {
        if let Audience::Only(list) = self {
            if list.is_empty() || list.len() > RECIPIENTS_MAX {
                return Err(ModelError::new(
                    "recipients",
                    format!("TLP:RED needs 1 to {RECIPIENTS_MAX} recipient nodes"),
                ));
            }
            if list.windows(2).any(|w| w[0] >= w[1]) {
                return Err(ModelError::new("recipients", "recipient list is not sorted and unique"));
            }
        }
        Ok(())
    }
}

/// The kinds of indicator ctix carries. The normalisation rules of each are in `normalize`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum IndicatorType {
    Ipv4,
    Ipv6,
    Cidr,
    Domain,
    Url,
    Email,
    Md5,
    Sha1,
    Sha256,
    Filename,
    Cve,
}

impl IndicatorType {
    pub const ALL: [IndicatorType; 11] = [
        IndicatorType::Ipv4,
        IndicatorType::Ipv6,
        IndicatorType::Cidr,
        IndicatorType::Domain,
        IndicatorType::Url,
        IndicatorType::Email,
        IndicatorType::Md5,
        IndicatorType::Sha1,
        IndicatorType::Sha256,
        IndicatorType::Filename,
        IndicatorType::Cve,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            IndicatorType::Ipv4 => "ipv4",
            IndicatorType::Ipv6 => "ipv6",
            IndicatorType::Cidr => "cidr",
            IndicatorType::Domain => "domain",
            IndicatorType::Url => "url",
            IndicatorType::Email => "email",
            IndicatorType::Md5 => "md5",
            IndicatorType::Sha1 => "sha1",
            IndicatorType::Sha256 => "sha256",
            IndicatorType::Filename => "filename",
            IndicatorType::Cve => "cve",
        }
    }
}

impl FromStr for IndicatorType {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self, ModelError> {
        let t = s.trim().to_ascii_lowercase();
        IndicatorType::ALL.into_iter().find(|k| k.as_str() == t).ok_or_else(|| {
            let names: Vec<&str> = IndicatorType::ALL.iter().map(|k| k.as_str()).collect();
            ModelError::new("type", format!("{s:?} is not an indicator type: use one of {}", names.join(", ")))
        })
    }
}

impl fmt::Display for IndicatorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The content id of an indicator: SHA-256 over `"ctix/content/v1" || type || 0x00 || value`
/// (normalised). The same IOC submitted by two states has the same content id.
pub fn content_id(itype: IndicatorType, value: &str) -> Hash {
    let mut h = Sha256::new();
    h.update(b"ctix/content/v1");
    h.update(itype.as_str().as_bytes());
    h.update([0u8]);
    h.update(value.as_bytes());
    h.finalize().into()
}

/// A threat indicator, validated and normalised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Indicator {
    pub itype: IndicatorType,
    /// Normalised per type (see `normalize_value`).
    pub value: String,
    pub tlp: Tlp,
    /// Named recipient nodes for TLP:RED, sorted and unique; empty for every other level.
    pub recipients: Vec<NodeName>,
    /// 0–100, as in STIX 2.1.
    pub confidence: u8,
    /// Milliseconds since the Unix epoch.
    pub valid_from_ms: u64,
    /// Milliseconds since the Unix epoch; `None` means no stated expiry.
    pub valid_until_ms: Option<u64>,
    /// Lower-case, sorted, unique.
    pub tags: Vec<String>,
    pub description: String,
    /// MITRE ATT&CK technique ids (`T1566`, `T1566.001`) or kill-chain phase names
    /// (`delivery`), sorted and unique.
    pub techniques: Vec<String>,
}

/// An indicator as a user or a tool submits it: raw strings, checked by `Indicator::from_input`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IndicatorInput {
    #[serde(rename = "type")]
    pub itype: String,
    pub value: String,
    /// Defaults to `amber` when empty: a CERT shares with the federation, not the public.
    pub tlp: String,
    pub recipients: Vec<String>,
    /// Defaults to 50 when absent.
    pub confidence: Option<i64>,
    /// RFC 3339 time; defaults to the submission time when absent.
    pub valid_from: Option<String>,
    /// RFC 3339 time, or a duration from now such as `30d`; absent means no expiry.
    pub valid_until: Option<String>,
    pub tags: Vec<String>,
    pub description: String,
    pub techniques: Vec<String>,
}

/// Confidence applied when a submission does not state one.
pub const CONFIDENCE_DEFAULT: u8 = 50;

impl Indicator {
    /// Validates and normalises a submission. `now_ms` fills in `valid_from` when it is absent and
    /// anchors relative `valid_until` durations.
    pub fn from_input(input: &IndicatorInput, now_ms: u64) -> Result<Indicator, ModelError> {
        if input.itype.trim().is_empty() {
            return Err(ModelError::new("type", "missing: give the indicator type, e.g. \"ipv4\" or \"domain\""));
        }
        let itype: IndicatorType = input.itype.parse()?;
        let value = normalize_value(itype, &input.value)?;
        let tlp: Tlp = if input.tlp.trim().is_empty() { Tlp::Amber } else { input.tlp.parse()? };
        let mut recipients = Vec::with_capacity(input.recipients.len());
        for r in &input.recipients {
            recipients.push(NodeName::new(r.trim()).map_err(|e| ModelError::new("recipients", e.reason))?);
        }
        recipients.sort();
        recipients.dedup();
        let confidence = match input.confidence {
            None => CONFIDENCE_DEFAULT,
            Some(c) if (0..=100).contains(&c) => c as u8,
            Some(c) => return Err(ModelError::new("confidence", format!("{c} is out of range: use 0 to 100"))),
        };
        let valid_from_ms = match &input.valid_from {
            None => now_ms,
            Some(s) => time::parse_time(s, now_ms).map_err(|r| ModelError::new("valid_from", r))?,
        };
        let valid_until_ms = match &input.valid_until {
            None => None,
            Some(s) => Some(time::parse_time(s, now_ms).map_err(|r| ModelError::new("valid_until", r))?),
        };
        let mut tags: Vec<String> = input.tags.iter().map(|t| t.trim().to_lowercase()).collect();
        tags.sort();
        tags.dedup();
        let mut techniques: Vec<String> = input.techniques.iter().map(|t| normalize_technique(t)).collect();
        techniques.sort();
        techniques.dedup();
        let ind = Indicator {
            itype,
            value,
            tlp,
            recipients,
            confidence,
            valid_from_ms,
            valid_until_ms,
            tags,
            description: input.description.trim().to_owned(),
            techniques,
        };
        ind.validate()?;
        Ok(ind)
    }

    /// Checks every invariant of a normalised indicator. Used on submission and again on every
    /// indicator decoded from a peer: a signed but malformed indicator is still rejected.
    pub fn validate(&self) -> Result<(), ModelError> {
        let normal = normalize_value(self.itype, &self.value)?;
        if normal != self.value {
            return Err(ModelError::new(
                "value",
                format!("{:?} is not in normal form (expected {normal:?})", self.value),
            ));
        }
        if self.confidence > 100 {
            return Err(ModelError::new("confidence", format!("{} is out of range: use 0 to 100", self.confidence)));
        }
        match (self.tlp, self.recipients.is_empty()) {
            (Tlp::Red, true) => {
                return Err(ModelError::new(
                    "recipients",
                    "TLP:RED needs named recipient nodes (e.g. --recipients lv,lt)",
                ));
            }
            (Tlp::Red, false) => self.audience().validate()?,
            (_, false) => {
                return Err(ModelError::new(
                    "recipients",
                    format!("recipients apply only to TLP:RED, not TLP:{}", self.tlp.as_str().to_uppercase()),
                ));
            }
            (_, true) => {}
        }
        if self.valid_from_ms > time::TIME_MS_MAX || self.valid_until_ms.is_some_and(|t| t > time::TIME_MS_MAX) {
            return Err(ModelError::new("valid_until", "times after year 9999 are not accepted"));
        }
        if let Some(until) = self.valid_until_ms
            && until <= self.valid_from_ms
        {
            return Err(ModelError::new("valid_until", "must be later than valid_from"));
        }
        if self.tags.len() > TAGS_MAX {
            return Err(ModelError::new("tags", format!("{} tags given: at most {TAGS_MAX}", self.tags.len())));
        }
        for t in &self.tags {
            check_label("tags", t, TAG_BYTES_MAX)?;
        }
        if !is_sorted_unique(&self.tags) {
            return Err(ModelError::new("tags", "tags are not sorted and unique"));
        }
        if self.description.len() > DESCRIPTION_BYTES_MAX {
            return Err(ModelError::new(
                "description",
                format!("{} bytes: at most {DESCRIPTION_BYTES_MAX}", self.description.len()),
            ));
        }
        if self.techniques.len() > TECHNIQUES_MAX {
            return Err(ModelError::new(
                "techniques",
                format!("{} given: at most {TECHNIQUES_MAX}", self.techniques.len()),
            ));
        }
        for t in &self.techniques {
            check_technique(t)?;
        }
        if !is_sorted_unique(&self.techniques) {
            return Err(ModelError::new("techniques", "techniques are not sorted and unique"));
        }
        Ok(())
    }

    pub fn content_id(&self) -> Hash {
        content_id(self.itype, &self.value)
    }

    /// The distribution audience implied by the TLP level.
    pub fn audience(&self) -> Audience {
        match self.tlp {
            Tlp::Red => Audience::Only(self.recipients.clone()),
            _ => Audience::All,
        }
    }
}

fn is_sorted_unique(v: &[String]) -> bool {
    v.windows(2).all(|w| w[0] < w[1])
}

fn check_label(field: &'static str, s: &str, max: usize) -> Result<(), ModelError> {
    if s.is_empty() || s.len() > max {
        return Err(ModelError::new(field, format!("{s:?} must be 1 to {max} bytes")));
    }
    if s.chars().any(|c| c.is_control()) {
        return Err(ModelError::new(field, format!("{s:?} contains control characters")));
    }
    Ok(())
}

/// The kill-chain phases (Lockheed Martin) accepted alongside ATT&CK technique ids.
pub const KILL_CHAIN_PHASES: [&str; 7] = [
    "reconnaissance",
    "weaponization",
    "delivery",
    "exploitation",
    "installation",
    "command-and-control",
    "actions-on-objectives",
];

fn normalize_technique(t: &str) -> String {
    let t = t.trim();
    if t.len() > 1 && (t.starts_with('t') || t.starts_with('T')) && t[1..].starts_with(|c: char| c.is_ascii_digit()) {
        t.to_ascii_uppercase()
    } else {
        t.to_ascii_lowercase()
    }
}

fn check_technique(t: &str) -> Result<(), ModelError> {
    let b = t.as_bytes();
    let digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    let attack = match b.len() {
        5 => b[0] == b'T' && digits(&b[1..]),
        9 => b[0] == b'T' && digits(&b[1..5]) && b[5] == b'.' && digits(&b[6..]),
        _ => false,
    };
    if attack || KILL_CHAIN_PHASES.contains(&t) {
        Ok(())
    } else {
        Err(ModelError::new(
            "techniques",
            format!(
                "{t:?} is neither an ATT&CK technique id (T1566 or T1566.001) nor a kill-chain phase ({})",
                KILL_CHAIN_PHASES.join(", ")
            ),
        ))
    }
}

/// Identifies one entry in the federation: its origin's name and its position in that log.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct EntryId {
    pub origin: NodeName,
    pub seq: u64,
}

impl fmt::Display for EntryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.origin, self.seq)
    }
}

impl FromStr for EntryId {
    type Err = ModelError;
    /// Parses `origin:seq`, e.g. `ee:42`.
    fn from_str(s: &str) -> Result<Self, ModelError> {
        let bad = || ModelError::new("id", format!("{s:?} is not an entry id: use ORIGIN:SEQ, e.g. ee:42"));
        let (o, q) = s.split_once(':').ok_or_else(bad)?;
        let origin = NodeName::new(o).map_err(|_| bad())?;
        let seq: u64 = q.parse().map_err(|_| bad())?;
        if seq == 0 {
            return Err(bad());
        }
        Ok(EntryId { origin, seq })
    }
}

/// A report that an indicator (of any origin) was seen in the reporter's constituency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sighting {
    /// The indicator entry that was sighted.
    pub indicator: EntryId,
    /// How many times it was seen in this report (at least 1).
    pub count: u32,
    /// When it was first and last seen in this report, ms since the Unix epoch.
    pub first_seen_ms: u64,
    pub last_seen_ms: u64,
    pub note: String,
}

impl Sighting {
    pub fn validate(&self) -> Result<(), ModelError> {
        if self.count == 0 {
            return Err(ModelError::new("count", "a sighting counts at least 1"));
        }
        if self.last_seen_ms < self.first_seen_ms {
            return Err(ModelError::new("last_seen", "is earlier than first_seen"));
        }
        if self.indicator.seq == 0 {
            return Err(ModelError::new("indicator", "sequence numbers start at 1"));
        }
        if self.note.len() > REASON_BYTES_MAX {
            return Err(ModelError::new("note", format!("{} bytes: at most {REASON_BYTES_MAX}", self.note.len())));
        }
        Ok(())
    }
}

/// Revokes an earlier indicator of the same origin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retraction {
    /// Sequence number of the revoked indicator in the retracting origin's own log.
    pub target_seq: u64,
    pub reason: String,
}

impl Retraction {
    pub fn validate(&self) -> Result<(), ModelError> {
        if self.target_seq == 0 {
            return Err(ModelError::new("target", "sequence numbers start at 1"));
        }
        if self.reason.trim().is_empty() || self.reason.len() > REASON_BYTES_MAX {
            return Err(ModelError::new("reason", format!("give a reason of 1 to {REASON_BYTES_MAX} bytes")));
        }
        Ok(())
    }
}

/// What an entry says. The header's `kind` names the variant, so a redacted stub still shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Body {
    Indicator(Indicator),
    Sighting(Sighting),
    Retraction(Retraction),
    /// A drill record: never an indicator, never queried, exported or correlated.
    Drill(drill::DrillRecord),
}

/// The kind of an entry, carried in its signed header. Values are fixed by `proto/PROTOCOL.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[repr(u8)]
pub enum EntryKind {
    Indicator = 1,
    Sighting = 2,
    Retraction = 3,
    Drill = 4,
}

impl EntryKind {
    pub fn from_u8(b: u8) -> Option<EntryKind> {
        match b {
            1 => Some(EntryKind::Indicator),
            2 => Some(EntryKind::Sighting),
            3 => Some(EntryKind::Retraction),
            4 => Some(EntryKind::Drill),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Indicator => "indicator",
            EntryKind::Sighting => "sighting",
            EntryKind::Retraction => "retraction",
            EntryKind::Drill => "drill",
        }
    }
}

impl Body {
    pub fn kind(&self) -> EntryKind {
        match self {
            Body::Indicator(_) => EntryKind::Indicator,
            Body::Sighting(_) => EntryKind::Sighting,
            Body::Retraction(_) => EntryKind::Retraction,
            Body::Drill(_) => EntryKind::Drill,
        }
    }

    /// Who may read this body.
    pub fn audience(&self) -> Audience {
        match self {
            Body::Indicator(i) => i.audience(),
            Body::Sighting(_) | Body::Retraction(_) | Body::Drill(_) => Audience::All,
        }
    }

    pub fn validate(&self) -> Result<(), ModelError> {
        match self {
            Body::Indicator(i) => i.validate(),
            Body::Sighting(s) => s.validate(),
            Body::Retraction(r) => r.validate(),
            Body::Drill(d) => d.validate(),
        }
    }
}
