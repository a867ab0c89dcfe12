// TlsFiles: the server's TLS identity (private key and certificate chain) and the roots it
// trusts for client certificates, kept as PEM files that gRPC's FileWatcherCertificateProvider
// re-reads while the server runs. This is how the server's own SVID rotates without a restart.
//
// Each Publish writes a complete generation into a fresh directory and then atomically renames
// the `current` symlink onto it, so a reader always finds a consistent key/chain pair: never a
// half-written file, never a new key beside an old chain for longer than one re-read.
// Files are 0600 inside a 0700 directory. Not thread-safe: one owner (the server's rotation
// loop) calls Publish.
#pragma once

#include <filesystem>
#include <span>

#include "absl/status/status.h"
#include "spiffe/certificate.h"
#include "spiffe/key.h"

namespace tessera::server {

class TlsFiles {
 public:
  explicit TlsFiles(std::filesystem::path dir) : dir_(std::move(dir)) {}

  TlsFiles(const TlsFiles&) = delete;
  TlsFiles& operator=(const TlsFiles&) = delete;

  // Writes key, chain (leaf first) and roots as a new generation and makes it current. Older
  // generations but the previous one are removed (a reader may still be opening it).
  absl::Status Publish(const spiffe::PrivateKey& key, std::span<const spiffe::Certificate> chain,
                       std::span<const spiffe::Certificate> roots);

  // Stable paths through the `current` symlink, for the certificate provider.
  std::filesystem::path key_path() const { return dir_ / "current" / "key.pem"; }
  std::filesystem::path chain_path() const { return dir_ / "current" / "chain.pem"; }
  std::filesystem::path roots_path() const { return dir_ / "current" / "roots.pem"; }

 private:
  std::filesystem::path dir_;
  uint64_t generation_ = 0;
};

}  // namespace tessera::server
