"""The practical ceiling: a bare WSGI callable sending the same SQL with psycopg."""

import json
import os
import re
import threading
from typing import Any

import psycopg

DSN = os.environ["DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
_local = threading.local()
_ONE = re.compile(r"/users/(\d+)")
_COLUMNS = "id, username, email, created_at, updated_at"


def _conn() -> psycopg.Connection[Any]:
    conn: psycopg.Connection[Any] | None = getattr(_local, "conn", None)
    if conn is None:
        conn = _local.conn = psycopg.connect(DSN, autocommit=True)
    return conn


def _user(row: Any) -> dict[str, Any]:
    return {
        "id": row[0],
        "username": row[1],
        "email": row[2],
        "created_at": row[3].isoformat(),
        "updated_at": row[4].isoformat(),
    }


def _reply(start_response: Any, status: str, body: Any) -> list[bytes]:
    data = json.dumps(body).encode()
    start_response(
        status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
    )
    return [data]


def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """Serve GET /users/{id}, GET /users?limit=N and POST /users."""
    path, method, conn = environ["PATH_INFO"], environ["REQUEST_METHOD"], _conn()
    match = _ONE.fullmatch(path)
    if method == "GET" and match:
        row = conn.execute(
            f"SELECT {_COLUMNS} FROM user_account WHERE id = %s", [int(match[1])]
        ).fetchone()
        if row is None:
            return _reply(start_response, "404 Not Found", {"detail": "not found"})
        return _reply(start_response, "200 OK", _user(row))
    if path == "/users" and method == "GET":
        query = dict(
            p.split("=", 1) for p in environ.get("QUERY_STRING", "").split("&") if "=" in p
        )
        rows = conn.execute(
            f"SELECT {_COLUMNS} FROM user_account ORDER BY id LIMIT %s",
            [int(query.get("limit", 50))],
        ).fetchall()
        return _reply(start_response, "200 OK", {"items": [_user(r) for r in rows]})
    if path == "/users" and method == "POST":
        body = json.loads(environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0)))
        try:
            row = conn.execute(
                f"INSERT INTO user_account (username, email) VALUES (%s, %s) RETURNING {_COLUMNS}",
                [body["username"], body["email"]],
            ).fetchone()
        except psycopg.errors.UniqueViolation:
            return _reply(start_response, "409 Conflict", {"detail": "taken"})
        return _reply(start_response, "201 Created", _user(row))
    return _reply(start_response, "404 Not Found", {"detail": "no route"})
