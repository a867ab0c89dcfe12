#!/usr/bin/env bash
# Node attestation with the real binaries: a join token attests once only (a second agent with
# the same token is refused and exits non-zero), an expired token is refused, and a banned agent
# cannot renew its SVID: it stops serving identities it cannot keep fresh, says in its log and on
# /ready that an operator must act, and keeps running.
# Usage: attestation_test.sh <tessera-server> <tessera-agent>
set -euo pipefail
SERVER=$1
AGENT=$2
source "$(dirname "$0")/lib.sh"

AGENT_HEALTH=$(free_port)
# Short agent SVIDs, so the first renewal comes within seconds.
start_server_and_agent 'agent_ttl = "6s"' "$(printf '[health]\nbind_port = %s' "$AGENT_HEALTH")"
AGENT_ID=$(openssl x509 -in <(sed -n '/# svid/,/END CERTIFICATE/p' "$E2E_DIR/agent-data/agent_state.pem" |
  sed -n '/BEGIN CERTIFICATE/,/END CERTIFICATE/p') -noout -ext subjectAltName |
  sed -n 's/.*URI:\(spiffe:[^,]*\).*/\1/p')
[[ $AGENT_ID == spiffe://$TRUST_DOMAIN/spire/agent/join_token/* ]] || fail "agent ID: '$AGENT_ID'"
curl -fsS "http://127.0.0.1:$AGENT_HEALTH/ready" | grep -q '"ok"' || fail "/ready is not ok"

# A second agent presenting the spent token: refused, exits non-zero, says what to do.
USED_TOKEN=${AGENT_ID##*/}
second_agent() {  # <token>: runs a second agent on its own socket and data dir; its exit code
  sed -e "s|$AGENT_SOCK|$E2E_DIR/second-run/api.sock|" -e "s|agent-data|second-data|" \
    -e '/^\[health\]/,$d' "$E2E_DIR/agent.toml" >"$E2E_DIR/second.toml"
  echo "[workload_attestor.unix]" >>"$E2E_DIR/second.toml"
  grep -q '^\[node_attestor.join_token\]' "$E2E_DIR/second.toml" ||
    echo "[node_attestor.join_token]" >>"$E2E_DIR/second.toml"
  timeout 30 "$AGENT" run --config "$E2E_DIR/second.toml" --join-token "$1" \
    >"$E2E_DIR/second.log" 2>&1
}
if second_agent "$USED_TOKEN"; then fail "a spent join token attested a second agent"; fi
grep -q "does not exist or has already been used" "$E2E_DIR/second.log" ||
  fail "unexpected refusal: $(tail -3 "$E2E_DIR/second.log")"
[[ ! -e $E2E_DIR/second-run/api.sock ]] || fail "the refused agent left a socket"

# An expired token: refused the same way.
EXPIRED=$(srv token generate --spiffe-id "$NODE_ID" --ttl 1 | sed -n 's/^Token: //p')
sleep 2
if second_agent "$EXPIRED"; then fail "an expired join token attested an agent"; fi
grep -qE "does not exist or has already been used|expired" "$E2E_DIR/second.log" ||
  fail "unexpected refusal: $(tail -3 "$E2E_DIR/second.log")"

# Ban: the next renewal is refused; the agent reports that an operator must act.
srv agent ban --spiffe-id "$AGENT_ID" >/dev/null
wait_for "the agent to report the refused renewal" 20 \
  grep -q "generate a new join token" "$E2E_DIR/agent.log"
not_ready() { ! curl -fsS "http://127.0.0.1:$AGENT_HEALTH/ready" >/dev/null 2>&1; }
wait_for "/ready to fail" 10 not_ready
curl -sS "http://127.0.0.1:$AGENT_HEALTH/ready" | grep -q "join token" ||
  fail "/ready does not say what to do: $(curl -sS "http://127.0.0.1:$AGENT_HEALTH/ready")"
kill -0 "$AGENT_PID" || fail "the agent exited after the ban"
[[ ! -e $E2E_DIR/agent-data/agent_state.pem ]] || fail "the banned agent kept its stored state"

stop_agent
stop_server
echo "PASS"
