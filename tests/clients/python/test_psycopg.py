"""psycopg 3 through the proxy: simple and extended protocol, binary formats,
prepared statements, transactions, errors, pipeline mode, COPY, server-side
cursors, LISTEN/NOTIFY and cancellation."""

import threading
import time
import uuid
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import psycopg
import pytest
from psycopg import errors
from psycopg.types.json import Jsonb

from conftest import pg_connect, uniq

NON_ASCII = "héllo wörld — ✓ 日本語 🐘 Ω"
ALL_BYTES = bytes(range(256))

TYPED_COLUMNS = (
    "id int PRIMARY KEY, t text, b bytea, n numeric, ts timestamptz, j jsonb,"
    " ia int[], ta text[], f float8, ok bool, u uuid, d date"
)

FULL_ROW = (
    1,
    NON_ASCII,
    ALL_BYTES,
    Decimal("-12345678901234567890.000000000123"),
    datetime(2024, 2, 29, 23, 59, 58, 123456, tzinfo=timezone.utc),
    {"a": [1, 2, {"b": None}], "ü": "ß", "n": 1.5},
    [1, None, -3, 2147483647],
    ["x", None, "ÿ", "", "with,comma", 'q"uote'],
    1.5e300,
    True,
    uuid.UUID("12345678-1234-5678-1234-567812345678"),
    date(1999, 12, 31),
)
NULL_ROW = (2,) + (None,) * (len(FULL_ROW) - 1)


def _params(row):
    # jsonb needs an explicit wrapper in psycopg; everything else adapts.
    return tuple(Jsonb(v) if isinstance(v, dict) else v for v in row)


def test_connect_and_server_info(aconn):
    assert aconn.info.status == psycopg.pq.ConnStatus.OK
    assert aconn.execute("SELECT 1 + 1").fetchone() == (2,)
    assert aconn.info.server_version >= 100000
    assert aconn.info.backend_pid > 0
    # ParameterStatus values from the server reached the client.
    assert aconn.info.parameter_status("server_version")
    assert aconn.info.parameter_status("client_encoding") == "UTF8"
    # The real backend pid (the proxy may hide BackendKeyData's one).
    (pid,) = aconn.execute("SELECT pg_backend_pid()").fetchone()
    assert pid > 0


def test_startup_parameters_are_relayed():
    app = uniq("tombstone_pytest")
    with pg_connect(
        autocommit=True,
        application_name=app,
        options="-c intervalstyle=iso_8601 -c statement_timeout=12345",
    ) as c:
        assert c.execute("SHOW application_name").fetchone() == (app,)
        assert c.execute("SHOW intervalstyle").fetchone() == ("iso_8601",)
        assert c.execute("SHOW statement_timeout").fetchone() == ("12345ms",)
        assert c.execute("SELECT '1 day 2 hours'::interval::text").fetchone() == ("P1DT2H",)
        (n,) = c.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND pid = pg_backend_pid()",
            (app,),
        ).fetchone()
        assert n == 1


def test_non_utf8_client_encoding_and_parameter_status():
    with pg_connect(autocommit=True, client_encoding="LATIN1") as c:
        assert c.info.encoding == "iso8859-1"
        assert c.execute("SHOW client_encoding").fetchone() == ("LATIN1",)
        text = "café ÿ ñ £"
        assert c.execute("SELECT %s::text, length(%s::text)", (text, text)).fetchone() == (text, len(text))
        # A SET changes client_encoding; the server reports it with
        # ParameterStatus, which must reach psycopg.
        c.execute("SET client_encoding TO 'UTF8'")
        assert c.info.encoding == "utf-8"
        assert c.execute("SELECT %s::text", (NON_ASCII,)).fetchone() == (NON_ASCII,)


@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
def test_crud_many_types(aconn, table, binary):
    ph = "%b" if binary else "%t"
    ncols = len(FULL_ROW)
    aconn.execute(f"CREATE TABLE {table} ({TYPED_COLUMNS})")
    cur = aconn.cursor(binary=binary)
    insert = f"INSERT INTO {table} VALUES ({', '.join([ph] * ncols)})"
    cur.execute(insert, _params(FULL_ROW))
    assert cur.rowcount == 1
    cur.executemany(insert, [_params(NULL_ROW)])

    cur.execute(f"SELECT * FROM {table} ORDER BY id")
    assert cur.pgresult.fformat(0) == (1 if binary else 0)
    rows = cur.fetchall()
    assert rows == [FULL_ROW, NULL_ROW]

    # Parameters in WHERE, bytea and non-ASCII text compared server-side.
    cur.execute(f"SELECT id FROM {table} WHERE t = {ph} AND b = {ph}", (NON_ASCII, ALL_BYTES))
    assert cur.fetchall() == [(1,)]
    cur.execute(f"SELECT id FROM {table} WHERE t IS NULL AND n IS NULL")
    assert cur.fetchall() == [(2,)]

    new_text = NON_ASCII[::-1]
    cur.execute(
        f"UPDATE {table} SET t = {ph}, n = n * {ph}, ia = array_append(ia, {ph}) WHERE id = {ph}",
        (new_text, Decimal(2), 7, 1),
    )
    assert cur.rowcount == 1
    cur.execute(f"UPDATE {table} SET ok = {ph} WHERE id > {ph}", (False, 0))
    assert cur.rowcount == 2
    cur.execute(f"SELECT t, n, ia, ok FROM {table} WHERE id = {ph}", (1,))
    assert cur.fetchone() == (
        new_text,
        Decimal("-24691357802469135780.000000000246"),
        FULL_ROW[6] + [7],
        False,
    )

    cur.execute(f"DELETE FROM {table} WHERE id = {ph}", (2,))
    assert cur.rowcount == 1
    cur.execute(f"DELETE FROM {table} WHERE id = {ph}", (2,))
    assert cur.rowcount == 0
    cur.execute(f"SELECT count(*) FROM {table}")
    assert cur.fetchone() == (1,)


def test_multi_statement_simple_query(aconn, table):
    # Simple-query protocol with several statements in one string.
    cur = aconn.cursor()
    cur.execute(
        f"CREATE TABLE {table} (id int); INSERT INTO {table} VALUES (1), (2); "
        f"SELECT sum(id) FROM {table}; SELECT 'two', 'columns'",
        prepare=False,
    )
    results = []
    while True:
        results.append(cur.fetchall() if cur.description else None)
        if not cur.nextset():
            break
    assert results[-2:] == [[(3,)], [("two", "columns")]]


def test_prepared_statement_reused_many_times(aconn):
    marker = uniq("m")
    query = f"SELECT %s::int * 2, %s::text || '{marker}', %s::bytea"
    cur = aconn.cursor()
    for i in range(300):
        payload = bytes([i % 256]) * (i % 17)
        cur.execute(query, (i, f"ü{i}", payload), prepare=True)
        assert cur.fetchone() == (i * 2, f"ü{i}{marker}", payload)
    # Exactly one server-side prepared statement for it on this session.
    rows = aconn.execute(
        "SELECT name FROM pg_prepared_statements WHERE strpos(statement, %s) > 0", (marker,)
    ).fetchall()
    assert len(rows) == 1, rows


def test_binary_cursor_reused_prepared(aconn):
    cur = aconn.cursor(binary=True)
    for i in range(100):
        cur.execute("SELECT %b::int8, %b::float8, %b::numeric, %b::text[]",
                    (i, i / 4, Decimal(i) / 8, [str(i), None]), prepare=True)
        assert cur.pgresult.fformat(0) == 1
        assert cur.fetchone() == (i, i / 4, Decimal(i) / 8, [str(i), None])


def test_transaction_commit_and_rollback(aconn, table):
    aconn.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, v text)")
    with pg_connect() as c:
        with c.transaction():
            c.execute(f"INSERT INTO {table} VALUES (1, 'committed')")
            # Not visible to another session before COMMIT.
            assert aconn.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,)
        assert aconn.execute(f"SELECT v FROM {table}").fetchall() == [("committed",)]

        c.execute(f"INSERT INTO {table} VALUES (2, 'rolled back')")
        assert c.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
        c.rollback()
        assert c.info.transaction_status == psycopg.pq.TransactionStatus.IDLE

        with c.transaction():
            c.execute(f"INSERT INTO {table} VALUES (3, 'outer')")
            with pytest.raises(errors.UniqueViolation):
                with c.transaction():  # savepoint
                    c.execute(f"INSERT INTO {table} VALUES (1, 'dup')")
            c.execute(f"INSERT INTO {table} VALUES (4, 'after savepoint')")
        c.commit()
    rows = aconn.execute(f"SELECT id FROM {table} ORDER BY id").fetchall()
    assert rows == [(1,), (3,), (4,)]


def test_error_in_transaction_then_rollback_then_more_work(conn, table):
    conn.execute(f"CREATE TABLE {table} (id int PRIMARY KEY)")
    conn.commit()
    conn.execute(f"INSERT INTO {table} VALUES (1)")
    with pytest.raises(errors.DivisionByZero) as ei:
        conn.execute("SELECT 1 / 0")
    assert ei.value.sqlstate == "22012"
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INERROR
    with pytest.raises(errors.InFailedSqlTransaction) as ei:
        conn.execute("SELECT 1")
    assert ei.value.sqlstate == "25P02"
    conn.rollback()
    # The same connection keeps working, and the insert was undone.
    assert conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,)
    for i in range(10):
        conn.execute(f"INSERT INTO {table} VALUES (%s)", (i,))
    conn.commit()
    assert conn.execute(f"SELECT count(*), sum(id) FROM {table}").fetchone() == (10, 45)
    conn.commit()


def test_syntax_error_then_connection_usable(aconn):
    for prepare in (False, True):
        with pytest.raises(errors.SyntaxError) as ei:
            aconn.execute("SELEC 1 FROM nowhere", prepare=prepare)
        assert ei.value.sqlstate == "42601"
        assert ei.value.diag.message_primary
        assert aconn.execute("SELECT 'still here'").fetchone() == ("still here",)
    with pytest.raises(errors.UndefinedTable) as ei:
        aconn.execute("SELECT * FROM " + uniq("does_not_exist"))
    assert ei.value.sqlstate == "42P01"
    assert aconn.execute("SELECT 42").fetchone() == (42,)


def test_unique_violation_then_connection_usable(aconn, table):
    aconn.execute(f"CREATE TABLE {table} (id int, CONSTRAINT {table}_pk PRIMARY KEY (id))")
    aconn.execute(f"INSERT INTO {table} VALUES (%s)", (1,))
    with pytest.raises(errors.UniqueViolation) as ei:
        aconn.execute(f"INSERT INTO {table} VALUES (%s)", (1,))
    assert ei.value.sqlstate == "23505"
    assert ei.value.diag.constraint_name == f"{table}_pk"
    assert ei.value.diag.table_name == table
    aconn.execute(f"INSERT INTO {table} VALUES (%s)", (2,))
    assert aconn.execute(f"SELECT count(*) FROM {table}").fetchone() == (2,)


def test_notice_is_delivered(aconn):
    notices = []
    aconn.add_notice_handler(lambda d: notices.append((d.severity_nonlocalized, d.message_primary)))
    aconn.execute("DO $$ BEGIN RAISE NOTICE 'hello ü %', 42; END $$")
    assert notices == [("NOTICE", "hello ü 42")]


def test_pipeline_with_error_in_the_middle(aconn, table):
    aconn.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, v text)")
    insert = f"INSERT INTO {table} VALUES (%s, %s)"
    # prepare=False: psycopg would otherwise auto-prepare the insert on its
    # 5th use, inside the batch that fails, and then believe it exists.
    with aconn.pipeline() as p:
        sel = []
        for i in range(1, 4):
            aconn.execute(insert, (i, f"v{i}"), prepare=False)
            sel.append(aconn.execute("SELECT %s::int * 10", (i,)))
        p.sync()
        assert [c.fetchone() for c in sel] == [(10,), (20,), (30,)]

        # A batch whose middle statement fails: the ones after it in the
        # same batch are skipped, and the batch's implicit transaction is
        # rolled back.  psycopg raises the error from whichever call first
        # sees it come back: a later execute() or the sync().
        batch = []
        with pytest.raises(errors.UniqueViolation):
            batch.append(aconn.execute(insert, (10, "before error"), prepare=False))
            batch.append(aconn.execute(insert, (1, "duplicate"), prepare=False))
            batch.append(aconn.execute(insert, (11, "after error"), prepare=False))
            p.sync()
        if len(batch) == 3:
            # Raised by sync(): the statement after the error got no result.
            assert batch[2].pgresult is None
            with pytest.raises(psycopg.ProgrammingError):
                batch[2].fetchone()
        else:
            # Raised by the execute() after the error: the rest of the
            # batch is aborted until the next sync.
            with pytest.raises(errors.PipelineAborted):
                p.sync()

        # The pipeline goes on after the error.
        aconn.execute(insert, (20, "next batch"), prepare=False)
        last = aconn.execute(f"SELECT id FROM {table} ORDER BY id")
    assert last.fetchall() == [(1,), (2,), (3,), (20,)]
    assert aconn.execute("SELECT 1").fetchone() == (1,)


def test_pipeline_many_statements_with_executemany(aconn, table):
    aconn.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, v text)")
    cur = aconn.cursor()
    with aconn.pipeline():
        cur.executemany(f"INSERT INTO {table} VALUES (%s, %s)", [(i, f"ü{i}") for i in range(500)])
        curs = [aconn.execute("SELECT v FROM " + table + " WHERE id = %s", (i,)) for i in range(0, 500, 50)]
    assert [c.fetchone()[0] for c in curs] == [f"ü{i}" for i in range(0, 500, 50)]
    assert aconn.execute(f"SELECT count(*) FROM {table}").fetchone() == (500,)


def test_copy_in_and_out_text(aconn, table):
    n = 20000
    aconn.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, t text, b bytea, x numeric)")
    expected = [(i, f"row {i} ü\ttab\\back", bytes([i % 256, 0, 255]), Decimal(i) / 7) for i in range(n)]
    # Numeric values are rounded by the server; compare what it stored.
    cur = aconn.cursor()
    with cur.copy(f"COPY {table} (id, t, b, x) FROM STDIN") as copy:
        for row in expected:
            copy.write_row(row)
    assert aconn.execute(f"SELECT count(*) FROM {table}").fetchone() == (n,)

    with cur.copy(f"COPY (SELECT id, t, b FROM {table} ORDER BY id) TO STDOUT") as copy:
        copy.set_types(["int4", "text", "bytea"])
        got = list(copy.rows())
    assert got == [r[:3] for r in expected]

    # Raw bytes out match what the server renders for the same data.
    with cur.copy(f"COPY (SELECT id, t FROM {table} ORDER BY id) TO STDOUT") as copy:
        raw = b"".join(bytes(chunk) for chunk in copy)
    ref = "".join(
        f"{i}\t" + f"row {i} ü\ttab\\back".replace("\\", "\\\\").replace("\t", "\\t") + "\n"
        for i in range(n)
    ).encode()
    assert raw == ref


def test_copy_binary_in_and_out(aconn, table):
    n = 5000
    aconn.execute(f"CREATE TABLE {table} (id int8, t text, j jsonb, ts timestamptz)")
    base = datetime(2020, 1, 1, tzinfo=timezone.utc)
    rows = [(i, NON_ASCII + str(i), {"i": i}, base + timedelta(seconds=i)) for i in range(n)]
    cur = aconn.cursor()
    with cur.copy(f"COPY {table} FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(["int8", "text", "jsonb", "timestamptz"])
        for r in rows:
            copy.write_row((r[0], r[1], Jsonb(r[2]), r[3]))
    with cur.copy(f"COPY (SELECT * FROM {table} ORDER BY id) TO STDOUT (FORMAT BINARY)") as copy:
        copy.set_types(["int8", "text", "jsonb", "timestamptz"])
        got = list(copy.rows())
    assert got == rows


def test_copy_error_then_connection_usable(aconn, table):
    aconn.execute(f"CREATE TABLE {table} (id int PRIMARY KEY)")
    cur = aconn.cursor()
    with pytest.raises(errors.UniqueViolation):
        with cur.copy(f"COPY {table} FROM STDIN") as copy:
            copy.write_row((1,))
            copy.write_row((1,))
    # A client-side failure aborts the COPY with CopyFail.
    with pytest.raises(errors.QueryCanceled):
        with cur.copy(f"COPY {table} FROM STDIN") as copy:
            copy.write_row((5,))
            raise errors.QueryCanceled("client gave up")
    assert aconn.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,)


def test_server_side_named_cursor(conn):
    name = uniq("cur")
    with conn.cursor(name=name) as cur:
        cur.itersize = 97
        cur.execute("SELECT g, repeat('ü', g %% 5) FROM generate_series(1, %s) g", (2000,))
        first = cur.fetchmany(10)
        assert first == [(g, "ü" * (g % 5)) for g in range(1, 11)]
        rest = list(cur)
        assert len(rest) == 1990 and rest[-1] == (2000, "")
        # The cursor really is a server-side one on this session.
        assert conn.execute("SELECT count(*) FROM pg_cursors WHERE name = %s", (name,)).fetchone() == (1,)
    conn.commit()

    with conn.cursor(name=uniq("scroll"), scrollable=True, binary=True) as cur:
        cur.execute("SELECT g FROM generate_series(1, 100) g")
        cur.scroll(50)
        assert cur.fetchone() == (51,)
        cur.scroll(-11)
        assert cur.fetchone() == (41,)
    conn.commit()


def test_listen_notify(aconn):
    channel = uniq("chan")
    aconn.execute(f"LISTEN {channel}")
    with pg_connect(autocommit=True) as sender:
        sender_pid = sender.execute("SELECT pg_backend_pid()").fetchone()[0]
        sender.execute(f"NOTIFY {channel}, 'first ü'")
        sender.execute("SELECT pg_notify(%s, %s)", (channel, "second"))
        with sender.transaction():
            sender.execute("SELECT pg_notify(%s, %s)", (channel, "third in tx"))
    got = []
    for n in aconn.notifies(timeout=10, stop_after=3):
        got.append(n)
    assert [(n.channel, n.payload) for n in got] == [
        (channel, "first ü"),
        (channel, "second"),
        (channel, "third in tx"),
    ]
    assert all(n.pid == sender_pid for n in got)
    aconn.execute(f"UNLISTEN {channel}")


def _cancel_when_sleeping(conn, cancel, errors_out):
    """From another session, wait until conn's backend runs pg_sleep, then
    call cancel() (which goes to the DSN's host, i.e. through the proxy)."""
    try:
        pid = conn._test_backend_pid
        with pg_connect(autocommit=True) as mon:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                (busy,) = mon.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE pid = %s AND state = 'active'"
                    " AND query LIKE '%%pg_sleep%%'",
                    (pid,),
                ).fetchone()
                if busy:
                    break
                time.sleep(0.05)
            else:
                raise AssertionError("pg_sleep never showed up in pg_stat_activity")
        cancel()
    except BaseException as e:  # reported to the test thread
        errors_out.append(e)


@pytest.mark.parametrize("method", ["cancel", "cancel_safe"])
def test_cancel_pg_sleep(aconn, method):
    aconn._test_backend_pid = aconn.execute("SELECT pg_backend_pid()").fetchone()[0]
    thread_errors = []
    t = threading.Thread(
        target=_cancel_when_sleeping,
        args=(aconn, getattr(aconn, method), thread_errors),
        daemon=True,
    )
    start = time.monotonic()
    t.start()
    with pytest.raises(errors.QueryCanceled) as ei:
        aconn.execute("SELECT pg_sleep(30)")
    elapsed = time.monotonic() - start
    t.join(10)
    assert not thread_errors, thread_errors
    assert ei.value.sqlstate == "57014"
    assert elapsed < 10, f"cancel took {elapsed:.1f}s"
    assert aconn.execute("SELECT 'after cancel'").fetchone() == ("after cancel",)


def test_many_connections_in_threads(table):
    with pg_connect(autocommit=True) as c:
        c.execute(f"CREATE TABLE {table} (worker int, i int)")
    failures = []

    def work(w):
        try:
            with pg_connect(autocommit=True) as c:
                for i in range(50):
                    c.execute(f"INSERT INTO {table} VALUES (%s, %s)", (w, i))
                    assert c.execute("SELECT %s::int + 1", (i,)).fetchone() == (i + 1,)
        except BaseException as e:
            failures.append(e)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not failures, failures
    with pg_connect() as c:
        assert c.execute(f"SELECT count(*), count(DISTINCT worker) FROM {table}").fetchone() == (400, 8)
