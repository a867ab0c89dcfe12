#include "spiffe/bundle_json.h"

#include <fstream>
#include <limits>
#include <sstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "spiffe/base64.h"
#include "spiffe/jwk.h"
#include "spiffe/x509_test_util.h"

namespace tessera::spiffe {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Json = nlohmann::json;

std::string Message(const absl::Status& s) { return std::string(s.message()); }
TrustDomain Td(std::string_view s) { return *TrustDomain::Parse(s); }
std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Certificate MakeCa(const std::string& cn, const std::string& newkey) {
  return testing::OpensslSelfSignedCa(cn, newkey);
}

struct Fixtures {
  Certificate ec_ca = MakeCa("json-ec-ca", "ec -pkeyopt ec_paramgen_curve:P-256");
  Certificate ec384_ca = MakeCa("json-ec384-ca", "ec -pkeyopt ec_paramgen_curve:P-384");
  Certificate rsa_ca = MakeCa("json-rsa-ca", "rsa:2048");
  PublicKey ec_key = PrivateKey::Generate(KeyType::kEcP256)->public_key();
  PublicKey rsa_key = PrivateKey::Generate(KeyType::kRsa2048)->public_key();
};

const Fixtures& F() {
  static const Fixtures* f = new Fixtures();
  return *f;
}

Bundle FullBundle() {
  Bundle b(Td("example.org"));
  b.AddX509Authority(F().ec_ca);
  b.AddX509Authority(F().rsa_ca);
  b.AddX509Authority(F().ec384_ca);
  EXPECT_TRUE(b.AddJwtAuthority("ec-kid", F().ec_key).ok());
  EXPECT_TRUE(b.AddJwtAuthority("rsa-kid", F().rsa_key).ok());
  b.set_sequence_number(42);
  b.set_refresh_hint(std::chrono::seconds(300));
  return b;
}

Json X509Entry(const Certificate& cert) {
  Json jwk = *PublicKeyToJwk(cert.public_key());
  jwk["use"] = "x509-svid";
  jwk["x5c"] = {Base64Encode(cert.ToDer())};
  return jwk;
}

Json JwtEntry(const PublicKey& key, const std::string& kid) {
  Json jwk = *PublicKeyToJwk(key);
  jwk["use"] = "jwt-svid";
  jwk["kid"] = kid;
  return jwk;
}

absl::StatusOr<Bundle> Parse(const Json& doc) {
  return ParseSpiffeBundle(Td("example.org"), doc.dump());
}

void ExpectParseError(const Json& doc, const std::string& error) {
  auto b = Parse(doc);
  EXPECT_EQ(b.status().code(), absl::StatusCode::kInvalidArgument) << doc.dump();
  EXPECT_THAT(Message(b.status()), HasSubstr(error)) << doc.dump();
}

TEST(SpiffeBundleJsonTest, RoundTripWithEcAndRsaKeys) {
  Bundle b = FullBundle();
  auto json = SpiffeBundleToJson(b);
  ASSERT_TRUE(json.ok()) << json.status();
  auto parsed = ParseSpiffeBundle(Td("example.org"), *json);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(*parsed, b);
  EXPECT_EQ(*SpiffeBundleToJson(*parsed), *json);
}

TEST(SpiffeBundleJsonTest, OutputShape) {
  Json doc = Json::parse(*SpiffeBundleToJson(FullBundle()));
  EXPECT_EQ(doc["spiffe_sequence"], 42);
  EXPECT_EQ(doc["spiffe_refresh_hint"], 300);
  ASSERT_EQ(doc["keys"].size(), 5u);
  const Json& ec = doc["keys"][0];
  EXPECT_EQ(ec["use"], "x509-svid");
  EXPECT_EQ(ec["kty"], "EC");
  EXPECT_EQ(ec["crv"], "P-256");
  EXPECT_FALSE(ec.contains("kid"));
  ASSERT_EQ(ec["x5c"].size(), 1u);
  EXPECT_EQ(*Base64Decode(ec["x5c"][0].get<std::string>()), F().ec_ca.ToDer());
  const Json& rsa = doc["keys"][1];
  EXPECT_EQ(rsa["kty"], "RSA");
  EXPECT_EQ(rsa["e"], "AQAB");
  EXPECT_FALSE(rsa.contains("kid"));
  EXPECT_EQ(doc["keys"][2]["crv"], "P-384");
  const Json& jwt_ec = doc["keys"][3];
  EXPECT_EQ(jwt_ec["use"], "jwt-svid");
  EXPECT_EQ(jwt_ec["kid"], "ec-kid");
  EXPECT_FALSE(jwt_ec.contains("x5c"));
  EXPECT_EQ(doc["keys"][4]["kid"], "rsa-kid");
  EXPECT_EQ(doc["keys"][4]["kty"], "RSA");

  // Without sequence and hint, neither member is written.
  Bundle plain(Td("example.org"));
  EXPECT_EQ(*SpiffeBundleToJson(plain), R"({"keys":[]})");
}

TEST(SpiffeBundleJsonTest, X5cIsStandardBase64DerReadableByOpenSsl) {
  Json doc = Json::parse(*SpiffeBundleToJson(FullBundle()));
  std::string b64 = doc["keys"][1]["x5c"][0];
  std::string pem = "-----BEGIN CERTIFICATE-----\n";
  for (size_t i = 0; i < b64.size(); i += 64) pem += b64.substr(i, 64) + "\n";
  pem += "-----END CERTIFICATE-----\n";
  std::string path = testing::ProcessScratch().Write("x5c.pem", pem);
  testing::CommandResult subject =
      testing::RunCommand("openssl x509 -in " + path + " -noout -subject");
  EXPECT_EQ(subject.exit_code, 0) << subject.output;
  EXPECT_THAT(subject.output, HasSubstr("CN = json-rsa-ca"));
}

TEST(SpiffeBundleJsonTest, ParsesSpecExampleShape) {
  // SPIFFE-FACTS §3's example with real key material.
  Json ec_params = *PublicKeyToJwk(F().ec_key);
  Json ca_params = *PublicKeyToJwk(F().ec_ca.public_key());
  std::string text =
      R"({
    "spiffe_sequence": 2,
    "spiffe_refresh_hint": 300,
    "keys": [
      {"kty":"EC","crv":"P-256","x":")" +
      ca_params["x"].get<std::string>() + R"(","y":")" + ca_params["y"].get<std::string>() +
      R"(","use":"x509-svid","x5c":[")" + Base64Encode(F().ec_ca.ToDer()) +
      R"("]},
      {"kty":"EC","crv":"P-256","x":")" +
      ec_params["x"].get<std::string>() + R"(","y":")" + ec_params["y"].get<std::string>() +
      R"(","use":"jwt-svid","kid":"key-id-1"}
    ]
  })";
  auto b = ParseSpiffeBundle(Td("example.org"), text);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->trust_domain(), Td("example.org"));
  EXPECT_THAT(b->x509_authorities(), ElementsAre(F().ec_ca));
  ASSERT_NE(b->FindJwtAuthority("key-id-1"), nullptr);
  EXPECT_TRUE(b->FindJwtAuthority("key-id-1")->Equals(F().ec_key));
  EXPECT_EQ(b->sequence_number(), 2u);
  EXPECT_EQ(b->refresh_hint(), std::chrono::seconds(300));
}

TEST(SpiffeBundleJsonTest, ParsesBundleFromIndependentProducer) {
  // Written by Python "cryptography" + json for the fuzz seed corpus: two EC CAs, an EC P-384
  // and an RSA JWT key.
  std::string text =
      ReadFile(std::string(TESSERA_TESTDATA_DIR) + "/../fuzz/corpus/spiffe_bundle_fuzz/valid_full");
  ASSERT_FALSE(text.empty());
  auto b = ParseSpiffeBundle(Td("example.org"), text);
  ASSERT_TRUE(b.ok()) << b.status();
  ASSERT_EQ(b->x509_authorities().size(), 2u);
  EXPECT_EQ(b->x509_authorities()[0].SubjectString(), "CN=ca1,O=SPIFFE");
  EXPECT_EQ(b->jwt_authorities().size(), 2u);
  ASSERT_NE(b->FindJwtAuthority("rsa"), nullptr);
  EXPECT_TRUE(b->FindJwtAuthority("rsa")->IsRsa());
  EXPECT_EQ(b->sequence_number(), 2u);
  EXPECT_EQ(b->refresh_hint(), std::chrono::seconds(300));
  auto again = ParseSpiffeBundle(Td("example.org"), *SpiffeBundleToJson(*b));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, *b);
}

TEST(SpiffeBundleJsonTest, EmptyKeysAndUnknownMembers) {
  auto b = Parse(Json{{"keys", Json::array()}});
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_TRUE(b->empty());
  EXPECT_FALSE(b->sequence_number().has_value());
  EXPECT_FALSE(b->refresh_hint().has_value());
  b = Parse(Json{{"keys", {X509Entry(F().ec_ca)}},
                 {"future_member", {{"nested", {1, 2, 3}}}},
                 {"spiffe_sequence", std::numeric_limits<uint64_t>::max()}});
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->x509_authorities().size(), 1u);
  EXPECT_EQ(b->sequence_number(), std::numeric_limits<uint64_t>::max());
}

TEST(SpiffeBundleJsonTest, IgnoresEntriesTheFormatSaysToSkip) {
  Json okp = {{"kty", "OKP"}, {"crv", "Ed25519"}, {"x", "abc"}, {"use", "jwt-svid"}};
  Json oct = {{"kty", "oct"}, {"k", "secret"}, {"use", "jwt-svid"}, {"kid", "hmac"}};
  Json no_use = JwtEntry(F().ec_key, "no-use");
  no_use.erase("use");
  Json wit = JwtEntry(F().ec_key, "wit");
  wit["use"] = "wit-svid";
  Json upper = JwtEntry(F().ec_key, "upper");
  upper["use"] = "JWT-SVID";
  Json sig = JwtEntry(F().ec_key, "sig");
  sig["use"] = "sig";
  Json x509_no_x5c = X509Entry(F().ec_ca);
  x509_no_x5c.erase("x5c");
  Json x509_empty_x5c = X509Entry(F().rsa_ca);
  x509_empty_x5c["x5c"] = Json::array();
  Json good = JwtEntry(F().rsa_key, "good");
  auto b =
      Parse(Json{{"keys", {okp, oct, no_use, wit, upper, sig, x509_no_x5c, x509_empty_x5c, good}}});
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_TRUE(b->x509_authorities().empty());
  ASSERT_EQ(b->jwt_authorities().size(), 1u);
  EXPECT_EQ(b->jwt_authorities().begin()->first, "good");
}

TEST(SpiffeBundleJsonTest, KidOnX509EntryIsIgnored) {
  Json entry = X509Entry(F().ec_ca);
  entry["kid"] = "ignored";
  auto b = Parse(Json{{"keys", {entry}}});
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->x509_authorities().size(), 1u);
  EXPECT_TRUE(b->jwt_authorities().empty());
}

TEST(SpiffeBundleJsonTest, RejectsMalformedDocuments) {
  auto not_json = ParseSpiffeBundle(Td("example.org"), "{\"keys\": [");
  EXPECT_EQ(not_json.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(not_json.status()),
              HasSubstr("spiffe bundle for \"example.org\": invalid JSON"));
  ExpectParseError(Json::array(), "must be a JSON object");
  ExpectParseError(Json{{"spiffe_sequence", 1}}, "missing \"keys\"");
  ExpectParseError(Json{{"keys", Json::object()}}, "\"keys\" must be an array");
  ExpectParseError(Json{{"keys", {"x"}}}, "keys[0]: must be a JSON object");
  auto dup = ParseSpiffeBundle(Td("example.org"), R"({"keys":[],"keys":[]})");
  EXPECT_THAT(Message(dup.status()), HasSubstr("duplicate member \"keys\""));
  auto large = ParseSpiffeBundle(
      Td("example.org"), R"({"keys":[],"x":")" + std::string(kMaxBundleJsonBytes, 'a') + R"("})");
  EXPECT_THAT(Message(large.status()), HasSubstr("larger than"));
  std::string deep = R"({"keys":[],"x":)" + std::string(100, '[') + std::string(100, ']') + "}";
  EXPECT_THAT(Message(ParseSpiffeBundle(Td("example.org"), deep).status()),
              HasSubstr("nesting is deeper than"));
}

TEST(SpiffeBundleJsonTest, RejectsBadEntries) {
  Json no_kty = JwtEntry(F().ec_key, "k");
  no_kty.erase("kty");
  ExpectParseError(Json{{"keys", {no_kty}}}, "keys[0]: missing \"kty\"");
  Json kty_number = JwtEntry(F().ec_key, "k");
  kty_number["kty"] = 1;
  ExpectParseError(Json{{"keys", {kty_number}}}, "\"kty\" must be a string");
  Json use_number = JwtEntry(F().ec_key, "k");
  use_number["use"] = true;
  ExpectParseError(Json{{"keys", {use_number}}}, "\"use\" must be a string");

  Json two_certs = X509Entry(F().ec_ca);
  two_certs["x5c"].push_back(Base64Encode(F().rsa_ca.ToDer()));
  ExpectParseError(Json{{"keys", {two_certs}}},
                   "keys[0]: \"x5c\" must hold exactly one certificate, got 2");
  Json x5c_string = X509Entry(F().ec_ca);
  x5c_string["x5c"] = Base64Encode(F().ec_ca.ToDer());
  ExpectParseError(Json{{"keys", {x5c_string}}}, "\"x5c\" must be an array");
  Json x5c_number = X509Entry(F().ec_ca);
  x5c_number["x5c"] = {5};
  ExpectParseError(Json{{"keys", {x5c_number}}}, "\"x5c\" must hold strings");
  Json x5c_url = X509Entry(F().ec_ca);
  x5c_url["x5c"] = {Base64UrlEncode(F().ec_ca.ToDer())};
  ExpectParseError(Json{{"keys", {x5c_url}}}, "keys[0]: \"x5c\": invalid base64");
  Json x5c_garbage = X509Entry(F().ec_ca);
  x5c_garbage["x5c"] = {Base64Encode("not a certificate")};
  ExpectParseError(Json{{"keys", {x5c_garbage}}}, "keys[0]: \"x5c\"");
  Json mismatch = X509Entry(F().ec_ca);
  Json other_params = *PublicKeyToJwk(F().ec_key);
  mismatch["x"] = other_params["x"];
  mismatch["y"] = other_params["y"];
  ExpectParseError(Json{{"keys", {mismatch}}}, "key parameters do not match");
  Json x509_no_params = X509Entry(F().ec_ca);
  x509_no_params.erase("x");
  ExpectParseError(Json{{"keys", {x509_no_params}}}, "jwk: missing \"x\"");

  Json no_kid = JwtEntry(F().ec_key, "k");
  no_kid.erase("kid");
  ExpectParseError(Json{{"keys", {X509Entry(F().ec_ca), no_kid}}},
                   "keys[1]: JWT authority has no \"kid\"");
  ExpectParseError(Json{{"keys", {JwtEntry(F().ec_key, "")}}}, "JWT authority has no \"kid\"");
  Json kid_number = JwtEntry(F().ec_key, "k");
  kid_number["kid"] = 3;
  ExpectParseError(Json{{"keys", {kid_number}}}, "\"kid\" must be a string");
  ExpectParseError(Json{{"keys", {JwtEntry(F().ec_key, "k"), JwtEntry(F().rsa_key, "k")}}},
                   "keys[1]: duplicate \"kid\" \"k\"");
  ExpectParseError(Json{{"keys", {JwtEntry(F().ec_key, "k"), JwtEntry(F().ec_key, "k")}}},
                   "duplicate \"kid\" \"k\"");
  Json off_curve = JwtEntry(F().ec_key, "k");
  std::string y = *Base64UrlDecode(off_curve["y"].get<std::string>());
  y[5] ^= 1;
  off_curve["y"] = Base64UrlEncode(y);
  ExpectParseError(Json{{"keys", {off_curve}}}, "keys[0]: jwk: ");
}

TEST(SpiffeBundleJsonTest, RejectsBadSpiffeMembers) {
  for (const Json& bad : {Json(-1), Json(1.5), Json("2"), Json(nullptr), Json(true)}) {
    ExpectParseError(Json{{"keys", Json::array()}, {"spiffe_sequence", bad}},
                     "\"spiffe_sequence\" must be a non-negative integer");
    ExpectParseError(Json{{"keys", Json::array()}, {"spiffe_refresh_hint", bad}},
                     "\"spiffe_refresh_hint\" must be a non-negative integer");
  }
  ExpectParseError(
      Json{{"keys", Json::array()}, {"spiffe_refresh_hint", std::numeric_limits<uint64_t>::max()}},
      "\"spiffe_refresh_hint\" must be a non-negative integer");
  // Larger than uint64: nlohmann reads it as a float.
  auto huge =
      ParseSpiffeBundle(Td("example.org"), R"({"keys":[],"spiffe_sequence":18446744073709551616})");
  EXPECT_THAT(Message(huge.status()), HasSubstr("\"spiffe_sequence\" must be a non-negative"));
}

TEST(JwtBundleJwksTest, RoundTripWithoutSpiffeMembers) {
  Bundle b = FullBundle();
  auto jwks = JwtBundleToJwks(b);
  ASSERT_TRUE(jwks.ok()) << jwks.status();
  Json doc = Json::parse(*jwks);
  EXPECT_EQ(doc.size(), 1u);  // "keys" only
  ASSERT_EQ(doc["keys"].size(), 2u);
  for (const Json& key : doc["keys"]) {
    EXPECT_FALSE(key.contains("use"));
    EXPECT_FALSE(key.contains("x5c"));
    EXPECT_TRUE(key.contains("kid"));
  }
  auto parsed = ParseJwtBundleJwks(Td("example.org"), *jwks);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_TRUE(parsed->x509_authorities().empty());
  EXPECT_FALSE(parsed->sequence_number().has_value());
  ASSERT_EQ(parsed->jwt_authorities().size(), 2u);
  EXPECT_TRUE(parsed->FindJwtAuthority("ec-kid")->Equals(F().ec_key));
  EXPECT_TRUE(parsed->FindJwtAuthority("rsa-kid")->Equals(F().rsa_key));
}

TEST(JwtBundleJwksTest, ParsingRules) {
  // A full SPIFFE bundle given where a JWKS is expected: only its JWT keys count.
  auto from_spiffe = ParseJwtBundleJwks(Td("example.org"), *SpiffeBundleToJson(FullBundle()));
  ASSERT_TRUE(from_spiffe.ok()) << from_spiffe.status();
  EXPECT_EQ(from_spiffe->jwt_authorities().size(), 2u);
  EXPECT_TRUE(from_spiffe->x509_authorities().empty());

  Json okp = {{"kty", "OKP"}, {"crv", "Ed25519"}, {"x", "abc"}, {"kid", "ed"}};
  auto skipped = ParseJwtBundleJwks(Td("example.org"), Json{{"keys", {okp}}}.dump());
  ASSERT_TRUE(skipped.ok()) << skipped.status();
  EXPECT_TRUE(skipped->empty());

  Json no_kid = *PublicKeyToJwk(F().ec_key);
  auto missing = ParseJwtBundleJwks(Td("example.org"), Json{{"keys", {no_kid}}}.dump());
  EXPECT_THAT(Message(missing.status()),
              HasSubstr("JWT bundle for \"example.org\": keys[0]: JWT authority has no \"kid\""));
  Json a = *PublicKeyToJwk(F().ec_key);
  a["kid"] = "same";
  Json b = *PublicKeyToJwk(F().rsa_key);
  b["kid"] = "same";
  auto dup = ParseJwtBundleJwks(Td("example.org"), Json{{"keys", {a, b}}}.dump());
  EXPECT_THAT(Message(dup.status()), HasSubstr("duplicate \"kid\" \"same\""));
  EXPECT_THAT(Message(ParseJwtBundleJwks(Td("example.org"), "{}").status()),
              HasSubstr("missing \"keys\""));
  EXPECT_THAT(Message(ParseJwtBundleJwks(Td("example.org"), "").status()),
              HasSubstr("invalid JSON"));
}

TEST(BundleMapTest, RoundTripOmitsRefreshHints) {
  BundleSet set;
  Bundle example = FullBundle();
  set.Put(example);
  Bundle other(Td("other.org"));
  other.AddX509Authority(F().rsa_ca);
  other.set_sequence_number(1);
  set.Put(other);

  auto json = BundleMapToJson(set);
  ASSERT_TRUE(json.ok()) << json.status();
  Json doc = Json::parse(*json);
  ASSERT_TRUE(doc["trust_domains"].contains("example.org"));
  ASSERT_TRUE(doc["trust_domains"].contains("other.org"));
  EXPECT_FALSE(doc["trust_domains"]["example.org"].contains("spiffe_refresh_hint"));
  EXPECT_EQ(doc["trust_domains"]["example.org"]["spiffe_sequence"], 42);

  auto parsed = ParseBundleMap(*json);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  example.set_refresh_hint(std::nullopt);
  BundleSet expected;
  expected.Put(example);
  expected.Put(other);
  EXPECT_EQ(*parsed, expected);
}

TEST(BundleMapTest, DropsInnerRefreshHints) {
  auto parsed =
      ParseBundleMap(R"({"trust_domains":{"example.org":{"keys":[],"spiffe_refresh_hint":5}}})");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_NE(parsed->Find(Td("example.org")), nullptr);
  EXPECT_FALSE(parsed->Find(Td("example.org"))->refresh_hint().has_value());
}

TEST(BundleMapTest, RejectsBadMaps) {
  auto dup =
      ParseBundleMap(R"({"trust_domains":{"example.org":{"keys":[]},"example.org":{"keys":[]}}})");
  EXPECT_EQ(dup.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(dup.status()), HasSubstr("duplicate member \"example.org\""));
  EXPECT_THAT(
      Message(ParseBundleMap(R"({"trust_domains":{"spiffe://example.org":{"keys":[]}}})").status()),
      HasSubstr("bundle map: key \"spiffe://example.org\": invalid SPIFFE ID"));
  EXPECT_THAT(Message(ParseBundleMap(R"({"trust_domains":{"Example.org":{"keys":[]}}})").status()),
              HasSubstr("key \"Example.org\""));
  EXPECT_THAT(Message(ParseBundleMap(R"({"trust_domains":{"example.org":{}}})").status()),
              HasSubstr("bundle map: \"example.org\": missing \"keys\""));
  EXPECT_THAT(Message(ParseBundleMap(R"({"domains":{}})").status()),
              HasSubstr("missing \"trust_domains\""));
  EXPECT_THAT(Message(ParseBundleMap(R"({"trust_domains":[]})").status()),
              HasSubstr("\"trust_domains\" must be an object"));
  auto empty = ParseBundleMap(R"({"trust_domains":{}})");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

}  // namespace
}  // namespace tessera::spiffe
