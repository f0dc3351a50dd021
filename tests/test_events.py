"""Socket.IO: the join handshake, its errors, and live events after changes."""
import pytest
from flask import request
from helpers import JSON, form_page, login, make_user, post_entry
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from tracker import services
from tracker.events import HANDLER_FAILED
from tracker.extensions import db, socketio
from tracker.models import User
from tracker.web import entry_or_404, story_or_404


def join(sio, payload):
    return sio.emit("join", payload, callback=True)


def received(sio, name):
    return [event["args"][0] for event in sio.get_received() if event["name"] == name]


def test_join_returns_state_and_entries_after_since(app, socket_client, story):
    with app.test_request_context():
        s = story_or_404(story)
        first = services.append_entry(s, "One")[0].id
        second = services.append_entry(s, "Two")[0].id
    sio = socket_client()
    ack = join(sio, {"story": story, "since": 0})
    assert ack["ok"] is True and ack["rev"] == 3
    assert ack["story"]["slug"] == story and ack["story"]["rev"] == 3
    assert [e["id"] for e in ack["entries"]] == [first, second]
    entry = ack["entries"][0]
    assert set(entry) >= {"id", "rev", "story", "headline", "html", "author", "created_at", "updated_at",
                          "pinned", "key", "deleted"}
    assert join(sio, {"story": story, "since": 2})["entries"][0]["id"] == second
    assert join(sio, {"story": story, "since": 3})["entries"] == []


def test_join_without_since_means_from_the_start(app, socket_client, story):
    with app.test_request_context():
        services.append_entry(story_or_404(story), "One")
    assert len(join(socket_client(), {"story": story})["entries"]) == 1


@pytest.mark.parametrize("payload, message", [
    ({"story": "nope", "since": 0}, "There is no story 'nope'."),
    ("storm", "join expects an object"),
    (None, "join expects an object"),
    (["not", "an", "object"], "join expects an object"),
    ({"since": 0}, "'story' must be a story slug."),
    ({"story": 5}, "'story' must be a story slug."),
    ({"story": "s" * 500}, "'story' must be a story slug."),
    ({"story": "x", "since": -1}, "'since' must be a revision number"),
    ({"story": "x", "since": "3"}, "'since' must be a revision number"),
    ({"story": "x", "since": True}, "'since' must be a revision number"),
    ({"story": "x", "since": 1.5}, "'since' must be a revision number"),
])
def test_bad_joins_are_acked_with_an_error(socket_client, story, payload, message):
    sio = socket_client()
    ack = join(sio, payload)
    assert ack["ok"] is False and ack["error"].startswith(message)
    assert sio.is_connected()


def test_joined_clients_receive_entry_events(app, editor_client, socket_client, story):
    reader = socket_client()
    join(reader, {"story": story, "since": 0})
    reader.get_received()
    post_entry(editor_client, story, "Evacuation ordered", "Evacuation", headers=JSON)
    [entry] = received(reader, "entry")
    assert entry["headline"] == "Evacuation" and entry["html"] == "<p>Evacuation ordered</p>\n"
    assert entry["rev"] == 2 and entry["author"] == "alice" and entry["deleted"] is False


def test_clients_of_other_stories_receive_nothing(app, editor_client, socket_client, story):
    with app.test_request_context():
        other = services.create_story("Other story").slug
    reader = socket_client()
    join(reader, {"story": other, "since": 0})
    reader.get_received()
    post_entry(editor_client, story, "Not for you", headers=JSON)
    assert received(reader, "entry") == []


def test_edit_delete_pin_and_story_events(app, editor_client, socket_client, story):
    reader = socket_client()
    join(reader, {"story": story, "since": 0})
    entry_id = post_entry(editor_client, story, "Draft", headers=JSON).get_json()["entry"]["id"]
    with app.test_request_context():
        entry = entry_or_404(entry_id)
        services.edit_entry(entry, "Final")
        services.set_pinned(entry, True)
        services.delete_entry(entry)
        services.set_status(story_or_404(story), "ended")
    events = [(event["name"], event["args"][0]) for event in reader.get_received()]
    assert [(name, state["rev"]) for name, state in events] == [
        ("entry", 2), ("entry", 3), ("entry", 4), ("entry", 5), ("story", 6)]
    assert events[1][1]["html"] == "<p>Final</p>\n" and events[1][1]["edited_at"]
    assert events[2][1]["pinned"] is True
    assert events[3][1]["deleted"] is True and events[3][1]["html"] == ""
    assert events[4][1]["status"] == "ended"


def test_story_event_on_end(app, editor_client, socket_client, story):
    reader = socket_client()
    join(reader, {"story": story, "since": 0})
    token, _ = form_page(editor_client, f"/editor/stories/{story}")
    editor_client.post(f"/editor/stories/{story}/status", data={"csrf_token": token, "status": "ended"})
    [state] = received(reader, "story")
    assert state["status"] == "ended" and state["rev"] == 2 and state["ended_at"]


def test_leave_stops_events(app, editor_client, socket_client, story):
    reader = socket_client()
    join(reader, {"story": story, "since": 0})
    assert reader.emit("leave", {"story": story}, callback=True) == {"ok": True}
    post_entry(editor_client, story, "Quiet", headers=JSON)
    assert received(reader, "entry") == []


def test_huge_since_is_an_error_ack_not_a_crash(socket_client, story):
    sio = socket_client()
    ack = join(sio, {"story": story, "since": 2**64})
    assert ack["ok"] is False and "'since'" in ack["error"]


def test_client_too_far_behind_gets_a_reset_page(app, socket_client, story):
    app.config["CATCHUP_LIMIT"] = 3
    with app.test_request_context():
        s = story_or_404(story)
        ids = [services.append_entry(s, f"Update {n}")[0].id for n in range(25)]
    ack = join(socket_client(), {"story": story, "since": 0})
    assert ack["ok"] is True and ack["reset"] is True and ack["rev"] == 26
    assert [e["id"] for e in ack["entries"]] == ids[5:]
    small = join(socket_client(), {"story": story, "since": 23})
    assert "reset" not in small and [e["id"] for e in small["entries"]] == ids[-3:]


@pytest.mark.parametrize("slug", ["\ud800", "UPPER", "a/b", "-x"])
def test_join_with_an_impossible_slug_is_an_error_ack(socket_client, slug):
    ack = join(socket_client(), {"story": slug, "since": 0})
    assert ack == {"ok": False, "error": "'story' must be a story slug."}


def test_a_connection_may_follow_a_limited_number_of_stories(app, socket_client):
    app.config["MAX_ROOMS_PER_SOCKET"] = 2
    with app.test_request_context():
        slugs = [services.create_story(f"Story {n}").slug for n in range(3)]
    sio = socket_client()
    assert join(sio, {"story": slugs[0]})["ok"] and join(sio, {"story": slugs[1]})["ok"]
    assert join(sio, {"story": slugs[0], "since": 1})["ok"]  # rejoining a followed story is fine
    refused = join(sio, {"story": slugs[2]})
    assert refused["ok"] is False and "at most 2 stories" in refused["error"]
    sio.emit("leave", {"story": slugs[0]}, callback=True)
    assert join(sio, {"story": slugs[2]})["ok"]


def test_a_connection_sending_too_many_events_gets_error_acks(app, socket_client, story):
    app.config["SOCKET_EVENTS_PER_MINUTE"] = 5
    sio = socket_client()
    acks = [join(sio, {"story": story}) for _ in range(7)]
    assert [ack["ok"] for ack in acks] == [True] * 5 + [False] * 2
    assert acks[-1]["error"].startswith("Too many requests") and sio.is_connected()
    assert join(socket_client(), {"story": story})["ok"]  # other connections are not affected


@pytest.mark.parametrize("headers", [{}, {"Upgrade": "websocket", "Connection": "Upgrade"}],
                         ids=["polling", "websocket"])
def test_event_request_context_matches_a_rule(app, headers):
    """Handlers run in a request context for the Socket.IO path; a routing error there is a
    NotFound with its traceback in every connection's context, which only the GC frees."""
    with app.test_request_context("/socket.io/?EIO=4&transport=websocket", headers=headers):
        assert request.routing_exception is None


def test_join_while_the_database_is_unreachable_gets_an_error_ack(app, socket_client, story, monkeypatch):
    def unreachable(*args, **kwargs):
        raise OperationalError("SELECT", {}, Exception("connection refused"))

    sio = socket_client()
    with app.app_context():
        monkeypatch.setattr(db.engine, "connect", unreachable)
    ack = join(sio, {"story": story, "since": 0})
    assert ack == {"ok": False, "error": HANDLER_FAILED}
    monkeypatch.undo()
    assert sio.is_connected() and join(sio, {"story": story, "since": 0})["ok"] is True


# The desk: presence and unpublished entries, for signed-in staff only

def desk(sio, story, **doing):
    return sio.emit("desk", {"story": story, **doing}, callback=True)


def test_desk_presence_comes_and_goes_and_anonymous_connections_get_nothing(app, client, story, socket_client):
    make_user(app, "alice", "editor")
    make_user(app, "cole", "contributor")
    with app.test_request_context():
        services.change_user(db.session.scalar(select(User).where(User.username == "cole")), display_name="Cole Ray")
    anonymous = socket_client()
    assert desk(anonymous, story) == {"ok": False, "error": "Sign in to the newsroom to see who is on a story's desk."}
    assert login(client, "alice").status_code == 302
    alice = socket_client()
    assert desk(alice, story) == {"ok": True, "here": ["alice"],
                                  "people": [{"name": "alice", "writing": False, "correcting": []}]}
    other = app.test_client()
    assert login(other, "cole").status_code == 302
    cole = socketio.test_client(app, flask_test_client=other)
    assert desk(cole, story, doing="writing")["here"] == ["alice", "Cole Ray"]
    assert received(alice, "presence")[-1]["people"][1] == {"name": "Cole Ray", "writing": True, "correcting": []}
    assert desk(cole, story, doing="correcting", entry=7)["people"][1]["correcting"] == [7]
    assert desk(cole, story, doing="shouting")["ok"] is False
    with app.test_request_context():
        desks, coles = (services.append_entry(story_or_404(story), text, status="draft", author=author)[0].id
                        for text, author in (("The desk's.", None), ("Cole's.", db.session.scalar(
                            select(User).where(User.username == "cole")))))
    assert [e["id"] for e in received(alice, "draft")] == [desks, coles], "editors get every draft"
    assert [e["id"] for e in received(cole, "draft")] == [coles], "a contributor gets their own"
    assert received(anonymous, "draft") == [] and received(anonymous, "presence") == []
    cole.disconnect()
    assert received(alice, "presence")[-1] == {"story": story, "here": ["alice"],
                                               "people": [{"name": "alice", "writing": False, "correcting": []}]}
