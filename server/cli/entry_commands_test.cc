// `entry create|update|delete|show|count` through CLI11 against the real EntryService over the
// admin socket: pretty and JSON output, partial updates, filters, paging, and every refusal (bad
// flags before any RPC, the server's per-item statuses, an unreachable server).
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
using ::testing::StartsWith;

class EntryCliTest : public CliTest {
 protected:
  // Creates a web entry through the CLI and returns its ID.
  std::string CreateWeb() {
    CliResult r = Run({"entry", "create", "--spiffe-id", "spiffe://example.org/web", "--parent-id",
                       "spiffe://example.org/spire/agent/x/1", "--selector", "unix:uid:1000",
                       "--output", "json"});
    EXPECT_EQ(r.code, 0) << r.err;
    entryv1::BatchCreateEntryResponse response;
    EXPECT_TRUE(ParseJson(r.out, &response));
    return response.results_size() == 1 ? response.results(0).entry().id() : "";
  }
};

TEST_F(EntryCliTest, CreatePrintsTheEntryInSpireLayoutAndStoresIt) {
  CliResult r = Run({"entry", "create", "--spiffe-id", "spiffe://example.org/web", "--parent-id",
                     "spiffe://example.org/spire/agent/x/1", "--selector", "unix:uid:1000",
                     "--selector", "unix:gid:50", "--x509-svid-ttl", "1h", "--jwt-svid-ttl", "300",
                     "--dns", "web.example.org", "--hint", "frontend", "--admin"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.err, IsEmpty());
  auto stored = store_->ListAllEntries();
  ASSERT_TRUE(stored.ok()) << stored.status();
  ASSERT_EQ(stored->size(), 1u);
  const Entry& e = (*stored)[0];
  EXPECT_EQ(e.spiffe_id.str(), "spiffe://example.org/web");
  EXPECT_EQ(e.x509_svid_ttl, 3600);
  EXPECT_EQ(e.jwt_svid_ttl, 300);
  EXPECT_TRUE(e.admin);
  EXPECT_EQ(r.out, "Entry ID         : " + e.id +
                       "\n"
                       "SPIFFE ID        : spiffe://example.org/web\n"
                       "Parent ID        : spiffe://example.org/spire/agent/x/1\n"
                       "Revision         : 0\n"
                       "X509-SVID TTL    : 3600\n"
                       "JWT-SVID TTL     : 300\n"
                       "Selector         : unix:gid:50\n"
                       "Selector         : unix:uid:1000\n"
                       "DNS name         : web.example.org\n"
                       "Admin            : true\n"
                       "Hint             : frontend\n"
                       "\n");
}

TEST_F(EntryCliTest, ShowListsEntriesSortedInPrettyAndJson) {
  ASSERT_EQ(Run({"entry", "create", "--spiffe-id", "spiffe://example.org/b", "--parent-id",
                 "spiffe://example.org/spire/agent/x/1", "--selector", "k8s:ns:b"})
                .code,
            0);
  ASSERT_EQ(Run({"entry", "create", "--spiffe-id", "spiffe://example.org/a", "--parent-id",
                 "spiffe://example.org/spire/agent/x/1", "--selector", "k8s:ns:a", "--expires-at",
                 "2030-01-02T03:04:05Z"})
                .code,
            0);

  CliResult pretty = Run({"entry", "show"});
  ASSERT_EQ(pretty.code, 0) << pretty.err;
  EXPECT_THAT(pretty.out, StartsWith("Found 2 entries\nEntry ID         : "));
  size_t a = pretty.out.find("SPIFFE ID        : spiffe://example.org/a\n");
  size_t b = pretty.out.find("SPIFFE ID        : spiffe://example.org/b\n");
  ASSERT_NE(a, std::string::npos);
  ASSERT_NE(b, std::string::npos);
  EXPECT_LT(a, b);
  EXPECT_THAT(pretty.out, HasSubstr("Expiration time  : 2030-01-02 03:04:05 +0000 UTC\n"));

  CliResult json = Run({"entry", "show", "--output", "json"});
  ASSERT_EQ(json.code, 0) << json.err;
  entryv1::ListEntriesResponse response;
  ASSERT_TRUE(ParseJson(json.out, &response));
  ASSERT_EQ(response.entries_size(), 2);
  EXPECT_EQ(response.entries(0).spiffe_id().path(), "/a");
  EXPECT_EQ(response.entries(0).expires_at(), 1893553445);
  EXPECT_EQ(response.entries(1).selectors(0).value(), "ns:b");
  // protojson with proto field names, as spire-server prints it.
  EXPECT_THAT(json.out, HasSubstr("\"spiffe_id\""));
  EXPECT_THAT(json.out, HasSubstr("\"x509_svid_ttl\":0"));

  CliResult one = Run({"entry", "show", "--entry-id", response.entries(1).id()});
  ASSERT_EQ(one.code, 0) << one.err;
  EXPECT_THAT(one.out, StartsWith("Found 1 entry\n"));
  EXPECT_THAT(one.out, HasSubstr("spiffe://example.org/b"));
  EXPECT_THAT(one.out, Not(HasSubstr("spiffe://example.org/a")));
}

TEST_F(EntryCliTest, ShowAndCountFilter) {
  ASSERT_EQ(Run({"entry", "create", "--spiffe-id", "spiffe://example.org/a", "--parent-id",
                 "spiffe://example.org/spire/agent/x/1", "--selector", "k8s:ns:web", "--selector",
                 "k8s:sa:a", "--hint", "h1"})
                .code,
            0);
  ASSERT_EQ(
      Run({"entry", "create", "--spiffe-id", "spiffe://example.org/b", "--parent-id",
           "spiffe://example.org/spire/agent/x/2", "--selector", "k8s:ns:web", "--downstream"})
          .code,
      0);

  CliResult r = Run({"entry", "show", "--parent-id", "spiffe://example.org/spire/agent/x/2"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, StartsWith("Found 1 entry\n"));
  EXPECT_THAT(r.out, HasSubstr("SPIFFE ID        : spiffe://example.org/b\n"));
  EXPECT_THAT(r.out, HasSubstr("Downstream       : true\n"));

  r = Run({"entry", "show", "--selector", "k8s:ns:web", "--match", "exact"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, StartsWith("Found 1 entry\n"));
  EXPECT_THAT(r.out, HasSubstr("spiffe://example.org/b"));

  EXPECT_EQ(Run({"entry", "count"}).out, "2 registration entries\n");
  EXPECT_EQ(Run({"entry", "count", "--selector", "k8s:ns:web"}).out, "2 registration entries\n");
  EXPECT_EQ(Run({"entry", "count", "--hint", "h1"}).out, "1 registration entry\n");
  EXPECT_EQ(Run({"entry", "count", "--downstream"}).out, "1 registration entry\n");
  EXPECT_EQ(Run({"entry", "count", "--downstream=false"}).out, "1 registration entry\n");
  EXPECT_EQ(Run({"entry", "count", "--spiffe-id", "spiffe://example.org/nobody"}).out,
            "0 registration entries\n");

  CliResult json = Run({"entry", "count", "--output", "json"});
  entryv1::CountEntriesResponse count;
  ASSERT_TRUE(ParseJson(json.out, &count));
  EXPECT_EQ(count.count(), 2);
}

TEST_F(EntryCliTest, ShowPagesThroughEveryEntry) {
  // One more than a ListEntries page (500).
  for (int i = 0; i < 501; ++i) {
    Entry entry = MakeEntry("spiffe://example.org/w/" + std::to_string(i),
                            "spiffe://example.org/spire/agent/x/1", {"unix:uid:1"});
    ASSERT_TRUE(store_->CreateOrReturnEntry(entry).ok());
  }
  CliResult r = Run({"entry", "show", "--output", "json"});
  ASSERT_EQ(r.code, 0) << r.err;
  entryv1::ListEntriesResponse response;
  ASSERT_TRUE(ParseJson(r.out, &response));
  EXPECT_EQ(response.entries_size(), 501);
  EXPECT_THAT(Run({"entry", "show"}).out, StartsWith("Found 501 entries\n"));
}

TEST_F(EntryCliTest, NodeAliasIsParentedToTheServerOfItsTrustDomain) {
  CliResult r = Run({"entry", "create", "--node", "--spiffe-id", "spiffe://example.org/cluster",
                     "--selector", "k8s_psat:cluster:c1"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("Parent ID        : spiffe://example.org/spire/server\n"));
}

TEST_F(EntryCliTest, UpdateChangesOnlyTheGivenFields) {
  std::string id = CreateWeb();
  ASSERT_FALSE(id.empty());
  CliResult r = Run({"entry", "update", "--entry-id", id, "--x509-svid-ttl", "2h", "--admin"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("Revision         : 1\n"));
  EXPECT_THAT(r.out, HasSubstr("X509-SVID TTL    : 7200\n"));
  auto stored = store_->FetchEntry(id);
  ASSERT_TRUE(stored.ok() && stored->has_value());
  EXPECT_EQ((*stored)->x509_svid_ttl, 7200);
  EXPECT_TRUE((*stored)->admin);
  EXPECT_EQ((*stored)->selectors, Selectors({"unix:uid:1000"}));
  EXPECT_EQ((*stored)->parent_id.str(), "spiffe://example.org/spire/agent/x/1");

  r = Run({"entry", "update", "--entry-id", id, "--admin=false", "--selector", "unix:uid:2000",
           "--output", "json"});
  ASSERT_EQ(r.code, 0) << r.err;
  entryv1::BatchUpdateEntryResponse response;
  ASSERT_TRUE(ParseJson(r.out, &response));
  ASSERT_EQ(response.results_size(), 1);
  EXPECT_EQ(response.results(0).entry().revision_number(), 2);
  stored = store_->FetchEntry(id);
  ASSERT_TRUE(stored.ok() && stored->has_value());
  EXPECT_FALSE((*stored)->admin);
  EXPECT_EQ((*stored)->selectors, Selectors({"unix:uid:2000"}));
  EXPECT_EQ((*stored)->x509_svid_ttl, 7200);
}

TEST_F(EntryCliTest, UpdateRefusals) {
  std::string id = CreateWeb();
  CliResult r = Run({"entry", "update", "--x509-svid-ttl", "1h"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "an entry ID is required\n");
  r = Run({"entry", "update", "--entry-id", id});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("nothing to update"));
  r = Run({"entry", "update", "--entry-id", "no-such-entry", "--hint", "x"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "failed to update entry: entry not found\n");
  r = Run({"entry", "update", "--entry-id", id, "--spiffe-id", "spiffe://example.org/spire/x"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("path is in the reserved namespace"));
  auto stored = store_->FetchEntry(id);
  ASSERT_TRUE(stored.ok() && stored->has_value());
  EXPECT_EQ((*stored)->revision_number, 0);
}

TEST_F(EntryCliTest, DeleteRemovesTheEntryAndReportsAMissingOne) {
  std::string id = CreateWeb();
  CliResult r = Run({"entry", "delete", "--entry-id", id});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "Deleted entry with ID: " + id + "\n");
  EXPECT_EQ(StoredEntryCount(), 0);
  EXPECT_EQ(Run({"entry", "count"}).out, "0 registration entries\n");

  r = Run({"entry", "delete", "--entry-id", id});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "failed to delete entry: entry not found\n");
  EXPECT_THAT(r.out, IsEmpty());

  r = Run({"entry", "delete"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "an entry ID is required\n");
}

TEST_F(EntryCliTest, BadFlagsAreRefusedBeforeAnyRpc) {
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const std::vector<std::string> base = {"entry",       "create",
                                         "--spiffe-id", "spiffe://example.org/web",
                                         "--parent-id", "spiffe://example.org/spire/agent/x/1"};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = base;
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  };
  const std::vector<Case> cases = {
      {with({}), "at least one selector is required"},
      {with({"--selector", "nocolon"}), "--selector: invalid selector \"nocolon\""},
      {with({"--selector", ":value"}), "--selector: invalid selector"},
      {with({"--selector", "unix:uid:1", "--x509-svid-ttl", "1x"}),
       "--x509-svid-ttl: invalid duration \"1x\""},
      {with({"--selector", "unix:uid:1", "--jwt-svid-ttl=-5"}),
       "--jwt-svid-ttl: invalid duration \"-5\": negative durations are not allowed"},
      {with({"--selector", "unix:uid:1", "--x509-svid-ttl", "99999999999"}),
       "is more than 2147483647 seconds"},
      {with({"--selector", "unix:uid:1", "--federates-with", "Not A Domain"}),
       "--federates-with \"Not A Domain\""},
      {with({"--selector", "unix:uid:1", "--expires-at", "tomorrow"}),
       "--expires-at \"tomorrow\": expected Unix seconds or an RFC 3339 time"},
      {{"entry", "create", "--spiffe-id", "http://example.org/web", "--parent-id",
        "spiffe://example.org/spire/agent/x/1", "--selector", "unix:uid:1"},
       "--spiffe-id \"http://example.org/web\": invalid SPIFFE ID"},
      {{"entry", "create", "--spiffe-id", "spiffe://example.org/web", "--parent-id",
        "spiffe://Example.org/x", "--selector", "unix:uid:1"},
       "--parent-id \"spiffe://Example.org/x\": invalid SPIFFE ID"},
      {{"entry", "create", "--spiffe-id", "spiffe://example.org/web", "--selector", "unix:uid:1"},
       "a parent ID is required if the --node flag is not set"},
      {{"entry", "create", "--parent-id", "spiffe://example.org/p", "--selector", "unix:uid:1"},
       "a SPIFFE ID is required"},
      {{"entry", "create", "--node", "--spiffe-id", "spiffe://example.org/c", "--selector", "a:b",
        "--federates-with", "other.org"},
       "node entries can not federate"},
      {{"entry", "show", "--selector", "bad"}, "--selector: invalid selector \"bad\""},
      {{"entry", "show", "--entry-id", "x", "--spiffe-id", "spiffe://example.org/a"},
       "the --entry-id flag can't be combined with other filters"},
      {{"entry", "count", "--parent-id", "not-an-id"}, "--parent-id \"not-an-id\""},
  };
  for (const Case& c : cases) {
    CliResult r = Run(c.args);
    EXPECT_EQ(r.code, 1) << c.message;
    EXPECT_THAT(r.err, HasSubstr(c.message));
    EXPECT_THAT(r.out, IsEmpty()) << c.message;
  }
  EXPECT_EQ(StoredEntryCount(), 0);
  EXPECT_EQ(notifier_.entry_changes(), 0);
}

TEST_F(EntryCliTest, ServerRefusalsArePrintedAndExitOne) {
  const std::string parent = "spiffe://example.org/spire/agent/x/1";
  CliResult r = Run({"entry", "create", "--spiffe-id", "spiffe://other.org/web", "--parent-id",
                     parent, "--selector", "unix:uid:1"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, StartsWith("failed to create entry: failed to convert entry: "));
  EXPECT_THAT(r.err, HasSubstr("\"spiffe://other.org/web\" is not a member of trust domain "
                               "\"example.org\"\n"));
  EXPECT_THAT(r.out, IsEmpty());

  r = Run({"entry", "create", "--spiffe-id", "spiffe://example.org/spire/x", "--parent-id", parent,
           "--selector", "unix:uid:1"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("path is in the reserved namespace"));

  ASSERT_FALSE(CreateWeb().empty());
  r = Run({"entry", "create", "--spiffe-id", "spiffe://example.org/web", "--parent-id", parent,
           "--selector", "unix:uid:1000"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "failed to create entry: similar entry already exists\n");
  EXPECT_EQ(StoredEntryCount(), 1);

  // JSON output still prints the response (with its status) before failing.
  r = Run({"entry", "create", "--spiffe-id", "spiffe://example.org/web", "--parent-id", parent,
           "--selector", "unix:uid:1000", "--output", "json"});
  EXPECT_EQ(r.code, 1);
  entryv1::BatchCreateEntryResponse response;
  ASSERT_TRUE(ParseJson(r.out, &response));
  EXPECT_EQ(response.results(0).status().code(), 6);  // ALREADY_EXISTS

  r = Run({"entry", "show", "--entry-id", "missing"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "failed to fetch entry \"missing\": entry not found\n");
}

TEST_F(EntryCliTest, UnreachableServerNamesTheSocket) {
  CliResult r = RunRaw(
      {"tessera-server", "entry", "count", "--socket-path", (dir_ / "nothing-here.sock").string()});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, StartsWith("cannot reach tessera-server at " +
                                (dir_ / "nothing-here.sock").string() + ": "));
}

TEST_F(EntryCliTest, Cli11RejectsUnknownFlagsAndBadChoices) {
  CliResult r = Run({"entry", "show", "--output", "yaml"});
  EXPECT_NE(r.code, 0);
  EXPECT_THAT(r.err, HasSubstr("--output"));
  r = Run({"entry", "show", "--bogus"});
  EXPECT_NE(r.code, 0);
  // One value per --selector: a second bare value is not silently taken as another selector.
  r = Run({"entry", "show", "--selector", "k8s:ns:a", "k8s:ns:b"});
  EXPECT_NE(r.code, 0);
  EXPECT_THAT(r.out, IsEmpty());
  r = RunRaw({"tessera-server", "entry", "create", "--help"});
  EXPECT_EQ(r.code, 0);
  EXPECT_THAT(r.out, HasSubstr("--x509-svid-ttl"));
  EXPECT_THAT(r.out, HasSubstr("/tmp/tessera-server/private/api.sock"));
  r = RunRaw({"tessera-server", "entry"});
  EXPECT_NE(r.code, 0);
  EXPECT_THAT(r.err, HasSubstr("subcommand"));
}

}  // namespace
}  // namespace tessera::server::testing
