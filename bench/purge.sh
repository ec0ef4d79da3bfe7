#!/usr/bin/env bash
# Purge speed on scenario data (issue 11's purge row: rows per second, with
# progress). Builds a scenario database of PROJECTS projects, migrates it,
# soft-deletes DELETED of them through the proxy (the normal delete path:
# operations recorded, audited), ages them 60 days, then times
# `tombstone purge`. Prints one line `rows seconds rows/s` per run.
#
#   bench/purge.sh [--projects N] [--deleted N] [--binary PATH] [--batch-size N] [--config FILE]
#
# Run it once per binary to compare (the before/after numbers in
# bench/results/purge-*.md come from one invocation of bench/purge-compare.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
projects=24
deleted=20
binary=${TOMBSTONE:-${CARGO_TARGET_DIR:-target}/debug/tombstone}
batch=""
config=""
while (($#)); do
    case "$1" in
        --projects) projects=$2; shift 2 ;;
        --deleted) deleted=$2; shift 2 ;;
        --binary) binary=$2; shift 2 ;;
        --batch-size) batch=$2; shift 2 ;;
        --config) config=$2; shift 2 ;;
        *) echo "unknown flag $1" >&2; exit 2 ;;
    esac
done
pg=${PGURL:-postgres://postgres@127.0.0.1:5432}
db="tombstone_bench_purge_$$"
keep=${KEEP_DB:-}   # set: leave the aged database (named on stdout) and do not purge
[[ -n $keep ]] && db=$keep
work=$(mktemp -d)
proxy_pid=""
cleanup() {
    [[ -n $proxy_pid ]] && kill "$proxy_pid" 2>/dev/null && wait "$proxy_pid" 2>/dev/null
    [[ -z $keep ]] && psql -q "$pg/postgres" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1
    true
    rm -rf "$work"
}
trap cleanup EXIT
url="$pg/$db"
psql -q "$pg/postgres" -c "CREATE DATABASE $db" >/dev/null
psql -q "$url" -v ON_ERROR_STOP=1 -v projects="$projects" \
    -f tests/scenario/schema.sql -f tests/scenario/data.sql >/dev/null
"$binary" migrate --apply --database-url "$url" >/dev/null

# Soft deletes through the proxy, as an application sends them.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$work/rules.toml" <<TOML
[listen]
address = "127.0.0.1:$port"
[upstream]
host = "127.0.0.1"
port = 5432
[database]
url = "$url"
[retention]
purge_interval = "0s"
TOML
"$binary" serve --config "$work/rules.toml" >"$work/serve.log" 2>&1 &
proxy_pid=$!
for _ in $(seq 100); do
    grep -q "tombstone listening" "$work/serve.log" && break
    sleep 0.1
done
for p in $(seq 1 "$deleted"); do
    echo "DELETE FROM projects WHERE id = $p;"
done | psql -q "host=127.0.0.1 port=$port user=postgres dbname=$db sslmode=disable" -v ON_ERROR_STOP=1 >/dev/null
kill "$proxy_pid"; wait "$proxy_pid" 2>/dev/null || true
proxy_pid=""

# Aged 60 days, directly (what 60 days of waiting would do).
psql -q "$url" -v ON_ERROR_STOP=1 >/dev/null <<SQL
SET session_replication_role = replica;  -- no audit of the backdating itself
DO \$\$
DECLARE t record;
BEGIN
  FOR t IN SELECT c.oid::regclass AS rel FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
            WHERE a.attname = 'deleted_at' AND c.relkind = 'r' AND c.relnamespace::regnamespace::text IN ('public', 'billing') LOOP
    EXECUTE format('UPDATE %s SET deleted_at = deleted_at - interval ''60 days'' WHERE deleted_at IS NOT NULL', t.rel);
  END LOOP;
END
\$\$;
UPDATE tombstone.operations SET created_at = created_at - interval '60 days';
VACUUM ANALYZE;
SQL
rows=$(psql -qtA "$url" -c "SELECT sum(n) FROM (
    SELECT count(*) AS n FROM projects WHERE deleted_at IS NOT NULL UNION ALL
    SELECT count(*) FROM project_members WHERE deleted_at IS NOT NULL UNION ALL
    SELECT count(*) FROM tasks WHERE deleted_at IS NOT NULL UNION ALL
    SELECT count(*) FROM comments WHERE deleted_at IS NOT NULL UNION ALL
    SELECT count(*) FROM attachments WHERE deleted_at IS NOT NULL UNION ALL
    SELECT count(*) FROM time_entries WHERE deleted_at IS NOT NULL UNION ALL
    SELECT count(*) FROM documents WHERE deleted_at IS NOT NULL UNION ALL
    SELECT count(*) FROM document_versions WHERE deleted_at IS NOT NULL UNION ALL
    SELECT count(*) FROM billing.invoices WHERE deleted_at IS NOT NULL) s")
[[ -n $keep ]] && { echo "$url: $rows rows to purge"; exit 0; }
args=(purge --database-url "$url")
[[ -n $batch ]] && args+=(--batch-size "$batch")
[[ -n $config ]] && args+=(--config "$config")
start=$(date +%s.%N)
"$binary" "${args[@]}" >"$work/purge.out" 2>"$work/purge.err" || { cat "$work/purge.err" >&2; exit 1; }
end=$(date +%s.%N)
left=$(psql -qtA "$url" -c "SELECT count(*) FROM tasks WHERE deleted_at IS NOT NULL")
[[ $left == 0 ]] || { echo "purge left $left soft-deleted tasks" >&2; cat "$work/purge.out" >&2; exit 1; }
python3 -c "import sys; r=int(sys.argv[1]); s=float(sys.argv[3])-float(sys.argv[2]); print(f'{r} {s:.2f} {r/s:.0f}')" "$rows" "$start" "$end"
