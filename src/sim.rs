//! A deterministic in-process federation: `Sync` machines over a simulated network and clock,
//! with seeded faults (drop, delay and reorder, duplicate, partition, node restart).
//!
//! Everything random comes from one seed, so a failing run replays exactly. Each node keeps an
//! in-memory log (`MemLog`) with the store's acceptance rules: real signatures, real chain checks,
//! redacted stubs, forks kept apart. Used by the simulation tests and by `drill simulate`
//! (`drill::simulate`), which drives it step by step: per-link delays (`SimConfig::link_delay_ms`),
//! a record of what each node stored and from whom (`record_stored`, `take_stored`), links cut and
//! restored one by one (`cut_link`, `restore_link`).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};

use ed25519_dalek::SigningKey;

use crate::log::{self, ChainError, ChainTip, SignedEntry, VerifiedEntry};
use crate::model::{Body, EntryId, Indicator, IndicatorInput, NodeName, Retraction, Sighting};
use crate::roster::{Member, Roster};
use crate::sync::{Action, LogView, Sync, SyncConfig};
use crate::wire::{self, Message};

/// SplitMix64: small, fast, and good enough to drive fault injection reproducibly.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

/// An in-memory log with the store's acceptance rules.
#[derive(Debug, Default, Clone)]
pub struct MemLog {
    logs: BTreeMap<NodeName, Vec<VerifiedEntry>>,
    pub forks: Vec<SignedEntry>,
    pub quarantined: BTreeSet<NodeName>,
}

impl LogView for MemLog {
    fn range(&self, origin: &NodeName, from_seq: u64, limit: usize) -> Vec<VerifiedEntry> {
        let Some(l) = self.logs.get(origin) else { return Vec::new() };
        let start = (from_seq.max(1) - 1) as usize;
        l.iter().skip(start).take(limit).cloned().collect()
    }
}

impl MemLog {
    pub fn heads(&self) -> BTreeMap<NodeName, ChainTip> {
        self.logs.iter().filter_map(|(o, l)| l.last().map(|e| (o.clone(), e.tip()))).collect()
    }

    pub fn log(&self, origin: &NodeName) -> &[VerifiedEntry] {
        self.logs.get(origin).map_or(&[], |l| l.as_slice())
    }

    /// Stubs held although `node` is in their audience: bodies still to fetch.
    pub fn stubs_for(&self, node: &NodeName) -> Vec<(EntryId, crate::model::Audience)> {
        self.logs
            .values()
            .flatten()
            .filter(|e| e.entry().body.is_none() && e.header().audience.admits(&e.header().origin, node))
            .map(|e| (e.id(), e.header().audience.clone()))
            .collect()
    }

    /// Whether this very entry is held: same position and hash, and a body if it has one.
    fn holds(&self, e: &SignedEntry) -> bool {
        let seq = e.header.seq as usize;
        let held = self.logs.get(&e.header.origin).and_then(|l| l.get(seq.wrapping_sub(1)));
        held.is_some_and(|h| h.hash() == e.hash() && (h.entry().body.is_some() || e.body.is_none()))
    }

    pub fn append(&mut self, key: &SigningKey, me: &NodeName, now: u64, body: Body) -> VerifiedEntry {
        let tip = self.heads().get(me).copied();
        let v = VerifiedEntry::sign_own(key, me, tip.as_ref(), now, body);
        self.logs.entry(me.clone()).or_default().push(v.clone());
        v
    }

    /// Verifies and stores entries; returns what was newly stored or upgraded, forked origins,
    /// the positions of entries that could not be chained yet (gaps) and how many were rejected.
    pub fn ingest(&mut self, roster: &Roster, entries: Vec<SignedEntry>) -> Ingested {
        let mut stored = Vec::new();
        let mut forked = Vec::new();
        let mut gaps = Vec::new();
        let mut rejected = 0;
        // What is held already, exactly so, changes nothing: skip its signature check, the bulk of
        // the work when every node relays every entry to every peer. (The store checks first and
        // counts a forged duplicate as rejected; honest runs send none.)
        let entries: Vec<SignedEntry> = entries.into_iter().filter(|e| !self.holds(e)).collect();
        for r in log::authenticate_batch(roster, entries) {
            let Ok(a) = r else {
                rejected += 1;
                continue;
            };
            let o = a.header().origin.clone();
            if self.quarantined.contains(&o) {
                continue;
            }
            let l = self.logs.entry(o.clone()).or_default();
            let seq = a.header().seq;
            if seq as usize <= l.len() {
                let held = &mut l[seq as usize - 1];
                if held.hash() != a.hash() {
                    self.forks.push(a.entry().clone());
                    self.quarantined.insert(o.clone());
                    forked.push(o);
                } else if held.entry().body.is_none() && !a.is_stub() {
                    let v = a.confirm_held(&held.hash()).expect("same hash");
                    *held = v.clone();
                    stored.push(v);
                }
                continue;
            }
            match a.link(l.last().map(|e| e.tip()).as_ref()) {
                Ok(v) => {
                    l.push(v.clone());
                    stored.push(v);
                }
                Err((a, ChainError::Mismatch(_))) => {
                    self.forks.push(a.entry().clone());
                    self.quarantined.insert(o.clone());
                    forked.push(o);
                }
                Err((a, ChainError::Gap { .. })) => gaps.push((o, a.tip())),
                Err(_) => {}
            }
        }
        (stored, forked, gaps, rejected)
    }
}

/// What `MemLog::ingest` made of a message's entries: newly stored (or upgraded) entries, forked
/// origins, gaps (origin and position of entries that could not be chained yet) and the number
/// rejected.
pub type Ingested = (Vec<VerifiedEntry>, Vec<NodeName>, Vec<(NodeName, ChainTip)>, usize);

/// Fault rates and timing of a simulation.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub seed: u64,
    pub nodes: Vec<NodeName>,
    /// Probability that a message is lost.
    pub drop: f64,
    /// Probability that a message is delivered twice.
    pub duplicate: f64,
    /// One-way delay range; random delays reorder messages.
    pub delay_ms: (u64, u64),
    /// One-way delay ranges of single links (unordered pairs of node indices, lower index
    /// first), overriding `delay_ms` for those links. `None`: every link uses `delay_ms`.
    pub link_delay_ms: Option<BTreeMap<(usize, usize), (u64, u64)>>,
    /// Per-second probability of cutting a random link / healing one.
    pub partition: f64,
    /// Per-second probability of restarting a random node (it keeps its log, loses sync state).
    pub restart: f64,
    /// Entries appended per simulated second across the federation (on average).
    pub append_rate: f64,
    /// Length of the faulty phase, simulated ms.
    pub fault_ms: u64,
    /// Time allowed after healing to converge, simulated ms.
    pub heal_ms_max: u64,
    pub tick_ms: u64,
    /// The simulated clock at the start, ms since the epoch.
    pub start_ms: u64,
    /// How often each node's replication timer fires (`Sync::handle_timeout`), a multiple of
    /// `tick_ms`; a live node's is `node::TICK_MS`.
    pub timer_ms: u64,
    /// Skip `Sync::ingested` for a pushed batch that stored nothing (every entry a duplicate):
    /// all it would do is plan requests again, which the next timer does too. In a large
    /// federation every node relays every entry to every peer, so this is most of the work.
    pub skip_duplicate_pushes: bool,
    pub sync: SyncConfig,
}

impl SimConfig {
    pub fn faulty(seed: u64, nodes: &[&str]) -> SimConfig {
        SimConfig {
            seed,
            nodes: nodes.iter().map(|n| NodeName::new(n).expect("valid name")).collect(),
            drop: 0.05,
            duplicate: 0.05,
            delay_ms: (1, 80),
            link_delay_ms: None,
            partition: 0.3,
            restart: 0.1,
            append_rate: 4.0,
            fault_ms: 15_000,
            heal_ms_max: 120_000,
            tick_ms: 50,
            start_ms: 1_000_000,
            timer_ms: 50,
            skip_duplicate_pushes: false,
            sync: SyncConfig::default(),
        }
    }

    /// A federation without random faults or workload (no drops, duplicates, partitions,
    /// restarts or appends), ticking every 10 ms with the live node's 50 ms replication timer,
    /// duplicate pushes skipped: the caller appends and cuts links itself.
    pub fn quiet(seed: u64, nodes: Vec<NodeName>) -> SimConfig {
        SimConfig {
            seed,
            nodes,
            drop: 0.0,
            duplicate: 0.0,
            delay_ms: (1, 80),
            link_delay_ms: None,
            partition: 0.0,
            restart: 0.0,
            append_rate: 0.0,
            fault_ms: 0,
            heal_ms_max: 120_000,
            tick_ms: 10,
            start_ms: 1_000_000,
            timer_ms: 50,
            skip_duplicate_pushes: true,
            sync: SyncConfig::default(),
        }
    }
}

/// One entry newly stored at one node (recorded only after `Sim::record_stored(true)`).
#[derive(Debug, Clone)]
pub struct Stored {
    /// Simulated time it was stored: the append, or the delivery of the message carrying it.
    pub at_ms: u64,
    /// Index of the node that stored it.
    pub node: usize,
    /// The peer whose message carried it; `None` for the node's own append.
    pub from: Option<NodeName>,
    pub entry: VerifiedEntry,
}

struct SimNode {
    name: NodeName,
    key: SigningKey,
    log: MemLog,
    sync: Sync,
}

struct InFlightMsg {
    from: usize,
    to: usize,
    epoch: u64,
    msg: Message,
}

/// What a run did, for assertions and reports.
#[derive(Debug, Default, Clone)]
pub struct SimStats {
    pub appended: u64,
    pub messages: u64,
    pub bytes: u64,
    /// Messages and bytes sent, by kind of message (`Message::kind`).
    pub by_kind: BTreeMap<&'static str, Traffic>,
    pub dropped: u64,
    pub restarts: u64,
    pub cuts: u64,
    /// Simulated ms from heal to convergence.
    pub converge_ms: u64,
    /// Per entry and node: ms from append to stored there.
    pub delivery_ms: Vec<u64>,
}

/// Messages and their framed bytes.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Traffic {
    pub messages: u64,
    pub bytes: u64,
}

impl Traffic {
    fn add(&mut self, bytes: u64) {
        self.messages += 1;
        self.bytes += bytes;
    }

    /// What was sent since `before`.
    pub fn since(self, before: Traffic) -> Traffic {
        Traffic { messages: self.messages - before.messages, bytes: self.bytes - before.bytes }
    }
}

pub struct Sim {
    cfg: SimConfig,
    roster: Roster,
    nodes: Vec<SimNode>,
    rng: Rng,
    now: u64,
    /// When the replication timers fire next.
    timer_at: u64,
    queue: BinaryHeap<Reverse<(u64, u64)>>,
    msgs: HashMap<u64, InFlightMsg>,
    next_msg: u64,
    /// Links administratively cut (unordered pairs, lower index first).
    cut: BTreeSet<(usize, usize)>,
    /// Current connection epoch per pair; odd = connected.
    epoch: BTreeMap<(usize, usize), u64>,
    /// Every entry appended: the truth the nodes must converge to.
    pub truth: BTreeMap<NodeName, Vec<VerifiedEntry>>,
    appended_at: HashMap<EntryId, u64>,
    delivered: BTreeSet<(EntryId, usize)>,
    pub stats: SimStats,
    /// Whether stores are recorded in `stored` (off by default: long runs pay nothing).
    record_stored: bool,
    stored: Vec<Stored>,
}

/// Deterministic test key of a simulated node.
pub fn sim_key(name: &NodeName) -> SigningKey {
    let mut seed = [0x42u8; 32];
    for (i, b) in name.as_str().bytes().enumerate() {
        seed[i] = b;
    }
    SigningKey::from_bytes(&seed)
}

fn pair(a: usize, b: usize) -> (usize, usize) {
    (a.min(b), a.max(b))
}

impl Sim {
    pub fn new(cfg: SimConfig) -> Sim {
        assert!(cfg.delay_ms.0 <= cfg.delay_ms.1, "delay range {:?} is inverted", cfg.delay_ms);
        assert!(cfg.tick_ms > 0 && cfg.timer_ms.is_multiple_of(cfg.tick_ms), "timer_ms is a multiple of tick_ms");
        for (&(a, b), &(lo, hi)) in cfg.link_delay_ms.iter().flatten() {
            assert!(a < b && b < cfg.nodes.len(), "link ({a}, {b}) is not a pair of nodes, lower index first");
            assert!(lo <= hi, "delay range ({lo}, {hi}) of link ({a}, {b}) is inverted");
        }
        let roster = Roster::new(
            cfg.nodes
                .iter()
                .enumerate()
                .map(|(i, n)| Member::new(n.clone(), sim_key(n).verifying_key(), format!("sim:{i}"))),
        )
        .expect("valid sim roster");
        let nodes = cfg
            .nodes
            .iter()
            .map(|n| SimNode {
                name: n.clone(),
                key: sim_key(n),
                log: MemLog::default(),
                sync: Sync::new(n.clone(), cfg.nodes.clone(), BTreeMap::new(), BTreeSet::new(), cfg.sync.clone()),
            })
            .collect();
        let rng = Rng::new(cfg.seed);
        let start_ms = cfg.start_ms;
        let mut sim = Sim {
            cfg,
            roster,
            nodes,
            rng,
            now: start_ms,
            timer_at: start_ms,
            queue: BinaryHeap::new(),
            msgs: HashMap::new(),
            next_msg: 0,
            cut: BTreeSet::new(),
            epoch: BTreeMap::new(),
            truth: BTreeMap::new(),
            appended_at: HashMap::new(),
            delivered: BTreeSet::new(),
            stats: SimStats::default(),
            record_stored: false,
            stored: Vec::new(),
        };
        sim.reconnect_all();
        sim
    }

    pub fn node_log(&self, i: usize) -> &MemLog {
        &self.nodes[i].log
    }

    pub fn now(&self) -> u64 {
        self.now
    }

    pub fn roster(&self) -> &Roster {
        &self.roster
    }

    /// The node names, by index.
    pub fn names(&self) -> Vec<NodeName> {
        self.nodes.iter().map(|n| n.name.clone()).collect()
    }

    /// The index of a node.
    pub fn index(&self, name: &NodeName) -> Option<usize> {
        self.nodes.iter().position(|n| n.name == *name)
    }

    /// Starts (or stops) recording every entry a node newly stores, for `take_stored`.
    pub fn record_stored(&mut self, on: bool) {
        self.record_stored = on;
        if !on {
            self.stored.clear();
        }
    }

    /// What the nodes stored since the last call, in the order they stored it.
    pub fn take_stored(&mut self) -> Vec<Stored> {
        std::mem::take(&mut self.stored)
    }

    /// Whether every node holds every appended entry: the same head for every origin as the
    /// entries appended (cheaper than `check`, which also compares every entry and body).
    pub fn converged(&self) -> bool {
        self.nodes.iter().all(|n| {
            n.log.heads().len() == self.truth.len()
                && self.truth.iter().all(|(o, t)| n.log.log(o).last().map(|e| e.hash()) == t.last().map(|e| e.hash()))
        })
    }

    /// Runs the faulty phase, heals everything, and runs until converged. Returns an error
    /// describing the first divergence if the federation did not converge in time.
    pub fn run(&mut self) -> Result<(), String> {
        let end = self.now + self.cfg.fault_ms;
        while self.now < end {
            self.step(true);
        }
        self.heal();
        let healed = self.now;
        let deadline = self.now + self.cfg.heal_ms_max;
        while self.now < deadline {
            self.step(false);
            if self.check().is_ok() {
                self.stats.converge_ms = self.now - healed;
                return Ok(());
            }
        }
        self.check()
    }

    /// Appends an entry at node `i` now.
    pub fn append(&mut self, i: usize, body: Body) {
        self.append_batch(i, vec![body]);
    }

    /// Appends entries at node `i` now, in order, as one group commit: replication hears of
    /// them together, so a peer gets them in one message. Returns their ids.
    pub fn append_batch(&mut self, i: usize, bodies: Vec<Body>) -> Vec<EntryId> {
        let now = self.now;
        let n = &mut self.nodes[i];
        let (key, name) = (n.key.clone(), n.name.clone());
        let written: Vec<VerifiedEntry> = bodies.into_iter().map(|b| n.log.append(&key, &name, now, b)).collect();
        n.sync.stored(now, None, &written);
        let mut ids = Vec::with_capacity(written.len());
        for v in written {
            ids.push(v.id());
            self.appended_at.insert(v.id(), now);
            self.delivered.insert((v.id(), i));
            if self.record_stored {
                self.stored.push(Stored { at_ms: now, node: i, from: None, entry: v.clone() });
            }
            self.truth.entry(name.clone()).or_default().push(v);
            self.stats.appended += 1;
        }
        self.drain(i);
        ids
    }

    /// Cuts the link between nodes `a` and `b` until healed or restored.
    pub fn cut_link(&mut self, a: usize, b: usize) {
        self.cut.insert(pair(a, b));
        self.set_connected(a, b, false);
        self.stats.cuts += 1;
    }

    /// Undoes `cut_link(a, b)`: the pair reconnects (a fresh connection, `Hello` first).
    pub fn restore_link(&mut self, a: usize, b: usize) {
        if self.cut.remove(&pair(a, b)) {
            self.set_connected(a, b, true);
        }
    }

    /// Sets the probability that a message is lost, from now on.
    pub fn set_drop(&mut self, p: f64) {
        self.cfg.drop = p;
    }

    /// Restores every link and reconnects every pair.
    pub fn heal(&mut self) {
        self.cut.clear();
        self.cfg.drop = 0.0;
        self.cfg.duplicate = 0.0;
        self.reconnect_all();
    }

    /// When something is next due: a message delivery, or a node's replication timer
    /// (`Sync::poll_timeout`, on the `timer_ms` grid); `u64::MAX` when nothing is. A caller that
    /// drives the sim with `step(false)` may skip to it with `idle_until`.
    pub fn next_due_ms(&self) -> u64 {
        let message = self.queue.peek().map_or(u64::MAX, |Reverse((at, _))| *at);
        if message <= self.now + self.cfg.tick_ms {
            return message; // busy: spare the timers' scan
        }
        let timers = self.nodes.iter().map(|n| n.sync.poll_timeout()).min().unwrap_or(u64::MAX);
        message.min(timers.max(self.timer_at))
    }

    /// Moves the clock on by whole ticks, doing nothing, while the next tick would still end
    /// before `t`, so that the next `step` covers `t`. For a caller that knows nothing is due
    /// before `t` (`next_due_ms`): a quiet federation then costs nothing per simulated second.
    pub fn idle_until(&mut self, t: u64) {
        let tick = self.cfg.tick_ms;
        if t > self.now + tick {
            self.now += (t - self.now - 1) / tick * tick;
        }
    }

    /// Advances one tick, injecting faults and workload if `faults`.
    pub fn step(&mut self, faults: bool) {
        let tick_end = self.now + self.cfg.tick_ms;
        while let Some(&Reverse((at, id))) = self.queue.peek() {
            if at > tick_end {
                break;
            }
            self.queue.pop();
            self.now = self.now.max(at);
            if let Some(m) = self.msgs.remove(&id) {
                self.deliver(m);
            }
        }
        self.now = tick_end;
        let per_tick = self.cfg.tick_ms as f64 / 1000.0;
        if faults {
            if self.rng.chance(self.cfg.append_rate * per_tick) {
                let i = self.rng.below(self.nodes.len() as u64) as usize;
                let body = self.random_body(i);
                self.append(i, body);
            }
            if self.rng.chance(self.cfg.partition * per_tick) {
                let (a, b) = self.random_pair();
                if self.cut.contains(&pair(a, b)) {
                    self.cut.remove(&pair(a, b));
                    self.set_connected(a, b, true);
                } else {
                    self.cut_link(a, b);
                }
            }
            if self.rng.chance(self.cfg.restart * per_tick) {
                let i = self.rng.below(self.nodes.len() as u64) as usize;
                self.restart(i);
            }
        }
        if self.now >= self.timer_at {
            self.timer_at = self.now + self.cfg.timer_ms;
            for i in 0..self.nodes.len() {
                let now = self.now;
                self.nodes[i].sync.handle_timeout(now);
                self.drain(i);
            }
        }
    }

    fn random_pair(&mut self) -> (usize, usize) {
        let n = self.nodes.len() as u64;
        let a = self.rng.below(n) as usize;
        let b = (a + 1 + self.rng.below(n - 1) as usize) % n as usize;
        (a, b)
    }

    /// Restarts node `i`: its log survives (as the store does), its sync state does not.
    pub fn restart(&mut self, i: usize) {
        for j in 0..self.nodes.len() {
            if j != i {
                self.set_connected(i, j, false);
            }
        }
        let n = &mut self.nodes[i];
        n.sync = Sync::new(
            n.name.clone(),
            self.cfg.nodes.clone(),
            n.log.heads(),
            n.log.quarantined.clone(),
            self.cfg.sync.clone(),
        );
        n.sync.want_bodies(n.log.stubs_for(&n.name));
        self.stats.restarts += 1;
        for j in 0..self.nodes.len() {
            if j != i && !self.cut.contains(&pair(i, j)) {
                self.set_connected(i, j, true);
            }
        }
    }

    fn reconnect_all(&mut self) {
        for a in 0..self.nodes.len() {
            for b in a + 1..self.nodes.len() {
                // A fresh connection, as after a network heal: drop and re-establish.
                self.set_connected(a, b, false);
                if !self.cut.contains(&(a, b)) {
                    self.set_connected(a, b, true);
                }
            }
        }
    }

    fn set_connected(&mut self, a: usize, b: usize, up: bool) {
        let e = self.epoch.entry(pair(a, b)).or_insert(0);
        let is_up = *e % 2 == 1;
        if is_up == up {
            return;
        }
        *e += 1;
        let now = self.now;
        let (na, nb) = (self.nodes[a].name.clone(), self.nodes[b].name.clone());
        if up {
            self.nodes[a].sync.peer_connected(now, &nb);
            self.nodes[b].sync.peer_connected(now, &na);
        } else {
            self.nodes[a].sync.peer_disconnected(now, &nb);
            self.nodes[b].sync.peer_disconnected(now, &na);
        }
        self.drain(a);
        self.drain(b);
    }

    fn deliver(&mut self, m: InFlightMsg) {
        if self.epoch.get(&pair(m.from, m.to)) != Some(&m.epoch) {
            return; // the connection it was sent on is gone
        }
        let now = self.now;
        let from = self.nodes[m.from].name.clone();
        let n = &mut self.nodes[m.to];
        n.sync.handle_message(now, &from, m.msg, &n.log);
        self.drain(m.to);
    }

    /// Carries out node `i`'s actions until it has none.
    fn drain(&mut self, i: usize) {
        while let Some(a) = self.nodes[i].sync.poll_action() {
            match a {
                Action::Send { to, msg } => self.send(i, &to, msg),
                Action::Ingest { from, reply_to, entries } => {
                    let now = self.now;
                    let n = &mut self.nodes[i];
                    let (stored, forked, gaps, _rejected) = n.log.ingest(&self.roster, entries);
                    for (origin, got) in &gaps {
                        n.sync.peer_holds(&from, origin, *got);
                    }
                    for v in &stored {
                        if let Some(at) = self.appended_at.get(&v.id())
                            && self.delivered.insert((v.id(), i))
                        {
                            self.stats.delivery_ms.push(now - at);
                        }
                        if self.record_stored {
                            let from = Some(from.clone());
                            self.stored.push(Stored { at_ms: now, node: i, from, entry: v.clone() });
                        }
                    }
                    let duplicates = reply_to.is_none() && stored.is_empty() && forked.is_empty() && gaps.is_empty();
                    if !(duplicates && self.cfg.skip_duplicate_pushes) {
                        n.sync.ingested(now, &from, reply_to, &stored, &forked);
                    }
                }
                Action::Disconnect { peer, .. } => {
                    if let Some(j) = self.index(&peer) {
                        self.set_connected(i, j, false);
                    }
                }
            }
        }
    }

    fn send(&mut self, from: usize, to: &NodeName, msg: Message) {
        let Some(to) = self.index(to) else { return };
        let Some(&epoch) = self.epoch.get(&pair(from, to)).filter(|e| *e % 2 == 1) else { return };
        let bytes = wire::encode_frame(&msg).len() as u64;
        self.stats.messages += 1;
        self.stats.bytes += bytes;
        self.stats.by_kind.entry(msg.kind()).or_default().add(bytes);
        if self.rng.chance(self.cfg.drop) {
            self.stats.dropped += 1;
            return;
        }
        let copies = if self.rng.chance(self.cfg.duplicate) { 2 } else { 1 };
        let link = self.cfg.link_delay_ms.as_ref().and_then(|m| m.get(&pair(from, to)));
        let (lo, hi) = link.copied().unwrap_or(self.cfg.delay_ms);
        for _ in 0..copies {
            let at = self.now + lo + self.rng.below(hi - lo + 1);
            let id = self.next_msg;
            self.next_msg += 1;
            self.msgs.insert(id, InFlightMsg { from, to, epoch, msg: msg.clone() });
            self.queue.push(Reverse((at, id)));
        }
    }

    fn random_body(&mut self, i: usize) -> Body {
        let me = self.nodes[i].name.clone();
        let own: Vec<u64> = self.nodes[i]
            .log
            .log(&me)
            .iter()
            .filter(|e| matches!(e.body(), Some(Body::Indicator(_))))
            .map(|e| e.header().seq)
            .collect();
        let roll = self.rng.below(10);
        if roll == 0 && !own.is_empty() {
            let target_seq = own[self.rng.below(own.len() as u64) as usize];
            return Body::Retraction(Retraction { target_seq, reason: "simulated retraction".into() });
        }
        if roll == 1 {
            let others: Vec<EntryId> = self
                .truth
                .values()
                .flatten()
                .filter(|e| matches!(e.body(), Some(Body::Indicator(_))))
                .map(|e| e.id())
                .collect();
            if !others.is_empty() {
                let indicator = others[self.rng.below(others.len() as u64) as usize].clone();
                return Body::Sighting(Sighting {
                    indicator,
                    count: 1 + self.rng.below(5) as u32,
                    first_seen_ms: self.now,
                    last_seen_ms: self.now,
                    note: String::new(),
                });
            }
        }
        let n = self.stats.appended;
        let mut input =
            IndicatorInput { itype: "ipv4".into(), value: format!("203.0.113.{}", n % 250), ..Default::default() };
        if roll == 2 {
            input.itype = "domain".into();
            input.value = format!("c2-{n}.example.com");
            input.tlp = "red".into();
            let (a, _) = self.random_pair();
            input.recipients = vec![self.nodes[a].name.to_string()];
        }
        Body::Indicator(Indicator::from_input(&input, self.now).expect("valid synthetic indicator"))
    }

    /// Checks convergence: every node holds every appended entry (same hash), with a body
    /// exactly when it is in the entry's audience, and nothing that was never appended.
    pub fn check(&self) -> Result<(), String> {
        for (i, n) in self.nodes.iter().enumerate() {
            if !n.log.forks.is_empty() {
                return Err(format!("node {} recorded a fork in an honest run", n.name));
            }
            for (origin, entries) in &self.truth {
                let held = n.log.log(origin);
                if held.len() != entries.len() {
                    return Err(format!(
                        "node {} holds {} of {}'s {} entries",
                        n.name,
                        held.len(),
                        origin,
                        entries.len()
                    ));
                }
                for (h, t) in held.iter().zip(entries) {
                    if h.hash() != t.hash() {
                        return Err(format!("node {} holds a different {}", n.name, t.id()));
                    }
                    let may_read = t.header().audience.admits(origin, &n.name);
                    if h.entry().body.is_some() != may_read {
                        return Err(format!(
                            "node {} (#{i}) body of {}: held={} may_read={may_read}",
                            n.name,
                            t.id(),
                            h.entry().body.is_some()
                        ));
                    }
                }
            }
            for origin in n.log.heads().keys() {
                if !self.truth.contains_key(origin) {
                    return Err(format!("node {} holds entries of {origin} that were never appended", n.name));
                }
            }
        }
        Ok(())
    }
}
