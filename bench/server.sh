#!/usr/bin/env bash
# Server throughput benchmark (issue 4). One release `vsecure-server` on 127.0.0.1 (plain HTTP,
# a rate limit too high to matter), and in the same run, with the same wrk settings:
#   1. GET /health                                   baseline: no authentication, no store;
#   2. GET /v1/security/secrets/{name}?environment=  one secret (authenticated, decrypted);
#   3. POST /v1/security/secrets/batch/get           a batch of 10 secrets;
#   4. PUT /v1/security/secrets/{name}               a new version, committed with its audit
#                                                     entry (writes take turns: one at a time).
# For each: requests/s, p50 and p99 latency, the count of non-2xx answers and socket errors, and
# the server's CPU time (user + system, from /proc) per request.
# Target (issues 4 and 6): >= 15,000 single-secret reads per second with zero errors, every
# read audited: the audit log's newest sequence number is read before and after the single-read
# run, and the run fails unless every answered read (2xx) has its entry.
# Usage: bench/server.sh [--duration 10s] [--threads 2] [--connections 32] [--log-level LEVEL] [--bin DIR]
#   --log-level: the server's (default: info, the server's own default, one line per request).
#   --bin: a directory holding a built vsecure-server (default: builds the release binary).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/common.sh

duration=10s
threads=2
connections=32
log_level=info
bin=""
while [ $# -gt 0 ]; do
    case "$1" in
        --duration) duration="$2"; shift 2 ;;
        --threads) threads="$2"; shift 2 ;;
        --connections) connections="$2"; shift 2 ;;
        --log-level) log_level="$2"; shift 2 ;;
        --bin) bin="$2"; shift 2 ;;
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        *) echo "server.sh: error: unknown option $1" >&2; exit 2 ;;
    esac
done
for tool in wrk curl python3; do
    command -v "$tool" >/dev/null || { echo "server.sh: error: $tool is needed (apt-get install $tool)" >&2; exit 1; }
done
if [ -z "$bin" ]; then
    bin="$(release_bin vsecure-server)"
fi
server="$bin/vsecure-server"
[ -x "$server" ] || { echo "server.sh: error: no vsecure-server in $bin" >&2; exit 1; }

work="$(mktemp -d)"
server_pid=""
trap stop_server_and_clean EXIT
start_server "$server" "$log_level"

api() { # METHOD PATH [JSON]: prints the body; fails on a non-2xx answer
    curl -q -sS --noproxy '*' --fail-with-body -X "$1" -H "@$work/auth" -H 'Content-Type: application/json' \
        ${3:+--data-binary "$3"} "$base$2"
}

# The secrets: one for the single read, ten for the batch (40-character values, production).
value() { python3 -c 'import secrets, string; print("".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(40)))'; }
api POST /v1/security/secrets "{\"name\":\"BENCH_SECRET\",\"value\":\"$(value)\",\"environment\":\"production\"}" > /dev/null
names=""
for i in $(seq -w 0 9); do
    api POST /v1/security/secrets "{\"name\":\"BATCH_$i\",\"value\":\"$(value)\",\"environment\":\"production\"}" > /dev/null
    names="$names${names:+,}\"BATCH_$i\""
done
batch_body="{\"names\":[$names],\"environment\":\"production\"}"
api POST /v1/security/secrets "{\"name\":\"WRITE_SECRET\",\"value\":\"$(value)\",\"environment\":\"production\"}" > /dev/null

# Check the answers once before measuring them.
api GET "/v1/security/secrets/BENCH_SECRET?environment=production" | grep -q '"value":"' \
    || { echo "server.sh: error: the single read returned no value" >&2; exit 1; }
[ "$(api POST /v1/security/secrets/batch/get "$batch_body" | grep -o '"value":"' | wc -l)" -eq 10 ] \
    || { echo "server.sh: error: the batch read did not return 10 values" >&2; exit 1; }

# wrk scripts: a machine-readable summary line (non2xx = answers >= 400, which is all a
# non-2xx can be here: the server sends no 1xx or 3xx), and the batch request.
cat > "$work/report.lua" <<'LUA'
done = function(summary, latency, requests)
    local e = summary.errors
    io.write(string.format("RESULT rps=%.1f requests=%d p50_us=%d p99_us=%d max_us=%d non2xx=%d socket_errors=%d\n",
        summary.requests / (summary.duration / 1e6), summary.requests,
        latency:percentile(50), latency:percentile(99), latency.max,
        e.status, e.connect + e.read + e.write + e.timeout))
end
LUA
{
    echo 'wrk.method = "POST"'
    echo 'wrk.headers["Content-Type"] = "application/json"'
    printf 'wrk.body = [[%s]]\n' "$batch_body"
    cat "$work/report.lua"
} > "$work/batch.lua"
{
    echo 'wrk.method = "PUT"'
    echo 'wrk.headers["Content-Type"] = "application/json"'
    printf 'wrk.body = [[{"value":"%s"}]]\n' "$(value)"
    cat "$work/report.lua"
} > "$work/write.lua"

server_cpu_ticks() { # user + system time of the server so far, in clock ticks
    awk '{ print $14 + $15 }' "/proc/$server_pid/stat"
}

run_wrk() { # LABEL SCRIPT URL [AUTH]
    local label="$1" script="$2" url="$3" auth="${4:-}" line before after
    local -a headers=()
    [ -n "$auth" ] && headers=(-H "Authorization: Bearer $token")
    before="$(server_cpu_ticks)"
    line="$(wrk -t"$threads" -c"$connections" -d"$duration" --latency -s "$script" "${headers[@]}" "$url" | grep '^RESULT')"
    after="$(server_cpu_ticks)"
    python3 - "$label" "$line" "$((after - before))" "$(getconf CLK_TCK)" <<'PY'
import sys
label, line, ticks, hz = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
f = dict(item.split("=") for item in line.split()[1:])
cpu_us = ticks / hz * 1e6 / max(1, int(f["requests"]))
print("%-44s %10.0f %9.2f %9.2f %9d %9d %9.0f" % (label, float(f["rps"]), int(f["p50_us"]) / 1000, int(f["p99_us"]) / 1000,
                                               int(f["non2xx"]), int(f["socket_errors"]), cpu_us))
PY
    echo "$line" > "$work/last"
}

echo "vsecure-server $("$server" --version) on $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'))"
echo "wrk -t$threads -c$connections -d$duration --latency, server --log-level $log_level, same machine"
printf '\n%-44s %10s %9s %9s %9s %9s %9s\n' "endpoint" "req/s" "p50 ms" "p99 ms" "non-2xx" "sock err" "srv µs/rq"
run_wrk "GET /health (baseline)" "$work/report.lua" "$base/health"
health_rps="$(sed 's/.*rps=\([0-9.]*\).*/\1/' "$work/last")"
audit_head() { # the newest audit entry's sequence number
    api GET "/v1/security/audit-logs?order=desc&limit=1" | python3 -c 'import json, sys; d = json.load(sys.stdin)["data"]; print(d[0]["seq"] if d else 0)'
}
audit_before="$(audit_head)"
run_wrk "GET /secrets/{name} (one secret)" "$work/report.lua" "$base/v1/security/secrets/BENCH_SECRET?environment=production" auth
single_line="$(cat "$work/last")"
audit_after="$(audit_head)"
run_wrk "POST /secrets/batch/get (10 secrets)" "$work/batch.lua" "$base/v1/security/secrets/batch/get" auth
batch_rps="$(sed 's/.*rps=\([0-9.]*\).*/\1/' "$work/last")"
run_wrk "PUT /secrets/{name} (a new version)" "$work/write.lua" "$base/v1/security/secrets/WRITE_SECRET?environment=production" auth

python3 - "$health_rps" "$single_line" "$batch_rps" "$audit_before" "$audit_after" <<'PY'
import sys
health = float(sys.argv[1])
audited = int(sys.argv[5]) - int(sys.argv[4])
single = dict(item.split("=") for item in sys.argv[2].split()[1:])
batch = float(sys.argv[3])
rps, errors = float(single["rps"]), int(single["non2xx"]) + int(single["socket_errors"])
print()
print("single read / health baseline: %.2f" % (rps / health))
print("batch of 10: %.0f secrets/s (%.1fx the single reads' secrets/s)" % (batch * 10, batch * 10 / rps))
answered = int(single["requests"]) - int(single["non2xx"])
print("audit entries written during the single-read run: %d for %d answered reads" % (audited, answered))
verdict = "met" if rps >= 15000 and errors == 0 else "MISSED"
print("target >= 15,000 single reads/s with zero errors, every read audited: %s (%.0f/s, %d errors)" % (verdict, rps, errors))
if audited < answered:
    print("server.sh: error: %d reads were answered without an audit entry" % (answered - audited), file=sys.stderr)
    sys.exit(1)
PY
