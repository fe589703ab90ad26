"""The bridge's hop, alone: a no-op call handed from an event loop to an app thread and its
result back, by ``loop.run_in_executor`` on a ThreadPoolExecutor (what the bridge used) and
by app.server.loops.AppThreads (what it uses), rounds interleaved.

The figure is the CPU of the whole process (every thread) per round trip, and the wall time
per round trip; one hop at a time, as one request makes it. Usage:
.venv/bin/python -m bench.hops [--hops 20000] [--rounds 5]
"""

import argparse
import asyncio
import contextvars
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor

from app.server.loops import AppThreads

THREADS = 4  # the shipped WEB_THREADS


def _noop(value: int) -> int:
    return value


async def _hops(hop: Callable[[int], Awaitable[int]], count: int) -> tuple[float, float]:
    for n in range(200):  # warm-up: every thread started
        await hop(n)
    cpu, wall = time.process_time(), time.perf_counter()
    for n in range(count):
        await hop(n)
    return (time.process_time() - cpu) / count * 1e6, (time.perf_counter() - wall) / count * 1e6


async def _measure(count: int, rounds: int) -> dict[str, list[tuple[float, float]]]:
    loop = asyncio.get_running_loop()
    executor = ThreadPoolExecutor(THREADS, thread_name_prefix="wsgi")
    threads = AppThreads(THREADS, "app")
    context = contextvars.copy_context()  # the bridge runs each call in the request's context

    def by_executor(value: int) -> Awaitable[int]:
        return loop.run_in_executor(executor, context.run, _noop, value)

    def by_app_threads(value: int) -> Awaitable[int]:
        return threads.run(context.run, _noop, value)

    hops = {"run_in_executor": by_executor, "AppThreads": by_app_threads}
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in hops}
    try:
        for round_number in range(rounds):
            names = list(hops) if round_number % 2 == 0 else list(hops)[::-1]
            for name in names:
                runs[name].append(await _hops(hops[name], count))
    finally:
        executor.shutdown()
        threads.shutdown()
    return runs


def main() -> None:
    """Print CPU and wall microseconds per round trip of each way, and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hops", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    load = os.getloadavg()[0]
    runs = asyncio.run(_measure(args.hops, args.rounds))
    print(f"{args.hops:,} hops a round, {args.rounds} rounds interleaved; load average")
    print(f"{load:.2f} at start, {os.getloadavg()[0]:.2f} at end; medians (every round)")
    for name, figures in runs.items():
        cpu, wall = (statistics.median(f[i] for f in figures) for i in (0, 1))
        spread = ", ".join(f"{f[0]:.0f}" for f in figures)
        print(f"{name:<16} {cpu:6.1f} us CPU  {wall:6.1f} us wall per hop  (CPU: {spread})")
    ratios = [
        app[0] / executor[0]
        for app, executor in zip(runs["AppThreads"], runs["run_in_executor"], strict=True)
    ]
    print(f"AppThreads / run_in_executor, CPU per round: {statistics.median(ratios):.2f}x median")


if __name__ == "__main__":
    main()
