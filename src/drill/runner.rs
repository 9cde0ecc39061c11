//! The drill state machine of one node: sans-IO, no clock of its own.
//!
//! Inputs: every drill record this node stores (its own appends and entries from peers, with the
//! peer that delivered it), a timer tick with `now`, and operator commands (start, acknowledge,
//! abort). Outputs: drill records to append to this node's own log, and links to block or
//! unblock for drill faults. The node (`node.rs`) and the simulated federation (`simulate.rs`)
//! drive the same machine, so a simulated drill behaves as a live one.
//!
//! What a participant does, all from the start record's scenario:
//! - at each inject's offset, if it is the inject's source, it writes the inject (a wave writes
//!   one entry per indicator);
//! - when it holds every entry of another node's inject, it writes a receipt (`Ack` without a
//!   note) naming the peer that delivered the last one;
//! - when a fault inject names it, it blocks the links (if `[drill] allow_faults`) and writes
//!   `Fault Applied`, or writes `Fault NotPermitted`; after the duration it unblocks and writes
//!   `Fault Lifted`;
//! - the controller writes `End` once the scenario's duration has passed.
//!
//! A restarted node rebuilds its state from the stored records (`restore`): it neither repeats an
//! inject nor a receipt it already wrote, and re-applies a fault whose window is still open.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::model::drill::{DrillRecord, FaultState, InjectAction, InjectPayload, Scenario};
use crate::model::{Body, EntryId, Indicator, IndicatorInput, IndicatorType, NodeName, Tlp};

use super::Record;

/// Lead time between writing a start record and the drill's offset 0, so that participants hold
/// the scenario before the first inject is due.
pub const START_LEAD_MS: u64 = 500;
/// Most drills one node tracks as running at once.
pub const RUNNING_DRILLS_MAX: usize = 16;
/// Most records one output batch carries (a wave of 10,000 is written in several batches).
pub const OUTPUT_BATCH_MAX: usize = 1_000;

/// What the node must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Append these drill records to our own log.
    Append(Vec<Body>),
    /// Block (or unblock) the link to a peer for a drill fault.
    Block { peer: NodeName, blocked: bool },
}

/// Why an operator command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DrillError {
    #[error("no drill {0} is known at this node: `ctix drill list` shows the drills")]
    Unknown(EntryId),
    #[error("drill {0} is over: nothing can change it any more")]
    Over(EntryId),
    #[error("this node is not a participant of drill {0}")]
    NotParticipant(EntryId),
    #[error("drill {drill} has no inject {inject:?}; its injects are {known}")]
    NoSuchInject { drill: EntryId, inject: String, known: String },
    #[error(
        "inject {0:?} is answered by the nodes themselves; only situation updates take an operator's acknowledgement"
    )]
    NotHuman(String),
    #[error("inject {0:?} has not reached this node yet: acknowledge it once it has arrived")]
    NotReceived(String),
    #[error("inject {0:?} is already acknowledged at this node")]
    AlreadyAcked(String),
    #[error("only the controller ({0}) can abort this drill")]
    NotController(NodeName),
    #[error("{0} drills are running at this node already: wait for one to end or abort it")]
    TooMany(usize),
    #[error("drill {0} is still running: abort it or wait for its end first")]
    Running(EntryId),
    #[error("invalid scenario: {0}")]
    Invalid(String),
}

/// A drill as this node sees it, for `drill list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrillSummary {
    pub id: EntryId,
    pub name: String,
    pub controller: NodeName,
    pub start_ms: u64,
    pub end_ms: u64,
    pub participant: bool,
    /// `running`, `completed` or `aborted`.
    pub state: &'static str,
}

#[derive(Debug)]
struct Drill {
    controller: NodeName,
    scenario: Scenario,
    start_ms: u64,
    participant: bool,
    /// Injects whose entries this node has written (its own injects).
    emitted: BTreeSet<String>,
    /// Entries held per inject of other sources, and the peer that delivered the latest.
    received: BTreeMap<String, (BTreeSet<u32>, Option<NodeName>)>,
    /// Injects this node wrote a receipt for.
    receipts: BTreeSet<String>,
    human_acks: BTreeSet<String>,
    /// Faults this node applied: inject → (peers blocked, lift time). Removed when lifted.
    faults: BTreeMap<String, (Vec<NodeName>, u64)>,
    /// Fault injects this node has answered (applied, refused).
    faults_answered: BTreeSet<String>,
    ended: Option<bool>,
}

/// The drill machine of one node.
#[derive(Debug)]
pub struct Runner {
    me: NodeName,
    /// Every other roster member (an isolated node blocks them all).
    peers: Vec<NodeName>,
    allow_faults: bool,
    drills: BTreeMap<EntryId, Drill>,
    /// Reasons a peer's link is blocked by drills (count: faults may overlap).
    blocks: BTreeMap<NodeName, u32>,
    out: VecDeque<Output>,
}

impl Runner {
    pub fn new(me: NodeName, roster: impl IntoIterator<Item = NodeName>, allow_faults: bool) -> Runner {
        let peers = roster.into_iter().filter(|n| *n != me).collect();
        Runner { me, peers, allow_faults, drills: BTreeMap::new(), blocks: BTreeMap::new(), out: VecDeque::new() }
    }

    /// Rebuilds state from the records of one drill held in the store (after a restart), without
    /// repeating what this node already wrote. Call `tick` afterwards.
    pub fn restore(&mut self, now: u64, records: &[Record]) {
        let mut records: Vec<&Record> = records.iter().collect();
        records.sort_by_key(|r| (r.record.drill().is_some(), r.created_ms, r.id.clone()));
        for r in records {
            // Our own records say what we did; for others' injects the via peer is unknown now.
            let via = if r.id.origin == self.me { None } else { Some(r.id.origin.clone()) };
            self.record(now, via.as_ref(), r, true);
        }
        // Injects held in full whose receipt we had not written yet when we stopped.
        for (id, d) in &mut self.drills {
            if !d.participant {
                continue;
            }
            for inj in &d.scenario.injects {
                let complete =
                    d.received.get(&inj.name).is_some_and(|(items, _)| items.len() as u32 >= inj.action.entries());
                if complete && d.receipts.insert(inj.name.clone()) {
                    let ack = DrillRecord::Ack {
                        drill: id.clone(),
                        inject: inj.name.clone(),
                        received_ms: now,
                        via: d.received[&inj.name].1.clone(),
                        human: None,
                    };
                    self.out.push_back(Output::Append(vec![Body::Drill(ack)]));
                }
            }
        }
    }

    /// The start record a controller writes for `scenario`. The caller appends it; its entry id
    /// becomes the drill id once `record` sees it.
    pub fn start(&self, now: u64, scenario: Scenario) -> Result<Body, DrillError> {
        scenario.validate().map_err(|e| DrillError::Invalid(e.to_string()))?;
        if !scenario.participants.contains(&self.me) {
            return Err(DrillError::Invalid(format!(
                "the controller ({}) must be a participant: add it to `participants`",
                self.me
            )));
        }
        let running = self.drills.values().filter(|d| d.ended.is_none()).count();
        if running >= RUNNING_DRILLS_MAX {
            return Err(DrillError::TooMany(running));
        }
        Ok(Body::Drill(DrillRecord::Start { scenario, start_ms: now + START_LEAD_MS }))
    }

    /// An operator's acknowledgement of a situation update.
    pub fn ack(&self, now: u64, drill: &EntryId, inject: &str, note: &str) -> Result<Body, DrillError> {
        let d = self.drills.get(drill).ok_or_else(|| DrillError::Unknown(drill.clone()))?;
        if d.ended.is_some() {
            return Err(DrillError::Over(drill.clone()));
        }
        if !d.participant {
            return Err(DrillError::NotParticipant(drill.clone()));
        }
        let inj = d.scenario.inject(inject).ok_or_else(|| DrillError::NoSuchInject {
            drill: drill.clone(),
            inject: inject.into(),
            known: d.scenario.injects.iter().map(|i| i.name.as_str()).collect::<Vec<_>>().join(", "),
        })?;
        if !inj.action.needs_human() {
            return Err(DrillError::NotHuman(inject.into()));
        }
        let source = inj.from.as_ref().unwrap_or(&d.controller);
        let held = if *source == self.me { d.emitted.contains(inject) } else { d.receipts.contains(inject) };
        if !held {
            return Err(DrillError::NotReceived(inject.into()));
        }
        if d.human_acks.contains(inject) {
            return Err(DrillError::AlreadyAcked(inject.into()));
        }
        Ok(Body::Drill(DrillRecord::Ack {
            drill: drill.clone(),
            inject: inject.into(),
            received_ms: now,
            via: None,
            human: Some(note.into()),
        }))
    }

    /// The controller's end record for an aborted drill.
    pub fn abort(&self, drill: &EntryId, reason: &str) -> Result<Body, DrillError> {
        let d = self.drills.get(drill).ok_or_else(|| DrillError::Unknown(drill.clone()))?;
        if d.ended.is_some() {
            return Err(DrillError::Over(drill.clone()));
        }
        if d.controller != self.me {
            return Err(DrillError::NotController(d.controller.clone()));
        }
        Ok(Body::Drill(DrillRecord::End { drill: drill.clone(), aborted: true, reason: reason.into() }))
    }

    /// The drills this node knows, oldest first.
    pub fn list(&self) -> Vec<DrillSummary> {
        let mut v: Vec<DrillSummary> = self
            .drills
            .iter()
            .map(|(id, d)| DrillSummary {
                id: id.clone(),
                name: d.scenario.name.clone(),
                controller: d.controller.clone(),
                start_ms: d.start_ms,
                end_ms: d.start_ms.saturating_add(d.scenario.duration_ms()),
                participant: d.participant,
                state: match d.ended {
                    None => "running",
                    Some(false) => "completed",
                    Some(true) => "aborted",
                },
            })
            .collect();
        v.sort_by_key(|s| (s.start_ms, s.id.clone()));
        v
    }

    /// Forgets a drill (after a purge).
    pub fn forget(&mut self, drill: &EntryId) {
        if let Some(d) = self.drills.remove(drill) {
            for (_, (peers, _)) in d.faults {
                self.unblock(&peers);
            }
        }
    }

    /// A drill record stored at this node: `via` is the peer it came from (`None`: our own).
    pub fn stored(&mut self, now: u64, via: Option<&NodeName>, r: &Record) {
        self.record(now, via, r, false);
    }

    fn record(&mut self, now: u64, via: Option<&NodeName>, r: &Record, replay: bool) {
        let me = self.me.clone();
        match &r.record {
            DrillRecord::Start { scenario, start_ms } => {
                if self.drills.contains_key(&r.id) {
                    return;
                }
                self.drills.insert(
                    r.id.clone(),
                    Drill {
                        controller: r.id.origin.clone(),
                        participant: scenario.participants.contains(&me),
                        scenario: scenario.clone(),
                        start_ms: *start_ms,
                        emitted: BTreeSet::new(),
                        received: BTreeMap::new(),
                        receipts: BTreeSet::new(),
                        human_acks: BTreeSet::new(),
                        faults: BTreeMap::new(),
                        faults_answered: BTreeSet::new(),
                        ended: None,
                    },
                );
            }
            DrillRecord::Inject { drill, inject, item, payload } => {
                let Some(d) = self.drills.get_mut(drill) else { return };
                let Some(inj) = d.scenario.inject(inject).cloned() else { return };
                let source = inj.from.clone().unwrap_or_else(|| d.controller.clone());
                if r.id.origin != source {
                    return; // only the inject's source may write it
                }
                if source == me {
                    d.emitted.insert(inject.clone());
                } else {
                    let e = d.received.entry(inject.clone()).or_default();
                    e.0.insert(*item);
                    if via.is_some() {
                        e.1 = via.cloned();
                    }
                    // Late receipts count too: a node that was down catches up and says when.
                    if d.participant
                        && e.0.len() as u32 >= inj.action.entries()
                        && !d.receipts.contains(inject)
                        && !replay
                    {
                        d.receipts.insert(inject.clone());
                        let ack = DrillRecord::Ack {
                            drill: drill.clone(),
                            inject: inject.clone(),
                            received_ms: now,
                            via: e.1.clone(),
                            human: None,
                        };
                        self.out.push_back(Output::Append(vec![Body::Drill(ack)]));
                    }
                }
                if matches!(payload, InjectPayload::Fault) && d.participant && d.ended.is_none() {
                    self.fault(now, drill, inject);
                }
            }
            DrillRecord::Ack { drill, inject, human, .. } if r.id.origin == me => {
                let Some(d) = self.drills.get_mut(drill) else { return };
                if human.is_some() {
                    d.human_acks.insert(inject.clone());
                } else {
                    d.receipts.insert(inject.clone());
                }
            }
            DrillRecord::Ack { .. } => {}
            DrillRecord::Fault { drill, inject, state, at_ms } if r.id.origin == me => {
                let Some(d) = self.drills.get_mut(drill) else { return };
                d.faults_answered.insert(inject.clone());
                if !replay {
                    return;
                }
                // After a restart: re-apply a fault whose window is still open.
                match state {
                    FaultState::Applied => {
                        let Some((_, duration)) = d.scenario.inject(inject).and_then(|i| i.action.fault()) else {
                            return;
                        };
                        let peers = self.fault_peers(drill, inject);
                        let d = self.drills.get_mut(drill).expect("checked above");
                        d.faults.insert(inject.clone(), (peers.clone(), at_ms.saturating_add(duration)));
                        self.block(&peers);
                    }
                    FaultState::Lifted => {
                        if let Some((peers, _)) = d.faults.remove(inject) {
                            self.unblock(&peers);
                        }
                    }
                    FaultState::NotPermitted => {}
                }
            }
            DrillRecord::Fault { .. } => {}
            DrillRecord::End { drill, aborted, .. } => {
                if r.id.origin != drill.origin {
                    return; // only the controller ends a drill
                }
                let Some(d) = self.drills.get_mut(drill) else { return };
                d.ended = Some(*aborted);
                let faults: Vec<(String, Vec<NodeName>)> =
                    std::mem::take(&mut d.faults).into_iter().map(|(k, (p, _))| (k, p)).collect();
                for (inject, peers) in faults {
                    self.unblock(&peers);
                    self.lifted(now, drill, &inject);
                }
            }
        }
    }

    /// The peers a fault inject cuts us off from (empty when the fault is not about us).
    fn fault_peers(&self, drill: &EntryId, inject: &str) -> Vec<NodeName> {
        let Some(action) = self.drills.get(drill).and_then(|d| d.scenario.inject(inject)).map(|i| &i.action) else {
            return Vec::new();
        };
        match action {
            InjectAction::Isolate { node, .. } if *node == self.me => self.peers.clone(),
            InjectAction::CutLink { a, b, .. } if *a == self.me => vec![b.clone()],
            InjectAction::CutLink { a, b, .. } if *b == self.me => vec![a.clone()],
            _ => Vec::new(),
        }
    }

    fn fault(&mut self, now: u64, drill: &EntryId, inject: &str) {
        let peers = self.fault_peers(drill, inject);
        let d = self.drills.get_mut(drill).expect("caller checked");
        if peers.is_empty() || d.faults_answered.contains(inject) {
            return;
        }
        d.faults_answered.insert(inject.into());
        let Some((_, duration)) = d.scenario.inject(inject).and_then(|i| i.action.fault()) else { return };
        let state = if self.allow_faults {
            d.faults.insert(inject.into(), (peers.clone(), now.saturating_add(duration)));
            FaultState::Applied
        } else {
            FaultState::NotPermitted
        };
        let rec = DrillRecord::Fault { drill: drill.clone(), inject: inject.into(), state, at_ms: now };
        // The record comes before the block in the output queue; the node commits pending records
        // and queues them to peers before it applies a block (best effort, see node.rs).
        self.out.push_back(Output::Append(vec![Body::Drill(rec)]));
        if state == FaultState::Applied {
            self.block(&peers);
        }
    }

    fn lifted(&mut self, now: u64, drill: &EntryId, inject: &str) {
        let rec =
            DrillRecord::Fault { drill: drill.clone(), inject: inject.into(), state: FaultState::Lifted, at_ms: now };
        self.out.push_back(Output::Append(vec![Body::Drill(rec)]));
    }

    fn block(&mut self, peers: &[NodeName]) {
        for p in peers {
            let n = self.blocks.entry(p.clone()).or_insert(0);
            *n += 1;
            if *n == 1 {
                self.out.push_back(Output::Block { peer: p.clone(), blocked: true });
            }
        }
    }

    fn unblock(&mut self, peers: &[NodeName]) {
        for p in peers {
            if let Some(n) = self.blocks.get_mut(p) {
                *n -= 1;
                if *n == 0 {
                    self.blocks.remove(p);
                    self.out.push_back(Output::Block { peer: p.clone(), blocked: false });
                }
            }
        }
    }

    /// Timer: due injects, fault lifts, the controller's end record.
    pub fn tick(&mut self, now: u64) {
        let me = self.me.clone();
        let mut lifts = Vec::new();
        let mut appends: Vec<Body> = Vec::new();
        for (id, d) in self.drills.iter_mut() {
            if d.ended.is_some() || !d.participant {
                continue;
            }
            for inj in &d.scenario.injects {
                let source = inj.from.as_ref().unwrap_or(&d.controller);
                if *source != me || d.start_ms.saturating_add(inj.at_ms) > now || d.emitted.contains(&inj.name) {
                    continue;
                }
                d.emitted.insert(inj.name.clone());
                appends.extend(inject_bodies(id, &inj.name, &inj.action, now));
            }
            for (inject, (_, lift_at)) in &d.faults {
                if *lift_at <= now {
                    lifts.push((id.clone(), inject.clone()));
                }
            }
            if d.controller == me && now >= d.start_ms.saturating_add(d.scenario.duration_ms()) {
                appends.push(Body::Drill(DrillRecord::End {
                    drill: id.clone(),
                    aborted: false,
                    reason: String::new(),
                }));
                // Marked ended when the record is stored; do not write it twice meanwhile.
                d.ended = Some(false);
            }
        }
        for chunk in appends.chunks(OUTPUT_BATCH_MAX) {
            self.out.push_back(Output::Append(chunk.to_vec()));
        }
        for (drill, inject) in lifts {
            let Some((peers, _)) = self.drills.get_mut(&drill).and_then(|d| d.faults.remove(&inject)) else {
                continue;
            };
            self.unblock(&peers);
            self.lifted(now, &drill, &inject);
        }
    }

    /// The next thing to do, if any.
    pub fn poll(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// Whether any drill is running here (the node ticks the runner only then).
    pub fn active(&self) -> bool {
        self.drills.values().any(|d| d.ended.is_none()) || !self.out.is_empty()
    }
}

/// The entries an inject writes at its source.
fn inject_bodies(drill: &EntryId, inject: &str, action: &InjectAction, now: u64) -> Vec<Body> {
    let rec = |item: u32, payload: InjectPayload| {
        Body::Drill(DrillRecord::Inject { drill: drill.clone(), inject: inject.into(), item, payload })
    };
    match action {
        InjectAction::Indicators { count, types, tlp } => (0..*count)
            .map(|i| {
                let itype = types[i as usize % types.len()];
                rec(i, InjectPayload::Indicator(synthetic(drill, inject, i, itype, *tlp, now)))
            })
            .collect(),
        InjectAction::Sighting { of, count } => {
            vec![rec(0, InjectPayload::Sighting { wave: of.clone(), count: *count })]
        }
        InjectAction::Retraction { of, reason } => {
            vec![rec(0, InjectPayload::Retraction { wave: of.clone(), reason: reason.clone() })]
        }
        InjectAction::CommCheck { text, .. } | InjectAction::Situation { text, .. } => {
            vec![rec(0, InjectPayload::Text(text.clone()))]
        }
        InjectAction::Isolate { .. } | InjectAction::CutLink { .. } => vec![rec(0, InjectPayload::Fault)],
    }
}

/// A synthetic indicator from documentation ranges (RFC 5737, RFC 3849, `example.*`), unique per
/// drill, inject and item: never anything that looks like real intelligence.
pub fn synthetic(drill: &EntryId, inject: &str, item: u32, itype: IndicatorType, tlp: Tlp, now: u64) -> Indicator {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("ctix-drill/{drill}/{inject}/{item}").as_bytes());
    let hex = hex::encode(digest);
    let nets = ["192.0.2", "198.51.100", "203.0.113"];
    let tag = format!("{}-{}", drill.origin, drill.seq);
    let value = match itype {
        IndicatorType::Ipv4 => format!("{}.{}", nets[(item / 254) as usize % 3], item % 254 + 1),
        IndicatorType::Ipv6 => format!("2001:db8:{:x}:{:x}::{:x}", drill.seq & 0xffff, item >> 16, (item & 0xffff) + 1),
        IndicatorType::Cidr => format!("{}.{}/32", nets[(item / 254) as usize % 3], item % 254 + 1),
        IndicatorType::Domain => format!("i{item}.{inject}.d{tag}.example.com"),
        IndicatorType::Url => format!("https://i{item}.d{tag}.example.net/{inject}/payload"),
        IndicatorType::Email => format!("drill-{item}@d{tag}.example.org"),
        IndicatorType::Md5 => hex[..32].to_string(),
        IndicatorType::Sha1 => hex[..40].to_string(),
        IndicatorType::Sha256 => hex.clone(),
        IndicatorType::Filename => format!("drill-{tag}-{item}.exe"),
        IndicatorType::Cve => format!("CVE-2099-{}", 10_000 + item),
    };
    let input = IndicatorInput {
        itype: itype.as_str().into(),
        value,
        tlp: tlp.as_str().into(),
        confidence: Some(50),
        tags: vec!["drill".into()],
        description: format!("drill {drill}, inject {inject}: synthetic, not intelligence"),
        ..Default::default()
    };
    Indicator::from_input(&input, now).expect("synthetic drill indicators are valid by construction")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::drill::{Inject, Objective, ObjectiveKind};

    fn n(s: &str) -> NodeName {
        NodeName::new(s).unwrap()
    }

    fn scenario() -> Scenario {
        Scenario {
            name: "t".into(),
            description: String::new(),
            participants: vec![n("ee"), n("lt"), n("lv")],
            objectives: vec![Objective { name: "d".into(), kind: ObjectiveKind::Delivery, within_ms: 5_000 }],
            injects: vec![
                Inject {
                    name: "wave".into(),
                    at_ms: 0,
                    from: Some(n("lv")),
                    action: InjectAction::Indicators { count: 3, types: vec![IndicatorType::Ipv4], tlp: Tlp::Amber },
                },
                Inject {
                    name: "cut".into(),
                    at_ms: 1_000,
                    from: None,
                    action: InjectAction::CutLink { a: n("ee"), b: n("lt"), duration_ms: 2_000 },
                },
                Inject {
                    name: "sitrep".into(),
                    at_ms: 1_000,
                    from: None,
                    action: InjectAction::Situation { text: "x".into(), within_ms: 10_000 },
                },
            ],
        }
    }

    fn start_record(at: u64) -> Record {
        let Body::Drill(record) = Runner::new(n("ee"), [], true).start(at, scenario()).unwrap() else { panic!() };
        Record { id: EntryId { origin: n("ee"), seq: 1 }, created_ms: at, record }
    }

    fn drain(r: &mut Runner) -> Vec<Output> {
        std::iter::from_fn(|| r.poll()).collect()
    }

    fn appended(outs: &[Output]) -> Vec<DrillRecord> {
        outs.iter()
            .filter_map(|o| match o {
                Output::Append(b) => Some(b.clone()),
                _ => None,
            })
            .flatten()
            .map(|b| match b {
                Body::Drill(d) => d,
                _ => panic!("only drill records"),
            })
            .collect()
    }

    #[test]
    fn source_writes_its_wave_when_due_and_only_once() {
        let mut lv = Runner::new(n("lv"), [n("ee"), n("lv"), n("lt")], true);
        let start = start_record(1_000);
        lv.stored(1_000, Some(&n("ee")), &start);
        lv.tick(1_400);
        assert!(drain(&mut lv).is_empty(), "nothing is due before offset 0");
        lv.tick(1_500);
        let recs = appended(&drain(&mut lv));
        assert_eq!(recs.len(), 3);
        assert!(recs.iter().all(|r| matches!(r, DrillRecord::Inject { inject, .. } if inject == "wave")));
        lv.tick(1_600);
        assert!(drain(&mut lv).is_empty(), "a wave is written once");
    }

    #[test]
    fn receipt_when_every_item_has_arrived_names_the_last_carrier() {
        let mut ee = Runner::new(n("ee"), [n("ee"), n("lv"), n("lt")], true);
        ee.stored(1_000, None, &start_record(1_000));
        drain(&mut ee);
        let drill = EntryId { origin: n("ee"), seq: 1 };
        let item = |i: u32| Record {
            id: EntryId { origin: n("lv"), seq: 1 + i as u64 },
            created_ms: 1_500,
            record: DrillRecord::Inject {
                drill: drill.clone(),
                inject: "wave".into(),
                item: i,
                payload: InjectPayload::Indicator(synthetic(&drill, "wave", i, IndicatorType::Ipv4, Tlp::Amber, 1)),
            },
        };
        ee.stored(1_510, Some(&n("lv")), &item(0));
        ee.stored(1_511, Some(&n("lv")), &item(1));
        assert!(appended(&drain(&mut ee)).is_empty(), "no receipt before the whole wave");
        ee.stored(1_512, Some(&n("lt")), &item(2));
        let recs = appended(&drain(&mut ee));
        assert_eq!(
            recs,
            vec![DrillRecord::Ack {
                drill: drill.clone(),
                inject: "wave".into(),
                received_ms: 1_512,
                via: Some(n("lt")),
                human: None
            }]
        );
        ee.stored(1_513, Some(&n("lt")), &item(2));
        assert!(drain(&mut ee).is_empty(), "one receipt per inject");
    }

    #[test]
    fn faults_apply_and_lift_or_are_refused() {
        let drill = EntryId { origin: n("ee"), seq: 1 };
        let cut = Record {
            id: EntryId { origin: n("ee"), seq: 2 },
            created_ms: 2_500,
            record: DrillRecord::Inject {
                drill: drill.clone(),
                inject: "cut".into(),
                item: 0,
                payload: InjectPayload::Fault,
            },
        };
        let mut lt = Runner::new(n("lt"), [n("ee"), n("lv"), n("lt")], true);
        lt.stored(1_000, Some(&n("ee")), &start_record(1_000));
        lt.stored(2_510, Some(&n("ee")), &cut);
        let outs = drain(&mut lt);
        assert!(outs.contains(&Output::Block { peer: n("ee"), blocked: true }), "{outs:?}");
        assert!(appended(&outs).iter().any(|r| matches!(r, DrillRecord::Fault { state: FaultState::Applied, .. })));
        lt.tick(4_000);
        assert!(drain(&mut lt).is_empty(), "still inside the window");
        lt.tick(4_510);
        let outs = drain(&mut lt);
        assert!(outs.contains(&Output::Block { peer: n("ee"), blocked: false }), "{outs:?}");
        assert!(appended(&outs).iter().any(|r| matches!(r, DrillRecord::Fault { state: FaultState::Lifted, .. })));

        let mut refusing = Runner::new(n("lt"), [n("ee"), n("lv"), n("lt")], false);
        refusing.stored(1_000, Some(&n("ee")), &start_record(1_000));
        refusing.stored(2_510, Some(&n("ee")), &cut);
        let outs = drain(&mut refusing);
        assert!(!outs.iter().any(|o| matches!(o, Output::Block { .. })));
        assert!(
            appended(&outs).iter().any(|r| matches!(r, DrillRecord::Fault { state: FaultState::NotPermitted, .. }))
        );

        let mut lv = Runner::new(n("lv"), [n("ee"), n("lv"), n("lt")], true);
        lv.stored(1_000, Some(&n("ee")), &start_record(1_000));
        drain(&mut lv);
        lv.stored(2_510, Some(&n("ee")), &cut);
        let outs = drain(&mut lv);
        assert!(!outs.iter().any(|o| matches!(o, Output::Block { .. } | Output::Append(_)) && !is_receipt(o)));
    }

    fn is_receipt(o: &Output) -> bool {
        matches!(o, Output::Append(b) if b.iter().all(|b| matches!(b, Body::Drill(DrillRecord::Ack { human: None, .. }))))
    }

    #[test]
    fn controller_ends_the_drill_and_human_acks_are_checked() {
        let mut ee = Runner::new(n("ee"), [n("ee"), n("lv"), n("lt")], true);
        let start = start_record(1_000);
        ee.stored(1_000, None, &start);
        let drill = start.id.clone();
        assert_eq!(ee.ack(1_100, &drill, "wave", ""), Err(DrillError::NotHuman("wave".into())));
        assert!(matches!(ee.ack(1_100, &drill, "nope", ""), Err(DrillError::NoSuchInject { .. })));
        assert_eq!(ee.ack(1_100, &drill, "sitrep", ""), Err(DrillError::NotReceived("sitrep".into())));
        ee.tick(2_600);
        let recs = appended(&drain(&mut ee));
        assert!(recs.iter().any(|r| matches!(r, DrillRecord::Inject { inject, .. } if inject == "sitrep")));
        for r in &recs {
            ee.stored(
                2_600,
                None,
                &Record { id: EntryId { origin: n("ee"), seq: 9 }, created_ms: 2_600, record: r.clone() },
            );
        }
        drain(&mut ee);
        assert!(ee.ack(2_700, &drill, "sitrep", "seen").is_ok());
        let end = 1_500 + scenario().duration_ms();
        ee.tick(end - 1);
        assert!(!appended(&drain(&mut ee)).iter().any(|r| matches!(r, DrillRecord::End { .. })));
        ee.tick(end);
        let recs = appended(&drain(&mut ee));
        assert!(recs.iter().any(|r| matches!(r, DrillRecord::End { aborted: false, .. })), "{recs:?}");
        assert_eq!(ee.abort(&drill, "x"), Err(DrillError::Over(drill.clone())));
    }

    #[test]
    fn restore_repeats_nothing_already_written() {
        let start = start_record(1_000);
        let drill = start.id.clone();
        let mut lv = Runner::new(n("lv"), [n("ee"), n("lv"), n("lt")], true);
        lv.stored(1_000, Some(&n("ee")), &start);
        lv.tick(1_600);
        let written: Vec<Record> = appended(&drain(&mut lv))
            .into_iter()
            .enumerate()
            .map(|(i, record)| Record { id: EntryId { origin: n("lv"), seq: i as u64 + 1 }, created_ms: 1_600, record })
            .collect();
        let mut all = vec![start];
        all.extend(written);
        let mut again = Runner::new(n("lv"), [n("ee"), n("lv"), n("lt")], true);
        again.restore(5_000, &all);
        again.tick(5_000);
        assert!(appended(&drain(&mut again)).is_empty(), "the wave is not written twice after a restart");
        assert_eq!(again.list()[0].id, drill);
    }

    /// A start record with absurd times (a peer's) neither panics nor schedules anything.
    #[test]
    fn absurd_times_from_a_peer_do_not_panic() {
        let mut s = scenario();
        s.injects[0].at_ms = u64::MAX - 1;
        assert!(s.validate().is_err(), "offsets beyond the drill length are refused");
        let mut lv = Runner::new(n("lv"), [n("ee"), n("lv"), n("lt")], true);
        let mut start = start_record(1_000);
        if let DrillRecord::Start { start_ms, .. } = &mut start.record {
            *start_ms = u64::MAX;
        }
        lv.stored(1_000, Some(&n("ee")), &start);
        lv.tick(u64::MAX - 1);
        assert!(appended(&drain(&mut lv)).is_empty());
        assert_eq!(lv.list()[0].end_ms, u64::MAX);
    }

    #[test]
    fn synthetic_values_use_documentation_ranges_only() {
        let drill = EntryId { origin: n("ee"), seq: 7 };
        for t in IndicatorType::ALL {
            for i in [0, 1, 253, 254, 9_999] {
                let ind = synthetic(&drill, "wave-1", i, t, Tlp::Green, 1);
                let v = &ind.value;
                let documentation = v.starts_with("192.0.2.")
                    || v.starts_with("198.51.100.")
                    || v.starts_with("203.0.113.")
                    || v.starts_with("2001:db8:")
                    || v.contains("example.")
                    || v.starts_with("cve-2099-")
                    || v.starts_with("CVE-2099-")
                    || v.starts_with("drill-")
                    || v.bytes().all(|b| b.is_ascii_hexdigit());
                assert!(documentation, "{t:?} {v}");
            }
        }
    }
}
