//! Backup and restore as an operator runs them, on real nodes over QUIC: a backup of a running
//! node while it ingests, wipe, restore, restart and convergence; refusal of altered backups; and
//! the stale node key (a node restored from an old backup, or rejoining with an empty store,
//! fetches its own log back before it signs again).

use std::path::Path;
use std::time::{Duration, Instant};

use ctix::backup;
use ctix::client::Api;
use ctix::config::{Config, Role};
use ctix::log::VerifiedEntry;
use ctix::node::{NodeError, Running};
use sha2::{Digest, Sha256};

use crate::federation::{append, config, dev_federation, ind, start, wait_for};
use crate::support::name;

fn api(n: &Running, cfg: &Config, role: Role) -> Api {
    let token = cfg.api_tokens.iter().find(|t| t.role == role).expect("a token of that role");
    Api::new(&format!("http://{}", n.api_addr), &token.token).unwrap()
}

/// `ctix backup --out FILE` against a running node, as the CLI runs it (a blocking client).
async fn backup_of(n: &Running, cfg: &Config, out: &Path) {
    let (api, roster, out) = (api(n, cfg, Role::Rw), cfg.roster.clone(), out.to_owned());
    tokio::task::spawn_blocking(move || backup::console::backup_from_node(&api, Some(&roster), &out))
        .await
        .unwrap()
        .unwrap();
}

/// `ctix restore FILE --config …` on a stopped node.
fn restore(cfg: &Config, file: &Path, force: bool) -> anyhow::Result<()> {
    backup::console::restore(cfg, Path::new("ctix.toml"), file, force, false)
}

/// Appends one entry, retrying while the node answers `NotReady` (restored, not yet confirmed).
async fn append_when_ready(n: &Running, v: &str, secs: u64) -> VerifiedEntry {
    let start = Instant::now();
    loop {
        match n.handle.append(vec![ind(v)]).await {
            Ok(mut r) => return r.pop().unwrap().unwrap(),
            Err(NodeError::NotReady(_)) if start.elapsed() < Duration::from_secs(secs) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("append on {} failed: {e}", n.handle.name),
        }
    }
}

/// Starts a node cut off from `blocked` peers (`NodeHandle::set_blocked` reconnects them). The
/// peers keep running: a stopped peer's port could be taken by a concurrent test meanwhile.
async fn start_cut_off(fed: &crate::federation::Fed, node: &str, blocked: &[&str]) -> Running {
    let mut cfg = config(fed, node);
    cfg.blocked_peers = blocked.iter().map(|n| name(n)).collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match ctix::node::start(cfg.clone()).await {
            Ok(r) => return r,
            Err(NodeError::Net(ctix::net::NetError::Bind { .. })) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("starting {node}: {e}"),
        }
    }
}

fn entries_of(n: &Running) -> u64 {
    n.handle.store.heads().values().map(|t| t.seq).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_while_ingesting_then_wipe_restore_and_converge() {
    let fed = dev_federation(&["ee", "lv", "lt"]);
    let (ee, lv, lt) = (start(&fed, "ee").await, start(&fed, "lv").await, start(&fed, "lt").await);
    let cfg = config(&fed, "ee");
    append(&lv, (1..=50).map(|i| ind(&format!("198.51.100.{i}"))).collect()).await;
    // ee ingests in the background while the backup streams.
    let writer = {
        let h = ee.handle.clone();
        tokio::spawn(async move {
            for round in 0..40 {
                let bodies = (0..25).map(|i| ind(&format!("10.{round}.{i}.1"))).collect();
                h.append(bodies).await.unwrap();
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    wait_for(&ee, "ee", 100, 30).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ee.backup");
    backup_of(&ee, &cfg, &file).await;
    writer.await.unwrap();
    let final_head = ee.handle.store.head(&name("ee")).unwrap();
    assert_eq!(final_head.seq, 1000);
    // The backup is consistent: it verifies on its own, each log whole up to the heads it read.
    let s = backup::verify(&mut std::fs::File::open(&file).unwrap(), Some(&cfg.roster), &mut |_, _| {}).unwrap();
    let backed_up = s.header.heads[&name("ee")].seq;
    assert!((100..=1000).contains(&backed_up), "backup taken while ingesting: ee at {backed_up}");
    assert_eq!(s.header.heads[&name("lv")].seq, 50);
    assert_eq!(s.entries, s.header.entries());
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);

    wait_for(&lv, "ee", 1000, 30).await;
    wait_for(&lt, "ee", 1000, 30).await;
    ee.stop().await;
    std::fs::remove_dir_all(&cfg.data_dir).unwrap(); // the disk is lost
    restore(&cfg, &file, false).unwrap();
    let ee = start(&fed, "ee").await;
    // The restored node pulls back what it signed after the backup before it signs again.
    let next = append_when_ready(&ee, "203.0.113.250", 60).await;
    assert_eq!(next.header().seq, 1001, "ee continued its real log");
    assert_eq!(next.header().prev_hash, final_head.hash);
    for n in [&lv, &lt] {
        wait_for(n, "ee", 1001, 30).await;
        assert!(n.handle.store.quarantined().is_empty(), "{} saw no fork", n.handle.name);
    }
    wait_for(&ee, "lv", 50, 30).await;
    assert_eq!(entries_of(&ee), entries_of(&lv), "nothing lost: ee holds what lv holds");
    assert!(ee.handle.store.quarantined().is_empty());
    for n in [ee, lv, lt] {
        n.stop().await;
    }
}

/// The record boundaries of a backup file: (tag, payload range).
fn records(b: &[u8]) -> Vec<(u8, std::ops::Range<usize>)> {
    let mut out = Vec::new();
    let mut at = 16;
    while at < b.len() {
        let len = u32::from_be_bytes(b[at + 1..at + 5].try_into().unwrap()) as usize;
        out.push((b[at], at + 5..at + 5 + len));
        at += 5 + len;
    }
    out
}

/// Recomputes the end record's checksum, as someone altering a backup would.
fn reseal(b: &mut [u8]) {
    let (tag, end) = records(b).pop().unwrap();
    assert_eq!(tag, 4);
    let sum: [u8; 32] = Sha256::digest(&b[..end.start - 5]).into();
    b[end.end - 32..end.end].copy_from_slice(&sum);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_refuses_altered_backups_and_a_store_in_use() {
    let fed = dev_federation(&["ee", "lv"]);
    let ee = start(&fed, "ee").await;
    let cfg = config(&fed, "ee");
    append(&ee, (1..=20).map(|i| ind(&format!("203.0.113.{i}"))).collect()).await;
    // A read-only token may not take a backup: it holds every body, TLP:RED included.
    let ro = api(&ee, &cfg, Role::Ro);
    let err = tokio::task::spawn_blocking(move || ro.get_stream("/api/v1/backup").map(|_| ())).await.unwrap();
    assert!(err.unwrap_err().to_string().contains("403 forbidden"));
    ee.stop().await;

    // Offline backup of the stopped node.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ee.backup");
    backup::console::backup_offline(&cfg, &file).unwrap();
    let good = std::fs::read(&file).unwrap();
    let recs = records(&good);
    assert_eq!(recs.first().unwrap().0, 1, "header first");
    assert_eq!(recs.iter().filter(|r| r.0 == 2).count(), 20, "one record per entry");
    // The third entry record (ee:3): header length byte, header, 64, signature, body.
    let (_, e3) = recs[3].clone();
    let sig_at = e3.start + 1 + good[e3.start] as usize + 1;

    let check = |bytes: Vec<u8>, want: &str| {
        let path = dir.path().join("altered.backup");
        std::fs::write(&path, bytes).unwrap();
        let restore_dir = tempfile::tempdir().unwrap();
        let mut c = cfg.clone();
        c.data_dir = restore_dir.path().join("data");
        let err = restore(&c, &path, false).expect_err("refused");
        let msg = format!("{err:#}");
        assert!(msg.contains(want), "expected {want:?} in: {msg}");
        assert!(!c.data_dir.exists(), "nothing written for a refused backup");
    };
    // A flipped byte anywhere: the checksum.
    let mut b = good.clone();
    b[sig_at + 3] ^= 1;
    check(b, "backup checksum does not match");
    // A forged signature with the checksum recomputed: the entry is named.
    let mut b = good.clone();
    b[sig_at + 3] ^= 1;
    reseal(&mut b);
    check(b, "entry ee:3 in the backup does not verify against the roster: bad signature on ee:3");
    // A changed body with the checksum recomputed.
    let mut b = good.clone();
    b[e3.end - 1] ^= 1;
    reseal(&mut b);
    check(b, "entry ee:3 in the backup does not verify");
    // An entry left out: the chain (and the header's promise) breaks.
    let mut b = good.clone();
    b.drain(e3.start - 5..e3.end);
    reseal(&mut b);
    check(b, "out of order");
    // Cut short.
    check(good[..good.len() - 40].to_vec(), "before its end record");
    check(b"hello".to_vec(), "not a ctix backup");
    // Another node's backup.
    let mut lv_cfg = config(&fed, "lv");
    lv_cfg.data_dir = dir.path().join("lv-data");
    let err = restore(&lv_cfg, &file, false).unwrap_err();
    assert!(err.to_string().contains("is a backup of node ee"), "{err}");

    // The real store is not empty: refused without --force, merged with it.
    let err = restore(&cfg, &file, false).unwrap_err();
    assert!(err.to_string().contains("is not empty"), "{err}");
    restore(&cfg, &file, true).unwrap();
    // A store in use by a running node is refused.
    let ee = start(&fed, "ee").await;
    let err = restore(&cfg, &file, true).unwrap_err();
    assert!(format!("{err:#}").contains("in use"), "{err:#}");
    ee.stop().await;
    // And the untouched backup restores into an empty dir.
    let mut c = cfg.clone();
    c.data_dir = dir.path().join("fresh");
    restore(&c, &file, false).unwrap();
    let store = ctix::store::Store::open(&c.data_dir, &Default::default()).unwrap();
    assert_eq!(store.head(&name("ee")).unwrap().seq, 20);
    assert!(store.own_head_unconfirmed().unwrap(), "a restored store waits for a peer's confirmation");
    assert_eq!(store.verify_chains(&cfg.roster).unwrap(), 20);
}

/// The stale node key: ee restored from a backup older than what its peers hold of its log must
/// not sign at a seq it already used. Alone it refuses (not waived by `on_no_peers = "proceed"`);
/// with its peers back it fetches its own entries first and continues its real log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_restored_from_an_old_backup_does_not_fork_its_log() {
    let fed = dev_federation(&["ee", "lv", "lt"]);
    let (ee, lv, lt) = (start(&fed, "ee").await, start(&fed, "lv").await, start(&fed, "lt").await);
    let cfg = config(&fed, "ee");
    append(&ee, (1..=10).map(|i| ind(&format!("203.0.113.{i}"))).collect()).await;
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("old.backup");
    backup_of(&ee, &cfg, &old).await;
    let later = append(&ee, (11..=30).map(|i| ind(&format!("203.0.113.{i}"))).collect()).await;
    wait_for(&lv, "ee", 30, 20).await;
    wait_for(&lt, "ee", 30, 20).await;
    ee.stop().await;
    std::fs::remove_dir_all(&cfg.data_dir).unwrap();
    restore(&cfg, &old, false).unwrap();

    // Alone, past own_head_wait_ms (2 s in tests), it still signs nothing.
    let ee = start_cut_off(&fed, "ee", &["lv", "lt"]).await;
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    match ee.handle.append(vec![ind("192.0.2.1")]).await {
        Err(NodeError::NotReady(m)) => assert!(m.contains("restored") && m.contains("no peer is connected"), "{m}"),
        other => panic!("a restored node signed before any peer confirmed its head: {other:?}"),
    }
    assert!(!ee.handle.status().await.unwrap().ready);
    assert_eq!(ee.handle.store.head(&name("ee")).unwrap().seq, 10);

    ee.handle.set_blocked(name("lv"), false).await.unwrap();
    ee.handle.set_blocked(name("lt"), false).await.unwrap();
    let next = append_when_ready(&ee, "192.0.2.2", 60).await;
    assert_eq!(next.header().seq, 31, "ee fetched ee:11..30 back and continued after them");
    assert_eq!(next.header().prev_hash, later.last().unwrap().hash());
    for n in [&lv, &lt] {
        wait_for(n, "ee", 31, 30).await;
        assert!(n.handle.store.quarantined().is_empty() && n.handle.store.forks().unwrap().is_empty());
    }
    // Confirmed once, durably: a restart does not wait again.
    ee.stop().await;
    let store = ctix::store::Store::open(&cfg.data_dir, &Default::default()).unwrap();
    assert!(!store.own_head_unconfirmed().unwrap());
    drop(store);
    for n in [lv, lt] {
        n.stop().await;
    }
}

/// A node whose store was lost and that has no backup: `ctix store rejoin` on the empty data dir
/// makes it fetch its log back before signing, even if its peers are slow to come.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejoin_with_an_empty_store_fetches_the_own_log_first() {
    let fed = dev_federation(&["ee", "lv"]);
    let (ee, lv) = (start(&fed, "ee").await, start(&fed, "lv").await);
    let cfg = config(&fed, "ee");
    let before = append(&ee, (1..=15).map(|i| ind(&format!("203.0.113.{i}"))).collect()).await;
    wait_for(&lv, "ee", 15, 20).await;
    ee.stop().await;
    std::fs::remove_dir_all(&cfg.data_dir).unwrap();
    backup::console::rejoin(&cfg.data_dir).unwrap();
    let ee = start_cut_off(&fed, "ee", &["lv"]).await;
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert!(matches!(ee.handle.append(vec![ind("192.0.2.1")]).await, Err(NodeError::NotReady(_))));
    ee.handle.set_blocked(name("lv"), false).await.unwrap();
    let next = append_when_ready(&ee, "192.0.2.2", 60).await;
    assert_eq!(next.header().seq, 16);
    assert_eq!(next.header().prev_hash, before.last().unwrap().hash());
    wait_for(&lv, "ee", 16, 20).await;
    assert!(lv.handle.store.quarantined().is_empty());
    for n in [ee, lv] {
        n.stop().await;
    }
}
