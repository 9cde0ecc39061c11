//! The client commands (`submit`, `query`, `retract`, `sight`, `status`) run as the `ctix`
//! binary, as an analyst would, against a three-node federation started in this process.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ctix::config::{ConfigFile, Role};
use ctix::node::Running;
use ctix::view::{IndicatorView, StatusView};

use crate::federation::{Fed, config, dev_federation, start};

/// How long an entry may take to reach another node.
const PROPAGATION_SECS: u64 = 30;

/// One node's API as the CLI addresses it.
struct Node {
    url: String,
    rw: String,
    ro: String,
}

impl Node {
    fn new(fed: &Fed, name: &str, running: &Running) -> Node {
        let tokens = config(fed, name).api_tokens;
        let of = |role| tokens.iter().find(|t| t.role == role).unwrap().token.clone();
        Node { url: format!("http://{}", running.api_addr), rw: of(Role::Rw), ro: of(Role::Ro) }
    }

    /// `ctix ARGS --api URL --token RW`.
    async fn rw(&self, args: &[&str]) -> Out {
        ctix(args, &[("--api", &self.url), ("--token", &self.rw)]).await
    }

    /// `ctix ARGS --api URL --token RO`.
    async fn ro(&self, args: &[&str]) -> Out {
        ctix(args, &[("--api", &self.url), ("--token", &self.ro)]).await
    }

    /// `ctix query --json ARGS` until `done` holds for the items; panics after `PROPAGATION_SECS`.
    async fn query_until(&self, args: &[&str], done: impl Fn(&[IndicatorView]) -> bool) -> Vec<IndicatorView> {
        let args: Vec<&str> = ["query", "--json"].iter().chain(args).copied().collect();
        let deadline = Instant::now() + Duration::from_secs(PROPAGATION_SECS);
        loop {
            let out = self.ro(&args).await.ok();
            let items: Vec<IndicatorView> =
                out.stdout.lines().map(|l| serde_json::from_str(l).expect("a JSON IndicatorView per line")).collect();
            if done(&items) {
                return items;
            }
            assert!(Instant::now() < deadline, "{} {args:?}: still {} items: {}", self.url, items.len(), out.stdout);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// What a run of the binary did.
#[derive(Debug)]
pub(crate) struct Out {
    pub(crate) code: Option<i32>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Out {
    pub(crate) fn ok(self) -> Out {
        assert_eq!(self.code, Some(0), "ctix failed: {self:?}");
        self
    }

    /// Asserts exit code 1 and an error on stderr that contains every one of `needles`.
    fn fails_with(self, needles: &[&str]) -> Out {
        assert_eq!(self.code, Some(1), "expected exit code 1: {self:?}");
        assert!(self.stderr.starts_with("error: "), "{self:?}");
        for n in needles {
            assert!(self.stderr.contains(n), "stderr lacks {n:?}: {self:?}");
        }
        self
    }
}

/// Runs `ctix ARGS FLAGS` on the blocking pool, with no `CTIX_API`/`CTIX_TOKEN` from outside.
pub(crate) async fn ctix(args: &[&str], flags: &[(&str, &str)]) -> Out {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_ctix"));
    cmd.args(args).env_remove("CTIX_API").env_remove("CTIX_TOKEN").stdin(std::process::Stdio::null());
    for (flag, value) in flags {
        cmd.args([flag, value]);
    }
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("running ctix")).await.unwrap();
    Out {
        code: out.status.code(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// Starts ee, lv and lt; returns the running nodes and their API addresses.
async fn federation() -> (Fed, Vec<Running>, Vec<Node>) {
    let fed = dev_federation(&["ee", "lv", "lt"]);
    let mut running = Vec::new();
    for n in ["ee", "lv", "lt"] {
        running.push(start(&fed, n).await);
    }
    let nodes = ["ee", "lv", "lt"].iter().zip(&running).map(|(n, r)| Node::new(&fed, n, r)).collect();
    (fed, running, nodes)
}

async fn stop_all(running: Vec<Running>) {
    for r in running {
        r.stop().await;
    }
}

/// A copy of `node`'s config whose `api.listen` is `addr`, next to the original (relative paths
/// in it still resolve).
fn config_with_api(fed: &Fed, node: &str, addr: SocketAddr) -> PathBuf {
    let original = &fed.configs[node];
    let mut file: ConfigFile = toml::from_str(&std::fs::read_to_string(original).unwrap()).unwrap();
    file.api.listen = addr;
    let path = original.with_file_name("cli-test.toml");
    std::fs::write(&path, toml::to_string(&file).unwrap()).unwrap();
    path
}

/// The entry id in `stored ID (…)`.
fn stored_id(out: &Out) -> String {
    let line = out.stdout.lines().next().unwrap_or_default();
    let id = line.strip_prefix("stored ").and_then(|r| r.split(' ').next());
    id.unwrap_or_else(|| panic!("expected `stored ID (…)`: {out:?}")).to_owned()
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_query_retract_sight_and_status_across_the_federation() {
    let (fed, running, n) = federation().await;
    let (ee, lv, lt) = (&n[0], &n[1], &n[2]);

    let out = ee
        .rw(&[
            "submit",
            "--type",
            "ipv4",
            "--value",
            "203.0.113.77",
            "--tlp",
            "green",
            "--confidence",
            "80",
            "--tag",
            "APT28",
            "--tag",
            "phishing",
            "--technique",
            "T1566",
            "--description",
            "C2 node",
        ])
        .await
        .ok();
    let id = stored_id(&out);
    assert!(id.starts_with("ee:") && out.stdout.contains("(content id "), "{out:?}");
    for node in [lv, lt] {
        let items = node.query_until(&["--type", "ipv4", "--value", "203.0.113.77"], |i| i.len() == 1).await;
        let v = &items[0];
        assert_eq!((v.id.as_str(), v.origin.as_str(), v.itype.as_str()), (id.as_str(), "ee", "ipv4"));
        assert_eq!((v.tlp.as_str(), v.confidence, v.retracted, v.sightings), ("green", 80, false, 0));
        assert_eq!(
            (v.tags.clone(), v.techniques.clone()),
            (vec!["apt28".into(), "phishing".into()], vec!["T1566".into()])
        );
    }

    // The table: a header, then one row per indicator.
    let table = lv.ro(&["query", "--origin", "ee"]).await.ok();
    let mut lines = table.stdout.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["ID", "TYPE", "VALUE", "TLP", "CONF", "CREATED", "RETRACTED", "SIGHTINGS"]);
    let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        (row[0], row[2], row[3], row[4], row[6], row[7]),
        (id.as_str(), "203.0.113.77", "green", "80", "no", "0")
    );

    // A rejection names the field and exits non-zero; a read-only token cannot write.
    ee.rw(&["submit", "--type", "ipv4", "--value", "203.0.113.999"]).await.fails_with(&["indicator rejected: value:"]);
    ee.ro(&["submit", "--type", "ipv4", "--value", "203.0.113.78"]).await.fails_with(&["403", "read-only"]);

    let out = ee.rw(&["retract", &id, "--reason", "false positive: shared hosting"]).await.ok();
    assert!(stored_id(&out).starts_with("ee:") && out.stdout.contains(&format!("(retraction of {id})")), "{out:?}");
    let items = lt.query_until(&["--retracted", "true"], |i| i.iter().any(|v| v.id == id)).await;
    assert!(items.iter().all(|v| v.retracted));
    let live = lt.ro(&["query", "--json", "--retracted", "false", "--origin", "ee"]).await.ok();
    assert!(!live.stdout.contains(&id), "{live:?}");

    let out = lv.rw(&["sight", &id, "--count", "3", "--note", "seen at the border"]).await.ok();
    assert!(stored_id(&out).starts_with("lv:") && out.stdout.contains("count 3"), "{out:?}");
    ee.query_until(&["--origin", "ee"], |i| i.iter().any(|v| v.id == id && v.sightings == 3)).await;

    let out = lv.ro(&["status", "--json"]).await.ok();
    let status: StatusView = serde_json::from_str(&out.stdout).expect("status --json is a StatusView");
    assert_eq!(status.node, "lv");
    let mut peers: Vec<&str> = status.peers.iter().map(|p| p.name.as_str()).collect();
    peers.sort();
    assert_eq!(peers, ["ee", "lt"]);
    assert!(status.heads.get("ee").is_some_and(|s| *s >= 2) && status.heads.get("lv") == Some(&1), "{status:?}");

    // --config reads the address and a token from the node's config file.
    let cfg = config_with_api(&fed, "ee", running[0].api_addr);
    let out = ctix(&["status", "--config", cfg.to_str().unwrap()], &[]).await.ok();
    assert!(out.stdout.starts_with("node ee: ready") && out.stdout.contains("peers: "), "{out:?}");

    // A wrong token is refused with a message that says which token to use.
    let wrong = "0123456789abcdef0123456789abcdef";
    ctix(&["status"], &[("--api", &ee.url), ("--token", wrong)]).await.fails_with(&["401", "unknown token", "--token"]);
    stop_all(running).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_files_are_sent_in_batches_and_bad_lines_are_listed() {
    let (_fed, running, n) = federation().await;
    let (ee, lv, lt) = (&n[0], &n[1], &n[2]);
    let dir = tempfile::tempdir().unwrap();

    // 20 lines: line 7 is not JSON, line 13 is refused by the node. Batches of 5.
    let lines: Vec<String> = (1..=20)
        .map(|i| match i {
            7 => "{\"type\": \"ipv4\", \"value\": ".to_owned(),
            13 => r#"{"type":"ipv4","value":"198.51.100.300","tags":["bulk"]}"#.to_owned(),
            _ => format!(r#"{{"type":"ipv4","value":"198.51.100.{i}","tags":["bulk"]}}"#),
        })
        .collect();
    let jsonl = write(dir.path(), "iocs.jsonl", &(lines.join("\n") + "\n"));
    let out = ee.rw(&["submit", "--file", &jsonl, "--batch-size", "5"]).await;
    let out = out.fails_with(&["2 of 20 indicators were rejected"]);
    let summary: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(summary[0], "18 accepted, 2 rejected", "{out:?}");
    assert!(summary[1].starts_with("line 7: not an indicator object"), "{out:?}");
    assert!(summary[2].starts_with("line 13: value: "), "{out:?}");
    assert_eq!(summary.len(), 3, "{out:?}");
    lv.query_until(&["--origin", "ee", "--tag", "bulk", "--all"], |i| i.len() == 18).await;

    // CSV with quoted fields: commas, doubled quotes and a line break inside quotes.
    let csv = "type,value,tags,description,tlp\n\
               domain,evil-csv.example,csv;phish,\"Phishing kit, \"\"v2\"\"\",amber\n\
               url,\"http://evil-csv.example/a,b\",csv,\"two\nlines\",green\n";
    let csv = write(dir.path(), "iocs.csv", csv);
    let out = ee.rw(&["submit", "--file", &csv]).await.ok();
    assert_eq!(out.stdout, "2 accepted, 0 rejected\n");
    let items = lt.query_until(&["--tag", "csv"], |i| i.len() == 2).await;
    let domain = items.iter().find(|v| v.itype == "domain").unwrap();
    assert_eq!((domain.value.as_str(), domain.description.as_str()), ("evil-csv.example", "Phishing kit, \"v2\""));
    assert_eq!(domain.tags, ["csv", "phish"]);
    let url = items.iter().find(|v| v.itype == "url").unwrap();
    assert_eq!((url.description.as_str(), url.tlp.as_str()), ("two\nlines", "green"));

    // --atomic: one invalid line, nothing stored.
    let atomic = "type,value,tags\nipv4,192.0.2.10,atomic\nipv4,192.0.2.300,atomic\nipv4,192.0.2.11,atomic\n";
    let atomic = write(dir.path(), "atomic.csv", atomic);
    let out = ee.rw(&["submit", "--file", &atomic, "--atomic"]).await.fails_with(&["1 of 3 indicators"]);
    assert!(out.stdout.contains("nothing was stored (--atomic)") && out.stdout.contains("line 3: value: "), "{out:?}");
    let none = ee.ro(&["query", "--json", "--tag", "atomic"]).await.ok();
    assert_eq!(none.stdout, "");
    stop_all(running).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_api_asks_whether_the_node_runs() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dead: SocketAddr = ([127, 0, 0, 1], port).into();
    let token = "0123456789abcdef0123456789abcdef";
    let url = format!("http://{dead}");
    ctix(&["status"], &[("--api", &url), ("--token", token)]).await.fails_with(&["is the node running", &url]);
    ctix(&["query"], &[("--api", &dead.to_string()), ("--token", token)]).await.fails_with(&["is the node running"]);

    // The same from a node config, whose API nobody serves.
    let fed = dev_federation(&["ee"]);
    let cfg = config_with_api(&fed, "ee", dead);
    let out = ctix(&["submit", "--type", "ipv4", "--value", "192.0.2.1", "--config", cfg.to_str().unwrap()], &[]).await;
    out.fails_with(&["is the node running", "ctix run --config"]);

    ctix(&["status"], &[]).await.fails_with(&["--config PATH", "--api URL"]);
}

/// `ctix roster rotate-key` makes the new key current and retires the old one at the time given;
/// a time in the past, an unknown member and a key already listed are refused with the reason,
/// and the roster file is left as it was.
#[tokio::test]
async fn roster_rotate_key_retires_the_old_key() {
    let fed = dev_federation(&["ee", "lv"]);
    let roster_path = config(&fed, "ee").roster_path.clone();
    let before = ctix::roster::Roster::load(&roster_path).unwrap();
    let old = *before.key(&crate::support::name("ee")).unwrap();
    let new_key = roster_path.with_file_name("ee-new.key");
    let keygen = ctix(&["keygen", "--out", new_key.to_str().unwrap()], &[]).await.ok();
    let hex = keygen.stdout.lines().find_map(|l| l.strip_prefix("public_key = \"")).unwrap().trim_end_matches('"');
    let lv_hex = ctix::pki::public_key_hex(before.key(&crate::support::name("lv")).unwrap());
    let rotate = |member: &'static str, key: String, at: &'static str| {
        let r = roster_path.to_str().unwrap().to_owned();
        async move {
            ctix(
                &[
                    "roster",
                    "rotate-key",
                    "--roster",
                    &r,
                    "--member",
                    member,
                    "--public-key",
                    &key,
                    "--retire-old-at",
                    at,
                ],
                &[],
            )
            .await
        }
    };
    rotate("ee", hex.into(), "-1h").await.fails_with(&["--retire-old-at is in the past"]);
    rotate("xx", hex.into(), "7d").await.fails_with(&["xx is not a member"]);
    rotate("ee", lv_hex, "7d").await.fails_with(&["already listed for another member"]);
    assert_eq!(ctix::roster::Roster::load(&roster_path).unwrap(), before, "a refused rotation changed the roster");

    let now = ctix::now_ms();
    let out = rotate("ee", hex.into(), "7d").await.ok();
    assert!(out.stdout.contains("point ee's signing_key at the new key"), "{out:?}");
    let after = ctix::roster::Roster::load(&roster_path).unwrap();
    let ee = crate::support::name("ee");
    assert_eq!(ctix::pki::public_key_hex(after.key(&ee).unwrap()), hex);
    let retired = after.retired_keys(&ee);
    assert_eq!(retired.len(), 1);
    assert_eq!(retired[0].public_key, old);
    let week = 7 * 86_400_000;
    assert!((now + week..now + week + 60_000).contains(&retired[0].retired_at_ms), "{retired:?}");
}
