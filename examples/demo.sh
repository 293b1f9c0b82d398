#!/usr/bin/env bash
# A short demo on a throw-away vault: create secrets, read one, launch a program with them.
# Usage: examples/demo.sh [BIN_DIR]   (default: the binaries on PATH)
set -euo pipefail
bin="${1:-}"
# The demo changes directory, so a relative BIN_DIR is made absolute first.
[ -n "$bin" ] && bin="$(cd "$bin" && pwd)"
vsecure="${bin:+$bin/}vsecure"
run="${bin:+$bin/}vsecure-run"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export VSECURE_VAULT="$work/vault.db" VSECURE_KEY_FILE="$work/vault.key"

if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then
    step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
else
    step() { printf '\n$ %s\n' "$*"; }
fi

step vsecure vault:init
"$vsecure" vault:init
step 'vsecure secrets:create API_KEY --tags production,api   (value on stdin)'
printf 'sk_live_demo_1234' | "$vsecure" secrets:create API_KEY --tags production,api
step 'vsecure secrets:create DATABASE_URL --env production   (value on stdin)'
printf 'postgres://app:s3cret@db:5432/app' | "$vsecure" secrets:create DATABASE_URL --env production
step vsecure secrets:get API_KEY --env production
"$vsecure" secrets:get API_KEY --env production; echo
step vsecure secrets:list
"$vsecure" secrets:list
cd "$work"
printf 'version: 1\nsecrets: [DATABASE_URL]\nselect:\n  tags: [api]\n' > vsecure.yml
step 'cat vsecure.yml'
cat vsecure.yml
step vsecure-run --env production --dry-run
"$run" --env production --dry-run
step "vsecure-run --env production -- sh -c 'echo API_KEY has \${#API_KEY} characters, DATABASE_URL starts with \${DATABASE_URL%%:*}'"
"$run" --env production -- sh -c 'echo "API_KEY has ${#API_KEY} characters, DATABASE_URL starts with ${DATABASE_URL%%:*}"'
printf '\nDemo done; the throw-away vault in %s is removed.\n' "$work"
