#!/usr/bin/env bash
# The one command for tombstone's benchmarks (see bench/bench.py):
#   bench/run.sh            full run (about an hour on 2 cores)
#   bench/run.sh --quick    smoke run, under 3 minutes (CI runs this)
# Extra flags go to bench/bench.py (--duration S, --rounds N, --scale N).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v pgbouncer >/dev/null && [[ ! -x /usr/sbin/pgbouncer ]]; then
    echo "installing pgbouncer" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer >/dev/null
fi
python3 -c 'import psycopg' 2>/dev/null || python3 -m pip install -q -r tests/clients/requirements.txt
cargo build --release --quiet
exec python3 bench/bench.py "$@"
