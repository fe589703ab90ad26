"""Optimistic concurrency shared by every resource: the If-Match check inside the write's own
WHERE (no read-then-write race), and the one follow-up that tells "gone" from "changed"."""

from typing import Any

from sqlalchemy import ColumnElement, and_, false, or_, select

from app.db.session import db
from app.errors import NotFoundError, PreconditionFailedError
from app.schemas.common import Versions


def at_versions(
    row: ColumnElement[bool], versions: Versions, *columns: ColumnElement[int]
) -> ColumnElement[bool]:
    """``row`` (the write's target) at one of ``versions``, each a tuple of the ``columns``'
    values (None: at any version)."""
    if versions is None:
        return row
    allowed = [
        and_(*(column == value for column, value in zip(columns, tag, strict=True)))
        for tag in versions
    ]
    return and_(row, or_(false(), *allowed))


def missing_or_changed(
    what: str, id_column: ColumnElement[Any], row_id: int
) -> NotFoundError | PreconditionFailedError:
    """The error of a conditional write that matched no row: the row is gone, or it changed."""
    exists = db.session.execute(select(1).where(id_column == row_id)).first()
    if exists:
        return PreconditionFailedError(what)
    return NotFoundError(f"{what.capitalize()} {row_id} does not exist.")
