// StateStore: what tessera-agent keeps in its data_dir across restarts, so a restarted agent needs
// no new join token: its agent SVID (chain and private key), whether it may re-attest, and the
// trust bundle it last received from the server.
//
// One file, `<data_dir>/agent_state.pem`, mode 0600 in a 0700 directory, written atomically
// (temporary file, fsync, rename, fsync of the directory): after a crash it holds the old state or
// the new one, never a key beside another key's certificate. The format is PEM blocks an operator
// can inspect with openssl: the private key (PKCS#8), the SVID chain (leaf first), then the
// bundle's certificates, each group introduced by a comment line ("# svid", "# bundle") and a
// header line "# tessera-agent state v1 reattestable=<0|1>".
//
// Thread-safety: not synchronized; the agent's attestation manager is its only user.
#pragma once

#include <filesystem>
#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "spiffe/certificate.h"
#include "spiffe/x509_verify.h"

namespace tessera::agent {

struct AgentState {
  spiffe::X509Svid svid;                    // the agent SVID, its chain leaf first, and its key
  std::vector<spiffe::Certificate> bundle;  // X.509 authorities of the agent's trust domain
  bool reattestable = false;
};

class StateStore {
 public:
  explicit StateStore(std::filesystem::path data_dir) : data_dir_(std::move(data_dir)) {}

  // nullopt when there is no state (a fresh agent, or after Clear). A file that exists but does
  // not parse, or whose key does not match its SVID, is DataLoss naming the file: the agent then
  // attests anew if it can, and the operator learns why.
  absl::StatusOr<std::optional<AgentState>> Load() const;
  // Creates data_dir (0700) if missing and replaces the state atomically.
  absl::Status Save(const AgentState& state) const;
  // Forgets the state (after an eviction); absent state is not an error.
  absl::Status Clear() const;

  std::filesystem::path path() const { return data_dir_ / "agent_state.pem"; }

 private:
  std::filesystem::path data_dir_;
};

}  // namespace tessera::agent
