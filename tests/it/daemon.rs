//! The daemon binary: `ctix run` starts from a dev-federation config and stops cleanly on
//! SIGTERM and SIGINT, keeping what it acknowledged.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn ctix() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ctix"))
}

/// Starts `ctix run` and waits until its log says it started; returns the child.
fn run_until_started(config: &std::path::Path) -> std::process::Child {
    let mut child =
        ctix().args(["run", "--config"]).arg(config).env("RUST_LOG", "info").stderr(Stdio::piped()).spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("node started") {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(20)).expect("ctix run logged 'node started'");
    child
}

fn stop_with(child: &mut std::process::Child, signal: &str) -> std::process::ExitStatus {
    let ok = Command::new("kill").args([signal, &child.id().to_string()]).status().unwrap();
    assert!(ok.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "ctix run did not exit within 10 s of {signal}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn run_stops_cleanly_on_sigterm_and_sigint() {
    let dir = tempfile::tempdir().unwrap();
    let base = 45_000 + (std::process::id() % 500) as u16 * 3;
    let out = ctix()
        .args(["dev-federation", "--dir"])
        .arg(dir.path())
        .args(["--nodes", "ee,lv", "--base-port", &base.to_string()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for f in ["roster.toml", "ca/ca.crt", "ee/ctix.toml", "ee/node.key", "ee/tls/ee.crt", "ee/credentials.json"] {
        assert!(dir.path().join(f).exists(), "dev-federation wrote {f}");
    }
    let cfg = dir.path().join("ee/ctix.toml");
    let mut child = run_until_started(&cfg);
    assert!(stop_with(&mut child, "-TERM").success(), "exit status after SIGTERM");
    let mut child = run_until_started(&cfg);
    assert!(stop_with(&mut child, "-INT").success(), "exit status after SIGINT");
    // The store is closed cleanly and opens offline.
    let v = ctix()
        .args(["store", "verify", "--data-dir"])
        .arg(dir.path().join("ee/data"))
        .args(["--roster"])
        .arg(dir.path().join("roster.toml"))
        .output()
        .unwrap();
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stderr));
}

#[test]
fn bad_config_gets_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("ctix.toml");
    std::fs::write(&cfg, "node = \"ee\"\ndata_dir = \"d\"\nbogus = 1\n").unwrap();
    let out = ctix().args(["run", "--config"]).arg(&cfg).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bogus") || err.contains("missing field"), "{err}");
    let out = ctix().args(["run", "--config", "/nonexistent/ctix.toml"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read config"));
}
