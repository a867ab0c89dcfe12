#include "agent/workload/caller_table.h"

#include <poll.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"

namespace tessera::agent {

absl::Status ConnectedCaller::CheckAlive() const {
  if (!pidfd.valid()) {
    return absl::FailedPreconditionError(absl::StrCat("process ", pid, " is not pinned"));
  }
  // A pidfd becomes readable when its process exits; it never refers to a later process that
  // was given the same pid.
  pollfd p{.fd = pidfd.get(), .events = POLLIN, .revents = 0};
  int n;
  do {
    n = ::poll(&p, 1, 0);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("process ", pid, ": poll pidfd: ", std::strerror(errno)));
  }
  if (n > 0) return absl::FailedPreconditionError(absl::StrCat("process ", pid, " has exited"));
  return absl::OkStatus();
}

std::optional<int> ParseFdPeer(std::string_view peer) {
  constexpr std::string_view kPrefix = "fd:";
  if (!peer.starts_with(kPrefix)) return std::nullopt;
  std::string_view digits = peer.substr(kPrefix.size());
  if (digits.empty() || digits.size() > 9) return std::nullopt;
  int fd = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), fd);
  if (ec != std::errc() || end != digits.data() + digits.size() || fd < 0) return std::nullopt;
  return fd;
}

void CallerTable::Insert(int fd, std::shared_ptr<const ConnectedCaller> caller) {
  absl::MutexLock lock(&mu_);
  callers_[fd] = std::move(caller);
}

std::shared_ptr<const ConnectedCaller> CallerTable::Find(int fd) const {
  absl::MutexLock lock(&mu_);
  auto it = callers_.find(fd);
  return it == callers_.end() ? nullptr : it->second;
}

std::shared_ptr<const ConnectedCaller> CallerTable::FindByPeer(std::string_view peer) const {
  std::optional<int> fd = ParseFdPeer(peer);
  if (!fd.has_value()) return nullptr;
  return Find(*fd);
}

void CallerTable::Clear() {
  absl::flat_hash_map<int, std::shared_ptr<const ConnectedCaller>> gone;
  {
    absl::MutexLock lock(&mu_);
    gone.swap(callers_);
  }
}

size_t CallerTable::size() const {
  absl::MutexLock lock(&mu_);
  return callers_.size();
}

}  // namespace tessera::agent
