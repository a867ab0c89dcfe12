#!/usr/bin/env bash
# The shipped systemd units pass `systemd-analyze verify` with the binaries they name pointed at
# the ones just built (verify checks that ExecStart's executable exists).
# Usage: systemd_units_test.sh <tessera-server> <tessera-agent> <packaging/systemd dir>
set -euo pipefail
SERVER=$1
AGENT=$2
UNITS=$3
source "$(dirname "$0")/lib.sh"

verify_unit() {  # <unit file name> <installed binary path> <built binary>
  local unit=$1 installed=$2 built=$3
  sed "s|$installed|$built|g" "$UNITS/$unit" >"$E2E_DIR/$unit"
  # The user may not exist on a build machine; verify warns about nothing else we care about.
  sed -i 's/^User=.*//; s/^Group=.*//' "$E2E_DIR/$unit"
  local out
  out=$(systemd-analyze verify "$E2E_DIR/$unit" 2>&1) || fail "verify $unit: $out"
  if grep -v -e "^$" <<<"$out" | grep -qi "$unit"; then
    fail "systemd-analyze verify complained about $unit: $out"
  fi
}

verify_unit tessera-server.service /usr/local/bin/tessera-server "$SERVER"
verify_unit tessera-agent.service /usr/local/bin/tessera-agent "$AGENT"
echo "PASS"
