"""The service layer: one path for every change, with revisions and broadcasts after commit."""
import re
from datetime import UTC, datetime, timedelta

import pytest
from helpers import make_user
from sqlalchemy import func, select, update
from sqlalchemy.exc import OperationalError
from werkzeug import security

from tracker import models, queries, services
from tracker.extensions import db
from tracker.models import Entry, EntryVersion, Story, User
from tracker.services import MAX_BODY, ServiceError


@pytest.fixture
def live(ctx):
    """A live story inside an app context."""
    return services.create_story("Election night", "Results as they come in.")


@pytest.fixture
def sent(monkeypatch):
    """Record what is broadcast, and whether the change was committed by then."""
    calls = []

    def record(item):
        with db.engine.connect() as conn:  # a separate connection sees only committed data
            committed = conn.execute(select(Story.rev).where(Story.id == (item.id if isinstance(item, Story)
                                                                          else item.story_id))).scalar()
        calls.append((type(item).__name__, item.rev, committed))

    monkeypatch.setattr(services, "broadcast", record)
    return calls


def test_create_story_derives_slug_and_starts_at_rev_1(live):
    assert live.slug == "election-night"
    assert live.rev == 1 and live.status == "live"
    assert live.created_at.tzinfo == UTC


def test_slug_derivation_handles_accents_and_symbols(ctx):
    assert services.create_story("Équipe de France: 3–1 win!").slug == "equipe-de-france-3-1-win"


def test_every_change_takes_the_next_revision(live, sent):
    first, _ = services.append_entry(live, "Polls close.")
    second, _ = services.append_entry(live, "First result.")
    services.edit_entry(first, "Polls have closed.")
    services.set_key(second, True)
    services.delete_entry(first)
    services.set_status(live, "ended")
    assert [rev for _, rev, _ in sent] == [2, 3, 4, 5, 6, 7]
    assert db.session.get(Story, live.id).rev == 7
    assert (first.rev, second.rev) == (6, 5)


def test_broadcast_happens_after_commit(live, sent):
    services.append_entry(live, "Turnout is high.")
    kind, rev, committed_rev = sent[0]
    assert kind == "Entry" and committed_rev == rev


def test_failed_change_broadcasts_nothing_and_keeps_rev(live, sent):
    with pytest.raises(ServiceError):
        services.append_entry(live, "x" * (MAX_BODY + 1))
    assert sent == []
    assert db.session.scalar(select(Story.rev).where(Story.id == live.id)) == 1


def test_append_renders_markdown_and_keeps_source(live):
    entry, created = services.append_entry(live, "Turnout at **62%**", "Turnout")
    assert created
    assert entry.body == "Turnout at **62%**"
    assert "<strong>62%</strong>" in entry.html
    assert entry.headline == "Turnout"


def test_repeated_idempotency_key_publishes_once(live, sent):
    first, created = services.append_entry(live, "Count begins.", idempotency_key="abc123")
    again, created_again = services.append_entry(live, "Count begins.", idempotency_key="abc123")
    assert created and not created_again
    assert again.id == first.id
    assert db.session.scalar(select(func.count(Entry.id))) == 1
    assert len(sent) == 1


@pytest.mark.parametrize("body, headline, field, status", [
    ("", "", "body", 400),
    ("   \n ", "", "body", 400),
    ("x" * (MAX_BODY + 1), "", "body", 413),
    ("ok", "h" * 201, "headline", 413),
])
def test_invalid_entries_are_refused_with_a_field(live, body, headline, field, status):
    with pytest.raises(ServiceError) as error:
        services.append_entry(live, body, headline)
    assert error.value.field == field and error.value.status == status
    assert error.value.message


@pytest.mark.parametrize("control", ["\x00", "\x01", "\x1b", "\x7f", "\ud800"])
def test_control_characters_are_dropped_from_bodies_and_the_rest_is_kept(live, control):
    entry, _ = services.append_entry(live, f"Polls{control} close\tat 8\r\nCount{control} starts")
    db.session.expire_all()  # read back what the database stored
    assert db.session.get(Entry, entry.id).body == "Polls close\tat 8\nCount starts"


def test_every_kind_of_line_break_in_a_body_becomes_a_newline(live):
    entry, _ = services.append_entry(live, "Windows\r\nold Mac\rUnix\nend")
    assert entry.body == "Windows\nold Mac\nUnix\nend"


def test_body_at_the_limit_is_accepted(live):
    entry, _ = services.append_entry(live, "x" * MAX_BODY)
    assert len(entry.body) == MAX_BODY


@pytest.mark.parametrize("kwargs, field", [
    ({"title": ""}, "title"),
    ({"title": "t" * 201}, "title"),
    ({"title": "Ok", "slug": "Not A Slug"}, "slug"),
    ({"title": "Ok", "slug": "-leading"}, "slug"),
    ({"title": "Ok", "image_url": "javascript:alert(1)"}, "image_url"),
    ({"title": "Ok", "image_url": "ftp://example.org/a.png"}, "image_url"),
    ({"title": "Ok", "status": "paused"}, "status"),
    ({"title": "Ok", "summary": "s" * 1001}, "summary"),
])
def test_invalid_stories_are_refused(ctx, kwargs, field):
    with pytest.raises(ServiceError) as error:
        services.create_story(**kwargs)
    assert error.value.field == field


def test_duplicate_slug_is_a_conflict(live):
    with pytest.raises(ServiceError) as error:
        services.create_story("Another", slug=live.slug)
    assert error.value.status == 409 and error.value.field == "slug"


def test_edit_keeps_previous_versions(live):
    entry, _ = services.append_entry(live, "Turnout 60%", "Turnout")
    services.edit_entry(entry, "Turnout 62%", "Turnout corrected")
    services.edit_entry(entry, "Turnout 63%", "Turnout corrected")
    versions = db.session.scalars(select(EntryVersion).order_by(EntryVersion.id)).all()
    assert [v.body for v in versions] == ["Turnout 60%", "Turnout 62%"]
    assert versions[0].headline == "Turnout"
    assert entry.edited_at is not None and entry.body == "Turnout 63%"
    assert [v.body for v in entry.versions] == ["Turnout 62%", "Turnout 60%"]


def test_edit_with_no_change_takes_no_revision(live):
    entry, _ = services.append_entry(live, "Same")
    rev = entry.rev
    services.edit_entry(entry, "Same")
    assert entry.rev == rev and entry.edited_at is None


def test_delete_is_soft_and_hides_content_from_payload(live):
    entry, _ = services.append_entry(live, "Wrong result", key=True)
    services.delete_entry(entry)
    assert db.session.get(Entry, entry.id).body == "Wrong result"
    state = entry.to_dict()
    assert state["deleted"] is True and state["html"] == "" and state["key"] is False


def test_deleted_entries_cannot_be_changed(live):
    entry, _ = services.append_entry(live, "Gone")
    services.delete_entry(entry)
    for change in (lambda: services.edit_entry(entry, "Back"), lambda: services.set_pinned(entry, True)):
        with pytest.raises(ServiceError) as error:
            change()
        assert error.value.status == 410


def test_pinning_unpins_the_previous_entry_in_the_same_commit(live, sent):
    first, _ = services.append_entry(live, "First", pinned=True)
    second, _ = services.append_entry(live, "Second")
    sent.clear()
    services.set_pinned(second, True)
    assert (first.pinned, second.pinned) == (False, True)
    assert [(kind, rev) for kind, rev, _ in sent] == [("Entry", first.rev), ("Entry", second.rev)]
    assert second.rev == first.rev + 1


def test_new_pinned_entry_unpins_the_old_one(live):
    first, _ = services.append_entry(live, "First", pinned=True)
    second, _ = services.append_entry(live, "Second", pinned=True)
    assert not first.pinned and second.pinned


def test_ended_story_refuses_new_entries_but_allows_corrections(live):
    entry, _ = services.append_entry(live, "Final result")
    services.set_status(live, "ended")
    assert live.ended_at is not None
    with pytest.raises(ServiceError) as error:
        services.append_entry(live, "Late")
    assert error.value.status == 409
    services.edit_entry(entry, "Final result (corrected)")
    services.set_status(live, "live")
    assert live.ended_at is None
    assert services.append_entry(live, "Back on air")[1]


def test_story_update_changes_fields_and_revision(live, sent):
    services.update_story(live, "Election night: results", "All 650 seats.", "https://example.org/map.png")
    assert (live.title, live.summary, live.image_url, live.rev) == (
        "Election night: results", "All 650 seats.", "https://example.org/map.png", 2)
    assert sent[0][0] == "Story"


def test_create_user_hashes_password(ctx, monkeypatch):
    monkeypatch.setattr(models, "generate_password_hash", security.generate_password_hash)  # conftest's is cheap
    user = services.create_user("dana", "long enough pw")
    assert user.password_hash.startswith("scrypt:32768:8:1$")  # werkzeug's scrypt at its own work factor
    assert user.check_password("long enough pw") and not user.check_password("wrong")


@pytest.mark.parametrize("username, password, role, field", [
    ("a", "long enough pw", "editor", "username"),
    ("bad name", "long enough pw", "editor", "username"),
    ("dana", "short", "editor", "password"),
    ("dana", "long enough pw", "owner", "role"),
])
def test_invalid_users_are_refused(ctx, username, password, role, field):
    with pytest.raises(ServiceError) as error:
        services.create_user(username, password, role)
    assert error.value.field == field


def test_broadcast_failure_keeps_the_saved_change(live, monkeypatch, caplog):
    def broken(item):
        raise ConnectionError("message queue down")

    monkeypatch.setattr(services, "broadcast", broken)
    entry, created = services.append_entry(live, "Saved anyway")
    assert created and db.session.get(Entry, entry.id).body == "Saved anyway"
    assert "broadcast of Entry rev 2 failed" in caplog.text


def test_database_busy_is_a_clear_error_and_saves_nothing(live, monkeypatch):
    busy(monkeypatch)
    with pytest.raises(ServiceError) as error:
        services.append_entry(live, "Not saved")
    assert error.value.status == 503 and "Nothing was saved" in error.value.message
    monkeypatch.undo()
    assert db.session.scalar(select(func.count(Entry.id))) == 0


def test_title_without_latin_letters_still_gets_a_slug(ctx):
    story = services.create_story("Выборы")
    assert re.fullmatch(r"story-[0-9a-f]{6}", story.slug)


def test_change_entry_is_one_revision_and_one_broadcast_per_changed_row(live, sent):
    pinned, _ = services.append_entry(live, "Pinned", pinned=True)
    entry, _ = services.append_entry(live, "Draft")
    sent.clear()
    services.change_entry(entry, body="Final", headline="News", key=True, pinned=True)
    assert (entry.body, entry.headline, entry.key_event, entry.pinned, pinned.pinned) == (
        "Final", "News", True, True, False)
    assert [(kind, rev) for kind, rev, _ in sent] == [("Entry", 4), ("Entry", 5)]
    assert (pinned.rev, entry.rev, db.session.get(Story, live.id).rev) == (4, 5, 5)
    assert [v.body for v in entry.versions] == ["Draft"]


def test_change_entry_with_nothing_new_takes_no_revision(live, sent):
    entry, _ = services.append_entry(live, "Same", "Head", key=True)
    sent.clear()
    services.change_entry(entry, body="Same", key=True, pinned=False)
    assert sent == [] and entry.rev == 2 and entry.edited_at is None


def busy(monkeypatch):
    def locked():
        raise OperationalError("COMMIT", {}, Exception("database is locked"))

    monkeypatch.setattr(db.session, "commit", locked)


def test_a_change_the_database_refuses_saves_none_of_its_fields(live, sent, monkeypatch):
    entry, _ = services.append_entry(live, "Draft")
    sent.clear()
    busy(monkeypatch)
    with pytest.raises(ServiceError) as error:
        services.change_entry(entry, body="Final", headline="News", key=True, pinned=True)
    assert error.value.status == 503 and sent == []
    monkeypatch.undo()
    db.session.expire_all()
    stored = db.session.get(Entry, entry.id)
    assert (stored.body, stored.headline, stored.key_event, stored.pinned, stored.rev) == ("Draft", "", False, False, 2)
    assert db.session.scalar(select(func.count(EntryVersion.id))) == 0


def test_change_story_is_one_revision_and_one_broadcast(live, sent):
    services.change_story(live, title="Results", summary="All seats.", tags="vote, count", status="ended")
    assert (live.title, live.summary, live.tag_list, live.status, live.rev) == (
        "Results", "All seats.", ["vote", "count"], "ended", 2)
    assert live.ended_at is not None and [(kind, rev) for kind, rev, _ in sent] == [("Story", 2)]


@pytest.mark.parametrize("kwargs, field", [
    ({"title": "Results", "status": "paused"}, "status"),
    ({"summary": "All seats.", "image_url": "ftp://example.org/map.png"}, "image_url"),
])
def test_a_story_change_with_one_bad_field_changes_nothing(live, sent, kwargs, field):
    with pytest.raises(ServiceError) as error:
        services.change_story(live, **kwargs)
    assert error.value.field == field and sent == []
    db.session.expire_all()
    assert (live.title, live.summary, live.rev) == ("Election night", "Results as they come in.", 1)


# Entry states: drafts, submissions and scheduled updates

def test_unpublished_entries_take_no_public_revision_and_publishing_takes_the_next(live, sent):
    first, _ = services.append_entry(live, "Polls close.")
    draft, _ = services.append_entry(live, "Turnout looks *high*.", status="draft")
    assert (draft.status, draft.rev, live.rev) == ("draft", -1, 2)
    services.edit_entry(draft, "Turnout looks *very* high.")
    services.submit_entry(draft)
    second, _ = services.append_entry(live, "First results.")
    assert (draft.rev, draft.status, second.rev) == (-3, "submitted", 3)
    assert not db.session.scalars(select(EntryVersion)).all(), "a draft's edits are not corrections"
    written = draft.created_at
    services.publish_entry(draft)
    assert (draft.status, draft.rev, live.rev, draft.edited_at) == ("published", 4, 4, None)
    assert draft.created_at > written, "stamped with the time it was published"
    page, _ = queries.changes_page(live.id, 0, 1_000_000)
    assert [entry["rev"] for entry in page] == [2, 3, 4]
    # Readers were sent the three published changes only, in order; the desk its three drafts.
    assert [(kind, rev) for kind, rev, _ in sent if rev > 0] == [("Entry", 2), ("Entry", 3), ("Entry", 4)]
    with pytest.raises(ServiceError, match="already published") as refused:
        services.publish_entry(draft)
    assert refused.value.status == 409


def test_publish_due_publishes_each_once_and_logs_a_missed_time(live, caplog):
    entry, _ = services.append_entry(live, "Polls close in an hour.",
                                     publish_at=datetime.now(UTC) + timedelta(hours=1))
    assert (entry.status, entry.rev, live.rev) == ("scheduled", -1, 1)
    assert services.publish_due() == []
    # Its time passes while no server runs.
    db.session.execute(update(Entry).where(Entry.id == entry.id)
                       .values(publish_at=datetime.now(UTC) - timedelta(minutes=2)))
    db.session.commit()
    caplog.set_level("INFO", "tracker.services")
    assert [e.id for e in services.publish_due()] == [entry.id]
    assert services.publish_due() == []
    assert (entry.status, entry.rev, entry.publish_at) == ("published", 2, None)
    assert any("after its time" in record.getMessage() for record in caplog.records)


def test_a_scheduled_update_whose_story_ended_goes_back_to_the_desk_with_a_note(live):
    entry, _ = services.append_entry(live, "Later.", publish_at=datetime.now(UTC) + timedelta(hours=1))
    services.set_status(live, "ended")
    db.session.execute(update(Entry).where(Entry.id == entry.id).values(publish_at=datetime.now(UTC)))
    db.session.commit()
    assert services.publish_due() == []
    db.session.refresh(entry)
    assert entry.status == "draft" and "story has ended" in entry.review_note


@pytest.mark.parametrize("status, publish_at, message", [
    ("scheduled", None, "needs publish_at"),
    ("draft", "2999-01-01T09:00:00Z", "cannot be 'draft'"),
    (None, "2999-01-01T09:00:00", "needs a time zone"),
    (None, "2000-01-01T09:00:00Z", "must be in the future"),
    (None, "next tuesday", "ISO 8601"),
    ("live", None, "Status must be"),
])
def test_bad_states_and_times_are_refused(live, status, publish_at, message):
    with pytest.raises(ServiceError, match=message):
        services.append_entry(live, "Text.", status=status, publish_at=publish_at)
    assert db.session.scalars(select(Entry)).all() == []


def test_contributors_write_drafts_and_submissions_and_change_only_their_own(ctx, live):
    make_user(ctx, "cole", "contributor")
    make_user(ctx, "dana", "contributor")
    cole, dana = (db.session.scalar(select(User).where(User.username == name)) for name in ("cole", "dana"))
    submitted, _ = services.append_entry(live, "Queues at the school.", author=cole)
    assert submitted.status == "submitted"
    draft, _ = services.append_entry(live, "Maybe a recount.", author=cole, status="draft")
    services.edit_entry(draft, "A recount is likely.", editor=cole)
    services.submit_entry(draft, by=cole)
    published, _ = services.append_entry(live, "Official.")
    for refused in (lambda: services.append_entry(live, "x", author=cole, status="published"),
                    lambda: services.append_entry(live, "x", author=cole, key=True),
                    lambda: services.publish_entry(draft, by=cole),
                    lambda: services.edit_entry(draft, "Not mine.", editor=dana),
                    lambda: services.edit_entry(published, "Corrected by a contributor.", editor=cole),
                    lambda: services.return_entry(draft, "No.", by=cole)):
        with pytest.raises(ServiceError) as exc:
            refused()
        assert exc.value.status == 403 and "Ask an editor" in exc.value.message
    services.return_entry(draft, "Needs a second source.")
    assert (draft.status, draft.review_note) == ("draft", "Needs a second source.")


def test_publish_due_skips_an_update_sent_back_after_the_list_was_read_and_keeps_one_a_busy_database_refused(
        live, monkeypatch):
    entry, _ = services.append_entry(live, "Later.", publish_at=datetime.now(UTC) + timedelta(hours=1))
    db.session.execute(update(Entry).where(Entry.id == entry.id).values(publish_at=datetime.now(UTC)))
    db.session.commit()
    monkeypatch.setattr(services, "due_entries", lambda now: [entry.id])  # read before the editor acted
    services.return_entry(entry, "Not yet.")
    assert services.publish_due() == [] and entry.status == "draft"
    services.schedule_entry(entry, datetime.now(UTC) + timedelta(hours=1))
    db.session.execute(update(Entry).where(Entry.id == entry.id).values(publish_at=datetime.now(UTC)))
    db.session.commit()

    def busy(*args, **kwargs):
        raise ServiceError("The database is busy right now. Nothing was saved; please try again.", None, 503)

    monkeypatch.setattr(services, "publish_entry", busy)
    assert services.publish_due() == []
    db.session.refresh(entry)
    assert entry.status == "scheduled", "tried again on the next tick, not sent back"
