'use strict';
// Many queries in parallel over a pg.Pool.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { DSN, pg, dropTable, uniq, TEST_TIMEOUT_MS } = require('../helpers');

test('pool runs many queries in parallel', { timeout: TEST_TIMEOUT_MS }, async () => {
  const t = uniq('ts_tbl');
  const pool = new pg.Pool({ connectionString: DSN, max: 8, connectionTimeoutMillis: 10000 });
  try {
    await pool.query(`CREATE TABLE ${t} (id int PRIMARY KEY, t text)`);
    const plain = Array.from({ length: 300 }, (_, i) =>
      pool.query('SELECT $1::int * $1::int AS sq, pg_backend_pid() AS pid', [i]));
    const inTx = Array.from({ length: 100 }, async (_, i) => {
      const c = await pool.connect();
      try {
        await c.query('BEGIN');
        await c.query({ name: 'ins', text: `INSERT INTO ${t} VALUES ($1, $2)`, values: [i, `ü${i}`] });
        const r = await c.query(`SELECT t FROM ${t} WHERE id = $1`, [i]);
        await c.query('COMMIT');
        return r.rows[0].t;
      } finally {
        c.release();
      }
    });
    const [sq, texts] = await Promise.all([Promise.all(plain), Promise.all(inTx)]);
    assert.deepEqual(sq.map((r) => r.rows[0].sq), Array.from({ length: 300 }, (_, i) => i * i));
    assert.ok(new Set(sq.map((r) => r.rows[0].pid)).size > 1, 'expected several backends');
    assert.deepEqual(texts, Array.from({ length: 100 }, (_, i) => `ü${i}`));
    const r = await pool.query(`SELECT count(*)::int AS n FROM ${t}`);
    assert.equal(r.rows[0].n, 100);
  } finally {
    await pool.end();
    await dropTable(t);
  }
});
