//! Attacks on a federation, one test per attack. Each test's doc names the protection it pins:
//! remove that protection and the test fails.
//!
//! Network attacks run against real nodes on loopback (`federation::dev_federation`), with the
//! attacker as a raw QUIC client holding some member's credentials (`dial`), so it can send any
//! bytes and read what the node answers (`inbox`). Members that are not started are
//! impersonated; their names (`at`, `be`, and `ee` as an absent origin) sort before those of the
//! running nodes, so no node dials them: a dial to an address where nothing listens would hold
//! up that node's stop for `net::SHUTDOWN_WAIT_MS`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ctix::log::{SignedEntry, VerifiedEntry};
use ctix::model::{Body, Indicator, IndicatorInput, NodeName};
use ctix::net::{self, NetConfig, close_code};
use ctix::node::{self, Running, Status};
use ctix::roster::{RetiredKey, Roster};
use ctix::sim::MemLog;
use ctix::sync::{Action, Sync, SyncConfig};
use ctix::view::{IndicatorView, QueryResponse, StatusView};
use ctix::wire::{self, Message, WireEntry, WireHead};
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use quinn::{Connection, ConnectionError, SendStream, VarInt};
use rcgen::{
    CertificateParams, CertificateRevocationListParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod,
    KeyPair, KeyUsagePurpose, RevocationReason, RevokedCertParams, SerialNumber,
};
use time::OffsetDateTime;

use crate::api::Api;
use crate::federation::{Fed, append, config, dev_federation, ind, start, start_config, wait_for};
use crate::support::name;

// ---- the attacker's tools ----

/// Opens a QUIC connection to `to` as `as_node`, with that member's TLS credentials or `tls`
/// (certificate, key) instead. `Err`: the handshake failed.
async fn dial(
    fed: &Fed,
    as_node: &str,
    tls: Option<(&Path, &Path)>,
    to: &Running,
) -> Result<Connection, ConnectionError> {
    connect(client_config(fed, as_node, tls), to.quic_addr, to.handle.name.clone()).await
}

/// The QUIC client configuration of `as_node` (see `dial`).
fn client_config(fed: &Fed, as_node: &str, tls: Option<(&Path, &Path)>) -> quinn::ClientConfig {
    let c = config(fed, as_node);
    let (cert, key) = tls.map_or((c.tls_cert.clone(), c.tls_key.clone()), |(c, k)| (c.to_owned(), k.to_owned()));
    // `tls_configs` refuses a certificate that does not name `me`: a rogue client is whoever its
    // certificate names (`issue` writes NAME-SERIAL.crt; a foreign CA's files are NAME.crt).
    let stem = cert.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
    let me = NodeName::new(stem.split('-').next().unwrap_or_default()).unwrap_or_else(|_| c.node.clone());
    let net_cfg = NetConfig {
        me,
        listen: "127.0.0.1:0".parse().unwrap(),
        roster: c.roster.clone(),
        ca_cert: c.ca_cert.clone(),
        cert,
        key,
        blocked: Default::default(),
    };
    net::tls_configs(&net_cfg).unwrap().1
}

async fn connect(client: quinn::ClientConfig, addr: SocketAddr, to: NodeName) -> Result<Connection, ConnectionError> {
    let mut ep = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    ep.set_default_client_config(client);
    ep.connect(addr, to.as_str()).unwrap().await
}

/// A rogue member: `dial` with the member's own credentials, which must be accepted.
async fn rogue(fed: &Fed, as_node: &str, to: &Running) -> Connection {
    dial(fed, as_node, None, to).await.unwrap_or_else(|e| panic!("{as_node} could not connect: {e}"))
}

/// Opens the connection's one stream and sends `msgs` on it as frames; returns the stream for more.
async fn send(conn: &Connection, msgs: &[Message]) -> SendStream {
    let mut s = conn.open_uni().await.unwrap();
    for m in msgs {
        s.write_all(&wire::encode_frame(m)).await.unwrap();
    }
    s
}

fn hello() -> Message {
    Message::Hello { version: wire::PROTOCOL_VERSION, heads: vec![] }
}

fn entries(es: &[&SignedEntry]) -> Message {
    Message::Entries { reply_to: None, entries: es.iter().map(|e| e.to_wire()).collect() }
}

/// Everything the node sends on `conn`, decoded, as it arrives.
fn inbox(conn: &Connection) -> Arc<Mutex<Vec<Message>>> {
    let got = Arc::new(Mutex::new(Vec::new()));
    let (conn, sink) = (conn.clone(), got.clone());
    tokio::spawn(async move {
        let Ok(mut recv) = conn.accept_uni().await else { return };
        loop {
            let mut prefix = [0u8; 4];
            if recv.read_exact(&mut prefix).await.is_err() {
                return;
            }
            let mut payload = vec![0u8; wire::frame_len(prefix).unwrap()];
            if recv.read_exact(&mut payload).await.is_err() {
                return;
            }
            sink.lock().unwrap().push(wire::decode_message(&payload).unwrap());
        }
    });
    got
}

/// The entries of `origin` in `msgs` (pushed and answered alike), in arrival order.
fn entries_of(msgs: &[Message], origin: &str) -> Vec<SignedEntry> {
    msgs.iter()
        .filter_map(|m| match m {
            Message::Entries { entries, .. } => Some(entries),
            _ => None,
        })
        .flatten()
        .map(|w| SignedEntry::from_wire(w.clone()).unwrap())
        .filter(|e| e.header.origin.as_str() == origin)
        .collect()
}

/// Waits for the node to close `conn` with application close `code`; returns how long it took.
async fn closed_with(conn: &Connection, code: u32, secs: u64) -> Duration {
    let t = Instant::now();
    let err = tokio::time::timeout(Duration::from_secs(secs), conn.closed())
        .await
        .unwrap_or_else(|_| panic!("the node did not close the connection within {secs}s (expected code {code:#x})"));
    match err {
        ConnectionError::ApplicationClosed(c) => {
            assert_eq!(c.error_code, VarInt::from_u32(code), "closed with {:?}", String::from_utf8_lossy(&c.reason))
        }
        other => panic!("expected application close {code:#x}, got: {other}"),
    }
    t.elapsed()
}

/// Asserts that the node refused the TLS handshake for `why` (words of rustls' reason): the dial
/// failed, or the connection was closed by TLS (not by the application, which would mean the
/// certificate was accepted).
async fn tls_refused(dialled: Result<Connection, ConnectionError>, what: &str, why: &str) {
    let err = match dialled {
        Err(e) => e,
        Ok(c) => tokio::time::timeout(Duration::from_secs(5), c.closed())
            .await
            .unwrap_or_else(|_| panic!("{what}: the handshake was accepted and the connection stays open")),
    };
    match &err {
        ConnectionError::ConnectionClosed(_) | ConnectionError::TransportError(_) => {
            let text = err.to_string();
            assert!(
                text.contains("invalid peer certificate") && text.contains(why),
                "{what}: refused otherwise: {text}"
            );
            println!("{what}: refused: {text}");
        }
        other => panic!("{what}: not refused by TLS: {other}"),
    }
}

// ---- the nodes ----

async fn status(n: &Running) -> Status {
    n.handle.status().await.unwrap()
}

/// Polls `n`'s status until `done`; panics with `what` after `secs`.
async fn wait_status(n: &Running, secs: u64, what: &str, done: impl Fn(&Status) -> bool) -> Status {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let st = status(n).await;
        if done(&st) {
            return st;
        }
        assert!(Instant::now() < deadline, "{} after {secs}s: {what}; status: {st:?}", n.handle.name);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_connected(n: &Running, peers: &[&str]) {
    wait_status(n, 20, &format!("not connected to {peers:?}"), |st| {
        peers.iter().all(|p| st.connected.contains(&name(p)))
    })
    .await;
}

fn peer_rejected(st: &Status, peer: &str) -> u64 {
    st.peers.iter().find(|p| p.name.as_str() == peer).map_or(0, |p| p.rejected)
}

async fn stop_all(nodes: Vec<Running>) {
    for n in nodes {
        n.stop().await;
    }
}

/// Starts `node` with links to `blocked` cut in its config.
async fn start_blocking(fed: &Fed, node: &str, blocked: &[&str]) -> Running {
    let mut c = config(fed, node);
    c.blocked_peers.extend(blocked.iter().map(|b| name(b)));
    node::start(c).await.unwrap()
}

/// The signing key a member's node uses: what an origin (or a thief of its key) signs with.
fn node_key(fed: &Fed, node: &str) -> SigningKey {
    ctix::pki::load_node_key(&config(fed, node).signing_key).unwrap()
}

/// The first entry of `origin`'s log, signed with `key`.
fn signed(key: &SigningKey, origin: &str, body: Body) -> VerifiedEntry {
    VerifiedEntry::sign_own(key, &name(origin), None, ctix::now_ms(), body)
}

fn line(text: &str, l: &str) -> bool {
    text.lines().any(|x| x == l)
}

// ---- 1. replay ----

/// The same signed entries relayed by two peers, and then replayed twice more by one of them,
/// are stored once, and relayed only on request, once per request, on real nodes.
///
/// Pins `Store::ingest`'s `Duplicate` outcome: an entry already held at its position with the
/// same hash is neither written nor reported stored, so `node` counts it as a duplicate and does
/// not pass it to `Sync::stored`; and `Sync::stored`, which pushes only the node's own entries
/// (another origin's are announced and pulled).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_entries_are_stored_once_and_relayed_once() {
    let fed = dev_federation(&["at", "ee", "lt", "lv"]);
    // ee–lt cut: ee's entries reach lt only through relays (lv by pull, and the attacker at).
    let ee = start_blocking(&fed, "ee", &["lt"]).await;
    let lt = start_blocking(&fed, "lt", &["ee"]).await;
    let lv = start(&fed, "lv").await;
    wait_connected(&lt, &["lv"]).await;
    // at says it holds nothing: lt announces what it stores to at, and answers at's requests.
    let at = rogue(&fed, "at", &lt).await;
    let from_lt = inbox(&at);
    let mut stream = send(&at, &[hello()]).await;
    wait_status(&lt, 10, "at's hello not handled", |st| {
        st.peers.iter().any(|p| p.name == name("at") && p.last_seen_ms.is_some())
    })
    .await;

    let sent = append(&ee, (1..=3).map(|i| ind(&format!("203.0.113.{i}"))).collect()).await;
    wait_for(&lt, "ee", 3, 20).await;
    let replay: Vec<&SignedEntry> = sent.iter().map(|v| v.entry()).collect();
    for _ in 0..2 {
        stream.write_all(&wire::encode_frame(&entries(&replay))).await.unwrap();
    }
    wait_status(&lt, 10, "replays not seen as duplicates", |st| st.counters.duplicates >= 6).await;
    tokio::time::sleep(Duration::from_millis(500)).await; // any (wrong) relay of the replays
    let st = status(&lt).await.counters;

    assert_eq!(st.stored_from_peers, 3, "lt stored ee's entries more than once: {st:?}");
    assert_eq!(st.duplicates, 6);
    let counts = lt.handle.store.counts();
    assert_eq!(counts.get(&(name("ee"), ctix::model::EntryKind::Indicator)), Some(&3));
    assert_eq!(lt.handle.store.head(&name("ee")), Some(sent[2].tip()));
    // lt pushed none of ee's entries to at (nor the replays back): it announced them.
    let unasked = |msgs: &[Message]| -> Vec<Message> {
        msgs.iter().filter(|m| matches!(m, Message::Entries { reply_to: None, .. })).cloned().collect()
    };
    let got = from_lt.lock().unwrap().clone();
    assert_eq!(entries_of(&unasked(&got), "ee").len(), 0, "lt pushed entries it did not sign to at");
    let announced = got
        .iter()
        .any(|m| matches!(m, Message::Heads { heads } if heads.iter().any(|h| h.origin == "ee" && h.seq == 3)));
    assert!(announced, "lt did not announce ee's head 3 to at: {got:?}");
    // Asked, lt answers with each entry once.
    let request = Message::Request { id: 77, origin: "ee".into(), from_seq: 1, limit: 200 };
    stream.write_all(&wire::encode_frame(&request)).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let answer = loop {
        let found = from_lt.lock().unwrap().iter().find_map(|m| match m {
            Message::Entries { reply_to: Some(77), .. } => Some(m.clone()),
            _ => None,
        });
        if let Some(m) = found {
            break m;
        }
        assert!(std::time::Instant::now() < deadline, "lt did not answer at's request");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let relayed: Vec<u64> = entries_of(&[answer], "ee").iter().map(|e| e.header.seq).collect();
    assert_eq!(relayed, [1, 2, 3], "lt's answer to at");
    // lv, which relayed them to lt, got none of them back.
    assert_eq!(status(&lv).await.counters.duplicates, 0, "lt relayed replays on to lv");
    stop_all(vec![ee, lt, lv]).await;
}

/// The same, on the sans-IO machine, where every message is counted: entries relayed by one peer
/// and replayed twice by another that announced holding them are pushed to no peer (they are not
/// lt's own), and at the next heads interval announced once, to the one peer not known to hold
/// them (lv sent them, pl announced them).
///
/// Pins `Sync::stored`'s per-peer belief (`known`, from `Hello` and from what was sent or
/// received): an entry goes to a peer only if it is believed to hold exactly the predecessor.
#[test]
fn replays_are_never_pushed_to_a_peer_that_has_them() {
    let roster = crate::support::roster(&["ee", "fi", "lt", "lv", "pl"]);
    let mut lt =
        Sync::new(name("lt"), roster.names().cloned(), Default::default(), Default::default(), SyncConfig::default());
    let mut log = MemLog::default();
    let chain = crate::support::chain("ee", 3);
    let head = chain[2].tip();
    let mut sent: Vec<(NodeName, Message)> = Vec::new();
    let mut deliver = |lt: &mut Sync, log: &mut MemLog, from: &str, msg: Message| {
        lt.handle_message(1, &name(from), msg, log);
        while let Some(a) = lt.poll_action() {
            match a {
                Action::Send { to, msg } => sent.push((to, msg)),
                Action::Ingest { from, reply_to, entries } => {
                    let (stored, forked, _, _) = log.ingest(&roster, entries);
                    lt.ingested(1, &from, reply_to, &stored, &forked);
                }
                Action::Disconnect { peer, reason } => panic!("{peer} disconnected: {reason}"),
            }
        }
    };
    for p in ["fi", "lv", "pl"] {
        lt.peer_connected(0, &name(p));
    }
    let hello = |heads: Vec<WireHead>| Message::Hello { version: wire::PROTOCOL_VERSION, heads };
    deliver(&mut lt, &mut log, "fi", hello(vec![]));
    deliver(&mut lt, &mut log, "lv", hello(vec![]));
    deliver(&mut lt, &mut log, "pl", hello(vec![WireHead { origin: "ee".into(), seq: 3, hash: head.hash }]));
    let push = Message::Entries { reply_to: None, entries: chain.iter().map(|v| v.entry().to_wire()).collect() };
    deliver(&mut lt, &mut log, "lv", push.clone());
    for _ in 0..2 {
        deliver(&mut lt, &mut log, "pl", push.clone());
    }
    assert_eq!(log.log(&name("ee")).len(), 3);
    lt.handle_timeout(1 + SyncConfig::default().heads_interval_ms);
    while let Some(a) = lt.poll_action() {
        if let Action::Send { to, msg } = a {
            sent.push((to, msg));
        }
    }
    for peer in ["fi", "lv", "pl"] {
        let pushed: Vec<u64> = sent
            .iter()
            .filter(|(to, m)| to.as_str() == peer && matches!(m, Message::Entries { reply_to: None, .. }))
            .flat_map(|(_, m)| entries_of(std::slice::from_ref(m), "ee"))
            .map(|e| e.header.seq)
            .collect();
        assert_eq!(pushed, Vec::<u64>::new(), "ee's entries pushed to {peer}");
        let announced: Vec<Vec<(String, u64)>> = sent
            .iter()
            .filter_map(|(to, m)| match m {
                Message::Heads { heads } if to.as_str() == peer => {
                    Some(heads.iter().map(|h| (h.origin.clone(), h.seq)).collect())
                }
                _ => None,
            })
            .collect();
        let expected = if peer == "fi" { vec![vec![("ee".to_string(), 3)]] } else { vec![] };
        assert_eq!(announced, expected, "heads announced to {peer}");
    }
}

// ---- 2. tampering by a relay; keys and origins not in the roster ----

/// A member with a valid certificate relays entries of ee that do not verify: a changed body, a
/// changed header, one signed by a key that is not ee's roster key, and one of an origin not in
/// the roster. lt rejects all four, counts them against the relay (status and `/metrics`), and
/// forwards nothing of them; the honest entry, relayed afterwards, reaches the third node intact.
///
/// Pins `log::authenticate_batch` in `node::Actor::ingest` (roster key, signature, body hash:
/// nothing unverified is stored, so nothing unverified is relayed) and the per-peer count
/// `PeerStatus::rejected` / `ctix_peer_rejected_total`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_entries_from_a_relay_are_rejected_counted_against_it_and_not_forwarded() {
    let fed = dev_federation(&["at", "ee", "lt", "lv"]);
    let (lt, lv) = (start(&fed, "lt").await, start(&fed, "lv").await);
    wait_connected(&lt, &["lv"]).await;
    let honest = signed(&node_key(&fed, "ee"), "ee", ind("203.0.113.10"));
    let mut body = honest.entry().clone();
    body.body = Some(wire::encode_body(&ind("203.0.113.11")));
    let mut header = honest.entry().clone();
    header.header.created_ms += 1;
    let stranger = SigningKey::from_bytes(&[7; 32]);
    let wrong_key = signed(&stranger, "ee", ind("203.0.113.12"));
    let no_member = signed(&stranger, "xx", ind("203.0.113.13"));

    let at = rogue(&fed, "at", &lt).await;
    let mut stream = send(&at, &[hello(), entries(&[&body, &header, wrong_key.entry(), no_member.entry()])]).await;
    let st = wait_status(&lt, 10, "4 rejections not counted against at", |st| peer_rejected(st, "at") >= 4).await;
    assert_eq!((peer_rejected(&st, "at"), peer_rejected(&st, "lv"), st.counters.rejected), (4, 0, 4));
    assert_eq!(lt.handle.store.head(&name("ee")), None, "lt stored a tampered entry");
    let api = Api::new(&fed, "lt", &lt);
    let text = api.get("/metrics").await.text();
    for l in [r#"ctix_peer_rejected_total{peer="at"} 4"#, r#"ctix_peer_rejected_total{peer="lv"} 0"#] {
        assert!(line(&text, l), "no {l:?} in:\n{text}");
    }
    let view: StatusView = api.get("/api/v1/status").await.json();
    let at_view = view.peers.iter().find(|p| p.name == "at").unwrap();
    assert_eq!(at_view.rejected, 4);

    // The honest entry, relayed by the same peer, is stored and relayed on to lv unchanged.
    stream.write_all(&wire::encode_frame(&entries(&[honest.entry()]))).await.unwrap();
    wait_for(&lv, "ee", 1, 10).await;
    let at_lv = lv.handle.store.get(&honest.id()).unwrap().unwrap();
    assert_eq!((at_lv.hash(), &at_lv.entry().body), (honest.hash(), &honest.entry().body));
    let lv_st = status(&lv).await;
    assert_eq!(lv_st.counters.rejected, 0, "a tampered entry reached lv: {:?}", lv_st.counters);
    stop_all(vec![lt, lv]).await;
}

// ---- 3. equivocation ----

/// ee signs two different entries for seq 1: A goes to lv (and through lv to lt and pl), then
/// B to lt alone. lt finds the fork on arrival; lv, which holds only A, finds it from lt's proof
/// within the same exchange; pl, offline meanwhile, finds it from the proof pushed when it
/// reconnects; a request for ee's log is answered with the proof. Each keeps B as evidence,
/// quarantines ee and reports it in `/api/v1/status` and `/metrics`.
///
/// Pins fork proofs (`sync::Sync::fork_proof`, `node::fork_proof`: pushed on detection, on
/// `Hello`, and as the answer to a request for the quarantined origin): without them only lt
/// would know, and lv and pl would go on accepting ee's history A. Also `Store::ingest`'s fork
/// check and evidence (`F`, `Q` rows) and their reporting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn equivocation_is_proved_to_every_peer_within_one_exchange() {
    let fed = dev_federation(&["ee", "lt", "lv", "pl"]);
    let (lt, lv, pl) = (start(&fed, "lt").await, start(&fed, "lv").await, start(&fed, "pl").await);
    wait_connected(&lt, &["lv", "pl"]).await;
    wait_connected(&lv, &["pl"]).await;
    let key = node_key(&fed, "ee");
    let a = signed(&key, "ee", ind("203.0.113.1"));
    let b = signed(&key, "ee", ind("203.0.113.2"));
    assert_eq!((a.header().seq, b.header().seq), (1, 1));
    assert_ne!(a.hash(), b.hash());

    let to_lv = rogue(&fed, "ee", &lv).await;
    let _s1 = send(&to_lv, &[hello(), entries(&[a.entry()])]).await;
    for n in [&lt, &pl] {
        wait_for(n, "ee", 1, 10).await;
        assert_eq!(n.handle.store.head(&name("ee")), Some(a.tip()));
    }
    pl.stop().await;

    let to_lt = rogue(&fed, "ee", &lt).await;
    let from_lt = inbox(&to_lt);
    let t = Instant::now();
    let mut s2 = send(&to_lt, &[hello(), entries(&[b.entry()])]).await;
    let quarantined = |st: &Status| st.quarantined.contains(&name("ee"));
    wait_status(&lt, 5, "lt did not quarantine ee", quarantined).await;
    wait_status(&lv, 5, "lv was not told of the fork", quarantined).await;
    println!("lt and lv quarantined ee {:?} after the conflicting entry was sent", t.elapsed());
    let pl = start(&fed, "pl").await;
    wait_status(&pl, 10, "pl was not told of the fork when it reconnected", quarantined).await;
    // Whoever asks lt for ee's log now gets the proof instead: A and B.
    let ask = Message::Request { id: 7, origin: "ee".into(), from_seq: 1, limit: 10 };
    s2.write_all(&wire::encode_frame(&ask)).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let answer = loop {
        let got =
            from_lt.lock().unwrap().iter().find(|m| matches!(m, Message::Entries { reply_to: Some(7), .. })).cloned();
        if let Some(m) = got {
            break m;
        }
        assert!(Instant::now() < deadline, "lt did not answer the request for ee");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let proof: Vec<_> = entries_of(&[answer], "ee").iter().map(SignedEntry::hash).collect();
    assert_eq!(proof, [a.hash(), b.hash()], "lt's answer for the quarantined origin");

    for (node, n) in [("lt", &lt), ("lv", &lv), ("pl", &pl)] {
        // The evidence: B, kept beside A (held), both authentic under the roster.
        let forks = n.handle.store.forks().unwrap();
        assert_eq!(forks.len(), 1, "{node}: {forks:?}");
        assert_eq!((forks[0].origin.as_str(), forks[0].seq, forks[0].entry.hash()), ("ee", 1, b.hash()), "{node}");
        assert_eq!(n.handle.store.head(&name("ee")), Some(a.tip()), "{node}: the held entry was overwritten");
        let api = Api::new(&fed, node, n);
        let view: StatusView = api.get("/api/v1/status").await.json();
        assert_eq!((view.quarantined.clone(), view.forks), (vec!["ee".to_string()], 1), "{node}");
        let text = api.get("/metrics").await.text();
        for l in ["ctix_forks_detected_total 1", "ctix_quarantined_origins 1"] {
            assert!(line(&text, l), "{node}: no {l:?} in:\n{text}");
        }
    }
    stop_all(vec![lt, lv, pl]).await;
}

// ---- 4. flooding ----

/// A member sends junk: a length prefix of 4 GiB, an undecodable frame, a wrong protocol
/// version, a version vector naming a non-member, an entry that does not decode. Each closes
/// that connection with its code at once (the 4 GiB prefix before anything is allocated), and
/// ee's entries keep reaching lt meanwhile.
///
/// Pins `wire::frame_len` (checked before the payload buffer is allocated), `decode_message`
/// (`MALFORMED`), and `Sync`'s violations (`Action::Disconnect` → `PROTOCOL`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn junk_frames_close_only_the_offending_connection() {
    let fed = dev_federation(&["at", "ee", "lt"]);
    let (ee, lt) = (start(&fed, "ee").await, start(&fed, "lt").await);
    wait_connected(&lt, &["ee"]).await;
    let mut junk = 64u32.to_be_bytes().to_vec();
    junk.extend([0xff; 64]);
    let junk_flood: Vec<u8> = junk.iter().copied().cycle().take(68 * 10_000).collect();
    let bad_entry = WireEntry { header: vec![9; 10], signature: vec![0; 64], body: None };
    let frame = |m: Message| wire::encode_frame(&m);
    let cases: Vec<(&str, Vec<u8>, u32)> = vec![
        ("4 GiB length prefix", u32::MAX.to_be_bytes().to_vec(), close_code::FRAME_TOO_LARGE),
        ("10,000 junk frames", junk_flood, close_code::MALFORMED),
        (
            "another protocol version",
            frame(Message::Hello { version: wire::PROTOCOL_VERSION + 1, heads: vec![] }),
            close_code::PROTOCOL,
        ),
        (
            "a non-member's head",
            frame(Message::Heads { heads: vec![WireHead { origin: "xx".into(), seq: 1, hash: [0; 32] }] }),
            close_code::PROTOCOL,
        ),
        (
            "an undecodable entry",
            frame(Message::Entries { reply_to: None, entries: vec![bad_entry] }),
            close_code::PROTOCOL,
        ),
    ];
    for (i, (what, bytes, code)) in cases.into_iter().enumerate() {
        let c = rogue(&fed, "at", &lt).await;
        let mut s = c.open_uni().await.unwrap();
        let _ = s.write_all(&bytes).await; // the node may close before it has read everything
        closed_with(&c, code, 10).await;
        append(&ee, vec![ind(&format!("198.51.100.{i}"))]).await;
        wait_for(&lt, "ee", i as u64 + 1, 10).await;
        println!("{what}: closed with {code:#x}; ee's entry still reached lt");
    }
    assert!(status(&lt).await.connected.contains(&name("ee")));
    stop_all(vec![ee, lt]).await;
}

/// A member opens thousands of streams and then dozens of connections at once. QUIC lets it open
/// only `UNI_STREAMS_MAX` unidirectional streams and no bidirectional one; of its connections
/// each newer one replaces the older (`REPLACED`), so one stays. ee's entries keep flowing.
///
/// Pins `net::transport_config` (`UNI_STREAMS_MAX`, no bidirectional streams) and the one
/// connection per member in `Net::run_connection`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_and_connection_floods_are_bounded() {
    let fed = dev_federation(&["at", "ee", "lt"]);
    let (ee, lt) = (start(&fed, "ee").await, start(&fed, "lt").await);
    wait_connected(&lt, &["ee"]).await;
    let first = rogue(&fed, "at", &lt).await;
    let mut streams = Vec::new();
    for _ in 0..5_000 {
        match tokio::time::timeout(Duration::from_millis(200), first.open_uni()).await {
            Ok(Ok(mut s)) => {
                s.write_all(&wire::encode_frame(&hello())).await.unwrap();
                streams.push(s);
            }
            _ => break,
        }
    }
    assert!(streams.len() <= net::UNI_STREAMS_MAX as usize, "opened {} streams", streams.len());
    let bidi = tokio::time::timeout(Duration::from_millis(200), first.open_bi()).await;
    assert!(!matches!(bidi, Ok(Ok(_))), "a bidirectional stream was opened");

    // Thirty more connections as at, all at once, while ee appends.
    let client = client_config(&fed, "at", None);
    let mut dials = tokio::task::JoinSet::new();
    for _ in 0..30 {
        dials.spawn(connect(client.clone(), lt.quic_addr, name("lt")));
    }
    append(&ee, vec![ind("198.51.100.1")]).await;
    let mut conns = vec![first];
    while let Some(c) = dials.join_next().await {
        conns.push(c.unwrap().expect("at's certificate is good"));
    }
    wait_for(&lt, "ee", 1, 10).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let open = loop {
        let open: Vec<&Connection> = conns.iter().filter(|c| c.close_reason().is_none()).collect();
        if open.len() <= 1 {
            break open.len();
        }
        assert!(Instant::now() < deadline, "{} connections of at still open", open.len());
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(open, 1, "no connection of at left");
    for c in conns.iter().filter_map(|c| c.close_reason()) {
        match c {
            ConnectionError::ApplicationClosed(a) => assert_eq!(a.error_code, VarInt::from_u32(close_code::REPLACED)),
            other => panic!("an older connection ended otherwise: {other}"),
        }
    }
    wait_status(&lt, 5, "at not connected", |st| st.connected.contains(&name("at"))).await;
    stop_all(vec![ee, lt]).await;
}

/// Two members start a frame and stall, one inside the payload, one inside the length prefix:
/// a slow-loris holding the node's reader and its buffer. Both connections are closed with
/// `FRAME_TIMEOUT` once `FRAME_READ_GRACE_MS` has passed, while ee's entries flow throughout.
///
/// Pins the frame deadline in `Net::read_frames` (`FRAME_READ_GRACE_MS`,
/// `FRAME_READ_BYTES_PER_S_MIN`): without it, keep-alives hold such a connection open for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_loris_frames_are_cut_off() {
    let fed = dev_federation(&["at", "be", "ee", "lt"]);
    let (ee, lt) = (start(&fed, "ee").await, start(&fed, "lt").await);
    wait_connected(&lt, &["ee"]).await;
    let (at, be) = (rogue(&fed, "at", &lt).await, rogue(&fed, "be", &lt).await);
    let mut partial_payload = wire::encode_frame(&hello());
    partial_payload.extend(100u32.to_be_bytes());
    partial_payload.extend([0; 10]);
    let stalled = Instant::now();
    let mut s1 = at.open_uni().await.unwrap();
    s1.write_all(&partial_payload).await.unwrap();
    let mut s2 = be.open_uni().await.unwrap();
    s2.write_all(&[0, 0]).await.unwrap();

    append(&ee, vec![ind("198.51.100.1")]).await;
    let flowed = wait_for(&lt, "ee", 1, 3).await;
    println!("ee's entry reached lt in {flowed:?} while two frames were stalled");
    for c in [&at, &be] {
        closed_with(c, close_code::FRAME_TIMEOUT, net::FRAME_READ_GRACE_MS / 1000 + 5).await;
    }
    let cut = stalled.elapsed();
    println!("both stalled frames were cut off after {cut:?}");
    assert!(cut >= Duration::from_millis(net::FRAME_READ_GRACE_MS), "cut off before the grace period");
    append(&ee, vec![ind("198.51.100.2")]).await;
    wait_for(&lt, "ee", 2, 5).await;
    stop_all(vec![ee, lt]).await;
}

/// A member floods requests and never reads the answers, so they pile up in its send queue.
/// The transport queues at most `PEER_SEND_QUEUE_BYTES_MAX` bytes for it and then closes the
/// connection (`SLOW_PEER`), long before the 1,024-message queue would fill (at up to 4 MiB a
/// message); a peer that reads still gets its messages.
///
/// Driven on `net::Net` itself, with the answers' worth of maximal `Entries` messages queued
/// directly: a node serving them from its store would take half a minute in a debug build.
///
/// Pins the byte bound on each peer's send queue (`Net::send`, `queued_bytes`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unread_answers_are_bounded_by_the_send_queue_byte_limit() {
    let fed = dev_federation(&["ee", "lt", "lv"]);
    let c = config(&fed, "lv");
    let net_cfg = NetConfig {
        me: c.node.clone(),
        listen: "127.0.0.1:0".parse().unwrap(),
        roster: c.roster.clone(),
        ca_cert: c.ca_cert.clone(),
        cert: c.tls_cert.clone(),
        key: c.tls_key.clone(),
        blocked: Default::default(),
    };
    let (lv, mut events) = net::Net::start(net_cfg).unwrap();
    let addr = lv.local_addr().unwrap();
    let flooder = connect(client_config(&fed, "lt", None), addr, name("lv")).await.unwrap();
    let reader = connect(client_config(&fed, "ee", None), addr, name("lv")).await.unwrap();
    let from_lv = inbox(&reader);
    let mut connected = Vec::new();
    while connected.len() < 2 {
        match tokio::time::timeout(Duration::from_secs(10), events.recv()).await.unwrap().unwrap() {
            net::NetEvent::Connected(p) => connected.push(p),
            other => panic!("unexpected {other:?}"),
        }
    }
    tokio::spawn(async move { while events.recv().await.is_some() {} });

    // 100 maximal answers are about 330 MiB; lt reads none of them.
    let big = WireEntry { header: vec![0; 100], signature: vec![0; 64], body: Some(vec![0; wire::BODY_BYTES_MAX]) };
    let answer = Message::Entries { reply_to: Some(1), entries: vec![big; wire::ENTRIES_PER_MESSAGE_MAX] };
    let t = Instant::now();
    for _ in 0..100 {
        lv.send(&name("lt"), answer.clone());
        if flooder.close_reason().is_some() {
            break;
        }
        tokio::task::yield_now().await;
    }
    closed_with(&flooder, close_code::SLOW_PEER, 10).await;
    println!("lt's unread answers were cut off after {:?}", t.elapsed());
    let heads = Message::Heads { heads: vec![] };
    lv.send(&name("ee"), heads.clone());
    let deadline = Instant::now() + Duration::from_secs(5);
    while !from_lv.lock().unwrap().contains(&heads) {
        assert!(Instant::now() < deadline, "ee, which reads, did not get its message");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    lv.shutdown().await;
}

// ---- 5. certificates ----

/// Issues a TLS certificate for `node` from `fed`'s CA as `pki::ca_issue` does, but with the
/// given validity and serial number; returns (certificate, key) paths under `dir`.
fn issue(
    fed: &Fed,
    node: &str,
    valid: (OffsetDateTime, OffsetDateTime),
    serial: u64,
    dir: &Path,
) -> (PathBuf, PathBuf) {
    let issuer = ca_issuer(fed);
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec![node.to_string()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, node);
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
    params.use_authority_key_identifier_extension = true;
    (params.not_before, params.not_after) = valid;
    params.serial_number = Some(SerialNumber::from(serial));
    let cert = params.signed_by(&key, &issuer).unwrap();
    let (cert_path, key_path) =
        (dir.join(format!("{node}-{serial:x}.crt")), dir.join(format!("{node}-{serial:x}.key")));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    ctix::pki::write_secret_file(&key_path, key.serialize_pem().as_bytes()).unwrap();
    (cert_path, key_path)
}

fn ca_issuer(fed: &Fed) -> Issuer<'static, KeyPair> {
    let ca_cert = config(fed, "ee").ca_cert;
    let key = KeyPair::from_pem(&std::fs::read_to_string(ca_cert.with_file_name("ca.key")).unwrap()).unwrap();
    Issuer::from_ca_cert_pem(&std::fs::read_to_string(&ca_cert).unwrap(), key).unwrap()
}

/// Appends to `fed`'s CA file a CRL, signed by the CA, that revokes `serial`.
fn revoke(fed: &Fed, serial: u64) {
    let now = OffsetDateTime::now_utc();
    let crl = CertificateRevocationListParams {
        this_update: now - time::Duration::hours(1),
        next_update: now + time::Duration::days(7),
        crl_number: SerialNumber::from(1u64),
        issuing_distribution_point: None,
        revoked_certs: vec![RevokedCertParams {
            serial_number: SerialNumber::from(serial),
            revocation_time: now - time::Duration::minutes(5),
            reason_code: Some(RevocationReason::KeyCompromise),
            invalidity_date: None,
        }],
        key_identifier_method: KeyIdMethod::Sha256,
    }
    .signed_by(&ca_issuer(fed))
    .unwrap();
    let ca_cert = config(fed, "ee").ca_cert;
    let mut text = std::fs::read_to_string(&ca_cert).unwrap();
    text.push_str(&crl.pem().unwrap());
    std::fs::write(&ca_cert, text).unwrap();
}

/// lv runs with a certificate the CA has revoked (a CRL in the CA file), pl with an expired one;
/// attackers also present a certificate from another CA and one for a name not in the roster.
/// Every one is refused, when it dials in and (for the running nodes) when it is dialled, while
/// ee and lt, whose certificates are good, connect and replicate.
///
/// Pins rustls' chain and validity checks against the federation CA (`net::tls_configs`), the CRL
/// check (`load_crls`, `with_crls` on both verifiers) and `Net::identify` (`UNKNOWN_PEER`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_certificates_are_refused_both_ways() {
    let fed = dev_federation(&["ee", "lt", "lv", "pl"]);
    let other = dev_federation(&["lv"]);
    let dir = tempfile::tempdir().unwrap();
    let now = OffsetDateTime::now_utc();
    let valid = (now - time::Duration::hours(1), now + time::Duration::days(30));
    let expired = (now - time::Duration::days(30), now - time::Duration::days(1));
    let revoked = issue(&fed, "lv", valid, 0x7e57, dir.path());
    let stale = issue(&fed, "pl", expired, 0x7e58, dir.path());
    let stranger = issue(&fed, "xx", valid, 0x7e59, dir.path());
    revoke(&fed, 0x7e57);

    let (ee, lt) = (start(&fed, "ee").await, start(&fed, "lt").await);
    let with_tls = |node: &str, (cert, key): &(PathBuf, PathBuf)| {
        let mut c = config(&fed, node);
        (c.tls_cert, c.tls_key) = (cert.clone(), key.clone());
        c
    };
    let lv = node::start(with_tls("lv", &revoked)).await.unwrap();
    let pl = node::start(with_tls("pl", &stale)).await.unwrap();

    tls_refused(dial(&fed, "lv", Some((&revoked.0, &revoked.1)), &lt).await, "revoked certificate", "Revoked").await;
    tls_refused(dial(&fed, "pl", Some((&stale.0, &stale.1)), &lt).await, "expired certificate", "expired").await;
    let foreign = config(&other, "lv");
    tls_refused(dial(&fed, "lv", Some((&foreign.tls_cert, &foreign.tls_key)), &lt).await, "another CA", "BadSignature")
        .await;
    let c = dial(&fed, "lv", Some((&stranger.0, &stranger.1)), &lt).await.expect("the CA is right");
    closed_with(&c, close_code::UNKNOWN_PEER, 5).await;
    // lv's original certificate (another serial) is still good: the CRL refuses only what it lists.
    let good = rogue(&fed, "lv", &lt).await;
    let from_lt = inbox(&good);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !from_lt.lock().unwrap().iter().any(|m| matches!(m, Message::Hello { .. })) {
        assert!(Instant::now() < deadline, "lt did not greet lv's unrevoked certificate");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    good.close(VarInt::from_u32(0), b"done");

    wait_connected(&ee, &["lt"]).await;
    tokio::time::sleep(Duration::from_secs(2)).await; // dial attempts both ways, with back-off
    for (n, want) in [(&ee, vec!["lt"]), (&lt, vec!["ee"]), (&lv, vec![]), (&pl, vec![])] {
        let got: Vec<String> = status(n).await.connected.iter().map(|p| p.to_string()).collect();
        assert_eq!(got, want, "{} is connected to", n.handle.name);
    }
    append(&ee, vec![ind("198.51.100.1")]).await;
    wait_for(&lt, "ee", 1, 10).await;
    assert_eq!(lv.handle.store.head(&name("ee")), None);
    stop_all(vec![ee, lt, lv, pl]).await;
}

/// A CA file whose revocation list is damaged stops the node at start with an error naming the
/// file, rather than running without the revocations the operator meant to apply.
///
/// Pins `net::load_crls` and the verifier builders' CRL parsing (`NetError::Revocation`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_revocation_list_stops_the_node() {
    let fed = dev_federation(&["ee"]);
    let ca_cert = config(&fed, "ee").ca_cert;
    let mut text = std::fs::read_to_string(&ca_cert).unwrap();
    text.push_str("-----BEGIN X509 CRL-----\nMAMCAQA=\n-----END X509 CRL-----\n");
    std::fs::write(&ca_cert, text).unwrap();
    match node::start(config(&fed, "ee")).await {
        Err(node::NodeError::Net(e @ net::NetError::Revocation { .. })) => {
            let msg = e.to_string();
            assert!(msg.contains(&ca_cert.display().to_string()) && msg.contains("X509 CRL"), "{msg}");
        }
        Err(e) => panic!("another error: {e}"),
        Ok(n) => {
            n.stop().await;
            panic!("the node started with a damaged CRL");
        }
    }
}

// ---- 6. key rotation ----

/// How long a node restarted in this process may wait for its old UDP port (see `rotated`).
const QUIC_IDLE: Duration = Duration::from_secs(40);

/// `roster` with `member`'s current key replaced by `new`, the old one retired at `at_ms`, and
/// every member moved to a new UDP port: a node stopped in this process can hold its port for up
/// to the QUIC idle timeout while a handshake it started with a stopped peer closes, so the
/// restarted federation does not wait for the old ports (a restarted process has no such wait).
fn rotated(roster: &Roster, member: &str, new: &SigningKey, at_ms: u64) -> Roster {
    Roster::new(roster.members().cloned().map(|mut m| {
        let port = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        m.quic_addr = format!("127.0.0.1:{port}");
        if m.name.as_str() == member {
            m.retired_keys.push(RetiredKey { public_key: m.public_key, retired_at_ms: at_ms });
            m.public_key = new.verifying_key();
        }
        m
    }))
    .unwrap()
}

/// ee rotates its log key (and its TLS certificate): the roster lists the new key and retires
/// the old one at a time in the future. Inside that overlap window ee may still sign with the old key (lv and lt accept it);
/// once ee switches, its entries under the new key are accepted; an entry signed with the old
/// key and created after its retirement, sent by a thief of that key, is refused and counted
/// against the peer that sent it; and a node whose configured key is retired refuses to start.
/// The whole log, old and new keys alike, verifies under the rotated roster and not under the
/// old one.
///
/// Pins `roster::KeyStatus`, `log::check_retired_keys` (remove the retirement time check and
/// the thief's entry is stored), and `node::signing_allowed` (remove it and ee starts, and signs
/// entries everyone refuses).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_key_takes_effect_and_the_retired_key_is_refused_after_its_retirement() {
    let fed = dev_federation(&["at", "ee", "lt", "lv"]);
    let (old_key, new_key) = (node_key(&fed, "ee"), SigningKey::from_bytes(&[42; 32]));
    let new_key_path = config(&fed, "ee").signing_key.with_file_name("ee-rotated.key");
    ctix::pki::write_secret_file(&new_key_path, new_key.to_pkcs8_pem(Default::default()).unwrap().as_bytes()).unwrap();
    let original = config(&fed, "ee").roster;
    let nodes = vec![start(&fed, "ee").await, start(&fed, "lt").await, start(&fed, "lv").await];
    append(&nodes[0], vec![ind("198.51.100.1")]).await;
    wait_for(&nodes[1], "ee", 1, 20).await;
    wait_for(&nodes[2], "ee", 1, 20).await;
    stop_all(nodes).await;

    // The rotated roster goes out to every member; ee keeps its old key for now.
    let retire_at = ctix::now_ms() + 300_000;
    let roster = rotated(&original, "ee", &new_key, retire_at);
    let with = |node: &str, key: Option<&Path>| {
        let mut c = config(&fed, node);
        c.roster = roster.clone();
        c.quic_listen = roster.get(&name(node)).unwrap().quic_addr.parse().unwrap();
        if let Some(k) = key {
            c.signing_key = k.to_owned();
        }
        c
    };
    let (lt, lv) = (start_config(with("lt", None), QUIC_IDLE).await, start_config(with("lv", None), QUIC_IDLE).await);
    let ee = start_config(with("ee", None), QUIC_IDLE).await;
    append(&ee, vec![ind("198.51.100.2")]).await;
    wait_for(&lt, "ee", 2, 20).await;
    wait_for(&lv, "ee", 2, 20).await;
    ee.stop().await;

    // ee switches to its new key, and to a new TLS certificate from the federation CA; its old
    // certificate and TLS key are deleted, so only the new ones can be in use.
    let old_tls = config(&fed, "ee").tls_cert.parent().unwrap().to_owned();
    let fed_dir = old_tls.parent().unwrap().parent().unwrap();
    let issued = ctix::pki::ca_issue(&fed_dir.join("ca"), "ee", &fed_dir.join("ee/tls-2"), 30).unwrap();
    std::fs::remove_dir_all(&old_tls).unwrap();
    let mut c = with("ee", Some(&new_key_path));
    (c.tls_cert, c.tls_key) = (issued.cert, issued.key);
    let ee = start_config(c, QUIC_IDLE).await;
    let third = append(&ee, vec![ind("198.51.100.3")]).await.remove(0);
    wait_for(&lt, "ee", 3, 20).await;
    wait_for(&lv, "ee", 3, 20).await;
    assert!(ctix::crypto::verify_one(
        &new_key.verifying_key(),
        &third.entry().header.signing_input(),
        &third.entry().signature
    ));

    // A thief of the old key signs ee:4 dated after the retirement and offers it to lt.
    let stolen = VerifiedEntry::sign_own(&old_key, &name("ee"), Some(&third.tip()), retire_at, ind("198.51.100.66"));
    let err = ctix::log::authenticate(&roster, stolen.entry().clone()).unwrap_err();
    assert!(matches!(err, ctix::log::VerifyError::RetiredKey { .. }), "{err}");
    assert!(err.to_string().contains("retired at"), "{err}");
    let at = rogue(&fed, "at", &lt).await;
    let _stream = send(&at, &[hello(), entries(&[stolen.entry()])]).await;
    let st =
        wait_status(&lt, 10, "the retired key's entry not counted against at", |st| peer_rejected(st, "at") >= 1).await;
    assert_eq!(peer_rejected(&st, "at"), 1);
    assert_eq!(lt.handle.store.head(&name("ee")).map(|t| t.seq), Some(3), "lt stored the retired key's entry");

    // Every entry verifies under the rotated roster; ee:3 does not under the old one.
    for n in [&lt, &lv, &ee] {
        assert_eq!(n.handle.store.verify_chains(&roster), Ok(3), "{}", n.handle.name);
        let stale = n.handle.store.verify_chains(&original).unwrap_err();
        assert!(stale.contains("ee:3") && stale.contains("bad signature"), "{stale}");
    }
    stop_all(vec![ee, lt, lv]).await;

    // Once the retirement time has passed, a node configured with the old key refuses to start.
    let mut c = with("ee", None);
    c.roster = rotated(&original, "ee", &new_key, ctix::now_ms() - 1);
    let refused = node::start(c).await.err().expect("a node with a retired key started");
    assert!(matches!(refused, node::NodeError::KeyRetired { .. }), "{refused}");
    assert!(refused.to_string().contains("point signing_key at the key the roster lists"), "{refused}");
}

// ---- 7. TLP:RED through a relay ----

/// ee sends a TLP:RED indicator for lv only, with the ee–lt link cut so that everything reaches
/// lt through lv. lt holds the signed stub and no body: not in its store, not through its API,
/// not in any byte its data directory holds, and not in what lv sends a member asking as lt for
/// the entry and for its body.
///
/// Pins the audience rule: `VerifiedEntry::for_recipient` on every relay (`Sync::stored`,
/// `on_request`) and the `Audience::admits` check before answering `WantBodies`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn red_bodies_never_reach_a_non_recipient_even_through_a_relay() {
    let fed = dev_federation(&["ee", "lt", "lv"]);
    let ee = start_blocking(&fed, "ee", &["lt"]).await;
    let lt = start_blocking(&fed, "lt", &["ee"]).await;
    let lv = start(&fed, "lv").await;
    const SECRET: &str = "red-only.example";
    let red = IndicatorInput {
        itype: "domain".into(),
        value: SECRET.into(),
        tlp: "red".into(),
        recipients: vec!["lv".into()],
        ..Default::default()
    };
    let red = Body::Indicator(Indicator::from_input(&red, ctix::now_ms()).unwrap());
    let sent = append(&ee, vec![red, ind("198.51.100.9")]).await;
    let id = sent[0].id();
    wait_for(&lt, "ee", 2, 20).await;
    wait_for(&lv, "ee", 2, 20).await;
    assert!(!status(&lt).await.connected.contains(&name("ee")), "the ee–lt link must stay cut");

    let at_lv = lv.handle.store.get(&id).unwrap().unwrap();
    assert!(at_lv.entry().body.is_some(), "lv is a recipient");
    let at_lt = lt.handle.store.get(&id).unwrap().unwrap();
    assert_eq!((at_lt.hash(), &at_lt.entry().body), (sent[0].hash(), &None), "lt holds more than the stub");
    assert!(lt.handle.store.stubs_for(&name("lt")).unwrap().is_empty(), "lt wants a body it may not read");
    let api = Api::new(&fed, "lt", &lt);
    assert_eq!(api.get(&format!("/api/v1/indicators/{id}")).await.status, 404);
    let q: QueryResponse = api.get(&format!("/api/v1/indicators?type=domain&value={SECRET}")).await.json();
    assert!(q.items.is_empty());
    let q: QueryResponse = api.get("/api/v1/indicators?origin=ee").await.json();
    let ids: Vec<&str> = q.items.iter().map(|v: &IndicatorView| v.id.as_str()).collect();
    assert_eq!(ids, ["ee:2"]);
    lt.stop().await;

    // Asking lv for the entry and for its body as lt gets the stub only.
    let as_lt = rogue(&fed, "lt", &lv).await;
    let from_lv = inbox(&as_lt);
    let ask = [
        hello(),
        Message::Request { id: 1, origin: "ee".into(), from_seq: 1, limit: 10 },
        Message::WantBodies { ids: vec![("ee".into(), 1)] },
    ];
    let _s = send(&as_lt, &ask).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while !from_lv.lock().unwrap().iter().any(|m| matches!(m, Message::Entries { reply_to: Some(1), .. })) {
        assert!(Instant::now() < deadline, "lv did not answer the request");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await; // a WantBodies answer, if any
    let got = entries_of(&from_lv.lock().unwrap(), "ee");
    let red_copies: Vec<&SignedEntry> = got.iter().filter(|e| e.header.seq == 1).collect();
    assert!(!red_copies.is_empty());
    assert!(red_copies.iter().all(|e| e.body.is_none()), "lv sent the RED body to lt");

    stop_all(vec![ee, lv]).await;
    let holds = |node: &str| dir_contains(&config(&fed, node).data_dir, SECRET.as_bytes());
    assert!(holds("lv"), "the check must see the value where it is stored");
    assert!(!holds("lt"), "lt's data directory holds the RED value");
}

/// Whether any file under `dir` contains `needle`.
fn dir_contains(dir: &Path, needle: &[u8]) -> bool {
    std::fs::read_dir(dir).unwrap().any(|e| {
        let p = e.unwrap().path();
        if p.is_dir() {
            dir_contains(&p, needle)
        } else {
            std::fs::read(&p).unwrap().windows(needle.len()).any(|w| w == needle)
        }
    })
}
