"""End to end: a real server process, a real Socket.IO client over websocket, the real editor form."""
import re

import pytest
import requests
from helpers import Editor, Reader, fresh_database, server_entries, start_live_server


@pytest.fixture(scope="module")
def live_server(tmp_path_factory, database_engine):
    """One server for the module: each test works on a story of its own."""
    with fresh_database(tmp_path_factory.mktemp("e2e"), database_engine) as url:
        server = start_live_server(url, READERS_SECONDS="1")
        yield server
        server.stop()


@pytest.fixture
def editor(live_server):
    return Editor(live_server.url)


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


def test_server_pages_and_headers_from_the_real_server(live_server, editor):
    slug = editor.create_story("Storm")
    response = requests.get(f"{live_server.url}/stories/{slug}")
    assert response.status_code == 200 and "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert requests.get(f"{live_server.url}/static/vendor/socket.io.min.js").status_code == 200
    missing = requests.get(f"{live_server.url}/stories/nope")
    assert missing.status_code == 404 and re.search("There is no story", missing.text)


def test_readers_are_counted_on_the_story_and_told_to_them_when_it_changes(live_server, editor):
    slug = editor.create_story("Count night")
    readers = [Reader(live_server.url, slug) for _ in range(20)]
    acks = [reader.connect() for reader in readers]
    assert acks[-1]["readers"] >= 1  # the join's answer carries the count at once
    assert requests.get(f"{live_server.url}/api/stories/{slug}", timeout=10).json()["story"]["readers"] == 20
    for reader in readers:
        reader.wait_for(lambda r: r.readers == 20)
    listed = {s["slug"]: s for s in requests.get(f"{live_server.url}/api/stories", timeout=10).json()["stories"]}
    assert listed[slug]["readers"] == 20
    for reader in readers[5:]:
        reader.sio.disconnect()
    readers[0].wait_for(lambda r: r.readers == 5)
    assert requests.get(f"{live_server.url}/api/stories/{slug}", timeout=10).json()["story"]["readers"] == 5
    for reader in readers[:5]:
        reader.sio.disconnect()
