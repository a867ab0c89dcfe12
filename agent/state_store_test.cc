// StateStore on real files: a saved state loads back identical with 0600/0700 permissions, the
// file is inspectable PEM, absence and Clear are "no state", and every kind of damage (garbage,
// truncation, a key that is not the SVID's) is DataLoss naming the file.
#include "agent/state_store.h"

#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "spiffe/x509_test_util.h"

namespace tessera::agent {
namespace {

using spiffe::testing::Id;
using spiffe::testing::Td;
using spiffe::testing::TempDir;
using ::testing::HasSubstr;

class StateStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto now = std::chrono::system_clock::now();
    ca_.emplace(spiffe::testing::MakeRootCa(Td("example.org"), now).value());
    auto leaf =
        spiffe::testing::MakeLeaf(*ca_, Id("spiffe://example.org/spire/agent/join_token/t"), now)
            .value();
    state_.emplace(AgentState{
        .svid = spiffe::X509Svid{.id = Id("spiffe://example.org/spire/agent/join_token/t"),
                                 .chain = {leaf.cert},
                                 .key = leaf.key},
        .bundle = {ca_->cert},
        .reattestable = true});
  }
  std::string ReadFile(const std::filesystem::path& p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  void WriteFile(const std::filesystem::path& p, const std::string& text) {
    std::ofstream(p, std::ios::trunc) << text;
  }

  TempDir tmp_;
  std::filesystem::path data_dir_ = std::filesystem::path(tmp_.path()) / "agent";
  std::optional<spiffe::testing::Ca> ca_;
  std::optional<AgentState> state_;
};

TEST_F(StateStoreTest, NoStateBeforeSaveAndAfterClear) {
  StateStore store(data_dir_);
  auto loaded = store.Load();
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_FALSE(loaded->has_value());
  ASSERT_TRUE(store.Save(*state_).ok());
  ASSERT_TRUE(store.Clear().ok());
  EXPECT_FALSE(store.Load()->has_value());
  EXPECT_TRUE(store.Clear().ok());  // clearing nothing is fine
}

TEST_F(StateStoreTest, SavedStateLoadsBackWithPrivatePermissions) {
  StateStore store(data_dir_);
  ASSERT_TRUE(store.Save(*state_).ok());
  struct stat st {};
  ASSERT_EQ(::stat(store.path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat(data_dir_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);

  auto loaded = store.Load();
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_TRUE(loaded->has_value());
  const AgentState& got = **loaded;
  EXPECT_EQ(got.svid.id, state_->svid.id);
  ASSERT_EQ(got.svid.chain.size(), 1u);
  EXPECT_EQ(got.svid.chain[0].ToDer(), state_->svid.chain[0].ToDer());
  EXPECT_EQ(got.svid.key.ToPkcs8Der().value(), state_->svid.key.ToPkcs8Der().value());
  ASSERT_EQ(got.bundle.size(), 1u);
  EXPECT_EQ(got.bundle[0].ToDer(), ca_->cert.ToDer());
  EXPECT_TRUE(got.reattestable);

  // Saving again replaces the state.
  state_->reattestable = false;
  ASSERT_TRUE(store.Save(*state_).ok());
  EXPECT_FALSE((*store.Load())->reattestable);
}

TEST_F(StateStoreTest, FileIsInspectablePem) {
  StateStore store(data_dir_);
  ASSERT_TRUE(store.Save(*state_).ok());
  std::string text = ReadFile(store.path());
  EXPECT_TRUE(text.starts_with("# tessera-agent state v1 reattestable=1\n-----BEGIN PRIVATE KEY"));
  EXPECT_THAT(text, HasSubstr("# svid\n-----BEGIN CERTIFICATE-----"));
  EXPECT_THAT(text, HasSubstr("# bundle\n-----BEGIN CERTIFICATE-----"));
}

TEST_F(StateStoreTest, DamageIsDataLossNamingTheFile) {
  StateStore store(data_dir_);
  ASSERT_TRUE(store.Save(*state_).ok());
  const std::string good = ReadFile(store.path());
  auto other = spiffe::testing::MakeLeaf(*ca_, Id("spiffe://example.org/other"),
                                         std::chrono::system_clock::now())
                   .value();
  const std::string other_key = other.key.ToPkcs8Pem().value();
  const std::string own_key = state_->svid.key.ToPkcs8Pem().value();
  std::string swapped_key = good;
  swapped_key.replace(swapped_key.find(own_key), own_key.size(), other_key);

  for (const std::string& damaged :
       {std::string("garbage"), good.substr(0, good.size() / 2),
        std::string("# tessera-agent state v1 reattestable=7\n") + good.substr(good.find('\n') + 1),
        swapped_key}) {
    WriteFile(store.path(), damaged);
    auto loaded = store.Load();
    ASSERT_FALSE(loaded.ok()) << damaged;
    EXPECT_EQ(loaded.status().code(), absl::StatusCode::kDataLoss);
    EXPECT_THAT(std::string(loaded.status().message()), HasSubstr(store.path().string()));
  }
}

TEST_F(StateStoreTest, RefusesToSaveIncompleteState) {
  StateStore store(data_dir_);
  AgentState no_bundle = *state_;
  no_bundle.bundle.clear();
  EXPECT_EQ(store.Save(no_bundle).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(store.Load()->has_value());
}

}  // namespace
}  // namespace tessera::agent
