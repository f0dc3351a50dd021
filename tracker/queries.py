"""Read-side queries shared by the reader, editor and socket code."""
from __future__ import annotations

import json
import re

from flask import abort, request
from sqlalchemy import func, select, tuple_

from .extensions import db
from .models import Entry, Story, UTCDateTime

KEY_EVENTS_LIMIT = 50


def story_or_404(slug: str) -> Story:
    """The story with this slug, or a 404."""
    story = db.session.scalar(select(Story).where(Story.slug == slug))
    if story is None:
        abort(404, description=f"There is no story at /stories/{slug}.")
    return story


def entry_or_404(entry_id: int, story: Story | None = None) -> Entry:
    """The entry with this id (in this story, when given), or a 404."""
    entry = db.session.get(Entry, entry_id)
    if entry is None or (story is not None and entry.story_id != story.id):
        abort(404, description="There is no such update.")
    return entry


def int_arg(name: str, default: int | None, low: int, high: int) -> int | None:
    """A whole-number query argument within [low, high], or a clear 400."""
    value = request.args.get(name, "")
    if not value:
        return default
    # At most 19 digits, so int() never meets Python's limit for huge digit strings.
    if not re.fullmatch(r"[0-9]{1,19}", value) or not low <= int(value) <= high:
        abort(400, description=f"'{name}' must be a whole number from {low} to {high}.")
    return int(value)


def cursor_arg() -> int | None:
    """The `before` query argument: the id of the last update already shown, or None."""
    value = request.args.get("before", "")
    if not value:
        return None
    if not re.fullmatch(r"[0-9]{1,18}", value):
        abort(400, description="'before' must be the id of an update.")
    return int(value)


def entry_page(story: Story, before: int | None = None, limit: int = 20,
               include_pinned: bool = False) -> tuple[list[Entry], int | None]:
    """Newest-first visible entries, optionally older than the entry `before`; returns (page, next cursor)."""
    query = select(Entry).where(Entry.story_id == story.id, Entry.deleted.is_(False))
    if not include_pinned:
        query = query.where(Entry.pinned.is_(False))
    if before is not None:
        cursor = db.session.get(Entry, before)
        if cursor is None or cursor.story_id != story.id:
            abort(400, description="'before' must be the id of an update in this story.")
        query = query.where(tuple_(Entry.created_at, Entry.id) < (cursor.created_at, cursor.id))
    rows = list(db.session.scalars(
        query.order_by(Entry.created_at.desc(), Entry.id.desc()).limit(limit + 1)))
    return rows[:limit], (rows[limit - 1].id if len(rows) > limit else None)


def entry_by_idempotency_key(story: Story, key: str) -> Entry | None:
    """The story's entry that was published with this idempotency key, if any."""
    return db.session.scalar(select(Entry).where(Entry.story_id == story.id, Entry.idempotency_key == key))


def pinned_entry(story: Story) -> Entry | None:
    """The story's pinned entry, if any."""
    return db.session.scalar(select(Entry).where(
        Entry.story_id == story.id, Entry.pinned.is_(True), Entry.deleted.is_(False)))


def key_events(story: Story) -> list[Entry]:
    """The story's key events, newest first."""
    return list(db.session.scalars(
        select(Entry).where(Entry.story_id == story.id, Entry.key.is_(True), Entry.deleted.is_(False))
        .order_by(Entry.created_at.desc(), Entry.id.desc()).limit(KEY_EVENTS_LIMIT)))


def stories_overview() -> list[tuple[Story, object, int]]:
    """Every story with the time of its latest visible entry and its entry count, live ones first."""
    latest = (select(Entry.story_id, func.max(Entry.created_at, type_=UTCDateTime).label("latest"),
                     func.count(Entry.id).label("count"))
              .where(Entry.deleted.is_(False)).group_by(Entry.story_id).subquery())
    rows = db.session.execute(
        select(Story, latest.c.latest, latest.c.count)
        .outerjoin(latest, latest.c.story_id == Story.id)
        .order_by((Story.status == "live").desc(),
                  func.coalesce(latest.c.latest, Story.created_at).desc()))
    return [(story, when or story.created_at, count or 0) for story, when, count in rows]



# Catch-up: entry states in revision order, for joins and GET /api/stories/<slug>/entries?after_rev=


def changes_after(story_id: int, since: int, most: int) -> int:
    """How many entries changed after revision `since`, counting no further than `most`."""
    changed = select(Entry.id).where(Entry.story_id == story_id, Entry.rev > since).limit(most)
    return db.session.scalar(select(func.count()).select_from(changed.subquery()))


def changes_page(story_id: int, since: int, max_bytes: int, most: int = 100) -> tuple[list[dict], int | None]:
    """Entry states changed after `since`, oldest first: at most `most`, about `max_bytes` of them
    (at least one); and the revision to ask from next when more remain, else None."""
    rows = db.session.scalars(select(Entry).where(Entry.story_id == story_id, Entry.rev > since)
                              .order_by(Entry.rev).limit(most + 1))
    page: list[dict] = []
    size = 0
    for entry in rows:
        state = entry.to_dict()
        size += len(json.dumps(state))  # as sent: non-ASCII text takes up to 6 bytes a character
        if page and (size > max_bytes or len(page) == most):
            return page, page[-1]["rev"]
        page.append(state)
    return page, None
