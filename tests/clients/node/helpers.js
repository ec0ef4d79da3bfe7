'use strict';
// Shared helpers for the node-postgres suite. Lives outside test/ so that
// `node --test` does not run it as a test file.
const crypto = require('node:crypto');
const pg = require('pg');

const DEFAULT_DSN = 'postgresql://postgres@127.0.0.1:5432/postgres';
const DSN = process.env.TOMBSTONE_TEST_DSN || DEFAULT_DSN;
const CONNECT_TIMEOUT_MS = 10000;
// Every test and hook has this bound, so a proxy that stops answering fails
// the run instead of hanging it.
const TEST_TIMEOUT_MS = 30000;

// A fresh lower-case identifier that needs no quoting.
function uniq(prefix = 't') {
  return `${prefix}_${crypto.randomBytes(6).toString('hex')}`;
}

async function connect(extra = {}) {
  const client = new pg.Client({
    connectionString: DSN,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    ...extra,
  });
  await client.connect();
  return client;
}

// Drop a table on a fresh connection (used in after hooks).
async function dropTable(name) {
  const c = await connect();
  try {
    await c.query(`DROP TABLE IF EXISTS ${name}`);
  } finally {
    await c.end();
  }
}

// Await a promise that must reject with a PostgreSQL error of this SQLSTATE.
async function expectSqlState(promise, code) {
  let err;
  try {
    await promise;
  } catch (e) {
    err = e;
  }
  if (!err) throw new Error(`expected SQLSTATE ${code}, but the query succeeded`);
  if (err.code !== code) {
    throw new Error(`expected SQLSTATE ${code}, got ${err.code}: ${err.message}`);
  }
  return err;
}

module.exports = { DSN, TEST_TIMEOUT_MS, pg, uniq, connect, dropTable, expectSqlState };
