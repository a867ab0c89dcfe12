#include "server/api/tls_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <system_error>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/status.h"
#include "spiffe/bundle.h"

namespace tessera::server {
namespace {

namespace fs = std::filesystem;

absl::Status ErrnoError(std::string_view what, const fs::path& path, int err) {
  return absl::ErrnoToStatus(err, absl::StrCat(AsAbsl(what), " ", path.string()));
}

}  // namespace

absl::Status TlsFiles::Publish(const spiffe::PrivateKey& key,
                               std::span<const spiffe::Certificate> chain,
                               std::span<const spiffe::Certificate> roots) {
  if (chain.empty()) return absl::InvalidArgumentError("tls files: empty certificate chain");
  if (roots.empty()) return absl::InvalidArgumentError("tls files: no trusted roots");
  RETURN_IF_ERROR(Annotate(MakePrivateDirectory(dir_), "tls files"));
  ASSIGN_OR_RETURN(std::string key_pem, key.ToPkcs8Pem(), Annotate(_, "tls files"));

  // A generation name not used before, even across restarts of the server.
  fs::path gen_dir;
  for (;;) {
    gen_dir = dir_ / absl::StrCat("gen-", ::getpid(), "-", ++generation_);
    if (::mkdir(gen_dir.c_str(), 0700) == 0) break;
    if (errno != EEXIST) return Annotate(ErrnoError("mkdir", gen_dir, errno), "tls files");
  }
  RETURN_IF_ERROR(Annotate(WriteFileAtomically(gen_dir / "key.pem", key_pem, 0600), "tls files"));
  RETURN_IF_ERROR(Annotate(
      WriteFileAtomically(gen_dir / "chain.pem", spiffe::ChainToPem(chain), 0600), "tls files"));
  RETURN_IF_ERROR(Annotate(
      WriteFileAtomically(gen_dir / "roots.pem", spiffe::ChainToPem(roots), 0600), "tls files"));

  // Switch `current` in one rename; remember where it pointed to keep that one generation.
  fs::path current = dir_ / "current";
  std::error_code ec;
  fs::path previous = fs::read_symlink(current, ec);
  fs::path link_tmp = dir_ / absl::StrCat("current.tmp.", ::getpid());
  ::unlink(link_tmp.c_str());
  if (::symlink(gen_dir.filename().c_str(), link_tmp.c_str()) != 0) {
    return Annotate(ErrnoError("symlink", link_tmp, errno), "tls files");
  }
  if (::rename(link_tmp.c_str(), current.c_str()) != 0) {
    int err = errno;
    ::unlink(link_tmp.c_str());
    return Annotate(ErrnoError("rename", link_tmp, err), "tls files");
  }
  RETURN_IF_ERROR(Annotate(FsyncDirectory(dir_), "tls files"));

  for (const fs::directory_entry& entry : fs::directory_iterator(dir_, ec)) {
    fs::path name = entry.path().filename();
    if (!name.string().starts_with("gen-") || name == gen_dir.filename() || name == previous) {
      continue;
    }
    fs::remove_all(entry.path(), ec);  // best effort: a leftover only costs disk space
  }
  return absl::OkStatus();
}

}  // namespace tessera::server
