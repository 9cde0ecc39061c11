//! `ctix demo`: the main job in one command. A three-node federation (EE, LV, LT) on loopback
//! with freshly generated dev certificates, real QUIC with mutual TLS, real sled stores, and each
//! node's REST API:
//!
//! 1. each CERT submits a batch of indicators through its own REST API (one deliberately invalid
//!    item shows per-item rejection) and their arrival at the other nodes is timed;
//! 2. TLP end to end: a TLP:RED indicator for LV only is readable at LV and invisible at LT, and an
//!    AMBER+STRICT one is hidden from a read-only constituent token;
//! 3. a sighting reported at LT and a retraction at LV show up in every node's view;
//! 4. the EE–LT link is cut and EE's indicators still reach LT, relayed by LV;
//! 5. every store is re-verified (signatures, body hashes, chains) and a summary is printed.
//!
//! Only documentation address ranges (RFC 5737, RFC 3849) and `example.*` names are used.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};

use crate::client::Api;
use crate::config::{Config, Role};
use crate::drill::Record;
use crate::drill::report::Report;
use crate::model::drill::{DrillRecord, Inject, InjectAction, Objective, ObjectiveKind, Scenario};
use crate::model::{EntryId, IndicatorInput, NodeName};
use crate::model::{IndicatorType, Tlp};
use crate::node::{self, Running};
use crate::view::{SightRequest, SubmitRequest, SubmitResponse};

/// How long the demo waits for any one delivery before it reports a failure.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);
/// Indicators EE sends while the EE–LT link is cut.
const CUT_LINK_INDICATORS: usize = 50;

/// Runs the demo in `dir` (a fresh temporary directory when `None`).
pub fn run(dir: Option<&Path>, base_port: u16) -> Result<()> {
    let tmp_used = dir.is_none();
    let dir = match dir {
        Some(d) => d.to_owned(),
        None => tempdir()?,
    };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let result = rt.block_on(demo(&dir, base_port, !tmp_used));
    if tmp_used {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

fn tempdir() -> Result<PathBuf> {
    let d = std::env::temp_dir().join(format!("ctix-demo-{}-{}", std::process::id(), crate::now_ms()));
    std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
    Ok(d)
}

/// One running member with API clients for both token roles.
struct Member {
    run: Running,
    rw: Arc<Api>,
    ro: Arc<Api>,
}

async fn demo(dir: &Path, base_port: u16, keep: bool) -> Result<()> {
    let names: Vec<NodeName> = ["ee", "lv", "lt"].iter().map(|n| NodeName::new(n).expect("valid")).collect();
    println!("== 1. dev federation: CA, node keys, TLS certificates, roster in {}", dir.display());
    let fed = crate::devfed::generate(dir, &names, base_port).map_err(anyhow::Error::msg)?;
    let mut nodes: BTreeMap<String, Member> = BTreeMap::new();
    for (name, path) in &fed.nodes {
        let mut cfg = Config::load(path)?;
        cfg.own_head_wait_ms = 3_000;
        let token =
            |role: Role| cfg.api_tokens.iter().find(|t| t.role == role).map(|t| t.token.clone()).expect("dev tokens");
        let (rw_token, ro_token) = (token(Role::Rw), token(Role::Ro));
        let run = node::start(cfg).await.with_context(|| format!("starting {name}"))?;
        let url = format!("http://{}", run.api_addr);
        println!(
            "   {name}: QUIC {}  REST API {url}  credentials {}",
            run.quic_addr,
            dir.join(name.as_str()).join("credentials.json").display()
        );
        let rw = Arc::new(Api::new(&url, &rw_token)?);
        let ro = Arc::new(Api::new(&url, &ro_token)?);
        nodes.insert(name.to_string(), Member { run, rw, ro });
    }
    let result = scenario(&nodes, &fed, keep.then_some(dir)).await;
    for (_, n) in nodes {
        n.run.stop().await;
    }
    result
}

async fn scenario(
    nodes: &BTreeMap<String, Member>,
    fed: &crate::devfed::DevFederation,
    report_dir: Option<&Path>,
) -> Result<()> {
    wait_connected(nodes).await?;
    println!("   all three nodes connected (mutual TLS against the dev CA, ALPN ctix/1)");

    println!("\n== 2. each CERT submits through its REST API; time until durable at every other node");
    let mut latencies: Vec<f64> = Vec::new();
    let mut submitted = 0usize;
    let mut ids_of: BTreeMap<&str, Vec<EntryId>> = BTreeMap::new();
    for (origin, feed) in feeds() {
        let n = feed.len();
        let start = Instant::now();
        let resp =
            call(&nodes[origin].rw, move |api| api.submit_batch(&SubmitRequest { indicators: feed, atomic: false }))
                .await?;
        let acked = start.elapsed();
        let ids = accepted_ids(&resp)?;
        submitted += ids.len();
        let last = ids.last().ok_or_else(|| anyhow!("{origin} accepted nothing"))?;
        print!("   {origin}: {} of {n} accepted, durable at {origin} after {:>5.1} ms", ids.len(), ms(acked));
        for (name, t) in wait_all(nodes, origin, last, start).await? {
            print!(" | at {name} {:>5.1} ms", ms(t));
            latencies.push(ms(t));
        }
        println!();
        ids_of.insert(origin, ids);
        for r in resp.results.iter().filter(|r| r.error.is_some()) {
            let e = r.error.as_ref().expect("filtered");
            println!("      item {} rejected ({}): {}", r.index, e.code, e.message);
        }
    }

    println!("\n== 3. TLP end to end");
    let red = IndicatorInput {
        itype: "domain".into(),
        value: "exfil-staging.example.org".into(),
        tlp: "red".into(),
        recipients: vec!["lv".into()],
        confidence: Some(90),
        tags: vec!["demo".into(), "apt".into()],
        description: "staging host seen only in a Latvian incident; EE shares it with LV alone".into(),
        ..Default::default()
    };
    let resp =
        call(&nodes["ee"].rw, move |api| api.submit_batch(&SubmitRequest { indicators: vec![red], atomic: true }))
            .await?;
    let red_id = accepted_ids(&resp)?.remove(0);
    wait_all(nodes, "ee", &red_id, Instant::now()).await?;
    let at_lv = count_value(&nodes["lv"].rw, "domain", "exfil-staging.example.org").await?;
    let at_lt = count_value(&nodes["lt"].rw, "domain", "exfil-staging.example.org").await?;
    if at_lv != 1 || at_lt != 0 {
        bail!("TLP:RED for LV: LV's API shows it {at_lv} times (want 1), LT's {at_lt} times (want 0)");
    }
    println!("   TLP:RED {red_id} for LV: readable at LV, at LT only a signed stub that its API never shows");
    let strict_rw = count_value(&nodes["lt"].rw, "url", "https://login.example.net/portal").await?;
    let strict_ro = count_value(&nodes["lt"].ro, "url", "https://login.example.net/portal").await?;
    if strict_rw != 1 || strict_ro != 0 {
        bail!(
            "TLP:AMBER+STRICT at LT: the analysts' token sees it {strict_rw} times (want 1), the constituents' {strict_ro} (want 0)"
        );
    }
    println!("   TLP:AMBER+STRICT from EE: LT's analysts see it, LT's read-only constituent token does not");

    println!("\n== 4. a sighting at LT and a retraction at LV reach every node");
    let (lv_first, lv_second) = (ids_of["lv"][0].clone(), ids_of["lv"][1].clone());
    let target = lv_first.clone();
    let sighting = call(&nodes["lt"].rw, move |api| {
        api.sight(
            &target,
            &SightRequest { count: Some(3), note: "seen at a Lithuanian ISP".into(), ..Default::default() },
        )
    })
    .await?;
    let target = lv_second.clone();
    let retraction = call(&nodes["lv"].rw, move |api| api.retract(&target, "false positive: shared hosting")).await?;
    let start = Instant::now();
    for (name, m) in nodes {
        loop {
            let (s, r) = (view_of(&m.rw, &lv_first).await?, view_of(&m.rw, &lv_second).await?);
            if s.is_some_and(|v| v.sightings == 3) && r.is_some_and(|v| v.retracted) {
                break;
            }
            if start.elapsed() > DELIVERY_TIMEOUT {
                bail!(
                    "{name} did not show sighting {sighting} and retraction {retraction} within {DELIVERY_TIMEOUT:?}"
                );
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    println!(
        "   sighting {sighting} of {lv_first} (3 hits) and retraction {retraction} of {lv_second} visible at ee, lv, lt after {:.1} ms",
        ms(start.elapsed())
    );

    println!("\n== 5. cut the EE–LT link; EE's indicators must reach LT through LV");
    let (ee, lt) = (NodeName::new("ee")?, NodeName::new("lt")?);
    nodes["ee"].run.handle.set_blocked(lt.clone(), true).await?;
    nodes["lt"].run.handle.set_blocked(ee.clone(), true).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let batch: Vec<IndicatorInput> = (1..=CUT_LINK_INDICATORS)
        .map(|i| IndicatorInput {
            itype: "ipv4".into(),
            value: format!("198.51.100.{i}"),
            tlp: "green".into(),
            tags: vec!["demo".into(), "ddos".into()],
            description: "DDoS source during the cut-link test".into(),
            ..Default::default()
        })
        .collect();
    let start = Instant::now();
    let resp =
        call(&nodes["ee"].rw, move |api| api.submit_batch(&SubmitRequest { indicators: batch, atomic: true })).await?;
    let ids = accepted_ids(&resp)?;
    let last = ids.last().ok_or_else(|| anyhow!("EE accepted nothing"))?;
    wait_seq(&nodes["lt"].run, last).await?;
    let relayed = start.elapsed();
    let st = nodes["lt"].run.handle.status().await?;
    if st.connected.contains(&ee) {
        bail!("the EE–LT link was supposed to be cut");
    }
    let via: Vec<String> = st.connected.iter().map(|n| n.to_string()).collect();
    println!(
        "   {} indicators from EE reached LT in {:.1} ms (submit to durable) with LT connected only to {via:?}",
        ids.len(),
        ms(relayed)
    );
    nodes["ee"].run.handle.set_blocked(lt.clone(), false).await?;
    nodes["lt"].run.handle.set_blocked(ee.clone(), false).await?;

    println!("\n== 6. a short readiness drill: a wave, a communication check, a cut link, a relayed wave");
    let drill = run_drill(nodes).await?;

    println!("\n== 7. every store re-verified: signatures, body hashes, chains");
    let roster = Config::load(&fed.nodes[0].1)?.roster;
    let reference = nodes["ee"].run.handle.store.heads();
    let mut verified = Vec::new();
    for (name, m) in nodes {
        let store = &m.run.handle.store;
        let deadline = Instant::now() + DELIVERY_TIMEOUT;
        while store.heads() != reference {
            if Instant::now() > deadline {
                bail!("{name} did not converge: its heads differ from EE's");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let checked = store.verify_chains(&roster).map_err(anyhow::Error::msg)?;
        verified.push(checked);
        let heads: Vec<String> = store.heads().iter().map(|(o, t)| format!("{o}:{}", t.seq)).collect();
        println!("   {name}: {checked} entries verify; heads {}", heads.join(" "));
    }
    if verified.windows(2).any(|w| w[0] != w[1]) {
        bail!("the nodes verified different numbers of entries: {verified:?}");
    }

    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];
    println!("\n== summary");
    println!(
        "   {} indicators submitted through the REST API, {} more over a cut link; cross-border delivery after submit: median {:.1} ms, max {:.1} ms",
        submitted + 1,
        ids.len(),
        pct(0.5),
        pct(1.0)
    );
    for line in crate::drill::report::summary(&drill).lines() {
        println!("   drill: {line}");
    }
    if let Some(dir) = report_dir {
        let path = dir.join("drill-report.html");
        std::fs::write(&path, crate::drill::report::to_html(&drill))
            .with_context(|| format!("writing {}", path.display()))?;
        println!("   drill report with its timeline: {}", path.display());
    }
    println!("ok: the federation converged. Next: `ctix dev-federation` and the README's walk-through.");
    Ok(())
}

/// The demo's drill, built in code so the demo needs no files: about eight seconds long.
fn demo_scenario() -> Result<Scenario> {
    let n = |s: &str| NodeName::new(s).map_err(anyhow::Error::from);
    let s = Scenario {
        name: "demo-drill".into(),
        description: "a wave from LV, a communication check, the EE-LT link cut while EE sends".into(),
        participants: vec![n("ee")?, n("lt")?, n("lv")?],
        objectives: vec![
            Objective { name: "delivery-1s".into(), kind: ObjectiveKind::Delivery, within_ms: 1_000 },
            Objective { name: "ack-3s".into(), kind: ObjectiveKind::Ack, within_ms: 3_000 },
            Objective { name: "relay-2s".into(), kind: ObjectiveKind::Relay, within_ms: 2_000 },
        ],
        injects: vec![
            Inject {
                name: "wave-lv".into(),
                at_ms: 0,
                from: Some(n("lv")?),
                action: InjectAction::Indicators {
                    count: 20,
                    types: vec![IndicatorType::Ipv4, IndicatorType::Domain, IndicatorType::Sha256],
                    tlp: Tlp::Amber,
                },
            },
            Inject {
                name: "comms".into(),
                at_ms: 1_000,
                from: None,
                action: InjectAction::CommCheck { text: "all CERTs: confirm your node is up".into(), within_ms: 3_000 },
            },
            Inject {
                name: "cut-ee-lt".into(),
                at_ms: 2_000,
                from: None,
                action: InjectAction::CutLink { a: n("ee")?, b: n("lt")?, duration_ms: 3_000 },
            },
            Inject {
                name: "wave-ee".into(),
                at_ms: 3_000,
                from: Some(n("ee")?),
                action: InjectAction::Indicators { count: 20, types: vec![IndicatorType::Url], tlp: Tlp::Green },
            },
        ],
    };
    s.validate()?;
    Ok(s)
}

/// Runs the demo drill from EE and returns EE's report once the drill has ended.
async fn run_drill(nodes: &BTreeMap<String, Member>) -> Result<Report> {
    let ee = &nodes["ee"].run;
    let id = ee.handle.drill_start(demo_scenario()?).await?;
    println!("   drill {id} started from EE; participants follow the scenario in its start record");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let records: Vec<Record> = ee.handle.store.drill_records(&id)?.iter().filter_map(Record::from_entry).collect();
        if records.iter().any(|r| matches!(r.record, DrillRecord::End { .. })) {
            // The last receipts may still be on their way to EE.
            tokio::time::sleep(Duration::from_millis(300)).await;
            let records: Vec<Record> =
                ee.handle.store.drill_records(&id)?.iter().filter_map(Record::from_entry).collect();
            return Ok(crate::drill::report::build(&records, crate::now_ms(), &[])?);
        }
        if Instant::now() > deadline {
            bail!("drill {id} did not end within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs a blocking API call off the async workers.
async fn call<T: Send + 'static>(api: &Arc<Api>, f: impl FnOnce(&Api) -> Result<T> + Send + 'static) -> Result<T> {
    let api = api.clone();
    tokio::task::spawn_blocking(move || f(&api)).await.context("API call task")?
}

fn accepted_ids(resp: &SubmitResponse) -> Result<Vec<EntryId>> {
    resp.results.iter().filter_map(|r| r.id.as_deref()).map(|s| s.parse().map_err(|e| anyhow!("id {s}: {e}"))).collect()
}

/// How many query results the API behind `api` gives for `itype` `value`.
async fn count_value(api: &Arc<Api>, itype: &str, value: &str) -> Result<usize> {
    let (itype, value) = (itype.to_owned(), value.to_owned());
    Ok(call(api, move |api| api.query(&[("type", itype), ("value", value)])).await?.items.len())
}

/// The API's view of one indicator, if it shows it.
async fn view_of(api: &Arc<Api>, id: &EntryId) -> Result<Option<crate::view::IndicatorView>> {
    let (origin, seq) = (id.origin.to_string(), id.seq);
    let page = call(api, move |api| api.query(&[("origin", origin), ("limit", "1000".into())])).await?;
    Ok(page.items.into_iter().find(|v| v.seq == seq))
}

/// The indicators each state shares in step 2, with one invalid item (LV's bad IP).
fn feeds() -> Vec<(&'static str, Vec<IndicatorInput>)> {
    let ind = |itype: &str, value: &str, tlp: &str, conf: i64, tags: &[&str], desc: &str, techniques: &[&str]| {
        IndicatorInput {
            itype: itype.into(),
            value: value.into(),
            tlp: tlp.into(),
            confidence: Some(conf),
            valid_until: Some("30d".into()),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            description: desc.into(),
            techniques: techniques.iter().map(|t| t.to_string()).collect(),
            ..Default::default()
        }
    };
    vec![
        (
            "ee",
            vec![
                ind(
                    "domain",
                    "Update-Check.Example.COM.",
                    "green",
                    80,
                    &["phishing", "energy"],
                    "lure domain of a phishing wave against grid operators",
                    &["T1566.002"],
                ),
                ind(
                    "url",
                    "HTTPS://Login.Example.NET:443/portal#x",
                    "amber+strict",
                    85,
                    &["phishing", "credential-theft"],
                    "credential harvesting portal",
                    &["T1056.003"],
                ),
                ind("ipv4", "192.0.2.17", "amber", 75, &["c2"], "C2 server of the same campaign", &["T1071.001"]),
                ind(
                    "sha256",
                    "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08",
                    "amber",
                    90,
                    &["ransomware"],
                    "loader dropped by the lure",
                    &["T1204.002"],
                ),
            ],
        ),
        (
            "lv",
            vec![
                ind(
                    "ipv4",
                    "203.0.113.45",
                    "amber",
                    70,
                    &["scanning"],
                    "mass scanning of VPN gateways",
                    &["T1595.002"],
                ),
                ind(
                    "cidr",
                    "203.0.113.128/25",
                    "green",
                    60,
                    &["ddos"],
                    "DDoS sources against the state portal",
                    &["T1498"],
                ),
                ind(
                    "ipv4",
                    "203.0.113.300",
                    "amber",
                    70,
                    &["scanning"],
                    "a typo: caught per item, the rest are stored",
                    &[],
                ),
                ind(
                    "email",
                    "Invoice@Example.ORG",
                    "amber",
                    80,
                    &["phishing"],
                    "sender of invoice-themed lures",
                    &["T1566.001"],
                ),
                ind(
                    "cve",
                    "cve-2024-3400",
                    "clear",
                    100,
                    &["vulnerability", "exploited"],
                    "exploited in the wild against gateways",
                    &["T1190"],
                ),
            ],
        ),
        (
            "lt",
            vec![
                ind("ipv6", "2001:DB8:0:0::abcd", "amber", 65, &["c2"], "IPv6 C2 fallback", &["T1071"]),
                ind("md5", "D41D8CD98F00B204E9800998ECF8427E", "green", 50, &["wiper"], "wiper component", &["T1485"]),
                ind(
                    "filename",
                    "svch0st.exe",
                    "green",
                    55,
                    &["masquerading"],
                    "masquerading binary name",
                    &["T1036.005"],
                ),
                ind(
                    "url",
                    "http://files.example.com/payload.bin",
                    "amber",
                    80,
                    &["malware-delivery"],
                    "payload URL",
                    &["T1105"],
                ),
            ],
        ),
    ]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn wait_connected(nodes: &BTreeMap<String, Member>) -> Result<()> {
    let deadline = Instant::now() + DELIVERY_TIMEOUT;
    loop {
        let mut all = true;
        for m in nodes.values() {
            all &= m.run.handle.status().await?.connected.len() + 1 >= nodes.len();
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

/// Polls every node but `skip` until each holds `id`; returns each one's time since `start`.
async fn wait_all(
    nodes: &BTreeMap<String, Member>,
    skip: &str,
    id: &EntryId,
    start: Instant,
) -> Result<Vec<(String, Duration)>> {
    let mut got: BTreeMap<String, Duration> = BTreeMap::new();
    while got.len() + 1 < nodes.len() {
        for (name, m) in nodes {
            if name != skip
                && !got.contains_key(name)
                && m.run.handle.store.head(&id.origin).is_some_and(|t| t.seq >= id.seq)
            {
                got.insert(name.clone(), start.elapsed());
            }
        }
        if start.elapsed() > DELIVERY_TIMEOUT {
            bail!("{id} did not reach every node within {DELIVERY_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    Ok(got.into_iter().collect())
}

async fn wait_seq(n: &Running, id: &EntryId) -> Result<Duration> {
    let start = Instant::now();
    loop {
        if n.handle.store.head(&id.origin).is_some_and(|t| t.seq >= id.seq) {
            return Ok(start.elapsed());
        }
        if start.elapsed() > DELIVERY_TIMEOUT {
            bail!("{} did not receive {id} within {DELIVERY_TIMEOUT:?}", n.handle.name);
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}
