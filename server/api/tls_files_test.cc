#include "server/api/tls_files.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "common/files.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "spiffe/x509_svid.h"

namespace tessera::server {
namespace {

namespace fs = std::filesystem;
using spiffe::Certificate;
using spiffe::PrivateKey;

class TlsFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "tessera-tls-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
  }
  void TearDown() override { fs::remove_all(root_); }

  // A self-signed CA standing in for a key/chain pair.
  std::pair<PrivateKey, Certificate> MakeIdentity() {
    PrivateKey key = *PrivateKey::Generate(spiffe::KeyType::kEcP256);
    auto now = std::chrono::system_clock::now();
    spiffe::CaTemplate t{.public_key = key.public_key(),
                         .trust_domain = *spiffe::TrustDomain::Parse("example.org"),
                         .subject = spiffe::DefaultCaSubject(),
                         .not_before = now - spiffe::kBackdate,
                         .not_after = now + std::chrono::hours(1)};
    return {key, *spiffe::SignSelfSignedCa(t, key)};
  }

  fs::path root_;
};

TEST_F(TlsFilesTest, PublishWritesConsistentGenerationsAndSwitchesAtomically) {
  TlsFiles files(root_ / "tls");
  auto [key1, cert1] = MakeIdentity();
  std::vector<Certificate> chain1{cert1};
  ASSERT_TRUE(files.Publish(key1, chain1, chain1).ok());
  EXPECT_EQ(*ReadFileToString(files.chain_path()), cert1.ToPem());
  EXPECT_EQ(*ReadFileToString(files.roots_path()), cert1.ToPem());
  EXPECT_EQ(*ReadFileToString(files.key_path()), *key1.ToPkcs8Pem());
  struct stat st {};
  ASSERT_EQ(::stat(files.key_path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat((root_ / "tls").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  fs::path first_gen = fs::read_symlink(root_ / "tls" / "current");

  // Two more generations: `current` moves, the previous one stays, older ones go.
  for (int i = 0; i < 2; ++i) {
    auto [key, cert] = MakeIdentity();
    std::vector<Certificate> chain{cert};
    ASSERT_TRUE(files.Publish(key, chain, chain1).ok());
    EXPECT_EQ(*ReadFileToString(files.chain_path()), cert.ToPem());
    EXPECT_EQ(*ReadFileToString(files.key_path()), *key.ToPkcs8Pem());
  }
  EXPECT_FALSE(fs::exists(root_ / "tls" / first_gen));
  size_t generations = 0;
  for (const auto& e : fs::directory_iterator(root_ / "tls")) {
    if (e.path().filename().string().starts_with("gen-")) ++generations;
  }
  EXPECT_EQ(generations, 2u);
}

TEST_F(TlsFilesTest, RejectsEmptyChainOrRoots) {
  TlsFiles files(root_ / "tls");
  auto [key, cert] = MakeIdentity();
  std::vector<Certificate> chain{cert};
  EXPECT_EQ(files.Publish(key, {}, chain).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(files.Publish(key, chain, {}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(fs::exists(files.key_path()));
}

}  // namespace
}  // namespace tessera::server
