// Pins the SPIRE server API v1 and Tessera notification protos (shared/reference/
// SPIRE-API-FACTS.md §1, §2) and our subset of Envoy's SDS v3 protos (SPIFFE-FACTS.md §5) to
// their wire contract. Every service, method, message, field and enum of those files is listed
// in proto_compat_tables.h; a renamed, renumbered, retyped, added or removed element fails the
// test. Byte-level cases prove the tag numbers on the wire.

#include <google/protobuf/any.pb.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "envoy/config/core/v3/base.pb.h"
#include "envoy/config/core/v3/extension.pb.h"
#include "envoy/extensions/transport_sockets/tls/v3/common.pb.h"
#include "envoy/extensions/transport_sockets/tls/v3/secret.pb.h"
#include "envoy/extensions/transport_sockets/tls/v3/tls_spiffe_validator_config.pb.h"
#include "envoy/service/discovery/v3/discovery.pb.h"
#include "envoy/service/secret/v3/sds.pb.h"
#include "envoy/type/v3/semantic_version.pb.h"
#include "gtest/gtest.h"
#include "proto_compat_tables.h"  // beside this file
#include "spire/api/server/agent/v1/agent.pb.h"
#include "spire/api/server/bundle/v1/bundle.pb.h"
#include "spire/api/server/entry/v1/entry.pb.h"
#include "spire/api/server/svid/v1/svid.pb.h"
#include "spire/api/server/trustdomain/v1/trustdomain.pb.h"
#include "spire/api/types/agent.pb.h"
#include "spire/api/types/attestation.pb.h"
#include "spire/api/types/bundle.pb.h"
#include "spire/api/types/entry.pb.h"
#include "spire/api/types/federateswith.pb.h"
#include "spire/api/types/federationrelationship.pb.h"
#include "spire/api/types/jointoken.pb.h"
#include "spire/api/types/jwtsvid.pb.h"
#include "spire/api/types/permissiondenieddetails.pb.h"
#include "spire/api/types/selector.pb.h"
#include "spire/api/types/spiffeid.pb.h"
#include "spire/api/types/status.pb.h"
#include "spire/api/types/x509svid.pb.h"
#include "tessera/server/v1/notify.pb.h"

namespace tessera {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::EnumDescriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::FileDescriptor;
using google::protobuf::ServiceDescriptor;

namespace types = ::spire::api::types;
namespace core = ::envoy::config::core::v3;
namespace discovery = ::envoy::service::discovery::v3;
namespace tls = ::envoy::extensions::transport_sockets::tls::v3;
using proto_compat::kEnums;
using proto_compat::kMessages;
using proto_compat::kMethods;
using proto_compat::kSdsEnums;
using proto_compat::kSdsMessages;
using proto_compat::kSdsMethods;
using proto_compat::Row;

// Naming a message of each file links its generated code into this binary, which is what
// registers the file in the generated pool; the pool is then searched by name.
std::vector<const FileDescriptor*> CoveredFiles() {
  return {
      types::Agent::descriptor()->file(),
      types::AttestationData::descriptor()->file(),
      types::Bundle::descriptor()->file(),
      types::Entry::descriptor()->file(),
      types::FederatesWithMatch::descriptor()->file(),
      types::FederationRelationship::descriptor()->file(),
      types::JoinToken::descriptor()->file(),
      types::JWTSVID::descriptor()->file(),
      types::PermissionDeniedDetails::descriptor()->file(),
      types::Selector::descriptor()->file(),
      types::SPIFFEID::descriptor()->file(),
      types::Status::descriptor()->file(),
      types::X509SVID::descriptor()->file(),
      spire::api::server::agent::v1::AttestAgentRequest::descriptor()->file(),
      spire::api::server::bundle::v1::GetBundleRequest::descriptor()->file(),
      spire::api::server::entry::v1::ListEntriesRequest::descriptor()->file(),
      spire::api::server::svid::v1::BatchNewX509SVIDRequest::descriptor()->file(),
      spire::api::server::trustdomain::v1::RefreshBundleRequest::descriptor()->file(),
      tessera::server::v1::Notification::descriptor()->file(),
      envoy::type::v3::SemanticVersion::descriptor()->file(),
      core::Node::descriptor()->file(),
      core::TypedExtensionConfig::descriptor()->file(),
      discovery::DiscoveryRequest::descriptor()->file(),
      envoy::service::secret::v3::SdsDummy::descriptor()->file(),
      tls::Secret::descriptor()->file(),
      tls::TlsCertificate::descriptor()->file(),
      tls::SPIFFECertValidatorConfig::descriptor()->file(),
  };
}

// A table kind's rows: SPIRE's, then Envoy SDS's.
std::vector<Row> Rows(std::span<const Row> spire, std::span<const Row> sds) {
  std::vector<Row> out(spire.begin(), spire.end());
  out.insert(out.end(), sds.begin(), sds.end());
  return out;
}

// A type name as the tables write it: relative to the longest package prefix it shares with
// `package`, as .proto files write references. So spire.api.types.X seen from spire.api.server.*
// is "types.X", envoy.config.core.v3.Node seen from envoy.service.discovery.v3 is
// "config.core.v3.Node"; a name sharing no prefix (google.*) stays full.
std::string ShortName(const std::string& full_name, const std::string& package) {
  std::string prefix = package;
  while (!prefix.empty()) {
    if (full_name.rfind(prefix + ".", 0) == 0) return full_name.substr(prefix.size() + 1);
    const size_t dot = prefix.rfind('.');
    prefix.resize(dot == std::string::npos ? 0 : dot);
  }
  return full_name;
}

// A field's type; a map field is "map<K, V>" rather than its synthesized entry message.
std::string TypeName(const FieldDescriptor& field, const std::string& package) {
  if (field.is_map()) {
    const Descriptor& entry = *field.message_type();
    return "map<" + TypeName(*entry.map_key(), package) + ", " +
           TypeName(*entry.map_value(), package) + ">";
  }
  if (field.message_type() != nullptr) return ShortName(field.message_type()->full_name(), package);
  if (field.enum_type() != nullptr) return ShortName(field.enum_type()->full_name(), package);
  return field.type_name();
}

// "name=N [rep] type [oneof(o)]; ..." in field-number order.
std::string RenderFields(const Descriptor& message) {
  std::vector<const FieldDescriptor*> fields;
  for (int i = 0; i < message.field_count(); ++i) fields.push_back(message.field(i));
  std::sort(fields.begin(), fields.end(),
            [](const auto* a, const auto* b) { return a->number() < b->number(); });
  const std::string& package = message.file()->package();
  std::string out;
  for (const FieldDescriptor* field : fields) {
    if (!out.empty()) out += "; ";
    out += field->name() + "=" + std::to_string(field->number());
    if (field->is_repeated() && !field->is_map()) out += " rep";
    out += " " + TypeName(*field, package);
    if (field->real_containing_oneof() != nullptr) {
      out += " oneof(" + field->real_containing_oneof()->name() + ")";
    }
    if (field->has_optional_keyword()) out += " optional";
  }
  return out;
}

std::string RenderEnum(const EnumDescriptor& e) {
  std::string out;
  for (int i = 0; i < e.value_count(); ++i) {
    if (!out.empty()) out += "; ";
    out += e.value(i)->name() + "=" + std::to_string(e.value(i)->number());
  }
  return out;
}

void CollectMessages(const Descriptor& message, std::vector<const Descriptor*>* out) {
  if (message.options().map_entry()) return;  // rendered as its map field's type
  out->push_back(&message);
  for (int i = 0; i < message.nested_type_count(); ++i) {
    CollectMessages(*message.nested_type(i), out);
  }
}

std::vector<const Descriptor*> AllMessages() {
  std::vector<const Descriptor*> out;
  for (const FileDescriptor* file : CoveredFiles()) {
    for (int i = 0; i < file->message_type_count(); ++i) {
      CollectMessages(*file->message_type(i), &out);
    }
  }
  return out;
}

std::string Hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    if (!out.empty()) out += ' ';
    out += kDigits[c >> 4];
    out += kDigits[c & 0xf];
  }
  return out;
}

std::string Bytes(std::initializer_list<uint8_t> bytes) {
  return std::string(bytes.begin(), bytes.end());
}

TEST(ProtoCompat, EveryMethodHasItsPathAndStreamingKind) {
  CoveredFiles();
  const auto* pool = google::protobuf::DescriptorPool::generated_pool();
  for (const auto& [path, signature] : Rows(kMethods, kSdsMethods)) {
    SCOPED_TRACE(path);
    const size_t slash = path.rfind('/');
    ASSERT_TRUE(path[0] == '/' && slash != std::string_view::npos && slash > 0);
    const ServiceDescriptor* service =
        pool->FindServiceByName(std::string(path.substr(1, slash - 1)));
    ASSERT_NE(service, nullptr) << "no such service";
    const auto* method = service->FindMethodByName(std::string(path.substr(slash + 1)));
    ASSERT_NE(method, nullptr) << "no such method";
    const std::string& package = service->file()->package();
    const std::string rendered = std::string(method->client_streaming() ? "stream " : "") +
                                 ShortName(method->input_type()->full_name(), package) + " -> " +
                                 (method->server_streaming() ? "stream " : "") +
                                 ShortName(method->output_type()->full_name(), package);
    EXPECT_EQ(rendered, signature);
  }
}

TEST(ProtoCompat, NoMethodIsMissingFromTheTable) {
  std::map<std::string, int> listed;
  for (const auto& [path, signature] : Rows(kMethods, kSdsMethods)) {
    ++listed[std::string(path.substr(1, path.rfind('/') - 1))];
  }
  int services = 0;
  for (const FileDescriptor* file : CoveredFiles()) {
    for (int i = 0; i < file->service_count(); ++i, ++services) {
      const ServiceDescriptor* service = file->service(i);
      EXPECT_EQ(service->method_count(), listed[service->full_name()]) << service->full_name();
    }
  }
  EXPECT_EQ(services, 7);
}

TEST(ProtoCompat, EveryMessageHasExactlyItsFields) {
  CoveredFiles();
  const auto* pool = google::protobuf::DescriptorPool::generated_pool();
  for (const auto& [name, fields] : Rows(kMessages, kSdsMessages)) {
    const Descriptor* message = pool->FindMessageTypeByName(std::string(name));
    ASSERT_NE(message, nullptr) << name;
    EXPECT_EQ(RenderFields(*message), fields) << name;
  }
}

TEST(ProtoCompat, NoMessageIsMissingFromTheTable) {
  std::map<std::string, int> listed;
  for (const auto& [name, fields] : Rows(kMessages, kSdsMessages)) ++listed[std::string(name)];
  const std::vector<const Descriptor*> all = AllMessages();
  for (const Descriptor* message : all) {
    EXPECT_EQ(listed[message->full_name()], 1) << message->full_name();
  }
  EXPECT_EQ(all.size(), std::size(kMessages) + std::size(kSdsMessages));
}

TEST(ProtoCompat, EveryEnumHasExactlyItsValues) {
  CoveredFiles();
  const auto* pool = google::protobuf::DescriptorPool::generated_pool();
  for (const auto& [name, values] : Rows(kEnums, kSdsEnums)) {
    const EnumDescriptor* e = pool->FindEnumTypeByName(std::string(name));
    ASSERT_NE(e, nullptr) << name;
    EXPECT_EQ(RenderEnum(*e), values) << name;
  }
  size_t enums = 0;
  for (const Descriptor* message : AllMessages()) enums += message->enum_type_count();
  for (const FileDescriptor* file : CoveredFiles()) enums += file->enum_type_count();
  EXPECT_EQ(enums, std::size(kEnums) + std::size(kSdsEnums));
}

// The checker itself must notice drift: rebuild entry.proto in a private pool with one number
// and one type changed and compare against the same table row.
TEST(ProtoCompat, CheckerDetectsRenumberedAndRetypedFields) {
  google::protobuf::DescriptorPool pool;
  for (const Descriptor* dep : {types::SPIFFEID::descriptor(), types::Selector::descriptor()}) {
    google::protobuf::FileDescriptorProto proto;
    dep->file()->CopyTo(&proto);
    ASSERT_NE(pool.BuildFile(proto), nullptr);
  }
  google::protobuf::FileDescriptorProto proto;
  types::Entry::descriptor()->file()->CopyTo(&proto);
  std::string_view expected;
  for (const auto& [name, fields] : kMessages) {
    if (name == "spire.api.types.Entry") expected = fields;
  }
  ASSERT_FALSE(expected.empty());
  for (auto& field : *proto.mutable_message_type(0)->mutable_field()) {
    if (field.name() == "hint") field.set_number(17);
    if (field.name() == "jwt_svid_ttl") {
      field.set_type(google::protobuf::FieldDescriptorProto::TYPE_INT64);
    }
  }
  ASSERT_EQ(proto.message_type(0).name(), "Entry");
  const FileDescriptor* drifted = pool.BuildFile(proto);
  ASSERT_NE(drifted, nullptr);
  const std::string rendered = RenderFields(*drifted->FindMessageTypeByName("Entry"));
  EXPECT_NE(rendered, expected);
  EXPECT_NE(rendered.find("jwt_svid_ttl=13 int64"), std::string::npos) << rendered;
  EXPECT_NE(rendered.find("hint=17 string"), std::string::npos) << rendered;
  EXPECT_EQ(RenderFields(*types::Entry::descriptor()), expected);
}

TEST(ProtoCompat, EntryWireBytes) {
  types::Entry entry;
  entry.set_id("e1");
  entry.mutable_spiffe_id()->set_trust_domain("td");
  entry.mutable_spiffe_id()->set_path("/w");
  entry.mutable_parent_id()->set_trust_domain("td");
  entry.mutable_parent_id()->set_path("/a");
  types::Selector* selector = entry.add_selectors();
  selector->set_type("unix");
  selector->set_value("uid:0");
  entry.set_x509_svid_ttl(300);
  entry.add_federates_with("x");
  entry.set_admin(true);
  entry.set_downstream(true);
  entry.set_expires_at(2);
  entry.add_dns_names("d");
  entry.set_revision_number(7);
  entry.set_store_svid(true);
  entry.set_jwt_svid_ttl(60);
  entry.set_hint("h");
  entry.set_created_at(1);
  entry.mutable_additional_attributes()->set_jwt_svid_include_jti(true);

  // Tag byte = field number << 3 | wire type (0 varint, 2 length-delimited).
  const std::string expected = Bytes({
      0x0a, 0x02, 'e',  '1',                                    // id=1
      0x12, 0x08, 0x0a, 0x02, 't',  'd', 0x12, 0x02, '/', 'w',  // spiffe_id=2
      0x1a, 0x08, 0x0a, 0x02, 't',  'd', 0x12, 0x02, '/', 'a',  // parent_id=3
      0x22, 0x0d, 0x0a, 0x04, 'u',  'n', 'i',  'x',             // selectors=4 {type=1
      0x12, 0x05, 'u',  'i',  'd',  ':', '0',                   //   value=2}
      0x28, 0xac, 0x02,                                         // x509_svid_ttl=5: 300
      0x32, 0x01, 'x',                                          // federates_with=6
      0x38, 0x01,                                               // admin=7
      0x40, 0x01,                                               // downstream=8
      0x48, 0x02,                                               // expires_at=9
      0x52, 0x01, 'd',                                          // dns_names=10
      0x58, 0x07,                                               // revision_number=11
      0x60, 0x01,                                               // store_svid=12
      0x68, 0x3c,                                               // jwt_svid_ttl=13: 60
      0x72, 0x01, 'h',                                          // hint=14
      0x78, 0x01,                                               // created_at=15
      0x82, 0x01, 0x02, 0x10, 0x01,  // additional_attributes=16 {jwt_svid_include_jti=2}
  });
  EXPECT_EQ(Hex(entry.SerializeAsString()), Hex(expected));

  types::Entry parsed;
  ASSERT_TRUE(parsed.ParseFromString(expected));
  EXPECT_EQ(parsed.spiffe_id().path(), "/w");
  EXPECT_EQ(parsed.parent_id().path(), "/a");
  EXPECT_EQ(parsed.x509_svid_ttl(), 300);
  EXPECT_EQ(parsed.jwt_svid_ttl(), 60);
  EXPECT_TRUE(parsed.additional_attributes().jwt_svid_include_jti());
  EXPECT_FALSE(parsed.additional_attributes().disable_x509_svid_prefetch());
  EXPECT_EQ(parsed.SerializeAsString(), expected);
}

TEST(ProtoCompat, AttestAgentWireBytes) {
  spire::api::server::agent::v1::AttestAgentRequest first;
  first.mutable_params()->mutable_data()->set_type("join_token");
  first.mutable_params()->mutable_data()->set_payload("t");
  first.mutable_params()->mutable_params()->set_csr("c");
  EXPECT_EQ(Hex(first.SerializeAsString()),
            Hex(Bytes({0x0a, 0x16,                                         // params=1
                       0x0a, 0x0f, 0x0a, 0x0a, 'j', 'o',  'i',  'n', '_',  // data=1 {type=1
                       't',  'o',  'k',  'e',  'n', 0x12, 0x01, 't',       //   payload=2}
                       0x12, 0x03, 0x0a, 0x01, 'c'})));                    // params=2 {csr=1}

  spire::api::server::agent::v1::AttestAgentRequest answer;
  answer.set_challenge_response("ok");
  EXPECT_EQ(Hex(answer.SerializeAsString()), Hex(Bytes({0x12, 0x02, 'o', 'k'})));

  spire::api::server::agent::v1::AttestAgentResponse response;
  ASSERT_TRUE(response.ParseFromString(Bytes({0x12, 0x01, 'n'})));
  EXPECT_EQ(response.step_case(), response.kChallenge);
  ASSERT_TRUE(response.ParseFromString(Bytes({0x0a, 0x02, 0x10, 0x01})));
  EXPECT_EQ(response.step_case(), response.kResult);
  EXPECT_TRUE(response.result().reattestable());
}

TEST(ProtoCompat, BatchAndSyncWireBytes) {
  spire::api::server::svid::v1::BatchNewX509SVIDResponse batch;
  auto* result = batch.add_results();
  result->mutable_status()->set_message("OK");
  result->mutable_svid()->add_cert_chain("0");
  EXPECT_EQ(Hex(batch.SerializeAsString()),
            Hex(Bytes({0x0a, 0x0b,                        // results=1
                       0x0a, 0x04, 0x12, 0x02, 'O', 'K',  //   status=1 {message=2}
                       0x12, 0x03, 0x0a, 0x01, '0'})));   //   svid=2 {cert_chain=1}

  spire::api::server::entry::v1::SyncAuthorizedEntriesResponse sync;
  auto* revision = sync.add_entry_revisions();
  revision->set_id("a");
  revision->set_revision_number(3);
  revision->set_created_at(4);
  sync.set_more(true);
  EXPECT_EQ(Hex(sync.SerializeAsString()),
            Hex(Bytes({0x0a, 0x07, 0x0a, 0x01, 'a', 0x10, 0x03, 0x18, 0x04,  // entry_revisions=1
                       0x18, 0x01})));                                       // more=3

  types::Bundle bundle;
  bundle.set_trust_domain("td");
  bundle.set_sequence_number((uint64_t{1} << 63) + 1);  // needs all 64 bits: uint64 not int32
  bundle.add_jwt_authorities()->set_key_id("k");
  EXPECT_EQ(Hex(bundle.SerializeAsString()),
            Hex(Bytes({0x0a, 0x02, 't',  'd',                           // trust_domain=1
                       0x1a, 0x03, 0x12, 0x01, 'k',                     // jwt_authorities=3
                       0x28, 0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,  // sequence_number=5
                       0x80, 0x80, 0x01})));
}

TEST(ProtoCompat, EmptyWebProfileIsStillSentAsField3) {
  types::FederationRelationship relationship;
  relationship.set_trust_domain("td");
  relationship.mutable_https_web();
  EXPECT_EQ(Hex(relationship.SerializeAsString()), Hex(Bytes({0x0a, 0x02, 't', 'd', 0x1a, 0x00})));

  relationship.mutable_https_spiffe()->set_endpoint_spiffe_id("s");
  EXPECT_FALSE(relationship.has_https_web());
  EXPECT_EQ(Hex(relationship.SerializeAsString()),
            Hex(Bytes({0x0a, 0x02, 't', 'd', 0x22, 0x03, 0x0a, 0x01, 's'})));
}

TEST(ProtoCompat, PermissionDeniedDetailsTypeUrl) {
  types::PermissionDeniedDetails details;
  details.set_reason(types::PermissionDeniedDetails::AGENT_BANNED);
  google::protobuf::Any any;
  ASSERT_TRUE(any.PackFrom(details));
  EXPECT_EQ(any.type_url(), "type.googleapis.com/spire.api.types.PermissionDeniedDetails");
  EXPECT_EQ(Hex(any.value()), Hex(Bytes({0x08, 0x04})));
}

TEST(ProtoCompat, NotificationWireBytes) {
  tessera::server::v1::Notification notification;
  notification.set_revision(1);
  notification.set_bundle_changed(true);
  notification.set_bundle_sequence_number(9);
  EXPECT_EQ(Hex(notification.SerializeAsString()),
            Hex(Bytes({0x08, 0x01, 0x18, 0x01, 0x20, 0x09})));
}

// What an SDS server sends (a Secret with inline PEM, under §5's type URLs) and what Envoy
// sends (a node with the build version SPIRE gates the SPIFFE validator on).
TEST(ProtoCompat, SdsWireBytes) {
  tls::Secret secret;
  secret.set_name("d");
  secret.mutable_tls_certificate()->mutable_certificate_chain()->set_inline_bytes("c");
  secret.mutable_tls_certificate()->mutable_private_key()->set_inline_bytes("k");
  EXPECT_EQ(Hex(secret.SerializeAsString()),
            Hex(Bytes({0x0a, 0x01, 'd', 0x12, 0x0a,      // name=1, tls_certificate=2
                       0x0a, 0x03, 0x12, 0x01, 'c',      //   certificate_chain=1 {inline_bytes=2}
                       0x12, 0x03, 0x12, 0x01, 'k'})));  //   private_key=2 {inline_bytes=2}
  google::protobuf::Any any;
  ASSERT_TRUE(any.PackFrom(secret));
  EXPECT_EQ(any.type_url(), proto_compat::kSdsSecretTypeUrl);
  ASSERT_TRUE(any.PackFrom(tls::SPIFFECertValidatorConfig()));
  EXPECT_EQ(any.type_url(), proto_compat::kSpiffeValidatorTypeUrl);

  discovery::DiscoveryRequest request;
  ASSERT_TRUE(request.ParseFromString(
      Bytes({0x12, 0x0b, 0x0a, 0x01, 'n',         // node=2 {id=1
             0x42, 0x06, 0x0a, 0x04, 0x08, 0x01,  //   user_agent_build_version=8 {version=1
             0x10, 0x1e,                          //     {major=1, minor=30}}}
             0x2a, 0x01, 'N',                     // response_nonce=5
             0x32, 0x03, 0x12, 0x01, 'x'})));     // error_detail=6 {message=2}
  EXPECT_EQ(request.node().user_agent_build_version().version().minor_number(), 30u);
  EXPECT_EQ(request.response_nonce(), "N");
  EXPECT_EQ(request.error_detail().message(), "x");
}

}  // namespace
}  // namespace tessera
