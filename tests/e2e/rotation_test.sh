#!/usr/bin/env bash
# SVID lifecycle with the real binaries: with a 30 s X509-SVID TTL an open `api watch` receives
# a fresh SVID before the old one expires (each update verified against its bundle by the CLI);
# an agent restart ends the stream, the watch reconnects by itself and gets the same identity
# from the restarted agent; with the server gone for longer than the TTL, the expired SVID is
# never served: the workload is told the agent cannot reach the server.
# Usage: rotation_test.sh <tessera-server> <tessera-agent>
set -euo pipefail
SERVER=$1
AGENT=$2
source "$(dirname "$0")/lib.sh"

start_server_and_agent
create_entry rotating 0 --x509-svid-ttl 30s >/dev/null

"$AGENT" api watch --socket-path "$AGENT_SOCK" >"$E2E_DIR/watch.out" 2>"$E2E_DIR/watch.err" &
WATCH_PID=$!
E2E_PIDS+=("$WATCH_PID")
serials() { sed -n 's/^Serial:[[:space:]]*//p' "$E2E_DIR/watch.out" | sort -u | wc -l; }
at_least_serials() { (($(serials) >= $1)); }

wait_for "the first SVID on the watch" 20 at_least_serials 1
# Rotation at 40-50% of the lifetime: within ~15 s, long before the 30 s expiry.
wait_for "a rotated SVID on the open stream" 25 at_least_serials 2
grep -q "failed verification" "$E2E_DIR/watch.err" &&
  fail "the watch received an SVID that does not verify: $(cat "$E2E_DIR/watch.err")"
grep -c "^SPIFFE ID:.*spiffe://$TRUST_DOMAIN/rotating" "$E2E_DIR/watch.out" >/dev/null ||
  fail "the watch did not see spiffe://$TRUST_DOMAIN/rotating"

# Agent restart: no token needed; the same watch reconnects and gets the same identity.
BEFORE=$(serials)
stop_agent
start_agent
wait_for "the watch to reconnect to the restarted agent" 30 at_least_serials $((BEFORE + 1))
[[ $(sed -n 's/^SPIFFE ID:[[:space:]]*//p' "$E2E_DIR/watch.out" | sort -u) == \
  "spiffe://$TRUST_DOMAIN/rotating" ]] || fail "identity changed across the agent restart"

# Server gone for longer than the TTL: the agent keeps its SVID until it expires, then stops
# serving it rather than hand out an expired certificate.
stop_server
LAST_NOT_AFTER=$(openssl x509 -noout -enddate -in <(
  "$AGENT" api fetch x509 --socket-path "$AGENT_SOCK" --write "$E2E_DIR/last" >/dev/null &&
    cat "$E2E_DIR/last/svid.0.pem") | cut -d= -f2)
EXPIRY=$(date -d "$LAST_NOT_AFTER" +%s)
sleep $((EXPIRY - $(date +%s) + 2))
if "$AGENT" api fetch x509 --socket-path "$AGENT_SOCK" --write "$E2E_DIR/expired" \
  >"$E2E_DIR/expired.txt" 2>&1; then
  fail "an SVID was served after its expiry: $(openssl x509 -noout -enddate -in "$E2E_DIR/expired/svid.0.pem")"
fi
# The caller still matches its entry, whose SVID cannot be re-minted while the server is away:
# it is told so (UNAVAILABLE, retry later) at once.
[[ ! -e $E2E_DIR/expired/svid.0.pem ]] || fail "an SVID file was written after the expiry"
grep -q "cannot reach the server" "$E2E_DIR/expired.txt" ||
  fail "unexpected: $(cat "$E2E_DIR/expired.txt")"
grep -q "failed verification" "$E2E_DIR/watch.err" &&
  fail "the watch received an SVID that does not verify: $(cat "$E2E_DIR/watch.err")"

kill -TERM "$WATCH_PID"
wait "$WATCH_PID" || fail "api watch exited non-zero on SIGTERM"
stop_agent
echo "PASS"
