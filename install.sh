#!/usr/bin/env bash
# Installs what vsecure needs to build, builds release binaries with the static Swift
# standard library, and installs them. Safe to run again: it only installs what is missing.
set -euo pipefail

usage() {
    cat <<'USAGE'
Usage: ./install.sh [options]

Builds vsecure and vsecure-run (release, static Swift stdlib) and installs them into PREFIX/bin,
and vsecure-run-remote (the launcher for launches from a server) into PREFIX/libexec/vsecure;
with --with-server also vsecure-server (its first release build takes about 10 minutes here).
Missing Debian packages (libsodium-dev, libsqlite3-dev, libyaml-dev, libcurl4-openssl-dev,
pkg-config) are installed with apt-get first.

Options:
  --prefix DIR   install into DIR/bin and DIR/libexec/vsecure (default: $PREFIX, else /usr/local)
  --deps-only    only install the build dependencies
  --no-deps      do not check or install the Debian packages
  --with-server  also build and install vsecure-server
  --demo         after installing, run a short demo on a throw-away vault
  -h, --help     show this help
USAGE
}

prefix="${PREFIX:-/usr/local}"
deps=1
build=1
demo=0
server=0
while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) [ $# -ge 2 ] || { echo "install.sh: error: --prefix needs a directory" >&2; exit 2; }; prefix="$2"; shift 2 ;;
        --prefix=*) prefix="${1#--prefix=}"; shift ;;
        --deps-only) build=0; shift ;;
        --no-deps) deps=0; shift ;;
        --demo) demo=1; shift ;;
        --with-server) server=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "install.sh: error: unknown option '$1'" >&2; echo "install.sh: hint: ./install.sh --help lists the options" >&2; exit 2 ;;
    esac
done

cd "$(dirname "$0")"

packages=(libsodium-dev libsqlite3-dev libyaml-dev libcurl4-openssl-dev pkg-config)
if [ "$deps" = 1 ]; then
    missing=()
    for p in "${packages[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "install.sh: installing ${missing[*]}" >&2
        if [ "$(id -u)" = 0 ]; then sudo=(); elif command -v sudo >/dev/null; then sudo=(sudo); else
            echo "install.sh: error: missing packages ${missing[*]} and no root or sudo to install them" >&2
            exit 1
        fi
        export DEBIAN_FRONTEND=noninteractive
        "${sudo[@]}" apt-get update -qq
        "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
fi

[ "$build" = 1 ] || exit 0

if ! command -v swift >/dev/null 2>&1; then
    echo "install.sh: error: Swift is not installed (or not on PATH)" >&2
    echo "install.sh: hint: install Swift 6 or later from swift.org, then run ./install.sh again" >&2
    exit 1
fi

echo "install.sh: building release binaries (static Swift stdlib; libsodium, SQLite and libyaml linked in; vsecure-run fully static)" >&2
mapfile -t release_flags < <(scripts/release-flags.sh)
swift build -c release "${release_flags[@]}" --product vsecure >&2
swift build -c release "${release_flags[@]}" --product vsecure-run >&2
swift build -c release "${release_flags[@]}" --product vsecure-run-remote >&2
tools=(vsecure vsecure-run)
if [ "$server" = 1 ]; then
    swift build -c release "${release_flags[@]}" --product vsecure-server >&2
    tools+=(vsecure-server)
fi
bin_dir="$(swift build -c release "${release_flags[@]}" --show-bin-path)"

mkdir -p "$prefix/bin"
for tool in "${tools[@]}"; do
    install -m 0755 "$bin_dir/$tool" "$prefix/bin/$tool"
done
# vsecure-run is a static executable and cannot load libcurl: it hands launches from a server to
# this dynamically linked twin, which it looks for in ../libexec/vsecure beside itself.
mkdir -p "$prefix/libexec/vsecure"
install -m 0755 "$bin_dir/vsecure-run-remote" "$prefix/libexec/vsecure/vsecure-run-remote"
echo "install.sh: installed ${tools[*]} into $prefix/bin and vsecure-run-remote into $prefix/libexec/vsecure" >&2

if [ "$demo" = 1 ]; then
    exec ./examples/demo.sh "$prefix/bin"
fi
