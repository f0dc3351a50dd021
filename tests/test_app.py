"""app.py's eventlet serving layer: the direct writer broadcasts use, and timer-driven pings."""
import importlib
import json

import eventlet
import pytest
import websocket
from conftest import PASSWORD, LiveServer
from eventlet.semaphore import Semaphore

from tracker.config import Config


@pytest.fixture(scope="module")
def serving():
    """app.py, imported with a key and database of its own (importing it builds its app)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Config, "SECRET_KEY", "test-only")
        patch.setattr(Config, "DATABASE_URL", "sqlite://")
        return importlib.import_module("app")


class FakeLock:
    """eventlet's send lock, as far as the direct writer uses it."""

    def __init__(self, held=False):
        self.held = held

    def locked(self):
        return self.held

    @property
    def balance(self):
        return 0 if self.held else 1

    def acquire(self):
        assert not self.held, "the direct writer would have blocked"
        self.held = True

    def release(self):
        assert self.held
        self.held = False


class FakeQueue(list):
    def empty(self):
        return not self


class FakeFd:
    """The non-blocking socket: takes `takes` bytes of each send, or raises."""

    def __init__(self, takes):
        self.takes, self.written = takes, b""

    def send(self, data):
        if self.takes is None:
            raise BlockingIOError
        if isinstance(self.takes, Exception):
            raise self.takes
        taken = data[:self.takes]
        self.written += taken
        return len(taken)


class FakeGreenSocket:
    def __init__(self, fd, fails=False):
        self.fd, self.fails, self.sent = fd, fails, b""

    def sendall(self, data):
        if self.fails:
            raise BrokenPipeError
        self.sent += data


class FakeWs:
    def __init__(self, fd, lock, fails=False):
        self.socket, self._sendlock, self.closed_with_lock = FakeGreenSocket(fd, fails), lock, None

    def close(self):
        self.closed_with_lock = self._sendlock.locked()  # eventlet's close takes the lock itself


class FakeEio:
    def __init__(self, upgraded=True, closed=False):
        self.queue, self.upgraded, self.closed = FakeQueue(), upgraded, closed


def direct(serving, takes=10**6, held=False, queued=(), upgraded=True, closed=False, fails=False):
    fd, eio = FakeFd(takes), FakeEio(upgraded, closed)
    eio.queue.extend(queued)
    ws, tasks = FakeWs(fd, FakeLock(held), fails), []
    send = serving._direct_writer(eio, ws, spawn=lambda task, *args: tasks.append((task, args)))
    return send, ws, fd, tasks


def test_idle_connection_gets_the_frame_written_at_once(serving):
    send, ws, fd, tasks = direct(serving)
    assert send(b"frame") is True
    assert fd.written == b"frame" and tasks == [] and not ws._sendlock.locked()


@pytest.mark.parametrize("state", [{"held": True}, {"queued": ["earlier packet"]}, {"upgraded": False},
                                   {"closed": True}, {"takes": BrokenPipeError()}])
def test_busy_or_unready_connection_falls_back_to_the_normal_path(serving, state):
    send, ws, fd, tasks = direct(serving, **state)
    assert send(b"frame") is False
    assert fd.written == b"" and tasks == [] and ws._sendlock.locked() == state.get("held", False)


def test_writer_woken_by_the_lock_goes_before_a_broadcast(serving):
    """Released with a writer waiting, eventlet's lock reads unlocked until that writer runs."""
    lock, order = Semaphore(), []
    fd, eio = FakeFd(10**6), FakeEio()
    ws = FakeWs(fd, lock)
    send = serving._direct_writer(eio, ws, spawn=lambda task, *args: None)
    lock.acquire()  # a tail being written

    def writer():  # engineio's writer, holding a packet it took off the queue
        with lock:
            order.append("queued packet")

    waiting = eventlet.spawn(writer)
    eventlet.sleep(0)  # the writer now waits for the lock
    lock.release()
    assert not lock.locked()  # what the direct writer used to look at
    assert send(b"broadcast") is False and fd.written == b""
    waiting.wait()
    assert order == ["queued packet"] and send(b"broadcast") is True and fd.written == b"broadcast"


@pytest.mark.parametrize("takes", [None, 0, 3])
def test_unsent_tail_keeps_the_send_lock_until_a_task_has_written_it(serving, takes):
    send, ws, fd, tasks = direct(serving, takes=takes)
    assert send(b"0123456789") is True
    # Until the tail is out, every other writer (the writer task, later broadcasts, eventlet's
    # pongs and close frames) finds the send lock taken and waits or falls back.
    assert ws._sendlock.locked() and send(b"next") is False
    [(task, args)] = tasks
    task(*args)
    assert fd.written + ws.socket.sent == b"0123456789" and not ws._sendlock.locked()
    assert ws.closed_with_lock is None


def test_tail_that_cannot_be_written_frees_the_lock_and_closes_the_connection(serving):
    send, ws, fd, tasks = direct(serving, takes=3, fails=True)
    assert send(b"0123456789") is True
    [(task, args)] = tasks
    task(*args)
    assert not ws._sendlock.locked() and ws.closed_with_lock is False


# Heartbeat with the timer-driven pings, against the real server (1 s interval, 1 s timeout)

@pytest.fixture
def quick_pings(database_url):
    server = LiveServer(database_url, SOCKETIO_PING_INTERVAL="1", SOCKETIO_PING_TIMEOUT="1")
    server.flask("user", "create", "alice", "--password-stdin", input_text=PASSWORD + "\n")
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
    for _ in range(4):  # each ping is only scheduled after the previous one was answered
        assert ws.recv() == "2"
        ws.send("3")
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
        except websocket.WebSocketConnectionClosedException:
            closed = True
            break
        if message == "":  # a close frame
            closed = True
            break
        assert message == "2"  # nothing but pings arrives before the close
    assert closed
