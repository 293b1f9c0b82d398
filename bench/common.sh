# Sourced by the benchmark scripts (after `cd` to the repository root and `work` is set).

# release_bin PRODUCT...: builds the products as release binaries with scripts/release-flags.sh
# (static Swift runtime and archives) and prints the directory that holds them.
release_bin() {
    local product
    local -a flags
    mapfile -t flags < <(scripts/release-flags.sh)
    for product in "$@"; do swift build -c release "${flags[@]}" --product "$product" >&2; done
    swift build -c release "${flags[@]}" --show-bin-path
}

# start_server SERVER LOG_LEVEL: makes a store in $work/data and serves it on a free loopback
# port, plain HTTP, with a rate limit too high to matter. Sets token, base and server_pid, and
# writes the Authorization header to $work/auth. The caller's EXIT trap stops server_pid.
start_server() {
    local server="$1" log_level="$2" port
    token="$("$server" init --data "$work/data" 2>/dev/null)"
    printf 'Authorization: Bearer %s\n' "$token" > "$work/auth"
    # A free loopback port; if another process takes it first, the server fails to start below.
    port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    "$server" serve --data "$work/data" --listen "127.0.0.1:$port" --insecure-http \
        --rate-limit 100000000 --log-level "$log_level" > "$work/server.log" 2>&1 &
    server_pid=$!
    for _ in $(seq 1 300); do
        grep -q 'vsecure-server: serving' "$work/server.log" 2>/dev/null && break
        kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log" >&2; echo "$(basename "$0"): error: the server did not start" >&2; exit 1; }
        sleep 0.1
    done
    grep -q 'vsecure-server: serving' "$work/server.log" \
        || { echo "$(basename "$0"): error: the server did not start in 30 s" >&2; exit 1; }
    base="http://127.0.0.1:$port"
}

# stop_server_and_clean: for `trap … EXIT`.
stop_server_and_clean() {
    if [ -n "${server_pid:-}" ]; then
        kill -TERM "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
