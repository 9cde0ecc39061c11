#!/usr/bin/env bash
# TAXII side by side: the same Python client (benches/taxii_client.py, taxii2-client) adds N
# indicators to and pages them back from a ctix node and from medallion (OASIS's reference TAXII
# 2.1 server, memory backend), both on loopback, each fresh for every run.
#
#   benches/medallion.sh [N]        (N = 1000 by default; scripts/bench.sh runs it)
#
# N is small because medallion's memory backend reads in time superlinear in the collection
# size: 2,000 objects took 92 s to page back (21 objects/s), 10,000 would take far longer.
#
# Prints both servers' medians of CTIX_BENCH_RUNS runs (default 3) and their ratio, and writes
# them as JSON to CTIX_BENCH_OUT (default $target/bench/medallion.json), which the system bench
# reads (CTIX_BENCH_MEDALLION). Installs medallion and taxii2-client from PyPI into
# target/bench-venv; uses the release ctix binary in ${CARGO_TARGET_DIR:-target}, building it if
# it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "medallion.sh: $1" >&2; exit "${2:-1}"; }

n=${1:-1000}
runs=${CTIX_BENCH_RUNS:-3}
target=${CARGO_TARGET_DIR:-target}
venv=${CTIX_BENCH_VENV:-target/bench-venv}
out=${CTIX_BENCH_OUT:-$target/bench/medallion.json}
mport=${CTIX_BENCH_MEDALLION_PORT:-5077}
cport=${CTIX_BENCH_CTIX_PORT:-7960}
# Pinned: the versions this comparison was made with.
tools=(medallion==3.0.0 taxii2-client==2.3.0)

command -v python3 >/dev/null 2>&1 || die "python3 (with venv) is needed: apt-get install python3 python3-venv" 2
if [[ ! -x $venv/bin/python ]]; then
    python3 -m venv "$venv" || die "python3 -m venv $venv failed: install python3-venv" 2
fi
if ! "$venv/bin/python" -c 'import medallion, taxii2client' 2>/dev/null; then
    echo "medallion.sh: installing ${tools[*]} into $venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check "${tools[@]}" || die "pip install failed: check access to PyPI" 2
fi
py=$venv/bin/python
ctix=$target/release/ctix
[[ -x $ctix ]] || cargo build --release --locked --quiet --bin ctix
client=benches/taxii_client.py

work=$(mktemp -d)
pid=
stop_server() {
    if [[ -n $pid ]]; then
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        pid=
    fi
}
trap 'stop_server; rm -rf -- "$work"' EXIT

# Waits until a TCP port on loopback accepts connections.
wait_port() {
    for _ in $(seq 1 200); do
        if "$py" -c "import socket,sys; socket.create_connection(('127.0.0.1', $1), 0.2)" 2>/dev/null; then return 0; fi
        kill -0 "$pid" 2>/dev/null || { cat "$work/server.log" >&2; die "the server exited at start-up (log above)"; }
        sleep 0.1
    done
    cat "$work/server.log" >&2
    die "nothing listens on port $1 (log above)"
}

medallion_run() {
    local base="http://127.0.0.1:$mport"
    cat >"$work/medallion.json" <<JSON
{
  "backend": {"module": "medallion.backends.memory_backend", "module_class": "MemoryBackend",
              "filename": "$work/medallion-data.json"},
  "users": {"bench": "bench-password"},
  "taxii": {"max_page_size": 1000}
}
JSON
    cat >"$work/medallion-data.json" <<JSON
{
  "/discovery": {"title": "bench", "default": "$base/bench/", "api_roots": ["$base/bench/"]},
  "bench": {
    "information": {"title": "bench", "versions": ["application/taxii+json;version=2.1"],
                    "max_content_length": 104857600},
    "status": [],
    "collections": [{"id": "2c9e4ba6-0e4c-4a6a-9c1b-7d0c56f0c001", "title": "bench",
                     "can_read": true, "can_write": true,
                     "media_types": ["application/stix+json;version=2.1"],
                     "objects": [], "manifest": []}]
  }
}
JSON
    "$venv/bin/medallion" --host 127.0.0.1 --port "$mport" --log-level ERROR "$work/medallion.json" >"$work/server.log" 2>&1 &
    pid=$!
    wait_port "$mport"
    local coll="$base/bench/collections/2c9e4ba6-0e4c-4a6a-9c1b-7d0c56f0c001/"
    "$py" "$client" "$coll" "$coll" bench bench-password "$n"
    stop_server
}

ctix_run() {
    rm -rf -- "$work/fed"
    "$ctix" dev-federation --dir "$work/fed" --nodes ee --base-port "$cport" >/dev/null
    "$ctix" run --config "$work/fed/ee/ctix.toml" >"$work/server.log" 2>&1 &
    pid=$!
    wait_port $((cport + 100))
    local creds=$work/fed/ee/credentials.json
    read -r url user password < <("$py" -c 'import json,sys; c=json.load(open(sys.argv[1])); print(c["taxii_url"], c["taxii_user"], c["taxii_password"])' "$creds")
    # taxii2-client wants a collection's URL by its id, not by its alias: ask the API root.
    read -r inbox all < <("$py" -c '
import sys
from taxii2client.v21 import ApiRoot
root = ApiRoot(sys.argv[1] + "api/", user=sys.argv[2], password=sys.argv[3])
by_alias = {c.alias: c.url for c in root.collections}
print(by_alias["inbox"], by_alias["all"])' "$url" "$user" "$password")
    "$py" "$client" "$inbox" "$all" "$user" "$password" "$n"
    stop_server
}

: >"$work/ctix.jsonl"
: >"$work/medallion.jsonl"
for r in $(seq 1 "$runs"); do
    echo "medallion.sh: run $r/$runs, $n objects: ctix" >&2
    ctix_run >>"$work/ctix.jsonl"
    echo "medallion.sh: run $r/$runs, $n objects: medallion" >&2
    medallion_run >>"$work/medallion.jsonl"
done
mkdir -p "$(dirname "$out")"
"$py" - "$work/ctix.jsonl" "$work/medallion.jsonl" "$n" "$out" <<'PY'
import json, statistics, sys
def load(p):
    rows = [json.loads(l) for l in open(p) if l.strip()]
    return {k: statistics.median(r[k] for r in rows) for k in ("add", "read")}
c, m = load(sys.argv[1]), load(sys.argv[2])
res = {"client": "taxii2-client 2.3.0", "objects": int(sys.argv[3]), "ctix": c, "medallion": m}
json.dump(res, open(sys.argv[4], "w"))
print(f"TAXII, taxii2-client, {sys.argv[3]} objects, envelopes and pages of 1,000 (objects/s, medians)")
print(f"{'':6} {'ctix':>10} {'medallion':>10} {'ratio':>8}")
for k in ("add", "read"):
    print(f"{k:6} {c[k]:>10.0f} {m[k]:>10.0f} {c[k] / m[k]:>7.1f}x")
PY
