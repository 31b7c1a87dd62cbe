"""The performance summary a trader reads first: today, this week and since the start, each with its
realised PnL, the change in unrealised PnL, their total, fees, closed trades and win rate.

Computed on the engine's thread from the ledger (the account folded from it, and the ledger's fee and
deposit entries by time) and the equity the ticks recorded, for the desk's view (``build_view``).
The periods run on the engine's clock: the UTC day, the week from Monday 00:00 UTC, the whole run.

Realised PnL counts every fee (entry fees through the cost basis, sale fees on their sale), as the
account does. Unrealised PnL is its change over the period: what the open positions would fetch sold
into the bids, after fees, less their cost, now against at the period's start; since the start, that
is the open positions' unrealised PnL now. Total = realised + unrealised = the change in equity, less
deposits. Equity at a period's start is the last tick's before it (no tick before it: nothing was
held, so it is the cash deposited by then). A win is a close (a sale, a settlement) with PnL above zero.

A UTC day's figures once it is over (``PerformanceBook.closed_day``, the same sums over the day) are
the daily summary the front-ends raise as an alert on the first tick of the next day.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from kakashi_tui.core.ledger import Account, Kind

if TYPE_CHECKING:
    from kakashi_tui.adapters.store.writer import Store

DAY_MS = 86_400_000
WEEK_MS = 7 * DAY_MS
MONDAY_MS = 4 * DAY_MS  # 1970-01-05, the first Monday of the epoch
_TRADES = (Kind.SELL, Kind.SETTLE)  # a correction (SETTLE_FIX) moves realised PnL but is not a trade
_EVER = -(2**62)  # the start of "since start"


@dataclass(frozen=True)
class Period:
    name: str  # "Today", "This week", "Since start"
    start_ms: int | None  # None: since the ledger's first entry
    realized_cc: int
    unrealized_cc: int  # its change over the period
    fees_cc: int
    trades: int  # closes: sales and settlements
    wins: int

    @property
    def total_cc(self) -> int:
        return self.realized_cc + self.unrealized_cc

    @property
    def win_rate(self) -> str:
        """``3/5 (60%)``: a count, not an estimate; ``—`` with no closed trade."""
        return f"{self.wins}/{self.trades} ({self.wins / self.trades:.0%})" if self.trades else "—"


@dataclass(frozen=True)
class Performance:
    as_of_ms: int  # the engine clock
    periods: tuple[Period, ...]  # today, this week, since start


@dataclass(frozen=True)
class ClosedDay:
    """A UTC day that is over: its period (named by the day, ``2026-01-05``) and how many fills it had."""

    period: Period
    fills: int


def period_starts(now_ms: int) -> tuple[int, int]:
    """The UTC day's start and the week's (Monday 00:00 UTC) on the engine clock."""
    return now_ms - now_ms % DAY_MS, now_ms - (now_ms - MONDAY_MS) % WEEK_MS


class PerformanceBook:
    """The summary for each view, cheaply: what the ledger gives is summed again only when the
    ledger grew, the equity at a period's start read once per period (the store is the engine's:
    called on its thread only)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._closed: dict[int, tuple[object, tuple[int, int, int]]] = {}
        self._booked: dict[int, tuple[object, tuple[int, int]]] = {}
        self._start_equity: dict[int, int | None] = {}

    def figures(self, account: Account, equity_cc: int, now_ms: int) -> Performance:
        day, week = period_starts(now_ms)
        if len(self._start_equity) > 8:  # the periods moved on (a long run, a replay): forget old ones
            self._start_equity.clear()
        periods = [
            self._period(name, start, account, equity_cc) for name, start in (("Today", day), ("This week", week))
        ]
        _, trades, wins = self._closes_since(_EVER, account)
        realized = account.realized_cc
        unrealized = equity_cc - account.deposits_cc - realized
        periods.append(Period("Since start", None, realized, unrealized, account.fees_cc, trades, wins))
        return Performance(now_ms, tuple(periods))

    def closed_day(self, account: Account, start: int, name: str) -> ClosedDay:
        """The day from ``start`` (00:00 UTC) to the next 00:00, read once when it is over: realised PnL,
        the change in unrealised PnL, fees, closes and wins, and fills (sales and purchases)."""
        end = start + DAY_MS
        realized = trades = wins = 0
        for c in account.closed:
            if start <= c.ts < end:
                realized += c.pnl_cc
                if c.kind in _TRADES:
                    trades += 1
                    wins += c.pnl_cc > 0
        kinds = self.store.ledger_kinds_between(start, end)
        fees = -(kinds.get(Kind.BUY_FEE.value, (0, 0))[0] + kinds.get(Kind.SELL_FEE.value, (0, 0))[0])
        fills = kinds.get(Kind.BUY.value, (0, 0))[1] + kinds.get(Kind.SELL.value, (0, 0))[1]
        deposits = kinds.get(Kind.DEPOSIT.value, (0, 0))[0]
        before = self.store.equity_before(start)
        if before is None:  # no tick before it: nothing was held, the cash deposited by then
            before = account.deposits_cc - self.store.ledger_sums_since(start).get(Kind.DEPOSIT.value, 0)
        after = self.store.equity_before(end)
        after = before + deposits + realized if after is None else after
        unrealized = after - before - deposits - realized
        return ClosedDay(Period(name, start, realized, unrealized, fees, trades, wins), fills)

    def _period(self, name: str, start: int, account: Account, equity_cc: int) -> Period:
        realized, trades, wins = self._closes_since(start, account)
        fees, deposits = self._booked_since(start, account)
        if start not in self._start_equity:
            self._start_equity[start] = self.store.equity_before(start)
        before = self._start_equity[start]
        if before is None:  # no tick before it: nothing was held, the cash deposited by then
            before = account.deposits_cc - deposits
        return Period(name, start, realized, equity_cc - before - deposits - realized, fees, trades, wins)

    def _closes_since(self, start: int, account: Account) -> tuple[int, int, int]:
        key = (len(account.closed), account.realized_cc)  # a sale's fee lands on its close in place
        hit = self._closed.get(start)
        if hit is None or hit[0] != key:
            realized = trades = wins = 0
            for c in account.closed:
                if c.ts < start:
                    continue
                realized += c.pnl_cc
                if c.kind in _TRADES:
                    trades += 1
                    wins += c.pnl_cc > 0
            hit = self._closed[start] = (key, (realized, trades, wins))
            if len(self._closed) > 8:
                self._closed = {_EVER: self._closed.get(_EVER, hit), start: hit}
        return hit[1]

    def _booked_since(self, start: int, account: Account) -> tuple[int, int]:
        """Fees paid and cash deposited from ``start`` on, from the ledger's entries."""
        key = (account.fees_cc, account.deposits_cc)
        hit = self._booked.get(start)
        if hit is None or hit[0] != key:
            sums = self.store.ledger_sums_since(start)
            fees = -(sums.get(Kind.BUY_FEE.value, 0) + sums.get(Kind.SELL_FEE.value, 0))
            hit = self._booked[start] = (key, (fees, sums.get(Kind.DEPOSIT.value, 0)))
            if len(self._booked) > 8:
                self._booked = {start: hit}
        return hit[1]
