"""Counters of this process for operators and tests: GET /metrics in Prometheus' text format.

The fast path (tracker.fanout, app.py) counts what it does here, so a test or a dashboard can
tell that broadcasts really go out directly and pings really come from the hub timer. Every name
starts with tracker_ (the process's own CPU and memory too), in a registry of Tracker's own.
Scrapers send `Authorization: Bearer <METRICS_TOKEN>`; without a token set, only the addresses in
METRICS_ADDRESSES may read it. deploy/README.md (Monitoring) says what each metric means, and
deploy/prometheus.yml and deploy/alerts.yml scrape and watch them.

Everything here is counted once per event of the process (a join, a broadcast, a publish), never
once per reader; what costs more to keep up to date (readers per story, whether the message queue
answers) is read when the scraper asks, not maintained.
"""
from __future__ import annotations

import heapq
import hmac
import itertools
import logging
import threading

import redis
from flask import Blueprint, Flask, Response, abort, current_app, has_app_context, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    Summary,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy import event, exc
from sqlalchemy.engine import Engine

bp = Blueprint("metrics", __name__)
REGISTRY = CollectorRegistry()
ProcessCollector(namespace="tracker", registry=REGISTRY)

FAST_PATH = Gauge("tracker_fast_path", "1 when the broadcast fast path and timer pings are installed",
                  registry=REGISTRY)
DIRECT_WRITES = Counter("tracker_fanout_direct_writes", "Broadcast frames written straight to an idle websocket",
                        registry=REGISTRY)
FALLBACKS = Counter("tracker_fanout_fallbacks", "Broadcast deliveries that took the library's queue instead",
                    registry=REGISTRY)
PARTIAL_WRITES = Counter("tracker_fanout_partial_writes",
                         "Direct writes the kernel took only part of (a task sent the rest)", registry=REGISTRY)
TIMER_PINGS = Counter("tracker_timer_pings", "Engine.IO pings sent from a hub timer", registry=REGISTRY)
PARKED = Gauge("tracker_parked_websockets", "Websockets served by the hub with no green thread of their own while idle",
               registry=REGISTRY)  # app.py sets the function that counts them
READERS = Gauge("tracker_readers", "Connections of this process following a story (set by tracker.readers)",
                registry=REGISTRY)
READERS_TICKS = Summary("tracker_readers_tick_seconds",
                        "Reader-count ticks: counting, sharing through Redis, one readers event per story",
                        registry=REGISTRY)


class Tally:
    """A count of something every reader does (a join): counting is one C call, atomic under the GIL,
    where a Counter's inc takes its lock and checks, in Python, each time (with the parked gauge,
    a join's counts were 1.2 % of a reader's connect and join). Exported as a counter when scraped
    (_Tallies)."""

    def __init__(self, name: str, documentation: str):
        self.name, self.documentation = name, documentation
        self._count, self._reads, self._lock = itertools.count(), 0, threading.Lock()

    def inc(self) -> None:
        next(self._count)

    def get(self) -> int:
        """What was counted: a read draws a number from the count too, so the reads are taken off."""
        with self._lock:
            self._reads += 1
            return next(self._count) - self._reads + 1


class _Tallies:
    """The tallies, as counters, when Prometheus scrapes."""

    def __init__(self, *tallies: Tally):
        self.tallies = tallies

    def describe(self):
        return [CounterMetricFamily(tally.name, tally.documentation) for tally in self.tallies]

    def collect(self):
        return [CounterMetricFamily(tally.name, tally.documentation, value=tally.get()) for tally in self.tallies]


# Readers joining (tracker.events): each answered join, and how many entries its answer carried.
JOINS = Tally("tracker_joins", "Joins to a story this process answered with ok (new readers and reconnects)")
CATCHUP_ENTRIES = Histogram("tracker_join_catchup_entries",
                            "Entries sent in a join's answer (0: the reader was up to date)",
                            buckets=(0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000), registry=REGISTRY)

# Broadcasts (tracker.fanout): one increment per event handed to a room's sockets, whatever the number of readers.
EVENT_KINDS = ("entry", "story", "rev", "readers", "draft", "presence")
BROADCASTS = Counter("tracker_broadcasts", "Events this process handed to the sockets of a room, by kind",
                     ["kind"], registry=REGISTRY)
_broadcasts = {kind: BROADCASTS.labels(kind) for kind in (*EVENT_KINDS, "other")}  # a dict lookup on the hot path
PUBLISH_TO_SEND = Histogram(
    "tracker_publish_to_send_seconds",
    "From a change's commit to its broadcast handed to the sockets (with a message queue: to the queue)",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10), registry=REGISTRY)

# Failures that are caught and logged: the database (any driver error but a refused constraint) and the queue.
DATABASE_ERRORS = Counter("tracker_database_errors",
                          "Errors the database raised (by SQLAlchemy class), not counting refused constraints",
                          ["error"], registry=REGISTRY)
# Shown at 0 from the start, so that rate() and sums in alert rules see them before the first error.
for _error in ("OperationalError", "InterfaceError", "ProgrammingError", "InternalError", "DataError", "DatabaseError"):
    DATABASE_ERRORS.labels(_error)
QUEUE_ERRORS = Counter("tracker_message_queue_errors",
                       "Failed publishes to and receives from the message queue, and failed reader-count exchanges",
                       registry=REGISTRY)

# Scheduled updates (services.publish_due, run by tracker.scheduler) and Web Push (tracker.push).
SCHEDULED = Counter("tracker_scheduled_publications", "Scheduled updates this process published",
                    registry=REGISTRY)
SCHEDULED_LATE = Counter("tracker_scheduled_publications_late",
                         "Scheduled updates published more than a few seconds after their time", registry=REGISTRY)
PUSH_SENT = Counter("tracker_push_sent", "Web Push notifications a push service accepted", registry=REGISTRY)
PUSH_FAILED = Counter("tracker_push_failed", "Web Push notifications not delivered, by reason",
                      ["reason"], registry=REGISTRY)
PUSH_REASONS = ("gone", "refused", "unreachable", "error")
for _reason in PUSH_REASONS:
    PUSH_FAILED.labels(_reason)

# HTTP answers by status class (Socket.IO's own requests are answered before Flask and not counted).
QUERIES = Counter("tracker_database_queries", "SQL statements this process sent to its database", registry=REGISTRY)
JOINS_FROM_MEMORY = Tally("tracker_joins_from_memory", "Joins answered from the recent changes kept in memory, "
                          "without the database (tracker.recent)")
# Readers' websocket connects app.py's fast path served without eventlet's HTTP protocol (its door).
DIRECT_CONNECTS = Tally("tracker_websocket_connects_direct",
                        "Websocket connects the fast path served without eventlet's HTTP protocol")
REGISTRY.register(_Tallies(JOINS, JOINS_FROM_MEMORY, DIRECT_CONNECTS))
RESPONSES = Counter("tracker_http_responses", "HTTP responses by status class", ["status"], registry=REGISTRY)
_responses = {n: RESPONSES.labels(f"{n}xx") for n in range(1, 6)}

STORY_LIMIT = 100  # default of METRICS_STORY_LIMIT
QUEUE_PING_SECONDS = 1.0


class _ScrapeTime:
    """Gauges read when Prometheus scrapes: readers per story, and whether the message queue answers.

    tracker_story_readers{story}: this process's connections following each story, for the
    METRICS_STORY_LIMIT stories with the most (sum over processes for a story's total readers).
    A story nobody follows here has no series. tracker_message_queue_up: only with
    SOCKETIO_MESSAGE_QUEUE set; 1 when Redis answered a PING within a second, else 0.
    """

    def describe(self):
        yield GaugeMetricFamily("tracker_story_readers", "", labels=["story"])
        yield GaugeMetricFamily("tracker_message_queue_up", "")

    def collect(self):
        config = current_app.config if has_app_context() else {}
        story_readers = GaugeMetricFamily(
            "tracker_story_readers", "Connections of this process following a story (its biggest stories only)",
            labels=["story"])
        from .readers import local_counts  # readers counts through this module's gauge

        counts = local_counts()
        for slug, count in heapq.nlargest(config.get("METRICS_STORY_LIMIT", STORY_LIMIT), counts.items(),
                                          key=lambda item: item[1]):
            story_readers.add_metric([slug], count)
        yield story_readers
        queue = config.get("SOCKETIO_MESSAGE_QUEUE")
        if queue:
            yield GaugeMetricFamily("tracker_message_queue_up",
                                    "1 when the configured message queue answers a PING within a second, else 0",
                                    value=1 if queue_answers(queue) else 0)


def queue_answers(url: str) -> bool:
    """Does the message queue at `url` answer a PING now (no retries: a scrape must not hang)?"""
    if not url.startswith(("redis://", "rediss://", "unix://")):
        return True  # a queue this module cannot ask (kombu): not claimed down
    client = redis.Redis.from_url(url, socket_connect_timeout=QUEUE_PING_SECONDS, socket_timeout=QUEUE_PING_SECONDS,
                                  retry=Retry(NoBackoff(), 0))
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


REGISTRY.register(_ScrapeTime())


class _Crew:
    """The fast path's kept green threads (app.py's crew), counted when Prometheus scrapes: the crew
    counts in plain attributes, as a counter's lock per task would cost more than the task's switch."""

    crew = None  # app.py's, once the fast path is installed (watch_crew)

    def describe(self):
        yield CounterMetricFamily("tracker_crew_tasks", "")
        yield CounterMetricFamily("tracker_crew_threads_started", "")

    def collect(self):
        crew = self.crew
        yield CounterMetricFamily("tracker_crew_tasks", "Short tasks (a request, a read, an event handler, a ping) "
                                  "the fast path ran on kept green threads", value=crew.tasks if crew else 0)
        yield CounterMetricFamily("tracker_crew_threads_started",
                                  "Green threads the fast path started for those tasks (the rest reused one)",
                                  value=crew.started if crew else 0)


_crew = _Crew()
REGISTRY.register(_crew)


def watch_crew(crew) -> None:
    """Report `crew`'s counts (tasks, started) from now on."""
    _crew.crew = crew


# Where errors are counted without touching each place that catches them

@event.listens_for(Engine, "handle_error")
def _database_error(context) -> None:
    """Count every error a database statement or connection raised, as SQLAlchemy classes it; a refused
    constraint (a duplicate slug) is the app working, and a pooled connection found dead by the pre-ping is
    replaced at once."""
    error = context.sqlalchemy_exception
    if context.is_pre_ping or error is None or isinstance(error, exc.IntegrityError):
        return
    DATABASE_ERRORS.labels(type(error).__name__).inc()


class _QueueErrorCount(logging.Filter):
    """python-socketio's Redis manager logs every failed publish and receive with a `redis_exception` field
    (and retries on its own): count those records."""

    def filter(self, record: logging.LogRecord) -> bool:
        if hasattr(record, "redis_exception"):
            QUEUE_ERRORS.inc()
        return True


logging.getLogger("socketio.server").addFilter(_QueueErrorCount())


def init_app(app: Flask) -> None:
    """Count each HTTP response by status class."""

    @app.after_request
    def count_response(response):
        counter = _responses.get(response.status_code // 100)
        if counter is not None:
            counter.inc()
        return response


def broadcast(kind: str) -> None:
    """Count one event handed to a room's sockets (tracker.fanout, once per broadcast)."""
    (_broadcasts.get(kind) or _broadcasts["other"]).inc()


@event.listens_for(Engine, "before_cursor_execute")
def _count_query(*_):
    QUERIES.inc()


def join_answered(answer: dict) -> None:
    """Count a join answered with ok, and the entries its answer carried."""
    if answer.get("ok"):
        JOINS.inc()
        CATCHUP_ENTRIES.observe(len(answer.get("entries", ())))


def _allowed() -> bool:
    token = current_app.config["METRICS_TOKEN"]
    if token:
        sent = request.headers.get("Authorization", "")
        return hmac.compare_digest(sent.encode(), f"Bearer {token}".encode())
    return request.remote_addr in current_app.config["METRICS_ADDRESSES"]


@bp.get("/metrics")
def metrics():
    """Every counter of this process (each process of a deployment has its own), for its scraper only."""
    if not _allowed():
        abort(404)  # as if there were nothing here
    return Response(generate_latest(REGISTRY), mimetype=CONTENT_TYPE_LATEST)
