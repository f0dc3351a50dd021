"""Catch-up joins from memory (tracker.recent): a storm of readers a few revisions behind costs
the database nothing once the story's window is open, and every answer equals the database's."""
from contextlib import contextmanager

import pytest
from sqlalchemy import event

from tracker import metrics, services
from tracker.extensions import db, socketio
from tracker.web import entry_or_404, story_or_404


def join(sio, story, since):
    return sio.emit("join", {"story": story, "since": since}, callback=True)


@contextmanager
def counted_queries(app):
    """The SQL statements run meanwhile, as a list that fills while the block runs."""
    statements = []
    with app.app_context():
        engine = db.engine

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


def publish(app, story, n, prefix="Update"):
    with app.test_request_context():
        s = story_or_404(story)
        return [services.append_entry(s, f"{prefix} {i}", key=i % 3 == 0)[0].id for i in range(n)]


def from_database(app, socket_client, story, since):
    """What the database path answers (the windows off)."""
    keep, app.config["CATCHUP_WINDOW"] = app.config["CATCHUP_WINDOW"], 0
    try:
        return join(socket_client(), story, since)
    finally:
        app.config["CATCHUP_WINDOW"] = keep


def test_a_storm_of_joins_behind_is_answered_from_memory_and_equals_the_database(app, socket_client, story):
    publish(app, story, 10, "Before")
    first = join(socket_client(), story, 0)  # opens the window: the database's two reads
    ids = publish(app, story, 50)  # live, while the window follows the broadcasts
    with app.test_request_context():
        services.edit_entry(entry_or_404(ids[3]), "Corrected text")
        services.delete_entry(entry_or_404(ids[7]))
    readers = [socket_client() for _ in range(30)]
    from_memory = metrics.JOINS_FROM_MEMORY.get()
    with counted_queries(app) as statements:
        acks = [join(sio, story, first["rev"]) for sio in readers]
    assert statements == [], "the storm's joins read the database"
    assert metrics.JOINS_FROM_MEMORY.get() == from_memory + 30
    expected = from_database(app, socket_client, story, first["rev"])
    for ack in acks:
        assert ack["rev"] == expected["rev"] == first["rev"] + 52
        assert ack["entries"] == expected["entries"] and len(ack["entries"]) == 50
        assert ack["story"] == expected["story"]
    assert [e["id"] for e in acks[0]["entries"]][-2:] == [ids[3], ids[7]] and acks[0]["entries"][-1]["deleted"]


@pytest.mark.parametrize("case", ["lost event", "reader ahead", "far behind", "beacon ahead"])
def test_anything_the_window_cannot_be_sure_of_reads_the_database(app, socket_client, story, case):
    publish(app, story, 5)
    if case == "far behind":
        app.config["CATCHUP_WINDOW"] = 2
    rev = join(socket_client(), story, 0)["rev"]
    windows = socketio.server.manager.windows
    since = rev - 2
    if case == "lost event":  # a later revision arrived; the one before it never did
        windows.note("story", {"slug": story, "rev": rev + 2, "updated_at": None})
    elif case == "reader ahead":  # heard of a revision (from another process) not delivered here yet
        since = rev + 1
    elif case == "far behind":  # before the window's start (two revisions back)
        since = rev - 3
    else:  # the revision beacon read a revision the window never saw
        windows.confirm(story, rev + 1)
    with counted_queries(app) as statements:
        ack = join(socket_client(), story, since)
    assert statements, "answered from memory"
    assert ack["ok"] and ack["rev"] == rev


def test_a_window_keeps_its_newest_revisions_and_still_answers_like_the_database(app, socket_client, story):
    app.config["CATCHUP_WINDOW"] = 3
    rev = join(socket_client(), story, 0)["rev"]
    publish(app, story, 10)  # more than twice the window: the next answer trims it to three
    join(socket_client(), story, rev + 10)
    with counted_queries(app) as statements:
        ack = join(socket_client(), story, rev + 8)
    assert statements == [] and [e["rev"] for e in ack["entries"]] == [rev + 9, rev + 10]
    assert from_database(app, socket_client, story, rev + 8)["entries"] == ack["entries"]
    with counted_queries(app) as statements:
        assert len(join(socket_client(), story, rev + 6)["entries"]) == 4
    assert statements, "a reader behind the trimmed window's start reads the database"


def test_a_reader_further_behind_than_the_catch_up_limit_still_starts_over(app, socket_client, story):
    app.config["CATCHUP_LIMIT"] = 3
    rev = join(socket_client(), story, 0)["rev"]
    publish(app, story, 5)
    ack = join(socket_client(), story, rev)
    assert ack["reset"] is True
