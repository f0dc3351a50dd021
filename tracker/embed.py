"""Embeds for other sites: the live widget pages and oEmbed discovery.

Embed pages are the only ones any site may frame (see create_app's security headers). They
use no session, so they set no cookie.
"""
import re
from urllib.parse import urlsplit

from flask import Blueprint, abort, jsonify, render_template, request, url_for
from markupsafe import escape

from . import queries
from .i18n import speak
from .models import ID_PATTERN, Entry, plain_text, variant_height
from .web import entry_or_404, int_arg, shared_cache, story_or_404

bp = Blueprint("embed", __name__)

THEMES = ("light", "dark")
DEFAULT_LIMIT, MAX_LIMIT = 10, 50
OEMBED_WIDTH, OEMBED_HEIGHT = 600, 800
# A one-update widget's height is estimated from its text and images at the requested width: the
# widget's own chrome, then about 8 px per character across and 24 px per line (tracker.css).
WIDGET_CHROME, WIDGET_PADDING, CHAR_WIDTH, LINE_HEIGHT, HEADLINE_HEIGHT = 150, 48, 8, 24, 32
_EMBEDDABLE = re.compile(rf"^/stories/(?P<slug>[^/]+)(?:/entries/(?P<entry>{ID_PATTERN}))?/?$")


def _options() -> tuple[str, int, bool]:
    theme = request.args.get("theme", "light")
    if theme not in THEMES:
        abort(400, description="'theme' must be light or dark.")
    return theme, int_arg("limit", DEFAULT_LIMIT, 1, MAX_LIMIT), request.args.get("key_events") == "1"


@bp.get("/embed/<slug>")
@shared_cache
def story(slug):
    """A compact live view of a story: the newest entries, optionally its key events."""
    story = story_or_404(slug)
    speak(story.language)
    theme, limit, with_key_events = _options()
    rev = story.rev
    entries, next_cursor = queries.entry_page(story, limit=limit, include_pinned=True)
    return render_template("embed.html", story=story, rev=rev, entries=entries, next_cursor=next_cursor,
                           theme=theme, limit=limit,
                           key_events=queries.key_events(story) if with_key_events else None)


@bp.get("/embed/<slug>/entries/<id:entry_id>")
def entry(slug, entry_id):
    """One entry as a widget that follows corrections; a removed one answers 410 and says so."""
    story = story_or_404(slug)
    entry = entry_or_404(entry_id, story, published=True)
    speak(story.language)
    theme, _, _ = _options()
    page = render_template("embed.html", story=story, rev=story.rev, entries=[] if entry.deleted else [entry],
                           next_cursor=None, theme=theme, limit=1, key_events=None, single=entry)
    # Deleted means gone: the 410 widget shows none of the entry's text (and embed.html leaves out
    # the live script, as a deletion is final); a live widget whose entry is deleted says so too.
    return page, 410 if entry.deleted else 200


@bp.get("/oembed")
def oembed():
    """oEmbed 1.0 for story and entry permalinks: a `rich` response holding an iframe."""
    if request.args.get("format", "json") != "json":
        abort(501, description="Only format=json is supported.")
    match = _EMBEDDABLE.match(urlsplit(request.args.get("url", "")).path)
    if not match:
        abort(404, description="'url' must be the address of a story or an update on this site.")
    story = story_or_404(match["slug"])
    width = min(int_arg("maxwidth", OEMBED_WIDTH, 100, 10_000), OEMBED_WIDTH)
    height = min(int_arg("maxheight", OEMBED_HEIGHT, 100, 10_000), OEMBED_HEIGHT)
    if match["entry"]:
        entry = entry_or_404(int(match["entry"]), story, published=True)
        if entry.deleted:
            abort(410, description="This update was removed by the newsroom, so it can no longer be embedded.")
        src = url_for("embed.entry", slug=story.slug, entry_id=entry.id, _external=True)
        title = entry.headline or entry.excerpt
        height = min(height, fitted_height(entry, width))
    else:
        src, title = url_for("embed.story", slug=story.slug, _external=True), story.title
    html = (f'<iframe src="{src}" width="{width}" height="{height}" title="{escape(title)}" loading="lazy" '
            f'style="border:0;max-width:100%"></iframe>')
    response = jsonify(version="1.0", type="rich", provider_name="Tracker",
                       provider_url=url_for("reader.index", _external=True), title=title,
                       html=html, width=width, height=height, cache_age=300)
    # Public data: let consumers that fetch it from the browser read it too.
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


def fitted_height(entry: Entry, width: int) -> int:
    """About how tall one update's widget is at this width: its chrome, text lines and images."""
    inner = max(width - WIDGET_PADDING, 100)
    per_line = max(inner // CHAR_WIDTH, 1)
    paragraphs = [p for p in plain_text(entry.html.replace("</p>", "</p>\n")).split("\n") if p.strip()]
    lines = sum(-(-len(p) // per_line) for p in paragraphs)
    images = sum(variant_height(media.width, media.height, min(inner, media.width)) for media in entry.media)
    return WIDGET_CHROME + (HEADLINE_HEIGHT if entry.headline else 0) + lines * LINE_HEIGHT + images
