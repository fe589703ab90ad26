"""Places for long requests: so many a process, so many a caller."""

import pytest

from app.errors import ServiceUnavailableError
from app.web.slots import Slots


def test_a_caller_gets_its_share_and_no_more() -> None:
    slots = Slots("exports", per_process=3, per_key=2)
    first = slots.take("user:1")
    slots.take("user:1")

    with pytest.raises(ServiceUnavailableError, match="as many as it may"):
        slots.take("user:1")
    slots.take("key:1")  # a key of the same number is another caller
    with pytest.raises(ServiceUnavailableError, match=r"as many .* as it takes"):
        slots.take("key:2")

    first.give_back()
    first.give_back()  # twice gives back once
    slots.take("user:1")
    with pytest.raises(ServiceUnavailableError):
        slots.take("user:1")
