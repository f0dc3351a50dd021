"""Shared fixtures: app and clients, accounts and login, socket clients, a real server, a browser.

Engine-dependent tests: a test whose fixtures include `database_engine` (every fixture that
makes a database for the app does: `database_url`, hence `app`, `client`, `live_server`...,
and the modules' shared servers) gets the `engine_dependent` mark, unless it or its module is
marked `engine_independent` (with a comment saying why) and the test is not itself marked
`engine_dependent`. `make test` runs the whole suite on SQLite and only the marked tests again
on PostgreSQL (TEST_DATABASE_URL); tests that use no database, or always PostgreSQL
(`postgres_url`), run once.

Tests marked `serial` (timing-sensitive) run one after another on one pytest-xdist worker.
Plain helpers live in helpers.py; test modules import them from there.
"""
from __future__ import annotations

import functools
import gc
import shutil
from pathlib import Path

import pytest
from helpers import (
    CHROMIUM,
    CI,
    POSTGRES_URL,
    REDIS_SERVER,
    TEST_DATABASE_URL,
    RedisServer,
    S3Server,
    copied_database,
    fresh_database,
    login,
    make_user,
    start_live_server,
    unavailable,
)
from werkzeug.routing import Rule
from werkzeug.security import generate_password_hash

from tracker import create_app, models, services
from tracker.extensions import db, socketio

# Werkzeug compiles two URL builders per rule from a generated AST: three quarters of create_app's
# time, and the suite makes an app for most of its tests, from the same rules. A builder is a plain
# function of the rule's parsed parts and defaults (it reads converters through the rule it is bound
# to at call time), so the suite compiles each one once per process.
_builders: dict = {}
_compile_builder = Rule._compile_builder


def _compile_builder_once(rule: Rule, append_unknown: bool = True):
    """Rule._compile_builder, once per distinct rule in this process."""
    key = (rule.rule, tuple(rule._trace), repr(sorted((rule.defaults or {}).items())), append_unknown)
    if key not in _builders:
        _builders[key] = _compile_builder(rule, append_unknown)
    return _builders[key]


Rule._compile_builder = _compile_builder_once

# Modules whose tests share a module-scoped server: under pytest-xdist they stay on one worker,
# so the server starts once.
SHARED_SERVER = {"test_e2e.py", "test_browser.py", "test_xss.py", "test_app.py", "test_scheduler.py"}


def pytest_collection_finish(session):
    """Keep what collecting imported (Flask, SQLAlchemy, Playwright, Hypothesis...: it lives as long as
    the process) out of the collector's passes, which walked it again and again: about a fifth of a
    test worker's CPU."""
    gc.collect()
    gc.freeze()


@pytest.fixture(autouse=True, scope="session")
def cheap_password_hashes():
    """Accounts made in this process hash with scrypt at a work factor of 128 (OpenSSL's memory limit
    refuses less), not werkzeug's 32,768: the same code, a hundredth of the CPU (it was 3 % of the
    suite's). check_password_hash reads the factor from each hash; test_services checks the app's own."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(models, "generate_password_hash", functools.partial(generate_password_hash,
                                                                          method="scrypt:128:8:1"))
        yield


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the xdist_group marks
def pytest_collection_modifyitems(config, items):
    for item in items:
        module = item.path.name
        if "database_engine" in getattr(item, "fixturenames", ()) and (
                item.get_closest_marker("engine_dependent") is not None
                or item.get_closest_marker("engine_independent") is None):
            item.add_marker(pytest.mark.engine_dependent)
        if item.get_closest_marker("serial"):
            item.add_marker(pytest.mark.xdist_group("serial"))
        elif module in SHARED_SERVER:
            item.add_marker(pytest.mark.xdist_group(module))


@pytest.fixture(scope="session")
def database_engine():
    """The engine under test: TEST_DATABASE_URL (PostgreSQL), or None for SQLite.

    Request it from any fixture that makes a database with `fresh_database(tmp)`."""
    return TEST_DATABASE_URL


@pytest.fixture(scope="session")
def schema_template(tmp_path_factory, database_engine):
    """An empty database with the models' tables (db.create_all()), made once per session."""
    with fresh_database(tmp_path_factory.mktemp("schema"), database_engine) as url:
        app = create_app({"TESTING": True, "SECRET_KEY": "test-secret", "DATABASE_URL": url})
        with app.app_context():
            db.create_all()
            db.engine.dispose()
        yield url


@pytest.fixture
def database_url(request, tmp_path, database_engine):
    """The URL of a fresh database for one test, its own.

    Empty; except that tests with the `app` fixture (which creates the models' tables) get a copy
    of `schema_template`, and tests with a `database_template` fixture (a module's) a copy of
    that: copies are cheaper than building each database again, on PostgreSQL most of all."""
    names = request.fixturenames
    template = (request.getfixturevalue("database_template") if "database_template" in names
                else request.getfixturevalue("schema_template") if "app" in names else None)
    if template is None:
        with fresh_database(tmp_path, database_engine) as url:
            yield url
    else:
        with copied_database(template, tmp_path) as url:
            yield url


@pytest.fixture
def postgres_url(tmp_path):
    """A fresh PostgreSQL database, for tests that are about PostgreSQL itself."""
    with fresh_database(tmp_path, POSTGRES_URL) as url:
        yield url


@pytest.fixture
def app(database_url, tmp_path):
    """A fresh app on its own database and media folder, with CSRF checks on as in production."""
    app = create_app({"TESTING": True, "SECRET_KEY": "test-secret", "DATABASE_URL": database_url,
                      "MEDIA_DIR": str(tmp_path / "media")})
    with app.app_context():
        db.create_all()
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def ctx(app):
    """An app context for calling services and queries directly."""
    with app.test_request_context():
        yield app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def editor(app):
    """An editor account's username."""
    make_user(app, "alice", "editor")
    return "alice"


@pytest.fixture
def admin(app):
    make_user(app, "root", "admin")
    return "root"


@pytest.fixture
def editor_client(client, editor):
    """A test client logged in as an editor."""
    assert login(client, editor).status_code == 302
    return client


@pytest.fixture
def admin_client(client, admin):
    assert login(client, admin).status_code == 302
    return client


@pytest.fixture
def story(app):
    """A live story's slug."""
    with app.test_request_context():
        return services.create_story("Flood warning on the river", "Rising water levels.").slug


@pytest.fixture
def socket_client(app, client):
    """A factory of Flask-SocketIO test clients sharing the test client's cookies."""
    made = []

    def connect():
        made.append(socketio.test_client(app, flask_test_client=client))
        return made[-1]

    yield connect
    for sio in made:
        if sio.is_connected():
            sio.disconnect()


@pytest.fixture
def live_server(database_url):
    """A running server process with an editor account 'alice'."""
    server = start_live_server(database_url)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium driven by Playwright; never a downloaded browser."""
    if not Path(CHROMIUM).exists() or shutil.which("chromium") is None:
        if CI:
            pytest.fail(f"{CHROMIUM} is missing in CI: .ci/run should have installed Debian's chromium")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        yield browser
        browser.close()


@pytest.fixture
def redis_server(tmp_path):
    """A running private Redis."""
    if REDIS_SERVER is None:
        unavailable("redis-server", "not installed (apt-get install redis-server)")
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def s3_server():
    """A running S3-compatible server with the bucket S3Server.bucket, shared by the session."""
    server = S3Server()
    server.start()
    yield server
    server.stop()
