"""What the blueprints share to read a request: query arguments, 404s for what is not there, and
the caching of anonymous readers' pages."""
import functools
import hashlib
import re

from flask import Response, abort, current_app, make_response, request
from flask_login import current_user

from . import queries, services
from .models import ID_PATTERN, ORDERS, Entry, Media, Story


def wants_json() -> bool:
    """Tell whether the caller (a script, or the editor page's fetch) asked for a JSON answer."""
    return request.accept_mimetypes.best == "application/json"


def story_or_404(slug: str) -> Story:
    """The story with this slug, or a 404."""
    story = queries.story_by_slug(slug)
    if story is None:
        abort(404, description=f"There is no story at /stories/{slug}.")
    return story


def entry_or_404(entry_id: int, story: Story | None = None, published: bool = False) -> Entry:
    """The entry with this id (in this story, when given; published, when asked), or a 404."""
    entry = queries.entry_by_id(entry_id, story, published)
    if entry is None:
        abort(404, description="There is no such update.")
    return entry


def json_object(*allowed: str) -> dict:
    """The request's JSON object, with only the allowed fields (a 400 for anything but an object)."""
    try:
        data = request.get_json(silent=True)
    except RecursionError:  # absurdly deep nesting
        data = None
    if not isinstance(data, dict):
        abort(400, description="Send a JSON object with Content-Type: application/json.")
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise services.ServiceError(f"Unknown field(s): {', '.join(unknown)}. Allowed: {', '.join(allowed)}.")
    return data


def shared_cache(view):
    """Let browsers and shared caches (nginx's micro-cache, a CDN) keep an anonymous reader's copy of
    a story's page for PAGE_CACHE_SECONDS, and serve it stale while revalidating: its weak ETag is the
    story's revision, the request's path and query, and this build's templates and scripts, so a
    matching If-None-Match is a 304 without rendering. A page behind by a few revisions is never
    wrong for long: its script joins at the page's revision and catches up. Signed-in staff see
    their own pages: uncached."""
    @functools.wraps(view)
    def cached(slug, **kwargs):
        if current_user.is_authenticated:
            response = make_response(view(slug, **kwargs))
            response.headers["Cache-Control"] = "private, no-store"
            return response
        key = f"{story_or_404(slug).rev} {request.full_path} {current_app.config['BUILD_ID']}"
        tag = hashlib.sha256(key.encode()).hexdigest()[:24]
        response = Response(status=304) if request.if_none_match.contains_weak(tag) \
            else make_response(view(slug, **kwargs))
        if response.status_code in (200, 304):
            seconds = current_app.config["PAGE_CACHE_SECONDS"]
            response.set_etag(tag, weak=True)
            response.vary.add("Cookie")  # a cache keeps the cookieless copy apart from staff's requests
            response.headers["Cache-Control"] = (f"public, max-age={seconds}, s-maxage={seconds}, "
                                                 f"stale-while-revalidate={3 * seconds}")
        return response
    return cached


def media_or_404(media_id: int) -> Media:
    """The uploaded image with this id, or a 404."""
    media = queries.media_by_ids([media_id]).get(media_id)
    if media is None:
        abort(404, description="There is no such image.")
    return media


def int_arg(name: str, default: int | None, low: int, high: int) -> int | None:
    """A whole-number query argument within [low, high], or a clear 400."""
    value = request.args.get(name, "")
    if not value:
        return default
    # At most 19 digits, so int() never meets Python's limit for huge digit strings.
    if not re.fullmatch(r"[0-9]{1,19}", value) or not low <= int(value) <= high:
        abort(400, description=f"'{name}' must be a whole number from {low} to {high}.")
    return int(value)


def cursor_arg(name: str = "before") -> int | None:
    """A cursor query argument (`before`, `after`): the id of the last update already shown, or None."""
    value = request.args.get(name, "")
    if not value:
        return None
    if not re.fullmatch(ID_PATTERN, value):
        abort(400, description=f"'{name}' must be the id of an update.")
    return int(value)


def requested_page(story: Story, limit: int = 20, include_pinned: bool = False,
                   orderable: bool = False) -> tuple[list[Entry], int | None]:
    """queries.entry_page from the `before` argument, or (when `orderable`) `order=oldest` and `after`
    for readers who chose that order; a cursor from another story is a 400."""
    oldest = False
    if orderable:
        order = request.args.get("order", "newest")
        if order not in ORDERS:
            abort(400, description="'order' must be newest or oldest.")
        oldest = order == "oldest"
    name = "after" if oldest else "before"
    try:
        return queries.entry_page(story, before=None if oldest else cursor_arg(), limit=limit,
                                  include_pinned=include_pinned, after=cursor_arg("after") if oldest else None,
                                  oldest=oldest)
    except queries.UnknownCursor:
        abort(400, description=f"'{name}' must be the id of an update in this story.")



# Views that take an image upload: their requests may be larger than any other (see allow_uploads).
UPLOADS = {"api.upload_media", "editor.upload_media", "editor.story_settings"}


def allow_uploads() -> None:
    """Raise the request size cap for uploads to MEDIA_MAX_BYTES, and room for the other fields; runs
    before the CSRF check, which reads the form."""
    if request.endpoint not in UPLOADS:
        return
    if "Authorization" not in request.headers and not current_user.is_authenticated:
        return  # nobody's upload: the usual cap, and the view refuses it
    limit = current_app.config["MEDIA_MAX_BYTES"]
    if (request.content_length or 0) > limit + 64 * 1024:
        abort(413, description=services.too_large(limit))
    request.max_content_length = limit + 64 * 1024


def upload():
    """The image a multipart request uploads (`file`, `alt`, `caption`, `credit`), through the service."""
    file = request.files.get("file")
    if file is None:
        raise services.ServiceError("Send the image as the multipart field 'file'.", "file", 415)
    data = file.read(current_app.config["MEDIA_MAX_BYTES"] + 1)  # one byte over is enough to refuse it
    return services.add_media(data, request.form.get("alt", ""), request.form.get("caption", ""),
                              request.form.get("credit", ""))
