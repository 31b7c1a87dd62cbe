"""A post-mortem's money figures, from one fold of the ledger.

Every realised, fee, trade-count and win figure a post-mortem prints (the trades table, predicted
EV against realised, the cash reconciliation, the performance summary, the daily paragraph, the
charts) is read off a ``Window`` of one ``Books``: the ledger folded once through
``core.ledger.Account``. There is one number to print, so no two tables can disagree.

A closed trade is one close the ledger booked: a sale (a partial sale is a trade of its own) or a
settlement, its PnL every fee included (``Closed.pnl_cc``). A settlement corrected later
(rules.md 5a) carries the correction in its PnL when both fall in the window; a correction of a
trade closed before the window is listed on its own. Either way it is in the realised PnL.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from kakashi_tui.core.ledger import Account, Closed, Kind, LedgerEntry
from kakashi_tui.core.models import Side
from kakashi_tui.core.money import fmt_cc
from kakashi_tui.core.risk import HARD_MAX_OPEN_POSITIONS


@dataclass(frozen=True)
class Totals:
    """The account's running figures at a moment, in centicents."""

    cash_cc: int = 0
    deposits_cc: int = 0
    realized_cc: int = 0
    fees_cc: int = 0
    open_cost_cc: int = 0

    def __add__(self, o: Totals) -> Totals:
        return Totals(
            self.cash_cc + o.cash_cc,
            self.deposits_cc + o.deposits_cc,
            self.realized_cc + o.realized_cc,
            self.fees_cc + o.fees_cc,
            self.open_cost_cc + o.open_cost_cc,
        )

    def __sub__(self, o: Totals) -> Totals:
        return Totals(
            self.cash_cc - o.cash_cc,
            self.deposits_cc - o.deposits_cc,
            self.realized_cc - o.realized_cc,
            self.fees_cc - o.fees_cc,
            self.open_cost_cc - o.open_cost_cc,
        )


def _totals(acct: Account) -> Totals:
    return Totals(
        acct.cash_cc,
        acct.deposits_cc,
        acct.realized_cc,
        acct.fees_cc,
        sum(p.cost_cc for p in acct.positions.values() if p.contracts > 0),
    )


@dataclass(frozen=True)
class Trade:
    """A closed trade: a sale or a settlement, with the EV predicted at entry for what it closed."""

    close: Closed
    predicted_ev_cc: float  # EV per contract at entry x the contracts closed (0 without a decision)
    corrected_cc: int = 0  # corrections of this settlement booked in the window

    @property
    def ts(self) -> int:
        return self.close.ts

    @property
    def ticker(self) -> str:
        return self.close.ticker

    @property
    def side(self) -> Side:
        return self.close.side

    @property
    def contracts(self) -> Decimal:
        return self.close.contracts

    @property
    def pnl_cc(self) -> int:
        return self.close.pnl_cc + self.corrected_cc


def _in(ts: int, since: int | None, until: int | None) -> bool:
    return (since is None or ts >= since) and (until is None or ts <= until)


@dataclass(frozen=True)
class Window:
    """What the ledger booked from ``since`` to ``until`` (inclusive; None is open)."""

    since: int | None
    until: int | None
    start: Totals  # before ``since``
    end: Totals  # through ``until``
    trades: tuple[Trade, ...]
    corrections: tuple[Closed, ...]  # booked in the window, for trades closed before it
    unrealized_start: int | None = 0  # open positions' marked value less their cost, at the start
    unrealized_end: int | None = 0  # the same at the end

    @property
    def realized_cc(self) -> int:
        """Realised PnL, every fee included: the fold's own figure, which the trades add up to."""
        return self.end.realized_cc - self.start.realized_cc

    @property
    def fees_cc(self) -> int:
        return self.end.fees_cc - self.start.fees_cc

    @property
    def deposits_cc(self) -> int:
        return self.end.deposits_cc - self.start.deposits_cc

    @property
    def corrections_cc(self) -> int:
        return sum(c.pnl_cc for c in self.corrections)

    @property
    def booked_cc(self) -> int:
        """The trades' PnL and the corrections added up: equal to ``realized_cc`` in a sound ledger."""
        return sum(t.pnl_cc for t in self.trades) + self.corrections_cc

    @property
    def predicted_ev_cc(self) -> float:
        return sum(t.predicted_ev_cc for t in self.trades)

    @property
    def wins(self) -> int:
        return sum(1 for t in self.trades if t.pnl_cc > 0)

    @property
    def losses(self) -> int:
        return len(self.trades) - self.wins

    @property
    def pnls(self) -> list[float]:
        """Each closed trade's PnL in dollars."""
        return [t.pnl_cc / 10_000 for t in self.trades]

    @property
    def unrealized_cc(self) -> int | None:
        """The change in unrealised PnL over the window (None when the start's is unknown)."""
        if self.unrealized_start is None or self.unrealized_end is None:
            return None
        return self.unrealized_end - self.unrealized_start

    @property
    def expected_end_cash(self) -> int:
        s, e = self.start, self.end
        return s.cash_cc + self.deposits_cc + self.realized_cc - (e.open_cost_cc - s.open_cost_cc)

    @property
    def balanced(self) -> bool:
        """Start cash + deposits + realised - the change in cost held = end cash, to the cent."""
        return self.expected_end_cash == self.end.cash_cc


@dataclass
class Books:
    """The ledger folded once, entry by entry, through ``Account``: the running totals, every
    closed trade with the EV predicted at its entry, and what the fold found wrong.

    ``ev_per_contract`` maps a buy fill's id to the EV per contract (dollars) its decision
    predicted; ``ticks`` are (ts, equity, cash) on the engine's clock, to mark open positions in
    the past; ``marked_equity`` is the equity after the last entry, its positions marked now."""

    entries: Sequence[LedgerEntry]
    ev_per_contract: Mapping[int, float | None] = field(default_factory=dict)
    ticks: Sequence[tuple[int, int, int]] = ()
    marked_equity: int | None = None
    account: Account = field(init=False)
    breaches: list[str] = field(init=False)

    def __post_init__(self) -> None:
        acct = Account()
        self.breaches = []
        self._ts: list[int] = []
        self._delta: list[Totals] = []
        self._ev: list[float] = []  # aligned with acct.closed
        self._fix_of: dict[int, int | None] = {}  # a correction's index in acct.closed -> its settlement's
        last_settle: dict[tuple[str, Side], int] = {}
        held: dict[tuple[str, Side], list] = {}  # (ticker, side) -> [contracts, predicted EV cc]
        settled: Counter = Counter()
        for e in self.entries:
            before, n = _totals(acct), len(acct.closed)
            try:
                acct.apply(e)
            except ValueError as err:
                self.breaches.append(f"ledger entry {e.key}: {err}")
            self._ts.append(e.ts)
            self._delta.append(_totals(acct) - before)
            if e.side is not None:
                k = (e.ticker, e.side)
                if e.kind is Kind.BUY:
                    fid = e.key.split(":")[1] if e.key.startswith("fill:") else ""
                    ev = self.ev_per_contract.get(int(fid)) if fid.isdigit() else None
                    pos = held.setdefault(k, [Decimal(0), 0.0])
                    pos[0] += e.contracts
                    pos[1] += (ev or 0) * 10_000 * float(e.contracts)
                for i in range(n, len(acct.closed)):
                    c = acct.closed[i]
                    share = 0.0
                    if c.kind is Kind.SETTLE_FIX:
                        self._fix_of[i] = last_settle.get(k)
                    elif k in held and held[k][0] > 0:
                        pos = held[k]
                        share = pos[1] * float(c.contracts / pos[0])
                        pos[0] -= c.contracts
                        pos[1] -= share
                        if pos[0] <= 0:
                            del held[k]
                    if c.kind is Kind.SETTLE:
                        last_settle[k] = i
                    self._ev.append(share)
            if acct.cash_cc < 0:
                self.breaches.append(f"cash negative ({fmt_cc(acct.cash_cc)}) after {e.key}")
            if len(acct.tickers_held()) > HARD_MAX_OPEN_POSITIONS:
                self.breaches.append(f"{len(acct.tickers_held())} open positions after {e.key}")
            if e.kind is Kind.SETTLE and e.side is not None:
                settled[(e.ticker, e.side)] += 1
        self.breaches += [f"{t} {s.value} settled {n} times" for (t, s), n in settled.items() if n > 1]
        self.account = acct
        # running sums in time order (a sum does not care about order), so a moment is one bisect
        order = sorted(range(len(self._ts)), key=self._ts.__getitem__)
        self._sorted_ts = [self._ts[i] for i in order]
        self._prefix = [Totals()]
        for i in order:
            self._prefix.append(self._prefix[-1] + self._delta[i])
        self._ticks = sorted(self.ticks, key=lambda t: t[0])  # stable: the later of equal times last
        self._tick_ts = [t[0] for t in self._ticks]

    # -- at a moment ---------------------------------------------------------------------
    def totals_through(self, until: int | None) -> Totals:
        """The totals after every entry stamped at or before ``until`` (None: all of them)."""
        return self._prefix[-1 if until is None else bisect_right(self._sorted_ts, until)]

    def totals_before(self, since: int | None) -> Totals:
        if since is None:
            return Totals()
        return self.totals_through(since - 1)

    def unrealized_through(self, until: int | None) -> int | None:
        """Open positions' marked value less their cost at ``until``: from the last tick at or before
        it (equity - cash is the marked value), or from the marked equity for the very end."""
        if until is None and self.marked_equity is not None:
            t = self.totals_through(None)
            return self.marked_equity - t.cash_cc - t.open_cost_cc
        n = len(self._ticks) if until is None else bisect_right(self._tick_ts, until)
        if n == 0:  # no tick yet: nothing marked, which is right only when nothing is held
            return 0 if self.totals_through(until).open_cost_cc == 0 else None
        ts, equity, cash = self._ticks[n - 1]
        return equity - cash - self.totals_through(ts).open_cost_cc

    # -- a period ------------------------------------------------------------------------
    def window(self, since: int | None, until: int | None) -> Window:
        closed = self.account.closed
        inside = {i for i, c in enumerate(closed) if _in(c.ts, since, until)}
        fixes: dict[int, int] = {}
        corrections: list[Closed] = []
        for j in sorted(inside):
            if closed[j].kind is not Kind.SETTLE_FIX:
                continue
            target = self._fix_of.get(j)
            if target is not None and target in inside:
                fixes[target] = fixes.get(target, 0) + closed[j].pnl_cc
            else:
                corrections.append(closed[j])
        trades = tuple(
            Trade(closed[i], self._ev[i], fixes.get(i, 0))
            for i in sorted(inside)
            if closed[i].kind is not Kind.SETTLE_FIX
        )
        return Window(
            since=since,
            until=until,
            start=self.totals_before(since),
            end=self.totals_through(until),
            trades=trades,
            corrections=tuple(corrections),
            unrealized_start=0 if since is None else self.unrealized_through(since - 1),
            unrealized_end=self.unrealized_through(until),
        )
