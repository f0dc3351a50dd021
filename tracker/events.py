"""Socket.IO: the join handshake readers use to catch up, and the one broadcast helper."""
from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager

from flask import Flask, current_app, request
from flask_login import current_user
from flask_socketio import join_room, leave_room
from sqlalchemy import bindparam, select

from . import fanout, guard, metrics, queries, readers
from .extensions import db, socketio
from .models import MAX_ID, MAX_REV, MAX_SLUG, SLUG_RE, Story, story_state

log = logging.getLogger(__name__)
ROOM_PREFIX = "story:"
DESK_PREFIX = "desk:"
EDITORS = "editors"  # the desk room every unpublished entry goes to (see desk_room)
# Every reader joins, so the join's lookup is built once and reads a plain row: building the
# statement, and loading an ORM object from the row, each cost more than running the query.
# (Everything else looks a story up with queries.story_by_slug.)
STORY_BY_SLUG = select(*Story.__table__.c).where(Story.slug == bindparam("slug"))
HANDLER_FAILED = "The server could not answer just now; try again in a moment."
JOIN_WAIT = 10  # seconds a join waits for a free slot before it is answered with HANDLER_FAILED
CATCHUP_PAGE_ENTRIES = 100  # entries in one catch-up page at most (queries.changes_page's default)


def room(story: Story | str) -> str:
    """The Socket.IO room of a story (by slug)."""
    return ROOM_PREFIX + (story if isinstance(story, str) else story.slug)


def desk_room(slug: str, writer: int | None = None) -> str:
    """A story's desk room (signed-in staff, see on_desk): everyone's, for presence; its editors',
    for every unpublished entry (`writer` "editors"); or one contributor's, for their own (their id)."""
    return DESK_PREFIX + slug + ("" if writer is None else f":{writer}")


def broadcast(item) -> None:
    """Send the full current state of a changed story or entry to everyone joined to its story;
    an unpublished entry's only to the desk's editors and its writer, as a `draft` event."""
    if isinstance(item, Story):
        socketio.emit("story", item.to_dict(), to=room(item))
    elif not item.is_published:
        state, slug = item.to_dict(), item.story.slug
        socketio.emit("draft", state, to=desk_room(slug, EDITORS))
        if item.author_id is not None:
            socketio.emit("draft", state, to=desk_room(slug, item.author_id))  # editors join only theirs
    else:
        socketio.emit("entry", item.to_dict(), to=room(item.story))


def broadcast_presence(slug: str, people: dict) -> None:
    """Tell everyone at a story's desk who is there now (see queries.desk_people)."""
    socketio.emit("presence", {"story": slug, **people}, to=desk_room(slug))


def _parse_join(data) -> tuple[str, int]:
    if not isinstance(data, dict):
        raise ValueError("join expects an object like {\"story\": \"slug\", \"since\": 0}.")
    slug, since = data.get("story"), data.get("since", 0)
    if not isinstance(slug, str) or not SLUG_RE.fullmatch(slug) or len(slug) > MAX_SLUG:
        raise ValueError("'story' must be a story slug.")
    if since is None:
        since = 0
    if isinstance(since, bool) or not isinstance(since, int) or not 0 <= since <= MAX_REV:
        raise ValueError("'since' must be a revision number (a whole number, 0 or more).")
    return slug, since


# Events each connection sent in the current minute: {sid: (minute, count)}.
_recent: dict[str, tuple[int, int]] = {}
# Stories each connection follows; kept here because asking the manager for a connection's
# rooms scans every room, one per connection, which made a storm of joins quadratic.
_following: dict[str, set[str]] = {}


def _over_rate(sid: str, config) -> bool:
    """Count this event; tell whether the connection sent more than allowed this minute."""
    minute = int(time.monotonic() // 60)
    seen, count = _recent.get(sid, (minute, 0))
    count = count + 1 if seen == minute else 1
    _recent[sid] = (minute, count)
    return count > config["SOCKET_EVENTS_PER_MINUTE"]


@socketio.on_error_default
def on_error(error: Exception):
    """A handler failed (the database is unreachable, say): log it and answer with an error ack."""
    return _failed(request.event["message"], error)


def _failed(event: str, error: Exception) -> dict:
    if not isinstance(error, JoinBusy):
        log.error("socket event %s failed: %r", event, error, exc_info=error)
        db.session.rollback()
    return {"ok": False, "error": HANDLER_FAILED}


def on_disconnect(sid: str, reason=None) -> None:
    """Forget the connection's event count and stories; tell its desk it left.

    Registered with python-socketio itself (create_app), as on_join is: every reader leaves, and
    the request context and session Flask-SocketIO makes for each event were a third of the cost
    of a reader leaving; only a desk's connection needs the app.
    """
    _recent.pop(sid, None)
    _following.pop(sid, None)
    if _at_desk.pop(sid, None) is None:
        return
    from . import services  # services broadcasts through this module

    environ = socketio.server.get_environ(sid)  # python-socketio forgets it after this handler
    with environ["flask.app"].app_context():
        try:
            services.leave_desk(sid, current_app.config["DESK_PRESENCE_SECONDS"])
        except Exception as error:  # the database is unreachable, say: logged, as any handler's
            _failed("disconnect", error)


def on_join(sid: str, data=None, *_ignored) -> dict:
    """Join a story's room, then return the first page of entry states changed after `since`.

    Registered with python-socketio itself (create_app), not through Flask-SocketIO: every reader
    joins, and the request context and session copy Flask-SocketIO makes for each event cost
    more than the join. Only a join the database answers gets an app context; most are
    answered from memory, and pushing one was 6 % of a reader's connect and join.
    """
    environ = socketio.server.get_environ(sid)
    try:
        if environ is None:
            return {"ok": False, "error": "This connection is closed."}
        app = environ["flask.app"]
        try:
            answer = _checked_join(app, sid, environ.get("REMOTE_ADDR") or "", data)
        except Exception as error:
            with app.app_context():
                answer = _failed("join", error)
        metrics.join_answered(answer)
        return answer
    finally:  # guard counted it in flight when its packet arrived (one at a time per connection)
        guard.join_answered(socketio.server.manager.eio_sid_from_sid(sid, "/"))


def _checked_join(app: Flask, sid: str, address: str, data) -> dict:
    if _over_rate(sid, app.config):
        return {"ok": False, "error": "Too many requests on this connection; wait a minute."}
    try:
        slug, since = _parse_join(data)
    except ValueError as exc:
        return {"ok": False, "error": str(exc)}
    if not guard.addresses(app).may_join(address):
        return {"ok": False, "error": "Too many joins from your address just now; try again in a moment."}
    return _join(app, sid, slug, since)


def _join(app: Flask, sid: str, slug: str, since: int) -> dict:
    if not socketio.server.manager.is_connected(sid, "/"):
        return {"ok": False, "error": "This connection is closed."}  # and _following stays clean
    config = app.config
    following = _following.setdefault(sid, set())
    most = config["MAX_ROOMS_PER_SOCKET"]
    new = slug not in following
    if new and len(following) >= most:
        return {"ok": False, "error": f"A connection may follow at most {most} stories; leave one first."}
    # Counted before the read, which may let other events of this connection run meanwhile.
    following.add(slug)
    # Join before the first read: anything committed later arrives as an event (at worst twice).
    socketio.server.enter_room(sid, room(slug))
    remembered = _remembered(config, slug, since)
    if remembered is not None:
        metrics.JOINS_FROM_MEMORY.inc()
        return {"ok": True, **remembered, "readers": readers.last_total(slug)}
    with app.app_context(), _reading():
        with db.engine.connect() as conn:  # without the ORM session, which costs 3x the query itself
            story = conn.execute(STORY_BY_SLUG, {"slug": slug}).first()
        if story is None:
            socketio.server.leave_room(sid, room(slug))
            if new:
                following.discard(slug)
            return {"ok": False, "error": f"There is no story '{slug}'."}
        _remember(config, story)
        ack = {"ok": True, "rev": story.rev, "story": story_state(story), "entries": [],
               "readers": readers.last_total(slug)}
        if since >= story.rev:  # an up-to-date reader (the usual reconnect) needs no entry query
            return ack
        entries, after = queries.changes_page(story.id, since, config["CATCHUP_PAGE_BYTES"])
        most = config["CATCHUP_LIMIT"]
        # Counted only past one page: a reader one update behind (after a restart, all of them) costs one query.
        if (after is not None or len(entries) > most) and queries.changes_after(story.id, since, most + 1) > most:
            # Too far behind to replay: send the current first page and tell the client to start over.
            page, _ = queries.entry_page(story, include_pinned=True)
            return {**ack, "reset": True, "entries": [entry.to_dict() for entry in reversed(page)]}
        return {**ack, "entries": entries, **({"next_after_rev": after} if after is not None else {})}


def _windows(config):
    """This process's windows of recent changes (tracker.recent), or None when they are off.

    Only tracker.fanout's managers see every delivery, which keeps the windows true."""
    manager = socketio.server.manager
    return manager.windows if config["CATCHUP_WINDOW"] and isinstance(manager, fanout.FanoutManager) else None


def _remembered(config, slug: str, since: int) -> dict | None:
    """The join's answer from the story's recent changes in memory, if they can give it."""
    windows = _windows(config)
    # More than CATCHUP_LIMIT behind is a reset, which the database path answers.
    most = min(CATCHUP_PAGE_ENTRIES, config["CATCHUP_LIMIT"])
    return windows and windows.answer(slug, since, most, config["CATCHUP_PAGE_BYTES"], config["CATCHUP_WINDOW"])


def _remember(config, story) -> None:
    """Start the story's window of recent changes, on its first join in this process."""
    windows, keep = _windows(config), config["CATCHUP_WINDOW"]
    window = windows and windows.open(story.slug, story_state(story))
    if not window:
        return
    try:
        start = max(0, story.rev - keep)
        entries, _ = queries.changes_page(story.id, start, max_bytes=1 << 62, most=keep)
    except Exception:
        windows.forget(story.slug, window)
        raise
    windows.fill(window, story_state(story), entries, start)


@contextmanager
def _reading():
    """Hold one of the process's join slots: joins never take more than half the database pool."""
    slots = current_app.extensions.setdefault(
        "tracker.join_slots", threading.BoundedSemaphore(max(1, current_app.config["DB_POOL_SIZE"] // 2)))
    if not slots.acquire(timeout=JOIN_WAIT):
        raise JoinBusy
    try:
        yield
    finally:
        slots.release()


class JoinBusy(Exception):
    """Every join slot stayed taken while the join waited."""


# The desk each connection of this process is at (so a reader's disconnect costs no query).
_at_desk: dict[str, str] = {}
DESK_REFUSAL = "Sign in to the newsroom to see who is on a story's desk."


def _parse_desk(data) -> tuple[str, str]:
    if not isinstance(data, dict):
        raise ValueError("desk expects an object like {\"story\": \"slug\", \"doing\": \"writing\"}.")
    slug, doing, entry = data.get("story"), data.get("doing") or "", data.get("entry")
    if not isinstance(slug, str) or not SLUG_RE.fullmatch(slug) or len(slug) > MAX_SLUG:
        raise ValueError("'story' must be a story slug.")
    if doing not in ("", "writing", "correcting"):
        raise ValueError("'doing' must be \"writing\", \"correcting\" or left out.")
    if doing == "correcting":
        if isinstance(entry, bool) or not isinstance(entry, int) or not 0 < entry <= MAX_ID:
            raise ValueError("'entry' must be the id of the update being corrected.")
        doing = f"correcting:{entry}"
    return slug, doing


@socketio.on("desk")
def on_desk(data=None):
    """A signed-in person's editor page: be at the story's desk (its drafts and who is there, live);
    say again now and then, and when starting or stopping writing or correcting. Acks who is here."""
    if _over_rate(request.sid, current_app.config):
        return {"ok": False, "error": "Too many requests on this connection; wait a minute."}
    if not current_user.is_authenticated:
        return {"ok": False, "error": DESK_REFUSAL}
    try:
        slug, doing = _parse_desk(data)
    except ValueError as exc:
        return {"ok": False, "error": str(exc)}
    story = queries.story_by_slug(slug)
    if story is None:
        return {"ok": False, "error": f"There is no story '{slug}'."}
    from . import services  # services broadcasts through this module

    drafts = EDITORS if current_user.may_publish else current_user.id  # a contributor's: their own
    left = _at_desk.get(request.sid)
    if left is not None and left != slug:
        leave_room(desk_room(left))
        leave_room(desk_room(left, drafts))
    join_room(desk_room(slug))
    join_room(desk_room(slug, drafts))
    _at_desk[request.sid] = slug
    people = services.be_at_desk(request.sid, story, current_user, doing, current_app.config["DESK_PRESENCE_SECONDS"])
    return {"ok": True, **people}


@socketio.on("*")
def on_unknown(event, *args):
    """Any event this server does not know: a bad request, said in the ack."""
    name = event if isinstance(event, str) else repr(event)
    return {"ok": False, "error": f"Bad request: the server does not know the event '{name[:40]}'."}


@socketio.on("leave")
def on_leave(data=None):
    """Stop receiving a story's events."""
    if _over_rate(request.sid, current_app.config):
        return {"ok": False, "error": "Too many requests on this connection; wait a minute."}
    slug = data.get("story") if isinstance(data, dict) else None
    if not isinstance(slug, str):
        return {"ok": False, "error": "'story' must be a story slug."}
    leave_room(room(slug))
    _following.get(request.sid, set()).discard(slug)
    return {"ok": True}


def rev_beacon(app: Flask) -> None:
    """Now and then tell this process's readers each joined story's revision.

    A reader that missed events (the message queue was down, a publish was lost) sees that it
    is behind and joins again. The beacon skips the queue, so it works during a queue outage.
    """
    interval = app.config["REV_BEACON_SECONDS"]
    while interval > 0:
        socketio.sleep(interval)
        try:
            with app.app_context():
                open_rooms = list(socketio.server.manager.rooms.get("/", {}))
                slugs = [name[len(ROOM_PREFIX):] for name in open_rooms if name and name.startswith(ROOM_PREFIX)]
                windows = _windows(app.config)
                if slugs:
                    revs = db.session.execute(select(Story.slug, Story.rev).where(Story.slug.in_(slugs))).all()
                    db.session.remove()
                    for slug, rev in revs:
                        if windows:  # before readers behind it join again
                            windows.confirm(slug, rev)
                        socketio.emit("rev", {"story": slug, "rev": rev}, to=room(slug), ignore_queue=True)
        except Exception:
            log.exception("revision beacon failed; trying again in %s s", interval)
