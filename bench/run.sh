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
# the three proxies' TLS listeners (no tcp-relay row: the pods speak no TLS).
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
HOST=bench.example.com
TLS_HOST=bench-tls.example.com
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
for tool in haproxy nginx wrk curl openssl; do
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
# its own with it (the plain host has none, so it is not redirected to HTTPS).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj "/CN=$TLS_HOST" -addext "subjectAltName=DNS:$TLS_HOST" \
  -keyout "$WORK/tls.key" -out "$WORK/tls.crt" 2>/dev/null
cat "$WORK/tls.crt" "$WORK/tls.key" > "$WORK/tls.pem"
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
  bind 127.0.0.1:$HAPROXY_TLS_PORT ssl crt $WORK/tls.pem alpn http/1.1 ssl-min-ver TLSv1.3
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

nginx_config() { # workers
  mkdir -p "$WORK/nginx"
  cat > "$WORK/nginx.conf" <<CFG
worker_processes $1;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
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
    listen 127.0.0.1:$NGINX_TLS_PORT ssl;
    ssl_certificate $WORK/tls.crt;
    ssl_certificate_key $WORK/tls.key;
    ssl_protocols TLSv1.3;
    location / {
      proxy_pass http://pods;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$host;
      add_header Set-Cookie \$route_new_session;
$(nginx_headers)
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
    --admin 127.0.0.1:0 \
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
  esac
}

# A pinned session cookie for each proxy, at URL (http:// or https://127.0.0.1:PORT/).
session_cookie() { # proxy url host
  case $1 in
    remora) curl -sk -o /dev/null -c - -H "Host: $3" "$2" | awk '$6 ~ /route$/ { print "route=" $7 }' ;;
    haproxy) echo "SERVERID=s2" ;;
    nginx) echo "route=bench-session-1" ;;
    tcp-relay) echo "" ;;
  esac
}

# wrk: "req/s p50_ms p99_ms cpu_us_per_request".
measure() { # proxy url host cookie-or-empty
  local args=(-t1 "-c$CONNECTIONS" "-d${DURATION}s" --latency -H "Host: $3")
  [ -n "$4" ] && args+=(-H "Cookie: $4")
  local pids before after out
  read -r -a pids < <(proxy_pids "$1")
  before=$(cpu_ticks "${pids[@]}")
  out=$("${LOAD_RUN[@]}" wrk "${args[@]}" "$2")
  after=$(cpu_ticks "${pids[@]}")
  echo "$out" | awk -v ticks=$((after - before)) -v hz="$CLK_TCK" '
    function ms(v) { if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; if (v ~ /s$/) return v*1000; return v }
    /requests in/ { n = $1 }
    /Requests\/sec/ { rps = $2 }
    $1 == "50.000%" || $1 == "50%" { p50 = ms($2) }
    $1 == "99.000%" || $1 == "99%" { p99 = ms($2) }
    END { printf "%.0f %.2f %.2f %.2f\n", rps, p50, p99, (n > 0 ? ticks * 1e6 / hz / n : 0) }'
}

run_variant() { # title workers sticky(1|0) scheme(http|https)
  local title=$1 workers=$2 sticky=$3 scheme=${4:-http}
  local proxies=(remora haproxy nginx tcp-relay)
  place "$workers"
  start_proxies "$workers"
  declare -A port=([remora]=$REMORA_PORT [haproxy]=$HAPROXY_PORT [nginx]=$NGINX_PORT [tcp-relay]=$RELAY_PORT)
  local host=$HOST
  if [ "$scheme" = https ]; then
    proxies=(remora haproxy nginx)
    port=([remora]=$REMORA_TLS_PORT [haproxy]=$HAPROXY_TLS_PORT [nginx]=$NGINX_TLS_PORT)
    host=$TLS_HOST
  fi
  declare -A best_rps best_p50 best_p99 best_cpu
  best_rps[tcp-relay]=0
  for p in "${proxies[@]}"; do best_rps[$p]=0; done
  for round in $(seq 1 "$ROUNDS"); do
    for p in "${proxies[@]}"; do
      local cookie="" url="$scheme://127.0.0.1:${port[$p]}/"
      [ "$sticky" = 1 ] && cookie=$(session_cookie "$p" "$url" "$host")
      read -r rps p50 p99 cpu < <(measure "$p" "$url" "$host" "$cookie")
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
    *) echo "unknown variant $v (http, https)" >&2; exit 1 ;;
  esac
done
