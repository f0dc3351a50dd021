"""Models: UTC timestamps, the shared to_dict payloads and session records."""
import hashlib
from datetime import UTC, datetime, timedelta, timezone

import pytest
from helpers import login
from sqlalchemy import select

from tracker import services
from tracker.extensions import db
from tracker.models import Entry, User, UserSession, isoformat


def test_timestamps_round_trip_as_aware_utc(ctx):
    story = services.create_story("Zones")
    local = datetime(2026, 3, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    entry, _ = services.append_entry(story, "At noon local", created_at=local)
    db.session.expire_all()
    stored = db.session.get(Entry, entry.id).created_at
    assert stored == local and stored.tzinfo == UTC and stored.hour == 10


def test_naive_datetimes_are_refused(ctx):
    story = services.create_story("Naive")
    with pytest.raises(Exception, match="naive datetime"):
        services.append_entry(story, "x", created_at=datetime(2026, 1, 1))
    db.session.rollback()


def test_isoformat_uses_z_and_milliseconds():
    assert isoformat(datetime(2026, 11, 23, 9, 5, 1, 123456, tzinfo=UTC)) == "2026-11-23T09:05:01.123Z"
    assert isoformat(None) is None


def test_story_and_entry_payloads(ctx, editor):
    author = db.session.scalar(select(User))
    story = services.create_story("Payloads", "Summary")
    entry, _ = services.append_entry(story, "Body *text*", "Head", author=author, key=True)
    assert entry.to_dict() == {
        "id": entry.id, "rev": 2, "story": "payloads", "headline": "Head",
        "html": "<p>Body <em>text</em></p>\n",
        "author": editor, "created_at": isoformat(entry.created_at), "updated_at": isoformat(entry.updated_at),
        "edited_at": None, "pinned": False, "key": True, "deleted": False, "excerpt": "Body text",
        "url": f"/stories/payloads/entries/{entry.id}", "status": "published", "media": []}
    data = story.to_dict()
    assert data["slug"] == "payloads" and data["status"] == "live" and data["rev"] == 2
    assert data["url"] == "/stories/payloads" and data["ended_at"] is None


def test_excerpt_is_plain_text_cut_near_80_characters(ctx):
    story = services.create_story("Excerpts")
    short, _ = services.append_entry(story, "Winds reach **120 km/h** & rising")
    long, _ = services.append_entry(story, "word " * 40)
    assert short.excerpt == "Winds reach 120 km/h & rising"
    assert len(long.excerpt) == 80 and long.excerpt.endswith("…")


def test_a_session_record_keeps_only_its_tokens_digest_and_lasts_the_session_lifetime(app, client, editor):
    assert login(client, editor).status_code == 302
    with client.session_transaction() as session:
        user_id, _, token = session["_user_id"].split("-", 2)
    with app.app_context():
        [record] = db.session.scalars(select(UserSession))
        assert record.id == hashlib.sha256(token.encode()).hexdigest() and record.user_id == int(user_id)
        assert record.expires_at - record.created_at == timedelta(seconds=app.config["PERMANENT_SESSION_LIFETIME"])
