#!/usr/bin/env bash
# Fuzzes every decoder of peer input and every parser of user input (fuzz/, targets in
# fuzz/src/targets/; STYLE.md 14).
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#       Coverage-guided: cargo-fuzz and libFuzzer, each target (default: all) for
#       SECONDS_PER_TARGET (default 30). Installs cargo-fuzz $CARGO_FUZZ_VERSION if missing. Runs
#       on stable with `--sanitizer none`; CTIX_FUZZ_TOOLCHAIN=nightly runs on nightly with
#       AddressSanitizer instead. New inputs go to fuzz/target/corpus/<target>/ (the committed
#       seeds in fuzz/corpus/<target>/ are only read); crashes to fuzz/artifacts/<target>/.
#   scripts/fuzz.sh --ci
#       The short CI pass, stable only, about a minute and a half: the `replay` driver replays
#       the committed corpus and mutations of it, CTIX_FUZZ_CI_SECONDS (default 5) per target.
#       No cargo-fuzz (its install and the instrumented build take over ten minutes on 2 cores).
#       Builds in $CARGO_TARGET_DIR (default target/), reusing what `cargo test` built there.
#
# Prints one line per target (runs, crashes) and fails if any target crashed. Every libFuzzer
# run is bounded: -malloc_limit_mb (one allocation; also enforced in every build by
# ctix_fuzz::LimitAlloc, since libFuzzer needs a sanitizer for it), -rss_limit_mb, -timeout
# (one input) and -max_total_time.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

CARGO_FUZZ_VERSION=0.13.2
MALLOC_LIMIT_MB=512 # = ctix_fuzz::ALLOC_MB_MAX
RSS_LIMIT_MB=2048
INPUT_TIMEOUT_S=10

if [[ "${1:-}" == "--ci" ]]; then
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
    exec cargo run --quiet --locked --manifest-path fuzz/Cargo.toml --no-default-features --features replay \
        --bin replay -- --seconds "${CTIX_FUZZ_CI_SECONDS:-5}"
fi

seconds=30
if [[ "${1:-}" =~ ^[0-9]+$ ]]; then
    seconds=$1
    shift
fi
targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
    for f in fuzz/fuzz_targets/*.rs; do
        targets+=("$(basename "$f" .rs)")
    done
fi

if [[ "$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]]; then
    echo "installing cargo-fuzz $CARGO_FUZZ_VERSION" >&2
    cargo install --locked cargo-fuzz --version "$CARGO_FUZZ_VERSION"
fi
if [[ "${CTIX_FUZZ_TOOLCHAIN:-stable}" == nightly ]]; then
    fuzz=(cargo +nightly fuzz)
    sanitizer=(--sanitizer address)
else
    fuzz=(cargo +stable fuzz)
    sanitizer=(--sanitizer none)
fi
# The instrumented build has its own directory, whatever the caller's CARGO_TARGET_DIR.
export CARGO_TARGET_DIR="$root/fuzz/target"
(cd fuzz && "${fuzz[@]}" build "${sanitizer[@]}")

mkdir -p fuzz/target/logs
failed=0
summary=()
for t in "${targets[@]}"; do
    mkdir -p "fuzz/target/corpus/$t"
    log="fuzz/target/logs/$t.log"
    status=0
    (cd fuzz && "${fuzz[@]}" run "${sanitizer[@]}" "$t" "target/corpus/$t" "corpus/$t" -- \
        -max_total_time="$seconds" -malloc_limit_mb="$MALLOC_LIMIT_MB" -rss_limit_mb="$RSS_LIMIT_MB" \
        -timeout="$INPUT_TIMEOUT_S" -print_final_stats=1) >"$log" 2>&1 || status=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
    if [[ -z "$runs" ]]; then
        runs=$(sed -n 's/^#\([0-9]*\).*/\1/p' "$log" | tail -n1)
    fi
    crashes=0
    line="$t: $seconds s, ${runs:-?} runs, $crashes crashes"
    if [[ $status -ne 0 ]]; then
        crashes=1
        artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n1)
        line="$t: $seconds s, ${runs:-?} runs, $crashes crashes (log $log${artifact:+, input $artifact})"
        failed=$((failed + 1))
    fi
    summary+=("$line")
    echo "$line"
done

echo "--- fuzz summary (${fuzz[*]} ${sanitizer[*]}, $seconds s per target)"
printf '%s\n' "${summary[@]}"
if [[ $failed -gt 0 ]]; then
    echo "$failed target(s) crashed; reproduce with: (cd fuzz && ${fuzz[*]} run ${sanitizer[*]} TARGET INPUT)" >&2
    exit 1
fi
