"""Configuration read from the environment; tests pass overrides to create_app."""
import os


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    return int(value) if value.strip() else default


def _origins(value: str) -> str | list[str] | None:
    """None (same origin only), "*" (any), or a list of origins, from a comma-separated value."""
    origins = [origin.strip() for origin in value.split(",") if origin.strip()]
    if not origins:
        return None  # engine.io treats an empty list as "no checks at all"
    return "*" if origins == ["*"] else origins


class Config:
    """Settings for one Tracker process."""

    SECRET_KEY = os.environ.get("SECRET_KEY")
    DATABASE_URL = os.environ.get("DATABASE_URL")
    SOCKETIO_MESSAGE_QUEUE = os.environ.get("SOCKETIO_MESSAGE_QUEUE") or None
    # Redis pub/sub ignores the database number: installations sharing a Redis need their own channel.
    SOCKETIO_CHANNEL = os.environ.get("SOCKETIO_CHANNEL", "tracker")
    # Other sites' origins whose pages may open Socket.IO connections here ("*" for any);
    # unset: same origin only. Embeds need nothing here: the iframe is on this origin.
    SOCKETIO_CORS_ORIGINS = _origins(os.environ.get("SOCKETIO_CORS_ORIGINS", ""))
    # Reverse proxies in front (nginx: 1) whose X-Forwarded-For and X-Forwarded-Proto are trusted.
    TRUSTED_PROXIES = _env_int("TRUSTED_PROXIES", 0)
    # Engine.IO heartbeat: the server pings every interval and drops a reader silent for the
    # timeout after it (socket.io's defaults; proxies in front must allow idle websockets longer).
    SOCKETIO_PING_INTERVAL = _env_int("SOCKETIO_PING_INTERVAL", 25)
    SOCKETIO_PING_TIMEOUT = _env_int("SOCKETIO_PING_TIMEOUT", 20)
    # app.py switches this to eventlet for the real server; the CLI and unit tests run threaded.
    ASYNC_MODE = "threading"
    HOST = os.environ.get("HOST", "127.0.0.1")
    PORT = _env_int("PORT", 5000)

    # Connection pool per process (PostgreSQL); eventlet greenlets share it.
    DB_POOL_SIZE = _env_int("DB_POOL_SIZE", 10)
    DB_MAX_OVERFLOW = _env_int("DB_MAX_OVERFLOW", 20)
    DB_POOL_TIMEOUT = _env_int("DB_POOL_TIMEOUT", 10)
    DB_CONNECT_TIMEOUT = _env_int("DB_CONNECT_TIMEOUT", 5)
    DB_STATEMENT_TIMEOUT_MS = _env_int("DB_STATEMENT_TIMEOUT_MS", 15000)
    # SQLite: how long a change waits for another writer's lock before it is refused (503).
    DB_BUSY_TIMEOUT_MS = _env_int("DB_BUSY_TIMEOUT_MS", 5000)
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    # Always mark the session cookie Secure, even over plain HTTP (e.g. behind a TLS proxy).
    SESSION_COOKIE_SECURE = os.environ.get("SESSION_COOKIE_SECURE", "") == "1"
    PERMANENT_SESSION_LIFETIME = 12 * 3600
    # Bodies are capped at 20,000 characters; this leaves room for the form's other fields.
    MAX_CONTENT_LENGTH = 256 * 1024
    WTF_CSRF_TIME_LIMIT = None

    # The zone in which `flask import` reads dates written without one.
    IMPORT_TIMEZONE = os.environ.get("IMPORT_TIMEZONE") or "UTC"

    # Failed logins allowed per client address and account name (see LOGIN_ADDRESS_RATE_LIMIT);
    # the count lives in memory, or in Redis when RATELIMIT_STORAGE_URI (e.g. redis://127.0.0.1:6379/1)
    # is set, shared by all processes.
    LOGIN_RATE_LIMIT = os.environ.get("LOGIN_RATE_LIMIT", "10 per minute")
    RATELIMIT_STORAGE_URI = os.environ.get("RATELIMIT_STORAGE_URI", "memory://")
    RATELIMIT_HEADERS_ENABLED = True
    # Socket limits: stories one connection may follow at once, and events it may send per minute.
    MAX_ROOMS_PER_SOCKET = _env_int("MAX_ROOMS_PER_SOCKET", 10)
    SOCKET_EVENTS_PER_MINUTE = _env_int("SOCKET_EVENTS_PER_MINUTE", 60)
    # Limits that keep one client from stalling the process (README, Security). Per connection:
    # the largest frame or polling body, and a token bucket every inbound packet draws from
    # before any handler runs; emptying it drops the connection.
    SOCKET_MAX_PACKET_BYTES = _env_int("SOCKET_MAX_PACKET_BYTES", 2048)
    SOCKET_PACKETS_PER_SECOND = _env_int("SOCKET_PACKETS_PER_SECOND", 10)
    SOCKET_PACKET_BURST = _env_int("SOCKET_PACKET_BURST", 40)
    # A reader with more than this queued but unsent is dropped; it catches up when it returns.
    SOCKET_MAX_UNSENT_BYTES = _env_int("SOCKET_MAX_UNSENT_BYTES", 1_000_000)
    # Per client address: open connections, new Socket.IO connections and joins per minute, and
    # how long an address that was dropped for abuse may not open new Socket.IO connections.
    MAX_CONNECTIONS_PER_ADDRESS = _env_int("MAX_CONNECTIONS_PER_ADDRESS", 200)
    CONNECTS_PER_ADDRESS_PER_MINUTE = _env_int("CONNECTS_PER_ADDRESS_PER_MINUTE", 600)
    JOINS_PER_ADDRESS_PER_MINUTE = _env_int("JOINS_PER_ADDRESS_PER_MINUTE", 600)
    ABUSE_BAN_SECONDS = _env_int("ABUSE_BAN_SECONDS", 60)
    # Seconds a connection has to send a request's line and headers (and to start the next one),
    # and how long any later read or write on a plain HTTP connection may wait.
    HEADER_TIMEOUT = _env_int("HEADER_TIMEOUT", 10)
    SOCKET_TIMEOUT = _env_int("SOCKET_TIMEOUT", 30)

    PAGE_SIZE = 20
    # A client further behind than this many changes gets a fresh page instead of a replay.
    CATCHUP_LIMIT = _env_int("CATCHUP_LIMIT", 500)
    # Catch-up comes in pages of about this many bytes of entries: the join ack, then
    # GET /api/stories/<slug>/changes?since=<rev> (README, Event protocol).
    CATCHUP_PAGE_BYTES = _env_int("CATCHUP_PAGE_BYTES", 65_536)
    # Revisions of each followed story a process keeps in memory to answer catch-up joins without
    # the database (tracker.recent); 0 reads the database for every join.
    CATCHUP_WINDOW = _env_int("CATCHUP_WINDOW", 200)
    # The broadcast fast path and timer-driven pings (app.py, tracker.fanout); 0 runs the libraries'
    # own paths, as app.py also does when a library internal it relies on is missing.
    FAST_FANOUT = os.environ.get("FAST_FANOUT", "1") != "0"
    # Uploaded images: where their files go (default instance/media), the largest upload in bytes
    # (a 12-megapixel phone photo is a few MB) and in pixels (more is refused before decoding).
    MEDIA_DIR = os.environ.get("MEDIA_DIR") or None
    MEDIA_MAX_BYTES = _env_int("MEDIA_MAX_BYTES", 20 * 1024 * 1024)
    MEDIA_MAX_PIXELS = _env_int("MEDIA_MAX_PIXELS", 50_000_000)
    # Image uploads per client address (each takes seconds of CPU), counted like failed logins.
    UPLOAD_RATE_LIMIT = os.environ.get("UPLOAD_RATE_LIMIT", "30 per minute")
    # An S3-compatible bucket for media instead of MEDIA_DIR, shared by every process (credentials
    # from the usual AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY); the endpoint for non-AWS servers.
    MEDIA_S3_BUCKET = os.environ.get("MEDIA_S3_BUCKET") or None
    MEDIA_S3_ENDPOINT_URL = os.environ.get("MEDIA_S3_ENDPOINT_URL") or None
    MEDIA_S3_REGION = os.environ.get("MEDIA_S3_REGION", "us-east-1")
    MEDIA_S3_PREFIX = os.environ.get("MEDIA_S3_PREFIX", "media/")
    # How often each process looks for scheduled updates whose time has come (0 turns it off).
    SCHEDULER_SECONDS = float(os.environ.get("SCHEDULER_SECONDS", "0.5"))
    # How long a signed-in connection counts as at a story's desk after it last said so; editor
    # pages say so every third of this, so a tab that vanished without a goodbye fades out by then.
    DESK_PRESENCE_SECONDS = _env_int("DESK_PRESENCE_SECONDS", 45)
    # How often each process tells its readers every joined story's revision (0 turns it off).
    REV_BEACON_SECONDS = _env_int("REV_BEACON_SECONDS", 20)
    # GET /metrics: only with `Authorization: Bearer <METRICS_TOKEN>` when set; else only from these
    # client addresses (comma-separated; behind nginx, with TRUSTED_PROXIES, the scraper's own).
    METRICS_TOKEN = os.environ.get("METRICS_TOKEN") or None
    METRICS_ADDRESSES = tuple(filter(None, os.environ.get("METRICS_ADDRESSES", "127.0.0.1,::1").split(",")))
    # tracker_story_readers has a series for this many stories at most: those with the most readers here.
    METRICS_STORY_LIMIT = _env_int("METRICS_STORY_LIMIT", 100)
    # How `python app.py` logs to stderr: "text" (one readable line per record) or "json" (one JSON object per
    # line: time, level, logger, message, request_id, exc_info), for a log shipper.
    LOG_FORMAT = os.environ.get("LOG_FORMAT", "text").strip().lower() or "text"
    # How long browsers and shared caches may keep an anonymous reader's story page, widget or feed
    # (and serve it three times as long stale while they revalidate it).
    PAGE_CACHE_SECONDS = _env_int("PAGE_CACHE_SECONDS", 10)
    # How often each process shares its reader counts and tells readers the totals (0 turns it off).
    READERS_SECONDS = float(os.environ.get("READERS_SECONDS", "12"))
    # Failed logins allowed per client address over all account names (LOGIN_RATE_LIMIT counts per
    # address and account): looser, as editors behind one NAT or untrusted proxy share an address,
    # but one address still cannot try account names without end.
    LOGIN_ADDRESS_RATE_LIMIT = os.environ.get("LOGIN_ADDRESS_RATE_LIMIT", "100 per minute")

    # Web Push (README, Notifications). The hosts of the push services a subscription's endpoint may be on,
    # comma-separated and matched exactly (a listed host is allowed even on a loopback address): the
    # browsers' own services by default. Edge's (WNS) hosts vary by region; add the ones its readers use.
    PUSH_SERVICE_HOSTS = os.environ.get("PUSH_SERVICE_HOSTS", ",".join((
        "fcm.googleapis.com", "android.googleapis.com", "updates.push.services.mozilla.com",
        "push.services.mozilla.com", "web.push.apple.com", "api.push.apple.com")))
    # Subscribes and unsubscribes per client address (readers are anonymous), counted like failed logins.
    PUSH_SUBSCRIBE_RATE_LIMIT = os.environ.get("PUSH_SUBSCRIBE_RATE_LIMIT", "30 per minute")
    # How long a push service keeps a notification for a browser that is offline (its TTL header), seconds.
    PUSH_TTL = _env_int("PUSH_TTL", 6 * 3600)
    # The VAPID private key that signs pushes: PEM, or the path of a PEM file. Unset: instance/vapid.pem,
    # made on first use (every process sharing the instance folder uses the same). Changing it ends every
    # subscription: browsers subscribed with the old public key.
    VAPID_PRIVATE_KEY = os.environ.get("VAPID_PRIVATE_KEY") or None
    # Whom push services may contact about this site's pushes (mailto: or https:); unset: PUBLIC_URL when it
    # is https, else mailto:webmaster@localhost, which a push service such as Apple's may refuse.
    VAPID_SUBJECT = os.environ.get("VAPID_SUBJECT") or None

    # The site's public origin (e.g. https://live.example.com): every absolute URL (canonical links,
    # feeds, oEmbed, JSON-LD, embeds) starts with it, never with the request's Host header, which
    # any client can set. Unset: http://HOST:PORT, fine for `make run` and tests only.
    PUBLIC_URL = os.environ.get("PUBLIC_URL") or None
