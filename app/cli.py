"""Flask CLI commands: ``flask --app app api-keys create|list|revoke``."""

import sys
from datetime import UTC, datetime, timedelta

import click
from flask import Flask
from flask.cli import AppGroup

from app.errors import NotFoundError
from app.extensions import db
from app.models.api_key import NAME_MAX
from app.services.api_keys import ALL_SCOPES, Scope, create_api_key, list_api_keys, revoke_api_key

api_keys = AppGroup("api-keys", help="Create, list and revoke API keys.")


def _when(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value is not None else "-"


@api_keys.command("create")
@click.argument("name")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    required=True,
    type=click.Choice(ALL_SCOPES),
    help="A scope to grant; repeat for several.",
)
@click.option("--expires-in", type=click.IntRange(min=1), help="Days until the key expires.")
def create_command(name: str, scopes: tuple[Scope, ...], expires_in: int | None) -> None:
    """Create a key and print its secret alone on stdout; it is never shown again."""
    if not name.strip() or len(name) > NAME_MAX:
        raise click.BadParameter(f"1 to {NAME_MAX} characters", param_hint="NAME")
    expires_at = datetime.now(UTC) + timedelta(days=expires_in) if expires_in else None
    key, token = create_api_key(name, list(scopes), expires_at)
    db.session.commit()
    click.echo(
        f"Created API key {key.prefix} ({name}) with scopes {' '.join(key.scopes)}, "
        f"expires {_when(key.expires_at)}. The secret below is shown only this once.",
        err=True,
    )
    click.echo(token)


@api_keys.command("list")
def list_command() -> None:
    """List keys (never their secrets)."""
    keys = list_api_keys()
    if not keys:
        click.echo("No API keys.", err=True)
        return
    click.echo(f"{'PREFIX':<14}{'NAME':<24}{'STATUS':<9}{'EXPIRES':<27}{'LAST USED':<27}SCOPES")
    now = datetime.now(UTC)
    for key in keys:
        status = "active"
        if key.revoked_at is not None:
            status = "revoked"
        elif key.expires_at is not None and key.expires_at <= now:
            status = "expired"
        click.echo(
            f"{key.prefix:<14}{key.name[:23]:<24}{status:<9}{_when(key.expires_at):<27}"
            f"{_when(key.last_used_at):<27}{' '.join(key.scopes)}"
        )


@api_keys.command("revoke")
@click.argument("prefix")
def revoke_command(prefix: str) -> None:
    """Revoke the key with this prefix; it stops working at once."""
    try:
        key = revoke_api_key(prefix)
    except NotFoundError as error:
        click.echo(f"Error: {error.detail}", err=True)
        sys.exit(1)
    db.session.commit()
    click.echo(f"Revoked API key {key.prefix} ({key.name}).", err=True)


def init_app(app: Flask) -> None:
    """Register the CLI commands."""
    app.cli.add_command(api_keys)
