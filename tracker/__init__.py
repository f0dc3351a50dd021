"""Tracker: a live-updating story tracker."""
import functools
import hashlib
import os
import secrets
from pathlib import Path
from urllib.parse import urlsplit

import jinja2
import jinja2.bccache
from flask import Flask, abort, current_app, request
from flask.sessions import SecureCookieSessionInterface
from sqlalchemy import event
from sqlalchemy.engine import Engine
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter

from . import fanout, guard, i18n, logs
from .config import Config
from .extensions import csrf, db, limiter, login_manager, socketio
from .models import ID_PATTERN, MASTODON_HOSTS

# Frames: only the video and social providers whose embeds a reader chose to load (static/js/embeds.js).
EMBED_PROVIDERS = ("https://www.youtube-nocookie.com", "https://player.vimeo.com", "https://platform.twitter.com",
                   "https://embed.bsky.app", "https://www.instagram.com", "https://www.tiktok.com",
                   *(f"https://{host}" for host in MASTODON_HOSTS))
# Bluesky's public API, which the reader's browser asks for a handle's DID after consent (embeds.js).
BLUESKY_API = "https://public.api.bsky.app"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' https: http: data: blob:; "
       f"connect-src 'self' {BLUESKY_API}; font-src 'self'; frame-src {' '.join(EMBED_PROVIDERS)}; object-src 'none'; "
       "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
EMBED_CSP = CSP.replace("frame-ancestors 'none'", "frame-ancestors *")


class IdConverter(IntegerConverter):
    """A database id: at most 18 digits, so it always fits a 64-bit column (longer is a 404)."""

    regex = ID_PATTERN


class SessionInterface(SecureCookieSessionInterface):
    """Mark the session cookie Secure whenever the request came over HTTPS; sign with one serializer per key."""

    _signing: tuple = (None, None)

    def get_cookie_secure(self, app):
        return app.config["SESSION_COOKIE_SECURE"] or request.is_secure

    def get_signing_serializer(self, app):
        # Flask builds a serializer for every request and every Socket.IO event (itsdangerous then
        # encodes a test value to check it): a tenth of a reader's join. It holds only the keys.
        keys = (app.secret_key, *(app.config["SECRET_KEY_FALLBACKS"] or ()))
        if self._signing[0] != keys:
            self._signing = (keys, super().get_signing_serializer(app))
        return self._signing[1]


def create_app(config: dict | None = None) -> Flask:
    """Build the Flask app, bind the extensions and register blueprints, events and commands."""
    root = Path(__file__).resolve().parent.parent
    app = Flask(__name__, instance_path=str(root / "instance"),
                static_folder=str(root / "static"), template_folder=str(root / "templates"))
    app.config.from_object(Config)
    app.config.update(config or {})
    os.makedirs(app.instance_path, exist_ok=True)
    app.config["SECRET_KEY"] = app.config["SECRET_KEY"] or _instance_secret(Path(app.instance_path))
    app.config["BUILD_ID"] = _build_id(root)
    app.config["SQLALCHEMY_DATABASE_URI"] = (
        app.config["DATABASE_URL"] or f"sqlite:///{Path(app.instance_path) / 'tracker.db'}")
    app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", _engine_options(app.config))
    app.session_interface = SessionInterface()
    app.url_map.converters["id"] = IdConverter
    _public_urls(app)
    logs.init_app(app)

    db.init_app(app)
    from .web import allow_uploads

    app.before_request(allow_uploads)  # before CSRFProtect's check, which reads the form
    csrf.init_app(app)
    login_manager.init_app(app)
    limiter.init_app(app)
    queue, channel = app.config["SOCKETIO_MESSAGE_QUEUE"], app.config["SOCKETIO_CHANNEL"]
    manager = fanout.client_manager(queue, channel)
    socketio.init_app(app, async_mode=app.config["ASYNC_MODE"], channel=channel, message_queue=queue,
                      cors_allowed_origins=app.config["SOCKETIO_CORS_ORIGINS"],
                      ping_interval=app.config["SOCKETIO_PING_INTERVAL"],
                      ping_timeout=app.config["SOCKETIO_PING_TIMEOUT"], serializer=fanout.Packet,
                      json=fanout.CompactJSON,
                      logger=logs.library_logger("socketio.server"),
                      engineio_logger=logs.library_logger("engineio.server"),
                      **({"client_manager": manager} if manager else {}))
    _socketio_path(app)
    guard.init_app(app)
    i18n.init_app(app)
    if app.config["TRUSTED_PROXIES"]:
        # Outermost, so Socket.IO and the guards see the client's address too, not the proxy's.
        proxies = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)

    from . import api, auth, cli, editor, embed, errors, events, feeds, health, media, metrics, notifications, reader  # noqa: F401
    for module in (api, auth, editor, embed, feeds, health, media, metrics, notifications, reader):
        app.register_blueprint(module.bp)
    socketio.server.on("join", events.on_join)  # on python-socketio itself: see on_join
    socketio.server.on("disconnect", events.on_disconnect)
    metrics.init_app(app)
    cli.register(app)
    errors.register(app)
    _register_web(app)
    return app


def _public_urls(app: Flask) -> None:
    """Make url_for(..., _external=True) build on PUBLIC_URL (default http://HOST:PORT), not on Host."""
    # Any client sets Host and X-Forwarded-Host, and links built from them let it poison a cache in
    # front. Requests for any host are still routed as before; only the scheme and host that the
    # request's URL adapter builds external URLs (and werkzeug's slash redirects) with change.
    host, port = app.config["HOST"], app.config["PORT"]
    default = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    origin = urlsplit(app.config["PUBLIC_URL"] or default)
    if origin.scheme not in ("http", "https") or not origin.hostname or origin.path.strip("/") or origin.query:
        raise ValueError(f"PUBLIC_URL must be an origin like https://live.example.com, not {origin.geturl()!r}")
    app.config["PUBLIC_URL"] = f"{origin.scheme}://{origin.netloc}"
    create_url_adapter = app.create_url_adapter

    def public_url_adapter(request):
        adapter = create_url_adapter(request)
        if request is not None:
            adapter.url_scheme, adapter.server_name = origin.scheme, origin.netloc
        return adapter

    app.create_url_adapter = public_url_adapter


def _socketio_path(app: Flask) -> None:
    """Give Flask rules for the Socket.IO path, which Flask-SocketIO's middleware answers first.

    Socket.IO events run in a request context made from the connection's first request. With no
    rule for its path, Flask keeps a NotFound and its traceback in each one: about 60 objects of
    cyclic garbage per connection, whose collection cost a quarter of a reconnect storm's CPU.
    """
    for websocket in (False, True):
        app.add_url_rule("/socket.io/", "socketio" + "_websocket" * websocket, _not_found, websocket=websocket)


def _not_found():
    """What Flask would answer for the Socket.IO path (the middleware takes its requests before)."""
    abort(404)


def _engine_options(config) -> dict:
    """Pool and timeout settings; PostgreSQL gets a bounded pool, a statement timeout and pings."""
    options = {}
    if config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        # sqlite3's timeout is SQLite's busy timeout: how long a write waits out another's lock.
        options["connect_args"] = {"timeout": config["DB_BUSY_TIMEOUT_MS"] / 1000}
    elif config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        options.update(
            pool_pre_ping=True, pool_size=config["DB_POOL_SIZE"], max_overflow=config["DB_MAX_OVERFLOW"],
            pool_timeout=config["DB_POOL_TIMEOUT"],
            connect_args={"connect_timeout": config["DB_CONNECT_TIMEOUT"],
                          "options": f"-c statement_timeout={config['DB_STATEMENT_TIMEOUT_MS']}"})
    return options


class _CompiledTemplates(jinja2.BytecodeCache):
    """Templates compiled once per process, for every app it makes (a test run makes hundreds, and
    compiling was most of a page's first render in a new app); Jinja compares each template's source with
    the checksum kept with its code, so an edited template is compiled again."""

    def __init__(self):
        self.compiled: dict[str, bytes] = {}

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        code = self.compiled.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        self.compiled[bucket.key] = bucket.bytecode_to_string()


_COMPILED_TEMPLATES = _CompiledTemplates()


@functools.cache  # read once per process, not per app: a deploy restarts the process
def _build_id(root: Path) -> str:
    """A digest of the templates and static files: cached pages' ETags change with each deploy."""
    digest = hashlib.sha256()
    for path in sorted((*root.glob("templates/**/*.html"), *root.glob("static/css/*"), *root.glob("static/js/*"))):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _instance_secret(instance: Path) -> str:
    """A per-installation secret key, made once, so sessions survive restarts without setup."""
    path = instance / "secret_key"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
    return path.read_text().strip()


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record):
    """WAL lets readers work while an editor writes (the busy timeout is set in _engine_options)."""
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()


def absolute(address: str) -> str:
    """A path on this site as an absolute URL on PUBLIC_URL (other addresses as they are)."""
    return current_app.config["PUBLIC_URL"] + address if address.startswith("/") else address


def _register_web(app: Flask) -> None:
    """Security headers and template helpers."""
    from .models import isoformat

    @app.after_request
    def security_headers(response):
        # Only embed pages may be framed, by any site; everything else by none.
        if request.blueprint == "embed":
            response.headers.setdefault("Content-Security-Policy", EMBED_CSP)
        else:
            response.headers.setdefault("Content-Security-Policy", CSP)
            response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "strict-origin-when-cross-origin"
        return response

    app.jinja_env.bytecode_cache = _COMPILED_TEMPLATES
    app.jinja_env.globals["mastodon_hosts"] = ",".join(MASTODON_HOSTS)
    app.jinja_env.filters["absolute"] = absolute
    app.jinja_env.filters["iso"] = lambda value: isoformat(value) or ""
    app.jinja_env.filters["utc"] = lambda value: value.strftime("%-d %b %Y, %H:%M UTC") if value else ""
