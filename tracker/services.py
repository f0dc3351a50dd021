"""Domain operations: the single path for every change, used by form views, API and CLI.

Each operation validates everything first, then applies its changes in one transaction, gives
each changed row the story's next revision once, commits, and only then broadcasts each row once.
"""
from __future__ import annotations

import hashlib
import logging
import re
import secrets
import threading
import time
import unicodedata
from contextlib import contextmanager
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm.attributes import set_committed_value

from . import images, metrics, push, storage
from .events import broadcast, broadcast_presence
from .extensions import db
from .i18n import DEFAULT_LANGUAGE, LANGUAGES
from .models import (
    DRAFT,
    MAX_ALT,
    MAX_BODY,
    MAX_BYLINE,
    MAX_CAPTION,
    MAX_CREDIT,
    MAX_DISPLAY_NAME,
    MAX_HEADLINE,
    MAX_ID,
    MAX_IMAGE_URL,
    MAX_MEDIA_PER_ENTRY,
    MAX_NOTE,
    MAX_SLUG,
    MAX_SUMMARY,
    MAX_TAGS,
    MAX_TITLE,
    ORDERS,
    PUBLISHED,
    ROLES,
    SCHEDULED,
    SLUG_RE,
    STATUSES,
    SUBMITTED,
    ApiToken,
    DeskPresence,
    Entry,
    EntryMedia,
    EntryVersion,
    Media,
    PushSubscription,
    Story,
    User,
    utcnow,
)
from .queries import desk_people, due_entries, entry_by_idempotency_key, media_by_ids, story_by_slug, unused_media
from .sanitize import clean_body, clean_text, render_markdown

log = logging.getLogger(__name__)


class ServiceError(ValueError):
    """A change refused for a reason a person can act on; `field` names the form field."""

    def __init__(self, message: str, field: str | None = None, status: int = 400):
        super().__init__(message)
        self.message = message
        self.field = field
        self.status = status


# The one message for every change a contributor may not make.
CONTRIBUTOR_REFUSAL = ("Contributors write drafts and submit them for review; publishing, scheduling and "
                       "changing published updates and stories is for editors. Ask an editor.")


class Changed(ServiceError):
    """The entry changed since the version a correction started from; `current` is the entry now."""

    def __init__(self, current: Entry):
        who = current.editor.name if current.editor else "Someone else"
        super().__init__(f"{who} changed this update after you started; nothing was saved. The update as it is "
                         "now is shown; copy what you need from yours, then save again.", None, 412)
        self.current = current


def _require(value: str, field: str, label: str, limit: int) -> str:
    if not value:
        raise ServiceError(f"{label} is required.", field)
    return _limit(value, field, label, limit)


def _limit(value: str, field: str, label: str, limit: int) -> str:
    if len(value) > limit:
        raise ServiceError(f"{label} is too long: {len(value):,} characters, the limit is {limit:,}.", field, 413)
    return value


def slugify(text: str) -> str:
    """Derive a URL slug from a title."""
    letters = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return re.sub(r"[^a-z0-9]+", "-", letters.lower()).strip("-")[:MAX_SLUG].strip("-")


def _image_url(value: str) -> str:
    value = _limit(clean_text(value), "image_url", "Image URL", MAX_IMAGE_URL)
    try:
        parts = urlsplit(value)
    except ValueError:  # e.g. "http://[" or a fullwidth character in the host
        parts = None
    if value and (parts is None or parts.scheme not in ("http", "https") or not parts.netloc):
        raise ServiceError("Image URL must be an http:// or https:// address.", "image_url")
    return value


def _next_rev(story: Story) -> int:
    """Take the story's next revision with one atomic UPDATE ... RETURNING (locks the row)."""
    rev = db.session.execute(
        update(Story).where(Story.id == story.id).values(rev=Story.rev + 1).returning(Story.rev),
        execution_options={"synchronize_session": False},
    ).scalar_one()
    set_committed_value(story, "rev", rev)
    return rev


class _BroadcastTurns:
    """Changes to one story leave this process as events in revision order.

    A change takes its revisions under the story's lock but commits and broadcasts after
    releasing it; under eventlet (which makes psycopg2 cooperative) the next change can commit
    and broadcast while the previous one is still reading what it sends. So each change waits
    until the changes with lower revisions taken in this process have broadcast (or failed).
    A change that rolls back gives its revisions back and the next change takes the same
    numbers, so two turns may hold one number: each change holds its own entry in a list.
    """

    def __init__(self, patience: float = 5.0):
        self.patience = patience  # after this long, send anyway: readers order by rev regardless
        self.pending: dict[int, list[int]] = {}  # story id -> lowest revision of each unsent change
        self.changed = threading.Condition()

    def take(self, story_id: int, rev: int) -> None:
        with self.changed:
            self.pending.setdefault(story_id, []).append(rev)

    def wait(self, story_id: int, rev: int) -> None:
        with self.changed:
            self.changed.wait_for(lambda: min(self.pending.get(story_id, [rev])) >= rev, timeout=self.patience)

    def done(self, story_id: int, rev: int) -> None:
        with self.changed:
            turns = self.pending.get(story_id, [])
            if rev in turns:
                turns.remove(rev)
            if not turns:
                self.pending.pop(story_id, None)
            self.changed.notify_all()


_turns = _BroadcastTurns()
_UNIT = "tracker.unit"  # key of the open unit of work in db.session.info


class _Unit:
    """One transaction's work: the rows it changed, and the broadcast turn it holds per story."""

    def __init__(self):
        self.changed: list[Story | Entry] = []
        self.turns: dict[int, int] = {}  # story id -> lowest revision taken
        self.revs: list[int] = []  # the changed rows' revisions, read before the commit expires them
        self.pushes: list[int] = []  # the entries claimed for Web Push (see push.claim)
        self.committed_at = 0.0  # time.perf_counter() right after the commit

    def take_turn(self, story_id: int, rev: int) -> None:
        if story_id not in self.turns:  # later revisions of the same story are higher
            self.turns[story_id] = rev
            _turns.take(story_id, rev)


@contextmanager
def atomic():
    """Make every service call inside one transaction: all or nothing, broadcast after the commit.

    Nested calls join the outer transaction. Once the commit succeeded nothing can fail the
    caller: the change is saved, so it is answered and broadcast, and a failure is only logged.
    """
    if _UNIT in db.session.info:
        yield db.session.info[_UNIT]
        return
    unit = db.session.info[_UNIT] = _Unit()
    try:
        try:
            yield unit
            unit.revs = [item.rev for item in unit.changed]  # for the log, without a reload
            db.session.commit()
            unit.committed_at = time.perf_counter()  # publish-to-send time starts here
        except OperationalError as exc:
            db.session.rollback()
            log.error("database refused a change: %s", exc)
            raise ServiceError("The database is busy right now. Nothing was saved; please try again.",
                               None, 503) from None
        except BaseException:
            db.session.rollback()
            raise
        finally:
            del db.session.info[_UNIT]
        _announce(unit)
    finally:
        for story_id, rev in unit.turns.items():
            _turns.done(story_id, rev)


def _announce(unit: _Unit) -> None:
    """Broadcast a committed unit's changed rows, after the changes with lower revisions, then start pushing
    the key events it claimed; never raises."""
    try:
        for story_id, rev in unit.turns.items():
            _turns.wait(story_id, rev)
    except Exception:
        log.exception("waiting for the broadcast turn failed; broadcasting anyway")
    for item, rev in zip(unit.changed, unit.revs, strict=True):
        try:
            broadcast(item)
            if rev > 0:  # what readers see (drafts go to the desk): commit to handed to the sockets
                metrics.PUBLISH_TO_SEND.observe(time.perf_counter() - unit.committed_at)
        except Exception:
            # The change is saved; readers pick it up through the revision join on reconnect.
            log.exception("broadcast of %s rev %s failed", type(item).__name__, rev)
    if unit.pushes:  # after the broadcasts: pushes never delay a reader's page
        push.send_later(unit.pushes)


@contextmanager
def _story_change(story: Story):
    """Lock the story and collect the rows a change touches, inside the current unit of work
    (which commits, then broadcasts them).

    Every change locks its story's row first, before touching any entry row, so concurrent
    changes to one story queue up in the same order and can never deadlock. The lock is
    taken before any revision, so revisions are taken in commit order, and `_turns` keeps the
    broadcasts in that order too.
    """
    story_id = story.id
    with atomic() as unit:
        db.session.execute(select(Story.id).where(Story.id == story_id).with_for_update())
        first = len(unit.changed)
        yield unit.changed
        public = [item.rev for item in unit.changed[first:] if item.rev > 0]  # drafts' are negative
        if public:
            unit.take_turn(story_id, min(public))
            unit.pushes += push.claim(story_id, unit.changed[first:])


def _take_revision(changed: list, item: Story | Entry, story: Story) -> None:
    """Give a changed row the story's next revision and time, and count it for the broadcast.

    An unpublished entry counts its own changes below zero instead: readers never see it, so it
    must not take a revision of their stream (events.broadcast sends it to the desk only).
    """
    if isinstance(item, Entry) and not item.is_published:
        item.rev = min(item.rev or 0, 0) - 1
        item.updated_at = utcnow()
    else:
        item.rev = _next_rev(story)
        item.updated_at = utcnow()
        if item is not story:
            story.updated_at = item.updated_at
    changed.append(item)


def normalize_tags(value: str | list | tuple | None) -> str:
    """Tags as stored: from a list or a comma-separated string, trimmed, without repeats, comma-joined."""
    if value is None:
        return ""
    items = value if isinstance(value, list | tuple) else [value]
    tags: list[str] = []
    for item in items:
        for tag in str(item if item is not None else "").split(","):
            tag = " ".join(clean_text(tag).split())
            if tag and tag.casefold() not in (seen.casefold() for seen in tags):
                tags.append(tag)
    return _limit(",".join(tags), "tags", "Tags", MAX_TAGS)


# Stories

def create_story(title: str, summary: str = "", slug: str = "", image_url: str = "",
                 status: str = "live", tags: str | list = "", created_at: datetime | None = None,
                 image_media: int | None = None, order: str = "newest", language: str = DEFAULT_LANGUAGE) -> Story:
    """Create a story; the slug is derived from the title when left empty."""
    title = _require(clean_text(title), "title", "Title", MAX_TITLE)
    # A title with no Latin letters or digits still gets an address.
    slug = clean_text(slug).lower() or slugify(title) or f"story-{secrets.token_hex(3)}"
    if not SLUG_RE.match(slug) or len(slug) > MAX_SLUG:
        raise ServiceError("Slug may contain only lowercase letters, digits and single hyphens.", "slug")
    if story_by_slug(slug) is not None:
        raise ServiceError(f"The slug '{slug}' is already taken.", "slug", 409)
    _check_status(status)
    now = utcnow()
    story = Story(title=title, slug=slug, status=status, order=_check_order(order), language=_check_language(language),
                  rev=1, tags=normalize_tags(tags),
                  summary=_limit(clean_text(summary), "summary", "Summary", MAX_SUMMARY),
                  image_url=_image_url(image_url), ended_at=now if status == "ended" else None,
                  created_at=created_at or now, updated_at=now,
                  image_media_id=None if image_media is None else _lead_image(image_media))
    try:
        with atomic():
            db.session.add(story)
            db.session.flush()
    except IntegrityError:
        raise ServiceError(f"The slug '{slug}' is already taken.", "slug", 409) from None
    return story


def update_story(story: Story, title: str, summary: str = "", image_url: str = "",
                 tags: str | list | None = None, image_media: int | None = None, order: str | None = None,
                 language: str | None = None) -> Story:
    """Change a story's title, summary, lead image or (unless None) tags, uploaded lead image, order and language."""
    return change_story(story, title=title, summary=summary, image_url=image_url, tags=tags, image_media=image_media,
                        order=order, language=language)


def set_status(story: Story, status: str) -> Story:
    """End or reopen a story."""
    return change_story(story, status=status)


def change_story(story: Story, title: str | None = None, summary: str | None = None, image_url: str | None = None,
                 tags: str | list | None = None, status: str | None = None, image_media: int | None = None,
                 order: str | None = None, language: str | None = None) -> Story:
    """Change any of a story's fields (None keeps one): all or nothing, one revision if anything changed."""
    values = {}
    if title is not None:
        values["title"] = _require(clean_text(title), "title", "Title", MAX_TITLE)
    if summary is not None:
        values["summary"] = _limit(clean_text(summary), "summary", "Summary", MAX_SUMMARY)
    if image_url is not None:
        values["image_url"] = _image_url(image_url)
    if tags is not None:
        values["tags"] = normalize_tags(tags)
    if status is not None:
        values["status"] = _check_status(status)
    if image_media is not None:
        values["image_media_id"] = _lead_image(image_media)
    if order is not None:
        values["order"] = _check_order(order)
    if language is not None:
        values["language"] = _check_language(language)
    values = {name: value for name, value in values.items() if getattr(story, name) != value}
    if not values:
        return story
    with _story_change(story) as changed:
        for name, value in values.items():
            setattr(story, name, value)
        if "status" in values:
            story.ended_at = utcnow() if story.status == "ended" else None
        _take_revision(changed, story, story)
    return story


def _lead_image(media_id) -> int:
    if type(media_id) is not int or not 0 < media_id <= MAX_ID or not media_by_ids([media_id]):
        raise ServiceError(f"There is no media with id {media_id}; upload it first.", "image_media")
    return media_id


def _check_order(order: str) -> str:
    if order not in ORDERS:
        raise ServiceError("Order must be 'newest' or 'oldest'.", "order")
    return order


def _check_language(language: str) -> str:
    if language not in LANGUAGES:
        raise ServiceError(f"Language must be one of {', '.join(LANGUAGES)}.", "language")
    return language


def _check_status(status: str) -> str:
    if status not in STATUSES:
        raise ServiceError("Status must be 'live' or 'ended'.", "status")
    return status


# Entries

def _entry_text(body: str, headline: str) -> tuple[str, str]:
    body = clean_body(body)
    if not clean_text(body):
        raise ServiceError("Write the update before publishing it.", "body")
    body = _limit(body, "body", "The update", MAX_BODY)
    return body, _limit(clean_text(headline), "headline", "Headline", MAX_HEADLINE)


def _byline(value: str | None) -> str:
    return _limit(" ".join(clean_text(value).split()), "byline", "Byline", MAX_BYLINE)


def _unpin_others(changed: list, story: Story, keep: Entry | None) -> None:
    """Only one published entry is pinned at a time; pinning another unpins it (a change of its own)."""
    for other in db.session.scalars(select(Entry).where(Entry.story_id == story.id, Entry.pinned,
                                                        Entry.status == PUBLISHED)):
        if other is not keep:
            other.pinned = False
            _take_revision(changed, other, story)


def _contributor(by: User | None) -> bool:
    """Whether the person acting is a contributor (None: a newsroom tool or the CLI, with editor rights)."""
    return by is not None and not by.may_publish


def _publisher(by: User | None) -> None:
    if _contributor(by):
        raise ServiceError(CONTRIBUTOR_REFUSAL, None, 403)


def publish_time(value: str | datetime | None) -> datetime | None:
    """A scheduled time: ISO 8601 with a zone (or an aware datetime), in the future; None for none."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ServiceError("publish_at must be a date and time in ISO 8601, like 2026-12-01T09:30:00+01:00.",
                               "publish_at") from None
    if value.tzinfo is None:
        raise ServiceError("publish_at needs a time zone, like 2026-12-01T09:30:00Z or +01:00 at the end.",
                           "publish_at")
    if value <= utcnow():
        raise ServiceError("publish_at must be in the future; to publish now, publish.", "publish_at")
    return value


def _new_state(status: str | None, publish_at: datetime | None, by: User | None) -> str:
    """The state a new entry starts in: as asked, else published (submitted for a contributor)."""
    if status is None:
        status = SCHEDULED if publish_at else SUBMITTED if _contributor(by) else PUBLISHED
    if status not in (PUBLISHED, DRAFT, SUBMITTED, SCHEDULED):
        raise ServiceError("Status must be 'draft', 'submitted' or 'published' (or send publish_at to schedule).",
                           "status")
    if publish_at is not None and status == PUBLISHED:
        status = SCHEDULED
    if status == SCHEDULED and publish_at is None:
        raise ServiceError("A scheduled update needs publish_at, the time to publish it.", "publish_at")
    if publish_at is not None and status != SCHEDULED:
        raise ServiceError(f"publish_at schedules an update, so it cannot be '{status}'.", "publish_at")
    if status in (PUBLISHED, SCHEDULED):
        _publisher(by)
    return status


def append_entry(story: Story, body: str, headline: str = "", author: User | None = None,
                 key: bool = False, pinned: bool = False, idempotency_key: str | None = None,
                 created_at: datetime | None = None, byline: str = "", status: str | None = None,
                 publish_at: str | datetime | None = None, media: list[int] | None = None) -> tuple[Entry, bool]:
    """Add an entry: published (the default for editors), a draft, submitted for review (the
    default for contributors) or scheduled for `publish_at`. A repeated idempotency key returns
    the first entry instead.

    `byline` names a writer without an account here; readers see it when there is no `author`.
    """
    if _contributor(author) and (key or pinned or publish_at is not None or status in (PUBLISHED, SCHEDULED)):
        raise ServiceError(CONTRIBUTOR_REFUSAL, None, 403)
    idempotency_key = clean_text(idempotency_key)[:64] or None
    if idempotency_key:
        existing = entry_by_idempotency_key(story, idempotency_key)
        if existing is not None and _contributor(author) and existing.author_id != author.id:
            raise ServiceError("This Idempotency-Key was used for another update.", None, 409)
        if existing is not None:
            return existing, False
    publish_at = publish_time(publish_at)
    status = _new_state(status, publish_at, author)
    if not story.is_live and status in (PUBLISHED, SCHEDULED):
        raise ServiceError("This story has ended. Reopen it to post new updates.", "body", 409)
    body, headline = _entry_text(body, headline)
    byline = _byline(byline)
    media = _media_ids(media or [])
    now = utcnow()
    entry = Entry(story=story, body=body, html=render_markdown(body), headline=headline, status=status,
                  publish_at=publish_at, author=author, byline=byline, key_event=key, pinned=pinned,
                  idempotency_key=idempotency_key, created_at=created_at or now, updated_at=now)
    _show_media(entry, media)
    try:
        with _story_change(story) as changed:
            _take_revision(changed, entry, story)
            db.session.add(entry)
            if pinned and status == PUBLISHED:
                _unpin_others(changed, story, entry)
    except IntegrityError:
        # A concurrent double submit won the race for the same idempotency key.
        existing = entry_by_idempotency_key(story, idempotency_key) if idempotency_key else None
        if existing is None:
            raise
        return existing, False
    return entry, True


def edit_entry(entry: Entry, body: str, headline: str = "", byline: str | None = None, base_rev: int | None = None,
               editor: User | None = None) -> Entry:
    """Correct an entry's text (and, unless None, its byline), keeping the previous text as a version."""
    return change_entry(entry, body=body, headline=headline, byline=byline, base_rev=base_rev, editor=editor)


def delete_entry(entry: Entry) -> Entry:
    """Soft-delete an entry: it stays in the database and disappears from readers' pages."""
    if entry.deleted:
        return entry
    with _story_change(entry.story) as changed:
        entry.deleted, entry.pinned, entry.key_event = True, False, False
        _take_revision(changed, entry, entry.story)
    return entry


def set_pinned(entry: Entry, pinned: bool) -> Entry:
    """Pin an entry to the top of the story (unpinning any other) or unpin it."""
    return change_entry(entry, pinned=pinned)


def set_key(entry: Entry, key: bool) -> Entry:
    """Mark or unmark an entry as a key event."""
    return change_entry(entry, key=key)


def check_may_change(entry: Entry, by: User | None, flags: bool = False) -> None:
    """Raise unless `by` may change the entry (its flags too, when `flags`): contributors change only
    their own drafts and submissions, and only their text."""
    if _contributor(by) and (flags or entry.author_id != by.id or entry.status not in (DRAFT, SUBMITTED)):
        raise ServiceError(CONTRIBUTOR_REFUSAL, None, 403)


def preview(body: str, headline: str = "") -> tuple[str, str]:
    """An update's headline and HTML exactly as publishing would make them, without saving anything."""
    body, headline = _entry_text(body, headline)
    return headline, render_markdown(body)


def change_entry(entry: Entry, body: str | None = None, headline: str | None = None, byline: str | None = None,
                 pinned: bool | None = None, key: bool | None = None, base_rev: int | None = None,
                 editor: User | None = None, media: list[int] | None = None) -> Entry:
    """Correct an entry's text, pin or unpin it, mark or unmark it as a key event (None keeps a field).

    All or nothing, and one revision for the entry (plus one for an entry its pinning unpins).
    A changed body, headline or byline of a published entry is a correction: the previous text
    is kept as a version, and `editor` is recorded as who made it (an unpublished entry's text
    just changes). With `base_rev` (the revision the change started from) the change applies
    only if nobody changed the entry since, else raises Changed.
    """
    check_may_change(entry, editor, pinned is not None or key is not None or byline is not None)
    if base_rev is not None and entry.rev != base_rev:
        raise Changed(entry)
    if (body, headline, byline, pinned, key, media) == (None,) * 6:
        return entry
    _alive(entry)
    media = None if media is None else _media_ids(media)
    new_media = media is not None and media != [m.id for m in entry.media]
    text = old = (entry.body, entry.headline, entry.byline)
    if body is not None or headline is not None:
        text = (*_entry_text(old[0] if body is None else body, old[1] if headline is None else headline), old[2])
    if byline is not None:
        text = (*text[:2], _byline(byline))
    corrected = text != old
    pinned = entry.pinned if pinned is None else pinned
    key = entry.key_event if key is None else key
    if not corrected and not new_media and (pinned, key) == (entry.pinned, entry.key_event):
        return entry
    with _story_change(entry.story) as changed:
        if base_rev is not None:
            _still_at(entry, base_rev)
        if pinned and not entry.pinned and entry.is_published:
            _unpin_others(changed, entry.story, entry)
        if corrected and entry.is_published:
            db.session.add(EntryVersion(entry=entry, headline=entry.headline, body=entry.body, html=entry.html,
                                        published_at=entry.edited_at or entry.created_at, editor=entry.editor))
            entry.editor = editor
        if corrected:
            entry.body, entry.headline, entry.byline = text
            entry.html = render_markdown(entry.body)
        entry.pinned, entry.key_event = pinned, key
        if new_media:
            _show_media(entry, media)
        _take_revision(changed, entry, entry.story)
        if corrected and entry.is_published:
            entry.edited_at = entry.updated_at
    return entry


# The desk: moving unpublished entries along

def _unpublished(entry: Entry) -> None:
    _alive(entry)
    if entry.is_published:
        raise ServiceError("This update is already published.", None, 409)


def _move(entry: Entry, base_rev: int | None, status: str, publish_at: datetime | None = None, note: str = "") -> None:
    """Put an unpublished entry in another unpublished state, as one change (for the desk only)."""
    with _story_change(entry.story) as changed:
        _still_at(entry, entry.rev if base_rev is None else base_rev)
        entry.status, entry.publish_at, entry.review_note = status, publish_at, note
        _take_revision(changed, entry, entry.story)


def publish_entry(entry: Entry, by: User | None = None, base_rev: int | None = None) -> Entry:
    """Publish a draft, submission or scheduled entry now: readers get it as a new update, stamped
    with this time. Exactly once: of two processes publishing it at once, the second raises Changed."""
    _publisher(by)
    _unpublished(entry)
    if not entry.story.is_live:
        raise ServiceError("This story has ended. Reopen it to publish updates.", None, 409)
    with _story_change(entry.story) as changed:
        # A write on the entry's row at the revision it was read with: the claim that makes it once.
        _still_at(entry, entry.rev if base_rev is None else base_rev)
        entry.status, entry.publish_at, entry.review_note = PUBLISHED, None, ""
        entry.created_at = utcnow()
        if entry.pinned:
            _unpin_others(changed, entry.story, entry)
        _take_revision(changed, entry, entry.story)
    return entry


def schedule_entry(entry: Entry, publish_at: str | datetime, by: User | None = None,
                   base_rev: int | None = None) -> Entry:
    """Schedule (or reschedule) an unpublished entry to publish itself at `publish_at`."""
    _publisher(by)
    _unpublished(entry)
    when = publish_time(publish_at)
    if when is None:
        raise ServiceError("Say when to publish it (publish_at).", "publish_at")
    if not entry.story.is_live:
        raise ServiceError("This story has ended. Reopen it to schedule updates.", None, 409)
    _move(entry, base_rev, SCHEDULED, when)
    return entry


def submit_entry(entry: Entry, by: User | None = None, base_rev: int | None = None) -> Entry:
    """Send a draft to the editors for review."""
    check_may_change(entry, by)
    _unpublished(entry)
    if entry.status != DRAFT:
        raise ServiceError("Only a draft can be submitted for review.", None, 409)
    _move(entry, base_rev, SUBMITTED)
    return entry


def return_entry(entry: Entry, note: str, by: User | None = None, base_rev: int | None = None) -> Entry:
    """Send a submission or a scheduled entry back to its writer as a draft, saying why."""
    _publisher(by)
    _unpublished(entry)
    note = _limit(clean_text(note), "note", "The note", MAX_NOTE)
    if not note:
        raise ServiceError("Say what needs changing, so the writer can fix it.", "note")
    _move(entry, base_rev, DRAFT, note=note)
    return entry


MISSED_AFTER = 5  # seconds: a scheduled update found due longer ago than this was missed, and is logged


def publish_due(now: datetime | None = None) -> list[Entry]:
    """Publish every scheduled entry whose time has come; returns those this call published.

    Several processes may run this at once: each entry is published by exactly one of them (see
    publish_entry). One whose story has ended meanwhile goes back to the desk as a draft.
    """
    published = []
    now = now or utcnow()
    for entry_id in due_entries(now):
        entry = db.session.get(Entry, entry_id)
        if entry.status != SCHEDULED or entry.deleted or entry.publish_at > now:
            continue  # sent back, rescheduled or published since the list was read
        due = entry.publish_at
        try:
            published.append(publish_entry(entry))  # only at the version just read: see _still_at
        except Changed:
            continue  # published by another process, or changed: the next tick sees it as it is now
        except ServiceError as exc:
            if exc.status != 409:  # the database was busy, say: the next tick tries again
                log.warning("scheduled update %s not published yet: %s", entry_id, exc.message)
                continue
            log.warning("scheduled update %s not published: %s", entry_id, exc.message)
            try:
                _move(db.session.get(Entry, entry_id), None, DRAFT, note=f"Not published at its time: {exc.message}")
            except ServiceError:
                continue
        else:
            late = (now - due).total_seconds()
            metrics.SCHEDULED.inc()
            if late > MISSED_AFTER:
                metrics.SCHEDULED_LATE.inc()
                log.warning("published scheduled update %s %.0f s after its time (%s): no server was publishing "
                            "then", entry_id, late, due.isoformat())
            else:
                log.info("published scheduled update %s", entry_id)
    return published


def _still_at(entry: Entry, base_rev: int) -> None:
    """Lock the entry's row if it still has revision `base_rev` (a write: exact on SQLite too), else raise Changed."""
    kept = db.session.execute(update(Entry).where(Entry.id == entry.id, Entry.rev == base_rev)
                              .values(rev=base_rev).execution_options(synchronize_session=False)).rowcount
    if kept != 1:
        db.session.rollback()
        db.session.refresh(entry)
        raise Changed(entry)


def _alive(entry: Entry) -> None:
    if entry.deleted:
        raise ServiceError("This update was deleted.", None, 410)


# Media

def _media_text(alt: str | None, caption: str | None, credit: str | None) -> dict:
    """An image's alt text, caption and credit as stored, checked (those given: None leaves one out)."""
    fields = {}
    if alt is not None:
        fields["alt"] = _require(" ".join(clean_text(alt).split()), "alt",
                                 "Alt text (what the image shows, for people who cannot see it)", MAX_ALT)
    if caption is not None:
        fields["caption"] = _limit(clean_text(caption), "caption", "Caption", MAX_CAPTION)
    if credit is not None:
        fields["credit"] = _limit(" ".join(clean_text(credit).split()), "credit", "Credit", MAX_CREDIT)
    return fields


def too_large(limit: int) -> str:
    """What a person is told about a file over MEDIA_MAX_BYTES."""
    size = f"{limit / 1024 / 1024:.0f} MB" if limit >= 1024 * 1024 else f"{limit / 1024:.0f} KB"
    return f"The file is too large: an image may have at most {size}."


def add_media(data: bytes, alt: str, caption: str = "", credit: str = "") -> Media:
    """Check, process and store an uploaded image (see tracker.images) with its alt text, caption and credit,
    within MEDIA_MAX_BYTES and MEDIA_MAX_PIXELS."""
    fields = _media_text(alt, caption, credit)
    if len(data) > current_app.config["MEDIA_MAX_BYTES"]:
        raise ServiceError(too_large(current_app.config["MEDIA_MAX_BYTES"]), "file", 413)
    try:
        made = images.process(data, current_app.config["MEDIA_MAX_PIXELS"])
    except images.Refused as exc:
        raise ServiceError(exc.message, "file", exc.status) from None
    key = secrets.token_hex(16)
    try:
        storage.save(key, made.files)
    except BaseException:
        storage.remove(key)  # what was written before it failed
        raise
    media = Media(key=key, width=made.width, height=made.height, widths=",".join(map(str, made.widths)),
                  fallback=made.fallback, **fields)
    try:
        with atomic():  # or inside the caller's transaction (an import's)
            db.session.add(media)
            db.session.flush()
    except BaseException:
        storage.remove(key)
        raise
    return media


def change_media(media: Media, alt: str | None = None, caption: str | None = None,
                 credit: str | None = None) -> Media:
    """Correct an image's alt text, caption or credit (None keeps one): every update and story showing
    it takes a revision, so readers get it again with the new text."""
    values = {name: value for name, value in _media_text(alt, caption, credit).items()
              if getattr(media, name) != value}
    if not values:
        return media
    with atomic():
        for name, value in values.items():
            setattr(media, name, value)
        for story, entries in _showing(media):
            with _story_change(story) as changed:
                for entry in entries:
                    _take_revision(changed, entry, story)
                if story.image_media_id == media.id:
                    _take_revision(changed, story, story)
    return media


def delete_media(media: Media) -> None:
    """Take an image down: off every update and story showing it (each takes a revision, so readers'
    pages drop it live), then its record and files."""
    key = media.key
    with atomic():
        for story, entries in _showing(media):
            with _story_change(story) as changed:
                for entry in entries:
                    _show_media(entry, [shown.id for shown in entry.media if shown.id != media.id])
                    _take_revision(changed, entry, story)
                if story.image_media_id == media.id:
                    story.image_media_id = None
                    _take_revision(changed, story, story)
        db.session.flush()
        db.session.execute(delete(EntryMedia).where(EntryMedia.media_id == media.id))  # deleted entries' links
        db.session.delete(media)
    _remove_files(key)


def prune_media(older_than: timedelta) -> int:
    """Delete images that no update or story shows, uploaded more than `older_than` ago (uploads
    given up in the composer); returns how many."""
    orphans = unused_media(utcnow() - older_than)
    with atomic():
        for media in orphans:
            db.session.delete(media)
    for media in orphans:
        _remove_files(media.key)
    return len(orphans)


def _remove_files(key: str) -> None:
    try:
        storage.remove(key)
    except Exception:  # the record is gone, so nothing links to the files any more
        log.exception("removing the files of media %s failed", key)


def _showing(media: Media) -> list[tuple[Story, list[Entry]]]:
    """The stories showing an image (as lead image, or in entries, listed), in id order: each story's
    lock is then taken once, in the order every change takes them."""
    showing: dict[int, tuple[Story, list[Entry]]] = {}
    for entry in db.session.scalars(select(Entry).join(EntryMedia, EntryMedia.entry_id == Entry.id)
                                    .where(EntryMedia.media_id == media.id, Entry.deleted.is_(False))
                                    .order_by(Entry.id)).unique():
        showing.setdefault(entry.story_id, (entry.story, []))[1].append(entry)
    for story in db.session.scalars(select(Story).where(Story.image_media_id == media.id)):
        showing.setdefault(story.id, (story, []))
    return [showing[story_id] for story_id in sorted(showing)]


def _media_ids(value) -> list[int]:
    """A list of media ids as given (ordered, each once), checked to exist."""
    if not isinstance(value, list | tuple) or not all(type(item) is int and 0 < item <= MAX_ID for item in value):
        raise ServiceError("'media' must be a list of media ids.", "media")
    ids = list(dict.fromkeys(value))
    if len(ids) > MAX_MEDIA_PER_ENTRY:
        raise ServiceError(f"An update may show at most {MAX_MEDIA_PER_ENTRY} images.", "media")
    unknown = sorted(set(ids) - set(media_by_ids(ids)))
    if unknown:
        raise ServiceError(f"There is no media with id {', '.join(map(str, unknown))}; upload it first.", "media")
    return ids


def _show_media(entry: Entry, ids: list[int]) -> None:
    entry.media_links = [EntryMedia(position=n, media_id=media_id) for n, media_id in enumerate(ids)]
    entry.has_media = bool(ids)


# Web Push subscriptions (see tracker.push)

def subscribe(story: Story, subscription, hosts: set[str]) -> None:
    """Subscribe a reader's browser (its PushSubscription as JSON) to a story's key events; subscribing again
    takes its current keys. The endpoint must be on one of `hosts` (PUSH_SERVICE_HOSTS)."""
    try:
        endpoint, p256dh, auth = push.checked(subscription, hosts)
    except push.Refused as exc:
        raise ServiceError(exc.message, "subscription", 422) from None
    if not story.is_live:
        raise ServiceError("This story has ended: there will be no more key events to tell you of.", None, 409)
    row = db.session.scalar(select(PushSubscription).where(PushSubscription.endpoint == endpoint,
                                                           PushSubscription.story_id == story.id))
    if row is None:
        row = PushSubscription(story_id=story.id, endpoint=endpoint)
        db.session.add(row)
    row.p256dh, row.auth = p256dh, auth
    try:
        db.session.commit()
    except IntegrityError:  # the same browser subscribing twice at once: the first one stands
        db.session.rollback()


def unsubscribe(endpoint, story: Story | None = None) -> None:
    """End a browser's subscription (by its endpoint) to a story, or to every story."""
    try:
        endpoint = push.checked_endpoint(endpoint)
    except push.Refused as exc:
        raise ServiceError(exc.message, "endpoint", 422) from None
    query = delete(PushSubscription).where(PushSubscription.endpoint == endpoint)
    if story is not None:
        query = query.where(PushSubscription.story_id == story.id)
    db.session.execute(query)
    db.session.commit()


# Presence at a story's desk

def be_at_desk(sid: str, story: Story, user: User, doing: str, fades: int) -> dict:
    """Record that a person's connection is on a story's editor page doing `doing` (see
    DeskPresence.doing); tell everyone at that desk (and at the one it left) who is there now."""
    row = db.session.get(DeskPresence, sid)
    left = row.story_id if row is not None and row.story_id != story.id else None
    news = row is None or (row.story_id, row.user_id, row.doing) != (story.id, user.id, doing)
    if row is None:
        row = DeskPresence(sid=sid)
        db.session.add(row)
    now = utcnow()
    row.story_id, row.user_id, row.doing, row.seen_at = story.id, user.id, doing, now
    if news:  # rows a process that died left behind, gone once faded (desk_people skips them until then)
        db.session.execute(delete(DeskPresence).where(DeskPresence.seen_at < now - timedelta(seconds=fades)))
    db.session.commit()
    if left is not None:
        broadcast_presence(db.session.get(Story, left).slug, desk_people(left, fades))
    people = desk_people(story.id, fades)
    if news:  # a heartbeat only keeps the row fresh
        broadcast_presence(story.slug, people)
    return people


def leave_desk(sid: str, fades: int) -> None:
    """Forget a connection that left a desk (its tab closed); tell those still there."""
    row = db.session.get(DeskPresence, sid)
    if row is None:
        return
    story_id = row.story_id
    db.session.delete(row)
    db.session.commit()
    broadcast_presence(db.session.get(Story, story_id).slug, desk_people(story_id, fades))


# Users

def _check_password(password: str) -> None:
    if len(password) < 8:
        raise ServiceError("Password must be at least 8 characters.", "password")


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise ServiceError(f"Role must be {', '.join(repr(role) for role in ROLES)}.", "role")
    return role


def _display_name(name: str) -> str:
    name = clean_text(name)
    if len(name) > MAX_DISPLAY_NAME:
        raise ServiceError(f"Display name is too long (at most {MAX_DISPLAY_NAME} characters).", "display_name")
    return name


def create_user(username: str, password: str, role: str = "editor", display_name: str = "") -> User:
    """Create an account with a hashed password."""
    username = clean_text(username)
    if not re.fullmatch(r"[A-Za-z0-9_.-]{2,64}", username):
        raise ServiceError("Username must be 2-64 letters, digits, dots, dashes or underscores.", "username")
    _check_password(password)
    _check_role(role)
    display_name = _display_name(display_name)
    if db.session.scalar(select(User.id).where(User.username == username)) is not None:
        raise ServiceError(f"The username '{username}' is already taken.", "username", 409)
    user = User(username=username, role=role, display_name=display_name)
    user.set_password(password)
    db.session.add(user)
    db.session.commit()
    return user


def set_user_active(user: User, active: bool) -> User:
    """Enable or disable an account; disabling signs it out everywhere, for good."""
    user.active = active
    if not active:
        user.session_version += 1
    db.session.commit()
    return user


def change_password(user: User, password: str) -> User:
    """Give an account a new password and sign it out everywhere."""
    _check_password(password)
    user.set_password(password)
    user.session_version += 1
    db.session.commit()
    return user


def change_user(user: User, role: str | None = None, display_name: str | None = None) -> User:
    """Change an account's role and display name, in one transaction (None leaves a field as it is)."""
    if role is not None:
        user.role = _check_role(role)
    if display_name is not None:
        user.display_name = _display_name(display_name)
    db.session.commit()
    return user


def change_profile(user: User, display_name: str, current_password: str, new_password: str = "") -> bool:
    """A person's own display name and, with the current password, a new password (which signs
    their other sessions out); returns whether the password changed."""
    display_name = _display_name(display_name)
    if new_password:
        if not user.check_password(current_password):
            raise ServiceError("Your current password is not right; the password was not changed.",
                               "current_password", 403)
        _check_password(new_password)
        user.set_password(new_password)
        user.session_version += 1
    user.display_name = display_name
    db.session.commit()
    return bool(new_password)


# API tokens

TOKEN_PREFIX = "trk_"


def _token_digest(token: str) -> str:
    # A 256-bit random token needs no slow hash: SHA-256 cannot be reversed or guessed.
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(name: str, user: User | None = None) -> tuple[ApiToken, str]:
    """Make a bearer token (acting as `user`, if given); returns the row and the token itself, which is not stored."""
    name = clean_text(name)
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", name):
        raise ServiceError("Token name must be 1-64 letters, digits, dots, dashes or underscores.", "name")
    if db.session.scalar(select(ApiToken.id).where(ApiToken.name == name, ApiToken.revoked_at.is_(None))):
        raise ServiceError(f"An active token named '{name}' exists; revoke it first.", "name", 409)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(name=name, token_hash=_token_digest(token), user=user)
    db.session.add(row)
    db.session.commit()
    return row, token


def revoke_token(name: str) -> int:
    """Revoke the active tokens with this name; returns how many."""
    rows = db.session.scalars(select(ApiToken).where(ApiToken.name == name, ApiToken.revoked_at.is_(None))).all()
    for row in rows:
        row.revoked_at = utcnow()
    db.session.commit()
    return len(rows)


def token_holder(token: str) -> ApiToken | None:
    """The active token row matching a presented bearer token, if any."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 100:
        return None
    row = db.session.scalar(select(ApiToken).where(
        ApiToken.token_hash == _token_digest(token), ApiToken.revoked_at.is_(None)))
    return None if row is None or (row.user is not None and not row.user.active) else row
