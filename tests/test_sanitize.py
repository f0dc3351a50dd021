"""The sanitizer: Markdown in, allowlisted HTML out."""
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tracker.sanitize import ALLOWED_TAGS, clean_body, clean_text, render_markdown, sanitize, xml_text


class _Audit(HTMLParser):
    """Collect every element outside the allowlist, handler attribute or non-web URL."""

    def __init__(self):
        super().__init__()
        self.problems = []

    def handle_starttag(self, tag, attrs):
        if tag not in ALLOWED_TAGS:
            self.problems.append(tag)
        for name, value in attrs:
            if name.startswith("on") or (name in ("href", "src") and
                                         not re.match(r"^(https?:|mailto:)", value or "", re.I)):
                self.problems.append(f"{tag}[{name}={value}]")


def active_content(html: str) -> list[str]:
    audit = _Audit()
    audit.feed(html)
    return audit.problems


@pytest.mark.parametrize("source, expected", [
    ("Hello **world**", "<p>Hello <strong>world</strong></p>"),
    ("> quoted", "<blockquote>\n<p>quoted</p>\n</blockquote>"),
    ("- one\n- two", "<ul>\n<li>one</li>\n<li>two</li>\n</ul>"),
    ("~~wrong~~ right", "<p><s>wrong</s> right</p>"),
    ("`code`", "<p><code>code</code></p>"),
])
def test_markdown_renders_allowed_formatting(source, expected):
    assert render_markdown(source).strip() == expected


def test_links_get_rel_and_new_tab():
    html = render_markdown("[Council](https://example.org/council)")
    assert 'href="https://example.org/council"' in html
    assert 'rel="noopener nofollow ugc"' in html and 'target="_blank"' in html


def test_bare_urls_are_linked_but_not_inside_code():
    assert '<a href="https://example.org"' in render_markdown("See https://example.org now")
    assert "<a" not in render_markdown("`https://example.org`")


@pytest.mark.parametrize("url", ["https://bsky.app/profile/reporter.example.org/post/3kq2xyzabcdef",
                                 "https://mastodon.social/@reporter/112233445566"])
def test_a_bare_url_is_linked_whole_whatever_its_domain_or_path(url):
    assert f'<p><a href="{url}" rel="noopener nofollow ugc" target="_blank">{url}</a></p>' in render_markdown(url)


@pytest.mark.parametrize("attack", [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "[click](java&#x09;script:alert(1))",
    "![x](data:text/html;base64,PHNjcmlwdD4=)",
    "<svg onload=alert(1)>",
    "<iframe src=https://evil.example></iframe>",
    '<a href="javascript:alert(1)">x</a>',
    "<style>body{display:none}</style>",
])
def test_markdown_attacks_leave_no_active_content(attack):
    assert active_content(render_markdown(attack)) == []


@pytest.mark.parametrize("html, expected", [
    ('<p onclick="x()">hi</p>', "<p>hi</p>"),
    ('<a href="javascript:alert(1)">x</a>', '<a rel="noopener nofollow ugc" target="_blank">x</a>'),
    ('<img src="https://example.org/a.png" onerror="x()">', '<img src="https://example.org/a.png">'),
    ("<object data=x></object><form><input></form>", "\n"),
    ("<!-- secret -->visible", "visible"),
])
def test_sanitize_strips_to_the_allowlist(html, expected):
    assert sanitize(html) == expected


def test_clean_text_drops_control_and_bidi_characters():
    assert clean_text("  Mayor\u202e resigns\x00 ") == "Mayor resigns"


@pytest.mark.parametrize("char", ["\x00", "\x01", "\x08", "\x0b", "\x0c", "\x0e", "\x1f",
                                  "\ud800", "\udfff", "\ufffe", "\uffff"])
def test_what_xml_cannot_carry_is_dropped_from_text_and_bodies(char):
    """Every code point XML 1.0 forbids goes on write, so no feed ever meets one."""
    assert clean_text(f"Mayor{char} resigns") == "Mayor resigns"
    assert clean_body(f"Mayor{char} resigns\n\tat noon") == "Mayor resigns\n\tat noon"
    assert xml_text(f"Mayor{char} resigns") == "Mayor resigns"


def test_xml_text_keeps_all_that_xml_can_carry():
    text = "tab\t newline\n cr\r del\x7f nel\x85 bidi\u202e \ufffd \ufdd0 \U0001f600 \U0001ffff \U0010ffff"
    assert xml_text(text) == text


# The XSS corpus (tests/xss_corpus.json; test_xss.py runs it end to end in a browser)

CORPUS = json.loads((Path(__file__).with_name("xss_corpus.json")).read_text(encoding="utf-8"))
_ATTRIBUTES = {"a": {"href", "title", "rel", "target"}, "img": {"src", "alt", "title"}, "ol": {"start"}}
_URL_SPACE = re.compile(r"^[\x00-\x20]+|[\x00-\x20]+$")


class _StrictAudit(HTMLParser):
    """Everything an allowlisted fragment must not have: other elements or attributes, a URL that is
    not an absolute web or mail address once trimmed like a browser trims it, a link without its rel."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.problems = []

    def handle_starttag(self, tag, attrs):
        if tag not in ALLOWED_TAGS:
            self.problems.append(f"<{tag}>")
            return
        names = [name for name, _ in attrs]
        for name, value in attrs:
            if name not in _ATTRIBUTES.get(tag, ()):
                self.problems.append(f"<{tag} {name}>")
            if name in ("href", "src"):
                url = _URL_SPACE.sub("", value or "").replace("\t", "").replace("\n", "").replace("\r", "")
                if not re.match(r"^(?:https?://|mailto:)", url, re.IGNORECASE):
                    self.problems.append(f"<{tag} {name}={value!r}>")
        if len(set(names)) != len(names):
            self.problems.append(f"<{tag}> repeats an attribute")
        if tag == "a" and not {"noopener", "nofollow", "ugc"} <= set((dict(attrs).get("rel") or "").split()):
            self.problems.append("<a> without rel noopener nofollow ugc")

    handle_startendtag = handle_starttag

    def handle_comment(self, data):
        self.problems.append("comment")

    def handle_pi(self, data):
        self.problems.append("processing instruction")

    def handle_decl(self, decl):
        self.problems.append("declaration")

    def unknown_decl(self, data):
        self.problems.append("CDATA or unknown declaration")


def strict_audit(html: str) -> list[str]:
    audit = _StrictAudit()
    audit.feed(html)
    audit.close()
    return audit.problems


@pytest.mark.parametrize("attack", CORPUS, ids=[f"xss{i:03d}" for i in range(len(CORPUS))])
def test_corpus_attack_leaves_only_the_allowlist(attack):
    for html in (sanitize(attack), render_markdown(attack)):
        assert strict_audit(html) == [], html
        assert active_content(html) == [], html
        # Stable: cleaning the result again changes nothing, so no parse/serialise round trip mutates it.
        assert sanitize(html) == html
    # Plain-text fields are escaped on output; cleaning them only drops control and bidi characters.
    assert not re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f\u202a-\u202e\u2066-\u2069]", clean_text(attack))


def test_strict_audit_catches_what_it_looks_for():
    """The audit above is not blind: each of these is reported."""
    for html in ['<script>x</script>', '<p onclick="x">', '<a href=" javascript:x" rel="noopener nofollow ugc">',
                 '<a href="https://e.org">', '<img src="data:image/png,x">', '<svg>', '<a href="jav\tascript:x">',
                 '<!-- x -->', '<p style="x">', '<img src="https://e.org/a" src="javascript:x">']:
        assert strict_audit(html), html
