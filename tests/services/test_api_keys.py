"""Rules of API keys, called directly: shown once, stored hashed, dead once revoked."""

from datetime import UTC, datetime, timedelta

from flask import Flask
from sqlalchemy import select

from app.db.session import db
from app.models import ApiKey
from app.services.api_keys import authenticate, create_api_key, revoke_api_key


def _issue(app: Flask, expires_at: datetime | None = None) -> tuple[str, str]:
    with app.app_context():
        key, token = create_api_key("svc", ["users:read"], expires_at)
        db.session.commit()
        return key.prefix, token


def test_a_key_is_stored_only_as_a_hash_and_its_token_authenticates(app: Flask) -> None:
    prefix, token = _issue(app)
    with app.app_context():
        stored = db.session.execute(select(ApiKey).where(ApiKey.prefix == prefix)).scalar_one()
        assert token.rsplit("_", 1)[-1] not in stored.secret_hash
        found = authenticate(token)
    assert found is not None
    assert (found.prefix, found.scopes) == (prefix, ("users:read",))


def test_a_wrong_secret_an_unknown_prefix_and_garbage_are_refused(app: Flask) -> None:
    prefix, token = _issue(app)
    wrong = token[:-1] + ("A" if token[-1] != "A" else "B")
    unknown = token.replace(prefix, "0" * len(prefix))
    with app.app_context():
        assert [authenticate(t) for t in (wrong, unknown, "umk_nonsense", "")] == [None] * 4


def test_revoked_and_expired_keys_no_longer_authenticate(app: Flask) -> None:
    _, expired = _issue(app, datetime.now(UTC) - timedelta(seconds=1))
    prefix, token = _issue(app)
    with app.app_context():
        assert authenticate(token) is not None  # now cached as verified
        revoke_api_key(prefix)
        db.session.commit()
        assert authenticate(token) is None  # the cache forgot it at once
        assert authenticate(expired) is None
