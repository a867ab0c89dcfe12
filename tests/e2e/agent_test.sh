#!/usr/bin/env bash
# tessera-agent as a node operator meets it: the real server and agent binaries, a join token
# from the server CLI, workloads fetching over the agent's Unix socket with the agent's own CLI as
# two different users (root and nobody, via setpriv), the SVIDs checked with `openssl verify`
# against the bundle the workload received. Then: an agent restart needs no new token; with the
# server stopped the agent keeps serving; when the server comes back a new entry reaches the
# workload; READY=1 and STOPPING=1 reach systemd's notify socket; SIGTERM removes the socket.
# Usage: agent_test.sh <tessera-server> <tessera-agent>
set -euo pipefail
SERVER=$1
AGENT=$2
source "$(dirname "$0")/lib.sh"
# Workloads of other users must reach the agent's socket inside the test directory.
chmod 755 "$E2E_DIR"

AGENT_HEALTH=$(free_port)
write_server_config
start_server
TOKEN=$(join_token)
write_agent_config "$(printf '[health]\nbind_port = %s' "$AGENT_HEALTH")"

# systemd's side of Type=notify: a datagram socket collecting what the agent reports.
AGENT_NOTIFY_SOCKET="$E2E_DIR/notify.sock"
python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a", buffering=1) as out:
    while True:
        out.write(s.recv(4096).decode() + "\n")
' "$AGENT_NOTIFY_SOCKET" "$E2E_DIR/notify.txt" &
E2E_PIDS+=("$!")
wait_for "notify socket" 10 test -S "$AGENT_NOTIFY_SOCKET"

# Entries for the node (the join token's alias ID), one per user. The sync interval is an hour:
# only the server's push can bring later entries in time.
create_entry root-workload 0 >/dev/null
create_entry nobody-workload 65534 --hint nobody >/dev/null

start_agent --join-token "$TOKEN"
wait_for "READY=1 from the agent" 20 grep -q "READY=1" "$E2E_DIR/notify.txt"
[[ $(stat -c %a "$E2E_DIR/agent-data/agent_state.pem") == 600 ]] || fail "agent state is not 0600"
# The token is part of the agent's SPIFFE ID (SPIRE's layout; it is spent by then); nowhere else.
sed "s|join_token/$TOKEN||g" "$E2E_DIR/agent.log" | grep -q "$TOKEN" && fail "the join token was logged"

wait_for "root SVID" 20 fetch_as 0 "$E2E_DIR/root"
check_svid "$E2E_DIR/root" spiffe://example.org/root-workload
wait_for "nobody SVID" 20 fetch_as 65534 "$E2E_DIR/nobody"
check_svid "$E2E_DIR/nobody" spiffe://example.org/nobody-workload
# A user with no entry gets nothing.
if as_uid 65533 "$AGENT" api fetch x509 --socket-path "$AGENT_SOCK" >"$E2E_DIR/denied.txt" 2>&1; then
  fail "uid 65533 got an identity"
fi
grep -qi "no identity issued" "$E2E_DIR/denied.txt" || fail "unexpected: $(cat "$E2E_DIR/denied.txt")"

# JWT-SVIDs, validated by the agent itself.
JWT=$("$AGENT" api fetch jwt --socket-path "$AGENT_SOCK" --audience e2e | grep -o 'ey[A-Za-z0-9_.-]*' | head -1)
[[ -n $JWT ]] || fail "no JWT-SVID"
"$AGENT" api validate jwt --socket-path "$AGENT_SOCK" --audience e2e --svid "$JWT" |
  grep -q "spiffe://example.org/root-workload" || fail "JWT-SVID did not validate"
if "$AGENT" api validate jwt --socket-path "$AGENT_SOCK" --audience other --svid "$JWT" \
  >/dev/null 2>&1; then
  fail "a JWT-SVID validated for the wrong audience"
fi
curl -fsS "http://127.0.0.1:$AGENT_HEALTH/ready" | grep -q '"ok"' || fail "agent /ready is not ok"

# Restart: no token needed, same agent identity.
stop_agent
start_agent
wait_for "root SVID after restart" 20 fetch_as 0 "$E2E_DIR/root2"
check_svid "$E2E_DIR/root2" spiffe://example.org/root-workload

# Server down: the agent keeps serving what it has.
stop_server
fetch_as 0 "$E2E_DIR/root3" || fail "no SVID while the server is down"
check_svid "$E2E_DIR/root3" spiffe://example.org/root-workload

# Server back: a new entry reaches the workload without waiting for the hourly sync.
start_server
create_entry root-second 0 >/dev/null
has_second() {
  "$AGENT" api fetch x509 --socket-path "$AGENT_SOCK" | grep -q spiffe://example.org/root-second
}
wait_for "new entry after the server came back" 60 has_second

stop_agent
grep -q "STOPPING=1" "$E2E_DIR/notify.txt" || fail "the agent did not report STOPPING=1"
stop_server
echo "PASS"
