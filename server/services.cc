#include "server/services.h"

#include "absl/strings/str_cat.h"
#include "attestors/x509pop/x509pop.h"
#include "common/status.h"

namespace tessera::server {

Services::Services(ServiceDeps deps, const ServerConfig& config,
                   std::function<uint64_t()> bundle_sequence)
    : deps_(std::move(deps)),
      config_(config),
      push_(std::make_unique<PushService>(*deps_.authorizer, std::move(bundle_sequence))) {}

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
  // Without push, Watch is UNIMPLEMENTED (as on a SPIRE server): agents poll. The service still
  // receives the announcements, for no stream.
  if (config_.push_notifications) builder.RegisterService(push_.get());
}

void Services::BeginShutdown() { push_->Shutdown(); }

ChangeNotifier& Services::notifier() { return *push_; }

}  // namespace tessera::server
