//! `ctix export` and `ctix import` as an analyst runs them: a STIX round trip between two
//! federations, a 10,000-object bundle with a per-reason summary, MISP feeds, and the MISP feed
//! the node serves.

use serde_json::{Value, json};

use crate::api::{Api, stop_all};
use crate::cli::ctix;
use crate::federation::{dev_federation, start};
use ctix::view::{IndicatorView, QueryResponse};

/// Every indicator the node holds, through the API.
async fn everything(api: &Api) -> Vec<IndicatorView> {
    let r = api.get("/api/v1/indicators?limit=1000").await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json::<QueryResponse>().items
}

/// What must survive a trip through STIX: type, value, TLP, confidence, validity, tags,
/// description, techniques (the view without its id, times of signing and state).
fn essence(v: &IndicatorView) -> String {
    serde_json::to_string(&json!({
        "type": v.itype, "value": v.value, "tlp": v.tlp, "confidence": v.confidence,
        "valid_from": v.valid_from, "valid_until": v.valid_until, "tags": v.tags,
        "description": v.description, "techniques": v.techniques,
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stix_export_imports_into_another_federation_unchanged() {
    let here = dev_federation(&["ee"]);
    let there = dev_federation(&["lv"]);
    let ee = start(&here, "ee").await;
    let lv = start(&there, "lv").await;
    let (ee_api, lv_api) = (Api::new(&here, "ee", &ee), Api::new(&there, "lv", &lv));
    let lines =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/interop/indicators.jsonl")).unwrap();
    let inputs: Vec<Value> = lines.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    // TLP:RED for recipients other than this node's own federation does not travel: keep the
    // round trip to what a file may carry.
    let inputs: Vec<Value> = inputs.into_iter().filter(|i| i["tlp"] != "red").collect();
    ee_api.submit(Value::Array(inputs.clone())).await;
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle.json");
    let flags = |api: &Api| vec![("--api", format!("http://{}", api.addr)), ("--token", api.rw.clone())];
    let f = flags(&ee_api);
    let f: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let out = ctix(&["export", "--format", "stix", "--out", bundle.to_str().unwrap()], &f).await.ok();
    assert!(out.stderr.contains(&format!("wrote {} indicators", inputs.len())), "{out:?}");
    let g = flags(&lv_api);
    let g: Vec<(&str, &str)> = g.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let out = ctix(&["import", "--format", "stix", bundle.to_str().unwrap()], &g).await.ok();
    assert!(out.stdout.contains(&format!("{} accepted, 0 refused", inputs.len())), "{out:?}");
    let mut before: Vec<_> = everything(&ee_api).await.iter().map(essence).collect();
    let mut after: Vec<_> = everything(&lv_api).await.iter().map(essence).collect();
    before.sort();
    after.sort();
    assert_eq!(after, before);
    stop_all(vec![ee, lv]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ten_thousand_object_bundle_is_imported_with_a_summary_per_reason() {
    let fed = dev_federation(&["ee"]);
    let ee = start(&fed, "ee").await;
    let api = Api::new(&fed, "ee", &ee);
    // 9,000 indicators, 500 malware objects, 300 patterns ctix cannot represent and 200
    // indicators whose value the node refuses.
    let mut objects = Vec::new();
    let t = "2026-11-29T08:00:00.000Z";
    let indicator = |i: usize, pattern: String| {
        json!({ "type": "indicator", "spec_version": "2.1", "id": format!("indicator--00000000-0000-4000-8000-{i:012}"),
                "created": t, "modified": t, "pattern": pattern, "pattern_type": "stix", "valid_from": t })
    };
    for i in 0..9_000 {
        objects.push(indicator(i, format!("[ipv4-addr:value = '10.{}.{}.{}']", i / 65536, (i / 256) % 256, i % 256)));
    }
    for i in 0..500 {
        objects.push(
            json!({ "type": "malware", "spec_version": "2.1", "id": format!("malware--00000000-0000-4000-9000-{i:012}"),
                             "created": t, "modified": t, "name": "x", "is_family": true }),
        );
    }
    for i in 0..300 {
        objects.push(indicator(20_000 + i, "[windows-registry-key:key = 'HKLM\\\\Software\\\\x']".into()));
    }
    for i in 0..200 {
        objects.push(indicator(30_000 + i, format!("[domain-name:value = 'not a domain {i}']")));
    }
    let bundle = json!({ "type": "bundle", "id": "bundle--00000000-0000-4000-8000-000000000001", "objects": objects });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.json");
    std::fs::write(&path, bundle.to_string()).unwrap();
    let url = format!("http://{}", api.addr);
    let flags = [("--api", url.as_str()), ("--token", api.rw.as_str())];
    let dry = ctix(&["import", "--format", "stix", "--dry-run", path.to_str().unwrap()], &[]).await.ok();
    assert!(dry.stdout.contains("10000 objects"), "{dry:?}");
    assert!(dry.stdout.contains("dry run: nothing was submitted"), "{dry:?}");
    let out = ctix(&["import", "--format", "stix", path.to_str().unwrap()], &flags).await;
    assert_eq!(out.code, Some(1), "refusals make the import fail after its summary: {out:?}");
    // Skipped objects, grouped by reason with counts, and the node's refusals by field.
    let summary = &out.stdout;
    assert!(summary.contains("10000 objects, 9200 indicators to import, 800 skipped"), "{summary}");
    let count_of = |needle: &str| {
        summary
            .lines()
            .find(|l| l.contains(needle) && l.trim_start().starts_with(|c: char| c.is_ascii_digit()))
            .and_then(|l| l.split_whitespace().next()?.parse::<usize>().ok())
    };
    assert_eq!(count_of("malware"), Some(500), "{summary}");
    assert_eq!(count_of("windows-registry-key"), Some(300), "{summary}");
    assert!(summary.contains("9000 accepted, 200 refused by the node"), "{summary}");
    assert!(summary.contains("refused, by field:") && summary.contains("value"), "{summary}");
    assert!(out.stderr.contains("200 of 9200 indicators were refused"), "{out:?}");
    let r = api.get("/api/v1/status").await;
    let counts: Value = r.json();
    assert_eq!(counts["counts"]["ee"]["indicator"], json!(9000), "{counts}");
    stop_all(vec![ee]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misp_feeds_export_import_and_serve_without_tlp_red() {
    let fed = dev_federation(&["ee"]);
    let ee = start(&fed, "ee").await;
    let api = Api::new(&fed, "ee", &ee);
    let lines =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/interop/indicators.jsonl")).unwrap();
    let inputs: Vec<Value> = lines.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    api.submit(Value::Array(inputs.clone())).await;
    let dir = tempfile::tempdir().unwrap();
    let feed = dir.path().join("feed");
    let url = format!("http://{}", api.addr);
    let flags = [("--api", url.as_str()), ("--token", api.rw.as_str())];
    let out = ctix(&["export", "--format", "misp", "--out", feed.to_str().unwrap()], &flags).await.ok();
    assert!(out.stderr.contains("left out 1 TLP:RED"), "{out:?}");
    let manifest: Value = serde_json::from_str(&std::fs::read_to_string(feed.join("manifest.json")).unwrap()).unwrap();
    let events = manifest.as_object().unwrap();
    assert!(!events.is_empty());
    let all_text: String =
        events.keys().map(|u| std::fs::read_to_string(feed.join(format!("{u}.json"))).unwrap()).collect();
    assert!(!all_text.contains("red-only.example"), "TLP:RED stays out of the feed");
    assert!(all_text.contains("c2.example.com"));
    // The feed imports back (dry run: what it would submit).
    let back = ctix(&["import", "--format", "misp", "--dry-run", feed.to_str().unwrap()], &[]).await.ok();
    assert!(back.stdout.contains(&format!("{} indicators to import", inputs.len() - 1)), "{back:?}");
    // The served feed: the same events, and never TLP:RED.
    let served = api.get("/api/v1/misp-feed/manifest.json").await;
    assert_eq!(served.status, 200, "{}", served.text());
    let served_manifest: Value = served.json();
    assert_eq!(served_manifest.as_object().unwrap().len(), events.len());
    for uuid in events.keys() {
        let r = api.get(&format!("/api/v1/misp-feed/{uuid}.json")).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(!r.text().contains("red-only.example"));
    }
    let hashes = api.get("/api/v1/misp-feed/hashes.csv").await;
    assert_eq!(hashes.status, 200);
    assert!(hashes.text().lines().count() >= inputs.len() - 1);
    assert_eq!(api.get("/api/v1/misp-feed/nope.json").await.status, 404);
    let none = api.request("GET", "/api/v1/misp-feed/manifest.json", None, None).await;
    assert_eq!(none.status, 401);
    stop_all(vec![ee]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ten_thousand_attribute_misp_event_is_imported_with_a_summary_per_reason() {
    let fed = dev_federation(&["ee"]);
    let ee = start(&fed, "ee").await;
    let api = Api::new(&fed, "ee", &ee);
    // 9,000 ip-dst attributes to import, 600 regkeys, 400 that are context only (to_ids false).
    let mut attributes = Vec::new();
    for i in 0..9_000 {
        let ip = format!("10.{}.{}.{}", i / 65536, (i / 256) % 256, i % 256);
        attributes.push(json!({ "type": "ip-dst", "category": "Network activity", "value": ip, "to_ids": true,
                                "uuid": format!("00000000-0000-4000-8000-{i:012}") }));
    }
    for i in 0..600 {
        attributes.push(json!({ "type": "regkey", "category": "Persistence mechanism", "to_ids": true,
                                "value": format!("HKLM\\Software\\x{i}"), "uuid": format!("00000000-0000-4000-9000-{i:012}") }));
    }
    for i in 0..400 {
        attributes.push(json!({ "type": "domain", "category": "Network activity", "to_ids": false,
                                "value": format!("victim{i}.example"), "uuid": format!("00000000-0000-4000-a000-{i:012}") }));
    }
    let event = json!({ "Event": { "uuid": "5f0e9c56-1d1c-4b6e-9a3e-1c2d3e4f5a6b", "info": "big", "date": "2026-11-29",
                                   "Tag": [{ "name": "tlp:green" }], "Attribute": attributes } });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("event.json");
    std::fs::write(&path, event.to_string()).unwrap();
    let url = format!("http://{}", api.addr);
    let flags = [("--api", url.as_str()), ("--token", api.rw.as_str())];
    let out = ctix(&["import", "--format", "misp", path.to_str().unwrap()], &flags).await.ok();
    let summary = &out.stdout;
    assert!(summary.contains("10000 objects, 9000 indicators to import, 1000 skipped"), "{summary}");
    let count_of = |needle: &str| {
        summary
            .lines()
            .find(|l| l.contains(needle) && l.trim_start().starts_with(|c: char| c.is_ascii_digit()))
            .and_then(|l| l.split_whitespace().next()?.parse::<usize>().ok())
    };
    assert_eq!(count_of("regkey"), Some(600), "{summary}");
    assert_eq!(count_of("to_ids"), Some(400), "{summary}");
    assert!(summary.contains("9000 accepted, 0 refused by the node"), "{summary}");
    let r = api.get("/api/v1/indicators?tlp=green&limit=1").await;
    assert_eq!(r.json::<QueryResponse>().items.len(), 1);
    stop_all(vec![ee]).await;
}
