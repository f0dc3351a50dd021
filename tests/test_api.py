"""The JSON API: public reads, token-authenticated writes through the service layer."""
from datetime import UTC, datetime, timedelta

import pytest
from helpers import make_user
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from tracker import services
from tracker.extensions import db
from tracker.models import ApiToken, Entry, EntryVersion, User
from tracker.services import MAX_BODY


@pytest.fixture
def token(app):
    """A valid bearer token."""
    with app.app_context():
        return services.create_token("newsdesk")[1]


@pytest.fixture
def auth(token):
    return {"Authorization": f"Bearer {token}"}


def post_entry(client, auth, slug, **json):
    return client.post(f"/api/stories/{slug}/entries", json={"body": "Update", **json}, headers=auth)


def test_token_is_stored_only_as_a_hash(app, token):
    with app.app_context():
        row = db.session.scalar(select(ApiToken))
    assert token.startswith("trk_") and token not in row.token_hash and len(row.token_hash) == 64


def test_reads_need_no_token(client, auth, story):
    post_entry(client, auth, story, headline="First")
    assert client.get("/api/stories").get_json()["stories"][0]["slug"] == story
    assert client.get(f"/api/stories/{story}").get_json()["story"]["rev"] == 2
    data = client.get(f"/api/stories/{story}/entries").get_json()
    assert data["rev"] == 2 and [e["headline"] for e in data["entries"]] == ["First"]


@pytest.mark.parametrize("method, path", [
    ("post", "/api/stories"), ("patch", "/api/stories/s"), ("post", "/api/stories/s/end"),
    ("post", "/api/stories/s/entries"), ("patch", "/api/entries/1"), ("delete", "/api/entries/1")])
@pytest.mark.parametrize("header", ["Bearer nope", "Bearer trk_forged", "Basic dXNlcjpwYXNz"])
def test_writes_with_a_malformed_or_forged_token_are_401(client, method, path, header):
    response = getattr(client, method)(path, json={}, headers={"Authorization": header})
    assert response.status_code == 401 and "Bearer" in response.headers["WWW-Authenticate"]
    assert "API token" in response.get_json()["error"]


def test_revoked_token_is_refused(app, client, auth, story):
    with app.app_context():
        assert services.revoke_token("newsdesk") == 1
    assert post_entry(client, auth, story).status_code == 401


def test_create_story(client, auth):
    response = client.post("/api/stories", json={"title": "Harbour fire", "summary": "Smoke"}, headers=auth)
    assert response.status_code == 201 and response.headers["Location"] == "/api/stories/harbour-fire"
    assert response.get_json()["story"]["slug"] == "harbour-fire"


def test_append_entry_broadcasts_like_the_form(app, client, auth, story, socket_client):
    reader = socket_client()
    reader.emit("join", {"story": story, "since": 0}, callback=True)
    response = post_entry(client, auth, story, body="Crews **arrive**", headline="Crews", key=True)
    assert response.status_code == 201
    entry = response.get_json()["entry"]
    assert entry["html"] == "<p>Crews <strong>arrive</strong></p>\n" and entry["key"] is True
    assert response.headers["Location"] == f"/stories/{story}/entries/{entry['id']}"
    [event] = [e["args"][0] for e in reader.get_received() if e["name"] == "entry"]
    assert event == entry


def test_idempotency_key_publishes_once(app, client, auth, story):
    headers = {**auth, "Idempotency-Key": "import-42"}
    first = client.post(f"/api/stories/{story}/entries", json={"body": "Once"}, headers=headers)
    again = client.post(f"/api/stories/{story}/entries", json={"body": "Once"}, headers=headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.get_json()["entry"]["id"] == again.get_json()["entry"]["id"]
    with app.app_context():
        assert db.session.scalar(select(func.count(Entry.id))) == 1


def test_patch_and_delete_entry(client, auth, story):
    entry_id = post_entry(client, auth, story, body="Draft").get_json()["entry"]["id"]
    patched = client.patch(f"/api/entries/{entry_id}", json={"body": "Final", "pinned": True}, headers=auth)
    state = patched.get_json()["entry"]
    assert patched.status_code == 200 and state["html"] == "<p>Final</p>\n" and state["pinned"] and state["edited_at"]
    deleted = client.delete(f"/api/entries/{entry_id}", headers=auth)
    assert deleted.status_code == 200 and deleted.get_json()["entry"]["deleted"] is True
    again = client.patch(f"/api/entries/{entry_id}", json={"body": "Back"}, headers=auth)
    assert again.status_code == 410


def test_end_reopen_and_patch_story(client, auth, story):
    assert client.post(f"/api/stories/{story}/end", headers=auth).get_json()["story"]["status"] == "ended"
    refused = post_entry(client, auth, story)
    assert refused.status_code == 409 and "Reopen it" in refused.get_json()["error"]
    assert client.post(f"/api/stories/{story}/reopen", headers=auth).get_json()["story"]["status"] == "live"
    patched = client.patch(f"/api/stories/{story}", json={"title": "New title", "status": "ended"}, headers=auth)
    assert patched.get_json()["story"]["title"] == "New title" and patched.get_json()["story"]["status"] == "ended"


def test_a_storys_reading_order_is_created_patched_and_broadcast(client, auth, socket_client):
    created = client.post("/api/stories", json={"title": "Ask us anything", "order": "oldest"}, headers=auth)
    assert created.status_code == 201 and created.get_json()["story"]["order"] == "oldest"
    reader = socket_client()
    reader.emit("join", {"story": "ask-us-anything", "since": 1}, callback=True)
    patched = client.patch("/api/stories/ask-us-anything", json={"order": "newest"}, headers=auth).get_json()["story"]
    assert (patched["order"], patched["rev"]) == ("newest", 2)
    assert [e["args"][0]["order"] for e in reader.get_received() if e["name"] == "story"] == ["newest"]
    assert client.get("/api/stories").get_json()["stories"][0]["order"] == "newest"
    refused = client.patch("/api/stories/ask-us-anything", json={"order": "random"}, headers=auth)
    assert refused.status_code == 422 and refused.get_json()["field"] == "order"
    assert client.post("/api/stories", json={"title": "Default"}, headers=auth).get_json()["story"]["order"] == "newest"


def test_a_storys_language_is_created_patched_and_checked(client, auth):
    created = client.post("/api/stories", json={"title": "Tempête Ciarán", "language": "fr"}, headers=auth)
    assert created.status_code == 201 and created.get_json()["story"]["language"] == "fr"
    patched = client.patch("/api/stories/tempete-ciaran", json={"language": "ar"}, headers=auth).get_json()["story"]
    assert patched["language"] == "ar"
    refused = client.patch("/api/stories/tempete-ciaran", json={"language": "xx"}, headers=auth)
    assert refused.status_code == 422 and refused.get_json()["field"] == "language"
    assert client.post("/api/stories", json={"title": "Default"}, headers=auth).get_json()["story"]["language"] == "en"


def test_change_feed_by_revision_and_pages_by_cursor(client, auth, story):
    ids = [post_entry(client, auth, story, body=f"Update {n}").get_json()["entry"]["id"] for n in range(5)]
    client.delete(f"/api/entries/{ids[0]}", headers=auth)
    feed = client.get(f"/api/stories/{story}/entries?after_rev=3&limit=2").get_json()
    assert [e["rev"] for e in feed["entries"]] == [4, 5] and feed["next_after_rev"] == 5
    rest = client.get(f"/api/stories/{story}/entries?after_rev=5").get_json()
    assert [(e["id"], e["deleted"]) for e in rest["entries"]] == [(ids[4], False), (ids[0], True)]
    assert rest["next_after_rev"] is None
    page = client.get(f"/api/stories/{story}/entries?limit=2").get_json()
    assert [e["id"] for e in page["entries"]] == [ids[4], ids[3]] and page["next_before"] == ids[3]
    older = client.get(f"/api/stories/{story}/entries?limit=2&before={ids[3]}").get_json()
    assert [e["id"] for e in older["entries"]] == [ids[2], ids[1]] and older["next_before"] is None


@pytest.mark.parametrize("query", ["limit=0x10", "limit=101", "after_rev=-1", "before=abc", "limit=²"])
def test_bad_paging_arguments_are_400(client, story, query):
    response = client.get(f"/api/stories/{story}/entries?{query}")
    assert response.status_code == 400 and response.get_json()["ok"] is False


@pytest.mark.parametrize("kwargs, status, message", [
    ({"data": "not json", "content_type": "text/plain"}, 400, "Send a JSON object"),
    ({"json": ["a", "list"]}, 400, "Send a JSON object"),
    ({"json": {"body": ""}}, 422, "Write the update"),
    ({"json": {"body": 5}}, 422, "'body' must be a string"),
    ({"json": {"body": "x", "key": "yes"}}, 422, "'key' must be true or false"),
    ({"json": {"body": "x", "author": "me"}}, 422, "Unknown field(s): author"),
    ({"json": {"body": "x" * (MAX_BODY + 1)}}, 413, "too long"),
    ({"json": {"body": "x" * 300_000}}, 413, "too much to send"),
])
def test_bad_entry_input_gets_a_json_error(client, auth, story, kwargs, status, message):
    response = client.post(f"/api/stories/{story}/entries", headers=auth, **kwargs)
    assert response.status_code == status
    assert message in response.get_json()["error"]


def test_conflicts_and_missing_things(client, auth, story):
    duplicate = client.post("/api/stories", json={"title": "Again", "slug": story}, headers=auth)
    assert duplicate.status_code == 409 and duplicate.get_json()["field"] == "slug"
    assert client.get("/api/stories/nope").status_code == 404
    assert client.patch("/api/entries/999", json={"body": "x"}, headers=auth).status_code == 404
    assert client.put(f"/api/stories/{story}", headers=auth).status_code == 405


def test_token_cli_prints_the_token_alone_on_the_last_line(app, client, story):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["token", "create", "wire-desk"])
    assert result.exit_code == 0, result.output
    token = result.output.strip().splitlines()[-1]
    assert token.startswith("trk_") and " " not in token
    headers = {"Authorization": f"Bearer {token}"}
    wire = client.post(f"/api/stories/{story}/entries", json={"body": "From the wire"}, headers=headers)
    assert wire.status_code == 201
    assert runner.invoke(args=["token", "create", "wire-desk"]).exit_code == 1
    assert "revoked" in runner.invoke(args=["token", "revoke", "wire-desk"]).output
    assert client.post(f"/api/stories/{story}/entries", json={"body": "x"}, headers=headers).status_code == 401
    assert runner.invoke(args=["token", "revoke", "wire-desk"]).exit_code == 1


def test_method_not_allowed_says_what_is(client, story):
    response = client.put(f"/api/stories/{story}")
    assert response.status_code == 405 and set(response.headers["Allow"].replace(" ", "").split(",")) >= {
        "GET", "PATCH"}


@pytest.mark.parametrize("kwargs, status", [
    ({"json": {"title": "Ok", "image_url": "http://["}}, 422),
    ({"json": {"title": "Ok", "image_url": "http://a\uff03b"}}, 422),
    ({"data": "[" * 100_000 + "]" * 100_000, "content_type": "application/json"}, 400),
    ({"data": '{"title": "\\ud800"}', "content_type": "application/json"}, 422),
])
def test_hostile_story_input_is_a_clear_error(client, auth, kwargs, status):
    response = client.post("/api/stories", headers=auth, **kwargs)
    assert response.status_code == status and response.get_json()["ok"] is False


@pytest.mark.parametrize("query", ["limit=" + "9" * 5000, "after_rev=" + "1" * 5000])
def test_absurdly_long_numbers_are_400(client, story, query):
    assert client.get(f"/api/stories/{story}/entries?{query}").status_code == 400


def test_a_refused_story_patch_changes_nothing(client, auth, story):
    response = client.patch(f"/api/stories/{story}", json={"title": "Changed", "status": "bogus"}, headers=auth)
    assert response.status_code == 422
    assert client.get(f"/api/stories/{story}").get_json()["story"]["title"] == "Flood warning on the river"


def story_rev(client, slug):
    return client.get(f"/api/stories/{slug}").get_json()["story"]["rev"]


def test_a_multi_field_entry_patch_is_one_change_per_row(app, client, auth, story, socket_client):
    pinned = post_entry(client, auth, story, body="Pinned", pinned=True).get_json()["entry"]
    entry = post_entry(client, auth, story, body="Draft").get_json()["entry"]
    reader = socket_client()
    reader.emit("join", {"story": story, "since": story_rev(client, story)}, callback=True)
    response = client.patch(f"/api/entries/{entry['id']}", headers=auth,
                            json={"body": "Final", "headline": "News", "key": True, "pinned": True})
    state = response.get_json()["entry"]
    assert response.status_code == 200 and (state["headline"], state["key"], state["pinned"]) == ("News", True, True)
    events = [e["args"][0] for e in reader.get_received() if e["name"] == "entry"]
    # The unpinned entry and the patched one change once each: one revision and one event apiece.
    assert [(e["id"], e["rev"]) for e in events] == [(pinned["id"], entry["rev"] + 1), (entry["id"], entry["rev"] + 2)]
    assert story_rev(client, story) == entry["rev"] + 2 and events[1] == state
    with app.app_context():
        assert db.session.scalar(select(func.count(EntryVersion.id))) == 1


def test_a_multi_field_story_patch_is_one_change(client, auth, story, socket_client):
    reader = socket_client()
    reader.emit("join", {"story": story, "since": 1}, callback=True)
    response = client.patch(f"/api/stories/{story}", headers=auth,
                            json={"title": "River peaks", "summary": "At noon", "status": "ended"})
    state = response.get_json()["story"]
    assert (state["title"], state["summary"], state["status"], state["rev"]) == ("River peaks", "At noon", "ended", 2)
    assert [e["args"][0] for e in reader.get_received() if e["name"] == "story"] == [state]


def fail_while_unpinning(monkeypatch):
    """The database fails partway through a change, after its story was locked (while unpinning)."""
    def unreachable(*args):
        raise OperationalError("SELECT", {}, Exception("connection lost"))

    monkeypatch.setattr(services, "_unpin_others", unreachable)


@pytest.mark.parametrize("json, status", [
    ({"body": "Final", "headline": "News", "key": True, "pinned": True}, 503),
    ({"key": True, "pinned": True, "headline": "News", "body": "   "}, 422),
])
def test_a_failed_entry_patch_changes_nothing(app, client, auth, story, socket_client, monkeypatch, json, status):
    entry = post_entry(client, auth, story, body="Draft").get_json()["entry"]
    reader = socket_client()
    reader.emit("join", {"story": story, "since": entry["rev"]}, callback=True)
    fail_while_unpinning(monkeypatch)
    response = client.patch(f"/api/entries/{entry['id']}", json=json, headers=auth)
    assert response.status_code == status and response.get_json()["ok"] is False
    assert client.get(f"/api/stories/{story}/entries").get_json()["entries"] == [entry]
    assert story_rev(client, story) == entry["rev"] and reader.get_received() == []
    with app.app_context():
        assert db.session.scalar(select(func.count(EntryVersion.id))) == 0


def personal_token(app, username: str) -> dict:
    """A bearer token made with `token create --user`, as request headers."""
    result = app.test_cli_runner().invoke(args=["token", "create", f"{username}-laptop", "--user", username])
    assert result.exit_code == 0, result.output
    return {"Authorization": f"Bearer {result.output.strip().splitlines()[-1]}"}


def test_a_personal_token_writes_as_its_person_with_their_display_name(app, client, editor, story):
    with app.app_context():
        services.change_user(db.session.scalar(select(User).where(User.username == "alice")),
                             display_name="Alice Moreau")
    response = client.post(f"/api/stories/{story}/entries", json={"body": "Bridge closed."},
                           headers=personal_token(app, "alice"))
    assert response.status_code == 201 and response.get_json()["entry"]["author"] == "Alice Moreau"
    assert "By Alice Moreau" in client.get(f"/stories/{story}").get_data(as_text=True)
    assert "<name>Alice Moreau</name>" in client.get(f"/stories/{story}/feed.atom").get_data(as_text=True)
    assert '"author": {"@type": "Person", "name": "Alice Moreau"}' in client.get(f"/stories/{story}").get_data(
        as_text=True)
    assert client.get(f"/api/stories/{story}/entries?after_rev=0").get_json()["entries"][0]["author"] == "Alice Moreau"


def test_a_contributors_token_submits_for_review_may_not_publish_and_a_disabled_persons_token_is_dead(
        app, client, story):
    make_user(app, "cole", "contributor")
    make_user(app, "eve", "editor")
    contributor, eve = personal_token(app, "cole"), personal_token(app, "eve")
    submitted = client.post(f"/api/stories/{story}/entries", json={"body": "Bridge closed."}, headers=contributor)
    assert submitted.status_code == 201
    assert submitted.get_json()["entry"]["status"] == "submitted" and submitted.get_json()["entry"]["author"] == "cole"
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    for asked in ({"status": "published"}, {"publish_at": later}, {"publish_at": "2000-01-01T00:00:00Z"}):
        refused = client.post(f"/api/stories/{story}/entries", json={"body": "x", **asked}, headers=contributor)
        assert refused.status_code == 403 and "Ask an editor" in refused.get_json()["error"]
    with app.app_context():
        services.set_user_active(db.session.scalar(select(User).where(User.username == "eve")), False)
    assert client.post(f"/api/stories/{story}/entries", json={"body": "x"}, headers=eve).status_code == 401
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Entry)) == 1


def test_token_create_for_an_unknown_person_is_refused(app):
    result = app.test_cli_runner().invoke(args=["token", "create", "laptop", "--user", "nobody"])
    assert result.exit_code == 1 and "There is no account 'nobody'." in result.output


def test_one_entry_with_its_version_as_etag(app, client, auth, story):
    entry = client.post(f"/api/stories/{story}/entries", json={"body": "Bridge closed."}, headers=auth).get_json()
    got = client.get(f"/api/entries/{entry['entry']['id']}")
    assert got.status_code == 200 and got.get_json()["entry"] == entry["entry"]
    assert got.headers["ETag"] == f'"{entry["entry"]["rev"]}"'
    client.delete(f"/api/entries/{entry['entry']['id']}", headers=auth)
    assert client.get(f"/api/entries/{entry['entry']['id']}").status_code == 410
    assert client.get("/api/entries/999999").status_code == 404


def test_if_match_applies_a_correction_only_to_the_version_it_started_from(app, client, auth, story):
    make_user(app, "alice", "editor")
    alice = personal_token(app, "alice")
    entry_id = client.post(f"/api/stories/{story}/entries", json={"body": "Bridge closed."},
                           headers=auth).get_json()["entry"]["id"]
    etag = client.get(f"/api/entries/{entry_id}").headers["ETag"]
    first = client.patch(f"/api/entries/{entry_id}", json={"body": "Bridge closed both ways."},
                         headers={**alice, "If-Match": etag})
    assert first.status_code == 200 and first.headers["ETag"] != etag
    late = client.patch(f"/api/entries/{entry_id}", json={"body": "Bridge open."}, headers={**auth, "If-Match": etag})
    body = late.get_json()
    assert late.status_code == 412 and body["ok"] is False and body["error"].startswith("alice changed this update")
    assert body["current"] == first.get_json()["entry"]
    assert client.get(f"/api/entries/{entry_id}").get_json()["entry"]["html"] == "<p>Bridge closed both ways.</p>\n"
    assert client.patch(f"/api/entries/{entry_id}", json={"body": "Bridge open."},
                        headers={**auth, "If-Match": first.headers["ETag"]}).status_code == 200
    assert client.patch(f"/api/entries/{entry_id}", json={"pinned": True},
                        headers={**auth, "If-Match": "*"}).status_code == 200
    page = client.get(f"/stories/{story}/entries/{entry_id}").get_data(as_text=True)
    assert "Correction by alice, published" in page  # the earlier versions say who wrote them


# Entry states: drafts, submissions, the schedule

LATER = (datetime.now(UTC) + timedelta(days=365)).isoformat()


def test_nothing_unpublished_reaches_a_reader_and_publishing_reaches_them_once(app, client, auth, story,
                                                                              socket_client):
    make_user(app, "cole", "contributor")
    published = post_entry(client, auth, story, body="Bridge open.").get_json()["entry"]
    reader = socket_client()
    assert reader.emit("join", {"story": story, "since": 0}, callback=True)["rev"] == published["rev"]
    secret = {"draft": post_entry(client, auth, story, body="Secret draft", status="draft"),
              "submitted": post_entry(client, personal_token(app, "cole"), story, body="Secret submission"),
              "scheduled": post_entry(client, auth, story, body="Secret schedule", publish_at=LATER)}
    ids = {}
    for status, response in secret.items():
        entry = response.get_json()["entry"]
        assert response.status_code == 201 and entry["status"] == status and entry["rev"] < 0
        ids[status] = entry["id"]
    assert secret["scheduled"].get_json()["entry"]["publish_at"].startswith(LATER[:16])
    public = [f"/stories/{story}", f"/stories/{story}/entries", f"/stories/{story}/feed.atom", "/feed.atom",
              f"/embed/{story}", f"/api/stories/{story}", f"/api/stories/{story}/entries",
              f"/api/stories/{story}/entries?after_rev=0", "/api/stories", "/"]
    for path in public:
        assert "Secret" not in client.get(path).get_data(as_text=True), path
    for entry_id in ids.values():
        for path in (f"/stories/{story}/entries/{entry_id}", f"/embed/{story}/entries/{entry_id}",
                     f"/oembed?url=/stories/{story}/entries/{entry_id}", f"/api/entries/{entry_id}"):
            assert client.get(path).status_code == 404, path
    assert "Secret" not in app.test_cli_runner().invoke(args=["export", story]).output
    assert client.get("/api/stories").get_json()["stories"][0]["entries"] == 1
    ack = reader.emit("join", {"story": story, "since": 0}, callback=True)
    assert ack["rev"] == published["rev"] and [e["id"] for e in ack["entries"]] == [published["id"]]
    assert [e["name"] for e in reader.get_received()] == []

    made = client.post(f"/api/entries/{ids['draft']}/publish", headers=auth)
    entry = made.get_json()["entry"]
    assert made.status_code == 200 and entry["status"] == "published" and entry["rev"] == published["rev"] + 1
    assert entry["created_at"] > published["created_at"] and made.headers["ETag"] == f'"{entry["rev"]}"'
    assert [(e["name"], e["args"][0]["id"]) for e in reader.get_received()] == [("entry", ids["draft"])]
    again = client.post(f"/api/entries/{ids['draft']}/publish", headers=auth)
    assert again.status_code == 409 and "already published" in again.get_json()["error"]
    assert reader.get_received() == []
    assert "Secret draft" in client.get(f"/stories/{story}").get_data(as_text=True)


def test_the_drafts_list_is_the_newsrooms_and_a_contributor_sees_their_own(app, client, auth, story):
    make_user(app, "cole", "contributor")
    make_user(app, "dana", "contributor")
    cole, dana = personal_token(app, "cole"), personal_token(app, "dana")
    coles = post_entry(client, cole, story, body="Cole's", status="draft").get_json()["entry"]
    post_entry(client, dana, story, body="Dana's")
    scheduled = post_entry(client, auth, story, body="Desk's", publish_at=LATER).get_json()["entry"]
    post_entry(client, auth, story, body="Out already.")
    listed = client.get(f"/api/stories/{story}/drafts", headers=auth).get_json()["entries"]
    assert [e["excerpt"] for e in listed] == ["Desk's", "Dana's", "Cole's"], "the schedule first, then the latest"
    assert [e["id"] for e in client.get(f"/api/stories/{story}/drafts", headers=cole).get_json()["entries"]] == [
        coles["id"]]
    assert client.get(f"/api/stories/{story}/drafts").status_code == 401
    assert client.get(f"/api/entries/{coles['id']}", headers=cole).status_code == 200
    assert client.get(f"/api/entries/{coles['id']}", headers=dana).status_code == 403
    probe = client.patch(f"/api/entries/{coles['id']}", json={}, headers={**dana, "If-Match": '"0"'})
    assert probe.status_code == 403 and "current" not in probe.get_json(), "no 412 with the entry in it"
    assert client.get(f"/api/entries/{coles['id']}", headers={"Authorization": "Bearer nope"}).status_code == 404
    assert client.get(f"/api/entries/{scheduled['id']}", headers=auth).get_json()["entry"]["status"] == "scheduled"


def test_unpublished_entries_move_along_with_patch(app, client, auth, story):
    make_user(app, "cole", "contributor")
    cole = personal_token(app, "cole")
    draft = post_entry(client, cole, story, body="Queues.", status="draft").get_json()["entry"]
    path = f"/api/entries/{draft['id']}"
    edited = client.patch(path, json={"body": "Long queues.", "status": "submitted"}, headers=cole)
    assert edited.status_code == 200 and edited.get_json()["entry"]["status"] == "submitted"
    assert edited.headers["ETag"] == f'"{draft["rev"] - 2}"', "a text change and a step: two desk revisions"
    stale = client.patch(path, json={"status": "draft", "note": "Source?"}, headers={**auth, "If-Match": '"-1"'})
    assert stale.status_code == 412 and stale.get_json()["current"]["status"] == "submitted"
    back = client.patch(path, json={"status": "draft", "note": "Which school?"}, headers=auth).get_json()["entry"]
    assert (back["status"], back["review_note"]) == ("draft", "Which school?")
    later = client.patch(path, json={"publish_at": LATER}, headers=auth).get_json()["entry"]
    assert later["status"] == "scheduled" and "review_note" not in later
    assert client.patch(path, json={"body": "Mine again."}, headers=cole).status_code == 403
    assert client.patch(path, json={"status": "published"}, headers=cole).status_code == 403
    assert client.patch(path, json={"status": "published"}, headers=auth).get_json()["entry"]["status"] == "published"
