#!/usr/bin/env bash
# Runs a throwaway Tansu broker (see scripts/install-tansu.sh) in the foreground on
# 127.0.0.1:PORT only, with in-memory storage: every topic, offset and group is gone when
# it exits. Usage: scripts/tansu-broker.sh PORT   (then connect to 127.0.0.1:PORT)
# It execs tansu, so this process IS the broker: a test spawns it and kills it by pid.
# Ready when stdout prints a line starting "ready in" (the listener is bound then).
# Tansu exits 0 (not an error code) when the port is taken, after printing
# "listening on", so this script refuses a busy port itself.
set -euo pipefail
port="${1:?usage: $0 PORT}"
bin="${TANSU_BIN:-$(command -v tansu || echo /usr/local/bin/tansu)}"
if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
  echo "tansu-broker: 127.0.0.1:$port is already in use" >&2
  exit 1
fi
# Tansu reads these env vars (flags win) and loads a .env from its working directory:
# run from a fresh empty directory with none of them set.
unset CLUSTER_ID LISTENER_URL ADVERTISED_LISTENER_URL STORAGE_ENGINE SCHEMA_REGISTRY \
  OTEL_EXPORTER_OTLP_ENDPOINT
workdir="$(mktemp -d "${TMPDIR:-/tmp}/tansu.XXXXXX")"
cd "$workdir"
export NO_COLOR=1
# Tansu logs through RUST_LOG, and at `info` it writes tens of MB per second (a span per
# storage call): an inherited RUST_LOG meant for our own processes would flood whatever
# reads this broker's stdout. TANSU_LOG sets its level (default warn).
export RUST_LOG="${TANSU_LOG:-warn}"
exec "$bin" broker \
  --listener-url "tcp://127.0.0.1:$port" \
  --advertised-listener-url "tcp://127.0.0.1:$port" \
  --storage-engine memory://tansu/
