"""Migrations: they build exactly the models' schema, adopt older databases, and run concurrently."""
import subprocess
import sys

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask_migrate import upgrade
from helpers import ROOT
from sqlalchemy import inspect, text
from sqlalchemy.exc import OperationalError

from tracker import create_app, schema
from tracker.extensions import db
from tracker.schema import HEAD, INITIAL_REVISION, MIGRATIONS, newest_revision, upgrade_database


def migrated_drift(url: str) -> list:
    """Apply the migrations to an empty database and list every difference from the models."""
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "x"})
    with app.app_context():
        upgrade_database()
        with db.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
            drift = compare_metadata(context, db.metadata)
        db.engine.dispose()
    return drift


def test_migrations_match_the_models(database_url):
    assert migrated_drift(database_url) == []


def test_migrations_match_the_models_on_postgresql(postgres_url):
    assert migrated_drift(postgres_url) == []


def test_the_newest_migration_is_read_from_the_files_as_alembic_reads_them(tmp_path):
    assert ScriptDirectory(str(MIGRATIONS)).get_current_head() == HEAD
    # `flask db migrate` names a file after a random revision id, not in order.
    for name, revision, parent in [("0001_a", "0001", None), ("0002_b", "0002", "0001"),
                                   ("ab12cd34ef56_c", "ab12cd34ef56", "0002")]:
        (tmp_path / f"{name}.py").write_text(f"revision = {revision!r}\ndown_revision = {parent!r}\n")
    assert newest_revision(tmp_path) == "ab12cd34ef56"
    # Newer Alembic templates annotate the two.
    (tmp_path / "ff00_d.py").write_text("revision: str = 'ff00'\ndown_revision: str | None = 'ab12cd34ef56'\n")
    assert newest_revision(tmp_path) == "ff00"
    (tmp_path / "ee00_e.py").write_text("revision = 'ee00'\ndown_revision = '0002'\n")
    assert newest_revision(tmp_path) is None  # two heads: Alembic decides


def test_a_process_finding_the_newest_migration_does_not_import_alembic(database_url):
    app = create_app({"DATABASE_URL": database_url, "SECRET_KEY": "x"})
    with app.app_context():
        upgrade_database()
        db.engine.dispose()
    starting = subprocess.run([sys.executable, "-c", (
        "import sys\nfrom tracker import create_app, schema\n"
        f"with create_app({{'DATABASE_URL': {database_url!r}, 'SECRET_KEY': 'x'}}).app_context():\n"
        "    schema.upgrade_database()\nprint(sorted(m for m in sys.modules if m.split('.')[0] == 'alembic'))")],
        cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert starting.returncode == 0, starting.stderr
    assert starting.stdout.strip().splitlines()[-1] == "[]"


def test_a_migration_cut_short_on_sqlite_leaves_nothing_behind(tmp_path):
    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'cut.sqlite'}", "SECRET_KEY": "x"})
    with app.app_context():
        # An index with the name of the first migration's last one: it fails there, its tables made.
        db.session.execute(text("CREATE TABLE blocker (x INTEGER)"))
        db.session.execute(text("CREATE INDEX ix_entry_versions_entry_id ON blocker (x)"))
        db.session.commit()
        with pytest.raises(OperationalError, match="ix_entry_versions_entry_id"):
            upgrade_database()
        assert inspect(db.engine).get_table_names() == ["blocker"]
        db.session.execute(text("DROP TABLE blocker"))
        db.session.commit()
        upgrade_database()  # the next start migrates from the beginning
        assert migrated_drift(db.engine.url.render_as_string(False)) == []
        db.engine.dispose()


def test_a_database_made_before_migrations_is_adopted(database_url):
    app = create_app({"DATABASE_URL": database_url, "SECRET_KEY": "x"})
    schema.init_app(app)
    with app.app_context():
        # The first release's tables, as db.create_all() made them before there were migrations.
        upgrade(revision=INITIAL_REVISION)
        db.session.execute(text("DROP TABLE alembic_version"))
        db.session.commit()
        upgrade_database()
        assert inspect(db.engine).has_table("api_tokens")
        head = db.session.execute(text("SELECT version_num FROM alembic_version")).scalar()
        assert head != INITIAL_REVISION and migrated_drift(db.engine.url.render_as_string(False)) == []
        db.engine.dispose()


def test_a_database_made_by_create_all_today_is_taken_as_current(database_url):
    app = create_app({"DATABASE_URL": database_url, "SECRET_KEY": "x"})
    with app.app_context():
        db.create_all()
        upgrade_database()
        assert migrated_drift(db.engine.url.render_as_string(False)) == []
        db.engine.dispose()


def test_processes_starting_together_migrate_once_on_postgresql(postgres_url):
    env = {"DATABASE_URL": postgres_url, "SECRET_KEY": "x", "PATH": "/usr/bin:/bin"}
    starts = [subprocess.Popen([sys.executable, "-m", "flask", "--app", "app", "init-db"], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(4)]
    outputs = [(process.wait(timeout=120), process.stdout.read()) for process in starts]
    for process in starts:
        process.stdout.close()
    assert [code for code, _ in outputs] == [0, 0, 0, 0], outputs
    app = create_app({"DATABASE_URL": postgres_url, "SECRET_KEY": "x"})
    with app.app_context():
        assert set(inspect(db.engine).get_table_names()) >= {"stories", "entries", "entry_versions", "users"}
        db.engine.dispose()
