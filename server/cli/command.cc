#include "server/cli/command.h"

#include <algorithm>
#include <limits>
#include <ostream>
#include <utility>

#include "CLI/CLI.hpp"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/strings.h"
#include "common/text.h"
#include "common/units.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "server/cli/admin_cli.h"
#include "spiffe/selector.h"

namespace tessera::server::cli {

CommandEnv::CommandEnv(std::ostream& out, std::ostream& err, std::istream& in,
                       const CommonFlags& flags)
    : out_(out),
      err_(err),
      in_(in),
      socket_path_(flags.socket_path),
      json_(flags.output == "json") {}

std::shared_ptr<grpc::Channel> CommandEnv::channel() {
  if (channel_ == nullptr) {
    channel_ = grpc::CreateChannel("unix:" + socket_path_, grpc::InsecureChannelCredentials());
  }
  return channel_;
}

std::unique_ptr<grpc::ClientContext> CommandEnv::NewContext() {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + kRpcTimeout);
  return context;
}

int CommandEnv::Fail(std::string_view message) {
  err_ << message << "\n";
  return 1;
}

int CommandEnv::Fail(const absl::Status& status) { return Fail(AsStd(status.message())); }

int CommandEnv::RpcFailed(std::string_view what, const grpc::Status& status) {
  // Without wait_for_ready a missing socket or a stopped server fails fast as UNAVAILABLE; a
  // server that accepts but never answers runs into the deadline.
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE ||
      status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    err_ << "cannot reach tessera-server at " << socket_path_ << ": " << status.error_message()
         << "\n";
    return 1;
  }
  err_ << what << ": " << status.error_message() << "\n";
  return 1;
}

int CommandEnv::ItemFailed(std::string_view what, const types::Status& status) {
  std::string_view message = status.message();
  if (message.starts_with(what)) {
    err_ << message << "\n";
  } else {
    err_ << what << ": " << message << "\n";
  }
  return 1;
}

int CommandEnv::PrintJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string json;
  auto status = google::protobuf::util::MessageToJsonString(message, &json, options);
  if (!status.ok())
    return Fail(absl::StrCat("cannot encode the response as JSON: ", status.ToString()));
  out_ << json << "\n";
  return 0;
}

CLI::App* Registrar::AddLeaf(CLI::App* parent, const std::string& name,
                             const std::string& description, RunFn run) {
  CLI::App* app = parent->add_subcommand(name, description);
  auto flags = std::make_unique<CommonFlags>();
  flags->socket_path = std::string(kDefaultSocketPath);
  app->add_option("--socket-path", flags->socket_path, "path of tessera-server's admin socket")
      ->capture_default_str();
  app->add_option("--output", flags->output, "output format: json or pretty")
      ->check(CLI::IsMember({"json", "pretty"}))
      ->capture_default_str();
  leaves_.push_back(Leaf{app, std::move(flags), std::move(run)});
  return app;
}

std::optional<int> Registrar::RunParsed(std::ostream& out, std::ostream& err, std::istream& in) {
  for (Leaf& leaf : leaves_) {
    if (!leaf.app->parsed()) continue;
    CommandEnv env(out, err, in, *leaf.flags);
    int rc = leaf.run(env);
    out.flush();
    err.flush();
    return rc;
  }
  return std::nullopt;
}

absl::StatusOr<int32_t> ParseTtlFlag(std::string_view flag, std::string_view text) {
  constexpr int64_t kMax = std::numeric_limits<int32_t>::max();
  int64_t seconds = 0;
  bool all_digits = !text.empty() && std::all_of(text.begin(), text.end(),
                                                 [](char c) { return c >= '0' && c <= '9'; });
  if (all_digits) {
    if (text.size() > 10 || !absl::SimpleAtoi(AsAbsl(text), &seconds) || seconds > kMax) {
      return absl::InvalidArgumentError(
          absl::StrCat(AsAbsl(flag), ": ", Quoted(text), " is more than ", kMax, " seconds"));
    }
    return static_cast<int32_t>(seconds);
  }
  absl::StatusOr<std::chrono::nanoseconds> duration = ParseDuration(text);
  if (!duration.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(AsAbsl(flag), ": ", duration.status().message()));
  }
  // As spire-server does: a fraction of a second counts as a whole one.
  auto whole = std::chrono::ceil<std::chrono::seconds>(*duration);
  if (whole.count() > kMax) {
    return absl::InvalidArgumentError(
        absl::StrCat(AsAbsl(flag), ": ", Quoted(text), " is more than ", kMax, " seconds"));
  }
  return static_cast<int32_t>(whole.count());
}

absl::StatusOr<spiffe::SpiffeId> ParseIdFlag(std::string_view flag, std::string_view text) {
  absl::StatusOr<spiffe::SpiffeId> id = spiffe::SpiffeId::Parse(text);
  if (!id.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(AsAbsl(flag), " ", Quoted(text), ": ", id.status().message()));
  }
  return id;
}

absl::StatusOr<spiffe::TrustDomain> ParseTrustDomainFlag(std::string_view flag,
                                                         std::string_view text) {
  absl::StatusOr<spiffe::TrustDomain> td = spiffe::TrustDomain::FromIdOrName(text);
  if (!td.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(AsAbsl(flag), " ", Quoted(text), ": ", td.status().message()));
  }
  // A path would be silently dropped: the operator most likely gave the wrong value.
  if (td->IdString() != text && td->name() != text) {
    return absl::InvalidArgumentError(absl::StrCat(
        AsAbsl(flag), " ", Quoted(text), ": expected a trust domain name or spiffe://<name>"));
  }
  return td;
}

absl::Status ParseSelectorFlags(std::string_view flag, const std::vector<std::string>& texts,
                                google::protobuf::RepeatedPtrField<types::Selector>* out) {
  for (const std::string& text : texts) {
    absl::StatusOr<spiffe::Selector> selector = spiffe::Selector::Parse(text);
    if (!selector.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(AsAbsl(flag), ": ", selector.status().message()));
    }
    types::Selector* proto = out->Add();
    proto->set_type(std::string(selector->type()));
    proto->set_value(std::string(selector->value()));
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> ParseTimeFlag(std::string_view flag, std::string_view text) {
  int64_t seconds = 0;
  bool all_digits = !text.empty() && std::all_of(text.begin(), text.end(),
                                                 [](char c) { return c >= '0' && c <= '9'; });
  if (all_digits && absl::SimpleAtoi(AsAbsl(text), &seconds)) return seconds;
  absl::Time time;
  std::string error;
  if (!all_digits && absl::ParseTime(absl::RFC3339_full, AsAbsl(text), &time, &error)) {
    return absl::ToUnixSeconds(time);
  }
  return absl::InvalidArgumentError(
      absl::StrCat(AsAbsl(flag), " ", Quoted(text),
                   ": expected Unix seconds or an RFC 3339 time such as 2026-01-01T00:00:00Z"));
}

int MatchBehaviorFromFlag(std::string_view text) {
  // The flag is checked against these four by CLI11.
  if (text == "exact") return types::SelectorMatch::MATCH_EXACT;
  if (text == "subset") return types::SelectorMatch::MATCH_SUBSET;
  if (text == "any") return types::SelectorMatch::MATCH_ANY;
  return types::SelectorMatch::MATCH_SUPERSET;
}

types::SPIFFEID IdProto(const spiffe::SpiffeId& id) {
  types::SPIFFEID proto;
  proto.set_trust_domain(id.trust_domain().name());
  proto.set_path(std::string(id.path()));
  return proto;
}

std::string IdString(const types::SPIFFEID& id) {
  if (id.trust_domain().empty() && id.path().empty()) return "";
  return absl::StrCat("spiffe://", id.trust_domain(), id.path());
}

std::string FormatUnixTime(int64_t unix_seconds) {
  return absl::FormatTime("%Y-%m-%d %H:%M:%S +0000 UTC", absl::FromUnixSeconds(unix_seconds),
                          absl::UTCTimeZone());
}

std::string Plural(int64_t count, std::string_view singular, std::string_view plural) {
  return absl::StrCat(count, " ", AsAbsl(count == 1 ? singular : plural));
}

}  // namespace tessera::server::cli
