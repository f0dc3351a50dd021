"""Several processes sharing PostgreSQL and fanning out through Redis, and what happens when Redis goes."""
import multiprocessing
import re
import threading
from datetime import UTC, datetime, timedelta

import pytest
import requests
import socketio
from helpers import PASSWORD, Editor, LiveServer, Reader, WireReader, http_login, server_entries
from playwright.sync_api import expect
from sqlalchemy import select

from tracker import create_app, services
from tracker.extensions import db
from tracker.models import Entry, Story
from tracker.web import story_or_404

WRITERS, EACH = 4, 25


def _write(url: str, slug: str, mixed: bool, barrier, results) -> None:
    """One writer process: wait for the others, then change the story as fast as it can.

    Mixed writers also pin (which unpins another writer's entry), mark and correct, so their
    transactions touch rows that other processes touch too.
    """
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "x"})
    with app.test_request_context():
        story = story_or_404(slug)
        barrier.wait(timeout=60)
        revs = []
        for n in range(EACH):
            entry = services.append_entry(story, f"Entry {n}")[0]
            revs.append(entry.rev)
            if mixed:
                revs += [services.set_pinned(entry, True).rev, services.set_key(entry, True).rev,
                         services.edit_entry(entry, f"Entry {n}, corrected").rev]
        results.put(revs)


@pytest.mark.parametrize("mixed", [False, True], ids=["appends", "mixed-changes"])
def test_revisions_stay_strict_under_concurrent_writers_in_processes(postgres_url, mixed):
    app = create_app({"DATABASE_URL": postgres_url, "SECRET_KEY": "x"})
    with app.test_request_context():
        db.create_all()
        slug = services.create_story("Election night").slug
    spawn = multiprocessing.get_context("spawn")
    barrier, results = spawn.Barrier(WRITERS), spawn.Queue()
    writers = [spawn.Process(target=_write, args=(postgres_url, slug, mixed, barrier, results))
               for _ in range(WRITERS)]
    for writer in writers:
        writer.start()
    per_writer = [results.get(timeout=120) for _ in writers]
    for writer in writers:
        writer.join(timeout=60)
        assert writer.exitcode == 0
    for revs in per_writer:
        assert revs == sorted(revs) and len(set(revs)) == len(revs)  # each writer saw its revisions rise
    taken = sorted(rev for revs in per_writer for rev in revs)
    with app.app_context():
        story_rev = db.session.scalar(select(Story.rev))
        entry_revs = sorted(db.session.scalars(select(Entry.rev)))
        db.engine.dispose()
    if not mixed:
        assert taken == entry_revs == list(range(2, 2 + WRITERS * EACH))  # none lost or taken twice
    # Unpinning another writer's entry takes revisions too, so every one from 2 up was handed out once.
    assert len(set(taken)) == len(taken) and set(taken) <= set(range(2, story_rev + 1))
    assert len(entry_revs) == WRITERS * EACH and story_rev == max(entry_revs)


@pytest.fixture
def cluster(postgres_url, redis_server):
    """Two server processes on one PostgreSQL database and one Redis queue."""
    servers = [LiveServer(postgres_url, SOCKETIO_MESSAGE_QUEUE=redis_server.url, REV_BEACON_SECONDS="1",
                          READERS_SECONDS="1") for _ in range(2)]
    servers[0].flask("user", "create", "alice", "--password-stdin", input_text=PASSWORD + "\n")
    for server in servers:
        server.start()
    yield servers
    for server in servers:
        server.stop()


def test_reader_on_one_process_gets_every_change_made_on_another(cluster):
    """Reader on A; form posts, a correction and a deletion on B; a form post and an API post on A."""
    a, b = cluster
    on_b, on_a = Editor(b.url), Editor(a.url)
    slug = on_b.create_story("Port strike")
    reader, wire = Reader(a.url, slug), WireReader(a.port, slug)
    reader.connect()
    for n in range(3):
        on_b.post(slug, f"Day {n}: pickets at gate {n}")
    ids = sorted(server_entries(b.url, slug))
    on_b.edit(ids[0], "Day 0: pickets at gates 0 and 1")
    on_b.delete(slug, ids[1])
    on_a.post(slug, "Talks resume")
    token = a.flask("token", "create", "wire").strip().splitlines()[-1]
    api = requests.post(f"{a.url}/api/stories/{slug}/entries", json={"body": "Deal reached"},
                        headers={"Authorization": f"Bearer {token}"})
    assert api.status_code == 201
    assert [e["rev"] for e in wire.entries(7)] == list(range(2, 9))  # every change, once, in order
    wire.close()
    reader.wait_for(lambda r: len(r.events) == 7)
    assert "gates 0 and 1" in reader.entries[ids[0]]["html"] and reader.entries[ids[1]]["deleted"]
    for server in cluster:
        assert {i: e["rev"] for i, e in server_entries(server.url, slug).items()} == {
            i: e["rev"] for i, e in reader.visible().items()}
    assert requests.get(f"{a.url}/healthz").json() == {"ok": True, "database": "ok", "queue": "ok"}
    reader.sio.disconnect()


def test_readers_on_every_process_add_up(cluster):
    """Three readers on A and two on B: both processes count five, through Redis, and stop counting
    those who left."""
    a, b = cluster
    slug = Editor(a.url).create_story("Count across")
    on_a, on_b = [Reader(a.url, slug) for _ in range(3)], [Reader(b.url, slug) for _ in range(2)]
    for reader in on_a + on_b:
        reader.connect()
    for reader in (on_a[0], on_b[0]):
        reader.wait_for(lambda r: r.readers == 5)
    assert {requests.get(f"{s.url}/api/stories/{slug}", timeout=10).json()["story"]["readers"] for s in cluster} == {5}
    for reader in on_a:
        reader.sio.disconnect()
    on_b[0].wait_for(lambda r: r.readers == 2)
    for reader in on_b:
        reader.sio.disconnect()


def test_scheduled_updates_publish_once_across_processes_and_the_desk_is_shared(cluster):
    """Both processes' schedulers see the same due updates: each is published once. Presence on
    one process reaches the desk on the other."""
    a, b = cluster
    a.flask("user", "create", "bea", "--password-stdin", input_text=PASSWORD + "\n")
    token = a.flask("token", "create", "desk").strip().splitlines()[-1]
    api = {"Authorization": f"Bearer {token}"}
    slug = requests.post(f"{a.url}/api/stories", json={"title": "Budget day"}, headers=api).json()["story"]["slug"]
    readers = [Reader(server.url, slug) for server in cluster]
    for reader in readers:
        reader.connect()
    due = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
    ids = {requests.post(f"{a.url}/api/stories/{slug}/entries", json={"body": f"Measure {n}", "publish_at": due},
                         headers=api).json()["entry"]["id"] for n in range(5)}
    for reader in readers:
        reader.wait_for(lambda r: len(r.events) == 5)
    requests.post(f"{b.url}/api/stories/{slug}/entries", json={"body": "Speech ends."}, headers=api)
    for reader in readers:
        reader.wait_for(lambda r: len(r.events) == 6)
        assert {e["id"] for e in reader.events[:5]} == ids and [e["rev"] for e in reader.events] == list(range(2, 8))
    assert requests.get(f"{b.url}/api/stories/{slug}").json()["story"]["rev"] == 7, "none published twice"

    desks = []
    for server, name in ((a, "alice"), (b, "bea")):
        cookies = "; ".join(f"{c.name}={c.value}" for c in http_login(server.url, name).cookies)
        desk = socketio.Client(reconnection=False)
        desk.connect(server.url, transports=["websocket"], headers={"Cookie": cookies}, wait_timeout=10)
        desks.append(desk)
    heard = threading.Event()
    desks[0].on("presence", lambda state: heard.set() if state["here"] == ["alice", "bea"] else None)
    assert desks[0].call("desk", {"story": slug}, timeout=10)["here"] == ["alice"]
    assert desks[1].call("desk", {"story": slug}, timeout=10)["here"] == ["alice", "bea"]
    assert heard.wait(10), "bea's arrival on B reached alice's desk on A"
    for desk in desks + [reader.sio for reader in readers]:
        desk.disconnect()


def test_redis_outage_keeps_saving_and_readers_catch_up(cluster, redis_server, browser):
    a, b = cluster
    editor = Editor(b.url)
    slug = editor.create_story("Flood defences")
    editor.post(slug, "Barriers raised", "Before the outage")
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"{a.url}/stories/{slug}")
        expect(page.locator('[data-connection="live"]')).to_be_visible(timeout=10_000)

        redis_server.stop()
        health = requests.get(f"{b.url}/healthz")
        assert health.status_code == 503 and health.json()["queue"].startswith("unreachable")
        editor.post(slug, "Water over the quay", "During the outage 1")  # saved: the form redirects
        editor.post(slug, "Second barrier holds", "During the outage 2")
        # Server A never hears of these through Redis; its revision beacon makes the page join again.
        for headline in ("During the outage 1", "During the outage 2"):
            expect(page.locator(".entry__headline", has_text=headline)).to_have_count(1, timeout=15_000)

        redis_server.start()
        editor.post(slug, "Levels falling", "After the outage")
        expect(page.locator(".entry__headline", has_text="After the outage")).to_have_count(1, timeout=30_000)
        headlines = page.locator("[data-entries] .entry__headline").all_text_contents()
        assert headlines == ["After the outage", "During the outage 2", "During the outage 1", "Before the outage"]
    finally:
        context.close()
    assert any(re.search(r"Cannot (publish to|receive from) redis", line) for line in b.log + a.log)
