#!/usr/bin/env bash
# The one command for tombstone's benchmarks (see bench/bench.py, bench/rls.py,
# bench/prisma.py):
#   bench/run.sh            full run (about an hour on 2 cores, plus half an
#                           hour for the row-level security cost)
#   bench/run.sh --quick    smoke run, under 3 minutes (CI runs this)
# Extra flags go to bench/bench.py (--duration S, --rounds N, --scale N);
# bench/rls.py and bench/prisma.py get --quick and --out only.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v pgbouncer >/dev/null && [[ ! -x /usr/sbin/pgbouncer ]]; then
    echo "installing pgbouncer" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer >/dev/null
fi
python3 -c 'import psycopg' 2>/dev/null || python3 -m pip install -q -r tests/clients/requirements.txt
cargo build --release --quiet
rls_args=()
args=("$@")
while (($#)); do
    case "$1" in
        --quick) rls_args+=(--quick); shift ;;
        --out) rls_args+=(--out "$2"); shift 2 ;;
        --out=*) rls_args+=("$1"); shift ;;
        *) shift ;;
    esac
done
python3 bench/bench.py "${args[@]}"
# What row-level security costs (policies, revive trigger): with vs. without,
# through tombstone and directly; a few seconds with --quick.
python3 bench/rls.py "${rls_args[@]}"
# The cold path through the proxy: 100,000 distinct Prisma-like statements
# (every one a rewrite-cache miss) vs PgBouncer; seconds with --quick.
exec python3 bench/prisma.py "${rls_args[@]}"
