// Config files: TOML documents read through typed getters that remember which keys were read,
// so that every key nobody asked for is reported (a misspelt key must never be silently
// ignored), and every error names the file, line and column of the offending text:
//
//   server.toml:7:1: unknown key "bind_prot" (did you mean "bind_port"?)
//   server.toml:3:10: ca_ttl: invalid duration "24hours": unknown unit "hours" (use ns, ...)
//   server.toml: missing required key "trust_domain"
//
// Usage:
//
//   ServerConfig c;
//   RETURN_IF_ERROR(ReadConfigFile(path, [&](ConfigTable& root) {
//     c.trust_domain = root.Required<std::string>("trust_domain", CheckTrustDomain);
//     c.bind_port = root.Optional<uint16_t>("bind_port", 8081);
//     c.ca_ttl = root.Duration("ca_ttl", std::chrono::hours(24));
//     ConfigTable datastore = root.SubTable("datastore");
//     c.datastore_type = datastore.Optional<std::string>("type", "sqlite");
//     root.ForEachSubTable("node_attestor", [&](std::string_view name, ConfigTable& plugin) {
//       // hand `plugin` to the attestor named `name`, which reads its own keys
//     });
//   }));
//
// Getters never fail: a missing, mistyped or invalid value is recorded and the getter returns
// the default (T{} for Required). When the callback returns, Read reports every recorded error
// plus every unread key, sorted by position, one per line, as one InvalidArgument status whose
// message starts with the first error's "file:line:column: ". Since only the collected status
// says whether the values are usable, the check cannot be forgotten: there is no way to read a
// document other than through Read.
//
// Thread-safety: a ConfigDocument is immutable and may be read from several threads at once. A
// ConfigTable belongs to the Read call that produced it: it is neither copyable nor movable, so
// it cannot outlive the callback, and it must stay on that thread.
#pragma once

#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace tessera {

namespace config_internal {
struct ReadState;
// 1-based position in the file; line 0 means "no position" (the file as a whole).
struct Location {
  uint32_t line = 0;
  uint32_t column = 0;
};
}  // namespace config_internal

// The scalar types Required/Optional read. Integers are range-checked against T; double also
// accepts a TOML integer.
template <typename T>
concept ConfigScalar = std::same_as<T, bool> || std::same_as<T, std::string> ||
    std::same_as<T, double> || std::same_as<T, int64_t> || std::same_as<T, int32_t> ||
    std::same_as<T, uint16_t> || std::same_as<T, uint32_t> || std::same_as<T, uint64_t>;

// Checks a value that has the right type (e.g. that a string parses as a trust domain). A
// non-OK result is reported at the value's position as "file:line:col: key: <message>".
template <typename T>
using ConfigValidator = std::function<absl::Status(const T&)>;

// A view of one TOML table during ConfigDocument::Read.
class ConfigTable {
 public:
  ConfigTable(const ConfigTable&) = delete;
  ConfigTable& operator=(const ConfigTable&) = delete;
  ConfigTable(ConfigTable&&) = delete;
  ConfigTable& operator=(ConfigTable&&) = delete;
  ~ConfigTable() = default;

  // The value of `key`; when absent, records "missing required key" and returns T{}.
  template <ConfigScalar T>
  T Required(std::string_view key, const ConfigValidator<T>& validate = nullptr);
  // The value of `key`, or `default_value` (not validated) when absent. T must be spelled out:
  // Optional<uint16_t>("port", 8081).
  template <ConfigScalar T>
  T Optional(std::string_view key, std::type_identity_t<T> default_value,
             const ConfigValidator<T>& validate = nullptr);

  // A duration string (see ParseDuration in common/units.h): "24h", "1h30m", "250ms".
  std::chrono::nanoseconds RequiredDuration(
      std::string_view key, const ConfigValidator<std::chrono::nanoseconds>& validate = nullptr);
  std::chrono::nanoseconds Duration(
      std::string_view key, std::chrono::nanoseconds default_value,
      const ConfigValidator<std::chrono::nanoseconds>& validate = nullptr);

  // A byte count: a non-negative integer, or a string with a unit (ParseByteSize): "10MiB".
  uint64_t RequiredSize(std::string_view key, const ConfigValidator<uint64_t>& validate = nullptr);
  uint64_t Size(std::string_view key, uint64_t default_value,
                const ConfigValidator<uint64_t>& validate = nullptr);

  // An array of strings; empty when absent. `validate` runs on each element, and its errors are
  // reported at that element as "key[i]: <message>".
  std::vector<std::string> StringList(std::string_view key,
                                      const ConfigValidator<std::string>& validate = nullptr);

  // The table at `key`. When absent, an empty view: its getters return defaults and its
  // Required getters report the missing key. A present non-table value is a type error.
  ConfigTable SubTable(std::string_view key);
  // Like SubTable, but absence is an error. It is reported once: Required reads from the
  // returned empty view add no "missing key" errors of their own.
  ConfigTable RequiredSubTable(std::string_view key);
  // Calls `fn` for every entry of the table at `key` (each must itself be a table), in the order
  // they appear in the file: [node_attestor.join_token] gives ("join_token", its table). Absent:
  // no calls. Returns the number of calls.
  size_t ForEachSubTable(std::string_view key,
                         absl::FunctionRef<void(std::string_view name, ConfigTable& table)> fn);
  // Calls `fn` for every table of the array of tables at `key` ([[key]] sections). Absent: no
  // calls. Returns the number of calls.
  size_t ForEachArrayTable(std::string_view key,
                           absl::FunctionRef<void(size_t index, ConfigTable& table)> fn);

  // Whether `key` is present. Does not count as reading it.
  bool Has(std::string_view key) const;
  // Marks `key` (and anything under it) as read without using it, e.g. a retired setting.
  void Ignore(std::string_view key);

  // Records an error at this table's position: "file:line:col: <path>: <message>" (or without
  // the path at the root). For checks spanning keys, or an unknown plugin name.
  void AddError(std::string_view message);
  // Records an error at `key`'s value (or at this table when `key` is absent).
  void AddErrorAt(std::string_view key, std::string_view message);

  // Dotted path of this table from the root ("" for the root, "node_attestor.join_token").
  const std::string& path() const { return path_; }

 private:
  friend class ConfigDocument;
  // `table` is a `const toml::table*`, or null for an absent table; kept opaque so that users
  // of this header do not compile toml++.
  ConfigTable(config_internal::ReadState* state, const void* table, std::string path,
              config_internal::Location location, bool report_missing = true);

  // Finds `key` and marks it read (absent: null, and the key is remembered for hints).
  const void* Take(std::string_view key);
  std::string KeyPath(std::string_view key) const;
  config_internal::Location LocationOf(const void* node) const;
  void Record(config_internal::Location at, std::string text);
  void RecordMissing(std::string_view key, std::string_view what);
  template <typename T>
  bool Convert(const void* node, const std::string& key_path, const ConfigValidator<T>& validate,
               T* out);
  bool ConvertDuration(const void* node, const std::string& key_path,
                       const ConfigValidator<std::chrono::nanoseconds>& validate,
                       std::chrono::nanoseconds* out);
  bool ConvertSize(const void* node, const std::string& key_path,
                   const ConfigValidator<uint64_t>& validate, uint64_t* out);
  ConfigTable Child(const void* node, const std::string& key_path);

  config_internal::ReadState* const state_;
  const void* const table_;
  const std::string path_;
  // Where this table starts; for an absent table, where its nearest present ancestor starts.
  const config_internal::Location location_;
  // False for the stand-in view of a value that is not a table or of a missing required table:
  // that error already says what is wrong, so missing keys inside it are not reported too.
  const bool report_missing_;
};

// A parsed TOML config file.
class ConfigDocument {
 public:
  // Parses `text`; `source_name` is the file name used in messages. A TOML syntax error is
  // InvalidArgument "source_name:line:col: <toml++ description>".
  static absl::StatusOr<ConfigDocument> Parse(std::string_view text, std::string_view source_name);
  // Reads and parses the file at `path` (at most 1 MiB). Errors opening or reading it carry the
  // errno-derived code (NOT_FOUND, PERMISSION_DENIED...).
  static absl::StatusOr<ConfigDocument> Load(const std::string& path);

  ConfigDocument(ConfigDocument&&) noexcept;
  ConfigDocument& operator=(ConfigDocument&&) noexcept;
  ~ConfigDocument();

  // Runs `read` over the root table, then reports (see the file comment) every error it
  // recorded and every key it left unread. Each call starts afresh.
  [[nodiscard]] absl::Status Read(absl::FunctionRef<void(ConfigTable& root)> read) const;

  const std::string& source_name() const;

 private:
  struct Impl;
  explicit ConfigDocument(std::unique_ptr<const Impl> impl);
  std::unique_ptr<const Impl> impl_;
};

// ConfigDocument::Load(path) followed by Read(read).
[[nodiscard]] absl::Status ReadConfigFile(const std::string& path,
                                          absl::FunctionRef<void(ConfigTable& root)> read);

}  // namespace tessera
