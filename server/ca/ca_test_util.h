// Test-only fakes and helpers for the CA manager tests: a publisher that records every bundle,
// stores and key managers that fail on demand, a log capture, and verification shortcuts. Not
// part of tessera_server_ca. RecordingPublisher and the failing fakes are safe for concurrent
// use; LogCapture is not (install it in single-threaded tests).
#pragma once

#include <atomic>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "server/ca/ca_manager.h"
#include "server/ca/journal.h"
#include "server/ca/key_manager.h"
#include "spdlog/sinks/ostream_sink.h"
#include "spdlog/spdlog.h"
#include "spiffe/x509_test_util.h"
#include "spiffe/x509_verify.h"

namespace tessera::server::ca::testing {

class RecordingPublisher final : public BundlePublisher {
 public:
  absl::Status Publish(const BundleContents& contents) override {
    absl::MutexLock lock(&mu_);
    if (fail_) return absl::UnavailableError("datastore down");
    published_.push_back(contents);
    return absl::OkStatus();
  }
  void set_fail(bool fail) {
    absl::MutexLock lock(&mu_);
    fail_ = fail;
  }
  std::vector<BundleContents> published() const {
    absl::MutexLock lock(&mu_);
    return published_;
  }
  size_t count() const {
    absl::MutexLock lock(&mu_);
    return published_.size();
  }
  // The last bundle published (the test fails when there is none).
  BundleContents last() const {
    absl::MutexLock lock(&mu_);
    EXPECT_FALSE(published_.empty());
    return published_.empty() ? BundleContents{spiffe::Bundle(spiffe::testing::Td("none")), {}}
                              : published_.back();
  }

 private:
  mutable absl::Mutex mu_;
  bool fail_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<BundleContents> published_ ABSL_GUARDED_BY(mu_);
};

// A journal store whose reads or writes can be made to fail.
class FlakyJournalStore final : public JournalStore {
 public:
  absl::StatusOr<std::optional<std::string>> Load() override {
    if (fail_load) return absl::UnavailableError("datastore down");
    return inner.Load();
  }
  absl::Status Save(std::string_view bytes) override {
    if (fail_save) return absl::UnavailableError("datastore down");
    saves.fetch_add(1);
    return inner.Save(bytes);
  }
  MemoryJournalStore inner;
  std::atomic<bool> fail_load = false;
  std::atomic<bool> fail_save = false;
  std::atomic<int> saves = 0;
};

// A key manager whose key generation can be made to fail.
class FlakyKeyManager final : public KeyManager {
 public:
  absl::StatusOr<spiffe::PrivateKey> GenerateKey(std::string_view key_id,
                                                 spiffe::KeyType type) override {
    if (fail_generate) return absl::InternalError("hsm unplugged");
    return inner.GenerateKey(key_id, type);
  }
  absl::StatusOr<spiffe::PrivateKey> GetKey(std::string_view key_id) override {
    return inner.GetKey(key_id);
  }
  absl::Status DeleteKey(std::string_view key_id) override { return inner.DeleteKey(key_id); }
  MemoryKeyManager inner;
  std::atomic<bool> fail_generate = false;
};

// Sends spdlog's default logger into a string for the object's lifetime.
class LogCapture {
 public:
  LogCapture() : previous_(spdlog::default_logger()) {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(stream_);
    spdlog::set_default_logger(std::make_shared<spdlog::logger>("test", std::move(sink)));
  }
  ~LogCapture() { spdlog::set_default_logger(previous_); }
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;
  std::string str() const { return stream_.str(); }

 private:
  std::shared_ptr<spdlog::logger> previous_;
  std::ostringstream stream_;
};

inline spiffe::X509AuthoritiesSource SourceOf(const spiffe::Bundle& bundle) {
  return
      [bundle](const spiffe::TrustDomain& td) -> std::optional<std::vector<spiffe::Certificate>> {
        if (td != bundle.trust_domain()) return std::nullopt;
        return bundle.x509_authorities();
      };
}

inline absl::Status VerifyAgainst(const SignedX509Svid& svid, const spiffe::Bundle& bundle,
                                  TimePoint at) {
  return spiffe::VerifyX509Svid(svid.chain, SourceOf(bundle), at).status();
}

inline CaConfig TestConfig() {
  return CaConfig{.trust_domain = spiffe::testing::Td("example.org")};
}

}  // namespace tessera::server::ca::testing
