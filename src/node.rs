//! The node: one actor task that owns the replication state machine and drives it with the
//! store and the transport. Everything else (CLI, API, tests) talks to it through `NodeHandle`.
//!
//! The actor's loop takes, in priority order: shutdown, transport events, commands, the timer.
//! Store work (sled, signature verification) runs on the blocking pool and is awaited, so one
//! batch is in progress at a time and a shutdown lets it finish: nothing acknowledged is lost.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use tokio::sync::{mpsc, oneshot, watch};

use crate::config::{Config, OnNoPeers};
use crate::drill::Record;
use crate::drill::runner::{DrillError, DrillSummary, Output as DrillOutput, Runner};
use crate::log::{self, AuthenticEntry, ChainTip, SignedEntry, VerifiedEntry};
use crate::model::EntryId;
use crate::model::drill::Scenario;
use crate::model::{Body, NodeName};
use crate::net::{Net, NetConfig, NetEvent, close_code};
use crate::pki;
use crate::roster::{KeyStatus, Roster};
use crate::store::{AppendError, IngestOutcome, Store, StoreError};
use crate::sync::{Action, LogView, Sync};

/// Commands queued to the node actor.
pub const COMMANDS_QUEUE_MAX: usize = 256;
/// Appends waiting for the start-up own-head check.
pub const PENDING_APPENDS_MAX: usize = 1024;
/// The actor's timer resolution.
pub const TICK_MS: u64 = 50;
/// Transport events the actor takes in one turn before it carries out what they ask: entries
/// from several messages (pipelined catch-up answers, pushes from several peers) are then
/// verified and committed together, with one flush. Bounded so that commands and timers are not
/// starved by a busy transport.
pub const EVENTS_PER_TURN_MAX: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Keys or certificates could not be loaded.
    #[error(transparent)]
    Pki(#[from] pki::PkiError),
    /// The transport could not start.
    #[error(transparent)]
    Net(#[from] crate::net::NetError),
    /// The API's TCP port could not be bound.
    #[error("cannot listen for the API on {addr}: {source} (is another node using that port?)")]
    ApiBind { addr: std::net::SocketAddr, source: std::io::Error },
    /// The node is not accepting appends yet.
    #[error("{0}")]
    NotReady(String),
    /// The roster retired the key this node signs with: its entries would be refused everywhere.
    #[error(
        "this node's signing key was retired at {} by the roster: point signing_key at the key the roster lists as {node}'s public_key and restart",
        crate::model::time::format_time(*retired_at_ms)
    )]
    KeyRetired { node: NodeName, retired_at_ms: u64 },
    /// The node has stopped.
    #[error("node is shutting down")]
    Stopped,
    /// A drill command was refused.
    #[error(transparent)]
    Drill(#[from] DrillError),
}

/// What this node knows of one roster peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerStatus {
    pub name: NodeName,
    pub connected: bool,
    /// When the last message from it arrived (ms since the epoch), if ever since start.
    pub last_seen_ms: Option<u64>,
    /// Entries we hold that it has not announced holding (summed over origins), if known.
    pub lag_entries: Option<u64>,
    /// Entries it sent that failed verification (bad signature, body or signer), since start.
    /// An honest member verifies before it relays, so any count here points at this peer.
    pub rejected: u64,
}

/// A snapshot of the node's state.
#[derive(Debug, Clone)]
pub struct Status {
    pub node: NodeName,
    pub heads: BTreeMap<NodeName, ChainTip>,
    pub peers: Vec<PeerStatus>,
    pub connected: BTreeSet<NodeName>,
    pub quarantined: BTreeSet<NodeName>,
    /// Whether appends are accepted (the own-head check at start-up passed).
    pub ready: bool,
    pub counters: Counters,
}

/// Running totals since start.
#[derive(Debug, Clone, Default)]
pub struct Counters {
    pub appended: u64,
    pub stored_from_peers: u64,
    pub duplicates: u64,
    pub gaps: u64,
    pub rejected: u64,
    pub forks: u64,
}

type AppendReply = oneshot::Sender<Result<Vec<Result<VerifiedEntry, AppendError>>, NodeError>>;

enum Command {
    Append { bodies: Vec<Body>, reply: AppendReply },
    Status { reply: oneshot::Sender<Status> },
    SetBlocked { peer: NodeName, blocked: bool },
    DrillStart { scenario: Box<Scenario>, reply: oneshot::Sender<Result<EntryId, NodeError>> },
    DrillAck { drill: EntryId, inject: String, note: String, reply: oneshot::Sender<Result<EntryId, NodeError>> },
    DrillAbort { drill: EntryId, reason: String, reply: oneshot::Sender<Result<EntryId, NodeError>> },
    DrillList { reply: oneshot::Sender<Vec<DrillSummary>> },
    DrillPurge { drill: EntryId, reply: oneshot::Sender<Result<usize, NodeError>> },
}

/// A cheap, cloneable handle on a running node.
#[derive(Clone)]
pub struct NodeHandle {
    cmds: mpsc::Sender<Command>,
    pub name: NodeName,
    pub store: Arc<Store>,
}

impl NodeHandle {
    /// Appends our own entries; resolves once they are durable. One result per body.
    pub async fn append(&self, bodies: Vec<Body>) -> Result<Vec<Result<VerifiedEntry, AppendError>>, NodeError> {
        let (reply, rx) = oneshot::channel();
        self.cmds.send(Command::Append { bodies, reply }).await.map_err(|_| NodeError::Stopped)?;
        rx.await.map_err(|_| NodeError::Stopped)?
    }

    pub async fn status(&self) -> Result<Status, NodeError> {
        let (reply, rx) = oneshot::channel();
        self.cmds.send(Command::Status { reply }).await.map_err(|_| NodeError::Stopped)?;
        rx.await.map_err(|_| NodeError::Stopped)
    }

    /// Starts a drill with this node as its controller; resolves with the drill id once the start
    /// record is durable.
    pub async fn drill_start(&self, scenario: Scenario) -> Result<EntryId, NodeError> {
        self.ask(|reply| Command::DrillStart { scenario: Box::new(scenario), reply }).await?
    }

    /// An operator's acknowledgement of a situation update; resolves with the ack's entry id.
    pub async fn drill_ack(&self, drill: EntryId, inject: String, note: String) -> Result<EntryId, NodeError> {
        self.ask(|reply| Command::DrillAck { drill, inject, note, reply }).await?
    }

    /// Aborts a drill this node controls; resolves with the end record's id.
    pub async fn drill_abort(&self, drill: EntryId, reason: String) -> Result<EntryId, NodeError> {
        self.ask(|reply| Command::DrillAbort { drill, reason, reply }).await?
    }

    pub async fn drill_list(&self) -> Result<Vec<DrillSummary>, NodeError> {
        self.ask(|reply| Command::DrillList { reply }).await
    }

    /// Removes a finished drill's bodies from this node; returns the records purged.
    pub async fn drill_purge(&self, drill: EntryId) -> Result<usize, NodeError> {
        self.ask(|reply| Command::DrillPurge { drill, reply }).await?
    }

    async fn ask<T>(&self, cmd: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T, NodeError> {
        let (reply, rx) = oneshot::channel();
        self.cmds.send(cmd(reply)).await.map_err(|_| NodeError::Stopped)?;
        rx.await.map_err(|_| NodeError::Stopped)
    }

    /// Blocks or unblocks the link to a peer (drill faults, tests).
    pub async fn set_blocked(&self, peer: NodeName, blocked: bool) -> Result<(), NodeError> {
        self.cmds.send(Command::SetBlocked { peer, blocked }).await.map_err(|_| NodeError::Stopped)
    }
}

/// A running node: its handle, and the task to await after signalling shutdown.
pub struct Running {
    pub handle: NodeHandle,
    pub quic_addr: std::net::SocketAddr,
    /// The bound address of the REST API.
    pub api_addr: std::net::SocketAddr,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    api_task: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Stops the node: the current batch finishes, connections close, the task ends, and the
    /// QUIC port is free again (quinn releases the socket asynchronously; bounded wait).
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        let _ = self.api_task.await;
        let _ = self.task.await;
        let deadline = std::time::Instant::now() + Duration::from_millis(crate::net::SHUTDOWN_WAIT_MS);
        while std::net::UdpSocket::bind(self.quic_addr).is_err() && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

struct StoreView<'a>(&'a Store);

impl LogView for StoreView<'_> {
    fn range(&self, origin: &NodeName, from_seq: u64, limit: usize) -> Vec<VerifiedEntry> {
        self.0.range(origin, from_seq, limit).unwrap_or_else(|e| {
            tracing::error!(error = %e, "store read failed while serving a peer");
            Vec::new()
        })
    }

    fn range_for(
        &self,
        origin: &NodeName,
        from_seq: u64,
        limit: usize,
        recipient: &NodeName,
    ) -> (Vec<crate::wire::WireEntry>, Option<ChainTip>) {
        self.0.range_for(origin, from_seq, limit, recipient).unwrap_or_else(|e| {
            tracing::error!(error = %e, "store read failed while serving a peer");
            (Vec::new(), None)
        })
    }
}

/// Whether `key` may sign this node's entries created at `now_ms`: it must be the roster's
/// current key for the node, or a retired one still inside its overlap window.
fn signing_allowed(cfg: &Config, key: &SigningKey, now_ms: u64) -> Result<(), NodeError> {
    match cfg.roster.key_status(&cfg.node, &key.verifying_key(), now_ms) {
        KeyStatus::Current | KeyStatus::Retiring { .. } => Ok(()),
        KeyStatus::Retired { retired_at_ms } => Err(NodeError::KeyRetired { node: cfg.node.clone(), retired_at_ms }),
        KeyStatus::Unknown => Err(NodeError::NotReady(format!(
            "the signing key {} is not a key the roster lists for {}",
            cfg.signing_key.display(),
            cfg.node
        ))),
    }
}

/// Opens the store, starts the transport and the actor.
pub async fn start(cfg: Config) -> Result<Running, NodeError> {
    let key = pki::load_node_key(&cfg.signing_key)?;
    signing_allowed(&cfg, &key, crate::now_ms()).map_err(|e| match e {
        NodeError::NotReady(m) => NodeError::NotReady(format!("{m}: fix the roster or the signing_key path")),
        e => e,
    })?;
    if let KeyStatus::Retiring { retired_at_ms } =
        cfg.roster.key_status(&cfg.node, &key.verifying_key(), crate::now_ms())
    {
        tracing::warn!(
            retired_at = %crate::model::time::format_time(retired_at_ms),
            "this node signs with a key the roster retires: switch signing_key to the roster's public_key before then"
        );
    }
    let store = Arc::new(Store::open(&cfg.data_dir, &cfg.store)?);
    let mut sync =
        Sync::new(cfg.node.clone(), cfg.roster.names().cloned(), store.heads(), store.quarantined(), cfg.sync.clone());
    sync.want_bodies(store.stubs_for(&cfg.node)?);
    for origin in store.quarantined() {
        sync.fork_proof(&origin, fork_proof(&store, &cfg.roster, &origin)?);
    }
    let net_cfg = NetConfig {
        me: cfg.node.clone(),
        listen: cfg.quic_listen,
        roster: cfg.roster.clone(),
        ca_cert: cfg.ca_cert.clone(),
        cert: cfg.tls_cert.clone(),
        key: cfg.tls_key.clone(),
        blocked: cfg.blocked_peers.clone(),
    };
    let api_listener = tokio::net::TcpListener::bind(cfg.api_listen)
        .await
        .map_err(|source| NodeError::ApiBind { addr: cfg.api_listen, source })?;
    let api_addr = api_listener.local_addr().map_err(|source| NodeError::ApiBind { addr: cfg.api_listen, source })?;
    let (net, events) = Net::start(net_cfg)?;
    let quic_addr = net.local_addr().map_err(|source| StoreError::Io { path: "quic socket".into(), source })?;
    let (cmd_tx, cmd_rx) = mpsc::channel(COMMANDS_QUEUE_MAX);
    let (shutdown, shutdown_rx) = watch::channel(false);
    let mut drill = Runner::new(cfg.node.clone(), cfg.roster.names().cloned(), cfg.drill_allow_faults);
    let now = crate::now_ms();
    for id in store.drills()? {
        let records: Vec<Record> = store.drill_records(&id)?.iter().filter_map(Record::from_entry).collect();
        drill.restore(now, &records);
    }
    let alone = cfg.roster.len() == 1;
    // A member alone in its roster has no peer that could hold more of its log.
    let own_unconfirmed = store.own_head_unconfirmed()? && !alone;
    let actor = Actor {
        started_ms: crate::now_ms(),
        ready: alone,
        own_unconfirmed,
        ahead_since_ms: None,
        cfg,
        key,
        store: store.clone(),
        sync,
        net,
        pending: VecDeque::new(),
        counters: Counters::default(),
        connected: BTreeSet::new(),
        last_seen: BTreeMap::new(),
        rejected_from: BTreeMap::new(),
        drill,
    };
    let name = actor.cfg.node.clone();
    let tokens = actor.cfg.api_tokens.clone();
    // For `/metrics`, so that alerting can ask for a new certificate before this one expires.
    let cert = pki::load_certs(&actor.cfg.tls_cert).ok().and_then(|c| c.first().and_then(|c| pki::validity(c).ok()));
    let task = tokio::spawn(actor.run(events, cmd_rx, shutdown_rx.clone()));
    let handle = NodeHandle { cmds: cmd_tx, name, store };
    let api_state = crate::api::ApiState { node: handle.clone(), tokens, cert_not_after_s: cert.map(|(_, na)| na) };
    let api_task = tokio::spawn(crate::api::serve(api_listener, api_state, shutdown_rx));
    Ok(Running { handle, quic_addr, api_addr, shutdown, task, api_task })
}

struct Actor {
    cfg: Config,
    key: SigningKey,
    store: Arc<Store>,
    sync: Sync,
    net: Net,
    started_ms: u64,
    /// Appends are accepted (own head confirmed or waited out).
    ready: bool,
    /// The store marks our own log as possibly behind our peers' copy (`ctix restore`, `ctix
    /// store rejoin`): nothing is signed until the peers confirm our head (`check_restored`).
    own_unconfirmed: bool,
    /// Since when a peer has shown more of our own log than we hold (`may_sign`).
    ahead_since_ms: Option<u64>,
    pending: VecDeque<(Vec<Body>, AppendReply)>,
    counters: Counters,
    connected: BTreeSet<NodeName>,
    last_seen: BTreeMap<NodeName, u64>,
    /// Entries per peer that failed verification (`PeerStatus::rejected`); keys are roster names.
    rejected_from: BTreeMap<NodeName, u64>,
    drill: Runner,
}

impl Actor {
    async fn run(
        mut self,
        mut events: mpsc::Receiver<NetEvent>,
        mut cmds: mpsc::Receiver<Command>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut tick = tokio::time::interval(Duration::from_millis(TICK_MS));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tracing::info!(node = %self.cfg.node, quic = %self.cfg.quic_listen, "node started");
        loop {
            tokio::select! {
                biased;
                _ = shutdown.changed() => break,
                Some(ev) = events.recv() => {
                    self.on_net(ev);
                    for _ in 1..EVENTS_PER_TURN_MAX {
                        match events.try_recv() {
                            Ok(ev) => self.on_net(ev),
                            Err(_) => break,
                        }
                    }
                }
                Some(cmd) = cmds.recv() => self.on_command(cmd, &mut cmds).await,
                _ = tick.tick() => {
                    let now = crate::now_ms();
                    self.sync.handle_timeout(now);
                    self.drill.tick(now);
                }
            }
            self.drive().await;
            self.drive_drill().await;
            self.check_ready().await;
        }
        tracing::info!(node = %self.cfg.node, "node shutting down");
        for (_, reply) in self.pending.drain(..) {
            let _ = reply.send(Err(NodeError::Stopped));
        }
        self.net.shutdown().await;
    }

    fn on_net(&mut self, ev: NetEvent) {
        let now = crate::now_ms();
        match ev {
            NetEvent::Connected(p) => {
                self.connected.insert(p.clone());
                self.sync.peer_connected(now, &p);
            }
            NetEvent::Disconnected(p, _) => {
                self.connected.remove(&p);
                self.sync.peer_disconnected(now, &p);
            }
            NetEvent::Message(p, m) => {
                self.last_seen.insert(p.clone(), now);
                let view = StoreView(&self.store);
                self.sync.handle_message(now, &p, m, &view);
            }
        }
    }

    async fn on_command(&mut self, cmd: Command, cmds: &mut mpsc::Receiver<Command>) {
        match cmd {
            Command::Append { bodies, reply } => {
                if self.pending.len() >= PENDING_APPENDS_MAX {
                    let _ = reply
                        .send(Err(NodeError::NotReady("too many appends waiting for start-up: retry shortly".into())));
                    return;
                }
                self.pending.push_back((bodies, reply));
                // Group commit: take every append already queued into the same batch.
                while let Ok(Command::Append { bodies, reply }) =
                    cmds.try_recv().map_err(|_| ()).and_then(|c| match c {
                        a @ Command::Append { .. } => Ok(a),
                        other => {
                            self.other_command(other);
                            Err(())
                        }
                    })
                {
                    if self.pending.len() >= PENDING_APPENDS_MAX {
                        let _ = reply.send(Err(NodeError::NotReady("append queue full: retry shortly".into())));
                        break;
                    }
                    self.pending.push_back((bodies, reply));
                }
                if self.may_sign() {
                    self.flush_appends().await;
                }
            }
            other => self.other_command(other),
        }
    }

    fn other_command(&mut self, cmd: Command) {
        match cmd {
            Command::Append { .. } => unreachable!("appends are handled in on_command"),
            Command::Status { reply } => {
                let heads = self.store.heads();
                let peers = self
                    .cfg
                    .roster
                    .names()
                    .filter(|n| **n != self.cfg.node)
                    .map(|n| PeerStatus {
                        name: n.clone(),
                        connected: self.connected.contains(n),
                        last_seen_ms: self.last_seen.get(n).copied(),
                        lag_entries: self.sync.peer_heads(n).map(|theirs| {
                            heads.iter().map(|(o, t)| t.seq.saturating_sub(theirs.get(o).map_or(0, |x| x.seq))).sum()
                        }),
                        rejected: self.rejected_from.get(n).copied().unwrap_or(0),
                    })
                    .collect();
                let _ = reply.send(Status {
                    node: self.cfg.node.clone(),
                    heads,
                    peers,
                    connected: self.connected.clone(),
                    quarantined: self.store.quarantined(),
                    ready: self.ready,
                    counters: self.counters.clone(),
                });
            }
            Command::SetBlocked { peer, blocked } => self.net.set_blocked(&peer, blocked),
            Command::DrillStart { scenario, reply } => {
                let body = self.drill.start(crate::now_ms(), *scenario);
                self.append_for(body, reply);
            }
            Command::DrillAck { drill, inject, note, reply } => {
                let body = self.drill.ack(crate::now_ms(), &drill, &inject, &note);
                self.append_for(body, reply);
            }
            Command::DrillAbort { drill, reason, reply } => {
                let body = self.drill.abort(&drill, &reason);
                self.append_for(body, reply);
            }
            Command::DrillList { reply } => {
                let _ = reply.send(self.drill.list());
            }
            Command::DrillPurge { drill, reply } => {
                let running = self.drill.list().into_iter().any(|d| d.id == drill && d.state == "running");
                if running {
                    let _ = reply.send(Err(NodeError::Drill(DrillError::Running(drill))));
                    return;
                }
                match self.store.purge_drill(&drill) {
                    Ok(0) => {
                        let _ = reply.send(Err(NodeError::Drill(DrillError::Unknown(drill))));
                    }
                    Ok(n) => {
                        self.drill.forget(&drill);
                        let _ = reply.send(Ok(n));
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e.into()));
                    }
                }
            }
        }
    }

    /// Queues one drill record for the next group commit; `reply` gets its entry id once durable.
    fn append_for(&mut self, body: Result<Body, DrillError>, reply: oneshot::Sender<Result<EntryId, NodeError>>) {
        let body = match body {
            Ok(b) => b,
            Err(e) => {
                let _ = reply.send(Err(e.into()));
                return;
            }
        };
        if self.pending.len() >= PENDING_APPENDS_MAX {
            let _ = reply.send(Err(NodeError::NotReady("append queue full: retry shortly".into())));
            return;
        }
        let (tx, rx) = oneshot::channel();
        self.pending.push_back((vec![body], tx));
        tokio::spawn(async move {
            let result = match rx.await {
                Ok(Ok(mut results)) => match results.pop() {
                    Some(Ok(v)) => Ok(v.id()),
                    Some(Err(e)) => Err(NodeError::NotReady(format!("the drill record was refused: {e}"))),
                    None => Err(NodeError::Stopped),
                },
                Ok(Err(e)) => Err(e),
                Err(_) => Err(NodeError::Stopped),
            };
            let _ = reply.send(result);
        });
    }

    /// Carries out the drill machine's outputs: its records go into the next group commit (they
    /// are acknowledged to nobody), its faults to the transport.
    async fn drive_drill(&mut self) {
        loop {
            let mut appended = false;
            while let Some(o) = self.drill.poll() {
                match o {
                    DrillOutput::Append(bodies) => {
                        if self.pending.len() >= PENDING_APPENDS_MAX {
                            tracing::error!("append queue full: a drill record was dropped");
                            continue;
                        }
                        let (tx, _) = oneshot::channel();
                        self.pending.push_back((bodies, tx));
                        appended = true;
                    }
                    DrillOutput::Block { peer, blocked } => {
                        if self.cfg.blocked_peers.contains(&peer) {
                            continue; // blocked by the operator: a drill never unblocks it
                        }
                        // Commit the records queued before it (a `Fault Applied`) and hand them to
                        // the transport while the link is up. Best effort: closing the connection
                        // may still drop what was not yet written to it; a later sync delivers it.
                        if !self.pending.is_empty() && self.may_sign() {
                            self.flush_appends().await;
                            self.drive().await;
                        }
                        tracing::info!(%peer, blocked, "drill fault");
                        self.net.set_blocked(&peer, blocked);
                    }
                }
            }
            if !appended && self.pending.is_empty() {
                return;
            }
            if !self.may_sign() {
                return;
            }
            self.flush_appends().await;
            self.drive().await;
        }
    }

    /// Writes every pending append in one group commit and answers each request.
    async fn flush_appends(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let mut requests: Vec<(usize, AppendReply)> = Vec::new();
        let mut bodies = Vec::new();
        while let Some((b, reply)) = self.pending.pop_front() {
            if !bodies.is_empty() && bodies.len() + b.len() > crate::store::BATCH_ENTRIES_MAX {
                self.pending.push_front((b, reply));
                break;
            }
            requests.push((b.len(), reply));
            bodies.extend(b);
        }
        let now_ms = crate::now_ms();
        if let Err(e) = signing_allowed(&self.cfg, &self.key, now_ms) {
            tracing::error!(error = %e, "append refused");
            for (_, reply) in requests {
                let _ = reply.send(Err(match &e {
                    NodeError::KeyRetired { node, retired_at_ms } => {
                        NodeError::KeyRetired { node: node.clone(), retired_at_ms: *retired_at_ms }
                    }
                    other => NodeError::NotReady(other.to_string()),
                }));
            }
            return;
        }
        let store = self.store.clone();
        let key = self.key.clone();
        let me = self.cfg.node.clone();
        let result = tokio::task::spawn_blocking(move || store.append_local(&key, &me, bodies, now_ms))
            .await
            .expect("append task does not panic");
        match result {
            Ok(results) => {
                let stored: Vec<VerifiedEntry> = results.iter().filter_map(|r| r.as_ref().ok().cloned()).collect();
                self.counters.appended += stored.len() as u64;
                let now = crate::now_ms();
                self.sync.stored(now, None, &stored);
                for r in stored.iter().filter_map(Record::from_entry) {
                    self.drill.stored(now, None, &r);
                }
                let mut it = results.into_iter();
                for (n, reply) in requests {
                    let _ = reply.send(Ok(it.by_ref().take(n).collect()));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "append failed");
                let msg = e.to_string();
                for (_, reply) in requests {
                    let _ = reply.send(Err(NodeError::NotReady(format!("append failed: {msg}"))));
                }
            }
        }
        if !self.pending.is_empty() {
            Box::pin(self.flush_appends()).await;
        }
    }

    /// Carries out the state machine's actions. Consecutive `Ingest` actions (up to
    /// `store::BATCH_ENTRIES_MAX` entries) are verified and stored as one group commit.
    async fn drive(&mut self) {
        let mut group: Vec<IngestJob> = Vec::new();
        let mut len = 0;
        loop {
            match self.sync.poll_action() {
                Some(Action::Send { to, msg }) => self.net.send(&to, msg),
                Some(Action::Disconnect { peer, reason }) => {
                    tracing::warn!(%peer, %reason, "disconnecting peer for a protocol violation");
                    self.net.disconnect(&peer, close_code::PROTOCOL, &reason);
                }
                Some(Action::Ingest { from, reply_to, entries }) => {
                    if !group.is_empty() && len + entries.len() > crate::store::BATCH_ENTRIES_MAX {
                        self.ingest(std::mem::take(&mut group)).await;
                        len = 0;
                    }
                    len += entries.len();
                    group.push(IngestJob { from, reply_to, entries });
                }
                None if group.is_empty() => return,
                None => {
                    self.ingest(std::mem::take(&mut group)).await;
                    len = 0;
                }
            }
        }
    }

    /// Verifies and stores the entries of several messages in one group commit, then reports
    /// each message's outcome to `Sync` in order. Copies of entries already held are recognised
    /// without checking their signatures again; the rest are verified in parallel chunks.
    async fn ingest(&mut self, jobs: Vec<IngestJob>) {
        let store = self.store.clone();
        let roster = self.cfg.roster.clone();
        let senders: Vec<(NodeName, Option<u64>)> = jobs.iter().map(|j| (j.from.clone(), j.reply_to)).collect();
        let started = std::time::Instant::now();
        let n: usize = jobs.iter().map(|j| j.entries.len()).sum();
        let result = tokio::task::spawn_blocking(move || ingest_blocking(&store, &roster, jobs))
            .await
            .expect("ingest task does not panic");
        // Group sizes and times say whether a catch-up is bound by the store or waits on peers.
        tracing::debug!(entries = n, elapsed_us = started.elapsed().as_micros() as u64, "verified and stored a group");
        let now = crate::now_ms();
        let per_job = match result {
            Ok(per_job) => per_job,
            Err(e) => {
                tracing::error!(error = %e, "storing entries from peers failed");
                for (from, reply_to) in senders {
                    self.sync.ingested(now, &from, reply_to, &[], &[]);
                }
                return;
            }
        };
        for ((from, reply_to), fates) in senders.into_iter().zip(per_job) {
            let mut stored = Vec::new();
            let mut forked = Vec::new();
            let mut rejected = 0u64;
            for fate in fates {
                match fate {
                    Fate::Copy => self.counters.duplicates += 1,
                    Fate::Rejected(e) => {
                        rejected += 1;
                        tracing::warn!(peer = %from, error = %e, "rejected an entry from a peer: it relayed an entry that does not verify");
                    }
                    Fate::Ingested(origin, o) => match *o {
                        IngestOutcome::Stored(v) | IngestOutcome::Upgraded(v) => stored.push(v),
                        IngestOutcome::Duplicate => self.counters.duplicates += 1,
                        IngestOutcome::Gap { got, .. } => {
                            self.counters.gaps += 1;
                            // The sender holds the entries before it: pull them now rather than
                            // wait for an announcement (a push can overtake the one before it).
                            self.sync.peer_holds(&from, &origin, got);
                        }
                        IngestOutcome::Forked => {
                            self.counters.forks += 1;
                            forked.push(origin);
                        }
                        IngestOutcome::Quarantined | IngestOutcome::BadGenesis => self.counters.rejected += 1,
                    },
                }
            }
            self.counters.rejected += rejected;
            if rejected > 0 {
                *self.rejected_from.entry(from.clone()).or_default() += rejected;
            }
            self.counters.stored_from_peers += stored.len() as u64;
            for r in stored.iter().filter_map(Record::from_entry) {
                self.drill.stored(now, Some(&from), &r);
            }
            self.sync.ingested(now, &from, reply_to, &stored, &forked);
            for origin in forked {
                match fork_proof(&self.store, &self.cfg.roster, &origin) {
                    Ok(proof) => self.sync.fork_proof(&origin, proof),
                    Err(e) => {
                        tracing::error!(%origin, error = %e, "reading fork evidence failed: the fork is not proved to peers")
                    }
                }
            }
        }
    }

    /// The start-up check: appends wait until a peer has reported our own head and we hold at
    /// least that much of our own log (or the wait ran out, per `startup.on_no_peers`).
    async fn check_ready(&mut self) {
        if self.ready {
            // Appends held while a peer showed more of our own log go out once we caught up.
            if !self.pending.is_empty() && self.may_sign() {
                self.flush_appends().await;
                self.drive().await;
            }
            return;
        }
        if self.own_unconfirmed {
            return self.check_restored().await;
        }
        let me = &self.cfg.node;
        let ours = self.store.head(me).map_or(0, |t| t.seq);
        let confirmed = self
            .connected
            .iter()
            .any(|p| self.sync.peer_heads(p).is_some_and(|h| h.get(me).map_or(0, |t| t.seq) <= ours));
        let waited = crate::now_ms().saturating_sub(self.started_ms) >= self.cfg.own_head_wait_ms;
        if confirmed {
            tracing::info!(node = %me, head = ours, "own log head confirmed by a peer: accepting appends");
            self.ready = true;
        } else if waited && self.cfg.on_no_peers == OnNoPeers::Proceed {
            tracing::warn!(node = %me, head = ours, "no peer confirmed our own head in time: appending from the local head");
            self.ready = true;
        } else if waited {
            for (_, reply) in self.pending.drain(..) {
                let _ = reply.send(Err(NodeError::NotReady(
                    "no peer has confirmed this node's own log head yet (startup.on_no_peers = \"refuse\"): check connectivity".into(),
                )));
            }
        }
        if self.ready {
            self.flush_appends().await;
            self.drive().await;
        }
    }
}

impl Actor {
    /// The start-up check of a node whose own log is marked unconfirmed (restored, or rejoining
    /// after a lost store): stricter than `check_ready`'s, and never waived by
    /// `startup.on_no_peers`. Every connected peer must hold no more of our log than we do (we
    /// pull what they hold first), at least one must be connected, and either every roster peer
    /// is connected or `own_head_wait_ms` has passed (so that a peer that is itself behind does
    /// not confirm alone while the others are still connecting). Until then appends are refused
    /// with `NotReady`, which the API answers 503.
    async fn check_restored(&mut self) {
        let me = self.cfg.node.clone();
        let ours = self.store.head(&me).map_or(0, |t| t.seq);
        let peers: Vec<&NodeName> = self.connected.iter().filter(|p| self.sync.is_ready(p)).collect();
        let ahead = self.own_log_ahead();
        let everyone = self.cfg.roster.names().filter(|n| **n != me).all(|n| self.sync.is_ready(n));
        let waited = crate::now_ms().saturating_sub(self.started_ms) >= self.cfg.own_head_wait_ms;
        let why = match (&ahead, peers.is_empty()) {
            (_, true) => "no peer is connected yet".to_string(),
            (Some((p, theirs)), _) => {
                format!("peer {p} holds it up to seq {theirs} and this node up to {ours}: fetching it back")
            }
            (None, _) => "waiting for the other peers to connect".to_string(),
        };
        if ahead.is_some() || peers.is_empty() || !(everyone || waited) {
            for (_, reply) in self.pending.drain(..) {
                let _ = reply.send(Err(NodeError::NotReady(format!(
                    "this node's own log was restored (or marked by `ctix store rejoin`) and its peers have not confirmed its head yet \
                     ({why}): it signs nothing until then, since signing now could reuse a seq and fork its log; retry shortly, \
                     and check `ctix status` if this lasts"
                ))));
            }
            return;
        }
        let store = self.store.clone();
        match tokio::task::spawn_blocking(move || store.set_own_head_unconfirmed(false)).await {
            Ok(Ok(())) => {
                let by: Vec<String> = peers.iter().map(ToString::to_string).collect();
                tracing::info!(node = %me, head = ours, peers = ?by, "own log head confirmed after a restore: accepting appends");
                self.own_unconfirmed = false;
                self.ready = true;
            }
            Ok(Err(e)) => tracing::error!(error = %e, "clearing the unconfirmed mark failed: appends stay refused"),
            Err(e) => tracing::error!(error = %e, "clearing the unconfirmed mark failed: appends stay refused"),
        }
    }

    /// A connected peer that holds more of our own log than we do, and its head of it. Not for
    /// an own origin already quarantined (appends fail with `OwnQuarantined` anyway).
    fn own_log_ahead(&self) -> Option<(NodeName, u64)> {
        let me = &self.cfg.node;
        let ours = self.store.head(me).map_or(0, |t| t.seq);
        let (peer, theirs) = self.connected.iter().find_map(|p| {
            let theirs = self.sync.peer_heads(p)?.get(me)?.seq;
            (theirs > ours).then(|| (p.clone(), theirs))
        })?;
        (!self.store.quarantined().contains(me)).then_some((peer, theirs))
    }

    /// Whether pending appends may be signed now: the start-up check passed and no connected peer
    /// shows more of our own log than we hold (it is pulled back first, then we continue after
    /// it). A claim that entries do not back within `own_head_wait_ms` is then ignored, so that a
    /// peer announcing a false head cannot stall this node's log.
    fn may_sign(&mut self) -> bool {
        if !self.ready {
            return false;
        }
        let Some((peer, theirs)) = self.own_log_ahead() else {
            self.ahead_since_ms = None;
            return true;
        };
        let now = crate::now_ms();
        let since = *self.ahead_since_ms.get_or_insert_with(|| {
            tracing::warn!(%peer, theirs, "a peer holds more of our own log than we do: holding appends while we fetch it back");
            now
        });
        if since == u64::MAX {
            return true; // this claim was waited out already
        }
        if now.saturating_sub(since) < self.cfg.own_head_wait_ms {
            return false;
        }
        tracing::error!(%peer, theirs, "the peer did not deliver the own entries it announced in time: appending anyway");
        self.ahead_since_ms = Some(u64::MAX);
        true
    }
}

/// One `Entries` message from a peer, waiting to be verified and stored.
struct IngestJob {
    from: NodeName,
    reply_to: Option<u64>,
    entries: Vec<SignedEntry>,
}

/// What became of one entry of an `IngestJob`.
enum Fate {
    /// A byte-for-byte copy of an entry held here: a duplicate, not verified again.
    Copy,
    /// It failed verification.
    Rejected(log::VerifyError),
    /// It verified; what the store made of it (with its origin). Boxed: an outcome holds a
    /// whole entry, and most fates of a catch-up's entries are this one anyway.
    Ingested(NodeName, Box<IngestOutcome>),
}

/// Entries verified and then stored as one group commit in `ingest_blocking`'s pipeline: while
/// one pool thread stores a chunk, another verifies the next.
pub const INGEST_PIPELINE_ENTRIES: usize = 256;

/// The blocking part of `Actor::ingest`: recognise copies of held entries, verify the rest and
/// store what is authentic, in chunks of `INGEST_PIPELINE_ENTRIES`: the first chunk is verified
/// on every core, then each chunk is stored (one group commit) while the next is verified, so
/// signature checks and sled's work overlap. One `Fate` per entry, per job, in order. An error
/// leaves the chunks before it stored and durable.
fn ingest_blocking(store: &Store, roster: &Roster, jobs: Vec<IngestJob>) -> Result<Vec<Vec<Fate>>, StoreError> {
    let mut shape = Vec::with_capacity(jobs.len());
    let mut copies = Vec::new();
    let mut fresh = Vec::new();
    for job in jobs {
        shape.push(job.entries.len());
        for e in job.entries {
            let copy = store.holds_copy(&e);
            copies.push(copy);
            if !copy {
                fresh.push(e);
            }
        }
    }
    let mut checked = Vec::with_capacity(fresh.len());
    let mut outcomes = Vec::with_capacity(fresh.len());
    let mut chunks = crate::par::split_into(fresh, INGEST_PIPELINE_ENTRIES);
    chunks.reverse();
    let first = chunks.pop().unwrap_or_default();
    let mut verified = crate::par::map_chunks(first, |chunk| log::authenticate_batch(roster, chunk));
    loop {
        let mut authentic = Vec::with_capacity(verified.len());
        for r in verified {
            match r {
                Ok(a) => {
                    checked.push(Ok(a.header().origin.clone()));
                    authentic.push(a);
                }
                Err(e) => checked.push(Err(e)),
            }
        }
        let (next, stored) = match chunks.pop() {
            None => (None, store.ingest(authentic)),
            Some(next) => crate::par::join(|| Some(log::authenticate_batch(roster, next)), || store.ingest(authentic)),
        };
        outcomes.extend(stored?);
        match next {
            Some(n) => verified = n,
            None => break,
        }
    }
    let mut outcomes = outcomes.into_iter();
    let mut checked = checked.into_iter();
    let mut copies = copies.into_iter();
    Ok(shape
        .into_iter()
        .map(|n| {
            (0..n)
                .map(|_| {
                    if copies.next().expect("one per entry") {
                        return Fate::Copy;
                    }
                    match checked.next().expect("one per fresh entry") {
                        Ok(origin) => {
                            Fate::Ingested(origin, Box::new(outcomes.next().expect("one per authentic entry")))
                        }
                        Err(e) => Fate::Rejected(e),
                    }
                })
                .collect()
        })
        .collect())
}

/// The proof that `origin` forked, from the store: the entry held at the lowest position with
/// fork evidence (none if the evidence is the entry after our head, a `prev_hash` fork) and the
/// evidence itself, re-authenticated so that only entries the roster vouches for are sent on.
fn fork_proof(store: &Store, roster: &Roster, origin: &NodeName) -> Result<Vec<AuthenticEntry>, StoreError> {
    let Some(evidence) = store.forks()?.into_iter().filter(|f| f.origin == *origin).min_by_key(|f| f.seq) else {
        return Ok(Vec::new());
    };
    let conflicting = match log::authenticate(roster, evidence.entry) {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(%origin, error = %e, "stored fork evidence no longer verifies: the fork is not proved to peers");
            return Ok(Vec::new());
        }
    };
    let mut proof = Vec::with_capacity(crate::sync::FORK_PROOF_ENTRIES_MAX);
    if let Some(held) = store.get(&EntryId { origin: origin.clone(), seq: evidence.seq })? {
        proof.push(held.into_authentic());
    }
    proof.push(conflicting);
    Ok(proof)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Indicator, IndicatorInput};
    use crate::roster::Member;
    use crate::sim::sim_key;

    fn body(i: usize) -> Body {
        let input = IndicatorInput { itype: "domain".into(), value: format!("p{i}.example"), ..Default::default() };
        Body::Indicator(Indicator::from_input(&input, 1).unwrap())
    }

    /// A catch-up larger than several pipeline chunks, with a forged entry in the middle of the
    /// second chunk and copies of held entries in front: every entry gets its own fate, in
    /// order; everything authentic up to the forgery is stored, and the chain stops there (a
    /// gap, since the forged entry was not stored).
    #[test]
    fn the_ingest_pipeline_keeps_each_entrys_fate_in_order_across_chunks() {
        let (ee, lv) = (NodeName::new("ee").unwrap(), NodeName::new("lv").unwrap());
        let roster = Roster::new(
            [ee.clone(), lv.clone()].map(|n| Member::new(n.clone(), sim_key(&n).verifying_key(), "sim".into())),
        )
        .unwrap();
        let n = 3 * INGEST_PIPELINE_ENTRIES + 7;
        let mut entries: Vec<SignedEntry> =
            VerifiedEntry::sign_own_many(&sim_key(&ee), &ee, None, 1, (0..n).map(body).collect())
                .iter()
                .map(|v| v.entry().clone())
                .collect();
        let forged = INGEST_PIPELINE_ENTRIES + INGEST_PIPELINE_ENTRIES / 2;
        entries[forged].signature[0] ^= 1;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &crate::store::StoreOptions::default()).unwrap();
        // Ten held first: offered again, they are copies.
        let first: Vec<_> = entries[..10].iter().map(|e| log::authenticate(&roster, e.clone()).unwrap()).collect();
        store.ingest(first).unwrap();
        let job = |entries: Vec<SignedEntry>| IngestJob { from: lv.clone(), reply_to: Some(7), entries };
        let fates = ingest_blocking(&store, &roster, vec![job(entries[..5].to_vec()), job(entries.clone())]).unwrap();
        assert_eq!(fates.len(), 2);
        assert!(fates[0].iter().all(|f| matches!(f, Fate::Copy)));
        assert_eq!(fates[1].len(), n);
        for (i, f) in fates[1].iter().enumerate() {
            let ok = match f {
                Fate::Copy => i < 10,
                Fate::Rejected(_) => i == forged,
                Fate::Ingested(o, out) => {
                    *o == ee
                        && match &**out {
                            IngestOutcome::Stored(v) => v.header().seq == i as u64 + 1 && i < forged,
                            IngestOutcome::Gap { have, .. } => *have == forged as u64 && i > forged,
                            _ => false,
                        }
                }
            };
            assert!(ok, "entry {i} (seq {}) has the wrong fate", i + 1);
        }
        assert_eq!(store.head(&ee).unwrap().seq, forged as u64);
        drop(store);
        let store = Store::open(dir.path(), &crate::store::StoreOptions::default()).unwrap();
        assert_eq!(store.head(&ee).unwrap().seq, forged as u64, "every stored chunk is durable");
    }
}
