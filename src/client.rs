//! The commands that talk to a running node over its local REST API: `submit`, `query`,
//! `retract`, `sight` and `status`.
//!
//! `Api` is a small blocking HTTP client (ureq) that speaks `view`'s JSON shapes and turns every
//! failure into a message saying what to do. Bulk files are read as a stream (`Records`: JSON
//! lines, or CSV with a header row), so a file of any size goes out in bounded batches with
//! bounded memory. `anyhow` is fine here: this is the CLI edge.

use std::fs::File;
use std::io::{self, BufRead, BufReader, IsTerminal, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::config::{Config, Role};
use crate::model::{EntryId, IndicatorInput};
use crate::store::QUERY_LIMIT_MAX;
use crate::view::{
    ErrorBody, ErrorDetail, IndicatorView, ItemResult, QUERY_LIMIT_DEFAULT, QueryResponse, REQUEST_BYTES_MAX,
    RetractRequest, SUBMIT_BATCH_MAX, SightRequest, StatusView, SubmitRequest, SubmitResponse,
};

/// Indicators per request of `ctix submit --file` unless `--batch-size` says otherwise: enough to
/// share one group commit (fsync) on the node, few enough that progress shows and a refused batch
/// is small.
pub const BATCH_SIZE_DEFAULT: usize = 1000;
/// Longest line (JSON lines) or record (CSV) of a bulk file. A valid indicator is far smaller
/// (its value, description, tags, techniques and recipients are each bounded by `model`, even
/// JSON-escaped); a longer line is reported without being read into memory whole.
pub const RECORD_BYTES_MAX: usize = 64 * 1024;
/// Largest request body sent: the node's limit, less room for the batch's JSON framing.
pub const BATCH_BYTES_MAX: usize = REQUEST_BYTES_MAX - 1024;
/// Largest API answer read. A full query page (`QUERY_LIMIT_MAX` indicators) fits unless its
/// indicators carry thousands of sighting reports; then `--limit` makes pages smaller.
pub const RESPONSE_BYTES_MAX: u64 = 64 * 1024 * 1024;
/// Indicators `ctix query` shows when neither `--limit` nor `--all` is given.
pub const QUERY_SHOW_DEFAULT: usize = QUERY_LIMIT_DEFAULT;
/// Most indicators `ctix query --all` prints; a query matching more must be narrowed.
pub const QUERY_ALL_MAX: usize = 1_000_000;
/// Rejected items a bulk submission lists one by one; the rest are only counted.
pub const REJECTIONS_LISTED_MAX: usize = 50;
/// How long to wait for the TCP connection to the API (it is local, so this is generous).
pub const CONNECT_TIMEOUT_MS: u64 = 5_000;
/// How long one request may take in all: a full batch waits for the node's group commit.
pub const REQUEST_TIMEOUT_MS: u64 = 300_000;
/// Times a request answered 503 `busy` or `not_ready` (nothing was done) is sent again.
pub const RETRIES_MAX: u32 = 5;
/// First wait before a retry, doubled each time (about 8 s in all).
pub const RETRY_BASE_MS: u64 = 250;
/// Characters of an indicator value the query table shows; a longer value ends in `…`.
pub const VALUE_COLUMN_CHARS: usize = 60;

const _: () = assert!(BATCH_SIZE_DEFAULT <= SUBMIT_BATCH_MAX);
const _: () = assert!(RECORD_BYTES_MAX < BATCH_BYTES_MAX);
const _: () = assert!(QUERY_SHOW_DEFAULT <= QUERY_ALL_MAX);

/// What a command's token must allow. With `--config`, write commands take the config's first
/// `rw` token and read commands its first token of any role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

/// A client of one node's REST API.
pub struct Api {
    /// `http://host:port`, without a trailing slash.
    base: String,
    token: String,
    agent: ureq::Agent,
}

/// One HTTP answer, read but not decoded.
struct Reply {
    status: u16,
    body: Vec<u8>,
}

impl Api {
    /// A client of the API at `url` (`http://127.0.0.1:7480`; the scheme may be left out).
    pub fn new(url: &str, token: &str) -> Result<Api> {
        let base = base_url(url)?;
        let token = token.trim();
        if token.is_empty() || token.chars().any(|c| c.is_control() || c.is_whitespace()) {
            bail!(
                "the API token is empty or holds spaces or control characters: pass a token from the node's [api] tokens"
            );
        }
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            // The API is local: a proxy from the environment (HTTP_PROXY) must not see the token.
            .proxy(None)
            .timeout_connect(Some(Duration::from_millis(CONNECT_TIMEOUT_MS)))
            .timeout_global(Some(Duration::from_millis(REQUEST_TIMEOUT_MS)))
            .user_agent(concat!("ctix/", env!("CARGO_PKG_VERSION")))
            .build();
        Ok(Api { base, token: token.to_owned(), agent: config.into() })
    }

    /// A client of the node whose config is at `path`: its `api.listen` address (an unspecified
    /// address such as 0.0.0.0 means loopback) and the first token that allows `access`.
    pub fn from_config(path: &Path, access: Access) -> Result<Api> {
        let cfg = Config::load(path)?;
        let token = match access {
            Access::Write => cfg.api_tokens.iter().find(|t| t.role == Role::Rw).ok_or_else(|| {
                anyhow!(
                    "{} has no [api] token with role \"rw\", which this command needs: add one, or pass --api and --token",
                    path.display()
                )
            })?,
            Access::Read => cfg.api_tokens.first().ok_or_else(|| {
                anyhow!("{} has no [api] tokens: add one, or pass --api and --token", path.display())
            })?,
        };
        let mut addr = cfg.api_listen;
        if addr.ip().is_unspecified() {
            addr.set_ip(if addr.is_ipv4() { Ipv4Addr::LOCALHOST.into() } else { Ipv6Addr::LOCALHOST.into() });
        }
        Api::new(&format!("http://{addr}"), &token.token)
    }

    /// The API's base URL, for messages.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `POST /api/v1/indicator`: one indicator. A rejection is an `Ok` answer with the item's error.
    pub fn submit_one(&self, input: &IndicatorInput) -> Result<SubmitResponse> {
        let reply = self.post("/api/v1/indicator", input)?;
        self.submission(reply)
    }

    /// `POST /api/v1/indicators`: a batch. With `atomic`, a rejection (422) is an `Ok` answer too.
    pub fn submit_batch(&self, req: &SubmitRequest) -> Result<SubmitResponse> {
        let reply = self.post("/api/v1/indicators", req)?;
        self.submission(reply)
    }

    /// `GET /api/v1/indicators`: one page.
    pub fn query(&self, params: &[(&str, String)]) -> Result<QueryResponse> {
        let url = format!("{}/api/v1/indicators", self.base);
        let pairs = params.iter().map(|(k, v)| (*k, v.as_str()));
        let reply = self
            .exchange(|| self.agent.get(&url).header("Authorization", self.auth()).query_pairs(pairs.clone()).call())?;
        self.decode(reply)
    }

    /// `POST /api/v1/indicators/{id}/retract`; returns the retraction's entry id.
    pub fn retract(&self, id: &EntryId, reason: &str) -> Result<String> {
        let reply =
            self.post(&format!("/api/v1/indicators/{id}/retract"), &RetractRequest { reason: reason.into() })?;
        new_entry_id(self.decode(reply)?)
    }

    /// `POST /api/v1/indicators/{id}/sightings`; returns the sighting's entry id.
    pub fn sight(&self, id: &EntryId, req: &SightRequest) -> Result<String> {
        let reply = self.post(&format!("/api/v1/indicators/{id}/sightings"), req)?;
        new_entry_id(self.decode(reply)?)
    }

    /// `GET /api/v1/status`.
    pub fn status(&self) -> Result<StatusView> {
        let url = format!("{}/api/v1/status", self.base);
        let reply = self.exchange(|| self.agent.get(&url).header("Authorization", self.auth()).call())?;
        self.decode(reply)
    }

    /// `GET path` with query `params`, decoded from JSON.
    pub fn get_json<T: DeserializeOwned>(&self, path: &str, params: &[(&str, String)]) -> Result<T> {
        let reply = self.get(path, params)?;
        self.decode(reply)
    }

    /// `GET path` with query `params`, as text (reports in Markdown or HTML).
    pub fn get_text(&self, path: &str, params: &[(&str, String)]) -> Result<String> {
        let reply = self.get(path, params)?;
        if !(200..300).contains(&reply.status) {
            return Err(self.failure(&reply));
        }
        String::from_utf8(reply.body)
            .map_err(|_| anyhow!("the ctix API at {} answered with text that is not UTF-8", self.base))
    }

    /// `POST path` with a JSON body, answer decoded from JSON.
    pub fn post_json<T: DeserializeOwned>(&self, path: &str, body: &impl Serialize) -> Result<T> {
        let reply = self.post(path, body)?;
        self.decode(reply)
    }

    /// `DELETE path`, answer decoded from JSON.
    pub fn delete_json<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        let url = format!("{}{path}", self.base);
        let reply = self.exchange(|| self.agent.delete(&url).header("Authorization", self.auth()).call())?;
        self.decode(reply)
    }

    /// `GET path` as a stream, for answers too large to hold (a backup): read as it arrives,
    /// without `REQUEST_TIMEOUT_MS` (a large store takes longer) and without a size limit (the
    /// caller reads it record by record within its own limits). An error answer is read whole.
    pub fn get_stream(&self, path: &str) -> Result<Box<dyn io::Read + Send>> {
        let url = format!("{}{path}", self.base);
        let mut response = self
            .agent
            .get(&url)
            .header("Authorization", self.auth())
            .config()
            .timeout_global(None)
            .build()
            .call()
            .map_err(|e| self.transport_error(e))?;
        let status = response.status().as_u16();
        if status != 200 {
            let body = response
                .body_mut()
                .with_config()
                .limit(RESPONSE_BYTES_MAX)
                .read_to_vec()
                .map_err(|e| self.transport_error(e))?;
            return Err(self.failure(&Reply { status, body }));
        }
        Ok(Box::new(response.into_body().into_reader()))
    }

    fn get(&self, path: &str, params: &[(&str, String)]) -> Result<Reply> {
        let url = format!("{}{path}", self.base);
        let pairs = params.iter().map(|(k, v)| (*k, v.as_str()));
        self.exchange(|| self.agent.get(&url).header("Authorization", self.auth()).query_pairs(pairs.clone()).call())
    }

    fn auth(&self) -> String {
        format!("Bearer {}", self.token)
    }

    fn post(&self, path: &str, body: &impl Serialize) -> Result<Reply> {
        let bytes = serde_json::to_vec(body).context("encoding the request")?;
        let url = format!("{}{path}", self.base);
        self.exchange(|| {
            self.agent.post(&url).header("Authorization", self.auth()).content_type("application/json").send(&bytes[..])
        })
    }

    /// Sends a request (again, while the node answers 503 `busy` or `not_ready`, which means it did
    /// nothing) and reads the whole answer.
    fn exchange(&self, send: impl Fn() -> Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Result<Reply> {
        let mut attempt = 0;
        loop {
            let mut response = send().map_err(|e| self.transport_error(e))?;
            let status = response.status().as_u16();
            let body = response
                .body_mut()
                .with_config()
                .limit(RESPONSE_BYTES_MAX)
                .read_to_vec()
                .map_err(|e| self.transport_error(e))?;
            let reply = Reply { status, body };
            let retry = status == 503
                && reply.error().is_some_and(|e| e.code == "busy" || e.code == "not_ready")
                && attempt < RETRIES_MAX;
            if !retry {
                return Ok(reply);
            }
            std::thread::sleep(Duration::from_millis(RETRY_BASE_MS << attempt));
            attempt += 1;
        }
    }

    fn transport_error(&self, e: ureq::Error) -> anyhow::Error {
        use io::ErrorKind::{ConnectionRefused, ConnectionReset, NotConnected};
        match e {
            ureq::Error::Io(io) if matches!(io.kind(), ConnectionRefused | ConnectionReset | NotConnected) => {
                anyhow!(
                    "cannot reach the ctix API at {}: is the node running? (start it with `ctix run --config PATH`)",
                    self.base
                )
            }
            ureq::Error::ConnectionFailed | ureq::Error::HostNotFound => anyhow!(
                "cannot reach the ctix API at {}: is the node running, and is this its api.listen address?",
                self.base
            ),
            ureq::Error::Timeout(t) => anyhow!(
                "the ctix API at {} did not answer in time ({t}): the node may be overloaded; retry, or check its log",
                self.base
            ),
            ureq::Error::BodyExceedsLimit(n) => anyhow!(
                "the answer of the ctix API at {} is over {n} bytes: ask for less (e.g. a smaller --limit)",
                self.base
            ),
            other => anyhow!(other).context(format!("talking to the ctix API at {}", self.base)),
        }
    }

    /// The answer's JSON if it is a success, the node's error otherwise.
    fn decode<T: DeserializeOwned>(&self, reply: Reply) -> Result<T> {
        if !(200..300).contains(&reply.status) {
            return Err(self.failure(&reply));
        }
        serde_json::from_slice(&reply.body).map_err(|e| {
            anyhow!(
                "unexpected answer from the ctix API at {} ({e}): is the node running the same ctix version as this command?",
                self.base
            )
        })
    }

    /// A submission's answer: 200, or 422 carrying the per-item errors.
    fn submission(&self, reply: Reply) -> Result<SubmitResponse> {
        if reply.status == 422
            && let Ok(r) = serde_json::from_slice::<SubmitResponse>(&reply.body)
        {
            return Ok(r);
        }
        self.decode(reply)
    }

    fn failure(&self, reply: &Reply) -> anyhow::Error {
        let Some(e) = reply.error() else {
            let text: String = String::from_utf8_lossy(&reply.body).chars().take(200).collect();
            return anyhow!(
                "the server at {} answered HTTP {} without a ctix error ({:?}): is this the node's API address?",
                self.base,
                reply.status,
                text.trim()
            );
        };
        let hint = match reply.status {
            401 => " (check --token or CTIX_TOKEN)",
            _ => "",
        };
        anyhow!("the node refused the request (HTTP {} {}): {}{hint}", reply.status, e.code, item_error(&e))
    }
}

impl Reply {
    fn error(&self) -> Option<ErrorDetail> {
        serde_json::from_slice::<ErrorBody>(&self.body).ok().map(|b| b.error)
    }
}

/// `http://host:port` from what the user gave (`127.0.0.1:7480`, `http://[::1]:7480/`).
fn base_url(given: &str) -> Result<String> {
    let s = given.trim();
    let s = if s.contains("://") { s.to_owned() } else { format!("http://{s}") };
    let bad =
        |why: &str| anyhow!("--api {given:?}: {why}: give the node's api.listen address, e.g. http://127.0.0.1:7480");
    let url = url::Url::parse(&s).map_err(|e| bad(&e.to_string()))?;
    if url.scheme() != "http" {
        return Err(bad("the ctix API speaks plain HTTP on a local address, not https"));
    }
    if url.path() != "/" || url.query().is_some() || !url.username().is_empty() {
        return Err(bad("give only the scheme, host and port"));
    }
    let host = url.host_str().ok_or_else(|| bad("no host"))?;
    let port = url.port_or_known_default().unwrap_or(80);
    Ok(format!("http://{host}:{port}"))
}

/// The id of the one entry a retraction or sighting stored.
fn new_entry_id(r: SubmitResponse) -> Result<String> {
    match r.results.into_iter().next() {
        Some(ItemResult { id: Some(id), .. }) => Ok(id),
        Some(ItemResult { error: Some(e), .. }) => bail!("refused: {}", item_error(&e)),
        _ => bail!("the node's answer names no stored entry: check the node's log"),
    }
}

/// `field: message` (the message without its own `invalid FIELD: ` prefix), or the message.
pub(crate) fn item_error(e: &ErrorDetail) -> String {
    let message = clean(&e.message, usize::MAX);
    match &e.field {
        Some(f) => {
            let f = clean(f, 64);
            let m = message.strip_prefix(&format!("invalid {f}: ")).or_else(|| message.strip_prefix(&format!("{f}: ")));
            let m = m.unwrap_or(&message);
            format!("{f}: {m}")
        }
        None => message,
    }
}

/// Text from the node made safe for a terminal (control characters escaped, so a peer's value
/// cannot move the cursor or recolour the screen) and cut to `max_chars`, ending in `…`.
pub(crate) fn clean(s: &str, max_chars: usize) -> String {
    let mut out = String::new();
    for (n, c) in s.chars().enumerate() {
        if n == max_chars {
            out.pop();
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// submit

/// `ctix submit --type … --value …`: prints `stored ID (content id …)`; a rejection is an error.
pub fn submit_one(api: &Api, input: &IndicatorInput) -> Result<()> {
    let r = api.submit_one(input)?;
    match r.results.first() {
        Some(ItemResult { id: Some(id), content_id, .. }) => {
            let cid = content_id.as_deref().unwrap_or("?");
            println!("stored {id} (content id {cid})");
            Ok(())
        }
        Some(ItemResult { error: Some(e), .. }) => bail!("indicator rejected: {}", item_error(e)),
        _ => bail!("the node's answer names no stored entry: check the node's log"),
    }
}

/// The format of a bulk file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// One JSON `IndicatorInput` object per line.
    Jsonl,
    /// A header row naming `IndicatorInput` fields, then one indicator per row; multi-valued
    /// fields (tags, techniques, recipients) separated by `;`.
    Csv,
}

impl FileFormat {
    /// The format a file's extension implies: `.jsonl`, `.ndjson`, `.json` or `.csv`.
    pub fn of_path(path: &Path) -> Option<FileFormat> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "jsonl" | "ndjson" | "json" => Some(FileFormat::Jsonl),
            "csv" => Some(FileFormat::Csv),
            _ => None,
        }
    }
}

/// `ctix submit --file`.
#[derive(Debug, Clone)]
pub struct FileJob {
    /// `-` reads standard input.
    pub path: PathBuf,
    /// `None`: from the file's extension.
    pub format: Option<FileFormat>,
    /// The whole file in one all-or-nothing request.
    pub atomic: bool,
    /// Indicators per request, 1 to `SUBMIT_BATCH_MAX`.
    pub batch_size: usize,
}

/// `ctix submit --file`: reads, sends in batches, prints a summary. Any rejection is an error
/// (exit code 1) after the summary.
pub fn submit_file(api: &Api, job: &FileJob) -> Result<()> {
    let stdin = job.path.as_os_str() == "-";
    let format = match job.format.or_else(|| FileFormat::of_path(&job.path)) {
        Some(f) => f,
        None if stdin => bail!("give --format jsonl or --format csv to read standard input"),
        None => bail!(
            "cannot tell the format of {} from its extension: pass --format jsonl or --format csv",
            job.path.display()
        ),
    };
    assert!((1..=SUBMIT_BATCH_MAX).contains(&job.batch_size), "clap bounds --batch-size");
    let (input, len): (Box<dyn Read>, Option<u64>) = if stdin {
        (Box::new(io::stdin()), None)
    } else {
        let file = File::open(&job.path).with_context(|| format!("cannot open {}", job.path.display()))?;
        let len = file.metadata().ok().map(|m| m.len());
        (Box::new(file), len)
    };
    let mut records = Records::new(input, format).with_context(|| format!("reading {}", job.path.display()))?;
    let bar = progress_bar(len);
    let result = if job.atomic { send_atomic(api, &mut records) } else { send_batches(api, &mut records, job, &bar) };
    bar.finish_and_clear();
    let tally = result.with_context(|| format!("submitting {}", job.path.display()))?;
    let out = io::stdout();
    let mut w = out.lock();
    tally.write(&mut w)?;
    w.flush()?;
    if tally.rejected > 0 {
        bail!(
            "{} of {} indicators were rejected (listed above): fix those lines and submit them again",
            tally.rejected,
            tally.read
        );
    }
    Ok(())
}

pub(crate) fn progress_bar(len: Option<u64>) -> ProgressBar {
    if !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let (bar, template) = match len {
        Some(n) => (
            ProgressBar::with_draw_target(Some(n), ProgressDrawTarget::stderr()),
            "{spinner} [{bar:40}] {bytes}/{total_bytes} {msg}",
        ),
        None => (ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()), "{spinner} {bytes} {msg}"),
    };
    bar.set_style(ProgressStyle::with_template(template).expect("valid template").progress_chars("=> "));
    bar
}

/// Streams the file in batches of `job.batch_size` (and at most `BATCH_BYTES_MAX`).
fn send_batches(api: &Api, records: &mut Records, job: &FileJob, bar: &ProgressBar) -> Result<Tally> {
    let mut tally = Tally::default();
    let mut batch = Batch::default();
    loop {
        let next = records.next()?;
        bar.set_position(records.bytes_read());
        let full = match &next {
            Some(Ok(item)) => batch.items.len() == job.batch_size || batch.bytes + item.bytes + 1 > BATCH_BYTES_MAX,
            Some(Err(_)) => false,
            None => true,
        };
        if full && !(batch.items.is_empty() && batch.local.is_empty()) {
            let (first, last) = batch.lines();
            let sent = std::mem::take(&mut batch);
            send_batch(api, sent, false, &mut tally).with_context(|| {
                format!(
                    "sending lines {first} to {last} (before them, {} were accepted and {} rejected)",
                    tally.accepted, tally.rejected
                )
            })?;
            bar.set_message(format!("{} accepted, {} rejected", tally.accepted, tally.rejected));
        }
        match next {
            Some(Ok(item)) => batch.push(item),
            Some(Err(rejection)) => batch.local.push(rejection),
            None => return Ok(tally),
        }
    }
}

/// Reads the whole file (at most `SUBMIT_BATCH_MAX` indicators) and sends it as one atomic
/// request; nothing is sent if any line does not parse.
fn send_atomic(api: &Api, records: &mut Records) -> Result<Tally> {
    let mut batch = Batch::default();
    while let Some(next) = records.next()? {
        match next {
            Ok(item) => batch.push(item),
            Err(rejection) => batch.local.push(rejection),
        }
        if batch.items.len() > SUBMIT_BATCH_MAX {
            bail!(
                "--atomic sends the file in one request, which holds at most {SUBMIT_BATCH_MAX} indicators: split the file, or leave out --atomic"
            );
        }
    }
    if batch.bytes > BATCH_BYTES_MAX {
        bail!("--atomic sends the file in one request, which is over {REQUEST_BYTES_MAX} bytes here: split the file");
    }
    let mut tally = Tally::default();
    if !batch.local.is_empty() {
        tally.note = Some("nothing was sent (--atomic): fix the lines below and submit the file again");
        tally.read = batch.items.len() + batch.local.len();
        tally.add(batch.local);
        return Ok(tally);
    }
    send_batch(api, batch, true, &mut tally)?;
    if tally.rejected > 0 {
        tally.note = Some("nothing was stored (--atomic): fix the lines below and submit the file again");
    }
    Ok(tally)
}

/// The items of one request and the lines among them that did not parse.
#[derive(Default)]
struct Batch {
    items: Vec<Item>,
    /// Request bytes of the items' JSON, with separators.
    bytes: usize,
    local: Vec<Rejection>,
}

impl Batch {
    fn push(&mut self, item: Item) {
        self.bytes += item.bytes + 1;
        self.items.push(item);
    }

    /// First and last line of this batch, for messages.
    fn lines(&self) -> (usize, usize) {
        let lines = self.items.iter().map(|i| i.line).chain(self.local.iter().map(|r| r.line));
        let (min, max) = lines.fold((usize::MAX, 0), |(lo, hi), l| (lo.min(l), hi.max(l)));
        (min.min(max), max)
    }
}

/// Sends one batch (if it holds any item) and tallies the outcome of every line.
fn send_batch(api: &Api, batch: Batch, atomic: bool, tally: &mut Tally) -> Result<()> {
    tally.read += batch.items.len() + batch.local.len();
    let mut rejections = batch.local;
    if !batch.items.is_empty() {
        let lines: Vec<usize> = batch.items.iter().map(|i| i.line).collect();
        let req = SubmitRequest { indicators: batch.items.into_iter().map(|i| i.input).collect(), atomic };
        let resp = api.submit_batch(&req)?;
        if resp.results.len() != lines.len() {
            bail!(
                "the node answered {} results for {} indicators: check the node's log",
                resp.results.len(),
                lines.len()
            );
        }
        for r in resp.results {
            let line =
                *lines.get(r.index).ok_or_else(|| anyhow!("the node answered an unknown item index {}", r.index))?;
            match (r.id, r.error) {
                (_, Some(e)) => rejections.push(Rejection { line, message: item_error(&e) }),
                (Some(_), None) => tally.accepted += 1,
                // Valid, but not stored because another item of an atomic batch was invalid.
                (None, None) => {}
            }
        }
    }
    tally.add(rejections);
    Ok(())
}

/// What a bulk submission did, for its summary.
#[derive(Default)]
struct Tally {
    /// Indicators read (sent, or rejected here).
    read: usize,
    accepted: usize,
    rejected: usize,
    /// The first `REJECTIONS_LISTED_MAX` rejections, in line order.
    listed: Vec<Rejection>,
    /// A sentence printed under the counts.
    note: Option<&'static str>,
}

impl Tally {
    /// Adds one batch's rejections. Batches come in line order, so sorting each keeps the whole
    /// list in line order.
    fn add(&mut self, mut rejections: Vec<Rejection>) {
        rejections.sort_by_key(|r| r.line);
        self.rejected += rejections.len();
        let room = REJECTIONS_LISTED_MAX - self.listed.len();
        self.listed.extend(rejections.into_iter().take(room));
    }

    fn write(&self, w: &mut impl Write) -> io::Result<()> {
        writeln!(w, "{} accepted, {} rejected", self.accepted, self.rejected)?;
        if let Some(note) = self.note {
            writeln!(w, "{note}")?;
        }
        for r in &self.listed {
            writeln!(w, "line {}: {}", r.line, r.message)?;
        }
        if self.rejected > self.listed.len() {
            writeln!(w, "… and {} more", self.rejected - self.listed.len())?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// bulk files

/// One indicator read from a bulk file.
#[derive(Debug)]
struct Item {
    /// The line it starts on, from 1.
    line: usize,
    input: IndicatorInput,
    /// Length of its JSON in a request.
    bytes: usize,
}

/// Why one line was not stored: it did not parse here, or the node refused it.
#[derive(Debug, PartialEq, Eq)]
struct Rejection {
    line: usize,
    /// `field: message`, or a message.
    message: String,
}

/// A bulk file read record by record, counting lines.
struct Records {
    input: BufReader<Counted>,
    format: FileFormat,
    /// Lines read so far.
    line: usize,
    /// The CSV header's columns.
    columns: Vec<Column>,
    buf: Vec<u8>,
}

/// A reader that counts the bytes it has read, for the progress bar.
struct Counted {
    inner: Box<dyn Read>,
    bytes: u64,
}

impl Read for Counted {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
}

/// One physical line.
enum Line {
    Text(String),
    TooLong,
    NotUtf8,
}

/// The `IndicatorInput` field a CSV column fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    Type,
    Value,
    Tlp,
    Confidence,
    Tags,
    Description,
    ValidFrom,
    ValidUntil,
    Recipients,
    Techniques,
}

const COLUMN_NAMES: &str =
    "type, value, tlp, confidence, tags, description, valid_from, valid_until, recipients, techniques";

impl Column {
    fn parse(name: &str) -> Option<Column> {
        Some(match name.trim().to_ascii_lowercase().as_str() {
            "type" => Column::Type,
            "value" => Column::Value,
            "tlp" => Column::Tlp,
            "confidence" => Column::Confidence,
            "tags" | "tag" => Column::Tags,
            "description" => Column::Description,
            "valid_from" => Column::ValidFrom,
            "valid_until" => Column::ValidUntil,
            "recipients" | "recipient" => Column::Recipients,
            "techniques" | "technique" => Column::Techniques,
            _ => return None,
        })
    }
}

impl Records {
    /// Starts reading; a CSV file's header row is read and checked here.
    fn new(input: Box<dyn Read>, format: FileFormat) -> Result<Records> {
        let input = BufReader::with_capacity(64 * 1024, Counted { inner: input, bytes: 0 });
        let mut r = Records { input, format, line: 0, columns: Vec::new(), buf: Vec::new() };
        if format == FileFormat::Csv {
            r.columns = r.read_header()?;
        }
        Ok(r)
    }

    fn bytes_read(&self) -> u64 {
        self.input.get_ref().bytes
    }

    /// The next indicator, or the reason its line is rejected; `None` at the end.
    fn next(&mut self) -> io::Result<Option<Result<Item, Rejection>>> {
        match self.format {
            FileFormat::Jsonl => self.next_json(),
            FileFormat::Csv => {
                let Some((line, fields)) = self.next_csv_record()? else { return Ok(None) };
                Ok(Some(fields.and_then(|f| self.csv_item(line, f)).map_err(|message| Rejection { line, message })))
            }
        }
    }

    fn next_json(&mut self) -> io::Result<Option<Result<Item, Rejection>>> {
        loop {
            let Some(text) = self.read_line()? else { return Ok(None) };
            let line = self.line;
            let text = match text {
                Line::Text(t) if t.trim().is_empty() => continue,
                Line::Text(t) => t,
                Line::TooLong => return Ok(Some(Err(too_long(line)))),
                Line::NotUtf8 => return Ok(Some(Err(not_utf8(line)))),
            };
            let item = serde_json::from_str::<IndicatorInput>(&text)
                .map_err(|e| {
                    let position = format!(" at line {} column {}", e.line(), e.column());
                    let m = e.to_string();
                    let m = m.strip_suffix(&position).unwrap_or(&m);
                    Rejection { line, message: format!("not an indicator object: {m} (column {})", e.column()) }
                })
                .map(|input| item(line, input));
            return Ok(Some(item));
        }
    }

    fn read_header(&mut self) -> Result<Vec<Column>> {
        let Some((line, fields)) = self.next_csv_record()? else {
            bail!("the file is empty: a CSV file starts with a header row naming its columns ({COLUMN_NAMES})");
        };
        let fields = fields.map_err(|m| anyhow!("line {line} (the header row): {m}"))?;
        let mut columns = Vec::with_capacity(fields.len());
        for name in &fields {
            let Some(c) = Column::parse(name) else {
                bail!("line {line}: the header names an unknown column {:?}: use {COLUMN_NAMES}", clean(name, 64));
            };
            if columns.contains(&c) {
                bail!("line {line}: the header names column {:?} twice", clean(name, 64));
            }
            columns.push(c);
        }
        if !(columns.contains(&Column::Type) && columns.contains(&Column::Value)) {
            bail!(
                "line {line}: the header row must name at least the columns type and value (it may also name {COLUMN_NAMES})"
            );
        }
        Ok(columns)
    }

    /// The next CSV record (which may span lines inside quotes) with the line it starts on.
    fn next_csv_record(&mut self) -> io::Result<Option<CsvRecord>> {
        let mut text = loop {
            let Some(l) = self.read_line()? else { return Ok(None) };
            match l {
                Line::Text(t) if t.trim().is_empty() => continue,
                Line::Text(t) => break t,
                Line::TooLong => return Ok(Some((self.line, Err(too_long(self.line).message)))),
                Line::NotUtf8 => return Ok(Some((self.line, Err(not_utf8(self.line).message)))),
            }
        };
        let start = self.line;
        loop {
            match parse_csv_record(&text) {
                Ok(fields) => return Ok(Some((start, Ok(fields)))),
                Err(CsvError::Invalid(m)) => return Ok(Some((start, Err(m)))),
                Err(CsvError::Unterminated) => {}
            }
            let more = match self.read_line()? {
                None => "a quoted field is not closed: end it with \"".to_owned(),
                Some(Line::Text(t)) if text.len() + t.len() < RECORD_BYTES_MAX => {
                    text.push('\n');
                    text.push_str(&t);
                    continue;
                }
                Some(Line::Text(_) | Line::TooLong) => {
                    format!("the record is longer than {RECORD_BYTES_MAX} bytes: is a quoted field not closed?")
                }
                Some(Line::NotUtf8) => not_utf8(self.line).message,
            };
            return Ok(Some((start, Err(more))));
        }
    }

    fn csv_item(&self, line: usize, fields: Vec<String>) -> Result<Item, String> {
        if fields.len() != self.columns.len() {
            return Err(format!("{} fields, but the header row names {} columns", fields.len(), self.columns.len()));
        }
        let mut input = IndicatorInput::default();
        let list = |s: &str| s.split(';').map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned).collect();
        let text = |s: &str| Some(s.trim().to_owned()).filter(|t| !t.is_empty());
        for (column, field) in self.columns.iter().zip(&fields) {
            match column {
                Column::Type => input.itype = field.clone(),
                Column::Value => input.value = field.clone(),
                Column::Tlp => input.tlp = field.clone(),
                Column::Confidence => {
                    input.confidence = match text(field) {
                        None => None,
                        Some(c) => Some(c.parse::<i64>().map_err(|_| {
                            format!("confidence: {:?} is not a whole number: use 0 to 100", clean(&c, 64))
                        })?),
                    }
                }
                Column::Tags => input.tags = list(field),
                Column::Description => input.description = field.clone(),
                Column::ValidFrom => input.valid_from = text(field),
                Column::ValidUntil => input.valid_until = text(field),
                Column::Recipients => input.recipients = list(field),
                Column::Techniques => input.techniques = list(field),
            }
        }
        Ok(item(line, input))
    }

    /// Reads one line (without its `\n` or `\r\n`), holding at most `RECORD_BYTES_MAX` bytes of
    /// it; the rest of a longer line is skipped. `None` at the end of the input.
    fn read_line(&mut self) -> io::Result<Option<Line>> {
        self.buf.clear();
        let limit = RECORD_BYTES_MAX as u64 + 1;
        let n = (&mut self.input).take(limit).read_until(b'\n', &mut self.buf)?;
        if n == 0 {
            return Ok(None);
        }
        self.line += 1;
        if self.buf.last() == Some(&b'\n') {
            self.buf.pop();
            if self.buf.last() == Some(&b'\r') {
                self.buf.pop();
            }
        } else if self.buf.len() > RECORD_BYTES_MAX {
            skip_line(&mut self.input)?;
            return Ok(Some(Line::TooLong));
        }
        let mut bytes = &self.buf[..];
        if self.line == 1 {
            bytes = bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(bytes);
        }
        Ok(Some(match std::str::from_utf8(bytes) {
            Ok(s) => Line::Text(s.to_owned()),
            Err(_) => Line::NotUtf8,
        }))
    }
}

/// Consumes input up to and including the next `\n`.
fn skip_line(r: &mut impl BufRead) -> io::Result<()> {
    loop {
        let available = r.fill_buf()?;
        if available.is_empty() {
            return Ok(());
        }
        if let Some(i) = available.iter().position(|b| *b == b'\n') {
            r.consume(i + 1);
            return Ok(());
        }
        let n = available.len();
        r.consume(n);
    }
}

fn item(line: usize, input: IndicatorInput) -> Item {
    let bytes = serde_json::to_vec(&input).map_or(0, |v| v.len());
    Item { line, input, bytes }
}

fn too_long(line: usize) -> Rejection {
    Rejection { line, message: format!("longer than {RECORD_BYTES_MAX} bytes, which no valid indicator is") }
}

fn not_utf8(line: usize) -> Rejection {
    Rejection { line, message: "not UTF-8 text: save the file as UTF-8".into() }
}

/// A CSV record's first line, and its fields or why it does not parse.
type CsvRecord = (usize, Result<Vec<String>, String>);

#[derive(Debug, PartialEq, Eq)]
enum CsvError {
    /// The text ends inside a quoted field: the record continues on the next line.
    Unterminated,
    Invalid(String),
}

/// Splits one CSV record (RFC 4180): fields separated by `,`; a field in double quotes may hold
/// `,`, line breaks and doubled quotes (`""` is one `"`). A quote inside an unquoted field is
/// kept as it is; text after a closing quote (other than spaces) is an error.
fn parse_csv_record(text: &str) -> Result<Vec<String>, CsvError> {
    let mut fields = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    None => return Err(CsvError::Unterminated),
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                }
            }
            while chars.next_if(|c| *c == ' ' || *c == '\t').is_some() {}
            match chars.next() {
                None => {
                    fields.push(field);
                    return Ok(fields);
                }
                Some(',') => fields.push(field),
                Some(c) => {
                    return Err(CsvError::Invalid(format!(
                        "field {}: {c:?} after the closing quote: quote the whole field and double each quote inside it (\"\")",
                        fields.len() + 1
                    )));
                }
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        fields.push(field);
                        return Ok(fields);
                    }
                    Some(',') => {
                        fields.push(field);
                        break;
                    }
                    Some(c) => field.push(c),
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// query

/// What `ctix query` asks for; empty fields are not sent.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub itype: Option<String>,
    pub value: Option<String>,
    pub origin: Option<String>,
    pub tag: Option<String>,
    pub tlp: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub retracted: Option<bool>,
}

impl Filter {
    pub fn params(&self) -> Vec<(&'static str, String)> {
        let text = [
            ("type", &self.itype),
            ("value", &self.value),
            ("origin", &self.origin),
            ("tag", &self.tag),
            ("tlp", &self.tlp),
            ("since", &self.since),
            ("until", &self.until),
        ];
        let mut out: Vec<(&'static str, String)> =
            text.into_iter().filter_map(|(k, v)| v.as_ref().map(|v| (k, v.clone()))).collect();
        if let Some(r) = self.retracted {
            out.push(("retracted", r.to_string()));
        }
        out
    }
}

/// `ctix query`.
#[derive(Debug, Clone, Default)]
pub struct QueryJob {
    pub filter: Filter,
    /// Start after this cursor.
    pub after: Option<u64>,
    /// Most indicators to show; `None`: `QUERY_SHOW_DEFAULT`. Ignored with `all`.
    pub limit: Option<usize>,
    /// Every match, up to `QUERY_ALL_MAX`.
    pub all: bool,
    /// JSON lines instead of a table.
    pub json: bool,
}

/// `ctix query`: pages through the matches, printing each page as it arrives.
pub fn query(api: &Api, job: &QueryJob) -> Result<()> {
    let cap = if job.all { QUERY_ALL_MAX } else { job.limit.unwrap_or(QUERY_SHOW_DEFAULT) };
    let out = io::stdout();
    let mut w = io::BufWriter::new(out.lock());
    let mut table = Table::new(&QUERY_COLUMNS, &[false, false, false, false, true, false, false, true]);
    let (mut after, mut shown) = (job.after, 0usize);
    let more = loop {
        let mut params = job.filter.params();
        if let Some(a) = after {
            params.push(("after", a.to_string()));
        }
        params.push(("limit", (cap - shown).min(QUERY_LIMIT_MAX).to_string()));
        let page = api.query(&params)?;
        let items = &page.items[..page.items.len().min(cap - shown)];
        shown += items.len();
        let written = if job.json { write_json_lines(&mut w, items) } else { write_rows(&mut w, &mut table, items) };
        match written.and_then(|()| w.flush()) {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(()),
            r => r.context("writing to standard output")?,
        }
        let Some(next) = page.next else { break None };
        if after.is_some_and(|a| next <= a) {
            bail!(
                "the node answered a cursor ({next}) that does not advance past {}: check the node's log",
                after.unwrap_or(0)
            );
        }
        after = Some(next);
        if shown >= cap {
            break Some(next);
        }
    };
    if shown == 0 && !job.json {
        eprintln!("no indicators match");
    }
    match more {
        Some(next) if job.all => {
            bail!(
                "stopped after {QUERY_ALL_MAX} indicators: narrow the query (--since, --type …) or continue with --after {next}"
            )
        }
        Some(next) => eprintln!("more indicators may match: continue with --after {next}, or use --all"),
        None => {}
    }
    Ok(())
}

const QUERY_COLUMNS: [&str; 8] = ["ID", "TYPE", "VALUE", "TLP", "CONF", "CREATED", "RETRACTED", "SIGHTINGS"];

fn write_json_lines(w: &mut impl Write, items: &[IndicatorView]) -> io::Result<()> {
    for item in items {
        serde_json::to_writer(&mut *w, item)?;
        w.write_all(b"\n")?;
    }
    Ok(())
}

fn write_rows(w: &mut impl Write, table: &mut Table, items: &[IndicatorView]) -> io::Result<()> {
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|v| {
            vec![
                clean(&v.id, 64),
                clean(&v.itype, 16),
                clean(&v.value, VALUE_COLUMN_CHARS),
                clean(&v.tlp, 16),
                v.confidence.to_string(),
                short_time(&v.created),
                if v.retracted { "yes" } else { "no" }.into(),
                v.sightings.to_string(),
            ]
        })
        .collect();
    table.write(w, &rows)
}

/// `2026-01-02T03:04:05.678Z` → `2026-01-02T03:04:05Z`.
fn short_time(t: &str) -> String {
    let t = clean(t, 40);
    match t.split_once('.') {
        Some((secs, frac)) if frac.len() == 4 && frac.ends_with('Z') => format!("{secs}Z"),
        _ => t,
    }
}

/// Columns printed aligned; widths grow to fit each group of rows written and never shrink, so
/// a long listing can be printed page by page.
struct Table {
    header: Vec<&'static str>,
    /// Right-aligned (numeric) columns.
    right: Vec<bool>,
    widths: Vec<usize>,
    header_written: bool,
    /// Printed before each line.
    indent: &'static str,
}

impl Table {
    fn new(header: &[&'static str], right: &[bool]) -> Table {
        assert_eq!(header.len(), right.len());
        let widths = header.iter().map(|h| h.chars().count()).collect();
        Table { header: header.to_vec(), right: right.to_vec(), widths, header_written: false, indent: "" }
    }

    fn write(&mut self, w: &mut impl Write, rows: &[Vec<String>]) -> io::Result<()> {
        for row in rows {
            for (width, cell) in self.widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        if !self.header_written && !rows.is_empty() {
            let header: Vec<String> = self.header.iter().map(|h| h.to_string()).collect();
            self.line(w, &header)?;
            self.header_written = true;
        }
        rows.iter().try_for_each(|row| self.line(w, row))
    }

    fn line(&self, w: &mut impl Write, cells: &[String]) -> io::Result<()> {
        let mut out = String::from(self.indent);
        let last = cells.len().saturating_sub(1);
        for (i, ((cell, width), right)) in cells.iter().zip(&self.widths).zip(&self.right).enumerate() {
            let pad = " ".repeat(width.saturating_sub(cell.chars().count()));
            match (right, i == last) {
                (true, _) => out.extend([pad.as_str(), cell]),
                (false, false) => out.extend([cell.as_str(), &pad]),
                (false, true) => out.push_str(cell),
            }
            if i != last {
                out.push_str("  ");
            }
        }
        writeln!(w, "{out}")
    }
}

// ---------------------------------------------------------------------------------------------
// retract, sight, status

/// `ctix retract ID --reason TEXT`: prints the retraction's entry id.
pub fn retract(api: &Api, id: &str, reason: &str) -> Result<()> {
    let target = parse_id(id)?;
    let new = api.retract(&target, reason)?;
    println!("stored {new} (retraction of {target})");
    Ok(())
}

/// `ctix sight ID`: prints the sighting's entry id.
pub fn sight(api: &Api, id: &str, req: &SightRequest) -> Result<()> {
    let target = parse_id(id)?;
    let new = api.sight(&target, req)?;
    println!("stored {new} (sighting of {target}, count {})", req.count.unwrap_or(1));
    Ok(())
}

fn parse_id(id: &str) -> Result<EntryId> {
    id.trim().parse::<EntryId>().map_err(|e| anyhow!("{}", e.reason))
}

/// `ctix status`: a readable summary, or with `json` the `StatusView` as one JSON object.
pub fn status(api: &Api, json: bool) -> Result<()> {
    let s = api.status()?;
    let out = io::stdout();
    let mut w = io::BufWriter::new(out.lock());
    let written = if json {
        serde_json::to_writer_pretty(&mut w, &s).map_err(io::Error::from).and_then(|()| writeln!(w))
    } else {
        write_status(&mut w, &s)
    };
    match written.and_then(|()| w.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        r => r.context("writing to standard output"),
    }
}

fn write_status(w: &mut impl Write, s: &StatusView) -> io::Result<()> {
    let ready = if s.ready {
        "ready"
    } else {
        "not ready: waiting for peers to confirm this node's own log head (submissions wait; after a restore \
         or `ctix store rejoin` they are refused until then)"
    };
    writeln!(w, "node {}: {ready}", clean(&s.node, 64))?;
    let connected = s.peers.iter().filter(|p| p.connected).count();
    writeln!(w, "\npeers: {connected} of {} connected", s.peers.len())?;
    let mut peers = Table::new(&["PEER", "CONNECTED", "LAST SEEN", "LAG"], &[false, false, false, true]);
    peers.indent = "  ";
    let rows: Vec<Vec<String>> = s
        .peers
        .iter()
        .map(|p| {
            vec![
                clean(&p.name, 64),
                if p.connected { "yes" } else { "no" }.into(),
                p.last_seen.as_deref().map_or_else(|| "never".into(), short_time),
                p.lag_entries.map_or_else(|| "-".into(), |n| n.to_string()),
            ]
        })
        .collect();
    peers.write(w, &rows)?;
    let mut origins: Vec<&String> = s.heads.keys().chain(s.counts.keys()).collect();
    origins.sort();
    origins.dedup();
    let mut kinds: Vec<&String> = s.counts.values().flat_map(|k| k.keys()).collect();
    kinds.sort();
    kinds.dedup();
    writeln!(w, "\nlogs held:")?;
    let header: Vec<&'static str> =
        ["ORIGIN", "HEAD"].into_iter().chain(kinds.iter().map(|k| kind_column(k))).collect();
    let mut right = vec![true; header.len()];
    right[0] = false;
    let mut logs = Table::new(&header, &right);
    logs.indent = "  ";
    let rows: Vec<Vec<String>> = origins
        .iter()
        .map(|o| {
            let mut row = vec![clean(o, 64), s.heads.get(*o).map_or_else(|| "-".into(), |n| n.to_string())];
            let counts = s.counts.get(*o);
            row.extend(kinds.iter().map(|k| counts.and_then(|c| c.get(*k)).copied().unwrap_or(0).to_string()));
            row
        })
        .collect();
    logs.write(w, &rows)?;
    if s.quarantined.is_empty() {
        writeln!(w, "\nquarantined: none")?;
    } else {
        let names: Vec<String> = s.quarantined.iter().map(|q| clean(q, 64)).collect();
        writeln!(
            w,
            "\nquarantined: {} (each signed two histories; {} pieces of fork evidence kept: see the node's log)",
            names.join(", "),
            s.forks
        )?;
    }
    Ok(())
}

/// The column title of an entry kind's count (`indicator` → `INDICATORS`).
fn kind_column(kind: &str) -> &'static str {
    match kind {
        "indicator" => "INDICATORS",
        "sighting" => "SIGHTINGS",
        "retraction" => "RETRACTIONS",
        _ => "OTHER",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_csv(text: &str, expected: &[&str]) {
        assert_eq!(parse_csv_record(text), Ok(expected.iter().map(|s| s.to_string()).collect()), "{text:?}");
    }

    #[test]
    fn csv_records_split_into_fields() {
        check_csv("a,b,c", &["a", "b", "c"]);
        check_csv("", &[""]);
        check_csv("a,,", &["a", "", ""]);
        check_csv(r#""a,b",c"#, &["a,b", "c"]);
        check_csv(r#""say ""hi""",x"#, &[r#"say "hi""#, "x"]);
        check_csv(r#""""#, &[""]);
        check_csv("\"two\nlines\",x", &["two\nlines", "x"]);
        check_csv(r#""a" ,b"#, &["a", "b"]);
        check_csv(r#"it's "quoted" inside,b"#, &[r#"it's "quoted" inside"#, "b"]);
        check_csv(" a , b ", &[" a ", " b "]);
        assert_eq!(parse_csv_record(r#""open,b"#), Err(CsvError::Unterminated));
        assert_eq!(parse_csv_record("a,\"x"), Err(CsvError::Unterminated));
        assert!(matches!(parse_csv_record(r#""a"b,c"#), Err(CsvError::Invalid(m)) if m.starts_with("field 1:")));
    }

    fn read_all(format: FileFormat, text: &str) -> Vec<Result<(usize, IndicatorInput), Rejection>> {
        let mut r = Records::new(Box::new(io::Cursor::new(text.to_owned())), format).unwrap();
        let mut out = Vec::new();
        while let Some(next) = r.next().unwrap() {
            out.push(next.map(|i| (i.line, i.input)));
        }
        out
    }

    fn ipv4(value: &str) -> IndicatorInput {
        IndicatorInput { itype: "ipv4".into(), value: value.into(), ..Default::default() }
    }

    #[test]
    fn json_lines_keep_their_line_numbers() {
        let text = "{\"type\":\"ipv4\",\"value\":\"192.0.2.1\"}\n\n  \nnot json\r\n{\"type\":\"ipv4\",\"value\":\"192.0.2.2\",\"colour\":1}\n{\"type\":\"ipv4\",\"value\":\"192.0.2.3\"}";
        let got = read_all(FileFormat::Jsonl, text);
        assert_eq!(got.len(), 4);
        assert_eq!(got[0], Ok((1, ipv4("192.0.2.1"))));
        assert!(matches!(&got[1], Err(r) if r.line == 4 && r.message.starts_with("not an indicator object")));
        assert!(
            matches!(&got[2], Err(r) if r.line == 5 && r.message.contains("colour") && !r.message.contains("line 1"))
        );
        assert_eq!(got[3], Ok((6, ipv4("192.0.2.3"))));
    }

    #[test]
    fn overlong_lines_are_skipped_not_read_whole() {
        let long = format!("{{\"type\":\"ipv4\",\"value\":\"{}\"}}", "9".repeat(RECORD_BYTES_MAX * 3));
        let text = format!("{long}\n{{\"type\":\"ipv4\",\"value\":\"192.0.2.9\"}}\n");
        let got = read_all(FileFormat::Jsonl, &text);
        assert!(matches!(&got[0], Err(r) if r.line == 1 && r.message.starts_with("longer than")));
        assert_eq!(got[1], Ok((2, ipv4("192.0.2.9"))));
    }

    #[test]
    fn csv_rows_fill_indicator_inputs() {
        let text = "\u{feff}Type,value,tags,confidence,description,recipients,valid_until\n\
                    ipv4,192.0.2.1,apt28; phishing,80,\"a, \"\"quoted\"\"\nnote\",,\n\
                    \n\
                    domain,evil.example,,,,lv;lt,30d\n\
                    ipv4,192.0.2.2,,high,,,\n\
                    ipv4,192.0.2.3\n\
                    ipv4,\"192.0.2.4\n";
        let got = read_all(FileFormat::Csv, text);
        let first = IndicatorInput {
            tags: vec!["apt28".into(), "phishing".into()],
            confidence: Some(80),
            description: "a, \"quoted\"\nnote".into(),
            ..ipv4("192.0.2.1")
        };
        assert_eq!(got[0], Ok((2, first)));
        let second = IndicatorInput {
            itype: "domain".into(),
            value: "evil.example".into(),
            recipients: vec!["lv".into(), "lt".into()],
            valid_until: Some("30d".into()),
            ..Default::default()
        };
        assert_eq!(got[1], Ok((5, second)));
        assert!(matches!(&got[2], Err(r) if r.line == 6 && r.message.starts_with("confidence: \"high\"")));
        assert!(matches!(&got[3], Err(r) if r.line == 7 && r.message.contains("2 fields")));
        assert!(matches!(&got[4], Err(r) if r.line == 8 && r.message.contains("not closed")));
        assert_eq!(got.len(), 5);
    }

    #[test]
    fn csv_headers_are_checked() {
        let err = |text: &str| {
            Records::new(Box::new(io::Cursor::new(text.to_owned())), FileFormat::Csv).err().unwrap().to_string()
        };
        assert!(err("").contains("empty"));
        assert!(err("type,value,colour\n").contains("unknown column \"colour\""));
        assert!(err("type,value,tag,tags\n").contains("twice"));
        assert!(err("value,tlp\n").contains("at least the columns type and value"));
    }

    #[test]
    fn api_addresses_are_normalised() {
        assert_eq!(base_url("127.0.0.1:7480").unwrap(), "http://127.0.0.1:7480");
        assert_eq!(base_url(" http://localhost:7480/ ").unwrap(), "http://localhost:7480");
        assert_eq!(base_url("http://[::1]:7480").unwrap(), "http://[::1]:7480");
        assert_eq!(base_url("http://127.0.0.1").unwrap(), "http://127.0.0.1:80");
        for bad in ["https://127.0.0.1:7480", "http://127.0.0.1:7480/api/v1", "http://", "http://a b"] {
            assert!(base_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn item_errors_name_their_field_once() {
        let e = |field: Option<&str>, message: &str| ErrorDetail {
            code: "invalid_field".into(),
            message: message.into(),
            field: field.map(Into::into),
        };
        assert_eq!(
            item_error(&e(Some("value"), "invalid value: \"x\" is not an IPv4 address")),
            "value: \"x\" is not an IPv4 address"
        );
        assert_eq!(item_error(&e(Some("tlp"), "use amber")), "tlp: use amber");
        assert_eq!(item_error(&e(Some("tlp"), "tlp: use amber")), "tlp: use amber");
        assert_eq!(item_error(&e(None, "no such\x1b[31m thing")), "no such\\u{1b}[31m thing");
    }

    #[test]
    fn table_cells_are_cut_and_cleaned() {
        assert_eq!(clean("abcdef", 4), "abc…");
        assert_eq!(clean("abcd", 4), "abcd");
        assert_eq!(clean("a\nb", 10), "a\\nb");
        assert_eq!(short_time("2026-01-02T03:04:05.678Z"), "2026-01-02T03:04:05Z");
        assert_eq!(short_time("123ms"), "123ms");
        let mut t = Table::new(&["A", "NUM", "LAST"], &[false, true, false]);
        let mut out = Vec::new();
        t.write(&mut out, &[vec!["xyz".into(), "7".into(), "end".into()]]).unwrap();
        t.write(&mut out, &[vec!["x".into(), "1234".into(), "e".into()]]).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "A    NUM  LAST\nxyz    7  end\nx    1234  e\n");
    }
}
