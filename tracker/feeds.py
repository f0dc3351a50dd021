"""Ways for feed readers and search engines in: Atom feeds and schema.org LiveBlogPosting data."""
from feedgen.feed import FeedGenerator
from flask import Blueprint, Response, url_for
from markupsafe import Markup

from . import absolute, queries
from .models import Entry, Story, isoformat
from .sanitize import xml_text
from .web import shared_cache, story_or_404

bp = Blueprint("feeds", __name__)

FEED_SIZE = 50


def _text(*choices: str) -> str:
    """The first choice that still has text once the characters XML cannot carry are dropped."""
    # Rows stored before clean_text/clean_body dropped them may hold them, and one would make the
    # feed a 500; a title left empty would too (Atom requires one), hence the fallbacks.
    return next((text for text in map(xml_text, choices) if text), "")


def _figure(media) -> str:
    """An image as HTML for a feed reader: the largest fallback variant, with its alt text and caption."""
    state = media.to_dict()
    caption = " ".join(part for part in (state["caption"], state["credit"]) if part)
    return str(Markup('<figure><img src="{}" alt="{}" width="{}" height="{}">{}</figure>').format(
        absolute(state["url"]), state["alt"], state["width"], state["height"],
        Markup("<figcaption>{}</figcaption>").format(caption) if caption else ""))


def _atom(feed: FeedGenerator) -> Response:
    return Response(feed.atom_str(pretty=True), mimetype="application/atom+xml")


def _feed(feed_id: str, title: str, subtitle: str, link: str, self_link: str) -> FeedGenerator:
    feed = FeedGenerator()
    feed.id(feed_id)
    feed.title(title)
    feed.subtitle(subtitle or title)
    feed.link(href=link, rel="alternate")
    feed.link(href=self_link, rel="self")
    feed.language("en")
    return feed


@bp.get("/stories/<slug>/feed.atom")
@shared_cache
def story_feed(slug):
    """The story's newest updates as an Atom feed."""
    story = story_or_404(slug)
    page_url = url_for("reader.story", slug=slug, _external=True)
    feed = _feed(page_url, _text(story.title, slug), _text(story.summary), page_url,
                 url_for("feeds.story_feed", slug=slug, _external=True))
    entries, _ = queries.entry_page(story, limit=FEED_SIZE, include_pinned=True)
    feed.updated(story.updated_at)
    for entry in reversed(entries):  # feedgen puts the last added first
        item = feed.add_entry()
        link = url_for("reader.entry", slug=slug, entry_id=entry.id, _external=True)
        item.id(link)
        item.title(_text(entry.headline, entry.excerpt, "Update"))  # Atom requires a title
        item.link(href=link)
        item.published(entry.created_at)
        item.updated(entry.updated_at)
        # Images inline: feedgen 1.0 writes Atom links without their rel, so an enclosure would not be one.
        item.content(xml_text(entry.html + "".join(map(_figure, entry.media))), type="html")
        if entry.author:
            item.author(name=_text(entry.author.name, "Newsroom"))
    return _atom(feed)


@bp.get("/feed.atom")
def all_feed():
    """Every story as an Atom feed, the most recently updated first."""
    home = url_for("reader.index", _external=True)
    feed = _feed(home, "Tracker: live stories", "", home, url_for("feeds.all_feed", _external=True))
    stories = sorted((story for story, _, _ in queries.stories_overview()), key=lambda s: s.updated_at)[-FEED_SIZE:]
    feed.updated(stories[-1].updated_at if stories else None)
    for story in stories:
        item = feed.add_entry()
        link = url_for("reader.story", slug=story.slug, _external=True)
        item.id(link)
        item.title(("LIVE: " if story.is_live else "") + _text(story.title, story.slug))
        item.link(href=link)
        item.published(story.created_at)
        item.updated(story.updated_at)
        item.summary(_text(story.summary, story.title, story.slug))
    return _atom(feed)


def live_blog_posting(story: Story, entries: list[Entry]) -> dict:
    """schema.org LiveBlogPosting for a story page (embedded as JSON-LD)."""
    url = url_for("reader.story", slug=story.slug, _external=True)
    data = {
        "@context": "https://schema.org",
        "@type": "LiveBlogPosting",
        "@id": url,
        "url": url,
        "headline": story.title,
        "description": story.summary or story.title,
        "datePublished": isoformat(story.created_at),
        "dateModified": isoformat(story.updated_at),
        "coverageStartTime": isoformat(story.created_at),
        "liveBlogUpdate": [{
            "@type": "BlogPosting",
            "@id": url_for("reader.entry", slug=story.slug, entry_id=entry.id, _external=True),
            "url": url_for("reader.entry", slug=story.slug, entry_id=entry.id, _external=True),
            "headline": entry.headline or entry.excerpt,
            "datePublished": isoformat(entry.created_at),
            "dateModified": isoformat(entry.updated_at),
            "articleBody": entry.plain_text,
            **({"image": [absolute(media.to_dict()["url"]) for media in entry.media]} if entry.media else {}),
            **({"author": {"@type": "Person", "name": entry.writer}} if entry.writer else {}),
        } for entry in entries],
    }
    if story.ended_at:
        data["coverageEndTime"] = isoformat(story.ended_at)
    if story.lead_image:
        data["image"] = absolute(story.lead_image)
    return data
