#!/usr/bin/env bash
# The one test command (README, CI): installs dependencies, configures a clang build with
# AddressSanitizer + UndefinedBehaviorSanitizer and libFuzzer targets, builds, runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

./packaging/deps/install.sh

build=${TESSERA_BUILD_DIR:-build/ci}
# Line tables are all sanitizer reports need (file:line in every frame); full debug info made the
# build about a quarter slower on 2 cores. Configure a build of your own with -g to use gdb.
cmake -S . -B "$build" -G Ninja \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -gline-tables-only -DNDEBUG" \
  -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O2 -gline-tables-only -DNDEBUG" \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DTESSERA_SANITIZE=ON -DTESSERA_WERROR=ON -DTESSERA_FUZZ=ON \
  -DTESSERA_FUZZ_SECONDS="${TESSERA_FUZZ_SECONDS:-30}" >/dev/null
cmake --build "$build" -j"$(nproc)"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
ctest --test-dir "$build" --output-on-failure -j"$(nproc)" "$@"
