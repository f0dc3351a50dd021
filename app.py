"""Tracker's entry point: `python app.py` serves with eventlet; `flask --app app ...` runs commands.

All eventlet-specific code lives here, so the async mode can change in one place.
"""
import argparse
import gc
import logging
import os
import resource
import time
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


def _direct_writer(eio_socket, ws, spawn=socketio.start_background_task):
    """A function broadcasts (tracker.fanout) use to write a frame to this connection directly.

    It writes only when the connection's queue is empty and no one else is writing to it or
    waiting to (eventlet's send lock, which every websocket write takes, is free and uncontended),
    and it never blocks:
    if the kernel takes only part of the frame, it keeps the lock and a new task sends the
    rest, so the writer task, later broadcasts and eventlet's own pong and close frames all
    wait behind the tail. So frames never interleave and a slow reader delays only itself.
    Green threads switch only when they block, so nothing runs between the checks and the write.
    """
    fd, lock, queue = ws.socket.fd, ws._sendlock, eio_socket.queue

    def send_rest(rest: bytes) -> None:
        try:
            ws.socket.sendall(rest)
        except OSError:  # gone, or stalled past the socket's timeout: half a frame is out
            lock.release()
            ws.close()  # as engineio's writer does when a send fails; the reader task ends it
            return
        lock.release()

    def direct_send(frame: bytes) -> bool:
        # balance, not locked(): a writer woken by a release holds a packet it took off the
        # queue but has not taken the lock back yet, and its packet must go out first.
        if lock.balance < 1 or not queue.empty() or not eio_socket.upgraded or eio_socket.closed:
            return False
        try:
            sent = fd.send(frame)
        except BlockingIOError:
            sent = 0
        except OSError:
            return False  # the normal path notices the broken connection and closes it
        if sent < len(frame):
            lock.acquire()  # free, checked above: this does not block
            spawn(send_rest, frame[sent:])
        return True

    return direct_send


def _tune_engineio() -> None:
    """Direct writes for broadcasts, and pings timed without a sleeping green thread per reader."""
    from engineio import packet
    from engineio.async_drivers import eventlet as driver
    from engineio.socket import Socket

    class DirectWebSocket(driver.WebSocketWSGI):
        def __init__(self, handler, server):
            eio_socket = handler.__self__  # the Engine.IO socket whose handler this is

            def handle(ws):
                if getattr(eio_socket, "direct_send", None) is not None:
                    return handler(ws)  # a second, concurrent upgrade attempt: leave the first's
                eio_socket.direct_send = _direct_writer(eio_socket, ws)
                try:
                    return handler(ws)
                finally:
                    eio_socket.direct_send = None  # and no cycle keeps the closed socket alive

            super().__init__(handle, server)

    eio = socketio.server.eio
    eio._async = {**eio._async, "websocket": DirectWebSocket}

    # python-engineio waits out each reader's ping interval in a green thread of its own: a
    # third stack per connection (about 9 KB). A hub timer waits for free and starts the green
    # thread only when the ping is due; what it then does is engineio's Socket._send_ping.
    def schedule_ping(self) -> None:
        if self.last_ping:
            self.last_ping = None
            eventlet.spawn_after(self.server.ping_interval, send_ping, self)

    def send_ping(self) -> None:
        if not self.closing and not self.closed:
            self.last_ping = time.time()
            self.send(packet.Packet(packet.PING))

    Socket.schedule_ping = schedule_ping


# eventlet's wsgi server stops accepting at 1024 connections and listens with a backlog of 50;
# a breaking story needs thousands of readers connecting at once.
MAX_CONNECTIONS = int(os.environ.get("MAX_CONNECTIONS", "20000"))
BACKLOG = int(os.environ.get("LISTEN_BACKLOG", "4096"))


def _protocol():
    """eventlet's HTTP protocol with smaller per-connection buffers.

    Each connection keeps a buffered reader and writer for its whole life, and a websocket stops
    using them after the handshake. eventlet's 8 KB + 16 KB cost about 8 KB of resident memory
    per reader; larger reads and writes bypass the buffers anyway, and a header block longer
    than 512 bytes costs only one more read.
    """

    class Protocol(eventlet.wsgi.HttpProtocol):
        rbufsize = 512
        wbufsize = 512

    return Protocol


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
    _tune_engineio()
    # Each reader adds a few hundred objects. With the collector's defaults (a pass every 700
    # allocations, full passes over every object) collection took a quarter of the CPU of a
    # connection storm: keep what startup made out of the passes, and pass less often.
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)
    socketio.start_background_task(rev_beacon, app)
    listener = eventlet.listen((args.host, args.port), backlog=BACKLOG)
    print(f"Tracker serving on http://{args.host}:{args.port}", flush=True)
    # debug=False: an exception that escapes Flask must never send its traceback to the client.
    eventlet.wsgi.server(listener, app, max_size=MAX_CONNECTIONS, protocol=_protocol(), debug=False,
                         log_output=os.environ.get("ACCESS_LOG") == "1")


if SERVING:
    main()
