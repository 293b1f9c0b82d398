#!/usr/bin/env bash
# Runs the whole test suite: unit tests, the vault's test vectors, and end-to-end tests that
# drive the built binaries. Assumes the build dependencies are installed (./install.sh --deps-only).
set -euo pipefail
cd "$(dirname "$0")"
swift build --build-tests
swift test --skip-build
# A short fuzz smoke of every target under Fuzz/ (docs/testing.md, "Fuzzing"): a sanitizer build
# in .build-fuzz, then FUZZ_SECONDS (default 20) per target. VSECURE_SKIP_FUZZ=1 skips it.
if [ "${VSECURE_SKIP_FUZZ:-0}" != 1 ]; then
    Fuzz/run.sh "${FUZZ_SECONDS:-20}"
fi
