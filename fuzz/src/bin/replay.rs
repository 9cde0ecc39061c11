//! The stable fuzz driver: replays `corpus/<target>/` and then mutations of it for a time budget,
//! with the same target functions as the libFuzzer binaries, but no coverage guidance and no
//! nightly toolchain. `scripts/fuzz.sh --ci` runs it; a failure prints the seed and writes the
//! input to `target/replay-crashes/`, where `replay --run TARGET FILE` reproduces it.
//!
//! ```text
//! replay [--seconds N] [--seed S] [TARGET...]   corpus, then mutations for N s per target (10)
//! replay --run TARGET FILE...                     run these inputs once each
//! replay --write-seeds                            regenerate the committed seed corpus
//! ```

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use ctix::sim::Rng;
use ctix_fuzz::TARGETS;
use ctix_fuzz::seeds::{fnv1a, write_all};

/// Longest mutated input: a little over the largest seed (the MISP and STIX fixtures).
const INPUT_BYTES_MAX: usize = 64 * 1024;
/// Mutations stacked on one input at most.
const MUTATIONS_MAX: u64 = 8;

/// Bytes and tokens that matter to the parsers under test: bincode's varint markers, JSON and
/// TOML syntax, and the prefixes of the values they hold.
const TOKENS: &[&[u8]] = &[
    b"\xfb",
    b"\xfc",
    b"\xfd",
    b"\xff",
    b"\x00",
    b"\x01",
    b"\x7f",
    b"\x80",
    b"\"",
    b"'",
    b"\\",
    b"[",
    b"]",
    b"{",
    b"}",
    b",",
    b":",
    b"=",
    b"\n",
    b".",
    b"/",
    b"-",
    b"@",
    b"%",
    b"#",
    b"*",
    b" ",
    b"\\u0000",
    b"null",
    b"true",
    b"[[inject]]",
    b"[[objective]]",
    b"[[member]]",
    b"[drill]",
    b"[[api.tokens]]",
    b"xn--",
    b"::",
    b"9999",
    b"18446744073709551615",
    b"-1",
    b"1e999",
    b"ms",
    b"h",
    b"OR",
    b"AND",
    b"' OR [",
    b"\xf0\x9f\x92\xa9",
];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    match args.first().map(String::as_str) {
        Some("--write-seeds") => match write_all(&corpus) {
            Ok(n) => {
                println!("wrote {n} seeds under {}", corpus.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("writing seeds: {e}");
                ExitCode::FAILURE
            }
        },
        Some("--run") if args.len() >= 3 => run_files(&args[1], &args[2..]),
        _ => fuzz(&corpus, &args),
    }
}

fn target(name: &str) -> Option<ctix_fuzz::Target> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}

fn run_files(name: &str, files: &[String]) -> ExitCode {
    let Some(f) = target(name) else {
        eprintln!("no target {name:?}; the targets are {}", names());
        return ExitCode::FAILURE;
    };
    for file in files {
        let data = std::fs::read(file).unwrap_or_else(|e| panic!("reading {file}: {e}"));
        f(&data);
        println!("{name}: {file}: ok");
    }
    ExitCode::SUCCESS
}

fn names() -> String {
    TARGETS.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
}

fn fuzz(corpus: &Path, args: &[String]) -> ExitCode {
    let mut seconds = 10.0f64;
    let mut seed =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    let mut chosen = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--seconds" => seconds = it.next().and_then(|s| s.parse().ok()).expect("--seconds takes a number"),
            "--seed" => seed = it.next().and_then(|s| s.parse().ok()).expect("--seed takes a u64"),
            t if target(t).is_some() => chosen.push(t.to_owned()),
            other => {
                eprintln!("unknown argument {other:?}; the targets are {}", names());
                return ExitCode::FAILURE;
            }
        }
    }
    println!("replay: seed {seed} (rerun with --seed {seed}), {seconds} s per target");
    // A panicking target is reported here, with its input saved; the default hook's message
    // (the assertion) is still printed first.
    let crash_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/replay-crashes");
    let mut failed = 0;
    for (name, f) in TARGETS {
        if !chosen.is_empty() && !chosen.iter().any(|c| c == name) {
            continue;
        }
        let seeds = read_corpus(&corpus.join(name));
        let mut rng = Rng::new(seed ^ fnv1a(name.as_bytes()));
        let deadline = Instant::now() + Duration::from_secs_f64(seconds);
        let (mut runs, mut crashes) = (0u64, 0u64);
        let mut run_one = |data: &[u8]| {
            runs += 1;
            if catch_unwind(AssertUnwindSafe(|| f(data))).is_err() {
                crashes += 1;
                let path = save(&crash_dir, name, data);
                eprintln!("{name}: CRASH on {} bytes, saved as {}", data.len(), path.display());
                eprintln!(
                    "  reproduce: cargo run --manifest-path fuzz/Cargo.toml --no-default-features --features replay --bin replay -- --run {name} {}",
                    path.display()
                );
            }
            (runs, crashes)
        };
        let mut counts = (0, 0);
        for s in &seeds {
            counts = run_one(s);
        }
        let corpus_runs = counts.0;
        while Instant::now() < deadline && counts.1 == 0 {
            let input = mutate(&mut rng, &seeds);
            counts = run_one(&input);
        }
        let (runs, crashes) = counts;
        println!(
            "{name}: {runs} runs ({corpus_runs} corpus, {} mutated) in {seconds} s, {crashes} crashes",
            runs - corpus_runs
        );
        failed += usize::from(crashes > 0);
    }
    if failed > 0 {
        eprintln!("replay: {failed} target(s) crashed (seed {seed})");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

fn read_corpus(dir: &Path) -> Vec<Vec<u8>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_file()).collect())
        .unwrap_or_default();
    files.sort();
    files.iter().filter_map(|p| std::fs::read(p).ok()).collect()
}

fn save(dir: &Path, name: &str, data: &[u8]) -> PathBuf {
    let _ = std::fs::create_dir_all(dir);
    let path = dir.join(format!("{name}-{:016x}", fnv1a(data)));
    let _ = std::fs::write(&path, data);
    path
}

/// A seed (or random bytes) with 1 to `MUTATIONS_MAX` mutations of the kinds libFuzzer makes.
fn mutate(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut d = if seeds.is_empty() || rng.below(16) == 0 {
        (0..rng.below(256)).map(|_| rng.next_u64() as u8).collect()
    } else {
        seeds[rng.below(seeds.len() as u64) as usize].clone()
    };
    for _ in 0..=rng.below(MUTATIONS_MAX) {
        let at = |rng: &mut Rng, d: &Vec<u8>| rng.below(d.len() as u64 + 1) as usize;
        match rng.below(10) {
            0 if !d.is_empty() => {
                let i = rng.below(d.len() as u64) as usize;
                d[i] ^= 1 << rng.below(8);
            }
            1 if !d.is_empty() => {
                let i = rng.below(d.len() as u64) as usize;
                d[i] = rng.next_u64() as u8;
            }
            2 => {
                let i = at(rng, &d);
                d.insert(i, rng.next_u64() as u8);
            }
            3 if !d.is_empty() => {
                let i = rng.below(d.len() as u64) as usize;
                let n = (rng.below(16) as usize + 1).min(d.len() - i);
                d.drain(i..i + n);
            }
            4 if !d.is_empty() => {
                // Duplicate a range: repeated tables, list items, frames.
                let i = rng.below(d.len() as u64) as usize;
                let n = (rng.below(64) as usize + 1).min(d.len() - i);
                let chunk = d[i..i + n].to_vec();
                let j = at(rng, &d);
                d.splice(j..j, chunk);
            }
            5 => {
                let t = TOKENS[rng.below(TOKENS.len() as u64) as usize];
                let i = at(rng, &d);
                d.splice(i..i, t.iter().copied());
            }
            6 if d.len() >= 8 => {
                // An extreme integer over a length or counter, in either byte order.
                let v = [0u64, 1, 0x7f, 0xff, 0xffff, u32::MAX as u64, u64::MAX][rng.below(7) as usize];
                let bytes = if rng.below(2) == 0 { v.to_le_bytes() } else { v.to_be_bytes() };
                let n = [1usize, 2, 4, 8][rng.below(4) as usize];
                let i = rng.below((d.len() - n + 1) as u64) as usize;
                d[i..i + n].copy_from_slice(&bytes[..n]);
            }
            7 if !seeds.is_empty() => {
                // Splice: the head of this input and the tail of another.
                let other = &seeds[rng.below(seeds.len() as u64) as usize];
                let i = at(rng, &d);
                let j = rng.below(other.len() as u64 + 1) as usize;
                d.truncate(i);
                d.extend_from_slice(&other[j..]);
            }
            8 => {
                let n = at(rng, &d);
                d.truncate(n);
            }
            _ => {
                let i = at(rng, &d);
                let n = rng.below(8) as usize;
                let ascii: Vec<u8> = (0..n).map(|_| b' ' + rng.below(95) as u8).collect();
                d.splice(i..i, ascii);
            }
        }
    }
    d.truncate(INPUT_BYTES_MAX);
    d
}
