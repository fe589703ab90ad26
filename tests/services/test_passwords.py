"""Password rules (NIST SP 800-63B), Argon2id hashes, and the bounded hashing threads."""

import asyncio
import os
import threading
import unicodedata

import pytest
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from app.errors import UnprocessableError
from app.services import passwords
from app.services.passwords import (
    MAX_LENGTH,
    Hashing,
    HashingBusyError,
    checked_password,
    common_passwords,
    hash_password,
    verify_and_update,
)


def _rule(password: str) -> str:
    with pytest.raises(UnprocessableError) as refused:
        checked_password(password, "new_password")
    errors = refused.value.extensions["errors"]
    assert [error["loc"] for error in errors] == [["body", "new_password"]]
    # The submitted value is never echoed (checked where it cannot be part of the wording).
    if len(password) >= 8 and "password" not in password.lower():
        assert password not in str(refused.value.detail)
        assert password not in repr(errors)
    return str(errors[0]["type"])


@pytest.mark.parametrize(
    ("password", "rule"),
    [
        ("", "password_too_short"),
        ("seven c", "password_too_short"),
        # Eight code points as typed, four after NFC (e + combining acute is one é).
        ("e\u0301" * 4, "password_too_short"),
        ("x" * (MAX_LENGTH + 1), "password_too_long"),
        ("password", "password_common"),
        ("PassWord1", "password_common"),  # the list is compared without letter case
        ("iloveyou", "password_common"),
    ],
)
def test_refused_passwords_name_the_rule(password: str, rule: str) -> None:
    assert _rule(password) == rule


@pytest.mark.parametrize(
    "password",
    [
        "eight ch",  # no composition rules: spaces and lowercase only are fine
        "e\u0301" * MAX_LENGTH,  # 256 code points as typed, 128 after NFC
        "x" * MAX_LENGTH,
        "パスワードは長いほうがいい",
    ],
)
def test_accepted_passwords_come_back_in_nfc(password: str) -> None:

    assert checked_password(password) == unicodedata.normalize("NFC", password)


def test_the_blocklist_ships_with_the_package() -> None:
    blocked = common_passwords()
    assert len(blocked) > 8000
    assert all(len(entry) >= passwords.MIN_LENGTH for entry in blocked)
    assert "12345678" in blocked


def test_a_hash_verifies_only_its_own_password_and_is_argon2id() -> None:
    stored = hash_password("correct horse battery")
    assert stored.startswith("$argon2id$")
    assert "correct horse" not in stored
    assert verify_and_update("correct horse battery", stored) == (True, None)
    assert verify_and_update("correct horse batter", stored) == (False, None)


def test_nothing_is_truncated() -> None:
    long = "y" * MAX_LENGTH
    stored = hash_password(long)
    assert verify_and_update(long[:-1], stored)[0] is False
    assert verify_and_update(long[:72], stored)[0] is False  # bcrypt's cut


def test_a_password_typed_in_another_normal_form_matches() -> None:
    stored = hash_password(checked_password("caf\u00e9 au lait"))
    assert verify_and_update("cafe\u0301 au lait", stored)[0] is True


def test_a_hash_of_other_parameters_is_replaced_on_success() -> None:
    old = PasswordHash((Argon2Hasher(time_cost=1, memory_cost=8 * 1024, parallelism=1),))
    stored = old.hash("correct horse battery")

    ok, new = verify_and_update("correct horse battery", stored)

    assert ok is True
    assert new is not None
    assert f"m={passwords.MEMORY_COST_KIB},t={passwords.TIME_COST}" in new
    assert verify_and_update("correct horse battery", new) == (True, None)
    assert verify_and_update("wrong horse battery", stored) == (False, None)


def test_no_stored_hash_is_refused_after_a_dummy_verification() -> None:
    assert verify_and_update("anything at all", None) == (False, None)


def test_hashing_runs_off_the_loop_and_refuses_past_its_queue() -> None:
    pool = Hashing(threads=1)
    release = threading.Event()
    capacity = 1 + passwords.QUEUED_PER_THREAD

    async def flood() -> list[object]:
        loop_thread = threading.get_ident()
        blocked = [asyncio.ensure_future(pool.run(release.wait, 10)) for _ in range(capacity)]
        await asyncio.sleep(0)  # each has taken its place
        with pytest.raises(HashingBusyError):
            await pool.run(threading.get_ident)
        release.set()
        results: list[object] = list(await asyncio.gather(*blocked))
        # Once the queue drains, hashing is admitted again, on another thread.
        results.append(await pool.run(threading.get_ident) != loop_thread)
        return results

    assert asyncio.run(flood()) == [True] * (capacity + 1)


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="SCHED_IDLE is Linux's")
def test_hashes_run_at_idle_priority_and_requests_at_normal() -> None:
    pool = Hashing(threads=1)

    def policy() -> int:
        return os.sched_getscheduler(0)

    assert asyncio.run(pool.run(policy)) == os.SCHED_IDLE
    assert policy() == os.SCHED_OTHER  # the caller's own thread is left alone


def test_a_refused_priority_leaves_hashing_working_and_says_so(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def refused(*_: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "sched_setscheduler", refused)
    pool = Hashing(threads=1)
    assert asyncio.run(pool.run(hash_password, "correct horse battery")).startswith("$argon2id$")
    assert "normal CPU priority" in caplog.text


def test_an_admission_holds_its_place_until_its_hash_ends_or_it_is_given_back() -> None:
    pool = Hashing(threads=1, admitted=1)
    release = threading.Event()

    async def sign_ins() -> list[object]:
        with pool.admit() as unused, pytest.raises(HashingBusyError):
            pool.admit()
        assert unused is not None
        with pool.admit() as admission:
            hashing = asyncio.ensure_future(admission.run(release.wait, 10))
            await asyncio.sleep(0)
        # Out of the block, the hash still holds the place until it ends.
        with pytest.raises(HashingBusyError):
            pool.admit()
        release.set()
        results: list[object] = [await hashing]
        with pool.admit() as again:
            results.append(await again.run(lambda: "hashed"))
            with pytest.raises(RuntimeError, match="used"):
                await again.run(lambda: "twice")
        return results

    assert asyncio.run(sign_ins()) == [True, "hashed"]


def test_busy_hashing_is_a_503_with_retry_after() -> None:
    error = HashingBusyError()
    assert error.status == 503
    assert ("Retry-After", "1") in error.headers


@pytest.mark.parametrize(
    ("threads", "app_threads", "admitted"),
    [(1, 4, 2), (2, 8, 4), (1, 1, 1), (2, 2, 2), (1, 64, 1 + passwords.QUEUED_PER_THREAD)],
)
def test_sign_ins_at_once_leave_half_the_app_threads_to_other_requests(
    threads: int, app_threads: int, admitted: int
) -> None:
    assert passwords.admitted_per_process(threads, app_threads) == admitted
