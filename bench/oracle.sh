#!/usr/bin/env bash
# Long correctness runs of the rewriter (issue 10): the twin-database oracle
# over many statements and the mangled-SQL property test over many cases,
# release build, results appended to bench/results/oracle-<date>.md with
# the seeds (replay a run with TOMBSTONE_ORACLE_SEED / TOMBSTONE_MANGLE_SEED).
#   bench/oracle.sh                  10^6 oracle statements, 10^6 mangled cases
#   bench/oracle.sh 20000 100000     shorter
# cargo test keeps the short versions (600 statements, 3,000 cases).
set -euo pipefail
cd "$(dirname "$0")/.."
statements=${1:-1000000}
cases=${2:-1000000}
out="bench/results/oracle-$(date -u +%F).md"
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
log=$(mktemp)
trap 'rm -f "$log"' EXIT
export TOMBSTONE_ORACLE_STATEMENTS=$statements TOMBSTONE_MANGLE_CASES=$cases
started=$(date +%s)
cargo test --release --quiet --test oracle -- --nocapture 2>&1 | tee "$log" | grep -E '^oracle|^  ' || true
oracle_s=$(( $(date +%s) - started ))
started=$(date +%s)
cargo test --release --quiet --lib mangled_sql -- --nocapture 2>&1 | tee -a "$log" | grep -E '^mangled' || true
mangled_s=$(( $(date +%s) - started ))
status=ok
grep -q 'test result: FAILED\|panicked' "$log" && status=FAILED
{
    echo "## $(date -u '+%F %H:%M') UTC, commit $commit, $(nproc) cores: $status"
    echo
    echo "- oracle, $statements statements, ${oracle_s}s:"
    grep -E '^oracle' "$log" | sed 's/^/  /'
    echo "- mangled SQL, $cases cases, ${mangled_s}s:"
    grep -E '^mangled' "$log" | sed 's/^/  /'
    grep -E 'panicked|differs' "$log" | head -5 | sed 's/^/  /'
    echo
} >> "$out"
echo "appended to $out ($status)"
[[ $status == ok ]]
