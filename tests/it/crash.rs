//! Crash durability of the daemon: `ctix run` killed with SIGKILL at seeded random points while
//! clients submit batches through its REST API, and while it catches up from a peer. After every
//! restart each acknowledged indicator is present, and at the end the chains verify and the node
//! converges with its peer.
//!
//! Rounds: `CTIX_CRASH_ROUNDS` (default 3 per scenario; e.g. 50 for a long run); seed:
//! `CTIX_CRASH_SEED` (default random, printed so a failure can be replayed).

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ctix::client::Api;
use ctix::config::{ConfigFile, Role};
use ctix::model::IndicatorInput;
use ctix::sim::Rng;
use ctix::view::SubmitRequest;

use crate::federation::{Fed, append, dev_federation, ind, start};

fn rounds() -> u64 {
    std::env::var("CTIX_CRASH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(3)
}

fn seed() -> u64 {
    let seed = std::env::var("CTIX_CRASH_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or_else(ctix::now_ms);
    eprintln!("crash seed: {seed} (replay with CTIX_CRASH_SEED={seed})");
    seed
}

/// A node of `fed` run as its own `ctix run` process, with its API address and tokens.
struct Daemon {
    config: PathBuf,
    url: String,
    rw: String,
    child: Option<Child>,
}

impl Daemon {
    /// Prepares `node`'s config: a short own-head wait, so that a restarted node appends soon.
    fn new(fed: &Fed, node: &str) -> Daemon {
        let config = fed.configs[node].clone();
        let mut file: ConfigFile = toml::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
        file.startup.own_head_wait_ms = 1_000;
        std::fs::write(&config, toml::to_string(&file).unwrap()).unwrap();
        let rw = file.api.tokens.iter().find(|t| t.role == Role::Rw).unwrap().token.clone();
        Daemon { url: format!("http://{}", file.api.listen), config, rw, child: None }
    }

    fn api(&self) -> Api {
        Api::new(&self.url, &self.rw).unwrap()
    }

    /// Starts `ctix run` and waits until its API answers and it accepts appends.
    fn start(&mut self) {
        assert!(self.child.is_none(), "already running");
        let mut child = Command::new(env!("CARGO_BIN_EXE_ctix"))
            .args(["run", "--config"])
            .arg(&self.config)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Keep draining its log, so that it never blocks on a full pipe.
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || for _ in BufReader::new(stderr).lines().map_while(Result::ok) {});
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if self.api().status().is_ok_and(|s| s.ready) {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("ctix run exited at start-up: {status}");
            }
            assert!(Instant::now() < deadline, "the node did not become ready within 30 s");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL, and wait for the process to be gone.
    fn kill9(&mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// SIGTERM and a clean exit.
    fn stop(&mut self) {
        let mut child = self.child.take().expect("running");
        let ok = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
        assert!(ok.success());
        assert!(child.wait().unwrap().success(), "a clean stop after SIGTERM");
    }

    /// Every indicator value the node shows.
    fn values(&self) -> BTreeSet<String> {
        let api = self.api();
        let mut out = BTreeSet::new();
        let mut after: Option<u64> = None;
        loop {
            let mut params = vec![("limit", "1000".to_string())];
            if let Some(a) = after {
                params.push(("after", a.to_string()));
            }
            let page = api.query(&params).unwrap();
            out.extend(page.items.into_iter().map(|v| v.value));
            match page.next {
                Some(n) => after = Some(n),
                None => return out,
            }
        }
    }

    fn data_dir(&self) -> PathBuf {
        self.config.parent().unwrap().join("data")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `ctix store verify` on a stopped node's data dir.
fn verify_store(data_dir: &Path, roster: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_ctix"))
        .args(["store", "verify", "--data-dir"])
        .arg(data_dir)
        .arg("--roster")
        .arg(roster)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the store does not verify: {text}");
    text
}

fn roster_of(fed: &Fed) -> PathBuf {
    fed.configs["ee"].parent().unwrap().parent().unwrap().join("roster.toml")
}

/// Submits batches of unique indicators until the node stops answering; records the values of
/// every acknowledged indicator.
fn submit_until_down(api: Api, round: u64, acked: Arc<Mutex<BTreeSet<String>>>, stop: Arc<AtomicBool>) {
    let mut batch_no = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let values: Vec<String> = (0..200).map(|i| format!("r{round}-b{batch_no}-{i}.crash.example")).collect();
        batch_no += 1;
        let req = SubmitRequest {
            indicators: values
                .iter()
                .map(|v| IndicatorInput { itype: "domain".into(), value: v.clone(), ..Default::default() })
                .collect(),
            atomic: false,
        };
        match api.submit_batch(&req) {
            Ok(resp) => {
                let mut a = acked.lock().unwrap();
                for r in resp.results {
                    if r.id.is_some() {
                        a.insert(values[r.index].clone());
                    }
                }
            }
            Err(_) => return,
        }
    }
}

#[test]
fn kill9_during_api_ingest_loses_nothing_acknowledged() {
    let mut rng = Rng::new(seed());
    let fed = dev_federation(&["ee", "lv"]);
    let mut lv = Daemon::new(&fed, "lv");
    let mut ee = Daemon::new(&fed, "ee");
    lv.start();
    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    for round in 0..rounds() {
        ee.start();
        let stop = Arc::new(AtomicBool::new(false));
        let client = {
            let (api, acked, stop) = (ee.api(), acked.clone(), stop.clone());
            std::thread::spawn(move || submit_until_down(api, round, acked, stop))
        };
        std::thread::sleep(Duration::from_millis(300 + rng.below(1_200)));
        ee.kill9();
        stop.store(true, Ordering::Relaxed);
        client.join().unwrap();
        // Restarted: everything acknowledged before the kill is there.
        ee.start();
        let held = ee.values();
        let acked_now = acked.lock().unwrap().clone();
        let missing: Vec<&String> = acked_now.difference(&held).take(5).collect();
        assert!(missing.is_empty(), "round {round}: {} acknowledged, lost e.g. {missing:?}", acked_now.len());
        eprintln!("round {round}: {} acknowledged so far, all present after kill -9", acked_now.len());
        ee.stop();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 200 * rounds() as usize / 2, "the clients got too little through: {}", acked.len());
    // The peer converges on everything acknowledged, and both stores verify.
    ee.start();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !acked.is_subset(&lv.values()) {
        assert!(Instant::now() < deadline, "lv did not converge within 60 s");
        std::thread::sleep(Duration::from_millis(200));
    }
    ee.stop();
    lv.stop();
    verify_store(&ee.data_dir(), &roster_of(&fed));
    verify_store(&lv.data_dir(), &roster_of(&fed));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_during_catch_up_then_converges() {
    let mut rng = Rng::new(seed());
    let fed = dev_federation(&["ee", "lv"]);
    const ENTRIES: u64 = 20_000;
    let ee = start(&fed, "ee").await;
    for chunk in 0..ENTRIES / 5_000 {
        let bodies = (0..5_000).map(|i| ind(&format!("10.{}.{}.{}", chunk, i / 256, i % 256))).collect();
        append(&ee, bodies).await;
    }
    let mut lv = Daemon::new(&fed, "lv");
    let lv_head = |lv: &Daemon| lv.api().status().ok().and_then(|s| s.heads.get("ee").copied()).unwrap_or(0);
    for round in 0..rounds() {
        let lv_ref = &mut lv;
        let delay = 200 + rng.below(2_500);
        tokio::task::block_in_place(|| {
            lv_ref.start();
            let at_start = lv_head(lv_ref);
            std::thread::sleep(Duration::from_millis(delay));
            let seen = lv_head(lv_ref);
            lv_ref.kill9();
            eprintln!(
                "round {round}: lv restarted at ee:{at_start}, killed after {delay} ms at ee:{seen} of {ENTRIES}"
            );
        });
    }
    tokio::task::block_in_place(|| {
        lv.start();
        let started = Instant::now();
        let from = lv_head(&lv);
        while lv_head(&lv) < ENTRIES {
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "lv did not catch up within 120 s: at {}",
                lv_head(&lv)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!(
            "lv caught up from ee:{from} to ee:{ENTRIES} in {:.1} s after its last restart",
            started.elapsed().as_secs_f64()
        );
        lv.stop();
        let text = verify_store(&lv.data_dir(), &roster_of(&fed));
        assert!(text.contains(&format!("{ENTRIES} entries")), "{text}");
    });
    ee.stop().await;
}
