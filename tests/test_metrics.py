"""GET /metrics: Prometheus' text format, every name tracker_, for the scraper only."""
import base64
import json
import logging
import os
import re
import shutil
import sqlite3
import subprocess
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
import requests
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from helpers import LocalHTTPServer, Reader, start_live_server, unavailable
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import make_url, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from tracker import metrics, readers, services
from tracker.extensions import db
from tracker.models import Entry, User
from tracker.web import story_or_404


def scrape(app, **request):
    return app.test_client().get("/metrics", **request)


def test_with_a_token_only_its_bearer_reads_the_metrics(app):
    app.config["METRICS_TOKEN"] = "s3cret-scrape"
    assert scrape(app).status_code == 404
    assert scrape(app, headers={"Authorization": "Bearer wrong"}).status_code == 404
    response = scrape(app, headers={"Authorization": "Bearer s3cret-scrape"})
    assert response.status_code == 200 and response.mimetype == "text/plain"
    names = set(re.findall(r"^(?:# TYPE )?([a-zA-Z_:][a-zA-Z0-9_:]*)", response.get_data(as_text=True), re.M))
    names.discard("#")
    assert names and all(name.startswith("tracker_") for name in names), sorted(names)
    assert re.search(r"^tracker_readers 0\.0$", response.get_data(as_text=True), re.M)
    assert "tracker_process_cpu_seconds_total" in names


def test_without_a_token_only_the_listed_addresses_read_them(app):
    app.config["METRICS_ADDRESSES"] = ("10.0.0.5",)
    assert scrape(app, environ_base={"REMOTE_ADDR": "10.0.0.5"}).status_code == 200
    assert scrape(app, environ_base={"REMOTE_ADDR": "203.0.113.9"}).status_code == 404


# What each metric counts, moved through the service layer, the test client and Socket.IO test clients.
# The registry is the process's own, so each test compares values before and after.

def sample(name: str, **labels) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def join(sio, slug: str, since: int = 0) -> dict:
    return sio.emit("join", {"story": slug, "since": since}, callback=True)


def test_joins_are_counted_with_the_entries_each_answer_caught_up(app, socket_client, story):
    with app.test_request_context():
        live = story_or_404(story)
        for body in ("One", "Two", "Three"):
            services.append_entry(live, body)
        rev = live.rev
    joins, answers, caught_up = (sample("tracker_joins_total"), sample("tracker_join_catchup_entries_count"),
                                 sample("tracker_join_catchup_entries_sum"))
    up_to_date = sample("tracker_join_catchup_entries_bucket", le="0.0")
    sio = socket_client()
    assert len(join(sio, story)["entries"]) == 3
    assert join(sio, story, since=rev)["entries"] == []  # a reconnect that missed nothing
    assert join(sio, "no-such-story")["ok"] is False  # refused: not a join
    assert sample("tracker_joins_total") == joins + 2
    assert sample("tracker_join_catchup_entries_count") == answers + 2
    assert sample("tracker_join_catchup_entries_sum") == caught_up + 3
    assert sample("tracker_join_catchup_entries_bucket", le="0.0") == up_to_date + 1


def test_a_tally_loses_no_count_to_threads_or_reads_and_is_scraped_as_a_counter():
    tally = metrics.Tally("tracker_test_tally", "Things counted")

    def count():
        for _ in range(5_000):
            tally.inc()
        tally.get()

    workers = [threading.Thread(target=count) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert tally.get() == 20_000 and tally.get() == 20_000
    registry = CollectorRegistry()
    registry.register(metrics._Tallies(tally))
    assert registry.get_sample_value("tracker_test_tally_total") == 20_000


def test_each_broadcast_counts_once_whatever_the_readers_and_is_timed_from_its_commit(app, socket_client, story):
    for sio in (socket_client(), socket_client(), socket_client()):
        assert join(sio, story)["ok"]
    before = {kind: sample("tracker_broadcasts_total", kind=kind) for kind in ("entry", "story", "draft", "readers")}
    timed = sample("tracker_publish_to_send_seconds_count")
    with app.test_request_context():
        live = story_or_404(story)
        services.append_entry(live, "Water is rising.")
        services.append_entry(live, "Not yet.", status="draft")  # to the desk: not a reader's update
        services.update_story(live, "Flood warning on the river", "Levels peak tonight.")
        readers.tick(app)
        readers.tick(app)  # the count has not changed: its readers are not told again
    after = {kind: sample("tracker_broadcasts_total", kind=kind) for kind in before}
    assert {kind: after[kind] - before[kind] for kind in before} == {"entry": 1, "story": 1, "draft": 1, "readers": 1}
    assert sample("tracker_publish_to_send_seconds_count") == timed + 2  # the entry and the story
    assert sample("tracker_publish_to_send_seconds_bucket", le="+Inf") >= timed + 2


def test_scheduled_publications_are_counted_and_late_ones_apart(app, story):
    with app.test_request_context():
        live = story_or_404(story)
        entries = [services.append_entry(live, f"At {n}.", publish_at=datetime.now(UTC) + timedelta(hours=1))[0]
                   for n in range(2)]
        published, late = sample("tracker_scheduled_publications_total"), sample(
            "tracker_scheduled_publications_late_total")
        for entry, ago in zip(entries, (timedelta(0), timedelta(minutes=2)), strict=True):
            db.session.execute(update(Entry).where(Entry.id == entry.id).values(publish_at=datetime.now(UTC) - ago))
        db.session.commit()
        assert len(services.publish_due()) == 2
    assert sample("tracker_scheduled_publications_total") == published + 2
    assert sample("tracker_scheduled_publications_late_total") == late + 1


def test_database_errors_are_counted_by_class_but_refused_constraints_are_not(app):
    with app.app_context():
        kinds = ("OperationalError", "ProgrammingError", "IntegrityError")
        before = sum(sample("tracker_database_errors_total", error=kind) for kind in kinds)
        with pytest.raises(DBAPIError):  # SQLite: OperationalError; PostgreSQL: ProgrammingError
            db.session.execute(text("SELECT no_column FROM no_table"))
        db.session.rollback()
        services.create_user("dup", "correct horse battery")
        with pytest.raises(IntegrityError):
            db.session.add(User(username="dup", password_hash="x", role="editor"))
            db.session.flush()
        db.session.rollback()
        assert sum(sample("tracker_database_errors_total", error=kind) for kind in kinds) == before + 1
        assert sample("tracker_database_errors_total", error="IntegrityError") == 0


def test_a_locked_database_counts_as_a_database_error_and_a_5xx_answer(app, client, story, database_url):
    if not database_url.startswith("sqlite"):
        pytest.skip("SQLite's write lock (PostgreSQL's outages are in test_faults.py)")
    errors, failed = sample("tracker_database_errors_total", error="OperationalError"), sample(
        "tracker_http_responses_total", status="5xx")
    ok = sample("tracker_http_responses_total", status="2xx")
    assert client.get(f"/stories/{story}").status_code == 200
    holder = sqlite3.connect(make_url(database_url).database, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        with app.test_request_context(), db.engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA busy_timeout=0")  # the pool's next connection: no wait
            connection.commit()
        with app.test_request_context():
            db.session.connection().exec_driver_sql("PRAGMA busy_timeout=0")
            with pytest.raises(services.ServiceError) as refused:
                services.append_entry(story_or_404(story), "Saved later.")
        assert refused.value.status == 503
        assert client.get("/healthz").status_code == 503
    finally:
        holder.close()
    assert sample("tracker_database_errors_total", error="OperationalError") >= errors + 1
    assert sample("tracker_http_responses_total", status="5xx") == failed + 1
    assert sample("tracker_http_responses_total", status="2xx") == ok + 1


def test_message_queue_up_only_with_a_queue_and_says_whether_it_answers(app, redis_server):
    app.config["METRICS_TOKEN"] = "t"
    bearer = {"Authorization": "Bearer t"}

    def queue_up() -> list[str]:
        return re.findall(r"^tracker_message_queue_up (\S+)$", scrape(app, headers=bearer).get_data(as_text=True), re.M)

    assert queue_up() == []  # no queue configured: nothing to be down
    app.config["SOCKETIO_MESSAGE_QUEUE"] = redis_server.url
    assert queue_up() == ["1.0"]
    app.config["SOCKETIO_MESSAGE_QUEUE"] = "redis://127.0.0.1:1/0"  # nothing listens there
    assert queue_up() == ["0.0"]


def test_message_queue_errors_are_counted_where_they_are_caught(app, story):
    errors = sample("tracker_message_queue_errors_total")
    app.config["SOCKETIO_MESSAGE_QUEUE"] = "redis://127.0.0.1:1/0"
    with app.test_request_context():
        assert readers.counts([story]) == {story: 0}  # this process's figures instead of Redis's
    # python-socketio's Redis manager, failing to publish, logs this (and retries on its own):
    logging.getLogger("socketio.server").error("Cannot publish to redis... giving up",
                                               extra={"redis_exception": "Connection refused"})
    assert sample("tracker_message_queue_errors_total") == errors + 2


def test_readers_per_story_for_the_biggest_stories_only(app, socket_client, story):
    app.config["METRICS_TOKEN"] = "t"
    with app.test_request_context():
        other = services.create_story("Election night").slug
    crowd = [socket_client() for _ in range(3)]
    for sio in crowd:
        assert join(sio, story)["ok"]
    assert join(socket_client(), other)["ok"]

    def per_story() -> dict[str, float]:
        body = scrape(app, headers={"Authorization": "Bearer t"}).get_data(as_text=True)
        return {slug: float(value) for slug, value in re.findall(r'^tracker_story_readers\{story="([^"]+)"\} (\S+)$',
                                                                  body, re.M)}

    assert per_story() == {story: 3.0, other: 1.0}
    app.config["METRICS_STORY_LIMIT"] = 1
    assert per_story() == {story: 3.0}
    app.config["METRICS_STORY_LIMIT"] = 100
    for sio in crowd:
        sio.disconnect()
    assert per_story() == {other: 1.0}  # a story nobody follows here has no series


def test_http_responses_are_counted_by_status_class(client):
    found, missing = sample("tracker_http_responses_total", status="2xx"), sample(
        "tracker_http_responses_total", status="4xx")
    assert client.get("/healthz").status_code == 200
    assert client.get("/no/such/page").status_code == 404
    assert sample("tracker_http_responses_total", status="2xx") == found + 1
    assert sample("tracker_http_responses_total", status="4xx") == missing + 1


class PushService(LocalHTTPServer):
    """A push service on 127.0.0.1: 201 for endpoints under /ok/, 410 (the subscription ended) for the rest."""

    def __init__(self):
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers["Content-Length"]))
                self.send_response(201 if self.path.startswith("/ok/") else 410)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        super().__init__(Handler)

    def subscription(self, path: str) -> dict:
        point = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
        encode = lambda raw: base64.urlsafe_b64encode(raw).rstrip(b"=").decode()  # noqa: E731
        return {"endpoint": self.origin + path, "keys": {"p256dh": encode(point), "auth": encode(os.urandom(16))}}


def test_pushes_sent_and_failed_are_counted(app, client, story):
    app.config["PUSH_SERVICE_HOSTS"] = "127.0.0.1"
    service = PushService()
    try:
        for path in ("/ok/reader-1", "/gone/reader-2"):
            body = {"story": story, "subscription": service.subscription(path)}
            answer = client.post("/push/subscriptions", json=body)
            assert answer.status_code == 201
        sent, gone = sample("tracker_push_sent_total"), sample("tracker_push_failed_total", reason="gone")
        with app.test_request_context():
            services.append_entry(story_or_404(story), "The dam holds.", "Dam holds", key=True)
        deadline = time.monotonic() + 10
        while (sample("tracker_push_sent_total"), sample("tracker_push_failed_total", reason="gone")) != (
                sent + 1, gone + 1):
            assert time.monotonic() < deadline, "the pushes were not counted"
            time.sleep(0.02)
    finally:
        service.close()


# A real server (python app.py, eventlet, the fast path) scraped over HTTP as Prometheus would

def test_a_served_process_counts_a_publish_and_a_join_and_logs_json(database_url):
    server = start_live_server(database_url, METRICS_TOKEN="scrape-secret", LOG_FORMAT="json")
    try:
        token = server.flask("token", "create", "metrics-test").strip().splitlines()[-1]
        http = requests.Session()
        http.headers["Authorization"] = f"Bearer {token}"
        slug = http.post(f"{server.url}/api/stories", json={"title": "Metrics"}).json()["story"]["slug"]
        reader = Reader(server.url, slug)
        reader.connect()
        answer = http.post(f"{server.url}/api/stories/{slug}/entries", json={"body": "Counted."},
                           headers={"X-Request-ID": "abc-123"})
        assert answer.status_code == 201 and answer.headers["X-Request-ID"] == "abc-123"
        reader.wait_for(lambda r: len(r.entries) == 1)
        reader.sio.disconnect()
        refused = requests.get(f"{server.url}/socket.io/?EIO=4&transport=polling", timeout=10,
                               headers={"Origin": "https://elsewhere.example"})  # Engine.IO logs an error
        assert refused.status_code == 400

        assert requests.get(f"{server.url}/metrics", timeout=10).status_code == 404  # the token is required
        scraped = requests.get(f"{server.url}/metrics", headers={"Authorization": "Bearer scrape-secret"}, timeout=10)
        samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
                   for family in text_string_to_metric_families(scraped.text) for s in family.samples}
        assert all(name.startswith("tracker_") for name, _ in samples)
        assert samples[("tracker_joins_total", ())] == 1
        assert samples[("tracker_join_catchup_entries_count", ())] == 1
        assert samples[("tracker_broadcasts_total", (("kind", "entry"),))] == 1
        assert samples[("tracker_publish_to_send_seconds_count", ())] >= 1  # the entry (and the new story)
        assert 0 < samples[("tracker_publish_to_send_seconds_sum", ())] < 5
        assert samples[("tracker_fanout_direct_writes_total", ())] >= 1  # the fast path wrote to the reader
        assert samples[("tracker_http_responses_total", (("status", "2xx"),))] >= 2
        assert sum(value for (name, _), value in samples.items() if name == "tracker_database_errors_total") == 0
    finally:
        server.stop()
    lines = [json.loads(line) for line in server.log]  # every line the process wrote is one JSON object
    assert all({"time", "level", "logger", "message", "request_id"} <= set(line) for line in lines)
    assert any(line["message"].startswith("Tracker serving on") for line in lines)
    assert [line["logger"] for line in lines if "not an accepted origin" in line["message"]] == ["engineio.server"]


# deploy/prometheus.yml and deploy/alerts.yml

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"


def test_alert_rules_use_only_what_metrics_exposes(app):
    app.config.update(METRICS_TOKEN="t", SOCKETIO_MESSAGE_QUEUE="redis://127.0.0.1:1/0")  # queue_up shows
    text_format = scrape(app, headers={"Authorization": "Bearer t"}).get_data(as_text=True)
    families = list(text_string_to_metric_families(text_format))
    exposed = {family.name for family in families} | {s.name for family in families for s in family.samples}
    label_values = {(s.name, label, value) for family in families for s in family.samples
                    for label, value in s.labels.items()}
    rules = [rule for group in yaml.safe_load((DEPLOY / "alerts.yml").read_text())["groups"] for rule in group["rules"]]
    alerts = {rule["alert"] for rule in rules}
    assert {"TrackerMessageQueueDown", "TrackerErrors", "TrackerStoryLostItsReaders"} <= alerts
    for rule in rules:
        assert rule["labels"]["severity"] in ("warning", "critical") and rule["annotations"]["summary"]
        used = set(re.findall(r"\b(tracker_[a-z0-9_]+)", rule["expr"]))
        assert used <= exposed, f"{rule['alert']}: {sorted(used - exposed)} not in /metrics"
        assert used or re.fullmatch(r'up\{job="tracker"\} == 0\s*', rule["expr"]), rule["alert"]
        for name, label, value in re.findall(r'\b(tracker_[a-z0-9_]+)\{(\w+)="([^"]*)"\}', rule["expr"]):
            assert (name, label, value) in label_values, f"{rule['alert']}: no {name}{{{label}={value!r}}}"


def test_prometheus_scrapes_every_process_of_nginx_conf_with_the_token_from_a_file():
    config = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    (job,) = [job for job in config["scrape_configs"] if job["job_name"] == "tracker"]
    assert job["metrics_path"] == "/metrics"
    assert job["authorization"]["type"] == "Bearer" and job["authorization"]["credentials_file"].startswith("/")
    targets = [target for static in job["static_configs"] for target in static["targets"]]
    upstream = re.search(r"upstream tracker \{(.*?)\n\}", (DEPLOY / "nginx.conf").read_text(), re.S).group(1)
    assert targets == re.findall(r"^\s*server (\S+) ", upstream, re.M)
    assert config["rule_files"]


def test_promtool_accepts_the_rules_and_their_unit_tests(tmp_path):
    if shutil.which("promtool") is None:  # .ci/run puts it on the PATH in CI
        unavailable("promtool", "apt-get install --no-install-recommends prometheus (.ci/run takes it from there)")
    for command in (["check", "rules", "alerts.yml"], ["test", "rules", "alerts_test.yml"]):
        done = subprocess.run(["promtool", *command], cwd=DEPLOY, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
    # The scrape config, with its credentials file and rule file where it expects them.
    config = (DEPLOY / "prometheus.yml").read_text().replace("/etc/prometheus/tracker-metrics-token",
                                                              str(tmp_path / "token"))
    (tmp_path / "prometheus.yml").write_text(config)
    (tmp_path / "token").write_text("scrape-secret\n")
    shutil.copy(DEPLOY / "alerts.yml", tmp_path / "tracker-alerts.yml")
    done = subprocess.run(["promtool", "check", "config", "prometheus.yml"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
