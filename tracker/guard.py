"""Limits that keep one client from stalling the process, per connection and per address.

Engine.IO hands every inbound message to a new green thread and queues every outbound one
without bound, so a client that floods, or stops reading, costs the one process memory and
CPU without end. The guards stand in front of the library: each inbound packet draws on its
connection's token bucket before any handler runs, outbound packets count against the
connection's unsent bytes, and each client address has caps on open connections, new
Socket.IO connections and joins. A connection that breaks a limit is dropped, with one log
line per address per minute. The settings are in Config; the README's Security section
explains how to tune them.
"""
from __future__ import annotations

import logging
import time

from flask import Flask
from werkzeug.wsgi import ClosingIterator

log = logging.getLogger(__name__)
LOG_EVERY = 60.0  # seconds between two log lines about the same address
PRUNE_EVERY = 1000  # operations between two sweeps of idle addresses


class Bucket:
    """A token bucket: `rate` tokens a second, holding at most `burst`."""

    __slots__ = ("rate", "burst", "tokens", "stamp")

    def __init__(self, rate: float, burst: float):
        self.rate, self.burst, self.tokens, self.stamp = rate, burst, burst, time.monotonic()

    def take(self) -> bool:
        """Take one token if there is one."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True

    def full(self) -> bool:
        """Whether the bucket has refilled (its address has been quiet), so it can be forgotten."""
        return self.tokens + (time.monotonic() - self.stamp) * self.rate >= self.burst


class Addresses:
    """What each client address holds and did lately: open connections, connects, joins, bans."""

    def __init__(self, config):
        self.max_open = config["MAX_CONNECTIONS_PER_ADDRESS"]
        self.connect_rate = config["CONNECTS_PER_ADDRESS_PER_MINUTE"] / 60
        self.join_rate = config["JOINS_PER_ADDRESS_PER_MINUTE"] / 60
        self.ban_seconds = config["ABUSE_BAN_SECONDS"]
        self.open: dict[str, int] = {}
        self.connects: dict[str, Bucket] = {}
        self.joins: dict[str, Bucket] = {}
        self.banned: dict[str, float] = {}  # address -> monotonic time the ban ends
        self.logged: dict[str, float] = {}  # address -> monotonic time of its last log line
        self.operations = 0

    def opened(self, address: str) -> bool:
        """Count a new connection from the address, unless it already holds as many as allowed."""
        count = self.open.get(address, 0)
        if count >= self.max_open:
            self.warn(address, f"holds {count} connections, the most allowed; refusing more")
            return False
        self.open[address] = count + 1
        return True

    def closed(self, address: str) -> None:
        """Forget a connection counted by `opened`."""
        count = self.open.get(address, 0) - 1
        if count > 0:
            self.open[address] = count
        else:
            self.open.pop(address, None)

    def may_connect(self, address: str) -> bool:
        """Whether the address may open another Socket.IO connection now."""
        self._tick()
        if self.banned.get(address, 0) > time.monotonic():
            return False
        if self._bucket(self.connects, address, self.connect_rate).take():
            return True
        self.warn(address, "opens Socket.IO connections too fast; refusing more for now")
        return False

    def may_join(self, address: str) -> bool:
        """Whether the address may join a story now (every join costs a read)."""
        self._tick()
        if self._bucket(self.joins, address, self.join_rate).take():
            return True
        self.warn(address, "joins stories too fast; refusing joins for now")
        return False

    def abused(self, address: str, what: str) -> None:
        """A connection from the address broke a limit: log it, and ban new connections a while."""
        if self.ban_seconds > 0:
            self.banned[address] = time.monotonic() + self.ban_seconds
        self.warn(address, f"{what}; connection dropped (abuse), new connections refused for "
                           f"{self.ban_seconds} s")

    def warn(self, address: str, what: str) -> None:
        """Log one line about the address, at most once a minute."""
        now = time.monotonic()
        if now - self.logged.get(address, -LOG_EVERY) >= LOG_EVERY:
            self.logged[address] = now
            log.warning("client %s %s", address, what)

    @staticmethod
    def _bucket(buckets: dict[str, Bucket], address: str, rate: float) -> Bucket:
        bucket = buckets.get(address)
        if bucket is None:
            # A minute's worth at once: a page reload, or an office behind one address reconnecting.
            bucket = buckets[address] = Bucket(rate, max(1.0, rate * 60))
        return bucket

    def _tick(self) -> None:
        """Now and then forget addresses that have been quiet, so the maps stay small."""
        self.operations += 1
        if self.operations % PRUNE_EVERY:
            return
        now = time.monotonic()
        for buckets in (self.connects, self.joins):
            for address in [a for a, bucket in buckets.items() if bucket.full()]:
                del buckets[address]
        for address in [a for a, until in self.banned.items() if until <= now]:
            del self.banned[address]
        for address in [a for a, when in self.logged.items() if now - when >= LOG_EVERY]:
            del self.logged[address]


def init_app(app: Flask) -> None:
    """Give the app its per-address book; behind proxies, count open requests by client address."""
    addresses = app.extensions["tracker.addresses"] = Addresses(app.config)
    if app.config["TRUSTED_PROXIES"]:
        # The server sees only the proxy's address; the client's is known once ProxyFix has read
        # X-Forwarded-For, so connections are counted here (app.py counts them at accept otherwise).
        app.wsgi_app = _CountByAddress(app.wsgi_app, addresses)


def addresses(app: Flask) -> Addresses:
    """The app's per-address book."""
    return app.extensions["tracker.addresses"]


class _CountByAddress:
    """WSGI middleware: refuse a request (429) when its address holds too many open ones."""

    def __init__(self, wsgi_app, book: Addresses):
        self.wsgi_app, self.book = wsgi_app, book

    def __call__(self, environ, start_response):
        address = environ.get("REMOTE_ADDR", "")
        if not self.book.opened(address):
            start_response("429 Too Many Requests", [("Content-Type", "text/plain"), ("Retry-After", "60")])
            return [b"Too many open connections from your address. Try again in a minute.\n"]
        try:
            body = self.wsgi_app(environ, start_response)
        except BaseException:
            self.book.closed(address)
            raise
        return ClosingIterator(body, lambda: self.book.closed(address))


def protect_socketio(sio_server, book: Addresses, config) -> None:
    """Put the per-connection and per-address limits in front of python-socketio and Engine.IO.

    Patches Engine.IO's Socket.receive, Socket.send and Packet.decode (python-engineio 4.15.1),
    wraps the Engine.IO connect handler python-socketio registered, and replaces its message
    handler with one that checks each packet and hands it to python-socketio's handler for its type.
    """
    from engineio import exceptions as eio_exceptions
    from engineio import packet as eio_packet
    from engineio.socket import Socket
    from socketio import packet as sio_packet

    eio = sio_server.eio
    missing = [name for name, there in [
        ("engineio Socket.receive/send/handle_post_request",
         all(callable(getattr(Socket, n, None)) for n in ("receive", "send", "handle_post_request"))),
        ("engineio Packet.decode/NOOP", callable(getattr(getattr(eio_packet, "Packet", None), "decode", None))
         and hasattr(eio_packet, "NOOP")),
        ("engineio Server.handlers", {"connect", "message", "disconnect"} <= set(getattr(eio, "handlers", {}))),
        ("engineio Server.sockets", isinstance(getattr(eio, "sockets", None), dict)),
        ("engineio SocketIsClosedError/ContentTooLongError",
         hasattr(eio_exceptions, "SocketIsClosedError") and hasattr(eio_exceptions, "ContentTooLongError")),
        ("socketio Server._send_packet/packet_class/environ", callable(getattr(sio_server, "_send_packet", None))
         and hasattr(sio_server, "packet_class") and isinstance(getattr(sio_server, "environ", None), dict)),
        ("socketio Manager.sid_from_eio_sid", callable(getattr(sio_server.manager, "sid_from_eio_sid", None))),
        ("socketio Server._handle_connect/_disconnect/_event/_ack/reason.CLIENT_DISCONNECT",
         all(callable(getattr(sio_server, f"_handle_{n}", None)) for n in ("connect", "disconnect", "event", "ack"))
         and hasattr(getattr(sio_server, "reason", None), "CLIENT_DISCONNECT")),
    ] if not there]
    if missing:
        log.error("per-connection limits NOT installed: %s not found (python-engineio or python-socketio "
                  "changed); pin the tested versions (requirements.txt) and check tracker/guard.py", ", ".join(missing))
        return
    eio.max_http_buffer_size = config["SOCKET_MAX_PACKET_BYTES"]  # websocket frames and polling bodies
    rate, burst = config["SOCKET_PACKETS_PER_SECOND"], config["SOCKET_PACKET_BURST"]
    max_unsent = config["SOCKET_MAX_UNSENT_BYTES"]
    receive, send = Socket.receive, Socket.send
    connect, disconnect = eio.handlers["connect"], eio.handlers["disconnect"]
    handle_post, decode = Socket.handle_post_request, eio_packet.Packet.decode

    def address_of(eio_socket) -> str:
        address = eio_socket.__dict__.get("address")
        if address is None:  # read once: python-socketio forgets the environ at disconnect
            address = eio_socket.address = sio_server.environ.get(eio_socket.sid, {}).get("REMOTE_ADDR", "")
        return address

    def guarded_receive(self, pkt):
        if self.closed:  # dropped: Engine.IO's reader stops instead of parsing what is still buffered
            raise eio_exceptions.SocketIsClosedError()
        if getattr(pkt, "malformed", False):  # see lenient_decode
            book.abused(address_of(self), "sent a malformed Engine.IO packet")
            # Not drop(): the reader stops here, and its handler ends the websocket in order, a
            # closing frame first; a hang-up now would race that frame.
            self.close(wait=False, abort=True)
            raise eio_exceptions.SocketIsClosedError()
        bucket = self.__dict__.get("inbound")
        if bucket is None:
            bucket = self.inbound = Bucket(rate, burst)
            address_of(self)
        if not bucket.take():
            book.abused(address_of(self), f"sent more than {burst} packets at once or {rate} a second")
            drop(self)
            return None
        return receive(self, pkt)

    def guarded_send(self, pkt):
        # Bytes queued since the queue was last empty: an upper bound of what the reader has not read.
        unsent = 0 if self.queue.empty() else self.__dict__.get("unsent", 0)
        self.unsent = unsent + len(pkt.data or "") if isinstance(pkt.data, str | bytes) else unsent
        if self.unsent > max_unsent and not self.closed:
            book.warn(address_of(self), f"left more than {max_unsent:,} bytes unread; connection dropped")
            drop(self)
            return None
        return send(self, pkt)

    def guarded_connect(eio_sid, environ):
        if not book.may_connect(environ.get("REMOTE_ADDR", "")):
            return False  # Engine.IO answers 401 and keeps nothing
        return connect(eio_sid, environ)

    def bad_request(eio_sid, pkt, why: str) -> None:
        if pkt.id is not None:
            sio_server._send_packet(eio_sid, sio_server.packet_class(
                sio_packet.ACK, namespace=pkt.namespace, data=[{"ok": False, "error": f"Bad request: {why}"}],
                id=pkt.id))

    # python-socketio's dispatch of a client's packet (its Server._handle_eio_message), given the
    # packet decoded here: it would decode each one again. Binary ones are refused below.
    handle = {
        sio_packet.CONNECT: lambda eio_sid, pkt: sio_server._handle_connect(eio_sid, pkt.namespace, pkt.data),
        sio_packet.DISCONNECT: lambda eio_sid, pkt: sio_server._handle_disconnect(
            eio_sid, pkt.namespace, sio_server.reason.CLIENT_DISCONNECT),
        sio_packet.EVENT: lambda eio_sid, pkt: sio_server._handle_event(eio_sid, pkt.namespace, pkt.id, pkt.data),
        sio_packet.ACK: lambda eio_sid, pkt: sio_server._handle_ack(eio_sid, pkt.namespace, pkt.id, pkt.data),
    }

    def guarded_message(eio_sid, data):
        # Decoded here too (packets are at most SOCKET_MAX_PACKET_BYTES): python-socketio would
        # log a traceback for a packet it cannot read, and starts each handler in its own thread.
        try:
            pkt = sio_server.packet_class(encoded_packet=data) if isinstance(data, str) else None
        except ValueError:  # not a Socket.IO packet
            pkt = None
        # Malformed too, as Tracker's clients never send them and python-socketio would log a
        # traceback: a CONNECT_ERROR (the server's to send), an unknown packet type, and binary
        # data, which it reads as a packet of its own unless it waits for the attachments of a
        # binary event or ack; those are refused as well, so it never waits for any.
        if pkt is None or pkt.packet_type not in handle:
            book.abused(sio_server.environ.get(eio_sid, {}).get("REMOTE_ADDR", ""), "sent a malformed packet")
            eio_socket = eio.sockets.get(eio_sid)
            if eio_socket is not None:
                drop(eio_socket)
            return None
        if pkt.packet_type == sio_packet.EVENT:
            if not isinstance(pkt.data, list) or not pkt.data or not isinstance(pkt.data[0], str):
                return bad_request(eio_sid, pkt, "an event is a list that starts with its name.")
            # Only a join python-socketio will answer is counted in flight: it drops, unanswered,
            # an event on a namespace the client is not connected to.
            if pkt.data[0] == "join" and sio_server.manager.sid_from_eio_sid(eio_sid, pkt.namespace or "/"):
                if eio_sid in joins_in_flight:
                    return bad_request(eio_sid, pkt, "a join is already in progress on this connection.")
                joins_in_flight.add(eio_sid)
        return handle[pkt.packet_type](eio_sid, pkt)

    def guarded_disconnect(eio_sid, *args):
        joins_in_flight.discard(eio_sid)
        return disconnect(eio_sid, *args)

    def guarded_post(self, environ):
        # Engine.IO refuses a long body only by closing gracefully, which waits for a poll.
        if int(environ.get("CONTENT_LENGTH") or 0) > eio.max_http_buffer_size:
            self.close(wait=False, abort=True)
            raise eio_exceptions.ContentTooLongError()
        return handle_post(self, environ)

    def lenient_decode(self, encoded_packet):
        # Engine.IO's websocket handler decodes each frame outside its try: a frame that is not an
        # Engine.IO packet raised out of it, and the server wrote an HTTP 500 into the websocket.
        # Marked instead, it reaches guarded_receive, which ends the connection (a probe of an
        # upgrade is not received: it is not a PING, so the upgrade fails, as Engine.IO's does).
        try:
            decode(self, encoded_packet)
        except ValueError:
            self.packet_type, self.data, self.malformed = eio_packet.NOOP, None, True

    Socket.receive, Socket.send, Socket.handle_post_request = guarded_receive, guarded_send, guarded_post
    eio_packet.Packet.decode = lenient_decode
    eio.handlers.update(connect=guarded_connect, message=guarded_message, disconnect=guarded_disconnect)


# Engine.IO sessions with a join being answered: a client can't pile joins up on one connection.
joins_in_flight: set[str] = set()


def join_answered(eio_sid: str | None) -> None:
    """The join of this Engine.IO session was answered: it may send another."""
    joins_in_flight.discard(eio_sid)


def drop(eio_socket) -> None:
    """Close an Engine.IO connection now, and its TCP connection too where the server can."""
    eio_socket.close(wait=False, abort=True)
    hangup = getattr(eio_socket, "hangup", None)  # set by app.py for websockets
    if hangup is not None:
        hangup()
