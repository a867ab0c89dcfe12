// ConfigDocument (declared in config.h): parsing, loading, and the checks that run after the
// read callback. The getters are in config.cc.
#include <fcntl.h>
#include <toml++/toml.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <exception>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/config.h"
#include "common/config_internal.h"
#include "common/status.h"
#include "common/strings.h"
#include "common/text.h"
#include "common/unique_fd.h"

namespace tessera {
namespace {

using config_internal::JoinPath;
using config_internal::Location;
using config_internal::ReadState;

constexpr size_t kMaxConfigFileSize = 1 << 20;

// Optimal string alignment distance: edits, counting a swap of neighbours as one (the usual
// typo in "bind_prot").
size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.size()][b.size()];
}

// The requested key closest to `unknown` that is absent from `table`, if close enough to be a
// likely misspelling.
std::string SuggestKey(const ReadState& state, const toml::table& table, std::string_view unknown) {
  const auto it = state.requested.find(&table);
  if (it == state.requested.end() || unknown.size() > 64) return "";
  std::string best;
  size_t best_distance = 3;  // suggest only within two edits
  for (const std::string& candidate : it->second) {
    if (table.contains(candidate) || candidate.size() > 64) continue;
    const size_t distance = EditDistance(unknown, candidate);
    if (distance < best_distance && distance < unknown.size()) {
      best = candidate;
      best_distance = distance;
    }
  }
  return best;
}

// Records every key under `table` that no getter read, descending into the tables that were
// opened as ConfigTables.
void CheckUnknownKeys(ReadState& state, const toml::table& table, const std::string& path) {
  for (auto&& [key, node] : table) {
    const std::string key_path = JoinPath(path, key.str());
    if (!state.read.contains(&node)) {
      std::string text = absl::StrCat("unknown key ", Quoted(key_path));
      if (std::string hint = SuggestKey(state, table, key.str()); !hint.empty()) {
        absl::StrAppend(&text, " (did you mean ", Quoted(hint), "?)");
      }
      const toml::source_position& at = key.source().begin;
      state.errors.push_back({Location{at.line, at.column}, std::move(text)});
      continue;
    }
    if (const toml::table* sub = node.as_table(); sub != nullptr && state.entered.contains(sub)) {
      CheckUnknownKeys(state, *sub, key_path);
    } else if (const toml::array* array = node.as_array(); array != nullptr) {
      for (size_t i = 0; i < array->size(); ++i) {
        const toml::table* element = (*array)[i].as_table();
        if (element != nullptr && state.entered.contains(element)) {
          CheckUnknownKeys(state, *element, absl::StrCat(key_path, "[", i, "]"));
        }
      }
    }
  }
}

absl::Status CollectErrors(ReadState& state) {
  if (state.errors.empty()) return absl::OkStatus();
  std::stable_sort(state.errors.begin(), state.errors.end(),
                   [](const ReadState::Error& a, const ReadState::Error& b) {
                     return std::pair(a.at.line, a.at.column) < std::pair(b.at.line, b.at.column);
                   });
  std::vector<std::string> lines;
  lines.reserve(state.errors.size());
  for (const ReadState::Error& e : state.errors) {
    if (e.at.line == 0) {
      lines.push_back(absl::StrCat(AsAbsl(state.source), ": ", e.text));
    } else {
      lines.push_back(
          absl::StrCat(AsAbsl(state.source), ":", e.at.line, ":", e.at.column, ": ", e.text));
    }
  }
  return absl::InvalidArgumentError(absl::StrJoin(lines, "\n"));
}

}  // namespace

struct ConfigDocument::Impl {
  std::string source_name;
  toml::table table;
};

ConfigDocument::ConfigDocument(std::unique_ptr<const Impl> impl) : impl_(std::move(impl)) {}
ConfigDocument::ConfigDocument(ConfigDocument&&) noexcept = default;
ConfigDocument& ConfigDocument::operator=(ConfigDocument&&) noexcept = default;
ConfigDocument::~ConfigDocument() = default;

const std::string& ConfigDocument::source_name() const { return impl_->source_name; }

absl::StatusOr<ConfigDocument> ConfigDocument::Parse(std::string_view text,
                                                     std::string_view source_name) {
  auto impl = std::make_unique<Impl>();
  impl->source_name = std::string(source_name);
  try {
    impl->table = toml::parse(text, std::string_view(source_name));
  } catch (const toml::parse_error& e) {
    std::string description(e.description());
    if (!description.empty() && description[0] >= 'A' && description[0] <= 'Z') {
      description[0] = static_cast<char>(description[0] - 'A' + 'a');
    }
    const toml::source_position& at = e.source().begin;
    return absl::InvalidArgumentError(
        absl::StrCat(AsAbsl(source_name), ":", at.line, ":", at.column, ": ", description));
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(AsAbsl(source_name), ": cannot parse: ", e.what()));
  }
  return ConfigDocument(std::move(impl));
}

absl::StatusOr<ConfigDocument> ConfigDocument::Load(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (!fd) return absl::ErrnoToStatus(errno, absl::StrCat("open config ", path));
  // Read to EOF rather than trusting st_size, so a pipe (--config <(...)) works too.
  std::string text;
  char buffer[16384];
  while (true) {
    const ssize_t n = ::read(fd.get(), buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return absl::ErrnoToStatus(errno, absl::StrCat("read config ", path));
    if (n == 0) break;
    text.append(buffer, static_cast<size_t>(n));
    if (text.size() > kMaxConfigFileSize) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": config file is larger than ", kMaxConfigFileSize, " bytes"));
    }
  }
  return Parse(text, path);
}

absl::Status ConfigDocument::Read(absl::FunctionRef<void(ConfigTable& root)> read) const {
  ReadState state;
  state.source = impl_->source_name;
  state.entered.insert(&impl_->table);
  // The root's "position" is the file itself: "server.toml: missing required key ...".
  ConfigTable root(&state, &impl_->table, "", Location{});
  read(root);
  CheckUnknownKeys(state, impl_->table, "");
  return CollectErrors(state);
}

absl::Status ReadConfigFile(const std::string& path,
                            absl::FunctionRef<void(ConfigTable& root)> read) {
  ASSIGN_OR_RETURN(ConfigDocument document, ConfigDocument::Load(path));
  return document.Read(read);
}

}  // namespace tessera
