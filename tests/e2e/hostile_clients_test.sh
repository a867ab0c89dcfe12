#!/usr/bin/env bash
# Hostile clients against the real daemons: random bytes on the agent's Workload API socket and
# on the server's port (raw, and after a TLS handshake); hundreds of connections opened and
# dropped on both; a workload that opens an X.509 stream and never reads it (`api watch`, stopped
# with SIGSTOP) while its identities change over and over; oversized requests (through the CLI,
# and a raw HTTP/2 call whose message claims 64 MiB, on both daemons). Throughout, a well-behaved
# workload keeps getting its SVID quickly; afterwards both daemons are healthy, their memory is
# bounded, the stopped workload catches up with the latest state once resumed, and both daemons
# exit cleanly with no sanitizer report.
# Usage: hostile_clients_test.sh <tessera-server> <tessera-agent>
set -euo pipefail
SERVER=$1
AGENT=$2
HERE=$(dirname "$0")
source "$HERE/lib.sh"
HOSTILE="$HERE/hostile_clients.py"

# ASan keeps freed memory in a quarantine (256 MB by default) before reusing it, so any busy
# process grows by that much whatever it does: keep it small so that RSS says something about
# the daemons. (Ignored by builds without ASan.)
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=16"

start_server_and_agent
create_entry steady 0 >/dev/null
create_entry watcher 65534 >/dev/null
# Bulky identities for the watcher's uid: each X509-SVID carries 40 DNS names of ~240 bytes
# (~10 kB), so that the updates the stopped watcher does not read soon exceed what HTTP/2 flow
# control windows and socket buffers absorb (a few MB), and the agent's writes block.
label=$(head -c 58 /dev/zero | tr '\0' d)
BULK=()
for i in $(seq 40); do BULK+=(--dns "$label.$label.$label.n$i-$label"); done
for i in $(seq 5); do create_entry "bulk-$i" 65534 "${BULK[@]}" >/dev/null; done
TLS_TARGET=tls:127.0.0.1:$SERVER_PORT
wait_for "the steady workload's SVID" 20 fetch_as 0 "$E2E_DIR/steady"
check_svid "$E2E_DIR/steady" "spiffe://$TRUST_DOMAIN/steady"

# The workload that never reads: its stream is open and has delivered the first update when it
# stops.
# (setpriv, not as_uid: $! must be the watch itself, not a subshell running the function.)
# In a session of its own: a stopped process in the test runner's process group would get the
# whole group (ctest included) killed by SIGHUP if that group were orphaned meanwhile (POSIX
# orphaned-process-group rule), e.g. when the shell that started ctest exits.
setsid setpriv --reuid=65534 --regid=65534 --clear-groups \
  "$AGENT" api watch --socket-path "$AGENT_SOCK" --output json \
  >"$E2E_DIR/watch.out" 2>"$E2E_DIR/watch.err" &
WATCH_PID=$!
E2E_PIDS+=("$WATCH_PID")
has_all_six() { tail -1 "$E2E_DIR/watch.out" | grep -o '"spiffe_id"' | wc -l | grep -qx 6; }
wait_for "the watcher's first update with all its SVIDs" 20 has_all_six
kill -STOP "$WATCH_PID"

# Warm up what a first connection initialises (TLS, thread pools), then take the baseline.
python3 "$HOSTILE" churn "$TLS_TARGET" 20 >/dev/null
python3 "$HOSTILE" churn "unix:$AGENT_SOCK" 20 >/dev/null
SERVER_RSS0=$(rss_kb "$SERVER_PID")
AGENT_RSS0=$(rss_kb "$AGENT_PID")

# The well-behaved workload, throughout: one fetch every 0.2 s, each line "<rc> <milliseconds>".
(
  while :; do
    start=$(date +%s%N)
    rc=0
    "$AGENT" api fetch x509 --socket-path "$AGENT_SOCK" --silent --timeout 10s \
      >>"$E2E_DIR/probe.log" 2>&1 || rc=$?
    echo "$rc $((($(date +%s%N) - start) / 1000000))" >>"$E2E_DIR/probe.txt"
    sleep 0.2
  done
) &
PROBE_PID=$!
E2E_PIDS+=("$PROBE_PID")

# The stopped watcher's identities change over and over: entries for its uid come and go.
CHANGES=40
(
  ids=()
  for i in $(seq $((CHANGES / 2))); do
    ids+=("$(create_entry "churn-$i" 65534 "${BULK[@]}")")
  done
  for id in "${ids[@]}"; do
    srv entry delete --entry-id "$id" >/dev/null
  done
) >>"$E2E_DIR/churn-entries.log" 2>&1 &
ENTRIES_PID=$!
E2E_PIDS+=("$ENTRIES_PID")

# Meanwhile, the storm.
for target in "unix:$AGENT_SOCK" "tcp:127.0.0.1:$SERVER_PORT" "$TLS_TARGET"; do
  python3 "$HOSTILE" garbage "$target"
  python3 "$HOSTILE" churn "$target" 300
done
# An oversized request from the agent's own CLI (argv allows ~1.5 MB): refused, with the reason.
aud=$(head -c 100000 /dev/zero | tr '\0' a)
args=()
for i in $(seq 15); do args+=(--audience "$aud$i"); done
if out=$("$AGENT" api fetch jwt --socket-path "$AGENT_SOCK" "${args[@]}" 2>&1); then
  fail "a 1.5 MB FetchJWTSVID request was served"
fi
grep -q "larger than max" <<<"$out" ||
  fail "oversized request refused for another reason: ${out:0:300}"
wait "$ENTRIES_PID" ||
  fail "creating and deleting entries failed: $(tail -3 "$E2E_DIR/churn-entries.log")"
sleep 1  # a last probe or two after the storm
kill "$PROBE_PID"
wait "$PROBE_PID" 2>/dev/null || true

# Every probe succeeded, and quickly. The bound is loose (ASan CLI start-up is ~0.1 s, two cores
# are shared with the storm) yet far below the CLI's timeout: a daemon that stalls fails it.
PROBE_BOUND_MS=3000
probes=$(wc -l <"$E2E_DIR/probe.txt")
((probes >= 10)) || fail "only $probes probes ran"
awk '$1 != 0' "$E2E_DIR/probe.txt" | grep -q . &&
  fail "the steady workload failed to fetch during the storm: $(tail -5 "$E2E_DIR/probe.log")"
slowest=$(sort -n -k2 "$E2E_DIR/probe.txt" | tail -1 | cut -d' ' -f2)
echo "steady workload: $probes fetches during the storm, slowest ${slowest} ms"
((slowest < PROBE_BOUND_MS)) || fail "a fetch took ${slowest} ms during the storm"

# Both daemons are alive and answer.
kill -0 "$SERVER_PID" 2>/dev/null || fail "the server died"
kill -0 "$AGENT_PID" 2>/dev/null || fail "the agent died"
"$AGENT" healthcheck --socket-path "$AGENT_SOCK" >/dev/null ||
  fail "agent unhealthy after the storm"
srv healthcheck >/dev/null || fail "server unhealthy after the storm"
fetch_as 0 "$E2E_DIR/after" >/dev/null || fail "no SVID after the storm"
check_svid "$E2E_DIR/after" "spiffe://$TRUST_DOMAIN/steady"

# Memory stays bounded. Without ASan these daemons hold ~30 MB (agent) and ~65 MB (server) after
# such a storm; with ASan each allocation also costs shadow memory and redzones, its allocator
# keeps per-size-class free lists and a 16 MB quarantine, and gRPC grows its buffers to the
# largest message seen. Twice the warmed-up baseline plus 64 MB covers all that; a daemon that
# keeps something of every connection, or buffers what a stopped reader is not reading, does not
# fit (measured with these ASan builds: server ~95 -> ~150 MB, agent ~75 -> ~110 MB).
SERVER_RSS1=$(rss_kb "$SERVER_PID")
AGENT_RSS1=$(rss_kb "$AGENT_PID")
echo "RSS kB: server $SERVER_RSS0 -> $SERVER_RSS1, agent $AGENT_RSS0 -> $AGENT_RSS1"
((SERVER_RSS1 < 2 * SERVER_RSS0 + 65536)) || fail "server RSS $SERVER_RSS0 -> $SERVER_RSS1 kB"
((AGENT_RSS1 < 2 * AGENT_RSS0 + 65536)) || fail "agent RSS $AGENT_RSS0 -> $AGENT_RSS1 kB"

# The stopped watcher has not been reading: what the agent sent piled up in its socket (the
# kernel's buffer holds ~200 kB; past that, and past the HTTP/2 window, the agent's writes wait).
unread=$(ss -xpn | awk -v pid="pid=$WATCH_PID," 'index($0, pid) {print $3}' | sort -n | tail -1)
echo "watcher: ${unread:-0} bytes unread in its socket while stopped"
((${unread:-0} > 150000)) ||
  fail "the stopped watcher's socket is not full: the test did not load it"
# Resumed, it catches up: its latest update is the current state (the watcher and bulk
# entries), whatever it missed in between.
kill -CONT "$WATCH_PID"
WATCHER_IDS=()
for name in bulk-1 bulk-2 bulk-3 bulk-4 bulk-5 watcher; do
  WATCHER_IDS+=("spiffe://$TRUST_DOMAIN/$name")
done
caught_up() {
  tail -1 "$E2E_DIR/watch.out" | python3 -c '
import json, sys
ids = sorted(s["spiffe_id"] for s in json.loads(sys.stdin.read())["svids"])
sys.exit(ids != sys.argv[1:])' "${WATCHER_IDS[@]}"
}
wait_for "the resumed watcher to reach the current state" 10 caught_up
kill -0 "$WATCH_PID" || fail "the watcher's stream ended: $(cat "$E2E_DIR/watch.err")"
echo "watcher: $(wc -l <"$E2E_DIR/watch.out") updates" \
  "($(wc -c <"$E2E_DIR/watch.out") bytes of JSON) received for $CHANGES changes"
kill -TERM "$WATCH_PID"
wait "$WATCH_PID" || fail "api watch exited non-zero on SIGTERM: $(cat "$E2E_DIR/watch.err")"

# Raw calls whose request message claims 256 MiB, last (see check_oversized below for why).
AGENT_OVERSIZED=$(python3 "$HOSTILE" oversized "unix:$AGENT_SOCK" \
  /SpiffeWorkloadAPI/FetchJWTSVID 256)
AGENT_RSS2=$(rss_kb "$AGENT_PID")
SERVER_OVERSIZED=$(python3 "$HOSTILE" oversized "$TLS_TARGET" \
  /spire.api.server.agent.v1.Agent/AttestAgent 256)
SERVER_RSS2=$(rss_kb "$SERVER_PID")
echo "$AGENT_OVERSIZED"
echo "$SERVER_OVERSIZED"
echo "RSS kB after them: server $SERVER_RSS2, agent $AGENT_RSS2"
"$AGENT" healthcheck --socket-path "$AGENT_SOCK" >/dev/null || fail "agent unhealthy after 256 MiB"
srv healthcheck >/dev/null || fail "server unhealthy after 256 MiB"

# Clean exits, and no sanitizer report in either log.
stop_agent
stop_server
if grep -E "AddressSanitizer|LeakSanitizer|runtime error:" \
  "$E2E_DIR/agent.log" "$E2E_DIR/server.log"; then
  fail "sanitizer report in the daemons' logs"
fi

# Oversized requests: refused before the daemon has buffered much more than its transport memory
# quota (64 MiB on the agent, 128 MiB on the server; gRPC 1.51 checks the message size limit only
# once a whole message has arrived, so the quota is what bounds it). Without it, any local user
# (agent) or anyone who can reach the port, before any authentication (server), could make the
# daemon allocate up to 4 GiB per call.
check_oversized() {  # <who> <hostile_clients.py line> <max bytes read> <rss before> <rss after>
  local who=$1 line=$2 max=$3 sent
  sent=$(sed -n 's/.*: sent \([0-9]*\) of.*/\1/p' <<<"$line")
  grep -q "grpc-status.8" <<<"$line" || grep -qE "RST_STREAM|GOAWAY|closed|reset" <<<"$line" ||
    fail "$who: oversized call not refused: $line"
  ((sent < max)) ||
    fail "$who read $sent bytes of a request claiming 256 MiB before refusing it" \
      "(RSS $4 -> $5 kB): $line"
}
check_oversized agent "$AGENT_OVERSIZED" $((96 * 1024 * 1024)) "$AGENT_RSS1" "$AGENT_RSS2"
check_oversized server "$SERVER_OVERSIZED" $((192 * 1024 * 1024)) "$SERVER_RSS1" "$SERVER_RSS2"

echo "PASS"
