"""The demo story `make run` seeds: a fictional storm, told in a dozen updates."""
import secrets
from datetime import timedelta

from sqlalchemy import select

from . import services
from .extensions import db
from .models import Story, User, utcnow

TITLE = "Storm Elara makes landfall on the Halden coast"
SUMMARY = ("A fictional autumn storm reaches the fictional town of Port Halden with gusts near "
           "130 km/h. Evacuations, outages and the emergency response as they happen.")

# (minutes ago, headline, body, key event, pinned); oldest first.
ENTRIES = [
    (290, "Red warning issued", "The Halden Weather Office has raised its warning to **red** for the "
     "whole coast from 18:00, the highest level. Residents are told to stay indoors.", False, False),
    (262, "", "Ferries between Port Halden and the Skerry Islands are cancelled for the rest of the "
     "day, the operator says. The last crossing left at 15:40.", False, False),
    (231, "Evacuation of the harbour district", "Police have begun moving around 1,200 people out of "
     "the low-lying harbour district.\n\n> \"Please take medicines, chargers and warm clothing,\" "
     "said Chief Inspector Mara Voss. \"We expect to keep the district closed overnight.\"", False, False),
    (205, "", "Three rest centres are open: the Civic Hall, St Bride's School and the Halden "
     "Leisure Centre. All three accept pets.", False, False),
    (176, "", "Our reporter at the sea wall describes waves breaking over the promenade railings and "
     "spray reaching the first row of houses.", False, False),
    (148, "Storm makes landfall", "Storm Elara made landfall just west of Port Halden at 19:12, the "
     "Weather Office says, with a peak gust of **128 km/h** measured at Cape Orrin.", True, False),
    (121, "", "Halden Power reports about 18,000 homes without electricity, mostly north of the river. "
     "Crews will not go out until the wind drops below 90 km/h.", False, False),
    (95, "", "The coast road is closed between Orrin and Maybridge after a fallen tree. Drivers are "
     "asked not to travel.", False, False),
    (68, "Rescue at the marina", "The coastguard has brought two people ashore from a yacht that "
     "broke its mooring in the marina. Both are said to be cold but unhurt.", False, False),
    (41, "", "Wind speeds are easing on the west side of the bay, but the Weather Office warns that "
     "the high tide at 23:30 brings the greatest risk of flooding.", False, False),
    (17, "", "Outages have risen to about 24,000 homes. The power company's outage map is at "
     "https://example.org/halden-outages (fictional).", False, False),
    (5, "What we know so far", "- Red warning in force until 06:00\n- Landfall at 19:12, peak gust "
     "128 km/h\n- About 1,200 people evacuated from the harbour district\n- About 24,000 homes "
     "without power\n- No serious injuries reported", False, True),
]


def seed(editor_password: str) -> Story:
    """Create the demo editor and the demo story with its entries."""
    editor = services.create_user("editor", editor_password, "editor")
    story = services.create_story(TITLE, SUMMARY, slug="storm-elara")
    now = utcnow()
    for minutes, headline, body, key, pinned in ENTRIES:
        services.append_entry(story, body, headline, author=editor, key=key, pinned=pinned,
                              created_at=now - timedelta(minutes=minutes))
    return story


def seed_if_empty() -> str | None:
    """On a database with no stories and no accounts, add the demo; returns how to log in, else None."""
    if db.session.scalar(select(Story.id).limit(1)) or db.session.scalar(select(User.id).limit(1)):
        return None
    password = secrets.token_urlsafe(12)
    story = seed(password)
    return (f"Demo story: /stories/{story.slug}\n"
            f"Demo editor account: username 'editor', password '{password}' (shown only once)")


def login_hint() -> str:
    """How to log in to a database that was set up before: the demo password was shown only once."""
    if db.session.scalar(select(User.id).where(User.username == "editor")):
        return "To log in as the demo editor again, give it a new password: flask --app app user password editor"
    return "To log in, create an account: flask --app app user create NAME --role admin"
