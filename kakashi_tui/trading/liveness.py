"""Is the engine alive, and is its data fresh? One rule for every front-end.

The trading service publishes views only when a tick completes, so a hung fetch or a stuck
tick leaves the last view on screen looking healthy. The service therefore keeps a
``Heartbeat`` that any thread may read at any time: what its thread is doing (fetching,
writing, waiting for the next tick), since when, and when the last tick completed. Every
time in it is wall-clock UTC epoch milliseconds, from the service's own clock.

``assess`` turns a heartbeat into what the operator must be told:

- ``FEED SLOW since T``: a fetch has been in flight for a few intervals (``few_ms``);
- ``FEED DOWN since T``: ... and past the stale-quote limit, when no quote it could bring
  would still be tradable. ``T`` is when the fetch began, not when a client gave up;
- ``STALLED since T``: not fetching, yet no tick completed a few intervals after it was due;
- ``ENGINE STOPPED since T``: the engine's thread ended without being asked to.

``LivenessWatch`` says when that changes, for the desk's status line and alerts and the
headless log. No Textual import here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

#: A fetch or a tick is late after this many intervals, and never sooner than ``FEW_FLOOR_MS``.
FEW_INTERVALS = 3
FEW_FLOOR_MS = 3_000

OK = "ok"
SLOW = "slow"
DOWN = "down"
STALLED = "stalled"
DEAD = "dead"


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """What the engine's thread is doing, read from any thread (wall ms throughout)."""

    now_ms: int
    thread: str  # "not started" | "running" | "done" (max ticks reached) | "stopped" | "dead"
    phase: str  # "fetching" | "writing" | "waiting" | "idle"
    phase_since_ms: int  # when the phase began
    due_ms: int | None  # while waiting: when the next tick starts
    last_tick_ms: int | None  # when the last tick completed (None: none yet)
    interval_s: float
    stale_ms: int  # the stale-quote limit (risk_limits.md): past it, a fetch in flight is an outage
    died: str = ""  # why the thread ended, when it ended without being asked to
    # The last completed fetch failed: the feed's own alarm (FEED DOWN, with its reason) already
    # says so, and each retrying fetch of a dead server is slow, so its SLOW spells are not news.
    feed_failing: bool = False

    @property
    def few_ms(self) -> int:
        return max(FEW_FLOOR_MS, int(FEW_INTERVALS * self.interval_s * 1000))

    @property
    def tick_age_ms(self) -> int | None:
        return None if self.last_tick_ms is None else max(0, self.now_ms - self.last_tick_ms)


@dataclass(frozen=True, slots=True)
class Liveness:
    level: str  # OK | SLOW | DOWN | STALLED | DEAD
    since_ms: int | None = None  # when the trouble began (None when OK)
    what: str = ""  # one line: what the thread is stuck on

    @property
    def ok(self) -> bool:
        return self.level == OK

    def label(self, fmt: Callable[[int], str]) -> str:
        """``FEED SLOW since 12:00:01`` (``fmt``: the front-end's way to write a time)."""
        if self.ok or self.since_ms is None:
            return ""
        name = {SLOW: "FEED SLOW", DOWN: "FEED DOWN", STALLED: "STALLED", DEAD: "ENGINE STOPPED"}[self.level]
        return f"{name} since {fmt(self.since_ms)}"


def assess(hb: Heartbeat) -> Liveness:
    if hb.thread == "dead":
        return Liveness(DEAD, hb.phase_since_ms, f"the engine's thread ended: {hb.died or 'no reason given'}")
    if hb.thread != "running":
        return Liveness(OK)  # not started, done or stopped: no tick is expected
    few = hb.few_ms
    age = hb.now_ms - hb.phase_since_ms
    if hb.phase == "fetching":
        secs = age // 1000
        if age >= max(few, hb.stale_ms):
            return Liveness(
                DOWN, hb.phase_since_ms, f"a fetch has been in flight {secs}s (stale limit {hb.stale_ms // 1000}s)"
            )
        if age >= few:
            return Liveness(SLOW, hb.phase_since_ms, f"a fetch has been in flight {secs}s")
    elif hb.phase == "writing" and age >= few:
        return Liveness(STALLED, hb.phase_since_ms, f"a tick has been writing {age // 1000}s")
    elif hb.phase == "waiting" and hb.due_ms is not None and hb.now_ms - hb.due_ms >= few:
        return Liveness(STALLED, hb.due_ms, f"the next tick was due {(hb.now_ms - hb.due_ms) // 1000}s ago")
    return Liveness(OK)


class LivenessWatch:
    """Remembers the last assessment (``last``) and the level before it (``was``)."""

    def __init__(self) -> None:
        self.last = Liveness(OK)
        self.was = OK

    def update(self, hb: Heartbeat, fmt: Callable[[int], str]) -> tuple[Liveness, str | None]:
        """The heartbeat judged, and when its level changed, the line that says so in a log:
        ``FEED SLOW since 12:00:01: a fetch has been in flight 9s``, or ``feed back: ...``."""
        now = assess(hb)
        changed = now.level != self.last.level
        self.was, self.last = self.last.level, now
        if not changed:
            return now, None
        if hb.feed_failing and SLOW in (now.level, self.was) and OK in (now.level, self.was):
            return now, None  # a failing feed's retries are slow every tick: its alarm says it once
        if now.ok and hb.feed_failing:  # the hung fetch ended, but it failed: the feed is not back
            return now, "the hung fetch ended, and failed (the feed is still down)"
        if now.ok:
            return now, {
                SLOW: "feed back: the slow fetch completed",
                DOWN: "feed back: the fetch completed",
                STALLED: "ticking again",
                DEAD: "engine running",
            }.get(self.was, "live")
        return now, f"{now.label(fmt)}: {now.what}"
