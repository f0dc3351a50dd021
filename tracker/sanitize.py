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

# Raw HTML in Markdown is shown as text, never passed through. Bare addresses become links by
# linkify-it, which knows every top-level domain and paths with "@" (bleach's linkify knows
# neither, and would link only part of https://bsky.app/... or https://mastodon.social/@...).
_markdown = MarkdownIt("commonmark", {"html": False, "linkify": True}).enable(["strikethrough", "linkify"])
# What XML 1.0 cannot carry (a feed holding one does not parse): C0 controls but tab, newline and
# CR, lone surrogates, U+FFFE and U+FFFF. No field may hold them, so feeds of new text never do.
_NOT_XML = r"\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff"
_NOT_XML_RE = re.compile(rf"[{_NOT_XML}]")
_BODY_CONTROL = re.compile(rf"[{_NOT_XML}\x0d\x7f]")
_CONTROL = re.compile(rf"[{_NOT_XML}\x7f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


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
    """Trim a plain-text field and drop control, bidi-override and XML-invalid characters."""
    return _CONTROL.sub("", value or "").strip()


def clean_body(value: str | None) -> str:
    """Normalise newlines and drop what no text should hold (NUL and other C0 controls but tab and
    newline, DEL, lone surrogates, U+FFFE, U+FFFF): PostgreSQL refuses NUL, XML the others."""
    return _BODY_CONTROL.sub("", (value or "").replace("\r\n", "\n").replace("\r", "\n")).strip()


def xml_text(value: str | None) -> str:
    """Text with the characters XML 1.0 cannot carry dropped (rows stored before clean_* dropped them)."""
    return _NOT_XML_RE.sub("", value or "")


def sanitize(html: str) -> str:
    """Reduce HTML to the allowlist: no scripts, styles, handlers or unsafe URLs."""
    return _cleaner.clean(html)


def render_markdown(text: str) -> str:
    """Render an entry body from Markdown to sanitized HTML."""
    return sanitize(_markdown.render(text))
