"""The app's response class sends the status, headers and body werkzeug's own would."""

from typing import Any

import pytest
from flask import Flask, redirect, request
from flask import Response as FlaskResponse
from hypothesis import example, given, settings
from hypothesis import strategies as st
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Response as WerkzeugResponse

from app.web.responses import Response, sent_as_is
from tests.factories import make_post, make_user
from tests.helpers import ndjson, user_rows


def _sent(response: WerkzeugResponse, environ: dict[str, Any]) -> tuple[str, list[Any], bytes]:
    # What a WSGI server is handed: the status line, the header list, the whole body.
    app_iter, status, headers = response.get_wsgi_response(environ)
    try:
        body = b"".join(app_iter)
    finally:
        close = getattr(app_iter, "close", None)
        if close is not None:
            close()
    return status, headers, body


NAMES = [
    "Content-Type",
    "Content-Length",
    "content-length",
    "Location",
    "location",
    "LOCATION",
    "Content-Location",
    "ETag",
    "Vary",
    "X-Request-ID",
    "Content-Encoding",
    "Expires",
    "Last-Modified",
]
LOCATIONS = st.sampled_from(
    ["/users/1", "/users/1?x=1", "/a?", "/a#", "//host/p", "/p%41", "/ü", "/a b", "users/1"]
) | st.text(alphabet="/azAZ09._~-%?#:@ü ", max_size=12)
VALUES = st.text(alphabet=st.characters(exclude_categories=["Cs", "Cc"]), max_size=10)


@st.composite
def responses(draw: st.DrawFn) -> dict[str, Any]:
    """A response's makings: status, headers (some repeated, in any case), body, options."""
    headers = []
    for name in draw(st.lists(st.sampled_from(NAMES), max_size=6)):
        value = draw(LOCATIONS if "location" in name.lower() else VALUES)
        if name.lower() == "content-length":
            value = str(draw(st.integers(0, 40)))
        headers.append((name, value))
    return {
        "status": draw(st.sampled_from([100, 101, 200, 201, 202, 204, 206, 301, 304, 404, 500])),
        "headers": headers,
        "body": draw(st.sampled_from(["bytes", "empty", "stream"])),
        "head": draw(st.booleans()),
        "autocorrect": draw(st.booleans()),
        "auto_length": draw(st.booleans()),
        "drop_length": draw(st.booleans()),
    }


def _make(cls: type[FlaskResponse], spec: dict[str, Any]) -> FlaskResponse:
    body: Any = {
        "bytes": b'{"id": 1}',
        "empty": b"",
        "stream": iter([b"a", b"bc"]),
    }[spec["body"]]
    response = cls(body, status=spec["status"], content_type="application/json")
    response.autocorrect_location_header = spec["autocorrect"]
    response.automatically_set_content_length = spec["auto_length"]
    if spec["drop_length"]:
        del response.headers["Content-Length"]
    for name, value in spec["headers"]:
        response.headers.add(name, value)
    return response


PLAIN = {"status": 201, "body": "bytes", "head": False, "autocorrect": False}
PLAIN |= {"auto_length": True, "drop_length": False}


@settings(max_examples=600, deadline=None)
@given(responses())
@example({**PLAIN, "headers": [("location", "/users/1")]})  # werkzeug names it Location
@example({**PLAIN, "headers": [], "drop_length": True})  # werkzeug counts the body
@example({**PLAIN, "headers": [("Location", "/a"), ("Location", "/b")]})  # keeps one
def test_any_response_is_sent_as_werkzeug_sends_it(spec: dict[str, Any]) -> None:
    method = "HEAD" if spec["head"] else "GET"
    environ = EnvironBuilder("/users/1", method=method).get_environ()

    ours = _sent(_make(Response, spec), environ)

    assert ours == _sent(_make(FlaskResponse, spec), environ)


@pytest.mark.parametrize(
    "location", ["/users/1", "/users/1?next=/", "https://example.com/ü", "//cdn.example/x"]
)
@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
def test_a_redirect_is_sent_as_werkzeug_sends_it(location: str, code: int) -> None:
    environ = EnvironBuilder("/old").get_environ()

    ours = _sent(redirect(location, code, Response), environ)

    assert ours == _sent(redirect(location, code, FlaskResponse), environ)


@pytest.fixture
def cases(app: Flask, api_token: str) -> dict[str, dict[str, Any]]:
    """Requests the API answers in every way werkzeug fixes or leaves: by name."""
    user = make_user(app)
    post = make_post(app, user, body="long " * 1000)
    for n in range(30):
        make_user(app, username=f"listed{n:03}")
    key = {"Authorization": f"Bearer {api_token}"}
    client = app.test_client()
    rows = ndjson(user_rows(50))
    imported = client.post(
        "/users/import", data=rows, content_type="application/x-ndjson", headers=key
    )
    assert imported.status_code == 200
    tag = client.get(f"/users/{user.id}", headers=key).headers["ETag"]
    return {
        "get": {"path": f"/users/{user.id}", "headers": key},
        "head": {"path": f"/users/{user.id}", "method": "HEAD", "headers": key},
        "not modified": {"path": f"/users/{user.id}", "headers": {**key, "If-None-Match": tag}},
        "list": {"path": "/users?limit=100", "headers": key},
        "compressed list": {
            "path": "/users?limit=100",
            "headers": {**key, "Accept-Encoding": "gzip"},
        },
        "compressed post": {
            "path": f"/posts/{post.id}",
            "headers": {**key, "Accept-Encoding": "br"},
        },
        "created": {
            "path": "/users",
            "method": "POST",
            "json": {"username": "created", "email": "created@example.com"},
            "headers": key,
        },
        "deleted": {"path": f"/users/{user.id}", "method": "DELETE", "headers": key},
        "streamed": {
            "path": "/users/export",
            "headers": {**key, "Accept": "application/x-ndjson"},
        },
        "streamed and compressed": {
            "path": "/users/export",
            "headers": {**key, "Accept": "text/csv", "Accept-Encoding": "gzip"},
        },
        "no key": {"path": f"/users/{user.id}"},
        "not found": {"path": "/users/999999999", "headers": key},
        "metrics": {"path": "/metrics", "headers": key},
    }


# Which of them skip werkzeug's copy (the plain answers), and which need it.
AS_IS = {"get", "head", "list", "compressed list", "compressed post", "created", "no key"}
AS_IS |= {"not found", "metrics", "streamed", "streamed and compressed"}  # no length to add
FIXED = {"not modified", "deleted"}


def test_the_apis_answers_are_sent_as_werkzeug_sends_them(
    app: Flask, cases: dict[str, dict[str, Any]]
) -> None:
    assert set(cases) == AS_IS | FIXED
    for name, spec in cases.items():
        with app.test_request_context(**spec):
            response = app.full_dispatch_request()
            # werkzeug's status and headers, as its get_wsgi_response gives them (without
            # its body iterator, whose close would end a streamed body).
            theirs = response.status, response.get_wsgi_headers(request.environ).to_wsgi_list()

            ours = _sent(response, request.environ)

        assert type(response) is Response, name  # the app's response class
        assert sent_as_is(response) is (name in AS_IS), name
        assert ours[:2] == theirs, name
