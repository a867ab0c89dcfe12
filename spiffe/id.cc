#include "spiffe/id.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/strings.h"

namespace tessera::spiffe {
namespace {

bool IsTrustDomainChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
}

bool IsPathChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '-' || c == '_';
}

absl::Status InvalidId(std::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("invalid SPIFFE ID: ", AsAbsl(why)));
}

absl::Status ValidateTrustDomainName(std::string_view name) {
  if (name.empty()) return InvalidId("trust domain is missing");
  for (char c : name) {
    if (!IsTrustDomainChar(c)) {
      return InvalidId(
          "trust domain characters are limited to lowercase letters, numbers, dots, dashes, and "
          "underscores");
    }
  }
  if (name.size() > kMaxTrustDomainLength) {
    return InvalidId(absl::StrCat("trust domain is longer than ", kMaxTrustDomainLength, " bytes"));
  }
  return absl::OkStatus();
}

absl::Status ValidateSegment(std::string_view segment) {
  if (segment.empty()) return InvalidId("path cannot contain empty segments");
  if (segment == "." || segment == "..") return InvalidId("path cannot contain dot segments");
  for (char c : segment) {
    if (!IsPathChar(c)) {
      return InvalidId(
          "path segment characters are limited to letters, numbers, dots, dashes, and "
          "underscores");
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidatePath(std::string_view path) {
  if (path.empty()) return absl::OkStatus();
  if (path.front() != '/') return InvalidId("path must begin with a slash");
  // Walk "/seg/seg..." one segment at a time; a final "/" is reported as a trailing slash.
  size_t pos = 0;
  while (pos < path.size()) {
    size_t next = path.find('/', pos + 1);
    if (next == std::string_view::npos) next = path.size();
    std::string_view segment = path.substr(pos + 1, next - pos - 1);
    if (segment.empty() && next == path.size()) {
      return InvalidId("path cannot have a trailing slash");
    }
    if (absl::Status s = ValidateSegment(segment); !s.ok()) return s;
    pos = next;
  }
  return absl::OkStatus();
}

absl::StatusOr<TrustDomain> TrustDomain::Parse(std::string_view name) {
  if (absl::Status s = ValidateTrustDomainName(name); !s.ok()) return s;
  return TrustDomain(std::string(name));
}

absl::StatusOr<TrustDomain> TrustDomain::FromIdOrName(std::string_view text) {
  if (text.find(':') == std::string_view::npos) return Parse(text);
  absl::StatusOr<SpiffeId> id = SpiffeId::Parse(text);
  if (!id.ok()) return id.status();
  return id->trust_domain();
}

std::string TrustDomain::IdString() const { return absl::StrCat(AsAbsl(kScheme), name_); }

SpiffeId TrustDomain::Id() const { return SpiffeId(IdString(), kScheme.size() + name_.size()); }

absl::StatusOr<SpiffeId> SpiffeId::Parse(std::string_view text) {
  if (text.empty()) return InvalidId("cannot be empty");
  if (text.size() > kMaxIdLength) {
    return InvalidId(absl::StrCat("longer than ", kMaxIdLength, " bytes"));
  }
  if (!text.starts_with(kScheme)) return InvalidId("scheme is missing or invalid");
  std::string_view rest = text.substr(kScheme.size());
  size_t slash = rest.find('/');
  std::string_view td = rest.substr(0, slash);
  if (absl::Status s = ValidateTrustDomainName(td); !s.ok()) return s;
  std::string_view path = slash == std::string_view::npos ? "" : rest.substr(slash);
  if (absl::Status s = ValidatePath(path); !s.ok()) return s;
  return SpiffeId(std::string(text), kScheme.size() + td.size());
}

absl::StatusOr<SpiffeId> SpiffeId::FromPath(const TrustDomain& trust_domain,
                                            std::string_view path) {
  if (absl::Status s = ValidatePath(path); !s.ok()) return s;
  return Parse(absl::StrCat(AsAbsl(kScheme), trust_domain.name(), AsAbsl(path)));
}

absl::StatusOr<SpiffeId> SpiffeId::FromSegments(const TrustDomain& trust_domain,
                                                std::initializer_list<std::string_view> segments) {
  std::string path;
  for (std::string_view segment : segments) {
    if (absl::Status s = ValidateSegment(segment); !s.ok()) return s;
    absl::StrAppend(&path, "/", AsAbsl(segment));
  }
  return FromPath(trust_domain, path);
}

TrustDomain SpiffeId::trust_domain() const {
  return TrustDomain(id_.substr(kScheme.size(), path_start_ - kScheme.size()));
}

bool SpiffeId::MemberOf(const TrustDomain& td) const {
  std::string_view name =
      std::string_view(id_).substr(kScheme.size(), path_start_ - kScheme.size());
  return name == td.name();
}

}  // namespace tessera::spiffe
