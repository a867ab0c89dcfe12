#include "common/config.h"

#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "common/strings.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;
using ::testing::StartsWith;

// Parses `text` as "server.toml" and reads it with `read`; the parse must succeed.
absl::Status ReadText(std::string_view text, absl::FunctionRef<void(ConfigTable&)> read) {
  absl::StatusOr<ConfigDocument> doc = ConfigDocument::Parse(text, "server.toml");
  if (!doc.ok()) return doc.status();
  return doc->Read(read);
}

std::string Message(const absl::Status& status) { return std::string(status.message()); }

constexpr char kServerToml[] = R"(trust_domain = "example.org"
bind_port = 8081
ca_ttl = "24h"
admin_ids = ["spiffe://example.org/admin"]
[datastore]
type = "sqlite"
[node_attestor.join_token]
[workload_attestor.unix]
discover_workload_path = true
)";

struct ServerConfig {
  std::string trust_domain;
  uint16_t bind_port = 0;
  std::chrono::nanoseconds ca_ttl{0};
  std::vector<std::string> admin_ids;
  std::string datastore_type;
  std::vector<std::string> node_attestors;
  std::vector<std::pair<std::string, bool>> workload_attestors;
};

// The reader a server would write; `trust_domain` must not contain upper case, as a stand-in
// for real validation.
absl::Status ReadServer(std::string_view text, ServerConfig* c) {
  return ReadText(text, [&](ConfigTable& root) {
    c->trust_domain = root.Required<std::string>("trust_domain", [](const std::string& td) {
      for (char ch : td) {
        if (ch >= 'A' && ch <= 'Z') return absl::InvalidArgumentError("upper case is not allowed");
      }
      return absl::OkStatus();
    });
    c->bind_port = root.Optional<uint16_t>("bind_port", 8081);
    c->ca_ttl = root.Duration("ca_ttl", std::chrono::hours(1));
    c->admin_ids = root.StringList("admin_ids");
    ConfigTable datastore = root.SubTable("datastore");
    c->datastore_type = datastore.Required<std::string>("type");
    root.ForEachSubTable("node_attestor", [&](std::string_view name, ConfigTable&) {
      c->node_attestors.emplace_back(name);
    });
    root.ForEachSubTable("workload_attestor", [&](std::string_view name, ConfigTable& plugin) {
      c->workload_attestors.emplace_back(name,
                                         plugin.Optional<bool>("discover_workload_path", false));
    });
  });
}

TEST(ConfigTest, ReadsTheExampleServerConfig) {
  ServerConfig c;
  ASSERT_TRUE(ReadServer(kServerToml, &c).ok()) << ReadServer(kServerToml, &c);
  EXPECT_EQ(c.trust_domain, "example.org");
  EXPECT_EQ(c.bind_port, 8081);
  EXPECT_EQ(c.ca_ttl, std::chrono::hours(24));
  EXPECT_THAT(c.admin_ids, ElementsAre("spiffe://example.org/admin"));
  EXPECT_EQ(c.datastore_type, "sqlite");
  EXPECT_THAT(c.node_attestors, ElementsAre("join_token"));
  EXPECT_THAT(c.workload_attestors, ElementsAre(Pair("unix", true)));
}

TEST(ConfigTest, UnknownKeyIsReportedWithPositionAndSuggestion) {
  ServerConfig c;
  const absl::Status status = ReadServer(std::string(kServerToml) + "[datastore2]\n", &c);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Message(status), R"(server.toml:10:2: unknown key "datastore2")");

  const absl::Status typo = ReadServer(R"(trust_domain = "example.org"
[datastore]
type = "sqlite"
bind_prot = 8082
)",
                                       &c);
  EXPECT_EQ(Message(typo), R"(server.toml:4:1: unknown key "datastore.bind_prot")");

  const absl::Status root_typo = ReadServer(R"(trust_domain = "example.org"
bind_prot = 8082
[datastore]
type = "sqlite"
)",
                                            &c);
  EXPECT_EQ(Message(root_typo),
            R"(server.toml:2:1: unknown key "bind_prot" (did you mean "bind_port"?))");
}

TEST(ConfigTest, UnknownKeysInsidePluginTablesAreReportedWithFullPath) {
  ServerConfig c;
  const absl::Status status = ReadServer(R"(trust_domain = "example.org"
[datastore]
type = "sqlite"
[workload_attestor.unix]
discover_workload_paht = true
)",
                                         &c);
  EXPECT_EQ(Message(status),
            "server.toml:5:1: unknown key \"workload_attestor.unix.discover_workload_paht\" "
            "(did you mean \"discover_workload_path\"?)");
}

TEST(ConfigTest, InvalidDurationIsReportedAtTheValue) {
  ServerConfig c;
  const absl::Status status = ReadServer(R"(trust_domain = "example.org"
[datastore]
type = "sqlite"
)" + std::string("[x]\n"),
                                         &c);
  EXPECT_EQ(Message(status), R"(server.toml:4:2: unknown key "x")");

  const absl::Status bad = ReadServer(R"(trust_domain = "example.org"
bind_port = 8081
ca_ttl = "24hours"
[datastore]
type = "sqlite"
)",
                                      &c);
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Message(bad),
            "server.toml:3:10: ca_ttl: invalid duration \"24hours\": unknown unit \"hours\" (use "
            "ns, us, ms, s, m, h or d)");
}

TEST(ConfigTest, TypeErrorsAndRangeErrors) {
  ServerConfig c;
  EXPECT_EQ(Message(ReadServer(R"(trust_domain = "example.org"
bind_port = "8081"
[datastore]
type = "sqlite"
)",
                               &c)),
            "server.toml:2:13: bind_port: expected an integer, got a string");
  EXPECT_EQ(Message(ReadServer(R"(trust_domain = "example.org"
bind_port = 70000
[datastore]
type = "sqlite"
)",
                               &c)),
            "server.toml:2:13: bind_port: value 70000 is out of range [0, 65535]");
  EXPECT_EQ(Message(ReadServer(R"(trust_domain = "example.org"
bind_port = -1
ca_ttl = 3600
[datastore]
type = "sqlite"
)",
                               &c)),
            "server.toml:2:13: bind_port: value -1 is out of range [0, 65535]\n"
            "server.toml:3:10: ca_ttl: expected a duration string such as \"1h30m\", got an "
            "integer");
  EXPECT_EQ(Message(ReadServer(R"(trust_domain = "example.org"
datastore = "sqlite"
)",
                               &c)),
            "server.toml:2:13: datastore: expected a table, got a string");
}

TEST(ConfigTest, MissingRequiredKeys) {
  ServerConfig c;
  // At the root the file itself is the position; in a table, the table's header.
  EXPECT_EQ(Message(ReadServer(R"(bind_port = 1
[datastore]
kind = "sqlite"
)",
                               &c)),
            "server.toml: missing required key \"trust_domain\"\n"
            "server.toml:2:1: missing required key \"datastore.type\"\n"
            "server.toml:3:1: unknown key \"datastore.kind\"");

  const absl::Status status = ReadText("x = 1\n[a]\n", [](ConfigTable& root) {
    root.Required<int64_t>("x");
    ConfigTable a = root.RequiredSubTable("a");
    // Inside an absent optional table, the nearest present ancestor gives the position.
    ConfigTable b = a.SubTable("b");
    b.Required<int64_t>("c");
    // A missing required table is reported once, not again for each key read from it.
    ConfigTable d = root.RequiredSubTable("d");
    d.Required<int64_t>("e");
  });
  EXPECT_EQ(Message(status),
            "server.toml: missing required table \"d\"\n"
            "server.toml:2:1: missing required key \"a.b.c\"");
}

TEST(ConfigTest, ValidatorErrorsAreReportedAtTheValue) {
  ServerConfig c;
  EXPECT_EQ(Message(ReadServer(R"(trust_domain = "Example.org"
[datastore]
type = "sqlite"
)",
                               &c)),
            "server.toml:1:16: trust_domain: upper case is not allowed");
}

TEST(ConfigTest, TomlSyntaxErrorsCarryTheirPosition) {
  absl::StatusOr<ConfigDocument> doc = ConfigDocument::Parse("a = 1\nb = [1,\n  x]\n", "s.toml");
  ASSERT_FALSE(doc.ok());
  EXPECT_EQ(doc.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Message(doc.status()),
            "s.toml:3:3: error while parsing value: could not determine value type");

  doc = ConfigDocument::Parse("a = 1\na = 2\n", "s.toml");
  ASSERT_FALSE(doc.ok());
  EXPECT_THAT(Message(doc.status()), StartsWith("s.toml:2:5: "));
  EXPECT_THAT(Message(doc.status()), HasSubstr("cannot redefine existing integer 'a'"));

  doc = ConfigDocument::Parse("a = \"\xFF\"\n", "s.toml");
  ASSERT_FALSE(doc.ok());
  EXPECT_THAT(Message(doc.status()), StartsWith("s.toml:1:5: "));
  EXPECT_THAT(Message(doc.status()), HasSubstr("utf-8"));
}

TEST(ConfigTest, ScalarTypes) {
  int64_t i64 = 0;
  int32_t i32 = 0;
  uint32_t u32 = 0;
  uint64_t u64 = 0;
  double d1 = 0;
  double d2 = 0;
  bool flag = false;
  std::string s;
  const absl::Status status = ReadText(R"(i64 = -9223372036854775808
i32 = -2147483648
u32 = 4294967295
u64 = 9223372036854775807
d1 = 1.5
d2 = 3
flag = true
s = "x\ty"
)",
                                       [&](ConfigTable& root) {
                                         i64 = root.Required<int64_t>("i64");
                                         i32 = root.Required<int32_t>("i32");
                                         u32 = root.Required<uint32_t>("u32");
                                         u64 = root.Required<uint64_t>("u64");
                                         d1 = root.Required<double>("d1");
                                         d2 = root.Required<double>("d2");
                                         flag = root.Required<bool>("flag");
                                         s = root.Required<std::string>("s");
                                       });
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(i64, INT64_MIN);
  EXPECT_EQ(i32, INT32_MIN);
  EXPECT_EQ(u32, UINT32_MAX);
  EXPECT_EQ(u64, uint64_t{INT64_MAX});
  EXPECT_EQ(d1, 1.5);
  EXPECT_EQ(d2, 3.0);
  EXPECT_TRUE(flag);
  EXPECT_EQ(s, "x\ty");

  const absl::Status errors = ReadText(R"(a = 2147483648
b = "true"
c = true
d = -1
)",
                                       [&](ConfigTable& root) {
                                         EXPECT_EQ(root.Optional<int32_t>("a", 7), 7);
                                         EXPECT_FALSE(root.Optional<bool>("b", false));
                                         EXPECT_EQ(root.Required<double>("c"), 0.0);
                                         EXPECT_EQ(root.Required<uint64_t>("d"), 0u);
                                         EXPECT_EQ(root.Optional<int64_t>("absent", 42), 42);
                                       });
  EXPECT_EQ(Message(errors),
            "server.toml:1:5: a: value 2147483648 is out of range [-2147483648, 2147483647]\n"
            "server.toml:2:5: b: expected a boolean, got a string\n"
            "server.toml:3:5: c: expected a number, got a boolean\n"
            "server.toml:4:5: d: value -1 is out of range [0, 18446744073709551615]");
}

TEST(ConfigTest, DefaultsAreNotValidated) {
  const absl::Status status = ReadText("", [](ConfigTable& root) {
    const auto reject = [](const int64_t&) { return absl::InvalidArgumentError("no"); };
    EXPECT_EQ(root.Optional<int64_t>("n", -5, reject), -5);
  });
  EXPECT_TRUE(status.ok()) << status;
}

TEST(ConfigTest, Durations) {
  const absl::Status status =
      ReadText("a = \"1h30m\"\nb = \"250ms\"\nc = \"-1s\"\nd = \"30s\"\n", [](ConfigTable& root) {
        EXPECT_EQ(root.RequiredDuration("a"), std::chrono::minutes(90));
        EXPECT_EQ(root.Duration("b", std::chrono::seconds(1)), std::chrono::milliseconds(250));
        EXPECT_EQ(root.Duration("c", std::chrono::seconds(1)), std::chrono::seconds(1));
        EXPECT_EQ(root.Duration("absent", std::chrono::seconds(2)), std::chrono::seconds(2));
        root.Duration("d", std::chrono::minutes(5), [](const std::chrono::nanoseconds& v) {
          return v < std::chrono::minutes(1) ? absl::InvalidArgumentError("must be at least 1m")
                                             : absl::OkStatus();
        });
        root.RequiredDuration("e");
      });
  EXPECT_EQ(Message(status),
            "server.toml: missing required key \"e\"\n"
            "server.toml:3:5: c: invalid duration \"-1s\": negative durations are not allowed\n"
            "server.toml:4:5: d: must be at least 1m");
}

TEST(ConfigTest, Sizes) {
  const absl::Status status = ReadText(R"(a = "10MiB"
b = 4096
c = "10 KB"
d = -1
e = "1.5GiB"
f = 1.5
)",
                                       [](ConfigTable& root) {
                                         EXPECT_EQ(root.RequiredSize("a"), 10u << 20);
                                         EXPECT_EQ(root.Size("b", 1), 4096u);
                                         EXPECT_EQ(root.Size("c", 1), 10'000u);
                                         EXPECT_EQ(root.Size("d", 1), 1u);
                                         EXPECT_EQ(root.Size("e", 1), 1u);
                                         EXPECT_EQ(root.Size("f", 1), 1u);
                                         EXPECT_EQ(root.Size("absent", 7), 7u);
                                       });
  EXPECT_EQ(Message(status),
            "server.toml:4:5: d: negative sizes are not allowed\n"
            "server.toml:5:5: e: invalid size \"1.5GiB\": unknown unit \".5GiB\" (use B, KB, MB, "
            "GB, TB, PB, KiB, MiB, GiB, TiB or PiB)\n"
            "server.toml:6:5: f: expected a size (an integer or a string such as \"10MiB\"), got a "
            "float");
}

TEST(ConfigTest, StringListsReportEachBadElement) {
  const absl::Status status = ReadText(
      R"(ids = ["spiffe://a/x", 3, "bad"]
one = "x"
)",
      [](ConfigTable& root) {
        const auto check = [](const std::string& s) {
          return absl::StartsWith(s, "spiffe://") ? absl::OkStatus()
                                                  : absl::InvalidArgumentError("not a spiffe id");
        };
        EXPECT_THAT(root.StringList("ids", check), ElementsAre("spiffe://a/x"));
        EXPECT_TRUE(root.StringList("one").empty());
        EXPECT_TRUE(root.StringList("absent").empty());
      });
  EXPECT_EQ(Message(status),
            "server.toml:1:24: ids[1]: expected a string, got an integer\n"
            "server.toml:1:27: ids[2]: not a spiffe id\n"
            "server.toml:2:7: one: expected an array of strings, got a string");
}

TEST(ConfigTest, ForEachSubTableKeepsFileOrderAndRejectsNonTables) {
  std::vector<std::string> names;
  const absl::Status status = ReadText(
      R"([plugins.zeta]
x = 1
[plugins.alpha]
[plugins.mid]
y = 2
)",
      [&](ConfigTable& root) {
        const size_t n =
            root.ForEachSubTable("plugins", [&](std::string_view name, ConfigTable& t) {
              names.emplace_back(name);
              EXPECT_EQ(t.path(), "plugins." + names.back());
              t.Optional<int64_t>("x", 0);
            });
        EXPECT_EQ(n, 3u);
        EXPECT_EQ(root.ForEachSubTable(
                      "absent", [](std::string_view, ConfigTable&) { ADD_FAILURE() << "called"; }),
                  0u);
      });
  EXPECT_THAT(names, ElementsAre("zeta", "alpha", "mid"));
  EXPECT_EQ(Message(status), "server.toml:5:1: unknown key \"plugins.mid.y\"");

  const absl::Status non_table = ReadText("[plugins]\nunix = true\n", [](ConfigTable& root) {
    EXPECT_EQ(root.ForEachSubTable("plugins", [](std::string_view, ConfigTable&) {}), 0u);
  });
  EXPECT_EQ(Message(non_table), "server.toml:2:8: plugins.unix: expected a table, got a boolean");
}

TEST(ConfigTest, ArraysOfTables) {
  std::vector<int64_t> ports;
  const absl::Status status =
      ReadText(R"([[listener]]
port = 1
[[listener]]
port = 2
extra = true
)",
               [&](ConfigTable& root) {
                 root.ForEachArrayTable("listener", [&](size_t i, ConfigTable& t) {
                   EXPECT_EQ(t.path(), "listener[" + std::to_string(i) + "]");
                   ports.push_back(t.Required<int64_t>("port"));
                 });
               });
  EXPECT_THAT(ports, ElementsAre(1, 2));
  EXPECT_EQ(Message(status), "server.toml:5:1: unknown key \"listener[1].extra\"");
}

TEST(ConfigTest, QuotedKeysAppearQuotedInPaths) {
  const absl::Status status =
      ReadText("[federates_with.\"domain.test\"]\nurl = 1\n", [](ConfigTable& root) {
        root.ForEachSubTable("federates_with", [](std::string_view name, ConfigTable& t) {
          EXPECT_EQ(name, "domain.test");
          EXPECT_EQ(t.path(), "federates_with.\"domain.test\"");
        });
      });
  EXPECT_EQ(Message(status),
            R"(server.toml:2:1: unknown key "federates_with.\"domain.test\".url")");
}

TEST(ConfigTest, HasIgnoreAndCustomErrors) {
  const absl::Status status = ReadText(R"(old_setting = 5
mode = "a"
peer = "b"
[retired]
k = 1
[tbl]
)",
                                       [](ConfigTable& root) {
                                         EXPECT_TRUE(root.Has("mode"));
                                         EXPECT_FALSE(root.Has("nope"));
                                         root.Ignore("old_setting");
                                         root.Ignore("retired");  // and everything under it
                                         root.Required<std::string>("mode");
                                         root.Required<std::string>("peer");
                                         root.AddErrorAt("peer", "cannot be used with mode \"a\"");
                                         root.AddErrorAt("absent", "is wrong");
                                         root.AddError("whole-file problem");
                                         ConfigTable t = root.SubTable("tbl");
                                         t.AddError("table problem");
                                       });
  EXPECT_EQ(Message(status),
            "server.toml: absent: is wrong\n"
            "server.toml: whole-file problem\n"
            "server.toml:3:8: peer: cannot be used with mode \"a\"\n"
            "server.toml:6:1: tbl: table problem");
}

TEST(ConfigTest, HasDoesNotCountAsReading) {
  const absl::Status status = ReadText("x = 1\n", [](ConfigTable& root) { root.Has("x"); });
  EXPECT_EQ(Message(status), "server.toml:1:1: unknown key \"x\"");
}

TEST(ConfigTest, EachReadStartsAfresh) {
  absl::StatusOr<ConfigDocument> doc = ConfigDocument::Parse("x = 1\n", "server.toml");
  ASSERT_TRUE(doc.ok());
  EXPECT_TRUE(doc->Read([](ConfigTable& root) { root.Required<int64_t>("x"); }).ok());
  EXPECT_EQ(Message(doc->Read([](ConfigTable&) {})), "server.toml:1:1: unknown key \"x\"");
  EXPECT_EQ(doc->source_name(), "server.toml");
}

TEST(ConfigTest, LoadsFilesAndReportsFileErrors) {
  ServerConfig c;
  const std::string path = std::string(TESSERA_TESTDATA_DIR) + "/config/server.toml";
  std::string datastore_type;
  uint64_t max_size = 0;
  std::vector<std::string> attestors;
  const absl::Status status = ReadConfigFile(path, [&](ConfigTable& root) {
    root.Required<std::string>("trust_domain");
    root.Optional<uint16_t>("bind_port", 8081);
    root.Duration("ca_ttl", std::chrono::hours(1));
    root.StringList("admin_ids");
    ConfigTable ds = root.RequiredSubTable("datastore");
    datastore_type = ds.Required<std::string>("type");
    max_size = ds.Size("max_size", 0);
    root.ForEachSubTable("node_attestor", [&](std::string_view name, ConfigTable& t) {
      attestors.emplace_back(name);
      t.Optional<std::string>("ca_bundle_path", "");
    });
  });
  EXPECT_EQ(Message(status), path + ":16:2: unknown key \"workload_attestor\"");
  EXPECT_EQ(datastore_type, "sqlite");
  EXPECT_EQ(max_size, 10u << 20);
  EXPECT_THAT(attestors, ElementsAre("join_token", "x509pop"));

  const absl::Status missing = ReadConfigFile("/nonexistent/tessera.toml", [](ConfigTable&) {});
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Message(missing), "open config /nonexistent/tessera.toml: No such file or directory");
}

TEST(ConfigTest, RejectsHugeFiles) {
  char path[] = "/tmp/tessera_config_test_XXXXXX";
  const int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  ::close(fd);
  {
    std::ofstream out(path);
    out << "# " << std::string(2 << 20, 'x') << "\n";
  }
  absl::StatusOr<ConfigDocument> doc = ConfigDocument::Load(path);
  ::unlink(path);
  ASSERT_FALSE(doc.ok());
  EXPECT_EQ(doc.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Message(doc.status()),
            std::string(path) + ": config file is larger than 1048576 bytes");
}

}  // namespace
}  // namespace tessera
