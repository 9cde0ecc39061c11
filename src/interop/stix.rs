//! STIX 2.1 export and import: ctix indicators as STIX `indicator` objects (with their sightings,
//! their origins as `identity` objects and the official TLP 2.0 markings), and the indicators of a
//! STIX bundle from another tool as ctix submissions.
//!
//! Mapping decisions, export side:
//! - Ids are UUIDv5 in [`CTIX_NAMESPACE`] over the entry id, so an entry is one STIX object
//!   forever, whichever node exports it and however often; a retraction is a new *version* of
//!   that object (`revoked: true`, later `modified`), as STIX versioning wants. STIX says domain
//!   objects SHOULD use UUIDv4 and lets producers use other UUIDs in a namespace of their own
//!   (the stix2-validator warns); a random id would make each export a new object.
//! - Patterns are one comparison per indicator (see [`pattern`]). A CVE has no STIX observable:
//!   it becomes `[x-ctix-cve:value = 'CVE-…']` plus the standard `cve` external reference.
//!   `vulnerability:…` would read better, but `vulnerability` is a domain object, not an
//!   observable: the stix2-validator takes it for a custom observable and, with its custom-prefix
//!   check on, rejects it for lacking the `x-` prefix, which `x-ctix-cve` has. Consumers that
//!   know nothing of ctix still find the CVE where STIX puts CVE ids: `external_references` with
//!   `source_name: "cve"`.
//! - TLP is carried as `object_marking_refs` to the OASIS TLP 2.0 marking definitions
//!   (extension `extension-definition--60a3c5c5-…`), which the bundle includes verbatim. TLP:RED
//!   recipients have no STIX form and are not exported; a TLP:RED import therefore has none, and
//!   the model refuses it until the submitter names them.
//! - Techniques: ATT&CK ids become `mitre-attack` external references, kill-chain phase names
//!   become `kill_chain_phases` of the Lockheed Martin chain.
//!
//! Import side: an `indicator` with a STIX pattern that is one `=` comparison of a supported
//! object path, or an `OR` of such comparisons (one ctix indicator per comparison), becomes an
//! [`IndicatorInput`]; so does a `vulnerability` with a CVE id (as type `cve`). Everything else
//! is reported as skipped with a reason; the model validates what is imported when it is
//! submitted. Import reads untrusted files: it never panics, and every size is capped.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;

use serde::Deserialize;
use serde::de::{self, IgnoredAny, SeqAccess, Visitor};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use super::{ImportReport, Imported, Skipped};
use crate::model::time::format_time;
use crate::model::{DESCRIPTION_BYTES_MAX, IndicatorInput, IndicatorType, KILL_CHAIN_PHASES, Tlp};
use crate::view::{IndicatorView, SightingView};

/// The UUIDv5 namespace of every STIX id ctix makes. Never change it: every exported object
/// would get a new id, and every consumer would hold each indicator twice.
pub const CTIX_NAMESPACE: Uuid = Uuid::from_u128(0xb218bdd1_7523_48f2_b81e_817b28242865);

/// Largest bundle file imported. A million indicators of about 1 KiB each (a full national
/// feed) fit; parsed JSON takes several times its text size, so bigger files are refused
/// before parsing.
pub const BUNDLE_BYTES_MAX: usize = 1 << 30;
/// Most objects in one imported bundle: a work limit, sized like [`BUNDLE_BYTES_MAX`].
pub const OBJECTS_MAX: usize = 1_000_000;
/// Most bytes of text all indicators of one import hold together. An `OR` pattern becomes one
/// indicator per comparison, each with a copy of the object's description and labels; this
/// keeps a small crafted file from expanding into gigabytes.
pub const IMPORTED_BYTES_MAX: usize = BUNDLE_BYTES_MAX;
/// Deepest nesting of parentheses in an imported pattern: real patterns nest a few levels, and
/// the parser recurses, so a file of a million `(` must not reach the stack's end.
const PATTERN_DEPTH_MAX: usize = 16;
/// Largest sighting `count` STIX 2.1 allows; ctix counts in a `u32`.
const SIGHTING_COUNT_MAX: u32 = 999_999_999;
/// How much of a foreign string (a type name, a path, an id) a skip reason or id quotes.
const SHOWN_CHARS_MAX: usize = 64;

/// The TLP of an imported object that names no TLP marking: a CERT shares with the federation,
/// not the public (as for a submission without a TLP).
pub const TLP_DEFAULT: Tlp = Tlp::Amber;
/// The kill chain that ctix's phase names (`delivery`, …) belong to, as STIX names it.
pub const KILL_CHAIN_NAME: &str = "lockheed-martin-cyber-kill-chain";
/// The custom observable type of CVE patterns (see the module doc for why not `vulnerability`).
pub const CVE_OBJECT_TYPE: &str = "x-ctix-cve";

/// The OASIS extension that defines the TLP 2.0 marking definitions.
const TLP2_EXTENSION: &str = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d";
/// `created` of the OASIS TLP 2.0 marking definitions (part of the published objects).
const TLP2_CREATED: &str = "2022-10-01T00:00:00.000Z";
/// The TLP 1.0 marking definitions that STIX 2.1 predefines, recognised on import.
const TLP1_MARKINGS: [(&str, Tlp); 4] = [
    ("marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9", Tlp::Clear),
    ("marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da", Tlp::Green),
    ("marking-definition--f88d31f6-486f-44da-b317-01333bde0b82", Tlp::Amber),
    ("marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed", Tlp::Red),
];
/// `created` and `modified` of every node's identity object: fixed, so that every node exports
/// the same version of it, and earlier than any entry it signs.
const IDENTITY_CREATED: &str = "2020-01-01T00:00:00.000Z";

/// The STIX id of the indicator entry `entry_id` (`ee:12`).
pub fn indicator_id(entry_id: &str) -> String {
    derived_id("indicator", entry_id)
}

/// The STIX id of the sighting entry `entry_id` (`lv:7`).
pub fn sighting_id(entry_id: &str) -> String {
    derived_id("sighting", entry_id)
}

/// The STIX id of the identity of node `origin` (`ee`).
pub fn identity_id(origin: &str) -> String {
    derived_id("identity", origin)
}

/// `type--UUIDv5(CTIX_NAMESPACE, "type:key")`.
fn derived_id(stix_type: &str, key: &str) -> String {
    format!("{stix_type}--{}", Uuid::new_v5(&CTIX_NAMESPACE, format!("{stix_type}:{key}").as_bytes()))
}

/// The id of the OASIS TLP 2.0 marking definition of `tlp`.
pub fn marking_id(tlp: Tlp) -> &'static str {
    tlp2_marking(tlp).0
}

/// The id and name of the OASIS TLP 2.0 marking definition of `tlp`.
fn tlp2_marking(tlp: Tlp) -> (&'static str, &'static str) {
    match tlp {
        Tlp::Clear => ("marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487", "TLP:CLEAR"),
        Tlp::Green => ("marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb", "TLP:GREEN"),
        Tlp::Amber => ("marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421", "TLP:AMBER"),
        Tlp::AmberStrict => ("marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003", "TLP:AMBER+STRICT"),
        Tlp::Red => ("marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1", "TLP:RED"),
    }
}

/// The OASIS TLP 2.0 marking-definition object of `tlp`, exactly as published in
/// `oasis-open/cti-stix-common-objects` (`extension-definition-specifications/tlp-2.0`).
pub fn marking_definition(tlp: Tlp) -> Value {
    let (id, name) = tlp2_marking(tlp);
    json!({
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": id,
        "created": TLP2_CREATED,
        "name": name,
        "extensions": {
            TLP2_EXTENSION: { "extension_type": "property-extension", "tlp_2_0": tlp.as_str() }
        }
    })
}

/// The identity object of node `origin`, the `created_by_ref` of what it signs. It names itself
/// as its creator, as the STIX interop profile asks of every identity.
pub fn identity_object(origin: &str) -> Value {
    let id = identity_id(origin);
    json!({
        "type": "identity",
        "spec_version": "2.1",
        "id": id,
        "created_by_ref": id,
        "created": IDENTITY_CREATED,
        "modified": IDENTITY_CREATED,
        "name": format!("CERT {origin} (ctix node {origin})"),
        "identity_class": "organization"
    })
}

/// The STIX pattern of a ctix indicator: one comparison, the value quoted and escaped.
pub fn pattern(itype: IndicatorType, value: &str) -> String {
    format!("[{} = '{}']", object_path(itype, value), escape_pattern_string(value))
}

/// The STIX object path that holds a value of type `itype`.
fn object_path(itype: IndicatorType, value: &str) -> &'static str {
    match itype {
        IndicatorType::Ipv4 => "ipv4-addr:value",
        IndicatorType::Ipv6 => "ipv6-addr:value",
        // STIX puts networks in the address objects' `value`, in CIDR notation.
        IndicatorType::Cidr if value.contains(':') => "ipv6-addr:value",
        IndicatorType::Cidr => "ipv4-addr:value",
        IndicatorType::Domain => "domain-name:value",
        IndicatorType::Url => "url:value",
        IndicatorType::Email => "email-addr:value",
        IndicatorType::Md5 => "file:hashes.MD5",
        // A key with a hyphen must be quoted in an object path (STIX patterning grammar).
        IndicatorType::Sha1 => "file:hashes.'SHA-1'",
        IndicatorType::Sha256 => "file:hashes.'SHA-256'",
        IndicatorType::Filename => "file:name",
        IndicatorType::Cve => "x-ctix-cve:value",
    }
}

/// A string literal's body: STIX patterning escapes exactly `'` and `\` with a backslash.
fn escape_pattern_string(value: &str) -> String {
    value.replace('\\', "\\\\").replace('\'', "\\'")
}

/// The STIX indicator of a view, in its latest version: revoked if the entry was retracted.
pub fn indicator_object(v: &IndicatorView) -> Value {
    match revoked_modified(v) {
        Some(modified) => indicator_version(v, &modified, true),
        None => indicator_version(v, &v.created, false),
    }
}

/// Every version of a view's indicator, oldest first, for TAXII's versions endpoint: the
/// original, and the revoked version if the entry was retracted (same id, later `modified`).
pub fn indicator_versions(v: &IndicatorView) -> Vec<Value> {
    let mut versions = vec![indicator_version(v, &v.created, false)];
    if let Some(modified) = revoked_modified(v) {
        versions.push(indicator_version(v, &modified, true));
    }
    versions
}

/// `modified` of the revoked version: the retraction time, kept after `created` so that the two
/// versions differ even if the origin's clock stepped back.
fn revoked_modified(v: &IndicatorView) -> Option<String> {
    if !v.retracted {
        return None;
    }
    Some(strictly_after(&v.created, v.retracted_at.as_deref().unwrap_or(&v.created)))
}

/// `later`, or one millisecond after `earlier` when `later` is not after it. Both are RFC 3339
/// strings; one that does not parse is left as it is.
fn strictly_after(earlier: &str, later: &str) -> String {
    match (stix_ms(earlier), stix_ms(later)) {
        (Some(e), Some(l)) if l <= e => format_time(e + 1),
        _ => later.to_owned(),
    }
}

/// One version of a view's indicator.
fn indicator_version(v: &IndicatorView, modified: &str, revoked: bool) -> Value {
    let itype = v.itype.parse::<IndicatorType>().ok();
    let tlp = view_tlp(&v.tlp);
    let mut o = object_map(json!({
        "type": "indicator",
        "spec_version": "2.1",
        "id": indicator_id(&v.id),
        "created": v.created,
        "modified": modified,
        "created_by_ref": identity_id(&v.origin),
        "name": format!("{} {}", v.itype, v.value),
        "pattern": view_pattern(itype, v),
        "pattern_type": "stix",
        "pattern_version": "2.1",
        "valid_from": v.valid_from,
        "confidence": v.confidence,
        "object_marking_refs": [marking_id(tlp)],
    }));
    if let Some(until) = &v.valid_until {
        // STIX requires valid_until > valid_from; an equal one (never made by the model) means
        // "already expired", which the next millisecond still says.
        o.insert("valid_until".into(), json!(strictly_after(&v.valid_from, until)));
    }
    if !v.description.is_empty() {
        o.insert("description".into(), json!(v.description));
    }
    if !v.tags.is_empty() {
        o.insert("labels".into(), json!(v.tags));
    }
    // ctix exchanges indicators of threats. A CVE names a weakness, not activity, which the
    // vocabulary's "unknown" says; the STIX interop profile wants the property on every indicator.
    let kind = if itype == Some(IndicatorType::Cve) { "unknown" } else { "malicious-activity" };
    o.insert("indicator_types".into(), json!([kind]));
    insert_nonempty(&mut o, "external_references", external_references(itype, v));
    insert_nonempty(&mut o, "kill_chain_phases", kill_chain_phases(&v.techniques));
    if revoked {
        o.insert("revoked".into(), json!(true));
    }
    Value::Object(o)
}

/// The pattern of a view; a type unknown to this build (a newer peer's) still exports, as a
/// custom observable, rather than vanishing from the bundle.
fn view_pattern(itype: Option<IndicatorType>, v: &IndicatorView) -> String {
    match itype {
        Some(t) => pattern(t, &v.value),
        None => format!("[x-ctix-unknown:value = '{}']", escape_pattern_string(&v.value)),
    }
}

/// The TLP of a view. A label this build does not know (views come from the model, so never in
/// practice) counts as RED: an export must never widen an audience.
fn view_tlp(label: &str) -> Tlp {
    label.parse().unwrap_or(Tlp::Red)
}

/// The CVE reference of a CVE indicator and the ATT&CK reference of each technique id.
fn external_references(itype: Option<IndicatorType>, v: &IndicatorView) -> Vec<Value> {
    let mut refs = Vec::new();
    if itype == Some(IndicatorType::Cve) {
        let url = format!("https://www.cve.org/CVERecord?id={}", v.value);
        refs.push(json!({ "source_name": "cve", "external_id": v.value, "url": url }));
    }
    for t in v.techniques.iter().filter(|t| is_attack_id(t)) {
        let url = format!("https://attack.mitre.org/techniques/{}/", t.replace('.', "/"));
        refs.push(json!({ "source_name": "mitre-attack", "external_id": t, "url": url }));
    }
    refs
}

/// The kill-chain phases among a view's techniques.
fn kill_chain_phases(techniques: &[String]) -> Vec<Value> {
    techniques
        .iter()
        .filter(|t| KILL_CHAIN_PHASES.contains(&t.as_str()))
        .map(|t| json!({ "kill_chain_name": KILL_CHAIN_NAME, "phase_name": t }))
        .collect()
}

/// `T1566` or `T1566.001`, as the model accepts them.
fn is_attack_id(t: &str) -> bool {
    let b = t.as_bytes();
    let digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    match b.len() {
        5 => b[0] == b'T' && digits(&b[1..]),
        9 => b[0] == b'T' && digits(&b[1..5]) && b[5] == b'.' && digits(&b[6..]),
        _ => false,
    }
}

/// The STIX sighting of one sighting report `s` of the indicator `v`, marked like the indicator
/// (a sighting tells that the indicator exists, so it may not travel further than it).
pub fn sighting_object(v: &IndicatorView, s: &SightingView) -> Value {
    json!({
        "type": "sighting",
        "spec_version": "2.1",
        "id": sighting_id(&s.id),
        "created": s.created,
        "modified": s.created,
        "created_by_ref": identity_id(&s.by),
        "sighting_of_ref": indicator_id(&v.id),
        "where_sighted_refs": [identity_id(&s.by)],
        "count": s.count.min(SIGHTING_COUNT_MAX),
        "first_seen": s.first_seen,
        "last_seen": not_before(&s.first_seen, &s.last_seen),
        "object_marking_refs": [marking_id(view_tlp(&v.tlp))],
    })
}

/// `later`, or `earlier` if `later` is before it (STIX: last_seen >= first_seen).
fn not_before(earlier: &str, later: &str) -> String {
    match (stix_ms(earlier), stix_ms(later)) {
        (Some(e), Some(l)) if l < e => earlier.to_owned(),
        _ => later.to_owned(),
    }
}

/// A bundle of the views' indicators (latest versions) and their sightings, with the identities
/// and TLP markings they refer to: markings first (by TLP level), then identities (by node
/// name), then each indicator followed by its sightings, in the order of `views`. A view or a
/// sighting given twice appears once.
pub fn bundle(views: &[IndicatorView]) -> Value {
    let mut seen = HashSet::new();
    let mut tlps = BTreeSet::new();
    let mut nodes = BTreeSet::new();
    let mut data = Vec::new();
    for v in views {
        if !seen.insert(v.id.as_str()) {
            continue;
        }
        tlps.insert(view_tlp(&v.tlp));
        nodes.insert(v.origin.as_str());
        data.push(indicator_object(v));
        for s in &v.sighting_reports {
            if seen.insert(s.id.as_str()) {
                nodes.insert(s.by.as_str());
                data.push(sighting_object(v, s));
            }
        }
    }
    let mut objects: Vec<Value> = tlps.into_iter().map(marking_definition).collect();
    objects.extend(nodes.into_iter().map(identity_object));
    objects.extend(data);
    json!({ "type": "bundle", "id": bundle_id(&objects), "objects": objects })
}

/// UUIDv5 over the sorted `id|modified` of the objects (`created` where there is no
/// `modified`): the same content has the same bundle id, and a new version of any object, such
/// as a retraction, makes a new one.
fn bundle_id(objects: &[Value]) -> String {
    let mut keys: Vec<String> = objects
        .iter()
        .map(|o| {
            let version = o.get("modified").or_else(|| o.get("created")).and_then(Value::as_str).unwrap_or("");
            format!("{}|{version}", o.get("id").and_then(Value::as_str).unwrap_or(""))
        })
        .collect();
    keys.sort();
    derived_id("bundle", &keys.join("\n"))
}

fn object_map(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn insert_nonempty(o: &mut Map<String, Value>, key: &str, items: Vec<Value>) {
    if !items.is_empty() {
        o.insert(key.into(), Value::Array(items));
    }
}

/// Milliseconds since the epoch of an RFC 3339 time; `None` if it does not parse or is before 1970.
fn stix_ms(s: &str) -> Option<u64> {
    let t = OffsetDateTime::parse(s, &Rfc3339).ok()?;
    u64::try_from(t.unix_timestamp_nanos().div_euclid(1_000_000)).ok()
}

// ---------------------------------------------------------------------------------------------
// Import

/// Reads a STIX 2.0 or 2.1 bundle and makes an indicator submission of each indicator in it
/// (see the module doc); every other object is listed in `skipped` with its reason.
///
/// Errs only when the file is not a bundle at all, or is over the size limits, with a message
/// saying what to do.
pub fn import_bundle(json: &[u8]) -> Result<ImportReport, String> {
    import_objects(&parse_bundle(json)?, IMPORTED_BYTES_MAX)
}

/// Imports STIX objects already parsed as JSON (a TAXII envelope's `objects`), as
/// [`import_bundle`] imports a bundle's, without serialising them into a bundle to parse again.
/// Errs when there are over [`OBJECTS_MAX`] objects or their indicators are over the text limit.
pub fn import_values(objects: &[Value]) -> Result<ImportReport, String> {
    if objects.len() > OBJECTS_MAX {
        return Err(format!(
            "{} objects: at most {OBJECTS_MAX} are imported at once; split them into smaller sets",
            objects.len()
        ));
    }
    import_objects(objects, IMPORTED_BYTES_MAX)
}

/// Imports a bundle's objects, as long as the indicators hold at most `bytes_max` of text.
fn import_objects(objects: &[Value], bytes_max: usize) -> Result<ImportReport, String> {
    let ctx = Context::new(objects);
    let mut report = ImportReport::default();
    let mut imported_bytes = 0usize;
    for (index, obj) in objects.iter().enumerate() {
        let before = report.items.len();
        import_object(&ctx, index, obj, &mut report);
        imported_bytes += report.items[before..].iter().map(|i| input_bytes(&i.input)).sum::<usize>();
        if imported_bytes > bytes_max {
            return Err(format!(
                "the bundle's indicators hold more than {bytes_max} bytes of text (an OR pattern becomes one \
                 indicator per comparison): split the bundle into smaller ones"
            ));
        }
    }
    Ok(report)
}

/// The top level of a bundle; other fields (`id`, `spec_version`) are not needed.
#[derive(Deserialize)]
struct RawBundle {
    #[serde(rename = "type", default)]
    kind: Option<Value>,
    #[serde(default)]
    objects: Option<Objects>,
}

/// A bundle's `objects`: the first `OBJECTS_MAX` kept, the rest only counted, so that an
/// oversized bundle is refused without holding it all.
struct Objects {
    kept: Vec<Value>,
    total: usize,
}

impl<'de> Deserialize<'de> for Objects {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Objects, D::Error> {
        d.deserialize_seq(ObjectsVisitor)
    }
}

struct ObjectsVisitor;

impl<'de> Visitor<'de> for ObjectsVisitor {
    type Value = Objects;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of STIX objects")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Objects, A::Error> {
        let mut kept = Vec::new();
        let mut total = 0usize;
        loop {
            let more = if total < OBJECTS_MAX {
                match seq.next_element::<Value>()? {
                    Some(v) => {
                        kept.push(v);
                        true
                    }
                    None => false,
                }
            } else {
                seq.next_element::<IgnoredAny>()?.is_some()
            };
            if !more {
                return Ok(Objects { kept, total });
            }
            total += 1;
        }
    }
}

/// What a bundle is, for error messages.
const BUNDLE_SHAPE: &str = "a STIX bundle is a JSON object with \"type\": \"bundle\" and an \"objects\" array";

/// The objects of a bundle, or what is wrong with the file.
fn parse_bundle(json: &[u8]) -> Result<Vec<Value>, String> {
    if json.len() > BUNDLE_BYTES_MAX {
        return Err(format!(
            "the file is {} bytes: STIX bundles are imported up to {BUNDLE_BYTES_MAX} bytes; split it into smaller bundles",
            json.len()
        ));
    }
    // A derived struct also reads a JSON array positionally; only an object can be a bundle.
    if json.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(match serde_json::from_slice::<IgnoredAny>(json) {
            Ok(_) => format!("the file is JSON but not a STIX bundle: {BUNDLE_SHAPE}"),
            Err(e) => format!("the file is not JSON ({e}): {BUNDLE_SHAPE}"),
        });
    }
    let raw: RawBundle = serde_json::from_slice(json).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => format!("the file is not a STIX bundle ({e}): {BUNDLE_SHAPE}"),
        _ => format!("the file is not JSON ({e}): {BUNDLE_SHAPE}"),
    })?;
    match &raw.kind {
        Some(Value::String(t)) if t == "bundle" => {}
        Some(Value::String(t)) => {
            return Err(format!(
                "the file is a STIX {} object, not a bundle: wrap it as {{\"type\": \"bundle\", \"id\": \"bundle--…\", \
                 \"objects\": [ … ]}}",
                shown(t)
            ));
        }
        _ => return Err(format!("the file has no \"type\": \"bundle\": {BUNDLE_SHAPE}")),
    }
    let objects = raw.objects.ok_or("the bundle has no \"objects\" array: it is empty, there is nothing to import")?;
    if objects.total > OBJECTS_MAX {
        return Err(format!(
            "the bundle has {} objects: at most {OBJECTS_MAX} are imported at once; split it into smaller bundles",
            objects.total
        ));
    }
    Ok(objects.kept)
}

/// What the whole bundle tells about each object: the TLP of the marking definitions it
/// carries, and which version of each object is the one to import.
struct Context {
    /// TLP marking definitions defined in the bundle under ids of their own.
    markings: HashMap<String, Tlp>,
    /// For each id, the position of its latest version (the first of equal ones).
    latest: HashMap<String, (usize, u64)>,
}

impl Context {
    fn new(objects: &[Value]) -> Context {
        let mut ctx = Context { markings: HashMap::new(), latest: HashMap::new() };
        for (index, obj) in objects.iter().enumerate() {
            let Some(id) = str_field(obj, "id") else { continue };
            if str_field(obj, "type") == Some("marking-definition")
                && let Some(tlp) = defined_tlp(obj)
            {
                ctx.markings.insert(id.to_owned(), tlp);
            }
            let version = ["modified", "created"].iter().find_map(|k| str_field(obj, k).and_then(stix_ms)).unwrap_or(0);
            let newer = ctx.latest.get(id).is_none_or(|&(_, v)| version > v);
            if newer {
                ctx.latest.insert(id.to_owned(), (index, version));
            }
        }
        ctx
    }

    /// Whether another object in the bundle is a later version of (or the same as) this one.
    fn superseded(&self, index: usize, obj: &Value) -> bool {
        str_field(obj, "id").and_then(|id| self.latest.get(id)).is_some_and(|&(i, _)| i != index)
    }

    /// The strictest TLP among an object's markings; [`TLP_DEFAULT`] when it has none.
    fn tlp(&self, obj: &Value) -> Tlp {
        let refs = obj.get("object_marking_refs").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
        refs.iter().filter_map(Value::as_str).filter_map(|id| self.marking_tlp(id)).max().unwrap_or(TLP_DEFAULT)
    }

    /// The TLP of a marking id: the published TLP 2.0 and 1.0 ids first (a bundle cannot
    /// redefine them), then the bundle's own TLP markings.
    fn marking_tlp(&self, id: &str) -> Option<Tlp> {
        Tlp::ALL
            .into_iter()
            .find(|&t| marking_id(t) == id)
            .or_else(|| TLP1_MARKINGS.iter().find(|(m, _)| *m == id).map(|&(_, t)| t))
            .or_else(|| self.markings.get(id).copied())
    }
}

/// The TLP a marking-definition object defines, in any of the forms tools write: TLP 1.0
/// (`definition_type: tlp`, `definition: {tlp: amber}`; OpenCTI writes `TLP:AMBER` there), the
/// TLP 2.0 extension, or else a `TLP:…` name.
fn defined_tlp(obj: &Value) -> Option<Tlp> {
    let parse = |s: &str| without_tlp_prefix(s).unwrap_or(s).parse::<Tlp>().ok();
    let v1 = str_field(obj, "definition_type")
        .filter(|t| t.eq_ignore_ascii_case("tlp"))
        .and_then(|_| obj.get("definition")?.as_object()?.values().find_map(|v| v.as_str().and_then(parse)));
    let v2 = || obj.get("extensions")?.get(TLP2_EXTENSION)?.get("tlp_2_0")?.as_str().and_then(parse);
    let named = || str_field(obj, "name").and_then(without_tlp_prefix).and_then(|level| level.parse::<Tlp>().ok());
    v1.or_else(v2).or_else(named)
}

/// `AMBER` of `TLP:AMBER` (any case); `None` without the prefix.
fn without_tlp_prefix(s: &str) -> Option<&str> {
    s.get(..4).filter(|p| p.eq_ignore_ascii_case("tlp:")).map(|_| &s[4..])
}

/// Imports or skips one object of the bundle.
fn import_object(ctx: &Context, index: usize, obj: &Value, report: &mut ImportReport) {
    let kind = str_field(obj, "type").unwrap_or("");
    let source_id = str_field(obj, "id").map_or_else(|| format!("objects[{index}]"), shown);
    let outcome = match kind {
        _ if !obj.is_object() => Err("not a JSON object".to_owned()),
        "indicator" => import_indicator(ctx, index, obj, &source_id, report),
        "vulnerability" => import_vulnerability(ctx, index, obj, &source_id, report),
        "identity" | "marking-definition" | "extension-definition" => {
            Err("context object (not an indicator)".to_owned())
        }
        "sighting" => Err("sightings are not imported".to_owned()),
        "" => Err("object without a type".to_owned()),
        other => Err(format!("unsupported object type {}", shown(other))),
    };
    if let Err(reason) = outcome {
        report.skipped.push(Skipped { source_id, kind: shown(kind), reason });
    }
}

/// Reason of an object of which the bundle holds a later version, or the same one again.
const SUPERSEDED: &str = "older or repeated version of an object in this bundle";

/// One indicator per supported comparison of the pattern; an unsupported comparison of an `OR`
/// is listed as skipped, the rest are still imported.
fn import_indicator(
    ctx: &Context,
    index: usize,
    obj: &Value,
    source_id: &str,
    report: &mut ImportReport,
) -> Result<(), String> {
    if ctx.superseded(index, obj) {
        return Err(SUPERSEDED.into());
    }
    if obj.get("revoked") == Some(&Value::Bool(true)) {
        return Err("revoked indicator".into());
    }
    // STIX 2.0 indicators have no pattern_type: their patterns are STIX patterns.
    match obj.get("pattern_type") {
        None => {}
        Some(Value::String(t)) if t == "stix" => {}
        Some(Value::String(t)) => return Err(format!("pattern_type {} is not stix", shown(t))),
        Some(other) => return Err(format!("pattern_type {} is not stix", shown(&other.to_string()))),
    }
    let pattern = str_field(obj, "pattern").ok_or("missing pattern")?;
    let comparisons = parse_pattern(pattern)?;
    let common = common_input(ctx, obj);
    for (path, value) in comparisons {
        match path_type(&path, &value) {
            Some(itype) => {
                let input = typed_input(&common, itype, value, str_field(obj, "name"));
                report.items.push(Imported { source_id: source_id.to_owned(), input });
            }
            None => report.skipped.push(Skipped {
                source_id: source_id.to_owned(),
                kind: "indicator".into(),
                reason: format!("unsupported pattern object path {}", shown(&path)),
            }),
        }
    }
    Ok(())
}

/// A `vulnerability` with a CVE id becomes a `cve` indicator (MISP and vendor reports carry
/// CVEs this way); it has no validity period, so the submission time applies.
fn import_vulnerability(
    ctx: &Context,
    index: usize,
    obj: &Value,
    source_id: &str,
    report: &mut ImportReport,
) -> Result<(), String> {
    if ctx.superseded(index, obj) {
        return Err(SUPERSEDED.into());
    }
    if obj.get("revoked") == Some(&Value::Bool(true)) {
        return Err("revoked vulnerability".into());
    }
    let cve = cve_of(obj).ok_or("vulnerability without a CVE id")?;
    let input = typed_input(&common_input(ctx, obj), IndicatorType::Cve, cve, str_field(obj, "name"));
    report.items.push(Imported { source_id: source_id.to_owned(), input });
    Ok(())
}

/// The CVE id of a vulnerability: its `cve` external reference, else a name that is one.
fn cve_of(obj: &Value) -> Option<String> {
    let from_ref = external_refs(obj)
        .filter(|r| str_field(r, "source_name").is_some_and(|s| s.eq_ignore_ascii_case("cve")))
        .find_map(|r| str_field(r, "external_id"));
    let from_name = || str_field(obj, "name").filter(|n| n.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("cve-")));
    from_ref.or_else(from_name).map(str::to_owned)
}

/// The fields every indicator made from `obj` shares; type and value are set per comparison.
fn common_input(ctx: &Context, obj: &Value) -> IndicatorInput {
    IndicatorInput {
        tlp: ctx.tlp(obj).as_str().to_owned(),
        confidence: obj.get("confidence").and_then(Value::as_i64),
        valid_from: str_field(obj, "valid_from").map(str::to_owned),
        valid_until: str_field(obj, "valid_until").map(str::to_owned),
        tags: string_list(obj.get("labels")),
        description: clipped(str_field(obj, "description").unwrap_or("")),
        techniques: techniques(obj),
        ..IndicatorInput::default()
    }
}

/// `common` with a type and value. Without a description, the object's name serves as one,
/// unless it only restates the indicator (as ctix's own names do: `ipv4 203.0.113.7`).
fn typed_input(common: &IndicatorInput, itype: IndicatorType, value: String, name: Option<&str>) -> IndicatorInput {
    let mut input = common.clone();
    if input.description.is_empty()
        && let Some(name) = name.filter(|n| *n != value && *n != format!("{itype} {value}"))
    {
        input.description = clipped(name);
    }
    input.itype = itype.to_string();
    input.value = value;
    input
}

/// A description cut to what the model accepts, at a character boundary, marked with `…`:
/// vendor reports often hold long descriptions, and refusing the indicator for it would lose
/// the indicator itself.
fn clipped(s: &str) -> String {
    if s.len() <= DESCRIPTION_BYTES_MAX {
        return s.to_owned();
    }
    let ellipsis = "…";
    let mut end = DESCRIPTION_BYTES_MAX - ellipsis.len();
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{ellipsis}", &s[..end])
}

/// ATT&CK technique ids from `mitre-attack` external references, and Lockheed Martin
/// kill-chain phases. ATT&CK tactics (the `mitre-attack` kill chain) have no ctix form.
fn techniques(obj: &Value) -> Vec<String> {
    let attack = external_refs(obj)
        .filter(|r| str_field(r, "source_name").is_some_and(|s| s.eq_ignore_ascii_case("mitre-attack")))
        .filter_map(|r| str_field(r, "external_id"))
        .map(str::to_ascii_uppercase)
        .filter(|t| is_attack_id(t));
    let phases = obj.get("kill_chain_phases").and_then(Value::as_array).into_iter().flatten();
    let phases = phases
        .filter(|p| str_field(p, "kill_chain_name") == Some(KILL_CHAIN_NAME))
        .filter_map(|p| str_field(p, "phase_name"))
        .map(str::to_ascii_lowercase)
        .filter(|p| KILL_CHAIN_PHASES.contains(&p.as_str()));
    attack.chain(phases).collect()
}

fn external_refs(obj: &Value) -> impl Iterator<Item = &Value> {
    obj.get("external_references").and_then(Value::as_array).into_iter().flatten()
}

fn str_field<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj.get(key).and_then(Value::as_str)
}

fn string_list(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).map(str::to_owned).collect()
}

/// Bytes of text an imported indicator holds, for [`IMPORTED_BYTES_MAX`].
fn input_bytes(i: &IndicatorInput) -> usize {
    let strings = i.tags.iter().chain(&i.techniques).chain(i.valid_from.iter()).chain(i.valid_until.iter());
    i.itype.len() + i.value.len() + i.tlp.len() + i.description.len() + strings.map(String::len).sum::<usize>()
}

/// A foreign string as a message shows it: as it is when it is short plain ASCII (type names,
/// object paths and ids are), else quoted, escaped and shortened, so that no control
/// character or megabyte reaches a log, and reasons still group.
fn shown(s: &str) -> String {
    if s.len() <= SHOWN_CHARS_MAX && s.bytes().all(|b| b.is_ascii_graphic()) {
        return s.to_owned();
    }
    match s.char_indices().nth(SHOWN_CHARS_MAX) {
        None => format!("{s:?}"),
        Some((end, _)) => format!("{:?}…", &s[..end]),
    }
}

/// The ctix type of the value at a STIX object path, if ctix has one. Hash keys are matched
/// loosely (`'SHA-256'`, `SHA256`, `sha256`), as tools write them all.
fn path_type(path: &str, value: &str) -> Option<IndicatorType> {
    let (object, property) = path.split_once(':')?;
    let network = value.contains('/');
    let t = match (object, property) {
        ("ipv4-addr" | "ipv6-addr", "value") if network => IndicatorType::Cidr,
        ("ipv4-addr", "value") => IndicatorType::Ipv4,
        ("ipv6-addr", "value") => IndicatorType::Ipv6,
        ("domain-name", "value") => IndicatorType::Domain,
        ("url", "value") => IndicatorType::Url,
        ("email-addr", "value") => IndicatorType::Email,
        ("file", "name") => IndicatorType::Filename,
        (CVE_OBJECT_TYPE, "value") => IndicatorType::Cve,
        ("file", p) => {
            let key = p.strip_prefix("hashes.")?.trim_matches('\'').to_ascii_uppercase().replace(['-', '_'], "");
            match key.as_str() {
                "MD5" => IndicatorType::Md5,
                "SHA1" => IndicatorType::Sha1,
                "SHA256" => IndicatorType::Sha256,
                _ => return None,
            }
        }
        _ => return None,
    };
    Some(t)
}

// ---------------------------------------------------------------------------------------------
// Patterns

/// Skip reasons of patterns; each groups many objects in an import summary.
const PATTERN_INVALID: &str = "pattern is not valid STIX patterning";
const PATTERN_NOT_SINGLE: &str = "pattern is not a single comparison or an OR of comparisons";
const PATTERN_NOT_STRING: &str = "pattern compares with a value that is not a string";
const PATTERN_TOO_DEEP: &str = "pattern nests parentheses too deeply";

/// Pattern keywords that make a pattern more than comparisons joined by `OR`.
const COMBINING_KEYWORDS: [&str; 8] = ["AND", "FOLLOWEDBY", "NOT", "EXISTS", "WITHIN", "START", "STOP", "REPEATS"];

/// A lexical token of STIX patterning, as far as import needs to tell them apart.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Open,
    Close,
    LeftParen,
    RightParen,
    /// A string literal, unescaped.
    Str(String),
    /// An object path (it has a `:`), a keyword, or a number or boolean literal.
    Word(String),
    /// A comparison operator (`=`, `!=`, `<=` …).
    Op(String),
    /// Any other literal: `t'…'`, `h'…'`, `b'…'`, or a `,` of a set.
    Other,
}

/// The `(object path, value)` of each comparison of a pattern made of `=` comparisons joined by
/// `OR` (within or between observation expressions, which for single comparisons is the same),
/// or the skip reason.
fn parse_pattern(pattern: &str) -> Result<Vec<(String, String)>, String> {
    let tokens = Lexer { s: pattern, pos: 0 }.tokens().ok_or(PATTERN_INVALID)?;
    let combining =
        |t: &Token| matches!(t, Token::Word(w) if COMBINING_KEYWORDS.contains(&w.to_ascii_uppercase().as_str()));
    if tokens.iter().any(combining) {
        return Err(PATTERN_NOT_SINGLE.into());
    }
    let mut parser = Parser { tokens, pos: 0, out: Vec::new() };
    parser.observations(0)?;
    if parser.pos != parser.tokens.len() {
        return Err(PATTERN_INVALID.into());
    }
    Ok(parser.out)
}

struct Lexer<'a> {
    s: &'a str,
    pos: usize,
}

impl Lexer<'_> {
    /// All tokens, or `None` on text that is no STIX pattern (an unclosed string, a bad escape,
    /// a stray character).
    fn tokens(mut self) -> Option<Vec<Token>> {
        let mut out = Vec::new();
        while let Some(c) = self.peek() {
            let token = match c {
                _ if c.is_whitespace() => {
                    self.bump(c);
                    continue;
                }
                '[' | ']' | '(' | ')' | ',' => {
                    self.bump(c);
                    match c {
                        '[' => Token::Open,
                        ']' => Token::Close,
                        '(' => Token::LeftParen,
                        ')' => Token::RightParen,
                        _ => Token::Other,
                    }
                }
                '\'' => Token::Str(self.string()?),
                '=' | '!' | '<' | '>' => Token::Op(self.take_while(|c| matches!(c, '=' | '!' | '<' | '>')).to_owned()),
                _ if is_word_char(c) => self.word()?,
                _ => return None,
            };
            out.push(token);
        }
        Some(out)
    }

    fn peek(&self) -> Option<char> {
        self.s[self.pos..].chars().next()
    }

    fn bump(&mut self, c: char) {
        self.pos += c.len_utf8();
    }

    fn take_while(&mut self, f: impl Fn(char) -> bool) -> &str {
        let start = self.pos;
        while let Some(c) = self.peek().filter(|&c| f(c)) {
            self.bump(c);
        }
        &self.s[start..self.pos]
    }

    /// A string literal from its opening quote, unescaped: only `\'` and `\\` are escapes.
    fn string(&mut self) -> Option<String> {
        self.bump('\'');
        let mut out = String::new();
        loop {
            let c = self.peek()?;
            self.bump(c);
            match c {
                '\'' => return Some(out),
                '\\' => {
                    let escaped = self.peek().filter(|&e| e == '\'' || e == '\\')?;
                    self.bump(escaped);
                    out.push(escaped);
                }
                _ => out.push(c),
            }
        }
    }

    /// A keyword, number, typed literal (`t'…'`) or object path. A path goes on through quoted
    /// components (`hashes.'SHA-256'`) and list indexes (`values[*]`).
    fn word(&mut self) -> Option<Token> {
        let start = self.pos;
        self.take_while(is_word_char);
        if matches!(&self.s[start..self.pos], "t" | "h" | "b") && self.peek() == Some('\'') {
            self.string()?;
            return Some(Token::Other);
        }
        while self.s[start..self.pos].contains(':') {
            match self.peek() {
                Some('\'') if self.s[start..self.pos].ends_with('.') => {
                    self.string()?;
                }
                Some('[') => {
                    self.take_while(|c| c != ']');
                    self.peek()?;
                    self.bump(']');
                }
                _ => break,
            }
            self.take_while(is_word_char);
        }
        Some(Token::Word(self.s[start..self.pos].to_owned()))
    }
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':')
}

/// A recursive-descent parser of the pattern subset ctix imports:
///
/// ```text
/// observations := observation ("OR" observation)*
/// observation  := "[" comparisons "]" | "(" observations ")"
/// comparisons  := comparison ("OR" comparison)*
/// comparison   := PATH "=" STRING | "(" comparisons ")"
/// ```
struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    out: Vec<(String, String)>,
}

impl Parser {
    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn expect(&mut self, want: Token) -> Result<(), String> {
        if self.next() == Some(want) { Ok(()) } else { Err(PATTERN_INVALID.into()) }
    }

    /// Consumes an `OR` if one comes next.
    fn or(&mut self) -> bool {
        let is_or = matches!(self.tokens.get(self.pos), Some(Token::Word(w)) if w.eq_ignore_ascii_case("or"));
        self.pos += usize::from(is_or);
        is_or
    }

    fn observations(&mut self, depth: usize) -> Result<(), String> {
        if depth > PATTERN_DEPTH_MAX {
            return Err(PATTERN_TOO_DEEP.into());
        }
        loop {
            match self.next() {
                Some(Token::Open) => {
                    self.comparisons(depth + 1)?;
                    self.expect(Token::Close)?;
                }
                Some(Token::LeftParen) => {
                    self.observations(depth + 1)?;
                    self.expect(Token::RightParen)?;
                }
                _ => return Err(PATTERN_INVALID.into()),
            }
            if !self.or() {
                return Ok(());
            }
        }
    }

    fn comparisons(&mut self, depth: usize) -> Result<(), String> {
        if depth > PATTERN_DEPTH_MAX {
            return Err(PATTERN_TOO_DEEP.into());
        }
        loop {
            match self.next() {
                Some(Token::LeftParen) => {
                    self.comparisons(depth + 1)?;
                    self.expect(Token::RightParen)?;
                }
                Some(Token::Word(path)) if path.contains(':') => self.comparison(path)?,
                _ => return Err(PATTERN_INVALID.into()),
            }
            if !self.or() {
                return Ok(());
            }
        }
    }

    /// The operator and value after an object path.
    fn comparison(&mut self, path: String) -> Result<(), String> {
        match self.next() {
            Some(Token::Op(op)) if op == "=" => {}
            Some(Token::Op(op) | Token::Word(op)) => {
                return Err(format!("pattern uses operator {}, not =", shown(&op.to_ascii_uppercase())));
            }
            _ => return Err(PATTERN_INVALID.into()),
        }
        match self.next() {
            Some(Token::Str(value)) => {
                self.out.push((path, value));
                Ok(())
            }
            Some(Token::Word(_) | Token::Other) => Err(PATTERN_NOT_STRING.into()),
            _ => Err(PATTERN_INVALID.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Indicator;
    use crate::model::time::parse_time;
    use proptest::prelude::*;

    /// The submission time of every test indicator.
    const NOW: u64 = 1_772_000_000_000;
    const CREATED: &str = "2026-03-01T12:00:00.000Z";
    /// A bundle ctix exports, checked with the OASIS stix2-validator (see `sample_views`).
    const SAMPLE_FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/stix/sample-bundle.json");
    /// A bundle the OASIS `stix2` Python library made (`python-stix2-bundle.py` beside it).
    const PYTHON_FIXTURE: &str = include_str!("../../tests/data/stix/python-stix2-bundle.json");

    /// A valid value of each type, with quotes and backslashes where the type allows them.
    fn value_of(itype: IndicatorType) -> &'static str {
        match itype {
            IndicatorType::Ipv4 => "203.0.113.7",
            IndicatorType::Ipv6 => "2001:db8::7",
            IndicatorType::Cidr => "2001:db8::/32",
            IndicatorType::Domain => "login-update.example",
            IndicatorType::Url => "https://login-update.example/drop.php?id=7",
            IndicatorType::Email => "o'brien\\ops@login-update.example",
            IndicatorType::Md5 => "d41d8cd98f00b204e9800998ecf8427e",
            IndicatorType::Sha1 => "da39a3ee5e6b4b0d3255bfef95601890afd80709",
            IndicatorType::Sha256 => "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            IndicatorType::Filename => "invoice's copy.pdf.exe",
            IndicatorType::Cve => "CVE-2021-44228",
        }
    }

    /// A full submission: every optional field set (`full`), or none of them.
    fn input(itype: IndicatorType, tlp: Tlp, full: bool) -> IndicatorInput {
        let recipients = if tlp == Tlp::Red { vec!["lv".to_owned(), "lt".to_owned()] } else { vec![] };
        let mut input = IndicatorInput {
            itype: itype.to_string(),
            value: value_of(itype).to_owned(),
            tlp: tlp.to_string(),
            recipients,
            ..IndicatorInput::default()
        };
        if full {
            input.confidence = Some(85);
            input.valid_from = Some("2026-03-01T10:00:00.250Z".into());
            input.valid_until = Some("2026-06-01T00:00:00Z".into());
            input.tags = vec!["phishing".into(), "campaign-x".into()];
            input.description = "Seen in the 'Q1' wave \\ second stage".into();
            input.techniques = vec!["T1566.001".into(), "delivery".into(), "T1204".into()];
        }
        input
    }

    fn indicator(input: &IndicatorInput) -> Indicator {
        Indicator::from_input(input, NOW).unwrap_or_else(|e| panic!("{input:?}: {e}"))
    }

    /// The API's view of `ind` as entry `id`, signed at `created`.
    fn view(ind: &Indicator, id: &str, created: &str) -> IndicatorView {
        let (origin, seq) = id.split_once(':').expect("test ids are origin:seq");
        IndicatorView {
            id: id.into(),
            origin: origin.into(),
            seq: seq.parse().expect("test seqs are numbers"),
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
            created: created.into(),
            content_id: hex::encode(ind.content_id()),
            retracted: false,
            retracted_by: None,
            retracted_at: None,
            retraction_reason: String::new(),
            sightings: 0,
            sighting_reports: vec![],
            cursor: 0,
        }
    }

    fn retracted(mut v: IndicatorView, at: &str) -> IndicatorView {
        v.retracted = true;
        v.retracted_by = Some(format!("{}:99", v.origin));
        v.retracted_at = Some(at.into());
        v.retraction_reason = "false positive".into();
        v
    }

    fn sighting(id: &str, count: u32) -> SightingView {
        SightingView {
            id: id.into(),
            by: id.split(':').next().unwrap_or_default().into(),
            count,
            created: "2026-03-02T09:00:00.000Z".into(),
            first_seen: "2026-03-02T08:00:00.000Z".into(),
            last_seen: "2026-03-02T08:30:00.000Z".into(),
        }
    }

    fn import_value(bundle: &Value) -> ImportReport {
        let bytes = serde_json::to_vec(bundle).expect("a Value serialises");
        import_bundle(&bytes).unwrap_or_else(|e| panic!("import failed: {e}"))
    }

    /// ctix → STIX → ctix: the imported submission, with the TLP:RED recipients (which STIX does
    /// not carry) named again, makes the same indicator.
    fn round_trip(ind: &Indicator) -> Indicator {
        let report = import_value(&bundle(&[view(ind, "ee:12", CREATED)]));
        assert!(report.skipped.iter().all(|s| s.reason.starts_with("context")), "{:?}", report.skipped);
        assert_eq!(report.items.len(), 1, "{report:?}");
        let mut input = report.items[0].input.clone();
        assert!(input.recipients.is_empty());
        input.recipients = ind.recipients.iter().map(|r| r.to_string()).collect();
        indicator(&input)
    }

    #[test]
    fn every_type_and_tlp_round_trips() {
        for itype in IndicatorType::ALL {
            for tlp in Tlp::ALL {
                for full in [true, false] {
                    let original = indicator(&input(itype, tlp, full));
                    assert_eq!(round_trip(&original), original, "{itype} {tlp} full={full}");
                }
            }
        }
    }

    #[test]
    fn ipv4_networks_round_trip_as_cidr() {
        let original = indicator(&IndicatorInput {
            itype: "cidr".into(),
            value: "198.51.100.0/24".into(),
            ..input(IndicatorType::Cidr, Tlp::Green, true)
        });
        assert_eq!(pattern(original.itype, &original.value), "[ipv4-addr:value = '198.51.100.0/24']");
        assert_eq!(round_trip(&original), original);
    }

    #[test]
    fn patterns_of_each_type() {
        let check = |itype, want: &str| assert_eq!(pattern(itype, value_of(itype)), want, "{itype}");
        check(IndicatorType::Ipv4, "[ipv4-addr:value = '203.0.113.7']");
        check(IndicatorType::Ipv6, "[ipv6-addr:value = '2001:db8::7']");
        check(IndicatorType::Cidr, "[ipv6-addr:value = '2001:db8::/32']");
        check(IndicatorType::Domain, "[domain-name:value = 'login-update.example']");
        check(IndicatorType::Url, "[url:value = 'https://login-update.example/drop.php?id=7']");
        check(IndicatorType::Email, r"[email-addr:value = 'o\'brien\\ops@login-update.example']");
        check(IndicatorType::Md5, "[file:hashes.MD5 = 'd41d8cd98f00b204e9800998ecf8427e']");
        check(IndicatorType::Sha1, "[file:hashes.'SHA-1' = 'da39a3ee5e6b4b0d3255bfef95601890afd80709']");
        check(
            IndicatorType::Sha256,
            "[file:hashes.'SHA-256' = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855']",
        );
        check(IndicatorType::Filename, r"[file:name = 'invoice\'s copy.pdf.exe']");
        check(IndicatorType::Cve, "[x-ctix-cve:value = 'CVE-2021-44228']");
    }

    #[test]
    fn pattern_strings_escape_quotes_and_backslashes() {
        assert_eq!(pattern(IndicatorType::Filename, r"a'b\c"), r"[file:name = 'a\'b\\c']");
        assert_eq!(pattern(IndicatorType::Filename, r"\'"), r"[file:name = '\\\'']");
        assert_eq!(parse_pattern(r"[file:name = 'a\'b\\c']"), Ok(vec![("file:name".into(), r"a'b\c".into())]));
    }

    #[test]
    fn ids_are_deterministic_and_distinct() {
        assert_eq!(indicator_id("ee:12"), indicator_id("ee:12"));
        assert_ne!(indicator_id("ee:12"), indicator_id("ee:13"));
        assert_ne!(indicator_id("ee:12"), indicator_id("lv:12"));
        assert_ne!(sighting_id("ee:12")[10..], indicator_id("ee:12")[11..]);
        assert_ne!(identity_id("ee"), identity_id("lv"));
        // Pinned (checked with Python's uuid.uuid5): a change re-keys every object every consumer
        // holds (see CTIX_NAMESPACE).
        assert_eq!(indicator_id("ee:12"), "indicator--71f5c2fa-1354-5bd9-90cf-7c08c7248532");
        assert_eq!(sighting_id("lv:7"), "sighting--f6c99a66-1160-56a1-a496-3ad51a5ff6b2");
        assert_eq!(identity_id("ee"), "identity--216b4ba2-ec43-589e-a3f1-7381866680fd");
        let uuid = Uuid::parse_str(&indicator_id("ee:12")["indicator--".len()..]).expect("a UUID");
        assert_eq!(uuid.get_version_num(), 5);
    }

    #[test]
    fn marking_definitions_are_the_oasis_tlp2_objects() {
        // From oasis-open/cti-stix-common-objects, objects/marking-definition/ and
        // extension-definition-specifications/tlp-2.0/examples/.
        let published = [
            (Tlp::Clear, "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487", "TLP:CLEAR", "clear"),
            (Tlp::Green, "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb", "TLP:GREEN", "green"),
            (Tlp::Amber, "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421", "TLP:AMBER", "amber"),
            (
                Tlp::AmberStrict,
                "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
                "TLP:AMBER+STRICT",
                "amber+strict",
            ),
            (Tlp::Red, "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1", "TLP:RED", "red"),
        ];
        for (tlp, id, name, level) in published {
            assert_eq!(marking_id(tlp), id);
            let want = json!({
                "type": "marking-definition",
                "spec_version": "2.1",
                "id": id,
                "created": "2022-10-01T00:00:00.000Z",
                "name": name,
                "extensions": {
                    "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d": {
                        "extension_type": "property-extension",
                        "tlp_2_0": level
                    }
                }
            });
            assert_eq!(marking_definition(tlp), want);
        }
    }

    #[test]
    fn indicator_object_fields() {
        let ind = indicator(&input(IndicatorType::Ipv4, Tlp::AmberStrict, true));
        let o = indicator_object(&view(&ind, "ee:12", CREATED));
        assert_eq!(o["id"], json!(indicator_id("ee:12")));
        assert_eq!(o["created"], json!(CREATED));
        assert_eq!(o["modified"], json!(CREATED));
        assert_eq!(o["created_by_ref"], json!(identity_id("ee")));
        assert_eq!(o["name"], json!("ipv4 203.0.113.7"));
        assert_eq!(o["valid_from"], json!("2026-03-01T10:00:00.250Z"));
        assert_eq!(o["valid_until"], json!("2026-06-01T00:00:00.000Z"));
        assert_eq!(o["confidence"], json!(85));
        assert_eq!(o["labels"], json!(["campaign-x", "phishing"]));
        assert_eq!(o["indicator_types"], json!(["malicious-activity"]));
        assert_eq!(o["object_marking_refs"], json!([marking_id(Tlp::AmberStrict)]));
        assert_eq!(
            o["external_references"],
            json!([
                { "source_name": "mitre-attack", "external_id": "T1204", "url": "https://attack.mitre.org/techniques/T1204/" },
                {
                    "source_name": "mitre-attack",
                    "external_id": "T1566.001",
                    "url": "https://attack.mitre.org/techniques/T1566/001/"
                }
            ])
        );
        assert_eq!(
            o["kill_chain_phases"],
            json!([{ "kill_chain_name": "lockheed-martin-cyber-kill-chain", "phase_name": "delivery" }])
        );
        assert!(o.get("revoked").is_none());

        let bare = indicator_object(&view(&indicator(&input(IndicatorType::Cve, Tlp::Clear, false)), "ee:3", CREATED));
        assert_eq!(bare["indicator_types"], json!(["unknown"]));
        for absent in ["valid_until", "description", "labels", "kill_chain_phases", "revoked"] {
            assert!(bare.get(absent).is_none(), "{absent} in {bare}");
        }
        assert_eq!(
            bare["external_references"],
            json!([{
                "source_name": "cve",
                "external_id": "CVE-2021-44228",
                "url": "https://www.cve.org/CVERecord?id=CVE-2021-44228"
            }])
        );
    }

    #[test]
    fn valid_until_stays_after_valid_from() {
        let mut v = view(&indicator(&input(IndicatorType::Domain, Tlp::Green, true)), "ee:4", CREATED);
        v.valid_until = Some(v.valid_from.clone());
        assert_eq!(indicator_object(&v)["valid_until"], json!("2026-03-01T10:00:00.251Z"));
    }

    #[test]
    fn a_retraction_is_a_revoked_version() {
        let v = view(&indicator(&input(IndicatorType::Url, Tlp::Green, true)), "ee:5", CREATED);
        assert_eq!(indicator_versions(&v), vec![indicator_object(&v)]);

        let r = retracted(v.clone(), "2026-03-05T00:00:00.000Z");
        let versions = indicator_versions(&r);
        assert_eq!(versions.len(), 2);
        assert_eq!(versions[0], indicator_object(&v));
        assert_eq!(versions[1], indicator_object(&r));
        assert_eq!(versions[1]["id"], versions[0]["id"]);
        assert_eq!(versions[1]["created"], json!(CREATED));
        assert_eq!(versions[1]["modified"], json!("2026-03-05T00:00:00.000Z"));
        assert_eq!(versions[1]["revoked"], json!(true));

        // A retraction signed on a clock behind the indicator's still makes a later version.
        let skewed = retracted(v, "2026-02-01T00:00:00.000Z");
        assert_eq!(indicator_object(&skewed)["modified"], json!("2026-03-01T12:00:00.001Z"));

        let report = import_value(&bundle(&[r]));
        assert!(report.items.is_empty());
        assert_eq!(report.reasons().get("revoked indicator"), Some(&1));
    }

    #[test]
    fn sighting_object_fields() {
        let v = view(&indicator(&input(IndicatorType::Sha256, Tlp::Red, true)), "ee:6", CREATED);
        let o = sighting_object(&v, &sighting("lv:7", u32::MAX));
        assert_eq!(o["id"], json!(sighting_id("lv:7")));
        assert_eq!(o["sighting_of_ref"], json!(indicator_id("ee:6")));
        assert_eq!(o["created_by_ref"], json!(identity_id("lv")));
        assert_eq!(o["where_sighted_refs"], json!([identity_id("lv")]));
        assert_eq!(o["count"], json!(999_999_999));
        assert_eq!(o["first_seen"], json!("2026-03-02T08:00:00.000Z"));
        assert_eq!(o["last_seen"], json!("2026-03-02T08:30:00.000Z"));
        assert_eq!(o["object_marking_refs"], json!([marking_id(Tlp::Red)]));
    }

    #[test]
    fn bundle_holds_each_object_once_in_a_fixed_order() {
        let mut a = view(&indicator(&input(IndicatorType::Ipv4, Tlp::Green, true)), "ee:1", CREATED);
        a.sighting_reports = vec![sighting("lv:7", 2), sighting("lt:3", 1)];
        let b = view(&indicator(&input(IndicatorType::Domain, Tlp::Red, false)), "lv:2", CREATED);
        let one = bundle(&[a.clone(), b.clone(), a.clone()]);
        let ids: Vec<&str> =
            one["objects"].as_array().expect("objects").iter().filter_map(|o| o["id"].as_str()).collect();
        let want = [
            marking_id(Tlp::Green).to_owned(),
            marking_id(Tlp::Red).to_owned(),
            identity_id("ee"),
            identity_id("lt"),
            identity_id("lv"),
            indicator_id("ee:1"),
            sighting_id("lv:7"),
            sighting_id("lt:3"),
            indicator_id("lv:2"),
        ];
        assert_eq!(ids, want);
        assert_eq!(bundle(&[a.clone(), b.clone()]), one, "same views, same bundle and id");
        let after_retraction = bundle(&[retracted(a, "2026-03-09T00:00:00.000Z"), b]);
        assert_ne!(after_retraction["id"], one["id"], "a new version makes a new bundle id");
        assert!(one["id"].as_str().is_some_and(|id| id.starts_with("bundle--")));
    }

    /// Indicators of every type and every TLP, a retracted one and sightings: what the fixture
    /// checked with the stix2-validator holds.
    fn sample_views() -> Vec<IndicatorView> {
        let mut views: Vec<IndicatorView> = IndicatorType::ALL
            .into_iter()
            .enumerate()
            .map(|(i, itype)| {
                let tlp = Tlp::ALL[i % Tlp::ALL.len()];
                let origin = ["ee", "lv", "lt"][i % 3];
                view(&indicator(&input(itype, tlp, i % 2 == 0)), &format!("{origin}:{}", i + 1), CREATED)
            })
            .collect();
        views[0].sighting_reports = vec![sighting("lv:40", 3), sighting("lt:41", 1)];
        views[1] = retracted(views[1].clone(), "2026-03-04T00:00:00.000Z");
        views
    }

    #[test]
    fn sample_bundle_is_the_validated_fixture() {
        let produced = bundle(&sample_views());
        if std::env::var_os("CTIX_WRITE_STIX_FIXTURE").is_some() {
            let text = serde_json::to_string_pretty(&produced).expect("a Value serialises") + "\n";
            std::fs::write(SAMPLE_FIXTURE, text).expect("fixture written");
        }
        let fixture: Value = serde_json::from_str(&std::fs::read_to_string(SAMPLE_FIXTURE).expect("fixture read"))
            .expect("the fixture is JSON");
        assert!(
            produced == fixture,
            "the STIX export changed: rewrite the fixture with CTIX_WRITE_STIX_FIXTURE=1 cargo test --lib \
             interop::stix, then check it with stix2_validator tests/data/stix/sample-bundle.json"
        );
    }

    #[test]
    fn parsed_objects_import_as_their_bundle_does() {
        let bundle: Value = serde_json::from_str(PYTHON_FIXTURE).unwrap();
        let objects = bundle["objects"].as_array().unwrap();
        let from_bundle = import_bundle(PYTHON_FIXTURE.as_bytes()).unwrap();
        assert!(!from_bundle.items.is_empty() && !from_bundle.skipped.is_empty(), "the fixture has both kinds");
        assert_eq!(import_values(objects).unwrap(), from_bundle);
    }

    #[test]
    fn imports_what_the_python_stix2_library_writes() {
        let report = import_bundle(PYTHON_FIXTURE.as_bytes()).expect("a bundle");
        let got: Vec<(&str, &str, &str)> = report
            .items
            .iter()
            .map(|i| (i.input.itype.as_str(), i.input.value.as_str(), i.input.tlp.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("ipv4", "198.51.100.23", "green"),
                ("domain", "login-update.example", "amber"),
                ("sha256", "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855", "red"),
                ("url", "http://198.51.100.23/a.php", "clear"),
                ("url", "https://login-update.example/x?a=1", "clear"),
                ("cve", "CVE-2021-44228", "green"),
            ]
        );
        let ip = &report.items[0].input;
        assert_eq!(ip.tags, ["botnet", "c2"]);
        assert_eq!(ip.confidence, Some(70));
        assert_eq!(ip.description, "Botnet C2");
        assert_eq!(ip.valid_from.as_deref(), Some("2026-02-01T08:00:00Z"));
        assert_eq!(ip.valid_until.as_deref(), Some("2026-05-01T00:00:00Z"));
        assert_eq!(ip.techniques, ["T1071.001", "command-and-control"]);
        for item in &report.items {
            let mut input = item.input.clone();
            if input.tlp == "red" {
                input.recipients = vec!["lv".into()];
            }
            indicator(&input);
        }
        let reasons = report.reasons();
        let want = [
            ("context object (not an indicator)", 2),
            (PATTERN_NOT_SINGLE, 1),
            ("sightings are not imported", 1),
            ("unsupported object type malware", 1),
            ("unsupported object type relationship", 1),
        ];
        assert_eq!(reasons, want.into_iter().map(|(r, n)| (r.to_owned(), n)).collect());
    }

    /// A bundle of `objects`, as bytes.
    fn bundle_of(objects: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({ "type": "bundle", "id": "bundle--1", "objects": objects })).expect("serialises")
    }

    fn stix_indicator(id: &str, pattern: &str) -> Value {
        json!({
            "type": "indicator", "spec_version": "2.1", "id": id, "pattern": pattern, "pattern_type": "stix",
            "created": "2026-01-01T00:00:00Z", "modified": "2026-01-01T00:00:00Z", "valid_from": "2026-01-01T00:00:00Z"
        })
    }

    #[test]
    fn every_skipped_object_has_its_reason() {
        let mut revoked = stix_indicator("indicator--r", "[ipv4-addr:value = '203.0.113.9']");
        revoked["revoked"] = json!(true);
        let mut sigma = stix_indicator("indicator--s", "title: x");
        sigma["pattern_type"] = json!("sigma");
        let mut no_pattern = stix_indicator("indicator--n", "");
        if let Some(o) = no_pattern.as_object_mut() {
            o.remove("pattern");
        }
        let objects = json!([
            { "type": "malware", "id": "malware--1", "name": "x", "is_family": false },
            stix_indicator("indicator--a", "[ipv4-addr:value = '203.0.113.9' AND ipv4-addr:value = '203.0.113.10']"),
            stix_indicator("indicator--w", "[windows-registry-key:key = 'HKEY_LOCAL_MACHINE\\\\Run']"),
            stix_indicator("indicator--l", "[url:value LIKE '%evil%']"),
            stix_indicator("indicator--b", "[url:value = 'http://x.example/'"),
            revoked,
            sigma,
            no_pattern,
            { "type": "identity", "id": "identity--1", "name": "x" },
            { "type": "marking-definition", "id": "marking-definition--1" },
            { "type": "extension-definition", "id": "extension-definition--1" },
            { "type": "sighting", "id": "sighting--1", "sighting_of_ref": "indicator--a" },
            { "type": "vulnerability", "id": "vulnerability--1", "name": "Heartbleed-like bug" },
            42,
            { "id": "x--1" },
        ]);
        let report = import_bundle(&bundle_of(objects)).expect("a bundle");
        assert!(report.items.is_empty(), "{:?}", report.items);
        let got: Vec<(&str, &str, &str)> =
            report.skipped.iter().map(|s| (s.source_id.as_str(), s.kind.as_str(), s.reason.as_str())).collect();
        let context = "context object (not an indicator)";
        assert_eq!(
            got,
            [
                ("malware--1", "malware", "unsupported object type malware"),
                ("indicator--a", "indicator", PATTERN_NOT_SINGLE),
                ("indicator--w", "indicator", "unsupported pattern object path windows-registry-key:key"),
                ("indicator--l", "indicator", "pattern uses operator LIKE, not ="),
                ("indicator--b", "indicator", PATTERN_INVALID),
                ("indicator--r", "indicator", "revoked indicator"),
                ("indicator--s", "indicator", "pattern_type sigma is not stix"),
                ("indicator--n", "indicator", "missing pattern"),
                ("identity--1", "identity", context),
                ("marking-definition--1", "marking-definition", context),
                ("extension-definition--1", "extension-definition", context),
                ("sighting--1", "sighting", "sightings are not imported"),
                ("vulnerability--1", "vulnerability", "vulnerability without a CVE id"),
                ("objects[13]", "", "not a JSON object"),
                ("x--1", "", "object without a type"),
            ]
        );
    }

    #[test]
    fn an_or_pattern_gives_one_indicator_per_comparison() {
        let objects = json!([stix_indicator(
            "indicator--o",
            "([ipv4-addr:value = '203.0.113.9'] OR [file:hashes.'SHA-512' = 'ab']) OR [(domain-name:value = 'a.example' OR file:hashes.sha256 = 'AB')]"
        )]);
        let report = import_bundle(&bundle_of(objects)).expect("a bundle");
        let got: Vec<(&str, &str)> =
            report.items.iter().map(|i| (i.input.itype.as_str(), i.input.value.as_str())).collect();
        assert_eq!(got, [("ipv4", "203.0.113.9"), ("domain", "a.example"), ("sha256", "AB")]);
        assert_eq!(
            report.reasons().into_iter().collect::<Vec<_>>(),
            [("unsupported pattern object path file:hashes.'SHA-512'".to_owned(), 1)]
        );
        assert!(report.items.iter().all(|i| i.source_id == "indicator--o"));
    }

    #[test]
    fn the_latest_version_of_an_object_is_imported() {
        let old = stix_indicator("indicator--v", "[ipv4-addr:value = '203.0.113.1']");
        let mut new = stix_indicator("indicator--v", "[ipv4-addr:value = '203.0.113.2']");
        new["modified"] = json!("2026-01-02T00:00:00.5Z");
        let report = import_bundle(&bundle_of(json!([new, old, new]))).expect("a bundle");
        assert_eq!(report.items.len(), 1);
        assert_eq!(report.items[0].input.value, "203.0.113.2");
        assert_eq!(report.reasons().get(SUPERSEDED), Some(&2));
    }

    #[test]
    fn tlp_comes_from_the_strictest_marking() {
        let mut objects = vec![json!({
            "type": "marking-definition", "spec_version": "2.1", "id": "marking-definition--opencti-red",
            "definition_type": "TLP", "name": "TLP:RED", "definition": { "TLP": "TLP:RED" }
        })];
        // A bundle cannot give a published TLP id another level.
        objects.push(json!({
            "type": "marking-definition", "id": marking_id(Tlp::Red), "name": "TLP:CLEAR",
            "extensions": { TLP2_EXTENSION: { "extension_type": "property-extension", "tlp_2_0": "clear" } }
        }));
        let cases: [(&[&str], &str); 7] = [
            (&[], "amber"),
            (&["marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9"], "clear"),
            (&["marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"], "green"),
            (&["marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003"], "amber+strict"),
            (&["marking-definition--opencti-red", "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487"], "red"),
            (&[marking_id(Tlp::Red)], "red"),
            (&["marking-definition--unknown-statement"], "amber"),
        ];
        for (i, (refs, _)) in cases.iter().enumerate() {
            let mut o = stix_indicator(&format!("indicator--{i}"), "[domain-name:value = 'a.example']");
            o["object_marking_refs"] = json!(refs);
            objects.push(o);
        }
        let report = import_bundle(&bundle_of(Value::Array(objects))).expect("a bundle");
        let got: Vec<&str> = report.items.iter().map(|i| i.input.tlp.as_str()).collect();
        let want: Vec<&str> = cases.iter().map(|(_, tlp)| *tlp).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn foreign_fields_are_mapped() {
        let mut o = stix_indicator("indicator--f", "[email-addr:value = 'a@b.example']");
        o["name"] = json!("Phishing sender");
        o["labels"] = json!(["Phish", 7]);
        o["confidence"] = json!(15);
        o["kill_chain_phases"] = json!([
            { "kill_chain_name": "lockheed-martin-cyber-kill-chain", "phase_name": "Delivery" },
            { "kill_chain_name": "mitre-attack", "phase_name": "initial-access" }
        ]);
        o["external_references"] = json!([
            { "source_name": "mitre-attack", "external_id": "t1566.002" },
            { "source_name": "mitre-attack", "external_id": "TA0001" },
            { "source_name": "capec", "external_id": "CAPEC-98" }
        ]);
        let long = "é".repeat(DESCRIPTION_BYTES_MAX);
        let mut v = json!({
            "type": "vulnerability", "id": "vulnerability--2", "name": "Log4Shell", "description": long,
            "external_references": [{ "source_name": "cve", "external_id": "CVE-2021-44228" }]
        });
        v["confidence"] = json!("high");
        let report = import_bundle(&bundle_of(json!([o, v]))).expect("a bundle");
        let (email, cve) = (&report.items[0].input, &report.items[1].input);
        assert_eq!(email.description, "Phishing sender");
        assert_eq!(email.tags, ["Phish"]);
        assert_eq!(email.confidence, Some(15));
        assert_eq!(email.techniques, ["T1566.002", "delivery"]);
        assert_eq!((cve.itype.as_str(), cve.value.as_str(), cve.confidence), ("cve", "CVE-2021-44228", None));
        assert!(cve.description.len() <= DESCRIPTION_BYTES_MAX && cve.description.ends_with("é…"));
        indicator(cve);
    }

    #[test]
    fn patterns_that_are_not_imported() {
        let check = |p: &str, want: &str| assert_eq!(parse_pattern(p), Err(want.to_owned()), "{p}");
        check("", PATTERN_INVALID);
        check("[ipv4-addr:value = '1.2.3.4'", PATTERN_INVALID);
        check("[ipv4-addr:value = 'x\\q']", PATTERN_INVALID);
        check("[ipv4-addr:value = 'x'] [url:value = 'y']", PATTERN_INVALID);
        check("[ipv4-addr:value = 'x'] WITHIN 300 SECONDS", PATTERN_NOT_SINGLE);
        check("[ipv4-addr:value = 'x'] FOLLOWEDBY [url:value = 'y']", PATTERN_NOT_SINGLE);
        check("[ipv4-addr:value NOT = 'x']", PATTERN_NOT_SINGLE);
        check("[file:name IN ('a', 'b')]", "pattern uses operator IN, not =");
        check("[file:size >= 5]", "pattern uses operator >=, not =");
        check("[file:name matches 'a.*']", "pattern uses operator MATCHES, not =");
        check("[file:size = 5]", PATTERN_NOT_STRING);
        check("[file:created = t'2026-01-01T00:00:00Z']", PATTERN_NOT_STRING);
        check(&format!("{}[file:name = 'a']{}", "(".repeat(100), ")".repeat(100)), PATTERN_TOO_DEEP);
        check(&format!("[{}file:name = 'a'{}]", "(".repeat(100_000), ")".repeat(100_000)), PATTERN_TOO_DEEP);
    }

    #[test]
    fn object_paths_of_patterns() {
        let paths = |p: &str| parse_pattern(p).map(|c| c.into_iter().map(|(path, _)| path).collect::<Vec<_>>());
        assert_eq!(paths("[file:hashes.'SHA-256' = 'ab']"), Ok(vec!["file:hashes.'SHA-256'".into()]));
        assert_eq!(
            paths("[email-message:to_refs[*].value = 'a@b.example']"),
            Ok(vec!["email-message:to_refs[*].value".into()])
        );
        assert_eq!(
            paths("[network-traffic:extensions.'http-request-ext'.request_value='/x']"),
            Ok(vec!["network-traffic:extensions.'http-request-ext'.request_value".into()])
        );
        assert_eq!(path_type("file:hashes.'SHA-1'", "x"), Some(IndicatorType::Sha1));
        assert_eq!(path_type("file:hashes.SHA1", "x"), Some(IndicatorType::Sha1));
        assert_eq!(path_type("file:hashes.md5", "x"), Some(IndicatorType::Md5));
        assert_eq!(path_type("ipv4-addr:value", "10.0.0.0/8"), Some(IndicatorType::Cidr));
        assert_eq!(path_type("ipv6-addr:value", "2001:db8::1"), Some(IndicatorType::Ipv6));
        assert_eq!(path_type("vulnerability:name", "CVE-2021-44228"), None);
    }

    #[test]
    fn files_that_are_not_bundles() {
        let check = |file: &[u8], want: &str| {
            let err = import_bundle(file).expect_err("not a bundle");
            assert!(err.contains(want), "{err:?} lacks {want:?}");
        };
        check(b"", "not JSON");
        check(b"hello", "not JSON");
        check(b"{\"type\": \"bundle\", ", "not JSON");
        check(b"[1, 2]", "JSON but not a STIX bundle");
        check(b"{\"type\": \"indicator\", \"id\": \"indicator--1\"}", "a STIX indicator object, not a bundle: wrap it");
        check(b"{\"objects\": []}", "no \"type\": \"bundle\"");
        check(b"{\"type\": 7, \"objects\": []}", "no \"type\": \"bundle\"");
        check(b"{\"type\": \"bundle\", \"id\": \"bundle--1\"}", "no \"objects\" array");
        check(b"{\"type\": \"bundle\", \"objects\": {}}", "expected an array of STIX objects");
        let mut huge = b"{\"type\": \"bundle\", \"objects\": [".to_vec();
        huge.extend(b"{},".repeat(OBJECTS_MAX));
        huge.extend(b"{}]}");
        check(&huge, &format!("has {} objects: at most {OBJECTS_MAX}", OBJECTS_MAX + 1));
        assert_eq!(import_bundle(b" {\"type\": \"bundle\", \"objects\": []}"), Ok(ImportReport::default()));
    }

    #[test]
    fn or_patterns_cannot_expand_without_bound() {
        let description = "d".repeat(1000);
        let comparisons = vec!["file:name = 'a'"; 100].join(" OR ");
        let mut o = stix_indicator("indicator--x", &format!("[{comparisons}]"));
        o["description"] = json!(description);
        let objects = [o];
        assert_eq!(import_objects(&objects, 1_000_000).map(|r| r.items.len()), Ok(100));
        let err = import_objects(&objects, 50_000).expect_err("over the budget");
        assert!(err.contains("more than 50000 bytes") && err.contains("split the bundle"), "{err}");
    }

    #[test]
    fn shown_keeps_messages_short_and_clean() {
        assert_eq!(shown("windows-registry-key:key"), "windows-registry-key:key");
        assert_eq!(shown("a b"), "\"a b\"");
        assert_eq!(shown("x\ny"), "\"x\\ny\"");
        assert_eq!(shown(&"a".repeat(1000)), format!("\"{}\"…", "a".repeat(SHOWN_CHARS_MAX)));
    }

    #[test]
    fn times_parse_as_the_model_does() {
        for t in ["2026-03-01T10:00:00.250Z", "2026-03-01T10:00:00Z", "2026-03-01T12:00:00.250+02:00"] {
            assert_eq!(stix_ms(t).map(format_time), parse_time(t, 0).ok().map(format_time), "{t}");
        }
        assert_eq!(stix_ms("1969-12-31T23:59:59Z"), None);
    }

    proptest! {
        #[test]
        fn any_string_survives_a_pattern(value in any::<String>()) {
            let p = pattern(IndicatorType::Filename, &value);
            prop_assert_eq!(parse_pattern(&p), Ok(vec![("file:name".to_owned(), value)]));
        }

        #[test]
        fn filenames_and_descriptions_round_trip(name in "[a-zA-Z0-9' ._()-]{1,40}", description in any::<String>()) {
            let mut i = input(IndicatorType::Filename, Tlp::Green, true);
            i.value = name;
            i.description = description;
            let original = Indicator::from_input(&i, NOW);
            prop_assume!(original.is_ok());
            let original = original.expect("assumed");
            prop_assert_eq!(round_trip(&original), original);
        }

        #[test]
        fn import_never_panics_on_patterns(p in any::<String>(), q in "[\\[\\]()' =a-z:.\\\\-]{0,40}") {
            for pattern in [p, q] {
                let file = bundle_of(json!([stix_indicator("indicator--p", &pattern)]));
                prop_assert!(import_bundle(&file).is_ok());
            }
        }

        #[test]
        fn import_never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = import_bundle(&bytes);
        }
    }
}
