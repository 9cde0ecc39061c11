//! Store append throughput: group commit sizes × durability (flush+fsync vs flush only); then
//! the time of one lookup by value and by STIX id (`Store::by_content`, `Store::by_stix_uuid`,
//! which scan the `H` hint rows) in a store of 100,000 entries.
//! Run with `cargo bench --bench store`. Prints medians of several runs, side by side, so the
//! cost of the fsync that makes acknowledgements survive a power cut is visible as a ratio.

use std::time::Instant;

use ctix::model::{Body, Indicator, IndicatorInput, NodeName};
use ctix::store::{Durability, Store, StoreOptions};
use ed25519_dalek::SigningKey;

const RUNS: usize = 5;

fn bodies(n: usize, salt: usize) -> Vec<Body> {
    (0..n)
        .map(|i| {
            let input = IndicatorInput {
                itype: "domain".into(),
                value: format!("h{salt}-{i}.example.com"),
                description: "x".repeat(120),
                ..Default::default()
            };
            Body::Indicator(Indicator::from_input(&input, 1).unwrap())
        })
        .collect()
}

/// Entries per second appending `total` entries in batches of `batch`.
fn rate(durability: Durability, batch: usize, total: usize, run: usize) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &StoreOptions { durability, ..Default::default() }).unwrap();
    let key = SigningKey::from_bytes(&[7; 32]);
    let me = NodeName::new("ee").unwrap();
    let work: Vec<Vec<Body>> = (0..total / batch).map(|b| bodies(batch, run * 1_000_000 + b)).collect();
    let start = Instant::now();
    for w in work {
        store.append_local(&key, &me, w, 1).unwrap();
    }
    total as f64 / start.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` (CI) does not and gets a short run.
    let quick = !std::env::args().any(|a| a == "--bench");
    let runs = if quick { 1 } else { RUNS };
    println!(
        "store append, median of {runs} runs (entries/s){}",
        if quick { " [quick mode: cargo bench for real figures]" } else { "" }
    );
    println!("{:>8} {:>14} {:>14} {:>8}", "batch", "flush+fsync", "flush only", "ratio");
    for (batch, total) in [(1, 500), (10, 2_000), (100, 10_000), (1000, 20_000)] {
        let total = if quick { total / 20 } else { total };
        let total = total.max(batch);
        let f: Vec<f64> = (0..runs).map(|r| rate(Durability::Fsync, batch, total, r)).collect();
        let n: Vec<f64> = (0..runs).map(|r| rate(Durability::FlushOnly, batch, total, r + runs)).collect();
        let (f, n) = (median(f), median(n));
        println!("{batch:>8} {f:>14.0} {n:>14.0} {:>8.2}", f / n);
    }
    lookups(if quick { 2_000 } else { 100_000 }, if quick { 5 } else { 50 });
}

/// Median ms of a lookup by content id and by STIX id among `total` entries (`n` lookups each,
/// of values spread over the store; each must find its entry).
fn lookups(total: usize, n: usize) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &StoreOptions::default()).unwrap();
    let key = SigningKey::from_bytes(&[7; 32]);
    let me = NodeName::new("ee").unwrap();
    for b in 0..total / 1000 {
        store.append_local(&key, &me, bodies(1000, b), 1).unwrap();
    }
    let (mut by_value, mut by_id) = (Vec::new(), Vec::new());
    for i in 0..n {
        let seq = (i * total / n) as u64 + 1;
        let id = ctix::model::EntryId { origin: me.clone(), seq };
        let value = format!("h{}-{}.example.com", (seq - 1) / 1000, (seq - 1) % 1000);
        let cid = ctix::model::content_id(ctix::model::IndicatorType::Domain, &value);
        let t = Instant::now();
        assert_eq!(store.by_content(&cid).unwrap(), vec![id.clone()]);
        by_value.push(t.elapsed().as_secs_f64() * 1e3);
        let uuid = ctix::interop::entry_uuid("indicator", &id);
        let t = Instant::now();
        assert_eq!(store.by_stix_uuid(&uuid).unwrap(), Some(id));
        by_id.push(t.elapsed().as_secs_f64() * 1e3);
    }
    println!(
        "lookups among {total} entries, median of {n} (ms): by value {:.2}, by STIX id {:.2}",
        median(by_value),
        median(by_id)
    );
}
