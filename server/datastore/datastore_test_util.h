// Test-only helpers for the datastore tests: a fixture that opens a SqliteDataStore on a real
// file in a fresh temporary directory, and builders for records. Not thread-safe beyond what
// each test does with the store itself.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "gtest/gtest.h"
#include "server/datastore/sqlite.h"
#include "server/datastore/sqlite_datastore.h"
#include "spiffe/x509_test_util.h"  // ASSERT_OK_AND_ASSIGN

namespace tessera::server::testing {

inline spiffe::SpiffeId Id(std::string_view text) { return *spiffe::SpiffeId::Parse(text); }
inline spiffe::TrustDomain Td(std::string_view name) { return *spiffe::TrustDomain::Parse(name); }
inline spiffe::SelectorSet Selectors(std::initializer_list<std::string_view> texts) {
  return *spiffe::SelectorSet::Parse(texts);
}

inline Entry MakeEntry(std::string_view spiffe_id, std::string_view parent_id,
                       std::initializer_list<std::string_view> selectors) {
  return Entry{.id = "",
               .spiffe_id = Id(spiffe_id),
               .parent_id = Id(parent_id),
               .selectors = Selectors(selectors),
               .x509_svid_ttl = 0,
               .jwt_svid_ttl = 0,
               .dns_names = {},
               .federates_with = {},
               .admin = false,
               .downstream = false,
               .store_svid = false,
               .hint = "",
               .expires_at = 0,
               .revision_number = 0,
               .created_at = 0,
               .jwt_svid_include_jti = false,
               .disable_x509_svid_prefetch = false};
}

inline AttestedNode MakeNode(std::string_view id, std::string_view serial = "1234") {
  return AttestedNode{.id = Id(id),
                      .attestation_type = "join_token",
                      .cert_serial = std::string(serial),
                      .cert_not_after = 1'800'003'600,
                      .new_cert_serial = "",
                      .new_cert_not_after = 0,
                      .can_reattest = false,
                      .agent_version = "",
                      .selectors = {}};
}

inline Bundle MakeBundle(std::string_view td,
                         std::initializer_list<std::string_view> ders = {"der"},
                         uint64_t sequence = 1) {
  Bundle bundle;
  bundle.set_trust_domain(std::string(td));
  for (std::string_view der : ders) bundle.add_x509_authorities()->set_asn1(std::string(der));
  bundle.set_sequence_number(sequence);
  return bundle;
}

class DataStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "tessera-ds-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    Reopen();
  }
  void TearDown() override {
    store_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  // Closes the store (if open) and opens the same file again.
  void Reopen() {
    store_.reset();
    ASSERT_OK_AND_ASSIGN(store_, SqliteDataStore::Open(db_path(), clock_));
  }
  // The database file: in a subdirectory the store creates itself.
  std::filesystem::path db_path() const { return dir_ / "data" / "datastore.sqlite3"; }
  // A second, raw connection to the same file, for planting faults and checking rows.
  sqlite::Database Raw() {
    auto db = sqlite::Database::Open(db_path());
    EXPECT_TRUE(db.ok()) << db.status();
    EXPECT_TRUE(db->Exec("PRAGMA busy_timeout = 5000").ok());
    return std::move(db).value();
  }
  int64_t RawCount(std::string_view sql) {
    sqlite::Database db = Raw();
    auto n = db.QueryInt(sql);
    EXPECT_TRUE(n.ok()) << n.status();
    return n.value_or(-1);
  }

  std::filesystem::path dir_;
  FakeClock clock_;
  std::unique_ptr<SqliteDataStore> store_;
};

}  // namespace tessera::server::testing
