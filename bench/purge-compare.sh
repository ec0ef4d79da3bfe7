#!/usr/bin/env bash
# Purge speed before and after, in one invocation (issue 11's purge row):
# bench/purge.sh for each binary and configuration, interleaved, ROUNDS
# times, on freshly built identical scenario databases; writes
# bench/results/purge-<date>.md with every run and the medians.
#
#   bench/purge-compare.sh BEFORE_BINARY AFTER_BINARY [--projects N] [--deleted N] [--rounds N]
#
# BEFORE_BINARY is a tombstone built from the commit to compare with (e.g.
# `git worktree add /tmp/before main && cargo build` there).
set -euo pipefail
cd "$(dirname "$0")/.."
before=$1
after=$2
shift 2
projects=12
deleted=10
rounds=2
while (($#)); do
    case "$1" in
        --projects) projects=$2; shift 2 ;;
        --deleted) deleted=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        *) echo "unknown flag $1" >&2; exit 2 ;;
    esac
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf '[audit]\nredact_on_purge = false\n' >"$work/no-redact.toml"
printf '[retention.archive]\nto = "table"\n' >"$work/archive-table.toml"
printf '[retention.archive]\nto = "files"\ndirectory = "%s/archive"\n' "$work" >"$work/archive-files.toml"
# name|binary|extra flags (the before binary knows none of the new keys)
configs=(
    "before (defaults)|$before|"
    "after (defaults: redaction on)|$after|"
    "after, redaction off|$after|--config $work/no-redact.toml"
    "after, archive to table (redaction on)|$after|--config $work/archive-table.toml"
    "after, archive to files (redaction on)|$after|--config $work/archive-files.toml"
)
results="$work/results"
: >"$results"
for round in $(seq 1 "$rounds"); do
    for c in "${configs[@]}"; do
        IFS='|' read -r name binary extra <<<"$c"
        # shellcheck disable=SC2086
        line=$(bench/purge.sh --projects "$projects" --deleted "$deleted" --binary "$binary" $extra 2>/dev/null)
        echo "round $round: $name: $line" >&2
        echo "$name|$round|$line" >>"$results"
    done
done
date=$(date -u +%Y-%m-%d)
out="bench/results/purge-$date.md"
python3 - "$results" "$out" "$projects" "$deleted" "$rounds" "$(git rev-parse --short HEAD)" <<'PY'
import statistics, sys, platform, subprocess
results, out, projects, deleted, rounds, commit = sys.argv[1:]
runs = {}
for line in open(results):
    name, rnd, data = line.rstrip("\n").split("|")
    rows, secs, rate = data.split()
    runs.setdefault(name, []).append((int(rows), float(secs), float(rate)))
pg = subprocess.run(["psql", "-qtA", "postgres://postgres@127.0.0.1:5432/postgres", "-c", "SHOW server_version"],
                    capture_output=True, text=True).stdout.strip()
load = open("/proc/loadavg").read().split()[:3]
with open(out, "w") as f:
    f.write(f"# Purge speed, before and after ({out.split('purge-')[1][:-3]})\n\n")
    f.write(f"`bench/purge-compare.sh --projects {projects} --deleted {deleted} --rounds {rounds}`, commit {commit}, "
            f"PostgreSQL {pg}, {platform.machine()}, {subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()} cores "
            f"(load average at the end {' '.join(load)}: shared with other builds). Scenario data: "
            f"{projects} projects, {deleted} soft-deleted through the proxy and aged 60 days, then `tombstone purge` timed "
            f"(debug builds: the time is PostgreSQL's). Runs interleaved, in this order, every round.\n\n")
    f.write("| configuration | rows | seconds (each round) | rows/s (each round) | median rows/s |\n|---|---|---|---|---|\n")
    for name, rs in runs.items():
        f.write(f"| {name} | {rs[0][0]} | {', '.join(f'{r[1]:.2f}' for r in rs)} | "
                f"{', '.join(f'{r[2]:.0f}' for r in rs)} | {statistics.median(r[2] for r in rs):.0f} |\n")
print(out)
PY
