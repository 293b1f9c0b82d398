#!/usr/bin/env bash
# Launcher start-up benchmark. Everything is measured in the same run, so the ratios hold on a
# shared, noisy machine:
#   1. `vsecure-run … -- /bin/true` against `env K=V… /bin/true` (the floor for exporting
#      variables and exec) for N = 10, 100, 1000 secrets of 40 characters, and N = 100 again
#      interleaved run by run;
#   2. peak RSS of a launch at N = 1000;
#   3. a launch of N = 100 from a vault of 100,000 secrets against one from a vault of 1,000;
#   4. for context, `vsecure-run --version` against `/bin/true`: start-up and exit alone.
# Targets (issue 3): ratio <= 2.0 at N=100; peak RSS <= 10 MiB at N=1000; vault-size ratio <= 1.2.
# Usage: bench/launcher.sh [--runs N] [--rounds R] [--interleaved M] [--bin DIR]   (default: builds
#   release binaries; each ratio comes from R alternating hyperfine rounds of N/R runs per command,
#   default 200/5, and the interleaved one from M runs of each command, default 1000)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/common.sh

runs=200
rounds=5
interleaved=1000
bin=""
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) runs="$2"; shift 2 ;;
        --rounds) rounds="$2"; shift 2 ;;
        --interleaved) interleaved="$2"; shift 2 ;;
        --bin) bin="$2"; shift 2 ;;
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        *) echo "launcher.sh: error: unknown option $1" >&2; exit 2 ;;
    esac
done
command -v hyperfine >/dev/null || { echo "launcher.sh: error: hyperfine is needed (apt-get install hyperfine)" >&2; exit 1; }
if [ -z "$bin" ]; then
    bin="$(release_bin vsecure vsecure-run)"
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# The launcher under test is installed into the work directory as install.sh installs it. How
# a file came into the page cache changes how many page faults running it takes: the same bytes
# fresh from the linker took 365 faults per launch, copied with install(1) 347, and a copy made
# hours earlier, run again, 372 (2026-11-29). Copied the same way, builds compare fairly.
install -m 0755 "$bin/vsecure-run" "$work/vsecure-run"
launcher="$work/vsecure-run"

# make_vault DIR TOTAL: a vault with TOTAL secrets in production; the first 1000 carry tag bench.
make_vault() {
    local dir="$1" total="$2"
    mkdir -p "$dir"
    "$bin/vsecure" vault:init --vault "$dir/vault.db" --key-file "$dir/vault.key" >/dev/null
    python3 - "$total" > "$dir/secrets.env" <<'PY'
import secrets, string, sys
alphabet = string.ascii_letters + string.digits
for i in range(int(sys.argv[1])):
    print(f"S{i:06d}=" + "".join(secrets.choice(alphabet) for _ in range(40)))
PY
    "$bin/vsecure" secrets:import "$dir/secrets.env" --env production --vault "$dir/vault.db" --key-file "$dir/vault.key" >/dev/null
    rm "$dir/secrets.env"
}

# manifest FILE N: the first N secrets by name.
manifest() {
    { echo "version: 1"; echo "secrets:"; for ((i = 0; i < $2; i++)); do printf '  - S%06d\n' "$i"; done; } > "$1"
}

# pair_medians TAG CMD1 CMD2: "MEDIAN1 MEDIAN2" in ms over `rounds` alternating hyperfine rounds,
# so that a change of load on the shared machine lands on both commands.
pair_medians() {
    local tag="$1" round
    for ((round = 1; round <= rounds; round++)); do
        hyperfine -N --warmup 10 --runs "$(( (runs + rounds - 1) / rounds ))" --export-json "$work/$tag-$round.json" \
            "$2" "$3" >/dev/null
    done
    python3 - "$work" "$tag" "$rounds" <<'PY'
import json, statistics, sys
work, tag, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
times = [[], []]
for r in range(1, rounds + 1):
    for i, result in enumerate(json.load(open(f"{work}/{tag}-{r}.json"))["results"]):
        times[i] += result["times"]
print("%.3f %.3f" % tuple(statistics.median(t) * 1000 for t in times))
PY
}

echo "building vaults (1,000 and 100,000 secrets)..." >&2
make_vault "$work/small" 1000
make_vault "$work/large" 100000
export VSECURE_ENV=production

printf '\n%-8s %12s %12s %8s\n' "N" "env (ms)" "launch (ms)" "ratio"
for n in 10 100 1000; do
    manifest "$work/m$n.yml" "$n"
    # The floor: env exporting the same number of 40-character variables, then exec.
    floor="/usr/bin/env $(python3 -c 'import secrets,string,sys
a = string.ascii_letters + string.digits
print(" ".join("S%d=%s" % (i, "".join(secrets.choice(a) for _ in range(40))) for i in range(int(sys.argv[1]))))' "$n") /bin/true"
    read -r floor_ms launch_ms < <(pair_medians "h$n" "$floor" \
        "$launcher --vault $work/small/vault.db --key-file $work/small/vault.key --manifest $work/m$n.yml -- /bin/true")
    printf '%-8s %12s %12s %8s\n' "$n" "$floor_ms" "$launch_ms" "$(python3 -c "print('%.2f' % ($launch_ms / $floor_ms))")"
    if [ "$n" = 100 ]; then
        floor100="$floor"
        launch100="$launcher --vault $work/small/vault.db --key-file $work/small/vault.key --manifest $work/m$n.yml -- /bin/true"
    fi
done

# N = 100 again, interleaved run by run: the two commands in turn (posix_spawn, wait), the order
# swapped every other run, so each pair of runs meets the same load. The hyperfine rounds above
# run one command for a whole round and then the other, and this machine's load moves the floor
# by a fifth from one round to the next.
python3 - "$interleaved" "$floor100" "$launch100" <<'PY'
import os, statistics, sys, time
n, commands = int(sys.argv[1]), [sys.argv[2].split(), sys.argv[3].split()]
devnull = os.open(os.devnull, os.O_WRONLY)
times = [[], []]
for i in range(n + 20):
    for k in ((0, 1) if i % 2 == 0 else (1, 0)):
        start = time.perf_counter()
        pid = os.posix_spawn(commands[k][0], commands[k], os.environ, file_actions=[(os.POSIX_SPAWN_DUP2, devnull, 1)])
        _, status = os.waitpid(pid, 0)
        if status != 0: sys.exit(f"launcher.sh: error: {commands[k][0]} failed in the interleaved runs")
        if i >= 20: times[k].append(time.perf_counter() - start)  # the first 20 warm the caches
floor, launch = (statistics.median(t) * 1000 for t in times)
print(f"\nN=100 interleaved ({n} runs each): env {floor:.3f} ms, launch {launch:.3f} ms, ratio {launch / floor:.2f} (target <= 2.0)")
PY

# What start-up alone costs, for reading the ratios above: the launcher printing its version and
# exiting, against /bin/true (neither reads a vault or execs anything).
read -r true_ms version_ms < <(pair_medians startup "/bin/true" "$launcher --version")
printf '\nstart-up alone: vsecure-run --version %s ms, /bin/true %s ms\n' "$version_ms" "$true_ms"

# Peak RSS at N=1000, measured by a 20-line C program (cc ships with Swift): fork, exec, wait4,
# ru_maxrss. The kernel folds the high-water mark of the address space an execve replaces into
# the process's maxrss, so the figure covers vsecure-run up to its execve and /bin/true after it.
# (A fork from python3 would add python's own resident set, which is larger than the launcher's.)
cat > "$work/maxrss.c" <<'C'
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
int main(int argc, char **argv) {
    pid_t pid = fork();
    if (pid == 0) { execv(argv[1], argv + 1); _exit(127); }
    int status = 0;
    struct rusage usage;
    if (pid < 0 || wait4(pid, &status, 0, &usage) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) return 1;
    printf("%ld\n", usage.ru_maxrss);
    return 0;
}
C
cc -O2 -o "$work/maxrss" "$work/maxrss.c"
peaks=()
for _ in 1 2 3 4 5 6 7; do
    peaks+=("$("$work/maxrss" "$launcher" --vault "$work/small/vault.db" --key-file "$work/small/vault.key" \
        --manifest "$work/m1000.yml" -- /bin/true)")
done
peak_kib=$(printf '%s\n' "${peaks[@]}" | sort -n | sed -n 4p)   # the median of 7
printf '\npeak RSS at N=1000 (median of 7): %s KiB (%.2f MiB; target <= 10 MiB)\n' "$peak_kib" "$(python3 -c "print($peak_kib / 1024)")"

read -r small large < <(pair_medians vaultsize \
    "$launcher --vault $work/small/vault.db --key-file $work/small/vault.key --manifest $work/m100.yml -- /bin/true" \
    "$launcher --vault $work/large/vault.db --key-file $work/large/vault.key --manifest $work/m100.yml -- /bin/true")
printf 'N=100 from 1,000 secrets: %s ms; from 100,000: %s ms; ratio %s (target <= 1.2)\n' "$small" "$large" \
    "$(python3 -c "print('%.2f' % ($large / $small))")"
