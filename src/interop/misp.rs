//! MISP interop: MISP event JSON and MISP feed directories in, a MISP feed out.
//!
//! **Import** ([`import_event`], [`import_feed_dir`]) reads what MISP writes: an event file
//! (`{"Event": …}` or a bare event), a REST answer (`{"response": [{"Event": …}, …]}`) or a list of
//! events, and a feed directory (`manifest.json` plus one `<uuid>.json` per event). Each attribute,
//! at the top level or inside an `Object`, becomes one indicator submission or one skip entry:
//!
//! | MISP type                                         | ctix type                                  |
//! |---------------------------------------------------|--------------------------------------------|
//! | `ip-dst`, `ip-src` (and their `\|port` forms)     | `ipv4`, `ipv6`, or `cidr` with a `/`       |
//! | `domain`, `hostname`, `hostname\|port`            | `domain`                                   |
//! | `domain\|ip`                                      | `domain` (the ip part is reported)         |
//! | `url`                                             | `url`                                      |
//! | `email`, `email-src`, `email-dst`, `email-reply-to` | `email`                                  |
//! | `md5`, `sha1`, `sha256`, `filename`               | the same                                   |
//! | `filename\|md5`, `filename\|sha1`, `filename\|sha256`, `malware-sample` | the hash (the file name goes to the description and is reported) |
//! | `vulnerability`                                   | `cve`                                      |
//!
//! Everything else is skipped as `unsupported attribute type …`. Only attributes with `to_ids`
//! set are imported (a missing `to_ids` counts as set, MISP's default for these types): MISP
//! marks context with `to_ids: false` (the impersonated bank's real domain, a victim's mailbox, a
//! sinkhole), and ctix would otherwise hand that context to every member and every MISP that
//! pulls its feed as something to block. `vulnerability` is the exception, because MISP's own
//! default for it is `to_ids: false` (no IDS matches a CVE id). Deleted attributes and attributes
//! of deleted objects are skipped; so is every attribute of an event tagged
//! `misp:should-not-sync`, which its owner marked as not for sharing.
//!
//! Tags: `tlp:clear`/`tlp:white`, `tlp:green`, `tlp:amber`, `tlp:amber+strict` and `tlp:red` set
//! the TLP, an attribute's tag winning over its event's and the most restrictive winning among
//! several; without any the model's default (amber) applies. TLP:RED items carry the recipients of
//! `ctix:recipient="…"` tags; without them the model refuses the item, so nothing red is ever
//! widened. `misp:confidence-level="…"` and `admiralty-scale:information-credibility="…"` set the
//! confidence (the numbers MISP's taxonomy and STIX 2.1 appendix A give them). ATT&CK galaxy tags
//! (`misp-galaxy:mitre-attack-pattern="Phishing - T1566"`), `ctix:technique="T1566"` and
//! `kill-chain:Delivery` become techniques. Other tags become ctix tags, lower-cased; local and
//! non-exportable tags are not shared. MISP's `distribution` is not read: what ctix members may
//! see is decided by the TLP alone. An importer who must honour "your organisation only" filters
//! on `distribution` when it pulls the events from MISP.
//!
//! The event's `info` prefixes the description, followed by the attribute's `comment`. An
//! attribute's `first_seen`, else its event's `date`, becomes `valid_from`; `last_seen` is when it
//! was last observed, not an expiry, so nothing sets `valid_until`.
//!
//! **Export** ([`feed`], [`write_feed`]) writes a directory a MISP instance adds as a feed of
//! format "MISP Feed": one event per origin state and UTC day of creation, with ids derived from
//! the entry ids so that re-exports update the same events and attributes. See [`feed`] for the
//! mapping.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{self, Read};
use std::path::Path;

use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::{ImportReport, Imported, Skipped};
use crate::model::time::{format_time, parse_time};
use crate::model::{
    DESCRIPTION_BYTES_MAX, IndicatorInput, IndicatorType, KILL_CHAIN_PHASES, TAG_BYTES_MAX, TAGS_MAX, TECHNIQUES_MAX,
    Tlp,
};
use crate::view::IndicatorView;

/// Largest MISP JSON file read: an event file, a REST answer or a manifest. Events with tens of
/// thousands of attributes, or with malware samples inlined as base64, reach tens of megabytes;
/// a larger file is not one event, and parsing takes several times its size in memory.
pub const FILE_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Most events in one import (a feed's manifest or a REST answer). The largest public MISP
/// feeds hold a few thousand events.
pub const EVENTS_PER_IMPORT_MAX: usize = 10_000;
/// Most attributes in one event, counting those inside objects. Larger events exist only as
/// dumps of whole block lists, which belong in a CSV feed, not in one event.
pub const ATTRIBUTES_PER_EVENT_MAX: usize = 100_000;
/// Most attributes over all events of one import: bounds the report held in memory (an imported
/// item takes a few hundred bytes).
pub const ATTRIBUTES_PER_IMPORT_MAX: usize = 500_000;
const _: () = assert!(ATTRIBUTES_PER_EVENT_MAX <= ATTRIBUTES_PER_IMPORT_MAX);

/// How much of a foreign label (an attribute type, a uuid) a skip entry quotes: enough to
/// recognise it, not enough to carry a payload into logs.
const LABEL_CHARS_MAX: usize = 64;

/// Namespace of the UUIDv5s of exported events, organisations and attributes. Never change it: a
/// MISP instance recognises a re-exported event or attribute as the same one by its uuid.
const UUID_NAMESPACE: Uuid = Uuid::from_u128(0x6c1f_3a52_8d0e_4b7a_9e61_2f4c_7d38_a915);

/// Colour of exported tags that are not TLP tags (MISP shows tags in their colour).
const TAG_COLOUR: &str = "#5c6670";

/// A MISP feed: what [`write_feed`] puts in a directory.
#[derive(Debug, Clone, PartialEq)]
pub struct MispFeed {
    /// `manifest.json`: event uuid → `{info, date, analysis, threat_level_id, timestamp, Orgc, Tag}`.
    pub manifest: Value,
    /// `hashes.csv`: `<md5 of an attribute value>,<event uuid>` lines, MISP's quick cache for
    /// correlating against a feed without downloading every event.
    pub hashes_csv: String,
    /// Event uuid → `{"Event": …}`, written as `<uuid>.json`.
    pub events: BTreeMap<String, Value>,
}

/// Reads MISP event JSON: `{"Event": …}`, a bare event, `{"response": [{"Event": …}, …]}` as
/// MISP's REST API answers, or a list of events. The error says why the whole input was refused.
pub fn import_event(json: &[u8]) -> Result<ImportReport, String> {
    if json.len() > FILE_BYTES_MAX {
        return Err(format!(
            "{} bytes of MISP JSON: at most {FILE_BYTES_MAX}; export fewer events at a time",
            json.len()
        ));
    }
    let mut importer = Importer::default();
    importer.file(json).map_err(|r| r.message())?;
    Ok(importer.report)
}

/// Reads a MISP feed directory: `manifest.json` and the `<uuid>.json` of each event it lists. An
/// event file that is missing, too large or not MISP JSON is reported as skipped (its uuid as the
/// source id); only a missing or unreadable manifest, or a feed over the limits, is an error.
pub fn import_feed_dir(dir: &Path) -> Result<ImportReport, String> {
    let manifest_path = dir.join("manifest.json");
    let bytes = read_bounded(&manifest_path).map_err(|e| match e {
        ReadError::Missing => format!(
            "{} has no manifest.json: give the directory of a MISP feed (manifest.json and <uuid>.json files)",
            dir.display()
        ),
        ReadError::TooLarge => {
            format!("{} is over {FILE_BYTES_MAX} bytes: this is no MISP feed", manifest_path.display())
        }
        ReadError::Io(e) => format!("cannot read {}: {e}", manifest_path.display()),
    })?;
    let manifest: Value = serde_json::from_slice(&bytes)
        .map_err(|e| format!("{} is not JSON ({e}): is this a MISP feed?", manifest_path.display()))?;
    let Some(entries) = manifest.as_object() else {
        return Err(format!("{} is not a JSON object of event uuids: is this a MISP feed?", manifest_path.display()));
    };
    if entries.len() > EVENTS_PER_IMPORT_MAX {
        return Err(format!(
            "the manifest lists {} events: at most {EVENTS_PER_IMPORT_MAX} are imported at once; \
             import the feed in parts (a directory per part, each with its own manifest.json)",
            entries.len()
        ));
    }
    let mut importer = Importer::default();
    let mut keys: Vec<&String> = entries.keys().collect();
    keys.sort();
    for key in keys {
        importer.feed_event(dir, key)?;
    }
    Ok(importer.report)
}

/// Builds a MISP feed from indicator views: one event per origin and UTC day of `created`.
///
/// - Event uuid: UUIDv5 of `misp-event:<origin>:<day>`; `info` `ctix <origin> <day>`; `Orgc` and
///   `Org` the origin, uuid from `misp-org:<origin>`; `date` the day; `timestamp` the latest
///   attribute's; `publish_timestamp` `now_ms` (never before `timestamp`); `published`;
///   `analysis` 2 (completed: a signed indicator is a finished assessment); `threat_level_id` 4
///   (undefined: ctix has no threat level).
/// - The event's tag and `distribution` follow its most restrictive attribute TLP, so that tools
///   which read only event tags (MISP's feed filter rules, many scripts) never take an amber
///   attribute for clear. Distribution: clear → 3 (all communities), green → 2 (connected
///   communities), amber → 1 (this community), amber+strict and red → 0 (your organisation).
///   A MISP pulling the feed replaces it with the feed's own setting; it matters when the files
///   are imported as MISP JSON.
/// - Attribute uuid: UUIDv5 of `misp-attribute:<entry id>`. ipv4, ipv6, cidr → `ip-dst`; domain →
///   `domain`; url → `url` (Network activity); email → `email-src`; md5, sha1, sha256, filename →
///   the same (Payload delivery); cve → `vulnerability` (External analysis, `to_ids: false` as
///   MISP defaults it). `comment` is the description; `timestamp` the creation.
/// - Attribute tags: its TLP (`tlp:clear` … `tlp:red`), `ctix:recipient="lv"` per TLP:RED
///   recipient, `misp:confidence-level` (the nearest of 0, 25, 50, 75, 100), techniques as
///   `ctix:technique="T1566"` (a galaxy tag needs the technique's name, which ctix does not
///   carry) and kill-chain phases as `kill-chain:Delivery`, then the indicator's tags.
/// - A retracted indicator stays, with `deleted: true`, `to_ids: false`, a `ctix:retracted` tag,
///   and the retraction time as its timestamp: MISP applies an attribute update only when its
///   timestamp is newer, and soft-deletes the attribute a puller already holds.
/// - `valid_until` is not exported: MISP attributes have no expiry (MISP's decay models compute
///   their own). Views whose type, TLP or `created` do not parse are left out.
pub fn feed(views: &[IndicatorView], now_ms: u64) -> MispFeed {
    let mut days: BTreeMap<(String, String), BTreeMap<u64, Exported>> = BTreeMap::new();
    for view in views {
        if let Some(x) = Exported::of(view) {
            days.entry((view.origin.clone(), x.day.clone())).or_default().insert(view.seq, x);
        }
    }
    let mut manifest = Map::new();
    let mut events = BTreeMap::new();
    for ((origin, day), attributes) in days {
        let attributes: Vec<Exported> = attributes.into_values().collect();
        let (uuid, event, entry) = export_event(&origin, &day, &attributes, now_ms / 1000);
        manifest.insert(uuid.clone(), entry);
        events.insert(uuid, event);
    }
    let hashes_csv = hashes_csv(&events);
    MispFeed { manifest: Value::Object(manifest), hashes_csv, events }
}

/// `hashes.csv` as MISP's feed generator writes it: a line `<md5 of the value>,<event uuid>` per
/// attribute (ctix exports no composite `a|b` types, whose parts MISP would hash separately).
fn hashes_csv(events: &BTreeMap<String, Value>) -> String {
    use md5::{Digest, Md5};
    let mut out = String::new();
    for (uuid, event) in events {
        let attributes = event["Event"]["Attribute"].as_array().map(Vec::as_slice).unwrap_or_default();
        for value in attributes.iter().filter_map(|a| a["value"].as_str()) {
            out.push_str(&format!("{},{uuid}\n", hex::encode(Md5::digest(value.as_bytes()))));
        }
    }
    out
}

/// Writes a feed into `dir` (created if missing): every `<uuid>.json`, then `hashes.csv` when it
/// is not empty, then `manifest.json`. Each file is written under a temporary name and renamed,
/// and the manifest comes last, so that a MISP pulling meanwhile never reads half a file nor an
/// event the manifest lists but the directory lacks. Files of events no longer in the feed are
/// left in place (MISP reads only what the manifest lists). Returns the number of event files.
pub fn write_feed(dir: &Path, feed: &MispFeed) -> io::Result<usize> {
    fs::create_dir_all(dir)?;
    for (uuid, event) in &feed.events {
        // The name becomes a path: only a uuid may go there.
        if !is_uuid(uuid) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("event key {:?} is not a uuid: feed files are named <uuid>.json", label(uuid)),
            ));
        }
        write_atomic(dir, &format!("{uuid}.json"), &json_bytes(event)?)?;
    }
    if !feed.hashes_csv.is_empty() {
        write_atomic(dir, "hashes.csv", feed.hashes_csv.as_bytes())?;
    }
    write_atomic(dir, "manifest.json", &json_bytes(&feed.manifest)?)?;
    Ok(feed.events.len())
}

// ---------------------------------------------------------------------------------------------
// Import

/// Why a whole input was refused. `reason` is short and groups in a feed's skip summary;
/// `message` tells a user what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Reject {
    /// The bytes are not JSON (serde's reason).
    NotJson(String),
    /// JSON, but no event, REST answer or list of events.
    NotMisp,
    /// More events than `EVENTS_PER_IMPORT_MAX` in one document.
    TooManyEvents(usize),
    /// An event with more attributes than `ATTRIBUTES_PER_EVENT_MAX`.
    TooManyAttributes(usize),
    /// The import as a whole passed `ATTRIBUTES_PER_IMPORT_MAX`.
    ImportTooLarge,
}

impl Reject {
    fn reason(&self) -> String {
        match self {
            Reject::NotJson(_) | Reject::NotMisp => "event file is not MISP JSON".to_owned(),
            Reject::TooManyEvents(_) => format!("event file holds more than {EVENTS_PER_IMPORT_MAX} events"),
            Reject::TooManyAttributes(_) => format!("event has more than {ATTRIBUTES_PER_EVENT_MAX} attributes"),
            Reject::ImportTooLarge => self.message(),
        }
    }

    fn message(&self) -> String {
        match self {
            Reject::NotJson(e) => format!("not JSON ({e}): give a MISP event export (MISP JSON)"),
            Reject::NotMisp => "not MISP event JSON: expected {\"Event\": {...}}, a bare event, \
                                {\"response\": [...]} or a list of events"
                .to_owned(),
            Reject::TooManyEvents(n) => {
                format!("{n} events: at most {EVENTS_PER_IMPORT_MAX} are imported at once; export fewer per file")
            }
            Reject::TooManyAttributes(n) => {
                format!("an event has {n} attributes: at most {ATTRIBUTES_PER_EVENT_MAX}; split the event in MISP")
            }
            Reject::ImportTooLarge => {
                format!("more than {ATTRIBUTES_PER_IMPORT_MAX} attributes in one import: import the events in parts")
            }
        }
    }
}

/// Why a bounded file read failed.
enum ReadError {
    Missing,
    TooLarge,
    Io(io::Error),
}

/// Reads a whole file of at most `FILE_BYTES_MAX` bytes.
fn read_bounded(path: &Path) -> Result<Vec<u8>, ReadError> {
    let file = fs::File::open(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => ReadError::Missing,
        _ => ReadError::Io(e),
    })?;
    let mut bytes = Vec::new();
    // One byte over the limit is enough to know the file is too large.
    file.take(FILE_BYTES_MAX as u64 + 1).read_to_end(&mut bytes).map_err(ReadError::Io)?;
    if bytes.len() > FILE_BYTES_MAX {
        return Err(ReadError::TooLarge);
    }
    Ok(bytes)
}

/// The report being built, with the attributes counted so far against the per-import limit.
#[derive(Default)]
struct Importer {
    report: ImportReport,
    attributes: usize,
}

impl Importer {
    /// Imports one JSON document. Limits are checked before anything is added, so a refused
    /// document leaves the report as it was.
    fn file(&mut self, json: &[u8]) -> Result<(), Reject> {
        let root: Value = serde_json::from_slice(json).map_err(|e| Reject::NotJson(e.to_string()))?;
        self.document(&root)
    }

    fn document(&mut self, root: &Value) -> Result<(), Reject> {
        let events = events_of(root)?;
        if events.len() > EVENTS_PER_IMPORT_MAX {
            return Err(Reject::TooManyEvents(events.len()));
        }
        let counts: Vec<usize> = events.iter().map(|e| attribute_count(e)).collect();
        if let Some(&n) = counts.iter().find(|&&n| n > ATTRIBUTES_PER_EVENT_MAX) {
            return Err(Reject::TooManyAttributes(n));
        }
        let total = self.attributes + counts.iter().sum::<usize>();
        if total > ATTRIBUTES_PER_IMPORT_MAX {
            return Err(Reject::ImportTooLarge);
        }
        self.attributes = total;
        for (index, event) in events.into_iter().enumerate() {
            self.event(event, index);
        }
        Ok(())
    }

    /// Imports the event file of one manifest entry; only the per-import limit is fatal.
    fn feed_event(&mut self, dir: &Path, key: &str) -> Result<(), String> {
        if !is_uuid(key) {
            self.skip(label(key), "event", "manifest key is not an event uuid");
            return Ok(());
        }
        let reason = match read_bounded(&dir.join(format!("{key}.json"))) {
            Ok(bytes) => match self.file(&bytes) {
                Ok(()) => return Ok(()),
                Err(Reject::ImportTooLarge) => return Err(Reject::ImportTooLarge.message()),
                Err(reject) => reject.reason(),
            },
            Err(ReadError::Missing) => "event file missing".to_owned(),
            Err(ReadError::TooLarge) => format!("event file larger than {FILE_BYTES_MAX} bytes"),
            Err(ReadError::Io(_)) => "event file unreadable".to_owned(),
        };
        self.skip(key.to_owned(), "event", &reason);
        Ok(())
    }

    fn event(&mut self, event: &Map<String, Value>, index: usize) {
        let ctx = EventContext::of(event, index);
        for problem in &ctx.tags.problems {
            self.skip(ctx.id.clone(), "tag", problem);
        }
        if ctx.tags.no_sync {
            return self.skip(ctx.id.clone(), "event", "event is tagged misp:should-not-sync");
        }
        for (i, attribute) in list(event.get("Attribute")).iter().enumerate() {
            self.attribute(&ctx, attribute, &format!("Attribute[{i}]"), false);
        }
        for (i, object) in list(event.get("Object")).iter().enumerate() {
            let deleted = flag(object.get("deleted")) == Some(true);
            for (j, attribute) in list(object.get("Attribute")).iter().enumerate() {
                self.attribute(&ctx, attribute, &format!("Object[{i}].Attribute[{j}]"), deleted);
            }
        }
    }

    fn attribute(&mut self, ctx: &EventContext, attribute: &Value, position: &str, object_deleted: bool) {
        let fallback_id = || format!("{}/{position}", ctx.id);
        let Some(a) = attribute.as_object() else {
            return self.skip(fallback_id(), "attribute", "attribute is not a JSON object");
        };
        let source_id = text(a.get("uuid")).map(label).unwrap_or_else(fallback_id);
        let misp_type = text(a.get("type")).unwrap_or("");
        let kind = if misp_type.is_empty() { "attribute".to_owned() } else { label(misp_type) };
        match accept(ctx, a, misp_type, object_deleted) {
            Err(reason) => self.skip(source_id, &kind, &reason),
            Ok(accepted) => {
                self.report.items.push(Imported { source_id: source_id.clone(), input: accepted.input });
                if let Some(reason) = accepted.dropped {
                    self.skip(source_id.clone(), &kind, &reason);
                }
                for problem in accepted.tag_problems {
                    self.skip(source_id.clone(), "tag", &problem);
                }
            }
        }
    }

    fn skip(&mut self, source_id: String, kind: &str, reason: &str) {
        self.report.skipped.push(Skipped { source_id, kind: kind.to_owned(), reason: reason.to_owned() });
    }
}

/// An attribute taken: its submission, the skip reason of a composite part left out, and the
/// skip reasons of its own tags dropped (its event's are reported once, with the event).
struct Accepted {
    input: IndicatorInput,
    dropped: Option<String>,
    tag_problems: Vec<String>,
}

/// Takes one attribute, or gives the reason it is not imported.
fn accept(
    ctx: &EventContext,
    a: &Map<String, Value>,
    misp_type: &str,
    object_deleted: bool,
) -> Result<Accepted, String> {
    if flag(a.get("deleted")) == Some(true) {
        return Err("attribute is deleted".to_owned());
    }
    if object_deleted {
        return Err("object is deleted".to_owned());
    }
    let mapped = map_misp_type(misp_type, text(a.get("value")).unwrap_or(""))?;
    if mapped.itype != IndicatorType::Cve && flag(a.get("to_ids")) == Some(false) {
        return Err("to_ids is false (context, not for detection)".to_owned());
    }
    let own = TagSet::of(a);
    if own.no_sync {
        return Err("attribute is tagged misp:should-not-sync".to_owned());
    }
    if own.retracted {
        return Err("attribute is tagged ctix:retracted".to_owned());
    }
    let tags = own.over(&ctx.tags);
    let comment = text(a.get("comment")).unwrap_or("");
    let input = IndicatorInput {
        itype: mapped.itype.to_string(),
        value: mapped.value,
        tlp: tags.tlp.map(|t| t.to_string()).unwrap_or_default(),
        recipients: tags.recipients,
        confidence: tags.confidence,
        valid_from: time_of(a.get("first_seen")).or_else(|| ctx.valid_from.clone()),
        valid_until: None,
        tags: tags.tags,
        description: describe(&ctx.info, comment, mapped.note.as_deref()),
        techniques: tags.techniques,
    };
    let tag_problems = own.problems.into_iter().chain(tags.problems).collect();
    Ok(Accepted { input, dropped: mapped.dropped, tag_problems })
}

/// The events of a MISP JSON document, in order.
fn events_of(root: &Value) -> Result<Vec<&Map<String, Value>>, Reject> {
    match root {
        Value::Array(list) => list.iter().map(event_of).collect(),
        Value::Object(map) => match map.get("response") {
            Some(Value::Array(list)) => list.iter().map(event_of).collect(),
            Some(response @ Value::Object(_)) => Ok(vec![event_of(response)?]),
            _ => Ok(vec![event_of(root)?]),
        },
        _ => Err(Reject::NotMisp),
    }
}

/// `{"Event": {…}}` or a bare event object.
fn event_of(value: &Value) -> Result<&Map<String, Value>, Reject> {
    let map = value.as_object().ok_or(Reject::NotMisp)?;
    if let Some(inner) = map.get("Event") {
        return inner.as_object().ok_or(Reject::NotMisp);
    }
    let looks_like_event = ["Attribute", "Object", "info", "uuid"].iter().any(|k| map.contains_key(*k));
    if looks_like_event { Ok(map) } else { Err(Reject::NotMisp) }
}

fn attribute_count(event: &Map<String, Value>) -> usize {
    let in_objects: usize = list(event.get("Object")).iter().map(|o| list(o.get("Attribute")).len()).sum();
    list(event.get("Attribute")).len() + in_objects
}

/// What an attribute inherits from its event.
struct EventContext {
    /// The event's uuid, or its position when it has none.
    id: String,
    info: String,
    /// The event's `date` as an RFC 3339 time, if it parses.
    valid_from: Option<String>,
    tags: TagSet,
}

impl EventContext {
    fn of(event: &Map<String, Value>, index: usize) -> EventContext {
        EventContext {
            id: text(event.get("uuid")).map(label).unwrap_or_else(|| format!("event[{index}]")),
            info: text(event.get("info")).unwrap_or("").trim().to_owned(),
            valid_from: time_of(event.get("date")),
            tags: TagSet::of(event),
        }
    }
}

/// What an attribute's type and value become in ctix.
#[derive(Debug, PartialEq, Eq)]
struct Mapped {
    itype: IndicatorType,
    value: String,
    /// Context from a composite value for the description (`file name: invoice.exe`).
    note: Option<String>,
    /// The skip reason for the part of a composite value not imported.
    dropped: Option<String>,
}

/// Maps a MISP attribute type and value to a ctix type and value (normalised later by the
/// model), or gives the skip reason.
fn map_misp_type(misp_type: &str, value: &str) -> Result<Mapped, String> {
    let plain = |itype| Ok(Mapped { itype, value: value.trim().to_owned(), note: None, dropped: None });
    let first = value.split_once('|').map_or(value, |(a, _)| a).trim();
    match misp_type {
        "ip-dst" | "ip-src" => plain(ip_type(value)),
        "ip-dst|port" | "ip-src|port" => {
            Ok(Mapped { itype: ip_type(first), value: first.to_owned(), note: None, dropped: None })
        }
        "domain" | "hostname" => plain(IndicatorType::Domain),
        "hostname|port" => {
            Ok(Mapped { itype: IndicatorType::Domain, value: first.to_owned(), note: None, dropped: None })
        }
        "domain|ip" => Ok(Mapped {
            itype: IndicatorType::Domain,
            value: first.to_owned(),
            note: None,
            dropped: Some("composite domain|ip: ip part not imported".to_owned()),
        }),
        "url" => plain(IndicatorType::Url),
        "email" | "email-src" | "email-dst" | "email-reply-to" => plain(IndicatorType::Email),
        "md5" => plain(IndicatorType::Md5),
        "sha1" => plain(IndicatorType::Sha1),
        "sha256" => plain(IndicatorType::Sha256),
        "filename" => plain(IndicatorType::Filename),
        "vulnerability" => plain(IndicatorType::Cve),
        "filename|md5" | "malware-sample" => file_hash(misp_type, value, IndicatorType::Md5),
        "filename|sha1" => file_hash(misp_type, value, IndicatorType::Sha1),
        "filename|sha256" => file_hash(misp_type, value, IndicatorType::Sha256),
        other => Err(format!("unsupported attribute type {}", label(other))),
    }
}

/// `ip-src`/`ip-dst` hold IPv4, IPv6 and networks alike.
fn ip_type(value: &str) -> IndicatorType {
    if value.contains('/') {
        IndicatorType::Cidr
    } else if value.contains(':') {
        IndicatorType::Ipv6
    } else {
        IndicatorType::Ipv4
    }
}

/// `filename|<hash>`: the hash is the indicator; the name (which may itself contain `|` on Unix)
/// goes to the description, and its omission is reported.
fn file_hash(misp_type: &str, value: &str, itype: IndicatorType) -> Result<Mapped, String> {
    let Some((name, hash)) = value.rsplit_once('|') else {
        return Err(format!("composite {} value without '|'", label(misp_type)));
    };
    let name = name.trim();
    Ok(Mapped {
        itype,
        value: hash.trim().to_owned(),
        note: (!name.is_empty()).then(|| format!("file name: {name}")),
        dropped: Some(format!("composite {}: filename part not imported", label(misp_type))),
    })
}

/// The meaning of a tag list (an event's or an attribute's).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct TagSet {
    tlp: Option<Tlp>,
    recipients: Vec<String>,
    confidence: Option<i64>,
    tags: Vec<String>,
    techniques: Vec<String>,
    no_sync: bool,
    retracted: bool,
    /// Skip reasons for tags dropped (too long, too many).
    problems: Vec<String>,
}

impl TagSet {
    /// Reads `Tag` and the tag names of `Galaxy` clusters (MISP lists galaxies there, and not
    /// always among the tags too).
    fn of(owner: &Map<String, Value>) -> TagSet {
        let mut set = TagSet::default();
        for tag in list(owner.get("Tag")) {
            let shared = flag(tag.get("exportable")) != Some(false) && flag(tag.get("local")) != Some(true);
            if let (true, Some(name)) = (shared, text(tag.get("name"))) {
                set.add(name);
            }
        }
        for galaxy in list(owner.get("Galaxy")) {
            for cluster in list(galaxy.get("GalaxyCluster")) {
                if let Some(name) = text(cluster.get("tag_name")) {
                    set.add(name);
                }
            }
        }
        set.finish();
        set
    }

    fn add(&mut self, raw: &str) {
        let name = raw.trim().to_lowercase();
        if name.is_empty() {
            return;
        }
        if let Some(tlp) = name.strip_prefix("tlp:").and_then(|level| level.parse::<Tlp>().ok()) {
            self.tlp = self.tlp.max(Some(tlp));
        } else if name == "misp:should-not-sync" {
            self.no_sync = true;
        } else if name == "ctix:retracted" {
            self.retracted = true;
        } else if let Some(c) = confidence_of(&name) {
            self.confidence = Some(self.confidence.map_or(c, |old| old.min(c)));
        } else if let Some(recipient) = machine_value(&name, "ctix:recipient") {
            self.recipients.push(recipient.to_owned());
        } else if let Some(technique) = technique_of(&name) {
            self.techniques.push(technique);
        } else if name.len() > TAG_BYTES_MAX {
            self.problems.push(format!("tag longer than {TAG_BYTES_MAX} bytes dropped"));
        } else if name.chars().any(char::is_control) {
            self.problems.push("tag with control characters dropped".to_owned());
        } else {
            self.tags.push(name);
        }
    }

    /// Removes duplicates (keeping the first) and enforces the model's counts.
    fn finish(&mut self) {
        dedup_in_order(&mut self.recipients);
        dedup_in_order(&mut self.tags);
        dedup_in_order(&mut self.techniques);
        if self.tags.len() > TAGS_MAX {
            self.tags.truncate(TAGS_MAX);
            self.problems.push(format!("more than {TAGS_MAX} tags: the rest dropped"));
        }
        if self.techniques.len() > TECHNIQUES_MAX {
            self.techniques.truncate(TECHNIQUES_MAX);
            self.problems.push(format!("more than {TECHNIQUES_MAX} techniques: the rest dropped"));
        }
    }

    /// An attribute's tags over its event's: its own TLP, recipients and confidence win; tags
    /// and techniques add up. `problems` holds only those the union itself caused.
    fn over(&self, event: &TagSet) -> TagSet {
        let chain = |a: &[String], b: &[String]| a.iter().chain(b).cloned().collect::<Vec<_>>();
        let mut set = TagSet {
            tlp: self.tlp.or(event.tlp),
            recipients: if self.recipients.is_empty() { event.recipients.clone() } else { self.recipients.clone() },
            confidence: self.confidence.or(event.confidence),
            tags: chain(&self.tags, &event.tags),
            techniques: chain(&self.techniques, &event.techniques),
            no_sync: false,
            retracted: false,
            problems: Vec::new(),
        };
        set.finish();
        set
    }
}

/// `namespace:predicate="value"` → `value` for the given `namespace:predicate`.
fn machine_value<'a>(tag: &'a str, prefix: &str) -> Option<&'a str> {
    let value = tag.strip_prefix(prefix)?.strip_prefix('=')?;
    Some(value.trim().trim_matches('"').trim())
}

/// Confidence 0-100 from MISP's `misp:confidence-level` taxonomy (its numerical values) or the
/// Admiralty scale's information credibility (the values STIX 2.1 appendix A maps it to; 6,
/// "cannot be judged", sets none).
fn confidence_of(tag: &str) -> Option<i64> {
    if let Some(level) = machine_value(tag, "misp:confidence-level") {
        return match level {
            "completely-confident" => Some(100),
            "usually-confident" => Some(75),
            "fairly-confident" | "confidence-cannot-be-evalued" => Some(50),
            "rarely-confident" => Some(25),
            "unconfident" => Some(0),
            _ => None,
        };
    }
    match machine_value(tag, "admiralty-scale:information-credibility")? {
        "1" => Some(100),
        "2" => Some(80),
        "3" => Some(60),
        "4" => Some(40),
        "5" => Some(20),
        _ => None,
    }
}

/// MISP's kill-chain taxonomy values (note its British "Weaponisation") by ctix phase.
const KILL_CHAIN_TAGS: [(&str, &str); 7] = [
    ("reconnaissance", "Reconnaissance"),
    ("weaponization", "Weaponisation"),
    ("delivery", "Delivery"),
    ("exploitation", "Exploitation"),
    ("installation", "Installation"),
    ("command-and-control", "Command and Control"),
    ("actions-on-objectives", "Actions on Objectives"),
];
const _: () = assert!(KILL_CHAIN_TAGS.len() == KILL_CHAIN_PHASES.len());

/// A technique or kill-chain phase from a lower-cased tag: `ctix:technique="t1566"`,
/// `kill-chain:delivery`, or an ATT&CK galaxy tag ending in ` - t1566.001"`.
fn technique_of(tag: &str) -> Option<String> {
    if let Some(id) = machine_value(tag, "ctix:technique") {
        return Some(if is_attack_id(id) { id.to_ascii_uppercase() } else { id.to_owned() });
    }
    if let Some(phase) = tag.strip_prefix("kill-chain:") {
        let phase = phase.trim().replace(' ', "-");
        let phase = if phase == "weaponisation" { "weaponization".to_owned() } else { phase };
        return KILL_CHAIN_PHASES.contains(&phase.as_str()).then_some(phase);
    }
    let (galaxy, cluster) = tag.strip_prefix("misp-galaxy:")?.split_once('=')?;
    if !galaxy.ends_with("attack-pattern") {
        return None;
    }
    let (_, id) = cluster.trim_matches('"').rsplit_once(" - ")?;
    is_attack_id(id).then(|| id.to_ascii_uppercase())
}

/// `t1566` or `t1566.001` (lower-cased ATT&CK technique ids).
fn is_attack_id(id: &str) -> bool {
    let b = id.as_bytes();
    let digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    match b.len() {
        5 => b[0] == b't' && digits(&b[1..]),
        9 => b[0] == b't' && digits(&b[1..5]) && b[5] == b'.' && digits(&b[6..]),
        _ => false,
    }
}

/// `info: comment; note`, each part only when present, cut to the model's limit.
fn describe(info: &str, comment: &str, note: Option<&str>) -> String {
    let detail: Vec<&str> = [comment.trim(), note.unwrap_or("")].into_iter().filter(|s| !s.is_empty()).collect();
    let detail = detail.join("; ");
    let text = match (info.is_empty(), detail.is_empty()) {
        (false, false) => format!("{info}: {detail}"),
        (false, true) => info.to_owned(),
        (true, _) => detail,
    };
    truncate(text, DESCRIPTION_BYTES_MAX)
}

/// Cuts `s` to at most `max` bytes at a character boundary, marking the cut with `…`.
fn truncate(mut s: String, max: usize) -> String {
    if s.len() <= max {
        return s;
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    s.push('…');
    s
}

/// A MISP date or time (`2026-11-27`, `2026-11-25T08:15:00.000000+00:00`) as RFC 3339 with ms.
/// Anything else, relative durations included, is no time here.
fn time_of(value: Option<&Value>) -> Option<String> {
    let s = text(value)?.trim();
    let b = s.as_bytes();
    let dated = b.len() >= 10 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-';
    dated.then(|| parse_time(s, 0).ok().map(format_time)).flatten()
}

/// The entries of a JSON list; a lone object counts as a list of one, anything else as empty.
fn list(value: Option<&Value>) -> &[Value] {
    match value {
        Some(Value::Array(items)) => items,
        Some(object @ Value::Object(_)) => std::slice::from_ref(object),
        _ => &[],
    }
}

fn text(value: Option<&Value>) -> Option<&str> {
    value?.as_str()
}

/// A MISP boolean, which older exports write as `0`/`1` or `"0"`/`"1"`.
fn flag(value: Option<&Value>) -> Option<bool> {
    match value? {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => n.as_i64().map(|n| n != 0),
        Value::String(s) => match s.trim() {
            "1" | "true" | "True" => Some(true),
            "0" | "false" | "False" | "" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// A foreign string fit for a skip entry: control characters replaced, length bounded.
fn label(s: &str) -> String {
    let mut out: String =
        s.chars().take(LABEL_CHARS_MAX).map(|c| if c.is_control() { '\u{fffd}' } else { c }).collect();
    if s.chars().nth(LABEL_CHARS_MAX).is_some() {
        out.push('…');
    }
    out
}

fn dedup_in_order(items: &mut Vec<String>) {
    let mut seen = BTreeSet::new();
    items.retain(|item| seen.insert(item.clone()));
}

/// A uuid in the hyphenated form MISP names feed files by (and nothing a path could abuse).
fn is_uuid(s: &str) -> bool {
    s.len() == 36 && s.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') && Uuid::try_parse(s).is_ok()
}

// ---------------------------------------------------------------------------------------------
// Export

/// One view as a MISP attribute, with what its event needs to know.
struct Exported {
    /// UTC day of `created`, `YYYY-MM-DD`.
    day: String,
    /// Seconds: creation, or the retraction for a retracted indicator.
    timestamp: u64,
    tlp: Tlp,
    attribute: Value,
}

impl Exported {
    fn of(view: &IndicatorView) -> Option<Exported> {
        let itype: IndicatorType = view.itype.parse().ok()?;
        let tlp: Tlp = view.tlp.parse().ok()?;
        let created_ms = parse_time(&view.created, 0).ok()?;
        let day = format_time(created_ms).get(..10)?.to_owned();
        let timestamp = changed_ms(view, created_ms) / 1000;
        let (misp_type, category) = misp_type_of(itype);
        let attribute = json!({
            "uuid": derived_uuid(&format!("misp-attribute:{}", view.id)),
            "type": misp_type,
            "category": category,
            "value": view.value,
            "to_ids": itype != IndicatorType::Cve && !view.retracted,
            "deleted": view.retracted,
            "disable_correlation": false,
            "distribution": "5",
            "comment": comment_of(view),
            "timestamp": timestamp.to_string(),
            "Tag": attribute_tags(view, tlp),
        });
        Some(Exported { day, timestamp, tlp, attribute })
    }
}

/// When a view last changed: its retraction if retracted, else its creation. A retraction of
/// unknown time counts one second after creation, so that a MISP holding the attribute still
/// takes the update.
fn changed_ms(view: &IndicatorView, created_ms: u64) -> u64 {
    if !view.retracted {
        return created_ms;
    }
    let at = view.retracted_at.as_deref().and_then(|t| parse_time(t, 0).ok());
    at.unwrap_or(created_ms + 1000).max(created_ms)
}

/// MISP type and category of each ctix type.
fn misp_type_of(itype: IndicatorType) -> (&'static str, &'static str) {
    match itype {
        IndicatorType::Ipv4 | IndicatorType::Ipv6 | IndicatorType::Cidr => ("ip-dst", "Network activity"),
        IndicatorType::Domain => ("domain", "Network activity"),
        IndicatorType::Url => ("url", "Network activity"),
        IndicatorType::Email => ("email-src", "Payload delivery"),
        IndicatorType::Md5 => ("md5", "Payload delivery"),
        IndicatorType::Sha1 => ("sha1", "Payload delivery"),
        IndicatorType::Sha256 => ("sha256", "Payload delivery"),
        IndicatorType::Filename => ("filename", "Payload delivery"),
        IndicatorType::Cve => ("vulnerability", "External analysis"),
    }
}

fn comment_of(view: &IndicatorView) -> String {
    match (view.retracted, view.retraction_reason.is_empty()) {
        (true, false) => format!("[retracted: {}] {}", view.retraction_reason, view.description).trim_end().to_owned(),
        (true, true) => format!("[retracted] {}", view.description).trim_end().to_owned(),
        (false, _) => view.description.clone(),
    }
}

/// The tag names of one attribute, in a fixed order and without repeats (MISP's schema wants
/// each tag once).
fn attribute_tags(view: &IndicatorView, tlp: Tlp) -> Vec<Value> {
    let mut names = vec![tlp_tag(tlp).to_owned()];
    names.extend(view.recipients.iter().map(|r| format!("ctix:recipient=\"{r}\"")));
    names.push(format!("misp:confidence-level=\"{}\"", confidence_level(view.confidence)));
    names.extend(view.techniques.iter().map(|t| technique_tag(t)));
    names.extend(view.tags.iter().cloned());
    if view.retracted {
        names.push("ctix:retracted".to_owned());
    }
    dedup_in_order(&mut names);
    names.iter().map(|name| tag_json(name, true)).collect()
}

fn tlp_tag(tlp: Tlp) -> &'static str {
    match tlp {
        Tlp::Clear => "tlp:clear",
        Tlp::Green => "tlp:green",
        Tlp::Amber => "tlp:amber",
        Tlp::AmberStrict => "tlp:amber+strict",
        Tlp::Red => "tlp:red",
    }
}

/// The colours of MISP's TLP taxonomy.
fn tag_colour(name: &str) -> &'static str {
    match name {
        "tlp:clear" => "#ffffff",
        "tlp:green" => "#339900",
        "tlp:amber" | "tlp:amber+strict" => "#FFC000",
        "tlp:red" => "#CC0033",
        _ => TAG_COLOUR,
    }
}

/// A tag as MISP writes it in an event (`exportable`) or in a manifest (without).
fn tag_json(name: &str, in_event: bool) -> Value {
    match in_event {
        true => json!({ "colour": tag_colour(name), "exportable": true, "name": name }),
        false => json!({ "colour": tag_colour(name), "name": name }),
    }
}

/// The `misp:confidence-level` value nearest to a 0-100 confidence.
fn confidence_level(confidence: u8) -> &'static str {
    match (u32::from(confidence) + 12) / 25 {
        0 => "unconfident",
        1 => "rarely-confident",
        2 => "fairly-confident",
        3 => "usually-confident",
        _ => "completely-confident",
    }
}

fn technique_tag(technique: &str) -> String {
    match KILL_CHAIN_TAGS.iter().find(|(phase, _)| *phase == technique) {
        Some((_, name)) => format!("kill-chain:{name}"),
        None => format!("ctix:technique=\"{technique}\""),
    }
}

/// MISP distribution levels by TLP (see [`feed`]).
fn distribution(tlp: Tlp) -> &'static str {
    match tlp {
        Tlp::Clear => "3",
        Tlp::Green => "2",
        Tlp::Amber => "1",
        Tlp::AmberStrict | Tlp::Red => "0",
    }
}

/// One event and its manifest entry: `(uuid, {"Event": …}, entry)`.
fn export_event(origin: &str, day: &str, attributes: &[Exported], now_s: u64) -> (String, Value, Value) {
    let uuid = derived_uuid(&format!("misp-event:{origin}:{day}"));
    let org = json!({ "name": origin, "uuid": derived_uuid(&format!("misp-org:{origin}")) });
    let timestamp = attributes.iter().map(|a| a.timestamp).max().unwrap_or(0);
    let tlp = attributes.iter().map(|a| a.tlp).max().unwrap_or(Tlp::Amber);
    let info = format!("ctix {origin} {day}");
    let event = json!({ "Event": {
        "uuid": uuid,
        "info": info,
        "date": day,
        "threat_level_id": "4",
        "analysis": "2",
        "distribution": distribution(tlp),
        "published": true,
        "timestamp": timestamp.to_string(),
        "publish_timestamp": now_s.max(timestamp).to_string(),
        "Orgc": org,
        "Org": org,
        "Tag": [tag_json(tlp_tag(tlp), true)],
        "Attribute": attributes.iter().map(|a| a.attribute.clone()).collect::<Vec<_>>(),
    }});
    // As PyMISP's feed generator writes it (numbers as numbers, tags without `exportable`).
    let entry = json!({
        "Orgc": org,
        "Tag": [tag_json(tlp_tag(tlp), false)],
        "info": info,
        "date": day,
        "analysis": 2,
        "threat_level_id": 4,
        "timestamp": timestamp,
    });
    (uuid, event, entry)
}

fn derived_uuid(name: &str) -> String {
    Uuid::new_v5(&UUID_NAMESPACE, name.as_bytes()).to_string()
}

fn json_bytes(value: &Value) -> io::Result<Vec<u8>> {
    let mut bytes = serde_json::to_vec(value).map_err(io::Error::other)?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// Writes `dir/name` through a temporary file and a rename, so readers see the old or the new
/// file, never a part.
fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    let tmp = dir.join(format!(".{name}.tmp"));
    fs::write(&tmp, bytes)?;
    fs::rename(&tmp, dir.join(name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Indicator;

    /// 2026-11-29T12:00:00Z, after every sample's creation.
    const NOW_MS: u64 = 1_795_953_600_000;

    /// One value of each ctix type, in normal form.
    const SAMPLES: [(IndicatorType, &str); 11] = [
        (IndicatorType::Ipv4, "203.0.113.7"),
        (IndicatorType::Ipv6, "2001:db8::7"),
        (IndicatorType::Cidr, "198.51.100.0/24"),
        (IndicatorType::Domain, "evil.example"),
        (IndicatorType::Url, "https://evil.example/login.php?id=1"),
        (IndicatorType::Email, "phish@evil.example"),
        (IndicatorType::Md5, "d41d8cd98f00b204e9800998ecf8427e"),
        (IndicatorType::Sha1, "da39a3ee5e6b4b0d3255bfef95601890afd80709"),
        (IndicatorType::Sha256, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        (IndicatorType::Filename, "invoice.pdf.exe"),
        (IndicatorType::Cve, "CVE-2021-44228"),
    ];

    fn view(origin: &str, seq: u64, itype: IndicatorType, value: &str, created: &str) -> IndicatorView {
        IndicatorView {
            id: format!("{origin}:{seq}"),
            origin: origin.to_owned(),
            seq,
            itype: itype.to_string(),
            value: value.to_owned(),
            tlp: "amber".to_owned(),
            recipients: Vec::new(),
            confidence: 75,
            valid_from: created.to_owned(),
            valid_until: None,
            tags: vec!["phishing".to_owned()],
            description: format!("sample {seq}"),
            techniques: Vec::new(),
            created: created.to_owned(),
            content_id: "00".repeat(32),
            retracted: false,
            retracted_by: None,
            retracted_at: None,
            retraction_reason: String::new(),
            sightings: 0,
            sighting_reports: Vec::new(),
            cursor: seq,
        }
    }

    /// Every type, every TLP (red with recipients), techniques, two origins, two days and a
    /// retraction: the feed the PyMISP check loads.
    fn sample_views() -> Vec<IndicatorView> {
        let tlps = ["clear", "green", "amber", "amber+strict", "red"];
        let mut views: Vec<IndicatorView> = SAMPLES
            .iter()
            .enumerate()
            .map(|(i, (itype, value))| {
                let mut v = view("ee", i as u64 + 1, *itype, value, "2026-11-29T08:00:00.000Z");
                v.tlp = tlps[i % tlps.len()].to_owned();
                if v.tlp == "red" {
                    v.recipients = vec!["lt".to_owned(), "lv".to_owned()];
                }
                v
            })
            .collect();
        views[0].techniques = vec!["T1566.001".to_owned(), "delivery".to_owned()];
        views[1].tags = vec!["apt-x".to_owned(), "phishing".to_owned()];
        let mut old = view("ee", 40, IndicatorType::Domain, "old.example", "2026-11-28T23:59:59.999Z");
        old.tlp = "green".to_owned();
        views.push(old);
        let mut retracted = view("lv", 7, IndicatorType::Ipv4, "192.0.2.99", "2026-11-29T09:00:00.000Z");
        retracted.retracted = true;
        retracted.retracted_by = Some("lv:9".to_owned());
        retracted.retracted_at = Some("2026-11-29T10:30:00.000Z".to_owned());
        retracted.retraction_reason = "sinkhole, not malicious".to_owned();
        views.push(retracted);
        views
    }

    fn single_event(feed: &MispFeed) -> &Value {
        assert_eq!(feed.events.len(), 1, "{:?}", feed.events.keys());
        &feed.events.values().next().unwrap()["Event"]
    }

    fn import_value(event: &Value) -> ImportReport {
        import_event(&serde_json::to_vec(event).unwrap()).unwrap()
    }

    fn fixture() -> &'static [u8] {
        include_bytes!("../../tests/data/misp/event-phishing.json")
    }

    fn reasons(report: &ImportReport) -> Vec<(String, String)> {
        report.skipped.iter().map(|s| (s.kind.clone(), s.reason.clone())).collect()
    }

    #[test]
    fn every_ctix_type_maps_to_misp_and_back() {
        let expected = [
            ("ip-dst", "Network activity", true),
            ("ip-dst", "Network activity", true),
            ("ip-dst", "Network activity", true),
            ("domain", "Network activity", true),
            ("url", "Network activity", true),
            ("email-src", "Payload delivery", true),
            ("md5", "Payload delivery", true),
            ("sha1", "Payload delivery", true),
            ("sha256", "Payload delivery", true),
            ("filename", "Payload delivery", true),
            ("vulnerability", "External analysis", false),
        ];
        for ((itype, value), (misp_type, category, to_ids)) in SAMPLES.iter().zip(expected) {
            let feed = feed(&[view("ee", 1, *itype, value, "2026-11-29T08:00:00.000Z")], NOW_MS);
            let attribute = &single_event(&feed)["Attribute"][0];
            assert_eq!(attribute["type"], misp_type, "{itype}");
            assert_eq!(attribute["category"], category, "{itype}");
            assert_eq!(attribute["to_ids"], to_ids, "{itype}");
            assert_eq!(attribute["value"], *value, "{itype}");

            let report = import_value(single_event(&feed));
            assert!(report.skipped.is_empty(), "{itype}: {:?}", report.skipped);
            let input = &report.items[0].input;
            assert_eq!((input.itype.as_str(), input.value.as_str()), (itype.as_str(), *value));
            let ind = Indicator::from_input(input, NOW_MS).unwrap_or_else(|e| panic!("{itype}: {e}"));
            assert_eq!(ind.value, *value, "the model keeps the normal form");
        }
    }

    #[test]
    fn misp_types_map_to_ctix_types() {
        let check = |misp_type: &str, value: &str, itype: IndicatorType, expect: &str| {
            let m = map_misp_type(misp_type, value).unwrap_or_else(|e| panic!("{misp_type}: {e}"));
            assert_eq!((m.itype, m.value.as_str()), (itype, expect), "{misp_type} {value}");
            m
        };
        check("ip-src", " 192.0.2.1 ", IndicatorType::Ipv4, "192.0.2.1");
        check("ip-dst", "2001:db8::1", IndicatorType::Ipv6, "2001:db8::1");
        check("ip-dst", "10.0.0.0/8", IndicatorType::Cidr, "10.0.0.0/8");
        check("ip-src", "2001:db8::/32", IndicatorType::Cidr, "2001:db8::/32");
        let m = check("ip-dst|port", "192.0.2.1|443", IndicatorType::Ipv4, "192.0.2.1");
        assert_eq!(m.dropped, None, "a port is no indicator: nothing to report");
        check("ip-src|port", "2001:db8::1|22", IndicatorType::Ipv6, "2001:db8::1");
        check("hostname", "a.example", IndicatorType::Domain, "a.example");
        check("hostname|port", "a.example|8080", IndicatorType::Domain, "a.example");
        let m = check("domain|ip", "a.example|192.0.2.1", IndicatorType::Domain, "a.example");
        assert_eq!(m.dropped.as_deref(), Some("composite domain|ip: ip part not imported"));
        for t in ["email", "email-src", "email-dst", "email-reply-to"] {
            check(t, "x@a.example", IndicatorType::Email, "x@a.example");
        }
        let m = check("filename|sha256", "a|b.exe|AB12", IndicatorType::Sha256, "AB12");
        assert_eq!(m.note.as_deref(), Some("file name: a|b.exe"));
        assert_eq!(m.dropped.as_deref(), Some("composite filename|sha256: filename part not imported"));
        check("filename|sha1", "x.exe|ab", IndicatorType::Sha1, "ab");
        check("malware-sample", "x.exe|cd", IndicatorType::Md5, "cd");
        check("vulnerability", "CVE-2021-44228", IndicatorType::Cve, "CVE-2021-44228");
        assert_eq!(map_misp_type("regkey", "HKLM\\x"), Err("unsupported attribute type regkey".to_owned()));
        assert_eq!(map_misp_type("filename|md5", "nopipe"), Err("composite filename|md5 value without '|'".to_owned()));
        let long = map_misp_type(&"x".repeat(500), "v").unwrap_err();
        assert!(long.len() < 100, "a foreign type is quoted, not copied: {long}");
    }

    #[test]
    fn round_trip_preserves_type_value_tlp_tags() {
        let views = sample_views();
        let feed = feed(&views, NOW_MS);
        let mut imported = BTreeMap::new();
        let mut skipped = Vec::new();
        for event in feed.events.values() {
            let report = import_value(event);
            skipped.extend(report.skipped);
            imported.extend(report.items.into_iter().map(|i| (i.input.value.clone(), i.input)));
        }
        assert_eq!(
            reasons(&ImportReport { items: vec![], skipped }),
            [("ip-dst".into(), "attribute is deleted".into())]
        );
        for v in views.iter().filter(|v| !v.retracted) {
            let input = imported.get(&v.value).unwrap_or_else(|| panic!("{} lost", v.value));
            assert_eq!(input.itype, v.itype);
            assert_eq!(input.tlp, v.tlp, "{}", v.value);
            assert_eq!(input.recipients, v.recipients, "{}", v.value);
            assert_eq!(input.tags, v.tags, "{}", v.value);
            assert_eq!(input.techniques, v.techniques, "{}", v.value);
            assert_eq!(input.confidence, Some(i64::from(v.confidence)));
            assert!(input.description.ends_with(&v.description), "{:?}", input.description);
            let ind = Indicator::from_input(input, NOW_MS).unwrap_or_else(|e| panic!("{}: {e}", v.value));
            assert_eq!(ind.tlp.as_str(), v.tlp);
        }
    }

    #[test]
    fn confidence_goes_to_the_nearest_misp_level() {
        let cases = [(0, "unconfident"), (12, "unconfident"), (13, "rarely-confident"), (62, "fairly-confident")];
        let more = [
            (63, "usually-confident"),
            (87, "usually-confident"),
            (88, "completely-confident"),
            (100, "completely-confident"),
        ];
        for (c, level) in cases.into_iter().chain(more) {
            assert_eq!(confidence_level(c), level, "{c}");
        }
        assert_eq!(confidence_of("misp:confidence-level=\"rarely-confident\""), Some(25));
        assert_eq!(confidence_of("admiralty-scale:information-credibility=\"2\""), Some(80));
        assert_eq!(confidence_of("admiralty-scale:information-credibility=\"6\""), None);
    }

    #[test]
    fn techniques_come_from_galaxies_kill_chain_and_ctix_tags() {
        let check = |tag: &str| technique_of(&tag.to_lowercase());
        assert_eq!(check("misp-galaxy:mitre-attack-pattern=\"Phishing - T1566\""), Some("T1566".into()));
        let enterprise = "misp-galaxy:mitre-enterprise-attack-attack-pattern=\"Spearphishing Link - T1192\"";
        assert_eq!(check(enterprise), Some("T1192".into()));
        assert_eq!(check("misp-galaxy:mitre-intrusion-set=\"APT28 - G0007\""), None);
        assert_eq!(check("misp-galaxy:mitre-attack-pattern=\"Phishing - T15\""), None);
        assert_eq!(check("kill-chain:Command and Control"), Some("command-and-control".into()));
        assert_eq!(check("kill-chain:Weaponisation"), Some("weaponization".into()));
        assert_eq!(check("kill-chain:Lunch"), None);
        assert_eq!(check("ctix:technique=\"T1566.001\""), Some("T1566.001".into()));
        for (phase, _) in KILL_CHAIN_TAGS {
            assert_eq!(check(&technique_tag(phase)).as_deref(), Some(phase), "export and import agree");
        }
    }

    #[test]
    fn composite_unsupported_and_context_attributes_are_reported() {
        let event = json!({ "Event": { "uuid": "11111111-2222-4333-8444-555555555555", "info": "mixed",
            "Attribute": [
                { "uuid": "a-1", "type": "filename|md5", "to_ids": true,
                  "value": "invoice.exe|D41D8CD98F00B204E9800998ECF8427E" },
                { "uuid": "a-2", "type": "regkey", "to_ids": true, "value": "HKLM\\Run\\x" },
                { "uuid": "a-3", "type": "domain", "to_ids": false, "value": "bank.example" },
                { "uuid": "a-4", "type": "domain", "to_ids": "1", "deleted": true, "value": "gone.example" },
                { "type": "url", "value": "http://no-uuid.example/" },
                "not an attribute",
            ],
            "Object": [ { "deleted": true, "Attribute": [ { "uuid": "o-1", "type": "md5", "value": "00" } ] } ],
        }});
        let report = import_value(&event);
        let items: Vec<(&str, &str, &str)> = report
            .items
            .iter()
            .map(|i| (i.source_id.as_str(), i.input.itype.as_str(), i.input.value.as_str()))
            .collect();
        assert_eq!(
            items,
            [
                ("a-1", "md5", "D41D8CD98F00B204E9800998ECF8427E"),
                ("11111111-2222-4333-8444-555555555555/Attribute[4]", "url", "http://no-uuid.example/")
            ]
        );
        assert_eq!(report.items[0].input.description, "mixed: file name: invoice.exe");
        let skipped: Vec<(&str, &str, &str)> =
            report.skipped.iter().map(|s| (s.source_id.as_str(), s.kind.as_str(), s.reason.as_str())).collect();
        assert_eq!(
            skipped,
            [
                ("a-1", "filename|md5", "composite filename|md5: filename part not imported"),
                ("a-2", "regkey", "unsupported attribute type regkey"),
                ("a-3", "domain", "to_ids is false (context, not for detection)"),
                ("a-4", "domain", "attribute is deleted"),
                ("11111111-2222-4333-8444-555555555555/Attribute[5]", "attribute", "attribute is not a JSON object"),
                ("o-1", "md5", "object is deleted"),
            ]
        );
        assert_eq!(report.reasons().get("unsupported attribute type regkey"), Some(&1));
    }

    #[test]
    fn realistic_event_imports() {
        let report = import_event(fixture()).unwrap();
        let got: Vec<(&str, &str, &str)> = report
            .items
            .iter()
            .map(|i| (i.input.itype.as_str(), i.input.value.as_str(), i.input.tlp.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("ipv4", "203.0.113.45", "amber"),
                ("ipv6", "2001:db8:4:2::17", "green"),
                ("domain", "emta-tagastus.example", "green"),
                ("url", "https://emta-tagastus.example/login.php?id=77", "green"),
                ("email", "teavitus@emta-tagastus.example", "green"),
                ("sha1", "a94a8fe5ccb19ba61c4c0873d391e987982fbbd3", "green"),
                ("cve", "CVE-2023-38831", "green"),
                ("cidr", "198.51.100.0/24", "green"),
                ("md5", "5D41402ABC4B2A76B9719D911017C592", "green"),
                ("domain", "cdn.tagastus-update.example", "red"),
                ("ipv4", "192.0.2.200", "green"),
            ]
        );
        let mut skipped = reasons(&report);
        skipped.sort();
        let expected = [
            ("domain", "to_ids is false (context, not for detection)"),
            ("filename", "to_ids is false (context, not for detection)"),
            ("filename|sha1", "composite filename|sha1: filename part not imported"),
            ("link", "unsupported attribute type link"),
            ("regkey", "unsupported attribute type regkey"),
            ("sha256", "attribute is deleted"),
            ("size-in-bytes", "unsupported attribute type size-in-bytes"),
        ];
        assert_eq!(skipped, expected.map(|(k, r)| (k.to_owned(), r.to_owned())));

        let first = &report.items[0];
        assert_eq!(first.source_id, "a1c7e2d0-0001-4f6b-8c11-5d2e9f0a7b01");
        assert_eq!(first.input.description, "Phishing wave impersonating the tax board: C2 server");
        assert_eq!(first.input.valid_from.as_deref(), Some("2026-11-25T08:15:00.000Z"), "first_seen");
        assert_eq!(first.input.confidence, Some(75));
        assert_eq!(first.input.techniques, ["T1566.001", "delivery"]);
        assert_eq!(first.input.tags, ["circl:incident-classification=\"phishing\""], "the local tag stays home");
        assert_eq!(report.items[1].input.valid_from.as_deref(), Some("2026-11-27T00:00:00.000Z"), "event date");
        assert_eq!(report.items[2].input.tags, ["phishing", "circl:incident-classification=\"phishing\""]);
        assert!(report.items[5].input.description.ends_with("Attachment; file name: Tagastus_2026.pdf.exe"));
        let red = Indicator::from_input(&report.items[9].input, NOW_MS).unwrap_err();
        assert_eq!(red.field, "recipients", "TLP:RED without ctix recipients is refused, not widened");
        for item in report.items.iter().filter(|i| i.input.tlp != "red") {
            Indicator::from_input(&item.input, NOW_MS).unwrap_or_else(|e| panic!("{}: {e}", item.input.value));
        }
    }

    #[test]
    fn accepts_every_shape_misp_writes() {
        let root: Value = serde_json::from_slice(fixture()).unwrap();
        let event = root["Event"].clone();
        let expected = import_event(fixture()).unwrap();
        let shapes = [
            event.clone(),
            json!({ "response": [root.clone()] }),
            json!({ "response": root.clone() }),
            json!([root.clone()]),
            json!([event.clone()]),
        ];
        for shape in shapes {
            assert_eq!(import_value(&shape), expected, "{}", &shape.to_string()[..40]);
        }
        let two = import_value(&json!({ "response": [root.clone(), root] }));
        assert_eq!(two.items.len(), 2 * expected.items.len());
        assert_eq!(import_value(&json!([])), ImportReport::default());
    }

    #[test]
    fn refuses_what_is_not_misp() {
        for bad in [&b"not json"[..], b"42", b"{\"foo\": 1}", b"[1, 2]", b"{\"Event\": []}"] {
            let err = import_event(bad).unwrap_err();
            assert!(err.contains("MISP"), "{err}");
        }
        let mut huge = String::from("{\"Event\": {\"Attribute\": [");
        huge.push_str(&"{},".repeat(ATTRIBUTES_PER_EVENT_MAX));
        huge.push_str("{}]}}");
        let err = import_event(huge.as_bytes()).unwrap_err();
        assert!(err.contains(&format!("at most {ATTRIBUTES_PER_EVENT_MAX}")), "{err}");
    }

    #[test]
    fn should_not_sync_events_stay_home() {
        let mut root: Value = serde_json::from_slice(fixture()).unwrap();
        root["Event"]["Tag"].as_array_mut().unwrap().push(json!({ "name": "misp:should-not-sync" }));
        let report = import_value(&root);
        assert!(report.items.is_empty());
        assert_eq!(reasons(&report), [("event".to_owned(), "event is tagged misp:should-not-sync".to_owned())]);
    }

    #[test]
    fn overlong_tags_are_reported_not_fatal() {
        let long = format!("x{}", "y".repeat(TAG_BYTES_MAX));
        let event = json!({ "uuid": "e", "Tag": [{ "name": long }],
            "Attribute": [{ "uuid": "a", "type": "domain", "value": "a.example", "Tag": [{ "name": long }] }] });
        let report = import_value(&event);
        assert_eq!(report.items.len(), 1);
        let dropped = format!("tag longer than {TAG_BYTES_MAX} bytes dropped");
        let skipped: Vec<(&str, &str, &str)> =
            report.skipped.iter().map(|s| (s.source_id.as_str(), s.kind.as_str(), s.reason.as_str())).collect();
        assert_eq!(skipped, [("e", "tag", dropped.as_str()), ("a", "tag", dropped.as_str())]);
    }

    #[test]
    fn mangled_input_never_panics() {
        let root: Value = serde_json::from_slice(fixture()).unwrap();
        let mut paths = Vec::new();
        collect_paths(&root, &mut Vec::new(), &mut paths);
        let replacements = [json!(null), json!(-1), json!("1"), json!([]), json!({}), json!(true), json!("x|y")];
        let mut root = root;
        for path in &paths {
            for replacement in &replacements {
                // Swapped in and back out: cloning the tree for each case is what would take time.
                let Some(slot) = root.pointer_mut(path) else { continue };
                let original = std::mem::replace(slot, replacement.clone());
                let _ = Importer::default().document(&root);
                if let Some(slot) = root.pointer_mut(path) {
                    *slot = original;
                }
            }
        }
        assert!(paths.len() > 300, "{}", paths.len());
    }

    fn collect_paths(value: &Value, path: &mut Vec<String>, out: &mut Vec<String>) {
        out.push(path.iter().map(|p| format!("/{}", p.replace('~', "~0").replace('/', "~1"))).collect());
        let children: Vec<(String, &Value)> = match value {
            Value::Object(map) => map.iter().map(|(k, v)| (k.clone(), v)).collect(),
            Value::Array(items) => items.iter().enumerate().map(|(i, v)| (i.to_string(), v)).collect(),
            _ => Vec::new(),
        };
        for (key, child) in children {
            path.push(key);
            collect_paths(child, path, out);
            path.pop();
        }
    }

    #[test]
    fn events_are_per_origin_and_day() {
        let feed = feed(&sample_views(), NOW_MS);
        let infos: Vec<&str> = feed.events.values().map(|e| e["Event"]["info"].as_str().unwrap()).collect();
        let mut infos = infos;
        infos.sort();
        assert_eq!(infos, ["ctix ee 2026-11-28", "ctix ee 2026-11-29", "ctix lv 2026-11-29"]);
        for (uuid, event) in &feed.events {
            let e = &event["Event"];
            let entry = &feed.manifest[uuid];
            assert_eq!(e["uuid"], *uuid);
            assert_eq!(entry["info"], e["info"]);
            assert_eq!(entry["date"], e["date"]);
            assert_eq!(entry["Orgc"], e["Orgc"]);
            assert_eq!(entry["timestamp"].to_string(), e["timestamp"].as_str().unwrap());
            assert_eq!(entry["Tag"][0]["name"], e["Tag"][0]["name"]);
            let newest = e["Attribute"].as_array().unwrap().iter().map(|a| a["timestamp"].as_str().unwrap()).max();
            assert_eq!(e["timestamp"].as_str(), newest);
        }
        let today = feed.events.values().find(|e| e["Event"]["info"] == "ctix ee 2026-11-29").unwrap();
        assert_eq!(today["Event"]["Tag"][0]["name"], "tlp:red", "the most restrictive TLP of the day");
        assert_eq!(today["Event"]["distribution"], "0");
        assert_eq!(today["Event"]["publish_timestamp"], (NOW_MS / 1000).to_string());
        assert_eq!(today["Event"]["Orgc"]["name"], "ee");
        let first = &today["Event"]["Attribute"][0];
        let tags: Vec<&str> = first["Tag"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
        let expected = [
            "tlp:clear",
            "misp:confidence-level=\"usually-confident\"",
            "ctix:technique=\"T1566.001\"",
            "kill-chain:Delivery",
            "phishing",
        ];
        assert_eq!(tags, expected);
        assert_eq!(first["uuid"], derived_uuid("misp-attribute:ee:1"));
    }

    #[test]
    fn retracted_indicators_are_deleted_attributes() {
        let views = sample_views();
        let retracted: Vec<IndicatorView> = views.into_iter().filter(|v| v.retracted).collect();
        let feed = feed(&retracted, NOW_MS);
        let event = single_event(&feed);
        let attribute = &event["Attribute"][0];
        assert_eq!((attribute["deleted"].clone(), attribute["to_ids"].clone()), (json!(true), json!(false)));
        let retracted_s = parse_time("2026-11-29T10:30:00.000Z", 0).unwrap() / 1000;
        assert_eq!(attribute["timestamp"], retracted_s.to_string(), "a newer timestamp makes MISP take the change");
        assert_eq!(event["timestamp"], retracted_s.to_string());
        assert_eq!(attribute["comment"], "[retracted: sinkhole, not malicious] sample 7");
        assert!(attribute["Tag"].as_array().unwrap().contains(&tag_json("ctix:retracted", true)));
    }

    #[test]
    fn export_is_deterministic() {
        let views = sample_views();
        let mut reversed = views.clone();
        reversed.reverse();
        reversed.push(views[0].clone());
        assert_eq!(feed(&views, NOW_MS), feed(&reversed, NOW_MS), "order and repeats do not matter");
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        assert_eq!(write_feed(a.path(), &feed(&views, NOW_MS)).unwrap(), 3);
        assert_eq!(write_feed(b.path(), &feed(&reversed, NOW_MS)).unwrap(), 3);
        let files = |dir: &Path| -> BTreeMap<String, Vec<u8>> {
            fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap())
                .map(|e| (e.file_name().to_string_lossy().into_owned(), fs::read(e.path()).unwrap()))
                .collect()
        };
        let written = files(a.path());
        assert_eq!(written.len(), 5, "three events, hashes.csv and the manifest: {:?}", written.keys());
        assert!(written.contains_key("manifest.json"));
        assert_eq!(written, files(b.path()));
    }

    #[test]
    fn hashes_csv_has_the_md5_of_every_attribute_value() {
        let f = feed(&sample_views(), NOW_MS);
        let attributes: usize = f.events.values().map(|e| e["Event"]["Attribute"].as_array().unwrap().len()).sum();
        let lines: Vec<&str> = f.hashes_csv.lines().collect();
        assert_eq!(lines.len(), attributes);
        for line in lines {
            let (md5, uuid) = line.split_once(',').unwrap();
            assert!(f.events.contains_key(uuid), "{line}");
            let values: Vec<&str> = f.events[uuid]["Event"]["Attribute"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["value"].as_str().unwrap())
                .collect();
            assert!(values.iter().any(|v| hex::encode(md5::Md5::digest(v.as_bytes())) == md5), "{line}");
        }
        // A known vector: md5("") as MISP would write it.
        use md5::Digest as _;
        assert_eq!(hex::encode(md5::Md5::digest(b"")), "d41d8cd98f00b204e9800998ecf8427e");
    }

    #[test]
    fn feed_directory_imports_with_missing_and_bad_files() {
        let dir = tempfile::tempdir().unwrap();
        let views = sample_views();
        let mut feed = feed(&views, NOW_MS);
        let missing = "00000000-0000-4000-8000-000000000001";
        let bad = "00000000-0000-4000-8000-000000000002";
        let manifest = feed.manifest.as_object_mut().unwrap();
        for key in [missing, bad, "../../etc/passwd"] {
            manifest.insert(key.to_owned(), json!({ "info": "listed" }));
        }
        write_feed(dir.path(), &feed).unwrap();
        fs::write(dir.path().join(format!("{bad}.json")), b"<html>404</html>").unwrap();

        let report = import_feed_dir(dir.path()).unwrap();
        assert_eq!(report.items.len(), views.len() - 1, "all but the retracted one");
        let skipped: Vec<(&str, &str)> =
            report.skipped.iter().map(|s| (s.source_id.as_str(), s.reason.as_str())).collect();
        assert!(skipped.contains(&("../../etc/passwd", "manifest key is not an event uuid")), "{skipped:?}");
        assert!(skipped.contains(&(missing, "event file missing")), "{skipped:?}");
        assert!(skipped.contains(&(bad, "event file is not MISP JSON")), "{skipped:?}");

        let empty = tempfile::tempdir().unwrap();
        let err = import_feed_dir(empty.path()).unwrap_err();
        assert!(err.contains("no manifest.json"), "{err}");
    }

    #[test]
    fn write_feed_names_files_by_uuid_only() {
        let dir = tempfile::tempdir().unwrap();
        let mut feed = feed(&[], NOW_MS);
        feed.events.insert("../escape".to_owned(), json!({}));
        let err = write_feed(dir.path(), &feed).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(!dir.path().join("../escape.json").exists());
    }

    /// Writes the sample feed for the PyMISP check: `CTIX_MISP_FEED_DIR=/tmp/feed cargo test --lib
    /// interop::misp -- --ignored`.
    #[test]
    #[ignore = "writes a feed for an outside check; set CTIX_MISP_FEED_DIR"]
    fn write_sample_feed() {
        let dir = std::env::var("CTIX_MISP_FEED_DIR").expect("set CTIX_MISP_FEED_DIR to the output directory");
        let written = write_feed(Path::new(&dir), &feed(&sample_views(), NOW_MS)).unwrap();
        assert_eq!(written, 3);
    }
}
