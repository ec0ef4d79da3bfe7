'use strict';
// Sequelize 6 through tombstone. The models know nothing about deleted_at
// (no `paranoid`: Sequelize's own soft delete is not used; the application
// is unmodified). Associations mirror the schema's foreign keys; Sequelize
// leaves ON DELETE to the database, i.e. to tombstone's cascade — except for
// `individualHooks` / `hooks: true`, where it loads and destroys instances
// itself, one DELETE per row.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { Sequelize, DataTypes, Op } = require('sequelize');
const h = require('./helpers');

const T = { timeout: h.TEST_TIMEOUT_MS };
const sent = [];
const sequelize = new Sequelize(h.APP_DSN, {
  logging: (sql) => sent.push(sql),
  pool: { max: 2, min: 0, acquire: h.CONNECT_TIMEOUT_MS },
  dialectOptions: { connectionTimeoutMillis: h.CONNECT_TIMEOUT_MS },
  define: { timestamps: false, underscored: true, freezeTableName: true },
});

const User = sequelize.define('User', {
  id: { type: DataTypes.UUID, primaryKey: true, defaultValue: DataTypes.UUIDV4 },
  email: { type: DataTypes.TEXT, allowNull: false },
  name: DataTypes.TEXT,
}, { tableName: 'users' });
const Category = sequelize.define('Category', {
  id: { type: DataTypes.INTEGER, primaryKey: true, autoIncrement: true },
  name: { type: DataTypes.TEXT, allowNull: false },
}, { tableName: 'categories' });
const Project = sequelize.define('Project', {
  id: { type: DataTypes.BIGINT, primaryKey: true, autoIncrement: true },
  name: { type: DataTypes.TEXT, allowNull: false },
}, { tableName: 'projects' });
const Task = sequelize.define('Task', {
  id: { type: DataTypes.BIGINT, primaryKey: true, autoIncrement: true },
  title: { type: DataTypes.TEXT, allowNull: false },
  done: { type: DataTypes.BOOLEAN, allowNull: false, defaultValue: false },
}, { tableName: 'tasks' });
const Comment = sequelize.define('Comment', {
  id: { type: DataTypes.BIGINT, primaryKey: true, autoIncrement: true },
  body: { type: DataTypes.TEXT, allowNull: false },
}, { tableName: 'comments' });
const Attachment = sequelize.define('Attachment', {
  id: { type: DataTypes.UUID, primaryKey: true, defaultValue: DataTypes.UUIDV4 },
  filename: { type: DataTypes.TEXT, allowNull: false },
  sizeBytes: { type: DataTypes.BIGINT, allowNull: false, defaultValue: 0 },
}, { tableName: 'attachments' });
const Invoice = sequelize.define('Invoice', {
  id: { type: DataTypes.BIGINT, primaryKey: true, autoIncrement: true },
  amountCents: { type: DataTypes.BIGINT, allowNull: false },
}, { tableName: 'invoices', schema: 'billing' });

Category.hasMany(Project, { as: 'projects', foreignKey: 'categoryId', onDelete: 'RESTRICT' });
Project.belongsTo(Category, { as: 'category', foreignKey: 'categoryId' });
Project.hasMany(Task, { as: 'tasks', foreignKey: { name: 'projectId', allowNull: false }, onDelete: 'CASCADE' });
Task.belongsTo(Project, { as: 'project', foreignKey: { name: 'projectId', allowNull: false } });
Project.hasMany(Invoice, { as: 'invoices', foreignKey: { name: 'projectId', allowNull: false }, onDelete: 'CASCADE' });
Invoice.belongsTo(Project, { as: 'project', foreignKey: { name: 'projectId', allowNull: false } });
Task.hasMany(Comment, { as: 'comments', foreignKey: { name: 'taskId', allowNull: false }, onDelete: 'CASCADE' });
Comment.belongsTo(Task, { as: 'task', foreignKey: { name: 'taskId', allowNull: false } });
Task.hasMany(Attachment, { as: 'attachments', foreignKey: { name: 'taskId', allowNull: false }, onDelete: 'CASCADE' });
Attachment.belongsTo(Task, { as: 'task', foreignKey: { name: 'taskId', allowNull: false } });
User.hasMany(Task, { as: 'tasks', foreignKey: 'assigneeId', onDelete: 'SET NULL' });
Task.belongsTo(User, { as: 'assignee', foreignKey: 'assigneeId' });

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
  await sequelize.close();
}, T);

const ids = (xs) => xs.map((x) => Number(x.id)).sort((a, b) => a - b);
const sentSince = (n) => sent.slice(n).join('\n');

test('instance destroy of a project, then findAll with include', T, async () => {
  const cat = await h.seedCategory(direct);
  const gone = await h.seedProject(direct, { categoryId: cat });
  const keep = await h.seedProject(direct, { categoryId: cat });
  const p = await Project.findByPk(gone.project);
  const n = sent.length;
  await p.destroy();
  assert.match(sentSince(n), /DELETE FROM "projects"/);
  await h.assertProjectGone(app, direct, gone, admin);

  assert.equal(await Project.findByPk(gone.project), null);
  // nested include: LEFT OUTER JOINs
  const projects = await Project.findAll({
    where: { categoryId: cat },
    include: [{ model: Task, as: 'tasks', include: [{ model: Comment, as: 'comments' }, { model: Attachment, as: 'attachments' }] },
      { model: Invoice, as: 'invoices' }, { model: Category, as: 'category' }],
    order: [['id', 'ASC']],
  });
  assert.deepEqual(ids(projects), [keep.project]);
  assert.deepEqual(ids(projects[0].tasks), keep.tasks);
  assert.deepEqual(ids(projects[0].tasks.flatMap((t) => t.comments)), keep.comments);
  assert.equal(projects[0].tasks.flatMap((t) => t.attachments).length, keep.attachments.length);
  assert.deepEqual(ids(projects[0].invoices), keep.invoices);
  assert.equal(projects[0].category.id, cat);
  // include with required: true (INNER JOIN) from the child side
  const comments = await Comment.findAll({
    include: [{ model: Task, as: 'task', required: true, include: [{ model: Project, as: 'project', required: true, where: { categoryId: cat } }] }],
  });
  assert.deepEqual(ids(comments), keep.comments);
  // include + limit: Sequelize wraps the parent in a subquery
  const limited = await Category.findAll({
    where: { id: cat }, include: [{ model: Project, as: 'projects', include: [{ model: Task, as: 'tasks' }] }], limit: 5,
  });
  assert.deepEqual(ids(limited[0].projects), [keep.project]);
  assert.equal(await Project.count({ where: { categoryId: cat } }), 1);
  assert.equal(await Task.count({ include: [{ model: Project, as: 'project', where: { categoryId: cat } }] }), keep.tasks.length);
  // lazy association getters
  const c = await Category.findByPk(cat);
  assert.deepEqual(ids(await c.getProjects()), [keep.project]);
  // reloading the destroyed instance fails as after a hard delete
  await assert.rejects(p.reload(), /does not exist anymore/);
});

test('Model.destroy with where returns affected rows (live only)', T, async () => {
  const s = await h.seedProject(direct, { tasks: 6, comments: 2, attachments: 2 });
  assert.equal(await Task.destroy({ where: { id: s.tasks.slice(0, 3) } }), 3);
  assert.equal(await Task.destroy({ where: { id: s.tasks.slice(0, 5) } }), 2);
  assert.equal(await Task.destroy({ where: { id: s.tasks.slice(0, 5) } }), 0);
  const p = await Project.findByPk(s.project, { include: [{ model: Task, as: 'tasks', include: [{ model: Comment, as: 'comments' }] }] });
  assert.deepEqual(ids(p.tasks), s.tasks.slice(5));
  assert.equal(p.tasks[0].comments.length, 2);
  assert.equal(await Comment.count({ where: { taskId: s.tasks } }), 2);
  await h.assertSoftDeleted(direct, 'tasks', 'id', s.tasks.slice(0, 5), 5);
  await h.assertSoftDeleted(direct, 'comments', 'task_id', s.tasks.slice(0, 5), 10);
  await h.assertLive(direct, 'tasks', 'id', s.tasks.slice(5), 1);
  // update counts live rows only
  const [updated] = await Task.update({ done: true }, { where: { id: s.tasks } });
  assert.equal(updated, 1);
});

test('individualHooks: one DELETE per instance, each counted', T, async () => {
  const s = await h.seedProject(direct, { tasks: 4, comments: 1, attachments: 0, invoices: 0 });
  let destroyed = 0;
  const hook = () => { destroyed += 1; };
  Task.addHook('afterDestroy', 'ts_count', hook);
  try {
    const n = await Task.destroy({ where: { projectId: s.project }, individualHooks: true });
    assert.equal(n, 4);
    assert.equal(destroyed, 4);
  } finally {
    Task.removeHook('afterDestroy', 'ts_count');
  }
  assert.deepEqual(await Task.findAll({ where: { projectId: s.project } }), []);
  await h.assertSoftDeleted(direct, 'tasks', 'id', s.tasks, 4);
  await h.assertSoftDeleted(direct, 'comments', 'id', s.comments, 4);
});

test('records created through Sequelize, destroyed in a transaction', T, async () => {
  const cat = await Category.create({ name: h.uniq('sq') });
  const p = await Project.create({
    name: h.uniq('sq'), categoryId: cat.id,
    tasks: [{ title: 'sq 1', comments: [{ body: 'c1' }, { body: 'c2' }] }, { title: 'sq 2', comments: [{ body: 'c3' }] }],
    invoices: [{ amountCents: 500 }],
  }, { include: [{ model: Task, as: 'tasks', include: [{ model: Comment, as: 'comments' }] }, { model: Invoice, as: 'invoices' }] });
  const taskIds = ids(p.tasks);
  await assert.rejects(sequelize.transaction(async (t) => {
    await p.destroy({ transaction: t });
    assert.equal(await Task.count({ where: { projectId: p.id }, transaction: t }), 0);
    throw new Error('roll back');
  }), /roll back/);
  assert.equal(await Task.count({ where: { projectId: p.id } }), 2);
  await sequelize.transaction(async (t) => {
    assert.equal(await Project.destroy({ where: { id: p.id }, transaction: t }), 1);
  });
  assert.equal(await Project.findByPk(p.id, { include: [{ model: Task, as: 'tasks' }] }), null);
  await h.assertSoftDeleted(direct, 'tasks', 'id', taskIds, 2);
  await h.assertSoftDeleted(direct, 'comments', 'task_id', taskIds, 3);
  await h.assertSoftDeleted(direct, 'billing.invoices', 'project_id', [Number(p.id)], 1);
  // the category is now free to go (its only project is deleted)
  assert.equal(await Category.destroy({ where: { id: cat.id } }), 1);
});

test('RESTRICT -> ForeignKeyConstraintError 23503; TRUNCATE -> 42501', T, async () => {
  const cat = (await direct.query('SELECT category_id FROM projects WHERE id = 3')).rows[0].category_id;
  const c = await Category.findByPk(cat);
  const err = await h.expectSqlState(c.destroy(), '23503');
  assert.equal(err.name, 'SequelizeForeignKeyConstraintError');
  assert.ok(await Category.findByPk(cat));
  await h.grantTruncateOnTasks(direct, app);
  const before = (await direct.query('SELECT count(*)::int AS n FROM tasks')).rows[0].n;
  await h.expectSqlState(Task.truncate(), '42501');
  await h.expectSqlState(sequelize.query('TRUNCATE tasks'), '42501');
  assert.equal((await direct.query('SELECT count(*)::int AS n FROM tasks')).rows[0].n, before);
  assert.ok((await Task.count()) > 0);
  await h.assertLive(direct, 'categories', 'id', [cat], 1);
});

test('SET NULL on user destroy; include of a soft-deleted user is null', T, async () => {
  const u1 = await h.seedUser(direct);
  const s1 = await h.seedProject(direct, { tasks: 2, comments: 0, attachments: 0, invoices: 0, assigneeId: u1 });
  const u = await User.findByPk(u1);
  await u.destroy();
  assert.equal(await User.findByPk(u1), null);
  const t1 = await Task.findAll({ where: { id: s1.tasks }, include: [{ model: User, as: 'assignee' }] });
  assert.equal(t1.length, 2);
  assert.ok(t1.every((t) => t.assigneeId === null && t.assignee === null));
  await h.assertSoftDeleted(direct, 'users', 'id', [u1], 1);

  // soft-deleted behind the proxy's back, reference kept: LEFT OUTER JOIN
  // treats it as absent and keeps the task
  const u2 = await h.seedUser(direct);
  const s2 = await h.seedProject(direct, { tasks: 2, comments: 0, attachments: 0, invoices: 0, assigneeId: u2 });
  await direct.query('UPDATE users SET deleted_at = now() WHERE id = $1', [u2]);
  const t2 = await Task.findAll({ where: { id: s2.tasks }, include: [{ model: User, as: 'assignee' }], order: [['id', 'ASC']] });
  assert.deepEqual(ids(t2), s2.tasks);
  assert.ok(t2.every((t) => t.assignee === null));
  assert.deepEqual(await Task.findAll({ where: { id: s2.tasks }, include: [{ model: User, as: 'assignee', required: true }] }), []);
  // and Op-based queries never see deleted rows
  assert.equal(await User.count({ where: { id: { [Op.in]: [u1, u2] } } }), 0);
});

test('bulkCreate with ON CONFLICT (email) reusing a deleted email', T, async () => {
  const email = `${h.uniq('sq')}@example.com`;
  const first = await User.create({ email, name: 'first' });
  await first.destroy();
  const n = sent.length;
  await User.bulkCreate([{ email, name: 'second' }], { updateOnDuplicate: ['name'], conflictAttributes: ['email'] });
  await User.bulkCreate([{ email, name: 'third' }], { updateOnDuplicate: ['name'], conflictAttributes: ['email'] });
  assert.match(sentSince(n), /ON CONFLICT \("email"\)/);
  const users = await User.findAll({ where: { email } });
  assert.deepEqual(users.map((u) => u.name), ['third']);
  const r = await direct.query('SELECT count(*)::int AS n, count(deleted_at)::int AS d FROM users WHERE email = $1', [email]);
  assert.deepEqual([r.rows[0].n, r.rows[0].d], [2, 1]);
});

test('include with a where on a child: deleted children never match', T, async () => {
  const s = await h.seedProject(direct, { tasks: 3, comments: 2, attachments: 0, invoices: 0 });
  assert.equal(await Comment.destroy({ where: { taskId: s.tasks[0] } }), 2);
  const withComments = await Task.findAll({
    where: { projectId: s.project },
    include: [{ model: Comment, as: 'comments', required: true }],
  });
  assert.deepEqual(ids(withComments), s.tasks.slice(1));
  const found = await Project.findAll({
    include: [{ model: Task, as: 'tasks', required: true, where: { id: s.tasks[0] }, include: [{ model: Comment, as: 'comments', required: true }] }],
  });
  assert.deepEqual(found, []);
  // separate: true loads the children with a second query (WHERE task_id IN (...))
  const sep = await Task.findAll({
    where: { projectId: s.project }, include: [{ model: Comment, as: 'comments', separate: true }], order: [['id', 'ASC']],
  });
  assert.deepEqual(sep.map((t) => t.comments.length), [0, 2, 2]);
  const { count, rows } = await Comment.findAndCountAll({ where: { taskId: s.tasks } });
  assert.equal(count, 4);
  assert.equal(rows.length, 4);
  await h.assertSoftDeleted(direct, 'comments', 'task_id', s.tasks.slice(0, 1), 2);
});

test('upsert() on the primary key of a destroyed row re-creates it', T, async () => {
  // Sequelize's upsert() is INSERT ... ON CONFLICT (id) DO UPDATE ... RETURNING.
  // After a hard delete it inserts a new, visible row; through tombstone the
  // application must see the same.
  const s = await h.seedProject(direct, { tasks: 1, comments: 0, attachments: 0, invoices: 0 });
  const id = s.tasks[0];
  assert.equal(await Task.destroy({ where: { id } }), 1);
  const n = sent.length;
  const [task] = await Task.upsert({ id, projectId: s.project, title: 'upserted after destroy' });
  assert.equal(task.title, 'upserted after destroy');
  const found = await Task.findByPk(id);
  assert.ok(found, `row invisible after upsert; statements sent:\n${sentSince(n)}`);
  assert.equal(found.title, 'upserted after destroy');
});
