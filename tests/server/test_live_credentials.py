"""One Authorization header, over real HTTP: granian hands the bridge a repeated header
twice, the bridge joins the values with ", " (app/server/bridge.py), and the app refuses
the comma (app/web/auth.py): a request with two credentials is a 400, whichever is valid."""

import httpx
import pytest

from tests.helpers import LiveServer

pytestmark = pytest.mark.live

UNKNOWN = "Bearer umk_000000000000_" + "A" * 43


@pytest.mark.backends("sqlite", reason="the server's headers, whatever the database")
@pytest.mark.parametrize("valid", ["first", "last"])
def test_two_authorization_headers_are_a_400_on_the_live_server(
    live_server: LiveServer, api_token: str, valid: str
) -> None:
    good = f"Bearer {api_token}"
    first, last = (good, UNKNOWN) if valid == "first" else (UNKNOWN, good)

    response = httpx.get(
        f"{live_server.url}/users",
        headers=[("Authorization", first), ("Authorization", last)],
        timeout=10,
    )

    assert response.status_code == 400, response.text
    assert response.headers["Content-Type"] == "application/problem+json"
