//! Operating a node: `ctix config check` on a dev federation broken one thing at a time, and the
//! log format and level settings of `ctix run` with their precedence.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use ctix::config::ConfigFile;

use crate::federation::{Fed, dev_federation};

fn ctix() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ctix"));
    c.env_remove("RUST_LOG").env_remove("CTIX_LOG_FORMAT").stdin(Stdio::null());
    c
}

/// What `ctix config check` printed, and its exit code.
struct Checked {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Checked {
    /// The line of `check`, which must have `level`.
    fn line(&self, level: &str, check: &str) -> &str {
        let prefix = format!("{level:<4} {check}: ");
        self.stdout
            .lines()
            .find(|l| l.starts_with(&prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} line:\n{}{}", self.stdout, self.stderr))
    }

    /// Asserts exit code 1 and a FAIL line of `check` containing every one of `needles`.
    fn fails(&self, check: &str, needles: &[&str]) {
        let line = self.line("FAIL", check);
        for n in needles {
            assert!(line.contains(n), "{check} line lacks {n:?}: {line}");
        }
        assert_eq!(self.code, Some(1), "{}{}", self.stdout, self.stderr);
        assert!(self.stderr.contains("check(s) failed: fix the FAIL lines above"), "{}", self.stderr);
    }
}

fn check(config: &Path) -> Checked {
    let out = ctix().args(["config", "check"]).arg(config).output().unwrap();
    Checked {
        code: out.status.code(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

fn node_dir(fed: &Fed, node: &str) -> PathBuf {
    fed.configs[node].parent().unwrap().to_owned()
}

/// A copy of ee's config, changed by `edit`, next to the original (relative paths still resolve).
fn ee_with(fed: &Fed, edit: impl FnOnce(&mut ConfigFile)) -> PathBuf {
    let mut file = ConfigFile::read(&fed.configs["ee"]).unwrap();
    edit(&mut file);
    let path = node_dir(fed, "ee").join("edited.toml");
    std::fs::write(&path, toml::to_string(&file).unwrap()).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

fn ctix_ok(args: &[&str]) {
    let out = ctix().args(args).output().unwrap();
    assert!(out.status.success(), "ctix {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_fresh_dev_federation_passes_every_check() {
    let fed = dev_federation(&["ee", "lv", "lt"]);
    let c = check(&fed.configs["ee"]);
    assert_eq!(c.code, Some(0), "{}{}", c.stdout, c.stderr);
    for name in ["config", "roster", "node", "settings", "signing key", "ca", "certificate", "tls key", "store"] {
        c.line("ok", name);
    }
    assert!(c.line("ok", "signing key").contains("matches the roster's key for ee"));
    assert!(c.line("ok", "certificate").contains("names ee, chains to the CA, valid until 20"));
    assert!(c.line("ok", "quic port").contains("is free"));
    assert!(c.stdout.lines().last().unwrap().ends_with(" 0 FAIL"), "{}", c.stdout);
    // Only the `user` check may warn: the tests may run as root.
    assert!(c.stdout.lines().filter(|l| l.starts_with("warn")).all(|l| l.starts_with("warn user: ")), "{}", c.stdout);
}

#[test]
fn a_config_that_does_not_parse_is_the_only_finding() {
    let fed = dev_federation(&["ee", "lv"]);
    let path = node_dir(&fed, "ee").join("bad.toml");
    let text = std::fs::read_to_string(&fed.configs["ee"]).unwrap().replace("[net]", "[net]\nlisten_udp = 1");
    std::fs::write(&path, text).unwrap();
    let c = check(&path);
    c.fails("config", &["column 1: unknown field `listen_udp`", "deploy/config/ has commented templates"]);
    assert!(!c.stdout.contains("signing key"), "{}", c.stdout);
}

#[test]
fn signing_key_problems_are_named() {
    let fed = dev_federation(&["ee", "lv"]);
    let key = node_dir(&fed, "ee").join("node.key");

    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    check(&fed.configs["ee"]).fails("signing key", &["can be read by other users (mode 644)", "chmod 600"]);
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();

    let missing = ee_with(&fed, |f| f.keys.signing_key = "nowhere.key".into());
    check(&missing).fails("signing key", &["nowhere.key does not exist: fix keys.signing_key"]);

    // The TLS key is a P-256 key, not ed25519.
    let tls_key = ee_with(&fed, |f| f.keys.signing_key = "tls/ee.key".into());
    check(&tls_key).fails("signing key", &["is not an ed25519 PKCS#8 PEM key", "ctix keygen"]);

    let lv_key = ee_with(&fed, |f| f.keys.signing_key = "../lv/node.key".into());
    let c = check(&lv_key);
    c.fails(
        "signing key",
        &["but the roster lists", "for ee: point keys.signing_key at ee's own key", "forks its log"],
    );
}

/// After a rotation the old key is accepted with a warning until its retirement, then refused.
#[test]
fn a_retiring_key_warns_and_a_retired_key_fails() {
    let fed = dev_federation(&["ee", "lv"]);
    let roster_path = node_dir(&fed, "ee").parent().unwrap().join("roster.toml");
    let ee = ctix::model::NodeName::new("ee").unwrap();
    let new_key = ed25519_dalek::SigningKey::from_bytes(&[9; 32]).verifying_key();
    let rotated = |at_ms: u64, file: &str| {
        let mut r = ctix::roster::Roster::load(&roster_path).unwrap();
        r.rotate_key(&ee, new_key, at_ms).unwrap();
        std::fs::write(node_dir(&fed, "ee").join(file), r.to_toml()).unwrap();
        ee_with(&fed, |f| f.keys.roster = file.into())
    };
    let c = check(&rotated(ctix::now_ms() + 86_400_000, "retiring.toml"));
    let line = c.line("warn", "signing key");
    assert!(line.contains("a key the roster retires at") && line.contains("restart before then"), "{line}");
    assert_eq!(c.code, Some(0), "a warning alone passes: {}{}", c.stdout, c.stderr);
    check(&rotated(ctix::now_ms() - 60_000, "retired.toml"))
        .fails("signing key", &["a key the roster retired at", "the node will not start with it"]);
}

#[test]
fn roster_and_node_problems_are_named() {
    let fed = dev_federation(&["ee", "lv", "lt"]);
    let c = check(&ee_with(&fed, |f| f.node = "pl".into()));
    c.fails("node", &["node pl is not in the roster", "members: ee, lt, lv", "fix `node`"]);

    let roster = node_dir(&fed, "ee").parent().unwrap().join("roster.toml");
    let text = std::fs::read_to_string(&roster).unwrap();
    let lv_addr = text.lines().filter(|l| l.starts_with("quic_addr")).nth(2).unwrap().to_owned();
    let lt_addr = text.lines().filter(|l| l.starts_with("quic_addr")).nth(1).unwrap().to_owned();
    let shared = node_dir(&fed, "ee").join("shared-addr-roster.toml");
    std::fs::write(&shared, text.replace(&lt_addr, &lv_addr)).unwrap();
    let c = check(&ee_with(&fed, |f| f.keys.roster = shared.file_name().unwrap().into()));
    c.fails("roster", &["share quic_addr", "give the corrected file to every member"]);

    let missing = ee_with(&fed, |f| f.keys.roster = "no-roster.toml".into());
    let c = check(&missing);
    c.fails("roster", &["cannot read roster", "no-roster.toml", "the same on every member"]);
    // The key is still checked, but cannot be compared.
    assert!(c.line("ok", "signing key").contains("not compared with the roster"));
}

#[test]
fn certificate_problems_are_named() {
    let fed = dev_federation(&["ee", "lv"]);
    let dir = node_dir(&fed, "ee");
    let fed_dir = dir.parent().unwrap().to_owned();

    let lv_cert = ee_with(&fed, |f| {
        f.keys.tls_cert = "../lv/tls/lv.crt".into();
        f.keys.tls_key = "../lv/tls/lv.key".into();
    });
    check(&lv_cert).fails("certificate", &["names lv, not this node ee", "install ee's own certificate"]);

    // A certificate for ee from another CA.
    let other_ca = fed_dir.join("other-ca");
    ctix_ok(&["ca", "init", "--dir", other_ca.to_str().unwrap(), "--federation", "other"]);
    let other = fed_dir.join("other-tls");
    ctix_ok(&["ca", "issue", "ee", "--ca-dir", other_ca.to_str().unwrap(), "--out-dir", other.to_str().unwrap()]);
    let foreign = ee_with(&fed, |f| {
        f.keys.tls_cert = other.join("ee.crt");
        f.keys.tls_key = other.join("ee.key");
    });
    check(&foreign).fails("certificate", &["is not signed by the CA in", "ca.crt", "fix keys.ca_cert"]);

    // The right CA, but a key from another issue.
    let mismatched = ee_with(&fed, |f| f.keys.tls_key = other.join("ee.key"));
    check(&mismatched).fails("tls key", &["does not belong to the certificate in keys.tls_cert"]);

    let no_ca = ee_with(&fed, |f| f.keys.ca_cert = "missing-ca.crt".into());
    let c = check(&no_ca);
    c.fails("ca", &["missing-ca.crt", "keys.ca_cert must be the federation CA's ca.crt"]);
    assert!(c.line("FAIL", "certificate").contains("not checked against the CA"));
}

#[test]
fn a_certificate_near_expiry_warns_with_its_date_and_passes() {
    let fed = dev_federation(&["ee", "lv"]);
    let fed_dir = node_dir(&fed, "ee").parent().unwrap().to_owned();
    let short = fed_dir.join("short-tls");
    let ca = fed_dir.join("ca");
    ctix_ok(&[
        "ca",
        "issue",
        "ee",
        "--ca-dir",
        ca.to_str().unwrap(),
        "--out-dir",
        short.to_str().unwrap(),
        "--days",
        "10",
    ]);
    let path = ee_with(&fed, |f| {
        f.keys.tls_cert = short.join("ee.crt");
        f.keys.tls_key = short.join("ee.key");
    });
    let c = check(&path);
    assert_eq!(c.code, Some(0), "a warning alone does not fail: {}{}", c.stdout, c.stderr);
    let line = c.line("warn", "certificate");
    let cert = ctix::pki::load_certs(&short.join("ee.crt")).unwrap();
    let (_, not_after) = ctix::pki::validity(&cert[0]).unwrap();
    let expiry = time::OffsetDateTime::from_unix_timestamp(not_after).unwrap();
    let date = format!("{:04}-{:02}-{:02}", expiry.year(), u8::from(expiry.month()), expiry.day());
    // Issued for 10 days (to the second): 9 or 10 whole days are left, depending on rounding.
    assert!(line.contains(&format!("expires on {date} (in ")), "{line}");
    assert!(line.contains("(in 9 days)") || line.contains("(in 10 days)"), "{line}");
    assert!(line.contains("ctix ca issue ee"), "{line}");
}

#[test]
fn busy_ports_and_an_unusable_store_are_named() {
    let fed = dev_federation(&["ee", "lv"]);
    let file = ConfigFile::read(&fed.configs["ee"]).unwrap();
    let udp = std::net::UdpSocket::bind(file.net.listen).unwrap();
    let tcp = std::net::TcpListener::bind(file.api.listen).unwrap();
    let c = check(&fed.configs["ee"]);
    c.fails("quic port", &[&format!("udp {} is in use", file.net.listen), "change net.listen"]);
    c.fails("api port", &[&format!("tcp {} is in use", file.api.listen), "change api.listen"]);
    drop((udp, tcp));

    let elsewhere = ee_with(&fed, |f| f.net.listen = "192.0.2.1:7401".parse().unwrap());
    check(&elsewhere).fails("quic port", &["192.0.2.1:7401 is not an address of this host"]);

    let not_dir = ee_with(&fed, |f| f.data_dir = "credentials.json".into());
    check(&not_dir).fails("store", &["credentials.json is not a directory"]);

    let later = ee_with(&fed, |f| f.data_dir = "not/yet/here".into());
    let c = check(&later);
    assert!(c.line("ok", "store").contains("does not exist yet; the node creates it in"), "{}", c.stdout);
}

#[test]
fn placeholder_and_short_tokens_fail_the_settings_check() {
    let fed = dev_federation(&["ee", "lv"]);
    let placeholder = ee_with(&fed, |f| f.api.tokens[0].token = ctix::config::API_TOKEN_PLACEHOLDER.to_owned());
    check(&placeholder).fails("settings", &["still the template's placeholder", "openssl rand -hex 32"]);
    let bad_level = ee_with(&fed, |f| f.log.level = "info,ctix=loud".into());
    check(&bad_level).fails("settings", &["log.level", "is not a valid level"]);
}

/// Runs `ctix run` until a stderr line contains `until`, then SIGTERMs it; returns every line.
fn run_logging(config: &Path, env: &[(&str, &str)], flags: &[&str], until: &str) -> Vec<String> {
    let mut cmd = ctix();
    cmd.args(["run", "--config"]).arg(config).args(flags).stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let until = until.to_owned();
    let reader = std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains(&until) {
                let _ = tx.send(());
            }
            lines.push(line);
        }
        lines
    });
    let seen = rx.recv_timeout(Duration::from_secs(20));
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let status = child.wait().unwrap();
    let lines = reader.join().unwrap();
    assert!(seen.is_ok(), "no line with the expected text: {lines:#?}");
    assert!(status.success(), "{status}: {lines:#?}");
    lines
}

fn json_lines(lines: &[String]) -> Vec<serde_json::Value> {
    lines.iter().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))).collect()
}

#[test]
fn log_format_and_levels_come_from_flag_then_environment_then_file() {
    let fed = dev_federation(&["ee"]);
    let path = ee_with(&fed, |f| {
        f.log.format = ctix::config::LogFormat::Json;
        f.log.level = "warn,ctix::node=info".into();
    });

    // The file alone: JSON, and only ctix::node speaks at info.
    let lines = run_logging(&path, &[], &[], "node started");
    let events = json_lines(&lines);
    let started = events.iter().find(|e| e["fields"]["message"] == "node started").expect("node started");
    assert_eq!((started["level"].as_str(), started["target"].as_str()), (Some("INFO"), Some("ctix::node")));
    assert!(started["fields"]["node"] == "ee" && started["timestamp"].is_string(), "{started}");
    for e in &events {
        assert!(e["target"] == "ctix::node" || e["level"] == "WARN" || e["level"] == "ERROR", "filtered out: {e}");
    }

    // The environment over the file: text lines, and ctix::api's info line now shows.
    let env = [("CTIX_LOG_FORMAT", "text"), ("RUST_LOG", "info")];
    let lines = run_logging(&path, &env, &[], "API listening");
    assert!(lines.iter().all(|l| !l.starts_with('{')), "{lines:#?}");
    assert!(lines.iter().any(|l| l.contains("INFO") && l.contains("ctix::node") && l.contains("node started")));

    // The flags over the environment: JSON again, only ctix::api.
    let env = [("CTIX_LOG_FORMAT", "text"), ("RUST_LOG", "off")];
    let lines = run_logging(&path, &env, &["--log-format", "json", "--log-level", "ctix::api=info"], "API listening");
    let events = json_lines(&lines);
    assert!(!events.is_empty() && events.iter().all(|e| e["target"] == "ctix::api"), "{events:#?}");

    // A bad level from the environment stops the start, naming its source.
    let out = ctix().args(["run", "--config"]).arg(&path).env("RUST_LOG", "ctix=loud").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("--log-level (or RUST_LOG): \"ctix=loud\" is not a valid level"), "{stderr}");
}
