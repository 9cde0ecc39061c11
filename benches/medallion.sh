#!/usr/bin/env bash
# TAXII side by side: the same Python client (benches/taxii_client.py, taxii2-client) adds N
# indicators in envelopes of 1,000 to, then pages them back with limit=1000 from, a ctix node and
# medallion (OASIS's reference TAXII 2.1 server, memory backend), both on loopback, each fresh for
# every run.
#
#   benches/medallion.sh [N]        (N = 10000 by default, the issue's size; scripts/bench.sh runs it)
#
# medallion's memory backend serves the first page of a read only after work quadratic in the
# collection size (every object compared with every other): at 10,000 objects its read took
# about 7 minutes here (25 objects/s). Each read stops after CTIX_BENCH_READ_BUDGET_S seconds
# (default 900, per server and run, so the default run measures medallion's whole read; lower it
# for a quick look) and the figure is objects/s over what was read. When a budget cuts a
# read, the output says so ("medallion: read 0 of 10,000 in 60 s budget"); when not even the first
# page arrived, the figure is an upper bound, N / budget (the whole read takes longer than the
# budget), printed as "< X", and the ratio as a lower bound "> Y×". ctix must read all N (the run
# fails otherwise), and every add must report all its objects added. It also prints how much of
# the add's wall time the Python client itself spent on a CPU (to tell client from server cost).
#
# Prints both servers' medians (ctix: CTIX_BENCH_RUNS runs, default 3; medallion:
# CTIX_BENCH_MEDALLION_RUNS, default 1, since one 10,000-object run takes minutes) and their
# ratio, and writes them as JSON to CTIX_BENCH_OUT (default $target/bench/medallion.json), which
# the system bench reads (CTIX_BENCH_MEDALLION). Installs medallion and taxii2-client from PyPI
# into target/bench-venv; uses the release ctix binary in ${CARGO_TARGET_DIR:-target}, building it
# if it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "medallion.sh: $1" >&2; exit "${2:-1}"; }

n=${1:-10000}
runs=${CTIX_BENCH_RUNS:-3}
mruns=${CTIX_BENCH_MEDALLION_RUNS:-1}
budget=${CTIX_BENCH_READ_BUDGET_S:-900}
[[ $n =~ ^[1-9][0-9]*$ ]] || die "N must be a positive number of objects, not \"$n\"" 2
for v in CTIX_BENCH_RUNS:runs CTIX_BENCH_MEDALLION_RUNS:mruns CTIX_BENCH_READ_BUDGET_S:budget; do
    name=${v#*:}
    val=${!name}
    [[ $val =~ ^[1-9][0-9]*$ ]] || die "${v%%:*} must be a positive whole number, not \"$val\"" 2
done
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
    "$py" "$client" "$coll" "$coll" bench bench-password "$n" 1000 1000 "$budget"
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
    "$py" "$client" "$inbox" "$all" "$user" "$password" "$n" 1000 1000 "$budget"
    stop_server
}

: >"$work/ctix.jsonl"
: >"$work/medallion.jsonl"
for r in $(seq 1 "$(( runs > mruns ? runs : mruns ))"); do
    if (( r <= runs )); then
        echo "medallion.sh: run $r/$runs, $n objects: ctix" >&2
        ctix_run >>"$work/ctix.jsonl"
    fi
    if (( r <= mruns )); then
        echo "medallion.sh: run $r/$mruns, $n objects: medallion (read budget ${budget} s)" >&2
        medallion_run >>"$work/medallion.jsonl"
    fi
done
mkdir -p "$(dirname "$out")"
"$py" - "$work/ctix.jsonl" "$work/medallion.jsonl" "$n" "$budget" "$out" <<'PY'
import json, statistics, sys
n, budget = int(sys.argv[3]), float(sys.argv[4])

def load(path, who):
    rows = [json.loads(line) for line in open(path) if line.strip()]
    for r in rows:
        if r["budget_hit"]:
            print(f"{who}: read {r['read_objects']:,} of {n:,} in {budget:g} s budget")
    # A run that read nothing within its budget bounds the rate: the whole read took longer
    # than the budget, so its rate over the N objects was below N / budget.
    bound = any(r["read_objects"] == 0 for r in rows)
    reads = [n / budget if r["read_objects"] == 0 else r["read"] for r in rows]
    return {
        "add": statistics.median(r["add"] for r in rows),
        # How much of the add's wall time the Python client itself was on a CPU.
        "add_client_cpu_share": statistics.median(r["add_client_cpu_s"] / r["add_s"] for r in rows),
        "read": statistics.median(reads),
        "read_objects": int(statistics.median(r["read_objects"] for r in rows)),
        "read_upper_bound": bound,
        "budget_hit": any(r["budget_hit"] for r in rows),
        "runs": len(rows),
    }

c, m = load(sys.argv[1], "ctix"), load(sys.argv[2], "medallion")
if c["budget_hit"] or c["read_objects"] < n:
    sys.exit(f"medallion.sh: ctix read {c['read_objects']:,} of {n:,} objects within the {budget:g} s budget: "
             "it must read them all (raise CTIX_BENCH_READ_BUDGET_S on a very busy machine)")
res = {"client": "taxii2-client 2.3.0", "objects": n, "read_budget_s": budget, "ctix": c, "medallion": m}
json.dump(res, open(sys.argv[5], "w"))
print(f"TAXII, taxii2-client, {n:,} objects, envelopes and pages of 1,000 (objects/s; medians of "
      f"{c['runs']} ctix and {m['runs']} medallion runs; read budget {budget:g} s)")
print(f"{'':6} {'ctix':>10} {'medallion':>10} {'ratio':>9}")
for k in ("add", "read"):
    bound = k == "read" and m["read_upper_bound"]
    mv = f"< {m[k]:.0f}" if bound else f"{m[k]:.0f}"
    ratio = f"{'> ' if bound else ''}{c[k] / m[k]:.1f}x"
    print(f"{k:6} {c[k]:>10.0f} {mv:>10} {ratio:>9}")
print(f"add    client CPU / wall time: ctix {c['add_client_cpu_share']:.0%}, medallion {m['add_client_cpu_share']:.0%}")
print(f"read   objects read: ctix {c['read_objects']:,}, medallion {m['read_objects']:,} of {n:,}")
PY
