"""Embeds: the framable widget pages, oEmbed and discovery."""
import http.server
import re
import threading
from functools import partial

import pytest
import socketio
from helpers import Editor, LiveServer, free_port
from playwright.sync_api import expect

from tracker import services
from tracker.web import entry_or_404, story_or_404

# The widget reads through the same queries as the reader page (test_reader runs on both engines).
pytestmark = pytest.mark.engine_independent


def add(app, slug, n):
    with app.test_request_context():
        story = story_or_404(slug)
        return [services.append_entry(story, f"Update {i}", f"Headline {i}")[0].id for i in range(n)]


def test_embed_is_framable_by_anyone_and_sets_no_cookie(app, client, story):
    add(app, story, 3)
    response = client.get(f"/embed/{story}")
    assert response.status_code == 200
    assert "frame-ancestors *" in response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert "X-Frame-Options" not in response.headers and "Set-Cookie" not in response.headers
    html = response.get_data(as_text=True)
    assert '<base target="_blank">' in html and "Headline 2" in html


@pytest.mark.parametrize("path", ["/", "/stories/{slug}", "/login", "/api/stories"])
def test_other_pages_cannot_be_framed(client, story, path):
    response = client.get(path.format(slug=story))
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"


def test_embed_options(app, client, story):
    ids = add(app, story, 5)
    with app.test_request_context():
        services.set_key(entry_or_404(ids[0]), True)
    html = client.get(f"/embed/{story}?limit=2&theme=dark&key_events=1").get_data(as_text=True)
    assert 'class="embed embed--dark"' in html and 'data-limit="2"' in html
    assert len(re.findall(r'<article class="entry', html)) == 3  # two entries and the template
    assert "Key events" in html and f'/stories/{story}/entries/{ids[0]}"' in html
    assert "Key events" not in client.get(f"/embed/{story}").get_data(as_text=True)


@pytest.mark.parametrize("query", ["limit=0", "limit=51", "limit=x", "theme=neon"])
def test_bad_embed_options_are_400(client, story, query):
    assert client.get(f"/embed/{story}?{query}").status_code == 400


def test_single_entry_embed(app, client, story):
    first, second = add(app, story, 2)
    html = client.get(f"/embed/{story}/entries/{first}").get_data(as_text=True)
    assert "Headline 0" in html and "Headline 1" not in html and f'data-single="{first}"' in html
    assert client.get(f"/embed/{story}/entries/999").status_code == 404


def test_oembed_for_story_and_entry(app, client, story):
    [entry_id] = add(app, story, 1)
    response = client.get(f"/oembed?url=http://localhost/stories/{story}&format=json")
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    data = response.get_json()
    assert data["version"] == "1.0" and data["type"] == "rich" and data["provider_name"] == "Tracker"
    assert (data["width"], data["height"]) == (600, 800)
    assert f'<iframe src="{app.config["PUBLIC_URL"]}/embed/{story}"' in data["html"]
    small = client.get(f"/oembed?url=http://localhost/stories/{story}/entries/{entry_id}&maxwidth=320&maxheight=200")
    data = small.get_json()
    assert (data["width"], data["height"]) == (320, 200) and data["title"] == "Headline 0"
    assert f"/embed/{story}/entries/{entry_id}" in data["html"] and 'width="320"' in data["html"]


def test_oembed_of_one_update_answers_a_height_that_fits_it(app, client, story):
    with app.test_request_context():
        short = services.append_entry(story_or_404(story), "Roads are closing.", "Closures")[0].id
        long = services.append_entry(story_or_404(story), "Water rising. " * 60)[0].id
    url = f"/oembed?url=http://localhost/stories/{story}/entries/"
    fits = client.get(url + str(short)).get_json()
    assert fits["width"] == 600 and 150 < fits["height"] < 300 and f'height="{fits["height"]}"' in fits["html"]
    narrow, wide = (client.get(url + f"{long}&maxwidth={w}").get_json()["height"] for w in (320, 600))
    assert fits["height"] < wide < narrow <= 800


@pytest.mark.parametrize("query, status", [
    ("url=http://localhost/stories/nope", 404), ("url=http://localhost/login", 404), ("url=", 404),
    ("url=http://localhost/stories/{slug}&format=xml", 501), ("url=http://localhost/stories/{slug}&maxwidth=-5", 400)])
def test_oembed_errors(client, story, query, status):
    response = client.get("/oembed?" + query.format(slug=story))
    assert response.status_code == status


def test_deleted_entry_is_gone_from_oembed_and_its_widget(app, client, story):
    """After DELETE /api/entries/<id>, oEmbed for its permalink and its one-entry widget are 410s without its text."""
    gone, kept = add(app, story, 2)
    with app.test_request_context():
        token = services.create_token("desk")[1]
    assert client.delete(f"/api/entries/{gone}", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    oembed = client.get(f"/oembed?url=http://localhost/stories/{story}/entries/{gone}&format=json",
                        headers={"Accept": "application/json"})
    assert oembed.status_code == 410 and "removed" in oembed.get_json()["error"]
    widget = client.get(f"/embed/{story}/entries/{gone}")
    html = widget.get_data(as_text=True)
    assert widget.status_code == 410 and "This update was removed." in html
    assert "Headline 0" not in oembed.get_data(as_text=True) + html and "Update 0" not in html
    # A deletion is final: the widget follows nothing live, but still tells the host page its height.
    assert "js/live.js" not in html and "js/embed-frame.js" in html
    assert client.get(f"/oembed?url=/stories/{story}/entries/{kept}").get_json()["title"] == "Headline 1"


def test_oembed_title_is_escaped_in_the_html(app, client):
    with app.test_request_context():
        slug = services.create_story('Quote " and <tag>').slug
    html = client.get(f"/oembed?url=/stories/{slug}").get_json()["html"]
    assert 'title="Quote &#34; and &lt;tag&gt;"' in html


def test_pages_announce_oembed(app, client, story):
    [entry_id] = add(app, story, 1)
    for path in (f"/stories/{story}", f"/stories/{story}/entries/{entry_id}"):
        html = client.get(path).get_data(as_text=True)
        assert 'type="application/json+oembed"' in html and "/oembed?url=http" in html


@pytest.fixture
def host_site(tmp_path):
    """Serves files written to tmp_path on another localhost port: a news site that embeds us."""
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    host = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    threading.Thread(target=host.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{host.server_address[1]}"
    host.shutdown()


def test_oembed_from_a_browser_on_another_site_shows_a_live_widget(browser, live_server, tmp_path, host_site):
    editor = Editor(live_server.url)
    slug = editor.create_story("Rail strike")
    editor.post(slug, "Trains halted.", "First")
    (tmp_path / "oembed.html").write_text(
        '<!doctype html><title>CMS</title><div id="slot"></div><script>'
        f'fetch("{live_server.url}/oembed?url=" + encodeURIComponent("{live_server.url}/stories/{slug}") + '
        '"&maxwidth=500&format=json").then(r => r.json()).then(d => {'
        'document.getElementById("slot").innerHTML = d.html; document.title = d.type + " " + d.width; });'
        '</script>')
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"{host_site}/oembed.html")
        expect(page).to_have_title("rich 500", timeout=10_000)
        frame = page.frame_locator("#slot iframe")
        expect(frame.locator('[data-connection="live"]')).to_be_visible(timeout=10_000)
        editor.post(slug, "Talks called for Friday.", "Second")
        expect(frame.locator(".entry__headline", has_text="Second")).to_be_visible(timeout=10_000)
    finally:
        context.close()


def test_embed_on_another_origin_updates_live_and_fits_its_content(browser, live_server, tmp_path, host_site):
    """A host page on one localhost port embeds a story from the server on another."""
    editor = Editor(live_server.url)
    slug = editor.create_story("Bridge collapse")
    editor.post(slug, "Rescue teams on site.", "First")
    (tmp_path / "index.html").write_text(
        f'<!doctype html><title>Host</title><h1>Our news site</h1>'
        f'<script src="{live_server.url}/static/embed.js" data-story="{slug}" data-theme="dark" async></script>')
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"{host_site}/index.html")
        frame = page.frame_locator("iframe")
        expect(frame.locator('[data-connection="live"]')).to_be_visible(timeout=10_000)
        iframe = page.locator("iframe")
        page.wait_for_function("document.querySelector('iframe').style.height !== '400px'")
        before = iframe.bounding_box()["height"]
        editor.post(slug, "A second span has fallen.", "Second")
        expect(frame.locator(".entry__headline", has_text="Second")).to_be_visible(timeout=10_000)
        page.wait_for_function(f"document.querySelector('iframe').getBoundingClientRect().height > {before}")
        inner = frame.locator("html").evaluate("e => Math.ceil(e.getBoundingClientRect().height)")
        assert abs(iframe.bounding_box()["height"] - inner) <= 1  # no scrollbar inside the widget
        assert frame.locator(".entry__time").first.get_attribute("href").endswith(f"/stories/{slug}/entries/2")
    finally:
        context.close()


@pytest.mark.parametrize("allowed, origin, accepted", [
    (None, "http://news.example", False),
    ("http://news.example", "http://news.example", True),
    ("http://news.example", "http://other.example", False),
    ("*", "http://anyone.example", True),
])
def test_socketio_cors_origins(database_url, allowed, origin, accepted):
    """Pages on other origins may connect only when SOCKETIO_CORS_ORIGINS lets them.

    (Long-polling here: the websocket client library adds an Origin header of its own.)"""
    server = LiveServer(database_url, **({"SOCKETIO_CORS_ORIGINS": allowed} if allowed else {}))
    server.start()
    client = socketio.Client(reconnection=False)
    try:
        if accepted:
            client.connect(server.url, headers={"Origin": origin}, transports=["polling"], wait_timeout=10)
            assert client.connected
        else:
            with pytest.raises(socketio.exceptions.ConnectionError):
                client.connect(server.url, headers={"Origin": origin}, transports=["polling"], wait_timeout=10)
    finally:
        client.disconnect()
        server.stop()
