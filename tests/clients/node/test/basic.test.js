'use strict';
// node-postgres: connect, CRUD with parameters, named prepared statements,
// transactions, errors.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { connect, dropTable, expectSqlState, uniq, TEST_TIMEOUT_MS } = require('../helpers');

const NON_ASCII = 'héllo wörld — ✓ 日本語 🐘 Ω';
const ALL_BYTES = Buffer.from(Array.from({ length: 256 }, (_, i) => i));

let client;
const tables = [];
function table() {
  const t = uniq('ts_tbl');
  tables.push(t);
  return t;
}

before(async () => {
  client = await connect({ application_name: uniq('tombstone_node') });
}, { timeout: TEST_TIMEOUT_MS });

after(async () => {
  if (client) await client.end();
  for (const t of tables) await dropTable(t);
}, { timeout: TEST_TIMEOUT_MS });

test('connect and server parameters', { timeout: TEST_TIMEOUT_MS }, async () => {
  const r = await client.query('SELECT 1 + 1 AS two, current_setting($1) AS app', ['application_name']);
  assert.equal(r.rows[0].two, 2);
  assert.equal(r.rows[0].app, client.connectionParameters.application_name);
  assert.match(client.processID.toString(), /^-?\d+$/);
  const { rows } = await client.query('SHOW client_encoding');
  assert.equal(rows[0].client_encoding, 'UTF8');
});

test('CRUD with parameters and many types', { timeout: TEST_TIMEOUT_MS }, async () => {
  const t = table();
  await client.query(
    `CREATE TABLE ${t} (id int PRIMARY KEY, t text, b bytea, n numeric, ts timestamptz,
       j jsonb, ia int[], ta text[], f float8, ok bool, big int8)`,
  );
  const ts = new Date(Date.UTC(2024, 1, 29, 23, 59, 58, 123));
  const full = [1, NON_ASCII, ALL_BYTES, '-12345678901234567890.000000000123', ts,
    { a: [1, 2, { b: null }], 'ü': 'ß' }, [1, null, -3], ['x', null, 'ÿ', '', 'with,comma', 'q"uote'],
    1.5e300, true, '9223372036854775807'];
  const placeholders = full.map((_, i) => `$${i + 1}`).join(', ');
  let r = await client.query(`INSERT INTO ${t} VALUES (${placeholders})`, full);
  assert.equal(r.rowCount, 1);
  assert.equal(r.command, 'INSERT');
  r = await client.query(`INSERT INTO ${t} (id) VALUES ($1)`, [2]);
  assert.equal(r.rowCount, 1);

  r = await client.query(`SELECT * FROM ${t} ORDER BY id`);
  assert.equal(r.rows.length, 2);
  assert.deepEqual(r.fields.map((f) => f.name),
    ['id', 't', 'b', 'n', 'ts', 'j', 'ia', 'ta', 'f', 'ok', 'big']);
  const row = r.rows[0];
  assert.equal(row.id, 1);
  assert.equal(row.t, NON_ASCII);
  assert.ok(Buffer.isBuffer(row.b));
  assert.ok(row.b.equals(ALL_BYTES));
  assert.equal(row.n, '-12345678901234567890.000000000123');
  assert.equal(row.ts.getTime(), ts.getTime());
  assert.deepEqual(row.j, { a: [1, 2, { b: null }], 'ü': 'ß' });
  assert.deepEqual(row.ia, [1, null, -3]);
  assert.deepEqual(row.ta, ['x', null, 'ÿ', '', 'with,comma', 'q"uote']);
  assert.equal(row.f, 1.5e300);
  assert.equal(row.ok, true);
  assert.equal(row.big, '9223372036854775807');
  const nulls = r.rows[1];
  for (const k of Object.keys(nulls)) if (k !== 'id') assert.equal(nulls[k], null, k);

  r = await client.query(`SELECT id FROM ${t} WHERE t = $1 AND b = $2`, [NON_ASCII, ALL_BYTES]);
  assert.deepEqual(r.rows, [{ id: 1 }]);

  r = await client.query(`UPDATE ${t} SET t = $1, n = n * $2 WHERE id = $3`, ['ü-updated', 2, 1]);
  assert.equal(r.rowCount, 1);
  r = await client.query(`UPDATE ${t} SET ok = $1`, [false]);
  assert.equal(r.rowCount, 2);
  r = await client.query(`SELECT t, n::text AS n, ok FROM ${t} WHERE id = $1`, [1]);
  assert.deepEqual(r.rows, [{ t: 'ü-updated', n: '-24691357802469135780.000000000246', ok: false }]);

  r = await client.query(`DELETE FROM ${t} WHERE id = $1`, [2]);
  assert.equal(r.rowCount, 1);
  r = await client.query(`DELETE FROM ${t} WHERE id = $1`, [2]);
  assert.equal(r.rowCount, 0);
  r = await client.query(`SELECT count(*)::int AS n FROM ${t}`);
  assert.equal(r.rows[0].n, 1);
});

test('multi-statement simple query and array row mode', { timeout: TEST_TIMEOUT_MS }, async () => {
  const results = await client.query("SELECT 1 AS a; SELECT 'two' AS b, 'ü' AS c");
  assert.equal(results.length, 2);
  assert.deepEqual(results[0].rows, [{ a: 1 }]);
  assert.deepEqual(results[1].rows, [{ b: 'two', c: 'ü' }]);
  const r = await client.query({ text: 'SELECT $1::int AS x, $2::text AS y', values: [5, 'ü'], rowMode: 'array' });
  assert.deepEqual(r.rows, [[5, 'ü']]);
});

test('binary result format', { timeout: TEST_TIMEOUT_MS }, async () => {
  const r = await client.query({
    text: 'SELECT $1::int4 AS i, $2::text AS t, $3::bool AS b, $4::float8 AS f',
    values: [42, NON_ASCII, true, 2.5],
    binary: true,
  });
  assert.deepEqual(r.fields.map((f) => f.format), ['binary', 'binary', 'binary', 'binary']);
  assert.deepEqual(r.rows, [{ i: 42, t: NON_ASCII, b: true, f: 2.5 }]);
});

test('named prepared statement reused many times', { timeout: TEST_TIMEOUT_MS }, async () => {
  const name = uniq('stmt');
  const text = 'SELECT $1::int * 2 AS doubled, $2::text AS t, length($3::bytea) AS len';
  for (let i = 0; i < 300; i++) {
    const payload = Buffer.alloc(i % 17, i % 256);
    const r = await client.query({ name, text, values: [i, `ü${i}`, payload] });
    assert.deepEqual(r.rows, [{ doubled: i * 2, t: `ü${i}`, len: i % 17 }]);
  }
  const r = await client.query('SELECT count(*)::int AS n FROM pg_prepared_statements WHERE name = $1', [name]);
  assert.equal(r.rows[0].n, 1);
  // A second named statement interleaved with the first one.
  const other = uniq('stmt');
  for (let i = 0; i < 50; i++) {
    const a = await client.query({ name, text, values: [i, 'a', Buffer.alloc(1)] });
    const b = await client.query({ name: other, text: 'SELECT $1::text || $1::text AS tt', values: [`ü${i}`] });
    assert.equal(a.rows[0].doubled, i * 2);
    assert.equal(b.rows[0].tt, `ü${i}ü${i}`);
  }
});

test('transaction commit and rollback', { timeout: TEST_TIMEOUT_MS }, async () => {
  const t = table();
  await client.query(`CREATE TABLE ${t} (id int PRIMARY KEY)`);
  const other = await connect();
  try {
    await client.query('BEGIN');
    await client.query(`INSERT INTO ${t} VALUES ($1)`, [1]);
    let r = await other.query(`SELECT count(*)::int AS n FROM ${t}`);
    assert.equal(r.rows[0].n, 0);
    await client.query('COMMIT');
    r = await other.query(`SELECT count(*)::int AS n FROM ${t}`);
    assert.equal(r.rows[0].n, 1);

    await client.query('BEGIN');
    await client.query(`INSERT INTO ${t} VALUES ($1)`, [2]);
    await client.query('ROLLBACK');
    r = await client.query(`SELECT array_agg(id ORDER BY id) AS ids FROM ${t}`);
    assert.deepEqual(r.rows[0].ids, [1]);
  } finally {
    await other.end();
  }
});

test('error inside a transaction, ROLLBACK, then more work', { timeout: TEST_TIMEOUT_MS }, async () => {
  const t = table();
  await client.query(`CREATE TABLE ${t} (id int PRIMARY KEY)`);
  await client.query('BEGIN');
  await client.query(`INSERT INTO ${t} VALUES ($1)`, [1]);
  await expectSqlState(client.query('SELECT 1 / $1::int', [0]), '22012');
  await expectSqlState(client.query('SELECT 1'), '25P02');
  await client.query('ROLLBACK');
  let r = await client.query(`SELECT count(*)::int AS n FROM ${t}`);
  assert.equal(r.rows[0].n, 0);
  await client.query('BEGIN');
  for (let i = 0; i < 10; i++) await client.query(`INSERT INTO ${t} VALUES ($1)`, [i]);
  await client.query('COMMIT');
  r = await client.query(`SELECT count(*)::int AS n, sum(id)::int AS s FROM ${t}`);
  assert.deepEqual(r.rows[0], { n: 10, s: 45 });
});

test('errors carry SQLSTATEs and leave the connection usable', { timeout: TEST_TIMEOUT_MS }, async () => {
  const e1 = await expectSqlState(client.query('SELEC 1 FROM nowhere'), '42601');
  assert.equal(e1.severity, 'ERROR');
  assert.equal((await client.query('SELECT 1 AS x')).rows[0].x, 1);
  // The same with the extended protocol (parameters force Parse/Bind).
  await expectSqlState(client.query('SELEC $1::int', [1]), '42601');
  await expectSqlState(client.query(`SELECT * FROM ${uniq('does_not_exist')}`), '42P01');

  const t = table();
  await client.query(`CREATE TABLE ${t} (id int, CONSTRAINT ${t}_pk PRIMARY KEY (id))`);
  await client.query(`INSERT INTO ${t} VALUES ($1)`, [1]);
  const e2 = await expectSqlState(client.query(`INSERT INTO ${t} VALUES ($1)`, [1]), '23505');
  assert.equal(e2.constraint, `${t}_pk`);
  assert.equal(e2.table, t);
  // An error in a named prepared statement, then reuse of it.
  const name = uniq('stmt');
  await expectSqlState(client.query({ name, text: `INSERT INTO ${t} VALUES ($1)`, values: [1] }), '23505');
  await client.query({ name, text: `INSERT INTO ${t} VALUES ($1)`, values: [2] });
  const r = await client.query(`SELECT count(*)::int AS n FROM ${t}`);
  assert.equal(r.rows[0].n, 2);
});

test('notices are delivered', { timeout: TEST_TIMEOUT_MS }, async () => {
  const notices = [];
  const onNotice = (n) => notices.push([n.severity, n.message]);
  client.on('notice', onNotice);
  try {
    await client.query("DO $$ BEGIN RAISE NOTICE 'hello ü %', 42; END $$");
  } finally {
    client.off('notice', onNotice);
  }
  assert.deepEqual(notices, [['NOTICE', 'hello ü 42']]);
});
