# Shared by the benchmark scripts (sourced): a work directory and the processes started, both
# cleaned up on exit; waiting for a port to listen; the three pods and Remora's manifests for them;
# CPU time of processes; certificates; reading h2load's output and comparing figures.
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

wait_port() { # host port
  for _ in $(seq 1 200); do
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "nothing listens on $1:$2" >&2; exit 1
}

# Three pods (`remora whoami`, BINARY) on 127.0.0.11-13:PORT, their pids in POD_PIDS.
start_pods() { # binary port
  POD_PIDS=()
  for i in 1 2 3; do
    MY_POD_NAME="bench-pod-$i" "$1" whoami --listen "127.0.0.1$i:$2" >/dev/null 2>&1 &
    PIDS+=($!)
    POD_PIDS+=($!)
  done
  for i in 1 2 3; do wait_port "127.0.0.1$i" "$2"; done
}

# Remora's manifests in $WORK/manifests: the sticky Ingress (cookie `route`) of HOST to the
# Service `bench`, whose EndpointSlice lists the three pods at PORT.
write_manifests() { # port host
  mkdir -p "$WORK/manifests"
  cat > "$WORK/manifests/bench.yaml" <<YAML
apiVersion: v1
kind: Service
metadata:
  name: bench
spec:
  ports:
  - port: 80
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: bench-1
  labels:
    kubernetes.io/service-name: bench
addressType: IPv4
ports:
- port: $1
endpoints:
- addresses: ["127.0.0.11"]
- addresses: ["127.0.0.12"]
- addresses: ["127.0.0.13"]
---
$(sticky_ingress bench "$2")
YAML
}

# The sticky Ingress (cookie `route`) NAME of HOST to the Service `bench`; with SECRET, HTTPS with
# that TLS Secret.
sticky_ingress() { # name host [secret]
  cat <<YAML
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: $1
  annotations:
    nginx.ingress.kubernetes.io/affinity: cookie
    nginx.ingress.kubernetes.io/session-cookie-name: route
spec:
YAML
  [ -n "${3:-}" ] && printf '  tls:\n  - hosts: [%s]\n    secretName: %s\n' "$2" "$3"
  cat <<YAML
  rules:
  - host: $2
    http:
      paths:
      - path: /
        pathType: Prefix
        backend:
          service:
            name: bench
            port:
              number: 80
YAML
}

# User + system CPU time of these processes (all threads), in clock ticks.
cpu_ticks() { # pids...
  local total=0 t
  for p in "$@"; do
    t=$(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null || echo 0)
    total=$((total + t))
  done
  echo "$total"
}
CLK_TCK=$(getconf CLK_TCK)

# A self-signed certificate for HOST: DIR/tls.crt, DIR/tls.key and both in DIR/tls.pem (HAProxy's
# form). KIND: ecdsa (P-256) or rsa (2048 bits).
tls_certificate() { # kind host dir
  local key
  case $1 in
    ecdsa) key=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1) ;;
    rsa) key=(-newkey rsa:2048) ;;
    *) echo "tls_certificate: ecdsa or rsa, not $1" >&2; exit 1 ;;
  esac
  openssl req -x509 "${key[@]}" -nodes -days 2 -subj "/CN=$2" -addext "subjectAltName=DNS:$2" \
    -keyout "$3/tls.key" -out "$3/tls.crt" 2>/dev/null
  cat "$3/tls.crt" "$3/tls.key" > "$3/tls.pem"
}

# "p50 p99 p99.9" in ms (nearest rank) of the answered requests in an h2load --log-file (columns:
# start, status, microseconds to the end of the response; status -1 for a failed request).
percentiles() { # file
  awk '$2 > 0 { print $3 }' "$1" | sort -n | awk '
    { v[NR] = $1 }
    function at(q,  i) { i = q * NR; i = (i > int(i)) ? int(i) + 1 : int(i); if (i < 1) i = 1; return v[i] / 1000 }
    END { if (NR == 0) print "- - -"; else printf "%.2f %.2f %.2f\n", at(0.50), at(0.99), at(0.999) }'
}

# h2load's summary: "succeeded req/s protocol 2xx" (protocol: h2 or http/1.1 as negotiated, "-"
# over plain HTTP/1.1).
h2load_summary() { # file
  awk '/^finished in/ { rps = $4 } /^requests:/ { ok = $8 } /^status codes:/ { s2 = $3 }
    /^Application protocol:/ { proto = $3 }
    END { printf "%d %.0f %s %d\n", ok, rps, (proto != "" ? proto : "-"), s2 }' "$1"
}

# Whether A > B, for decimals.
greater() { # a b
  awk -v a="$1" -v b="$2" 'BEGIN { exit !(a > b) }'
}

# "remora / <the better of haproxy and nginx> Nx" for a figure where higher is better.
versus_better() { # remora haproxy nginx
  awk -v r="$1" -v h="$2" -v n="$3" 'BEGIN {
    b = (h > n) ? h : n; w = (h > n) ? "haproxy" : "nginx"
    printf "remora / %s (the better of haproxy and nginx): %.2fx\n", w, (b > 0 ? r / b : 0) }'
}
