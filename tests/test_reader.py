"""Public pages: story list, live story page, permalinks, older pages, errors, headers and absolute links."""
import json
import re
import xml.etree.ElementTree as ET

import pytest
from flask import url_for

from tracker import create_app, services
from tracker.extensions import db
from tracker.web import story_or_404

# What a client that wants our absolute links to point elsewhere sends.
FORGED = {"Host": "evil.example", "X-Forwarded-Host": "evil.example"}


def add(app, slug, n=1, **kwargs):
    """Append n entries to a story and return their ids."""
    with app.test_request_context():
        story = story_or_404(slug)
        return [services.append_entry(story, f"Update number {i}", **kwargs)[0].id for i in range(n)]


def test_index_lists_live_stories_first_with_latest_time(app, client):
    with app.test_request_context():
        ended = services.create_story("Old storm", status="ended")
        services.create_story("Fresh flood")
        services.append_entry(services.create_story("Busy election"), "Polls close")
        ended_slug = ended.slug
    html = client.get("/").get_data(as_text=True)
    assert html.index("Busy election") < html.index("Fresh flood") < html.index("Old storm")
    assert ended_slug in html and "1 update" in html and "<time datetime=" in html


def test_templates_are_compiled_once_per_process_not_once_per_app(app, client, story):
    """A second app in the process renders a story page with the code the first one compiled."""
    assert client.get(f"/stories/{story}").status_code == 200
    other = create_app({key: app.config[key] for key in ("TESTING", "SECRET_KEY", "DATABASE_URL", "MEDIA_DIR")})
    compiled, compile_ = [], other.jinja_env.compile
    other.jinja_env.compile = lambda *args, **kwargs: compiled.append(args) or compile_(*args, **kwargs)
    page = other.test_client().get(f"/stories/{story}")
    assert page.status_code == 200 and "<article" in page.get_data(as_text=True)
    assert compiled == []


def test_story_page_renders_newest_20_with_times_and_permalinks(app, client, story):
    ids = add(app, story, 25)
    response = client.get(f"/stories/{story}")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert f'id="entry-{ids[-1]}"' in html and f'id="entry-{ids[5]}"' in html
    assert f'id="entry-{ids[4]}"' not in html
    assert html.index(f'id="entry-{ids[-1]}"') < html.index(f'id="entry-{ids[-2]}"')
    assert f'href="/stories/{story}/entries/{ids[-1]}"' in html
    assert 'data-format="time"' in html and "UTC</time>" in html
    assert f'href="/stories/{story}?before={ids[5]}"' in html
    assert 'data-rev="26"' in html


def test_byline_of_an_entry_without_account_shows_on_story_and_permalink_pages(app, client, story):
    [entry_id] = add(app, story, byline="Our correspondent in Kyiv")
    for path in (f"/stories/{story}", f"/stories/{story}/entries/{entry_id}"):
        html = client.get(path).get_data(as_text=True)
        assert '<span class="entry__author">By Our correspondent in Kyiv</span>' in html


def test_pinned_entry_is_on_top_and_key_events_are_listed(app, client, story):
    [pinned] = add(app, story, pinned=True)
    [key] = add(app, story, key=True)
    html = client.get(f"/stories/{story}").get_data(as_text=True)
    slot = html[html.index("data-pinned-slot"):html.index("data-entries>")]
    assert f'id="entry-{pinned}"' in slot and f'id="entry-{key}"' not in slot
    key_list = html[html.index("data-key-events"):html.index("data-key-empty")]
    assert f'href="#entry-{key}"' in key_list
    assert f'<a class="entry__time" href="#entry-{key}"' in html


def test_key_event_beyond_the_first_page_links_to_its_permalink(app, client, story):
    [key] = add(app, story, key=True)
    add(app, story, 20)
    key_list = client.get(f"/stories/{story}").get_data(as_text=True).split("data-key-events")[1]
    assert f'href="/stories/{story}/entries/{key}"' in key_list.split("</ol>")[0]


def test_older_page_by_cursor_without_javascript(app, client, story):
    ids = add(app, story, 25)
    html = client.get(f"/stories/{story}?before={ids[5]}").get_data(as_text=True)
    assert f'id="entry-{ids[4]}"' in html and f'id="entry-{ids[0]}"' in html
    assert f'id="entry-{ids[5]}"' not in html and "Back to the latest" in html


def test_older_entries_as_json(app, client, story):
    ids = add(app, story, 25)
    data = client.get(f"/stories/{story}/entries?before={ids[5]}").get_json()
    assert [e["id"] for e in data["entries"]] == list(reversed(ids[:5]))
    assert data["next"] is None
    first = client.get(f"/stories/{story}/entries").get_json()
    assert len(first["entries"]) == 20 and first["next"] == ids[5]


@pytest.mark.parametrize("query", ["?before=abc", "?before=99999"])
def test_bad_cursor_is_a_clear_400(app, client, story, query):
    response = client.get(f"/stories/{story}/entries{query}", headers={"Accept": "application/json"})
    assert response.status_code == 400
    assert "before" in response.get_json()["error"]


def test_entry_permalink_and_history(app, client, story):
    [entry_id] = add(app, story)
    with app.test_request_context():
        from tracker.web import entry_or_404
        services.edit_entry(entry_or_404(entry_id), "Corrected text")
    html = client.get(f"/stories/{story}/entries/{entry_id}").get_data(as_text=True)
    assert "Corrected text" in html and "Earlier versions" in html and "Update number 0" in html


@pytest.mark.parametrize("path", ["/stories/nope", "/stories/nope/entries/1", "/stories/nope/entries"])
def test_unknown_story_is_a_404_page(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert "There is no story" in response.get_data(as_text=True)


def test_entry_of_another_story_is_a_404(app, client, story):
    with app.test_request_context():
        other = services.create_story("Other")
        entry_id = services.append_entry(other, "Elsewhere")[0].id
    assert client.get(f"/stories/{story}/entries/{entry_id}").status_code == 404


def test_deleted_entry_is_gone_from_page_and_permalink(app, client, story):
    [entry_id] = add(app, story)
    with app.test_request_context():
        from tracker.web import entry_or_404
        services.delete_entry(entry_or_404(entry_id))
    assert f'id="entry-{entry_id}"' not in client.get(f"/stories/{story}").get_data(as_text=True)
    response = client.get(f"/stories/{story}/entries/{entry_id}")
    assert response.status_code == 410 and "removed" in response.get_data(as_text=True)


def test_user_text_is_escaped_on_output(app, client):
    with app.test_request_context():
        slug = services.create_story("<script>alert('t')</script> Storm", "<b>summary</b>").slug
        services.append_entry(story_or_404(slug), "body", headline="<img src=x onerror=alert(1)>")
    html = client.get(f"/stories/{slug}").get_data(as_text=True)
    assert "<script>alert" not in html and "&lt;script&gt;" in html
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "&lt;b&gt;summary&lt;/b&gt;" in html


def test_security_headers_on_pages(client, story):
    response = client.get(f"/stories/{story}")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"


@pytest.mark.parametrize("path, status", [
    ("/stories/{slug}/entries/99999999999999999999999", 404),
    ("/stories/{slug}/entries?before=99999999999999999999999", 400),
    ("/stories/{slug}?before=%C2%B2", 400),
    ("/stories/{slug}/entries?before=-1", 400),
])
def test_out_of_range_ids_and_cursors_are_clear_errors(client, story, path, status):
    response = client.get(path.format(slug=story))
    assert response.status_code == status
    assert "Something went wrong" not in response.get_data(as_text=True)


@pytest.mark.parametrize("path", [
    "/stories/{slug}", "/stories/{slug}/entries/{entry}", "/oembed?url=/stories/{slug}",
    "/oembed?url=/stories/{slug}/entries/{entry}", "/embed/{slug}?key_events=1", "/embed/{slug}/entries/{entry}",
    "/stories/{slug}/feed.atom", "/feed.atom",
])
def test_absolute_links_never_come_from_the_host_header(app, client, story, path):
    """A forged Host or X-Forwarded-Host is served as usual, with every absolute link on PUBLIC_URL."""
    [entry] = add(app, story, key=True)
    response = client.get(path.format(slug=story, entry=entry), headers=FORGED)
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and "evil.example" not in body
    assert f"{app.config['PUBLIC_URL']}/" in body


@pytest.fixture
def public_app(database_url):
    """An app whose PUBLIC_URL is set, as in production."""
    app = create_app({"TESTING": True, "SECRET_KEY": "test-secret", "DATABASE_URL": database_url,
                      "PUBLIC_URL": "https://live.example.com/"})
    with app.app_context():
        db.create_all()
    yield app
    with app.app_context():
        db.engine.dispose()


def test_absolute_links_start_with_public_url_and_relative_ones_stay_relative(public_app):
    """With PUBLIC_URL set, canonical, og:url, JSON-LD, oEmbed, embed and feed links start with it."""
    base = "https://live.example.com"
    with public_app.test_request_context():
        slug = services.create_story("Harbour fire").slug
        entry = services.append_entry(story_or_404(slug), "Smoke over the docks", key=True)[0].id
    client = public_app.test_client()
    page = client.get(f"/stories/{slug}", headers=FORGED).get_data(as_text=True)
    assert f'<link rel="canonical" href="{base}/stories/{slug}">' in page
    assert f'property="og:url" content="{base}/stories/{slug}"' in page
    ld = json.loads(re.search(r'<script type="application/ld\+json">(.*?)</script>', page, re.S).group(1))
    assert ld["url"] == f"{base}/stories/{slug}"
    assert ld["liveBlogUpdate"][0]["url"] == f"{base}/stories/{slug}/entries/{entry}"
    assert f'class="entry__permalink" href="/stories/{slug}/entries/{entry}"' in page
    assert f'href="/stories/{slug}/feed.atom"' in page and 'href="/static/css/tracker.css"' in page
    oembed = client.get(f"/oembed?url={base}/stories/{slug}/entries/{entry}", headers=FORGED).get_json()
    assert oembed["provider_url"] == f"{base}/" and f'src="{base}/embed/{slug}/entries/{entry}"' in oembed["html"]
    widget = client.get(f"/embed/{slug}?key_events=1", headers=FORGED).get_data(as_text=True)
    assert f'href="{base}/stories/{slug}/entries/{entry}"' in widget and f'href="{base}/stories/{slug}"' in widget
    feed = ET.fromstring(client.get(f"/stories/{slug}/feed.atom", headers=FORGED).data)
    assert feed.find("{http://www.w3.org/2005/Atom}id").text == f"{base}/stories/{slug}"
    # werkzeug's own redirects (a missing trailing slash) are built on it too.
    assert client.get("/editor", headers=FORGED).headers["Location"] == f"{base}/editor/"


def test_public_url_defaults_to_host_and_port_and_must_be_an_origin(database_url):
    """Unset, PUBLIC_URL is http://HOST:PORT from the settings, not the request; a non-origin is refused."""
    app = create_app({"SECRET_KEY": "test-secret", "DATABASE_URL": database_url, "HOST": "10.1.2.3", "PORT": 8123})
    with app.test_request_context("/", headers=FORGED):
        assert url_for("reader.index", _external=True) == "http://10.1.2.3:8123/"
        assert url_for("reader.index") == "/"
    for bad in ("live.example.com", "ftp://live.example.com", "https://live.example.com/news"):
        with pytest.raises(ValueError, match="PUBLIC_URL must be an origin"):
            create_app({"SECRET_KEY": "test-secret", "DATABASE_URL": database_url, "PUBLIC_URL": bad})


@pytest.mark.parametrize("path", ["/stories/{slug}", "/embed/{slug}", "/stories/{slug}/feed.atom"])
def test_anonymous_pages_are_cacheable_by_revision_and_staff_pages_are_not(app, story, editor_client, path):
    url, client = path.format(slug=story), app.test_client()  # editor_client is the `client` fixture, logged in
    first = client.get(url)
    control = first.headers["Cache-Control"]
    assert first.status_code == 200 and "Set-Cookie" not in first.headers
    assert "public" in control and re.search(r"s-maxage=[1-9]", control) and "stale-while-revalidate" in control
    assert "private" not in control and "no-store" not in control and first.headers["ETag"]
    again = client.get(url, headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and again.headers["ETag"] == first.headers["ETag"] and not again.data
    add(app, story)  # a new revision: the copy a cache holds is no longer current
    fresh = client.get(url, headers={"If-None-Match": first.headers["ETag"]})
    assert fresh.status_code == 200 and fresh.headers["ETag"] != first.headers["ETag"]
    staff = editor_client.get(url)
    assert staff.headers["Cache-Control"] == "private, no-store" and "ETag" not in staff.headers
