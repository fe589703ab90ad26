"""Flask CLI commands: ``flask --app app api-keys create|list|revoke`` and
``flask --app app users import|export|seed``."""

import functools
import itertools
import os
import stat
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, ParamSpec, TypeVar

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from app import openapi
from app.config import current_settings
from app.db import migrations
from app.db.session import db
from app.errors import NotFoundError
from app.models import User
from app.models.api_key import NAME_MAX
from app.services import bulk, seed
from app.services.api_keys import ALL_SCOPES, Scope, create_api_key, list_api_keys, revoke_api_key

P = ParamSpec("P")
R = TypeVar("R")

api_keys = AppGroup("api-keys", help="Create, list and revoke API keys.")


def _require_current_schema() -> None:
    try:
        migrations.require_current_schema(db.engine, current_settings().backend)
    except migrations.SchemaNotReadyError as error:
        raise click.ClickException(str(error)) from error


def needs_schema(command: Callable[P, R]) -> Callable[P, R]:
    """Check, before the command runs (not for --help), that the database is migrated."""

    @functools.wraps(command)
    def checked(*args: P.args, **kwargs: P.kwargs) -> R:
        _require_current_schema()
        return command(*args, **kwargs)

    return checked


def _when(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value is not None else "-"


def _key_name(_ctx: click.Context, _param: click.Parameter, name: str) -> str:
    if not name.strip() or len(name) > NAME_MAX:
        raise click.BadParameter(f"1 to {NAME_MAX} characters")
    return name


@api_keys.command("create")
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
        f"expires {_when(key.expires_at)}. The secret below is shown only this once.",
        err=True,
    )
    click.echo(token)


@api_keys.command("list")
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
            f"{key.prefix:<14}{key.name[:23]:<24}{status:<9}{_when(key.expires_at):<27}"
            f"{_when(key.last_used_at):<27}{' '.join(key.scopes)}"
        )


@api_keys.command("revoke")
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


users_cli = AppGroup("users", help="Import and export users in bulk, or seed fake ones.")


def _format_of(path: Path, given: str | None) -> bulk.Format:
    if given is not None:
        return "csv" if given == "csv" else "ndjson"
    return "csv" if path.suffix.lower() == ".csv" else "ndjson"


# Off a terminal (a pipe, a container's log) click prints a bar's label only: a line this
# often says how far a long import or export has got instead.
PROGRESS_EVERY = 5.0


def _counted(n: int, noun: str) -> str:
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


class _Progress:
    """click's bar (its ETA where the length is known) with the rows done and rows/s beside it,
    on a terminal or not."""

    def __init__(self, label: str, length: int | None) -> None:
        self.rows = 0
        self._label = label
        self._length = length
        self._started = self._said = time.monotonic()
        self._terminal = sys.stderr.isatty()
        # An endless iterable is how click draws a bar of no known length.
        steps = itertools.repeat(0) if length is None else None
        self._bar = click.progressbar(
            steps, length=length, label=label, file=sys.stderr, item_show_func=self._info
        )

    def __enter__(self) -> "_Progress":
        self._bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._bar.render_finish()

    @property
    def elapsed(self) -> float:
        """Seconds since the bar was made."""
        return time.monotonic() - self._started

    @property
    def rate(self) -> float:
        """Rows per second so far."""
        elapsed = self.elapsed
        return self.rows / elapsed if elapsed > 0 else 0.0

    def advance(self, steps: int, rows: int) -> None:
        """Move the bar ``steps`` along its length, ``rows`` of them done."""
        self.rows += rows
        self._bar.update(steps)
        if not steps:
            self._bar.render_progress()  # update() draws only when the bar moves
        now = time.monotonic()
        if not self._terminal and now - self._said >= PROGRESS_EVERY:
            self._said = now
            line = f"{self._label}: {self._info(None)}"
            if self._length:
                share = min(self._bar.pos / self._length, 1.0)
                left = self.elapsed * (1 - share) / share if share else 0.0
                line += f", {share:.0%}, {left:.0f} s left"
            click.echo(line, err=True)

    def _info(self, _item: object) -> str:
        return f"{self.rows:,} rows, {self.rate:,.0f} rows/s"


def _size(stream: IO[bytes]) -> int | None:
    """Bytes left to read where the stream is a regular file (standard input may be one)."""
    try:
        info = os.fstat(stream.fileno())
    except OSError:  # io.UnsupportedOperation too: a stream with no file behind it
        return None
    return info.st_size - stream.tell() if stat.S_ISREG(info.st_mode) else None


def _named(file: Path, stream: str) -> str:
    return f"standard {stream}" if str(file) == "-" else str(file)


@users_cli.command("import")
@click.argument(
    "file", type=click.Path(exists=True, dir_okay=False, allow_dash=True, path_type=Path)
)
@click.option(
    "--on-conflict",
    type=click.Choice(["error", "skip"]),
    default="error",
    show_default=True,
    help="error: all or nothing. skip: write the valid new rows, report the others.",
)
@click.option(
    "--format", "fmt", type=click.Choice(["ndjson", "csv"]), help="Default: by suffix, or ndjson."
)
@needs_schema
def import_command(file: Path, on_conflict: bulk.Mode, fmt: str | None) -> None:
    """Import users from an NDJSON or CSV file (- for standard input), with progress and a
    summary."""
    try:
        # The bar is closed (its line ended) before any error is said.
        with click.open_file(str(file), "rb") as raw:
            size = _size(raw)
            with _Progress("Importing", size) as bar:
                report = _import_with_progress(raw, size, bar, _format_of(file, fmt), on_conflict)
    except bulk.MalformedFileError as error:
        message = f"{_named(file, 'input')}: {error.detail}. Nothing was imported."
        raise click.ClickException(message) from error
    except bulk.ImportRejectedError as error:
        click.echo(f"Error: {error.detail}", err=True)
        for problem in error.extensions["errors"]:
            click.echo(f"  line {problem['line']}: {problem['problem']}", err=True)
        sys.exit(1)
    click.echo(
        f"Imported {_counted(report.created, 'user')}, skipped {report.skipped:,}, "
        f"from {_counted(report.rows, 'row')} in {bar.elapsed:.1f} s ({bar.rate:,.0f} rows/s).",
        err=True,
    )
    for problem in report.errors:
        click.echo(f"  line {problem.line}: {problem.problem}", err=True)
    unlisted = report.skipped - len({p.line for p in report.errors if p.line})
    if report.errors and unlisted > 0:
        click.echo(f"  ({_counted(unlisted, 'more skipped line')} not listed)", err=True)


def _import_with_progress(
    raw: IO[bytes], size: int | None, bar: _Progress, fmt: bulk.Format, mode: bulk.Mode
) -> bulk.ImportReport:
    # The bar counts bytes where the size is known (so it has an end and an ETA), else rows.
    position = raw.tell() if size is not None else 0
    end = position + (size or 0)

    def progress(rows: int) -> None:
        nonlocal position
        if size is None:
            bar.advance(rows, rows)
            return
        now = raw.tell()
        bar.advance(now - position, rows)
        position = now

    report = bulk.import_users(raw, fmt, mode, progress)
    if size is not None:
        bar.advance(end - position, 0)
    return report


@users_cli.command("export")
@click.argument(
    "file", type=click.Path(dir_okay=False, writable=True, allow_dash=True, path_type=Path)
)
@click.option(
    "--format", "fmt", type=click.Choice(["ndjson", "csv"]), help="Default: by suffix, or ndjson."
)
@needs_schema
def export_command(file: Path, fmt: str | None) -> None:
    """Export every user to an NDJSON or CSV file (- for standard output), with progress and
    a summary."""
    # The count sizes the bar only: users created meanwhile may be exported too.
    total = db.session.execute(select(func.count()).select_from(User)).scalar_one()
    fmt_of = _format_of(file, fmt)
    with click.open_file(str(file), "wb") as out, _Progress("Exporting", total) as bar:
        header = fmt_of == "csv"
        for chunk in bulk.export_users(fmt_of):
            out.write(chunk)
            rows = chunk.count(b"\n") - header
            header = False
            bar.advance(rows, rows)
    click.echo(
        f"Exported {_counted(bar.rows, 'user')} to {_named(file, 'output')} in {bar.elapsed:.1f} s "
        f"({bar.rate:,.0f} rows/s).",
        err=True,
    )


@users_cli.command("seed")
@click.option(
    "--count", type=click.IntRange(min=1), default=100, show_default=True, help="Users to add."
)
@click.option(
    "--posts-per-user",
    type=click.IntRange(min=0),
    default=3,
    show_default=True,
    help="Posts each new user gets.",
)
@click.option("--seed", "seed_value", type=int, help="The same fake data for the same number.")
@needs_schema
def seed_command(count: int, posts_per_user: int, seed_value: int | None) -> None:
    """Add fake users and their posts for a demo, with progress and a summary; names never
    collide with existing users'."""
    try:
        with _Progress("Seeding", count) as bar:
            report = seed.seed_users(count, posts_per_user, bar.advance, seed=seed_value)
        db.session.commit()
    except IntegrityError as error:
        db.session.rollback()
        message = "another writer took one of the new names meanwhile; nothing was added. Retry."
        raise click.ClickException(message) from error
    click.echo(
        f"Seeded {_counted(report.users, 'user')} and {_counted(report.posts, 'post')} "
        f"in {bar.elapsed:.1f} s ({bar.rate:,.0f} rows/s).",
        err=True,
    )


@click.command("openapi")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True, allow_dash=True, path_type=Path),
    default="-",
    help="File to write (default: standard output).",
)
@with_appcontext
def openapi_command(output: Path) -> None:
    """Write the OpenAPI document exactly as GET /openapi.json serves it."""
    # Replaces flask-openapi3's command of this name, which printed its raw document: no
    # problem+json errors, no 401/403/500/503, so clients generated from it were wrong.
    with click.open_file(str(output), "wb") as out:
        out.write(openapi.served_bytes(current_app))


def init_app(app: Flask) -> None:
    """Register the CLI commands."""
    app.cli.add_command(api_keys)
    app.cli.add_command(users_cli)
    app.cli.add_command(openapi_command)
