"""End-to-end tests: the real server (`python app.py`) driven through a real Chromium.

The tests share one server process per module (`server`, built like conftest's `live_server`),
each on its own story; the restart test stops and starts a server, so it takes its own
`live_server`. Every test opens fresh browser contexts and closes them. Synchronisation uses
Playwright's waiting only, never sleeps.
"""
from __future__ import annotations

import base64
import io
import json
import re
import time
import uuid
from contextlib import contextmanager
from datetime import datetime, timedelta

import pytest
import requests
from helpers import PASSWORD, LiveServer, axe_violations, browser_login, csrf_from, fresh_database
from PIL import Image
from playwright.sync_api import Page, expect

# What the browser shows does not depend on the engine; test_e2e covers the live path on PostgreSQL.
pytestmark = pytest.mark.engine_independent

WAIT = 10_000         # ms: ordinary live updates arrive well within this
RECONNECT = 30_000    # ms: socket.io's backoff after a server restart (delays of 1, 2, 4, 8 s ± 50 %)


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory, database_engine):
    """A running `python app.py` with its own database and the editor 'alice', shared by this module."""
    with fresh_database(tmp_path_factory.mktemp("browser"), database_engine) as url:
        live = LiveServer(url, READERS_SECONDS="1")
        live.flask("user", "create", "alice", "--password-stdin", input_text=PASSWORD + "\n")
        live.start()
        yield live
        live.stop()


@pytest.fixture
def server(shared_server):
    """The shared server, checked to be running before and after each test (with its log if not)."""
    def check(when):
        code = shared_server.process.poll()
        assert code is None, f"the server process exited with {code} {when}:\n{''.join(shared_server.log)}"

    check("before this test")
    yield shared_server
    check("during this test")


# HTTP helpers (a logged-in requests session, for fast seeding)

def http_login(server, username: str = "alice") -> requests.Session:
    """A requests session logged in through the /login form."""
    session = requests.Session()
    page = session.get(f"{server.url}/login", timeout=10)
    response = session.post(f"{server.url}/login", timeout=10, allow_redirects=False, data={
        "csrf_token": csrf_from(page.text), "username": username, "password": PASSWORD})
    assert response.status_code == 302, response.text
    return session


def http_create_story(session: requests.Session, server, title: str, slug: str, summary: str = "",
                      order: str = "newest") -> str:
    page = session.get(f"{server.url}/editor/stories/new", timeout=10)
    response = session.post(f"{server.url}/editor/stories/new", timeout=10, allow_redirects=False, data={
        "csrf_token": csrf_from(page.text), "title": title, "slug": slug, "summary": summary,
        "image_url": "", "status": "live", "order": order})
    assert response.status_code == 302, response.text
    assert response.headers["Location"].endswith(f"/editor/stories/{slug}")
    return slug


def _editor_csrf(session: requests.Session, server, slug: str) -> str:
    return csrf_from(session.get(f"{server.url}/editor/stories/{slug}", timeout=10).text)


def http_post_entry(session: requests.Session, server, slug: str, body: str, headline: str = "") -> int:
    """Publish an entry through the append form (plain POST, redirect); returns the entry's id."""
    response = session.post(f"{server.url}/editor/stories/{slug}", timeout=10, allow_redirects=False, data={
        "csrf_token": _editor_csrf(session, server, slug), "body": body, "headline": headline,
        "idempotency_key": uuid.uuid4().hex})
    assert response.status_code == 302, response.text
    assert response.headers["Location"].endswith(f"/editor/stories/{slug}")
    newest = session.get(f"{server.url}/stories/{slug}/entries", timeout=10,
                         headers={"Accept": "application/json"}).json()["entries"][0]
    assert newest["headline"] == headline, newest
    return newest["id"]


def http_seed(session: requests.Session, server, slug: str, count: int, prefix: str = "Seed") -> list[int]:
    """Publish `count` entries headlined "<prefix> 01".. oldest first; returns their ids."""
    csrf = _editor_csrf(session, server, slug)
    ids = []
    for n in range(1, count + 1):
        response = session.post(f"{server.url}/editor/stories/{slug}", timeout=10,
                                headers={"Accept": "application/json"}, data={
                                    "csrf_token": csrf, "headline": f"{prefix} {n:02d}",
                                    "body": f"Body of {prefix.lower()} update {n}.",
                                    "idempotency_key": uuid.uuid4().hex})
        assert response.status_code == 200 and response.json()["ok"], response.text
        ids.append(response.json()["entry"]["id"])
    return ids


# Browser helpers

@contextmanager
def new_context(browser, **options):
    context = browser.new_context(**options)
    try:
        yield context
    finally:
        context.close()


def ui_create_story(page: Page, server, title: str, slug: str, summary: str = "") -> str:
    """Create a story through the editor's form; leaves the page on the story's editor page."""
    page.goto(f"{server.url}/editor/stories/new")
    page.fill("#title", title)
    page.fill("#slug", slug)
    page.fill("#summary", summary)
    page.click("main form button[type=submit]")
    page.wait_for_url(f"{server.url}/editor/stories/{slug}")
    return slug


def open_reader(context, server, slug: str) -> Page:
    """Open a story's reader page and wait until its live connection is up."""
    page = context.new_page()
    page.goto(f"{server.url}/stories/{slug}")
    expect(page.locator('[data-connection="live"]')).to_be_visible(timeout=WAIT)
    return page


def open_editor(page: Page, server, slug: str) -> Page:
    """Go to a story's editor page (logged in already) and wait until its live script is connected."""
    page.goto(f"{server.url}/editor/stories/{slug}")
    expect(page.locator('[data-connection="live"]')).to_have_count(1, timeout=WAIT)
    return page


def ui_publish(page: Page, body: str, headline: str = "") -> None:
    """Publish through the editor page's compose form (JavaScript, no reload)."""
    page.fill("#headline", headline)
    page.fill("#body", body)
    page.click("[data-publish]")
    expect(page.locator("[data-compose-status]")).to_have_text("Update published.", timeout=WAIT)
    expect(page.locator("#body")).to_have_value("")
    expect(page.locator("#headline")).to_have_value("")


def entry_with(page: Page, headline: str):
    return page.locator("article.entry", has=page.locator(".entry__headline", has_text=re.compile(
        rf"^{re.escape(headline)}$")))


def entry_id_on(page: Page, headline: str) -> int:
    locator = entry_with(page, headline)
    expect(locator).to_have_count(1, timeout=WAIT)
    return int(locator.get_attribute("data-id"))


# 1. Live publishing

def test_reader_sees_entry_published_by_editor_without_reload(browser, server):
    with new_context(browser) as editor_ctx, new_context(browser) as reader_ctx:
        editor = editor_ctx.new_page()
        browser_login(editor, server)
        slug = ui_create_story(editor, server, "Bridge closed after crash", "bridge-closed",
                               "Traffic diverted through the town centre.")
        expect(editor.locator(".flash")).to_have_text("Story “Bridge closed after crash” created.")

        reader = open_reader(reader_ctx, server, slug)
        expect(reader.locator("[data-story-summary]")).to_have_text("Traffic diverted through the town centre.")
        expect(reader.locator("[data-entries-empty]")).to_be_visible()
        reader.evaluate("window.__marker = 'same document'")  # survives only if nothing reloads

        ui_publish(editor, "Police say the **east lane** will stay shut overnight.", "Lanes shut overnight")

        entry = entry_with(reader, "Lanes shut overnight")
        expect(entry).to_be_visible(timeout=WAIT)
        expect(entry.locator(".entry__body strong")).to_have_text("east lane")
        expect(entry.locator(".entry__author")).to_have_text("By alice")
        expect(reader.locator("[data-entries-empty]")).to_be_hidden()
        expect(reader.locator("[data-announcer]")).to_have_text("New update: Lanes shut overnight")
        expect(reader.locator('[data-connection="live"]')).to_be_visible()
        # The masthead counts this story's readers (the editor's desk page follows it too).
        expect(reader.locator("[data-readers]")).to_have_text(re.compile(r"^[12] reading now$"), timeout=WAIT)
        assert reader.evaluate("window.__marker") == "same document"


# 2. Corrections and deletions

def test_reader_sees_edits_and_deletes_live(browser, server):
    session = http_login(server)
    slug = http_create_story(session, server, "Council vote", "council-vote")
    http_post_entry(session, server, slug, "The vote is at noon.", "Vote at noon")

    with new_context(browser) as editor_ctx, new_context(browser) as reader_ctx:
        editor = editor_ctx.new_page()
        browser_login(editor, server)
        reader = open_reader(reader_ctx, server, slug)
        entry_id = entry_id_on(reader, "Vote at noon")
        article = reader.locator(f"article#entry-{entry_id}")
        expect(article.locator(".entry__updated")).to_be_hidden()

        editor.goto(f"{server.url}/editor/entries/{entry_id}/edit")
        editor.fill("#headline", "Vote moved to 2 pm")
        editor.fill("#body", "The vote was moved to _2 pm_.")
        editor.click("main form button[type=submit]")
        editor.wait_for_url(f"{server.url}/editor/stories/{slug}")
        expect(editor.locator(".flash")).to_have_text("Correction published.")

        expect(article.locator(".entry__headline")).to_have_text("Vote moved to 2 pm", timeout=WAIT)
        expect(article.locator(".entry__body")).to_have_text("The vote was moved to 2 pm.")
        updated = article.locator(".entry__updated")
        expect(updated).to_be_visible()
        expect(updated).to_contain_text("Updated")
        expect(updated).to_have_attribute("href", f"/stories/{slug}/entries/{entry_id}#history")

        dialogs: list[str] = []
        editor.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.accept()))
        expect(editor.locator('[data-connection="live"]')).to_have_count(1, timeout=WAIT)
        editor.locator(f"article#entry-{entry_id} form[data-action=delete] button").click()
        expect(editor.locator(f"article#entry-{entry_id}")).to_have_count(0, timeout=WAIT)
        assert dialogs == ["Delete this update? Readers will no longer see it."]

        expect(article).to_have_count(0, timeout=WAIT)
        expect(reader.locator("[data-entries-empty]")).to_be_visible()


# 3. A reader who scrolled down is not pushed around

def test_scrolled_down_reader_gets_new_updates_button_instead_of_insertion(browser, server):
    session = http_login(server)
    slug = http_create_story(session, server, "Election night", "election-night")
    http_seed(session, server, slug, 25)

    with new_context(browser, viewport={"width": 1200, "height": 700}) as reader_ctx:
        reader = open_reader(reader_ctx, server, slug)
        expect(reader.locator("[data-entries] > article.entry")).to_have_count(20)
        base_title = reader.title()
        reader.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
        reader.wait_for_function("document.querySelector('[data-entries]').getBoundingClientRect().top < 0")

        http_post_entry(session, server, slug, "First results are in.", "First results")

        button = reader.locator("[data-new-updates]")
        expect(button).to_be_visible(timeout=WAIT)
        expect(button.locator("[data-new-count]")).to_have_text("1")
        expect(reader).to_have_title(f"(1) {base_title}")
        expect(entry_with(reader, "First results")).to_have_count(0)
        expect(reader.locator("[data-entries] > article.entry")).to_have_count(20)

        button.click()
        expect(entry_with(reader, "First results")).to_be_visible()
        feed = reader.locator("[data-entries] > article.entry")
        expect(feed).to_have_count(21)
        expect(feed.first.locator(".entry__headline")).to_have_text("First results")
        expect(button).to_be_hidden()
        expect(reader).to_have_title(base_title)


# 4. Key events and the pinned slot

def test_key_event_and_pin_controls_update_reader(browser, server):
    session = http_login(server)
    slug = http_create_story(session, server, "Wildfire spreads", "wildfire")
    http_post_entry(session, server, slug, "Crews arrive from the north.", "Crews arrive")
    http_post_entry(session, server, slug, "Residents of the valley must leave now.", "Evacuation ordered")

    with new_context(browser) as editor_ctx, new_context(browser) as reader_ctx:
        editor = editor_ctx.new_page()
        browser_login(editor, server)
        open_editor(editor, server, slug)
        reader = open_reader(reader_ctx, server, slug)
        entry_id = entry_id_on(reader, "Evacuation ordered")
        key_events = reader.locator("[data-key-events]")
        expect(key_events.locator("li")).to_have_count(0)
        expect(reader.locator("[data-key-empty]")).to_be_visible()
        expect(reader.locator("[data-key-count]")).to_be_hidden()
        expect(reader.locator("[data-pinned-slot]")).to_be_hidden()

        controls = editor.locator(f"article#entry-{entry_id}")
        controls.locator("form[data-action=key] button").click()
        expect(controls.locator("form[data-action=unkey]")).to_be_visible(timeout=WAIT)

        item = key_events.locator(f'li[data-id="{entry_id}"]')
        expect(item).to_be_visible(timeout=WAIT)
        expect(item.locator("span")).to_have_text("Evacuation ordered")
        expect(item.locator("a")).to_have_attribute("href", f"#entry-{entry_id}")
        expect(reader.locator("[data-key-empty]")).to_be_hidden()
        expect(reader.locator("[data-key-count]")).to_have_text("(1)")
        expect(reader.locator(f"article#entry-{entry_id} .badge--key")).to_be_visible()

        controls.locator("form[data-action=pin] button").click()
        expect(controls.locator("form[data-action=unpin]")).to_be_visible(timeout=WAIT)

        slot = reader.locator("[data-pinned-slot]")
        expect(slot).to_be_visible(timeout=WAIT)
        expect(slot.locator(f"article#entry-{entry_id}")).to_be_visible()
        expect(slot.locator(f"article#entry-{entry_id} .badge--pinned")).to_be_visible()
        expect(reader.locator(f"[data-entries] article#entry-{entry_id}")).to_have_count(0)
        expect(reader.locator(f"article#entry-{entry_id}")).to_have_count(1)


# 5. Pausing live updates

def test_live_toggle_pauses_and_resumes_with_catch_up(browser, server):
    session = http_login(server)
    slug = http_create_story(session, server, "Marathon day", "marathon")

    with new_context(browser) as reader_ctx, new_context(browser) as control_ctx:
        reader = open_reader(reader_ctx, server, slug)
        control = open_reader(control_ctx, server, slug)  # a second reader that stays live
        toggle = reader.locator("[data-live-toggle]")
        expect(toggle).to_be_visible()

        toggle.click()
        expect(reader.locator('[data-connection="paused"]')).to_be_visible(timeout=WAIT)
        expect(toggle).to_have_attribute("aria-pressed", "false")
        expect(toggle).to_have_text("Resume live updates")
        reader.wait_for_function("!window.trackerSocket.connected")

        http_post_entry(session, server, slug, "The leaders pass the halfway mark.", "Halfway")
        # The live reader got the broadcast, so the paused one would have too if it were listening.
        expect(entry_with(control, "Halfway")).to_be_visible(timeout=WAIT)
        expect(entry_with(reader, "Halfway")).to_have_count(0)
        expect(reader.locator('[data-connection="paused"]')).to_be_visible()

        toggle.click()
        expect(reader.locator('[data-connection="live"]')).to_be_visible(timeout=WAIT)
        expect(toggle).to_have_attribute("aria-pressed", "true")
        expect(entry_with(reader, "Halfway")).to_have_count(1, timeout=WAIT)
        expect(reader.locator("[data-announcer]")).to_have_text("New update: Halfway")


# 6. Server restart

def test_reader_reconnects_after_server_restart_without_duplicates(browser, live_server):
    session = http_login(live_server)
    slug = http_create_story(session, live_server, "Power cut", "power-cut")
    http_post_entry(session, live_server, slug, "Half the city is dark.", "Before restart")

    with new_context(browser) as reader_ctx:
        reader = open_reader(reader_ctx, live_server, slug)
        expect(entry_with(reader, "Before restart")).to_have_count(1)

        # Keep the reader's network down across the restart, so the entries below are
        # certainly published before it reconnects and must arrive by the join catch-up.
        reader_ctx.set_offline(True)
        live_server.stop()
        expect(reader.locator('[data-connection="live"]')).to_have_count(0, timeout=WAIT)
        live_server.start()

        session = http_login(live_server)  # same SECRET_KEY and DB, but a fresh connection pool
        http_post_entry(session, live_server, slug, "Substation repaired.", "After restart one")
        http_post_entry(session, live_server, slug, "Lights back in the north.", "After restart two")
        assert reader.evaluate("window.trackerSocket.connected") is False

        reader_ctx.set_offline(False)
        expect(reader.locator('[data-connection="live"]')).to_be_visible(timeout=RECONNECT)
        for headline in ("Before restart", "After restart one", "After restart two"):
            expect(entry_with(reader, headline)).to_have_count(1, timeout=WAIT)

        # And live events flow again on the new connection.
        http_post_entry(session, live_server, slug, "All clear.", "After reconnect")
        expect(entry_with(reader, "After reconnect")).to_have_count(1, timeout=WAIT)
        expect(reader.locator("[data-entries] > article.entry")).to_have_count(4)


def test_reader_too_far_behind_starts_over_from_a_fresh_page(browser, database_url):
    server = LiveServer(database_url, CATCHUP_LIMIT="3")
    server.flask("user", "create", "alice", "--password-stdin", input_text=PASSWORD + "\n")
    server.start()
    try:
        session = http_login(server)
        slug = http_create_story(session, server, "Long night", "long-night")
        http_post_entry(session, server, slug, "It begins.", "First")
        with new_context(browser) as reader_ctx:
            reader = open_reader(reader_ctx, server, slug)
            reader.evaluate("window.sameDocument = true")
            reader.locator("[data-live-toggle]").click()
            expect(reader.locator('[data-connection="paused"]')).to_be_visible()
            for n in range(5):
                http_post_entry(session, server, slug, f"Missed {n}.", f"Missed {n}")
            with reader.expect_navigation():
                reader.locator("[data-live-toggle]").click()
            expect(reader.locator('[data-connection="live"]')).to_be_visible(timeout=WAIT)
            assert reader.evaluate("window.sameDocument") is None
            expect(reader.locator("[data-entries] > article.entry")).to_have_count(6)
    finally:
        server.stop()


# 7. Without JavaScript

def test_publishing_and_reading_work_without_javascript(browser, server):
    with new_context(browser, java_script_enabled=False) as editor_ctx, \
            new_context(browser, java_script_enabled=False) as reader_ctx:
        editor = editor_ctx.new_page()
        browser_login(editor, server)
        slug = ui_create_story(editor, server, "Snow closes schools", "snow-schools")

        reader = reader_ctx.new_page()
        reader.goto(f"{server.url}/stories/{slug}")
        expect(reader.locator('[data-connection="static"]')).to_have_text(
            "Live updates need JavaScript; reload for the latest.")
        expect(reader.locator("[data-live-toggle]")).to_be_hidden()
        expect(reader.locator("[data-entries-empty]")).to_be_visible()

        editor.fill("#headline", "All schools shut")
        editor.fill("#body", "Every school in the district is closed today.")
        with editor.expect_navigation():
            editor.click("[data-publish]")
        assert editor.url == f"{server.url}/editor/stories/{slug}"
        expect(editor.locator(".flash")).to_have_text("Update published.")
        expect(entry_with(editor, "All schools shut")).to_have_count(1)

        expect(entry_with(reader, "All schools shut")).to_have_count(0)
        reader.reload()
        expect(entry_with(reader, "All schools shut")).to_be_visible()

        session = http_login(server)
        http_seed(session, server, slug, 21)  # 22 entries: "All schools shut" is the oldest
        reader.reload()
        feed = reader.locator("[data-entries] > article.entry")
        expect(feed).to_have_count(20)
        expect(entry_with(reader, "All schools shut")).to_have_count(0)
        older = reader.locator("a[data-load-older]")
        expect(older).to_have_attribute("href", re.compile(rf"^/stories/{slug}\?before=\d+$"))
        with reader.expect_navigation():
            older.click()
        assert re.search(r"\?before=\d+$", reader.url), reader.url
        expect(feed).to_have_count(2)
        expect(entry_with(reader, "All schools shut")).to_be_visible()
        expect(entry_with(reader, "Seed 01")).to_be_visible()
        expect(reader.locator(".older-note")).to_contain_text("You are reading older updates.")
        expect(reader.locator("a[data-load-older]")).to_have_count(0)


# 8. Loading older entries with JavaScript

def test_load_older_button_fetches_older_entries_into_feed(browser, server):
    session = http_login(server)
    slug = http_create_story(session, server, "Trial verdict", "trial-verdict")
    http_seed(session, server, slug, 25)

    with new_context(browser) as reader_ctx:
        reader = open_reader(reader_ctx, server, slug)
        feed = reader.locator("[data-entries] > article.entry")
        expect(feed).to_have_count(20)
        expect(feed.first.locator(".entry__headline")).to_have_text("Seed 25")
        expect(feed.last.locator(".entry__headline")).to_have_text("Seed 06")
        url = reader.url

        reader.locator("[data-load-older]").click()
        expect(feed).to_have_count(25, timeout=WAIT)
        expect(feed.last.locator(".entry__headline")).to_have_text("Seed 01")
        headlines = feed.locator(".entry__headline").all_text_contents()
        assert headlines == [f"Seed {n:02d}" for n in range(25, 0, -1)]
        expect(reader.locator(".load-older")).to_be_hidden()
        assert reader.url == url  # fetched in place, no navigation
        expect(reader.locator('[data-connection="live"]')).to_be_visible()


# 9. Times in the reader's zone

def test_times_are_rewritten_to_local_time_and_relative_labels(browser, server):
    session = http_login(server)
    slug = http_create_story(session, server, "Tide record", "tide-record")
    http_post_entry(session, server, slug, "Highest tide in fifty years.", "Record tide")

    with new_context(browser, locale="en-GB", timezone_id="Asia/Kolkata") as reader_ctx:
        reader = reader_ctx.new_page()
        reader.goto(f"{server.url}/stories/{slug}")
        times = reader.locator("time[data-format]")
        reader.wait_for_function(
            "Array.from(document.querySelectorAll('time[data-format]'))"
            ".filter(t => !isNaN(new Date(t.getAttribute('datetime'))))"
            ".every(t => t.textContent && !t.textContent.includes('UTC'))")
        assert times.count() >= 2  # at least the story's "Updated" time and the entry's time

        entry = entry_with(reader, "Record tide")
        created = entry.locator(".entry__time time")
        iso = created.get_attribute("datetime")
        utc = datetime.fromisoformat(iso.replace("Z", "+00:00"))
        kolkata = (utc + timedelta(hours=5, minutes=30)).strftime("%H:%M")  # IST has no DST
        expect(created).to_contain_text(kolkata)
        expect(created).not_to_contain_text("UTC")
        expect(created).to_have_attribute("title", re.compile(r"India Standard Time|GMT\+5:30|IST"))
        expect(reader.locator("[data-story-updated]")).not_to_contain_text("UTC")
        expect(entry.locator(".entry__ago")).to_have_text("just now")

        # Entries that arrive live get the same treatment.
        expect(reader.locator('[data-connection="live"]')).to_be_visible(timeout=WAIT)
        http_post_entry(session, server, slug, "Water reaches the square.", "Square flooded")
        live_entry = entry_with(reader, "Square flooded")
        expect(live_entry.locator(".entry__ago")).to_have_text("just now", timeout=WAIT)
        expect(live_entry.locator(".entry__time time")).to_have_text(re.compile(r"^\d\d:\d\d$"))


# 10. Console and CSP

CSP_LISTENER = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', function (e) {
  window.__cspViolations.push(e.violatedDirective + ' ' + e.blockedURI);
});
"""


def test_reader_and_editor_pages_have_no_console_errors_or_csp_violations(browser, server):
    session = http_login(server)
    slug = http_create_story(session, server, "Quiet night", "quiet-night", "Nothing much happens.")
    http_post_entry(session, server, slug, "A **calm** start.", "Calm start")
    problems: list[str] = []

    def watch(page: Page, name: str) -> Page:
        page.on("console", lambda m: problems.append(f"{name} console.{m.type}: {m.text}")
                if m.type == "error" or "Content Security Policy" in m.text else None)
        page.on("pageerror", lambda error: problems.append(f"{name} pageerror: {error}"))
        return page

    with new_context(browser) as editor_ctx, new_context(browser) as reader_ctx:
        editor_ctx.add_init_script(CSP_LISTENER)
        reader_ctx.add_init_script(CSP_LISTENER)
        reader = watch(reader_ctx.new_page(), "reader")
        reader.goto(f"{server.url}/stories/{slug}")
        expect(reader.locator('[data-connection="live"]')).to_be_visible(timeout=WAIT)
        # The live connection runs over a websocket, which the strict CSP (connect-src 'self') allows.
        reader.wait_for_function("window.trackerSocket.io.engine.transport.name === 'websocket'",
                                 timeout=WAIT)

        editor = watch(editor_ctx.new_page(), "editor")
        browser_login(editor, server)
        editor.goto(f"{server.url}/editor/stories/{slug}")
        expect(editor.locator('[data-connection="live"]')).to_have_count(1, timeout=WAIT)
        editor.wait_for_function("window.trackerSocket.io.engine.transport.name === 'websocket'",
                                 timeout=WAIT)
        ui_publish(editor, "Still _quiet_.", "Still quiet")
        expect(entry_with(reader, "Still quiet")).to_be_visible(timeout=WAIT)
        entry_id = entry_id_on(editor, "Still quiet")
        editor.locator(f"article#entry-{entry_id} form[data-action=key] button").click()
        expect(reader.locator(f'[data-key-events] li[data-id="{entry_id}"]')).to_be_visible(timeout=WAIT)

        reader.locator("[data-live-toggle]").click()
        expect(reader.locator('[data-connection="paused"]')).to_be_visible()
        reader.locator("[data-live-toggle]").click()
        expect(reader.locator('[data-connection="live"]')).to_be_visible(timeout=WAIT)

        for page in (reader, editor):
            assert page.evaluate("window.__cspViolations") == []
            page.reload()
            expect(page.locator('[data-connection="live"]')).to_have_count(1, timeout=WAIT)
            assert page.evaluate("window.__cspViolations") == []

        assert problems == []


# Regression tests for bugs the first browser run found.

def test_scrolled_down_reader_does_not_count_correction_of_older_entry_as_new(browser, server):
    session = http_login(server)
    slug = http_create_story(session, server, "Budget day", "budget-day")
    ids = http_seed(session, server, slug, 25)  # the page shows Seed 25..06; Seed 01 is off-page

    with new_context(browser, viewport={"width": 1200, "height": 700}) as reader_ctx:
        reader = open_reader(reader_ctx, server, slug)
        base_title = reader.title()
        reader.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
        reader.wait_for_function("document.querySelector('[data-entries]').getBoundingClientRect().top < 0")

        form = session.get(f"{server.url}/editor/entries/{ids[0]}/edit", timeout=10).text
        response = session.post(f"{server.url}/editor/entries/{ids[0]}/edit", timeout=10,
                                allow_redirects=False, data={"csrf_token": csrf_from(form),
                                                             "headline": "Seed 01 corrected", "body": "Fixed."})
        assert response.status_code == 302
        http_post_entry(session, server, slug, "The minister stands up.", "Speech begins")

        # Events arrive in order, so once the new entry is announced the correction was handled too.
        expect(reader.locator("[data-announcer]")).to_have_text("New update: Speech begins", timeout=WAIT)
        expect(reader.locator("[data-new-count]")).to_have_text("1", timeout=1000)
        expect(reader).to_have_title(f"(1) {base_title}", timeout=1000)


def test_key_event_without_headline_reads_the_same_live_and_after_reload(browser, server):
    session = http_login(server)
    slug = http_create_story(session, server, "Storm watch", "storm-watch")
    entry_id = http_post_entry(session, server, slug, "Winds reach **120 km/h** on the coast.")

    with new_context(browser) as editor_ctx, new_context(browser) as reader_ctx:
        editor = editor_ctx.new_page()
        browser_login(editor, server)
        open_editor(editor, server, slug)
        reader = open_reader(reader_ctx, server, slug)
        editor.locator(f"article#entry-{entry_id} form[data-action=key] button").click()
        item = reader.locator(f'[data-key-events] li[data-id="{entry_id}"] span')
        expect(item).to_have_text("Winds reach 120 km/h on the coast.", timeout=WAIT)

        reader.reload()
        expect(item).to_have_text("Winds reach 120 km/h on the coast.", timeout=1000)  # server-rendered


# The desk: autosave, drafts, presence and conflicts

def test_compose_keeps_text_across_a_reload_counts_it_and_ctrl_enter_publishes(browser, server):
    slug = http_create_story(http_login(server), server, "Ferry strike", "ferry-strike")
    with new_context(browser) as editor_ctx, new_context(browser) as reader_ctx:
        reader = open_reader(reader_ctx, server, slug)
        editor = editor_ctx.new_page()
        browser_login(editor, server)
        open_editor(editor, server, slug)
        editor.fill("#headline", "Sailings cancelled")
        editor.locator("#body").press_sequentially("All sailings are cancel")
        expect(editor.locator("[data-counter]")).to_have_text("23 / 20,000")
        editor.reload()  # or a crash, or a closed tab: the text is kept in this browser
        expect(editor.locator("#body")).to_have_value("All sailings are cancel")
        expect(editor.locator("#headline")).to_have_value("Sailings cancelled")
        expect(editor.locator("[data-autosave]")).to_contain_text("Your unsent text from")
        assert axe_violations(editor) == []
        editor.locator("#body").press_sequentially("led until Monday.")
        editor.locator("#body").press("Control+Enter")
        expect(editor.locator("[data-compose-status]")).to_have_text("Update published.", timeout=WAIT)
        expect(entry_with(reader, "Sailings cancelled")).to_be_visible(timeout=WAIT)
        editor.reload()
        expect(editor.locator("#body")).to_have_value("")
        expect(editor.locator("[data-autosave]")).to_be_hidden()


def test_a_draft_published_from_the_desk_reaches_an_open_reader(browser, server):
    slug = http_create_story(http_login(server), server, "Dam inspection", "dam-inspection")
    with new_context(browser) as editor_ctx, new_context(browser) as reader_ctx:
        reader = open_reader(reader_ctx, server, slug)
        editor = editor_ctx.new_page()
        browser_login(editor, server)
        open_editor(editor, server, slug)
        editor.fill("#headline", "Engineers on site")
        editor.fill("#body", "Engineers are checking the spillway.")
        editor.click("button[value=draft]")
        expect(editor.locator("[data-compose-status]")).to_have_text("Draft saved.", timeout=WAIT)
        card = editor.locator(".desk-item", has_text="Engineers on site")
        expect(card.locator("[data-desk-status]")).to_have_text("Draft")
        expect(entry_with(reader, "Engineers on site")).to_have_count(0)
        card.get_by_role("button", name="Publish now").click()
        expect(entry_with(reader, "Engineers on site")).to_be_visible(timeout=WAIT)
        expect(card).to_have_count(0, timeout=WAIT)
        expect(entry_with(editor, "Engineers on site")).to_be_visible()


def test_two_editors_see_each_other_and_a_second_correction_shows_both_texts(browser, server):
    if "bea" not in server.flask("user", "list"):
        server.flask("user", "create", "bea", "--password-stdin", input_text=PASSWORD + "\n")
    session = http_login(server)
    slug = http_create_story(session, server, "Harbour crane collapse", "harbour-crane")
    entry_id = http_post_entry(session, server, slug, "One crane fell.", "Crane falls")
    with new_context(browser) as alice_ctx, new_context(browser) as bea_ctx:
        alice, bea = alice_ctx.new_page(), bea_ctx.new_page()
        browser_login(alice, server)
        browser_login(bea, server, "bea")
        for page in (alice, bea):
            open_editor(page, server, slug)
        expect(alice.locator("[data-presence]")).to_have_text("bea is here.", timeout=WAIT)
        expect(bea.locator("[data-presence]")).to_have_text("alice is here.", timeout=WAIT)

        edit = {page: page.locator(f"article#entry-{entry_id} [data-entry-controls] a") for page in (alice, bea)}
        where = edit[bea].bounding_box()
        edit[alice].click()
        expect(alice.locator(f"#correct-body-{entry_id}")).to_have_value("One crane fell.", timeout=WAIT)
        expect(bea.locator(f"article#entry-{entry_id} [data-correcting]")).to_have_text(
            "alice is correcting this update.", timeout=WAIT)
        assert edit[bea].bounding_box() == where  # the note comes after the card's buttons: it moves none
        edit[bea].click()
        expect(bea.locator(f"#correct-body-{entry_id}")).to_have_value("One crane fell.", timeout=WAIT)
        expect(alice.locator(f"article#entry-{entry_id} [data-correcting]")).to_have_text(
            "bea is correcting this update.", timeout=WAIT)
        alice.fill(f"#correct-body-{entry_id}", "Two cranes fell.")
        alice.locator(f"article#entry-{entry_id} .correction button[type=submit]").click()
        expect(alice.locator(f"article#entry-{entry_id} .entry__body")).to_have_text("Two cranes fell.", timeout=WAIT)
        bea.fill(f"#correct-body-{entry_id}", "One crane fell onto a ship.")
        bea.locator(f"article#entry-{entry_id} .correction button[type=submit]").click()
        conflict = bea.locator(f"article#entry-{entry_id} .conflict")
        expect(conflict).to_be_visible(timeout=WAIT)
        expect(conflict.locator(".conflict__theirs")).to_have_text("Two cranes fell.")
        expect(bea.locator(f"article#entry-{entry_id} .correction__status")).to_contain_text(
            "alice changed this update after you started; nothing was saved.")
        expect(bea.locator(f"#correct-body-{entry_id}")).to_have_value("One crane fell onto a ship.")
        stored = requests.get(f"{server.url}/api/entries/{entry_id}").json()["entry"]
        assert stored["html"] == "<p>Two cranes fell.</p>\n", "nothing was overwritten"

        bea.close()
        expect(alice.locator("[data-presence]")).to_have_text("Only you are on this story.", timeout=WAIT)


# Images

DROP_AND_PASTE = """([png, how]) => {
  const bytes = Uint8Array.from(atob(png), (c) => c.charCodeAt(0));
  const data = new DataTransfer();
  data.items.add(new File([bytes], how + ".png", {type: "image/png"}));
  const form = document.querySelector("[data-compose]");
  if (how === "dropped") {
    form.dispatchEvent(new DragEvent("drop", {dataTransfer: data, bubbles: true, cancelable: true}));
  } else {
    document.querySelector("#body").dispatchEvent(new ClipboardEvent("paste", {clipboardData: data, bubbles: true,
                                                                               cancelable: true}));
  }
}"""


def test_images_dropped_and_pasted_reach_a_reader_live_without_moving_the_page(browser, server):
    slug = http_create_story(http_login(server), server, "Flooded square", "flooded-square")
    picture = io.BytesIO()
    Image.new("RGB", (1200, 800), (30, 90, 160)).save(picture, "PNG")
    png = base64.b64encode(picture.getvalue()).decode()
    held = []
    with new_context(browser) as editor_ctx, new_context(browser) as reader_ctx:
        reader = open_reader(reader_ctx, server, slug)
        released = []  # the images arrive once let through
        reader.route("**/media/**", lambda route: route.continue_() if released else held.append(route))
        editor = editor_ctx.new_page()
        browser_login(editor, server)
        open_editor(editor, server, slug)
        for n, how in enumerate(("dropped", "pasted")):
            editor.evaluate(DROP_AND_PASTE, [png, how])
            item = editor.locator("li.upload").nth(n)
            expect(item.locator(".upload__name")).to_have_text(f"{how}.png")
            item.get_by_label("Alt text: what the image shows (required)").fill(f"The square, {how}")
            item.get_by_role("button", name="Upload and attach").click()
            expect(item.locator(".upload__status")).to_have_text("Attached.", timeout=WAIT)
        editor.fill("#body", "The square is under water.")
        editor.click("[data-publish]")
        expect(editor.locator("[data-compose-status]")).to_have_text("Update published.", timeout=WAIT)
        expect(editor.locator("li.upload")).to_have_count(0)

        card = reader.locator("article.entry", has_text="The square is under water.")
        expect(card.locator("img")).to_have_count(2, timeout=WAIT)
        expect(card.locator("img").first).to_have_attribute("alt", "The square, dropped")
        expect(card.locator("img").first).to_have_attribute("width", "1200")
        before = card.bounding_box()["height"]
        released.append(True)
        while held:
            held.pop().continue_()
        reader.wait_for_function("() => Array.from(document.querySelectorAll('article.entry img'))"
                                 ".every((img) => img.complete && img.naturalWidth > 0)", timeout=WAIT)
        assert card.bounding_box()["height"] == before, "the images took the room they had kept"


def test_video_and_social_posts_load_only_after_the_reader_consents(browser, server):
    session = http_login(server)
    slug = http_create_story(session, server, "Bridge reopening", "bridge-reopening")
    http_post_entry(session, server, slug, "Watch the opening:\n\nhttps://www.youtube.com/watch?v=dQw4w9WgXcQ\n\n"
                    "And the mayor's post:\n\nhttps://x.com/mayor/status/1234567890123456789", "Video")
    http_post_entry(session, server, slug, "A link in a sentence https://www.youtube.com/watch?v=dQw4w9WgXcQ stays.",
                    "Inline")
    http_post_entry(session, server, slug, "https://bsky.app/profile/reporter.example.org/post/3kq2xyzabcdef"
                             "\n\nhttps://mastodon.social/@reporter/112233445566", "Social")
    did = "did:plc:" + "a" * 24
    with new_context(browser) as context:
        elsewhere: list[str] = []

        def outside(route):
            elsewhere.append(route.request.url)
            if route.request.url.startswith("https://public.api.bsky.app/"):  # the closed network's stand-in
                return route.fulfill(json={"did": did}, headers={"Access-Control-Allow-Origin": "*"})
            route.abort()
        context.route(lambda url: not url.startswith(server.url), outside)
        reader = context.new_page()
        response = reader.goto(f"{server.url}/stories/{slug}")
        assert "frame-src https://www.youtube-nocookie.com " in response.headers["content-security-policy"]
        expect(reader.locator('[data-connection="live"]')).to_be_visible(timeout=WAIT)
        video = reader.locator('.embed[data-embed="YouTube"]')
        expect(video).to_have_count(1)
        expect(video.locator("a")).to_have_attribute("href", "https://www.youtube.com/watch?v=dQw4w9WgXcQ")
        expect(reader.locator('.embed[data-embed="X"]')).to_have_count(1)
        expect(entry_with(reader, "Inline").locator(".embed")).to_have_count(0)
        assert reader.locator("iframe").count() == 0 and elsewhere == [], "nothing asked of any provider yet"
        assert axe_violations(reader) == []
        video.get_by_role("button", name="Load content from YouTube").click()
        expect(reader.locator('iframe[src="https://www.youtube-nocookie.com/embed/dQw4w9WgXcQ"]')).to_have_count(1)
        tweet = reader.locator('.embed[data-embed="X"]')
        tweet.get_by_label("Always load content from X").check()
        tweet.get_by_role("button", name="Load content from X").click()
        expect(reader.locator('iframe[src^="https://platform.twitter.com/embed/Tweet.html?id=1234567890123456789"]')
               ).to_have_count(1)
        reader.locator("iframe.embed__frame--video").evaluate("(frame) => { frame.dataset.playing = 'yes'; }")
        token = server.flask("token", "create", f"embeds-{uuid.uuid4().hex[:8]}").strip().splitlines()[-1]
        video_id = entry_id_on(reader, "Video")
        response = requests.patch(f"{server.url}/api/entries/{video_id}", timeout=10, headers={
            "Authorization": f"Bearer {token}"}, json={"body": "Watch the reopening:\n\n"
            "https://www.youtube.com/watch?v=dQw4w9WgXcQ\n\nAnd the mayor's post:\n\n"
            "https://x.com/mayor/status/1234567890123456789"})
        assert response.status_code == 200, response.text
        expect(entry_with(reader, "Video").locator(".entry__body")).to_contain_text("Watch the reopening", timeout=WAIT)
        expect(reader.locator("iframe[data-playing=yes]")).to_have_count(1)  # the same frame: the video plays on
        assert not any("bsky" in url or "mastodon" in url for url in elsewhere), elsewhere
        posts = entry_with(reader, "Social")
        posts.get_by_role("button", name="Load content from Bluesky").click()
        expect(posts.locator(f'iframe[src="https://embed.bsky.app/embed/{did}/app.bsky.feed.post/3kq2xyzabcdef"]')
               ).to_have_count(1)
        mastodon = posts.locator('.embed[data-embed="mastodon.social (Mastodon)"]')
        mastodon.get_by_label("Always load content from mastodon.social (Mastodon)").check()
        mastodon.get_by_role("button", name="Load content from mastodon.social (Mastodon)").click()
        reader.reload()  # X and mastodon.social were remembered; YouTube and Bluesky were not
        expect(reader.locator('iframe[src^="https://platform.twitter.com/"]')).to_have_count(1, timeout=WAIT)
        expect(reader.locator('iframe[src="https://mastodon.social/@reporter/112233445566/embed"]')).to_have_count(1)
        expect(reader.locator('.embed[data-embed="YouTube"] button')).to_have_count(1)
        expect(reader.locator('.embed[data-embed="Bluesky"] button')).to_have_count(1)


def test_the_desk_shows_how_many_are_reading(browser, server):
    slug = http_create_story(http_login(server), server, "Count on the desk", "count-on-the-desk")
    with new_context(browser) as desk_context, new_context(browser) as reader_context:
        desk = desk_context.new_page()
        browser_login(desk, server)
        open_editor(desk, server, slug)
        expect(desk.locator("[data-readers]")).to_have_text("1 reading now", timeout=WAIT)
        open_reader(reader_context, server, slug)
        open_reader(reader_context, server, slug)
        expect(desk.locator("[data-readers]")).to_have_text("3 reading now", timeout=WAIT)


def test_a_gallery_opens_moves_and_closes_by_keyboard(browser, server):
    token = server.flask("token", "create", f"gallery-{uuid.uuid4().hex[:8]}").strip().splitlines()[-1]
    api = {"Authorization": f"Bearer {token}"}
    slug = http_create_story(http_login(server), server, "Harbour storm", "harbour-storm")
    ids = []
    for n, color in enumerate(((200, 40, 40), (40, 40, 200))):
        picture = io.BytesIO()
        Image.new("RGB", (1000, 750), color).save(picture, "PNG")
        ids.append(requests.post(f"{server.url}/api/media", headers=api, files={"file": ("p.png", picture.getvalue())},
                                 data={"alt": f"Boat {n + 1}", "caption": f"Caption {n + 1}"}).json()["media"]["id"])
    requests.post(f"{server.url}/api/stories/{slug}/entries", headers=api,
                  json={"body": "Boats adrift.", "headline": "Adrift", "media": ids})
    with new_context(browser) as context:
        reader = open_reader(context, server, slug)
        first = entry_with(reader, "Adrift").locator(".media__open").first
        first.focus()
        reader.keyboard.press("Enter")
        viewer = reader.locator("dialog.viewer")
        expect(viewer).to_be_visible()
        expect(viewer.locator(".viewer__image")).to_have_attribute("alt", "Boat 1")
        expect(viewer.locator(".viewer__count")).to_have_text("Image 1 of 2")
        reader.keyboard.press("ArrowRight")
        expect(viewer.locator(".viewer__image")).to_have_attribute("alt", "Boat 2")
        expect(viewer.locator(".viewer__caption")).to_have_text("Caption 2")
        assert axe_violations(reader) == []
        reader.keyboard.press("Escape")
        expect(viewer).to_be_hidden()
        assert reader.evaluate("document.activeElement.getAttribute('aria-label')") == "Open the image: Boat 1"
        # The lead image arrives, is corrected and is taken down live.
        assert requests.patch(f"{server.url}/api/stories/{slug}", headers=api, json={"image_media": ids[1]}).ok
        lead = reader.locator("[data-story-lead] img")
        expect(lead).to_have_attribute("alt", "Boat 2", timeout=WAIT)
        requests.patch(f"{server.url}/api/media/{ids[1]}", headers=api, json={"alt": "The lifeboat"})
        expect(lead).to_have_attribute("alt", "The lifeboat", timeout=WAIT)
        expect(entry_with(reader, "Adrift").locator("img").nth(1)).to_have_attribute("alt", "The lifeboat")
        assert requests.delete(f"{server.url}/api/media/{ids[1]}", headers=api).status_code == 204
        expect(reader.locator("[data-story-lead]")).to_be_hidden(timeout=WAIT)
        expect(entry_with(reader, "Adrift").locator("img")).to_have_count(1)


# Notifications of key events (Web Push)

def test_a_pushed_key_event_is_shown_as_a_notification(browser, server):
    session = http_login(server)
    slug = http_create_story(session, server, "Dam under strain", "dam-under-strain")
    entry_id = http_post_entry(session, server, slug, "Engineers open the spillway.", "Dam breached")
    with new_context(browser) as context:
        context.grant_permissions(["notifications"], origin=server.url)
        reader = context.new_page()
        devtools = context.new_cdp_session(reader)  # plays the push service's part, below
        registrations = []
        devtools.on("ServiceWorker.workerRegistrationUpdated", lambda event: registrations.extend(
            r for r in event["registrations"] if r["scopeURL"] == f"{server.url}/stories/" and not r["isDeleted"]))
        devtools.send("ServiceWorker.enable")
        reader.goto(f"{server.url}/stories/{slug}")
        button = reader.get_by_role("button", name="Notify me of key events")
        expect(button).to_be_visible()
        assert reader.evaluate("navigator.serviceWorker.ready.then((r) => r.scope)") == f"{server.url}/stories/"
        assert axe_violations(reader) == []
        # Headless Chromium reaches no push service: subscribing fails, and the reader is told so.
        button.click()
        expect(reader.locator("[data-push-status]")).to_have_text(re.compile("could not sign up with its push service"),
                                                                  timeout=WAIT)
        expect(button).to_be_enabled()

        # A push as tracker.push.message makes it, delivered to the worker through DevTools. Headless
        # Chromium may close a shown notification at once, before a page could list it: the worker
        # records what it asked to show.
        [worker] = context.service_workers
        worker.evaluate("""() => {
            const show = self.registration.showNotification.bind(self.registration);
            self.shown = [];
            self.registration.showNotification = (title, options) => {
                self.shown.push([title, options.body, options.data.url]);
                return show(title, options);
            };
        }""")
        assert registrations, "DevTools told of the worker's registration"
        url = f"{server.url}/stories/{slug}/entries/{entry_id}"
        devtools.send("ServiceWorker.deliverPushMessage", {
            "origin": server.url, "registrationId": registrations[0]["registrationId"],
            "data": json.dumps({"headline": "Dam breached", "url": url, "title": "Dam under strain",
                                "tag": f"entry-{entry_id}"})})
        shown = worker.evaluate("""async (timeout) => {
            for (const deadline = Date.now() + timeout; !self.shown.length && Date.now() < deadline;) {
                await new Promise((resolve) => setTimeout(resolve, 20));
            }
            return self.shown;
        }""", WAIT)
        assert shown == [["Dam breached", "Dam under strain", url]]


# Issue 14: the reader page's behaviours

def http_set_status(session: requests.Session, server, slug: str, status: str) -> None:
    response = session.post(f"{server.url}/editor/stories/{slug}/status", timeout=10, allow_redirects=False,
                            data={"csrf_token": _editor_csrf(session, server, slug), "status": status})
    assert response.status_code == 302, response.text


def headlines_on(page: Page) -> list[str]:
    return page.locator("[data-entries] > article.entry .entry__headline").all_text_contents()


def test_status_bar_says_coverage_ended_and_live_again_when_reopened(browser, server):
    session = http_login(server)
    slug = http_create_story(session, server, "Polling day", "polling-day")
    http_post_entry(session, server, slug, "Polls are open.", "Polls open")
    with new_context(browser) as context:
        reader = open_reader(context, server, slug)
        state, toggle = reader.locator("[data-connection]"), reader.locator("[data-live-toggle]")
        expect(toggle).to_be_visible()

        http_set_status(session, server, slug, "ended")
        expect(state).to_have_attribute("data-connection", "ended", timeout=WAIT)
        expect(state).to_have_text("Coverage ended")
        expect(toggle).to_be_hidden()
        # Corrections still arrive while coverage has ended.
        edit = f"{server.url}/editor/entries/{entry_id_on(reader, 'Polls open')}/edit"
        response = session.post(edit, timeout=10, allow_redirects=False, data={
            "csrf_token": csrf_from(session.get(edit, timeout=10).text), "body": "Polls closed at ten.",
            "headline": "Polls closed"})
        assert response.status_code == 302, response.text
        expect(entry_with(reader, "Polls closed")).to_be_visible(timeout=WAIT)

        reader.reload()  # an ended story's page starts ended, without the pause button
        expect(state).to_have_attribute("data-connection", "ended", timeout=WAIT)
        expect(toggle).to_be_hidden()

        http_set_status(session, server, slug, "live")
        expect(state).to_have_attribute("data-connection", "live", timeout=WAIT)
        expect(toggle).to_be_visible()


def test_reader_catches_up_within_two_seconds_of_the_network_coming_back(browser, server):
    """The network goes away long enough for socket.io's backoff to reach 8 s (±50 %); updates are
    published meanwhile; when it is back (the browser's `online` event) the page reconnects at once."""
    session = http_login(server)
    slug = http_create_story(session, server, "Train strike", "train-strike")
    http_post_entry(session, server, slug, "No trains this morning.", "No trains")
    with new_context(browser) as context:
        reader = open_reader(context, server, slug)
        reader.evaluate("""() => {
          window.__attempts = 0;
          window.trackerSocket.io.on('reconnect_attempt', () => { window.__attempts += 1; });
        }""")
        context.set_offline(True)
        expect(reader.locator('[data-connection="offline"]')).to_be_visible(timeout=WAIT)
        assert reader.evaluate("window.trackerSocket.connected") is False
        http_post_entry(session, server, slug, "Buses replace some trains.", "Replacement buses")
        http_post_entry(session, server, slug, "Talks resume at noon.", "Talks resume")
        # Three failed attempts: the next one would wait 8 s ± 50 %.
        reader.wait_for_function("() => window.__attempts >= 3 && !window.trackerSocket.connected", timeout=RECONNECT)
        expect(reader.locator('[data-connection="offline"]')).to_be_visible()
        expect(entry_with(reader, "Talks resume")).to_have_count(0)

        context.set_offline(False)
        back = time.monotonic()
        expect(entry_with(reader, "Talks resume")).to_be_visible(timeout=WAIT)
        expect(entry_with(reader, "Replacement buses")).to_be_visible(timeout=WAIT)
        elapsed = time.monotonic() - back
        assert elapsed < 2.0, f"the missed updates took {elapsed:.1f} s to appear"
        expect(reader.locator('[data-connection="live"]')).to_be_visible()


def test_share_copies_the_permalink_of_an_update_that_arrived_live(browser, server):
    session = http_login(server)
    slug = http_create_story(session, server, "Harbour fire", "harbour-fire")
    with new_context(browser, permissions=["clipboard-read", "clipboard-write"]) as context:
        reader = open_reader(context, server, slug)
        assert reader.evaluate("typeof navigator.share") == "undefined"  # so the clipboard is the way
        entry_id = http_post_entry(session, server, slug, "Firefighters are on the quay.", "Crews at the quay")
        card = entry_with(reader, "Crews at the quay")
        share = card.locator("[data-share]")
        expect(share).to_be_visible(timeout=WAIT)
        share.click()
        expect(share).to_have_text("Link copied")
        expect(reader.locator("[data-announcer]")).to_have_text("Link copied")
        assert reader.evaluate("navigator.clipboard.readText()") == f"{server.url}/stories/{slug}/entries/{entry_id}"


def test_oldest_first_story_pages_from_the_start_appends_new_updates_and_toggles(browser, server):
    session = http_login(server)
    slug = http_create_story(session, server, "Ask the council", "ask-the-council", order="oldest")
    http_seed(session, server, slug, 22, prefix="Question")
    entries = f"{server.url}/stories/{slug}/entries"
    assert requests.get(f"{entries}?order=sideways", timeout=10).status_code == 400
    assert requests.get(f"{entries}?order=oldest&after=x", timeout=10).status_code == 400
    with new_context(browser) as context:
        reader = open_reader(context, server, slug)
        toggle = reader.locator("[data-order-toggle]")
        expect(toggle).to_have_text("Newest first", timeout=WAIT)
        expect(reader.locator("[data-entries] > article.entry").first).to_contain_text("Question 01")
        assert headlines_on(reader) == [f"Question {n:02d}" for n in range(1, 21)]
        # Not at the end yet: a new update waits until the reader gets there.
        shown_rev = int(reader.locator("#story").get_attribute("data-rev"))
        http_post_entry(session, server, slug, "Will the pool reopen?", "Question 23")
        reader.wait_for_function("rev => +document.getElementById('story').dataset.rev > rev", arg=shown_rev)
        assert "Question 23" not in headlines_on(reader)
        more = reader.locator("[data-load-older]")
        expect(more).to_have_text("Load more updates (1 new)")
        more.click()
        expect(reader.locator("[data-entries] > article.entry")).to_have_count(23, timeout=WAIT)
        assert headlines_on(reader) == [f"Question {n:02d}" for n in range(1, 24)]
        expect(more).to_be_hidden()
        # At the end: live updates join it.
        http_post_entry(session, server, slug, "When is the next meeting?", "Question 24")
        expect(reader.locator("[data-entries] > article.entry").last).to_contain_text("Question 24", timeout=WAIT)

        toggle.click()
        expect(toggle).to_have_text("Oldest first")
        expect(reader.locator("[data-entries] > article.entry").first).to_contain_text("Question 24", timeout=WAIT)
        assert headlines_on(reader) == [f"Question {n:02d}" for n in range(24, 0, -1)]  # all of them were here
        reader.reload()  # the reader's choice is remembered for this story; 20 newest, then older ones
        expect(toggle).to_have_text("Oldest first", timeout=WAIT)
        expect(reader.locator("[data-entries] > article.entry").first).to_contain_text("Question 24")
        assert headlines_on(reader) == [f"Question {n:02d}" for n in range(24, 4, -1)]
        expect(more).to_have_text("Load older updates")


def test_a_returning_reader_sees_where_the_updates_new_since_the_last_visit_start(browser, server):
    session = http_login(server)
    slug = http_create_story(session, server, "Flood watch", "flood-watch")
    http_seed(session, server, slug, 2, prefix="Seen")
    with new_context(browser) as context:
        reader = open_reader(context, server, slug)
        expect(reader.locator(".since-last-visit")).to_have_count(0)  # a first visit: nothing to mark
        reader.goto("about:blank")
        http_seed(session, server, slug, 2, prefix="New")
        reader.goto(f"{server.url}/stories/{slug}")
        marker = reader.locator("[data-entries] > .since-last-visit")
        expect(marker).to_have_text("New since your last visit")
        expect(marker).to_have_attribute("role", "note")
        order = reader.locator("[data-entries] > *").evaluate_all(
            "nodes => nodes.map(n => n.matches('article') ? n.querySelector('.entry__headline').textContent : 'line')")
        assert order == ["New 02", "New 01", "line", "Seen 02", "Seen 01"]
        reader.goto("about:blank")
        reader.goto(f"{server.url}/stories/{slug}")  # seen now: no line
        expect(reader.locator('[data-connection="live"]')).to_be_visible(timeout=WAIT)
        expect(reader.locator(".since-last-visit")).to_have_count(0)


def test_a_widget_cuts_long_updates_with_read_more(browser, server):
    session = http_login(server)
    slug = http_create_story(session, server, "Budget speech", "budget-speech")
    http_seed(session, server, slug, 3, prefix="Short")
    for n in (1, 2):
        http_post_entry(session, server, slug, ("The full text of the measure. " * 700)[:20_000], f"Long {n}")
    with new_context(browser, viewport={"width": 600, "height": 800}) as context:
        widget = context.new_page()
        widget.goto(f"{server.url}/embed/{slug}?limit=5")
        buttons = widget.locator("button.read-more")
        expect(buttons).to_have_count(2, timeout=WAIT)
        expect(widget.locator("article.entry.entry--clamped")).to_have_count(2)
        height = widget.evaluate("document.documentElement.scrollHeight")
        assert height < 4000, height
        long_one = entry_with(widget, "Long 2")
        button = long_one.locator("button.read-more")
        expect(button).to_have_text("Read more")
        expect(button).to_have_attribute("aria-expanded", "false")
        button.click()
        expect(button).to_have_attribute("aria-expanded", "true")
        expect(button).to_have_text("Show less")
        expect(long_one).to_have_class(re.compile(r"\bentry--expanded\b"))
        assert widget.evaluate("document.documentElement.scrollHeight") > height + 2000
