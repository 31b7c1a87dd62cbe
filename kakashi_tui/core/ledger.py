"""The append-only ledger and the account derived from it.

Truth lives in the ledger: cash, positions and realised PnL are a fold over its entries
(``Account.apply``), so the same function rebuilds the account after a restart. Every
entry has a unique ``key`` (e.g. ``fill:12:cost``, ``settle:T:yes``): the store refuses a
second entry with the same key, which is what makes fills and settlements exactly-once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum

from kakashi_tui.core.models import Fill, Position, Side, TickQuote
from kakashi_tui.core.money import price_to_cents


class Kind(str, Enum):
    DEPOSIT = "deposit"
    BUY = "buy"
    BUY_FEE = "buy_fee"
    SELL = "sell"
    SELL_FEE = "sell_fee"
    SETTLE = "settle"


@dataclass(frozen=True)
class LedgerEntry:
    ts: int
    kind: Kind
    amount_cents: int  # signed change in cash
    key: str
    ticker: str = ""
    side: Side | None = None
    contracts: int = 0  # signed change in the position


def buy_entries(fill: Fill, fill_id: int) -> list[LedgerEntry]:
    out = [LedgerEntry(kind=Kind.BUY, amount_cents=-fill.cost_cents, contracts=fill.contracts,
                       key=f"fill:{fill_id}:cost", ts=fill.ts, ticker=fill.ticker, side=fill.side)]
    if fill.fee_cents:
        out.append(LedgerEntry(kind=Kind.BUY_FEE, amount_cents=-fill.fee_cents, key=f"fill:{fill_id}:fee",
                               ts=fill.ts, ticker=fill.ticker, side=fill.side))
    return out


def sell_entries(fill: Fill, fill_id: int) -> list[LedgerEntry]:
    out = [LedgerEntry(kind=Kind.SELL, amount_cents=fill.cost_cents, contracts=-fill.contracts,
                       key=f"fill:{fill_id}:proceeds", ts=fill.ts, ticker=fill.ticker, side=fill.side)]
    if fill.fee_cents:
        out.append(LedgerEntry(kind=Kind.SELL_FEE, amount_cents=-fill.fee_cents, key=f"fill:{fill_id}:fee",
                               ts=fill.ts, ticker=fill.ticker, side=fill.side))
    return out


def settle_entries(positions: Iterable[Position], result: Side, ts: int) -> list[LedgerEntry]:
    """$1 per winning contract, $0 per loser; one entry per position, keyed for exactly-once."""
    return [
        LedgerEntry(ts=ts, kind=Kind.SETTLE, ticker=p.ticker, side=p.side, contracts=-p.contracts,
                    amount_cents=100 * p.contracts if p.side is result else 0,
                    key=f"settle:{p.ticker}:{p.side.value}")
        for p in positions
    ]


@dataclass
class _Pos:
    contracts: int = 0
    cost_cents: int = 0
    fee_cents: int = 0
    opened_ts: int = 0


@dataclass(frozen=True)
class Closed:
    """A (part of a) position closed by a sale or a settlement."""

    ts: int
    ticker: str
    side: Side
    contracts: int
    cost_cents: int  # the cost basis released, fees included
    proceeds_cents: int  # what came back: $1 per winning contract, $0 per loser, or the sale
    kind: Kind

    @property
    def pnl_cents(self) -> int:
        return self.proceeds_cents - self.cost_cents


@dataclass
class Account:
    """Cash, open positions and realised PnL, folded from ledger entries."""

    cash_cents: int = 0
    deposits_cents: int = 0
    realized_cents: int = 0
    fees_cents: int = 0
    positions: dict[tuple[str, Side], _Pos] = field(default_factory=dict)
    closed: list[Closed] = field(default_factory=list)

    @classmethod
    def from_entries(cls, entries: Iterable[LedgerEntry]) -> "Account":
        acct = cls()
        for e in entries:
            acct.apply(e)
        return acct

    def apply(self, e: LedgerEntry) -> None:
        self.cash_cents += e.amount_cents
        if e.kind is Kind.DEPOSIT:
            self.deposits_cents += e.amount_cents
            return
        assert e.side is not None
        k = (e.ticker, e.side)
        if e.kind is Kind.BUY:
            pos = self.positions.setdefault(k, _Pos(opened_ts=e.ts))
            pos.contracts += e.contracts
            pos.cost_cents += -e.amount_cents
        elif e.kind is Kind.BUY_FEE:
            self.fees_cents += -e.amount_cents
            pos = self.positions.setdefault(k, _Pos(opened_ts=e.ts))
            pos.cost_cents += -e.amount_cents
            pos.fee_cents += -e.amount_cents
        elif e.kind is Kind.SELL_FEE:
            self.fees_cents += -e.amount_cents
            self.realized_cents += e.amount_cents
        elif e.kind in (Kind.SELL, Kind.SETTLE):
            if k not in self.positions or self.positions[k].contracts < -e.contracts:
                raise ValueError(f"ledger entry {e.key} closes more than is held")
            pos = self.positions[k]
            closing = -e.contracts
            if closing == pos.contracts:
                released = pos.cost_cents
            else:
                released = pos.cost_cents * closing // pos.contracts
            pos.contracts -= closing
            pos.cost_cents -= released
            pos.fee_cents = pos.fee_cents * pos.contracts // (pos.contracts + closing) if pos.contracts else 0
            self.realized_cents += e.amount_cents - released
            self.closed.append(Closed(e.ts, e.ticker, e.side, closing, released, e.amount_cents, e.kind))
            if pos.contracts == 0:
                del self.positions[k]

    # -- views ----------------------------------------------------------------------
    def open_positions(self) -> list[Position]:
        return [
            Position(ticker=t, side=s, contracts=p.contracts, cost_cents=p.cost_cents,
                     fee_cents=p.fee_cents, opened_ts=p.opened_ts)
            for (t, s), p in sorted(self.positions.items(), key=lambda kv: (kv[0][0], kv[0][1].value))
            if p.contracts > 0
        ]

    def tickers_held(self) -> set[str]:
        return {t for (t, _s), p in self.positions.items() if p.contracts > 0}

    def positions_in(self, ticker: str) -> list[Position]:
        return [p for p in self.open_positions() if p.ticker == ticker]


def _mark(side: Side, contracts: int, cost_cents: int, snapshot: TickQuote | None) -> int:
    if snapshot is not None:
        bid = snapshot.bid(side)
        if bid is not None:
            return contracts * price_to_cents(bid)
        if snapshot.last is not None:
            last = snapshot.last if side is Side.YES else Decimal(1) - snapshot.last
            return contracts * price_to_cents(last)
    return cost_cents


def mark_cents(position: Position, snapshot: TickQuote | None) -> int:
    """Liquidation value of a position: contracts at the side's best bid.

    Falls back to the last trade price, then to cost, when there is no bid.
    """
    return _mark(position.side, position.contracts, position.cost_cents, snapshot)


def equity_cents(account: Account, marks: Mapping[str, TickQuote]) -> int:
    return account.cash_cents + sum(_mark(side, p.contracts, p.cost_cents, marks.get(t))
                                    for (t, side), p in account.positions.items() if p.contracts > 0)
