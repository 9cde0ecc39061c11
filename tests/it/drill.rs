//! Drills on real three-node federations on loopback: the example scenarios, a cut link, a node
//! stopped during a drill, a node that refuses faults, an unacknowledged situation update, and
//! drill data kept apart from intelligence.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ctix::drill::Record;
use ctix::drill::report::{self, Report};
use ctix::model::EntryId;
use ctix::model::drill::Scenario;
use ctix::node::{self, Running};
use ctix::store::Query;

use crate::federation::{Fed, config, dev_federation};

const NODES: [&str; 3] = ["ee", "lv", "lt"];

async fn start_with(fed: &Fed, node: &str, allow_faults: bool) -> Running {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut cfg = config(fed, node);
        cfg.drill_allow_faults = allow_faults;
        match node::start(cfg).await {
            Ok(r) => return r,
            Err(node::NodeError::Net(ctix::net::NetError::Bind { .. })) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("starting {node}: {e}"),
        }
    }
}

async fn federation(no_faults: &[&str]) -> (Fed, BTreeMap<String, Running>) {
    let fed = dev_federation(&NODES);
    let mut nodes = BTreeMap::new();
    for n in NODES {
        nodes.insert(n.to_string(), start_with(&fed, n, !no_faults.contains(&n)).await);
    }
    wait_connected(&nodes).await;
    (fed, nodes)
}

async fn wait_connected(nodes: &BTreeMap<String, Running>) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut all = true;
        for r in nodes.values() {
            all &= r.handle.status().await.unwrap().connected.len() == nodes.len() - 1;
        }
        if all {
            return;
        }
        assert!(Instant::now() < deadline, "nodes did not connect");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn example(name: &str) -> Scenario {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/drills").join(name);
    ctix::drill::scenario::load(&path).unwrap()
}

fn records(n: &Running, drill: &EntryId) -> Vec<Record> {
    n.handle.store.drill_records(drill).unwrap().iter().filter_map(Record::from_entry).collect()
}

/// Waits until `n` holds the drill's end record and `want` receipts-or-more, then a little for
/// stragglers; returns the report built at `n`.
async fn wait_end(n: &Running, drill: &EntryId, secs: u64) -> Report {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let recs = records(n, drill);
        let ended = recs.iter().any(|r| matches!(r.record, ctix::model::drill::DrillRecord::End { .. }));
        if ended {
            // Receipts written just before the end may still be on their way.
            tokio::time::sleep(Duration::from_millis(500)).await;
            return report::build(&records(n, drill), ctix::now_ms(), &[]).unwrap();
        }
        assert!(Instant::now() < deadline, "drill {drill} did not end within {secs} s at {}", n.handle.name);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn stop_all(nodes: BTreeMap<String, Running>) {
    for (_, n) in nodes {
        n.stop().await;
    }
}

use ctix::drill::report::{FaultNodeState, Status};
use ctix::drill::runner::DrillError;
use ctix::model::drill::{Inject, InjectAction, Objective, ObjectiveKind};
use ctix::model::{IndicatorType, Tlp};

use crate::support::name as n;

fn wave(name: &str, at_ms: u64, from: &str, count: u32) -> Inject {
    Inject {
        name: name.into(),
        at_ms,
        from: Some(n(from)),
        action: InjectAction::Indicators {
            count,
            types: vec![IndicatorType::Ipv4, IndicatorType::Domain],
            tlp: Tlp::Amber,
        },
    }
}

fn scenario(name: &str, delivery_ms: u64, injects: Vec<Inject>) -> Scenario {
    let s = Scenario {
        name: name.into(),
        description: String::new(),
        participants: vec![n("ee"), n("lt"), n("lv")],
        objectives: vec![Objective { name: "delivery".into(), kind: ObjectiveKind::Delivery, within_ms: delivery_ms }],
        injects,
    };
    s.validate().unwrap();
    s
}

/// Acknowledges a situation update at `node` as soon as it has arrived there.
async fn ack_when_arrived(n: &Running, drill: &EntryId, inject: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match n.handle.drill_ack(drill.clone(), inject.into(), "team informed".into()).await {
            Ok(_) => return,
            // Not here yet: the start record or the inject is still on its way.
            Err(node::NodeError::Drill(DrillError::NotReceived(_) | DrillError::Unknown(_)))
                if Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(e) => panic!("ack of {inject} at {}: {e}", n.handle.name),
        }
    }
}

/// Every inject reached every participant, with a measured time.
fn assert_all_delivered(r: &Report) {
    assert_eq!(r.injects.len(), r.injects.iter().map(|i| &i.name).collect::<std::collections::BTreeSet<_>>().len());
    for i in &r.injects {
        assert_eq!(i.cells.len(), 3, "{}: a cell per participant", i.name);
        for (node, c) in &i.cells {
            if node == &i.source {
                continue;
            }
            assert!(c.delivered_after_ms.is_some(), "{} did not reach {node}: {c:?}", i.name);
            assert_ne!(c.status, Status::Missed, "{} at {node}: {c:?}", i.name);
        }
    }
}

async fn run_example(file: &str, speed: u32, human_acks: &[&str]) -> (Report, BTreeMap<String, Running>, EntryId) {
    let (fed, nodes) = federation(&[]).await;
    std::mem::forget(fed); // the directory must outlive the nodes; the OS cleans up tmp
    let s = example(file).scaled(speed);
    let drill = nodes["ee"].handle.drill_start(s).await.unwrap();
    for inject in human_acks {
        for n in nodes.values() {
            ack_when_arrived(n, &drill, inject).await;
        }
    }
    let r = wait_end(&nodes["ee"], &drill, 180).await;
    (r, nodes, drill)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn comms_check_example_reaches_everyone() {
    let (r, nodes, _) = run_example("comms-check.toml", 2, &[]).await;
    assert_all_delivered(&r);
    assert!(r.injects.iter().any(|i| i.kind == "comm_check"));
    for i in r.injects.iter().filter(|i| i.kind == "comm_check") {
        for (node, c) in &i.cells {
            if *node != i.source {
                assert!(c.acked_after_ms.is_some(), "{node} answered the comm check: {c:?}");
            }
        }
    }
    stop_all(nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ddos_example_relays_around_the_cut_link() {
    let (r, nodes, _) = run_example("ddos-cut-link.toml", 2, &[]).await;
    assert_all_delivered(&r);
    let cut = r.faults.iter().find(|f| f.kind == "cut_link").expect("the scenario cuts a link");
    assert!(cut.nodes.iter().all(|f| f.state == FaultNodeState::Applied), "{cut:?}");
    assert!(!cut.relayed.is_empty(), "deliveries during the cut went through a third node: {cut:?}");
    for d in &cut.relayed {
        assert_ne!(d.via, d.receiver);
    }
    // While EE–LT is cut, LT gets EE's waves from LV.
    assert!(
        r.injects
            .iter()
            .any(|i| i.source == "ee" && i.cells["lt"].relayed && i.cells["lt"].via.as_deref() == Some("lv")),
        "{:#?}",
        r.injects
    );
    stop_all(nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ransomware_example_with_human_acknowledgements() {
    let situations: Vec<String> = example("ransomware-energy.toml")
        .injects
        .iter()
        .filter(|i| i.action.needs_human())
        .map(|i| i.name.clone())
        .collect();
    assert!(!situations.is_empty(), "the example has a situation update");
    let names: Vec<&str> = situations.iter().map(String::as_str).collect();
    let (r, nodes, _) = run_example("ransomware-energy.toml", 4, &names).await;
    assert_all_delivered(&r);
    for i in r.injects.iter().filter(|i| i.human) {
        for (node, c) in &i.cells {
            assert!(c.acked_after_ms.is_some(), "{node} acknowledged {}: {c:?}", i.name);
        }
    }
    assert!(r.latency.count > 0 && r.latency.p50_ms.is_some());
    stop_all(nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stopped_node_is_missed_then_catches_up() {
    let (fed, mut nodes) = federation(&[]).await;
    let s = scenario("stopped-node", 1_000, vec![wave("before", 0, "ee", 5), wave("during", 2_500, "lv", 5)]);
    let drill = nodes["ee"].handle.drill_start(s).await.unwrap();
    // LT holds the first wave, then goes down before the second.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !records(&nodes["ee"], &drill).iter().any(|r| {
        r.id.origin.as_str() == "lt"
            && matches!(&r.record, ctix::model::drill::DrillRecord::Ack { inject, .. } if inject == "before")
    }) {
        assert!(Instant::now() < deadline, "lt never received the first wave");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    nodes.remove("lt").unwrap().stop().await;
    // The drill ends without LT; then LT comes back and catches up.
    let r = wait_end(&nodes["ee"], &drill, 30).await;
    assert_eq!(r.injects.iter().find(|i| i.name == "during").unwrap().cells["lt"].status, Status::Missed);
    nodes.insert("lt".into(), start_with(&fed, "lt", true).await);
    let deadline = Instant::now() + Duration::from_secs(30);
    let r = loop {
        let r = report::build(&records(&nodes["ee"], &drill), ctix::now_ms(), &[]).unwrap();
        let c = &r.injects.iter().find(|i| i.name == "during").unwrap().cells["lt"];
        if c.caught_up_after_ms.is_some() {
            break r;
        }
        assert!(Instant::now() < deadline, "lt did not catch up: {c:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let before = &r.injects.iter().find(|i| i.name == "before").unwrap().cells["lt"];
    assert_eq!(before.status, Status::Success, "{before:?}");
    let during = &r.injects.iter().find(|i| i.name == "during").unwrap().cells["lt"];
    assert_eq!(during.status, Status::Missed, "caught up after the end is still a miss: {during:?}");
    stop_all(nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refused_faults_and_unacknowledged_situations_are_reported() {
    let (_fed, nodes) = federation(&["lt"]).await;
    let s = scenario(
        "refusals",
        2_000,
        vec![
            Inject {
                name: "cut".into(),
                at_ms: 0,
                from: None,
                action: InjectAction::CutLink { a: n("ee"), b: n("lt"), duration_ms: 1_000 },
            },
            Inject {
                name: "sitrep".into(),
                at_ms: 0,
                from: None,
                action: InjectAction::Situation { text: "escalate to the ministry?".into(), within_ms: 1_500 },
            },
            wave("wave", 200, "lv", 3),
        ],
    );
    let drill = nodes["ee"].handle.drill_start(s).await.unwrap();
    ack_when_arrived(&nodes["lv"], &drill, "sitrep").await;
    let r = wait_end(&nodes["ee"], &drill, 30).await;
    let cut = r.injects.iter().find(|i| i.name == "cut").unwrap();
    assert_eq!(cut.cells["lt"].status, Status::NotPermitted, "{cut:?}");
    let fault = r.faults.iter().find(|f| f.inject == "cut").unwrap();
    let state = |node: &str| fault.nodes.iter().find(|f| f.node == node).unwrap().state;
    assert_eq!(state("lt"), FaultNodeState::NotPermitted);
    assert_eq!(state("ee"), FaultNodeState::Applied);
    let sitrep = r.injects.iter().find(|i| i.name == "sitrep").unwrap();
    assert_eq!(sitrep.cells["lt"].status, Status::Missed, "nobody at LT acknowledged: {sitrep:?}");
    assert_eq!(sitrep.cells["lv"].status, Status::Success, "LV acknowledged in time: {sitrep:?}");
    assert!(sitrep.cells["lt"].delivered_after_ms.is_some(), "delivered, just not acknowledged");

    // Drill data never shows as intelligence: not in queries, nor in any export (STIX, TAXII,
    // MISP feed), and a finished drill can be purged.
    for (name, node) in &nodes {
        let page = node.handle.store.query(&Query { limit: 1000, ..Default::default() }).unwrap();
        assert!(page.items.is_empty(), "drill indicators are not query results: {:?}", page.items.len());
        assert!(node.handle.store.arrivals(0, 1000).unwrap().0.is_empty(), "drill records never arrive");
        let api = crate::api::Api::new(&_fed, name, node);
        let taxii = api.get("/taxii2/api/collections/all/objects/?match[version]=all").await;
        assert_eq!(taxii.status, 200, "{}", taxii.text());
        assert_eq!(
            taxii.json::<serde_json::Value>(),
            serde_json::json!({ "more": false }),
            "TAXII serves no drill data"
        );
        let feed = api.get("/api/v1/misp-feed/manifest.json").await;
        assert_eq!(feed.text(), "{}", "the MISP feed holds no drill data");
        let dir = tempfile::tempdir().unwrap();
        let bundle = dir.path().join("b.json");
        let url = format!("http://{}", api.addr);
        let args = ["export", "--format", "stix", "--out", bundle.to_str().unwrap()];
        crate::cli::ctix(&args, &[("--api", &url), ("--token", &api.ro)]).await.ok();
        let b: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&bundle).unwrap()).unwrap();
        assert_eq!(b["objects"], serde_json::json!([]), "the STIX export holds no drill data: {b}");
    }
    assert!(nodes["ee"].handle.drill_list().await.unwrap().iter().any(|d| d.id == drill));
    let purged = nodes["lv"].handle.drill_purge(drill.clone()).await.unwrap();
    assert!(purged >= 5, "{purged}");
    assert!(records(&nodes["lv"], &drill).is_empty());
    assert!(!nodes["lv"].handle.store.drills().unwrap().contains(&drill));
    let roster = config(&_fed, "lv").roster;
    nodes["lv"].handle.store.verify_chains(&roster).expect("chains still verify after a purge");
    stop_all(nodes).await;
}

/// `ctix drill simulate` with a fixed seed writes byte-identical JSON reports, with every inject
/// delivered; a different seed changes the measured times.
#[test]
fn simulate_is_reproducible_by_seed() {
    let scenario = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/drills/ddos-cut-link.toml");
    let run = |seed: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_ctix"))
            .args(["drill", "simulate"])
            .arg(&scenario)
            .args(["--seed", seed, "--latency-ms", "5-80", "--format", "json"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    };
    let (a, b, c) = (run("7"), run("7"), run("8"));
    assert_eq!(a, b, "same seed, same report");
    assert_ne!(a, c, "another seed draws other latencies");
    let r: Report = serde_json::from_slice(&a).unwrap();
    assert_all_delivered(&r);
}
