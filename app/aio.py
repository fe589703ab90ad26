"""Running blocking database work from async views without losing the request's session."""

import asyncio
import contextvars
import functools
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import ParamSpec, TypeVar, cast

from flask import current_app, g

from app.extensions import db

P = ParamSpec("P")
T = TypeVar("T")

_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def _get_executor() -> ThreadPoolExecutor:
    # Created lazily so a forking server (gunicorn) makes it in each worker, after the fork.
    global _executor  # noqa: PLW0603
    with _executor_lock:
        if _executor is None:
            size = int(current_app.config.get("DB_OFFLOAD_THREADS", 32))
            _executor = ThreadPoolExecutor(max_workers=size, thread_name_prefix="db")
        return _executor


def _session_lock() -> asyncio.Lock:
    lock: asyncio.Lock | None = g.get("_db_session_lock")
    if lock is None:
        lock = asyncio.Lock()
        g._db_session_lock = lock
    return lock


async def run_db(fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """Run blocking DB work in a worker thread on the request's own scoped session.

    The call sees the request's context (so ``db.session`` is the request's session) and
    calls of one request run one at a time, even when a view gathers several of them.
    """
    context = contextvars.copy_context()
    call = functools.partial(context.run, fn, *args, **kwargs)
    async with _session_lock():
        future: Future[T] = _get_executor().submit(call)
        wrapped = asyncio.wrap_future(future)
        try:
            return await asyncio.shield(wrapped)
        except asyncio.CancelledError:
            # A thread cannot be interrupted: hold the lock until it is done with the session.
            while not future.done():
                try:
                    await asyncio.wait([wrapped])
                except asyncio.CancelledError:
                    continue
            raise


def _call_and_commit(fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    result = fn(*args, **kwargs)
    db.session.commit()
    return result


async def run_db_commit(fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """Like run_db, then commit in the same thread hop: a view's one write transaction."""
    return cast(T, await run_db(_call_and_commit, fn, *args, **kwargs))
