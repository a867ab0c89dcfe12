#include "server/ca/key_manager.h"

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "spiffe/x509_test_util.h"

namespace tessera::server::ca {
namespace {

using spiffe::KeyType;
using spiffe::PrivateKey;
using spiffe::testing::TempDir;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

std::string Message(const absl::Status& s) { return std::string(s.message()); }

int Mode(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return -1;
  return static_cast<int>(st.st_mode & 07777);
}

std::vector<std::string> Listing(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    names.push_back(e.path().filename().string());
  }
  return names;
}

TEST(ValidateKeyIdTest, AcceptsSafeNames) {
  for (const char* id : {"x509-ca-a", "JWT_Signer.B", "a", "0"}) {
    EXPECT_TRUE(ValidateKeyId(id).ok()) << id;
  }
  EXPECT_TRUE(ValidateKeyId(std::string(kMaxKeyIdLength, 'k')).ok());
}

TEST(ValidateKeyIdTest, RejectsUnsafeNames) {
  struct Case {
    std::string id;
    std::string error;
  };
  const Case cases[] = {
      {"", "empty"},
      {".", "starts with '.'"},
      {"..", "starts with '.'"},
      {".hidden", "starts with '.'"},
      {"../escape", "starts with '.'"},
      {"a/b", "only letters"},
      {"/etc/passwd", "only letters"},
      {"sp ace", "only letters"},
      {std::string("nul\0x", 5), "only letters"},
      {"ünï", "only letters"},
      {std::string(kMaxKeyIdLength + 1, 'k'), "longer than 128 bytes"},
  };
  for (const Case& c : cases) {
    absl::Status s = ValidateKeyId(c.id);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.id;
    EXPECT_THAT(Message(s), HasSubstr("invalid key id")) << c.id;
    EXPECT_THAT(Message(s), HasSubstr(c.error)) << c.id;
  }
}

// Behaviour both implementations share.
class KeyManagerContractTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    if (GetParam()) {
      auto disk = DiskKeyManager::Open(dir_.path() + "/keys");
      ASSERT_TRUE(disk.ok()) << disk.status();
      km_ = std::move(*disk);
    } else {
      km_ = std::make_unique<MemoryKeyManager>();
    }
  }
  TempDir dir_;
  std::unique_ptr<KeyManager> km_;
};

TEST_P(KeyManagerContractTest, GenerateThenGet) {
  for (KeyType type : {KeyType::kEcP256, KeyType::kEcP384, KeyType::kRsa2048}) {
    ASSERT_OK_AND_ASSIGN(PrivateKey key, km_->GenerateKey("k1", type));
    EXPECT_EQ(key.type(), type);
    ASSERT_OK_AND_ASSIGN(PrivateKey got, km_->GetKey("k1"));
    EXPECT_TRUE(got.public_key().Equals(key.public_key()));
    // The key really is the private half: a signature verifies with the public key.
    ASSERT_OK_AND_ASSIGN(std::string sig, got.Sign("data", spiffe::Digest::kSha256));
    EXPECT_TRUE(key.public_key().Verify("data", sig, spiffe::Digest::kSha256).ok());
  }
}

TEST_P(KeyManagerContractTest, GenerateReplacesAndKeysAreIndependent) {
  ASSERT_OK_AND_ASSIGN(PrivateKey a1, km_->GenerateKey("a", KeyType::kEcP256));
  ASSERT_OK_AND_ASSIGN(PrivateKey b, km_->GenerateKey("b", KeyType::kEcP256));
  ASSERT_OK_AND_ASSIGN(PrivateKey a2, km_->GenerateKey("a", KeyType::kEcP256));
  EXPECT_FALSE(a1.public_key().Equals(a2.public_key()));
  ASSERT_OK_AND_ASSIGN(PrivateKey got_a, km_->GetKey("a"));
  ASSERT_OK_AND_ASSIGN(PrivateKey got_b, km_->GetKey("b"));
  EXPECT_TRUE(got_a.public_key().Equals(a2.public_key()));
  EXPECT_TRUE(got_b.public_key().Equals(b.public_key()));
}

TEST_P(KeyManagerContractTest, MissingKeyIsNotFound) {
  EXPECT_EQ(km_->GetKey("nope").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(km_->DeleteKey("nope").code(), absl::StatusCode::kNotFound);
}

TEST_P(KeyManagerContractTest, Delete) {
  ASSERT_TRUE(km_->GenerateKey("k", KeyType::kEcP256).ok());
  ASSERT_TRUE(km_->DeleteKey("k").ok());
  EXPECT_EQ(km_->GetKey("k").status().code(), absl::StatusCode::kNotFound);
}

TEST_P(KeyManagerContractTest, InvalidIdsRejectedEverywhere) {
  for (const char* id : {"../x", "", "a/b", ".tmp"}) {
    EXPECT_EQ(km_->GenerateKey(id, KeyType::kEcP256).status().code(),
              absl::StatusCode::kInvalidArgument)
        << id;
    EXPECT_EQ(km_->GetKey(id).status().code(), absl::StatusCode::kInvalidArgument) << id;
    EXPECT_EQ(km_->DeleteKey(id).code(), absl::StatusCode::kInvalidArgument) << id;
  }
}

INSTANTIATE_TEST_SUITE_P(Both, KeyManagerContractTest, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "Disk" : "Memory"; });

TEST(DiskKeyManagerTest, FilesAndModes) {
  TempDir tmp;
  std::string dir = tmp.path() + "/keys";
  ASSERT_OK_AND_ASSIGN(auto km, DiskKeyManager::Open(dir));
  EXPECT_EQ(Mode(dir), 0700);
  ASSERT_OK_AND_ASSIGN(PrivateKey key, km->GenerateKey("x509-ca-a", KeyType::kEcP256));
  std::string path = dir + "/x509-ca-a.pem";
  EXPECT_EQ(km->KeyPath("x509-ca-a"), path);
  EXPECT_EQ(Mode(path), 0600);
  // A PKCS#8 PEM file, and nothing else left in the directory (no temp file).
  std::ifstream in(path);
  std::string contents((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_THAT(contents, ::testing::StartsWith("-----BEGIN PRIVATE KEY-----\n"));
  ASSERT_OK_AND_ASSIGN(PrivateKey parsed, PrivateKey::FromPem(contents));
  EXPECT_TRUE(parsed.public_key().Equals(key.public_key()));
  ASSERT_TRUE(km->GenerateKey("x509-ca-a", KeyType::kEcP384).ok());
  ASSERT_TRUE(km->GenerateKey("jwt-key-a", KeyType::kEcP256).ok());
  EXPECT_THAT(Listing(dir), UnorderedElementsAre("x509-ca-a.pem", "jwt-key-a.pem"));
  EXPECT_EQ(Mode(path), 0600);
  // The openssl CLI reads it as a private key.
  auto r = spiffe::testing::RunCommand("openssl pkey -noout -in " + path);
  EXPECT_EQ(r.exit_code, 0) << r.output;
}

TEST(DiskKeyManagerTest, ModesHoldUnderAPermissiveUmask) {
  TempDir tmp;
  mode_t old = ::umask(0);
  auto km = DiskKeyManager::Open(tmp.path() + "/keys");
  absl::StatusOr<PrivateKey> key =
      km.ok() ? (*km)->GenerateKey("k", KeyType::kEcP256) : km.status();
  ::umask(old);
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_EQ(Mode(tmp.path() + "/keys"), 0700);
  EXPECT_EQ(Mode(tmp.path() + "/keys/k.pem"), 0600);
}

TEST(DiskKeyManagerTest, RestartKeepsKeys) {
  TempDir tmp;
  std::string dir = tmp.path() + "/keys";
  spiffe::PublicKey pub = [&] {
    auto km = DiskKeyManager::Open(dir);
    EXPECT_TRUE(km.ok());
    auto key = (*km)->GenerateKey("x509-ca-a", KeyType::kRsa2048);
    EXPECT_TRUE(key.ok());
    return key->public_key();
  }();
  ASSERT_OK_AND_ASSIGN(auto again, DiskKeyManager::Open(dir));
  ASSERT_OK_AND_ASSIGN(PrivateKey key, again->GetKey("x509-ca-a"));
  EXPECT_TRUE(key.public_key().Equals(pub));
  EXPECT_EQ(key.type(), KeyType::kRsa2048);
}

TEST(DiskKeyManagerTest, TightensLooseDirectoryAndRemovesStaleTempFiles) {
  TempDir tmp;
  std::string dir = tmp.path() + "/keys";
  ASSERT_EQ(::mkdir(dir.c_str(), 0755), 0);
  tmp.Write("keys/x509-ca-a.pem.tmp.12345", "half a key");
  tmp.Write("keys/unrelated.pem.tmp.1.pem", "kept: it is a key file name");
  ASSERT_OK_AND_ASSIGN(auto km, DiskKeyManager::Open(dir + "/"));
  EXPECT_EQ(km->dir(), dir);
  EXPECT_EQ(Mode(dir), 0700);
  EXPECT_THAT(Listing(dir), UnorderedElementsAre("unrelated.pem.tmp.1.pem"));
}

TEST(DiskKeyManagerTest, OpenErrors) {
  TempDir tmp;
  std::string file = tmp.Write("plain", "x");
  auto not_dir = DiskKeyManager::Open(file);
  EXPECT_FALSE(not_dir.ok());
  EXPECT_THAT(Message(not_dir.status()), HasSubstr("not a directory"));
  auto no_parent = DiskKeyManager::Open(tmp.path() + "/missing/keys");
  EXPECT_FALSE(no_parent.ok());
  EXPECT_THAT(Message(no_parent.status()), HasSubstr("key manager"));
  EXPECT_EQ(DiskKeyManager::Open("").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(DiskKeyManagerTest, BadKeyFiles) {
  TempDir tmp;
  std::string dir = tmp.path() + "/keys";
  ASSERT_OK_AND_ASSIGN(auto km, DiskKeyManager::Open(dir));
  tmp.Write("keys/garbage.pem", "-----BEGIN PRIVATE KEY-----\nnot base64!\n");
  auto garbage = km->GetKey("garbage");
  EXPECT_EQ(garbage.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Message(garbage.status()), HasSubstr("does not hold a private key"));
  EXPECT_THAT(Message(garbage.status()), ::testing::Not(HasSubstr("not base64!")));

  tmp.Write("keys/huge.pem", std::string(size_t{65} * 1024, 'A'));
  EXPECT_THAT(Message(km->GetKey("huge").status()), HasSubstr("larger than 64 KiB"));

  ASSERT_EQ(::mkdir((dir + "/adir.pem").c_str(), 0700), 0);
  EXPECT_THAT(Message(km->GetKey("adir").status()), HasSubstr("not a regular file"));

  // A symlink planted in the key directory is not followed.
  ASSERT_TRUE(km->GenerateKey("real", KeyType::kEcP256).ok());
  std::filesystem::create_symlink(dir + "/real.pem", dir + "/link.pem");
  EXPECT_FALSE(km->GetKey("link").ok());
}

TEST(DiskKeyManagerTest, FailedWriteLeavesOtherKeysAndNoTempFile) {
  TempDir tmp;
  std::string dir = tmp.path() + "/keys";
  ASSERT_OK_AND_ASSIGN(auto km, DiskKeyManager::Open(dir));
  ASSERT_OK_AND_ASSIGN(PrivateKey other, km->GenerateKey("other", KeyType::kEcP256));
  // A non-empty directory where the key file should go: the final rename fails (even as root).
  ASSERT_EQ(::mkdir((dir + "/k.pem").c_str(), 0700), 0);
  tmp.Write("keys/k.pem/occupied", "x");
  auto failed = km->GenerateKey("k", KeyType::kEcP256);
  EXPECT_FALSE(failed.ok());
  EXPECT_THAT(Message(failed.status()), HasSubstr("key manager: write key"));
  EXPECT_THAT(Listing(dir), UnorderedElementsAre("k.pem", "other.pem"));
  ASSERT_OK_AND_ASSIGN(PrivateKey still, km->GetKey("other"));
  EXPECT_TRUE(still.public_key().Equals(other.public_key()));
}

}  // namespace
}  // namespace tessera::server::ca
