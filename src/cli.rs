//! The command line: clap definitions and the commands that run without a daemon.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::client::{self, Access, Api, BATCH_SIZE_DEFAULT, FileFormat, FileJob, Filter, QueryJob};
use crate::model::{IndicatorInput, NodeName};
use crate::pki;
use crate::roster::Roster;
use crate::store::{Store, StoreOptions};
use crate::view::{SUBMIT_BATCH_MAX, SightRequest};

/// ctix: exchange signed threat indicators between national CERTs over QUIC.
#[derive(Parser, Debug)]
#[command(name = "ctix", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Generate a node's ed25519 signing key (PKCS#8 PEM, mode 0600) and print its public key.
    Keygen {
        /// Where to write the private key. Refuses to overwrite an existing file.
        #[arg(long)]
        out: PathBuf,
    },
    /// Manage the federation certificate authority.
    #[command(subcommand)]
    Ca(CaCommand),
    /// The main job: a three-node federation (EE, LV, LT) on loopback with generated dev
    /// certificates, exchanging indicators over QUIC, healing a cut link, verifying every store.
    Demo {
        /// Where to generate the federation (default: a new temporary directory).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// First UDP port (three consecutive ports are used).
        #[arg(long, default_value_t = 7401)]
        base_port: u16,
    },
    /// Run a node: open the store, connect to every roster peer, replicate until SIGINT/SIGTERM.
    Run {
        /// The node's TOML config (see deploy/ and `ctix dev-federation`).
        #[arg(long)]
        config: PathBuf,
        /// text or json; overrides CTIX_LOG_FORMAT, which overrides the config's [log] format.
        #[arg(long, value_name = "FORMAT", env = "CTIX_LOG_FORMAT")]
        log_format: Option<crate::config::LogFormat>,
        /// Levels, e.g. info,ctix::sync=debug; overrides RUST_LOG, which overrides [log] level.
        #[arg(long, value_name = "LEVELS", env = "RUST_LOG")]
        log_level: Option<String>,
    },
    /// Check a node's config and everything it points at, before starting the node.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Generate a development federation on 127.0.0.1: a CA, keys, certificates, a roster and
    /// DIR/<node>/ctix.toml for every node. Not for production.
    DevFederation {
        #[arg(long)]
        dir: PathBuf,
        /// Comma-separated node names.
        #[arg(long, default_value = "ee,lv,lt", value_delimiter = ',')]
        nodes: Vec<String>,
        /// First QUIC port; node i listens on BASE+i, its API on BASE+100+i.
        #[arg(long, default_value_t = 7401)]
        base_port: u16,
    },
    /// Inspect a node's store offline (the node must not be running).
    #[command(subcommand)]
    Store(StoreCommand),
    /// Edit the federation roster.
    #[command(subcommand)]
    Roster(RosterCommand),
    /// Submit indicators to a running node: one from flags, or a file of many (JSON lines or CSV).
    Submit(SubmitArgs),
    /// List the indicators a running node holds, in arrival order: a table, or JSON lines.
    Query(QueryArgs),
    /// Retract one of this node's own indicators (signed, and replicated to every node).
    Retract {
        /// The indicator's id, e.g. ee:12.
        id: String,
        /// Why it is withdrawn, e.g. "false positive: shared hosting".
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Report a sighting of an indicator of any origin (signed, and replicated to every node).
    Sight {
        /// The indicator's id, e.g. lv:7.
        id: String,
        /// How many times it was seen (default 1).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        count: Option<u32>,
        /// When it was first seen: RFC 3339 time or date (default: now, or --last-seen if earlier).
        #[arg(long, value_name = "TIME")]
        first_seen: Option<String>,
        /// When it was last seen: RFC 3339 time or date (default: now).
        #[arg(long, value_name = "TIME")]
        last_seen: Option<String>,
        /// Free text, e.g. where it was seen.
        #[arg(long, default_value = "")]
        note: String,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Export indicators a running node holds: a STIX 2.1 bundle, or a MISP feed directory.
    Export(ExportArgs),
    /// Import a STIX 2.1 bundle, a MISP event file or a MISP feed directory into a running node;
    /// what ctix cannot represent is listed with its reason.
    Import(ImportArgs),
    /// Readiness drills: run a scenario across the federation, acknowledge, report, simulate.
    #[command(subcommand)]
    Drill(DrillCommand),
    /// Back up a node's store to FILE: every origin's log and the fork evidence, verified as it
    /// is written. From a running node through its API (a "rw" token), or with --offline from a
    /// stopped node's data dir. Keys are not included: back them up separately.
    Backup {
        /// The file to write (mode 0600: it holds TLP:RED bodies). Must not exist yet.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Read the data dir named by --config directly (the node must be stopped).
        #[arg(long, requires = "config")]
        offline: bool,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Restore a backup into a stopped node's store: verifies every signature and chain against
    /// the roster first, refuses a store that is not empty (unless --force), and leaves the
    /// node's own log unconfirmed until a peer confirms it.
    Restore {
        /// The backup file (`ctix backup --out`).
        file: PathBuf,
        /// The node's config (ctix.toml): its data dir, name and roster.
        #[arg(long, value_name = "PATH")]
        config: PathBuf,
        /// Restore into a store that already holds entries (they are kept; the backup is merged
        /// in), or finish a restore that was interrupted.
        #[arg(long)]
        force: bool,
        /// Only verify the backup; write nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Show a running node's state: readiness, peers, log heads, counts, quarantined origins.
    Status {
        /// Print the status as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        api: ApiArgs,
    },
}

#[derive(Subcommand, Debug)]
pub enum DrillCommand {
    /// Start a drill from this node (the controller) and follow it until it ends: which inject
    /// went out, who received and acknowledged it; then the report summary.
    Run {
        /// The scenario file (TOML; see deploy/drills/ and the README).
        scenario: PathBuf,
        /// Rehearse N times faster: every offset, deadline and duration divided by N.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
        speed: u32,
        /// Start the drill and return at once, without following it.
        #[arg(long)]
        detach: bool,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Acknowledge a situation update as this node's team.
    Ack {
        /// The drill id, e.g. ee:42 (`ctix drill list`).
        drill: String,
        /// The inject's name in the scenario.
        inject: String,
        /// What the team did or decided.
        #[arg(long, default_value = "")]
        note: String,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// List the drills this node knows.
    List {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Abort a running drill (controller only).
    Abort {
        drill: String,
        #[arg(long, default_value = "")]
        reason: String,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Write a drill's after-action report: JSON, Markdown, or one self-contained HTML page with
    /// an SVG timeline.
    Report {
        drill: String,
        #[arg(long, default_value = "md")]
        format: String,
        /// Write to FILE instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Remove a finished drill's data from this node (kept as signed stubs so chains verify).
    Purge {
        drill: String,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Run a scenario on a simulated federation (no network, simulated clock, reproducible by
    /// seed) and write its report.
    Simulate {
        scenario: PathBuf,
        /// Federation size: the scenario's participants plus NATO/EU members up to N (max 64).
        #[arg(long)]
        nodes: Option<usize>,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// One-way link latency range in ms, e.g. 5-40 (default: from the distance between capitals).
        #[arg(long, value_name = "A-B")]
        latency_ms: Option<String>,
        /// Probability that a message is lost, 0 to 0.5.
        #[arg(long, default_value_t = 0.0)]
        loss: f64,
        #[arg(long, default_value = "md")]
        format: String,
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

/// Which node's API a client command talks to, and with which token.
#[derive(Args, Debug)]
pub struct ApiArgs {
    /// The node's config (ctix.toml): its api.listen address and a token from its [api] tokens
    /// (the first "rw" token for commands that write). Takes precedence over --api and --token.
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// The node's API address, e.g. http://127.0.0.1:7480.
    #[arg(long, value_name = "URL", env = "CTIX_API")]
    pub api: Option<String>,
    /// A bearer token from the node's [api] tokens.
    #[arg(long, value_name = "TOKEN", env = "CTIX_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

impl ApiArgs {
    /// Resolves the flags into a client whose token allows `access`.
    pub fn connect(&self, access: Access) -> Result<Api> {
        match (&self.config, &self.api, &self.token) {
            (Some(path), _, _) => Api::from_config(path, access),
            (None, Some(url), Some(token)) => Api::new(url, token),
            (None, Some(_), None) => {
                bail!("--api needs --token TOKEN (or CTIX_TOKEN set): a token from the node's [api] tokens")
            }
            (None, None, _) => bail!(
                "which node? give --config PATH (the node's ctix.toml), or --api URL and --token TOKEN (or set CTIX_API and CTIX_TOKEN)"
            ),
        }
    }
}

/// `ctix submit`: either the indicator flags (`--type`, `--value` …) or `--file`.
#[derive(Args, Debug)]
pub struct SubmitArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// Indicator type: ipv4, ipv6, cidr, domain, url, email, md5, sha1, sha256, filename or cve.
    #[arg(long = "type", value_name = "TYPE", required_unless_present = "file", conflicts_with = "file")]
    pub itype: Option<String>,
    /// The indicator, e.g. 203.0.113.7 or evil.example (normalised by the node).
    #[arg(long, required_unless_present = "file", conflicts_with = "file")]
    pub value: Option<String>,
    /// TLP 2.0 level: clear, green, amber (default), amber+strict, or red (with --recipients).
    #[arg(long, conflicts_with = "file")]
    pub tlp: Option<String>,
    /// 0 to 100 (default 50).
    #[arg(long, value_name = "N", conflicts_with = "file")]
    pub confidence: Option<i64>,
    /// A tag, e.g. apt28; repeat for more.
    #[arg(long = "tag", value_name = "TAG", conflicts_with = "file")]
    pub tags: Vec<String>,
    /// Valid from: RFC 3339 time or date (default: now).
    #[arg(long, value_name = "TIME", conflicts_with = "file")]
    pub valid_from: Option<String>,
    /// Valid until: RFC 3339 time or date, or a duration from now such as 30d (default: no expiry).
    #[arg(long, value_name = "TIME", conflicts_with = "file")]
    pub valid_until: Option<String>,
    /// Free text for analysts.
    #[arg(long, value_name = "TEXT", conflicts_with = "file")]
    pub description: Option<String>,
    /// MITRE ATT&CK technique (T1566, T1566.001) or kill-chain phase; repeat, or separate with commas.
    #[arg(long = "technique", value_name = "ID", value_delimiter = ',', conflicts_with = "file")]
    pub techniques: Vec<String>,
    /// The nodes a TLP:RED indicator is for, comma-separated, e.g. lv,lt.
    #[arg(long, value_name = "NODES", value_delimiter = ',', conflicts_with = "file")]
    pub recipients: Vec<String>,
    /// Submit every indicator in FILE ('-' for standard input): JSON lines (one IndicatorInput object
    /// per line) or CSV with a header row naming some of the columns type, value, tlp, confidence,
    /// tags, description, valid_from, valid_until, recipients and techniques (list values are
    /// separated by ';').
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// The file's format (default: from its extension, .jsonl/.ndjson/.json or .csv).
    #[arg(long, value_enum, requires = "file")]
    pub format: Option<FormatArg>,
    /// All or nothing: send the whole file in one request (at most 10,000 indicators) and store
    /// nothing if any line is invalid.
    #[arg(long, requires = "file")]
    pub atomic: bool,
    /// Indicators per request (1 to 10,000).
    #[arg(long, value_name = "N", default_value_t = BATCH_SIZE_DEFAULT as u64, conflicts_with = "atomic",
        value_parser = clap::value_parser!(u64).range(1..=SUBMIT_BATCH_MAX as u64))]
    pub batch_size: u64,
}

/// `ctix export`.
#[derive(Args, Debug)]
pub struct ExportArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// stix (a STIX 2.1 bundle) or misp (a MISP feed directory: manifest.json, hashes.csv and
    /// one event per origin and day).
    #[arg(long, value_enum)]
    pub format: InteropFormatArg,
    /// STIX: the file to write (default: standard output). MISP: the feed directory (required).
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,
    /// Only this indicator type, e.g. ipv4.
    #[arg(long = "type", value_name = "TYPE")]
    pub itype: Option<String>,
    /// Only indicators published by this node, e.g. lv.
    #[arg(long, value_name = "NODE")]
    pub origin: Option<String>,
    /// Only indicators with this tag.
    #[arg(long)]
    pub tag: Option<String>,
    /// Only this TLP level.
    #[arg(long)]
    pub tlp: Option<String>,
    /// Only indicators created at or after TIME (RFC 3339, a date, or a duration back such as 7d).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only indicators created at or before TIME.
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Also export TLP:RED indicators (left out by default: an export travels further than the
    /// named recipients).
    #[arg(long)]
    pub include_red: bool,
}

/// `ctix import`.
#[derive(Args, Debug)]
pub struct ImportArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// stix (a STIX 2.1 bundle) or misp (a MISP event JSON file, or a MISP feed directory with
    /// manifest.json).
    #[arg(long, value_enum)]
    pub format: InteropFormatArg,
    /// The file, or the MISP feed directory.
    pub path: PathBuf,
    /// Indicators per request (1 to 10,000).
    #[arg(long, value_name = "N", default_value_t = BATCH_SIZE_DEFAULT as u64,
        value_parser = clap::value_parser!(u64).range(1..=SUBMIT_BATCH_MAX as u64))]
    pub batch_size: u64,
    /// Parse the file and print what would be imported and skipped; submit nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum InteropFormatArg {
    Stix,
    Misp,
}

impl From<InteropFormatArg> for crate::interop::console::Format {
    fn from(f: InteropFormatArg) -> Self {
        match f {
            InteropFormatArg::Stix => crate::interop::console::Format::Stix,
            InteropFormatArg::Misp => crate::interop::console::Format::Misp,
        }
    }
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum FormatArg {
    Jsonl,
    Csv,
}

/// `ctix query`: filters, paging and output.
#[derive(Args, Debug)]
pub struct QueryArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// Only this indicator type, e.g. ipv4.
    #[arg(long = "type", value_name = "TYPE")]
    pub itype: Option<String>,
    /// Only this value (needs --type; matched in its normal form).
    #[arg(long, requires = "itype")]
    pub value: Option<String>,
    /// Only indicators published by this node, e.g. lv.
    #[arg(long, value_name = "NODE")]
    pub origin: Option<String>,
    /// Only indicators with this tag.
    #[arg(long)]
    pub tag: Option<String>,
    /// Only this TLP level.
    #[arg(long)]
    pub tlp: Option<String>,
    /// Only indicators created at or after TIME: an RFC 3339 time, a date such as 2026-01-31, or
    /// a duration back from now such as 24h or 7d (the last 24 hours, the last week).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only indicators created at or before TIME (same forms as --since; 1h is an hour ago).
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Only retracted (true) or only live (false) indicators (default: both).
    #[arg(long, value_name = "true|false")]
    pub retracted: Option<bool>,
    /// Show at most N indicators (default 100).
    #[arg(long, value_name = "N", conflicts_with = "all", value_parser = clap::value_parser!(u64).range(1..))]
    pub limit: Option<u64>,
    /// Start after this cursor (printed when more indicators match than were shown).
    #[arg(long, value_name = "CURSOR")]
    pub after: Option<u64>,
    /// Show every match, following pages to the end (at most 1,000,000 indicators).
    #[arg(long)]
    pub all: bool,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum CaCommand {
    /// Create a federation CA: DIR/ca.crt and DIR/ca.key (0600). Keep ca.key offline.
    Init {
        #[arg(long)]
        dir: PathBuf,
        /// Federation name, used in the CA's common name.
        #[arg(long, default_value = "ctix")]
        federation: String,
        /// Validity in days.
        #[arg(long, default_value_t = 3650)]
        days: u32,
    },
    /// Issue a node's TLS certificate (DNS name = NAME) signed by the CA.
    Issue {
        /// The node's roster name, e.g. `ee`.
        name: String,
        /// Directory holding ca.crt and ca.key.
        #[arg(long)]
        ca_dir: PathBuf,
        /// Where to write NAME.crt and NAME.key (0600): a directory for this node, never the CA's.
        #[arg(long)]
        out_dir: PathBuf,
        /// Validity in days.
        #[arg(long, default_value_t = 825)]
        days: u32,
    },
}

#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Validate PATH: keys (readable, mode 0600, matching the roster), roster, certificate chain
    /// and expiry, CA, free ports, writable store. One line per check; exits 1 on any FAIL.
    Check {
        /// The node's config, e.g. /etc/ctix/ctix.toml.
        path: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
pub enum StoreCommand {
    /// Print every origin's head (the version vector).
    Heads(StoreArgs),
    /// Re-verify every stored entry: signatures under the roster, body hashes, chain links.
    Verify {
        #[command(flatten)]
        store: StoreArgs,
        /// Roster file with every member's public key.
        #[arg(long)]
        roster: PathBuf,
    },
    /// Mark this node's own log as possibly behind what its peers hold (its store was lost or
    /// replaced, and its key signed entries before): the node then signs nothing until a peer
    /// confirms its own head. `ctix restore` does this by itself.
    Rejoin(StoreArgs),
}

#[derive(Subcommand, Debug)]
pub enum RosterCommand {
    /// Rotate a member's log key: the new key becomes the member's current key, and the old one
    /// is listed as retired at --retire-old-at. Distribute the roster to every member, restart
    /// them, then switch the member to the new key before that time.
    RotateKey {
        /// The roster file to rewrite (replaced atomically; comments in it are not kept).
        #[arg(long)]
        roster: PathBuf,
        /// The member whose key changes, e.g. ee.
        #[arg(long)]
        member: String,
        /// The new public key (64 hex digits, as `ctix keygen` prints).
        #[arg(long)]
        public_key: String,
        /// When the old key stops being accepted for new entries: RFC 3339 time, or a duration
        /// from now such as 7d. Leave time to distribute the roster and switch the member.
        #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
        retire_old_at: String,
    },
}

#[derive(Args, Debug)]
pub struct StoreArgs {
    /// The node's data directory.
    #[arg(long)]
    pub data_dir: PathBuf,
}

/// Parses the process arguments and runs the command.
pub fn main() -> Result<()> {
    run(Cli::parse())
}

pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Keygen { out } => {
            let pk = pki::generate_node_key(&out)?;
            println!("wrote {} (mode 0600)", out.display());
            println!("public_key = \"{}\"", pki::public_key_hex(&pk));
            println!("add this public key to the roster entry of this node");
            Ok(())
        }
        Command::Ca(CaCommand::Init { dir, federation, days }) => {
            let p = pki::ca_init(&dir, &federation, days)?;
            println!(
                "wrote {} (public) and {} (mode 0600): keep the CA key offline",
                p.cert.display(),
                p.key.display()
            );
            Ok(())
        }
        Command::Ca(CaCommand::Issue { name, ca_dir, out_dir, days }) => {
            NodeName::new(&name)?;
            let p = pki::ca_issue(&ca_dir, &name, &out_dir, days)?;
            println!(
                "wrote {} (public) and {} (mode 0600): install both on node {name}",
                p.cert.display(),
                p.key.display()
            );
            Ok(())
        }
        Command::Run { config, log_format, log_level } => run_node(&config, log_format, log_level.as_deref()),
        Command::Config(ConfigCommand::Check { path }) => crate::check::print(&path),
        Command::Demo { dir, base_port } => crate::demo::run(dir.as_deref(), base_port),
        Command::DevFederation { dir, nodes, base_port } => {
            let names = nodes.iter().map(|n| NodeName::new(n.trim())).collect::<Result<Vec<_>, _>>()?;
            let fed = crate::devfed::generate(&dir, &names, base_port).map_err(anyhow::Error::msg)?;
            println!("dev federation in {} (roster {})", fed.dir.display(), fed.roster.display());
            for (name, cfg) in &fed.nodes {
                println!("  {name}: ctix run --config {}", cfg.display());
            }
            Ok(())
        }
        Command::Roster(RosterCommand::RotateKey { roster, member, public_key, retire_old_at }) => {
            let mut r = Roster::load(&roster)?;
            let member = NodeName::new(&member).map_err(|e| anyhow::anyhow!("--member: {e}"))?;
            let key = crate::roster::parse_public_key(&public_key)
                .map_err(|e| anyhow::anyhow!("--public-key {e}: give the key `ctix keygen` printed"))?;
            let now = crate::now_ms();
            let at = crate::model::time::parse_time(&retire_old_at, now)
                .map_err(|e| anyhow::anyhow!("--retire-old-at: {e}"))?;
            if at <= now {
                bail!("--retire-old-at is in the past: the old key would stop working at once; give a later time");
            }
            r.rotate_key(&member, key, at).map_err(|e| anyhow::anyhow!("cannot rotate {member}'s key: {e}"))?;
            pki::write_public_file(&roster, r.to_toml().as_bytes(), true)?;
            println!("wrote {}: {member}'s current key is {public_key}", roster.display());
            println!("the old key is accepted for entries created before {}", crate::model::time::format_time(at));
            println!(
                "next: copy this roster to every member and restart them; then point {member}'s signing_key at the new key and restart it, before that time"
            );
            Ok(())
        }
        Command::Store(StoreCommand::Heads(a)) => {
            let store = open_store(&a)?;
            for (origin, tip) in store.heads() {
                println!("{origin}\t{}\t{}", tip.seq, hex::encode(tip.hash));
            }
            Ok(())
        }
        Command::Store(StoreCommand::Verify { store, roster }) => {
            let roster = Roster::load(&roster)?;
            let s = open_store(&store)?;
            let n = s.verify_chains(&roster).map_err(|e| anyhow::anyhow!("store does not verify: {e}"))?;
            println!("ok: {n} entries of {} origins verify", s.heads().len());
            for q in s.quarantined() {
                println!("warning: origin {q} is quarantined for a fork");
            }
            Ok(())
        }
        Command::Store(StoreCommand::Rejoin(a)) => crate::backup::console::rejoin(&a.data_dir),
        Command::Backup { out, offline, api } => {
            let cfg = api.config.as_deref().map(crate::config::Config::load).transpose()?;
            match (offline, &cfg) {
                (true, Some(cfg)) => crate::backup::console::backup_offline(cfg, &out),
                (true, None) => bail!("--offline needs --config PATH: the node's config names its data dir"),
                (false, _) => crate::backup::console::backup_from_node(
                    &api.connect(Access::Write)?,
                    cfg.as_ref().map(|c| &c.roster),
                    &out,
                ),
            }
        }
        Command::Restore { file, config, force, dry_run } => {
            let cfg = crate::config::Config::load(&config)?;
            crate::backup::console::restore(&cfg, &config, &file, force, dry_run)
        }
        Command::Submit(a) => submit(a),
        Command::Query(a) => {
            let job = QueryJob {
                filter: Filter {
                    itype: a.itype,
                    value: a.value,
                    origin: a.origin,
                    tag: a.tag,
                    tlp: a.tlp,
                    since: a.since,
                    until: a.until,
                    retracted: a.retracted,
                },
                after: a.after,
                limit: a.limit.map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
                all: a.all,
                json: a.json,
            };
            client::query(&a.api.connect(Access::Read)?, &job)
        }
        Command::Retract { id, reason, api } => client::retract(&api.connect(Access::Write)?, &id, &reason),
        Command::Sight { id, count, first_seen, last_seen, note, api } => {
            let req = SightRequest { count, first_seen, last_seen, note };
            client::sight(&api.connect(Access::Write)?, &id, &req)
        }
        Command::Status { json, api } => client::status(&api.connect(Access::Read)?, json),
        Command::Drill(cmd) => crate::drill::console::run(cmd),
        Command::Export(a) => {
            let job = crate::interop::console::ExportJob {
                format: a.format.into(),
                out: a.out,
                filter: Filter {
                    itype: a.itype,
                    origin: a.origin,
                    tag: a.tag,
                    tlp: a.tlp,
                    since: a.since,
                    until: a.until,
                    ..Filter::default()
                },
                include_red: a.include_red,
            };
            crate::interop::console::export(&a.api.connect(Access::Read)?, &job)
        }
        Command::Import(a) => {
            let job = crate::interop::console::ImportJob {
                format: a.format.into(),
                path: a.path,
                batch_size: usize::try_from(a.batch_size).expect("clap bounds --batch-size"),
                dry_run: a.dry_run,
            };
            let api = if a.dry_run { None } else { Some(a.api.connect(Access::Write)?) };
            crate::interop::console::import(api.as_ref(), &job)
        }
    }
}

fn submit(a: SubmitArgs) -> Result<()> {
    let api = a.api.connect(Access::Write)?;
    if let Some(path) = a.file {
        let format = a.format.map(|f| match f {
            FormatArg::Jsonl => FileFormat::Jsonl,
            FormatArg::Csv => FileFormat::Csv,
        });
        let batch_size = usize::try_from(a.batch_size).expect("clap bounds --batch-size");
        return client::submit_file(&api, &FileJob { path, format, atomic: a.atomic, batch_size });
    }
    let input = IndicatorInput {
        itype: a.itype.unwrap_or_default(),
        value: a.value.unwrap_or_default(),
        tlp: a.tlp.unwrap_or_default(),
        recipients: a.recipients,
        confidence: a.confidence,
        valid_from: a.valid_from,
        valid_until: a.valid_until,
        tags: a.tags,
        description: a.description.unwrap_or_default(),
        techniques: a.techniques,
    };
    client::submit_one(&api, &input)
}

fn run_node(path: &std::path::Path, format: Option<crate::config::LogFormat>, level: Option<&str>) -> Result<()> {
    let cfg = crate::config::Config::load(path)?;
    let log = crate::config::LogSettings::resolve(format, level, &cfg.log).map_err(anyhow::Error::msg)?;
    init_tracing(&log);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")?;
    rt.block_on(async move {
        // Handlers first: a signal that arrives while the node starts must stop it cleanly, not
        // kill the process with the default action.
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).context("installing a SIGTERM handler")?;
        let mut int = signal(SignalKind::interrupt()).context("installing a SIGINT handler")?;
        let running = crate::node::start(cfg).await?;
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        tracing::info!("signal received: shutting down");
        running.stop().await;
        Ok(())
    })
}

/// Logs to stderr in `log.format`, filtered by `log.level` (see `LogSettings::resolve`).
pub fn init_tracing(log: &crate::config::LogSettings) {
    let filter = tracing_subscriber::EnvFilter::builder().parse_lossy(&log.level);
    use std::io::IsTerminal;
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = match log.format {
        crate::config::LogFormat::Json => b.json().try_init(),
        crate::config::LogFormat::Text => b.try_init(),
    };
}

fn open_store(a: &StoreArgs) -> Result<Store> {
    Store::open(&a.data_dir, &StoreOptions::default())
        .with_context(|| format!("opening the store in {} (is a node running on it?)", a.data_dir.display()))
}
