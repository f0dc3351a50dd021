"""Web Push: subscribing, and key events pushed to a real push service on 127.0.0.1, read as a browser would.

The test is the browser: it makes a P-256 key pair and an auth secret, subscribes with an endpoint on
the local push service, and decrypts what that service receives with http_ece. The pushes are sent by
the app's real background tasks (threads, as the app runs outside eventlet); the tests wait for what
the push service receives, or for the app's log line, never for a fixed time.
"""
import base64
import json
import logging
import os
import queue
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from urllib.parse import urlsplit

import http_ece
import pytest
import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from helpers import LiveServer, LocalHTTPServer
from sqlalchemy import func, select

from tracker import create_app, push, services
from tracker.extensions import db
from tracker.models import PushSubscription, Story

WAIT = 10  # seconds: a push arrives well within this


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class PushService(LocalHTTPServer):
    """A push service on 127.0.0.1 (a thread): it records each request, and answers with the statuses queued
    in `answers`, then 201. A 503 says Retry-After: 0. While `open` is clear it holds every answer back."""

    def __init__(self):
        self.received: queue.Queue = queue.Queue()
        self.answers: queue.SimpleQueue = queue.SimpleQueue()
        self.open = threading.Event()
        self.open.set()
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                service.open.wait(WAIT)
                status = 201 if service.answers.empty() else service.answers.get()
                service.received.put((self.path, self.headers, body))
                self.send_response(status)
                if status == 503:
                    self.send_header("Retry-After", "0")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        super().__init__(Handler)

    def next(self):
        """The next request received: (path, headers, body)."""
        return self.received.get(timeout=WAIT)


class Browser:
    """What a browser keeps of its push subscription: an ECDH key pair and an auth secret (RFC 8291)."""

    def __init__(self, endpoint: str):
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.auth = os.urandom(16)
        self.endpoint = endpoint

    def subscription(self) -> dict:
        point = self.key.public_key().public_bytes(serialization.Encoding.X962,
                                                   serialization.PublicFormat.UncompressedPoint)
        return {"endpoint": self.endpoint, "expirationTime": None,
                "keys": {"p256dh": b64(point), "auth": b64(self.auth)}}

    def read(self, body: bytes) -> dict:
        """A push's message, decrypted with this browser's keys."""
        return json.loads(http_ece.decrypt(body, private_key=self.key, auth_secret=self.auth, version="aes128gcm"))


class Log(logging.Handler):
    """tracker.push's log records, to wait for."""

    def __init__(self):
        super().__init__()
        self.records: queue.Queue = queue.Queue()

    def emit(self, record):
        self.records.put(record)

    def wait_for(self, text: str) -> logging.LogRecord:
        deadline = time.monotonic() + WAIT
        while True:
            record = self.records.get(timeout=max(0.01, deadline - time.monotonic()))
            if text in record.getMessage():
                return record


@pytest.fixture
def service():
    service = PushService()
    yield service
    service.open.set()
    service.close()


@pytest.fixture
def push_log():
    handler, logger = Log(), logging.getLogger("tracker.push")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


@pytest.fixture
def push_app(app, story):
    """The app with the local push service's host listed."""
    app.config["PUSH_SERVICE_HOSTS"] = "127.0.0.1"
    return app


def subscribe(client, story, browser):
    return client.post("/push/subscriptions", json={"story": story, "subscription": browser.subscription()})


def story_of(slug: str) -> Story:
    return db.session.scalar(select(Story).where(Story.slug == slug))


def verified_claims(authorization: str, key: str) -> dict:
    """The claims of a `vapid t=<JWT>,k=<key>` header, after checking the JWT's ES256 signature with `key`."""
    scheme, _, params = authorization.partition(" ")
    fields = dict(part.split("=", 1) for part in params.split(","))
    assert scheme == "vapid" and fields["k"] == key
    header, claims, signature = fields["t"].split(".")
    raw = unb64(signature)
    public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64(fields["k"]))
    public.verify(encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")),
                  f"{header}.{claims}".encode(), ec.ECDSA(hashes.SHA256()))  # raises if not signed with the key
    assert json.loads(unb64(header))["alg"] == "ES256"
    return json.loads(unb64(claims))


def test_a_key_event_is_pushed_encrypted_and_signed(push_app, client, story, service):
    key = client.get("/push/key").get_json()["key"]
    point = unb64(key)
    assert len(point) == 65 and point[0] == 4  # an uncompressed P-256 point, as applicationServerKey takes it
    browser = Browser(f"{service.origin}/push/reader-1")
    assert subscribe(client, story, browser).status_code == 201
    with push_app.app_context():
        token = services.create_token("desk")[1]
    published = client.post(f"/api/stories/{story}/entries", headers={"Authorization": f"Bearer {token}"},
                            json={"body": "Residents of the lower town must leave now.",
                                  "headline": "Evacuation ordered", "key": True})
    assert published.status_code == 201

    path, headers, body = service.next()
    assert path == "/push/reader-1"
    assert headers["Content-Encoding"] == "aes128gcm"
    assert int(headers["TTL"]) == push_app.config["PUSH_TTL"] > 0
    claims = verified_claims(headers["Authorization"], key)
    assert claims["aud"] == service.origin
    assert time.time() < claims["exp"] <= time.time() + 24 * 3600
    assert claims["sub"].startswith(("mailto:", "https://"))
    entry_id = published.get_json()["entry"]["id"]
    assert browser.read(body) == {
        "headline": "Evacuation ordered", "url": f"{push_app.config['PUBLIC_URL']}/stories/{story}/entries/{entry_id}",
        "title": "Flood warning on the river", "tag": f"entry-{entry_id}"}


def test_each_way_an_entry_becomes_a_key_event_is_pushed_once(push_app, ctx, client, story, service):
    browser = Browser(f"{service.origin}/push/reader-2")
    assert subscribe(client, story, browser).status_code == 201
    live = story_of(story)

    def pushed() -> dict:
        return browser.read(service.next()[2])

    services.append_entry(live, "Sandbags at the school.")  # not a key event: nothing is pushed for it
    marked, _ = services.append_entry(live, "The bridge is closed to traffic.", "Bridge closed")
    services.set_key(marked, True)
    assert pushed()["headline"] == "Bridge closed"  # the first push is this one: none came for the first update
    draft, _ = services.append_entry(live, "The river has peaked at **6.2 m**, the highest since 1998.", key=True,
                                     status="draft")
    services.publish_entry(draft)
    assert pushed()["headline"] == "The river has peaked at 6.2 m, the highest since 1998."  # no headline: an excerpt
    when = datetime.now(UTC) + timedelta(minutes=1)
    scheduled, _ = services.append_entry(live, "Schools stay shut tomorrow.", "Schools shut", key=True,
                                         publish_at=when)
    assert services.publish_due(now=when) == [scheduled]
    assert pushed()["headline"] == "Schools shut"
    services.set_key(marked, False)
    services.set_key(marked, True)  # marked again: already pushed
    services.edit_entry(marked, "The bridge is closed to all traffic.", "Bridge closed")  # a correction
    services.append_entry(live, "Rain stops.", "Rain stops", key=True)
    assert pushed()["headline"] == "Rain stops"
    assert service.received.empty()


def test_publishing_does_not_wait_for_the_push_service(push_app, ctx, client, story, service):
    assert subscribe(client, story, Browser(f"{service.origin}/push/reader-3")).status_code == 201
    service.open.clear()  # the push service holds its answers back
    entry, _ = services.append_entry(story_of(story), "Power cut across the east.", "Power cut", key=True)
    assert entry.id and entry.is_published  # the change returned, saved, while the push is still unanswered
    service.open.set()
    assert service.next()[0] == "/push/reader-3"


def test_the_served_app_pushes_from_a_green_thread_without_delaying_the_answer(database_url, service):
    """`python app.py` (eventlet, with requests made cooperative) pushes while it goes on serving."""
    server = LiveServer(database_url, PUSH_SERVICE_HOSTS="127.0.0.1")
    token = server.flask("token", "create", "desk").strip().splitlines()[-1]
    server.start()
    try:
        api = {"Authorization": f"Bearer {token}"}
        assert requests.post(f"{server.url}/api/stories", headers=api, json={"title": "Gas leak", "slug": "gas-leak"},
                             timeout=WAIT).status_code == 201
        browser = Browser(f"{service.origin}/push/reader-live")
        assert requests.post(f"{server.url}/push/subscriptions", json={"story": "gas-leak", "subscription":
                             browser.subscription()}, timeout=WAIT).status_code == 201
        service.open.clear()  # the push service holds its answer back
        published = requests.post(f"{server.url}/api/stories/gas-leak/entries", headers=api, timeout=WAIT,
                                  json={"body": "Streets around the depot are closed.", "headline": "Streets closed",
                                        "key": True})
        assert published.status_code == 201 and requests.get(f"{server.url}/healthz", timeout=WAIT).ok
        service.open.set()
        assert browser.read(service.next()[2])["headline"] == "Streets closed"
    finally:
        server.stop()


def test_a_push_refused_with_503_is_tried_again(push_app, ctx, client, story, service):
    browser = Browser(f"{service.origin}/push/reader-4")
    assert subscribe(client, story, browser).status_code == 201
    service.answers.put(503)
    services.append_entry(story_of(story), "Levels fall.", "Levels fall", key=True)
    first, second = service.next(), service.next()
    assert browser.read(first[2]) == browser.read(second[2])  # the same message, encrypted afresh


@pytest.mark.parametrize("status, ended", [(410, True), (404, True), (403, False)])
def test_a_subscription_the_push_service_says_is_gone_is_deleted(push_app, ctx, client, story, service, push_log,
                                                                 status, ended):
    assert subscribe(client, story, Browser(f"{service.origin}/push/reader-5")).status_code == 201
    service.answers.put(status)
    services.append_entry(story_of(story), "Roads reopen.", "Roads reopen", key=True)
    service.next()
    push_log.wait_for("deleted it" if ended else "refused a push")
    db.session.remove()  # read what the sender committed
    assert db.session.scalar(select(func.count()).select_from(PushSubscription)) == (0 if ended else 1)
    assert service.received.empty()  # not tried again


def test_subscribing_is_checked(push_app, client, story):
    browser = Browser("http://127.0.0.1:9/push/x")
    good = browser.subscription()
    assert subscribe(client, story, browser).status_code == 201
    assert subscribe(client, story, browser).status_code == 201  # again: still one subscription
    with push_app.app_context():
        assert db.session.scalar(select(func.count()).select_from(PushSubscription)) == 1
    elsewhere = client.post("/push/subscriptions", json={"story": story, "subscription": {
        **good, "endpoint": "https://push.example.net/x"}})
    assert elsewhere.status_code == 422 and "push.example.net" in elsewhere.get_json()["error"]
    keys = good["keys"]
    for body, status in [
        ("not json", 400),
        ("[" * 100_000 + "]" * 100_000, 400),
        ({"story": story}, 422),
        ({"story": story, "subscription": "x"}, 422),
        ({"story": story, "subscription": {"endpoint": good["endpoint"]}}, 422),
        ({"story": story, "subscription": {**good, "endpoint": 5}}, 422),
        ({"story": story, "subscription": {**good, "endpoint": "ftp://127.0.0.1/x"}}, 422),
        ({"story": story, "subscription": {**good, "endpoint": "http://127.0.0.1:99999/x"}}, 422),
        ({"story": story, "subscription": {**good, "endpoint": "http://u@127.0.0.1/x"}}, 422),
        ({"story": story, "subscription": {**good, "endpoint": "http://127.0.0.1/" + "x" * 1000}}, 422),
        ({"story": story, "subscription": {**good, "keys": {**keys, "p256dh": keys["p256dh"][:-4]}}}, 422),
        ({"story": story, "subscription": {**good, "keys": {**keys, "p256dh": b64(b"\x04" + bytes(64))}}}, 422),
        ({"story": story, "subscription": {**good, "keys": {**keys, "auth": "!!"}}}, 422),
        ({"story": story, "subscription": {**good, "keys": {"p256dh": keys["p256dh"]}}}, 422),
        ({"story": story, "subscription": good, "extra": 1}, 422),
        ({"story": "no-such-story", "subscription": good}, 404),
        ({"story": "\ud800", "subscription": good}, 422),
    ]:
        response = (client.post("/push/subscriptions", data=body, content_type="application/json")
                    if isinstance(body, str) else client.post("/push/subscriptions", json=body))
        assert response.status_code == status, (body, response.get_data(as_text=True))
        assert response.get_json()["error"]
    with push_app.test_request_context():
        services.set_status(story_of(story), "ended")
    assert subscribe(client, story, Browser("http://127.0.0.1:9/push/y")).status_code == 409


def test_unsubscribing_from_a_story_or_from_all(push_app, client, story):
    with push_app.test_request_context():
        other = services.create_story("Storm Elara").slug
    browser = Browser("http://127.0.0.1:9/push/z")
    for slug in (story, other):
        assert subscribe(client, slug, browser).status_code == 201

    def count() -> int:
        with push_app.app_context():
            return db.session.scalar(select(func.count()).select_from(PushSubscription))

    response = client.delete("/push/subscriptions", json={"story": story, "subscription": browser.subscription()})
    assert response.status_code == 204 and count() == 1
    assert client.delete("/push/subscriptions", json={"endpoint": browser.endpoint}).status_code == 204
    assert count() == 0
    assert client.delete("/push/subscriptions", json={"endpoint": browser.endpoint}).status_code == 204
    assert client.delete("/push/subscriptions", json={"endpoint": 5}).status_code == 422


def test_subscribing_is_rate_limited_per_address(push_app, client, story):
    push_app.config["PUSH_SUBSCRIBE_RATE_LIMIT"] = "2 per minute"
    statuses = [subscribe(client, story, Browser(f"http://127.0.0.1:9/push/{n}")).status_code for n in range(3)]
    assert statuses == [201, 201, 429]


def test_reader_endpoints_set_no_cookie_and_the_worker_is_served(push_app, client, story):
    responses = [client.get(f"/stories/{story}"), client.get("/push/key"), client.get("/sw.js"),
                 subscribe(client, story, Browser("http://127.0.0.1:9/push/c"))]
    assert [r.status_code for r in responses] == [200, 200, 200, 201]
    assert not any("Set-Cookie" in r.headers for r in responses)
    worker = responses[2]
    assert worker.mimetype == "text/javascript" and "no-cache" in worker.headers["Cache-Control"]
    assert b"showNotification" in worker.data
    assert b'data-push hidden' in responses[0].data and b"js/push.js" in responses[0].data


def test_the_vapid_key_is_made_once_however_many_processes_start_together(tmp_path):
    barrier, keys = threading.Barrier(8), []

    def start():
        barrier.wait()
        keys.append(push._instance_key(tmp_path))

    threads = [threading.Thread(target=start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(keys)) == 1 and keys[0].startswith(b"-----BEGIN PRIVATE KEY-----")
    assert [path.name for path in tmp_path.iterdir()] == ["vapid.pem"]  # no temporary file left
    assert (tmp_path / "vapid.pem").stat().st_mode & 0o077 == 0


def test_vapid_private_key_setting_overrides_the_instance_key(database_url, tmp_path):
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    expected = b64(serialization.load_pem_private_key(pem, None).public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint))
    (tmp_path / "key.pem").write_bytes(pem)
    for setting in (pem.decode(), str(tmp_path / "key.pem")):
        app = create_app({"TESTING": True, "SECRET_KEY": "x", "DATABASE_URL": database_url,
                          "VAPID_PRIVATE_KEY": setting})
        assert app.test_client().get("/push/key").get_json() == {"key": expected}
    assert urlsplit(push._subject(app.config)).scheme == "mailto"
