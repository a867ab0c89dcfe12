// `entry create|update` with --jwt-svid-include-jti and --disable-x509-svid-prefetch (SPIRE's
// Entry.additional_attributes) against the real EntryService over the admin socket: what is
// stored, what the pretty and JSON outputs show, and that updating one flag keeps the other.
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/cli/cli_test_util.h"
#include "spire/api/server/entry/v1/entry.pb.h"

namespace tessera::server::testing {
namespace {

namespace entryv1 = ::spire::api::server::entry::v1;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

constexpr char kJtiLine[] = "JWT-SVID JTI     : true\n";
constexpr char kPrefetchLine[] = "No X509 prefetch : true\n";

class EntryAttributesCliTest : public CliTest {
 protected:
  // Creates an entry with `flags` added; returns its ID.
  std::string Create(const std::string& path, std::vector<std::string> flags, CliResult* out) {
    std::vector<std::string> args = {"entry",       "create",
                                     "--spiffe-id", "spiffe://example.org" + path,
                                     "--parent-id", "spiffe://example.org/spire/agent/x/1",
                                     "--selector",  "unix:uid:1000"};
    args.insert(args.end(), flags.begin(), flags.end());
    *out = Run(args);
    EXPECT_EQ(out->code, 0) << out->err;
    auto entries = store_->ListEntries({.by_spiffe_id = Id("spiffe://example.org" + path)}, {});
    EXPECT_TRUE(entries.ok()) << entries.status();
    if (!entries.ok() || entries->items.size() != 1) {
      ADD_FAILURE() << "entry " << path << " not stored";
      return "";
    }
    return entries->items[0].id;
  }

  Entry Stored(const std::string& id) {
    auto stored = store_->FetchEntry(id);
    EXPECT_TRUE(stored.ok() && stored->has_value()) << id;
    // A missing entry has already failed the test; a placeholder lets the caller go on.
    if (!stored.ok() || !stored->has_value()) {
      return MakeEntry("spiffe://example.org/missing", "spiffe://example.org/missing", {"x:y"});
    }
    return **stored;
  }
};

TEST_F(EntryAttributesCliTest, CreateStoresTheFlagsAndShowsThemWhenSet) {
  CliResult r;
  const std::string both =
      Create("/both", {"--jwt-svid-include-jti", "--disable-x509-svid-prefetch"}, &r);
  EXPECT_TRUE(Stored(both).jwt_svid_include_jti);
  EXPECT_TRUE(Stored(both).disable_x509_svid_prefetch);
  EXPECT_THAT(r.out, HasSubstr(std::string("Revision         : 0\n")));
  // After the other fields, in this order.
  EXPECT_THAT(r.out, HasSubstr(std::string("Selector         : unix:uid:1000\n") + kJtiLine +
                               kPrefetchLine + "\n"));
  EXPECT_THAT(r.err, IsEmpty());

  const std::string jti = Create("/jti", {"--jwt-svid-include-jti"}, &r);
  EXPECT_TRUE(Stored(jti).jwt_svid_include_jti);
  EXPECT_FALSE(Stored(jti).disable_x509_svid_prefetch);
  EXPECT_THAT(r.out, HasSubstr(kJtiLine));
  EXPECT_THAT(r.out, Not(HasSubstr("prefetch")));

  const std::string plain = Create("/plain", {}, &r);
  EXPECT_FALSE(Stored(plain).jwt_svid_include_jti);
  EXPECT_FALSE(Stored(plain).disable_x509_svid_prefetch);
  EXPECT_THAT(r.out, Not(HasSubstr("JTI")));
  EXPECT_THAT(r.out, Not(HasSubstr("prefetch")));

  // An explicit =false is a value, as for --admin.
  const std::string off =
      Create("/off", {"--jwt-svid-include-jti=false", "--disable-x509-svid-prefetch=true"}, &r);
  EXPECT_FALSE(Stored(off).jwt_svid_include_jti);
  EXPECT_TRUE(Stored(off).disable_x509_svid_prefetch);

  // show prints them too, and JSON carries the proto field.
  CliResult shown = Run({"entry", "show", "--spiffe-id", "spiffe://example.org/both"});
  ASSERT_EQ(shown.code, 0) << shown.err;
  EXPECT_THAT(shown.out, HasSubstr(std::string(kJtiLine) + kPrefetchLine));
  CliResult json =
      Run({"entry", "show", "--spiffe-id", "spiffe://example.org/jti", "--output", "json"});
  ASSERT_EQ(json.code, 0) << json.err;
  entryv1::ListEntriesResponse listed;
  ASSERT_TRUE(ParseJson(json.out, &listed));
  ASSERT_EQ(listed.entries_size(), 1);
  EXPECT_TRUE(listed.entries(0).additional_attributes().jwt_svid_include_jti());
  EXPECT_FALSE(listed.entries(0).additional_attributes().disable_x509_svid_prefetch());
  EXPECT_THAT(json.out, HasSubstr("\"additional_attributes\":{"));
  EXPECT_THAT(json.out, HasSubstr("\"jwt_svid_include_jti\":true"));
}

TEST_F(EntryAttributesCliTest, UpdatingOneFlagKeepsTheOther) {
  CliResult r;
  const std::string id = Create("/web", {"--disable-x509-svid-prefetch"}, &r);
  ASSERT_FALSE(id.empty());

  r = Run({"entry", "update", "--entry-id", id, "--jwt-svid-include-jti"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("Revision         : 1\n"));
  EXPECT_THAT(r.out, HasSubstr(std::string(kJtiLine) + kPrefetchLine));
  Entry stored = Stored(id);
  EXPECT_TRUE(stored.jwt_svid_include_jti);
  EXPECT_TRUE(stored.disable_x509_svid_prefetch);
  EXPECT_EQ(stored.selectors, Selectors({"unix:uid:1000"}));

  r = Run({"entry", "update", "--entry-id", id, "--disable-x509-svid-prefetch=false"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr(kJtiLine));
  EXPECT_THAT(r.out, Not(HasSubstr("prefetch")));
  stored = Stored(id);
  EXPECT_TRUE(stored.jwt_svid_include_jti);
  EXPECT_FALSE(stored.disable_x509_svid_prefetch);
  EXPECT_EQ(stored.revision_number, 2);

  // Both at once need no read first; other flags alone leave them.
  r = Run({"entry", "update", "--entry-id", id, "--jwt-svid-include-jti=false",
           "--disable-x509-svid-prefetch"});
  ASSERT_EQ(r.code, 0) << r.err;
  stored = Stored(id);
  EXPECT_FALSE(stored.jwt_svid_include_jti);
  EXPECT_TRUE(stored.disable_x509_svid_prefetch);
  r = Run({"entry", "update", "--entry-id", id, "--hint", "h"});
  ASSERT_EQ(r.code, 0) << r.err;
  stored = Stored(id);
  EXPECT_FALSE(stored.jwt_svid_include_jti);
  EXPECT_TRUE(stored.disable_x509_svid_prefetch);
  EXPECT_EQ(stored.hint, "h");
  EXPECT_EQ(stored.revision_number, 4);
}

TEST_F(EntryAttributesCliTest, UpdatingOneFlagOfAMissingEntryFailsWithoutWriting) {
  CliResult r = Run({"entry", "update", "--entry-id", "no-such-entry", "--jwt-svid-include-jti"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "failed to fetch entry \"no-such-entry\": entry not found\n");
  EXPECT_THAT(r.out, IsEmpty());
  r = Run({"entry", "update", "--entry-id", "no-such-entry", "--jwt-svid-include-jti",
           "--disable-x509-svid-prefetch"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "failed to update entry: entry not found\n");
  // Bad flags are refused before the entry is read.
  r = Run({"entry", "update", "--entry-id", "no-such-entry", "--jwt-svid-include-jti", "--selector",
           "bad"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, ::testing::StartsWith("--selector: invalid selector \"bad\""));
  EXPECT_EQ(StoredEntryCount(), 0);
  EXPECT_EQ(notifier_.entry_changes(), 0);
}

TEST_F(EntryAttributesCliTest, HelpListsTheFlags) {
  for (const char* command : {"create", "update"}) {
    CliResult r = RunRaw({"tessera-server", "entry", command, "--help"});
    EXPECT_EQ(r.code, 0);
    EXPECT_THAT(r.out, HasSubstr("--jwt-svid-include-jti")) << command;
    EXPECT_THAT(r.out, HasSubstr("--disable-x509-svid-prefetch")) << command;
  }
  // They are no filters of show or count.
  CliResult r = Run({"entry", "show", "--jwt-svid-include-jti"});
  EXPECT_NE(r.code, 0);
  EXPECT_THAT(r.out, IsEmpty());
}

}  // namespace
}  // namespace tessera::server::testing
