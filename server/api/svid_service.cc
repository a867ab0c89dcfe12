// SvidService's agent RPCs (BatchNewX509SVID, NewJWTSVID) and the helpers both halves of the
// service share. The admin RPCs are in svid_service_mint.cc.
#include "server/api/svid_service.h"

#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "common/strings.h"
#include "server/api/convert.h"
#include "server/api/grpc_status.h"
#include "server/api/svid_service_internal.h"
#include "server/datastore/datastore.h"
#include "spiffe/openssl.h"

namespace tessera::server {

namespace svid_internal {
namespace {

constexpr std::string_view kParsePrefix = "parse CSR: ";
// What makes spiffe::ParseCsrUnverified read its input as PEM.
constexpr std::string_view kPemMarker = "-----BEGIN";

}  // namespace

absl::StatusOr<spiffe::ParsedCsr> VerifyCsr(std::string_view der,
                                            std::string_view signature_context) {
  if (der.find(kPemMarker) != std::string_view::npos) {
    return absl::InvalidArgumentError("malformed CSR: PEM is not accepted, only DER");
  }
  // Decoded first, then the proof of possession, as SPIRE (Go) does: a request that is both
  // malformed and badly signed is "malformed".
  absl::StatusOr<spiffe::UnverifiedCsr> unverified = spiffe::ParseCsrUnverified(der);
  if (!unverified.ok()) {
    std::string_view message = AsStd(unverified.status().message());
    if (message.starts_with(kParsePrefix)) message.remove_prefix(kParsePrefix.size());
    return absl::InvalidArgumentError(absl::StrCat("malformed CSR: ", AsAbsl(message)));
  }
  absl::StatusOr<spiffe::ParsedCsr> verified = spiffe::VerifyCsrSignature(*std::move(unverified));
  if (!verified.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(AsAbsl(signature_context), ": signature does not verify"));
  }
  return verified;
}

absl::StatusOr<spiffe::DistinguishedName> CsrSubject(std::string_view der) {
  if (der.size() > static_cast<size_t>(INT_MAX)) {
    return absl::InvalidArgumentError("malformed CSR: too large");
  }
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  // Only the subject is read: the keyless context spares OpenSSL 3.0 a second decode of the key.
  OSSL_LIB_CTX* keyless = spiffe::KeylessDecodeContext();
  spiffe::X509ReqPtr request(keyless == nullptr
                                 ? d2i_X509_REQ(nullptr, &p, static_cast<long>(der.size()))
                                 : reinterpret_cast<X509_REQ*>(ASN1_item_d2i_ex(
                                       nullptr, &p, static_cast<long>(der.size()),
                                       ASN1_ITEM_rptr(X509_REQ), keyless, nullptr)));
  if (request == nullptr) return spiffe::OpenSslError("malformed CSR");
  spiffe::DistinguishedName subject;
  const X509_NAME* name = X509_REQ_get_subject_name(request.get());
  if (name == nullptr) return subject;
  for (int i = 0; i < X509_NAME_entry_count(name); ++i) {
    const X509_NAME_ENTRY* entry = X509_NAME_get_entry(name, i);
    const ASN1_OBJECT* object = X509_NAME_ENTRY_get_object(entry);
    int nid = OBJ_obj2nid(object);
    const char* short_name = nid == NID_undef ? nullptr : OBJ_nid2sn(nid);
    std::string attribute;
    if (short_name != nullptr) {
      attribute = short_name;
    } else {
      char oid[128];
      int len = OBJ_obj2txt(oid, sizeof(oid), object, /*no_name=*/1);
      if (len <= 0 || static_cast<size_t>(len) >= sizeof(oid)) {
        ERR_clear_error();
        return absl::InvalidArgumentError("malformed CSR: subject attribute with a bad OID");
      }
      attribute.assign(oid, static_cast<size_t>(len));
    }
    unsigned char* utf8 = nullptr;
    int len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(entry));
    if (len < 0) {
      ERR_clear_error();
      return absl::InvalidArgumentError(
          absl::StrCat("malformed CSR: subject attribute ", attribute, " is not a string"));
    }
    subject.emplace_back(std::move(attribute), std::string(reinterpret_cast<const char*>(utf8),
                                                           static_cast<size_t>(len)));
    OPENSSL_free(utf8);
  }
  return subject;
}

absl::Status SignFailure(std::string_view context, const absl::Status& cause) {
  absl::StatusCode code = cause.code() == absl::StatusCode::kInvalidArgument
                              ? absl::StatusCode::kInvalidArgument
                              : absl::StatusCode::kInternal;
  return absl::Status(code, absl::StrCat(AsAbsl(context), ": ", cause.message()));
}

void X509SvidToProto(const spiffe::SpiffeId& id, const ca::SignedX509Svid& svid,
                     types::X509SVID* out) {
  *out->mutable_id() = IdToProto(id);
  out->mutable_cert_chain()->Reserve(static_cast<int>(svid.chain.size()));
  for (const spiffe::Certificate& cert : svid.chain) out->add_cert_chain(cert.ToDer());
  out->set_expires_at(std::chrono::system_clock::to_time_t(svid.expires_at));
}

absl::StatusOr<types::JWTSVID> MintJwtSvid(
    const ServiceDeps& deps, const spiffe::SpiffeId& id,
    const google::protobuf::RepeatedPtrField<std::string>& audience, int32_t ttl,
    const nlohmann::json& extra_claims) {
  RETURN_IF_ERROR(Annotate(ValidateWorkloadId(id, deps.trust_domain), "invalid SPIFFE ID"));
  if (audience.empty()) return absl::InvalidArgumentError("at least one audience is required");
  for (const std::string& value : audience) {
    // A JWT-SVID's "aud" never holds an empty value (SPIFFE-FACTS §3).
    if (value.empty()) return absl::InvalidArgumentError("audience must not contain empty values");
  }
  if (ttl < 0) return absl::InvalidArgumentError("ttl must not be negative");
  absl::StatusOr<ca::SignedJwtSvid> jwt =
      deps.ca->SignJwtSvid(id, std::vector<std::string>(audience.begin(), audience.end()),
                           std::chrono::seconds(ttl), extra_claims);
  if (!jwt.ok()) return SignFailure("failed to sign JWT-SVID", jwt.status());
  types::JWTSVID out;
  out.set_token(std::move(jwt->token));
  *out.mutable_id() = IdToProto(id);
  out.set_expires_at(std::chrono::system_clock::to_time_t(jwt->expires_at));
  out.set_issued_at(std::chrono::system_clock::to_time_t(jwt->issued_at));
  return out;
}

}  // namespace svid_internal

namespace {

constexpr char kBatchNewX509Svid[] = "/spire.api.server.svid.v1.SVID/BatchNewX509SVID";
constexpr char kNewJwtSvid[] = "/spire.api.server.svid.v1.SVID/NewJWTSVID";

void SetStatus(const absl::Status& status, types::Status* out) {
  out->set_code(static_cast<int32_t>(status.code()));
  out->set_message(status.ok() ? std::string("OK") : std::string(status.message()));
}

// The agent's identity; Authorize only admits agents with one, so its absence is our bug.
absl::StatusOr<spiffe::SpiffeId> AgentId(const Caller& caller) {
  if (!caller.id.has_value()) {
    return absl::InternalError("caller ID missing from request context");
  }
  return *caller.id;
}

// A BatchNewX509SVID call mints on one more thread per this many items (beyond the first),
// within the budget below: an item costs a CSR check and a signature, well over a hundred
// microseconds, so a thread (tens of microseconds to start) pays for itself within this many.
constexpr int kItemsPerHelperThread = 8;
// How often (in items) each minting thread asks gRPC whether the call was cancelled.
constexpr int kItemsPerCancelCheck = 8;

// Helper threads in use by all BatchNewX509SVID calls together are capped at one fewer than the
// cores (the calls' own threads are gRPC's), so that batches running side by side never ask for
// more parallelism than the machine has beyond their own threads. A reservation holds up to the
// number asked for, as many as are free (possibly none), until it is destroyed.
class HelperThreads {
 public:
  explicit HelperThreads(int wanted) {
    if (wanted <= 0) return;
    int free = available_.load();
    do {
      count_ = std::min(wanted, free);
    } while (count_ > 0 && !available_.compare_exchange_weak(free, free - count_));
  }
  ~HelperThreads() { available_.fetch_add(count_); }
  HelperThreads(const HelperThreads&) = delete;
  HelperThreads& operator=(const HelperThreads&) = delete;

  int count() const { return count_; }

 private:
  static int Budget() {
    const int cores = static_cast<int>(std::thread::hardware_concurrency());
    return cores > 1 ? cores - 1 : 0;
  }
  static inline std::atomic<int> available_{Budget()};
  int count_ = 0;
};

// One BatchNewX509SVID item, the first failing check deciding its status (SPIRE's order: the
// request's own fields, then authorization, then the CSR).
absl::StatusOr<types::X509SVID> NewX509Svid(const ServiceDeps& deps,
                                            const spiffe::SpiffeId& agent_id,
                                            const svidv1::NewX509SVIDParams& params) {
  if (params.entry_id().empty()) return absl::InvalidArgumentError("missing entry ID");
  if (params.csr().empty()) return absl::InvalidArgumentError("missing CSR");
  EntryIndex::EntryPtr entry = deps.index->FindAuthorizedEntry(agent_id, params.entry_id());
  if (entry == nullptr) return absl::NotFoundError("entry not found or not authorized");
  ASSIGN_OR_RETURN(spiffe::ParsedCsr csr,
                   svid_internal::VerifyCsr(params.csr(), "invalid CSR signature"));
  if (!entry->spiffe_id.MemberOf(deps.trust_domain)) {
    // The index holds only entries of our trust domain: this is a broken invariant.
    return absl::InternalError(
        absl::StrCat("entry has malformed SPIFFE ID: \"", entry->spiffe_id.str(),
                     "\" is not a member of trust domain \"", deps.trust_domain.name(), "\""));
  }
  // Only the CSR's key is used: the identity, names and lifetime are the entry's.
  absl::StatusOr<ca::SignedX509Svid> svid =
      deps.ca->SignX509Svid(csr.public_key, entry->spiffe_id, entry->dns_names,
                            std::chrono::seconds(entry->x509_svid_ttl));
  if (!svid.ok()) return svid_internal::SignFailure("failed to sign X509-SVID", svid.status());
  types::X509SVID out;
  svid_internal::X509SvidToProto(entry->spiffe_id, *svid, &out);
  return out;
}

}  // namespace

grpc::Status SvidService::BatchNewX509SVID(grpc::ServerContext* context,
                                           const svidv1::BatchNewX509SVIDRequest* request,
                                           svidv1::BatchNewX509SVIDResponse* response) {
  absl::StatusOr<Caller> caller =
      deps_.authorizer->Authorize(*context, kBatchNewX509Svid, Access::kAgent);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  const int count = request->params_size();
  if (count == 0) return ToGrpcStatus(absl::InvalidArgumentError("missing parameters"));
  if (static_cast<size_t>(count) > kMaxBatchParams) {
    return ToGrpcStatus(absl::InvalidArgumentError(absl::StrCat("too many parameters: ", count,
                                                                " exceeds the limit of ",
                                                                kMaxBatchParams, " per request")));
  }
  absl::StatusOr<spiffe::SpiffeId> agent_id = AgentId(*caller);
  if (!agent_id.ok()) return ToGrpcStatus(agent_id.status());

  // Each item depends only on its own params, the entry index and the CA, all safe to use from
  // several threads, so a large batch is minted on more than one core; results keep their slots,
  // so the response is in request order whoever minted what.
  std::vector<absl::StatusOr<types::X509SVID>> svids(static_cast<size_t>(count));
  std::atomic<int> next{0};
  std::atomic<bool> cancelled{false};
  auto mint = [&] {
    int done = 0;
    for (int i = next.fetch_add(1); i < count; i = next.fetch_add(1), ++done) {
      // Signing is the costly part: stop for a client that has gone away. Asking gRPC polls the
      // call's completion queue, costly enough to matter here, so each thread asks before its
      // first item and then every few items (about a millisecond of signing).
      if (cancelled.load() || (done % kItemsPerCancelCheck == 0 && context->IsCancelled())) {
        cancelled.store(true);
        return;
      }
      svids[static_cast<size_t>(i)] = NewX509Svid(deps_, *agent_id, request->params(i));
    }
  };
  {
    HelperThreads helpers((count - 1) / kItemsPerHelperThread);
    std::vector<std::jthread> threads;
    for (int i = 0; i < helpers.count(); ++i) threads.emplace_back(mint);
    mint();
  }  // joins the helpers
  if (cancelled.load()) return grpc::Status::CANCELLED;

  response->mutable_results()->Reserve(count);
  for (absl::StatusOr<types::X509SVID>& svid : svids) {
    svidv1::BatchNewX509SVIDResponse::Result* result = response->add_results();
    SetStatus(svid.status(), result->mutable_status());
    if (svid.ok()) *result->mutable_svid() = *std::move(svid);
  }
  return grpc::Status::OK;
}

grpc::Status SvidService::NewJWTSVID(grpc::ServerContext* context,
                                     const svidv1::NewJWTSVIDRequest* request,
                                     svidv1::NewJWTSVIDResponse* response) {
  absl::StatusOr<Caller> caller =
      deps_.authorizer->Authorize(*context, kNewJwtSvid, Access::kAgent);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  absl::StatusOr<spiffe::SpiffeId> agent_id = AgentId(*caller);
  if (!agent_id.ok()) return ToGrpcStatus(agent_id.status());
  EntryIndex::EntryPtr entry = deps_.index->FindAuthorizedEntry(*agent_id, request->entry_id());
  if (entry == nullptr) {
    return ToGrpcStatus(absl::NotFoundError("entry not found or not authorized"));
  }
  nlohmann::json extra_claims = nullptr;
  if (entry->jwt_svid_include_jti) {
    // A fresh random ID per token, so that a relying party can refuse a replayed one.
    absl::StatusOr<std::string> jti = NewUuidV4();
    if (!jti.ok()) {
      return ToGrpcStatus(svid_internal::SignFailure("failed to sign JWT-SVID", jti.status()));
    }
    extra_claims = nlohmann::json::object({{"jti", *std::move(jti)}});
  }
  absl::StatusOr<types::JWTSVID> svid = svid_internal::MintJwtSvid(
      deps_, entry->spiffe_id, request->audience(), entry->jwt_svid_ttl, extra_claims);
  if (!svid.ok()) return ToGrpcStatus(svid.status());
  *response->mutable_svid() = *std::move(svid);
  return grpc::Status::OK;
}

}  // namespace tessera::server
