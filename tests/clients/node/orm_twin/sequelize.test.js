'use strict';
// Sequelize 6 through tombstone against a hard-delete twin, then every action
// restored to the exact state before the deletes (see sequelize_models.js).
// The same ORM calls run on the twin (straight to PostgreSQL, hard deletes)
// and through the proxy as the application role (soft deletes).
const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const { Sequelize } = require('sequelize');
const env = require('./env');
const { define } = require('./sequelize_models');

const PREFIX = 'sq_';
const DBS = {};
for (const [db, dsn] of [['twin', env.TWIN_DSN], ['proxy', env.APP_DSN]]) {
  const sequelize = new Sequelize(dsn, { logging: false, pool: { max: 2, min: 0 } });
  const sent = [];
  sequelize.options.logging = (sql) => sent.push(sql);
  DBS[db] = { sequelize, sent, m: define(sequelize) };
}

after(async () => {
  for (const { sequelize } of Object.values(DBS)) await sequelize.close();
});

// 4 parents of 3 children of 2 grandchildren; 3 posts of 3 of 4 tags; 3
// owners of 3 items. The same order on both databases (so ids match).
async function seed({ sequelize, m }) {
  await sequelize.transaction(async (transaction) => {
    for (let p = 0; p < 4; p++) {
      await m.SqParent.create({
        name: `parent ${p}`,
        children: [0, 1, 2].map((c) => ({
          name: `child ${p}.${c}`,
          grandchildren: [0, 1].map((g) => ({ name: `grandchild ${p}.${c}.${g}` })),
        })),
      }, { transaction, include: [{ association: 'children', include: ['grandchildren'] }] });
    }
    const tags = [];
    for (let t = 0; t < 4; t++) tags.push(await m.SqTag.create({ name: `tag ${t}` }, { transaction }));
    for (let p = 0; p < 3; p++) {
      const post = await m.SqPost.create({ name: `post ${p}` }, { transaction });
      await post.addTags(tags.filter((_, t) => t !== p), { transaction });
    }
    for (let o = 0; o < 3; o++) {
      await m.SqOwner.create({ name: `owner ${o}`, items: [0, 1, 2].map((i) => ({ name: `item ${o}.${i}` })) },
        { transaction, include: ['items'] });
    }
  });
}

// Every model's rows as the ORM loads them, and the associations.
async function observe({ m }) {
  const seen = {};
  for (const model of Object.values(m)) {
    const cols = Object.keys(model.rawAttributes).filter((k) => k !== 'deletedAt');
    seen[model.tableName] = (await model.findAll({ order: cols.map((c) => [c, 'ASC']), raw: true }))
      .map((r) => cols.map((c) => r[c]));
  }
  seen.tree = (await m.SqParent.findAll({
    include: [{ association: 'children', include: ['grandchildren'] }],
    order: [['id'], ['children', 'id'], ['children', 'grandchildren', 'id']],
  })).map((p) => [p.name, p.children.map((c) => [c.name, c.grandchildren.map((g) => g.name)])]);
  seen.posts = (await m.SqPost.findAll({ include: ['tags'], order: [['id'], ['tags', 'id']] }))
    .map((p) => [p.name, p.tags.map((t) => t.name)]);
  seen.owners = (await m.SqOwner.findAll({ include: ['items'], order: [['id'], ['items', 'id']] }))
    .map((o) => [o.name, o.items.map((i) => i.name)]);
  seen.orphans = (await m.SqItem.findAll({ where: { ownerId: null }, order: [['id']] })).map((i) => i.name);
  return seen;
}

test('Sequelize cascades, unlinks and in-app SET NULL equal the twin; every action restores the exact state',
  { timeout: env.TIMEOUT_MS }, async () => {
    const twin = await env.connect(env.TWIN_DSN);
    const direct = await env.connect(env.DIRECT_DSN);
    try {
      for (const db of Object.values(DBS)) await seed(db);
      const before = await env.checksums(direct, PREFIX);
      assert.deepEqual(before, await env.checksums(twin, PREFIX), 'seeded twin and protected databases differ');
      const seenBefore = await observe(DBS.proxy);
      const actionsBefore = new Set(await env.actions(direct, PREFIX));

      const both = async (what, step) => {
        const results = {};
        for (const [db, d] of Object.entries(DBS)) {
          const n = d.sent.length;
          results[db] = await step(d);
          results[`${db} deletes`] = d.sent.slice(n).filter((s) => /\bDELETE\b/.test(s)).length;
        }
        assert.deepEqual(results.proxy, results.twin, `${what}: result`);
        assert.equal(results['proxy deletes'], results['twin deletes'], `${what}: DELETEs sent`);
        assert.deepEqual(await observe(DBS.proxy), await observe(DBS.twin), `${what}: what the ORM loads`);
        await env.assertLiveStateEqual(twin, direct, PREFIX, what);
        return [results.twin, results['twin deletes']];
      };

      // 1. hooks: true cascade: destroy() loads and destroys every child and
      //    grandchild itself, then the parent: 10 DELETEs, one transaction.
      const [, deletes] = await both('parent.destroy() (onDelete CASCADE, hooks: true)', ({ sequelize, m }) =>
        sequelize.transaction(async (transaction) => {
          const parent = await m.SqParent.findOne({ where: { name: 'parent 0' }, transaction });
          await parent.destroy({ transaction });
          return null;
        }));
      assert.equal(deletes, 10, 'Sequelize sent one DELETE per row (6 grandchildren, 3 children, the parent)');

      // 2. Many-to-many unlink: removeTags() deletes link rows only.
      await both('post.removeTags()', async ({ m }) => {
        const post = await m.SqPost.findOne({ where: { name: 'post 0' } });
        const tags = await m.SqTag.findAll({ where: { name: ['tag 1', 'tag 3'] } });
        return post.removeTags(tags);
      });

      // 3. setTags(): unlink one, keep the others.
      await both('post.setTags()', async ({ m }) => {
        const post = await m.SqPost.findOne({ where: { name: 'post 1' } });
        await post.setTags(await m.SqTag.findAll({ where: { name: ['tag 0'] } }));
        return (await post.getTags({ order: [['id']] })).map((t) => t.name);
      });

      // 4. In-app SET NULL: the application nulls the items' owner_id
      //    (NO ACTION key), then destroys the owner, one transaction.
      await both('owner.setItems([]) + owner.destroy() (in-app SET NULL)', ({ sequelize, m }) =>
        sequelize.transaction(async (transaction) => {
          const owner = await m.SqOwner.findOne({ where: { name: 'owner 1' }, transaction });
          await owner.setItems([], { transaction });
          await owner.destroy({ transaction });
          return null;
        }));

      // 5. Model.destroy({ where }) with hooks off: one DELETE, its count.
      const [count] = await both('SqGrandchild.destroy({ where })', async ({ m }) => {
        const parent = await m.SqParent.findOne({ where: { name: 'parent 3' }, include: ['children'] });
        return m.SqGrandchild.destroy({ where: { childId: parent.children.map((c) => c.id) } });
      });
      assert.equal(count, 6);

      // 6. A destroy the NO ACTION key refuses (owner 2 still has items):
      //    the same error on both, nothing changes.
      const [code] = await both('owner.destroy() with items (NO ACTION)', async ({ m }) => {
        const owner = await m.SqOwner.findOne({ where: { name: 'owner 2' } });
        const err = await owner.destroy().then(() => null, (e) => e);
        assert.ok(err, 'destroy was not refused');
        return [err.name, err.parent && err.parent.code];
      });
      assert.deepEqual(code, ['SequelizeForeignKeyConstraintError', '23503']);

      await env.assertNothingRemoved(direct, PREFIX, before, 'after the Sequelize deletes');
      const fresh = (await env.actions(direct, PREFIX)).filter((a) => !actionsBefore.has(a));
      assert.equal(fresh.length, 5, `expected 5 actions, got ${fresh}`);
      assert.deepEqual(await env.operationTables(direct, fresh[0]),
        [['sq_child', 3], ['sq_grandchild', 6], ['sq_parent', 1]]);
      assert.deepEqual(await env.operationTables(direct, fresh[1]), [['sq_post_tag', 1]]);
      await env.restoreAll(direct, PREFIX, fresh, before);
      assert.deepEqual(await observe(DBS.proxy), seenBefore, 'after restore, what the ORM loads');
    } finally {
      await twin.end();
      await direct.end();
    }
  });
