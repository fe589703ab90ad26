"""Helpers for tests that watch every engine of an app (the default and the autocommit one)."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask
from sqlalchemy import Engine, event
from sqlalchemy.pool import QueuePool

from app.db.session import db


def engines(app: Flask) -> list[Engine]:
    """Every engine the app's session can send statements to."""
    with app.app_context():
        return list(db.engines.values())


@contextmanager
def listening(app: Flask, identifier: str, fn: Callable[..., Any]) -> Iterator[None]:
    """Attach an engine event listener to every engine of the app while the block runs."""
    watched = engines(app)
    for engine in watched:
        event.listen(engine, identifier, fn)
    try:
        yield
    finally:
        for engine in watched:
            event.remove(engine, identifier, fn)


def assert_nothing_checked_out(app: Flask) -> None:
    """Fail if any engine of the app has a connection out of its pool."""
    for engine in engines(app):
        pool = engine.pool
        assert isinstance(pool, QueuePool)
        assert pool.checkedout() == 0, engine
