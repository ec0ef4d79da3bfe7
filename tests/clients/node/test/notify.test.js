'use strict';
// LISTEN/NOTIFY delivered to a node-postgres client.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { connect, uniq, TEST_TIMEOUT_MS } = require('../helpers');

test('LISTEN/NOTIFY', { timeout: TEST_TIMEOUT_MS }, async () => {
  const channel = uniq('chan');
  const listener = await connect();
  const sender = await connect();
  try {
    const got = [];
    const all = new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`only got ${got.length} notifications`)), 10000);
      listener.on('notification', (msg) => {
        got.push(msg);
        if (got.length === 3) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    await listener.query(`LISTEN ${channel}`);
    const pid = (await sender.query('SELECT pg_backend_pid() AS pid')).rows[0].pid;
    await sender.query(`NOTIFY ${channel}, 'first ü'`);
    await sender.query('SELECT pg_notify($1, $2)', [channel, 'second']);
    await sender.query('BEGIN');
    await sender.query('SELECT pg_notify($1, $2)', [channel, 'third in tx']);
    await sender.query('COMMIT');
    await all;
    assert.deepEqual(got.map((m) => [m.channel, m.payload]), [
      [channel, 'first ü'], [channel, 'second'], [channel, 'third in tx'],
    ]);
    for (const m of got) assert.equal(m.processId, pid);
    await listener.query(`UNLISTEN ${channel}`);
  } finally {
    await sender.end();
    await listener.end();
  }
});
