"""Bounded concurrency for long requests (exports): so many at once in a process, so many
per caller (an API key, or a signed-in user whatever their session), the rest refused at
once with a 503 problem and Retry-After, not queued."""

import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from flask import current_app

from app.errors import ServiceUnavailableError


@dataclass
class Slots:
    """Places for one kind of long request in this process."""

    what: str
    per_process: int
    per_key: int
    _taken: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, caller: str) -> "Slot":
        """Take a place for the caller's request, or raise ServiceUnavailableError."""
        with self._lock:
            if self._taken[caller] >= self.per_key:
                raise ServiceUnavailableError(
                    f"This credential has {self.per_key} {self.what} in progress, as many as it "
                    "may; try again when one has ended."
                )
            if self._taken.total() >= self.per_process:
                raise ServiceUnavailableError(
                    f"The server has as many {self.what} in progress as it takes; try again."
                )
            self._taken[caller] += 1
        return Slot(self, caller)

    def _give_back(self, caller: str) -> None:
        with self._lock:
            self._taken[caller] -= 1
            if not self._taken[caller]:
                del self._taken[caller]


class Slot:
    """One taken place; giving it back twice gives it back once."""

    def __init__(self, slots: Slots, caller: str) -> None:
        self._slots: Slots | None = slots
        self._caller = caller

    def give_back(self) -> None:
        """Free the place (the request ended, however)."""
        slots, self._slots = self._slots, None
        if slots is not None:
            slots._give_back(self._caller)


def slots_for(what: str, per_process: int, per_key: int) -> Slots:
    """This app's slots for ``what`` (made on first use)."""
    name = f"slots:{what}"
    found: Slots | None = current_app.extensions.get(name)
    if found is None:  # made once, not (as setdefault's argument would be) every request
        found = current_app.extensions.setdefault(name, Slots(what, per_process, per_key))
    return found


def giving_back(chunks: Iterator[bytes], slot: Slot) -> Iterator[bytes]:
    """Yield the streamed body's chunks; give the slot back however the stream ends."""
    try:
        yield from chunks
    finally:
        slot.give_back()
