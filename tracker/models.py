"""Database models: users and their sessions, stories and their entries, with the per-story revision log."""
from __future__ import annotations

import re
from datetime import UTC, datetime

from flask_login import UserMixin
from markupsafe import Markup
from sqlalchemy import Boolean, DateTime, ForeignKey, Index, Integer, String, Text, TypeDecorator, UniqueConstraint
from sqlalchemy.engine import Row
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.sql import text
from werkzeug.security import check_password_hash, generate_password_hash

from .extensions import db

# The first is the default. Contributors write but may not publish (drafts and review come with
# entry states); editors publish and correct; admins also manage accounts.
ROLES = ("editor", "contributor", "admin")
PUBLISHING_ROLES = ("editor", "admin")
STATUSES = ("live", "ended")
# A story's reading order for readers who have not chosen their own: the newest update first, or the
# oldest first (a timeline, a Q&A).
ORDERS = ("newest", "oldest")
# An entry's states: only published ones ever reach readers. A draft is its writer's; a
# submission waits for an editor; a scheduled one publishes itself at its publish_at.
PUBLISHED, DRAFT, SUBMITTED, SCHEDULED = "published", "draft", "submitted", "scheduled"
ENTRY_STATES = (PUBLISHED, DRAFT, SUBMITTED, SCHEDULED)
MAX_SLUG = 80
SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
# Ids in URLs, cursors and session cookies have at most 18 digits, so any of them fits a 64-bit column.
ID_PATTERN = r"[0-9]{1,18}"
MAX_ID = 10**18 - 1
MAX_REV = 2**63 - 1  # the highest revision a client may name
MAX_API_PAGE = 100  # entries per page of the JSON API
# Length limits, in characters after trimming; the columns of the limited fields are sized to match.
MAX_BODY = 20_000
MAX_HEADLINE = 200
MAX_TITLE = 200
MAX_SUMMARY = 1_000
MAX_IMAGE_URL = 500
MAX_TAGS = 1_000
MAX_BYLINE = 100
MAX_DISPLAY_NAME = 100
MAX_NOTE = 1_000
MAX_ALT = 500
MAX_CAPTION = 1_000
MAX_CREDIT = 200
MAX_MEDIA_PER_ENTRY = 20
# A push service's URL for one browser (FCM's, Mozilla's and Apple's run to a few hundred characters).
MAX_PUSH_ENDPOINT = 1_000
# Widths of an image's variants (never above the upload's own width), each in WebP and a fallback.
MEDIA_WIDTHS = (480, 960, 1600)
FALLBACK_TYPES = {"jpeg": ("jpg", "image/jpeg"), "png": ("png", "image/png")}
# Mastodon servers whose posts may be embedded (each is its own host, so the CSP must name it).
MASTODON_HOSTS = ("mastodon.social", "mastodon.online", "mstdn.social", "journa.host", "newsie.social")


def utcnow() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(UTC)


def isoformat(value: datetime | None) -> str | None:
    """Format an aware datetime as ISO 8601 with a Z suffix."""
    if not value:
        return None
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class UTCDateTime(TypeDecorator):
    """Store naive UTC (SQLite has no zones) and always hand back aware UTC datetimes."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None:
            if value.tzinfo is None:
                raise ValueError("naive datetime given; use aware UTC datetimes")
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        return value.replace(tzinfo=UTC) if value is not None else None


class User(UserMixin, db.Model):
    """A newsroom account; readers need none."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16), default="editor")
    # Shown in bylines; empty means the username.
    display_name: Mapped[str] = mapped_column(String(MAX_DISPLAY_NAME), default="", server_default=text("''"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Part of the id in every session cookie: raising it signs the account out everywhere.
    session_version: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    # The random part of the session this object was logged in or loaded with (not a column).
    session_token = None

    def set_password(self, password: str) -> None:
        """Hash and store a password (werkzeug's scrypt)."""
        self.password_hash = generate_password_hash(password)

    def get_id(self) -> str:
        """The session's user id: "<id>-<session_version>-<token>" (see auth.load_user)."""
        return f"{self.id}-{self.session_version}-{self.session_token}"

    def check_password(self, password: str) -> bool:
        """Tell whether the password matches the stored hash."""
        return check_password_hash(self.password_hash, password)

    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def may_publish(self) -> bool:
        """Whether the account may publish, correct and manage updates and stories (not contributors)."""
        return self.role in PUBLISHING_ROLES

    @property
    def name(self) -> str:
        """The name bylines show."""
        return self.display_name or self.username


class UserSession(db.Model):
    """One browser's login; logging out deletes it, so a copy of that browser's cookie opens nothing."""

    __tablename__ = "user_sessions"

    # SHA-256 of the token in the cookie: a copy of this table opens no session.
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Indexed: each login deletes the expired rows.
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class Story(db.Model):
    """A developing story: the container of entries and the owner of the revision counter."""

    __tablename__ = "stories"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(MAX_SLUG), unique=True)
    title: Mapped[str] = mapped_column(String(MAX_TITLE))
    summary: Mapped[str] = mapped_column(Text, default="")
    image_url: Mapped[str] = mapped_column(String(MAX_IMAGE_URL), default="")
    # Comma-separated, in the order given (see services.normalize_tags).
    tags: Mapped[str] = mapped_column(Text, default="", server_default=text("''"))
    status: Mapped[str] = mapped_column(String(8), default="live")
    order: Mapped[str] = mapped_column(String(8), default="newest", server_default=text("'newest'"))
    # Its pages' language (a code of i18n.LANGUAGES): their interface, lang, direction and dates.
    language: Mapped[str] = mapped_column(String(8), default="en", server_default=text("'en'"))
    # Every change to the story or its entries takes the next value, in the same transaction.
    rev: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # An uploaded lead image; shown instead of image_url when set.
    image_media_id: Mapped[int | None] = mapped_column(ForeignKey("media.id", name="fk_stories_image_media_id_media"),
                                                       nullable=True)
    image_media: Mapped[Media | None] = relationship(lazy="select")

    @property
    def is_live(self) -> bool:
        return self.status == "live"

    @property
    def lead_image(self) -> str:
        """The lead image: the uploaded one's largest variant (a path on this site), else image_url."""
        return media_state(self.image_media)["url"] if self.image_media else self.image_url

    @property
    def tag_list(self) -> list[str]:
        """The tags as a list of strings."""
        return split_tags(self.tags)

    def to_dict(self) -> dict:
        """The story's public state, as sent in JSON and socket payloads, with its uploaded lead image."""
        return {**story_state(self), "image": media_state(self.image_media) if self.image_media else None}


def split_tags(tags: str | None) -> list[str]:
    """Comma-separated tags as a list of strings."""
    return [tag.strip() for tag in (tags or "").split(",") if tag.strip()]


def story_state(story: Story | Row) -> dict:
    """Story.to_dict, also for a row of the stories table read without the ORM (see events.on_join)."""
    return {
        "slug": story.slug,
        "title": story.title,
        "summary": story.summary,
        "image_url": story.image_url,
        "tags": split_tags(story.tags),
        "status": story.status,
        "order": story.order,
        "language": story.language,
        "rev": story.rev,
        "created_at": isoformat(story.created_at),
        "updated_at": isoformat(story.updated_at),
        "ended_at": isoformat(story.ended_at),
        "image_media": story.image_media_id,
        "url": f"/stories/{story.slug}",
    }


class Entry(db.Model):
    """One timestamped update; the row always holds its current state and last revision."""

    __tablename__ = "entries"
    __table_args__ = (
        UniqueConstraint("story_id", "idempotency_key"),
        Index("ix_entries_story_rev", "story_id", "rev"),
        Index("ix_entries_story_created", "story_id", "created_at", "id"),
        Index("ix_entries_status_publish_at", "status", "publish_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    story_id: Mapped[int] = mapped_column(ForeignKey("stories.id"))
    # Published: the story's revision of the entry's last change. Unpublished: minus the number of
    # its changes, outside the story's revisions, so readers' revisions stay contiguous.
    rev: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default=PUBLISHED, server_default=text("'published'"))
    publish_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Why an editor sent a submission back to its writer.
    review_note: Mapped[str] = mapped_column(String(MAX_NOTE), default="", server_default=text("''"))
    # Whether it shows images (see media_links): catch-up reads them only for entries that do.
    has_media: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    headline: Mapped[str] = mapped_column(String(MAX_HEADLINE), default="")
    body: Mapped[str] = mapped_column(Text)
    html: Mapped[str] = mapped_column(Text)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    # A writer without an account here (e.g. the author of an imported post).
    byline: Mapped[str] = mapped_column(String(MAX_BYLINE), default="", server_default=text("''"))
    pinned: Mapped[bool] = mapped_column(Boolean, default=False)
    # A key event, listed beside the story; the column keeps its first name, "key" (no migration).
    key_event: Mapped[bool] = mapped_column("key", Boolean, default=False)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    idempotency_key: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Set only when the text was corrected; pin and key-event changes are not corrections.
    edited_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # When it became a key event readers see and was claimed for Web Push: pushed at most once (tracker.push).
    pushed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    story: Mapped[Story] = relationship(lazy="joined")
    author: Mapped[User | None] = relationship(lazy="joined", foreign_keys=[author_id])
    # Who made the latest correction (None: never corrected, or corrected by a newsroom tool's token).
    editor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", name="fk_entries_editor_id_users"),
                                                  nullable=True)
    editor: Mapped[User | None] = relationship(foreign_keys=[editor_id])
    versions: Mapped[list[EntryVersion]] = relationship(
        back_populates="entry", order_by="EntryVersion.id.desc()", lazy="select")
    # Loaded with the entries they belong to, in one more query for a whole page of them.
    media_links: Mapped[list[EntryMedia]] = relationship(
        order_by="EntryMedia.position", lazy="selectin", cascade="all, delete-orphan")

    @property
    def is_published(self) -> bool:
        return self.status == PUBLISHED

    @property
    def plain_text(self) -> str:
        """The entry's text without markup."""
        return plain_text(self.html)

    @property
    def excerpt(self) -> str:
        """The plain text cut to about 80 characters (for lists and announcements)."""
        return excerpt(self.html)

    @property
    def writer(self) -> str | None:
        """The byline's name: the author's display name, else the imported byline, else None."""
        return self.author.name if self.author else (self.byline or None)

    @property
    def media(self) -> list[Media]:
        """The images it shows, in order."""
        return [link.media for link in self.media_links] if self.has_media else []

    def to_dict(self) -> dict:
        """The entry's public state; a deleted entry keeps only what readers need to drop it."""
        return entry_state(self, self.story.slug, self.author.name if self.author else None,
                           [media.to_dict() for media in self.media])


def plain_text(html: str) -> str:
    """Text without markup."""
    return Markup(html).striptags()


def excerpt(html: str) -> str:
    """The plain text of `html` cut to about 80 characters."""
    text = plain_text(html)
    return text if len(text) <= 80 else text[:79].rstrip() + "…"


def entry_state(entry: Entry | Row, story_slug: str, author_name: str | None, media: list[dict]) -> dict:
    """Entry.to_dict, also for a row read without the ORM (see queries.changes_page)."""
    if entry.deleted:
        headline = html = summary = ""
        author, pinned, key, media = None, False, False, []
    else:
        headline, html, summary = entry.headline, entry.html, excerpt(entry.html)
        author, pinned, key = author_name or entry.byline or None, entry.pinned, entry.key_event
    return {
        "id": entry.id,
        "rev": entry.rev,
        "story": story_slug,
        "headline": headline,
        "html": html,
        "author": author,
        "created_at": isoformat(entry.created_at),
        "updated_at": isoformat(entry.updated_at),
        "edited_at": isoformat(entry.edited_at),
        "pinned": pinned,
        "key": key,
        "deleted": entry.deleted,
        "excerpt": summary,
        "url": f"/stories/{story_slug}/entries/{entry.id}",
        "status": entry.status,
        "media": media,
        **({"publish_at": isoformat(entry.publish_at)} if entry.status == SCHEDULED else {}),
        **({"review_note": entry.review_note} if entry.review_note else {}),
    }


class EntryVersion(db.Model):
    """The text an entry had before a correction."""

    __tablename__ = "entry_versions"

    id: Mapped[int] = mapped_column(primary_key=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("entries.id"), index=True)
    headline: Mapped[str] = mapped_column(String(MAX_HEADLINE), default="")
    body: Mapped[str] = mapped_column(Text)
    html: Mapped[str] = mapped_column(Text)
    # When this text stopped being current.
    replaced_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # When this text was first published (the entry's creation or its previous correction).
    published_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Who wrote this text as a correction (None: the original text, or a newsroom tool's token).
    editor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", name="fk_entry_versions_editor_id_users"),
                                                  nullable=True)
    editor: Mapped[User | None] = relationship()

    entry: Mapped[Entry] = relationship(back_populates="versions")


class Media(db.Model):
    """An uploaded image, stored as variants (see tracker.images and tracker.storage)."""

    __tablename__ = "media"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Random: the variants' file names start with it, so a URL guesses nothing.
    key: Mapped[str] = mapped_column(String(32), unique=True)
    # Of the largest variant.
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    # The variants' widths, comma-separated, ascending; each exists in WebP and in `fallback`.
    widths: Mapped[str] = mapped_column(String(64))
    fallback: Mapped[str] = mapped_column(String(8))  # a key of FALLBACK_TYPES
    alt: Mapped[str] = mapped_column(String(MAX_ALT))
    caption: Mapped[str] = mapped_column(String(MAX_CAPTION), default="")
    credit: Mapped[str] = mapped_column(String(MAX_CREDIT), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def to_dict(self) -> dict:
        return media_state(self)


def variant_height(width: int, height: int, to_width: int) -> int:
    """The height of an image of width x height scaled to `to_width` (as tracker.images makes it)."""
    return max(1, round(height * to_width / width))


def media_state(media: Media | Row) -> dict:
    """Media.to_dict, also for a row read without the ORM: the variants' URLs, widths ascending."""
    extension, fallback_type = FALLBACK_TYPES[media.fallback]
    variants = []
    for width in map(int, media.widths.split(",")):
        height = variant_height(media.width, media.height, width)
        base = f"/media/{media.key}/{width}"
        variants += [{"url": f"{base}.webp", "width": width, "height": height, "type": "image/webp"},
                     {"url": f"{base}.{extension}", "width": width, "height": height, "type": fallback_type}]
    return {"id": media.id, "url": variants[-1]["url"], "width": media.width, "height": media.height,
            "alt": media.alt, "caption": media.caption, "credit": media.credit, "variants": variants}


class EntryMedia(db.Model):
    """An image an entry shows, at its place among the entry's images."""

    __tablename__ = "entry_media"

    entry_id: Mapped[int] = mapped_column(ForeignKey("entries.id"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    media_id: Mapped[int] = mapped_column(ForeignKey("media.id"), index=True)

    media: Mapped[Media] = relationship(lazy="joined")


class DeskPresence(db.Model):
    """A signed-in connection on a story's editor page, and what it is doing there (see services.be_at_desk)."""

    __tablename__ = "desk_presence"

    # The Socket.IO connection id: random, so unique across processes too.
    sid: Mapped[str] = mapped_column(String(64), primary_key=True)
    story_id: Mapped[int] = mapped_column(ForeignKey("stories.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    # "", "writing", or "correcting:<entry id>".
    doing: Mapped[str] = mapped_column(String(32), default="")
    # Refreshed by the page now and then: a row of a process that died fades out by this time.
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ApiToken(db.Model):
    """A bearer token for newsroom tools; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The person API writes with this token act as; None: a newsroom tool with editor rights and no byline.
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", name="fk_api_tokens_user_id_users"),
                                                nullable=True)
    user: Mapped[User | None] = relationship(lazy="joined")


class PushSubscription(db.Model):
    """A reader's browser told of a story's key events by Web Push (see tracker.push); readers need no account."""

    __tablename__ = "push_subscriptions"
    # By endpoint too: a push service that says a browser's subscription is gone ends it for every story.
    __table_args__ = (UniqueConstraint("endpoint", "story_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    story_id: Mapped[int] = mapped_column(ForeignKey("stories.id"), index=True)
    # The browser's push service URL: unguessable, so whoever sends it may also end the subscription.
    endpoint: Mapped[str] = mapped_column(String(MAX_PUSH_ENDPOINT))
    # The browser's P-256 public key and authentication secret, base64url (RFC 8291).
    p256dh: Mapped[str] = mapped_column(String(100))
    auth: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
