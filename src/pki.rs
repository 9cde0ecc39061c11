//! Node identities and the federation PKI: ed25519 node keys (they sign log entries), the
//! federation CA, and node TLS certificates (they authenticate QUIC connections).

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use ed25519_dalek::{SigningKey, VerifyingKey};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::model::NodeName;

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// A file we would create exists already.
    #[error(
        "{path} already exists: refusing to overwrite it (move it away first; a new key for an existing member forks its log)"
    )]
    Exists { path: String },
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    /// A private key file is readable by group or others.
    #[error("{path} is readable by other users (mode {mode:o}): run `chmod 600 {path}`")]
    Permissions { path: String, mode: u32 },
    /// A file does not hold what it should.
    #[error("{path}: {reason}")]
    Invalid { path: String, reason: String },
    /// Certificate generation failed.
    #[error("certificate generation failed: {0}")]
    Rcgen(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PkiError + '_ {
    move |source| PkiError::Io { path: path.display().to_string(), source }
}

fn invalid(path: &Path, reason: impl Into<String>) -> PkiError {
    PkiError::Invalid { path: path.display().to_string(), reason: reason.into() }
}

/// Files of a CA or an issued certificate.
#[derive(Debug, Clone)]
pub struct CertPaths {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Writes a new file with mode 0600; refuses to overwrite. Missing parent directories are created
/// with mode 0700.
pub fn write_secret_file(path: &Path, bytes: &[u8]) -> Result<(), PkiError> {
    write_new(path, bytes, 0o600)
}

/// Writes a new public file (certificates) with mode 0644; refuses to overwrite.
pub fn write_public_file(path: &Path, bytes: &[u8]) -> Result<(), PkiError> {
    write_new(path, bytes, 0o644)
}

fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), PkiError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
        && !parent.exists()
    {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(parent).map_err(io(parent))?;
    }
    let mut f = match OpenOptions::new().write(true).create_new(true).mode(mode).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(PkiError::Exists { path: path.display().to_string() });
        }
        Err(e) => return Err(io(path)(e)),
    };
    f.write_all(bytes).map_err(io(path))?;
    f.sync_all().map_err(io(path))
}

/// Reads a private key file, refusing one that group or others can read.
fn read_private(path: &Path) -> Result<String, PkiError> {
    let meta = std::fs::metadata(path).map_err(io(path))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(PkiError::Permissions { path: path.display().to_string(), mode });
    }
    std::fs::read_to_string(path).map_err(io(path))
}

/// Generates a node's ed25519 signing key and writes it as PKCS#8 PEM (0600).
pub fn generate_node_key(path: &Path) -> Result<VerifyingKey, PkiError> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| PkiError::Io { path: path.display().to_string(), source: e.into() })?;
    let key = SigningKey::from_bytes(&seed);
    let pem = key.to_pkcs8_pem(Default::default()).map_err(|e| invalid(path, e.to_string()))?;
    write_secret_file(path, pem.as_bytes())?;
    Ok(key.verifying_key())
}

/// Loads a node's ed25519 signing key (PKCS#8 PEM, mode 0600).
pub fn load_node_key(path: &Path) -> Result<SigningKey, PkiError> {
    let pem = read_private(path)?;
    SigningKey::from_pkcs8_pem(&pem)
        .map_err(|e| invalid(path, format!("not an ed25519 PKCS#8 PEM key ({e}); generate one with `ctix keygen`")))
}

/// Hex of a public key, as written in the roster.
pub fn public_key_hex(k: &VerifyingKey) -> String {
    hex::encode(k.as_bytes())
}

fn rc(e: rcgen::Error) -> PkiError {
    PkiError::Rcgen(e.to_string())
}

fn validity(params: &mut CertificateParams, days: u32) {
    let now = time::OffsetDateTime::now_utc();
    // Start an hour in the past to tolerate clock skew between members.
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(days as i64);
}

/// Creates a federation CA: `dir/ca.crt` and `dir/ca.key` (0600).
pub fn ca_init(dir: &Path, federation: &str, valid_days: u32) -> Result<CertPaths, PkiError> {
    let paths = CertPaths { cert: dir.join("ca.crt"), key: dir.join("ca.key") };
    for p in [&paths.cert, &paths.key] {
        if p.exists() {
            return Err(PkiError::Exists { path: p.display().to_string() });
        }
    }
    let key = KeyPair::generate().map_err(rc)?;
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(rc)?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, format!("{federation} federation CA"));
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    validity(&mut params, valid_days);
    let cert = params.self_signed(&key).map_err(rc)?;
    write_secret_file(&paths.key, key.serialize_pem().as_bytes())?;
    write_public_file(&paths.cert, cert.pem().as_bytes())?;
    Ok(paths)
}

/// Issues a node's TLS certificate (DNS name = node name, server and client auth) signed by the
/// CA in `ca_dir`: writes `out_dir/<node>.crt` and `out_dir/<node>.key` (0600).
pub fn ca_issue(ca_dir: &Path, node: &str, out_dir: &Path, valid_days: u32) -> Result<CertPaths, PkiError> {
    let name = NodeName::new(node).map_err(|e| invalid(Path::new(node), e.reason))?;
    let ca_cert_path = ca_dir.join("ca.crt");
    let ca_key_path = ca_dir.join("ca.key");
    let ca_pem = std::fs::read_to_string(&ca_cert_path).map_err(io(&ca_cert_path))?;
    let ca_key = KeyPair::from_pem(&read_private(&ca_key_path)?).map_err(|e| invalid(&ca_key_path, e.to_string()))?;
    let issuer = Issuer::from_ca_cert_pem(&ca_pem, ca_key).map_err(|e| invalid(&ca_cert_path, e.to_string()))?;
    let paths = CertPaths { cert: out_dir.join(format!("{name}.crt")), key: out_dir.join(format!("{name}.key")) };
    for p in [&paths.cert, &paths.key] {
        if p.exists() {
            return Err(PkiError::Exists { path: p.display().to_string() });
        }
    }
    let key = KeyPair::generate().map_err(rc)?;
    let mut params = CertificateParams::new(vec![name.to_string()]).map_err(rc)?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name.to_string());
    params.distinguished_name = dn;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
    validity(&mut params, valid_days);
    let cert = params.signed_by(&key, &issuer).map_err(rc)?;
    write_secret_file(&paths.key, key.serialize_pem().as_bytes())?;
    write_public_file(&paths.cert, cert.pem().as_bytes())?;
    Ok(paths)
}

/// Loads PEM certificates for rustls.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, PkiError> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .map_err(|e| invalid(path, e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| invalid(path, e.to_string()))?;
    if certs.is_empty() {
        return Err(invalid(path, "holds no PEM certificate"));
    }
    Ok(certs)
}

/// Loads a PEM TLS private key for rustls (mode 0600 required).
pub fn load_tls_key(path: &Path) -> Result<PrivateKeyDer<'static>, PkiError> {
    let pem = read_private(path)?;
    PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|e| invalid(path, format!("no usable private key: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_key_round_trip_and_modes() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("k/node.key");
        let pk = generate_node_key(&p).unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(load_node_key(&p).unwrap().verifying_key(), pk);
        assert!(matches!(generate_node_key(&p), Err(PkiError::Exists { .. })));
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert!(load_node_key(&p).unwrap_err().to_string().contains("chmod 600"));
    }

    #[test]
    fn ca_issues_node_certificates() {
        let d = tempfile::tempdir().unwrap();
        let ca = ca_init(&d.path().join("ca"), "test", 30).unwrap();
        let ee = ca_issue(&d.path().join("ca"), "ee", &d.path().join("ee"), 30).unwrap();
        assert_eq!(std::fs::metadata(&ca.key).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(load_certs(&ee.cert).unwrap().len(), 1);
        load_tls_key(&ee.key).unwrap();
        assert!(ca_issue(&d.path().join("ca"), "EE!", d.path(), 30).is_err());
    }
}
