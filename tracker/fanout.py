"""Broadcast fan-out: encode an event once and write the same websocket frame to every reader.

python-socketio hands each broadcast to every client's queue, and each client's writer task
wakes up, frames the packet and sends it: a queue hand-off, a task switch and a framing per
reader. With thousands of readers that per-reader path dominated delivery time (README,
Performance). When the server gives a connection a direct writer (app.py does, for eventlet),
a broadcast writes the pre-built frame straight to that socket if nothing else is pending or
being written on it. Every other case takes the library's own path, so the order of packets
on a connection and the Engine.IO/Socket.IO protocol stay as the library makes them.
"""
from __future__ import annotations

import json
import struct
from collections.abc import Callable

import engineio.json
import socketio
from engineio import packet as eio_packet
from socketio import packet

from . import metrics, recent

# A connection's direct writer: takes a complete frame, tells whether it took care of it
# (written, or its unsent rest queued behind nothing). False: use the normal path.
DirectSend = Callable[[bytes], bool]


def websocket_frame(text: str) -> bytes:
    """One final, unmasked RFC 6455 text frame holding `text` (servers never mask)."""
    data = text.encode()
    size = len(data)
    if size < 126:
        header = struct.pack("!BB", 0x81, size)
    elif size < 1 << 16:
        header = struct.pack("!BBH", 0x81, 126, size)
    else:
        header = struct.pack("!BBQ", 0x81, 127, size)
    return header + data


class Packet(packet.Packet):
    """python-socketio's packet, JSON only (binary events off, as in its msgpack packet): Tracker
    sends no binary data, so no packet's data is searched for bytes (python-socketio searches every
    level of every packet; that was a fifth of a join's own cost)."""

    uses_binary_events = False


class CompactJSON:
    """The JSON module Socket.IO and Engine.IO encode and decode packets with (their `json` option):
    Engine.IO's, which refuses integers of more than 100 digits, with its compact encoder made once.
    Both libraries ask json.dumps for compact separators, which made an encoder for each packet."""

    loads = staticmethod(engineio.json.loads)
    _compact = json.JSONEncoder(separators=(",", ":")).encode

    @classmethod
    def dumps(cls, obj, **options) -> str:
        return cls._compact(obj) if options == {"separators": (",", ":")} else json.dumps(obj, **options)


# Set by app.py once it has checked that the library internals the fast path uses are there;
# until then (and with FAST_FANOUT=0, and in the threaded CLI and tests) the library's path runs.
enabled = False


class FanoutManager(socketio.Manager):
    """The in-process client manager, with broadcasts encoded and framed once, the recent changes
    of followed stories kept for catch-up joins (tracker.recent), and each connection's rooms
    kept for its disconnect."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.windows = recent.Windows()
        self.rooms_of: dict[tuple[str, str], set] = {}  # (namespace, sid): the rooms it is in

    def basic_enter_room(self, sid, namespace, room, eio_sid=None):
        super().basic_enter_room(sid, namespace, room, eio_sid=eio_sid)
        self.rooms_of.setdefault((namespace, sid), set()).add(room)

    def basic_leave_room(self, sid, namespace, room):
        super().basic_leave_room(sid, namespace, room)
        rooms = self.rooms_of.get((namespace, sid))
        if rooms is not None:
            rooms.discard(room)
            if not rooms:
                del self.rooms_of[(namespace, sid)]

    def basic_disconnect(self, sid, namespace, **kwargs):
        """python-socketio's, but leaving the rooms the connection is in: python-socketio looks
        for them in every room of the namespace, one per connection, so readers leaving together
        cost the square of their number (5,000 at once stalled the process for 3 s)."""
        if namespace not in self.rooms:
            return
        for room in list(self.rooms_of.get((namespace, sid), ())):
            self.basic_leave_room(sid, namespace, room)
        self.callbacks.pop(sid, None)
        for pending in (self.pending_connect, self.pending_disconnect):
            if sid in pending.get(namespace, ()):
                pending[namespace].remove(sid)
                if not pending[namespace]:
                    del pending[namespace]

    def emit(self, event, data, namespace, room=None, skip_sid=None, callback=None, to=None, **kwargs):
        """Send an event to a room; the common case (no ack, one argument, one room) is fanned out."""
        room = to or room
        self.windows.note(event, data)  # every delivery in this process passes here, from the queue too
        metrics.broadcast(event)  # once per event and room, on either path
        if not enabled or callback or skip_sid or not isinstance(room, str) or isinstance(data, tuple) \
                or namespace not in self.rooms:
            return super().emit(event, data, namespace, room=room, skip_sid=skip_sid, callback=callback,
                                **kwargs)
        encoded = self.server.packet_class(packet.EVENT, namespace=namespace,
                                           data=[event] if data is None else [event, data]).encode()
        eio_pkt = eio_packet.Packet(eio_packet.MESSAGE, encoded)
        frame = websocket_frame(eio_pkt.encode())
        sockets, written, queued = self.server.eio.sockets, 0, 0
        for _, eio_sid in self.get_participants(namespace, room):
            direct: DirectSend | None = getattr(sockets.get(eio_sid), "direct_send", None)
            if direct is not None and direct(frame):
                written += 1
            else:
                self.server._send_eio_packet(eio_sid, eio_pkt)
                queued += 1
        metrics.DIRECT_WRITES.inc(written)  # once per broadcast: a counter takes a lock
        metrics.FALLBACKS.inc(queued)


class FanoutRedisManager(socketio.RedisManager, FanoutManager):
    """Redis pub/sub between processes; each process fans the events out to its readers as above."""


def client_manager(message_queue: str | None, channel: str) -> socketio.Manager | None:
    """The fan-out manager for no queue or Redis; None lets Flask-SocketIO pick one for other queues."""
    if not message_queue:
        return FanoutManager()
    if message_queue.startswith(("redis://", "rediss://")):
        return FanoutRedisManager(message_queue, channel=channel)
    return None
