//! JSON shapes of the REST API, shared by the server (`api`) and the CLI client (`client`).
//!
//! These are the API's stable, documented forms (README "REST API"); domain types stay in
//! `model`. Times are RFC 3339 strings with milliseconds, ids are `origin:seq`, hashes hex.

use serde::{Deserialize, Serialize};

use crate::model::time::format_time;
use crate::model::{Body, IndicatorInput};
use crate::store::IndicatorState;

/// Most indicators in one batch submission.
pub const SUBMIT_BATCH_MAX: usize = 10_000;
/// Largest request body the API reads (a full batch of large indicators fits).
pub const REQUEST_BYTES_MAX: usize = 32 * 1024 * 1024;
/// Page size of a query that gives no `limit` (the largest is `store::QUERY_LIMIT_MAX`).
pub const QUERY_LIMIT_DEFAULT: usize = 100;

/// Every error the API returns: a machine code and a message that says what to fix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Stable machine code, e.g. `invalid_json`, `invalid_field`, `unauthorized`, `not_found`,
    /// `payload_too_large`, `not_ready`, `internal`. The README's "Errors" table lists every
    /// code with its HTTP status.
    pub code: String,
    pub message: String,
    /// The offending field, for validation errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// `POST /api/v1/indicators` body: a batch. (`POST /api/v1/indicator` takes one
/// `IndicatorInput` and answers with the same `SubmitResponse`.)
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmitRequest {
    pub indicators: Vec<IndicatorInput>,
    /// All or nothing: with any invalid item, nothing is stored.
    #[serde(default)]
    pub atomic: bool,
}

/// The answer to a submission, sent only after every accepted entry is durable.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmitResponse {
    pub accepted: usize,
    pub rejected: usize,
    /// One per submitted item, in order.
    pub results: Vec<ItemResult>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemResult {
    pub index: usize,
    /// `origin:seq` of the stored entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Hex content id (same IOC from any state → same id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorDetail>,
}

/// One indicator as the API and `ctix query --json` show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndicatorView {
    pub id: String,
    pub origin: String,
    pub seq: u64,
    #[serde(rename = "type")]
    pub itype: String,
    pub value: String,
    pub tlp: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recipients: Vec<String>,
    pub confidence: u8,
    pub valid_from: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<String>,
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub techniques: Vec<String>,
    /// When the origin signed it.
    pub created: String,
    pub content_id: String,
    pub retracted: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retracted_by: Option<String>,
    /// When the retraction was signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retracted_at: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub retraction_reason: String,
    /// Total count over all sighting reports.
    pub sightings: u64,
    /// Each sighting report: `{ "id": "lv:7", "by": "lv", "count": 3, "created": …,
    /// "first_seen": …, "last_seen": … }`.
    pub sighting_reports: Vec<SightingView>,
    /// Cursor of this item (pass as `after` to continue after it).
    pub cursor: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SightingView {
    pub id: String,
    pub by: String,
    pub count: u32,
    /// When the sighting was signed, and the first and last time seen that it reports.
    pub created: String,
    pub first_seen: String,
    pub last_seen: String,
}

impl IndicatorView {
    /// The view of an indicator state; `None` for a stub or a non-indicator.
    pub fn from_state(st: &IndicatorState, cursor: u64) -> Option<IndicatorView> {
        let Some(Body::Indicator(ind)) = st.entry.body() else { return None };
        let h = st.entry.header();
        Some(IndicatorView {
            id: st.entry.id().to_string(),
            origin: h.origin.to_string(),
            seq: h.seq,
            itype: ind.itype.to_string(),
            value: ind.value.clone(),
            tlp: ind.tlp.to_string(),
            recipients: ind.recipients.iter().map(|r| r.to_string()).collect(),
            confidence: ind.confidence,
            valid_from: format_time(ind.valid_from_ms),
            valid_until: ind.valid_until_ms.map(format_time),
            tags: ind.tags.clone(),
            description: ind.description.clone(),
            techniques: ind.techniques.clone(),
            created: format_time(h.created_ms),
            content_id: hex::encode(ind.content_id()),
            retracted: st.retracted_by.is_some(),
            retracted_by: st.retracted_by.as_ref().map(|r| r.to_string()),
            retracted_at: st.retraction.as_ref().map(|(at, _)| format_time(*at)),
            retraction_reason: st.retraction.as_ref().map(|(_, r)| r.clone()).unwrap_or_default(),
            sightings: st.sightings.iter().map(|s| s.count as u64).sum(),
            sighting_reports: st
                .sightings
                .iter()
                .map(|s| SightingView {
                    id: s.id.to_string(),
                    by: s.id.origin.to_string(),
                    count: s.count,
                    created: format_time(s.created_ms),
                    first_seen: format_time(s.first_seen_ms),
                    last_seen: format_time(s.last_seen_ms),
                })
                .collect(),
            cursor,
        })
    }
}

/// `GET /api/v1/indicators` answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryResponse {
    pub items: Vec<IndicatorView>,
    /// Pass as `after` for the next page; absent at the end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<u64>,
}

/// `POST /api/v1/indicators/{id}/retract` body.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetractRequest {
    pub reason: String,
}

/// `POST /api/v1/indicators/{id}/sightings` body; every field optional.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SightRequest {
    /// Default 1.
    pub count: Option<u32>,
    /// RFC 3339; default now.
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    pub note: String,
}

/// `GET /api/v1/status` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusView {
    pub node: String,
    /// Whether appends are accepted (start-up own-head check passed).
    pub ready: bool,
    pub peers: Vec<PeerView>,
    /// Origin → head seq (the version vector).
    pub heads: std::collections::BTreeMap<String, u64>,
    /// Origin → kind → entries held.
    pub counts: std::collections::BTreeMap<String, std::collections::BTreeMap<String, u64>>,
    /// Origins quarantined for a fork.
    pub quarantined: Vec<String>,
    pub forks: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerView {
    pub name: String,
    pub connected: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<String>,
    /// Entries we hold that the peer has not announced, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag_entries: Option<u64>,
    /// Entries the peer sent that failed verification since the node started: an honest member
    /// verifies before it relays, so a count here points at this peer.
    #[serde(default)]
    pub rejected: u64,
}

/// `POST /api/v1/drills` body: the scenario file's TOML text.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrillStartRequest {
    pub scenario: String,
    /// Rehearse N times faster (1 to 100; default 1): offsets, deadlines and durations divided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed: Option<u32>,
}

/// The answer to starting a drill (201).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrillStarted {
    /// The drill id: the start record's entry id, e.g. `ee:42`.
    pub id: String,
    pub name: String,
    /// When offset 0 is, RFC 3339.
    pub start: String,
    /// When the drill ends at the latest, RFC 3339.
    pub end: String,
}

/// One drill in `GET /api/v1/drills`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrillView {
    pub id: String,
    pub name: String,
    pub controller: String,
    /// `running`, `completed` or `aborted`.
    pub state: String,
    pub start: String,
    pub end: String,
    /// Whether this node takes part.
    pub participant: bool,
}

/// `GET /api/v1/drills` answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrillList {
    pub drills: Vec<DrillView>,
}

/// `POST /api/v1/drills/{id}/ack` body.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrillAckRequest {
    pub inject: String,
    #[serde(default)]
    pub note: String,
}

/// `POST /api/v1/drills/{id}/abort` body.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrillAbortRequest {
    #[serde(default)]
    pub reason: String,
}

/// The id of a record written for a drill command (ack, abort), or the count purged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrillDone {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purged: Option<usize>,
}
