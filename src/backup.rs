//! Backups of a node's store: writing one (from a running node's store or a stopped node's data
//! dir), reading one back within limits, verifying it against the roster, and restoring it
//! through the store's normal verified ingest path. The file format is specified in
//! `proto/PROTOCOL.md` §8; the CLI side is in `backup/console.rs`.
//!
//! Consistency without stopping the node: every origin's log is append-only, so a backup reads
//! the heads first and then each origin's entries from seq 1 up to the head it read. Entries
//! appended meanwhile lie above those heads and are left out; a held entry below a head can
//! change only from a redacted stub to the full entry (or back, when a drill is purged), and
//! both have the same entry hash, so the chains in the file always verify.
//!
//! What a backup holds: every origin's log as this node holds it (full entries, and redacted
//! stubs where this node is outside the audience or purged a drill) and the fork evidence. What
//! it does not hold, because the restore rebuilds it from the entries: the indexes, counts,
//! drill indexes (drill reports are computed from the drill records) and quarantine markers
//! (ingesting the fork evidence quarantines its origin again). Not kept at all: arrival numbers
//! and times (a restore assigns new ones), TAXII status resources and counters (memory only).
//! Keys are never in a backup: the node key, TLS key and API tokens are backed up separately.

pub mod console;

use std::collections::BTreeMap;
use std::io::{self, Read, Write};

use sha2::{Digest, Sha256};

use crate::log::{self, ChainTip, SignedEntry};
use crate::model::{EntryId, NodeName};
use crate::roster::{MEMBERS_MAX, Roster};
use crate::store::{IngestOutcome, Store, StoreError};
use crate::wire::ENTRY_BYTES_MAX;

/// The first bytes of every backup file.
pub const MAGIC: &[u8; 12] = b"ctix-backup\n";
/// The backup file format this build writes and reads (`proto/PROTOCOL.md` §8).
pub const BACKUP_FORMAT_VERSION: u32 = 1;
/// Largest record payload: an entry, or the header (at most `MEMBERS_MAX` heads).
pub const RECORD_BYTES_MAX: usize = ENTRY_BYTES_MAX;
/// Most fork-evidence records read from one backup. A node keeps about one per forked origin
/// (the origin is quarantined at the first), so this is far above any real store.
pub const FORK_RECORDS_MAX: u64 = 65_536;
/// Entries read from the store, verified and ingested per batch: bounds the memory of a backup
/// or restore in progress (a batch is at most 1,000 × 18.7 KiB).
pub const BATCH_ENTRIES: usize = 1_000;

const TAG_HEADER: u8 = 1;
const TAG_ENTRY: u8 = 2;
const TAG_FORK: u8 = 3;
const TAG_END: u8 = 4;
/// Bytes of a header record at most: node name, time, format, count and `MEMBERS_MAX` heads.
const HEADER_BYTES_MAX: usize = 33 + 8 + 4 + 4 + MEMBERS_MAX * (33 + 8 + 32);
const _: () = assert!(HEADER_BYTES_MAX <= RECORD_BYTES_MAX);
const _: () = assert!(BATCH_ENTRIES <= crate::store::BATCH_ENTRIES_MAX);

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// Reading or writing a file or stream failed.
    #[error("{what}: {source}")]
    Io { what: String, source: io::Error },
    /// The input does not start with the backup magic.
    #[error("not a ctix backup: it does not start with the ctix-backup signature (check the file name)")]
    NotABackup,
    /// The file is in a newer backup format.
    #[error(
        "backup format {0} is newer than this build's format {BACKUP_FORMAT_VERSION}: use the ctix version that wrote it, or newer"
    )]
    Version(u32),
    /// A record breaks the format.
    #[error("backup is damaged at byte {offset}: {what} (this file cannot be restored; take a new backup)")]
    Malformed { offset: u64, what: String },
    /// The input ended before the end record.
    #[error(
        "backup ends at byte {0} before its end record: the file is incomplete (the backup was interrupted or the copy cut short); take a new backup"
    )]
    Truncated(u64),
    /// The checksum in the end record does not match the bytes before it.
    #[error("backup checksum does not match: the file was changed or damaged after it was written; take a new backup")]
    Checksum,
    /// An entry does not verify against the roster (signature, signer, body).
    #[error(
        "entry {id} in the backup does not verify against the roster: {reason} (the backup was altered, or the roster is not this federation's)"
    )]
    Entry { id: EntryId, reason: String },
    /// An entry does not extend its predecessor in the file.
    #[error("entry {id} in the backup does not chain to the entry before it: {reason} (the backup was altered)")]
    Chain { id: EntryId, reason: String },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The restore was refused before anything was written.
    #[error("{0}")]
    Refused(String),
}

/// What a backup's header says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The node whose store this is.
    pub node: NodeName,
    /// When the backup began, ms since the epoch.
    pub created_ms: u64,
    /// The store format of the node that wrote it (informational).
    pub store_format: u32,
    /// Every origin's head when the backup began: the file holds each log from seq 1 to here.
    pub heads: BTreeMap<NodeName, ChainTip>,
}

impl Header {
    /// Entries the file holds.
    pub fn entries(&self) -> u64 {
        self.heads.values().map(|t| t.seq).sum()
    }
}

/// What was written, verified or restored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub header: Header,
    pub entries: u64,
    pub forks: u64,
    pub bytes: u64,
    /// The SHA-256 checksum in the end record.
    pub checksum: [u8; 32],
    /// Restore only: entries the store already held, and fork evidence newly found (a restore
    /// into a store that held a conflicting log with `--force`).
    pub duplicates: u64,
    pub conflicts: u64,
}

/// Writes a backup of `store` to `out`: the log of every origin up to `heads` (read them from
/// the store first: `Store::heads`), then the fork evidence, then the checksum. `progress` is
/// called with the entries written so far.
pub fn write(
    store: &Store,
    node: &NodeName,
    heads: BTreeMap<NodeName, ChainTip>,
    out: &mut dyn Write,
    progress: &mut dyn FnMut(u64),
) -> Result<Summary, BackupError> {
    let header = Header {
        node: node.clone(),
        created_ms: crate::now_ms(),
        store_format: store.format_version()?,
        heads: heads.clone(),
    };
    let mut w = HashingWriter { out, hasher: Sha256::new(), bytes: 0 };
    w.put(MAGIC)?;
    w.put(&BACKUP_FORMAT_VERSION.to_be_bytes())?;
    w.record(TAG_HEADER, &encode_header(&header))?;
    let mut entries = 0u64;
    for (origin, head) in &heads {
        let mut from = 1u64;
        let mut last: Option<ChainTip> = None;
        while from <= head.seq {
            let want = usize::try_from(head.seq - from + 1).unwrap_or(usize::MAX).min(BATCH_ENTRIES);
            let chunk = store.range(origin, from, want)?;
            if chunk.is_empty() {
                return Err(StoreError::Corrupt {
                    dir: store.dir().display().to_string(),
                    what: format!("{origin}: entries missing from seq {from} (head {})", head.seq),
                }
                .into());
            }
            for v in chunk {
                w.record(TAG_ENTRY, &v.entry().encode())?;
                last = Some(v.tip());
                entries += 1;
            }
            from = last.map_or(from, |t| t.seq + 1);
            progress(entries);
        }
        // Assert before finishing: the file ends each log exactly at the head read first.
        if last != Some(*head) {
            return Err(StoreError::Corrupt {
                dir: store.dir().display().to_string(),
                what: format!("{origin}: the log read back ends at {last:?}, not at the head {head:?}"),
            }
            .into());
        }
    }
    let mut forks = 0u64;
    for f in store.forks()? {
        w.record(TAG_FORK, &f.entry.encode())?;
        forks += 1;
    }
    let checksum: [u8; 32] = w.hasher.clone().finalize().into();
    let mut end = Vec::with_capacity(48);
    end.extend_from_slice(&entries.to_be_bytes());
    end.extend_from_slice(&forks.to_be_bytes());
    end.extend_from_slice(&checksum);
    w.record(TAG_END, &end)?;
    w.out.flush().map_err(|source| BackupError::Io { what: "writing the backup".into(), source })?;
    Ok(Summary { header, entries, forks, bytes: w.bytes, checksum, duplicates: 0, conflicts: 0 })
}

/// Reads a backup completely and checks it: the format, each log from seq 1 up to its head in
/// the header, the checksum, and nothing after the end. With a roster it also verifies every
/// signature and chain link (as replication would) and authenticates the fork evidence.
/// `progress` gets (entries read, entries in the file).
pub fn verify(
    input: &mut dyn Read,
    roster: Option<&Roster>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Summary, BackupError> {
    let mut r = Reader::new(input)?;
    let total = r.header.entries();
    let mut tips: BTreeMap<NodeName, ChainTip> = BTreeMap::new();
    let mut batch = Vec::with_capacity(BATCH_ENTRIES);
    let mut forks = Vec::new();
    loop {
        let item = r.next()?;
        let done = item.is_none();
        match item {
            Some(Item::Entry(e)) => batch.push(e),
            Some(Item::Fork(e)) => forks.push(e),
            None => {}
        }
        if batch.len() >= BATCH_ENTRIES || (done && !batch.is_empty()) {
            if let Some(roster) = roster {
                check_chains(roster, std::mem::take(&mut batch), &mut tips)?;
            }
            batch.clear();
            progress(r.entries, total);
        }
        if forks.len() >= BATCH_ENTRIES || (done && !forks.is_empty()) {
            if let Some(roster) = roster {
                for e in std::mem::take(&mut forks) {
                    let id = e.id();
                    log::authenticate(roster, e).map_err(|err| BackupError::Entry { id, reason: err.to_string() })?;
                }
            }
            forks.clear();
        }
        if done {
            break;
        }
    }
    Ok(r.summary())
}

/// Restores a backup into `store` through the normal verified path: every entry is
/// authenticated against the roster and ingested (chained, indexed, made durable) as if a peer
/// had sent it; then the fork evidence, which quarantines its origins again. Verify the file
/// first (`verify`): this refuses a bad entry when it reaches it, after the ones before it are
/// stored. `progress` gets (entries restored, entries in the file).
pub fn restore(
    input: &mut dyn Read,
    store: &Store,
    roster: &Roster,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Summary, BackupError> {
    let mut r = Reader::new(input)?;
    let total = r.header.entries();
    let mut batch = Vec::with_capacity(BATCH_ENTRIES);
    let mut forks = Vec::new();
    let (mut duplicates, mut conflicts) = (0u64, 0u64);
    loop {
        let item = r.next()?;
        let done = item.is_none();
        match item {
            Some(Item::Entry(e)) => batch.push(e),
            Some(Item::Fork(e)) => forks.push(e),
            None => {}
        }
        let fork_phase = done || !forks.is_empty();
        if batch.len() >= BATCH_ENTRIES || (fork_phase && !batch.is_empty()) {
            let (d, c) = ingest(store, roster, std::mem::take(&mut batch), false)?;
            duplicates += d;
            conflicts += c;
            progress(r.entries, total);
        }
        if forks.len() >= BATCH_ENTRIES || (done && !forks.is_empty()) {
            ingest(store, roster, std::mem::take(&mut forks), true)?;
        }
        if done {
            break;
        }
    }
    let mut s = r.summary();
    s.duplicates = duplicates;
    s.conflicts = conflicts;
    Ok(s)
}

/// Authenticates and ingests one batch. Returns (duplicates, conflicts found). `evidence`: the
/// entries are fork evidence, expected to conflict with what is held.
fn ingest(store: &Store, roster: &Roster, batch: Vec<SignedEntry>, evidence: bool) -> Result<(u64, u64), BackupError> {
    let ids: Vec<EntryId> = batch.iter().map(SignedEntry::id).collect();
    let mut authentic = Vec::with_capacity(batch.len());
    for (id, r) in ids.iter().zip(log::authenticate_batch(roster, batch)) {
        authentic.push(r.map_err(|e| BackupError::Entry { id: id.clone(), reason: e.to_string() })?);
    }
    let (mut duplicates, mut conflicts) = (0, 0);
    for (id, outcome) in ids.into_iter().zip(store.ingest(authentic)?) {
        match outcome {
            IngestOutcome::Stored(_) | IngestOutcome::Upgraded(_) => {}
            IngestOutcome::Duplicate => duplicates += 1,
            IngestOutcome::Forked | IngestOutcome::Quarantined if evidence => {}
            IngestOutcome::Forked => conflicts += 1,
            // Entries of an origin quarantined by earlier evidence are not stored, as in sync.
            IngestOutcome::Quarantined => {}
            IngestOutcome::Gap { have, .. } => {
                return Err(BackupError::Chain {
                    id,
                    reason: format!("the store holds this origin only up to seq {have}"),
                });
            }
            IngestOutcome::BadGenesis => {
                return Err(BackupError::Chain { id, reason: "a first entry must have an all-zero prev_hash".into() });
            }
        }
    }
    Ok((duplicates, conflicts))
}

/// Authenticates a batch of consecutive file entries and links each to its predecessor.
fn check_chains(
    roster: &Roster,
    batch: Vec<SignedEntry>,
    tips: &mut BTreeMap<NodeName, ChainTip>,
) -> Result<(), BackupError> {
    let ids: Vec<EntryId> = batch.iter().map(SignedEntry::id).collect();
    for (id, r) in ids.into_iter().zip(log::authenticate_batch(roster, batch)) {
        let a = r.map_err(|e| BackupError::Entry { id: id.clone(), reason: e.to_string() })?;
        let origin = a.header().origin.clone();
        let v = a.link(tips.get(&origin)).map_err(|(_, e)| BackupError::Chain { id, reason: e.to_string() })?;
        tips.insert(origin, v.tip());
    }
    Ok(())
}

/// One record of a backup after the header.
enum Item {
    Entry(SignedEntry),
    Fork(SignedEntry),
}

/// Reads a backup record by record, within `RECORD_BYTES_MAX`, checking the order of the logs
/// against the header and the checksum at the end.
struct Reader<'a> {
    input: &'a mut dyn Read,
    hasher: Sha256,
    offset: u64,
    header: Header,
    /// Origins still to come, in order, and the one being read with the last seq seen.
    pending: std::vec::IntoIter<(NodeName, ChainTip)>,
    current: Option<(NodeName, ChainTip, u64, crate::model::Hash)>,
    entries: u64,
    forks: u64,
    checksum: [u8; 32],
    ended: bool,
}

impl<'a> Reader<'a> {
    fn new(input: &'a mut dyn Read) -> Result<Reader<'a>, BackupError> {
        let mut magic = [0u8; 12];
        match read_full(input, &mut magic) {
            Ok(12) if &magic == MAGIC => {}
            Ok(_) => return Err(BackupError::NotABackup),
            Err(source) => return Err(BackupError::Io { what: "reading the backup".into(), source }),
        }
        let mut hasher = Sha256::new();
        hasher.update(magic);
        let mut v = [0u8; 4];
        if read_full(input, &mut v).map_err(|source| BackupError::Io { what: "reading the backup".into(), source })? < 4
        {
            return Err(BackupError::Truncated(12));
        }
        hasher.update(v);
        let version = u32::from_be_bytes(v);
        if version != BACKUP_FORMAT_VERSION {
            return Err(if version > BACKUP_FORMAT_VERSION {
                BackupError::Version(version)
            } else {
                BackupError::Malformed { offset: 12, what: format!("format version {version}") }
            });
        }
        let placeholder =
            Header { node: NodeName::new("x").expect("valid"), created_ms: 0, store_format: 0, heads: BTreeMap::new() };
        let mut r = Reader {
            input,
            hasher,
            offset: 16,
            header: placeholder,
            pending: Vec::new().into_iter(),
            current: None,
            entries: 0,
            forks: 0,
            checksum: [0; 32],
            ended: false,
        };
        let at = r.offset;
        let (tag, payload) = r.record()?;
        if tag != TAG_HEADER {
            return Err(BackupError::Malformed { offset: at, what: "the first record is not the header".into() });
        }
        r.header = decode_header(&payload).map_err(|what| BackupError::Malformed { offset: at, what })?;
        r.pending = r.header.heads.iter().map(|(o, t)| (o.clone(), *t)).collect::<Vec<_>>().into_iter();
        Ok(r)
    }

    /// The next entry or fork record; `None` after the end record (checksum checked, nothing
    /// after it).
    fn next(&mut self) -> Result<Option<Item>, BackupError> {
        if self.ended {
            return Ok(None);
        }
        let at = self.offset;
        let before = self.hasher.clone();
        let (tag, payload) = self.record()?;
        let bad = |what: String| BackupError::Malformed { offset: at, what };
        match tag {
            TAG_ENTRY => {
                if self.forks > 0 {
                    return Err(bad("an entry after the fork evidence".into()));
                }
                let e = SignedEntry::decode(&payload).map_err(|e| bad(format!("entry record: {e}")))?;
                self.expect_next(&e).map_err(bad)?;
                self.entries += 1;
                Ok(Some(Item::Entry(e)))
            }
            TAG_FORK => {
                self.finish_logs().map_err(bad)?;
                self.forks += 1;
                if self.forks > FORK_RECORDS_MAX {
                    return Err(bad(format!("more than {FORK_RECORDS_MAX} fork records")));
                }
                let e = SignedEntry::decode(&payload).map_err(|e| bad(format!("fork record: {e}")))?;
                Ok(Some(Item::Fork(e)))
            }
            TAG_END => {
                self.finish_logs().map_err(bad)?;
                if payload.len() != 48 {
                    return Err(bad("end record of the wrong size".into()));
                }
                let entries = u64::from_be_bytes(payload[0..8].try_into().expect("8 bytes"));
                let forks = u64::from_be_bytes(payload[8..16].try_into().expect("8 bytes"));
                let sum: [u8; 32] = before.finalize().into();
                if payload[16..48] != sum {
                    return Err(BackupError::Checksum);
                }
                if entries != self.entries || forks != self.forks {
                    return Err(bad(format!(
                        "the end record counts {entries} entries and {forks} fork records, the file holds {} and {}",
                        self.entries, self.forks
                    )));
                }
                let mut extra = [0u8; 1];
                if read_full(self.input, &mut extra)
                    .map_err(|source| BackupError::Io { what: "reading the backup".into(), source })?
                    != 0
                {
                    return Err(BackupError::Malformed {
                        offset: self.offset,
                        what: "bytes after the end record".into(),
                    });
                }
                self.checksum = sum;
                self.ended = true;
                Ok(None)
            }
            other => Err(bad(format!("unknown record type {other}"))),
        }
    }

    /// Checks that `e` is the next entry the header promises: origins in order, each from seq 1
    /// up to its head, the last one with the head's hash.
    fn expect_next(&mut self, e: &SignedEntry) -> Result<(), String> {
        let o = &e.header.origin;
        let continues = matches!(&self.current, Some((c, _, _, _)) if c == o);
        if !continues {
            self.finish_current()?;
            match self.pending.next() {
                Some((next, head)) if next == *o => self.current = Some((next, head, 0, [0; 32])),
                Some((next, _)) => return Err(format!("entry {} where the log of {next} should begin", e.id())),
                None => return Err(format!("entry {} of an origin the header does not list", e.id())),
            }
        }
        let (_, head, last, hash) = self.current.as_mut().expect("set above");
        if e.header.seq != *last + 1 || e.header.seq > head.seq {
            return Err(format!("entry {} out of order (expected seq {} of at most {})", e.id(), *last + 1, head.seq));
        }
        *last = e.header.seq;
        *hash = e.hash();
        Ok(())
    }

    fn finish_current(&mut self) -> Result<(), String> {
        if let Some((o, head, last, hash)) = self.current.take()
            && (last != head.seq || hash != head.hash)
        {
            return Err(format!("the log of {o} ends at seq {last}, the header says {} (with another hash)", head.seq));
        }
        Ok(())
    }

    fn finish_logs(&mut self) -> Result<(), String> {
        self.finish_current()?;
        if let Some((o, _)) = self.pending.next() {
            return Err(format!("the log of {o} is missing"));
        }
        Ok(())
    }

    /// One `tag ‖ u32be len ‖ payload` record, hashed.
    fn record(&mut self) -> Result<(u8, Vec<u8>), BackupError> {
        let io_err = |source| BackupError::Io { what: "reading the backup".into(), source };
        let mut head = [0u8; 5];
        if read_full(self.input, &mut head).map_err(io_err)? < 5 {
            return Err(BackupError::Truncated(self.offset));
        }
        let len = u32::from_be_bytes(head[1..5].try_into().expect("4 bytes")) as usize;
        if len > RECORD_BYTES_MAX {
            return Err(BackupError::Malformed {
                offset: self.offset,
                what: format!("a record of {len} bytes, over the limit of {RECORD_BYTES_MAX}"),
            });
        }
        let mut payload = vec![0u8; len];
        if read_full(self.input, &mut payload).map_err(io_err)? < len {
            return Err(BackupError::Truncated(self.offset));
        }
        self.hasher.update(head);
        self.hasher.update(&payload);
        self.offset += 5 + len as u64;
        Ok((head[0], payload))
    }

    fn summary(&self) -> Summary {
        Summary {
            header: self.header.clone(),
            entries: self.entries,
            forks: self.forks,
            bytes: self.offset,
            checksum: self.checksum,
            duplicates: 0,
            conflicts: 0,
        }
    }
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
fn read_full(input: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match input.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Hashes and counts everything written.
struct HashingWriter<'a> {
    out: &'a mut dyn Write,
    hasher: Sha256,
    bytes: u64,
}

impl HashingWriter<'_> {
    fn put(&mut self, b: &[u8]) -> Result<(), BackupError> {
        self.out.write_all(b).map_err(|source| BackupError::Io { what: "writing the backup".into(), source })?;
        self.hasher.update(b);
        self.bytes += b.len() as u64;
        Ok(())
    }

    fn record(&mut self, tag: u8, payload: &[u8]) -> Result<(), BackupError> {
        debug_assert!(payload.len() <= RECORD_BYTES_MAX);
        self.put(&[tag])?;
        self.put(&(payload.len() as u32).to_be_bytes())?;
        self.put(payload)
    }
}

fn put_name(out: &mut Vec<u8>, n: &NodeName) {
    out.push(n.as_str().len() as u8);
    out.extend_from_slice(n.as_str().as_bytes());
}

fn encode_header(h: &Header) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + h.heads.len() * 73);
    put_name(&mut out, &h.node);
    out.extend_from_slice(&h.created_ms.to_be_bytes());
    out.extend_from_slice(&h.store_format.to_be_bytes());
    out.extend_from_slice(&(h.heads.len() as u32).to_be_bytes());
    for (o, t) in &h.heads {
        put_name(&mut out, o);
        out.extend_from_slice(&t.seq.to_be_bytes());
        out.extend_from_slice(&t.hash);
    }
    out
}

fn decode_header(b: &[u8]) -> Result<Header, String> {
    let mut c = Cursor(b);
    let node = c.name()?;
    let created_ms = c.u64()?;
    let store_format = c.u32()?;
    let n = c.u32()? as usize;
    if n > MEMBERS_MAX {
        return Err(format!("the header lists {n} origins, over the limit of {MEMBERS_MAX}"));
    }
    let mut heads = BTreeMap::new();
    for _ in 0..n {
        let o = c.name()?;
        let seq = c.u64()?;
        let hash: [u8; 32] = c.take(32)?.try_into().expect("32 bytes");
        if seq == 0 {
            return Err(format!("the head of {o} is seq 0"));
        }
        if let Some((last, _)) = heads.last_key_value()
            && *last >= o
        {
            return Err("the header's origins are not in ascending order".into());
        }
        heads.insert(o, ChainTip { seq, hash });
    }
    if !c.0.is_empty() {
        return Err(format!("{} trailing bytes in the header", c.0.len()));
    }
    Ok(Header { node, created_ms, store_format, heads })
}

struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        if self.0.len() < n {
            return Err("the header is cut short".into());
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_be_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_be_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }
    fn name(&mut self) -> Result<NodeName, String> {
        let len = self.take(1)?[0] as usize;
        let s = std::str::from_utf8(self.take(len)?).map_err(|_| "a node name that is not UTF-8".to_string())?;
        NodeName::new(s).map_err(|e| format!("node name {s:?}: {e}"))
    }
}
