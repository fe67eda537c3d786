"""Bounded concurrency for inference: a semaphore, a bounded queue, a thread pool and a deadline.

Work runs in threads so the event loop keeps answering (health checks, the page, 503s) while models run.
A request holds its place from before its upload is read until its answer, so uploads in flight count too.
A request that times out still holds its slot until its thread finishes, so the number of running
inferences never exceeds the limit even when clients give up.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import TypeVar

from ferlab.serve.errors import ApiError

__all__ = ["InferenceGate"]

T = TypeVar("T")


class InferenceGate:
    """Run at most `max_concurrent` jobs at once, let `queue_size` wait, refuse the rest with 503."""

    def __init__(self, max_concurrent: int, queue_size: int, timeout_s: float, retry_after_s: int = 1) -> None:
        self.max_concurrent, self.queue_size = max_concurrent, queue_size
        self.timeout_s, self.retry_after_s = timeout_s, retry_after_s
        self._slots = asyncio.Semaphore(max_concurrent)
        self._admitted = 0  # running + waiting
        self._executor = ThreadPoolExecutor(max_workers=max_concurrent, thread_name_prefix="ferlab-infer")

    @property
    def admitted(self) -> int:
        """Requests currently running or waiting for a slot."""
        return self._admitted

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    def check_capacity(self) -> None:
        """Raise 503 now when no slot and no queue place is free (called before reading an upload, too)."""
        if self._admitted >= self.max_concurrent + self.queue_size:
            raise ApiError(503, "overloaded",
                           f"server is busy ({self.max_concurrent} running, {self.queue_size} queued); retry shortly",
                           headers={"Retry-After": str(self.retry_after_s)})

    @asynccontextmanager
    async def admission(self) -> AsyncIterator[None]:
        """Hold a place (running or queued) for a whole request, its upload included; 503 when none is free.

        Counting only inferences let any number of uploads be read at once: forty 10 MB uploads in flight took a
        server from 1.4 to 2.1 GB. Inside, `run(fn, admitted=True)` uses the place this holds.
        """
        self.check_capacity()
        self._admitted += 1
        try:
            yield
        finally:
            self._admitted -= 1

    async def run(self, fn: Callable[[], T], *, admitted: bool = False) -> T:
        """Run `fn` in the pool once a slot is free; 503 when the queue is full, 504 past the deadline.

        `admitted=True`: the caller already holds a place from `admission()`.
        """
        if not admitted:
            async with self.admission():
                return await self.run(fn, admitted=True)
        deadline = time.monotonic() + self.timeout_s
        try:
            await asyncio.wait_for(self._slots.acquire(), timeout=self.timeout_s)
        except TimeoutError:
            raise self._timeout() from None
        future = asyncio.get_running_loop().run_in_executor(self._executor, fn)
        future.add_done_callback(lambda _: self._slots.release())
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout=max(deadline - time.monotonic(), 0))
        except TimeoutError:
            future.add_done_callback(_consume_exception)
            raise self._timeout() from None

    def _timeout(self) -> ApiError:
        return ApiError(504, "timeout", f"inference did not finish within {self.timeout_s:g} s")


def _consume_exception(future: asyncio.Future) -> None:
    """Read the result of an abandoned job so asyncio does not log 'exception was never retrieved'."""
    if not future.cancelled():
        future.exception()
