#!/usr/bin/env bash
# The test command (README "Run the tests"; .ci/run calls exactly this).
# Slow variants: CTIX_SIM_SEEDS=5000 (simulation seeds), CTIX_KILL9_ROUNDS=50 (crash rounds).
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo test --all-targets --locked "$@"
