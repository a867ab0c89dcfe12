#!/usr/bin/env bash
# The README's first command, ./quickstart.sh, with the binaries of this build (install and build
# skipped) and a private state directory, as if run by `sudo` from uid 65534: twice (the second
# run stops the first run's daemons and resumes the agent without a new join token; both end in
# the same success output: the user's SPIFFE ID, read back by openssl, and openssl verify's OK),
# then `stop` leaves no process and no socket, and `clean` removes the state. A taken
# TESSERA_QUICKSTART_PORT is a clear error.
# Usage: quickstart_test.sh <tessera-server> <tessera-agent>
set -euo pipefail
SERVER=$1
AGENT=$2
QUICKSTART=$(cd "$(dirname "$0")/../.." && pwd)/quickstart.sh
source "$(dirname "$0")/lib.sh"
# The workload user (nobody) must reach the agent's socket below the state directory.
chmod 755 "$E2E_DIR"

mkdir "$E2E_DIR/bin"
ln -s "$(realpath "$SERVER")" "$E2E_DIR/bin/tessera-server"
ln -s "$(realpath "$AGENT")" "$E2E_DIR/bin/tessera-agent"
STATE=$E2E_DIR/state
export TESSERA_QUICKSTART_BIN_DIR=$E2E_DIR/bin TESSERA_QUICKSTART_STATE_DIR=$STATE
export SUDO_UID=65534 SUDO_USER=nobody
ID=spiffe://example.org/user/nobody

qs_cleanup() {
  local rc=$?
  "$QUICKSTART" stop >/dev/null 2>&1 || true
  if [[ $rc -ne 0 ]]; then
    for log in "$E2E_DIR"/*.txt "$STATE"/*.log; do
      [[ -f $log ]] && { echo "--- $log" >&2; tail -n 40 "$log" >&2; }
    done
  fi
  # e2e_cleanup takes the test's status from $?; set -e must not end the trap on it.
  set +e
  (exit "$rc")
  e2e_cleanup
}
trap qs_cleanup EXIT

pids() { cat "$STATE/server.pid" "$STATE/agent.pid"; }
# The success block: everything from "It works." on, without what differs on every fetch.
success_block() { sed -n '/^It works\./,$p' "$1" | grep -v -e '^  expires' -e '^  JWT-SVID'; }

# A port that is taken is refused before anything starts.
python3 -c '
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
print(s.getsockname()[1], flush=True); time.sleep(60)' >"$E2E_DIR/busy.txt" &
E2E_PIDS+=("$!")
wait_for "the busy port" 10 grep -q . "$E2E_DIR/busy.txt"
if TESSERA_QUICKSTART_PORT=$(cat "$E2E_DIR/busy.txt") "$QUICKSTART" >"$E2E_DIR/busy-run.txt" 2>&1; then
  fail "quickstart started on a taken port"
fi
grep -q "port $(cat "$E2E_DIR/busy.txt") on 127.0.0.1 is taken" "$E2E_DIR/busy-run.txt" ||
  fail "no clear error for a taken port: $(cat "$E2E_DIR/busy-run.txt")"
[[ ! -f $STATE/server.pid ]] || fail "a server was started on a taken port"

# First run: a fresh state, attestation with a join token.
"$QUICKSTART" >"$E2E_DIR/run1.txt" 2>&1 || fail "first run failed"
grep -q "^  SPIFFE ID   $ID\$" "$E2E_DIR/run1.txt" || fail "first run: no SPIFFE ID line for $ID"
grep -q "^  verify      $STATE/svid/svid.0.pem: OK\$" "$E2E_DIR/run1.txt" ||
  fail "first run: openssl verify did not say OK"
grep -q "attesting with the join token" "$E2E_DIR/run1.txt" || fail "first run used no join token"
# What the script showed is what is on disk: the user's own files, checked again here.
[[ $(stat -c %U "$STATE/svid/svid.0.key") == nobody ]] || fail "the key is not the user's"
[[ $(stat -c %a "$STATE/svid/svid.0.key") == 600 ]] || fail "the key is not 0600"
openssl verify -CAfile "$STATE/svid/bundle.0.pem" "$STATE/svid/svid.0.pem" >/dev/null ||
  fail "the written SVID does not verify"
openssl x509 -in "$STATE/svid/svid.0.pem" -noout -ext subjectAltName | grep -q "URI:$ID" ||
  fail "the written SVID is not $ID"
[[ -S $STATE/run/agent/api.sock ]] || fail "no agent socket after the first run"
# The daemons outlive the script.
FIRST_PIDS=$(pids)
for pid in $FIRST_PIDS; do kill -0 "$pid" || fail "daemon $pid is gone after the first run"; done

# Second run: stops the first run's daemons, reuses the state, the same success output.
"$QUICKSTART" >"$E2E_DIR/run2.txt" 2>&1 || fail "second run failed"
grep -q "Stopping the daemons of the previous run .* ok" "$E2E_DIR/run2.txt" ||
  fail "second run did not stop the first run's daemons"
grep -q "stored identity, no join token) .* ok\$" "$E2E_DIR/run2.txt" ||
  fail "second run: the agent did not resume without a join token"
grep -q "already registered" "$E2E_DIR/run2.txt" || fail "second run registered the entry again"
diff <(success_block "$E2E_DIR/run1.txt") <(success_block "$E2E_DIR/run2.txt") ||
  fail "the two runs ended differently"
for pid in $FIRST_PIDS; do
  ! kill -0 "$pid" 2>/dev/null || fail "daemon $pid of the first run is still running"
done
SECOND_PIDS=$(pids)

# stop: no daemon, no socket, no pid file left; the daemons shut down cleanly.
"$QUICKSTART" stop >"$E2E_DIR/stop.txt" 2>&1 || fail "stop failed"
for pid in $SECOND_PIDS; do
  ! kill -0 "$pid" 2>/dev/null || fail "daemon $pid is still running after stop"
done
[[ -z $(find "$STATE" -type s) ]] || fail "sockets left after stop: $(find "$STATE" -type s)"
[[ ! -e $STATE/server.pid && ! -e $STATE/agent.pid ]] || fail "pid files left after stop"
grep -q "server: shutting down" "$STATE/server.log" || fail "the server did not shut down cleanly"
if grep -l -E "AddressSanitizer|LeakSanitizer|runtime error" "$STATE"/*.log; then
  fail "sanitizer report in the daemon logs"
fi
"$QUICKSTART" stop >/dev/null || fail "a second stop failed"

"$QUICKSTART" clean >/dev/null || fail "clean failed"
[[ ! -e $STATE ]] || fail "clean left $STATE"
echo "PASS"
