"""Tracker's entry point: `python app.py` serves with eventlet; `flask --app app ...` runs commands.

All eventlet-specific code lives here, so the async mode can change in one place.
"""
import argparse
import logging
import os
import resource
import warnings

SERVING = __name__ == "__main__"
if SERVING:
    # eventlet is in maintenance mode and says so on import; the README covers the plan.
    warnings.filterwarnings("ignore", message="\nEventlet is deprecated")
    # Patch before anything imports socket, threading or ssl.
    import eventlet
    import eventlet.wsgi

    eventlet.monkey_patch()

from tracker import create_app, socketio  # noqa: E402
from tracker.events import rev_beacon  # noqa: E402
from tracker.schema import upgrade_database  # noqa: E402

app = create_app({"ASYNC_MODE": "eventlet"} if SERVING else None)

# eventlet's wsgi server stops accepting at 1024 connections and listens with a backlog of 50;
# a breaking story needs thousands of readers connecting at once.
MAX_CONNECTIONS = int(os.environ.get("MAX_CONNECTIONS", "20000"))
BACKLOG = int(os.environ.get("LISTEN_BACKLOG", "4096"))


def _raise_file_limit() -> None:
    """Every connection is a file descriptor: lift the soft limit to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main() -> None:
    """Serve the app with eventlet on HOST:PORT (or --host/--port)."""
    parser = argparse.ArgumentParser(description="Serve Tracker with eventlet.")
    parser.add_argument("--host", default=app.config["HOST"])
    parser.add_argument("--port", type=int, default=app.config["PORT"])
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    _raise_file_limit()
    with app.app_context():
        upgrade_database()
    socketio.start_background_task(rev_beacon, app)
    listener = eventlet.listen((args.host, args.port), backlog=BACKLOG)
    print(f"Tracker serving on http://{args.host}:{args.port}", flush=True)
    eventlet.wsgi.server(listener, app, max_size=MAX_CONNECTIONS,
                         log_output=os.environ.get("ACCESS_LOG") == "1")


if SERVING:
    main()
