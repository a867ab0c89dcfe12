// UpstreamAuthority: a CA above ours. When one is configured, each X.509 CA the server prepares
// is an intermediate signed by it, and the trust domain's bundle publishes the upstream's roots
// instead of our CA certificates.
//
// DiskUpstreamAuthority reads a certificate chain and its key from PEM files, re-reading them
// for every CA it signs so that an operator can replace them without a restart. Safe for
// concurrent use (it keeps no state between calls).
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "server/ca/config.h"
#include "spiffe/certificate.h"
#include "spiffe/x509_svid.h"

namespace tessera::server::ca {

struct UpstreamSignedCa {
  // Our new CA certificate first, then the upstream certificates that every X509-SVID chain
  // carries after it: the upstream chain up to, not including, the first certificate that is
  // one of `roots`.
  std::vector<spiffe::Certificate> chain;
  // The trust anchors the chain leads to, for the trust domain's bundle.
  std::vector<spiffe::Certificate> roots;
};

class UpstreamAuthority {
 public:
  virtual ~UpstreamAuthority() = default;
  // Signs `tmpl` as an intermediate CA. Its not_after is cut at the upstream certificate's.
  virtual absl::StatusOr<UpstreamSignedCa> SignIntermediate(const spiffe::CaTemplate& tmpl) = 0;
};

class DiskUpstreamAuthority final : public UpstreamAuthority {
 public:
  explicit DiskUpstreamAuthority(DiskUpstreamConfig config) : config_(std::move(config)) {}

  // Errors (FailedPrecondition unless a file cannot be read) name the file and the problem:
  // unreadable or empty files, a key that does not match the first certificate, a first
  // certificate that is not a CA, a chain whose certificates do not sign each other in order, a
  // chain that does not end at (or under) a bundle root.
  absl::StatusOr<UpstreamSignedCa> SignIntermediate(const spiffe::CaTemplate& tmpl) override;

  // Loads and checks the files without signing anything (for `validate` and start-up).
  absl::Status Check() const;

 private:
  struct Loaded {
    std::vector<spiffe::Certificate> chain;
    spiffe::PrivateKey key;
    std::vector<spiffe::Certificate> roots;
  };
  absl::StatusOr<Loaded> Load() const;

  // Set at construction, never changed.
  const DiskUpstreamConfig config_;
};

}  // namespace tessera::server::ca
