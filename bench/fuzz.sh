#!/usr/bin/env bash
# The fuzz targets (fuzz/, cargo-fuzz + libFuzzer; SPEC issue 14 item 2).
#
#   bench/fuzz.sh --smoke            each target for a few seconds (CI)
#   bench/fuzz.sh [--runs N] [--jobs J] [TARGET …]
#                                    each target for N executions (default
#                                    10^8), the result appended to
#                                    bench/results/fuzz-<date>.md
#
# The toolchain is the machine's stable one: cargo-fuzz passes the
# coverage flags rustc accepts on stable; RUSTC_BOOTSTRAP=1 lets it use the
# unstable ones it also adds. Builds with --sanitizer none (no
# AddressSanitizer: the targets are safe Rust apart from libpg_query, whose
# C is not instrumented either way). Crashes land in fuzz/artifacts/; each
# one found becomes a unit test (wire/ or rewrite/tests/).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
export RUSTC_BOOTSTRAP=1
TARGETS_ALL=(wire_frames wire_startup rewrite)
mode=full runs=100000000 jobs=1 targets=()
while (($#)); do
    case "$1" in
        --smoke) mode=smoke ;;
        --runs) runs="$2"; shift ;;
        --jobs) jobs="$2"; shift ;;
        *) targets+=("$1") ;;
    esac
    shift
done
((${#targets[@]})) || targets=("${TARGETS_ALL[@]}")
if ! command -v cargo-fuzz >/dev/null; then
    cargo install cargo-fuzz --locked --version 0.13.2
fi
cargo fuzz build --sanitizer none
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t"
    if [[ $mode == smoke ]]; then
        echo "== $t (smoke, 10 s)"
        log="$(mktemp)"
        status=0
        cargo fuzz run --sanitizer none "$t" "corpus/$t" "seeds/$t" -- \
            -max_total_time=10 -max_len=4096 -print_final_stats=1 >"$log" 2>&1 || status=$?
        grep -E '^stat::(number_of_executed_units|peak_rss_mb)' "$log" || true
        if ((status)); then
            tail -n 40 "$log" >&2
            echo "fuzz target $t failed (exit $status); the input is in fuzz/artifacts/$t/" >&2
            exit 1
        fi
        rm -f "$log"
    else
        out="../bench/results/fuzz-$(date -u +%Y-%m-%d).md"
        log="$(mktemp)"
        start=$(date +%s)
        status=0
        cargo fuzz run --sanitizer none "$t" "corpus/$t" "seeds/$t" -- \
            -runs="$runs" -jobs="$jobs" -workers="$jobs" -max_len=4096 -print_final_stats=1 >"$log" 2>&1 || status=$?
        secs=$(($(date +%s) - start))
        execs=$(grep -h '^stat::number_of_executed_units' "$log" fuzz-*.log 2>/dev/null | awk '{s+=$2} END {print s+0}')
        crashes=$(ls "artifacts/$t" 2>/dev/null | grep -c '^crash-' || true)
        {
            echo "| $(date -u +%FT%TZ) | $t | $execs | ${secs}s | $crashes | exit $status | $(git rev-parse --short HEAD) |"
        } >>"$out"
        echo "$t: $execs executions in ${secs}s, $crashes crashes (exit $status) -> $out"
        rm -f fuzz-*.log "$log"
    fi
done
