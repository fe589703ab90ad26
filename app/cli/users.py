"""``flask --app app users import|export|seed|create-admin``: the ``group`` of user commands;
the bulk ones with a progress bar and a summary."""

import os
import stat
import sys
from pathlib import Path
from typing import IO

import click
from flask.cli import AppGroup
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from app.cli.common import Progress, counted, needs_schema
from app.db.session import db
from app.errors import AppError
from app.models import User
from app.schemas.users import UserCreate
from app.services import bulk, groups, passwords, seed

group = AppGroup(
    "users", help="Import and export users in bulk, seed fake ones, or create an admin."
)


def _format_of(path: Path, given: str | None) -> bulk.Format:
    if given is not None:
        return "csv" if given == "csv" else "ndjson"
    return "csv" if path.suffix.lower() == ".csv" else "ndjson"


def _size(stream: IO[bytes]) -> int | None:
    """Bytes left to read where the stream is a regular file (standard input may be one)."""
    try:
        info = os.fstat(stream.fileno())
    except OSError:  # io.UnsupportedOperation too: a stream with no file behind it
        return None
    return info.st_size - stream.tell() if stat.S_ISREG(info.st_mode) else None


def _named(file: Path, stream: str) -> str:
    return f"standard {stream}" if str(file) == "-" else str(file)


@group.command("import")
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
            with Progress("Importing", size) as bar:
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
        f"Imported {counted(report.created, 'user')}, skipped {report.skipped:,}, "
        f"from {counted(report.rows, 'row')} in {bar.elapsed:.1f} s ({bar.rate:,.0f} rows/s).",
        err=True,
    )
    for problem in report.errors:
        click.echo(f"  line {problem.line}: {problem.problem}", err=True)
    unlisted = report.skipped - len({p.line for p in report.errors if p.line})
    if report.errors and unlisted > 0:
        click.echo(f"  ({counted(unlisted, 'more skipped line')} not listed)", err=True)


def _import_with_progress(
    raw: IO[bytes], size: int | None, bar: Progress, fmt: bulk.Format, mode: bulk.Mode
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


@group.command("export")
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
    with click.open_file(str(file), "wb") as out, Progress("Exporting", total) as bar:
        header = fmt_of == "csv"
        for chunk in bulk.export_users(fmt_of):
            out.write(chunk)
            rows = chunk.count(b"\n") - header
            header = False
            bar.advance(rows, rows)
    click.echo(
        f"Exported {counted(bar.rows, 'user')} to {_named(file, 'output')} in {bar.elapsed:.1f} s "
        f"({bar.rate:,.0f} rows/s).",
        err=True,
    )


@group.command("seed")
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
        with Progress("Seeding", count) as bar:
            report = seed.seed_users(count, posts_per_user, bar.advance, seed=seed_value)
        db.session.commit()
    except IntegrityError as error:
        db.session.rollback()
        message = "another writer took one of the new names meanwhile; nothing was added. Retry."
        raise click.ClickException(message) from error
    click.echo(
        f"Seeded {counted(report.users, 'user')} and {counted(report.posts, 'post')} "
        f"in {bar.elapsed:.1f} s ({bar.rate:,.0f} rows/s).",
        err=True,
    )


@group.command("create-admin")
@click.argument("username")
@click.argument("email")
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from standard input's first line instead of a prompt.",
)
@needs_schema
def create_admin_command(username: str, email: str, password_stdin: bool) -> None:
    """Create a user who signs in with a password, in the admins group (every scope; made if
    absent). The password is asked for (hidden, twice) or read from standard input, never
    taken as an argument: argv is visible to every user of the machine."""
    try:
        data = UserCreate(username=username, email=email)
    except ValidationError as error:
        problems = "; ".join(f"{e['loc'][0]}: {e['msg']}" for e in error.errors())
        raise click.ClickException(problems) from None
    if password_stdin:
        line: str = sys.stdin.readline()
        password = line.removesuffix("\n").removesuffix("\r")
    else:
        password = str(click.prompt("Password", hide_input=True, confirmation_prompt=True))
    try:
        password_hash = passwords.hash_password(passwords.checked_password(password))
        user, group_id, made = groups.create_admin(data, password_hash)
        db.session.commit()
    except AppError as error:  # a refused password, a taken username or email
        db.session.rollback()
        raise click.ClickException(error.detail) from None
    made_group = (
        f"made group {groups.ADMINS} ({group_id}) with every scope"
        if made
        else f"in group {groups.ADMINS} ({group_id})"
    )
    click.echo(f"Created admin {user.username} ({user.id}), {made_group}.", err=True)
