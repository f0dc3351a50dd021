"""Scheduled updates on a real server: published on time to open readers, and on start when missed."""
from datetime import UTC, datetime, timedelta

import pytest
import requests
from helpers import PASSWORD, LiveServer, Reader, fresh_database
from sqlalchemy import update

from tracker import create_app, services
from tracker.extensions import db
from tracker.models import Entry


@pytest.fixture(scope="module")
def server(tmp_path_factory, database_engine):
    """A server started after the time of a scheduled update passed while it was down: (server, story, id)."""
    with fresh_database(tmp_path_factory.mktemp("scheduler"), database_engine) as url:
        server = LiveServer(url)
        server.flask("user", "create", "alice", "--password-stdin", input_text=PASSWORD + "\n")
        app = create_app({"DATABASE_URL": url, "SECRET_KEY": "x"})
        with app.test_request_context():
            story = services.create_story("Storm Elara")
            missed, _ = services.append_entry(story, "Gusts of 100 km/h expected tonight.",
                                              publish_at=datetime.now(UTC) + timedelta(hours=1))
            db.session.execute(update(Entry).where(Entry.id == missed.id)
                               .values(publish_at=datetime.now(UTC) - timedelta(minutes=5)))
            db.session.commit()
            found = (story.slug, missed.id)
            db.engine.dispose()
        server.start()
        yield server, *found
        server.stop()


def test_a_time_missed_while_no_server_ran_publishes_on_start_and_says_so(server):
    server, slug, missed = server
    reader = Reader(server.url, slug)
    reader.connect()
    reader.wait_for(lambda r: missed in r.entries)
    assert reader.entries[missed]["status"] == "published" and reader.entries[missed]["rev"] == 2
    server.wait_for_line(lambda line: f"published scheduled update {missed} " in line and "after its time" in line)
    reader.sio.disconnect()


def test_a_scheduled_update_reaches_open_readers_within_a_second_of_its_time(server):
    server, slug, _ = server
    token = server.flask("token", "create", "planner").strip().splitlines()[-1]
    reader = Reader(server.url, slug)
    reader.connect()
    due = datetime.now(UTC) + timedelta(seconds=1.5)
    made = requests.post(f"{server.url}/api/stories/{slug}/entries", headers={"Authorization": f"Bearer {token}"},
                         json={"body": "Trains stop at 18:00.", "publish_at": due.isoformat()}).json()["entry"]
    assert made["status"] == "scheduled" and made["id"] not in reader.entries
    reader.wait_for(lambda r: made["id"] in r.entries)
    published = datetime.fromisoformat(reader.entries[made["id"]]["created_at"])
    assert due - timedelta(milliseconds=1) <= published < due + timedelta(seconds=1)  # times are sent in ms
    # Published once: one revision (an event may come twice, see the join in the README).
    assert {e["rev"] for e in reader.events if e["id"] == made["id"]} == {reader.entries[made["id"]]["rev"]}
    story = requests.get(f"{server.url}/api/stories/{slug}").json()["story"]
    assert story["rev"] == reader.entries[made["id"]]["rev"]
    reader.sio.disconnect()
