"""Languages: the interface in English, French or Arabic (gettext catalogs in tracker/translations,
through Flask-Babel), a story's pages in the story's language, and the strings scripts show.

A story page speaks its story's language (text, `lang`, `dir` and time formats), whatever the
reader's browser asks for: a French story reads as French. Every other page follows the
browser's Accept-Language among LANGUAGES, else English.
"""
from __future__ import annotations

import functools
import json
import re
from pathlib import Path

from flask import Flask, current_app, g, has_request_context, request
from flask_babel import Babel, get_locale, gettext
from markupsafe import Markup

# Code: (name in that language, writing direction).
LANGUAGES = {"en": ("English", "ltr"), "fr": ("Français", "ltr"), "ar": ("العربية", "rtl")}
DEFAULT_LANGUAGE = "en"

babel = Babel()


# A script's interface string: t("English text") or t("... %(name)s ...", {name: value}) (static/js/i18n.js).
_SCRIPT_STRING = re.compile(r'\bt\("((?:[^"\\\n]|\\.)*)"')


@functools.cache  # read once per process, not per app: a deploy restarts the process
def script_messages(folder: Path) -> tuple[str, ...]:
    """Every string the scripts in this folder pass to t(), as pybabel extracts them (babel.cfg)."""
    found = set()
    for path in sorted(folder.glob("*.js")):
        found.update(json.loads(f'"{text}"') for text in _SCRIPT_STRING.findall(path.read_text(encoding="utf-8")))
    return tuple(sorted(found))


def speak(language: str | None) -> None:
    """Render this request's page in a story's language (one of LANGUAGES)."""
    g.language = language if language in LANGUAGES else DEFAULT_LANGUAGE


def _select_locale() -> str:
    if not has_request_context():  # the CLI, the scheduler
        return DEFAULT_LANGUAGE
    return getattr(g, "language", None) or request.accept_languages.best_match(LANGUAGES) or DEFAULT_LANGUAGE


def script_strings() -> Markup:
    """The scripts' strings in this page's language, as JSON for a <script type="application/json">."""
    strings = {message: gettext(message) for message in current_app.extensions["tracker.script_messages"]}
    # <, > and & as escapes, so no string can end the script element or start a comment in it.
    text = json.dumps(strings, ensure_ascii=False).replace("<", "\\u003c").replace(">", "\\u003e")
    return Markup(text.replace("&", "\\u0026"))


def init_app(app: Flask) -> None:
    """Bind Flask-Babel, and give templates the page's language and direction."""
    babel.init_app(app, locale_selector=_select_locale, default_translation_directories="translations",
                   default_domain="messages")
    app.extensions["tracker.script_messages"] = script_messages(Path(app.static_folder) / "js")

    @app.context_processor
    def language():
        code = str(get_locale() or DEFAULT_LANGUAGE)
        return {"page_language": code, "page_direction": LANGUAGES.get(code, LANGUAGES["en"])[1],
                "script_strings": script_strings}
