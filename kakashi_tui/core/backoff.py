"""The one retry policy: how long to wait before the n-th retry.

Exponential backoff from ``first`` seconds, doubling each retry up to ``cap``. With
``jitter``, the wait is drawn uniformly from [0, that] ("full jitter": AWS Architecture Blog,
"Exponential Backoff and Jitter", Brooker 2015), so many clients that failed together do not
retry together. Without it, the wait is exact (a single local loop: the service's failed-tick
retry, the refused-key retry, whose waits the operator reads).

Used by the Kalshi HTTP client and WebSocket (jittered), the refused-key retry and the
service's failed-tick retry (exact). A ``Retry-After`` from the server overrides it in the
client. No I/O here: the caller sleeps.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

_MAX_DOUBLINGS = 32  # 2**32 times ``first`` is past any cap: bounded, however long it fails


@dataclass(frozen=True)
class Backoff:
    first: float  # seconds before the first retry
    cap: float  # seconds the wait never exceeds
    jitter: bool = True

    def ceiling(self, n: int) -> float:
        """The longest wait before retry ``n`` (0 = the first retry)."""
        return min(self.cap, self.first * float(2 ** min(max(n, 0), _MAX_DOUBLINGS)))

    def delay(self, n: int, rng: random.Random | None = None) -> float:
        """The wait before retry ``n``: uniform in [0, ceiling] with jitter, else the ceiling."""
        top = self.ceiling(n)
        return (rng or random).uniform(0, top) if self.jitter else top
