"""The XSS attack corpus (tests/xss_corpus.json), end to end: every payload goes into every text field
a user can write and that is displayed, and a real Chromium opens the pages that show it.

Fields × ways in:
- entry body and headline: the editor's append form, the JSON API and the Markdown importer (story
  files in the export format), one third each, on the reader (every page of it), embed and editor
  pages (server-rendered); every payload again through the API and the importer (`--story` entry
  files) while a reader page is open (rendered by live.js), and a few through the editor page's
  compose form with reader, editor and embed pages open; and every payload as a corrected body and
  headline (correction form and API, alternately), all listed as earlier versions on one permalink page;
- story title and summary: packed a few to a story, the stories made through the form, the API and
  the importer; on the index, the editor dashboard and each story's reader page (title element, meta
  tags, JSON-LD, heading), the six entry-holding stories also on embed and editor pages; then every
  payload again as title and summary through `PATCH /api/stories` while the reader page is open;
- byline (author): only the importer sets it, and only live.js shows it: every payload, live.

Every payload tries to call the sentinel `xss(<index>)` (or alert/top.xss); the sentinel is installed
in every frame with `expose_function` + `add_init_script`, and any dialog or page error fails the test
too. The sentinel checks run with `bypass_csp=True`, so the sanitizer and the escaping are tested on
their own; `test_strict_csp_*` checks separately that the pages send the strict policy and that
nothing runs or even tries to (no CSP violation) with it on. The DOM checks (`DOM_AUDIT`) look for
handler attributes, script-ish URLs (normalised like a browser does), elements outside the allowlist
in user HTML, any markup at all in plain-text fields, and links without rel="noopener nofollow ugc".
Each check also asserts the payloads are really on the page, as text, so a vanished field cannot pass.
"""
from __future__ import annotations

import json
import uuid
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
import yaml
from helpers import PASSWORD, LiveServer, browser_login, csrf_from, fresh_database, http_login
from playwright.sync_api import expect

from tracker import CSP, EMBED_CSP
from tracker.sanitize import clean_text

# Escaping and the CSP do not depend on the engine; how text is stored is checked on PostgreSQL by
# test_services and test_api.
pytestmark = pytest.mark.engine_independent

CORPUS_FILE = Path(__file__).with_name("xss_corpus.json")
CORPUS: list[str] = json.loads(CORPUS_FILE.read_text(encoding="utf-8"))
WAIT = 15_000  # ms
LIVE_WAIT = 60_000  # ms: hundreds of live changes on a busy 2-core machine
PATHS = ("form", "api", "import")
ENTRY_STORIES = 6  # stories holding the body/headline payloads, at most 50 entries each (editor and embed pages)
TITLE_LIMIT = 200


def payload(i: int) -> str:
    """Corpus entry i, its sentinel call numbered so a hit names the payload."""
    return CORPUS[i].replace("xss(1)", f"xss({i})")


def normal(text: str) -> str:
    """Compare stored and expected text the way the fields store it: cleaned, whitespace collapsed."""
    return " ".join(clean_text(text).split())


def parsed(text: str) -> str:
    """Text as an HTML parser hands it back: carriage returns become newlines."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def test_corpus_has_at_least_150_distinct_payloads():
    assert isinstance(CORPUS, list) and all(isinstance(p, str) and p.strip() for p in CORPUS)
    assert len(set(CORPUS)) == len(CORPUS), "duplicate payloads"
    assert len(set(CORPUS)) >= 150
    assert all(len(p) <= TITLE_LIMIT for p in CORPUS), "every payload must fit a title and a headline"
    assert not any("\x00" in p or any(0xD800 <= ord(c) <= 0xDFFF for c in p) for p in CORPUS)


# The browser's view of a page

DOM_AUDIT = r"""
() => {
  const problems = [];
  const where = (el) => {
    const entry = el.closest && el.closest("article.entry");
    return (entry ? "#" + entry.id + " " : "") + "<" + el.localName + ">";
  };
  // What a browser ignores in a URL's scheme: leading/trailing C0 controls and spaces, tabs and newlines.
  const norm = (v) => v.replace(/^[\u0000-\u0020]+|[\u0000-\u0020]+$/g, "").replace(/[\t\n\r]/g, "").toLowerCase();
  const BAD = /^(?:javascript|data|vbscript|livescript|mocha|jar):/;
  const URL_ATTRS = new Set(["href", "src", "action", "formaction", "xlink:href", "srcdoc", "data", "poster",
    "background", "codebase", "cite", "longdesc", "lowsrc", "dynsrc", "ping", "srcset", "manifest", "icon",
    "archive", "classid", "usemap", "to", "from", "values", "by"]);
  for (const el of document.querySelectorAll("*")) {
    for (const attr of el.attributes) {
      const name = attr.name.toLowerCase();
      if (name.startsWith("on")) problems.push(`${where(el)} has ${name}`);
      if (name === "srcdoc") problems.push(`${where(el)} has srcdoc`);
      if ((URL_ATTRS.has(name) || name.endsWith(":href")) && BAD.test(norm(attr.value)))
        problems.push(`${where(el)} ${name}=${JSON.stringify(attr.value)}`);
    }
    for (const prop of ["href", "src", "action", "formAction"]) {
      const v = el[prop];
      if (typeof v === "string" && v && BAD.test(norm(v))) problems.push(`${where(el)}.${prop} is ${v}`);
    }
  }
  // Elements that must not be anywhere on these pages.
  for (const el of document.querySelectorAll(
      "iframe, frame, frameset, object, embed, applet, portal, style, svg, math, noscript, noembed, " +
      "xmp, plaintext, meta[http-equiv], base[href], link[rel~=import], " +
      "template:not(#entry-template):not(#desk-template)"))
    problems.push(`page has ${where(el)}`);
  if (document.querySelectorAll("template#entry-template").length > 1 ||
      document.querySelectorAll("template#desk-template").length > 1 ||
      document.querySelectorAll("script#i18n").length > 1) problems.push("a template or the strings twice");
  for (const s of document.querySelectorAll("script")) {
    // Data, never run: JSON-LD, and the scripts' strings in the page's language (#i18n, once).
    const own = s.type === "application/ld+json" || (s.type === "application/json" && s.id === "i18n") ? !s.src
      : !!s.src && new URL(s.src).origin === location.origin && new URL(s.src).pathname.startsWith("/static/");
    if (!own) problems.push(`foreign script ${s.outerHTML.slice(0, 120)}`);
  }
  for (const ld of document.querySelectorAll('script[type="application/ld+json"]')) {
    try { JSON.parse(ld.textContent); } catch (e) { problems.push("JSON-LD does not parse: " + e); }
  }
  // User HTML: only the allowlist, and every link marked.
  const ALLOWED = {p: [], br: [], hr: [], strong: [], em: [], b: [], i: [], s: [], del: [], code: [], pre: [],
    blockquote: [], ul: [], ol: ["start"], li: [], a: ["href", "title", "rel", "target"], h3: [], h4: [],
    img: ["src", "alt", "title"], sup: [], sub: []};
  let bodies = 0;
  for (const body of document.querySelectorAll(".entry__body, .desk-item__body, .preview__body, .conflict__theirs")) {
    if (body.matches(".entry__body, .desk-item__body")) bodies += 1;  // an update's (the others hold a copy)
    for (const el of body.querySelectorAll("*")) {
      if (el.namespaceURI !== "http://www.w3.org/1999/xhtml" || !(el.localName in ALLOWED)) {
        problems.push(`user HTML has ${where(el)}`);
        continue;
      }
      for (const attr of el.attributes)
        if (!ALLOWED[el.localName].includes(attr.name)) problems.push(`user HTML ${where(el)} has ${attr.name}`);
    }
    for (const a of body.querySelectorAll("a")) {
      for (const token of ["noopener", "nofollow", "ugc"])
        if (!a.relList.contains(token)) problems.push(`link without rel ${token}: ${a.outerHTML.slice(0, 120)}`);
      if (a.hasAttribute("href") && !["http:", "https:", "mailto:"].includes(new URL(a.href).protocol))
        problems.push(`link to ${a.href}`);
    }
    for (const img of body.querySelectorAll("img"))
      if (img.hasAttribute("src") && !["http:", "https:"].includes(new URL(img.src).protocol))
        problems.push(`image from ${img.src}`);
  }
  // Plain-text fields hold text only.
  const TEXT = ".entry__headline, .entry__author, [data-story-title], [data-story-summary], .story-list__title, " +
    ".desk-item__headline, [data-desk-author], [data-desk-note] span, [data-presence], " +
    ".story-list__summary, .key-events__list li span, .table tbody td:first-child > a:first-child, title, " +
    ".history__version > h3";
  let texts = 0;
  for (const el of document.querySelectorAll(TEXT)) {
    texts += 1;
    if (el.children.length)
      problems.push(`text field ${where(el)}.${el.className} has markup: ${el.innerHTML.slice(0, 120)}`);
  }
  return {problems, bodies, texts};
}
"""

PAGE_TEXT = r"""
() => ({
  title: document.querySelector("[data-story-title]") && document.querySelector("[data-story-title]").textContent,
  summary: document.querySelector("[data-story-summary]") && document.querySelector("[data-story-summary]").textContent,
  ld: Array.from(document.querySelectorAll('script[type="application/ld+json"]'), (s) => JSON.parse(s.textContent)),
  description: (document.querySelector('meta[name="description"]') || {}).content,
  entries: Array.from(document.querySelectorAll("#story article.entry"), (el) => ({
    id: +el.dataset.id,
    headline: el.querySelector(".entry__headline").textContent,
    author: el.querySelector(".entry__author").textContent,
  })),
})
"""

SENTINEL = """
(() => {
  const report = (how) => function () {
    try { window.__xssHit(how, Array.from(arguments).map(String).join(","), String(location.href)); } catch (e) {}
  };
  Object.defineProperty(window, "xss", {value: report("xss"), writable: false, configurable: false});
  window.__violations = [];
  document.addEventListener("securitypolicyviolation", (e) => {
    window.__violations.push(e.violatedDirective + " " + e.blockedURI + " " + (e.sample || ""));
  });
})();
"""


class Watch:
    """A browser context with the sentinel in every frame, dialogs and page errors recorded."""

    def __init__(self, context, origin: str):
        self.context, self.hits, self.dialogs, self.errors = context, [], [], []
        context.expose_function("__xssHit", lambda *args: self.hits.append(args))
        context.add_init_script(SENTINEL)
        context.on("dialog", self._dialog)
        context.on("page", lambda page: page.on("pageerror", lambda exc: self.errors.append(str(exc))))
        # Hermetic: nothing leaves for other hosts (payload images and scripts point at example hosts).
        context.route(lambda url: not url.startswith(origin + "/"), lambda route: route.abort())

    def _dialog(self, dialog):
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def assert_clean(self, where: str) -> None:
        assert self.hits == [], f"script ran on {where}: {self.hits}"
        assert self.dialogs == [], f"dialog opened on {where}: {self.dialogs}"
        assert self.errors == [], f"page error on {where}: {self.errors}"


@contextmanager
def watched(browser, origin: str, **options):
    context = browser.new_context(**options)
    try:
        yield Watch(context, origin)
    finally:
        context.close()


def audit(page, where: str) -> dict:
    """Run the DOM checks on the page; fails with every problem found."""
    result = page.evaluate(DOM_AUDIT)
    assert result["problems"] == [], f"{where}: {result['problems'][:20]}"
    return result


def open_live(page, url: str) -> None:
    page.goto(url)
    expect(page.locator('[data-connection="live"]')).to_have_count(1, timeout=WAIT)


# The server and the ways in

@pytest.fixture(scope="module")
def server(tmp_path_factory, database_engine):
    """`python app.py` on its own database, with the editor 'alice' and an API token."""
    with fresh_database(tmp_path_factory.mktemp("xss"), database_engine) as url:
        live = LiveServer(url)
        live.flask("user", "create", "alice", "--password-stdin", input_text=PASSWORD + "\n")
        live.token = live.flask("token", "create", "xss-corpus").strip().splitlines()[-1]
        live.start()
        yield live
        live.stop()


class Writer:
    """Creates stories and entries through the editor's forms, the JSON API or the importer."""

    def __init__(self, server, tmp: Path):
        self.server, self.tmp = server, tmp
        self.api = requests.Session()
        self.api.headers["Authorization"] = f"Bearer {server.token}"
        self.form = http_login(server.url)
        self.csrf = csrf_from(self.form.get(f"{server.url}/editor/stories/new", timeout=10).text)
        self.imports: list[Path] = []

    # stories: `entries` are (body, headline) pairs; key/pinned only where the way in has them
    def story(self, way: str, slug: str, title: str, summary: str, entries: list[tuple[str, str]]) -> None:
        if way == "import":
            self._import_story(slug, title, summary, entries)
            return
        if way == "api":
            r = self.api.post(f"{self.server.url}/api/stories", json={"title": title, "slug": slug, "summary": summary},
                              timeout=10)
            assert r.status_code == 201, r.text
        else:
            r = self.form.post(f"{self.server.url}/editor/stories/new", allow_redirects=False, timeout=10, data={
                "csrf_token": self.csrf, "title": title, "slug": slug, "summary": summary, "image_url": "",
                "status": "live"})
            assert r.status_code == 302 and r.headers["Location"].endswith(f"/editor/stories/{slug}"), r.text
        for n, (body, headline) in enumerate(entries):
            self.entry(way, slug, body, headline, key=n % 2 == 0, pinned=n == 0)

    def entry(self, way: str, slug: str, body: str, headline: str, key: bool = False, pinned: bool = False) -> dict:
        if way == "api":
            r = self.api.post(f"{self.server.url}/api/stories/{slug}/entries", timeout=10,
                              json={"body": body, "headline": headline, "key": key, "pinned": pinned})
            assert r.status_code == 201, r.text
            return r.json()["entry"]
        assert way == "form"
        data = {"csrf_token": self.csrf, "body": body, "headline": headline, "idempotency_key": uuid.uuid4().hex}
        data.update({"key": "y"} if key else {}, **({"pinned": "y"} if pinned else {}))
        r = self.form.post(f"{self.server.url}/editor/stories/{slug}", timeout=10, data=data,
                           headers={"Accept": "application/json"})
        assert r.status_code == 200 and r.json()["ok"], r.text
        return r.json()["entry"]

    def _import_story(self, slug: str, title: str, summary: str, entries: list[tuple[str, str]]) -> None:
        """A story file in the export format: one `## <time> · <headline>` section per entry."""
        start = datetime(2024, 3, 5, 12, 0, tzinfo=UTC)
        sections = []
        for n, (body, headline) in enumerate(entries):
            stamp = (start + timedelta(minutes=n)).isoformat().replace("+00:00", "Z")
            headline = headline.replace("\n", " ")  # a section's headline is one line
            sections.append(f"## {stamp} · {headline}\n\n{body}\n")
        path = self.tmp / "stories" / f"{slug}.md"
        path.parent.mkdir(exist_ok=True)
        path.write_text(front_matter(title=title, slug=slug, excerpt=summary, status="live") + "\n".join(sections),
                        encoding="utf-8")
        self.imports.append(path)

    def run_imports(self) -> None:
        if self.imports:
            self.server.flask("import", *map(str, self.imports))
            self.imports = []

    def stored_entries(self, slug: str) -> list[dict]:
        entries, before = [], None
        while True:
            r = requests.get(f"{self.server.url}/api/stories/{slug}/entries", timeout=10,
                             params={"limit": 100, **({"before": before} if before else {})})
            entries += r.json()["entries"]
            before = r.json()["next_before"]
            if not before:
                return entries


def front_matter(**fields: str) -> str:
    """YAML front matter that reads back exactly these strings (double-quoted, escaped)."""
    return "---\n" + yaml.safe_dump(fields, allow_unicode=True, default_style='"', width=10**6,
                                    sort_keys=False) + "---\n"


def title_packs() -> list[list[int]]:
    """The corpus's indexes in groups whose payloads, joined by two spaces, fit a title."""
    packs, current = [], []
    for i in range(len(CORPUS)):
        if current and len("  ".join(payload(j) for j in [*current, i])) > TITLE_LIMIT:
            packs.append(current)
            current = []
        current.append(i)
    return [*packs, current]


def joined(indexes: list[int]) -> str:
    return "  ".join(payload(i) for i in indexes)


@pytest.fixture(scope="module")
def seeded(server, tmp_path_factory):
    """Every payload as an entry body, a headline, a story title and a story summary, split over the ways in.

    Entry i: body payload i, headline payload i+1; the six entry stories take ~50 entries each, stories
    0 and 3 through the form, 1 and 4 the API, 2 and 5 the importer. Titles and summaries: the packs of
    `title_packs`, story s titled with pack s and summarised with pack s+1; stories past the sixth hold
    no entries and are made the same three ways in turn.
    """
    writer = Writer(server, tmp_path_factory.mktemp("import"))
    n = len(CORPUS)
    packs = title_packs()
    assert len(packs) > ENTRY_STORIES
    per_story = -(-n // ENTRY_STORIES)
    stories = []
    for s, pack in enumerate(packs):
        way = PATHS[s % len(PATHS)]
        slug = f"xss-{s:03d}"
        indexes = range(s * per_story, min(n, (s + 1) * per_story)) if s < ENTRY_STORIES else range(0)
        entries = [(payload(i), payload((i + 1) % n)) for i in indexes]
        title, summary = joined(pack), joined(packs[(s + 1) % len(packs)])
        writer.story(way, slug, title, summary, entries)
        stories.append({"slug": slug, "way": way, "title": title, "summary": summary, "entries": entries})
    writer.run_imports()

    # What was stored is what was sent (cleaned), so the pages below really show every payload.
    stored = {s["slug"]: s for s in requests.get(f"{server.url}/api/stories", timeout=10).json()["stories"]}
    bodies, headlines, titles, summaries = set(), set(), set(), set()
    for story in stories:
        got = stored[story["slug"]]
        assert normal(got["title"]) == normal(story["title"]) and normal(got["summary"]) == normal(story["summary"])
        story["stored_title"] = got["title"]
        titles.add(story["title"])
        summaries.add(story["summary"])
        entries = writer.stored_entries(story["slug"])
        assert len(entries) == len(story["entries"]) <= 50
        sent = {normal(headline) for _, headline in story["entries"]}
        assert {normal(e["headline"]) for e in entries} == sent
        story["stored"] = entries
        bodies |= {body for body, _ in story["entries"]}
        headlines |= {headline for _, headline in story["entries"]}
    for i in range(n):
        assert payload(i) in bodies and payload(i) in headlines
        assert any(payload(i) in t for t in titles) and any(payload(i) in s for s in summaries)
    return stories


@pytest.fixture(scope="module")
def corrected(server, tmp_path_factory):
    """One entry corrected once per payload (body payload i, headline payload i+1), alternately through the
    editor's correction form and `PATCH /api/entries`: its permalink page lists every earlier version."""
    writer = Writer(server, tmp_path_factory.mktemp("history"))
    writer.story("api", "xss-history", "Corrections", "", [])
    entry = writer.entry("api", "xss-history", "First text.", "First")
    n = len(CORPUS)
    for i in range(n):
        body, headline = payload(i), payload((i + 1) % n)
        if i % 2:
            r = writer.api.patch(f"{server.url}/api/entries/{entry['id']}", json={"body": body, "headline": headline},
                                 timeout=10)
            assert r.status_code == 200, r.text
        else:
            r = writer.form.post(f"{server.url}/editor/entries/{entry['id']}/edit", timeout=10,
                                 headers={"Accept": "application/json"},
                                 data={"csrf_token": writer.csrf, "body": body, "headline": headline})
            assert r.status_code == 200 and r.json()["ok"], r.text
    return f"{server.url}{entry['url']}"


def test_image_url_takes_no_script_scheme(browser, server):
    """The lead image is the one URL field; the API refuses every non-web scheme in it, and an odd web
    address stays inside its attributes."""
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {server.token}"
    r = api.post(f"{server.url}/api/stories", json={"title": "Image test", "slug": "xss-image"}, timeout=10)
    assert r.status_code == 201, r.text
    for url in ["javascript:xss(1)", " JaVaScRiPt:xss(1)", "java\tscript:xss(1)", "\x01javascript:xss(1)",
                "data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9dG9wLnhzcygxKT4=", "vbscript:msgbox(1)",
                "https:javascript:xss(1)", "//evil.example/x.png", "&#x6A;avascript:xss(1)", "/static/x.png"]:
        r = api.patch(f"{server.url}/api/stories/xss-image", json={"image_url": url}, timeout=10)
        assert r.status_code == 422, (url, r.text)
    r = api.patch(f"{server.url}/api/stories/xss-image", timeout=10,
                  json={"image_url": 'https://example.org/a.png"onerror="xss(1)'})
    assert r.status_code == 200, r.text
    with watched(browser, server.url, bypass_csp=True) as watch:
        page = watch.context.new_page()
        open_live(page, f"{server.url}/stories/xss-image")
        audit(page, "story with an odd image URL")
        assert page.locator("[data-story-image]").get_attribute("src") == 'https://example.org/a.png"onerror="xss(1)'
        watch.assert_clean("story with an odd image URL")


def _pages_of(server, story: dict) -> list[str]:
    slug = story["slug"]
    if not story["entries"]:
        return [f"{server.url}/stories/{slug}"]
    return [f"{server.url}/stories/{slug}", f"{server.url}/embed/{slug}?limit=50&key_events=1",
            f"{server.url}/editor/stories/{slug}"]


def test_server_rendered_pages_run_no_payload(browser, server, seeded):
    """Reader (every page of it), embed and editor pages of the entry stories, the reader page of every
    story, the index and the dashboard: no script runs and the DOM audit finds nothing."""
    with watched(browser, server.url, bypass_csp=True) as watch:
        page = watch.context.new_page()
        browser_login(page, server)
        loads = 0
        seen_entries, seen_titles = set(), set()
        for url in [f"{server.url}/", f"{server.url}/editor/"]:
            page.goto(url)
            result = audit(page, url)
            assert result["texts"] >= len(seeded), url
            loads += 1
        for story in seeded:
            stored = {e["id"]: e for e in story.get("stored", [])}
            for url in _pages_of(server, story):
                while url:
                    open_live(page, url)
                    loads += 1
                    audit(page, url)
                    assert page.url == url, f"{url} navigated to {page.url}"
                    shown = page.evaluate(PAGE_TEXT)
                    # The payloads are on the page, as text.
                    assert normal(shown["title"]) == normal(story["title"]), url
                    if "/embed/" not in url:
                        assert shown["summary"] is None or normal(shown["summary"]) == normal(story["summary"])
                    for entry in shown["entries"]:
                        assert entry["headline"] == parsed(stored[entry["id"]]["headline"]), (url, entry["id"])
                        seen_entries.add(entry["id"])
                    if "/stories/" in url and "/editor/" not in url:
                        seen_titles.add(story["slug"])
                        assert shown["ld"][0]["headline"] == story["stored_title"]
                        assert normal(shown["description"]) == normal(story["summary"])
                    watch.assert_clean(url)
                    older = page.locator("[data-load-older]")  # the reader pages by cursor (20 a page)
                    url = older.get_attribute("href") if "/editor/" not in url and older.count() else None
                    url = url and server.url + url
        assert seen_entries == {e["id"] for s in seeded for e in s.get("stored", [])}
        assert seen_titles == {s["slug"] for s in seeded}
        watch.assert_clean("every page")
    print(f"server-rendered: {loads} page loads")


def test_corrections_page_runs_no_payload(browser, server, corrected):
    """The permalink page of an entry corrected once per payload shows all of them as earlier versions."""
    with watched(browser, server.url, bypass_csp=True) as watch:
        page = watch.context.new_page()
        page.goto(corrected)
        expect(page.locator(".history__version")).to_have_count(len(CORPUS), timeout=WAIT)
        result = audit(page, corrected)
        assert result["bodies"] == len(CORPUS) + 1
        shown = page.eval_on_selector_all(".history__version > h3", "(els) => els.map((el) => el.textContent)")
        # Every text but the current one (the last payload's) is a version: "First", then payloads 1..n-1.
        assert sorted(map(normal, shown)) == sorted(["First", *(normal(payload(i)) for i in range(1, len(CORPUS)))])
        assert page.url == corrected
        watch.assert_clean(corrected)


def test_strict_csp_is_sent_and_nothing_runs_or_tries_with_it(browser, server, seeded):
    """With the CSP on (no bypass), the real pages send the strict policy, no payload runs, and none even
    reaches the browser as something the policy has to block."""
    for directive in ("script-src 'self'", "object-src 'none'", "base-uri 'none'", "default-src 'self'"):
        assert directive in CSP
    assert "unsafe-inline" not in CSP and "unsafe-eval" not in CSP and "script-src 'self';" in EMBED_CSP
    with watched(browser, server.url) as watch:
        page = watch.context.new_page()
        browser_login(page, server)
        for story in seeded[:3]:  # one story from each way in
            for url in _pages_of(server, story):
                response = page.goto(url)
                expect(page.locator('[data-connection="live"]')).to_have_count(1, timeout=WAIT)
                expected = EMBED_CSP if "/embed/" in url else CSP
                assert response.headers.get("content-security-policy") == expected, url
                assert page.evaluate("window.__violations") == [], url
                watch.assert_clean(url)


def test_live_updates_run_no_payload(browser, server, tmp_path):
    """A reader page stays open while every payload arrives over the websocket: as the byline, headline
    and body of imported entries, as the body and headline of API entries, and as story title and
    summary (PATCH). Then editor and embed pages join, and a few payloads go through the editor page's
    compose form (rendered there from the POST's answer, on the reader and embed pages live)."""
    n = len(CORPUS)
    writer = Writer(server, tmp_path)
    slug = "xss-live"
    r = writer.api.post(f"{server.url}/api/stories", json={"title": "Live XSS", "slug": slug}, timeout=10)
    assert r.status_code == 201, r.text
    with watched(browser, server.url, bypass_csp=True) as watch:
        reader = watch.context.new_page()
        open_live(reader, f"{server.url}/stories/{slug}")
        pages = {"reader": reader}

        # 1. The importer (another process: the page catches up by revision, see below), one entry per
        #    payload as its byline, with another as headline and a third as body.
        folder = tmp_path / "entries"
        folder.mkdir()
        bylines = {}
        for i in range(n):
            byline = payload(i)
            if len(normal(byline)) > 100:  # the byline column's limit
                continue
            bylines[i] = byline
            (folder / f"entry-{i:03d}.md").write_text(
                front_matter(title=payload((i + 2) % n), author=byline) + payload((i + 3) % n) + "\n", encoding="utf-8")
        assert len(bylines) >= 150
        server.flask("import", "--story", slug, str(folder))
        # An entry published by the server shows the page the imported revisions it lacks: it joins again.
        writer.entry("api", slug, "Catch up.", "")
        wait_for_rev(server, pages)

        # 2. The API: every payload as a body, the next as its headline; every other one a key event.
        for i in range(n):
            writer.entry("api", slug, payload(i), payload((i + 1) % n), key=i % 2 == 0, pinned=i == n // 2)
        # 3. The story's title and summary: every payload in each, a few at a time.
        packs = title_packs()
        for k, pack in enumerate(packs):
            r = writer.api.patch(f"{server.url}/api/stories/{slug}", timeout=10,
                                 json={"title": joined(pack), "summary": joined(packs[(k + 1) % len(packs)])})
            assert r.status_code == 200, r.text
        wait_for_rev(server, pages)

        # 4. The compose form on the editor page, with an embed page open too.
        editor = watch.context.new_page()
        browser_login(editor, server)
        open_live(editor, f"{server.url}/editor/stories/{slug}")
        embed = watch.context.new_page()
        open_live(embed, f"{server.url}/embed/{slug}?limit=50&key_events=1")
        pages.update(editor=editor, embed=embed)
        composed = range(0, n, n // 6)
        for i in composed:
            editor.fill("#headline", payload(i))
            editor.fill("#body", payload((i + 4) % n))
            editor.click("[data-publish]")
            expect(editor.locator("[data-compose-status]")).to_have_text("Update published.", timeout=WAIT)
            expect(editor.locator("#body")).to_have_value("", timeout=WAIT)
        r = writer.api.patch(f"{server.url}/api/stories/{slug}", timeout=10,
                             json={"title": joined(packs[0]), "summary": joined(packs[-1])})
        assert r.status_code == 200, r.text
        wait_for_rev(server, pages)

        story_state = requests.get(f"{server.url}/api/stories/{slug}", timeout=10).json()["story"]
        assert normal(story_state["title"]) == normal(joined(packs[0]))
        states = writer.stored_entries(slug)
        assert len(states) == len(bylines) + 1 + n + len(composed)
        by_id = {e["id"]: e for e in states}
        assert {normal(e["author"]) for e in states if e["author"] and e["author"] != "alice"} == {
            normal(b) for b in bylines.values()}
        assert {normal(e["headline"]) for e in states} >= {normal(payload(i)) for i in range(n)}
        expected = {"reader": len(states), "editor": 50 + len(composed), "embed": 50}
        for name, page in pages.items():
            result = audit(page, f"live {name} page")
            shown = page.evaluate(PAGE_TEXT)
            assert shown["title"] == story_state["title"], name
            assert name != "reader" or shown["summary"] == story_state["summary"], name
            assert len(shown["entries"]) == expected[name] == result["bodies"], name
            for entry in shown["entries"]:
                state = by_id[entry["id"]]
                assert entry["headline"] in (state["headline"], parsed(state["headline"])), (name, entry["id"])
                if name == "reader":  # the other pages show their older entries as rendered by the server
                    assert entry["author"] == ("By " + state["author"] if state["author"] else ""), entry["id"]
            assert page.url.startswith(server.url), name
        watch.assert_clean("live pages")
    print(f"live: {len(states)} entries and {len(packs) + 1} story changes")


def test_the_desk_runs_no_payload(browser, server):
    """Every payload as an unpublished update's body, headline and send-back note: on the desk as the
    server renders it, and as desk.js renders it from live `draft` events."""
    writer = Writer(server, Path("."))
    slug = "xss-desk"
    writer.story("api", slug, "Desk", "", [])
    url = f"{server.url}/editor/stories/{slug}"
    half = len(CORPUS) // 2

    def add(indexes) -> None:
        for i in indexes:
            r = writer.api.post(f"{server.url}/api/stories/{slug}/entries", timeout=10, json={
                "body": payload(i), "headline": payload((i + 1) % len(CORPUS)), "status": "submitted"})
            assert r.status_code == 201, r.text
            if i % 3 == 0:
                r = writer.api.patch(f"{server.url}/api/entries/{r.json()['entry']['id']}", timeout=10,
                                     json={"status": "draft", "note": payload((i + 2) % len(CORPUS))})
                assert r.status_code == 200, r.text

    add(range(half))
    with watched(browser, server.url, bypass_csp=True) as watch:
        page = watch.context.new_page()
        browser_login(page, server)
        open_live(page, url)
        assert audit(page, url)["bodies"] >= half
        watch.assert_clean(url)
        add(range(half, len(CORPUS)))  # now live, through desk.js
        expect(page.locator(".desk-item")).to_have_count(len(CORPUS), timeout=WAIT)
        audit(page, url + " (live)")
        watch.assert_clean(url + " (live)")


def wait_for_rev(server, pages: dict) -> None:
    """Wait until every page holds everything up to the story's current revision."""
    rev = requests.get(f"{server.url}/api/stories/xss-live", timeout=10).json()["story"]["rev"]
    for name, page in pages.items():
        expect(page.locator(f'#story[data-rev="{rev}"]'), name).to_have_count(1, timeout=LIVE_WAIT)
