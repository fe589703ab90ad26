"""The thread loops' own task count, which run_db reads to decide whether to block."""

import asyncio
import gc
import threading

from app.server.loops import AppThreads, run_coroutine, tasks_alive


async def _counts() -> list[int]:
    seen = [tasks_alive()]
    release = asyncio.Event()

    async def sibling() -> None:
        seen.append(tasks_alive())
        await release.wait()

    siblings = [asyncio.create_task(sibling()) for _ in range(2)]
    await asyncio.sleep(0)
    seen.append(tasks_alive())
    release.set()
    await asyncio.gather(*siblings)
    await asyncio.sleep(0)  # the done callbacks run on the next turn of the loop
    seen.append(tasks_alive())
    return seen


def test_the_count_follows_tasks_as_they_start_and_end() -> None:
    # Alone; each sibling sees three; three while they wait; alone again once they ended.
    assert run_coroutine(False, _counts) == [1, 3, 3, 3, 1]
    assert run_coroutine(False, _counts) == [1, 3, 3, 3, 1]  # the same loop, again


def test_a_cancelled_view_leaves_no_count_behind() -> None:
    async def leaves_a_task() -> None:
        asyncio.get_running_loop().create_task(asyncio.sleep(60))

    run_coroutine(False, leaves_a_task)  # the leftover is cancelled and awaited
    assert run_coroutine(False, _counts)[0] == 1


def test_a_thread_loop_goes_with_its_thread() -> None:
    # The count must not tie the loop to itself: the loop closes when its thread ends.
    loops: list[asyncio.AbstractEventLoop] = []

    async def grab() -> None:
        loops.append(asyncio.get_running_loop())

    thread = threading.Thread(target=run_coroutine, args=(False, grab))
    thread.start()
    thread.join()
    gc.disable()  # closed by reference counting, not by a later collection
    try:
        del thread
        assert loops[0].is_closed()
    finally:
        gc.enable()


def test_app_threads_hand_back_results_and_errors_and_end_on_shutdown() -> None:
    threads = AppThreads(2, "test-app")
    ran_on: set[str] = set()

    def work(value: int) -> int:
        ran_on.add(threading.current_thread().name)
        if value < 0:
            raise ValueError(value)
        return value * 2

    async def main() -> tuple[list[int], BaseException | None]:
        results = await asyncio.gather(*(threads.run(work, n) for n in range(8)))
        try:
            await threads.run(work, -1)
        except ValueError as exc:
            return results, exc
        return results, None

    results, error = asyncio.run(main())
    threads.shutdown()

    assert results == [n * 2 for n in range(8)]
    assert isinstance(error, ValueError)
    assert ran_on <= {"test-app_0", "test-app_1"}
    assert not [t for t in threading.enumerate() if t.name.startswith("test-app_")]


def test_an_app_thread_result_for_a_cancelled_request_is_dropped() -> None:
    # The request's task was cancelled (its client went away) while the app ran: the late
    # result must not be set on the cancelled future, nor fail the loop.
    threads = AppThreads(1, "test-cancel")
    release = threading.Event()
    errors: list[dict[str, object]] = []

    async def main() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda _loop, ctx: errors.append(ctx))
        pending = threads.run(release.wait)
        pending.cancel()
        release.set()
        assert await threads.run(lambda: "after") == "after"

    asyncio.run(main())
    threads.shutdown()
    assert errors == []
