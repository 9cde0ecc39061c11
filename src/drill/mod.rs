//! Drill mode: scenarios (`scenario`), the per-node drill state machine (`runner`, sans-IO), the
//! after-action report (`report`) and the simulated federation (`simulate`).
//!
//! The records a drill writes are `model::drill::DrillRecord`s in the ordinary signed logs; this
//! module reads them back as `Record`s.

pub mod console;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod simulate;

use crate::log::VerifiedEntry;
use crate::model::drill::DrillRecord;
use crate::model::{Body, EntryId};

/// One drill record with what its signed header says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The record's own entry id (for a start record, the drill id).
    pub id: EntryId,
    /// When its origin signed it, ms since the Unix epoch (the origin's clock).
    pub created_ms: u64,
    pub record: DrillRecord,
}

impl Record {
    /// The drill record an entry carries, if it is one and its body is held.
    pub fn from_entry(v: &VerifiedEntry) -> Option<Record> {
        match v.body() {
            Some(Body::Drill(d)) => Some(Record { id: v.id(), created_ms: v.header().created_ms, record: d.clone() }),
            _ => None,
        }
    }

    /// The drill this record belongs to.
    pub fn drill(&self) -> &EntryId {
        self.record.drill().unwrap_or(&self.id)
    }
}
