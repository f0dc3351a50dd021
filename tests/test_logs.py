"""Logs: one JSON object per line with LOG_FORMAT=json, and the request id from nginx in every record and answer.

The served process's own lines (python app.py with LOG_FORMAT=json) are checked in test_metrics.py's live test."""
import io
import json
import logging
import re

import pytest

from tracker import logs

# Formatting and request headers do not depend on the database engine.
pytestmark = pytest.mark.engine_independent


@pytest.fixture
def captured(app):
    """The JSON lines logged by the `tracker.test` logger, with a route at /_log that logs while answering."""
    stream, logger = io.StringIO(), logging.getLogger("tracker.test")
    made = logs.handler("json", stream)
    logger.addHandler(made)
    logger.setLevel(logging.INFO)

    @app.get("/_log")
    def log_something():
        logger.info("first line\nsecond line", extra={"story": "flood"})
        try:
            raise ValueError("no such thing")
        except ValueError:
            logger.exception("it failed")
        return "logged"

    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    logger.removeHandler(made)
    logger.setLevel(logging.NOTSET)


def test_json_logs_are_one_object_per_line_with_the_request_id(client, captured):
    response = client.get("/_log", headers={"X-Request-ID": "abc-123"})
    assert response.headers["X-Request-ID"] == "abc-123"
    first, failed = captured()  # two records, two lines: the newline in the message is escaped
    assert set(first) >= {"time", "level", "logger", "message", "request_id"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", first["time"])
    assert (first["level"], first["logger"], first["message"], first["request_id"], first["story"]) == (
        "INFO", "tracker.test", "first line\nsecond line", "abc-123", "flood")
    assert "exc_info" not in first
    assert failed["level"] == "ERROR" and failed["request_id"] == "abc-123"
    assert failed["exc_info"].startswith("Traceback") and "ValueError: no such thing" in failed["exc_info"]


@pytest.mark.parametrize("sent", ["", "has spaces", "x" * 65, "<script>", "id\u00e9"])
def test_a_missing_or_unusable_request_id_is_replaced_by_a_fresh_one(client, captured, sent):
    headers = {"X-Request-ID": sent} if sent else {}
    answer, again = client.get("/_log", headers=headers), client.get("/_log", headers=headers)
    made = answer.headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", made) and again.headers["X-Request-ID"] != made
    assert captured()[0]["request_id"] == made


def test_every_answer_carries_its_request_id(client):
    assert client.get("/no/such/page", headers={"X-Request-ID": "nginx.7f3a_1"}).headers["X-Request-ID"] == (
        "nginx.7f3a_1")
    assert re.fullmatch(r"[0-9a-f]{32}", client.get("/healthz").headers["X-Request-ID"])


def test_records_outside_a_request_have_no_id_and_the_text_format_stays_as_it_was():
    stream, text_stream = io.StringIO(), io.StringIO()
    record = logging.LogRecord("tracker.scheduler", logging.WARNING, __file__, 1, "late by %s s", (7,), None)
    for made in (logs.handler("json", stream), logs.handler("text", text_stream)):
        if made.filter(record):
            made.emit(record)
    entry = json.loads(stream.getvalue())
    assert entry["request_id"] is None and entry["message"] == "late by 7 s" and entry["level"] == "WARNING"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} WARNING tracker.scheduler: late by 7 s\n",
                        text_stream.getvalue())
    with pytest.raises(ValueError, match="LOG_FORMAT"):
        logs.handler("yaml")
