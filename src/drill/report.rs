//! The after-action report of a drill: figures, statuses, objectives, and JSON/Markdown/HTML.
//!
//! `build` reads the drill records one node holds (in any order, possibly incomplete or
//! duplicated) and grades every inject at every participant; it is pure: no clock, no IO, no hash
//! order, so the same records and `now_ms` give a byte-identical report. The renderers
//! (`to_json`, `to_markdown`, `to_html`, `summary`, `progress_lines`) only format a `Report`,
//! which also loads back from its JSON so that later runs can be compared with it.
//!
//! Times in a report are of two sorts, named by their suffix: `*_at_ms` is an offset from the
//! drill's start (signed: a node whose clock is behind may report a time before the start), and
//! `*_after_ms` a duration since the inject was sent at its source.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::Record;
use crate::model::drill::{DRILL_MS_MAX, DrillRecord, FaultState, Inject, InjectAction, ObjectiveKind, Scenario};
use crate::model::time::format_time;
use crate::model::{EntryId, NodeName};

/// Version of the report's JSON shape, bumped when a field changes meaning.
pub const REPORT_FORMAT: u32 = 1;
/// Most earlier runs a report compares itself with (the most recent ones).
pub const COMPARISON_MAX: usize = 5;

/// The after-action report of one drill.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// `REPORT_FORMAT` of the code that built it.
    pub format: u32,
    /// The drill id, e.g. `ee:42`.
    pub drill: String,
    pub scenario: String,
    pub description: String,
    pub controller: String,
    /// Sorted, as in the scenario.
    pub participants: Vec<String>,
    /// Offset 0 of the drill, ms since the Unix epoch on the controller's clock.
    pub start_ms: u64,
    /// `start_ms` as RFC 3339.
    pub start: String,
    /// The planned duration (`Scenario::duration_ms`).
    pub duration_ms: u64,
    /// The end: the controller's end record, or the planned end once `now` has passed it without
    /// one. `None` while the drill runs.
    pub end_at_ms: Option<i64>,
    /// Whether the controller's end record is among the records.
    pub end_recorded: bool,
    pub state: DrillState,
    /// The reason given when the drill was aborted.
    pub abort_reason: Option<String>,
    /// While the drill runs: the `now` the statuses refer to.
    pub now_at_ms: Option<i64>,
    /// Deliveries slower than this are late (`Scenario::delivery_within_ms`).
    pub delivery_within_ms: u64,
    pub objectives: Vec<ObjectiveReport>,
    /// Over every delivery to a participant other than the source, by the end.
    pub latency: Latency,
    /// How many cells have each status.
    pub counts: StatusCounts,
    /// In scenario order.
    pub injects: Vec<InjectReport>,
    /// One per fault inject, in scenario order.
    pub faults: Vec<FaultReport>,
    /// Earlier runs of the same scenario, most recent first.
    pub comparison: Vec<Comparison>,
    /// What the reader should know about the data: missing end record, silent nodes.
    pub notes: Vec<String>,
    /// Records of this drill that make no sense for it (an unknown inject, a receipt from a
    /// non-participant, an inject written by another node than its source) and were left out.
    pub ignored_records: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DrillState {
    Running,
    Completed,
    Aborted,
}

/// One inject and how every participant fared with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InjectReport {
    pub name: String,
    /// `InjectAction::kind`: `indicators`, `comm_check`, `cut_link`, …
    pub kind: String,
    /// What it does, in a few words (user text included: escape it when rendering).
    pub detail: String,
    /// The node that writes it.
    pub source: String,
    /// Planned offset.
    pub at_ms: u64,
    /// When the source wrote it (its first entry); `None` if no entry of it is here.
    pub sent_at_ms: Option<i64>,
    /// Entries it writes, and how many distinct ones are here.
    pub items: u32,
    pub items_seen: u32,
    /// The acknowledgement deadline, for communication checks and situation updates.
    pub ack_within_ms: Option<u64>,
    /// Whether an operator must acknowledge it (a situation update).
    pub human: bool,
    /// Per participant.
    pub cells: BTreeMap<String, Cell>,
}

/// One inject at one participant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cell {
    pub status: Status,
    /// The receipt, after the inject was sent; 0 at the source. `None` when nothing arrived by
    /// the end (see `caught_up_after_ms`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_after_ms: Option<u64>,
    /// The acknowledgement by the end: an operator's for a situation update, the receipt for a
    /// communication check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acked_after_ms: Option<u64>,
    /// The peer that delivered the last entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
    /// `via` is not the source: the inject took a relay path.
    #[serde(default)]
    pub relayed: bool,
    /// The receipt came only after the drill's end (the node was down or cut off): how long after
    /// the inject was sent. The cell is then `MISSED`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caught_up_after_ms: Option<u64>,
    /// The receipt and the operator's acknowledgement as offsets, for the timeline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received_at_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acked_at_ms: Option<i64>,
}

/// The grade of one cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Status {
    /// Delivered (acknowledged) within the bound; the source's own cell.
    #[serde(rename = "SUCCESS")]
    Success,
    /// After the bound, but by the end.
    #[serde(rename = "LATE")]
    Late,
    /// Not by the end, or (while running) not by the deadline.
    #[serde(rename = "MISSED")]
    Missed,
    /// A fault the node's config does not allow.
    #[serde(rename = "NOT-PERMITTED")]
    NotPermitted,
    /// The drill runs and the deadline has not passed.
    #[serde(rename = "PENDING")]
    Pending,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Success => "SUCCESS",
            Status::Late => "LATE",
            Status::Missed => "MISSED",
            Status::NotPermitted => "NOT-PERMITTED",
            Status::Pending => "PENDING",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusCounts {
    pub success: u64,
    pub late: u64,
    pub missed: u64,
    pub not_permitted: u64,
    pub pending: u64,
}

/// One fault inject: who applied it, who refused, what was relayed meanwhile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultReport {
    pub inject: String,
    /// `isolate` or `cut_link`.
    pub kind: String,
    /// Planned offset and duration.
    pub at_ms: u64,
    pub duration_ms: u64,
    /// The affected nodes, in the scenario's order.
    pub nodes: Vec<FaultNode>,
    /// Deliveries received while this fault was applied somewhere that came through a relay.
    pub relayed: Vec<RelayedDelivery>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultNode {
    pub node: String,
    pub state: FaultNodeState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_at_ms: Option<i64>,
    /// From the node's lifted record; `None` if none is here (the window is then taken to last
    /// its planned duration, or to the end).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifted_at_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused_at_ms: Option<i64>,
    /// How long after the lift the node received the last inject sent during its window, when
    /// that was after the lift.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catch_up_ms: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultNodeState {
    Applied,
    NotPermitted,
    /// The node reported neither by the end.
    Missing,
    /// Not reported yet; the drill runs.
    Pending,
}

impl FaultNodeState {
    pub fn as_str(self) -> &'static str {
        match self {
            FaultNodeState::Applied => "applied",
            FaultNodeState::NotPermitted => "not-permitted",
            FaultNodeState::Missing => "missing",
            FaultNodeState::Pending => "pending",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayedDelivery {
    pub inject: String,
    pub receiver: String,
    pub via: String,
    pub received_at_ms: i64,
    pub delivered_after_ms: Option<u64>,
}

/// One objective of the scenario, judged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectiveReport {
    pub name: String,
    /// `delivery`, `ack` or `relay`.
    pub kind: String,
    pub within_ms: u64,
    pub status: ObjectiveStatus,
    /// The worst figure measured (delivery: delivered-after; ack: acked-after; relay:
    /// delivered-after of deliveries received during a fault window).
    pub worst_ms: Option<u64>,
    /// How many cells (deliveries for `relay`) the objective looked at.
    pub measured: u64,
    /// How many of those exceeded the bound or never arrived.
    pub beyond: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ObjectiveStatus {
    #[serde(rename = "PASS")]
    Pass,
    #[serde(rename = "FAIL")]
    Fail,
    #[serde(rename = "PENDING")]
    Pending,
}

impl ObjectiveStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectiveStatus::Pass => "PASS",
            ObjectiveStatus::Fail => "FAIL",
            ObjectiveStatus::Pending => "PENDING",
        }
    }
}

/// Nearest-rank percentiles of delivered-after, ms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Latency {
    pub count: u64,
    pub p50_ms: Option<u64>,
    pub p90_ms: Option<u64>,
    pub p99_ms: Option<u64>,
    pub max_ms: Option<u64>,
}

/// This run against one earlier run of the same scenario.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Comparison {
    pub drill: String,
    pub start: String,
    pub p50_ms: Option<u64>,
    pub p99_ms: Option<u64>,
    pub objectives_passed: u64,
    pub objectives_total: u64,
    /// This run's p50 against the earlier one's (lower is better).
    pub p50: Trend,
    /// This run's objectives passed against the earlier one's (more is better).
    pub objectives: Trend,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Trend {
    Better,
    Worse,
    Same,
    /// A figure is missing on one side.
    Unknown,
}

impl Trend {
    pub fn as_str(self) -> &'static str {
        match self {
            Trend::Better => "better",
            Trend::Worse => "worse",
            Trend::Same => "same",
            Trend::Unknown => "unknown",
        }
    }
}

/// The output formats of `write`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Md,
    Html,
}

impl FromStr for Format {
    type Err = ReportError;
    /// `json`, `md` or `markdown`, `html` (any case).
    fn from_str(s: &str) -> Result<Format, ReportError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "json" => Ok(Format::Json),
            "md" | "markdown" => Ok(Format::Md),
            "html" => Ok(Format::Html),
            _ => Err(ReportError::Format(s.chars().take(32).collect())),
        }
    }
}

/// Why a report could not be built or written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The records hold no start record.
    #[error(
        "no start record among the {0} drill records: the drill's start has not reached this node yet; \
         retry in a moment, or ask for the report at the controller's node"
    )]
    NoStart(usize),
    /// The start record's scenario breaks the scenario rules.
    #[error("drill {drill} carries an invalid scenario ({reason}): no report can be built for it")]
    InvalidScenario { drill: String, reason: String },
    /// `Format::from_str` was given something else.
    #[error("unknown report format {0:?}: use json, md (or markdown) or html")]
    Format(String),
    /// The output could not be written.
    #[error("writing the report to {path}: {source}; check that the directory exists and is writable")]
    Write { path: PathBuf, source: std::io::Error },
}

/// Builds the report of the drill whose start record is among `records`, as of `now_ms`.
///
/// Records of other drills are ignored; if several start records are present, the drill most
/// records refer to is reported. `earlier` are reports of earlier runs: those of the same
/// scenario name that started before this one are compared (the most recent `COMPARISON_MAX`).
pub fn build(records: &[Record], now_ms: u64, earlier: &[Report]) -> Result<Report, ReportError> {
    let (id, start_ms, scenario) = find_start(records)?;
    check_scenario(id, scenario)?;
    let controller = &id.origin;
    let seen = Seen::collect(records, id, scenario);
    let duration_ms = scenario.duration_ms();
    let planned_end = start_ms.saturating_add(duration_ms);
    let (state, end) = match seen.end {
        Some((at, true, _)) => (DrillState::Aborted, Some(at)),
        Some((at, false, _)) => (DrillState::Completed, Some(at)),
        None if now_ms >= planned_end => (DrillState::Completed, Some(planned_end)),
        None => (DrillState::Running, None),
    };
    let ctx = Ctx { start: start_ms, end, now: now_ms, delivery_within: scenario.delivery_within_ms() };

    let injects: Vec<InjectReport> =
        scenario.injects.iter().map(|inj| inject_report(&ctx, &seen, scenario, controller, inj)).collect();
    let faults = fault_reports(&ctx, &seen, scenario, &injects);
    let windows: Vec<(i64, i64)> =
        faults.iter().flat_map(|f| f.nodes.iter().filter_map(|n| window(n, f.duration_ms, &ctx))).collect();
    let objectives = scenario.objectives.iter().map(|o| objective(&ctx, o, &injects, &windows)).collect();

    let mut delivered: Vec<u64> = non_source_cells(&injects).filter_map(|(_, _, c)| c.delivered_after_ms).collect();
    delivered.sort_unstable();
    let mut counts = StatusCounts::default();
    for c in injects.iter().flat_map(|i| i.cells.values()) {
        *match c.status {
            Status::Success => &mut counts.success,
            Status::Late => &mut counts.late,
            Status::Missed => &mut counts.missed,
            Status::NotPermitted => &mut counts.not_permitted,
            Status::Pending => &mut counts.pending,
        } += 1;
    }

    let mut report = Report {
        format: REPORT_FORMAT,
        drill: id.to_string(),
        scenario: scenario.name.clone(),
        description: scenario.description.clone(),
        controller: controller.to_string(),
        participants: scenario.participants.iter().map(ToString::to_string).collect(),
        start_ms,
        start: format_time(start_ms),
        duration_ms,
        end_at_ms: end.map(|e| ctx.at(e)),
        end_recorded: seen.end.is_some(),
        state,
        abort_reason: seen.end.filter(|e| e.1).map(|e| e.2.to_string()),
        now_at_ms: end.is_none().then(|| ctx.at(now_ms)),
        delivery_within_ms: ctx.delivery_within,
        objectives,
        latency: latency(&delivered),
        counts,
        injects,
        faults,
        comparison: Vec::new(),
        notes: notes(&seen, scenario, controller, state),
        ignored_records: seen.ignored,
    };
    report.comparison = compare(&report, earlier);
    Ok(report)
}

/// The report as pretty JSON with a final newline.
pub fn to_json(report: &Report) -> String {
    let mut s = serde_json::to_string_pretty(report).expect("a report has only string map keys");
    s.push('\n');
    s
}

/// The report in `format`.
pub fn render(report: &Report, format: Format) -> String {
    match format {
        Format::Json => to_json(report),
        Format::Md => to_markdown(report),
        Format::Html => to_html(report),
    }
}

/// Writes the report in `format` to `out`, or to standard output.
pub fn write(report: &Report, format: Format, out: Option<&Path>) -> Result<(), ReportError> {
    let text = render(report, format);
    match out {
        Some(path) => std::fs::write(path, text).map_err(|source| ReportError::Write { path: path.into(), source }),
        None => {
            use std::io::Write as _;
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(text.as_bytes())
                .and_then(|()| stdout.flush())
                .map_err(|source| ReportError::Write { path: "standard output".into(), source })
        }
    }
}

/// Whether the drill was still running when the report was built.
pub fn is_running(report: &Report) -> bool {
    report.state == DrillState::Running
}

/// Whether every objective passed (a running drill passes none yet).
pub fn all_objectives_passed(report: &Report) -> bool {
    report.objectives.iter().all(|o| o.status == ObjectiveStatus::Pass) && !is_running(report)
}

/// A few plain-text lines for a terminal: state, objectives with figures, latency, misses.
pub fn summary(r: &Report) -> String {
    let mut out = String::new();
    let state = match r.state {
        DrillState::Running => format!("running (at {})", fmt_offset(r.now_at_ms.unwrap_or(0))),
        DrillState::Completed => format!("completed at {}", fmt_offset(r.end_at_ms.unwrap_or(0))),
        DrillState::Aborted => format!(
            "ABORTED at {}: {}",
            fmt_offset(r.end_at_ms.unwrap_or(0)),
            one_line(r.abort_reason.as_deref().unwrap_or(""))
        ),
    };
    let _ = writeln!(
        out,
        "drill {} ({}): {state}; {} participants, {} injects",
        r.drill,
        r.scenario,
        r.participants.len(),
        r.injects.len()
    );
    if r.objectives.is_empty() {
        let _ = writeln!(out, "objectives: none stated");
    } else {
        let passed = r.objectives.iter().filter(|o| o.status == ObjectiveStatus::Pass).count();
        let each: Vec<String> = r
            .objectives
            .iter()
            .map(|o| format!("{} {} ({})", o.name, o.status.as_str(), objective_figure(o)))
            .collect();
        let _ = writeln!(out, "objectives {passed}/{}: {}", r.objectives.len(), each.join("; "));
    }
    let l = &r.latency;
    let _ = writeln!(
        out,
        "delivery latency over {} deliveries: p50 {}, p99 {}, max {}",
        l.count,
        fmt_opt(l.p50_ms),
        fmt_opt(l.p99_ms),
        fmt_opt(l.max_ms)
    );
    let c = &r.counts;
    let _ = write!(
        out,
        "cells: {} SUCCESS, {} LATE, {} MISSED, {} NOT-PERMITTED",
        c.success, c.late, c.missed, c.not_permitted
    );
    if c.pending > 0 {
        let _ = write!(out, ", {} PENDING", c.pending);
    }
    if let Some(prev) = r.comparison.first() {
        let _ = write!(
            out,
            "\nagainst the previous run {}: p50 {}, objectives {}",
            prev.drill,
            prev.p50.as_str(),
            prev.objectives.as_str()
        );
    }
    out
}

/// One line per event so far (inject sent, delivery, acknowledgement, fault), by time; each
/// line stays the same once it appears, so a follower can print the lines it has not printed yet.
pub fn progress_lines(r: &Report) -> Vec<String> {
    let mut lines: Vec<(i64, String)> = Vec::new();
    for inj in &r.injects {
        if let Some(sent) = inj.sent_at_ms {
            let what = format!("{} ({}) sent by {}: {}", inj.name, inj.kind, inj.source, short(&inj.detail, 80));
            lines.push((sent, what));
        }
        for (node, c) in inj.cells.iter().filter(|(n, _)| **n != inj.source) {
            let via = if c.relayed { format!(" via {}", c.via.as_deref().unwrap_or("?")) } else { String::new() };
            if let (Some(at), Some(d)) = (c.received_at_ms, c.delivered_after_ms) {
                lines.push((at, format!("{}: {node} received it after {}{via}", inj.name, fmt_ms(d))));
            } else if let (Some(at), Some(d)) = (c.received_at_ms, c.caught_up_after_ms) {
                let what = format!(
                    "{}: {node} received it only after the end, {} after it was sent{via}",
                    inj.name,
                    fmt_ms(d)
                );
                lines.push((at, what));
            }
        }
        for (node, c) in inj.cells.iter().filter(|_| inj.human) {
            if let (Some(at), Some(a)) = (c.acked_at_ms, c.acked_after_ms) {
                lines.push((at, format!("{}: {node}'s operator acknowledged it after {}", inj.name, fmt_ms(a))));
            }
        }
    }
    for f in &r.faults {
        for n in &f.nodes {
            let events = [
                (n.applied_at_ms, "applied the fault"),
                (n.refused_at_ms, "refused the fault (its config does not permit drill faults)"),
                (n.lifted_at_ms, "lifted the fault"),
            ];
            for (at, what) in events {
                if let Some(at) = at {
                    lines.push((at, format!("{}: {} {what}", f.inject, n.node)));
                }
            }
        }
    }
    lines.sort();
    lines.into_iter().map(|(at, line)| format!("{} {line}", fmt_offset(at))).collect()
}

// ---------------------------------------------------------------------------------------------
// Reading the records

/// The start record to report on: of the start records present, the one most records refer to
/// (ties: the lowest id); duplicates of it are told apart by content, so input order never
/// matters.
fn find_start(records: &[Record]) -> Result<(&EntryId, u64, &Scenario), ReportError> {
    let mut refs: BTreeMap<&EntryId, usize> = BTreeMap::new();
    for r in records.iter().filter(|r| r.record.drill().is_some()) {
        *refs.entry(r.drill()).or_default() += 1;
    }
    let starts = records.iter().filter_map(|r| match &r.record {
        DrillRecord::Start { scenario, start_ms } => Some((r, *start_ms, scenario)),
        _ => None,
    });
    let key = |(r, start_ms, scenario): &(&Record, u64, &Scenario)| {
        let count = refs.get(&r.id).copied().unwrap_or(0);
        (std::cmp::Reverse(count), r.id.clone(), r.created_ms, *start_ms, serde_json::to_string(scenario).ok())
    };
    let best = starts.map(|s| (key(&s), s)).min_by(|a, b| a.0.cmp(&b.0)).map(|(_, s)| s);
    best.map(|(r, start_ms, scenario)| (&r.id, start_ms, scenario)).ok_or(ReportError::NoStart(records.len()))
}

/// The scenario rules, with the times bounded first so that no sum of them can overflow.
fn check_scenario(id: &EntryId, s: &Scenario) -> Result<(), ReportError> {
    let bounded = |ms: u64| ms <= DRILL_MS_MAX;
    let times_ok = s.objectives.iter().all(|o| bounded(o.within_ms))
        && s.injects.iter().all(|i| {
            bounded(i.at_ms)
                && i.action.ack_within_ms().is_none_or(bounded)
                && i.action.fault().is_none_or(|(_, d)| bounded(d))
        });
    let invalid = |reason: String| ReportError::InvalidScenario { drill: id.to_string(), reason };
    if !times_ok {
        return Err(invalid(format!("a time beyond {} h", DRILL_MS_MAX / 3_600_000)));
    }
    s.validate().map_err(|e| invalid(e.to_string()))
}

/// The inject's source: `from`, else the controller.
fn source_of<'a>(inj: &'a Inject, controller: &'a NodeName) -> &'a NodeName {
    inj.from.as_ref().unwrap_or(controller)
}

/// What the records of one drill say, with duplicates folded (the earliest of each kind counts).
struct Seen<'a> {
    /// Per inject: its first entry's creation time and the items present.
    sent: BTreeMap<&'a str, (u64, BTreeSet<u32>)>,
    /// Machine receipts per (inject, participant): (received_ms, created_ms, via).
    receipts: BTreeMap<(&'a str, &'a NodeName), (u64, u64, Option<&'a NodeName>)>,
    /// Operator acknowledgements per (inject, participant): received_ms.
    human: BTreeMap<(&'a str, &'a NodeName), u64>,
    faults: BTreeMap<(&'a str, &'a NodeName), FaultSeen>,
    /// The controller's end record: (created_ms, aborted, reason).
    end: Option<(u64, bool, &'a str)>,
    /// Nodes with at least one record that counted.
    origins: BTreeSet<&'a NodeName>,
    ignored: u64,
}

#[derive(Debug, Default, Clone, Copy)]
struct FaultSeen {
    applied: Option<u64>,
    refused: Option<u64>,
    lifted: Option<u64>,
}

fn keep_min<T: Ord>(slot: &mut Option<T>, v: T) {
    if slot.as_ref().is_none_or(|old| v < *old) {
        *slot = Some(v);
    }
}

impl<'a> Seen<'a> {
    fn collect(records: &'a [Record], id: &'a EntryId, s: &'a Scenario) -> Seen<'a> {
        let mut seen = Seen {
            sent: BTreeMap::new(),
            receipts: BTreeMap::new(),
            human: BTreeMap::new(),
            faults: BTreeMap::new(),
            end: None,
            origins: BTreeSet::new(),
            ignored: 0,
        };
        for r in records.iter().filter(|r| r.record.drill() == Some(id)) {
            let origin = &r.id.origin;
            if seen.take(r, id, s) {
                seen.origins.insert(origin);
            } else {
                seen.ignored += 1;
            }
        }
        seen
    }

    /// Folds one record in; `false` if it does not fit the drill.
    fn take(&mut self, r: &'a Record, id: &'a EntryId, s: &'a Scenario) -> bool {
        let origin = &r.id.origin;
        let participant = s.participants.contains(origin);
        let inject = |name: &str| s.injects.iter().find(|i| i.name == name);
        match &r.record {
            DrillRecord::Start { .. } => false,
            DrillRecord::Inject { inject: name, item, .. } => {
                let Some(inj) = inject(name) else { return false };
                if source_of(inj, &id.origin) != origin || *item >= inj.action.entries() {
                    return false;
                }
                let e = self.sent.entry(inj.name.as_str()).or_insert((r.created_ms, BTreeSet::new()));
                e.0 = e.0.min(r.created_ms);
                e.1.insert(*item);
                true
            }
            DrillRecord::Ack { inject: name, received_ms, via, human, .. } => {
                let Some(inj) = inject(name) else { return false };
                let key = (inj.name.as_str(), origin);
                match human {
                    _ if !participant => false,
                    Some(_) if !inj.action.needs_human() => false,
                    Some(_) => {
                        let slot = self.human.entry(key).or_insert(*received_ms);
                        *slot = (*slot).min(*received_ms);
                        true
                    }
                    None if source_of(inj, &id.origin) == origin => false,
                    None => {
                        let v = (*received_ms, r.created_ms, via.as_ref());
                        let slot = self.receipts.entry(key).or_insert(v);
                        *slot = (*slot).min(v);
                        true
                    }
                }
            }
            DrillRecord::Fault { inject: name, state, at_ms, .. } => {
                let Some(inj) = inject(name) else { return false };
                if !inj.action.fault().is_some_and(|(nodes, _)| nodes.contains(origin)) {
                    return false;
                }
                let f = self.faults.entry((inj.name.as_str(), origin)).or_default();
                match state {
                    FaultState::Applied => keep_min(&mut f.applied, *at_ms),
                    FaultState::NotPermitted => keep_min(&mut f.refused, *at_ms),
                    FaultState::Lifted => keep_min(&mut f.lifted, *at_ms),
                }
                true
            }
            DrillRecord::End { aborted, reason, .. } => {
                if *origin != id.origin {
                    return false;
                }
                keep_min(&mut self.end, (r.created_ms, *aborted, reason.as_str()));
                true
            }
        }
    }
}

/// The clock of the report: the drill's start and end, and `now`.
struct Ctx {
    start: u64,
    /// `None` while running.
    end: Option<u64>,
    now: u64,
    delivery_within: u64,
}

impl Ctx {
    /// `t` as an offset from the start.
    fn at(&self, t: u64) -> i64 {
        (i128::from(t) - i128::from(self.start)).clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
    }

    fn by_end(&self, t: u64) -> bool {
        self.end.is_none_or(|e| t <= e)
    }

    /// The grade of something due `within` ms after `from` that happened at `at` (if at all).
    fn grade(&self, at: Option<u64>, from: u64, within: u64) -> Status {
        match at {
            Some(t) if self.by_end(t) => {
                if t.saturating_sub(from) <= within {
                    Status::Success
                } else {
                    Status::Late
                }
            }
            _ if self.end.is_some() => Status::Missed,
            _ if self.now >= from.saturating_add(within) => Status::Missed,
            _ => Status::Pending,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Grading

fn inject_report(ctx: &Ctx, seen: &Seen, s: &Scenario, controller: &NodeName, inj: &Inject) -> InjectReport {
    let source = source_of(inj, controller);
    let sent = seen.sent.get(inj.name.as_str());
    // Measured from the first entry at its source; if none is here, from the planned time.
    let from = sent.map_or(ctx.start.saturating_add(inj.at_ms), |e| e.0);
    let written = sent.is_some() || seen.receipts.keys().any(|(name, _)| *name == inj.name);
    let cells =
        s.participants.iter().map(|p| (p.to_string(), cell(ctx, seen, inj, source, from, written, p))).collect();
    InjectReport {
        name: inj.name.clone(),
        kind: inj.action.kind().into(),
        detail: detail(&inj.action),
        source: source.to_string(),
        at_ms: inj.at_ms,
        sent_at_ms: sent.map(|e| ctx.at(e.0)),
        items: inj.action.entries(),
        items_seen: sent.map_or(0, |e| e.1.len() as u32),
        ack_within_ms: inj.action.ack_within_ms(),
        human: inj.action.needs_human(),
        cells,
    }
}

/// One participant's cell of one inject sent at `from`; `written`: the source wrote it.
fn cell(ctx: &Ctx, seen: &Seen, inj: &Inject, source: &NodeName, from: u64, written: bool, p: &NodeName) -> Cell {
    let key = (inj.name.as_str(), p);
    let human = seen.human.get(&key).copied();
    let mut c = Cell {
        status: Status::Pending,
        delivered_after_ms: None,
        acked_after_ms: human.filter(|t| ctx.by_end(*t)).map(|t| t.saturating_sub(from)),
        via: None,
        relayed: false,
        caught_up_after_ms: None,
        received_at_ms: None,
        acked_at_ms: human.map(|t| ctx.at(t)),
    };
    let deadline = inj.action.ack_within_ms();
    if p == source {
        if written {
            c.status = Status::Success;
            c.delivered_after_ms = Some(0);
            if deadline.is_some() && !inj.action.needs_human() {
                c.acked_after_ms = Some(0);
            }
        } else {
            c.status = ctx.grade(None, from, deadline.unwrap_or(ctx.delivery_within));
        }
    } else {
        let receipt = seen.receipts.get(&key).copied();
        if let Some((received, _, via)) = receipt {
            let after = received.saturating_sub(from);
            c.received_at_ms = Some(ctx.at(received));
            c.via = via.map(ToString::to_string);
            c.relayed = via.is_some_and(|v| v != source);
            if ctx.by_end(received) {
                c.delivered_after_ms = Some(after);
            } else {
                c.caught_up_after_ms = Some(after);
            }
        }
        let received = receipt.map(|r| r.0);
        c.status = match deadline {
            Some(within) if inj.action.needs_human() => ctx.grade(human, from, within),
            Some(within) => {
                c.acked_after_ms = c.delivered_after_ms;
                ctx.grade(received, from, within)
            }
            None => ctx.grade(received, from, ctx.delivery_within),
        };
    }
    if inj.action.fault().is_some_and(|(nodes, _)| nodes.contains(p)) {
        let f = seen.faults.get(&key);
        if f.is_some_and(|f| f.refused.is_some()) {
            c.status = Status::NotPermitted;
        } else if f.is_none_or(|f| f.applied.is_none()) && c.status != Status::Missed {
            c.status = if ctx.end.is_some() { Status::Missed } else { Status::Pending };
        }
    }
    c
}

/// What an inject does, in a few words.
fn detail(a: &InjectAction) -> String {
    match a {
        InjectAction::Indicators { count, types, tlp } => {
            let types: Vec<&str> = types.iter().map(|t| t.as_str()).collect();
            format!("{count} indicators ({}), TLP:{}", types.join(", "), tlp.as_str().to_ascii_uppercase())
        }
        InjectAction::Sighting { of, count } => format!("sighting of {of} ×{count}"),
        InjectAction::Retraction { of, reason } => format!("retraction of {of}: {reason}"),
        InjectAction::CommCheck { text, within_ms } => format!("answer within {}: {text}", fmt_ms(*within_ms)),
        InjectAction::Situation { text, within_ms } => format!("acknowledge within {}: {text}", fmt_ms(*within_ms)),
        InjectAction::Isolate { node, duration_ms } => format!("isolate {node} for {}", fmt_ms(*duration_ms)),
        InjectAction::CutLink { a, b, duration_ms } => format!("cut the link {a}–{b} for {}", fmt_ms(*duration_ms)),
    }
}

/// Every cell of a participant that is not the inject's source: (inject, participant, cell).
fn non_source_cells(injects: &[InjectReport]) -> impl Iterator<Item = (&InjectReport, &str, &Cell)> {
    injects
        .iter()
        .flat_map(|i| i.cells.iter().filter(move |(p, _)| **p != i.source).map(move |(p, c)| (i, p.as_str(), c)))
}

/// The window a node's applied fault lasted, as offsets: to its lift, else for the planned
/// duration, cut at the end (or at `now` while the drill runs).
fn window(n: &FaultNode, duration_ms: u64, ctx: &Ctx) -> Option<(i64, i64)> {
    let from = n.applied_at_ms?;
    let to = n.lifted_at_ms.unwrap_or_else(|| {
        let planned = from.saturating_add(i64::try_from(duration_ms).unwrap_or(i64::MAX));
        planned.min(ctx.at(ctx.end.unwrap_or(ctx.now)))
    });
    Some((from, to.max(from)))
}

fn fault_reports(ctx: &Ctx, seen: &Seen, s: &Scenario, injects: &[InjectReport]) -> Vec<FaultReport> {
    let mut out = Vec::new();
    for inj in &s.injects {
        let Some((nodes, duration_ms)) = inj.action.fault() else { continue };
        let mut report = FaultReport {
            inject: inj.name.clone(),
            kind: inj.action.kind().into(),
            at_ms: inj.at_ms,
            duration_ms,
            nodes: Vec::new(),
            relayed: Vec::new(),
        };
        for node in &nodes {
            let f = seen.faults.get(&(inj.name.as_str(), node)).copied().unwrap_or_default();
            let state = match (f.refused, f.applied) {
                (Some(_), _) => FaultNodeState::NotPermitted,
                (None, Some(_)) => FaultNodeState::Applied,
                (None, None) if ctx.end.is_some() => FaultNodeState::Missing,
                (None, None) => FaultNodeState::Pending,
            };
            let mut n = FaultNode {
                node: node.to_string(),
                state,
                applied_at_ms: f.applied.filter(|_| f.refused.is_none()).map(|t| ctx.at(t)),
                lifted_at_ms: f.lifted.filter(|_| f.refused.is_none()).map(|t| ctx.at(t)),
                refused_at_ms: f.refused.map(|t| ctx.at(t)),
                catch_up_ms: None,
            };
            if let Some((a, b)) = window(&n, duration_ms, ctx) {
                // The last inject sent during the window to reach this node, measured from the lift.
                let latest = injects
                    .iter()
                    .filter(|i| i.source != n.node && i.sent_at_ms.is_some_and(|t| (a..=b).contains(&t)))
                    .filter_map(|i| i.cells.get(&n.node).and_then(|c| c.received_at_ms))
                    .max();
                n.catch_up_ms = latest.filter(|t| *t > b).map(|t| t.abs_diff(b));
            }
            report.nodes.push(n);
        }
        let windows: Vec<(i64, i64)> = report.nodes.iter().filter_map(|n| window(n, duration_ms, ctx)).collect();
        for (i, receiver, c) in non_source_cells(injects) {
            let (Some(at), Some(via), true) = (c.received_at_ms, &c.via, c.relayed) else { continue };
            if windows.iter().any(|(a, b)| (*a..=*b).contains(&at)) {
                report.relayed.push(RelayedDelivery {
                    inject: i.name.clone(),
                    receiver: receiver.into(),
                    via: via.clone(),
                    received_at_ms: at,
                    delivered_after_ms: c.delivered_after_ms,
                });
            }
        }
        out.push(report);
    }
    out
}

/// Judges one objective. Cells without a figure count as beyond the bound.
fn objective(
    ctx: &Ctx,
    o: &crate::model::drill::Objective,
    injects: &[InjectReport],
    windows: &[(i64, i64)],
) -> ObjectiveReport {
    let figures: Vec<Option<u64>> = match o.kind {
        ObjectiveKind::Delivery => non_source_cells(injects).map(|(_, _, c)| c.delivered_after_ms).collect(),
        ObjectiveKind::Ack => non_source_cells(injects)
            .filter(|(i, _, _)| i.ack_within_ms.is_some())
            .map(|(_, _, c)| c.acked_after_ms)
            .collect(),
        ObjectiveKind::Relay => non_source_cells(injects)
            .filter(|(_, _, c)| {
                c.delivered_after_ms.is_some()
                    && c.received_at_ms.is_some_and(|t| windows.iter().any(|(a, b)| (*a..=*b).contains(&t)))
            })
            .map(|(_, _, c)| c.delivered_after_ms)
            .collect(),
    };
    let beyond = figures.iter().filter(|f| f.is_none_or(|ms| ms > o.within_ms)).count() as u64;
    // A relay objective with nothing delivered during a fault was not exercised: it fails.
    let exercised = o.kind != ObjectiveKind::Relay || !figures.is_empty();
    let status = match ctx.end {
        None => ObjectiveStatus::Pending,
        Some(_) if beyond == 0 && exercised => ObjectiveStatus::Pass,
        Some(_) => ObjectiveStatus::Fail,
    };
    ObjectiveReport {
        name: o.name.clone(),
        kind: match o.kind {
            ObjectiveKind::Delivery => "delivery",
            ObjectiveKind::Ack => "ack",
            ObjectiveKind::Relay => "relay",
        }
        .into(),
        within_ms: o.within_ms,
        status,
        worst_ms: figures.iter().flatten().max().copied(),
        measured: figures.len() as u64,
        beyond,
    }
}

/// Nearest-rank percentiles of sorted values.
fn latency(sorted: &[u64]) -> Latency {
    let n = sorted.len();
    let rank = |p: usize| -> Option<u64> {
        let r = (p * n).div_ceil(100).max(1);
        sorted.get(r - 1).copied()
    };
    Latency { count: n as u64, p50_ms: rank(50), p90_ms: rank(90), p99_ms: rank(99), max_ms: sorted.last().copied() }
}

fn compare(r: &Report, earlier: &[Report]) -> Vec<Comparison> {
    let mut prior: Vec<&Report> =
        earlier.iter().filter(|e| e.scenario == r.scenario && e.drill != r.drill && e.start_ms < r.start_ms).collect();
    prior.sort_by(|a, b| b.start_ms.cmp(&a.start_ms).then_with(|| a.drill.cmp(&b.drill)));
    prior.dedup_by(|a, b| a.drill == b.drill);
    prior.truncate(COMPARISON_MAX);
    let passed = |r: &Report| r.objectives.iter().filter(|o| o.status == ObjectiveStatus::Pass).count() as u64;
    let ours = passed(r);
    prior
        .into_iter()
        .map(|e| {
            let theirs = passed(e);
            Comparison {
                drill: e.drill.clone(),
                start: e.start.clone(),
                p50_ms: e.latency.p50_ms,
                p99_ms: e.latency.p99_ms,
                objectives_passed: theirs,
                objectives_total: e.objectives.len() as u64,
                p50: match (r.latency.p50_ms, e.latency.p50_ms) {
                    (Some(a), Some(b)) => trend(b.cmp(&a)),
                    _ => Trend::Unknown,
                },
                objectives: trend(ours.cmp(&theirs)),
            }
        })
        .collect()
}

/// `Greater`: ours is better.
fn trend(o: std::cmp::Ordering) -> Trend {
    match o {
        std::cmp::Ordering::Greater => Trend::Better,
        std::cmp::Ordering::Less => Trend::Worse,
        std::cmp::Ordering::Equal => Trend::Same,
    }
}

fn notes(seen: &Seen, s: &Scenario, controller: &NodeName, state: DrillState) -> Vec<String> {
    let mut notes = Vec::new();
    if seen.end.is_none() && state != DrillState::Running {
        notes.push(
            "the controller's end record is not here: the drill is taken to have ended at its planned end".to_string(),
        );
    }
    for p in s.participants.iter().filter(|p| *p != controller && !seen.origins.contains(p)) {
        notes.push(format!("no record from {p} is here: it may have been stopped, or its records not replicated yet"));
    }
    if seen.ignored > 0 {
        notes.push(format!("{} records did not fit the scenario and were left out", seen.ignored));
    }
    notes
}

// ---------------------------------------------------------------------------------------------
// Text

/// A duration for people: `12 ms`, `7.2 s`, `42 s`, `2 m 05 s`, `3 m`, `1 h 02 m`.
fn fmt_ms(ms: u64) -> String {
    match ms {
        0..1_000 => format!("{ms} ms"),
        1_000..9_950 => {
            let tenths = (ms + 50) / 100;
            format!("{}.{} s", tenths / 10, tenths % 10)
        }
        9_950..59_500 => format!("{} s", (ms + 500) / 1000),
        59_500..3_599_500 => match (ms + 500) / 1000 {
            s if s % 60 == 0 => format!("{} m", s / 60),
            s => format!("{} m {:02} s", s / 60, s % 60),
        },
        _ => match ms.saturating_add(30_000) / 60_000 {
            m if m % 60 == 0 => format!("{} h", m / 60),
            m => format!("{} h {:02} m", m / 60, m % 60),
        },
    }
}

/// An offset from the start: `+7.2 s`, `-120 ms`.
fn fmt_offset(ms: i64) -> String {
    let sign = if ms < 0 { '-' } else { '+' };
    format!("{sign}{}", fmt_ms(ms.unsigned_abs()))
}

fn fmt_opt(ms: Option<u64>) -> String {
    ms.map_or_else(|| "–".into(), fmt_ms)
}

/// User text on one line.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// User text on one line, cut to about `chars` characters.
fn short(s: &str, chars: usize) -> String {
    let s = one_line(s);
    match s.char_indices().nth(chars) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s,
    }
}

/// The figure an objective is judged by, in words.
fn objective_figure(o: &ObjectiveReport) -> String {
    let what = match o.kind.as_str() {
        "ack" => "acknowledgements",
        "relay" => "deliveries during faults",
        _ => "deliveries",
    };
    if o.measured == 0 {
        return match o.kind.as_str() {
            "relay" => "nothing was delivered during a fault: the relay path was not exercised".into(),
            _ => format!("no {what} to measure"),
        };
    }
    match o.worst_ms {
        None => format!("none of {} {what} arrived", o.measured),
        Some(worst) if o.beyond == 0 => {
            format!("worst {}; all {} {what} within {}", fmt_ms(worst), o.measured, fmt_ms(o.within_ms))
        }
        Some(worst) => format!(
            "worst {}; {} of {} {what} beyond {} or missing",
            fmt_ms(worst),
            o.beyond,
            o.measured,
            fmt_ms(o.within_ms)
        ),
    }
}

/// What a cell shows in the tables: `12 ms ✓`, `LATE 7.2 s`, `MISSED`, `NOT-PERMITTED`.
fn cell_text(inj: &InjectReport, node: &str, c: &Cell) -> String {
    if node == inj.source && c.status == Status::Success {
        return "source ✓".into();
    }
    let figure = if inj.ack_within_ms.is_some() { c.acked_after_ms } else { c.delivered_after_ms };
    let via = match (&c.via, c.relayed) {
        (Some(v), true) => format!(" via {v}"),
        _ => String::new(),
    };
    match c.status {
        Status::Success => format!("{} ✓{via}", fmt_opt(figure)),
        Status::Late => format!("LATE {}{via}", fmt_opt(figure)),
        Status::Missed => match c.caught_up_after_ms {
            Some(ms) => format!("MISSED (caught up after {})", fmt_ms(ms)),
            None => "MISSED".into(),
        },
        Status::NotPermitted => "NOT-PERMITTED".into(),
        Status::Pending => "PENDING".into(),
    }
}

fn state_text(r: &Report) -> String {
    match r.state {
        DrillState::Running => format!("running (as of {})", fmt_offset(r.now_at_ms.unwrap_or(0))),
        DrillState::Completed => format!("completed, ended at {}", fmt_offset(r.end_at_ms.unwrap_or(0))),
        DrillState::Aborted => format!(
            "aborted at {}: {}",
            fmt_offset(r.end_at_ms.unwrap_or(0)),
            one_line(r.abort_reason.as_deref().unwrap_or("no reason given"))
        ),
    }
}

fn counts_text(c: &StatusCounts) -> String {
    let mut s =
        format!("{} SUCCESS, {} LATE, {} MISSED, {} NOT-PERMITTED", c.success, c.late, c.missed, c.not_permitted);
    if c.pending > 0 {
        let _ = write!(s, ", {} PENDING", c.pending);
    }
    s
}

fn fault_node_text(n: &FaultNode) -> [String; 4] {
    let opt = |t: Option<i64>| t.map_or_else(|| "–".to_string(), fmt_offset);
    let applied = match n.state {
        FaultNodeState::NotPermitted => format!("not permitted ({})", opt(n.refused_at_ms)),
        _ => opt(n.applied_at_ms),
    };
    let lifted = match (n.state, n.lifted_at_ms) {
        (FaultNodeState::Applied, None) => "not reported".to_string(),
        (_, t) => opt(t),
    };
    [n.state.as_str().to_string(), applied, lifted, fmt_opt(n.catch_up_ms)]
}

/// Markdown text safe in a paragraph or a table cell.
fn md(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in one_line(s).chars() {
        if matches!(ch, '\\' | '|' | '<' | '>' | '*' | '_' | '[' | ']' | '`' | '#') {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

/// The report as Markdown: summary, objectives, injects by participant, faults, latency,
/// comparison.
pub fn to_markdown(r: &Report) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "# Drill report: {} ({})\n", md(&r.scenario), md(&r.drill));
    if !r.description.trim().is_empty() {
        let _ = writeln!(o, "{}\n", md(&r.description));
    }
    let _ = writeln!(o, "- **State:** {}", md(&state_text(r)));
    let _ = writeln!(o, "- **Start:** {} (planned duration {})", md(&r.start), fmt_ms(r.duration_ms));
    let _ =
        writeln!(o, "- **Controller:** {} · **participants:** {}", md(&r.controller), md(&r.participants.join(", ")));
    let _ = writeln!(o, "- **Delivery bound:** {}", fmt_ms(r.delivery_within_ms));
    let _ = writeln!(o, "- **Cells:** {}", counts_text(&r.counts));
    let l = &r.latency;
    let _ = writeln!(
        o,
        "- **Latency:** p50 {}, p99 {} over {} deliveries\n",
        fmt_opt(l.p50_ms),
        fmt_opt(l.p99_ms),
        l.count
    );

    let _ = writeln!(o, "## Objectives\n");
    if r.objectives.is_empty() {
        let _ = writeln!(o, "The scenario states no objectives.\n");
    } else {
        let _ = writeln!(o, "| Objective | Kind | Bound | Result | Figure |\n|---|---|---|---|---|");
        for ob in &r.objectives {
            let _ = writeln!(
                o,
                "| {} | {} | {} | **{}** | {} |",
                md(&ob.name),
                ob.kind,
                fmt_ms(ob.within_ms),
                ob.status.as_str(),
                md(&objective_figure(ob))
            );
        }
        o.push('\n');
    }

    let _ = writeln!(o, "## Injects\n");
    let _ = write!(o, "| Inject | Kind | Source | Planned | Sent |");
    for p in &r.participants {
        let _ = write!(o, " {} |", md(p));
    }
    let _ = write!(o, "\n|---|---|---|---|---|");
    o.push_str(&"---|".repeat(r.participants.len()));
    o.push('\n');
    for inj in &r.injects {
        let sent = inj.sent_at_ms.map_or_else(|| "not sent".into(), fmt_offset);
        let _ = write!(
            o,
            "| {} | {} | {} | {} | {} |",
            md(&inj.name),
            inj.kind,
            md(&inj.source),
            fmt_offset(inj.at_ms as i64),
            sent
        );
        for p in &r.participants {
            let text = inj.cells.get(p).map_or_else(|| "–".into(), |c| cell_text(inj, p, c));
            let _ = write!(o, " {} |", md(&text));
        }
        o.push('\n');
    }
    o.push('\n');
    for inj in &r.injects {
        let _ = writeln!(o, "- **{}**: {}", md(&inj.name), md(&inj.detail));
    }
    o.push('\n');

    if !r.faults.is_empty() {
        let _ = writeln!(o, "## Faults\n");
        for f in &r.faults {
            let _ = writeln!(
                o,
                "### {} ({}, planned at {} for {})\n",
                md(&f.inject),
                f.kind,
                fmt_offset(f.at_ms as i64),
                fmt_ms(f.duration_ms)
            );
            let _ = writeln!(o, "| Node | State | Applied | Lifted | Catch-up after the lift |\n|---|---|---|---|---|");
            for n in &f.nodes {
                let [state, applied, lifted, catch] = fault_node_text(n);
                let _ = writeln!(o, "| {} | {state} | {} | {} | {catch} |", md(&n.node), md(&applied), md(&lifted));
            }
            o.push('\n');
            if f.relayed.is_empty() {
                let _ = writeln!(o, "No relayed delivery was received during this fault.\n");
            } else {
                let _ = writeln!(
                    o,
                    "Relayed during the fault:\n\n| Inject | Receiver | Via | Received | After |\n|---|---|---|---|---|"
                );
                for d in &f.relayed {
                    let _ = writeln!(
                        o,
                        "| {} | {} | {} | {} | {} |",
                        md(&d.inject),
                        md(&d.receiver),
                        md(&d.via),
                        fmt_offset(d.received_at_ms),
                        fmt_opt(d.delivered_after_ms)
                    );
                }
                o.push('\n');
            }
        }
    }

    let _ = writeln!(o, "## Delivery latency\n");
    let _ = writeln!(
        o,
        "| Deliveries | p50 | p90 | p99 | max |\n|---|---|---|---|---|\n| {} | {} | {} | {} | {} |\n",
        l.count,
        fmt_opt(l.p50_ms),
        fmt_opt(l.p90_ms),
        fmt_opt(l.p99_ms),
        fmt_opt(l.max_ms)
    );

    if !r.comparison.is_empty() {
        let _ = writeln!(o, "## Earlier runs of {}\n", md(&r.scenario));
        o.push_str("| Drill | Start | p50 | p99 | Objectives passed | This run's p50 | This run's objectives |\n");
        o.push_str("|---|---|---|---|---|---|---|\n");
        for c in &r.comparison {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {}/{} | {} | {} |",
                md(&c.drill),
                md(&c.start),
                fmt_opt(c.p50_ms),
                fmt_opt(c.p99_ms),
                c.objectives_passed,
                c.objectives_total,
                c.p50.as_str(),
                c.objectives.as_str()
            );
        }
        o.push('\n');
    }

    if !r.notes.is_empty() {
        let _ = writeln!(o, "## Notes\n");
        for n in &r.notes {
            let _ = writeln!(o, "- {}", md(n));
        }
        o.push('\n');
    }
    o
}

// ---------------------------------------------------------------------------------------------
// HTML

/// Escapes text for HTML content and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(ch),
        }
    }
    out
}

const CSS: &str = r#"
:root { --ok: #2e7d32; --late: #e65100; --missed: #c62828; --np: #616161; --pending: #1565c0;
        --ink: #1f2933; --muted: #5f6b7a; --line: #d9dee5; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: var(--ink); background: #f4f6f8; }
main { max-width: 1360px; margin: 0 auto; padding: 24px 28px 40px; background: #fff; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 28px 0 10px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
h3 { font-size: 15px; margin: 18px 0 8px; }
p.desc { color: var(--muted); margin: 0 0 14px; max-width: 70em; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 3px 16px; margin: 0; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; }
table { border-collapse: collapse; margin: 6px 0 10px; }
th, td { border: 1px solid var(--line); padding: 4px 9px; text-align: left; vertical-align: top; }
th { background: #eef1f5; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.badge { display: inline-block; padding: 0 7px; border-radius: 9px; font-weight: 700; font-size: 12px; color: #fff; }
.b-pass, .st-success { --c: var(--ok); }
.b-fail, .st-missed { --c: var(--missed); }
.b-pending, .st-pending { --c: var(--pending); }
.st-late { --c: var(--late); } .st-not-permitted { --c: var(--np); }
.badge { background: var(--c); }
td[class^="st-"] { color: var(--c); font-weight: 600; white-space: nowrap; font-variant-numeric: tabular-nums; }
td.st-success { font-weight: 500; }
td.src { color: var(--muted); white-space: nowrap; }
.state-running, .state-completed, .state-aborted { font-weight: 700; }
.state-running { color: var(--pending); }
.state-completed { color: var(--ok); }
.state-aborted { color: var(--missed); }
.chart { overflow-x: auto; border: 1px solid var(--line); border-radius: 6px; padding: 6px; }
.chart svg { display: block; width: 100%; height: auto; min-width: 900px; }
.muted { color: var(--muted); }
ul.details { margin: 4px 0 0; padding-left: 20px; color: var(--muted); }
footer { margin-top: 30px; color: var(--muted); font-size: 12px; }
@media print { body { background: #fff; } main { padding: 0; } .chart { border: 0; } }
"#;

fn status_class(s: Status) -> &'static str {
    match s {
        Status::Success => "st-success",
        Status::Late => "st-late",
        Status::Missed => "st-missed",
        Status::NotPermitted => "st-not-permitted",
        Status::Pending => "st-pending",
    }
}

fn objective_badge(s: ObjectiveStatus) -> String {
    let class = match s {
        ObjectiveStatus::Pass => "b-pass",
        ObjectiveStatus::Fail => "b-fail",
        ObjectiveStatus::Pending => "b-pending",
    };
    format!(r#"<span class="badge {class}">{}</span>"#, s.as_str())
}

/// Starts a table with a header row.
fn table_head(o: &mut String, heads: &[&str]) {
    o.push_str("<table><thead><tr>");
    for h in heads {
        let _ = write!(o, "<th>{}</th>", esc(h));
    }
    o.push_str("</tr></thead><tbody>\n");
}

/// One table row of (class, HTML) cells; the caller escapes the HTML.
fn table_row(o: &mut String, cells: &[(&str, String)]) {
    o.push_str("<tr>");
    for (class, html) in cells {
        match class {
            &"" => {
                let _ = write!(o, "<td>{html}</td>");
            }
            class => {
                let _ = write!(o, r#"<td class="{class}">{html}</td>"#);
            }
        }
    }
    o.push_str("</tr>\n");
}

/// A plain cell, a right-aligned one, each escaped.
fn td(text: &str) -> (&'static str, String) {
    ("", esc(text))
}

fn td_num(text: &str) -> (&'static str, String) {
    ("num", esc(text))
}

/// The report as one self-contained HTML5 page (inline CSS and SVG, no scripts, no external
/// resources); every text from the scenario or the records is escaped.
pub fn to_html(r: &Report) -> String {
    let mut o = String::new();
    let title = esc(&format!("Drill report: {} ({})", r.scenario, r.drill));
    o.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    o.push_str(r#"<meta name="viewport" content="width=device-width, initial-scale=1">"#);
    let _ = writeln!(o, "\n<title>{title}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n<h1>{title}</h1>");
    if !r.description.trim().is_empty() {
        let _ = writeln!(o, r#"<p class="desc">{}</p>"#, esc(&r.description));
    }
    html_facts(&mut o, r);

    o.push_str("<h2>Timeline</h2>\n<div class=\"chart\">\n");
    o.push_str(&svg_timeline(r));
    o.push_str("</div>\n");

    o.push_str("<h2>Objectives</h2>\n");
    if r.objectives.is_empty() {
        o.push_str("<p class=\"muted\">The scenario states no objectives.</p>\n");
    } else {
        table_head(&mut o, &["Objective", "Kind", "Bound", "Result", "Figure"]);
        for ob in &r.objectives {
            let cells = [
                td(&ob.name),
                td(&ob.kind),
                td_num(&fmt_ms(ob.within_ms)),
                ("", objective_badge(ob.status)),
                td(&objective_figure(ob)),
            ];
            table_row(&mut o, &cells);
        }
        o.push_str("</tbody></table>\n");
    }

    o.push_str("<h2>Injects</h2>\n");
    let mut heads = vec!["Inject", "Kind", "Source", "Planned", "Sent"];
    heads.extend(r.participants.iter().map(String::as_str));
    table_head(&mut o, &heads);
    for inj in &r.injects {
        let mut cells = vec![
            ("", format!("<b>{}</b>", esc(&inj.name))),
            td(&inj.kind),
            td(&inj.source),
            td_num(&fmt_offset(signed(inj.at_ms))),
            td_num(&inj.sent_at_ms.map_or_else(|| "not sent".into(), fmt_offset)),
        ];
        for p in &r.participants {
            cells.push(match inj.cells.get(p) {
                Some(c) if *p == inj.source && c.status == Status::Success => ("src", esc(&cell_text(inj, p, c))),
                Some(c) => (status_class(c.status), esc(&cell_text(inj, p, c))),
                None => td("–"),
            });
        }
        table_row(&mut o, &cells);
    }
    o.push_str("</tbody></table>\n<ul class=\"details\">\n");
    for inj in &r.injects {
        let _ = writeln!(o, "<li><b>{}</b>: {}</li>", esc(&inj.name), esc(&inj.detail));
    }
    o.push_str("</ul>\n");

    if !r.faults.is_empty() {
        o.push_str("<h2>Faults</h2>\n");
        for f in &r.faults {
            let what =
                format!("({}, planned at {} for {})", f.kind, fmt_offset(signed(f.at_ms)), fmt_ms(f.duration_ms));
            let _ = writeln!(o, r#"<h3>{} <span class="muted">{}</span></h3>"#, esc(&f.inject), esc(&what));
            table_head(&mut o, &["Node", "State", "Applied", "Lifted", "Catch-up after the lift"]);
            for n in &f.nodes {
                let [state, applied, lifted, catch] = fault_node_text(n);
                table_row(&mut o, &[td(&n.node), td(&state), td_num(&applied), td_num(&lifted), td_num(&catch)]);
            }
            o.push_str("</tbody></table>\n");
            if f.relayed.is_empty() {
                o.push_str("<p class=\"muted\">No relayed delivery was received during this fault.</p>\n");
                continue;
            }
            table_head(&mut o, &["Relayed inject", "Receiver", "Via", "Received", "After"]);
            for d in &f.relayed {
                let cells = [
                    td(&d.inject),
                    td(&d.receiver),
                    td(&d.via),
                    td_num(&fmt_offset(d.received_at_ms)),
                    td_num(&fmt_opt(d.delivered_after_ms)),
                ];
                table_row(&mut o, &cells);
            }
            o.push_str("</tbody></table>\n");
        }
    }

    let l = &r.latency;
    o.push_str("<h2>Delivery latency</h2>\n");
    table_head(&mut o, &["Deliveries", "p50", "p90", "p99", "max"]);
    let figures = [l.p50_ms, l.p90_ms, l.p99_ms, l.max_ms].map(|ms| td_num(&fmt_opt(ms)));
    let mut cells = vec![td_num(&l.count.to_string())];
    cells.extend(figures);
    table_row(&mut o, &cells);
    o.push_str("</tbody></table>\n");

    if !r.comparison.is_empty() {
        let _ = writeln!(o, "<h2>Earlier runs of {}</h2>", esc(&r.scenario));
        let heads = ["Drill", "Start", "p50", "p99", "Objectives passed", "This run's p50", "This run's objectives"];
        table_head(&mut o, &heads);
        for c in &r.comparison {
            let cells = [
                td(&c.drill),
                td(&c.start),
                td_num(&fmt_opt(c.p50_ms)),
                td_num(&fmt_opt(c.p99_ms)),
                td_num(&format!("{}/{}", c.objectives_passed, c.objectives_total)),
                td(c.p50.as_str()),
                td(c.objectives.as_str()),
            ];
            table_row(&mut o, &cells);
        }
        o.push_str("</tbody></table>\n");
    }

    if !r.notes.is_empty() {
        o.push_str("<h2>Notes</h2>\n<ul>\n");
        for n in &r.notes {
            let _ = writeln!(o, "<li>{}</li>", esc(n));
        }
        o.push_str("</ul>\n");
    }
    let footer = format!(
        "ctix drill report, format {} · drill {} · times are offsets from the start, on each node's clock",
        r.format, r.drill
    );
    let _ = writeln!(o, "<footer>{}</footer>\n</main>\n</body>\n</html>", esc(&footer));
    o
}

/// The summary list at the top of the page.
fn html_facts(o: &mut String, r: &Report) {
    let state_class = match r.state {
        DrillState::Running => "state-running",
        DrillState::Completed => "state-completed",
        DrillState::Aborted => "state-aborted",
    };
    let l = &r.latency;
    let passed = r.objectives.iter().filter(|o| o.status == ObjectiveStatus::Pass).count();
    let objectives = match r.state {
        DrillState::Running => format!("{} to judge at the end", r.objectives.len()),
        _ => format!("{passed} of {} passed", r.objectives.len()),
    };
    let latency = format!(
        "p50 {} · p99 {} · max {} over {} deliveries (bound {})",
        fmt_opt(l.p50_ms),
        fmt_opt(l.p99_ms),
        fmt_opt(l.max_ms),
        l.count,
        fmt_ms(r.delivery_within_ms)
    );
    let facts: [(&str, String); 7] = [
        ("State", format!(r#"<span class="{state_class}">{}</span>"#, esc(&state_text(r)))),
        ("Start", esc(&format!("{} · planned duration {}", r.start, fmt_ms(r.duration_ms)))),
        ("Controller", esc(&r.controller)),
        ("Participants", esc(&r.participants.join(", "))),
        ("Objectives", esc(&objectives)),
        ("Cells", esc(&counts_text(&r.counts))),
        ("Latency", esc(&latency)),
    ];
    o.push_str("<dl class=\"facts\">\n");
    for (k, v) in facts {
        let _ = writeln!(o, "<dt>{k}</dt><dd>{v}</dd>");
    }
    o.push_str("</dl>\n");
}

// ---------------------------------------------------------------------------------------------
// The SVG timeline

/// Chart geometry, in SVG user units.
const SVG_W: f64 = 1300.0;
const SVG_LABEL_W: f64 = 120.0;
const SVG_RIGHT: f64 = 36.0;
const SVG_LANE_H: f64 = 46.0;
const SVG_ROW_H: f64 = 16.0;
/// Most rows of inject labels above the lanes; more injects share rows.
const SVG_LABEL_ROWS_MAX: usize = 8;
/// Average glyph width of the 11-unit label font, to keep labels from overlapping.
const SVG_CHAR_W: f64 = 6.4;

/// Chart colours besides the status colours.
const INK: &str = "#1f2933";
const MUTED: &str = "#5f6b7a";
const GRID: &str = "#e3e7ec";
const AXIS: &str = "#8a96a3";
const GUIDE: &str = "#90a4ae";
const MARKER: &str = "#263238";
const UNSENT: &str = "#b0bec5";
const SITUATION: &str = "#78909c";
const FAULT_FILL: &str = "#ffcdd2";
const FAULT_LINE: &str = "#e57373";
const FAULT_TEXT: &str = "#b71c1c";
const REFUSED_LINE: &str = "#9e9e9e";
const REFUSED_TEXT: &str = "#424242";
const END_LINE: &str = "#37474f";
const WHITE: &str = "#ffffff";
const FONTS: &str = "system-ui, -apple-system, 'Segoe UI', Roboto, Arial, sans-serif";

fn status_color(s: Status) -> &'static str {
    match s {
        Status::Success => "#2e7d32",
        Status::Late => "#e65100",
        Status::Missed => "#c62828",
        Status::NotPermitted => "#616161",
        Status::Pending => "#1565c0",
    }
}

/// A tick step giving at most about ten ticks over `span` ms.
fn tick_step(span: i64) -> i64 {
    const STEPS: [i64; 19] = [
        50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 15_000, 30_000, 60_000, 120_000, 300_000, 600_000, 900_000,
        1_800_000, 3_600_000, 7_200_000, 10_800_000,
    ];
    STEPS.iter().copied().find(|s| span / s <= 10).unwrap_or_else(|| (span / 10).max(1).saturating_add(1))
}

/// Offsets to x coordinates; offsets outside `0..=span` are drawn at the edge.
struct Axis {
    span: i64,
    x0: f64,
    width: f64,
}

impl Axis {
    fn x(&self, at: i64) -> f64 {
        let t = at.clamp(0, self.span) as f64;
        self.x0 + self.width * t / self.span as f64
    }
}

/// An SVG document being written. `attrs` arguments are further attributes written as given
/// (constants and numbers only); text content and titles are escaped here.
struct Svg(String);

impl Svg {
    fn raw(&mut self, s: &str) {
        self.0.push_str(s);
    }

    fn line(&mut self, (x1, y1): (f64, f64), (x2, y2): (f64, f64), attrs: &str) {
        let _ = writeln!(self.0, r#"<line x1="{x1:.1}" y1="{y1:.1}" x2="{x2:.1}" y2="{y2:.1}" {attrs}/>"#);
    }

    fn rect(&mut self, (x, y): (f64, f64), (w, h): (f64, f64), attrs: &str) {
        let _ = writeln!(self.0, r#"<rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" {attrs}/>"#);
    }

    fn text(&mut self, (x, y): (f64, f64), attrs: &str, text: &str) {
        let _ = writeln!(self.0, r#"<text x="{x:.1}" y="{y:.1}" {attrs}>{}</text>"#, esc(text));
    }

    fn circle(&mut self, (cx, cy): (f64, f64), r: f64, attrs: &str, title: &str) {
        let _ = write!(self.0, r#"<circle cx="{cx:.1}" cy="{cy:.1}" r="{r:.1}" {attrs}"#);
        self.close("circle", title);
    }

    fn path(&mut self, d: &str, attrs: &str, title: &str) {
        let _ = write!(self.0, r#"<path d="{d}" {attrs}"#);
        self.close("path", title);
    }

    /// Ends an element begun with its attributes, with a tooltip if `title` is not empty.
    fn close(&mut self, tag: &str, title: &str) {
        if title.is_empty() {
            self.0.push_str("/>\n");
        } else {
            let _ = writeln!(self.0, "><title>{}</title></{tag}>", esc(title));
        }
    }
}

/// Path data of a diamond, a cross and a downward triangle centred on (x, y).
fn diamond(x: f64, y: f64, r: f64) -> String {
    format!("M{x:.1} {:.1} L{:.1} {y:.1} L{x:.1} {:.1} L{:.1} {y:.1} Z", y - r, x + r, y + r, x - r)
}

fn cross(x: f64, y: f64, r: f64) -> String {
    format!(
        "M{:.1} {:.1} L{:.1} {:.1} M{:.1} {:.1} L{:.1} {:.1}",
        x - r,
        y - r,
        x + r,
        y + r,
        x - r,
        y + r,
        x + r,
        y - r
    )
}

fn triangle_down(x: f64, y: f64, r: f64) -> String {
    format!("M{:.1} {:.1} L{:.1} {:.1} L{x:.1} {:.1} Z", x - r, y - r, x + r, y - r, y + r * 0.7)
}

/// An offset as a signed i64 from a planned u64 offset.
fn signed(ms: u64) -> i64 {
    i64::try_from(ms).unwrap_or(i64::MAX)
}

/// The timeline: one lane per participant, inject markers on their source lanes, receipts and
/// acknowledgements on the receivers' lanes, fault windows shaded.
fn svg_timeline(r: &Report) -> String {
    let participants = &r.participants;
    let lane_of = |n: &str| participants.iter().position(|p| p == n);
    // The span: the end (or the planned end while running), extended a little for late events.
    let base = r.end_at_ms.unwrap_or(0).max(signed(r.duration_ms)).max(1_000);
    let last_event = r
        .injects
        .iter()
        .flat_map(|i| i.cells.values().flat_map(|c| [c.received_at_ms, c.acked_at_ms]).chain([i.sent_at_ms]).flatten())
        .max()
        .unwrap_or(0);
    let span = base.max(last_event.min(base.saturating_add(base / 4)));
    let axis = Axis { span, x0: SVG_LABEL_W, width: SVG_W - SVG_LABEL_W - SVG_RIGHT };
    let inject_at = |i: &InjectReport| i.sent_at_ms.unwrap_or(signed(i.at_ms));
    let labels = place_labels(r, &axis, inject_at);
    let rows = labels.iter().map(|l| l.0 + 1).max().unwrap_or(1) as f64;
    let lanes_top = 12.0 + rows * SVG_ROW_H + 8.0;
    let lane_y = |i: usize| lanes_top + i as f64 * SVG_LANE_H;
    let lane_mid = |i: usize| lane_y(i) + SVG_LANE_H / 2.0;
    let axis_y = lane_y(participants.len());
    let legend_y = axis_y + 54.0;
    let height = legend_y + 46.0;

    let mut s = Svg(String::new());
    let _ = write!(s.0, r#"<svg id="timeline" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {SVG_W} {height:.0}""#);
    // What the chart must show, for checks that count what a browser rendered.
    let _ = write!(s.0, r#" data-lanes="{}" data-injects="{}""#, participants.len(), r.injects.len());
    let _ = writeln!(
        s.0,
        r#" font-family="{FONTS}" font-size="11" role="img" aria-label="Timeline of drill {}">"#,
        esc(&r.drill)
    );
    // The hatching of refused faults.
    s.raw(r#"<defs><pattern id="hatch" patternUnits="userSpaceOnUse" width="7" height="7" "#);
    let _ = writeln!(s.0, r#"patternTransform="rotate(45)"><rect width="7" height="7" fill="{WHITE}"/>"#);
    let _ = writeln!(
        s.0,
        r#"<line x1="0" y1="0" x2="0" y2="7" stroke="{REFUSED_LINE}" stroke-width="2.5"/></pattern></defs>"#
    );

    // Grid and axis.
    s.raw("<g class=\"axis\">\n");
    let step = tick_step(span);
    let mut t = 0;
    while t <= span {
        let x = axis.x(t);
        s.line((x, lanes_top), (x, axis_y + 5.0), &format!(r#"stroke="{GRID}""#));
        let label = if t == 0 { "0".to_string() } else { fmt_offset(t) };
        s.text((x, axis_y + 18.0), &format!(r#"text-anchor="middle" fill="{MUTED}""#), &label);
        let Some(next) = t.checked_add(step) else { break };
        t = next;
    }
    s.line((axis.x0, axis_y), (axis.x0 + axis.width, axis_y), &format!(r#"stroke="{AXIS}""#));
    s.text((axis.x0 - 26.0, axis_y + 18.0), &format!(r#"text-anchor="end" fill="{MUTED}""#), "time from start");
    s.raw("</g>\n");

    // Lanes: background, label, fault windows. Fault labels are drawn later, over the markers.
    let mut fault_labels = Svg(String::new());
    for (i, p) in participants.iter().enumerate() {
        let y = lane_y(i);
        let _ = writeln!(s.0, r#"<g class="lane" data-node="{}">"#, esc(p));
        let fill = if i % 2 == 0 { "#f7f9fb" } else { WHITE };
        s.rect((axis.x0, y), (axis.width, SVG_LANE_H), &format!(r#"fill="{fill}" stroke="{GRID}""#));
        let controller = *p == r.controller;
        let name_y = if controller { lane_mid(i) } else { lane_mid(i) + 4.5 };
        let name_attrs = format!(r#"text-anchor="end" font-size="13" font-weight="600" fill="{INK}""#);
        s.text((axis.x0 - 10.0, name_y), &name_attrs, p);
        if controller {
            let attrs = format!(r#"text-anchor="end" font-size="10" fill="{MUTED}""#);
            s.text((axis.x0 - 10.0, lane_mid(i) + 13.0), &attrs, "controller");
        }
        for f in &r.faults {
            let Some(n) = f.nodes.iter().find(|n| n.node == *p) else { continue };
            let Some((from, to)) = fault_span(r, f, n) else { continue };
            let (x1, x2) = (axis.x(from), axis.x(to).max(axis.x(from) + 2.0));
            let (fill, stroke, color, text) = match n.state {
                FaultNodeState::NotPermitted => {
                    ("url(#hatch)", REFUSED_LINE, REFUSED_TEXT, format!("{}: not permitted", f.inject))
                }
                _ => (FAULT_FILL, FAULT_LINE, FAULT_TEXT, format!("{}: {}", f.inject, fault_label(f))),
            };
            let title = format!("{text} ({} to {})", fmt_offset(from), fmt_offset(to));
            let _ = writeln!(s.0, r#"<g class="fault"><title>{}</title>"#, esc(&title));
            let attrs = format!(r#"fill="{fill}" fill-opacity="0.75" stroke="{stroke}" stroke-dasharray="4 3""#);
            s.rect((x1, y + 3.0), (x2 - x1, SVG_LANE_H - 6.0), &attrs);
            s.raw("</g>\n");
            let halo =
                format!(r#"font-size="10" fill="{color}" stroke="{WHITE}" stroke-width="3" paint-order="stroke""#);
            fault_labels.text((x1 + 4.0, y + 13.0), &halo, &text);
        }
        s.raw("</g>\n");
    }

    // Injects: a guide line, the label, a marker on the source lane.
    for (inj, (row, x, at_end)) in r.injects.iter().zip(labels) {
        let label_y = 12.0 + (row as f64 + 1.0) * SVG_ROW_H - 4.0;
        let color = if inj.sent_at_ms.is_some() { MARKER } else { UNSENT };
        let _ = writeln!(s.0, r#"<g class="inject" data-inject="{}">"#, esc(&inj.name));
        let sent = inj.sent_at_ms.map_or_else(|| "not sent".into(), |t| format!("sent at {}", fmt_offset(t)));
        let _ = writeln!(
            s.0,
            "<title>{}</title>",
            esc(&format!("{} ({}) from {}: {sent}", inj.name, inj.kind, inj.source))
        );
        s.line((x, label_y + 3.0), (x, axis_y), &format!(r#"stroke="{GUIDE}" stroke-dasharray="2 3""#));
        let (label_x, anchor) = if at_end { (x - 3.0, "end") } else { (x + 3.0, "start") };
        s.text((label_x, label_y), &format!(r#"text-anchor="{anchor}" fill="{color}" font-weight="600""#), &inj.name);
        if let Some(lane) = lane_of(&inj.source) {
            let y = lane_y(lane);
            s.path(&triangle_down(x, y + 8.0, 6.0), &format!(r#"fill="{color}""#), "");
            s.line((x, y + 10.0), (x, y + SVG_LANE_H - 4.0), &format!(r#"stroke="{color}" stroke-width="2.5""#));
        }
        s.raw("</g>\n");
    }
    let _ = writeln!(s.0, "<g class=\"fault-labels\">\n{}</g>", fault_labels.0);

    // The end (or now).
    let (end_at, end_label, end_color) = match (r.end_at_ms, r.now_at_ms) {
        (Some(e), _) if r.state == DrillState::Aborted => (e, "aborted", END_LINE),
        (Some(e), _) => (e, "end", END_LINE),
        (None, now) => (now.unwrap_or(0), "now", status_color(Status::Pending)),
    };
    let ex = axis.x(end_at);
    s.raw("<g class=\"end\">\n");
    s.line((ex, lanes_top), (ex, axis_y + 24.0), &format!(r#"stroke="{end_color}" stroke-width="1.5""#));
    let anchor = if ex > SVG_W - 60.0 { "end" } else { "middle" };
    let attrs = format!(r#"text-anchor="{anchor}" font-weight="700" fill="{end_color}""#);
    s.text((ex, axis_y + 36.0), &attrs, &format!("{end_label} {}", fmt_offset(end_at)));
    s.raw("</g>\n");

    // Relay connectors, then the marks on each lane.
    s.raw("<g class=\"relays\">\n");
    for inj in &r.injects {
        for (p, c) in inj.cells.iter().filter(|(p, c)| **p != inj.source && c.relayed) {
            let (Some(at), Some(via)) = (c.received_at_ms, c.via.as_deref()) else { continue };
            let (Some(to), Some(from)) = (lane_of(p), lane_of(via)) else { continue };
            let x = axis.x(at);
            let attrs = format!(r#"stroke="{}" stroke-width="1.2" stroke-dasharray="3 2""#, status_color(c.status));
            s.line((x, lane_mid(from)), (x, lane_mid(to)), &attrs);
        }
    }
    s.raw("</g>\n");
    for (i, p) in participants.iter().enumerate() {
        let _ = writeln!(s.0, r#"<g class="marks" data-node="{}">"#, esc(p));
        for inj in &r.injects {
            if let Some(c) = inj.cells.get(p) {
                cell_marks(&mut s, r, &axis, inj, p, c, lane_mid(i) + 4.0);
            }
        }
        s.raw("</g>\n");
    }

    legend(&mut s, legend_y);
    s.raw("</svg>\n");
    s.0
}

/// Rows and positions of the inject labels above the lanes, so that they do not overlap: per
/// inject (row, x, anchored at its end).
fn place_labels(r: &Report, axis: &Axis, at: impl Fn(&InjectReport) -> i64) -> Vec<(usize, f64, bool)> {
    let mut placed = vec![(0, 0.0, false); r.injects.len()];
    let mut row_ends: Vec<f64> = Vec::new();
    let mut order: Vec<usize> = (0..r.injects.len()).collect();
    order.sort_by_key(|k| (at(&r.injects[*k]), *k));
    for (n, k) in order.into_iter().enumerate() {
        let inj = &r.injects[k];
        let x = axis.x(at(inj));
        let w = inj.name.chars().count() as f64 * SVG_CHAR_W + 8.0;
        let at_end = x + w > SVG_W - 4.0;
        let (left, right) = if at_end { (x - w, x) } else { (x, x + w) };
        let row = match row_ends.iter().position(|end| *end < left) {
            Some(row) => row,
            None if row_ends.len() < SVG_LABEL_ROWS_MAX => {
                row_ends.push(f64::MIN);
                row_ends.len() - 1
            }
            None => n % SVG_LABEL_ROWS_MAX,
        };
        row_ends[row] = right;
        placed[k] = (row, x, at_end);
    }
    placed
}

/// What a fault does to a node, for its lane.
fn fault_label(f: &FaultReport) -> String {
    match f.kind.as_str() {
        "isolate" => "isolated".into(),
        _ => format!("link {} cut", f.nodes.iter().map(|m| m.node.as_str()).collect::<Vec<_>>().join("–")),
    }
}

/// The stretch of a node's lane a fault covers: its applied window, or where it was refused, the
/// planned duration from the refusal.
fn fault_span(r: &Report, f: &FaultReport, n: &FaultNode) -> Option<(i64, i64)> {
    let planned_to = |from: i64| from.saturating_add(signed(f.duration_ms));
    match n.state {
        FaultNodeState::Applied => {
            let from = n.applied_at_ms?;
            let until = r.end_at_ms.or(r.now_at_ms).unwrap_or(i64::MAX);
            Some((from, n.lifted_at_ms.unwrap_or_else(|| planned_to(from).min(until))))
        }
        FaultNodeState::NotPermitted => {
            let from = n.refused_at_ms.unwrap_or(signed(f.at_ms));
            Some((from, planned_to(from)))
        }
        FaultNodeState::Missing | FaultNodeState::Pending => None,
    }
}

/// The marks of one cell on its participant's lane at height `cy`: the receipt (a circle,
/// hollow when relayed), the operator's acknowledgement (a diamond), a cross at the deadline
/// when nothing came.
fn cell_marks(s: &mut Svg, r: &Report, axis: &Axis, inj: &InjectReport, p: &str, c: &Cell, cy: f64) {
    if p == inj.source {
        return;
    }
    if let Some(at) = c.received_at_ms {
        // A situation update's receipt is not its grade: the operator's acknowledgement is.
        let color = if inj.human { SITUATION } else { status_color(c.status) };
        let fill = if c.relayed { WHITE } else { color };
        let what = match (c.delivered_after_ms, c.caught_up_after_ms) {
            (Some(d), _) => format!(" after {}", fmt_ms(d)),
            (None, Some(d)) => format!(" only after the end, {} after it was sent", fmt_ms(d)),
            _ => String::new(),
        };
        let via = if c.relayed { format!(" via {}", c.via.as_deref().unwrap_or("?")) } else { String::new() };
        let title = format!("{} → {p}: received at {}{what}{via} ({})", inj.name, fmt_offset(at), c.status.as_str());
        let attrs = format!(r#"fill="{fill}" stroke="{color}" stroke-width="2""#);
        s.circle((axis.x(at), cy), 5.5, &attrs, &title);
    }
    if let Some(at) = c.acked_at_ms.filter(|_| inj.human) {
        let title = format!("{}: {p}'s operator acknowledged at {} ({})", inj.name, fmt_offset(at), c.status.as_str());
        let attrs = format!(r#"fill="{}" stroke="{WHITE}" stroke-width="1""#, status_color(c.status));
        s.path(&diamond(axis.x(at), cy, 8.0), &attrs, &title);
    }
    let nothing = if inj.human { c.acked_at_ms.is_none() } else { c.received_at_ms.is_none() };
    if c.status == Status::Missed && nothing {
        let within = inj.ack_within_ms.unwrap_or(r.delivery_within_ms);
        let due = inj.sent_at_ms.unwrap_or(signed(inj.at_ms)).saturating_add(signed(within));
        let due = due.min(r.end_at_ms.unwrap_or(i64::MAX));
        let attrs = format!(r#"stroke="{}" stroke-width="2.5" stroke-linecap="round""#, status_color(Status::Missed));
        s.path(&cross(axis.x(due), cy, 5.0), &attrs, &format!("{}: MISSED at {p}", inj.name));
    }
}

/// The chart's legend: the colours, then the shapes.
fn legend(s: &mut Svg, y: f64) {
    enum Mark {
        Dot(&'static str),
        Ring,
        Diamond,
        Cross,
        Triangle,
        Window,
        Hatched,
    }
    let rows: [&[(Mark, &str)]; 2] = [
        &[
            (Mark::Dot(status_color(Status::Success)), "in time"),
            (Mark::Dot(status_color(Status::Late)), "late"),
            (Mark::Dot(status_color(Status::Missed)), "missed / after the end"),
            (Mark::Dot(status_color(Status::NotPermitted)), "not permitted"),
            (Mark::Dot(status_color(Status::Pending)), "pending"),
            (Mark::Ring, "relayed (dashed line from the relay)"),
            (Mark::Dot(SITUATION), "situation received"),
        ],
        &[
            (Mark::Diamond, "operator ack"),
            (Mark::Cross, "nothing by the deadline"),
            (Mark::Triangle, "inject sent"),
            (Mark::Window, "fault window"),
            (Mark::Hatched, "fault not permitted"),
        ],
    ];
    let _ = writeln!(s.0, r#"<g class="legend" font-size="11" fill="{INK}">"#);
    let ok = status_color(Status::Success);
    for (row, items) in rows.iter().enumerate() {
        let y = y + row as f64 * 20.0;
        let mut x = SVG_LABEL_W - 100.0;
        for (mark, text) in items.iter() {
            let (cx, box_at) = (x + 6.0, (x, y - 6.0));
            match mark {
                Mark::Dot(color) => s.circle((cx, y), 5.5, &format!(r#"fill="{color}""#), ""),
                Mark::Ring => s.circle((cx, y), 5.5, &format!(r#"fill="{WHITE}" stroke="{ok}" stroke-width="2""#), ""),
                Mark::Diamond => s.path(&diamond(cx, y, 7.0), &format!(r#"fill="{ok}""#), ""),
                Mark::Cross => {
                    let color = status_color(Status::Missed);
                    s.path(&cross(cx, y, 5.0), &format!(r#"stroke="{color}" stroke-width="2.5""#), "")
                }
                Mark::Triangle => s.path(&triangle_down(cx, y - 1.0, 6.0), &format!(r#"fill="{MARKER}""#), ""),
                Mark::Window => s.rect(box_at, (12.0, 12.0), &format!(r#"fill="{FAULT_FILL}" stroke="{FAULT_LINE}""#)),
                Mark::Hatched => {
                    s.rect(box_at, (12.0, 12.0), &format!(r#"fill="url(#hatch)" stroke="{REFUSED_LINE}""#))
                }
            }
            s.text((x + 17.0, y + 4.0), "", text);
            x += 17.0 + text.chars().count() as f64 * 6.0 + 18.0;
        }
    }
    s.raw("</g>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::drill::{InjectPayload, Objective};
    use crate::model::{IndicatorType, Tlp};
    use proptest::prelude::*;

    /// The controller's clock when it writes the start record; offset 0 is `S`.
    const T0: u64 = 1_800_000_000_000;
    const S: u64 = T0 + 500;

    fn n(s: &str) -> NodeName {
        NodeName::new(s).unwrap()
    }

    fn scenario() -> Scenario {
        let inject = |name: &str, at_ms: u64, from: Option<&str>, action: InjectAction| Inject {
            name: name.into(),
            at_ms,
            from: from.map(n),
            action,
        };
        Scenario {
            name: "baltic-test".into(),
            description: "three CERTs, a cut link and a refused isolation".into(),
            participants: vec![n("ee"), n("lt"), n("lv")],
            objectives: vec![
                Objective { name: "delivery-5s".into(), kind: ObjectiveKind::Delivery, within_ms: 5_000 },
                Objective { name: "ack-10s".into(), kind: ObjectiveKind::Ack, within_ms: 10_000 },
                Objective { name: "relay-3s".into(), kind: ObjectiveKind::Relay, within_ms: 3_000 },
            ],
            injects: vec![
                inject(
                    "wave-1",
                    0,
                    Some("lv"),
                    InjectAction::Indicators { count: 3, types: vec![IndicatorType::Ipv4], tlp: Tlp::Green },
                ),
                inject("comms", 1_000, None, InjectAction::CommCheck { text: "report in".into(), within_ms: 4_000 }),
                inject("cut", 2_000, None, InjectAction::CutLink { a: n("ee"), b: n("lt"), duration_ms: 10_000 }),
                inject(
                    "wave-2",
                    4_000,
                    Some("ee"),
                    InjectAction::Indicators { count: 2, types: vec![IndicatorType::Domain], tlp: Tlp::Amber },
                ),
                inject("sitrep", 6_000, None, InjectAction::Situation { text: "ransomware".into(), within_ms: 20_000 }),
                inject("isolate-lv", 8_000, None, InjectAction::Isolate { node: n("lv"), duration_ms: 5_000 }),
            ],
        }
    }

    /// Records of one drill, each origin's sequence numbers counted up.
    struct Fx {
        records: Vec<Record>,
        seqs: BTreeMap<String, u64>,
        drill: EntryId,
    }

    impl Fx {
        fn new(s: Scenario) -> Fx {
            let drill = EntryId { origin: n("ee"), seq: 1 };
            let mut fx = Fx { records: Vec::new(), seqs: BTreeMap::new(), drill };
            fx.push("ee", T0, DrillRecord::Start { scenario: s, start_ms: S });
            fx
        }

        fn push(&mut self, origin: &str, created_ms: u64, record: DrillRecord) {
            let seq = self.seqs.entry(origin.into()).or_insert(0);
            *seq += 1;
            self.records.push(Record { id: EntryId { origin: n(origin), seq: *seq }, created_ms, record });
        }

        fn inject(&mut self, origin: &str, name: &str, items: u32, at: u64) {
            for item in 0..items {
                let rec = DrillRecord::Inject {
                    drill: self.drill.clone(),
                    inject: name.into(),
                    item,
                    payload: InjectPayload::Text(String::new()),
                };
                self.push(origin, S + at + u64::from(item), rec);
            }
        }

        fn receipt(&mut self, origin: &str, name: &str, at: u64, via: &str) {
            let rec = DrillRecord::Ack {
                drill: self.drill.clone(),
                inject: name.into(),
                received_ms: S + at,
                via: Some(n(via)),
                human: None,
            };
            self.push(origin, S + at, rec);
        }

        fn human(&mut self, origin: &str, name: &str, at: u64) {
            let rec = DrillRecord::Ack {
                drill: self.drill.clone(),
                inject: name.into(),
                received_ms: S + at,
                via: None,
                human: Some("seen, team briefed".into()),
            };
            self.push(origin, S + at, rec);
        }

        fn fault(&mut self, origin: &str, name: &str, state: FaultState, at: u64) {
            let rec = DrillRecord::Fault { drill: self.drill.clone(), inject: name.into(), state, at_ms: S + at };
            self.push(origin, S + at, rec);
        }

        fn end(&mut self, at: u64) {
            let rec = DrillRecord::End { drill: self.drill.clone(), aborted: false, reason: String::new() };
            self.push("ee", S + at, rec);
        }

        /// Drops the receipts `origin` wrote for `name`.
        fn drop_receipt(&mut self, origin: &str, name: &str) {
            self.records.retain(|r| {
                !(r.id.origin.as_str() == origin
                    && matches!(&r.record, DrillRecord::Ack { inject, human: None, .. } if inject == name))
            });
        }

        fn build(&self, now_at: u64) -> Report {
            build(&self.records, S + now_at, &[]).unwrap()
        }
    }

    /// Planned end: sitrep at 6 s + 20 s deadline + 10 s grace (the longest objective).
    const END: u64 = 36_000;

    /// The whole drill: every receipt in time except LT's answer to the communication check and
    /// its operator's acknowledgement of the situation update; LV refuses its isolation.
    fn base() -> Fx {
        let mut fx = Fx::new(scenario());
        fx.inject("lv", "wave-1", 3, 10);
        fx.receipt("ee", "wave-1", 42, "lv");
        fx.receipt("lt", "wave-1", 45, "lv");
        fx.inject("ee", "comms", 1, 1_000);
        fx.receipt("lv", "comms", 1_050, "ee");
        fx.inject("ee", "cut", 1, 2_000);
        fx.fault("ee", "cut", FaultState::Applied, 2_001);
        fx.receipt("lt", "cut", 2_020, "ee");
        fx.fault("lt", "cut", FaultState::Applied, 2_020);
        fx.receipt("lv", "cut", 2_030, "ee");
        fx.inject("ee", "wave-2", 2, 4_000);
        fx.receipt("lv", "wave-2", 4_025, "ee");
        fx.receipt("lt", "wave-2", 4_060, "lv");
        fx.inject("ee", "sitrep", 1, 6_000);
        fx.receipt("lv", "sitrep", 6_020, "ee");
        fx.receipt("lt", "sitrep", 6_040, "lv");
        fx.human("lv", "sitrep", 9_000);
        fx.inject("ee", "isolate-lv", 1, 8_000);
        fx.receipt("lv", "isolate-lv", 8_030, "ee");
        fx.fault("lv", "isolate-lv", FaultState::NotPermitted, 8_030);
        fx.receipt("lt", "isolate-lv", 8_070, "lv");
        fx.fault("ee", "cut", FaultState::Lifted, 12_001);
        fx.fault("lt", "cut", FaultState::Lifted, 12_020);
        fx.end(END + 5);
        fx
    }

    fn cell<'a>(r: &'a Report, inject: &str, node: &str) -> &'a Cell {
        &r.injects.iter().find(|i| i.name == inject).unwrap().cells[node]
    }

    fn objective<'a>(r: &'a Report, name: &str) -> &'a ObjectiveReport {
        r.objectives.iter().find(|o| o.name == name).unwrap()
    }

    #[test]
    fn direct_delivery_is_success_with_exact_ms() {
        let r = base().build(END + 100);
        assert_eq!(r.drill, "ee:1");
        assert_eq!(r.state, DrillState::Completed);
        assert_eq!(r.end_at_ms, Some(END as i64 + 5));
        assert_eq!(r.duration_ms, END);
        let wave = r.injects.iter().find(|i| i.name == "wave-1").unwrap();
        assert_eq!((wave.source.as_str(), wave.sent_at_ms, wave.items, wave.items_seen), ("lv", Some(10), 3, 3));
        let c = cell(&r, "wave-1", "ee");
        assert_eq!(c.status, Status::Success);
        assert_eq!(c.delivered_after_ms, Some(32));
        assert_eq!((c.via.as_deref(), c.relayed), (Some("lv"), false));
        let own = cell(&r, "wave-1", "lv");
        assert_eq!((own.status, own.delivered_after_ms), (Status::Success, Some(0)));
        // A communication check's receipt is its answer.
        let c = cell(&r, "comms", "lv");
        assert_eq!((c.status, c.acked_after_ms), (Status::Success, Some(50)));
        assert_eq!(r.start, "2027-01-15T08:00:00.500Z");
        assert!(r.notes.is_empty(), "{:?}", r.notes);
    }

    #[test]
    fn relayed_delivery_is_marked_and_listed_with_its_fault() {
        let r = base().build(END + 100);
        let c = cell(&r, "wave-2", "lt");
        assert_eq!((c.status, c.delivered_after_ms, c.relayed), (Status::Success, Some(60), true));
        assert_eq!(c.via.as_deref(), Some("lv"));
        let cut = &r.faults[0];
        assert_eq!(cut.inject, "cut");
        // Everything EE sent to LT during the cut went through LV.
        let relayed = |inject: &str, at: i64, after: u64| RelayedDelivery {
            inject: inject.into(),
            receiver: "lt".into(),
            via: "lv".into(),
            received_at_ms: at,
            delivered_after_ms: Some(after),
        };
        assert_eq!(
            cut.relayed,
            [relayed("wave-2", 4_060, 60), relayed("sitrep", 6_040, 40), relayed("isolate-lv", 8_070, 70)]
        );
        assert_eq!(cut.nodes.iter().map(|n| n.state).collect::<Vec<_>>(), [FaultNodeState::Applied; 2]);
        assert_eq!((cut.nodes[1].applied_at_ms, cut.nodes[1].lifted_at_ms), (Some(2_020), Some(12_020)));
        let relay = objective(&r, "relay-3s");
        assert_eq!((relay.status, relay.worst_ms, relay.beyond), (ObjectiveStatus::Pass, Some(70), 0));
        assert!(to_markdown(&r).contains("60 ms ✓ via lv"));
    }

    #[test]
    fn unanswered_checks_are_missed_and_fail_the_ack_objective() {
        let r = base().build(END + 100);
        assert_eq!(cell(&r, "comms", "lt").status, Status::Missed);
        assert_eq!(cell(&r, "comms", "lt").acked_after_ms, None);
        // LV's operator acknowledged the situation update after 3 s; LT's never did.
        assert_eq!(
            (cell(&r, "sitrep", "lv").status, cell(&r, "sitrep", "lv").acked_after_ms),
            (Status::Success, Some(3_000))
        );
        assert_eq!(cell(&r, "sitrep", "lt").status, Status::Missed);
        assert_eq!(cell(&r, "sitrep", "lt").delivered_after_ms, Some(40));
        // The source's own cell needs no acknowledgement.
        assert_eq!(cell(&r, "sitrep", "ee").status, Status::Success);
        let ack = objective(&r, "ack-10s");
        assert_eq!((ack.status, ack.measured, ack.beyond, ack.worst_ms), (ObjectiveStatus::Fail, 4, 2, Some(3_000)));
        // LT's missing answer also counts as an undelivered inject.
        let delivery = objective(&r, "delivery-5s");
        assert_eq!((delivery.status, delivery.beyond), (ObjectiveStatus::Fail, 1));
        assert!(!all_objectives_passed(&r));
        assert_eq!(r.counts.missed, 2);
    }

    #[test]
    fn a_slow_delivery_is_late() {
        let mut fx = base();
        fx.drop_receipt("lt", "wave-1");
        fx.receipt("lt", "wave-1", 10 + 7_200, "lv");
        let r = fx.build(END + 100);
        let c = cell(&r, "wave-1", "lt");
        assert_eq!((c.status, c.delivered_after_ms), (Status::Late, Some(7_200)));
        assert!(to_markdown(&r).contains("LATE 7.2 s"));
        let delivery = objective(&r, "delivery-5s");
        assert_eq!((delivery.worst_ms, delivery.beyond), (Some(7_200), 2));
    }

    #[test]
    fn a_delivery_after_the_end_is_missed_and_caught_up() {
        let mut fx = base();
        fx.drop_receipt("lt", "wave-2");
        fx.receipt("lt", "wave-2", END + 9_000, "ee");
        let r = fx.build(END + 20_000);
        let c = cell(&r, "wave-2", "lt");
        assert_eq!(c.status, Status::Missed);
        assert_eq!((c.delivered_after_ms, c.caught_up_after_ms), (None, Some(END + 9_000 - 4_000)));
        assert_eq!(c.received_at_ms, Some(END as i64 + 9_000));
        assert!(to_markdown(&r).contains("MISSED (caught up after 41 s)"));
        // LT's cut lasted until 12.02 s; wave-2, sent during it, arrived 33 s after the lift.
        let lt = &r.faults[0].nodes[1];
        assert_eq!(lt.catch_up_ms, Some(END + 9_000 - 12_020));
        // Not counted in the percentiles.
        assert_eq!(r.latency.count, base().build(END + 100).latency.count - 1);
    }

    #[test]
    fn a_refused_fault_is_not_permitted_and_a_silent_one_missed() {
        let r = base().build(END + 100);
        let c = cell(&r, "isolate-lv", "lv");
        assert_eq!((c.status, c.delivered_after_ms), (Status::NotPermitted, Some(30)));
        let iso = &r.faults[1];
        assert_eq!((iso.nodes[0].state, iso.nodes[0].refused_at_ms), (FaultNodeState::NotPermitted, Some(8_030)));
        assert!(to_markdown(&r).contains("NOT-PERMITTED"));

        let mut fx = base();
        fx.records.retain(|r| !(r.id.origin.as_str() == "lt" && matches!(r.record, DrillRecord::Fault { .. })));
        let r = fx.build(END + 100);
        assert_eq!(cell(&r, "cut", "lt").status, Status::Missed);
        assert_eq!(r.faults[0].nodes[1].state, FaultNodeState::Missing);
    }

    #[test]
    fn a_situation_without_ack_is_pending_before_its_deadline_and_missed_after() {
        let fx = base();
        let running = |until: u64| {
            let recs: Vec<Record> = fx.records.iter().filter(|r| r.created_ms <= S + until).cloned().collect();
            build(&recs, S + until, &[]).unwrap()
        };
        let r = running(10_000);
        assert!(is_running(&r));
        assert_eq!((r.end_at_ms, r.now_at_ms), (None, Some(10_000)));
        assert_eq!(cell(&r, "sitrep", "lt").status, Status::Pending);
        assert_eq!(cell(&r, "sitrep", "lv").status, Status::Success);
        assert!(r.objectives.iter().all(|o| o.status == ObjectiveStatus::Pending));
        // The communication check's deadline (5 s) has passed without LT's answer.
        assert_eq!(cell(&r, "comms", "lt").status, Status::Missed);
        assert_eq!(r.faults[0].nodes[1].lifted_at_ms, None);

        let r = running(26_001);
        assert!(is_running(&r));
        assert_eq!(cell(&r, "sitrep", "lt").status, Status::Missed);

        // Without its end record, a drill is over once its planned end has passed.
        let mut fx = base();
        fx.records.retain(|r| !matches!(r.record, DrillRecord::End { .. }));
        let r = fx.build(END);
        assert_eq!((r.state, r.end_recorded, r.end_at_ms), (DrillState::Completed, false, Some(END as i64)));
        assert_eq!(r.notes.len(), 1);
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let values: Vec<u64> = (1..=20).map(|v| v * 10).collect();
        let l = latency(&values);
        assert_eq!((l.count, l.p50_ms, l.p90_ms, l.p99_ms, l.max_ms), (20, Some(100), Some(180), Some(200), Some(200)));
        let l = latency(&[7]);
        assert_eq!((l.p50_ms, l.p99_ms), (Some(7), Some(7)));
        assert_eq!(latency(&[]), Latency::default());
        // The base drill: 11 deliveries to non-sources by the end.
        let r = base().build(END + 100);
        let l = r.latency;
        // 20 20 25 30 30 32 35 40 50 60 70: ranks 6, 10 and 11.
        assert_eq!((l.count, l.p50_ms, l.p90_ms, l.p99_ms, l.max_ms), (11, Some(32), Some(60), Some(70), Some(70)));
    }

    #[test]
    fn building_twice_gives_identical_json_that_round_trips() {
        let fx = base();
        let a = to_json(&fx.build(END + 100));
        let mut shuffled = fx.records.clone();
        shuffled.reverse();
        shuffled.extend(fx.records.iter().step_by(3).cloned());
        let b = to_json(&build(&shuffled, S + END + 100, &[]).unwrap());
        assert_eq!(a, b);
        assert!(a.ends_with("}\n"));
        let back: Report = serde_json::from_str(&a).unwrap();
        assert_eq!(to_json(&back), a);
        assert!(a.contains("\"status\": \"NOT-PERMITTED\""), "{a}");
        assert!(a.contains("\"status\": \"PASS\""));
    }

    #[test]
    fn html_has_a_lane_per_participant_an_inject_mark_per_inject_and_escapes() {
        let mut s = scenario();
        s.description = "<script>alert('x')</script> & \"quotes\"".into();
        let mut fx = Fx::new(s);
        fx.records.extend(base().records.into_iter().skip(1));
        let r = fx.build(END + 100);
        let html = to_html(&r);
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert_eq!(html.matches("class=\"lane\"").count(), 3);
        assert_eq!(html.matches("class=\"inject\"").count(), 6);
        assert_eq!(html.matches("id=\"timeline\"").count(), 1);
        assert!(html.contains(r#"data-lanes="3" data-injects="6""#));
        assert!(!html.contains("<script"));
        assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;quotes&quot;"));
        assert!(!html.contains("http://") || html.matches("http://").count() == 1, "only the SVG namespace");
        assert!(!to_markdown(&r).contains("<script>"));
    }

    #[test]
    fn comparison_says_better_or_worse() {
        let now = base().build(END + 100);
        let earlier = |drill: &str, start_ms: u64, p50: u64, passed: usize| {
            let mut e = now.clone();
            e.drill = drill.into();
            e.start_ms = start_ms;
            e.latency.p50_ms = Some(p50);
            for (i, o) in e.objectives.iter_mut().enumerate() {
                o.status = if i < passed { ObjectiveStatus::Pass } else { ObjectiveStatus::Fail };
            }
            e
        };
        let mut other = earlier("ee:3", S - 1, 1, 3);
        other.scenario = "another".into();
        let list = vec![
            earlier("ee:7", S - 2_000, 80, 0), // slower, fewer passed
            earlier("lv:9", S - 1_000, 10, 2), // faster, more passed
            earlier("ee:8", S - 3_000, 32, 1), // the same
            other,
            earlier("ee:1", S, 1, 3), // this drill itself
        ];
        let r = build(&base().records, S + END + 100, &list).unwrap();
        let got: Vec<(&str, Trend, Trend)> =
            r.comparison.iter().map(|c| (c.drill.as_str(), c.p50, c.objectives)).collect();
        assert_eq!(
            got,
            [
                ("lv:9", Trend::Worse, Trend::Worse),
                ("ee:7", Trend::Better, Trend::Better),
                ("ee:8", Trend::Same, Trend::Same)
            ]
        );
        let many: Vec<Report> = (0..8).map(|i| earlier(&format!("lt:{}", i + 1), S - 100 + i, 30, 1)).collect();
        let r = build(&base().records, S + END + 100, &many).unwrap();
        assert_eq!(r.comparison.len(), COMPARISON_MAX);
        assert_eq!(r.comparison[0].drill, "lt:8");
        assert!(summary(&r).contains("against the previous run lt:8"));
    }

    #[test]
    fn no_start_is_an_error_and_foreign_records_are_ignored() {
        let fx = base();
        let without: Vec<Record> = fx.records[1..].to_vec();
        assert!(matches!(build(&without, S, &[]), Err(ReportError::NoStart(_))));
        let mut recs = fx.records.clone();
        // LV writing an inject that is EE's, and an ack from a node outside the drill.
        recs.push(Record {
            id: EntryId { origin: n("lv"), seq: 99 },
            created_ms: S + 3,
            record: DrillRecord::Inject {
                drill: fx.drill.clone(),
                inject: "comms".into(),
                item: 0,
                payload: InjectPayload::Text("x".into()),
            },
        });
        recs.push(Record {
            id: EntryId { origin: n("fi"), seq: 1 },
            created_ms: S + 3,
            record: DrillRecord::Ack {
                drill: fx.drill.clone(),
                inject: "comms".into(),
                received_ms: S + 3,
                via: None,
                human: None,
            },
        });
        let r = build(&recs, S + END + 100, &[]).unwrap();
        assert_eq!(r.ignored_records, 2);
        assert_eq!(r.injects[1].sent_at_ms, Some(1_000));
        assert_eq!(r.injects[1].cells.get("fi"), None);
    }

    #[test]
    fn renderers_and_formats() {
        let r = base().build(END + 100);
        let lines = summary(&r);
        assert!((3..=6).contains(&lines.lines().count()), "{lines}");
        assert!(lines.contains("delivery-5s FAIL"));
        assert!(lines.contains("relay-3s PASS"));
        assert!(lines.contains("p50 32 ms"));
        assert!(lines.contains("2 MISSED"));
        let progress = progress_lines(&r);
        assert!(progress.iter().any(|l| l == "+4.1 s wave-2: lt received it after 60 ms via lv"), "{progress:?}");
        assert!(
            progress
                .iter()
                .any(|l| l == "+8.0 s isolate-lv: lv refused the fault (its config does not permit drill faults)")
        );
        assert_eq!(progress[0], "+10 ms wave-1 (indicators) sent by lv: 3 indicators (ipv4), TLP:GREEN");
        assert_eq!("markdown".parse::<Format>().unwrap(), Format::Md);
        assert_eq!("HTML".parse::<Format>().unwrap(), Format::Html);
        assert_eq!("json".parse::<Format>().unwrap(), Format::Json);
        let err = "pdf".parse::<Format>().unwrap_err().to_string();
        assert!(err.contains("use json, md"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        write(&r, Format::Json, Some(&path)).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), to_json(&r));
        assert!(matches!(
            write(&r, Format::Md, Some(&dir.path().join("no/such/dir.md"))),
            Err(ReportError::Write { .. })
        ));
    }

    #[test]
    fn formats_durations() {
        let cases = [
            (0, "0 ms"),
            (999, "999 ms"),
            (1_000, "1.0 s"),
            (7_249, "7.2 s"),
            (9_960, "10 s"),
            (59_400, "59 s"),
            (59_600, "1 m"),
            (3_600_000, "1 h"),
            (125_000, "2 m 05 s"),
            (3_720_000, "1 h 02 m"),
            (u64::MAX, "5124095576030 h 25 m"),
        ];
        for (ms, want) in cases {
            assert_eq!(fmt_ms(ms), want, "{ms}");
        }
        assert_eq!(fmt_offset(-120), "-120 ms");
        assert_eq!(fmt_offset(i64::MIN), "-2562047788015 h 13 m");
    }

    /// Writes sample reports to `$CTIX_REPORT_SAMPLE_DIR` (for `scripts/render-report.sh`).
    #[test]
    fn sample_reports() {
        let Some(dir) = std::env::var_os("CTIX_REPORT_SAMPLE_DIR") else { return };
        let dir = std::path::PathBuf::from(dir);
        let mut fx = base();
        fx.drop_receipt("lt", "wave-1");
        fx.receipt("lt", "wave-1", 10 + 7_200, "lv");
        let mut earlier = base().build(END + 100);
        earlier.drill = "ee:17".into();
        earlier.start_ms -= 86_400_000;
        earlier.start = format_time(earlier.start_ms);
        earlier.latency.p50_ms = Some(45);
        let r = build(&fx.records, S + END + 100, &[earlier]).unwrap();
        std::fs::write(dir.join("report.html"), to_html(&r)).unwrap();
        std::fs::write(dir.join("report.md"), to_markdown(&r)).unwrap();
        std::fs::write(dir.join("report.json"), to_json(&r)).unwrap();
        let running: Vec<Record> = fx.records.iter().filter(|r| r.created_ms <= S + 10_000).cloned().collect();
        std::fs::write(dir.join("running.html"), to_html(&build(&running, S + 10_000, &[]).unwrap())).unwrap();
    }

    /// A record built from arbitrary numbers: any kind, inject, node, time and item.
    fn arbitrary_record(drill: &EntryId, s: &Scenario, v: (u8, u8, u8, u64, u32, u8)) -> Record {
        let (kind, inj, node, time, item, flags) = v;
        let nodes = ["ee", "lt", "lv", "fi"];
        let origin = n(nodes[node as usize % nodes.len()]);
        let inject = match inj as usize % (s.injects.len() + 1) {
            i if i < s.injects.len() => s.injects[i].name.clone(),
            _ => "unknown".into(),
        };
        // Times near the drill, or anywhere.
        let t = if flags & 1 == 0 { S.wrapping_add(time % 60_000).wrapping_sub(5_000) } else { time };
        let drill = if flags & 2 == 0 { drill.clone() } else { EntryId { origin: n("lv"), seq: 7 } };
        let record = match kind % 5 {
            0 => DrillRecord::Inject { drill, inject, item: item % 4, payload: InjectPayload::Fault },
            1 => DrillRecord::Ack {
                drill,
                inject,
                received_ms: t,
                via: (flags & 4 == 0).then(|| n(nodes[item as usize % nodes.len()])),
                human: (flags & 8 == 0).then(String::new),
            },
            2 => DrillRecord::Fault {
                drill,
                inject,
                state: [FaultState::Applied, FaultState::NotPermitted, FaultState::Lifted][item as usize % 3],
                at_ms: t,
            },
            3 => DrillRecord::End { drill, aborted: flags & 16 == 0, reason: "<b>stop</b>".into() },
            _ => DrillRecord::Start { scenario: s.clone(), start_ms: t },
        };
        Record { id: EntryId { origin, seq: u64::from(item) + 2 }, created_ms: t, record }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

        /// Any mix of records (shuffled, duplicated, garbage times, other drills) builds without
        /// a panic, renders, and does not depend on the order of the records.
        #[test]
        fn build_never_panics(
            raw in proptest::collection::vec(any::<(u8, u8, u8, u64, u32, u8)>(), 0..60),
            start_ms in prop_oneof![Just(S), any::<u64>()],
            now in any::<u64>(),
            with_base in any::<bool>(),
            rotate in any::<usize>(),
        ) {
            let s = scenario();
            let drill = EntryId { origin: n("ee"), seq: 1 };
            let start = DrillRecord::Start { scenario: s.clone(), start_ms };
            let mut records = vec![Record { id: drill.clone(), created_ms: T0, record: start }];
            if with_base {
                records.extend(base().records.into_iter().skip(1));
            }
            records.extend(raw.into_iter().map(|v| arbitrary_record(&drill, &s, v)));
            let r = build(&records, now, &[]).unwrap();
            let (json, md, html, sum) = (to_json(&r), to_markdown(&r), to_html(&r), summary(&r));
            prop_assert!(md.starts_with("# Drill report") && sum.lines().count() >= 3);
            prop_assert!(progress_lines(&r).len() <= 3 * records.len());
            prop_assert_eq!(html.matches("class=\"inject\"").count(), 6);
            let len = records.len();
            records.rotate_left(rotate % len);
            records.reverse();
            prop_assert_eq!(to_json(&build(&records, now, &[]).unwrap()), json);
        }
    }
}
