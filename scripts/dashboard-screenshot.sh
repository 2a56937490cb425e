#!/usr/bin/env bash
# Screenshot of the admin dashboard with headless Chromium (Debian package `chromium`), after a few
# seconds of traffic on the demo, into docs/dashboard.png. Skips cleanly when Chromium is absent.
#
#   scripts/dashboard-screenshot.sh [OUT.png]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-docs/dashboard.png}
CHROMIUM=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [ -z "$CHROMIUM" ]; then
  echo "skipped: no Chromium (apt-get install chromium)"
  exit 0
fi
cargo build --release -q -p remora
ADMIN=127.0.0.1:18254
HTTP=127.0.0.1:18180
LOG=$(mktemp)
target/release/remora demo --listen-http "$HTTP" --listen-https 127.0.0.1:0 --admin "$ADMIN" \
  --first-pod-ip 127.0.0.41 >"$LOG" 2>&1 &
DEMO=$!
trap 'kill $DEMO 2>/dev/null || true; rm -f "$LOG"' EXIT
for _ in $(seq 1 100); do
  curl -sf "http://$ADMIN/readyz" >/dev/null && break
  sleep 0.1
done
# Some sessions, so the plot and the loads have something to show: 60 new sessions, then each
# returning a few times.
for i in $(seq 1 60); do
  jar=$(mktemp)
  for _ in 1 2 3; do curl -s -b "$jar" -c "$jar" "http://$HTTP/" >/dev/null; done
  rm -f "$jar"
done
"$CHROMIUM" --headless --disable-gpu --no-sandbox --hide-scrollbars --window-size=1280,860 \
  --virtual-time-budget=4000 --screenshot="$OUT" "http://$ADMIN/" >/dev/null 2>&1
test -s "$OUT"
echo "wrote $OUT ($(wc -c <"$OUT") bytes)"
