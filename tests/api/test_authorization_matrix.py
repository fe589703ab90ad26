"""The authorization matrix (OWASP API1, API5): every operation of the served OpenAPI
document, called by every kind of principal, answers the status its rule predicts.

The operations come from the document, not from a list here: an operation without a rule in
RULES fails the matrix, by name, so a new endpoint cannot ship without one. A rule says how
to call the operation and what kind of authorization it has; the scopes it needs are read
from the document's ``security``, so the document and the code are checked against each
other too. Each call gets fresh targets (a user, their post and session, a group), since
many calls change or delete what they touch; everything runs in process, one app a backend.
"""

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import update

from app.db.session import db
from app.models import User, UserSession
from app.schemas.groups import GroupCreate
from app.schemas.posts import PostCreate
from app.schemas.users import UserCreate
from app.services import groups, posts, sessions, users
from app.services.api_keys import ALL_SCOPES, Scope
from app.services.passwords import hash_password
from tests.factories import PUBLIC_HOOK_URL, make_api_key, make_delivery, make_webhook

PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "a new and longer passphrase"
UNISSUED = "t" * 43  # the form of a mailed token, never issued
MEMBER_SCOPES: tuple[Scope, ...] = tuple(s for s in ALL_SCOPES if s != "users:admin")

# public: anyone, whatever they send. scoped: the document's scopes, for a key or a user.
# owned: as scoped, but a signed-in user without users:admin only on what is theirs (403).
# account: a signed-in user's own (an API key: 403; no scope needed).
# own_session: as account, on the target user's session (anyone else's: 404, as absent).
Kind = Literal["public", "scoped", "owned", "account", "own_session"]


@dataclass
class Targets:
    """What one call acts on: a user (the "owner") with a post and a session, a group, a
    webhook endpoint with a delivery."""

    n: int
    user_id: int
    username: str
    post_id: int
    group_id: int
    session_id: int
    access_token: str
    refresh_token: str
    webhook_id: int
    delivery_id: int


Body = Callable[[Targets], dict[str, Any] | bytes | None]


@dataclass(frozen=True)
class Rule:
    """How to call an operation successfully, and who may."""

    success: int
    kind: Kind = "scoped"
    body: Body = field(default=lambda _t: None)


def _json(make: Callable[[Targets], dict[str, Any]]) -> Body:
    return make


RULES: dict[str, Rule] = {
    "getHealth": Rule(200, "public"),
    "getReadiness": Rule(200, "public"),
    "getMetrics": Rule(200, "public"),
    "createSession": Rule(
        201, "public", _json(lambda t: {"username": t.username, "password": PASSWORD})
    ),
    "refreshSession": Rule(200, "public", _json(lambda t: {"refresh_token": t.refresh_token})),
    "getWhoami": Rule(200),
    "listSessions": Rule(200, "account"),
    "deleteCurrentSession": Rule(204, "account"),
    "deleteSession": Rule(204, "own_session"),
    "getMe": Rule(200, "account"),
    "updateMe": Rule(200, "account", _json(lambda t: {"email": f"me{t.n}@example.com"})),
    "changeMyPassword": Rule(
        204,
        "account",
        _json(lambda _t: {"current_password": PASSWORD, "new_password": NEW_PASSWORD}),
    ),
    "createUser": Rule(
        201, body=_json(lambda t: {"username": f"new{t.n}", "email": f"new{t.n}@example.com"})
    ),
    "listUsers": Rule(200),
    "getUser": Rule(200),
    "updateUser": Rule(200, "owned", _json(lambda t: {"email": f"patched{t.n}@example.com"})),
    "replaceUser": Rule(200, "owned", _json(lambda t: {"email": f"put{t.n}@example.com"})),
    "deleteUser": Rule(204, "owned"),
    "setUserPassword": Rule(204, body=_json(lambda _t: {"new_password": NEW_PASSWORD})),
    "importUsers": Rule(
        200,
        body=lambda t: f'{{"username": "imp{t.n}", "email": "imp{t.n}@example.com"}}\n'.encode(),
    ),
    "exportUsers": Rule(200),
    "createPost": Rule(201, "owned", _json(lambda _t: {"title": "New", "body": "Text"})),
    "listUserPosts": Rule(200),
    "listPosts": Rule(200),
    "getPost": Rule(200),
    "updatePost": Rule(200, "owned", _json(lambda _t: {"title": "Patched"})),
    "replacePost": Rule(200, "owned", _json(lambda _t: {"body": "Put"})),
    "deletePost": Rule(204, "owned"),
    "createGroup": Rule(
        201, body=_json(lambda t: {"name": f"matrix{t.n}", "scopes": ["users:read"]})
    ),
    "listGroups": Rule(200),
    "getGroup": Rule(200),
    "updateGroup": Rule(200, body=_json(lambda _t: {"scopes": ["posts:read"]})),
    "deleteGroup": Rule(204),
    "listGroupMembers": Rule(200),
    "addGroupMember": Rule(204),
    "removeGroupMember": Rule(204),
    "inviteUser": Rule(202),
    "listMailMessages": Rule(200),
    # A token never issued: the same 400 for anyone (tests/mail spends real ones).
    "acceptInvitation": Rule(
        400, "public", _json(lambda _t: {"token": UNISSUED, "password": NEW_PASSWORD})
    ),
    "requestPasswordReset": Rule(
        202, "public", _json(lambda t: {"email": f"reset{t.n}@example.com"})
    ),
    "confirmPasswordReset": Rule(
        400, "public", _json(lambda _t: {"token": UNISSUED, "new_password": NEW_PASSWORD})
    ),
    "confirmEmail": Rule(400, "public", _json(lambda _t: {"token": UNISSUED})),
    # SIGNUP is off (its default): 404 for anyone.
    "signUp": Rule(
        404,
        "public",
        _json(
            lambda t: {
                "username": f"su{t.n}",
                "email": f"su{t.n}@example.com",
                "password": PASSWORD,
            }
        ),
    ),
    "listAuditEvents": Rule(200),
    "exportAuditEvents": Rule(200),
    "createWebhook": Rule(201, body=_json(lambda _t: {"url": PUBLIC_HOOK_URL, "events": ["*"]})),
    "listWebhooks": Rule(200),
    "getWebhook": Rule(200),
    "updateWebhook": Rule(200, body=_json(lambda t: {"description": f"matrix {t.n}"})),
    "deleteWebhook": Rule(204),
    "rotateWebhookSecret": Rule(200),
    "listWebhookDeliveries": Rule(200),
    "retryWebhookDelivery": Rule(202),
}


@dataclass(frozen=True)
class Principal:
    """Who calls: an API key, a signed-in user (by role), or nobody."""

    name: str
    scopes: frozenset[str] = frozenset()
    user: Literal["owner", "other", "admin", "no-scopes", "deactivated", "revoked"] | None = None
    key: bool = False

    @property
    def live(self) -> bool:
        """Whether the credential authenticates at all."""
        return self.name != "anonymous" and self.user not in ("deactivated", "revoked")


PRINCIPALS = [
    Principal("anonymous"),
    *(Principal(f"key {scope}", frozenset({scope}), key=True) for scope in ALL_SCOPES),
    Principal("member with no scopes", user="no-scopes"),
    Principal("owner", frozenset(MEMBER_SCOPES), user="owner"),
    Principal("another member", frozenset(MEMBER_SCOPES), user="other"),
    Principal("admin", frozenset(ALL_SCOPES), user="admin"),
    # Both would be admins: only their state refuses them.
    Principal("deactivated admin", frozenset(ALL_SCOPES), user="deactivated"),
    Principal("admin with a revoked session", frozenset(ALL_SCOPES), user="revoked"),
]


def _refusal(rule: Rule, needed: set[str], principal: Principal) -> int | None:
    if not principal.live:
        return 401
    if rule.kind in ("account", "own_session"):
        if principal.key:
            return 403
        return 404 if rule.kind == "own_session" and principal.user != "owner" else None
    if not needed <= principal.scopes:
        return 403
    if rule.kind == "owned" and principal.user in ("other", "no-scopes"):
        return 403
    return None


def expected_status(rule: Rule, needed: set[str], principal: Principal) -> int:
    """The status the contract gives this principal on this operation."""
    if rule.kind == "public":
        return rule.success
    return _refusal(rule, needed, principal) or rule.success


@dataclass(frozen=True)
class Operation:
    """One operation of the document."""

    operation_id: str
    method: str
    path: str
    needed: set[str]


def document_operations(app: Flask) -> list[Operation]:
    """Every operation of the served document, with the scopes its security names."""
    document = app.test_client().get("/openapi.json").get_json()
    found = []
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            needed = {
                s for entry in operation.get("security", []) for s in entry.get("bearerAuth", [])
            }
            found.append(Operation(operation["operationId"], method.upper(), path, needed))
    return found


_numbers = itertools.count(1)


class World:
    """One backend's fixed groups and API keys, and a maker of fresh targets and users."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.password_hash = hash_password(PASSWORD)  # once: each hash costs ~21 ms
        with app.app_context():
            self.members = groups.create_group(
                GroupCreate(name="matrix-members", scopes=list(MEMBER_SCOPES))
            ).id
            self.admins = groups.create_group(
                GroupCreate(name="matrix-admins", scopes=list(ALL_SCOPES))
            ).id
            db.session.commit()
        self.keys: dict[str, str] = {scope: make_api_key(app, [scope]) for scope in ALL_SCOPES}

    def _user(self, group: int | None, n: int, role: str) -> tuple[int, str, sessions.Issued]:
        name = f"{role}{n}"
        user = users.create_user(UserCreate(username=name, email=f"{name}@example.com"))
        db.session.execute(
            update(User).where(User.id == user.id).values(password_hash=self.password_hash)
        )
        if group is not None:
            groups.add_member(group, user.id)
        return user.id, name, sessions.start_session(user.id, None)

    def make(self, principal: Principal) -> tuple[Targets, dict[str, str]]:
        """Fresh targets, and the principal's Authorization header (made for the call)."""
        n = next(_numbers)
        with self.app.app_context():
            owner_id, owner_name, owner_session = self._user(self.members, n, "owner")
            post = posts.create_post(owner_id, PostCreate(title="Mine", body="Text"))
            group = groups.create_group(GroupCreate(name=f"target{n}", scopes=[])).id
            token = self._caller(principal, n, owner_session)
            db.session.commit()
        webhook = make_webhook(self.app)
        delivery = make_delivery(self.app, webhook)
        targets = Targets(
            n,
            owner_id,
            owner_name,
            post.id,
            int(group),
            owner_session.session_id,
            owner_session.access_token,
            owner_session.refresh_token,
            webhook,
            delivery,
        )
        return targets, ({"Authorization": f"Bearer {token}"} if token else {})

    def _caller(self, principal: Principal, n: int, owner: sessions.Issued) -> str | None:
        if principal.key:
            return self.keys[next(iter(principal.scopes))]
        if principal.user is None:
            return None
        if principal.user == "owner":
            return owner.access_token
        group = {"other": self.members, "no-scopes": None}.get(principal.user, self.admins)
        user_id, _, issued = self._user(group, n, principal.user)
        if principal.user == "deactivated":
            # Only the flag: the user's sessions stay as they were, so the look-up must refuse.
            db.session.execute(update(User).where(User.id == user_id).values(active=False))
        if principal.user == "revoked":
            db.session.execute(
                update(UserSession)
                .where(UserSession.id == issued.session_id)
                .values(revoked_at=datetime.now(UTC))
            )
        return issued.access_token


def _url(operation: Operation, targets: Targets) -> str:
    return operation.path.format(
        user_id=targets.user_id,
        post_id=targets.post_id,
        group_id=targets.group_id,
        session_id=targets.session_id,
        webhook_id=targets.webhook_id,
        delivery_id=targets.delivery_id,
    )


def _call(
    client: FlaskClient, operation: Operation, rule: Rule, world: World, principal: Principal
) -> int:
    targets, headers = world.make(principal)
    body = rule.body(targets)
    if isinstance(body, bytes):
        headers["Content-Type"] = "application/x-ndjson"
        response = client.open(
            _url(operation, targets), method=operation.method, data=body, headers=headers
        )
    else:
        response = client.open(
            _url(operation, targets), method=operation.method, json=body, headers=headers
        )
    response.close()  # a streamed export gives back its slot
    return response.status_code


def test_every_operation_in_the_document_has_a_rule(app: Flask) -> None:
    named = {operation.operation_id for operation in document_operations(app)}
    assert sorted(named - set(RULES)) == [], "operations without a rule in RULES"
    assert sorted(set(RULES) - named) == [], "rules for operations the document lacks"


@pytest.fixture
def world(app: Flask) -> World:
    return World(app)


def test_every_principal_gets_the_status_its_rule_predicts(app: Flask, world: World) -> None:
    client = app.test_client()
    wrong = []
    operations = document_operations(app)
    for operation in operations:
        rule = RULES.get(operation.operation_id)
        if rule is None:
            wrong.append(f"{operation.operation_id}: no rule")
            continue
        for principal in PRINCIPALS:
            want = expected_status(rule, operation.needed, principal)
            got = _call(client, operation, rule, world, principal)
            if got != want:
                wrong.append(f"{operation.operation_id} by {principal.name}: {got}, not {want}")
    assert wrong == []
    assert len(operations) * len(PRINCIPALS) >= 35 * 15  # the matrix did run, all of it
