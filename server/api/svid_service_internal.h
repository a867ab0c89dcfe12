// Helpers shared by the SvidService sources (svid_service.cc, svid_service_mint.cc); not a public
// API. Stateless functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "nlohmann/json.hpp"
#include "server/api/service_deps.h"
#include "server/ca/ca_manager.h"
#include "spiffe/csr.h"
#include "spiffe/id.h"
#include "spiffe/x509_svid.h"
#include "spire/api/types/jwtsvid.pb.h"
#include "spire/api/types/x509svid.pb.h"

namespace tessera::server::svid_internal {

// A DER PKCS#10 request with its self-signature verified (spiffe::ParseCsrUnverified, then
// spiffe::VerifyCsrSignature; PEM is refused here, as SPIRE's Go parser refuses it). Both failures
// are InvalidArgument: "malformed CSR: ..." when the bytes are not a CSR, "<signature_context>:
// ..." when the signature does not verify (SPIRE says "invalid CSR signature" to agents and "failed
// to verify CSR signature" to admins). The request is decoded once: with OpenSSL 3 decoding its
// public key costs about as much as checking the signature, which counts in a batch of hundreds.
absl::StatusOr<spiffe::ParsedCsr> VerifyCsr(std::string_view der,
                                            std::string_view signature_context);

// The subject of a DER request (one VerifyCsr accepted) as attribute/value pairs: OpenSSL short
// names, or dotted OIDs for attributes OpenSSL has no name for; empty when the subject is.
// InvalidArgument "malformed CSR: ..." for a value that is not a string.
absl::StatusOr<spiffe::DistinguishedName> CsrSubject(std::string_view der);

// A CA failure as the API reports it: "<context>: <cause>", InvalidArgument when the cause is
// (the client's key or names could not go into a certificate), Internal otherwise (SPIRE's
// code for signing failures).
absl::Status SignFailure(std::string_view context, const absl::Status& cause);

// types.X509SVID {id, cert_chain (one DER certificate per element, leaf first), expires_at}.
void X509SvidToProto(const spiffe::SpiffeId& id, const ca::SignedX509Svid& svid,
                     ::spire::api::types::X509SVID* out);

// SPIRE's JWT-SVID minting, shared by NewJWTSVID and MintJWTSVID: `id` must be a workload ID of
// our trust domain ("invalid SPIFFE ID: ..."), at least one audience is required and none may be
// empty, `ttl` is in seconds (0: the CA's default, negative refused). `extra_claims` (a JSON
// object or null) go into the token beside the standard ones, e.g. an entry's "jti".
absl::StatusOr<::spire::api::types::JWTSVID> MintJwtSvid(
    const ServiceDeps& deps, const spiffe::SpiffeId& id,
    const google::protobuf::RepeatedPtrField<std::string>& audience, int32_t ttl,
    const nlohmann::json& extra_claims = nullptr);

}  // namespace tessera::server::svid_internal
