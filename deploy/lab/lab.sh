#!/usr/bin/env bash
# ctix network lab: a three-node federation (EE, LV, LT), each node in its own network namespace,
# joined by one point-to-point veth pair per node pair, with per-link delay, jitter, loss,
# duplication and cuts. See deploy/lab/README.md for the picture, the defaults and the campaign.
#
#   lab.sh up [--owner PID]            namespaces, links, a dev federation, and the three nodes
#   lab.sh up --no-nodes               namespaces, links and the federation only: something else
#                                      runs the nodes (deploy/lab/systemd-lab.sh: systemd containers)
#   lab.sh down [--keep]               remove everything `up` made (idempotent); --keep keeps DIR
#   lab.sh status                      nodes (running/paused/stopped, peers) and links
#   lab.sh cut A B | restore A B       drop all A<->B traffic | that link back to its defaults
#   lab.sh degrade A B [--delay MS] [--jitter MS] [--loss PCT] [--duplicate PCT]
#   lab.sh heal                        every link back to its defaults
#   lab.sh isolate N                   cut every link of N
#   lab.sh kill N | start N            kill -9 N's ctix | start it again
#   lab.sh pause N | resume N          SIGSTOP | SIGCONT
#   lab.sh exec N CMD...               run CMD inside N's namespace
#   lab.sh ctix N ARGS...              run `ctix ARGS --config <N's config>` inside N's namespace
#                                      (the lab's copy of ctix, DIR/bin/ctix)
#   lab.sh check                       can the lab run here? exit 0 yes, 77 no (why is printed)
#
# Every command takes --dir DIR (default $CTIX_LAB_DIR, else /tmp/<prefix>-lab); use the same
# DIR for every command of one lab. Environment: CTIX_LAB_PREFIX (namespace prefix, default
# `ctix`: namespaces ctix-ee, ctix-lv, ctix-lt), CTIX_LAB_NET (first three octets of the node
# addresses, default 10.77.0), CTIX_BIN (the ctix binary), RUST_LOG (the nodes' log level).
#
# Nothing here touches the root namespace's interfaces, addresses, routes or firewall: every
# link, address, qdisc and nftables table lives inside the lab's own namespaces.
set -euo pipefail

SELF=$(readlink -f "$0")
REPO=$(cd "$(dirname "$SELF")/../.." && pwd)
PREFIX=${CTIX_LAB_PREFIX:-ctix}
NET=${CTIX_LAB_NET:-10.77.0}
NODES=(ee lv lt)
# dev-federation gives node i QUIC port 7401+i and API port 7501+i (the API stays on the
# namespace's own loopback).
BASE_PORT=7401
# Seconds `up` waits for every node to report ready, and `down` for a node to stop on SIGTERM.
READY_WAIT_S=60
STOP_WAIT_S=5
# nftables table (one per namespace) that holds the loss, duplication and cut rules.
NFT_TABLE=ctixlab

die() { echo "lab.sh: error: $*" >&2; exit 1; }
note() { echo "lab.sh: $*"; }

usage() {
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$SELF" >&2
  exit 2
}

# ---- names, addresses and link defaults ---------------------------------------------------

ns() { echo "$PREFIX-$1"; }
node_index() {
  local i
  for i in "${!NODES[@]}"; do [ "${NODES[$i]}" = "$1" ] && { echo "$i"; return; }; done
  die "unknown node '$1': use one of ${NODES[*]}"
}
addr() { echo "$NET.$(( $(node_index "$1") + 1 ))"; }
quic_port() { echo $(( BASE_PORT + $(node_index "$1") )); }
# A link's name: its two nodes in sorted order, e.g. ee-lv.
pair() { if [[ "$1" < "$2" ]]; then echo "$1-$2"; else echo "$2-$1"; fi; }
pairs() {
  local i j
  for i in "${!NODES[@]}"; do
    for ((j = i + 1; j < ${#NODES[@]}; j++)); do echo "${NODES[$i]} ${NODES[$j]}"; done
  done
}
# One-way delay in ms: about 2x the capitals' great-circle distance in fibre (200 km/ms) plus
# ~1 ms of equipment; see README.md.
default_delay() {
  case "$(pair "$1" "$2")" in
    ee-lv) echo 4 ;;  # Tallinn-Riga, 279 km
    lt-lv) echo 4 ;;  # Riga-Vilnius, 262 km
    ee-lt) echo 6 ;;  # Tallinn-Vilnius, 529 km
    *) echo 5 ;;
  esac
}
DEFAULT_JITTER_MS=1

check_node() { node_index "$1" >/dev/null; }
check_pair() {
  check_node "$1"; check_node "$2"
  [ "$1" != "$2" ] || die "a link needs two different nodes, got '$1' twice"
}
is_number() { [[ "$1" =~ ^[0-9]+([.][0-9]+)?$ ]]; }

# ---- prerequisites -------------------------------------------------------------------------

need_root() {
  [ "$(id -u)" = 0 ] || die "the lab needs root (network namespaces, tc, nftables): run it with sudo"
}

# Installs iproute2 (ip, tc) and nftables (nft) from the distribution when missing.
need_tools() {
  local missing=()
  command -v ip >/dev/null && command -v tc >/dev/null || missing+=(iproute2)
  command -v nft >/dev/null || missing+=(nftables)
  [ ${#missing[@]} -eq 0 ] && return
  command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get: install them with your package manager"
  note "installing ${missing[*]} with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q "${missing[@]}" >/dev/null ||
    { apt-get update -q >/dev/null && apt-get install -y -q "${missing[@]}" >/dev/null; } ||
    die "could not install ${missing[*]}: install them by hand"
}

find_ctix() {
  if [ -n "${CTIX_BIN:-}" ]; then
    [ -x "$CTIX_BIN" ] || die "CTIX_BIN=$CTIX_BIN is not an executable"
    echo "$CTIX_BIN"; return
  fi
  local c
  for c in "${CARGO_TARGET_DIR:-$REPO/target}/release/ctix" "$REPO/target/release/ctix" "$(command -v ctix || true)"; do
    [ -n "$c" ] && [ -x "$c" ] && { readlink -f "$c"; return; }
  done
  die "no ctix binary: run 'cargo build --release' or set CTIX_BIN"
}

# ---- state in DIR ----------------------------------------------------------------------------
#
# DIR/.ctix-lab            marker: DIR belongs to a lab (down only deletes such a DIR)
# DIR/bin/ctix             the ctix binary every node and `lab.sh ctix` runs (copied at `up`)
# DIR/fed/                 the federation (ctix dev-federation, addresses rewritten)
# DIR/logs/N.log           node N's log, appended across restarts
# DIR/run/N.pid            node N's pid; DIR/run/watcher.pid for `up --owner`
# DIR/links/A-B            the link's settings: "STATE DELAY_MS JITTER_MS LOSS_PCT DUP_PCT"
# DIR/netem                "yes" when the kernel has sch_netem, "no" otherwise

link_file() { echo "$DIR/links/$(pair "$1" "$2")"; }
netem_ok() { [ "$(cat "$DIR/netem" 2>/dev/null)" = yes ]; }
have_lab() { [ -f "$DIR/.ctix-lab" ] && ip netns list | grep -qx "$(ns "${NODES[0]}")\( .*\)\?"; }
need_lab() { have_lab || die "no lab in $DIR with prefix '$PREFIX': run 'lab.sh up' (or pass the --dir it used)"; }

# ---- links -------------------------------------------------------------------------------------

# Percent (0-100, decimals allowed) in units of 1/10000, for nftables' `numgen random mod 10000`.
per10k() { awk -v p="$1" 'BEGIN { v = int(p * 100 + 0.5); if (v > 10000) v = 10000; print v }'; }

# Applies DIR/links/A-B to the kernel, both directions. Delay and jitter: netem on the sender's
# veth (when the kernel has it). Loss and cuts: nftables drops on the receiver's side, so a
# sender's send() succeeds and packets vanish as on a real link. Duplication: nftables `dup` on
# the sender's side.
apply_link() {
  local a=$1 b=$2 state delay jitter loss dup
  read -r state delay jitter loss dup <"$(link_file "$a" "$b")"
  local from to
  for from in "$a" "$b"; do
    to=$([ "$from" = "$a" ] && echo "$b" || echo "$a")
    if netem_ok; then
      local j=()
      [ "$jitter" != 0 ] && j=("${jitter}ms")
      tc -n "$(ns "$from")" qdisc replace dev "to-$to" root netem delay "${delay}ms" ${j[@]+"${j[@]}"}
    fi
    local drop=""
    if [ "$state" = cut ]; then
      drop="add rule ip $NFT_TABLE from_$from drop"
    elif [ "$(per10k "$loss")" -gt 0 ]; then
      drop="add rule ip $NFT_TABLE from_$from numgen random mod 10000 < $(per10k "$loss") drop"
    fi
    printf 'flush chain ip %s from_%s\n%s\n' "$NFT_TABLE" "$from" "$drop" | ip netns exec "$(ns "$to")" nft -f -
    local copy=""
    if [ "$state" != cut ] && [ "$(per10k "$dup")" -gt 0 ]; then
      copy="add rule ip $NFT_TABLE to_$to numgen random mod 10000 < $(per10k "$dup") dup to $(addr "$to") device \"to-$to\""
    fi
    printf 'flush chain ip %s to_%s\n%s\n' "$NFT_TABLE" "$to" "$copy" | ip netns exec "$(ns "$from")" nft -f -
  done
}

set_link() {  # A B STATE DELAY JITTER LOSS DUP
  echo "$3 $4 $5 $6 $7" >"$(link_file "$1" "$2")"
  apply_link "$1" "$2"
}
default_link() { set_link "$1" "$2" up "$(default_delay "$1" "$2")" "$DEFAULT_JITTER_MS" 0 0; }

link_text() {
  local state delay jitter loss dup
  read -r state delay jitter loss dup <"$(link_file "$1" "$2")"
  local text="delay ${delay}ms jitter ${jitter}ms loss ${loss}% duplicate ${dup}%"
  netem_ok || text="$text (delay and jitter not applied: no sch_netem in this kernel)"
  if [ "$state" = cut ]; then echo "CUT (all traffic dropped)"; else echo "$text"; fi
}

# ---- nodes -----------------------------------------------------------------------------------

pid_of() { cat "$DIR/run/$1.pid" 2>/dev/null || true; }
# running | paused | stopped. A pid counts only while it is a live ctix process.
node_state() {
  local pid st
  pid=$(pid_of "$1")
  [ -n "$pid" ] && [ -r "/proc/$pid/stat" ] || { echo stopped; return; }
  grep -q ctix "/proc/$pid/cmdline" 2>/dev/null || { echo stopped; return; }
  st=$(sed 's/^.*) //' "/proc/$pid/stat" | cut -d' ' -f1)
  case "$st" in
    Z | X) echo stopped ;;
    T | t) echo paused ;;
    *) echo running ;;
  esac
}

start_node() {
  local n=$1
  [ "$(node_state "$n")" = stopped ] || { note "$n is already $(node_state "$n") (pid $(pid_of "$n"))"; return; }
  # No pipes are inherited (a caller reading our output must not wait for the node).
  ip netns exec "$(ns "$n")" env RUST_LOG="${RUST_LOG:-info}" \
    "$DIR/bin/ctix" run --config "$DIR/fed/$n/ctix.toml" </dev/null >>"$DIR/logs/$n.log" 2>&1 &
  echo $! >"$DIR/run/$n.pid"
  echo "--- lab.sh: started pid $! at $(date -u +%FT%T.%3NZ)" >>"$DIR/logs/$n.log"
  note "$n started (pid $!, log $DIR/logs/$n.log)"
}

wait_gone() {  # PID SECONDS: true once PID is gone (or a zombie)
  local pid=$1 i
  for ((i = 0; i < $2 * 10; i++)); do
    [ -r "/proc/$pid/stat" ] || return 0
    case "$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1)" in Z | X | "") return 0 ;; esac
    sleep 0.1
  done
  return 1
}

kill_node() {
  local n=$1 pid
  [ "$(node_state "$n")" != stopped ] || { note "$n is not running"; return; }
  pid=$(pid_of "$n")
  kill -KILL "$pid"
  wait_gone "$pid" 5 || die "$n (pid $pid) did not die on SIGKILL"
  echo "--- lab.sh: kill -9 pid $pid at $(date -u +%FT%T.%3NZ)" >>"$DIR/logs/$n.log"
  note "$n killed (kill -9 $pid)"
}

signal_node() {  # N SIGNAL WORD
  local n=$1 st
  st=$(node_state "$n")
  [ "$st" != stopped ] || die "$n is not running: 'lab.sh start $n' first"
  kill "-$2" "$(pid_of "$n")"
  echo "--- lab.sh: SIG$2 at $(date -u +%FT%T.%3NZ)" >>"$DIR/logs/$n.log"
  note "$n $3"
}

# `ctix status` of node N through its own namespace, or nothing when it does not answer soon.
node_status_json() {
  timeout 3 ip netns exec "$(ns "$1")" "$DIR/bin/ctix" status --json --config "$DIR/fed/$1/ctix.toml" 2>/dev/null || true
}

wait_ready() {
  local n deadline=$((SECONDS + READY_WAIT_S))
  for n in "${NODES[@]}"; do
    until node_status_json "$n" | grep -q '"ready": *true'; do
      [ "$(node_state "$n")" = running ] || die "$n exited during start-up: see $DIR/logs/$n.log"
      [ $SECONDS -lt $deadline ] || die "$n not ready after ${READY_WAIT_S} s: see $DIR/logs/$n.log"
      sleep 0.2
    done
  done
}

# ---- up / down --------------------------------------------------------------------------------

probe_netem() {  # NS DEV: true when a netem qdisc can be attached
  tc -n "$1" qdisc add dev "$2" root netem delay 1ms 2>/dev/null && tc -n "$1" qdisc del dev "$2" root
}

make_namespaces() {
  local n p
  for n in "${NODES[@]}"; do
    ip netns add "$(ns "$n")"
    ip -n "$(ns "$n")" link set lo up
    # The node's address sits on its loopback, reachable from each peer over their own veth.
    ip -n "$(ns "$n")" addr add "$(addr "$n")/32" dev lo
  done
  while read -r a b; do
    ip -n "$(ns "$a")" link add "to-$b" type veth peer name "to-$a" netns "$(ns "$b")"
    for p in "$a $b" "$b $a"; do
      set -- $p
      ip -n "$(ns "$1")" link set "to-$2" up
      ip -n "$(ns "$1")" route add "$(addr "$2")/32" dev "to-$2" src "$(addr "$1")"
    done
  done < <(pairs)
  for n in "${NODES[@]}"; do
    local chains="" hooks_in="" hooks_out=""
    for p in "${NODES[@]}"; do
      [ "$p" = "$n" ] && continue
      chains+="  chain from_$p { }"$'\n'"  chain to_$p { }"$'\n'
      hooks_in+="    iifname \"to-$p\" jump from_$p"$'\n'
      hooks_out+="    oifname \"to-$p\" jump to_$p"$'\n'
    done
    ip netns exec "$(ns "$n")" nft -f - <<EOF
table ip $NFT_TABLE {
$chains  chain ingress {
    type filter hook prerouting priority -300; policy accept;
$hooks_in  }
  chain egress {
    type filter hook postrouting priority 0; policy accept;
$hooks_out  }
}
EOF
  done
  if probe_netem "$(ns "${NODES[0]}")" "to-${NODES[1]}"; then
    echo yes >"$DIR/netem"
  else
    echo no >"$DIR/netem"
    note "warning: this kernel has no sch_netem (CONFIG_NET_SCH_NETEM): links get no delay or jitter;"
    note "         loss, duplication and cuts still work (nftables)"
  fi
  while read -r a b; do default_link "$a" "$b"; done < <(pairs)
}

make_federation() {
  local n
  "$DIR/bin/ctix" dev-federation --dir "$DIR/fed" --nodes "$(IFS=,; echo "${NODES[*]}")" --base-port "$BASE_PORT" >/dev/null
  # QUIC moves from 127.0.0.1 to the node's lab address, in the roster and the node's listen
  # address; the API stays on the namespace's loopback (reach it with `lab.sh ctix N ...`).
  for n in "${NODES[@]}"; do
    sed -i "s/\"127\.0\.0\.1:$(quic_port "$n")\"/\"$(addr "$n"):$(quic_port "$n")\"/" \
      "$DIR/fed/roster.toml" "$DIR/fed/$n/ctix.toml"
    grep -q "\"$(addr "$n"):$(quic_port "$n")\"" "$DIR/fed/$n/ctix.toml" ||
      die "could not rewrite $n's QUIC address in $DIR/fed/$n/ctix.toml"
  done
}

start_watcher() {  # OWNER_PID: run `down --keep` once it exits (a test killed before its cleanup)
  local owner=$1
  [[ "$owner" =~ ^[0-9]+$ ]] && kill -0 "$owner" 2>/dev/null || die "--owner $owner is not a live pid"
  CTIX_LAB_WATCHER=1 setsid bash -c '
    echo $$ >"$3/run/watcher.pid"
    while kill -0 "$1" 2>/dev/null; do sleep 1; done
    exec "$2" down --dir "$3" --keep' _ "$owner" "$SELF" "$DIR" </dev/null >>"$DIR/logs/watcher.log" 2>&1 &
}

cmd_up() {
  local owner="" nodes=yes
  while [ $# -gt 0 ]; do
    case "$1" in
      --owner) owner=${2:?--owner needs a pid}; shift 2 ;;
      --no-nodes) nodes=""; shift ;;
      *) die "up: unknown argument '$1'" ;;
    esac
  done
  need_root; need_tools
  find_ctix >/dev/null
  local n
  for n in "${NODES[@]}"; do
    ! ip netns list | grep -qx "$(ns "$n")\( .*\)\?" || die "namespace $(ns "$n") exists: run 'lab.sh down' first (or set CTIX_LAB_PREFIX)"
  done
  if [ -e "$DIR" ] && [ -n "$(ls -A "$DIR")" ]; then
    die "$DIR is not empty: remove it, or choose another --dir"
  fi
  mkdir -p "$DIR"/{bin,logs,run,links}
  DIR=$(cd "$DIR" && pwd)
  echo "$PREFIX" >"$DIR/.ctix-lab"
  # The lab runs one binary for its whole life, even if the build replaces the original.
  cp "$(find_ctix)" "$DIR/bin/ctix"
  # From here on, a failure removes whatever was made (logs are kept for the post-mortem).
  trap 'rc=$?; [ $rc -eq 0 ] || { echo "lab.sh: up failed; removing the half-built lab" >&2; down_all keep; }; exit $rc' EXIT
  make_namespaces
  make_federation
  if [ -z "$nodes" ]; then
    [ -z "$owner" ] || start_watcher "$owner"
    trap - EXIT
    note "lab network up in $DIR (no nodes started): ${NODES[*]}"
    for n in "${NODES[@]}"; do note "  $n: namespace $(ns "$n"), QUIC $(addr "$n"):$(quic_port "$n"), federation files $DIR/fed/$n"; done
    return
  fi
  for n in "${NODES[@]}"; do start_node "$n"; done
  [ -z "$owner" ] || start_watcher "$owner"
  wait_ready
  trap - EXIT
  note "lab up in $DIR: ${NODES[*]} ready"
  for n in "${NODES[@]}"; do note "  $n: namespace $(ns "$n"), QUIC $(addr "$n"):$(quic_port "$n"), config $DIR/fed/$n/ctix.toml"; done
}

down_all() {  # [keep]
  local n pid pids
  if [ -z "${CTIX_LAB_WATCHER:-}" ] && pid=$(cat "$DIR/run/watcher.pid" 2>/dev/null) && [ -n "$pid" ]; then
    kill "$pid" 2>/dev/null || true
  fi
  for n in "${NODES[@]}"; do
    ip netns list | grep -qx "$(ns "$n")\( .*\)\?" || continue
    # Every process in the namespace was started by the lab (nodes, clients run through it).
    pids=$(ip netns pids "$(ns "$n")" || true)
    for pid in $pids; do kill -CONT "$pid" 2>/dev/null || true; kill -TERM "$pid" 2>/dev/null || true; done
    for pid in $pids; do wait_gone "$pid" "$STOP_WAIT_S" || kill -KILL "$pid" 2>/dev/null || true; done
    for pid in $pids; do wait_gone "$pid" 5 || true; done
  done
  for n in "${NODES[@]}"; do
    if ip netns list | grep -qx "$(ns "$n")\( .*\)\?"; then
      ip netns del "$(ns "$n")"  # takes its veths (and their peers) along
    fi
  done
  if [ "${1:-}" != keep ] && [ -f "$DIR/.ctix-lab" ]; then
    rm -rf "$DIR"
  fi
}

cmd_down() {
  local keep=""
  while [ $# -gt 0 ]; do
    case "$1" in
      --keep) keep=keep; shift ;;
      *) die "down: unknown argument '$1'" ;;
    esac
  done
  need_root
  command -v ip >/dev/null || return 0  # no iproute2: nothing of ours can exist
  down_all $keep
  if [ -n "$keep" ] && [ -d "$DIR" ]; then note "lab down; logs and stores kept in $DIR"; else note "lab down"; fi
}

cmd_status() {
  need_lab
  local n state st peers
  echo "lab $PREFIX in $DIR (netem: $(cat "$DIR/netem"))"
  for n in "${NODES[@]}"; do
    state=$(node_state "$n")
    if [ "$state" = running ]; then
      st=$(node_status_json "$n")
      peers=$(echo "$st" | grep -o '"connected": *true' | wc -l)
      if [ -n "$st" ]; then
        state="running (pid $(pid_of "$n"), $( echo "$st" | grep -q '"ready": *true' && echo ready || echo "not ready"), $peers of $((${#NODES[@]} - 1)) peers connected)"
      else
        state="running (pid $(pid_of "$n"), API not answering)"
      fi
    elif [ "$state" = paused ]; then
      state="paused (pid $(pid_of "$n"))"
    fi
    printf '  node %-3s %-15s %s\n' "$n" "$(addr "$n")" "$state"
  done
  while read -r a b; do printf '  link %-6s %s\n' "$(pair "$a" "$b")" "$(link_text "$a" "$b")"; done < <(pairs)
}

cmd_degrade() {
  local a=${1:-} b=${2:-}
  [ -n "$b" ] || die "usage: lab.sh degrade A B [--delay MS] [--jitter MS] [--loss PCT] [--duplicate PCT]"
  check_pair "$a" "$b"
  shift 2
  local delay jitter=$DEFAULT_JITTER_MS loss=0 dup=0
  delay=$(default_delay "$a" "$b")
  while [ $# -gt 0 ]; do
    local v=${2:-}
    is_number "$v" || die "$1 needs a number, got '$v'"
    case "$1" in
      --delay) delay=$v ;;
      --jitter) jitter=$v ;;
      --loss) loss=$v ;;
      --duplicate) dup=$v ;;
      *) die "degrade: unknown option '$1'" ;;
    esac
    shift 2
  done
  awk -v l="$loss" -v d="$dup" 'BEGIN { exit !(l <= 100 && d <= 100) }' || die "--loss and --duplicate are percentages: 0 to 100"
  set_link "$a" "$b" up "$delay" "$jitter" "$loss" "$dup"
  note "link $(pair "$a" "$b"): $(link_text "$a" "$b")"
}

# ---- main ------------------------------------------------------------------------------------

CMD=${1:-}
[ -n "$CMD" ] || usage
shift
ARGS=()
DIR=${CTIX_LAB_DIR:-/tmp/$PREFIX-lab}
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) DIR=${2:?--dir needs a directory}; shift 2 ;;
    --dir=*) DIR=${1#--dir=}; shift ;;
    --) ARGS+=("$@"); break ;;
    *) ARGS+=("$1"); shift ;;
  esac
done
set -- ${ARGS[@]+"${ARGS[@]}"}

case "$CMD" in
  up) cmd_up "$@" ;;
  down) cmd_down "$@" ;;
  status) need_root; cmd_status ;;
  cut | restore)
    need_root; need_lab
    [ $# -eq 2 ] || die "usage: lab.sh $CMD A B"
    check_pair "$1" "$2"
    if [ "$CMD" = cut ]; then
      read -r _ d j l u <"$(link_file "$1" "$2")"
      set_link "$1" "$2" cut "$d" "$j" "$l" "$u"
      note "link $(pair "$1" "$2") cut"
    else
      default_link "$1" "$2"
      note "link $(pair "$1" "$2") restored: $(link_text "$1" "$2")"
    fi
    ;;
  degrade) need_root; need_lab; cmd_degrade "$@" ;;
  heal)
    need_root; need_lab
    while read -r a b; do default_link "$a" "$b"; done < <(pairs)
    note "every link back to its defaults"
    ;;
  isolate)
    need_root; need_lab
    [ $# -eq 1 ] || die "usage: lab.sh isolate N"
    check_node "$1"
    for p in "${NODES[@]}"; do
      [ "$p" = "$1" ] && continue
      read -r _ d j l u <"$(link_file "$1" "$p")"
      set_link "$1" "$p" cut "$d" "$j" "$l" "$u"
    done
    note "$1 isolated (every link of $1 cut)"
    ;;
  kill | start | pause | resume)
    need_root; need_lab
    [ $# -eq 1 ] || die "usage: lab.sh $CMD N"
    check_node "$1"
    case "$CMD" in
      kill) kill_node "$1" ;;
      start) start_node "$1" ;;
      pause) signal_node "$1" STOP paused ;;
      resume) signal_node "$1" CONT resumed ;;
    esac
    ;;
  exec)
    need_root; need_lab
    [ $# -ge 2 ] || die "usage: lab.sh exec N CMD..."
    check_node "$1"
    n=$1; shift
    exec ip netns exec "$(ns "$n")" "$@"
    ;;
  ctix)
    need_root; need_lab
    [ $# -ge 2 ] || die "usage: lab.sh ctix N ARGS... (e.g. lab.sh ctix ee status)"
    check_node "$1"
    n=$1; shift
    exec ip netns exec "$(ns "$n")" "$DIR/bin/ctix" "$@" --config "$DIR/fed/$n/ctix.toml"
    ;;
  check)
    [ "$(id -u)" = 0 ] || { echo "lab.sh: cannot run here: not root" >&2; exit 77; }
    need_tools
    probe="$PREFIX-probe-$$"
    ip netns add "$probe" 2>/dev/null || { echo "lab.sh: cannot run here: 'ip netns add' fails" >&2; exit 77; }
    trap 'ip netns del "$probe" 2>/dev/null || true' EXIT
    ip -n "$probe" link add to-a type veth peer name to-b 2>/dev/null || { echo "lab.sh: cannot run here: no veth support" >&2; exit 77; }
    printf 'table ip probe {\n chain c {\n  type filter hook prerouting priority 0;\n  numgen random mod 2 < 1 drop\n }\n}\n' |
      ip netns exec "$probe" nft -f - ||
      die "nftables does not work in a namespace here: the lab needs it for loss and cuts"
    if tc -n "$probe" qdisc add dev to-a root netem delay 1ms 2>/dev/null; then
      echo "lab.sh: ok (netem available)"
    else
      echo "lab.sh: ok (no sch_netem in this kernel: links will have no delay or jitter)"
    fi
    ;;
  help | -h | --help) usage ;;
  *) echo "lab.sh: unknown command '$CMD'" >&2; usage ;;
esac
