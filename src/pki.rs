//! Node identities and the federation PKI: ed25519 node keys (they sign log entries), the
//! federation CA, and node TLS certificates (they authenticate QUIC connections).
//!
//! Invariant: no function here overwrites a private key, and no private key is read from a file
//! that group or others can read.

use std::fs::{File, OpenOptions, Permissions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ed25519_dalek::pkcs8::spki::der::zeroize::Zeroizing;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use ed25519_dalek::{SigningKey, VerifyingKey};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PublicKeyData,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use crate::model::NodeName;

/// Longest validity `ca_init` and `ca_issue` accept, in days (about 100 years). It keeps
/// `not_after` far inside the range of `time` and of X.509 dates, so date arithmetic cannot overflow.
pub const VALID_DAYS_MAX: u32 = 36_525;

/// Largest key or certificate file read, in bytes. A CA bundle of a few certificates is under
/// 10 KiB; anything near this size is the wrong file, and reading it whole would waste memory.
pub const PEM_FILE_BYTES_MAX: u64 = 1 << 20;

/// Suffix of the CA certificate's common name: `CN = "<federation> federation CA"`.
const CA_CN_SUFFIX: &str = " federation CA";

/// Longest federation name, in characters: X.509 caps a common name at 64 characters
/// (RFC 5280 `ub-common-name`), and the CA's name adds `CA_CN_SUFFIX`.
pub const FEDERATION_NAME_CHARS_MAX: usize = 64 - CA_CN_SUFFIX.len();

/// Mode of a new directory that `write_secret_file` creates: only the owner may list it.
const SECRET_DIR_MODE: u32 = 0o700;
/// Mode of a new directory that `write_public_file` creates.
const PUBLIC_DIR_MODE: u32 = 0o755;

/// Errors of node keys, the federation CA and TLS files.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// A file that would be created exists already.
    #[error("{} already exists: refusing to overwrite it (move it away first, or choose another path)", path.display())]
    Exists { path: PathBuf },
    /// A node signing key would be overwritten.
    #[error(
        "key file {} already exists: refusing to overwrite a node key (move it away first; a new key for an existing member forks its log)",
        path.display()
    )]
    NodeKeyExists { path: PathBuf },
    /// A federation CA would be overwritten.
    #[error(
        "{} already exists: refusing to overwrite the federation CA (every member's certificate depends on it; make a new CA in another --dir)",
        path.display()
    )]
    CaExists { path: PathBuf },
    /// A node's TLS certificate or key would be overwritten.
    #[error(
        "{} already exists: refusing to overwrite the TLS files of {node} (to rotate, issue into another --out-dir, then replace the node's files and restart it)",
        path.display()
    )]
    IssuedExists { path: PathBuf, node: NodeName },
    /// Reading, writing or creating a file or directory failed.
    #[error("cannot {action} {}: {source} (check the path and the permissions of it and its directory)", path.display())]
    Io { action: &'static str, path: PathBuf, source: std::io::Error },
    /// A key or certificate file is implausibly large.
    #[error("{} is larger than {PEM_FILE_BYTES_MAX} bytes: not a key or certificate file (check the path)", path.display())]
    TooLarge { path: PathBuf },
    /// A private key file can be read by group or others.
    #[error(
        "private key {path} can be read by other users (mode {mode:03o}): run `chmod 600 {path}` and check who else may have read it",
        path = path.display()
    )]
    KeyReadable { path: PathBuf, mode: u32 },
    /// A node key file does not hold an ed25519 PKCS#8 PEM key.
    #[error(
        "{} is not an ed25519 PKCS#8 PEM key ({reason}): point the config at the file written by `ctix keygen --out PATH`",
        path.display()
    )]
    BadNodeKey { path: PathBuf, reason: String },
    /// A TLS key file holds no usable private key.
    #[error(
        "{} holds no usable TLS private key ({reason}): point the config at the `.key` file written by `ctix ca issue`",
        path.display()
    )]
    BadTlsKey { path: PathBuf, reason: String },
    /// A certificate file holds no usable PEM certificate.
    #[error(
        "{} holds no usable PEM certificate ({reason}): point the config at a `.crt` file written by `ctix ca init` or `ctix ca issue`",
        path.display()
    )]
    BadCertificate { path: PathBuf, reason: String },
    /// The CA key file does not hold a key rcgen can sign with.
    #[error("{} is not a usable CA key ({reason}): give the --ca-dir that `ctix ca init` wrote", path.display())]
    BadCaKey { path: PathBuf, reason: String },
    /// The CA key belongs to none of the certificates in the CA certificate file.
    #[error(
        "{} does not belong to the certificate in {}: give a --ca-dir whose ca.key and ca.crt were made together by `ctix ca init`",
        key.display(),
        cert.display()
    )]
    CaKeyMismatch { key: PathBuf, cert: PathBuf },
    /// The node name is not a valid roster name.
    #[error("cannot issue a certificate: {reason}")]
    NodeName { reason: String },
    /// The federation name cannot name a CA.
    #[error("federation name {name:?} {reason}: choose a short plain name such as \"baltic\"")]
    Federation { name: String, reason: &'static str },
    /// The requested validity is zero or too long.
    #[error("a validity of {days} days is out of range: give --days between 1 and {VALID_DAYS_MAX}")]
    Days { days: u32 },
    /// The operating system's random number generator failed.
    #[error(
        "the operating system's random number generator failed: {0} (nothing was written; retry, and check the system)"
    )]
    Random(getrandom::Error),
    /// rcgen could not make a key pair or certificate.
    #[error("cannot make the key or certificate for {subject}: {source} (nothing was written)")]
    Generate { subject: String, source: rcgen::Error },
    /// A freshly issued certificate does not verify against its own CA.
    #[error(
        "the certificate just issued for {node} does not verify against {}: {reason} (nothing was written; check the CA in that directory)",
        ca_cert.display()
    )]
    SelfCheck { node: NodeName, ca_cert: PathBuf, reason: String },
}

/// The files `ca_init` wrote.
#[derive(Debug, Clone)]
pub struct CaPaths {
    /// `ca.crt`: the CA certificate (PEM), public, given to every member.
    pub cert: PathBuf,
    /// `ca.key`: the CA's private key (PEM, mode 0600), to be kept offline.
    pub key: PathBuf,
}

/// The files `ca_issue` wrote for one node.
#[derive(Debug, Clone)]
pub struct IssuedPaths {
    /// The node the certificate names.
    pub node: NodeName,
    /// `<node>.crt`: the node's certificate (PEM, leaf only).
    pub cert: PathBuf,
    /// `<node>.key`: the node's TLS private key (PKCS#8 PEM, mode 0600).
    pub key: PathBuf,
}

/// Writes a new file with mode 0600 and syncs it (and its directory) to disk. Refuses to overwrite
/// an existing file ([`PkiError::Exists`]). Missing parent directories are created with mode 0700.
/// If writing fails half-way the partial file is removed, so a retry is not refused.
pub fn write_secret_file(path: &Path, bytes: &[u8]) -> Result<(), PkiError> {
    create_parent(path, SECRET_DIR_MODE)?;
    write_exclusive(path, bytes, 0o600)?;
    sync_parent(path)
}

/// Writes a public file (a certificate) with mode 0644 and syncs it to disk. Missing parent
/// directories are created with mode 0755.
///
/// With `force == false` an existing file is refused ([`PkiError::Exists`]). With `force == true`
/// an existing file is replaced atomically (written beside it, then renamed over it), so a node
/// reading it sees either the old or the new certificate, never half of one. Never use this for
/// private keys: they are never overwritten.
pub fn write_public_file(path: &Path, bytes: &[u8], force: bool) -> Result<(), PkiError> {
    create_parent(path, PUBLIC_DIR_MODE)?;
    if force {
        let tmp = temp_sibling(path)?;
        write_exclusive(&tmp, bytes, 0o644)?;
        std::fs::rename(&tmp, path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            io_error("rename a new file to", path, e)
        })?;
    } else {
        write_exclusive(path, bytes, 0o644)?;
    }
    sync_parent(path)
}

/// Generates a node's ed25519 signing key from 32 bytes of OS randomness and writes it to `path`
/// as PKCS#8 PEM (mode 0600). Returns the public key for the roster. Never overwrites a key.
pub fn generate_node_key(path: &Path) -> Result<VerifyingKey, PkiError> {
    if path.exists() {
        return Err(PkiError::NodeKeyExists { path: path.to_owned() });
    }
    let mut seed = Zeroizing::new([0u8; 32]);
    getrandom::fill(seed.as_mut()).map_err(PkiError::Random)?;
    let key = SigningKey::from_bytes(&seed);
    let pem = key
        .to_pkcs8_pem(Default::default())
        .map_err(|e| PkiError::BadNodeKey { path: path.to_owned(), reason: e.to_string() })?;
    let reread = SigningKey::from_pkcs8_pem(&pem).map(|k| k.verifying_key());
    assert_eq!(reread.ok(), Some(key.verifying_key()), "a PKCS#8 encoding must decode to the same key");
    match write_secret_file(path, pem.as_bytes()) {
        Err(PkiError::Exists { path }) => Err(PkiError::NodeKeyExists { path }),
        other => other,
    }?;
    Ok(key.verifying_key())
}

/// Loads a node's ed25519 signing key (PKCS#8 PEM). Refuses a file that group or others can read.
pub fn load_node_key(path: &Path) -> Result<SigningKey, PkiError> {
    let pem = read_private(path)?;
    let text = std::str::from_utf8(&pem)
        .map_err(|_| PkiError::BadNodeKey { path: path.to_owned(), reason: "not text".into() })?;
    SigningKey::from_pkcs8_pem(text).map_err(|e| PkiError::BadNodeKey { path: path.to_owned(), reason: e.to_string() })
}

/// A public key as lower-case hex (64 characters), as written in the roster.
pub fn public_key_hex(key: &VerifyingKey) -> String {
    hex::encode(key.as_bytes())
}

/// Creates a federation CA in `dir`: `ca.crt` (a self-signed ECDSA P-256 certificate with
/// `CN = "<federation> federation CA"`, CA with path length 0, key usages keyCertSign and cRLSign,
/// valid from an hour ago for `valid_days`) and `ca.key` (mode 0600). Refuses to overwrite either.
pub fn ca_init(dir: &Path, federation: &str, valid_days: u32) -> Result<CaPaths, PkiError> {
    check_federation(federation)?;
    check_days(valid_days)?;
    let paths = CaPaths { cert: dir.join("ca.crt"), key: dir.join("ca.key") };
    for path in [&paths.cert, &paths.key] {
        if path.exists() {
            return Err(PkiError::CaExists { path: path.clone() });
        }
    }
    let subject = format!("{federation}{CA_CN_SUFFIX}");
    let generate = |source| PkiError::Generate { subject: subject.clone(), source };
    let key = KeyPair::generate().map_err(generate)?;
    let mut params = CertificateParams::default();
    params.distinguished_name = common_name(&subject);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    set_validity(&mut params, valid_days);
    let cert = params.self_signed(&key).map_err(generate)?;
    write_pair(&paths.key, &key.serialize_pem(), &paths.cert, &cert.pem()).map_err(|e| match e {
        PkiError::Exists { path } => PkiError::CaExists { path },
        e => e,
    })?;
    Ok(paths)
}

/// Issues a node's TLS certificate, signed by the CA in `ca_dir` (`ca.crt`, `ca.key`): a new
/// ECDSA P-256 key, `CN` and the only DNS name equal to the node name, extended key usages
/// serverAuth and clientAuth (mutual TLS), key usage digitalSignature, not a CA, valid from an
/// hour ago (clock skew between members) for `valid_days`. Writes `out_dir/<node>.crt` (PEM, leaf
/// only) and `out_dir/<node>.key` (mode 0600); refuses to overwrite either. The certificate is
/// verified against the CA before anything is written.
pub fn ca_issue(ca_dir: &Path, node: &str, out_dir: &Path, valid_days: u32) -> Result<IssuedPaths, PkiError> {
    let node = NodeName::new(node).map_err(|e| PkiError::NodeName { reason: e.reason })?;
    check_days(valid_days)?;
    let paths = IssuedPaths {
        cert: out_dir.join(format!("{node}.crt")),
        key: out_dir.join(format!("{node}.key")),
        node: node.clone(),
    };
    let exists = |path: PathBuf| PkiError::IssuedExists { path, node: node.clone() };
    if let Some(path) = [&paths.cert, &paths.key].into_iter().find(|p| p.exists()) {
        return Err(exists(path.clone()));
    }
    let (ca_cert_path, ca_der, issuer) = load_issuer(ca_dir)?;
    let generate = |source| PkiError::Generate { subject: node.to_string(), source };
    let key = KeyPair::generate().map_err(generate)?;
    let mut params = CertificateParams::new(vec![node.to_string()]).map_err(generate)?;
    params.distinguished_name = common_name(node.as_str());
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
    params.use_authority_key_identifier_extension = true;
    set_validity(&mut params, valid_days);
    let cert = params.signed_by(&key, &issuer).map_err(generate)?;
    self_check(&node, cert.der(), &ca_der).map_err(|reason| PkiError::SelfCheck {
        node: node.clone(),
        ca_cert: ca_cert_path,
        reason,
    })?;
    write_pair(&paths.key, &key.serialize_pem(), &paths.cert, &cert.pem()).map_err(|e| match e {
        PkiError::Exists { path } => exists(path),
        e => e,
    })?;
    Ok(paths)
}

/// Loads the PEM certificates in `path` for rustls (a node's leaf, or the CA bundle). Each must
/// parse as X.509; a file without any is an error.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, PkiError> {
    let pem = read_limited(path)?;
    let bad = |reason: String| PkiError::BadCertificate { path: path.to_owned(), reason };
    let certs = CertificateDer::pem_slice_iter(&pem).collect::<Result<Vec<_>, _>>().map_err(|e| bad(e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("no CERTIFICATE section".into()));
    }
    for (i, cert) in certs.iter().enumerate() {
        webpki::EndEntityCert::try_from(cert).map_err(|e| bad(format!("certificate {} does not parse: {e}", i + 1)))?;
    }
    Ok(certs)
}

/// A certificate's validity window: `(not_before, not_after)` in seconds since the epoch (either
/// may be before 1970 or far in the future, so signed).
pub fn validity(cert: &CertificateDer<'_>) -> Result<(i64, i64), String> {
    let (_, c) = x509_parser::parse_x509_certificate(cert.as_ref()).map_err(|e| e.to_string())?;
    let v = c.validity();
    Ok((v.not_before.timestamp(), v.not_after.timestamp()))
}

/// Loads a PEM TLS private key (PKCS#8, SEC1 or PKCS#1) for rustls. Refuses a file that group or
/// others can read.
pub fn load_tls_key(path: &Path) -> Result<PrivateKeyDer<'static>, PkiError> {
    let pem = read_private(path)?;
    PrivateKeyDer::from_pem_slice(&pem)
        .map_err(|e| PkiError::BadTlsKey { path: path.to_owned(), reason: e.to_string() })
}

fn io_error(action: &'static str, path: &Path, source: std::io::Error) -> PkiError {
    PkiError::Io { action, path: path.to_owned(), source }
}

fn check_days(days: u32) -> Result<(), PkiError> {
    if (1..=VALID_DAYS_MAX).contains(&days) { Ok(()) } else { Err(PkiError::Days { days }) }
}

fn check_federation(name: &str) -> Result<(), PkiError> {
    let reason = if name.trim().is_empty() {
        "is empty"
    } else if name.trim() != name {
        "starts or ends with white space"
    } else if name.chars().any(char::is_control) {
        "holds control characters"
    } else if name.chars().count() > FEDERATION_NAME_CHARS_MAX {
        "is too long for a certificate's common name"
    } else {
        return Ok(());
    };
    Err(PkiError::Federation { name: name.to_owned(), reason })
}

fn common_name(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn
}

/// Valid from an hour ago, so that a member whose clock is a little behind accepts a fresh
/// certificate, for `days` days. `days` is at most `VALID_DAYS_MAX`, so this cannot overflow.
fn set_validity(params: &mut CertificateParams, days: u32) {
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(i64::from(days));
}

/// Loads the CA of `ca_dir` as an rcgen issuer. `ca.crt` may hold several certificates (old and
/// new CA during a CA rotation); the one whose public key is `ca.key`'s is used. rcgen itself
/// never checks that the key matches the certificate, and would sign unverifiable certificates.
fn load_issuer(ca_dir: &Path) -> Result<(PathBuf, CertificateDer<'static>, Issuer<'static, KeyPair>), PkiError> {
    let cert_path = ca_dir.join("ca.crt");
    let key_path = ca_dir.join("ca.key");
    let certs = load_certs(&cert_path)?;
    let pem = read_private(&key_path)?;
    let bad_key = |reason: String| PkiError::BadCaKey { path: key_path.clone(), reason };
    let text = std::str::from_utf8(&pem).map_err(|_| bad_key("not text".into()))?;
    let key = KeyPair::from_pem(text).map_err(|e| bad_key(e.to_string()))?;
    let spki = key.subject_public_key_info();
    let ca_der = certs
        .into_iter()
        .find(|c| webpki::EndEntityCert::try_from(c).is_ok_and(|c| *c.subject_public_key_info() == spki[..]))
        .ok_or_else(|| PkiError::CaKeyMismatch { key: key_path.clone(), cert: cert_path.clone() })?;
    let issuer = Issuer::from_ca_cert_der(&ca_der, key).map_err(|e| PkiError::BadCertificate {
        path: cert_path.clone(),
        reason: format!("not usable as a CA: {e}"),
    })?;
    Ok((cert_path, ca_der, issuer))
}

/// Checks a freshly issued certificate the way a peer will: chains to the CA now, for server and
/// client authentication, and names `node`.
fn self_check(node: &NodeName, leaf: &CertificateDer<'_>, ca: &CertificateDer<'_>) -> Result<(), String> {
    let anchors = [webpki::anchor_from_trusted_cert(ca).map_err(|e| format!("CA certificate: {e}"))?];
    let ee = webpki::EndEntityCert::try_from(leaf).map_err(|e| format!("unparseable: {e}"))?;
    let algs = webpki::ALL_VERIFICATION_ALGS;
    for usage in [webpki::KeyUsage::server_auth(), webpki::KeyUsage::client_auth()] {
        ee.verify_for_usage(algs, &anchors, &[], UnixTime::now(), usage, None, None)
            .map_err(|e| format!("chain: {e}"))?;
    }
    let name = ServerName::try_from(node.as_str()).map_err(|e| format!("node name: {e}"))?;
    ee.verify_is_valid_for_subject_name(&name).map_err(|e| format!("name: {e}"))
}

/// Writes a private key and then its certificate; if the certificate cannot be written the key is
/// removed again, so that a retry is not refused because of a key without a certificate.
fn write_pair(key_path: &Path, key_pem: &str, cert_path: &Path, cert_pem: &str) -> Result<(), PkiError> {
    let key_pem = Zeroizing::new(key_pem.to_owned());
    write_secret_file(key_path, key_pem.as_bytes())?;
    write_public_file(cert_path, cert_pem.as_bytes(), false).inspect_err(|_| {
        let _ = std::fs::remove_file(key_path);
    })
}

fn create_parent(path: &Path, mode: u32) -> Result<(), PkiError> {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() && !parent.exists() => std::fs::DirBuilder::new()
            .recursive(true)
            .mode(mode)
            .create(parent)
            .map_err(|e| io_error("create directory", parent, e)),
        _ => Ok(()),
    }
}

/// Creates `path`, which must not exist, with exactly `mode` (whatever the umask), writes `bytes`
/// and syncs. A partial file left by a failed write is removed.
fn write_exclusive(path: &Path, bytes: &[u8], mode: u32) -> Result<(), PkiError> {
    let mut file = match OpenOptions::new().write(true).create_new(true).mode(mode).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(PkiError::Exists { path: path.to_owned() });
        }
        Err(e) => return Err(io_error("create", path, e)),
    };
    let written = file
        .set_permissions(Permissions::from_mode(mode))
        .and_then(|()| file.write_all(bytes))
        .and_then(|()| file.sync_all());
    written.map_err(|e| {
        let _ = std::fs::remove_file(path);
        io_error("write", path, e)
    })
}

/// Syncs the directory holding `path`, so that a new file's name survives a power cut too.
fn sync_parent(path: &Path) -> Result<(), PkiError> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(parent).and_then(|d| d.sync_all()).map_err(|e| io_error("sync directory", parent, e))
}

/// A path beside `path` for writing a replacement before renaming it into place.
fn temp_sibling(path: &Path) -> Result<PathBuf, PkiError> {
    let suffix = getrandom::u64().map_err(PkiError::Random)?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    Ok(path.with_file_name(format!(".{name}.{suffix:016x}.tmp")))
}

/// Reads a file of at most `PEM_FILE_BYTES_MAX` bytes.
fn read_limited(path: &Path) -> Result<Zeroizing<Vec<u8>>, PkiError> {
    let file = File::open(path).map_err(|e| io_error("open", path, e))?;
    read_open(path, file)
}

fn read_open(path: &Path, file: File) -> Result<Zeroizing<Vec<u8>>, PkiError> {
    let mut bytes = Zeroizing::new(Vec::new());
    file.take(PEM_FILE_BYTES_MAX + 1).read_to_end(&mut bytes).map_err(|e| io_error("read", path, e))?;
    if bytes.len() as u64 > PEM_FILE_BYTES_MAX {
        return Err(PkiError::TooLarge { path: path.to_owned() });
    }
    Ok(bytes)
}

/// Reads a private key file, refusing one that group or others can read. The mode is checked on
/// the open file, so it is the mode of the file actually read.
fn read_private(path: &Path) -> Result<Zeroizing<Vec<u8>>, PkiError> {
    let file = File::open(path).map_err(|e| io_error("open", path, e))?;
    let mode = file.metadata().map_err(|e| io_error("inspect", path, e))?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(PkiError::KeyReadable { path: path.to_owned(), mode });
    }
    read_open(path, file)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rustls::RootCertStore;
    use rustls::client::WebPkiServerVerifier;
    use rustls::client::danger::ServerCertVerifier;
    use rustls::server::WebPkiClientVerifier;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    fn chmod(path: &Path, mode: u32) {
        std::fs::set_permissions(path, Permissions::from_mode(mode)).unwrap();
    }

    fn roots(ca_cert: &Path) -> Arc<RootCertStore> {
        let mut roots = RootCertStore::empty();
        for cert in load_certs(ca_cert).unwrap() {
            roots.add(cert).unwrap();
        }
        Arc::new(roots)
    }

    /// Verifies `leaf` the way a client dialling `name` does.
    fn verify_server(ca_cert: &Path, leaf: &Path, name: &str, now: UnixTime) -> Result<(), rustls::Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = WebPkiServerVerifier::builder_with_provider(roots(ca_cert), provider).build().unwrap();
        let leaf = load_certs(leaf).unwrap().remove(0);
        let name = ServerName::try_from(name.to_owned()).unwrap();
        verifier.verify_server_cert(&leaf, &[], &name, &[], now).map(|_| ())
    }

    /// Verifies `leaf` the way a server accepting a client does.
    fn verify_client(ca_cert: &Path, leaf: &Path) -> Result<(), rustls::Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = WebPkiClientVerifier::builder_with_provider(roots(ca_cert), provider).build().unwrap();
        let leaf = load_certs(leaf).unwrap().remove(0);
        verifier.verify_client_cert(&leaf, &[], UnixTime::now()).map(|_| ())
    }

    fn at(offset_secs: i64) -> UnixTime {
        let now = UnixTime::now().as_secs() as i64;
        UnixTime::since_unix_epoch(std::time::Duration::from_secs((now + offset_secs) as u64))
    }

    #[test]
    fn secret_files_are_private_and_never_overwritten() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("new/dir/secret");
        write_secret_file(&path, b"one").unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&d.path().join("new/dir")), 0o700);
        assert!(matches!(write_secret_file(&path, b"two"), Err(PkiError::Exists { .. })));
        assert_eq!(std::fs::read(&path).unwrap(), b"one");
    }

    #[test]
    fn public_files_are_replaced_only_when_forced() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("node.crt");
        write_public_file(&path, b"one", false).unwrap();
        assert_eq!(mode(&path), 0o644);
        assert!(matches!(write_public_file(&path, b"two", false), Err(PkiError::Exists { .. })));
        assert_eq!(std::fs::read(&path).unwrap(), b"one");
        write_public_file(&path, b"two", true).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(mode(&path), 0o644);
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1, "no temporary file is left behind");
    }

    #[test]
    fn node_key_round_trip() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("node.key");
        let public = generate_node_key(&path).unwrap();
        assert_eq!(mode(&path), 0o600);
        assert!(std::fs::read_to_string(&path).unwrap().starts_with("-----BEGIN PRIVATE KEY-----"));
        assert_eq!(load_node_key(&path).unwrap().verifying_key(), public);
        let hex = public_key_hex(&public);
        assert_eq!(hex.len(), 64);
        assert!(hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
    }

    #[test]
    fn node_key_is_never_overwritten() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("node.key");
        let public = generate_node_key(&path).unwrap();
        let err = generate_node_key(&path).unwrap_err();
        assert!(matches!(err, PkiError::NodeKeyExists { .. }), "{err}");
        assert!(err.to_string().contains("forks its log"), "{err}");
        assert_eq!(load_node_key(&path).unwrap().verifying_key(), public);
    }

    #[test]
    fn readable_private_keys_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("node.key");
        generate_node_key(&path).unwrap();
        for m in [0o640, 0o604, 0o644] {
            chmod(&path, m);
            let err = load_node_key(&path).unwrap_err().to_string();
            assert!(err.contains(&format!("chmod 600 {}", path.display())), "{err}");
        }
        chmod(&path, 0o400);
        load_node_key(&path).unwrap();

        let ca = ca_init(&d.path().join("ca"), "test", 30).unwrap();
        let ee = ca_issue(&d.path().join("ca"), "ee", d.path(), 30).unwrap();
        load_tls_key(&ee.key).unwrap();
        chmod(&ee.key, 0o640);
        assert!(load_tls_key(&ee.key).unwrap_err().to_string().contains("chmod 600"));
        chmod(&ca.key, 0o644);
        let err = ca_issue(&d.path().join("ca"), "lv", d.path(), 30).unwrap_err();
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }

    #[test]
    fn bad_key_and_certificate_files_say_what_to_do() {
        let d = tempfile::tempdir().unwrap();
        let junk = d.path().join("junk");
        write_secret_file(&junk, b"not a key\n").unwrap();
        assert!(load_node_key(&junk).unwrap_err().to_string().contains("ctix keygen"));
        assert!(load_tls_key(&junk).unwrap_err().to_string().contains("ctix ca issue"));
        let err = load_certs(&junk).unwrap_err();
        assert!(matches!(err, PkiError::BadCertificate { .. }), "{err}");
        let missing = load_certs(&d.path().join("missing.crt")).unwrap_err();
        assert!(matches!(missing, PkiError::Io { .. }), "{missing}");
        assert!(missing.to_string().contains("missing.crt"), "{missing}");
        // A TLS key is PKCS#8 too, but P-256: it is no node key.
        ca_init(&d.path().join("ca"), "test", 30).unwrap();
        let ee = ca_issue(&d.path().join("ca"), "ee", d.path(), 30).unwrap();
        assert!(matches!(load_node_key(&ee.key), Err(PkiError::BadNodeKey { .. })));
    }

    #[test]
    fn ca_issues_certificates_that_name_exactly_their_node() {
        let d = tempfile::tempdir().unwrap();
        let ca_dir = d.path().join("ca");
        let ca = ca_init(&ca_dir, "baltic", 3650).unwrap();
        assert_eq!(mode(&ca.key), 0o600);
        assert_eq!(mode(&ca.cert), 0o644);
        let ee = ca_issue(&ca_dir, "ee", &d.path().join("out/ee"), 825).unwrap();
        let lv = ca_issue(&ca_dir, "lv", &d.path().join("out/lv"), 825).unwrap();
        assert_eq!(ee.cert, d.path().join("out/ee/ee.crt"));
        assert_eq!(ee.key, d.path().join("out/ee/ee.key"));
        assert_eq!(mode(&ee.key), 0o600);
        assert_eq!(load_certs(&ee.cert).unwrap().len(), 1, "leaf only");

        verify_server(&ca.cert, &ee.cert, "ee", UnixTime::now()).unwrap();
        verify_server(&ca.cert, &lv.cert, "lv", UnixTime::now()).unwrap();
        assert!(verify_server(&ca.cert, &ee.cert, "lv", UnixTime::now()).is_err());
        assert!(verify_server(&ca.cert, &lv.cert, "ee", UnixTime::now()).is_err());
        verify_client(&ca.cert, &ee.cert).unwrap();
        verify_client(&ca.cert, &lv.cert).unwrap();

        let leaf = load_certs(&ee.cert).unwrap().remove(0);
        let names: Vec<_> = webpki::EndEntityCert::try_from(&leaf).unwrap().valid_dns_names().collect();
        assert_eq!(names, ["ee"]);
    }

    #[test]
    fn certificates_are_valid_from_an_hour_ago_for_the_given_days() {
        let d = tempfile::tempdir().unwrap();
        let ca = ca_init(&d.path().join("ca"), "test", 30).unwrap();
        let ee = ca_issue(&d.path().join("ca"), "ee", d.path(), 2).unwrap();
        let hour = 3600;
        verify_server(&ca.cert, &ee.cert, "ee", at(-hour + 60)).unwrap();
        assert!(verify_server(&ca.cert, &ee.cert, "ee", at(-hour - 60)).is_err());
        verify_server(&ca.cert, &ee.cert, "ee", at(2 * 24 * hour - 60)).unwrap();
        assert!(verify_server(&ca.cert, &ee.cert, "ee", at(2 * 24 * hour + 60)).is_err());
    }

    #[test]
    fn certificates_of_another_ca_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let ours = ca_init(&d.path().join("ours"), "baltic", 30).unwrap();
        ca_init(&d.path().join("theirs"), "baltic", 30).unwrap();
        let forged = ca_issue(&d.path().join("theirs"), "ee", &d.path().join("forged"), 30).unwrap();
        assert!(verify_server(&ours.cert, &forged.cert, "ee", UnixTime::now()).is_err());
        assert!(verify_client(&ours.cert, &forged.cert).is_err());
    }

    #[test]
    fn ca_and_issued_files_are_never_overwritten() {
        let d = tempfile::tempdir().unwrap();
        let ca_dir = d.path().join("ca");
        let ca = ca_init(&ca_dir, "test", 30).unwrap();
        let ca_pem = std::fs::read(&ca.cert).unwrap();
        assert!(matches!(ca_init(&ca_dir, "test", 30), Err(PkiError::CaExists { .. })));
        assert_eq!(std::fs::read(&ca.cert).unwrap(), ca_pem);
        let ee = ca_issue(&ca_dir, "ee", d.path(), 30).unwrap();
        let key_pem = std::fs::read(&ee.key).unwrap();
        let err = ca_issue(&ca_dir, "ee", d.path(), 30).unwrap_err();
        assert!(matches!(err, PkiError::IssuedExists { .. }), "{err}");
        assert_eq!(std::fs::read(&ee.key).unwrap(), key_pem);
    }

    #[test]
    fn bad_arguments_are_refused_before_anything_is_written() {
        let d = tempfile::tempdir().unwrap();
        let ca_dir = d.path().join("ca");
        for name in ["", " baltic", "a\nb", &"x".repeat(FEDERATION_NAME_CHARS_MAX + 1)] {
            assert!(matches!(ca_init(&ca_dir, name, 30), Err(PkiError::Federation { .. })), "{name:?}");
        }
        assert!(matches!(ca_init(&ca_dir, "test", 0), Err(PkiError::Days { .. })));
        assert!(matches!(ca_init(&ca_dir, "test", VALID_DAYS_MAX + 1), Err(PkiError::Days { .. })));
        assert!(!ca_dir.exists());
        ca_init(&ca_dir, &"x".repeat(FEDERATION_NAME_CHARS_MAX), VALID_DAYS_MAX).unwrap();
        let out = d.path().join("out");
        for name in ["EE", "ee.example", "1ee", "", "ee!"] {
            assert!(matches!(ca_issue(&ca_dir, name, &out, 30), Err(PkiError::NodeName { .. })), "{name:?}");
        }
        assert!(matches!(ca_issue(&ca_dir, "ee", &out, u32::MAX), Err(PkiError::Days { .. })));
        assert!(!out.exists());
    }

    #[test]
    fn a_ca_key_that_does_not_match_its_certificate_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let a = ca_init(&d.path().join("a"), "test", 30).unwrap();
        let b = ca_init(&d.path().join("b"), "test", 30).unwrap();
        std::fs::remove_file(&a.key).unwrap();
        std::fs::copy(&b.key, &a.key).unwrap();
        chmod(&a.key, 0o600);
        let err = ca_issue(&d.path().join("a"), "ee", d.path(), 30).unwrap_err();
        assert!(matches!(err, PkiError::CaKeyMismatch { .. }), "{err}");

        // During a CA rotation ca.crt holds both CAs; the one matching the key signs.
        let both = [std::fs::read(&b.cert).unwrap(), std::fs::read(&a.cert).unwrap()].concat();
        write_public_file(&a.cert, &both, true).unwrap();
        let ee = ca_issue(&d.path().join("a"), "ee", d.path(), 30).unwrap();
        verify_server(&b.cert, &ee.cert, "ee", UnixTime::now()).unwrap();
    }
}
