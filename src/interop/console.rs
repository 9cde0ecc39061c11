//! `ctix export` and `ctix import`: STIX 2.1 bundles and MISP events and feeds, through a
//! node's REST API (the CLI is a client like any other tool, and sees what its token may see).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{ImportReport, misp, stix};
use crate::client::{Api, Filter, QUERY_ALL_MAX, REJECTIONS_LISTED_MAX, clean, item_error};
use crate::model::Tlp;
use crate::store::QUERY_LIMIT_MAX;
use crate::view::{IndicatorView, SUBMIT_BATCH_MAX, SubmitRequest};

/// Largest file `ctix import` reads (a STIX bundle or MISP event is parsed whole).
pub const IMPORT_BYTES_MAX: u64 = 1024 * 1024 * 1024;

/// The formats of `ctix export` and `ctix import`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A STIX 2.1 bundle (JSON).
    Stix,
    /// MISP: export writes a feed directory; import reads an event file or a feed directory.
    Misp,
}

/// `ctix export`.
#[derive(Debug, Clone)]
pub struct ExportJob {
    pub format: Format,
    /// STIX: a file (default standard output). MISP: the feed directory (required).
    pub out: Option<PathBuf>,
    pub filter: Filter,
    /// Also export TLP:RED indicators (left out by default: a file or a feed travels further
    /// than the named recipients).
    pub include_red: bool,
}

/// `ctix import`.
#[derive(Debug, Clone)]
pub struct ImportJob {
    pub format: Format,
    /// A STIX bundle or MISP event file, or a MISP feed directory.
    pub path: PathBuf,
    /// Indicators per request, 1 to `SUBMIT_BATCH_MAX`.
    pub batch_size: usize,
    /// Parse and report, submit nothing.
    pub dry_run: bool,
}

/// `ctix export`: pages through the node's indicators, then writes them in `job.format`.
pub fn export(api: &Api, job: &ExportJob) -> Result<()> {
    if job.format == Format::Misp && job.out.is_none() {
        bail!("a MISP feed is a directory: give --out DIR");
    }
    let (views, red_left_out) = fetch(api, job)?;
    let written = match job.format {
        Format::Stix => {
            let bundle = stix::bundle(&views);
            let text = serde_json::to_string_pretty(&bundle).context("encoding the bundle")?;
            match &job.out {
                None => {
                    let mut w = io::stdout().lock();
                    match writeln!(w, "{text}").and_then(|()| w.flush()) {
                        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(()),
                        r => r.context("writing to standard output")?,
                    }
                    None
                }
                Some(path) => {
                    std::fs::write(path, format!("{text}\n")).with_context(|| format!("writing {}", path.display()))?;
                    Some(format!("{} indicators as a STIX 2.1 bundle to {}", views.len(), path.display()))
                }
            }
        }
        Format::Misp => {
            let dir = job.out.as_deref().expect("checked above");
            let feed = misp::feed(&views, crate::now_ms());
            let events =
                misp::write_feed(dir, &feed).with_context(|| format!("writing the feed to {}", dir.display()))?;
            Some(format!("{} indicators in {events} MISP events to the feed {}", views.len(), dir.display()))
        }
    };
    if let Some(w) = written {
        eprintln!("wrote {w}");
    }
    if red_left_out > 0 {
        eprintln!(
            "left out {red_left_out} TLP:RED indicators (for their named recipients only): --include-red adds them"
        );
    }
    Ok(())
}

/// Every indicator matching the filter (up to `QUERY_ALL_MAX`), TLP:RED ones left out unless
/// asked for; and how many were left out.
fn fetch(api: &Api, job: &ExportJob) -> Result<(Vec<IndicatorView>, usize)> {
    let bar = counter("indicators fetched", None);
    let (mut views, mut red, mut after) = (Vec::new(), 0usize, None::<u64>);
    loop {
        let mut params = job.filter.params();
        if let Some(a) = after {
            params.push(("after", a.to_string()));
        }
        params.push(("limit", QUERY_LIMIT_MAX.to_string()));
        let page = api.query(&params)?;
        for v in page.items {
            if v.tlp == Tlp::Red.as_str() && !job.include_red {
                red += 1;
            } else {
                views.push(v);
            }
        }
        bar.set_position(views.len() as u64);
        match page.next {
            Some(n) if after.is_some_and(|a| n <= a) => bail!("the node answered a cursor that does not advance ({n})"),
            Some(_) if views.len() >= QUERY_ALL_MAX => {
                bar.finish_and_clear();
                bail!("over {QUERY_ALL_MAX} indicators match: narrow the export (--since, --origin, --type …)")
            }
            Some(n) => after = Some(n),
            None => break,
        }
    }
    bar.finish_and_clear();
    Ok((views, red))
}

/// `ctix import`: parses the file, lists what it cannot represent, submits the rest in batches
/// with a progress bar, and prints a per-reason summary. Refusals by the node make it fail
/// (exit code 1) after the summary; objects skipped as unsupported do not.
pub fn import(api: Option<&Api>, job: &ImportJob) -> Result<()> {
    assert!((1..=SUBMIT_BATCH_MAX).contains(&job.batch_size), "clap bounds --batch-size");
    let report = read_import(job)?;
    let found = report.items.len() + report.skipped.len();
    let mut out = io::stdout().lock();
    writeln!(
        out,
        "{}: {found} objects, {} indicators to import, {} skipped",
        job.path.display(),
        report.items.len(),
        report.skipped.len()
    )?;
    write_skipped(&mut out, &report)?;
    out.flush()?;
    if job.dry_run {
        writeln!(out, "dry run: nothing was submitted")?;
        return Ok(());
    }
    let api = api.ok_or_else(|| anyhow!("importing needs a node: give --config PATH, or --api and --token"))?;
    let tally = submit_all(api, &report, job.batch_size)?;
    tally.write(&mut out)?;
    out.flush()?;
    if tally.refused > 0 {
        bail!("{} of {} indicators were refused by the node (listed above)", tally.refused, report.items.len());
    }
    Ok(())
}

/// The file parsed into indicators and skipped objects.
fn read_import(job: &ImportJob) -> Result<ImportReport> {
    let path = &job.path;
    let meta = std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    if meta.is_dir() {
        if job.format != Format::Misp {
            bail!("{} is a directory: only --format misp reads a directory (a MISP feed)", path.display());
        }
        return misp::import_feed_dir(path).map_err(|e| anyhow!("{}: {e}", path.display()));
    }
    let bytes = read_capped(path, meta.len())?;
    let parsed = match job.format {
        Format::Stix => stix::import_bundle(&bytes),
        Format::Misp => misp::import_event(&bytes),
    };
    parsed.map_err(|e| anyhow!("{}: {e}", path.display()))
}

/// Reads a whole file with a byte progress bar, refusing one over `IMPORT_BYTES_MAX`.
fn read_capped(path: &Path, len: u64) -> Result<Vec<u8>> {
    if len > IMPORT_BYTES_MAX {
        bail!("{} is {len} bytes, over the import limit of {IMPORT_BYTES_MAX}: split it", path.display());
    }
    let mut file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let bar = crate::client::progress_bar(Some(len));
    bar.set_message("reading");
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        bytes.extend_from_slice(&buf[..n]);
        bar.set_position(bytes.len() as u64);
        if bytes.len() as u64 > IMPORT_BYTES_MAX {
            bail!("{} grew over the import limit of {IMPORT_BYTES_MAX} bytes while reading", path.display());
        }
    }
    bar.finish_and_clear();
    Ok(bytes)
}

/// Skipped objects by reason, then the first few with their ids.
fn write_skipped(w: &mut impl Write, report: &ImportReport) -> io::Result<()> {
    if report.skipped.is_empty() {
        return Ok(());
    }
    writeln!(w, "skipped, by reason:")?;
    let mut reasons: Vec<(String, usize)> = report.reasons().into_iter().collect();
    reasons.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    for (reason, n) in reasons {
        writeln!(w, "  {n:>7}  {}", clean(&reason, 200))?;
    }
    for s in report.skipped.iter().take(REJECTIONS_LISTED_MAX) {
        writeln!(w, "  {} ({}): {}", clean(&s.source_id, 80), clean(&s.kind, 40), clean(&s.reason, 200))?;
    }
    if report.skipped.len() > REJECTIONS_LISTED_MAX {
        writeln!(w, "  … and {} more", report.skipped.len() - REJECTIONS_LISTED_MAX)?;
    }
    Ok(())
}

/// What the node did with the indicators.
#[derive(Default)]
struct Tally {
    accepted: usize,
    refused: usize,
    /// Refusals by field (`value`, `valid_until` …).
    by_field: BTreeMap<String, usize>,
    /// The first refusals: source id and message.
    listed: Vec<(String, String)>,
}

impl Tally {
    fn write(&self, w: &mut impl Write) -> io::Result<()> {
        writeln!(w, "{} accepted, {} refused by the node", self.accepted, self.refused)?;
        if self.refused > 0 {
            writeln!(w, "refused, by field:")?;
            for (field, n) in &self.by_field {
                writeln!(w, "  {n:>7}  {field}")?;
            }
            for (id, m) in &self.listed {
                writeln!(w, "  {}: {m}", clean(id, 80))?;
            }
            if self.refused > self.listed.len() {
                writeln!(w, "  … and {} more", self.refused - self.listed.len())?;
            }
        }
        Ok(())
    }
}

fn submit_all(api: &Api, report: &ImportReport, batch_size: usize) -> Result<Tally> {
    let bar = counter("indicators submitted", Some(report.items.len() as u64));
    let mut tally = Tally::default();
    for (n, chunk) in report.items.chunks(batch_size).enumerate() {
        let req = SubmitRequest { indicators: chunk.iter().map(|i| i.input.clone()).collect(), atomic: false };
        let resp = api.submit_batch(&req).with_context(|| {
            format!(
                "submitting indicators {} to {} (before them, {} were accepted and {} refused)",
                n * batch_size + 1,
                n * batch_size + chunk.len(),
                tally.accepted,
                tally.refused
            )
        })?;
        for r in resp.results {
            let source = chunk.get(r.index).map(|i| i.source_id.clone()).unwrap_or_default();
            match r.error {
                None => tally.accepted += 1,
                Some(e) => {
                    tally.refused += 1;
                    *tally.by_field.entry(e.field.clone().unwrap_or_else(|| e.code.clone())).or_default() += 1;
                    if tally.listed.len() < REJECTIONS_LISTED_MAX {
                        tally.listed.push((source, item_error(&e)));
                    }
                }
            }
        }
        bar.inc(chunk.len() as u64);
        bar.set_message(format!("{} accepted, {} refused", tally.accepted, tally.refused));
    }
    bar.finish_and_clear();
    Ok(tally)
}

/// A progress counter on stderr (hidden when stderr is not a terminal): a bar when the total is
/// known, a spinner otherwise.
fn counter(what: &str, len: Option<u64>) -> ProgressBar {
    if !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(len, ProgressDrawTarget::stderr());
    let template = match len {
        Some(_) => format!("{{spinner}} [{{bar:40}}] {{pos}}/{{len}} {what} {{msg}}"),
        None => format!("{{spinner}} {{pos}} {what} {{msg}}"),
    };
    bar.set_style(ProgressStyle::with_template(&template).expect("valid template"));
    bar
}
