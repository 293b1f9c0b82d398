#!/bin/sh
# Runs with the secrets already in the environment (vsecure-run execs this script).
# Anything that must happen before the application starts goes here; finish with `exec`
# so the application replaces the shell and keeps PID 1.
set -eu

: "${DATABASE_URL:?DATABASE_URL was not injected}"
# TLS_PRIVATE_KEY holds a path such as /dev/fd/5: a sealed in-memory file, never on disk.
[ -r "$TLS_PRIVATE_KEY" ] || { echo "TLS_PRIVATE_KEY is not readable" >&2; exit 1; }

exec "${APP_COMMAND:-/app/server}" "$@"
