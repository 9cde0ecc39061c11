//! Drill records: what a readiness drill writes into the signed logs.
//!
//! A drill is started by one node (the controller) with a `DrillRecord::Start` entry that carries
//! the whole scenario; the drill's id is that entry's id (`ee:42`). Every participant schedules
//! its own injects from it, acknowledges every inject it receives (`Ack` without a note: a machine
//! receipt; with `human`: an operator's acknowledgement), reports the faults it applied or refused
//! (`Fault`), and the controller closes the drill (`End`). These records travel through the same
//! logs and the same replication as real intelligence, so a drill measures the real path, but they
//! are their own entry kind: never an indicator, never in queries, exports or correlation.

use serde::{Deserialize, Serialize};

use super::{EntryId, Indicator, IndicatorType, ModelError, NodeName, Tlp};

/// Most injects in one scenario.
pub const INJECTS_MAX: usize = 256;
/// Most objectives in one scenario.
pub const OBJECTIVES_MAX: usize = 32;
/// Most participants of one drill (a federation of all NATO and EU members fits).
pub const PARTICIPANTS_MAX: usize = 64;
/// Most indicators in one wave (each is its own entry).
pub const WAVE_INDICATORS_MAX: u32 = 10_000;
/// Longest scenario or inject name.
pub const NAME_BYTES_MAX: usize = 64;
/// Longest free text (description, situation update, note).
pub const TEXT_BYTES_MAX: usize = 2048;
/// Longest drill, from start to the last deadline (a working day).
pub const DRILL_MS_MAX: u64 = 24 * 3600 * 1000;

/// A drill scenario, as parsed from TOML and carried in the start record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scenario {
    /// Short name, `[a-z0-9-]`, e.g. `ransomware-energy`: earlier runs of the same name are
    /// compared in reports.
    pub name: String,
    pub description: String,
    /// The nodes taking part, sorted and unique. Others relay the drill's entries but do not
    /// act on them.
    pub participants: Vec<NodeName>,
    pub objectives: Vec<Objective>,
    /// The timeline, sorted by `at_ms` (ties keep file order).
    pub injects: Vec<Inject>,
}

/// What the drill is judged by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Objective {
    /// Short label for the report, e.g. `delivery-5s`.
    pub name: String,
    pub kind: ObjectiveKind,
    /// The bound, ms.
    pub within_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ObjectiveKind {
    /// Every participant receives every inject within the bound (ms after the inject's entry was
    /// signed at its source).
    Delivery,
    /// Every participant acknowledges every inject that asks for an acknowledgement (communication
    /// checks and situation updates) within the bound.
    Ack,
    /// Deliveries made while a fault is active stay within the bound (they took a relay path).
    Relay,
}

/// One step of the timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inject {
    /// Unique in the scenario, `[a-z0-9-]`; `ctix drill ack` names it.
    pub name: String,
    /// Offset from the drill's start, ms.
    pub at_ms: u64,
    /// The node that issues it: for indicator waves, sightings and retractions the node whose
    /// log carries them; for the others the controller when `None`.
    pub from: Option<NodeName>,
    pub action: InjectAction,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum InjectAction {
    /// `count` synthetic indicators from documentation ranges, types cycled, one entry each.
    Indicators { count: u32, types: Vec<IndicatorType>, tlp: Tlp },
    /// A sighting, by `from`, of the indicators of an earlier wave (named by inject).
    Sighting { of: String, count: u32 },
    /// A retraction, by the wave's own source, of an earlier wave.
    Retraction { of: String, reason: String },
    /// Every participant's node must answer (machine acknowledgement) within `within_ms`.
    CommCheck { text: String, within_ms: u64 },
    /// A situation update for the human teams: an operator must acknowledge within `within_ms`.
    Situation { text: String, within_ms: u64 },
    /// The node drops every link for `duration_ms` (only if its config allows drill faults).
    Isolate { node: NodeName, duration_ms: u64 },
    /// The link between `a` and `b` is cut for `duration_ms` (both must allow drill faults).
    CutLink { a: NodeName, b: NodeName, duration_ms: u64 },
}

impl InjectAction {
    /// The kind as written in scenario files and reports.
    pub fn kind(&self) -> &'static str {
        match self {
            InjectAction::Indicators { .. } => "indicators",
            InjectAction::Sighting { .. } => "sighting",
            InjectAction::Retraction { .. } => "retraction",
            InjectAction::CommCheck { .. } => "comm_check",
            InjectAction::Situation { .. } => "situation",
            InjectAction::Isolate { .. } => "isolate",
            InjectAction::CutLink { .. } => "cut_link",
        }
    }

    /// The acknowledgement deadline, for injects that ask for one.
    pub fn ack_within_ms(&self) -> Option<u64> {
        match self {
            InjectAction::CommCheck { within_ms, .. } | InjectAction::Situation { within_ms, .. } => Some(*within_ms),
            _ => None,
        }
    }

    /// Whether the acknowledgement must come from an operator (`ctix drill ack`).
    pub fn needs_human(&self) -> bool {
        matches!(self, InjectAction::Situation { .. })
    }

    /// Fault duration and the nodes it applies to.
    pub fn fault(&self) -> Option<(Vec<NodeName>, u64)> {
        match self {
            InjectAction::Isolate { node, duration_ms } => Some((vec![node.clone()], *duration_ms)),
            InjectAction::CutLink { a, b, duration_ms } => Some((vec![a.clone(), b.clone()], *duration_ms)),
            _ => None,
        }
    }

    /// How many entries the inject writes at its source: a wave writes one per indicator.
    pub fn entries(&self) -> u32 {
        match self {
            InjectAction::Indicators { count, .. } => *count,
            _ => 1,
        }
    }
}

impl Scenario {
    /// When the drill is over, ms after its start: the latest inject plus its fault duration or
    /// acknowledgement deadline, plus the longest objective bound as grace for the last delivery.
    pub fn duration_ms(&self) -> u64 {
        let grace = self.objectives.iter().map(|o| o.within_ms).max().unwrap_or(DELIVERY_GRACE_MS);
        let end = self
            .injects
            .iter()
            .map(|i| {
                let tail = match &i.action {
                    a if a.fault().is_some() => a.fault().map_or(0, |f| f.1),
                    a => a.ack_within_ms().unwrap_or(0),
                };
                i.at_ms.saturating_add(tail)
            })
            .max()
            .unwrap_or(0);
        end.saturating_add(grace)
    }

    /// The same scenario `speed` times faster: every offset, deadline, duration and objective
    /// bound divided by `speed` (a planner's dry run; tests). Names and contents are unchanged.
    pub fn scaled(&self, speed: u32) -> Scenario {
        let f = |ms: u64| (ms / speed.max(1) as u64).max(1);
        let mut s = self.clone();
        if speed > 1 {
            s.description = format!("{} (run at {speed}x speed)", s.description.trim()).trim().to_string();
            s.description.truncate(TEXT_BYTES_MAX);
        }
        for o in &mut s.objectives {
            o.within_ms = f(o.within_ms);
        }
        for i in &mut s.injects {
            i.at_ms = if i.at_ms == 0 { 0 } else { f(i.at_ms) };
            match &mut i.action {
                InjectAction::CommCheck { within_ms, .. } | InjectAction::Situation { within_ms, .. } => {
                    *within_ms = f(*within_ms)
                }
                InjectAction::Isolate { duration_ms, .. } | InjectAction::CutLink { duration_ms, .. } => {
                    *duration_ms = f(*duration_ms)
                }
                _ => {}
            }
        }
        s
    }

    pub fn inject(&self, name: &str) -> Option<&Inject> {
        self.injects.iter().find(|i| i.name == name)
    }

    /// The delivery bound used to grade deliveries: the `Delivery` objective's, or the default.
    pub fn delivery_within_ms(&self) -> u64 {
        self.objectives
            .iter()
            .filter(|o| o.kind == ObjectiveKind::Delivery)
            .map(|o| o.within_ms)
            .min()
            .unwrap_or(DELIVERY_GRACE_MS)
    }

    /// Structural checks that a start record received from a peer must pass too (the TOML loader
    /// in `drill::scenario` gives friendlier, line-numbered errors for the same rules).
    pub fn validate(&self) -> Result<(), ModelError> {
        check_name("name", &self.name)?;
        if self.description.len() > TEXT_BYTES_MAX {
            return Err(ModelError::new("description", format!("at most {TEXT_BYTES_MAX} bytes")));
        }
        if self.participants.is_empty() || self.participants.len() > PARTICIPANTS_MAX {
            return Err(ModelError::new("participants", format!("name 1 to {PARTICIPANTS_MAX} nodes")));
        }
        if self.participants.windows(2).any(|w| w[0] >= w[1]) {
            return Err(ModelError::new("participants", "not sorted and unique"));
        }
        if self.objectives.len() > OBJECTIVES_MAX {
            return Err(ModelError::new("objective", format!("at most {OBJECTIVES_MAX}")));
        }
        if self.injects.is_empty() || self.injects.len() > INJECTS_MAX {
            return Err(ModelError::new("inject", format!("give 1 to {INJECTS_MAX} injects")));
        }
        if self.injects.windows(2).any(|w| w[0].at_ms > w[1].at_ms) {
            return Err(ModelError::new("inject", "not sorted by time"));
        }
        let member = |n: &NodeName| self.participants.binary_search(n).is_ok();
        for (i, inj) in self.injects.iter().enumerate() {
            check_name("inject.name", &inj.name)?;
            if self.injects[..i].iter().any(|o| o.name == inj.name) {
                return Err(ModelError::new("inject.name", format!("{:?} is used twice", inj.name)));
            }
            if inj.from.as_ref().is_some_and(|f| !member(f)) {
                return Err(ModelError::new("inject.from", "not a participant"));
            }
            match &inj.action {
                InjectAction::Indicators { count, types, tlp } => {
                    if *count == 0 || *count > WAVE_INDICATORS_MAX || types.is_empty() {
                        return Err(ModelError::new(
                            "inject.count",
                            format!("a wave has 1 to {WAVE_INDICATORS_MAX} indicators of at least one type"),
                        ));
                    }
                    if *tlp == Tlp::Red {
                        return Err(ModelError::new("inject.tlp", "drill waves go to every participant"));
                    }
                }
                InjectAction::Sighting { of, .. } | InjectAction::Retraction { of, .. } => {
                    if matches!(inj.action, InjectAction::Sighting { count: 0, .. }) {
                        return Err(ModelError::new("inject.count", "a sighting counts at least 1"));
                    }
                    let wave = self.injects[..i].iter().find(|o| o.name == *of);
                    let Some(wave) = wave.filter(|w| matches!(w.action, InjectAction::Indicators { .. })) else {
                        return Err(ModelError::new("inject.of", format!("{of:?} is not an earlier indicator wave")));
                    };
                    if matches!(inj.action, InjectAction::Retraction { .. }) && wave.from != inj.from {
                        return Err(ModelError::new("inject.from", "only a wave's own source can retract it"));
                    }
                }
                InjectAction::CommCheck { text, within_ms } | InjectAction::Situation { text, within_ms } => {
                    if text.len() > TEXT_BYTES_MAX || *within_ms == 0 {
                        return Err(ModelError::new("inject.text", "a text of at most 2048 bytes and a deadline"));
                    }
                }
                InjectAction::Isolate { .. } | InjectAction::CutLink { .. } => {
                    let (nodes, duration) = inj.action.fault().expect("a fault");
                    if nodes.iter().any(|n| !member(n)) || duration == 0 {
                        return Err(ModelError::new("inject.node", "faults name participants and last a while"));
                    }
                    if nodes.len() == 2 && nodes[0] == nodes[1] {
                        return Err(ModelError::new("inject.link", "a link joins two different nodes"));
                    }
                }
            }
        }
        if self.duration_ms() > DRILL_MS_MAX {
            return Err(ModelError::new("inject.at", format!("a drill lasts at most {} h", DRILL_MS_MAX / 3_600_000)));
        }
        Ok(())
    }
}

/// Delivery bound when a scenario states no delivery objective.
pub const DELIVERY_GRACE_MS: u64 = 5_000;

fn check_name(field: &'static str, s: &str) -> Result<(), ModelError> {
    let ok = !s.is_empty()
        && s.len() <= NAME_BYTES_MAX
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok { Ok(()) } else { Err(ModelError::new(field, format!("{s:?}: use 1 to {NAME_BYTES_MAX} of a-z, 0-9, -"))) }
}

/// One signed drill record (`Body::Drill`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DrillRecord {
    /// Starts a drill; its entry id is the drill id. Offsets count from `start_ms` (the
    /// controller's clock).
    Start { scenario: Scenario, start_ms: u64 },
    /// One entry of an inject, written at the inject's source. A wave writes `count` of these
    /// (item 0..count), each with one indicator.
    Inject { drill: EntryId, inject: String, item: u32, payload: InjectPayload },
    /// A participant received an inject (all of its items): `received_ms` on its clock, `via` the
    /// peer that delivered the last item. With `human`, an operator acknowledged it, with a note.
    Ack { drill: EntryId, inject: String, received_ms: u64, via: Option<NodeName>, human: Option<String> },
    /// A participant applied, refused or lifted a fault.
    Fault { drill: EntryId, inject: String, state: FaultState, at_ms: u64 },
    /// The controller closes the drill.
    End { drill: EntryId, aborted: bool, reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum InjectPayload {
    Indicator(Indicator),
    /// A sighting of an earlier wave (by inject name).
    Sighting {
        wave: String,
        count: u32,
    },
    Retraction {
        wave: String,
        reason: String,
    },
    Text(String),
    Fault,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FaultState {
    Applied,
    /// The node's config does not allow drill faults (`[drill] allow_faults`).
    NotPermitted,
    Lifted,
}

impl FaultState {
    pub fn as_str(self) -> &'static str {
        match self {
            FaultState::Applied => "applied",
            FaultState::NotPermitted => "not-permitted",
            FaultState::Lifted => "lifted",
        }
    }
}

impl DrillRecord {
    /// The drill this record belongs to; `None` for a start record (its own entry id is the id).
    pub fn drill(&self) -> Option<&EntryId> {
        match self {
            DrillRecord::Start { .. } => None,
            DrillRecord::Inject { drill, .. }
            | DrillRecord::Ack { drill, .. }
            | DrillRecord::Fault { drill, .. }
            | DrillRecord::End { drill, .. } => Some(drill),
        }
    }

    pub fn validate(&self) -> Result<(), ModelError> {
        let text = |field: &'static str, s: &str| {
            if s.len() > TEXT_BYTES_MAX {
                Err(ModelError::new(field, format!("at most {TEXT_BYTES_MAX} bytes")))
            } else {
                Ok(())
            }
        };
        match self {
            DrillRecord::Start { scenario, .. } => scenario.validate(),
            DrillRecord::Inject { inject, payload, .. } => {
                check_name("inject", inject)?;
                match payload {
                    InjectPayload::Indicator(i) => i.validate(),
                    InjectPayload::Sighting { wave, .. } => check_name("wave", wave),
                    InjectPayload::Retraction { wave, reason } => {
                        check_name("wave", wave)?;
                        text("reason", reason)
                    }
                    InjectPayload::Text(t) => text("text", t),
                    InjectPayload::Fault => Ok(()),
                }
            }
            DrillRecord::Ack { inject, human, .. } => {
                check_name("inject", inject)?;
                text("note", human.as_deref().unwrap_or(""))
            }
            DrillRecord::Fault { inject, .. } => check_name("inject", inject),
            DrillRecord::End { reason, .. } => text("reason", reason),
        }
    }
}
