//! The transport: a quinn endpoint with rustls mutual TLS against the federation CA, one
//! connection per roster peer, and length-prefixed frames on one unidirectional stream each way.
//!
//! Identity: a peer's TLS certificate must chain to the federation CA and carry, as its DNS name,
//! the roster name it is reached as. Outgoing connections name the peer as the TLS server name;
//! incoming ones are matched against every roster name, so a valid certificate for `lv` is `lv`
//! and nothing else. The node with the lower name dials; the other accepts, so each pair holds
//! one connection. A node that starts also dials, once, the peers that normally dial it
//! (`announce`): a peer may still hold a connection to this node's previous run, killed without
//! closing it, and would otherwise wait for that connection's idle timeout before dialling again.
//!
//! Revocation: the CA file may also hold the federation CA's certificate revocation lists (PEM
//! `X509 CRL` sections after the certificates). A certificate a CRL lists is refused both ways,
//! when a peer dials in and when we dial it. Without CRLs nothing is refused as revoked.

use std::collections::{BTreeSet, HashMap};
use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use quinn::{Connection, Endpoint, IdleTimeout, RecvStream, SendStream, TransportConfig, VarInt};
use rustls::RootCertStore;
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use tokio::sync::mpsc;

use crate::model::NodeName;
use crate::pki;
use crate::roster::Roster;
use crate::wire::{self, Message};

/// ALPN protocol id; a peer speaking anything else fails the handshake.
pub const ALPN: &[u8] = b"ctix/1";
/// Messages queued for one peer. A peer that cannot keep up is disconnected and resynchronises
/// from version vectors on reconnect, so the queue never grows without bound.
pub const PEER_SEND_QUEUE_MAX: usize = 1024;
/// Bytes queued for one peer (estimated by `queued_bytes`), on top of `PEER_SEND_QUEUE_MAX` and
/// of what QUIC buffers: messages are up to `FRAME_BYTES_MAX` each, so a count alone would let a
/// peer that floods requests and never reads the answers pin gigabytes. 64 MiB holds maximal
/// answers to every request an honest peer has in flight (`requests_in_flight_per_peer_max`, 8)
/// twice over. A peer that lets more pile up is disconnected like a slow one and pulls the rest
/// after reconnecting; so is one sent a bigger burst at once (a 10,000-entry append of
/// indicators averaging over 6 KiB each).
pub const PEER_SEND_QUEUE_BYTES_MAX: usize = 16 * wire::FRAME_BYTES_MAX;
/// Events queued from all connections to the node. Readers wait when it is full, which pushes
/// back on the peers through QUIC flow control.
pub const EVENTS_QUEUE_MAX: usize = 1024;
/// Streams a peer may open: one uni stream carries all its frames; one spare for a reconnect race.
pub const UNI_STREAMS_MAX: u32 = 2;
/// Per-stream receive window: two maximal frames in flight.
pub const STREAM_WINDOW_BYTES: u32 = 2 * wire::FRAME_BYTES_MAX as u32;
/// Per-connection receive window.
pub const CONN_WINDOW_BYTES: u32 = 4 * wire::FRAME_BYTES_MAX as u32;
/// A connection silent this long is dead. Keep-alives keep healthy idle links open.
pub const IDLE_TIMEOUT_MS: u64 = 30_000;
/// Keep-alive interval: well under the idle timeout and typical NAT/firewall UDP timeouts.
pub const KEEP_ALIVE_MS: u64 = 5_000;
/// Incoming handshakes in progress at once; more are refused until one finishes. Two per
/// possible member is plenty for a roster-bounded federation and caps what a flood can cost.
pub const HANDSHAKES_IN_FLIGHT_MAX: usize = 2 * crate::roster::MEMBERS_MAX;
/// A frame that has begun (its first byte arrived) must be complete within this grace period
/// plus the time its length takes at `FRAME_READ_BYTES_PER_S_MIN`, or the connection is closed
/// (`close_code::FRAME_TIMEOUT`). Honest writers send each frame in one go, so a frame that
/// stalls half-way is a slow-loris peer holding the reader and its buffer, or a dying link, which
/// reconnects and resynchronises. Between frames a peer may be silent as long as it likes.
pub const FRAME_READ_GRACE_MS: u64 = 5_000;
/// Slowest rate at which a begun frame must keep arriving: a maximal frame gets 64 s more.
pub const FRAME_READ_BYTES_PER_S_MIN: u64 = 64 * 1024;
/// Handshake or dial taking longer than this is abandoned and retried.
pub const CONNECT_TIMEOUT_MS: u64 = 5_000;
/// Dials a starting node makes to each peer that normally dials it (see `Net::announce`).
pub const ANNOUNCE_ATTEMPTS_MAX: u32 = 5;
/// Reconnect back-off: first delay and cap (doubles per failed attempt).
pub const RECONNECT_BASE_MS: u64 = 200;
pub const RECONNECT_MAX_MS: u64 = 10_000;
/// Longest a shutdown waits for connections to close and transport tasks to end.
pub const SHUTDOWN_WAIT_MS: u64 = 3_000;

/// Application close codes (QUIC `CONNECTION_CLOSE` error codes).
pub mod close_code {
    /// Normal shutdown.
    pub const SHUTDOWN: u32 = 0;
    /// The peer's certificate names no roster member, or a member we refuse.
    pub const UNKNOWN_PEER: u32 = 0x10;
    /// A frame was over `FRAME_BYTES_MAX`.
    pub const FRAME_TOO_LARGE: u32 = 0x11;
    /// A frame did not decode.
    pub const MALFORMED: u32 = 0x12;
    /// The protocol state machine refused the peer (wrong version, unknown origin …).
    pub const PROTOCOL: u32 = 0x13;
    /// The peer did not read its queue fast enough.
    pub const SLOW_PEER: u32 = 0x14;
    /// Replaced by a newer connection to the same peer.
    pub const REPLACED: u32 = 0x15;
    /// The link is blocked by configuration (drill fault or operator).
    pub const BLOCKED: u32 = 0x16;
    /// A frame was begun but not completed in time (`FRAME_READ_GRACE_MS`).
    pub const FRAME_TIMEOUT: u32 = 0x17;
}

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// Loading the TLS material failed.
    #[error(transparent)]
    Pki(#[from] pki::PkiError),
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Tls(String),
    /// The CA file's certificate revocation lists could not be read.
    #[error("certificate revocation lists in {path}: {reason} (fix or remove the X509 CRL sections)")]
    Revocation { path: PathBuf, reason: String },
    /// The UDP socket could not be bound.
    #[error("cannot listen on {addr}: {source} (is another node running on that port?)")]
    Bind { addr: SocketAddr, source: std::io::Error },
}

/// Everything the transport needs.
#[derive(Debug, Clone)]
pub struct NetConfig {
    pub me: NodeName,
    pub listen: SocketAddr,
    pub roster: Roster,
    pub ca_cert: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Peers never dialled or accepted (operator choice or a drill's link cut).
    pub blocked: BTreeSet<NodeName>,
}

/// What the transport reports to the node.
#[derive(Debug)]
pub enum NetEvent {
    Connected(NodeName),
    Disconnected(NodeName, String),
    Message(NodeName, Message),
}

struct PeerConn {
    conn: Connection,
    send: mpsc::Sender<(Message, usize)>,
    /// Estimated bytes in `send`, added by `Net::send` and taken off by `write_frames`.
    queued: Arc<AtomicUsize>,
}

struct Shared {
    me: NodeName,
    roster: Roster,
    events: mpsc::Sender<NetEvent>,
    peers: Mutex<HashMap<NodeName, PeerConn>>,
    blocked: Mutex<BTreeSet<NodeName>>,
    /// Set once at shutdown; wakes the dial loops from their back-off sleeps.
    shutdown: tokio::sync::watch::Sender<bool>,
}

/// A handle on the running transport.
#[derive(Clone)]
pub struct Net {
    endpoint: Endpoint,
    shared: Arc<Shared>,
}

impl Net {
    /// Binds the endpoint, starts accepting, and starts dialling every peer whose name sorts
    /// after ours. Events arrive on the returned receiver.
    pub fn start(cfg: NetConfig) -> Result<(Net, mpsc::Receiver<NetEvent>), NetError> {
        let (server, client) = tls_configs(&cfg)?;
        let mut endpoint =
            Endpoint::server(server, cfg.listen).map_err(|source| NetError::Bind { addr: cfg.listen, source })?;
        endpoint.set_default_client_config(client);
        let (tx, rx) = mpsc::channel(EVENTS_QUEUE_MAX);
        let shared = Arc::new(Shared {
            me: cfg.me.clone(),
            roster: cfg.roster.clone(),
            events: tx,
            peers: Mutex::new(HashMap::new()),
            blocked: Mutex::new(cfg.blocked.clone()),
            shutdown: tokio::sync::watch::channel(false).0,
        });
        let net = Net { endpoint, shared };
        tokio::spawn(net.clone().accept_loop());
        for m in cfg.roster.members() {
            if m.name > cfg.me {
                tokio::spawn(net.clone().dial_loop(m.name.clone(), m.quic_addr.clone()));
            } else if m.name < cfg.me {
                tokio::spawn(net.clone().announce(m.name.clone(), m.quic_addr.clone()));
            }
        }
        Ok((net, rx))
    }

    /// The bound UDP address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.endpoint.local_addr()
    }

    /// Queues a message for a peer. A full queue disconnects the peer (see `PEER_SEND_QUEUE_MAX`
    /// and `PEER_SEND_QUEUE_BYTES_MAX`).
    pub fn send(&self, peer: &NodeName, msg: Message) {
        let peers = lock(&self.shared.peers);
        let Some(p) = peers.get(peer) else { return };
        let bytes = queued_bytes(&msg);
        let before = p.queued.fetch_add(bytes, Ordering::Relaxed);
        if before + bytes > PEER_SEND_QUEUE_BYTES_MAX || p.send.try_send((msg, bytes)).is_err() {
            p.queued.fetch_sub(bytes, Ordering::Relaxed);
            tracing::warn!(%peer, queued_bytes = before, "send queue full: disconnecting slow peer");
            p.conn.close(VarInt::from_u32(close_code::SLOW_PEER), b"send queue full");
        }
    }

    /// Closes the connection to a peer with a reason.
    pub fn disconnect(&self, peer: &NodeName, code: u32, reason: &str) {
        if let Some(p) = lock(&self.shared.peers).get(peer) {
            p.conn.close(VarInt::from_u32(code), reason.as_bytes());
        }
    }

    /// Blocks or unblocks a link at run time (drill faults). Blocking closes a live connection.
    pub fn set_blocked(&self, peer: &NodeName, blocked: bool) {
        if blocked {
            lock(&self.shared.blocked).insert(peer.clone());
            self.disconnect(peer, close_code::BLOCKED, "link blocked");
        } else {
            lock(&self.shared.blocked).remove(peer);
        }
    }

    /// Closes every connection and the endpoint, then waits (bounded by `SHUTDOWN_WAIT_MS`) for
    /// close frames to go out and for every transport task to end, so the UDP port is free when
    /// this returns.
    pub async fn shutdown(&self) {
        let _ = self.shared.shutdown.send(true);
        self.endpoint.close(VarInt::from_u32(close_code::SHUTDOWN), b"node shutting down");
        let deadline = tokio::time::Instant::now() + Duration::from_millis(SHUTDOWN_WAIT_MS);
        let _ = tokio::time::timeout_at(deadline, self.endpoint.wait_idle()).await;
        lock(&self.shared.peers).clear();
        // Every task holds a clone of `shared`; when only ours is left, they have all ended.
        while Arc::strong_count(&self.shared) > 1 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn accept_loop(self) {
        let slots = Arc::new(tokio::sync::Semaphore::new(HANDSHAKES_IN_FLIGHT_MAX));
        while let Some(incoming) = self.endpoint.accept().await {
            let Ok(permit) = slots.clone().try_acquire_owned() else {
                tracing::warn!(remote = %incoming.remote_address(), "too many handshakes in progress: refusing");
                incoming.refuse();
                continue;
            };
            let net = self.clone();
            tokio::spawn(async move {
                let remote = incoming.remote_address();
                // quinn creates a connection accepted after `Endpoint::close` outside that close,
                // and it would hold the UDP port until its idle timeout: refuse once closing, and
                // drop (which closes) one accepted while the close was under way.
                if net.is_closing() {
                    incoming.refuse();
                    return;
                }
                let connecting = match incoming.accept() {
                    Ok(c) if !net.is_closing() => c,
                    Ok(_) => return,
                    Err(e) => {
                        tracing::warn!(%remote, error = %e, "refused incoming connection");
                        return;
                    }
                };
                let conn = match tokio::time::timeout(Duration::from_millis(CONNECT_TIMEOUT_MS), connecting).await {
                    Ok(Ok(c)) => c,
                    Ok(Err(e)) => {
                        tracing::warn!(%remote, error = %e, "refused incoming connection: TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::warn!(%remote, "incoming handshake timed out");
                        return;
                    }
                };
                drop(permit);
                match net.identify(&conn, None) {
                    Ok(peer) => net.run_connection(peer, conn).await,
                    Err(reason) => {
                        tracing::warn!(%remote, %reason, "refused incoming connection");
                        conn.close(VarInt::from_u32(close_code::UNKNOWN_PEER), reason.as_bytes());
                    }
                }
            });
        }
    }

    async fn dial_loop(self, peer: NodeName, addr: String) {
        let mut backoff = RECONNECT_BASE_MS;
        loop {
            if self.is_closing() {
                return;
            }
            if lock(&self.shared.blocked).contains(&peer) {
                self.pause(RECONNECT_BASE_MS).await;
                continue;
            }
            let mut stop = self.shared.shutdown.subscribe();
            let dialled = tokio::select! {
                r = self.dial(&peer, &addr) => r,
                _ = stop.wait_for(|s| *s) => return,
            };
            match dialled {
                Ok(conn) => {
                    backoff = RECONNECT_BASE_MS;
                    self.run_connection(peer.clone(), conn).await;
                }
                Err(e) => {
                    tracing::debug!(%peer, %addr, error = %e, "dial failed");
                    backoff = (backoff * 2).min(RECONNECT_MAX_MS);
                }
            }
            if self.is_closing() {
                return;
            }
            self.pause(backoff).await;
        }
    }

    /// Dials a peer that normally dials us, until the first connection with it exists either way
    /// (at most `ANNOUNCE_ATTEMPTS_MAX` tries). Our connection replaces one the peer still holds
    /// from our previous run; from then on the peer's `dial_loop` keeps the link.
    async fn announce(self, peer: NodeName, addr: String) {
        let mut backoff = RECONNECT_BASE_MS;
        for _ in 0..ANNOUNCE_ATTEMPTS_MAX {
            if self.is_closing() || lock(&self.shared.peers).contains_key(&peer) {
                return;
            }
            if !lock(&self.shared.blocked).contains(&peer) {
                let mut stop = self.shared.shutdown.subscribe();
                let dialled = tokio::select! {
                    r = self.dial(&peer, &addr) => r,
                    _ = stop.wait_for(|s| *s) => return,
                };
                match dialled {
                    Ok(conn) if !lock(&self.shared.peers).contains_key(&peer) => {
                        self.run_connection(peer, conn).await;
                        return;
                    }
                    // The peer dialled us meanwhile: keep its connection.
                    Ok(conn) => {
                        conn.close(VarInt::from_u32(close_code::REPLACED), b"already connected");
                        return;
                    }
                    Err(e) => tracing::debug!(%peer, %addr, error = %e, "announce dial failed"),
                }
            }
            self.pause(backoff).await;
            backoff = (backoff * 2).min(RECONNECT_MAX_MS);
        }
    }

    fn is_closing(&self) -> bool {
        *self.shared.shutdown.borrow() || self.shared.events.is_closed()
    }

    /// Sleeps for `ms`, or less if the transport shuts down meanwhile.
    async fn pause(&self, ms: u64) {
        let mut rx = self.shared.shutdown.subscribe();
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(ms)) => {}
            _ = rx.wait_for(|s| *s) => {}
        }
    }

    async fn dial(&self, peer: &NodeName, addr: &str) -> Result<Connection, String> {
        let sock = tokio::net::lookup_host(addr)
            .await
            .map_err(|e| format!("cannot resolve {addr}: {e}"))?
            .next()
            .ok_or_else(|| format!("{addr} resolves to nothing"))?;
        let connecting = self.endpoint.connect(sock, peer.as_str()).map_err(|e| e.to_string())?;
        let conn = tokio::time::timeout(Duration::from_millis(CONNECT_TIMEOUT_MS), connecting)
            .await
            .map_err(|_| "handshake timed out".to_string())?
            .map_err(|e| e.to_string())?;
        self.identify(&conn, Some(peer)).inspect_err(|reason| {
            conn.close(VarInt::from_u32(close_code::UNKNOWN_PEER), reason.as_bytes());
        })?;
        Ok(conn)
    }

    /// Finds which roster member the peer's certificate names. For an outgoing connection rustls
    /// has already checked the name we dialled; this also refuses ourselves and blocked peers.
    fn identify(&self, conn: &Connection, dialled: Option<&NodeName>) -> Result<NodeName, String> {
        let certs = conn
            .peer_identity()
            .and_then(|i| i.downcast::<Vec<CertificateDer<'static>>>().ok())
            .ok_or("peer presented no certificate")?;
        let leaf = certs.first().ok_or("peer presented an empty certificate chain")?;
        let ee = webpki::EndEntityCert::try_from(leaf).map_err(|e| format!("unparseable peer certificate: {e:?}"))?;
        let names: Vec<&NodeName> = self
            .shared
            .roster
            .names()
            .filter(|n| {
                ServerName::try_from(n.as_str()).is_ok_and(|sn| ee.verify_is_valid_for_subject_name(&sn).is_ok())
            })
            .collect();
        let peer = match names.as_slice() {
            [one] => (*one).clone(),
            [] => return Err("certificate names no roster member".into()),
            _ => return Err("certificate names several roster members".into()),
        };
        if dialled.is_some_and(|d| *d != peer) {
            return Err(format!("dialled {} but the certificate names {peer}", dialled.expect("checked")));
        }
        if peer == self.shared.me {
            return Err("certificate names this node itself".into());
        }
        if lock(&self.shared.blocked).contains(&peer) {
            return Err(format!("link to {peer} is blocked"));
        }
        Ok(peer)
    }

    /// Runs one established connection until it closes.
    async fn run_connection(&self, peer: NodeName, conn: Connection) {
        let send_stream = match conn.open_uni().await {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(%peer, error = %e, "could not open stream");
                return;
            }
        };
        let (tx, rx) = mpsc::channel(PEER_SEND_QUEUE_MAX);
        let queued = Arc::new(AtomicUsize::new(0));
        let entry = PeerConn { conn: conn.clone(), send: tx, queued: queued.clone() };
        let old = lock(&self.shared.peers).insert(peer.clone(), entry);
        if let Some(old) = old {
            old.conn.close(VarInt::from_u32(close_code::REPLACED), b"replaced by a newer connection");
        }
        tracing::info!(%peer, remote = %conn.remote_address(), "peer connected");
        if self.shared.events.send(NetEvent::Connected(peer.clone())).await.is_err() {
            return;
        }
        let writer = tokio::spawn(write_frames(send_stream, rx, queued));
        let reason = self.read_frames(&peer, &conn).await;
        writer.abort();
        let current = {
            let mut peers = lock(&self.shared.peers);
            let is_current = peers.get(&peer).is_some_and(|p| p.conn.stable_id() == conn.stable_id());
            if is_current {
                peers.remove(&peer);
            }
            is_current
        };
        if current {
            tracing::info!(%peer, %reason, "peer disconnected");
            let _ = self.shared.events.send(NetEvent::Disconnected(peer, reason)).await;
        }
    }

    /// Reads frames from the peer's stream until the connection ends; returns why it ended.
    async fn read_frames(&self, peer: &NodeName, conn: &Connection) -> String {
        let mut recv: RecvStream = match conn.accept_uni().await {
            Ok(r) => r,
            Err(e) => return e.to_string(),
        };
        loop {
            let mut prefix = [0u8; 4];
            if let Err(e) = recv.read_exact(&mut prefix[..1]).await {
                return conn.close_reason().map_or_else(|| e.to_string(), |r| r.to_string());
            }
            // The frame has begun: the rest must follow in time (`FRAME_READ_GRACE_MS`).
            let begun = tokio::time::Instant::now();
            let late = |len: usize| format!("frame of {len} bytes not completed in time");
            let grace = begun + Duration::from_millis(frame_read_ms(0));
            match tokio::time::timeout_at(grace, recv.read_exact(&mut prefix[1..])).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return e.to_string(),
                Err(_) => return refuse(conn, peer, close_code::FRAME_TIMEOUT, "frame length not completed in time"),
            }
            let len = match wire::frame_len(prefix) {
                Ok(l) => l,
                Err(e) => return refuse(conn, peer, close_code::FRAME_TOO_LARGE, &e.to_string()),
            };
            let mut payload = vec![0u8; len];
            let deadline = begun + Duration::from_millis(frame_read_ms(len));
            match tokio::time::timeout_at(deadline, recv.read_exact(&mut payload)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return e.to_string(),
                Err(_) => return refuse(conn, peer, close_code::FRAME_TIMEOUT, &late(len)),
            }
            let msg = match wire::decode_message(&payload) {
                Ok(m) => m,
                Err(e) => return refuse(conn, peer, close_code::MALFORMED, &e.to_string()),
            };
            if self.shared.events.send(NetEvent::Message(peer.clone(), msg)).await.is_err() {
                return "node shutting down".into();
            }
        }
    }
}

/// The time a frame of `len` payload bytes may take from its first byte to its last.
fn frame_read_ms(len: usize) -> u64 {
    FRAME_READ_GRACE_MS + len as u64 * 1000 / FRAME_READ_BYTES_PER_S_MIN
}

fn refuse(conn: &Connection, peer: &NodeName, code: u32, reason: &str) -> String {
    tracing::warn!(%peer, code, %reason, "closing connection: peer sent a bad frame");
    conn.close(VarInt::from_u32(code), reason.as_bytes());
    format!("bad frame: {reason}")
}

async fn write_frames(mut stream: SendStream, mut rx: mpsc::Receiver<(Message, usize)>, queued: Arc<AtomicUsize>) {
    while let Some((msg, bytes)) = rx.recv().await {
        let frame = wire::encode_frame(&msg);
        drop(msg);
        queued.fetch_sub(bytes, Ordering::Relaxed);
        if stream.write_all(&frame).await.is_err() {
            return;
        }
    }
    let _ = stream.finish();
}

/// A cheap upper estimate of a message's frame size, for `PEER_SEND_QUEUE_BYTES_MAX` (encoding
/// it here would put the encoding on the node actor's thread).
fn queued_bytes(msg: &Message) -> usize {
    /// Length prefixes, tags and integers of one item, at most.
    const OVERHEAD: usize = 32;
    match msg {
        Message::Hello { heads, .. } | Message::Heads { heads } => {
            OVERHEAD + heads.iter().map(|h| OVERHEAD + h.origin.len() + h.hash.len()).sum::<usize>()
        }
        Message::Request { origin, .. } => OVERHEAD + origin.len(),
        Message::Entries { entries, .. } => {
            let entry = |e: &wire::WireEntry| {
                OVERHEAD + e.header.len() + e.signature.len() + e.body.as_ref().map_or(0, Vec::len)
            };
            OVERHEAD + entries.iter().map(entry).sum::<usize>()
        }
        Message::WantBodies { ids } => OVERHEAD + ids.iter().map(|(o, _)| OVERHEAD + o.len()).sum::<usize>(),
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Transport limits, each named above with its reason.
pub fn transport_config() -> TransportConfig {
    let mut t = TransportConfig::default();
    t.max_concurrent_bidi_streams(VarInt::from_u32(0))
        .max_concurrent_uni_streams(VarInt::from_u32(UNI_STREAMS_MAX))
        .stream_receive_window(VarInt::from_u32(STREAM_WINDOW_BYTES))
        .receive_window(VarInt::from_u32(CONN_WINDOW_BYTES))
        .send_window(CONN_WINDOW_BYTES as u64)
        .max_idle_timeout(Some(IdleTimeout::try_from(Duration::from_millis(IDLE_TIMEOUT_MS)).expect("in range")))
        .keep_alive_interval(Some(Duration::from_millis(KEEP_ALIVE_MS)));
    t
}

/// Builds the QUIC server and client configurations: TLS 1.3 only, ring, mutual TLS against the
/// federation CA, ALPN `ctix/1`.
pub fn tls_configs(cfg: &NetConfig) -> Result<(quinn::ServerConfig, quinn::ClientConfig), NetError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for c in pki::load_certs(&cfg.ca_cert)? {
        roots.add(c).map_err(|e| NetError::Tls(format!("CA certificate {}: {e}", cfg.ca_cert.display())))?;
    }
    let roots = Arc::new(roots);
    let crls = load_crls(&cfg.ca_cert)?;
    let certs = pki::load_certs(&cfg.cert)?;
    let key = pki::load_tls_key(&cfg.key)?;
    let tls = |e: rustls::Error| NetError::Tls(e.to_string());
    // A node presenting a certificate for another member would be taken for that member by
    // every peer it dials: refuse to start with it.
    let names_me = certs.first().is_some_and(|leaf| {
        webpki::EndEntityCert::try_from(leaf).is_ok_and(|ee| {
            ServerName::try_from(cfg.me.as_str()).is_ok_and(|sn| ee.verify_is_valid_for_subject_name(&sn).is_ok())
        })
    });
    if !names_me {
        return Err(NetError::Tls(format!(
            "the certificate {} does not name this node {}: install this node's own certificate \
             (`ctix ca issue {}`)",
            cfg.cert.display(),
            cfg.me,
            cfg.me
        )));
    }
    let verifier_error = |e: rustls::client::VerifierBuilderError| match e {
        rustls::client::VerifierBuilderError::InvalidCrl(e) => {
            NetError::Revocation { path: cfg.ca_cert.clone(), reason: format!("{e:?}") }
        }
        other => NetError::Tls(other.to_string()),
    };

    // Revocation: only the leaf is checked (the CA is the trust anchor, there are no
    // intermediates), and a certificate no CRL speaks for (another CA's, during a CA rotation)
    // is not refused for that: a CRL lists what is revoked, nothing more.
    let verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
        .with_crls(crls.clone())
        .only_check_end_entity_revocation()
        .allow_unknown_revocation_status()
        .build()
        .map_err(verifier_error)?;
    let server_verifier = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
        .with_crls(crls)
        .only_check_end_entity_revocation()
        .allow_unknown_revocation_status()
        .build()
        .map_err(verifier_error)?;
    let mut server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs.clone(), key.clone_key())
        .map_err(tls)?;
    server.alpn_protocols = vec![ALPN.to_vec()];
    let mut client = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls)?
        .with_webpki_verifier(server_verifier)
        .with_client_auth_cert(certs, key)
        .map_err(tls)?;
    client.alpn_protocols = vec![ALPN.to_vec()];

    let transport = Arc::new(transport_config());
    let server_crypto = QuicServerConfig::try_from(server).map_err(|e| NetError::Tls(e.to_string()))?;
    let mut server_config = quinn::ServerConfig::with_crypto(Arc::new(server_crypto));
    server_config.transport_config(transport.clone());
    let client_crypto = QuicClientConfig::try_from(client).map_err(|e| NetError::Tls(e.to_string()))?;
    let mut client_config = quinn::ClientConfig::new(Arc::new(client_crypto));
    client_config.transport_config(transport);
    Ok((server_config, client_config))
}

/// The certificate revocation lists (`X509 CRL` PEM sections) in the CA file, if any.
fn load_crls(path: &Path) -> Result<Vec<CertificateRevocationListDer<'static>>, NetError> {
    let bad = |reason: String| NetError::Revocation { path: path.to_owned(), reason };
    let mut pem = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(pki::PEM_FILE_BYTES_MAX + 1).read_to_end(&mut pem))
        .map_err(|e| bad(e.to_string()))?;
    if pem.len() as u64 > pki::PEM_FILE_BYTES_MAX {
        return Err(bad(format!("file is over {} bytes", pki::PEM_FILE_BYTES_MAX)));
    }
    CertificateRevocationListDer::pem_slice_iter(&pem).collect::<Result<Vec<_>, _>>().map_err(|e| bad(e.to_string()))
}
