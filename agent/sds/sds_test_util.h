// Test-only helpers for the SDS service tests over a real endpoint: a fixture that serves SDS on
// the Workload API socket, requests as Envoy sends them, and a client stream whose responses are
// read on a thread of its own so that every wait in a test is bounded. Not part of the library.
// Used by one test thread; each EnvoyStream adds one reader thread, joined by its destructor.
#pragma once

#include <unistd.h>

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "agent/sds/sds_service.h"
#include "agent/workload/workload_test_util.h"
#include "envoy/extensions/transport_sockets/tls/v3/common.pb.h"
#include "envoy/extensions/transport_sockets/tls/v3/secret.pb.h"
#include "envoy/extensions/transport_sockets/tls/v3/tls_spiffe_validator_config.pb.h"
#include "envoy/service/secret/v3/sds.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "spiffe/bundle.h"
#include "spiffe/x509_verify.h"

namespace tessera::agent::testing {

namespace discovery = envoy::service::discovery::v3;
namespace tls = envoy::extensions::transport_sockets::tls::v3;
using SdsStub = envoy::service::secret::v3::SecretDiscoveryService::Stub;

inline std::string SelfUid() { return "unix:uid:" + std::to_string(::geteuid()); }

// The node Envoy 1.30 describes itself with in its first request.
inline void SetEnvoyNode(envoy::config::core::v3::Node* node) {
  node->set_id("sidecar-1");
  node->set_cluster("web");
  node->set_user_agent_name("envoy");
  node->mutable_user_agent_build_version()->mutable_version()->set_major_number(1);
  node->mutable_user_agent_build_version()->mutable_version()->set_minor_number(30);
}

// A state-of-the-world request; the node only where Envoy sends it (`with_node`).
inline discovery::DiscoveryRequest SotwRequest(const std::vector<std::string>& names,
                                               const std::string& version = "",
                                               const std::string& nonce = "",
                                               bool with_node = true) {
  discovery::DiscoveryRequest request;
  request.set_type_url(std::string(kSecretTypeUrl));
  request.set_version_info(version);
  request.set_response_nonce(nonce);
  for (const std::string& name : names) request.add_resource_names(name);
  if (with_node) SetEnvoyNode(request.mutable_node());
  return request;
}

// A bidirectional SDS stream driven like Envoy: the test writes requests, a thread reads every
// response into a queue. The context's deadline is only a last resort against a hung test.
template <typename Request, typename Response>
class EnvoyStream {
 public:
  using Stream = grpc::ClientReaderWriter<Request, Response>;
  using Opener = std::function<std::unique_ptr<Stream>(grpc::ClientContext*)>;

  explicit EnvoyStream(const Opener& open) {
    context_.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    stream_ = open(&context_);
    reader_ = std::thread([this] {
      Response response;
      while (stream_->Read(&response)) {
        absl::MutexLock lock(&mu_);
        queue_.push_back(std::move(response));
        response = Response();
      }
      absl::MutexLock lock(&mu_);
      ended_ = true;
    });
  }
  ~EnvoyStream() {
    context_.TryCancel();
    reader_.join();
    if (!status_.has_value()) stream_->Finish();
  }
  EnvoyStream(const EnvoyStream&) = delete;
  EnvoyStream& operator=(const EnvoyStream&) = delete;

  bool Send(const Request& request) { return stream_->Write(request); }

  // The next response, or nothing if none came within `timeout` or the stream ended.
  std::optional<Response> Next(absl::Duration timeout = absl::Seconds(5)) {
    absl::MutexLock lock(&mu_);
    auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !queue_.empty() || ended_; };
    mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
    if (queue_.empty()) return std::nullopt;
    Response response = std::move(queue_.front());
    queue_.pop_front();
    return response;
  }

  // How the server ended the stream, once it has (nothing if it has not within `timeout`).
  // Responses still queued are dropped.
  std::optional<grpc::Status> Status(absl::Duration timeout = absl::Seconds(5)) {
    if (status_.has_value()) return status_;
    {
      absl::MutexLock lock(&mu_);
      if (!mu_.AwaitWithTimeout(absl::Condition(&ended_), timeout)) return std::nullopt;
    }
    reader_.join();
    reader_ = std::thread([] {});  // joined by the destructor
    status_ = stream_->Finish();
    return status_;
  }

 private:
  grpc::ClientContext context_;
  std::unique_ptr<Stream> stream_;
  std::optional<grpc::Status> status_;  // test thread only
  absl::Mutex mu_;
  std::deque<Response> queue_ ABSL_GUARDED_BY(mu_);
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
  std::thread reader_;
};

using SotwStream = EnvoyStream<discovery::DiscoveryRequest, discovery::DiscoveryResponse>;
using DeltaStream =
    EnvoyStream<discovery::DeltaDiscoveryRequest, discovery::DeltaDiscoveryResponse>;

inline std::vector<tls::Secret> Secrets(const discovery::DiscoveryResponse& response) {
  std::vector<tls::Secret> secrets;
  for (const auto& any : response.resources()) {
    tls::Secret secret;
    EXPECT_TRUE(any.UnpackTo(&secret)) << any.type_url();
    secrets.push_back(std::move(secret));
  }
  return secrets;
}

inline std::vector<std::string> Names(const std::vector<tls::Secret>& secrets) {
  std::vector<std::string> names;
  for (const tls::Secret& secret : secrets) names.push_back(secret.name());
  return names;
}

// The delta response's resources by name; checks that each Secret carries its resource's name.
inline std::map<std::string, discovery::Resource> ByName(
    const discovery::DeltaDiscoveryResponse& response) {
  std::map<std::string, discovery::Resource> out;
  for (const discovery::Resource& resource : response.resources()) {
    tls::Secret secret;
    EXPECT_TRUE(resource.resource().UnpackTo(&secret)) << resource.name();
    EXPECT_EQ(secret.name(), resource.name());
    EXPECT_FALSE(resource.version().empty()) << resource.name();
    out.emplace(resource.name(), resource);
  }
  return out;
}

// The X509-SVID of a tls_certificate Secret; fails unless both PEMs parse and the key matches.
inline absl::StatusOr<spiffe::X509Svid> SvidOf(const tls::Secret& secret) {
  if (!secret.has_tls_certificate()) return absl::NotFoundError("not a tls_certificate");
  return spiffe::ParseX509SvidPem(secret.tls_certificate().certificate_chain().inline_bytes(),
                                  secret.tls_certificate().private_key().inline_bytes());
}

// The leaf's DER of a tls_certificate Secret ("" and a failure if it does not parse).
inline std::string LeafDer(const tls::Secret& secret) {
  absl::StatusOr<spiffe::X509Svid> svid = SvidOf(secret);
  EXPECT_TRUE(svid.ok()) << secret.name() << ": " << svid.status();
  return svid.ok() && !svid->chain.empty() ? svid->chain[0].ToDer() : "";
}

// The trust domains of a validation_context using Envoy's SPIFFE validator: name -> PEM.
inline std::vector<std::pair<std::string, std::string>> SpiffeTrustDomains(
    const tls::Secret& secret) {
  std::vector<std::pair<std::string, std::string>> out;
  const auto& validator = secret.validation_context().custom_validator_config();
  EXPECT_EQ(validator.name(), kSpiffeValidatorName) << secret.name();
  tls::SPIFFECertValidatorConfig config;
  EXPECT_TRUE(validator.typed_config().UnpackTo(&config)) << secret.name();
  for (const auto& td : config.trust_domains()) {
    out.emplace_back(td.name(), td.trust_bundle().inline_bytes());
  }
  return out;
}

// A real endpoint serving SDS next to the Workload API.
class SdsFixture : public EndpointFixture {
 protected:
  static constexpr absl::Duration kQuiet = absl::Milliseconds(300);

  void StartSds(SdsSettings settings = {}) {
    WorkloadEndpointOptions options = Options();
    options.services.push_back(SdsService::Factory(&cache_, std::move(settings)));
    StartEndpoint(std::move(options));
    stub_ = envoy::service::secret::v3::SecretDiscoveryService::NewStub(
        grpc::CreateChannel("unix://" + socket_path_, grpc::InsecureChannelCredentials()));
  }

  std::unique_ptr<SotwStream> OpenSotw() {
    return std::make_unique<SotwStream>(
        [this](grpc::ClientContext* context) { return stub_->StreamSecrets(context); });
  }
  std::unique_ptr<DeltaStream> OpenDelta() {
    return std::make_unique<DeltaStream>(
        [this](grpc::ClientContext* context) { return stub_->DeltaSecrets(context); });
  }

  // The test process's own entry, spiffe://example.org/web.
  CachedIdentity Web(std::vector<std::string> federates_with = {}) {
    return Identity(pki_, {.id = "web",
                           .spiffe_id = "spiffe://example.org/web",
                           .selectors = {SelfUid()},
                           .federates_with = std::move(federates_with)});
  }
  // The same entry with a freshly minted X509-SVID.
  CachedIdentity Rotated(const CachedIdentity& identity) {
    return CachedIdentity{identity.entry, pki_.Svid(identity.entry->spiffe_id.str())};
  }

  std::unique_ptr<SdsStub> stub_;
};

}  // namespace tessera::agent::testing
