'use strict';
// pg-cursor and pg-query-stream: portals read in batches with
// Execute(max_rows) followed by Flush (no Sync) until the portal is done.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const Cursor = require('pg-cursor');
const QueryStream = require('pg-query-stream');
const { connect, expectSqlState, TEST_TIMEOUT_MS } = require('../helpers');

let client;
before(async () => {
  client = await connect();
}, { timeout: TEST_TIMEOUT_MS });
after(async () => {
  if (client) await client.end();
}, { timeout: TEST_TIMEOUT_MS });

test('pg-cursor reads a large result in batches', { timeout: TEST_TIMEOUT_MS }, async () => {
  const cursor = client.query(new Cursor("SELECT g, repeat('ü', g % 7) AS s FROM generate_series(1, $1) g", [5000]));
  const got = [];
  let batches = 0;
  for (;;) {
    const rows = await cursor.read(333);
    if (rows.length === 0) break;
    batches++;
    assert.ok(rows.length <= 333);
    got.push(...rows);
  }
  await cursor.close();
  assert.equal(batches, Math.ceil(5000 / 333));
  assert.equal(got.length, 5000);
  got.forEach((r, i) => assert.deepEqual(r, { g: i + 1, s: 'ü'.repeat((i + 1) % 7) }));
  assert.equal((await client.query('SELECT 1 AS one')).rows[0].one, 1);
});

test('pg-cursor closed early, then the connection is reused', { timeout: TEST_TIMEOUT_MS }, async () => {
  for (let round = 0; round < 20; round++) {
    const cursor = client.query(new Cursor('SELECT g FROM generate_series(1, 1000) g'));
    const rows = await cursor.read(10);
    assert.deepEqual(rows.map((r) => r.g), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    await cursor.close();
    const r = await client.query('SELECT $1::int + 1 AS n', [round]);
    assert.equal(r.rows[0].n, round + 1);
  }
});

test('pg-cursor error in a later batch', { timeout: TEST_TIMEOUT_MS }, async () => {
  const cursor = client.query(new Cursor('SELECT 1 / (g - 150) AS x FROM generate_series(1, 300) g'));
  const first = await cursor.read(100);
  assert.equal(first.length, 100);
  await expectSqlState(cursor.read(100), '22012');
  const r = await client.query('SELECT 2 AS two');
  assert.equal(r.rows[0].two, 2);
});

test('pg-cursor inside a transaction', { timeout: TEST_TIMEOUT_MS }, async () => {
  await client.query('BEGIN');
  const cursor = client.query(new Cursor('SELECT g FROM generate_series(1, 250) g'));
  let total = 0;
  let sum = 0;
  for (;;) {
    const rows = await cursor.read(64);
    if (!rows.length) break;
    total += rows.length;
    for (const r of rows) sum += r.g;
  }
  await cursor.close();
  await client.query('COMMIT');
  assert.equal(total, 250);
  assert.equal(sum, (250 * 251) / 2);
});

test('pg-query-stream streams rows', { timeout: TEST_TIMEOUT_MS }, async () => {
  const stream = client.query(new QueryStream('SELECT g, $1::text AS t FROM generate_series(1, 3000) g', ['ü'], { batchSize: 100 }));
  let n = 0;
  for await (const row of stream) {
    n++;
    assert.equal(row.g, n);
    assert.equal(row.t, 'ü');
  }
  assert.equal(n, 3000);
  assert.equal((await client.query('SELECT 3 AS three')).rows[0].three, 3);
});
