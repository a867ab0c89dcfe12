#include "server/services.h"

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
  entry_ = std::make_unique<EntryService>(deps_);
  bundle_ = std::make_unique<BundleService>(deps_);
  return absl::OkStatus();
}

void Services::Register(grpc::ServerBuilder& builder) {
  builder.RegisterService(entry_.get());
  builder.RegisterService(bundle_.get());
}

void Services::BeginShutdown() {}

ChangeNotifier& Services::notifier() { return no_notifier; }

}  // namespace tessera::server
