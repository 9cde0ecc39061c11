//! The web dashboard's routes over real HTTP (`api/dashboard.rs`): the embedded assets and their
//! headers, no external URL in them, sign-in with a token for an `HttpOnly` `SameSite=Strict`
//! session cookie that reads but never writes, data refused without credentials, the recent
//! indicators (newest first, filtered) and the fork evidence. The page itself is driven in a real
//! browser by `scripts/check-dashboard.sh`.

use std::net::SocketAddr;

use ctix::log::{self, VerifiedEntry};
use ctix::store::{IngestOutcome, Store, StoreOptions};
use serde_json::{Value, json};

use crate::api::{Api, Resp, raw};
use crate::federation::{config, dev_federation, ind, start};
use crate::support::name;

/// The embedded assets: path, content type.
const ASSETS: [(&str, &str); 4] = [
    ("/dashboard/", "text/html; charset=utf-8"),
    ("/dashboard/dashboard.js", "text/javascript; charset=utf-8"),
    ("/dashboard/dashboard.css", "text/css; charset=utf-8"),
    ("/dashboard/favicon.svg", "image/svg+xml"),
];

/// A request with optional extra header lines (each ending in `\r\n`) and a JSON body.
async fn request(addr: SocketAddr, method: &str, path: &str, extra: &str, body: Option<&str>) -> Resp {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{extra}");
    if let Some(b) = body {
        head += &format!("Content-Type: application/json\r\nContent-Length: {}\r\n", b.len());
    }
    raw(addr, &(head + "\r\n"), body.unwrap_or("").as_bytes()).await
}

fn with_cookie(c: &str) -> String {
    format!("Cookie: {c}\r\n")
}

/// Signs in with `token`; returns the `name=value` of the session cookie.
async fn login(addr: SocketAddr, token: &str) -> String {
    let r = request(addr, "POST", "/dashboard/login", "", Some(&json!({ "token": token }).to_string())).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let set = r.header("set-cookie").expect("a session cookie").to_owned();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age="] {
        assert!(set.contains(attr), "the session cookie lacks {attr}: {set}");
    }
    assert!(!set.contains("Secure"), "a Secure cookie would not be kept over plain HTTP: {set}");
    set.split(';').next().unwrap().to_owned()
}

fn assert_unauthorized(r: &Resp, what: &str) {
    assert_eq!(r.status, 401, "{what}: {}", r.text());
    let v: Value = r.json();
    assert_eq!(v["error"]["code"], "unauthorized", "{what}: {}", r.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assets_are_served_self_contained_with_their_content_types() {
    let fed = dev_federation(&["ee"]);
    let ee = start(&fed, "ee").await;
    let addr = ee.api_addr;
    let mut bodies = Vec::new();
    for (path, ctype) in ASSETS {
        // No credentials: the assets hold no data.
        let r = request(addr, "GET", path, "", None).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        assert_eq!(r.header("content-type"), Some(ctype), "{path}");
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"), "{path}");
        let csp = r.header("content-security-policy").unwrap_or_else(|| panic!("{path}: no CSP"));
        for directive in ["default-src 'none'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"] {
            assert!(csp.contains(directive), "{path}: CSP {csp:?} lacks {directive:?}");
        }
        assert!(!csp.contains("unsafe-inline") && !csp.contains("http"), "{path}: CSP {csp:?}");
        assert!(!r.body.is_empty(), "{path}");
        bodies.push((path, r.text()));
    }
    // Nothing in the assets reaches outside the node: the only absolute URL is the SVG
    // namespace, which names and fetches nothing.
    for (path, text) in &bodies {
        let text = text.replace("http://www.w3.org/2000/svg", "");
        for bad in ["http:", "https:", "ws:", "wss:", "ftp:", "\"//", "'//", "`//", "url(", "@import", "<script>"] {
            assert!(!text.contains(bad), "{path} contains {bad:?}: an external or inline reference");
        }
    }
    // Every file the page names is served.
    let index = &bodies[0].1;
    let mut named = 0;
    for attr in ["src=\"", "href=\""] {
        for part in index.split(attr).skip(1) {
            let file = part.split('"').next().unwrap();
            let r = request(addr, "GET", &format!("/dashboard/{file}"), "", None).await;
            assert_eq!(r.status, 200, "index.html names {file}, which is not served");
            named += 1;
        }
    }
    assert_eq!(named, 3, "index.html should name its script, style and icon");
    // `/dashboard` leads to the page.
    let r = request(addr, "GET", "/dashboard", "", None).await;
    assert_eq!((r.status, r.header("location")), (308, Some("/dashboard/")));
    ee.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_needs_a_token_or_a_session_and_a_session_only_reads() {
    let fed = dev_federation(&["ee"]);
    let ee = start(&fed, "ee").await;
    let api = Api::new(&fed, "ee", &ee);
    let addr = ee.api_addr;
    api.submit(json!([{ "type": "ipv4", "value": "203.0.113.9", "tlp": "green" }])).await;
    let data = ["/dashboard/api/indicators", "/dashboard/api/forks", "/api/v1/status", "/api/v1/drills"];

    // Without credentials, or with a cookie the node never issued: no data.
    for path in data {
        assert_unauthorized(&request(addr, "GET", path, "", None).await, path);
        let forged = with_cookie("ctix_session=00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff");
        assert_unauthorized(&request(addr, "GET", path, &forged, None).await, path);
    }
    let r = request(addr, "GET", "/dashboard/session", "", None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json::<Value>()["authenticated"], false);

    // Sign-in refusals: a wrong token, a form post, another site's page.
    let bad =
        request(addr, "POST", "/dashboard/login", "", Some(r#"{"token":"no-such-token-0000000000000000000"}"#)).await;
    assert_unauthorized(&bad, "a wrong token");
    assert!(bad.header("set-cookie").is_none());
    let form = format!(
        "POST /dashboard/login HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
        6 + api.ro.len()
    );
    let r = raw(addr, &form, format!("token={}", api.ro).as_bytes()).await;
    assert_eq!(r.status, 415, "a form post must not sign in: {}", r.text());
    let r = request(
        addr,
        "POST",
        "/dashboard/login",
        "Origin: http://evil.example\r\n",
        Some(&json!({ "token": api.ro }).to_string()),
    )
    .await;
    assert_eq!(r.status, 403, "a login from another origin: {}", r.text());
    assert!(r.header("set-cookie").is_none());

    // A read-only token's session reads...
    let cookie = login(addr, &api.ro).await;
    let c = with_cookie(&cookie);
    for path in data {
        let r = request(addr, "GET", path, &c, None).await;
        assert_eq!(r.status, 200, "{path} with the session: {}", r.text());
    }
    let s: Value = request(addr, "GET", "/dashboard/session", &c, None).await.json();
    assert_eq!(
        (s["authenticated"].clone(), s["role"].clone(), s["token"].clone()),
        (json!(true), json!("ro"), json!("constituents"))
    );
    // ...and an `rw` token's session cannot write either: writes take a bearer token.
    let rw_cookie = with_cookie(&login(addr, &api.rw).await);
    for (method, path, body) in [
        ("POST", "/api/v1/indicator", r#"{"type":"ipv4","value":"192.0.2.66"}"#),
        ("POST", "/api/v1/indicators/ee:1/retract", r#"{"reason":"x"}"#),
        ("POST", "/api/v1/drills", r#"{"scenario":""}"#),
    ] {
        assert_unauthorized(&request(addr, method, path, &rw_cookie, Some(body)).await, path);
    }
    let q: Value = api.get("/api/v1/indicators").await.json();
    assert_eq!(q["items"].as_array().unwrap().len(), 1, "nothing was written through the session");

    // Signing out ends the session and clears the cookie.
    let r = request(addr, "POST", "/dashboard/logout", &c, Some("{}")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.header("set-cookie").is_some_and(|s| s.contains("Max-Age=0")));
    assert_unauthorized(&request(addr, "GET", "/api/v1/status", &c, None).await, "after sign-out");
    ee.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recent_indicators_come_newest_first_and_filtered() {
    let fed = dev_federation(&["ee"]);
    let ee = start(&fed, "ee").await;
    let api = Api::new(&fed, "ee", &ee);
    api.submit(json!([
        { "type": "ipv4", "value": "203.0.113.1", "tlp": "green", "tags": ["botnet"] },
        { "type": "domain", "value": "phish.example", "tlp": "amber", "description": "Credential phishing kit" },
        { "type": "domain", "value": "strict.example", "tlp": "amber+strict" },
        { "type": "ipv4", "value": "203.0.113.2", "tlp": "clear", "tags": ["Phishing-Infra"] },
    ]))
    .await;
    let values = |r: Resp| -> Vec<String> {
        assert_eq!(r.status, 200, "{}", r.text());
        let v: Value = r.json();
        v["items"].as_array().unwrap().iter().map(|i| i["value"].as_str().unwrap().to_owned()).collect()
    };
    let all = values(api.get("/dashboard/api/indicators").await);
    assert_eq!(all, ["203.0.113.2", "strict.example", "phish.example", "203.0.113.1"]);
    for (query, want) in [
        ("type=domain", vec!["strict.example", "phish.example"]),
        ("tlp=clear", vec!["203.0.113.2"]),
        ("origin=ee&limit=1", vec!["203.0.113.2"]),
        ("origin=lv", vec![]),
        // Text matches value, tags and description, ignoring case.
        ("text=PHISH", vec!["203.0.113.2", "phish.example"]),
        ("text=credential", vec!["phish.example"]),
        ("text=113.1", vec!["203.0.113.1"]),
        ("type=ipv4&text=botnet", vec!["203.0.113.1"]),
    ] {
        assert_eq!(values(api.get(&format!("/dashboard/api/indicators?{query}")).await), want, "{query}");
    }
    // A read-only token never sees TLP:AMBER+STRICT.
    let ro = values(api.get_ro("/dashboard/api/indicators").await);
    assert_eq!(ro, ["203.0.113.2", "phish.example", "203.0.113.1"]);
    let r = api.get("/dashboard/api/indicators?limit=2").await;
    let v: Value = r.json();
    assert_eq!((v["items"].as_array().unwrap().len(), v["more"].clone()), (2, json!(true)));
    for (query, param) in [("colour=red", "colour"), ("type=ipv7", "type"), ("limit=0", "limit")] {
        let r = api.get(&format!("/dashboard/api/indicators?{query}")).await;
        assert_eq!(r.status, 400, "{query}: {}", r.text());
        assert_eq!(r.json::<Value>()["error"]["field"], param, "{query}");
    }
    ee.stop().await;
}

/// `at` signed two different entries for seq 1; ee holds one and the other as evidence. `at`
/// sorts before `ee`, so ee never dials it (it is not started).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forks_show_the_quarantined_origin_and_both_entries() {
    let fed = dev_federation(&["at", "ee"]);
    let ee_cfg = config(&fed, "ee");
    let key = ctix::pki::load_node_key(&config(&fed, "at").signing_key).unwrap();
    let a = VerifiedEntry::sign_own(&key, &name("at"), None, ctix::now_ms(), ind("203.0.113.10"));
    let b = VerifiedEntry::sign_own(&key, &name("at"), None, ctix::now_ms(), ind("203.0.113.11"));
    {
        let store = Store::open(&ee_cfg.data_dir, &StoreOptions::default()).unwrap();
        let authentic = |e: &VerifiedEntry| log::authenticate(&ee_cfg.roster, e.entry().clone()).unwrap();
        assert!(matches!(store.ingest(vec![authentic(&a)]).unwrap()[0], IngestOutcome::Stored(_)));
        assert_eq!(store.ingest(vec![authentic(&b)]).unwrap(), vec![IngestOutcome::Forked]);
    }
    let ee = start(&fed, "ee").await;
    let api = Api::new(&fed, "ee", &ee);
    let r = api.get("/dashboard/api/forks").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v: Value = r.json();
    assert_eq!(v["quarantined"], json!(["at"]));
    let f = &v["forks"][0];
    assert_eq!((f["origin"].clone(), f["seq"].clone()), (json!("at"), json!(1)));
    assert_eq!(f["conflict"], "two entries at one position");
    assert_eq!(f["held"]["hash"], hex::encode(a.hash()));
    assert_eq!(f["conflicting"]["hash"], hex::encode(b.hash()));
    assert_eq!(f["held"]["what"], "ipv4 203.0.113.10 (amber)");
    assert_eq!(f["conflicting"]["what"], "ipv4 203.0.113.11 (amber)");
    assert_eq!(f["conflicting"]["kind"], "indicator");
    assert_eq!(v["forks"].as_array().unwrap().len(), 1);
    ee.stop().await;
}
