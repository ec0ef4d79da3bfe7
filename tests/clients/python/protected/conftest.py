"""Fixtures for the protected-scenario suite (see tsenv.py for the
environment it needs: TOMBSTONE_APP_DSN, TOMBSTONE_ADMIN_DSN,
TOMBSTONE_DIRECT_DSN)."""

import pytest

import tsenv


@pytest.fixture
def app():
    """psycopg, autocommit, through the proxy as the application role."""
    with tsenv.connect(tsenv.APP_DSN) as c:
        yield c


@pytest.fixture
def admin():
    """psycopg, autocommit, through the proxy as a bypass-role member."""
    with tsenv.connect(tsenv.ADMIN_DSN) as c:
        yield c


@pytest.fixture
def direct():
    """psycopg, autocommit, straight to PostgreSQL as superuser."""
    with tsenv.connect(tsenv.DIRECT_DSN) as c:
        yield c


@pytest.fixture
def seed(direct):
    """A fresh project of our own with tasks, comments, attachments, invoices."""
    return tsenv.seed_project(direct)
