"""Languages: every interface string in English, French and Arabic; pages in the right one."""
import json
import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from tracker import services
from tracker.i18n import LANGUAGES, script_messages
from tracker.web import story_or_404

ROOT = Path(__file__).resolve().parent.parent
KEYWORDS = {"_": None, "gettext": None, "_l": None, "t": None, "ngettext": (1, 2)}
METHODS = {"tracker": [("**.py", "python")], "templates": [("**.html", "jinja2")],
           "static/js": [("**.js", "javascript")]}


def interface_strings() -> set[str]:
    """What `make messages` extracts: every string marked in the code, templates and scripts."""
    return {message for folder, method in METHODS.items()
            for _, _, message, *_ in extract_from_dir(ROOT / folder, method, keywords=KEYWORDS)}


@pytest.mark.parametrize("language", [code for code in LANGUAGES if code != "en"])
def test_every_interface_string_is_translated(language):
    with open(ROOT / f"tracker/translations/{language}/LC_MESSAGES/messages.po", "rb") as file:
        catalog = read_po(file, locale=language)
    translated = {message.id for message in catalog if message.id and all(forms(message.string)) and not message.fuzzy}
    missing = sorted(map(str, interface_strings() - translated))
    assert not missing, f"not in {language}'s catalog yet (make messages, then translate): {missing}"
    for message in catalog:  # the same placeholders on both sides, in every plural form
        if message.id and all(forms(message.string)):
            expected = sorted(re.findall(r"%\(\w+\)[sd]", forms(message.id)[-1]))
            for form in forms(message.string):
                assert sorted(re.findall(r"%\(\w+\)[sd]", form)) == expected, (message.id, form)


def forms(text: str | tuple) -> tuple:
    """A message's text as a tuple: one form, or each plural form."""
    return text if isinstance(text, tuple) else (text,)


def test_pages_follow_the_browsers_language_and_direction(client):
    french = client.get("/login", headers={"Accept-Language": "fr-CH, fr;q=0.9, en;q=0.5"}).get_data(as_text=True)
    assert '<html lang="fr" dir="ltr">' in french and "<h1>Se connecter</h1>" in french
    arabic = client.get("/login", headers={"Accept-Language": "ar"}).get_data(as_text=True)
    assert '<html lang="ar" dir="rtl">' in arabic and "<h1>تسجيل الدخول</h1>" in arabic
    other = client.get("/login", headers={"Accept-Language": "de"}).get_data(as_text=True)
    assert '<html lang="en" dir="ltr">' in other and "<h1>Log in</h1>" in other


def test_scripts_get_their_strings_in_the_pages_language(client):
    page = client.get("/login", headers={"Accept-Language": "fr"}).get_data(as_text=True)
    strings = json.loads(re.search(r'<script type="application/json" id="i18n">(.*?)</script>', page).group(1))
    assert set(strings) == set(script_messages(ROOT / "static/js"))
    assert strings["Load content from %(provider)s"] == "Charger le contenu de %(provider)s"


def test_story_pages_speak_the_storys_language_whatever_the_browser_asks(app, client, story):
    with app.test_request_context():
        services.change_story(story_or_404(story), language="ar")
        entry = services.append_entry(story_or_404(story), "Update", "Headline")[0].id
    for path in (f"/stories/{story}", f"/stories/{story}/entries/{entry}", f"/embed/{story}"):
        page = client.get(path, headers={"Accept-Language": "fr"}).get_data(as_text=True)
        assert '<html lang="ar" dir="rtl"' in page, path
    assert '<html lang="fr" dir="ltr">' in client.get("/", headers={"Accept-Language": "fr"}).get_data(as_text=True)
