"""Environment and helpers for the protected-scenario suite.

The Rust harness (or ``tests/clients/run-protected.sh``) prepares a scenario
database (``projects=3``, ``tombstone migrate --apply``) behind a tombstone
proxy and sets:

- ``TOMBSTONE_APP_DSN``    — through the proxy as the normal application role
- ``TOMBSTONE_ADMIN_DSN``  — through the proxy as a member of the bypass role
- ``TOMBSTONE_DIRECT_DSN`` — straight to PostgreSQL (superuser), to check what
  physically happened

Tests never depend on each other's deletions: most create their own rows
(``seed_project``), and the few that use the scenario's own data use distinct
projects (project 1 is deleted by the psycopg suite; project 2 is reserved for
the node suite; project 3 and its category stay live).
"""

import os
import uuid
from urllib.parse import urlsplit, parse_qsl, unquote

import psycopg


def _need(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(
            f"{name} is not set: this suite needs a protected scenario database behind "
            "tombstone (run tests/clients/run-protected.sh, or see tests/clients/README.md)"
        )
    return value


APP_DSN = _need("TOMBSTONE_APP_DSN")
ADMIN_DSN = _need("TOMBSTONE_ADMIN_DSN")
DIRECT_DSN = _need("TOMBSTONE_DIRECT_DSN")

CONNECT_TIMEOUT = 10

# Scenario facts (tests/scenario/data.sql with projects=3).
TASKS_PER_PROJECT = 500
COMMENTS_PER_TASK = 4
ATTACHMENTS_PER_PROJECT = 300
INVOICES_PER_PROJECT = 3


def scenario_task_ids(direct, project: int) -> list:
    """Task ids of a scenario project. Not a contiguous range: data.sql
    inserts tasks from a cross join, so ids interleave across projects
    (with projects=3, project p owns the ids congruent to p mod 3)."""
    return [
        r[0]
        for r in direct.execute(
            "SELECT id FROM tasks WHERE project_id = %s ORDER BY id", (project,)
        ).fetchall()
    ]


def uniq(prefix: str = "t") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def connect(dsn: str, **kwargs) -> psycopg.Connection:
    kwargs.setdefault("connect_timeout", CONNECT_TIMEOUT)
    kwargs.setdefault("autocommit", True)
    return psycopg.connect(dsn, **kwargs)


def url_parts(dsn: str) -> dict:
    """host/port/user/password/dbname of a postgresql:// URL (for Django)."""
    u = urlsplit(dsn)
    return {
        "HOST": u.hostname or "127.0.0.1",
        "PORT": str(u.port or 5432),
        "USER": unquote(u.username or ""),
        "PASSWORD": unquote(u.password or ""),
        "NAME": unquote(u.path.lstrip("/")),
        "QUERY": dict(parse_qsl(u.query)),
    }


def sqlalchemy_url(dsn: str) -> str:
    """The same URL for SQLAlchemy's psycopg (3) dialect."""
    scheme, rest = dsn.split("://", 1)
    return "postgresql+psycopg://" + rest


# ---------------------------------------------------------------------------
# Seeding: fresh rows of our own, inserted directly (superuser) so the thing
# under test is the delete, not the insert.


def seed_category(direct: psycopg.Connection) -> int:
    return direct.execute(
        "INSERT INTO categories (name) VALUES (%s) RETURNING id", (uniq("cat"),)
    ).fetchone()[0]


def seed_user(direct: psycopg.Connection) -> uuid.UUID:
    return direct.execute(
        "INSERT INTO users (email, name) VALUES (%s, 'seeded') RETURNING id",
        (uniq("u") + "@example.com",),
    ).fetchone()[0]


def seed_project(
    direct: psycopg.Connection,
    tasks: int = 6,
    comments: int = 3,
    attachments: int = 4,
    invoices: int = 2,
    category_id=None,
    owner_id=None,
    assignee_id=None,
) -> dict:
    """A project with ``tasks`` tasks, ``comments`` comments per task,
    attachments on the first ``attachments`` tasks, ``invoices`` invoices."""
    pid = direct.execute(
        "INSERT INTO projects (category_id, owner_id, name) VALUES (%s, %s, %s) RETURNING id",
        (category_id, owner_id, uniq("proj")),
    ).fetchone()[0]
    task_ids = [
        r[0]
        for r in direct.execute(
            "INSERT INTO tasks (project_id, assignee_id, title) "
            "SELECT %s, %s, 'seeded task ' || g FROM generate_series(1, %s) g RETURNING id",
            (pid, assignee_id, tasks),
        ).fetchall()
    ]
    task_ids.sort()
    comment_ids = [
        r[0]
        for r in direct.execute(
            "INSERT INTO comments (task_id, body) "
            "SELECT t, 'seeded comment ' || g FROM unnest(%s::bigint[]) t, generate_series(1, %s) g "
            "RETURNING id",
            (task_ids, comments),
        ).fetchall()
    ]
    attachment_ids = [
        r[0]
        for r in direct.execute(
            "INSERT INTO attachments (task_id, filename) "
            "SELECT t, 'seeded-' || t || '.pdf' FROM unnest(%s::bigint[]) t RETURNING id",
            (task_ids[:attachments],),
        ).fetchall()
    ]
    invoice_ids = [
        r[0]
        for r in direct.execute(
            "INSERT INTO billing.invoices (project_id, amount_cents) "
            "SELECT %s, 100 * g FROM generate_series(1, %s) g RETURNING id",
            (pid, invoices),
        ).fetchall()
    ]
    return {
        "project": pid,
        "tasks": task_ids,
        "comments": sorted(comment_ids),
        "attachments": attachment_ids,
        "invoices": sorted(invoice_ids),
    }


def grant_truncate_on_tasks(direct: psycopg.Connection, app: psycopg.Connection) -> None:
    """Give the application role the TRUNCATE privilege on tasks, so that a
    42501 for ``TRUNCATE tasks`` must come from tombstone, not from a missing
    grant (without tombstone, PostgreSQL then answers 0A000: tasks is
    referenced by foreign keys, so nothing is truncated either way)."""
    role = app.execute("SELECT current_user").fetchone()[0]
    direct.execute(f'GRANT TRUNCATE ON tasks TO "{role}"')


# ---------------------------------------------------------------------------
# Checks.


def live_count(conn: psycopg.Connection, table: str, column: str, ids) -> int:
    """Rows of ``table`` with ``column`` in ``ids`` that ``conn`` can see."""
    return conn.execute(
        f"SELECT count(*) FROM {table} WHERE {column} = ANY(%s)", (list(ids),)
    ).fetchone()[0]


def physical(direct: psycopg.Connection, table: str, column: str, ids) -> tuple:
    """(rows physically present, of which soft-deleted) — direct connection."""
    return direct.execute(
        f"SELECT count(*), count(deleted_at) FROM {table} WHERE {column} = ANY(%s)",
        (list(ids),),
    ).fetchone()


def assert_soft_deleted(direct, table: str, column: str, ids, expected: int):
    """All ``expected`` rows are physically there, every one with deleted_at."""
    total, deleted = physical(direct, table, column, ids)
    assert (total, deleted) == (expected, expected), (
        f"{table}: expected {expected} rows physically present and soft-deleted, "
        f"found {total} present of which {deleted} soft-deleted"
    )


def assert_live(direct, table: str, column: str, ids, expected: int):
    total, deleted = physical(direct, table, column, ids)
    assert (total, deleted) == (expected, 0), (
        f"{table}: expected {expected} live rows, found {total} present / {deleted} soft-deleted"
    )


def assert_project_gone(app, direct, seed: dict, admin=None):
    """After deleting a seeded project: invisible through the app role (every
    table of the cascade), still physically present with deleted_at set, and
    (given an admin connection) visible to the bypass role."""
    pid = seed["project"]
    assert live_count(app, "projects", "id", [pid]) == 0
    assert live_count(app, "tasks", "project_id", [pid]) == 0
    assert live_count(app, "tasks", "id", seed["tasks"]) == 0
    assert live_count(app, "comments", "task_id", seed["tasks"]) == 0
    assert live_count(app, "attachments", "task_id", seed["tasks"]) == 0
    assert live_count(app, "billing.invoices", "project_id", [pid]) == 0
    # joins through the app role see nothing either
    assert app.execute(
        "SELECT count(*) FROM comments c JOIN tasks t ON t.id = c.task_id "
        "JOIN projects p ON p.id = t.project_id WHERE p.id = %s",
        (pid,),
    ).fetchone()[0] == 0
    assert_soft_deleted(direct, "projects", "id", [pid], 1)
    assert_soft_deleted(direct, "tasks", "id", seed["tasks"], len(seed["tasks"]))
    assert_soft_deleted(direct, "comments", "id", seed["comments"], len(seed["comments"]))
    assert_soft_deleted(direct, "attachments", "id", seed["attachments"], len(seed["attachments"]))
    assert_soft_deleted(direct, "billing.invoices", "id", seed["invoices"], len(seed["invoices"]))
    if admin is not None:
        assert live_count(admin, "projects", "id", [pid]) == 1
        assert live_count(admin, "tasks", "id", seed["tasks"]) == len(seed["tasks"])
        assert live_count(admin, "comments", "id", seed["comments"]) == len(seed["comments"])
