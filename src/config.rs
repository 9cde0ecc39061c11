//! Node configuration: one TOML file, resolved once into a validated `Config`.
//!
//! Relative paths in the file are relative to the file's own directory, so a node directory can
//! be moved as a whole. Every optional setting documents what leaving it out means.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::model::NodeName;
use crate::roster::Roster;
use crate::sync::SyncConfig;

/// Largest config file accepted.
pub const CONFIG_FILE_BYTES_MAX: u64 = 1024 * 1024;
/// Default time to wait at start-up for a peer to confirm this node's own log head.
pub const OWN_HEAD_WAIT_MS_DEFAULT: u64 = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {path}: {source}")]
    Read { path: String, source: std::io::Error },
    /// The TOML does not parse or has unknown/missing fields.
    #[error("config {path} is not valid: {reason}")]
    Invalid { path: String, reason: String },
}

/// The config file as written.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// This node's roster name, e.g. `ee`.
    pub node: String,
    /// Where the store lives. Created if missing.
    pub data_dir: PathBuf,
    pub keys: KeysSection,
    pub net: NetSection,
    #[serde(default)]
    pub api: ApiSection,
    #[serde(default)]
    pub startup: StartupSection,
    #[serde(default)]
    pub drill: DrillSection,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysSection {
    /// ed25519 key that signs this node's log entries (`ctix keygen`).
    pub signing_key: PathBuf,
    /// This node's TLS certificate and key from the federation CA (`ctix ca issue`).
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
    /// The federation CA certificate.
    pub ca_cert: PathBuf,
    /// The federation roster: every member's name, public key and QUIC address.
    pub roster: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetSection {
    /// UDP address the QUIC endpoint listens on, e.g. `0.0.0.0:7401`.
    pub listen: SocketAddr,
    /// Peers this node neither dials nor accepts. Default: none.
    #[serde(default)]
    pub blocked_peers: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSection {
    /// TCP address of the local REST API. Default: `127.0.0.1:7480` (loopback only).
    #[serde(default = "default_api_listen")]
    pub listen: SocketAddr,
    /// Bearer tokens. Default: none, which leaves every endpoint but `/healthz` closed.
    #[serde(default)]
    pub tokens: Vec<ApiToken>,
}

impl Default for ApiSection {
    fn default() -> Self {
        ApiSection { listen: default_api_listen(), tokens: Vec::new() }
    }
}

/// Shortest token accepted: 128 bits of base-16 randomness.
pub const API_TOKEN_CHARS_MIN: usize = 32;

/// One API bearer token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiToken {
    /// Who holds it, for logs (e.g. `soc`, `constituents`).
    pub name: String,
    pub role: Role,
    /// The secret, at least 32 characters. Keep the config file mode 0600.
    pub token: String,
}

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The CERT's own analysts and tools: submit, retract, report sightings, read everything this
    /// node may read (including TLP:AMBER+STRICT).
    Rw,
    /// Read-only, e.g. constituents' tools: reads, never TLP:AMBER+STRICT.
    Ro,
}

fn default_api_listen() -> SocketAddr {
    "127.0.0.1:7480".parse().expect("valid")
}

/// What a node does at start-up before it appends to its own log.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartupSection {
    /// How long to wait for a peer to report this node's own head, so that a node restored from
    /// an old backup or a lost disk first recovers its own entries instead of forking its log.
    /// Default: 10,000 ms.
    #[serde(default = "default_own_head_wait")]
    pub own_head_wait_ms: u64,
    /// When no peer answered within `own_head_wait_ms`: `"proceed"` (default) appends from the
    /// local head, trusting the local disk; `"refuse"` keeps refusing appends until a peer
    /// confirms the head (safest after a disk loss).
    #[serde(default)]
    pub on_no_peers: OnNoPeers,
}

impl Default for StartupSection {
    fn default() -> Self {
        StartupSection { own_head_wait_ms: OWN_HEAD_WAIT_MS_DEFAULT, on_no_peers: OnNoPeers::Proceed }
    }
}

fn default_own_head_wait() -> u64 {
    OWN_HEAD_WAIT_MS_DEFAULT
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnNoPeers {
    #[default]
    Proceed,
    Refuse,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrillSection {
    /// Whether drills may cut this node's links or isolate it. Default: false.
    #[serde(default)]
    pub allow_faults: bool,
}

/// The validated configuration of one node.
#[derive(Debug, Clone)]
pub struct Config {
    pub node: NodeName,
    pub data_dir: PathBuf,
    pub signing_key: PathBuf,
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
    pub ca_cert: PathBuf,
    pub roster: Roster,
    pub roster_path: PathBuf,
    pub quic_listen: SocketAddr,
    pub blocked_peers: BTreeSet<NodeName>,
    pub api_listen: SocketAddr,
    pub api_tokens: Vec<ApiToken>,
    pub own_head_wait_ms: u64,
    pub on_no_peers: OnNoPeers,
    pub drill_allow_faults: bool,
    pub sync: SyncConfig,
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let p = path.display().to_string();
        let meta = std::fs::metadata(path).map_err(|source| ConfigError::Read { path: p.clone(), source })?;
        if meta.len() > CONFIG_FILE_BYTES_MAX {
            return Err(ConfigError::Invalid { path: p, reason: format!("over {CONFIG_FILE_BYTES_MAX} bytes") });
        }
        // The size above may not hold for a special file (a FIFO, /dev/zero): read at most one
        // byte over the limit whatever the metadata said.
        let mut text = String::new();
        let read = std::fs::File::open(path).and_then(|f| {
            std::io::Read::read_to_string(&mut std::io::Read::take(f, CONFIG_FILE_BYTES_MAX + 1), &mut text)
        });
        read.map_err(|source| ConfigError::Read { path: p.clone(), source })?;
        if text.len() as u64 > CONFIG_FILE_BYTES_MAX {
            return Err(ConfigError::Invalid { path: p, reason: format!("over {CONFIG_FILE_BYTES_MAX} bytes") });
        }
        let file: ConfigFile =
            toml::from_str(&text).map_err(|e| ConfigError::Invalid { path: p.clone(), reason: e.to_string() })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Config::resolve(file, base).map_err(|reason| ConfigError::Invalid { path: p, reason })
    }

    /// Resolves a parsed file against `base` (the file's directory) and checks it.
    pub fn resolve(file: ConfigFile, base: &Path) -> Result<Config, String> {
        let at = |p: &Path| if p.is_absolute() { p.to_owned() } else { base.join(p) };
        let node = NodeName::new(&file.node).map_err(|e| format!("node: {}", e.reason))?;
        let roster_path = at(&file.keys.roster);
        let roster = Roster::load(&roster_path).map_err(|e| e.to_string())?;
        if roster.get(&node).is_none() {
            return Err(format!("node {node} is not in the roster {} (add it, or fix `node`)", roster_path.display()));
        }
        let mut blocked = BTreeSet::new();
        for b in &file.net.blocked_peers {
            let n = NodeName::new(b).map_err(|e| format!("net.blocked_peers: {}", e.reason))?;
            if roster.get(&n).is_none() {
                return Err(format!("net.blocked_peers: {n} is not in the roster"));
            }
            blocked.insert(n);
        }
        for t in &file.api.tokens {
            if t.token.chars().count() < API_TOKEN_CHARS_MIN {
                return Err(format!("api.tokens {:?}: token is shorter than {API_TOKEN_CHARS_MIN} characters", t.name));
            }
        }
        Ok(Config {
            node,
            data_dir: at(&file.data_dir),
            signing_key: at(&file.keys.signing_key),
            tls_cert: at(&file.keys.tls_cert),
            tls_key: at(&file.keys.tls_key),
            ca_cert: at(&file.keys.ca_cert),
            roster,
            roster_path,
            quic_listen: file.net.listen,
            blocked_peers: blocked,
            api_listen: file.api.listen,
            api_tokens: file.api.tokens,
            own_head_wait_ms: file.startup.own_head_wait_ms,
            on_no_peers: file.startup.on_no_peers,
            drill_allow_faults: file.drill.allow_faults,
            sync: SyncConfig::default(),
        })
    }
}
