"""GET /metrics: Prometheus' text format, every name tracker_, for the scraper only."""
import re


def scrape(app, **request):
    return app.test_client().get("/metrics", **request)


def test_with_a_token_only_its_bearer_reads_the_metrics(app):
    app.config["METRICS_TOKEN"] = "s3cret-scrape"
    assert scrape(app).status_code == 404
    assert scrape(app, headers={"Authorization": "Bearer wrong"}).status_code == 404
    response = scrape(app, headers={"Authorization": "Bearer s3cret-scrape"})
    assert response.status_code == 200 and response.mimetype == "text/plain"
    names = set(re.findall(r"^(?:# TYPE )?([a-zA-Z_:][a-zA-Z0-9_:]*)", response.get_data(as_text=True), re.M))
    names.discard("#")
    assert names and all(name.startswith("tracker_") for name in names), sorted(names)
    assert re.search(r"^tracker_readers 0\.0$", response.get_data(as_text=True), re.M)
    assert "tracker_process_cpu_seconds_total" in names


def test_without_a_token_only_the_listed_addresses_read_them(app):
    app.config["METRICS_ADDRESSES"] = ("10.0.0.5",)
    assert scrape(app, environ_base={"REMOTE_ADDR": "10.0.0.5"}).status_code == 200
    assert scrape(app, environ_base={"REMOTE_ADDR": "203.0.113.9"}).status_code == 404
