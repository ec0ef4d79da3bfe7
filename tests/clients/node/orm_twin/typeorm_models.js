'use strict';
// TypeORM 1 entities of the twin suite (tables `to_*`), as EntitySchema (no
// decorators, no build). deleted_at is a plain column (not a DeleteDateColumn:
// TypeORM's own soft delete is not used), never set by the application.
// - to_parent -> to_child -> to_grandchild: one-to-many with
//   `cascade: ['remove']` and NO ACTION keys: remove(parent) with the tree
//   loaded deletes grandchildren, children and the parent, one transaction.
// - to_post <-> to_tag: many-to-many, junction table to_post_tags (no
//   deleted_at: `migrate --apply --fix` adds it).
// - to_owner -> to_item: one-to-many without cascade (orphanedRowAction
//   nullify, the default), NO ACTION key: saving an owner without its items
//   sets their owner_id to NULL in-app, then the owner is removed.
require('reflect-metadata');
const { EntitySchema } = require('typeorm');

const id = { type: 'int', primary: true, generated: 'increment' };
const name = { type: 'varchar', length: 50 };
const deletedAt = { type: 'timestamptz', nullable: true, name: 'deleted_at' };
const manyToOne = (target, inverseSide, column, nullable = false) => ({
  type: 'many-to-one', target, inverseSide, joinColumn: { name: column }, nullable, onDelete: 'NO ACTION',
});

const entities = [
  new EntitySchema({
    name: 'ToParent', tableName: 'to_parent',
    columns: { id, name: { ...name, unique: true }, deletedAt },
    relations: { children: { type: 'one-to-many', target: 'ToChild', inverseSide: 'parent', cascade: ['remove'] } },
  }),
  new EntitySchema({
    name: 'ToChild', tableName: 'to_child',
    columns: { id, name, deletedAt },
    relations: {
      parent: manyToOne('ToParent', 'children', 'parent_id'),
      grandchildren: { type: 'one-to-many', target: 'ToGrandchild', inverseSide: 'child', cascade: ['remove'] },
    },
  }),
  new EntitySchema({
    name: 'ToGrandchild', tableName: 'to_grandchild',
    columns: { id, name, deletedAt },
    relations: { child: manyToOne('ToChild', 'grandchildren', 'child_id') },
  }),
  new EntitySchema({
    name: 'ToPost', tableName: 'to_post',
    columns: { id, name, deletedAt },
    relations: {
      tags: {
        type: 'many-to-many', target: 'ToTag',
        joinTable: { name: 'to_post_tags', joinColumn: { name: 'post_id' }, inverseJoinColumn: { name: 'tag_id' } },
      },
    },
  }),
  new EntitySchema({ name: 'ToTag', tableName: 'to_tag', columns: { id, name, deletedAt } }),
  new EntitySchema({
    name: 'ToOwner', tableName: 'to_owner',
    columns: { id, name, deletedAt },
    relations: { items: { type: 'one-to-many', target: 'ToItem', inverseSide: 'owner' } },
  }),
  new EntitySchema({
    name: 'ToItem', tableName: 'to_item',
    columns: { id, name, deletedAt },
    relations: { owner: manyToOne('ToOwner', 'items', 'owner_id', true) },
  }),
];

function dataSource(url, extra = {}) {
  const { DataSource } = require('typeorm');
  return new DataSource({ type: 'postgres', url, entities, ...extra });
}

module.exports = { entities, dataSource };
