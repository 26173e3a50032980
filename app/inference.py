"""Runs model calls one at a time, off the event loop unless they are tiny.

Two model calls at once only fight over the same cores, so calls queue on one lock. A
small call (a few names) runs right on the event loop: a thread hop would cost more than
the call. Larger ones run in the threadpool so the loop keeps answering meanwhile.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

from starlette.concurrency import run_in_threadpool

T = TypeVar("T")

INLINE_COST = 64  # names (or names x length / 16) below which a call runs inline


class InferenceRunner:
    def __init__(self) -> None:
        self._lock = asyncio.Lock()

    async def run(self, fn: Callable[[], T], cost: int) -> T:
        async with self._lock:
            if cost <= INLINE_COST:
                return fn()
            return await run_in_threadpool(fn)
