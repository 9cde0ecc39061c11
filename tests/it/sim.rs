//! Deterministic simulation of the replication state machine: random faults, then heal, then
//! every node must hold every entry. Set `CTIX_SIM_SEEDS=N` for more seeds and
//! `CTIX_SIM_SEED=S` to replay one.

use ctix::model::{Body, Indicator, IndicatorInput};
use ctix::sim::{Sim, SimConfig};

/// Seeds that once failed, kept as regressions.
const PINNED: &[u64] = &[];

fn run_seed(seed: u64, nodes: &[&str]) -> Result<Sim, String> {
    let mut sim = Sim::new(SimConfig::faulty(seed, nodes));
    sim.run().map_err(|e| format!("seed {seed}: {e} (replay: CTIX_SIM_SEED={seed} cargo test --test it sim::)"))?;
    Ok(sim)
}

#[test]
fn random_faults_then_heal_converges() {
    let seeds: Vec<u64> = match std::env::var("CTIX_SIM_SEED") {
        Ok(s) => vec![s.parse().expect("CTIX_SIM_SEED is a number")],
        Err(_) => {
            let n: u64 = std::env::var("CTIX_SIM_SEEDS").ok().and_then(|v| v.parse().ok()).unwrap_or(200);
            PINNED.iter().copied().chain(0..n).collect()
        }
    };
    let mut appended = 0;
    let mut worst_converge = 0;
    for &seed in &seeds {
        let nodes: &[&str] = if seed % 4 == 3 { &["ee", "lv", "lt", "pl", "fi"] } else { &["ee", "lv", "lt"] };
        let sim = run_seed(seed, nodes).unwrap_or_else(|e| panic!("{e}"));
        appended += sim.stats.appended;
        worst_converge = worst_converge.max(sim.stats.converge_ms);
    }
    println!(
        "sim: {} seeds, {appended} entries appended, slowest convergence {worst_converge} ms after heal",
        seeds.len()
    );
    assert!(appended > seeds.len() as u64 * 10, "the workload appended too little to test anything");
}

fn ind(v: &str) -> Body {
    let input = IndicatorInput { itype: "ipv4".into(), value: v.into(), ..Default::default() };
    Body::Indicator(Indicator::from_input(&input, 0).unwrap())
}

#[test]
fn cut_link_heals_through_a_third_node() {
    let mut cfg = SimConfig::faulty(7, &["ee", "lv", "lt"]);
    (cfg.drop, cfg.duplicate, cfg.partition, cfg.restart, cfg.append_rate) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let mut sim = Sim::new(cfg);
    sim.cut_link(0, 2); // ee — lt
    for i in 0..20 {
        sim.append(0, ind(&format!("198.51.100.{i}")));
    }
    for _ in 0..40 {
        sim.step(false); // 2 s of simulated time, link still cut
    }
    let lt = ctix::model::NodeName::new("ee").unwrap();
    assert_eq!(sim.node_log(2).log(&lt).len(), 20, "lt got ee's entries via lv");
    sim.check().unwrap();
}

#[test]
fn red_bodies_reach_only_their_audience() {
    let mut cfg = SimConfig::faulty(9, &["ee", "lv", "lt"]);
    (cfg.drop, cfg.duplicate, cfg.partition, cfg.restart, cfg.append_rate) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let mut sim = Sim::new(cfg);
    // ee–lt cut: lt first receives lv's redacted stub, then the body once the link heals.
    sim.cut_link(0, 2);
    let input = IndicatorInput {
        itype: "domain".into(),
        value: "c2.example.org".into(),
        tlp: "red".into(),
        recipients: vec!["lt".into()],
        ..Default::default()
    };
    sim.append(0, Body::Indicator(Indicator::from_input(&input, 0).unwrap()));
    for _ in 0..20 {
        sim.step(false);
    }
    let ee = ctix::model::NodeName::new("ee").unwrap();
    assert!(sim.node_log(1).log(&ee)[0].entry().body.is_none(), "lv is not in the audience: stub only");
    assert!(sim.node_log(2).log(&ee)[0].entry().body.is_none(), "lt has only lv's stub while the link is cut");
    sim.heal();
    for _ in 0..200 {
        sim.step(false);
    }
    assert!(sim.node_log(2).log(&ee)[0].entry().body.is_some(), "lt fetched the body after the heal");
    sim.check().unwrap();
}
