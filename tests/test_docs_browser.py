"""Swagger UI at /docs in a real browser, with every host but loopback unreachable; and a
page on another origin calling the API (CORS).

Debian's ``chromium`` runs headless as a subprocess: ``--dump-dom`` after a virtual-time
budget gives the DOM that Swagger UI rendered, ``--screenshot`` a picture of it, and
``--log-net-log`` every request the browser made. Every host name but 127.0.0.1 resolves to
nothing and every request not for 127.0.0.1 goes to a proxy on a loopback port that refuses
connections, so no outside host can be reached. The operations only render once the Swagger UI
bundle has run, and a control page shows they do not when that bundle must come from outside.

Without /usr/bin/chromium the tests skip, except under CI=true where they fail.
"""

import functools
import http.server
import itertools
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from flask import Flask
from websockets.sync.client import ClientConnection, connect

from tests.factories import make_user, set_password
from tests.helpers import IN_CI, LiveServer, serving

# One backend is enough: the page and the document do not depend on the database.
pytestmark = [pytest.mark.live, pytest.mark.parametrize("backend", ["sqlite"], indirect=True)]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_TIMEOUT = 60  # real seconds; the page itself gets a budget of virtual time
VIRTUAL_TIME_BUDGET_MS = 10_000
WINDOW_SIZE = "1280,2400"
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
LOOPBACK = "127.0.0.1"
OUTSIDE_BUNDLE = "https://unpkg.com/swagger-ui-dist@5/swagger-ui-bundle.js"
ERR_PROXY_CONNECTION_FAILED = -130  # Chromium's net error: the dead proxy refused it
SWAGGER_PASSWORD = "correct horse battery staple"

Operation = tuple[str, str, str]  # (element id, method, path)


@dataclass(frozen=True)
class Request:
    """One URL request from Chromium's net log."""

    url: str
    initiator: str | None
    status: int | None
    net_error: int | None

    @property
    def outside(self) -> bool:
        """Whether it was for a host other than loopback."""
        parts = urlsplit(self.url)
        return parts.scheme in {"http", "https", "ws", "wss"} and parts.hostname != LOOPBACK


@dataclass(frozen=True)
class Browsed:
    """What headless Chromium saw of one page."""

    dom: str
    requests: list[Request]
    stderr: str

    def describe(self) -> str:
        """Requests and the end of Chromium's stderr, for assertion messages."""
        lines = [f"{r.status} {r.net_error} {r.initiator} {r.url[:120]}" for r in self.requests]
        return "requests:\n" + "\n".join(lines) + "\n--- chromium stderr ---\n" + self.stderr


@dataclass(frozen=True)
class Browser:
    """Headless Chromium for which every host but loopback is unreachable."""

    chromium: Path
    refusing_port: int  # bound on loopback, never listening: connections are refused

    def flags(self, workdir: Path) -> list[str]:
        """Headless, a fresh profile under workdir, and no outside host reachable."""
        return [
            str(self.chromium),
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync",
            f"--user-data-dir={workdir / 'profile'}",
            # Outside hosts: no name resolves, and all but loopback goes to a dead proxy.
            f"--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE {LOOPBACK}",
            f"--proxy-server=http://{LOOPBACK}:{self.refusing_port}",
            f"--proxy-bypass-list={LOOPBACK}",
        ]  # fmt: skip

    def browse(self, url: str, workdir: Path, screenshot: Path | None = None) -> Browsed:
        """Load url in a fresh profile under workdir; return its DOM and its requests."""
        workdir.mkdir()
        net_log = workdir / "net-log.json"
        command = [
            *self.flags(workdir),
            f"--log-net-log={net_log}",
            f"--virtual-time-budget={VIRTUAL_TIME_BUDGET_MS}",
            f"--window-size={WINDOW_SIZE}", "--hide-scrollbars",
            *([f"--screenshot={screenshot}"] if screenshot else []),
            "--dump-dom",
            url,
        ]  # fmt: skip
        try:
            result = subprocess.run(
                command, capture_output=True, text=True, timeout=CHROMIUM_TIMEOUT, check=False
            )
        except subprocess.TimeoutExpired as exc:
            pytest.fail(f"chromium did not finish {url} in {CHROMIUM_TIMEOUT}s: {exc.stderr!r}")
        stderr = result.stderr[-5_000:]
        assert result.returncode == 0, f"chromium exited {result.returncode}:\n{stderr}"
        (workdir / "dom.html").write_text(result.stdout)
        return Browsed(result.stdout, _net_log_requests(net_log), stderr)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's chromium; skipped when missing, except under CI=true where that fails."""
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        reason = f"{CHROMIUM} not found: install Debian's chromium (apt-get install chromium)"
        if IN_CI:
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        yield Browser(CHROMIUM, sock.getsockname()[1])


@pytest.fixture(scope="module")
def document(live_server: LiveServer) -> dict[str, Any]:
    """The OpenAPI document as the live server serves it."""
    response = httpx.get(f"{live_server.url}/openapi.json", timeout=30)
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def _documented_operations(document: dict[str, Any]) -> list[Operation]:
    # Swagger UI renders an operation once per tag ("default" when untagged), in an element
    # whose id is "operations-<tag>-<operationId>" (whitespace as "_").
    operations = []
    # The webhooks section's entries too, each under its name.
    for path, item in (document["paths"] | document.get("webhooks", {})).items():
        for method in HTTP_METHODS:
            if method not in item:
                continue
            operation_id = item[method].get("operationId")
            assert operation_id, f"{method.upper()} {path} has no operationId"
            for tag in item[method].get("tags") or ["default"]:
                element_id = re.sub(r"\s", "_", f"operations-{tag}-{operation_id}")
                operations.append((element_id, method, path))
    return sorted(operations)


class _SwaggerDom(HTMLParser):
    """The operations (and error panels) in a DOM that Swagger UI rendered."""

    def __init__(self) -> None:
        super().__init__()
        self.operations: list[list[str]] = []
        self.errors = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        classes = (attributes.get("class") or "").split()
        if "opblock" in classes:
            methods = [c.removeprefix("opblock-") for c in classes if c != "opblock"]
            method = next((m for m in methods if m in HTTP_METHODS), "?")
            self.operations.append([attributes.get("id") or "", method, ""])
        elif "opblock-summary-path" in classes and self.operations:
            self.operations[-1][2] = attributes.get("data-path") or ""
        if "errors-wrapper" in classes:
            self.errors += 1


def _rendered(dom: str) -> tuple[list[Operation], int]:
    parser = _SwaggerDom()
    parser.feed(dom)
    parser.close()
    return sorted((i, m, p) for i, m, p in parser.operations), parser.errors


def _net_log_requests(path: Path) -> list[Request]:
    log = json.loads(path.read_text())
    types = {number: name for name, number in log["constants"]["logEventTypes"].items()}
    starts: dict[int, dict[str, Any]] = {}
    statuses: dict[int, int] = {}
    errors: dict[int, int] = {}
    for event in log["events"]:
        source = event["source"]["id"]
        params = event.get("params") or {}
        kind = types.get(event["type"])
        if kind == "URL_REQUEST_START_JOB" and "url" in params:
            starts.setdefault(source, params)
        elif kind == "HTTP_TRANSACTION_READ_RESPONSE_HEADERS" and params.get("headers"):
            statuses[source] = int(params["headers"][0].split()[1])
        if isinstance(params.get("net_error"), int) and params["net_error"] < 0:
            errors[source] = params["net_error"]
    return [
        Request(p["url"], p.get("initiator"), statuses.get(s), errors.get(s))
        for s, p in starts.items()
    ]


def _assert_outside_unreached(browsed: Browsed) -> None:
    reached = [r for r in browsed.requests if r.outside and r.net_error is None]
    assert not reached, f"an outside host answered: {reached}\n{browsed.describe()}"


def test_docs_page_lists_every_operation_with_outside_hosts_unreachable(
    browser: Browser,
    live_server: LiveServer,
    document: dict[str, Any],
    tmp_path: Path,
    record_property: Any,
) -> None:
    expected = _documented_operations(document)
    assert expected, "the document has no operations"
    screenshot = tmp_path / "docs.png"

    browsed = browser.browse(f"{live_server.url}/docs", tmp_path / "docs", screenshot)

    # Visible with `pytest -s`, and in the PASSES section of `pytest -rA` (or -rP).
    sys.stdout.write(f"\nscreenshot of {live_server.url}/docs: {screenshot}\n")
    record_property("screenshot", str(screenshot))
    assert screenshot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n"), "no PNG screenshot"

    rendered, errors = _rendered(browsed.dom)
    context = f"screenshot: {screenshot}\n{browsed.describe()}\n--- server log ---\n"
    assert rendered == expected, context + live_server.log()
    assert errors == 0, "Swagger UI shows errors\n" + context

    # The page loaded its script and the document from us, and asked nothing of anyone else.
    page = [r for r in browsed.requests if r.initiator == live_server.url]
    fetched = {urlsplit(r.url).path: r.status for r in page}
    assert fetched.get("/docs/static/js/swagger-ui-bundle.js") == 200, context
    assert fetched.get("/openapi.json") == 200, context
    assert all(r.url.startswith(f"{live_server.url}/") for r in page), context
    # Chromium's own calls to Google (accounts, autofill, updates) must have failed too.
    _assert_outside_unreached(browsed)


@pytest.mark.parametrize("bundle_host", ["loopback", "outside"])
def test_operations_render_only_when_the_swagger_ui_bundle_loads(
    browser: Browser,
    live_server: LiveServer,
    document: dict[str, Any],
    tmp_path: Path,
    bundle_host: str,
) -> None:
    # The same document and the same check as above, on a page whose Swagger UI bundle comes
    # from us or from a CDN: if the page needed an outside host, the check above would fail.
    bundle = (
        f"{live_server.url}/docs/static/js/swagger-ui-bundle.js"
        if bundle_host == "loopback"
        else OUTSIDE_BUNDLE
    )
    spec = json.dumps(document).replace("</", "<\\/")
    page = tmp_path / "control.html"
    page.write_text(
        '<!doctype html><html lang="en"><head><meta charset="utf-8"></head><body>\n'
        '<div id="swagger-ui"></div>\n'
        f'<script src="{bundle}"></script>\n'
        '<script>if (typeof SwaggerUIBundle === "function") '
        f'SwaggerUIBundle({{spec: {spec}, dom_id: "#swagger-ui", validatorUrl: null}});</script>\n'
        "</body></html>\n"
    )

    browsed = browser.browse(page.as_uri(), tmp_path / "browser")

    rendered, _ = _rendered(browsed.dom)
    bundle_requests = [r for r in browsed.requests if r.url == bundle]
    assert bundle_requests, f"the bundle was never requested\n{browsed.describe()}"
    if bundle_host == "loopback":
        assert rendered == _documented_operations(document), browsed.describe()
        assert bundle_requests[0].status == 200, browsed.describe()
    else:
        assert rendered == [], browsed.describe()
        # Blocked by the dead proxy, whether or not this machine can reach the CDN itself.
        assert bundle_requests[0].net_error == ERR_PROXY_CONNECTION_FAILED, browsed.describe()
    _assert_outside_unreached(browsed)


_FETCH_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"></head><body>
<pre id="out">pending</pre>
<script>
// Authorization and If-None-Match are not CORS-safelisted: the browser preflights first.
const headers = {{"Authorization": "Bearer {key}", "If-None-Match": '"v0"'}};
fetch("{api}/users?limit=5", {{headers}})
  .then(async (r) => {{
    const seen = [r.status, r.headers.get("X-Request-ID") ? "request-id" : "no-request-id"];
    document.getElementById("out").textContent = seen.join(" ") + " " + (await r.text());
  }})
  .catch((e) => {{ document.getElementById("out").textContent = "failed: " + e; }});
</script></body></html>
"""


class _Pages(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""


@contextmanager
def _page_server(folder: Path) -> Iterator[str]:
    """Serve ``folder`` on a free loopback port (a page's origin); yield its base URL."""
    handler = functools.partial(_Pages, directory=str(folder))
    with http.server.ThreadingHTTPServer((LOOPBACK, 0), handler) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://{LOOPBACK}:{server.server_address[1]}"
        finally:
            server.shutdown()
            thread.join(timeout=5)


@dataclass(frozen=True)
class CorsSite:
    """The API allowing one page origin, and pages served from it and from another."""

    api: LiveServer
    allowed: str
    other: str
    pages: Path


@pytest.fixture
def cors_site(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CorsSite]:
    """The shipped server with CORS_ORIGINS naming one of two loopback page servers."""
    pages = tmp_path_factory.mktemp("pages")
    with (
        _page_server(pages) as allowed,
        _page_server(pages) as other,
        serving(database_url, tmp_path_factory, CORS_ORIGINS=allowed) as api,
    ):
        yield CorsSite(api, allowed, other, pages)


def _shown(browsed: Browsed) -> str:
    out = re.search(r'<pre id="out">(.*?)</pre>', browsed.dom, re.DOTALL)
    assert out, browsed.describe()
    return out.group(1)


def test_a_page_on_an_allowed_origin_calls_the_api_with_a_key(
    browser: Browser, app: Flask, api_token: str, cors_site: CorsSite, tmp_path: Path
) -> None:
    make_user(app, username="cors-visible")
    page = _FETCH_PAGE.format(api=cors_site.api.url, key=api_token)
    (cors_site.pages / "fetch.html").write_text(page)

    let_in = browser.browse(f"{cors_site.allowed}/fetch.html", tmp_path / "allowed")
    kept_out = browser.browse(f"{cors_site.other}/fetch.html", tmp_path / "other")

    shown = _shown(let_in)
    assert shown.startswith("200 request-id "), (
        f"{shown}\n{let_in.describe()}\n{cors_site.api.log()}"
    )
    assert "cors-visible" in shown
    # The other origin's page gets no CORS headers: the browser refuses it the answer.
    assert _shown(kept_out).startswith("failed: TypeError"), kept_out.describe()


class Page:
    """One tab of headless Chromium, driven over the DevTools protocol as a user would:
    clicks on what Swagger UI rendered, text typed as keystrokes would type it."""

    def __init__(self, socket: ClientConnection) -> None:
        self._socket = socket
        self._numbers = itertools.count(1)

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        """Call a DevTools method and return its result (events in between are dropped)."""
        number = next(self._numbers)
        self._socket.send(json.dumps({"id": number, "method": method, "params": params}))
        while True:
            message = json.loads(self._socket.recv(timeout=CHROMIUM_TIMEOUT))
            if message.get("id") == number:
                assert "error" not in message, f"{method}: {message['error']}"
                result: dict[str, Any] = message.get("result", {})
                return result

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page."""
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        assert "exceptionDetails" not in result, f"{expression}: {result['exceptionDetails']}"
        return result["result"].get("value")

    def wait_for(self, expression: str, what: str) -> Any:
        """Poll until the expression is truthy; return its value."""
        deadline = time.monotonic() + CHROMIUM_TIMEOUT
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.1)
        pytest.fail(f"Swagger UI never showed {what}")

    def text(self, selector: str) -> str:
        """The text of the first element the selector matches, once there is one."""
        found = f"document.querySelector({json.dumps(selector)})"
        return str(self.wait_for(f"{found} && {found}.textContent", selector))

    def click(self, selector: str) -> None:
        """Click the first element the selector matches, once there is one."""
        found = f"document.querySelector({json.dumps(selector)})"
        self.wait_for(f"!!{found}", selector)
        self.evaluate(f"{found}.click()")

    def type_into(self, selector: str, text: str) -> None:
        """Replace the field's text as typing would (React ignores a value set by script)."""
        found = f"document.querySelector({json.dumps(selector)})"
        self.wait_for(f"!!{found}", selector)
        self.evaluate(f"{found}.focus(), {found}.select()")
        self.send("Input.insertText", text=text)


@contextmanager
def _driven(browser: Browser, workdir: Path) -> Iterator[Page]:
    """A Chromium with a DevTools port (none reachable but loopback); yield its one tab."""
    workdir.mkdir()
    command = [*browser.flags(workdir), "--remote-debugging-port=0", "about:blank"]
    with (workdir / "chromium.log").open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        port_file = workdir / "profile" / "DevToolsActivePort"
        deadline = time.monotonic() + CHROMIUM_TIMEOUT
        while not (port_file.is_file() and port_file.read_text().strip()):
            assert process.poll() is None, (workdir / "chromium.log").read_text()
            assert time.monotonic() < deadline, "chromium opened no DevTools port"
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        targets = httpx.get(f"http://{LOOPBACK}:{port}/json/list", timeout=30).json()
        tab = next(t for t in targets if t["type"] == "page")
        with connect(tab["webSocketDebuggerUrl"], max_size=None) as socket:
            yield Page(socket)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass(frozen=True)
class Executed:
    """What Swagger UI showed of one "Try it out": the status, the body, the curl line."""

    status: str
    body: str
    curl: str


def _execute(page: Page, operation: str, body: str | None = None) -> Executed:
    """Open the operation, try it out (with the body typed in), execute, read the answer."""
    block = f"#{operation}"
    if not page.evaluate(f"!!document.querySelector('{block}.is-open')"):
        page.click(f"{block} .opblock-summary-control")
    # Its body renders after the click: wait for the button, then press it unless pressed.
    page.wait_for(f"!!document.querySelector('{block} .try-out__btn')", "Try it out")
    if page.evaluate(f"!!document.querySelector('{block} .try-out__btn:not(.cancel)')"):
        page.click(f"{block} .try-out__btn")
    if page.evaluate(f"!!document.querySelector('{block} .btn-clear')"):
        page.click(f"{block} .btn-clear")
        page.wait_for(f"!document.querySelector('{block} .live-responses-table')", "no answer")
    if body is not None:
        page.type_into(f"{block} textarea.body-param__text", body)
    page.click(f"{block} .execute")
    status = page.text(f"{block} .live-responses-table tbody .response-col_status")
    answer = page.text(f"{block} .live-responses-table .response-col_description pre")
    return Executed(status.strip(), answer, page.text(f"{block} .curl-command"))


def test_swagger_ui_signs_in_and_calls_me_with_the_access_token(
    browser: Browser, app: Flask, live_server: LiveServer, tmp_path: Path
) -> None:
    user = make_user(app, username="swagger-ann", email="swagger-ann@example.com")
    set_password(app, user.id, SWAGGER_PASSWORD)

    with _driven(browser, tmp_path / "driven") as page:
        page.send("Page.navigate", url=f"{live_server.url}/docs")
        page.wait_for("!!document.querySelector('#operations-me-getMe')", "the operations")
        anonymous = _execute(page, "operations-me-getMe")
        sign_in = json.dumps({"username": "swagger-ann", "password": SWAGGER_PASSWORD})
        signed_in = _execute(page, "operations-auth-createSession", sign_in)
        found = re.search(r'"access_token":\s*"(uma_[A-Za-z0-9_-]+)"', signed_in.body)
        assert signed_in.status == "201", signed_in
        assert found, signed_in.body
        token = found.group(1)

        # Authorize: the bearer scheme's one field takes the access token as it came.
        page.click(".auth-wrapper .authorize")
        page.type_into(".modal-ux input[type=text]", token)
        page.click(".modal-ux .auth-btn-wrapper .authorize")
        page.click(".modal-ux .auth-btn-wrapper .btn-done")
        me = _execute(page, "operations-me-getMe")

    assert anonymous.status == "401", anonymous
    assert me.status == "200", f"{me}\n{live_server.log()}"
    assert json.loads(me.body)["username"] == "swagger-ann"
    assert f"Authorization: Bearer {token}" in me.curl
