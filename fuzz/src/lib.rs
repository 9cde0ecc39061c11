//! ctix's fuzz targets: one function per decoder of peer input and per parser of user input.
//!
//! Each function in [`targets`] takes arbitrary bytes and must never panic. Besides "no panic"
//! the targets check what the code promises: decoders accept only canonical bytes (re-encoding
//! gives the input back), parsers' results pass their own validation, normal forms are fixed
//! points, and the replication machine answers every event with a bounded number of actions that
//! send bodies only to their audience.
//!
//! Two drivers run them: `fuzz_targets/*.rs` (libFuzzer through `cargo fuzz`, coverage-guided;
//! nightly for AddressSanitizer, or stable with `--sanitizer none`) and `src/bin/replay.rs` (a
//! plain stable binary that replays `corpus/` and mutations of it, for CI). `scripts/fuzz.sh`
//! runs either.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write as _;

pub mod fixtures;
pub mod input;
pub mod seeds;
pub mod targets;

/// Largest single allocation a target may make, in MiB; `scripts/fuzz.sh` passes the same value
/// to libFuzzer as `-malloc_limit_mb`. A length prefix that makes ctix allocate more is a bug
/// even when the machine has the memory. libFuzzer enforces its limit only under a sanitizer's
/// malloc hooks, so this allocator enforces it in every build (`--sanitizer none`, `replay`).
pub const ALLOC_MB_MAX: usize = 512;

/// A target: arbitrary bytes in, a panic only for a bug.
pub type Target = fn(&[u8]);

/// Every target by name, in the order `replay` runs them. The names are those of
/// `fuzz_targets/*.rs` and `corpus/*/`.
pub const TARGETS: [(&str, Target); 12] = [
    ("frame", targets::frame),
    ("entry", targets::entry),
    ("header", targets::header),
    ("body", targets::body),
    ("sync", targets::sync),
    ("api_json", targets::api_json),
    ("values", targets::values),
    ("scenario", targets::scenario),
    ("config", targets::config),
    ("roster", targets::roster),
    ("stix", targets::stix),
    ("misp", targets::misp),
];

/// The system allocator with a cap on each allocation: an allocation over `ALLOC_MB_MAX` aborts
/// the process, which libFuzzer reports as a crash with its input (and `replay` as a failure).
pub struct LimitAlloc;

fn check_size(size: usize) {
    if size > ALLOC_MB_MAX << 20 {
        // No formatting: allocating here would recurse.
        let _ = std::io::stderr().write_all(b"ctix-fuzz: one allocation over ALLOC_MB_MAX (512 MiB): aborting\n");
        std::process::abort();
    }
}

// SAFETY: forwards every call unchanged to `System`, after a size check that allocates nothing.
unsafe impl GlobalAlloc for LimitAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        check_size(layout.size());
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which `System` shares.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        check_size(layout.size());
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        check_size(new_size);
        // SAFETY: `ptr` was allocated by this allocator, that is by `System`, with `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as for `realloc`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: LimitAlloc = LimitAlloc;
