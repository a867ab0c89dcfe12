// CaConfig: what the server's certificate authority is told by the config file. A plain value
// filled by the server's config loader and validated once with ValidateCaConfig; immutable
// afterwards, so it may be shared between threads.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "spiffe/id.h"
#include "spiffe/key.h"
#include "spiffe/x509_svid.h"

namespace tessera::server::ca {

// `[upstream_authority.disk]`: our X.509 CA becomes an intermediate signed by this CA.
struct DiskUpstreamConfig {
  // PEM: the upstream CA certificate first, then its chain towards the root (which may be
  // included or not).
  std::string cert_file_path;
  // PEM private key of the first certificate of cert_file_path.
  std::string key_file_path;
  // Optional PEM bundle of upstream roots. When empty, the last certificate of cert_file_path is
  // the root the trust domain's bundle publishes.
  std::string bundle_file_path;
};

struct CaConfig {
  spiffe::TrustDomain trust_domain;
  // Key type of the X.509 CAs (`ca_key_type`).
  spiffe::KeyType key_type = spiffe::KeyType::kEcP256;
  // Key type of the JWT signing keys; nullopt: key_type.
  std::optional<spiffe::KeyType> jwt_key_type;
  // Subject of our CA certificates.
  spiffe::DistinguishedName ca_subject = spiffe::DefaultCaSubject();
  // Lifetime of each X.509 CA (`ca_ttl`).
  std::chrono::seconds ca_ttl = std::chrono::hours(24);
  // Lifetime of each JWT signing key; 0: ca_ttl.
  std::chrono::seconds jwt_key_ttl{0};
  std::chrono::seconds default_x509_svid_ttl = std::chrono::hours(1);
  std::chrono::seconds default_jwt_svid_ttl = std::chrono::minutes(5);
  // Agent SVID lifetime (`agent_ttl`); 0: default_x509_svid_ttl.
  std::chrono::seconds agent_ttl{0};
  // "iss" claim of every JWT-SVID; empty: no "iss".
  std::string jwt_issuer;
  std::optional<DiskUpstreamConfig> upstream;

  spiffe::KeyType EffectiveJwtKeyType() const { return jwt_key_type.value_or(key_type); }
  std::chrono::seconds EffectiveJwtKeyTtl() const {
    return jwt_key_ttl.count() > 0 ? jwt_key_ttl : ca_ttl;
  }
  std::chrono::seconds EffectiveAgentTtl() const {
    return agent_ttl.count() > 0 ? agent_ttl : default_x509_svid_ttl;
  }
};

// Longest CA or key lifetime accepted: long enough for any sane deployment, short enough that
// time arithmetic can never overflow.
inline constexpr std::chrono::seconds kMaxCaTtl = std::chrono::hours(24 * 365 * 10);

// InvalidArgument `ca config: ...` for a negative, zero (where 0 is not "default") or absurd TTL,
// or an upstream section missing a file. SVID TTLs longer than a CA's remaining life are not an
// error: such SVIDs are cut short at the CA's expiry.
absl::Status ValidateCaConfig(const CaConfig& config);

}  // namespace tessera::server::ca
