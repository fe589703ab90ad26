"""Typed factories for test data, written through the real services."""

import itertools
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from flask import Flask
from sqlalchemy import func, insert, select, update

from app.db.session import db
from app.models import AuditEvent, User, WebhookDelivery
from app.schemas.groups import GroupCreate
from app.schemas.posts import PostCreate
from app.schemas.users import UserCreate
from app.schemas.webhooks import WebhookCreate
from app.services import groups, outbox, posts, users, webhooks
from app.services.api_keys import ALL_SCOPES, Scope, create_api_key
from app.services.passwords import hash_password
from app.services.users import VersionedUserRow

_counter = itertools.count(1)


def make_user(app: Flask, **overrides: Any) -> VersionedUserRow:
    """Create and commit a user with unique defaults."""
    n = next(_counter)
    fields: dict[str, Any] = {"username": f"user{n}", "email": f"user{n}@example.com"}
    fields.update(overrides)
    with app.app_context():
        user = users.create_user(UserCreate(**fields))
        db.session.commit()
        return user


def make_api_key(
    app: Flask,
    scopes: Sequence[Scope] = ALL_SCOPES,
    *,
    name: str = "test",
    expires_at: datetime | None = None,
    revoked: bool = False,
) -> str:
    """Create and commit an API key; return its token."""
    with app.app_context():
        key, token = create_api_key(name, list(scopes), expires_at)
        if revoked:
            key.revoked_at = datetime.now(UTC)
        db.session.commit()
        return token


def make_post(app: Flask, author: VersionedUserRow, **overrides: Any) -> posts.PostRow:
    """Create and commit a post by the author."""
    n = next(_counter)
    fields: dict[str, Any] = {"title": f"Post {n}", "body": f"Body of post {n}."}
    fields.update(overrides)
    with app.app_context():
        post = posts.create_post(author.id, PostCreate(**fields))
        db.session.commit()
        return post


def set_password(app: Flask, user_id: int, password: str, *, active: bool = True) -> None:
    """Give a user a password (hashed as sign-in checks it) and an active flag; commit."""
    with app.app_context():
        db.session.execute(
            update(User)
            .where(User.id == user_id)
            .values(password_hash=hash_password(password), active=active)
        )
        db.session.commit()


def make_group(app: Flask, scopes: Sequence[Scope] = (), **overrides: Any) -> int:
    """Create and commit a group with a unique default name; return its id."""
    fields: dict[str, Any] = {"name": f"group{next(_counter)}", "scopes": list(scopes)}
    fields.update(overrides)
    with app.app_context():
        group = groups.create_group(GroupCreate(**fields))
        db.session.commit()
        return int(group.id)


# A public address (no name to resolve): registration through the API takes it without
# WEBHOOK_ALLOWED_HOSTS, and nothing connects to it unless the worker runs.
PUBLIC_HOOK_URL = "https://93.184.215.14/hook"


def make_webhook(app: Flask, url: str = PUBLIC_HOOK_URL, **overrides: Any) -> int:
    """Register and commit a webhook endpoint for every event type; return its id."""
    fields: dict[str, Any] = {"url": url, "events": ["*"]}
    fields.update(overrides)
    with app.app_context():
        row, _ = webhooks.create_webhook(WebhookCreate(**fields))
        db.session.commit()
        return int(row.id)


def make_delivery(app: Flask, webhook_id: int, **values: Any) -> int:
    """Insert and commit a delivery of the newest event to the endpoint (as the worker's
    fan-out would); return its id."""
    table = outbox.table_of(WebhookDelivery)
    with app.app_context(), db.engine.begin() as conn:
        event = conn.execute(select(func.max(AuditEvent.id))).scalar_one()
        stmt = insert(table).values(
            endpoint_id=webhook_id, event_id=event, resource_key=f"webhook:{webhook_id}", **values
        )
        return int(conn.execute(stmt.returning(table.c.id)).scalar_one())
