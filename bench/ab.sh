#!/usr/bin/env bash
# A/B of two Remora builds on the same workload, to tell whether a change moved the CPU cost of a
# request: the same 3 pods, the same pinned session cookie, one worker each, wrk -c50, rounds
# alternating between the two builds so the machine's drift hits both alike. Prints req/s and
# CPU time per request (user + system of the proxy, from /proc) for each round.
#
#   bench/ab.sh OLD_BINARY NEW_BINARY        # ROUNDS=6 DURATION=6 by default
#
# Everything listens on loopback (pods on 127.0.0.11-13) and stops by itself.
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 OLD_BINARY NEW_BINARY" >&2; exit 1; }
A=$1 B=$2
ROUNDS=${ROUNDS:-6}
DURATION=${DURATION:-6}
POD_PORT=${POD_PORT:-18280}
PORT_A=${PORT_A:-18300}
PORT_B=${PORT_B:-18301}
for tool in wrk curl; do
  command -v "$tool" >/dev/null || { echo "$tool is missing: run bench/install.sh" >&2; exit 1; }
done
# shellcheck source=bench/lib.sh
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"
start_pods "$B" "$POD_PORT"
mkdir -p "$WORK/m"
cat > "$WORK/m/bench.yaml" <<YAML
apiVersion: v1
kind: Service
metadata: {name: bench}
spec: {ports: [{port: 80}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: bench-1, labels: {kubernetes.io/service-name: bench}}
addressType: IPv4
ports: [{port: $POD_PORT}]
endpoints: [{addresses: ["127.0.0.11"]}, {addresses: ["127.0.0.12"]}, {addresses: ["127.0.0.13"]}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: bench
  annotations: {nginx.ingress.kubernetes.io/affinity: cookie, nginx.ingress.kubernetes.io/session-cookie-name: route}
spec:
  rules: [{host: bench.example.com, http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: bench, port: {number: 80}}}}]}}]
YAML
start() { # binary port
  "$1" serve --manifests "$WORK/m" --workers 1 --listen-http "127.0.0.1:$2" \
    --listen-https 127.0.0.1:0 --admin 127.0.0.1:0 >/dev/null 2>&1 &
  PIDS+=($!)
  wait_port 127.0.0.1 "$2"
}
start "$A" "$PORT_A"; PID_A=${PIDS[-1]}
start "$B" "$PORT_B"; PID_B=${PIDS[-1]}
cookie() { # port
  for _ in $(seq 1 100); do
    c=$(curl -s -o /dev/null -c - -H "Host: bench.example.com" "http://127.0.0.1:$1/" | awk '$6 == "route" { print "route=" $7 }')
    [ -n "$c" ] && { echo "$c"; return; }
    sleep 0.05
  done
  echo "no session cookie from port $1" >&2; exit 1
}
COOKIE_A=$(cookie "$PORT_A"); COOKIE_B=$(cookie "$PORT_B")
round() { # pid port cookie
  local before after out
  before=$(cpu_ticks "$1")
  out=$(wrk -t1 -c50 "-d${DURATION}s" -H "Host: bench.example.com" -H "Cookie: $3" "http://127.0.0.1:$2/")
  after=$(cpu_ticks "$1")
  echo "$out" | awk -v ticks=$((after - before)) -v hz="$CLK_TCK" '
    /requests in/ { n = $1 } /Requests\/sec/ { rps = $2 }
    END { printf "%8.0f req/s %6.2f us CPU/request\n", rps, (n > 0 ? ticks * 1e6 / hz / n : 0) }'
}
for r in $(seq 1 "$ROUNDS"); do
  echo "round $r  A: $(round "$PID_A" "$PORT_A" "$COOKIE_A")"
  echo "round $r  B: $(round "$PID_B" "$PORT_B" "$COOKIE_B")"
done
