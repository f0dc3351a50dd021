"""Tracker's entry point: `python app.py` serves with eventlet or gevent; `flask --app app ...` runs commands.

All async-specific code lives here, so the async mode can change in one place: ASYNC_MODE
(environment) picks eventlet (the default, with the broadcast fast path) or gevent (the
libraries' own paths); the eventlet parts come first, then gevent's, then main(), shared.
"""
import argparse
import collections
import contextlib
import contextvars
import errno
import functools
import gc
import io
import logging
import os
import resource
import socket
import sys
import time
import warnings
from http import HTTPStatus
from http.client import HTTPMessage
from http.server import BaseHTTPRequestHandler

import greenlet

ASYNC_MODES = ("eventlet", "gevent")
# Read here, not in tracker.config: monkey patching must come before anything imports the app.
ASYNC_MODE = os.environ.get("ASYNC_MODE", "").strip() or "eventlet"
SERVING = __name__ == "__main__"
if SERVING and ASYNC_MODE not in ASYNC_MODES:
    raise SystemExit(f"ASYNC_MODE={ASYNC_MODE!r}: use eventlet (the default) or gevent")
if SERVING:
    # Importing the app makes some 200,000 objects that live as long as the process, and the
    # collector would pass over them again and again meanwhile: a fifth of startup, which a
    # restart's readers wait out. main() freezes them out of its passes and turns it on again;
    # startup's garbage, about 1,200 objects, stays (collecting it would take 0.4 s).
    gc.disable()
# eventlet's wsgi server listens with a backlog of 50; a breaking story needs thousands of readers
# connecting at once, and thousands reconnecting while a new process starts.
BACKLOG = int(os.environ.get("LISTEN_BACKLOG", "4096"))


def _command_line() -> argparse.Namespace:
    """`python app.py`'s options, read before anything heavy is imported."""
    parser = argparse.ArgumentParser(description="Serve Tracker with eventlet, or gevent with ASYNC_MODE=gevent.")
    parser.add_argument("--host", help="the address to listen on (default: HOST, else 127.0.0.1)")
    parser.add_argument("--port", type=int, help="the port to listen on (default: PORT, else 5000)")
    parser.add_argument("--demo", action="store_true", help="Seed the demo story into an empty database (make run).")
    return parser.parse_args()


_PlainSocket = socket.socket  # the standard library's, whether or not the async library has patched it since


def _listen(host: str, port: int) -> socket.socket:
    """A plain listening socket on host:port (IPv6 for an address with a colon), which either async
    mode serves. Without SO_REUSEPORT (eventlet's listen set it): a second process started on the
    port stops with a message instead of silently taking part of the first one's readers."""
    sock = _PlainSocket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        raise SystemExit(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


LOOKUPS = ("getaddrinfo", "gethostbyname", "gethostbyname_ex", "getnameinfo")  # eventlet's green DNS replaces these


def _resolve_in_threads() -> None:
    """Name lookups (the system's resolver, which blocks its thread) in eventlet's thread pool, so a
    slow DNS server holds up only the green thread that asked: a push service's, S3's, Redis's."""
    from eventlet import tpool
    from eventlet.green import socket as green_socket

    for name in LOOKUPS:
        lookup = functools.partial(tpool.execute, getattr(green_socket, name))
        setattr(green_socket, name, lookup)  # its create_connection looks up with it
        setattr(socket, name, lookup)


ARGS = _command_line() if SERVING else None
LISTENER = None
if SERVING:
    # A new process (a deploy, a restart) takes over half a second to import the app. Listening before
    # that, readers that reconnect meanwhile wait in the listen queue and are served once it is
    # ready, instead of being refused into their next backoff (seconds more). That needs the
    # address from the command line or the environment (the systemd unit gives both); else
    # Config's defaults, known once the app is imported.
    _host = ARGS.host if ARGS.host is not None else os.environ.get("HOST")
    _port = str(ARGS.port) if ARGS.port is not None else os.environ.get("PORT", "")
    if _host is not None and _port.isdigit():
        LISTENER = _listen(_host, int(_port))
if SERVING and ASYNC_MODE == "gevent":
    # Patch before anything imports socket, threading or ssl.
    from gevent import monkey

    monkey.patch_all()
    import gevent
    import gevent.event
    import gevent.lock
    import gevent.pywsgi
    import gevent.selectors
    import httptools
elif SERVING:
    # eventlet is in maintenance mode and says so on import; the README covers the plan.
    warnings.filterwarnings("ignore", message="\nEventlet is deprecated")
    # eventlet's green DNS resolver imports dnspython, which monkey_patch then walks for locks: an
    # eighth of startup, which a restart's readers wait out. Lookups run in eventlet's thread pool
    # instead, as with gevent's default resolver (_resolve_in_threads).
    os.environ["EVENTLET_NO_GREENDNS"] = "yes"
    # Patch before anything imports socket, threading or ssl.
    import eventlet
    import eventlet.tpool
    import eventlet.wsgi
    import httptools

    eventlet.monkey_patch()
    _resolve_in_threads()
if SERVING and "aiohttp" not in sys.modules:
    # python-socketio's package imports its asyncio client, whose Engine.IO part imports aiohttp,
    # which builds its TLS contexts as it loads: a tenth of startup. The server never uses that
    # client, which does without aiohttp when it is missing; tracker.push imports it (through
    # pywebpush) when it first sends.
    sys.modules["aiohttp"] = None  # `import aiohttp` raises ImportError
    try:
        import socketio as _socketio  # noqa: F401
    finally:
        del sys.modules["aiohttp"]

from engineio import exceptions as eio_exceptions  # noqa: E402
from engineio import packet as eio_packet  # noqa: E402

from tracker import create_app, demo, fanout, guard, images, logs, metrics, readers, scheduler, schema, socketio  # noqa: E402
from tracker.events import rev_beacon  # noqa: E402

app = create_app({"ASYNC_MODE": ASYNC_MODE} if SERVING else None)
if not SERVING:  # `flask --app app db ...`: Flask-Migrate's commands read its settings (tracker.schema)
    schema.init_app(app)


def _direct_writer(eio_socket, ws, head=b"", spawn=socketio.start_background_task):
    """A function broadcasts (tracker.fanout) use to write a frame to this connection directly,
    and the function it writes with (a parked websocket's queue writes with it too: _Parked).

    It writes only when the connection's queue is empty and no one else is writing to it or
    waiting to (eventlet's send lock, which every websocket write takes, is free and uncontended),
    and it never blocks:
    if the kernel takes only part of the frame, it keeps the lock and a new task sends the
    rest, so the writer task, later broadcasts and eventlet's own pong and close frames all
    wait behind the tail. So frames never interleave and a slow reader delays only itself.
    Green threads switch only when they block, so nothing runs between the checks and the write.
    `head` goes out with the first frame written (the 101 response: DirectWebSocket holds it).
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

    def write(frame: bytes) -> bool:
        """Write without waiting (the send lock is free); False if the connection is broken."""
        nonlocal head
        if head:
            frame, head = head + frame, b""
        try:
            sent = fd.send(frame)
        except BlockingIOError:
            sent = 0
        except OSError:
            return False  # the normal path notices the broken connection and closes it
        if sent < len(frame):
            lock.acquire()  # free, checked by the caller: this does not block
            spawn(send_rest, frame[sent:])
            metrics.PARTIAL_WRITES.inc()
        return True

    def direct_send(frame: bytes) -> bool:
        # balance, not locked(): a writer woken by a release holds a packet it took off the
        # queue but has not taken the lock back yet, and its packet must go out first.
        if lock.balance < 1 or not queue.empty() or not eio_socket.upgraded or eio_socket.closed:
            return False
        return write(frame)

    return direct_send, write


def _uncompressed_websockets() -> None:
    """Websockets without permessage-deflate, as Socket.IO's own server has them by default.

    Every browser offers the extension, and eventlet (as simple-websocket, with gevent: see
    _gevent_websockets) accepted it: each reader's connection then kept a zlib compressor and
    decompressor for its whole life, about 110 KB, six times the rest of a reader, to compress
    frames of a few hundred bytes (broadcasts, framed once for every reader, went out
    uncompressed anyway)."""
    from eventlet.websocket import WebSocketWSGI

    if not callable(getattr(WebSocketWSGI, "_negotiate_permessage_deflate", None)):
        log.warning("websocket compression not declined: eventlet's WebSocketWSGI._negotiate_permessage_deflate "
                    "not found (eventlet changed); each browser's connection keeps a compressor, about 110 KB")
        return
    WebSocketWSGI._negotiate_permessage_deflate = lambda self, extensions: None


def _unmask(data, mask, length=None, offset=0) -> bytes:
    """eventlet's RFC6455WebSocket._apply_mask, as two big integers: eventlet XORs byte by byte in a
    generator, which cost more than the rest of reading a reader's join."""
    if length is None:
        length = len(data)
    turn = offset % 4
    key = (bytes(mask[turn:]) + bytes(mask[:turn])) * (length // 4 + 1)
    return (int.from_bytes(data[:length], "little") ^ int.from_bytes(key[:length], "little")).to_bytes(length, "little")


class _Detached:
    """What eventlet's server finds in place of a parked websocket's socket when the request's green
    thread ends: its cleanup shuts down and closes this, not the connection (_Parked owns that now)."""

    def shutdown(self, how=None) -> None:
        pass

    def close(self) -> None:
        pass


class _ReadAhead:
    """A parked websocket's socket as eventlet's frame reader sees it: one recv takes what has
    arrived, and a frame's header, mask and payload, which eventlet asks for in three reads, come
    from that (as do the frames behind it). Everything else goes to the socket itself."""

    __slots__ = ("sock", "inbox", "waiting")
    SIZE = 4096  # bytes read at once: a join is about 60

    def __init__(self, sock, waiting):
        self.sock, self.inbox, self.waiting = sock, b"", waiting

    def recv(self, count: int) -> bytes:
        if not self.inbox:
            size = max(count, self.SIZE)
            try:
                data = self.sock.fd.recv(size)  # what has arrived, without waiting
            except OSError:  # nothing yet (or an error, which eventlet's recv reports its own way)
                self.waiting()  # eventlet waits on the descriptor only when no one else listens
                data = self.sock.recv(size)
            if len(data) <= count:
                return data
            self.inbox = data[count:]
            return data[:count]
        data, self.inbox = self.inbox[:count], self.inbox[count:]
        return data

    def __getattr__(self, name):
        return getattr(self.sock, name)


class _Crew:
    """Green threads kept between short tasks: the fast path's connections, reads and event handlers.

    Starting a green thread costs eventlet a GreenThread and CPython a frame stack of its own (a
    16 KB mapping, unmapped when the thread ends), and a reader's connect and join started four:
    its request, two reads and the join. Handed to an idle thread of the crew, a task costs a
    switch. Each task runs in a context of its own, as in a new green thread.
    """

    # Idle threads kept for good. A connection storm keeps about one task in flight per connection
    # being opened (a client's or a proxy's burst: the benchmark's is 200; a restart's, thousands),
    # and ending the threads idle beyond this at once made a 2,000-connection burst start them
    # again and again: a tenth of its CPU. So a burst's extra threads stay idle until TRIM_SECONDS
    # after they were first over KEEP, and then end. Idle, each holds its saved stacks, about 6 KB.
    KEEP = 512
    TRIM_SECONDS = 10.0

    def __init__(self, hub):
        self.hub, self.idle, self.ready, self.due, self.trim_due, self.tasks, self.started = (
            hub, [], collections.deque(), False, False, 0, 0)

    def spawn(self, function, *args) -> None:
        """Run function(*args) on a thread of the crew, soon, as eventlet.spawn_n would on a new one."""
        worker = self.idle.pop() if self.idle else None
        if worker is None or worker.dead:  # dead: ended by an exception thrown into it while idle
            worker, self.started = greenlet.greenlet(self._work, self.hub.greenlet), self.started + 1
        self.tasks += 1
        self.ready.append((worker, function, args))
        if not self.due:  # one hub timer for all the tasks handed over until it runs, not one each
            self.due = True
            self.hub.schedule_call_global(0, self._start_ready)

    def _start_ready(self) -> None:
        """In the hub: start the tasks handed over since the last time, in order. Those they hand
        over in turn wait for the next time, after the hub has polled, as with eventlet's timers."""
        self.due, ready = False, self.ready
        try:
            for _ in range(len(ready)):
                worker, function, args = ready.popleft()
                worker.switch(function, args)
        finally:  # a thread that ended with an exception raises it here: the others still start
            if ready and not self.due:
                self.due = True
                self.hub.schedule_call_global(0, self._start_ready)

    def _work(self, function, args) -> None:
        me = greenlet.getcurrent()
        while True:
            try:
                contextvars.Context().run(function, *args)
            except Exception:  # reported, as eventlet's hub reports a green thread's; the thread goes on
                log.exception("unexpected error in a task")
            function = args = None  # nothing of the last task kept alive while idle
            if len(self.idle) >= self.KEEP and not self.trim_due:
                self.trim_due = True
                self.hub.schedule_call_global(self.TRIM_SECONDS, self._trim)
            self.idle.append(me)
            function, args = self.hub.switch()

    def _trim(self) -> None:
        """In the hub: end the idle threads beyond KEEP, those idle longest first."""
        self.trim_due = False
        surplus = len(self.idle) - self.KEEP
        if surplus > 0:
            ended, self.idle[:surplus] = self.idle[:surplus], []
            for worker in ended:
                if not worker.dead:
                    worker.throw()  # GreenletExit where it waits for a task: it ends, and the hub goes on here


class _CrewThread:
    """Engine.IO's background task (its async driver's `thread`), run by the crew."""

    __slots__ = ("target", "args", "kwargs", "finished")

    def __init__(self, target, args=None, kwargs=None):
        self.target, self.args, self.kwargs, self.finished = target, args or (), kwargs or {}, None

    def start(self) -> None:
        CREW.spawn(self._run)

    def _run(self) -> None:
        try:
            self.target(*self.args, **self.kwargs)
        finally:
            finished, self.finished = self.finished, True
            if finished is not None:
                finished.send()

    def join(self) -> None:
        if self.finished is None:
            self.finished = eventlet.Event()
        if self.finished is not True:
            self.finished.wait()


class _Served:
    """A connection's task in _CrewPool, as eventlet's server sees it: it links its cleanup to it."""

    __slots__ = ("links",)

    def __init__(self):
        self.links = []

    def link(self, function, *args) -> None:
        self.links.append((function, args))


class _CrewPool:
    """eventlet's server's pool of connections (its custom_pool), each served by the crew. A parked
    websocket keeps its place in `sem` until it closes (_tune_engineio)."""

    door = None  # what serves a reader's websocket connect without eventlet's protocol (_Door)

    def __init__(self, size: int):
        self.sem, self.running, self.emptied = eventlet.semaphore.Semaphore(size), 0, None

    def spawn(self, function, *args) -> _Served:
        self.sem.acquire()
        self.running += 1
        served = _Served()
        CREW.spawn(self._serve, served, function, args)
        return served

    def _serve(self, served: _Served, function, args) -> None:
        try:
            if self.door is None or not self.door(*args):
                function(*args)
        finally:
            self.sem.release()
            self.running -= 1
            for link, link_args in served.links:
                link(served, *link_args)
            if not self.running and self.emptied is not None:
                self.emptied.send()
                self.emptied = None

    def waitall(self) -> None:
        """Wait for the connections being served (eventlet's server, when it stops accepting)."""
        if self.running:
            self.emptied = self.emptied or eventlet.Event()
            self.emptied.wait()


CREW = _Crew(eventlet.hubs.get_hub()) if SERVING and ASYNC_MODE == "eventlet" else None


class _Parked:
    """A websocket the hub serves while it is idle, with no green thread of its own.

    Engine.IO's websocket handler keeps two green threads for a connection's whole life, a reader
    blocked in recv and a writer blocked on the queue, and each holds its stack: most of a
    reader's memory. Parked, the connection has neither. The hub calls `readable` when the
    reader sends something, and a task reads and handles it. A packet put on the queue is
    written at once if the kernel takes it; a task writes only what it does not take, and what
    is queued behind that (broadcasts skip the queue: _direct_writer). Each task does what
    Engine.IO's reader or writer loop does (Socket._websocket_handler), and ends. A reader
    silent past the ping timeout is closed by Engine.IO's service task; a frame that stops
    halfway, by the socket's timeout in the reading task.
    """

    __slots__ = ("eio", "ws", "write_now", "release", "lock", "hub", "fileno", "listener", "reading", "writing",
                 "ended")
    open = 0  # parked now (tracker_parked_websockets): one OS thread counts, so a plain int

    def __init__(self, eio_socket, ws, write, release):
        self.eio, self.ws, self.write_now, self.release, self.lock = eio_socket, ws, write, release, ws._sendlock
        self.hub, self.fileno, self.listener, self.reading, self.writing, self.ended = (
            eventlet.hubs.get_hub(), ws.socket.fileno(), None, False, False, False)
        ws.socket = _ReadAhead(ws.socket, self.unlisten)
        eio_socket.queue.wake, eio_socket.queue.send_now = self.write_soon, self.send_now
        _Parked.open += 1
        self.listen()
        if eio_socket.queue.empty():  # Engine.IO queues its open packet first; else the 101 response alone
            write(b"")
        else:
            self.write_soon()

    def listen(self) -> None:
        self.listener = self.hub.add(self.hub.READ, self.fileno, self.readable, self.closed_under, lambda: None)

    def unlisten(self) -> None:
        if self.listener is not None:
            self.hub.remove(self.listener)
            self.listener = None

    def readable(self, _fileno) -> None:
        """In the hub: something arrived, and a task reads it. The hub listens on meanwhile: the task
        takes what has arrived before the hub next polls, and each stop and start of listening is
        a system call (two per packet, most of the hub's work for a reader's connect and join)."""
        if self.reading:  # the task waits for something else and has not read this yet: the hub
            self.unlisten()  # would wake for it at each poll until then (epoll is level-triggered)
            return
        self.reading = True
        CREW.spawn(self.read)

    def closed_under(self, _exc) -> None:
        """In the hub: the descriptor was closed and reused under the listener."""
        self.listener = None
        CREW.spawn(self.end)

    def read(self) -> None:
        """Handle each packet that has arrived; listen again when nothing more is buffered."""
        eio = self.eio
        try:
            while not self.ended:
                data = self.ws.wait()
                if data is None or len(data) > eio.server.max_http_buffer_size:
                    break  # closed by the reader, or Engine.IO's "packet is too large"
                pkt = eio_packet.Packet(encoded_packet=data)
                try:
                    eio.receive(pkt)
                except eio_exceptions.UnknownPacketError:
                    pass
                except eio_exceptions.SocketIsClosedError:
                    break
                except Exception:  # as Engine.IO's handler: a bug here, logged, and the connection ends
                    log.exception("%s: unexpected error handling a websocket packet; closing it", eio.sid)
                    break
                if eio.closed:
                    break
                if not self.ws.socket.inbox:  # what else has arrived wakes the hub again
                    self.reading = False
                    if self.listener is None:
                        self.listen()
                    return
        except (OSError, ValueError):
            pass  # gone, a frame stalled past the socket's timeout, or not Engine.IO (tracker.guard off)
        except Exception:  # a bug here: logged, and the connection ends (and lets go of its slot)
            log.exception("%s: unexpected error reading a websocket; closing it", eio.sid)
        self.end()

    def send_now(self, pkt) -> bool:
        """A packet with nothing queued before it: written now, as write_soon would write it once
        queued (the queue's hand-off was a third of sending it); False to queue it instead."""
        if self.writing or self.lock.balance < 1 or pkt is None:
            return False  # behind a tail being sent, or the end: the queue keeps the order
        if not self.write_now(self.ws._pack_message(pkt.encode())):
            CREW.spawn(self.end)  # broken
        return True

    def write_soon(self) -> None:
        """A packet was queued: write what is queued now, as far as the kernel takes it without
        waiting; then a task writes the rest, in order, as Engine.IO's writer would."""
        queue = self.eio.queue
        while not self.writing:
            if self.lock.balance < 1:  # a frame's tail is being sent: what is queued waits behind it
                self.writing = True
                CREW.spawn(self.write)
                return
            try:
                pkt = queue.get(block=False)
            except eventlet.queue.Empty:
                return
            queue.task_done()
            if pkt is None or not self.write_now(self.ws._pack_message(pkt.encode())):
                CREW.spawn(self.end)  # closed by Engine.IO, or broken
                return

    def write(self) -> None:
        """Send what is queued; the None Engine.IO queues when the socket closes ends the connection."""
        queue = self.eio.queue
        try:
            while True:
                try:
                    pkt = queue.get(block=False)
                except eventlet.queue.Empty:
                    self.writing = False
                    return
                queue.task_done()
                if pkt is None:
                    break
                self.ws.send(pkt.encode())
        except OSError:
            pass  # gone, or stalled past the socket's timeout
        self.end()

    def end(self) -> None:
        """Close the connection, as Engine.IO's handler does when its reader loop ends."""
        if self.ended:
            return
        self.ended, self.eio.queue.wake, self.eio.queue.send_now = True, None, None
        self.unlisten()
        try:
            if not self.eio.closed:
                self.eio.close(wait=False, abort=True, reason=self.eio.server.reason.TRANSPORT_CLOSE)
            if not self.ws.websocket_closed:  # else eventlet closed it, answering the reader's closing frame
                self.ws.close()
        finally:
            self.eio.direct_send = self.eio.hangup = None  # and no cycle keeps the closed socket alive
            _Parked.open -= 1
            self.release()


def _tune_engineio(pool, book) -> None:
    """Parked websockets, direct writes for broadcasts, pings timed without a green thread per reader,
    and the crew's kept green threads for the short tasks (engineio's, and the pool's: `pool`).

    A websocket-only connection is parked (_Parked) while `pool`, eventlet's server's pool of
    connections, has room: it keeps its place there until it ends, and tells `book` then."""
    from engineio.async_drivers import eventlet as driver
    from engineio.socket import Socket
    from eventlet.websocket import RFC6455WebSocket

    class Outbox(eventlet.queue.Queue):
        """An Engine.IO socket's queue. A parked websocket writes a packet with nothing queued
        before it at once (send_now), and writes what is queued when woken (wake)."""

        wake = send_now = None

        def put(self, item, block=True, timeout=None):
            if self.send_now is not None and not self.queue and self.send_now(item):
                return
            super().put(item, block, timeout)
            if self.wake is not None:
                self.wake()

    def park(eio_socket, ws, write) -> bool:
        """Serve the websocket from the hub from now on (Engine.IO's handler, minus its loops)."""
        if eio_socket.connected or not pool.sem.acquire(blocking=False):
            return False  # an upgrade from polling (rare), or the pool is full: Engine.IO's handler
        address = ws.environ.get("REMOTE_ADDR", "")

        def release():
            pool.sem.release()
            if book is not None:
                book.closed(address)

        eio_socket.connected = eio_socket.upgraded = True
        ws.socket.settimeout(eio_socket.server.ping_interval + eio_socket.server.ping_timeout)
        ws.socket.tracker_parked = True  # the connection outlives its request's green thread (_protocol)
        ws.websocket_closed = True  # until eventlet's handler has returned (DirectWebSocket.__call__)
        _Parked(eio_socket, ws, write, release)
        return True

    class DirectWebSocket(driver.WebSocketWSGI):
        def __init__(self, handler, server):
            eio_socket = handler.__self__  # the Engine.IO socket whose handler this is
            self.parked = self.head = None

            def handle(ws):
                head, self.head = self.head, None
                if getattr(eio_socket, "direct_send", None) is not None:
                    ws.socket.sendall(head or b"")
                    return handler(ws)  # a second, concurrent upgrade attempt: leave the first's
                eio_socket.direct_send, write = _direct_writer(eio_socket, ws, head, CREW.spawn)
                # The guards' way to end a connection now: its reader and any writer wake up.
                eio_socket.hangup = functools.partial(eventlet.greenio.shutdown_safe, ws.socket)
                if park(eio_socket, ws, write):
                    self.parked = ws
                    return None
                write(b"")  # the held 101 response, before Engine.IO's handler writes anything
                try:
                    return handler(ws)
                finally:
                    # and no cycle keeps the closed socket alive
                    eio_socket.direct_send = eio_socket.hangup = None

            super().__init__(handle, server)

        def _handle_hybi_request(self, environ):
            # eventlet sends its 101 response here; held, it leaves with the Engine.IO open packet
            # that Engine.IO has queued: one write and one wakeup of the reader instead of two.
            sock = environ["eventlet.input"].get_socket()
            sock.sendall = self._hold
            try:
                return super()._handle_hybi_request(environ)
            finally:
                del sock.sendall

        def _hold(self, data: bytes) -> None:
            self.head = (self.head or b"") + data

        def __call__(self, environ, start_response):
            try:
                return super().__call__(environ, start_response)
            finally:
                if self.parked is not None:  # eventlet did not send a closing frame: _Parked will
                    self.parked.websocket_closed = False

    eio = socketio.server.eio
    eio._async = {**eio._async, "websocket": DirectWebSocket, "queue": Outbox, "thread": _CrewThread}
    # Handle each packet in the task that read it: Engine.IO would start another for each. Events
    # still get a task each from python-socketio, so a connection's reading never waits for a
    # handler, and one that sends a burst meets the packet limit at once (tracker.guard).
    eio.async_handlers = False

    # python-engineio waits out each reader's ping interval in a green thread of its own: a
    # third stack per connection (about 9 KB). A hub timer waits for free and hands the ping to
    # the crew when it is due; what it then does is engineio's Socket._send_ping.
    def schedule_ping(self) -> None:
        if self.last_ping:
            self.last_ping = None
            CREW.hub.schedule_call_global(self.server.ping_interval, CREW.spawn, send_ping, self)

    def send_ping(self) -> None:
        if not self.closing and not self.closed:
            self.last_ping = time.time()
            self.send(eio_packet.Packet(eio_packet.PING))
            metrics.TIMER_PINGS.inc()

    Socket.schedule_ping = schedule_ping
    metrics.watch_crew(CREW)
    metrics.PARKED.set_function(lambda: _Parked.open)
    RFC6455WebSocket._apply_mask = staticmethod(_unmask)
    fanout.enabled = True
    metrics.FAST_PATH.set(1)


def _fast_path_missing() -> list[str]:
    """The internals of python-engineio, python-socketio and eventlet the fast path relies on and can't find.

    An upgrade can rename any of them; checked on real objects at startup, so that a missing one
    turns the fast path off with a warning instead of breaking or silently bypassing it.
    """
    from engineio.async_drivers import eventlet as driver
    from engineio.socket import Socket
    from eventlet.green import socket as green
    from eventlet.websocket import RFC6455WebSocket

    server = socketio.server
    missing = [name for name, there in [
        ("engineio Server._async['websocket'/'queue']",
         {"websocket", "queue"} <= set(getattr(server.eio, "_async", {}))),
        ("engineio Server.async_handlers/reason.TRANSPORT_CLOSE", hasattr(server.eio, "async_handlers")
         and hasattr(getattr(server.eio, "reason", None), "TRANSPORT_CLOSE")),
        ("engineio's eventlet WebSocketWSGI", isinstance(getattr(driver, "WebSocketWSGI", None), type)),
        ("engineio Socket.schedule_ping", callable(getattr(Socket, "schedule_ping", None))),
        ("socketio Server._send_eio_packet", callable(getattr(server, "_send_eio_packet", None))),
        ("socketio Manager.get_participants", callable(getattr(server.manager, "get_participants", None))),
        ("eventlet HttpProtocol.rbufsize", hasattr(eventlet.wsgi.HttpProtocol, "rbufsize")),
        ("eventlet RFC6455WebSocket._apply_mask", callable(getattr(RFC6455WebSocket, "_apply_mask", None))),
        ("eventlet WebSocketWSGI._handle_hybi_request", callable(getattr(driver.WebSocketWSGI, "_handle_hybi_request",
                                                                          None))),
        ("eventlet Queue.queue (a deque)", isinstance(getattr(eventlet.queue.Queue(), "queue", None),
                                                       collections.deque)),
        ("eventlet hub add/remove/READ/schedule_call_global/greenlet", all(
            hasattr(eventlet.hubs.get_hub(), n) for n in ("add", "remove", "READ", "schedule_call_global",
                                                          "greenlet"))),
    ] if not there]
    near, far = green.socketpair()
    try:
        ws, eio_socket = RFC6455WebSocket(near, {}), Socket(server.eio, "shape-check")
        missing += [name for name, there in [
            ("eventlet WebSocket._sendlock.balance", hasattr(getattr(ws, "_sendlock", None), "balance")),
            ("eventlet WebSocket.socket.fd", hasattr(getattr(ws, "socket", None), "fd")),
            *((f"eventlet WebSocket.{name}", hasattr(ws, name))
              for name in ("websocket_closed", "environ", "wait", "_pack_message")),
            *((f"engineio Socket.{name}", hasattr(eio_socket, name))
              for name in ("queue", "connected", "upgraded", "closed", "closing", "last_ping", "server")),
        ] if not there]
    finally:
        near.close()
        far.close()
    return missing


def _eventlet_fast_path(size: int, book):
    """Install the fast path, unless FAST_FANOUT=0 or a library internal it relies on is missing;
    answers the pool of `size` connections eventlet's server is to use."""
    missing = _fast_path_missing()
    if missing:
        log.warning("broadcast fast path off: %s not found (python-engineio, python-socketio or eventlet "
                    "changed); serving on the libraries' own paths, correctly but slower", ", ".join(missing))
    elif not app.config["FAST_FANOUT"]:
        log.info("broadcast fast path off (FAST_FANOUT=0)")
    else:
        pool = _CrewPool(size)
        _tune_engineio(pool, book)
        if os.environ.get("ACCESS_LOG") != "1":  # eventlet's protocol writes the access lines
            pool.door = _Door(book, app.config["HEADER_TIMEOUT"], app.config["SOCKET_TIMEOUT"])
        return pool
    return eventlet.GreenPool(size)


# eventlet's wsgi server stops accepting at 1024 connections; a breaking story needs thousands.
MAX_CONNECTIONS = int(os.environ.get("MAX_CONNECTIONS", "20000"))
# File descriptors kept for everything but client connections: the database, Redis, logs.
SPARE_FILES = 256
# Errors of accept() that mean "out of file descriptors or memory for now", not "stop serving".
ACCEPT_PAUSES = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}
log = logging.getLogger("tracker.server")


def _accept_failed(exc: OSError, paused_at: float) -> float:
    """An accept that failed for want of descriptors or memory (anything else is raised): said once a
    minute at most; answers when it was last said."""
    if exc.errno not in ACCEPT_PAUSES:
        raise exc
    if time.monotonic() - paused_at <= 60:
        return paused_at
    log.error("cannot accept connections: %s; pausing accepts briefly (lower "
              "MAX_CONNECTIONS or MAX_CONNECTIONS_PER_ADDRESS, or raise the file limit)", exc)
    return time.monotonic()


# Header lines, the blank one that ends them included, as http.client counts them (gevent's parser
# is http.client's): a request with more is refused (431).
MAX_HEADERS = 100
MAX_HEADER_LINE = 8192  # as eventlet's server: a longer header line is refused (400)


class _Headers(HTTPMessage):
    """A request's headers as http.server keeps them, looked up by lower-cased name in a dict: an
    HTTPMessage lower-cases every header it holds at each lookup, and eventlet's server and
    websocket look a reader's request up a dozen times. Values are what HTTPMessage answers for a
    head decoded as latin-1 (its policy hands such strings back unchanged)."""

    # What eventlet's environ falls back on without a Content-Type header, as HTTPMessage's
    # get_content_type() would answer; eventlet tries this attribute first, and the miss raised.
    type = "text/plain"

    def __init__(self):
        super().__init__()
        self._first = {}

    def __setitem__(self, name: str, value: str) -> None:
        self._headers.append((name, value))
        self._first.setdefault(name.lower(), value)

    def __delitem__(self, name: str) -> None:
        super().__delitem__(name)
        self._first = {}
        for key, value in self._headers:
            self._first.setdefault(key.lower(), value)

    def __contains__(self, name: str) -> bool:
        return name.lower() in self._first

    def get(self, name: str, failobj=None):
        return self._first.get(name.lower(), failobj)

    def get_all(self, name: str, failobj=None):
        name = name.lower()
        if name not in self._first:
            return failobj
        return [value for key, value in self._headers if key.lower() == name]


class _Head:
    """What httptools reads of a request: its target and its headers, as http.server keeps them."""

    def __init__(self):
        self.url, self.headers, self.complete = b"", _Headers(), False

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode("latin-1")] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self.complete = True


class _Refused(ValueError):
    """A request head refused before the app sees it: the status to answer, and why (the body)."""

    def __init__(self, status: HTTPStatus, reason: str):
        super().__init__(reason)
        self.status, self.reason = status, reason


def _read_head(first_line: bytes, readline):
    """A request's head read by httptools (llhttp, Node's parser), from its first line on, each further
    line from `readline`: (what it read, the parser, the head's bytes), or None if the client left
    halfway through. Raises _Refused for what llhttp refuses (a malformed line, two Content-Lengths...),
    for more than MAX_HEADERS header lines, for a version other than HTTP/1.0 and 1.1, and for a
    transfer coding other than chunked alone. Both async modes read heads with it: gevent's own
    parser takes a malformed line and two Content-Lengths."""
    lines = [first_line]
    while lines[-1] not in (b"\r\n", b"\n", b""):
        if len(lines) > MAX_HEADERS:  # the request line and MAX_HEADERS - 1 headers, not yet ended
            raise _Refused(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Too many headers")
        lines.append(readline())
    data = b"".join(lines)
    parsed = _parse_head(data)
    return None if parsed is None else (*parsed, data)


def _parse_head(data: bytes):
    """A whole request head parsed as _read_head does: (what httptools read, the parser), or None if
    it did not end; raises _Refused as _read_head does, but for the number of its lines."""
    head = _Head()
    parser = httptools.HttpRequestParser(head)
    try:
        parser.feed_data(data)
    except httptools.HttpParserUpgrade:
        pass  # the headers are complete; what follows belongs to the websocket
    except httptools.HttpParserError:
        raise _Refused(HTTPStatus.BAD_REQUEST, "Bad request") from None
    if not head.complete:
        return None
    version = parser.get_http_version()
    if version not in ("1.0", "1.1"):
        raise _Refused(HTTPStatus.HTTP_VERSION_NOT_SUPPORTED, f"Invalid HTTP version ({version})")
    # Both servers read a body as chunked only when that is the whole header, where llhttp (and a
    # proxy in front) may read "gzip, chunked" as chunked: the two would disagree on where the
    # body ends. No client of Tracker's sends another coding.
    codings = head.headers.get_all("Transfer-Encoding")
    if codings and [coding.strip().lower() for coding in codings] != ["chunked"]:
        raise _Refused(HTTPStatus.NOT_IMPLEMENTED, "Transfer-Encoding other than chunked")
    return head, parser


def _protocol(book, header_timeout: int):
    """eventlet's HTTP protocol with small buffers, a deadline for headers, and per-address counts.

    Each connection keeps a buffered reader and writer for its whole life, and a websocket stops
    using them after the handshake. eventlet's 8 KB + 16 KB cost about 8 KB of resident memory
    per reader; larger reads and writes bypass the buffers anyway, and a header block longer
    than 512 bytes costs only one more read. Requests are read by httptools (llhttp, Node's
    parser), not by http.server's email parser, which took 7 % of the CPU of connecting a
    reader. A connection must send each request's line and
    headers within `header_timeout` (idle keep-alive included), or it is closed; `book` (when
    not None) counted the connection at accept, and is told when it closes.
    """

    class Protocol(eventlet.wsgi.HttpProtocol):
        rbufsize = 512
        wbufsize = 512

        def handle_one_request(self):
            # A connection the door (_Door) waited on has what is left of its deadline.
            since = self.connection.__dict__.pop("tracker_head_since", None)
            self.deadline = deadline = eventlet.Timeout(
                header_timeout if since is None else max(0.0, header_timeout - (time.monotonic() - since)))
            try:
                super().handle_one_request()
            except eventlet.Timeout as timeout:
                if timeout is not deadline:
                    raise
                self.close_connection = 1
            finally:
                deadline.cancel()

        def parse_request(self):
            try:
                return self.parse_head()
            finally:
                # The headers are in: the request may now take its time. Not kept: a websocket's
                # handler lives as long as the reader.
                self.deadline.cancel()
                self.deadline = None

        def parse_head(self) -> bool:
            """http.server's parse_request, with httptools reading the request line and headers."""
            # Until the request line is read: an error is answered with a status line (http.server's
            # default, HTTP/0.9, has none), and logged with what the client sent.
            self.command, self.request_version, self.close_connection = None, "HTTP/1.1", True
            self.requestline = self.raw_requestline.decode("latin-1").rstrip("\r\n")
            try:  # eventlet's reader (FileObjectForHeaders) limits each line and the whole block
                read = _read_head(self.raw_requestline, self.rfile.readline)
            except _Refused as refused:
                self.send_error(refused.status, refused.reason)
                return False
            if read is None:  # the client left halfway through its headers
                self.close_connection = True
                return False
            head, parser, _ = read
            self.command, self.path = parser.get_method().decode("latin-1"), head.url.decode("latin-1")
            self.request_version, self.headers = f"HTTP/{parser.get_http_version()}", head.headers
            if self.path.startswith("//"):
                self.path = "/" + self.path.lstrip("/")  # as http.server: one leading slash
            self.close_connection = not (parser.should_keep_alive() and self.protocol_version >= "HTTP/1.1")
            if head.headers.get("Expect", "").lower() == "100-continue" and self.request_version == "HTTP/1.1":
                return self.handle_expect_100()
            return True

        def finish(self):
            if getattr(self.connection, "tracker_parked", False):
                # The websocket lives on (_Parked): eventlet's server must not close its socket, and
                # it is counted until it ends.
                self.conn_state[1] = _Detached()
                BaseHTTPRequestHandler.finish(self)
                return
            try:
                super().finish()
            finally:
                if book is not None:
                    book.closed(self.client_address[0])

    return Protocol


class _Door:
    """A reader's websocket connect served without eventlet's HTTP protocol, as that protocol would serve it.

    Nearly every connection of a connection storm is a reader's Engine.IO websocket: a GET of
    /socket.io/ asking for an upgrade, with no body. eventlet's protocol gave each a buffered
    reader and writer, read its head line by line, and wrapped a WSGI call around the upgrade:
    an eighth of the CPU of a reader connecting and joining. The door peeks at what a connection
    sent first. A complete head of such a request, within the limits eventlet's protocol sets
    and read by the same parser (httptools), is taken off the socket and handed to the app
    with the environ eventlet's protocol would have made; anything else stays unread, and
    eventlet's protocol serves it as before. Called with eventlet's server's connection state
    ([address, socket, state]); answers whether it served the connection.
    """

    PEEK = 4096  # a reader's head is about 200 bytes (a browser's, with cookies, about 1 KB)
    START = b"GET /socket.io/?"

    def __init__(self, book, header_timeout: int, socket_timeout: int):
        self.book, self.header_timeout, self.socket_timeout = book, header_timeout, socket_timeout

    def __call__(self, connection: list) -> bool:
        address, conn = connection[0], connection[1]
        conn.settimeout(self.header_timeout)
        since = time.monotonic()
        try:
            first = conn.recv(self.PEEK, socket.MSG_PEEK)
        except OSError:  # silent past the header timeout, or gone: closed, as eventlet's protocol would
            first = b""
        if not first:
            self._closed(address[0])
            return True
        read = self._head(first)
        conn.settimeout(self.socket_timeout)
        if read is None:
            conn.tracker_head_since = since  # eventlet's protocol reads it, by the same deadline
            return False
        length, target, headers = read
        try:
            conn.recv(length)  # the head, which has arrived: the websocket's frames follow it
            environ = self._environ(conn, address, target, headers)
        except OSError:  # the reader left meanwhile
            self._closed(address[0])
            return True
        metrics.DIRECT_CONNECTS.inc()
        self._serve(connection, environ)
        return True

    def _head(self, first: bytes):
        """The head's length, target and headers, of a websocket connect whose head has all arrived; else None."""
        end = first.find(b"\r\n\r\n")
        if end < 0 or not first.startswith(self.START):
            return None
        data = first[:end + 4]
        lines = data.count(b"\r\n")  # so the first blank line is the one found, as _read_head would
        if lines != data.count(b"\n") or lines > MAX_HEADERS + 1:
            return None  # a bare line feed, or more lines than _read_head takes
        try:
            parsed = _parse_head(data)  # as eventlet's protocol parses a head
        except _Refused:
            return None  # eventlet's protocol refuses it, with the status it deserves
        if parsed is None:
            return None
        head, parser = parsed
        headers = head.headers
        if (not parser.should_upgrade() or parser.get_http_version() != "1.1"
                or "content-length" in headers or "transfer-encoding" in headers):
            return None
        return len(data), head.url.decode("latin-1"), headers

    def _environ(self, conn, address, target: str, headers) -> dict:
        """The environ eventlet's protocol makes (HttpProtocol.get_environ), for a GET with no body."""
        path, _, query = target.partition("?")
        local = conn.getsockname()
        environ = {
            "wsgi.errors": sys.stderr, "wsgi.version": (1, 0), "wsgi.multithread": True, "wsgi.multiprocess": False,
            "wsgi.run_once": False, "wsgi.url_scheme": "http", "REQUEST_METHOD": "GET", "SCRIPT_NAME": "",
            "RAW_PATH_INFO": path, "PATH_INFO": path, "QUERY_STRING": query,
            "CONTENT_TYPE": headers.get("content-type", headers.type), "SERVER_PROTOCOL": "HTTP/1.0",
            "SERVER_NAME": local[0], "SERVER_PORT": str(local[1]), "REMOTE_ADDR": address[0],
            "REMOTE_PORT": str(address[1]), "GATEWAY_INTERFACE": "CGI/1.1",
        }
        raw = environ["headers_raw"] = tuple((name, value.strip(" \t\n\r")) for name, value in headers._headers)
        for name, value in raw:
            if "_" in name:
                continue  # as eventlet: it would share a key with the same name spelt with a hyphen
            key = name.replace("-", "_").upper()
            if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                continue
            key = "HTTP_" + key
            environ[key] = environ[key] + "," + value if key in environ else value
        environ["wsgi.input"] = environ["eventlet.input"] = _NoBody(conn)
        environ["eventlet.posthooks"] = []
        environ["eventlet.set_idle"] = lambda: None  # a parked websocket is not the server's to close
        return environ

    def _serve(self, connection: list, environ: dict) -> None:
        """Run the app: the websocket takes the connection over, or the app's answer (a refusal) is written."""
        conn, answer = connection[1], []

        def start_response(status, headers, exc_info=None):
            answer[:] = [status, headers]
            return lambda data: answer.append(data)

        handled = eventlet.wsgi.WSGI_LOCAL  # where eventlet's websocket says it answered (as in eventlet's protocol)
        try:
            handled.already_handled = False
            body = app(environ, start_response)
            try:
                if answer and not handled.already_handled:
                    head = "".join([f"HTTP/1.1 {answer[0]}\r\n", *(f"{name}: {value}\r\n" for name, value in
                                                                   answer[1]), "Connection: close\r\n\r\n"])
                    conn.sendall(head.encode("latin-1") + b"".join([*answer[2:], *body]))
            finally:
                getattr(body, "close", lambda: None)()
        except OSError:
            pass  # the reader left
        except Exception:  # as eventlet's protocol: logged, and a 500 without the traceback
            log.exception("unexpected error serving a websocket connect")
            if not answer:
                with contextlib.suppress(OSError):
                    conn.sendall(b"HTTP/1.1 500 Internal Server Error\r\nConnection: close\r\n\r\n")
        if getattr(conn, "tracker_parked", False):
            connection[1] = _Detached()  # the parked websocket owns the socket, and is counted until it ends
        else:
            self._closed(environ["REMOTE_ADDR"])  # eventlet's server closes the socket

    def _closed(self, host: str) -> None:
        if self.book is not None:
            self.book.closed(host)


class _NoBody:
    """A websocket connect's wsgi.input: no body, and (eventlet.input) the connection's socket."""

    __slots__ = ("sock",)

    def __init__(self, sock):
        self.sock = sock

    def read(self, *_) -> bytes:
        return b""

    def readline(self, *_) -> bytes:
        return b""

    def __iter__(self):
        return iter(())

    def get_socket(self):
        return self.sock


class _Accepting:
    """The listening socket as eventlet's green socket wraps it: its accept() answers a plain socket.

    The standard library's accept() makes the socket class its module holds, which monkey
    patching made eventlet's green socket, and eventlet wrapped that in a second one: every send
    and receive of a connection's life went through both, and a connection cost two."""

    def __init__(self, sock):
        self.sock = sock

    def accept(self):
        fd, address = self.sock._accept()
        return _PlainSocket(self.sock.family, self.sock.type, self.sock.proto, fileno=fd), address

    def __getattr__(self, name):
        return getattr(self.sock, name)


class _Listener:
    """The listening socket (a plain one), as eventlet's server sees it: accept() survives running out
    of file descriptors, and closes at once a connection from an address that holds too many."""

    def __init__(self, listener, book):
        sock = self.sock = eventlet.greenio.GreenSocket(_Accepting(listener))
        self.book, self.paused_at = book, 0.0
        # What else the server uses, named rather than passed on by __getattr__: it asks each
        # request whether the socket has do_handshake (TLS), and a miss there cost two exceptions.
        self.family, self.getsockname, self.close = sock.family, sock.getsockname, sock.close

    def accept(self):
        while True:
            try:
                conn, address = self.sock.accept()
            except OSError as exc:
                self.paused_at = _accept_failed(exc, self.paused_at)
                eventlet.sleep(0.1)  # closing connections give descriptors back meanwhile
                continue
            if self.book is None or self.book.opened(address[0]):
                return conn, address
            conn.close()


# gevent (ASYNC_MODE=gevent): no fast path; the guards' limits as far as gevent's server allows

class _TakingTurns:
    """A gevent websocket's socket as simple-websocket uses it: each send writes all, alone, and
    after each read the hub runs what is ready (Engine.IO's handler of what was read) first.

    simple-websocket ignores what send() returns, and gevent's send may write only part of a
    large frame to a slow reader; and a pong or close frame from the reader task must not land
    inside a frame the writer task is still sending. Its reader task reads on while data keeps
    arriving, and gevent's recv does not wait when there is some: a flooding reader would keep
    the process to itself, and its packets would pile up unhandled, past the guards' limits,
    until it paused. Any other use passes through.
    """

    def __init__(self, sock):
        self.sock, self.lock = sock, gevent.lock.Semaphore()

    def recv(self, size: int) -> bytes:
        data = self.sock.recv(size)
        gevent.sleep(0)  # a turn for Engine.IO's handler, which may drop this connection for abuse
        return data

    def send(self, data) -> int:
        with self.lock:
            self.sock.sendall(data)  # within the socket's timeout, or OSError: the connection ends
        return len(data)

    def __getattr__(self, name):
        return getattr(self.sock, name)


def _gevent_websockets() -> None:
    """python-engineio's gevent websocket (simple-websocket), with what eventlet's has besides.

    The largest frame (max_http_buffer_size: eventlet's max_frame_length; engineio passes no
    limit to simple-websocket, which then buffers a message of any size before engineio checks
    it), whole writes and reads in turn (_TakingTurns), a read timeout of one ping interval and
    timeout (engineio sets it only on eventlet's socket), the guards' way to hang up now (`hangup`),
    and an end as eventlet's: a closing frame, the connection closed, no HTTP response after them.
    """
    import simple_websocket
    import simple_websocket.ws
    from engineio.async_drivers import gevent as driver
    from engineio.async_drivers._websocket_wsgi import SimpleWebSocketWSGI
    from wsproto.utilities import LocalProtocolError

    class Uncompressed(simple_websocket.ws.PerMessageDeflate):
        """The compression extension simple-websocket offers, declined: see _uncompressed_websockets."""

        def accept(self, offer):
            return None

    simple_websocket.ws.PerMessageDeflate = Uncompressed

    class Server(simple_websocket.Server):
        def __init__(self, environ, timeout, **options):
            self.timeout = timeout
            super().__init__(environ, **options)

        def handshake(self):  # the first use of the socket
            self.sock.settimeout(self.timeout)
            self.sock = _TakingTurns(self.sock)
            super().handshake()

    class WebSocket(SimpleWebSocketWSGI):
        def __init__(self, handler, server):
            super().__init__(handler, server, thread_class=driver.Thread, event_class=gevent.event.Event,
                             selector_class=gevent.selectors.DefaultSelector,
                             max_message_size=int(server.max_http_buffer_size))
            self.timeout = server.ping_interval + server.ping_timeout

        def __call__(self, environ, start_response):
            # SimpleWebSocketWSGI.__call__ for gevent, with the Server above.
            self.ws = Server(environ, self.timeout, **self.server_args)
            eio_socket = self.app.__self__  # the Engine.IO socket whose handler this is
            hangup = functools.partial(_shutdown, self.ws.sock.sock)
            first = getattr(eio_socket, "hangup", None) is None  # else a second, concurrent upgrade attempt
            if first:
                # The guards' way to end a connection now: its reader and any writer wake up.
                eio_socket.hangup = hangup
            try:
                self.app(self)
            finally:
                if first:
                    eio_socket.hangup = None
            # Ended as eventlet's server ends it: a closing frame (Engine.IO's handler sends none after
            # a failed upgrade probe), the connection closed (simple-websocket would read on until the
            # timeout), and an empty body that is not a list: Engine.IO answers an upgrade with the list
            # its handler returns as if it were a poll's packets, an HTTP 200 gevent wrote into the websocket.
            self.close()
            hangup()
            return ()

        def close(self):
            """A closing frame, unless one was sent or the connection is gone (hung up by tracker.guard, or reset)."""
            try:
                super().close()
            # simple-websocket lets only EPIPE pass, and sends a second closing frame when asked;
            # engineio's writer calls this outside its try
            except (OSError, LocalProtocolError):
                pass

    eio = socketio.server.eio
    eio._async = {**eio._async, "websocket": WebSocket}


def _gevent_psycopg2() -> None:
    """Make psycopg2 wait for PostgreSQL in gevent's hub, not blocking the process (eventlet's
    monkey_patch does this itself; gevent's does not touch C extensions)."""
    try:
        import psycopg2
        from psycopg2 import extensions
    except ImportError:
        return
    from gevent.socket import wait_read, wait_write

    def wait(conn, timeout=None):
        while True:
            state = conn.poll()
            if state == extensions.POLL_OK:
                return
            if state == extensions.POLL_READ:
                wait_read(conn.fileno(), timeout=timeout)
            elif state == extensions.POLL_WRITE:
                wait_write(conn.fileno(), timeout=timeout)
            else:
                raise psycopg2.OperationalError(f"bad state from poll: {state!r}")

    extensions.set_wait_callback(wait)


def _shutdown(sock) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already gone


def _gevent_handler(book, header_timeout: int, socket_timeout: int):
    """gevent's HTTP handler with a deadline for headers, a timeout for reads and writes, and per-address counts.

    As eventlet's (_protocol): a connection must send each request's line and headers within
    `header_timeout` (idle keep-alive included), or it is closed; any later read or write may
    wait `socket_timeout` (a websocket's, one ping interval and timeout); `book` (when not
    None) counted the connection at accept, and is told when it closes.
    """

    class Handler(gevent.pywsgi.WSGIHandler):
        deadline = None

        def __init__(self, sock, address, server):
            sock.settimeout(socket_timeout)
            super().__init__(sock, address, server)

        def handle(self):
            try:
                super().handle()
            finally:
                if book is not None:
                    book.closed(self.client_address[0])

        def handle_one_request(self):
            self.deadline = deadline = gevent.Timeout.start_new(header_timeout)
            try:
                more = super().handle_one_request()
                # After a websocket, the connection is over (gevent's handler would wait for another request).
                return None if self.environ and self._connection_upgrade_requested() else more
            except gevent.Timeout as timeout:
                if timeout is not deadline:
                    raise
                return None  # close the connection
            finally:
                deadline.close()

        def read_request(self, raw_requestline):
            """gevent's, on a head httptools has accepted (_read_head): gevent's parser takes a
            malformed header line, two Content-Lengths and 64 KB lines."""
            read = _read_head(raw_requestline.encode("latin-1"), self.read_header_line)
            if read is None:
                return False  # the client left halfway through its headers
            rfile, self.rfile = self.rfile, io.BytesIO(read[2][len(raw_requestline):])
            try:
                return super().read_request(raw_requestline)
            finally:
                self.rfile = rfile

        def read_header_line(self) -> bytes:
            line = self.rfile.readline(MAX_HEADER_LINE)
            if len(line) >= MAX_HEADER_LINE:
                raise _Refused(HTTPStatus.BAD_REQUEST, "Header line too long")
            return line

        def _handle_client_error(self, ex):
            if not isinstance(ex, _Refused):
                return super()._handle_client_error(ex)
            self.log_error("Refused request (from %s): %s", self.client_address, ex.reason)
            body = ex.reason.encode()
            return (str(ex.status.value), b"HTTP/1.1 %d %s\r\nConnection: close\r\nContent-Type: text/plain; "
                    b"charset=utf-8\r\nContent-Length: %d\r\n\r\n%s" % (ex.status.value, ex.status.phrase.encode(),
                                                                      len(body), body))

        def get_environ(self):
            # The headers are in: the request may now take its time.
            self.deadline.close()
            return super().get_environ()

    return Handler


def _gevent_server(listener, per_peer, max_connections: int, handler):
    """gevent's WSGI server on the listening socket: at most `max_connections` connections at once (its pool),
    accepts that survive running out of file descriptors, and at once closes a connection from an
    address that holds too many."""

    class Server(gevent.pywsgi.WSGIServer):
        paused_at = 0.0

        def do_read(self):
            try:
                accepted = super().do_read()
            except OSError as exc:
                self.paused_at = _accept_failed(exc, self.paused_at)
                self.stop_accepting()  # closing connections give descriptors back meanwhile
                gevent.spawn_later(0.1, lambda: self.started and self.start_accepting())
                return None
            if accepted is None or per_peer is None or per_peer.opened(accepted[1][0]):
                return accepted
            accepted[0].close()
            return None

    return Server(listener, app, spawn=max_connections, handler_class=handler,
                  log=log if os.environ.get("ACCESS_LOG") == "1" else None, error_log=log)


def _connection_limit() -> int:
    """MAX_CONNECTIONS, lowered to fit the file limit: lift the soft limit to the hard one first."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    most = max(1, hard - SPARE_FILES)
    if MAX_CONNECTIONS > most:
        # Said as a warning when an operator asked for more; the default just fits the machine.
        level = logging.WARNING if "MAX_CONNECTIONS" in os.environ else logging.INFO
        log.log(level, "MAX_CONNECTIONS=%s is above what the file limit (%s) allows; serving at most %s "
                "connections (raise the limit with `ulimit -n` or LimitNOFILE= to serve more)",
                MAX_CONNECTIONS, hard, most)
        return most
    return MAX_CONNECTIONS


def main() -> None:
    """Serve the app with eventlet or gevent (ASYNC_MODE) on HOST:PORT (or --host/--port)."""
    host = ARGS.host if ARGS.host is not None else app.config["HOST"]
    port = ARGS.port if ARGS.port is not None else app.config["PORT"]
    listener = LISTENER or _listen(host, port)
    port = listener.getsockname()[1]  # the one the system chose for --port 0
    # LOG_FORMAT=json: one JSON object per line, the serving line and eventlet's own lines included.
    logs.configure(app.config["LOG_FORMAT"])
    max_connections = _connection_limit()
    with app.app_context():
        schema.upgrade_database()
        if ARGS.demo:
            print(demo.seed_if_empty() or demo.login_hint(), flush=True)
    book = guard.addresses(app)
    # Behind a proxy every connection comes from the proxy; guard counts by X-Forwarded-For then.
    per_peer = None if app.config["TRUSTED_PROXIES"] else book
    if ASYNC_MODE == "eventlet":
        _uncompressed_websockets()
        pool = _eventlet_fast_path(max_connections, per_peer)  # eventlet's server's, shared with parked websockets
    else:
        log.info("broadcast fast path off: it is eventlet's (ASYNC_MODE=%s); serving on the libraries' own "
                 "paths, as with FAST_FANOUT=0", ASYNC_MODE)
        _gevent_websockets()
        _gevent_psycopg2()
    guard.protect_socketio(socketio.server, book, app.config)
    # Each reader adds a few hundred objects, and makes no cyclic garbage. With the collector's
    # defaults (a pass every 700 allocations, full passes over every object) collection took a
    # quarter of the CPU of a connection storm: keep what startup made out of the passes, and
    # pass less often (README, Performance).
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    gc.enable()
    # Decoding and encoding an upload takes seconds of CPU (Pillow releases the GIL meanwhile): in
    # the async library's thread pool, so every other connection keeps being served.
    images.run_blocking = (eventlet.tpool.execute if ASYNC_MODE == "eventlet"
                           else lambda function, *args: gevent.get_hub().threadpool.apply(function, args))
    socketio.start_background_task(rev_beacon, app)
    socketio.start_background_task(readers.run, app)
    socketio.start_background_task(scheduler.run, app)
    header_timeout, socket_timeout = app.config["HEADER_TIMEOUT"], app.config["SOCKET_TIMEOUT"]
    if ASYNC_MODE == "eventlet":
        log.info("serving with eventlet %s (ASYNC_MODE=eventlet)", eventlet.__version__)
        _say_serving(host, port)
        # debug=False: an exception that escapes Flask must never send its traceback to the client.
        eventlet.wsgi.server(_Listener(listener, per_peer), app, custom_pool=pool,
                             protocol=_protocol(per_peer, header_timeout), debug=False,
                             socket_timeout=socket_timeout, log=logging.getLogger("eventlet.wsgi"),
                             log_output=os.environ.get("ACCESS_LOG") == "1")
    else:
        listener.setblocking(False)  # gevent's server reads accept()'s BlockingIOError as "none yet"
        server = _gevent_server(listener, per_peer, max_connections,
                                _gevent_handler(per_peer, header_timeout, socket_timeout))
        server.init_socket()
        log.info("serving with gevent %s (ASYNC_MODE=gevent)", gevent.__version__)
        _say_serving(host, port)
        server.serve_forever()


def _say_serving(host: str, port: int) -> None:
    """The line tests and `make run` wait for: a log record with LOG_FORMAT=json, else printed."""
    serving = f"Tracker serving on http://{f'[{host}]' if ':' in host else host}:{port}"
    if app.config["LOG_FORMAT"] == "json":
        log.info(serving)
    else:
        print(serving, flush=True)


if SERVING:
    main()
