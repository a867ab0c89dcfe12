// What the server API services share: the trust domain, the registry, the authorized-entry
// index, the authorizer, the clock, where changes are announced (the push stream to agents)
// and the CA that signs SVIDs. The composition root owns every member and outlives the services.
// Everything here is safe for concurrent use from gRPC threads.
#pragma once

#include "common/clock.h"
#include "server/api/authorizer.h"
#include "server/authorized/entry_index.h"
#include "server/ca/ca_manager.h"
#include "server/datastore/datastore.h"
#include "spiffe/id.h"

namespace tessera::server {

// Receives every change agents must hear about. Calls must not block (they run on gRPC
// threads, after the datastore write succeeded).
class ChangeNotifier {
 public:
  virtual ~ChangeNotifier() = default;
  // These agents' authorized entries changed (as EntryIndex reports it).
  virtual void EntriesChanged(const EntryIndex::AffectedAgents& agents) = 0;
  // The own or a federated bundle changed: every agent should fetch bundles.
  virtual void BundleChanged() = 0;
  // The agent was banned or deleted: nothing it holds open may go on (its push streams end
  // with PermissionDenied, after a last hint to sync).
  virtual void AgentRemoved(const spiffe::SpiffeId& agent) = 0;
};

struct ServiceDeps {
  spiffe::TrustDomain trust_domain;
  DataStore* datastore = nullptr;
  EntryIndex* index = nullptr;
  const Authorizer* authorizer = nullptr;
  ChangeNotifier* notifier = nullptr;
  const Clock* clock = nullptr;
  const ca::CaManager* ca = nullptr;
};

}  // namespace tessera::server
