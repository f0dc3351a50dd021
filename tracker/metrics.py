"""Counters of this process for operators and tests: GET /metrics in Prometheus' text format.

The fast path (tracker.fanout, app.py) counts what it does here, so a test or a dashboard can
tell that broadcasts really go out directly and pings really come from the hub timer. Every name
starts with tracker_ (the process's own CPU and memory too), in a registry of Tracker's own.
Scrapers send `Authorization: Bearer <METRICS_TOKEN>`; without a token set, only the addresses in
METRICS_ADDRESSES may read it.
"""
import hmac

from flask import Blueprint, Response, abort, current_app, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    ProcessCollector,
    Summary,
    generate_latest,
)

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
READERS = Gauge("tracker_readers", "Connections of this process following a story (set by tracker.readers)",
                registry=REGISTRY)
READERS_TICKS = Summary("tracker_readers_tick_seconds",
                        "Reader-count ticks: counting, sharing through Redis, one readers event per story",
                        registry=REGISTRY)


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
