#!/usr/bin/env bash
# Validates deploy/ without a Docker engine or a running systemd (neither exists on the CI machine):
#
#   1. Prometheus: `promtool check rules` and the alert unit tests (alerts.test.yml), and
#      `promtool check config` of both scrape configs.
#   2. systemd: `systemd-analyze verify` of deploy/systemd/ctix.service (ExecStart pointed at the
#      built binary, since /usr/local/bin/ctix is not installed here) and its exposure score from
#      `systemd-analyze security --offline=yes`.
#   3. Docker: `docker-compose config` parses deploy/docker/compose.yaml; shellcheck lints the init
#      script (and deploy/lab/systemd-lab.sh, which runs the unit under real systemd); the init
#      script runs against the built binary and `ctix config check` passes on every node config
#      it writes (ports aside, which the test federation may share).
#
# Installs what it needs from Debian's packages when missing: prometheus (for promtool), systemd,
# docker-compose and the shell linter. Usage: scripts/check-deploy.sh [CTIX_BIN] (default: builds
# target/release/ctix).
set -euo pipefail
cd "$(dirname "$0")/.."

need() { # need COMMAND PACKAGE
  command -v "$1" >/dev/null 2>&1 && return
  echo "installing $2 (for $1)"
  if [ -z "${apt_updated:-}" ]; then apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$2" >/dev/null
}
need promtool prometheus
need systemd-analyze systemd
need docker-compose docker-compose
need shellcheck shellcheck

bin=${1:-}
if [ -z "$bin" ]; then
  cargo build --release --locked --quiet --bin ctix
  bin=${CARGO_TARGET_DIR:-target}/release/ctix
fi
bin=$(realpath "$bin")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "== prometheus"
promtool check rules deploy/prometheus/alerts.yml
promtool test rules deploy/prometheus/alerts.test.yml
# The scrape configs name token files that exist only on a real host: give them stand-ins.
mkdir -p "$tmp/prom/scrape"
for n in ee lv lt; do echo token >"$tmp/prom/scrape/$n.token"; done
echo token >"$tmp/prom/ctix.token"
sed "s#/etc/prometheus/ctix.token#$tmp/prom/ctix.token#" deploy/prometheus/prometheus.yml >"$tmp/prom/prometheus.yml"
cp deploy/prometheus/alerts.yml "$tmp/prom/alerts.yml"
promtool check config "$tmp/prom/prometheus.yml"
sed -e "s#/scrape/#$tmp/prom/scrape/#" -e "s#/etc/prometheus/alerts.yml#$tmp/prom/alerts.yml#" \
  deploy/docker/prometheus.yml >"$tmp/prom/compose-prometheus.yml"
promtool check config "$tmp/prom/compose-prometheus.yml"

echo "== systemd"
mkdir -p "$tmp/unit"
sed "s#/usr/local/bin/ctix#$bin#g" deploy/systemd/ctix.service >"$tmp/unit/ctix.service"
# verify prints problems and exits non-zero on errors; warnings about the missing user are not errors.
systemd-analyze verify --man=no "$tmp/unit/ctix.service"
echo "systemd-analyze verify: ok"
systemd-analyze security --offline=yes --threshold=25 "$tmp/unit/ctix.service" | tail -n 1

echo "== docker"
# Debian 12's docker-compose is v1, which predates the top-level `name` of the Compose
# specification: check a copy without it, next to the original so relative paths still resolve.
copy=deploy/docker/.compose-check.yaml
sed '/^name:/d' deploy/docker/compose.yaml >"$copy"
trap 'rm -rf "$tmp" "$copy"' EXIT
docker-compose -f "$copy" config -q
rm -f "$copy"
echo "compose.yaml: ok"
shellcheck -x deploy/docker/init-federation.sh deploy/local-federation.sh deploy/lab/systemd-lab.sh scripts/check-deploy.sh scripts/lib/chromium.sh scripts/render-report.sh
mkdir -p "$tmp/docker/fed" "$tmp/docker/scrape" "$tmp/docker/nodes/"{ee,lv,lt}
base=$((20000 + RANDOM % 20000))
CTIX_BIN="$bin" CTIX_BASE_PORT=$base \
  deploy/docker/init-federation.sh "$tmp/docker/fed" "$tmp/docker/nodes" "$tmp/docker/scrape" >/dev/null
CTIX_BIN="$bin" deploy/docker/init-federation.sh "$tmp/docker/fed" "$tmp/docker/nodes" | grep -q "nothing to do"
for n in ee lv lt; do
  grep -q "quic_addr = \"$n:" "$tmp/docker/nodes/$n/roster.toml" || { echo "roster of $n lacks $n's service name" >&2; exit 1; }
  [ -s "$tmp/docker/scrape/$n.token" ] || { echo "no scrape token for $n" >&2; exit 1; }
  [ ! -e "$tmp/docker/nodes/$n/ca.key" ] || { echo "the CA key leaked into $n's volume" >&2; exit 1; }
  out=$("$bin" config check "$tmp/docker/nodes/$n/ctix.toml") || { echo "$out" >&2; exit 1; }
done
echo "init-federation.sh: ok (3 node configs pass ctix config check)"
echo "check-deploy: all passed"
