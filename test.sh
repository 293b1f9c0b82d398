#!/usr/bin/env bash
# Runs the whole test suite: unit tests, the vault's test vectors, and end-to-end tests that
# drive the built binaries. Assumes the build dependencies are installed (./install.sh --deps-only).
set -euo pipefail
cd "$(dirname "$0")"
swift build --build-tests
swift test --skip-build
