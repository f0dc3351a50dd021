"""The one way user HTML enters the system: Markdown rendered, then cleaned by an allowlist.

bleach is no longer maintained, so it stays behind `sanitize`; the Content-Security-Policy
set in create_app is the second wall should it ever miss something.
"""
import re

import bleach
from bleach.linkifier import LinkifyFilter
from markdown_it import MarkdownIt

ALLOWED_TAGS = frozenset({
    "p", "br", "hr", "strong", "em", "b", "i", "s", "del", "code", "pre", "blockquote",
    "ul", "ol", "li", "a", "h3", "h4", "img", "sup", "sub",
})
ALLOWED_ATTRIBUTES = {"a": ["href", "title"], "img": ["src", "alt", "title"], "ol": ["start"]}
ALLOWED_PROTOCOLS = frozenset({"http", "https", "mailto"})
# Links and images must be absolute web addresses; relative ones could hide odd schemes.
_ABSOLUTE_URL = re.compile(r"^(?:https?://|mailto:)", re.IGNORECASE)
LINK_REL = "noopener nofollow ugc"

# Raw HTML in Markdown is shown as text, never passed through.
_markdown = MarkdownIt("commonmark", {"html": False}).enable("strikethrough")
_BODY_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\ud800-\udfff]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def _link_attrs(attrs: dict, new: bool = False) -> dict:
    """Give every link rel=noopener nofollow ugc and open it in a new tab."""
    attrs[(None, "rel")] = LINK_REL
    attrs[(None, "target")] = "_blank"
    return attrs


def _allowed_attribute(tag: str, name: str, value: str) -> bool:
    if name in ("href", "src"):
        return bool(_ABSOLUTE_URL.match(value))
    return name in ALLOWED_ATTRIBUTES.get(tag, ()) or (tag == "a" and name in ("rel", "target"))


_cleaner = bleach.Cleaner(
    tags=ALLOWED_TAGS,
    attributes=_allowed_attribute,
    protocols=ALLOWED_PROTOCOLS,
    strip=True,
    strip_comments=True,
    filters=[lambda source: LinkifyFilter(source, callbacks=[_link_attrs], skip_tags={"pre", "code"})],
)


def clean_text(value: str | None) -> str:
    """Trim a plain-text field and drop control and bidi-override characters."""
    return _CONTROL.sub("", value or "").strip()


def clean_body(value: str | None) -> str:
    """Normalise newlines and drop what no text should hold (NUL and other C0 controls but tab and
    newline, DEL, lone surrogates): PostgreSQL refuses NUL, and none of them is meant to be there."""
    return _BODY_CONTROL.sub("", (value or "").replace("\r\n", "\n").replace("\r", "\n")).strip()


def sanitize(html: str) -> str:
    """Reduce HTML to the allowlist: no scripts, styles, handlers or unsafe URLs."""
    return _cleaner.clean(html)


def render_markdown(text: str) -> str:
    """Render an entry body from Markdown to sanitized HTML."""
    return sanitize(_markdown.render(text))
