//! `ctix config check PATH`: validates a node's config and everything it points at (keys, roster,
//! certificates, ports, store directory) before the node starts, with one finding per check.
//!
//! Every check that can still run after an earlier one failed does run, so one pass lists every
//! problem. A finding says what is wrong and what to do about it. Nothing here writes anything but
//! a probe file in the store directory, removed at once.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, ServerName, UnixTime};

use crate::config::{Config, ConfigFile};
use crate::model::NodeName;
use crate::pki::{self, PkiError};
use crate::roster::{KeyStatus, Roster};

/// A certificate that expires in fewer days than this is reported as a warning: enough time to
/// have the federation's PKI operator issue a new one and install it.
pub const CERT_EXPIRY_WARN_DAYS: i64 = 30;

const DAY_S: i64 = 86_400;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// The check passed.
    Ok,
    /// The node will start, but something needs attention soon (an expiring certificate).
    Warn,
    /// The node will not start, or will not work as a federation member, until this is fixed.
    Fail,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Warn => "warn",
            Level::Fail => "FAIL",
        }
    }
}

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub level: Level,
    /// What was checked: `config`, `roster`, `node`, `settings`, `signing key`, `tls key`, `ca`,
    /// `certificate`, `quic port`, `api port`, `store`, `user`.
    pub check: &'static str,
    /// What was found and, unless it is fine, what to do.
    pub message: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:<4} {}: {}", self.level.as_str(), self.check, self.message)
    }
}

/// Runs every check on the config at `path`, as of `now_s` (seconds since the epoch).
pub fn check(path: &Path, now_s: i64) -> Vec<Finding> {
    let mut c = Checks(Vec::new());
    c.user();
    let file = match ConfigFile::read(path) {
        Ok(f) => f,
        Err(e) => {
            c.fail("config", format!("{e} (fix the file; deploy/config/ has commented templates)"));
            return c.0;
        }
    };
    let base = path.parent().unwrap_or(Path::new("."));
    let at = |p: &Path| if p.is_absolute() { p.to_owned() } else { base.join(p) };
    c.config_file(path, &file);
    let roster_path = at(&file.keys.roster);
    let roster = c.roster(&roster_path, &file);
    let node = c.node(&file, &roster_path, roster.as_ref());
    if roster.is_some() && node.is_some() {
        match Config::resolve(file.clone(), base) {
            Ok(cfg) => c.settings(&cfg),
            Err(reason) => c.fail("settings", format!("{reason} (fix it in {})", path.display())),
        }
    }
    let member = roster.as_ref().zip(node.as_ref());
    c.signing_key(&at(&file.keys.signing_key), member, now_s);
    let anchors = c.ca(&at(&file.keys.ca_cert), now_s);
    let cert = c.certificate(&at(&file.keys.tls_cert), &at(&file.keys.ca_cert), node.as_ref(), anchors, now_s);
    c.tls_key(&at(&file.keys.tls_key), cert);
    c.port("quic port", file.net.listen, "net.listen");
    c.port("api port", file.api.listen, "api.listen");
    c.store(&at(&file.data_dir));
    c.0
}

/// `ctix config check`: prints one line per finding and a summary; an error if any check failed.
pub fn print(path: &Path) -> anyhow::Result<()> {
    let findings = check(path, crate::now_ms().try_into().unwrap_or(i64::MAX) / 1000);
    for f in &findings {
        println!("{f}");
    }
    let count = |l| findings.iter().filter(|f| f.level == l).count();
    let (ok, warn, fail) = (count(Level::Ok), count(Level::Warn), count(Level::Fail));
    println!("{ok} ok, {warn} warn, {fail} FAIL");
    if fail > 0 {
        anyhow::bail!(
            "{}: {fail} check(s) failed: fix the FAIL lines above, then run `ctix config check` again",
            path.display()
        );
    }
    Ok(())
}

/// The trust anchors of the CA file, with the CRLs it holds.
struct Anchors {
    certs: Vec<CertificateDer<'static>>,
    crls: Vec<CertificateRevocationListDer<'static>>,
}

struct Checks(Vec<Finding>);

impl Checks {
    fn push(&mut self, level: Level, check: &'static str, message: String) {
        self.0.push(Finding { level, check, message: one_line(&message) });
    }
    fn ok(&mut self, check: &'static str, message: String) {
        self.push(Level::Ok, check, message);
    }
    fn warn(&mut self, check: &'static str, message: String) {
        self.push(Level::Warn, check, message);
    }
    fn fail(&mut self, check: &'static str, message: String) {
        self.push(Level::Fail, check, message);
    }

    /// Root passes permission checks the node's own user may fail.
    fn user(&mut self) {
        if std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0) {
            self.warn(
                "user",
                "running as root, which can read every file: run the check as the user the node runs as \
                 (e.g. `sudo -u ctix ctix config check PATH`) to test its access"
                    .into(),
            );
        }
    }

    fn config_file(&mut self, path: &Path, file: &ConfigFile) {
        let mode = std::fs::metadata(path).map(|m| m.permissions().mode() & 0o777).unwrap_or(0);
        if !file.api.tokens.is_empty() && mode & 0o007 != 0 {
            self.warn(
                "config",
                format!(
                    "{} holds API tokens and every user can read it (mode {mode:03o}): run `chmod 640 {}` \
                     (owner root, group of the node's user) or `chmod 600`",
                    path.display(),
                    path.display()
                ),
            );
        } else {
            self.ok("config", format!("{} parses (node {:?})", path.display(), file.node));
        }
    }

    fn roster(&mut self, path: &Path, file: &ConfigFile) -> Option<Roster> {
        let roster = match Roster::load(path) {
            Ok(r) => r,
            Err(e) => {
                self.fail(
                    "roster",
                    format!("{e} (keys.roster must be the federation's roster file, the same on every member)"),
                );
                return None;
            }
        };
        let mut problems = Vec::new();
        let mut seen: Vec<(&str, &NodeName)> = Vec::new();
        for m in roster.members() {
            let port_ok = m
                .quic_addr
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0));
            if !port_ok {
                problems.push(format!("member {}: quic_addr {:?} is not host:port", m.name, m.quic_addr));
            }
            if let Some((_, other)) = seen.iter().find(|(a, _)| *a == m.quic_addr) {
                problems.push(format!("members {other} and {} share quic_addr {}", m.name, m.quic_addr));
            }
            seen.push((&m.quic_addr, &m.name));
        }
        if !problems.is_empty() {
            self.fail(
                "roster",
                format!(
                    "{}: {} (correct the roster and give the corrected file to every member)",
                    path.display(),
                    problems.join("; ")
                ),
            );
            return Some(roster);
        }
        let members = roster.members().count();
        let own = NodeName::new(&file.node).ok().and_then(|n| roster.get(&n).map(|m| m.quic_addr.clone()));
        let own_port = own.as_deref().and_then(|a| a.rsplit_once(':')).and_then(|(_, p)| p.parse::<u16>().ok());
        match own_port {
            Some(p) if p != file.net.listen.port() => self.warn(
                "roster",
                format!(
                    "the roster gives {} the address {}, but net.listen is port {}: peers dial the roster's \
                     address, so unless a NAT maps one to the other, make them agree",
                    file.node,
                    own.unwrap_or_default(),
                    file.net.listen.port()
                ),
            ),
            _ if members < 2 => self.warn(
                "roster",
                format!("{} lists only {members} member: this node has no peer to replicate with", path.display()),
            ),
            _ => self.ok("roster", format!("{} lists {members} members", path.display())),
        }
        Some(roster)
    }

    fn node(&mut self, file: &ConfigFile, roster_path: &Path, roster: Option<&Roster>) -> Option<NodeName> {
        let node = match NodeName::new(&file.node) {
            Ok(n) => n,
            Err(e) => {
                self.fail("node", format!("node {:?}: {} (use this member's roster name)", file.node, e.reason));
                return None;
            }
        };
        match roster {
            Some(r) if r.get(&node).is_none() => {
                let names: Vec<String> = r.members().map(|m| m.name.to_string()).collect();
                self.fail(
                    "node",
                    format!(
                        "node {node} is not in the roster {} (members: {}): fix `node`, or add this member to the roster",
                        roster_path.display(),
                        names.join(", ")
                    ),
                );
                None
            }
            Some(_) => {
                self.ok("node", format!("{node} is a roster member"));
                Some(node)
            }
            None => Some(node),
        }
    }

    fn settings(&mut self, cfg: &Config) {
        let rw = cfg.api_tokens.iter().filter(|t| t.role == crate::config::Role::Rw).count();
        let ro = cfg.api_tokens.len() - rw;
        if cfg.api_tokens.is_empty() {
            self.warn(
                "settings",
                "no [[api.tokens]]: every API endpoint but /healthz is closed (add an rw token for your \
                 analysts and a token for the Prometheus scraper)"
                    .into(),
            );
        } else if !cfg.api_listen.ip().is_loopback() {
            self.warn(
                "settings",
                format!(
                    "api.listen {} is not a loopback address: the API is plain HTTP with bearer tokens, so \
                     reach it only over a trusted network or through a TLS proxy",
                    cfg.api_listen
                ),
            );
        } else {
            self.ok("settings", format!("{rw} rw and {ro} ro API token(s), log level {:?}", cfg.log.level));
        }
    }

    fn signing_key(&mut self, path: &Path, member: Option<(&Roster, &NodeName)>, now_s: i64) {
        let key = match pki::load_node_key(path) {
            Ok(k) => k,
            Err(e) => return self.fail("signing key", key_error(e, "keys.signing_key")),
        };
        let public = key.verifying_key();
        let Some((roster, node)) = member.filter(|(r, n)| r.key(n).is_some()) else {
            return self.ok(
                "signing key",
                format!("{}: ed25519, mode 0600 (not compared with the roster: fix the roster first)", path.display()),
            );
        };
        let now_ms = u64::try_from(now_s).unwrap_or(0).saturating_mul(1000);
        let when = crate::model::time::format_time;
        match roster.key_status(node, &public, now_ms) {
            KeyStatus::Current => self.ok(
                "signing key",
                format!("{}: ed25519, mode 0600, matches the roster's key for {node}", path.display()),
            ),
            KeyStatus::Retiring { retired_at_ms } => self.warn(
                "signing key",
                format!(
                    "{} is a key the roster retires at {}: point keys.signing_key at {node}'s new key (the roster's \
                     public_key, {}) and restart before then",
                    path.display(),
                    when(retired_at_ms),
                    pki::public_key_hex(roster.key(node).expect("checked above"))
                ),
            ),
            KeyStatus::Retired { retired_at_ms } => self.fail(
                "signing key",
                format!(
                    "{} is a key the roster retired at {}: the node will not start with it; point keys.signing_key at \
                     {node}'s new key (the roster's public_key, {})",
                    path.display(),
                    when(retired_at_ms),
                    pki::public_key_hex(roster.key(node).expect("checked above"))
                ),
            ),
            KeyStatus::Unknown => self.fail(
                "signing key",
                format!(
                    "{} has public key {}, but the roster lists {} for {node}: point keys.signing_key at {node}'s own \
                     key, or correct the roster entry (never make a new key for an existing member: it forks its log)",
                    path.display(),
                    pki::public_key_hex(&public),
                    pki::public_key_hex(roster.key(node).expect("checked above"))
                ),
            ),
        }
    }

    fn ca(&mut self, path: &Path, now_s: i64) -> Option<Anchors> {
        let certs = match pki::load_certs(path) {
            Ok(c) => c,
            Err(e) => {
                self.fail("ca", format!("{e} (keys.ca_cert must be the federation CA's ca.crt)"));
                return None;
            }
        };
        for (i, c) in certs.iter().enumerate() {
            if let Err(e) = webpki::anchor_from_trusted_cert(c) {
                self.fail("ca", format!("{}: certificate {} is not usable as a CA: {e}", path.display(), i + 1));
                return None;
            }
        }
        let crls = match read_crls(path) {
            Ok(c) => c,
            Err(reason) => {
                self.fail(
                    "ca",
                    format!("{}: a CRL section does not parse: {reason} (the node refuses to start)", path.display()),
                );
                return None;
            }
        };
        // The CA expiring ends every member's certificate with it.
        let not_after = certs.iter().filter_map(|c| pki::validity(c).ok()).map(|(_, na)| na).max();
        let crl_note = if crls.is_empty() { String::new() } else { format!(", {} CRL(s)", crls.len()) };
        match not_after {
            Some(na) if na <= now_s => self.fail(
                "ca",
                format!(
                    "{}: the CA certificate expired on {}: the federation needs a new CA (certs/README.md, Rotation)",
                    path.display(),
                    date(na)
                ),
            ),
            Some(na) if na - now_s < CERT_EXPIRY_WARN_DAYS * DAY_S => self.warn(
                "ca",
                format!(
                    "{}: the CA certificate expires on {} (in {} days): rotate the CA before then (certs/README.md)",
                    path.display(),
                    date(na),
                    (na - now_s) / DAY_S
                ),
            ),
            Some(na) => self.ok(
                "ca",
                format!("{}: {} CA certificate(s), valid until {}{crl_note}", path.display(), certs.len(), date(na)),
            ),
            None => self.fail("ca", format!("{}: the CA certificate's validity does not parse", path.display())),
        }
        Some(Anchors { certs, crls })
    }

    fn certificate(
        &mut self,
        path: &Path,
        ca_path: &Path,
        node: Option<&NodeName>,
        anchors: Option<Anchors>,
        now_s: i64,
    ) -> Option<Vec<CertificateDer<'static>>> {
        let certs = match pki::load_certs(path) {
            Ok(c) => c,
            Err(e) => {
                self.fail("certificate", format!("{e} (keys.tls_cert)"));
                return None;
            }
        };
        let leaf = &certs[0];
        let issue =
            |n: &str| format!("`ctix ca issue {n} --ca-dir CA --out-dir NEW` by the PKI operator, then restart");
        let n = node.map_or("NODE".to_owned(), |n| n.to_string());
        let Ok((not_before, not_after)) = pki::validity(leaf) else {
            self.fail("certificate", format!("{}: the validity dates do not parse", path.display()));
            return Some(certs);
        };
        if not_after <= now_s {
            self.fail(
                "certificate",
                format!("{} expired on {}: install a new certificate ({})", path.display(), date(not_after), issue(&n)),
            );
            return Some(certs);
        }
        if not_before > now_s {
            self.fail(
                "certificate",
                format!(
                    "{} is not valid until {}: check this host's clock (`timedatectl`), or wait",
                    path.display(),
                    date(not_before)
                ),
            );
            return Some(certs);
        }
        let Ok(ee) = webpki::EndEntityCert::try_from(leaf) else {
            self.fail("certificate", format!("{} does not parse as X.509", path.display()));
            return Some(certs);
        };
        if let Some(node) = node {
            let name = ServerName::try_from(node.as_str()).expect("a node name is a DNS name");
            if ee.verify_is_valid_for_subject_name(&name).is_err() {
                let names: Vec<String> = ee.valid_dns_names().map(str::to_owned).collect();
                self.fail(
                    "certificate",
                    format!(
                        "{} names {}, not this node {node}: install {node}'s own certificate ({})",
                        path.display(),
                        if names.is_empty() { "no DNS name".to_owned() } else { names.join(", ") },
                        issue(node.as_str())
                    ),
                );
                return Some(certs);
            }
        }
        let Some(anchors) = anchors else {
            self.fail(
                "certificate",
                format!("{}: not checked against the CA, which did not load (see the ca line)", path.display()),
            );
            return Some(certs);
        };
        if let Err(e) = verify_chain(&ee, &anchors, now_s) {
            let why = match e {
                webpki::Error::UnknownIssuer => format!(
                    "is not signed by the CA in {}: install a certificate issued by this federation's CA, or fix keys.ca_cert",
                    ca_path.display()
                ),
                webpki::Error::CertRevoked => {
                    format!("is revoked by a CRL in {}: install a new certificate ({})", ca_path.display(), issue(&n))
                }
                other => format!("does not verify against the CA in {}: {other}", ca_path.display()),
            };
            self.fail("certificate", format!("{} {why}", path.display()));
            return Some(certs);
        }
        let days = (not_after - now_s) / DAY_S;
        if not_after - now_s < CERT_EXPIRY_WARN_DAYS * DAY_S {
            self.warn(
                "certificate",
                format!(
                    "{} expires on {} (in {days} days): install a new one before then ({})",
                    path.display(),
                    date(not_after),
                    issue(&n)
                ),
            );
        } else {
            self.ok(
                "certificate",
                format!(
                    "{} names {n}, chains to the CA, valid until {} ({days} days)",
                    path.display(),
                    date(not_after)
                ),
            );
        }
        Some(certs)
    }

    fn tls_key(&mut self, path: &Path, cert: Option<Vec<CertificateDer<'static>>>) {
        let key = match pki::load_tls_key(path) {
            Ok(k) => k,
            Err(e) => return self.fail("tls key", key_error(e, "keys.tls_key")),
        };
        let signer = match rustls::crypto::ring::sign::any_supported_type(&key) {
            Ok(s) => s,
            Err(e) => {
                return self.fail(
                    "tls key",
                    format!("{}: not a usable TLS key ({e}): use the .key file `ctix ca issue` wrote", path.display()),
                );
            }
        };
        let Some(cert) = cert else {
            return self.ok(
                "tls key",
                format!("{}: mode 0600 (not compared with the certificate, which did not load)", path.display()),
            );
        };
        match rustls::sign::CertifiedKey::new(cert, Arc::clone(&signer)).keys_match() {
            Ok(()) => self.ok("tls key", format!("{}: mode 0600, matches the certificate", path.display())),
            Err(_) => self.fail(
                "tls key",
                format!(
                    "{} does not belong to the certificate in keys.tls_cert: install the .key and .crt that \
                     `ctix ca issue` wrote together",
                    path.display()
                ),
            ),
        }
    }

    fn port(&mut self, check: &'static str, addr: SocketAddr, setting: &str) {
        let (proto, bound) = if check == "quic port" {
            ("udp", std::net::UdpSocket::bind(addr).map(drop))
        } else {
            ("tcp", std::net::TcpListener::bind(addr).map(drop))
        };
        match bound {
            Ok(()) => self.ok(check, format!("{proto} {addr} is free")),
            Err(e) if e.kind() == ErrorKind::AddrInUse => self.fail(
                check,
                format!(
                    "{proto} {addr} is in use: is the node (or another program) already running? \
                     `ss -{}lpn` shows which; stop it or change {setting}",
                    &proto[..1]
                ),
            ),
            Err(e) if e.kind() == ErrorKind::AddrNotAvailable => self.fail(
                check,
                format!("{addr} is not an address of this host: set {setting} to 0.0.0.0:PORT or one of its addresses"),
            ),
            Err(e) if e.kind() == ErrorKind::PermissionDenied => self.fail(
                check,
                format!("no permission to bind {proto} {addr}: ports below 1024 need privileges, choose a higher port"),
            ),
            Err(e) => self.fail(check, format!("cannot bind {proto} {addr}: {e} (check {setting})")),
        }
    }

    fn store(&mut self, dir: &Path) {
        let (probe_dir, note) = match std::fs::metadata(dir) {
            Ok(m) if m.is_dir() => (dir.to_owned(), String::new()),
            Ok(_) => {
                return self
                    .fail("store", format!("{} is not a directory: point data_dir at a directory", dir.display()));
            }
            Err(e) if e.kind() == ErrorKind::NotFound => match dir.ancestors().skip(1).find(|a| a.is_dir()) {
                Some(a) => (a.to_owned(), format!(" (does not exist yet; the node creates it in {})", a.display())),
                None => return self.fail("store", format!("{}: no parent directory exists", dir.display())),
            },
            Err(e) => {
                return self.fail(
                    "store",
                    format!("cannot inspect {}: {e} (check the permissions of its parents)", dir.display()),
                );
            }
        };
        let probe: PathBuf = probe_dir.join(format!(".ctix-config-check-{}", std::process::id()));
        match std::fs::OpenOptions::new().write(true).create_new(true).open(&probe) {
            Ok(_) => {
                let _ = std::fs::remove_file(&probe);
                self.ok("store", format!("{} is writable{note}", dir.display()));
            }
            Err(e) => self.fail(
                "store",
                format!(
                    "cannot write in {}: {e} (give the node's user the directory: `chown ctix: {}`; under systemd \
                     StateDirectory=ctix does it)",
                    probe_dir.display(),
                    probe_dir.display()
                ),
            ),
        }
    }
}

/// `text` on one line: a TOML error's source snippet (the lines drawn with `|`) is dropped and the
/// rest joined, so that every finding stays one line of output.
fn one_line(text: &str) -> String {
    let snippet =
        |l: &str| l.starts_with('|') || l.split_once('|').is_some_and(|(n, _)| n.trim().parse::<u32>().is_ok());
    text.lines().map(str::trim).filter(|l| !l.is_empty() && !snippet(l)).collect::<Vec<_>>().join(": ")
}

/// The message for a private key that did not load.
fn key_error(e: PkiError, setting: &str) -> String {
    match e {
        PkiError::Io { path, source, .. } if source.kind() == ErrorKind::NotFound => {
            format!("{} does not exist: fix {setting}", path.display())
        }
        PkiError::Io { path, source, .. } if source.kind() == ErrorKind::PermissionDenied => format!(
            "{} cannot be read by this user: make the node's user its owner (`chown ctix: {}`) with mode 0600",
            path.display(),
            path.display()
        ),
        other => other.to_string(),
    }
}

/// Verifies `ee` against the CA for both directions of mutual TLS, and against the CA file's CRLs.
fn verify_chain(ee: &webpki::EndEntityCert<'_>, anchors: &Anchors, now_s: i64) -> Result<(), webpki::Error> {
    let trust: Vec<_> = anchors.certs.iter().filter_map(|c| webpki::anchor_from_trusted_cert(c).ok()).collect();
    let crls: Vec<webpki::CertRevocationList<'_>> = anchors
        .crls
        .iter()
        .map(|c| webpki::BorrowedCertRevocationList::from_der(c.as_ref()).map(Into::into))
        .collect::<Result<_, _>>()?;
    let crl_refs: Vec<&webpki::CertRevocationList<'_>> = crls.iter().collect();
    let time = UnixTime::since_unix_epoch(std::time::Duration::from_secs(now_s.max(0) as u64));
    for usage in [webpki::KeyUsage::server_auth(), webpki::KeyUsage::client_auth()] {
        let revocation = webpki::RevocationOptionsBuilder::new(&crl_refs).ok().map(|b| {
            b.with_depth(webpki::RevocationCheckDepth::EndEntity)
                .with_status_policy(webpki::UnknownStatusPolicy::Allow)
                .build()
        });
        ee.verify_for_usage(webpki::ALL_VERIFICATION_ALGS, &trust, &[], time, usage, revocation, None)?;
    }
    Ok(())
}

/// The `X509 CRL` sections of a PEM file (the node reads the same ones at start).
fn read_crls(path: &Path) -> Result<Vec<CertificateRevocationListDer<'static>>, String> {
    let mut pem = Vec::new();
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    std::io::Read::read_to_end(&mut std::io::Read::take(file, pki::PEM_FILE_BYTES_MAX), &mut pem)
        .map_err(|e| e.to_string())?;
    CertificateRevocationListDer::pem_slice_iter(&pem).collect::<Result<Vec<_>, _>>().map_err(|e| e.to_string())
}

/// `2027-03-01` for seconds since the epoch.
fn date(s: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(s) {
        Ok(t) => format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day()),
        Err(_) => format!("{s} s after 1970"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_toml_error_becomes_one_line() {
        let err = toml::from_str::<ConfigFile>("node = \"ee\"\nbogus = 1\n").unwrap_err().to_string();
        assert!(err.lines().count() > 1, "{err}");
        let line = one_line(&err);
        assert!(!line.contains('\n') && !line.contains('|'), "{line}");
        assert!(line.starts_with("TOML parse error at line 2, column 1: unknown field `bogus`"), "{line}");
    }

    /// The expiry checks at times the integration tests cannot reach: the certificate (825 days)
    /// and the CA (3650 days) seen from later dates.
    #[test]
    fn expiry_is_judged_against_the_given_time() {
        let dir = tempfile::tempdir().unwrap();
        let names = [NodeName::new("ee").unwrap(), NodeName::new("lv").unwrap()];
        let fed = crate::devfed::generate(dir.path(), &names, 39_401).unwrap();
        let path = &fed.nodes[0].1;
        let cert = pki::load_certs(&dir.path().join("ee/tls/ee.crt")).unwrap();
        let (not_before, not_after) = pki::validity(&cert[0]).unwrap();
        let at = |now_s: i64| check(path, now_s);
        let find = |f: &[Finding], name: &str| f.iter().find(|f| f.check == name).cloned().unwrap();

        let soon = at(not_after - 5 * DAY_S - 10);
        let c = find(&soon, "certificate");
        assert_eq!(c.level, Level::Warn, "{c}");
        assert!(c.message.contains(&format!("expires on {} (in 5 days)", date(not_after))), "{c}");

        let expired = at(not_after + 1);
        let c = find(&expired, "certificate");
        assert_eq!(c.level, Level::Fail, "{c}");
        assert!(c.message.contains(&format!("expired on {}: install a new certificate", date(not_after))), "{c}");

        let early = at(not_before - 10);
        let c = find(&early, "certificate");
        assert_eq!(c.level, Level::Fail, "{c}");
        assert!(c.message.contains("is not valid until") && c.message.contains("timedatectl"), "{c}");

        let ca = pki::load_certs(&dir.path().join("ca/ca.crt")).unwrap();
        let (_, ca_after) = pki::validity(&ca[0]).unwrap();
        let c = find(&at(ca_after - DAY_S), "ca");
        assert_eq!(c.level, Level::Warn, "{c}");
        let c = find(&at(ca_after + 1), "ca");
        assert_eq!(c.level, Level::Fail, "{c}");
        assert!(c.message.contains("the federation needs a new CA"), "{c}");
    }

    #[test]
    fn dates_are_days() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(1_795_867_200), "2026-11-28");
    }
}
