'use strict';
// Sequelize 6 models of the twin suite (tables `sq_*`), paranoid off: the
// models declare deleted_at (for tombstone) and never set it.
// - SqParent -> SqChild -> SqGrandchild: `onDelete: 'CASCADE', hooks: true`:
//   destroy() loads the children and destroys each itself (their own
//   cascade first), one DELETE per row, in the caller's transaction.
// - SqPost <-> SqTag through SqPostTag (belongsToMany; the link table has no
//   deleted_at: `migrate --apply --fix` adds it).
// - SqOwner -> SqItem: a NO ACTION key; the application nulls items'
//   owner_id itself (owner.setItems([])) before destroying the owner.
const { DataTypes } = require('sequelize');

function define(sequelize) {
  const opts = (tableName) => ({ tableName, timestamps: false, underscored: true, freezeTableName: true });
  const deletedAt = { type: DataTypes.DATE, allowNull: true, field: 'deleted_at' };
  const name = { type: DataTypes.STRING(50), allowNull: false };
  const SqParent = sequelize.define('SqParent', { name: { ...name, unique: true }, deletedAt }, opts('sq_parent'));
  const SqChild = sequelize.define('SqChild', { name, deletedAt }, opts('sq_child'));
  const SqGrandchild = sequelize.define('SqGrandchild', { name, deletedAt }, opts('sq_grandchild'));
  const SqPost = sequelize.define('SqPost', { name, deletedAt }, opts('sq_post'));
  const SqTag = sequelize.define('SqTag', { name, deletedAt }, opts('sq_tag'));
  const SqPostTag = sequelize.define('SqPostTag', {}, opts('sq_post_tag'));
  const SqOwner = sequelize.define('SqOwner', { name, deletedAt }, opts('sq_owner'));
  const SqItem = sequelize.define('SqItem', { name, deletedAt }, opts('sq_item'));

  SqParent.hasMany(SqChild, { as: 'children', foreignKey: { name: 'parentId', allowNull: false }, onDelete: 'CASCADE', hooks: true });
  SqChild.belongsTo(SqParent, { as: 'parent', foreignKey: { name: 'parentId', allowNull: false } });
  SqChild.hasMany(SqGrandchild, { as: 'grandchildren', foreignKey: { name: 'childId', allowNull: false }, onDelete: 'CASCADE', hooks: true });
  SqGrandchild.belongsTo(SqChild, { as: 'child', foreignKey: { name: 'childId', allowNull: false } });
  SqPost.belongsToMany(SqTag, { as: 'tags', through: SqPostTag, foreignKey: 'postId', otherKey: 'tagId' });
  SqTag.belongsToMany(SqPost, { as: 'posts', through: SqPostTag, foreignKey: 'tagId', otherKey: 'postId' });
  SqOwner.hasMany(SqItem, { as: 'items', foreignKey: { name: 'ownerId', allowNull: true }, onDelete: 'NO ACTION' });
  SqItem.belongsTo(SqOwner, { as: 'owner', foreignKey: { name: 'ownerId', allowNull: true }, onDelete: 'NO ACTION' });

  return { SqParent, SqChild, SqGrandchild, SqPost, SqTag, SqPostTag, SqOwner, SqItem };
}

module.exports = { define };
