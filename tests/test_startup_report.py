"""The start-up report's last line: whether anyone can call the server yet (app.startup)."""

from flask import Flask

from app.config import SETTINGS, Settings
from app.db.session import db
from app.schemas.users import UserCreate
from app.services import groups, passwords
from app.startup import keys


def test_it_says_when_no_admin_signs_in_and_how_many_do(app: Flask) -> None:
    settings: Settings = app.extensions[SETTINGS]
    assert "no admin signs in yet: flask --app app users create-admin" in keys(settings)

    with app.app_context():
        data = UserCreate(username="root", email="root@example.com")
        groups.create_admin(data, passwords.hash_password("correct horse battery"))
        db.session.commit()

    assert keys(settings).endswith("; admins who sign in: 1")
