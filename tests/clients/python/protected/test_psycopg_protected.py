"""psycopg 3 through tombstone on the protected scenario: DELETE is soft,
cascades along foreign keys, reports the count a hard delete would, and the
application role never sees a deleted row."""

import psycopg
import psycopg.errors
import pytest

import tsenv
from tsenv import assert_live, assert_project_gone, assert_soft_deleted, live_count


def test_delete_scenario_project_1_cascades_softly(app, admin, direct):
    # Project 1 of the scenario belongs to this test (the node suite uses 2).
    tasks = tsenv.scenario_task_ids(direct, 1)
    assert len(tasks) == tsenv.TASKS_PER_PROJECT
    cur = app.execute("DELETE FROM projects WHERE id = %s", (1,))
    assert cur.rowcount == 1
    assert cur.statusmessage == "DELETE 1"

    assert live_count(app, "projects", "id", [1]) == 0
    assert live_count(app, "tasks", "project_id", [1]) == 0
    assert live_count(app, "comments", "task_id", tasks) == 0
    assert live_count(app, "attachments", "task_id", tasks) == 0
    assert live_count(app, "billing.invoices", "project_id", [1]) == 0
    # Aggregates and joins over the whole table only count live rows.
    total = app.execute("SELECT count(*) FROM tasks").fetchone()[0]
    live_direct = direct.execute("SELECT count(*) FROM tasks WHERE deleted_at IS NULL").fetchone()[0]
    assert total == live_direct
    assert app.execute(
        "SELECT count(*) FROM projects p LEFT JOIN tasks t ON t.project_id = p.id WHERE p.id = 1"
    ).fetchone()[0] == 0

    assert_soft_deleted(direct, "projects", "id", [1], 1)
    assert_soft_deleted(direct, "tasks", "id", tasks, tsenv.TASKS_PER_PROJECT)
    assert_soft_deleted(direct, "comments", "task_id", tasks, tsenv.TASKS_PER_PROJECT * tsenv.COMMENTS_PER_TASK)
    assert_soft_deleted(direct, "attachments", "task_id", tasks, tsenv.ATTACHMENTS_PER_PROJECT)
    assert_soft_deleted(direct, "billing.invoices", "project_id", [1], tsenv.INVOICES_PER_PROJECT)
    # Other projects are untouched.
    assert_live(direct, "tasks", "id", tsenv.scenario_task_ids(direct, 3), tsenv.TASKS_PER_PROJECT)
    # The bypass role sees the trash.
    assert live_count(admin, "tasks", "project_id", [1]) == tsenv.TASKS_PER_PROJECT

    # Deleting it again hits no live row, as after a hard delete.
    assert app.execute("DELETE FROM projects WHERE id = 1").rowcount == 0


def test_delete_seeded_project_and_cascade(app, admin, direct, seed):
    cur = app.execute("DELETE FROM projects WHERE id = %s", (seed["project"],))
    assert cur.rowcount == 1
    assert_project_gone(app, direct, seed, admin=admin)


def test_counts_are_live_target_rows_only(app, direct, seed):
    t = seed["tasks"]
    # Prepared (extended protocol, named statement), executed repeatedly.
    q = "DELETE FROM tasks WHERE id = ANY(%s)"
    assert app.execute(q, (t[:2],), prepare=True).rowcount == 2
    # Two of these four are already deleted: only the two live ones count.
    assert app.execute(q, (t[:4],), prepare=True).rowcount == 2
    assert app.execute(q, (t[:4],), prepare=True).rowcount == 0
    # Comments of the deleted tasks are not counted in the tag, but are gone.
    assert live_count(app, "comments", "task_id", t[:4]) == 0
    assert live_count(app, "comments", "task_id", t[4:]) == 3 * len(t[4:])
    assert_soft_deleted(direct, "tasks", "id", t[:4], 4)
    assert_soft_deleted(direct, "comments", "task_id", t[:4], 12)
    assert_live(direct, "tasks", "id", t[4:], len(t) - 4)
    # UPDATE touches live rows only.
    assert app.execute("UPDATE tasks SET done = true WHERE id = ANY(%s)", (t,)).rowcount == len(t) - 4


def test_delete_returning(app, direct, seed):
    rows = app.execute(
        "DELETE FROM tasks WHERE project_id = %s RETURNING id, title",
        (seed["project"],),
    ).fetchall()
    assert sorted(r[0] for r in rows) == seed["tasks"]
    assert all(r[1].startswith("seeded task ") for r in rows)
    assert_soft_deleted(direct, "tasks", "id", seed["tasks"], len(seed["tasks"]))
    assert live_count(app, "attachments", "task_id", seed["tasks"]) == 0


def test_executemany_counts(app, direct, seed):
    with app.cursor() as cur:
        cur.executemany("DELETE FROM comments WHERE id = %s", [(c,) for c in seed["comments"][:5]])
        assert cur.rowcount == 5
        cur.executemany("DELETE FROM comments WHERE id = %s", [(c,) for c in seed["comments"][:7]])
        assert cur.rowcount == 2
    assert_soft_deleted(direct, "comments", "id", seed["comments"][:7], 7)
    assert live_count(app, "comments", "id", seed["comments"]) == len(seed["comments"]) - 7


def test_pipeline_deletes(app, direct):
    seeds = [tsenv.seed_project(direct, tasks=2, comments=1, attachments=1, invoices=1) for _ in range(3)]
    with app.pipeline():
        curs = [app.execute("DELETE FROM projects WHERE id = %s", (s["project"],)) for s in seeds]
        sel = app.execute(
            "SELECT count(*) FROM tasks WHERE project_id = ANY(%s)", ([s["project"] for s in seeds],)
        )
    assert [c.rowcount for c in curs] == [1, 1, 1]
    assert sel.fetchone()[0] == 0
    for s in seeds:
        assert_project_gone(app, direct, s)


def test_rollback_undoes_the_cascade(app, direct, seed):
    with pytest.raises(RuntimeError):
        with app.transaction():
            assert app.execute("DELETE FROM projects WHERE id = %s", (seed["project"],)).rowcount == 1
            # inside the transaction, the cascade is already invisible
            assert live_count(app, "tasks", "project_id", [seed["project"]]) == 0
            raise RuntimeError("roll back")
    assert_live(direct, "projects", "id", [seed["project"]], 1)
    assert_live(direct, "tasks", "id", seed["tasks"], len(seed["tasks"]))
    assert_live(direct, "comments", "id", seed["comments"], len(seed["comments"]))
    assert live_count(app, "tasks", "project_id", [seed["project"]]) == len(seed["tasks"])


def test_restrict_on_category_of_live_project(app, direct):
    # Category of scenario project 3, which no test deletes.
    cat = direct.execute("SELECT category_id FROM projects WHERE id = 3").fetchone()[0]
    with pytest.raises(psycopg.errors.ForeignKeyViolation) as e:
        app.execute("DELETE FROM categories WHERE id = %s", (cat,))
    assert e.value.sqlstate == "23503"
    assert app.execute("SELECT 1").fetchone() == (1,)
    assert_live(direct, "categories", "id", [cat], 1)
    assert_live(direct, "projects", "id", [3], 1)


def test_restrict_only_counts_live_children(app, direct):
    cat = tsenv.seed_category(direct)
    s = tsenv.seed_project(direct, tasks=1, comments=1, attachments=0, invoices=0, category_id=cat)
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        app.execute("DELETE FROM categories WHERE id = %s", (cat,))
    # Once the only project is deleted, a hard delete of the category would
    # succeed, so the soft one must too.
    assert app.execute("DELETE FROM projects WHERE id = %s", (s["project"],)).rowcount == 1
    assert app.execute("DELETE FROM categories WHERE id = %s", (cat,)).rowcount == 1
    assert live_count(app, "categories", "id", [cat]) == 0
    assert_soft_deleted(direct, "categories", "id", [cat], 1)


def test_restrict_inside_a_transaction_aborts_it(app, direct):
    cat = direct.execute("SELECT category_id FROM projects WHERE id = 3").fetchone()[0]
    app.autocommit = False
    try:
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            app.execute("DELETE FROM categories WHERE id = %s", (cat,))
        with pytest.raises(psycopg.errors.InFailedSqlTransaction):
            app.execute("SELECT 1")
        app.rollback()
        assert app.execute("SELECT count(*) FROM categories WHERE id = %s", (cat,)).fetchone()[0] == 1
        app.rollback()
    finally:
        app.autocommit = True


def test_truncate_is_refused(app, direct):
    tsenv.grant_truncate_on_tasks(direct, app)
    before = direct.execute("SELECT count(*) FROM tasks").fetchone()[0]
    with pytest.raises(psycopg.errors.InsufficientPrivilege) as e:
        app.execute("TRUNCATE tasks")
    assert e.value.sqlstate == "42501"
    assert app.execute("SELECT 1").fetchone() == (1,)
    assert direct.execute("SELECT count(*) FROM tasks").fetchone()[0] == before


def test_set_null_edge(app, direct):
    user = tsenv.seed_user(direct)
    s = tsenv.seed_project(direct, tasks=3, comments=0, attachments=0, invoices=0, assignee_id=user)
    assert app.execute("DELETE FROM users WHERE id = %s", (user,)).rowcount == 1
    assert live_count(app, "users", "id", [user]) == 0
    # ON DELETE SET NULL applied as Postgres would; the tasks stay live.
    rows = app.execute("SELECT assignee_id FROM tasks WHERE id = ANY(%s)", (s["tasks"],)).fetchall()
    assert rows == [(None,)] * 3
    assert_soft_deleted(direct, "users", "id", [user], 1)
    assert_live(direct, "tasks", "id", s["tasks"], 3)


def test_outer_join_nullable_side_soft_deleted(app, direct):
    # A user soft-deleted behind the proxy's back (reference kept): on the
    # nullable side of a LEFT JOIN it behaves as absent; the task is kept.
    user = tsenv.seed_user(direct)
    s = tsenv.seed_project(direct, tasks=2, comments=0, attachments=0, invoices=0, assignee_id=user)
    direct.execute("UPDATE users SET deleted_at = now() WHERE id = %s", (user,))
    rows = app.execute(
        "SELECT t.id, u.id FROM tasks t LEFT JOIN users u ON u.id = t.assignee_id "
        "WHERE t.id = ANY(%s) ORDER BY t.id",
        (s["tasks"],),
    ).fetchall()
    assert rows == [(t, None) for t in s["tasks"]]


def test_copy_and_cursors_see_live_rows_only(app, direct, seed):
    t = seed["tasks"]
    assert app.execute("DELETE FROM tasks WHERE id = ANY(%s)", (t[:2],)).rowcount == 2
    # COPY (query) TO
    with app.cursor().copy(
        "COPY (SELECT id FROM tasks WHERE project_id = {} ORDER BY id) TO STDOUT".format(int(seed["project"]))
    ) as cp:
        copied = [int(row[0]) for row in cp.rows()]
    assert copied == t[2:]
    # COPY table TO: the whole table, live rows only
    with app.cursor().copy("COPY comments (id, task_id) TO STDOUT") as cp:
        seen = {int(row[1]) for row in cp.rows()}
    assert not seen & set(t[:2])
    assert set(t[2:]) <= seen
    # server-side cursor (DECLARE ... CURSOR)
    with app.transaction():
        with app.cursor(name="ts_protected_cur") as cur:
            cur.execute("SELECT id FROM tasks WHERE project_id = %s ORDER BY id", (seed["project"],))
            assert [r[0] for r in cur.fetchmany(100)] == t[2:]
    assert_soft_deleted(direct, "tasks", "id", t[:2], 2)


def test_delete_using_a_protected_table(app, direct):
    cat = tsenv.seed_category(direct)
    a = tsenv.seed_project(direct, tasks=3, comments=1, attachments=0, invoices=0, category_id=cat)
    b = tsenv.seed_project(direct, tasks=2, comments=1, attachments=0, invoices=0, category_id=cat)
    assert app.execute("DELETE FROM projects WHERE id = %s", (b["project"],)).rowcount == 1
    # b's tasks are deleted with b; the deleted project row must not match in USING
    cur = app.execute(
        "DELETE FROM tasks USING projects WHERE tasks.project_id = projects.id AND projects.category_id = %s",
        (cat,),
    )
    assert cur.rowcount == 3
    assert_soft_deleted(direct, "tasks", "id", a["tasks"] + b["tasks"], 5)
    assert_live(direct, "projects", "id", [a["project"]], 1)


def test_upsert_on_partial_unique_email_after_delete(app, direct):
    email = tsenv.uniq("re") + "@example.com"
    old = app.execute("INSERT INTO users (email, name) VALUES (%s, 'first') RETURNING id", (email,)).fetchone()[0]
    assert app.execute("DELETE FROM users WHERE id = %s", (old,)).rowcount == 1
    # The email is free again (the unique index is partial: WHERE deleted_at IS NULL),
    # and ON CONFLICT (email) works without naming the predicate.
    q = (
        "INSERT INTO users (email, name) VALUES (%s, %s) "
        "ON CONFLICT (email) DO UPDATE SET name = EXCLUDED.name RETURNING id, name"
    )
    new_id, name = app.execute(q, (email, "second")).fetchone()
    assert new_id != old and name == "second"
    again_id, name = app.execute(q, (email, "third")).fetchone()
    assert (again_id, name) == (new_id, "third")
    rows = app.execute("SELECT id, name FROM users WHERE email = %s", (email,)).fetchall()
    assert rows == [(new_id, "third")]
    assert direct.execute("SELECT count(*), count(deleted_at) FROM users WHERE email = %s", (email,)).fetchone() == (2, 1)


def test_insert_with_the_primary_key_of_a_deleted_row(app, direct, seed):
    # After a hard delete the primary key is free again: re-inserting a row
    # with it succeeds and the new row is visible (ORMs do this: Django's
    # save() of an instance deleted meanwhile, SQLAlchemy's merge()).
    tid = seed["tasks"][0]
    assert app.execute("DELETE FROM tasks WHERE id = %s", (tid,)).rowcount == 1
    cur = app.execute(
        "INSERT INTO tasks (id, project_id, title) VALUES (%s, %s, 're-inserted')", (tid, seed["project"])
    )
    assert cur.rowcount == 1
    assert app.execute("SELECT title FROM tasks WHERE id = %s", (tid,)).fetchall() == [("re-inserted",)]
    # and the re-inserted task has none of the deleted one's comments
    assert live_count(app, "comments", "task_id", [tid]) == 0


def test_upsert_on_the_primary_key_of_a_deleted_row(app, direct, seed):
    # INSERT ... ON CONFLICT (id) DO UPDATE after a hard delete inserts a new,
    # visible row (Sequelize's upsert(), SQLAlchemy on_conflict_do_update on
    # the primary key send exactly this).
    tid = seed["tasks"][1]
    assert app.execute("DELETE FROM tasks WHERE id = %s", (tid,)).rowcount == 1
    cur = app.execute(
        "INSERT INTO tasks (id, project_id, title) VALUES (%s, %s, 'upserted') "
        "ON CONFLICT (id) DO UPDATE SET title = EXCLUDED.title RETURNING id, title",
        (tid, seed["project"]),
    )
    assert cur.fetchall() == [(tid, "upserted")]
    assert app.execute("SELECT title FROM tasks WHERE id = %s", (tid,)).fetchall() == [("upserted",)]


def test_pipeline_with_an_error_in_the_middle(app, direct):
    a = tsenv.seed_project(direct, tasks=2, comments=1, attachments=0, invoices=0)
    b = tsenv.seed_project(direct, tasks=2, comments=1, attachments=0, invoices=0)
    cat = direct.execute("SELECT category_id FROM projects WHERE id = 3").fetchone()[0]
    first = None
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        with app.pipeline():
            first = app.execute("DELETE FROM projects WHERE id = %s", (a["project"],))
            app.execute("DELETE FROM categories WHERE id = %s", (cat,))
            app.execute("DELETE FROM projects WHERE id = %s", (b["project"],))
    assert first.rowcount == 1
    # As in PostgreSQL: psycopg syncs at the end of the block, so the three
    # statements share one implicit transaction; the error rolls back the
    # first DELETE (cascade included) and skips the third.
    assert_live(direct, "projects", "id", [a["project"], b["project"]], 2)
    assert_live(direct, "tasks", "id", a["tasks"] + b["tasks"], 4)
    assert_live(direct, "comments", "task_id", a["tasks"], 2)
    assert app.execute("SELECT count(*) FROM tasks WHERE project_id = %s", (b["project"],)).fetchone() == (2,)


def test_multi_statement_simple_query(app, direct, seed):
    t = seed["tasks"]
    # no parameters: psycopg sends one simple Query with three statements
    cur = app.execute(
        f"DELETE FROM tasks WHERE id = {int(t[0])}; "
        f"DELETE FROM tasks WHERE id IN ({int(t[0])}, {int(t[1])}); "
        f"SELECT count(*) FROM tasks WHERE project_id = {int(seed['project'])}"
    )
    results = []
    while True:
        results.append((cur.statusmessage, cur.rowcount))
        if not cur.nextset():
            break
    assert results[:2] == [("DELETE 1", 1), ("DELETE 1", 1)]
    assert cur.fetchone() == (len(t) - 2,)
    assert_soft_deleted(direct, "tasks", "id", t[:2], 2)


def test_bypass_role_delete_is_soft_too(admin, direct, seed):
    assert admin.execute("DELETE FROM projects WHERE id = %s", (seed["project"],)).rowcount == 1
    assert_soft_deleted(direct, "projects", "id", [seed["project"]], 1)
    assert_soft_deleted(direct, "tasks", "id", seed["tasks"], len(seed["tasks"]))
    assert live_count(admin, "tasks", "id", seed["tasks"]) == len(seed["tasks"])


def test_select_for_update_skip_locked(app, direct, seed):
    t = seed["tasks"]
    assert app.execute("DELETE FROM tasks WHERE id = %s", (t[0],)).rowcount == 1
    with app.transaction():
        rows = app.execute(
            "SELECT id FROM tasks WHERE project_id = %s ORDER BY id FOR UPDATE SKIP LOCKED", (seed["project"],)
        ).fetchall()
    assert [r[0] for r in rows] == t[1:]
    assert_soft_deleted(direct, "tasks", "id", t[:1], 1)


def test_four_level_cascade_from_a_team(app, direct):
    team = direct.execute("INSERT INTO teams (name) VALUES (%s) RETURNING id", (tsenv.uniq("team"),)).fetchone()[0]
    user = tsenv.seed_user(direct)
    direct.execute("INSERT INTO team_members (team_id, user_id) VALUES (%s, %s)", (team, user))
    s = tsenv.seed_project(direct, tasks=3, comments=2, attachments=1, invoices=1)
    direct.execute("UPDATE projects SET team_id = %s WHERE id = %s", (team, s["project"]))
    direct.execute("INSERT INTO project_members (project_id, user_id) VALUES (%s, %s)", (s["project"], user))
    # teams -> projects -> tasks -> comments, and the composite-key members
    assert app.execute("DELETE FROM teams WHERE id = %s", (team,)).rowcount == 1
    assert_project_gone(app, direct, s)
    assert app.execute("SELECT count(*) FROM team_members WHERE team_id = %s", (team,)).fetchone() == (0,)
    assert app.execute("SELECT count(*) FROM project_members WHERE project_id = %s", (s["project"],)).fetchone() == (0,)
    assert direct.execute(
        "SELECT count(*), count(deleted_at) FROM team_members WHERE team_id = %s", (team,)
    ).fetchone() == (1, 1)
    assert_live(direct, "users", "id", [user], 1)


def test_user_delete_cascades_and_sets_null(app, direct):
    user = tsenv.seed_user(direct)
    s = tsenv.seed_project(direct, tasks=2, comments=1, attachments=0, invoices=0, owner_id=user, assignee_id=user)
    direct.execute("INSERT INTO project_members (project_id, user_id) VALUES (%s, %s)", (s["project"], user))
    direct.execute("UPDATE comments SET author_id = %s WHERE id = ANY(%s)", (user, s["comments"]))
    assert app.execute("DELETE FROM users WHERE id = %s", (user,)).rowcount == 1
    # CASCADE to the membership rows, SET NULL on the rest; nothing else deleted
    assert app.execute("SELECT count(*) FROM project_members WHERE user_id = %s", (user,)).fetchone() == (0,)
    assert app.execute("SELECT owner_id FROM projects WHERE id = %s", (s["project"],)).fetchone() == (None,)
    assert app.execute("SELECT count(*) FROM tasks WHERE id = ANY(%s) AND assignee_id IS NULL", (s["tasks"],)).fetchone() == (2,)
    assert app.execute("SELECT count(*) FROM comments WHERE id = ANY(%s) AND author_id IS NULL", (s["comments"],)).fetchone() == (2,)
    assert direct.execute(
        "SELECT count(*), count(deleted_at) FROM project_members WHERE user_id = %s", (user,)
    ).fetchone() == (1, 1)
    assert_live(direct, "tasks", "id", s["tasks"], 2)
    assert_live(direct, "comments", "id", s["comments"], 2)


def test_same_shape_with_literals_then_with_parameters(app):
    # Django sends `... WHERE "projects"."id" = 3 LIMIT 21` with client-side
    # binding and `... WHERE "projects"."id" = $1 LIMIT 21` with server-side
    # binding: two texts of one shape, one with two literals, one with a
    # parameter and a literal. Both must work on one connection, in any order.
    q_literal = 'SELECT "projects"."id" FROM "projects" WHERE "projects"."id" = 3 LIMIT 21'
    q_param = 'SELECT "projects"."id" FROM "projects" WHERE "projects"."id" = %s LIMIT 21'
    assert app.execute(q_literal).fetchall() == [(3,)]  # simple query, literals
    assert app.execute(q_param, (3,)).fetchall() == [(3,)]  # Parse with $1
    assert app.execute(q_literal).fetchall() == [(3,)]
    # the same with DELETE, on rows of our own
    with tsenv.connect(tsenv.DIRECT_DSN) as direct:
        s = tsenv.seed_project(direct, tasks=3, comments=0, attachments=0, invoices=0)
    t = s["tasks"]
    assert app.execute(f"DELETE FROM tasks WHERE id = {int(t[0])} AND project_id = {int(s['project'])}").rowcount == 1
    assert app.execute(f"DELETE FROM tasks WHERE id = %s AND project_id = {int(s['project'])}", (t[1],)).rowcount == 1
    assert app.execute("SELECT count(*) FROM tasks WHERE project_id = %s", (s["project"],)).fetchone() == (1,)


def test_same_shape_with_parameters_then_with_literals(app, direct):
    # The reverse order of the test above, on a shape of its own.
    s = tsenv.seed_project(direct, tasks=2, comments=0, attachments=0, invoices=0)
    t, p = s["tasks"], int(s["project"])
    q_param = 'SELECT "tasks"."id" FROM "tasks" WHERE "tasks"."id" = %s AND "tasks"."project_id" = ' + str(p)
    q_literal = f'SELECT "tasks"."id" FROM "tasks" WHERE "tasks"."id" = {int(t[1])} AND "tasks"."project_id" = {p}'
    assert app.execute(q_param, (t[0],)).fetchall() == [(t[0],)]
    assert app.execute(q_literal).fetchall() == [(t[1],)]
    assert app.execute(q_param, (t[1],)).fetchall() == [(t[1],)]
