//! Byte encodings of bodies, entries and stored records: the only module that knows bincode.
//!
//! bincode 2.0.1 is pinned and unmaintained (RUSTSEC-2025-0141), so it stays behind this
//! module's functions, and every decode runs with an explicit byte limit and rejects trailing or
//! non-canonical bytes. The layouts are specified in `proto/PROTOCOL.md`.

use bincode::config::{self, Configuration};
use serde::{Deserialize, Serialize};

use crate::crypto::HEADER_BYTES_MAX;
use crate::model::Body;

/// Largest encoded body. An indicator at every field limit is about 10 KiB; bodies above this
/// are refused before they are hashed or stored.
pub const BODY_BYTES_MAX: usize = 16 * 1024;
/// Largest encoded entry: header, signature, body and bincode's length prefixes.
pub const ENTRY_BYTES_MAX: usize = HEADER_BYTES_MAX + 64 + BODY_BYTES_MAX + 32;

/// bincode's standard configuration: little-endian, variable-length integers.
fn cfg() -> Configuration {
    config::standard()
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The input is larger than its limit allows.
    #[error("{what} is {len} bytes, over the limit of {max}")]
    TooLarge { what: &'static str, len: usize, max: usize },
    /// bincode could not decode the bytes.
    #[error("malformed {what}: {reason}")]
    Malformed { what: &'static str, reason: String },
    /// The bytes decode, but are not the canonical encoding of what they decode to.
    #[error("non-canonical {what} encoding")]
    NonCanonical { what: &'static str },
}

/// Encodes a body canonically.
pub fn encode_body(body: &Body) -> Vec<u8> {
    bincode::serde::encode_to_vec(body, cfg()).expect("bodies always encode")
}

/// Decodes a body, refusing oversize, trailing or non-canonical bytes.
pub fn decode_body(bytes: &[u8]) -> Result<Body, WireError> {
    decode_canonical("body", bytes, BODY_BYTES_MAX)
}

/// A log entry as it travels and as it is stored: canonical header bytes, signature, and the
/// body bytes unless this is a redacted stub.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireEntry {
    /// `EntryHeader::encode()` bytes.
    pub header: Vec<u8>,
    /// 64-byte ed25519 signature.
    pub signature: Vec<u8>,
    /// `None` for a redacted stub (the receiver is outside the entry's audience).
    pub body: Option<Vec<u8>>,
}

pub fn encode_entry(e: &WireEntry) -> Vec<u8> {
    bincode::serde::encode_to_vec(e, cfg()).expect("entries always encode")
}

pub fn decode_entry(bytes: &[u8]) -> Result<WireEntry, WireError> {
    let e: WireEntry = decode_canonical("entry", bytes, ENTRY_BYTES_MAX)?;
    check_entry_sizes(&e)?;
    Ok(e)
}

/// Field limits of an entry, checked after every decode.
pub fn check_entry_sizes(e: &WireEntry) -> Result<(), WireError> {
    if e.header.len() > HEADER_BYTES_MAX {
        return Err(WireError::TooLarge { what: "entry header", len: e.header.len(), max: HEADER_BYTES_MAX });
    }
    if e.signature.len() != 64 {
        return Err(WireError::Malformed {
            what: "entry",
            reason: format!("signature is {} bytes, not 64", e.signature.len()),
        });
    }
    if let Some(b) = &e.body
        && b.len() > BODY_BYTES_MAX
    {
        return Err(WireError::TooLarge { what: "entry body", len: b.len(), max: BODY_BYTES_MAX });
    }
    Ok(())
}

/// Encodes any wire value (used by `sync` messages and stored records).
pub fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    bincode::serde::encode_to_vec(v, cfg()).expect("wire values always encode")
}

/// Decodes any wire value with a byte limit; rejects trailing and non-canonical bytes.
pub fn decode_canonical<T>(what: &'static str, bytes: &[u8], max: usize) -> Result<T, WireError>
where
    T: Serialize + for<'de> Deserialize<'de>,
{
    if bytes.len() > max {
        return Err(WireError::TooLarge { what, len: bytes.len(), max });
    }
    // The limit bounds every allocation bincode makes while decoding, not only the input.
    let lim = cfg().with_limit::<{ 1 << 20 }>();
    let (v, read): (T, usize) = bincode::serde::decode_from_slice(bytes, lim)
        .map_err(|e| WireError::Malformed { what, reason: e.to_string() })?;
    if read != bytes.len() {
        return Err(WireError::Malformed { what, reason: format!("{} trailing bytes", bytes.len() - read) });
    }
    if encode(&v) != bytes {
        return Err(WireError::NonCanonical { what });
    }
    Ok(v)
}

const _: () = assert!(ENTRY_BYTES_MAX < (1 << 20), "decode limit must admit the largest entry");

// ---- Replication messages (ALPN `ctix/1`) ----

/// Protocol version carried in `Hello`; a peer with another version is disconnected.
/// 2: `Heads` lists only the origins that moved since the previous announcement on the connection
/// (1 repeated every origin); pushes carry only the sender's own entries.
pub const PROTOCOL_VERSION: u32 = 2;
/// Most entries in one `Entries` message: bounds a frame (200 × 18.7 KiB < 4 MiB) and the work
/// one message causes (one batch verification, one group commit).
pub const ENTRIES_PER_MESSAGE_MAX: usize = 200;
/// Hard cap on one frame's payload. A peer sending more is disconnected.
pub const FRAME_BYTES_MAX: usize = 4 * 1024 * 1024;
/// Most heads in one version vector: one per roster member.
pub const HEADS_MAX: usize = crate::roster::MEMBERS_MAX;
/// Most entry ids in one `WantBodies` message.
pub const WANT_BODIES_MAX: usize = 256;

const _: () = assert!(ENTRIES_PER_MESSAGE_MAX * ENTRY_BYTES_MAX + 1024 < FRAME_BYTES_MAX);

/// One origin's head in a version vector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireHead {
    pub origin: String,
    pub seq: u64,
    pub hash: [u8; 32],
}

/// A replication message. See `proto/PROTOCOL.md` §7.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// First message on a connection, both ways: protocol version and the sender's version vector.
    Hello { version: u32, heads: Vec<WireHead> },
    /// The sender's version vector changed.
    Heads { heads: Vec<WireHead> },
    /// Asks for entries of `origin` from `from_seq` on, at most `limit`.
    Request { id: u64, origin: String, from_seq: u64, limit: u32 },
    /// Entries, either answering `Request` `reply_to` or pushed unasked (`reply_to` = None).
    Entries { reply_to: Option<u64>, entries: Vec<WireEntry> },
    /// Asks for the full bodies of entries the sender holds only as redacted stubs although it
    /// is in their audience.
    WantBodies { ids: Vec<(String, u64)> },
}

impl Message {
    /// The message's kind, as PROTOCOL.md names it.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Hello { .. } => "Hello",
            Message::Heads { .. } => "Heads",
            Message::Request { .. } => "Request",
            Message::Entries { .. } => "Entries",
            Message::WantBodies { .. } => "WantBodies",
        }
    }

    /// Checks the counts a decoder cannot: every list within its limit.
    pub fn check_limits(&self) -> Result<(), WireError> {
        let too = |what, len, max| Err(WireError::TooLarge { what, len, max });
        match self {
            Message::Hello { heads, .. } | Message::Heads { heads } if heads.len() > HEADS_MAX => {
                too("version vector", heads.len(), HEADS_MAX)
            }
            Message::Entries { entries, .. } if entries.len() > ENTRIES_PER_MESSAGE_MAX => {
                too("entries message", entries.len(), ENTRIES_PER_MESSAGE_MAX)
            }
            Message::Entries { entries, .. } => entries.iter().try_for_each(check_entry_sizes),
            Message::WantBodies { ids } if ids.len() > WANT_BODIES_MAX => {
                too("want-bodies message", ids.len(), WANT_BODIES_MAX)
            }
            _ => Ok(()),
        }
    }
}

/// Encodes a message as one frame: `u32be length ‖ bincode(message)`.
pub fn encode_frame(m: &Message) -> Vec<u8> {
    let body = encode(m);
    debug_assert!(body.len() <= FRAME_BYTES_MAX);
    let mut out = Vec::with_capacity(4 + body.len());
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

/// Reads a frame's length prefix, refusing lengths over `FRAME_BYTES_MAX` before anything is
/// allocated.
pub fn frame_len(prefix: [u8; 4]) -> Result<usize, WireError> {
    let len = u32::from_be_bytes(prefix) as usize;
    if len > FRAME_BYTES_MAX {
        return Err(WireError::TooLarge { what: "frame", len, max: FRAME_BYTES_MAX });
    }
    Ok(len)
}

/// Decodes a frame's payload (without its length prefix) into a message within every limit.
pub fn decode_message(payload: &[u8]) -> Result<Message, WireError> {
    if payload.len() > FRAME_BYTES_MAX {
        return Err(WireError::TooLarge { what: "frame", len: payload.len(), max: FRAME_BYTES_MAX });
    }
    let lim = cfg().with_limit::<{ FRAME_BYTES_MAX }>();
    let (m, read): (Message, usize) = bincode::serde::decode_from_slice(payload, lim)
        .map_err(|e| WireError::Malformed { what: "message", reason: e.to_string() })?;
    if read != payload.len() {
        return Err(WireError::Malformed {
            what: "message",
            reason: format!("{} trailing bytes", payload.len() - read),
        });
    }
    m.check_limits()?;
    Ok(m)
}
