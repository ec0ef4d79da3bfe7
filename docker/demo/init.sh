#!/bin/sh
# Run once by the postgres image's entrypoint on an empty data volume
# (docker-compose.yml): the database, the reference scenario, and the
# README quick start's roles and grants. Kept equal to `tombstone demo`
# (src/cli/demo.rs).
set -e
psql -v ON_ERROR_STOP=1 -U postgres -d postgres -c 'CREATE DATABASE app'
psql -v ON_ERROR_STOP=1 -U postgres -d app -v projects=3 \
     -f /scenario/schema.sql -f /scenario/data.sql
psql -v ON_ERROR_STOP=1 -U postgres -d app <<'SQL'
CREATE ROLE app LOGIN;  CREATE ROLE trash NOLOGIN;  CREATE ROLE admin LOGIN IN ROLE trash;
GRANT USAGE ON SCHEMA public, billing TO app, admin;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public, billing TO app, admin;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public, billing TO app, admin;
SQL
