#!/usr/bin/env bash
# Memory per idle client connection: Remora, HAProxy and nginx in one run, on loopback.
#
# For each proxy, N clients (10,000 by default) each open a connection and leave it idle:
#   - HTTP/1.1 keep-alive: one request (the sticky route of bench/run.sh, to the three pods),
#     its response read, then nothing;
#   - HTTP/2 (cleartext, prior knowledge): the preface and SETTINGS exchanged, no stream.
# The proxy's resident memory (VmRSS of all its processes, from /proc) is read before and once
# every connection is idle; the difference divided by N is printed per proxy and kind, with
# Remora's limits from the hardening issue (8 KiB per idle HTTP/1 connection, 16 KiB per HTTP/2).
# Each proxy is configured to keep the connections (keep-alive timeouts of 10 minutes, connection
# limits above N), one worker each.
#
#   bench/install.sh        # haproxy, nginx, wrk from the distribution if missing
#   bench/idle.sh           # N=10000 IDLE_SECONDS=2
#   REMORA=/tmp/old/remora bench/idle.sh
#
# The client needs N descriptors, and each proxy N more (HAProxy 2N): the soft limit is raised to
# the hard one, and N lowered to fit (said when it is). Everything listens on loopback and stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-10000}
IDLE_SECONDS=${IDLE_SECONDS:-2}
BACKEND_PORT=${BACKEND_PORT:-18080}
REMORA_PORT=${REMORA_PORT:-18110}
HAPROXY_PORT=${HAPROXY_PORT:-18111}
NGINX_PORT=${NGINX_PORT:-18112}
HOST=bench.example.com

for tool in haproxy nginx python3; do
  command -v "$tool" >/dev/null || { echo "$tool is missing: run bench/install.sh" >&2; exit 1; }
done
ulimit -n "$(ulimit -Hn)"
# HAProxy reserves two descriptors per connection it may hold (client and server side).
fit=$(( $(ulimit -n) / 2 - 500 ))
if [ "$N" -gt "$fit" ]; then
  echo "descriptor limit $(ulimit -n): N lowered from $N to $fit" >&2
  N=$fit
fi
if [ -z "${REMORA:-}" ]; then
  cargo build --release -q -p remora
  REMORA=target/release/remora
fi
# shellcheck source=bench/lib.sh
. bench/lib.sh

start_pods "$REMORA" "$BACKEND_PORT"

mkdir -p "$WORK/nginx"
write_manifests "$BACKEND_PORT" "$HOST"

cat > "$WORK/haproxy.cfg" <<CFG
global
  nbthread 1
  maxconn $((N + 100))
defaults
  mode http
  timeout connect 5s
  timeout client 600s
  timeout server 60s
  timeout http-keep-alive 600s
  option http-keep-alive
  http-reuse always
frontend h1
  bind 127.0.0.1:$HAPROXY_PORT
  default_backend pods
frontend h2
  bind 127.0.0.1:$((HAPROXY_PORT + 100)) proto h2
  default_backend pods
backend pods
  balance roundrobin
  cookie SERVERID insert indirect nocache
  server s1 127.0.0.11:$BACKEND_PORT cookie s1
  server s2 127.0.0.12:$BACKEND_PORT cookie s2
  server s3 127.0.0.13:$BACKEND_PORT cookie s3
CFG

cat > "$WORK/nginx.conf" <<CFG
worker_processes 1;
worker_rlimit_nofile $((N + 200));
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections $((N + 100)); }
http {
  access_log off;
  keepalive_timeout 600s;
  keepalive_requests 100000;
  http2_idle_timeout 600s;
  client_body_temp_path $WORK/nginx;
  proxy_temp_path $WORK/nginx;
  fastcgi_temp_path $WORK/nginx;
  uwsgi_temp_path $WORK/nginx;
  scgi_temp_path $WORK/nginx;
  map \$cookie_route \$route_key {
    "" \$request_id;
    default \$cookie_route;
  }
  upstream pods {
    hash \$route_key consistent;
    server 127.0.0.11:$BACKEND_PORT;
    server 127.0.0.12:$BACKEND_PORT;
    server 127.0.0.13:$BACKEND_PORT;
    keepalive 64;
  }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    listen 127.0.0.1:$((NGINX_PORT + 100)) http2;
    location / {
      proxy_pass http://pods;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$host;
    }
  }
}
CFG

# The idle clients: open N connections of a kind, make each idle, report, hold until stdin closes.
cat > "$WORK/idle.py" <<'PY'
import asyncio, sys

host, port, n, kind, name = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
SETTINGS_ACK = b"\x00\x00\x00\x04\x01\x00\x00\x00\x00"
REQUEST = ("GET / HTTP/1.1\r\nHost: %s\r\n\r\n" % name).encode()

async def one(held):
    r, w = await asyncio.open_connection(host, port)
    if kind == "h1":
        w.write(REQUEST)
        await w.drain()
        head = await r.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        await r.readexactly(length)
    else:
        w.write(PREFACE)
        await w.drain()
        # The server's SETTINGS frame (9-byte header and its payload), then ours acknowledged.
        header = await r.readexactly(9)
        await r.readexactly(int.from_bytes(header[:3], "big"))
        w.write(SETTINGS_ACK)
        await w.drain()
    held.append((r, w))

async def main():
    held = []
    sem = asyncio.Semaphore(200)
    async def bounded():
        async with sem:
            await one(held)
    results = await asyncio.gather(*(bounded() for _ in range(n)), return_exceptions=True)
    failed = [r for r in results if isinstance(r, Exception)]
    print("open %d failed %d%s" % (len(held), len(failed), (" (%r)" % failed[0]) if failed else ""), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    for _, w in held:
        w.close()

asyncio.run(main())
PY

rss_kib() { # pids...
  local total=0 v
  for p in "$@"; do
    v=$(awk '/^VmRSS:/ { print $2 }' "/proc/$p/status" 2>/dev/null || echo 0)
    total=$((total + v))
  done
  echo "$total"
}

# Measure one proxy and kind: N idle connections to PORT; PIDS_OF prints the proxy's pids.
measure() { # label kind port pids...
  local label=$1 kind=$2 port=$3
  shift 3
  local before after fifo out
  before=$(rss_kib "$@")
  fifo="$WORK/hold.$label.$kind"
  mkfifo "$fifo"
  out="$WORK/idle.$label.$kind"
  python3 "$WORK/idle.py" 127.0.0.1 "$port" "$N" "$kind" "$HOST" < "$fifo" > "$out" 2>&1 &
  local client=$!
  exec 7> "$fifo"
  for _ in $(seq 1 600); do
    [ -s "$out" ] && break
    sleep 0.1
  done
  sleep "$IDLE_SECONDS"
  after=$(rss_kib "$@")
  local opened
  opened=$(cat "$out")
  exec 7>&-
  wait "$client" 2>/dev/null || true
  local per=$(( (after - before) * 1024 / N ))
  printf "%-8s %-5s %8d KiB -> %8d KiB  %7d bytes per idle connection  (%s)\n" \
    "$label" "$kind" "$before" "$after" "$per" "$opened"
  RESULT=$per
}

echo "idle connections: N=$N per proxy and kind, one worker each, $(nproc) cores; a fresh process per kind"
declare -A R

for kind in h1 h2; do
  "$REMORA" serve --manifests "$WORK/manifests" --listen-http "127.0.0.1:$REMORA_PORT" \
    --listen-https 127.0.0.1:0 --admin 127.0.0.1:0 --workers 1 \
    --keepalive-timeout 600 --keepalive-requests 100000 --max-connections $((N + 100)) \
    >"$WORK/remora.log" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  wait_port 127.0.0.1 "$REMORA_PORT"
  measure remora "$kind" "$REMORA_PORT" "$pid"; R[remora_$kind]=$RESULT
  kill "$pid"; wait "$pid" 2>/dev/null || true

  haproxy -f "$WORK/haproxy.cfg" -db >"$WORK/haproxy.log" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  wait_port 127.0.0.1 "$HAPROXY_PORT"
  port=$HAPROXY_PORT
  [ "$kind" = h2 ] && port=$((HAPROXY_PORT + 100))
  measure haproxy "$kind" "$port" "$pid"; R[haproxy_$kind]=$RESULT
  kill "$pid"; wait "$pid" 2>/dev/null || true

  nginx -c "$WORK/nginx.conf" -g 'daemon off;' >"$WORK/nginx.log" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  wait_port 127.0.0.1 "$NGINX_PORT"
  port=$NGINX_PORT
  [ "$kind" = h2 ] && port=$((NGINX_PORT + 100))
  # shellcheck disable=SC2046
  measure nginx "$kind" "$port" "$pid" $(pgrep -P "$pid"); R[nginx_$kind]=$RESULT
  kill "$pid"; wait "$pid" 2>/dev/null || true
done

echo
printf "bytes per idle connection   %8s %8s %8s   Remora's limit\n" remora haproxy nginx
printf "HTTP/1.1 keep-alive         %8d %8d %8d   %8d\n" "${R[remora_h1]}" "${R[haproxy_h1]}" "${R[nginx_h1]}" 8192
printf "HTTP/2, no stream           %8d %8d %8d   %8d\n" "${R[remora_h2]}" "${R[haproxy_h2]}" "${R[nginx_h2]}" 16384
