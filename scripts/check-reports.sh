#!/usr/bin/env bash
# Renders drill reports in headless Chromium and checks them (scripts/render-report.sh): each
# example scenario in deploy/drills, and comms-check on a 32-node federation, each simulated
# with a fixed seed. scripts/test.sh runs this after the cargo tests.
#
#   scripts/check-reports.sh [OUT_DIR]     (default: target/report-check)
#
# Uses the debug build of ctix (cargo builds it if needed). The PNGs stay in OUT_DIR to look at.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/report-check}
mkdir -p -- "$out"
cargo build --locked --quiet --bin ctix
ctix=target/debug/ctix
checked=0
for scenario in deploy/drills/*.toml; do
    name=$(basename -- "$scenario" .toml)
    "$ctix" drill simulate "$scenario" --seed 1 --format html --out "$out/$name.html"
    scripts/render-report.sh "$out/$name.html" "$out/$name.png"
    checked=$((checked + 1))
done
"$ctix" drill simulate deploy/drills/comms-check.toml --nodes 32 --seed 1 --format html --out "$out/comms-check-32.html"
scripts/render-report.sh "$out/comms-check-32.html" "$out/comms-check-32.png"
checked=$((checked + 1))
echo "check-reports: $checked reports rendered and checked; screenshots in $out"
