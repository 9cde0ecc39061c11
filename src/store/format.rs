//! Store format versions and store-wide markers: the `Mformat` record checked at open, the
//! in-place upgrade from older formats, and the `M` markers a restore leaves (own head
//! unconfirmed, restore incomplete).
//!
//! Format history (`FORMAT_VERSION` is the one this build writes):
//! - **1**: `log-1` with `Mformat` = 1. Written by every build before format 2. Early format-1
//!   stores lack rows that later format-1 builds write: arrival rows (`A`) carry no `added_us`
//!   suffix and there is no STIX id index (`X`); the oldest have no arrival rows (`A`, `N`) or
//!   counts (`K`) at all. Those rows are derived from the entries (`E`), so the upgrade rebuilds
//!   whatever is missing.
//! - **2**: every row of the module docs of `store`, and the `M` markers below. A format-1 build
//!   ignores `Mown-head-unconfirmed` and would sign over a restored log, which is why the format
//!   changed: such a build refuses a format-2 store ("has format 2, this build reads format 1").
//! - **3**: the per-entry content index (`C content_id name seq`) and STIX id index (`X uuid`)
//!   are replaced by the `H` lookup-hint rows, one per `HINT_BLOCK_SLOTS` arrivals, and the
//!   arrival of an entry (`N name seq` → arrival) moves into its `E` row, in front of the entry
//!   (see `store`): three sled rows fewer per entry. A format-2 build would misread the `E` rows,
//!   hence the new version. The upgrade rewrites every `E` row with its arrival and drops its
//!   `N` row in the same batch, with a marker of how far it got (`Mupgrade-3-entries`: the two
//!   forms of an `E` row cannot be told apart by their bytes); then it builds the `H` rows and
//!   drops `C` and `X`.
//!
//! The upgrade is crash-safe: every step only adds rows derived from `E` rows, or rewrites a row
//! into the form it would have had, so running it again after a crash redoes nothing wrong; the
//! new `Mformat` is written last, after everything before it is durable.

use std::collections::BTreeMap;

use super::{
    FORMAT_VERSION, HINT_BLOCK_SLOTS, Store, StoreError, arrival_key, hint_key, hint_slot, put_name, put_name_seq,
    split_name_seq,
};
use crate::model::{EntryId, EntryKind};

/// The format version record (u32 big-endian). Kept in `log-1`, where format-1 builds look for
/// it, so that an older build refuses a newer store instead of misreading it.
pub(super) const KEY_FORMAT: &[u8] = b"Mformat";
/// Present while this node's own log may be behind what peers hold of it (after `ctix restore`
/// or `ctix store rejoin`): the node signs nothing until a peer confirms its own head.
const KEY_OWN_UNCONFIRMED: &[u8] = b"Mown-head-unconfirmed";
/// Present while a restore is writing into this store; a store with it is refused at open (it
/// holds part of a backup), except by `ctix restore` itself.
const KEY_RESTORING: &[u8] = b"Mrestore-incomplete";
/// During the upgrade to format 3: the last `E` row rewritten with its arrival (`[0xff]` once
/// all are). Removed once the store is marked format 3.
const KEY_UPGRADE_ENTRIES: &[u8] = b"Mupgrade-3-entries";
/// Rows written per sled batch during an upgrade: bounds the memory of one batch (a row is at
/// most an entry, 18.7 KiB) while keeping the number of flushes small.
pub const UPGRADE_BATCH_ROWS: usize = 10_000;

/// What `check_format` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Opened {
    /// An empty tree: a new store, now marked with the current format.
    New,
    /// The current format.
    Current,
    /// An older format, upgraded in place.
    Upgraded,
}

impl Store {
    /// Checks the format record at open: marks a new store, refuses a newer format, upgrades an
    /// older one in place.
    pub(super) fn check_format(&self) -> Result<Opened, StoreError> {
        let found = match self.log.get(KEY_FORMAT).map_err(|e| self.sled_err(e))? {
            Some(v) => u32::from_be_bytes(v.as_ref().try_into().map_err(|_| self.corrupt("format record".into()))?),
            None => {
                if self.log.iter().next().is_some() {
                    return Err(self.corrupt("the store holds data but no format record".into()));
                }
                self.set_format(FORMAT_VERSION)?;
                return Ok(Opened::New);
            }
        };
        match found {
            FORMAT_VERSION => Ok(Opened::Current),
            v if v > FORMAT_VERSION => Err(StoreError::Format { dir: self.dir.display().to_string(), found: v }),
            v @ (1 | 2) => {
                tracing::info!(dir = %self.dir.display(), "upgrading the store from format {v} to {FORMAT_VERSION}");
                let (rows, crash_after) = upgrade_params();
                let mut up = Upgrade {
                    store: self,
                    batch: sled::Batch::default(),
                    rows: 0,
                    batch_rows: rows,
                    batches: 0,
                    crash_after,
                };
                // The format-1 steps ran to the end before the format-3 steps began (which mark
                // their progress): once they did, the `E` rows are no longer format 1's.
                if v == 1 && !self.marker(KEY_UPGRADE_ENTRIES)? {
                    self.upgrade_from_1(&mut up)?;
                }
                self.upgrade_from_2(&mut up)?;
                self.set_format(FORMAT_VERSION)?;
                self.log.remove(KEY_UPGRADE_ENTRIES).map_err(|e| self.sled_err(e))?;
                self.commit()?;
                tracing::info!(dir = %self.dir.display(), "store upgraded to format {FORMAT_VERSION}");
                Ok(Opened::Upgraded)
            }
            v => Err(self.corrupt(format!("unknown store format {v}"))),
        }
    }

    /// The format recorded in the store.
    pub fn format_version(&self) -> Result<u32, StoreError> {
        let v = self.log.get(KEY_FORMAT).map_err(|e| self.sled_err(e))?.ok_or_else(|| self.corrupt("format".into()))?;
        Ok(u32::from_be_bytes(v.as_ref().try_into().map_err(|_| self.corrupt("format record".into()))?))
    }

    fn set_format(&self, v: u32) -> Result<(), StoreError> {
        self.log.insert(KEY_FORMAT, &v.to_be_bytes()).map_err(|e| self.sled_err(e))?;
        self.commit()
    }

    /// Whether this node's own log is marked as possibly behind its peers' copy of it.
    pub fn own_head_unconfirmed(&self) -> Result<bool, StoreError> {
        self.marker(KEY_OWN_UNCONFIRMED)
    }

    /// Marks (or clears) this node's own log as possibly behind its peers' copy; durable on return.
    pub fn set_own_head_unconfirmed(&self, on: bool) -> Result<(), StoreError> {
        self.set_marker(KEY_OWN_UNCONFIRMED, on)
    }

    /// Whether a restore began writing into this store and has not finished.
    pub fn restore_incomplete(&self) -> Result<bool, StoreError> {
        self.marker(KEY_RESTORING)
    }

    /// Marks (or clears) a restore in progress; durable on return.
    pub fn set_restore_incomplete(&self, on: bool) -> Result<(), StoreError> {
        self.set_marker(KEY_RESTORING, on)
    }

    fn marker(&self, key: &[u8]) -> Result<bool, StoreError> {
        self.log.contains_key(key).map_err(|e| self.sled_err(e))
    }

    fn set_marker(&self, key: &[u8], on: bool) -> Result<(), StoreError> {
        self.check_not_failed()?;
        let r = if on { self.log.insert(key, &[]) } else { self.log.remove(key) };
        r.map_err(|e| self.sled_err(e))?;
        self.commit()
    }

    /// Rebuilds what format 1 may lack (see module docs), into format 2 but for the STIX id
    /// index, which format 3 replaces (`upgrade_from_2`).
    fn upgrade_from_1(&self, up: &mut Upgrade<'_>) -> Result<(), StoreError> {
        // 1. The counts per origin and kind, from the entries.
        let mut counts: BTreeMap<Vec<u8>, u64> = BTreeMap::new();
        for kv in self.log.scan_prefix(b"E") {
            let (k, v) = kv.map_err(|e| self.sled_err(e))?;
            let e = self.decode_payload(&k, &v)?;
            let h = e.header();
            let mut ck = vec![b'K'];
            put_name(&mut ck, &h.origin);
            ck.push(h.kind);
            *counts.entry(ck).or_default() += 1;
        }
        for kv in self.log.scan_prefix(b"K") {
            let (k, _) = kv.map_err(|e| self.sled_err(e))?;
            if !counts.contains_key(k.as_ref()) {
                up.remove(k.to_vec())?;
            }
        }
        for (k, n) in counts {
            up.insert(k, n.to_be_bytes().to_vec())?;
        }
        up.flush()?;
        // 2. Arrival rows without their `added_us`: the entry's signing time, made strictly
        // increasing (the real time it was added here was not recorded).
        let mut prev_us = 0u64;
        let mut next_arrival = 1u64;
        for kv in self.log.scan_prefix(b"A") {
            let (k, v) = kv.map_err(|e| self.sled_err(e))?;
            let arrival = super::key_number(&k).ok_or_else(|| self.corrupt("arrival key".into()))?;
            next_arrival = arrival + 1;
            let (origin, seq, rest) = split_name_seq(&v).ok_or_else(|| self.corrupt("arrival row".into()))?;
            match rest.len() {
                8 => prev_us = u64::from_be_bytes(rest.try_into().expect("8 bytes")),
                0 => {
                    let added_us = self.created_us(&origin, seq)?.max(prev_us + 1);
                    prev_us = added_us;
                    let mut row = v.to_vec();
                    row.extend_from_slice(&added_us.to_be_bytes());
                    up.insert(k.to_vec(), row)?;
                }
                _ => return Err(self.corrupt("arrival row".into())),
            }
        }
        up.flush()?;
        // 3. Entries that never got an arrival (stores from before the arrival index): appended to
        // the order, each with its `N` row in the same batch, so a re-run skips them.
        for kv in self.log.scan_prefix(b"E") {
            let (k, v) = kv.map_err(|e| self.sled_err(e))?;
            let (origin, seq, _) = split_name_seq(&k[1..]).ok_or_else(|| self.corrupt("entry key".into()))?;
            let mut nk = vec![b'N'];
            put_name_seq(&mut nk, &origin, seq);
            if self.log.contains_key(&nk).map_err(|e| self.sled_err(e))? {
                continue;
            }
            let e = self.decode_payload(&k, &v)?;
            if e.header().kind == EntryKind::Drill as u8 {
                continue;
            }
            let added_us = e.header().created_ms.saturating_mul(1000).max(prev_us + 1);
            prev_us = added_us;
            let mut row = Vec::with_capacity(50);
            put_name_seq(&mut row, &origin, seq);
            row.extend_from_slice(&added_us.to_be_bytes());
            // Both rows in one batch: `flush_if_full` runs only between entries.
            up.batch.insert(arrival_key(next_arrival), row);
            up.batch.insert(nk, &next_arrival.to_be_bytes());
            up.rows += 2;
            next_arrival += 1;
            up.flush_if_full()?;
        }
        up.flush()?;
        Ok(())
    }

    /// Format 2 to 3: the `H` rows from the arrival rows and their entries (each row written
    /// whole, once its block is complete), then the `C` and `X` rows dropped. A re-run after a
    /// crash writes the same `H` rows again and drops what is left.
    fn upgrade_from_2(&self, up: &mut Upgrade<'_>) -> Result<(), StoreError> {
        // 1. Every `E` row gets its arrival in front, from its `N` row, which goes in the same
        // batch as the marker. A re-run starts after the marker.
        let done = self.log.get(KEY_UPGRADE_ENTRIES).map_err(|e| self.sled_err(e))?;
        let from: Vec<u8> = match &done {
            Some(last) => last.iter().copied().chain([0]).collect(),
            None => b"E".to_vec(),
        };
        for kv in self.log.range(from..) {
            let (k, v) = kv.map_err(|e| self.sled_err(e))?;
            if k.first() != Some(&b'E') {
                break;
            }
            let (origin, seq, _) = split_name_seq(&k[1..]).ok_or_else(|| self.corrupt("entry key".into()))?;
            let mut nk = vec![b'N'];
            put_name_seq(&mut nk, &origin, seq);
            let arrival = match self.log.get(&nk).map_err(|e| self.sled_err(e))? {
                Some(a) => {
                    u64::from_be_bytes(a.as_ref().try_into().map_err(|_| self.corrupt("arrival of an entry".into()))?)
                }
                None => 0,
            };
            self.decode_payload(&k, &v)?;
            up.batch.insert(k.to_vec(), super::entry_row(arrival, &v));
            up.batch.insert(KEY_UPGRADE_ENTRIES, k.to_vec());
            up.batch.remove(nk);
            up.rows += 2;
            up.flush_if_full()?;
        }
        up.batch.insert(KEY_UPGRADE_ENTRIES, &[0xffu8]);
        up.rows += 1;
        up.flush()?;
        for kv in self.log.scan_prefix(b"N") {
            up.remove(kv.map_err(|e| self.sled_err(e))?.0.to_vec())?;
        }
        up.flush()?;
        // 2. The hint rows, from the arrival rows and their entries.
        let mut block: Option<(u64, Vec<u8>)> = None;
        for kv in self.log.scan_prefix(b"A") {
            let (k, v) = kv.map_err(|e| self.sled_err(e))?;
            let a = self.parse_arrival(&k, &v)?;
            let e = self
                .get(&a.id)?
                .ok_or_else(|| self.corrupt(format!("arrival row names {}, which is not held", a.id)))?;
            let b = a.arrival / HINT_BLOCK_SLOTS;
            if block.as_ref().is_some_and(|(at, _)| *at != b)
                && let Some((at, row)) = block.take()
            {
                up.insert(hint_key(at), row)?;
            }
            let (_, row) = block.get_or_insert_with(|| (b, Vec::new()));
            let at = (a.arrival % HINT_BLOCK_SLOTS) as usize * super::HINT_SLOT_BYTES;
            row.resize(at + super::HINT_SLOT_BYTES, 0);
            row[at..].copy_from_slice(&hint_slot(&e));
        }
        if let Some((at, row)) = block {
            up.insert(hint_key(at), row)?;
        }
        up.flush()?;
        for prefix in [b"C", b"X"] {
            for kv in self.log.scan_prefix(prefix) {
                let (k, _) = kv.map_err(|e| self.sled_err(e))?;
                up.remove(k.to_vec())?;
            }
            up.flush()?;
        }
        Ok(())
    }

    /// An entry's signing time in µs, from a format-1 or 2 `E` row.
    fn created_us(&self, origin: &crate::model::NodeName, seq: u64) -> Result<u64, StoreError> {
        let id = EntryId { origin: origin.clone(), seq };
        let k = super::entry_key(origin, seq);
        let v = self
            .log
            .get(&k)
            .map_err(|e| self.sled_err(e))?
            .ok_or_else(|| self.corrupt(format!("arrival row names {id}, which is not held")))?;
        Ok(self.decode_payload(&k, &v)?.header().created_ms.saturating_mul(1000))
    }
}

#[cfg(test)]
thread_local! {
    /// Tests: (rows per batch, batches before a simulated crash) for upgrades on this thread.
    static UPGRADE_HOOK: std::cell::Cell<Option<(usize, usize)>> = const { std::cell::Cell::new(None) };
}

/// Rows per upgrade batch, and when a test wants the upgrade to stop as if it crashed.
fn upgrade_params() -> (usize, Option<usize>) {
    #[cfg(test)]
    if let Some((rows, crash)) = UPGRADE_HOOK.with(|h| h.get()) {
        return (rows, Some(crash));
    }
    (UPGRADE_BATCH_ROWS, None)
}

/// The batch an upgrade is filling.
struct Upgrade<'a> {
    store: &'a Store,
    batch: sled::Batch,
    rows: usize,
    batch_rows: usize,
    batches: usize,
    crash_after: Option<usize>,
}

impl Upgrade<'_> {
    fn insert(&mut self, k: Vec<u8>, v: Vec<u8>) -> Result<(), StoreError> {
        self.batch.insert(k, v);
        self.rows += 1;
        self.flush_if_full()
    }

    fn remove(&mut self, k: Vec<u8>) -> Result<(), StoreError> {
        self.batch.remove(k);
        self.rows += 1;
        self.flush_if_full()
    }

    fn flush_if_full(&mut self) -> Result<(), StoreError> {
        if self.rows >= self.batch_rows { self.flush() } else { Ok(()) }
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        if self.rows == 0 {
            return Ok(());
        }
        if self.crash_after.is_some_and(|n| self.batches >= n) {
            return Err(self.store.corrupt("simulated crash during the upgrade".into()));
        }
        let batch = std::mem::take(&mut self.batch);
        self.store.log.apply_batch(batch).map_err(|e| self.store.sled_err(e))?;
        self.store.commit()?;
        self.rows = 0;
        self.batches += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::{CACHE_BYTES_DEFAULT, StoreOptions, TREE_LOG, open_sled};
    use super::*;
    use crate::model::{Body, Indicator, IndicatorInput, NodeName, Retraction, Sighting};

    const T0: u64 = 1_795_867_200_000;

    fn ee() -> NodeName {
        NodeName::new("ee").unwrap()
    }

    fn indicator(i: u64) -> Body {
        let input =
            IndicatorInput { itype: "ipv4".into(), value: format!("203.0.113.{i}"), ..IndicatorInput::default() };
        Body::Indicator(Indicator::from_input(&input, T0).unwrap())
    }

    /// Eight entries of `ee` (indicators, a sighting, a retraction), signed at fixed times so two
    /// stores built by this are identical.
    fn fill(store: &Store) {
        let key = crate::sim::sim_key(&ee());
        for i in 1..=6 {
            store.append_local(&key, &ee(), vec![indicator(i)], T0 + i * 1000).unwrap();
        }
        let sighting = Body::Sighting(Sighting {
            indicator: EntryId { origin: ee(), seq: 2 },
            count: 3,
            first_seen_ms: T0,
            last_seen_ms: T0,
            note: String::new(),
        });
        store.append_local(&key, &ee(), vec![sighting], T0 + 7_000).unwrap();
        let retraction = Body::Retraction(Retraction { target_seq: 1, reason: "false positive".into() });
        store.append_local(&key, &ee(), vec![retraction], T0 + 8_000).unwrap();
    }

    /// Rewrites a current store into format 2 as the builds before format 3 wrote it: no `H`
    /// rows, a `C` row per indicator and an `X` row per indicator and sighting.
    fn make_format2(dir: &Path) {
        {
            let store = Store::open(dir, &StoreOptions::default()).unwrap();
            fill(&store);
        }
        let db = open_sled(dir, CACHE_BYTES_DEFAULT).unwrap();
        let log = db.open_tree(TREE_LOG).unwrap();
        for kv in log.scan_prefix(b"H") {
            log.remove(kv.unwrap().0).unwrap();
        }
        let store_rows: Vec<_> = log.scan_prefix(b"E").map(|kv| kv.unwrap()).collect();
        for (k, row) in store_rows {
            let (arrival, v) = super::super::split_entry_row(&row).unwrap();
            let e = crate::log::SignedEntry::decode(v).unwrap();
            log.insert(&k, v).unwrap();
            let h = &e.header;
            let id = EntryId { origin: h.origin.clone(), seq: h.seq };
            let mut name_seq = Vec::new();
            put_name_seq(&mut name_seq, &h.origin, h.seq);
            if arrival != 0 {
                let mut nk = vec![b'N'];
                nk.extend_from_slice(&name_seq);
                log.insert(nk, &arrival.to_be_bytes()).unwrap();
            }
            if let Some(t) = crate::interop::stix_type_of(h.kind) {
                let mut xk = vec![b'X'];
                xk.extend_from_slice(crate::interop::entry_uuid(t, &id).as_bytes());
                log.insert(xk, name_seq.clone()).unwrap();
            }
            if let Some(Body::Indicator(i)) = e.body.as_deref().map(|b| crate::wire::decode_body(b).unwrap()) {
                let mut ck = vec![b'C'];
                ck.extend_from_slice(&i.content_id());
                ck.extend_from_slice(&name_seq);
                log.insert(ck, &[]).unwrap();
            }
        }
        log.insert(KEY_FORMAT, &2u32.to_be_bytes()).unwrap();
        db.flush().unwrap();
    }

    /// Rewrites a current store into format 1 as the builds before format 2 wrote it: `Mformat`
    /// 1, arrival rows without `added_us`, no STIX index, no markers. `oldest`: also without
    /// the arrival index and counts (the first format-1 builds).
    fn make_format1(dir: &Path, oldest: bool) {
        make_format2(dir);
        let db = open_sled(dir, CACHE_BYTES_DEFAULT).unwrap();
        let log = db.open_tree(TREE_LOG).unwrap();
        for kv in log.scan_prefix(b"A") {
            let (k, v) = kv.unwrap();
            if oldest {
                log.remove(k).unwrap();
            } else {
                log.insert(k, &v[..v.len() - 8]).unwrap();
            }
        }
        let drop_prefixes: &[&[u8]] = if oldest { &[b"X", b"K", b"N"] } else { &[b"X"] };
        for p in drop_prefixes {
            for kv in log.scan_prefix(p) {
                log.remove(kv.unwrap().0).unwrap();
            }
        }
        log.insert(KEY_FORMAT, &1u32.to_be_bytes()).unwrap();
        db.flush().unwrap();
    }

    /// Every row of the store's tree.
    fn dump(dir: &Path) -> Vec<(Vec<u8>, Vec<u8>)> {
        let db = open_sled(dir, CACHE_BYTES_DEFAULT).unwrap();
        let log = db.open_tree(TREE_LOG).unwrap();
        log.iter().map(|kv| kv.map(|(k, v)| (k.to_vec(), v.to_vec())).unwrap()).collect()
    }

    fn copy_dir(from: &Path, to: &Path) {
        for e in std::fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            let target = to.join(e.file_name());
            if e.file_type().unwrap().is_dir() {
                std::fs::create_dir_all(&target).unwrap();
                copy_dir(&e.path(), &target);
            } else {
                std::fs::copy(e.path(), target).unwrap();
            }
        }
    }

    fn set_format(dir: &Path, v: u32) {
        let db = open_sled(dir, CACHE_BYTES_DEFAULT).unwrap();
        db.open_tree(TREE_LOG).unwrap().insert(KEY_FORMAT, &v.to_be_bytes()).unwrap();
        db.flush().unwrap();
    }

    /// What an upgraded store must answer like a store written by this build.
    fn check_upgraded(store: &Store) {
        assert_eq!(store.format_version().unwrap(), FORMAT_VERSION);
        let (arrivals, more) = store.arrivals(0, 100).unwrap();
        assert!(!more);
        assert_eq!(arrivals.len(), 8, "every entry is in the arrival order");
        assert!(arrivals.windows(2).all(|w| w[0].added_us < w[1].added_us), "added_us strictly increases");
        assert!(arrivals.iter().all(|a| a.added_us >= T0 * 1000), "added_us is not before the signing time");
        for seq in 1..=6 {
            let id = EntryId { origin: ee(), seq };
            let uuid = crate::interop::entry_uuid("indicator", &id);
            assert_eq!(store.by_stix_uuid(&uuid).unwrap(), Some(id), "STIX index of ee:{seq}");
        }
        let sighting = EntryId { origin: ee(), seq: 7 };
        assert_eq!(store.by_stix_uuid(&crate::interop::entry_uuid("sighting", &sighting)).unwrap(), Some(sighting));
        for a in &arrivals {
            assert_eq!(
                store.arrival_of(&a.id).unwrap(),
                Some(a.arrival),
                "the entry row of {} holds its arrival",
                a.id
            );
        }
        let ids: Vec<u64> = store.by_content(&indicator_cid(2)).unwrap().into_iter().map(|id| id.seq).collect();
        assert_eq!(ids, [2], "the content lookup finds the indicator");
        let counts = store.counts();
        assert_eq!(counts.get(&(ee(), EntryKind::Indicator)), Some(&6));
        assert_eq!(counts.get(&(ee(), EntryKind::Sighting)), Some(&1));
        assert_eq!(counts.get(&(ee(), EntryKind::Retraction)), Some(&1));
        let page = store.query(&crate::store::Query { limit: 100, ..Default::default() }).unwrap();
        assert_eq!(page.items.len(), 6);
        let first = store.indicator_state(&EntryId { origin: ee(), seq: 1 }).unwrap().unwrap();
        assert!(first.retracted_by.is_some(), "the retraction index survived");
        // The cursor by time works on the synthesised times.
        assert_eq!(store.arrival_cursor_after(arrivals[2].added_us).unwrap(), arrivals[2].arrival);
    }

    fn indicator_cid(i: u64) -> crate::model::Hash {
        crate::model::content_id(crate::model::IndicatorType::Ipv4, &format!("203.0.113.{i}"))
    }

    #[test]
    fn a_format_2_store_is_upgraded_to_lookup_hints_and_loses_its_index_rows() {
        let current = tempfile::tempdir().unwrap();
        fill(&Store::open(current.path(), &StoreOptions::default()).unwrap());
        let dir = tempfile::tempdir().unwrap();
        make_format2(dir.path());
        assert!(dump(dir.path()).iter().any(|(k, _)| k[0] == b'X'), "the format-2 store has its STIX index");
        let store = Store::open(dir.path(), &StoreOptions::default()).unwrap();
        check_upgraded(&store);
        drop(store);
        let rows = dump(dir.path());
        assert!(!rows.iter().any(|(k, _)| [b'C', b'X', b'N'].contains(&k[0])), "no C, X or N rows are left");
        assert!(!rows.iter().any(|(k, _)| k == KEY_UPGRADE_ENTRIES), "the upgrade's marker is gone");
        let hints = |rows: &[(Vec<u8>, Vec<u8>)]| -> Vec<(Vec<u8>, Vec<u8>)> {
            rows.iter().filter(|(k, _)| k[0] == b'H').cloned().collect()
        };
        assert_eq!(hints(&rows), hints(&dump(current.path())), "the same hints as a store written by this build");
    }

    #[test]
    fn a_format_1_store_is_upgraded_in_place_and_then_opens_as_current() {
        for oldest in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            make_format1(dir.path(), oldest);
            {
                let store = Store::open(dir.path(), &StoreOptions::default()).unwrap();
                check_upgraded(&store);
                // The store keeps working: a new append arrives after the upgraded ones.
                let key = crate::sim::sim_key(&ee());
                store.append_local(&key, &ee(), vec![indicator(9)], T0 + 9_000).unwrap();
                let (arrivals, _) = store.arrivals(0, 100).unwrap();
                assert_eq!(arrivals.len(), 9);
                assert!(arrivals.windows(2).all(|w| w[0].added_us < w[1].added_us));
            }
            let before = dump(dir.path());
            let store = Store::open(dir.path(), &StoreOptions::default()).unwrap();
            assert_eq!(store.check_format().unwrap(), Opened::Current);
            drop(store);
            assert_eq!(dump(dir.path()), before, "opening a current store changes nothing");
        }
    }

    /// An upgrade stopped after any number of batches (a crash) is finished by the next open, with
    /// the same result as an upgrade that ran through.
    #[test]
    fn an_upgrade_interrupted_at_any_point_finishes_on_the_next_open() {
        for from in [1u32, 2] {
            upgrade_interrupted_at_any_point(from);
        }
    }

    fn upgrade_interrupted_at_any_point(from: u32) {
        let make = |dir: &Path| if from == 1 { make_format1(dir, false) } else { make_format2(dir) };
        // The same old store twice (format 2 keeps the real times things were added).
        let clean = tempfile::tempdir().unwrap();
        make(clean.path());
        let dir = tempfile::tempdir().unwrap();
        copy_dir(clean.path(), dir.path());
        drop(Store::open(clean.path(), &StoreOptions::default()).unwrap());
        let want = dump(clean.path());
        let mut crashes = 0;
        for after in 0..100 {
            UPGRADE_HOOK.with(|h| h.set(Some((2, after))));
            let r = Store::open(dir.path(), &StoreOptions::default());
            UPGRADE_HOOK.with(|h| h.set(None));
            match r {
                Err(StoreError::Corrupt { what, .. }) if what.contains("simulated crash") => {
                    crashes += 1;
                    let rows = dump(dir.path());
                    let format = rows.iter().find(|(k, _)| k == KEY_FORMAT).map(|(_, v)| v.clone());
                    assert_eq!(format, Some(from.to_be_bytes().to_vec()), "the format changes only at the end");
                }
                Err(e) => panic!("unexpected error: {e}"),
                Ok(store) => {
                    check_upgraded(&store);
                    break;
                }
            }
        }
        assert!(crashes >= 5, "the upgrade from {from} ran in several batches and crashed {crashes} times");
        assert_eq!(dump(dir.path()), want, "the result equals an uninterrupted upgrade from {from}");
    }

    #[test]
    fn a_newer_format_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        drop(Store::open(dir.path(), &StoreOptions::default()).unwrap());
        set_format(dir.path(), FORMAT_VERSION + 1);
        let before = dump(dir.path());
        let err = Store::open(dir.path(), &StoreOptions::default()).err().expect("refused");
        assert!(matches!(err, StoreError::Format { found, .. } if found == FORMAT_VERSION + 1), "{err}");
        let msg = err.to_string();
        assert!(msg.contains("newer ctix") && msg.contains(&format!("has format {}", FORMAT_VERSION + 1)), "{msg}");
        assert_eq!(dump(dir.path()), before, "nothing written");
        set_format(dir.path(), 0);
        let err = Store::open(dir.path(), &StoreOptions::default()).err().expect("refused");
        assert!(err.to_string().contains("unknown store format 0"), "{err}");
    }

    #[test]
    fn markers_are_durable_and_an_unfinished_restore_is_refused_at_open() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path(), &StoreOptions::default()).unwrap();
            assert!(!store.own_head_unconfirmed().unwrap());
            store.set_own_head_unconfirmed(true).unwrap();
            store.set_restore_incomplete(true).unwrap();
        }
        let err = Store::open(dir.path(), &StoreOptions::default()).err().expect("refused");
        assert!(matches!(err, StoreError::RestoreIncomplete { .. }), "{err}");
        assert!(err.to_string().contains("ctix restore FILE --force"), "{err}");
        let store = Store::open_for_restore(dir.path()).unwrap();
        assert!(store.own_head_unconfirmed().unwrap());
        store.set_restore_incomplete(false).unwrap();
        drop(store);
        let store = Store::open(dir.path(), &StoreOptions::default()).unwrap();
        assert!(store.own_head_unconfirmed().unwrap());
    }
}
