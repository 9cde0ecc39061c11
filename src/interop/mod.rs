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

use crate::model::IndicatorInput;

pub mod misp;
pub mod stix;

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
