"""Schema upgrades with Alembic (Flask-Migrate), safe to start from several processes at once.

Importing Alembic takes a sixth of a server's startup, which a restart's readers wait out: a
process whose database is at the newest migration reads only alembic_version, and imports
Flask-Migrate only to migrate (and for `flask db`: app.py).
"""
import logging
import re
from contextlib import contextmanager
from pathlib import Path

from flask import Flask, current_app
from sqlalchemy import inspect, text

from .extensions import db

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
INITIAL_REVISION = "0001"


def newest_revision(versions: Path) -> str | None:
    """The newest migration's revision, read from the files as Alembic would (test_schema checks);
    None when the files do not name a single head, and then Alembic decides."""
    revisions, parents = set(), set()
    for path in versions.glob("*.py"):
        source = path.read_text(encoding="utf-8")
        # `revision = '0012'`, or with a type annotation as newer Alembic templates write it
        revision = re.search(r"^revision\s*(?::[^=]*)?=\s*['\"]([^'\"]+)['\"]", source, re.MULTILINE)
        parent = re.search(r"^down_revision\s*(?::[^=]*)?=\s*(.*)$", source, re.MULTILINE)
        if not revision or not parent:
            return None
        revisions.add(revision[1])
        parents.update(re.findall(r"['\"]([^'\"]+)['\"]", parent[1]))
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


HEAD = newest_revision(MIGRATIONS / "versions")
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


def init_app(app: Flask) -> None:
    """Flask-Migrate's settings, which `flask db` and upgrade_database use."""
    from flask_migrate import Migrate

    Migrate(app, db, directory=str(MIGRATIONS))


def _at_head() -> bool:
    """Whether the database is at the newest migration already."""
    if HEAD is None or not inspect(db.engine).has_table("alembic_version"):
        return False
    with db.engine.connect() as conn:
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [HEAD]


def upgrade_database() -> None:
    """Apply every pending migration; adopt a database that db.create_all() made.

    Such a database has either every table of today's models (stamped as current) or, from
    before migrations existed, the first release's tables (stamped as the first migration).
    """
    with _migration_lock():
        if _at_head():
            return
        from flask_migrate import stamp, upgrade

        if "migrate" not in current_app.extensions:
            init_app(current_app)
        inspector = inspect(db.engine)
        if inspector.has_table("stories") and not inspector.has_table("alembic_version"):
            complete = all(inspector.has_table(name) for name in db.metadata.tables)
            stamp(revision="head" if complete else INITIAL_REVISION)
        upgrade()
