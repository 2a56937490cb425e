#!/usr/bin/env bash
# The same sticky workload against Remora, HAProxy (`cookie SERVERID insert`) and nginx
# (`hash $cookie_NAME consistent`, setting the cookie for new sessions as the other two do), in one
# run on loopback: same 3 backends, same connections, keep-alive, one worker thread each (and a
# 2-worker variant). Prints req/s, p50/p99 and CPU time per request (user + system, from /proc)
# per proxy and Remora's ratios. Backends are `remora whoami` on 127.0.0.11-13.
#
# A fourth row, tcp-relay, is HAProxy in `mode tcp` relaying each client connection to one pod:
# no HTTP at all, so the most any proxy can get from this machine with the same four system calls
# per request (to one pod: compare it with the pinned variants). On a small machine wrk and the pods
# share the cores with the proxy, so req/s ratios are bounded by that row; CPU per request is what
# one worker can do with a core of its own.
#
#   bench/install.sh            # haproxy, nginx, wrk from the distribution if missing
#   bench/run.sh                # ROUNDS=3 DURATION=10 CONNECTIONS=50 by default
#   REMORA=/tmp/old/remora bench/run.sh   # measure another build of Remora
#
# HEADERS=ingress-nginx (default): HAProxy and nginx send the pods the request headers
# ingress-nginx sends and Remora sends (X-Request-ID, X-Real-IP, X-Forwarded-For/-Host/-Port/
# -Proto/-Scheme), so every pod does the same work. HEADERS=none: their bare configurations
# (Host only), which leaves them less to do than Remora.
#
# PIN: whether the proxy under test gets cores of its own (the last ones, one per worker) and wrk
# and the pods the others, so req/s is what the proxy's workers can do rather than how the
# scheduler shares the cores. PIN=auto (default): pinned when at least 3 cores are left for wrk
# and the pods (with fewer, they become the bottleneck: on 2 cores, one core of wrk and pods serves
# less than any proxy). PIN=1: pinned whenever a core is left. PIN=0: never. The header of each
# variant says where things ran.
#
# VARIANTS (default "http https"): http, the plain HTTP/1.1 rows above; https, the same sticky
# workload over HTTPS (TLS 1.3, kept alive, an ECDSA P-256 certificate made for the run) against
# the three proxies' TLS listeners (no tcp-relay row: the pods speak no TLS). Slower ones, not
# run by default, each against HAProxy and nginx doing the same sticky work (the cookie, the same
# request headers to the pods) with one worker each:
#   handshake  a new TLS 1.3 connection per request (bench/tls_connect.py, HANDSHAKE_CLIENTS
#              processes: one GET with the session's cookie and `Connection: close` each): full
#              handshakes with an ECDSA P-256 and with an RSA-2048 certificate, and resumed ones
#              (each connection offers the ticket of the one before; the client counts the
#              resumptions the server granted and the table shows them); handshakes per
#              CPU-second of the proxy. (wrk and h2load are no use here: wrk resumes on every
#              reconnection, h2load 1.52 never does and stalls on `Connection: close`.)
#   h2         HTTP/2 over TLS (ALPN h2): H2_CONNECTIONS connections (5) of H2_STREAMS concurrent
#              streams (20) each, h2load; requests per CPU-second.
#   large      1 MiB responses (the pods' /bytes/1048576) and 1 MiB uploads (POST /bytes/0),
#              plain HTTP, LARGE_CONNECTIONS connections (10), wrk; MiB per CPU-second, with the
#              tcp-relay row. nginx streams both ways there (proxy_buffering and
#              proxy_request_buffering off), as Remora and HAProxy do.
#   rate       latency at a fixed rate, plain HTTP, pinned session: the slowest proxy's
#              closed-loop req/s (RATE_PROBE seconds, 3, of wrk), then each proxy at 50% and 90%
#              of it (h2load --h1 --rps, CONNECTIONS connections); p50/p99/p99.9, and
#              whether Remora's p99 <= HAProxy's. A `direct` row is h2load to one pod with no
#              proxy (its CPU column: the pod's), the floor that the load generator, the pod and
#              the machine's scheduling set. h2load times a request from when it was sent: one
#              that waited for its connection is not counted from when it was due.
#   e.g. VARIANTS="handshake h2 large rate" ROUNDS=1 DURATION=5 bench/run.sh
# These keep each proxy's best round by the figure they print (per CPU-second, or the lowest p99).
#
# The TLS host is `localhost`, so that every client sends it as SNI (connecting to 127.0.0.1,
# wrk sends the address, which is no host name, and Remora then answers with its default
# certificate instead of the host's); it must resolve to 127.0.0.1.
#
# Client connections are not closed for the number of requests they made (nginx and Remora
# close them after 1000 by default, HAProxy never; h2load does not reconnect after a GOAWAY).
#
# Everything listens on loopback and stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-50}
BACKEND_PORT=${BACKEND_PORT:-18080}
REMORA_PORT=${REMORA_PORT:-18100}
HAPROXY_PORT=${HAPROXY_PORT:-18101}
NGINX_PORT=${NGINX_PORT:-18102}
RELAY_PORT=${RELAY_PORT:-18103}
REMORA_TLS_PORT=${REMORA_TLS_PORT:-18104}
HAPROXY_TLS_PORT=${HAPROXY_TLS_PORT:-18105}
NGINX_TLS_PORT=${NGINX_TLS_PORT:-18106}
declare -A HTTP_PORT=([remora]=$REMORA_PORT [haproxy]=$HAPROXY_PORT [nginx]=$NGINX_PORT
  [tcp-relay]=$RELAY_PORT)
declare -A TLS_PORT=([remora]=$REMORA_TLS_PORT [haproxy]=$HAPROXY_TLS_PORT [nginx]=$NGINX_TLS_PORT)
HOST=bench.example.com
TLS_HOST=localhost
HANDSHAKE_CLIENTS=${HANDSHAKE_CLIENTS:-4}
H2_CONNECTIONS=${H2_CONNECTIONS:-5}
H2_STREAMS=${H2_STREAMS:-20}
LARGE_CONNECTIONS=${LARGE_CONNECTIONS:-10}
LARGE_BYTES=1048576
RATE_PROBE=${RATE_PROBE:-3}
VARIANTS=${VARIANTS:-http https}
HEADERS=${HEADERS:-ingress-nginx}
case $HEADERS in ingress-nginx|none) ;; *) echo "HEADERS is ingress-nginx or none" >&2; exit 1 ;; esac

CORES=$(nproc)
PIN=${PIN:-auto}
case $PIN in auto|0|1) ;; *) echo "PIN is auto, 0 or 1" >&2; exit 1 ;; esac
if [ "$PIN" != 0 ] && ! command -v taskset >/dev/null; then
  echo "taskset (util-linux) is missing: not pinning" >&2
  PIN=0
fi
for tool in haproxy nginx wrk curl openssl h2load python3; do
  command -v "$tool" >/dev/null || { echo "$tool is missing: run bench/install.sh" >&2; exit 1; }
done
# REMORA=path/to/remora measures that build (e.g. an earlier commit's, to compare); by default
# this tree's, built here.
if [ -z "${REMORA:-}" ]; then
  cargo build --release -q -p remora
  REMORA=target/release/remora
fi
[ -x "$REMORA" ] || { echo "$REMORA is not an executable" >&2; exit 1; }
# shellcheck source=bench/lib.sh
. bench/lib.sh

# Where processes run: PROXY_RUN prefixes the proxies' commands, LOAD_RUN wrk's (empty when not
# pinned).
PROXY_RUN=()
LOAD_RUN=()
PLACEMENT="not pinned"
place() { # workers
  local load_cpus="0-$((CORES - 1))"
  PROXY_RUN=()
  LOAD_RUN=()
  PLACEMENT="not pinned"
  local spare=1
  [ "$PIN" = auto ] && spare=3
  if [ "$PIN" != 0 ] && [ $((CORES - $1)) -ge "$spare" ]; then
    local proxy_cpus="$((CORES - $1))-$((CORES - 1))"
    load_cpus="0-$((CORES - $1 - 1))"
    PROXY_RUN=(taskset -c "$proxy_cpus")
    LOAD_RUN=(taskset -c "$load_cpus")
    PLACEMENT="proxy on cores $proxy_cpus, wrk and pods on $load_cpus"
  elif [ "$PIN" != 0 ]; then
    PLACEMENT="not pinned: $1 worker(s) on $CORES cores"
  fi
  if [ "$PIN" != 0 ]; then
    for p in "${POD_PIDS[@]}"; do taskset -a -p -c "$load_cpus" "$p" >/dev/null; done
  fi
}

# Backends: three pods.
start_pods "$REMORA" "$BACKEND_PORT"

# Remora's manifests.
write_manifests "$BACKEND_PORT" "$HOST"

# The HTTPS host: a certificate for it (every proxy serves the same), and for Remora an Ingress of
# its own with it (the plain host has none, so it is not redirected to HTTPS). KIND: ecdsa or rsa;
# the proxies read it when they start.
use_certificate() { # kind
  tls_certificate "$1" "$TLS_HOST" "$WORK"
  cat > "$WORK/manifests/bench-tls.yaml" <<YAML
apiVersion: v1
kind: Secret
metadata:
  name: bench-tls
type: kubernetes.io/tls
data:
  tls.crt: $(base64 -w0 < "$WORK/tls.crt")
  tls.key: $(base64 -w0 < "$WORK/tls.key")
---
$(sticky_ingress bench-tls "$TLS_HOST" bench-tls)
YAML
}
use_certificate ecdsa

# ingress-nginx's proxy headers, as HAProxy rules and nginx directives.
haproxy_headers() {
  [ "$HEADERS" = ingress-nginx ] || return 0
  cat <<'CFG'
  http-request set-header X-Request-ID %[uuid]
  http-request set-header X-Real-IP %[src]
  http-request set-header X-Forwarded-For %[src]
  http-request set-header X-Forwarded-Host %[req.hdr(host)]
  http-request set-header X-Forwarded-Port %[dst_port]
  http-request set-header X-Forwarded-Proto http
  http-request set-header X-Forwarded-Scheme http
CFG
}

nginx_headers() {
  [ "$HEADERS" = ingress-nginx ] || return 0
  cat <<'CFG'
      proxy_set_header X-Request-ID $request_id;
      proxy_set_header X-Real-IP $remote_addr;
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_set_header X-Forwarded-Host $host;
      proxy_set_header X-Forwarded-Port $server_port;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-Scheme $scheme;
CFG
}

haproxy_config() { # threads
  cat > "$WORK/haproxy.cfg" <<CFG
global
  nbthread $1
  maxconn 4096
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  option http-keep-alive
  http-reuse always
frontend bench
  bind 127.0.0.1:$HAPROXY_PORT
  default_backend pods
frontend bench_tls
  bind 127.0.0.1:$HAPROXY_TLS_PORT ssl crt $WORK/tls.pem alpn h2,http/1.1 ssl-min-ver TLSv1.3
  default_backend pods
backend pods
  balance roundrobin
  cookie SERVERID insert indirect nocache
$(haproxy_headers)
  server s1 127.0.0.11:$BACKEND_PORT cookie s1
  server s2 127.0.0.12:$BACKEND_PORT cookie s2
  server s3 127.0.0.13:$BACKEND_PORT cookie s3
CFG
}

relay_config() { # threads
  cat > "$WORK/relay.cfg" <<CFG
global
  nbthread $1
  maxconn 4096
defaults
  mode tcp
  timeout connect 5s
  timeout client 60s
  timeout server 60s
frontend relay
  bind 127.0.0.1:$RELAY_PORT
  default_backend pod
backend pod
  server s2 127.0.0.12:$BACKEND_PORT
CFG
}

# A location's proxying: to the pods, the session cookie, the request headers.
nginx_proxying() {
  cat <<'CFG'
      proxy_pass http://pods;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      add_header Set-Cookie $route_new_session;
CFG
  nginx_headers
}

nginx_config() { # workers
  mkdir -p "$WORK/nginx"
  cat > "$WORK/nginx.conf" <<CFG
worker_processes $1;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path $WORK/nginx;
  proxy_temp_path $WORK/nginx;
  fastcgi_temp_path $WORK/nginx;
  uwsgi_temp_path $WORK/nginx;
  scgi_temp_path $WORK/nginx;
  # A request without the cookie starts a session as HAProxy and Remora do: a new key, hashed to
  # a pod and set as the cookie; with it, the same pod again.
  map \$cookie_route \$route_key {
    "" \$request_id;
    default \$cookie_route;
  }
  map \$cookie_route \$route_new_session {
    "" "route=\$request_id; Path=/; HttpOnly";
    default "";
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
    listen 127.0.0.1:$NGINX_TLS_PORT ssl http2;
    ssl_certificate $WORK/tls.crt;
    ssl_certificate_key $WORK/tls.key;
    ssl_protocols TLSv1.3;
    location / {
$(nginx_proxying)
    }
    # The large variant's bodies, streamed both ways as Remora and HAProxy do.
    location /bytes/ {
$(nginx_proxying)
      proxy_buffering off;
      proxy_request_buffering off;
      client_max_body_size 8m;
    }
  }
}
CFG
}

# Something else on a proxy's port would answer in its place: refuse to measure it.
port_free() { # port
  if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
    echo "127.0.0.1:$1 is already in use: stop what listens there (or set *_PORT)" >&2
    exit 1
  fi
}

start_proxies() { # workers
  local w=$1
  for p in "$REMORA_PORT" "$HAPROXY_PORT" "$NGINX_PORT" "$RELAY_PORT" "$REMORA_TLS_PORT" \
    "$HAPROXY_TLS_PORT" "$NGINX_TLS_PORT"; do port_free "$p"; done
  "${PROXY_RUN[@]}" "$REMORA" serve --manifests "$WORK/manifests" --workers "$w" \
    --listen-http "127.0.0.1:$REMORA_PORT" --listen-https "127.0.0.1:$REMORA_TLS_PORT" \
    --admin 127.0.0.1:0 --keepalive-requests 1000000 \
    >/dev/null 2>"$WORK/remora.log" &
  REMORA_PID=$!
  haproxy_config "$w"
  "${PROXY_RUN[@]}" haproxy -f "$WORK/haproxy.cfg" -db >/dev/null 2>"$WORK/haproxy.log" &
  HAPROXY_PID=$!
  nginx_config "$w"
  "${PROXY_RUN[@]}" nginx -c "$WORK/nginx.conf" -g "daemon off;" 2>"$WORK/nginx.log" &
  NGINX_PID=$!
  relay_config "$w"
  "${PROXY_RUN[@]}" haproxy -f "$WORK/relay.cfg" -db >/dev/null 2>"$WORK/relay.log" &
  RELAY_PID=$!
  PIDS+=("$REMORA_PID" "$HAPROXY_PID" "$NGINX_PID" "$RELAY_PID")
  wait_port 127.0.0.1 "$REMORA_PORT"; wait_port 127.0.0.1 "$HAPROXY_PORT"; wait_port 127.0.0.1 "$NGINX_PORT"
  wait_port 127.0.0.1 "$RELAY_PORT"
  wait_port 127.0.0.1 "$REMORA_TLS_PORT"; wait_port 127.0.0.1 "$HAPROXY_TLS_PORT"
  wait_port 127.0.0.1 "$NGINX_TLS_PORT"
  local name pid
  for name in remora haproxy nginx relay; do
    case $name in
      remora) pid=$REMORA_PID ;; haproxy) pid=$HAPROXY_PID ;; nginx) pid=$NGINX_PID ;; relay) pid=$RELAY_PID ;;
    esac
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "$name exited at start:" >&2
      cat "$WORK/$name.log" >&2
      exit 1
    fi
  done
}

stop_proxies() {
  kill "$REMORA_PID" "$HAPROXY_PID" "$NGINX_PID" "$RELAY_PID" 2>/dev/null || true
  wait "$REMORA_PID" "$HAPROXY_PID" "$NGINX_PID" "$RELAY_PID" 2>/dev/null || true
}

# The processes doing a proxy's work: nginx's are its worker processes.
proxy_pids() { # proxy
  case $1 in
    remora) echo "$REMORA_PID" ;;
    haproxy) echo "$HAPROXY_PID" ;;
    nginx) echo "$NGINX_PID" $(pgrep -P "$NGINX_PID" || true) ;;
    tcp-relay) echo "$RELAY_PID" ;;
    direct) echo "${POD_PIDS[1]}" ;;
  esac
}

# A pinned session cookie for each proxy, at URL (url_of).
session_cookie() { # proxy url host
  case $1 in
    remora) curl -sk -o /dev/null -c - -H "Host: $3" "$2" | awk '$6 ~ /route$/ { print "route=" $7 }' ;;
    haproxy) echo "SERVERID=s2" ;;
    nginx) echo "route=bench-session-1" ;;
    tcp-relay) echo "" ;;
  esac
}

# Run a load generator (its output in $WORK/load.out) where LOAD_RUN says, and print the CPU ticks
# the proxy's processes spent meanwhile.
load_ticks() { # proxy command...
  local pids before after
  read -r -a pids < <(proxy_pids "$1")
  shift
  before=$(cpu_ticks "${pids[@]}")
  "${LOAD_RUN[@]}" "$@" > "$WORK/load.out" || echo "  ($1 exited with status $?)" >&2
  after=$(cpu_ticks "${pids[@]}")
  echo $((after - before))
}

# COUNT things in TICKS of CPU: "per_cpu_second cpu_us_each".
per_cpu() { # count ticks
  awk -v n="$1" -v t="$2" -v hz="$CLK_TCK" 'BEGIN {
    if (n > 0 && t > 0) printf "%.0f %.2f\n", n * hz / t, t * 1e6 / hz / n; else print "0 0" }'
}

# A proxy's URL: plain HTTP at 127.0.0.1, HTTPS at the TLS host (so that it is the SNI).
url_of() { # proxy http|https [path]
  if [ "$2" = https ]; then
    echo "https://$TLS_HOST:${TLS_PORT[$1]}${3:-/}"
  else
    echo "http://127.0.0.1:${HTTP_PORT[$1]}${3:-/}"
  fi
}

# wrk (extra options after the cookie): "req/s p50_ms p99_ms cpu_us_per_request requests
# non_2xx_3xx".
measure() { # proxy url host cookie-or-empty [wrk options...]
  local args=(-t1 "-c$CONNECTIONS" "-d${DURATION}s" --latency -H "Host: $3")
  [ -n "$4" ] && args+=(-H "Cookie: $4")
  args+=("${@:5}")
  local ticks
  ticks=$(load_ticks "$1" wrk "${args[@]}" "$2")
  awk -v ticks="$ticks" -v hz="$CLK_TCK" '
    function ms(v) { if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; if (v ~ /s$/) return v*1000; return v }
    /requests in/ { n = $1 }
    /Requests\/sec/ { rps = $2 }
    /Non-2xx or 3xx responses/ { bad = $5 }
    $1 == "50.000%" || $1 == "50%" { p50 = ms($2) }
    $1 == "99.000%" || $1 == "99%" { p99 = ms($2) }
    END { printf "%.0f %.2f %.2f %.2f %d %d\n", rps, p50, p99, (n > 0 ? ticks * 1e6 / hz / n : 0), n, bad }' \
    "$WORK/load.out"
}

run_variant() { # title workers sticky(1|0) scheme(http|https)
  local title=$1 workers=$2 sticky=$3 scheme=${4:-http}
  local proxies=(remora haproxy nginx tcp-relay)
  place "$workers"
  start_proxies "$workers"
  local host=$HOST
  if [ "$scheme" = https ]; then
    proxies=(remora haproxy nginx)
    host=$TLS_HOST
  fi
  declare -A best_rps best_p50 best_p99 best_cpu
  best_rps[tcp-relay]=0
  for p in "${proxies[@]}"; do best_rps[$p]=0; done
  for round in $(seq 1 "$ROUNDS"); do
    for p in "${proxies[@]}"; do
      local cookie="" url
      url=$(url_of "$p" "$scheme")
      [ "$sticky" = 1 ] && cookie=$(session_cookie "$p" "$url" "$host")
      read -r rps p50 p99 cpu _ < <(measure "$p" "$url" "$host" "$cookie")
      echo "  round $round $p: $rps req/s, p50 ${p50} ms, p99 ${p99} ms, CPU ${cpu} us/request" >&2
      # Keep each proxy's best round: the highest throughput (the machine is shared).
      if [ "$rps" -gt "${best_rps[$p]}" ]; then
        best_rps[$p]=$rps; best_p50[$p]=$p50; best_p99[$p]=$p99; best_cpu[$p]=$cpu
      fi
    done
  done
  stop_proxies
  echo
  echo "== $title (best of $ROUNDS rounds of ${DURATION}s, $CONNECTIONS connections; $PLACEMENT)"
  printf "%-10s %10s %9s %9s %12s\n" proxy "req/s" "p50 ms" "p99 ms" "CPU us/req"
  for p in "${proxies[@]}"; do
    printf "%-10s %10s %9s %9s %12s\n" "$p" "${best_rps[$p]}" "${best_p50[$p]}" "${best_p99[$p]}" "${best_cpu[$p]}"
  done
  local better=haproxy
  [ "${best_rps[nginx]}" -gt "${best_rps[haproxy]}" ] && better=nginx
  awk -v r="${best_rps[remora]}" -v b="${best_rps[$better]}" -v n="$better" \
      -v rp="${best_p99[remora]}" -v hp="${best_p99[haproxy]}" -v t="${best_rps[tcp-relay]}" \
      -v rc="${best_cpu[remora]}" -v hc="${best_cpu[haproxy]}" -v nc="${best_cpu[nginx]}" \
    'BEGIN {
      if (t > 0) printf "remora / %s req/s: %.2fx (tcp-relay / %s: %.2fx)   remora / haproxy p99: %.2fx\n", n, r / b, n, t / b, rp / hp
      else printf "remora / %s req/s: %.2fx   remora / haproxy p99: %.2fx\n", n, r / b, rp / hp
      if (rc > 0) printf "requests per CPU second: remora / haproxy %.2fx, remora / nginx %.2fx\n", hc / rc, nc / rc
    }'
}

# handshake: a new TLS connection per request, full (ECDSA P-256, RSA-2048) and resumed;
# handshakes per CPU-second.
handshake_variant() {
  local proxies=(remora haproxy nginx) kind mode p round ticks url cookie
  local conns reused failed not_ok rate cpu_s cpu_us
  declare -A best=() best_rate=() best_reused=()
  place 1
  for kind in ecdsa rsa; do
    use_certificate "$kind"
    start_proxies 1
    local modes=("$kind")
    [ "$kind" = ecdsa ] && modes+=(resumed)
    for round in $(seq 1 "$ROUNDS"); do
      for p in "${proxies[@]}"; do
        url=$(url_of "$p" https)
        cookie=$(session_cookie "$p" "$url" "$TLS_HOST")
        for mode in "${modes[@]}"; do
          local resume=()
          [ "$mode" = resumed ] && resume=(--resume)
          ticks=$(load_ticks "$p" timeout $((DURATION + 30)) python3 bench/tls_connect.py 127.0.0.1 \
            "${TLS_PORT[$p]}" "$TLS_HOST" "$DURATION" "$HANDSHAKE_CLIENTS" "${resume[@]}" \
            --header "Cookie: $cookie")
          read -r conns reused failed not_ok < "$WORK/load.out"
          read -r cpu_s cpu_us < <(per_cpu "$conns" "$ticks")
          rate=$(awk -v n="$conns" -v d="$DURATION" 'BEGIN { printf "%.0f", n / d }')
          echo "  round $round $p $mode: $rate connections/s ($reused resumed, $failed failed," \
            "$not_ok not 200), $cpu_s per CPU-second, $cpu_us us each" >&2
          [ "$failed" = 0 ] && [ "$not_ok" = 0 ] ||
            echo "  ($p $mode: $failed connections failed, $not_ok answers not 200)" >&2
          if greater "$cpu_s" "${best[$p,$mode]:-0}"; then
            best[$p,$mode]=$cpu_s; best_rate[$p,$mode]=$rate
            best_reused[$p,$mode]=$(awk -v r="$reused" -v n="$conns" 'BEGIN { printf "%.0f%%", n ? 100 * r / n : 0 }')
          fi
        done
      done
    done
    stop_proxies
  done
  use_certificate ecdsa
  echo
  echo "== New TLS 1.3 connections, one GET each (Connection: close), pinned session, 1 worker each"
  echo "   (best of $ROUNDS rounds of ${DURATION}s, $HANDSHAKE_CLIENTS client processes; $PLACEMENT)"
  printf "%-8s %22s %22s %30s\n" "" "full, ECDSA P-256" "full, RSA-2048" "resumed (ECDSA P-256)"
  printf "%-8s %10s %11s %10s %11s %10s %11s %7s\n" proxy "conn/s" "per CPU-s" "conn/s" "per CPU-s" \
    "conn/s" "per CPU-s" resumed
  for p in "${proxies[@]}"; do
    printf "%-8s %10s %11s %10s %11s %10s %11s %7s\n" "$p" "${best_rate[$p,ecdsa]:--}" "${best[$p,ecdsa]:--}" \
      "${best_rate[$p,rsa]:--}" "${best[$p,rsa]:--}" "${best_rate[$p,resumed]:--}" "${best[$p,resumed]:--}" \
      "${best_reused[$p,resumed]:--}"
  done
  for mode in ecdsa rsa resumed; do
    printf "handshakes per CPU-second, %-8s " "$mode:"
    versus_better "${best[remora,$mode]:--}" "${best[haproxy,$mode]:--}" "${best[nginx,$mode]:--}"
  done
}

# h2: HTTP/2 over TLS, many streams per connection; requests per CPU-second.
h2_variant() {
  local proxies=(remora haproxy nginx) p round ticks url cookie
  local ok rps proto ok2xx cpu_s cpu_us p50 p99 p999
  declare -A best=() best_rps=() best_us=() best_p50=() best_p99=()
  place 1
  start_proxies 1
  for round in $(seq 1 "$ROUNDS"); do
    for p in "${proxies[@]}"; do
      url=$(url_of "$p" https)
      cookie=$(session_cookie "$p" "$url" "$TLS_HOST")
      : > "$WORK/latency.log"
      ticks=$(load_ticks "$p" timeout $((DURATION + 30)) h2load -c "$H2_CONNECTIONS" -m "$H2_STREAMS" \
        -D "$DURATION" -H "Cookie: $cookie" --connect-to="127.0.0.1:${TLS_PORT[$p]}" \
        --log-file "$WORK/latency.log" "$url")
      read -r ok rps proto ok2xx < <(h2load_summary "$WORK/load.out")
      read -r cpu_s cpu_us < <(per_cpu "$ok2xx" "$ticks")
      read -r p50 p99 p999 < <(percentiles "$WORK/latency.log")
      echo "  round $round $p: $rps req/s over $proto ($ok succeeded, $ok2xx 2xx), $cpu_s per" \
        "CPU-second, p50 $p50 ms, p99 $p99 ms" >&2
      [ "$proto" = h2 ] || echo "  ($p did not negotiate h2: $proto)" >&2
      if greater "$cpu_s" "${best[$p]:-0}"; then
        best[$p]=$cpu_s; best_rps[$p]=$rps; best_us[$p]=$cpu_us; best_p50[$p]=$p50; best_p99[$p]=$p99
      fi
    done
  done
  stop_proxies
  echo
  echo "== HTTP/2 over TLS 1.3 (ALPN h2), $H2_CONNECTIONS connections x $H2_STREAMS streams, pinned session, 1 worker each"
  echo "   (best of $ROUNDS rounds of ${DURATION}s; $PLACEMENT)"
  printf "%-8s %10s %11s %11s %9s %9s\n" proxy "req/s" "per CPU-s" "CPU us/req" "p50 ms" "p99 ms"
  for p in "${proxies[@]}"; do
    printf "%-8s %10s %11s %11s %9s %9s\n" "$p" "${best_rps[$p]:--}" "${best[$p]:--}" "${best_us[$p]:--}" \
      "${best_p50[$p]:--}" "${best_p99[$p]:--}"
  done
  printf "requests per CPU-second: "
  versus_better "${best[remora]:--}" "${best[haproxy]:--}" "${best[nginx]:--}"
}

# large: 1 MiB responses and 1 MiB uploads over plain HTTP; MiB per CPU-second.
large_variant() {
  local proxies=(remora haproxy nginx tcp-relay) p round dir url cookie
  local rps cpu n bad mib_cpu
  declare -A best=() best_rate=()
  printf 'wrk.method = "POST"\nwrk.body = string.rep("u", %d)\n' "$LARGE_BYTES" > "$WORK/upload.lua"
  place 1
  start_proxies 1
  for round in $(seq 1 "$ROUNDS"); do
    for p in "${proxies[@]}"; do
      cookie=$(session_cookie "$p" "$(url_of "$p" http)" "$HOST")
      for dir in download upload; do
        if [ "$dir" = download ]; then
          url=$(url_of "$p" http "/bytes/$LARGE_BYTES")
          read -r rps _ _ cpu n bad < <(measure "$p" "$url" "$HOST" "$cookie" "-c$LARGE_CONNECTIONS")
        else
          url=$(url_of "$p" http /bytes/0)
          read -r rps _ _ cpu n bad < <(measure "$p" "$url" "$HOST" "$cookie" "-c$LARGE_CONNECTIONS" \
            -s "$WORK/upload.lua")
        fi
        # Each request moved LARGE_BYTES: MiB per CPU-second from CPU microseconds per request.
        mib_cpu=$(awk -v us="$cpu" -v b="$LARGE_BYTES" 'BEGIN { printf "%.0f", (us > 0 ? 1e6 / us * b / 1048576 : 0) }')
        echo "  round $round $p $dir: $rps x $LARGE_BYTES bytes/s, $mib_cpu MiB per CPU-second," \
          "$cpu us per request" >&2
        [ "$bad" = 0 ] || echo "  ($p $dir: $bad of $n answers not 2xx/3xx)" >&2
        if greater "$mib_cpu" "${best[$p,$dir]:-0}"; then
          best[$p,$dir]=$mib_cpu
          best_rate[$p,$dir]=$(awk -v r="$rps" -v b="$LARGE_BYTES" 'BEGIN { printf "%.0f", r * b / 1048576 }')
        fi
      done
    done
  done
  stop_proxies
  echo
  echo "== $((LARGE_BYTES / 1048576)) MiB bodies over plain HTTP/1.1, $LARGE_CONNECTIONS connections, pinned session, 1 worker each"
  echo "   (best of $ROUNDS rounds of ${DURATION}s; $PLACEMENT)"
  printf "%-10s %24s %24s\n" "" "responses (GET)" "uploads (POST)"
  printf "%-10s %10s %13s %10s %13s\n" proxy "MiB/s" "MiB per CPU-s" "MiB/s" "MiB per CPU-s"
  for p in "${proxies[@]}"; do
    printf "%-10s %10s %13s %10s %13s\n" "$p" "${best_rate[$p,download]:--}" "${best[$p,download]:--}" \
      "${best_rate[$p,upload]:--}" "${best[$p,upload]:--}"
  done
  for dir in download upload; do
    printf "bytes per CPU-second, %-9s " "$dir:"
    versus_better "${best[remora,$dir]:--}" "${best[haproxy,$dir]:--}" "${best[nginx,$dir]:--}"
  done
}

# rate: latency at 50% and 90% of the slowest proxy's closed-loop req/s (plain HTTP, pinned).
rate_variant() {
  local proxies=(remora haproxy nginx) p round ticks pct slowest="" per_client offered
  local ok rps ok2xx cpu_s cpu_us p50 p99 p999
  declare -A cookie=()
  place 1
  start_proxies 1
  for p in "${proxies[@]}"; do
    cookie[$p]=$(session_cookie "$p" "$(url_of "$p" http)" "$HOST")
    read -r rps _ < <(DURATION=$RATE_PROBE measure "$p" "$(url_of "$p" http)" "$HOST" "${cookie[$p]}")
    echo "  closed loop, $p: $rps req/s" >&2
    if [ -z "$slowest" ] || [ "$rps" -lt "$slowest" ]; then slowest=$rps; fi
  done
  for pct in 50 90; do
    per_client=$((slowest * pct / 100 / CONNECTIONS))
    [ "$per_client" -ge 1 ] || per_client=1
    offered=$((per_client * CONNECTIONS))
    declare -A best_p99=() row=()
    for round in $(seq 1 "$ROUNDS"); do
      for p in "${proxies[@]}" direct; do
        local to="127.0.0.1:${HTTP_PORT[$p]:-}" with_cookie=()
        [ "$p" = direct ] && to="127.0.0.12:$BACKEND_PORT"
        [ -n "${cookie[$p]:-}" ] && with_cookie=(-H "Cookie: ${cookie[$p]}")
        : > "$WORK/latency.log"
        # A number of requests rather than -D, on which h2load 1.52 --h1 never ends; the host in
        # the URL (h2load --h1 would send -H "Host: ..." as a second Host header).
        ticks=$(load_ticks "$p" timeout $((DURATION * 2 + 30)) h2load --h1 -c "$CONNECTIONS" \
          --rps="$per_client" -n $((offered * DURATION)) "${with_cookie[@]}" \
          --connect-to="$to" --log-file "$WORK/latency.log" "http://$HOST:${to##*:}/")
        read -r ok rps _ ok2xx < <(h2load_summary "$WORK/load.out")
        read -r cpu_s cpu_us < <(per_cpu "$ok2xx" "$ticks")
        read -r p50 p99 p999 < <(percentiles "$WORK/latency.log")
        echo "  $pct% round $round $p: $rps req/s ($ok2xx 2xx of $ok), p50 $p50 ms, p99 $p99 ms," \
          "p99.9 $p999 ms, $cpu_us CPU us/request" >&2
        [ "$ok2xx" -gt 0 ] || echo "  ($p: no request answered 2xx)" >&2
        # The round with the lowest p99 (the machine is shared).
        if [ -z "${best_p99[$p]:-}" ] || greater "${best_p99[$p]:--}" "$p99"; then
          best_p99[$p]=$p99; row[$p]="$rps $p50 $p99 $p999 $cpu_us"
        fi
      done
    done
    echo
    echo "== $pct% of the slowest proxy's $slowest req/s: $offered req/s offered ($CONNECTIONS connections x $per_client/s)"
    echo "   plain HTTP/1.1, pinned session, 1 worker each (lowest p99 of $ROUNDS rounds of ${DURATION}s; $PLACEMENT)"
    printf "%-8s %10s %9s %9s %9s %11s\n" proxy "req/s" "p50 ms" "p99 ms" "p99.9 ms" "CPU us/req"
    for p in "${proxies[@]}" direct; do
      # shellcheck disable=SC2086 # the row's fields
      printf "%-8s %10s %9s %9s %9s %11s\n" "$p" ${row[$p]:-- - - - -}
    done
    awk -v r="${best_p99[remora]:--}" -v h="${best_p99[haproxy]:--}" 'BEGIN {
      printf "remora p99 <= haproxy p99: %s (%.2f / %.2f ms)\n", (r <= h ? "yes" : "no"), r, h }'
    unset best_p99 row
  done
  stop_proxies
}

echo "Remora $("$REMORA" --version | awk '{print $2}'), $(haproxy -v | head -1 | awk '{print "HAProxy " $3}'), $(nginx -v 2>&1 | sed 's/.*nginx\//nginx /'), $(nproc) cores, HEADERS=$HEADERS, PIN=$PIN"
for v in $VARIANTS; do
  case $v in
    http)
      run_variant "pinned session, 1 worker each" 1 1
      run_variant "new sessions (no cookie), 1 worker each" 1 0
      run_variant "pinned session, 2 workers each" 2 1
      ;;
    https)
      run_variant "HTTPS (TLS 1.3, kept alive), pinned session, 1 worker each" 1 1 https
      run_variant "HTTPS (TLS 1.3, kept alive), new sessions, 1 worker each" 1 0 https
      ;;
    handshake) handshake_variant ;;
    h2) h2_variant ;;
    large) large_variant ;;
    rate) rate_variant ;;
    *) echo "unknown variant $v (http, https, handshake, h2, large, rate)" >&2; exit 1 ;;
  esac
done
