#!/usr/bin/env bash
# Prints the `swift build` flags for release binaries, one per line:
#   --static-swift-stdlib, and a linker search directory holding only the static archives of
#   libsodium, SQLite and libyaml, so that `-lsodium`, `-lsqlite3` and `-lyaml` resolve to the
#   archives instead of the shared libraries (the linker tries each directory in order and takes
#   whichever form it finds first there).
# Linking them statically saves the dynamic loader about two thirds of its start-up work in
# vsecure-run (docs/benchmarks.md). The price: a security update of those libraries reaches the
# binaries only when they are rebuilt (run ./install.sh again after `apt-get upgrade`).
# When an archive is missing the shared library is used, and a note says so on stderr.
# Usage: scripts/release-flags.sh [BUILD_DIR]   (default .build; the link directory goes inside it)
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir="${1:-.build}"
links="$(pwd)/$build_dir/static-archives"
mkdir -p "$links"
multiarch="$(gcc -print-multiarch 2>/dev/null || echo "$(uname -m)-linux-gnu")"
for lib in sodium sqlite3 yaml; do
    archive=""
    for dir in ${multiarch:+/usr/lib/$multiarch} /usr/lib64 /usr/lib; do
        if [ -f "$dir/lib$lib.a" ]; then archive="$dir/lib$lib.a"; break; fi
    done
    if [ -n "$archive" ]; then
        ln -sf "$archive" "$links/lib$lib.a"
    else
        rm -f "$links/lib$lib.a"
        echo "release-flags.sh: note: lib$lib.a not found; linking the shared lib$lib" >&2
    fi
done
printf '%s\n' --static-swift-stdlib -Xlinker "-L$links"
