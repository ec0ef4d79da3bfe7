'use strict';
// TypeORM 1 through tombstone against a hard-delete twin, then every action
// restored to the exact state before the deletes (see typeorm_models.js).
// The same ORM calls run on the twin (straight to PostgreSQL, hard deletes)
// and through the proxy as the application role (soft deletes).
const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const { In, IsNull } = require('typeorm');
const env = require('./env');
const { dataSource } = require('./typeorm_models');

const PREFIX = 'to_';

// Counts the DELETEs a data source sends.
class Counter {
  constructor() { this.sent = []; }
  logQuery(query) { this.sent.push(query); }
  logQueryError() {}
  logQuerySlow() {}
  logSchemaBuild() {}
  logMigration() {}
  log() {}
}

const DBS = {};
for (const [db, url] of [['twin', env.TWIN_DSN], ['proxy', env.APP_DSN]]) {
  const logger = new Counter();
  DBS[db] = { ds: dataSource(url, { logging: ['query'], logger, poolSize: 2 }), sent: logger.sent };
}

after(async () => {
  for (const { ds } of Object.values(DBS)) if (ds.isInitialized) await ds.destroy();
});

// 4 parents of 3 children of 2 grandchildren; 3 posts of 3 of 4 tags; 3
// owners of 3 items. The same order on both databases (so ids match).
async function seed({ ds }) {
  await ds.transaction(async (m) => {
    for (let p = 0; p < 4; p++) {
      const parent = await m.save('ToParent', { name: `parent ${p}` });
      for (let c = 0; c < 3; c++) {
        const child = await m.save('ToChild', { name: `child ${p}.${c}`, parent });
        for (let g = 0; g < 2; g++) await m.save('ToGrandchild', { name: `grandchild ${p}.${c}.${g}`, child });
      }
    }
    const tags = [];
    for (let t = 0; t < 4; t++) tags.push(await m.save('ToTag', { name: `tag ${t}` }));
    for (let p = 0; p < 3; p++) await m.save('ToPost', { name: `post ${p}`, tags: tags.filter((_, t) => t !== p) });
    for (let o = 0; o < 3; o++) {
      const owner = await m.save('ToOwner', { name: `owner ${o}` });
      for (let i = 0; i < 3; i++) await m.save('ToItem', { name: `item ${o}.${i}`, owner });
    }
  });
}

// Every entity's rows as the ORM loads them, the junction table, and the
// relations.
async function observe({ ds }) {
  const seen = {};
  for (const meta of ds.entityMetadatas) {
    const repo = ds.getRepository(meta.target);
    if (meta.tableType === 'junction') {
      seen[meta.tableName] = await repo.createQueryBuilder('j').orderBy('j.post_id').addOrderBy('j.tag_id').getRawMany();
      continue;
    }
    const relations = meta.manyToOneRelations.map((r) => r.propertyName);
    seen[meta.tableName] = (await repo.find({ relations: Object.fromEntries(relations.map((r) => [r, true])), order: { id: 'ASC' } })).map((e) => [
      e.id, e.name, ...relations.map((r) => (e[r] ? e[r].id : null))]);
  }
  seen.tree = (await ds.getRepository('ToParent').find({
    relations: { children: { grandchildren: true } },
    order: { id: 'ASC', children: { id: 'ASC', grandchildren: { id: 'ASC' } } },
  })).map((p) => [p.name, p.children.map((c) => [c.name, c.grandchildren.map((g) => g.name)])]);
  seen.posts = (await ds.getRepository('ToPost').find({ relations: { tags: true }, order: { id: 'ASC', tags: { id: 'ASC' } } }))
    .map((p) => [p.name, p.tags.map((t) => t.name)]);
  seen.owners = (await ds.getRepository('ToOwner').find({ relations: { items: true }, order: { id: 'ASC', items: { id: 'ASC' } } }))
    .map((o) => [o.name, o.items.map((i) => i.name)]);
  seen.orphans = (await ds.getRepository('ToItem').find({ where: { owner: IsNull() }, order: { id: 'ASC' } })).map((i) => i.name);
  return seen;
}

test('TypeORM cascade remove, unlinks and in-app SET NULL equal the twin; every action restores the exact state',
  { timeout: env.TIMEOUT_MS }, async () => {
    for (const { ds } of Object.values(DBS)) await ds.initialize();
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

      // 1. cascade: ['remove'] with the tree loaded: TypeORM deletes the
      //    grandchildren, children and the parent itself (NO ACTION keys),
      //    in one transaction.
      const [, deletes] = await both("manager.remove(parent) (cascade: ['remove'])", ({ ds }) =>
        ds.transaction(async (m) => {
          const parent = await m.findOneOrFail('ToParent', { where: { name: 'parent 0' }, relations: { children: { grandchildren: true } } });
          await m.remove('ToParent', parent);
          return null;
        }));
      assert.ok(deletes >= 3, `TypeORM sent ${deletes} DELETEs, expected one per table at least`);

      // 2. Many-to-many unlink: save a post with fewer tags: TypeORM deletes
      //    the junction rows.
      await both('post.tags filtered + save()', async ({ ds }) => {
        const repo = ds.getRepository('ToPost');
        const post = await repo.findOneOrFail({ where: { name: 'post 0' }, relations: { tags: true } });
        post.tags = post.tags.filter((t) => t.name === 'tag 2');
        await repo.save(post);
        return null;
      });

      // 3. The relation query builder's remove().
      await both("createQueryBuilder().relation('tags').remove()", async ({ ds }) => {
        const post = await ds.getRepository('ToPost').findOneByOrFail({ name: 'post 1' });
        const tag = await ds.getRepository('ToTag').findOneByOrFail({ name: 'tag 3' });
        await ds.createQueryBuilder().relation('ToPost', 'tags').of(post).remove(tag);
        return null;
      });

      // 4. In-app SET NULL: saving the owner without its items nulls their
      //    owner_id (orphanedRowAction nullify), then the owner is removed,
      //    one transaction.
      await both('owner.items = [] + save + remove(owner) (in-app SET NULL)', ({ ds }) =>
        ds.transaction(async (m) => {
          const owner = await m.findOneOrFail('ToOwner', { where: { name: 'owner 1' }, relations: { items: true } });
          owner.items = [];
          await m.save('ToOwner', owner);
          await m.remove('ToOwner', owner);
          return null;
        }));

      // 5. Repository.delete() by criteria: one DELETE, its affected count.
      const [affected] = await both('repository.delete({ child: In(...) })', async ({ ds }) => {
        const children = await ds.getRepository('ToChild').find({ where: { parent: { name: 'parent 3' } } });
        const res = await ds.getRepository('ToGrandchild').delete({ child: { id: In(children.map((c) => c.id)) } });
        return res.affected;
      });
      assert.equal(affected, 6);

      // 6. A remove the NO ACTION key refuses (owner 2 still has items): the
      //    same error on both, nothing changes.
      const [code] = await both('remove(owner) with items (NO ACTION)', async ({ ds }) => {
        const owner = await ds.getRepository('ToOwner').findOneByOrFail({ name: 'owner 2' });
        const err = await ds.getRepository('ToOwner').remove(owner).then(() => null, (e) => e);
        assert.ok(err, 'remove was not refused');
        return [err.name, err.code];
      });
      assert.deepEqual(code, ['QueryFailedError', '23503']);

      await env.assertNothingRemoved(direct, PREFIX, before, 'after the TypeORM deletes');
      const fresh = (await env.actions(direct, PREFIX)).filter((a) => !actionsBefore.has(a));
      assert.equal(fresh.length, 5, `expected 5 actions, got ${fresh}`);
      const first = Object.fromEntries(await env.operationTables(direct, fresh[0]));
      assert.deepEqual(Object.keys(first), ['to_child', 'to_grandchild', 'to_parent']);
      await env.restoreAll(direct, PREFIX, fresh, before);
      assert.deepEqual(await observe(DBS.proxy), seenBefore, 'after restore, what the ORM loads');
    } finally {
      await twin.end();
      await direct.end();
    }
  });
