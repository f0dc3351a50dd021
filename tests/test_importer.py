"""Markdown import and export: `flask import PATH...` and `flask export SLUG`, through the services."""
import os
import re
import threading
import time
from contextlib import contextmanager, nullcontext, suppress
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from PIL import Image
from sqlalchemy import func, select

from tracker import importer, services
from tracker.extensions import db
from tracker.models import Entry, EntryVersion, Media, Story

FIXTURES = Path(__file__).parent / "fixtures" / "import"
GOOD = ["2024-03-05-storm-live.md", "council-meeting.md", "hugo-style.md", "river-rescue.markdown", "text-date.md"]
SKIPPED = {"bad-date.md": "bad date: 'sometime in March'",
           "broken-yaml.md": "malformed front matter: mapping values are not allowed in this context "
                             "(line 2 of the file)",
           "no-title.md": "no title in the front matter"}


def run(app, *args, env=None):
    return app.test_cli_runner().invoke(args=list(args), env=env)


def lines(result) -> dict[str, str]:
    """The report, by file name."""
    return {Path(name).name: status for name, status in
            (line.split(": ", 1) for line in result.stdout.splitlines())}


def story(slug) -> Story:
    return db.session.scalar(select(Story).where(Story.slug == slug))


def entries(slug) -> list[Entry]:
    return db.session.scalars(select(Entry).join(Story).where(Story.slug == slug).order_by(Entry.created_at)).all()


def write(tmp_path, name, text) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# Story import from the fixtures

def test_directory_import_reports_every_file_and_skips_bad_ones_by_name(app):
    result = run(app, "import", str(FIXTURES), "--timezone", "Europe/Berlin")
    assert result.exit_code == 1, result.output
    report = lines(result)
    assert report == {**dict.fromkeys(GOOD, "created"), **{name: f"skipped: {why}" for name, why in SKIPPED.items()}}
    assert "notes.txt" not in result.output
    assert [Path(line.split(": ")[0]).name for line in result.stdout.splitlines()] == sorted(report)
    with app.app_context():
        assert db.session.scalar(select(func.count(Story.id))) == len(GOOD)
        storm = story("storm-live")  # the Jekyll date prefix is not part of the slug
        assert storm.title == "Storm Elara: ‘Red’ warning as winds reach 90 mph"
        assert storm.summary == "The Met Office’s “danger to life” warning covers the whole coast."
        assert storm.image_url == "https://example.com/images/elara.jpg"
        assert storm.to_dict()["tags"] == ["weather", "uk", "storm", "wind"]  # categories, then tags, once each
        [entry] = entries("storm-live")
        assert entry.created_at == storm.created_at == datetime(2024, 3, 5, 13, 30, tzinfo=UTC)  # 14:30 in Berlin
        assert entry.to_dict()["author"] == "Jane O’Neil" and entry.headline == ""
        assert "<strong>90 mph</strong>" in entry.html and "“Stay at home.”" in entry.html
        assert entry.idempotency_key == "import:storm-live"

        council = story("council-meeting")
        assert council.title == "Update 14:30 — council’s “emergency” meeting"
        assert council.summary == "Councillors meet at 2:30pm; it’s the first time since 2013."
        assert council.to_dict()["tags"] == [] and council.tags == ""
        assert entries("council-meeting")[0].created_at == datetime(2024, 3, 5, 23, 0, tzinfo=UTC)  # Berlin midnight
        assert entries("council-meeting")[0].to_dict()["author"] is None

        rescue = story("river-rescue")  # slug from the front matter
        assert rescue.title == "River rescue: “We heard shouting”" and rescue.image_url == ""
        assert rescue.to_dict()["tags"] == ["flood", "rescue"]
        assert entries("river-rescue")[0].created_at == datetime(2024, 3, 7, 7, 15, tzinfo=UTC)  # its own zone
        assert entries("river-rescue")[0].to_dict()["author"] == "Ana Díaz"

        hugo = story("hugo-style")
        assert hugo.title == "Hugo: a “TOML” front matter" and hugo.summary == "Written by Hugo’s new-content command."
        assert hugo.tag_list == ["hugo", "toml"] and hugo.created_at == datetime(2024, 3, 8, 10, tzinfo=UTC)

        assert story("text-date").title == "It’s a “text” date"
        assert story("text-date").created_at == datetime(2024, 3, 4, 23, 0, tzinfo=UTC)


def test_reimport_changes_nothing_and_duplicates_nothing(app):
    run(app, "import", str(FIXTURES))
    with app.app_context():
        before = {s.slug: (s.rev, s.updated_at) for s in db.session.scalars(select(Story))}
    again = run(app, "import", str(FIXTURES))
    assert again.exit_code == 1
    assert {name: status for name, status in lines(again).items() if name in GOOD} == dict.fromkeys(GOOD, "unchanged")
    with app.app_context():
        assert {s.slug: (s.rev, s.updated_at) for s in db.session.scalars(select(Story))} == before
        assert db.session.scalar(select(func.count(Entry.id))) == len(GOOD)
        assert db.session.scalar(select(func.count(EntryVersion.id))) == 0


def test_only_good_files_exit_zero(app):
    result = run(app, "import", *(str(FIXTURES / name) for name in GOOD))
    assert result.exit_code == 0, result.output
    assert list(lines(result).values()) == ["created"] * len(GOOD)


def test_reimport_of_a_changed_file_updates_the_story_and_corrects_the_entry(app, tmp_path):
    post = write(tmp_path, "2024-01-02-vote.md", "---\ntitle: Vote count\ntags: [politics]\n---\nCounting begins.\n")
    assert lines(run(app, "import", str(post))) == {post.name: "created"}
    write(tmp_path, post.name, "---\ntitle: 'Vote count: result'\ntags: politics, results\nauthor: [A. B., C. D.]\n"
                               "excerpt: Turnout 71%.\n---\nCounting ended.\n")
    assert lines(run(app, "import", str(post))) == {post.name: "updated"}
    with app.app_context():
        vote = story("vote")
        assert (vote.title, vote.summary) == ("Vote count: result", "Turnout 71%.")
        assert vote.tag_list == ["politics", "results"]
        [entry] = entries("vote")
        assert entry.body == "Counting ended." and entry.edited_at is not None
        assert entry.to_dict()["author"] == "A. B., C. D."
        assert [v.body for v in entry.versions] == ["Counting begins."]
    assert lines(run(app, "import", str(post))) == {post.name: "unchanged"}


def test_an_entry_deleted_by_an_editor_stays_deleted(app, tmp_path):
    post = write(tmp_path, "gone.md", "---\ntitle: Gone\n---\nText.\n")
    run(app, "import", str(post))
    with app.app_context():
        services.delete_entry(entries("gone")[0])
    write(tmp_path, "gone.md", "---\ntitle: Gone\n---\nOther text.\n")
    assert lines(run(app, "import", str(post))) == {"gone.md": "unchanged"}
    with app.app_context():
        assert [(e.deleted, e.body) for e in entries("gone")] == [(True, "Text.")]


@pytest.mark.parametrize(("front", "reason"), [
    ("title: Pic\nimage: javascript:alert(1)", "image must be an http:// or https:// address or a path"),
    ("title: [a, list]", "`title` must be text, not a list"),
    ("title: Odd\nstatus: paused", "status must be 'live' or 'ended', not 'paused'"),
    ("title: Bad slug\nslug: no spaces please", "Slug may contain only lowercase letters"),
    ("title: Odd\ndate: 2024-02-30", "malformed front matter: day is out of range for month"),
    ("title: Odd\ndate: '2024-02-30'", "bad date: '2024-02-30'"),
    ("- just\n- a list", "front matter is not a list of `name: value` fields"),
])
def test_files_with_unusable_front_matter_are_skipped_with_a_reason(app, tmp_path, front, reason):
    post = write(tmp_path, "post.md", f"---\n{front}\n---\nBody.\n")
    result = run(app, "import", str(post), str(FIXTURES / "text-date.md"))
    assert result.exit_code == 1
    assert lines(result)["post.md"].startswith(f"skipped: {reason}")
    assert lines(result)["text-date.md"] == "created"


def test_files_without_front_matter_or_missing_are_skipped(app, tmp_path):
    plain = write(tmp_path, "plain.md", "# Just Markdown\n\nNo front matter.\n")
    unclosed = write(tmp_path, "unclosed.md", "---\ntitle: Never closed\n")
    result = run(app, "import", str(plain), str(unclosed), str(tmp_path / "missing.md"))
    assert result.exit_code == 1
    assert lines(result) == {"plain.md": "skipped: no title in the front matter",
                             "unclosed.md": "skipped: front matter is not closed",
                             "missing.md": "skipped: no such file"}


def test_imported_markdown_is_sanitized_like_any_entry(app, tmp_path):
    post = write(tmp_path, "xss.md", "---\ntitle: <b>Bold</b> title\n---\n<script>alert(1)</script>\n\n"
                                     "[click](javascript:alert(1)) ![x](data:image/png;base64,AAAA)\n"
                                     '<img src=x onerror="alert(1)">\n')
    assert run(app, "import", str(post)).exit_code == 0
    with app.app_context():
        html = entries("xss")[0].html
        assert "<script" not in html and "&lt;script&gt;" in html  # raw HTML is shown as text
        assert 'href="javascript' not in html and "<a " not in html and "data:" not in html
        assert '<img alt="x">' in html and "<img src" not in html


def test_a_post_without_a_body_makes_a_story_without_entries(app, tmp_path):
    post = write(tmp_path, "empty.md", "---\ntitle: Empty so far\n---\n")
    assert lines(run(app, "import", str(post))) == {"empty.md": "created"}
    with app.app_context():
        assert story("empty") is not None and entries("empty") == []


# Files that are not regular, and front matter that would take the import down

SECRET = "sk_live_4f9c2e7d1b secret key"
LINK = "skipped: is a symbolic link; only regular files are imported"


def all_text(app) -> str:
    """Every story's and entry's text, to look for what must not have been imported."""
    with app.app_context():
        stories = db.session.scalars(select(Story)).all()
        return " ".join([s.title + s.summary for s in stories] + [e.body + e.html for e in db.session.scalars(
            select(Entry))] + [v.body for v in db.session.scalars(select(EntryVersion))])


@contextmanager
def fifo_holding(path: Path, text: str):
    """A FIFO that gives `text` to whoever opens it, so that reading it fails a test instead of hanging it."""
    def feed():
        with suppress(BrokenPipeError):  # the reader may close it unread
            path.write_text(text)  # blocks until a reader opens the FIFO

    os.mkfifo(path)
    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    try:
        yield path
    finally:
        reader = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # lets the writer finish when nothing opened the FIFO
        writer.join(timeout=5)
        os.close(reader)


def test_symbolic_links_are_skipped_and_their_targets_never_read(app, story, tmp_path):
    (tmp_path / "secret_key").write_text(SECRET)
    posts = tmp_path / "posts"
    posts.mkdir()
    write(posts, "ok.md", "Regular update.\n")
    (posts / "notes.md").symlink_to(tmp_path / "secret_key")
    (posts / "folder.md").symlink_to(tmp_path)
    (tmp_path / "direct.md").symlink_to(tmp_path / "secret_key")
    (tmp_path / "linked").symlink_to(posts)
    result = run(app, "import", "--story", story, str(posts), str(tmp_path / "direct.md"), str(tmp_path / "linked"))
    assert result.exit_code == 1
    assert lines(result) == {"folder.md": LINK, "notes.md": LINK, "ok.md": "created", "direct.md": LINK,
                             "linked": LINK}
    with app.app_context():
        assert [e.body for e in entries(story)] == ["Regular update."]
    assert SECRET not in all_text(app)


def test_fifos_and_devices_are_skipped_without_being_read(app, tmp_path):
    posts = tmp_path / "posts"
    posts.mkdir()
    post = f"---\ntitle: Piped\n---\n{SECRET}\n"
    with fifo_holding(posts / "pipe.md", post), fifo_holding(tmp_path / "outside.fifo", post):
        (posts / "link.md").symlink_to(tmp_path / "outside.fifo")
        result = run(app, "import", str(posts), str(tmp_path / "outside.fifo"), "/dev/null")
    fifo = "skipped: is a named pipe (FIFO); only regular files are imported"
    assert result.exit_code == 1
    assert lines(result) == {"link.md": LINK, "pipe.md": fifo, "outside.fifo": fifo,
                             "null": "skipped: is a device; only regular files are imported"}
    assert SECRET not in all_text(app)


@pytest.mark.parametrize(("kind", "reason"), [("link", "is a symbolic link"), ("fifo", r"is a named pipe \(FIFO\)")],
                         ids=["link", "fifo"])
def test_a_link_or_fifo_put_in_place_after_the_check_is_not_read(tmp_path, monkeypatch, kind, reason):
    secret = write(tmp_path, "secret_key", f"---\ntitle: Leak\n---\n{SECRET}\n")
    path = tmp_path / "notes.md"
    if kind == "link":
        path.symlink_to(secret)
    with fifo_holding(path, secret.read_text()) if kind == "fifo" else nullcontext():
        with monkeypatch.context() as patch, pytest.raises(importer.ImportSkipped, match=reason):
            patch.setattr(os, "lstat", lambda *args, **kwargs: os.stat(secret))  # the check saw a regular file
            importer.read_post(path)


def laughs(field: str, levels: int = 9) -> str:
    """A post whose `field` stands for 9**levels copies of "lol" ("billion laughs"), in a few hundred bytes."""
    anchors = ["a0: &a0 [" + ", ".join(["lol"] * 9) + "]"]
    anchors += [f"a{n}: &a{n} [" + ", ".join([f"*a{n - 1}"] * 9) + "]" for n in range(1, levels)]
    return "---\ntitle: Laughs\n" + "\n".join(anchors) + f"\n{field}: *a{levels - 1}\n---\nBody.\n"


@pytest.mark.parametrize("field", ["date", "tags", "author"])
def test_yaml_aliases_are_refused_before_any_value_is_built(tmp_path, field):
    post = write(tmp_path, "laughs.md", laughs(field))
    started = time.monotonic()
    reason = "front matter uses YAML anchors or aliases (& and *), which are not allowed (line 3 of the file)"
    with pytest.raises(importer.ImportSkipped, match=re.escape(reason)):
        importer.read_post(post)  # without the check it returns, quickly, values that expand when used
    assert time.monotonic() - started < 2


@pytest.mark.parametrize(("text", "reason"), [
    ("---\ntitle: Tiny\na: &x 1\nb: *x\n---\nBody.\n",
     "front matter uses YAML anchors or aliases (& and *), which are not allowed (line 3 of the file)"),
    ("---\ntitle: &t Anchored\n---\nBody.\n",
     "front matter uses YAML anchors or aliases (& and *), which are not allowed (line 2 of the file)"),
    ("---\ntitle: Deep\ntags: " + "[" * 20 + "]" * 20 + "\n---\nBody.\n",
     "front matter is nested more than 20 levels deep (line 3 of the file)"),
    ("+++\ntitle = 'Deep'\ntags = " + "[" * 2000 + "]" * 2000 + "\n+++\nBody.\n", "front matter is nested too deeply"),
    ("---\ntitle: Long\n" + "".join(f"k{n}: v\n" for n in range(10_000)) + "---\nBody.\n",
     "front matter is too long: 88,903 characters, the limit is 65,536"),
], ids=["alias", "anchor", "deep-yaml", "deep-toml", "too-long"])
def test_front_matter_with_aliases_deep_nesting_or_too_much_text_is_skipped(app, tmp_path, text, reason):
    result = run(app, "import", str(write(tmp_path, "post.md", text)))
    assert result.exit_code == 1 and lines(result) == {"post.md": f"skipped: {reason}"}
    with app.app_context():
        assert db.session.scalar(select(func.count(Story.id))) == 0


# One transaction per file

def sections(title="Storm", first="First.", later="2024-03-05T10:00:00Z", second="Second.", extra=""):
    """A story file in the export format, with two sections."""
    return (f"---\ntitle: {title}\nslug: storm\n{extra}---\n## 2024-03-05T09:00:00Z · Opening\n\n{first}\n\n"
            f"## {later}\n\n{second}\n")


@pytest.mark.parametrize(("post", "reason"), [
    (sections(later="2024-02-30T10:00:00Z"), "bad date: '2024-02-30T10:00:00Z'"),
    (sections(second="x" * (services.MAX_BODY + 1)), "The update is too long: 20,001 characters"),
], ids=["bad-section-date", "over-long-body"])
def test_a_story_file_skipped_after_its_first_section_leaves_nothing_behind(app, tmp_path, post, reason):
    result = run(app, "import", str(write(tmp_path, "storm.md", post)))
    assert result.exit_code == 1 and lines(result)["storm.md"].startswith(f"skipped: {reason}")
    with app.app_context():
        assert db.session.scalar(select(func.count(Story.id))) == 0
        assert db.session.scalar(select(func.count(Entry.id))) == 0


def test_a_skipped_reimport_leaves_the_story_unchanged_and_broadcasts_nothing(app, tmp_path, socket_client):
    post = write(tmp_path, "storm.md", sections())
    assert lines(run(app, "import", str(post))) == {"storm.md": "created"}

    def state():
        with app.app_context():
            s = story("storm")
            return ((s.title, s.tags, s.status, s.rev, s.updated_at),
                    [(e.headline, e.body, e.rev, e.updated_at) for e in entries("storm")],
                    db.session.scalar(select(func.count(EntryVersion.id))))

    before = state()
    reader = socket_client()
    assert reader.emit("join", {"story": "storm", "since": 0}, callback=True)["ok"]
    reader.get_received()
    write(tmp_path, "storm.md", sections("Storm, renamed", "First, corrected.", second="x" * (services.MAX_BODY + 1),
                                         extra="tags: [changed]\nstatus: ended\n"))
    result = run(app, "import", str(post))
    assert lines(result) == {"storm.md": "skipped: The update is too long: 20,001 characters, the limit is 20,000."}
    assert state() == before
    assert reader.get_received() == []
    write(tmp_path, "storm.md", sections("Storm, renamed", "First, corrected."))
    assert lines(run(app, "import", str(post))) == {"storm.md": "updated"}
    assert {event["name"] for event in reader.get_received()} == {"story", "entry"}  # the reader does hear changes


# Dates and zones

NAIVE = "---\ntitle: Zone\ndate: 2024-07-01 12:00\n---\nText.\n"


def imported_time(app, slug="zone"):
    with app.app_context():
        return entries(slug)[0].created_at


def test_naive_dates_read_in_the_configured_zone(app, tmp_path):
    app.config["IMPORT_TIMEZONE"] = "America/New_York"
    run(app, "import", str(write(tmp_path, "zone.md", NAIVE)))
    assert imported_time(app) == datetime(2024, 7, 1, 16, tzinfo=UTC)  # EDT is UTC-4


def test_the_environment_and_the_option_override_the_config(app, tmp_path):
    app.config["IMPORT_TIMEZONE"] = "America/New_York"
    run(app, "import", str(write(tmp_path, "zone.md", NAIVE)), env={"IMPORT_TIMEZONE": "Asia/Tokyo"})
    assert imported_time(app) == datetime(2024, 7, 1, 3, tzinfo=UTC)
    run(app, "import", str(write(tmp_path, "zone2.md", NAIVE)), "--timezone", "Asia/Kolkata",
        env={"IMPORT_TIMEZONE": "Asia/Tokyo"})
    assert imported_time(app, "zone2") == datetime(2024, 7, 1, 6, 30, tzinfo=UTC)


def test_default_zone_is_utc_and_unknown_zones_are_refused(app, tmp_path):
    post = write(tmp_path, "zone.md", NAIVE)
    bad = run(app, "import", str(post), "--timezone", "Mars/Olympus")
    assert bad.exit_code == 2 and "unknown time zone 'Mars/Olympus'" in bad.output
    assert run(app, "import", str(post)).exit_code == 0
    assert imported_time(app) == datetime(2024, 7, 1, 12, tzinfo=UTC)


BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(("value", "expected"), [
    (date(2024, 3, 5), datetime(2024, 3, 4, 23, tzinfo=UTC)),
    (datetime(2024, 7, 5, 14, 30), datetime(2024, 7, 5, 12, 30, tzinfo=UTC)),
    (datetime(2024, 7, 5, 14, 30, tzinfo=timezone(timedelta(hours=-3))), datetime(2024, 7, 5, 17, 30, tzinfo=UTC)),
    ("2024-03-05", datetime(2024, 3, 4, 23, tzinfo=UTC)),
    ("2024-03-05 14:30", datetime(2024, 3, 5, 13, 30, tzinfo=UTC)),
    ("2024-03-05T14:30:00+02:00", datetime(2024, 3, 5, 12, 30, tzinfo=UTC)),
    ("2024-03-05T14:30:00.250Z", datetime(2024, 3, 5, 14, 30, 0, 250000, tzinfo=UTC)),
    ("2024-03-05 14:30:00 +0200", datetime(2024, 3, 5, 12, 30, tzinfo=UTC)),
    ("5 March 2024", datetime(2024, 3, 4, 23, tzinfo=UTC)),
    ("5 Mar 2024 14:30", datetime(2024, 3, 5, 13, 30, tzinfo=UTC)),
    ("March 5, 2024", datetime(2024, 3, 4, 23, tzinfo=UTC)),
    ("Tue, 05 Mar 2024 14:30:00 +0000", datetime(2024, 3, 5, 14, 30, tzinfo=UTC)),
])
def test_dates_accepted(value, expected):
    assert importer.parse_date(value, BERLIN) == expected


@pytest.mark.parametrize("value", ["sometime in March", "2024-13-01", "05/03/2024", 2024, True, ["2024-03-05"]])
def test_bad_dates(value):
    with pytest.raises(importer.ImportSkipped, match="bad date"):
        importer.parse_date(value, BERLIN)


def test_no_date_means_now():
    assert abs(importer.parse_date(None) - datetime.now(UTC)) < timedelta(seconds=5)
    assert abs(importer.parse_date("") - datetime.now(UTC)) < timedelta(seconds=5)


# Entry import into an existing story

def test_files_become_entries_of_a_story_and_reimport_corrects_them(app, story, tmp_path):
    first = write(tmp_path, "0930.md", "---\ntitle: ‘Levels rising’\ndate: 2024-03-05 09:30\nauthor: Field desk\n"
                                       "tags: [ignored]\n---\nThe river is 20 cm higher.\n")
    second = write(tmp_path, "1015.md", "Sandbags handed out at the town hall.\n")  # no front matter: no headline
    result = run(app, "import", "--story", story, str(first), str(second), "--timezone", "Europe/London")
    assert result.exit_code == 0, result.output
    assert lines(result) == {"0930.md": "created", "1015.md": "created"}
    with app.app_context():
        made = {e.idempotency_key: e for e in entries(story)}
        assert set(made) == {"import:0930", "import:1015"}
        assert made["import:0930"].headline == "‘Levels rising’"
        assert made["import:0930"].created_at == datetime(2024, 3, 5, 9, 30, tzinfo=UTC)
        assert made["import:0930"].to_dict()["author"] == "Field desk"
        assert made["import:1015"].headline == "" and made["import:1015"].body.startswith("Sandbags")
        assert db.session.get(Story, made["import:0930"].story_id).tags == ""  # entry files leave tags alone
    write(tmp_path, "0930.md", "---\ntitle: ‘Levels rising’\ndate: 2024-03-05 09:30\nauthor: Field desk\n---\n"
                               "The river is 25 cm higher.\n")
    assert lines(run(app, "import", "--story", story, str(first), str(second))) == {
        "0930.md": "updated", "1015.md": "unchanged"}
    with app.app_context():
        assert len(entries(story)) == 2
        corrected = db.session.scalar(select(Entry).where(Entry.idempotency_key == "import:0930"))
        assert corrected.body == "The river is 25 cm higher." and len(corrected.versions) == 1


def test_entry_import_needs_the_story_and_a_body(app, story, tmp_path):
    missing = run(app, "import", "--story", "no-such-story", str(FIXTURES / "text-date.md"))
    assert missing.exit_code == 1 and "No story 'no-such-story'." in missing.output
    empty = write(tmp_path, "empty.md", "---\ntitle: Only a title\n---\n")
    result = run(app, "import", "--story", story, str(empty))
    assert result.exit_code == 1 and lines(result) == {"empty.md": "skipped: no text below the front matter"}


def test_entry_import_into_an_ended_story_is_skipped(app, story, tmp_path):
    with app.app_context():
        services.set_status(db.session.scalar(select(Story).where(Story.slug == story)), "ended")
    result = run(app, "import", "--story", story, str(write(tmp_path, "late.md", "Too late.\n")))
    assert result.exit_code == 1 and lines(result) == {
        "late.md": "skipped: This story has ended. Reopen it to post new updates."}


# Export and the round trip

def make_story(app) -> str:
    with app.app_context():
        s = services.create_story("Quake: “strong” shaking felt", "It’s early.", slug="quake",
                                  image_url="https://example.com/q.jpg", tags=["quake", "Japan"])
        t0 = datetime(2024, 1, 1, 7, 10, 0, 123456, tzinfo=UTC)
        services.append_entry(s, "First *report*.", "Shaking felt · widely", created_at=t0)
        services.append_entry(s, "## 2024-01-01T07:30:00Z looks like a section\n\\## and so does this: 2024-01-01T",
                              created_at=t0 + timedelta(minutes=5))
        services.append_entry(s, "Same second, later entry.", "Two", created_at=t0.replace(microsecond=0))
        deleted, _ = services.append_entry(s, "A mistake.", created_at=t0 + timedelta(minutes=1))
        services.delete_entry(deleted)
        services.append_entry(s, "Tsunami warning lifted.\n\n> Quote: ‘all clear’", "Warning lifted",
                              created_at=t0 + timedelta(hours=2))
        return s.slug


def visible(slug):
    return [(e.created_at, e.headline, e.body) for e in entries(slug) if not e.deleted]


def test_export_writes_front_matter_and_one_section_per_visible_entry(app):
    slug = make_story(app)
    result = run(app, "export", slug)
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert text.startswith("---\ntitle: 'Quake: “strong” shaking felt'\nslug: quake\ndate: '")
    assert "\nsummary: It’s early.\nimage: https://example.com/q.jpg\n" in text
    assert "\ntags:\n- quake\n- Japan\nstatus: live\nlanguage: en\n---\n" in text
    assert "\n## 2024-01-01T07:10:00Z · Two\n\nSame second, later entry.\n" in text
    assert "\n## 2024-01-01T07:10:00.123456Z · Shaking felt · widely\n\nFirst *report*.\n" in text
    assert "\n## 2024-01-01T07:15:00.123456Z\n\n\\## 2024-01-01T07:30:00Z looks like" in text
    assert "A mistake." not in text
    assert text.index("Same second") < text.index("First *report*") < text.index("Tsunami")
    assert run(app, "export", "nope").exit_code == 1


def test_export_then_import_under_a_new_slug_reproduces_the_entries(app, tmp_path):
    slug = make_story(app)
    out = tmp_path / "quake.md"
    result = run(app, "export", slug, "--output", str(out))
    assert result.exit_code == 0 and out.read_text(encoding="utf-8").count("\n## 2024-") == 4
    copy = write(tmp_path, "copy.md", out.read_text(encoding="utf-8").replace("slug: quake", "slug: quake-copy"))
    assert lines(run(app, "import", str(copy), "--timezone", "Asia/Tokyo")) == {"copy.md": "created"}
    with app.app_context():
        original, imported = story(slug), story("quake-copy")
        assert visible("quake-copy") == visible(slug) and len(visible(slug)) == 4
        for field in ("title", "summary", "image_url", "tags", "status", "created_at"):
            assert getattr(imported, field) == getattr(original, field), field
    assert lines(run(app, "import", str(copy))) == {"copy.md": "unchanged"}
    again = run(app, "export", "quake-copy").stdout
    assert again == out.read_text(encoding="utf-8").replace("slug: quake", "slug: quake-copy")


def test_round_trip_keeps_an_ended_story_ended(app, tmp_path):
    slug = make_story(app)
    with app.app_context():
        services.set_status(story(slug), "ended")
    text = run(app, "export", slug).stdout.replace("slug: quake", "slug: quake-ended")
    assert "status: ended" in text
    assert lines(run(app, "import", str(write(tmp_path, "ended.md", text)))) == {"ended.md": "created"}
    with app.app_context():
        assert story("quake-ended").status == "ended" and visible("quake-ended") == visible(slug)
    assert lines(run(app, "import", str(tmp_path / "ended.md"))) == {"ended.md": "unchanged"}


# Model and services

def test_tags_and_byline_in_the_services(ctx):
    s = services.create_story("Tags", tags="a, b ,A,, c")
    assert s.to_dict()["tags"] == ["a", "b", "c"]
    services.update_story(s, "Tags again")  # tags left out: kept
    assert s.tag_list == ["a", "b", "c"]
    services.update_story(s, "Tags again", tags=[])
    assert s.to_dict()["tags"] == []
    entry, _ = services.append_entry(s, "Text", byline="  Guest   writer ")
    assert entry.to_dict()["author"] == "Guest writer"
    services.edit_entry(entry, "Text")  # byline left out: kept, nothing changed
    assert entry.byline == "Guest writer" and entry.edited_at is None
    with pytest.raises(services.ServiceError, match="Byline is too long"):
        services.append_entry(s, "Text", byline="x" * 101)


# Images given as paths in the site

def photo(path: Path, size=(900, 600)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (90, 140, 60)).save(path, "JPEG")


def test_a_jekyll_posts_site_images_come_along_and_a_missing_one_is_only_a_warning(app, tmp_path):
    site = tmp_path / "blog"
    (site / "_posts").mkdir(parents=True)
    (site / "_config.yml").write_text("title: Blog\n")
    photo(site / "assets" / "images" / "lead.jpg")
    photo(site / "assets" / "images" / "crowd.jpg", (1200, 800))
    post = write(site / "_posts", "2024-03-05-rally.md", "---\ntitle: The rally\nimage: assets/images/lead.jpg\n"
                 "author: Ana\n---\nThousands marched.\n\n![The crowd at noon](/assets/images/crowd.jpg)\n\n"
                 "![](/assets/images/missing.jpg)\n")
    result = run(app, "import", str(post))
    assert result.exit_code == 0, result.output
    assert lines(result)["2024-03-05-rally.md"] == (
        "created; warning: image /assets/images/missing.jpg was not found, imported without it")
    with app.app_context():
        made = story("rally")
        [entry] = entries("rally")
        assert made.image_media.alt == "The rally" and made.image_url == ""
        assert [m.alt for m in entry.media] == ["The crowd at noon"] and entry.media[0].width == 1200
        assert entry.body == "Thousands marched." and entry.byline == "Ana"
    assert lines(run(app, "import", str(post))) == {"2024-03-05-rally.md": "unchanged"}
    with app.app_context():
        assert db.session.query(Media).count() == 2, "importing again uploads nothing again"


def test_site_images_are_found_with_site_root_and_never_outside_it(app, tmp_path):
    site, outside = tmp_path / "hugo", tmp_path / "secret.jpg"
    photo(site / "static" / "img" / "a.jpg")
    photo(outside)
    (site / "content").mkdir(parents=True)
    (site / "static" / "img" / "link.jpg").symlink_to(outside)
    post = write(site / "content", "storm.md", "---\ntitle: Storm\n---\nWind.\n\n![Trees down](/img/a.jpg)\n\n"
                 "![x](../../secret.jpg)\n\n![y](/img/link.jpg)\n")
    app.config["MEDIA_MAX_BYTES"] = 200_000
    (site / "static" / "img" / "huge.jpg").write_bytes(b"\xff" * 200_001)
    post.write_text(post.read_text() + "\n![z](/img/huge.jpg)\n")
    report = lines(run(app, "import", str(post), "--site-root", str(site)))["storm.md"]
    assert "image /img/huge.jpg was not imported (The file is too large: an image may have at most 195 KB.)" in report
    assert report.startswith("created; warning: image ../../secret.jpg was not found")
    assert "image /img/link.jpg was not found" in report
    with app.app_context():
        assert [m.alt for m in entries("storm")[0].media] == ["Trees down"]


def test_a_posts_language_becomes_its_storys_and_travels_in_exports(app, tmp_path):
    post = write(tmp_path, "greve.md", "---\ntitle: Grève générale\nlang: fr-FR\n---\nLes trains sont à l'arrêt.\n")
    other = write(tmp_path, "streik.md", "---\ntitle: Generalstreik\nlang: de\n---\nDie Züge stehen.\n")
    assert lines(run(app, "import", str(post), str(other))) == {"greve.md": "created", "streik.md": "created"}
    with app.app_context():
        assert (story("greve").language, story("streik").language) == ("fr", "en")  # no German interface yet
    assert "\nlanguage: fr\n" in run(app, "export", "greve").stdout


def test_an_export_with_media_imports_back_with_its_pictures(app, tmp_path):
    site = tmp_path / "site"
    photo(site / "lead.jpg")
    photo(site / "crowd.jpg", (1200, 800))
    post = write(site, "rally.md", "---\ntitle: The rally\nimage: lead.jpg\n---\nThousands marched.\n\n"
                 '![The crowd](crowd.jpg "On Main Street")\n')
    run(app, "import", str(post))
    with app.app_context():
        crowd = entries("rally")[0].media[0]
        assert crowd.caption == "On Main Street"
        services.change_media(crowd, credit="A. Photographer")
        services.change_media(story("rally").image_media, alt="Marchers at the bridge")
    out = tmp_path / "out" / "rally.md"
    out.parent.mkdir()
    assert run(app, "export", "rally", "--media", "--output", str(out)).exit_code == 0
    text = out.read_text()
    assert "image: rally-media/" in text and "![The crowd](rally-media/" in text
    assert len(list((tmp_path / "out" / "rally-media").glob("*.jpg"))) == 2
    out.write_text(text.replace("slug: rally", "slug: rally-again"))
    assert lines(run(app, "import", str(out))) == {"rally.md": "created"}
    with app.app_context():
        assert (story("rally-again").image_media.width, story("rally-again").image_media.alt) == (
            900, "Marchers at the bridge")
        assert [(m.alt, m.caption, m.credit) for m in entries("rally-again")[0].media] == [
            ("The crowd", "On Main Street", "A. Photographer")]
    assert run(app, "export", "rally", "--media").exit_code == 2
