//! Interoperability with the tools CERTs already run: STIX 2.1 (`stix`), served over TAXII 2.1
//! by `api::taxii`, and MISP events and feeds (`misp`).
//!
//! Exports work from [`IndicatorView`](crate::view::IndicatorView)s, the API's own view of an
//! indicator, so that they see exactly what the API shows a token (TLP filtering happens where
//! the views are read, never here). Imports turn foreign objects into
//! [`IndicatorInput`](crate::model::IndicatorInput)s, which are then submitted like any other
//! indicator and validated by the model; whatever cannot be represented is reported per object
//! with its reason, never dropped silently.

use std::collections::BTreeMap;

use crate::model::{EntryId, EntryKind, IndicatorInput};

pub mod console;
pub mod misp;
pub mod stix;

/// The namespace of ctix's STIX ids (UUIDv5, RFC 9562): fixed for ever, so that an entry maps to
/// the same STIX id on every node and in every export.
pub const STIX_NAMESPACE: uuid::Uuid = stix::CTIX_NAMESPACE;

/// The UUID of the STIX object of `object_type` (`indicator`, `sighting`) made from the entry
/// `id`: UUIDv5 of `"{object_type}:{origin}:{seq}"` in [`STIX_NAMESPACE`].
pub fn entry_uuid(object_type: &str, id: &EntryId) -> uuid::Uuid {
    uuid::Uuid::new_v5(&STIX_NAMESPACE, format!("{object_type}:{}:{}", id.origin, id.seq).as_bytes())
}

/// The STIX object type an entry of this kind byte becomes, if it becomes one of its own
/// (a retraction becomes a new version of its indicator; drill records never leave ctix).
pub fn stix_type_of(kind: u8) -> Option<&'static str> {
    match EntryKind::from_u8(kind)? {
        EntryKind::Indicator => Some("indicator"),
        EntryKind::Sighting => Some("sighting"),
        EntryKind::Retraction | EntryKind::Drill => None,
    }
}

/// What an import made of a file: the indicators to submit, and every object it did not take.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub items: Vec<Imported>,
    pub skipped: Vec<Skipped>,
}

/// One foreign object that becomes a ctix indicator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    /// The object's id in its format (a STIX id, a MISP attribute uuid), for messages.
    pub source_id: String,
    pub input: IndicatorInput,
}

/// One foreign object not imported, with why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The object's id in its format (a STIX id, a MISP attribute uuid), or its position
    /// (`objects[17]`) when it has none.
    pub source_id: String,
    /// The object's type in its format (`malware`, `indicator`, MISP `regkey` …).
    pub kind: String,
    /// A short reason that groups well in a summary (`unsupported object type malware`), not
    /// mentioning the object's id or value.
    pub reason: String,
}

impl ImportReport {
    /// How many objects were skipped for each reason, for a per-reason summary.
    pub fn reasons(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for s in &self.skipped {
            *out.entry(s.reason.clone()).or_insert(0) += 1;
        }
        out
    }
}
