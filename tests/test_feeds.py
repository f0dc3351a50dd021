"""Atom feeds, autodiscovery, schema.org LiveBlogPosting and social cards."""
import json
import re
import xml.etree.ElementTree as ET

from tracker import services
from tracker.queries import entry_or_404, story_or_404

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
        f"http://localhost/stories/{story}/entries/{n}" for n in (second, first)]
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
    assert data["headline"] == "Flood warning on the river" and data["url"] == f"http://localhost/stories/{story}"
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
                f'property="og:url" content="http://localhost/stories/{slug}"'):
        assert tag in html
