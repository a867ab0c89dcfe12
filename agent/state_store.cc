#include "agent/state_store.h"

#include <sys/stat.h>

#include <string>
#include <string_view>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/status.h"
#include "common/strings.h"

namespace tessera::agent {
namespace {

constexpr std::string_view kHeader = "# tessera-agent state v1 reattestable=";
constexpr std::string_view kSvidMarker = "# svid\n";
constexpr std::string_view kBundleMarker = "# bundle\n";
// Far above any real chain and bundle; a larger file is not ours.
constexpr size_t kMaxStateBytes = 1 << 20;

absl::Status Corrupt(const std::filesystem::path& path, std::string_view why) {
  return absl::DataLossError(absl::StrCat("agent state ", path.string(), ": ", AsAbsl(why)));
}

}  // namespace

absl::Status StateStore::Save(const AgentState& state) const {
  if (state.svid.chain.empty()) return absl::InvalidArgumentError("agent state: empty SVID chain");
  if (state.bundle.empty()) return absl::InvalidArgumentError("agent state: empty bundle");
  std::error_code ec;
  std::filesystem::create_directories(data_dir_.parent_path(), ec);
  RETURN_IF_ERROR(MakePrivateDirectory(data_dir_));
  ASSIGN_OR_RETURN(std::string key_pem, state.svid.key.ToPkcs8Pem());
  std::string text = absl::StrCat(AsAbsl(kHeader), state.reattestable ? "1" : "0", "\n", key_pem,
                                  AsAbsl(kSvidMarker), spiffe::ChainToPem(state.svid.chain),
                                  AsAbsl(kBundleMarker), spiffe::ChainToPem(state.bundle));
  return WriteFileAtomically(path(), text, 0600);
}

absl::StatusOr<std::optional<AgentState>> StateStore::Load() const {
  std::error_code ec;
  if (!std::filesystem::exists(path(), ec)) return std::nullopt;
  ASSIGN_OR_RETURN(std::string text, ReadFileToString(path(), kMaxStateBytes));
  std::string_view rest = text;
  if (!rest.starts_with(kHeader)) return Corrupt(path(), "missing header line");
  rest.remove_prefix(kHeader.size());
  if (rest.size() < 2 || (rest[0] != '0' && rest[0] != '1') || rest[1] != '\n') {
    return Corrupt(path(), "malformed header line");
  }
  const bool reattestable = rest[0] == '1';
  rest.remove_prefix(2);
  size_t svid_at = rest.find(kSvidMarker);
  size_t bundle_at = rest.find(kBundleMarker);
  if (svid_at == std::string_view::npos || bundle_at == std::string_view::npos ||
      bundle_at < svid_at) {
    return Corrupt(path(), "missing svid or bundle section");
  }
  std::string_view key_pem = rest.substr(0, svid_at);
  std::string_view chain_pem =
      rest.substr(svid_at + kSvidMarker.size(), bundle_at - svid_at - kSvidMarker.size());
  std::string_view bundle_pem = rest.substr(bundle_at + kBundleMarker.size());
  auto svid = spiffe::ParseX509SvidPem(chain_pem, key_pem);
  if (!svid.ok()) return Corrupt(path(), AsStd(svid.status().message()));
  auto bundle = spiffe::ParsePemChain(bundle_pem);
  if (!bundle.ok()) return Corrupt(path(), AsStd(bundle.status().message()));
  return AgentState{
      .svid = *std::move(svid), .bundle = *std::move(bundle), .reattestable = reattestable};
}

absl::Status StateStore::Clear() const {
  std::error_code ec;
  std::filesystem::remove(path(), ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("agent state: remove ", path().string(), ": ", ec.message()));
  }
  return FsyncDirectory(data_dir_);
}

}  // namespace tessera::agent
