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
use crate::store::StoreOptions;
use crate::sync::SyncConfig;
use crate::textfile::LimitedReadError;

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

impl ConfigFile {
    /// Reads and parses a config file (at most `CONFIG_FILE_BYTES_MAX` bytes) without resolving it:
    /// nothing it points at is opened.
    pub fn read(path: &Path) -> Result<ConfigFile, ConfigError> {
        let p = path.display().to_string();
        let text = crate::textfile::read_limited(path, CONFIG_FILE_BYTES_MAX).map_err(|e| match e {
            LimitedReadError::Io(source) => ConfigError::Read { path: p.clone(), source },
            LimitedReadError::TooLarge => {
                ConfigError::Invalid { path: p.clone(), reason: format!("over {CONFIG_FILE_BYTES_MAX} bytes") }
            }
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Invalid { path: p, reason: e.to_string() })
    }
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
    #[serde(default)]
    pub log: LogSection,
    #[serde(default)]
    pub store: StoreSection,
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

/// The token placeholder in the templates in `deploy/config/`: refused, so a template installed
/// without its token replaced does not open the API to anyone who read the template.
pub const API_TOKEN_PLACEHOLDER: &str = "REPLACE-WITH-THE-OUTPUT-OF-openssl-rand-hex-32";

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

/// The local store.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSection {
    /// sled's page cache, MiB (`STORE_CACHE_MIB_MIN` to `STORE_CACHE_MIB_MAX`). More keeps more of
    /// the log in memory, at up to about twice as much more RSS. Default: 32.
    #[serde(default = "default_cache_mib")]
    pub cache_mib: u64,
}

impl Default for StoreSection {
    fn default() -> Self {
        StoreSection { cache_mib: default_cache_mib() }
    }
}

fn default_cache_mib() -> u64 {
    crate::store::CACHE_BYTES_DEFAULT / (1024 * 1024)
}

/// Least and most `[store] cache_mib`.
pub const STORE_CACHE_MIB_MIN: u64 = 8;
pub const STORE_CACHE_MIB_MAX: u64 = 65_536;

/// Log format and levels. Log lines always go to standard error (under systemd: the journal).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSection {
    /// `"text"` (default): one readable line per event; `"json"`: one JSON object per line.
    #[serde(default)]
    pub format: LogFormat,
    /// Levels as `RUST_LOG` writes them: a default level and per-module overrides, e.g.
    /// `"info,ctix::sync=debug"`. Default: `"info"`.
    #[serde(default = "default_log_level")]
    pub level: String,
}

impl Default for LogSection {
    fn default() -> Self {
        LogSection { format: LogFormat::Text, level: default_log_level() }
    }
}

fn default_log_level() -> String {
    LOG_LEVEL_DEFAULT.to_owned()
}

/// The log level when neither `--log-level`, `RUST_LOG` nor `[log] level` sets one.
pub const LOG_LEVEL_DEFAULT: &str = "info";

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line (`timestamp`, `level`, `target`, `fields`), for log shippers.
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("log format {other:?} is not known: write \"text\" or \"json\"")),
        }
    }
}

/// The log settings in force, resolved once from the command line, the environment and the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    pub format: LogFormat,
    /// `RUST_LOG`-style directives, already checked to parse.
    pub level: String,
}

impl LogSettings {
    /// Resolves the log settings. Precedence, highest first: the command line (`--log-format`,
    /// `--log-level`), then the environment (`CTIX_LOG_FORMAT`, `RUST_LOG`; clap folds both into
    /// the `flag_*` arguments), then the config file's `[log]` section, then the defaults (`text`,
    /// `info`). Each of the two settings is resolved on its own.
    pub fn resolve(
        flag_format: Option<LogFormat>,
        flag_level: Option<&str>,
        file: &LogSection,
    ) -> Result<Self, String> {
        let (level, from) = match flag_level {
            Some(l) => (l, "--log-level (or RUST_LOG)"),
            None => (file.level.as_str(), "log.level"),
        };
        check_log_level(level).map_err(|e| format!("{from}: {e}"))?;
        Ok(LogSettings { format: flag_format.unwrap_or(file.format), level: level.to_owned() })
    }
}

/// Checks `RUST_LOG`-style directives, e.g. `info,ctix::sync=debug`.
pub fn check_log_level(level: &str) -> Result<(), String> {
    tracing_subscriber::EnvFilter::builder().parse(level).map(drop).map_err(|e| {
        format!("{level:?} is not a valid level: {e} (write a level such as \"info\", optionally with per-module levels: \"info,ctix::sync=debug\")")
    })
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
    /// `[log]` as written; `LogSettings::resolve` applies the command line and environment.
    pub log: LogSection,
    pub sync: SyncConfig,
    /// How the store is opened (`[store]`).
    pub store: StoreOptions,
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let file = ConfigFile::read(path)?;
        let base = path.parent().unwrap_or(Path::new("."));
        Config::resolve(file, base).map_err(|reason| ConfigError::Invalid { path: path.display().to_string(), reason })
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
        check_log_level(&file.log.level).map_err(|e| format!("log.level: {e}"))?;
        let cache_mib = file.store.cache_mib;
        if !(STORE_CACHE_MIB_MIN..=STORE_CACHE_MIB_MAX).contains(&cache_mib) {
            return Err(format!(
                "store.cache_mib: {cache_mib} is out of range: write a size in MiB from {STORE_CACHE_MIB_MIN} to {STORE_CACHE_MIB_MAX} (default {})",
                default_cache_mib()
            ));
        }
        for t in &file.api.tokens {
            if t.token.chars().count() < API_TOKEN_CHARS_MIN {
                return Err(format!("api.tokens {:?}: token is shorter than {API_TOKEN_CHARS_MIN} characters", t.name));
            }
            if t.token == API_TOKEN_PLACEHOLDER {
                return Err(format!(
                    "api.tokens {:?}: token is still the template's placeholder: replace it with the output of `openssl rand -hex 32`",
                    t.name
                ));
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
            log: file.log,
            sync: SyncConfig::default(),
            store: StoreOptions { cache_bytes: cache_mib * 1024 * 1024, ..StoreOptions::default() },
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::roster::Member;

    /// The production templates, by node name.
    const TEMPLATES: [(&str, &str); 3] = [
        ("ee", include_str!("../deploy/config/ee.toml")),
        ("lv", include_str!("../deploy/config/lv.toml")),
        ("lt", include_str!("../deploy/config/lt.toml")),
    ];

    /// The template with every commented-out setting (`#key = value`, `#[[table]]`) switched on.
    fn uncomment(text: &str) -> String {
        text.lines()
            .map(|l| match l.strip_prefix('#') {
                Some(rest) if !rest.is_empty() && !rest.starts_with(' ') => rest,
                _ => l,
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The dotted paths of every leaf value (`api.tokens.role`).
    fn leaves(v: &toml::Value, prefix: &str, out: &mut BTreeSet<String>) {
        let join = |k: &str| if prefix.is_empty() { k.to_owned() } else { format!("{prefix}.{k}") };
        match v {
            toml::Value::Table(t) => t.iter().for_each(|(k, v)| leaves(v, &join(k), out)),
            toml::Value::Array(a) if a.iter().all(toml::Value::is_table) && !a.is_empty() => {
                a.iter().for_each(|v| leaves(v, prefix, out))
            }
            _ => {
                out.insert(prefix.to_owned());
            }
        }
    }

    fn paths(v: &toml::Value) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        leaves(v, "", &mut out);
        out
    }

    /// A roster of ee, lv and lt in `dir`.
    fn roster_file(dir: &Path) -> PathBuf {
        let members = ["ee", "lv", "lt"].iter().enumerate().map(|(i, n)| {
            let key = ed25519_dalek::SigningKey::from_bytes(&[i as u8 + 1; 32]).verifying_key();
            Member::new(NodeName::new(n).unwrap(), key, format!("ctix.{n}.example:7401"))
        });
        let path = dir.join("roster.toml");
        std::fs::write(&path, Roster::new(members).unwrap().to_toml()).unwrap();
        path
    }

    #[test]
    fn templates_name_every_setting_with_its_default_and_a_comment() {
        for (node, text) in TEMPLATES {
            let as_is: ConfigFile = toml::from_str(text).unwrap_or_else(|e| panic!("{node}.toml: {e}"));
            assert_eq!(as_is.node, node);
            let full_text = uncomment(text);
            // deny_unknown_fields: a commented setting with a typo or a removed field fails here.
            let full: ConfigFile =
                toml::from_str(&full_text).unwrap_or_else(|e| panic!("{node}.toml uncommented: {e}"));
            let written = paths(&toml::from_str(&full_text).unwrap());
            let every = paths(&toml::Value::try_from(&full).unwrap());
            assert_eq!(written, every, "{node}.toml must name every setting of ConfigFile (missing or extra)");
            // The values shown on commented-out lines are the defaults the node applies.
            let mut shown = toml::Value::try_from(&full).unwrap();
            shown["api"].as_table_mut().unwrap().remove("tokens");
            let mut applied = toml::Value::try_from(&as_is).unwrap();
            applied["api"].as_table_mut().unwrap().remove("tokens");
            assert_eq!(shown, applied, "{node}.toml: a commented-out value is not the default");
            // Every setting, live or commented out, has a comment line right above it.
            let lines: Vec<&str> = text.lines().collect();
            for (i, l) in lines.iter().enumerate() {
                let setting = l.trim_start_matches('#');
                if !l.starts_with("# ") && setting.split_once(" = ").is_some_and(|(k, _)| !k.contains(' ')) {
                    assert!(
                        i > 0 && lines[i - 1].starts_with("# "),
                        "{node}.toml line {}: {l:?} has no comment",
                        i + 1
                    );
                }
            }
        }
    }

    #[test]
    fn templates_resolve_into_a_config_once_the_placeholder_token_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let roster = roster_file(dir.path());
        for (node, text) in TEMPLATES {
            let mut file: ConfigFile = toml::from_str(&uncomment(text)).unwrap();
            file.keys.roster = roster.clone();
            let err = Config::resolve(file.clone(), dir.path()).unwrap_err();
            assert!(err.contains("placeholder") && err.contains("openssl rand -hex 32"), "{err}");
            file.api.tokens[0].token = "0123456789abcdef".repeat(4);
            let cfg = Config::resolve(file, dir.path()).unwrap_or_else(|e| panic!("{node}.toml: {e}"));
            assert_eq!(cfg.node.as_str(), node);
            assert_eq!(cfg.data_dir, Path::new("/var/lib/ctix"));
            assert_eq!(cfg.api_listen, default_api_listen());
            assert_eq!((cfg.log.format, cfg.log.level.as_str()), (LogFormat::Text, LOG_LEVEL_DEFAULT));
            assert_eq!(cfg.store.cache_bytes, crate::store::CACHE_BYTES_DEFAULT);
        }
    }

    /// `[store] cache_mib` reaches the store options; a size out of range is refused with the
    /// range to write.
    #[test]
    fn the_store_cache_is_set_in_mib_within_its_range() {
        let dir = tempfile::tempdir().unwrap();
        let mut file: ConfigFile = toml::from_str(TEMPLATES[0].1).unwrap();
        file.keys.roster = roster_file(dir.path());
        file.api.tokens.clear();
        file.store.cache_mib = 256;
        assert_eq!(Config::resolve(file.clone(), dir.path()).unwrap().store.cache_bytes, 256 << 20);
        for bad in [0, STORE_CACHE_MIB_MIN - 1, STORE_CACHE_MIB_MAX + 1] {
            file.store.cache_mib = bad;
            let err = Config::resolve(file.clone(), dir.path()).unwrap_err();
            assert!(
                err.starts_with(&format!("store.cache_mib: {bad} is out of range: write a size in MiB from 8")),
                "{err}"
            );
        }
        let err = toml::from_str::<ConfigFile>(&TEMPLATES[0].1.replace("#cache_mib = 32", "cache = 64")).unwrap_err();
        assert!(err.to_string().contains("unknown field `cache`"), "{err}");
    }

    #[test]
    fn log_settings_take_the_flag_or_environment_over_the_file() {
        let file = LogSection { format: LogFormat::Json, level: "warn,ctix::sync=debug".into() };
        let from_file = LogSettings::resolve(None, None, &file).unwrap();
        assert_eq!(from_file, LogSettings { format: LogFormat::Json, level: "warn,ctix::sync=debug".into() });
        let overridden = LogSettings::resolve(Some(LogFormat::Text), Some("debug"), &file).unwrap();
        assert_eq!(overridden, LogSettings { format: LogFormat::Text, level: "debug".into() });
        // Each setting on its own: a flag for the level leaves the file's format.
        assert_eq!(LogSettings::resolve(None, Some("error"), &file).unwrap().format, LogFormat::Json);
        let err = LogSettings::resolve(None, Some("ctix=loud"), &file).unwrap_err();
        assert!(err.starts_with("--log-level (or RUST_LOG): \"ctix=loud\" is not a valid level"), "{err}");
        let bad_file = LogSection { format: LogFormat::Text, level: "info,=".into() };
        assert!(LogSettings::resolve(None, None, &bad_file).unwrap_err().starts_with("log.level: "));
        assert_eq!("json".parse::<LogFormat>(), Ok(LogFormat::Json));
        assert!("xml".parse::<LogFormat>().unwrap_err().contains("write \"text\" or \"json\""));
    }
}
