"""Rules of the users service, called directly: the database decides what is taken."""

from collections.abc import Callable

import pytest
from flask import Flask

from app.db.session import db
from app.errors import ConflictError, NotFoundError
from app.schemas.users import UserCreate, UserUpdate
from app.services import users
from tests.factories import make_user


@pytest.mark.parametrize(
    ("username", "email", "field"),
    [("ANN", "other@x.io", "username"), ("other", "Ann@X.io", "email")],
)
def test_a_name_or_email_taken_in_any_case_is_a_conflict_naming_it(
    app: Flask, username: str, email: str, field: str
) -> None:
    make_user(app, username="ann", email="ann@x.io")
    with app.app_context(), pytest.raises(ConflictError) as taken:
        users.create_user(UserCreate(username=username, email=email))
    assert taken.value.extensions == {"field": field}


def test_an_update_onto_a_taken_email_is_a_conflict(app: Flask) -> None:
    make_user(app, username="ann", email="ann@x.io")
    bob = make_user(app, username="bob", email="bob@x.io")
    with app.app_context(), pytest.raises(ConflictError) as taken:
        users.update_user(bob.id, UserUpdate(email="ANN@x.io"))
    assert taken.value.extensions == {"field": "email"}


def test_update_changes_only_the_given_fields(app: Flask) -> None:
    ann = make_user(app, username="ann", email="ann@x.io")
    with app.app_context():
        changed = users.update_user(ann.id, UserUpdate(username="anne"))
        db.session.commit()
    assert (changed.username, changed.email) == ("anne", "ann@x.io")
    assert changed.created_at == ann.created_at


@pytest.mark.parametrize("action", ["get", "update", "delete"])
def test_a_missing_user_is_not_found(app: Flask, action: str) -> None:
    missing = make_user(app).id + 1_000
    calls: dict[str, Callable[[], object]] = {
        "get": lambda: users.get_user(missing),
        "update": lambda: users.update_user(missing, UserUpdate(username="nobody")),
        "delete": lambda: users.delete_user(missing),
    }
    with app.app_context(), pytest.raises(NotFoundError, match=f"User {missing} "):
        calls[action]()
