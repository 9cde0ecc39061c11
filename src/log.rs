//! The signed append-only log: entries, and the verification that turns bytes from anywhere into
//! entries the store and sync may accept.
//!
//! Two proof-carrying types, made only here:
//! - `AuthenticEntry`: the roster key of its origin signed it, its body (if present) matches the
//!   header's body hash, decodes, is valid and agrees with the header's kind and audience.
//! - `VerifiedEntry`: an authentic entry whose chain position was checked against its
//!   predecessor. Only this type can be stored as part of a log or relayed.
//!
//! An authentic entry that contradicts one already held (same origin and seq, different hash, or
//! a `prev_hash` that is not our predecessor's hash) is proof of a fork and is kept as evidence.

use ed25519_dalek::SigningKey;

use crate::crypto::{self, EntryHeader, GENESIS_PREV_HASH, HeaderError};
use crate::model::{Body, EntryId, EntryKind, Hash, ModelError, NodeName};
use crate::roster::Roster;
use crate::wire::{self, WireEntry, WireError};

/// An entry as received or read back: nothing about it is trusted yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedEntry {
    pub header: EntryHeader,
    pub signature: [u8; 64],
    /// Body bytes; `None` for a redacted stub.
    pub body: Option<Vec<u8>>,
}

/// Why an entry was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The entry's bytes do not decode.
    #[error("malformed entry: {0}")]
    Wire(#[from] WireError),
    /// The canonical header does not decode.
    #[error("malformed entry header: {0}")]
    Header(#[from] HeaderError),
    /// The origin is not in the roster.
    #[error("origin {0} is not a member of this federation's roster")]
    UnknownOrigin(NodeName),
    /// The signature does not verify under the roster key of the origin.
    #[error("bad signature on {0}: not signed by the roster key of its origin")]
    BadSignature(EntryId),
    /// The signature verifies under a key the origin retired, but the entry was created at or
    /// after that key's retirement time: whoever holds the old key may not sign any more.
    #[error(
        "{id} is signed with a key its origin retired at {}, and was created at {}: refused (if the origin is still signing with its old key, it must switch to the key the roster lists)",
        crate::model::time::format_time(*retired_at_ms),
        crate::model::time::format_time(*created_ms)
    )]
    RetiredKey { id: EntryId, retired_at_ms: u64, created_ms: u64 },
    /// The body does not hash to the header's body hash.
    #[error("body of {0} does not match its signed body hash")]
    BodyHash(EntryId),
    /// The body decodes but breaks a model rule.
    #[error("body of {id} is invalid: {err}")]
    BodyInvalid { id: EntryId, err: ModelError },
    /// The body's kind or audience disagrees with the signed header.
    #[error("body of {id} disagrees with its header: {what}")]
    HeaderMismatch { id: EntryId, what: &'static str },
}

/// Why a chain position check failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    /// Entries between our head and this one are missing; fetch them first.
    #[error("gap: have up to seq {have}, got seq {got}")]
    Gap { have: u64, got: u64 },
    /// The entry names a predecessor other than the one we hold: the origin signed two histories.
    #[error("prev_hash does not match the held entry at seq {0}: the origin forked its log")]
    Mismatch(u64),
    /// The first entry of a log must name the genesis hash.
    #[error("seq 1 must have an all-zero prev_hash")]
    BadGenesis,
    /// We already hold this position; compare hashes instead of linking.
    #[error("seq {got} is not after our head {have}")]
    NotNext { have: u64, got: u64 },
}

/// The head of one origin's log as held here: the version vector entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChainTip {
    pub seq: u64,
    pub hash: Hash,
}

impl SignedEntry {
    pub fn id(&self) -> EntryId {
        EntryId { origin: self.header.origin.clone(), seq: self.header.seq }
    }

    pub fn hash(&self) -> Hash {
        self.header.hash()
    }

    pub fn to_wire(&self) -> WireEntry {
        WireEntry { header: self.header.encode(), signature: self.signature.to_vec(), body: self.body.clone() }
    }

    pub fn from_wire(w: WireEntry) -> Result<SignedEntry, VerifyError> {
        wire::check_entry_sizes(&w)?;
        let header = EntryHeader::decode(&w.header)?;
        let signature: [u8; 64] = w.signature.as_slice().try_into().map_err(|_| WireError::Malformed {
            what: "entry",
            reason: format!("signature is {} bytes", w.signature.len()),
        })?;
        Ok(SignedEntry { header, signature, body: w.body })
    }

    pub fn decode(bytes: &[u8]) -> Result<SignedEntry, VerifyError> {
        SignedEntry::from_wire(wire::decode_entry(bytes)?)
    }

    pub fn encode(&self) -> Vec<u8> {
        wire::encode_entry(&self.to_wire())
    }
}

/// An entry whose signature, signer and body were verified (see module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticEntry {
    entry: SignedEntry,
    hash: Hash,
    /// The decoded body, when the entry carries one of a kind this node understands.
    body: Option<Body>,
}

/// One of our own entries chained but not yet signed (`VerifiedEntry::chain_own`).
pub struct Unsigned {
    header: EntryHeader,
    input: Vec<u8>,
    hash: Hash,
    body_bytes: Vec<u8>,
    body: Body,
}

impl Unsigned {
    /// The position and hash the entry will have once signed.
    pub fn tip(&self) -> ChainTip {
        ChainTip { seq: self.header.seq, hash: self.hash }
    }
}

/// An authentic entry at a checked chain position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedEntry {
    inner: AuthenticEntry,
}

impl AuthenticEntry {
    pub fn entry(&self) -> &SignedEntry {
        &self.entry
    }
    pub fn header(&self) -> &EntryHeader {
        &self.entry.header
    }
    pub fn hash(&self) -> Hash {
        self.hash
    }
    /// Its position: seq and hash.
    pub fn tip(&self) -> ChainTip {
        ChainTip { seq: self.header().seq, hash: self.hash }
    }
    pub fn body(&self) -> Option<&Body> {
        self.body.as_ref()
    }
    pub fn id(&self) -> EntryId {
        self.entry.id()
    }
    pub fn is_stub(&self) -> bool {
        self.entry.body.is_none()
    }

    /// Confirms this entry is the one already held at its position (same hash): used to fill in
    /// the body of a redacted stub we hold.
    pub fn confirm_held(self, held_hash: &Hash) -> Option<VerifiedEntry> {
        (self.hash == *held_hash).then_some(VerifiedEntry { inner: self })
    }

    /// Checks that this entry extends `prev`, the head held for its origin (`None`: nothing held).
    pub fn link(self, prev: Option<&ChainTip>) -> Result<VerifiedEntry, (Box<AuthenticEntry>, ChainError)> {
        let h = &self.entry.header;
        let have = prev.map_or(0, |t| t.seq);
        let check = if h.seq <= have {
            Err(ChainError::NotNext { have, got: h.seq })
        } else if h.seq > have + 1 {
            Err(ChainError::Gap { have, got: h.seq })
        } else if h.seq == 1 {
            if h.prev_hash == GENESIS_PREV_HASH { Ok(()) } else { Err(ChainError::BadGenesis) }
        } else if prev.is_some_and(|t| t.hash == h.prev_hash) {
            Ok(())
        } else {
            Err(ChainError::Mismatch(have))
        };
        match check {
            Ok(()) => Ok(VerifiedEntry { inner: self }),
            Err(e) => Err((Box::new(self), e)),
        }
    }
}

impl VerifiedEntry {
    pub fn authentic(&self) -> &AuthenticEntry {
        &self.inner
    }
    pub fn entry(&self) -> &SignedEntry {
        &self.inner.entry
    }
    pub fn header(&self) -> &EntryHeader {
        &self.inner.entry.header
    }
    pub fn hash(&self) -> Hash {
        self.inner.hash
    }
    pub fn body(&self) -> Option<&Body> {
        self.inner.body.as_ref()
    }
    pub fn id(&self) -> EntryId {
        self.inner.id()
    }
    pub fn tip(&self) -> ChainTip {
        ChainTip { seq: self.header().seq, hash: self.inner.hash }
    }
    pub fn into_authentic(self) -> AuthenticEntry {
        self.inner
    }

    /// The entry as `node` may receive it: in full when `node` is in the audience, else the
    /// signed header only (a redacted stub that still verifies and chains).
    pub fn for_recipient(&self, node: &NodeName) -> SignedEntry {
        let e = &self.inner.entry;
        if e.header.audience.admits(&e.header.origin, node) {
            e.clone()
        } else {
            SignedEntry { body: None, ..e.clone() }
        }
    }

    /// Signs a new entry of our own log. `prev` is our current head. The result is verified by
    /// construction: we hold the key and the body came from the model's validation.
    pub fn sign_own(key: &SigningKey, origin: &NodeName, prev: Option<&ChainTip>, created_ms: u64, body: Body) -> Self {
        Self::sign_own_many(key, origin, prev, created_ms, vec![body]).pop().expect("one entry per body")
    }

    /// Signs new entries of our own log, chained in order after `prev`: the same entries as
    /// `sign_own` one after the other. The headers chain one by one (each names its predecessor's
    /// hash, a SHA-256); the signatures, which nothing else depends on, are made in parallel
    /// (`par::map_chunks`), so a large group commit signs on every core.
    pub fn sign_own_many(
        key: &SigningKey,
        origin: &NodeName,
        prev: Option<&ChainTip>,
        created_ms: u64,
        bodies: Vec<Body>,
    ) -> Vec<Self> {
        let unsigned = Self::chain_own(origin, prev, created_ms, bodies);
        crate::par::map_chunks(unsigned, |chunk| Self::sign_chained(key, chunk))
    }

    /// The first, sequential half of `sign_own_many`: each body's header, chained after `prev`.
    /// Nothing here is secret or slow (two SHA-256 per entry).
    pub fn chain_own(origin: &NodeName, prev: Option<&ChainTip>, created_ms: u64, bodies: Vec<Body>) -> Vec<Unsigned> {
        let mut tip = prev.copied();
        let mut unsigned = Vec::with_capacity(bodies.len());
        for body in bodies {
            let body_bytes = wire::encode_body(&body);
            let header = EntryHeader {
                origin: origin.clone(),
                seq: tip.map_or(1, |t| t.seq + 1),
                prev_hash: tip.map_or(GENESIS_PREV_HASH, |t| t.hash),
                created_ms,
                kind: body.kind() as u8,
                body_hash: crypto::body_hash(&body_bytes),
                audience: body.audience(),
            };
            let input = header.signing_input();
            let hash = crypto::sha256(&input);
            tip = Some(ChainTip { seq: header.seq, hash });
            unsigned.push(Unsigned { header, input, hash, body_bytes, body });
        }
        unsigned
    }

    /// The second half of `sign_own_many`: signs chained headers (any contiguous run of them, on
    /// any thread).
    pub fn sign_chained(key: &SigningKey, chained: Vec<Unsigned>) -> Vec<Self> {
        chained
            .into_iter()
            .map(|u| {
                let signature = crypto::sign_input(key, &u.input);
                let entry = SignedEntry { header: u.header, signature, body: Some(u.body_bytes) };
                VerifiedEntry { inner: AuthenticEntry { entry, hash: u.hash, body: Some(u.body) } }
            })
            .collect()
    }

    /// Rebuilds a verified entry read back from our own store, where it was written only after
    /// verification. Checks the cheap invariants again (hash, body hash, decode) but not the
    /// signature; `verify_chain` in `store` re-checks signatures when asked.
    pub(crate) fn from_store(entry: SignedEntry) -> Result<VerifiedEntry, VerifyError> {
        let body = check_body(&entry)?;
        let hash = entry.hash();
        Ok(VerifiedEntry { inner: AuthenticEntry { entry, hash, body } })
    }
}

/// Verifies one entry against the roster.
pub fn authenticate(roster: &Roster, entry: SignedEntry) -> Result<AuthenticEntry, VerifyError> {
    authenticate_batch(roster, vec![entry]).pop().expect("one result per entry")
}

/// Verifies many entries, with ed25519 batch verification of their signatures. One result per
/// entry, in order.
pub fn authenticate_batch(roster: &Roster, entries: Vec<SignedEntry>) -> Vec<Result<AuthenticEntry, VerifyError>> {
    // Pass 1: everything but the signature, which is collected for one batch check.
    type Checked = (SignedEntry, Vec<u8>, Option<Body>);
    let mut pre: Vec<Result<Checked, VerifyError>> = Vec::with_capacity(entries.len());
    for e in entries {
        let r = match roster.key(&e.header.origin) {
            None => Err(VerifyError::UnknownOrigin(e.header.origin.clone())),
            Some(_) => check_body(&e).map(|body| {
                let input = e.header.signing_input();
                (e, input, body)
            }),
        };
        pre.push(r);
    }
    let items: Vec<_> = pre
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .map(|(e, input, _)| (roster.key(&e.header.origin).expect("checked above"), input.as_slice(), &e.signature))
        .collect();
    let mut sig_ok = crypto::verify_many(&items).into_iter();
    pre.into_iter()
        .map(|r| {
            let (e, input, body) = r?;
            if !sig_ok.next().expect("one result per signature") {
                check_retired_keys(roster, &e, &input)?;
            }
            let hash = crypto::sha256(&input);
            Ok(AuthenticEntry { entry: e, hash, body })
        })
        .collect()
}

/// For an entry whose signature failed under its origin's current key: accepts it if a retired
/// key signed it before that key's retirement. Only entries signed during a rotation's overlap
/// window take this slower, one-by-one path.
fn check_retired_keys(roster: &Roster, e: &SignedEntry, input: &[u8]) -> Result<(), VerifyError> {
    let created_ms = e.header.created_ms;
    for r in roster.retired_keys(&e.header.origin) {
        if crypto::verify_one(&r.public_key, input, &e.signature) {
            if created_ms < r.retired_at_ms {
                return Ok(());
            }
            return Err(VerifyError::RetiredKey { id: e.id(), retired_at_ms: r.retired_at_ms, created_ms });
        }
    }
    Err(VerifyError::BadSignature(e.id()))
}

/// Checks the body against the header and decodes it (known kinds only).
fn check_body(e: &SignedEntry) -> Result<Option<Body>, VerifyError> {
    let Some(bytes) = &e.body else { return Ok(None) };
    let id = e.id();
    if bytes.len() > wire::BODY_BYTES_MAX {
        return Err(WireError::TooLarge { what: "entry body", len: bytes.len(), max: wire::BODY_BYTES_MAX }.into());
    }
    if crypto::body_hash(bytes) != e.header.body_hash {
        return Err(VerifyError::BodyHash(id));
    }
    let Some(kind) = EntryKind::from_u8(e.header.kind) else {
        // A kind newer than this node: the hash matched, so relay it opaque.
        return Ok(None);
    };
    let body = wire::decode_body(bytes)?;
    if body.kind() != kind {
        return Err(VerifyError::HeaderMismatch { id, what: "kind" });
    }
    if body.audience() != e.header.audience {
        return Err(VerifyError::HeaderMismatch { id, what: "audience" });
    }
    body.validate().map_err(|err| VerifyError::BodyInvalid { id: id.clone(), err })?;
    if let Body::Retraction(r) = &body
        && r.target_seq >= e.header.seq
    {
        return Err(VerifyError::BodyInvalid {
            id,
            err: ModelError::new("target", "a retraction must name an earlier entry of its own log"),
        });
    }
    Ok(Some(body))
}
