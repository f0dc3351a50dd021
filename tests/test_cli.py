"""Command-line tools: accounts, database setup and the demo story."""
import pytest
from helpers import PASSWORD
from sqlalchemy import func, select

from tracker.extensions import db
from tracker.models import Entry, Story, User


def test_user_create_with_password_from_stdin(app):
    result = app.test_cli_runner().invoke(args=["user", "create", "maria", "--role", "admin", "--password-stdin"],
                                          input="a long password\n")
    assert result.exit_code == 0, result.output
    assert "Created admin account 'maria'." in result.output
    with app.app_context():
        user = db.session.scalar(select(User).where(User.username == "maria"))
        assert user.is_admin and user.check_password("a long password")


def test_user_create_prompts_for_password_twice(app):
    result = app.test_cli_runner().invoke(args=["user", "create", "omar"], input="a long password\na long password\n")
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert db.session.scalar(select(User.role).where(User.username == "omar")) == "editor"


def test_user_create_refuses_duplicates_and_short_passwords(app):
    runner = app.test_cli_runner()
    runner.invoke(args=["user", "create", "omar", "--password-stdin"], input="a long password\n")
    duplicate = runner.invoke(args=["user", "create", "omar", "--password-stdin"], input="a long password\n")
    assert duplicate.exit_code == 1 and "already taken" in duplicate.output
    short = runner.invoke(args=["user", "create", "lea", "--password-stdin"], input="short\n")
    assert short.exit_code == 1 and "at least 8 characters" in short.output


@pytest.mark.parametrize("name, stdin, message", [
    ("nobody", "a long passphrase\n", "There is no account 'nobody'."),
    ("alice", "short\n", "Password must be at least 8 characters."),
])
def test_user_password_refusals_keep_the_old_password(app, editor, name, stdin, message):
    result = app.test_cli_runner().invoke(args=["user", "password", name, "--password-stdin"], input=stdin)
    assert result.exit_code == 1 and message in result.output
    with app.app_context():
        assert db.session.scalar(select(User).where(User.username == editor)).check_password(PASSWORD)


def test_seed_demo_once_with_a_fresh_password(app):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["seed-demo"])
    assert result.exit_code == 0, result.output
    password = result.output.split("password '")[1].split("'")[0]
    with app.app_context():
        story = db.session.scalar(select(Story))
        entries = db.session.scalars(select(Entry).where(Entry.story_id == story.id)).all()
        assert len(entries) == 12 and story.rev == 13
        assert sum(e.key_event for e in entries) == 1 and sum(e.pinned for e in entries) == 1
        assert db.session.scalar(select(User).where(User.username == "editor")).check_password(password)
    again = runner.invoke(args=["seed-demo"])
    assert "demo not added" in again.output and "password" not in again.output
    with app.app_context():
        assert db.session.scalar(select(func.count(Story.id))) == 1


def test_init_db_is_repeatable(app):
    runner = app.test_cli_runner()
    assert runner.invoke(args=["init-db"]).exit_code == 0
    assert "Database ready" in runner.invoke(args=["init-db"]).output


def test_fresh_database_needs_no_setup_step(database_url):
    from tracker import create_app

    app = create_app({"DATABASE_URL": database_url, "SECRET_KEY": "x"})
    result = app.test_cli_runner().invoke(args=["user", "create", "new", "--password-stdin"], input="long enough pw\n")
    assert result.exit_code == 0, result.output
    assert app.test_client().get("/").status_code == 200


def test_user_list_and_role(app, editor):
    runner = app.test_cli_runner()
    created = runner.invoke(args=["user", "create", "cole", "--role", "contributor", "--password-stdin"],
                            input="a long password\n")
    assert created.exit_code == 0 and "Created contributor account 'cole'." in created.output
    assert runner.invoke(args=["user", "role", "alice", "admin"]).output.strip() == "'alice' is now an admin."
    listed = runner.invoke(args=["user", "list"])
    assert listed.exit_code == 0 and listed.output.splitlines() == ["alice\tadmin\talice", "cole\tcontributor\tcole"]
    bad = runner.invoke(args=["user", "role", "alice", "owner"])
    assert bad.exit_code == 2 and "'owner' is not one of" in bad.output
    missing = runner.invoke(args=["user", "role", "nobody", "editor"])
    assert missing.exit_code == 1 and "There is no account 'nobody'." in missing.output
