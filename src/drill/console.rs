//! `ctix drill …`: the CLI side of drill mode. Every command but `simulate` is a client of a
//! running node's REST API (`/api/v1/drills`); `simulate` runs offline.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};

use crate::cli::DrillCommand;
use crate::client::{Access, Api};
use crate::drill::report::{self, Format, Report};
use crate::view::{DrillAbortRequest, DrillAckRequest, DrillDone, DrillList, DrillStartRequest, DrillStarted};

/// How often `drill run` polls the node for progress.
pub const PROGRESS_POLL_MS: u64 = 500;
/// How long `drill run` keeps following after the drill's planned end before it gives up.
pub const FOLLOW_GRACE_MS: u64 = 60_000;

pub fn run(cmd: DrillCommand) -> Result<()> {
    match cmd {
        DrillCommand::Run { scenario, speed, detach, api } => {
            drill_run(&api.connect(Access::Write)?, &scenario, speed, detach)
        }
        DrillCommand::Ack { drill, inject, note, api } => {
            let api = api.connect(Access::Write)?;
            let done: DrillDone = api.post_json(
                &format!("/api/v1/drills/{}/ack", drill_id(&drill)?),
                &DrillAckRequest { inject: inject.clone(), note },
            )?;
            println!("acknowledged {inject} of drill {drill} (record {})", done.id.unwrap_or_default());
            Ok(())
        }
        DrillCommand::List { json, api } => {
            let list: DrillList = api.connect(Access::Read)?.get_json("/api/v1/drills", &[])?;
            if json {
                for d in &list.drills {
                    println!("{}", serde_json::to_string(d)?);
                }
                return Ok(());
            }
            if list.drills.is_empty() {
                println!("no drills at this node: start one with `ctix drill run SCENARIO`");
                return Ok(());
            }
            println!(
                "{:<10} {:<24} {:<10} {:<10} {:<25} participant",
                "ID", "SCENARIO", "CONTROLLER", "STATE", "START"
            );
            for d in &list.drills {
                println!(
                    "{:<10} {:<24} {:<10} {:<10} {:<25} {}",
                    d.id,
                    d.name,
                    d.controller,
                    d.state,
                    d.start,
                    if d.participant { "yes" } else { "no" }
                );
            }
            Ok(())
        }
        DrillCommand::Abort { drill, reason, api } => {
            let api = api.connect(Access::Write)?;
            let done: DrillDone =
                api.post_json(&format!("/api/v1/drills/{}/abort", drill_id(&drill)?), &DrillAbortRequest { reason })?;
            println!("drill {drill} aborted (record {})", done.id.unwrap_or_default());
            Ok(())
        }
        DrillCommand::Report { drill, format, out, api } => {
            let format: Format = format.parse()?;
            let api = api.connect(Access::Read)?;
            let text = api.get_text(
                &format!("/api/v1/drills/{}/report", drill_id(&drill)?),
                &[("format", format_param(format).into())],
            )?;
            write_out(&text, out.as_deref())
        }
        DrillCommand::Purge { drill, api } => {
            let api = api.connect(Access::Write)?;
            let done: DrillDone = api.delete_json(&format!("/api/v1/drills/{}", drill_id(&drill)?))?;
            println!(
                "purged drill {drill} at this node: {} records kept only as signed stubs",
                done.purged.unwrap_or(0)
            );
            Ok(())
        }
        DrillCommand::Simulate { scenario, nodes, seed, latency_ms, loss, format, out } => {
            simulate(&scenario, nodes, seed, latency_ms.as_deref(), loss, &format, out.as_deref())
        }
    }
}

fn drill_id(s: &str) -> Result<crate::model::EntryId> {
    s.parse().map_err(|_| anyhow!("{s:?} is not a drill id: use the id `ctix drill list` shows, e.g. ee:42"))
}

fn format_param(f: Format) -> &'static str {
    match f {
        Format::Json => "json",
        Format::Md => "md",
        Format::Html => "html",
    }
}

fn write_out(text: &str, out: Option<&Path>) -> Result<()> {
    match out {
        Some(p) => {
            std::fs::write(p, text).with_context(|| format!("writing {}", p.display()))?;
            eprintln!("wrote {}", p.display());
        }
        None => print!("{text}"),
    }
    Ok(())
}

/// `ctix drill run`: starts the drill, then prints each delivery and acknowledgement as it
/// happens, and the summary at the end. Exits non-zero if an objective failed.
fn drill_run(api: &Api, path: &Path, speed: u32, detach: bool) -> Result<()> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading the scenario {}", path.display()))?;
    // Check locally first: line-numbered errors name the file.
    crate::drill::scenario::load(path)?;
    let started: DrillStarted =
        api.post_json("/api/v1/drills", &DrillStartRequest { scenario: text, speed: Some(speed) })?;
    println!("drill {} ({}) started at {}; planned end {}", started.id, started.name, started.start, started.end);
    if detach {
        println!("follow it with `ctix drill report {} --format md`", started.id);
        return Ok(());
    }
    let path = format!("/api/v1/drills/{}", started.id);
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let end = crate::model::time::parse_time(&started.end, crate::now_ms()).map_err(|e| anyhow!(e))?;
    let give_up = Instant::now() + Duration::from_millis(end.saturating_sub(crate::now_ms()) + FOLLOW_GRACE_MS);
    loop {
        let r: Report = api.get_json(&path, &[])?;
        for line in report::progress_lines(&r) {
            if seen.insert(line.clone()) {
                println!("  {line}");
            }
        }
        if !report::is_running(&r) {
            println!();
            println!("{}", report::summary(&r));
            println!("full report: ctix drill report {} --format html --out report.html", started.id);
            if report::all_objectives_passed(&r) {
                return Ok(());
            }
            bail!("drill {}: some objectives failed (see the report)", started.id);
        }
        if Instant::now() > give_up {
            bail!(
                "drill {} has not ended {} s after its planned end: is the controller still running? `ctix drill report {}` shows what arrived",
                started.id,
                FOLLOW_GRACE_MS / 1000,
                started.id
            );
        }
        std::thread::sleep(Duration::from_millis(PROGRESS_POLL_MS));
    }
}

fn simulate(
    path: &Path,
    nodes: Option<usize>,
    seed: u64,
    latency: Option<&str>,
    loss: f64,
    format: &str,
    out: Option<&Path>,
) -> Result<()> {
    let format: Format = format.parse()?;
    let scenario = crate::drill::scenario::load(path)?;
    let latency_ms = match latency {
        None => None,
        Some(s) => {
            let bad = || anyhow!("--latency-ms {s:?}: give a range of milliseconds such as 5-40");
            let (a, b) = s.split_once('-').ok_or_else(bad)?;
            let (a, b): (u64, u64) = (a.trim().parse().map_err(|_| bad())?, b.trim().parse().map_err(|_| bad())?);
            if a > b || b > 10_000 {
                return Err(bad());
            }
            Some((a, b))
        }
    };
    let opts = crate::drill::simulate::SimOptions { nodes, seed, latency_ms, loss };
    let started = Instant::now();
    let outcome = crate::drill::simulate::simulate(&scenario, &opts).map_err(|e| anyhow!(e))?;
    let end = outcome.records.iter().map(|r| r.created_ms).max().unwrap_or(0);
    let r = report::build(&outcome.records, end, &[])?;
    let text = match format {
        Format::Json => report::to_json(&r),
        Format::Md => report::to_markdown(&r),
        Format::Html => report::to_html(&r),
    };
    write_out(&text, out)?;
    eprintln!(
        "simulated {} nodes, seed {seed}, {} messages, in {:.1} s of wall time",
        outcome.nodes.len(),
        outcome.messages,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
