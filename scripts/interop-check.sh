#!/usr/bin/env bash
# Conformance of a live ctix node with the standards' own tools (tests/interop/check.py):
# stix2-validator on an exported STIX bundle, taxii2-client against the node's TAXII 2.1 server,
# and PyMISP on an exported MISP feed and on the feed the node serves.
#
#   scripts/interop-check.sh          (scripts/test.sh runs it after the cargo tests)
#
# It installs the Python tools from PyPI into a virtual environment of its own
# (target/interop-venv; python3 with its venv module is needed, and on Debian the script
# installs python3-venv when it can), starts one dev node on loopback ports 7950/8050, submits
# indicators of every type and TLP, and stops the node when it ends, even on failure.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "interop-check: $1" >&2; exit "${2:-1}"; }

venv=${CTIX_INTEROP_VENV:-target/interop-venv}
# The tools, pinned: the versions this project was checked with.
tools=(stix2==3.0.2 stix2-validator==3.3.2 taxii2-client==2.3.0 pymisp==2.5.34.4)

if ! command -v python3 >/dev/null 2>&1; then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        echo "interop-check: installing python3 from the Debian packages" >&2
        apt-get update -qq && apt-get install -y -qq --no-install-recommends python3 python3-venv >/dev/null \
            || die "apt-get install python3 failed: check the apt sources" 2
    else
        die "python3 is needed for the interop tools: install it (Debian: apt-get install python3 python3-venv)" 2
    fi
fi
if [[ ! -x $venv/bin/python ]]; then
    if ! python3 -m venv "$venv" 2>/dev/null; then
        if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
            echo "interop-check: installing python3-venv from the Debian packages" >&2
            apt-get update -qq && apt-get install -y -qq --no-install-recommends python3-venv >/dev/null \
                || die "apt-get install python3-venv failed" 2
            rm -rf -- "$venv"
            python3 -m venv "$venv" || die "python3 -m venv $venv failed" 2
        else
            die "python3 -m venv failed: install python3-venv (or run as root to let this script install it)" 2
        fi
    fi
fi
if ! "$venv/bin/python" -c 'import stix2, stix2validator, taxii2client, pymisp' 2>/dev/null; then
    echo "interop-check: installing ${tools[*]} into $venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check "${tools[@]}" \
        || die "pip install failed: check access to PyPI" 2
fi
py=$venv/bin/python

cargo build --locked --quiet --bin ctix
ctix=$PWD/target/debug/ctix
work=$(mktemp -d)
node_pid=
cleanup() {
    if [[ -n $node_pid ]]; then
        kill "$node_pid" 2>/dev/null || true
        wait "$node_pid" 2>/dev/null || true
    fi
    rm -rf -- "$work"
}
trap cleanup EXIT

"$ctix" dev-federation --dir "$work/fed" --nodes ee --base-port "${CTIX_INTEROP_PORT:-7950}" >/dev/null
cfg=$work/fed/ee/ctix.toml
creds=$work/fed/ee/credentials.json
"$ctix" run --config "$cfg" >"$work/node.log" 2>&1 &
node_pid=$!
for _ in $(seq 1 100); do
    if "$ctix" status --config "$cfg" >/dev/null 2>&1; then break; fi
    kill -0 "$node_pid" 2>/dev/null || { cat "$work/node.log" >&2; die "the node exited at start-up (log above)"; }
    sleep 0.1
done
"$ctix" status --config "$cfg" >/dev/null || { cat "$work/node.log" >&2; die "the node did not come up (log above)"; }

# Indicators of every type and TLP level, one retracted and one sighted.
"$ctix" submit --config "$cfg" --file tests/data/interop/indicators.jsonl >/dev/null
first=$("$ctix" query --config "$cfg" --json --limit 2 2>/dev/null | "$py" -c 'import json,sys; print([json.loads(l)["id"] for l in sys.stdin][0])')
"$ctix" retract --config "$cfg" "$first" --reason "conformance check: false positive" >/dev/null
second=$("$ctix" query --config "$cfg" --json --limit 2 2>/dev/null | "$py" -c 'import json,sys; print([json.loads(l)["id"] for l in sys.stdin][1])')
"$ctix" sight --config "$cfg" "$second" --count 3 --note "conformance check" >/dev/null

failed=0
"$ctix" export --config "$cfg" --format stix --include-red --out "$work/bundle.json"
"$py" tests/interop/check.py stix "$work/bundle.json" || failed=1
"$py" tests/interop/check.py taxii "$creds" || failed=1
"$ctix" export --config "$cfg" --format misp --out "$work/feed"
"$py" tests/interop/check.py misp "$work/feed" || failed=1
"$py" tests/interop/check.py misp-served "$creds" || failed=1

if [[ $failed -ne 0 ]]; then
    echo "--- node log" >&2
    tail -n 50 "$work/node.log" >&2
    die "conformance checks failed (FAIL lines above)"
fi
echo "interop-check: STIX, TAXII and MISP conformance checks passed"
