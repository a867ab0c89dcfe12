// Test-only helpers for the x509pop tests: a node PKI (root → intermediate → node certificate of
// a chosen key type) written to files both halves read, and independent computations through the
// `openssl` command-line tool. Not part of the library. Not thread-safe (tests are
// single-threaded).
#pragma once

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "common/clock.h"
#include "common/status.h"
#include "spiffe/certificate.h"
#include "spiffe/key.h"
#include "spiffe/openssl.h"
#include "spiffe/x509_test_util.h"

namespace tessera::attestors::x509pop::testing {

using spiffe::testing::Ca;
using spiffe::testing::CraftOptions;
using spiffe::testing::TempDir;

// The value of a test fixture's setup step that cannot fail unless the environment is broken;
// fixtures hold key and certificate values, which have no empty state to start from.
template <typename T>
T Must(absl::StatusOr<T> value) {
  if (!value.ok()) {
    ADD_FAILURE() << value.status();
    std::abort();
  }
  return *std::move(value);
}

// The node certificate SPIRE's documentation describes: CA:FALSE, digitalSignature, a CN, and a
// URI SAN of the form the san: selector reads. Valid around the fake clock's start.
inline CraftOptions NodeOptions() {
  Clock::TimePoint now = spiffe::testing::TestNow();
  CraftOptions opts;
  opts.subject_cn = "node-1.example.org";
  opts.san = "URI:x509pop://example.org/datacenter/us-east-1";
  opts.key_usage = "critical,digitalSignature";
  opts.ext_key_usage = "";  // x509pop accepts any (or no) extended key usage
  opts.not_before = now - std::chrono::hours(1);
  opts.not_after = now + std::chrono::hours(24);
  return opts;
}

struct Node {
  spiffe::PrivateKey key;
  spiffe::Certificate cert;
};

inline absl::StatusOr<Node> MakeNode(const Ca& issuer, spiffe::KeyType type,
                                     const CraftOptions& opts = NodeOptions()) {
  ASSIGN_OR_RETURN(spiffe::PrivateKey key, spiffe::PrivateKey::Generate(type));
  ASSIGN_OR_RETURN(spiffe::Certificate cert,
                   spiffe::testing::Craft(opts, key.public_key(), issuer));
  return Node{std::move(key), std::move(cert)};
}

// An RSA public key with a `bits`-bit modulus that is no real key (nobody holds its private
// half): enough to put in a certificate whose only purpose is to be refused for its size.
inline absl::StatusOr<spiffe::PublicKey> HugeRsaPublicKey(int bits) {
  spiffe::BignumPtr n(BN_new());
  spiffe::BignumPtr e(BN_new());
  if (n == nullptr || e == nullptr || BN_set_bit(n.get(), bits - 1) != 1 ||
      BN_set_bit(n.get(), 0) != 1 || BN_set_word(e.get(), 65537) != 1) {
    return spiffe::OpenSslError("make modulus");
  }
  OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
  OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n.get());
  OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e.get());
  OSSL_PARAM* params = OSSL_PARAM_BLD_to_param(bld);
  OSSL_PARAM_BLD_free(bld);
  spiffe::EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr));
  EVP_PKEY* pkey = nullptr;
  bool ok = params != nullptr && ctx != nullptr && EVP_PKEY_fromdata_init(ctx.get()) == 1 &&
            EVP_PKEY_fromdata(ctx.get(), &pkey, EVP_PKEY_PUBLIC_KEY, params) == 1;
  OSSL_PARAM_free(params);
  if (!ok) return spiffe::OpenSslError("build RSA key");
  spiffe::EvpPkeyPtr owned(pkey);
  return spiffe::PublicKey::FromEvp(owned.get());
}

inline absl::StatusOr<spiffe::PublicKey> Ed25519PublicKey() {
  spiffe::EvpPkeyPtr pkey(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  if (pkey == nullptr) return spiffe::OpenSslError("generate Ed25519 key");
  return spiffe::PublicKey::FromEvp(pkey.get());
}

// Runs `openssl` and returns its output, or an error with the output when it fails.
inline absl::StatusOr<std::string> OpenSsl(const std::string& args) {
  spiffe::testing::CommandResult r = spiffe::testing::RunCommand("openssl " + args);
  if (r.exit_code != 0) {
    return absl::InternalError(
        absl::StrCat("openssl ", args, " (exit ", r.exit_code, "): ", r.output));
  }
  return r.output;
}

// The lowercase hex SHA-1 of the certificate's DER, as the openssl CLI computes it.
inline absl::StatusOr<std::string> CliFingerprint(const TempDir& dir,
                                                  const spiffe::Certificate& cert) {
  std::string path = dir.Write("fp.pem", cert.ToPem());
  ASSIGN_OR_RETURN(std::string out, OpenSsl("x509 -noout -fingerprint -sha1 -in " + path));
  // "SHA1 Fingerprint=AB:CD:...\n"
  absl::string_view text = absl::StripAsciiWhitespace(out);
  size_t eq = text.find('=');
  if (eq == absl::string_view::npos) return absl::InternalError("unexpected output: " + out);
  return absl::AsciiStrToLower(absl::StrReplaceAll(text.substr(eq + 1), {{":", ""}}));
}

// The leaf serial as the openssl CLI prints it (upper-case hex), lower-cased and padded to whole
// bytes.
inline absl::StatusOr<std::string> CliSerial(const TempDir& dir, const spiffe::Certificate& cert) {
  std::string path = dir.Write("serial.pem", cert.ToPem());
  ASSIGN_OR_RETURN(std::string out, OpenSsl("x509 -noout -serial -in " + path));
  absl::string_view text = absl::StripAsciiWhitespace(out);
  if (!absl::ConsumePrefix(&text, "serial=")) {
    return absl::InternalError("unexpected output: " + out);
  }
  std::string hex = absl::AsciiStrToLower(text);
  if (hex.size() % 2 != 0) hex = "0" + hex;
  return hex;
}

}  // namespace tessera::attestors::x509pop::testing
