#!/bin/sh
# Runs one fuzz target for a fixed budget: fuzz/run.sh TARGET SECONDS [libFuzzer flags...]
# (built first with `cargo +nightly fuzz build -a`). Results go to fuzz/logs/TARGET.log.
set -eu
cd "$(dirname "$0")"
target=$1
seconds=$2
shift 2
mkdir -p "corpus/$target" "artifacts/$target" logs
ASAN_OPTIONS=detect_odr_violation=0 exec nice -n 19 \
    "target/x86_64-unknown-linux-gnu/release/$target" \
    -artifact_prefix="artifacts/$target/" -max_total_time="$seconds" -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 "$@" "corpus/$target" "seeds/$target" \
    >"logs/$target.log" 2>&1
