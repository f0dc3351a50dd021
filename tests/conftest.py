"""Shared fixtures: app and clients, accounts and login, socket clients, a real server, a browser."""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
import websocket
from sqlalchemy import create_engine, make_url, text

from tracker import create_app, services
from tracker.extensions import db, socketio

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery"
CI = os.environ.get("CI") == "true"
# Set to a PostgreSQL URL to run the whole suite on PostgreSQL (each test gets its own database).
TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")
POSTGRES_URL = TEST_DATABASE_URL or os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")
REDIS_SERVER = shutil.which("redis-server")


def unavailable(what: str, reason: str):
    """Skip a test that needs a service, except in CI, where the service must be there."""
    if CI:
        pytest.fail(f"{what} is required in CI: {reason}")
    pytest.skip(f"{what} not available: {reason}")


@contextmanager
def fresh_database(tmp: Path, url: str | None = TEST_DATABASE_URL):
    """A new empty database: a SQLite file in tmp, or a new database on the PostgreSQL server of url."""
    if not url:
        yield f"sqlite:///{tmp / 'tracker.db'}"
        return
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    name = f"tracker_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # any failure to connect or create means: no usable server
        admin.dispose()
        unavailable("PostgreSQL", f"{make_url(url).render_as_string()}: {exc.__class__.__name__}")
    try:
        yield make_url(url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def database_url(tmp_path):
    """The URL of a fresh, empty database for one test."""
    with fresh_database(tmp_path) as url:
        yield url


@pytest.fixture
def postgres_url(tmp_path):
    """A fresh PostgreSQL database, for tests that are about PostgreSQL itself."""
    with fresh_database(tmp_path, POSTGRES_URL) as url:
        yield url


@pytest.fixture
def app(database_url):
    """A fresh app on its own database, with CSRF checks on as in production."""
    app = create_app({"TESTING": True, "SECRET_KEY": "test-secret", "DATABASE_URL": database_url})
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


def make_user(app, username="alice", role="editor"):
    with app.app_context():
        return services.create_user(username, PASSWORD, role).id


@pytest.fixture
def editor(app):
    """An editor account's username."""
    make_user(app, "alice", "editor")
    return "alice"


@pytest.fixture
def admin(app):
    make_user(app, "root", "admin")
    return "root"


def csrf_from(html: str) -> str:
    """The CSRF token of the first form in a page."""
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"', html)
    assert match, "page has no csrf_token field"
    return match.group(1) or match.group(2)


def login(client, username, password=PASSWORD, **request_options):
    page = client.get("/login", **request_options).get_data(as_text=True)
    return client.post("/login", data={"username": username, "password": password, "csrf_token": csrf_from(page)},
                       **request_options)


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


# A real server process

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Process:
    """A program the tests start, wait for until it says it is ready, and stop."""

    process: subprocess.Popen | None = None

    def spawn(self, command: list[str], ready: str, **options) -> None:
        self.log: list[str] = []
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                        **options)
        for line in self.process.stdout:  # it prints `ready` once it accepts connections
            self.log.append(line)
            if ready in line:
                threading.Thread(target=self._drain, daemon=True).start()
                return
        raise RuntimeError(f"{command[0]} exited with {self.process.wait()}: {''.join(self.log)}")

    def _drain(self) -> None:
        """Keep reading the output so a full pipe never blocks the program."""
        for line in self.process.stdout:
            self.log.append(line)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


class LiveServer(Process):
    """`python app.py` on a free port with the given database, plus CLI access to that database."""

    def __init__(self, database_url: str, **env: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "DATABASE_URL": database_url, "SECRET_KEY": "live-secret",
                    "PORT": str(self.port), "HOST": "127.0.0.1", "PYTHONUNBUFFERED": "1", **env}
        self.log: list[str] = []
        self.flask("init-db")

    def flask(self, *args, input_text: str | None = None) -> str:
        result = subprocess.run([sys.executable, "-m", "flask", "--app", "app", *args], cwd=ROOT, env=self.env,
                                input=input_text, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        return result.stdout

    def start(self) -> None:
        self.spawn([sys.executable, "app.py"], "Tracker serving on", cwd=ROOT, env=self.env)


@pytest.fixture
def live_server(database_url):
    """A running server process with an editor account 'alice'."""
    server = LiveServer(database_url)
    server.flask("user", "create", "alice", "--password-stdin", input_text=PASSWORD + "\n")
    server.start()
    yield server
    server.stop()


def http_login(base: str, username: str = "alice") -> requests.Session:
    """A requests session logged in through a running server's /login form."""
    http = requests.Session()
    page = http.get(f"{base}/login", timeout=10).text
    response = http.post(f"{base}/login", allow_redirects=False, timeout=10, data={
        "username": username, "password": PASSWORD, "csrf_token": csrf_from(page)})
    assert response.status_code == 302, response.text
    return http


class WireReader:
    """A Socket.IO reader on a raw websocket: it sees events in the order the server wrote them.

    Order checks use it because python-socketio's client runs the handler of each incoming
    message in a thread of its own, so two events that arrive together can reach handlers swapped.
    """

    def __init__(self, port: int, slug: str, receive_buffer: int | None = None):
        options = {"sockopt": [(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)]} if receive_buffer else {}
        self.ws = websocket.create_connection(f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket",
                                              timeout=10, **options)
        assert self.ws.recv().startswith("0")
        self.ws.send("40")
        assert self.ws.recv().startswith("40")
        self.ws.send("420" + json.dumps(["join", {"story": slug, "since": 0}]))
        assert json.loads(self.ws.recv()[3:])[0]["ok"]

    def entries(self, count: int) -> list[dict]:
        """Read until `count` entry events arrived, answering pings as a client must."""
        found = []
        while len(found) < count:
            message = self.ws.recv()
            if message == "2":
                self.ws.send("3")
            elif message.startswith('42["entry"'):
                found.append(json.loads(message[2:])[1])
        return found

    def close(self) -> None:
        self.ws.close()


# A real browser

CHROMIUM = "/usr/bin/chromium"


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


def browser_login(page, server, username: str = "alice") -> None:
    """Log a Playwright page in through the server's /login form."""
    page.goto(f"{server.url}/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("main form button[type=submit]")
    page.wait_for_url(f"{server.url}/editor/")


class RedisServer(Process):
    """A private redis-server on a free port, which a test may stop and start again."""

    def __init__(self, tmp: Path):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.tmp = tmp

    def start(self) -> None:
        self.spawn([REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                    "--appendonly", "no", "--dir", str(self.tmp)], "Ready to accept connections")


@pytest.fixture
def redis_server(tmp_path):
    """A running private Redis."""
    if REDIS_SERVER is None:
        unavailable("redis-server", "not installed (apt-get install redis-server)")
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()
