#!/usr/bin/env bash
# Installs every Debian 12 package that Tessera's build, tests and demo need.
# Idempotent: when everything is present it only asks dpkg and exits in well under a second.
# Runs `apt-get update` only when a package is missing and apt cannot find it in its lists.
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake ninja-build pkg-config clang libclang-rt-14-dev
  # gRPC / protobuf
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  # libraries of DESIGN.md
  libssl-dev libsystemd-dev libtomlplusplus-dev nlohmann-json3-dev libspdlog-dev libcli11-dev
  libsqlite3-dev libpq-dev libcurl4-openssl-dev libcpp-httplib-dev
  # tests and benchmarks (a minimal Debian lacks the last four: systemd-analyze, ss, the system CA
  # store gRPC reads, llvm-symbolizer for readable sanitizer reports)
  libgtest-dev libgmock-dev libbenchmark-dev openssl curl python3 python3-yaml
  systemd iproute2 ca-certificates llvm
)

missing=()
for p in "${packages[@]}"; do
  if [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" != "installed" ]; then
    missing+=("$p")
  fi
done
[ "${#missing[@]}" -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  sudo=sudo
else
  sudo=
fi
echo "installing: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# Update the package lists only if apt does not know one of the missing packages yet.
for p in "${missing[@]}"; do
  if ! apt-cache show "$p" >/dev/null 2>&1; then
    $sudo apt-get update -qq
    break
  fi
done
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
