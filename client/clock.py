"""What the engine waits on: the time, sleeps, timers. Tests pass a :class:`FakeClock` and advance it, so
"nothing was sent during the pause" is checked without waiting out a real pause.

Only waits go through here; latencies the engine *measures* (``timings``) stay on ``time.perf_counter``.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

__all__ = ["Clock", "FakeClock", "RealClock", "Timer"]

T = TypeVar("T")


class Timer(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...

    def call_later(self, seconds: float, fn: Callable[..., Any], *args: Any) -> Timer: ...

    async def wait_for(self, aw: Awaitable[T], timeout: float | None) -> T: ...


class RealClock:
    def now(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def call_later(self, seconds: float, fn: Callable[..., Any], *args: Any) -> Timer:
        return asyncio.get_running_loop().call_later(seconds, fn, *args)

    async def wait_for(self, aw: Awaitable[T], timeout: float | None) -> T:
        return await asyncio.wait_for(aw, timeout)


class _FakeTimer:
    def __init__(self, fn: Callable[[], None]) -> None:
        self.fn: Callable[[], None] | None = fn

    def cancel(self) -> None:
        self.fn = None


class FakeClock:
    """Time moves only in :meth:`advance`: due sleeps and timers fire in order, and the tasks they wake run."""

    def __init__(self, start: float = 1000.0) -> None:
        # Whole nanoseconds: a wait of a few ulps must still move time on (float time can stand still).
        self.ns = round(start * 1e9)
        self._due: list[tuple[int, int, _FakeTimer]] = []
        self._seq = itertools.count()

    @property
    def t(self) -> float:
        return self.ns / 1e9

    def now(self) -> float:
        return self.t

    def _at(self, seconds: float, fn: Callable[[], None]) -> _FakeTimer:
        timer = _FakeTimer(fn)
        heapq.heappush(self._due, (self.ns + max(1, round(seconds * 1e9)), next(self._seq), timer))
        return timer

    async def sleep(self, seconds: float) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        timer = self._at(seconds, lambda: fut.done() or fut.set_result(None))
        try:
            await fut
        finally:
            timer.cancel()

    def call_later(self, seconds: float, fn: Callable[..., Any], *args: Any) -> Timer:
        return self._at(seconds, lambda: fn(*args))

    async def wait_for(self, aw: Awaitable[T], timeout: float | None) -> T:
        task = asyncio.ensure_future(aw)
        if timeout is None:
            return await task
        sleeper = asyncio.ensure_future(self.sleep(timeout))
        try:
            await asyncio.wait({task, sleeper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
        if task.done():
            return task.result()
        task.cancel()
        raise TimeoutError

    async def settle(self, turns: int = 50) -> None:
        """Let woken tasks run (a few event-loop turns; no real time passes)."""
        for _ in range(turns):
            await asyncio.sleep(0)

    async def advance(self, seconds: float) -> None:
        target = self.ns + round(seconds * 1e9)
        await self.settle()
        while self._due and self._due[0][0] <= target:
            when, _, timer = heapq.heappop(self._due)
            self.ns = max(self.ns, when)
            if timer.fn is not None:
                timer.fn()
                await self.settle()
        self.ns = target
        await self.settle()
