#!/usr/bin/env bash
# tessera-server as an operator meets it: the real binary started with `run`, driven only by its
# CLI over the admin socket, checked with the openssl command line. Covers: entry lifecycle,
# join token with alias entry, x509 mint verified by `openssl verify` against `bundle show`, JWT
# mint, a bad request refused without effect, and a restart that keeps CA, bundle and entries.
# Usage: server_cli_test.sh <tessera-server> [<tessera-agent>, unused]
set -euo pipefail
SERVER=$1
source "$(dirname "$0")/lib.sh"

HEALTH_PORT=$(free_port)
SOCK=$ADMIN_SOCK
write_server_config "$(printf '[health]\nbind_port = %s' "$HEALTH_PORT")"
# lib.sh's stop_server, plus: the admin socket is removed on shutdown.
stop_server_cleanly() {
  stop_server
  [[ ! -e $SOCK ]] || fail "admin socket left behind after shutdown"
}
cli() { srv "$@"; }

start_server
[[ $(stat -c %a "$(dirname "$SOCK")") == 700 ]] || fail "admin socket directory is not 0700"
curl -fsS "http://127.0.0.1:$HEALTH_PORT/ready" | grep -q '"ok"' || fail "/ready is not ok"

# Entries.
cli entry create --spiffe-id spiffe://example.org/web \
  --parent-id spiffe://example.org/spire/agent/join_token/abc --selector unix:uid:1000 \
  --x509-svid-ttl 30m --dns web.example.org --output json >"$E2E_DIR/created.json"
ENTRY_ID=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["results"][0]["entry"]["id"])' \
  <"$E2E_DIR/created.json")
[[ -n $ENTRY_ID ]] || fail "no entry id in create output"
cli entry show --entry-id "$ENTRY_ID" | grep -q "Selector         : unix:uid:1000" ||
  fail "entry show lacks the selector"
[[ $(cli entry count) == "1 registration entry" ]] || fail "entry count"

# A bad request is refused with a message naming the problem, and nothing is written.
if cli entry create --spiffe-id spiffe://other.org/x --parent-id spiffe://example.org/a \
  --selector a:b 2>"$E2E_DIR/err.txt"; then
  fail "an entry outside the trust domain was accepted"
fi
grep -q 'is not a member of trust domain "example.org"' "$E2E_DIR/err.txt" ||
  fail "unexpected error: $(cat "$E2E_DIR/err.txt")"
[[ $(cli entry count) == "1 registration entry" ]] || fail "a refused create wrote something"

# Join token with an alias entry for the agent that will use it.
TOKEN=$(cli token generate --spiffe-id spiffe://example.org/node-a --ttl 600 | sed -n 's/^Token: //p')
[[ -n $TOKEN ]] || fail "no token printed"
cli entry show --spiffe-id spiffe://example.org/node-a |
  grep -q "Parent ID        : spiffe://example.org/spire/agent/join_token/$TOKEN" ||
  fail "token alias entry missing"

# x509 mint, verified by openssl against `bundle show`.
cli bundle show --format pem >"$E2E_DIR/bundle.pem"
cli x509 mint --spiffe-id spiffe://example.org/cli --ttl 10m --write "$E2E_DIR/mint" >/dev/null
openssl verify -CAfile "$E2E_DIR/bundle.pem" "$E2E_DIR/mint/svid.pem" >/dev/null ||
  fail "minted SVID does not verify against bundle show"
openssl x509 -in "$E2E_DIR/mint/svid.pem" -noout -ext subjectAltName |
  grep -q "URI:spiffe://example.org/cli" || fail "minted SVID lacks its URI SAN"
[[ $(stat -c %a "$E2E_DIR/mint/key.pem") == 600 ]] || fail "minted key is not 0600"
cmp <(openssl pkey -in "$E2E_DIR/mint/key.pem" -pubout) \
  <(openssl x509 -in "$E2E_DIR/mint/svid.pem" -noout -pubkey) || fail "key does not match SVID"

# JWT mint: three base64url parts, header with kid, payload with sub and aud.
JWT=$(cli jwt mint --spiffe-id spiffe://example.org/cli --audience db)
PAYLOAD=$(cut -d. -f2 <<<"$JWT" | tr '_-' '/+')
PAYLOAD=$(python3 -c 'import base64,sys; s=sys.argv[1]; print(base64.b64decode(s+"="*(-len(s)%4)).decode())' "$PAYLOAD")
grep -q '"sub":"spiffe://example.org/cli"' <<<"$PAYLOAD" || fail "jwt sub: $PAYLOAD"
grep -q '"db"' <<<"$PAYLOAD" || fail "jwt aud: $PAYLOAD"

# Restart: same CA, same entries.
stop_server_cleanly
start_server
cmp <(cli bundle show --format pem) "$E2E_DIR/bundle.pem" || fail "CA changed across restart"
[[ $(cli entry count) == "2 registration entries" ]] || fail "entries lost across restart"
openssl verify -CAfile <(cli bundle show) "$E2E_DIR/mint/svid.pem" >/dev/null ||
  fail "pre-restart SVID no longer verifies"
echo "PASS"
