#!/usr/bin/env bash
# Install what the benchmark compares against (Debian/Ubuntu packages): haproxy, nginx, wrk.
set -euo pipefail
missing=()
for tool in haproxy nginx wrk; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "haproxy, nginx and wrk are installed"
  exit 0
fi
echo "installing: ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
