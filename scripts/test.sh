#!/usr/bin/env bash
# The test command (README "Run the tests"; .ci/run calls exactly this): every cargo test, then
# a short pass of every fuzz target (scripts/fuzz.sh --ci: the seed corpus plus random inputs),
# then the drill reports rendered in headless Chromium (scripts/check-reports.sh; installs Chromium
# from Debian's packages if it is missing), then the web dashboard of a live federation driven in
# headless Chromium (scripts/check-dashboard.sh), then the STIX/TAXII/MISP conformance checks with the
# standards' own tools on a live node (scripts/interop-check.sh; installs them from PyPI), then
# deploy/ (scripts/check-deploy.sh: promtool, systemd-analyze, docker-compose, shellcheck from
# Debian's packages if missing; a few seconds once installed).
# Arguments go to `cargo test`; with any, only the cargo tests run (`scripts/test.sh drill::`).
# Slow variants: CTIX_SIM_SEEDS=5000 (simulation seeds), CTIX_KILL9_ROUNDS=50 (crash rounds).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --all-targets --locked "$@"
if [[ $# -eq 0 ]]; then
    scripts/fuzz.sh --ci
    scripts/check-reports.sh
    scripts/check-dashboard.sh
    scripts/interop-check.sh
    scripts/check-deploy.sh "${CARGO_TARGET_DIR:-target}/debug/ctix"
fi
