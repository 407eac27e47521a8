#!/usr/bin/env bash
# Installs headless Chromium and chromedriver from Debian's packages (no browser
# downloads), for the tests that drive the web page and render the report. Idempotent.
# Prints the paths of both binaries.
set -euo pipefail
have() { command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; }
if ! have; then
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  echo "install-chromium: installing chromium chromium-driver (Debian packages)" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    chromium chromium-driver fonts-dejavu-core >/dev/null
fi
command -v chromium
command -v chromedriver
