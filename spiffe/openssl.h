// RAII owners for OpenSSL objects, the conversion of OpenSSL's error queue into a Status, and a
// library context for decoding ASN.1 structures without their public keys (openssl.cc also holds
// the EC key shortcuts that x509_internal.h declares). Only the EVP-level API of OpenSSL 3 is used
// by Tessera. Thread-safe (OpenSSL's error queue is per thread; the library context and the
// shortcuts' template keys are made once and never change).
#pragma once

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/types.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace tessera::spiffe {

template <typename T, void (*Free)(T*)>
struct OpenSslDeleter {
  void operator()(T* p) const { Free(p); }
};
template <typename T, void (*Free)(T*)>
using OpenSslPtr = std::unique_ptr<T, OpenSslDeleter<T, Free>>;

using EvpPkeyPtr = OpenSslPtr<EVP_PKEY, EVP_PKEY_free>;
using EvpPkeyCtxPtr = OpenSslPtr<EVP_PKEY_CTX, EVP_PKEY_CTX_free>;
using EvpMdCtxPtr = OpenSslPtr<EVP_MD_CTX, EVP_MD_CTX_free>;
using X509Ptr = OpenSslPtr<X509, X509_free>;
using X509ReqPtr = OpenSslPtr<X509_REQ, X509_REQ_free>;
using X509StorePtr = OpenSslPtr<X509_STORE, X509_STORE_free>;
using X509StoreCtxPtr = OpenSslPtr<X509_STORE_CTX, X509_STORE_CTX_free>;
using X509ExtensionPtr = OpenSslPtr<X509_EXTENSION, X509_EXTENSION_free>;
using X509NamePtr = OpenSslPtr<X509_NAME, X509_NAME_free>;
using GeneralNamesPtr = OpenSslPtr<GENERAL_NAMES, GENERAL_NAMES_free>;
using Asn1IntegerPtr = OpenSslPtr<ASN1_INTEGER, ASN1_INTEGER_free>;
using Asn1OctetStringPtr = OpenSslPtr<ASN1_OCTET_STRING, ASN1_OCTET_STRING_free>;
using BignumPtr = OpenSslPtr<BIGNUM, BN_free>;
using BioPtr = OpenSslPtr<BIO, BIO_free_all>;

// Drains this thread's OpenSSL error queue into one status: "<context>: <first error>".
// Returns `code` (InvalidArgument by default, for bad input); use kInternal for failures that
// are ours, not the caller's.
absl::Status OpenSslError(std::string_view context,
                          absl::StatusCode code = absl::StatusCode::kInvalidArgument);

// A library context that offers no algorithms at all (it has only OpenSSL's "null" provider), for
// ASN1_item_d2i_ex: a structure decodes with it exactly as with the default context (the ASN.1
// templates do not depend on the context), except that a SubjectPublicKeyInfo inside is left
// undecoded (X509_PUBKEY_get0 gives nullptr) where the default context would run it through a new
// OSSL_DECODER context, which costs OpenSSL 3.0 several ECDSA signatures' worth of time. Never
// use it for cryptography. nullptr if OpenSSL could not make it.
OSSL_LIB_CTX* KeylessDecodeContext();

// A read-only memory BIO over `data` (which must outlive the BIO).
BioPtr MemBio(std::string_view data);
// Everything written to a memory BIO so far.
std::string BioContents(BIO* bio);

}  // namespace tessera::spiffe
