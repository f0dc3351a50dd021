"""Schema upgrades with Alembic (Flask-Migrate), safe to start from several processes at once."""
import logging
from contextlib import contextmanager

from flask_migrate import stamp, upgrade
from sqlalchemy import inspect, text

from .extensions import db

INITIAL_REVISION = "0001"
# Any fixed number: PostgreSQL advisory locks are keyed by an integer.
_MIGRATION_LOCK = 7_236_601


def _only_migrations(record: logging.LogRecord) -> bool:
    """Alembic names its database backend at INFO on every run, which reads as noise; "Running upgrade
    0004 -> 0005, ..." says that something was migrated, so that one is kept."""
    return record.msg.startswith("Running ")


logging.getLogger("alembic.runtime.migration").addFilter(_only_migrations)


@contextmanager
def _migration_lock():
    """On PostgreSQL, let one process migrate while the others wait; SQLite needs no lock here."""
    if db.engine.dialect.name != "postgresql":
        yield
        return
    with db.engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _MIGRATION_LOCK})
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _MIGRATION_LOCK})


def upgrade_database() -> None:
    """Apply every pending migration; adopt a database that db.create_all() made.

    Such a database has either every table of today's models (stamped as current) or, from
    before migrations existed, the first release's tables (stamped as the first migration).
    """
    with _migration_lock():
        inspector = inspect(db.engine)
        if inspector.has_table("stories") and not inspector.has_table("alembic_version"):
            complete = all(inspector.has_table(name) for name in db.metadata.tables)
            stamp(revision="head" if complete else INITIAL_REVISION)
        upgrade()
