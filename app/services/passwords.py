"""Passwords: the NIST SP 800-63B rules, Argon2id hashes, and hashing bounded off the loop.

Rules (SP 800-63B 5.1.1.2): 8 to 128 characters, counted in code points after NFC (the form
stored and hashed, so "é" typed either way is one password), no composition rules, no
silent truncation (a longer one is refused, never cut), and not one of the common passwords
in ``data/common_passwords.txt``: the 8,354 entries of 8 characters or more of Royce
Williams' list of the 20,000 most common (lowercased, as Django ships it), compared without
letter case.

Hashes: Argon2id through pwdlib at OWASP's parameters (19 MiB, 2 passes, 1 lane): ~21 ms
of CPU a hash on this project's 2-CPU machine, against ~190 ms at pwdlib's defaults (64 MiB,
3 passes, 4 lanes). A stored hash made with other parameters is replaced at the next
successful sign-in (``verify_and_update``).

Hashing runs on threads of its own, never on an event loop and never on the request's
database session: at most ``threads`` at once a process (the CPUs shared among the server's
processes) and ``QUEUED_PER_THREAD`` waiting each, and never more sign-ins hashing or
waiting than half the process's app threads (WEB_THREADS), since each holds one while it
waits; past that a 503 with Retry-After at once, so a flood of sign-ins is refused rather
than stalling everything else. (``python -m bench.sign_in --flood``, 2 processes x 4 app
threads, 16 clients sending wrong passwords: with 9 admitted a process they took every app
thread, and GET /users/{id}'s p99 went from 26 ms alone to 760 ms, 42 reads in 5 s; with
2 admitted, 15 ms to 160 ms, 227 reads, the rest of the flood 503s.) Under the shipped
server, sign-ins past those places wait their turn on the event loop (app.server.turns), and
the hashes run at idle CPU priority (``yield_to_requests``), so requests come first.
"""

import asyncio
import functools
import logging
import os
import threading
import unicodedata
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from typing import ParamSpec, TypeVar

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from app.config import Settings, available_cpus, current_settings
from app.errors import ServiceUnavailableError, UnprocessableError

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

MIN_LENGTH = 8
MAX_LENGTH = 128
TIME_COST = 2
MEMORY_COST_KIB = 19 * 1024
PARALLELISM = 1
QUEUED_PER_THREAD = 8

_HASHER = PasswordHash((Argon2Hasher(TIME_COST, MEMORY_COST_KIB, PARALLELISM),))


@functools.cache
def common_passwords() -> frozenset[str]:
    """The blocklist shipped with the package, lowercased."""
    text = resources.files("app.services").joinpath("data/common_passwords.txt").read_text("utf-8")
    return frozenset(line for line in text.splitlines() if line)


def _refused(field: str, rule: str, message: str) -> UnprocessableError:
    error = {"loc": ["body", field], "msg": message, "type": rule}
    return UnprocessableError(f"The {field} is refused: {message}", errors=[error])


def checked_password(password: str, field: str = "password") -> str:
    """Return the password in NFC, or raise a 422 naming the rule it breaks."""
    normal = unicodedata.normalize("NFC", password)
    if len(normal) < MIN_LENGTH:
        raise _refused(field, "password_too_short", f"at least {MIN_LENGTH} characters.")
    if len(normal) > MAX_LENGTH:
        raise _refused(field, "password_too_long", f"at most {MAX_LENGTH} characters.")
    if normal.lower() in common_passwords():
        raise _refused(field, "password_common", "it is one of the most common passwords.")
    return normal


def hash_password(password: str) -> str:
    """Hash a password checked by checked_password (blocking: ~21 ms of CPU)."""
    return _HASHER.hash(password)


@functools.cache
def _dummy_hash() -> str:
    return _HASHER.hash("not anybody's password")


def verify_and_update(password: str, stored: str | None) -> tuple[bool, str | None]:
    """Whether the password matches ``stored``, and its new hash if the parameters changed.

    Without a stored hash (unknown user, no password set) a dummy hash is verified, so the
    answer takes as long as a wrong password's (blocking).
    """
    normal = unicodedata.normalize("NFC", password)
    if stored is None:
        _HASHER.verify(normal, _dummy_hash())
        return False, None
    return _HASHER.verify_and_update(normal, stored)


class HashingBusyError(ServiceUnavailableError):
    """Every hashing thread of this process is busy and its queue is full."""

    def __init__(self) -> None:
        super().__init__("Too many sign-ins at once: try again in a second (Retry-After).")


class Hashing:
    """This process's hashing threads, made on first use (and again after a fork)."""

    def __init__(self, threads: int | None = None, admitted: int | None = None) -> None:
        # None: the CPUs shared among the server's processes (threads_per_process), and
        # what admitted_per_process allows with the app's WEB_THREADS.
        self._threads = threads
        self._admitted_at_most = admitted
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._admitted: threading.BoundedSemaphore | None = None
        self._pid = 0

    def _ready(self) -> tuple[ThreadPoolExecutor, threading.BoundedSemaphore]:
        with self._lock:
            if self._executor is None or self._admitted is None or self._pid != os.getpid():
                threads, admitted = self._sizes()
                self._executor = ThreadPoolExecutor(
                    threads, thread_name_prefix="hash", initializer=yield_to_requests
                )
                self._admitted = threading.BoundedSemaphore(admitted)
                self._pid = os.getpid()
            return self._executor, self._admitted

    def _sizes(self) -> tuple[int, int]:
        if self._threads is not None:
            return self._threads, self._admitted_at_most or self._threads * (1 + QUEUED_PER_THREAD)
        return sizes(current_settings())

    def admit(self) -> "Admission":
        """A place among this process's admitted sign-ins, or a 503 at once when none is
        left: taken before anything else a sign-in does, so a refused one costs nothing
        more (not even its account's lookup)."""
        executor, admitted = self._ready()
        if not admitted.acquire(blocking=False):
            raise HashingBusyError
        return Admission(executor, admitted)

    async def run(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn`` on a hashing thread (it must not touch db.session); 503 when full."""
        with self.admit() as admission:
            return await admission.run(fn, *args, **kwargs)


class Admission:
    """An admitted sign-in's place: used by one hash, which gives it back when it is done
    (even if its request is cancelled: the hash goes on, holding the place), or given back
    on leaving the ``with`` block unused."""

    def __init__(self, executor: ThreadPoolExecutor, admitted: threading.BoundedSemaphore) -> None:
        self._executor = executor
        self._admitted = admitted
        self._held = True

    def __enter__(self) -> "Admission":
        return self

    def __exit__(self, *_: object) -> None:
        if self._held:
            self._held = False
            self._admitted.release()

    async def run(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn`` on a hashing thread, once per admission."""
        if not self._held:
            msg = "this admission has been used or given back"
            raise RuntimeError(msg)
        # No context copied: the thread sees no request, app or session of ours.
        future = self._executor.submit(functools.partial(fn, *args, **kwargs))
        self._held = False  # from here the hash gives the place back, whenever it ends
        future.add_done_callback(lambda _future: self._admitted.release())
        # Shielded: a cancelled request leaves its hash to finish, holding its place.
        return await asyncio.shield(asyncio.wrap_future(future))


def yield_to_requests() -> None:
    """Run this hashing thread at idle priority (SCHED_IDLE): a request's thread that wakes
    preempts a hash at once, where at normal priority it waited for the hash's time slice.
    Hashing then gets the CPU requests leave; the turns bound how long a sign-in waits for it.

    SCHED_IDLE rather than a nice value: the kernel preempts an idle-policy thread whenever a
    normal one wakes on its CPU ("idle tasks are by definition preempted by non-idle tasks",
    kernel/sched/fair.c), where a niced one keeps a share by weight; nice 19 did not measurably
    lower the reads' p99 (``python -m bench.sign_in --flood``, docs/explanation/benchmarks.md).
    Lowering one's own priority needs no privilege; where the call is missing (not Linux) or
    refused (a sandbox's seccomp rules), hashes run at normal priority: a failing initializer
    would break the pool and every sign-in with it.
    """
    if hasattr(os, "SCHED_IDLE"):
        try:
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        except OSError:
            log.warning("password hashing runs at normal CPU priority: SCHED_IDLE was refused")


def sizes(settings: Settings) -> tuple[int, int]:
    """This process's hashing threads, and the sign-ins it admits at once (the bridge's
    turns give as many places: app.web.admission)."""
    threads = threads_per_process(settings.WEB_CONCURRENCY)
    return threads, admitted_per_process(threads, settings.WEB_THREADS)


def admitted_per_process(threads: int, app_threads: int) -> int:
    """Sign-ins at once in a process, hashing or waiting: each holds a thread (under the
    shipped server one of the turns' own, app.server.bridge), so at most half as many as the
    app's (the rest serve everything else), yet one per hashing thread at least."""
    return max(threads, min(threads * (1 + QUEUED_PER_THREAD), app_threads // 2))


def threads_per_process(processes: int) -> int:
    """The CPUs shared among the server's processes, at least one each."""
    return max(1, available_cpus() // max(1, processes))


hashing = Hashing()
