"""Helpers the test modules share: constants, databases, accounts and login, real server processes,
HTTP editors and socket readers. Test modules import from here (and never from each other or from
conftest); conftest.py turns some of these into fixtures."""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import uuid
from contextlib import contextmanager
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
import socketio
import websocket
from sqlalchemy import create_engine, make_url, text

from tracker import create_app, services
from tracker.extensions import db

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery"
CI = os.environ.get("CI") == "true"
# Set to a PostgreSQL URL to run the suite on PostgreSQL (each test gets its own database).
TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")
POSTGRES_URL = TEST_DATABASE_URL or os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")
REDIS_SERVER = shutil.which("redis-server")
# `make test-long` sets TEST_LONG=1: the long versions of the slow tests (a 30 s network drop...).
TEST_LONG = os.environ.get("TEST_LONG") == "1"


def unavailable(what: str, reason: str):
    """Skip a test that needs a service, except in CI, where the service must be there."""
    if CI:
        pytest.fail(f"{what} is required in CI: {reason}")
    pytest.skip(f"{what} not available: {reason}")


@contextmanager
def fresh_database(tmp: Path, url: str | None):
    """A new empty database: a SQLite file in tmp (url None), or a new database on the PostgreSQL
    server of url. Fixtures pass the `database_engine` fixture's value as url (so that their tests
    are marked engine-dependent, see conftest.py), or POSTGRES_URL."""
    if not url:
        yield f"sqlite:///{tmp / 'tracker.db'}"
        return
    try:
        database = _postgres_database(make_url(url), "")
        made = next(database)
    except Exception as exc:  # any failure to connect or create means: no usable server
        unavailable("PostgreSQL", f"{make_url(url).render_as_string()}: {exc.__class__.__name__}")
    try:
        yield made
    finally:
        database.close()


@contextmanager
def copied_database(template_url: str, tmp: Path):
    """A new database holding a copy of the database at template_url (made by fresh_database and
    no longer in use): a file copy on SQLite, CREATE DATABASE ... TEMPLATE on PostgreSQL."""
    template = make_url(template_url)
    if template.get_backend_name() == "sqlite":
        shutil.copyfile(template.database, tmp / "tracker.db")
        yield f"sqlite:///{tmp / 'tracker.db'}"
        return
    yield from _postgres_database(template, f' TEMPLATE "{template.database}"')


def _postgres_database(server, options: str):
    """Create a new database on the PostgreSQL server of the URL `server` (CREATE DATABASE ...
    `options`), yield its URL, and drop it when closed."""
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    name = f"tracker_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"{options}'))
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def make_user(app, username="alice", role="editor"):
    with app.app_context():
        return services.create_user(username, PASSWORD, role).id


def csrf_from(html: str) -> str:
    """The CSRF token of the first form in a page."""
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"', html)
    assert match, "page has no csrf_token field"
    return match.group(1) or match.group(2)


def login(client, username, password=PASSWORD, **request_options):
    page = client.get("/login", **request_options).get_data(as_text=True)
    return client.post("/login", data={"username": username, "password": password, "csrf_token": csrf_from(page)},
                       **request_options)


# Flask test client helpers for the editor's forms

JSON = {"Accept": "application/json"}


def form_page(client, path):
    """GET a form page; return its CSRF token and idempotency key (if any)."""
    html = client.get(path).get_data(as_text=True)
    idem = re.search(r'id="idempotency_key" name="idempotency_key" type="hidden" value="([^"]*)"', html)
    return csrf_from(html), idem.group(1) if idem else None


def post_entry(client, slug, body="Water is rising.", headline="", headers=None, **extra):
    token, idem = form_page(client, f"/editor/stories/{slug}")
    data = {"csrf_token": token, "body": body, "headline": headline, "idempotency_key": idem, **extra}
    return client.post(f"/editor/stories/{slug}", data=data, headers=headers or {})


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
        self.logged = threading.Condition()  # notified whenever the output has a new line
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
            with self.logged:
                self.log.append(line)
                self.logged.notify_all()

    def wait_for_line(self, predicate, timeout: float = 10) -> str:
        """The first line of the output that satisfies `predicate`, once the program has printed it."""
        with self.logged:
            assert self.logged.wait_for(lambda: any(map(predicate, self.log)), timeout=timeout), "".join(self.log)
            return next(line for line in self.log if predicate(line))

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


class LiveServer(Process):
    """`python app.py` on a free port with the given database, plus CLI access to that database.

    `flask(...)` runs Tracker's CLI commands (`flask --app app ...`) on the server's database in
    this process, through Flask's CLI runner: the same commands, without a Python start each."""

    def __init__(self, database_url: str, **env: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.database_url = database_url
        self.env = {**os.environ, "DATABASE_URL": database_url, "SECRET_KEY": "live-secret",
                    "PORT": str(self.port), "HOST": "127.0.0.1", "PYTHONUNBUFFERED": "1",
                    "MEDIA_DIR": tempfile.mkdtemp(prefix="tracker-media-"), **env}
        self.extra_env = env
        self.log: list[str] = []
        self._cli_app = None
        self.flask("init-db")

    def flask(self, *args, input_text: str | None = None) -> str:
        if self._cli_app is None:
            self._cli_app = create_app({"DATABASE_URL": self.database_url, "SECRET_KEY": "live-secret"})
        try:
            result = self._cli_app.test_cli_runner().invoke(args=list(args), input=input_text, env=self.extra_env)
        finally:
            with self._cli_app.app_context():
                db.engine.dispose()  # no connection of ours stays open to the server's database
        assert result.exit_code == 0, f"flask {' '.join(args)}: {result.output}{result.exception!r}"
        return result.output

    def start(self) -> None:
        self.spawn([sys.executable, "app.py"], "Tracker serving on", cwd=ROOT, env=self.env)

    def metrics(self, *names: str) -> dict[str, float]:
        """The values of unlabelled samples of one GET /metrics of the server (Prometheus text), by name."""
        body = requests.get(f"{self.url}/metrics", timeout=10).text
        found = {}
        for name in names:
            match = re.search(rf"^{re.escape(name)} (\S+)$", body, re.MULTILINE)
            assert match, f"no sample {name} in /metrics:\n{body}"
            found[name] = float(match.group(1))
        return found

    def metric(self, name: str) -> float:
        """The value of an unlabelled sample of the server's GET /metrics (Prometheus text)."""
        return self.metrics(name)[name]


def start_live_server(database_url: str, **env: str) -> LiveServer:
    """A running server with the editor account 'alice'."""
    server = LiveServer(database_url, **env)
    server.flask("user", "create", "alice", "--password-stdin", input_text=PASSWORD + "\n")
    server.start()
    return server


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


# An editor and a reader against a real server

TIMEOUT = 10


class Editor:
    """An editor driving the real HTML forms over HTTP."""

    def __init__(self, base: str):
        self.base, self.http = base, http_login(base)

    def token(self, path: str) -> str:
        return csrf_from(self.http.get(self.base + path).text)

    def create_story(self, title: str) -> str:
        response = self.http.post(f"{self.base}/editor/stories/new", data={
            "csrf_token": self.token("/editor/stories/new"), "title": title, "status": "live"}, allow_redirects=False)
        assert response.status_code == 302
        return response.headers["Location"].rsplit("/", 1)[1]

    def post(self, slug: str, body: str, headline: str = "") -> None:
        response = self.http.post(f"{self.base}/editor/stories/{slug}", data={
            "csrf_token": self.token(f"/editor/stories/{slug}"), "body": body, "headline": headline,
            "idempotency_key": uuid.uuid4().hex}, allow_redirects=False)
        assert response.status_code == 302, response.text

    def edit(self, entry_id: int, body: str) -> None:
        path = f"/editor/entries/{entry_id}/edit"
        response = self.http.post(self.base + path, data={"csrf_token": self.token(path), "body": body},
                                  allow_redirects=False)
        assert response.status_code == 302, response.text

    def delete(self, slug: str, entry_id: int) -> None:
        response = self.http.post(f"{self.base}/editor/entries/{entry_id}/delete", allow_redirects=False,
                                  data={"csrf_token": self.token(f"/editor/stories/{slug}")})
        assert response.status_code == 302


class Reader:
    """A Socket.IO client that keeps the newest state of each entry, as the reader page does."""

    def __init__(self, base: str, slug: str):
        self.base, self.slug, self.rev = base, slug, 0
        self.entries: dict[int, dict] = {}
        self.events: list[dict] = []
        self.readers: int | None = None  # the story's latest `readers` count
        self.changed = threading.Condition()
        self.sio = socketio.Client(reconnection=False)
        self.sio.on("entry", self.apply)
        self.sio.on("readers", self.count)

    def connect(self) -> dict:
        self.sio.connect(self.base, transports=["websocket"], wait_timeout=TIMEOUT)
        ack = self.sio.call("join", {"story": self.slug, "since": self.rev}, timeout=TIMEOUT)
        assert ack["ok"], ack
        for entry in ack["entries"]:
            self.apply(entry, live=False)
        self.rev = max(self.rev, ack["rev"])
        return ack

    def apply(self, entry: dict, live: bool = True) -> None:
        with self.changed:
            if live:
                self.events.append(entry)
            held = self.entries.get(entry["id"])
            if held is None or held["rev"] < entry["rev"]:
                self.entries[entry["id"]] = entry
            self.rev = max(self.rev, entry["rev"])
            self.changed.notify_all()

    def count(self, data: dict) -> None:
        with self.changed:
            if data["story"] == self.slug:
                self.readers = data["readers"]
                self.changed.notify_all()

    def wait_for(self, predicate) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: predicate(self), timeout=TIMEOUT), self.entries

    def visible(self) -> dict[int, dict]:
        return {i: e for i, e in self.entries.items() if not e["deleted"]}


def server_entries(base: str, slug: str) -> dict[int, dict]:
    """Every visible entry as the server has it, through the JSON pages."""
    found, cursor = {}, ""
    while True:
        page = requests.get(f"{base}/stories/{slug}/entries", params={"before": cursor} if cursor else {}).json()
        found.update({e["id"]: e for e in page["entries"]})
        if not page["next"]:
            return found
        cursor = page["next"]


# A real browser

CHROMIUM = "/usr/bin/chromium"
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"  # from package.json's devDependencies (make js)


def axe_violations(page) -> list[str]:
    """What axe-core finds against WCAG 2.2 A and AA on the page as it is now: one line per rule and element."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text())  # through DevTools, which the page's CSP does not govern
    found = page.evaluate("""axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a',
        'wcag21aa', 'wcag22aa']}})
        .then(r => r.violations.flatMap(v => v.nodes.map(n => v.id + ': ' + n.target.join(' '))))""")
    return found


def browser_login(page, server, username: str = "alice") -> None:
    """Log a Playwright page in through the server's /login form."""
    page.goto(f"{server.url}/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("main form button[type=submit]")
    page.wait_for_url(f"{server.url}/editor/")


class LocalHTTPServer:
    """A threaded HTTP server on 127.0.0.1 answering with `handler`, in the background until close()."""

    def __init__(self, handler):
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class RedisServer(Process):
    """A private redis-server on a free port, which a test may stop and start again."""

    def __init__(self, tmp: Path):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.tmp = tmp

    def start(self) -> None:
        self.spawn([REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                    "--appendonly", "no", "--dir", str(self.tmp)], "Ready to accept connections")


class S3Server(Process):
    """An S3-compatible server (moto's, a package of the test requirements) on a free port, with one bucket."""

    bucket = "tracker-media"

    def __init__(self):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.spawn([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)], "Running on")
        self.client().create_bucket(Bucket=self.bucket)

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.url, region_name="us-east-1", aws_access_key_id="test",
                            aws_secret_access_key="test")
