//! The replication state machine, sans-IO: events in (`handle_*`, `stored`, `ingested`), actions
//! out (`poll_action`). It never touches a socket, sled or the clock; `now` is always an argument,
//! so a test can drive many nodes deterministically (see `sim`).
//!
//! The algorithm (`proto/PROTOCOL.md` §7):
//! - On connect both sides send `Hello` with their version vector (every origin's head).
//! - Pull: for each origin where a peer's head is ahead of ours, we ask one peer for the entries
//!   after our head in consecutive `Request`s of at most `request_entries_max` entries, up to
//!   `requests_per_origin_max` of them outstanding at once (a pipeline: the next ranges travel
//!   while the shell verifies and stores the first); each reply is verified and stored by the
//!   shell, which reports back with `ingested`, and the pipeline is topped up.
//! - Push: a node's own new entry goes at once to every connected peer believed to hold exactly
//!   its predecessor. Other origins' entries are not pushed on: they are announced and pulled, and
//!   every node serves every origin, which is what heals a cut link through a third node.
//! - Announcements (`Heads`), each at most every `heads_interval_ms`, in three kinds, so that what
//!   a node sends grows linearly with the federation, not with its square:
//!   - its own head, to each peer not believed to hold it (after a push, none);
//!   - the other origins that moved since the previous such round, to `relay_fanout` peers in
//!     turn (not to all: every node relays, so each node still hears of a move from about
//!     `relay_fanout` others);
//!   - its whole version vector to one peer in turn: every `full_heads_interval_ms` for
//!     `full_heads_rounds` rounds after a change, then every `full_heads_idle_interval_ms`. This
//!     anti-entropy is what heals a push or announcement that was lost; the rounds above only
//!     make the usual case fast.
//! - Bodies go only to nodes in an entry's audience; everyone else gets the redacted stub. A node
//!   holding a stub of an entry it may read asks for the body (`WantBodies`).
//! - A request unanswered within `request_timeout_ms` is dropped and the peer backed off
//!   (doubling, capped), so another peer is asked.
//! - A fork found here is proved to every peer (`fork_proof`): the two conflicting entries are
//!   pushed at once, again to each peer that says hello, and in answer to any request for the
//!   quarantined origin, so that every node holding that origin's log finds the fork too.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::log::{AuthenticEntry, ChainTip, SignedEntry, VerifiedEntry};
use crate::model::{Audience, EntryId, NodeName};
use crate::wire::{self, Message, WireHead};

/// Entries in one fork proof: the entry held at the forked position and the conflicting one.
pub const FORK_PROOF_ENTRIES_MAX: usize = 2;

/// Read access to the local log, implemented by the store (and by `sim`'s in-memory log).
pub trait LogView {
    /// Entries of `origin` from `from_seq`, at most `limit`, in order. Errors read as empty.
    fn range(&self, origin: &NodeName, from_seq: u64, limit: usize) -> Vec<VerifiedEntry>;

    /// The same entries as `recipient` is sent them (redacted where it is outside an entry's
    /// audience), with the last one's position. A store may serve its bytes as they are.
    fn range_for(
        &self,
        origin: &NodeName,
        from_seq: u64,
        limit: usize,
        recipient: &NodeName,
    ) -> (Vec<wire::WireEntry>, Option<ChainTip>) {
        let entries = self.range(origin, from_seq, limit);
        let last = entries.last().map(|e| e.tip());
        (entries.iter().map(|e| e.for_recipient(recipient).to_wire()).collect(), last)
    }
}

/// Tunables, each bounding something. Defaults suit a federation of a few dozen nodes.
#[derive(Debug, Clone)]
pub struct SyncConfig {
    /// Entries asked for in one request (≤ `wire::ENTRIES_PER_MESSAGE_MAX`).
    pub request_entries_max: u32,
    /// Requests outstanding to one peer at once.
    pub requests_in_flight_per_peer_max: usize,
    /// Requests outstanding for one origin at once, all to the same peer, for consecutive ranges:
    /// a catch-up keeps this many answers in transit instead of waiting a round trip (and a
    /// verification and a commit) between ranges. At most `requests_in_flight_per_peer_max`.
    pub requests_per_origin_max: usize,
    /// How long a request may go unanswered before another peer is asked.
    pub request_timeout_ms: u64,
    /// Least time between two announcements of our own head to one peer, and between two rounds
    /// of announcing other origins' moves.
    pub heads_interval_ms: u64,
    /// Peers told, per round, of the other origins that moved since the previous round.
    pub relay_fanout: usize,
    /// Time between two announcements of our whole version vector (each to one peer) in the
    /// `full_heads_rounds` rounds after each change of our heads…
    pub full_heads_interval_ms: u64,
    pub full_heads_rounds: u32,
    /// … and after them, while nothing changes.
    pub full_heads_idle_interval_ms: u64,
    /// First back-off after a peer failed a request; doubles per failure up to the maximum.
    pub backoff_base_ms: u64,
    pub backoff_max_ms: u64,
    /// How often missing bodies are asked for again.
    pub want_bodies_interval_ms: u64,
    /// Most missing bodies tracked (the rest are found again by the next store scan).
    pub wanted_bodies_max: usize,
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig {
            request_entries_max: wire::ENTRIES_PER_MESSAGE_MAX as u32,
            requests_in_flight_per_peer_max: 8,
            requests_per_origin_max: 8,
            request_timeout_ms: 10_000,
            heads_interval_ms: 200,
            relay_fanout: 3,
            full_heads_interval_ms: 1_000,
            full_heads_rounds: 10,
            full_heads_idle_interval_ms: 10_000,
            backoff_base_ms: 500,
            backoff_max_ms: 30_000,
            want_bodies_interval_ms: 5_000,
            wanted_bodies_max: 100_000,
        }
    }
}

/// What the shell must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send a message to a connected peer.
    Send { to: NodeName, msg: Message },
    /// Verify these entries and store what verifies, then call `ingested` with `reply_to`.
    Ingest { from: NodeName, reply_to: Option<u64>, entries: Vec<SignedEntry> },
    /// Close the connection to a peer that broke the protocol.
    Disconnect { peer: NodeName, reason: String },
}

#[derive(Debug, Default)]
struct Peer {
    connected: bool,
    /// `Hello` received on the current connection.
    ready: bool,
    /// The peer's heads as we believe them: its last announcement plus what we sent since (our
    /// own entries pushed and our own head announced).
    known: BTreeMap<NodeName, ChainTip>,
    /// When our own head was last announced to this peer.
    last_announce_ms: u64,
    in_flight: usize,
    backoff_ms: u64,
    backoff_until_ms: u64,
}

/// The pull of one origin's entries from one peer: consecutive requests, oldest first.
#[derive(Debug, Clone)]
struct Pull {
    peer: NodeName,
    /// Outstanding requests (id, deadline), in the order their ranges follow each other.
    requests: VecDeque<(u64, u64)>,
    /// The first seq not yet asked for.
    next_seq: u64,
}

/// The replication state of one node.
pub struct Sync {
    me: NodeName,
    members: BTreeSet<NodeName>,
    cfg: SyncConfig,
    heads: BTreeMap<NodeName, ChainTip>,
    quarantined: BTreeSet<NodeName>,
    /// Per quarantined origin, the proof of its fork (`fork_proof`): at most one per roster
    /// member, of at most `FORK_PROOF_ENTRIES_MAX` entries.
    proofs: BTreeMap<NodeName, Vec<AuthenticEntry>>,
    /// Stubs we hold although we are in their audience, with who may have the body.
    wanted: BTreeMap<EntryId, Audience>,
    last_want_ms: u64,
    peers: BTreeMap<NodeName, Peer>,
    /// Our heads as of the last round of relay announcements: the other origins that moved since
    /// are announced in the next.
    relayed: BTreeMap<NodeName, ChainTip>,
    last_relay_ms: u64,
    /// Whole-vector rounds at the short interval still due after the last change, and when the
    /// last whole vector went out.
    full_rounds_due: u32,
    last_full_ms: u64,
    /// Where the next relay and whole-vector rounds start among the ready peers (turns).
    relay_turn: usize,
    full_turn: usize,
    /// One pull per origin (of up to `requests_per_origin_max` requests).
    in_flight: BTreeMap<NodeName, Pull>,
    next_id: u64,
    actions: VecDeque<Action>,
}

impl Sync {
    /// A machine for node `me` in a federation of `members`, starting from the heads in the
    /// store and the origins it has quarantined.
    pub fn new(
        me: NodeName,
        members: impl IntoIterator<Item = NodeName>,
        heads: BTreeMap<NodeName, ChainTip>,
        quarantined: BTreeSet<NodeName>,
        cfg: SyncConfig,
    ) -> Sync {
        let members: BTreeSet<NodeName> = members.into_iter().collect();
        let peers = members.iter().filter(|m| **m != me).map(|m| (m.clone(), Peer::default())).collect();
        // What the store held at start is in every `Hello`: nothing of it is relayed.
        let heads_snapshot = heads.clone();
        // Each node starts its turns at its own place in the roster, so that the relays of one
        // round tell different peers rather than all the same first few.
        let turn = members.iter().position(|m| *m == me).unwrap_or(0);
        Sync {
            me,
            members,
            cfg,
            heads,
            quarantined,
            proofs: BTreeMap::new(),
            wanted: BTreeMap::new(),
            last_want_ms: 0,
            peers,
            relayed: heads_snapshot,
            last_relay_ms: 0,
            full_rounds_due: 0,
            last_full_ms: 0,
            relay_turn: turn,
            full_turn: turn,
            in_flight: BTreeMap::new(),
            next_id: 1,
            actions: VecDeque::new(),
        }
    }

    pub fn me(&self) -> &NodeName {
        &self.me
    }

    /// Our version vector as this machine knows it.
    pub fn heads(&self) -> &BTreeMap<NodeName, ChainTip> {
        &self.heads
    }

    /// The next thing to do, if any.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// Whether `peer` is connected and has said hello.
    pub fn is_ready(&self, peer: &NodeName) -> bool {
        self.peers.get(peer).is_some_and(|p| p.ready)
    }

    /// The heads a peer announced (plus what we sent it since).
    pub fn peer_heads(&self, peer: &NodeName) -> Option<&BTreeMap<NodeName, ChainTip>> {
        self.peers.get(peer).filter(|p| p.ready).map(|p| &p.known)
    }

    /// Missing bodies we are waiting for.
    pub fn wanted_bodies(&self) -> usize {
        self.wanted.len()
    }

    /// Registers stubs found in the store at start-up that this node may read.
    pub fn want_bodies(&mut self, stubs: impl IntoIterator<Item = (EntryId, Audience)>) {
        for (id, a) in stubs {
            if self.wanted.len() >= self.cfg.wanted_bodies_max {
                break;
            }
            self.wanted.insert(id, a);
        }
    }

    /// When the machine next needs `handle_timeout`, at the latest.
    pub fn poll_timeout(&self) -> u64 {
        let mut t = u64::MAX;
        for f in self.in_flight.values() {
            for (_, deadline) in &f.requests {
                t = t.min(*deadline);
            }
        }
        for p in self.peers.values().filter(|p| p.ready) {
            if self.own_head_unknown_to(p) {
                t = t.min(p.last_announce_ms + self.cfg.heads_interval_ms);
            }
        }
        if self.peers.values().any(|p| p.ready) {
            if self.relay_due() {
                t = t.min(self.last_relay_ms + self.cfg.heads_interval_ms);
            }
            if !self.heads.is_empty() {
                t = t.min(self.next_full_ms());
            }
        }
        if !self.wanted.is_empty() {
            t = t.min(self.last_want_ms + self.cfg.want_bodies_interval_ms);
        }
        t
    }

    pub fn peer_connected(&mut self, now: u64, peer: &NodeName) {
        let heads = wire_heads(&self.heads);
        if !self.peers.contains_key(peer) {
            return;
        }
        // A new connection replaces any earlier one (the transport reports no disconnect for a
        // replaced connection): requests sent on it will never be answered, so ask again now
        // rather than after `request_timeout_ms`.
        self.in_flight.retain(|_, f| f.peer != *peer);
        let Some(p) = self.peers.get_mut(peer) else { return };
        *p =
            Peer { connected: true, backoff_ms: p.backoff_ms, backoff_until_ms: p.backoff_until_ms, ..Peer::default() };
        p.last_announce_ms = now;
        self.actions.push_back(Action::Send {
            to: peer.clone(),
            msg: Message::Hello { version: wire::PROTOCOL_VERSION, heads },
        });
    }

    pub fn peer_disconnected(&mut self, now: u64, peer: &NodeName) {
        if let Some(p) = self.peers.get_mut(peer) {
            p.connected = false;
            p.ready = false;
            p.in_flight = 0;
        }
        self.in_flight.retain(|_, f| f.peer != *peer);
        self.plan_requests(now, None);
    }

    /// A message from a connected peer. `log` serves its requests.
    pub fn handle_message(&mut self, now: u64, from: &NodeName, msg: Message, log: &dyn LogView) {
        if !self.peers.get(from).is_some_and(|p| p.connected) {
            return;
        }
        match msg {
            Message::Hello { version, heads } => {
                if version != wire::PROTOCOL_VERSION {
                    let reason = format!("protocol version {version}, this node speaks {}", wire::PROTOCOL_VERSION);
                    self.actions.push_back(Action::Disconnect { peer: from.clone(), reason });
                    return;
                }
                self.peers.get_mut(from).expect("checked").ready = true;
                // A peer that was away when we found a fork learns of it now.
                for proof in self.proofs.values() {
                    self.actions.push_back(Action::Send { to: from.clone(), msg: proof_message(proof, from, None) });
                }
                self.on_heads(now, from, heads, true, log);
            }
            Message::Heads { heads } => self.on_heads(now, from, heads, false, log),
            Message::Request { id, origin, from_seq, limit } => {
                self.on_request(from, id, &origin, from_seq, limit, log)
            }
            Message::Entries { reply_to, entries } => self.on_entries(now, from, reply_to, entries),
            Message::WantBodies { ids } => self.on_want_bodies(from, ids, log),
        }
    }

    /// Entries newly stored (our own appends, ingested entries, or upgraded stubs), in chain
    /// order per origin. `from` is the peer they came from, if any: it has them already.
    pub fn stored(&mut self, now: u64, from: Option<&NodeName>, entries: &[VerifiedEntry]) {
        for e in entries {
            let o = &e.header().origin;
            if self.heads.get(o).is_none_or(|t| t.seq < e.header().seq) {
                self.heads.insert(o.clone(), e.tip());
                self.full_rounds_due = self.cfg.full_heads_rounds;
            }
            let id = e.id();
            if e.entry().body.is_none() && e.header().audience.admits(o, &self.me) {
                if self.wanted.len() < self.cfg.wanted_bodies_max {
                    self.wanted.insert(id, e.header().audience.clone());
                }
            } else {
                self.wanted.remove(&id);
            }
        }
        let names: Vec<NodeName> = self.peers.keys().cloned().collect();
        for name in names {
            let p = self.peers.get_mut(&name).expect("listed");
            if !p.ready {
                continue;
            }
            if Some(&name) == from {
                for e in entries {
                    bump(&mut p.known, e);
                }
                continue;
            }
            let mut batch = Vec::new();
            for e in entries {
                let o = &e.header().origin;
                // Only our own entries are pushed. Other origins' entries reach a peer that lacks
                // them by its pull, after a relay announcement shows that we (or another node)
                // hold them: the origin pushes to every peer it is connected to, so an eager
                // relay would send each entry N-1 times more over a full mesh (the relay flood),
                // and a cut link still heals through the relays within about `heads_interval_ms`
                // and one round trip.
                if *o != self.me || self.quarantined.contains(o) {
                    continue;
                }
                // `have` is what the peer announced, which may be any seq up to `u64::MAX`.
                let have = p.known.get(o).map_or(0, |t| t.seq);
                if have.checked_add(1) == Some(e.header().seq) {
                    batch.push(e.for_recipient(&name).to_wire());
                    p.known.insert(o.clone(), e.tip());
                }
            }
            for chunk in batch.chunks(wire::ENTRIES_PER_MESSAGE_MAX) {
                let msg = Message::Entries { reply_to: None, entries: chunk.to_vec() };
                self.actions.push_back(Action::Send { to: name.clone(), msg });
            }
        }
        self.plan_requests(now, None);
    }

    /// The outcome of an `Ingest` action: `stored` lists what was newly stored (also passed to
    /// `stored` by this call), `forked` the origins found forked.
    pub fn ingested(
        &mut self,
        now: u64,
        from: &NodeName,
        reply_to: Option<u64>,
        stored: &[VerifiedEntry],
        forked: &[NodeName],
    ) {
        for o in forked {
            self.quarantine(o);
        }
        if let Some(id) = reply_to {
            let done: Vec<NodeName> = self
                .in_flight
                .iter()
                .filter(|(_, f)| f.peer == *from && f.requests.iter().any(|(r, _)| *r == id))
                .map(|(o, _)| o.clone())
                .collect();
            for o in done {
                let f = self.in_flight.get_mut(&o).expect("listed");
                f.requests.retain(|(r, _)| *r != id);
                let p = self.peers.get_mut(from).expect("a pull's peer is a roster member");
                p.in_flight = p.in_flight.saturating_sub(1);
                let ours = self.heads.get(&o).map_or(0, |t| t.seq);
                let behind = p.known.get(&o).is_some_and(|t| t.seq > ours);
                if stored.is_empty() && behind {
                    // The peer announced entries it then did not deliver (or the answers came out
                    // of order): drop the whole pull and ask again, from someone else first. (An
                    // answer of duplicates that leaves us level with the peer is no failure: the
                    // entries came by push meanwhile.)
                    let rest = self.in_flight.remove(&o).expect("listed").requests.len();
                    p.in_flight = p.in_flight.saturating_sub(rest);
                    back_off(p, now, &self.cfg);
                } else {
                    p.backoff_ms = 0;
                    if f.requests.is_empty() {
                        self.in_flight.remove(&o);
                    }
                }
            }
        }
        self.stored(now, Some(from), stored);
    }

    /// `peer` holds `origin`'s log at least up to `tip`: it sent us an authentic entry there that
    /// could not be chained yet. The gap is pulled from it with the next `ingested` or timer,
    /// rather than after an announcement that may never come (a push that overtook the one
    /// before it leaves the peer believing we hold both).
    pub fn peer_holds(&mut self, peer: &NodeName, origin: &NodeName, tip: ChainTip) {
        if !self.members.contains(origin) || self.quarantined.contains(origin) {
            return;
        }
        if let Some(p) = self.peers.get_mut(peer).filter(|p| p.ready) {
            raise(&mut p.known, origin, tip);
        }
    }

    /// Stops requesting and relaying an origin that forked.
    pub fn quarantine(&mut self, origin: &NodeName) {
        self.quarantined.insert(origin.clone());
        self.drop_pull(origin);
    }

    /// Records the proof that `origin` forked and quarantines it. `proof` is the entry held at
    /// the forked position (if any) followed by the conflicting entry (the store's fork
    /// evidence); both are signed by the origin, so together they convince any node that holds
    /// the origin's log up to the position before. The proof is pushed at once to every ready
    /// peer (the one it came from included: it may hold one side only), to each peer when it
    /// says hello, and in answer to requests for the origin. Each entry is redacted for its
    /// recipient like any other; a stub proves a fork as well as the full entry.
    ///
    /// A receiver that finds the fork through the proof proves it onward in turn; one that has
    /// quarantined the origin already stores nothing of it, so the gossip ends after one round.
    pub fn fork_proof(&mut self, origin: &NodeName, mut proof: Vec<AuthenticEntry>) {
        if !self.members.contains(origin) || proof.iter().any(|e| e.header().origin != *origin) {
            return; // the shell builds proofs from authenticated evidence: not reached
        }
        proof.truncate(FORK_PROOF_ENTRIES_MAX);
        self.quarantine(origin);
        if proof.is_empty() {
            return;
        }
        for (name, p) in &self.peers {
            if p.ready {
                self.actions.push_back(Action::Send { to: name.clone(), msg: proof_message(&proof, name, None) });
            }
        }
        self.proofs.insert(origin.clone(), proof);
    }

    /// Timers: expired requests, version-vector announcements, missing bodies.
    pub fn handle_timeout(&mut self, now: u64) {
        let expired: Vec<NodeName> = self
            .in_flight
            .iter()
            .filter(|(_, f)| f.requests.iter().any(|(_, deadline)| *deadline <= now))
            .map(|(o, _)| o.clone())
            .collect();
        for o in expired {
            let peer = self.drop_pull(&o).expect("listed");
            if let Some(p) = self.peers.get_mut(&peer) {
                back_off(p, now, &self.cfg);
            }
        }
        self.announce(now);
        if !self.wanted.is_empty() && now >= self.last_want_ms + self.cfg.want_bodies_interval_ms {
            self.last_want_ms = now;
            self.ask_for_bodies();
        }
        self.plan_requests(now, None);
    }

    // ---- message handlers ----

    /// A peer's version vector: all of it in its `Hello` (`full`), which replaces what we knew of
    /// the peer; later `Heads` only raise it. On one connection a peer's heads never go back, and
    /// an announcement can be older than entries we pushed after it was sent: taking it as the
    /// whole truth would make the push path (`have + 1 == seq`) stop until the peer pulled.
    fn on_heads(&mut self, now: u64, from: &NodeName, heads: Vec<WireHead>, full: bool, log: &dyn LogView) {
        let Some(parsed) = self.parse_heads(from, heads) else { return };
        let mut probes = Vec::new();
        for (o, t) in &parsed {
            // Same position, different hash: one of us holds a fork. Fetch theirs so the
            // store can prove it.
            let ours = self.heads.get(o).map_or(0, |t| t.seq);
            if t.seq <= ours && !self.quarantined.contains(o) {
                let held = log.range(o, t.seq, 1);
                if held.first().is_some_and(|h| h.hash() != t.hash) {
                    probes.push((o.clone(), t.seq));
                }
            }
        }
        let p = self.peers.get_mut(from).expect("connected peer");
        if full {
            p.known = parsed;
        } else {
            for (o, t) in parsed {
                raise(&mut p.known, &o, t);
            }
        }
        for (o, seq) in probes {
            let id = self.next_id;
            self.next_id += 1;
            let msg = Message::Request { id, origin: o.to_string(), from_seq: seq, limit: 1 };
            self.actions.push_back(Action::Send { to: from.clone(), msg });
        }
        self.plan_requests(now, Some(from));
    }

    fn on_request(&mut self, from: &NodeName, id: u64, origin: &str, from_seq: u64, limit: u32, log: &dyn LogView) {
        let Some(origin) = self.member(from, origin) else { return };
        if self.quarantined.contains(&origin) {
            // Nothing of a forked origin is served, but why not is: its fork proof (if held).
            let proof = self.proofs.get(&origin).map_or(&[][..], |p| p.as_slice());
            self.actions.push_back(Action::Send { to: from.clone(), msg: proof_message(proof, from, Some(id)) });
            return;
        }
        let limit = (limit as usize).min(wire::ENTRIES_PER_MESSAGE_MAX);
        let (wire_entries, last) = log.range_for(&origin, from_seq.max(1), limit, from);
        let p = self.peers.get_mut(from).expect("connected peer");
        // What we send, the peer will hold (as after a push).
        if let Some(t) = last {
            raise(&mut p.known, &origin, t);
        }
        self.actions.push_back(Action::Send {
            to: from.clone(),
            msg: Message::Entries { reply_to: Some(id), entries: wire_entries },
        });
    }

    fn on_entries(&mut self, now: u64, from: &NodeName, reply_to: Option<u64>, entries: Vec<wire::WireEntry>) {
        let mut signed = Vec::with_capacity(entries.len());
        for w in entries {
            match SignedEntry::from_wire(w) {
                Ok(e) => signed.push(e),
                Err(e) => {
                    let reason = format!("undecodable entry: {e}");
                    self.actions.push_back(Action::Disconnect { peer: from.clone(), reason });
                    return;
                }
            }
        }
        if let Some(id) = reply_to {
            for f in self.in_flight.values_mut().filter(|f| f.peer == *from) {
                // Give verification and storage time of their own, to the answers queued
                // behind this one too.
                if f.requests.iter().any(|(r, _)| *r == id) {
                    for (_, deadline) in f.requests.iter_mut() {
                        *deadline = (*deadline).max(now + self.cfg.request_timeout_ms);
                    }
                }
            }
        }
        self.actions.push_back(Action::Ingest { from: from.clone(), reply_to, entries: signed });
    }

    fn on_want_bodies(&mut self, from: &NodeName, ids: Vec<(String, u64)>, log: &dyn LogView) {
        let mut out = Vec::new();
        for (o, seq) in ids {
            let Some(origin) = self.member(from, &o) else { return };
            if self.quarantined.contains(&origin) {
                continue;
            }
            if let Some(e) = log.range(&origin, seq, 1).into_iter().next()
                && e.header().seq == seq
                && e.entry().body.is_some()
                && e.header().audience.admits(&origin, from)
            {
                out.push(e.entry().to_wire());
            }
        }
        for chunk in out.chunks(wire::ENTRIES_PER_MESSAGE_MAX) {
            self.actions.push_back(Action::Send {
                to: from.clone(),
                msg: Message::Entries { reply_to: None, entries: chunk.to_vec() },
            });
        }
    }

    // ---- internals ----

    /// Whether our own head is ahead of what `p` is believed to hold.
    fn own_head_unknown_to(&self, p: &Peer) -> bool {
        let ours = self.heads.get(&self.me).map_or(0, |t| t.seq);
        ours > p.known.get(&self.me).map_or(0, |t| t.seq) && !self.quarantined.contains(&self.me)
    }

    /// Whether another origin moved since the last relay round.
    fn relay_due(&self) -> bool {
        self.heads.iter().any(|(o, t)| *o != self.me && self.relayed.get(o) != Some(t))
    }

    /// The announcements that are due (see the module doc). Each receiver only raises what it
    /// knows of us, so nothing here needs to reach every peer: a move missed by one round is
    /// named again by another relay, or by the next whole-vector round.
    fn announce(&mut self, now: u64) {
        // Our own head, to each peer that is not believed to hold it: after a push, none; a peer
        // too far behind for a push learns here that it should pull.
        let mut own = Vec::new();
        for (name, p) in self.peers.iter().filter(|(_, p)| p.ready) {
            if self.own_head_unknown_to(p) && now >= p.last_announce_ms + self.cfg.heads_interval_ms {
                own.push(name.clone());
            }
        }
        if let Some(tip) = self.heads.get(&self.me).copied() {
            for name in own {
                let p = self.peers.get_mut(&name).expect("listed");
                p.last_announce_ms = now;
                p.known.insert(self.me.clone(), tip);
                let heads = vec![wire_head(&self.me, &tip)];
                self.actions.push_back(Action::Send { to: name, msg: Message::Heads { heads } });
            }
        }
        let ready: Vec<NodeName> = self.peers.iter().filter(|(_, p)| p.ready).map(|(n, _)| n.clone()).collect();
        if ready.is_empty() {
            return;
        }
        // Other origins that moved since the last round, to `relay_fanout` peers in turn, each
        // told only what it is not known to hold (its own entries least of all).
        if self.relay_due() && now >= self.last_relay_ms + self.cfg.heads_interval_ms {
            let moved: Vec<(NodeName, ChainTip)> = self
                .heads
                .iter()
                .filter(|(o, t)| **o != self.me && self.relayed.get(*o) != Some(*t))
                .map(|(o, t)| (o.clone(), *t))
                .collect();
            for name in take_turns(&ready, &mut self.relay_turn, self.cfg.relay_fanout) {
                let p = &self.peers[&name];
                let heads: Vec<WireHead> = moved
                    .iter()
                    .filter(|(o, t)| p.known.get(o).is_none_or(|k| k.seq < t.seq))
                    .map(|(o, t)| wire_head(o, t))
                    .collect();
                if !heads.is_empty() {
                    self.actions.push_back(Action::Send { to: name, msg: Message::Heads { heads } });
                }
            }
            self.relayed = self.heads.clone();
            self.last_relay_ms = now;
        }
        // The whole vector to the next peer in turn.
        if now >= self.next_full_ms() && !self.heads.is_empty() {
            for name in take_turns(&ready, &mut self.full_turn, 1) {
                self.actions
                    .push_back(Action::Send { to: name, msg: Message::Heads { heads: wire_heads(&self.heads) } });
            }
            self.full_rounds_due = self.full_rounds_due.saturating_sub(1);
            self.last_full_ms = now;
        }
    }

    /// When the next whole-vector announcement is due.
    fn next_full_ms(&self) -> u64 {
        let wait = if self.full_rounds_due > 0 {
            self.cfg.full_heads_interval_ms
        } else {
            self.cfg.full_heads_idle_interval_ms
        };
        self.last_full_ms.saturating_add(wait)
    }

    /// Starts or tops up one pull per origin where a ready peer is ahead of us. `prefer` is asked
    /// first when a pull starts; a pull stays with its peer until it ends.
    fn plan_requests(&mut self, now: u64, prefer: Option<&NodeName>) {
        // Called on most messages: decide with shared borrows and no clones of names (origins
        // are roster members), then apply the few requests decided.
        let mut added: BTreeMap<&NodeName, usize> = BTreeMap::new();
        // (origin, peer, first seq to ask for)
        let mut planned: Vec<(&NodeName, &NodeName, u64)> = Vec::new();
        let depth = self.cfg.requests_per_origin_max.clamp(1, self.cfg.requests_in_flight_per_peer_max.max(1));
        let step = self.cfg.request_entries_max as u64;
        for o in &self.members {
            if self.quarantined.contains(o) {
                continue;
            }
            let ours = self.heads.get(o).map_or(0, |t| t.seq);
            let per_peer_max = self.cfg.requests_in_flight_per_peer_max;
            let usable = |name: &NodeName, p: &Peer, added: &BTreeMap<&NodeName, usize>| {
                let in_flight = p.in_flight + added.get(name).copied().unwrap_or(0);
                p.ready && p.backoff_until_ms <= now && in_flight < per_peer_max
            };
            if let Some(f) = self.in_flight.get(o) {
                // Top up the pipeline with the ranges after the last one asked for.
                let Some(p) = self.peers.get(&f.peer) else { continue };
                let theirs = p.known.get(o).map_or(0, |t| t.seq);
                let mut from = f.next_seq.max(ours + 1);
                let mut n = f.requests.len();
                // Only a catch-up is pipelined: a lag of less than one request is usually
                // entries still on their way as pushes, and asking for them again costs the
                // peer a range read and both sides a duplicate.
                let lagging = theirs.saturating_sub(ours) > step;
                while n < depth && from <= theirs && lagging && usable(&f.peer, p, &added) {
                    planned.push((o, &f.peer, from));
                    *added.entry(&f.peer).or_default() += 1;
                    from = from.saturating_add(step);
                    n += 1;
                }
                continue;
            }
            let mut best: Option<(&NodeName, u64)> = None;
            for (name, p) in &self.peers {
                if !usable(name, p, &added) {
                    continue;
                }
                let theirs = p.known.get(o).map_or(0, |t| t.seq);
                if theirs <= ours {
                    continue;
                }
                let better = match best {
                    None => true,
                    Some((_, b)) => theirs > b || (theirs == b && Some(name) == prefer),
                };
                if better {
                    best = Some((name, theirs));
                }
            }
            let Some((peer, theirs)) = best else { continue };
            let p = &self.peers[peer];
            let mut from = ours + 1;
            let mut n = 0;
            let lagging = theirs.saturating_sub(ours) > step;
            while n < depth && from <= theirs && (n == 0 || (lagging && usable(peer, p, &added))) {
                planned.push((o, peer, from));
                *added.entry(peer).or_default() += 1;
                from = from.saturating_add(step);
                n += 1;
            }
        }
        if planned.is_empty() {
            return;
        }
        let planned: Vec<(NodeName, NodeName, u64)> =
            planned.into_iter().map(|(o, p, from)| (o.clone(), p.clone(), from)).collect();
        for (o, peer, from) in planned {
            let id = self.next_id;
            self.next_id += 1;
            // Ask for a full range even when the peer announced less: it answers with what it
            // holds, which is usually more by now. An answer cut at the announced head would
            // leave the entries after it to the next announcement, and when the peer is their
            // origin, also stop its pushes to us, which go out only in sequence.
            let limit = self.cfg.request_entries_max;
            let msg = Message::Request { id, origin: o.to_string(), from_seq: from, limit };
            let deadline = now + self.cfg.request_timeout_ms;
            let f = self.in_flight.entry(o).or_insert_with(|| Pull {
                peer: peer.clone(),
                requests: VecDeque::new(),
                next_seq: from,
            });
            f.requests.push_back((id, deadline));
            f.next_seq = from.saturating_add(limit as u64);
            self.peers.get_mut(&peer).expect("listed").in_flight += 1;
            self.actions.push_back(Action::Send { to: peer, msg });
        }
    }

    /// Ends the pull of `origin`, if any, releasing its peer's request slots; returns its peer.
    fn drop_pull(&mut self, origin: &NodeName) -> Option<NodeName> {
        let f = self.in_flight.remove(origin)?;
        if let Some(p) = self.peers.get_mut(&f.peer) {
            p.in_flight = p.in_flight.saturating_sub(f.requests.len());
        }
        Some(f.peer)
    }

    fn ask_for_bodies(&mut self) {
        for (name, p) in &self.peers {
            if !p.ready {
                continue;
            }
            let ids: Vec<(String, u64)> = self
                .wanted
                .iter()
                .filter(|(id, a)| a.admits(&id.origin, name))
                .take(wire::WANT_BODIES_MAX)
                .map(|(id, _)| (id.origin.to_string(), id.seq))
                .collect();
            if !ids.is_empty() {
                self.actions.push_back(Action::Send { to: name.clone(), msg: Message::WantBodies { ids } });
            }
        }
    }

    fn parse_heads(&mut self, from: &NodeName, heads: Vec<WireHead>) -> Option<BTreeMap<NodeName, ChainTip>> {
        let mut out = BTreeMap::new();
        for h in heads {
            let o = self.member(from, &h.origin)?;
            if h.seq == 0 {
                self.violation(from, "version vector with seq 0".into());
                return None;
            }
            out.insert(o, ChainTip { seq: h.seq, hash: h.hash });
        }
        Some(out)
    }

    /// Parses an origin name a peer sent; it must be a roster member.
    fn member(&mut self, from: &NodeName, name: &str) -> Option<NodeName> {
        match NodeName::new(name) {
            Ok(n) if self.members.contains(&n) => Some(n),
            _ => {
                self.violation(from, format!("unknown origin {name:?}"));
                None
            }
        }
    }

    fn violation(&mut self, peer: &NodeName, reason: String) {
        self.actions.push_back(Action::Disconnect { peer: peer.clone(), reason });
    }
}

/// A fork proof as an `Entries` message for `to`: bodies only where `to` is in the audience.
fn proof_message(proof: &[AuthenticEntry], to: &NodeName, reply_to: Option<u64>) -> Message {
    let entries = proof
        .iter()
        .map(|a| {
            let mut w = a.entry().to_wire();
            if !a.header().audience.admits(&a.header().origin, to) {
                w.body = None;
            }
            w
        })
        .collect();
    Message::Entries { reply_to, entries }
}

/// The next `n` of `ready` (at most all of them) from `turn` on, advancing `turn`.
fn take_turns(ready: &[NodeName], turn: &mut usize, n: usize) -> Vec<NodeName> {
    let n = n.min(ready.len());
    let start = *turn % ready.len();
    *turn = (start + n) % ready.len();
    (0..n).map(|i| ready[(start + i) % ready.len()].clone()).collect()
}

fn bump(known: &mut BTreeMap<NodeName, ChainTip>, e: &VerifiedEntry) {
    raise(known, &e.header().origin, e.tip());
}

/// Raises what is believed of a peer's head of `origin` to `tip`; never lowers it.
fn raise(known: &mut BTreeMap<NodeName, ChainTip>, origin: &NodeName, tip: ChainTip) {
    if known.get(origin).is_none_or(|k| k.seq < tip.seq) {
        known.insert(origin.clone(), tip);
    }
}

fn back_off(p: &mut Peer, now: u64, cfg: &SyncConfig) {
    p.backoff_ms = if p.backoff_ms == 0 { cfg.backoff_base_ms } else { (p.backoff_ms * 2).min(cfg.backoff_max_ms) };
    p.backoff_until_ms = now + p.backoff_ms;
}

fn wire_heads(heads: &BTreeMap<NodeName, ChainTip>) -> Vec<WireHead> {
    heads.iter().map(|(o, t)| wire_head(o, t)).collect()
}

fn wire_head(origin: &NodeName, t: &ChainTip) -> WireHead {
    WireHead { origin: origin.to_string(), seq: t.seq, hash: t.hash }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Body, EntryId, Sighting};

    fn name(s: &str) -> NodeName {
        NodeName::new(s).unwrap()
    }

    /// A log with nothing in it (the tests here never read it).
    struct NoLog;

    impl LogView for NoLog {
        fn range(&self, _: &NodeName, _: u64, _: usize) -> Vec<VerifiedEntry> {
            Vec::new()
        }
    }

    fn requests(s: &mut Sync) -> Vec<(u64, u64, u32)> {
        std::iter::from_fn(|| s.poll_action())
            .filter_map(|a| match a {
                Action::Send { msg: Message::Request { id, from_seq, limit, .. }, .. } => Some((id, from_seq, limit)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_pull_keeps_consecutive_requests_in_flight_and_tops_up_as_answers_are_stored() {
        let (ee, lv) = (name("ee"), name("lv"));
        let cfg = SyncConfig::default();
        let (depth, step) = (cfg.requests_per_origin_max, cfg.request_entries_max);
        let mut s = Sync::new(ee.clone(), [ee.clone(), lv.clone()], BTreeMap::new(), BTreeSet::new(), cfg);
        s.peer_connected(0, &lv);
        let heads = vec![WireHead { origin: "lv".into(), seq: 2_000, hash: [7; 32] }];
        s.handle_message(0, &lv, Message::Hello { version: wire::PROTOCOL_VERSION, heads }, &NoLog);
        let asked = requests(&mut s);
        let want: Vec<(u64, u32)> = (0..depth as u64).map(|i| (1 + i * step as u64, step)).collect();
        assert_eq!(asked.iter().map(|r| (r.1, r.2)).collect::<Vec<_>>(), want, "consecutive ranges, {depth} deep");
        // The first answer is stored: exactly one more request, for the range after the last.
        let key = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
        let bodies = (0..step)
            .map(|i| Body::Retraction(crate::model::Retraction { target_seq: 1 + i as u64, reason: "test".into() }))
            .collect();
        let stored = VerifiedEntry::sign_own_many(&key, &lv, None, 1, bodies);
        s.ingested(1, &lv, Some(asked[0].0), &stored, &[]);
        let more = requests(&mut s);
        assert_eq!(more.iter().map(|r| (r.1, r.2)).collect::<Vec<_>>(), vec![(1 + depth as u64 * step as u64, step)]);
        // An empty answer ends the pull: no request until the back-off passes.
        s.ingested(2, &lv, Some(asked[1].0), &[], &[]);
        assert_eq!(requests(&mut s), vec![], "backed off");
        s.handle_timeout(2 + 60_000);
        let again = requests(&mut s);
        assert_eq!(again.first().map(|r| r.1), Some(step as u64 + 1), "the pull restarts after our head");
    }

    /// `n` signed entries of `origin` from seq 1 (retractions: the machine never looks inside).
    fn entries(origin: &NodeName, n: u64) -> Vec<VerifiedEntry> {
        let key = ed25519_dalek::SigningKey::from_bytes(&[origin.as_str().len() as u8; 32]);
        let bodies = (1..=n)
            .map(|i| Body::Retraction(crate::model::Retraction { target_seq: i, reason: "test".into() }))
            .collect();
        VerifiedEntry::sign_own_many(&key, origin, None, 1, bodies)
    }

    /// Seqs of the entries pushed to `to` (answers to requests excluded), and the heads announced to it.
    fn sent(s: &mut Sync, to: &NodeName) -> (Vec<u64>, Vec<Vec<(String, u64)>>) {
        let (mut pushed, mut announced) = (Vec::new(), Vec::new());
        while let Some(a) = s.poll_action() {
            match a {
                Action::Send { to: t, msg: Message::Entries { reply_to: None, entries } } if t == *to => {
                    pushed.extend(entries.iter().map(|w| SignedEntry::from_wire(w.clone()).unwrap().header.seq))
                }
                Action::Send { to: t, msg: Message::Heads { heads } } if t == *to => {
                    announced.push(heads.into_iter().map(|h| (h.origin, h.seq)).collect())
                }
                _ => {}
            }
        }
        (pushed, announced)
    }

    fn connect(s: &mut Sync, peer: &NodeName, heads: Vec<WireHead>) {
        s.peer_connected(0, peer);
        s.handle_message(0, peer, Message::Hello { version: wire::PROTOCOL_VERSION, heads }, &NoLog);
        while s.poll_action().is_some() {}
    }

    /// A peer's announcement can be older than pushes already sent to it. Taking it as the whole
    /// truth made the push of the next entry (which goes only to a peer holding its predecessor)
    /// stop, and the peer received everything after by pulls, one heads interval late: on
    /// loopback at 1,000 entries/s, propagation p50 went from under 1 ms to over 100 ms.
    #[test]
    fn a_stale_heads_announcement_does_not_stop_the_pushes() {
        let (ee, lv) = (name("ee"), name("lv"));
        let mut s =
            Sync::new(ee.clone(), [ee.clone(), lv.clone()], BTreeMap::new(), BTreeSet::new(), SyncConfig::default());
        connect(&mut s, &lv, vec![]);
        let log = entries(&ee, 4);
        s.stored(1, None, &log[..3]);
        assert_eq!(sent(&mut s, &lv).0, vec![1, 2, 3]);
        // lv announces what it held when it had stored only seq 1.
        let stale = vec![WireHead { origin: "ee".into(), seq: 1, hash: log[0].hash() }];
        s.handle_message(2, &lv, Message::Heads { heads: stale }, &NoLog);
        s.stored(3, None, &log[3..]);
        assert_eq!(sent(&mut s, &lv).0, vec![4], "seq 4 follows seq 3, which lv was sent");
    }

    /// Pushes carry only the node's own entries (no relay flood). Our own head is announced only
    /// to a peer not believed to hold it: one that got the push needs no announcement, one too far
    /// behind for a push learns from it that it should pull.
    #[test]
    fn only_own_entries_are_pushed_and_own_head_is_announced_where_not_pushed() {
        let (ee, lv, lt) = (name("ee"), name("lv"), name("lt"));
        let members = [ee.clone(), lv.clone(), lt.clone()];
        let cfg = SyncConfig { full_heads_rounds: 0, full_heads_idle_interval_ms: u64::MAX, ..SyncConfig::default() };
        let mut s = Sync::new(ee.clone(), members, BTreeMap::new(), BTreeSet::new(), cfg.clone());
        connect(&mut s, &lv, vec![]);
        connect(&mut s, &lt, vec![]);
        // lv's entries arrive from lv: not pushed on to lt, but relayed to it in an announcement.
        s.ingested(10, &lv, None, &entries(&lv, 2), &[]);
        assert_eq!(sent(&mut s, &lt).0, Vec::<u64>::new(), "no relay push");
        s.handle_timeout(10 + cfg.heads_interval_ms);
        assert_eq!(sent(&mut s, &lt).1, vec![vec![("lv".to_string(), 2)]]);
        // Our own entry is pushed to both, and then not announced to either.
        let own = entries(&ee, 3);
        s.stored(1_000, None, &own[..1]);
        assert_eq!(sent(&mut s, &lt), (vec![1], vec![]));
        s.handle_timeout(1_000 + cfg.heads_interval_ms);
        assert_eq!(sent(&mut s, &lt), (vec![], vec![]), "lt got the push: no announcement");
        assert_eq!(s.poll_timeout(), u64::MAX, "nothing is due");
        // lt says hello again, holding none of ours: seq 2 cannot be pushed to it, so it hears of
        // our head instead, once, and pulls.
        connect(&mut s, &lt, vec![]);
        s.poll_action();
        s.stored(2_000, None, &own[1..2]);
        assert_eq!(sent(&mut s, &lt), (vec![], vec![]));
        s.handle_timeout(2_000 + cfg.heads_interval_ms);
        assert_eq!(sent(&mut s, &lt).1, vec![vec![("ee".to_string(), 2)]]);
        s.handle_timeout(3_000 + cfg.heads_interval_ms);
        assert_eq!(sent(&mut s, &lt), (vec![], vec![]), "announced once");
    }

    /// Other origins' moves go to `relay_fanout` peers per round, in turn, not to every peer:
    /// each node relays, so every node still hears of a move from several, and an announcement
    /// round costs a node O(fanout × origins), not O(peers × origins).
    #[test]
    fn moves_of_other_origins_are_relayed_to_a_few_peers_in_turn() {
        let me = name("ee");
        let peers: Vec<NodeName> = ["de", "dk", "fi", "lt", "lv", "pl", "se"].into_iter().map(name).collect();
        let cfg = SyncConfig {
            relay_fanout: 3,
            full_heads_rounds: 0,
            full_heads_idle_interval_ms: u64::MAX,
            ..SyncConfig::default()
        };
        let members = peers.iter().cloned().chain([me.clone()]);
        let mut s = Sync::new(me, members, BTreeMap::new(), BTreeSet::new(), cfg.clone());
        for p in &peers {
            connect(&mut s, p, vec![]);
        }
        let announced = |s: &mut Sync| {
            let mut m = BTreeMap::new();
            while let Some(a) = s.poll_action() {
                if let Action::Send { to, msg: Message::Heads { heads } } = a {
                    let named: Vec<(String, u64)> = heads.into_iter().map(|h| (h.origin, h.seq)).collect();
                    assert!(m.insert(to.to_string(), named).is_none(), "one announcement per peer and round");
                }
            }
            m
        };
        s.ingested(10, &peers[4], None, &entries(&peers[4], 2), &[]);
        s.handle_timeout(10 + cfg.heads_interval_ms);
        // ee is third in the roster (de, dk, ee, …), so its turns start at the third of its
        // peers: fi, lt and lv; lv is not told of its own entries.
        let lv2 = vec![("lv".to_string(), 2)];
        assert_eq!(announced(&mut s), BTreeMap::from([("fi".into(), lv2.clone()), ("lt".into(), lv2)]));
        // The next move goes to the next three: pl (not told of its own), se, and de again.
        s.ingested(300, &peers[5], None, &entries(&peers[5], 1), &[]);
        s.handle_timeout(300 + cfg.heads_interval_ms);
        let pl1 = vec![("pl".to_string(), 1)];
        assert_eq!(announced(&mut s), BTreeMap::from([("de".into(), pl1.clone()), ("se".into(), pl1)]));
        // Nothing moved since: no round.
        s.handle_timeout(2_000);
        assert!(announced(&mut s).is_empty());
        assert_eq!(s.poll_timeout(), u64::MAX);
    }

    /// After a change, the whole vector goes to one peer per `full_heads_interval_ms`, in turn,
    /// `full_heads_rounds` times, then once per `full_heads_idle_interval_ms`: the anti-entropy
    /// that heals a lost push or announcement, at a low steady cost once nothing moves.
    #[test]
    fn the_whole_vector_goes_to_successive_peers_often_after_a_change_then_seldom() {
        let (ee, lv, lt, pl) = (name("ee"), name("lv"), name("lt"), name("pl"));
        let members = [ee.clone(), lv.clone(), lt.clone(), pl.clone()];
        let cfg = SyncConfig {
            relay_fanout: 0,
            full_heads_rounds: 3,
            full_heads_interval_ms: 1_000,
            full_heads_idle_interval_ms: 5_000,
            ..SyncConfig::default()
        };
        let mut s = Sync::new(ee.clone(), members, BTreeMap::new(), BTreeSet::new(), cfg.clone());
        for p in [&lt, &lv, &pl] {
            connect(&mut s, p, vec![]);
        }
        assert_eq!(s.poll_timeout(), u64::MAX, "nothing held, nothing to announce");
        s.ingested(10, &lv, None, &entries(&lv, 2), &[]);
        s.stored(20, None, &entries(&ee, 1));
        s.handle_timeout(500); // the relay round (fanout 0: told to no one)
        while s.poll_action().is_some() {}
        let whole = vec![("ee".to_string(), 1), ("lv".to_string(), 2)];
        let mut got = Vec::new();
        // Three rounds a second apart, then one after the idle interval; ee is first in the
        // roster, so its turns start at its first peer and wrap around.
        for due in [1_000, 2_000, 3_000, 8_000, 13_000] {
            assert_eq!(s.poll_timeout(), due);
            s.handle_timeout(due - 1);
            assert!(s.poll_action().is_none(), "not before {due}");
            s.handle_timeout(due);
            while let Some(a) = s.poll_action() {
                if let Action::Send { to, msg: Message::Heads { heads } } = a {
                    got.push((to.to_string(), heads.into_iter().map(|h| (h.origin, h.seq)).collect::<Vec<_>>()));
                }
            }
        }
        let expected: Vec<(String, Vec<(String, u64)>)> =
            ["lt", "lv", "pl", "lt", "lv"].into_iter().map(|p| (p.to_string(), whole.clone())).collect();
        assert_eq!(got, expected);
    }

    /// A push that overtook the one before it cannot be chained; the shell reports where it was
    /// (`peer_holds`) and the gap is pulled from its sender at once: after the push, the sender
    /// believes we hold both and announces neither.
    #[test]
    fn a_push_that_overtook_its_predecessor_makes_the_gap_pulled_from_its_sender() {
        let (ee, lv, lt) = (name("ee"), name("lv"), name("lt"));
        let members = [ee.clone(), lv.clone(), lt.clone()];
        let mut s = Sync::new(lt.clone(), members, BTreeMap::new(), BTreeSet::new(), SyncConfig::default());
        connect(&mut s, &lv, vec![]);
        connect(&mut s, &ee, vec![]);
        let log = entries(&lv, 3);
        s.ingested(5, &lv, None, &log[..1], &[]);
        while s.poll_action().is_some() {}
        // Seq 3 arrives before seq 2 and is not stored.
        s.peer_holds(&lv, &lv, log[2].tip());
        s.ingested(6, &lv, None, &[], &[]);
        let asked: Vec<(u64, u32)> = requests(&mut s).into_iter().map(|(_, from, limit)| (from, limit)).collect();
        assert_eq!(asked, vec![(2, SyncConfig::default().request_entries_max)]);
        // Claims about non-members or from peers that have not said hello change nothing.
        s.peer_holds(&lv, &name("xx"), log[2].tip());
        s.peer_holds(&name("xx"), &lv, log[2].tip());
        s.ingested(7, &lv, None, &[], &[]);
        assert_eq!(requests(&mut s), vec![], "the pull is already under way");
    }

    /// A pull asks for a whole range even when the peer announced less: the answer brings what
    /// the peer holds by then, not just what it held when it announced.
    #[test]
    fn a_pull_asks_for_a_full_range_beyond_the_announced_head() {
        let (ee, lv) = (name("ee"), name("lv"));
        let cfg = SyncConfig::default();
        let step = cfg.request_entries_max;
        let mut s = Sync::new(ee.clone(), [ee.clone(), lv.clone()], BTreeMap::new(), BTreeSet::new(), cfg);
        s.peer_connected(0, &lv);
        let heads = vec![WireHead { origin: "lv".into(), seq: 3, hash: [7; 32] }];
        s.handle_message(0, &lv, Message::Hello { version: wire::PROTOCOL_VERSION, heads }, &NoLog);
        assert_eq!(requests(&mut s).iter().map(|r| (r.1, r.2)).collect::<Vec<_>>(), vec![(1, step)]);
    }

    /// Found by `fuzz/` (target `sync`): a peer announcing `u64::MAX` as its head of our log made
    /// the next push overflow `have + 1`.
    #[test]
    fn a_peer_head_at_u64_max_does_not_overflow_the_push() {
        let (ee, lv) = (name("ee"), name("lv"));
        let mut s =
            Sync::new(ee.clone(), [ee.clone(), lv.clone()], BTreeMap::new(), BTreeSet::new(), SyncConfig::default());
        s.peer_connected(0, &lv);
        let heads = vec![WireHead { origin: "ee".into(), seq: u64::MAX, hash: [7; 32] }];
        s.handle_message(0, &lv, Message::Hello { version: wire::PROTOCOL_VERSION, heads }, &NoLog);
        while s.poll_action().is_some() {}
        let indicator = EntryId { origin: lv.clone(), seq: 1 };
        let body =
            Body::Sighting(Sighting { indicator, count: 1, first_seen_ms: 0, last_seen_ms: 0, note: String::new() });
        let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
        s.stored(1, None, &[VerifiedEntry::sign_own(&key, &ee, None, 1, body)]);
        let pushed = std::iter::from_fn(|| s.poll_action())
            .any(|a| matches!(a, Action::Send { msg: Message::Entries { .. }, .. }));
        assert!(!pushed, "a peer that claims to hold more gets no push");
    }
}
