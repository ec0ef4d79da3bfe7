"""asyncpg through tombstone on the protected scenario. asyncpg always uses
the extended protocol with named prepared statements, and reports the
command tag as the status string of ``execute``."""

import asyncio

import asyncpg
import pytest

import tsenv
from tsenv import assert_live, assert_project_gone, assert_soft_deleted, live_count


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


async def aconnect(dsn):
    return await asyncpg.connect(dsn, timeout=tsenv.CONNECT_TIMEOUT)


def test_delete_project_status_and_cascade(app, admin, direct, seed):
    async def go():
        c = await aconnect(tsenv.APP_DSN)
        try:
            assert await c.execute("DELETE FROM projects WHERE id = $1", seed["project"]) == "DELETE 1"
            assert await c.fetchval("SELECT count(*) FROM tasks WHERE project_id = $1", seed["project"]) == 0
            assert await c.fetch(
                "SELECT c.id FROM comments c JOIN tasks t ON t.id = c.task_id WHERE t.project_id = $1",
                seed["project"],
            ) == []
            assert await c.execute("DELETE FROM projects WHERE id = $1", seed["project"]) == "DELETE 0"
        finally:
            await c.close()

    run(go())
    assert_project_gone(app, direct, seed, admin=admin)


def test_prepared_delete_reused(app, direct, seed):
    async def go():
        c = await aconnect(tsenv.APP_DSN)
        try:
            stmt = await c.prepare("DELETE FROM tasks WHERE id = $1")
            tags = []
            for t in seed["tasks"] + seed["tasks"][:2]:
                await stmt.fetch(t)
                tags.append(stmt.get_statusmsg())
            return tags
        finally:
            await c.close()

    tags = run(go())
    n = len(seed["tasks"])
    assert tags == ["DELETE 1"] * n + ["DELETE 0"] * 2
    assert_soft_deleted(direct, "tasks", "id", seed["tasks"], n)
    assert_soft_deleted(direct, "comments", "id", seed["comments"], len(seed["comments"]))
    assert live_count(app, "comments", "task_id", seed["tasks"]) == 0


def test_delete_returning_and_executemany(app, direct, seed):
    async def go():
        c = await aconnect(tsenv.APP_DSN)
        try:
            rows = await c.fetch(
                "DELETE FROM comments WHERE task_id = $1 RETURNING id, task_id, body", seed["tasks"][0]
            )
            await c.executemany(
                "DELETE FROM attachments WHERE id = $1", [(a,) for a in seed["attachments"]]
            )
            left = await c.fetchval(
                "SELECT count(*) FROM attachments WHERE task_id = any($1::bigint[])", seed["tasks"]
            )
            return rows, left
        finally:
            await c.close()

    rows, left = run(go())
    assert len(rows) == 3
    assert {r["task_id"] for r in rows} == {seed["tasks"][0]}
    assert all(r["body"].startswith("seeded comment") for r in rows)
    assert left == 0
    assert_soft_deleted(direct, "comments", "task_id", seed["tasks"][:1], 3)
    assert_soft_deleted(direct, "attachments", "id", seed["attachments"], len(seed["attachments"]))
    assert_live(direct, "tasks", "id", seed["tasks"], len(seed["tasks"]))


def test_transaction_rollback_and_commit(app, direct):
    s1 = tsenv.seed_project(direct, tasks=2, comments=1, attachments=1, invoices=1)
    s2 = tsenv.seed_project(direct, tasks=2, comments=1, attachments=1, invoices=1)

    async def go():
        c = await aconnect(tsenv.APP_DSN)
        try:
            with pytest.raises(RuntimeError):
                async with c.transaction():
                    assert await c.execute("DELETE FROM projects WHERE id = $1", s1["project"]) == "DELETE 1"
                    raise RuntimeError("roll back")
            async with c.transaction():
                assert await c.execute("DELETE FROM projects WHERE id = $1", s2["project"]) == "DELETE 1"
                assert await c.fetchval("SELECT count(*) FROM tasks WHERE project_id = $1", s2["project"]) == 0
        finally:
            await c.close()

    run(go())
    assert_live(direct, "tasks", "id", s1["tasks"], 2)
    assert_project_gone(app, direct, s2)


def test_restrict_and_truncate_errors(app, direct):
    tsenv.grant_truncate_on_tasks(direct, app)
    cat = direct.execute("SELECT category_id FROM projects WHERE id = 3").fetchone()[0]
    before = direct.execute("SELECT count(*) FROM tasks").fetchone()[0]

    async def go():
        c = await aconnect(tsenv.APP_DSN)
        try:
            with pytest.raises(asyncpg.exceptions.ForeignKeyViolationError) as e:
                await c.execute("DELETE FROM categories WHERE id = $1", cat)
            assert e.value.sqlstate == "23503"
            assert await c.fetchval("SELECT 1") == 1
            with pytest.raises(asyncpg.exceptions.InsufficientPrivilegeError) as e:
                await c.execute("TRUNCATE tasks")
            assert e.value.sqlstate == "42501"
            assert await c.fetchval("SELECT count(*) FROM categories WHERE id = $1", cat) == 1
        finally:
            await c.close()

    run(go())
    assert_live(direct, "categories", "id", [cat], 1)
    assert direct.execute("SELECT count(*) FROM tasks").fetchone()[0] == before


def test_pool_parallel_deletes(app, direct):
    seeds = [tsenv.seed_project(direct, tasks=3, comments=2, attachments=1, invoices=1) for _ in range(6)]

    async def go():
        pool = await asyncpg.create_pool(tsenv.APP_DSN, min_size=2, max_size=4, timeout=tsenv.CONNECT_TIMEOUT)
        try:
            async def one(s):
                async with pool.acquire() as c:
                    return await c.execute("DELETE FROM projects WHERE id = $1", s["project"])

            return await asyncio.gather(*(one(s) for s in seeds))
        finally:
            await pool.close()

    assert run(go()) == ["DELETE 1"] * len(seeds)
    for s in seeds:
        assert_project_gone(app, direct, s)


def test_copy_from_query_live_rows_only(direct, seed):
    import io

    async def go():
        c = await aconnect(tsenv.APP_DSN)
        try:
            assert await c.execute("DELETE FROM tasks WHERE id = $1", seed["tasks"][0]) == "DELETE 1"
            buf = io.BytesIO()
            await c.copy_from_query(
                "SELECT id FROM tasks WHERE project_id = $1 ORDER BY id", seed["project"], output=buf
            )
            return [int(x) for x in buf.getvalue().decode().split()]
        finally:
            await c.close()

    assert run(go()) == seed["tasks"][1:]
    assert_soft_deleted(direct, "tasks", "id", seed["tasks"][:1], 1)


def test_delete_returning_describes_like_a_hard_delete(direct, seed):
    # The prepared statement's result description (names, types) through the
    # proxy equals the one PostgreSQL gives for the same DELETE directly.
    q = "DELETE FROM attachments WHERE task_id = $1 RETURNING id, task_id, filename, size_bytes, deleted_at"

    async def describe(dsn):
        c = await aconnect(dsn)
        try:
            stmt = await c.prepare(q)
            return [(a.name, a.type.oid) for a in stmt.get_attributes()], [p.oid for p in stmt.get_parameters()]
        finally:
            await c.close()

    async def go():
        return await describe(tsenv.APP_DSN), await describe(tsenv.DIRECT_DSN)

    through, direct_desc = run(go())
    assert through == direct_desc
    assert_live(direct, "attachments", "task_id", seed["tasks"], len(seed["attachments"]))
