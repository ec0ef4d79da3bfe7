#!/usr/bin/env bash
# Run the protected-scenario client suites (tests/clients/python/protected,
# tests/clients/node/protected) by hand, the way the Rust harness does:
# a fresh scenario database (projects=3), `tombstone migrate --apply`, an
# application role, a bypass role with an admin member, a proxy in front of
# it; then both suites with TOMBSTONE_APP_DSN / TOMBSTONE_ADMIN_DSN /
# TOMBSTONE_DIRECT_DSN set. Everything is dropped afterwards.
#
#   tests/clients/run-protected.sh            # both suites, protection on
#   tests/clients/run-protected.sh python     # one suite (python | node)
#   tests/clients/run-protected.sh cmd 'psql "$TOMBSTONE_APP_DSN"'  # any command
#   PLAIN=1 tests/clients/run-protected.sh    # proxy without [database]:
#                                             # a plain relay, hard deletes;
#                                             # the suites must FAIL then
#
# Needs: cargo build (target/debug/tombstone, or set TOMBSTONE_BIN), psql,
# createdb/dropdb, PostgreSQL on 127.0.0.1:5432 as postgres (PGHOST/PGPORT/
# PGUSER override), and the suites' dependencies (pip install -r
# tests/clients/requirements.txt; npm ci in tests/clients/node).
set -euo pipefail

cd "$(dirname "$0")/../.."
which="${1:-all}"
bin="${TOMBSTONE_BIN:-target/debug/tombstone}"
pghost="${PGHOST:-127.0.0.1}"
pgport="${PGPORT:-5432}"
pguser="${PGUSER:-postgres}"
id="$(date +%s)_$$"
db="tsp_clients_${id}"
app="tsp_app_${id}"
admin="tsp_admin_${id}"
trash="tsp_trash_${id}"
work="$(mktemp -d)"
direct="postgresql://${pguser}@${pghost}:${pgport}/${db}"
proxy_pid=""

cleanup() {
    if [[ -n "$proxy_pid" ]]; then kill "$proxy_pid" 2>/dev/null || true; wait "$proxy_pid" 2>/dev/null || true; fi
    psql -q -h "$pghost" -p "$pgport" -U "$pguser" -d postgres \
        -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" \
        -c "DROP ROLE IF EXISTS \"$app\"" -c "DROP ROLE IF EXISTS \"$admin\"" \
        -c "DROP ROLE IF EXISTS \"$trash\"" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

psql() { command psql -X -v ON_ERROR_STOP=1 "$@"; }

createdb -h "$pghost" -p "$pgport" -U "$pguser" "$db"
psql -q -d "$direct" -v projects=3 -f tests/scenario/schema.sql -f tests/scenario/data.sql >/dev/null
"$bin" migrate --apply --database-url "$direct" >/dev/null
psql -q -d "$direct" \
    -c "CREATE ROLE \"$app\" LOGIN" \
    -c "CREATE ROLE \"$trash\" NOLOGIN" \
    -c "CREATE ROLE \"$admin\" LOGIN IN ROLE \"$trash\""
for role in "$app" "$admin"; do
    psql -q -d "$direct" -c "
        GRANT USAGE ON SCHEMA public, billing TO \"$role\";
        GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public, billing TO \"$role\";
        GRANT USAGE ON ALL SEQUENCES IN SCHEMA public, billing TO \"$role\";"
done

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
{
    printf '[listen]\naddress = "127.0.0.1:%s"\n' "$port"
    printf '[upstream]\nhost = "%s"\nport = %s\n' "$pghost" "$pgport"
    if [[ -z "${PLAIN:-}" ]]; then
        printf '[database]\nurl = "%s"\nrefresh_interval = "1s"\n' "$direct"
        printf '[roles]\nbypass = ["%s"]\n' "$trash"
    fi
} >"$work/rules.toml"
RUST_LOG="${RUST_LOG:-tombstone=debug,info}" "$bin" serve --config "$work/rules.toml" 2>"$work/proxy.log" &
proxy_pid=$!
for _ in $(seq 1 200); do
    (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.05
done

export TOMBSTONE_APP_DSN="postgresql://${app}@127.0.0.1:${port}/${db}?sslmode=disable"
export TOMBSTONE_ADMIN_DSN="postgresql://${admin}@127.0.0.1:${port}/${db}?sslmode=disable"
export TOMBSTONE_DIRECT_DSN="$direct"
echo "proxy on :$port ($([[ -n "${PLAIN:-}" ]] && echo 'plain relay, no protection' || echo protected)), database $db"

status=0
if [[ "$which" == all || "$which" == python ]]; then
    python3 -m pytest -q ${PYTEST_ARGS:-} tests/clients/python/protected || status=1
fi
if [[ "$which" == all || "$which" == node ]]; then
    (cd tests/clients/node && npm run --silent test:protected) || status=1
fi
if [[ "$which" == cmd ]]; then  # run-protected.sh cmd '<shell command>': anything, with the DSNs set
    bash -c "$2" || status=1
fi
if [[ -n "${KEEP_LOG:-}" ]]; then cp "$work/proxy.log" "$KEEP_LOG"; fi
exit "$status"
