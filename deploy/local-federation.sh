#!/usr/bin/env bash
# Start or stop a local three-node dev federation (EE, LV, LT) on 127.0.0.1, in the background.
#
#   deploy/local-federation.sh start [DIR]   generate DIR (default ./dev-federation) if needed,
#                                            build ctix, start the nodes, log to DIR/<node>/ctix.log
#   deploy/local-federation.sh status [DIR]  show which nodes run
#   deploy/local-federation.sh stop [DIR]    SIGTERM every node and wait for it to exit
#
# Environment: CTIX_NODES (default ee,lv,lt), CTIX_BASE_PORT (default 7401).
set -euo pipefail
cd "$(dirname "$0")/.."
cmd=${1:-}
dir=${2:-dev-federation}
nodes=${CTIX_NODES:-ee,lv,lt}
base_port=${CTIX_BASE_PORT:-7401}
bin=${CTIX_BIN:-target/release/ctix}

case "$cmd" in
  start)
    [ -n "${CTIX_BIN:-}" ] || cargo build --release --locked --quiet
    if [ ! -f "$dir/roster.toml" ]; then
      "$bin" dev-federation --dir "$dir" --nodes "$nodes" --base-port "$base_port"
    fi
    for n in ${nodes//,/ }; do
      pidfile="$dir/$n/ctix.pid"
      if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
        echo "$n already running (pid $(cat "$pidfile"))"; continue
      fi
      nohup "$bin" run --config "$dir/$n/ctix.toml" >"$dir/$n/ctix.log" 2>&1 &
      echo $! >"$pidfile"
      echo "$n started (pid $!, log $dir/$n/ctix.log)"
    done
    ;;
  status)
    for n in ${nodes//,/ }; do
      pidfile="$dir/$n/ctix.pid"
      if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
        echo "$n running (pid $(cat "$pidfile"))"
      else
        echo "$n stopped"
      fi
    done
    ;;
  stop)
    for n in ${nodes//,/ }; do
      pidfile="$dir/$n/ctix.pid"
      [ -f "$pidfile" ] || continue
      pid=$(cat "$pidfile")
      if kill -TERM "$pid" 2>/dev/null; then
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null; then echo "$n did not stop in 5 s; sending SIGKILL"; kill -KILL "$pid"; fi
        echo "$n stopped"
      fi
      rm -f "$pidfile"
    done
    ;;
  *)
    echo "usage: $0 start|status|stop [DIR]" >&2; exit 2 ;;
esac
