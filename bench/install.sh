#!/usr/bin/env bash
# Install what the benchmark compares against and drives it with (Debian/Ubuntu packages):
# haproxy, nginx, wrk, h2load (nghttp2-client) and python3 (the handshake variant's client).
set -euo pipefail
missing=()
for tool_package in haproxy:haproxy nginx:nginx wrk:wrk h2load:nghttp2-client python3:python3; do
  command -v "${tool_package%%:*}" >/dev/null 2>&1 || missing+=("${tool_package#*:}")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "haproxy, nginx, wrk, h2load and python3 are installed"
  exit 0
fi
echo "installing: ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
