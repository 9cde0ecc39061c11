//! The network lab's fault campaign: three real `ctix run` nodes in network namespaces
//! (`deploy/lab/lab.sh`), clients submitting through every node's API while a seeded nemesis cuts,
//! isolates and degrades links and kills, restarts, pauses and resumes nodes; then everything
//! heals and every acknowledged indicator must be on every node.
//!
//! Needs root and network namespaces; without them it prints why and passes. `CTIX_LAB_SECS`
//! sets the length of the fault phase (default `FAULT_SECS_DEFAULT`), `CTIX_LAB_SEED` replays a
//! schedule (the seed is printed at the start and in the last line).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use ctix::sim::Rng;

const LAB_SH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/lab/lab.sh");
/// The lab's nodes, in `lab.sh`'s order; links are index pairs into this.
const NODES: [&str; 3] = ["ee", "lv", "lt"];
const LINKS: [(usize, usize); 3] = [(0, 1), (0, 2), (1, 2)];
/// Seconds of faults by default: long enough for every kind of fault to happen a few times.
const FAULT_SECS_DEFAULT: u64 = 75;
/// Client threads submitting at once: a paused node can hold one for `SUBMIT_TIMEOUT`, so more
/// than one keeps indicators flowing to the others.
const CLIENTS: u64 = 6;
/// A submission not answered within this is abandoned (not acknowledged): a paused node never
/// answers, and the CLI itself would wait `REQUEST_TIMEOUT_MS` (300 s).
const SUBMIT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest pause between one client's submissions.
const CLIENT_GAP_MS_MAX: u64 = 250;
/// How long every node may take, after the heal, to hold every acknowledged indicator.
const CONVERGE_WAIT: Duration = Duration::from_secs(120);
/// Time one `ctix query --all` may take while the checker polls.
const QUERY_TIMEOUT: Duration = Duration::from_secs(30);
/// Time between two fault actions: uniform in this range, in ms.
const NEMESIS_GAP_MS: (u64, u64) = (1_000, 4_000);
/// Chance that the nemesis's next step repairs a link fault (when one is active) instead of
/// adding a fault.
const REPAIR_CHANCE: f64 = 0.45;
/// At most this many nodes are down (killed or paused) at once, so that some node takes writes.
const NODES_DOWN_MAX: usize = 2;
/// How often the campaign prints the clients' tally.
const REPORT_EVERY: Duration = Duration::from_secs(10);
/// The first address of 198.18.0.0/15 (RFC 2544 benchmarking space): unique ipv4 values.
const BENCH_NET: u32 = 0xC612_0000;
const BENCH_NET_SIZE: u64 = 1 << 17;

#[test]
fn lab_campaign_loses_no_acknowledged_indicator() {
    if let Some(why) = lab_unavailable() {
        println!("lab campaign skipped: {why}");
        return;
    }
    let secs = env_u64("CTIX_LAB_SECS").unwrap_or(FAULT_SECS_DEFAULT);
    let seed = env_u64("CTIX_LAB_SEED").unwrap_or_else(random_seed);
    println!("lab campaign: seed {seed}, {secs} s of faults (replay with CTIX_LAB_SEED={seed})");
    let schedule = schedule(seed, Duration::from_secs(secs));
    let lab = Lab::up(seed);
    let start = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let counter = Arc::new(AtomicU64::new(0));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let (lab, stop, tally, counter) = (lab.clone(), stop.clone(), tally.clone(), counter.clone());
            std::thread::spawn(move || client(&lab, seed, i, &stop, &tally, &counter))
        })
        .collect();
    let nemesis = Nemesis::new(&lab, start).run(&schedule, Duration::from_secs(secs), &tally);
    // Clients stop submitting before the heal; those still waiting on a paused node finish as
    // soon as it resumes (or at `SUBMIT_TIMEOUT`).
    stop.store(true, Ordering::SeqCst);
    let healed = nemesis.and_then(|mut n| n.heal_all());
    for c in clients {
        c.join().expect("client thread");
    }
    let healed_at = healed.unwrap_or_else(|e| panic!("nemesis: {e} (lab logs kept in {})", lab.dir.display()));
    let acked = tally.acked.lock().unwrap().clone();
    tally.print(start);
    let check = converge(&lab, &acked, healed_at);
    let (forks, quarantined) = fork_evidence(&lab);
    let quarantined_text = if quarantined.is_empty() { "none".to_owned() } else { quarantined.join(", ") };
    println!("forks detected: {forks}; quarantined origins: {quarantined_text}");
    println!("acknowledged: {}", acked.len());
    println!("lost: {}", check.lost.len());
    println!("present on all nodes: {}", acked.len() - check.lost.len());
    match check.converged_after {
        Some(d) => println!("converged after heal: {:.1} s", d.as_secs_f64()),
        None => println!("converged after heal: no (gave up after {:.1} s)", CONVERGE_WAIT.as_secs_f64()),
    }
    println!("seed: {seed}");
    assert!(
        check.lost.is_empty(),
        "{} acknowledged indicators are missing (seed {seed}); first: {:?}; lab logs kept in {}",
        check.lost.len(),
        check.lost.iter().take(10).collect::<Vec<_>>(),
        lab.dir.display()
    );
    assert!(
        check.converged_after.is_some(),
        "the nodes hold the same acknowledged indicators but never the same set (seed {seed}): {}; lab logs kept in {}",
        check.divergence,
        lab.dir.display()
    );
    assert!(forks == 0 && quarantined.is_empty(), "fork evidence after the campaign (seed {seed})");
}

// ---- the lab -----------------------------------------------------------------------------------

/// A running lab; dropping it runs `lab.sh down` (keeping the logs and stores after a panic).
struct Lab {
    prefix: String,
    dir: PathBuf,
}

impl Lab {
    fn up(seed: u64) -> Arc<Lab> {
        let pid = std::process::id();
        let prefix = format!("ctix-it{pid}");
        let dir = std::env::temp_dir().join(format!("ctix-lab-{pid}-{seed:016x}"));
        let lab = Arc::new(Lab { prefix, dir });
        // `--owner`: if this process dies before its cleanup runs, lab.sh takes the lab down.
        if let Err(e) = lab.run(&["up", "--owner", &pid.to_string()]) {
            panic!("lab.sh up failed: {e}");
        }
        lab
    }

    /// Runs `lab.sh ARGS --dir DIR`; `Err` holds its output.
    fn run(&self, args: &[&str]) -> Result<String, String> {
        let out = self.script().args(args).arg("--dir").arg(&self.dir).output().map_err(|e| e.to_string())?;
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        if out.status.success() { Ok(text) } else { Err(format!("lab.sh {} failed: {}", args.join(" "), text.trim())) }
    }

    fn script(&self) -> Command {
        let mut c = Command::new(LAB_SH);
        c.env("CTIX_BIN", env!("CARGO_BIN_EXE_ctix")).env("CTIX_LAB_PREFIX", &self.prefix).stdin(Stdio::null());
        c
    }

    /// `ctix ARGS --config <node's config>` inside the node's namespace, without a shell in
    /// between. This is `lab.sh ctix` (see its layout: namespace `PREFIX-NODE`, the lab's copy of
    /// the binary in `DIR/bin/ctix`, config `DIR/fed/NODE/ctix.toml`) minus a bash per call.
    fn ctix(&self, node: usize, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &format!("{}-{}", self.prefix, NODES[node])])
            .arg(self.dir.join("bin").join("ctix"))
            .args(args)
            .arg("--config")
            .arg(self.dir.join("fed").join(NODES[node]).join("ctix.toml"));
        c
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let panicking = std::thread::panicking();
        let mut c = Command::new(LAB_SH);
        c.env("CTIX_LAB_PREFIX", &self.prefix).arg("down").arg("--dir").arg(&self.dir);
        if panicking {
            c.arg("--keep");
        }
        match c.stdin(Stdio::null()).output() {
            Ok(o) if o.status.success() => {}
            Ok(o) => eprintln!("lab.sh down failed: {}", String::from_utf8_lossy(&o.stderr)),
            Err(e) => eprintln!("lab.sh down could not run: {e}"),
        }
        if panicking {
            eprintln!("lab logs and stores kept in {}", self.dir.display());
        }
    }
}

/// Why the lab cannot run here (not root, or no network namespaces), or `None` when it can.
fn lab_unavailable() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status.lines().find_map(|l| l.strip_prefix("Uid:")).and_then(|l| l.split_whitespace().nth(1));
    if euid != Some("0") {
        return Some("not root (the lab creates network namespaces); CI runs it as root".into());
    }
    let out = Command::new(LAB_SH)
        .arg("check")
        .env("CTIX_LAB_PREFIX", format!("ctix-it{}", std::process::id()))
        .stdin(Stdio::null())
        .output()
        .expect("run deploy/lab/lab.sh check");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    match out.status.code() {
        Some(0) => {
            print!("{text}");
            None
        }
        Some(77) => Some(text.trim().to_owned()),
        _ => panic!("lab.sh check failed: {}", text.trim()),
    }
}

// ---- the nemesis -------------------------------------------------------------------------------

/// One fault action, as `lab.sh` takes it.
#[derive(Debug, Clone, PartialEq)]
enum Fault {
    Cut(usize, usize),
    Restore(usize, usize),
    Isolate(usize),
    Degrade { a: usize, b: usize, delay_ms: u64, loss_pct: u64, dup_pct: u64 },
    Heal,
    Kill(usize),
    Start(usize),
    Pause(usize),
    Resume(usize),
}

impl Fault {
    fn args(&self) -> Vec<String> {
        let n = |i: &usize| NODES[*i].to_string();
        match self {
            Fault::Cut(a, b) => vec!["cut".into(), n(a), n(b)],
            Fault::Restore(a, b) => vec!["restore".into(), n(a), n(b)],
            Fault::Isolate(a) => vec!["isolate".into(), n(a)],
            Fault::Degrade { a, b, delay_ms, loss_pct, dup_pct } => [
                "degrade",
                NODES[*a],
                NODES[*b],
                "--delay",
                &delay_ms.to_string(),
                "--loss",
                &loss_pct.to_string(),
                "--duplicate",
                &dup_pct.to_string(),
            ]
            .map(String::from)
            .to_vec(),
            Fault::Heal => vec!["heal".into()],
            Fault::Kill(a) => vec!["kill".into(), n(a)],
            Fault::Start(a) => vec!["start".into(), n(a)],
            Fault::Pause(a) => vec!["pause".into(), n(a)],
            Fault::Resume(a) => vec!["resume".into(), n(a)],
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.args().join(" "))
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum NodeState {
    Up,
    Killed,
    Paused,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum LinkState {
    Default,
    Cut,
    Degraded,
}

/// What the faults so far have left: each node's process and each link's state.
#[derive(Debug, Clone)]
struct World {
    nodes: [NodeState; 3],
    links: [LinkState; 3],
}

impl World {
    fn new() -> World {
        World { nodes: [NodeState::Up; 3], links: [LinkState::Default; 3] }
    }

    fn link(a: usize, b: usize) -> usize {
        LINKS.iter().position(|&l| l == (a.min(b), a.max(b))).expect("a lab link")
    }

    fn apply(&mut self, f: &Fault) {
        match *f {
            Fault::Cut(a, b) => self.links[World::link(a, b)] = LinkState::Cut,
            Fault::Degrade { a, b, .. } => self.links[World::link(a, b)] = LinkState::Degraded,
            Fault::Restore(a, b) => self.links[World::link(a, b)] = LinkState::Default,
            Fault::Isolate(a) => {
                for (i, &(x, y)) in LINKS.iter().enumerate() {
                    if x == a || y == a {
                        self.links[i] = LinkState::Cut;
                    }
                }
            }
            Fault::Heal => self.links = [LinkState::Default; 3],
            Fault::Kill(a) => self.nodes[a] = NodeState::Killed,
            Fault::Pause(a) => self.nodes[a] = NodeState::Paused,
            Fault::Start(a) | Fault::Resume(a) => self.nodes[a] = NodeState::Up,
        }
    }

    /// The actions that undo one current link fault each (node faults are undone on a timer).
    fn link_repairs(&self) -> Vec<Fault> {
        let changed: Vec<usize> = (0..3).filter(|&i| self.links[i] != LinkState::Default).collect();
        let mut r: Vec<Fault> = changed.iter().map(|&i| Fault::Restore(LINKS[i].0, LINKS[i].1)).collect();
        if changed.len() >= 2 {
            r.push(Fault::Heal);
        }
        r
    }

    /// A new fault, or `None` when the drawn kind does not fit the world now.
    fn new_fault(&self, rng: &mut Rng) -> Option<Fault> {
        let pick = |rng: &mut Rng, v: &[usize]| (!v.is_empty()).then(|| v[rng.below(v.len() as u64) as usize]);
        let up: Vec<usize> = (0..3).filter(|&i| self.nodes[i] == NodeState::Up).collect();
        let down = 3 - up.len();
        let uncut: Vec<usize> = (0..3).filter(|&i| self.links[i] != LinkState::Cut).collect();
        let either_way = |rng: &mut Rng, (a, b): (usize, usize)| if rng.chance(0.5) { (a, b) } else { (b, a) };
        // Weights: cut 3, degrade 3, isolate 1, kill 2, pause 2 (of 11).
        match rng.below(11) {
            0..=2 => pick(rng, &uncut).map(|i| either_way(rng, LINKS[i])).map(|(a, b)| Fault::Cut(a, b)),
            3..=5 => {
                let link = LINKS[rng.below(3) as usize];
                let (a, b) = either_way(rng, link);
                Some(Fault::Degrade {
                    a,
                    b,
                    delay_ms: 4 + rng.below(60),
                    loss_pct: 5 + rng.below(36),
                    dup_pct: if rng.chance(0.5) { 0 } else { 5 + rng.below(21) },
                })
            }
            6 => {
                let reachable: Vec<usize> =
                    (0..3).filter(|&n| uncut.iter().any(|&i| LINKS[i].0 == n || LINKS[i].1 == n)).collect();
                pick(rng, &reachable).map(Fault::Isolate)
            }
            // kill -9 may also hit a paused node.
            7 | 8 if down < NODES_DOWN_MAX => {
                let alive: Vec<usize> = (0..3).filter(|&i| self.nodes[i] != NodeState::Killed).collect();
                pick(rng, &alive).map(Fault::Kill)
            }
            9 | 10 if down < NODES_DOWN_MAX => pick(rng, &up).map(Fault::Pause),
            _ => None,
        }
    }
}

/// How long a killed node stays down, in ms.
const KILLED_MS: (u64, u64) = (500, 6_000);
/// How long a node stays paused, in ms; one pause in `LONG_PAUSE_ONE_IN` lasts `LONG_PAUSE_MS`,
/// past the peers' QUIC idle timeout (`net::IDLE_TIMEOUT_MS`, 30 s), so they drop its connections.
const PAUSED_MS: (u64, u64) = (1_000, 10_000);
const LONG_PAUSE_ONE_IN: u64 = 6;
const LONG_PAUSE_MS: (u64, u64) = (31_000, 40_000);

/// The seeded fault schedule for `length`: (time from the campaign's start, action). Link faults
/// are undone by later random repairs; a killed or paused node comes back after a drawn time.
fn schedule(seed: u64, length: Duration) -> Vec<(Duration, Fault)> {
    let mut rng = Rng::new(seed ^ 0x6e65_6d65_7369_7321);
    let ms = |rng: &mut Rng, (lo, hi): (u64, u64)| Duration::from_millis(lo + rng.below(hi - lo));
    let mut world = World::new();
    let mut at = Duration::ZERO;
    let mut out = Vec::new();
    // Node repairs not yet due, by node.
    let mut due: BTreeMap<usize, (Duration, Fault)> = BTreeMap::new();
    loop {
        let next = at + ms(&mut rng, NEMESIS_GAP_MS);
        // Node repairs falling due before the next step (or the end), in time order.
        let mut ready: Vec<(Duration, Fault)> = due.values().filter(|(t, _)| *t <= next.min(length)).cloned().collect();
        ready.sort_by_key(|(t, _)| *t);
        for (t, f) in ready {
            let (Fault::Start(n) | Fault::Resume(n)) = f else { unreachable!("only node repairs are due") };
            due.remove(&n);
            world.apply(&f);
            out.push((t, f));
        }
        if next >= length {
            return out;
        }
        at = next;
        let repairs = world.link_repairs();
        let fault = if !repairs.is_empty() && rng.chance(REPAIR_CHANCE) {
            Some(repairs[rng.below(repairs.len() as u64) as usize].clone())
        } else {
            world.new_fault(&mut rng)
        };
        let Some(f) = fault else { continue };
        match f {
            Fault::Kill(n) => {
                due.insert(n, (at + ms(&mut rng, KILLED_MS), Fault::Start(n)));
            }
            Fault::Pause(n) => {
                let range = if rng.below(LONG_PAUSE_ONE_IN) == 0 { LONG_PAUSE_MS } else { PAUSED_MS };
                due.insert(n, (at + ms(&mut rng, range), Fault::Resume(n)));
            }
            _ => {}
        }
        world.apply(&f);
        out.push((at, f));
    }
}

/// Runs the schedule against the lab and undoes what is left at the end.
struct Nemesis<'a> {
    lab: &'a Lab,
    start: Instant,
    world: World,
}

impl<'a> Nemesis<'a> {
    fn new(lab: &'a Lab, start: Instant) -> Nemesis<'a> {
        Nemesis { lab, start, world: World::new() }
    }

    /// Applies each action at its time, then waits out the rest of `length`, printing the
    /// clients' tally every `REPORT_EVERY`.
    fn run(mut self, schedule: &[(Duration, Fault)], length: Duration, tally: &Tally) -> Result<Nemesis<'a>, String> {
        let mut next_report = REPORT_EVERY;
        let end = [(length, None)];
        for (at, fault) in schedule.iter().map(|(t, f)| (*t, Some(f))).chain(end) {
            while self.start.elapsed() < at {
                if self.start.elapsed() >= next_report {
                    tally.print(self.start);
                    next_report += REPORT_EVERY;
                }
                std::thread::sleep(Duration::from_millis(20).min(at.saturating_sub(self.start.elapsed())));
            }
            if let Some(fault) = fault {
                self.act(fault)?;
            }
        }
        Ok(self)
    }

    fn act(&mut self, fault: &Fault) -> Result<(), String> {
        println!("[{:6.1} s] nemesis: {fault}", self.start.elapsed().as_secs_f64());
        let args = fault.args();
        self.lab.run(&args.iter().map(String::as_str).collect::<Vec<_>>())?;
        self.world.apply(fault);
        Ok(())
    }

    /// Resumes paused nodes, starts killed ones and heals every link; returns when that was done.
    fn heal_all(&mut self) -> Result<Instant, String> {
        for i in 0..NODES.len() {
            match self.world.nodes[i] {
                NodeState::Paused => self.act(&Fault::Resume(i))?,
                NodeState::Killed => self.act(&Fault::Start(i))?,
                NodeState::Up => {}
            }
        }
        self.act(&Fault::Heal)?;
        Ok(Instant::now())
    }
}

// ---- the clients -------------------------------------------------------------------------------

/// What the clients saw.
#[derive(Default)]
struct Tally {
    /// Acknowledged indicators: id (`ORIGIN:SEQ`) → value.
    acked: Mutex<BTreeMap<String, String>>,
    refused: AtomicU64,
    timed_out: AtomicU64,
}

impl Tally {
    fn print(&self, start: Instant) {
        println!(
            "[{:6.1} s] clients: {} acknowledged, {} refused or failed, {} abandoned after {} s",
            start.elapsed().as_secs_f64(),
            self.acked.lock().unwrap().len(),
            self.refused.load(Ordering::SeqCst),
            self.timed_out.load(Ordering::SeqCst),
            SUBMIT_TIMEOUT.as_secs()
        );
    }
}

/// Submits unique indicators at random nodes until `stop`, recording each acknowledgement.
fn client(lab: &Lab, seed: u64, index: u64, stop: &AtomicBool, tally: &Tally, counter: &AtomicU64) {
    let mut rng = Rng::new(seed.wrapping_add(index.wrapping_mul(0x9E37_79B9_7F4A_7C15)));
    const TLPS: [&str; 4] = ["clear", "green", "amber", "amber+strict"];
    while !stop.load(Ordering::SeqCst) {
        let k = counter.fetch_add(1, Ordering::SeqCst);
        let (kind, value) = unique_value(seed, k);
        let node = rng.below(NODES.len() as u64) as usize;
        let tlp = TLPS[rng.below(TLPS.len() as u64) as usize];
        let cmd = lab.ctix(node, &["submit", "--type", kind, "--value", &value, "--tlp", tlp]);
        match output_within(cmd, SUBMIT_TIMEOUT) {
            Some(out) if out.status.success() => {
                let text = String::from_utf8_lossy(&out.stdout);
                let id = text.strip_prefix("stored ").and_then(|t| t.split_whitespace().next());
                let id = id.unwrap_or_else(|| panic!("ctix submit succeeded without an id: {text:?}"));
                let old = tally.acked.lock().unwrap().insert(id.to_owned(), value);
                assert!(old.is_none(), "{id} was acknowledged twice, for {old:?} and another value");
            }
            Some(_) => {
                tally.refused.fetch_add(1, Ordering::SeqCst);
            }
            None => {
                tally.timed_out.fetch_add(1, Ordering::SeqCst);
            }
        }
        std::thread::sleep(Duration::from_millis(rng.below(CLIENT_GAP_MS_MAX)));
    }
}

/// The `k`th value of this run, in its normal form: even k an IPv4 address from 198.18.0.0/15,
/// odd k a domain name that carries the seed.
fn unique_value(seed: u64, k: u64) -> (&'static str, String) {
    if k.is_multiple_of(2) && k / 2 < BENCH_NET_SIZE {
        ("ipv4", std::net::Ipv4Addr::from(BENCH_NET + (k / 2) as u32).to_string())
    } else {
        ("domain", format!("i{k}.s{seed:016x}.lab.example"))
    }
}

/// Runs `cmd` and returns its output, or kills it and returns `None` after `limit`.
fn output_within(mut cmd: Command, limit: Duration) -> Option<Output> {
    let child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => Some(out.expect("wait for a child")),
        Err(_) => {
            // The waiting thread has not reaped it yet, so the pid is still this child's.
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
            let _ = rx.recv();
            None
        }
    }
}

// ---- the checker -------------------------------------------------------------------------------

struct Check {
    /// Acknowledged ids missing from at least one node, with the nodes that lack them.
    lost: BTreeMap<String, Vec<&'static str>>,
    converged_after: Option<Duration>,
    /// When not converged: how the nodes' sets differ.
    divergence: String,
}

/// Polls every node until each holds every acknowledged indicator (same id, same value) and all
/// hold the same set, or `CONVERGE_WAIT` has passed since the heal.
fn converge(lab: &Lab, acked: &BTreeMap<String, String>, healed_at: Instant) -> Check {
    loop {
        let held: Vec<Option<BTreeMap<String, String>>> = (0..NODES.len()).map(|n| indicators(lab, n)).collect();
        let mut lost: BTreeMap<String, Vec<&'static str>> = BTreeMap::new();
        for (id, value) in acked {
            for (n, h) in held.iter().enumerate() {
                if h.as_ref().is_none_or(|h| h.get(id) != Some(value)) {
                    lost.entry(id.clone()).or_default().push(NODES[n]);
                }
            }
        }
        let sets: BTreeSet<_> = held.iter().map(|h| h.as_ref().map(|h| h.keys().collect::<Vec<_>>())).collect();
        let same = sets.len() == 1 && held[0].is_some();
        if lost.is_empty() && same {
            return Check { lost, converged_after: Some(healed_at.elapsed()), divergence: String::new() };
        }
        if healed_at.elapsed() >= CONVERGE_WAIT {
            let divergence = held
                .iter()
                .enumerate()
                .map(|(n, h)| match h {
                    Some(h) => format!("{} holds {}", NODES[n], h.len()),
                    None => format!("{} does not answer", NODES[n]),
                })
                .collect::<Vec<_>>()
                .join(", ");
            for (id, nodes) in lost.iter().take(20) {
                println!("missing: {id} ({}) on {}", acked[id], nodes.join(","));
            }
            return Check { lost, converged_after: None, divergence };
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Every indicator node `n` shows its `rw` token: id → value; `None` when it does not answer.
fn indicators(lab: &Lab, n: usize) -> Option<BTreeMap<String, String>> {
    let out = output_within(lab.ctix(n, &["query", "--all", "--json"]), QUERY_TIMEOUT)?;
    if !out.status.success() {
        return None;
    }
    let mut held = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line).expect("ctix query --json prints JSON lines");
        let field = |f: &str| v[f].as_str().unwrap_or_else(|| panic!("indicator without {f}: {line}")).to_owned();
        held.insert(field("id"), field("value"));
    }
    Some(held)
}

/// Fork evidence across the nodes: total `forks`, and every quarantined origin.
fn fork_evidence(lab: &Lab) -> (u64, Vec<String>) {
    let (mut forks, mut quarantined) = (0, BTreeSet::new());
    for (n, name) in NODES.iter().enumerate() {
        let out = output_within(lab.ctix(n, &["status", "--json"]), QUERY_TIMEOUT).expect("ctix status answers");
        assert!(out.status.success(), "ctix status at {name}: {}", String::from_utf8_lossy(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status JSON");
        forks += v["forks"].as_u64().expect("forks");
        for q in v["quarantined"].as_array().expect("quarantined") {
            quarantined.insert(format!("{} (at {name})", q.as_str().unwrap_or("?")));
        }
    }
    (forks, quarantined.into_iter().collect())
}

// ---- small helpers -----------------------------------------------------------------------------

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    Some(v.trim().parse().unwrap_or_else(|_| panic!("{name}={v:?} is not a whole number")))
}

fn random_seed() -> u64 {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).expect("randomness for the seed");
    u64::from_le_bytes(b)
}

/// The nemesis schedule alone (no lab needed): replayable, never asks for an impossible action,
/// keeps a node up, and gives a default-length campaign every kind of fault.
#[test]
fn schedule_is_a_function_of_the_seed_and_consistent() {
    let length = Duration::from_secs(FAULT_SECS_DEFAULT);
    assert_eq!(schedule(7, length), schedule(7, length));
    assert_ne!(schedule(7, length), schedule(8, length));
    let mut kinds: BTreeMap<&str, u32> = BTreeMap::new();
    let seeds = 200;
    for seed in 0..seeds {
        let (mut world, mut last) = (World::new(), Duration::ZERO);
        let mut seen = BTreeSet::new();
        for (at, f) in schedule(seed, length) {
            assert!(at >= last && at < length, "seed {seed}: {f} at {at:?}");
            last = at;
            match f {
                Fault::Start(i) => assert_eq!(world.nodes[i], NodeState::Killed, "seed {seed}: {f} of a live node"),
                Fault::Resume(i) => assert_eq!(world.nodes[i], NodeState::Paused, "seed {seed}: {f}"),
                Fault::Pause(i) => assert_eq!(world.nodes[i], NodeState::Up, "seed {seed}: {f}"),
                Fault::Kill(i) => assert_ne!(world.nodes[i], NodeState::Killed, "seed {seed}: {f} of a dead node"),
                Fault::Restore(a, b) => {
                    assert_ne!(world.links[World::link(a, b)], LinkState::Default, "seed {seed}: {f}")
                }
                Fault::Cut(a, b) => assert_ne!(world.links[World::link(a, b)], LinkState::Cut, "seed {seed}: {f}"),
                _ => {}
            }
            seen.insert(f.args()[0].clone());
            world.apply(&f);
            let down = world.nodes.iter().filter(|&&s| s != NodeState::Up).count();
            assert!(down <= NODES_DOWN_MAX, "seed {seed}: {down} nodes down");
        }
        for k in ["cut", "degrade", "kill", "pause"] {
            *kinds.entry(k).or_default() += u32::from(seen.contains(k));
        }
    }
    for (k, n) in kinds {
        assert!(n * 10 >= seeds as u32 * 9, "only {n} of {seeds} default campaigns have a {k}");
    }
}
