"""Admission control: how many society runs are in flight, and how many may wait.

A request for `n` choices takes `n` slots. When every slot is taken a request waits in a
bounded queue, for a bounded time; a full queue, or a wait that runs out, is refused at
once (the server answers 429 with a Retry-After estimated from recent runs).
"""

from __future__ import annotations

import asyncio
import math
import statistics
from collections import deque


class Full(Exception):
    """No slot now and no room to wait for one; `retry_after_s` suggests when to retry."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Slots:
    """`limit` runs in flight at most, `queue` requests waiting at most, each for at most
    `wait_s` seconds."""

    def __init__(self, limit: int, queue: int, wait_s: float) -> None:
        self.limit, self.queue, self.wait_s = limit, queue, wait_s
        self.in_use = 0
        self.waiting = 0
        self._freed = asyncio.Event()
        self._recent: deque[float] = deque(maxlen=32)  # wall seconds of recent runs

    def retry_after(self) -> int:
        """Seconds to suggest: about one typical run (at least 1)."""
        return max(1, math.ceil(statistics.median(self._recent))) if self._recent else 1

    async def acquire(self, n: int) -> None:
        """Take `n` slots, waiting in the queue if need be; raises Full."""
        if n > self.limit:
            raise Full(f"n={n} is more than this server runs at once ({self.limit})",
                       self.retry_after())
        if self.in_use + n <= self.limit and not self.waiting:
            self.in_use += n
            return
        if self.waiting >= self.queue:
            raise Full(f"server busy: {self.in_use} runs in flight and {self.waiting} "
                       "request(s) waiting", self.retry_after())
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait_s
        self.waiting += 1
        try:
            while self.in_use + n > self.limit:
                freed = self._freed
                try:
                    await asyncio.wait_for(freed.wait(), max(0.0, deadline - loop.time()))
                except TimeoutError:
                    raise Full(f"server busy: no slot freed within {self.wait_s:g} s",
                               self.retry_after()) from None
            self.in_use += n
        finally:
            self.waiting -= 1

    def release(self, n: int, wall_s: float | None = None) -> None:
        """Give back `n` slots (with the wall time of the run that held them).

        Not a coroutine: it runs in the `finally` of a cancelled run, where it must not
        wait for anything."""
        if wall_s is not None:
            self._recent.append(wall_s)
        self.in_use -= n
        # wake every waiter once; each checks whether its n slots now fit
        freed, self._freed = self._freed, asyncio.Event()
        freed.set()
