#!/usr/bin/env bash
# Prints the `swift build` flags for release binaries, one per line:
#   --static-swift-stdlib, and a linker search directory holding only static archives, so that
#   `-lsodium`, `-lsqlite3`, `-lyaml`, `-lstdc++` and `-lgcc_s` resolve to archives instead of
#   shared libraries (the linker tries each directory in order and takes whichever form it finds
#   first there). `-lgcc_s` is answered by GCC's libgcc_eh.a, the same unwinder as a static
#   archive; libstdc++ and libgcc may be linked statically under the GCC Runtime Library
#   Exception.
# The static Swift runtime needs libstdc++ and libgcc_s, and loading them (long C++ symbol names
# to look up and relocate) cost vsecure-run more than its own work on the vault; with all five
# linked in, vsecure and vsecure-run-remote need only libc, libm and what they load with dlopen
# (docs/benchmarks.md has the figures). vsecure-run goes further: Package.swift links it as a
# static PIE (glibc too), and there a missing archive is a link error.
# The price: a security update of these libraries reaches the binaries only when they are
# rebuilt (run ./install.sh again after `apt-get upgrade`).
# --disable-local-rpath: SwiftPM's default `$ORIGIN` run path sends the dynamic loader through a
#   dozen directories beside the binary (glibc-hwcaps/…, tls/…) before it finds libc and libm;
#   with the Swift runtime linked in, nothing is ever loaded from there.
# When an archive is missing the shared library is used (except for vsecure-run, above), and a
# note says so on stderr.
# Usage: scripts/release-flags.sh [BUILD_DIR]   (default .build, relative to the repository or
#   absolute, as for --scratch-path; the link directory goes inside it)
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir="${1:-.build}"
case "$build_dir" in
    /*) links="$build_dir/static-archives" ;;
    *) links="$(pwd)/$build_dir/static-archives" ;;
esac
mkdir -p "$links"
multiarch="$(gcc -print-multiarch 2>/dev/null || echo "$(uname -m)-linux-gnu")"
link_archive() { # NAME ARCHIVE-OR-EMPTY: libNAME.a in the link directory points at ARCHIVE
    if [ -n "$2" ] && [ -f "$2" ]; then
        ln -sf "$2" "$links/lib$1.a"
    else
        rm -f "$links/lib$1.a"
        echo "release-flags.sh: note: no static archive for lib$1; linking the shared library" >&2
    fi
}
for lib in sodium sqlite3 yaml; do
    archive=""
    for dir in ${multiarch:+/usr/lib/$multiarch} /usr/lib64 /usr/lib; do
        if [ -f "$dir/lib$lib.a" ]; then archive="$dir/lib$lib.a"; break; fi
    done
    link_archive "$lib" "$archive"
done
# GCC's own archives: ask the compiler driver where they are (clang ships with Swift).
gcc_file() { # FILE: its path, or nothing
    local path
    for cc in gcc clang; do
        command -v "$cc" >/dev/null 2>&1 || continue
        path="$("$cc" -print-file-name="$1" 2>/dev/null || true)"
        if [ -n "$path" ] && [ "$path" != "$1" ] && [ -f "$path" ]; then echo "$path"; return; fi
    done
}
link_archive stdc++ "$(gcc_file libstdc++.a)"
link_archive gcc_s "$(gcc_file libgcc_eh.a)"
printf '%s\n' --static-swift-stdlib --disable-local-rpath -Xlinker "-L$links"
