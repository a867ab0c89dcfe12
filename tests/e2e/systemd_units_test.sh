#!/usr/bin/env bash
# The shipped systemd units pass `systemd-analyze verify` with the binary they name pointed at
# the one just built (verify checks that ExecStart's executable exists).
# Usage: systemd_units_test.sh <path to tessera-server> <packaging/systemd dir>
set -euo pipefail
SERVER=$1
UNITS=$2
source "$(dirname "$0")/lib.sh"
sed "s|/usr/local/bin/tessera-server|$SERVER|g" "$UNITS/tessera-server.service" \
  >"$E2E_DIR/tessera-server.service"
# The user may not exist on a build machine; verify warns about nothing else we care about.
sed -i 's/^User=.*//; s/^Group=.*//' "$E2E_DIR/tessera-server.service"
out=$(systemd-analyze verify "$E2E_DIR/tessera-server.service" 2>&1) || fail "verify: $out"
if grep -v -e "^$" <<<"$out" | grep -qi "tessera-server.service"; then
  fail "systemd-analyze verify complained: $out"
fi
echo "PASS"
