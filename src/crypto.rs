//! Hashing, the canonical entry header encoding, and ed25519 signing and verification.
//!
//! The byte layouts here are normative: `proto/PROTOCOL.md` describes them and
//! `proto/vectors/entries.json` pins them. Changing a byte here is a protocol change.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::model::{Audience, Hash, NodeName, RECIPIENTS_MAX};

/// Domain-separation tag prefixed to every signing input.
pub const ENTRY_DOMAIN: &[u8] = b"ctix/entry/v1";
/// Domain-separation tag prefixed to a body before hashing.
pub const BODY_DOMAIN: &[u8] = b"ctix/body/v1";
/// Version byte at the start of the canonical header.
pub const HEADER_VERSION: u8 = 1;
/// The `prev_hash` of every origin's first entry.
pub const GENESIS_PREV_HASH: Hash = [0u8; 32];
/// Largest canonical header: fixed fields plus a full TLP:RED audience of maximal names.
pub const HEADER_BYTES_MAX: usize = 1 + 1 + 32 + 8 + 32 + 8 + 1 + 32 + 1 + 1 + RECIPIENTS_MAX * 33;

/// The signed part of a log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryHeader {
    pub origin: NodeName,
    /// Position in the origin's log, from 1.
    pub seq: u64,
    /// Hash of the origin's previous entry; `GENESIS_PREV_HASH` for seq 1.
    pub prev_hash: Hash,
    /// The origin's clock when it signed, ms since the Unix epoch. Informational only.
    pub created_ms: u64,
    /// The `EntryKind` byte. Kept raw so a node can relay kinds newer than itself.
    pub kind: u8,
    /// `body_hash(body_bytes)`.
    pub body_hash: Hash,
    pub audience: Audience,
}

/// Why header bytes did not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// The bytes ended before the header did.
    #[error("header truncated")]
    Truncated,
    /// Bytes follow the end of the header.
    #[error("{0} trailing bytes after header")]
    Trailing(usize),
    /// The version byte is not one this node understands.
    #[error("unsupported header version {0} (this node speaks version 1; upgrade ctix)")]
    Version(u8),
    /// A node name in the header is malformed.
    #[error("bad node name in header: {0}")]
    Name(String),
    /// The audience field is malformed.
    #[error("bad audience in header: {0}")]
    Audience(String),
    /// seq 0 is never used.
    #[error("seq 0 is not a valid position (logs start at 1)")]
    SeqZero,
}

impl EntryHeader {
    /// The canonical header bytes (without the domain tag).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128);
        out.push(HEADER_VERSION);
        put_name(&mut out, &self.origin);
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.prev_hash);
        out.extend_from_slice(&self.created_ms.to_be_bytes());
        out.push(self.kind);
        out.extend_from_slice(&self.body_hash);
        match &self.audience {
            Audience::All => out.push(0),
            Audience::Only(names) => {
                out.push(1);
                out.push(names.len() as u8);
                for n in names {
                    put_name(&mut out, n);
                }
            }
        }
        out
    }

    /// Decodes canonical header bytes, rejecting anything that would not re-encode identically.
    pub fn decode(bytes: &[u8]) -> Result<EntryHeader, HeaderError> {
        let mut r = Reader { bytes, pos: 0 };
        let version = r.u8()?;
        if version != HEADER_VERSION {
            return Err(HeaderError::Version(version));
        }
        let origin = r.name()?;
        let seq = r.u64()?;
        if seq == 0 {
            return Err(HeaderError::SeqZero);
        }
        let prev_hash = r.hash()?;
        let created_ms = r.u64()?;
        let kind = r.u8()?;
        let body_hash = r.hash()?;
        let audience = match r.u8()? {
            0 => Audience::All,
            1 => {
                let n = r.u8()? as usize;
                let mut names = Vec::with_capacity(n);
                for _ in 0..n {
                    names.push(r.name()?);
                }
                let a = Audience::Only(names);
                a.validate().map_err(|e| HeaderError::Audience(e.reason))?;
                a
            }
            t => return Err(HeaderError::Audience(format!("unknown audience tag {t}"))),
        };
        if r.pos != bytes.len() {
            return Err(HeaderError::Trailing(bytes.len() - r.pos));
        }
        Ok(EntryHeader { origin, seq, prev_hash, created_ms, kind, body_hash, audience })
    }

    /// `ENTRY_DOMAIN || encode()`: exactly the bytes the origin signs.
    pub fn signing_input(&self) -> Vec<u8> {
        let mut v = ENTRY_DOMAIN.to_vec();
        v.extend_from_slice(&self.encode());
        v
    }

    /// The entry hash: SHA-256 of the signing input. It chains entries (`prev_hash`) and
    /// identifies them in version vectors.
    pub fn hash(&self) -> Hash {
        sha256(&self.signing_input())
    }
}

fn put_name(out: &mut Vec<u8>, n: &NodeName) {
    out.push(n.as_str().len() as u8);
    out.extend_from_slice(n.as_str().as_bytes());
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], HeaderError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len()).ok_or(HeaderError::Truncated)?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, HeaderError> {
        Ok(self.take(1)?[0])
    }
    fn u64(&mut self) -> Result<u64, HeaderError> {
        Ok(u64::from_be_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }
    fn hash(&mut self) -> Result<Hash, HeaderError> {
        Ok(self.take(32)?.try_into().expect("32 bytes"))
    }
    fn name(&mut self) -> Result<NodeName, HeaderError> {
        let len = self.u8()? as usize;
        let raw = self.take(len)?;
        let s = std::str::from_utf8(raw).map_err(|_| HeaderError::Name("not UTF-8".into()))?;
        NodeName::new(s).map_err(|e| HeaderError::Name(e.reason))
    }
}

pub fn sha256(data: &[u8]) -> Hash {
    Sha256::digest(data).into()
}

/// `SHA-256(BODY_DOMAIN || body_bytes)`.
pub fn body_hash(body_bytes: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update(BODY_DOMAIN);
    h.update(body_bytes);
    h.finalize().into()
}

/// Signs a header: ed25519 over `signing_input()`.
pub fn sign_header(key: &SigningKey, header: &EntryHeader) -> [u8; 64] {
    key.sign(&header.signing_input()).to_bytes()
}

/// Signs a header's `signing_input()`, already computed.
pub fn sign_input(key: &SigningKey, signing_input: &[u8]) -> [u8; 64] {
    key.sign(signing_input).to_bytes()
}

/// Verifies one signature strictly (rejects malleable signatures and small-order points).
pub fn verify_one(key: &VerifyingKey, signing_input: &[u8], signature: &[u8; 64]) -> bool {
    key.verify_strict(signing_input, &Signature::from_bytes(signature)).is_ok()
}

/// Verifies many signatures at once with ed25519 batch verification (about twice the rate of
/// single verification). Returns per-item results: when the batch fails, each item is checked
/// alone so one bad signature does not condemn its neighbours.
pub fn verify_many(items: &[(&VerifyingKey, &[u8], &[u8; 64])]) -> Vec<bool> {
    if items.is_empty() {
        return Vec::new();
    }
    let messages: Vec<&[u8]> = items.iter().map(|(_, m, _)| *m).collect();
    let signatures: Vec<Signature> = items.iter().map(|(_, _, s)| Signature::from_bytes(s)).collect();
    let keys: Vec<VerifyingKey> = items.iter().map(|(k, _, _)| **k).collect();
    if items.len() > 1 && ed25519_dalek::verify_batch(&messages, &signatures, &keys).is_ok() {
        return vec![true; items.len()];
    }
    items.iter().map(|(k, m, s)| verify_one(k, m, s)).collect()
}
