"""Turns: requests that wait, on the event loop, for one of a few places before they take an
app thread (sign-ins, which hold one while Argon2 runs).

Refused at once when every place was taken (the app's own admission, app.services.passwords),
a flood of sign-ins from a few clients came straight back: 16 clients sent ~300 requests a
second, each 503 a whole trip through an app thread and the pipeline, and GET /users/{id}
beside them went from 2.3 ms to 31 ms at the median, 23 to 229 ms at p99, 2,186 reads in 5 s
to 277 (``python -m bench.sign_in --flood``, 2 processes x 4 threads). Waiting here costs a
coroutine, not a thread, and a client that waits sends nothing more meanwhile: the flood
then runs at the pace of the hashing, and the other app threads serve everything else. Past
``queue`` waiting, or after ``wait`` seconds, the answer is the same 503 with Retry-After,
sent from the loop.
"""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class TurnRules:
    """Which requests take turns, and how many at once, waiting, and for how long."""

    routes: frozenset[tuple[str, str]]  # (method, path) as the scope gives them
    places: int  # served at once, in this process
    queue: int  # waiting at most, in this process; past it refused at once
    wait: float  # seconds one waits at most before it is refused
    refusal: str  # the 503's detail, as the app words it


class NoTurnError(Exception):
    """No place came: the queue was full, or the wait too long; ``detail`` the 503's."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class Turns:
    """One process's places for the requests of ``rules``, handed out in arrival order."""

    def __init__(self, rules: TurnRules) -> None:
        self.rules = rules
        self._places = asyncio.Semaphore(rules.places)
        self._waiting = 0

    def applies(self, method: str, path: str) -> bool:
        """Whether this request takes turns."""
        return (method, path) in self.rules.routes

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """Hold a place while the app answers (its body already read); NoTurnError if none came."""
        if self._places.locked():
            if self._waiting >= self.rules.queue:
                raise NoTurnError(self.rules.refusal)
            self._waiting += 1
            try:
                await asyncio.wait_for(self._places.acquire(), self.rules.wait)
            except TimeoutError:
                raise NoTurnError(self.rules.refusal) from None
            finally:
                self._waiting -= 1
        else:
            await self._places.acquire()
        try:
            yield
        finally:
            self._places.release()
