"""Environment and helpers of the ORM-vs-twin suite.

``tests/orm_twin.rs`` creates two empty databases with the same schema
(``schema.py``: Django's ``migrate`` and SQLAlchemy's ``create_all``), runs
``tombstone migrate --apply --fix`` on one of them, starts a proxy for it and
sets:

- ``ORM_TWIN_DSN``   — the hard-delete twin, straight to PostgreSQL
- ``ORM_APP_DSN``    — the protected database through the proxy, as the
  normal application role
- ``ORM_DIRECT_DSN`` — the protected database straight to PostgreSQL, as
  superuser (checksums, action ids, restore)
- ``TOMBSTONE_BIN``  — the tombstone binary (``restore --action``)
- ``ORM_DJANGO_BINDING`` — ``server``: Django's psycopg server-side binding
  (``$1`` parameters, every statement prepared), on both databases;
  otherwise Django's default client-side binding
"""

import os
import subprocess
from urllib.parse import unquote, urlsplit

import psycopg


def _need(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"{name} is not set: run this suite through `cargo test --test orm_twin`")
    return value


def django_db(dsn: str) -> dict:
    u = urlsplit(dsn)
    db = {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(u.path.lstrip("/")),
        "USER": unquote(u.username or ""),
        "PASSWORD": unquote(u.password or ""),
        "HOST": u.hostname or "127.0.0.1",
        "PORT": str(u.port or 5432),
        "CONN_MAX_AGE": 0,
        "OPTIONS": {"sslmode": "disable", "connect_timeout": 10},
    }
    if os.environ.get("ORM_DJANGO_BINDING") == "server":
        db["OPTIONS"].update({"server_side_binding": True, "prepare_threshold": 0})
    return db


def configure_django(databases: dict) -> None:
    import django
    from django.conf import settings

    if not settings.configured:
        settings.configure(
            DATABASES=databases,
            INSTALLED_APPS=["library"],
            USE_TZ=True,
            TIME_ZONE="UTC",
            DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        )
        django.setup()


def sqlalchemy_url(dsn: str) -> str:
    return "postgresql+psycopg://" + dsn.split("://", 1)[1]


def connect(dsn: str) -> psycopg.Connection:
    return psycopg.connect(dsn, autocommit=True, connect_timeout=10)


SOFT_DELETE_COLUMN = "deleted_at"


def checksums(conn: psycopg.Connection, live_only: bool = False) -> dict:
    """Every table of schema ``public``: ``{table: (rows, md5)}`` over every
    column but ``deleted_at``, rows ordered by the primary key. With
    ``live_only``, rows with ``deleted_at`` set are left out (what a hard
    delete would have left)."""
    tables = [
        r[0]
        for r in conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') ORDER BY 1"
        ).fetchall()
    ]
    out = {}
    for table in tables:
        cols = [
            r[0]
            for r in conn.execute(
                "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass "
                "AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
                (f'public."{table}"',),
            ).fetchall()
        ]
        key = [
            r[0]
            for r in conn.execute(
                "SELECT a.attname FROM pg_index i "
                "JOIN LATERAL unnest(i.indkey) WITH ORDINALITY k(attnum, ord) ON true "
                "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
                "WHERE i.indrelid = %s::regclass AND i.indisprimary ORDER BY k.ord",
                (f'public."{table}"',),
            ).fetchall()
        ]
        data = [c for c in cols if c != SOFT_DELETE_COLUMN]
        order = key or data
        where = (
            f'WHERE "{SOFT_DELETE_COLUMN}" IS NULL'
            if live_only and SOFT_DELETE_COLUMN in cols
            else ""
        )
        row = ", ".join(f'"{c}"' for c in data)
        by = ", ".join(f'"{c}"' for c in order)
        out[table] = conn.execute(
            f"SELECT count(*), md5(coalesce(string_agg(ROW({row})::text, E'\\n' ORDER BY {by}), '')) "
            f'FROM public."{table}" {where}'
        ).fetchone()
    return out


def soft_deleted(conn: psycopg.Connection) -> dict:
    """Rows with ``deleted_at`` set, per table that has the column."""
    tables = [
        r[0]
        for r in conn.execute(
            "SELECT c.relname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND a.attname = %s "
            "AND NOT a.attisdropped ORDER BY 1",
            (SOFT_DELETE_COLUMN,),
        ).fetchall()
    ]
    return {
        t: conn.execute(f'SELECT count(*) FROM public."{t}" WHERE "{SOFT_DELETE_COLUMN}" IS NOT NULL').fetchone()[0]
        for t in tables
    }


def actions(conn: psycopg.Connection) -> list:
    """Action ids (transaction ids) of the soft deletes recorded so far,
    oldest first."""
    return [
        r[0]
        for r in conn.execute(
            "SELECT xact_id::text FROM (SELECT DISTINCT xact_id FROM tombstone.operations "
            "WHERE kind = 'soft_delete') a "
            "ORDER BY (SELECT min(created_at) FROM tombstone.operations o WHERE o.xact_id = a.xact_id), xact_id::text::bigint"
        ).fetchall()
    ]


def operation_tables(conn: psycopg.Connection, action: str) -> list:
    """``[(target table, operations)]`` of an action, by table."""
    return [
        tuple(r)
        for r in conn.execute(
            "SELECT table_name, count(*) FROM tombstone.operations WHERE xact_id::text = %s "
            "GROUP BY 1 ORDER BY 1",
            (action,),
        ).fetchall()
    ]


def assert_nothing_removed(direct_conn, before: dict, what: str):
    """Every row of ``before`` is still physically there (the deletes were
    soft)."""
    now = checksums(direct_conn)
    counts = {t: n for t, (n, _) in now.items()}
    assert counts == {t: n for t, (n, _) in before.items()}, f"{what}: rows physically removed: {counts}"


def restore_action(action: str) -> str:
    """``tombstone restore --action`` on the protected database; fails the
    test with its output when it fails."""
    res = subprocess.run(
        [
            _need("TOMBSTONE_BIN"),
            "restore",
            "--action",
            action,
            "--database-url",
            _need("ORM_DIRECT_DSN"),
            "--actor",
            "orm-twin-test",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, f"restore --action {action} failed:\n{res.stdout}\n{res.stderr}"
    return res.stdout


def assert_same(twin, proxied, what: str):
    assert twin == proxied, f"{what}: twin and proxy differ\n twin:  {twin!r}\n proxy: {proxied!r}"


def own(sums: dict, prefix: str) -> dict:
    """The tables of one test (``library_``, ``sa_``): the twin is not
    restored, so the other test's tables differ there after it ran."""
    return {t: v for t, v in sums.items() if t.startswith(prefix)}


def assert_live_state_equal(twin_conn, direct_conn, prefix: str, what: str):
    """Every table of the test (``prefix``) in the protected database,
    without its soft-deleted rows, equals the twin's, table by table."""
    twin = own(checksums(twin_conn), prefix)
    protected = own(checksums(direct_conn, live_only=True), prefix)
    assert twin, f"no tables named {prefix}*"
    diff = {t: (twin.get(t), protected.get(t)) for t in set(twin) | set(protected) if twin.get(t) != protected.get(t)}
    assert not diff, f"{what}: tables differ (twin, protected live rows): {diff}"
