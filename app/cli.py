"""Flask CLI commands: ``flask --app app api-keys create|list|revoke``."""

import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
from flask import Flask
from flask.cli import AppGroup
from sqlalchemy import func, select

from app.errors import NotFoundError
from app.extensions import db
from app.models import User
from app.models.api_key import NAME_MAX
from app.services import bulk
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


users_cli = AppGroup("users", help="Import and export users in bulk.")


def _format_of(path: Path, given: str | None) -> bulk.Format:
    if given is not None:
        return "csv" if given == "csv" else "ndjson"
    return "csv" if path.suffix.lower() == ".csv" else "ndjson"


@users_cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--on-conflict",
    type=click.Choice(["error", "skip"]),
    default="error",
    show_default=True,
    help="error: all or nothing. skip: write the valid new rows, report the others.",
)
@click.option("--format", "fmt", type=click.Choice(["ndjson", "csv"]), help="Default: by suffix.")
def import_command(file: Path, on_conflict: bulk.Mode, fmt: str | None) -> None:
    """Import users from an NDJSON or CSV file, with progress and a summary."""
    started = time.monotonic()
    size = file.stat().st_size
    with (
        file.open("rb") as raw,
        click.progressbar(length=size, label="Importing", file=sys.stderr) as bar,
    ):
        read = 0

        def progress(_rows: int) -> None:
            nonlocal read
            bar.update(raw.tell() - read)
            read = raw.tell()

        try:
            report = bulk.import_users(raw, _format_of(file, fmt), on_conflict, progress)
        except bulk.MalformedFileError as error:
            click.echo(f"\nError: {file}: {error.detail}. Nothing was imported.", err=True)
            sys.exit(1)
        except bulk.ImportRejectedError as error:
            click.echo(f"\nError: {error.detail}", err=True)
            for problem in error.extensions["errors"]:
                click.echo(f"  line {problem['line']}: {problem['problem']}", err=True)
            sys.exit(1)
        bar.update(size - read)
    elapsed = time.monotonic() - started
    rate = report.rows / elapsed if elapsed else 0.0
    click.echo(
        f"Imported {report.created} users, skipped {report.skipped}, "
        f"from {report.rows} rows in {elapsed:.1f} s ({rate:,.0f} rows/s).",
        err=True,
    )
    for problem in report.errors:
        click.echo(f"  line {problem.line}: {problem.problem}", err=True)


@users_cli.command("export")
@click.argument("file", type=click.Path(dir_okay=False, writable=True, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["ndjson", "csv"]), help="Default: by suffix.")
def export_command(file: Path, fmt: str | None) -> None:
    """Export every user to an NDJSON or CSV file, with progress and a summary."""
    started = time.monotonic()
    total = db.session.execute(select(func.count()).select_from(User)).scalar_one()
    written = 0
    with (
        file.open("wb") as out,
        click.progressbar(length=total, label="Exporting", file=sys.stderr) as bar,
    ):
        for chunk in bulk.export_users(_format_of(file, fmt)):
            out.write(chunk)
            rows = chunk.count(b"\n")
            written += rows
            bar.update(rows)
    elapsed = time.monotonic() - started
    click.echo(f"Exported {total} users to {file} in {elapsed:.1f} s.", err=True)


def init_app(app: Flask) -> None:
    """Register the CLI commands."""
    app.cli.add_command(api_keys)
    app.cli.add_command(users_cli)
