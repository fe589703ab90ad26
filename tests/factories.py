"""Typed factories for test data, written through the real services."""

import itertools
from typing import Any

from flask import Flask

from app.extensions import db
from app.models import User
from app.schemas.users import UserCreate
from app.services import users

_counter = itertools.count(1)


def make_user(app: Flask, **overrides: Any) -> User:
    """Create and commit a user with unique defaults."""
    n = next(_counter)
    fields: dict[str, Any] = {"username": f"user{n}", "email": f"user{n}@example.com"}
    fields.update(overrides)
    with app.app_context():
        user = users.create_user(UserCreate(**fields))
        db.session.commit()
        return user
