"""Command-line tools: `flask --app app init-db | seed-demo | user create NAME`."""
import secrets
import sys

import click
from flask import Flask
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import func, select

from . import services
from .extensions import db
from .models import Story, User
from .schema import upgrade_database
from .services import ServiceError

user_cli = AppGroup("user", help="Manage newsroom accounts.")


@user_cli.command("create")
@click.argument("name")
@click.option("--role", type=click.Choice(["editor", "admin"]), default="editor", show_default=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input (for scripts).")
def create_user(name, role, password_stdin):
    """Create an account; prompts for the password unless --password-stdin is given."""
    upgrade_database()
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        user = services.create_user(name, password, role)
    except ServiceError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"Created {user.role} account '{user.username}'.")


token_cli = AppGroup("token", help="Manage bearer tokens for the JSON API.")


@token_cli.command("create")
@click.argument("name")
def create_token(name):
    """Create a token; it is printed once, alone on the last line."""
    upgrade_database()
    try:
        _, token = services.create_token(name)
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
    from .demo import seed

    upgrade_database()
    if db.session.scalar(select(func.count(Story.id))) or db.session.scalar(select(func.count(User.id))):
        click.echo("Database already has stories or accounts; demo not added.")
        return
    password = secrets.token_urlsafe(12)
    story = seed(password)
    click.echo(f"Demo story: /stories/{story.slug}")
    click.echo(f"Demo editor account: username 'editor', password '{password}' (shown only once)")


def register(app: Flask) -> None:
    """Attach the commands to the app's CLI."""
    for command in (user_cli, token_cli, init_db, seed_demo):
        app.cli.add_command(command)
