"""The reader's page as people meet it: phones first, every page accessible (axe-core, light and
dark, phone and desktop, keyboard only), and stories in French and in right-to-left Arabic.

One server for the module (`python app.py`), seeded through the JSON API; fresh browser
contexts per test; Playwright's waiting only, never sleeps.
"""
from __future__ import annotations

import re

import pytest
import requests
from helpers import PASSWORD, axe_violations, browser_login, fresh_database, start_live_server
from playwright.sync_api import expect

pytestmark = pytest.mark.engine_independent

WAIT = 10_000  # ms
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
SUMMARY = ("Heavy rain has pushed the river past its flood defences in three towns overnight. Emergency "
           "services are evacuating homes near the water, roads are closed and trains are cancelled. "
           "Follow the latest updates from our reporters across the region as the water keeps rising "
           "through the long night, and more rain is on the way.")[:299] + "."
assert len(SUMMARY) == 300


class Newsroom:
    """The module's server and an API token acting as the editor 'alice'."""

    def __init__(self, server):
        self.server = server
        self.url = server.url
        token = server.flask("token", "create", "design", "--user", "alice").strip().splitlines()[-1]
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {token}"

    def story(self, slug: str, language: str = "en", summary: str = SUMMARY, key_events: int = 9,
              updates: int = 3) -> str:
        response = self.http.post(f"{self.url}/api/stories", timeout=10, json={
            "title": "River bursts its banks as storm moves north", "slug": slug, "summary": summary,
            "language": language})
        assert response.status_code == 201, response.text
        for n in range(key_events + updates):
            key = n < key_events
            self.post(slug, f"Update {n}: crews are working through the night to protect the bridge.",
                      headline=f"Key event {n}" if key else "", key=key)
        return slug

    def post(self, slug: str, body: str, headline: str = "", key: bool = False) -> int:
        response = self.http.post(f"{self.url}/api/stories/{slug}/entries", timeout=10,
                                  json={"body": body, "headline": headline, "key": key})
        assert response.status_code == 201, response.text
        return response.json()["entry"]["id"]


@pytest.fixture(scope="module")
def newsroom(tmp_path_factory, database_engine):
    with fresh_database(tmp_path_factory.mktemp("design"), database_engine) as url:
        server = start_live_server(url)
        yield Newsroom(server)
        server.stop()


@pytest.fixture
def context_for(browser):
    """Open browser contexts (viewport, colour scheme, locale...) closed after the test."""
    opened = []

    def make(**options):
        context = browser.new_context(**options)
        opened.append(context)
        return context

    yield make
    for context in opened:
        context.close()


def open_live(page, url: str):
    page.goto(url)
    expect(page.locator("[data-connection]").first).not_to_have_attribute("data-connection", "connecting",
                                                                          timeout=WAIT)
    return page


def first_update(page):
    return page.locator("[data-entries] > article.entry").first


def test_on_a_phone_the_first_update_starts_on_the_first_screen(newsroom, context_for):
    slug = newsroom.story("phone-first")
    page = open_live(context_for(viewport=PHONE, is_mobile=True, has_touch=True).new_page(),
                     f"{newsroom.url}/stories/{slug}")
    top = first_update(page).bounding_box()["y"]
    assert top < PHONE["height"], f"the first update starts at {top} px, below the first screen"
    # Key events fold into a closed disclosure that never sticks over the feed.
    key_events = page.locator("details.key-events, .key-events details").first
    expect(key_events).not_to_have_attribute("open", "")
    page.mouse.wheel(0, 1500)
    assert page.evaluate("""() => [...document.querySelectorAll('.key-events, .key-events details')]
        .every(el => !['sticky', 'fixed'].includes(getComputedStyle(el).position))""")


PAGES = {
    "story": "/stories/{slug}", "update": "/stories/{slug}/entries/{entry}", "widget": "/embed/{slug}",
    "dark widget": "/embed/{slug}?theme=dark&key_events=1", "story list": "/", "login": "/login",
    "accessibility": "/accessibility",
}
EDITOR_PAGES = {"desk": "/editor/", "editor story": "/editor/stories/{slug}"}


@pytest.mark.parametrize("viewport, scheme", [(DESKTOP, "light"), (PHONE, "dark"), (PHONE, "light"),
                                               (DESKTOP, "dark")], ids=["desktop-light", "phone-dark",
                                                                        "phone-light", "desktop-dark"])
def test_every_kind_of_page_passes_axe_and_reflows(newsroom, context_for, viewport, scheme):
    slug = f"axe-{viewport['width']}-{scheme}"
    newsroom.story(slug, key_events=2, updates=1)
    entry = newsroom.post(slug, "A <strong>bold</strong> update with a [link](https://example.com/).", "Bridge shut")
    page = context_for(viewport=viewport, color_scheme=scheme).new_page()
    found = {}
    for pages in (PAGES, EDITOR_PAGES):
        if pages is EDITOR_PAGES:
            browser_login(page, newsroom.server)
        for name, path in pages.items():
            page.goto(newsroom.url + path.format(slug=slug, entry=entry))
            page.wait_for_load_state("load")
            violations = axe_violations(page)
            if violations:
                found[name] = violations
            wide = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
            if wide > 0:
                found[f"{name}: scrolls sideways"] = f"{wide} px"
    assert not found, found


def test_a_reader_uses_the_page_by_keyboard_alone(newsroom, context_for):
    slug = newsroom.story("keyboard", key_events=2, updates=2)
    page = open_live(context_for(viewport=DESKTOP).new_page(), f"{newsroom.url}/stories/{slug}")
    page.keyboard.press("Tab")
    skip = page.locator(":focus")
    expect(skip).to_have_attribute("href", "#main")
    assert skip.bounding_box()["x"] >= 0, "the skip link is shown when it has the focus"
    page.keyboard.press("Enter")
    focused = []
    for _ in range(12):  # the focus walks through the page's controls, each visibly
        page.keyboard.press("Tab")
        outline = page.evaluate("""() => { const s = getComputedStyle(document.activeElement);
            return [document.activeElement.tagName, s.outlineStyle, s.outlineWidth]; }""")
        focused.append(outline[0])
        assert outline[1] != "none" and outline[2] != "0px", f"no visible focus on {outline}"
    assert "A" in focused and "BUTTON" in focused
    # A key event is reached and followed with the keyboard.
    link = page.locator("[data-key-events] a").first
    link.focus()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"#entry-\d+$"))


def test_an_editor_logs_in_and_publishes_by_keyboard_alone(newsroom, context_for):
    slug = newsroom.story("keyboard-desk", key_events=0, updates=1)
    page = context_for(viewport=DESKTOP).new_page()
    page.goto(f"{newsroom.url}/login")
    page.locator("#username").focus()
    page.keyboard.type("alice")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{newsroom.url}/editor/")
    page.goto(f"{newsroom.url}/editor/stories/{slug}")
    page.locator("#body").focus()
    page.keyboard.type("Typed and sent without a mouse.")
    page.keyboard.press("Control+Enter")
    expect(page.locator("[data-compose-status]")).to_contain_text("published", timeout=WAIT)
    expect(page.locator("[data-entries] article.entry", has_text="Typed and sent without a mouse.")).to_have_count(1)


def test_a_french_story_reads_in_french_with_french_times(newsroom, context_for):
    slug = newsroom.story("crue", language="fr", key_events=1, updates=1)
    page = open_live(context_for(viewport=DESKTOP, locale="en-GB").new_page(), f"{newsroom.url}/stories/{slug}")
    assert page.evaluate("document.documentElement.lang") == "fr"
    expect(page.locator("#key-events-title, .key-events summary, .key-events h2").first).to_contain_text(
        "Événements clés")
    expect(page.locator("[data-connection]").first).to_have_text(re.compile("direct", re.IGNORECASE))
    # Times are written the French way (24-hour clock; day before month), whatever the browser's locale.
    updated = page.locator("[data-story-updated]")
    stamp = updated.get_attribute("datetime")
    expected = page.evaluate(
        "(stamp) => new Date(stamp).toLocaleTimeString('fr', {hour: '2-digit', minute: '2-digit'})", stamp)
    expect(updated).to_contain_text(expected)


def test_an_arabic_story_lays_out_right_to_left(newsroom, context_for):
    slug = newsroom.story("arabic", language="ar", key_events=2, updates=2)
    for viewport in (DESKTOP, PHONE):
        page = open_live(context_for(viewport=viewport).new_page(), f"{newsroom.url}/stories/{slug}")
        assert page.evaluate("[document.documentElement.lang, document.documentElement.dir]") == ["ar", "rtl"]
        entry = first_update(page)
        box, time_box = entry.bounding_box(), entry.locator(".entry__time").bounding_box()
        # The time column (or the time line on a phone) starts at the right-hand edge of the update.
        assert time_box["x"] + time_box["width"] > box["x"] + box["width"] / 2, (viewport, box, time_box)
        assert page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")
        assert not axe_violations(page)
