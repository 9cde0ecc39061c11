//! The web dashboard under `/dashboard/`: a read-only page for operators (the federation graph
//! with link state and lag, recent indicators with filters, forked and quarantined origins, and
//! drill reports with their timeline charts), served from assets embedded in the binary.
//!
//! The assets (`dashboard/`: HTML, CSS, JS and an SVG icon) hold no data and load nothing from
//! elsewhere, so they are served without credentials under a strict `Content-Security-Policy`.
//! Every piece of data comes from the API with the API's own authentication:
//!
//! - A browser cannot keep a bearer token out of reach of scripts, so `POST /dashboard/login`
//!   takes an API token once (as JSON, which a cross-site form cannot send) and answers with a
//!   session cookie: random, `HttpOnly` (scripts never see it), `SameSite=Strict` (other sites
//!   never make the browser send it) and kept in memory for at most `SESSION_TTL_MS`.
//! - The API's `Caller` extractor accepts that cookie for `GET` and `HEAD` only (`Sessions::role`),
//!   with the role of the token that opened the session, so a session reads what its token
//!   reads and can never write: every writing endpoint takes another method and a bearer token.
//!
//! The page reads `/api/v1/status` (graph, peers), `/api/v1/drills` and the drill report HTML
//! (`drills.rs`, shown in a frame); the two JSON endpoints here give what no other endpoint does:
//! the newest indicators first with a text filter (`recent`) and the fork evidence (`forks`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{RawQuery, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::error::{ApiError, JsonBody};
use super::{Caller, Inner, read_store};
use crate::config::Role;
use crate::model::time::format_time;
use crate::model::{Body, EntryId, EntryKind, Hash, IndicatorType, NodeName, Tlp};
use crate::store::Store;
use crate::view::IndicatorView;

/// Dashboard sessions held at once. A session costs a few dozen bytes; the bound keeps a script
/// that logs in again and again (it needs a valid token) from growing the table. When it is
/// full, expired sessions go first, then the one closest to expiry.
pub const SESSIONS_MAX: usize = 256;
/// How long a session lasts from login: one working shift. The browser drops the cookie then
/// too (`Max-Age`), and the page asks for the token again.
pub const SESSION_TTL_MS: u64 = 8 * 60 * 60 * 1000;
/// Indicators the recent list shows when the page gives no `limit`.
pub const RECENT_LIMIT_DEFAULT: usize = 50;
/// Most indicators one recent-list answer holds: a page of a dashboard, not an export (use
/// `GET /api/v1/indicators` or `ctix export` for everything).
pub const RECENT_LIMIT_MAX: usize = 500;
/// Most arrivals one recent-list request examines, newest first. A filter that matches little
/// stops there (the answer says `more`) instead of walking the whole store on every refresh.
pub const RECENT_SCAN_MAX: usize = 20_000;
/// Longest text filter, in characters: it is matched against each scanned indicator.
pub const TEXT_FILTER_CHARS_MAX: usize = 200;
/// Most fork records one answer lists (each origin is quarantined at its first fork, so there
/// are rarely more than one per member).
pub const FORKS_SHOWN_MAX: usize = 100;
/// The session cookie's name.
pub const COOKIE: &str = "ctix_session";

/// The route templates (also the `route` label of the request metrics).
pub const ROOT: &str = "/dashboard/";
const ROOT_NO_SLASH: &str = "/dashboard";
const SCRIPT: &str = "/dashboard/dashboard.js";
const STYLE: &str = "/dashboard/dashboard.css";
const ICON: &str = "/dashboard/favicon.svg";
const SESSION: &str = "/dashboard/session";
const LOGIN: &str = "/dashboard/login";
const LOGOUT: &str = "/dashboard/logout";
const RECENT: &str = "/dashboard/api/indicators";
const FORKS: &str = "/dashboard/api/forks";
pub const ROUTES: [&str; 10] = [ROOT, ROOT_NO_SLASH, SCRIPT, STYLE, ICON, SESSION, LOGIN, LOGOUT, RECENT, FORKS];

/// The embedded assets, as `(path, content type, body)`.
pub const ASSETS: [(&str, &str, &str); 4] = [
    (ROOT, "text/html; charset=utf-8", include_str!("dashboard/index.html")),
    (SCRIPT, "text/javascript; charset=utf-8", include_str!("dashboard/dashboard.js")),
    (STYLE, "text/css; charset=utf-8", include_str!("dashboard/dashboard.css")),
    (ICON, "image/svg+xml", include_str!("dashboard/favicon.svg")),
];

/// Only this origin's scripts, styles, images, requests and frames (the drill report); no
/// inline script or style, nothing from another host, and no framing of the dashboard itself.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; frame-src 'self'; form-action 'self'; base-uri 'none'; \
                   frame-ancestors 'none'";

/// The dashboard's routes, merged into the API router (same state, same middleware).
pub(super) fn routes() -> Router<Arc<Inner>> {
    let mut r = Router::new()
        .route(ROOT_NO_SLASH, get(|| async { Redirect::permanent(ROOT) }))
        .route(SESSION, get(session))
        .route(LOGIN, post(login))
        .route(LOGOUT, post(logout))
        .route(RECENT, get(recent))
        .route(FORKS, get(forks));
    for (path, ctype, body) in ASSETS {
        r = r.route(path, get(move || async move { asset(ctype, body) }));
    }
    r
}

fn asset(ctype: &'static str, body: &'static str) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    // Revalidate every time: a new binary's assets must not meet an old page.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

/// JSON that no cache keeps.
fn private_json<T: Serialize>(body: &T) -> Response {
    let mut r = Json(body).into_response();
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

// ---------------------------------------------------------------------------------------------
// Sessions

/// One logged-in browser.
struct Session {
    /// The name of the token that opened it (for the log and the page).
    token: String,
    role: Role,
    expires_ms: u64,
}

/// The open dashboard sessions, keyed by the SHA-256 of the cookie value: the table never holds
/// a value a browser could present.
#[derive(Default)]
pub(super) struct Sessions {
    open: Mutex<HashMap<[u8; 32], Session>>,
}

impl Sessions {
    /// The role of the session the request's cookie names, for `GET` and `HEAD` only: a session
    /// reads, never writes.
    pub(super) fn role(&self, parts: &Parts) -> Option<Role> {
        if parts.method != Method::GET && parts.method != Method::HEAD {
            return None;
        }
        self.find(&parts.headers, crate::now_ms()).map(|(_, role, _)| role)
    }

    /// The token name, role and expiry of the request's session, if it is open.
    fn find(&self, headers: &HeaderMap, now_ms: u64) -> Option<(String, Role, u64)> {
        let id = cookie(headers)?;
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let s = open.get(&digest(id)).filter(|s| s.expires_ms > now_ms)?;
        Some((s.token.clone(), s.role, s.expires_ms))
    }

    /// Opens a session; returns the cookie value.
    fn open(&self, token: &str, role: Role, now_ms: u64) -> Result<String, ApiError> {
        let mut id = [0u8; 32];
        getrandom::fill(&mut id).map_err(|e| ApiError::internal("no randomness for a session", &e))?;
        let id = hex::encode(id);
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.retain(|_, s| s.expires_ms > now_ms);
        while open.len() >= SESSIONS_MAX {
            let Some(first) = open.iter().min_by_key(|(_, s)| s.expires_ms).map(|(k, _)| *k) else { break };
            open.remove(&first);
        }
        open.insert(digest(&id), Session { token: token.to_owned(), role, expires_ms: now_ms + SESSION_TTL_MS });
        Ok(id)
    }

    fn close(&self, headers: &HeaderMap) {
        if let Some(id) = cookie(headers) {
            self.open.lock().unwrap_or_else(|p| p.into_inner()).remove(&digest(id));
        }
    }
}

fn digest(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

/// The value of our cookie in the request's `Cookie` headers.
fn cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, v)| *k == COOKIE && !v.is_empty())
        .map(|(_, v)| v)
}

/// What `GET /dashboard/session`, login and logout answer.
#[derive(Serialize)]
struct SessionView {
    authenticated: bool,
    node: String,
    /// The name of the token that opened the session.
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires: Option<String>,
}

fn role_name(r: Role) -> &'static str {
    match r {
        Role::Rw => "rw",
        Role::Ro => "ro",
    }
}

/// `GET /dashboard/session`: whether the browser's cookie names an open session. Always 200,
/// so that the page's first look does not show up as a failed request.
async fn session(State(inner): State<Arc<Inner>>, headers: HeaderMap) -> Response {
    let node = inner.node.name.to_string();
    let view = match inner.dashboard.find(&headers, crate::now_ms()) {
        Some((token, role, expires)) => SessionView {
            authenticated: true,
            node,
            token: Some(token),
            role: Some(role_name(role)),
            expires: Some(format_time(expires)),
        },
        None => SessionView { authenticated: false, node, token: None, role: None, expires: None },
    };
    private_json(&view)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginRequest {
    token: String,
}

/// `POST /dashboard/login` with `{"token": "…"}`: opens a session for a valid API token.
async fn login(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    JsonBody(req): JsonBody<LoginRequest>,
) -> Result<Response, ApiError> {
    check_same_origin(&headers)?;
    let Some(t) = inner.token(req.token.trim()) else {
        return Err(ApiError::unauthorized("unknown token: paste a token from the node's [api] tokens"));
    };
    let now = crate::now_ms();
    let (name, role) = (t.name.clone(), t.role);
    let id = inner.dashboard.open(&name, role, now)?;
    tracing::info!(token = %name, "dashboard session opened");
    // `Secure` only where the browser reached us over HTTPS (a TLS proxy in front): over plain
    // HTTP on loopback a `Secure` cookie would not be kept.
    let https = headers.get("x-forwarded-proto").is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"));
    let cookie = format!(
        "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        SESSION_TTL_MS / 1000,
        if https { "; Secure" } else { "" }
    );
    let view = SessionView {
        authenticated: true,
        node: inner.node.name.to_string(),
        token: Some(name),
        role: Some(role_name(role)),
        expires: Some(format_time(now + SESSION_TTL_MS)),
    };
    let mut r = private_json(&view);
    let v = HeaderValue::from_str(&cookie).map_err(|e| ApiError::internal("session cookie", &e))?;
    r.headers_mut().insert(header::SET_COOKIE, v);
    Ok(r)
}

/// `POST /dashboard/logout`: closes the browser's session and clears its cookie.
async fn logout(State(inner): State<Arc<Inner>>, headers: HeaderMap) -> Result<Response, ApiError> {
    check_same_origin(&headers)?;
    inner.dashboard.close(&headers);
    let view =
        SessionView { authenticated: false, node: inner.node.name.to_string(), token: None, role: None, expires: None };
    let mut r = private_json(&view);
    let clear = format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    r.headers_mut().insert(header::SET_COOKIE, HeaderValue::from_str(&clear).expect("a valid header"));
    Ok(r)
}

/// Refuses a request that a page of another origin sent (browsers name it in `Origin`).
fn check_same_origin(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(origin) = headers.get(header::ORIGIN) else { return Ok(()) };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    let origin = origin.to_str().unwrap_or("");
    let authority = origin.split_once("://").map_or("", |(_, a)| a);
    if !host.is_empty() && authority.eq_ignore_ascii_case(host) {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        "forbidden",
        "a page of another origin may not open or close dashboard sessions: open the dashboard from this node's address",
    ))
}

// ---------------------------------------------------------------------------------------------
// Recent indicators

/// The filters of `GET /dashboard/api/indicators`.
#[derive(Debug, Default, PartialEq)]
struct RecentQuery {
    itype: Option<IndicatorType>,
    origin: Option<NodeName>,
    tlp: Option<Tlp>,
    /// Lower-case; matched against value, tags, description and techniques.
    text: Option<String>,
    limit: usize,
}

/// The parameters `GET /dashboard/api/indicators` understands.
const RECENT_PARAMS: [&str; 5] = ["type", "origin", "tlp", "text", "limit"];

fn parse_recent(raw: &str) -> Result<RecentQuery, ApiError> {
    let mut q = RecentQuery { limit: RECENT_LIMIT_DEFAULT, ..RecentQuery::default() };
    let mut seen = Vec::new();
    for (k, v) in url::form_urlencoded::parse(raw.as_bytes()) {
        let Some(name) = RECENT_PARAMS.iter().find(|p| **p == k) else {
            let msg = format!("unknown query parameter {k:?}: use {}", RECENT_PARAMS.join(", "));
            return Err(ApiError::invalid_query(&k, msg));
        };
        if seen.contains(name) {
            return Err(ApiError::invalid_query(name, format!("`{name}` is given twice: give it once")));
        }
        seen.push(name);
        let v = v.trim();
        if v.is_empty() {
            continue;
        }
        let bad = |reason: String| ApiError::invalid_query(name, format!("{name}: {reason}"));
        match *name {
            "type" => q.itype = Some(v.parse().map_err(|e: crate::model::ModelError| bad(e.reason))?),
            "origin" => q.origin = Some(NodeName::new(v).map_err(|e| bad(e.reason))?),
            "tlp" => q.tlp = Some(v.parse().map_err(|e: crate::model::ModelError| bad(e.reason))?),
            "text" => {
                if v.chars().count() > TEXT_FILTER_CHARS_MAX {
                    return Err(bad(format!("longer than {TEXT_FILTER_CHARS_MAX} characters: shorten it")));
                }
                q.text = Some(v.to_lowercase());
            }
            _ => {
                q.limit = match v.parse::<usize>() {
                    Ok(n) if (1..=RECENT_LIMIT_MAX).contains(&n) => n,
                    _ => return Err(bad(format!("{v:?} is not a page size: use 1 to {RECENT_LIMIT_MAX}"))),
                }
            }
        }
    }
    Ok(q)
}

/// The answer of `GET /dashboard/api/indicators`.
#[derive(Serialize)]
struct RecentView {
    /// Newest arrival first.
    items: Vec<IndicatorView>,
    /// Arrivals examined.
    scanned: usize,
    /// Whether older arrivals were left unexamined (the limit or `RECENT_SCAN_MAX` was reached).
    more: bool,
}

/// `GET /dashboard/api/indicators?type=&origin=&tlp=&text=&limit=`: the newest indicators this
/// node may show the caller, filtered.
async fn recent(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let q = parse_recent(raw.as_deref().unwrap_or(""))?;
    let hide_amber_strict = caller.role == Role::Ro;
    let view = read_store(&inner, move |s| recent_from(s, &q, hide_amber_strict)).await?;
    Ok(private_json(&view))
}

fn recent_from(s: &Store, q: &RecentQuery, hide_amber_strict: bool) -> Result<RecentView, crate::store::StoreError> {
    // The cursor after every arrival is the newest arrival's number.
    let mut n = s.arrival_cursor_after(u64::MAX)?;
    let (mut items, mut scanned) = (Vec::new(), 0);
    while n > 0 && items.len() < q.limit && scanned < RECENT_SCAN_MAX {
        scanned += 1;
        // Numbers of entries that moved on (an upgraded stub) are gaps.
        if let Some(a) = s.arrival_at(n)?
            && q.origin.as_ref().is_none_or(|o| *o == a.id.origin)
            && let Some(st) = s.indicator_state(&a.id)?
            && let Some(v) = IndicatorView::from_state(&st, n)
            && let Some(Body::Indicator(ind)) = st.entry.body()
        {
            let text_ok = q.text.as_deref().is_none_or(|t| {
                ind.value.to_lowercase().contains(t)
                    || ind.description.to_lowercase().contains(t)
                    || ind.tags.iter().chain(&ind.techniques).any(|x| x.to_lowercase().contains(t))
            });
            if q.itype.is_none_or(|t| t == ind.itype)
                && q.tlp.is_none_or(|t| t == ind.tlp)
                && !(hide_amber_strict && ind.tlp == Tlp::AmberStrict)
                && text_ok
            {
                items.push(v);
            }
        }
        n -= 1;
    }
    Ok(RecentView { items, scanned, more: n > 0 })
}

// ---------------------------------------------------------------------------------------------
// Forks

/// The answer of `GET /dashboard/api/forks`.
#[derive(Serialize)]
struct ForksView {
    /// Origins this node quarantined: their entries are no longer stored or relayed.
    quarantined: Vec<String>,
    /// The evidence, one record per conflicting entry held.
    forks: Vec<ForkView>,
    /// Whether there were more than `FORKS_SHOWN_MAX` records.
    more: bool,
}

/// One piece of fork evidence: the entry held at a position and the authentic one that
/// conflicts with it.
#[derive(Serialize)]
struct ForkView {
    origin: String,
    seq: u64,
    /// `two entries at one position` or `a broken link` (the conflicting entry's `prev_hash` is
    /// not the hash of the entry held before it).
    conflict: &'static str,
    /// The entry this node holds at that position (absent if it holds none there).
    held: Option<EntrySummary>,
    /// The conflicting entry, kept as evidence and never stored in the log.
    conflicting: EntrySummary,
}

/// What a fork record shows of one signed entry.
#[derive(Serialize)]
struct EntrySummary {
    hash: String,
    prev_hash: String,
    created: String,
    kind: String,
    /// For an indicator that the caller may read: `type value (TLP)`; otherwise empty.
    what: String,
}

/// `GET /dashboard/api/forks`.
async fn forks(State(inner): State<Arc<Inner>>, caller: Caller) -> Result<Response, ApiError> {
    let ro = caller.role == Role::Ro;
    let view = read_store(&inner, move |s| forks_from(s, ro)).await?;
    Ok(private_json(&view))
}

fn forks_from(s: &Store, ro: bool) -> Result<ForksView, crate::store::StoreError> {
    let all = s.forks()?;
    let more = all.len() > FORKS_SHOWN_MAX;
    let mut forks = Vec::new();
    for f in all.into_iter().take(FORKS_SHOWN_MAX) {
        let h = &f.entry.header;
        let held = s.get(&EntryId { origin: f.origin.clone(), seq: f.seq })?;
        let before = match f.seq {
            0 | 1 => None,
            seq => s.get(&EntryId { origin: f.origin.clone(), seq: seq - 1 })?,
        };
        let broken_link = before.as_ref().is_some_and(|b| b.hash() != h.prev_hash)
            && held.as_ref().is_none_or(|x| x.header().prev_hash != h.prev_hash);
        let conflicting_body = f.entry.body.as_deref().and_then(|b| crate::wire::decode_body(b).ok());
        forks.push(ForkView {
            origin: f.origin.to_string(),
            seq: f.seq,
            conflict: if broken_link { "a broken link" } else { "two entries at one position" },
            held: held.as_ref().map(|v| summary(v.hash(), v.header(), v.body(), ro)),
            conflicting: summary(f.entry.hash(), h, conflicting_body.as_ref(), ro),
        });
    }
    let quarantined = s.quarantined().iter().map(ToString::to_string).collect();
    Ok(ForksView { quarantined, forks, more })
}

fn summary(hash: Hash, h: &crate::crypto::EntryHeader, body: Option<&Body>, ro: bool) -> EntrySummary {
    let what = match body {
        // Drill records are never shown with real intelligence; TLP:AMBER+STRICT not to `ro`.
        Some(Body::Indicator(i)) if !(ro && i.tlp == Tlp::AmberStrict) => {
            format!("{} {} ({})", i.itype.as_str(), i.value, i.tlp)
        }
        _ => String::new(),
    };
    EntrySummary {
        hash: hex::encode(hash),
        prev_hash: hex::encode(h.prev_hash),
        created: format_time(h.created_ms),
        kind: EntryKind::from_u8(h.kind).map_or_else(|| format!("kind {}", h.kind), |k| k.as_str().to_owned()),
        what,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_filters_are_parsed_and_checked() {
        let q = parse_recent("type=IPv4&origin=lv&tlp=amber%2Bstrict&text=%20Phish%20&limit=7").unwrap();
        assert_eq!(q.itype, Some(IndicatorType::Ipv4));
        assert_eq!(q.origin.as_ref().map(NodeName::as_str), Some("lv"));
        assert_eq!((q.tlp, q.text.as_deref(), q.limit), (Some(Tlp::AmberStrict), Some("phish"), 7));
        assert_eq!(
            parse_recent("type=&text=").unwrap(),
            RecentQuery { limit: RECENT_LIMIT_DEFAULT, ..Default::default() }
        );
        for (raw, param) in [
            ("type=ipv7", "type"),
            ("origin=EE!", "origin"),
            ("tlp=purple", "tlp"),
            ("limit=0", "limit"),
            ("limit=501", "limit"),
            ("text=a&text=b", "text"),
            ("value=1.2.3.4", "value"),
        ] {
            let e = parse_recent(raw).expect_err(raw);
            assert_eq!((e.status, e.detail.field.as_deref()), (StatusCode::BAD_REQUEST, Some(param)), "{raw}");
        }
        let long = format!("text={}", "x".repeat(TEXT_FILTER_CHARS_MAX + 1));
        assert!(parse_recent(&long).is_err());
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let h = |vals: &[&str]| {
            let mut m = HeaderMap::new();
            for v in vals {
                m.append(header::COOKIE, v.parse().unwrap());
            }
            m
        };
        assert_eq!(cookie(&h(&["a=1; ctix_session=abc; b=2"])), Some("abc"));
        assert_eq!(cookie(&h(&["a=1", "ctix_session=def"])), Some("def"));
        assert_eq!(cookie(&h(&["ctix_session=", "x_ctix_session=1"])), None);
        assert_eq!(cookie(&HeaderMap::new()), None);
    }

    #[test]
    fn sessions_read_only_expire_and_stay_bounded() {
        let s = Sessions::default();
        let id = s.open("analysts", Role::Rw, 1_000).unwrap();
        assert_eq!(id.len(), 64);
        let req = |method: Method, id: &str| {
            let r = axum::http::Request::builder()
                .method(method)
                .header(header::COOKIE, format!("{COOKIE}={id}"))
                .body(())
                .unwrap();
            r.into_parts().0
        };
        assert_eq!(s.find(&req(Method::GET, &id).headers, 2_000).map(|x| x.1), Some(Role::Rw));
        assert_eq!(s.find(&req(Method::GET, "0000").headers, 2_000), None);
        // A session never authorises a write, and ends at its expiry.
        assert_eq!(s.role(&req(Method::POST, &id)), None);
        assert_eq!(s.role(&req(Method::DELETE, &id)), None);
        assert_eq!(s.find(&req(Method::GET, &id).headers, 1_000 + SESSION_TTL_MS), None);
        for i in 0..SESSIONS_MAX + 10 {
            s.open("analysts", Role::Ro, 2_000 + i as u64).unwrap();
        }
        assert_eq!(s.open.lock().unwrap().len(), SESSIONS_MAX);
        // The newest stays; the oldest (the first, expiring first) went.
        assert_eq!(s.find(&req(Method::GET, &id).headers, 2_000), None);
        s.close(&req(Method::GET, &id).headers);
    }

    #[test]
    fn cross_origin_logins_are_refused() {
        let h = |origin: Option<&str>| {
            let mut m = HeaderMap::new();
            m.insert(header::HOST, "127.0.0.1:8080".parse().unwrap());
            if let Some(o) = origin {
                m.insert(header::ORIGIN, o.parse().unwrap());
            }
            m
        };
        assert!(check_same_origin(&h(None)).is_ok());
        assert!(check_same_origin(&h(Some("http://127.0.0.1:8080"))).is_ok());
        assert!(check_same_origin(&h(Some("http://evil.example"))).is_err());
        assert!(check_same_origin(&h(Some("null"))).is_err());
    }
}
