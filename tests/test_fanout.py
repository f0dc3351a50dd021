"""The broadcast fast path: one frame built per broadcast, written directly when a connection is idle.

The direct writer itself (app.py, eventlet) has unit tests in test_app.py."""
import json
import os
import socket
import struct
import threading
import time

import pytest
import requests
import websocket
from helpers import LiveServer, WireReader

from tracker.fanout import CompactJSON, Packet, websocket_frame

# Framing and writing to sockets do not touch the database.
pytestmark = pytest.mark.engine_independent

# 60 entries of ~120 KB as JSON (each "é" is sent as "\u00e9"): more than the 4 MB of socket
# buffers the kernel gives a stalled reader on this machine, so the server meets a full socket.
COUNT = 60


def parse_frame(data: bytes) -> tuple[int, str, bytes]:
    """(opcode, text, rest) of the first server frame in `data`."""
    first, second = data[0], data[1]
    size, offset = second & 0x7F, 2
    if size == 126:
        size, offset = struct.unpack("!H", data[2:4])[0], 4
    elif size == 127:
        size, offset = struct.unpack("!Q", data[2:10])[0], 10
    assert first & 0x80 and not second & 0x80  # final frame, not masked
    return first & 0x0F, data[offset:offset + size].decode(), data[offset + size:]


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 70000])
def test_websocket_frame_encodes_every_length_form(size):
    text = "é" * (size // 2) + "x" * (size % 2)
    opcode, decoded, rest = parse_frame(websocket_frame(text))
    assert (opcode, decoded, rest) == (1, text, b"")


def test_packets_are_encoded_compactly_with_one_encoder_and_huge_numbers_refused(app):
    from engineio.packet import Packet as EioPacket

    data = ["entry", {"id": 1, "html": "<p>Caf\u00e9 \u201cquoted\u201d</p>", "tags": [None, 2.5]}]
    assert Packet.json is EioPacket.json is CompactJSON  # the `json` option reached both libraries
    assert CompactJSON.dumps(data, separators=(",", ":")) == json.dumps(data, separators=(",", ":"))
    assert CompactJSON.dumps(data) == json.dumps(data)  # anything else: the standard library's own
    assert Packet(packet_type=2, data=data).encode() == "2" + json.dumps(data, separators=(",", ":"))
    with pytest.raises(ValueError):
        CompactJSON.loads("[" + "9" * 101 + "]")  # Engine.IO's guard against numbers that cost seconds


def test_packets_are_json_only_and_bytes_fail_loudly():
    """Tracker sends no binary data: its packets skip python-socketio's search for bytes, and bytes
    put in one by mistake fail at encoding instead of travelling as attachments no reader expects."""
    import socketio

    data = ["entry", {"id": 1, "tags": ["a", None, 2.5], "story": {"slug": "s"}}]
    ours, theirs = Packet(socketio.packet.EVENT, data), socketio.packet.Packet(socketio.packet.EVENT, data)
    assert ours.packet_type == theirs.packet_type == socketio.packet.EVENT and ours.encode() == theirs.encode()
    with pytest.raises(TypeError):
        Packet(socketio.packet.EVENT, ["entry", {"image": b"\x89PNG"}]).encode()


def test_a_disconnect_leaves_the_connections_rooms_and_no_others():
    """The manager keeps each connection's rooms, so a disconnect leaves them without looking
    through every room (python-socketio's way, quadratic when thousands leave together)."""
    import socketio

    from tracker.fanout import FanoutManager

    manager = FanoutManager()
    socketio.Server(client_manager=manager)
    a, b = manager.connect("eio-a", "/"), manager.connect("eio-b", "/")
    for sid in (a, b):
        manager.enter_room(sid, "/", "story:night")
    manager.enter_room(a, "/", "desk:night")
    manager.disconnect(a, "/")
    assert manager.rooms_of == {("/", b): {None, b, "story:night"}}
    assert dict(manager.rooms["/"]["story:night"]) == {b: "eio-b"} and "desk:night" not in manager.rooms["/"]
    assert not manager.is_connected(a, "/") and manager.is_connected(b, "/")
    manager.leave_room(b, "/", "story:night")
    manager.disconnect(b, "/")
    assert manager.rooms_of == {} and manager.rooms == {}


# Against the real server (python app.py, eventlet, the fast path installed)

def api(live_server):
    token = live_server.flask("token", "create", "fanout-test").strip().splitlines()[-1]
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {token}"
    slug = http.post(f"{live_server.url}/api/stories", json={"title": "Fan-out"}).json()["story"]["slug"]
    return http, slug


@pytest.fixture
def patient_server(database_url):
    """A server that keeps what a stalled reader has not read, however much (the limit is lifted)."""
    server = LiveServer(database_url, SOCKET_MAX_UNSENT_BYTES=str(10**9))
    server.start()
    yield server
    server.stop()


def test_reader_that_stops_reading_delays_only_itself_and_gets_every_frame_intact(patient_server):
    live_server = patient_server
    http, slug = api(live_server)
    stalled = WireReader(live_server.port, slug, receive_buffer=4096)
    prompt, received = WireReader(live_server.port, slug), []
    reading = threading.Thread(target=lambda: received.extend(prompt.entries(COUNT)), daemon=True)
    reading.start()
    headlines = [f"update {n}" for n in range(COUNT)]
    for n, headline in enumerate(headlines):
        body = f"Entry {n}: " + "é" * 19_900
        assert http.post(f"{live_server.url}/api/stories/{slug}/entries",
                         json={"headline": headline, "body": body}).status_code == 201
    # The stalled client pings at the websocket level (as some clients and proxies do): the
    # server's pongs must wait for the frame being written, never land inside it.
    for _ in range(3):
        stalled.ws.ping("still there?")
    # Every entry reached the prompt reader while the stalled one had not read a byte.
    reading.join(30)
    assert [entry["headline"] for entry in received] == headlines
    stalled_entries = stalled.entries(COUNT)
    assert [entry["headline"] for entry in stalled_entries] == headlines
    assert all(f"Entry {n}:" in entry["html"] for n, entry in enumerate(stalled_entries))
    prompt.close()
    stalled.close()



def test_reader_that_leaves_too_much_unread_is_dropped_and_catches_up_exactly(live_server):
    # SOCKET_MAX_UNSENT_BYTES is 1 MB by default; COUNT entries overflow the kernel's buffers and then it.
    http, slug = api(live_server)
    stalled = WireReader(live_server.port, slug, receive_buffer=4096)
    posted = [http.post(f"{live_server.url}/api/stories/{slug}/entries",
                        json={"headline": f"update {n}", "body": "é" * 19_900}).json()["entry"] for n in range(COUNT)]
    # The server hung up on it: reading ends in a closed connection before every entry arrived.
    with pytest.raises(websocket.WebSocketConnectionClosedException):
        stalled.entries(len(posted))
    assert "left more than 1,000,000 bytes unread; connection dropped" in "".join(live_server.log)
    # Coming back, it catches up exactly: the join ack and its pages hold every entry once.
    back = WireReader(live_server.port, slug)
    back.ws.send("421" + json.dumps(["join", {"story": slug, "since": 1}]))
    ack = next(json.loads(m[3:])[0] for m in iter(back.ws.recv, None) if m.startswith("431"))
    caught = ack["entries"]
    after = ack.get("next_after_rev")
    while after is not None:
        page = http.get(f"{live_server.url}/api/stories/{slug}/entries", params={"after_rev": after}).json()
        caught += page["entries"]
        after = page["next_after_rev"]
    assert [entry["id"] for entry in caught] == [entry["id"] for entry in posted]
    assert "next_after_rev" in ack  # entries of ~40 KB of HTML each do not fit one 64 KB ack
    back.close()


# FAST_FANOUT=0 (make test runs these tests once that way) must take the libraries' path instead.
FAST = os.environ.get("FAST_FANOUT", "1") != "0"


def test_a_broadcast_to_idle_readers_takes_the_path_fast_fanout_selects(live_server):
    http, slug = api(live_server)
    readers = [WireReader(live_server.port, slug) for _ in range(3)]
    direct = live_server.metric("tracker_fanout_direct_writes_total")
    queued = live_server.metric("tracker_fanout_fallbacks_total")
    assert http.post(f"{live_server.url}/api/stories/{slug}/entries", json={"body": "Idle readers"}).status_code == 201
    for reader in readers:
        assert [entry["html"].strip() for entry in reader.entries(1)] == ["<p>Idle readers</p>"]
        reader.close()
    assert live_server.metric("tracker_fast_path") == FAST
    # Idle readers have nothing queued and nobody writing: the frame goes to each of them directly.
    assert live_server.metric("tracker_fanout_direct_writes_total") - direct == (3 if FAST else 0)
    assert live_server.metric("tracker_fanout_fallbacks_total") - queued == 0


def data_segments_received(sock: socket.socket) -> int:
    """Linux's count of TCP segments with data that arrived on this socket (struct tcp_info)."""
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    return struct.unpack_from("I", info, 152)[0]  # tcpi_data_segs_in


def test_the_upgrade_answer_leaves_with_the_open_packet(live_server):
    ws = websocket.create_connection(f"ws://127.0.0.1:{live_server.port}/socket.io/?EIO=4&transport=websocket",
                                     timeout=10)
    try:
        assert ws.recv().startswith("0{")
        # On the fast path the 101 response and Engine.IO's open packet are one write: one
        # segment and one wakeup of the reader; the libraries' path writes them one by one.
        assert data_segments_received(ws.sock) == (1 if FAST else 2)
    finally:
        ws.close()


def test_websocket_connects_skip_eventlets_http_protocol_and_its_refusals_are_still_answered(live_server):
    _, slug = api(live_server)
    direct = "tracker_websocket_connects_direct_total"
    before = live_server.metric(direct)
    readers = [WireReader(live_server.port, slug) for _ in range(3)]
    for reader in readers:
        reader.close()
    # Another site's page: Engine.IO refuses it, and the refusal reaches the client as HTTP.
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(f"ws://127.0.0.1:{live_server.port}/socket.io/?EIO=4&transport=websocket",
                                    origin="http://elsewhere.example", timeout=10)
    assert refused.value.status_code == 400
    # Polling is not a websocket connect: eventlet's protocol serves it, on either path.
    handshake = requests.get(f"{live_server.url}/socket.io/?EIO=4&transport=polling", timeout=10)
    assert handshake.status_code == 200 and handshake.text.startswith("0{")
    assert live_server.metric(direct) - before == (4 if FAST else 0)


def test_a_browsers_offer_of_websocket_compression_is_declined(live_server):
    # Accepted, each reader kept a compressor and a decompressor, about 110 KB, for its whole life.
    ws = websocket.create_connection(
        f"ws://127.0.0.1:{live_server.port}/socket.io/?EIO=4&transport=websocket", timeout=10,
        header=["Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits"])
    try:
        assert "sec-websocket-extensions" not in ws.getheaders()
        assert ws.recv().startswith("0{")
    finally:
        ws.close()


def test_idle_websockets_are_parked_and_let_go_when_they_close(live_server):
    http, slug = api(live_server)
    before = live_server.metric("tracker_parked_websockets")
    readers = [WireReader(live_server.port, slug) for _ in range(3)]
    # In one scrape: every joined reader is served by the hub with no green thread of its own
    # (app.py's _Parked), and only on the fast path.
    now = live_server.metrics("tracker_parked_websockets", "tracker_readers")
    assert now["tracker_readers"] >= 3
    assert now["tracker_parked_websockets"] == (now["tracker_readers"] if FAST else 0)
    # A parked reader still gets what is queued for it (its join's answer above) and broadcasts.
    assert http.post(f"{live_server.url}/api/stories/{slug}/entries", json={"body": "Parked"}).status_code == 201
    for reader in readers:
        assert [entry["html"].strip() for entry in reader.entries(1)] == ["<p>Parked</p>"]
        reader.close()
    deadline = time.monotonic() + 10
    while live_server.metric("tracker_parked_websockets") > before:  # the server sees each close
        assert time.monotonic() < deadline, "a closed reader is still counted as parked"


def test_readers_connect_on_kept_green_threads(live_server):
    _, slug = api(live_server)
    names = ("tracker_crew_tasks_total", "tracker_crew_threads_started_total")
    before = live_server.metrics(*names)
    for _ in range(5):  # one after another: each reader's tasks have ended before the next connects
        WireReader(live_server.port, slug).close()
    after = live_server.metrics(*names)
    tasks, started = (after[name] - before[name] for name in names)
    # Each reader's request, reads and join ran as tasks of app.py's crew (the fast path's), on
    # green threads kept from one task to the next rather than one started for each.
    if FAST:
        assert tasks >= 5 * 3 and started <= 3
    else:
        assert tasks == started == 0
