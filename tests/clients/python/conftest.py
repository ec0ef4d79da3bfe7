"""Shared fixtures for the Python client-driver suite.

Every test connects to the DSN in ``TOMBSTONE_TEST_DSN`` (default: the local
PostgreSQL directly).  The Rust harness points it at a running tombstone proxy
and a throwaway database.  Tests create their own tables with random names and
drop them afterwards, so concurrent or repeated runs never collide.
"""

import os
import uuid

import psycopg
import pytest

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
DSN = os.environ.get("TOMBSTONE_TEST_DSN") or DEFAULT_DSN

# Upper bound for connecting; a proxy that never answers fails the test
# instead of hanging the run.
CONNECT_TIMEOUT = 10


def uniq(prefix: str = "t") -> str:
    """A fresh lower-case identifier that needs no quoting."""
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def pg_connect(**kwargs) -> psycopg.Connection:
    kwargs.setdefault("connect_timeout", CONNECT_TIMEOUT)
    return psycopg.connect(DSN, **kwargs)


@pytest.fixture
def dsn() -> str:
    return DSN


@pytest.fixture
def table():
    """A unique table name; the table (if created) is dropped afterwards."""
    name = uniq("ts_tbl")
    yield name
    with pg_connect(autocommit=True) as c:
        c.execute(f"DROP TABLE IF EXISTS {name}")


@pytest.fixture
def conn():
    """A psycopg connection in its default (transactional) mode."""
    c = pg_connect()
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
def aconn():
    """A psycopg connection in autocommit mode."""
    c = pg_connect(autocommit=True)
    try:
        yield c
    finally:
        c.close()
