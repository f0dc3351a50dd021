"""Web Push: readers' browsers are told of a story's key events, each event once.

A reader's browser subscribes through its own push service (static/js/push.js) and sends the
subscription here (tracker.notifications). When a change makes an entry a key event readers see,
the service layer claims it for pushing inside the change's transaction (`claim`: Entry.pushed_at,
so once, by the process that made the change); after the commit and the broadcast, `send_later`
sends it from a background task to every subscription of the story: encrypted for each browser
(RFC 8291, aes128gcm) and signed with this site's VAPID key (RFC 8292), both by pywebpush.
"""
from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import queue
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask, current_app
from py_vapid import Vapid
from sqlalchemy import update

from . import absolute, metrics, queries
from .extensions import db, socketio
from .models import MAX_PUSH_ENDPOINT, Entry, utcnow

log = logging.getLogger(__name__)
SENDERS = 8  # pushes of one key event in flight at once
TRIES = 4  # times a push is tried when it meets a network error, a 429 or a 5xx: BACKOFF * 2**n seconds apart
BACKOFF = 1.0
MOST_RETRY_AFTER = 60.0  # seconds: a longer Retry-After is cut to this
TIMEOUT = (5, 10)  # seconds to connect to a push service, and to wait for its answer
GONE = (404, 410)  # the push service's word that a subscription has ended


class Refused(ValueError):
    """A subscription that cannot be used; `message` says why."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


# The site's VAPID key

def _instance_key(folder: Path) -> bytes:
    """The PEM of the key in `folder`/vapid.pem, made on first use: written whole to a temporary file, then
    linked into place, which fails if another process was first; either way every process reads one key."""
    path = folder / "vapid.pem"
    if not path.exists():
        pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=".vapid-")  # readable by this user only
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(pem)
            os.link(temporary, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(temporary)
    return path.read_bytes()


def vapid(app: Flask) -> Vapid:
    """The app's VAPID signer: VAPID_PRIVATE_KEY (PEM, or a PEM file's path), else the instance folder's key."""
    signer = app.extensions.get("tracker.vapid")
    if signer is None:
        setting = app.config["VAPID_PRIVATE_KEY"]
        if not setting:
            pem = _instance_key(Path(app.instance_path))
        else:
            pem = setting.encode() if setting.lstrip().startswith("-----BEGIN") else Path(setting).read_bytes()
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
            raise ValueError("VAPID_PRIVATE_KEY must be a P-256 (prime256v1) EC private key")
        signer = app.extensions["tracker.vapid"] = Vapid(key)
    return signer


def public_key(app: Flask) -> str:
    """The application server key browsers subscribe with: the uncompressed P-256 point, base64url without padding."""
    point = vapid(app).public_key.public_bytes(serialization.Encoding.X962,
                                               serialization.PublicFormat.UncompressedPoint)
    return _b64(point)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _subject(config) -> str:
    public = config["PUBLIC_URL"]
    return config["VAPID_SUBJECT"] or (public if public.startswith("https://") else "mailto:webmaster@localhost")


# Subscriptions

def service_hosts(config) -> set[str]:
    """PUSH_SERVICE_HOSTS as a set of lowercase host names (the setting is comma-separated)."""
    hosts = config["PUSH_SERVICE_HOSTS"]
    return {host.strip().lower() for host in (hosts.split(",") if isinstance(hosts, str) else hosts) if host.strip()}


def checked(subscription, hosts: set[str]) -> tuple[str, str, str]:
    """A browser's PushSubscription as its toJSON() gives it, checked: (endpoint, p256dh, auth); else Refused."""
    if not isinstance(subscription, dict) or not isinstance(subscription.get("keys"), dict):
        raise Refused("'subscription' must be the browser's PushSubscription as JSON: {endpoint, keys: {p256dh, "
                      "auth}}.")
    endpoint = checked_endpoint(subscription.get("endpoint"))
    host = urlsplit(endpoint).hostname
    if host not in hosts:
        raise Refused(f"Push notifications through {host} are not offered here: the push service must be one of "
                      f"{', '.join(sorted(hosts)) or 'none (PUSH_SERVICE_HOSTS is empty)'}.")
    p256dh = _key_bytes(subscription["keys"], "p256dh", 65)
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), p256dh)
    except ValueError:
        raise Refused("'keys.p256dh' is not a P-256 public key.") from None
    return endpoint, _b64(p256dh), _b64(_key_bytes(subscription["keys"], "auth", 16))


def checked_endpoint(endpoint) -> str:
    """A push service endpoint as given: an http(s) URL of printable ASCII, with a host and no credentials."""
    if not isinstance(endpoint, str) or not endpoint.isascii() or not endpoint.isprintable() or " " in endpoint:
        raise Refused("'endpoint' must be the push service URL the browser gave, as a string.")
    if len(endpoint) > MAX_PUSH_ENDPOINT:
        raise Refused(f"'endpoint' is too long: at most {MAX_PUSH_ENDPOINT:,} characters.")
    try:
        parts = urlsplit(endpoint)
        port_ok = parts.port != 0  # .port raises ValueError for one that is not a number up to 65535
    except ValueError:
        parts, port_ok = None, False
    if not port_ok or parts.scheme not in ("https", "http") or not parts.hostname or "@" in parts.netloc:
        raise Refused("'endpoint' must be an https:// (or http://) URL of a push service.")
    return endpoint


def _key_bytes(keys: dict, name: str, size: int) -> bytes:
    value = keys.get(name)
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)) if isinstance(value, str) else b""
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != size:
        raise Refused(f"'keys.{name}' must be {size} bytes in base64url, as the browser gave it.")
    return raw


# Pushing key events

def claim(story_id: int, changed: list) -> list[int]:
    """Mark pushed the entries among `changed` that are now key events readers see and were never pushed, in the
    change's transaction (a conditional UPDATE: exact across processes); the ids to push, if the story has
    subscribers. A key event unmarked and marked again, or corrected, is not pushed again."""
    entries = [item for item in changed if isinstance(item, Entry) and _key_event(item)]
    if not entries:
        return []
    db.session.flush()  # a new entry gets its id
    claimed = db.session.scalars(update(Entry).where(Entry.id.in_([entry.id for entry in entries]),
                                                     Entry.pushed_at.is_(None))
                                 .values(pushed_at=utcnow()).returning(Entry.id),
                                 execution_options={"synchronize_session": False}).all()
    return list(claimed) if claimed and queries.has_push_subscriptions(story_id) else []


def _key_event(entry: Entry) -> bool:
    return entry.is_published and entry.key_event and not entry.deleted


def send_later(entry_ids: list[int]) -> None:
    """Push these key events to their stories' subscribers from a background task (a green thread under
    eventlet); never raises: the change is saved and broadcast whatever happens here."""
    try:
        socketio.start_background_task(_send, current_app._get_current_object(), entry_ids)
    except Exception:
        log.exception("could not start pushing key events %s", entry_ids)


def message(entry: Entry) -> dict:
    """What a push tells of a key event: its headline (else an excerpt), its permalink, the story's title."""
    state = entry.to_dict()
    return {"headline": state["headline"] or state["excerpt"], "url": absolute(state["url"]),
            "title": entry.story.title, "tag": f"entry-{entry.id}"}


def _send(app: Flask, entry_ids: list[int]) -> None:
    """Send each key event to every subscription of its story, SENDERS pushes at a time."""
    jobs: queue.SimpleQueue = queue.SimpleQueue()
    try:
        with app.app_context():
            for entry_id in entry_ids:
                entry = db.session.get(Entry, entry_id)
                if not _key_event(entry):
                    continue  # deleted or unmarked since: too late to tell anyone
                data = json.dumps(message(entry))
                for subscription in queries.push_subscriptions(entry.story_id):
                    jobs.put((subscription, data))
        for _ in range(min(SENDERS, jobs.qsize())):
            socketio.start_background_task(_sender, app, jobs)
    except Exception:
        log.exception("pushing key events %s failed", entry_ids)


def _sender(app: Flask, jobs: queue.SimpleQueue) -> None:
    """Send pushes from `jobs` until there are none left."""
    session = requests.Session()
    session.max_redirects = 0  # push services answer, never redirect: following one would leave PUSH_SERVICE_HOSTS
    with app.app_context(), session:
        while True:
            try:
                (endpoint, p256dh, auth), data = jobs.get_nowait()
            except queue.Empty:
                return
            try:
                _deliver(app, session, {"endpoint": endpoint, "keys": {"p256dh": p256dh, "auth": auth}}, data)
            except Exception:
                metrics.PUSH_FAILED.labels("error").inc()
                log.exception("a push to %s failed", urlsplit(endpoint).hostname)


def _deliver(app: Flask, session: requests.Session, subscription: dict, data: str) -> None:
    """Send one push, again after a network error, a 429 or a 5xx; a subscription the push service says is gone is
    deleted, and any other refusal is logged."""
    # Here, not at the top: pywebpush imports aiohttp, a tenth of a server's startup (app.py).
    from pywebpush import WebPushException, webpush

    host = urlsplit(subscription["endpoint"]).hostname  # logged instead of the endpoint, which is a secret
    for attempt in range(TRIES):
        retry_after = None
        try:
            webpush(subscription, data, vapid_private_key=vapid(app), vapid_claims={"sub": _subject(app.config)},
                    ttl=app.config["PUSH_TTL"], timeout=TIMEOUT, requests_session=session)
            metrics.PUSH_SENT.inc()
            return
        except WebPushException as exc:
            status = exc.status_code
            if status in GONE:
                from . import services  # services pushes through this module

                services.unsubscribe(subscription["endpoint"])
                metrics.PUSH_FAILED.labels("gone").inc()
                log.info("push service %s says a subscription ended (%s); deleted it", host, status)
                return
            if status is None or (status < 500 and status != 429):
                answer = exc.response.text[:200] if exc.response is not None else exc.message
                metrics.PUSH_FAILED.labels("refused").inc()
                log.warning("push service %s refused a push (%s): %s", host, status, answer)
                return
            retry_after, problem = exc.retry_after, f"{status}"
        except requests.RequestException as exc:
            problem = type(exc).__name__
        if attempt + 1 < TRIES:
            delay = BACKOFF * 2 ** attempt
            if retry_after is not None and retry_after.strip().isdigit():
                delay = min(float(retry_after), MOST_RETRY_AFTER)
            socketio.sleep(delay)
    metrics.PUSH_FAILED.labels("unreachable").inc()
    log.warning("push service %s: a push failed %s times (last: %s); given up", host, TRIES, problem)
