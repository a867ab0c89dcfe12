// Test-only helpers for the X.509 tests of spiffe/: a small PKI built with the library, a way to
// craft certificates the library refuses to build (to test the verifier against them), and a
// runner for the `openssl` command-line tool. Not part of tessera_spiffe; included by tests only.
// Not thread-safe beyond what each function says (tests are single-threaded).
#pragma once

#include <openssl/x509v3.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "gtest/gtest.h"
#include "spiffe/certificate.h"
#include "spiffe/id.h"
#include "spiffe/key.h"
#include "spiffe/openssl.h"
#include "spiffe/x509_svid.h"

#define TESSERA_TEST_ASSIGN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                             \
  ASSERT_TRUE(tmp.ok()) << tmp.status();         \
  lhs = std::move(tmp).value()
#define ASSERT_OK_AND_ASSIGN(lhs, expr) \
  TESSERA_TEST_ASSIGN_IMPL(TESSERA_STATUS_CONCAT(tessera_test_or_, __LINE__), lhs, expr)

namespace tessera::spiffe::testing {

using TimePoint = std::chrono::system_clock::time_point;

// 2027-01-15T08:00:00Z, FakeClock's default start.
inline TimePoint TestNow() { return std::chrono::system_clock::from_time_t(1'800'000'000); }

inline TrustDomain Td(std::string_view name) { return *TrustDomain::Parse(name); }
inline SpiffeId Id(std::string_view id) { return *SpiffeId::Parse(id); }

struct Ca {
  PrivateKey key;
  Certificate cert;
};

inline absl::StatusOr<Ca> MakeRootCa(const TrustDomain& td, TimePoint now,
                                     KeyType type = KeyType::kEcP256,
                                     std::string_view cn = "root") {
  ASSIGN_OR_RETURN(PrivateKey key, PrivateKey::Generate(type));
  CaTemplate tmpl{.public_key = key.public_key(),
                  .trust_domain = td,
                  .subject = {{"C", "US"}, {"O", "SPIFFE"}, {"CN", std::string(cn)}},
                  .not_before = now - kBackdate,
                  .not_after = now + kDefaultCaTtl,
                  .max_path_len = std::nullopt};
  ASSIGN_OR_RETURN(Certificate cert, SignSelfSignedCa(tmpl, key));
  return Ca{std::move(key), std::move(cert)};
}

inline absl::StatusOr<Ca> MakeIntermediateCa(const Ca& parent, const TrustDomain& td, TimePoint now,
                                             std::string_view cn = "intermediate") {
  ASSIGN_OR_RETURN(PrivateKey key, PrivateKey::Generate(KeyType::kEcP256));
  CaTemplate tmpl{.public_key = key.public_key(),
                  .trust_domain = td,
                  .subject = {{"C", "US"}, {"O", "SPIFFE"}, {"CN", std::string(cn)}},
                  .not_before = now - kBackdate,
                  .not_after = now + kDefaultCaTtl / 2,
                  .max_path_len = std::nullopt};
  ASSIGN_OR_RETURN(Certificate cert, SignIntermediateCa(tmpl, parent.cert, parent.key));
  return Ca{std::move(key), std::move(cert)};
}

struct Leaf {
  PrivateKey key;
  Certificate cert;
};

inline absl::StatusOr<Leaf> MakeLeaf(const Ca& issuer, const SpiffeId& id, TimePoint now,
                                     std::vector<std::string> dns_names = {}) {
  ASSIGN_OR_RETURN(PrivateKey key, PrivateKey::Generate(KeyType::kEcP256));
  LeafTemplate tmpl{.public_key = key.public_key(),
                    .spiffe_id = id,
                    .dns_names = std::move(dns_names),
                    .subject = DefaultLeafSubject(),
                    .not_before = now - kBackdate,
                    .not_after = now + kDefaultLeafTtl};
  ASSIGN_OR_RETURN(Certificate cert, SignLeaf(tmpl, issuer.cert, issuer.key));
  return Leaf{std::move(key), std::move(cert)};
}

// A certificate made by hand with OpenSSL's config syntax for each extension (an empty string
// leaves the extension out), signed by `issuer`. For certificates the library refuses to make.
struct CraftOptions {
  std::string subject_cn = "crafted";
  std::string san;  // e.g. "URI:spiffe://example.org/a,URI:https://example.org"
  std::string basic_constraints = "critical,CA:FALSE";
  std::string key_usage = "critical,digitalSignature";
  std::string ext_key_usage = "serverAuth,clientAuth";
  TimePoint not_before;
  TimePoint not_after;
};

inline absl::StatusOr<Certificate> Craft(const CraftOptions& opts, const PublicKey& subject_key,
                                         const Ca& issuer) {
  X509Ptr x509(X509_new());
  if (x509 == nullptr) return absl::InternalError("X509_new");
  X509_set_version(x509.get(), X509_VERSION_3);
  ASN1_INTEGER_set(X509_get_serialNumber(x509.get()), 4242);
  X509_NAME_add_entry_by_txt(X509_get_subject_name(x509.get()), "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(opts.subject_cn.c_str()), -1,
                             -1, 0);
  X509_set_issuer_name(x509.get(), X509_get_subject_name(issuer.cert.get()));
  ASN1_TIME_set(X509_getm_notBefore(x509.get()),
                std::chrono::system_clock::to_time_t(opts.not_before));
  ASN1_TIME_set(X509_getm_notAfter(x509.get()),
                std::chrono::system_clock::to_time_t(opts.not_after));
  X509_set_pubkey(x509.get(), subject_key.get());
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer.cert.get(), x509.get(), nullptr, nullptr, 0);
  std::vector<std::pair<int, std::string>> exts = {
      {NID_basic_constraints, opts.basic_constraints},
      {NID_key_usage, opts.key_usage},
      {NID_ext_key_usage, opts.ext_key_usage},
      {NID_subject_alt_name, opts.san},
      {NID_subject_key_identifier, "hash"},
      {NID_authority_key_identifier, "keyid"},
  };
  for (const auto& [nid, value] : exts) {
    if (value.empty()) continue;
    X509ExtensionPtr ext(X509V3_EXT_nconf_nid(nullptr, &ctx, nid, value.c_str()));
    if (ext == nullptr || X509_add_ext(x509.get(), ext.get(), -1) != 1) {
      return OpenSslError(absl::StrCat("craft extension ", value));
    }
  }
  if (X509_sign(x509.get(), issuer.key.get(), EVP_sha256()) <= 0) return OpenSslError("sign");
  unsigned char* der = nullptr;
  int len = i2d_X509(x509.get(), &der);
  std::string bytes(reinterpret_cast<char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  return Certificate::FromDer(bytes);
}

// A scratch directory removed (with its contents) when the object goes away.
class TempDir {
 public:
  TempDir() {
    const char* base = getenv("TEST_TMPDIR");
    std::string tmpl = absl::StrCat(base != nullptr ? base : "/tmp", "/tessera_x509_XXXXXX");
    if (mkdtemp(tmpl.data()) != nullptr) path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // Writes `contents` to <dir>/<name> and returns the full path.
  std::string Write(const std::string& name, const std::string& contents) const {
    std::string file = path_ + "/" + name;
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out << contents;
    return file;
  }

 private:
  std::string path_;
};

// This process's own scratch directory, removed at exit. CTest runs test processes in parallel,
// so files with fixed names directly under /tmp would be written by two tests at once.
inline const TempDir& ProcessScratch() {
  static const TempDir dir;
  return dir;
}

struct CommandResult {
  int exit_code = -1;  // -1: did not run or did not exit normally
  std::string output;  // stdout and stderr together
};

// Runs `command` through /bin/sh. Arguments are fixed strings and temp paths made by the tests.
inline CommandResult RunCommand(const std::string& command) {
  CommandResult result;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return result;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) result.output.append(buf, n);
  int status = pclose(pipe);
  if (status != -1 && WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  return result;
}

// The subjectPublicKeyInfo as `x509` encodes it ("" when it cannot be encoded).
inline std::string EncodedSpki(const X509* x509) {
  unsigned char* out = nullptr;
  int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x509), &out);
  if (len <= 0) return "";
  std::string der(reinterpret_cast<char*>(out), static_cast<size_t>(len));
  OPENSSL_free(out);
  return der;
}

// A self-signed CA certificate made by the openssl CLI, independent of our own X.509 code.
// `newkey` is openssl req's -newkey argument.
inline Certificate OpensslSelfSignedCa(const std::string& cn, const std::string& newkey) {
  std::string path = ProcessScratch().path() + "/" + cn + ".pem";
  CommandResult made =
      RunCommand("openssl req -x509 -newkey " + newkey + " -nodes -keyout /dev/null -out " + path +
                 " -subj /O=SPIFFE/CN=" + cn +
                 " -days 1 -addext basicConstraints=critical,CA:TRUE"
                 " -addext keyUsage=critical,keyCertSign,cRLSign");
  EXPECT_EQ(made.exit_code, 0) << made.output;
  std::ifstream in(path, std::ios::binary);
  std::string pem((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  absl::StatusOr<Certificate> cert = Certificate::FromPem(pem);
  EXPECT_TRUE(cert.ok()) << cert.status();
  return std::move(cert).value();
}

// Seconds since the epoch, for `openssl verify -attime`.
inline std::string EpochSeconds(TimePoint t) {
  return std::to_string(std::chrono::system_clock::to_time_t(t));
}

}  // namespace tessera::spiffe::testing
