"""The response every view and hook of ours answers with (the app's ``response_class``).

werkzeug hands a response's headers to the server through a copy (``get_wsgi_headers``):
a new ``Headers`` with every header added and its value checked again, then a list of it,
so that it can make a relative Location absolute, drop the headers a 1xx, 204 or 304 must
not have, and add a Content-Length it can work out. Most answers need none of that: a body
of bytes already has its Content-Length, and a Location of ours is a plain path, which
``iri_to_uri`` gives back unchanged. Those are sent as they are, the headers listed once;
every other answer takes werkzeug's own path. The copy was ~5% of a cached-key GET's
profiled time (issue #39, docs/explanation/benchmarks.md).
"""

import re
from typing import TYPE_CHECKING

from flask import Response as FlaskResponse

if TYPE_CHECKING:
    from collections.abc import Iterable

    from _typeshed.wsgi import WSGIEnvironment

# A Location that werkzeug's iri_to_uri returns unchanged: a path of "/" and unreserved
# characters (RFC 3986), which urlsplit and quote leave as they are; not "//", a host.
_PLAIN_PATH = re.compile(r"/(?!/)[A-Za-z0-9._~/-]*")
# The statuses whose headers werkzeug changes: 1xx and 204 lose Content-Length, 304 the
# entity headers (RFC 9110).
_FIXED_STATUSES = frozenset((*range(100, 200), 204, 304))


class Response(FlaskResponse):
    """Flask's response; its headers are sent as they are where werkzeug would change
    none of them."""

    def get_wsgi_response(
        self, environ: "WSGIEnvironment"
    ) -> "tuple[Iterable[bytes], str, list[tuple[str, str]]]":
        """werkzeug's, without its copy of the headers when the copy would equal them."""
        if not sent_as_is(self):
            return super().get_wsgi_response(environ)
        return self.get_app_iter(environ), self.status, list(self.headers)


def sent_as_is(response: FlaskResponse) -> bool:
    """Whether werkzeug's ``get_wsgi_headers`` would give back ``response``'s headers as
    they are, in the same order."""
    status = response.status_code
    if status in _FIXED_STATUSES:
        return False  # werkzeug drops Content-Length, or the entity headers
    has_length = has_location = False
    for name, value in response.headers:
        lowered = name.lower()
        if lowered == "content-length":
            has_length = True
        elif lowered == "location":
            # werkzeug sets "Location" to the last one's value, converted: the first keeps
            # its place under that name, any other is dropped.
            if has_location or name != "Location" or not _PLAIN_PATH.fullmatch(value):
                return False
            has_location = True
        elif lowered == "content-location":
            return False
    if has_location and response.autocorrect_location_header:
        return False
    # Without a Content-Length, werkzeug adds one to a body held in memory.
    return has_length or not (response.automatically_set_content_length and response.is_sequence)
