//! `ctix demo`: the main job in one command. A three-node federation (EE, LV, LT) on loopback
//! with freshly generated dev certificates, real QUIC with mutual TLS, real sled stores:
//! indicators are submitted at each node and their arrival timed everywhere; then the EE–LT
//! link is cut and EE's indicators still reach LT through LV; finally every store is verified.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::config::Config;
use crate::model::{Body, Indicator, IndicatorInput, NodeName};
use crate::node::{self, Running};

/// How long the demo waits for any one delivery before it reports a failure.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs the demo in `dir` (a fresh temporary directory when `None`).
pub fn run(dir: Option<&Path>, base_port: u16) -> Result<()> {
    let tmp_used = dir.is_none();
    let dir = match dir {
        Some(d) => d.to_owned(),
        None => tempdir()?,
    };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(demo(&dir, base_port))?;
    if tmp_used {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}

fn tempdir() -> Result<std::path::PathBuf> {
    let d = std::env::temp_dir().join(format!("ctix-demo-{}-{}", std::process::id(), crate::now_ms()));
    std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
    Ok(d)
}

async fn demo(dir: &Path, base_port: u16) -> Result<()> {
    let names: Vec<NodeName> = ["ee", "lv", "lt"].iter().map(|n| NodeName::new(n).expect("valid")).collect();
    println!("== 1. dev federation: CA, node keys, TLS certificates, roster in {}", dir.display());
    let fed = crate::devfed::generate(dir, &names, base_port).map_err(anyhow::Error::msg)?;
    let mut nodes: BTreeMap<String, Running> = BTreeMap::new();
    for (name, path) in &fed.nodes {
        let mut cfg = Config::load(path)?;
        cfg.own_head_wait_ms = 3_000;
        let r = node::start(cfg).await.with_context(|| format!("starting {name}"))?;
        println!("   {name}: QUIC on {}  (store {})", r.quic_addr, r.handle.store.dir().display());
        nodes.insert(name.to_string(), r);
    }
    wait_connected(&nodes, 3).await?;
    println!("   all three nodes connected (mutual TLS, ALPN ctix/1)");

    println!("\n== 2. each CERT shares indicators; time until stored at every other node");
    let feeds = [
        ("ee", "domain", "update-check.example.com", "green"),
        ("lv", "ipv4", "203.0.113.45", "amber"),
        ("lt", "sha256", "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855", "amber"),
        ("ee", "url", "HTTPS://Login.Example.NET:443/portal#x", "amber+strict"),
    ];
    for (origin, itype, value, tlp) in feeds {
        let input = IndicatorInput {
            itype: itype.into(),
            value: value.into(),
            tlp: tlp.into(),
            confidence: Some(80),
            tags: vec!["demo".into()],
            ..Default::default()
        };
        let ind = Indicator::from_input(&input, crate::now_ms())?;
        let shown = format!("{} {}", ind.itype, ind.value);
        let start = Instant::now();
        let stored = nodes[origin].handle.append(vec![Body::Indicator(ind)]).await?;
        let v = stored.into_iter().next().expect("one result")?;
        let acked = start.elapsed();
        let id = v.id();
        print!("   {id:<6} {shown:<80} TLP:{:<13} durable at {origin} {:>5.1} ms", tlp.to_uppercase(), ms(acked));
        for (name, t) in wait_all(&nodes, origin, &id.origin, id.seq, start).await? {
            print!(" | at {name} {:.1} ms", ms(t));
        }
        println!();
    }

    println!("\n== 3. cut the EE–LT link; EE's indicators must reach LT through LV");
    let (ee, lt) = (&names[0], &names[2]);
    nodes["ee"].handle.set_blocked(lt.clone(), true).await?;
    nodes["lt"].handle.set_blocked(ee.clone(), true).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let bodies: Vec<Body> = (1..=50)
        .map(|i| {
            let input = IndicatorInput { itype: "ipv4".into(), value: format!("198.51.100.{i}"), ..Default::default() };
            Indicator::from_input(&input, crate::now_ms()).map(Body::Indicator)
        })
        .collect::<Result<_, _>>()?;
    let start = Instant::now();
    let stored = nodes["ee"].handle.append(bodies).await?;
    let last = stored.last().expect("50 results").as_ref().map_err(|e| anyhow::anyhow!("{e}"))?.id();
    let t = wait_seq(&nodes["lt"], ee, last.seq).await?;
    let st = nodes["lt"].handle.status().await?;
    if st.connected.contains(ee) {
        bail!("the EE–LT link was supposed to be cut");
    }
    println!(
        "   50 indicators from EE reached LT in {:.1} ms with LT connected only to {:?}",
        ms(t.max(start.elapsed())),
        names_of(&st.connected)
    );
    nodes["ee"].handle.set_blocked(lt.clone(), false).await?;
    nodes["lt"].handle.set_blocked(ee.clone(), false).await?;

    println!("\n== 4. every store re-verified: signatures, body hashes, chains");
    let roster = Config::load(&fed.nodes[0].1)?.roster;
    let reference = nodes["ee"].handle.store.heads();
    for (name, n) in &nodes {
        let deadline = Instant::now() + DELIVERY_TIMEOUT;
        while n.handle.store.heads() != reference {
            if Instant::now() > deadline {
                bail!("{name} did not converge");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let checked = n.handle.store.verify_chains(&roster).map_err(anyhow::Error::msg)?;
        let heads: Vec<String> = n.handle.store.heads().iter().map(|(o, t)| format!("{o}:{}", t.seq)).collect();
        println!("   {name}: {checked} entries verify; heads {}", heads.join(" "));
    }
    println!("\nok: the federation converged. Drills arrive with drill mode; the REST API with the analysts' surface.");
    for (_, n) in nodes {
        n.stop().await;
    }
    Ok(())
}

fn names_of(s: &std::collections::BTreeSet<NodeName>) -> Vec<String> {
    s.iter().map(|n| n.to_string()).collect()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn wait_connected(nodes: &BTreeMap<String, Running>, n: usize) -> Result<()> {
    let deadline = Instant::now() + DELIVERY_TIMEOUT;
    loop {
        let mut all = true;
        for r in nodes.values() {
            all &= r.handle.status().await?.connected.len() + 1 >= n;
        }
        if all {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("nodes did not connect within {DELIVERY_TIMEOUT:?}: are the UDP ports free?");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls every node but `skip` until each holds `origin:seq`; returns each one's time since
/// `start`.
async fn wait_all(
    nodes: &BTreeMap<String, Running>,
    skip: &str,
    origin: &NodeName,
    seq: u64,
    start: Instant,
) -> Result<Vec<(String, Duration)>> {
    let mut got: BTreeMap<String, Duration> = BTreeMap::new();
    while got.len() + 1 < nodes.len() {
        for (name, n) in nodes {
            if name != skip && !got.contains_key(name) && n.handle.store.head(origin).is_some_and(|t| t.seq >= seq) {
                got.insert(name.clone(), start.elapsed());
            }
        }
        if start.elapsed() > DELIVERY_TIMEOUT {
            bail!("{origin}:{seq} did not reach every node within {DELIVERY_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    Ok(got.into_iter().collect())
}

async fn wait_seq(n: &Running, origin: &NodeName, seq: u64) -> Result<Duration> {
    let start = Instant::now();
    loop {
        if n.handle.store.head(origin).is_some_and(|t| t.seq >= seq) {
            return Ok(start.elapsed());
        }
        if start.elapsed() > DELIVERY_TIMEOUT {
            bail!("{} did not receive {origin}:{seq} within {DELIVERY_TIMEOUT:?}", n.handle.name);
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}
