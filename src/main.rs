//! The `ctix` binary: parse the command line, run the command, report errors.

use std::process::ExitCode;

/// mimalloc rather than glibc malloc: sled allocates and frees per record, and glibc's malloc
/// and free took about a quarter of the CPU in `perf` profiles of ingest and catch-up
/// (`BENCHMARKS.md`). Built with mimalloc's `no_thp` feature (`Cargo.toml` says why).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    match ctix::cli::main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", chain(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes, `: `-separated, leaving out a cause whose text the message before
/// it already includes.
fn chain(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let s = cause.to_string();
        if !out.contains(&s) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&s);
        }
    }
    out
}
