"""Create the suite's schema on one empty database, as the applications
would: Django's ``migrate`` (the ``library`` app has no migration files, so
``--run-syncdb`` creates its tables, the automatic many-to-many table and
the deferred foreign keys) and SQLAlchemy's ``metadata.create_all``.

Usage: ``python3 schema.py <postgresql:// URL>`` (superuser)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import ormenv  # noqa: E402


def main(dsn: str) -> None:
    ormenv.configure_django({"default": ormenv.django_db(dsn)})
    from django.core.management import call_command

    call_command("migrate", run_syncdb=True, verbosity=0, interactive=False)

    from sqlalchemy import create_engine

    import sa_models

    engine = create_engine(ormenv.sqlalchemy_url(dsn))
    sa_models.Base.metadata.create_all(engine)
    engine.dispose()


if __name__ == "__main__":
    main(sys.argv[1])
