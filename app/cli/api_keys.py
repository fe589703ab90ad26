"""``flask --app app api-keys create|list|revoke``: the ``group`` of API key commands."""

from datetime import UTC, datetime, timedelta

import click
from flask.cli import AppGroup

from app.cli.common import needs_schema, when
from app.db.session import db
from app.errors import NotFoundError
from app.models.api_key import NAME_MAX
from app.services.api_keys import ALL_SCOPES, Scope, create_api_key, list_api_keys, revoke_api_key

group = AppGroup("api-keys", help="Create, list and revoke API keys.")


def _key_name(_ctx: click.Context, _param: click.Parameter, name: str) -> str:
    if not name.strip() or len(name) > NAME_MAX:
        raise click.BadParameter(f"1 to {NAME_MAX} characters")
    return name


@group.command("create")
@click.argument("name", callback=_key_name)
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    required=True,
    type=click.Choice(ALL_SCOPES),
    help="A scope to grant; repeat for several.",
)
@click.option("--expires-in", type=click.IntRange(min=1), help="Days until the key expires.")
@needs_schema
def create_command(name: str, scopes: tuple[Scope, ...], expires_in: int | None) -> None:
    """Create a key and print its secret alone on stdout; it is never shown again."""
    expires_at = datetime.now(UTC) + timedelta(days=expires_in) if expires_in else None
    key, token = create_api_key(name, list(scopes), expires_at)
    db.session.commit()
    click.echo(
        f"Created API key {key.prefix} ({name}) with scopes {' '.join(key.scopes)}, "
        f"expires {when(key.expires_at)}. The secret below is shown only this once.",
        err=True,
    )
    click.echo(token)


@group.command("list")
@needs_schema
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
            f"{key.prefix:<14}{key.name[:23]:<24}{status:<9}{when(key.expires_at):<27}"
            f"{when(key.last_used_at):<27}{' '.join(key.scopes)}"
        )


@group.command("revoke")
@click.argument("prefix")
@needs_schema
def revoke_command(prefix: str) -> None:
    """Revoke the key with this prefix; it stops working at once."""
    try:
        key = revoke_api_key(prefix)
    except NotFoundError as error:
        raise click.ClickException(error.detail) from error
    db.session.commit()
    click.echo(f"Revoked API key {key.prefix} ({key.name}).", err=True)
