//! The store: durability, reopen, idempotent ingest, forks, indexes, and kill -9.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ctix::log::{self, AuthenticEntry, ChainTip, VerifiedEntry};
use ctix::model::{Body, EntryId};
use ctix::store::{AppendError, IngestOutcome, Store, StoreError, StoreOptions};

use crate::support::*;

fn open(dir: &std::path::Path) -> Store {
    Store::open(dir, &StoreOptions::default()).unwrap()
}

fn authentic(v: &VerifiedEntry) -> AuthenticEntry {
    log::authenticate(&baltic(), v.entry().clone()).unwrap()
}

fn append_ok(s: &Store, origin: &str, bodies: Vec<Body>) -> Vec<VerifiedEntry> {
    s.append_local(&key(origin), &name(origin), bodies, T0).unwrap().into_iter().map(Result::unwrap).collect()
}

#[test]
fn appends_survive_reopen_with_heads() {
    let dir = tempfile::tempdir().unwrap();
    let heads = {
        let s = open(dir.path());
        append_ok(&s, "ee", vec![indicator("ipv4", "203.0.113.1"), indicator("domain", "a.example")]);
        append_ok(&s, "ee", vec![indicator("sha256", &"AB".repeat(32))]);
        let foreign = chain("lv", 5);
        let out = s.ingest(foreign.iter().map(authentic).collect()).unwrap();
        assert!(out.iter().all(|o| matches!(o, IngestOutcome::Stored(_))));
        s.heads()
    };
    let s = open(dir.path());
    assert_eq!(s.heads(), heads);
    assert_eq!(s.head(&name("ee")).unwrap().seq, 3);
    assert_eq!(s.head(&name("lv")).unwrap().seq, 5);
    assert_eq!(s.range(&name("ee"), 1, 100).unwrap().len(), 3);
    assert_eq!(s.verify_chains(&baltic()).unwrap(), 8);
}

#[test]
fn a_store_in_use_is_refused_and_a_closed_one_reopens_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let held = open(dir.path());
    let started = Instant::now();
    let err = Store::open(dir.path(), &StoreOptions::default()).err().expect("a second handle must be refused");
    assert!(matches!(err, StoreError::Locked { .. }), "{err}");
    assert!(err.to_string().contains("is in use"), "{err}");
    assert!(started.elapsed() >= ctix::store::LOCK_WAIT_MAX, "gave up before the lock wait");
    drop(held);
    // sled drops its lock from a background thread; open waits for it instead of failing.
    for round in 0..20 {
        let s = open(dir.path());
        append_ok(&s, "ee", vec![indicator("ipv4", &format!("203.0.113.{}", round + 1))]);
    }
    assert_eq!(open(dir.path()).head(&name("ee")).unwrap().seq, 20);
}

#[test]
fn ingest_is_idempotent_and_detects_gaps() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let c = chain("lv", 4);
    // Entry 3 before 1 and 2: a gap, nothing stored.
    let got = ChainTip { seq: 3, hash: c[2].hash() };
    assert_eq!(s.ingest(vec![authentic(&c[2])]).unwrap(), vec![IngestOutcome::Gap { have: 0, got }]);
    assert_eq!(s.head(&name("lv")), None);
    let out = s.ingest(c.iter().map(authentic).collect()).unwrap();
    assert!(out.iter().all(|o| matches!(o, IngestOutcome::Stored(_))));
    // A replay of the whole chain changes nothing.
    let again = s.ingest(c.iter().map(authentic).collect()).unwrap();
    assert_eq!(again, vec![IngestOutcome::Duplicate; 4]);
    assert_eq!(s.head(&name("lv")), Some(c[3].tip()));
}

#[test]
fn fork_is_kept_as_evidence_and_quarantines_the_origin() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = open(dir.path());
        let honest = chain("lt", 3);
        s.ingest(honest.iter().map(authentic).collect()).unwrap();
        // lt signs a different entry 2.
        let evil = VerifiedEntry::sign_own(
            &key("lt"),
            &name("lt"),
            Some(&honest[0].tip()),
            T0 + 99,
            indicator("domain", "other.example"),
        );
        assert_eq!(s.ingest(vec![authentic(&evil)]).unwrap(), vec![IngestOutcome::Forked]);
        // Nothing was overwritten.
        assert_eq!(s.get(&EntryId { origin: name("lt"), seq: 2 }).unwrap().unwrap().hash(), honest[1].hash());
        // Further entries of lt are refused; other origins still flow.
        let next = VerifiedEntry::sign_own(
            &key("lt"),
            &name("lt"),
            Some(&honest[2].tip()),
            T0,
            indicator("ipv4", "192.0.2.1"),
        );
        assert_eq!(s.ingest(vec![authentic(&next)]).unwrap(), vec![IngestOutcome::Quarantined]);
        let lv = chain("lv", 1);
        assert!(matches!(s.ingest(vec![authentic(&lv[0])]).unwrap()[0], IngestOutcome::Stored(_)));
    }
    let s = open(dir.path());
    assert!(s.quarantined().contains(&name("lt")));
    let forks = s.forks().unwrap();
    assert_eq!(forks.len(), 1);
    assert_eq!((forks[0].origin.as_str(), forks[0].seq), ("lt", 2));
    // The evidence is a real signed entry.
    assert!(log::authenticate(&baltic(), forks[0].entry.clone()).is_ok());
}

#[test]
fn fork_by_prev_hash_mismatch_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let honest = chain("lt", 2);
    s.ingest(honest.iter().map(authentic).collect()).unwrap();
    // An entry 3 whose predecessor is not our entry 2.
    let other2 = VerifiedEntry::sign_own(
        &key("lt"),
        &name("lt"),
        Some(&honest[0].tip()),
        T0 + 5,
        indicator("domain", "x.example"),
    );
    let evil3 =
        VerifiedEntry::sign_own(&key("lt"), &name("lt"), Some(&other2.tip()), T0 + 6, indicator("domain", "y.example"));
    assert_eq!(s.ingest(vec![authentic(&evil3)]).unwrap(), vec![IngestOutcome::Forked]);
    assert!(s.quarantined().contains(&name("lt")));
}

#[test]
fn stub_is_upgraded_when_the_body_arrives() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let red = VerifiedEntry::sign_own(&key("ee"), &name("ee"), None, T0, red_indicator("secret.example", &["lv"]));
    let stub = log::authenticate(&baltic(), red.for_recipient(&name("lt"))).unwrap();
    assert!(matches!(s.ingest(vec![stub]).unwrap()[0], IngestOutcome::Stored(_)));
    let id = EntryId { origin: name("ee"), seq: 1 };
    assert!(s.get(&id).unwrap().unwrap().entry().body.is_none());
    assert!(matches!(s.ingest(vec![authentic(&red)]).unwrap()[0], IngestOutcome::Upgraded(_)));
    assert!(s.get(&id).unwrap().unwrap().body().is_some());
}

#[test]
fn content_index_correlates_across_origins() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    append_ok(&s, "ee", vec![indicator("domain", "Bad.Example.")]);
    let lv = VerifiedEntry::sign_own(&key("lv"), &name("lv"), None, T0, indicator("domain", "bad.example"));
    s.ingest(vec![authentic(&lv)]).unwrap();
    let cid = ctix::model::content_id(ctix::model::IndicatorType::Domain, "bad.example");
    let ids: Vec<String> = s.by_content(&cid).unwrap().iter().map(|i| i.to_string()).collect();
    assert_eq!(ids, vec!["ee:1", "lv:1"]);
}

#[test]
fn retractions_and_sightings_change_indicator_state() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    append_ok(&s, "ee", vec![indicator("ipv4", "203.0.113.9"), indicator("ipv4", "203.0.113.10")]);
    let r = s
        .append_local(&key("ee"), &name("ee"), vec![retraction(1), retraction(1), retraction(9), retraction(2)], T0)
        .unwrap();
    assert!(r[0].is_ok());
    assert!(matches!(&r[1], Err(AppendError::Target(m)) if m.contains("already retracted")));
    assert!(matches!(&r[2], Err(AppendError::Target(m)) if m.contains("not an indicator")));
    assert!(r[3].is_ok());
    // A retraction cannot target a retraction.
    let rr = s.append_local(&key("ee"), &name("ee"), vec![retraction(3)], T0).unwrap();
    assert!(rr[0].is_err());
    // lv reports sightings of ee:2.
    let lv = VerifiedEntry::sign_own(&key("lv"), &name("lv"), None, T0, sighting("ee", 2, 7));
    s.ingest(vec![authentic(&lv)]).unwrap();
    let st1 = s.indicator_state(&EntryId { origin: name("ee"), seq: 1 }).unwrap().unwrap();
    assert_eq!(st1.retracted_by.map(|i| i.seq), Some(3));
    let st2 = s.indicator_state(&EntryId { origin: name("ee"), seq: 2 }).unwrap().unwrap();
    assert_eq!(st2.retracted_by.map(|i| i.seq), Some(4));
    let seen: Vec<(EntryId, u32)> = st2.sightings.iter().map(|s| (s.id.clone(), s.count)).collect();
    assert_eq!(seen, vec![(EntryId { origin: name("lv"), seq: 1 }, 7)]);
    assert_eq!(st2.retraction, Some((T0, "false positive".to_string())));
    let times = (st2.sightings[0].created_ms, st2.sightings[0].first_seen_ms, st2.sightings[0].last_seen_ms);
    assert_eq!(times, (T0, T0, T0 + 1000));
    // Refused items took no seq.
    assert_eq!(s.head(&name("ee")).unwrap().seq, 4);
}

/// Child side of `kill9_during_appends_loses_nothing_acknowledged`: appends batches forever and
/// prints `durable SEQ` after each batch is acknowledged.
#[test]
#[ignore = "child process of kill9_during_appends_loses_nothing_acknowledged"]
fn kill9_child() {
    let Ok(dir) = std::env::var("CTIX_KILL9_DIR") else { return };
    let s = open(std::path::Path::new(&dir));
    let mut out = std::io::stdout();
    for round in 0u64.. {
        let n = 1 + (round % 37) as usize;
        let bodies = (0..n).map(|i| indicator("domain", &format!("r{round}-i{i}.example"))).collect();
        let done = s.append_local(&key("ee"), &name("ee"), bodies, T0).unwrap();
        let last = done.last().unwrap().as_ref().unwrap().header().seq;
        writeln!(out, "durable {last}").unwrap();
        out.flush().unwrap();
    }
}

#[test]
fn kill9_during_appends_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let rounds = std::env::var("CTIX_KILL9_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(6u64);
    let mut acked_total = 0;
    for round in 0..rounds {
        let mut child = Command::new(&exe)
            .args(["store::kill9_child", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
            .env("CTIX_KILL9_DIR", dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut acked = 0u64;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(n) = line.strip_prefix("durable ") {
                    acked = acked.max(n.trim().parse().unwrap());
                }
            }
            acked
        });
        // Kill at a different point each round, after the child has acknowledged something.
        let delay = Duration::from_millis(150 + (round * 97) % 400);
        let start = Instant::now();
        while start.elapsed() < delay {
            std::thread::sleep(Duration::from_millis(10));
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let acked = reader.join().unwrap();
        let s = open(dir.path());
        let head = s.head(&name("ee")).map_or(0, |t| t.seq);
        assert!(head >= acked, "round {round}: acknowledged seq {acked} but only {head} survived kill -9");
        let checked = s.verify_chains(&baltic()).unwrap();
        assert_eq!(checked, head, "round {round}: chain does not verify to its head");
        acked_total = acked;
    }
    assert!(acked_total > 0, "the child never acknowledged an append");
}

#[test]
fn queries_filter_and_page_in_arrival_order() {
    use ctix::model::{IndicatorType, Tlp};
    use ctix::store::Query;
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let bodies: Vec<Body> = (0..25).map(|i| indicator("ipv4", &format!("203.0.113.{i}"))).collect();
    append_ok(&s, "ee", bodies);
    append_ok(&s, "ee", vec![indicator("domain", "Evil.Example."), red_indicator("secret.example", &["lv"])]);
    let lv = VerifiedEntry::sign_own(&key("lv"), &name("lv"), None, T0, indicator("domain", "evil.example"));
    s.ingest(vec![authentic(&lv)]).unwrap();
    // Paging through everything: every indicator once, in arrival order.
    let mut seen = Vec::new();
    let mut q = Query { limit: 10, ..Default::default() };
    loop {
        let page = s.query(&q).unwrap();
        assert!(page.items.len() <= 10);
        seen.extend(page.items.iter().map(|(a, st)| (*a, st.entry.id().to_string())));
        match page.next {
            Some(n) => q.after = n,
            None => break,
        }
    }
    assert_eq!(seen.len(), 28);
    assert!(seen.windows(2).all(|w| w[0].0 < w[1].0), "arrival order");
    assert_eq!(seen.last().unwrap().1, "lv:1");
    // Value lookup across origins via the content index.
    let by_value = Query {
        itype: Some(IndicatorType::Domain),
        value: Some("evil.example".into()),
        limit: 10,
        ..Default::default()
    };
    let ids: Vec<String> = s.query(&by_value).unwrap().items.iter().map(|(_, st)| st.entry.id().to_string()).collect();
    assert_eq!(ids, vec!["ee:26", "lv:1"]);
    // A value lookup with a further filter pages on past candidates that the filter drops:
    // the first page (ee:26, not from lv) is empty but must not end the listing.
    let mut q = Query { origin: Some(name("lv")), limit: 1, ..by_value.clone() };
    let mut found = Vec::new();
    for _ in 0..5 {
        let page = s.query(&q).unwrap();
        found.extend(page.items.iter().map(|(_, st)| st.entry.id().to_string()));
        match page.next {
            Some(n) => q.after = n,
            None => break,
        }
    }
    assert_eq!(found, vec!["lv:1"]);
    // Filters: origin, TLP, retracted.
    let red = Query { tlp: Some(Tlp::Red), limit: 100, ..Default::default() };
    assert_eq!(s.query(&red).unwrap().items.len(), 1);
    let lv_only = Query { origin: Some(name("lv")), limit: 100, ..Default::default() };
    assert_eq!(s.query(&lv_only).unwrap().items.len(), 1);
    append_ok(&s, "ee", vec![retraction(1)]);
    let retracted = Query { retracted: Some(true), limit: 100, ..Default::default() };
    let r = s.query(&retracted).unwrap();
    assert_eq!(r.items.len(), 1);
    assert_eq!(r.items[0].1.entry.id().to_string(), "ee:1");
}

#[test]
fn stubs_are_never_query_results_and_upgrades_move_to_the_end() {
    use ctix::store::Query;
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let red = VerifiedEntry::sign_own(&key("ee"), &name("ee"), None, T0, red_indicator("secret.example", &["lv"]));
    let stub = log::authenticate(&baltic(), red.for_recipient(&name("lt"))).unwrap();
    s.ingest(vec![stub]).unwrap();
    let all = Query { limit: 100, ..Default::default() };
    assert!(s.query(&all).unwrap().items.is_empty(), "a redacted stub is not an indicator to show");
    s.ingest(vec![authentic(&chain("lv", 1)[0])]).unwrap();
    s.ingest(vec![authentic(&red)]).unwrap();
    let ids: Vec<String> = s.query(&all).unwrap().items.iter().map(|(_, st)| st.entry.id().to_string()).collect();
    assert_eq!(ids, vec!["lv:1", "ee:1"], "the upgraded entry arrived (with its body) after lv:1");
    let counts = s.counts();
    assert_eq!(counts[&(name("ee"), ctix::model::EntryKind::Indicator)], 1, "an upgrade is not a second entry");
    drop(s);
    let s = open(dir.path());
    assert_eq!(s.counts()[&(name("lv"), ctix::model::EntryKind::Indicator)], 1, "counts survive reopen");
    assert_eq!(s.query(&all).unwrap().items.len(), 2);
}

#[test]
fn arrivals_carry_strictly_increasing_times_and_stix_ids_resolve() {
    let dir = tempfile::tempdir().unwrap();
    let before_us = ctix::now_ms() * 1000;
    {
        let s = open(dir.path());
        append_ok(&s, "ee", (1..=5).map(|i| indicator("ipv4", &format!("203.0.113.{i}"))).collect());
        append_ok(&s, "ee", vec![retraction(2)]);
    }
    // A reopened store goes on after the last time, even if the clock went back.
    let s = open(dir.path());
    let lv = VerifiedEntry::sign_own(&key("lv"), &name("lv"), None, T0, sighting("ee", 1, 2));
    s.ingest(vec![authentic(&lv)]).unwrap();
    let (all, more) = s.arrivals(0, 100).unwrap();
    assert!(!more);
    let ids: Vec<String> = all.iter().map(|a| a.id.to_string()).collect();
    assert_eq!(ids, ["ee:1", "ee:2", "ee:3", "ee:4", "ee:5", "ee:6", "lv:1"]);
    assert!(all.windows(2).all(|w| w[0].arrival < w[1].arrival && w[0].added_us < w[1].added_us));
    assert!(all[0].added_us >= before_us);
    // Paging: a page and the rest.
    let (page, more) = s.arrivals(0, 3).unwrap();
    assert!(more && page.len() == 3);
    assert_eq!(s.arrivals(page[2].arrival, 100).unwrap().0, all[3..]);
    // Every cut in time gives the cursor before the first arrival added after it.
    assert_eq!(s.arrival_cursor_after(0).unwrap(), 0);
    for (i, a) in all.iter().enumerate() {
        assert_eq!(s.arrival_cursor_after(a.added_us).unwrap(), a.arrival, "at arrival {i}");
        assert_eq!(s.arrival_cursor_after(a.added_us - 1).unwrap(), if i == 0 { 0 } else { all[i - 1].arrival });
    }
    assert_eq!(s.arrival_cursor_after(u64::MAX).unwrap(), all.last().unwrap().arrival);
    // STIX ids: indicators and sightings resolve, retractions have none of their own.
    let ee3 = EntryId { origin: name("ee"), seq: 3 };
    let lv1 = EntryId { origin: name("lv"), seq: 1 };
    assert_eq!(s.by_stix_uuid(&ctix::interop::entry_uuid("indicator", &ee3)).unwrap(), Some(ee3.clone()));
    assert_eq!(s.by_stix_uuid(&ctix::interop::entry_uuid("sighting", &lv1)).unwrap(), Some(lv1));
    assert_eq!(s.by_stix_uuid(&ctix::interop::entry_uuid("sighting", &ee3)).unwrap(), None);
    let ee6 = EntryId { origin: name("ee"), seq: 6 };
    assert_eq!(s.by_stix_uuid(&ctix::interop::entry_uuid("indicator", &ee6)).unwrap(), None);
}

/// Lookups by content and by STIX id go through the `H` hint rows: entries on both sides of
/// every block boundary are found, from appends that ran as several pipeline chunks, from
/// peers, after a reopen, and after a stub was upgraded (its arrival moved on).
#[test]
fn lookups_find_entries_across_hint_blocks_and_pipelined_appends() {
    let slots = ctix::store::HINT_BLOCK_SLOTS;
    let n = (2 * slots + 5) as usize;
    assert!(n > 2 * ctix::store::PIPELINE_ENTRIES, "the append runs as several chunks");
    let dir = tempfile::tempdir().unwrap();
    let value = |i: usize| format!("h{i}.example");
    {
        let s = open(dir.path());
        let stored = append_ok(&s, "ee", (1..=n).map(|i| indicator("domain", &value(i))).collect());
        assert_eq!(stored.len(), n);
        assert_eq!(s.head(&name("ee")).unwrap(), stored.last().unwrap().tip());
        assert_eq!(s.verify_chains(&baltic()).unwrap(), n as u64);
        let foreign = chain("lv", 3);
        s.ingest(foreign.iter().map(authentic).collect()).unwrap();
    }
    let s = open(dir.path());
    let cid = |v: &str| ctix::model::content_id(ctix::model::IndicatorType::Domain, v);
    // Arrival numbers start at 1: seq i of ee arrived as i.
    for i in [1, slots - 1, slots, slots + 1, 2 * slots - 1, 2 * slots, n as u64] {
        let id = EntryId { origin: name("ee"), seq: i };
        assert_eq!(s.by_content(&cid(&value(i as usize))).unwrap(), vec![id.clone()], "content of ee:{i}");
        assert_eq!(s.by_stix_uuid(&ctix::interop::entry_uuid("indicator", &id)).unwrap(), Some(id.clone()));
        let q = ctix::store::Query {
            itype: Some(ctix::model::IndicatorType::Domain),
            value: Some(value(i as usize)),
            limit: 10,
            ..Default::default()
        };
        let page = s.query(&q).unwrap();
        assert_eq!(page.items.len(), 1, "query for ee:{i}");
        assert_eq!(page.items[0].0, i, "the cursor is the arrival");
    }
    let lv2 = EntryId { origin: name("lv"), seq: 2 };
    assert_eq!(s.by_stix_uuid(&ctix::interop::entry_uuid("indicator", &lv2)).unwrap(), Some(lv2.clone()));
    assert!(s.by_content(&cid("absent.example")).unwrap().is_empty());
    let beyond = EntryId { origin: name("ee"), seq: n as u64 + 1 };
    assert_eq!(s.by_stix_uuid(&ctix::interop::entry_uuid("indicator", &beyond)).unwrap(), None);
    // A stub arrives, then its body: the lookups find it once, at its new arrival.
    let red = VerifiedEntry::sign_own(&key("lt"), &name("lt"), None, T0, red_indicator("secret.example", &["ee"]));
    let stub = log::authenticate(&baltic(), red.for_recipient(&name("lv"))).unwrap();
    assert!(matches!(s.ingest(vec![stub]).unwrap()[0], IngestOutcome::Stored(_)));
    let lt1 = EntryId { origin: name("lt"), seq: 1 };
    let secret = ctix::model::content_id(ctix::model::IndicatorType::Domain, "secret.example");
    assert!(s.by_content(&secret).unwrap().is_empty(), "a stub has no content to find");
    assert_eq!(s.by_stix_uuid(&ctix::interop::entry_uuid("indicator", &lt1)).unwrap(), Some(lt1.clone()));
    assert!(matches!(s.ingest(vec![authentic(&red)]).unwrap()[0], IngestOutcome::Upgraded(_)));
    assert_eq!(s.by_content(&secret).unwrap(), vec![lt1.clone()]);
    assert_eq!(s.by_stix_uuid(&ctix::interop::entry_uuid("indicator", &lt1)).unwrap(), Some(lt1.clone()));
    let (arrivals, _) = s.arrivals(0, 10_000).unwrap();
    assert_eq!(arrivals.iter().filter(|a| a.id == lt1).count(), 1, "the upgraded stub arrived once");
}

/// A range never reaches past the head, whatever it is asked for.
#[test]
fn ranges_stop_at_the_head() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    append_ok(&s, "ee", (1..=5).map(|i| indicator("ipv4", &format!("203.0.113.{i}"))).collect());
    assert_eq!(s.range(&name("ee"), 1, 1000).unwrap().len(), 5);
    assert_eq!(s.range(&name("ee"), 5, 1000).unwrap().len(), 1);
    assert!(s.range(&name("ee"), 6, 1000).unwrap().is_empty());
    assert!(s.range(&name("ee"), u64::MAX, 1000).unwrap().is_empty());
    assert!(s.range(&name("lv"), 1, 1000).unwrap().is_empty(), "no head, no entries");
}

/// What peers are served (`range_for`, the stored bytes as they are) is what `range` gives,
/// redacted for the recipient: bodies of TLP:RED entries only to their recipients.
#[test]
fn ranges_served_to_peers_are_the_stored_entries_redacted_per_recipient() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let bodies = (1..=6)
        .map(|i| {
            if i % 3 == 0 {
                red_indicator(&format!("c2-{i}.example.org"), &["lv"])
            } else {
                indicator("ipv4", &format!("203.0.113.{i}"))
            }
        })
        .collect();
    append_ok(&s, "ee", bodies);
    for to in ["lv", "lt"] {
        for (from, limit) in [(1, 1000), (2, 3), (6, 10), (7, 10)] {
            let expected: Vec<_> = s
                .range(&name("ee"), from, limit)
                .unwrap()
                .iter()
                .map(|e| e.for_recipient(&name(to)).to_wire())
                .collect();
            let last = s.range(&name("ee"), from, limit).unwrap().last().map(|e| e.tip());
            let (served, tip) = s.range_for(&name("ee"), from, limit, &name(to)).unwrap();
            assert_eq!(served, expected, "to {to}, from {from}, limit {limit}");
            assert_eq!(tip, last);
        }
        let (all, _) = s.range_for(&name("ee"), 1, 1000, &name(to)).unwrap();
        let bodies = all.iter().filter(|w| w.body.is_some()).count();
        assert_eq!(bodies, if to == "lv" { 6 } else { 4 }, "{to} gets the RED bodies only if named");
    }
    assert_eq!(s.range_for(&name("lv"), 1, 10, &name("ee")).unwrap(), (vec![], None));
}
