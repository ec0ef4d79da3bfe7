'use strict';
// node-postgres through tombstone on the protected scenario: DELETE is soft,
// cascades, reports what a hard delete reports, and the application role
// never sees a deleted row.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./helpers');

const T = { timeout: h.TEST_TIMEOUT_MS };
let app;
let admin;
let direct;

before(async () => {
  app = await h.connect(h.APP_DSN);
  admin = await h.connect(h.ADMIN_DSN);
  direct = await h.connect(h.DIRECT_DSN);
}, T);

after(async () => {
  for (const c of [app, admin, direct]) if (c) await c.end();
}, T);

test('delete scenario project 2: DELETE 1, whole cascade soft', T, async () => {
  const ids = (await direct.query('SELECT id FROM tasks WHERE project_id = 2 ORDER BY id')).rows.map((r) => Number(r.id));
  assert.equal(ids.length, 500);
  const r = await app.query('DELETE FROM projects WHERE id = $1', [2]);
  assert.equal(r.command, 'DELETE');
  assert.equal(r.rowCount, 1);
  assert.equal(await h.liveCount(app, 'tasks', 'project_id', [2]), 0);
  assert.equal(await h.liveCount(app, 'comments', 'task_id', ids), 0);
  assert.equal(await h.liveCount(app, 'attachments', 'task_id', ids), 0);
  assert.equal(await h.liveCount(app, 'billing.invoices', 'project_id', [2]), 0);
  await h.assertSoftDeleted(direct, 'projects', 'id', [2], 1);
  await h.assertSoftDeleted(direct, 'tasks', 'id', ids, 500);
  await h.assertSoftDeleted(direct, 'comments', 'task_id', ids, 2000);
  await h.assertSoftDeleted(direct, 'attachments', 'task_id', ids, 300);
  await h.assertSoftDeleted(direct, 'billing.invoices', 'project_id', [2], 3);
  assert.equal(await h.liveCount(admin, 'tasks', 'project_id', [2]), 500);
  const again = await app.query('DELETE FROM projects WHERE id = 2');
  assert.equal(again.rowCount, 0);
});

test('seeded project: cascade, joins, admin sees the trash', T, async () => {
  const s = await h.seedProject(direct);
  const r = await app.query({ text: 'DELETE FROM projects WHERE id = $1', values: [s.project] });
  assert.equal(r.rowCount, 1);
  await h.assertProjectGone(app, direct, s, admin);
});

test('named prepared DELETE reused: live target rows only', T, async () => {
  const s = await h.seedProject(direct, { tasks: 5, comments: 2 });
  const counts = [];
  for (const id of [...s.tasks, ...s.tasks.slice(0, 2)]) {
    const r = await app.query({ name: 'ts_protected_del_task', text: 'DELETE FROM tasks WHERE id = $1', values: [id] });
    counts.push(r.rowCount);
  }
  assert.deepEqual(counts, [1, 1, 1, 1, 1, 0, 0]);
  await h.assertSoftDeleted(direct, 'tasks', 'id', s.tasks, 5);
  await h.assertSoftDeleted(direct, 'comments', 'id', s.comments, 10);
  assert.equal(await h.liveCount(app, 'comments', 'task_id', s.tasks), 0);
  const u = await app.query('UPDATE tasks SET done = true WHERE project_id = $1', [s.project]);
  assert.equal(u.rowCount, 0);
});

test('DELETE ... RETURNING returns the target rows', T, async () => {
  const s = await h.seedProject(direct, { tasks: 4 });
  const r = await app.query('DELETE FROM tasks WHERE project_id = $1 RETURNING id, title', [s.project]);
  assert.equal(r.rowCount, 4);
  assert.deepEqual(r.rows.map((x) => Number(x.id)).sort((a, b) => a - b), s.tasks);
  assert.ok(r.rows.every((x) => x.title.startsWith('seeded task ')));
  await h.assertSoftDeleted(direct, 'tasks', 'id', s.tasks, 4);
});

test('rollback undoes the cascade, commit keeps it', T, async () => {
  const s1 = await h.seedProject(direct, { tasks: 2, comments: 1, attachments: 1, invoices: 1 });
  const s2 = await h.seedProject(direct, { tasks: 2, comments: 1, attachments: 1, invoices: 1 });
  await app.query('BEGIN');
  assert.equal((await app.query('DELETE FROM projects WHERE id = $1', [s1.project])).rowCount, 1);
  assert.equal(await h.liveCount(app, 'tasks', 'project_id', [s1.project]), 0);
  await app.query('ROLLBACK');
  await h.assertLive(direct, 'tasks', 'id', s1.tasks, 2);
  await h.assertLive(direct, 'comments', 'id', s1.comments, 2);
  await app.query('BEGIN');
  assert.equal((await app.query('DELETE FROM projects WHERE id = $1', [s2.project])).rowCount, 1);
  await app.query('COMMIT');
  await h.assertProjectGone(app, direct, s2);
});

test('RESTRICT: category of a live project -> 23503, connection usable', T, async () => {
  const cat = (await direct.query('SELECT category_id FROM projects WHERE id = 3')).rows[0].category_id;
  await h.expectSqlState(app.query('DELETE FROM categories WHERE id = $1', [cat]), '23503');
  assert.equal((await app.query('SELECT 1 AS one')).rows[0].one, 1);
  await h.assertLive(direct, 'categories', 'id', [cat], 1);
  // only live children count: once its project is deleted the category may go
  const c2 = await h.seedCategory(direct);
  const s = await h.seedProject(direct, { tasks: 1, comments: 0, attachments: 0, invoices: 0, categoryId: c2 });
  await h.expectSqlState(app.query('DELETE FROM categories WHERE id = $1', [c2]), '23503');
  assert.equal((await app.query('DELETE FROM projects WHERE id = $1', [s.project])).rowCount, 1);
  assert.equal((await app.query('DELETE FROM categories WHERE id = $1', [c2])).rowCount, 1);
  await h.assertSoftDeleted(direct, 'categories', 'id', [c2], 1);
});

test('TRUNCATE tasks -> 42501, connection usable', T, async () => {
  await h.grantTruncateOnTasks(direct, app);
  const before = (await direct.query('SELECT count(*)::int AS n FROM tasks')).rows[0].n;
  await h.expectSqlState(app.query('TRUNCATE tasks'), '42501');
  assert.equal((await app.query('SELECT 1 AS one')).rows[0].one, 1);
  assert.equal((await direct.query('SELECT count(*)::int AS n FROM tasks')).rows[0].n, before);
});

test('pool: parallel deletes each report DELETE 1', T, async () => {
  const seeds = [];
  for (let i = 0; i < 6; i++) seeds.push(await h.seedProject(direct, { tasks: 3, comments: 1, attachments: 1, invoices: 1 }));
  const pool = new h.pg.Pool({ connectionString: h.APP_DSN, max: 3, connectionTimeoutMillis: h.CONNECT_TIMEOUT_MS });
  try {
    const rs = await Promise.all(seeds.map((s) => pool.query('DELETE FROM projects WHERE id = $1', [s.project])));
    assert.deepEqual(rs.map((r) => r.rowCount), [1, 1, 1, 1, 1, 1]);
  } finally {
    await pool.end();
  }
  for (const s of seeds) await h.assertProjectGone(app, direct, s);
});

test('DELETE ... USING a protected table: deleted rows never match', T, async () => {
  const cat = await h.seedCategory(direct);
  const a = await h.seedProject(direct, { tasks: 3, comments: 1, attachments: 0, invoices: 0, categoryId: cat });
  const b = await h.seedProject(direct, { tasks: 2, comments: 1, attachments: 0, invoices: 0, categoryId: cat });
  assert.equal((await app.query('DELETE FROM projects WHERE id = $1', [b.project])).rowCount, 1);
  const r = await app.query(
    'DELETE FROM tasks USING projects WHERE tasks.project_id = projects.id AND projects.category_id = $1', [cat]);
  assert.equal(r.rowCount, 3);
  await h.assertSoftDeleted(direct, 'tasks', 'id', [...a.tasks, ...b.tasks], 5);
});

test('pg-cursor (portal read in batches) sees live rows only', T, async () => {
  const Cursor = require('pg-cursor');
  const s = await h.seedProject(direct, { tasks: 7, comments: 0, attachments: 0, invoices: 0 });
  assert.equal((await app.query('DELETE FROM tasks WHERE id = ANY($1)', [s.tasks.slice(0, 3)])).rowCount, 3);
  const cursor = app.query(new Cursor('SELECT id FROM tasks WHERE project_id = $1 ORDER BY id', [s.project]));
  const seen = [];
  for (;;) {
    const rows = await cursor.read(2);
    if (rows.length === 0) break;
    seen.push(...rows.map((r) => Number(r.id)));
  }
  await cursor.close();
  assert.deepEqual(seen, s.tasks.slice(3));
  await h.assertSoftDeleted(direct, 'tasks', 'id', s.tasks.slice(0, 3), 3);
});
