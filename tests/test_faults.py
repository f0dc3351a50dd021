"""Faults injected into real processes: a server killed with SIGKILL mid-stream, a reader cut
off the network for 15 s (30 s with TEST_LONG=1), a locked or unreachable database, two editors
racing, and the reader page's reconnect backoff.

Every test runs the real server (`python app.py`, eventlet) and real clients: Chromium running
the product's live.js, python-socketio clients over websocket that follow the documented
catch-up protocol, and HTTP editors using the forms and the JSON API. Waiting is done on
conditions (socket events, Playwright's expect / wait_for_function); the only deliberate
sleeps are the editor's pace between posts and the time that the network drop must last.
"""
from __future__ import annotations

import os
import random
import re
import signal
import socket
import sqlite3
import struct
import threading
import time
import uuid
from contextlib import contextmanager
from html import unescape

import pytest
import requests
import socketio
from helpers import PASSWORD, TEST_DATABASE_URL, TEST_LONG, Editor, LiveServer, WireReader, browser_login, csrf_from
from playwright.sync_api import Page, expect
from sqlalchemy import create_engine, make_url, text

from tracker.events import HANDLER_FAILED

# Timed reconnects and kills: never beside another of the timing-sensitive tests.
pytestmark = pytest.mark.serial

WAIT = 10             # s: ordinary deliveries arrive well within this
RECONNECT = 30_000    # ms: the page's backoff after a restart (1, 2, 4, 8 s ± 50 %, at most 15 s)
# How long the reader's network stays down: 30 s in `make test-long`; 15 s still spans four
# reconnect attempts (1, 2, 4, 8 s apart, ± 50 %), the three that check_backoff needs at least.
DROP_SECONDS = 30 if TEST_LONG else 15


# A TCP relay the test can cut

def _reset(sock: socket.socket) -> None:
    """Abort a connection: wake any thread blocked on it, then close with RST (no FIN handshake)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.shutdown(socket.SHUT_RD)
    except OSError:
        pass
    sock.close()


class TcpProxy:
    """Relays 127.0.0.1:<port> to a target. `cut()` resets every relayed connection and then
    refuses new ones (accepts and resets them at once, noting when) until `restore()`.
    `swallow_responses()` makes it drop whatever the target sends back, until the next cut."""

    def __init__(self, target_port: int, target_host: str = "127.0.0.1"):
        self.target = (target_host, target_port)
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(256)
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.lock = threading.Lock()
        self.relayed: set[socket.socket] = set()
        self.down = self.swallowing = False
        self.swallowed = threading.Condition(self.lock)
        self.swallowed_bytes = 0
        self.refused: list[float] = []  # time.time() of each connection refused while cut
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            with self.lock:
                if self.down:
                    self.refused.append(time.time())
                    _reset(client)
                    continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                _reset(client)
                continue
            with self.lock:
                if self.down:  # cut while connecting
                    _reset(client)
                    _reset(upstream)
                    continue
                self.relayed.update((client, upstream))
            for src, dst, back in ((client, upstream, False), (upstream, client, True)):
                threading.Thread(target=self._pump, args=(src, dst, back), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, back: bool) -> None:
        try:
            while data := src.recv(65536):
                if back:
                    with self.lock:
                        if self.swallowing:  # the target answered; the client never hears it
                            self.swallowed_bytes += len(data)
                            self.swallowed.notify_all()
                            continue
                dst.sendall(data)
        except OSError:
            pass
        with self.lock:
            ours = src in self.relayed
            self.relayed.difference_update((src, dst))
        if ours:  # one side ended: end the other (a cut closes both itself)
            for sock in (src, dst):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()

    def swallow_responses(self) -> None:
        with self.lock:
            self.swallowing, self.swallowed_bytes = True, 0

    def wait_for_swallowed(self, timeout: float = WAIT) -> None:
        with self.lock:
            assert self.swallowed.wait_for(lambda: self.swallowed_bytes > 0, timeout=timeout)

    def cut(self) -> None:
        with self.lock:
            self.down, self.swallowing = True, False
            victims, self.relayed = list(self.relayed), set()
        for sock in victims:
            _reset(sock)

    def restore(self) -> None:
        with self.lock:
            self.down = False

    def close(self) -> None:
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        except OSError:
            pass
        self.listener.close()
        self.cut()


@pytest.fixture
def make_proxy():
    made: list[TcpProxy] = []

    def make(target_port: int, target_host: str = "127.0.0.1") -> TcpProxy:
        made.append(TcpProxy(target_port, target_host))
        return made[-1]

    yield make
    for proxy in made:
        proxy.close()


# Editors: the JSON API and the HTML forms

class Api:
    """The JSON API with a bearer token made by `flask token create`."""

    def __init__(self, server: LiveServer, name: str = "faults", base: str | None = None):
        self.base = base or server.url
        token = server.flask("token", "create", f"{name}-{uuid.uuid4().hex[:6]}").strip().splitlines()[-1]
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {token}"

    def create_story(self, title: str) -> str:
        response = self.http.post(f"{self.base}/api/stories", json={"title": title}, timeout=WAIT)
        assert response.status_code == 201, response.text
        return response.json()["story"]["slug"]

    def post(self, slug: str, body: str, headline: str = "", key: str | None = None,
             timeout: float = WAIT) -> requests.Response:
        return self.http.post(f"{self.base}/api/stories/{slug}/entries", json={"body": body, "headline": headline},
                              headers={"Idempotency-Key": key or uuid.uuid4().hex}, timeout=timeout)

    def publish(self, slug: str, body: str, headline: str = "") -> dict:
        response = self.post(slug, body, headline)
        assert response.status_code == 201, response.text
        return response.json()["entry"]

    def edit(self, entry_id: int, body: str, headline: str) -> dict:
        response = self.http.patch(f"{self.base}/api/entries/{entry_id}", json={"body": body, "headline": headline},
                                   timeout=WAIT)
        assert response.status_code == 200, response.text
        return response.json()["entry"]

    def delete(self, entry_id: int) -> dict:
        response = self.http.delete(f"{self.base}/api/entries/{entry_id}", timeout=WAIT)
        assert response.status_code == 200, response.text
        return response.json()["entry"]


class FormEditor(Editor):
    """An editor logged in through /login, posting the editor's append form over HTTP."""

    def compose_form(self, slug: str) -> dict:
        """The append form's hidden fields as the editor page renders them."""
        return hidden_fields(self.http.get(f"{self.base}/editor/stories/{slug}", timeout=WAIT).text)

    def submit(self, slug: str, fields: dict, json: bool = False) -> requests.Response:
        headers = {"Accept": "application/json"} if json else {}
        return self.http.post(f"{self.base}/editor/stories/{slug}", data=fields, headers=headers,
                              allow_redirects=False, timeout=WAIT)


def hidden_fields(html: str) -> dict:
    """csrf_token and idempotency_key of the append form in an editor page."""
    key = re.search(r'<input[^>]*\bname="idempotency_key"[^>]*>', html)
    assert key, "no append form on the page"
    value = re.search(r'\bvalue="([0-9a-f]+)"', key.group(0))
    assert value, key.group(0)
    return {"csrf_token": csrf_from(html), "idempotency_key": value.group(1)}


# Readers

class SocketReader:
    """A python-socketio client over websocket that follows README's catch-up protocol.

    It keeps the newest state per entry id (a state applies only if its rev is higher), tracks
    `rev` as the highest revision with no gap below it, joins with `since=rev` on every
    (re)connect, and joins again if a gap is still open two seconds later.
    """

    def __init__(self, base: str, slug: str):
        self.base, self.slug = base, slug
        self.rev = 0
        self.early: set[int] = set()
        self.entries: dict[int, dict] = {}
        self.connects = self.joins = self.disconnects = 0
        self.errors: list = []
        self.changed = threading.Condition()
        self._gap_timer: threading.Timer | None = None
        self.sio = socketio.Client(reconnection=True, reconnection_delay=0.5, reconnection_delay_max=2)
        self.sio.on("connect", self._on_connect)
        self.sio.on("disconnect", self._on_disconnect)
        self.sio.on("entry", self._on_entry)
        self.sio.on("rev", lambda beacon: self._check_gap(beacon["rev"]))

    def start(self) -> SocketReader:
        self.sio.connect(self.base, transports=["websocket"], wait_timeout=WAIT)
        self.wait_for(lambda r: r.joins >= 1)
        return self

    def stop(self) -> None:
        if self._gap_timer:
            self._gap_timer.cancel()
        self.sio.disconnect()

    def _on_connect(self) -> None:
        with self.changed:
            self.connects += 1
        self._join()

    def _on_disconnect(self, reason=None) -> None:
        with self.changed:
            self.disconnects += 1
            self.changed.notify_all()

    def _join(self) -> None:
        with self.changed:
            since = self.rev
        try:
            self.sio.emit("join", {"story": self.slug, "since": since}, callback=self._on_ack)
        except socketio.exceptions.SocketIOError:
            pass  # disconnected again; the next connect joins

    def _on_ack(self, ack: dict) -> None:
        with self.changed:
            if not ack.get("ok") or ack.get("reset"):
                self.errors.append(ack)
            else:
                for entry in ack["entries"]:
                    self._apply(entry)
                self.rev = max(self.rev, ack["rev"])  # the ack brings everything up to its rev
                self.early = {r for r in self.early if r > self.rev}
                self._advance()
                self.joins += 1
            self.changed.notify_all()

    def _on_entry(self, entry: dict) -> None:
        with self.changed:
            self._apply(entry)
            self.changed.notify_all()
        if self.early:
            self._check_gap(max(self.early))

    def _apply(self, entry: dict) -> None:
        held = self.entries.get(entry["id"])
        if held is None or held["rev"] < entry["rev"]:
            self.entries[entry["id"]] = entry
        if entry["rev"] > self.rev:
            self.early.add(entry["rev"])
            self._advance()

    def _advance(self) -> None:
        while self.rev + 1 in self.early:
            self.early.discard(self.rev + 1)
            self.rev += 1

    def _check_gap(self, target: int) -> None:
        with self.changed:
            if target <= self.rev or self._gap_timer:
                return
            self._gap_timer = threading.Timer(2.0, self._gap_expired, args=(target,))
            self._gap_timer.daemon = True
            self._gap_timer.start()

    def _gap_expired(self, target: int) -> None:
        with self.changed:
            self._gap_timer = None
            behind = target > self.rev
        if behind and self.sio.connected:
            self._join()

    def wait_for(self, predicate, timeout: float = WAIT) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: predicate(self), timeout=timeout), (
                f"reader: rev {self.rev}, early {sorted(self.early)}, joins {self.joins}, errors {self.errors}")

    def visible(self) -> dict[int, dict]:
        with self.changed:
            return {i: e for i, e in self.entries.items() if not e["deleted"]}


@contextmanager
def socket_readers(base: str, slug: str, count: int):
    readers = [SocketReader(base, slug).start() for _ in range(count)]
    try:
        yield readers
    finally:
        for reader in readers:
            reader.stop()


@contextmanager
def browser_page(browser, **options):
    context = browser.new_context(**options)
    try:
        yield context.new_page()
    finally:
        context.close()


def open_reader(page: Page, base: str, slug: str) -> Page:
    page.goto(f"{base}/stories/{slug}")
    expect(page.locator('[data-connection="live"]')).to_be_visible(timeout=WAIT * 1000)
    return page


DOM_ENTRIES = """() => Array.from(document.querySelectorAll('#story article.entry')).map(el => ({
  id: +el.dataset.id, rev: +el.dataset.rev, inFeed: el.parentElement.matches('[data-entries]'),
  headline: el.querySelector('.entry__headline').textContent,
  body: el.querySelector('.entry__body').textContent.trim()}))"""


def wait_for_page_rev(page: Page, rev: int, timeout: float = WAIT * 1000) -> None:
    page.wait_for_function("rev => +document.getElementById('story').dataset.rev >= rev", arg=rev, timeout=timeout)


# The server's own view

def server_state(base: str, slug: str) -> tuple[int, list[dict]]:
    """The story's revision and every entry (deleted ones too) by rev, through the JSON API."""
    entries, after = [], 0
    while True:
        page = requests.get(f"{base}/api/stories/{slug}/entries", params={"after_rev": after, "limit": 100},
                            timeout=WAIT).json()
        entries += page["entries"]
        if page["next_after_rev"] is None:
            rev = requests.get(f"{base}/api/stories/{slug}", timeout=WAIT).json()["story"]["rev"]
            return rev, entries
        after = page["next_after_rev"]


def newest_first(entries: list[dict]) -> list[dict]:
    """Visible entries in the reader page's order: newest first (created_at, then id)."""
    return sorted((e for e in entries if not e["deleted"]), key=lambda e: (e["created_at"], e["id"]), reverse=True)


def body_text(entry: dict) -> str:
    return unescape(re.sub(r"<[^>]+>", "", entry["html"])).strip()


def assert_page_matches(page: Page, entries: list[dict]) -> None:
    """The page shows exactly the server's visible entries: each once, in order, at their revision."""
    shown = page.evaluate(DOM_ENTRIES)
    ids = [e["id"] for e in shown]
    assert len(ids) == len(set(ids)), f"an entry is shown twice: {ids}"
    assert all(e["inFeed"] for e in shown)
    expected = newest_first(entries)
    assert ids == [e["id"] for e in expected]
    assert [(e["rev"], e["headline"], e["body"]) for e in shown] == [
        (e["rev"], e["headline"], body_text(e)) for e in expected]


def assert_reader_matches(reader: SocketReader, rev: int, entries: list[dict]) -> None:
    assert reader.errors == []
    assert reader.rev == rev
    held = {i: (e["rev"], e["headline"], e["html"]) for i, e in reader.visible().items()}
    assert held == {e["id"]: (e["rev"], e["headline"], e["html"]) for e in entries if not e["deleted"]}
    assert sorted(held, key=lambda i: held[i][0]) == [e["id"] for e in entries if not e["deleted"]]


# 1. SIGKILL and restart while the editor keeps posting

class Poster(threading.Thread):
    """An editor publishing through the JSON API every 100-200 ms. A post that fails (no
    answer, refused, 5xx) is retried with the same idempotency key until it succeeds."""

    def __init__(self, api: Api, slug: str):
        super().__init__(daemon=True)
        self.api, self.slug = api, slug
        self.halt = threading.Event()
        self.progress = threading.Condition()
        self.published: list[tuple[str, int]] = []  # (body, entry id) in publishing order
        self.retries = self.replayed = 0
        self.failure: str | None = None

    def run(self) -> None:
        n = 0
        while not self.halt.is_set() and self.failure is None:
            n += 1
            body, key, deadline = f"Update number {n:03d}.", uuid.uuid4().hex, time.monotonic() + 60
            while True:
                try:
                    response = self.api.post(self.slug, body, f"Post {n:03d}", key=key, timeout=3)
                    if response.status_code in (200, 201):
                        break
                    problem = f"{response.status_code} {response.text[:200]}"
                except requests.RequestException as exc:
                    problem = repr(exc)
                self.retries += 1
                if time.monotonic() > deadline:
                    self.failure = f"post {n} kept failing: {problem}"
                    break
                time.sleep(0.1)  # pause before retrying
            with self.progress:
                if self.failure is None:
                    self.replayed += response.status_code == 200  # a retry whose first try had been saved
                    self.published.append((body, response.json()["entry"]["id"]))
                self.progress.notify_all()
            self.halt.wait(random.uniform(0.1, 0.2))  # the editor's pace

    def wait_for(self, count: int, timeout: float = 60) -> None:
        with self.progress:
            assert self.progress.wait_for(lambda: len(self.published) >= count or self.failure, timeout=timeout)
            assert self.failure is None, self.failure

    def finish(self) -> None:
        self.halt.set()
        self.join(timeout=90)
        assert not self.is_alive() and self.failure is None, self.failure


def test_sigkill_and_restart_while_posting_loses_and_repeats_nothing(browser, live_server, make_proxy):
    # The editor reaches the server through a proxy, so the kill can come exactly between a
    # post being saved and its answer reaching the editor: the retry must not publish it twice.
    proxy = make_proxy(live_server.port)
    api = Api(live_server, base=proxy.url)
    slug = api.create_story("Refinery fire")
    with socket_readers(live_server.url, slug, 3) as readers, browser_page(browser) as page:
        open_reader(page, live_server.url, slug)
        poster = Poster(api, slug)
        poster.start()
        try:
            poster.wait_for(8)
            proxy.swallow_responses()
            proxy.wait_for_swallowed()  # a post was saved and answered; the answer is lost
            os.kill(live_server.process.pid, signal.SIGKILL)
            assert live_server.process.wait(timeout=WAIT) == -signal.SIGKILL
            proxy.cut()  # the editor's connection breaks: it retries, refused while the server is down
            proxy.restore()
            for reader in readers:
                reader.wait_for(lambda r: r.disconnects == 1)
            expect(page.locator('[data-connection="reconnecting"]')).to_be_visible(timeout=WAIT * 1000)
            down = len(poster.published)

            live_server.start()  # same port, same database
            for reader in readers:
                reader.wait_for(lambda r: r.joins >= 2, timeout=30)
            expect(page.locator('[data-connection="live"]')).to_be_visible(timeout=RECONNECT)
            # The post whose answer was lost, then 8 more: it keeps going on the new process.
            poster.wait_for(down + 9)
        finally:
            poster.finish()
        assert poster.retries > 0, "no post ever failed: the kill did not hit the editor"
        assert poster.replayed >= 1, "the post whose answer was lost was not answered as already published"

        rev, entries = server_state(live_server.url, slug)
        # The server holds each published update exactly once, in publishing order.
        assert [(body_text(e), e["id"]) for e in entries] == poster.published
        assert [e["rev"] for e in entries] == list(range(2, rev + 1))
        assert len(entries) >= down + 9
        for reader in readers:
            reader.wait_for(lambda r: r.rev >= rev)
            assert_reader_matches(reader, rev, entries)
        wait_for_page_rev(page, rev)
        assert_page_matches(page, entries)


# 2. One reader's network drops for DROP_SECONDS

RECORDER = """() => {
  const log = window.__faults = {states: [], close: [], attempts: [], errors: []};
  const state = document.querySelector('.livebar [data-connection]');
  const note = () => log.states.push([state.dataset.connection, Date.now()]);
  new MutationObserver(note).observe(state, {attributes: true, attributeFilter: ['data-connection']});
  note();
  const manager = window.trackerSocket.io;
  manager.on('close', () => log.close.push(Date.now()));
  manager.on('reconnect_attempt', n => log.attempts.push([n, Date.now()]));
  manager.on('reconnect_error', () => log.errors.push(Date.now()));
}"""


def check_backoff(log: dict) -> None:
    """Delays between attempts grow 1, 2, 4, 8 s... (at most 15 s), each off by up to ±50 %."""
    attempts = [at for _, at in log["attempts"]]
    assert [n for n, _ in log["attempts"]] == list(range(1, len(attempts) + 1))
    assert 3 <= len(attempts) <= 8, log
    starts = [log["close"][0]] + log["errors"][:len(attempts) - 1]
    delays = [at - start for at, start in zip(attempts, starts, strict=True)]
    deviations = []
    for n, delay in enumerate(delays, start=1):
        nominal = 1000 * 2 ** (n - 1)
        low, high = min(nominal * 0.5, 15_000), min(nominal * 1.5, 15_000)
        assert low - 50 <= delay <= high + 1000, f"attempt {n} came {delay} ms after the previous failure: {delays}"
        if nominal <= 8000:
            deviations.append(abs(delay - nominal) / nominal)
    # Jitter: not every delay is the nominal one (all within 2 % of it: a chance below 1e-4).
    assert max(deviations) > 0.02, delays


@pytest.fixture
def paging_server(database_url):
    """A server whose catch-up pages hold about 2 KB, so a reader 25 changes behind needs several."""
    server = LiveServer(database_url, CATCHUP_PAGE_BYTES="2000")
    server.start()
    yield server
    server.stop()


# The reader's side of a network cut: its catch-up reads are covered on PostgreSQL by test_events.
@pytest.mark.engine_independent
def test_reader_cut_off_from_the_network_catches_up_and_shows_its_state(browser, paging_server, make_proxy):
    live_server = paging_server
    api = Api(live_server)
    slug = api.create_story("Storm on the coast")
    before = [api.publish(slug, f"Before the drop {n}.", f"Before {n}") for n in range(2)]
    proxy = make_proxy(live_server.port)
    with browser_page(browser) as page:
        open_reader(page, proxy.url, slug)  # page and socket go through the proxy
        expect(page.locator("#story article.entry")).to_have_count(2)
        page.evaluate(RECORDER)
        shown_rev = int(page.locator("#story").get_attribute("data-rev"))

        cut_at = time.time()
        proxy.cut()
        expect(page.locator('[data-connection="reconnecting"]')).to_be_visible(timeout=WAIT * 1000)
        posted = [api.publish(slug, f"During the drop {n}.", f"During {n:02d}") for n in range(20)]
        edited = [api.edit(entry["id"], f"Corrected: {entry['headline']}.", f"{entry['headline']} (corrected)")
                  for entry in (before[0], posted[4], posted[13])]
        deleted = [api.delete(entry["id"]) for entry in (before[1], posted[9])]
        rev, entries = server_state(live_server.url, slug)
        assert rev == shown_rev + 25
        time.sleep(max(0.0, cut_at + DROP_SECONDS - time.time()))  # the drop lasts DROP_SECONDS, by design

        # Nothing leaked through the cut, and the page kept telling the reader it is not live.
        assert page.evaluate("window.trackerSocket.connected") is False
        assert int(page.locator("#story").get_attribute("data-rev")) == shown_rev
        expect(page.locator("#story article.entry")).to_have_count(2)
        expect(page.locator('[data-connection="reconnecting"]')).to_be_visible()
        assert proxy.refused, "the page never tried to reconnect"
        pages: list[str] = []
        page.on("request", lambda request: pages.append(request.url) if "after_rev=" in request.url else None)
        proxy.restore()
        restored_at = time.time()

        expect(page.locator('[data-connection="live"]')).to_be_visible(timeout=20_000)
        wait_for_page_rev(page, rev)
        assert_page_matches(page, entries)
        remaining = newest_first(entries)
        assert len(remaining) == 20
        shown = {e["id"]: e for e in page.evaluate(DOM_ENTRIES)}
        for entry in edited:
            assert shown[entry["id"]]["headline"].endswith("(corrected)")
            assert shown[entry["id"]]["body"].startswith("Corrected:")
        assert not {e["id"] for e in deleted} & set(shown)
        assert len(pages) >= 2, pages  # the join's ack held the first page, HTTP brought the rest

        log = page.evaluate("window.__faults")
        during = [state for state, at in log["states"] if cut_at <= at / 1000 < restored_at]
        assert during and set(during) <= {"reconnecting", "offline"}, log["states"]
        assert log["states"][-1][0] == "live"
        check_backoff(log)


# What the page says offline does not touch the database.
@pytest.mark.engine_independent
def test_page_says_offline_when_the_browser_has_no_network(browser, live_server, make_proxy):
    api = Api(live_server)
    slug = api.create_story("Quiet night")
    proxy = make_proxy(live_server.port)
    with browser_page(browser) as page:
        open_reader(page, proxy.url, slug)
        page.context.set_offline(True)
        proxy.cut()  # the open websocket goes too
        expect(page.locator('[data-connection="offline"]')).to_be_visible(timeout=WAIT * 1000)
        api.publish(slug, "Written while the reader was offline.", "While offline")
        proxy.restore()
        page.context.set_offline(False)
        expect(page.locator('[data-connection="live"]')).to_be_visible(timeout=20_000)
        rev, entries = server_state(live_server.url, slug)
        wait_for_page_rev(page, rev)
        assert_page_matches(page, entries)


# 3. The database is locked (SQLite) or unreachable (PostgreSQL)

@pytest.fixture
def start_server():
    """Start LiveServers with extra environment; stop them after the test."""
    started: list[LiveServer] = []

    def start(database_url: str, **env: str) -> LiveServer:
        server = LiveServer(database_url, **env)
        server.flask("user", "create", "alice", "--password-stdin", input_text=PASSWORD + "\n")
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def no_trace(html: str) -> None:
    assert "Traceback" not in html and 'File "' not in html and "sqlalchemy" not in html.lower()


def check_database_outage(browser, server: LiveServer, *, fail, heal, saved_state, message: str,
                          readers_served: bool) -> None:
    """Publishing while the database refuses writes: a clear 503, nothing half-written, the text
    kept for resubmitting (form POST and the page's JavaScript), readers kept; then it works again."""
    editor, api = FormEditor(server.url), Api(server)
    slug = editor.create_story("Dam inspection")
    assert editor.submit(slug, {**editor.compose_form(slug), "body": "Inspectors arrive."}).status_code == 302
    with socket_readers(server.url, slug, 2) as readers, browser_page(browser) as page, \
            browser_page(browser) as reading:
        open_reader(reading, server.url, slug)
        browser_login(page, server)
        page.goto(f"{server.url}/editor/stories/{slug}")
        expect(page.locator('[data-connection="live"]')).to_have_count(1, timeout=WAIT * 1000)
        state = saved_state(slug)
        assert state == (2, 1)  # (story rev, entries)
        typed = {**editor.compose_form(slug), "headline": "Spillway opened",
                 "body": "Water is released <slowly> & steadily."}

        fail()
        # The plain form POST (no JavaScript).
        response = editor.submit(slug, typed)
        assert response.status_code == 503, response.text[:500]
        no_trace(response.text)
        assert message in unescape(response.text)
        kept = hidden_fields(response.text)
        assert kept["idempotency_key"] == typed["idempotency_key"]
        assert "Water is released &lt;slowly&gt; &amp; steadily." in response.text  # in the textarea
        assert 'value="Spillway opened"' in response.text
        # The page's JavaScript publish.
        page.fill("#headline", "Road closed")
        page.fill("#body", "The dam road is closed to traffic.")
        page.click("[data-publish]")
        expect(page.locator("[data-compose-status]")).to_contain_text(message, timeout=WAIT * 1000)
        expect(page.locator("#body")).to_have_value("The dam road is closed to traffic.")
        expect(page.locator("#headline")).to_have_value("Road closed")
        expect(page.locator("[data-publish]")).to_be_enabled()
        # The JSON API.
        api_key = uuid.uuid4().hex
        response = api.post(slug, "Gates are checked hourly.", "Gates", key=api_key)
        assert response.status_code == 503 and response.json()["ok"] is False, response.text[:500]
        assert message in response.json()["error"]
        # Nothing was written, and the server keeps serving.
        assert saved_state(slug) == state
        health = requests.get(f"{server.url}/healthz", timeout=WAIT)
        assert health.status_code == 503 and health.json()["database"] != "ok", health.text
        assert requests.get(f"{server.url}/static/js/live.js", timeout=WAIT).status_code == 200
        story_page = requests.get(f"{server.url}/stories/{slug}", timeout=WAIT)
        if readers_served:
            assert story_page.status_code == 200 and "Inspectors arrive." in story_page.text
        else:
            assert story_page.status_code == 503
            no_trace(story_page.text)
        assert all(reader.sio.connected and reader.disconnects == 0 for reader in readers)
        assert all(len(reader.entries) == 1 for reader in readers)
        # A reader page that reconnects now is answered from the story's recent changes in memory
        # (tracker.recent), which need no database; a join that does need it gets an error ack.
        reading.evaluate("window.trackerSocket.disconnect().connect()")
        expect(reading.locator('[data-connection="live"]')).to_have_count(1, timeout=WAIT * 1000)
        if not readers_served:
            ack = reading.evaluate("""new Promise(done => window.trackerSocket.timeout(20000).emit('join',
                {story: 'never-followed-here', since: 0}, (err, ack) => done(err ? String(err) : ack)))""")
            assert ack == {"ok": False, "error": HANDLER_FAILED}, ack

        heal()
        expect(reading.locator('[data-connection="live"]')).to_have_count(1, timeout=WAIT * 1000)
        assert requests.get(f"{server.url}/healthz", timeout=WAIT).status_code == 200
        response = editor.submit(slug, {**kept, "headline": "Spillway opened",
                                        "body": "Water is released <slowly> & steadily."})
        assert response.status_code == 302, response.text[:500]
        page.click("[data-publish]")
        expect(page.locator("[data-compose-status]")).to_have_text("Update published.", timeout=WAIT * 1000)
        expect(page.locator("#body")).to_have_value("")
        assert api.post(slug, "Gates are checked hourly.", "Gates", key=api_key).status_code == 201
        rev, entries = server_state(server.url, slug)
        assert rev == 5 and saved_state(slug) == (5, 4)
        assert [e["headline"] for e in entries] == ["", "Spillway opened", "Road closed", "Gates"]
        for reader in readers:
            reader.wait_for(lambda r: r.rev == 5)
            assert_reader_matches(reader, rev, entries)
        for shown in (page, reading):
            wait_for_page_rev(shown, rev)
            assert_page_matches(shown, entries)


def test_publishing_while_sqlite_is_locked_fails_cleanly_and_keeps_the_text(browser, database_url,
                                                                            start_server):
    if TEST_DATABASE_URL:
        pytest.skip("SQLite lock test; on PostgreSQL the unreachable-database test runs instead")
    server = start_server(database_url, DB_BUSY_TIMEOUT_MS="1000")
    path = make_url(database_url).database
    holder: list[sqlite3.Connection] = []

    def lock():
        connection = sqlite3.connect(path, isolation_level=None, timeout=0)
        connection.execute("BEGIN EXCLUSIVE")  # held until heal(): far longer than the busy timeout
        holder.append(connection)

    def unlock():
        holder.pop().rollback()

    def saved_state(slug):
        connection = holder[0] if holder else sqlite3.connect(path)
        try:
            return connection.execute("SELECT s.rev, (SELECT count(*) FROM entries e WHERE e.story_id = s.id) "
                                      "FROM stories s WHERE s.slug = ?", (slug,)).fetchone()
        finally:
            if not holder:
                connection.close()

    try:
        check_database_outage(browser, server, fail=lock, heal=unlock, saved_state=saved_state,
                              message="The database is busy right now. Nothing was saved",
                              readers_served=True)
    finally:
        for connection in holder:
            connection.close()


def test_publishing_while_postgres_is_unreachable_fails_cleanly_and_keeps_the_text(
        browser, database_url, start_server, make_proxy):
    if not TEST_DATABASE_URL:
        pytest.skip("needs PostgreSQL (set TEST_DATABASE_URL); on SQLite the locked-database test runs instead")
    url = make_url(database_url)
    proxy = make_proxy(url.port or 5432, url.host or "127.0.0.1")
    server = start_server(url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False),
                          DB_CONNECT_TIMEOUT="2")
    direct = create_engine(database_url)

    def saved_state(slug):
        with direct.connect() as connection:
            return tuple(connection.execute(text(
                "SELECT s.rev, (SELECT count(*) FROM entries e WHERE e.story_id = s.id) "
                "FROM stories s WHERE s.slug = :slug"), {"slug": slug}).one())

    try:
        check_database_outage(browser, server, fail=proxy.cut, heal=proxy.restore, saved_state=saved_state,
                              message="The database is unavailable right now. Nothing was saved",
                              readers_served=False)
    finally:
        direct.dispose()


# 4. Two editors at the same moment

def test_two_editors_posting_at_the_same_moment_get_distinct_ordered_revisions(live_server):
    form, api = FormEditor(live_server.url), Api(live_server)
    slug = form.create_story("Election night")
    fields = form.compose_form(slug)
    rounds, barrier = 10, threading.Barrier(2)
    results: dict[str, list[dict]] = {"form": [], "api": []}
    failures: list[str] = []

    def by_form():
        for n in range(rounds):
            barrier.wait(timeout=WAIT)
            response = form.submit(slug, {**fields, "idempotency_key": uuid.uuid4().hex,
                                          "headline": f"Form {n}", "body": f"From the form, round {n}."}, json=True)
            if response.status_code != 200 or not response.json()["ok"]:
                failures.append(f"form round {n}: {response.status_code} {response.text[:200]}")
            else:
                results["form"].append(response.json()["entry"])

    def by_api():
        for n in range(rounds):
            barrier.wait(timeout=WAIT)
            response = api.post(slug, f"From the API, round {n}.", f"API {n}")
            if response.status_code != 201:
                failures.append(f"api round {n}: {response.status_code} {response.text[:200]}")
            else:
                results["api"].append(response.json()["entry"])

    wire = WireReader(live_server.port, slug)
    with socket_readers(live_server.url, slug, 1) as [reader]:
        threads = [threading.Thread(target=by_form), threading.Thread(target=by_api)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert failures == [] and all(len(made) == rounds for made in results.values()), failures

        revs = sorted(entry["rev"] for made in results.values() for entry in made)
        assert revs == list(range(2, 2 + 2 * rounds))  # distinct, none skipped
        for made in results.values():
            assert [e["rev"] for e in made] == sorted(e["rev"] for e in made)
        rev, entries = server_state(live_server.url, slug)
        assert rev == 1 + 2 * rounds and len(entries) == 2 * rounds
        assert sorted(e["headline"] for e in entries) == sorted([f"Form {n}" for n in range(rounds)] +
                                                                [f"API {n}" for n in range(rounds)])
        # Every change went out once, in revision order; the reader that catches up agrees.
        assert [entry["rev"] for entry in wire.entries(2 * rounds)] == revs
        wire.close()
        reader.wait_for(lambda r: r.rev == rev)
        assert_reader_matches(reader, rev, entries)


def test_racing_posts_that_share_idempotency_keys_are_all_answered_and_broadcast_once(postgres_url):
    # A post that loses an idempotency-key race rolls back and gives its revision number back;
    # the next change takes the same number. That must not cost any other post its answer or
    # its broadcast.
    server = LiveServer(postgres_url)
    server.start()
    try:
        api = Api(server)
        slug = api.create_story("Count night")
        rounds, racers = 8, 6
        barrier = threading.Barrier(racers)
        answers: list[tuple[int, dict]] = []

        def racer(number: int) -> None:
            for n in range(rounds):
                key = f"round-{n}" if number % 2 else uuid.uuid4().hex  # three racers share each key
                barrier.wait(timeout=WAIT)
                response = api.post(slug, f"Racer {number}, round {n}.", key=key)
                answers.append((response.status_code, response.json() if response.ok else {"text": response.text}))

        wire = WireReader(server.port, slug)
        threads = [threading.Thread(target=racer, args=(number,)) for number in range(racers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert [a for a in answers if a[0] not in (200, 201)] == []
        saved = {answer["entry"]["id"]: answer["entry"]["rev"] for _, answer in answers}
        assert len(saved) == rounds * (racers // 2 + 1)  # one entry per shared key, one per unique post
        _, entries = server_state(server.url, slug)
        assert {entry["id"] for entry in entries} == set(saved)
        # Every saved post reached the joined reader exactly once, in revision order.
        sent = wire.entries(len(saved))
        last = api.publish(slug, "After the race.")
        assert [entry["id"] for entry in wire.entries(1)] == [last["id"]]
        assert sorted(entry["id"] for entry in sent) == sorted(saved)
        assert [entry["rev"] for entry in sent] == sorted(saved.values())
        wire.close()
    finally:
        server.stop()
