"""app.py's eventlet parts on real eventlet objects: the direct writer (a websocket and Engine.IO socket on a
socket pair), parked websockets, the crew, name lookups, accepting, and the door for websocket connects.

Not collected by pytest on its own (eventlet's green sockets, used in a test process, hang the
Playwright tests that run after them there): tests/test_app.py runs it in a child process.
"""
import importlib
import socket
import time

import pytest

from tracker.config import Config


@pytest.fixture(scope="module")
def serving():
    """app.py, imported with a key and database of its own (importing it builds its app)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Config, "SECRET_KEY", "test-only")
        patch.setattr(Config, "DATABASE_URL", "sqlite://")
        return importlib.import_module("app")


class Wire:
    """A real eventlet websocket and Engine.IO socket on one end of a socket pair; `far` is the reader."""

    def __init__(self, serving, buffer: int | None = None):
        import engineio
        from eventlet.green import socket as green_socket
        from eventlet.websocket import RFC6455WebSocket

        self.near, self.far = green_socket.socketpair()
        if buffer:  # small kernel buffers, so a large frame is taken only in part
            self.near.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, buffer)
            self.far.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, buffer)
        self.ws = RFC6455WebSocket(self.near, {})
        self.eio = engineio.socket.Socket(engineio.Server(async_mode="eventlet"), "test")
        self.eio.upgraded = True
        self.tasks: list = []
        self.send, _ = serving._direct_writer(self.eio, self.ws,
                                              spawn=lambda task, *args: self.tasks.append((task, args)))

    @property
    def lock_free(self) -> bool:
        return self.ws._sendlock.balance == 1

    def read(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = self.far.recv(size - len(data))
            assert chunk, "the connection closed"
            data += chunk
        return data

    def fill(self) -> int:
        """Fill the kernel's buffers so the next send takes nothing; returns how much it took."""
        self.near.fd.setblocking(False)
        filled = 0
        try:
            while True:
                filled += self.near.fd.send(b"x" * 65536)
        except BlockingIOError:
            return filled

    def close(self) -> None:
        self.near.close()
        self.far.close()


@pytest.fixture
def on_wire(serving):
    """Run a test's body with a fresh Wire, closed afterwards."""
    def run(body, **options) -> None:
        w = Wire(serving, **options)
        try:
            body(w)
        finally:
            w.close()

    return run


def test_idle_connection_gets_the_frame_written_at_once(on_wire):
    def body(w):
        assert w.send(b"frame") is True
        assert w.read(5) == b"frame" and w.tasks == [] and w.lock_free

    on_wire(body)


@pytest.mark.parametrize("state", ["held", "queued", "upgrading", "closed", "broken"])
def test_busy_or_unready_connection_falls_back_to_the_normal_path(on_wire, state):
    def body(w):
        if state == "held":
            w.ws._sendlock.acquire()
        elif state == "queued":
            w.eio.queue.put("earlier packet")
        elif state == "upgrading":
            w.eio.upgraded = False
        elif state == "closed":
            w.eio.closed = True
        else:
            w.near.shutdown(socket.SHUT_WR)
        assert w.send(b"frame") is False
        assert w.tasks == [] and w.lock_free == (state != "held")
        if state != "broken":
            w.far.setblocking(False)
            with pytest.raises(BlockingIOError):  # nothing was written
                w.far.recv(16)

    on_wire(body)


def test_writer_woken_by_the_lock_goes_before_a_broadcast(on_wire):
    """Released with a writer waiting, eventlet's lock reads unlocked until that writer runs."""
    def body(w):
        order, lock = [], w.ws._sendlock
        lock.acquire()  # a tail being written

        def writer():  # engineio's writer, holding a packet it took off the queue
            with lock:
                order.append("queued packet")

        import eventlet

        waiting = eventlet.spawn(writer)
        eventlet.sleep(0)  # the writer now waits for the lock
        lock.release()
        assert not lock.locked()  # what the direct writer used to look at
        assert w.send(b"broadcast") is False
        waiting.wait()
        assert order == ["queued packet"] and w.send(b"broadcast") is True and w.read(9) == b"broadcast"

    on_wire(body)


@pytest.mark.parametrize("full", [False, True], ids=["takes-part", "takes-nothing"])
def test_unsent_tail_keeps_the_send_lock_until_a_task_has_written_it(on_wire, full):
    def body(w):
        junk = w.fill() if full else 0
        frame = bytes(range(256)) * 2048  # 512 KB: more than the kernel takes at once
        assert w.send(frame) is True
        # Until the tail is out, every other writer (the writer task, later broadcasts, eventlet's
        # pongs and close frames) finds the send lock taken and waits or falls back.
        assert not w.lock_free and w.send(b"next") is False
        [(task, args)] = w.tasks
        import eventlet

        sender = eventlet.spawn(task, *args)
        assert w.read(junk + len(frame))[junk:] == frame
        sender.wait()
        assert w.lock_free and not w.ws.websocket_closed

    on_wire(body, buffer=4096)


def test_tail_that_cannot_be_written_frees_the_lock_and_closes_the_connection(on_wire):
    def body(w):
        assert w.send(b"0" * 512 * 1024) is True
        [(task, args)] = w.tasks
        w.far.close()  # the reader is gone: the rest can't be written
        task(*args)
        assert w.lock_free and w.ws.websocket_closed

    on_wire(body, buffer=4096)


def test_unmasking_by_words_matches_eventlets_byte_by_byte(serving):
    import random

    from eventlet.websocket import RFC6455WebSocket

    rng = random.Random(7)
    for length in [0, 1, 2, 3, 4, 5, 45, 126, 1000]:
        data, mask = rng.randbytes(length + 3), rng.randbytes(4)
        for offset in range(5):
            expected = RFC6455WebSocket._apply_mask(data, mask, length, offset)
            assert serving._unmask(data, mask, length, offset) == expected
        assert serving._unmask(data[:length], bytearray(mask)) == RFC6455WebSocket._apply_mask(data[:length], mask)


def test_reading_ahead_hands_eventlet_every_frame_however_the_bytes_arrive(on_wire, serving):
    import eventlet
    from eventlet.websocket import RFC6455WebSocket

    def body(w):
        client = RFC6455WebSocket(w.far, {}, client=True)  # masks its frames, as browsers do
        frames = [client._pack_message(text, masked=True) for text in ("40", "x" * 5000, '420["join",{}]', "3")]
        waits = []
        w.ws.socket = serving._ReadAhead(w.ws.socket, lambda: waits.append(w.ws.socket.inbox))
        stream = b"".join(frames)
        w.far.sendall(stream[:3])  # half a header, then the rest: one frame bigger than a read
        w.far.sendall(stream[3:])
        assert [w.ws.wait() for _ in frames] == ["40", "x" * 5000, '420["join",{}]', "3"]
        assert w.ws.socket.inbox == b"" and waits == []  # it had all arrived: no read waited
        eventlet.spawn(w.far.sendall, frames[0])  # runs once the reader waits
        assert w.ws.wait() == "40" and waits == [b""]  # told before it waited, with nothing in hand

    on_wire(body)


def test_the_crew_runs_each_task_afresh_on_a_kept_green_thread(serving, caplog):
    import contextvars

    import eventlet
    import greenlet

    crew, name, seen = serving._Crew(eventlet.hubs.get_hub()), contextvars.ContextVar("name", default=None), []

    def task(value):
        seen.append((greenlet.getcurrent(), name.get()))
        name.set(value)

    def failing():
        raise RuntimeError("a bug in a task")

    for args in [(task, "first"), (failing,), (task, "second")]:
        crew.spawn(*args)
        eventlet.sleep(0)  # the task, scheduled first, runs first
    # One green thread ran all three, each task in a context of its own (the first one's value is
    # not the second's), and a task's error was logged without ending the thread.
    assert seen[0][0] is seen[1][0]
    assert [value for _, value in seen] == [None, None]
    assert (crew.tasks, crew.started, len(crew.idle)) == (3, 1, 1)
    assert "unexpected error in a task" in caplog.text


def test_a_parked_websocket_keeps_the_hubs_listener_and_writes_at_once(on_wire, serving, monkeypatch):
    import engineio
    import eventlet
    from eventlet.websocket import RFC6455WebSocket

    hub = eventlet.hubs.get_hub()
    monkeypatch.setattr(serving, "CREW", serving._Crew(hub))
    monkeypatch.setattr(serving, "eventlet", eventlet, raising=False)  # imported by app.py when it serves

    def body(w):
        seen = eventlet.queue.Queue()  # packets handled, and "released" when the connection ended
        w.eio.server.on("message", lambda sid, data: seen.put(data))
        w.eio.server.async_handlers = False
        client = RFC6455WebSocket(w.far, {}, client=True)
        _, write = serving._direct_writer(w.eio, w.ws, spawn=serving.CREW.spawn)
        parked = serving._Parked(w.eio, w.ws, write, lambda: seen.put("released"))
        fileno = w.near.fileno()
        listener = hub.listeners[hub.READ][fileno]
        for text in ("first", "second"):
            w.far.sendall(client._pack_message("4" + text, masked=True))
            assert seen.get(timeout=5) == text  # read and handled by a task of the crew
        # The hub listened all along, with the one listener.
        assert hub.listeners[hub.READ][fileno] is listener and not parked.reading
        # A packet with nothing before it is written at once; behind a tail being sent, it waits
        # its turn in the queue (False).
        hello = engineio.packet.Packet(engineio.packet.MESSAGE, "hello")
        assert parked.send_now(hello) is True and client.wait() == "4hello"
        w.ws._sendlock.acquire()
        assert parked.send_now(hello) is False
        w.ws._sendlock.release()
        # A packet that arrives while a task is still at work: the hub lets go (else it would
        # wake for it at each poll), and the task listens again when it is done.
        parked.reading = True
        parked.readable(fileno)
        assert fileno not in hub.listeners[hub.READ]
        parked.reading = False
        parked.listen()
        w.far.close()  # the reader leaves: a task reads the end, and the connection lets go
        assert seen.get(timeout=5) == "released"
        assert parked.ended and fileno not in hub.listeners[hub.READ]

    on_wire(body)


def test_the_crew_starts_tasks_together_in_order_and_those_they_hand_over_after_the_hub_polls(serving):
    import eventlet

    hub = eventlet.hubs.get_hub()
    crew, order = serving._Crew(hub), []

    def task(name, then=None):
        order.append(name)
        if then:
            crew.spawn(task, then)

    timers = len(hub.next_timers)
    crew.spawn(task, "a", "c")
    crew.spawn(task, "b")
    assert len(hub.next_timers) == timers + 1  # one hub timer starts both
    eventlet.sleep(0)  # one turn of the hub's timers: both handed over here, in order, not "c"
    assert order == ["a", "b"]
    eventlet.sleep(0)
    assert order == ["a", "b", "c"] and crew.tasks == 3


def test_the_crew_keeps_a_bursts_extra_threads_until_it_trims_them(serving):
    import eventlet

    hub = eventlet.hubs.get_hub()
    crew, release = serving._Crew(hub), eventlet.Event()
    crew.KEEP, crew.TRIM_SECONDS = 2, 0

    for _ in range(5):  # a burst: five tasks in flight at once
        crew.spawn(release.wait)
    eventlet.sleep(0)  # all five start and wait
    release.send()
    eventlet.sleep(0)  # all five end: none of the threads ends with them, and a trim is due
    assert (crew.started, len(crew.idle), crew.trim_due) == (5, 5, True)
    threads = list(crew.idle)
    eventlet.sleep(0)  # the trim's turn: the three idle longest end, the two kept go on
    assert len(crew.idle) == 2 and not crew.trim_due
    assert [thread.dead for thread in threads] == [True, True, True, False, False]
    crew.spawn(release.wait)
    eventlet.sleep(0)
    assert crew.started == 5  # a kept thread took it


def test_a_name_lookup_holds_up_only_the_green_thread_that_asked(serving, monkeypatch):
    import eventlet
    from eventlet.green import socket as green_socket

    for module in (socket, green_socket):
        for name in serving.LOOKUPS:
            monkeypatch.setattr(module, name, getattr(module, name))  # put back after the test
    answer = [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("192.0.2.1", 80))]

    def slow_resolver(*args):
        time.sleep(0.3)  # the system's resolver waiting for a slow DNS server: its thread blocks
        return answer

    monkeypatch.setattr(green_socket, "getaddrinfo", slow_resolver)
    serving._resolve_in_threads()
    ticks = []

    def tick():
        while True:
            ticks.append(time.monotonic())
            eventlet.sleep(0.01)

    ticker = eventlet.spawn(tick)
    try:
        assert socket.getaddrinfo("news.example", 80) == answer
        during = len(ticks)
    finally:
        ticker.kill()
    # Blocking the hub, the lookup would have ended before the ticker ever ran.
    assert during >= 3


def test_a_connection_is_accepted_as_one_green_socket_over_the_systems(serving, monkeypatch):
    import eventlet
    import eventlet.greenio

    monkeypatch.setattr(serving, "eventlet", eventlet, raising=False)  # imported by app.py when it serves
    plain = serving._PlainSocket(socket.AF_INET, socket.SOCK_STREAM)  # as app.py listens, before eventlet
    plain.bind(("127.0.0.1", 0))
    plain.listen(1)
    # What monkey patching does: the standard library's accept() then makes a green socket.
    monkeypatch.setattr(socket, "socket", eventlet.greenio.GreenSocket)
    listener = serving._Listener(plain, None)
    client = socket.create_connection(plain.getsockname())
    try:
        conn, _ = listener.accept()
        assert isinstance(conn, eventlet.greenio.GreenSocket)
        assert not isinstance(conn.fd, eventlet.greenio.GreenSocket)  # the system's socket, not a second green one
        client.sendall(b"ping")
        assert conn.recv(4) == b"ping"  # a green read: waits in the hub
        conn.settimeout(0.05)
        with pytest.raises(TimeoutError):
            conn.recv(1)  # nothing more: the green socket's timeout, not a blocked process
        conn.close()
    finally:
        client.close()
        plain.close()


CONNECT = (b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: news.example\r\nUpgrade: websocket\r\n"
           b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
           b"Cookie: a=1\r\nAccept: text/html\r\naccept: */*\r\nX_Odd: dropped\r\n"
           b"Origin:  http://news.example \r\n\r\n")


@pytest.fixture
def door(serving, monkeypatch):
    import eventlet
    import httptools

    for name, module in (("eventlet", eventlet), ("httptools", httptools)):  # imported by app.py when it serves
        monkeypatch.setattr(serving, name, module, raising=False)
    return serving._Door(None, 10, 60)


@pytest.mark.parametrize("head", [
    CONNECT.replace(b"transport=websocket", b"transport=polling").replace(b"Upgrade: websocket\r\n", b""),
    CONNECT[:-2],  # not all of it yet
    CONNECT.replace(b"GET", b"POST"),
    CONNECT.replace(b"HTTP/1.1", b"HTTP/1.0"),
    CONNECT.replace(b"Cookie", b"Content-Length: 5\r\nCookie"),
    CONNECT.replace(b"Cookie", b"Transfer-Encoding: chunked\r\nCookie"),
    CONNECT.replace(b"Host: news.example", b"Host news.example"),  # malformed
    CONNECT.replace(b"Cookie: a=1\r\n", b"".join(b"X-%d: 1\r\n" % n for n in range(100))),  # too many headers
    CONNECT.replace(b"Cookie: a=1\r\n", b"Cookie: a=1\n\n"),  # a bare line feed, and a blank line before the last
], ids=["polling", "partial", "post", "http-1.0", "length", "chunked", "malformed", "headers", "bare-lf"])
def test_the_door_leaves_every_other_request_to_eventlets_protocol(door, head):
    assert door._head(head) is None


def test_the_door_hands_the_app_the_environ_eventlets_protocol_makes(serving, door):
    import eventlet.wsgi

    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listener.getsockname())
    conn, address = listener.accept()
    try:
        length, target, headers = door._head(CONNECT + b"frames")
        assert length == len(CONNECT)
        ours = door._environ(conn, address, target, headers)
        protocol = eventlet.wsgi.HttpProtocol.__new__(eventlet.wsgi.HttpProtocol)
        protocol.server = eventlet.wsgi.Server(listener, listener.getsockname(), serving.app)
        protocol.request = protocol.connection = conn
        protocol.client_address, protocol.conn_state = address, [address, conn, eventlet.wsgi.STATE_IDLE]
        protocol.command, protocol.path, protocol.headers = "GET", target, headers
        protocol.rfile = conn.makefile("rb")
        theirs = protocol.get_environ()
        assert ours.pop("wsgi.input").get_socket() is ours.pop("eventlet.input").get_socket() is conn
        ours.pop("eventlet.set_idle")
        for key in ("wsgi.input", "eventlet.input", "eventlet.set_idle"):
            theirs.pop(key)  # eventlet's reads the body from the buffered reader, and marks the connection idle
        assert ours == theirs
        assert ours["HTTP_ACCEPT"] == "text/html,*/*" and ours["HTTP_ORIGIN"] == "http://news.example"
        assert "HTTP_X_ODD" not in ours
        protocol.rfile.close()
    finally:
        for sock in (conn, client, listener):
            sock.close()
