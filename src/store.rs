//! The store: the only owner of sled. Holds every origin's verified log, the indexes over it, and
//! fork evidence.
//!
//! All data lives in one versioned tree, `log-1`, so that an entry and its index rows are written
//! by one atomic sled batch. A write is reported durable only after `Db::flush` and an fsync of
//! sled's data file: sled 0.34 flushes with `sync_file_range`, which does not survive a power cut
//! (sled issue #1452). One flush and one fsync cover a whole batch (group commit).
//!
//! Keys (`name` = one length byte, then the node name; integers big-endian):
//! - `E name seq` → the entry's arrival number (u64, 0 for drill records, which have none),
//!   then the encoded entry (`wire::WireEntry`)
//! - `R name target_seq` → seq of the retraction that revoked `name:target_seq`
//! - `S name seq sighter_name sighter_seq` → sighting count (u32)
//! - `F name seq hash` → encoded entry: fork evidence, never overwritten
//! - `A arrival` → `name seq added_us`: every entry in the order this node stored it (stable
//!   query and export cursors), with the time it was added here in µs since the epoch, strictly
//!   increasing with the arrival number (TAXII's `date_added`); the `E` row holds its reverse
//! - `H block` → lookup hints for the arrivals `block * HINT_BLOCK_SLOTS ..` (one slot of
//!   `HINT_SLOT_BYTES` per arrival: the first 8 bytes of an indicator's content id, then the
//!   first 8 of the UUID of an indicator's or sighting's STIX id (`interop::entry_uuid`); zeros
//!   where there is none). Queries by exact value and TAXII's object lookups scan these and
//!   confirm each hit against the entry. They replace the per-entry `C` and `X` index rows of
//!   format 2: those random keys cost about two thirds of a group commit's sled time (see
//!   BENCHMARKS.md), while a few hint rows per commit, written where arrivals are written, cost
//!   next to nothing. A lookup reads `arrivals / HINT_BLOCK_SLOTS` rows (about 8,000 at 1,000,000
//!   entries): fine for the one-at-a-time lookups of an analyst or a TAXII client.
//! - `K name kind` → u64: number of entries per origin and kind
//! - `W name seq` → empty: redacted stubs of audience-restricted entries (bodies someone may want)
//! - `Q name` → seq at which the origin was found forked (quarantine marker)
//! - `Mformat` → store format version (u32); `Mown-head-unconfirmed`, `Mrestore-incomplete` →
//!   empty: store-wide markers (`store/format.rs`, which also upgrades older formats)

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard};

use ed25519_dalek::SigningKey;

use crate::crypto::EntryHeader;
use crate::log::{self, AuthenticEntry, ChainError, ChainTip, SignedEntry, VerifiedEntry, VerifyError};
use crate::model::{Audience, Body, EntryId, EntryKind, Hash, IndicatorType, ModelError, NodeName, Tlp};
use crate::roster::Roster;
use crate::wire::{self, WireEntry};

mod format;
pub use format::UPGRADE_BATCH_ROWS;

/// Name of the tree holding logs and indexes. The suffix is the store format version.
pub const TREE_LOG: &str = "log-1";
/// The on-disk format this build writes; older formats are upgraded in place at open
/// (`store/format.rs` has the history).
pub const FORMAT_VERSION: u32 = 3;
/// Most entries appended or ingested in one group commit: bounds the memory of one sled batch
/// and the latency every request in the group waits for.
pub const BATCH_ENTRIES_MAX: usize = 10_000;
/// Most entries returned by one range read (one sync response is smaller still).
pub const RANGE_ENTRIES_MAX: usize = 10_000;
/// Arrivals per `H` row (see module docs): a lookup reads one row per this many arrivals, and a
/// commit of one entry rewrites up to this many slots.
pub const HINT_BLOCK_SLOTS: u64 = 128;
/// Bytes of one arrival's slot in an `H` row: 8 of the content id, 8 of the STIX id's UUID.
pub const HINT_SLOT_BYTES: usize = 16;
/// Entries per sled batch when an append signs and writes in a pipeline (`sign_and_write`):
/// small enough that signing the next chunk and writing this one take turns often, large
/// enough that a chunk's batch overhead is small.
pub const PIPELINE_ENTRIES: usize = 128;
/// Default sled page cache (`[store] cache_mib`). sled's own default (1 GiB) is far more than a
/// node needs. sled counts a page's serialized size, and in memory a page takes up to about twice
/// that: at 1,000,000 entries, 64 MiB made a peak RSS of 229–235 MiB while ingesting, 32 MiB
/// 193–196 MiB, with REST ingest and catch-up within the noise of each other (BENCHMARKS.md).
pub const CACHE_BYTES_DEFAULT: u64 = 32 * 1024 * 1024;
/// How long `open` waits for the data dir's lock. sled releases its file lock from a
/// background flusher thread, so a store closed a moment ago in this process (a node restarted
/// in place, a test reopening its store) can still hold it briefly; another live process holds
/// it for good, and after this wait `open` reports [`StoreError::Locked`].
pub const LOCK_WAIT_MAX: std::time::Duration = std::time::Duration::from_secs(3);
/// Pause between attempts to take the lock.
const LOCK_RETRY_INTERVAL: std::time::Duration = std::time::Duration::from_millis(25);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// sled reported an error.
    #[error("store error in {dir}: {source} (check disk space and permissions of the data dir)")]
    Sled { dir: String, source: sled::Error },
    /// Another store handle holds the data dir's lock.
    #[error(
        "store in {dir} is in use: another ctix process (or a node still shutting down) holds its lock; \
         stop the other node using this data dir, or give this one its own data_dir"
    )]
    Locked { dir: String },
    /// Reading or syncing a file failed.
    #[error("store io error on {path}: {source}")]
    Io { path: String, source: std::io::Error },
    /// The data dir holds a format newer than this build's.
    #[error(
        "store in {dir} has format {found}, written by a newer ctix; this build reads formats up to {FORMAT_VERSION}: \
         run the newer ctix on it (a store is never downgraded), or restore a backup into an empty data dir"
    )]
    Format { dir: String, found: u32 },
    /// A restore into this data dir began and did not finish: it holds part of a backup.
    #[error("store in {dir} holds an unfinished restore: run `ctix restore FILE --force` again, or empty the data dir")]
    RestoreIncomplete { dir: String },
    /// A record read back does not decode or does not match its key: the data dir is damaged.
    #[error("store in {dir} is corrupt: {what} (restore from a backup or let peers re-send)")]
    Corrupt { dir: String, what: String },
    /// A batch exceeded `BATCH_ENTRIES_MAX`.
    #[error("batch of {0} entries is over the limit of {BATCH_ENTRIES_MAX}: split it")]
    BatchTooLarge(usize),
    /// An earlier write was applied but could not be made durable; the in-memory state may be
    /// behind the disk, so writing on could re-use sequence numbers (and fork our own log).
    #[error("store in {dir} refuses writes after a failed commit: {reason} (fix the disk, then restart the node)")]
    Failed { dir: String, reason: String },
    /// This node's own log has fork evidence; appending would make it worse.
    #[error("own origin {0} is quarantined for a fork: appending is refused until an operator resolves it")]
    OwnQuarantined(NodeName),
}

/// How hard a group commit pushes data to disk before it is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// sled flush, then fsync of sled's data file: survives kill -9 and power loss.
    Fsync,
    /// sled flush only (`sync_file_range`): survives kill -9, not a power cut. For benchmarks
    /// that measure what the fsync costs.
    FlushOnly,
}

#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub durability: Durability,
    /// sled page cache size in bytes.
    pub cache_bytes: u64,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions { durability: Durability::Fsync, cache_bytes: CACHE_BYTES_DEFAULT }
    }
}

/// Why one of our own appends was refused. Nothing of a refused item is written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppendError {
    /// The body breaks a model rule.
    #[error(transparent)]
    Invalid(#[from] ModelError),
    /// A retraction or sighting names an entry this node does not hold as an indicator.
    #[error("{0}")]
    Target(String),
}

/// What happened to one ingested entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestOutcome {
    /// New, chained and durable. Relay it.
    Stored(VerifiedEntry),
    /// We held a redacted stub of this entry; now we hold its body too.
    Upgraded(VerifiedEntry),
    /// Already held, identical.
    Duplicate,
    /// Not stored: its predecessors are missing. `have` is our head seq for the origin, `got`
    /// the (authentic) entry's position: whoever sent it holds the origin's log that far.
    Gap { have: u64, got: ChainTip },
    /// Contradicts what we hold: kept as evidence, the origin is now quarantined.
    Forked,
    /// The origin is quarantined for an earlier fork; nothing of it is accepted.
    Quarantined,
    /// A seq-1 entry with a non-zero `prev_hash`: invalid, dropped.
    BadGenesis,
}

/// A proof that an origin signed two different entries for one position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForkEvidence {
    pub origin: NodeName,
    pub seq: u64,
    /// The conflicting entry we did not accept.
    pub entry: SignedEntry,
}

/// The current state of an indicator entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndicatorState {
    pub entry: VerifiedEntry,
    /// The retraction entry that revoked it, if any.
    pub retracted_by: Option<EntryId>,
    /// When the retraction was signed, and its reason (empty if its body is not held here).
    pub retraction: Option<(u64, String)>,
    /// Sightings reported, in the order of the sighting entries' ids.
    pub sightings: Vec<SightingInfo>,
}

/// One sighting report of an indicator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SightingInfo {
    /// The sighting entry.
    pub id: EntryId,
    pub count: u32,
    /// When its origin signed it.
    pub created_ms: u64,
    /// First and last seen, as reported (the signing time if the body is not held here).
    pub first_seen_ms: u64,
    pub last_seen_ms: u64,
}

/// Most records `drill_records` returns (a drill of 256 waves of 10,000 indicators is
/// bigger; reports then cover the first records only).
pub const DRILL_RECORDS_MAX: usize = 1_000_000;

/// Most results in one query page.
pub const QUERY_LIMIT_MAX: usize = 1000;
/// Most arrival rows one query page examines; a page may end early (with a cursor) so that a
/// filter matching little cannot make one request scan the whole store.
pub const QUERY_SCAN_MAX: usize = 100_000;

/// Filters for `Store::query`; each `None` matches everything. Only indicators whose body this
/// node holds are ever returned (never redacted stubs).
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub itype: Option<IndicatorType>,
    /// A normalised value (normalise with the type first).
    pub value: Option<String>,
    pub origin: Option<NodeName>,
    /// Lower-case tag.
    pub tag: Option<String>,
    pub tlp: Option<Tlp>,
    /// Range of the entries' `created_ms`, inclusive.
    pub created_from_ms: Option<u64>,
    pub created_to_ms: Option<u64>,
    /// `Some(false)`: only live indicators; `Some(true)`: only retracted ones.
    pub retracted: Option<bool>,
    /// Leave out TLP:AMBER+STRICT (for tokens of constituents, who may not receive it).
    pub hide_amber_strict: bool,
    /// Cursor: return only entries that arrived after this arrival number (0 = from the start).
    pub after: u64,
    /// Page size, capped at `QUERY_LIMIT_MAX`.
    pub limit: usize,
}

/// One entry in this node's arrival order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arrival {
    /// Its arrival number: the cursor to continue after it.
    pub arrival: u64,
    /// When it was added here, µs since the epoch; strictly increasing with `arrival`.
    pub added_us: u64,
    pub id: EntryId,
}

/// One page of query results.
#[derive(Debug, Clone)]
pub struct QueryPage {
    /// Each result with its arrival number (the cursor to continue after it).
    pub items: Vec<(u64, IndicatorState)>,
    /// Pass as `after` for the next page; `None` when the scan reached the end.
    pub next: Option<u64>,
}

struct State {
    heads: BTreeMap<NodeName, ChainTip>,
    quarantined: BTreeSet<NodeName>,
    /// Next arrival number to assign.
    next_arrival: u64,
    /// The `added_us` of the last arrival: the next is later, whatever the clock says.
    added_us: u64,
    /// Entries per (origin, kind byte).
    counts: BTreeMap<(NodeName, u8), u64>,
}

impl State {
    fn pending(&self) -> Pending {
        Pending {
            arrival: self.next_arrival,
            added_us: self.added_us,
            clock_us: now_us(),
            counts: self.counts.clone(),
            ..Pending::default()
        }
    }

    fn commit(&mut self, p: Pending) {
        self.next_arrival = p.arrival;
        self.added_us = p.added_us;
        self.counts = p.counts;
    }
}

/// The node's durable store.
pub struct Store {
    db: sled::Db,
    log: sled::Tree,
    dir: PathBuf,
    /// sled's data file, fsynced after every flush (see module docs).
    data_file: File,
    durability: Durability,
    state: Mutex<State>,
    /// Signalled whenever heads move (after the commit that made them durable).
    heads_moved: Condvar,
    /// Set when a commit failed after its batch was applied; all later writes are refused.
    failed: Mutex<Option<String>>,
}

/// True when sled failed only because another handle holds the data dir's lock (sled 0.34
/// reports it as an `Io` error of kind `Other` whose text starts like this).
fn is_lock_error(e: &sled::Error) -> bool {
    matches!(e, sled::Error::Io(io) if io.to_string().starts_with("could not acquire lock"))
}

/// A sled row: key and value.
type Row = (sled::IVec, sled::IVec);

/// Opens sled at `dir`, waiting up to [`LOCK_WAIT_MAX`] for a lock that a just-closed handle
/// has not released yet.
///
/// sled's other knobs are left at their defaults, on purpose: `Mode` (`LowSpace` is already the
/// default and sled 0.34.7 reads the setting nowhere), `segment_size` and `use_compression` are
/// written into the store's `conf` file and sled refuses to open a store with other values, so
/// changing them is a store format change (with an export and import), not a tuning; and
/// `flush_every_ms` does not bound what a write costs here, since every commit flushes itself.
fn open_sled(dir: &Path, cache_bytes: u64) -> Result<sled::Db, StoreError> {
    let d = || dir.display().to_string();
    let deadline = std::time::Instant::now() + LOCK_WAIT_MAX;
    loop {
        match sled::Config::new().path(dir).cache_capacity(cache_bytes).open() {
            Ok(db) => return Ok(db),
            Err(e) if is_lock_error(&e) => {
                if std::time::Instant::now() >= deadline {
                    return Err(StoreError::Locked { dir: d() });
                }
                std::thread::sleep(LOCK_RETRY_INTERVAL);
            }
            Err(source) => return Err(StoreError::Sled { dir: d(), source }),
        }
    }
}

impl Store {
    /// Opens or creates the store in `dir` (upgrading an older format in place), and reads the
    /// heads of every origin. A store holding an unfinished restore is refused.
    pub fn open(dir: &Path, opts: &StoreOptions) -> Result<Store, StoreError> {
        Store::open_with(dir, opts, false)
    }

    /// Opens the store for `ctix restore`, which may finish a restore that was interrupted.
    pub fn open_for_restore(dir: &Path) -> Result<Store, StoreError> {
        Store::open_with(dir, &StoreOptions::default(), true)
    }

    fn open_with(dir: &Path, opts: &StoreOptions, restoring: bool) -> Result<Store, StoreError> {
        let d = dir.display().to_string();
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Io { path: d.clone(), source })?;
        let started = std::time::Instant::now();
        let db = open_sled(dir, opts.cache_bytes)?;
        let sled_open = started.elapsed();
        let sled_err = |source| StoreError::Sled { dir: d.clone(), source };
        let log = db.open_tree(TREE_LOG).map_err(sled_err)?;
        let data_path = dir.join("db");
        let data_file = File::open(&data_path)
            .map_err(|source| StoreError::Io { path: data_path.display().to_string(), source })?;
        let store = Store {
            db,
            log,
            dir: dir.to_owned(),
            data_file,
            durability: opts.durability,
            failed: Mutex::new(None),
            heads_moved: Condvar::new(),
            state: Mutex::new(State {
                heads: BTreeMap::new(),
                quarantined: BTreeSet::new(),
                next_arrival: 1,
                added_us: 0,
                counts: BTreeMap::new(),
            }),
        };
        store.check_format()?;
        if !restoring && store.restore_incomplete()? {
            return Err(StoreError::RestoreIncomplete { dir: d });
        }
        store.commit()?;
        // Make the files' directory entries durable too.
        if let Ok(f) = File::open(dir) {
            let _ = f.sync_all();
        }
        let checked = started.elapsed();
        let heads = store.scan_heads()?;
        let scanned_heads = started.elapsed();
        let quarantined = store.scan_quarantined()?;
        let (next_arrival, added_us) = store.scan_next_arrival()?;
        let scanned_arrival = started.elapsed();
        let counts = store.scan_counts()?;
        let scanned = started.elapsed();
        // Start-up time is one of the footprint figures (`BENCHMARKS.md`): this says where it goes.
        tracing::debug!(
            dir = %d,
            sled_open_ms = sled_open.as_millis() as u64,
            format_and_commit_ms = (checked - sled_open).as_millis() as u64,
            scan_heads_ms = (scanned_heads - checked).as_millis() as u64,
            scan_arrival_ms = (scanned_arrival - scanned_heads).as_millis() as u64,
            scan_counts_ms = (scanned - scanned_arrival).as_millis() as u64,
            "store opened"
        );
        *store.lock() = State { heads, quarantined, next_arrival, added_us, counts };
        Ok(store)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The version vector: every origin's head as held here.
    pub fn heads(&self) -> BTreeMap<NodeName, ChainTip> {
        self.lock().heads.clone()
    }

    pub fn head(&self, origin: &NodeName) -> Option<ChainTip> {
        self.lock().heads.get(origin).copied()
    }

    /// Blocks until `origin`'s durable head is above `seq` or `timeout` passes; returns the head
    /// then (which is at or below `seq` on a timeout). For observers that must see each
    /// commit as it happens without polling (the propagation benchmark).
    pub fn wait_for_head(&self, origin: &NodeName, seq: u64, timeout: std::time::Duration) -> Option<ChainTip> {
        let above = |st: &mut State| st.heads.get(origin).is_some_and(|t| t.seq > seq);
        let (st, _) = self
            .heads_moved
            .wait_timeout_while(self.lock(), timeout, |st| !above(st))
            .unwrap_or_else(|p| p.into_inner());
        st.heads.get(origin).copied()
    }

    /// Origins quarantined for a fork.
    pub fn quarantined(&self) -> BTreeSet<NodeName> {
        self.lock().quarantined.clone()
    }

    /// Appends our own entries: validates, signs, writes in one batch, and returns only after the
    /// batch is durable. One result per body, in order; refused items take no seq.
    pub fn append_local(
        &self,
        key: &SigningKey,
        origin: &NodeName,
        bodies: Vec<Body>,
        now_ms: u64,
    ) -> Result<Vec<Result<VerifiedEntry, AppendError>>, StoreError> {
        if bodies.len() > BATCH_ENTRIES_MAX {
            return Err(StoreError::BatchTooLarge(bodies.len()));
        }
        let mut st = self.lock();
        self.check_not_failed()?;
        if st.quarantined.contains(origin) {
            return Err(StoreError::OwnQuarantined(origin.clone()));
        }
        let head = st.heads.get(origin).copied();
        // Pass 1: check every body against the store and the bodies before it in this batch
        // (`plan` tracks their kinds and retraction targets as `write_entry` will).
        let mut plan = Pending::default();
        let mut seq = head.map_or(0, |t| t.seq);
        let mut accepted = Vec::with_capacity(bodies.len());
        let mut refused: Vec<Option<AppendError>> = Vec::with_capacity(bodies.len());
        for body in bodies {
            if let Err(e) = self.check_own(origin, &body, &plan) {
                refused.push(Some(e));
                continue;
            }
            seq += 1;
            plan.kinds.insert((origin.clone(), seq), body.kind() as u8);
            if let Body::Retraction(r) = &body {
                plan.retracted.insert((origin.clone(), r.target_seq));
            }
            refused.push(None);
            accepted.push(body);
        }
        if accepted.is_empty() {
            return Ok(refused.into_iter().map(|e| Err(e.expect("all refused"))).collect());
        }
        // Pass 2: chain them (sequential and cheap), then sign and write them (see
        // `sign_and_write`), then make everything durable with one flush and fsync.
        let unsigned = VerifiedEntry::chain_own(origin, head.as_ref(), now_ms, accepted);
        let tip = unsigned.last().expect("at least one accepted").tip();
        let mut pending = st.pending();
        let signed = self.sign_and_write(key, unsigned, &mut pending)?;
        self.commit_or_fail()?;
        st.heads.insert(origin.clone(), tip);
        self.heads_moved.notify_all();
        st.commit(pending);
        let mut signed = signed.into_iter();
        Ok(refused
            .into_iter()
            .map(|e| match e {
                Some(e) => Err(e),
                None => Ok(signed.next().expect("one entry per accepted body")),
            })
            .collect())
    }

    /// Stores verified-authentic entries from peers: chains them, detects forks, and returns only
    /// after everything stored is durable. One outcome per entry, in order.
    pub fn ingest(&self, entries: Vec<AuthenticEntry>) -> Result<Vec<IngestOutcome>, StoreError> {
        if entries.len() > BATCH_ENTRIES_MAX {
            return Err(StoreError::BatchTooLarge(entries.len()));
        }
        let mut st = self.lock();
        self.check_not_failed()?;
        let mut heads = st.heads.clone();
        let mut quarantined = st.quarantined.clone();
        let mut batch = sled::Batch::default();
        let mut pending = st.pending();
        let mut outcomes = Vec::with_capacity(entries.len());
        let mut dirty = false;
        for a in entries {
            let origin = a.header().origin.clone();
            let seq = a.header().seq;
            if quarantined.contains(&origin) {
                outcomes.push(IngestOutcome::Quarantined);
                continue;
            }
            let head = heads.get(&origin).copied();
            if head.is_some_and(|h| seq <= h.seq) {
                let held = self
                    .held(&origin, seq, &pending)?
                    .ok_or_else(|| self.corrupt(format!("{origin}:{seq} below head missing")))?;
                let outcome = if held.hash != a.hash() {
                    self.write_fork(&mut batch, &a, &mut quarantined);
                    IngestOutcome::Forked
                } else if held.stub && !a.is_stub() && held.kind != EntryKind::Drill as u8 {
                    let v = a.confirm_held(&held.hash).expect("hashes compared equal above");
                    self.write_entry(&mut batch, &mut pending, &v, true)?;
                    IngestOutcome::Upgraded(v)
                } else {
                    IngestOutcome::Duplicate
                };
                dirty |= !matches!(outcome, IngestOutcome::Duplicate);
                outcomes.push(outcome);
                continue;
            }
            let outcome = match a.link(head.as_ref()) {
                Ok(v) => {
                    self.write_entry(&mut batch, &mut pending, &v, false)?;
                    heads.insert(origin, v.tip());
                    IngestOutcome::Stored(v)
                }
                Err((a, ChainError::Gap { have, .. })) => IngestOutcome::Gap { have, got: a.tip() },
                Err((_, ChainError::BadGenesis)) => IngestOutcome::BadGenesis,
                Err((a, ChainError::Mismatch(_))) => {
                    self.write_fork(&mut batch, &a, &mut quarantined);
                    IngestOutcome::Forked
                }
                Err((_, ChainError::NotNext { .. })) => {
                    unreachable!("positions at or below the head are handled above")
                }
            };
            dirty |= matches!(outcome, IngestOutcome::Stored(_) | IngestOutcome::Forked);
            outcomes.push(outcome);
        }
        if dirty {
            put_hints(&mut batch, &mut pending);
            self.apply_and_commit(batch)?;
        }
        if st.heads != heads {
            self.heads_moved.notify_all();
        }
        st.heads = heads;
        st.quarantined = quarantined;
        st.commit(pending);
        Ok(outcomes)
    }

    /// Whether `e` is a copy of an entry held here: the same header and signature, and the same
    /// body or none (a stub of it). Such a copy is a duplicate whatever its signature check would
    /// say, so ingest skips verifying it. False for a quarantined origin (its entries are
    /// refused, not duplicates) and on any read error (the entry is then verified as usual).
    pub fn holds_copy(&self, e: &SignedEntry) -> bool {
        let h = &e.header;
        {
            let st = self.lock();
            if st.quarantined.contains(&h.origin) || st.heads.get(&h.origin).is_none_or(|t| t.seq < h.seq) {
                return false;
            }
        }
        let Ok(Some(raw)) = self.log.get(entry_key(&h.origin, h.seq)) else { return false };
        let Some((_, payload)) = split_entry_row(&raw) else { return false };
        let Ok(held) = SignedEntry::decode(payload) else { return false };
        held.header == *h && held.signature == e.signature && (e.body.is_none() || e.body == held.body)
    }

    /// Entries of `origin` from `from_seq` on, at most `limit` (capped at `RANGE_ENTRIES_MAX`).
    pub fn range(&self, origin: &NodeName, from_seq: u64, limit: usize) -> Result<Vec<VerifiedEntry>, StoreError> {
        let Some((rows, limit)) = self.range_rows(origin, from_seq, limit) else { return Ok(Vec::new()) };
        let mut out = Vec::with_capacity(limit.min(1024));
        for (expect, kv) in rows {
            let (k, v) = kv.map_err(|e| self.sled_err(e))?;
            let v = self.decode_entry(&k, &v)?;
            if v.header().seq != expect {
                return Err(self.corrupt(format!("{origin}: expected seq {expect}, found {}", v.header().seq)));
            }
            out.push(v);
        }
        Ok(out)
    }

    /// `range` as a peer is sent it: the stored bytes of each entry as they are, the body left
    /// out where `recipient` is outside the entry's audience, and the last entry's position. For
    /// serving peers: nothing is re-checked but each record's key and sequence (the entries were
    /// verified when stored, and the receiver verifies them again), so an answer costs a read and
    /// a header decode per entry rather than a body decode, validation and two hashes.
    pub fn range_for(
        &self,
        origin: &NodeName,
        from_seq: u64,
        limit: usize,
        recipient: &NodeName,
    ) -> Result<(Vec<WireEntry>, Option<ChainTip>), StoreError> {
        let Some((rows, limit)) = self.range_rows(origin, from_seq, limit) else { return Ok((Vec::new(), None)) };
        let mut out = Vec::with_capacity(limit.min(1024));
        let mut last = None;
        for (expect, kv) in rows {
            let (k, v) = kv.map_err(|e| self.sled_err(e))?;
            let (_, payload) = split_entry_row(&v).ok_or_else(|| self.corrupt("entry row too short".into()))?;
            let mut w = wire::decode_entry(payload).map_err(|e| self.corrupt(format!("entry record: {e}")))?;
            let header = EntryHeader::decode(&w.header).map_err(|e| self.corrupt(format!("entry header: {e}")))?;
            if k.as_ref() != entry_key(&header.origin, header.seq).as_slice() || header.seq != expect {
                return Err(
                    self.corrupt(format!("{origin}: expected seq {expect} under its key, found {}", header.seq))
                );
            }
            if !header.audience.admits(&header.origin, recipient) {
                w.body = None;
            }
            last = Some(header);
            out.push(w);
        }
        Ok((out, last.map(|h| ChainTip { seq: h.seq, hash: h.hash() })))
    }

    /// The `E` rows of `range` with the seq each should hold, and the number of them (at most
    /// `limit` and `RANGE_ENTRIES_MAX`); `None` when there are none.
    fn range_rows(
        &self,
        origin: &NodeName,
        from_seq: u64,
        limit: usize,
    ) -> Option<(impl Iterator<Item = (u64, sled::Result<Row>)>, usize)> {
        // Never past the durable head: rows of a group commit are in sled a moment before they
        // are durable, and an entry of ours sent on and then lost in a crash would be re-signed
        // differently (a fork of our own log).
        let head = self.head(origin)?;
        if from_seq > head.seq {
            return None;
        }
        let limit =
            limit.min(RANGE_ENTRIES_MAX).min(head.seq.saturating_sub(from_seq.max(1)).saturating_add(1) as usize);
        let start = entry_key(origin, from_seq.max(1));
        let end = entry_key(origin, u64::MAX);
        // An inclusive range: `from_seq` comes from peers and may be `u64::MAX`, where `from..`
        // overflows on its first step.
        Some(((from_seq.max(1)..=u64::MAX).zip(self.log.range(start..=end).take(limit)), limit))
    }

    pub fn get(&self, id: &EntryId) -> Result<Option<VerifiedEntry>, StoreError> {
        let k = entry_key(&id.origin, id.seq);
        match self.log.get(&k).map_err(|e| self.sled_err(e))? {
            None => Ok(None),
            Some(v) => self.decode_entry(&k, &v).map(Some),
        }
    }

    /// Indicator entries (of every origin) with this content id, ordered by origin and seq.
    pub fn by_content(&self, cid: &Hash) -> Result<Vec<EntryId>, StoreError> {
        let mut out: Vec<EntryId> = self.content_arrivals(cid)?.into_iter().map(|(_, id)| id).collect();
        out.sort_by(|a, b| (a.origin.as_str(), a.seq).cmp(&(b.origin.as_str(), b.seq)));
        Ok(out)
    }

    /// The arrivals of indicators with this content id, in arrival order: the `H` hits whose
    /// entry really has it.
    fn content_arrivals(&self, cid: &Hash) -> Result<Vec<(u64, EntryId)>, StoreError> {
        let want: [u8; 8] = cid[..8].try_into().expect("a hash has 32 bytes");
        let mut out = Vec::new();
        for n in self.hint_hits(0, &want)? {
            let Some(a) = self.arrival_at(n)? else { continue };
            let confirmed = matches!(self.get(&a.id)?, Some(v) if matches!(v.body(), Some(Body::Indicator(i)) if i.content_id() == *cid));
            if confirmed {
                out.push((n, a.id));
            }
        }
        Ok(out)
    }

    /// Arrival numbers whose `H` slot holds `want` at byte `at` (0: content id, 8: STIX UUID).
    fn hint_hits(&self, at: usize, want: &[u8; 8]) -> Result<Vec<u64>, StoreError> {
        let mut out = Vec::new();
        for kv in self.log.scan_prefix(b"H") {
            let (k, v) = kv.map_err(|e| self.sled_err(e))?;
            let block = key_number(&k).ok_or_else(|| self.corrupt("hint key".into()))?;
            if v.len() % HINT_SLOT_BYTES != 0 || v.len() > HINT_SLOT_BYTES * HINT_BLOCK_SLOTS as usize {
                return Err(self.corrupt(format!("hint row {block} of {} bytes", v.len())));
            }
            for (i, slot) in v.chunks_exact(HINT_SLOT_BYTES).enumerate() {
                if slot[at..at + 8] == want[..] {
                    out.push(block * HINT_BLOCK_SLOTS + i as u64);
                }
            }
        }
        Ok(out)
    }

    /// An indicator with its retraction and sightings; `None` if not held or not an indicator.
    pub fn indicator_state(&self, id: &EntryId) -> Result<Option<IndicatorState>, StoreError> {
        let Some(entry) = self.get(id)? else { return Ok(None) };
        if entry.header().kind != EntryKind::Indicator as u8 {
            return Ok(None);
        }
        let retracted_by = match self.log.get(retraction_key(&id.origin, id.seq)).map_err(|e| self.sled_err(e))? {
            None => None,
            Some(v) => {
                let seq =
                    u64::from_be_bytes(v.as_ref().try_into().map_err(|_| self.corrupt("retraction record".into()))?);
                Some(EntryId { origin: id.origin.clone(), seq })
            }
        };
        let retraction = match &retracted_by {
            None => None,
            Some(r) => self.get(r)?.map(|e| {
                let reason = match e.body() {
                    Some(Body::Retraction(r)) => r.reason.clone(),
                    _ => String::new(),
                };
                (e.header().created_ms, reason)
            }),
        };
        let prefix = sighting_prefix(&id.origin, id.seq);
        let mut sightings = Vec::new();
        for kv in self.log.scan_prefix(&prefix) {
            let (k, v) = kv.map_err(|e| self.sled_err(e))?;
            let (origin, seq, _) =
                split_name_seq(&k[prefix.len()..]).ok_or_else(|| self.corrupt("sighting key".into()))?;
            let count = u32::from_be_bytes(v.as_ref().try_into().map_err(|_| self.corrupt("sighting count".into()))?);
            let sid = EntryId { origin, seq };
            let (created_ms, first_seen_ms, last_seen_ms) = match self.get(&sid)? {
                Some(e) => match e.body() {
                    Some(Body::Sighting(b)) => (e.header().created_ms, b.first_seen_ms, b.last_seen_ms),
                    _ => (e.header().created_ms, e.header().created_ms, e.header().created_ms),
                },
                None => (0, 0, 0),
            };
            sightings.push(SightingInfo { id: sid, count, created_ms, first_seen_ms, last_seen_ms });
        }
        Ok(Some(IndicatorState { entry, retracted_by, retraction, sightings }))
    }

    /// Redacted stubs held of entries whose audience admits `node`: the bodies it should fetch.
    pub fn stubs_for(&self, node: &NodeName) -> Result<Vec<(EntryId, Audience)>, StoreError> {
        let mut out = Vec::new();
        for kv in self.log.scan_prefix(b"W") {
            let (k, _) = kv.map_err(|e| self.sled_err(e))?;
            let (origin, seq, _) = split_name_seq(&k[1..]).ok_or_else(|| self.corrupt("stub index key".into()))?;
            let id = EntryId { origin, seq };
            if let Some(v) = self.get(&id)?
                && v.entry().body.is_none()
                && v.header().audience.admits(&id.origin, node)
            {
                out.push((id, v.header().audience.clone()));
            }
        }
        Ok(out)
    }

    /// Indicators matching `q`, in arrival order, one page at a time.
    pub fn query(&self, q: &Query) -> Result<QueryPage, StoreError> {
        let limit = q.limit.clamp(1, QUERY_LIMIT_MAX);
        let mut items = Vec::new();
        // A type and value pick the few candidates from the lookup hints.
        if let (Some(t), Some(v)) = (q.itype, &q.value) {
            let mut cands: Vec<(u64, EntryId)> = self
                .content_arrivals(&crate::model::content_id(t, v))?
                .into_iter()
                .filter(|(a, _)| *a > q.after)
                .collect();
            cands.sort_by_key(|(a, _)| *a);
            let more = cands.len() > limit;
            let mut last = q.after;
            for (a, id) in cands.into_iter().take(limit) {
                last = a;
                if let Some(st) = self.matching(q, &id)? {
                    items.push((a, st));
                }
            }
            // The cursor is the last candidate looked at, matched or not: a page whose
            // candidates were all filtered out must still move on, not end the listing.
            let next = more.then_some(last);
            return Ok(QueryPage { items, next });
        }
        let mut last = q.after;
        for (scanned, kv) in self.log.range(arrival_key(q.after.saturating_add(1))..arrival_key(u64::MAX)).enumerate() {
            if scanned >= QUERY_SCAN_MAX || items.len() >= limit {
                return Ok(QueryPage { items, next: Some(last) });
            }
            let (k, v) = kv.map_err(|e| self.sled_err(e))?;
            last = key_number(&k).ok_or_else(|| self.corrupt("arrival key".into()))?;
            let (origin, seq, _) = split_name_seq(&v).ok_or_else(|| self.corrupt("arrival row".into()))?;
            if let Some(st) = self.matching(q, &EntryId { origin, seq })? {
                items.push((last, st));
            }
        }
        Ok(QueryPage { items, next: None })
    }

    /// Up to `limit` arrivals after the cursor `after`, in order, of every kind (drill records
    /// never arrive); `more` when there are further ones. Ends early after `QUERY_SCAN_MAX`.
    pub fn arrivals(&self, after: u64, limit: usize) -> Result<(Vec<Arrival>, bool), StoreError> {
        let limit = limit.min(QUERY_SCAN_MAX);
        let mut out = Vec::new();
        for kv in self.log.range(arrival_key(after.saturating_add(1))..arrival_key(u64::MAX)) {
            if out.len() >= limit {
                return Ok((out, true));
            }
            let (k, v) = kv.map_err(|e| self.sled_err(e))?;
            out.push(self.parse_arrival(&k, &v)?);
        }
        Ok((out, false))
    }

    /// The arrival numbered `n`, if it is still in the order (an upgraded stub moved on).
    pub fn arrival_at(&self, n: u64) -> Result<Option<Arrival>, StoreError> {
        match self.log.get(arrival_key(n)).map_err(|e| self.sled_err(e))? {
            None => Ok(None),
            Some(v) => Ok(Some(self.parse_arrival(&arrival_key(n), &v)?)),
        }
    }

    /// The cursor before the first arrival added after `t_us` (µs since the epoch): a walk from
    /// it sees exactly what was added after `t_us`, as `added_us` grows with the arrival number.
    pub fn arrival_cursor_after(&self, t_us: u64) -> Result<u64, StoreError> {
        // Binary search over arrival numbers; upgrades leave gaps, so probe the first row at or
        // after a number.
        let first_at_or_after = |n: u64| -> Result<Option<Arrival>, StoreError> {
            match self.log.range(arrival_key(n)..arrival_key(u64::MAX)).next() {
                None => Ok(None),
                Some(kv) => {
                    let (k, v) = kv.map_err(|e| self.sled_err(e))?;
                    Ok(Some(self.parse_arrival(&k, &v)?))
                }
            }
        };
        let (mut lo, mut hi) = (1u64, self.lock().next_arrival);
        // Invariant: every arrival below `lo` was added at or before `t_us`; from `hi` on, none
        // is (or there is none).
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match first_at_or_after(mid)? {
                Some(a) if a.added_us <= t_us => lo = a.arrival + 1,
                _ => hi = mid,
            }
        }
        Ok(lo - 1)
    }

    /// The indicator or sighting whose STIX id has this UUID (`interop::entry_uuid`).
    pub fn by_stix_uuid(&self, uuid: &uuid::Uuid) -> Result<Option<EntryId>, StoreError> {
        let want: [u8; 8] = uuid.as_bytes()[..8].try_into().expect("a UUID has 16 bytes");
        for n in self.hint_hits(8, &want)? {
            let Some(a) = self.arrival_at(n)? else { continue };
            let Some(v) = self.get(&a.id)? else { continue };
            if crate::interop::stix_type_of(v.header().kind)
                .is_some_and(|t| crate::interop::entry_uuid(t, &a.id) == *uuid)
            {
                return Ok(Some(a.id));
            }
        }
        Ok(None)
    }

    /// The arrival number of an entry held here.
    pub fn arrival_of(&self, id: &EntryId) -> Result<Option<u64>, StoreError> {
        match self.log.get(entry_key(&id.origin, id.seq)).map_err(|e| self.sled_err(e))? {
            None => Ok(None),
            Some(row) => {
                let (arrival, _) = split_entry_row(&row).ok_or_else(|| self.corrupt(format!("entry row of {id}")))?;
                Ok((arrival != 0).then_some(arrival))
            }
        }
    }

    /// Entries held per origin and kind.
    pub fn counts(&self) -> BTreeMap<(NodeName, EntryKind), u64> {
        self.lock()
            .counts
            .iter()
            .filter_map(|((o, k), n)| EntryKind::from_u8(*k).map(|k| ((o.clone(), k), *n)))
            .collect()
    }

    fn matching(&self, q: &Query, id: &EntryId) -> Result<Option<IndicatorState>, StoreError> {
        if q.origin.as_ref().is_some_and(|o| *o != id.origin) {
            return Ok(None);
        }
        let Some(st) = self.indicator_state(id)? else { return Ok(None) };
        let Some(Body::Indicator(ind)) = st.entry.body() else { return Ok(None) };
        let created = st.entry.header().created_ms;
        let ok = q.itype.is_none_or(|t| t == ind.itype)
            && q.value.as_ref().is_none_or(|v| *v == ind.value)
            && q.tag.as_ref().is_none_or(|t| ind.tags.contains(t))
            && q.tlp.is_none_or(|t| t == ind.tlp)
            && !(q.hide_amber_strict && ind.tlp == Tlp::AmberStrict)
            && q.created_from_ms.is_none_or(|f| created >= f)
            && q.created_to_ms.is_none_or(|t| created <= t)
            && q.retracted.is_none_or(|r| r == st.retracted_by.is_some());
        Ok(ok.then_some(st))
    }

    /// All fork evidence held.
    /// Ids of the drills this node holds (their start records), oldest first per controller.
    pub fn drills(&self) -> Result<Vec<EntryId>, StoreError> {
        let mut out = Vec::new();
        for kv in self.log.scan_prefix(b"G") {
            let (k, _) = kv.map_err(|e| self.sled_err(e))?;
            let (origin, seq, _) = split_name_seq(&k[1..]).ok_or_else(|| self.corrupt("drill key".into()))?;
            out.push(EntryId { origin, seq });
        }
        Ok(out)
    }

    /// Every record of a drill held here (its start record first), at most `DRILL_RECORDS_MAX`.
    pub fn drill_records(&self, drill: &EntryId) -> Result<Vec<VerifiedEntry>, StoreError> {
        let mut prefix = vec![b'D'];
        put_name_seq(&mut prefix, &drill.origin, drill.seq);
        let mut out = Vec::new();
        for kv in self.log.scan_prefix(&prefix).take(DRILL_RECORDS_MAX) {
            let (k, _) = kv.map_err(|e| self.sled_err(e))?;
            let (origin, seq, _) =
                split_name_seq(&k[prefix.len()..]).ok_or_else(|| self.corrupt("drill record key".into()))?;
            if let Some(v) = self.get(&EntryId { origin, seq })?
                && v.body().is_some()
            {
                out.push(v);
            }
        }
        out.sort_by_key(|v| (v.id() != *drill, v.header().created_ms, v.id()));
        Ok(out)
    }

    /// Removes a drill's bodies from this node: each record is kept as a signed stub (chains
    /// stay whole and verifiable) and the drill disappears from `drills`. Returns the records
    /// purged. Peers keep their copies until they purge too.
    pub fn purge_drill(&self, drill: &EntryId) -> Result<usize, StoreError> {
        let _st = self.lock();
        self.check_not_failed()?;
        let mut prefix = vec![b'D'];
        put_name_seq(&mut prefix, &drill.origin, drill.seq);
        let mut batch = sled::Batch::default();
        let mut n = 0;
        for kv in self.log.scan_prefix(&prefix) {
            let (k, _) = kv.map_err(|e| self.sled_err(e))?;
            let (origin, seq, _) =
                split_name_seq(&k[prefix.len()..]).ok_or_else(|| self.corrupt("drill record key".into()))?;
            if let Some(v) = self.get(&EntryId { origin: origin.clone(), seq })? {
                let mut stub = v.entry().clone();
                stub.body = None;
                let arrival = self.arrival_of(&EntryId { origin: origin.clone(), seq })?.unwrap_or(0);
                batch.insert(entry_key(&origin, seq), entry_row(arrival, &stub.encode()));
                n += 1;
            }
            batch.remove(k);
        }
        batch.remove(drill_start_key(drill));
        self.apply_and_commit(batch)?;
        Ok(n)
    }

    pub fn forks(&self) -> Result<Vec<ForkEvidence>, StoreError> {
        let mut out = Vec::new();
        for kv in self.log.scan_prefix(b"F") {
            let (_, v) = kv.map_err(|e| self.sled_err(e))?;
            let entry = SignedEntry::decode(&v).map_err(|e| self.corrupt(format!("fork evidence: {e}")))?;
            out.push(ForkEvidence { origin: entry.header.origin.clone(), seq: entry.header.seq, entry });
        }
        Ok(out)
    }

    /// Re-verifies every stored log end to end: signatures under the roster, body hashes, seq
    /// continuity and `prev_hash` links. Returns the number of entries checked.
    pub fn verify_chains(&self, roster: &Roster) -> Result<u64, String> {
        let mut checked = 0u64;
        for (origin, head) in self.heads() {
            let mut prev: Option<ChainTip> = None;
            let mut from = 1;
            while from <= head.seq {
                let chunk = self.range(&origin, from, 1024).map_err(|e| e.to_string())?;
                if chunk.is_empty() {
                    return Err(format!("{origin}: entries missing from seq {from} (head {})", head.seq));
                }
                from += chunk.len() as u64;
                let signed: Vec<SignedEntry> = chunk.into_iter().map(|v| v.entry().clone()).collect();
                for r in log::authenticate_batch(roster, signed) {
                    let a = r.map_err(|e: VerifyError| e.to_string())?;
                    let v = a.link(prev.as_ref()).map_err(|(a, e)| format!("{}: {e}", a.id()))?;
                    prev = Some(v.tip());
                    checked += 1;
                }
            }
            if prev != Some(head) {
                return Err(format!("{origin}: chain ends at {prev:?}, head says {head:?}"));
            }
        }
        Ok(checked)
    }

    /// The number of log entries held (every origin) and the bytes of their encoded records:
    /// the raw data the disk footprint is compared with. Reads every entry row.
    pub fn entry_bytes(&self) -> Result<(u64, u64), StoreError> {
        let (mut n, mut bytes) = (0u64, 0u64);
        for kv in self.log.scan_prefix(b"E") {
            let (_, v) = kv.map_err(|e| self.sled_err(e))?;
            n += 1;
            bytes += split_entry_row(&v).map_or(v.len(), |(_, p)| p.len()) as u64;
        }
        Ok((n, bytes))
    }

    /// Total size of the data dir's files, in bytes.
    pub fn disk_bytes(&self) -> u64 {
        self.db.size_on_disk().unwrap_or(0)
    }

    // ---- internals ----

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves State as it was before the batch (heads are
        // replaced only after a successful commit), so a poisoned lock is safe to reuse.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn check_not_failed(&self) -> Result<(), StoreError> {
        match &*self.failed.lock().unwrap_or_else(|p| p.into_inner()) {
            None => Ok(()),
            Some(reason) => Err(StoreError::Failed { dir: self.dir.display().to_string(), reason: reason.clone() }),
        }
    }

    /// Applies a batch and makes it durable. A failure after the batch was applied leaves the
    /// disk ahead of the in-memory heads, so the store refuses every later write (see `Failed`).
    fn apply_and_commit(&self, batch: sled::Batch) -> Result<(), StoreError> {
        self.log.apply_batch(batch).map_err(|e| self.sled_err(e))?;
        self.commit_or_fail()
    }

    /// Makes what was applied durable, or refuses every later write (see `apply_and_commit`).
    fn commit_or_fail(&self) -> Result<(), StoreError> {
        self.commit().inspect_err(|e| self.fail(e))
    }

    /// Refuses every later write: something was applied that may not be durable.
    fn fail(&self, e: &StoreError) {
        tracing::error!(error = %e, "a write failed after part of a batch was applied: refusing further writes");
        *self.failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
    }

    /// Signs chained entries of our own and writes them into sled (not yet durable), in chunks
    /// of `PIPELINE_ENTRIES`: while one pool thread signs a chunk, another writes the chunk
    /// signed before it, so signing (about a third of an append's time) overlaps sled's work
    /// instead of adding to it. Each chunk is one sled batch; a crash between two leaves a prefix
    /// of the chain, none of it acknowledged. A failure once a chunk was written fails the store
    /// (`fail`), as a failed commit does.
    fn sign_and_write(
        &self,
        key: &SigningKey,
        unsigned: Vec<log::Unsigned>,
        pending: &mut Pending,
    ) -> Result<Vec<VerifiedEntry>, StoreError> {
        let total = unsigned.len();
        let mut chunks = crate::par::split_into(unsigned, PIPELINE_ENTRIES);
        chunks.reverse();
        let first = chunks.pop().unwrap_or_default();
        let mut current = crate::par::map_chunks(first, |c| VerifiedEntry::sign_chained(key, c));
        let mut out = Vec::with_capacity(total);
        loop {
            let (next, written) = match chunks.pop() {
                None => (None, self.write_chunk(&current, pending)),
                Some(next) => crate::par::join(
                    || Some(VerifiedEntry::sign_chained(key, next)),
                    || self.write_chunk(&current, pending),
                ),
            };
            if let Err(e) = written {
                if !out.is_empty() {
                    self.fail(&e);
                }
                return Err(e);
            }
            out.append(&mut current);
            match next {
                Some(n) => current = n,
                None => return Ok(out),
            }
        }
    }

    /// Writes entries and their rows as one sled batch (not yet durable).
    fn write_chunk(&self, entries: &[VerifiedEntry], pending: &mut Pending) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for v in entries {
            self.write_entry(&mut batch, pending, v, false)?;
        }
        put_hints(&mut batch, pending);
        self.log.apply_batch(batch).map_err(|e| self.sled_err(e))
    }

    /// Makes everything written so far durable (see module docs).
    fn commit(&self) -> Result<(), StoreError> {
        self.db.flush().map_err(|e| self.sled_err(e))?;
        if self.durability == Durability::Fsync {
            self.data_file
                .sync_data()
                .map_err(|source| StoreError::Io { path: self.dir.join("db").display().to_string(), source })?;
        }
        Ok(())
    }

    fn check_own(&self, origin: &NodeName, body: &Body, pending: &Pending) -> Result<(), AppendError> {
        body.validate()?;
        match body {
            Body::Indicator(_) | Body::Drill(_) => Ok(()),
            Body::Retraction(r) => {
                let target = EntryId { origin: origin.clone(), seq: r.target_seq };
                if !self.is_indicator(&target, pending) {
                    return Err(AppendError::Target(format!(
                        "{target} is not an indicator of this node: only our own indicators can be retracted"
                    )));
                }
                let already = pending.retracted.contains(&(origin.clone(), r.target_seq))
                    || self.log.contains_key(retraction_key(origin, r.target_seq)).unwrap_or(false);
                if already {
                    return Err(AppendError::Target(format!("{target} is already retracted")));
                }
                Ok(())
            }
            Body::Sighting(s) => {
                if self.is_indicator(&s.indicator, pending) {
                    Ok(())
                } else {
                    Err(AppendError::Target(format!("{} is not an indicator held by this node", s.indicator)))
                }
            }
        }
    }

    fn is_indicator(&self, id: &EntryId, pending: &Pending) -> bool {
        if let Some(kind) = pending.kinds.get(&(id.origin.clone(), id.seq)) {
            return *kind == EntryKind::Indicator as u8;
        }
        matches!(self.get(id), Ok(Some(v)) if v.header().kind == EntryKind::Indicator as u8)
    }

    /// The entry at a position, from this batch or the tree.
    fn held(&self, origin: &NodeName, seq: u64, pending: &Pending) -> Result<Option<Held>, StoreError> {
        if let Some(h) = pending.entries.get(&(origin.clone(), seq)) {
            return Ok(Some(*h));
        }
        Ok(self.get(&EntryId { origin: origin.clone(), seq })?.map(|v| Held::of(&v)))
    }

    /// Adds an entry and its index rows to the batch. `upgrade`: the entry replaces our stub of it.
    fn write_entry(
        &self,
        batch: &mut sled::Batch,
        pending: &mut Pending,
        v: &VerifiedEntry,
        upgrade: bool,
    ) -> Result<(), StoreError> {
        let h = v.header();
        let bytes = v.entry().encode();
        // Assert right before writing: what we write must read back as this entry.
        debug_assert_eq!(SignedEntry::decode(&bytes).as_ref(), Ok(v.entry()));
        // Arrival order: an upgraded stub moves to the end, as its body is new here.
        if upgrade {
            let old = match pending.arrivals.get(&(h.origin.clone(), h.seq)) {
                Some(a) => Some(*a),
                None => self.arrival_of(&v.id())?,
            };
            if let Some(old) = old {
                batch.remove(arrival_key(old));
            }
        } else {
            let c = pending.counts.entry((h.origin.clone(), h.kind)).or_insert(0);
            *c += 1;
            let mut k = vec![b'K'];
            put_name(&mut k, &h.origin);
            k.push(h.kind);
            batch.insert(k, &c.to_be_bytes());
        }
        // Drill records stay out of the arrival order that queries and exports walk.
        let mut arrival = 0;
        if h.kind != EntryKind::Drill as u8 {
            arrival = pending.arrival;
            pending.arrival += 1;
            pending.added_us = pending.clock_us.max(pending.added_us + 1);
            let mut row = Vec::with_capacity(50);
            put_name_seq(&mut row, &h.origin, h.seq);
            row.extend_from_slice(&pending.added_us.to_be_bytes());
            batch.insert(arrival_key(arrival), row);
            pending.arrivals.insert((h.origin.clone(), h.seq), arrival);
            self.set_hint(pending, arrival, &hint_slot(v))?;
        }
        batch.insert(entry_key(&h.origin, h.seq), entry_row(arrival, &bytes));
        match v.body() {
            Some(Body::Indicator(_)) | None => {}
            Some(Body::Retraction(r)) => {
                let target = EntryId { origin: h.origin.clone(), seq: r.target_seq };
                let known = self.is_indicator(&target, pending);
                let first = !pending.retracted.contains(&(h.origin.clone(), r.target_seq))
                    && !self.log.contains_key(retraction_key(&h.origin, r.target_seq)).map_err(|e| self.sled_err(e))?;
                // A signed retraction of something that is not an indicator is stored (the chain
                // must stay whole) but changes no state.
                if known && first {
                    batch.insert(retraction_key(&h.origin, r.target_seq), &h.seq.to_be_bytes());
                    pending.retracted.insert((h.origin.clone(), r.target_seq));
                }
            }
            Some(Body::Sighting(s)) => {
                let mut k = sighting_prefix(&s.indicator.origin, s.indicator.seq);
                put_name_seq(&mut k, &h.origin, h.seq);
                batch.insert(k, &s.count.to_be_bytes());
            }
            Some(Body::Drill(d)) => {
                let own = EntryId { origin: h.origin.clone(), seq: h.seq };
                let drill = d.drill().cloned().unwrap_or_else(|| own.clone());
                if d.drill().is_none() {
                    batch.insert(drill_start_key(&drill), &[]);
                }
                batch.insert(drill_record_key(&drill, &own), &[]);
            }
        }
        if let Audience::Only(_) = h.audience {
            let mut k = vec![b'W'];
            put_name_seq(&mut k, &h.origin, h.seq);
            if v.entry().body.is_none() {
                batch.insert(k, &[]);
            } else {
                batch.remove(k);
            }
        }
        pending.kinds.insert((h.origin.clone(), h.seq), h.kind);
        pending.entries.insert((h.origin.clone(), h.seq), Held::of(v));
        Ok(())
    }

    /// Puts an arrival's slot into its `H` row as this batch will write it.
    fn set_hint(&self, pending: &mut Pending, arrival: u64, slot: &[u8; HINT_SLOT_BYTES]) -> Result<(), StoreError> {
        let block = arrival / HINT_BLOCK_SLOTS;
        let row = match pending.hints.entry(block) {
            std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::btree_map::Entry::Vacant(v) => {
                let held = self.log.get(hint_key(block)).map_err(|e| self.sled_err(e))?;
                v.insert(held.map(|h| h.to_vec()).unwrap_or_default())
            }
        };
        let at = (arrival % HINT_BLOCK_SLOTS) as usize * HINT_SLOT_BYTES;
        if row.len() < at + HINT_SLOT_BYTES {
            row.resize(at + HINT_SLOT_BYTES, 0);
        }
        row[at..at + HINT_SLOT_BYTES].copy_from_slice(slot);
        Ok(())
    }

    fn write_fork(&self, batch: &mut sled::Batch, a: &AuthenticEntry, quarantined: &mut BTreeSet<NodeName>) {
        let h = a.header();
        let mut k = vec![b'F'];
        put_name_seq(&mut k, &h.origin, h.seq);
        k.extend_from_slice(&a.hash());
        batch.insert(k, a.entry().encode());
        let mut q = vec![b'Q'];
        put_name(&mut q, &h.origin);
        batch.insert(q, &h.seq.to_be_bytes());
        tracing::warn!(origin = %h.origin, seq = h.seq, "fork detected: origin signed two different entries; evidence kept, origin quarantined");
        quarantined.insert(h.origin.clone());
    }

    fn decode_entry(&self, key: &[u8], row: &[u8]) -> Result<VerifiedEntry, StoreError> {
        let (_, payload) = split_entry_row(row).ok_or_else(|| self.corrupt("entry row too short".into()))?;
        self.decode_payload(key, payload)
    }

    /// An entry row's entry (format 2 and older stored nothing else in it).
    fn decode_payload(&self, key: &[u8], v: &[u8]) -> Result<VerifiedEntry, StoreError> {
        let entry = SignedEntry::decode(v).map_err(|e| self.corrupt(format!("entry record: {e}")))?;
        // Assert right after reading: the record is the one its key names.
        if key != entry_key(&entry.header.origin, entry.header.seq).as_slice() {
            return Err(self.corrupt(format!("record under wrong key: {}", entry.id())));
        }
        VerifiedEntry::from_store(entry).map_err(|e| self.corrupt(e.to_string()))
    }

    fn scan_heads(&self) -> Result<BTreeMap<NodeName, ChainTip>, StoreError> {
        let mut heads = BTreeMap::new();
        let mut cursor: Vec<u8> = vec![b'E'];
        loop {
            let Some(kv) = self.log.range(cursor.clone()..).next() else { break };
            let (k, _) = kv.map_err(|e| self.sled_err(e))?;
            if k.first() != Some(&b'E') {
                break;
            }
            let (origin, _, _) = split_name_seq(&k[1..]).ok_or_else(|| self.corrupt("entry key".into()))?;
            let last = entry_key(&origin, u64::MAX);
            let (lk, lv) = self
                .log
                .range(..=last.clone())
                .next_back()
                .ok_or_else(|| self.corrupt("head scan".into()))?
                .map_err(|e| self.sled_err(e))?;
            let v = self.decode_entry(&lk, &lv)?;
            heads.insert(origin, v.tip());
            cursor = last;
            cursor.push(0);
        }
        Ok(heads)
    }

    /// The next arrival number and the last `added_us`.
    fn scan_next_arrival(&self) -> Result<(u64, u64), StoreError> {
        match self.log.scan_prefix(b"A").next_back() {
            None => Ok((1, 0)),
            Some(kv) => {
                let (k, v) = kv.map_err(|e| self.sled_err(e))?;
                let a = self.parse_arrival(&k, &v)?;
                Ok((a.arrival + 1, a.added_us))
            }
        }
    }

    fn parse_arrival(&self, k: &[u8], v: &[u8]) -> Result<Arrival, StoreError> {
        let arrival = key_number(k).ok_or_else(|| self.corrupt("arrival key".into()))?;
        let (origin, seq, rest) = split_name_seq(v).ok_or_else(|| self.corrupt("arrival row".into()))?;
        let added_us = rest.try_into().map(u64::from_be_bytes).map_err(|_| self.corrupt("arrival time".into()))?;
        Ok(Arrival { arrival, added_us, id: EntryId { origin, seq } })
    }

    fn scan_counts(&self) -> Result<BTreeMap<(NodeName, u8), u64>, StoreError> {
        let mut out = BTreeMap::new();
        for kv in self.log.scan_prefix(b"K") {
            let (k, v) = kv.map_err(|e| self.sled_err(e))?;
            let (name, rest) = split_name(&k[1..]).ok_or_else(|| self.corrupt("count key".into()))?;
            let kind = *rest.first().ok_or_else(|| self.corrupt("count key".into()))?;
            let n = v.as_ref().try_into().map(u64::from_be_bytes).map_err(|_| self.corrupt("count value".into()))?;
            out.insert((name, kind), n);
        }
        Ok(out)
    }

    fn scan_quarantined(&self) -> Result<BTreeSet<NodeName>, StoreError> {
        let mut out = BTreeSet::new();
        for kv in self.log.scan_prefix(b"Q") {
            let (k, _) = kv.map_err(|e| self.sled_err(e))?;
            let (name, rest) = split_name(&k[1..]).ok_or_else(|| self.corrupt("quarantine key".into()))?;
            if !rest.is_empty() {
                return Err(self.corrupt("quarantine key".into()));
            }
            out.insert(name);
        }
        Ok(out)
    }

    fn sled_err(&self, source: sled::Error) -> StoreError {
        StoreError::Sled { dir: self.dir.display().to_string(), source }
    }

    fn corrupt(&self, what: String) -> StoreError {
        StoreError::Corrupt { dir: self.dir.display().to_string(), what }
    }
}

/// What the batch being built has written so far, so later items in it see earlier ones.
#[derive(Default)]
struct Pending {
    kinds: HashMap<(NodeName, u64), u8>,
    /// What `held` needs of the entries written in this batch (not the entries: a copy of each
    /// would double the batch's allocations).
    entries: HashMap<(NodeName, u64), Held>,
    retracted: BTreeSet<(NodeName, u64)>,
    /// Next arrival number, and those assigned in this batch.
    arrival: u64,
    /// The `added_us` of the last arrival assigned, and the clock when the batch began.
    added_us: u64,
    clock_us: u64,
    arrivals: HashMap<(NodeName, u64), u64>,
    /// `H` rows touched by this batch, by block, as they will be written (`put_hints`).
    hints: BTreeMap<u64, Vec<u8>>,
    /// Entries per (origin, kind), including this batch.
    counts: BTreeMap<(NodeName, u8), u64>,
}

/// What ingest compares of an entry held at a position.
#[derive(Debug, Clone, Copy)]
struct Held {
    hash: Hash,
    /// A redacted stub: the header without its body.
    stub: bool,
    kind: u8,
}

impl Held {
    fn of(v: &VerifiedEntry) -> Held {
        Held { hash: v.hash(), stub: v.entry().body.is_none(), kind: v.header().kind }
    }
}

/// The wall clock in µs since the epoch (the store is an IO shell: it stamps arrivals itself).
fn now_us() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0)
}

fn put_name(k: &mut Vec<u8>, n: &NodeName) {
    k.push(n.as_str().len() as u8);
    k.extend_from_slice(n.as_str().as_bytes());
}

fn put_name_seq(k: &mut Vec<u8>, n: &NodeName, seq: u64) {
    put_name(k, n);
    k.extend_from_slice(&seq.to_be_bytes());
}

fn split_name(k: &[u8]) -> Option<(NodeName, &[u8])> {
    let len = *k.first()? as usize;
    let name = std::str::from_utf8(k.get(1..1 + len)?).ok()?;
    Some((NodeName::new(name).ok()?, &k[1 + len..]))
}

fn split_name_seq(k: &[u8]) -> Option<(NodeName, u64, &[u8])> {
    let (name, rest) = split_name(k)?;
    let seq = u64::from_be_bytes(rest.get(..8)?.try_into().ok()?);
    Some((name, seq, &rest[8..]))
}

/// The `H` slot of an entry (see module docs).
fn hint_slot(v: &VerifiedEntry) -> [u8; HINT_SLOT_BYTES] {
    let mut slot = [0u8; HINT_SLOT_BYTES];
    if let Some(Body::Indicator(ind)) = v.body() {
        slot[..8].copy_from_slice(&ind.content_id()[..8]);
    }
    if let Some(t) = crate::interop::stix_type_of(v.header().kind) {
        slot[8..].copy_from_slice(&crate::interop::entry_uuid(t, &v.id()).as_bytes()[..8]);
    }
    slot
}

/// An `E` row: the arrival number (0: none), then the encoded entry.
fn entry_row(arrival: u64, entry: &[u8]) -> Vec<u8> {
    let mut row = Vec::with_capacity(8 + entry.len());
    row.extend_from_slice(&arrival.to_be_bytes());
    row.extend_from_slice(entry);
    row
}

/// An `E` row's arrival number and encoded entry.
fn split_entry_row(row: &[u8]) -> Option<(u64, &[u8])> {
    let (a, payload) = row.split_first_chunk::<8>()?;
    Some((u64::from_be_bytes(*a), payload))
}

/// The number after the one-byte prefix of an `A` or `H` key.
pub(super) fn key_number(k: &[u8]) -> Option<u64> {
    k.get(1..9).and_then(|b| b.try_into().ok()).map(u64::from_be_bytes)
}

/// Moves the `H` rows a batch touched into it.
fn put_hints(batch: &mut sled::Batch, pending: &mut Pending) {
    for (block, row) in std::mem::take(&mut pending.hints) {
        batch.insert(hint_key(block), row);
    }
}

fn hint_key(block: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(9);
    k.push(b'H');
    k.extend_from_slice(&block.to_be_bytes());
    k
}

fn entry_key(origin: &NodeName, seq: u64) -> Vec<u8> {
    let mut k = vec![b'E'];
    put_name_seq(&mut k, origin, seq);
    k
}

fn arrival_key(arrival: u64) -> Vec<u8> {
    let mut k = vec![b'A'];
    k.extend_from_slice(&arrival.to_be_bytes());
    k
}

fn retraction_key(origin: &NodeName, target_seq: u64) -> Vec<u8> {
    let mut k = vec![b'R'];
    put_name_seq(&mut k, origin, target_seq);
    k
}

/// `G` + drill id: one row per drill started.
fn drill_start_key(drill: &EntryId) -> Vec<u8> {
    let mut k = vec![b'G'];
    put_name_seq(&mut k, &drill.origin, drill.seq);
    k
}

/// `D` + drill id + record id: the records of one drill.
fn drill_record_key(drill: &EntryId, record: &EntryId) -> Vec<u8> {
    let mut k = vec![b'D'];
    put_name_seq(&mut k, &drill.origin, drill.seq);
    put_name_seq(&mut k, &record.origin, record.seq);
    k
}

fn sighting_prefix(origin: &NodeName, seq: u64) -> Vec<u8> {
    let mut k = vec![b'S'];
    put_name_seq(&mut k, origin, seq);
    k
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Indicator, IndicatorInput};

    /// A peer's `Request { from_seq: u64::MAX }`, or `WantBodies` naming seq `u64::MAX`, overflowed
    /// the seq counter of `range` before it read anything (found while fuzzing `sync`; the `fuzz/`
    /// target `sync` now reads the store with every range a peer asks for).
    #[test]
    fn a_range_from_u64_max_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &StoreOptions::default()).unwrap();
        let ee = NodeName::new("ee").unwrap();
        let key = crate::sim::sim_key(&ee);
        let input = IndicatorInput { itype: "ipv4".into(), value: "203.0.113.7".into(), ..IndicatorInput::default() };
        let body = Body::Indicator(Indicator::from_input(&input, 1).unwrap());
        store.append_local(&key, &ee, vec![body], 1).unwrap().pop().unwrap().unwrap();
        assert_eq!(store.range(&ee, 1, 10).unwrap().len(), 1);
        assert!(store.range(&ee, u64::MAX, 1).unwrap().is_empty());
        assert!(store.range(&ee, u64::MAX - 1, 200).unwrap().is_empty());
    }
}
