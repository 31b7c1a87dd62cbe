"""The plan in force, watched as the engine's data comes in (issue #24, 9; core/plan.py).

The engine holds one ``PlanWatch`` while the latest plan has no outcome yet. Its cost per tick is
a few comparisons: the plan's trades are re-read (``queries.plan_trades``, by index) only for the
markets it bought in that settled this tick, its statistics are recomputed (``core/plan.measure``,
the report's own functions) only when those trades changed and only for the measures its kill
conditions read, and its drawdown follows each tick's equity by one comparison.

- **Kill conditions** are checked at every look (they only stop trading: a look too many can
  only stop it sooner, never start it). The first one met pauses the engine with that reason.
- **Success** is judged once, when the sample is reached, on exactly the sample (the first N
  trades to settle; for days, what settled in the N days), and the verdict is stored. Judging it
  at every look would inflate false passes: each look is another chance for noise to clear the
  bar (rules.md 10a).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from kakashi_tui.adapters import queries
from kakashi_tui.adapters.closing import Candles
from kakashi_tui.adapters.store.writer import Store
from kakashi_tui.core.plan import (
    GROUPS,
    Condition,
    Plan,
    PlanTrade,
    days_between,
    fall_pct,
    first_kill,
    judge_at_sample,
    measure,
    settled_order,
    wanted_groups,
)


@dataclass(frozen=True)
class Tripped:
    """A kill condition met: the condition and the numbers it read."""

    condition: Condition
    numbers: str


@dataclass(frozen=True)
class Judged:
    verdict: str  # passed | not passed
    numbers: str


class PlanWatch:
    """The latest plan's trades, equity peak and clock, and its checks."""

    def __init__(self, store: Store, plan: Plan, candles: Candles | None) -> None:
        self.store = store
        self.plan = plan
        self.candles = candles  # closing lines the database lacks (adapters/closing.py), as the report's
        con = store.db.connection()
        self.trades: dict[int, PlanTrade] = {t.fill_id: t for t in queries.plan_trades(con, plan, candles=candles)}
        self.start_ts, equities = queries.plan_ticks(con, plan)
        self.peak_cc = 0
        self.drawdown_pct = 0.0
        for eq in equities:
            self.equity(eq)
        self.kill_groups = wanted_groups(plan.kill)  # the statistics its kill conditions read
        self._kill_metrics: dict[str, float | None] | None = None  # while the trades are these

    # -- what comes in -------------------------------------------------------------------
    def wants(self, tickers: Iterable[str]) -> set[str]:
        """Of markets that settled (or had their settlement corrected), those the plan bought in
        (one look-up by the fills' ticker index, whatever path filled them)."""
        return queries.plan_tickers(self.store.db.connection(), self.plan, tickers)

    def settled(self, tickers: Iterable[str]) -> None:
        """Re-read the plan's trades in these markets (settled or corrected now)."""
        for t in queries.plan_trades(self.store.db.connection(), self.plan, tickers, candles=self.candles):
            self.trades[t.fill_id] = t
        self._kill_metrics = None

    def equity(self, eq_cc: int) -> None:
        """A tick's equity (the one the tick stores): the peak and the largest fall below it."""
        if eq_cc > self.peak_cc:
            self.peak_cc = eq_cc
        else:
            self.drawdown_pct = max(self.drawdown_pct, fall_pct(self.peak_cc, eq_cc))

    def tick(self, now_ms: int) -> None:
        """A tick of the engine: the plan's first one starts its clock."""
        if self.start_ts is None:
            self.start_ts = now_ms

    def days(self, now_ms: int) -> float | None:
        return days_between(self.start_ts, now_ms)

    # -- the checks ------------------------------------------------------------------------
    def metrics(self, now_ms: int) -> dict[str, float | None]:
        """The measures the kill conditions read, now (statistics cached while the trades stay)."""
        if self._kill_metrics is None:
            self._kill_metrics = measure(settled_order(list(self.trades.values())), groups=self.kill_groups)
        return {**self._kill_metrics, "drawdown": self.drawdown_pct, "days": self.days(now_ms)}

    def check_kill(self, now_ms: int) -> Tripped | None:
        """The first kill condition met now (None: none). Statistics are computed only when a
        condition that reads one is past its ``after``."""
        days = self.days(now_ms)
        live = [c for c in self.plan.kill if c.after is None or c.after.reached(len(self.trades), days)]
        if not live:
            return None
        if any(m in GROUPS for c in live for m in c.measures):
            m = self.metrics(now_ms)
        else:
            m = {"trades": float(len(self.trades)), "days": days, "drawdown": self.drawdown_pct}
        cond = first_kill(self.plan, m)
        return None if cond is None else Tripped(cond, cond.numbers(m))

    def check_success(self, now_ms: int) -> Judged | None:
        """The verdict, once, when the sample is reached (None before): ``judge_at_sample``."""
        days = self.days(now_ms)
        if not self.plan.sample.reached(len(self.trades), days):  # (every look: no list built)
            return None
        got = judge_at_sample(self.plan, list(self.trades.values()), self.drawdown_pct, days)
        return None if got is None else Judged(*got)
