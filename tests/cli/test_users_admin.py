"""flask --app app users create-admin: the first admin, password from a prompt or stdin."""

from flask import Flask
from sqlalchemy import select

from app.db.session import db
from app.models import Group, GroupMember, User
from app.services.api_keys import ALL_SCOPES
from tests.factories import make_group

PASSWORD = "correct horse battery staple"


def _create(app: Flask, *args: str, stdin: str) -> tuple[int, str]:
    result = app.test_cli_runner().invoke(args=["users", "create-admin", *args], input=stdin)
    return result.exit_code, result.output


def _groups_of(app: Flask, username: str) -> list[tuple[str, list[str]]]:
    with app.app_context():
        rows = db.session.execute(
            select(Group.name, Group.scopes)
            .join(GroupMember, GroupMember.group_id == Group.id)
            .join(User, User.id == GroupMember.user_id)
            .where(User.username == username)
        ).all()
        return [(name, scopes) for name, scopes in rows]


def _sign_in(app: Flask, username: str, password: str = PASSWORD) -> int:
    response = app.test_client().post(
        "/auth/sessions", json={"username": username, "password": password}
    )
    return response.status_code


def test_the_prompt_asks_twice_hidden_and_the_admin_has_every_scope(app: Flask) -> None:
    code, output = _create(app, "root", "root@example.com", stdin=f"{PASSWORD}\n{PASSWORD}\n")

    assert code == 0, output
    assert "Password:" in output
    assert "Repeat for confirmation:" in output
    assert PASSWORD not in output  # hidden input is not echoed
    assert "made group admins" in output
    assert _groups_of(app, "root") == [("admins", list(ALL_SCOPES))]
    client = app.test_client()
    tokens = client.post("/auth/sessions", json={"username": "root", "password": PASSWORD})
    assert tokens.status_code == 201
    headers = {"Authorization": f"Bearer {tokens.get_json()['access_token']}"}
    assert client.get("/auth/whoami", headers=headers).get_json()["scopes"] == list(ALL_SCOPES)
    assert client.get("/groups", headers=headers).status_code == 200


def test_a_mismatched_confirmation_creates_nobody(app: Flask) -> None:
    code, output = _create(app, "root", "root@example.com", stdin=f"{PASSWORD}\nsomething else\n")

    assert code != 0
    assert "do not match" in output
    with app.app_context():
        assert db.session.execute(select(User.id)).first() is None


def test_password_stdin_reads_one_line_and_a_second_admin_joins_the_group(app: Flask) -> None:
    code, output = _create(
        app, "root", "root@example.com", "--password-stdin", stdin=PASSWORD + "\n"
    )
    assert code == 0, output
    assert "Password:" not in output
    second = "another long passphrase"
    code, output = _create(app, "ops", "ops@example.com", "--password-stdin", stdin=second + "\n")
    assert code == 0, output
    assert "in group admins" in output

    assert _sign_in(app, "root") == 201
    assert _sign_in(app, "ops", second) == 201
    with app.app_context():
        assert db.session.execute(select(Group.name)).scalars().all() == ["admins"]


def test_an_existing_admins_group_in_any_letter_case_is_joined_as_it_is(app: Flask) -> None:
    group = make_group(app, ["users:admin"], name="Admins")

    code, output = _create(app, "root", "root@example.com", "--password-stdin", stdin=PASSWORD)

    assert code == 0, output
    assert f"in group admins ({group})" in output
    assert _groups_of(app, "root") == [("Admins", ["users:admin"])]


def test_a_refused_password_or_a_taken_name_creates_nothing(app: Flask) -> None:
    code, output = _create(app, "root", "root@example.com", "--password-stdin", stdin="password\n")
    assert code == 1
    assert "most common passwords" in output
    code, output = _create(app, "root", "root@example.com", "--password-stdin", stdin="short\n")
    assert code == 1
    assert "at least 8 characters" in output
    code, output = _create(app, "root", "not an email", "--password-stdin", stdin=PASSWORD)
    assert code == 1
    assert "email" in output
    with app.app_context():
        assert db.session.execute(select(User.id)).first() is None
        assert db.session.execute(select(Group.id)).first() is None

    assert _create(app, "root", "root@example.com", "--password-stdin", stdin=PASSWORD)[0] == 0
    code, output = _create(app, "ROOT", "other@example.com", "--password-stdin", stdin=PASSWORD)
    assert code == 1
    assert "username already exists" in output
    with app.app_context():
        assert db.session.execute(select(User.username)).scalars().all() == ["root"]


def test_the_password_is_never_an_argument(app: Flask) -> None:
    code, output = _create(app, "root", "root@example.com", "--password", PASSWORD, stdin="")
    assert code == 2
    assert "No such option" in output
    with app.app_context():
        assert db.session.execute(select(User.id)).first() is None
