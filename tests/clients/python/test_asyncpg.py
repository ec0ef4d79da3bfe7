"""asyncpg through the proxy.  asyncpg uses the extended protocol only: it
prepares every statement (named, cached) and relies on Describe for parameter
and result types, always in binary format.

The tests are plain functions that run a coroutine with asyncio.run, so no
pytest plugin is needed."""

import asyncio
import io
import json
import time
import uuid
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import asyncpg
import pytest

from conftest import CONNECT_TIMEOUT, DSN, uniq

NON_ASCII = "héllo wörld — ✓ 日本語 🐘 Ω"
ALL_BYTES = bytes(range(256))


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, timeout=120))


async def connect(**kwargs) -> asyncpg.Connection:
    kwargs.setdefault("timeout", CONNECT_TIMEOUT)
    return await asyncpg.connect(DSN, **kwargs)


async def use_jsonb(conn):
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


def test_connect_and_server_info():
    async def main():
        app = uniq("tombstone_asyncpg")
        conn = await connect(server_settings={"application_name": app, "DateStyle": "SQL, DMY"})
        try:
            assert await conn.fetchval("SELECT 1 + 1") == 2
            assert conn.get_server_version().major >= 10
            assert await conn.fetchval("SHOW application_name") == app
            assert await conn.fetchval("SHOW datestyle") == "SQL, DMY"
            assert await conn.fetchval("SELECT '2024-02-29'::date::text") == "29/02/2024"
            assert conn.get_settings().server_encoding == "UTF8"
        finally:
            await conn.close(timeout=10)
        assert conn.is_closed()

    run(main())


def test_crud_many_types(table):
    full = (
        1,
        NON_ASCII,
        ALL_BYTES,
        Decimal("-12345678901234567890.000000000123"),
        datetime(2024, 2, 29, 23, 59, 58, 123456, tzinfo=timezone.utc),
        {"a": [1, 2, {"b": None}], "ü": "ß"},
        [1, None, -3, 2147483647],
        ["x", None, "ÿ", "", 'q"uote'],
        1.5e300,
        True,
        uuid.UUID("12345678-1234-5678-1234-567812345678"),
        date(1999, 12, 31),
        timedelta(days=3, seconds=7, microseconds=5),
    )
    null = (2,) + (None,) * (len(full) - 1)

    async def main():
        conn = await connect()
        try:
            await use_jsonb(conn)
            await conn.execute(
                f"CREATE TABLE {table} (id int PRIMARY KEY, t text, b bytea, n numeric,"
                " ts timestamptz, j jsonb, ia int[], ta text[], f float8, ok bool, u uuid,"
                " d date, iv interval)"
            )
            placeholders = ", ".join(f"${i + 1}" for i in range(len(full)))
            status = await conn.execute(f"INSERT INTO {table} VALUES ({placeholders})", *full)
            assert status == "INSERT 0 1"
            await conn.execute(f"INSERT INTO {table} VALUES ({placeholders})", *null)

            rows = await conn.fetch(f"SELECT * FROM {table} ORDER BY id")
            assert [tuple(r) for r in rows] == [full, null]
            assert list(rows[0].keys())[:3] == ["id", "t", "b"]

            assert await conn.fetchval(f"SELECT id FROM {table} WHERE t = $1 AND b = $2", NON_ASCII, ALL_BYTES) == 1
            assert await conn.fetchval(f"SELECT id FROM {table} WHERE j @> $1", {"ü": "ß"}) == 1
            assert await conn.fetchval(f"SELECT id FROM {table} WHERE $1 = ANY(ia)", -3) == 1

            status = await conn.execute(
                f"UPDATE {table} SET t = $1, n = n * $2, ia = array_append(ia, $3) WHERE id = $4",
                "ü-updated", Decimal(2), 7, 1,
            )
            assert status == "UPDATE 1"
            assert await conn.execute(f"UPDATE {table} SET ok = $1", False) == "UPDATE 2"
            row = await conn.fetchrow(f"SELECT t, n, ia, ok FROM {table} WHERE id = $1", 1)
            assert tuple(row) == (
                "ü-updated",
                Decimal("-24691357802469135780.000000000246"),
                [1, None, -3, 2147483647, 7],
                False,
            )
            assert await conn.execute(f"DELETE FROM {table} WHERE id = $1", 2) == "DELETE 1"
            assert await conn.execute(f"DELETE FROM {table} WHERE id = $1", 2) == "DELETE 0"
            assert await conn.fetchval(f"SELECT count(*) FROM {table}") == 1
        finally:
            await conn.close(timeout=10)

    run(main())


def test_prepared_statement_reused_many_times():
    async def main():
        conn = await connect()
        try:
            marker = uniq("m")
            stmt = await conn.prepare(f"SELECT $1::int * 2 AS doubled, $2::text || '{marker}' AS t, $3::bytea AS b")
            # Describe gave parameter and column types.
            assert [t.name for t in stmt.get_parameters()] == ["int4", "text", "bytea"]
            assert [(a.name, a.type.name) for a in stmt.get_attributes()] == [
                ("doubled", "int4"), ("t", "text"), ("b", "bytea"),
            ]
            for i in range(300):
                payload = bytes([i % 256]) * (i % 13)
                row = await stmt.fetchrow(i, f"ü{i}", payload)
                assert tuple(row) == (i * 2, f"ü{i}{marker}", payload)
            names = await conn.fetch(
                "SELECT name FROM pg_prepared_statements WHERE strpos(statement, $1) > 0", marker
            )
            assert len(names) == 1, names

            # asyncpg's statement cache: the same query text via fetchval
            # reuses one named statement.
            for i in range(100):
                assert await conn.fetchval(f"SELECT $1::int8 + 1 /* {marker}x */", i) == i + 1
            names = await conn.fetch(
                "SELECT name FROM pg_prepared_statements WHERE strpos(statement, $1) > 0", marker + "x"
            )
            assert len(names) == 1, names
        finally:
            await conn.close(timeout=10)

    run(main())


def test_executemany(table):
    async def main():
        conn = await connect()
        try:
            await conn.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, t text, n numeric)")
            rows = [(i, f"ü{i}", Decimal(i) / 4) for i in range(2000)]
            await conn.executemany(f"INSERT INTO {table} VALUES ($1, $2, $3)", rows)
            got = await conn.fetch(f"SELECT id, t, n FROM {table} ORDER BY id")
            assert [tuple(r) for r in got] == rows
            # An error in the middle of executemany leaves the batch undone
            # (it runs in a transaction) and the connection usable.
            with pytest.raises(asyncpg.UniqueViolationError):
                await conn.executemany(
                    f"INSERT INTO {table} VALUES ($1, $2, $3)",
                    [(5000, "a", 1), (5001, "b", 2), (0, "dup", 3), (5002, "c", 4)],
                )
            assert await conn.fetchval(f"SELECT count(*) FROM {table}") == 2000
        finally:
            await conn.close(timeout=10)

    run(main())


def test_transactions(table):
    async def main():
        conn = await connect()
        other = await connect()
        try:
            await conn.execute(f"CREATE TABLE {table} (id int PRIMARY KEY)")
            async with conn.transaction():
                await conn.execute(f"INSERT INTO {table} VALUES (1)")
                assert await other.fetchval(f"SELECT count(*) FROM {table}") == 0
            assert await other.fetchval(f"SELECT count(*) FROM {table}") == 1

            class Boom(Exception):
                pass

            with pytest.raises(Boom):
                async with conn.transaction():
                    await conn.execute(f"INSERT INTO {table} VALUES (2)")
                    raise Boom()
            assert await conn.fetchval(f"SELECT count(*) FROM {table}") == 1

            # Savepoints.
            async with conn.transaction():
                await conn.execute(f"INSERT INTO {table} VALUES (3)")
                with pytest.raises(asyncpg.UniqueViolationError):
                    async with conn.transaction():
                        await conn.execute(f"INSERT INTO {table} VALUES (1)")
                await conn.execute(f"INSERT INTO {table} VALUES (4)")
            ids = [r[0] for r in await conn.fetch(f"SELECT id FROM {table} ORDER BY id")]
            assert ids == [1, 3, 4]
        finally:
            await other.close(timeout=10)
            await conn.close(timeout=10)

    run(main())


def test_error_in_transaction_then_rollback_then_more_work(table):
    async def main():
        conn = await connect()
        try:
            await conn.execute(f"CREATE TABLE {table} (id int PRIMARY KEY)")
            tr = conn.transaction()
            await tr.start()
            await conn.execute(f"INSERT INTO {table} VALUES ($1)", 1)
            with pytest.raises(asyncpg.DivisionByZeroError) as ei:
                await conn.fetchval("SELECT 1 / $1::int", 0)
            assert ei.value.sqlstate == "22012"
            with pytest.raises(asyncpg.InFailedSQLTransactionError) as ei:
                await conn.fetchval("SELECT 1")
            assert ei.value.sqlstate == "25P02"
            await tr.rollback()
            assert not conn.is_in_transaction()
            assert await conn.fetchval(f"SELECT count(*) FROM {table}") == 0
            async with conn.transaction():
                for i in range(10):
                    await conn.execute(f"INSERT INTO {table} VALUES ($1)", i)
            assert tuple(await conn.fetchrow(f"SELECT count(*), sum(id) FROM {table}")) == (10, 45)
        finally:
            await conn.close(timeout=10)

    run(main())


def test_errors_keep_connection_usable(table):
    async def main():
        conn = await connect()
        try:
            with pytest.raises(asyncpg.PostgresSyntaxError) as ei:
                await conn.fetch("SELEC 1 FROM nowhere")
            assert ei.value.sqlstate == "42601"
            assert await conn.fetchval("SELECT 'still here'") == "still here"

            with pytest.raises(asyncpg.UndefinedTableError) as ei:
                await conn.fetch("SELECT * FROM " + uniq("does_not_exist"))
            assert ei.value.sqlstate == "42P01"

            await conn.execute(f"CREATE TABLE {table} (id int, CONSTRAINT {table}_pk PRIMARY KEY (id))")
            await conn.execute(f"INSERT INTO {table} VALUES ($1)", 1)
            with pytest.raises(asyncpg.UniqueViolationError) as ei:
                await conn.execute(f"INSERT INTO {table} VALUES ($1)", 1)
            assert ei.value.sqlstate == "23505"
            assert ei.value.constraint_name == f"{table}_pk"
            assert ei.value.table_name == table
            await conn.execute(f"INSERT INTO {table} VALUES ($1)", 2)
            assert await conn.fetchval(f"SELECT count(*) FROM {table}") == 2

            # A type error caught at Bind time.
            with pytest.raises(asyncpg.InvalidTextRepresentationError):
                await conn.fetchval("SELECT $1::text::int", "not a number")
            assert await conn.fetchval("SELECT 7") == 7
        finally:
            await conn.close(timeout=10)

    run(main())


def test_copy_records_to_table_and_copy_from_query(table):
    n = 20000
    base = datetime(2020, 1, 1, tzinfo=timezone.utc)
    records = [(i, f"row {i} ü\t\\", bytes([i % 256, 0, 255]), base + timedelta(seconds=i), [i, None]) for i in range(n)]

    async def main():
        conn = await connect()
        try:
            await conn.execute(
                f"CREATE TABLE {table} (id int PRIMARY KEY, t text, b bytea, ts timestamptz, a int[])"
            )
            status = await conn.copy_records_to_table(table, records=records)
            assert status == f"COPY {n}"
            got = await conn.fetch(f"SELECT * FROM {table} ORDER BY id")
            assert [tuple(r) for r in got] == records

            buf = io.BytesIO()
            status = await conn.copy_from_query(
                f"SELECT id, t FROM {table} WHERE id < $1 ORDER BY id", n // 2, output=buf, format="csv"
            )
            assert status == f"COPY {n // 2}"
            # CSV quotes none of these fields (no comma, quote or newline).
            expected = "".join(f"{i},row {i} ü\t\\\n" for i in range(n // 2)).encode()
            assert buf.getvalue() == expected

            # Text COPY in from bytes, then out with an async callable sink.
            other = uniq("ts_tbl")
            await conn.execute(f"CREATE TEMP TABLE {other} (id int, t text)")
            src = "".join(f"{i}\tü{i}\n" for i in range(1000)).encode()
            assert await conn.copy_to_table(other, source=io.BytesIO(src)) == "COPY 1000"
            chunks = []

            async def sink(data):
                chunks.append(bytes(data))

            await conn.copy_from_table(other, output=sink)
            assert b"".join(chunks) == src
        finally:
            await conn.close(timeout=10)

    run(main())


def test_cursor_in_transaction():
    async def main():
        conn = await connect()
        try:
            async with conn.transaction():
                got = [r[0] async for r in conn.cursor("SELECT g FROM generate_series(1, $1) g", 1000, prefetch=37)]
                assert got == list(range(1, 1001))

                cur = await conn.cursor("SELECT g, repeat('ü', g) FROM generate_series(1, 100) g")
                first = await cur.fetch(5)
                assert [tuple(r) for r in first] == [(g, "ü" * g) for g in range(1, 6)]
                assert await cur.forward(10) == 10
                assert tuple(await cur.fetchrow()) == (16, "ü" * 16)
                rest = await cur.fetch(1000)
                assert len(rest) == 84
                assert await cur.fetchrow() is None
            # Cursors need a transaction.
            with pytest.raises(asyncpg.NoActiveSQLTransactionError):
                await conn.cursor("SELECT 1")
        finally:
            await conn.close(timeout=10)

    run(main())


def test_listen_notify():
    async def main():
        channel = uniq("chan")
        listener = await connect()
        sender = await connect()
        try:
            got = []
            done = asyncio.get_running_loop().create_future()

            def on_notify(conn, pid, chan, payload):
                got.append((pid, chan, payload))
                if len(got) == 3 and not done.done():
                    done.set_result(None)

            await listener.add_listener(channel, on_notify)
            sender_pid = await sender.fetchval("SELECT pg_backend_pid()")
            await sender.execute(f"NOTIFY {channel}, 'first ü'")
            await sender.execute("SELECT pg_notify($1, $2)", channel, "second")
            async with sender.transaction():
                await sender.execute("SELECT pg_notify($1, $2)", channel, "third in tx")
            await asyncio.wait_for(done, timeout=10)
            assert got == [
                (sender_pid, channel, "first ü"),
                (sender_pid, channel, "second"),
                (sender_pid, channel, "third in tx"),
            ]
            await listener.remove_listener(channel, on_notify)
        finally:
            await sender.close(timeout=10)
            await listener.close(timeout=10)

    run(main())


def test_timeout_cancels_pg_sleep():
    async def main():
        conn = await connect()
        mon = await connect()
        try:
            pid = await conn.fetchval("SELECT pg_backend_pid()")
            start = time.monotonic()
            with pytest.raises(asyncio.TimeoutError):
                await conn.execute("SELECT pg_sleep(30)", timeout=1)
            # asyncpg sent a CancelRequest; the server must have stopped the
            # sleep, so the connection is usable right away.
            assert await conn.fetchval("SELECT 'after cancel'", timeout=10) == "after cancel"
            elapsed = time.monotonic() - start
            assert elapsed < 10, f"cancel took {elapsed:.1f}s"
            busy = await mon.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = $1 AND query LIKE '%pg_sleep(30)%' AND state = 'active'",
                pid,
            )
            assert busy == 0
        finally:
            await mon.close(timeout=10)
            await conn.close(timeout=10)

    run(main())


def test_task_cancel_gives_query_canceled_on_server():
    async def main():
        conn = await connect()
        mon = await connect()
        try:
            pid = await conn.fetchval("SELECT pg_backend_pid()")
            task = asyncio.ensure_future(conn.fetchval("SELECT pg_sleep(30)"))
            deadline = time.monotonic() + 10
            while not await mon.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = $1 AND state = 'active' AND query LIKE '%pg_sleep%'",
                pid,
            ):
                assert time.monotonic() < deadline, "pg_sleep never started"
                await asyncio.sleep(0.05)
            start = time.monotonic()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert await conn.fetchval("SELECT 1", timeout=10) == 1
            assert time.monotonic() - start < 10
        finally:
            await mon.close(timeout=10)
            await conn.close(timeout=10)

    run(main())


def test_pool_many_parallel_queries(table):
    async def main():
        pool = await asyncpg.create_pool(DSN, min_size=2, max_size=8, timeout=CONNECT_TIMEOUT)
        try:
            await pool.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, t text)")

            async def one(i):
                async with pool.acquire() as c:
                    async with c.transaction():
                        await c.execute(f"INSERT INTO {table} VALUES ($1, $2)", i, f"ü{i}")
                        return await c.fetchval("SELECT $1::int * $1::int", i)

            results = await asyncio.gather(*(one(i) for i in range(400)))
            assert results == [i * i for i in range(400)]
            assert await pool.fetchval(f"SELECT count(*) FROM {table}") == 400
        finally:
            await asyncio.wait_for(pool.close(), 30)

    run(main())
