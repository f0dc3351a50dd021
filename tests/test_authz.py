"""Who may do what: every route against every kind of caller, CSRF on every form, read-only sockets.

The authorization table lists every route and method of `app.url_map` (HEAD, OPTIONS and
static left out); a route added without a row fails `test_table_covers_every_route`. Each cell
(route x caller) is its own test on a fresh app and its own copy of a database built once, and
checks the status and that a refused request changed nothing in the database (a successful write
must change something).
"""
from __future__ import annotations

import base64
import io
from dataclasses import dataclass

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from helpers import PASSWORD, copied_database, csrf_from, login
from PIL import Image
from sqlalchemy import select
from werkzeug.routing import AnyConverter
from werkzeug.security import generate_password_hash

from tracker import create_app, events, services
from tracker.extensions import csrf, db, socketio
from tracker.models import PushSubscription, User

# Who may do what is decided in Python, the same on either engine: the table runs on SQLite only.
pytestmark = pytest.mark.engine_independent

WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
_png = io.BytesIO()
Image.new("RGB", (4, 3), (10, 90, 200)).save(_png, "PNG")
TINY_PNG = _png.getvalue()
# Hashed once, with one round: every test's accounts share it, and the cells that log in spend no
# time in scrypt (what the app's own hashes are is test_auth's business).
PASSWORD_HASH = generate_password_hash(PASSWORD, method="pbkdf2:sha256:1")
# A reader's browser subscribed to the ended story's key events (one on a default push service), and
# another subscribing to the live one: no key event of the live story is pushed anywhere.
SUBSCRIBED = "https://fcm.googleapis.com/fcm/send/world-reader"
_browser_key = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(Encoding.X962,
                                                                                 PublicFormat.UncompressedPoint)
SUBSCRIPTION = {"endpoint": "https://fcm.googleapis.com/fcm/send/new-reader",
                "keys": {"p256dh": base64.urlsafe_b64encode(_browser_key).rstrip(b"=").decode(),
                         "auth": base64.urlsafe_b64encode(bytes(range(16))).rstrip(b"=").decode()}}


# The world each cell runs in

@dataclass
class World:
    """Ids and secrets of the fixtures every cell may address."""

    slug: str            # a live story
    ended: str           # an ended story (to reopen)
    entry: int           # a plain entry: not pinned, not a key event
    marked: int          # a pinned key-event entry (to unpin / unkey)
    gone: int            # a deleted entry
    draft: int           # a contributor's draft
    submitted: int       # a contributor's submission, waiting for review
    photo: int           # an uploaded image that `entry` shows
    target: int          # an active editor account an admin may disable
    disabled: int        # a disabled account an admin may enable
    token: str           # a valid API token
    revoked: str         # a revoked API token

    def fill(self, path: str) -> str:
        return path.format(**vars(self))


def _account(username: str, role: str = "editor", active: bool = True) -> int:
    user = User(username=username, role=role, active=active, password_hash=PASSWORD_HASH)
    db.session.add(user)
    db.session.commit()
    return user.id


def build_world(app) -> World:
    with app.test_request_context():
        alice = db.session.get(User, _account("alice"))
        _account("root", "admin")
        cole = db.session.get(User, _account("cole", "contributor"))
        _account("eve")  # logged in, then disabled: the "disabled_editor" caller
        target, disabled = _account("bea"), _account("dora", active=False)
        story = services.create_story("Flood warning on the river", "Rising water levels.")
        ended = services.create_story("Storm Elara", "Gusts.")
        services.set_status(ended, "ended")
        entry, _ = services.append_entry(story, "Levels are rising.", "Rising", author=alice)
        marked, _ = services.append_entry(story, "Evacuate now.", "Evacuation", author=alice, key=True, pinned=True)
        gone, _ = services.append_entry(story, "A mistake.", author=alice)
        services.delete_entry(gone)
        photo = services.add_media(TINY_PNG, "The river at noon")
        services.change_entry(entry, media=[photo.id])
        draft, _ = services.append_entry(story, "Bridge may close.", author=cole, status="draft")
        submitted, _ = services.append_entry(story, "Bridge closed.", author=cole)
        token = services.create_token("newsdesk")[1]
        revoked = services.create_token("retired")[1]
        services.revoke_token("retired")
        db.session.add(PushSubscription(story_id=ended.id, endpoint=SUBSCRIBED, **SUBSCRIPTION["keys"]))
        db.session.commit()
        return World(story.slug, ended.slug, entry.id, marked.id, gone.id, draft.id, submitted.id, photo.id, target,
                     disabled, token, revoked)


@pytest.fixture(scope="session")
def world_database(tmp_path_factory, schema_template):
    """A database with the world in it, built once on a copy of conftest's empty schema: (its URL, the World)."""
    with copied_database(schema_template, tmp_path_factory.mktemp("world")) as url:
        app = create_app({"TESTING": True, "SECRET_KEY": "test-secret", "DATABASE_URL": url,
                          "MEDIA_DIR": str(tmp_path_factory.mktemp("world-media"))})
        made = build_world(app)
        with app.app_context():
            db.engine.dispose()
        yield url, made


@pytest.fixture
def database_template(world_database):
    """Tests that ask for `world` get a copy of the world's database (conftest's `database_url`)."""
    return world_database[0]


@pytest.fixture
def world(database_template, world_database, app) -> World:
    """The world of build_world, in this test's own copy of its database (the `app` fixture's)."""
    return world_database[1]


def snapshot(app) -> dict:
    """Every row of every table, to tell whether a request changed anything."""
    with app.app_context():
        rows = {table.name: sorted(map(tuple, db.session.execute(select(table)).all()), key=repr)
                for table in db.metadata.sorted_tables}
        db.session.remove()
        return rows


# Callers

CALLERS = ("anonymous", "editor", "contributor", "admin", "disabled_editor", "token", "revoked_token",
           "token_in_cookie")
# Callers that hold no valid session: everything an anonymous reader may do, nothing more.
NO_SESSION = ("anonymous", "disabled_editor", "token", "revoked_token", "token_in_cookie")
TOKEN_COOKIES = ("token", "api_token", "access_token", "bearer")


def as_caller(app, client, caller: str, world: World) -> dict:
    """Make `client` the caller; returns the headers each of its requests sends."""
    if caller in ("editor", "contributor", "admin", "disabled_editor"):
        username = {"editor": "alice", "contributor": "cole", "admin": "root", "disabled_editor": "eve"}[caller]
        assert login(client, username).status_code == 302
    if caller == "disabled_editor":  # an admin disables the account while its session is open
        with app.app_context():
            services.set_user_active(db.session.scalar(select(User).where(User.username == "eve")), False)
    if caller == "token":
        return {"Authorization": f"Bearer {world.token}"}
    if caller == "revoked_token":
        return {"Authorization": f"Bearer {world.revoked}"}
    if caller == "token_in_cookie":  # a cookie, never a bearer header: must count for nothing
        for name in TOKEN_COOKIES:
            client.set_cookie(name, world.token)
        client.set_cookie("Authorization", f"Bearer {world.token}")
    return {}


# Expected outcomes: (status, where a redirect must lead, or None)

TO_LOGIN = (302, "/login?next=")


def everyone(status: int, location: str | None = None) -> dict:
    return dict.fromkeys(CALLERS, (status, location))


def staff(ok: tuple) -> dict:
    """Editor pages to look at, and one's own profile: any logged-in account; anyone else is sent to log in."""
    return {**dict.fromkeys(NO_SESSION, TO_LOGIN), "editor": ok, "contributor": ok, "admin": ok}


def publishers(ok: tuple) -> dict:
    """Changes to stories and updates: editors and admins; contributors get 403."""
    return {**staff(ok), "contributor": (403, None)}


def admins(ok: tuple) -> dict:
    """Account pages: admins only; editors and contributors get 403."""
    return {**publishers(ok), "editor": (403, None)}


def token_holders(ok: tuple) -> dict:
    """API writes: a valid bearer token only; session cookies and tokens in cookies are 401."""
    return {**everyone(401), "token": ok}


@dataclass
class Row:
    rule: str
    method: str
    path: str                      # with {slug}, {entry}... from World
    expect: dict
    form: dict | None = None       # a form POST (sent with the caller's CSRF token)
    json: dict | None = None       # a JSON body
    writes: bool | tuple = False   # does the successful request change the database (for these callers)?
    variant: str = ""
    upload: bool = False           # a multipart request with an image (TINY_PNG) and its alt text

    @property
    def id(self) -> str:
        return f"{self.method} {self.rule}" + (f" [{self.variant}]" if self.variant else "")

    def writes_as(self, caller: str) -> bool:
        return caller in self.writes if isinstance(self.writes, tuple) else self.writes


ENTRY_ACTION = "/editor/entries/<id:entry_id>/<any(delete, pin, unpin, key, unkey):action>"
USER_ACTION = "/editor/users/<id:user_id>/<any(enable, disable):action>"
DESK_ACTION = "/editor/entries/<id:entry_id>/<any(publish, submit, return, schedule):step>"
# An unpublished entry read through the API: without a valid token, nothing exists.
UNPUBLISHED_API = {**dict.fromkeys(CALLERS, (404, None)), "token": (200, None)}
API_STATUS = "/api/stories/<slug>/<any(end, reopen):action>"

TABLE = [
    # Reader pages, feeds, embeds, health: public.
    Row("/", "GET", "/", everyone(200)),
    Row("/accessibility", "GET", "/accessibility", everyone(200)),
    Row("/stories/<slug>", "GET", "/stories/{slug}", everyone(200)),
    Row("/stories/<slug>", "GET", "/stories/no-such-story", everyone(404), variant="unknown story"),
    Row("/stories/<slug>/entries", "GET", "/stories/{slug}/entries", everyone(200)),
    Row("/stories/<slug>/entries/<id:entry_id>", "GET", "/stories/{slug}/entries/{entry}", everyone(200)),
    Row("/stories/<slug>/entries/<id:entry_id>", "GET", "/stories/{slug}/entries/{gone}", everyone(410),
        variant="deleted"),
    Row("/stories/<slug>/entries/<id:entry_id>", "GET", "/stories/{slug}/entries/{submitted}", everyone(404),
        variant="unpublished"),
    Row("/stories/<slug>/feed.atom", "GET", "/stories/{slug}/feed.atom", everyone(200)),
    Row("/feed.atom", "GET", "/feed.atom", everyone(200)),
    Row("/embed/<slug>", "GET", "/embed/{slug}", everyone(200)),
    Row("/embed/<slug>/entries/<id:entry_id>", "GET", "/embed/{slug}/entries/{entry}", everyone(200)),
    Row("/embed/<slug>/entries/<id:entry_id>", "GET", "/embed/{slug}/entries/{draft}", everyone(404),
        variant="unpublished"),
    Row("/oembed", "GET", "/oembed?url=/stories/{slug}", everyone(200)),
    Row("/healthz", "GET", "/healthz", everyone(200)),
    Row("/media/<key>/<name>", "GET", "/media/0123456789abcdef0123456789abcdef/480.webp", everyone(404),
        variant="no such file"),
    Row("/metrics", "GET", "/metrics", everyone(200)),
    # Web Push for readers: anonymous JSON (no CSRF token: readers have no session), rate limited.
    Row("/push/key", "GET", "/push/key", everyone(200)),
    Row("/push/subscriptions", "POST", "/push/subscriptions", everyone(201),
        json={"story": "flood-warning-on-the-river", "subscription": SUBSCRIPTION}, writes=True),
    Row("/push/subscriptions", "DELETE", "/push/subscriptions", everyone(204), json={"endpoint": SUBSCRIBED},
        writes=True),
    Row("/sw.js", "GET", "/sw.js", everyone(200)),
    # Answered by the Socket.IO middleware before Flask; without Engine.IO's parameters: 400.
    Row("/socket.io/", "GET", "/socket.io/", everyone(400)),
    # Login and logout: open to anyone (the forms still need their CSRF token). A login writes its
    # session record; a logout deletes the record of a live session; GET /logout only shows the button.
    Row("/login", "GET", "/login", everyone(200)),
    Row("/login", "POST", "/login", everyone(302, "/editor/"), form={"username": "alice", "password": PASSWORD},
        writes=True),
    Row("/logout", "GET", "/logout", everyone(200)),
    Row("/logout", "POST", "/logout", everyone(302, "/"), form={}, writes=("editor", "contributor", "admin")),
    # Editor pages: any account may look; editors and admins change things.
    Row("/editor/", "GET", "/editor/", staff((200, None))),
    Row("/editor/stories/new", "GET", "/editor/stories/new", staff((200, None))),
    Row("/editor/stories/new", "POST", "/editor/stories/new", publishers((302, "/editor/stories/harbour-fire")),
        form={"title": "Harbour fire", "slug": "", "summary": "", "image_url": "", "status": "live"}, writes=True),
    Row("/editor/stories/<slug>", "GET", "/editor/stories/{slug}", staff((200, None))),
    # The compose form: editors publish; contributors submit for review (the default for them).
    Row("/editor/stories/<slug>", "POST", "/editor/stories/{slug}", staff((302, "/editor/stories/{slug}")),
        form={"body": "Water over the quay.", "headline": "", "idempotency_key": "k-1"}, writes=True),
    Row("/editor/preview", "POST", "/editor/preview", staff((200, None)), form={"body": "Water over the quay."}),
    Row("/editor/stories/<slug>/settings", "GET", "/editor/stories/{slug}/settings", staff((200, None))),
    Row("/editor/stories/<slug>/settings", "POST", "/editor/stories/{slug}/settings",
        publishers((302, "/editor/stories/{slug}")),
        form={"title": "Flood: river peaks", "summary": "", "image_url": ""}, writes=True),
    Row("/editor/stories/<slug>/status", "POST", "/editor/stories/{slug}/status",
        publishers((302, "/editor/stories/{slug}")), form={"status": "ended"}, writes=True),
    # Contributors change only their own unpublished entries.
    Row("/editor/entries/<id:entry_id>/edit", "GET", "/editor/entries/{entry}/edit", publishers((200, None))),
    Row("/editor/entries/<id:entry_id>/edit", "GET", "/editor/entries/{draft}/edit", staff((200, None)),
        variant="own draft"),
    Row("/editor/entries/<id:entry_id>/edit", "POST", "/editor/entries/{entry}/edit",
        publishers((302, "/editor/stories/{slug}")), form={"body": "Levels are falling.", "headline": ""}, writes=True),
    *[Row(ENTRY_ACTION, "POST", f"/editor/entries/{{{target}}}/{action}", publishers((302, "/editor/stories/{slug}")),
          form={}, writes=True, variant=action)
      for action, target in (("delete", "entry"), ("pin", "entry"), ("key", "entry"),
                             ("unpin", "marked"), ("unkey", "marked"))],
    # The desk: editors publish, send back and schedule; a contributor submits their own draft.
    Row(DESK_ACTION, "POST", "/editor/entries/{submitted}/publish", publishers((302, "/editor/stories/{slug}")),
        form={}, writes=True, variant="publish"),
    Row(DESK_ACTION, "POST", "/editor/entries/{draft}/submit", staff((302, "/editor/stories/{slug}")),
        form={}, writes=True, variant="submit"),
    Row(DESK_ACTION, "POST", "/editor/entries/{submitted}/return", publishers((302, "/editor/stories/{slug}")),
        form={"note": "Needs a second source."}, writes=True, variant="return"),
    Row(DESK_ACTION, "POST", "/editor/entries/{submitted}/schedule", publishers((302, "/editor/stories/{slug}")),
        form={"publish_at": "2099-01-01T09:00", "tz_offset": "0"}, writes=True, variant="schedule"),
    # Images for updates: anyone who writes them.
    Row("/editor/media", "POST", "/editor/media", staff((201, None)), form={}, upload=True, writes=True),
    # One's own profile: anyone logged in.
    Row("/editor/profile", "GET", "/editor/profile", staff((200, None))),
    Row("/editor/profile", "POST", "/editor/profile", staff((302, "/editor/profile")),
        form={"display_name": "Desk", "current_password": "", "new_password": ""}, writes=True),
    # Account pages: admins only.
    Row("/editor/users", "GET", "/editor/users", admins((200, None))),
    Row("/editor/users", "POST", "/editor/users", admins((302, "/editor/users")),
        form={"username": "carol", "password": "long enough pw", "role": "editor"}, writes=True),
    Row("/editor/users/<id:user_id>", "POST", "/editor/users/{target}", admins((302, "/editor/users")),
        form={"display_name": "Bea B.", "role": "contributor"}, writes=True),
    Row(USER_ACTION, "POST", "/editor/users/{target}/disable", admins((302, "/editor/users")), form={}, writes=True,
        variant="disable"),
    Row(USER_ACTION, "POST", "/editor/users/{disabled}/enable", admins((302, "/editor/users")), form={}, writes=True,
        variant="enable"),
    # JSON API: reads public, writes with a bearer token only.
    Row("/api/openapi.json", "GET", "/api/openapi.json", everyone(200)),
    Row("/api/stories", "GET", "/api/stories", everyone(200)),
    Row("/api/stories/<slug>", "GET", "/api/stories/{slug}", everyone(200)),
    Row("/api/stories/<slug>/entries", "GET", "/api/stories/{slug}/entries", everyone(200)),
    Row("/api/stories", "POST", "/api/stories", token_holders((201, "/api/stories/harbour-fire")),
        json={"title": "Harbour fire"}, writes=True),
    Row("/api/stories/<slug>", "PATCH", "/api/stories/{slug}", token_holders((200, None)),
        json={"title": "Flood: river peaks"}, writes=True),
    Row(API_STATUS, "POST", "/api/stories/{slug}/end", token_holders((200, None)), writes=True, variant="end"),
    Row(API_STATUS, "POST", "/api/stories/{ended}/reopen", token_holders((200, None)), writes=True, variant="reopen"),
    Row("/api/stories/<slug>/entries", "POST", "/api/stories/{slug}/entries",
        token_holders((201, "/stories/{slug}/entries/")), json={"body": "Water over the quay."}, writes=True),
    Row("/api/entries/<id:entry_id>", "GET", "/api/entries/{entry}", everyone(200)),
    Row("/api/entries/<id:entry_id>", "GET", "/api/entries/{gone}", everyone(410), variant="deleted"),
    Row("/api/entries/<id:entry_id>", "GET", "/api/entries/{submitted}", UNPUBLISHED_API, variant="unpublished"),
    Row("/api/media", "POST", "/api/media", token_holders((201, "/media/")), upload=True, writes=True),
    Row("/api/media/<id:media_id>", "PATCH", "/api/media/{photo}", token_holders((200, None)),
        json={"caption": "High water at noon."}, writes=True),
    Row("/api/media/<id:media_id>", "DELETE", "/api/media/{photo}", token_holders((204, None)), writes=True),
    Row("/api/stories/<slug>/drafts", "GET", "/api/stories/{slug}/drafts", token_holders((200, None))),
    Row("/api/entries/<id:entry_id>/publish", "POST", "/api/entries/{submitted}/publish", token_holders((200, None)),
        writes=True),
    Row("/api/entries/<id:entry_id>", "PATCH", "/api/entries/{entry}", token_holders((200, None)),
        json={"body": "Levels are falling."}, writes=True),
    Row("/api/entries/<id:entry_id>", "DELETE", "/api/entries/{entry}", token_holders((200, None)), writes=True),
]


def upload_fields() -> dict:
    return {"file": (io.BytesIO(TINY_PNG), "card.png"), "alt": "A test card"}


def routes_in(app) -> set[tuple[str, str]]:
    return {(rule.rule, method) for rule in app.url_map.iter_rules() if rule.endpoint != "static"
            for method in rule.methods - {"HEAD", "OPTIONS"}}


def test_table_covers_every_route(app):
    """Exactly the routes of url_map: a new route (or method) needs its row here."""
    assert {(row.rule, row.method) for row in TABLE} == routes_in(app)


def test_table_paths_reach_their_rules_and_every_any_value(app):
    """Each row's path is served by the rule it names, and every value of an any() part has a row."""
    adapter = app.url_map.bind("localhost")
    world = World("s", "e", 1, 2, 3, 4, 5, 6, 7, 8, "t", "r")
    covered: dict[tuple[str, str], set] = {}
    for row in TABLE:
        rule, args = adapter.match(world.fill(row.path).split("?")[0], row.method, return_rule=True)
        assert rule.rule == row.rule, row.id
        choices = {name: args[name] for name, conv in rule._converters.items() if isinstance(conv, AnyConverter)}
        covered.setdefault((row.rule, row.method), set()).update(choices.items())
    for rule in app.url_map.iter_rules():
        for name, conv in rule._converters.items():
            if isinstance(conv, AnyConverter):
                for method in rule.methods - {"HEAD", "OPTIONS"}:
                    assert {(name, item) for item in conv.items} <= covered[(rule.rule, method)], rule.rule


CELLS = [pytest.param(row, caller, id=f"{row.id} as {caller}") for row in TABLE for caller in CALLERS]


@pytest.mark.parametrize("row, caller", CELLS)
def test_authorization(app, row, caller, world):
    client = app.test_client()
    headers = as_caller(app, client, caller, world)
    kwargs = {"headers": headers}
    if row.form is not None:
        kwargs["data"] = {**row.form, "csrf_token": csrf_from(client.get("/login").get_data(as_text=True))}
    if row.json is not None:
        kwargs["json"] = row.json
    if row.upload:
        kwargs["data"] = {**kwargs.get("data", {}), **upload_fields()}
    before = snapshot(app)
    response = client.open(world.fill(row.path), method=row.method, **kwargs)
    status, location = row.expect[caller]
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    if location is not None:
        assert response.headers["Location"].startswith(world.fill(location))
    if status == 401:
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="tracker"'
    changed = snapshot(app) != before
    assert changed == (row.writes_as(caller) and status < 400 and (status, location) != TO_LOGIN)


def test_a_disabled_accounts_open_session_grants_nothing(app, world):
    """An admin disables an editor who is logged in: the editor's next requests are refused."""
    admin_client = app.test_client()
    assert login(admin_client, "root").status_code == 302
    eve = app.test_client()
    assert login(eve, "eve").status_code == 302 and eve.get("/editor/").status_code == 200
    token = csrf_from(admin_client.get("/editor/users").get_data(as_text=True))
    with app.app_context():
        eve_id = db.session.scalar(select(User.id).where(User.username == "eve"))
    assert admin_client.post(f"/editor/users/{eve_id}/disable", data={"csrf_token": token}).status_code == 302
    refused = eve.get("/editor/")
    assert refused.status_code == 302 and refused.headers["Location"].startswith("/login")
    before = snapshot(app)
    eve_token = csrf_from(eve.get("/login").get_data(as_text=True))
    refused = eve.post(f"/editor/entries/{world.entry}/delete", data={"csrf_token": eve_token})
    assert refused.status_code == 302 and refused.headers["Location"].startswith("/login")
    assert snapshot(app) == before


# CSRF

# Who sends each form: the account the route is for.
FORM_CALLER = {"/login": "anonymous", "/editor/users": "admin", "/editor/users/<id:user_id>": "admin",
               USER_ACTION: "admin"}
FORM_ROWS = [row for row in TABLE if row.form is not None]


def test_form_rows_are_every_csrf_protected_write(app):
    """Every state-changing route outside the (bearer-only) API and readers' push subscriptions (anonymous
    JSON) is a form row here; those two are the only exempt parts."""
    exempt = {getattr(blueprint, "name", blueprint) for blueprint in csrf._exempt_blueprints}
    assert exempt == {"api", "notifications"} and not csrf._exempt_views
    protected = {(rule.rule, method) for rule in app.url_map.iter_rules()
                 for method in rule.methods & WRITE_METHODS if rule.endpoint.partition(".")[0] not in exempt}
    assert {(row.rule, row.method) for row in FORM_ROWS} == protected


def logged_in(client) -> bool:
    return client.get("/editor/").status_code == 200


@pytest.mark.parametrize("sent", ["no token", "another session's token", "valid token"])
@pytest.mark.parametrize("row", [pytest.param(row, id=row.id) for row in FORM_ROWS])
def test_csrf(app, row, sent, world):
    client = app.test_client()
    caller = FORM_CALLER.get(row.rule, "editor")
    as_caller(app, client, caller, world)
    own = csrf_from(client.get("/login").get_data(as_text=True))
    data = dict(row.form)
    if sent == "valid token":
        data["csrf_token"] = own
    elif sent == "another session's token":
        data["csrf_token"] = csrf_from(app.test_client().get("/login").get_data(as_text=True))
        assert data["csrf_token"] != own
    was_logged_in = logged_in(client)
    before = snapshot(app)
    response = client.post(world.fill(row.path), data={**data, **(upload_fields() if row.upload else {})})
    status, location = row.expect[caller]
    if sent == "valid token":
        assert response.status_code == status
        assert location is None or response.headers["Location"].startswith(world.fill(location))
        assert (snapshot(app) != before) == row.writes_as(caller)
        if row.rule in ("/login", "/logout"):
            assert logged_in(client) == (row.rule == "/login")
    else:
        assert response.status_code == 400
        assert "sent from another site" in response.get_data(as_text=True)
        assert snapshot(app) == before
        assert logged_in(client) == was_logged_in


# Socket.IO: readers may only listen

# "*" is events.on_unknown, which answers any other event with a bad-request ack. "desk" writes
# only who is on a story's editor page, and only for a signed-in session (test_events).
READ_ONLY_EVENTS = {"connect", "disconnect", "join", "leave", "desk", "*"}
FORGED = {
    "entry": lambda w: {"id": w.entry, "story": w.slug, "rev": 999, "html": "<p>forged</p>", "deleted": True},
    "story": lambda w: {"slug": w.slug, "status": "ended", "title": "forged", "rev": 999},
    "append": lambda w: {"story": w.slug, "body": "forged", "headline": "forged"},
    "publish": lambda w: {"story": w.slug, "body": "forged"},
    "delete": lambda w: {"id": w.entry},
    "edit": lambda w: {"id": w.entry, "body": "forged"},
    "pin": lambda w: {"id": w.entry},
    "end": lambda w: {"story": w.slug},
    "message": lambda w: "forged",
    "rev": lambda w: {"story": w.slug, "rev": 999},
}


def test_only_read_only_socket_handlers_are_registered(app):
    handlers = socketio.server.handlers
    assert set(handlers) == {"/"}, "no namespace besides the default one"
    assert {"join", "leave"} <= set(handlers["/"]) <= READ_ONLY_EVENTS
    assert not socketio.server.namespace_handlers and handlers["/"]["*"].__wrapped__ is events.on_unknown


@pytest.mark.parametrize("caller", ["reader", "editor"])
@pytest.mark.parametrize("name", list(FORGED))
def test_socket_events_cannot_write(request, app, socket_client, caller, name, world):
    if caller == "editor":  # even a logged-in editor's socket carries no write power
        assert login(request.getfixturevalue("client"), "alice").status_code == 302
    watcher, sender = socket_client(), socket_client()
    for sio in (watcher, sender):
        assert sio.emit("join", {"story": world.slug, "since": 0}, callback=True)["ok"]
    watcher.get_received()
    before = snapshot(app)
    ack = sender.emit(name, FORGED[name](world), callback=True)
    assert ack == {"ok": False, "error": f"Bad request: the server does not know the event '{name}'."}
    assert sender.is_connected()
    assert snapshot(app) == before
    assert watcher.get_received() == []  # nothing was broadcast to readers


def test_join_and_leave_write_nothing(app, socket_client, world):
    before = snapshot(app)
    sio = socket_client()
    assert sio.emit("join", {"story": world.slug, "since": 0}, callback=True)["ok"]
    assert sio.emit("leave", {"story": world.slug}, callback=True) == {"ok": True}
    sio.disconnect()
    assert snapshot(app) == before


def test_other_namespaces_are_refused(app):
    sio = socketio.test_client(app, namespace="/editor")
    assert not sio.is_connected("/editor")


# Session cookie flags (test_auth.py covers login over HTTP, over HTTPS and behind a trusted proxy)

def set_cookies(response) -> list[str]:
    return response.headers.getlist("Set-Cookie")


def test_every_cookie_the_app_sets_is_http_only_and_same_site(client, editor):
    """Anonymous CSRF session, login and logout: each Set-Cookie is HttpOnly and SameSite=Lax."""
    responses = [client.get("/login"), login(client, editor)]
    token = csrf_from(client.get("/login").get_data(as_text=True))
    responses.append(client.post("/logout", data={"csrf_token": token}))
    cookies = [cookie for response in responses for cookie in set_cookies(response)]
    assert cookies and all(cookie.startswith("session=") for cookie in cookies)
    for cookie in cookies:
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie, cookie
    assert not any("remember_token" in cookie for cookie in cookies)


def test_session_cookie_secure_setting_forces_secure_over_http(database_url):
    app = create_app({"TESTING": True, "SECRET_KEY": "x", "DATABASE_URL": database_url,
                      "SESSION_COOKIE_SECURE": True})
    [cookie] = set_cookies(app.test_client().get("/login"))
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_forwarded_proto_is_ignored_without_trusted_proxies(app):
    """Without TRUSTED_PROXIES a client cannot claim HTTPS by header (only a proxy may)."""
    [cookie] = set_cookies(app.test_client().get("/login", headers={"X-Forwarded-Proto": "https"}))
    assert "Secure" not in cookie
