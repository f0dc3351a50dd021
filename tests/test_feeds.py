"""Atom feeds, autodiscovery, schema.org LiveBlogPosting and social cards."""
import json
import re
import xml.etree.ElementTree as ET

from sqlalchemy import update

from tracker import services
from tracker.extensions import db
from tracker.models import Entry, Story
from tracker.web import entry_or_404, story_or_404

ATOM = "{http://www.w3.org/2005/Atom}"


def seed(app, slug):
    with app.test_request_context():
        story = story_or_404(slug)
        first = services.append_entry(story, "Water **rising**", "Levels up")[0].id
        second = services.append_entry(story, "Barriers _hold_ for now")[0].id
        deleted = services.append_entry(story, "Wrong figure")[0]
        services.delete_entry(deleted)
        return first, second


def json_ld(html: str) -> dict:
    return json.loads(re.search(r'<script type="application/ld\+json">(.*?)</script>', html, re.S).group(1))


def test_story_feed_lists_visible_entries_newest_first(app, client, story):
    first, second = seed(app, story)
    response = client.get(f"/stories/{story}/feed.atom")
    assert response.status_code == 200 and response.mimetype == "application/atom+xml"
    feed = ET.fromstring(response.data)
    assert feed.find(f"{ATOM}title").text == "Flood warning on the river"
    items = feed.findall(f"{ATOM}entry")
    assert [item.find(f"{ATOM}id").text for item in items] == [
        f"{app.config['PUBLIC_URL']}/stories/{story}/entries/{n}" for n in (second, first)]
    assert items[1].find(f"{ATOM}title").text == "Levels up"
    assert "<strong>rising</strong>" in items[1].find(f"{ATOM}content").text
    assert items[0].find(f"{ATOM}title").text == "Barriers hold for now"
    assert "Wrong figure" not in response.get_data(as_text=True)


def test_all_stories_feed(app, client, story):
    with app.test_request_context():
        services.create_story("Ended storm", status="ended")
    feed = ET.fromstring(client.get("/feed.atom").data)
    titles = [item.find(f"{ATOM}title").text for item in feed.findall(f"{ATOM}entry")]
    assert set(titles) == {"LIVE: Flood warning on the river", "Ended storm"}


def test_pages_announce_their_feeds(client, story):
    assert 'type="application/atom+xml"' in client.get("/").get_data(as_text=True)
    page = client.get(f"/stories/{story}").get_data(as_text=True)
    assert ('type="application/atom+xml" title="Flood warning on the river (Atom)" '
            f'href="/stories/{story}/feed.atom"') in page


def test_story_page_has_live_blog_posting_json_ld(app, client, story):
    first, second = seed(app, story)
    data = json_ld(client.get(f"/stories/{story}").get_data(as_text=True))
    assert data["@context"] == "https://schema.org" and data["@type"] == "LiveBlogPosting"
    assert data["headline"] == "Flood warning on the river"
    assert data["url"] == f"{app.config['PUBLIC_URL']}/stories/{story}"
    assert data["coverageStartTime"].endswith("Z") and "coverageEndTime" not in data
    updates = data["liveBlogUpdate"]
    assert [u["@type"] for u in updates] == ["BlogPosting", "BlogPosting"]
    assert updates[0]["articleBody"] == "Barriers hold for now" and updates[1]["headline"] == "Levels up"
    assert all({"headline", "datePublished", "dateModified", "articleBody", "url"} <= set(u) for u in updates)
    with app.test_request_context():
        services.set_status(story_or_404(story), "ended")
        services.edit_entry(entry_or_404(first), "Water rising fast", "Levels up")
    ended = json_ld(client.get(f"/stories/{story}").get_data(as_text=True))
    assert ended["coverageEndTime"] >= ended["coverageStartTime"]
    assert ended["liveBlogUpdate"][1]["dateModified"] > ended["liveBlogUpdate"][1]["datePublished"]


def test_json_ld_cannot_break_out_of_its_script(app, client):
    with app.test_request_context():
        slug = services.create_story("</script><script>alert(1)</script>").slug
    html = client.get(f"/stories/{slug}").get_data(as_text=True)
    block = re.search(r'<script type="application/ld\+json">(.*?)</script>', html, re.S).group(1)
    assert "<" not in block and json.loads(block)["headline"].startswith("</script>")


def test_social_cards(app, client):
    with app.test_request_context():
        slug = services.create_story("Harbour fire", "Smoke over the docks",
                                     image_url="https://example.org/fire.jpg").slug
    html = client.get(f"/stories/{slug}").get_data(as_text=True)
    for tag in ('property="og:title" content="Harbour fire"',
                'property="og:description" content="Smoke over the docks"',
                'property="og:image" content="https://example.org/fire.jpg"',
                'name="twitter:card" content="summary_large_image"',
                f'property="og:url" content="{app.config["PUBLIC_URL"]}/stories/{slug}"'):
        assert tag in html
    with app.test_request_context():  # a permalink has its own card: its headline and text, the story's image
        entry = services.append_entry(story_or_404(slug), "Two warehouses are alight.", "Warehouses burn")[0].id
    html = client.get(f"/stories/{slug}/entries/{entry}").get_data(as_text=True)
    for tag in ('property="og:title" content="Warehouses burn · Harbour fire"',
                'property="og:description" content="Two warehouses are alight."',
                'property="og:image" content="https://example.org/fire.jpg"',
                f'property="og:url" content="{app.config["PUBLIC_URL"]}/stories/{slug}/entries/{entry}"'):
        assert tag in html


def test_deleted_update_leaves_no_text_in_feeds_json_ld_cards_or_embeds(app, client, story):
    """A deleted update, even the latest, pinned key event, is in no feed, JSON-LD, meta tag or embed."""
    seed(app, story)
    with app.test_request_context():
        entry = services.append_entry(story_or_404(story), "Toll rises to 999", "Wrong toll", key=True, pinned=True)[0]
        services.delete_entry(entry)
    for path in ("/feed.atom", f"/stories/{story}/feed.atom", f"/stories/{story}", f"/stories/{story}/entries?pinned=1",
                 f"/embed/{story}?key_events=1", f"/oembed?url=/stories/{story}"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert "toll" not in response.get_data(as_text=True).lower(), path


def test_feeds_stay_valid_when_text_is_written_with_characters_xml_cannot_carry(app, client):
    """The services drop U+FFFE, U+FFFF and C0 controls on write, so the feeds carry none."""
    with app.test_request_context():
        slug = services.create_story("Storm\uffff watch", "Gusts\ufffe of 100 km/h").slug
        entry = services.append_entry(story_or_404(slug), "Trees\uffff down\x01", "Roads\ufffe closed")[0]
        assert (entry.headline, entry.body) == ("Roads closed", "Trees down")
        assert story_or_404(slug).title == "Storm watch"
    for path in ("/feed.atom", f"/stories/{slug}/feed.atom"):
        response = client.get(path)
        assert response.status_code == 200, path
        ET.fromstring(response.data)


def test_feeds_of_rows_stored_with_characters_xml_cannot_carry_are_valid(app, client, story):
    """Rows stored before the write-side fix (here written around the services) still give 200 and valid Atom."""
    first, second = seed(app, story)
    with app.app_context():
        db.session.execute(update(Story).where(Story.slug == story).values(
            title="Flood\uffff warning", summary="Rising\ufffe water\x01"))
        db.session.execute(update(Entry).where(Entry.id == first).values(
            headline="Levels\uffff up", html="<p>Water\x0b \ufffe<strong>rising</strong></p>"))
        # Nothing but such characters: the title falls back rather than being empty, which Atom forbids.
        db.session.execute(update(Entry).where(Entry.id == second).values(headline="\ufffe", html="<p>\uffff</p>"))
        db.session.commit()
    response = client.get(f"/stories/{story}/feed.atom")
    assert response.status_code == 200
    feed = ET.fromstring(response.data)
    assert feed.find(f"{ATOM}title").text == "Flood warning" and feed.find(f"{ATOM}subtitle").text == "Rising water"
    items = feed.findall(f"{ATOM}entry")
    assert [item.find(f"{ATOM}title").text for item in items] == ["Update", "Levels up"]
    assert items[1].find(f"{ATOM}content").text == "<p>Water <strong>rising</strong></p>"
    everything = client.get("/feed.atom")
    assert everything.status_code == 200
    assert ET.fromstring(everything.data).find(f"{ATOM}entry/{ATOM}title").text == "LIVE: Flood warning"
