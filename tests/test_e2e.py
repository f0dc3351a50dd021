"""End to end: a real server process, a real Socket.IO client over websocket, the real editor form."""
import re
import threading
import uuid

import pytest
import requests
import socketio
from conftest import csrf_from, http_login

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
        self.changed = threading.Condition()
        self.sio = socketio.Client(reconnection=False)
        self.sio.on("entry", self.apply)

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

    def wait_for(self, predicate) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: predicate(self), timeout=TIMEOUT), self.entries

    def visible(self) -> dict[int, dict]:
        return {i: e for i, e in self.entries.items() if not e["deleted"]}


@pytest.fixture
def editor(live_server):
    return Editor(live_server.url)


def server_entries(base: str, slug: str) -> dict[int, dict]:
    """Every visible entry as the server has it, through the JSON pages."""
    found, cursor = {}, ""
    while True:
        page = requests.get(f"{base}/stories/{slug}/entries", params={"before": cursor} if cursor else {}).json()
        found.update({e["id"]: e for e in page["entries"]})
        if not page["next"]:
            return found
        cursor = page["next"]


def test_entry_posted_through_the_form_arrives_over_websocket(live_server, editor):
    slug = editor.create_story("Harbour fire")
    reader = Reader(live_server.url, slug)
    reader.connect()
    assert reader.sio.transport() == "websocket"
    editor.post(slug, "Fire crews **on scene**", "Crews arrive")
    reader.wait_for(lambda r: len(r.events) == 1)
    [entry] = reader.events
    assert entry["headline"] == "Crews arrive" and entry["html"] == "<p>Fire crews <strong>on scene</strong></p>\n"
    assert entry["story"] == slug and entry["author"] == "alice" and entry["rev"] == 2
    page = requests.get(f"{live_server.url}/stories/{slug}").text
    assert "Crews arrive" in page
    reader.sio.disconnect()


def test_reconnect_with_last_revision_catches_up_exactly(live_server, editor):
    slug = editor.create_story("Power cut")
    for n in range(2):
        editor.post(slug, f"Before the drop {n}")
    reader = Reader(live_server.url, slug)
    reader.connect()
    assert len(reader.entries) == 2
    reader.sio.disconnect()

    for n in range(3):
        editor.post(slug, f"While offline {n}")
    offline = sorted(set(server_entries(live_server.url, slug)) - set(reader.entries))
    editor.edit(offline[0], "While offline 0 (corrected)")
    editor.delete(slug, offline[1])
    before = min(reader.entries)
    editor.delete(slug, before)

    ack = reader.connect()
    server = server_entries(live_server.url, slug)
    assert reader.visible().keys() == server.keys()
    assert {i: (e["rev"], e["html"]) for i, e in reader.visible().items()} == {
        i: (e["rev"], e["html"]) for i, e in server.items()}
    assert "corrected" in reader.entries[offline[0]]["html"]
    assert reader.entries[offline[1]]["deleted"] and reader.entries[before]["deleted"]
    assert [e["rev"] for e in ack["entries"]] == sorted(e["rev"] for e in ack["entries"])
    assert reader.rev == ack["rev"] == ack["story"]["rev"]
    reader.sio.disconnect()


def test_join_of_unknown_story_is_an_error_ack(live_server):
    sio = socketio.Client(reconnection=False)
    sio.connect(live_server.url, transports=["websocket"], wait_timeout=TIMEOUT)
    ack = sio.call("join", {"story": "no-such-story", "since": 0}, timeout=TIMEOUT)
    assert ack == {"ok": False, "error": "There is no story 'no-such-story'."}
    assert sio.call("join", ["not", "an", "object"], timeout=TIMEOUT)["ok"] is False
    sio.disconnect()


def test_server_pages_and_headers_from_the_real_server(live_server, editor):
    slug = editor.create_story("Storm")
    response = requests.get(f"{live_server.url}/stories/{slug}")
    assert response.status_code == 200 and "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert requests.get(f"{live_server.url}/static/vendor/socket.io.min.js").status_code == 200
    missing = requests.get(f"{live_server.url}/stories/nope")
    assert missing.status_code == 404 and re.search("There is no story", missing.text)
