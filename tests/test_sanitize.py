"""The sanitizer: Markdown in, allowlisted HTML out."""
import re
from html.parser import HTMLParser

import pytest

from tracker.sanitize import ALLOWED_TAGS, clean_text, render_markdown, sanitize


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
