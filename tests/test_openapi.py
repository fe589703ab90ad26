"""The OpenAPI document says what travels: the exported document is the served one, import
bodies are files, cursors round-trip, updates need a member, and each error status has the
problem a generated client can type."""

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

import app as app_package
from app.errors import PROBLEM_MIMETYPE
from app.schemas.common import InputModel
from app.schemas.posts import PostCreate, PostUpdate
from app.schemas.users import UserCreate, UserUpdate

SCHEMAS = "#/components/schemas/"


@pytest.fixture
def document(anonymous_client: FlaskClient) -> dict[str, Any]:
    """The served document."""
    served: dict[str, Any] = anonymous_client.get("/openapi.json").get_json()
    return served


def _problem_ref(document: dict[str, Any], method: str, path: str, status: str) -> str:
    response = document["paths"][path][method]["responses"][status]
    ref: str = response["content"][PROBLEM_MIMETYPE]["schema"]["$ref"]
    return ref.removeprefix(SCHEMAS)


def test_openapi_command_writes_the_served_bytes(
    app: Flask, anonymous_client: FlaskClient, tmp_path: Path
) -> None:
    served = anonymous_client.get("/openapi.json").get_data()
    runner = app.test_cli_runner()

    to_stdout = runner.invoke(args=["openapi"])
    to_file = runner.invoke(args=["openapi", "-o", str(tmp_path / "openapi.json")])

    assert to_stdout.exit_code == 0, to_stdout.output
    assert to_stdout.stdout_bytes == served
    assert to_file.exit_code == 0, to_file.output
    assert (tmp_path / "openapi.json").read_bytes() == served


def test_flask_openapi_in_a_new_process_is_ours(
    anonymous_client: FlaskClient, tmp_path: Path
) -> None:
    # flask-openapi3 registers a command of the same name, which printed its raw document.
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["INSTANCE_PATH"] = str(tmp_path / "instance")
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", "openapi"],
        env=env,
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == anonymous_client.get("/openapi.json").get_data()


def test_import_body_is_the_file_itself(document: dict[str, Any]) -> None:
    body = document["paths"]["/users/import"]["post"]["requestBody"]

    assert body["required"] is True
    assert body["content"] == {
        mimetype: {"schema": {"type": "string", "format": "binary", "contentMediaType": mimetype}}
        for mimetype in ("application/x-ndjson", "text/csv")
    }


def test_next_cursor_is_the_type_the_cursor_parameter_takes(document: dict[str, Any]) -> None:
    cursor = {"$ref": SCHEMAS + "Cursor"}
    for path in ("/users", "/posts", "/users/{user_id}/posts"):
        parameters = document["paths"][path]["get"]["parameters"]
        assert next(p for p in parameters if p["name"] == "cursor")["schema"] == cursor
    schemas = document["components"]["schemas"]
    for page in ("UserPage", "PostPage"):
        assert schemas[page]["properties"]["next_cursor"]["anyOf"] == [cursor, {"type": "null"}]
    assert schemas["Cursor"]["type"] == "string"


@pytest.mark.parametrize(
    ("model", "members"),
    [
        ("UserUpdate", {"username", "email", "active"}),
        ("MeUpdate", {"username", "email"}),
        ("GroupUpdate", {"name", "scopes"}),
        ("PostUpdate", {"title", "body"}),
    ],
)
def test_update_bodies_need_one_member(
    document: dict[str, Any], model: str, members: set[str]
) -> None:
    schema = document["components"]["schemas"][model]

    # Each variant: every member, none of them null, one required, nothing else.
    assert "properties" not in schema
    assert schema["minProperties"] == 1
    assert sorted(v["required"] for v in schema["anyOf"]) == [[m] for m in sorted(members)]
    for variant in schema["anyOf"]:
        assert set(variant["properties"]) == members
        assert variant["additionalProperties"] is False
        assert "null" not in str(variant["properties"])


def test_each_error_status_has_its_own_problem(document: dict[str, Any]) -> None:
    assert _problem_ref(document, "post", "/users", "409") == "ConflictProblem"
    assert _problem_ref(document, "post", "/users", "422") == "ValidationProblem"
    assert _problem_ref(document, "get", "/users", "400") == "BadRequestProblem"
    assert _problem_ref(document, "get", "/users", "403") == "ForbiddenProblem"
    assert _problem_ref(document, "get", "/users/{user_id}", "404") == "Problem"
    assert _problem_ref(document, "post", "/users/import", "409") == "ImportProblem"
    assert _problem_ref(document, "post", "/users/import", "422") == "ImportProblem"
    schemas = document["components"]["schemas"]
    assert schemas["ConflictProblem"]["properties"]["status"]["const"] == 409
    assert "field" in schemas["ConflictProblem"]["properties"]
    assert "errors" in schemas["ValidationProblem"]["required"]
    assert set(schemas["ImportProblem"]["required"]) >= {"created", "skipped", "errors"}


@pytest.mark.parametrize("path", ["/users/{user_id}", "/posts/{post_id}"])
def test_conditional_requests_are_documented(document: dict[str, Any], path: str) -> None:
    etag = {"$ref": "#/components/headers/ETag"}
    item = document["paths"][path]

    get = item["get"]
    assert "If-None-Match" in [p["name"] for p in get["parameters"] if p["in"] == "header"]
    assert get["responses"]["304"]["headers"]["ETag"] == etag
    assert get["responses"]["200"]["headers"]["ETag"] == etag
    for method in ("patch", "put", "delete"):
        operation = item[method]
        assert "If-Match" in [p["name"] for p in operation["parameters"] if p["in"] == "header"]
        assert _problem_ref(document, method, path, "412") == "Problem"
    for method in ("patch", "put"):
        assert item[method]["responses"]["200"]["headers"]["ETag"] == etag
    created = document["paths"]["/users"]["post"]["responses"]["201"]
    assert created["headers"]["ETag"] == etag


def test_every_write_gives_and_every_read_takes_the_consistency_token(
    document: dict[str, Any],
) -> None:
    # What app/db/replicas.py does with a read replica: a generated client sees both ends.
    token = "Consistency-Token"
    assert token in document["components"]["headers"]
    seen = {"get": 0, "write": 0}
    for path in document["paths"].values():
        for method, operation in path.items():
            if not operation.get("security"):
                continue
            if method == "get":
                names = [p["name"] for p in operation["parameters"] if p["in"] == "header"]
                assert token in names, operation["operationId"]
                seen["get"] += 1
                continue
            for status, response in operation["responses"].items():
                if status.startswith("2"):
                    assert token in response["headers"], (operation["operationId"], status)
                    seen["write"] += 1
    assert seen["get"] >= 5, seen
    assert seen["write"] >= 7, seen


def test_info_version_is_the_packages(document: dict[str, Any]) -> None:
    assert document["info"]["version"] == app_package.__version__


@pytest.mark.parametrize(
    ("method", "path", "model"),
    [
        ("post", "/users", UserCreate),
        ("patch", "/users/{user_id}", UserUpdate),
        ("put", "/users/{user_id}", UserUpdate),
        ("post", "/users/{user_id}/posts", PostCreate),
        ("patch", "/posts/{post_id}", PostUpdate),
    ],
)
def test_request_bodies_show_a_realistic_example_the_api_accepts(
    document: dict[str, Any], method: str, path: str, model: type[InputModel]
) -> None:
    # /docs' "Try it out" once proposed a username generated from the pattern.
    body = document["paths"][path][method]["requestBody"]["content"]["application/json"]
    example = body["example"]
    assert example == model.EXAMPLES[0]
    assert model.model_validate(example).model_dump(exclude_unset=True) == example
