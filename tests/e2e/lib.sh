# Shared helpers for the end-to-end tests: a private temporary directory removed on exit, and
# daemons started in the background that are always stopped on exit, even when a test fails.
# Source it; set -euo pipefail is the caller's.

E2E_PIDS=()
E2E_DIR=$(mktemp -d /tmp/tessera-e2e-XXXXXX)

e2e_cleanup() {
  local rc=$?
  for pid in "${E2E_PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${E2E_PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  if [[ $rc -ne 0 ]]; then
    echo "--- test failed (rc=$rc); logs:" >&2
    for log in "$E2E_DIR"/*.log; do
      [[ -f $log ]] && { echo "--- $log" >&2; tail -n 40 "$log" >&2; }
    done
  fi
  rm -rf "$E2E_DIR"
  exit "$rc"
}
trap e2e_cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# A free TCP port on 127.0.0.1 (racy in theory, fine for tests on one machine).
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_for DESCRIPTION SECONDS COMMAND...: retries COMMAND every 0.1 s.
wait_for() {
  local what=$1 secs=$2
  shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || fail "timed out after ${secs}s waiting for $what"
    sleep 0.1
  done
}
