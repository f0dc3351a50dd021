"""The load balancer's health check, and the answers while the database is out."""
import re
import sqlite3

import pytest
from helpers import csrf_from
from sqlalchemy import make_url
from sqlalchemy.exc import OperationalError

from tracker import queries
from tracker.errors import DATABASE_DOWN


def test_healthz_reports_the_database(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.get_json() == {"ok": True, "database": "ok"}


def test_healthz_is_503_when_the_queue_is_unreachable(app, client):
    app.config["SOCKETIO_MESSAGE_QUEUE"] = "redis://127.0.0.1:1/0"
    response = client.get("/healthz")
    assert response.status_code == 503
    data = response.get_json()
    assert data["ok"] is False and data["database"] == "ok" and data["queue"].startswith("unreachable")


def test_healthz_is_503_while_another_connection_holds_the_sqlite_write_lock(client, database_url):
    if not database_url.startswith("sqlite"):
        pytest.skip("SQLite's write lock; PostgreSQL's outage is in test_faults.py")
    assert client.get("/healthz").status_code == 200  # the file exists, in WAL mode
    holder = sqlite3.connect(make_url(database_url).database, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        response = client.get("/healthz")
    finally:
        holder.close()
    assert response.status_code == 503
    assert response.get_json() == {"ok": False, "database": "locked (changes cannot be saved)"}
    assert client.get("/healthz").status_code == 200


def test_a_database_outage_is_a_503_and_the_editor_gets_the_form_back(editor_client, story, monkeypatch):
    page = editor_client.get(f"/editor/stories/{story}").get_data(as_text=True)
    key = re.search(r'name="idempotency_key" type="hidden" value="([0-9a-f]+)"', page).group(1)

    def unreachable(*args, **kwargs):
        raise OperationalError("SELECT 1", {}, ConnectionRefusedError("connection refused"))

    monkeypatch.setattr(queries, "story_by_slug", unreachable)
    typed = {"csrf_token": csrf_from(page), "idempotency_key": key, "headline": "Levee <holds>",
             "body": "Water stays **below** the top."}
    response = editor_client.post(f"/editor/stories/{story}", data=typed)
    html = response.get_data(as_text=True)
    assert response.status_code == 503 and DATABASE_DOWN in html and "Traceback" not in html
    assert 'value="Levee &lt;holds&gt;"' in html and "Water stays **below** the top.</textarea>" in html
    assert f'value="{key}"' in html and csrf_from(html)
    response = editor_client.post(f"/editor/stories/{story}", data=typed, headers={"Accept": "application/json"})
    assert response.status_code == 503 and response.get_json() == {"ok": False, "error": DATABASE_DOWN}
    response = editor_client.get(f"/stories/{story}")
    assert response.status_code == 503 and DATABASE_DOWN in response.get_data(as_text=True)
    response = editor_client.get(f"/api/stories/{story}")
    assert response.status_code == 503 and response.get_json() == {"ok": False, "error": DATABASE_DOWN}
