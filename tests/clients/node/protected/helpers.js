'use strict';
// Environment and helpers for the protected-scenario suite (node:test, `pg`,
// Sequelize). Not a test file: its name matches no `node --test` pattern.
//
// The Rust harness (or tests/clients/run-protected.sh) prepares a scenario
// database (projects=3, `tombstone migrate --apply`) behind tombstone and sets
//   TOMBSTONE_APP_DSN    through the proxy as the normal application role
//   TOMBSTONE_ADMIN_DSN  through the proxy as a member of the bypass role
//   TOMBSTONE_DIRECT_DSN straight to PostgreSQL (superuser)
// Tests never depend on each other's deletions: most seed a project of their
// own (directly, so the thing under test is the delete); of the scenario's own
// projects this suite deletes only project 2 (the Python suite deletes 1;
// project 3 and its category stay live).
const crypto = require('node:crypto');
const assert = require('node:assert/strict');
const pg = require('pg');

function need(name) {
  const v = process.env[name];
  if (!v) {
    throw new Error(`${name} is not set: this suite needs a protected scenario database behind ` +
      'tombstone (run tests/clients/run-protected.sh, or see tests/clients/README.md)');
  }
  return v;
}

const APP_DSN = need('TOMBSTONE_APP_DSN');
const ADMIN_DSN = need('TOMBSTONE_ADMIN_DSN');
const DIRECT_DSN = need('TOMBSTONE_DIRECT_DSN');
const CONNECT_TIMEOUT_MS = 10000;
const TEST_TIMEOUT_MS = 30000;

function uniq(prefix = 't') {
  return `${prefix}_${crypto.randomBytes(6).toString('hex')}`;
}

async function connect(dsn, extra = {}) {
  const c = new pg.Client({ connectionString: dsn, connectionTimeoutMillis: CONNECT_TIMEOUT_MS, ...extra });
  await c.connect();
  return c;
}

// pg returns int8 as strings; ids here are small, so make them numbers.
const num = (rows) => rows.map((r) => Number(r.id));

async function seedCategory(direct) {
  const r = await direct.query('INSERT INTO categories (name) VALUES ($1) RETURNING id', [uniq('cat')]);
  return r.rows[0].id;
}

async function seedUser(direct) {
  const r = await direct.query("INSERT INTO users (email, name) VALUES ($1, 'seeded') RETURNING id",
    [`${uniq('u')}@example.com`]);
  return r.rows[0].id;
}

// A project with `tasks` tasks, `comments` comments per task, attachments on
// the first `attachments` tasks and `invoices` invoices.
async function seedProject(direct, { tasks = 6, comments = 3, attachments = 4, invoices = 2,
  categoryId = null, assigneeId = null } = {}) {
  const p = await direct.query(
    'INSERT INTO projects (category_id, name) VALUES ($1, $2) RETURNING id', [categoryId, uniq('proj')]);
  const project = Number(p.rows[0].id);
  const t = await direct.query(
    "INSERT INTO tasks (project_id, assignee_id, title) SELECT $1, $2, 'seeded task ' || g " +
    'FROM generate_series(1, $3::int) g RETURNING id', [project, assigneeId, tasks]);
  const taskIds = num(t.rows).sort((a, b) => a - b);
  const c = await direct.query(
    "INSERT INTO comments (task_id, body) SELECT t, 'seeded comment ' || g " +
    'FROM unnest($1::bigint[]) t, generate_series(1, $2::int) g RETURNING id', [taskIds, comments]);
  const a = await direct.query(
    "INSERT INTO attachments (task_id, filename) SELECT t, 'seeded-' || t || '.pdf' " +
    'FROM unnest($1::bigint[]) t RETURNING id', [taskIds.slice(0, attachments)]);
  const i = await direct.query(
    'INSERT INTO billing.invoices (project_id, amount_cents) SELECT $1, 100 * g ' +
    'FROM generate_series(1, $2::int) g RETURNING id', [project, invoices]);
  return {
    project,
    tasks: taskIds,
    comments: num(c.rows).sort((x, y) => x - y),
    attachments: a.rows.map((r) => r.id),
    invoices: num(i.rows).sort((x, y) => x - y),
  };
}

// Give the application role TRUNCATE on tasks, so that a 42501 for
// `TRUNCATE tasks` must come from tombstone, not from a missing grant
// (without tombstone PostgreSQL then answers 0A000: tasks is referenced by
// foreign keys, so nothing is truncated either way).
async function grantTruncateOnTasks(direct, app) {
  const role = (await app.query('SELECT current_user AS u')).rows[0].u;
  await direct.query(`GRANT TRUNCATE ON tasks TO "${role}"`);
}

// Rows of `table` with `column` in `ids` that this connection can see.
async function liveCount(client, table, column, ids) {
  const r = await client.query(`SELECT count(*)::int AS n FROM ${table} WHERE ${column} = ANY($1)`, [ids]);
  return r.rows[0].n;
}

// [physically present, of which soft-deleted] (direct connection).
async function physical(direct, table, column, ids) {
  const r = await direct.query(
    `SELECT count(*)::int AS total, count(deleted_at)::int AS deleted FROM ${table} WHERE ${column} = ANY($1)`,
    [ids]);
  return [r.rows[0].total, r.rows[0].deleted];
}

async function assertSoftDeleted(direct, table, column, ids, expected) {
  assert.deepEqual(await physical(direct, table, column, ids), [expected, expected],
    `${table}: expected ${expected} rows physically present, all with deleted_at set`);
}

async function assertLive(direct, table, column, ids, expected) {
  assert.deepEqual(await physical(direct, table, column, ids), [expected, 0],
    `${table}: expected ${expected} live rows`);
}

// After deleting a seeded project: invisible through `app`, physically
// present with deleted_at set, visible to `admin` (if given).
async function assertProjectGone(app, direct, seed, admin = null) {
  assert.equal(await liveCount(app, 'projects', 'id', [seed.project]), 0, 'project visible');
  assert.equal(await liveCount(app, 'tasks', 'project_id', [seed.project]), 0, 'tasks visible');
  assert.equal(await liveCount(app, 'comments', 'task_id', seed.tasks), 0, 'comments visible');
  assert.equal(await liveCount(app, 'attachments', 'task_id', seed.tasks), 0, 'attachments visible');
  assert.equal(await liveCount(app, 'billing.invoices', 'project_id', [seed.project]), 0, 'invoices visible');
  const j = await app.query(
    'SELECT count(*)::int AS n FROM comments c JOIN tasks t ON t.id = c.task_id ' +
    'JOIN projects p ON p.id = t.project_id WHERE p.id = $1', [seed.project]);
  assert.equal(j.rows[0].n, 0, 'join sees deleted rows');
  await assertSoftDeleted(direct, 'projects', 'id', [seed.project], 1);
  await assertSoftDeleted(direct, 'tasks', 'id', seed.tasks, seed.tasks.length);
  await assertSoftDeleted(direct, 'comments', 'id', seed.comments, seed.comments.length);
  await assertSoftDeleted(direct, 'attachments', 'id', seed.attachments, seed.attachments.length);
  await assertSoftDeleted(direct, 'billing.invoices', 'id', seed.invoices, seed.invoices.length);
  if (admin) {
    assert.equal(await liveCount(admin, 'tasks', 'id', seed.tasks), seed.tasks.length, 'admin sees the trash');
  }
}

// Await a promise that must reject with a PostgreSQL error of this SQLSTATE
// (pg: err.code; Sequelize: err.original.code / err.parent.code).
async function expectSqlState(promise, code) {
  let err;
  try {
    await promise;
  } catch (e) {
    err = e;
  }
  if (!err) throw new Error(`expected SQLSTATE ${code}, but the query succeeded`);
  const got = err.code && /^[0-9A-Z]{5}$/.test(err.code) ? err.code : (err.original || err.parent || {}).code;
  if (got !== code) throw new Error(`expected SQLSTATE ${code}, got ${got}: ${err.message}`);
  return err;
}

module.exports = {
  APP_DSN, ADMIN_DSN, DIRECT_DSN, TEST_TIMEOUT_MS, CONNECT_TIMEOUT_MS, pg, uniq, connect,
  seedCategory, seedUser, seedProject, liveCount, physical, assertSoftDeleted, assertLive,
  assertProjectGone, expectSqlState, grantTruncateOnTasks,
};
