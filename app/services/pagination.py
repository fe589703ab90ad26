"""Opaque keyset cursors: a page never repeats or skips a row when rows come and go."""

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, tuple_
from sqlalchemy.orm import InstrumentedAttribute

from app.db.types import folded
from app.errors import BadRequestError


@dataclass(frozen=True)
class SortKey:
    """A sort order: its columns (the last one unique) and whether it descends.

    ignore_case orders by lower() of a single column that is unique whatever its letter
    case: lower(column) is then a total order on its own, needing no tie-breaker, and the
    unique index on lower(column) serves both the ORDER BY and the keyset condition.
    """

    columns: Sequence[InstrumentedAttribute[Any]]
    descending: bool
    ignore_case: bool = False

    def __post_init__(self) -> None:
        if self.ignore_case and len(self.columns) != 1:
            msg = "ignore_case orders by one column, unique by lower() alone"
            raise ValueError(msg)


def encode_cursor(sort: str, values: Sequence[Any]) -> str:
    """Make an opaque cursor from the sort name and the last row's key values."""
    plain = [v.isoformat() if isinstance(v, datetime) else v for v in values]
    raw = json.dumps({"s": sort, "k": plain}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


_INT64 = range(-(2**63), 2**63)


def _decode_value(column: InstrumentedAttribute[Any], value: Any) -> Any:
    # A cursor is client input: every value must be one the database can bind.
    python_type = column.type.python_type
    if python_type is datetime:
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            raise ValueError
        return parsed.astimezone(UTC)  # overflows here, not in the driver
    if not isinstance(value, python_type) or isinstance(value, bool):
        raise TypeError
    if isinstance(value, int) and value not in _INT64:
        raise ValueError
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError
        value.encode()  # a lone surrogate raises UnicodeEncodeError
    return value


def decode_cursor(cursor: str, sort: str, key: SortKey) -> tuple[Any, ...]:
    """Read a cursor made by encode_cursor for the same sort, or raise a 400."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
        if data["s"] != sort:
            msg = "The cursor belongs to another sort order; start again without a cursor."
            raise BadRequestError(msg)
        values = data["k"]
        if len(values) != len(key.columns):
            # Made for another shape of this order, such as an older release's: not resumable.
            msg = "The cursor belongs to another version of this sort order; start again."
            raise BadRequestError(msg)
        return tuple(_decode_value(c, v) for c, v in zip(key.columns, values, strict=True))
    except BadRequestError:
        raise
    except (binascii.Error, ValueError, TypeError, KeyError, OverflowError, UnicodeError) as exc:
        raise BadRequestError("The cursor is not valid.") from exc


S = TypeVar("S", bound=Select[*tuple[Any, ...]])


def paginate(stmt: S, key: SortKey, sort: str, cursor: str | None, limit: int) -> S:
    """Order the statement by the key, start after the cursor and fetch one row extra."""
    columns: list[ColumnElement[Any] | InstrumentedAttribute[Any]] = list(key.columns)
    if key.ignore_case:
        columns = [folded(columns[0])]
    if cursor is not None:
        after = decode_cursor(cursor, sort, key)
        left = tuple_(*columns) if len(columns) > 1 else columns[0]
        right: Any = after if len(columns) > 1 else after[0]
        if key.ignore_case:
            # Folded by the database, never by str.lower: Python and PostgreSQL fold some
            # characters differently, and the condition must agree with the ORDER BY.
            right = folded(right)
        condition: ColumnElement[bool] = left < right if key.descending else left > right
        stmt = stmt.where(condition)
    order = [c.desc() if key.descending else c.asc() for c in columns]
    return stmt.order_by(*order).limit(limit + 1)


def next_cursor(rows: Sequence[Any], key: SortKey, sort: str, limit: int) -> str | None:
    """Return the cursor after the last row shown, or None on the last page."""
    if len(rows) <= limit:
        return None
    last = rows[limit - 1]
    return encode_cursor(sort, [getattr(last, c.key) for c in key.columns])
