#!/usr/bin/env bash
# Select-only pgbench through tombstone vs directly against PostgreSQL, in
# the same session, interleaved (direct, proxy, direct, proxy, …) so that
# machine noise hits both alike. Reports the median TPS of each and the
# ratio. A measurement, not a test: it never fails on a number. With
# --protected, pgbench_accounts gets a deleted_at column and the tombstone
# schema, so every statement goes through the rewriter and its cache (whose
# counters are printed). The whole matrix is bench/run.sh.
#
#   bench/pgbench-select.sh [--protected] [--duration SECONDS] [--clients N]
#                           [--rounds N] [--mode simple|extended|prepared] [--scale N]
#
# Reads TOMBSTONE_TEST_DATABASE_URL's host/port (default 127.0.0.1:5432,
# user postgres). Creates and drops its own database.
set -euo pipefail
cd "$(dirname "$0")/.."

duration=20 clients=8 rounds=3 mode=simple scale=10 protected=0
while (($#)); do
    case "$1" in
        --protected) protected=1; shift ;;
        --duration) duration=$2; shift 2 ;;
        --clients) clients=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        --mode) mode=$2; shift 2 ;;
        --scale) scale=$2; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done

pghost=127.0.0.1 pgport=5432 pguser=postgres
db="tombstone_bench_$$"
proxy_port=$((20000 + RANDOM % 20000))
workdir=$(mktemp -d)
proxy_pid=""
cleanup() {
    [[ -n "$proxy_pid" ]] && kill "$proxy_pid" 2>/dev/null && wait "$proxy_pid" 2>/dev/null
    dropdb -h "$pghost" -p "$pgport" -U "$pguser" --if-exists --force "$db" 2>/dev/null || true
    rm -rf "$workdir"
}
trap cleanup EXIT

cargo build --release --quiet
createdb -h "$pghost" -p "$pgport" -U "$pguser" "$db"
pgbench -h "$pghost" -p "$pgport" -U "$pguser" -i -q -s "$scale" "$db" >/dev/null 2>&1
url="postgres://$pguser@$pghost:$pgport/$db"
database_table=""
if ((protected)); then
    psql -q -h "$pghost" -p "$pgport" -U "$pguser" "$db" -c "ALTER TABLE pgbench_accounts ADD COLUMN deleted_at timestamptz"
    target/release/tombstone migrate --apply --database-url "$url" >/dev/null
    database_table=$'[database]\nurl = "'"$url"$'"'
fi

cat >"$workdir/rules.toml" <<TOML
[listen]
address = "127.0.0.1:$proxy_port"
[upstream]
host = "$pghost"
port = $pgport
$database_table
[log]
level = "info"
TOML
target/release/tombstone serve --config "$workdir/rules.toml" 2>"$workdir/proxy.log" &
proxy_pid=$!
for _ in $(seq 1 100); do
    pg_isready -q -h 127.0.0.1 -p "$proxy_port" && break
    sleep 0.1
done

run() { # port → tps
    pgbench -h 127.0.0.1 -p "$1" -U "$pguser" -S -M "$mode" -c "$clients" -j 2 -T "$duration" "$db" 2>/dev/null \
        | awk '/^tps/ {print $3; exit}'
}
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

direct=() proxied=()
for r in $(seq 1 "$rounds"); do
    d=$(run "$pgport"); p=$(run "$proxy_port")
    direct+=("$d") proxied+=("$p")
    printf 'round %d: direct %s tps, tombstone %s tps\n' "$r" "$d" "$p"
done
kill -TERM "$proxy_pid"; wait "$proxy_pid" 2>/dev/null || true; proxy_pid=""
md=$(printf '%s\n' "${direct[@]}" | median)
mp=$(printf '%s\n' "${proxied[@]}" | median)
echo
echo "pgbench -S -M $mode -c $clients -T $duration, scale $scale, $( ((protected)) && echo "pgbench_accounts protected" || echo "nothing protected"), median of $rounds ($(nproc) cores, $(git rev-parse --short HEAD 2>/dev/null || echo unknown))"
printf '| %-10s | %12s |\n' "target" "TPS"
printf '| %-10s | %12.0f |\n' "direct" "$md" "tombstone" "$mp"
awk -v a="$mp" -v b="$md" 'BEGIN {printf "tombstone/direct = %.2f\n", a/b}'
((protected)) && grep -a "rewrite cache" "$workdir/proxy.log" | sed 's/\x1b\[[0-9;]*m//g' | tail -1
exit 0
