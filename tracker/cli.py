"""Command-line tools: `flask --app app init-db | seed-demo | user | token | import | export | prune-media`."""
import logging
import sys
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import select

from . import demo, importer, services
from .extensions import db
from .models import ROLES, User
from .queries import story_by_slug
from .schema import upgrade_database
from .services import ServiceError

log = logging.getLogger(__name__)
user_cli = AppGroup("user", help="Manage newsroom accounts.")


@user_cli.command("create")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), default=ROLES[0], show_default=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input (for scripts).")
def create_user(name, role, password_stdin):
    """Create an account; prompts for the password unless --password-stdin is given."""
    upgrade_database()
    password = _read_password(password_stdin)
    try:
        user = services.create_user(name, password, role)
    except ServiceError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"Created {user.role} account '{user.username}'.")


@user_cli.command("list")
def list_users():
    """List accounts: username, role, display name, whether active."""
    upgrade_database()
    for user in db.session.scalars(select(User).order_by(User.username)):
        state = "" if user.active else "  (disabled)"
        click.echo(f"{user.username}\t{user.role}\t{user.name}{state}")


@user_cli.command("role")
@click.argument("name")
@click.argument("role", type=click.Choice(ROLES))
def set_role(name, role):
    """Give an account another role."""
    upgrade_database()
    services.change_user(_account(name), role=role)
    click.echo(f"'{name}' is now {'an' if role[0] in 'aeiou' else 'a'} {role}.")


def _account(name: str) -> User:
    user = db.session.scalar(select(User).where(User.username == name))
    if user is None:
        raise click.ClickException(f"There is no account '{name}'.")
    return user


@user_cli.command("password")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input (for scripts).")
def set_password(name, password_stdin):
    """Set an account's password and sign it out of every browser it is logged in on."""
    upgrade_database()
    user = _account(name)
    try:
        services.change_password(user, _read_password(password_stdin))
    except ServiceError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"Password of '{name}' changed; its sessions everywhere are signed out.")


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


token_cli = AppGroup("token", help="Manage bearer tokens for the JSON API.")


@token_cli.command("create")
@click.argument("name")
@click.option("--user", "username", metavar="USERNAME",
              help="The account the token acts as: its role, and its name in bylines.")
def create_token(name, username):
    """Create a token; it is printed once, alone on the last line."""
    upgrade_database()
    try:
        _, token = services.create_token(name, _account(username) if username else None)
    except ServiceError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"API token '{name}' created. Store it now: it cannot be shown again.")
    click.echo(token)


@token_cli.command("revoke")
@click.argument("name")
def revoke_token(name):
    """Revoke the active token with this name."""
    upgrade_database()
    if not services.revoke_token(name):
        raise click.ClickException(f"No active token named '{name}'.")
    click.echo(f"Token '{name}' revoked.")


@click.command("init-db")
@with_appcontext
def init_db():
    """Create or upgrade the database schema (applies pending migrations)."""
    upgrade_database()
    click.echo(f"Database ready: {db.engine.url.render_as_string(hide_password=True)}")


@click.command("seed-demo")
@with_appcontext
def seed_demo():
    """On an empty database, add the demo story and a demo editor (its password is printed once)."""
    upgrade_database()
    click.echo(demo.seed_if_empty() or "Database already has stories or accounts; demo not added.")


@click.command("import")
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@click.option("--story", "story_slug", metavar="SLUG", help="Import each file as an entry of this story.")
@click.option("--timezone", "zone_name", metavar="ZONE", envvar="IMPORT_TIMEZONE",
              help="Zone of dates written without one, e.g. Europe/Berlin [default: IMPORT_TIMEZONE, else UTC].")
@click.option("--site-root", type=click.Path(exists=True, file_okay=False, path_type=Path), metavar="DIR",
              help="Where images given as site paths (/assets/photo.jpg) are found [default: the nearest folder "
                   "above each post with _config.yml, config.toml, hugo.toml or hugo.yaml].")
@with_appcontext
def import_markdown(paths, story_slug, zone_name, site_root):
    """Import Markdown files with YAML front matter (Jekyll, Hugo) as stories, or as entries with --story.

    A directory stands for its *.md and *.markdown files. Importing a file again updates what it made.
    Prints one line per file; the exit code is 1 when any file was skipped.
    """
    upgrade_database()
    zone_name = zone_name or current_app.config.get("IMPORT_TIMEZONE") or "UTC"
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise click.BadParameter(f"unknown time zone '{zone_name}'", param_hint="'--timezone'") from None
    if story_slug is not None and story_by_slug(story_slug) is None:
        raise click.ClickException(f"No story '{story_slug}'.")
    skipped = 0
    for path in importer.markdown_files(paths):
        try:
            result = importer.import_file(path, story_slug, zone, site_root)
        except importer.ImportSkipped as exc:
            skipped += 1
            result = f"skipped: {exc.reason}"
        except Exception as exc:  # one odd file must not stop the others
            db.session.rollback()
            log.exception("import of %s failed", path)
            skipped += 1
            result = f"skipped: unexpected error ({type(exc).__name__}: {exc})"
        click.echo(f"{path}: {result}")
    if skipped:
        sys.exit(1)


@click.command("export")
@click.argument("slug")
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), metavar="FILE",
              help="Write to this file instead of standard output.")
@click.option("--media", "with_media", is_flag=True,
              help="Also write the story's images into a folder beside FILE (FILE's name without .md, then "
                   "'-media'), so that importing FILE brings them back. Needs --output.")
@with_appcontext
def export_markdown(slug, output, with_media):
    """Write a story as Markdown with YAML front matter, one section per entry; `import` reads it back."""
    upgrade_database()
    story = story_by_slug(slug)
    if story is None:
        raise click.ClickException(f"No story '{slug}'.")
    if with_media and output is None:
        raise click.UsageError("--media needs --output: the images are written beside that file.")
    folder = Path(output).with_name(Path(output).stem + "-media") if with_media else None
    text = importer.export_story(story, folder)
    if output is None:
        click.echo(text, nl=False)
        return
    with open(output, "w", encoding="utf-8", newline="\n") as file:
        file.write(text)
    click.echo(f"Story '{slug}' written to {output}.", err=True)


@click.command("prune-media")
@click.option("--older-than", "hours", type=click.IntRange(min=1), default=24, show_default=True, metavar="HOURS",
              help="Only images uploaded at least this many hours ago (an editor may still be writing with one).")
@with_appcontext
def prune_media(hours):
    """Delete uploaded images that no update and no story show (uploads given up in the composer)."""
    upgrade_database()
    count = services.prune_media(timedelta(hours=hours))
    click.echo(f"Deleted {count} unused image{'' if count == 1 else 's'}.")


def register(app: Flask) -> None:
    """Attach the commands to the app's CLI."""
    for command in (user_cli, token_cli, init_db, seed_demo, import_markdown, export_markdown,
                    prune_media):
        app.cli.add_command(command)
