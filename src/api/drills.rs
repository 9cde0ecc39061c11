//! The drill endpoints: start, list, report, acknowledge, abort, purge.
//!
//! Drill data never leaves through the indicator endpoints: these are the only routes that show
//! it, and reports are built from the drill's own records.

use std::sync::Arc;

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::error::{ApiError, IdParam, JsonBody};
use super::{Caller, Inner, Writer, node_status, read_store};
use crate::drill::Record;
use crate::drill::report::{self, Format, Report};
use crate::drill::runner::DrillError;
use crate::model::EntryId;
use crate::model::time::format_time;
use crate::node::NodeError;
use crate::store::Store;
use crate::view::{
    DrillAbortRequest, DrillAckRequest, DrillDone, DrillList, DrillStartRequest, DrillStarted, DrillView,
};

/// Longest scenario file accepted.
pub const SCENARIO_BYTES_MAX: usize = 256 * 1024;
/// Earlier runs of the same scenario a report compares itself with.
pub const EARLIER_RUNS_MAX: usize = 5;

/// `POST /api/v1/drills`: starts a drill with this node as controller (201).
pub async fn start(
    State(inner): State<Arc<Inner>>,
    _: Writer,
    JsonBody(req): JsonBody<DrillStartRequest>,
) -> Result<Response, ApiError> {
    if req.scenario.len() > SCENARIO_BYTES_MAX {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the scenario is {} bytes: at most {SCENARIO_BYTES_MAX}", req.scenario.len()),
        ));
    }
    let scenario = crate::drill::scenario::parse(&req.scenario)
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_scenario", e.to_string()))?;
    let speed = req.speed.unwrap_or(1);
    if !(1..=100).contains(&speed) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            format!("speed {speed}: give 1 to 100"),
        )
        .with_field("speed"));
    }
    let scenario = scenario.scaled(speed);
    let st = node_status(&inner).await?;
    let mut members: Vec<_> = st.peers.iter().map(|p| p.name.clone()).collect();
    members.push(st.node.clone());
    crate::drill::scenario::check_roster(&scenario, &members)
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_scenario", e))?;
    let name = scenario.name.clone();
    let duration = scenario.duration_ms();
    let id = inner.node.drill_start(scenario).await.map_err(from_drill)?;
    let summary = inner.node.drill_list().await.map_err(ApiError::from_node)?.into_iter().find(|d| d.id == id);
    let start_ms = summary.as_ref().map_or_else(crate::now_ms, |s| s.start_ms);
    let body =
        DrillStarted { id: id.to_string(), name, start: format_time(start_ms), end: format_time(start_ms + duration) };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// `GET /api/v1/drills`.
pub async fn list(State(inner): State<Arc<Inner>>, _: Caller) -> Result<Json<DrillList>, ApiError> {
    let drills = inner.node.drill_list().await.map_err(ApiError::from_node)?;
    Ok(Json(DrillList {
        drills: drills
            .into_iter()
            .map(|d| DrillView {
                id: d.id.to_string(),
                name: d.name,
                controller: d.controller.to_string(),
                state: d.state.into(),
                start: format_time(d.start_ms),
                end: format_time(d.end_ms),
                participant: d.participant,
            })
            .collect(),
    }))
}

/// `GET /api/v1/drills/{id}`: the report as JSON (live while the drill runs).
pub async fn get_one(State(inner): State<Arc<Inner>>, _: Caller, IdParam(id): IdParam) -> Result<Response, ApiError> {
    let r = build_report(&inner, id).await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], report::to_json(&r)).into_response())
}

/// `GET /api/v1/drills/{id}/report?format=json|md|html`.
pub async fn report(
    State(inner): State<Arc<Inner>>,
    _: Caller,
    IdParam(id): IdParam,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let mut format = Format::Json;
    for (k, v) in url::form_urlencoded::parse(q.as_deref().unwrap_or("").as_bytes()) {
        match &*k {
            "format" => {
                format = v.parse().map_err(|e: report::ReportError| ApiError::invalid_query("format", e.to_string()))?
            }
            other => {
                return Err(ApiError::invalid_query(
                    other,
                    format!("unknown parameter {other:?}: the only one is format"),
                ));
            }
        }
    }
    let r = build_report(&inner, id).await?;
    let (ctype, text) = match format {
        Format::Json => ("application/json", report::to_json(&r)),
        Format::Md => ("text/markdown; charset=utf-8", report::to_markdown(&r)),
        Format::Html => ("text/html; charset=utf-8", report::to_html(&r)),
    };
    Ok(([(header::CONTENT_TYPE, ctype)], text).into_response())
}

/// `POST /api/v1/drills/{id}/ack`: an operator acknowledges a situation update.
pub async fn ack(
    State(inner): State<Arc<Inner>>,
    _: Writer,
    IdParam(id): IdParam,
    JsonBody(req): JsonBody<DrillAckRequest>,
) -> Result<Json<DrillDone>, ApiError> {
    let rec = inner.node.drill_ack(id, req.inject, req.note).await.map_err(from_drill)?;
    Ok(Json(DrillDone { id: Some(rec.to_string()), purged: None }))
}

/// `POST /api/v1/drills/{id}/abort`: the controller ends a drill early.
pub async fn abort(
    State(inner): State<Arc<Inner>>,
    _: Writer,
    IdParam(id): IdParam,
    JsonBody(req): JsonBody<DrillAbortRequest>,
) -> Result<Json<DrillDone>, ApiError> {
    let reason = if req.reason.trim().is_empty() { "aborted by the controller".to_string() } else { req.reason };
    let rec = inner.node.drill_abort(id, reason).await.map_err(from_drill)?;
    Ok(Json(DrillDone { id: Some(rec.to_string()), purged: None }))
}

/// `DELETE /api/v1/drills/{id}`: purges a finished drill's data from this node.
pub async fn purge(
    State(inner): State<Arc<Inner>>,
    _: Writer,
    IdParam(id): IdParam,
) -> Result<Json<DrillDone>, ApiError> {
    let n = inner.node.drill_purge(id).await.map_err(from_drill)?;
    Ok(Json(DrillDone { id: None, purged: Some(n) }))
}

/// The drill's report, compared with earlier runs of the same scenario held here.
async fn build_report(inner: &Inner, id: EntryId) -> Result<Report, ApiError> {
    let now = crate::now_ms();
    let reports = read_store(inner, move |s| Ok(reports_for(s, &id, now))).await?;
    reports.ok_or_else(|| ApiError::not_found("no such drill at this node: `ctix drill list` shows the drills"))?
}

fn reports_for(s: &Store, id: &EntryId, now: u64) -> Option<Result<Report, ApiError>> {
    let records = |d: &EntryId| -> Result<Vec<Record>, ApiError> {
        Ok(s.drill_records(d)
            .map_err(|e| ApiError::internal("reading drill records", &e))?
            .iter()
            .filter_map(Record::from_entry)
            .collect())
    };
    let recs = match records(id) {
        Ok(r) => r,
        Err(e) => return Some(Err(e)),
    };
    let name = recs.iter().find(|r| r.id == *id).and_then(|r| match &r.record {
        crate::model::drill::DrillRecord::Start { scenario, .. } => Some(scenario.name.clone()),
        _ => None,
    })?;
    // Earlier runs of the same scenario, most recent first.
    let mut earlier = Vec::new();
    let mut ids = s.drills().unwrap_or_default();
    ids.retain(|d| d != id);
    ids.reverse();
    for other in ids {
        if earlier.len() >= EARLIER_RUNS_MAX {
            break;
        }
        let Ok(r) = records(&other) else { continue };
        let same = r.iter().any(|x| {
            matches!(&x.record, crate::model::drill::DrillRecord::Start { scenario, start_ms }
                if scenario.name == name && x.id == other && *start_ms < now)
        });
        if same && let Ok(rep) = report::build(&r, now, &[]) {
            earlier.push(rep);
        }
    }
    Some(report::build(&recs, now, &earlier).map_err(|e| ApiError::internal("building the report", &e)))
}

/// Maps a refused drill command to its HTTP answer.
fn from_drill(e: NodeError) -> ApiError {
    let NodeError::Drill(d) = e else { return ApiError::from_node(e) };
    let msg = d.to_string();
    match d {
        DrillError::Unknown(_) | DrillError::NoSuchInject { .. } => ApiError::not_found(msg),
        DrillError::Over(_) | DrillError::AlreadyAcked(_) | DrillError::NotReceived(_) | DrillError::Running(_) => {
            ApiError::new(StatusCode::CONFLICT, "conflict", msg)
        }
        DrillError::NotParticipant(_) | DrillError::NotController(_) => {
            ApiError::new(StatusCode::FORBIDDEN, "forbidden", msg)
        }
        DrillError::NotHuman(_) => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", msg).with_field("inject")
        }
        DrillError::TooMany(_) => ApiError::unavailable("busy", msg),
        DrillError::Invalid(_) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_scenario", msg),
    }
}
