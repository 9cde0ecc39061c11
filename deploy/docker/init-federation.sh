#!/bin/sh
# The `init` service of deploy/docker/compose.yaml: generates a development federation once
# (CA, node keys, TLS certificates, roster, one config per node, with `ctix dev-federation`) and
# gives each node its own volume with only its own files. Later runs change nothing.
#
#   ctix-init-federation [PKI_DIR] [NODES_DIR] [SCRAPE_DIR]   (defaults /fed, /nodes, /scrape)
#
# SCRAPE_DIR, if it exists, receives NODE.token: each node's read-only API token, for Prometheus.
#
# Environment: CTIX_NODES (default ee,lv,lt; each needs a /NODES_DIR/<name> volume and a compose
# service of that name), CTIX_BASE_PORT (default 7401: node i listens on QUIC BASE+i, API BASE+100+i).
# The CA key stays in PKI_DIR, which no node mounts. Development keys: never for real data.
set -eu
pki=${1:-/fed}
nodes_dir=${2:-/nodes}
scrape=${3:-/scrape}
nodes=${CTIX_NODES:-ee,lv,lt}
base=${CTIX_BASE_PORT:-7401}
ctix=${CTIX_BIN:-ctix}

if [ -f "$pki/done" ]; then
  echo "federation already generated in $pki: nothing to do"
  exit 0
fi
rm -rf "$pki/gen"
"$ctix" dev-federation --dir "$pki/gen" --nodes "$nodes" --base-port "$base"

# Containers reach each other by service name: the roster's 127.0.0.1:PORT becomes NAME:PORT.
roster="$pki/gen/roster.toml"
i=0
for n in $(echo "$nodes" | tr ',' ' '); do
  port=$((base + i))
  sed -i "s/\"127\.0\.0\.1:$port\"/\"$n:$port\"/" "$roster"
  i=$((i + 1))
done

for n in $(echo "$nodes" | tr ',' ' '); do
  out="$nodes_dir/$n"
  [ -d "$out" ] || { echo "no volume at $out for node $n: add it to compose.yaml" >&2; exit 1; }
  cp -R "$pki/gen/$n/." "$out/"
  cp "$pki/gen/ca/ca.crt" "$roster" "$out/"
  # Listen on every interface of the container; read the CA and roster from the node's own volume.
  sed -i -e 's/^listen = "127\.0\.0\.1:/listen = "0.0.0.0:/' \
         -e 's#"\.\./ca/ca\.crt"#"ca.crt"#' -e 's#"\.\./roster\.toml"#"roster.toml"#' "$out/ctix.toml"
  if [ -d "$scrape" ]; then
    sed -n 's/.*"token_ro": "\([0-9a-f]*\)".*/\1/p' "$out/credentials.json" > "$scrape/$n.token"
  fi
  echo "node $n: $out/ctix.toml (API token in $out/credentials.json)"
done
cp "$roster" "$pki/roster.toml"
touch "$pki/done"
