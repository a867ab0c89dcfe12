#!/usr/bin/env bash
# Envoy's SDS on the real agent's socket, through `tessera-agent api fetch secrets` (the same
# FetchSecrets call and messages Envoy uses), as an unprivileged "proxy" user: the certificate
# secret verifies with openssl against the server's `bundle show`, names the proxy's SPIFFE ID,
# its key matches, and it is the very SVID the Workload API serves to the same user; the bundle
# secrets carry the server's CAs (the bundle as the SPIFFE validator, ALL too); a name the proxy is
# not entitled to is refused, naming it, and the agent keeps serving. The agent's [sds] table
# renames the default certificate and bundle resources.
# Usage: sds_test.sh <tessera-server> <tessera-agent>
set -euo pipefail
SERVER=$1
AGENT=$2
source "$(dirname "$0")/lib.sh"

start_server_and_agent "" $'[sds]\ndefault_svid_name = "proxy-svid"\ndefault_bundle_name = "TRUST"'
PROXY_UID=65534
PROXY_ID=spiffe://$TRUST_DOMAIN/sds-proxy
create_entry sds-proxy "$PROXY_UID" >/dev/null
srv bundle show >"$E2E_DIR/bundle.pem"

secrets_as() {  # UID DIR NAME...: `api fetch secrets --write DIR --name NAME...` as that user
  local uid=$1 dir=$2
  shift 2
  local args=()
  for name in "$@"; do args+=(--name "$name"); done
  mkdir -p "$dir" && chown "$uid" "$dir"
  as_uid "$uid" "$AGENT" api fetch secrets --socket-path "$AGENT_SOCK" --write "$dir" "${args[@]}"
}

SDS=$E2E_DIR/sds
wait_for "the proxy's secrets" 20 secrets_as "$PROXY_UID" "$SDS" "$PROXY_ID" TRUST ALL proxy-svid
cert=$SDS/spiffe___${TRUST_DOMAIN}_sds-proxy.pem
key=$SDS/spiffe___${TRUST_DOMAIN}_sds-proxy.key
for f in "$cert" "$key" "$SDS/proxy-svid.pem" "$SDS/TRUST.$TRUST_DOMAIN.bundle.pem" \
  "$SDS/ALL.$TRUST_DOMAIN.bundle.pem"; do
  [[ -s $f ]] || fail "missing $f: $(ls "$SDS")"
done
[[ $(stat -c %a "$key") == 600 ]] || fail "the certificate secret's key is not 0600"

# The certificate secret, checked with openssl only.
openssl verify -CAfile "$E2E_DIR/bundle.pem" "$cert" >/dev/null ||
  fail "the SDS certificate does not verify against bundle show"
san=$(openssl x509 -in "$cert" -noout -ext subjectAltName | sed -n 's/^ *//; 2p')
[[ $san == "URI:$PROXY_ID" ]] || fail "the SDS certificate names '$san', not URI:$PROXY_ID"
cmp -s <(openssl pkey -in "$key" -pubout) <(openssl x509 -in "$cert" -noout -pubkey) ||
  fail "the SDS key does not match its certificate"
head -1 "$key" | grep -q -- "-----BEGIN PRIVATE KEY-----" || fail "the SDS key is not PKCS#8"
cmp -s "$cert" "$SDS/proxy-svid.pem" || fail "'proxy-svid' is not the proxy's only identity"

# The same SVID the Workload API serves to that user.
fetch_as "$PROXY_UID" "$E2E_DIR/wl" >/dev/null
cmp -s <(openssl x509 -in "$cert" -outform DER) \
  <(openssl x509 -in "$E2E_DIR/wl/svid.0.pem" -outform DER) ||
  fail "SDS and the Workload API serve different certificates to the same workload"

# Bundles: exactly the server's CAs.
for name in TRUST ALL; do
  cmp -s <(openssl x509 -in "$SDS/$name.$TRUST_DOMAIN.bundle.pem" -outform DER) \
    <(openssl x509 -in "$E2E_DIR/bundle.pem" -outform DER) ||
    fail "$name does not carry the server's CA"
done
out=$(as_uid "$PROXY_UID" "$AGENT" api fetch secrets --socket-path "$AGENT_SOCK" --name ALL)
grep -q "SPIFFE certificate validator" <<<"$out" || fail "ALL is not a SPIFFE validator: $out"
grep -q "$TRUST_DOMAIN: 1 CA certificate" <<<"$out" || fail "ALL does not list $TRUST_DOMAIN: $out"

# JSON output shows the secrets but never the private key (only --write puts it in a 0600 file).
out=$(as_uid "$PROXY_UID" "$AGENT" api fetch secrets --socket-path "$AGENT_SOCK" --output json \
  --name proxy-svid)
python3 -c '
import json, sys
secrets = json.loads(sys.argv[1])
assert [s["name"] for s in secrets] == ["proxy-svid"], secrets
cert = secrets[0]["tls_certificate"]
assert cert["private_key"] == {"inline_string": "(omitted)"}, cert["private_key"]
assert cert["certificate_chain"]["inline_bytes"], cert' "$out" || fail "bad JSON secrets: $out"
grep -q "PRIVATE KEY" <<<"$out" && fail "the JSON output carries a private key"

# A name the proxy is not entitled to: refused, named, and the agent carries on.
if out=$(as_uid "$PROXY_UID" "$AGENT" api fetch secrets --socket-path "$AGENT_SOCK" \
  --name "spiffe://$TRUST_DOMAIN/not-mine" --name TRUST --name default 2>&1); then
  fail "an unknown name was served: $out"
fi
# (default and ROOTCA are no names of this agent's: [sds] renamed them.)
grep -q "identities \[\"default\" \"spiffe://$TRUST_DOMAIN/not-mine\"\]" <<<"$out" ||
  fail "the refusal does not name the resources: $out"
# A user without any entry gets no certificate either.
if out=$(as_uid 65533 "$AGENT" api fetch secrets --socket-path "$AGENT_SOCK" --name proxy-svid 2>&1)
then
  fail "a user without an entry got a certificate: $out"
fi
as_uid "$PROXY_UID" "$AGENT" api fetch secrets --socket-path "$AGENT_SOCK" --name proxy-svid |
  grep -q "tls_certificate: $PROXY_ID" || fail "the agent stopped serving SDS"
echo "PASS"
