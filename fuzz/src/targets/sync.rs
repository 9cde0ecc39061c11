//! The replication machine driven by a peer: `Sync::handle_message` with decoded messages,
//! interleaved with connects, disconnects, timers and our own appends, and a shell that carries
//! out every action as `node::Actor::drive` does (ingesting through `MemLog`, the store's rules in
//! memory).
//!
//! Checked after every event: the actions are bounded; every message sent is within the limits
//! and round-trips; every entry sent is one we hold, and carries its body only to a node in its
//! audience; requests name members and ask for at most `ENTRIES_PER_MESSAGE_MAX` entries. Every
//! range the machine reads for a peer is also read from a sled `Store` holding the starting log
//! (the daemon's `LogView`), which must agree with the in-memory log on it.

use std::collections::BTreeSet;

use ctix::crypto::EntryHeader;
use ctix::log::VerifiedEntry;
use ctix::model::NodeName;
use ctix::sim::{MemLog, sim_key};
use ctix::store::Store;
use ctix::sync::{Action, LogView, Sync, SyncConfig};
use ctix::wire::{self, ENTRIES_PER_MESSAGE_MAX, FRAME_BYTES_MAX, HEADS_MAX, Message, WireEntry, WireHead};

use crate::fixtures::{Federation, NOW_MS, federation, held_store};
use crate::input::Input;

/// Events in one run: enough to connect, exchange, pull and time out a few times.
const EVENTS_MAX: usize = 64;
/// Actions one event may cause: a full version vector's fork probes, then a request per origin
/// and a relay per peer for what was ingested.
const ACTIONS_PER_EVENT_MAX: usize = 2 * HEADS_MAX + 16;
/// Our own appends in one run.
const APPENDS_MAX: usize = 8;

pub fn sync(data: &[u8]) {
    let f = federation();
    let me = f.names[0].clone();
    let mut shell = Shell { f, me: me.clone(), log: f.held.clone(), now: NOW_MS, request_ids: Vec::new() };
    let heads = shell.log.heads();
    let mut s = Sync::new(me.clone(), f.names.clone(), heads, BTreeSet::new(), SyncConfig::default());
    s.want_bodies(shell.log.stubs_for(&me));
    // Peers as the shell may name them: members, ourselves, and a stranger.
    let peers: Vec<NodeName> = vec![f.names[1].clone(), f.names[2].clone(), me.clone(), crate::fixtures::name("xx")];
    let mut input = Input::new(data);
    let mut appends = 0;
    for _ in 0..EVENTS_MAX {
        if input.is_empty() {
            break;
        }
        let op = input.u8();
        let peer = input.pick(&peers).clone();
        match op % 8 {
            0 => s.peer_connected(shell.now, &peer),
            1 => s.peer_disconnected(shell.now, &peer),
            2..=4 => {
                let m = message(&mut input, &shell);
                // As on the wire: a structured message goes through the real decoder and limits.
                let Ok(m) = wire::decode_message(&wire::encode(&m)) else { continue };
                s.handle_message(shell.now, &peer, m, &shell.view());
            }
            5 => {
                let len = usize::from(input.u16());
                let Ok(m) = wire::decode_message(input.bytes(len)) else { continue };
                s.handle_message(shell.now, &peer, m, &shell.view());
            }
            6 => {
                shell.now += u64::from(input.u32());
                s.handle_timeout(shell.now);
            }
            _ if appends < APPENDS_MAX => {
                appends += 1;
                let body = input.pick(&f.bodies).clone();
                let v = shell.log.append(&sim_key(&me), &me, shell.now, body);
                s.stored(shell.now, None, &[v]);
            }
            _ => {}
        }
        shell.drive(&mut s);
        let _ = s.poll_timeout();
    }
}

/// The log as `Sync` reads it: the shell's `MemLog`, with every read repeated on the store.
struct View<'a> {
    log: &'a MemLog,
    held: &'a MemLog,
    store: &'a Store,
}

impl LogView for View<'_> {
    fn range(&self, origin: &NodeName, from_seq: u64, limit: usize) -> Vec<VerifiedEntry> {
        let stored = self.store.range(origin, from_seq, limit).expect("the fixture store reads");
        assert_eq!(stored, self.held.range(origin, from_seq, limit), "the store and the in-memory log agree");
        self.log.range(origin, from_seq, limit)
    }
}

struct Shell<'f> {
    f: &'f Federation,
    me: NodeName,
    log: MemLog,
    now: u64,
    /// Ids of the requests we sent, so that scripted answers can name them.
    request_ids: Vec<u64>,
}

impl Shell<'_> {
    fn view(&self) -> View<'_> {
        View { log: &self.log, held: &self.f.held, store: held_store() }
    }

    /// Carries out every action, as the node actor does, and checks each.
    fn drive(&mut self, s: &mut Sync) {
        let mut n = 0;
        while let Some(a) = s.poll_action() {
            n += 1;
            assert!(n <= ACTIONS_PER_EVENT_MAX, "one event caused more than {ACTIONS_PER_EVENT_MAX} actions");
            match a {
                Action::Send { to, msg } => self.check_send(&to, &msg),
                Action::Ingest { from, reply_to, entries } => {
                    assert!(entries.len() <= ENTRIES_PER_MESSAGE_MAX);
                    let (stored, forked, gaps, _) = self.log.ingest(&self.f.roster, entries);
                    for (origin, got) in &gaps {
                        s.peer_holds(&from, origin, *got);
                    }
                    s.ingested(self.now, &from, reply_to, &stored, &forked);
                }
                Action::Disconnect { peer, reason } => {
                    assert!(!reason.is_empty());
                    s.peer_disconnected(self.now, &peer);
                }
            }
        }
    }

    fn check_send(&mut self, to: &NodeName, msg: &Message) {
        assert!(*to != self.me && self.f.names.contains(to), "sends go to other members only");
        msg.check_limits().expect("sent messages are within the limits");
        let bytes = wire::encode(msg);
        assert!(bytes.len() <= FRAME_BYTES_MAX, "sent messages fit in a frame");
        assert_eq!(wire::decode_message(&bytes).as_ref(), Ok(msg), "sent messages round-trip");
        match msg {
            Message::Request { id, origin, from_seq, limit } => {
                assert!(self.f.names.iter().any(|n| n.as_str() == origin), "requests name members");
                assert!(*from_seq >= 1 && *limit as usize <= ENTRIES_PER_MESSAGE_MAX);
                self.request_ids.push(*id);
            }
            Message::Entries { entries, .. } => {
                for w in entries {
                    let h = EntryHeader::decode(&w.header).expect("sent headers decode");
                    let held = self.log.log(&h.origin).get(h.seq as usize - 1);
                    assert!(held.is_some_and(|e| e.hash() == h.hash()), "only entries we hold are sent");
                    if w.body.is_some() {
                        assert!(h.audience.admits(&h.origin, to), "a body goes only to its audience");
                    }
                }
            }
            Message::Hello { heads, .. } | Message::Heads { heads } => {
                for WireHead { origin, seq, hash } in heads {
                    let o = crate::fixtures::name(origin);
                    let held = self.log.log(&o).get(*seq as usize - 1);
                    assert!(held.is_some_and(|e| e.hash() == *hash), "announced heads are held");
                }
            }
            Message::WantBodies { .. } => {}
        }
    }
}

/// A message a peer might send, built from the input: mostly plausible (member names, held
/// positions, real hashes and entries), sometimes not.
fn message(input: &mut Input, shell: &Shell) -> Message {
    match input.u8() % 5 {
        0 => {
            let version = if input.u8() < 240 { wire::PROTOCOL_VERSION } else { input.u32() };
            Message::Hello { version, heads: heads(input, shell) }
        }
        1 => Message::Heads { heads: heads(input, shell) },
        2 => Message::Request { id: input.u64(), origin: origin(input), from_seq: seq(input), limit: input.u32() },
        3 => {
            let reply_to = match input.u8() % 3 {
                0 => None,
                1 if !shell.request_ids.is_empty() => Some(*input.pick(&shell.request_ids)),
                _ => Some(input.u64()),
            };
            Message::Entries { reply_to, entries: entries(input, shell) }
        }
        _ => {
            let n = input.below(8);
            Message::WantBodies { ids: (0..n).map(|_| (origin(input), seq(input))).collect() }
        }
    }
}

fn origin(input: &mut Input) -> String {
    match input.u8() % 8 {
        0..=1 => "ee".into(),
        2..=3 => "lv".into(),
        4 => "lt".into(),
        5 => "xx".into(),
        6 => "".into(),
        _ => String::from_utf8_lossy(input.bytes(4)).into_owned(),
    }
}

fn seq(input: &mut Input) -> u64 {
    match input.u8() % 8 {
        0 => 0,
        1 => u64::MAX,
        2 => u64::MAX - 1,
        3 => input.u64(),
        n => u64::from(n) - 3,
    }
}

fn heads(input: &mut Input, shell: &Shell) -> Vec<WireHead> {
    let n = input.below(5);
    (0..n)
        .map(|_| {
            if input.u8() < 200 {
                // A true head: some prefix of an origin's real log.
                let o = input.pick(&shell.f.names);
                let log = shell.f.truth.log(o);
                let e = &log[input.below(log.len())];
                WireHead { origin: o.to_string(), seq: e.header().seq, hash: e.hash() }
            } else {
                let hash = if input.u8() < 128 { *input.pick(&shell.f.hashes) } else { [input.u8(); 32] };
                WireHead { origin: origin(input), seq: seq(input), hash }
            }
        })
        .collect()
}

fn entries(input: &mut Input, shell: &Shell) -> Vec<WireEntry> {
    if input.u8() < 128 {
        // A run of one origin's real log, as an answer to a request.
        let o = input.pick(&shell.f.names);
        let log = shell.f.truth.log(o);
        let from = input.below(log.len());
        let n = input.below(log.len() - from + 1);
        let to = shell.f.names[input.below(3)].clone();
        return log[from..from + n].iter().map(|e| e.for_recipient(&to).to_wire()).collect();
    }
    let n = input.below(6);
    (0..n)
        .map(|_| {
            let mut w = input.pick(&shell.f.pool).clone();
            match input.u8() % 8 {
                0 => w.body = None,
                1 => flip(&mut w.header, input),
                2 => flip(&mut w.signature, input),
                3 => {
                    if let Some(b) = &mut w.body {
                        flip(b, input)
                    }
                }
                4 => w.signature.truncate(input.below(64)),
                _ => {}
            }
            w
        })
        .collect()
}

fn flip(bytes: &mut [u8], input: &mut Input) {
    if !bytes.is_empty() {
        let i = usize::from(input.u16()) % bytes.len();
        bytes[i] ^= input.u8() | 1;
    }
}
