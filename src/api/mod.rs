//! The local REST API (axum): submit, query, retract, sight, status, drills, `/healthz`, `/metrics`,
//! and the web dashboard (`dashboard.rs`).
//!
//! Handlers are thin: they check the bearer token, parse, and call `NodeHandle` (writes, answered
//! only once durable) or `Store` (reads, on the blocking pool). Every error is a JSON
//! `view::ErrorBody` (`error.rs`); one middleware (`observe`) bounds the requests in flight,
//! turns a panicking handler into a 500, and records per-route statistics for `/metrics`.

mod backup;
mod dashboard;
mod drills;
mod error;
mod indicators;
mod metrics;
mod misp_feed;
mod taxii;

use std::any::Any;
use std::future::Future;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::sync::{Semaphore, watch};

use crate::config::{ApiToken, Role};
use crate::model::time::format_time;
use crate::node::{NodeHandle, Status};
use crate::store::{Store, StoreError};
use crate::view::{PeerView, REQUEST_BYTES_MAX, StatusView};
use error::ApiError;
use metrics::RequestMetrics;

/// Requests handled at once; more are answered 503 `busy` at once. Bounds the memory of request
/// bodies (each up to `REQUEST_BYTES_MAX`) and the work queued on the node.
pub const REQUESTS_IN_FLIGHT_MAX: usize = 64;
/// How long `/healthz`, `/metrics` and `/api/v1/status` wait for the node actor's snapshot.
pub const STATUS_WAIT_MS: u64 = 5_000;
/// How long a stopping node waits for API requests in progress (an append finishing) to be
/// answered before it closes the listener regardless.
pub const SHUTDOWN_WAIT_MS: u64 = 5_000;

/// The route templates; also the `route` label of the request metrics.
const INDICATORS: &str = "/api/v1/indicators";
const INDICATOR: &str = "/api/v1/indicator";
const INDICATOR_BY_ID: &str = "/api/v1/indicators/{id}";
const RETRACT: &str = "/api/v1/indicators/{id}/retract";
const SIGHTINGS: &str = "/api/v1/indicators/{id}/sightings";
const STATUS: &str = "/api/v1/status";
const DRILLS: &str = "/api/v1/drills";
const DRILL: &str = "/api/v1/drills/{id}";
const DRILL_REPORT: &str = "/api/v1/drills/{id}/report";
const DRILL_ACK: &str = "/api/v1/drills/{id}/ack";
const DRILL_ABORT: &str = "/api/v1/drills/{id}/abort";
const HEALTHZ: &str = "/healthz";
const METRICS: &str = "/metrics";
const BACKUP: &str = crate::backup::console::BACKUP_PATH;
const ROUTES: [&str; 24] = [
    INDICATORS,
    INDICATOR,
    INDICATOR_BY_ID,
    RETRACT,
    SIGHTINGS,
    STATUS,
    DRILLS,
    DRILL,
    DRILL_REPORT,
    DRILL_ACK,
    DRILL_ABORT,
    HEALTHZ,
    METRICS,
    BACKUP,
    misp_feed::FEED_FILE,
    taxii::DISCOVERY,
    taxii::API_ROOT,
    taxii::COLLECTIONS,
    taxii::COLLECTION,
    taxii::OBJECTS,
    taxii::OBJECT,
    taxii::VERSIONS,
    taxii::MANIFEST,
    taxii::STATUS,
];
/// The `route` label of requests that match no route.
const UNMATCHED: &str = "unmatched";

/// What every handler can reach.
#[derive(Clone)]
pub struct ApiState {
    pub node: NodeHandle,
    pub tokens: Vec<ApiToken>,
    /// When this node's TLS certificate expires (seconds since the epoch), for `/metrics`.
    pub cert_not_after_s: Option<i64>,
}

/// The router's state, derived once from `ApiState`.
struct Inner {
    node: NodeHandle,
    tokens: Vec<TokenKey>,
    requests: Mutex<RequestMetrics>,
    cert_not_after_s: Option<i64>,
    in_flight: Semaphore,
    /// TAXII status resources of recent POSTs.
    taxii_status: Mutex<taxii::StatusLog>,
    /// MISP feeds recently built, per role.
    misp_feed: misp_feed::FeedCache,
    /// Open web dashboard sessions.
    dashboard: dashboard::Sessions,
}

/// A configured token, kept as a digest so that checking one takes the same time whatever it is.
struct TokenKey {
    name: String,
    role: Role,
    digest: [u8; 32],
}

impl Inner {
    /// The token matching `presented`. Every configured token is compared, each in constant time.
    fn token(&self, presented: &str) -> Option<&TokenKey> {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut found = None;
        for t in &self.tokens {
            let diff = t.digest.iter().zip(&digest).fold(0u8, |acc, (a, b)| acc | (a ^ b));
            if std::hint::black_box(diff) == 0 {
                found = Some(t);
            }
        }
        found
    }
}

/// The API's routes.
pub fn router(state: ApiState) -> Router {
    let tokens = state
        .tokens
        .iter()
        .map(|t| TokenKey { name: t.name.clone(), role: t.role, digest: Sha256::digest(t.token.as_bytes()).into() })
        .collect();
    let inner = Arc::new(Inner {
        node: state.node,
        tokens,
        requests: Mutex::new(RequestMetrics::default()),
        cert_not_after_s: state.cert_not_after_s,
        in_flight: Semaphore::new(REQUESTS_IN_FLIGHT_MAX),
        taxii_status: Mutex::new(taxii::StatusLog::default()),
        misp_feed: misp_feed::FeedCache::default(),
        dashboard: dashboard::Sessions::default(),
    });
    Router::new()
        .route(INDICATORS, get(indicators::query).post(indicators::submit_batch))
        .route(INDICATOR, post(indicators::submit_one))
        .route(INDICATOR_BY_ID, get(indicators::get_one))
        .route(RETRACT, post(indicators::retract))
        .route(SIGHTINGS, post(indicators::sight))
        .route(STATUS, get(status))
        .route(DRILLS, get(drills::list).post(drills::start))
        .route(DRILL, get(drills::get_one).delete(drills::purge))
        .route(DRILL_REPORT, get(drills::report))
        .route(DRILL_ACK, post(drills::ack))
        .route(DRILL_ABORT, post(drills::abort))
        .route(HEALTHZ, get(healthz))
        .route(METRICS, get(metrics_text))
        .route(BACKUP, get(backup::backup))
        .route(misp_feed::FEED_FILE, get(misp_feed::file))
        .route(taxii::DISCOVERY, get(taxii::discovery))
        .route(taxii::API_ROOT, get(taxii::api_root))
        .route(taxii::COLLECTIONS, get(taxii::collections))
        .route(taxii::COLLECTION, get(taxii::collection_one))
        .route(taxii::OBJECTS, get(taxii::get_objects).post(taxii::post_objects))
        .route(taxii::OBJECT, get(taxii::get_object))
        .route(taxii::VERSIONS, get(taxii::get_versions))
        .route(taxii::MANIFEST, get(taxii::get_manifest))
        .route(taxii::STATUS, get(taxii::get_status))
        .merge(dashboard::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(REQUEST_BYTES_MAX))
        .layer(middleware::from_fn_with_state(inner.clone(), observe))
        .with_state(inner)
}

/// Serves the API on `listener` until `shutdown` turns true.
pub async fn serve(listener: tokio::net::TcpListener, state: ApiState, shutdown: watch::Receiver<bool>) {
    let addr: Option<SocketAddr> = listener.local_addr().ok();
    tracing::info!(?addr, "API listening");
    let app = router(state);
    let mut signal = shutdown.clone();
    let stop = async move {
        let _ = signal.wait_for(|s| *s).await;
    };
    let server = axum::serve(listener, app).with_graceful_shutdown(stop);
    // Graceful shutdown waits for every open connection; a client that never finishes its
    // request must not hold the node's stop up for ever.
    let mut signal = shutdown;
    let overdue = async move {
        let _ = signal.wait_for(|s| *s).await;
        tokio::time::sleep(Duration::from_millis(SHUTDOWN_WAIT_MS)).await;
    };
    tokio::select! {
        r = server => {
            if let Err(e) = r {
                tracing::error!(error = %e, "API server failed");
            }
        }
        _ = overdue => tracing::warn!("API connections still open {SHUTDOWN_WAIT_MS} ms after shutdown: stopped waiting"),
    }
}

/// A caller with a valid bearer token, or a web dashboard session on a `GET` or `HEAD`
/// (401 `unauthorized` otherwise).
struct Caller {
    role: Role,
}

impl FromRequestParts<Arc<Inner>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, inner: &Arc<Inner>) -> Result<Self, ApiError> {
        let Some(presented) = bearer(&parts.headers) else {
            // A web dashboard session (`dashboard.rs`): reads only.
            if let Some(role) = inner.dashboard.role(parts) {
                return Ok(Caller { role });
            }
            return Err(ApiError::unauthorized(
                "missing bearer token: send `Authorization: Bearer TOKEN` with a token from the node's [api] tokens",
            ));
        };
        let Some(t) = inner.token(presented) else {
            return Err(ApiError::unauthorized("unknown token: use a token from the node's [api] tokens"));
        };
        tracing::debug!(token = %t.name, method = %parts.method, path = %parts.uri.path(), "API request");
        Ok(Caller { role: t.role })
    }
}

/// A caller whose token may write (`rw`); 403 `forbidden` for a read-only token.
struct Writer;

impl FromRequestParts<Arc<Inner>> for Writer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, inner: &Arc<Inner>) -> Result<Self, ApiError> {
        match Caller::from_request_parts(parts, inner).await?.role {
            Role::Rw => Ok(Writer),
            Role::Ro => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "this token is read-only (role \"ro\"): submitting, retracting, sightings and backups need a \"rw\" token",
            )),
        }
    }
}

/// The token of an `Authorization: Bearer TOKEN` header.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Runs a store read on the blocking pool; store errors are internal errors.
async fn read_store<T, F>(inner: &Inner, f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
{
    let store = inner.node.store.clone();
    match tokio::task::spawn_blocking(move || f(&store)).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(ApiError::internal("store read failed", &e)),
        Err(e) => Err(ApiError::internal("store read task failed", &e)),
    }
}

/// The node actor's snapshot, waiting at most `STATUS_WAIT_MS`.
async fn node_status(inner: &Inner) -> Result<Status, ApiError> {
    match tokio::time::timeout(Duration::from_millis(STATUS_WAIT_MS), inner.node.status()).await {
        Ok(r) => r.map_err(ApiError::from_node),
        Err(_) => Err(ApiError::unavailable(
            "busy",
            format!("the node did not answer within {STATUS_WAIT_MS} ms (it may be storing a large batch): retry"),
        )),
    }
}

/// `GET /api/v1/status`.
async fn status(State(inner): State<Arc<Inner>>, _: Caller) -> Result<Json<StatusView>, ApiError> {
    let st = node_status(&inner).await?;
    let (counts, forks) = read_store(&inner, |s| Ok((s.counts(), s.forks()?.len()))).await?;
    let mut by_origin: std::collections::BTreeMap<String, std::collections::BTreeMap<String, u64>> = Default::default();
    for ((origin, kind), n) in counts {
        by_origin.entry(origin.to_string()).or_default().insert(kind.as_str().to_owned(), n);
    }
    Ok(Json(StatusView {
        node: st.node.to_string(),
        ready: st.ready,
        peers: st
            .peers
            .iter()
            .map(|p| PeerView {
                name: p.name.to_string(),
                connected: p.connected,
                last_seen: p.last_seen_ms.map(format_time),
                lag_entries: p.lag_entries,
                rejected: p.rejected,
            })
            .collect(),
        heads: st.heads.iter().map(|(o, t)| (o.to_string(), t.seq)).collect(),
        counts: by_origin,
        quarantined: st.quarantined.iter().map(ToString::to_string).collect(),
        forks,
    }))
}

/// The `/healthz` answer.
#[derive(Serialize)]
struct Health {
    /// `ok`, or `unavailable` when the node actor does not answer.
    status: &'static str,
    node: String,
    /// Whether appends are accepted.
    ready: bool,
}

/// `GET /healthz`, without a token: 200 while the node runs, 503 otherwise.
async fn healthz(State(inner): State<Arc<Inner>>) -> Response {
    let node = inner.node.name.to_string();
    match node_status(&inner).await {
        Ok(st) => Json(Health { status: "ok", node, ready: st.ready }).into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, Json(Health { status: "unavailable", node, ready: false }))
            .into_response(),
    }
}

/// `GET /metrics`, with any valid token.
async fn metrics_text(State(inner): State<Arc<Inner>>, _: Caller) -> Result<Response, ApiError> {
    let st = node_status(&inner).await?;
    let counts = inner.node.store.counts();
    let requests = inner.requests.lock().unwrap_or_else(|p| p.into_inner());
    let text = metrics::render(&st, &counts, &requests, inner.cert_not_after_s);
    Ok(([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], text).into_response())
}

async fn not_found(req: Request) -> Response {
    if taxii::is_taxii_path(req.uri().path()) {
        return taxii::unknown_endpoint(req.uri().path());
    }
    let path: String = req.uri().path().chars().take(200).collect();
    ApiError::not_found(format!("no such endpoint: {path} (the API is under /api/v1; see the README)")).into_response()
}

async fn method_not_allowed(req: Request) -> Response {
    let message =
        format!("{} is not allowed here: the Allow header lists the methods this endpoint takes", req.method());
    if taxii::is_taxii_path(req.uri().path()) {
        return taxii::TaxiiError::new(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed", message).into_response();
    }
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", message).into_response()
}

/// Around every request: bounds the requests in flight, answers a panicking handler with a 500
/// (the panic is logged; the server and other requests go on), and records route statistics.
async fn observe(State(inner): State<Arc<Inner>>, req: Request, next: Next) -> Response {
    let route = route_label(req.uri().path());
    let taxii = taxii::is_taxii_path(req.uri().path());
    let started = Instant::now();
    let response = match inner.in_flight.try_acquire() {
        Err(_) => {
            let e = ApiError::unavailable(
                "busy",
                format!("over {REQUESTS_IN_FLIGHT_MAX} requests in progress: retry shortly"),
            );
            if taxii { taxii::TaxiiError::from(e).into_response() } else { e.into_response() }
        }
        Ok(_permit) => run_catching_panics(req, next, taxii).await,
    };
    let took = started.elapsed();
    inner.requests.lock().unwrap_or_else(|p| p.into_inner()).record(route, response.status().as_u16(), took);
    response
}

/// Runs the rest of the stack; a panic in it becomes a 500 `internal` answer (details logged),
/// a TAXII error message on TAXII paths.
async fn run_catching_panics(req: Request, next: Next, taxii: bool) -> Response {
    match CatchUnwind(Box::pin(next.run(req))).await {
        Ok(r) => r,
        Err(panic) => {
            let e = ApiError::internal("handler panicked", &panic_message(&*panic));
            if taxii { taxii::TaxiiError::from(e).into_response() } else { e.into_response() }
        }
    }
}

/// The route template `path` matches, or `unmatched`: the metrics never carry raw paths.
fn route_label(path: &str) -> &'static str {
    let matches = |template: &str| {
        let (mut t, mut p) = (template.split('/'), path.split('/'));
        loop {
            match (t.next(), p.next()) {
                (None, None) => return true,
                (Some(a), Some(b)) if a == b || (a.starts_with('{') && !b.is_empty()) => {}
                _ => return false,
            }
        }
    };
    ROUTES.into_iter().chain(dashboard::ROUTES).find(|t| matches(t)).unwrap_or(UNMATCHED)
}

/// Resolves to `Err` with the payload if polling the inner future panics.
struct CatchUnwind<F>(Pin<Box<F>>);

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Result<F::Output, Box<dyn Any + Send>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let fut = self.0.as_mut();
        match std::panic::catch_unwind(AssertUnwindSafe(|| fut.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Err(panic) => Poll::Ready(Err(panic)),
        }
    }
}

fn panic_message(p: &(dyn Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_labelled_by_template() {
        for (path, label) in [
            ("/api/v1/indicators", INDICATORS),
            ("/api/v1/indicators/ee:42", INDICATOR_BY_ID),
            ("/api/v1/indicators/ee:42/retract", RETRACT),
            ("/api/v1/indicators/lv:1/sightings", SIGHTINGS),
            ("/metrics", METRICS),
            ("/api/v1/indicators/", UNMATCHED),
            ("/api/v1/indicators/ee:1/x", UNMATCHED),
            ("/nope", UNMATCHED),
            ("/", UNMATCHED),
        ] {
            assert_eq!(route_label(path), label, "{path}");
        }
    }

    #[test]
    fn bearer_tokens_are_parsed() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::AUTHORIZATION, v.parse().unwrap());
            m
        };
        assert_eq!(bearer(&h("Bearer abc")), Some("abc"));
        assert_eq!(bearer(&h("bearer  abc ")), Some("abc"));
        assert_eq!(bearer(&h("Basic abc")), None);
        assert_eq!(bearer(&h("Bearer ")), None);
        assert_eq!(bearer(&HeaderMap::new()), None);
    }

    /// A panicking handler answers 500 `internal` in JSON, and the server keeps serving.
    #[tokio::test]
    async fn a_panicking_handler_gets_a_500_and_the_server_goes_on() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        async fn boom() -> &'static str {
            panic!("deliberate test panic")
        }
        let app = Router::new().route("/boom", get(boom)).route("/ok", get(|| async { "fine" }));
        let app = app.layer(middleware::from_fn(|req, next| run_catching_panics(req, next, false)));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        for (path, want) in [("/boom", "500"), ("/ok", "200"), ("/boom", "500"), ("/ok", "200")] {
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
                .await
                .unwrap();
            let mut text = String::new();
            s.read_to_string(&mut text).await.unwrap();
            assert!(text.starts_with(&format!("HTTP/1.1 {want}")), "{path}: {text}");
            if want == "500" {
                assert!(text.contains(r#""code":"internal""#) && !text.contains("deliberate"), "{text}");
            }
        }
    }
}
