//! System benchmark: machine limits, then real nodes on loopback (REST ingest, propagation over
//! QUIC, catch-up, TAXII), printed as one table with each figure's ratio to its machine limit and
//! its target. `scripts/bench.sh` is the way to run it (it also adds the medallion comparison).
//!
//! Flags (after `--`): `--full` (1,000,000-entry catch-up), `--smoke` (tiny sizes, seconds; for
//! CI: it checks that the harness runs and asserts no timing; also what `cargo test --all-targets`
//! gets, since it passes no `--bench`). `CTIX_BENCH_MEDALLION=FILE` adds
//! the TAXII rows measured by `benches/medallion.sh` (same Python client against both servers).
//! Medians are of `RUNS` runs; every ratio is of figures measured in the same run.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use ctix::client::Api;
use ctix::config::{Config, Role};
use ctix::model::{Body, Indicator, IndicatorInput, NodeName};
use ctix::node::{self, Running};
use ctix::store::Store;
use ctix::view::SubmitRequest;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde_json::{Value, json};

/// The daemon's allocator (`src/main.rs`), so that the in-process nodes run as `ctix run` does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Runs per figure; the median is reported.
const RUNS: usize = 3;
/// Entries per sled batch and per REST batch: the figures are for batches of 1,000.
const BATCH: usize = 1_000;
/// Signatures per `verify_batch` call, as replication verifies them.
const VERIFY_BATCH: usize = 256;
/// Bytes signed per entry: about an encoded entry header.
const SIGNED_BYTES: usize = 160;
/// Bytes written per sled record: about an entry with a short description and its index rows.
const RECORD_BYTES: usize = 400;
/// Start-up own-head wait for benchmark nodes: nobody else will confirm their heads.
const OWN_HEAD_WAIT_MS: u64 = 50;
const TAXII_MEDIA: &str = "application/taxii+json;version=2.1";
/// TLP:GREEN's STIX marking definition.
const TLP_GREEN: &str = "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da";

/// Workload sizes for one mode.
struct Sizes {
    signs: usize,
    verify_batches: usize,
    sled_batches: usize,
    /// One-record commits timed for the commit-latency limit.
    commits: usize,
    ingest_batches: usize,
    single_submits: usize,
    propagation_rate: u64,
    propagation_secs: f64,
    /// Batches of `BATCH` appended at EE at once for the burst figure.
    burst_batches: usize,
    catchup_entries: usize,
    /// Entries ingested for the footprint figures (RSS, disk, start-up).
    footprint_entries: usize,
    taxii_objects: usize,
    /// Federation sizes for `drill simulate`.
    scale_nodes: &'static [usize],
}

impl Sizes {
    fn new(full: bool, smoke: bool) -> Sizes {
        if smoke {
            return Sizes {
                signs: 500,
                verify_batches: 2,
                sled_batches: 2,
                commits: 10,
                ingest_batches: 2,
                single_submits: 20,
                propagation_rate: 200,
                propagation_secs: 0.5,
                burst_batches: 1,
                catchup_entries: 2_000,
                footprint_entries: 2_000,
                taxii_objects: 1_000,
                scale_nodes: &[3, 8],
            };
        }
        Sizes {
            signs: 20_000,
            verify_batches: 40,
            sled_batches: 20,
            commits: 100,
            ingest_batches: 20,
            single_submits: 300,
            propagation_rate: 1_000,
            propagation_secs: 4.0,
            burst_batches: 10,
            catchup_entries: if full { 1_000_000 } else { 100_000 },
            footprint_entries: if full { 1_000_000 } else { 100_000 },
            taxii_objects: 10_000,
            scale_nodes: &[3, 8, 16, 32],
        }
    }
}

/// One line of the final table.
struct Row {
    figure: String,
    value: String,
    limit: String,
    ratio: String,
    target: String,
}

fn row(figure: impl Into<String>, value: impl Into<String>, target: impl Into<String>) -> Row {
    Row { figure: figure.into(), value: value.into(), limit: "".into(), ratio: "".into(), target: target.into() }
}

fn limited(figure: &str, value: f64, limit: f64, target: impl Into<String>) -> Row {
    Row {
        figure: figure.into(),
        value: format!("{value:.0}"),
        limit: format!("{limit:.0}"),
        ratio: format!("{:.2}", value / limit),
        target: target.into(),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // `cargo test --all-targets` (CI) runs this without `--bench`: it gets the smoke run.
    let smoke = args.iter().any(|a| a == "--smoke") || !args.iter().any(|a| a == "--bench");
    let full = args.iter().any(|a| a == "--full");
    let sizes = Sizes::new(full, smoke);
    let runs = if smoke { 1 } else { RUNS };
    println!(
        "ctix system bench: {} mode, median of {runs} runs",
        if smoke {
            "smoke"
        } else if full {
            "full"
        } else {
            "default"
        }
    );
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let mut rows = Vec::new();

    // `--only a,b`: just those figures (for profiling one path); limits are then measured only
    // if named too, and ratios to unmeasured limits print as NaN.
    let only: Option<Vec<String>> = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .map(|s| s.split(',').map(str::to_owned).collect());
    let want = |figure: &str| only.as_ref().is_none_or(|o| o.iter().any(|x| x == figure));

    let (mut sign, mut verify, mut sled_w, mut commit_ms) = (f64::NAN, f64::NAN, f64::NAN, f64::NAN);
    if want("limits") {
        sign = median((0..runs).map(|_| sign_rate(sizes.signs)).collect());
        verify = median((0..runs).map(|_| verify_rate(sizes.verify_batches)).collect());
        sled_w = median((0..runs).map(|r| sled_rate(sizes.sled_batches, r)).collect());
        commit_ms = commit_latency(sizes.commits);
        println!(
            "limits: sign {sign:.0}/s, batch verify {verify:.0}/s, sled batch write {sled_w:.0}/s, commit p50 {commit_ms:.2} ms"
        );
        rows.push(row("limit: ed25519 sign/s (1 core)", format!("{sign:.0}"), ""));
        rows.push(row(format!("limit: ed25519 verify_batch/s ({VERIFY_BATCH} per batch)"), format!("{verify:.0}"), ""));
        rows.push(row(format!("limit: sled write/s ({BATCH} per batch, 1 flush)"), format!("{sled_w:.0}"), ""));
        rows.push(row("limit: one-record commit, flush + fsync, p50 (ms)", format!("{commit_ms:.2}"), ""));
    }

    if want("ingest") {
        let (ingest, p50, p99) = rt.block_on(ingest(&sizes, runs));
        println!("ingest: {ingest:.0}/s; single submit p50 {p50:.2} ms, p99 {p99:.2} ms");
        rows.push(limited("ingest: REST batches of 1,000, durable/s", ingest, sign.min(sled_w), "≥ 30,000"));
        rows.push(row("ingest: single submit p50 / p99 (ms)", format!("{p50:.2} / {p99:.2}"), ""));
    }

    if want("propagation") {
        let prop = rt.block_on(propagation(&sizes, Load::Steady));
        println!("propagation: {prop}");
        rows.push(Row {
            figure: format!("propagation p50 / p99 / max (ms) at {}/s", sizes.propagation_rate),
            value: prop,
            limit: format!("{commit_ms:.2}"),
            ratio: "".into(),
            target: "p50 ≤ 3, p99 ≤ 10".into(),
        });
    }

    if want("burst") {
        let prop = rt.block_on(propagation(&sizes, Load::Burst));
        println!("burst: {prop}");
        rows.push(row(
            format!("propagation p50 / p99 / max (ms), burst of {} at once", sizes.burst_batches * BATCH),
            prop,
            "",
        ));
    }

    if want("catchup") {
        let (catchup, took) = rt.block_on(catch_up(sizes.catchup_entries));
        println!("catch-up: {} entries in {took:.2} s, {catchup:.0}/s", sizes.catchup_entries);
        rows.push(limited(
            &format!("catch-up of {} entries, entries/s", sizes.catchup_entries),
            catchup,
            verify.min(sled_w),
            "≥ 40,000",
        ));
        rows.push(row("catch-up total time (s)", format!("{took:.2}"), ""));
    }

    if want("taxii") {
        let taxii: Vec<(f64, f64)> = (0..runs).map(|_| rt.block_on(taxii(sizes.taxii_objects))).collect();
        let add = median(taxii.iter().map(|t| t.0).collect());
        let read = median(taxii.iter().map(|t| t.1).collect());
        println!("taxii (Rust client): add {add:.0}/s, read {read:.0}/s");
        rows.push(limited("TAXII add (Rust client, 1,000/envelope) objects/s", add, sign.min(sled_w), ""));
        rows.push(row("TAXII read `all` (Rust client, 1,000/page) objects/s", format!("{read:.0}"), ""));
        rows.extend(medallion_rows());
    }

    if want("footprint") {
        let f = footprint(sizes.footprint_entries);
        let n = sizes.footprint_entries;
        println!(
            "footprint: {n} entries ingested at {:.0}/s; peak RSS {:.0} MiB, RSS after start {:.0} MiB; disk {:.0} MiB for {:.0} MiB of entries ({:.2}x); start-up {:.2} s",
            f.ingest_rate,
            mib(f.peak_rss),
            mib(f.start_rss),
            mib(f.disk),
            mib(f.raw),
            f.disk as f64 / f.raw as f64,
            f.start_secs
        );
        rows.push(limited(
            &format!("footprint: ingest of {n} via REST (ctix run), durable/s"),
            f.ingest_rate,
            sign.min(sled_w),
            "",
        ));
        rows.push(row(
            format!("footprint: peak RSS / RSS after restart (MiB), {n} entries"),
            format!("{:.0} / {:.0}", mib(f.peak_rss), mib(f.start_rss)),
            "≤ 200",
        ));
        rows.push(Row {
            figure: format!("footprint: disk (MiB) for raw entry bytes (MiB), {n} entries"),
            value: format!("{:.0} for {:.0}", mib(f.disk), mib(f.raw)),
            limit: "".into(),
            ratio: format!("{:.2}×", f.disk as f64 / f.raw as f64),
            target: "≤ 2× raw".into(),
        });
        rows.push(row(format!("footprint: start-up with {n} entries (s)"), format!("{:.2}", f.start_secs), "≤ 2"));
    }

    if want("scale") {
        for &n in sizes.scale_nodes {
            let s = scale(n);
            println!("scale: {n} nodes: {s}");
            rows.push(row(
                format!("scale: drill simulate, {n} nodes: delivery p50 / max (ms); KiB sent per node"),
                s,
                "",
            ));
        }
    }
    print_table(&rows);
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// The `p`th percentile (0–100) of `v`, nearest rank.
fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let i = ((p / 100.0) * (v.len() - 1) as f64).round() as usize;
    v[i]
}

fn print_table(rows: &[Row]) {
    let w = rows.iter().map(|r| r.figure.chars().count()).max().unwrap_or(10);
    println!();
    println!("| {:w$} | {:>24} | {:>10} | {:>8} | {:<18} |", "figure", "ctix", "limit", "ratio", "target");
    println!("|{}|{}:|{}:|{}:|{}|", "-".repeat(w + 2), "-".repeat(25), "-".repeat(11), "-".repeat(9), "-".repeat(20));
    for r in rows {
        println!("| {:w$} | {:>24} | {:>10} | {:>8} | {:<18} |", r.figure, r.value, r.limit, r.ratio, r.target);
    }
}

// ---- machine limits -------------------------------------------------------------------------

/// ed25519 signatures per second on this thread.
fn sign_rate(n: usize) -> f64 {
    let key = SigningKey::from_bytes(&[7; 32]);
    let mut msg = vec![0u8; SIGNED_BYTES];
    let start = Instant::now();
    for i in 0..n {
        msg[..8].copy_from_slice(&(i as u64).to_le_bytes());
        std::hint::black_box(key.sign(&msg));
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// Signatures per second verified by `ed25519_dalek::verify_batch` in batches of `VERIFY_BATCH`.
fn verify_rate(batches: usize) -> f64 {
    let keys: Vec<SigningKey> = (0..3u8).map(|i| SigningKey::from_bytes(&[i + 1; 32])).collect();
    let msgs: Vec<Vec<u8>> = (0..VERIFY_BATCH).map(|i| vec![i as u8; SIGNED_BYTES]).collect();
    let sigs: Vec<Signature> = msgs.iter().enumerate().map(|(i, m)| keys[i % 3].sign(m)).collect();
    let vks: Vec<VerifyingKey> = (0..VERIFY_BATCH).map(|i| keys[i % 3].verifying_key()).collect();
    let refs: Vec<&[u8]> = msgs.iter().map(|m| m.as_slice()).collect();
    let start = Instant::now();
    for _ in 0..batches {
        ed25519_dalek::verify_batch(&refs, &sigs, &vks).unwrap();
    }
    (batches * VERIFY_BATCH) as f64 / start.elapsed().as_secs_f64()
}

/// Records per second written to a fresh sled db in batches of `BATCH`, one flush per batch.
fn sled_rate(batches: usize, run: usize) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let db = sled::open(dir.path()).unwrap();
    let tree = db.open_tree("bench-1").unwrap();
    let value = vec![0x5au8; RECORD_BYTES];
    let start = Instant::now();
    for b in 0..batches {
        let mut batch = sled::Batch::default();
        for i in 0..BATCH {
            let key = ((run * batches + b) * BATCH + i) as u64;
            batch.insert(&key.to_be_bytes(), value.as_slice());
        }
        tree.apply_batch(batch).unwrap();
        db.flush().unwrap();
    }
    (batches * BATCH) as f64 / start.elapsed().as_secs_f64()
}

/// p50 ms of committing one small record as the store does before an acknowledgement: a sled
/// insert, `Db::flush`, then `sync_data` of sled's data file. The floor of every durable hop.
fn commit_latency(n: usize) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let db = sled::open(dir.path()).unwrap();
    let tree = db.open_tree("bench-1").unwrap();
    let file = std::fs::File::open(dir.path().join("db")).unwrap();
    let value = vec![0x5au8; RECORD_BYTES];
    let mut lat: Vec<f64> = (0..n as u64)
        .map(|i| {
            let start = Instant::now();
            tree.insert(i.to_be_bytes(), value.as_slice()).unwrap();
            db.flush().unwrap();
            file.sync_data().unwrap();
            start.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    percentile(&mut lat, 50.0)
}

// ---- nodes ----------------------------------------------------------------------------------

/// A dev federation in a temporary directory.
struct Fed {
    _dir: tempfile::TempDir,
    configs: Vec<(String, PathBuf)>,
}

fn federation(nodes: &[&str]) -> Fed {
    let dir = tempfile::tempdir().unwrap();
    let names: Vec<NodeName> = nodes.iter().map(|n| NodeName::new(n).unwrap()).collect();
    let fed = ctix::devfed::generate(dir.path(), &names, free_base_port(nodes.len() as u16)).unwrap();
    let configs = fed.nodes.into_iter().map(|(n, p)| (n.to_string(), p)).collect();
    Fed { _dir: dir, configs }
}

/// `n` consecutive free UDP ports on loopback (the APIs take OS-chosen ports).
fn free_base_port(n: u16) -> u16 {
    let seed = (std::process::id() % 2_000) as u16 * 10;
    for block in 0..500u16 {
        let base = 20_000 + (seed + block * 10) % 30_000;
        if (0..n).all(|i| std::net::UdpSocket::bind(("127.0.0.1", base + i)).is_ok()) {
            return base;
        }
    }
    panic!("no free UDP ports on loopback");
}

fn config(fed: &Fed, node: &str) -> Config {
    let path = &fed.configs.iter().find(|(n, _)| n == node).unwrap().1;
    let mut c = Config::load(path).unwrap();
    c.own_head_wait_ms = OWN_HEAD_WAIT_MS;
    c.api_listen = "127.0.0.1:0".parse().unwrap();
    c
}

async fn start(fed: &Fed, node: &str) -> Running {
    node::start(config(fed, node)).await.unwrap_or_else(|e| panic!("starting {node}: {e}"))
}

/// The node's first read-write token.
fn rw_token(fed: &Fed, node: &str) -> String {
    config(fed, node).api_tokens.iter().find(|t| t.role == Role::Rw).unwrap().token.clone()
}

fn input(value: String) -> IndicatorInput {
    IndicatorInput { itype: "domain".into(), value, description: "x".repeat(120), ..Default::default() }
}

fn body(value: String) -> Body {
    Body::Indicator(Indicator::from_input(&input(value), ctix::now_ms()).unwrap())
}

/// Waits until `store` holds `origin` up to `seq`; panics after `secs`.
async fn wait_seq(store: &Store, origin: &NodeName, seq: u64, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while store.head(origin).is_none_or(|t| t.seq < seq) {
        assert!(Instant::now() < deadline, "{origin}:{seq} did not arrive within {secs} s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

// ---- ingest ---------------------------------------------------------------------------------

/// Durable indicators/s through `POST /api/v1/indicators` (two clients, batches of `BATCH`;
/// median of `runs`), then p50/p99 ms of single `POST /api/v1/indicator` submissions.
async fn ingest(sizes: &Sizes, runs: usize) -> (f64, f64, f64) {
    let fed = federation(&["ee"]);
    let ee = start(&fed, "ee").await;
    let api = Arc::new(Api::new(&format!("http://{}", ee.api_addr), &rw_token(&fed, "ee")).unwrap());
    let mut rates = Vec::new();
    for run in 0..runs {
        let batches = sizes.ingest_batches;
        let work: Vec<Vec<SubmitRequest>> = (0..2)
            .map(|c| {
                (0..batches / 2)
                    .map(|b| SubmitRequest {
                        indicators: (0..BATCH).map(|i| input(format!("i{run}-{c}-{b}-{i}.example.com"))).collect(),
                        atomic: false,
                    })
                    .collect()
            })
            .collect();
        let start = Instant::now();
        let clients: Vec<_> = work
            .into_iter()
            .map(|reqs| {
                let api = api.clone();
                tokio::task::spawn_blocking(move || {
                    for r in reqs {
                        assert_eq!(api.submit_batch(&r).unwrap().accepted, BATCH);
                    }
                })
            })
            .collect();
        for c in clients {
            c.await.unwrap();
        }
        rates.push(((batches / 2) * 2 * BATCH) as f64 / start.elapsed().as_secs_f64());
    }
    let n = sizes.single_submits;
    let api2 = api.clone();
    let mut lat = tokio::task::spawn_blocking(move || {
        (0..n)
            .map(|i| {
                let one = input(format!("single-{i}.example.com"));
                let t = Instant::now();
                assert_eq!(api2.submit_one(&one).unwrap().accepted, 1);
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect::<Vec<f64>>()
    })
    .await
    .unwrap();
    ee.stop().await;
    (median(rates), percentile(&mut lat, 50.0), percentile(&mut lat, 99.0))
}

// ---- propagation ----------------------------------------------------------------------------

/// How EE is loaded in a propagation run.
#[derive(Clone, Copy, PartialEq)]
enum Load {
    /// Single indicators at a steady `propagation_rate` for `propagation_secs`.
    Steady,
    /// `burst_batches` appends of `BATCH` indicators, all queued at once.
    Burst,
}

/// Loads EE (see `Load`) and times each entry from EE's acknowledgement (durable at EE) to its
/// first sighting as durable at LV and at LT, polling `Store::head` every 100 µs. Returns
/// "p50 / p99 / max" in ms over both receivers.
async fn propagation(sizes: &Sizes, load: Load) -> String {
    let fed = federation(&["ee", "lv", "lt"]);
    let (ee, lv, lt) = (start(&fed, "ee").await, start(&fed, "lv").await, start(&fed, "lt").await);
    let origin = NodeName::new("ee").unwrap();
    // Warm up: connections established and one entry through.
    ee.handle.append(vec![body("warm.example.com".into())]).await.unwrap();
    for n in [&lv, &lt] {
        wait_seq(&n.handle.store, &origin, 1, 30).await;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let pollers: Vec<_> = [&lv, &lt]
        .into_iter()
        .map(|n| {
            let (store, stop, origin) = (n.handle.store.clone(), stop.clone(), origin.clone());
            std::thread::spawn(move || poll_arrivals(&store, &origin, &stop))
        })
        .collect();
    let acks: Arc<Mutex<Vec<(u64, Instant)>>> = Arc::default();
    let mut tasks = Vec::new();
    let start = Instant::now();
    let total = match load {
        Load::Steady => {
            let total = (sizes.propagation_rate as f64 * sizes.propagation_secs) as usize;
            let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / sizes.propagation_rate));
            for i in 0..total {
                tick.tick().await;
                let (h, acks) = (ee.handle.clone(), acks.clone());
                tasks.push(tokio::spawn(async move {
                    let got = h.append(vec![body(format!("p{i}.example.com"))]).await.unwrap();
                    let seq = got[0].as_ref().unwrap().tip().seq;
                    acks.lock().unwrap().push((seq, Instant::now()));
                }));
            }
            total
        }
        Load::Burst => {
            let batches: Vec<Vec<Body>> = (0..sizes.burst_batches)
                .map(|b| (0..BATCH).map(|i| body(format!("b{b}-{i}.example.com"))).collect())
                .collect();
            for bodies in batches {
                let (h, acks) = (ee.handle.clone(), acks.clone());
                tasks.push(tokio::spawn(async move {
                    let got = h.append(bodies).await.unwrap();
                    let at = Instant::now();
                    acks.lock().unwrap().extend(got.iter().map(|r| (r.as_ref().unwrap().tip().seq, at)));
                }));
            }
            sizes.burst_batches * BATCH
        }
    };
    for t in tasks {
        t.await.unwrap();
    }
    let offered = total as f64 / start.elapsed().as_secs_f64();
    let last = ee.handle.store.head(&origin).unwrap().seq;
    for n in [&lv, &lt] {
        wait_seq(&n.handle.store, &origin, last, 60).await;
    }
    stop.store(true, Ordering::Relaxed);
    let acks = acks.lock().unwrap().clone();
    let mut lat = Vec::new();
    for p in pollers {
        let seen = p.join().unwrap();
        for (seq, acked) in &acks {
            let at = seen.get(*seq as usize).copied().flatten().expect("every entry was seen");
            lat.push(at.saturating_duration_since(*acked).as_secs_f64() * 1e3);
        }
    }
    for n in [ee, lv, lt] {
        n.stop().await;
    }
    println!("propagation: offered {offered:.0}/s, {} samples", lat.len());
    let (p50, p99) = (percentile(&mut lat, 50.0), percentile(&mut lat, 99.0));
    format!("{p50:.2} / {p99:.2} / {:.2}", lat.last().unwrap())
}

/// Watches `origin`'s head in `store` until `stop`; index `seq` holds when it was first seen.
fn poll_arrivals(store: &Store, origin: &NodeName, stop: &AtomicBool) -> Vec<Option<Instant>> {
    let mut seen = vec![None];
    let mut last = 0;
    while !stop.load(Ordering::Relaxed) {
        // Woken by the commit that moves the head: no polling load on the nodes measured.
        let head = store.wait_for_head(origin, last, Duration::from_millis(20)).map_or(0, |t| t.seq);
        if head > last {
            let now = Instant::now();
            seen.resize(head as usize + 1, Some(now));
            last = head;
        }
    }
    seen
}

// ---- catch-up -------------------------------------------------------------------------------

/// Appends `n` entries at EE while LT is offline, starts LT and times it until its heads match
/// EE's. Returns (entries/s, seconds from LT's start).
async fn catch_up(n: usize) -> (f64, f64) {
    let fed = federation(&["ee", "lt"]);
    let ee = start(&fed, "ee").await;
    let chunk = ctix::store::BATCH_ENTRIES_MAX;
    let mut done = 0;
    while done < n {
        let k = chunk.min(n - done);
        let bodies = (done..done + k).map(|i| body(format!("c{i}.example.com"))).collect();
        ee.handle.append(bodies).await.unwrap();
        done += k;
    }
    let want = ee.handle.store.heads();
    let start = Instant::now();
    let lt = self::start(&fed, "lt").await;
    let deadline = start + Duration::from_secs(60 + n as u64 / 1_000);
    while lt.handle.store.heads() != want {
        assert!(Instant::now() < deadline, "lt did not catch up");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let took = start.elapsed().as_secs_f64();
    for node in [ee, lt] {
        node.stop().await;
    }
    (n as f64 / took, took)
}

// ---- TAXII ----------------------------------------------------------------------------------

/// Adds `n` indicators to a fresh node's inbox (envelopes of 1,000) and pages them back from
/// `all` (pages of 1,000), over HTTP with basic auth. Returns (add objects/s, read objects/s).
async fn taxii(n: usize) -> (f64, f64) {
    let fed = federation(&["ee"]);
    let ee = start(&fed, "ee").await;
    let base = format!("http://{}/taxii2/api/collections", ee.api_addr);
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("analysts:{}", rw_token(&fed, "ee")))
    );
    let out = tokio::task::spawn_blocking(move || taxii_client(&base, &auth, n)).await.unwrap();
    ee.stop().await;
    out
}

fn taxii_client(base: &str, auth: &str, n: usize) -> (f64, f64) {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).proxy(None).build().into();
    let envelopes: Vec<String> = (0..n.div_ceil(1_000))
        .map(|e| {
            let objects: Vec<Value> = (e * 1_000..((e + 1) * 1_000).min(n)).map(stix_indicator).collect();
            json!({ "objects": objects }).to_string()
        })
        .collect();
    let start = Instant::now();
    for env in envelopes {
        let mut r = agent
            .post(&format!("{base}/inbox/objects/"))
            .header("Authorization", auth)
            .header("Accept", TAXII_MEDIA)
            .header("Content-Type", TAXII_MEDIA)
            .send(env.as_bytes())
            .unwrap();
        let status: Value = serde_json::from_slice(&r.body_mut().read_to_vec().unwrap()).unwrap();
        assert_eq!(status["failure_count"], json!(0), "{status}");
    }
    let add = n as f64 / start.elapsed().as_secs_f64();
    let start = Instant::now();
    let (mut got, mut next) = (0, None::<String>);
    loop {
        let mut url = format!("{base}/all/objects/?limit=1000");
        if let Some(c) = &next {
            url += &format!("&next={c}");
        }
        let mut r = agent.get(&url).header("Authorization", auth).header("Accept", TAXII_MEDIA).call().unwrap();
        assert_eq!(r.status(), 200);
        let page: Value = serde_json::from_slice(&r.body_mut().read_to_vec().unwrap()).unwrap();
        got += page["objects"].as_array().map_or(0, Vec::len);
        match (page["more"].as_bool(), page["next"].as_str()) {
            (Some(true), Some(c)) => next = Some(c.to_owned()),
            _ => break,
        }
    }
    assert_eq!(got, n, "objects read back");
    (add, got as f64 / start.elapsed().as_secs_f64())
}

/// A STIX 2.1 indicator ctix imports: a domain pattern, TLP:GREEN.
fn stix_indicator(i: usize) -> Value {
    json!({
        "type": "indicator",
        "spec_version": "2.1",
        "id": format!("indicator--{}", uuid::Uuid::new_v4()),
        "created": "2026-11-29T08:00:00.000Z",
        "modified": "2026-11-29T08:00:00.000Z",
        "pattern": format!("[domain-name:value = 't{i}-{}.example.net']", std::process::id()),
        "pattern_type": "stix",
        "valid_from": "2026-11-29T08:00:00Z",
        "object_marking_refs": [TLP_GREEN],
    })
}

// ---- footprint ------------------------------------------------------------------------------

/// What `footprint` measured.
struct Footprint {
    ingest_rate: f64,
    /// Highest RSS of the node process while it ingested (VmHWM), bytes.
    peak_rss: u64,
    /// RSS of a restarted node once its API answers, bytes.
    start_rss: u64,
    /// Bytes of the data dir's files after a clean stop.
    disk: u64,
    /// Bytes of the encoded entries alone (`Store::entry_bytes`).
    raw: u64,
    /// From spawning the restarted node to its first `/healthz` 200.
    start_secs: f64,
}

fn mib(b: u64) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

/// Runs `ctix run` (the real daemon, its own process) for a one-node federation, ingests `n`
/// indicators through the REST batch API (two clients), and reads the process's peak RSS; stops
/// it, measures the data dir against the raw entry bytes, then restarts it and times it until
/// `/healthz` answers 200.
fn footprint(n: usize) -> Footprint {
    let fed = federation(&["ee"]);
    let path = fed.configs[0].1.clone();
    let cfg = Config::load(&path).unwrap();
    let base = format!("http://{}", cfg.api_listen);
    let token = rw_token(&fed, "ee");
    let (mut child, _) = spawn_node(&path, &base);
    let api = Arc::new(Api::new(&base, &token).unwrap());
    let start = Instant::now();
    let per_client = n.div_ceil(2);
    let clients: Vec<_> = (0..2)
        .map(|c| {
            let api = api.clone();
            std::thread::spawn(move || {
                let mut done = 0;
                while done < per_client {
                    let k = BATCH.min(per_client - done);
                    let req = SubmitRequest {
                        indicators: (done..done + k).map(|i| input(format!("f{c}-{i}.example.com"))).collect(),
                        atomic: false,
                    };
                    assert_eq!(api.submit_batch(&req).unwrap().accepted, k);
                    done += k;
                }
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    let ingest_rate = (2 * per_client) as f64 / start.elapsed().as_secs_f64();
    let peak_rss = proc_status_kib(child.id(), "VmHWM") * 1024;
    stop_node(&mut child);
    let disk = dir_bytes(&cfg.data_dir);
    // The first start after the ingest is the one timed: sled 0.34 writes its recovery snapshot
    // only when it opens a store, so this start replays the log written since the last open
    // (any earlier open, such as the count below, would hide that cost).
    let (mut child, start_secs) = spawn_node(&path, &base);
    let start_rss = proc_status_kib(child.id(), "VmRSS") * 1024;
    stop_node(&mut child);
    let store = Store::open(&cfg.data_dir, &ctix::store::StoreOptions::default()).unwrap();
    let (entries, raw) = store.entry_bytes().unwrap();
    assert_eq!(entries, (2 * per_client) as u64, "entries held after the stop");
    drop(store);
    Footprint { ingest_rate, peak_rss, start_rss, disk, raw, start_secs }
}

/// Starts `ctix run --config path` and waits for `/healthz` to answer 200; returns the child
/// and the seconds that took.
// The caller waits for the child (`stop_node`); a panic ends the bench and its children go too.
#[allow(clippy::zombie_processes)]
fn spawn_node(path: &std::path::Path, base: &str) -> (std::process::Child, f64) {
    let start = Instant::now();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ctix"))
        .args(["run", "--config"])
        .arg(path)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).proxy(None).build().into();
    let deadline = start + Duration::from_secs(120);
    loop {
        if let Ok(r) = agent.get(&format!("{base}/healthz")).call()
            && r.status() == 200
        {
            return (child, start.elapsed().as_secs_f64());
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("ctix run did not answer /healthz within 120 s");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// SIGTERM, then wait for the clean stop.
fn stop_node(child: &mut std::process::Child) {
    let _ = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let status = child.wait().unwrap();
    assert!(status.success(), "ctix run exited with {status}");
}

/// A `/proc/PID/status` field in KiB (0 where there is no procfs).
fn proc_status_kib(pid: u32, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':')?.trim().strip_suffix("kB")?.trim().parse().ok())
        .unwrap_or(0)
}

/// Total size of the files under `dir`.
fn dir_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            if m.is_dir() { dir_bytes(&e.path()) } else { m.len() }
        })
        .sum()
}

// ---- scale ----------------------------------------------------------------------------------

/// `ctix drill simulate` of `deploy/drills/comms-check.toml` grown to `nodes` members (seed 1,
/// links from the capitals' distances): "delivery p50 / max ms; KiB sent per node".
fn scale(nodes: usize) -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/drills/comms-check.toml");
    let scenario = ctix::drill::scenario::load(std::path::Path::new(path)).unwrap();
    let opts = ctix::drill::simulate::SimOptions { nodes: Some(nodes), seed: 1, latency_ms: None, loss: 0.0 };
    let started = Instant::now();
    let out = ctix::drill::simulate::simulate(&scenario, &opts).unwrap();
    let wall = started.elapsed().as_secs_f64();
    let end = out.records.iter().map(|r| r.created_ms).max().unwrap_or(0);
    let report = ctix::drill::report::build(&out.records, end, &[]).unwrap();
    let l = report.latency;
    let n = out.nodes.len() as f64;
    println!("scale: {} nodes simulated in {wall:.1} s, {} messages", out.nodes.len(), out.messages);
    for (kind, t) in &out.by_kind {
        println!(
            "scale: {} nodes: {kind}: {:.1} messages, {:.1} KiB per node",
            out.nodes.len(),
            t.messages as f64 / n,
            t.bytes as f64 / n / 1024.0
        );
    }
    format!(
        "{} / {} ms; {:.0} KiB",
        l.p50_ms.map_or("-".into(), |v| v.to_string()),
        l.max_ms.map_or("-".into(), |v| v.to_string()),
        out.bytes as f64 / n / 1024.0
    )
}

/// Rows from `benches/medallion.sh`'s JSON (`CTIX_BENCH_MEDALLION`), if it ran. medallion's read
/// may be cut by the script's time budget: then its figure is over the objects it read, or, when
/// it read none, an upper bound (N / budget) shown as "< X", and the ratio as a lower bound.
fn medallion_rows() -> Vec<Row> {
    let Ok(path) = std::env::var("CTIX_BENCH_MEDALLION") else {
        return vec![row("TAXII vs medallion", "not run (scripts/bench.sh without --smoke)", "")];
    };
    let v: Value = match std::fs::read_to_string(&path)
        .map_err(|e| e.to_string())
        .and_then(|t| serde_json::from_str(&t).map_err(|e| format!("not JSON ({e}): rerun benches/medallion.sh")))
    {
        Ok(v) => v,
        Err(e) => return vec![row("TAXII vs medallion", format!("no results ({path}: {e})"), "")],
    };
    let f = |who: &str, what: &str| v[who][what].as_f64().unwrap_or(f64::NAN);
    let client = v["client"].as_str().unwrap_or("taxii2-client");
    let n = v["objects"].as_u64().unwrap_or(0);
    let budget = v["read_budget_s"].as_f64().unwrap_or(f64::NAN);
    let read_objects = v["medallion"]["read_objects"].as_u64().unwrap_or(0);
    let bound = v["medallion"]["read_upper_bound"].as_bool().unwrap_or(false);
    let cut = v["medallion"]["budget_hit"].as_bool().unwrap_or(false);
    ["add", "read"]
        .iter()
        .map(|what| {
            let (c, m) = (f("ctix", what), f("medallion", what));
            let (figure, value, ratio) = if *what == "add" {
                (
                    format!("TAXII add ({client}, {} obj., 1,000/envelope) objects/s, ctix / medallion", thousands(n)),
                    format!("{c:.0} / {m:.0}"),
                    format!("{:.1}×", c / m),
                )
            } else {
                let note = if cut {
                    format!("; medallion read {} of {} in {budget:.0} s budget", thousands(read_objects), thousands(n))
                } else {
                    String::new()
                };
                let (lt, gt) = if bound { ("< ", "> ") } else { ("", "") };
                (
                    format!(
                        "TAXII read ({client}, {} obj., 1,000/page{note}) objects/s, ctix / medallion",
                        thousands(n)
                    ),
                    format!("{c:.0} / {lt}{m:.0}"),
                    format!("{gt}{:.1}×", c / m),
                )
            };
            Row {
                figure,
                value,
                limit: "".into(),
                ratio,
                target: if *what == "add" { "≥ 20× medallion" } else { "≥ 1,000× medallion" }.into(),
            }
        })
        .collect()
}

/// A count with thousands separators, as the table's labels write them (10,000).
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}
