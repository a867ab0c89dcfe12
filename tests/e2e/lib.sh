# Shared helpers for the end-to-end tests: a private temporary directory removed on exit, and
# daemons started in the background that are always stopped on exit, even when a test fails.
# Source it; set -euo pipefail is the caller's.

E2E_PIDS=()
E2E_DIR=$(mktemp -d /tmp/tessera-e2e-XXXXXX)

e2e_cleanup() {
  local rc=$?
  for pid in "${E2E_PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
    # A stopped process would keep the signal pending and the wait below hanging.
    kill -CONT "$pid" 2>/dev/null || true
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

# --- A server and an agent, as an operator sets them up ---------------------------------------
# The caller sets SERVER and AGENT (the binaries). Everything lives in $E2E_DIR: the server's
# admin socket $ADMIN_SOCK and port $SERVER_PORT, the agent's Workload API socket $AGENT_SOCK.
# The agent attests as $NODE_ID with a join token; entries for workloads on it use it as parent.
TRUST_DOMAIN=example.org
NODE_ID=spiffe://$TRUST_DOMAIN/node-a
ADMIN_SOCK="$E2E_DIR/server-run/api.sock"
AGENT_SOCK="$E2E_DIR/agent-run/api.sock"

# write_server_config [EXTRA_TOML]: EXTRA_TOML goes after the top-level keys (so it may hold
# more top-level keys, then tables).
write_server_config() {
  SERVER_PORT=${SERVER_PORT:-$(free_port)}
  cat >"$E2E_DIR/server.toml" <<TOML
trust_domain = "$TRUST_DOMAIN"
bind_address = "127.0.0.1"
bind_port = $SERVER_PORT
socket_path = "$ADMIN_SOCK"
data_dir = "$E2E_DIR/server-data"
log_format = "json"
${1:-}
[node_attestor.join_token]
TOML
}
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

# write_agent_config [EXTRA_TOML]: as write_server_config. The agent trusts the bundle the
# server had when this ran ($E2E_DIR/bootstrap.pem); the server must be up. The periodic sync is
# hourly: entry changes reach the agent only by the server's push.
write_agent_config() {
  srv bundle show >"$E2E_DIR/bootstrap.pem"
  cat >"$E2E_DIR/agent.toml" <<TOML
trust_domain = "$TRUST_DOMAIN"
server_address = "127.0.0.1:$SERVER_PORT"
socket_path = "$AGENT_SOCK"
data_dir = "$E2E_DIR/agent-data"
trust_bundle_path = "$E2E_DIR/bootstrap.pem"
log_format = "json"
sync_interval = "1h"
${1:-}
[node_attestor.join_token]
[workload_attestor.unix]
TOML
  "$AGENT" validate --config "$E2E_DIR/agent.toml" >/dev/null || fail "agent config invalid"
}
# join_token: a fresh token whose agent gets $NODE_ID.
join_token() {
  local token
  token=$(srv token generate --spiffe-id "$NODE_ID" --ttl 600 | sed -n 's/^Token: //p')
  [[ -n $token ]] || fail "no join token"
  echo "$token"
}
# start_agent [ARGS...]: ARGS go to `tessera-agent run` (e.g. --join-token). Set
# AGENT_NOTIFY_SOCKET to give the agent a systemd notify socket.
start_agent() {
  (
    unset NOTIFY_SOCKET
    [[ -z ${AGENT_NOTIFY_SOCKET:-} ]] || export NOTIFY_SOCKET=$AGENT_NOTIFY_SOCKET
    exec "$AGENT" run --config "$E2E_DIR/agent.toml" "$@"
  ) >>"$E2E_DIR/agent.log" 2>&1 &
  AGENT_PID=$!
  E2E_PIDS+=("$AGENT_PID")
  wait_for "agent healthy" 30 "$AGENT" healthcheck --socket-path "$AGENT_SOCK"
}
stop_agent() {
  kill -TERM "$AGENT_PID"
  wait "$AGENT_PID" || fail "agent exited non-zero on SIGTERM"
  [[ ! -e $AGENT_SOCK ]] || fail "agent socket left behind after shutdown"
}
# start_server_and_agent [SERVER_EXTRA_TOML [AGENT_EXTRA_TOML]]: both daemons up, the agent
# attested with a join token. Workloads of other users can reach the agent's socket.
start_server_and_agent() {
  chmod 755 "$E2E_DIR"
  write_server_config "${1:-}"
  start_server
  write_agent_config "${2:-}"
  start_agent --join-token "$(join_token)"
}

# create_entry NAME UID [FLAGS...]: an entry spiffe://$TRUST_DOMAIN/NAME for that uid's
# processes on the node; prints its entry ID.
create_entry() {
  local name=$1 uid=$2
  shift 2
  srv entry create --spiffe-id "spiffe://$TRUST_DOMAIN/$name" --parent-id "$NODE_ID" \
    --selector "unix:uid:$uid" "$@" --output json |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["results"][0]["entry"]["id"])' \
      2>/dev/null
}
# as_uid UID COMMAND...: runs COMMAND as that user (its own group, no supplementary groups).
# Started in the background, $! is a subshell running this function, not COMMAND: to signal the
# process itself (SIGSTOP, SIGTERM), run setpriv directly.
as_uid() {
  local uid=$1
  shift
  setpriv --reuid="$uid" --regid="$uid" --clear-groups "$@"
}
# fetch_as UID DIR: `api fetch x509 --write DIR` as that user.
fetch_as() {
  local uid=$1 dir=$2
  mkdir -p "$dir" && chown "$uid" "$dir"
  as_uid "$uid" "$AGENT" api fetch x509 --socket-path "$AGENT_SOCK" --write "$dir"
}
# check_svid DIR SPIFFE_ID: the SVID written by fetch_as verifies against the bundle written
# with it, names SPIFFE_ID, and its key is private.
check_svid() {
  local dir=$1 id=$2
  openssl verify -CAfile "$dir/bundle.0.pem" "$dir/svid.0.pem" >/dev/null ||
    fail "svid in $dir does not verify against its bundle"
  openssl x509 -in "$dir/svid.0.pem" -noout -ext subjectAltName | grep -qE "URI:$id(,|\$)" ||
    fail "svid in $dir is not $id"
  [[ $(stat -c %a "$dir/svid.0.key") == 600 ]] || fail "key in $dir is not 0600"
}
# rss_kb PID: the process's resident set, in kB.
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
