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

fn open_store(a: &StoreArgs) -> Result<Store> {
    Store::open(&a.data_dir, &StoreOptions::default())
        .with_context(|| format!("opening the store in {} (is a node running on it?)", a.data_dir.display()))
}
