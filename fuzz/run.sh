#!/usr/bin/env bash
# Runs one fuzz target for a given time and prints executions and coverage.
#
#   fuzz/run.sh TARGET SECONDS [extra libFuzzer flags...]
#   fuzz/run.sh frame 600
#
# TARGET: frame, capture, site, records or pcapng_clock. Needs the nightly toolchain and cargo-fuzz
# (`cargo install cargo-fuzz`). Seeds the corpus from samples/ (make-seeds.py) first,
# runs niced, one process, with a 2 GiB RSS limit and a 10 s per-input timeout, and keeps
# the whole libFuzzer log in fuzz/logs/. A crash, hang or OOM leaves its input in
# fuzz/artifacts/TARGET/ and makes this script exit non-zero.
set -euo pipefail

if [ $# -lt 2 ]; then
    echo "usage: $0 TARGET SECONDS [libFuzzer flags...]   (TARGET: frame, capture, site, records, pcapng_clock)" >&2
    exit 2
fi
target=$1
seconds=$2
shift 2
case "$target" in
    frame | capture | site | records | pcapng_clock) ;;
    *)
        echo "$0: unknown target '$target' (frame, capture, site, records, pcapng_clock)" >&2
        exit 2
        ;;
esac

here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
python3 make-seeds.py >/dev/null
mkdir -p logs "artifacts/$target"
log="logs/$target-$(date -u +%Y%m%dT%H%M%SZ).log"

# Build first (its output is not part of the campaign's log).
CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-1} nice -n 19 cargo +nightly fuzz build "$target" >&2

# One process (what `-jobs=1 -workers=1` amounts to, without libFuzzer's fork-and-redirect
# to fuzz-0.log), niced, bounded in memory and per-input time.
start=$(date +%s)
set +e
nice -n 19 cargo +nightly fuzz run "$target" "corpus/$target" -- \
    -max_total_time="$seconds" \
    -rss_limit_mb=2048 \
    -malloc_limit_mb=2048 \
    -timeout=10 \
    -print_final_stats=1 \
    -artifact_prefix="artifacts/$target/" \
    "$@" 2>&1 | tee "$log" | grep --line-buffered -E '^#[0-9]+ +(INITED|pulse|DONE)|ERROR|panicked|^stat::' >&2
status=${PIPESTATUS[0]}
set -e
elapsed=$(( $(date +%s) - start ))

last_cov=$(grep -E '^#[0-9]+' "$log" | grep -o 'cov: [0-9]*' | tail -1 | awk '{print $2}')
last_ft=$(grep -E '^#[0-9]+' "$log" | grep -o 'ft: [0-9]*' | tail -1 | awk '{print $2}')
corpus=$(grep -E '^#[0-9]+' "$log" | grep -o 'corp: [0-9]*/[0-9A-Za-z]*' | tail -1 | awk '{print $2}')
execs=$(grep '^stat::number_of_executed_units' "$log" | awk '{print $2}')
rate=$(grep '^stat::average_exec_per_sec' "$log" | awk '{print $2}')
rss=$(grep '^stat::peak_rss_mb' "$log" | awk '{print $2}')
fuzzed=$(grep -E '^Done [0-9]+ runs in [0-9]+ second' "$log" | awk '{print $5}')
echo
echo "target:      $target"
echo "duration:    ${fuzzed:-?} s fuzzing (asked ${seconds} s; ${elapsed} s with the build)"
echo "executions:  ${execs:-?} (${rate:-?} exec/s)"
echo "coverage:    cov ${last_cov:-?} edges, ft ${last_ft:-?} features, corpus ${corpus:-?}"
echo "peak RSS:    ${rss:-?} MB"
echo "log:         fuzz/$log"
if [ "$status" -ne 0 ]; then
    echo "RESULT:      FAILED (libFuzzer exit $status): see the log and fuzz/artifacts/$target/"
    exit 1
fi
echo "RESULT:      no crash, no hang, no OOM"
