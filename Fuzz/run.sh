#!/usr/bin/env bash
# Builds the libFuzzer targets under Fuzz/ and runs each for a while on a copy of its seed corpus.
#
#   Fuzz/run.sh [SECONDS] [TARGET...]     (default: 30 seconds, every target)
#
# Fails unless every target really fuzzed (libFuzzer's "Done N runs" with N > 0) and wrote no
# crash, leak, timeout or out-of-memory artifact. Found inputs stay in a scratch directory, never
# in the checked-in corpus; the script prints where. See docs/testing.md, "Fuzzing".
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-30}
[ $# -gt 0 ] && shift
if ! [[ $seconds =~ ^[0-9]+$ ]] || [ "$seconds" -eq 0 ]; then
    echo "Fuzz/run.sh: error: SECONDS must be a positive whole number, not '$seconds'" >&2
    exit 2
fi
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    for dir in Fuzz/Fuzz*/; do targets+=("$(basename "$dir")"); done
fi
for target in "${targets[@]}"; do
    if [ ! -d "Fuzz/$target" ]; then
        echo "Fuzz/run.sh: error: no fuzz target '$target' (the targets are the Fuzz/Fuzz* directories)" >&2
        exit 2
    fi
done

# The fuzz targets exist in Package.swift only with VSECURE_FUZZ=1; the sanitizer build has its
# own scratch directory so it never disturbs .build. The Swift backtracer can hang after a crash.
#
# SwiftPM hands swiftc `-sanitize=fuzzer -sanitize=address` in an order that changes from one
# build to the next, and swiftc keeps only the last: half the builds have no coverage (libFuzzer
# still prints "Done N runs", fuzzing blind), the other half no AddressSanitizer. The combined
# -Xswiftc flag comes last and carries both; --sanitize still links libFuzzer and the ASan runtime.
export VSECURE_FUZZ=1 SWIFT_BACKTRACE=enable=no
build=(swift build --scratch-path .build-fuzz -c debug --sanitize fuzzer --sanitize address -Xswiftc -sanitize=fuzzer,address)
work=$(mktemp -d "${TMPDIR:-/tmp}/vsecure-fuzz.XXXXXX")
started=$SECONDS
for target in "${targets[@]}"; do
    if ! "${build[@]}" --product "$target" >"$work/build.log" 2>&1; then
        grep -v "ld.gold: warning: Cannot export local symbol" "$work/build.log" >&2
        echo "Fuzz/run.sh: error: building $target failed" >&2
        exit 1
    fi
done
bin=$("${build[@]}" --show-bin-path 2>/dev/null)
echo "fuzz: built ${#targets[@]} target(s) in $((SECONDS - started)) s"
failed=0
for target in "${targets[@]}"; do
    corpus="$work/$target/corpus" artifacts="$work/$target/artifacts/" log="$work/$target/fuzz.log"
    mkdir -p "$corpus" "$artifacts"
    if [ -d "Fuzz/corpus/$target" ]; then cp -R "Fuzz/corpus/$target/." "$corpus/"; fi
    options=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$artifacts")
    if [ -f "Fuzz/dict/$target.dict" ]; then options+=(-dict="Fuzz/dict/$target.dict"); fi
    status=0
    "$bin/$target" "${options[@]}" "$corpus" >"$log" 2>&1 || status=$?

    runs=$(sed -n 's/^Done \([0-9]*\) runs in .*/\1/p' "$log" | tail -n 1)
    # Coverage counters prove the code is instrumented, i.e. libFuzzer is guided, not guessing.
    counters=$(sed -n 's/^INFO: Loaded [0-9]* modules *(\([0-9]*\) inline 8-bit counters.*/\1/p' "$log" | head -n 1)
    speed=$(sed -n 's/^stat::average_exec_per_sec: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)
    found=$(find "$artifacts" -type f | head -n 1)
    if [ "$status" -ne 0 ] || [ -z "$runs" ] || [ "$runs" -eq 0 ] || [ -n "$found" ] || [ -z "$counters" ] || [ "$counters" -eq 0 ]; then
        failed=1
        echo "fuzz: $target FAILED (exit $status, runs ${runs:-none}, coverage counters ${counters:-none})${found:+, found $found}"
        echo "fuzz:   log: $log; reproduce with: VSECURE_FUZZ=1 SWIFT_BACKTRACE=enable=no $bin/$target ${found:-<input>}"
        grep -E '^(==[0-9]+==|SUMMARY|Fatal error|.*fatalError|Base64:|artifact_prefix)' "$log" | head -n 20 | sed 's/^/fuzz:   /'
    else
        cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
        echo "fuzz: $target ok: $runs runs in ${seconds}s, ${speed:-?} exec/s, coverage ${cov:-?} of $counters, corpus $(find "$corpus" -type f | wc -l) inputs"
    fi
done
if [ "$failed" -ne 0 ]; then
    echo "fuzz: FAILED; inputs and logs are in $work"
    exit 1
fi
rm -rf "$work"
