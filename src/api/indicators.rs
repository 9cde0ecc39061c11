//! The indicator endpoints: submit (batch and single), query, get one, retract, report a sighting.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::error::{ApiError, IdParam, JsonBody, append_item_error, field_error};
use super::{Caller, Inner, Writer, read_store};
use crate::config::Role;
use crate::model::time::{parse_time, parse_time_ago};
use crate::model::{
    Body, EntryId, Indicator, IndicatorInput, IndicatorType, ModelError, NodeName, Retraction, Sighting, Tlp,
    normalize_value,
};
use crate::store::{QUERY_LIMIT_MAX, Query};
use crate::view::{
    IndicatorView, ItemResult, QUERY_LIMIT_DEFAULT, QueryResponse, RetractRequest, SUBMIT_BATCH_MAX, SightRequest,
    SubmitRequest, SubmitResponse,
};

// A batch is one `NodeHandle::append`, which the store takes as one group commit.
const _: () = assert!(SUBMIT_BATCH_MAX <= crate::store::BATCH_ENTRIES_MAX);
const _: () = assert!(QUERY_LIMIT_DEFAULT <= QUERY_LIMIT_MAX);

/// The parameters `GET /api/v1/indicators` understands.
pub const QUERY_PARAMS: [&str; 10] =
    ["type", "value", "origin", "tag", "tlp", "since", "until", "retracted", "after", "limit"];

/// `POST /api/v1/indicators`: a batch, answered once every accepted item is durable.
pub async fn submit_batch(
    State(inner): State<Arc<Inner>>,
    _: Writer,
    JsonBody(req): JsonBody<SubmitRequest>,
) -> Result<Response, ApiError> {
    let n = req.indicators.len();
    if n > SUBMIT_BATCH_MAX {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "batch_too_large",
            format!("batch of {n} indicators is over the limit of {SUBMIT_BATCH_MAX}: split it"),
        ));
    }
    let resp = submit(&inner, req.indicators, req.atomic).await?;
    let status = if req.atomic && resp.rejected > 0 { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    Ok((status, Json(resp)).into_response())
}

/// `POST /api/v1/indicator`: one indicator; 422 with the item's error if it is refused.
pub async fn submit_one(
    State(inner): State<Arc<Inner>>,
    _: Writer,
    JsonBody(input): JsonBody<IndicatorInput>,
) -> Result<Response, ApiError> {
    let resp = submit(&inner, vec![input], true).await?;
    let status = if resp.rejected > 0 { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    Ok((status, Json(resp)).into_response())
}

/// Validates every input, then appends the valid ones in one call (none if `atomic` and any is
/// invalid). Results are in input order.
pub(super) async fn submit(
    inner: &Inner,
    inputs: Vec<IndicatorInput>,
    atomic: bool,
) -> Result<SubmitResponse, ApiError> {
    let now = crate::now_ms();
    let checked = tokio::task::spawn_blocking(move || {
        inputs.iter().map(|i| Indicator::from_input(i, now)).collect::<Vec<Result<Indicator, ModelError>>>()
    })
    .await
    .map_err(|e| ApiError::internal("validating a submission", &e))?;
    let mut results = Vec::with_capacity(checked.len());
    let mut bodies = Vec::new();
    let mut slots = Vec::new();
    for (index, c) in checked.into_iter().enumerate() {
        let mut item = ItemResult { index, id: None, content_id: None, error: None };
        match c {
            Ok(ind) => {
                item.content_id = Some(hex::encode(ind.content_id()));
                slots.push(index);
                bodies.push(Body::Indicator(ind));
            }
            Err(e) => item.error = Some(field_error(&e)),
        }
        results.push(item);
    }
    let invalid = results.len() - bodies.len();
    if atomic && invalid > 0 {
        return Ok(SubmitResponse { accepted: 0, rejected: invalid, results });
    }
    if !bodies.is_empty() {
        let appended = inner.node.append(bodies).await.map_err(ApiError::from_node)?;
        if appended.len() != slots.len() {
            let msg = format!("{} results for {} bodies", appended.len(), slots.len());
            return Err(ApiError::internal("append", &msg));
        }
        for (slot, r) in slots.into_iter().zip(appended) {
            match r {
                Ok(v) => results[slot].id = Some(v.id().to_string()),
                Err(e) => results[slot].error = Some(append_item_error(&e)),
            }
        }
    }
    let rejected = results.iter().filter(|r| r.error.is_some()).count();
    Ok(SubmitResponse { accepted: results.len() - rejected, rejected, results })
}

/// `GET /api/v1/indicators?…`: one page of indicators in arrival order.
pub async fn query(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Json<QueryResponse>, ApiError> {
    let q = parse_query(raw.as_deref().unwrap_or(""), caller.role, crate::now_ms())?;
    let page = read_store(&inner, move |s| s.query(&q)).await?;
    let items = page.items.iter().filter_map(|(cursor, st)| IndicatorView::from_state(st, *cursor)).collect();
    Ok(Json(QueryResponse { items, next: page.next }))
}

/// Turns a query string into a store `Query`. Empty values count as absent.
pub fn parse_query(raw: &str, role: Role, now_ms: u64) -> Result<Query, ApiError> {
    let mut params: BTreeMap<&'static str, String> = BTreeMap::new();
    for (k, v) in url::form_urlencoded::parse(raw.as_bytes()) {
        let Some(name) = QUERY_PARAMS.iter().find(|p| **p == k) else {
            let msg = format!("unknown query parameter {k:?}: use {}", QUERY_PARAMS.join(", "));
            return Err(ApiError::invalid_query(&k, msg));
        };
        if params.insert(name, v.trim().to_owned()).is_some() {
            return Err(ApiError::invalid_query(name, format!("`{name}` is given twice: give it once")));
        }
    }
    params.retain(|_, v| !v.is_empty());
    let get = |k: &str| params.get(k).map(String::as_str);
    let bad = |k: &str, reason: String| ApiError::invalid_query(k, format!("{k}: {reason}"));
    let itype: Option<IndicatorType> = get("type").map(str::parse).transpose().map_err(|e| bad("type", reason(e)))?;
    let value = match (get("value"), itype) {
        (None, _) => None,
        (Some(_), None) => {
            return Err(ApiError::invalid_query(
                "value",
                "`value` is matched in its normal form, which depends on the type: add `type` (e.g. type=ipv4)",
            ));
        }
        (Some(v), Some(t)) => Some(normalize_value(t, v).map_err(|e| bad("value", reason(e)))?),
    };
    let origin = get("origin").map(NodeName::new).transpose().map_err(|e| bad("origin", reason(e)))?;
    let tlp: Option<Tlp> = get("tlp").map(str::parse).transpose().map_err(|e| bad("tlp", reason(e)))?;
    let time = |k: &str| get(k).map(|s| parse_time_ago(s, now_ms)).transpose().map_err(|r| bad(k, r));
    let (since, until) = (time("since")?, time("until")?);
    if let (Some(s), Some(u)) = (since, until)
        && s > u
    {
        return Err(ApiError::invalid_query("until", "`until` is before `since`: swap them"));
    }
    let retracted = match get("retracted") {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(other) => return Err(bad("retracted", format!("{other:?} is not a boolean: use true or false"))),
    };
    let after = match get("after") {
        None => 0,
        Some(s) => s.parse::<u64>().map_err(|_| {
            bad("after", format!("{s:?} is not a cursor: pass the `next` or `cursor` number of an earlier answer"))
        })?,
    };
    let limit = match get("limit") {
        None => QUERY_LIMIT_DEFAULT,
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=QUERY_LIMIT_MAX).contains(&n) => n,
            _ => return Err(bad("limit", format!("{s:?} is not a page size: use 1 to {QUERY_LIMIT_MAX}"))),
        },
    };
    Ok(Query {
        itype,
        value,
        origin,
        tag: get("tag").map(str::to_lowercase),
        tlp,
        created_from_ms: since,
        created_to_ms: until,
        retracted,
        hide_amber_strict: role == Role::Ro,
        after,
        limit,
    })
}

fn reason(e: ModelError) -> String {
    e.reason
}

/// `GET /api/v1/indicators/{id}`.
pub async fn get_one(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    IdParam(id): IdParam,
) -> Result<Json<IndicatorView>, ApiError> {
    let view = visible(&inner, &id).await?;
    if caller.role == Role::Ro && view.tlp == Tlp::AmberStrict.as_str() {
        return Err(not_held(&id));
    }
    Ok(Json(view))
}

/// The view of an indicator whose body this node holds; 404 otherwise (unknown, not an
/// indicator, or a redacted stub).
async fn visible(inner: &Inner, id: &EntryId) -> Result<IndicatorView, ApiError> {
    let key = id.clone();
    let found = read_store(inner, move |s| {
        let Some(st) = s.indicator_state(&key)? else { return Ok(None) };
        let cursor = s.arrival_of(&key)?.unwrap_or(0);
        Ok(IndicatorView::from_state(&st, cursor))
    })
    .await?;
    found.ok_or_else(|| not_held(id))
}

fn not_held(id: &EntryId) -> ApiError {
    ApiError::not_found(format!("this node holds no indicator {id} that it may show"))
}

/// `POST /api/v1/indicators/{id}/retract`: only this node's own indicators.
pub async fn retract(
    State(inner): State<Arc<Inner>>,
    _: Writer,
    IdParam(id): IdParam,
    JsonBody(req): JsonBody<RetractRequest>,
) -> Result<Json<SubmitResponse>, ApiError> {
    if id.origin != inner.node.name {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "not_own",
            format!("{id} was published by {}: only the origin can retract; report a sighting instead", id.origin),
        ));
    }
    visible(&inner, &id).await?;
    let r = Retraction { target_seq: id.seq, reason: req.reason.trim().to_owned() };
    r.validate().map_err(|e| ApiError::invalid_field(&e))?;
    append_one(&inner, Body::Retraction(r)).await
}

/// `POST /api/v1/indicators/{id}/sightings`: an indicator of any origin this node may show.
pub async fn sight(
    State(inner): State<Arc<Inner>>,
    _: Writer,
    IdParam(id): IdParam,
    JsonBody(req): JsonBody<SightRequest>,
) -> Result<Json<SubmitResponse>, ApiError> {
    visible(&inner, &id).await?;
    let now = crate::now_ms();
    let time = |field: &'static str, s: &Option<String>| {
        s.as_deref()
            .map(|s| parse_time(s, now))
            .transpose()
            .map_err(|r| ApiError::invalid_field(&ModelError::new(field, r)))
    };
    let (first, last) = (time("first_seen", &req.first_seen)?, time("last_seen", &req.last_seen)?);
    // A missing end defaults to now; a missing start to the end if that is earlier than now.
    let (first_seen_ms, last_seen_ms) = match (first, last) {
        (Some(f), Some(l)) => (f, l),
        (Some(f), None) => (f, now.max(f)),
        (None, Some(l)) => (now.min(l), l),
        (None, None) => (now, now),
    };
    let s = Sighting {
        indicator: id,
        count: req.count.unwrap_or(1),
        first_seen_ms,
        last_seen_ms,
        note: req.note.trim().to_owned(),
    };
    s.validate().map_err(|e| ApiError::invalid_field(&e))?;
    append_one(&inner, Body::Sighting(s)).await
}

/// Appends one retraction or sighting; a store refusal is the request's error.
async fn append_one(inner: &Inner, body: Body) -> Result<Json<SubmitResponse>, ApiError> {
    let mut results = inner.node.append(vec![body]).await.map_err(ApiError::from_node)?;
    let Some(r) = results.pop().filter(|_| results.is_empty()) else {
        return Err(ApiError::internal("append", &"not one result for one body"));
    };
    let v = r.map_err(|e| ApiError::from_append(&e))?;
    let item = ItemResult { index: 0, id: Some(v.id().to_string()), content_id: None, error: None };
    Ok(Json(SubmitResponse { accepted: 1, rejected: 0, results: vec![item] }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejects(raw: &str, param: &str) {
        let e = parse_query(raw, Role::Rw, 0).expect_err(raw);
        assert_eq!((e.status, e.detail.code.as_str()), (StatusCode::BAD_REQUEST, "invalid_query"), "{raw}");
        assert_eq!(e.detail.field.as_deref(), Some(param), "{raw}: {}", e.detail.message);
    }

    #[test]
    fn query_parameters_are_checked() {
        rejects("limit=abc", "limit");
        rejects("limit=0", "limit");
        rejects("limit=1001", "limit");
        rejects("tlp=purple", "tlp");
        rejects("type=ipv7", "type");
        rejects("value=1.2.3.4", "value");
        rejects("type=ipv4&value=1.2.3.999", "value");
        rejects("colour=red", "colour");
        rejects("tag=a&tag=b", "tag");
        rejects("retracted=yes", "retracted");
        rejects("after=-1", "after");
        rejects("since=yesterday", "since");
        rejects("since=2026-02-01&until=2026-01-01", "until");
        rejects("origin=EE!", "origin");
    }

    #[test]
    fn query_parameters_are_normalised() {
        let q = parse_query(
            "type=IPv4&value=%201.2.3.4&tag=APT28&tlp=TLP:AMBER%2BSTRICT&after=7&limit=5&tlp=",
            Role::Ro,
            0,
        );
        let e = q.expect_err("tlp twice");
        assert_eq!(e.detail.field.as_deref(), Some("tlp"));
        let q = parse_query("type=IPv4&value=%201.2.3.4&tag=APT28&tlp=TLP:AMBER%2BSTRICT&after=7&limit=5", Role::Ro, 0)
            .unwrap();
        assert_eq!((q.itype, q.value.as_deref()), (Some(IndicatorType::Ipv4), Some("1.2.3.4")));
        assert_eq!((q.tag.as_deref(), q.tlp, q.after, q.limit), (Some("apt28"), Some(Tlp::AmberStrict), 7, 5));
        assert!(q.hide_amber_strict);
        let now = 1_800_000_000_000;
        let q = parse_query("since=24h&until=%2B1h", Role::Ro, now).unwrap();
        assert_eq!((q.created_from_ms, q.created_to_ms), (Some(now - 86_400_000), Some(now + 3_600_000)));
        let q = parse_query("origin=&limit=", Role::Rw, 0).unwrap();
        assert_eq!((q.origin, q.limit, q.hide_amber_strict), (None, QUERY_LIMIT_DEFAULT, false));
    }
}
