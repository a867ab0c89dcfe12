#!/usr/bin/env bash
# What a workload does with its SVIDs, checked with nothing but the openssl command line: two
# workloads (root and nobody, via setpriv) fetch X509-SVIDs from the agent; each chain verifies
# against the server's `bundle show` and names its SPIFFE ID; `openssl s_server` and
# `openssl s_client` complete an mTLS handshake with the two SVIDs, and the client refuses the
# server when it trusts only another trust domain's CA. JWT-SVIDs: fetched, accepted by the
# agent's ValidateJWTSVID, refused for another audience and once expired.
# Usage: mtls_test.sh <tessera-server> <tessera-agent>
set -euo pipefail
SERVER=$1
AGENT=$2
source "$(dirname "$0")/lib.sh"

start_server_and_agent
ROOT_ID=spiffe://$TRUST_DOMAIN/mtls-server
NOBODY_ID=spiffe://$TRUST_DOMAIN/mtls-client
create_entry mtls-server 0 >/dev/null
create_entry mtls-client 65534 >/dev/null
# JWT-SVIDs of this entry live one second (a third user: the others have one SVID each).
SHORT_ID=spiffe://$TRUST_DOMAIN/short-jwt
create_entry short-jwt 65532 --jwt-svid-ttl 1 >/dev/null
srv bundle show >"$E2E_DIR/bundle.pem"

fetch_jwt() {  # <audience> [uid [spiffe id]]: prints the caller's JWT-SVID for the audience
  as_uid "${2:-0}" "$AGENT" api fetch jwt --socket-path "$AGENT_SOCK" --audience "$1" \
    ${3:+--spiffe-id "$3"} 2>/dev/null |
    grep -o 'ey[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*' | head -1
}
validate_jwt() {  # <audience> <token>
  "$AGENT" api validate jwt --socket-path "$AGENT_SOCK" --audience "$1" --svid "$2" 2>&1
}

# Fetched first, so that waiting out its expiry overlaps the X.509 checks. Validation tolerates
# clock skew (spiffe/jwt_svid.h: kJwtLeeway, SPIRE's go-jose allows a minute): "expired" means
# exp + leeway is past.
JWT_LEEWAY=30
has_short() { SHORT=$(fetch_jwt short 65532 "$SHORT_ID") && [[ -n $SHORT ]]; }
wait_for "a JWT-SVID for $SHORT_ID" 20 has_short
out=$(validate_jwt short "$SHORT") || fail "fresh short-lived JWT-SVID refused: $out"
grep -q "$SHORT_ID" <<<"$out" || fail "validation does not name $SHORT_ID: $out"
claims=$(sed -n 's/^Claims *: //p' <<<"$out")
SHORT_EXP=$(python3 -c '
import json, sys
c = json.loads(sys.argv[1])
sys.exit(1) if c["exp"] - c["iat"] != 1 else print(c["exp"])' "$claims") ||
  fail "the JWT-SVID does not live the entry's 1 s: $claims"

# --- X509-SVIDs ---------------------------------------------------------------------------------
wait_for "root's SVID" 20 fetch_as 0 "$E2E_DIR/root"
wait_for "nobody's SVID" 20 fetch_as 65534 "$E2E_DIR/nobody"
for pair in "root $ROOT_ID" "nobody $NOBODY_ID"; do
  read -r who id <<<"$pair"
  dir="$E2E_DIR/$who"
  check_svid "$dir" "$id"
  # Against the bundle an operator gets from the server, not only the one the agent handed out.
  openssl verify -CAfile "$E2E_DIR/bundle.pem" "$dir/svid.0.pem" >/dev/null ||
    fail "$who's SVID does not verify against bundle show"
  san=$(openssl x509 -in "$dir/svid.0.pem" -noout -ext subjectAltName | sed -n 's/^ *//; 2p')
  [[ $san == "URI:$id" ]] || fail "$who's SVID names '$san', not URI:$id"
  cmp -s <(openssl pkey -in "$dir/svid.0.key" -pubout) \
    <(openssl x509 -in "$dir/svid.0.pem" -noout -pubkey) || fail "$who's key does not match"
done

# --- mTLS with openssl --------------------------------------------------------------------------
# Another trust domain's CA, for a client that must not trust our server.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
  -subj "/O=other.org" -addext "subjectAltName=URI:spiffe://other.org" \
  -keyout "$E2E_DIR/other-ca.key" -out "$E2E_DIR/other-ca.pem" 2>/dev/null

TLS_PORT=$(free_port)
# -verify_return_error with -Verify 1: a client without a certificate our CA signed is refused.
# The server answers each connection and stays up (no -naccept) until the test ends.
openssl s_server -accept "127.0.0.1:$TLS_PORT" -cert "$E2E_DIR/root/svid.0.pem" \
  -key "$E2E_DIR/root/svid.0.key" -CAfile "$E2E_DIR/bundle.pem" -Verify 1 -verify_return_error \
  -www >"$E2E_DIR/s_server.log" 2>&1 &
E2E_PIDS+=("$!")
wait_for "s_server" 10 python3 -c \
  'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])))' "$TLS_PORT"

# s_client: CAFILE, then extra flags. Prints the session, then the server's answer to a GET.
s_client() {
  local cafile=$1
  shift
  printf 'GET / HTTP/1.0\r\n\r\n' | timeout 10 openssl s_client -connect "127.0.0.1:$TLS_PORT" \
    -cert "$E2E_DIR/nobody/svid.0.pem" -key "$E2E_DIR/nobody/svid.0.key" -CAfile "$cafile" \
    -verify_return_error -ign_eof "$@" 2>&1
}
out=$(s_client "$E2E_DIR/bundle.pem") || fail "mTLS handshake failed: $out"
grep -q "Verify return code: 0 (ok)" <<<"$out" || fail "client did not verify the server: $out"
# -www answers with the session as the server saw it, including the client's certificate.
grep -q "Client certificate" <<<"$out" || fail "server did not see the client's SVID: $out"
# The server's SVID as the client received it names the server's SPIFFE ID.
sed -n '/-----BEGIN CERTIFICATE-----/,/-----END CERTIFICATE-----/p' <<<"$out" |
  openssl x509 -noout -ext subjectAltName | grep -q "URI:$ROOT_ID" ||
  fail "the server's certificate is not $ROOT_ID"

# The client trusts only other.org: it must refuse our server.
if out=$(s_client "$E2E_DIR/other-ca.pem"); then
  fail "a client trusting other.org accepted example.org's server: $out"
fi
# (s_server sends our CA along with the SVID: the chain ends in a root the client does not know.)
unknown_root="verify error:num=(19:self-signed certificate in certificate chain|20:unable to get local)"
grep -qE "$unknown_root" <<<"$out" || fail "the client refused our server for another reason: $out"
# And a client whose certificate other.org signed is refused by our server.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
  -subj "/O=other.org" -addext "subjectAltName=URI:spiffe://other.org/intruder" \
  -CA "$E2E_DIR/other-ca.pem" -CAkey "$E2E_DIR/other-ca.key" \
  -keyout "$E2E_DIR/intruder.key" -out "$E2E_DIR/intruder.pem" 2>/dev/null
# In TLS 1.3 the client learns of the refusal from the server's alert, after its own handshake.
if out=$(printf 'GET / HTTP/1.0\r\n\r\n' | timeout 10 openssl s_client \
  -connect "127.0.0.1:$TLS_PORT" -cert "$E2E_DIR/intruder.pem" -key "$E2E_DIR/intruder.key" \
  -CAfile "$E2E_DIR/bundle.pem" -verify_return_error -ign_eof 2>&1); then
  fail "our server accepted a client certificate signed by other.org: $out"
fi
grep -q "alert unknown ca" <<<"$out" ||
  fail "the server refused the intruder for another reason: $out"
grep -q "Client certificate" <<<"$out" && fail "the server answered the intruder: $out"
# The server is still there for a legitimate client.
s_client "$E2E_DIR/bundle.pem" | grep -q "Verify return code: 0 (ok)" ||
  fail "mTLS handshake failed after the refused ones"

# --- JWT-SVIDs ----------------------------------------------------------------------------------
JWT=$(fetch_jwt db)
[[ -n $JWT ]] || fail "no JWT-SVID"
out=$(validate_jwt db "$JWT") || fail "JWT-SVID refused for its own audience: $out"
grep -q "$ROOT_ID" <<<"$out" || fail "validation does not name $ROOT_ID: $out"
if out=$(validate_jwt other "$JWT"); then fail "JWT-SVID accepted for another audience: $out"; fi
grep -qi "audience" <<<"$out" || fail "wrong-audience refusal does not say why: $out"

# The short-lived JWT-SVID fetched at the start: refused once past its expiry and the leeway.
wait=$((SHORT_EXP + JWT_LEEWAY + 1 - $(date +%s)))
((wait <= 0)) || sleep "$wait"
if out=$(validate_jwt short "$SHORT"); then fail "expired JWT-SVID accepted: $out"; fi
grep -qi "expired" <<<"$out" || fail "expired JWT-SVID refused without saying so: $out"
echo "PASS"
