#include "common/config.h"

#include <toml++/toml.h>

#include <algorithm>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/config_internal.h"
#include "common/strings.h"
#include "common/text.h"
#include "common/units.h"

namespace tessera {

namespace config_internal {

Location LocationOfNode(const toml::node& node) {
  const toml::source_position& begin = node.source().begin;
  return Location{begin.line, begin.column};
}

std::string JoinPath(std::string_view path, std::string_view key) {
  const bool bare = !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  });
  std::string formatted = bare ? std::string(key) : Quoted(key, 64);
  if (path.empty()) return formatted;
  return absl::StrCat(AsAbsl(path), ".", formatted);
}

}  // namespace config_internal

namespace {

using config_internal::JoinPath;
using config_internal::Location;
using config_internal::LocationOfNode;

const toml::node* AsNode(const void* p) { return static_cast<const toml::node*>(p); }

std::string_view TypeName(toml::node_type type) {
  switch (type) {
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a float";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a date-time";
    case toml::node_type::none:
      break;
  }
  return "nothing";
}

}  // namespace

// ---- ConfigTable ----

ConfigTable::ConfigTable(config_internal::ReadState* state, const void* table, std::string path,
                         config_internal::Location location, bool report_missing)
    : state_(state),
      table_(table),
      path_(std::move(path)),
      location_(location),
      report_missing_(report_missing) {}

const void* ConfigTable::Take(std::string_view key) {
  if (table_ == nullptr) return nullptr;
  const auto* table = static_cast<const toml::table*>(table_);
  state_->requested[table].emplace_back(key);
  const toml::node* node = table->get(key);
  if (node != nullptr) state_->read.insert(node);
  return node;
}

std::string ConfigTable::KeyPath(std::string_view key) const { return JoinPath(path_, key); }

config_internal::Location ConfigTable::LocationOf(const void* node) const {
  return node == nullptr ? location_ : LocationOfNode(*AsNode(node));
}

void ConfigTable::Record(config_internal::Location at, std::string text) {
  state_->errors.push_back({at, std::move(text)});
}

void ConfigTable::RecordMissing(std::string_view key, std::string_view what) {
  if (!report_missing_) return;
  Record(location_, absl::StrCat("missing required ", AsAbsl(what), " ", Quoted(KeyPath(key))));
}

template <typename T>
bool ConfigTable::Convert(const void* opaque, const std::string& key_path,
                          const ConfigValidator<T>& validate, T* out) {
  const toml::node& node = *AsNode(opaque);
  const auto type_error = [&](std::string_view expected) {
    Record(LocationOfNode(node), absl::StrCat(key_path, ": expected ", AsAbsl(expected), ", got ",
                                              AsAbsl(TypeName(node.type()))));
    return false;
  };
  T value{};
  if constexpr (std::is_same_v<T, std::string>) {
    const auto* v = node.as_string();
    if (v == nullptr) return type_error("a string");
    value = v->get();
  } else if constexpr (std::is_same_v<T, bool>) {
    const auto* v = node.as_boolean();
    if (v == nullptr) return type_error("a boolean");
    value = v->get();
  } else if constexpr (std::is_same_v<T, double>) {
    if (const auto* f = node.as_floating_point(); f != nullptr) {
      value = f->get();
    } else if (const auto* i = node.as_integer(); i != nullptr) {
      value = static_cast<double>(i->get());
    } else {
      return type_error("a number");
    }
  } else {
    const auto* v = node.as_integer();
    if (v == nullptr) return type_error("an integer");
    const int64_t raw = v->get();
    if (!std::in_range<T>(raw)) {
      Record(LocationOfNode(node),
             absl::StrCat(key_path, ": value ", raw, " is out of range [",
                          std::numeric_limits<T>::min(), ", ", std::numeric_limits<T>::max(), "]"));
      return false;
    }
    value = static_cast<T>(raw);
  }
  if (validate) {
    if (absl::Status status = validate(value); !status.ok()) {
      Record(LocationOfNode(node), absl::StrCat(key_path, ": ", status.message()));
      return false;
    }
  }
  *out = std::move(value);
  return true;
}

template <ConfigScalar T>
T ConfigTable::Required(std::string_view key, const ConfigValidator<T>& validate) {
  T value{};
  const void* node = Take(key);
  if (node == nullptr) {
    RecordMissing(key, "key");
  } else {
    Convert(node, KeyPath(key), validate, &value);
  }
  return value;
}

template <ConfigScalar T>
T ConfigTable::Optional(std::string_view key, std::type_identity_t<T> default_value,
                        const ConfigValidator<T>& validate) {
  T value{};
  const void* node = Take(key);
  if (node != nullptr && Convert(node, KeyPath(key), validate, &value)) return value;
  return default_value;
}

#define TESSERA_CONFIG_INSTANTIATE(T)                                               \
  template T ConfigTable::Required<T>(std::string_view, const ConfigValidator<T>&); \
  template T ConfigTable::Optional<T>(std::string_view, std::type_identity_t<T>,    \
                                      const ConfigValidator<T>&);
TESSERA_CONFIG_INSTANTIATE(bool)
TESSERA_CONFIG_INSTANTIATE(std::string)
TESSERA_CONFIG_INSTANTIATE(double)
TESSERA_CONFIG_INSTANTIATE(int64_t)
TESSERA_CONFIG_INSTANTIATE(int32_t)
TESSERA_CONFIG_INSTANTIATE(uint16_t)
TESSERA_CONFIG_INSTANTIATE(uint32_t)
TESSERA_CONFIG_INSTANTIATE(uint64_t)
#undef TESSERA_CONFIG_INSTANTIATE

bool ConfigTable::ConvertDuration(const void* opaque, const std::string& key_path,
                                  const ConfigValidator<std::chrono::nanoseconds>& validate,
                                  std::chrono::nanoseconds* out) {
  const toml::node& node = *AsNode(opaque);
  const auto* text = node.as_string();
  if (text == nullptr) {
    Record(LocationOfNode(node),
           absl::StrCat(key_path, ": expected a duration string such as \"1h30m\", got ",
                        AsAbsl(TypeName(node.type()))));
    return false;
  }
  absl::StatusOr<std::chrono::nanoseconds> value = ParseDuration(text->get());
  absl::Status status = value.status();
  if (status.ok() && validate) status = validate(*value);
  if (!status.ok()) {
    Record(LocationOfNode(node), absl::StrCat(key_path, ": ", status.message()));
    return false;
  }
  *out = *value;
  return true;
}

std::chrono::nanoseconds ConfigTable::RequiredDuration(
    std::string_view key, const ConfigValidator<std::chrono::nanoseconds>& validate) {
  std::chrono::nanoseconds value{0};
  const void* node = Take(key);
  if (node == nullptr) {
    RecordMissing(key, "key");
  } else {
    ConvertDuration(node, KeyPath(key), validate, &value);
  }
  return value;
}

std::chrono::nanoseconds ConfigTable::Duration(
    std::string_view key, std::chrono::nanoseconds default_value,
    const ConfigValidator<std::chrono::nanoseconds>& validate) {
  std::chrono::nanoseconds value{0};
  const void* node = Take(key);
  if (node != nullptr && ConvertDuration(node, KeyPath(key), validate, &value)) return value;
  return default_value;
}

bool ConfigTable::ConvertSize(const void* opaque, const std::string& key_path,
                              const ConfigValidator<uint64_t>& validate, uint64_t* out) {
  const toml::node& node = *AsNode(opaque);
  absl::StatusOr<uint64_t> value;
  if (const auto* text = node.as_string(); text != nullptr) {
    value = ParseByteSize(text->get());
  } else if (const auto* number = node.as_integer(); number != nullptr) {
    if (number->get() < 0) {
      value = absl::InvalidArgumentError("negative sizes are not allowed");
    } else {
      value = static_cast<uint64_t>(number->get());
    }
  } else {
    Record(LocationOfNode(node),
           absl::StrCat(key_path, ": expected a size (an integer or a string such as \"10MiB\"), ",
                        "got ", AsAbsl(TypeName(node.type()))));
    return false;
  }
  absl::Status status = value.status();
  if (status.ok() && validate) status = validate(*value);
  if (!status.ok()) {
    Record(LocationOfNode(node), absl::StrCat(key_path, ": ", status.message()));
    return false;
  }
  *out = *value;
  return true;
}

uint64_t ConfigTable::RequiredSize(std::string_view key,
                                   const ConfigValidator<uint64_t>& validate) {
  uint64_t value = 0;
  const void* node = Take(key);
  if (node == nullptr) {
    RecordMissing(key, "key");
  } else {
    ConvertSize(node, KeyPath(key), validate, &value);
  }
  return value;
}

uint64_t ConfigTable::Size(std::string_view key, uint64_t default_value,
                           const ConfigValidator<uint64_t>& validate) {
  uint64_t value = 0;
  const void* node = Take(key);
  if (node != nullptr && ConvertSize(node, KeyPath(key), validate, &value)) return value;
  return default_value;
}

std::vector<std::string> ConfigTable::StringList(std::string_view key,
                                                 const ConfigValidator<std::string>& validate) {
  std::vector<std::string> values;
  const void* opaque = Take(key);
  if (opaque == nullptr) return values;
  const toml::node& node = *AsNode(opaque);
  const std::string key_path = KeyPath(key);
  const toml::array* array = node.as_array();
  if (array == nullptr) {
    Record(LocationOfNode(node), absl::StrCat(key_path, ": expected an array of strings, got ",
                                              AsAbsl(TypeName(node.type()))));
    return values;
  }
  values.reserve(array->size());
  for (size_t i = 0; i < array->size(); ++i) {
    std::string value;
    if (Convert(&(*array)[i], absl::StrCat(key_path, "[", i, "]"), validate, &value)) {
      values.push_back(std::move(value));
    }
  }
  return values;
}

ConfigTable ConfigTable::Child(const void* opaque, const std::string& key_path) {
  const toml::node& node = *AsNode(opaque);
  const toml::table* table = node.as_table();
  if (table == nullptr) {
    Record(LocationOfNode(node),
           absl::StrCat(key_path, ": expected a table, got ", AsAbsl(TypeName(node.type()))));
    return ConfigTable(state_, nullptr, key_path, LocationOfNode(node), /*report_missing=*/false);
  }
  state_->entered.insert(table);
  return ConfigTable(state_, table, key_path, LocationOfNode(node));
}

ConfigTable ConfigTable::SubTable(std::string_view key) {
  const void* node = Take(key);
  if (node == nullptr)
    return ConfigTable(state_, nullptr, KeyPath(key), location_, report_missing_);
  return Child(node, KeyPath(key));
}

ConfigTable ConfigTable::RequiredSubTable(std::string_view key) {
  const void* node = Take(key);
  if (node == nullptr) {
    RecordMissing(key, "table");
    return ConfigTable(state_, nullptr, KeyPath(key), location_, /*report_missing=*/false);
  }
  return Child(node, KeyPath(key));
}

size_t ConfigTable::ForEachSubTable(
    std::string_view key, absl::FunctionRef<void(std::string_view name, ConfigTable& table)> fn) {
  const void* node = Take(key);
  if (node == nullptr) return 0;
  ConfigTable parent = Child(node, KeyPath(key));
  if (parent.table_ == nullptr) return 0;
  const auto* table = static_cast<const toml::table*>(parent.table_);
  // toml::table iterates in key order; plugins run in the order the operator wrote them.
  std::vector<std::pair<const toml::key*, const toml::node*>> children;
  for (auto&& [child_key, child] : *table) children.emplace_back(&child_key, &child);
  std::sort(children.begin(), children.end(), [](const auto& a, const auto& b) {
    const Location la = LocationOfNode(*a.second);
    const Location lb = LocationOfNode(*b.second);
    return std::pair(la.line, la.column) < std::pair(lb.line, lb.column);
  });
  size_t calls = 0;
  for (const auto& [child_key, child] : children) {
    state_->read.insert(child);
    ConfigTable sub = parent.Child(child, parent.KeyPath(child_key->str()));
    if (sub.table_ == nullptr) continue;
    fn(child_key->str(), sub);
    ++calls;
  }
  return calls;
}

size_t ConfigTable::ForEachArrayTable(
    std::string_view key, absl::FunctionRef<void(size_t index, ConfigTable& table)> fn) {
  const void* opaque = Take(key);
  if (opaque == nullptr) return 0;
  const toml::node& node = *AsNode(opaque);
  const std::string key_path = KeyPath(key);
  const toml::array* array = node.as_array();
  if (array == nullptr) {
    Record(LocationOfNode(node), absl::StrCat(key_path, ": expected an array of tables, got ",
                                              AsAbsl(TypeName(node.type()))));
    return 0;
  }
  size_t calls = 0;
  for (size_t i = 0; i < array->size(); ++i) {
    ConfigTable element = Child(&(*array)[i], absl::StrCat(key_path, "[", i, "]"));
    if (element.table_ == nullptr) continue;
    fn(i, element);
    ++calls;
  }
  return calls;
}

bool ConfigTable::Has(std::string_view key) const {
  return table_ != nullptr && static_cast<const toml::table*>(table_)->contains(key);
}

void ConfigTable::Ignore(std::string_view key) { Take(key); }

void ConfigTable::AddError(std::string_view message) {
  Record(location_,
         path_.empty() ? std::string(message) : absl::StrCat(path_, ": ", AsAbsl(message)));
}

void ConfigTable::AddErrorAt(std::string_view key, std::string_view message) {
  const toml::node* node =
      table_ == nullptr ? nullptr : static_cast<const toml::table*>(table_)->get(key);
  Record(LocationOf(node), absl::StrCat(KeyPath(key), ": ", AsAbsl(message)));
}

}  // namespace tessera
