"""Read-side queries shared by the reader, editor and socket code."""
from __future__ import annotations

import json
from datetime import datetime, timedelta

from sqlalchemy import bindparam, func, select, tuple_

from .extensions import db
from .models import (
    PUBLISHED,
    SCHEDULED,
    DeskPresence,
    Entry,
    EntryMedia,
    Media,
    PushSubscription,
    Story,
    User,
    UTCDateTime,
    entry_state,
    media_state,
    utcnow,
)

KEY_EVENTS_LIMIT = 50
# What readers may see of a story: published entries that were not deleted. Unpublished ones
# exist only for the newsroom (see desk_entries).
VISIBLE = (Entry.status == PUBLISHED) & Entry.deleted.is_(False)


class UnknownCursor(LookupError):
    """A page was asked for after an entry that is not in the story."""


def story_by_slug(slug: str) -> Story | None:
    """The story with this slug, if any."""
    return db.session.scalar(select(Story).where(Story.slug == slug))


def entry_by_id(entry_id: int, story: Story | None = None, published: bool = False) -> Entry | None:
    """The entry with this id (in this story, when given; published, when asked), if any."""
    entry = db.session.get(Entry, entry_id)
    if entry is None or (story is not None and entry.story_id != story.id):
        return None
    return None if published and not entry.is_published else entry


def entry_page(story: Story, before: int | None = None, limit: int = 20, include_pinned: bool = False,
               after: int | None = None, oldest: bool = False) -> tuple[list[Entry], int | None]:
    """Visible entries, newest first and older than the entry `before` (when given); or with `oldest`,
    oldest first and newer than the entry `after`. Returns (page, next cursor): the cursor is the
    page's last entry when more remain, to pass as `before` (or `after`) for the next page.

    Raises UnknownCursor when the cursor is not an entry of the story.
    """
    query = select(Entry).where(Entry.story_id == story.id, VISIBLE)
    if not include_pinned:
        query = query.where(Entry.pinned.is_(False))
    cursor_id = after if oldest else before
    if cursor_id is not None:
        cursor = entry_by_id(cursor_id, story, published=True)
        if cursor is None:
            raise UnknownCursor(cursor_id)
        position = tuple_(Entry.created_at, Entry.id)
        query = query.where(position > (cursor.created_at, cursor.id) if oldest
                            else position < (cursor.created_at, cursor.id))
    order = (Entry.created_at, Entry.id) if oldest else (Entry.created_at.desc(), Entry.id.desc())
    rows = list(db.session.scalars(query.order_by(*order).limit(limit + 1)))
    return rows[:limit], (rows[limit - 1].id if len(rows) > limit else None)


def entry_by_idempotency_key(story: Story, key: str) -> Entry | None:
    """The story's entry that was published with this idempotency key, if any."""
    return db.session.scalar(select(Entry).where(Entry.story_id == story.id, Entry.idempotency_key == key))


def pinned_entry(story: Story) -> Entry | None:
    """The story's pinned entry, if any."""
    return db.session.scalar(select(Entry).where(Entry.story_id == story.id, Entry.pinned.is_(True), VISIBLE))


def key_events(story: Story) -> list[Entry]:
    """The story's key events, newest first."""
    return list(db.session.scalars(
        select(Entry).where(Entry.story_id == story.id, Entry.key_event.is_(True), VISIBLE)
        .order_by(Entry.created_at.desc(), Entry.id.desc()).limit(KEY_EVENTS_LIMIT)))


def stories_overview() -> list[tuple[Story, object, int]]:
    """Every story with the time of its latest visible entry and its entry count, live ones first."""
    latest = (select(Entry.story_id, func.max(Entry.created_at, type_=UTCDateTime).label("latest"),
                     func.count(Entry.id).label("count"))
              .where(VISIBLE).group_by(Entry.story_id).subquery())
    rows = db.session.execute(
        select(Story, latest.c.latest, latest.c.count)
        .outerjoin(latest, latest.c.story_id == Story.id)
        .order_by((Story.status == "live").desc(),
                  func.coalesce(latest.c.latest, Story.created_at).desc()))
    return [(story, when or story.created_at, count or 0) for story, when, count in rows]


def visible_entries(story: Story) -> list[Entry]:
    """Every entry readers see in the story, oldest first (for export)."""
    return list(db.session.scalars(select(Entry).where(Entry.story_id == story.id, VISIBLE)
                                   .order_by(Entry.created_at, Entry.id)))


# The desk: the newsroom's unpublished entries


def desk_entries(story: Story, author_id: int | None = None) -> list[Entry]:
    """The story's unpublished entries (only `author_id`'s, when given): the schedule in time order,
    then the rest, the latest changed first."""
    query = select(Entry).where(Entry.story_id == story.id, Entry.status != PUBLISHED, Entry.deleted.is_(False))
    if author_id is not None:
        query = query.where(Entry.author_id == author_id)
    return list(db.session.scalars(query.order_by(
        (Entry.status == SCHEDULED).desc(), Entry.publish_at, Entry.updated_at.desc(), Entry.id.desc())))


def desk_people(story_id: int, fades: int) -> dict:
    """Who is at a story's desk: `here`, their names; `people`, what each is doing (writing an
    update, correcting which entries). Rows older than `fades` seconds are not counted."""
    rows = db.session.execute(
        select(User.id, User.username, User.display_name, DeskPresence.doing)
        .join(DeskPresence, DeskPresence.user_id == User.id)
        .where(DeskPresence.story_id == story_id, DeskPresence.seen_at >= utcnow() - timedelta(seconds=fades))
        .order_by(User.id))
    people: dict[int, dict] = {}
    for user_id, username, display_name, doing in rows:
        person = people.setdefault(user_id, {"name": display_name or username, "writing": False, "correcting": []})
        if doing == "writing":
            person["writing"] = True
        elif doing.startswith("correcting:"):
            person["correcting"] = sorted({*person["correcting"], int(doing.partition(":")[2])})
    ordered = sorted(people.values(), key=lambda person: person["name"].casefold())
    return {"here": [person["name"] for person in ordered], "people": ordered}


def due_entries(now, most: int = 100) -> list[int]:
    """Ids of scheduled entries whose time has come, the earliest first."""
    return list(db.session.scalars(select(Entry.id).where(Entry.status == SCHEDULED, Entry.publish_at <= now,
                                                          Entry.deleted.is_(False))
                                   .order_by(Entry.publish_at, Entry.id).limit(most)))


# Catch-up: entry states in revision order, for joins and GET /api/stories/<slug>/entries?after_rev=


def changes_after(story_id: int, since: int, most: int) -> int:
    """How many entries changed after revision `since`, counting no further than `most`."""
    changed = select(Entry.id).where(Entry.story_id == story_id, Entry.rev > since,
                                     Entry.status == PUBLISHED).limit(most)
    return db.session.scalar(select(func.count()).select_from(changed.subquery()))


# Catch-up reads many rows at once (every reader after a restart): Core rows, built once, cost a
# third of ORM entities.
CHANGES = (select(Entry.id, Entry.rev, Entry.headline, Entry.html, Entry.byline, Entry.pinned,
                  Entry.key_event.label("key_event"), Entry.deleted, Entry.created_at, Entry.updated_at,
                  Entry.edited_at, Entry.status, Entry.publish_at, Entry.review_note, Entry.has_media,
                  Story.slug.label("story_slug"),
                  func.coalesce(func.nullif(User.display_name, ""), User.username).label("author_name"))
           .join(Story, Story.id == Entry.story_id).outerjoin(User, User.id == Entry.author_id)
           .where(Entry.story_id == bindparam("story"), Entry.rev > bindparam("since"), Entry.status == PUBLISHED)
           .order_by(Entry.rev).limit(bindparam("most")))


def _media_of(conn, entry_ids: list[int]) -> dict[int, list[dict]]:
    """The media states of these entries, in each entry's order (no query when there are none)."""
    found: dict[int, list[dict]] = {}
    if entry_ids:
        rows = conn.execute(select(EntryMedia.entry_id, *Media.__table__.c)
                            .join(Media, Media.id == EntryMedia.media_id).where(EntryMedia.entry_id.in_(entry_ids))
                            .order_by(EntryMedia.entry_id, EntryMedia.position))
        for row in rows:
            found.setdefault(row.entry_id, []).append(media_state(row))
    return found


def media_by_ids(ids: list[int]) -> dict[int, Media]:
    """The media with these ids (those that exist), by id."""
    return {media.id: media for media in db.session.scalars(select(Media).where(Media.id.in_(ids)))} if ids else {}


def unused_media(uploaded_before: datetime) -> list[Media]:
    """Images uploaded before this time that no entry (deleted ones too) and no story link to."""
    return list(db.session.scalars(
        select(Media).where(Media.created_at < uploaded_before,
                            ~select(EntryMedia.media_id).where(EntryMedia.media_id == Media.id).exists(),
                            ~select(Story.id).where(Story.image_media_id == Media.id).exists())
        .order_by(Media.id)))


def changes_page(story_id: int, since: int, max_bytes: int, most: int = 100) -> tuple[list[dict], int | None]:
    """Entry states changed after `since`, oldest first: at most `most`, about `max_bytes` of them
    (at least one); and the revision to ask from next when more remain, else None."""
    with db.engine.connect() as conn:
        rows = conn.execute(CHANGES, {"story": story_id, "since": since, "most": most + 1}).all()
        media = _media_of(conn, [row.id for row in rows if row.has_media and not row.deleted])
    page: list[dict] = []
    size = 0
    for row in rows:
        state = entry_state(row, row.story_slug, row.author_name, media.get(row.id, []))
        size += len(json.dumps(state))  # as sent: non-ASCII text takes up to 6 bytes a character
        if page and (size > max_bytes or len(page) == most):
            return page, page[-1]["rev"]
        page.append(state)
    return page, None


def has_push_subscriptions(story_id: int) -> bool:
    """Whether any browser is subscribed to the story's key events."""
    return db.session.scalar(select(PushSubscription.id).where(PushSubscription.story_id == story_id)
                             .limit(1)) is not None


def push_subscriptions(story_id: int) -> list[tuple[str, str, str]]:
    """Every subscription to the story's key events, as (endpoint, p256dh, auth)."""
    return [tuple(row) for row in db.session.execute(
        select(PushSubscription.endpoint, PushSubscription.p256dh, PushSubscription.auth)
        .where(PushSubscription.story_id == story_id).order_by(PushSubscription.id))]
