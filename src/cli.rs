//! The command line: clap definitions and the commands that run without a daemon.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};

use crate::model::NodeName;
use crate::pki;
use crate::roster::Roster;
use crate::store::{Store, StoreOptions};

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
    },
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
        /// Where to write NAME.crt and NAME.key (0600). Defaults to the CA directory.
        #[arg(long)]
        out_dir: Option<PathBuf>,
        /// Validity in days.
        #[arg(long, default_value_t = 825)]
        days: u32,
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
            println!("wrote {} and {} (mode 0600): keep the CA key offline", p.cert.display(), p.key.display());
            Ok(())
        }
        Command::Ca(CaCommand::Issue { name, ca_dir, out_dir, days }) => {
            NodeName::new(&name)?;
            let out_dir = out_dir.unwrap_or_else(|| ca_dir.clone());
            let p = pki::ca_issue(&ca_dir, &name, &out_dir, days)?;
            println!("wrote {} and {} (mode 0600)", p.cert.display(), p.key.display());
            Ok(())
        }
        Command::Run { config } => run_node(&config),
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
    }
}

fn run_node(path: &std::path::Path) -> Result<()> {
    init_tracing();
    let cfg = crate::config::Config::load(path)?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")?;
    rt.block_on(async move {
        let running = crate::node::start(cfg).await?;
        shutdown_signal().await;
        tracing::info!("signal received: shutting down");
        running.stop().await;
        Ok(())
    })
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// Logs to stderr; `RUST_LOG` sets levels per module (default `info`), `CTIX_LOG_FORMAT=json`
/// switches to JSON lines.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    use std::io::IsTerminal;
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let _ =
        if std::env::var("CTIX_LOG_FORMAT").is_ok_and(|v| v == "json") { b.json().try_init() } else { b.try_init() };
}

fn open_store(a: &StoreArgs) -> Result<Store> {
    Store::open(&a.data_dir, &StoreOptions::default())
        .with_context(|| format!("opening the store in {} (is a node running on it?)", a.data_dir.display()))
}
