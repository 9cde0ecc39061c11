//! The TAXII 2.1 server under `/taxii2/`: discovery, one API root (`/taxii2/api/`), a read-only
//! collection per TLP level a token may read plus `all`, and a write-only `inbox`.
//!
//! Objects are this node's indicators (one STIX version per entry: the indicator as signed, and a
//! revoked version when its origin retracts it) and sightings, in the store's arrival order. The
//! `next` cursor is an arrival number, so paging never skips or repeats an object while others
//! are added; `date_added` is the arrival's own time, strictly increasing in µs, so `added_after`
//! with the `X-TAXII-Date-Added-Last` of a page also continues exactly. Drill records never
//! arrive in that order, so they are never served. Every answer, errors included, is
//! `application/taxii+json;version=2.1`; errors are TAXII error messages.
//!
//! Authentication: HTTP basic (user = the token's `name`, password = the token) or a bearer
//! token, both from the node's `[api] tokens`. A read-only token never sees TLP:AMBER+STRICT and
//! cannot write to the inbox.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, RawQuery, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{Value, json};

use super::{Inner, read_store};
use crate::config::Role;
use crate::interop::{self, stix};
use crate::model::{Body, EntryId, EntryKind, Tlp};
use crate::store::{Arrival, Store, StoreError};
use crate::view::{IndicatorView, REQUEST_BYTES_MAX, SUBMIT_BATCH_MAX};

/// The media type of every TAXII answer and of POSTed envelopes.
pub const TAXII_MEDIA: &str = "application/taxii+json;version=2.1";
/// The media type of the STIX objects the collections hold.
pub const STIX_MEDIA: &str = "application/stix+json;version=2.1";
/// Objects per page when the client gives no `limit`.
pub const PAGE_DEFAULT: usize = 100;
/// Most objects per page, whatever `limit` asks for.
pub const PAGE_MAX: usize = 1000;
/// Most arrivals one request examines: a filter that matches little ends the page early (with
/// `more` and a `next` cursor) instead of scanning the whole store in one request.
pub const SCAN_MAX: usize = 20_000;
/// Most objects in one POST (one batch append).
pub const POST_OBJECTS_MAX: usize = SUBMIT_BATCH_MAX;
/// Most `match[id]` / `match[type]` / `match[version]` values in one request.
pub const MATCH_VALUES_MAX: usize = 100;
/// Status resources kept for `GET status/{id}`; the oldest is forgotten first.
pub const STATUS_KEEP_MAX: usize = 1000;

pub const DISCOVERY: &str = "/taxii2/";
pub const API_ROOT: &str = "/taxii2/api/";
pub const COLLECTIONS: &str = "/taxii2/api/collections/";
pub const COLLECTION: &str = "/taxii2/api/collections/{cid}/";
pub const OBJECTS: &str = "/taxii2/api/collections/{cid}/objects/";
pub const OBJECT: &str = "/taxii2/api/collections/{cid}/objects/{oid}/";
pub const VERSIONS: &str = "/taxii2/api/collections/{cid}/objects/{oid}/versions/";
pub const MANIFEST: &str = "/taxii2/api/collections/{cid}/manifest/";
pub const STATUS: &str = "/taxii2/api/status/{sid}/";

/// Whether a request path is TAXII's, so that its errors are TAXII error messages.
pub fn is_taxii_path(path: &str) -> bool {
    path == "/taxii2" || path.starts_with("/taxii2/")
}

// ---------------------------------------------------------------------------------------------
// Errors

/// A TAXII error message with its status.
#[derive(Debug)]
pub struct TaxiiError {
    pub status: StatusCode,
    pub title: String,
    pub description: String,
}

impl TaxiiError {
    pub fn new(status: StatusCode, title: &str, description: impl Into<String>) -> TaxiiError {
        TaxiiError { status, title: title.into(), description: description.into() }
    }

    fn bad_request(description: impl Into<String>) -> TaxiiError {
        TaxiiError::new(StatusCode::BAD_REQUEST, "Bad request", description)
    }

    fn not_found(description: impl Into<String>) -> TaxiiError {
        TaxiiError::new(StatusCode::NOT_FOUND, "Not found", description)
    }

    fn internal(context: &str, error: &dyn std::fmt::Display) -> TaxiiError {
        tracing::error!(%error, "TAXII: {context}");
        TaxiiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal error",
            "internal error: the node's log has the details; retry, or report it to the node's operator",
        )
    }
}

impl From<super::error::ApiError> for TaxiiError {
    fn from(e: super::error::ApiError) -> TaxiiError {
        let title = match e.status {
            StatusCode::INTERNAL_SERVER_ERROR => "Internal error",
            StatusCode::SERVICE_UNAVAILABLE => "Service unavailable",
            StatusCode::UNAUTHORIZED => "Unauthorized",
            _ => "Error",
        };
        TaxiiError::new(e.status, title, e.detail.message)
    }
}

impl IntoResponse for TaxiiError {
    fn into_response(self) -> Response {
        let body = json!({
            "title": self.title,
            "description": self.description,
            "http_status": self.status.as_u16().to_string(),
        });
        let mut r = taxii_json(self.status, &body);
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"ctix TAXII\", Bearer"));
        }
        r
    }
}

/// A JSON answer with the TAXII media type.
fn taxii_json(status: StatusCode, body: &Value) -> Response {
    taxii_text(status, body.to_string())
}

/// An answer of JSON text already serialised, with the TAXII media type.
fn taxii_text(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(TAXII_MEDIA));
    r
}

/// A TAXII 404 for any path under `/taxii2/` that names no endpoint.
pub fn unknown_endpoint(path: &str) -> Response {
    let path: String = path.chars().take(200).collect();
    let hint = if path.ends_with('/') { "" } else { " (TAXII endpoints end with a slash)" };
    TaxiiError::not_found(format!("no TAXII endpoint {path}{hint}: discovery is at {DISCOVERY}")).into_response()
}

// ---------------------------------------------------------------------------------------------
// Authentication and content negotiation

/// A caller with valid credentials, whose `Accept` header admits TAXII 2.1.
pub struct TaxiiCaller {
    role: Role,
}

impl FromRequestParts<Arc<Inner>> for TaxiiCaller {
    type Rejection = TaxiiError;

    async fn from_request_parts(parts: &mut Parts, inner: &Arc<Inner>) -> Result<Self, TaxiiError> {
        let unauthorized = |d: &str| TaxiiError::new(StatusCode::UNAUTHORIZED, "Unauthorized", d);
        let Some(cred) = credentials(&parts.headers) else {
            return Err(unauthorized(
                "missing credentials: use HTTP basic auth (user = token name, password = token) or \
                 `Authorization: Bearer TOKEN`, with a token from the node's [api] tokens",
            ));
        };
        let (user, secret) = match &cred {
            Credentials::Basic { user, password } => (Some(user.as_str()), password.as_str()),
            Credentials::Bearer(t) => (None, t.as_str()),
        };
        let token = inner.token(secret).filter(|t| user.is_none_or(|u| u == t.name));
        let Some(t) = token else {
            return Err(unauthorized(
                "unknown user or password: use a token name and token from the node's [api] tokens",
            ));
        };
        check_accept(&parts.headers)?;
        tracing::debug!(token = %t.name, method = %parts.method, path = %parts.uri.path(), "TAXII request");
        Ok(TaxiiCaller { role: t.role })
    }
}

enum Credentials {
    Basic { user: String, password: String },
    Bearer(String),
}

fn credentials(headers: &HeaderMap) -> Option<Credentials> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = v.trim().split_once(' ')?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") && !rest.is_empty() {
        return Some(Credentials::Bearer(rest.to_owned()));
    }
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(rest).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some(Credentials::Basic { user: user.to_owned(), password: password.to_owned() })
}

/// 406 unless `Accept` is absent or admits `application/taxii+json` (version 2.1 if one is named).
fn check_accept(headers: &HeaderMap) -> Result<(), TaxiiError> {
    let Some(accept) = headers.get(header::ACCEPT) else { return Ok(()) };
    let accept = accept.to_str().unwrap_or("").to_ascii_lowercase();
    let ok = accept.split(',').any(|item| {
        let mut parts = item.split(';').map(str::trim);
        let media = parts.next().unwrap_or("");
        let version = parts.find_map(|p| p.strip_prefix("version=")).map(|v| v.trim_matches('"'));
        match media {
            "*/*" | "application/*" => true,
            "application/taxii+json" => version.is_none_or(|v| v == "2.1"),
            _ => false,
        }
    });
    if ok {
        Ok(())
    } else {
        Err(TaxiiError::new(
            StatusCode::NOT_ACCEPTABLE,
            "Not acceptable",
            format!("this server answers only {TAXII_MEDIA}: put it in the Accept header"),
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// Collections

/// What a collection holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Holds {
    /// Everything the token may read.
    All,
    /// One TLP level.
    Level(Tlp),
    /// Nothing to read: where clients add objects.
    Inbox,
}

#[derive(Debug, Clone, Copy)]
struct Collection {
    alias: &'static str,
    title: &'static str,
    holds: Holds,
}

const COLLECTIONS_ALL: [Collection; 7] = [
    Collection { alias: "all", title: "Every indicator and sighting this token may read", holds: Holds::All },
    Collection { alias: "tlp-clear", title: "TLP:CLEAR indicators and sightings", holds: Holds::Level(Tlp::Clear) },
    Collection { alias: "tlp-green", title: "TLP:GREEN indicators and sightings", holds: Holds::Level(Tlp::Green) },
    Collection { alias: "tlp-amber", title: "TLP:AMBER indicators and sightings", holds: Holds::Level(Tlp::Amber) },
    Collection {
        alias: "tlp-amber-strict",
        title: "TLP:AMBER+STRICT indicators and sightings",
        holds: Holds::Level(Tlp::AmberStrict),
    },
    Collection {
        alias: "tlp-red",
        title: "TLP:RED indicators this node is a recipient of",
        holds: Holds::Level(Tlp::Red),
    },
    Collection { alias: "inbox", title: "Inbox: add indicators (read-write tokens)", holds: Holds::Inbox },
];

impl Collection {
    /// A collection's id: UUIDv5 of its alias, the same on every node.
    fn id(&self) -> String {
        uuid::Uuid::new_v5(&interop::STIX_NAMESPACE, format!("taxii-collection:{}", self.alias).as_bytes()).to_string()
    }

    fn can_read(&self, role: Role) -> bool {
        match self.holds {
            Holds::All => true,
            Holds::Level(t) => may_read(role, t),
            Holds::Inbox => false,
        }
    }

    fn can_write(&self, role: Role) -> bool {
        self.holds == Holds::Inbox && role == Role::Rw
    }

    /// Listed for a token that can read or write it.
    fn visible(&self, role: Role) -> bool {
        self.can_read(role) || self.can_write(role)
    }

    fn admits(&self, role: Role, tlp: Tlp) -> bool {
        may_read(role, tlp)
            && match self.holds {
                Holds::All => true,
                Holds::Level(t) => t == tlp,
                Holds::Inbox => false,
            }
    }

    fn resource(&self, role: Role) -> Value {
        json!({
            "id": self.id(),
            "title": self.title,
            "alias": self.alias,
            "can_read": self.can_read(role),
            "can_write": self.can_write(role),
            "media_types": [STIX_MEDIA],
        })
    }
}

/// Read-only tokens never see TLP:AMBER+STRICT (as in the REST API).
fn may_read(role: Role, tlp: Tlp) -> bool {
    role == Role::Rw || tlp != Tlp::AmberStrict
}

/// The collection `cid` names (its id or alias) that the token may see; 404 otherwise.
fn collection(cid: &str, role: Role) -> Result<Collection, TaxiiError> {
    COLLECTIONS_ALL.iter().find(|c| (c.id() == cid || c.alias == cid) && c.visible(role)).copied().ok_or_else(|| {
        TaxiiError::not_found(format!("no collection {cid:?} for this token: list them at {COLLECTIONS}"))
    })
}

fn readable(cid: &str, role: Role) -> Result<Collection, TaxiiError> {
    let c = collection(cid, role)?;
    if c.can_read(role) {
        Ok(c)
    } else {
        Err(TaxiiError::new(
            StatusCode::FORBIDDEN,
            "Forbidden",
            format!("collection {} cannot be read: read from `all` or a TLP collection", c.alias),
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// Discovery, API root, collections

/// `GET /taxii2/`.
pub async fn discovery(State(inner): State<Arc<Inner>>, _: TaxiiCaller) -> Response {
    let body = json!({
        "title": format!("ctix node {}", inner.node.name),
        "description": "Signed threat indicators of the ctix federation, as STIX 2.1",
        "default": API_ROOT,
        "api_roots": [API_ROOT],
    });
    taxii_json(StatusCode::OK, &body)
}

/// `GET /taxii2/api/`.
pub async fn api_root(State(inner): State<Arc<Inner>>, _: TaxiiCaller) -> Response {
    let body = json!({
        "title": format!("ctix node {}", inner.node.name),
        "description": "Indicators and sightings by TLP level, and an inbox",
        "versions": [TAXII_MEDIA],
        "max_content_length": REQUEST_BYTES_MAX,
    });
    taxii_json(StatusCode::OK, &body)
}

/// `GET /taxii2/api/collections/`.
pub async fn collections(caller: TaxiiCaller) -> Response {
    let list: Vec<Value> =
        COLLECTIONS_ALL.iter().filter(|c| c.visible(caller.role)).map(|c| c.resource(caller.role)).collect();
    taxii_json(StatusCode::OK, &json!({ "collections": list }))
}

/// `GET /taxii2/api/collections/{cid}/`.
pub async fn collection_one(caller: TaxiiCaller, Path(cid): Path<String>) -> Result<Response, TaxiiError> {
    Ok(taxii_json(StatusCode::OK, &collection(&cid, caller.role)?.resource(caller.role)))
}

// ---------------------------------------------------------------------------------------------
// Query parameters

/// Which versions `match[version]` asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Versions {
    first: bool,
    last: bool,
    all: bool,
    /// Exact `modified` timestamps, compared as µs.
    at: BTreeSet<u64>,
}

impl Versions {
    fn last_only() -> Versions {
        Versions { last: true, ..Versions::default() }
    }

    fn admits(&self, v: &Version) -> bool {
        self.all || (self.first && v.first) || (self.last && v.last) || self.at.contains(&v.modified_us)
    }
}

/// The parameters of objects, manifest, object and versions requests.
#[derive(Debug, Clone, Default)]
struct Params {
    added_after_us: Option<u64>,
    limit: usize,
    next: Option<u64>,
    ids: Option<BTreeSet<String>>,
    types: Option<BTreeSet<String>>,
    versions: Versions,
    /// False when `match[spec_version]` names no version this server has (2.1).
    spec_ok: bool,
}

/// The parameters a request may carry, per endpoint.
const OBJECTS_PARAMS: [&str; 7] =
    ["added_after", "limit", "next", "match[id]", "match[type]", "match[version]", "match[spec_version]"];
const OBJECT_PARAMS: [&str; 5] = ["added_after", "limit", "next", "match[version]", "match[spec_version]"];
const VERSIONS_PARAMS: [&str; 4] = ["added_after", "limit", "next", "match[spec_version]"];

fn parse_params(raw: Option<&str>, allowed: &[&str]) -> Result<Params, TaxiiError> {
    let mut p = Params { limit: PAGE_DEFAULT, versions: Versions::last_only(), spec_ok: true, ..Params::default() };
    let mut seen = BTreeSet::new();
    for (k, v) in url::form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        let Some(name) = allowed.iter().find(|a| **a == k) else {
            return Err(TaxiiError::bad_request(format!(
                "unknown parameter {:?}: this endpoint takes {}",
                k.chars().take(64).collect::<String>(),
                allowed.join(", ")
            )));
        };
        if !seen.insert(*name) {
            return Err(TaxiiError::bad_request(format!(
                "{name} is given twice: give it once (values comma-separated)"
            )));
        }
        let v = v.trim();
        let list = || -> Result<BTreeSet<String>, TaxiiError> {
            let vals: BTreeSet<String> =
                v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect();
            if vals.len() > MATCH_VALUES_MAX {
                return Err(TaxiiError::bad_request(format!(
                    "{name} has over {MATCH_VALUES_MAX} values: split the request"
                )));
            }
            Ok(vals)
        };
        match *name {
            "added_after" => p.added_after_us = Some(parse_timestamp_us(v).map_err(TaxiiError::bad_request)?),
            "limit" => {
                p.limit = match v.parse::<usize>() {
                    Ok(n) if n >= 1 => n.min(PAGE_MAX),
                    _ => return Err(TaxiiError::bad_request(format!("limit {v:?} is not a positive number"))),
                }
            }
            "next" => {
                p.next = Some(v.parse::<u64>().map_err(|_| {
                    TaxiiError::bad_request(format!("next {v:?} is not a cursor: pass the `next` of an earlier answer"))
                })?)
            }
            "match[id]" => p.ids = Some(list()?),
            "match[type]" => p.types = Some(list()?),
            "match[version]" => {
                let mut vs = Versions::default();
                for item in list()? {
                    match item.as_str() {
                        "first" => vs.first = true,
                        "last" => vs.last = true,
                        "all" => vs.all = true,
                        t => {
                            vs.at.insert(parse_timestamp_us(t).map_err(|e| {
                                TaxiiError::bad_request(format!("match[version]: use first, last, all or a time; {e}"))
                            })?);
                        }
                    }
                }
                p.versions = vs;
            }
            "match[spec_version]" => p.spec_ok = list()?.contains("2.1"),
            _ => unreachable!("every allowed parameter is handled"),
        }
    }
    Ok(p)
}

/// An RFC 3339 time as µs since the epoch (TAXII timestamps carry µs).
fn parse_timestamp_us(s: &str) -> Result<u64, String> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map_err(|e| format!("{:?} is not an RFC 3339 time ({e}): use e.g. 2026-11-29T09:00:00.123456Z", s))?;
    u64::try_from(t.unix_timestamp_nanos() / 1000).map_err(|_| format!("{s:?} is before 1970"))
}

/// µs since the epoch as an RFC 3339 UTC time with six fraction digits.
pub fn format_timestamp_us(us: u64) -> String {
    let ms = crate::model::time::format_time(us / 1000);
    // format_time ends "…SS.mmmZ": add the µs digits before the Z.
    match ms.strip_suffix('Z') {
        Some(head) if head.len() >= 4 && head.as_bytes()[head.len() - 4] == b'.' => {
            format!("{head}{:03}Z", us % 1000)
        }
        _ => ms,
    }
}

// ---------------------------------------------------------------------------------------------
// Objects from arrivals

/// One STIX object version served from one arrival.
#[derive(Debug, Clone)]
struct Served {
    arrival: u64,
    added_us: u64,
    id: String,
    /// Its `modified`, as written and as µs.
    version: String,
    object: Value,
}

/// Which version of its object an arrival is.
struct Version {
    first: bool,
    last: bool,
    modified_us: u64,
}

/// The STIX object version an arrival adds, if the collection and filters admit it.
fn served(s: &Store, a: &Arrival, c: &Collection, role: Role, p: &Params) -> Result<Option<Served>, StoreError> {
    if !p.spec_ok {
        return Ok(None);
    }
    let Some(entry) = s.get(&a.id)? else { return Ok(None) };
    let kind = EntryKind::from_u8(entry.header().kind);
    let (indicator, what) = match (kind, entry.body()) {
        (Some(EntryKind::Indicator), Some(_)) => (a.id.clone(), What::Signed),
        (Some(EntryKind::Retraction), Some(Body::Retraction(r))) => {
            (EntryId { origin: a.id.origin.clone(), seq: r.target_seq }, What::Revoked)
        }
        (Some(EntryKind::Sighting), Some(Body::Sighting(sg))) => (sg.indicator.clone(), What::Sighting),
        _ => return Ok(None),
    };
    let Some(st) = s.indicator_state(&indicator)? else { return Ok(None) };
    let Some(view) = IndicatorView::from_state(&st, 0) else { return Ok(None) };
    let Ok(tlp) = view.tlp.parse::<Tlp>() else { return Ok(None) };
    if !c.admits(role, tlp) {
        return Ok(None);
    }
    let (object, first, last) = match what {
        What::Signed => {
            let Some(v) = stix::indicator_versions(&view).into_iter().next() else { return Ok(None) };
            (v, true, !view.retracted)
        }
        What::Revoked => {
            let Some(v) = stix::indicator_versions(&view).into_iter().nth(1) else { return Ok(None) };
            (v, false, true)
        }
        What::Sighting => {
            let id = a.id.to_string();
            let Some(sv) = view.sighting_reports.iter().find(|r| r.id == id) else { return Ok(None) };
            (stix::sighting_object(&view, sv), true, true)
        }
    };
    let id = object["id"].as_str().unwrap_or_default().to_owned();
    let version = object["modified"].as_str().unwrap_or_default().to_owned();
    let modified_us = parse_timestamp_us(&version).unwrap_or(0);
    let otype = id.split("--").next().unwrap_or_default();
    let keep = p.types.as_ref().is_none_or(|t| t.contains(otype))
        && p.ids.as_ref().is_none_or(|i| i.contains(&id))
        && p.versions.admits(&Version { first, last, modified_us });
    Ok(keep.then_some(Served { arrival: a.arrival, added_us: a.added_us, id, version, object }))
}

enum What {
    Signed,
    Revoked,
    Sighting,
}

/// A page of served objects, and the cursor to continue from if there may be more.
struct Page {
    items: Vec<Served>,
    next: Option<u64>,
}

/// Walks arrivals from the cursor (`next`, or the first added after `added_after`, whichever is
/// later) and serves up to `limit` objects, examining at most `SCAN_MAX` arrivals.
fn page(s: &Store, c: &Collection, role: Role, p: &Params) -> Result<Page, StoreError> {
    let mut cursor = p.next.unwrap_or(0);
    if let Some(t) = p.added_after_us {
        cursor = cursor.max(s.arrival_cursor_after(t)?);
    }
    if let Some(ids) = &p.ids {
        return page_of_ids(s, c, role, p, ids, cursor);
    }
    let mut items = Vec::new();
    let mut scanned = 0;
    loop {
        let chunk = (SCAN_MAX - scanned).min(1000);
        let (arrivals, more) = s.arrivals(cursor, chunk)?;
        for a in &arrivals {
            scanned += 1;
            cursor = a.arrival;
            if let Some(item) = served(s, a, c, role, p)? {
                items.push(item);
                if items.len() >= p.limit {
                    let more_after = !s.arrivals(cursor, 1)?.0.is_empty();
                    return Ok(Page { items, next: more_after.then_some(cursor) });
                }
            }
        }
        if !more {
            return Ok(Page { items, next: None });
        }
        if scanned >= SCAN_MAX {
            return Ok(Page { items, next: Some(cursor) });
        }
    }
}

/// `match[id]`: only the arrivals of those objects, found through the STIX id index.
fn page_of_ids(
    s: &Store,
    c: &Collection,
    role: Role,
    p: &Params,
    ids: &BTreeSet<String>,
    cursor: u64,
) -> Result<Page, StoreError> {
    let mut arrivals = Vec::new();
    for id in ids {
        arrivals.extend(arrivals_of(s, id)?);
    }
    arrivals.sort_by_key(|a| a.arrival);
    arrivals.dedup_by_key(|a| a.arrival);
    let mut items = Vec::new();
    for a in arrivals.iter().filter(|a| a.arrival > cursor) {
        if items.len() >= p.limit {
            let last = items.last().map(|i: &Served| i.arrival);
            return Ok(Page { items, next: last });
        }
        if let Some(item) = served(s, a, c, role, p)? {
            items.push(item);
        }
    }
    Ok(Page { items, next: None })
}

/// The arrivals that carry versions of the STIX object `id`: an indicator's own and its
/// retraction's, or a sighting's.
fn arrivals_of(s: &Store, id: &str) -> Result<Vec<Arrival>, StoreError> {
    let Some((otype, uuid)) = id.split_once("--") else { return Ok(vec![]) };
    let Ok(uuid) = uuid::Uuid::parse_str(uuid) else { return Ok(vec![]) };
    let Some(entry_id) = s.by_stix_uuid(&uuid)? else { return Ok(vec![]) };
    // The index maps the UUID alone; the type must match too.
    let Some(entry) = s.get(&entry_id)? else { return Ok(vec![]) };
    if interop::stix_type_of(entry.header().kind) != Some(otype) {
        return Ok(vec![]);
    }
    let mut ids = vec![entry_id.clone()];
    if otype == "indicator"
        && let Some(st) = s.indicator_state(&entry_id)?
        && let Some(r) = st.retracted_by
    {
        ids.push(r);
    }
    let mut out = Vec::new();
    for i in ids {
        if let Some(a) = s.arrival_of(&i)?.map(|n| s.arrival_at(n)).transpose()?.flatten() {
            out.push(a);
        }
    }
    Ok(out)
}

/// The `X-TAXII-Date-Added-First/Last` headers of a page with objects.
fn date_headers(r: &mut Response, items: &[Served]) {
    if let (Some(first), Some(last)) = (items.first(), items.last()) {
        for (name, us) in [("x-taxii-date-added-first", first.added_us), ("x-taxii-date-added-last", last.added_us)] {
            if let Ok(v) = HeaderValue::from_str(&format_timestamp_us(us)) {
                r.headers_mut().insert(name, v);
            }
        }
    }
}

/// An envelope-like answer: `more`, `next` when there is more, and the list under `key`.
fn paged(key: &str, list: Vec<Value>, next: Option<u64>) -> Value {
    let mut body = json!({ "more": next.is_some() });
    if let Some(n) = next {
        body["next"] = json!(n.to_string());
    }
    if !list.is_empty() {
        body[key] = Value::Array(list);
    }
    body
}

// ---------------------------------------------------------------------------------------------
// Objects, manifest, object, versions

/// One page of the collection `cid` for the objects and manifest endpoints (same parameters,
/// same walk; they differ only in what they show of each object).
async fn walk(inner: &Arc<Inner>, role: Role, cid: &str, raw: Option<&str>) -> Result<Page, TaxiiError> {
    let c = readable(cid, role)?;
    let p = parse_params(raw, &OBJECTS_PARAMS)?;
    Ok(read_store(inner, move |s| page(s, &c, role, &p)).await?)
}

/// `GET …/collections/{cid}/objects/`: an envelope of objects in arrival order.
pub async fn get_objects(
    State(inner): State<Arc<Inner>>,
    caller: TaxiiCaller,
    Path(cid): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, TaxiiError> {
    let mut pg = walk(&inner, caller.role, &cid, raw.as_deref()).await?;
    // The objects move into the answer (no copy); the date headers need only the arrival times.
    let objects = pg.items.iter_mut().map(|i| i.object.take()).collect();
    let mut r = taxii_json(StatusCode::OK, &paged("objects", objects, pg.next));
    date_headers(&mut r, &pg.items);
    Ok(r)
}

/// `GET …/collections/{cid}/manifest/`: the same walk, as manifest records.
pub async fn get_manifest(
    State(inner): State<Arc<Inner>>,
    caller: TaxiiCaller,
    Path(cid): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, TaxiiError> {
    let pg = walk(&inner, caller.role, &cid, raw.as_deref()).await?;
    let records = pg
        .items
        .iter()
        .map(|i| {
            json!({
                "id": i.id,
                "date_added": format_timestamp_us(i.added_us),
                "version": i.version,
                "media_type": STIX_MEDIA,
            })
        })
        .collect();
    let mut r = taxii_json(StatusCode::OK, &paged("objects", records, pg.next));
    date_headers(&mut r, &pg.items);
    Ok(r)
}

/// Every version of one object the collection admits, in arrival order (at most a few).
async fn versions_of(
    inner: &Arc<Inner>,
    role: Role,
    cid: &str,
    oid: &str,
    mut p: Params,
) -> Result<Vec<Served>, TaxiiError> {
    let c = readable(cid, role)?;
    p.ids = Some([oid.to_owned()].into());
    let oid = oid.to_owned();
    let items = read_store(inner, move |s| {
        let cursor = p.added_after_us.map(|t| s.arrival_cursor_after(t)).transpose()?.unwrap_or(0);
        let mut out = Vec::new();
        for a in arrivals_of(s, &oid)?.into_iter().filter(|a| a.arrival > cursor) {
            out.extend(served(s, &a, &c, role, &p)?);
        }
        Ok(out)
    })
    .await?;
    Ok(items)
}

/// `GET …/collections/{cid}/objects/{oid}/`: the object's versions (default: the last).
pub async fn get_object(
    State(inner): State<Arc<Inner>>,
    caller: TaxiiCaller,
    Path((cid, oid)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Response, TaxiiError> {
    let p = parse_params(raw.as_deref(), &OBJECT_PARAMS)?;
    let limit = p.limit;
    let items = versions_of(&inner, caller.role, &cid, &oid, p).await?;
    if items.is_empty() {
        return Err(TaxiiError::not_found(format!("collection {cid} has no object {oid} that this token may read")));
    }
    let objects = items.iter().take(limit).map(|i| i.object.clone()).collect();
    let mut r = taxii_json(StatusCode::OK, &paged("objects", objects, None));
    date_headers(&mut r, &items[..items.len().min(limit)]);
    Ok(r)
}

/// `GET …/collections/{cid}/objects/{oid}/versions/`: the `modified` of every version.
pub async fn get_versions(
    State(inner): State<Arc<Inner>>,
    caller: TaxiiCaller,
    Path((cid, oid)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Response, TaxiiError> {
    let mut p = parse_params(raw.as_deref(), &VERSIONS_PARAMS)?;
    p.versions = Versions { all: true, ..Versions::default() };
    let limit = p.limit;
    let items = versions_of(&inner, caller.role, &cid, &oid, p).await?;
    if items.is_empty() {
        return Err(TaxiiError::not_found(format!("collection {cid} has no object {oid} that this token may read")));
    }
    let versions = items.iter().take(limit).map(|i| json!(i.version)).collect();
    let mut r = taxii_json(StatusCode::OK, &paged("versions", versions, None));
    date_headers(&mut r, &items[..items.len().min(limit)]);
    Ok(r)
}

// ---------------------------------------------------------------------------------------------
// Adding objects and status

/// Status resources of earlier POSTs (id, JSON text as answered), newest last.
#[derive(Default)]
pub struct StatusLog {
    entries: VecDeque<(String, String)>,
}

impl StatusLog {
    fn insert(&mut self, id: String, status: String) {
        if self.entries.len() >= STATUS_KEEP_MAX {
            self.entries.pop_front();
        }
        self.entries.push_back((id, status));
    }

    fn get(&self, id: &str) -> Option<&str> {
        self.entries.iter().rev().find(|(i, _)| i == id).map(|(_, v)| v.as_str())
    }
}

/// `POST …/collections/{cid}/objects/`: an envelope of STIX objects for the inbox. Indicators
/// ctix can represent are validated and appended (durable before the answer); the status
/// resource lists every object as a success or a failure with its reason.
pub async fn post_objects(
    State(inner): State<Arc<Inner>>,
    caller: TaxiiCaller,
    Path(cid): Path<String>,
    req: Request,
) -> Result<Response, TaxiiError> {
    let c = collection(&cid, caller.role)?;
    if !c.can_write(caller.role) {
        let why = if c.holds == Holds::Inbox { "this token is read-only" } else { "only the inbox takes objects" };
        return Err(TaxiiError::new(
            StatusCode::FORBIDDEN,
            "Forbidden",
            format!("collection {} cannot be written: {why}", c.alias),
        ));
    }
    check_content_type(req.headers())?;
    let request_timestamp = format_timestamp_us(crate::now_ms() * 1000);
    let body = read_body(req).await?;
    let envelope: Value = serde_json::from_slice(&body)
        .map_err(|e| TaxiiError::bad_request(format!("the body is not JSON ({e}): send a TAXII envelope")))?;
    let Some(objects) = envelope.get("objects").and_then(Value::as_array) else {
        return Err(TaxiiError::bad_request("the body is not a TAXII envelope: it needs an `objects` array"));
    };
    if objects.len() > POST_OBJECTS_MAX {
        return Err(TaxiiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Too many objects",
            format!(
                "{} objects is over the limit of {POST_OBJECTS_MAX} per request: split the envelope",
                objects.len()
            ),
        ));
    }
    // Each object's version, for the status details.
    let version_of: BTreeMap<String, String> = objects
        .iter()
        .filter_map(|o| {
            let id = o.get("id")?.as_str()?.to_owned();
            let v = o.get("modified").or_else(|| o.get("created")).and_then(Value::as_str).unwrap_or("");
            Some((id, v.to_owned()))
        })
        .collect();
    let total = objects.len();
    // The envelope's objects as they are: no bundle to serialise and parse again.
    let report = stix::import_values(objects).map_err(TaxiiError::bad_request)?;
    let detail = |id: &str, message: String| json!({ "id": id, "version": version_of.get(id).cloned().unwrap_or_default(), "message": message });
    let mut failures: Vec<Value> =
        report.skipped.iter().map(|sk| detail(&sk.source_id, format!("not imported: {}", sk.reason))).collect();
    let (sources, inputs): (Vec<String>, Vec<_>) = report.items.into_iter().map(|i| (i.source_id, i.input)).unzip();
    let mut successes = Vec::new();
    if !inputs.is_empty() {
        let resp = super::indicators::submit(&inner, inputs, false).await.map_err(TaxiiError::from)?;
        for (source, item) in sources.iter().zip(resp.results) {
            match (item.id, item.error) {
                (Some(id), None) => successes.push(detail(source, format!("stored as ctix indicator {id}"))),
                (_, Some(e)) => {
                    let field = e.field.map(|f| format!("{f}: ")).unwrap_or_default();
                    failures.push(detail(source, format!("refused: {field}{}", e.message)));
                }
                (None, None) => failures.push(detail(source, "refused".into())),
            }
        }
    }
    let status_id = uuid::Uuid::new_v4().to_string();
    let mut status = json!({
        "id": status_id,
        "status": "complete",
        "request_timestamp": request_timestamp,
        "total_count": total,
        "success_count": successes.len(),
        "failure_count": failures.len(),
        "pending_count": 0,
    });
    if !successes.is_empty() {
        status["successes"] = Value::Array(successes);
    }
    if !failures.is_empty() {
        status["failures"] = Value::Array(failures);
    }
    // Serialised once, for this answer and for `GET status/{id}`: a status lists every object.
    let body = status.to_string();
    inner.taxii_status.lock().unwrap_or_else(|p| p.into_inner()).insert(status_id, body.clone());
    Ok(taxii_text(StatusCode::ACCEPTED, body))
}

/// `GET /taxii2/api/status/{sid}/`.
pub async fn get_status(
    State(inner): State<Arc<Inner>>,
    _: TaxiiCaller,
    Path(sid): Path<String>,
) -> Result<Response, TaxiiError> {
    let log = inner.taxii_status.lock().unwrap_or_else(|p| p.into_inner());
    match log.get(&sid) {
        Some(s) => Ok(taxii_text(StatusCode::OK, s.to_owned())),
        None => Err(TaxiiError::not_found(format!(
            "no status {sid}: this node keeps the last {STATUS_KEEP_MAX} statuses until it restarts"
        ))),
    }
}

/// 415 unless the body is declared `application/taxii+json` (version 2.1 if one is named).
fn check_content_type(headers: &HeaderMap) -> Result<(), TaxiiError> {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    let mut parts = ct.split(';').map(str::trim);
    let media = parts.next().unwrap_or("");
    let version = parts.find_map(|p| p.strip_prefix("version=")).map(|v| v.trim_matches('"').to_owned());
    if media == "application/taxii+json" && version.as_deref().is_none_or(|v| v == "2.1") {
        Ok(())
    } else {
        Err(TaxiiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported media type",
            format!("send the envelope as Content-Type: {TAXII_MEDIA}"),
        ))
    }
}

/// The request body, at most `REQUEST_BYTES_MAX` bytes, within the API's body read timeout.
async fn read_body(req: Request) -> Result<Bytes, TaxiiError> {
    let too_large = || {
        TaxiiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Request too large",
            format!("the body is over {REQUEST_BYTES_MAX} bytes (max_content_length): split the envelope"),
        )
    };
    let declared =
        req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok()).unwrap_or(0);
    if declared > REQUEST_BYTES_MAX as u64 {
        return Err(too_large());
    }
    let read = axum::body::to_bytes(req.into_body(), REQUEST_BYTES_MAX);
    match tokio::time::timeout(std::time::Duration::from_millis(super::error::BODY_READ_TIMEOUT_MS), read).await {
        Ok(Ok(b)) => Ok(b),
        Ok(Err(_)) => Err(too_large()),
        Err(_) => Err(TaxiiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "Request timeout",
            "the body did not arrive in time: send it at once",
        )),
    }
}

impl From<StoreError> for TaxiiError {
    fn from(e: StoreError) -> TaxiiError {
        TaxiiError::internal("store read failed", &e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_carry_microseconds_both_ways() {
        let us = 1_764_406_800_123_456;
        let s = format_timestamp_us(us);
        assert_eq!(s, "2025-11-29T09:00:00.123456Z");
        assert_eq!(parse_timestamp_us(&s), Ok(us));
        assert_eq!(parse_timestamp_us("2025-11-29T11:00:00.123456+02:00"), Ok(us));
        assert!(parse_timestamp_us("yesterday").is_err());
        assert_eq!(format_timestamp_us(0), "1970-01-01T00:00:00.000000Z");
    }

    #[test]
    fn accept_headers() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::ACCEPT, v.parse().unwrap());
            m
        };
        assert!(check_accept(&HeaderMap::new()).is_ok());
        for ok in ["application/taxii+json;version=2.1", "application/taxii+json", "*/*", "text/html, */*;q=0.8"] {
            assert!(check_accept(&h(ok)).is_ok(), "{ok}");
        }
        for bad in ["application/taxii+json;version=2.0", "application/json", "application/stix+json;version=2.1"] {
            assert_eq!(check_accept(&h(bad)).unwrap_err().status, StatusCode::NOT_ACCEPTABLE, "{bad}");
        }
    }

    #[test]
    fn params_are_checked() {
        let bad = |q: &str| parse_params(Some(q), &OBJECTS_PARAMS).unwrap_err().status;
        assert_eq!(bad("limit=0"), StatusCode::BAD_REQUEST);
        assert_eq!(bad("next=abc"), StatusCode::BAD_REQUEST);
        assert_eq!(bad("added_after=tomorrow"), StatusCode::BAD_REQUEST);
        assert_eq!(bad("match[colour]=red"), StatusCode::BAD_REQUEST);
        assert_eq!(bad("limit=1&limit=2"), StatusCode::BAD_REQUEST);
        let p =
            parse_params(Some("limit=5000&match[type]=indicator,sighting&match[version]=first,all"), &OBJECTS_PARAMS)
                .unwrap();
        assert_eq!(p.limit, PAGE_MAX);
        assert_eq!(p.types.unwrap().len(), 2);
        assert!(p.versions.first && p.versions.all && !p.versions.last);
        let p = parse_params(Some("match[spec_version]=2.0"), &OBJECTS_PARAMS).unwrap();
        assert!(!p.spec_ok);
        let p = parse_params(None, &OBJECTS_PARAMS).unwrap();
        assert_eq!((p.limit, p.versions, p.spec_ok), (PAGE_DEFAULT, Versions::last_only(), true));
        assert_eq!(
            parse_params(Some("match[id]=x"), &VERSIONS_PARAMS).unwrap_err().status,
            StatusCode::BAD_REQUEST,
            "versions take no match[id]"
        );
    }

    #[test]
    fn collections_per_role() {
        let listed = |r: Role| COLLECTIONS_ALL.iter().filter(|c| c.visible(r)).map(|c| c.alias).collect::<Vec<_>>();
        assert_eq!(listed(Role::Rw).len(), 7);
        assert!(!listed(Role::Ro).contains(&"tlp-amber-strict") && !listed(Role::Ro).contains(&"inbox"));
        let all = collection("all", Role::Ro).unwrap();
        assert!(all.admits(Role::Ro, Tlp::Red) && !all.admits(Role::Ro, Tlp::AmberStrict));
        assert!(all.admits(Role::Rw, Tlp::AmberStrict));
        let green = collection(&COLLECTIONS_ALL[2].id(), Role::Ro).unwrap();
        assert!(green.admits(Role::Ro, Tlp::Green) && !green.admits(Role::Ro, Tlp::Amber));
        assert_eq!(collection("tlp-amber-strict", Role::Ro).unwrap_err().status, StatusCode::NOT_FOUND);
        assert_eq!(readable("inbox", Role::Rw).unwrap_err().status, StatusCode::FORBIDDEN);
        // Ids are UUIDs, stable and distinct.
        let ids: BTreeSet<String> = COLLECTIONS_ALL.iter().map(Collection::id).collect();
        assert_eq!(ids.len(), COLLECTIONS_ALL.len());
        assert!(ids.iter().all(|i| uuid::Uuid::parse_str(i).is_ok()));
    }

    #[test]
    fn basic_and_bearer_credentials() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::AUTHORIZATION, v.parse().unwrap());
            m
        };
        let basic = base64::engine::general_purpose::STANDARD.encode("soc:s3cret:with:colons");
        match credentials(&h(&format!("Basic {basic}"))) {
            Some(Credentials::Basic { user, password }) => {
                assert_eq!((user.as_str(), password.as_str()), ("soc", "s3cret:with:colons"))
            }
            _ => panic!("basic credentials not parsed"),
        }
        assert!(matches!(credentials(&h("Bearer tok")), Some(Credentials::Bearer(t)) if t == "tok"));
        assert!(credentials(&h("Basic !!!")).is_none());
        assert!(credentials(&h("Digest x")).is_none());
    }
}
