//! Real federations on loopback: three nodes over QUIC with mutual TLS, in this test process.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ctix::config::Config;
use ctix::devfed;
use ctix::log::{ChainTip, VerifiedEntry};
use ctix::model::{Body, Indicator, IndicatorInput, NodeName};
use ctix::net::{self, NetConfig};
use ctix::node::{self, Running};
use ctix::wire::{self, Message};

use crate::support::name;

/// Finds `n` consecutive free UDP ports on loopback (and the API ports above them).
/// Tests in this process run concurrently: each call takes a fresh block of ports.
fn free_base_port(n: u16) -> u16 {
    static NEXT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
    let seed = (std::process::id() % 2_000) as u16 * 10;
    for _ in 0..500u16 {
        let block = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let base = 20_000 + (seed + block * 10) % 30_000;
        let ok = (0..n).all(|i| std::net::UdpSocket::bind(("127.0.0.1", base + i)).is_ok());
        if ok {
            return base;
        }
    }
    panic!("no free ports");
}

pub(crate) struct Fed {
    _dir: tempfile::TempDir,
    pub(crate) configs: BTreeMap<String, PathBuf>,
}

pub(crate) fn dev_federation(nodes: &[&str]) -> Fed {
    let dir = tempfile::tempdir().unwrap();
    let names: Vec<NodeName> = nodes.iter().map(|n| name(n)).collect();
    let fed = devfed::generate(dir.path(), &names, free_base_port(nodes.len() as u16)).unwrap();
    let configs = fed.nodes.into_iter().map(|(n, p)| (n.to_string(), p)).collect();
    Fed { _dir: dir, configs }
}

pub(crate) fn config(fed: &Fed, node: &str) -> Config {
    let mut c = Config::load(&fed.configs[node]).unwrap();
    c.own_head_wait_ms = 2_000;
    // Concurrent tests must not race for API ports: let the OS choose (see `Running::api_addr`).
    c.api_listen = "127.0.0.1:0".parse().unwrap();
    c
}

/// Starts a node. A node restarted in the same process may find its UDP port still held for a
/// moment by the old endpoint's driver (quinn releases it asynchronously), so bind errors are
/// retried for a few seconds.
pub(crate) async fn start(fed: &Fed, node: &str) -> Running {
    start_config(config(fed, node), Duration::from_secs(10)).await
}

/// Starts a node from an explicit config, retrying bind errors for up to `wait` (see `start`).
pub(crate) async fn start_config(c: Config, wait: Duration) -> Running {
    let deadline = Instant::now() + wait;
    loop {
        match node::start(c.clone()).await {
            Ok(r) => return r,
            Err(node::NodeError::Net(net::NetError::Bind { .. })) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("starting {}: {e}", c.node),
        }
    }
}

pub(crate) fn ind(v: &str) -> Body {
    let input = IndicatorInput { itype: "ipv4".into(), value: v.into(), ..Default::default() };
    Body::Indicator(Indicator::from_input(&input, ctix::now_ms()).unwrap())
}

pub(crate) async fn append(n: &Running, bodies: Vec<Body>) -> Vec<VerifiedEntry> {
    n.handle.append(bodies).await.unwrap().into_iter().map(Result::unwrap).collect()
}

/// Waits until `node` holds `origin` up to `seq`; panics after `secs`.
pub(crate) async fn wait_for(n: &Running, origin: &str, seq: u64, secs: u64) -> Duration {
    let start = Instant::now();
    loop {
        if n.handle.store.head(&name(origin)).is_some_and(|t: ChainTip| t.seq >= seq) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "{} did not receive {origin}:{seq} within {secs}s",
            n.handle.name
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn indicator_on_ee_reaches_lv_and_lt() {
    let fed = dev_federation(&["ee", "lv", "lt"]);
    let (ee, lv, lt) = (start(&fed, "ee").await, start(&fed, "lv").await, start(&fed, "lt").await);
    let bodies: Vec<Body> = (1..=5).map(|i| ind(&format!("203.0.113.{i}"))).collect();
    let stored = append(&ee, bodies).await;
    assert_eq!(stored.len(), 5);
    wait_for(&lv, "ee", 5, 20).await;
    wait_for(&lt, "ee", 5, 20).await;
    let roster = config(&fed, "ee").roster;
    for n in [&lv, &lt] {
        assert_eq!(n.handle.store.verify_chains(&roster).unwrap(), 5);
        assert_eq!(n.handle.store.head(&name("ee")), Some(stored[4].tip()));
    }
    for n in [ee, lv, lt] {
        n.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_link_heals_through_third_node() {
    let fed = dev_federation(&["ee", "lv", "lt"]);
    let mut ee_cfg = config(&fed, "ee");
    ee_cfg.blocked_peers.insert(name("lt"));
    let mut lt_cfg = config(&fed, "lt");
    lt_cfg.blocked_peers.insert(name("ee"));
    let ee = node::start(ee_cfg).await.unwrap();
    let lv = start(&fed, "lv").await;
    let lt = node::start(lt_cfg).await.unwrap();
    append(&ee, (1..=20).map(|i| ind(&format!("198.51.100.{i}"))).collect()).await;
    wait_for(&lt, "ee", 20, 20).await;
    let st = lt.handle.status().await.unwrap();
    assert!(!st.connected.contains(&name("ee")), "the ee–lt link must stay cut");
    assert!(st.connected.contains(&name("lv")));
    for n in [ee, lv, lt] {
        n.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_node_catches_up_10000_entries() {
    let fed = dev_federation(&["ee", "lv", "lt"]);
    let (ee, lv) = (start(&fed, "ee").await, start(&fed, "lv").await);
    let lt = start(&fed, "lt").await;
    append(&lt, vec![ind("192.0.2.1")]).await;
    wait_for(&ee, "lt", 1, 20).await;
    lt.stop().await;
    for batch in 0..10 {
        let bodies = (0..1000).map(|i| ind(&format!("10.{batch}.{}.{}", i / 250, i % 250))).collect();
        append(&ee, bodies).await;
    }
    append(&lv, (0..100).map(|i| ind(&format!("172.16.0.{i}"))).collect()).await;
    let lt = start(&fed, "lt").await;
    let took = wait_for(&lt, "ee", 10_000, 120).await;
    wait_for(&lt, "lv", 100, 30).await;
    println!("lt caught up 10,100 entries in {took:?}");
    let heads = ee.handle.store.heads();
    let deadline = Instant::now() + Duration::from_secs(30);
    while lv.handle.store.heads() != heads || lt.handle.store.heads() != heads {
        assert!(Instant::now() < deadline, "heads did not converge");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(lt.handle.store.verify_chains(&config(&fed, "lt").roster).unwrap(), 10_101);
    for n in [ee, lv, lt] {
        n.stop().await;
    }
}

/// Replaces a node's TLS certificate and key with another's.
fn swap_tls(node_cfg: &mut Config, cert: &Path, key: &Path) {
    node_cfg.tls_cert = cert.to_owned();
    node_cfg.tls_key = key.to_owned();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_ca_and_wrong_name_are_refused() {
    let fed = dev_federation(&["ee", "lv", "lt"]);
    let other = dev_federation(&["ee", "lv", "lt"]);
    let ee = start(&fed, "ee").await;
    // lv presents a certificate for "lv" from another federation's CA.
    let mut lv_cfg = config(&fed, "lv");
    let other_lv = config(&other, "lv");
    swap_tls(&mut lv_cfg, &other_lv.tls_cert, &other_lv.tls_key);
    // A node configured with another member's certificate refuses to start.
    let mut lt_cfg = config(&fed, "lt");
    let real_lv = config(&fed, "lv");
    swap_tls(&mut lt_cfg, &real_lv.tls_cert, &real_lv.tls_key);
    let err = node::start(lt_cfg.clone()).await.err().expect("a certificate for lv cannot start lt");
    assert!(err.to_string().contains("does not name this node lt"), "{err}");
    // An endpoint at lt's address presents the real federation's certificate for "lv": valid
    // CA, wrong name for the address ee dials.
    let lv_net = NetConfig {
        me: lt_cfg.node.clone(),
        listen: lt_cfg.quic_listen,
        roster: lt_cfg.roster.clone(),
        ca_cert: lt_cfg.ca_cert.clone(),
        cert: real_lv.tls_cert.clone(),
        key: real_lv.tls_key.clone(),
        blocked: Default::default(),
    };
    let lv_as_me = NetConfig { me: real_lv.node.clone(), ..lv_net };
    let (server, _) = net::tls_configs(&lv_as_me).unwrap();
    let impostor = quinn::Endpoint::server(server, lt_cfg.quic_listen).unwrap();
    let lv = node::start(lv_cfg).await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let st = ee.handle.status().await.unwrap();
    assert!(st.connected.is_empty(), "ee accepted an impostor: {:?}", st.connected);
    assert!(lv.handle.status().await.unwrap().connected.is_empty());
    impostor.close(0u32.into(), b"done");
    for n in [ee, lv] {
        n.stop().await;
    }
}

/// A rogue member: a raw QUIC client holding `lv`'s real credentials, sending whatever it likes.
async fn rogue_connection(fed: &Fed, as_node: &str, to: &Running) -> quinn::Connection {
    let c = config(fed, as_node);
    let net_cfg = NetConfig {
        me: c.node.clone(),
        listen: "127.0.0.1:0".parse().unwrap(),
        roster: c.roster.clone(),
        ca_cert: c.ca_cert.clone(),
        cert: c.tls_cert.clone(),
        key: c.tls_key.clone(),
        blocked: Default::default(),
    };
    let (_, client) = net::tls_configs(&net_cfg).unwrap();
    let mut ep = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    ep.set_default_client_config(client);
    ep.connect(to.quic_addr, to.handle.name.as_str()).unwrap().await.unwrap()
}

async fn send_raw(conn: &quinn::Connection, bytes: &[u8]) {
    let mut s = conn.open_uni().await.unwrap();
    s.write_all(bytes).await.unwrap();
    let _ = s.finish();
}

async fn closed_with(conn: &quinn::Connection, code: u32) {
    let err =
        tokio::time::timeout(Duration::from_secs(10), conn.closed()).await.expect("connection closed by the node");
    match err {
        quinn::ConnectionError::ApplicationClosed(c) => assert_eq!(c.error_code, quinn::VarInt::from_u32(code)),
        other => panic!("unexpected close: {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_peer_input_is_refused_and_honest_entries_flow() {
    let fed = dev_federation(&["ee", "lv", "lt"]);
    let ee = start(&fed, "ee").await;
    let lt = start(&fed, "lt").await;
    // Oversized frame.
    let c = rogue_connection(&fed, "lv", &lt).await;
    send_raw(&c, &((wire::FRAME_BYTES_MAX as u32 + 1).to_be_bytes())).await;
    closed_with(&c, net::close_code::FRAME_TOO_LARGE).await;
    // Garbage.
    let c = rogue_connection(&fed, "lv", &lt).await;
    let mut junk = 64u32.to_be_bytes().to_vec();
    junk.extend([0xff; 64]);
    send_raw(&c, &junk).await;
    closed_with(&c, net::close_code::MALFORMED).await;
    // A tampered entry and a forked entry of ee, relayed by the rogue lv.
    let key = ctix::pki::load_node_key(&config(&fed, "ee").signing_key).unwrap();
    let honest = append(&ee, vec![ind("203.0.113.50")]).await;
    wait_for(&lt, "ee", 1, 20).await;
    let mut tampered = honest[0].entry().clone();
    tampered.signature[3] ^= 1;
    let fork = VerifiedEntry::sign_own(&key, &name("ee"), None, 1, ind("203.0.113.66"));
    let c = rogue_connection(&fed, "lv", &lt).await;
    let mut s = c.open_uni().await.unwrap();
    let hello = Message::Hello { version: wire::PROTOCOL_VERSION, heads: vec![] };
    s.write_all(&wire::encode_frame(&hello)).await.unwrap();
    let entries = Message::Entries { reply_to: None, entries: vec![tampered.to_wire(), fork.entry().to_wire()] };
    s.write_all(&wire::encode_frame(&entries)).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let st = lt.handle.status().await.unwrap();
        if st.counters.rejected >= 1 && st.quarantined.contains(&name("ee")) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "lt did not reject the tampered entry and quarantine the fork: {:?}",
            st.counters
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(lt.handle.store.forks().unwrap().len(), 1);
    // lt still takes honest entries of other origins.
    let lv = start(&fed, "lv").await;
    append(&lv, vec![ind("203.0.113.77")]).await;
    wait_for(&lt, "lv", 1, 20).await;
    for n in [ee, lv, lt] {
        n.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_that_lost_its_disk_recovers_its_own_log_instead_of_forking() {
    let fed = dev_federation(&["ee", "lv"]);
    let ee = start(&fed, "ee").await;
    let lv = start(&fed, "lv").await;
    let before = append(&ee, (1..=10).map(|i| ind(&format!("203.0.113.{i}"))).collect()).await;
    wait_for(&lv, "ee", 10, 20).await;
    let data_dir = config(&fed, "ee").data_dir;
    ee.stop().await;
    std::fs::remove_dir_all(&data_dir).unwrap(); // the disk is lost
    let ee = start(&fed, "ee").await;
    // The first append waits for the own-head check, which pulls ee:1..10 back from lv.
    let after = append(&ee, vec![ind("203.0.113.99")]).await;
    assert_eq!(after[0].header().seq, 11, "ee continued its log instead of restarting at 1");
    assert_eq!(after[0].header().prev_hash, before[9].hash());
    wait_for(&lv, "ee", 11, 20).await;
    assert!(lv.handle.store.quarantined().is_empty(), "lv saw no fork");
    assert!(lv.handle.store.forks().unwrap().is_empty());
    for n in [ee, lv] {
        n.stop().await;
    }
}
