"""Conditional requests (RFC 9110, section 13) on single resources: strong ETags made from
row versions; If-Match and If-None-Match evaluated in section 13.2.2's order (If-Match
first); a read answered with a 304 or a 412; a write's conditions turned into the versions
its own WHERE must find, so the check and the write are one statement.

Both headers are bounded (``MAX_CONDITION_BYTES``, ``MAX_CONDITION_TAGS``): over either, a
400 before anything else is done with them.
"""

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from flask import request
from werkzeug.datastructures import ETags
from werkzeug.http import parse_etags

from app.db.session import autocommit, transaction
from app.errors import BadRequestError, PreconditionFailedError
from app.schemas.common import Versions
from app.services import events
from app.web.responses import Response

# Ours: "v<version>", and for a post, whose body embeds its author, "v<post>.<author>";
# flask-compress tags a compressed body "<tag>:<coding>" (another representation, RFC 9110
# 8.8.3.3, of the same version).
_OURS = re.compile(r"v(\d{1,18})(?:\.(\d{1,18}))?(?::[a-z]{1,16})?")

# Parsing a list of tags costs CPU in proportion to its length (an unbounded 398 KB If-Match
# cost 458 ms), so the length is checked before any parsing. Each tag of ours then becomes a
# term of the write's WHERE, and each number of terms a statement of its own in SQLAlchemy's
# compiled cache: the count is bounded too. A client names one tag, or one per content
# coding it holds (five at most); 16 of our longest (W/"v<18 digits>.<18 digits>:<coding>",
# 60 bytes) fit in the bytes.
MAX_CONDITION_BYTES = 1024
MAX_CONDITION_TAGS = 16


def etag(*versions: int) -> str:
    """The strong ETag of a representation made from rows at these versions."""
    return '"v' + ".".join(str(version) for version in versions) + '"'


def _entity_tags(name: str) -> ETags | None:
    """The header's entity tags; None where it is absent or empty (no condition at all)."""
    raw = request.headers.get(name, "")
    if len(raw) > MAX_CONDITION_BYTES:
        raise BadRequestError(f"{name} is longer than {MAX_CONDITION_BYTES} bytes.")
    raw = raw.strip()
    if not raw:
        return None
    tags = parse_etags(raw)
    if len(tags.as_set(include_weak=True)) > MAX_CONDITION_TAGS:
        raise BadRequestError(f"{name} names more than {MAX_CONDITION_TAGS} entity tags.")
    return tags


def _versions(tags: Iterable[str | None], size: int) -> set[tuple[int, ...]]:
    """The versions of ``size`` rows that the tags of ours name; foreign tags name none."""
    named: set[tuple[int, ...]] = set()
    for tag in tags:
        # werkzeug yields None for some malformed entries (a lone "W/", say).
        match = _OURS.fullmatch(tag or "")
        if match is not None:
            versions = tuple(int(v) for v in match.groups() if v is not None)
            if len(versions) == size:
                named.add(versions)
    return named


def _if_match(size: int) -> Versions:
    # Strong comparison (RFC 9110 13.1.1): weak tags never match, so as_set() leaves them out.
    tags = _entity_tags("If-Match")
    if tags is None or tags.star_tag:
        return None  # any current version will do: the resource exists, or it is a 404
    return sorted(_versions(tags.as_set(), size))


def versions_named(tag: str) -> Versions:
    """The versions of one row that an entity tag names (a SCIM bulk operation's
    ``version``): none for a tag that is not ours, so a write with it finds no row (412)."""
    if len(tag) > MAX_CONDITION_BYTES:
        raise BadRequestError(f"A version is longer than {MAX_CONDITION_BYTES} bytes.")
    return sorted(_versions(parse_etags(tag).as_set(), 1))


def not_modified(what: str, *versions: int) -> Response | None:
    """Evaluate a GET's (or HEAD's) conditions on the representation at these versions: a
    412 (raised) where If-Match names none of its tags, else a 304 where If-None-Match names
    one (weak comparison; a compressed body's tag names its version too), else None."""
    environ = request.environ
    if "HTTP_IF_MATCH" not in environ and "HTTP_IF_NONE_MATCH" not in environ:
        return None  # most reads name no condition: nothing to parse or compare
    current = tuple(versions)
    allowed = _if_match(len(current))
    if allowed is not None and current not in allowed:
        raise PreconditionFailedError(what)
    tags = _entity_tags("If-None-Match")
    if tags is None:
        return None
    if tags.star_tag or current in _versions(tags.as_set(include_weak=True), len(current)):
        return Response(status=304, headers={"ETag": etag(*current)})
    return None


@dataclass(frozen=True, slots=True)
class WriteCondition:
    """If-Match and If-None-Match of a state-changing request (PATCH, PUT, DELETE).

    Per RFC 9110 13.1.2 a write with If-None-Match naming the current tag, or ``*`` while
    the resource exists, is a 412: so the versions the write may find are those If-Match
    allows, less those If-None-Match names, and none at all for ``*``. Where a write matches
    no row, ``missing_or_changed`` (services/versions.py) answers a 412 if the row exists
    and a 404 if not (section 13.2.1: a request that would be a 404 without its conditions
    is a 404 with them).
    """

    allowed: Versions  # If-Match: one of these (None: any)
    refused: frozenset[tuple[int, ...]]  # If-None-Match: none of these
    refuse_any: bool  # If-None-Match: *

    @property
    def reads_current(self) -> bool:
        """Whether ``versions`` reads the current version first: If-None-Match names tags
        and If-Match allows any version, so no finite list says "any but these" up front.
        The read and the write are two statements: run them in one ``transaction()``."""
        return bool(self.refused) and self.allowed is None and not self.refuse_any

    def versions(self, current: Callable[[], tuple[int, ...]]) -> Versions:
        """The versions the write's WHERE may find (None: any); ``current`` reads the row's
        version, and is called only where ``reads_current`` says so."""
        if self.refuse_any:
            return []  # "*": no existing version will do
        if not self.refused:
            return self.allowed
        if self.allowed is not None:
            return [versions for versions in self.allowed if versions not in self.refused]
        # The version read is the one the write must still find: one written meanwhile makes
        # the write match no row (a 412), so no write ever passes a condition unchecked.
        now = current()
        return [] if now in self.refused else [now]


def write_condition(size: int) -> WriteCondition:
    """The conditions of a write on ``size`` rows' versions (a post's: its own, its
    author's)."""
    allowed = _if_match(size)
    tags = _entity_tags("If-None-Match")
    if tags is None:
        return WriteCondition(allowed, frozenset(), refuse_any=False)
    refused = _versions(tags.as_set(include_weak=True), size)
    return WriteCondition(allowed, frozenset(refused), refuse_any=tags.star_tag)


def unit_for(condition: WriteCondition) -> transaction | autocommit:
    """The unit of work of a write under ``condition``: ``events.write_unit()`` for its
    statement and its event; ``transaction()`` where it reads the current version first,
    so the read and the write hold together (and the read is the primary's, never a
    replica's)."""
    # A write that records its change event is two statements: a transaction either way.
    return transaction() if condition.reads_current else events.write_unit()
