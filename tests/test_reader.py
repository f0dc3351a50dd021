"""Public pages: story list, live story page, permalinks, older pages, errors and headers."""
import pytest

from tracker import services
from tracker.queries import story_or_404


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
        from tracker.queries import entry_or_404
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
        from tracker.queries import entry_or_404
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
