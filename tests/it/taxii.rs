//! The TAXII 2.1 server over real HTTP: discovery, collections per TLP, paging that neither skips
//! nor repeats while objects are added, versions of retracted indicators, the inbox, and TAXII
//! error messages for every failure.

use std::collections::BTreeSet;

use base64::Engine as _;
use serde_json::{Value, json};

use crate::api::{Api, Resp, raw, stop_all};
use crate::federation::{dev_federation, start};

const TAXII: &str = "application/taxii+json;version=2.1";

/// How a request logs in.
#[derive(Clone, Copy)]
enum Auth<'a> {
    Basic(&'a str, &'a str),
    Bearer(&'a str),
    None,
}

async fn taxii(api: &Api, method: &str, path: &str, auth: Auth<'_>, accept: &str, body: Option<&Value>) -> Resp {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n", api.addr);
    match auth {
        Auth::Basic(u, p) => {
            let b = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
            head += &format!("Authorization: Basic {b}\r\n");
        }
        Auth::Bearer(t) => head += &format!("Authorization: Bearer {t}\r\n"),
        Auth::None => {}
    }
    if !accept.is_empty() {
        head += &format!("Accept: {accept}\r\n");
    }
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    if !body.is_empty() {
        head += &format!("Content-Type: {TAXII}\r\nContent-Length: {}\r\n", body.len());
    }
    raw(api.addr, &(head + "\r\n"), body.as_bytes()).await
}

/// GET with the read-write token over basic auth; asserts 200 and the TAXII media type.
async fn get_ok(api: &Api, path: &str) -> (Value, Resp) {
    let r = taxii(api, "GET", path, Auth::Basic("analysts", &api.rw), TAXII, None).await;
    assert_eq!(r.status, 200, "GET {path}: {}", r.text());
    assert_eq!(r.header("content-type"), Some(TAXII), "GET {path}");
    (r.json(), r)
}

/// Asserts a TAXII error message with this status.
fn check_taxii_error(r: &Resp, status: u16) -> Value {
    assert_eq!(r.status, status, "{}", r.text());
    assert_eq!(r.header("content-type"), Some(TAXII), "{}", r.text());
    let e: Value = r.json();
    assert_eq!(e["http_status"], json!(status.to_string()), "{e}");
    assert!(e["title"].as_str().is_some_and(|t| !t.is_empty()), "{e}");
    assert!(e["description"].as_str().is_some_and(|t| !t.is_empty()), "{e}");
    e
}

/// Every object of a collection, following `next` with pages of `limit`.
async fn all_objects(api: &Api, collection: &str, query: &str, limit: usize) -> Vec<Value> {
    objects_from(api, collection, query, limit, None).await
}

/// Every object of a collection from the cursor `next` on.
async fn objects_from(api: &Api, collection: &str, query: &str, limit: usize, mut next: Option<String>) -> Vec<Value> {
    let mut out = Vec::new();
    for _ in 0..1000 {
        let mut path = format!("/taxii2/api/collections/{collection}/objects/?limit={limit}{query}");
        if let Some(n) = &next {
            path += &format!("&next={n}");
        }
        let (page, _) = get_ok(api, &path).await;
        let objects = page["objects"].as_array().cloned().unwrap_or_default();
        assert!(objects.len() <= limit);
        out.extend(objects);
        match page["more"].as_bool() {
            Some(true) => next = Some(page["next"].as_str().expect("more without next").to_owned()),
            _ => return out,
        }
    }
    panic!("paging did not end");
}

fn ids(objects: &[Value]) -> Vec<String> {
    objects.iter().map(|o| format!("{}@{}", o["id"].as_str().unwrap(), o["modified"].as_str().unwrap())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn taxii_serves_collections_pages_versions_and_an_inbox() {
    let fed = dev_federation(&["ee"]);
    let ee = start(&fed, "ee").await;
    let api = Api::new(&fed, "ee", &ee);
    let made = api
        .submit(json!([
            { "type": "ipv4", "value": "203.0.113.10", "tlp": "green", "tags": ["scanning"], "confidence": 80 },
            { "type": "domain", "value": "c2.example.com", "tlp": "amber" },
            { "type": "sha256", "value": "ab".repeat(32), "tlp": "amber+strict" },
            { "type": "url", "value": "https://phish.example.org/login", "tlp": "clear" },
        ]))
        .await;
    let r = api.post(&format!("/api/v1/indicators/{}/retract", made[1]), &json!({ "reason": "sinkholed" })).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = api.post(&format!("/api/v1/indicators/{}/sightings", made[0]), &json!({ "count": 4 })).await;
    assert_eq!(r.status, 200, "{}", r.text());

    // Discovery and the API root, with basic auth and with a bearer token.
    let (d, _) = get_ok(&api, "/taxii2/").await;
    assert_eq!(d["api_roots"], json!(["/taxii2/api/"]));
    let r = taxii(&api, "GET", "/taxii2/api/", Auth::Bearer(&api.ro), "application/taxii+json", None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json::<Value>()["versions"], json!([TAXII]));

    // Collections: rw sees seven, ro neither AMBER+STRICT nor the inbox.
    let (c, _) = get_ok(&api, "/taxii2/api/collections/").await;
    let aliases: BTreeSet<&str> =
        c["collections"].as_array().unwrap().iter().map(|c| c["alias"].as_str().unwrap()).collect();
    assert_eq!(aliases.len(), 7, "{c}");
    let r = taxii(&api, "GET", "/taxii2/api/collections/", Auth::Basic("constituents", &api.ro), TAXII, None).await;
    let ro: Value = r.json();
    let ro_aliases: BTreeSet<&str> =
        ro["collections"].as_array().unwrap().iter().map(|c| c["alias"].as_str().unwrap()).collect();
    assert_eq!(ro_aliases, ["all", "tlp-amber", "tlp-clear", "tlp-green", "tlp-red"].into());
    let all_id = c["collections"].as_array().unwrap().iter().find(|c| c["alias"] == "all").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (one, _) = get_ok(&api, &format!("/taxii2/api/collections/{all_id}/")).await;
    assert_eq!((one["can_read"].as_bool(), one["can_write"].as_bool()), (Some(true), Some(false)));

    // Objects, default version "last": four indicators (one as its revoked version) and a
    // sighting, in pages of two, each once.
    let last = all_objects(&api, &all_id, "", 2).await;
    assert_eq!(last.len(), 5, "{:#?}", ids(&last));
    assert_eq!(ids(&last).iter().collect::<BTreeSet<_>>().len(), 5);
    let revoked: Vec<&Value> = last.iter().filter(|o| o["revoked"] == json!(true)).collect();
    assert_eq!(revoked.len(), 1);
    assert_eq!(last.iter().filter(|o| o["type"] == "sighting").count(), 1);
    // All versions: the retracted indicator twice.
    let every = all_objects(&api, &all_id, "&match[version]=all", 3).await;
    assert_eq!(every.len(), 6);
    // Filters: type, id, spec_version.
    let sightings = all_objects(&api, "all", "&match[type]=sighting", 10).await;
    assert_eq!(sightings.len(), 1);
    assert_eq!(sightings[0]["count"], json!(4));
    let rid = revoked[0]["id"].as_str().unwrap();
    let by_id = all_objects(&api, "all", &format!("&match[id]={rid}&match[version]=all"), 10).await;
    assert_eq!(by_id.len(), 2);
    assert!(all_objects(&api, "all", "&match[spec_version]=2.0", 10).await.is_empty());
    // A TLP collection holds its level only; ro never gets AMBER+STRICT.
    let green = all_objects(&api, "tlp-green", "", 10).await;
    assert_eq!(green.len(), 2, "the green indicator and its sighting");
    let r =
        taxii(&api, "GET", "/taxii2/api/collections/all/objects/", Auth::Basic("constituents", &api.ro), TAXII, None)
            .await;
    let ro_objects: Value = r.json();
    assert_eq!(ro_objects["objects"].as_array().unwrap().len(), 4);

    // One object and its versions.
    let (obj, _) = get_ok(&api, &format!("/taxii2/api/collections/all/objects/{rid}/")).await;
    assert_eq!(obj["objects"].as_array().unwrap().len(), 1);
    assert_eq!(obj["objects"][0]["revoked"], json!(true));
    let (vers, _) = get_ok(&api, &format!("/taxii2/api/collections/all/objects/{rid}/versions/")).await;
    let vers = vers["versions"].as_array().unwrap().clone();
    assert_eq!(vers.len(), 2);
    assert!(vers[0].as_str().unwrap() < vers[1].as_str().unwrap());
    let (first, _) = get_ok(
        &api,
        &format!("/taxii2/api/collections/all/objects/{rid}/?match[version]={}", vers[0].as_str().unwrap()),
    )
    .await;
    assert_eq!(first["objects"][0]["modified"], vers[0]);

    // The manifest lists the same versions as the objects, with date_added.
    let (m, mr) = get_ok(&api, "/taxii2/api/collections/all/manifest/?limit=100").await;
    let records = m["objects"].as_array().unwrap();
    assert_eq!(records.len(), 5);
    assert!(records.iter().all(|r| r["media_type"] == "application/stix+json;version=2.1"));
    assert!(records.windows(2).all(|w| w[0]["date_added"].as_str() < w[1]["date_added"].as_str()));
    assert_eq!(mr.header("x-taxii-date-added-first"), records[0]["date_added"].as_str());
    assert_eq!(mr.header("x-taxii-date-added-last"), records[4]["date_added"].as_str());

    // Paging stays exact while objects are added: page one, new indicators, then the rest by
    // `next` and, separately, by added_after = the last date of page one.
    let (p1, p1r) = get_ok(&api, "/taxii2/api/collections/all/objects/?limit=2").await;
    let seen1 = ids(p1["objects"].as_array().unwrap());
    let next = p1["next"].as_str().unwrap().to_owned();
    let last_date = p1r.header("x-taxii-date-added-last").unwrap().to_owned();
    api.submit(json!([
        { "type": "ipv4", "value": "203.0.113.11", "tlp": "green" },
        { "type": "ipv4", "value": "203.0.113.12", "tlp": "green" },
    ]))
    .await;
    let rest = objects_from(&api, "all", "", 2, Some(next)).await;
    let mut by_next = seen1.clone();
    by_next.extend(ids(&rest));
    assert_eq!(by_next.len(), 7, "{by_next:#?}");
    assert_eq!(by_next.iter().collect::<BTreeSet<_>>().len(), 7, "no object twice");
    let after = all_objects(&api, "all", &format!("&added_after={last_date}"), 100).await;
    assert_eq!(ids(&after), by_next[2..].to_vec());

    // The inbox: an indicator ctix can represent is stored, a malware object is a failure with
    // its reason, and the status resource can be read back.
    let envelope = json!({ "objects": [
        {
            "type": "indicator", "spec_version": "2.1", "id": "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
            "created": "2026-11-29T08:00:00.000Z", "modified": "2026-11-29T08:00:00.000Z",
            "pattern": "[domain-name:value = 'inbox.example.net']", "pattern_type": "stix",
            "valid_from": "2026-11-29T08:00:00Z", "labels": ["from-taxii"]
        },
        {
            "type": "malware", "spec_version": "2.1", "id": "malware--31b940d4-6f7f-459a-80ea-9c1f17b5891b",
            "created": "2026-11-29T08:00:00.000Z", "modified": "2026-11-29T08:00:00.000Z",
            "name": "Cryptolocker", "is_family": true
        }
    ]});
    let inbox = "/taxii2/api/collections/inbox/objects/";
    let r = taxii(&api, "POST", inbox, Auth::Basic("analysts", &api.rw), TAXII, Some(&envelope)).await;
    assert_eq!(r.status, 202, "{}", r.text());
    let status: Value = r.json();
    assert_eq!((status["total_count"].as_u64(), status["success_count"].as_u64()), (Some(2), Some(1)), "{status}");
    assert_eq!(status["failure_count"].as_u64(), Some(1));
    assert!(status["failures"][0]["message"].as_str().unwrap().contains("malware"), "{status}");
    let sid = status["id"].as_str().unwrap();
    let (again, _) = get_ok(&api, &format!("/taxii2/api/status/{sid}/")).await;
    assert_eq!(again, status);
    let r = api
        .get_until("/api/v1/indicators?type=domain&value=inbox.example.net", 10, |r| {
            r.status == 200 && r.text().contains("inbox.example.net")
        })
        .await;
    assert!(r.text().contains("from-taxii"), "{}", r.text());

    // Errors are TAXII error messages.
    let none = taxii(&api, "GET", "/taxii2/", Auth::None, TAXII, None).await;
    check_taxii_error(&none, 401);
    assert!(none.header("www-authenticate").is_some_and(|v| v.contains("Basic")));
    check_taxii_error(&taxii(&api, "GET", "/taxii2/", Auth::Basic("analysts", "wrong"), TAXII, None).await, 401);
    check_taxii_error(&taxii(&api, "GET", "/taxii2/", Auth::Basic("constituents", &api.rw), TAXII, None).await, 401);
    let basic = Auth::Basic("analysts", &api.rw);
    check_taxii_error(&taxii(&api, "GET", "/taxii2/", basic, "application/json", None).await, 406);
    check_taxii_error(&taxii(&api, "GET", "/taxii2/api/collections/nope/objects/", basic, TAXII, None).await, 404);
    check_taxii_error(&taxii(&api, "GET", "/taxii2/api/collections/inbox/objects/", basic, TAXII, None).await, 403);
    check_taxii_error(
        &taxii(&api, "GET", "/taxii2/api/collections/all/objects/?limit=0", basic, TAXII, None).await,
        400,
    );
    check_taxii_error(&taxii(&api, "GET", "/taxii2/nothing/here/", basic, TAXII, None).await, 404);
    check_taxii_error(&taxii(&api, "GET", "/taxii2/api/status/unknown/", basic, TAXII, None).await, 404);
    check_taxii_error(&taxii(&api, "DELETE", "/taxii2/api/collections/", basic, TAXII, None).await, 405);
    let green_post = "/taxii2/api/collections/tlp-green/objects/";
    check_taxii_error(&taxii(&api, "POST", green_post, basic, TAXII, Some(&envelope)).await, 403);
    let ro = Auth::Basic("constituents", &api.ro);
    check_taxii_error(&taxii(&api, "POST", inbox, ro, TAXII, Some(&envelope)).await, 404);
    check_taxii_error(&taxii(&api, "POST", inbox, basic, TAXII, Some(&json!({ "nope": 1 }))).await, 400);
    let missing_object = "/taxii2/api/collections/all/objects/indicator--00000000-0000-4000-8000-000000000000/";
    check_taxii_error(&taxii(&api, "GET", missing_object, basic, TAXII, None).await, 404);
    stop_all(vec![ee]).await;
}
