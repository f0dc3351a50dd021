"""The load balancer's health check."""


def test_healthz_reports_the_database(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.get_json() == {"ok": True, "database": "ok"}


def test_healthz_is_503_when_the_queue_is_unreachable(app, client):
    app.config["SOCKETIO_MESSAGE_QUEUE"] = "redis://127.0.0.1:1/0"
    response = client.get("/healthz")
    assert response.status_code == 503
    data = response.get_json()
    assert data["ok"] is False and data["database"] == "ok" and data["queue"].startswith("unreachable")
