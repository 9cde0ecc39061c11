#!/usr/bin/env bash
# The shipped systemd unit under real systemd: a three-node federation (EE, LV, LT) in the network
# lab, each node a Debian bookworm container booted with `systemd-nspawn --boot` inside its lab
# namespace, installed as deploy/README.md ("systemd") says and run by deploy/systemd/ctix.service
# unchanged. Then it checks, from the host, that the federation works and its dashboard answers,
# prints a summary, and takes everything down again. See deploy/README.md ("systemd units in the
# network lab").
#
#   systemd-lab.sh [--dir DIR] [--keep] [--hold] [--screenshot PNG]
#
#   --dir DIR   the lab's directory (default $CTIX_LAB_DIR, else /tmp/<prefix>-systemd-lab); it
#               must not exist or be empty
#   --keep      keep DIR (federation, logs, the containers' journals) after the run
#   --hold      after the checks, leave the federation running until Enter (or SIGINT/SIGTERM),
#               to look at it: the commands to reach it are printed
#   --screenshot PNG
#               also sign in to ee's dashboard with headless Chromium (installed from Debian's
#               packages if missing), wait until its graph shows both peers connected and the
#               submitted indicator, and save the page as PNG
#
# Needs root and Linux. Installs with apt-get what it lacks (systemd-container, debootstrap, curl,
# and lab.sh's iproute2 and nftables). The container root file system is made once with
# debootstrap (a few minutes) and cached in $CTIX_LAB_ROOTFS (default
# $CARGO_TARGET_DIR/lab-rootfs, else target/lab-rootfs); each node boots an overlay of it, so
# later runs copy nothing. Environment: CTIX_BIN (the ctix binary: default target/release/ctix,
# else target/debug/ctix), CTIX_LAB_PREFIX and CTIX_LAB_NET (as lab.sh), CTIX_LAB_MIRROR (the
# Debian mirror, default http://deb.debian.org/debian).
#
# Exit codes: 0 every check passed, 1 a check or a step failed (DIR kept for the post-mortem),
# 2 usage. Whatever happens, the containers are stopped, the overlays unmounted and the lab's
# namespaces deleted; nothing outside DIR, the namespaces and the rootfs cache is touched.
set -euo pipefail

SELF=$(readlink -f "$0")
REPO=$(cd "$(dirname "$SELF")/../.." && pwd)
LAB=$REPO/deploy/lab/lab.sh
export CTIX_LAB_PREFIX=${CTIX_LAB_PREFIX:-ctix}
PREFIX=$CTIX_LAB_PREFIX
NODES=(ee lv lt)
# dev-federation: node i's API listens on 127.0.0.1:(7501 + i), in its namespace.
API_BASE_PORT=7501
ROOTFS=${CTIX_LAB_ROOTFS:-${CARGO_TARGET_DIR:-$REPO/target}/lab-rootfs}
MIRROR=${CTIX_LAB_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
# What the containers need besides debootstrap's minbase: systemd as init (and its D-Bus, which
# systemctl talks to), iproute2 and curl to look around inside a node.
ROOTFS_PACKAGES=systemd,systemd-sysv,dbus,iproute2,curl,ca-certificates
# Seconds to wait for: a container's systemd to finish booting; every node to be ready with both
# peers connected; an indicator to reach the other nodes; a container to power off on SIGTERM.
BOOT_WAIT_S=90
READY_WAIT_S=90
REPLICATE_WAIT_S=30
POWEROFF_WAIT_S=40
# The highest `systemd-analyze security` exposure accepted for the running unit (deploy/README.md
# quotes 1.2, "OK"; 2.0 leaves room for systemd versions that weigh settings differently).
MAX_EXPOSURE=2.0

die() { echo "systemd-lab: error: $*" >&2; exit 1; }
note() { echo "systemd-lab: $*"; }
usage() {
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$SELF" >&2
  exit 2
}

DIR=${CTIX_LAB_DIR:-/tmp/$PREFIX-systemd-lab}
KEEP="" HOLD="" SHOT=""
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) DIR=${2:?--dir needs a directory}; shift 2 ;;
    --keep) KEEP=yes; shift ;;
    --hold) HOLD=yes; shift ;;
    --screenshot) SHOT=${2:?--screenshot needs a file name}; shift 2 ;;
    -h | --help) usage ;;
    *) echo "systemd-lab: unknown argument '$1'" >&2; usage ;;
  esac
done

[ "$(id -u)" = 0 ] || die "needs root (namespaces, mounts, containers): run it with sudo"
START=$SECONDS
declare -A TIMES=()
phase_end() { TIMES[$1]=$((SECONDS - ${2})); }

# ---- prerequisites ---------------------------------------------------------------------------

need_packages() {
  local missing=()
  command -v systemd-nspawn >/dev/null || missing+=(systemd-container)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  command -v curl >/dev/null || missing+=(curl)
  command -v nsenter >/dev/null || missing+=(util-linux)
  if [ -n "$SHOT" ]; then
    command -v chromium >/dev/null || missing+=(chromium)
    command -v python3 >/dev/null || missing+=(python3)
  fi
  [ ${#missing[@]} -eq 0 ] && return
  command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get: install them with your package manager"
  note "installing ${missing[*]} with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null ||
    { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null; } ||
    die "could not install ${missing[*]}: install them by hand"
}

find_ctix() {
  if [ -n "${CTIX_BIN:-}" ]; then
    [ -x "$CTIX_BIN" ] || die "CTIX_BIN=$CTIX_BIN is not an executable"
    readlink -f "$CTIX_BIN"; return
  fi
  local t=${CARGO_TARGET_DIR:-$REPO/target} c
  for c in "$t/release/ctix" "$t/debug/ctix"; do
    [ -x "$c" ] && { readlink -f "$c"; return; }
  done
  die "no ctix binary in $t/release or $t/debug: run 'cargo build --release' or set CTIX_BIN"
}

# The container root file system, made once. A stamp records the suite and packages, so changing
# them here rebuilds it; an interrupted debootstrap leaves only ROOTFS.tmp, never a half ROOTFS.
ensure_rootfs() {
  local stamp="$SUITE $ROOTFS_PACKAGES"
  if [ -f "$ROOTFS/.ctix-lab-rootfs" ] && [ "$(cat "$ROOTFS/.ctix-lab-rootfs")" = "$stamp" ]; then
    note "container rootfs: $ROOTFS (cached)"
    return
  fi
  note "building the container rootfs with debootstrap ($SUITE, minbase + $ROOTFS_PACKAGES) into $ROOTFS: a few minutes, once"
  rm -rf "$ROOTFS.tmp"
  mkdir -p "$(dirname "$ROOTFS")"
  debootstrap --variant=minbase --include="$ROOTFS_PACKAGES" "$SUITE" "$ROOTFS.tmp" "$MIRROR" >"$ROOTFS.log" 2>&1 ||
    die "debootstrap failed (log: $ROOTFS.log): check that $MIRROR is reachable"
  # A container boots with no console login and no host name of the host's.
  rm -f "$ROOTFS.tmp/etc/hostname"
  echo "$stamp" >"$ROOTFS.tmp/.ctix-lab-rootfs"
  rm -rf "$ROOTFS"
  mv "$ROOTFS.tmp" "$ROOTFS"
}

# ---- containers ------------------------------------------------------------------------------

ns() { echo "$PREFIX-$1"; }
root_of() { echo "$DIR/machines/$1/root"; }
node_index() { local i; for i in "${!NODES[@]}"; do [ "${NODES[$i]}" = "$1" ] && echo "$i"; done; }
api_of() { echo "http://127.0.0.1:$((API_BASE_PORT + $(node_index "$1")))"; }
cred() { sed -n "s/.*\"$2\": \"\\([0-9a-f]*\\)\".*/\\1/p" "$DIR/fed/$1/credentials.json"; }
# Runs a command in node N's namespace (where its API listens on loopback), from the host.
in_net() { local n=$1; shift; ip netns exec "$(ns "$n")" "$@"; }

# The container's init: the process named systemd in N's namespace whose parent is systemd-nspawn.
leader() {
  local p pp
  for p in $(ip netns pids "$(ns "$1")" 2>/dev/null); do
    [ "$(cat "/proc/$p/comm" 2>/dev/null)" = systemd ] || continue
    pp=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | cut -d' ' -f2)
    [ "$(cat "/proc/$pp/comm" 2>/dev/null)" = systemd-nspawn ] && { echo "$p"; return 0; }
  done
  return 1
}
# Runs a command inside node N's container (all its namespaces), from the host. machinectl and
# `systemd-run -M` need systemd-machined on the host; nsenter needs nothing.
in_ct() {
  local n=$1 l; shift
  l=$(leader "$n") || die "container $n is not running: see $DIR/logs/$n-console.log"
  nsenter -t "$l" -a "$@"
}

# Overlay of the cached rootfs (falls back to a copy where overlayfs is missing), then the install
# steps of deploy/README.md ("systemd"), run inside the container's tree with chroot.
prepare_node() {
  local n=$1 m="$DIR/machines/$1" root
  root=$(root_of "$n")
  mkdir -p "$m/upper" "$m/work" "$root"
  if ! mount -t overlay "overlay-$PREFIX-$n" -o "lowerdir=$ROOTFS,upperdir=$m/upper,workdir=$m/work" "$root" 2>/dev/null; then
    note "no overlayfs here: copying the rootfs for $n"
    cp -a "$ROOTFS/." "$root/"
  fi
  echo "$n" >"$root/etc/hostname"
  # The files an operator brings: the binary, the unit, the sysusers file, and the member's
  # config, keys, certificate, CA certificate and roster. The config's paths move to /etc/ctix
  # (keys, CA, roster) and /var/lib/ctix (the store); the API stays on the node's loopback.
  local src="$root/root/ctix-install"
  mkdir -p "$src"
  cp "$CTIX" "$src/ctix"
  cp "$REPO/deploy/systemd/ctix.service" "$REPO/deploy/systemd/ctix-sysusers.conf" "$src/"
  cp "$DIR/fed/$n/node.key" "$DIR/fed/$n/tls/$n.crt" "$DIR/fed/$n/tls/$n.key" "$DIR/fed/ca/ca.crt" "$DIR/fed/roster.toml" "$src/"
  sed -e 's#^data_dir = .*#data_dir = "/var/lib/ctix"#' -e 's#"\.\./ca/ca\.crt"#"ca.crt"#' \
    -e 's#"\.\./roster\.toml"#"roster.toml"#' "$DIR/fed/$n/ctix.toml" >"$src/ctix.toml"
  grep -q '^data_dir = "/var/lib/ctix"' "$src/ctix.toml" || die "could not rewrite $n's data_dir"
  chroot "$root" /bin/sh -eu -c "
    cd /root/ctix-install
    install -m 0755 ctix /usr/local/bin/ctix
    install -D -m 0644 ctix-sysusers.conf /etc/sysusers.d/ctix.conf
    systemd-sysusers
    install -d -m 0750 -o root -g ctix /etc/ctix /etc/ctix/tls
    install -m 0640 -o root -g ctix ctix.toml /etc/ctix/ctix.toml
    install -m 0600 -o ctix -g ctix node.key /etc/ctix/node.key
    install -m 0644 -o ctix -g ctix $n.crt /etc/ctix/tls/$n.crt
    install -m 0600 -o ctix -g ctix $n.key /etc/ctix/tls/$n.key
    install -m 0644 -o root -g root ca.crt roster.toml /etc/ctix/
    install -m 0644 ctix.service /etc/systemd/system/ctix.service
  " >"$DIR/logs/$n-install.log" 2>&1 || die "installing ctix into $n's container failed: see $DIR/logs/$n-install.log"
  rm -rf "$src"
}

# systemd-nspawn boots the container in the lab namespace. No systemd-machined on the host (systemd
# is not PID 1 here, or need not be): --register=no, and --keep-unit so that nspawn asks no
# service manager for a scope. SYSTEMD_NSPAWN_LOCK=0: each overlay is this run's alone, and a
# container killed on a power-off timeout would leave its lock file in /run/systemd/nspawn/locks.
# The container's console goes to DIR/logs/N-console.log.
boot_node() {
  local n=$1
  SYSTEMD_NSPAWN_LOCK=0 systemd-nspawn --quiet --boot --directory="$(root_of "$n")" --machine="$(ns "$n")" --hostname="$n" \
    --network-namespace-path="/run/netns/$(ns "$n")" --register=no --keep-unit --console=read-only \
    </dev/null >"$DIR/logs/$n-console.log" 2>&1 &
  echo $! >"$DIR/run/$n-nspawn.pid"
}

wait_booted() {
  local n=$1 deadline=$((SECONDS + BOOT_WAIT_S)) st=""
  while :; do
    if leader "$n" >/dev/null; then
      st=$(in_ct "$n" systemctl is-system-running 2>/dev/null || true)
      case "$st" in running | degraded) break ;; esac
    fi
    kill -0 "$(cat "$DIR/run/$n-nspawn.pid")" 2>/dev/null || die "container $n exited while booting: see $DIR/logs/$n-console.log"
    [ $SECONDS -lt $deadline ] || die "container $n not booted after ${BOOT_WAIT_S} s (state '${st:-no init}'): see $DIR/logs/$n-console.log"
    sleep 0.5
  done
  [ "$st" = running ] || note "warning: $n's systemd is '$st': $(in_ct "$n" systemctl --failed --no-legend --plain | awk '{print $1}' | tr '\n' ' ')"
}

# Stops every container: SIGTERM to systemd-nspawn powers the container off in order (ctix.service
# gets its SIGTERM and TimeoutStopSec); SIGKILL after POWEROFF_WAIT_S.
stop_containers() {
  local n pid i
  for n in "${NODES[@]}"; do
    pid=$(cat "$DIR/run/$n-nspawn.pid" 2>/dev/null) || continue
    kill -0 "$pid" 2>/dev/null || continue
    # The journal, for the post-mortem (and --keep).
    if leader "$n" >/dev/null; then
      in_ct "$n" journalctl --no-pager -o short-iso -u ctix >"$DIR/logs/$n-ctix-journal.log" 2>&1 || true
    fi
    kill -TERM "$pid" 2>/dev/null || true
  done
  for n in "${NODES[@]}"; do
    pid=$(cat "$DIR/run/$n-nspawn.pid" 2>/dev/null) || continue
    for ((i = 0; i < POWEROFF_WAIT_S * 10; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      note "warning: container $n did not power off in ${POWEROFF_WAIT_S} s: killing it (its console: $DIR/logs/$n-console.log, kept)"
      KEEP=yes
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.5
    fi
    rm -f "$DIR/run/$n-nspawn.pid"
  done
}

CLEANED=""
cleanup() {
  local rc=$? n keep mounted=""
  [ -z "$CLEANED" ] || exit $rc
  CLEANED=yes
  trap '' INT TERM
  [ -d "$DIR/run" ] && stop_containers
  keep=$KEEP
  for n in "${NODES[@]}"; do
    local root
    root=$(root_of "$n")
    if mountpoint -q "$root" 2>/dev/null; then
      umount "$root" 2>/dev/null || umount -l "$root" 2>/dev/null || true
      mountpoint -q "$root" 2>/dev/null && mounted="$mounted $root"
    fi
  done
  [ $rc -eq 0 ] || keep=yes
  # Never delete DIR while something is still mounted under it.
  [ -z "$mounted" ] || { keep=yes; note "warning: still mounted:$mounted (umount them, then delete $DIR)"; }
  if [ -f "$DIR/.ctix-lab" ]; then
    "$LAB" down --dir "$DIR" ${keep:+--keep} >/dev/null 2>&1 || note "warning: 'lab.sh down --dir $DIR' failed: run it again"
  fi
  if [ -d "$DIR" ] && [ -n "$keep" ]; then
    # The container trees are throwaway overlays; keep the federation and the logs.
    rm -rf "$DIR/machines"
    note "kept $DIR (federation in fed/, logs and the containers' ctix journals in logs/)"
  fi
  if [ $rc -ne 0 ]; then note "FAILED (exit $rc) after $((SECONDS - START)) s; lab taken down"; fi
  exit $rc
}

# ---- checks ------------------------------------------------------------------------------------

PASS=0
ok() { PASS=$((PASS + 1)); printf '  ok   %s\n' "$*"; }
fail() { printf '  FAIL %s\n' "$*"; exit 1; }

status_json() { in_net "$1" curl -sf --max-time 3 -H "Authorization: Bearer $(cred "$1" token_ro)" "$(api_of "$1")/api/v1/status" 2>/dev/null || true; }

wait_federation() {
  local n st deadline=$((SECONDS + READY_WAIT_S))
  for n in "${NODES[@]}"; do
    while :; do
      st=$(status_json "$n")
      if grep -q '"ready": *true' <<<"$st" && [ "$(grep -o '"connected": *true' <<<"$st" | wc -l)" -eq $((${#NODES[@]} - 1)) ]; then
        break
      fi
      # Restarting (activating) is given time; failed or stopped is final.
      case "$(in_ct "$n" systemctl is-active ctix 2>/dev/null || true)" in
        failed | inactive)
          in_ct "$n" journalctl -u ctix --no-pager -n 30 -o cat | sed 's/^/    journal: /'
          fail "$n: ctix.service $(in_ct "$n" systemctl is-active ctix 2>/dev/null || true) (its journal above)" ;;
      esac
      [ $SECONDS -lt $deadline ] || fail "$n: not ready with every peer connected after ${READY_WAIT_S} s; last status: ${st:-no answer}"
      sleep 0.5
    done
  done
}

check_all() {
  local n pid st v i body
  echo "checks:"
  for n in "${NODES[@]}"; do
    st=$(in_ct "$n" systemctl is-active ctix || true)
    [ "$st" = active ] || fail "$n: ctix.service is '$st': $(in_ct "$n" systemctl status ctix --no-pager -n 20 | tr '\n' '|')"
    pid=$(in_ct "$n" systemctl show -p MainPID --value ctix)
    # The unit's hardening, as the kernel sees it (pid is in the container's pid namespace).
    local user proc nnp seccomp caps
    user=$(in_ct "$n" stat -c %U "/proc/$pid")
    proc=$(in_ct "$n" cat "/proc/$pid/status")
    nnp=$(sed -n 's/^NoNewPrivs:[[:space:]]*//p' <<<"$proc")
    seccomp=$(sed -n 's/^Seccomp:[[:space:]]*//p' <<<"$proc")
    caps=$(sed -n 's/^CapEff:[[:space:]]*//p' <<<"$proc")
    if [ "$user" != ctix ] || [ "$nnp" != 1 ] || [ "$seccomp" != 2 ] || [ "$caps" != 0000000000000000 ]; then
      fail "$n: ctix (pid $pid) runs as '$user', NoNewPrivs $nnp, Seccomp $seccomp, CapEff $caps: expected ctix, 1, 2, none"
    fi
    ok "$n: ctix.service active (systemd in container $(ns "$n"), pid $pid as user ctix, no capabilities, no_new_privs, seccomp filter)"
    # (Output is captured before grep reads it: `cmd | grep -q` fails under pipefail when grep
    # exits early and cmd gets SIGPIPE.)
    body=$(in_ct "$n" journalctl -u ctix --no-pager -o cat)
    grep -q ' 0 FAIL$' <<<"$body" ||
      fail "$n: the journal has no passing 'ctix config check' from ExecStartPre"
  done
  ok "every node's ExecStartPre 'ctix config check' passed (its lines are in the journal)"
  # The exposure score deploy/README.md quotes, from the running unit this time.
  local score
  body=$(in_ct ee systemd-analyze security --no-pager ctix 2>&1 || true)
  score=$(sed -n 's/.*Overall exposure level for ctix.service: \([0-9.]*\) \([A-Z]*\).*/\1 \2/p' <<<"$body")
  [ -n "$score" ] || fail "ee: 'systemd-analyze security ctix' gave no exposure level: $(tail -3 <<<"$body" | tr '\n' '|')"
  awk -v s="${score%% *}" -v max="$MAX_EXPOSURE" 'BEGIN { exit !(s <= max) }' ||
    fail "ee: systemd-analyze security rates the running unit $score, above $MAX_EXPOSURE: the hardening regressed"
  ok "ee: systemd-analyze security on the running unit: exposure $score (at most $MAX_EXPOSURE)"
  for n in "${NODES[@]}"; do
    st=$(status_json "$n")
    ok "$n: GET /api/v1/status: ready, $(grep -o '"connected": *true' <<<"$st" | wc -l) of 2 peers connected"
  done
  v="sd-$$-$RANDOM.systemd-lab.example"
  in_net ee "$CTIX" submit --api "$(api_of ee)" --token "$(cred ee token_rw)" --type domain --value "$v" >/dev/null ||
    fail "ee: submitting $v failed"
  ok "ee: submitted domain $v"
  for n in lv lt; do
    for ((i = 0; ; i++)); do
      body=$(in_net "$n" "$CTIX" query --api "$(api_of "$n")" --token "$(cred "$n" token_ro)" --type domain --value "$v" --json 2>/dev/null || true)
      grep -q "\"$v\"" <<<"$body" && break
      [ $i -lt $((REPLICATE_WAIT_S * 5)) ] || fail "$n: $v did not arrive in ${REPLICATE_WAIT_S} s"
      sleep 0.2
    done
    ok "$n: holds $v (replicated from ee)"
  done
  VALUE=$v
  # Restart=on-failure: kill -9 lt's node (from the host: the container has no kill); systemd
  # starts it again after RestartSec, and it rejoins with the indicator it already held.
  local hostpid=""
  for pid in $(ip netns pids "$(ns lt)"); do
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = ctix ] && hostpid=$pid
  done
  [ -n "$hostpid" ] || fail "lt: no ctix process in namespace $(ns lt)"
  kill -KILL "$hostpid"
  for ((i = 0; ; i++)); do
    st=$(in_ct lt systemctl show -p NRestarts --value ctix)
    [ "$st" = 1 ] && [ "$(in_ct lt systemctl is-active ctix || true)" = active ] && break
    [ $i -lt $((READY_WAIT_S * 5)) ] || fail "lt: ctix.service not restarted ${READY_WAIT_S} s after kill -9 (NRestarts $st)"
    sleep 0.2
  done
  wait_federation
  body=$(in_net lt "$CTIX" query --api "$(api_of lt)" --token "$(cred lt token_ro)" --type domain --value "$v" --json 2>/dev/null || true)
  grep -q "\"$v\"" <<<"$body" || fail "lt: after its restart, $v is gone"
  ok "lt: after kill -9, systemd restarted ctix.service (Restart=on-failure, NRestarts 1); ready, peers connected, $v still held"
  local api code jar="$DIR/run/cookies-$$"
  for n in "${NODES[@]}"; do
    api=$(api_of "$n")
    body=$(in_net "$n" curl -sf --max-time 5 "$api/dashboard/" || true)
    grep -qi '<html' <<<"$body" || fail "$n: GET /dashboard/ gave no page"
    code=$(in_net "$n" curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$api/api/v1/status")
    [ "$code" = 401 ] || fail "$n: /api/v1/status without a token or session answered $code, not 401"
    body=$(in_net "$n" curl -sf --max-time 5 -c "$jar" -H 'Content-Type: application/json' \
      -d "{\"token\":\"$(cred "$n" token_ro)\"}" "$api/dashboard/login" || true)
    grep -q '"authenticated": *true' <<<"$body" ||
      fail "$n: POST /dashboard/login with the ro token did not open a session"
    body=$(in_net "$n" curl -sf --max-time 5 -b "$jar" "$api/api/v1/status" || true)
    grep -q "\"node\": *\"$n\"" <<<"$body" ||
      fail "$n: the dashboard session cannot read /api/v1/status"
    rm -f "$jar"
    ok "$n: dashboard: /dashboard/ serves the page; login with the ro token gives a session that reads /api/v1/status (401 without)"
  done
}

# Signs in to ee's dashboard in headless Chromium (tests/dashboard/check.py's DevTools driver),
# waits for the live federation graph and the indicator VALUE, and saves a screenshot.
screenshot() {
  local value=$1 out
  out=$(readlink -f "$SHOT")
  in_net ee python3 - "$REPO/tests/dashboard" "$(command -v chromium)" "$(api_of ee)" "$(cred ee token_ro)" "$value" "$out" <<'PY' ||
import sys
sys.path.insert(0, sys.argv[1])
from check import Browser, Fail  # noqa: E402
browser, api, token, value, out = sys.argv[2:7]
b = Browser(browser, 1400, 1000)
try:
    b.goto(f"{api}/dashboard/?refresh=1")
    b.wait_for("document.body.dataset.view === 'login'", "the sign-in form did not appear")
    b.type_into("#token", token)
    b.press_enter()
    b.wait_for("document.body.dataset.view === 'app'", "signing in with the ro token did not show the dashboard")
    for peer in ("lv", "lt"):
        b.wait_for(f"(document.querySelector('#graph line.link[data-peer=\"{peer}\"]') || {{dataset: {{}}}})"
                   ".dataset.state === 'connected'", f"the graph does not show the link to {peer} connected", timeout=40)
    b.wait_for(f"document.body.innerText.includes({value!r})", f"the recent indicators do not show {value}")
    b.screenshot(out)
except Fail as e:
    print(f"dashboard in Chromium: {e}", file=sys.stderr)
    sys.exit(1)
finally:
    b.close()
PY
    fail "ee: the dashboard in headless Chromium did not show the live federation (above)"
  ok "ee: dashboard in headless Chromium: signed in with the ro token, graph shows lv and lt connected and $value; screenshot $out"
}

# ---- main --------------------------------------------------------------------------------------

need_packages
CTIX=$(find_ctix)
t=$SECONDS; ensure_rootfs; phase_end rootfs $t
[ ! -e "$DIR" ] || [ -z "$(ls -A "$DIR")" ] || die "$DIR is not empty: remove it, or choose another --dir"
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
t=$SECONDS
CTIX_BIN=$CTIX "$LAB" up --no-nodes --dir "$DIR" | sed 's/^/  /'
DIR=$(cd "$DIR" && pwd)
mkdir -p "$DIR/machines"
phase_end network $t
t=$SECONDS
for n in "${NODES[@]}"; do prepare_node "$n"; done
phase_end install $t
note "ctix $("$CTIX" --version | awk '{print $2}') installed in each container ($CTIX); booting them"
t=$SECONDS
for n in "${NODES[@]}"; do boot_node "$n"; done
for n in "${NODES[@]}"; do wait_booted "$n"; done
phase_end boot $t
t=$SECONDS
for n in "${NODES[@]}"; do
  if ! in_ct "$n" systemctl enable --now --quiet ctix; then
    in_ct "$n" journalctl -u ctix --no-pager -n 30 -o cat | sed 's/^/    journal: /'
    die "$n: 'systemctl enable --now ctix' failed (its journal above)"
  fi
done
note "ctix.service enabled and started in every container; waiting for the federation"
wait_federation
phase_end start $t
t=$SECONDS
check_all
[ -z "$SHOT" ] || screenshot "$VALUE"
phase_end checks $t

echo
echo "summary: $PASS checks passed; the shipped ctix.service runs a three-node federation under systemd $(in_ct ee systemctl --version | awk 'NR == 1 {print $2}')"
for n in "${NODES[@]}"; do
  printf '  %-3s container %-8s namespace %-8s QUIC %s  API %s (in the namespace)\n' "$n" "$(ns "$n")" "$(ns "$n")" \
    "$(sed -n "s/^listen = \"\\(.*:74..\\)\"/\\1/p" "$DIR/fed/$n/ctix.toml")" "$(api_of "$n")"
done
echo "  times: rootfs ${TIMES[rootfs]} s, network ${TIMES[network]} s, install ${TIMES[install]} s, boot ${TIMES[boot]} s, start to federated ${TIMES[start]} s, checks ${TIMES[checks]} s; total $((SECONDS - START)) s"
if [ -n "$HOLD" ]; then
  echo
  echo "holding the federation (Enter, Ctrl-C or SIGTERM takes it down). From the host:"
  echo "  nsenter -t $(leader ee) -a systemctl status ctix      # ee's container (its init's pid); or journalctl -u ctix"
  echo "  ip netns exec $(ns ee) curl -H 'Authorization: Bearer $(cred ee token_ro)' $(api_of ee)/api/v1/status"
  echo "  ip netns exec $(ns ee) chromium --headless --screenshot=/tmp/ee.png $(api_of ee)/dashboard/"
  echo "  $LAB cut ee lt --dir $DIR     # and the other lab.sh link commands"
  read -r _ || true
fi
