"""ORM-vs-twin suite (see ormenv.py for the environment it needs)."""

import pytest

import ormenv


@pytest.fixture
def twin_conn():
    """psycopg straight to the hard-delete twin."""
    with ormenv.connect(ormenv._need("ORM_TWIN_DSN")) as c:
        yield c


@pytest.fixture
def direct():
    """psycopg straight to the protected database, as superuser."""
    with ormenv.connect(ormenv._need("ORM_DIRECT_DSN")) as c:
        yield c
