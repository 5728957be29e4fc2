"""Failed sign-ins, counted per account name and client address in this process: after ``attempts`` failures
within ``window`` seconds, that pair waits until the oldest of them leaves the window."""

from __future__ import annotations

import math
import time
from collections import deque

TRACKED_PAIRS = 10_000
"""Pairs remembered at most; beyond, the oldest half are forgotten (the table cannot grow without bound)."""


class LoginThrottle:
    def __init__(self, attempts: int, window: float) -> None:
        self.attempts = attempts
        self.window = window
        self._failures: dict[tuple[str, str], deque[float]] = {}

    def wait(self, name: str, address: str) -> int:
        """Seconds before ``name`` may try again from ``address``; 0 when it may now."""
        failures = self._recent((name.lower(), address))
        if failures is None or len(failures) < self.attempts:
            return 0
        return max(1, math.ceil(failures[0] + self.window - time.monotonic()))

    def failed(self, name: str, address: str) -> None:
        if len(self._failures) >= TRACKED_PAIRS:
            for pair in list(self._failures)[: TRACKED_PAIRS // 2]:
                del self._failures[pair]
        self._failures.setdefault((name.lower(), address), deque()).append(time.monotonic())

    def succeeded(self, name: str, address: str) -> None:
        self._failures.pop((name.lower(), address), None)

    def _recent(self, pair: tuple[str, str]) -> deque[float] | None:
        failures = self._failures.get(pair)
        if failures is not None:
            while failures and failures[0] <= time.monotonic() - self.window:
                failures.popleft()
        return failures
