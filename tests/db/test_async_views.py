"""Async views on long-lived loops: real fan-out, pooled asyncpg, and blocking caught."""

import asyncio
import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from flask import Blueprint, Flask, jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy import func, literal_column, select

from app import create_app
from app.config import Settings
from app.db import asyncpg_pool
from app.db.session import db, run_db
from app.web.auth import public
from tests.helpers import assert_nothing_checked_out

SLEEP = 0.15  # 0.05 s once missed by 1 ms at load 10: the reads must overlap
TIMELINE: list[str] = []


def _probe_blueprint() -> Blueprint:
    bp = Blueprint("probe", __name__, url_prefix="/probe")

    @bp.get("/sleepers")
    @public
    async def sleepers() -> ResponseReturnValue:
        spans: list[tuple[float, float]] = []

        async def sleeper() -> None:
            start = time.monotonic()
            await asyncio.sleep(SLEEP)
            spans.append((start, time.monotonic()))

        began = time.monotonic()
        await asyncio.gather(*(sleeper() for _ in range(5)))
        return jsonify(spans=spans, elapsed=time.monotonic() - began)

    @bp.get("/loop")
    @public
    async def loop_identity() -> ResponseReturnValue:
        return jsonify(loop=id(asyncio.get_running_loop()), thread=threading.get_ident())

    @bp.get("/fanout")
    @public
    async def fanout() -> ResponseReturnValue:
        active = {"now": 0, "most": 0}
        sessions: set[int] = set()

        def session_work() -> int:
            active["now"] += 1
            active["most"] = max(active["most"], active["now"])
            sessions.add(id(db.session()))
            time.sleep(0.01)
            count = db.session.execute(
                select(func.count()).select_from(db.metadata.tables["user_account"])
            ).scalar_one()
            active["now"] -= 1
            return int(count)

        read = select(
            func.pg_backend_pid(),
            func.clock_timestamp(),
            literal_column(f"pg_sleep({SLEEP})").label("slept"),
            func.clock_timestamp(),
        )
        results = await asyncio.gather(
            *(asyncpg_pool.fetch(read) for _ in range(3)), *(run_db(session_work) for _ in range(3))
        )
        rows = [r[0] for r in results[:3]]  # type: ignore[index]
        return jsonify(
            pids=[row[0] for row in rows],
            spans=[[row[1].timestamp(), row[3].timestamp()] for row in rows],
            most_active_session_calls=active["most"],
            sessions=len(sessions),
        )

    @bp.get("/gather-fails")
    @public
    async def gather_fails() -> ResponseReturnValue:
        def fail() -> None:
            raise RuntimeError("first call fails")

        def slow() -> None:
            time.sleep(0.2)
            db.session.execute(select(1))
            TIMELINE.append("slow call done")

        await asyncio.gather(run_db(fail), run_db(slow))
        return jsonify(done=True)

    @bp.teardown_request
    def record_teardown(_: BaseException | None) -> None:
        TIMELINE.append("teardown")

    @bp.get("/blocking")
    @public
    async def blocking() -> ResponseReturnValue:
        time.sleep(0.15)  # noqa: ASYNC251 - the mistake this test must catch
        return jsonify(done=True)

    @bp.get("/sql-on-loop")
    @public
    async def sql_on_loop() -> ResponseReturnValue:
        db.session.execute(select(1))  # the mistake: no run_db
        return jsonify(done=True)

    return bp


@pytest.fixture(scope="module")
def probe_app(
    app: Flask, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Flask]:
    """The real app plus probe views, on this backend's database (migrated by ``app``)."""
    application = create_app(
        Settings(
            DATABASE_URL=database_url,
            ASYNC_DEBUG=True,
            INSTANCE_PATH=tmp_path_factory.mktemp("probe"),
            # One process: 50 requests at once need its whole share of connections.
            WEB_CONCURRENCY=1,
        )
    )
    application.register_blueprint(_probe_blueprint())
    yield application
    with application.app_context():
        for engine in db.engines.values():
            engine.dispose()


def test_gathered_awaits_run_at_once(probe_app: Flask) -> None:
    body = probe_app.test_client().get("/probe/sleepers").get_json()
    spans = body["spans"]
    assert len(spans) == 5
    # Every sleeper started before any finished: they overlapped, not ran one by one.
    assert max(start for start, _ in spans) < min(end for _, end in spans)
    # Sequential would take five sleeps; report the figure rather than time-assert it.
    logging.getLogger(__name__).info("five gathered awaits took %.1f ms", body["elapsed"] * 1000)


def test_a_thread_keeps_one_loop_across_requests(probe_app: Flask) -> None:
    client = probe_app.test_client()
    seen = {tuple(client.get("/probe/loop").get_json().values()) for _ in range(5)}
    assert len(seen) == 1, "a new event loop per request"


def test_loops_of_different_threads_differ(probe_app: Flask) -> None:
    def loop_id() -> int:
        return int(probe_app.test_client().get("/probe/loop").get_json()["loop"])

    with ThreadPoolExecutor(max_workers=1) as other:
        assert other.submit(loop_id).result() != loop_id()


def test_blocking_step_in_a_coroutine_is_reported(
    probe_app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="asyncio"):
        assert probe_app.test_client().get("/probe/blocking").status_code == 200
    assert any(
        r.name == "asyncio" and "Executing" in r.getMessage() and "took" in r.getMessage()
        for r in caplog.records
    ), [r.getMessage() for r in caplog.records]


def test_sql_on_the_loop_thread_is_refused(
    probe_app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        response = probe_app.test_client().get("/probe/sql-on-loop")
    assert response.status_code == 500
    assert "run_db" not in response.get_data(as_text=True)
    assert any("wrap the call in run_db" in str(r.exc_info) for r in caplog.records)


@pytest.mark.asyncio
async def test_test_client_works_inside_an_async_test(probe_app: Flask) -> None:
    # asgiref fails here ("cannot use AsyncToSync in the same thread as an event loop").
    response = probe_app.test_client().get("/probe/sleepers")
    assert response.status_code == 200


def _assert_nothing_checked_out(app: Flask) -> None:
    assert_nothing_checked_out(app)
    if "asyncpg" in app.extensions:
        assert app.extensions["asyncpg"].stats()[1] == 0


@pytest.mark.postgresql_only("asyncpg serves PostgreSQL only")
def test_fanout_reads_run_at_once_on_separate_connections(probe_app: Flask) -> None:
    body = probe_app.test_client().get("/probe/fanout").get_json()
    assert len(set(body["pids"])) == 3, "the reads shared a connection"
    spans = body["spans"]
    assert max(start for start, _ in spans) < min(end for _, end in spans), "reads ran in turn"
    # Meanwhile the request's own session was used by one call at a time, one session.
    assert body["most_active_session_calls"] == 1
    assert body["sessions"] == 1
    _assert_nothing_checked_out(probe_app)


@pytest.mark.postgresql_only("asyncpg serves PostgreSQL only")
def test_50_concurrent_fanout_requests_leave_no_connection_checked_out(probe_app: Flask) -> None:
    def call(_: int) -> tuple[int, Any]:
        response = probe_app.test_client().get("/probe/fanout")
        return response.status_code, response.get_json()

    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(call, range(50)))
    assert [status for status, _ in results] == [200] * 50
    assert all(body["most_active_session_calls"] == 1 for _, body in results)
    _assert_nothing_checked_out(probe_app)


@pytest.mark.postgresql_only("asyncpg serves PostgreSQL only")
def test_asyncpg_pool_serves_many_requests_and_is_made_once(probe_app: Flask) -> None:
    client = probe_app.test_client()
    assert client.get("/readyz").status_code == 200  # makes the pool if not made yet
    made = asyncpg_pool.pools_created
    for _ in range(200):
        assert client.get("/readyz").status_code == 200

    def ready(_: int) -> int:
        return probe_app.test_client().get("/readyz").status_code

    with ThreadPoolExecutor(max_workers=50) as pool:
        assert list(pool.map(ready, range(50))) == [200] * 50
    assert asyncpg_pool.pools_created == made, "a second pool was made"
    _assert_nothing_checked_out(probe_app)


def test_probe_app_fixture_uses_a_separate_instance(probe_app: Flask) -> None:
    assert Path(probe_app.instance_path).name.startswith("probe")


def test_failed_gather_waits_for_its_other_calls_before_teardown(probe_app: Flask) -> None:
    TIMELINE.clear()
    response = probe_app.test_client().get("/probe/gather-fails")
    assert response.status_code == 500
    # The sibling call may run or be cancelled, but never outlives the request's session.
    assert TIMELINE[-1] == "teardown", TIMELINE
