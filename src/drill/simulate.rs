//! `ctix drill simulate`: a drill scenario run on the simulated federation (`crate::sim`), every
//! node driven by the same `Runner` a live node uses, reproducibly by seed.
//!
//! The federation is the scenario's participants, optionally grown to `--nodes N` with NATO and
//! EU member states (then partner states). Links get a one-way delay from the distance between
//! the two capitals (or a fixed range), and lose messages with probability `loss`. The run starts
//! the drill at the controller, steps the simulated clock 10 ms at a time, feeds every stored
//! drill record to its node's runner and carries out the runners' outputs (appends, link blocks),
//! and stops once the drill has ended and every node holds every entry. Quiet spells (no message
//! in flight, no timer or inject due) are skipped, so a drill of hours runs in seconds.
//!
//! Invariant: nothing here reads the wall clock, threads or hash-map order; the seed and the
//! options fully decide the records.

use std::collections::{BTreeMap, BTreeSet};

use crate::drill::Record;
use crate::drill::runner::{Output, Runner};
use crate::model::drill::{DrillRecord, FaultState, PARTICIPANTS_MAX, Scenario};
use crate::model::{Body, EntryId, NodeName};
use crate::sim::{Sim, SimConfig, Traffic};

/// Most nodes of a simulated federation (the roster's and a drill's limit).
pub const NODES_MAX: usize = PARTICIPANTS_MAX;
/// Highest message loss probability: beyond it a drill measures the loss, not the federation.
pub const LOSS_MAX: f64 = 0.5;
/// Longest one-way link delay accepted for `latency_ms` (a satellite hop is well below).
pub const LATENCY_MS_MAX: u64 = 10_000;
/// Simulated clock step: the runners' tick, as a live node's timer.
pub const TICK_MS: u64 = 10;
/// The simulated clock's start, 2026-01-01T00:00:00Z: fixed, so that a seed gives the same
/// report on every run, with a plausible date rather than 1970.
pub const SIM_START_MS: u64 = 1_767_225_600_000;
/// Time allowed after the drill's end for every node to hold every entry.
pub const CONVERGE_MS_MAX: u64 = 120_000;
/// Longest jump of the simulated clock over a quiet spell. Replication timers that do not
/// announce themselves (a peer's back-off ending) wait at most this long.
pub const IDLE_SKIP_MS_MAX: u64 = 5_000;
/// One-way delay range of a link with a node that has no capital in the table.
pub const UNKNOWN_LINK_MS: (u64, u64) = (20, 40);

/// How to run a simulated drill.
#[derive(Debug, Clone, PartialEq)]
pub struct SimOptions {
    /// Federation size: the participants plus members from the built-in table until there are
    /// this many (each also a participant). `None`: the participants only.
    pub nodes: Option<usize>,
    /// Seeds every random choice (link delays, losses): the same seed replays the same run.
    pub seed: u64,
    /// One-way delay of every link, uniform in `a..=b` ms. `None`: from the distance between
    /// the members' capitals (`link_delays`).
    pub latency_ms: Option<(u64, u64)>,
    /// Probability that a message is lost, `0.0..=LOSS_MAX`.
    pub loss: f64,
}

/// What a simulated drill produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimOutcome {
    /// The drill's records as the controller holds them at the end, by creation time then id;
    /// times are on the simulated clock (it starts at 1,000,000 ms).
    pub records: Vec<Record>,
    /// The node that started the drill: the first participant of the scenario as given (before
    /// `nodes` added members).
    pub controller: NodeName,
    /// Every member of the simulated federation, sorted (all are participants).
    pub nodes: Vec<NodeName>,
    /// Simulated clock time (ms, the records' clock) when the drill had ended and every node held
    /// every entry; always `Some` in an `Ok` outcome.
    pub converged_ms: Option<u64>,
    /// Messages sent between nodes from the start record to convergence.
    pub messages: u64,
    /// Bytes of those messages, as framed on the wire (`wire::encode_frame`).
    pub bytes: u64,
    /// The same messages and bytes by kind of message (`Hello`, `Heads`, `Entries` …).
    pub by_kind: BTreeMap<&'static str, Traffic>,
}

/// Runs `scenario` on a simulated federation. The controller is the scenario's first
/// participant (participants are sorted, so the alphabetically first). Errors name the option or
/// the scenario rule at fault, or the seed of a run that did not converge.
pub fn simulate(scenario: &Scenario, opts: &SimOptions) -> Result<SimOutcome, String> {
    check_options(scenario, opts)?;
    let controller = scenario.participants[0].clone();
    let scenario = with_members(scenario, opts.nodes.unwrap_or(0));
    let nodes = scenario.participants.clone();
    let c = nodes.binary_search(&controller).expect("the controller is a participant");

    let mut cfg = SimConfig::quiet(opts.seed, nodes.clone());
    cfg.tick_ms = TICK_MS;
    cfg.start_ms = SIM_START_MS;
    cfg.link_delay_ms = Some(link_delays(&nodes, opts.latency_ms));
    let max_delay_ms = cfg.link_delay_ms.iter().flatten().map(|(_, d)| d.1).max().unwrap_or(0);
    let mut sim = Sim::new(cfg);
    // Let every connection say hello (without loss, as a handshake is retried until it succeeds)
    // before the drill starts, as in a federation that has been up for a while.
    let warm_until = sim.now() + 3 * max_delay_ms + 100;
    while sim.now() < warm_until {
        sim.step(false);
    }
    sim.set_drop(opts.loss);
    sim.record_stored(true);

    let mut fed = Federation {
        runners: nodes.iter().map(|n| Runner::new(n.clone(), nodes.clone(), true)).collect(),
        blocked: BTreeMap::new(),
        sim,
        drill: None,
        ended: false,
        due: BTreeSet::new(),
        scenario: scenario.clone(),
    };
    let body = fed.runners[c].start(fed.sim.now(), scenario.clone()).map_err(|e| e.to_string())?;
    let Body::Drill(DrillRecord::Start { start_ms, .. }) = body else { unreachable!("start writes a start record") };
    let end_ms = start_ms + scenario.duration_ms();
    fed.due.extend(scenario.injects.iter().map(|i| start_ms + i.at_ms));
    fed.due.insert(end_ms);
    let (messages_before, bytes_before) = (fed.sim.stats.messages, fed.sim.stats.bytes);
    let kinds_before = fed.sim.stats.by_kind.clone();
    let id = fed.sim.append_batch(c, vec![body]).remove(0);
    fed.drill = Some(id.clone());
    fed.settle(c);
    fed.run(c, end_ms + CONVERGE_MS_MAX).map_err(|why| {
        format!(
            "the simulated drill did not converge within {} s after its end (seed {}): {why}; a lower --loss or \
             shorter faults may help",
            CONVERGE_MS_MAX / 1000,
            opts.seed
        )
    })?;
    Ok(SimOutcome {
        records: fed.records(c, &id),
        controller,
        nodes,
        converged_ms: Some(fed.sim.now()),
        messages: fed.sim.stats.messages - messages_before,
        bytes: fed.sim.stats.bytes - bytes_before,
        by_kind: fed
            .sim
            .stats
            .by_kind
            .iter()
            .map(|(k, t)| (*k, t.since(kinds_before.get(k).copied().unwrap_or_default())))
            .filter(|(_, t)| t.messages > 0)
            .collect(),
    })
}

/// One-way delay ranges of every link (node indices, lower first): `latency_ms` for all, or
/// `2 + km / 100` ms between two capitals `km` apart (light in fibre covers about 200 km per ms,
/// and routes run about twice the great-circle distance), with a jitter of a fifth plus 1 ms;
/// `UNKNOWN_LINK_MS` where a node has no capital in the table.
pub fn link_delays(nodes: &[NodeName], latency_ms: Option<(u64, u64)>) -> BTreeMap<(usize, usize), (u64, u64)> {
    let mut links = BTreeMap::new();
    for a in 0..nodes.len() {
        for b in a + 1..nodes.len() {
            let delay = match (latency_ms, capital(&nodes[a]), capital(&nodes[b])) {
                (Some(fixed), _, _) => fixed,
                (None, Some(p), Some(q)) => {
                    let x = 2 + (great_circle_km(p, q) / 100.0) as u64;
                    (x, x + x / 5 + 1)
                }
                _ => UNKNOWN_LINK_MS,
            };
            links.insert((a, b), delay);
        }
    }
    links
}

/// Members added by `--nodes`, in this order (names already taking part are skipped), with
/// their capitals' latitude and longitude: NATO and EU member states, then partner states.
pub const MEMBERS: &[(&str, f64, f64)] = &[
    ("ee", 59.437, 24.745),  // Tallinn
    ("lv", 56.949, 24.105),  // Riga
    ("lt", 54.687, 25.280),  // Vilnius
    ("fi", 60.170, 24.938),  // Helsinki
    ("se", 59.329, 18.069),  // Stockholm
    ("no", 59.913, 10.752),  // Oslo
    ("dk", 55.676, 12.568),  // Copenhagen
    ("pl", 52.230, 21.012),  // Warsaw
    ("de", 52.520, 13.405),  // Berlin
    ("nl", 52.370, 4.895),   // Amsterdam
    ("be", 50.850, 4.352),   // Brussels
    ("lu", 49.612, 6.130),   // Luxembourg
    ("fr", 48.857, 2.352),   // Paris
    ("es", 40.417, -3.704),  // Madrid
    ("pt", 38.722, -9.139),  // Lisbon
    ("it", 41.903, 12.496),  // Rome
    ("gr", 37.984, 23.728),  // Athens
    ("bg", 42.698, 23.322),  // Sofia
    ("ro", 44.427, 26.103),  // Bucharest
    ("hu", 47.498, 19.040),  // Budapest
    ("sk", 48.149, 17.107),  // Bratislava
    ("cz", 50.076, 14.438),  // Prague
    ("at", 48.208, 16.373),  // Vienna
    ("si", 46.056, 14.506),  // Ljubljana
    ("hr", 45.815, 15.982),  // Zagreb
    ("al", 41.328, 19.819),  // Tirana
    ("me", 42.441, 19.263),  // Podgorica
    ("mk", 41.998, 21.425),  // Skopje
    ("tr", 39.934, 32.860),  // Ankara
    ("gb", 51.507, -0.128),  // London
    ("ie", 53.350, -6.260),  // Dublin
    ("is", 64.147, -21.942), // Reykjavik
    ("us", 38.907, -77.037), // Washington
    ("ca", 45.421, -75.697), // Ottawa
    ("cy", 35.185, 33.382),  // Nicosia
    ("mt", 35.899, 14.514),  // Valletta
    // Partner states.
    ("ch", 46.948, 7.447),    // Bern
    ("ua", 50.450, 30.523),   // Kyiv
    ("md", 47.011, 28.864),   // Chisinau
    ("ge", 41.716, 44.783),   // Tbilisi
    ("rs", 44.787, 20.457),   // Belgrade
    ("ba", 43.856, 18.413),   // Sarajevo
    ("am", 40.179, 44.499),   // Yerevan
    ("az", 40.409, 49.867),   // Baku
    ("kz", 51.160, 71.470),   // Astana
    ("li", 47.141, 9.521),    // Vaduz
    ("ad", 42.506, 1.522),    // Andorra la Vella
    ("mc", 43.738, 7.424),    // Monaco
    ("sm", 43.936, 12.447),   // San Marino
    ("au", -35.281, 149.130), // Canberra
    ("nz", -41.287, 174.776), // Wellington
    ("jp", 35.676, 139.650),  // Tokyo
    ("kr", 37.567, 126.978),  // Seoul
    ("co", 4.711, -74.072),   // Bogota
    ("mn", 47.886, 106.906),  // Ulaanbaatar
    ("ma", 34.020, -6.841),   // Rabat
    ("tn", 36.806, 10.181),   // Tunis
    ("eg", 30.044, 31.236),   // Cairo
    ("jo", 31.954, 35.911),   // Amman
    ("mr", 18.079, -15.965),  // Nouakchott
    ("dz", 36.754, 3.059),    // Algiers
    ("ae", 24.454, 54.377),   // Abu Dhabi
    ("qa", 25.285, 51.531),   // Doha
    ("kw", 29.376, 47.977),   // Kuwait City
    ("bh", 26.229, 50.586),   // Manama
];

// `--nodes` can always be filled, whatever names the scenario uses.
const _: () = assert!(MEMBERS.len() >= NODES_MAX);

const EARTH_RADIUS_KM: f64 = 6371.0;

fn check_options(scenario: &Scenario, opts: &SimOptions) -> Result<(), String> {
    scenario.validate().map_err(|e| format!("invalid scenario: {e}"))?;
    let have = scenario.participants.len();
    if let Some(n) = opts.nodes
        && !(have..=NODES_MAX).contains(&n)
    {
        return Err(format!(
            "--nodes {n}: give {have} to {NODES_MAX} (the scenario has {have} participants; a federation has at most \
             {NODES_MAX} members)"
        ));
    }
    if let Some((a, b)) = opts.latency_ms
        && (a > b || b > LATENCY_MS_MAX)
    {
        return Err(format!("--latency {a}-{b} ms: give a range low-high with high at most {LATENCY_MS_MAX} ms"));
    }
    if !(0.0..=LOSS_MAX).contains(&opts.loss) {
        return Err(format!("--loss {}: give a probability from 0.0 to {LOSS_MAX}", opts.loss));
    }
    Ok(())
}

/// The scenario with members from `MEMBERS` added as participants until there are `n`.
fn with_members(scenario: &Scenario, n: usize) -> Scenario {
    let mut s = scenario.clone();
    for (name, _, _) in MEMBERS {
        if s.participants.len() >= n {
            break;
        }
        let name = NodeName::new(name).expect("table names are valid");
        if !s.participants.contains(&name) {
            s.participants.push(name);
        }
    }
    s.participants.sort();
    s
}

fn capital(node: &NodeName) -> Option<(f64, f64)> {
    MEMBERS.iter().find(|m| m.0 == node.as_str()).map(|m| (m.1, m.2))
}

/// Haversine distance between two (latitude, longitude) points in degrees.
fn great_circle_km((lat1, lon1): (f64, f64), (lat2, lon2): (f64, f64)) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let (dp, dl) = (p2 - p1, (lon2 - lon1).to_radians());
    let h = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * h.sqrt().min(1.0).asin()
}

/// The simulated federation with one runner per node.
struct Federation {
    sim: Sim,
    runners: Vec<Runner>,
    /// Drill faults per link (node indices, lower first): the link is down while any is active.
    blocked: BTreeMap<(usize, usize), u32>,
    drill: Option<EntryId>,
    /// The controller has stored the drill's end record.
    ended: bool,
    /// When a runner's timer has something to do: inject offsets, the end, fault lifts.
    due: BTreeSet<u64>,
    scenario: Scenario,
}

impl Federation {
    /// Steps the clock (skipping quiet spells) until the drill has ended and every node holds
    /// every entry, or `deadline_ms` passes (the error says what is missing where).
    fn run(&mut self, controller: usize, deadline_ms: u64) -> Result<(), String> {
        loop {
            let now = self.sim.now();
            while self.due.first().is_some_and(|t| *t <= now) {
                self.due.pop_first();
            }
            let runners_due = self.due.first().copied().unwrap_or(u64::MAX);
            self.sim.idle_until(self.sim.next_due_ms().min(runners_due).min(now + IDLE_SKIP_MS_MAX));
            self.sim.step(false);
            let now = self.sim.now();
            for r in &mut self.runners {
                r.tick(now);
            }
            self.settle(controller);
            if self.ended && self.sim.converged() {
                return Ok(());
            }
            if now > deadline_ms {
                return Err(self
                    .sim
                    .check()
                    .err()
                    .unwrap_or_else(|| "the controller never wrote its end record".into()));
            }
        }
    }

    /// The drill's records in node `i`'s log, by creation time then id.
    fn records(&self, i: usize, drill: &EntryId) -> Vec<Record> {
        let log = self.sim.node_log(i);
        let mut records: Vec<Record> = log
            .heads()
            .keys()
            .flat_map(|o| log.log(o))
            .filter_map(Record::from_entry)
            .filter(|r| r.drill() == drill)
            .collect();
        records.sort_by(|a, b| (a.created_ms, &a.id).cmp(&(b.created_ms, &b.id)));
        records
    }

    /// Feeds what the nodes stored to their runners and carries out the runners' outputs until
    /// neither has anything left (appends are stored at once, and may cause more outputs).
    fn settle(&mut self, controller: usize) {
        loop {
            let stored = self.sim.take_stored();
            for s in &stored {
                let Some(r) = Record::from_entry(&s.entry) else { continue };
                if Some(r.drill()) == self.drill.as_ref() && s.from.is_none() {
                    match &r.record {
                        DrillRecord::End { .. } if s.node == controller => self.ended = true,
                        DrillRecord::Fault { inject, state: FaultState::Applied, at_ms, .. } => {
                            let lift = self.scenario.inject(inject).and_then(|i| i.action.fault()).map(|f| f.1);
                            self.due.insert(at_ms + lift.unwrap_or(0));
                        }
                        _ => {}
                    }
                }
                self.runners[s.node].stored(s.at_ms, s.from.as_ref(), &r);
            }
            let mut acted = false;
            for i in 0..self.runners.len() {
                while let Some(out) = self.runners[i].poll() {
                    acted = true;
                    match out {
                        Output::Append(bodies) => {
                            self.sim.append_batch(i, bodies);
                        }
                        Output::Block { peer, blocked } => self.block(i, &peer, blocked),
                    }
                }
            }
            if stored.is_empty() && !acted {
                return;
            }
        }
    }

    fn block(&mut self, i: usize, peer: &NodeName, blocked: bool) {
        let Some(j) = self.sim.index(peer) else { return };
        let link = (i.min(j), i.max(j));
        let count = self.blocked.entry(link).or_insert(0);
        if blocked {
            *count += 1;
            if *count == 1 {
                self.sim.cut_link(i, j);
            }
        } else if *count > 0 {
            *count -= 1;
            if *count == 0 {
                self.blocked.remove(&link);
                self.sim.restore_link(i, j);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::drill::{Inject, InjectAction, Objective, ObjectiveKind};
    use crate::model::{IndicatorType, Tlp};

    fn n(s: &str) -> NodeName {
        NodeName::new(s).unwrap()
    }

    fn wave(name: &str, at_ms: u64, from: &str, count: u32) -> Inject {
        Inject {
            name: name.into(),
            at_ms,
            from: Some(n(from)),
            action: InjectAction::Indicators {
                count,
                types: vec![IndicatorType::Ipv4, IndicatorType::Domain],
                tlp: Tlp::Amber,
            },
        }
    }

    fn comm_check(at_ms: u64) -> Inject {
        Inject {
            name: "comm".into(),
            at_ms,
            from: None,
            action: InjectAction::CommCheck { text: "report in".into(), within_ms: 5_000 },
        }
    }

    /// Three Baltic nodes: a wave from lv, the ee–lt link cut for 5 s with a wave from ee
    /// meanwhile, a communication check.
    fn baltic() -> Scenario {
        Scenario {
            name: "baltic".into(),
            description: "simulated".into(),
            participants: vec![n("ee"), n("lt"), n("lv")],
            objectives: vec![Objective { name: "delivery-5s".into(), kind: ObjectiveKind::Delivery, within_ms: 5_000 }],
            injects: vec![
                wave("wave-lv", 0, "lv", 20),
                Inject {
                    name: "cut".into(),
                    at_ms: 1_000,
                    from: None,
                    action: InjectAction::CutLink { a: n("ee"), b: n("lt"), duration_ms: 5_000 },
                },
                wave("wave-ee", 2_000, "ee", 5),
                comm_check(8_000),
            ],
        }
    }

    fn opts(seed: u64) -> SimOptions {
        SimOptions { nodes: None, seed, latency_ms: None, loss: 0.0 }
    }

    /// Receipts (machine acks): (node, inject) → (received_ms, via).
    fn receipts(records: &[Record]) -> BTreeMap<(String, String), (u64, Option<NodeName>)> {
        let mut m = BTreeMap::new();
        for r in records {
            if let DrillRecord::Ack { inject, received_ms, via, human: None, .. } = &r.record {
                let old = m.insert((r.id.origin.to_string(), inject.clone()), (*received_ms, via.clone()));
                assert!(old.is_none(), "one receipt per node and inject: {r:?}");
            }
        }
        m
    }

    #[test]
    fn three_nodes_receipts_faults_and_end() {
        let out = simulate(&baltic(), &opts(1)).unwrap();
        assert_eq!(out.controller, n("ee"));
        assert_eq!(out.nodes, vec![n("ee"), n("lt"), n("lv")]);
        assert!(out.messages > 0);
        let rec = receipts(&out.records);
        let source = |inject: &str| match inject {
            "wave-lv" => "lv",
            _ => "ee",
        };
        for inject in ["wave-lv", "cut", "wave-ee", "comm"] {
            for node in ["ee", "lt", "lv"] {
                let key = (node.to_string(), inject.to_string());
                assert_eq!(rec.contains_key(&key), node != source(inject), "{key:?} in {rec:?}");
            }
        }
        let (_, via) = &rec[&("lt".to_string(), "wave-ee".to_string())];
        assert_eq!(via.as_ref(), Some(&n("lv")), "the wave sent during the cut reached lt through lv");

        for node in ["ee", "lt"] {
            for state in [FaultState::Applied, FaultState::Lifted] {
                let found = out.records.iter().any(|r| {
                    r.id.origin == n(node) && matches!(&r.record, DrillRecord::Fault { state: s, .. } if *s == state)
                });
                assert!(found, "{node} wrote Fault {state:?}");
            }
        }
        assert!(!out.records.iter().any(|r| r.id.origin == n("lv") && matches!(r.record, DrillRecord::Fault { .. })));
        let ends: Vec<&Record> =
            out.records.iter().filter(|r| matches!(r.record, DrillRecord::End { aborted: false, .. })).collect();
        assert_eq!(ends.len(), 1);
        assert_eq!(ends[0].id.origin, out.controller);
        let last = out.records.iter().map(|r| r.created_ms).max().unwrap();
        assert!(out.converged_ms.unwrap() >= last);
        // The start, 20 + 5 wave items, one inject each for the cut and the check, 8 receipts,
        // 4 fault records, the end.
        assert_eq!(out.records.len(), 1 + 25 + 2 + 8 + 4 + 1);
    }

    #[test]
    fn the_records_make_a_report() {
        let out = simulate(&baltic(), &opts(1)).unwrap();
        let r = crate::drill::report::build(&out.records, out.converged_ms.unwrap(), &[]).unwrap();
        assert_eq!(r.participants, vec!["ee", "lt", "lv"]);
        assert!(r.end_recorded);
        assert_eq!(r.state, crate::drill::report::DrillState::Completed);
        assert_eq!(r.objectives.len(), 1);
        assert_eq!(r.objectives[0].beyond, 0, "{:?}", r.objectives[0]);
    }

    #[test]
    fn same_seed_same_records_other_seed_other_times() {
        let jittery = |seed| SimOptions { latency_ms: Some((10, 200)), ..opts(seed) };
        let a = simulate(&baltic(), &jittery(7)).unwrap();
        let b = simulate(&baltic(), &jittery(7)).unwrap();
        assert_eq!(a, b);
        let c = simulate(&baltic(), &jittery(8)).unwrap();
        let times = |o: &SimOutcome| receipts(&o.records).into_values().map(|(t, _)| t).collect::<Vec<_>>();
        assert_ne!(times(&a), times(&c), "another seed draws other link delays");
    }

    #[test]
    fn lossy_links_still_converge() {
        let out = simulate(&baltic(), &SimOptions { loss: 0.2, ..opts(3) }).unwrap();
        assert_eq!(receipts(&out.records).len(), 8);
    }

    /// What a node sends grows linearly with the federation, not with its square: four times
    /// the members, at most about four times the bytes per node (the announcements of every
    /// origin to every peer grew sixteenfold).
    #[test]
    fn bytes_per_node_grow_linearly_with_the_members() {
        let per_node = |nodes: usize| {
            let out = simulate(&baltic(), &SimOptions { nodes: Some(nodes), ..opts(1) }).unwrap();
            // Four injects (two waves, the cut, the check), each answered by every other node.
            assert_eq!(receipts(&out.records).len(), 4 * (nodes - 1), "{nodes} nodes: every receipt");
            let heads = out.by_kind.get("Heads").map_or(0, |t| t.bytes);
            let total: u64 = out.by_kind.values().map(|t| t.bytes).sum();
            assert_eq!(total, out.bytes, "the kinds add up to the whole");
            (out.bytes as f64 / nodes as f64, heads as f64 / nodes as f64)
        };
        let (small, small_heads) = per_node(8);
        let (large, large_heads) = per_node(32);
        println!("bytes per node: 8 nodes {small:.0} ({small_heads:.0} heads), 32 nodes {large:.0} ({large_heads:.0})");
        assert!(large_heads <= 6.0 * small_heads, "announcements: {small_heads:.0} → {large_heads:.0} bytes per node");
        assert!(large <= 6.0 * small, "all messages: {small:.0} → {large:.0} bytes per node");
    }

    #[test]
    fn thirty_two_nodes_take_a_wave_of_a_hundred() {
        let scenario = Scenario { injects: vec![wave("wave", 0, "lv", 100), comm_check(1_000)], ..baltic() };
        let out = simulate(&scenario, &SimOptions { nodes: Some(32), ..opts(5) }).unwrap();
        assert_eq!(out.nodes.len(), 32);
        assert!(out.nodes.contains(&n("gb")) && !out.nodes.contains(&n("us")), "members are added in table order");
        println!("32 nodes: {} messages, converged at {:?}", out.messages, out.converged_ms);
        let rec = receipts(&out.records);
        assert_eq!(rec.keys().filter(|(_, i)| i == "wave").count(), 31);
        assert_eq!(rec.keys().filter(|(_, i)| i == "comm").count(), 31);
        assert!(out.records.iter().any(|r| matches!(r.record, DrillRecord::End { .. })));
    }

    #[test]
    fn hours_long_drill_with_an_isolated_node_skips_the_quiet_spells() {
        let scenario = Scenario {
            injects: vec![
                wave("wave", 0, "lv", 10),
                Inject {
                    name: "isolate".into(),
                    at_ms: 1_800_000,
                    from: None,
                    action: InjectAction::Isolate { node: n("lt"), duration_ms: 600_000 },
                },
                wave("late", 2_000_000, "ee", 3),
                comm_check(3 * 3_600_000),
            ],
            ..baltic()
        };
        let out = simulate(&scenario, &opts(2)).unwrap();
        let rec = receipts(&out.records);
        assert_eq!(rec.len(), 8, "{rec:?}");
        let (late_at_lt, _) = rec[&("lt".to_string(), "late".to_string())];
        let lifted = out.records.iter().find_map(|r| match &r.record {
            DrillRecord::Fault { state: FaultState::Lifted, at_ms, .. } if r.id.origin == n("lt") => Some(*at_ms),
            _ => None,
        });
        assert!(late_at_lt >= lifted.unwrap(), "isolated lt got the late wave only after the lift");
    }

    #[test]
    fn link_delays_follow_the_map() {
        let nodes = vec![n("ee"), n("lv"), n("us"), n("zz")];
        let d = link_delays(&nodes, None);
        let (tallinn_riga, tallinn_washington) = (d[&(0, 1)], d[&(0, 2)]);
        assert!(tallinn_riga.0 < 10 && tallinn_washington.0 > 60, "{d:?}");
        assert_eq!(d[&(2, 3)], UNKNOWN_LINK_MS);
        assert!(link_delays(&nodes, Some((5, 9))).values().all(|r| *r == (5, 9)));
    }

    #[test]
    fn bad_options_are_refused_with_the_fix() {
        let s = baltic();
        let check = |o: SimOptions, want: &str| {
            let e = simulate(&s, &o).unwrap_err();
            assert!(e.contains(want), "{e}");
        };
        check(SimOptions { nodes: Some(2), ..opts(0) }, "give 3 to 64");
        check(SimOptions { nodes: Some(65), ..opts(0) }, "give 3 to 64");
        check(SimOptions { latency_ms: Some((9, 5)), ..opts(0) }, "low-high");
        check(SimOptions { loss: 0.6, ..opts(0) }, "0.0 to 0.5");
        check(SimOptions { loss: f64::NAN, ..opts(0) }, "0.0 to 0.5");
    }
}
