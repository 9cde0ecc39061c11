//! The MISP feed, served read-only so that a MISP server can pull it: add a feed of type "MISP
//! Feed" with URL `http://NODE:PORT/api/v1/misp-feed` and the header
//! `Authorization: Bearer TOKEN`. MISP fetches `manifest.json`, `hashes.csv` and one
//! `<event uuid>.json` per event.
//!
//! The feed holds the indicators the token may read, except TLP:RED ones (a feed is pulled by a
//! whole MISP instance, not by the named recipients). It is built from the store on demand and
//! kept for `FEED_CACHE_MS`, so that MISP's many requests of one pull see one consistent feed.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::{Caller, Inner, read_store};
use crate::config::Role;
use crate::interop::misp::{self, MispFeed};
use crate::model::Tlp;
use crate::store::{QUERY_LIMIT_MAX, Query};
use crate::view::IndicatorView;

/// Most indicators in the feed: the earliest this many in arrival order. A larger store needs
/// narrower exports (`ctix export --format misp --since …`); the node logs when it truncates.
pub const FEED_INDICATORS_MAX: usize = 200_000;
/// How long a built feed is served before it is built again.
pub const FEED_CACHE_MS: u64 = 10_000;

pub const FEED_FILE: &str = "/api/v1/misp-feed/{file}";

/// Built feeds per role, with when they were built.
#[derive(Default)]
pub struct FeedCache {
    feeds: Mutex<BTreeMap<u8, (Instant, Arc<MispFeed>)>>,
}

/// `GET /api/v1/misp-feed/{file}`: `manifest.json`, `hashes.csv` or `<uuid>.json`.
pub async fn file(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    Path(file): Path<String>,
) -> Result<Response, ApiError> {
    let feed = feed_for(&inner, caller.role).await?;
    let json = |v: &serde_json::Value| {
        let mut r = (StatusCode::OK, v.to_string()).into_response();
        r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        r
    };
    match file.as_str() {
        "manifest.json" => Ok(json(&feed.manifest)),
        "hashes.csv" => {
            let mut r = (StatusCode::OK, feed.hashes_csv.clone()).into_response();
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv"));
            Ok(r)
        }
        other => {
            let uuid = other.strip_suffix(".json").unwrap_or(other);
            match feed.events.get(uuid) {
                Some(event) => Ok(json(event)),
                None => Err(ApiError::not_found(format!(
                    "the feed has no file {:?}: it serves manifest.json, hashes.csv and the events manifest.json lists",
                    other.chars().take(80).collect::<String>()
                ))),
            }
        }
    }
}

/// The feed for a role, from the cache or built now.
async fn feed_for(inner: &Arc<Inner>, role: Role) -> Result<Arc<MispFeed>, ApiError> {
    let key = role as u8;
    {
        let cache = inner.misp_feed.feeds.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, feed)) = cache.get(&key)
            && at.elapsed() < Duration::from_millis(FEED_CACHE_MS)
        {
            return Ok(feed.clone());
        }
    }
    let views = read_store(inner, move |s| {
        let mut out = Vec::new();
        let mut q = Query { limit: QUERY_LIMIT_MAX, hide_amber_strict: role == Role::Ro, ..Query::default() };
        loop {
            let page = s.query(&q)?;
            out.extend(
                page.items
                    .iter()
                    .filter_map(|(cursor, st)| IndicatorView::from_state(st, *cursor))
                    .filter(|v| v.tlp != Tlp::Red.as_str()),
            );
            match page.next {
                Some(n) if out.len() < FEED_INDICATORS_MAX => q.after = n,
                Some(_) => {
                    tracing::warn!("MISP feed truncated at {FEED_INDICATORS_MAX} indicators");
                    break;
                }
                None => break,
            }
        }
        out.truncate(FEED_INDICATORS_MAX);
        Ok(out)
    })
    .await?;
    let feed = Arc::new(
        tokio::task::spawn_blocking(move || misp::feed(&views, crate::now_ms()))
            .await
            .map_err(|e| ApiError::internal("building the MISP feed", &e))?,
    );
    inner.misp_feed.feeds.lock().unwrap_or_else(|p| p.into_inner()).insert(key, (Instant::now(), feed.clone()));
    Ok(feed)
}
