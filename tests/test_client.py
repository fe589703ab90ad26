"""The generated typed client (clients/python): in step with the served document, installable
and importable by name, and working end to end against the shipped server on PostgreSQL.

The suite imports it by name, ``user_management_client``, as its users do: pytest's
``pythonpath`` and mypy's ``mypy_path`` (pyproject.toml) put clients/python on the path, so
mypy checks these calls against it. tests/test_client_packages.py installs it with pip into
a fresh virtualenv and runs docs/how-to/clients.md's example there.
"""

import filecmp
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pathspec
import pytest
from user_management_client import AuthenticatedClient, Client
from user_management_client.api.auth import create_session, get_whoami, refresh_session
from user_management_client.api.me import get_me
from user_management_client.api.posts import (
    create_post,
    delete_post,
    get_post,
    list_posts,
    list_user_posts,
    replace_post,
    update_post,
)
from user_management_client.api.users import (
    create_user,
    delete_user,
    get_user,
    list_users,
    replace_user,
    set_user_password,
    update_user,
)
from user_management_client.models import (
    ConflictProblem,
    KeyWhoAmI,
    PasswordSet,
    PostCreate,
    PostPage,
    PostRead,
    PostUpdate,
    Problem,
    SessionCreate,
    SessionRefresh,
    Tokens,
    UserCreate,
    UserPage,
    UserRead,
    UserUpdate,
    ValidationProblem,
)
from user_management_client.types import Response

from app.services.api_keys import ALL_SCOPES
from scripts.generate_client import CLIENT_DIR, generate
from tests.helpers import LiveServer

M = TypeVar("M")

TIMEOUT = httpx.Timeout(10.0)
# Caches that tools write into any folder they run in, which also ignore themselves (each
# holds a .gitignore of "*"), so the client's own .gitignore need not list them.
_SELF_IGNORED = ("__pycache__/", ".ruff_cache/", ".mypy_cache/", ".pytest_cache/")


def _tree(root: Path) -> set[Path]:
    """The files of a client folder that git would see: what its .gitignore leaves."""
    ignore = CLIENT_DIR / ".gitignore"
    spec = pathspec.GitIgnoreSpec.from_lines([*ignore.read_text().splitlines(), *_SELF_IGNORED])
    return {
        path.relative_to(root)
        for path in root.rglob("*")
        if path.is_file() and not spec.match_file(path.relative_to(root).as_posix())
    }


def test_committed_client_matches_the_served_document(tmp_path: Path) -> None:
    fresh = tmp_path / "python"
    generate(fresh)

    committed_files, fresh_files = _tree(CLIENT_DIR), _tree(fresh)
    drift = {
        "changed": sorted(
            str(path)
            for path in committed_files & fresh_files
            if not filecmp.cmp(CLIENT_DIR / path, fresh / path, shallow=False)
        ),
        "missing": sorted(str(path) for path in fresh_files - committed_files),
        "not generated": sorted(str(path) for path in committed_files - fresh_files),
    }
    assert not any(drift.values()), (
        "clients/python is out of date with GET /openapi.json; regenerate it with "
        "`.venv/bin/python scripts/generate_client.py` and commit the result.\n"
        + "\n".join(f"{kind}: {paths}" for kind, paths in drift.items() if paths)
    )


@dataclass(frozen=True)
class _Expect:
    """Assertions on the client's responses that show the server's log when they fail."""

    server: LiveServer

    def parsed(self, response: Response[Any], status: HTTPStatus, model: type[M]) -> M:
        """Check the status and that the body was parsed into the documented model."""
        assert response.status_code == status, (
            f"expected {status}, got {response.status_code}: {response.content!r}\n"
            f"{self.server.log()}"
        )
        assert isinstance(response.parsed, model), f"parsed as {type(response.parsed).__name__}"
        return response.parsed

    def empty(self, response: Response[Any]) -> None:
        """Check a 204 with no body."""
        assert response.status_code == HTTPStatus.NO_CONTENT, (
            f"{response.content!r}\n{self.server.log()}"
        )
        assert response.content == b""


def _users(client: AuthenticatedClient, expect: _Expect) -> tuple[UserRead, UserRead]:
    """Create, list (two pages and a filter), get, patch and put; then a typed 409."""
    created = create_user.sync_detailed(
        client=client, body=UserCreate(username="davidchen", email="david@example.com")
    )
    user = expect.parsed(created, HTTPStatus.CREATED, UserRead)
    assert (user.username, user.email) == ("davidchen", "david@example.com")
    assert user.created_at.tzinfo is not None
    assert created.headers["Location"].endswith(f"/users/{user.id}")
    assert created.headers["X-Request-ID"]
    other = expect.parsed(
        create_user.sync_detailed(
            client=client, body=UserCreate(username="zoe", email="zoe@example.com")
        ),
        HTTPStatus.CREATED,
        UserRead,
    )

    first = expect.parsed(
        list_users.sync_detailed(client=client, limit=1, sort="username"), HTTPStatus.OK, UserPage
    )
    assert [u.id for u in first.items] == [user.id]
    assert isinstance(first.next_cursor, str)
    second = expect.parsed(
        list_users.sync_detailed(client=client, limit=1, sort="username", cursor=first.next_cursor),
        HTTPStatus.OK,
        UserPage,
    )
    assert [u.id for u in second.items] == [other.id]
    found = expect.parsed(
        list_users.sync_detailed(client=client, username="DAVIDCHEN"), HTTPStatus.OK, UserPage
    )
    assert [u.id for u in found.items] == [user.id]
    assert found.next_cursor is None

    fetched = expect.parsed(get_user.sync_detailed(user.id, client=client), HTTPStatus.OK, UserRead)
    assert fetched == user
    patched = expect.parsed(
        update_user.sync_detailed(
            user.id, client=client, body=UserUpdate(email="david.chen@example.com")
        ),
        HTTPStatus.OK,
        UserRead,
    )
    assert (patched.username, patched.email) == ("davidchen", "david.chen@example.com")
    assert patched.created_at == user.created_at
    assert patched.updated_at > user.updated_at
    replaced = expect.parsed(
        replace_user.sync_detailed(user.id, client=client, body=UserUpdate(username="dchen")),
        HTTPStatus.OK,
        UserRead,
    )
    assert (replaced.username, replaced.email) == ("dchen", "david.chen@example.com")

    # A typed problem naming the field; usernames compare case-insensitively.
    conflict = expect.parsed(
        create_user.sync_detailed(
            client=client, body=UserCreate(username="DChen", email="someone@example.com")
        ),
        HTTPStatus.CONFLICT,
        ConflictProblem,
    )
    assert (conflict.status, conflict.title, conflict.field) == (409, "Conflict", "username")
    assert conflict.type_ == "about:blank"
    # An update naming no member: a typed 422 that says where.
    empty = expect.parsed(
        update_user.sync_detailed(user.id, client=client, body=UserUpdate()),
        HTTPStatus.UNPROCESSABLE_ENTITY,
        ValidationProblem,
    )
    assert [error.loc for error in empty.errors] == [["body"]]
    return replaced, other


def _posts(client: AuthenticatedClient, expect: _Expect, user: UserRead, other: UserRead) -> None:
    """Create, list all (author embedded), list the user's, get, patch, put and delete."""
    created = create_post.sync_detailed(
        user.id, client=client, body=PostCreate(title="Hello", body="First post.")
    )
    post = expect.parsed(created, HTTPStatus.CREATED, PostRead)
    assert (post.author_id, post.title, post.body) == (user.id, "Hello", "First post.")
    assert (post.author.id, post.author.username) == (user.id, user.username)
    assert created.headers["Location"].endswith(f"/posts/{post.id}")
    expect.parsed(
        create_post.sync_detailed(other.id, client=client, body=PostCreate(title="Zoe's", body="")),
        HTTPStatus.CREATED,
        PostRead,
    )

    every = expect.parsed(list_posts.sync_detailed(client=client), HTTPStatus.OK, PostPage)
    assert {(p.author.id, p.author.username) for p in every.items} == {
        (user.id, user.username),
        (other.id, other.username),
    }
    assert every.next_cursor is None
    by_author = expect.parsed(
        list_posts.sync_detailed(client=client, author_id=user.id, sort="-created_at"),
        HTTPStatus.OK,
        PostPage,
    )
    assert by_author.items == [post]
    users_posts = expect.parsed(
        list_user_posts.sync_detailed(user.id, client=client), HTTPStatus.OK, PostPage
    )
    assert users_posts.items == [post]
    assert (
        expect.parsed(get_post.sync_detailed(post.id, client=client), HTTPStatus.OK, PostRead)
        == post
    )

    retitled = expect.parsed(
        update_post.sync_detailed(post.id, client=client, body=PostUpdate(title="Hello again")),
        HTTPStatus.OK,
        PostRead,
    )
    assert (retitled.title, retitled.body) == ("Hello again", "First post.")
    rewritten = expect.parsed(
        replace_post.sync_detailed(post.id, client=client, body=PostUpdate(body="Edited.")),
        HTTPStatus.OK,
        PostRead,
    )
    assert (rewritten.title, rewritten.body) == ("Hello again", "Edited.")
    assert rewritten.updated_at > retitled.updated_at

    expect.empty(delete_post.sync_detailed(post.id, client=client))
    gone = expect.parsed(
        get_post.sync_detailed(post.id, client=client), HTTPStatus.NOT_FOUND, Problem
    )
    assert gone.status == 404


def _accounts(client: AuthenticatedClient, expect: _Expect, user: UserRead) -> None:
    """An admin's key sets the user's password; the user signs in, reads /me, refreshes;
    the spent refresh token used again ends the session."""
    password = "a long passphrase for david"
    expect.empty(
        set_user_password.sync_detailed(
            user.id, client=client, body=PasswordSet(new_password=password)
        )
    )
    url = expect.server.url
    with Client(base_url=url, timeout=TIMEOUT) as anonymous:
        tokens = expect.parsed(
            create_session.sync_detailed(
                client=anonymous, body=SessionCreate(username=user.username, password=password)
            ),
            HTTPStatus.CREATED,
            Tokens,
        )
        assert tokens.access_token.startswith("uma_")
        with AuthenticatedClient(base_url=url, token=tokens.access_token) as signed_in:
            me = expect.parsed(get_me.sync_detailed(client=signed_in), HTTPStatus.OK, UserRead)
            assert me.id == user.id
        spent = SessionRefresh(refresh_token=tokens.refresh_token)
        fresh = expect.parsed(
            refresh_session.sync_detailed(client=anonymous, body=spent), HTTPStatus.OK, Tokens
        )
        assert fresh.session_id == tokens.session_id
        with AuthenticatedClient(base_url=url, token=fresh.access_token) as signed_in:
            assert get_me.sync(client=signed_in) == me
        reused = refresh_session.sync_detailed(client=anonymous, body=spent)
        expect.parsed(reused, HTTPStatus.UNAUTHORIZED, Problem)
        # Reuse detection: the whole session ends, the fresh refresh token with it. (Not
        # checked on the fresh access token: the other server process may answer from its
        # cache until the revocation's NOTIFY reaches it.)
        after = SessionRefresh(refresh_token=fresh.refresh_token)
        expect.parsed(
            refresh_session.sync_detailed(client=anonymous, body=after),
            HTTPStatus.UNAUTHORIZED,
            Problem,
        )


@pytest.mark.live
@pytest.mark.postgresql_only("the typed-client end-to-end flow runs against PostgreSQL only")
def test_typed_client_runs_users_and_posts_flow_on_postgresql(
    backend: str, api_token: str, request: pytest.FixtureRequest
) -> None:
    expect = _Expect(request.getfixturevalue("live_server"))
    url = expect.server.url

    with AuthenticatedClient(base_url=url, token=api_token, timeout=TIMEOUT) as client:
        # The bearer scheme: the client sends Authorization: Bearer <key>.
        me = expect.parsed(get_whoami.sync_detailed(client=client), HTTPStatus.OK, KeyWhoAmI)
        assert set(me.scopes) == set(ALL_SCOPES)
        assert api_token.startswith(f"umk_{me.prefix}_")

        user, other = _users(client, expect)
        _posts(client, expect, user, other)
        _accounts(client, expect, user)

        # Deleting a user; then typed 404 problems, for the user and for their posts.
        expect.empty(delete_user.sync_detailed(user.id, client=client))
        absent = expect.parsed(
            get_user.sync_detailed(user.id, client=client), HTTPStatus.NOT_FOUND, Problem
        )
        assert (absent.status, absent.title) == (404, "Not Found")
        assert absent.additional_properties == {}  # only the members a 404 has
        expect.parsed(
            list_user_posts.sync_detailed(user.id, client=client), HTTPStatus.NOT_FOUND, Problem
        )
        # .sync returns the parsed body alone.
        assert get_user.sync(other.id, client=client) == other

    # A key the server does not know: a typed 401 problem.
    with AuthenticatedClient(base_url=url, token="umk_unknown", timeout=TIMEOUT) as stranger:
        unauthorized = expect.parsed(
            get_user.sync_detailed(other.id, client=stranger), HTTPStatus.UNAUTHORIZED, Problem
        )
        assert unauthorized.status == 401
