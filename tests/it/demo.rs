//! The README's main command, run as a user would.

use std::process::Command;

/// Three free UDP ports for QUIC and the three TCP ports 100 above them for the API.
fn free_demo_port(salt: u16) -> u16 {
    let seed = 40_000 + (std::process::id() % 1_000) as u16 * 7 + salt * 1_000;
    (0..200u16)
        .map(|i| seed.wrapping_add(i * 13) % 20_000 + 30_000)
        .find(|&b| {
            (0..3).all(|i| {
                std::net::UdpSocket::bind(("127.0.0.1", b + i)).is_ok()
                    && std::net::TcpListener::bind(("127.0.0.1", b + 100 + i)).is_ok()
            })
        })
        .expect("free ports")
}

#[test]
fn demo_runs_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ctix"))
        .args(["demo", "--dir"])
        .arg(dir.path().join("fed"))
        .args(["--base-port", &free_demo_port(0).to_string()])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "demo failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("reached LT"), "{stdout}");
    assert!(stdout.contains("ok: the federation converged"), "{stdout}");
    // Every node verified the same number of entries.
    let verified: Vec<&str> = stdout.lines().filter(|l| l.contains("entries verify")).collect();
    assert_eq!(verified.len(), 3, "{stdout}");
}

#[test]
fn demo_refuses_a_busy_port_with_a_clear_error() {
    let base = free_demo_port(5);
    let _hold = std::net::UdpSocket::bind(("127.0.0.1", base)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ctix"))
        .args(["demo", "--dir"])
        .arg(dir.path().join("fed"))
        .args(["--base-port", &base.to_string()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("already in use") || stderr.contains("another node"), "{stderr}");
}
