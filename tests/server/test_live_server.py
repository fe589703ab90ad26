"""The contract over real HTTP: the tutorial and a race on the shipped server; `flask run`.

These tests talk to real server processes on loopback: the shipped server from ``live_server``
fixture (once per backend) and, for the embedded default, ``flask --app app run``.
"""

import itertools
import os
import re
import resource
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.telemetry.request_ids import REQUEST_ID_HEADER
from tests.helpers import (
    LiveServer,
    embedded_env,
    free_port,
    project_copy,
    stop,
    wait_until_serving,
)

pytestmark = pytest.mark.live

TIMEOUT = httpx.Timeout(30.0)
USER_KEYS = {"id", "username", "email", "active", "created_at", "updated_at"}
PROBLEM_KEYS = {"type", "title", "status", "detail"}
SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
RACERS = 20
LOCAL_KEY = re.compile(r"umk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}")


def _parse_time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    assert parsed.utcoffset() == timedelta(0), value
    return parsed


def _assert_user(body: Any, *, username: str, email: str) -> None:
    assert isinstance(body, dict)
    assert body.keys() == USER_KEYS
    assert isinstance(body["id"], int)
    assert body["id"] >= 1
    assert body["username"] == username
    assert body["email"] == email
    _parse_time(body["created_at"])
    _parse_time(body["updated_at"])


def test_tutorial_session_replays_on_live_server(
    live_server: LiveServer, auth_headers: dict[str, str]
) -> None:
    responses: list[httpx.Response] = []
    with httpx.Client(base_url=live_server.url, headers=auth_headers, timeout=TIMEOUT) as client:
        created = client.post(
            "/users", json={"username": "davidchen", "email": "david@example.com"}
        )
        responses.append(created)
        assert created.status_code == 201, created.text
        assert created.headers["Content-Type"] == "application/json"
        user = created.json()
        _assert_user(user, username="davidchen", email="david@example.com")
        assert created.headers["Location"] == f"/users/{user['id']}"
        assert _parse_time(user["created_at"]) == _parse_time(user["updated_at"])

        listed = client.get("/users")
        responses.append(listed)
        assert listed.status_code == 200, listed.text
        assert listed.json() == {"items": [user], "next_cursor": None}

        fetched = client.get(f"/users/{user['id']}")
        responses.append(fetched)
        assert fetched.status_code == 200, fetched.text
        assert fetched.json() == user

        updated = client.put(
            f"/users/{user['id']}", json={"email": "david.chen.updated@example.com"}
        )
        responses.append(updated)
        assert updated.status_code == 200, updated.text
        changed = updated.json()
        _assert_user(changed, username="davidchen", email="david.chen.updated@example.com")
        assert changed["id"] == user["id"]
        assert changed["created_at"] == user["created_at"]
        assert _parse_time(changed["updated_at"]) > _parse_time(changed["created_at"])

        deleted = client.delete(f"/users/{user['id']}")
        responses.append(deleted)
        assert deleted.status_code == 204, deleted.text
        assert deleted.content == b""

        gone = client.get(f"/users/{user['id']}")

    assert [r.status_code for r in responses] == [201, 200, 200, 200, 204]
    assert gone.status_code == 404
    assert gone.headers["Content-Type"] == "application/problem+json"
    request_ids = [r.headers.get(REQUEST_ID_HEADER) for r in [*responses, gone]]
    for request_id in request_ids:
        assert request_id is not None
        assert SANE_REQUEST_ID.fullmatch(request_id), request_id
    assert len(set(request_ids)) == len(request_ids)


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/healthz", 200),
        ("GET", "/users", 200),
        ("GET", "/users/999999", 404),
        ("DELETE", "/users/999999", 404),
        ("POST", "/nowhere", 404),
    ],
)
def test_request_id_sent_by_client_is_echoed_by_live_server(
    live_server: LiveServer, auth_headers: dict[str, str], method: str, path: str, status: int
) -> None:
    sent = f"client-{uuid.uuid4().hex}:1.a_b"
    with httpx.Client(base_url=live_server.url, headers=auth_headers, timeout=TIMEOUT) as client:
        response = client.request(method, path, headers={REQUEST_ID_HEADER: sent})
    assert response.status_code == status, response.text
    assert response.headers[REQUEST_ID_HEADER] == sent


def test_request_without_key_is_401_with_request_id_on_live_server(live_server: LiveServer) -> None:
    with httpx.Client(base_url=live_server.url, timeout=TIMEOUT) as client:
        response = client.get("/users", headers={REQUEST_ID_HEADER: "anonymous-1"})
    assert response.status_code == 401, response.text
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.headers[REQUEST_ID_HEADER] == "anonymous-1"


@pytest.mark.parametrize("sent", ["a b", "-leading", "x" * 200, "<script>"])
def test_insane_request_id_is_replaced_by_live_server(live_server: LiveServer, sent: str) -> None:
    with httpx.Client(base_url=live_server.url, timeout=TIMEOUT) as client:
        response = client.get("/healthz", headers={REQUEST_ID_HEADER: sent})
    assert response.status_code == 200
    assert response.headers[REQUEST_ID_HEADER] != sent
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers[REQUEST_ID_HEADER])


def _case_variants(word: str, count: int) -> list[str]:
    every = ("".join(chars) for chars in itertools.product(*((c, c.upper()) for c in word)))
    ordered = list(dict.fromkeys([word, word.upper(), word.capitalize(), *every]))
    assert len(ordered) >= count
    return ordered[:count]


def _post_at_barrier(
    base_url: str,
    headers: dict[str, str],
    barrier: threading.Barrier,
    username: str,
    email: str,
) -> httpx.Response:
    with httpx.Client(base_url=base_url, headers=headers, timeout=TIMEOUT) as client:
        # Open the connection first, so the POSTs leave together when the barrier lifts.
        client.get("/healthz").raise_for_status()
        barrier.wait(timeout=30)
        return client.post("/users", json={"username": username, "email": email})


@pytest.mark.parametrize(
    "word",
    [
        "racer",
        pytest.param(
            "émile",
            marks=pytest.mark.backends(
                "postgresql", "mysql", reason="SQLite's lower() folds ASCII letters only"
            ),
        ),
    ],
)
def test_concurrent_posts_of_one_username_in_any_case_create_one_user(
    live_server: LiveServer, auth_headers: dict[str, str], word: str
) -> None:
    usernames = _case_variants(word, RACERS)
    barrier = threading.Barrier(RACERS)
    with ThreadPoolExecutor(max_workers=RACERS) as pool:
        futures = [
            pool.submit(
                _post_at_barrier,
                live_server.url,
                auth_headers,
                barrier,
                name,
                f"racer{i}@example.com",
            )
            for i, name in enumerate(usernames)
        ]
        responses = [future.result(timeout=60) for future in futures]

    statuses = [r.status_code for r in responses]
    failures = [f"{r.status_code} {r.text}" for r in responses if r.status_code >= 500]
    assert not failures, f"{failures}\n--- server log ---\n{live_server.log()}"
    assert Counter(statuses) == {201: 1, 409: RACERS - 1}, (
        f"{Counter(statuses)}\n--- server log ---\n{live_server.log()}"
    )

    (winner,) = [r for r in responses if r.status_code == 201]
    winner_index = responses.index(winner)
    user = winner.json()
    _assert_user(user, username=usernames[winner_index], email=f"racer{winner_index}@example.com")
    for response in responses:
        if response.status_code != 409:
            continue
        assert response.headers["Content-Type"] == "application/problem+json"
        problem = response.json()
        assert problem.keys() == {*PROBLEM_KEYS, "field"}
        assert problem["status"] == 409
        assert problem["field"] == "username"

    with httpx.Client(base_url=live_server.url, headers=auth_headers, timeout=TIMEOUT) as client:
        for spelling in (word, word.upper()):
            page = client.get("/users", params={"username": spelling})
            assert page.status_code == 200, page.text
            assert page.json() == {"items": [user], "next_cursor": None}
        everyone = client.get("/users", params={"limit": 100})
    assert everyone.json() == {"items": [user], "next_cursor": None}


def test_readme_run_command_serves_embedded_sqlite(tmp_path: Path) -> None:
    # Another checkout, so the database it makes is its own, not this one's instance/.
    project = project_copy(tmp_path / "project")
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    log_path = tmp_path / "flask.log"
    flask_script = Path(sys.executable).parent / "flask"
    assert flask_script.exists(), flask_script
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    command = [str(flask_script), "--app", "app", "run", "--port", str(port)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=workdir, env=embedded_env(project), stdout=log, stderr=subprocess.STDOUT
        )
    try:
        wait_until_serving(base_url, process, log_path)
        # The first start prints a local key with every scope, once, on stderr.
        tokens = LOCAL_KEY.findall(log_path.read_text(errors="replace"))
        assert len(set(tokens)) == 1, log_path.read_text(errors="replace")
        auth = {"Authorization": f"Bearer {tokens[0]}"}
        with httpx.Client(base_url=base_url, headers=auth, timeout=TIMEOUT) as client:
            created = client.post(
                "/users", json={"username": "davidchen", "email": "david@example.com"}
            )
            assert created.status_code == 201, created.text
            user = created.json()
            _assert_user(user, username="davidchen", email="david@example.com")
            fetched = client.get(created.headers["Location"])
            assert fetched.status_code == 200, fetched.text
            assert fetched.json() == user
            anonymous = httpx.get(f"{base_url}/users", timeout=TIMEOUT)
            assert anonymous.status_code == 401, anonymous.text
            ready = client.get("/readyz")
            assert ready.status_code == 200, ready.text
            assert ready.json() == {"status": "ready"}
    finally:
        stop(process)
    # In the project's instance folder, wherever flask was started from.
    assert (project / "instance" / "app.db").is_file(), log_path.read_text(errors="replace")
    assert not (workdir / "instance").exists()


def test_access_log_names_the_key_prefix_never_the_secret(
    live_server: LiveServer, api_token: str
) -> None:
    request_id = f"log-check-{uuid.uuid4().hex}"
    headers = {"Authorization": f"Bearer {api_token}", REQUEST_ID_HEADER: request_id}
    assert (
        httpx.get(f"{live_server.url}/users", headers=headers, timeout=TIMEOUT).status_code == 200
    )
    prefix, secret = api_token.split("_")[1], api_token.split("_", 2)[2]
    deadline = time.monotonic() + 5
    while request_id not in live_server.log() and time.monotonic() < deadline:
        time.sleep(0.05)  # the server writes the access line after the response
    line = next(line for line in live_server.log().splitlines() if request_id in line)
    # The text format's access line: "<time> INFO [<request id> key=<prefix>] app.access: ...".
    assert f"[{request_id} key={prefix}] " in line
    assert " GET /users 200 " in line
    assert secret not in live_server.log()


def _open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_readme_run_command_keeps_its_file_descriptors_flat(tmp_path: Path) -> None:
    # flask run starts a thread per request, and every thread runs async views on a loop
    # of its own: a loop kept past its thread leaked 3 descriptors a request, and under
    # this limit request ~80 (~338 under 1024) was a 503 "Too many open files".
    flask_script = Path(sys.executable).parent / "flask"
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "flask.log"

    def low_fd_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))

    command = [str(flask_script), "--app", "app", "run", "--port", str(port)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            cwd=tmp_path,
            env=embedded_env(project_copy(tmp_path / "project")),
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=low_fd_limit,  # noqa: PLW1509 - only sets a limit, in the child
        )
    try:
        wait_until_serving(base_url, process, log_path)
        statuses: Counter[int] = Counter()
        with httpx.Client(base_url=base_url, timeout=TIMEOUT) as client:
            for n in range(1, 1_001):
                # A new connection each time, as curl makes: a new server thread.
                statuses[client.get("/healthz", headers={"Connection": "close"}).status_code] += 1
                if n == 100:
                    after_100 = _open_fds(process.pid)
        after_1000 = _open_fds(process.pid)
    finally:
        stop(process)
    assert statuses == {200: 1_000}, log_path.read_text(errors="replace")[-3000:]
    assert after_1000 - after_100 < 10, (after_100, after_1000)
