# Shared by the benchmark scripts (sourced): a work directory and the processes started, both
# cleaned up on exit; waiting for a port to listen; the three pods and Remora's manifests for them;
# CPU time of processes.
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
