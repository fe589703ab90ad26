"""run_db: the request's own session, one thread at a time, even when gathered or cancelled."""

import asyncio
import threading
import time

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.session import autocommit, db, run_db
from app.models import User
from app.schemas.users import UserCreate
from app.services import users
from tests.factories import make_user
from tests.helpers import assert_nothing_checked_out


class _Probe:
    """Records which session each call saw and how many ran at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.active = 0
        self.most_active = 0
        # Kept alive so that no two sessions can share an id() (an address reused after GC).
        self.session_objects: list[Session] = []
        self.threads: set[int] = set()

    @property
    def sessions(self) -> set[int]:
        """The distinct sessions the calls saw."""
        return {id(session) for session in self.session_objects}

    def work(self, user_id: int, pause: float) -> str:
        with self.lock:
            self.active += 1
            self.most_active = max(self.most_active, self.active)
        try:
            session: Session = db.session()
            self.session_objects.append(session)
            self.threads.add(threading.get_ident())
            time.sleep(pause)
            name = db.session.execute(select(User.username).where(User.id == user_id)).scalar_one()
            return name
        finally:
            with self.lock:
                self.active -= 1


def test_gathered_calls_share_the_request_session_one_at_a_time(app: Flask) -> None:
    user = make_user(app)
    probe = _Probe()

    async def view() -> list[str]:
        return await asyncio.gather(*(run_db(probe.work, user.id, 0.02) for _ in range(8)))

    with app.test_request_context():
        request_session = id(db.session())
        names = asyncio.run(view())
        assert names == [user.username] * 8
    assert probe.sessions == {request_session}
    assert probe.most_active == 1
    assert threading.get_ident() not in probe.threads


def test_cancelled_call_keeps_the_session_until_its_thread_ends(app: Flask) -> None:
    user = make_user(app)
    probe = _Probe()

    async def fail_soon() -> None:
        await asyncio.sleep(0.01)
        raise RuntimeError("sibling failed")

    async def view() -> None:
        slow = asyncio.ensure_future(run_db(probe.work, user.id, 0.2))
        with pytest.raises(RuntimeError):
            await asyncio.gather(slow, fail_soon())
        slow.cancel()
        # Called while the cancelled call's thread may still be running.
        await asyncio.gather(*(run_db(probe.work, user.id, 0) for _ in range(3)))

    with app.test_request_context():
        asyncio.run(view())
    assert probe.most_active == 1


def test_two_requests_get_two_sessions(app: Flask) -> None:
    user = make_user(app)
    probe = _Probe()
    for _ in range(2):
        with app.test_request_context():
            asyncio.run(run_db(probe.work, user.id, 0))
    assert len(probe.sessions) == 2


def test_a_lone_call_runs_in_place_and_a_call_beside_a_sibling_is_offloaded(app: Flask) -> None:
    user = make_user(app)
    alone, beside = _Probe(), _Probe()

    async def view() -> int:
        await run_db(alone.work, user.id, 0)
        sibling = asyncio.ensure_future(asyncio.sleep(0.05))
        await run_db(beside.work, user.id, 0)
        await sibling
        return threading.get_ident()

    with app.test_request_context():
        request_session = id(db.session())
        loop_thread = asyncio.run(view())
    # Alone on its loop, a call has no one to block: it skips the thread hop.
    assert alone.threads == {loop_thread}
    assert beside.threads
    assert loop_thread not in beside.threads
    assert alone.sessions == beside.sessions == {request_session}


def test_autocommit_work_is_committed_and_its_connection_returned_at_once(app: Flask) -> None:
    async def view() -> int:
        async with autocommit():
            row = await run_db(users.create_user, UserCreate(username="ac", email="ac@x.io"))
        return int(row.id)

    with app.test_request_context():
        user_id = asyncio.run(view())
        # Still inside the request: the row is already visible to another connection,
        # and the autocommit engine has its connection back.
        with db.engine.connect() as other:
            seen = other.execute(select(User.id).where(User.id == user_id)).scalar_one_or_none()
        assert seen == user_id
        assert_nothing_checked_out(app)


def test_autocommit_work_joins_a_transaction_the_request_already_opened(app: Flask) -> None:
    async def view() -> int:
        await run_db(users.create_user, UserCreate(username="first", email="first@x.io"))
        async with autocommit():
            row = await run_db(users.create_user, UserCreate(username="then", email="t@x.io"))
        return int(row.id)

    with app.test_request_context():
        asyncio.run(view())
        db.session.rollback()
    with app.app_context():
        assert db.session.execute(select(User.id)).first() is None, "both writes rolled back"
