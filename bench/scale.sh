#!/usr/bin/env bash
# Scale: a cluster of 10,000 sticky Ingresses, 10,000 Services and 100,000 endpoints, served by
# `remora serve` (from files) and by `remora controller` (from the tests' fake API server), while
# 100 other EndpointSlices change per second (issue 19).
#
# The benchmark is the ignored test crates/remora/tests/scale.rs (it reuses the tests' pods and
# fake API server); this builds it in release and runs it. Per mode it prints: initial load
# (process start to /readyz 200), Remora's RSS after load and its maximum and last value over
# the churn, the time from a change (file saved, object written to the API server) to the first
# request routed by it (p50, p99, max; the host asked every millisecond), Remora's CPU seconds
# per change, and whether any of the sticky sessions on unchanged Services moved (it fails if
# one did).
#
#   bench/scale.sh                                  # the full run: about 5 minutes
#   SCALE_INGRESSES=1000 CHURN_SECONDS=10 bench/scale.sh  # a quick one
#   SCALE_MODES=files REMORA_BINARY=/tmp/old/remora bench/scale.sh  # another build, one mode
#
# Sizes: SCALE_INGRESSES (10000: Ingresses = Services = EndpointSlices), SCALE_ENDPOINTS (10 per
# EndpointSlice), CHURN_PER_SEC (100), CHURN_SECONDS (60), SCALE_CHANGES (60 measured changes
# spread over the churn), SCALE_SESSIONS (100), SCALE_MODES (files,controller). Everything runs
# on loopback (endpoints that get no traffic are addresses of 127.240.0.0/15 where nothing
# listens) and stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."

ulimit -n "$(ulimit -Hn)"
export SCALE_INGRESSES=${SCALE_INGRESSES:-10000}
export SCALE_ENDPOINTS=${SCALE_ENDPOINTS:-10}
export CHURN_PER_SEC=${CHURN_PER_SEC:-100}
export CHURN_SECONDS=${CHURN_SECONDS:-60}
export SCALE_CHANGES=${SCALE_CHANGES:-60}
export SCALE_SESSIONS=${SCALE_SESSIONS:-100}
export SCALE_MODES=${SCALE_MODES:-files,controller}

cargo build --release -q -p remora
cargo test --release -q -p remora --test scale --no-run
echo "load before: $(uptime)"
# The test's own timeouts bound every wait; this bounds the whole run besides.
status=0
timeout $((CHURN_SECONDS * 4 + 900)) \
  cargo test --release -q -p remora --test scale -- --ignored --nocapture || status=$?
echo "load after: $(uptime)"
exit "$status"
