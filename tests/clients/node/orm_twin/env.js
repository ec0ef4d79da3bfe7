'use strict';
// Environment and helpers of the Node ORM-vs-twin suite (Sequelize 6,
// TypeORM 1). Not a test file: its name matches no `node --test` pattern.
//
// `tests/orm_twin_node.rs` creates two empty databases with the same schema
// (`schema.js`: Sequelize's sync() and TypeORM's synchronize), runs
// `tombstone migrate --apply --fix` on one of them, starts a proxy for it and
// sets
//   ORM_TWIN_DSN   the hard-delete twin, straight to PostgreSQL
//   ORM_APP_DSN    the protected database through the proxy, as the normal
//                  application role
//   ORM_DIRECT_DSN the protected database straight to PostgreSQL, as
//                  superuser (checksums, action ids, restore)
//   TOMBSTONE_BIN  the tombstone binary (restore --action)
const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const pg = require('pg');

function need(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run this suite through \`cargo test --test orm_twin_node\``);
  return v;
}

const TIMEOUT_MS = 120000;
const SOFT_DELETE_COLUMN = 'deleted_at';

async function connect(dsn) {
  const c = new pg.Client({ connectionString: dsn, connectionTimeoutMillis: 10000 });
  await c.connect();
  return c;
}

const q = (ident) => `"${ident.replace(/"/g, '""')}"`;

// Every table of schema `public` whose name starts with `prefix`:
// { table: [rows, md5] } over every column but deleted_at, rows ordered by
// the primary key. With `liveOnly`, rows with deleted_at set are left out
// (what a hard delete would have left).
async function checksums(c, prefix, liveOnly = false) {
  const tables = (await c.query(
    "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    + "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND starts_with(c.relname, $1) ORDER BY 1",
    [prefix],
  )).rows.map((r) => r.relname);
  const out = {};
  for (const t of tables) {
    const rel = `public.${q(t)}`;
    const cols = (await c.query(
      'SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum',
      [rel],
    )).rows.map((r) => r.attname);
    const key = (await c.query(
      'SELECT a.attname FROM pg_index i '
      + 'JOIN LATERAL unnest(i.indkey) WITH ORDINALITY k(attnum, ord) ON true '
      + 'JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum '
      + 'WHERE i.indrelid = $1::regclass AND i.indisprimary ORDER BY k.ord',
      [rel],
    )).rows.map((r) => r.attname);
    const data = cols.filter((x) => x !== SOFT_DELETE_COLUMN);
    const order = key.length ? key : data;
    const where = liveOnly && cols.includes(SOFT_DELETE_COLUMN) ? `WHERE ${q(SOFT_DELETE_COLUMN)} IS NULL` : '';
    const r = await c.query(
      `SELECT count(*)::int AS n, md5(coalesce(string_agg(ROW(${data.map(q).join(', ')})::text, E'\\n' `
      + `ORDER BY ${order.map(q).join(', ')}), '')) AS md5 FROM ${rel} ${where}`,
    );
    out[t] = [r.rows[0].n, r.rows[0].md5];
  }
  return out;
}

// Rows with deleted_at set, per table of `prefix` that has the column.
async function softDeleted(c, prefix) {
  const tables = (await c.query(
    'SELECT c.relname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid '
    + 'JOIN pg_namespace n ON n.oid = c.relnamespace '
    + "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND a.attname = $1 "
    + 'AND NOT a.attisdropped AND starts_with(c.relname, $2) ORDER BY 1',
    [SOFT_DELETE_COLUMN, prefix],
  )).rows.map((r) => r.relname);
  const out = {};
  for (const t of tables) {
    out[t] = (await c.query(`SELECT count(*)::int AS n FROM public.${q(t)} WHERE ${q(SOFT_DELETE_COLUMN)} IS NOT NULL`)).rows[0].n;
  }
  return out;
}

// Action ids (transaction ids) of the soft deletes recorded so far on tables
// of `prefix` (the two ORM test files may run at the same time), oldest first.
async function actions(c, prefix) {
  return (await c.query(
    'SELECT xact_id::text AS id FROM (SELECT DISTINCT xact_id FROM tombstone.operations '
    + "WHERE kind = 'soft_delete' AND starts_with(table_name, $1)) a "
    + 'ORDER BY (SELECT min(created_at) FROM tombstone.operations o WHERE o.xact_id = a.xact_id), xact_id::text::bigint',
    [prefix],
  )).rows.map((r) => r.id);
}

// [[target table, operations]] of an action, by table.
async function operationTables(c, action) {
  return (await c.query(
    'SELECT table_name AS t, count(*)::int AS n FROM tombstone.operations WHERE xact_id::text = $1 GROUP BY 1 ORDER BY 1',
    [action],
  )).rows.map((r) => [r.t, r.n]);
}

// `tombstone restore --action` on the protected database; throws with its
// output when it fails.
function restoreAction(action) {
  try {
    return execFileSync(need('TOMBSTONE_BIN'), ['restore', '--action', action, '--database-url', need('ORM_DIRECT_DSN'),
      '--actor', 'orm-twin-node-test'], { encoding: 'utf8', timeout: 60000, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    throw new Error(`restore --action ${action} failed:\n${e.stdout}\n${e.stderr}`);
  }
}

// Every table of `prefix` in the protected database, without its
// soft-deleted rows, equals the twin's, table by table.
async function assertLiveStateEqual(twin, direct, prefix, what) {
  const a = await checksums(twin, prefix);
  const b = await checksums(direct, prefix, true);
  assert.ok(Object.keys(a).length, `no tables named ${prefix}*`);
  const diff = {};
  for (const t of new Set([...Object.keys(a), ...Object.keys(b)])) {
    if (JSON.stringify(a[t]) !== JSON.stringify(b[t])) diff[t] = { twin: a[t], protected: b[t] };
  }
  assert.deepEqual(diff, {}, `${what}: tables differ (twin, protected live rows)`);
}

// Every row of `before` is still physically there (the deletes were soft).
async function assertNothingRemoved(direct, prefix, before, what) {
  const now = await checksums(direct, prefix);
  const counts = (s) => Object.fromEntries(Object.entries(s).map(([t, [n]]) => [t, n]));
  assert.deepEqual(counts(now), counts(before), `${what}: rows physically removed`);
}

// Restore every action of `actionsAfter` not in `actionsBefore`, newest first,
// and require every table of `prefix` (without deleted_at, by key) to be
// exactly as `before`, with no row left soft-deleted.
async function restoreAll(direct, prefix, fresh, before) {
  for (const a of [...fresh].reverse()) restoreAction(a);
  const after = await checksums(direct, prefix);
  const diff = {};
  for (const t of new Set([...Object.keys(before), ...Object.keys(after)])) {
    if (JSON.stringify(before[t]) !== JSON.stringify(after[t])) diff[t] = { before: before[t], after: after[t] };
  }
  assert.deepEqual(diff, {}, 'after restoring every action, tables differ from before the deletes');
  const left = Object.entries(await softDeleted(direct, prefix)).filter(([, n]) => n);
  assert.deepEqual(left, [], 'rows still soft-deleted after restoring every action');
}

module.exports = {
  need, connect, checksums, softDeleted, actions, operationTables, restoreAction, assertLiveStateEqual,
  assertNothingRemoved, restoreAll, TIMEOUT_MS,
  TWIN_DSN: need('ORM_TWIN_DSN'),
  APP_DSN: need('ORM_APP_DSN'),
  DIRECT_DSN: need('ORM_DIRECT_DSN'),
};
