"""Time a row may carry, and the clock a stream of rows keeps: the one rule for every path
that takes a time from data (the JSONL replay, the catalog writer, ``catalog import``, the
catalog replay, the WebSocket's trade prints). See data_schema.md, "Time from data".

- A time is an integer epoch ms in 2000-01-01 .. 2100-01-01 (``ts_problem``).
- A row's own time (a quote's, a trade print's, a belief's) may be at most ``AHEAD_MS`` past
  the time Kakashi received it (``ahead_problem``).
- A replayed stream's clock does not jump forward on one row's word: a time more than
  ``AHEAD_MS`` past the clock is held (``ClockGuard``) until ``AHEAD_TICKS`` later times at or
  after it confirm the jump, or a time between the clock and it shows it was dated ahead (its
  rows are then rejected, with the reason). A lone row dated 2099 never becomes the clock
  that makes every later row late.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

MIN_TS = 946_684_800_000  # 2000-01-01T00:00:00Z, epoch ms
MAX_TS = 4_102_444_800_000  # 2100-01-01T00:00:00Z (exclusive)
#: How far a time may run ahead: of the time its row was received, or of a replay's clock
#: (beyond it, a replay holds the time until later rows confirm it).
AHEAD_MS = 3_600_000
AHEAD_TICKS = 3  # distinct later times that confirm a replay clock's jump


def ts_problem(ts: Any) -> str | None:
    """Why a row's ``ts`` is refused (None: an integer epoch ms in 2000..2100)."""
    if type(ts) is not int:  # (not a bool either)
        return "without an integer ts"
    if MIN_TS <= ts < MAX_TS:
        return None
    if MIN_TS // 1000 <= ts < MAX_TS // 1000:
        return f"ts {ts} looks like epoch seconds, not milliseconds"
    if MIN_TS * 1000 <= ts < MAX_TS * 1000:
        return f"ts {ts} looks like epoch microseconds, not milliseconds"
    if MIN_TS * 1_000_000 <= ts < MAX_TS * 1_000_000:
        return f"ts {ts} looks like epoch nanoseconds, not milliseconds"
    return f"ts {ts} is outside 2000-01-01..2100-01-01 in epoch ms"


def ahead_problem(ts: int, received: int) -> str | None:
    """Why a row's own time is refused against the time it was received (None: not far ahead)."""
    if ts - received > AHEAD_MS:
        return f"ts {ts} is more than an hour ahead of when it was received ({received})"
    return None


T = TypeVar("T")


class ClockGuard(Generic[T]):
    """A replayed stream's clock, kept from a lone time dated ahead.

    Times are placed in stream order (``place``); each distinct time is one tick (a ``T`` the
    caller makes). A tick more than ``AHEAD_MS`` past the clock (or any tick before there is a
    clock) is *held*: ``AHEAD_TICKS`` further ticks at or after it confirm the jump, the end
    of the stream confirms it too, and a time between the clock and it refutes it (held ticks
    later than that time go to ``refuted``; the caller rejects their rows). Ticks the clock has
    passed are appended to ``done``, in order, for the caller to play.
    """

    __slots__ = ("start", "current", "held", "done", "refuted")

    def __init__(self, start: int | None = None) -> None:
        self.start = start  # the clock before the first tick (a recorded start), if any
        self.current: tuple[int, T] | None = None  # the latest settled tick: the clock
        self.held: list[tuple[int, T]] = []  # past a jump, not yet confirmed (increasing times)
        self.done: list[T] = []  # settled ticks behind the clock, to be played (the caller empties it)
        self.refuted: list[tuple[int, T, int]] = []  # (its time, the tick, the time that refuted it)

    @property
    def clock(self) -> int | None:
        return self.current[0] if self.current is not None else self.start

    def place(self, ts: int, make: Callable[[int], T]) -> T | None:
        """The tick ``ts`` belongs to (made by ``make`` when new); None when ``ts`` is behind the
        clock (out of time order: the caller rejects the row)."""
        held = self.held
        last = held[-1] if held else self.current
        if last is not None and ts == last[0]:
            return last[1]
        clock = self.clock
        if last is None or ts > last[0]:
            tick = make(ts)
            if held or clock is None or ts - clock > AHEAD_MS:
                held.append((ts, tick))
                if len(held) > AHEAD_TICKS:  # confirmed: the stream's clock did jump
                    self.held = []
                    for h in held:
                        self._settle(h)
            else:
                self._settle((ts, tick))
            return tick
        if held and (clock is None or ts >= clock):  # refuted: the ticks held past ts were dated ahead
            self.held = []
            for h in held:
                if h[0] <= ts:  # confirmed by this time
                    self._settle(h)
                else:
                    self.refuted.append((h[0], h[1], ts))
            cur = self.current
            if cur is not None and cur[0] == ts:
                return cur[1]
            tick = make(ts)
            self._settle((ts, tick))
            return tick
        return None

    def is_held(self, tick: T) -> bool:
        return bool(self.held) and self.held[-1][1] is tick

    def _settle(self, tick: tuple[int, T]) -> None:
        if self.current is not None:
            self.done.append(self.current[1])
        self.current = tick

    def finish(self) -> list[T]:
        """The ticks not yet in ``done``, in order: the end of the stream confirms what is held."""
        out = [self.current[1]] if self.current is not None else []
        out += [h[1] for h in self.held]
        self.current, self.held = None, []
        return out
