//! The REST API over real HTTP: nodes started in this process, requests over loopback TCP.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ctix::config::Role;
use ctix::node::Running;
use ctix::view::{
    ErrorBody, IndicatorView, QueryResponse, REQUEST_BYTES_MAX, SUBMIT_BATCH_MAX, StatusView, SubmitResponse,
};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::federation::{Fed, config, dev_federation, start};

/// One HTTP answer.
pub(crate) struct Resp {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Resp {
    pub(crate) fn json<T: serde::de::DeserializeOwned>(&self) -> T {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("status {}: body is not the expected JSON ({e}): {}", self.status, self.text()))
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Asserts an error answer: this status, a JSON `ErrorBody` with this code.
    fn check_error(&self, status: u16, code: &str) -> ErrorBody {
        assert_eq!(self.status, status, "expected {status} {code}, got: {}", self.text());
        let e: ErrorBody = self.json();
        assert_eq!(e.error.code, code, "{}", self.text());
        assert!(!e.error.message.is_empty());
        e
    }
}

/// Sends `head` (request line and headers, ending in a blank line) and `body` on a fresh
/// connection and reads the whole answer (`Connection: close`).
pub(crate) async fn raw(addr: SocketAddr, head: &str, body: &[u8]) -> Resp {
    let exchange = async {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(head.as_bytes()).await.unwrap();
        // The server may answer (and close) before reading a body it refuses.
        let _ = s.write_all(body).await;
        let mut bytes = Vec::new();
        s.read_to_end(&mut bytes).await.unwrap();
        bytes
    };
    let bytes = tokio::time::timeout(Duration::from_secs(30), exchange).await.expect("HTTP exchange timed out");
    let split = bytes.windows(4).position(|w| w == b"\r\n\r\n").expect("no end of headers");
    let head = String::from_utf8(bytes[..split].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = bytes[split + 4..].to_vec();
    if headers.iter().any(|(k, v)| k == "transfer-encoding" && v.contains("chunked")) {
        body = dechunk(&body);
    }
    Resp { status, headers, body }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n").unwrap();
        let size = usize::from_str_radix(std::str::from_utf8(&b[..eol]).unwrap().trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + size]);
        b = &b[eol + 4 + size..];
    }
}

/// A client of one node's API, holding its `rw` and `ro` tokens.
pub(crate) struct Api {
    pub(crate) addr: SocketAddr,
    pub(crate) rw: String,
    pub(crate) ro: String,
}

impl Api {
    pub(crate) fn new(fed: &Fed, node: &str, running: &Running) -> Api {
        let tokens = config(fed, node).api_tokens;
        let of = |role| tokens.iter().find(|t| t.role == role).unwrap().token.clone();
        Api { addr: running.api_addr, rw: of(Role::Rw), ro: of(Role::Ro) }
    }

    pub(crate) async fn request(&self, method: &str, path: &str, token: Option<&str>, body: Option<&str>) -> Resp {
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n", self.addr);
        if let Some(t) = token {
            head += &format!("Authorization: Bearer {t}\r\n");
        }
        if let Some(b) = body {
            head += &format!("Content-Type: application/json\r\nContent-Length: {}\r\n", b.len());
        }
        raw(self.addr, &(head + "\r\n"), body.unwrap_or("").as_bytes()).await
    }

    pub(crate) async fn get(&self, path: &str) -> Resp {
        self.request("GET", path, Some(&self.rw), None).await
    }

    pub(crate) async fn get_ro(&self, path: &str) -> Resp {
        self.request("GET", path, Some(&self.ro), None).await
    }

    pub(crate) async fn post(&self, path: &str, body: &Value) -> Resp {
        self.request("POST", path, Some(&self.rw), Some(&body.to_string())).await
    }

    /// Polls `GET path` until `done` holds; panics after `secs`.
    pub(crate) async fn get_until(&self, path: &str, secs: u64, done: impl Fn(&Resp) -> bool) -> Resp {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let r = self.get(path).await;
            if done(&r) {
                return r;
            }
            assert!(Instant::now() < deadline, "GET {path} on {}: still {} {}", self.addr, r.status, r.text());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Submits a batch that must be accepted whole; returns the ids.
    pub(crate) async fn submit(&self, indicators: Value) -> Vec<String> {
        let r = self.post("/api/v1/indicators", &json!({ "indicators": indicators })).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let s: SubmitResponse = r.json();
        assert_eq!(s.rejected, 0, "{}", r.text());
        s.results.into_iter().map(|i| i.id.unwrap()).collect()
    }
}

pub(crate) async fn stop_all(nodes: Vec<Running>) {
    for n in nodes {
        n.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submitted_indicators_are_visible_on_every_node() {
    let fed = dev_federation(&["ee", "lv", "lt"]);
    let nodes = vec![start(&fed, "ee").await, start(&fed, "lv").await, start(&fed, "lt").await];
    let apis: Vec<Api> = ["ee", "lv", "lt"].iter().zip(&nodes).map(|(n, r)| Api::new(&fed, n, r)).collect();
    let r = apis[0]
        .post(
            "/api/v1/indicators",
            &json!({ "indicators": [
                { "type": "ipv4", "value": "203.0.113.7", "tlp": "green", "tags": ["Phishing"] },
                { "type": "domain", "value": "Evil.Example.COM" },
            ]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let s: SubmitResponse = r.json();
    assert_eq!((s.accepted, s.rejected, s.results.len()), (2, 0, 2));
    let (id, cid) = (s.results[0].id.clone().unwrap(), s.results[0].content_id.clone().unwrap());
    assert_eq!(id, "ee:1");
    for api in &apis {
        let r = api
            .get_until("/api/v1/indicators?type=ipv4&value=203.0.113.7", 20, |r| {
                r.status == 200 && !r.json::<QueryResponse>().items.is_empty()
            })
            .await;
        let q: QueryResponse = r.json();
        assert_eq!(q.items.len(), 1);
        let v = &q.items[0];
        assert_eq!(
            (v.id.as_str(), v.value.as_str(), v.content_id.as_str()),
            (id.as_str(), "203.0.113.7", cid.as_str())
        );
        assert_eq!((v.origin.as_str(), v.tlp.as_str(), v.tags.clone()), ("ee", "green", vec!["phishing".to_string()]));
        // The value is matched in its normal form.
        let r = api.get_until("/api/v1/indicators?type=domain&value=EVIL.example.com", 20, |r| r.status == 200).await;
        let q: QueryResponse = r.json();
        assert_eq!(q.items.iter().map(|v| v.value.as_str()).collect::<Vec<_>>(), ["evil.example.com"]);
        let by_id: IndicatorView = api.get(&format!("/api/v1/indicators/{id}")).await.json();
        assert_eq!((by_id.id, by_id.content_id), (id.clone(), cid.clone()));
    }
    stop_all(nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_items_are_validated_one_by_one_and_atomic_batches_all_or_nothing() {
    let fed = dev_federation(&["ee"]);
    let ee = start(&fed, "ee").await;
    let api = Api::new(&fed, "ee", &ee);
    let batch = json!([
        { "type": "ipv4", "value": "192.0.2.10" },
        { "type": "ipv4", "value": "999.1.1.1" },
        { "type": "domain", "value": "bad.example" },
        { "type": "ipv4", "value": "192.0.2.11", "confidence": 500 },
    ]);
    let r = api.post("/api/v1/indicators", &json!({ "indicators": batch })).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let s: SubmitResponse = r.json();
    assert_eq!((s.accepted, s.rejected), (2, 2));
    let ids: Vec<Option<&str>> = s.results.iter().map(|i| i.id.as_deref()).collect();
    assert_eq!(ids, [Some("ee:1"), None, Some("ee:2"), None]);
    for (i, field) in [(1, "value"), (3, "confidence")] {
        let e = s.results[i].error.as_ref().unwrap();
        assert_eq!((s.results[i].index, e.code.as_str(), e.field.as_deref()), (i, "invalid_field", Some(field)));
        assert!(e.message.contains(field), "{}", e.message);
    }

    let atomic = json!({ "atomic": true, "indicators": [
        { "type": "ipv4", "value": "192.0.2.20" },
        { "type": "ipv4", "value": "192.0.2.21", "tlp": "purple" },
    ]});
    let r = api.post("/api/v1/indicators", &atomic).await;
    assert_eq!(r.status, 422, "{}", r.text());
    let s: SubmitResponse = r.json();
    assert_eq!((s.accepted, s.rejected, s.results.len()), (0, 1, 2));
    assert!(s.results[0].id.is_none() && s.results[0].error.is_none());
    assert_eq!(s.results[1].error.as_ref().unwrap().field.as_deref(), Some("tlp"));
    let st: StatusView = api.get("/api/v1/status").await.json();
    assert_eq!((st.node.as_str(), st.heads["ee"], st.counts["ee"]["indicator"]), ("ee", 2, 2));
    let q: QueryResponse = api.get("/api/v1/indicators?type=ipv4&value=192.0.2.20").await.json();
    assert!(q.items.is_empty());

    // One indicator: 422 with the item error, or 200 with its id.
    let r = api.post("/api/v1/indicator", &json!({ "type": "md5", "value": "abc" })).await;
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(r.json::<SubmitResponse>().results[0].error.as_ref().unwrap().field.as_deref(), Some("value"));
    let r = api.post("/api/v1/indicator", &json!({ "type": "ipv4", "value": "192.0.2.30" })).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json::<SubmitResponse>().results[0].id.as_deref(), Some("ee:3"));
    ee.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retraction_and_sightings_reach_every_node() {
    let fed = dev_federation(&["ee", "lv", "lt"]);
    let nodes = vec![start(&fed, "ee").await, start(&fed, "lv").await, start(&fed, "lt").await];
    let (ee, lv, lt) =
        (Api::new(&fed, "ee", &nodes[0]), Api::new(&fed, "lv", &nodes[1]), Api::new(&fed, "lt", &nodes[2]));
    let id = ee.submit(json!([{ "type": "url", "value": "http://bad.example/login" }])).await.remove(0);
    let path = format!("/api/v1/indicators/{id}");
    lv.get_until(&path, 20, |r| r.status == 200).await;

    let r = lv.post(&format!("{path}/sightings"), &json!({ "count": 3, "note": "seen at a ministry" })).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let sighting = r.json::<SubmitResponse>().results[0].id.clone().unwrap();
    assert_eq!(sighting, "lv:1");
    lv.post(&format!("{path}/retract"), &json!({ "reason": "not ours" })).await.check_error(403, "not_own");
    let r = ee.post(&format!("{path}/retract"), &json!({ "reason": "false positive" })).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let retraction = r.json::<SubmitResponse>().results[0].id.clone().unwrap();
    assert_eq!(retraction, "ee:2");
    ee.post(&format!("{path}/retract"), &json!({ "reason": "again" })).await.check_error(409, "conflict");
    ee.post("/api/v1/indicators/ee:99/sightings", &json!({})).await.check_error(404, "not_found");

    for api in [&ee, &lv, &lt] {
        let r = api
            .get_until(&path, 20, |r| {
                r.status == 200 && r.json::<IndicatorView>().retracted && r.json::<IndicatorView>().sightings == 3
            })
            .await;
        let v: IndicatorView = r.json();
        assert_eq!(v.retracted_by.as_deref(), Some(retraction.as_str()));
        assert_eq!(v.sighting_reports.len(), 1);
        assert_eq!((v.sighting_reports[0].id.as_str(), v.sighting_reports[0].by.as_str()), (sighting.as_str(), "lv"));
        let q: QueryResponse = api.get("/api/v1/indicators?retracted=false").await.json();
        assert!(q.items.iter().all(|v| v.id != id));
    }
    stop_all(nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn red_indicators_reach_only_their_recipients() {
    let fed = dev_federation(&["ee", "lv", "lt"]);
    let nodes = vec![start(&fed, "ee").await, start(&fed, "lv").await, start(&fed, "lt").await];
    let (ee, lv, lt) =
        (Api::new(&fed, "ee", &nodes[0]), Api::new(&fed, "lv", &nodes[1]), Api::new(&fed, "lt", &nodes[2]));
    let ids = ee
        .submit(json!([
            { "type": "ipv4", "value": "198.51.100.66", "tlp": "red", "recipients": ["lv"] },
            { "type": "ipv4", "value": "198.51.100.67", "tlp": "clear" },
        ]))
        .await;
    let (red, clear) = (&ids[0], &ids[1]);
    let v: IndicatorView = lv.get_until(&format!("/api/v1/indicators/{red}"), 20, |r| r.status == 200).await.json();
    assert_eq!((v.tlp.as_str(), v.recipients.clone()), ("red", vec!["lv".to_string()]));
    // Once lt holds the later entry, it holds the RED one too, as a redacted stub.
    lt.get_until(&format!("/api/v1/indicators/{clear}"), 20, |r| r.status == 200).await;
    lt.get(&format!("/api/v1/indicators/{red}")).await.check_error(404, "not_found");
    let q: QueryResponse = lt.get("/api/v1/indicators?origin=ee").await.json();
    assert_eq!(q.items.iter().map(|v| v.id.as_str()).collect::<Vec<_>>(), [clear.as_str()]);
    let q: QueryResponse = lt.get("/api/v1/indicators?type=ipv4&value=198.51.100.66").await.json();
    assert!(q.items.is_empty());
    let q: QueryResponse = lv.get("/api/v1/indicators?tlp=red").await.json();
    assert_eq!(q.items.iter().map(|v| v.id.as_str()).collect::<Vec<_>>(), [red.as_str()]);
    stop_all(nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amber_strict_is_hidden_from_read_only_tokens() {
    let fed = dev_federation(&["ee"]);
    let ee = start(&fed, "ee").await;
    let api = Api::new(&fed, "ee", &ee);
    let ids = api
        .submit(json!([
            { "type": "ipv4", "value": "192.0.2.50", "tlp": "amber+strict" },
            { "type": "ipv4", "value": "192.0.2.51", "tlp": "amber" },
        ]))
        .await;
    let listed = |r: Resp| r.json::<QueryResponse>().items.into_iter().map(|v| v.id).collect::<Vec<_>>();
    assert_eq!(listed(api.get("/api/v1/indicators").await), ids);
    assert_eq!(listed(api.get_ro("/api/v1/indicators").await), [ids[1].clone()]);
    assert!(listed(api.get_ro("/api/v1/indicators?tlp=amber%2Bstrict").await).is_empty());
    assert!(listed(api.get_ro("/api/v1/indicators?type=ipv4&value=192.0.2.50").await).is_empty());
    assert_eq!(api.get(&format!("/api/v1/indicators/{}", ids[0])).await.status, 200);
    api.get_ro(&format!("/api/v1/indicators/{}", ids[0])).await.check_error(404, "not_found");
    assert_eq!(api.get_ro(&format!("/api/v1/indicators/{}", ids[1])).await.status, 200);
    ee.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_required_and_read_only_tokens_cannot_write() {
    let fed = dev_federation(&["ee"]);
    let ee = start(&fed, "ee").await;
    let api = Api::new(&fed, "ee", &ee);
    let wrong = "0".repeat(api.rw.len());
    for (method, path) in [("GET", "/api/v1/indicators"), ("GET", "/api/v1/status"), ("GET", "/metrics")] {
        for token in [None, Some(wrong.as_str()), Some("")] {
            let r = api.request(method, path, token, None).await;
            r.check_error(401, "unauthorized");
            assert_eq!(r.header("www-authenticate"), Some("Bearer"));
        }
        assert_eq!(api.request(method, path, Some(&api.ro), None).await.status, 200);
    }
    let body = json!({ "indicators": [{ "type": "ipv4", "value": "192.0.2.1" }] }).to_string();
    api.request("POST", "/api/v1/indicators", None, Some(&body)).await.check_error(401, "unauthorized");
    let r = api.request("POST", "/api/v1/indicators", Some(&api.ro), Some(&body)).await;
    r.check_error(403, "forbidden");
    // The refused write stored nothing.
    let st: StatusView = api.get("/api/v1/status").await.json();
    assert!(st.heads.is_empty(), "{:?}", st.heads);
    let r = api.request("POST", "/api/v1/indicators/ee:1/retract", Some(&api.ro), Some("{}")).await;
    r.check_error(403, "forbidden");
    let r = api.request("GET", "/healthz", None, None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json::<Value>(), json!({ "status": "ok", "node": "ee", "ready": true }));
    ee.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_json_errors_and_never_a_500() {
    let fed = dev_federation(&["ee"]);
    let ee = start(&fed, "ee").await;
    let api = Api::new(&fed, "ee", &ee);
    let auth = format!("Authorization: Bearer {}\r\n", api.rw);
    let post = |path: &str, ctype: &str, len: usize| {
        format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{auth}Content-Type: {ctype}\r\nContent-Length: {len}\r\n\r\n"
        )
    };
    let json_post = |path: &str, body: &str| (post(path, "application/json", body.len()), body.to_owned());
    let get =
        |path: &str| (format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{auth}\r\n"), String::new());
    let too_many = (0..=SUBMIT_BATCH_MAX).map(|_| r#"{"type":"ipv4","value":"192.0.2.1"}"#).collect::<Vec<_>>();
    let too_many = format!(r#"{{"indicators":[{}]}}"#, too_many.join(","));
    let max = SUBMIT_BATCH_MAX.to_string();
    // (request, status, code, a word the message must contain)
    let cases: Vec<((String, String), u16, &str, &str)> = vec![
        (json_post("/api/v1/indicators", "{\"indicators\": ["), 400, "invalid_json", "JSON"),
        (json_post("/api/v1/indicators", r#"{"indicators": [], "colour": 1}"#), 400, "invalid_json", "colour"),
        (
            json_post("/api/v1/indicators", r#"{"indicators": [{"type": "ipv4", "vlaue": "1.2.3.4"}]}"#),
            400,
            "invalid_json",
            "vlaue",
        ),
        (json_post("/api/v1/indicators", r#"{"indicators": 7}"#), 400, "invalid_json", "indicators"),
        (json_post("/api/v1/indicator", r#""1.2.3.4""#), 400, "invalid_json", "expected"),
        ((post("/api/v1/indicators", "text/plain", 2), "{}".into()), 415, "unsupported_media_type", "application/json"),
        (
            (post("/api/v1/indicators", "application/json", REQUEST_BYTES_MAX + 1), String::new()),
            413,
            "payload_too_large",
            "bytes",
        ),
        (json_post("/api/v1/indicators", &too_many), 413, "batch_too_large", &max),
        (json_post("/api/v1/indicators/ee:1/retract", r#"{"reason": "x", "why": 1}"#), 400, "invalid_json", "why"),
        (json_post("/api/v1/indicators/ee:1/sightings", r#"{"count": -1}"#), 400, "invalid_json", "count"),
        (json_post("/api/v1/indicators/nope/sightings", "{}"), 400, "invalid_id", "ORIGIN:SEQ"),
        (get("/api/v1/indicators?limit=abc"), 400, "invalid_query", "limit"),
        (get("/api/v1/indicators?limit=100000"), 400, "invalid_query", "limit"),
        (get("/api/v1/indicators?tlp=purple"), 400, "invalid_query", "tlp"),
        (get("/api/v1/indicators?type=ipv4&colour=red"), 400, "invalid_query", "colour"),
        (get("/api/v1/indicators?value=1.2.3.4"), 400, "invalid_query", "type"),
        (get("/api/v1/indicators?since=last%20tuesday"), 400, "invalid_query", "since"),
        (get("/api/v1/indicators/ee:0"), 400, "invalid_id", "ee:0"),
        (get("/api/v1/indicators/ee:1"), 404, "not_found", "ee:1"),
        (get("/api/v1/nothing"), 404, "not_found", "/api/v1/nothing"),
        (get("/"), 404, "not_found", "/api/v1"),
        (
            (format!("DELETE /api/v1/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{auth}\r\n"), String::new()),
            405,
            "method_not_allowed",
            "DELETE",
        ),
        (get("/api/v1/indicator"), 405, "method_not_allowed", "GET"),
    ];
    for ((head, body), status, code, word) in cases {
        let r = raw(api.addr, &head, body.as_bytes()).await;
        let line = head.lines().next().unwrap().to_owned();
        assert_ne!(r.status, 500, "{line}: {}", r.text());
        let e = r.check_error(status, code);
        assert!(e.error.message.contains(word), "{line}: {:?} does not mention {word:?}", e.error.message);
        if status == 405 {
            assert!(r.header("allow").is_some(), "{line}: 405 without Allow");
        }
    }
    let r = api.request("GET", "/healthz", None, None).await;
    assert_eq!((r.status, r.json::<Value>()["status"].as_str()), (200, Some("ok")));
    // Nothing of the refused requests was stored.
    let st: StatusView = api.get("/api/v1/status").await.json();
    assert!(st.heads.is_empty(), "{:?}", st.heads);
    ee.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_peers_counters_and_request_latency() {
    let fed = dev_federation(&["ee", "lv", "lt"]);
    let nodes = vec![start(&fed, "ee").await, start(&fed, "lv").await];
    let ee = Api::new(&fed, "ee", &nodes[0]);
    ee.submit(json!([{ "type": "sha256", "value": "a".repeat(64) }])).await;
    let r =
        ee.get_until("/metrics", 20, |r| r.text().lines().any(|l| l == r#"ctix_peer_connected{peer="lv"} 1"#)).await;
    assert!(r.header("content-type").unwrap().starts_with("text/plain; version=0.0.4"));
    let text = r.text();
    for line in [
        r#"ctix_peer_connected{peer="lt"} 0"#,
        r#"ctix_entries{origin="ee",kind="indicator"} 1"#,
        r#"ctix_head_seq{origin="ee"} 1"#,
        "ctix_appended_total 1",
        "ctix_quarantined_origins 0",
        "# TYPE ctix_api_request_duration_seconds histogram",
        "# TYPE ctix_appended_total counter",
        r#"ctix_api_request_duration_seconds_bucket{route="/api/v1/indicators",le="+Inf"} 1"#,
        r#"ctix_api_requests_total{route="/api/v1/indicators",status="200"} 1"#,
    ] {
        assert!(text.lines().any(|l| l == line), "no line {line:?} in:\n{text}");
    }
    // Every sample belongs to a family with HELP and TYPE.
    for l in text.lines().filter(|l| !l.starts_with('#')) {
        let name = l.split(['{', ' ']).next().unwrap();
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|f| text.contains(&format!("# TYPE {f} histogram"))))
            .unwrap_or(name);
        assert!(text.contains(&format!("# HELP {family} ")), "no HELP for {family}");
        assert!(text.contains(&format!("# TYPE {family} ")), "no TYPE for {family}");
    }
    // For alerting: this node's certificate expiry, and when each peer was last heard from.
    let cert = ctix::pki::load_certs(&config(&fed, "ee").tls_cert).unwrap();
    let (_, not_after) = ctix::pki::validity(&cert[0]).unwrap();
    let expiry = format!("ctix_tls_cert_expiry_timestamp_seconds {not_after}");
    assert!(text.lines().any(|l| l == expiry), "no line {expiry:?} in:\n{text}");
    assert!(text.lines().any(|l| l.starts_with(r#"ctix_peer_last_seen_timestamp_seconds{peer="lv"} "#)), "{text}");
    assert!(!text.contains(r#"ctix_peer_last_seen_timestamp_seconds{peer="lt"}"#), "{text}");
    stop_all(nodes).await;
}
