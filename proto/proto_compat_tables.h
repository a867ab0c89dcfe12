// Expected shape of the SPIRE server API v1 and Tessera notification protos, written from
// shared/reference/SPIRE-API-FACTS.md §1 and §2, and of our subset of Envoy's SDS v3 protos,
// written from shared/reference/SPIFFE-FACTS.md §5 (the kSds* tables), in one notation. Only
// proto_compat_test.cc includes this; it is data, not an API.
#ifndef TESSERA_PROTO_PROTO_COMPAT_TABLES_H_
#define TESSERA_PROTO_PROTO_COMPAT_TABLES_H_

#include <string_view>

namespace tessera::proto_compat {

struct Row {
  std::string_view name;
  std::string_view spec;
};

// Full method path -> "[stream ]Request -> [stream ]Response" (SPIRE-API-FACTS.md §2).
constexpr Row kMethods[] = {
    {"/spire.api.server.agent.v1.Agent/CountAgents", "CountAgentsRequest -> CountAgentsResponse"},
    {"/spire.api.server.agent.v1.Agent/ListAgents", "ListAgentsRequest -> ListAgentsResponse"},
    {"/spire.api.server.agent.v1.Agent/GetAgent", "GetAgentRequest -> types.Agent"},
    {"/spire.api.server.agent.v1.Agent/DeleteAgent", "DeleteAgentRequest -> google.protobuf.Empty"},
    {"/spire.api.server.agent.v1.Agent/BanAgent", "BanAgentRequest -> google.protobuf.Empty"},
    {"/spire.api.server.agent.v1.Agent/AttestAgent",
     "stream AttestAgentRequest -> stream AttestAgentResponse"},
    {"/spire.api.server.agent.v1.Agent/RenewAgent", "RenewAgentRequest -> RenewAgentResponse"},
    {"/spire.api.server.agent.v1.Agent/CreateJoinToken",
     "CreateJoinTokenRequest -> types.JoinToken"},
    {"/spire.api.server.agent.v1.Agent/PostStatus", "PostStatusRequest -> PostStatusResponse"},
    {"/spire.api.server.svid.v1.SVID/MintX509SVID", "MintX509SVIDRequest -> MintX509SVIDResponse"},
    {"/spire.api.server.svid.v1.SVID/MintJWTSVID", "MintJWTSVIDRequest -> MintJWTSVIDResponse"},
    {"/spire.api.server.svid.v1.SVID/BatchNewX509SVID",
     "BatchNewX509SVIDRequest -> BatchNewX509SVIDResponse"},
    {"/spire.api.server.svid.v1.SVID/NewJWTSVID", "NewJWTSVIDRequest -> NewJWTSVIDResponse"},
    {"/spire.api.server.svid.v1.SVID/NewDownstreamX509CA",
     "NewDownstreamX509CARequest -> NewDownstreamX509CAResponse"},
    {"/spire.api.server.entry.v1.Entry/CountEntries",
     "CountEntriesRequest -> CountEntriesResponse"},
    {"/spire.api.server.entry.v1.Entry/ListEntries", "ListEntriesRequest -> ListEntriesResponse"},
    {"/spire.api.server.entry.v1.Entry/GetEntry", "GetEntryRequest -> types.Entry"},
    {"/spire.api.server.entry.v1.Entry/BatchCreateEntry",
     "BatchCreateEntryRequest -> BatchCreateEntryResponse"},
    {"/spire.api.server.entry.v1.Entry/BatchUpdateEntry",
     "BatchUpdateEntryRequest -> BatchUpdateEntryResponse"},
    {"/spire.api.server.entry.v1.Entry/BatchDeleteEntry",
     "BatchDeleteEntryRequest -> BatchDeleteEntryResponse"},
    {"/spire.api.server.entry.v1.Entry/GetAuthorizedEntries",
     "GetAuthorizedEntriesRequest -> GetAuthorizedEntriesResponse"},
    {"/spire.api.server.entry.v1.Entry/SyncAuthorizedEntries",
     "stream SyncAuthorizedEntriesRequest -> stream SyncAuthorizedEntriesResponse"},
    {"/spire.api.server.bundle.v1.Bundle/CountBundles",
     "CountBundlesRequest -> CountBundlesResponse"},
    {"/spire.api.server.bundle.v1.Bundle/GetBundle", "GetBundleRequest -> types.Bundle"},
    {"/spire.api.server.bundle.v1.Bundle/AppendBundle", "AppendBundleRequest -> types.Bundle"},
    {"/spire.api.server.bundle.v1.Bundle/PublishJWTAuthority",
     "PublishJWTAuthorityRequest -> PublishJWTAuthorityResponse"},
    {"/spire.api.server.bundle.v1.Bundle/ListFederatedBundles",
     "ListFederatedBundlesRequest -> ListFederatedBundlesResponse"},
    {"/spire.api.server.bundle.v1.Bundle/GetFederatedBundle",
     "GetFederatedBundleRequest -> types.Bundle"},
    {"/spire.api.server.bundle.v1.Bundle/BatchCreateFederatedBundle",
     "BatchCreateFederatedBundleRequest -> BatchCreateFederatedBundleResponse"},
    {"/spire.api.server.bundle.v1.Bundle/BatchUpdateFederatedBundle",
     "BatchUpdateFederatedBundleRequest -> BatchUpdateFederatedBundleResponse"},
    {"/spire.api.server.bundle.v1.Bundle/BatchSetFederatedBundle",
     "BatchSetFederatedBundleRequest -> BatchSetFederatedBundleResponse"},
    {"/spire.api.server.bundle.v1.Bundle/BatchDeleteFederatedBundle",
     "BatchDeleteFederatedBundleRequest -> BatchDeleteFederatedBundleResponse"},
    {"/spire.api.server.trustdomain.v1.TrustDomain/ListFederationRelationships",
     "ListFederationRelationshipsRequest -> ListFederationRelationshipsResponse"},
    {"/spire.api.server.trustdomain.v1.TrustDomain/GetFederationRelationship",
     "GetFederationRelationshipRequest -> types.FederationRelationship"},
    {"/spire.api.server.trustdomain.v1.TrustDomain/BatchCreateFederationRelationship",
     "BatchCreateFederationRelationshipRequest -> BatchCreateFederationRelationshipResponse"},
    {"/spire.api.server.trustdomain.v1.TrustDomain/BatchUpdateFederationRelationship",
     "BatchUpdateFederationRelationshipRequest -> BatchUpdateFederationRelationshipResponse"},
    {"/spire.api.server.trustdomain.v1.TrustDomain/BatchDeleteFederationRelationship",
     "BatchDeleteFederationRelationshipRequest -> BatchDeleteFederationRelationshipResponse"},
    {"/spire.api.server.trustdomain.v1.TrustDomain/RefreshBundle",
     "RefreshBundleRequest -> google.protobuf.Empty"},
    {"/tessera.server.v1.Notifier/Watch", "WatchRequest -> stream Notification"},
};

constexpr std::string_view kAgentFilter =
    "by_attestation_type=1 string; by_selector_match=2 types.SelectorMatch; "
    "by_banned=3 google.protobuf.BoolValue; by_can_reattest=4 google.protobuf.BoolValue; "
    "by_expires_before=5 string";
constexpr std::string_view kEntryFilter =
    "by_spiffe_id=1 types.SPIFFEID; by_parent_id=2 types.SPIFFEID; "
    "by_selectors=3 types.SelectorMatch; by_federates_with=4 types.FederatesWithMatch; "
    "by_hint=5 google.protobuf.StringValue; by_downstream=6 google.protobuf.BoolValue";
constexpr std::string_view kKey =
    "public_key=1 bytes; key_id=2 string; expires_at=3 int64; tainted=4 bool";

// Message full name -> its fields in number order (SPIRE-API-FACTS.md §1, §2). Type names are
// relative to the message's own package; "types." is spire.api.types.
constexpr Row kMessages[] = {
    // spire.api.types
    {"spire.api.types.SPIFFEID", "trust_domain=1 string; path=2 string"},
    {"spire.api.types.Selector", "type=1 string; value=2 string"},
    {"spire.api.types.SelectorMatch",
     "selectors=1 rep Selector; match=2 SelectorMatch.MatchBehavior"},
    {"spire.api.types.FederatesWithMatch",
     "trust_domains=1 rep string; match=2 FederatesWithMatch.MatchBehavior"},
    {"spire.api.types.Entry",
     "id=1 string; spiffe_id=2 SPIFFEID; parent_id=3 SPIFFEID; selectors=4 rep Selector; "
     "x509_svid_ttl=5 int32; federates_with=6 rep string; admin=7 bool; downstream=8 bool; "
     "expires_at=9 int64; dns_names=10 rep string; revision_number=11 int64; "
     "store_svid=12 bool; jwt_svid_ttl=13 int32; hint=14 string; created_at=15 int64; "
     "additional_attributes=16 Entry.AdditionalAttributes"},
    {"spire.api.types.Entry.AdditionalAttributes",
     "disable_x509_svid_prefetch=1 bool; jwt_svid_include_jti=2 bool"},
    {"spire.api.types.EntryMask",
     "spiffe_id=2 bool; parent_id=3 bool; selectors=4 bool; x509_svid_ttl=5 bool; "
     "federates_with=6 bool; admin=7 bool; downstream=8 bool; expires_at=9 bool; "
     "dns_names=10 bool; revision_number=11 bool; store_svid=12 bool; jwt_svid_ttl=13 bool; "
     "hint=14 bool; created_at=15 bool; additional_attributes=16 bool"},
    {"spire.api.types.Agent",
     "id=1 SPIFFEID; attestation_type=2 string; x509svid_serial_number=3 string; "
     "x509svid_expires_at=4 int64; selectors=5 rep Selector; banned=6 bool; "
     "can_reattest=7 bool; agent_version=8 string"},
    {"spire.api.types.AgentMask",
     "attestation_type=2 bool; x509svid_serial_number=3 bool; x509svid_expires_at=4 bool; "
     "selectors=5 bool; banned=6 bool; can_reattest=7 bool; agent_version=8 bool"},
    {"spire.api.types.AttestationData", "type=1 string; payload=2 bytes"},
    {"spire.api.types.X509SVID",
     "cert_chain=1 rep bytes; id=2 SPIFFEID; expires_at=3 int64; hint=4 string"},
    {"spire.api.types.JWTSVID",
     "token=1 string; id=2 SPIFFEID; expires_at=3 int64; issued_at=4 int64; hint=5 string"},
    {"spire.api.types.Bundle",
     "trust_domain=1 string; x509_authorities=2 rep X509Certificate; "
     "jwt_authorities=3 rep JWTKey; refresh_hint=4 int64; sequence_number=5 uint64; "
     "wit_authorities=6 rep WITKey"},
    {"spire.api.types.X509Certificate", "asn1=1 bytes; tainted=2 bool"},
    {"spire.api.types.JWTKey", kKey},
    {"spire.api.types.WITKey", kKey},
    {"spire.api.types.BundleMask",
     "x509_authorities=2 bool; jwt_authorities=3 bool; refresh_hint=4 bool; "
     "sequence_number=5 bool; wit_authorities=6 bool"},
    {"spire.api.types.Status", "code=1 int32; message=2 string"},
    {"spire.api.types.PermissionDeniedDetails", "reason=1 PermissionDeniedDetails.Reason"},
    {"spire.api.types.JoinToken", "value=1 string; expires_at=2 int64"},
    {"spire.api.types.FederationRelationship",
     "trust_domain=1 string; bundle_endpoint_url=2 string; "
     "https_web=3 HTTPSWebProfile oneof(bundle_endpoint_profile); "
     "https_spiffe=4 HTTPSSPIFFEProfile oneof(bundle_endpoint_profile); "
     "trust_domain_bundle=5 Bundle"},
    {"spire.api.types.HTTPSWebProfile", ""},
    {"spire.api.types.HTTPSSPIFFEProfile", "endpoint_spiffe_id=1 string"},
    {"spire.api.types.FederationRelationshipMask",
     "bundle_endpoint_url=1 bool; bundle_endpoint_profile=2 bool; trust_domain_bundle=3 bool"},
    // spire.api.server.agent.v1
    {"spire.api.server.agent.v1.CountAgentsRequest", "filter=1 CountAgentsRequest.Filter"},
    {"spire.api.server.agent.v1.CountAgentsRequest.Filter", kAgentFilter},
    {"spire.api.server.agent.v1.CountAgentsResponse", "count=1 int32"},
    {"spire.api.server.agent.v1.ListAgentsRequest",
     "filter=1 ListAgentsRequest.Filter; output_mask=2 types.AgentMask; page_size=3 int32; "
     "page_token=4 string"},
    {"spire.api.server.agent.v1.ListAgentsRequest.Filter", kAgentFilter},
    {"spire.api.server.agent.v1.ListAgentsResponse",
     "agents=1 rep types.Agent; next_page_token=2 string"},
    {"spire.api.server.agent.v1.GetAgentRequest",
     "id=1 types.SPIFFEID; output_mask=2 types.AgentMask"},
    {"spire.api.server.agent.v1.DeleteAgentRequest", "id=1 types.SPIFFEID"},
    {"spire.api.server.agent.v1.BanAgentRequest", "id=1 types.SPIFFEID"},
    {"spire.api.server.agent.v1.AttestAgentRequest",
     "params=1 AttestAgentRequest.Params oneof(step); challenge_response=2 bytes oneof(step)"},
    {"spire.api.server.agent.v1.AttestAgentRequest.Params",
     "data=1 types.AttestationData; params=2 AgentX509SVIDParams"},
    {"spire.api.server.agent.v1.AttestAgentResponse",
     "result=1 AttestAgentResponse.Result oneof(step); challenge=2 bytes oneof(step)"},
    {"spire.api.server.agent.v1.AttestAgentResponse.Result",
     "svid=1 types.X509SVID; reattestable=2 bool"},
    {"spire.api.server.agent.v1.RenewAgentRequest", "params=1 AgentX509SVIDParams"},
    {"spire.api.server.agent.v1.RenewAgentResponse", "svid=1 types.X509SVID"},
    {"spire.api.server.agent.v1.CreateJoinTokenRequest",
     "ttl=1 int32; token=2 string; agent_id=3 types.SPIFFEID"},
    {"spire.api.server.agent.v1.PostStatusRequest",
     "current_bundle_serial=1 uint64; agent_version=2 string"},
    {"spire.api.server.agent.v1.PostStatusResponse", ""},
    {"spire.api.server.agent.v1.AgentX509SVIDParams", "csr=1 bytes"},
    // spire.api.server.svid.v1
    {"spire.api.server.svid.v1.MintX509SVIDRequest", "csr=1 bytes; ttl=2 int32"},
    {"spire.api.server.svid.v1.MintX509SVIDResponse", "svid=1 types.X509SVID"},
    {"spire.api.server.svid.v1.MintJWTSVIDRequest",
     "id=1 types.SPIFFEID; audience=2 rep string; ttl=3 int32"},
    {"spire.api.server.svid.v1.MintJWTSVIDResponse", "svid=1 types.JWTSVID"},
    {"spire.api.server.svid.v1.BatchNewX509SVIDRequest", "params=1 rep NewX509SVIDParams"},
    {"spire.api.server.svid.v1.BatchNewX509SVIDResponse",
     "results=1 rep BatchNewX509SVIDResponse.Result"},
    {"spire.api.server.svid.v1.BatchNewX509SVIDResponse.Result",
     "status=1 types.Status; svid=2 types.X509SVID"},
    {"spire.api.server.svid.v1.NewJWTSVIDRequest", "entry_id=1 string; audience=2 rep string"},
    {"spire.api.server.svid.v1.NewJWTSVIDResponse", "svid=1 types.JWTSVID"},
    {"spire.api.server.svid.v1.NewDownstreamX509CARequest", "csr=1 bytes; preferred_ttl=2 int32"},
    {"spire.api.server.svid.v1.NewDownstreamX509CAResponse",
     "ca_cert_chain=1 rep bytes; x509_authorities=2 rep bytes"},
    {"spire.api.server.svid.v1.NewX509SVIDParams", "entry_id=1 string; csr=2 bytes"},
    // spire.api.server.entry.v1
    {"spire.api.server.entry.v1.CountEntriesRequest", "filter=1 CountEntriesRequest.Filter"},
    {"spire.api.server.entry.v1.CountEntriesRequest.Filter", kEntryFilter},
    {"spire.api.server.entry.v1.CountEntriesResponse", "count=1 int32"},
    {"spire.api.server.entry.v1.ListEntriesRequest",
     "filter=1 ListEntriesRequest.Filter; output_mask=2 types.EntryMask; page_size=3 int32; "
     "page_token=4 string"},
    {"spire.api.server.entry.v1.ListEntriesRequest.Filter", kEntryFilter},
    {"spire.api.server.entry.v1.ListEntriesResponse",
     "entries=1 rep types.Entry; next_page_token=2 string"},
    {"spire.api.server.entry.v1.GetEntryRequest", "id=1 string; output_mask=2 types.EntryMask"},
    {"spire.api.server.entry.v1.BatchCreateEntryRequest",
     "entries=1 rep types.Entry; output_mask=2 types.EntryMask"},
    {"spire.api.server.entry.v1.BatchCreateEntryResponse",
     "results=1 rep BatchCreateEntryResponse.Result"},
    {"spire.api.server.entry.v1.BatchCreateEntryResponse.Result",
     "status=1 types.Status; entry=2 types.Entry"},
    {"spire.api.server.entry.v1.BatchUpdateEntryRequest",
     "entries=1 rep types.Entry; input_mask=2 types.EntryMask; output_mask=3 types.EntryMask"},
    {"spire.api.server.entry.v1.BatchUpdateEntryResponse",
     "results=1 rep BatchUpdateEntryResponse.Result"},
    {"spire.api.server.entry.v1.BatchUpdateEntryResponse.Result",
     "status=1 types.Status; entry=2 types.Entry"},
    {"spire.api.server.entry.v1.BatchDeleteEntryRequest", "ids=1 rep string"},
    {"spire.api.server.entry.v1.BatchDeleteEntryResponse",
     "results=1 rep BatchDeleteEntryResponse.Result"},
    {"spire.api.server.entry.v1.BatchDeleteEntryResponse.Result",
     "status=1 types.Status; id=2 string"},
    {"spire.api.server.entry.v1.GetAuthorizedEntriesRequest", "output_mask=1 types.EntryMask"},
    {"spire.api.server.entry.v1.GetAuthorizedEntriesResponse", "entries=1 rep types.Entry"},
    {"spire.api.server.entry.v1.SyncAuthorizedEntriesRequest",
     "output_mask=1 types.EntryMask; ids=2 rep string"},
    {"spire.api.server.entry.v1.SyncAuthorizedEntriesResponse",
     "entry_revisions=1 rep EntryRevision; entries=2 rep types.Entry; more=3 bool"},
    {"spire.api.server.entry.v1.EntryRevision",
     "id=1 string; revision_number=2 int64; created_at=3 int64"},
    // spire.api.server.bundle.v1
    {"spire.api.server.bundle.v1.CountBundlesRequest", ""},
    {"spire.api.server.bundle.v1.CountBundlesResponse", "count=1 int32"},
    {"spire.api.server.bundle.v1.GetBundleRequest", "output_mask=1 types.BundleMask"},
    {"spire.api.server.bundle.v1.AppendBundleRequest",
     "x509_authorities=1 rep types.X509Certificate; jwt_authorities=2 rep types.JWTKey; "
     "output_mask=3 types.BundleMask; wit_authorities=4 rep types.WITKey"},
    {"spire.api.server.bundle.v1.PublishJWTAuthorityRequest", "jwt_authority=1 types.JWTKey"},
    {"spire.api.server.bundle.v1.PublishJWTAuthorityResponse",
     "jwt_authorities=1 rep types.JWTKey"},
    {"spire.api.server.bundle.v1.ListFederatedBundlesRequest",
     "output_mask=1 types.BundleMask; page_size=2 int32; page_token=3 string"},
    {"spire.api.server.bundle.v1.ListFederatedBundlesResponse",
     "bundles=1 rep types.Bundle; next_page_token=2 string"},
    {"spire.api.server.bundle.v1.GetFederatedBundleRequest",
     "trust_domain=1 string; output_mask=2 types.BundleMask"},
    {"spire.api.server.bundle.v1.BatchCreateFederatedBundleRequest",
     "bundle=1 rep types.Bundle; output_mask=2 types.BundleMask"},
    {"spire.api.server.bundle.v1.BatchCreateFederatedBundleResponse",
     "results=1 rep BatchCreateFederatedBundleResponse.Result"},
    {"spire.api.server.bundle.v1.BatchCreateFederatedBundleResponse.Result",
     "status=1 types.Status; bundle=2 types.Bundle"},
    {"spire.api.server.bundle.v1.BatchUpdateFederatedBundleRequest",
     "bundle=1 rep types.Bundle; input_mask=2 types.BundleMask; output_mask=3 types.BundleMask"},
    {"spire.api.server.bundle.v1.BatchUpdateFederatedBundleResponse",
     "results=1 rep BatchUpdateFederatedBundleResponse.Result"},
    {"spire.api.server.bundle.v1.BatchUpdateFederatedBundleResponse.Result",
     "status=1 types.Status; bundle=2 types.Bundle"},
    {"spire.api.server.bundle.v1.BatchSetFederatedBundleRequest",
     "bundle=1 rep types.Bundle; output_mask=2 types.BundleMask"},
    {"spire.api.server.bundle.v1.BatchSetFederatedBundleResponse",
     "results=1 rep BatchSetFederatedBundleResponse.Result"},
    {"spire.api.server.bundle.v1.BatchSetFederatedBundleResponse.Result",
     "status=1 types.Status; bundle=2 types.Bundle"},
    {"spire.api.server.bundle.v1.BatchDeleteFederatedBundleRequest",
     "trust_domains=1 rep string; mode=2 BatchDeleteFederatedBundleRequest.Mode"},
    {"spire.api.server.bundle.v1.BatchDeleteFederatedBundleResponse",
     "results=1 rep BatchDeleteFederatedBundleResponse.Result"},
    {"spire.api.server.bundle.v1.BatchDeleteFederatedBundleResponse.Result",
     "status=1 types.Status; trust_domain=2 string"},
    // spire.api.server.trustdomain.v1
    {"spire.api.server.trustdomain.v1.ListFederationRelationshipsRequest",
     "output_mask=1 types.FederationRelationshipMask; page_size=2 int32; page_token=3 string"},
    {"spire.api.server.trustdomain.v1.ListFederationRelationshipsResponse",
     "federation_relationships=1 rep types.FederationRelationship; next_page_token=2 string"},
    {"spire.api.server.trustdomain.v1.GetFederationRelationshipRequest",
     "trust_domain=1 string; output_mask=2 types.FederationRelationshipMask"},
    {"spire.api.server.trustdomain.v1.BatchCreateFederationRelationshipRequest",
     "federation_relationships=1 rep types.FederationRelationship; "
     "output_mask=2 types.FederationRelationshipMask"},
    {"spire.api.server.trustdomain.v1.BatchCreateFederationRelationshipResponse",
     "results=1 rep BatchCreateFederationRelationshipResponse.Result"},
    {"spire.api.server.trustdomain.v1.BatchCreateFederationRelationshipResponse.Result",
     "status=1 types.Status; federation_relationship=2 types.FederationRelationship"},
    {"spire.api.server.trustdomain.v1.BatchUpdateFederationRelationshipRequest",
     "federation_relationships=1 rep types.FederationRelationship; "
     "input_mask=2 types.FederationRelationshipMask; "
     "output_mask=3 types.FederationRelationshipMask"},
    {"spire.api.server.trustdomain.v1.BatchUpdateFederationRelationshipResponse",
     "results=1 rep BatchUpdateFederationRelationshipResponse.Result"},
    {"spire.api.server.trustdomain.v1.BatchUpdateFederationRelationshipResponse.Result",
     "status=1 types.Status; federation_relationship=2 types.FederationRelationship"},
    {"spire.api.server.trustdomain.v1.BatchDeleteFederationRelationshipRequest",
     "trust_domains=1 rep string"},
    {"spire.api.server.trustdomain.v1.BatchDeleteFederationRelationshipResponse",
     "results=1 rep BatchDeleteFederationRelationshipResponse.Result"},
    {"spire.api.server.trustdomain.v1.BatchDeleteFederationRelationshipResponse.Result",
     "status=1 types.Status; trust_domain=2 string"},
    {"spire.api.server.trustdomain.v1.RefreshBundleRequest", "trust_domain=1 string"},
    // tessera.server.v1
    {"tessera.server.v1.WatchRequest", ""},
    {"tessera.server.v1.Notification",
     "revision=1 uint64; entries_changed=2 bool; bundle_changed=3 bool; "
     "bundle_sequence_number=4 uint64"},
};

constexpr std::string_view kMatchBehavior =
    "MATCH_EXACT=0; MATCH_SUBSET=1; MATCH_SUPERSET=2; MATCH_ANY=3";

constexpr Row kEnums[] = {
    {"spire.api.types.SelectorMatch.MatchBehavior", kMatchBehavior},
    {"spire.api.types.FederatesWithMatch.MatchBehavior", kMatchBehavior},
    {"spire.api.types.PermissionDeniedDetails.Reason",
     "UNKNOWN=0; AGENT_EXPIRED=1; AGENT_NOT_ATTESTED=2; AGENT_NOT_ACTIVE=3; AGENT_BANNED=4; "
     "AGENT_MUST_REATTEST=5"},
    {"spire.api.server.bundle.v1.BatchDeleteFederatedBundleRequest.Mode",
     "RESTRICT=0; DELETE=1; DISSOCIATE=2"},
};

// --- Envoy SDS v3 (SPIFFE-FACTS.md §5) ---------------------------------------------------------
// Same notation. Type names are relative to the longest package prefix shared with the
// message's (or service's) own package, as .proto files write them: from
// envoy.service.discovery.v3, envoy.config.core.v3.Node is "config.core.v3.Node". Fields Envoy
// has but our subset leaves out (see each .proto's header) are absent here on purpose.

constexpr Row kSdsMethods[] = {
    {"/envoy.service.secret.v3.SecretDiscoveryService/DeltaSecrets",
     "stream discovery.v3.DeltaDiscoveryRequest -> stream discovery.v3.DeltaDiscoveryResponse"},
    {"/envoy.service.secret.v3.SecretDiscoveryService/StreamSecrets",
     "stream discovery.v3.DiscoveryRequest -> stream discovery.v3.DiscoveryResponse"},
    {"/envoy.service.secret.v3.SecretDiscoveryService/FetchSecrets",
     "discovery.v3.DiscoveryRequest -> discovery.v3.DiscoveryResponse"},
};

constexpr std::string_view kSdsSecretTypeUrl =
    "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret";
constexpr std::string_view kSpiffeValidatorTypeUrl =
    "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.SPIFFECertValidatorConfig";

constexpr Row kSdsMessages[] = {
    // envoy.service.discovery.v3
    {"envoy.service.discovery.v3.DiscoveryRequest",
     "version_info=1 string; node=2 config.core.v3.Node; resource_names=3 rep string; "
     "type_url=4 string; response_nonce=5 string; error_detail=6 google.rpc.Status; "
     "resource_locators=7 rep ResourceLocator"},
    {"envoy.service.discovery.v3.DiscoveryResponse",
     "version_info=1 string; resources=2 rep google.protobuf.Any; canary=3 bool; "
     "type_url=4 string; nonce=5 string; control_plane=6 config.core.v3.ControlPlane"},
    {"envoy.service.discovery.v3.DeltaDiscoveryRequest",
     "node=1 config.core.v3.Node; type_url=2 string; resource_names_subscribe=3 rep string; "
     "resource_names_unsubscribe=4 rep string; "
     "initial_resource_versions=5 map<string, string>; response_nonce=6 string; "
     "error_detail=7 google.rpc.Status; resource_locators_subscribe=8 rep ResourceLocator; "
     "resource_locators_unsubscribe=9 rep ResourceLocator"},
    {"envoy.service.discovery.v3.DeltaDiscoveryResponse",
     "system_version_info=1 string; resources=2 rep Resource; type_url=4 string; "
     "nonce=5 string; removed_resources=6 rep string; "
     "control_plane=7 config.core.v3.ControlPlane"},
    {"envoy.service.discovery.v3.Resource",
     "version=1 string; resource=2 google.protobuf.Any; name=3 string; aliases=4 rep string; "
     "ttl=6 google.protobuf.Duration; cache_control=7 Resource.CacheControl"},
    {"envoy.service.discovery.v3.ResourceLocator",
     "name=1 string; dynamic_parameters=2 map<string, string>"},
    // envoy.config.core.v3 and envoy.type.v3
    {"envoy.config.core.v3.Node",
     "id=1 string; cluster=2 string; metadata=3 google.protobuf.Struct; locality=4 Locality; "
     "user_agent_name=6 string; user_agent_version=7 string oneof(user_agent_version_type); "
     "user_agent_build_version=8 BuildVersion oneof(user_agent_version_type); "
     "extensions=9 rep Extension; client_features=10 rep string"},
    {"envoy.config.core.v3.BuildVersion",
     "version=1 type.v3.SemanticVersion; metadata=2 google.protobuf.Struct"},
    {"envoy.type.v3.SemanticVersion",
     "major_number=1 uint32; minor_number=2 uint32; patch=3 uint32"},
    {"envoy.config.core.v3.ControlPlane", "identifier=1 string"},
    {"envoy.config.core.v3.DataSource",
     "filename=1 string oneof(specifier); inline_bytes=2 bytes oneof(specifier); "
     "inline_string=3 string oneof(specifier); environment_variable=4 string oneof(specifier)"},
    {"envoy.config.core.v3.TypedExtensionConfig",
     "name=1 string; typed_config=2 google.protobuf.Any"},
    // envoy.extensions.transport_sockets.tls.v3
    {"envoy.extensions.transport_sockets.tls.v3.Secret",
     "name=1 string; tls_certificate=2 TlsCertificate oneof(type); "
     "session_ticket_keys=3 TlsSessionTicketKeys oneof(type); "
     "validation_context=4 CertificateValidationContext oneof(type); "
     "generic_secret=5 GenericSecret oneof(type)"},
    {"envoy.extensions.transport_sockets.tls.v3.TlsSessionTicketKeys",
     "keys=1 rep config.core.v3.DataSource"},
    {"envoy.extensions.transport_sockets.tls.v3.GenericSecret",
     "secret=1 config.core.v3.DataSource; secrets=2 map<string, config.core.v3.DataSource>"},
    {"envoy.extensions.transport_sockets.tls.v3.TlsCertificate",
     "certificate_chain=1 config.core.v3.DataSource; private_key=2 config.core.v3.DataSource; "
     "password=3 config.core.v3.DataSource; ocsp_staple=4 config.core.v3.DataSource; "
     "signed_certificate_timestamp=5 rep config.core.v3.DataSource; "
     "pkcs12=8 config.core.v3.DataSource"},
    {"envoy.extensions.transport_sockets.tls.v3.CertificateValidationContext",
     "trusted_ca=1 config.core.v3.DataSource; verify_certificate_hash=2 rep string; "
     "verify_certificate_spki=3 rep string; "
     "require_signed_certificate_timestamp=6 google.protobuf.BoolValue; "
     "crl=7 config.core.v3.DataSource; allow_expired_certificate=8 bool; "
     "trust_chain_verification=10 CertificateValidationContext.TrustChainVerification; "
     "custom_validator_config=12 config.core.v3.TypedExtensionConfig; "
     "only_verify_leaf_cert_crl=14 bool; max_verify_depth=16 google.protobuf.UInt32Value"},
    {"envoy.extensions.transport_sockets.tls.v3.SPIFFECertValidatorConfig",
     "trust_domains=1 rep SPIFFECertValidatorConfig.TrustDomain; "
     "trust_bundles=2 config.core.v3.DataSource"},
    {"envoy.extensions.transport_sockets.tls.v3.SPIFFECertValidatorConfig.TrustDomain",
     "name=1 string; trust_bundle=2 config.core.v3.DataSource"},
    // Not spelled out in §5; checked against Envoy's api/ protos so that every message of our
    // files is pinned.
    {"envoy.service.discovery.v3.Resource.CacheControl", "do_not_cache=1 bool"},
    {"envoy.config.core.v3.Locality", "region=1 string; zone=2 string; sub_zone=3 string"},
    {"envoy.config.core.v3.Extension",
     "name=1 string; category=2 string; version=4 BuildVersion; disabled=5 bool; "
     "type_urls=6 rep string"},
    {"envoy.service.secret.v3.SdsDummy", ""},
};

// Not spelled out in §5; from Envoy's common.proto.
constexpr Row kSdsEnums[] = {
    {"envoy.extensions.transport_sockets.tls.v3.CertificateValidationContext."
     "TrustChainVerification",
     "VERIFY_TRUST_CHAIN=0; ACCEPT_UNTRUSTED=1"},
};

}  // namespace tessera::proto_compat

#endif  // TESSERA_PROTO_PROTO_COMPAT_TABLES_H_
