"""Public pages: the story list, the live story page, permalinks and older pages."""
from flask import Blueprint, abort, jsonify, render_template, request

from . import queries
from .feeds import live_blog_posting
from .i18n import speak
from .web import entry_or_404, requested_page, shared_cache, story_or_404

bp = Blueprint("reader", __name__)


@bp.get("/")
def index():
    """List stories, live ones first, with the time of their latest update."""
    return render_template("index.html", stories=queries.stories_overview())


@bp.get("/stories/<slug>")
@shared_cache
def story(slug):
    """The live story page: pinned entry, key events and the newest entries."""
    story = story_or_404(slug)
    speak(story.language)
    rev = story.rev  # read before the entries, so the page can only be behind its rev, never ahead
    entries, next_cursor = requested_page(story)
    pinned = queries.pinned_entry(story)
    return render_template("story.html", story=story, rev=rev, entries=entries, next_cursor=next_cursor,
                           pinned=pinned, key_events=queries.key_events(story),
                           older=request.args.get("before") is not None,
                           structured_data=live_blog_posting(story, ([pinned] if pinned else []) + entries))


@bp.get("/stories/<slug>/entries")
def older(slug):
    """A page of entries as JSON for "Load older", or oldest first for "Load more" (`pinned=1`: with the pinned one)."""
    entries, next_cursor = requested_page(story_or_404(slug), include_pinned=request.args.get("pinned") == "1",
                                          orderable=True)
    return jsonify(entries=[e.to_dict() for e in entries], next=next_cursor)


@bp.get("/stories/<slug>/entries/<id:entry_id>")
def entry(slug, entry_id):
    """One entry's permalink page, with its earlier versions."""
    story = story_or_404(slug)
    speak(story.language)
    entry = entry_or_404(entry_id, story, published=True)
    if entry.deleted:
        abort(410, description="This update was removed by the newsroom.")
    return render_template("entry.html", story=story, entry=entry)


@bp.get("/accessibility")
def accessibility():
    """The accessibility statement: the standard the pages meet, how it is checked, and whom to tell."""
    return render_template("accessibility.html")
