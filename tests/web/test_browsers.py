"""CORS for pages on other origins (CORS_ORIGINS), and compression of larger bodies."""

import gzip
import zlib
from collections.abc import Iterator

import brotli
import pytest
from flask import Flask, Response
from flask.testing import FlaskClient
from flask_compress import Compress

from app.web.browsers import EXPOSED_HEADERS, PREFLIGHT_MAX_AGE, compressor
from tests.factories import make_post, make_user
from tests.helpers import app_with, ndjson, user_rows

ALLOWED = "http://app.example:3000"
OTHER = "http://evil.example"


@pytest.fixture(scope="module")
def cors_app(app: Flask) -> Iterator[Flask]:
    """The app with two allowed origins, on the same database."""
    with app_with(app, CORS_ORIGINS=f"{ALLOWED}, http://two.example") as cors:
        yield cors


def test_preflight_from_an_allowed_origin_is_204_with_no_key(cors_app: Flask) -> None:
    response = cors_app.test_client().options(
        "/users/1",
        headers={
            "Origin": ALLOWED,
            "Access-Control-Request-Method": "PATCH",
            "Access-Control-Request-Headers": "Authorization, content-type, if-match, "
            "idempotency-key",
        },
    )

    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED
    allowed = {
        h.strip().lower() for h in response.headers["Access-Control-Allow-Headers"].split(",")
    }
    assert allowed == {"authorization", "content-type", "if-match", "idempotency-key"}
    assert "PATCH" in response.headers["Access-Control-Allow-Methods"]
    assert response.headers["Access-Control-Max-Age"] == str(PREFLIGHT_MAX_AGE)
    assert response.get_data() == b""


def test_cross_origin_response_exposes_our_headers(cors_app: Flask, api_token: str) -> None:
    user = make_user(cors_app)
    client = cors_app.test_client()

    response = client.get(
        f"/users/{user.id}", headers={"Origin": ALLOWED, "Authorization": f"Bearer {api_token}"}
    )

    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED
    exposed = {h.strip() for h in response.headers["Access-Control-Expose-Headers"].split(",")}
    assert exposed == set(EXPOSED_HEADERS)
    assert "Origin" in ",".join(response.headers.getlist("Vary"))  # two origins allowed


def test_a_request_without_a_key_is_still_401_with_cors_on(cors_app: Flask) -> None:
    response = cors_app.test_client().get("/users", headers={"Origin": ALLOWED})

    assert response.status_code == 401
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED  # the page can read why


def test_other_origins_get_no_cors_headers(cors_app: Flask, api_token: str) -> None:
    client = cors_app.test_client()
    preflight = client.options(
        "/users", headers={"Origin": OTHER, "Access-Control-Request-Method": "GET"}
    )
    get = client.get("/users", headers={"Origin": OTHER, "Authorization": f"Bearer {api_token}"})

    for response in (preflight, get):
        assert not [h for h in response.headers if h[0].startswith("Access-Control-")]
    assert get.status_code == 200


def test_cors_is_off_by_default(anonymous_client: FlaskClient, client: FlaskClient) -> None:
    preflight = anonymous_client.options(
        "/users", headers={"Origin": ALLOWED, "Access-Control-Request-Method": "GET"}
    )
    get = client.get("/users", headers={"Origin": ALLOWED})

    for response in (preflight, get):
        assert not [h for h in response.headers if h[0].startswith("Access-Control-")]
    assert preflight.status_code == 401  # no preflight answer: nothing to let a browser in


DECODERS = {"gzip": gzip.decompress, "br": brotli.decompress, "deflate": zlib.decompress}


@pytest.mark.parametrize("coding", sorted(DECODERS))
def test_larger_json_bodies_are_compressed_when_asked(
    app: Flask, client: FlaskClient, coding: str
) -> None:
    for n in range(100):
        make_user(app, username=f"compressed{n:03}")
    for url in ("/openapi.json", "/users?limit=100"):
        plain = client.get(url)

        packed = client.get(url, headers={"Accept-Encoding": coding})

        assert packed.headers["Content-Encoding"] == coding
        assert "Accept-Encoding" in packed.headers["Vary"]
        assert DECODERS[coding](packed.get_data()) == plain.get_data()
        assert len(packed.get_data()) < len(plain.get_data()) / 3


def test_small_bodies_go_out_as_they_are(app: Flask, client: FlaskClient) -> None:
    user = make_user(app)

    response = client.get(f"/users/{user.id}", headers={"Accept-Encoding": "gzip"})

    assert "Content-Encoding" not in response.headers
    assert response.headers.getlist("Vary") == ["Accept-Encoding"]
    assert response.get_json()["id"] == user.id


@pytest.mark.parametrize("vary", [None, "", "Origin", "origin, accept-encoding", "Cookie"])
@pytest.mark.parametrize("accept", [None, "gzip", "br, gzip"])
def test_a_small_body_gets_what_flask_compress_gives_it(
    vary: str | None, accept: str | None
) -> None:
    # The hook answers a body under COMPRESS_MIN_SIZE itself: the same headers and body as
    # flask-compress's own hook.
    ours, theirs = Flask("ours"), Flask("theirs")
    hook = compressor(ours)
    reference = Compress(theirs)  # configured like ours, then its own hook
    theirs.config.update(ours.config)

    def small() -> Response:
        response = Response(b'{"id": 1}', content_type="application/json")
        if vary is not None:
            response.headers["Vary"] = vary
        if vary == "Cookie":
            response.headers.add("Vary", "Origin")  # two: flask-compress reads the first
        return response

    headers = {"Accept-Encoding": accept} if accept is not None else {}
    with ours.test_request_context(headers=headers):
        answer = hook(small())
    with theirs.test_request_context(headers=headers):
        expected = reference.after_request(small())
    assert answer.headers.to_wsgi_list() == expected.headers.to_wsgi_list()
    assert answer.get_data() == expected.get_data()


def test_a_streamed_export_is_compressed(client: FlaskClient) -> None:
    body = ndjson(user_rows(500))
    imported = client.post("/users/import", data=body, content_type="application/x-ndjson")
    assert imported.status_code == 200
    plain = client.get("/users/export", headers={"Accept": "application/x-ndjson"})

    packed = client.get(
        "/users/export", headers={"Accept": "application/x-ndjson", "Accept-Encoding": "br"}
    )

    assert packed.headers["Content-Encoding"] == "br"
    assert brotli.decompress(packed.get_data()) == plain.get_data()


def test_a_compressed_bodys_etag_still_works_for_conditions(
    app: Flask, client: FlaskClient
) -> None:
    post = make_post(app, make_user(app), body="long " * 1000)
    url = f"/posts/{post.id}"

    packed = client.get(url, headers={"Accept-Encoding": "gzip"})
    tag = packed.headers["ETag"]

    assert packed.headers["Content-Encoding"] == "gzip"
    assert tag.endswith(':gzip"')
    assert client.get(url, headers={"If-None-Match": tag}).status_code == 304
    changed = client.patch(url, json={"title": "t"}, headers={"If-Match": tag})
    assert changed.status_code == 200
    assert client.patch(url, json={"title": "u"}, headers={"If-Match": tag}).status_code == 412


def test_a_streamed_export_is_gzipped_for_a_client_that_takes_gzip_alone(
    client: FlaskClient,
) -> None:
    body = ndjson(user_rows(500))
    imported = client.post("/users/import", data=body, content_type="application/x-ndjson")
    assert imported.status_code == 200
    for mimetype in ("application/x-ndjson", "text/csv"):
        plain = client.get("/users/export", headers={"Accept": mimetype})

        packed = client.get(
            "/users/export", headers={"Accept": mimetype, "Accept-Encoding": "gzip"}
        )

        assert "Content-Encoding" not in plain.headers
        assert packed.headers["Content-Encoding"] == "gzip"
        assert "Accept-Encoding" in packed.headers["Vary"]
        assert gzip.decompress(packed.get_data()) == plain.get_data()
        assert len(packed.get_data()) < len(plain.get_data()) / 3


@pytest.mark.parametrize(
    ("offered", "chosen"),
    [
        ("gzip, deflate", "deflate"),
        ("br, gzip", "br"),
        ("zstd, gzip", "zstd"),
        ("gzip;q=1, br;q=0.5", "gzip"),
    ],
)
def test_a_streamed_export_keeps_the_preferred_coding(
    client: FlaskClient, offered: str, chosen: str
) -> None:
    client.post("/users/import", data=ndjson(user_rows(100)), content_type="application/x-ndjson")

    packed = client.get("/users/export", headers={"Accept-Encoding": offered})

    assert packed.headers["Content-Encoding"] == chosen


def test_a_compressed_read_allowed_by_if_match_is_served(app: Flask, client: FlaskClient) -> None:
    post = make_post(app, make_user(app), body="long " * 1000)
    url = f"/posts/{post.id}"
    tag = client.get(url).headers["ETag"]
    headers = {"Accept-Encoding": "gzip"}

    # The view allows it (If-Match names the version); the compressed body's tag is another
    # spelling of it, not a reason to refuse the read.
    allowed = client.get(url, headers={**headers, "If-Match": tag})
    coded = client.get(url, headers={**headers, "If-Match": f'{tag[:-1]}:gzip"'})
    stale = client.get(url, headers={**headers, "If-Match": '"v999.999"'})

    assert (allowed.status_code, allowed.headers["Content-Encoding"]) == (200, "gzip")
    assert gzip.decompress(allowed.get_data()) == client.get(url).get_data()
    assert coded.status_code == 200
    assert stale.status_code == 412
