// SvidService's admin RPCs (MintX509SVID, MintJWTSVID) over real gRPC with the service harness:
// the admin socket and an admin ID over TLS may mint, anyone else is refused; every bad request
// gets SPIRE's code and message. CSRs the library will not build (no URI SAN, two, a custom
// subject) are crafted with OpenSSL here.
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <chrono>
#include <climits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/api/convert.h"
#include "server/api/service_test_util.h"
#include "server/api/svid_service.h"
#include "spiffe/bundle.h"
#include "spiffe/csr.h"
#include "spiffe/jwt_svid.h"
#include "spiffe/openssl.h"
#include "spiffe/x509_test_util.h"
#include "spiffe/x509_verify.h"

namespace tessera::server::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

constexpr char kAdmin[] = "spiffe://example.org/ops/admin";

// A DER CSR signed by `key` with `san` in OpenSSL's config syntax ("URI:spiffe://...,DNS:x";
// empty: no SAN extension) and `subject`.
std::string CraftCsr(const spiffe::PrivateKey& key, const std::string& san,
                     const spiffe::DistinguishedName& subject = {}) {
  spiffe::X509ReqPtr req(X509_REQ_new());
  EXPECT_NE(req, nullptr);
  EXPECT_EQ(X509_REQ_set_version(req.get(), X509_REQ_VERSION_1), 1);
  EXPECT_EQ(X509_REQ_set_pubkey(req.get(), key.get()), 1);
  X509_NAME* name = X509_REQ_get_subject_name(req.get());
  for (const auto& [attr, value] : subject) {
    EXPECT_EQ(X509_NAME_add_entry_by_txt(name, attr.c_str(), MBSTRING_UTF8,
                                         reinterpret_cast<const unsigned char*>(value.c_str()), -1,
                                         -1, 0),
              1);
  }
  if (!san.empty()) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, nullptr, NID_subject_alt_name, san.c_str());
    EXPECT_NE(ext, nullptr) << san;
    STACK_OF(X509_EXTENSION)* exts = sk_X509_EXTENSION_new_null();
    sk_X509_EXTENSION_push(exts, ext);
    EXPECT_EQ(X509_REQ_add_extensions(req.get(), exts), 1);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
  }
  EXPECT_GT(X509_REQ_sign(req.get(), key.get(), EVP_sha256()), 0);
  unsigned char* der = nullptr;
  int len = i2d_X509_REQ(req.get(), &der);
  EXPECT_GT(len, 0);
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  return out;
}

class SvidMintTest : public ServiceTest {
 protected:
  void SetUp() override {
    admin_ids_ = {Id(kAdmin)};
    ServiceTest::SetUp();
    if (HasFatalFailure()) return;
    service_ = std::make_unique<SvidService>(deps());
    StartServer({service_.get()});
    if (HasFatalFailure()) return;
  }

  grpc::Status MintX509(const std::string& csr, int32_t ttl, svidv1::MintX509SVIDResponse* out,
                        const std::shared_ptr<grpc::Channel>& channel = nullptr) {
    svidv1::MintX509SVIDRequest request;
    request.set_csr(csr);
    request.set_ttl(ttl);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    return svidv1::SVID::NewStub(channel ? channel : AdminChannel())
        ->MintX509SVID(&ctx, request, out);
  }

  grpc::Status MintJwt(const std::optional<std::pair<std::string, std::string>>& id,
                       std::vector<std::string> audience, int32_t ttl,
                       svidv1::MintJWTSVIDResponse* out,
                       const std::shared_ptr<grpc::Channel>& channel = nullptr) {
    svidv1::MintJWTSVIDRequest request;
    if (id.has_value()) {
      request.mutable_id()->set_trust_domain(id->first);
      request.mutable_id()->set_path(id->second);
    }
    for (std::string& aud : audience) request.add_audience(std::move(aud));
    request.set_ttl(ttl);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    return svidv1::SVID::NewStub(channel ? channel : AdminChannel())
        ->MintJWTSVID(&ctx, request, out);
  }

  spiffe::Certificate Leaf(const svidv1::MintX509SVIDResponse& out) {
    EXPECT_EQ(out.svid().cert_chain_size(), 1);
    return spiffe::Certificate::FromDer(out.svid().cert_chain(0)).value();
  }

  int64_t NowUnix() {
    return std::chrono::system_clock::to_time_t(
        std::chrono::floor<std::chrono::seconds>(clock_.Now()));
  }

  std::unique_ptr<SvidService> service_;
  spiffe::PrivateKey key_ = spiffe::PrivateKey::Generate(spiffe::KeyType::kEcP256).value();
};

TEST_F(SvidMintTest, MintsTheCsrsIdentityWithItsDnsNamesAndBothVerifiersAcceptIt) {
  std::string csr = spiffe::CreateCsr(key_, Id("spiffe://example.org/minted"),
                                      {"minted.example.org", "*.svc.example.org"})
                        .value();
  svidv1::MintX509SVIDResponse out;
  grpc::Status s = MintX509(csr, 0, &out);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(out.svid().id().trust_domain(), "example.org");
  EXPECT_EQ(out.svid().id().path(), "/minted");
  spiffe::Certificate leaf = Leaf(out);
  EXPECT_TRUE(leaf.public_key().Equals(key_.public_key()));
  EXPECT_THAT(leaf.UriSans(), ElementsAre("spiffe://example.org/minted"));
  EXPECT_THAT(leaf.DnsSans(), ElementsAre("minted.example.org", "*.svc.example.org"));
  // The CSR's subject is empty: the CA's default applies.
  EXPECT_THAT(leaf.SubjectString(), HasSubstr("O=SPIRE"));
  EXPECT_EQ(out.svid().expires_at(), NowUnix() + 3600);
  EXPECT_EQ(out.svid().expires_at(), std::chrono::system_clock::to_time_t(leaf.NotAfter()));

  std::vector<spiffe::Certificate> chain = {leaf};
  auto authorities =
      [this](const spiffe::TrustDomain& td) -> std::optional<std::vector<spiffe::Certificate>> {
    if (td != Td("example.org")) return std::nullopt;
    return ca_->bundle()->bundle.x509_authorities();
  };
  ASSERT_OK_AND_ASSIGN(spiffe::VerifiedX509Svid verified,
                       spiffe::VerifyX509Svid(chain, authorities, clock_.Now()));
  EXPECT_EQ(verified.id.str(), "spiffe://example.org/minted");

  spiffe::testing::TempDir dir;
  std::string bundle_pem;
  for (const auto& cert : ca_->bundle()->bundle.x509_authorities()) bundle_pem += cert.ToPem();
  std::string bundle = dir.Write("bundle.pem", bundle_pem);
  std::string svid = dir.Write("svid.pem", leaf.ToPem());
  spiffe::testing::CommandResult verify =
      spiffe::testing::RunCommand("openssl verify -CAfile " + bundle + " " + svid);
  EXPECT_EQ(verify.exit_code, 0) << verify.output;
  EXPECT_THAT(verify.output, HasSubstr(": OK"));
}

TEST_F(SvidMintTest, TheCsrsSubjectIsKept) {
  std::string csr = CraftCsr(key_, "URI:spiffe://example.org/named,DNS:named.example.org",
                             {{"C", "DE"}, {"O", "Acme"}, {"OU", "Payments"}, {"CN", "custom"}});
  svidv1::MintX509SVIDResponse out;
  grpc::Status s = MintX509(csr, 0, &out);
  ASSERT_TRUE(s.ok()) << s.error_message();
  spiffe::Certificate leaf = Leaf(out);
  std::string subject = leaf.SubjectString();
  EXPECT_THAT(subject, HasSubstr("C=DE"));
  EXPECT_THAT(subject, HasSubstr("O=Acme"));
  EXPECT_THAT(subject, HasSubstr("OU=Payments"));
  EXPECT_THAT(subject, HasSubstr("CN=custom"));
  EXPECT_THAT(subject, Not(HasSubstr("SPIRE")));
  EXPECT_THAT(leaf.DnsSans(), ElementsAre("named.example.org"));
}

TEST_F(SvidMintTest, TtlIsRespectedCappedAtTheCaAndNeverNegative) {
  std::string csr = spiffe::CreateCsr(key_, Id("spiffe://example.org/ttl")).value();
  svidv1::MintX509SVIDResponse out;
  ASSERT_TRUE(MintX509(csr, 120, &out).ok());
  EXPECT_EQ(out.svid().expires_at(), NowUnix() + 120);

  ASSERT_TRUE(MintX509(csr, INT32_MAX, &out).ok());
  std::optional<spiffe::Certificate> ca_cert = ca_->GetStatus().current_x509_ca;
  ASSERT_TRUE(ca_cert.has_value());
  EXPECT_EQ(out.svid().expires_at(), std::chrono::system_clock::to_time_t(ca_cert->NotAfter()));

  svidv1::MintX509SVIDResponse refused;
  grpc::Status s = MintX509(csr, -1, &refused);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "ttl must not be negative");
  EXPECT_FALSE(refused.has_svid());
}

TEST_F(SvidMintTest, BadCsrsGetSpiresCodesAndMessages) {
  std::string good = spiffe::CreateCsr(key_, Id("spiffe://example.org/ok")).value();
  std::string bad_signature = good;
  bad_signature.back() = static_cast<char>(bad_signature.back() ^ 0x01);
  struct Case {
    std::string name;
    std::string csr;
    std::string message;  // exact when it does not end with ": ", else a prefix
  };
  std::vector<Case> cases = {
      {"empty", "", "missing CSR"},
      {"garbage", "not a csr", "malformed CSR: "},
      {"PEM", spiffe::CreateCsrPem(key_, Id("spiffe://example.org/ok")).value(), "malformed CSR: "},
      {"bad signature", bad_signature, "failed to verify CSR signature: "},
      {"no SAN", CraftCsr(key_, ""), "CSR URI SAN is required"},
      {"DNS only", CraftCsr(key_, "DNS:a.example.org"), "CSR URI SAN is required"},
      {"two URIs", CraftCsr(key_, "URI:spiffe://example.org/a,URI:spiffe://example.org/b"),
       "only one URI SAN is expected"},
      {"not SPIFFE", CraftCsr(key_, "URI:https://example.org/a"),
       "CSR URI SAN is invalid: scheme is missing or invalid"},
      {"foreign trust domain", CraftCsr(key_, "URI:spiffe://another.org/workload1"),
       "CSR URI SAN is invalid: \"spiffe://another.org/workload1\" is not a member of trust "
       "domain \"example.org\""},
      {"reserved", CraftCsr(key_, "URI:spiffe://example.org/spire/agent/x/1"),
       "CSR URI SAN is invalid: \"spiffe://example.org/spire/agent/x/1\" is not a workload in "
       "trust domain \"example.org\"; path is in the reserved namespace"},
      {"reserved root", CraftCsr(key_, "URI:spiffe://example.org/spire"),
       "CSR URI SAN is invalid: \"spiffe://example.org/spire\" is not a workload in trust "
       "domain \"example.org\"; path is in the reserved namespace"},
      {"trust domain ID", CraftCsr(key_, "URI:spiffe://example.org"), "CSR URI SAN is invalid: "},
      {"bad DNS name", CraftCsr(key_, "URI:spiffe://example.org/a,DNS:bad_name.example.org"),
       "CSR DNS name is invalid: "},
      {"wildcard overlap",
       CraftCsr(key_, "URI:spiffe://example.org/a,DNS:*.example.org,DNS:web.example.org"),
       "CSR DNS name contains a wildcard that covers another non-wildcard name: "},
  };
  for (const Case& c : cases) {
    svidv1::MintX509SVIDResponse out;
    grpc::Status s = MintX509(c.csr, 0, &out);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << c.name << ": " << s.error_message();
    if (c.message.ends_with(": ")) {
      EXPECT_THAT(s.error_message(), StartsWith(c.message)) << c.name;
    } else {
      EXPECT_EQ(s.error_message(), c.message) << c.name;
    }
    EXPECT_FALSE(out.has_svid()) << c.name;
  }
}

TEST_F(SvidMintTest, OnlyAdminsMayMint) {
  std::string csr = spiffe::CreateCsr(key_, Id("spiffe://example.org/ok")).value();
  svidv1::MintX509SVIDResponse x509;
  svidv1::MintJWTSVIDResponse jwt;
  std::pair<std::string, std::string> id = {"example.org", "/ok"};

  ASSERT_TRUE(MintX509(csr, 0, &x509, TlsChannel(IdentityFor(kAdmin))).ok());
  EXPECT_EQ(x509.svid().id().path(), "/ok");
  ASSERT_TRUE(MintJwt(id, {"a"}, 0, &jwt, TlsChannel(IdentityFor(kAdmin))).ok());
  EXPECT_FALSE(jwt.svid().token().empty());

  std::vector<std::pair<std::string, std::shared_ptr<grpc::Channel>>> strangers = {
      {"anonymous TLS", TlsChannel()},
      {"workload SVID", TlsChannel(IdentityFor("spiffe://example.org/ok"))},
      {"attested agent", TlsChannel(AddAgent("spiffe://example.org/spire/agent/x/1"))},
  };
  for (const auto& [who, channel] : strangers) {
    svidv1::MintX509SVIDResponse x509_out;
    grpc::Status s = MintX509(csr, 0, &x509_out, channel);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << who;
    EXPECT_EQ(s.error_message(),
              "authorization denied for method /spire.api.server.svid.v1.SVID/MintX509SVID")
        << who;
    EXPECT_FALSE(x509_out.has_svid());
    svidv1::MintJWTSVIDResponse jwt_out;
    s = MintJwt(id, {"a"}, 0, &jwt_out, channel);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << who;
    EXPECT_EQ(s.error_message(),
              "authorization denied for method /spire.api.server.svid.v1.SVID/MintJWTSVID")
        << who;
    EXPECT_FALSE(jwt_out.has_svid());
  }
}

TEST_F(SvidMintTest, MintsAJwtSvidThatValidatesWithTheRequestedTtl) {
  svidv1::MintJWTSVIDResponse out;
  grpc::Status s = MintJwt(std::pair{"example.org", "/jwt"}, {"aud-1", "aud-2"}, 60, &out);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(out.svid().id().trust_domain(), "example.org");
  EXPECT_EQ(out.svid().id().path(), "/jwt");
  EXPECT_EQ(out.svid().issued_at(), NowUnix());
  EXPECT_EQ(out.svid().expires_at(), NowUnix() + 60);

  spiffe::BundleSet bundles;
  bundles.Put(ca_->bundle()->bundle);
  ASSERT_OK_AND_ASSIGN(
      spiffe::JwtSvid jwt,
      spiffe::ParseAndValidateJwtSvid(out.svid().token(), bundles, {"aud-2"}, clock_.Now()));
  EXPECT_EQ(jwt.subject.str(), "spiffe://example.org/jwt");
  EXPECT_THAT(jwt.audience, ElementsAre("aud-1", "aud-2"));
  EXPECT_EQ(jwt.claims["exp"].get<int64_t>(), NowUnix() + 60);

  // A token for another audience does not validate.
  EXPECT_FALSE(
      spiffe::ParseAndValidateJwtSvid(out.svid().token(), bundles, {"other"}, clock_.Now()).ok());

  ASSERT_TRUE(MintJwt(std::pair{"example.org", "/jwt"}, {"a"}, 0, &out).ok());
  EXPECT_EQ(out.svid().expires_at(), NowUnix() + 300);
}

TEST_F(SvidMintTest, BadJwtRequestsGetSpiresCodesAndMessages) {
  using IdParts = std::optional<std::pair<std::string, std::string>>;
  struct Case {
    IdParts id;
    std::vector<std::string> audience;
    int32_t ttl;
    std::string message;
  };
  std::vector<Case> cases = {
      {std::nullopt, {"a"}, 0, "invalid SPIFFE ID: request must specify SPIFFE ID"},
      {std::pair{"another.org", "/w"},
       {"a"},
       0,
       "invalid SPIFFE ID: \"spiffe://another.org/w\" is not a member of trust domain "
       "\"example.org\""},
      {std::pair{"example.org", "/spire/server"},
       {"a"},
       0,
       "invalid SPIFFE ID: \"spiffe://example.org/spire/server\" is not a workload in trust "
       "domain \"example.org\"; path is in the reserved namespace"},
      {std::pair{"example.org", ""}, {"a"}, 0, "invalid SPIFFE ID: "},
      {std::pair{"Not A Domain", "/w"},
       {"a"},
       0,
       "invalid SPIFFE ID: trust domain characters are limited to lowercase letters, numbers, "
       "dots, dashes, and underscores"},
      {std::pair{"example.org", "/w"}, {}, 0, "at least one audience is required"},
      {std::pair{"example.org", "/w"}, {""}, 0, "audience must not contain empty values"},
      {std::pair{"example.org", "/w"}, {"a"}, -5, "ttl must not be negative"},
  };
  for (const Case& c : cases) {
    svidv1::MintJWTSVIDResponse out;
    grpc::Status s = MintJwt(c.id, c.audience, c.ttl, &out);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.message;
    if (c.message.ends_with(": ")) {
      EXPECT_THAT(s.error_message(), StartsWith(c.message));
    } else {
      EXPECT_EQ(s.error_message(), c.message);
    }
    EXPECT_FALSE(out.has_svid());
  }
}

}  // namespace
}  // namespace tessera::server::testing
