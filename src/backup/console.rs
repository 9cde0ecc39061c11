//! `ctix backup`, `ctix restore` and `ctix store rejoin` as an operator runs them: files written
//! whole or not at all, progress on stderr, a verification of everything written or read, and a
//! summary.

use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{Summary, restore as restore_entries, verify, write};
use crate::client::Api;
use crate::config::Config;
use crate::model::time::format_time;
use crate::roster::Roster;
use crate::store::Store;

/// The API route that streams a backup of the running node.
pub const BACKUP_PATH: &str = "/api/v1/backup";

/// `ctix backup --out FILE` against a running node: streams the backup from its API into FILE,
/// checking it as it arrives (with the roster, when the node's config is known, every signature
/// and chain link too). FILE appears only once the whole backup arrived and verified.
pub fn backup_from_node(api: &Api, roster: Option<&Roster>, out: &Path) -> Result<()> {
    let (tmp, file) = create_out(out)?;
    let result = (|| -> Result<Summary> {
        let stream = api.get_stream(BACKUP_PATH)?;
        let mut tee = Tee { input: stream, copy: BufWriter::new(file) };
        let bar = entries_bar("backing up");
        let s = verify(&mut tee, roster, &mut |done, total| progress(&bar, done, total))
            .context("the backup from the node is not valid")?;
        bar.finish_and_clear();
        finish_file(tee.copy, &tmp, out)?;
        Ok(s)
    })();
    let s = result.inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })?;
    print_backup(out, &s, roster.is_some());
    Ok(())
}

/// `ctix backup --offline`: a backup of a stopped node's data dir, then read back and verified.
pub fn backup_offline(cfg: &Config, out: &Path) -> Result<()> {
    let store = open_store(&cfg.data_dir)?;
    let (tmp, file) = create_out(out)?;
    let result = (|| -> Result<Summary> {
        let mut w = BufWriter::new(file);
        let bar = entries_bar("backing up");
        let heads = store.heads();
        let total: u64 = heads.values().map(|t| t.seq).sum();
        write(&store, &cfg.node, heads, &mut w, &mut |done| progress(&bar, done, total))?;
        bar.finish_and_clear();
        finish_file(w, &tmp, out)?;
        let bar = entries_bar("verifying");
        let mut f = BufReader::new(File::open(out).with_context(|| format!("reading back {}", out.display()))?);
        let s = verify(&mut f, Some(&cfg.roster), &mut |done, total| progress(&bar, done, total))
            .with_context(|| format!("{} does not verify after writing", out.display()))?;
        bar.finish_and_clear();
        Ok(s)
    })();
    let s = result.inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })?;
    print_backup(out, &s, true);
    Ok(())
}

/// `ctix restore FILE`: verifies the whole backup against the roster, then writes it into the
/// node's (stopped, empty unless `force`) store through the verified ingest path, and marks the
/// node's own log unconfirmed so that it signs nothing until a peer confirms its head.
pub fn restore(cfg: &Config, config_path: &Path, file: &Path, force: bool, dry_run: bool) -> Result<()> {
    let open = || -> Result<BufReader<File>> {
        Ok(BufReader::new(File::open(file).with_context(|| format!("opening the backup {}", file.display()))?))
    };
    let bar = entries_bar("verifying");
    let checked = verify(&mut open()?, Some(&cfg.roster), &mut |done, total| progress(&bar, done, total))
        .with_context(|| format!("{} is refused", file.display()))?;
    bar.finish_and_clear();
    let h = &checked.header;
    if h.node != cfg.node {
        bail!(
            "{} is a backup of node {}, and {} is the config of node {}: restore each node from its own backup",
            file.display(),
            h.node,
            config_path.display(),
            cfg.node
        );
    }
    println!(
        "verified {}: {} entries of {} origins and {} fork records, taken {} on {}; every signature and chain link checks out",
        file.display(),
        checked.entries,
        h.heads.len(),
        checked.forks,
        format_time(h.created_ms),
        h.node
    );
    if dry_run {
        println!("dry run: nothing written");
        return Ok(());
    }
    let store = open_store(&cfg.data_dir)?;
    let unfinished = store.restore_incomplete()?;
    let held = store.heads();
    if unfinished && !force {
        bail!(
            "an earlier restore into {} did not finish: pass --force to restore into it again (what it holds is kept and merged)",
            cfg.data_dir.display()
        );
    }
    if (!held.is_empty() || !store.forks()?.is_empty()) && !force {
        bail!(
            "the store in {} is not empty (it holds the logs of {} origins): to replace it, stop the node, move the data dir \
             away and restore again; to merge the backup into it, pass --force",
            cfg.data_dir.display(),
            held.len()
        );
    }
    // Marked first and durably: a crash from here on leaves a store the node refuses to run on,
    // and whose own log it would not sign on before a peer confirms it.
    store.set_own_head_unconfirmed(true)?;
    store.set_restore_incomplete(true)?;
    let bar = entries_bar("restoring");
    let s = restore_entries(&mut open()?, &store, &cfg.roster, &mut |done, total| progress(&bar, done, total))
        .with_context(|| format!("restoring {} into {}", file.display(), cfg.data_dir.display()))?;
    bar.finish_and_clear();
    if s.checksum != checked.checksum {
        bail!("{} changed while it was being restored: restore it again with --force", file.display());
    }
    store.set_restore_incomplete(false)?;
    let own = store.head(&cfg.node).map_or(0, |t| t.seq);
    println!(
        "restored {} entries ({} already held) and {} fork records into {}",
        s.entries - s.duplicates,
        s.duplicates,
        s.forks,
        cfg.data_dir.display()
    );
    if s.conflicts > 0 {
        println!(
            "warning: {} entries of the backup conflict with entries the store held: both are kept as fork evidence and their origins quarantined (see `ctix status`)",
            s.conflicts
        );
    }
    println!(
        "{}'s own log is at seq {own} and marked unconfirmed: after `ctix run`, the node signs nothing (the API answers 503) \
         until a peer has confirmed its own head, first fetching back any of its entries that peers hold beyond it",
        cfg.node
    );
    Ok(())
}

/// `ctix store rejoin`: marks a stopped node's own log unconfirmed (creating the store if there
/// is none), for a node whose key signed entries before but whose store was lost or replaced.
pub fn rejoin(data_dir: &Path) -> Result<()> {
    let store = open_store(data_dir)?;
    store.set_own_head_unconfirmed(true)?;
    println!(
        "marked: the node on {} signs nothing until a peer confirms its own log head (it first fetches back its own \
         entries from peers); start it with `ctix run` while its peers are up",
        data_dir.display()
    );
    Ok(())
}

fn open_store(dir: &Path) -> Result<Store> {
    Store::open_for_restore(dir).with_context(|| {
        format!("opening the store in {} (stop the node first: a running node holds it)", dir.display())
    })
}

/// Creates the temporary file a backup is written to, next to `out` and readable by its owner
/// only (a backup holds TLP:RED bodies); `out` itself must not exist yet.
fn create_out(out: &Path) -> Result<(PathBuf, File)> {
    if out.exists() {
        bail!("{} exists: choose another file name, or remove it first", out.display());
    }
    let name = out.file_name().ok_or_else(|| anyhow!("{}: give a file name", out.display()))?;
    let tmp = out.with_file_name(format!(".{}.partial", name.to_string_lossy()));
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    Ok((tmp, file))
}

/// Makes the written file durable and gives it its name.
fn finish_file(mut w: BufWriter<File>, tmp: &Path, out: &Path) -> Result<()> {
    w.flush().with_context(|| format!("writing {}", tmp.display()))?;
    let f = w.into_inner().map_err(|e| anyhow!("writing {}: {}", tmp.display(), e.error()))?;
    f.sync_all().with_context(|| format!("syncing {}", tmp.display()))?;
    std::fs::rename(tmp, out).with_context(|| format!("renaming {} to {}", tmp.display(), out.display()))?;
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty())
        && let Ok(d) = File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(())
}

fn print_backup(out: &Path, s: &Summary, signatures: bool) {
    println!(
        "wrote {} ({} bytes, mode 0600): {} entries of {} origins and {} fork records of node {}, sha256 {}",
        out.display(),
        s.bytes,
        s.entries,
        s.header.heads.len(),
        s.forks,
        s.header.node,
        hex::encode(s.checksum)
    );
    if signatures {
        println!("verified: format, checksum, every signature and chain link");
    } else {
        println!("verified: format and checksum (pass --config to check signatures against the roster too)");
    }
    println!("keys are not in a backup: keep the node key, TLS key and config with your secrets");
}

/// Copies what is read into a file.
struct Tee<R: Read> {
    input: R,
    copy: BufWriter<File>,
}

impl<R: Read> Read for Tee<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.input.read(buf)?;
        self.copy.write_all(&buf[..n])?;
        Ok(n)
    }
}

fn entries_bar(what: &'static str) -> ProgressBar {
    use std::io::IsTerminal;
    if !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{bar:40}] {pos}/{len} entries ({per_sec}, {eta} left)")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message(what);
    bar
}

fn progress(bar: &ProgressBar, done: u64, total: u64) {
    if bar.length() != Some(total) {
        bar.set_length(total);
    }
    bar.set_position(done);
}
