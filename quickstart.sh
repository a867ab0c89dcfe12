#!/usr/bin/env bash
# Tessera in about a minute, on Debian 12 as root: installs the dependencies, builds a Release
# tessera-server and tessera-agent, starts both on this machine, registers the invoking user as a
# workload and fetches its X509-SVID and JWT-SVID through the Workload API.
#
#   ./quickstart.sh          start (again): stops daemons left from an earlier run first
#   ./quickstart.sh stop     stop the daemons and remove their sockets; the state is kept
#   ./quickstart.sh clean    stop, then delete the state directory
#
# Everything it starts lives in one directory, /var/tmp/tessera-quickstart: configs, the SQLite
# database and CA keys, the agent's identity, copies of both binaries, sockets, logs, pid files.
# Not the checkout: a checkout in /root or in a 0700 home is closed to other users, and workloads
# of every user must reach the agent's socket (and the agent binary, their Workload API client).
# /var/tmp survives reboots, so a second run reuses the state: the server keeps its CA and
# entries, the agent resumes with its stored identity and needs no new join token (only when that
# identity has expired does it attest again with a fresh token). /var/tmp is world-writable, so
# an existing directory is used only if it is ours (owner, no symlink). `clean` forgets it. The
# daemons keep running after the script ends.
#
# Environment:
#   TESSERA_QUICKSTART_STATE_DIR  another state directory
#   TESSERA_QUICKSTART_BIN_DIR    skip install and build; take tessera-server and tessera-agent
#                                 from this directory (flat, or a CMake build directory)
#   TESSERA_QUICKSTART_PORT       the server's TCP port on 127.0.0.1 (default: 8081 if free,
#                                 else any free port)
set -euo pipefail
# Background jobs must stay in our process group: setsid then needs no fork and $! is the daemon.
set +m
ORIG_PWD=$PWD
cd "$(dirname "$0")"
ROOT=$PWD

TRUST_DOMAIN=example.org
NODE_ID=spiffe://$TRUST_DOMAIN/node
AUDIENCE=quickstart
BUILD_DIR=build/release

STATE=${TESSERA_QUICKSTART_STATE_DIR:-/var/tmp/tessera-quickstart}
[[ $STATE == /* ]] || STATE=$ORIG_PWD/$STATE
SERVER_SOCK=$STATE/run/server/api.sock
AGENT_SOCK=$STATE/run/agent/api.sock
SVID_DIR=$STATE/svid
# How to call this script again (stop, clean), as the user would type it.
SELF=$ROOT/quickstart.sh
[[ $ORIG_PWD == "$ROOT" ]] && SELF=./quickstart.sh
[[ -n ${TESSERA_QUICKSTART_STATE_DIR:-} ]] && SELF="TESSERA_QUICKSTART_STATE_DIR=$STATE $SELF"

# ---- output -------------------------------------------------------------------------------------

CURRENT_STEP=
step() {
  CURRENT_STEP=$1
  printf '  %-62s ' "$1"
}
ok() {
  echo "${1:-ok}"
  CURRENT_STEP=
}
# die MESSAGE [LOG...]: what failed, the tail of each log, exit 1.
die() {
  local message=$1
  shift
  [[ -n $CURRENT_STEP ]] && echo "FAILED"
  echo >&2
  echo "error: $message" >&2
  local log
  for log in "$@"; do
    [[ -s $log ]] || continue
    echo "--- last lines of $log" >&2
    tail -n 25 "$log" >&2
  done
  local running=()
  [[ -n $(daemon_pid server) ]] && running+=(tessera-server)
  [[ -n $(daemon_pid agent) ]] && running+=(tessera-agent)
  if ((${#running[@]} > 0)); then
    echo >&2
    echo "still running for inspection: ${running[*]}; \`$SELF stop\` stops them" >&2
  fi
  exit 1
}

# ---- daemons ------------------------------------------------------------------------------------

# daemon_pid server|agent: the pid of our daemon if it is running, else nothing. The command
# line must match too, so a pid reused by another process is never taken for ours.
daemon_pid() {
  local name=$1 pid cmdline
  pid=$(cat "$STATE/$name.pid" 2>/dev/null) || return 0
  [[ $pid =~ ^[0-9]+$ ]] || return 0
  cmdline=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") || return 0
  [[ $cmdline == *"tessera-$name run --config $STATE/$name.toml"* ]] && echo "$pid"
  return 0
}

# stop_daemon server|agent: SIGTERM, then up to 15 s for a clean exit (the agent ends open
# streams and removes its socket), SIGKILL as the last resort.
stop_daemon() {
  local name=$1 pid i
  pid=$(daemon_pid "$name")
  if [[ -n $pid ]]; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 150; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      echo "tessera-$name (pid $pid) did not stop within 15 s; killing it" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$STATE/$name.pid"
}

stop_all() {
  stop_daemon agent
  stop_daemon server
  rm -f "$AGENT_SOCK" "$SERVER_SOCK"
}

# start_daemon server|agent ARGS...: in its own session (a closed terminal or Ctrl-C does not
# reach it), output appended to its log, pid recorded. The lock descriptor is not inherited.
start_daemon() {
  local name=$1
  shift
  local bin=$SERVER_BIN
  [[ $name == agent ]] && bin=$AGENT_BIN
  setsid "$bin" run --config "$STATE/$name.toml" "$@" \
    </dev/null >>"$STATE/$name.log" 2>&1 9>&- &
  echo $! >"$STATE/$name.pid"
}

# wait_healthy server|agent: 0 once its healthcheck passes, 2 if it exited, 1 after 30 s.
wait_healthy() {
  local name=$1 bin=$SERVER_BIN sock=$SERVER_SOCK i
  [[ $name == agent ]] && bin=$AGENT_BIN sock=$AGENT_SOCK
  for ((i = 0; i < 300; i++)); do
    [[ -n $(daemon_pid "$name") ]] || return 2
    "$bin" healthcheck --socket-path "$sock" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  return 1
}

# ---- helpers ------------------------------------------------------------------------------------

port_free() {
  python3 - "$1" <<'PY'
import socket, sys
s = socket.socket()
# As the server's own listener does: a connection in TIME_WAIT does not make the port busy.
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
PY
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# as_user COMMAND...: runs COMMAND as the workload user (the one who invoked the script).
as_user() {
  if [[ $USER_UID == "$(id -u)" ]]; then
    "$@"
  else
    setpriv --reuid="$USER_UID" --regid="$USER_GID" --clear-groups -- "$@"
  fi
}

# A path as the user would type it from where they started the script.
shown() {
  local p=$1
  [[ $p == "$ORIG_PWD"/* ]] && p=${p#"$ORIG_PWD"/}
  echo "$p"
}

srv() { "$SERVER_BIN" "$@" --socket-path "$SERVER_SOCK"; }

# resolve_bins DIR: the binaries to run, from a flat directory or a CMake build directory.
resolve_bins() {
  local dir=$1
  if [[ -x $dir/tessera-server && -x $dir/tessera-agent ]]; then
    SRC_SERVER=$dir/tessera-server
    SRC_AGENT=$dir/tessera-agent
  elif [[ -x $dir/server/tessera-server && -x $dir/agent/tessera-agent ]]; then
    SRC_SERVER=$dir/server/tessera-server
    SRC_AGENT=$dir/agent/tessera-agent
  else
    die "no tessera-server and tessera-agent in $dir (nor in $dir/server and $dir/agent)"
  fi
}

# install_bins: copies into $STATE/bin, where every user can run them (by rename: a binary that
# is still running is never written over).
install_bins() {
  mkdir -p "$STATE/bin"
  chmod 755 "$STATE/bin"
  local src dst
  for src in "$SRC_SERVER" "$SRC_AGENT"; do
    dst=$STATE/bin/${src##*/}
    { cp "$src" "$dst.new" && chmod 755 "$dst.new" && mv -f "$dst.new" "$dst"; } ||
      die "cannot copy $src to $STATE/bin"
  done
  SERVER_BIN=$STATE/bin/tessera-server
  AGENT_BIN=$STATE/bin/tessera-agent
}

# check_state: $STATE, if it exists, must be a directory of ours, not something another user of
# this machine prepared for us (the default is below the world-writable /var/tmp).
check_state() {
  [[ -e $STATE || -L $STATE ]] || return 0
  if [[ -L $STATE || ! -d $STATE || $(stat -c %u "$STATE") != "$(id -u)" ]]; then
    die "$STATE is not a directory owned by uid $(id -u); remove it or set \
TESSERA_QUICKSTART_STATE_DIR"
  fi
}

lock_state() {
  exec 9>"$STATE/.lock"
  flock -n 9 || die "another ./quickstart.sh is running on $STATE"
}

# ---- commands -----------------------------------------------------------------------------------

cmd_stop() {
  [[ -d $STATE ]] || {
    echo "nothing to stop: no $STATE"
    return 0
  }
  check_state
  lock_state
  stop_all
  echo "stopped tessera-agent and tessera-server; state kept in $STATE"
}

cmd_clean() {
  [[ -d $STATE ]] || return 0
  check_state
  lock_state
  stop_all
  rm -rf "$STATE"
  echo "stopped the daemons and deleted $STATE"
}

cmd_start() {
  echo "Tessera quickstart (state: $STATE)"
  check_state
  mkdir -p "$(dirname "$STATE")"
  [[ -d $STATE ]] || mkdir "$STATE"
  # Workloads of every user must reach the agent's socket and binary below it.
  chmod 755 "$STATE"
  lock_state

  # The workload is whoever invoked us: the sudo caller, else ourselves.
  USER_UID=$(id -u)
  if [[ $USER_UID == 0 && -n ${SUDO_UID:-} ]]; then
    USER_UID=$SUDO_UID
  fi
  local pw
  pw=$(getent passwd "$USER_UID" || true)
  USER_NAME=${pw%%:*}
  USER_GID=$(cut -d: -f4 <<<"$pw")
  [[ -n $pw ]] || USER_GID=$USER_UID
  # SPIFFE path segments allow letters, digits, '.', '-' and '_'.
  local segment=$USER_NAME
  [[ $segment =~ ^[A-Za-z0-9._-]+$ && $segment != . && $segment != .. ]] || segment=uid-$USER_UID
  WORKLOAD_ID=spiffe://$TRUST_DOMAIN/user/$segment
  if [[ $USER_UID != "$(id -u)" && $(id -u) != 0 ]]; then
    die "only root can fetch as uid $USER_UID"
  fi

  local len
  for len in "$SERVER_SOCK" "$AGENT_SOCK"; do
    ((${#len} <= 107)) || die "socket path $len is longer than 107 bytes; set \
TESSERA_QUICKSTART_STATE_DIR to a shorter directory"
  done
  if ! as_user test -x "$STATE"; then
    die "uid $USER_UID cannot reach $STATE (a parent directory is not searchable); set \
TESSERA_QUICKSTART_STATE_DIR to a directory it can reach"
  fi

  if [[ -n ${TESSERA_QUICKSTART_BIN_DIR:-} ]]; then
    step "Using prebuilt binaries (install and build skipped)"
    local bin_dir=$TESSERA_QUICKSTART_BIN_DIR
    [[ $bin_dir == /* ]] || bin_dir=$ORIG_PWD/$bin_dir
    resolve_bins "$bin_dir"
    ok
  else
    step "Installing dependencies (packaging/deps/install.sh)"
    ./packaging/deps/install.sh >"$STATE/install.log" 2>&1 ||
      die "installing the dependencies failed" "$STATE/install.log"
    ok
    step "Building Release into $BUILD_DIR (clang, Ninja)"
    local t0=$SECONDS
    {
      if [[ ! -f $BUILD_DIR/build.ninja ]]; then
        cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release \
          -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++
      fi
      cmake --build "$BUILD_DIR" --target tessera-server tessera-agent -j"$(nproc)"
    } >"$STATE/build.log" 2>&1 || die "the build failed" "$STATE/build.log"
    ok "ok ($((SECONDS - t0)) s)"
    resolve_bins "$BUILD_DIR"
  fi

  if [[ -n $(daemon_pid server)$(daemon_pid agent) ]]; then
    step "Stopping the daemons of the previous run"
    stop_all
    ok
  fi
  install_bins
  local S=$SERVER_BIN A=$AGENT_BIN
  rm -f "$AGENT_SOCK" "$SERVER_SOCK"

  local port=${TESSERA_QUICKSTART_PORT:-8081}
  if ! port_free "$port"; then
    [[ -z ${TESSERA_QUICKSTART_PORT:-} ]] ||
      die "port $port on 127.0.0.1 is taken (TESSERA_QUICKSTART_PORT); pick another"
    port=$(free_port)
  fi

  cat >"$STATE/server.toml" <<TOML
# Written by quickstart.sh on every start.
trust_domain = "$TRUST_DOMAIN"
bind_address = "127.0.0.1"
bind_port = $port
socket_path = "$SERVER_SOCK"
data_dir = "$STATE/server"
log_format = "text"
[node_attestor.join_token]
TOML
  # Logs accumulate over runs (a run's daemons log their shutdown after the next run began).
  echo "=== quickstart.sh start, $(date -Is)" | tee -a "$STATE/agent.log" >>"$STATE/server.log"
  step "Starting tessera-server on 127.0.0.1:$port"
  "$S" validate --config "$STATE/server.toml" >"$STATE/validate.log" 2>&1 ||
    die "the server configuration is invalid" "$STATE/validate.log"
  start_daemon server
  wait_healthy server || die "tessera-server did not become healthy" "$STATE/server.log"
  ok

  srv bundle show >"$STATE/bootstrap.pem" 2>"$STATE/cli.log" ||
    die "bundle show failed" "$STATE/cli.log"
  cat >"$STATE/agent.toml" <<TOML
# Written by quickstart.sh on every start.
trust_domain = "$TRUST_DOMAIN"
server_address = "127.0.0.1:$port"
socket_path = "$AGENT_SOCK"
data_dir = "$STATE/agent"
trust_bundle_path = "$STATE/bootstrap.pem"
log_format = "text"
[node_attestor.join_token]
[workload_attestor.unix]
TOML
  "$A" validate --config "$STATE/agent.toml" >"$STATE/validate.log" 2>&1 ||
    die "the agent configuration is invalid" "$STATE/validate.log"

  local rc=0
  if [[ -f $STATE/agent/agent_state.pem ]]; then
    step "Starting tessera-agent (stored identity, no join token)"
    start_daemon agent
    wait_healthy agent || rc=$?
    if ((rc == 0)); then
      ok
    elif ((rc == 2)); then
      ok "cannot resume:"
      sed -n 's/.*cannot start: //p' "$STATE/agent.log" | tail -n 1 | cut -c 1-200 | sed 's/^/    /'
      # Its identity expired (or the server no longer knows it): attest afresh below.
      rm -rf "$STATE/agent"
    else
      die "tessera-agent did not become healthy" "$STATE/agent.log"
    fi
  fi
  if [[ ! -f $STATE/agent/agent_state.pem ]]; then
    step "Generating a join token for $NODE_ID"
    local token
    token=$(srv token generate --spiffe-id "$NODE_ID" --ttl 600 2>"$STATE/cli.log" |
      sed -n 's/^Token: //p') || true
    [[ -n $token ]] || die "token generate failed" "$STATE/cli.log"
    ok
    step "Starting tessera-agent (attesting with the join token)"
    start_daemon agent --join-token "$token"
    wait_healthy agent || die "tessera-agent did not become healthy" "$STATE/agent.log"
    ok
  fi

  step "Registering $WORKLOAD_ID (unix:uid:$USER_UID)"
  local found
  found=$(srv entry show --spiffe-id "$WORKLOAD_ID" --parent-id "$NODE_ID" \
    --selector "unix:uid:$USER_UID" 2>"$STATE/cli.log") || die "entry show failed" "$STATE/cli.log"
  if grep -q '^Found 0 entries' <<<"$found"; then
    srv entry create --spiffe-id "$WORKLOAD_ID" --parent-id "$NODE_ID" \
      --selector "unix:uid:$USER_UID" >/dev/null 2>"$STATE/cli.log" ||
      die "entry create failed" "$STATE/cli.log"
    ok
  else
    ok "ok (already registered)"
  fi

  # Fresh each run, owned by the workload user: it writes its own key there.
  rm -rf "$SVID_DIR"
  mkdir -m 700 "$SVID_DIR"
  chown "$USER_UID:$USER_GID" "$SVID_DIR"
  step "Fetching the X509-SVID as ${USER_NAME:-uid $USER_UID} (api fetch x509)"
  local i fetched=''
  # The new entry reaches the agent by push; until then the Workload API has nothing for us.
  for ((i = 0; i < 150; i++)); do
    if as_user "$A" api fetch x509 --socket-path "$AGENT_SOCK" --write "$SVID_DIR" \
      >"$STATE/fetch.log" 2>&1 && grep -q "$WORKLOAD_ID\$" "$STATE/fetch.log"; then
      fetched=1
      break
    fi
    sleep 0.2
  done
  [[ -n $fetched ]] || die "no X509-SVID for $WORKLOAD_ID after 30 s" "$STATE/fetch.log" \
    "$STATE/agent.log"
  # With several identities for this uid, pick ours.
  local n svid='' bundle=''
  for n in "$SVID_DIR"/svid.*.pem; do
    if openssl x509 -in "$n" -noout -ext subjectAltName 2>/dev/null | grep -q "URI:$WORKLOAD_ID\$"; then
      svid=$n
      bundle=${n/svid./bundle.}
      break
    fi
  done
  [[ -n $svid && -f $bundle ]] || die "the written files hold no SVID for $WORKLOAD_ID" \
    "$STATE/fetch.log"
  ok

  step "Fetching a JWT-SVID for audience \"$AUDIENCE\" (api fetch jwt)"
  local jwt
  jwt=$(as_user "$A" api fetch jwt --socket-path "$AGENT_SOCK" --audience "$AUDIENCE" \
    --spiffe-id "$WORKLOAD_ID" 2>"$STATE/fetch.log" | grep -o 'ey[A-Za-z0-9_.-]*' | head -1) || true
  [[ -n $jwt ]] || die "no JWT-SVID" "$STATE/fetch.log"
  as_user "$A" api validate jwt --socket-path "$AGENT_SOCK" --audience "$AUDIENCE" --svid "$jwt" \
    >"$STATE/fetch.log" 2>&1 || die "the agent did not validate the JWT-SVID" "$STATE/fetch.log"
  grep -q "$WORKLOAD_ID" "$STATE/fetch.log" ||
    die "the JWT-SVID validated as another identity" "$STATE/fetch.log"
  ok

  local san expiry verify
  san=$(openssl x509 -in "$svid" -noout -ext subjectAltName | sed -n 's/.*URI:\(spiffe:[^,]*\).*/\1/p')
  expiry=$(openssl x509 -in "$svid" -noout -enddate)
  verify=$(openssl verify -CAfile "$bundle" -untrusted "$svid" "$svid" 2>&1) ||
    die "openssl verify rejected the SVID: $verify"

  local s a state
  s=$(shown "$S")
  a=$(shown "$A")
  state=$(shown "$STATE")
  cat <<EOF

It works. The workload identity of ${USER_NAME:-uid $USER_UID} (uid $USER_UID), read back by openssl:
  SPIFFE ID   $san
  expires     ${expiry#notAfter=} (the agent rotates it at half-life)
  verify      $verify
              (openssl verify -CAfile ${bundle##*/} ${svid##*/}: the chain against the bundle)
  JWT-SVID    ${jwt:0:24}... (aud "$AUDIENCE", validated by the agent)
  files       $state/svid/: ${svid##*/}, $(basename "${svid%.pem}.key"), ${bundle##*/}

Next steps (the daemons keep running):
  Register another workload, e.g. everything running as www-data:
    $s entry create --socket-path $SERVER_SOCK \\
      --parent-id $NODE_ID --spiffe-id spiffe://$TRUST_DOMAIN/www-data --selector unix:user:www-data
  Fetch as that user through the Workload API socket:
    export SPIFFE_ENDPOINT_SOCKET=unix://$AGENT_SOCK
    setpriv --reuid=www-data --regid=www-data --clear-groups $a api fetch x509
    (also: api fetch jwt --audience A, api watch; the server CLI: $s --help)
  Logs:  $state/server.log  $state/agent.log
  Stop:  $SELF stop    (clean: also delete the state; a rerun reuses it)
EOF
}

case ${1:-start} in
  start) cmd_start ;;
  stop) cmd_stop ;;
  clean) cmd_clean ;;
  -h | --help | help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' ;;
  *)
    echo "usage: $0 [start|stop|clean|help]" >&2
    exit 2
    ;;
esac
