"""Hypothesis throws arbitrary payloads at the socket handlers: every one gets an ack, none crashes.

A crash would still be answered (events.on_error), so the acks must not be that answer."""
from helpers import TEST_LONG
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from tracker import services
from tracker.events import HANDLER_FAILED
from tracker.extensions import db
from tracker.models import Story

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=200),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=20)
join_payloads = json_values | st.fixed_dictionaries(
    {"story": st.text(max_size=100) | st.just("fuzz-story"), "since": json_values | st.integers(-(2**70), 2**70)})

# 300 examples per handler in `make test-long` (TEST_LONG=1), 100 in `make test`.
FUZZ = settings(max_examples=300 if TEST_LONG else 100, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(payload=join_payloads)
def test_join_answers_any_payload_with_an_ack(app, socket_client, payload):
    app.config["SOCKET_EVENTS_PER_MINUTE"] = 10**9
    with app.test_request_context():  # the fixture lives across examples: make the story once
        if db.session.scalar(select(Story.id).where(Story.slug == "fuzz-story")) is None:
            services.create_story("Fuzz story")
    sio = socket_client()
    ack = sio.emit("join", payload, callback=True)
    assert isinstance(ack, dict) and isinstance(ack["ok"], bool)
    assert ack["ok"] or isinstance(ack["error"], str) and ack["error"] not in ("", HANDLER_FAILED)
    assert sio.is_connected()
    sio.disconnect()


@FUZZ
@given(payload=json_values)
def test_leave_answers_any_payload_with_an_ack(app, socket_client, payload):
    sio = socket_client()
    ack = sio.emit("leave", payload, callback=True)
    assert isinstance(ack, dict) and isinstance(ack["ok"], bool) and ack.get("error") != HANDLER_FAILED
    assert sio.is_connected()
    sio.disconnect()
