"""Editor pages: forms, JSON answers for the page's script, controls and permissions."""

import io
import re

import pytest
from helpers import JSON, csrf_from, form_page, login, make_user, post_entry
from PIL import Image
from sqlalchemy import func, select

from tracker.extensions import db
from tracker.models import Entry, Story, User
from tracker.services import MAX_BODY

# The forms call the same services as the API; test_services and test_api cover the engine.
pytestmark = pytest.mark.engine_independent


def entries(app):
    with app.app_context():
        return db.session.scalars(select(Entry).order_by(Entry.id)).all()


def test_an_unknown_story_in_the_editor_sends_anonymous_readers_to_login(client):
    response = client.get("/editor/stories/no-such-story")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_create_story_with_derived_slug(editor_client, app):
    token, _ = form_page(editor_client, "/editor/stories/new")
    response = editor_client.post("/editor/stories/new", data={
        "csrf_token": token, "title": "Harbour fire", "slug": "", "summary": "Smoke over the docks", "status": "live"})
    assert response.status_code == 302 and response.headers["Location"] == "/editor/stories/harbour-fire"
    with app.app_context():
        assert db.session.scalar(select(Story.title).where(Story.slug == "harbour-fire")) == "Harbour fire"


@pytest.mark.parametrize("data, message", [
    ({"title": ""}, "This field is required."),
    ({"title": "Ok", "slug": "Bad Slug"}, "Slug may contain only lowercase letters"),
    ({"title": "Ok", "image_url": "javascript:alert(1)"}, "Image URL must be an http"),
    ({"title": "t" * 201}, "Field cannot be longer than 200 characters."),
])
def test_invalid_story_form_is_re_rendered_with_field_errors(editor_client, data, message):
    token, _ = form_page(editor_client, "/editor/stories/new")
    response = editor_client.post("/editor/stories/new", data={"csrf_token": token, "status": "live", **data})
    assert response.status_code in (400, 413)
    html = response.get_data(as_text=True)
    assert message in html and 'class="field__error"' in html


def test_duplicate_slug_is_refused_on_the_form(editor_client, story):
    token, _ = form_page(editor_client, "/editor/stories/new")
    response = editor_client.post("/editor/stories/new", data={
        "csrf_token": token, "title": "Again", "slug": story, "status": "live"})
    assert response.status_code == 409 and "already taken" in response.get_data(as_text=True)


def test_plain_form_post_publishes_and_redirects(editor_client, app, story):
    response = post_entry(editor_client, story, "Levels at **4.2 m**", "River peaks", key="y")
    assert response.status_code == 302 and response.headers["Location"] == f"/editor/stories/{story}"
    [entry] = entries(app)
    assert entry.headline == "River peaks" and entry.key_event and "<strong>4.2 m</strong>" in entry.html
    assert entry.author.username == "alice"
    assert "Update published." in editor_client.get(response.headers["Location"]).get_data(as_text=True)


def test_json_post_answers_with_the_entry_state(editor_client, story):
    response = post_entry(editor_client, story, "Bridge closed", headers=JSON)
    data = response.get_json()
    assert response.status_code == 200 and data["ok"] is True
    assert data["entry"]["html"] == "<p>Bridge closed</p>\n" and data["entry"]["story"] == story


def test_double_submit_with_the_same_key_publishes_once(editor_client, app, story):
    token, idem = form_page(editor_client, f"/editor/stories/{story}")
    data = {"csrf_token": token, "body": "Only once", "idempotency_key": idem}
    first = editor_client.post(f"/editor/stories/{story}", data=data, headers=JSON).get_json()
    second = editor_client.post(f"/editor/stories/{story}", data=data, headers=JSON).get_json()
    assert first["entry"]["id"] == second["entry"]["id"] and second["message"] == "Already published."
    assert len(entries(app)) == 1


def test_each_form_render_gets_a_fresh_idempotency_key(editor_client, story):
    path = f"/editor/stories/{story}"
    assert form_page(editor_client, path)[1] != form_page(editor_client, path)[1]


@pytest.mark.parametrize("body, status, message", [
    ("", 400, "Write the update before publishing it."),
    ("x" * (MAX_BODY + 1), 400,
     "The update is too long: the limit is 20,000 characters. Nothing was cut; shorten it and send again."),
])
def test_bad_entries_get_a_message_and_keep_the_text(editor_client, app, story, body, status, message):
    response = post_entry(editor_client, story, body, "Kept headline")
    html = response.get_data(as_text=True)
    assert response.status_code == status and message in html
    assert 'value="Kept headline"' in html
    assert entries(app) == []
    data = post_entry(editor_client, story, body, headers=JSON)
    assert data.status_code == status and data.get_json() == {
        "ok": False, "error": message, "errors": {"body": [message]}}


def test_oversized_request_is_a_413_with_a_message(editor_client, story):
    token, idem = form_page(editor_client, f"/editor/stories/{story}")
    response = editor_client.post(f"/editor/stories/{story}", data={
        "csrf_token": token, "body": "x" * 300_000, "idempotency_key": idem})
    assert response.status_code == 413


def test_posting_to_an_ended_story_is_refused(editor_client, app, story):
    token, _ = form_page(editor_client, f"/editor/stories/{story}")
    editor_client.post(f"/editor/stories/{story}/status", data={"csrf_token": token, "status": "ended"})
    response = post_entry(editor_client, story, "Too late", headers=JSON)
    assert response.status_code == 409 and "Reopen it" in response.get_json()["error"]


def test_edit_entry_form_keeps_history(editor_client, app, story):
    post_entry(editor_client, story, "Level 4.1 m")
    [entry] = entries(app)
    token, _ = form_page(editor_client, f"/editor/entries/{entry.id}/edit")
    response = editor_client.post(f"/editor/entries/{entry.id}/edit", data={
        "csrf_token": token, "body": "Level 4.2 m", "headline": ""})
    assert response.status_code == 302
    [entry] = entries(app)
    assert entry.body == "Level 4.2 m" and entry.edited_at is not None
    page = editor_client.get(f"/stories/{story}/entries/{entry.id}").get_data(as_text=True)
    assert "Level 4.1 m" in page


@pytest.mark.parametrize("action, attribute, value", [
    ("pin", "pinned", True), ("key", "key_event", True), ("delete", "deleted", True)])
def test_entry_controls(editor_client, app, story, action, attribute, value):
    post_entry(editor_client, story)
    [entry] = entries(app)
    token, _ = form_page(editor_client, f"/editor/stories/{story}")
    response = editor_client.post(f"/editor/entries/{entry.id}/{action}", data={"csrf_token": token}, headers=JSON)
    assert response.get_json()["ok"] is True
    assert getattr(entries(app)[0], attribute) is value


def test_unpin_and_unkey(editor_client, app, story):
    post_entry(editor_client, story, pinned="y", key="y")
    [entry] = entries(app)
    token, _ = form_page(editor_client, f"/editor/stories/{story}")
    for action in ("unpin", "unkey"):
        assert editor_client.post(f"/editor/entries/{entry.id}/{action}", data={"csrf_token": token}).status_code == 302
    [entry] = entries(app)
    assert not entry.pinned and not entry.key_event


def test_changing_a_deleted_entry_is_a_clear_410(editor_client, app, story):
    post_entry(editor_client, story)
    [entry] = entries(app)
    token, _ = form_page(editor_client, f"/editor/stories/{story}")
    editor_client.post(f"/editor/entries/{entry.id}/delete", data={"csrf_token": token})
    response = editor_client.post(f"/editor/entries/{entry.id}/pin", data={"csrf_token": token}, headers=JSON)
    assert response.status_code == 410 and response.get_json()["error"] == "This update was deleted."


def test_unknown_entry_is_a_404(editor_client, story):
    token, _ = form_page(editor_client, f"/editor/stories/{story}")
    assert editor_client.post("/editor/entries/999/delete", data={"csrf_token": token}).status_code == 404
    assert editor_client.get("/editor/entries/999/edit").status_code == 404


def test_end_and_reopen_story(editor_client, app, story):
    token, _ = form_page(editor_client, f"/editor/stories/{story}")
    editor_client.post(f"/editor/stories/{story}/status", data={"csrf_token": token, "status": "ended"})
    assert "This live coverage has ended." in editor_client.get(f"/stories/{story}").get_data(as_text=True)
    editor_client.post(f"/editor/stories/{story}/status", data={"csrf_token": token, "status": "live"})
    with app.app_context():
        assert db.session.scalar(select(Story.status)) == "live"


def test_story_settings_update(editor_client, app, story):
    token, _ = form_page(editor_client, f"/editor/stories/{story}/settings")
    response = editor_client.post(f"/editor/stories/{story}/settings", data={
        "csrf_token": token, "title": "Flood: river peaks", "summary": "Peak at noon", "image_url": ""})
    assert response.status_code == 302
    with app.app_context():
        assert db.session.scalar(select(Story.title)) == "Flood: river peaks"
        assert db.session.scalar(select(Story.order)) == "newest"  # a form without the field keeps it


def test_story_settings_set_the_reading_order(editor_client, app, story):
    page = editor_client.get(f"/editor/stories/{story}/settings").get_data(as_text=True)
    assert '<option selected value="newest">Newest update first</option>' in page
    data = {"csrf_token": csrf_from(page), "title": "Ask the council", "summary": "", "image_url": "",
            "order": "oldest"}
    assert editor_client.post(f"/editor/stories/{story}/settings", data=data).status_code == 302
    with app.app_context():
        assert db.session.scalar(select(Story.order)) == "oldest"
    refused = editor_client.post(f"/editor/stories/{story}/settings", data={**data, "order": "sideways"})
    assert refused.status_code == 400 and "Not a valid choice" in refused.get_data(as_text=True)


def test_editors_cannot_manage_users(editor_client):
    assert editor_client.get("/editor/users").status_code == 403


def test_admin_creates_and_disables_accounts(admin_client, app):
    token, _ = form_page(admin_client, "/editor/users")
    response = admin_client.post("/editor/users", data={
        "csrf_token": token, "username": "bea", "password": "long enough pw", "role": "editor"})
    assert response.status_code == 302
    with app.app_context():
        bea = db.session.scalar(select(User).where(User.username == "bea"))
    admin_client.post(f"/editor/users/{bea.id}/disable", data={"csrf_token": token})
    other = app.test_client()
    assert login(other, "bea", "long enough pw").status_code == 401


def test_admin_cannot_disable_themselves(admin_client, app):
    token, _ = form_page(admin_client, "/editor/users")
    with app.app_context():
        me = db.session.scalar(select(User.id).where(User.username == "root"))
    admin_client.post(f"/editor/users/{me}/disable", data={"csrf_token": token})
    assert admin_client.get("/editor/").status_code == 200


def test_admin_changes_roles_and_display_names_but_not_their_own_role(admin_client, app):
    bea = make_user(app, "bea")
    with app.app_context():
        me = db.session.scalar(select(User.id).where(User.username == "root"))
    token, _ = form_page(admin_client, "/editor/users")
    saved = admin_client.post(f"/editor/users/{bea}", data={"csrf_token": token, "display_name": "Bea Okafor",
                                                             "role": "contributor"}, headers=JSON)
    assert saved.status_code == 200 and saved.get_json()["ok"]
    mine = admin_client.post(f"/editor/users/{me}", data={"csrf_token": token, "display_name": "Root",
                                                          "role": "editor"}, headers=JSON)
    assert mine.status_code == 400 and "your own role" in mine.get_json()["error"]
    long_name = admin_client.post(f"/editor/users/{bea}", data={"csrf_token": token, "display_name": "x" * 101,
                                                                "role": "editor"}, headers=JSON)
    assert long_name.status_code == 400 and "100" in long_name.get_json()["error"]
    with app.app_context():
        accounts = {u.username: (u.role, u.name) for u in db.session.scalars(select(User))}
    assert accounts == {"bea": ("contributor", "Bea Okafor"), "root": ("admin", "root")}
    assert admin_client.post("/editor/users/999", data={"csrf_token": token, "role": "editor"}).status_code == 404


def test_dashboard_lists_stories(editor_client, app, story):
    make_user(app, "other")
    html = editor_client.get("/editor/").get_data(as_text=True)
    assert f'href="/editor/stories/{story}"' in html
    with app.app_context():
        assert db.session.scalar(select(func.count(Story.id))) == 1


def test_crlf_line_breaks_count_once_toward_the_limit(editor_client, app, story):
    body = "ab\r\n" * 6000  # 24,000 characters as sent, 18,000 as stored
    response = post_entry(editor_client, story, body, headers=JSON)
    assert response.status_code == 200 and response.get_json()["ok"]
    assert entries(app)[0].body == ("ab\n" * 6000).strip()


def test_editing_a_deleted_entry_is_a_410_page(editor_client, app, story):
    post_entry(editor_client, story)
    [entry] = entries(app)
    token, _ = form_page(editor_client, f"/editor/stories/{story}")
    editor_client.post(f"/editor/entries/{entry.id}/delete", data={"csrf_token": token})
    response = editor_client.get(f"/editor/entries/{entry.id}/edit")
    assert response.status_code == 410 and "can no longer be corrected" in response.get_data(as_text=True)


def test_editor_pages_back_through_older_entries(editor_client, app, story):
    for n in range(55):
        post_entry(editor_client, story, f"Update {n}")
    ids = [e.id for e in entries(app)]
    html = editor_client.get(f"/editor/stories/{story}").get_data(as_text=True)
    assert f'href="/editor/stories/{story}?before={ids[5]}"' in html
    older = editor_client.get(f"/editor/stories/{story}?before={ids[5]}").get_data(as_text=True)
    assert f'id="entry-{ids[0]}"' in older and f'id="entry-{ids[5]}"' not in older
    assert 'data-head="0"' in older


def test_a_correction_made_from_an_older_version_is_refused_and_shows_both_texts(app, editor_client, story):
    entry_id = post_entry(editor_client, story, "First text.", headers=JSON).get_json()["entry"]["id"]
    other = app.test_client()
    make_user(app, "bea")
    assert login(other, "bea").status_code == 302
    mine, _ = form_page(editor_client, f"/editor/entries/{entry_id}/edit")  # both open the form at one version
    theirs, _ = form_page(other, f"/editor/entries/{entry_id}/edit")
    html = editor_client.get(f"/editor/entries/{entry_id}/edit").get_data(as_text=True)
    base = re.search(r'id="base_rev" name="base_rev" type="hidden" value="(\d+)"', html).group(1)
    saved = other.post(f"/editor/entries/{entry_id}/edit", headers=JSON,
                       data={"csrf_token": theirs, "body": "Bea's text.", "headline": "", "base_rev": base})
    assert saved.status_code == 200
    refused = editor_client.post(f"/editor/entries/{entry_id}/edit",
                                 data={"csrf_token": mine, "body": "Alice's text.", "headline": "", "base_rev": base})
    page = refused.get_data(as_text=True)
    assert refused.status_code == 412 and "bea changed this update after you started" in page
    assert "Alice&#39;s text." in page and "Bea&#39;s text." in page  # mine kept in the form, theirs beside it
    now = re.search(r'id="base_rev" name="base_rev" type="hidden" value="(\d+)"', page).group(1)
    assert int(now) == int(base) + 1  # the form now starts from their version: saving again is a choice
    with app.app_context():
        assert db.session.get(Entry, entry_id).body == "Bea's text."
    as_json = editor_client.post(f"/editor/entries/{entry_id}/edit", headers=JSON,
                                 data={"csrf_token": mine, "body": "Alice's text.", "headline": "", "base_rev": base})
    assert as_json.status_code == 412 and as_json.get_json()["current"]["html"] == "<p>Bea's text.</p>\n"
    forged = editor_client.post(f"/editor/entries/{entry_id}/edit", headers=JSON,
                                data={"csrf_token": mine, "body": "Mine.", "headline": "", "base_rev": "9" * 40})
    assert forged.status_code == 400 and "out of date" in forged.get_json()["error"]


# The desk: what the compose form's buttons make, and the steps of unpublished entries

def test_the_compose_buttons_publish_save_a_draft_or_schedule_in_the_browsers_time(editor_client, app, story):
    assert post_entry(editor_client, story, "Out now.", intent="publish", headers=JSON).get_json()["message"] == (
        "Update published.")
    draft = post_entry(editor_client, story, "Not yet.", intent="draft", headers=JSON).get_json()
    assert draft["message"] == "Draft saved." and draft["entry"]["status"] == "draft"
    # 09:30 in a browser two hours ahead of UTC (getTimezoneOffset() is -120 there) is 07:30 UTC.
    scheduled = post_entry(editor_client, story, "At half past.", intent="schedule", publish_at="2999-01-01T09:30",
                           tz_offset="-120", headers=JSON).get_json()["entry"]
    assert scheduled["status"] == "scheduled" and scheduled["publish_at"] == "2999-01-01T07:30:00.000Z"
    past = post_entry(editor_client, story, "Too late.", intent="schedule", publish_at="2001-01-01T09:30")
    assert past.status_code == 400 and "must be in the future" in past.get_data(as_text=True)
    desk = editor_client.get(f"/editor/stories/{story}").get_data(as_text=True)
    assert "Not yet." in desk and "At half past." in desk and 'data-status="scheduled"' in desk
    reader = editor_client.get(f"/stories/{story}").get_data(as_text=True)
    assert "Out now." in reader and "Not yet." not in reader and "At half past." not in reader


def test_a_contributor_submits_for_review_and_the_editor_sends_back_and_publishes(client, app, story):
    make_user(app, "cole", "contributor")
    make_user(app, "alice", "editor")
    assert login(client, "cole").status_code == 302
    page = client.get(f"/editor/stories/{story}").get_data(as_text=True)
    assert "Submit for review" in page and "Publish update" not in page and "End story" not in page
    refused = post_entry(client, story, "Let me publish.", intent="publish")
    assert refused.status_code == 403 and "Let me publish." in refused.get_data(as_text=True), "the text is kept"
    sent = post_entry(client, story, "Long queues at the school.", headers=JSON).get_json()
    assert sent["message"] == "Sent to the editors for review." and sent["entry"]["status"] == "submitted"
    entry_id = sent["entry"]["id"]
    client.post("/logout", data={"csrf_token": form_page(client, "/logout")[0]})
    assert login(client, "alice").status_code == 302
    token, _ = form_page(client, f"/editor/stories/{story}")
    back = client.post(f"/editor/entries/{entry_id}/return", data={"csrf_token": token, "note": "Which school?"},
                       headers=JSON).get_json()
    assert back["entry"]["status"] == "draft" and back["entry"]["review_note"] == "Which school?"
    stale = client.post(f"/editor/entries/{entry_id}/publish", data={"csrf_token": token, "base_rev": "-1"},
                        headers=JSON)
    assert stale.status_code == 412, "publishing names the version the editor reviewed"
    done = client.post(f"/editor/entries/{entry_id}/publish",
                       data={"csrf_token": token, "base_rev": str(back["entry"]["rev"])}, headers=JSON).get_json()
    assert done["entry"]["status"] == "published" and done["message"] == "Update published."
    assert "Long queues at the school." in client.get(f"/stories/{story}").get_data(as_text=True)


def test_preview_renders_with_the_publishing_sanitizer_and_saves_nothing(editor_client, app, story):
    token, _ = form_page(editor_client, f"/editor/stories/{story}")
    shown = editor_client.post("/editor/preview", headers=JSON, data={
        "csrf_token": token, "body": "**Bold** <script>alert(1)</script>", "headline": "Head"}).get_json()
    assert shown == {"ok": True, "headline": "Head",
                     "html": "<p><strong>Bold</strong> &lt;script&gt;alert(1)&lt;/script&gt;</p>\n"}
    assert entries(app) == []


def test_the_story_page_counts_instead_of_cutting_and_keeps_end_story_apart(editor_client, story):
    page = editor_client.get(f"/editor/stories/{story}").get_data(as_text=True)
    body = re.search(r"<textarea[^>]*name=\"body\"[^>]*>", page).group(0)
    assert "maxlength" not in body and 'data-limit="20000"' in body
    assert page.index("data-entries") < page.index("End story") and "data-confirm=" in page


def test_story_settings_take_an_uploaded_lead_image(editor_client, app, story):
    picture = io.BytesIO()
    Image.new("RGB", (1200, 630), (20, 60, 120)).save(picture, "JPEG")
    token, _ = form_page(editor_client, f"/editor/stories/{story}/settings")
    fields = {"csrf_token": token, "title": "Flood warning", "summary": "", "image_url": ""}
    missing_alt = editor_client.post(f"/editor/stories/{story}/settings", content_type="multipart/form-data",
                                     data={**fields, "file": (io.BytesIO(picture.getvalue()), "lead.jpg"), "alt": ""})
    assert missing_alt.status_code == 400 and "Alt text" in missing_alt.get_data(as_text=True)
    saved = editor_client.post(f"/editor/stories/{story}/settings", content_type="multipart/form-data",
                               data={**fields, "file": (io.BytesIO(picture.getvalue()), "lead.jpg"),
                                     "alt": "The river over its banks"})
    assert saved.status_code == 302
    page = editor_client.get(f"/stories/{story}").get_data(as_text=True)
    assert 'alt="The river over its banks"' in page and 'property="og:image"' in page
