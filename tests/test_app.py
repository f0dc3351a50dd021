"""app.py's serving layer: the direct writer, the crew of kept green threads, timer pings, listening from the start."""
import json
import os
import socket
import subprocess
import sys
import threading
import time

import pytest
import websocket
from helpers import ROOT, LiveServer, fresh_database

# The server's socket handling does not touch the database.
pytestmark = pytest.mark.engine_independent


def test_apps_eventlet_parts_on_real_eventlet_objects():
    # In a child process: eventlet's green sockets would hang later browser tests in this one.
    # Without the plugins and conftest.py (browser, Hypothesis...), which it does not use: half the time.
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--noconftest",
                             str(ROOT / "tests" / "eventlet_checks.py")],
                            cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "28 passed" in result.stdout, result.stdout


# Heartbeat with the timer-driven pings, against the real server (1 s interval, 1 s timeout)

@pytest.fixture(scope="module")
def quick_pings(tmp_path_factory, database_engine):
    """One server for both tests: each uses a connection of its own."""
    with fresh_database(tmp_path_factory.mktemp("pings"), database_engine) as url:
        server = LiveServer(url, SOCKETIO_PING_INTERVAL="1", SOCKETIO_PING_TIMEOUT="1")
        server.start()
        yield server
        server.stop()


def engineio_socket(server) -> websocket.WebSocket:
    ws = websocket.create_connection(f"ws://127.0.0.1:{server.port}/socket.io/?EIO=4&transport=websocket",
                                     timeout=10)
    handshake = json.loads(ws.recv()[1:])
    assert (handshake["pingInterval"], handshake["pingTimeout"]) == (1000, 1000)
    ws.send("40")
    assert ws.recv().startswith("40")
    return ws


def test_server_keeps_pinging_a_reader_that_answers(quick_pings):
    ws = engineio_socket(quick_pings)
    timer_pings = quick_pings.metric("tracker_timer_pings_total")
    for _ in range(4):  # each ping is only scheduled after the previous one was answered
        assert ws.recv() == "2"
        ws.send("3")
    # The pings came from the hub timer (app.py), not from a green thread sleeping per reader.
    fast = os.environ.get("FAST_FANOUT", "1") != "0"
    assert quick_pings.metric("tracker_timer_pings_total") - timer_pings >= (4 if fast else 0)
    ws.send('421["leave",{"story":"x"}]')  # still a live Socket.IO connection: it acks
    assert json.loads(ws.recv()[3:]) == [{"ok": True}]
    ws.close()


def test_server_drops_a_reader_that_stops_answering_pings(quick_pings):
    ws = engineio_socket(quick_pings)
    assert ws.recv() == "2"
    # Keep sending (noop packets) but never answer the ping: only the ping timeout can end this.
    ws.settimeout(0.25)
    closed = False
    for _ in range(40):  # 10 s at most; the server should close after about 1 s
        try:
            message = ws.recv()
        except websocket.WebSocketTimeoutException:
            ws.send("6")
            continue
        # The server closes the socket right after its close frame: answering that frame can then
        # meet a reset (BrokenPipeError) instead of a clean end.
        except (websocket.WebSocketConnectionClosedException, BrokenPipeError, ConnectionResetError):
            closed = True
            break
        if message == "":  # a close frame
            closed = True
            break
        assert message == "2"  # nothing but pings arrives before the close
    assert closed


# A restart: the new process listens before it imports the app

def test_a_starting_server_holds_connections_until_it_is_ready(tmp_path, database_engine):
    """A reader that reconnects while a new process starts (a deploy) is not refused into its next
    backoff: the connection is accepted at once and answered when the app is ready."""
    with fresh_database(tmp_path, database_engine) as url:
        server = LiveServer(url)
        starting = threading.Thread(target=server.start)  # returns at "Tracker serving on"
        starting.start()
        try:
            with first_connection(server.port, starting) as sock:
                accepted_at = time.monotonic()
                starting.join(timeout=60)
                ready_at = time.monotonic()
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                answer = sock.makefile("rb").read()
            assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
            # Listening last, the server accepted within a millisecond of saying it serves; importing
            # the app takes half a second or more.
            assert ready_at - accepted_at > 0.1, "accepted only once the app was ready"
        finally:
            starting.join(timeout=60)
            server.stop()


def first_connection(port: int, starting: threading.Thread) -> socket.socket:
    """A connection to the port as soon as anything listens there, tried from the process's first moments."""
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=30)
        except ConnectionRefusedError:
            assert starting.is_alive(), "the server stopped before it listened"
