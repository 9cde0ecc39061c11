#!/usr/bin/env bash
# The web dashboard in a real browser: starts a live three-node dev federation on free loopback
# ports, submits indicators at two nodes, runs a short drill from ee, makes lt fork its own log
# (it restarts with an empty store, cut off from its peers, and signs a new seq 1), stops lt, and
# then drives
# headless Chromium through ee's dashboard as an operator would (tests/dashboard/check.py: sign
# in through the form, read the federation graph, filter the indicators, open the drill report,
# sign out), failing on any check or on any error in the page. scripts/test.sh runs this after
# scripts/check-reports.sh.
#
#   scripts/check-dashboard.sh [OUT_DIR]     (default: target/dashboard-check)
#
# Screenshots (login.png, federation.png, indicators-filtered.png, drills.png, dashboard.png)
# stay in OUT_DIR to look at, with the nodes' logs. Chromium comes from PATH or, if missing, from
# Debian's packages (needs root, as scripts/render-report.sh); python3 (standard library only)
# drives it over the DevTools pipe. CTIX_DASHBOARD_PORT sets the first QUIC port (default: the
# first free block from 7960). Exit codes: 0 passed, 1 a check failed, 2 usage or setup error.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "check-dashboard: $1" >&2; exit "${2:-1}"; }

[[ $# -le 1 ]] || die "usage: $0 [OUT_DIR]" 2
out=${1:-target/dashboard-check}
mkdir -p -- "$out"
rm -f -- "$out"/*.png "$out"/*.log

# shellcheck source=scripts/lib/chromium.sh
source scripts/lib/chromium.sh # (the script runs from the repository root)
ensure_chromium check-dashboard
command -v python3 >/dev/null 2>&1 || die "python3 is needed to drive the browser: install it (Debian: apt-get install python3)" 2

cargo build --locked --quiet --bin ctix
ctix=$PWD/target/debug/ctix
work=$(mktemp -d)
declare -A pids=()
cleanup() {
    local n
    for n in "${!pids[@]}"; do
        kill "${pids[$n]}" 2>/dev/null || true
        wait "${pids[$n]}" 2>/dev/null || true
    done
    for n in ee lv lt; do
        [[ -f $work/$n.log ]] && cp -- "$work/$n.log" "$out/$n.log"
    done
    rm -rf -- "$work"
}
trap cleanup EXIT

# Three QUIC (UDP) ports and three API (TCP) ports 100 above them, all free.
free_base() {
    python3 - "$1" <<'EOF'
import socket, sys
start = int(sys.argv[1])
for base in range(start, start + 2000, 10):
    try:
        socks = []
        for i in range(3):
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", base + i)); socks.append(u)
            t = socket.socket(socket.AF_INET, socket.SOCK_STREAM); t.bind(("127.0.0.1", base + 100 + i)); socks.append(t)
        for s in socks:
            s.close()
        print(base)
        break
    except OSError:
        for s in socks:
            s.close()
EOF
}
base=${CTIX_DASHBOARD_PORT:-$(free_base 7960)}
[[ -n $base ]] || die "no free block of loopback ports from 7960: set CTIX_DASHBOARD_PORT" 2
"$ctix" dev-federation --dir "$work/fed" --nodes ee,lv,lt --base-port "$base" >/dev/null
cfg() { echo "$work/fed/$1/ctix.toml"; }

# start_node NAME [CONFIG]; stop_node NAME.
start_node() {
    "$ctix" run --config "${2:-$(cfg "$1")}" >>"$work/$1.log" 2>&1 &
    pids[$1]=$!
}
stop_node() {
    kill "${pids[$1]}"
    wait "${pids[$1]}" 2>/dev/null || true
    unset "pids[$1]"
}
wait_up() {
    local _
    for _ in $(seq 1 200); do
        if "$ctix" status --config "${2:-$(cfg "$1")}" >/dev/null 2>&1; then return 0; fi
        kill -0 "${pids[$1]}" 2>/dev/null || { cat "$work/$1.log" >&2; die "node $1 exited at start-up (log above)"; }
        sleep 0.1
    done
    cat "$work/$1.log" >&2
    die "node $1 did not answer its API within 20 s (log above)"
}
for n in ee lv lt; do start_node "$n"; done
for n in ee lv lt; do wait_up "$n"; done

# Indicators from two origins; the dashboard is opened at ee and must show both.
"$ctix" submit --config "$(cfg ee)" --type ipv4 --value 198.51.100.23 --tlp green --tag dashcheck-phishing \
    --description "dashboard check: phishing relay" >/dev/null
"$ctix" submit --config "$(cfg ee)" --type domain --value login-dashcheck.example --tlp amber --tag dashcheck-phishing >/dev/null
"$ctix" submit --config "$(cfg lv)" --type domain --value c2-dashcheck.example --tlp clear --tag dashcheck-c2 >/dev/null
"$ctix" submit --config "$(cfg lv)" --type sha256 \
    --value 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 --tlp green --tag dashcheck-c2 >/dev/null
for _ in $(seq 1 100); do
    if "$ctix" query --config "$(cfg ee)" --json 2>/dev/null | grep -q c2-dashcheck.example; then break; fi
    sleep 0.1
done

# A short drill from ee (comms-check, 4 times faster: about 5 s), followed to its end.
"$ctix" drill run deploy/drills/comms-check.toml --speed 4 --config "$(cfg ee)" >"$work/drill.out" 2>&1 \
    || { cat "$work/drill.out" >&2; die "the drill did not run (its output is above)"; }
drill=$("$ctix" drill list --json --config "$(cfg ee)" | python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["id"])') \
    || die "ctix drill list shows no drill after the drill ran"

# lt forks its own log: it loses its disk and comes back cut off from its peers
# (`blocked_peers`), and with `on_no_peers = "proceed"` signs a new seq 1 (ARCHITECTURE.md,
# known gaps). Back among its peers, the two histories meet: every node quarantines lt and keeps
# the conflicting entry as evidence.
stop_node lt
rm -rf -- "$work/fed/lt/data"
sed -e 's/^blocked_peers = \[\]/blocked_peers = ["ee", "lv"]/' -e 's/^own_head_wait_ms = .*/own_head_wait_ms = 500/' \
    "$(cfg lt)" >"$work/fed/lt/isolated.toml"
grep -q '^blocked_peers = \["ee", "lv"\]' "$work/fed/lt/isolated.toml" || die "could not write lt's isolated config" 2
start_node lt "$work/fed/lt/isolated.toml"
wait_up lt "$work/fed/lt/isolated.toml"
"$ctix" submit --config "$work/fed/lt/isolated.toml" --type domain --value fork-dashcheck.example >/dev/null
stop_node lt
start_node lt
wait_up lt
python3 - "$work/fed/ee/credentials.json" <<'EOF' || die "ee did not quarantine lt within 30 s after lt forked (logs in $out)"
import json, sys, time, urllib.request
creds = json.load(open(sys.argv[1]))
req = urllib.request.Request(creds["api"] + "/api/v1/status", headers={"Authorization": "Bearer " + creds["token_ro"]})
for _ in range(300):
    if "lt" in json.load(urllib.request.urlopen(req, timeout=10))["quarantined"]:
        sys.exit(0)
    time.sleep(0.1)
sys.exit(1)
EOF

# lt goes down: ee must show its link down, lv's connected.
stop_node lt

started=$(date +%s)
python3 tests/dashboard/check.py --browser "$browser" --creds "$work/fed/ee/credentials.json" --token-field token_ro \
    --node ee --members ee,lv,lt --connected lv --down lt \
    --values 198.51.100.23,login-dashcheck.example,c2-dashcheck.example,9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 \
    --text-filter dashcheck-c2 --drill "$drill" --drill-name comms-check --fork-origin lt --fork-value fork-dashcheck.example --refresh 1 --out "$out" \
    || die "the dashboard check failed (FAIL above; screenshots and node logs in $out)"
echo "check-dashboard: the dashboard of a live 3-node federation passed in headless Chromium ($(($(date +%s) - started)) s in the browser); screenshots in $out"
