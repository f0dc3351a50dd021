"""The JSON API for newsroom tools: public reads, writes with `Authorization: Bearer <token>`.

Writes go through the same service layer as the editor's forms, so they take revisions and
broadcast the same events. Cookies are never consulted here: a logged-in browser session
grants nothing, so the API cannot be driven cross-site.
"""
import re
from functools import partial, wraps

from flask import Blueprint, abort, current_app, g, jsonify, request, url_for

from . import openapi, queries, readers, services
from .extensions import csrf, limiter
from .i18n import DEFAULT_LANGUAGE
from .models import MAX_API_PAGE, MAX_REV, isoformat
from .services import CONTRIBUTOR_REFUSAL, ServiceError
from .web import entry_or_404, int_arg, json_object, media_or_404, requested_page, story_or_404, upload

bp = Blueprint("api", __name__, url_prefix="/api")
csrf.exempt(bp)

_SURROGATE = re.compile("[\ud800-\udfff]")
# Field problems are 422 here (the request was well-formed JSON); the forms answer 400.
_STATUS = {400: 422}


@bp.errorhandler(ServiceError)
def service_error(exc: ServiceError):
    """A refused change: JSON with the message, the field and a fitting status (and, for an entry
    changed since the version the request named, the entry as it is now)."""
    status = _STATUS.get(exc.status, exc.status)
    current = {"current": exc.current.to_dict()} if isinstance(exc, services.Changed) else {}
    return jsonify(ok=False, error=exc.message, field=exc.field, **current), status


def _tagged(entry) -> dict:
    """Response headers naming the entry's version: its revision as a strong ETag, for If-Match."""
    return {"ETag": f'"{entry.rev}"'}


def _base_rev(entry) -> int | None:
    """The revision a request's If-Match says it started from: None without If-Match (no check)."""
    if not request.if_match:
        return None
    if request.if_match.star_tag or request.if_match.contains(str(entry.rev)):
        return entry.rev
    raise services.Changed(entry)


def _authenticated() -> bool:
    """Whether the request carries a valid bearer token; sets `g.token` and `g.author`, the person
    it acts as (None: a newsroom tool made without `--user`, with editor rights and no byline)."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    g.token = services.token_holder(token.strip()) if scheme.lower() == "bearer" else None
    g.author = g.token.user if g.token is not None else None
    return g.token is not None


def _unauthorized():
    response = jsonify(ok=False, error="Send a valid API token: 'Authorization: Bearer <token>'.")
    response.headers["WWW-Authenticate"] = 'Bearer realm="tracker"'
    return response, 401


def token_required(view=None, *, contributors: bool = False):
    """Allow only requests with a valid bearer token of someone who may publish (or, with
    `contributors`, of a contributor too: the service layer then says what they may do)."""
    if view is None:
        return partial(token_required, contributors=contributors)

    @wraps(view)
    def wrapped(*args, **kwargs):
        if not _authenticated():
            return _unauthorized()
        if not contributors and g.author is not None and not g.author.may_publish:
            return jsonify(ok=False, error=CONTRIBUTOR_REFUSAL), 403
        return view(*args, **kwargs)
    return wrapped


def _contributor_id() -> int | None:
    """The token's person when a contributor (who sees only their own unpublished entries), else None."""
    return g.author.id if g.author is not None and not g.author.may_publish else None


def _payload(*allowed: str) -> dict:
    """The request's JSON object, with only known fields and their types checked."""
    data = json_object(*allowed)
    for name, value in data.items():
        expected = bool if name in ("key", "pinned") else str
        if (name == "publish_at" and value is None) or name in ("media", "image_media"):
            continue  # checked by the service: a list of media ids, a media id
        if not isinstance(value, expected):
            raise ServiceError(f"'{name}' must be {'true or false' if expected is bool else 'a string'}.", name)
        if isinstance(value, str) and _SURROGATE.search(value):
            raise ServiceError(f"'{name}' is not valid Unicode text (it has a lone surrogate).", name)
    return data


# Reads (public)

@bp.get("/openapi.json")
def openapi_document():
    """This API's OpenAPI 3.1 description."""
    return jsonify(openapi.spec())


@bp.get("/stories")
def stories():
    """Every story, live ones first, with its latest update time and entry count."""
    overview = queries.stories_overview()
    reading = readers.counts([story.slug for story, _, _ in overview])
    return jsonify(stories=[{**story.to_dict(), "latest_at": isoformat(latest), "entries": count,
                             "readers": reading[story.slug]} for story, latest, count in overview])


@bp.get("/stories/<slug>")
def story(slug):
    """One story's state, with how many are reading it now."""
    story = story_or_404(slug)
    return jsonify(story={**story.to_dict(), "readers": readers.counts([slug])[slug]})


@bp.get("/stories/<slug>/entries")
def entries(slug):
    """Entries by cursor: every change after `after_rev` oldest first, else visible ones newest first."""
    story = story_or_404(slug)
    limit = int_arg("limit", 20, 0, MAX_API_PAGE) or 20
    after_rev = int_arg("after_rev", None, 0, MAX_REV)
    if after_rev is not None:
        page, cursor = queries.changes_page(story.id, after_rev, current_app.config["CATCHUP_PAGE_BYTES"], limit)
        response = jsonify(rev=story.rev, entries=page, next_after_rev=cursor)
        # A full page can't gain entries, only lose some to later revisions, which the next page
        # or the live events bring: a short cache absorbs a crowd of readers catching up at once.
        response.cache_control.public, response.cache_control.max_age = cursor is not None, 10 if cursor else 0
        return response
    page, cursor = requested_page(story, limit=limit, include_pinned=True)
    return jsonify(rev=story.rev, entries=[e.to_dict() for e in page], next_before=cursor)


@bp.get("/entries/<id:entry_id>")
def entry(entry_id):
    """One entry, with its version as the ETag (send it back as If-Match when correcting it).
    Public when published; an unpublished one needs a token (a contributor's: their own)."""
    entry = entry_or_404(entry_id)
    if not entry.is_published:
        if not _authenticated():
            abort(404, description="There is no such update.")  # a draft's existence is the newsroom's
        if _contributor_id() not in (None, entry.author_id):
            return jsonify(ok=False, error=CONTRIBUTOR_REFUSAL), 403
    if entry.deleted:
        abort(410, description="This update was removed by the newsroom.")
    return jsonify(entry=entry.to_dict()), 200, _tagged(entry)


@bp.get("/stories/<slug>/drafts")
@token_required(contributors=True)
def drafts(slug):
    """The story's unpublished entries: drafts, submissions and the schedule (a contributor's: their own)."""
    entries = queries.desk_entries(story_or_404(slug), author_id=_contributor_id())
    return jsonify(entries=[entry.to_dict() for entry in entries])


# Writes (bearer token)

@bp.post("/stories")
@token_required
def create_story():
    """Create a story."""
    data = _payload("title", "slug", "summary", "image_url", "status", "image_media", "order", "language")
    story = services.create_story(data.get("title", ""), data.get("summary", ""), data.get("slug", ""),
                                  data.get("image_url", ""), data.get("status", "live"),
                                  image_media=data.get("image_media"), order=data.get("order", "newest"),
                                  language=data.get("language", DEFAULT_LANGUAGE))
    return jsonify(story=story.to_dict()), 201, {"Location": url_for("api.story", slug=story.slug)}


@bp.patch("/stories/<slug>")
@token_required
def update_story(slug):
    """Change a story's title, summary, lead image, status or reading order."""
    story = story_or_404(slug)
    services.change_story(story, **_payload("title", "summary", "image_url", "status", "image_media", "order",
                                            "language"))
    return jsonify(story=story.to_dict())


@bp.post("/stories/<slug>/<any(end, reopen):action>")
@token_required
def story_status(slug, action):
    """End or reopen a story."""
    story = services.set_status(story_or_404(slug), "ended" if action == "end" else "live")
    return jsonify(story=story.to_dict())


@bp.post("/stories/<slug>/entries")
@token_required(contributors=True)
def append_entry(slug):
    """Add an entry: published, a draft, submitted or scheduled (`status`, `publish_at`); a repeated
    `Idempotency-Key` header returns the first one (200)."""
    story = story_or_404(slug)
    data = _payload("body", "headline", "key", "pinned", "status", "publish_at", "media")
    entry, created = services.append_entry(
        story, data.get("body", ""), data.get("headline", ""), author=g.author, key=data.get("key", False),
        pinned=data.get("pinned", False), idempotency_key=request.headers.get("Idempotency-Key"),
        status=data.get("status"), publish_at=data.get("publish_at"), media=data.get("media"))
    location = url_for("reader.entry", slug=slug, entry_id=entry.id)
    return jsonify(entry=entry.to_dict()), 201 if created else 200, {"Location": location}


@bp.patch("/entries/<id:entry_id>")
@token_required(contributors=True)
def update_entry(entry_id):
    """Correct, pin or mark an entry; move an unpublished one (`status` submitted, or draft with a
    `note`; `publish_at` to reschedule). With If-Match, only if it is still at that version (else 412)."""
    entry = entry_or_404(entry_id)
    data = _payload("body", "headline", "key", "pinned", "status", "publish_at", "note", "media")
    moves = {name: data.pop(name) for name in ("status", "publish_at", "note") if name in data}
    # Before If-Match is answered: a 412 shows the entry as it is now.
    services.check_may_change(entry, g.author, "key" in data or "pinned" in data)
    with services.atomic():
        services.change_entry(entry, **data, base_rev=_base_rev(entry), editor=g.author)
        if moves:
            _move(entry, **moves)
    return jsonify(entry=entry.to_dict()), 200, _tagged(entry)


def _move(entry, status: str | None = None, publish_at: str | None = None, note: str = "") -> None:
    """The state change a PATCH asks for, through the service that makes it."""
    if publish_at is not None and status in (None, "scheduled"):
        services.schedule_entry(entry, publish_at, by=g.author)
    elif status == "submitted" and publish_at is None:
        services.submit_entry(entry, by=g.author)
    elif status == "draft" and publish_at is None:
        services.return_entry(entry, note, by=g.author)
    elif status == "published" and publish_at is None:
        services.publish_entry(entry, by=g.author)
    else:
        raise ServiceError("Send 'status' as submitted, draft (with a 'note') or published, or 'publish_at' "
                           "to schedule.", "status")


@bp.post("/media")
@token_required(contributors=True)  # first: a request without a token is a 401, and costs no upload
@limiter.limit(lambda: current_app.config["UPLOAD_RATE_LIMIT"])
def upload_media():
    """Upload an image (multipart: file, alt, caption, credit): checked, stripped of metadata, scaled."""
    media = upload()
    return jsonify(media=media.to_dict()), 201, {"Location": media.to_dict()["url"]}


@bp.patch("/media/<id:media_id>")
@token_required
def update_media(media_id):
    """Correct an image's alt text, caption or credit; the updates showing it reach readers again."""
    media = media_or_404(media_id)
    services.change_media(media, **_payload("alt", "caption", "credit"))
    return jsonify(media=media.to_dict())


@bp.delete("/media/<id:media_id>")
@token_required
def delete_media(media_id):
    """Take an image down: off every update and story showing it, live, and its files deleted."""
    services.delete_media(media_or_404(media_id))
    return "", 204


@bp.post("/entries/<id:entry_id>/publish")
@token_required
def publish_entry(entry_id):
    """Publish a draft, submission or scheduled entry now (with If-Match: only that version)."""
    entry = entry_or_404(entry_id)
    services.publish_entry(entry, by=g.author, base_rev=_base_rev(entry))
    return jsonify(entry=entry.to_dict()), 200, _tagged(entry)


@bp.delete("/entries/<id:entry_id>")
@token_required
def delete_entry(entry_id):
    """Soft-delete an entry."""
    return jsonify(entry=services.delete_entry(entry_or_404(entry_id)).to_dict())
