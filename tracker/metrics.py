"""Counters of this process for operators and tests: GET /metrics in Prometheus' text format.

The fast path (tracker.fanout, app.py) counts what it does here, so a test or a dashboard can
tell that broadcasts really go out directly and pings really come from the hub timer.
"""
from flask import Blueprint, Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Summary, generate_latest

bp = Blueprint("metrics", __name__)

FAST_PATH = Gauge("tracker_fast_path", "1 when the broadcast fast path and timer pings are installed")
DIRECT_WRITES = Counter("tracker_fanout_direct_writes", "Broadcast frames written straight to an idle websocket")
FALLBACKS = Counter("tracker_fanout_fallbacks", "Broadcast deliveries that took the library's queue instead")
PARTIAL_WRITES = Counter("tracker_fanout_partial_writes",
                         "Direct writes the kernel took only part of (a task sent the rest)")
TIMER_PINGS = Counter("tracker_timer_pings", "Engine.IO pings sent from a hub timer")
READERS = Gauge("tracker_readers", "Connections of this process following a story (set by tracker.readers)")
READERS_TICKS = Summary("tracker_readers_tick_seconds",
                        "Reader-count ticks: counting, sharing through Redis, one readers event per story")


@bp.get("/metrics")
def metrics():
    """Every counter of this process (each process of a deployment has its own)."""
    return Response(generate_latest(), mimetype=CONTENT_TYPE_LATEST)
