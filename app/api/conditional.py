"""Conditional requests (RFC 9110, section 13) on single resources: strong ETags made from
row versions, If-None-Match answered with a 304, If-Match turned into the versions a write's
own WHERE must find, so the check and the write are one statement."""

import re

from flask import Response, request

from app.schemas.common import Versions

# Ours: "v<version>", and for a post, whose body embeds its author, "v<post>.<author>";
# flask-compress tags a compressed body "<tag>:<coding>" (another representation, RFC 9110
# 8.8.3.3, of the same version).
_OURS = re.compile(r"v(\d{1,18})(?:\.(\d{1,18}))?(?::[a-z]{1,16})?")


def etag(*versions: int) -> str:
    """The strong ETag of a representation made from rows at these versions."""
    return '"v' + ".".join(str(version) for version in versions) + '"'


def not_modified(tag: str) -> Response | None:
    """A 304 where the GET's If-None-Match names the current tag (weak comparison), or the
    tag of a compressed body of it."""
    current = tag.strip('"')
    if_none_match = request.if_none_match
    named = {t.partition(":")[0] for t in if_none_match.as_set(include_weak=True) if t}
    if if_none_match.star_tag or current in named:
        return Response(status=304, headers={"ETag": tag})
    return None


def expected_versions(size: int) -> Versions:
    """The versions of ``size`` rows that If-Match allows; None when any will do (no tag, or
    "*"). Weak and foreign tags never match (strong comparison): they allow none."""
    if not request.headers.get("If-Match", "").strip():
        return None  # absent, or empty (no tag at all): no condition
    if_match = request.if_match
    if if_match.star_tag:
        return None
    allowed: list[tuple[int, ...]] = []
    for tag in if_match.as_set():  # the strong tags only
        # werkzeug yields None for some malformed entries (a lone "W/", say).
        match = _OURS.fullmatch(tag or "")
        if match is not None:
            versions = tuple(int(v) for v in match.groups() if v is not None)
            if len(versions) == size:
                allowed.append(versions)
    return allowed
