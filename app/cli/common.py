"""What the command groups share: ``needs_schema`` (the migration check a command runs first),
``Progress`` (the bar of a long command, on a terminal or not) and the formatting of counts
and times in their messages."""

import functools
import itertools
import sys
import time
from collections.abc import Callable
from datetime import datetime
from typing import ParamSpec, TypeVar

import click

from app.config import current_settings
from app.db import migrations
from app.db.session import db

P = ParamSpec("P")
R = TypeVar("R")


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


def when(value: datetime | None) -> str:
    """The time to the second, or - for none."""
    return value.isoformat(timespec="seconds") if value is not None else "-"


def counted(n: int, noun: str) -> str:
    """``n`` and the noun, plural unless ``n`` is 1."""
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


# Off a terminal (a pipe, a container's log) click prints a bar's label only: a line this
# often says how far a long import or export has got instead.
PROGRESS_EVERY = 5.0


class Progress:
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

    def __enter__(self) -> "Progress":
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
