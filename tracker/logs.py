"""Logs: the human format by default, one JSON object per line with LOG_FORMAT=json; each record made
while a request is handled carries the request's id.

The id comes from nginx (`proxy_set_header X-Request-ID $request_id`, deploy/nginx.conf), which
writes it in its access log too, so one id finds a request in both logs. A request without a
usable one (straight to the process, or a header that is not a short token) gets a fresh id. The
id is on flask.g, in every log record of the request (RequestIdFilter, on the handler) and in the
answer's X-Request-ID header. Socket.IO events run in a request context made from their
connection's first request, so their records carry that request's id.
"""
from __future__ import annotations

import json
import logging
import re
import uuid
from datetime import UTC, datetime

from flask import Flask, g, has_request_context, request

HEADER = "X-Request-ID"
SANE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
HUMAN = "%(asctime)s %(levelname)s %(name)s: %(message)s"  # LOG_FORMAT=text, the default
FORMATS = ("text", "json")
# The attributes every LogRecord has; the others were passed with `extra=` and go into the JSON as they are.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime", "request_id"}


def request_id() -> str | None:
    """The current request's id (made on first use), or None outside a request."""
    if not has_request_context():
        return None
    current = g.get("request_id")
    if current is None:
        sent = request.headers.get(HEADER, "")
        current = g.request_id = sent if SANE_ID.fullmatch(sent) else uuid.uuid4().hex
    return current


class RequestIdFilter(logging.Filter):
    """Give each record the id of the request it was made in (None outside one); lets every record through."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            try:
                record.request_id = request_id()
            except Exception:  # a log call must never fail because of its id
                record.request_id = None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line: time (UTC, ISO 8601), level, logger, message, request_id,
    exc_info (the traceback's text) and stack_info when there are, and any fields passed with `extra=`."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace(
                "+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exc_info"] = record.exc_text
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in entry:
                entry[key] = value
        return json.dumps(entry, default=str, ensure_ascii=False)


def handler(log_format: str = "text", stream=None) -> logging.Handler:
    """A stream handler (stderr by default) writing `log_format` ("text" or "json"), with the request id filter."""
    if log_format not in FORMATS:
        raise ValueError(f"LOG_FORMAT must be one of {', '.join(FORMATS)}, not {log_format!r}")
    made = logging.StreamHandler(stream)
    made.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(HUMAN))
    made.addFilter(RequestIdFilter())
    return made


def configure(log_format: str = "text", level: int = logging.INFO) -> None:
    """The serving process's logging: every logger's records, at `level` and up, to stderr in `log_format`."""
    logging.basicConfig(level=level, handlers=[handler(log_format)])


def library_logger(name: str) -> logging.Logger:
    """python-socketio's or Engine.IO's logger, at ERROR, writing through the process's handler only.

    Given no logger, each library adds a stderr handler of its own to it, so each of its errors
    was written twice, once in neither the configured format nor with the request id."""
    logger = logging.getLogger(name)
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.ERROR)  # the libraries' own default level
    return logger


def init_app(app: Flask) -> None:
    """Answer every request with its id in X-Request-ID."""

    @app.after_request
    def echo_request_id(response):
        response.headers[HEADER] = request_id()
        return response
