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

PORT=$(free_port)
ADMIN_SOCK="$E2E_DIR/server-run/api.sock"
AGENT_SOCK="$E2E_DIR/agent-run/api.sock"
AGENT_HEALTH=$(free_port)
cat >"$E2E_DIR/server.toml" <<TOML
trust_domain = "example.org"
bind_address = "127.0.0.1"
bind_port = $PORT
socket_path = "$ADMIN_SOCK"
data_dir = "$E2E_DIR/server-data"
log_format = "json"
[node_attestor.join_token]
TOML

start_server() {
  "$SERVER" run --config "$E2E_DIR/server.toml" >>"$E2E_DIR/server.log" 2>&1 &
  SERVER_PID=$!
  E2E_PIDS+=("$SERVER_PID")
  wait_for "server health" 20 "$SERVER" healthcheck --socket-path "$ADMIN_SOCK"
}
stop_server() {
  kill -TERM "$SERVER_PID"
  wait "$SERVER_PID" || fail "server exited non-zero on SIGTERM"
}
srv() { "$SERVER" "$@" --socket-path "$ADMIN_SOCK"; }

start_server
srv bundle show >"$E2E_DIR/bootstrap.pem"
TOKEN=$(srv token generate --spiffe-id spiffe://example.org/node-a --ttl 600 | sed -n 's/^Token: //p')
[[ -n $TOKEN ]] || fail "no join token"

cat >"$E2E_DIR/agent.toml" <<TOML
trust_domain = "example.org"
server_address = "127.0.0.1:$PORT"
socket_path = "$AGENT_SOCK"
data_dir = "$E2E_DIR/agent-data"
trust_bundle_path = "$E2E_DIR/bootstrap.pem"
log_format = "json"
sync_interval = "1h"
[node_attestor.join_token]
[workload_attestor.unix]
[health]
bind_port = $AGENT_HEALTH
TOML
"$AGENT" validate --config "$E2E_DIR/agent.toml" >/dev/null || fail "agent config invalid"

# systemd's side of Type=notify: a datagram socket collecting what the agent reports.
NOTIFY_SOCK="$E2E_DIR/notify.sock"
python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a", buffering=1) as out:
    while True:
        out.write(s.recv(4096).decode() + "\n")
' "$NOTIFY_SOCK" "$E2E_DIR/notify.txt" &
E2E_PIDS+=("$!")
wait_for "notify socket" 10 test -S "$NOTIFY_SOCK"

start_agent() {
  NOTIFY_SOCKET="$NOTIFY_SOCK" "$AGENT" run --config "$E2E_DIR/agent.toml" "$@" \
    >>"$E2E_DIR/agent.log" 2>&1 &
  AGENT_PID=$!
  E2E_PIDS+=("$AGENT_PID")
  wait_for "agent healthy" 30 "$AGENT" healthcheck --socket-path "$AGENT_SOCK"
}
stop_agent() {
  kill -TERM "$AGENT_PID"
  wait "$AGENT_PID" || fail "agent exited non-zero on SIGTERM"
  [[ ! -e $AGENT_SOCK ]] || fail "agent socket left behind after shutdown"
}

# Entries for the node (the join token's alias ID), one per user. The sync interval is an hour:
# only the server's push can bring later entries in time.
srv entry create --spiffe-id spiffe://example.org/root-workload \
  --parent-id spiffe://example.org/node-a --selector unix:uid:0 >/dev/null
srv entry create --spiffe-id spiffe://example.org/nobody-workload \
  --parent-id spiffe://example.org/node-a --selector unix:uid:65534 --hint nobody >/dev/null

start_agent --join-token "$TOKEN"
wait_for "READY=1 from the agent" 20 grep -q "READY=1" "$E2E_DIR/notify.txt"
[[ $(stat -c %a "$E2E_DIR/agent-data/agent_state.pem") == 600 ]] || fail "agent state is not 0600"
# The token is part of the agent's SPIFFE ID (SPIRE's layout; it is spent by then); nowhere else.
sed "s|join_token/$TOKEN||g" "$E2E_DIR/agent.log" | grep -q "$TOKEN" && fail "the join token was logged"

fetch_as() {  # <uid> <dir>: api fetch x509 as that user, writing the SVID files into <dir>
  local uid=$1 dir=$2
  mkdir -p "$dir" && chown "$uid" "$dir"
  setpriv --reuid="$uid" --regid="$uid" --clear-groups \
    "$AGENT" api fetch x509 --socket-path "$AGENT_SOCK" --write "$dir"
}
check_svid() {  # <dir> <spiffe id>
  local dir=$1 id=$2
  openssl verify -CAfile "$dir/bundle.0.pem" "$dir/svid.0.pem" >/dev/null ||
    fail "svid in $dir does not verify against its bundle"
  openssl x509 -in "$dir/svid.0.pem" -noout -ext subjectAltName | grep -q "URI:$id" ||
    fail "svid in $dir is not $id"
  [[ $(stat -c %a "$dir/svid.0.key") == 600 ]] || fail "key in $dir is not 0600"
}

wait_for "root SVID" 20 fetch_as 0 "$E2E_DIR/root"
check_svid "$E2E_DIR/root" spiffe://example.org/root-workload
wait_for "nobody SVID" 20 fetch_as 65534 "$E2E_DIR/nobody"
check_svid "$E2E_DIR/nobody" spiffe://example.org/nobody-workload
# A user with no entry gets nothing.
if setpriv --reuid=65533 --regid=65533 --clear-groups \
  "$AGENT" api fetch x509 --socket-path "$AGENT_SOCK" >"$E2E_DIR/denied.txt" 2>&1; then
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
srv entry create --spiffe-id spiffe://example.org/root-second \
  --parent-id spiffe://example.org/node-a --selector unix:uid:0 >/dev/null
has_second() {
  "$AGENT" api fetch x509 --socket-path "$AGENT_SOCK" | grep -q spiffe://example.org/root-second
}
wait_for "new entry after the server came back" 60 has_second

stop_agent
grep -q "STOPPING=1" "$E2E_DIR/notify.txt" || fail "the agent did not report STOPPING=1"
stop_server
echo "PASS"
