#!/usr/bin/env bash
# The system benchmark: machine limits, REST ingest, propagation, catch-up and TAXII on real
# nodes on loopback, plus TAXII side by side with medallion; prints one table at the end.
#
#   scripts/bench.sh            default sizes (100,000-entry catch-up and footprint), minutes
#   scripts/bench.sh --full     1,000,000-entry catch-up and footprint (RSS, disk, start-up)
#   scripts/bench.sh --smoke    tiny sizes, seconds, no medallion: checks the harness still runs
#                               (for CI; it asserts correctness, never timings)
#   scripts/bench.sh --only catchup[,ingest,…]   just those figures (limits, ingest, propagation,
#                               burst, catchup, taxii, footprint, scale), e.g. under `perf record`
#
# Builds in release. Numbers depend on the machine and on whatever else runs on it: compare
# ratios measured in the same run, not absolute figures across machines (see BENCHMARKS.md).
set -euo pipefail
cd "$(dirname "$0")/.."

mode=()
smoke=false
only=()
while [ $# -gt 0 ]; do
    case $1 in
        --full) mode=(--full) ;;
        --smoke) mode=(--smoke); smoke=true ;;
        --only) [ $# -ge 2 ] || { echo "bench.sh: --only needs a list such as catchup,ingest" >&2; exit 2; }
                only=(--only "$2"); shift ;;
        *) echo "bench.sh: unknown argument $1: use --full, --smoke or --only LIST" >&2; exit 2 ;;
    esac
    shift
done
target=${CARGO_TARGET_DIR:-target}

cargo build --release --locked --quiet --bin ctix --bench system
if ! $smoke && { [ ${#only[@]} -eq 0 ] || [[ ${only[1]} == *taxii* ]]; }; then
    export CTIX_BENCH_MEDALLION=$target/bench/medallion.json
    rm -f -- "$CTIX_BENCH_MEDALLION"
    CTIX_BENCH_OUT=$CTIX_BENCH_MEDALLION benches/medallion.sh \
        || echo "bench.sh: the medallion comparison failed; its rows are left out" >&2
fi
cargo bench --locked --quiet --bench system -- "${mode[@]}" "${only[@]}"
