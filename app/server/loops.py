"""Where async views run: long-lived event loops (this module knows no database).

Flask runs each coroutine view through asgiref by default: a new event loop per request,
~4x the CPU of a sync view, and nothing (an asyncpg pool) can outlive a request. Here
each WSGI thread keeps one loop for its lifetime and drives it itself, so a request costs
no thread hop; what several requests share (the asyncpg pool) lives on one process loop.
That loop serves one request at a time, which is what lets ``app.db.session.run_db`` skip
its own thread hop when the view has nothing else in flight.
"""

import asyncio
import atexit
import contextlib
import contextvars
import logging
import os
import queue
import threading
import weakref
from collections.abc import Callable, Coroutine
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

log = logging.getLogger(__name__)

_thread_state = threading.local()
# Every live thread's loop, to close at exit; a loop leaves it with its thread.
_live_loops: "weakref.WeakSet[_ThreadLoop]" = weakref.WeakSet()


class _TaskCount:
    """The unfinished tasks of one loop, counted as they start and end.

    ``asyncio.all_tasks()`` walks every task of every thread's loop: three calls a request
    were ~25 us of a ~750 us GET (py-spy, in process), and more with more threads.
    """

    def __init__(self) -> None:
        self.alive = 0

    def factory(
        self, loop: asyncio.AbstractEventLoop, coro: Any, /, **kwargs: Any
    ) -> "asyncio.Task[Any]":
        """Make a task as the loop would, and count it until it is done."""
        task = asyncio.Task(coro, loop=loop, **kwargs)
        self.alive += 1
        task.add_done_callback(self._done)
        return task

    def _done(self, _task: "asyncio.Task[Any]") -> None:
        self.alive -= 1


def tasks_alive() -> int:
    """How many tasks of the running loop have not finished (counted on thread loops)."""
    return _unfinished(asyncio.get_running_loop())


def _unfinished(loop: asyncio.AbstractEventLoop) -> int:
    held: _ThreadLoop | None = getattr(_thread_state, "held", None)
    if held is not None and held.loop is loop:
        return held.tasks.alive
    return len(asyncio.all_tasks(loop))


class _ThreadLoop:
    """A thread's own loop, closed when the thread ends and drops its thread-local state.

    The threaded dev server (``flask run``) starts a thread per request: a loop kept after
    its thread was 3 file descriptors (selector and self-pipe) lost per request, and the
    server failed with "Too many open files" at request 338 under ``ulimit -n 1024``.
    """

    def __init__(self, debug: bool) -> None:
        self.loop = asyncio.new_event_loop()
        self.tasks = _TaskCount()
        # The factory holds the count, not this object: a cycle through the loop would keep
        # the loop (and its descriptors) past its thread until the garbage collector ran.
        self.loop.set_task_factory(self.tasks.factory)
        self.pid = os.getpid()
        if debug:
            # Debug mode logs any step of a coroutine that blocks the loop for 100 ms or more.
            self.loop.set_debug(True)
            self.loop.slow_callback_duration = 0.1
        _live_loops.add(self)

    def close(self, *, finish_generators: bool = False) -> None:
        """Close the loop unless it is running or already closed (or belongs to a parent)."""
        if self.pid == os.getpid() and not self.loop.is_closed() and not self.loop.is_running():
            if finish_generators:
                self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()

    def __del__(self) -> None:
        self.close()


def thread_loop(debug: bool = False) -> asyncio.AbstractEventLoop:
    """Return this thread's long-lived event loop, made on first use (after any fork)."""
    held: _ThreadLoop | None = getattr(_thread_state, "held", None)
    if held is None or held.loop.is_closed() or held.pid != os.getpid():
        held = _ThreadLoop(debug)
        _thread_state.held = held
    return held.loop


def run_coroutine(
    debug: bool, func: Callable[P, Coroutine[Any, Any, T]], /, *args: P.args, **kwargs: P.kwargs
) -> T:
    """Run a coroutine function to completion on this thread's long-lived loop.

    The task copies the current context, so Flask's request and app contexts carry over.
    With ``debug``, the loop reports any step that blocks it (tests set ASYNC_DEBUG).
    """
    if asyncio._get_running_loop() is not None:
        # Called from inside a running loop (an async test, say): that loop cannot be
        # re-entered, so run on a fresh loop in a helper thread, with this context.
        context = contextvars.copy_context()
        with ThreadPoolExecutor(max_workers=1) as executor:
            return executor.submit(context.run, asyncio.run, func(*args, **kwargs)).result()
    loop = thread_loop(debug)
    try:
        return loop.run_until_complete(func(*args, **kwargs))
    finally:
        _drain(loop)


def _drain(loop: asyncio.AbstractEventLoop) -> None:
    # A view that raised may leave tasks behind (a gather's siblings). They must end before
    # the request's teardown removes the session one of them may be using: cancel them and
    # wait, which waits for any worker thread still on the session (see run_db).
    if _unfinished(loop):
        loop.run_until_complete(_cancel_leftovers())


async def _cancel_leftovers() -> None:
    # Cancel every other task on the running loop and wait for each to end: after a view,
    # and before a background loop closes (a driver's cancel request to a server that went
    # away would otherwise be destroyed pending).
    leftovers = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in leftovers:
        task.cancel()
    await asyncio.gather(*leftovers, return_exceptions=True)


class BackgroundLoop:
    """One event loop per process on a daemon thread, for what requests share (a pool)."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._pid = 0

    @property
    def running(self) -> bool:
        """Whether the loop runs in this process (it starts on first use)."""
        with self._lock:
            return self._loop is not None and self._pid == os.getpid()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The running loop, started on first use in this process."""
        with self._lock:
            if self._loop is None or self._pid != os.getpid():
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name=self._name, daemon=True)
                thread.start()
                self._loop, self._thread, self._pid = loop, thread, os.getpid()
            return self._loop

    def submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        """Schedule a coroutine on the background loop from any thread."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await a coroutine that must run on the background loop, from another loop."""
        return await asyncio.wrap_future(self.submit(coro))

    def stop(self, cleanup: Callable[[], Coroutine[Any, Any, None]] | None = None) -> None:
        """Run the cleanup on the loop, then stop and close it."""
        with self._lock:
            loop, thread = self._loop, self._thread
            if loop is None or thread is None or self._pid != os.getpid():
                return
            self._loop = self._thread = None
        for step in (cleanup, _cancel_leftovers):
            if step is None:
                continue
            try:
                asyncio.run_coroutine_threadsafe(step(), loop).result(timeout=10)
            except Exception:
                log.warning("cleanup on the %s loop failed", self._name, exc_info=True)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


_Call = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[..., Any], tuple[Any, ...]]


class AppThreads:
    """The server's threads for the app: a call handed over from the event loop, its result
    handed back, one wake-up of the loop each way and nothing else in between.

    ``loop.run_in_executor`` goes through a concurrent.futures Future (a condition variable,
    a work item, a semaphore to size the pool) chained to an asyncio future by callbacks: a
    round trip of a no-op took 74 us of CPU against 35 here (bench/hops.py, one run).
    """

    def __init__(self, count: int, name: str) -> None:
        self._count = count
        self._name = name
        self._calls: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def run(self, func: Callable[..., T], /, *args: Any) -> "asyncio.Future[T]":
        """Run ``func(*args)`` on one of the threads; await the result on the running loop."""
        if not self._threads:
            self._start()  # on first use: in the process (after any fork) that uses them
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._calls.put((loop, future, func, args))
        return future

    def _start(self) -> None:
        with self._lock:
            while len(self._threads) < self._count:
                name = f"{self._name}_{len(self._threads)}"
                thread = threading.Thread(target=self._serve, name=name, daemon=True)
                thread.start()
                self._threads.append(thread)

    def _serve(self) -> None:
        while (call := self._calls.get()) is not None:
            loop, future, func, args = call
            try:
                result = func(*args)
            except BaseException as exc:  # handed to the awaiting task, as an executor does
                _hand_back(loop, _fail, future, exc)
            else:
                _hand_back(loop, _settle, future, result)
                del result
            # Nothing of a request outlives it on an idle thread (its environ, its answer).
            del call, future, func, args

    def shutdown(self) -> None:
        """Let each thread end after the calls queued before this; wait for them."""
        with self._lock:
            threads, self._threads = self._threads, []
        for _ in threads:
            self._calls.put(None)
        for thread in threads:
            thread.join()


def _hand_back(loop: asyncio.AbstractEventLoop, how: Callable[..., None], *args: Any) -> None:
    # The loop closed meanwhile (RuntimeError): nobody awaits the result any more.
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(how, *args)


def _settle(future: "asyncio.Future[Any]", result: Any) -> None:
    if not future.done():  # cancelled meanwhile (the client went away)
        future.set_result(result)


def _fail(future: "asyncio.Future[Any]", exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)


def _close_thread_loops() -> None:
    for held in list(_live_loops):
        held.close(finish_generators=True)


atexit.register(_close_thread_loops)
