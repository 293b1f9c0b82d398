#!/usr/bin/env bash
# Remote launch benchmark (issue 5). One release `vsecure-server` on 127.0.0.1 (plain HTTP, so
# both sides pay the same transport) holding N secrets of 40 characters, and in the same
# hyperfine run:
#   1. curl -s fetching the same batch (POST /v1/security/secrets/batch/get, the request the
#      launcher sends) into /dev/null: the floor for one authenticated fetch;
#   2. vsecure-run --endpoint … -- /bin/true: hand the launch to vsecure-run-remote (the static
#      vsecure-run cannot load libcurl), load libcurl, fetch, decode into the locked environment
#      block, exec.
# Prints the medians and the ratio. Target (issue 5): at most 1.0x curl at N=100.
# Usage: bench/remote.sh [--runs 100] [--rounds 5] [--secrets 100] [--bin DIR]
#   --bin: a directory holding built vsecure-run, vsecure-run-remote and vsecure-server
#          (default: builds release binaries with scripts/release-flags.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/common.sh

runs=100
rounds=5
count=100
bin=""
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) runs="$2"; shift 2 ;;
        --rounds) rounds="$2"; shift 2 ;;
        --secrets) count="$2"; shift 2 ;;
        --bin) bin="$2"; shift 2 ;;
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        *) echo "remote.sh: error: unknown option $1" >&2; exit 2 ;;
    esac
done
for tool in hyperfine curl python3; do
    command -v "$tool" >/dev/null || { echo "remote.sh: error: $tool is needed (apt-get install $tool)" >&2; exit 1; }
done
if [ -z "$bin" ]; then
    bin="$(release_bin vsecure-run vsecure-run-remote vsecure-server)"
fi
for tool in vsecure-run vsecure-run-remote vsecure-server; do
    [ -x "$bin/$tool" ] || { echo "remote.sh: error: no $tool in $bin" >&2; exit 1; }
done

work="$(mktemp -d)"
server_pid=""
trap stop_server_and_clean EXIT
# --log-level warning: no line per request, so the server's logging is not what is measured.
start_server "$bin/vsecure-server" warning

# N secrets in one all-or-nothing upsert, and the manifest naming them.
python3 - "$count" > "$work/upsert.json" <<'PY'
import json, secrets, string, sys
alphabet = string.ascii_letters + string.digits
n = int(sys.argv[1])
print(json.dumps({"environment": "production", "secrets": [
    {"name": "S%06d" % i, "value": "".join(secrets.choice(alphabet) for _ in range(40))} for i in range(n)]}))
PY
curl -q -sS --noproxy '*' --fail-with-body -X POST -H "@$work/auth" -H 'Content-Type: application/json' \
    --data-binary "@$work/upsert.json" "$base/v1/security/secrets/batch/upsert" > /dev/null
{ echo "version: 1"; echo "environment: production"; echo "secrets:"; for ((i = 0; i < count; i++)); do printf '  - S%06d\n' "$i"; done; } > "$work/vsecure.yml"
# The same request body the launcher sends.
python3 - "$count" > "$work/batch.json" <<'PY'
import json, sys
n = int(sys.argv[1])
print(json.dumps({"environment": "production", "names": ["S%06d" % i for i in range(n)], "tagSelections": [], "allowExpired": True},
                 separators=(",", ":")))
PY

# Both answers checked once before measuring.
[ "$(curl -q -sS --noproxy '*' -X POST -H "@$work/auth" -H 'Content-Type: application/json' --data-binary "@$work/batch.json" \
    "$base/v1/security/secrets/batch/get" | grep -o '"value":"' | wc -l)" -eq "$count" ] \
    || { echo "remote.sh: error: the batch did not return $count values" >&2; exit 1; }
export VSECURE_API_KEY="$token"
"$bin/vsecure-run" --endpoint "$base" --manifest "$work/vsecure.yml" -- /bin/sh -c "[ -n \"\$S000000\" ]" \
    || { echo "remote.sh: error: the launch did not deliver the secrets" >&2; exit 1; }

# Alternating rounds, so that a change of load on the shared machine lands on both commands.
for ((round = 1; round <= rounds; round++)); do
    hyperfine -N --warmup 5 --runs "$(( (runs + rounds - 1) / rounds ))" --export-json "$work/h-$round.json" \
        "curl -q -s --noproxy * -o /dev/null -X POST -H @$work/auth -H Content-Type:application/json --data-binary @$work/batch.json $base/v1/security/secrets/batch/get" \
        "$bin/vsecure-run --endpoint $base --manifest $work/vsecure.yml -- /bin/true" >/dev/null
done

python3 - "$work" "$rounds" "$count" <<'PY'
import json, statistics, sys
work, rounds, count = sys.argv[1], int(sys.argv[2]), sys.argv[3]
times = [[], []]
for r in range(1, rounds + 1):
    for i, result in enumerate(json.load(open(f"{work}/h-{r}.json"))["results"]):
        times[i] += result["times"]
curl, launch = (statistics.median(t) * 1000 for t in times)
print(f"\nN={count} secrets from a loopback server (medians of {len(times[0])} runs in {rounds} alternating rounds)")
print(f"{'curl -s (fetch only)':<28} {curl:8.3f} ms")
print(f"{'vsecure-run … -- /bin/true':<28} {launch:8.3f} ms")
print(f"{'ratio':<28} {launch / curl:8.2f}   (target <= 1.0)")
PY
