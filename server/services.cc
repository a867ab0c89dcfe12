#include "server/services.h"

#include "absl/strings/str_cat.h"
#include "attestors/x509pop/x509pop.h"
#include "common/status.h"

namespace tessera::server {
namespace {

// Until the push service is wired, changes are not announced (agents poll).
class NoNotifier final : public ChangeNotifier {
 public:
  void EntriesChanged(const EntryIndex::AffectedAgents&) override {}
  void BundleChanged() override {}
};

NoNotifier no_notifier;

}  // namespace

Services::Services(ServiceDeps deps, const ServerConfig& config)
    : deps_(std::move(deps)), config_(config) {}

Services::~Services() = default;

absl::Status Services::Init() {
  AgentServiceOptions agent_options;
  agent_options.join_token_enabled = config_.join_token_enabled;
  if (config_.x509pop.has_value()) {
    attestors::x509pop::ServerConfig x509pop;
    for (const auto& path : config_.x509pop->ca_bundle_paths) {
      x509pop.ca_bundle_paths.push_back(path.string());
    }
    x509pop.max_intermediates = config_.x509pop->max_intermediates;
    auto attestor = attestors::x509pop::NewServerAttestor(x509pop, *deps_.clock);
    if (!attestor.ok()) {
      return absl::Status(attestor.status().code(),
                          absl::StrCat("node_attestor.x509pop: ", attestor.status().message()));
    }
    node_attestors_.push_back(*std::move(attestor));
  }
  for (const auto& attestor : node_attestors_) {
    agent_options.node_attestors.emplace(std::string(attestor->type()), attestor.get());
  }
  entry_ = std::make_unique<EntryService>(deps_);
  bundle_ = std::make_unique<BundleService>(deps_);
  agent_ = std::make_unique<AgentService>(deps_, std::move(agent_options));
  svid_ = std::make_unique<SvidService>(deps_);
  return absl::OkStatus();
}

void Services::Register(grpc::ServerBuilder& builder) {
  builder.RegisterService(entry_.get());
  builder.RegisterService(bundle_.get());
  builder.RegisterService(agent_.get());
  builder.RegisterService(svid_.get());
}

void Services::BeginShutdown() {}

ChangeNotifier& Services::notifier() { return no_notifier; }

}  // namespace tessera::server
