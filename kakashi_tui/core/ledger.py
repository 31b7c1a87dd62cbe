"""The append-only ledger and the account derived from it.

Truth lives in the ledger: cash, positions and realised PnL are a fold over its entries
(``Account.apply``), so the same function rebuilds the account after a restart. Every
entry has a unique ``key`` (e.g. ``fill:12:cost``, ``settle:T:yes``): the store refuses a
second entry with the same key, which is what makes fills and settlements exactly-once.
Money is integer centicents ($0.0001), counts Decimals on the 0.01 grid (core/money.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum

from kakashi_tui.core.broker import liquidation_cc
from kakashi_tui.core.fees import FeeTerms
from kakashi_tui.core.models import Fill, Market, Position, Quote, Side
from kakashi_tui.core.money import floor_cc

_ZERO = Decimal(0)


class Kind(str, Enum):
    DEPOSIT = "deposit"
    BUY = "buy"
    BUY_FEE = "buy_fee"
    SELL = "sell"
    SELL_FEE = "sell_fee"
    SETTLE = "settle"
    SETTLE_FIX = "settle_fix"  # a changed result (amended / finalized) corrects what SETTLE paid
    NOTE = "note"  # moves nothing: a fact about the ledger itself (e.g. when its hash chain began)


@dataclass(frozen=True)
class LedgerEntry:
    ts: int
    kind: Kind
    amount_cc: int  # signed change in cash, centicents
    key: str
    ticker: str = ""
    side: Side | None = None
    contracts: Decimal = _ZERO  # signed change in the position (0.01 grid)


def _fill_entries(fill: Fill, fill_id: int, kind: Kind, fee_kind: Kind, sign: int, what: str) -> list[LedgerEntry]:
    """A fill's entries: its value (``sign`` -1 for a buy's cost, +1 for a sale's proceeds; the
    contracts move the other way) and, when it paid one, its fee."""
    out = [
        LedgerEntry(
            kind=kind,
            amount_cc=sign * fill.value_cc,
            contracts=-sign * fill.contracts,
            key=f"fill:{fill_id}:{what}",
            ts=fill.ts,
            ticker=fill.ticker,
            side=fill.side,
        )
    ]
    if fill.fee_cc:
        out.append(
            LedgerEntry(
                kind=fee_kind,
                amount_cc=-fill.fee_cc,
                key=f"fill:{fill_id}:fee",
                ts=fill.ts,
                ticker=fill.ticker,
                side=fill.side,
            )
        )
    return out


def buy_entries(fill: Fill, fill_id: int) -> list[LedgerEntry]:
    return _fill_entries(fill, fill_id, Kind.BUY, Kind.BUY_FEE, -1, "cost")


def sell_entries(fill: Fill, fill_id: int) -> list[LedgerEntry]:
    return _fill_entries(fill, fill_id, Kind.SELL, Kind.SELL_FEE, 1, "proceeds")


def payout_cc(market: Market, side: Side, contracts: Decimal) -> int:
    """What ``contracts`` of ``side`` receive at ``market``'s result: $1 per winning binary
    contract, $0 per loser; a scalar market pays YES its settlement value and NO one minus it
    (rounded down to the centicent). No fee at settlement."""
    per = market.payout(side)
    if per is None:
        raise ValueError(f"{market.ticker} has no result to pay")
    return floor_cc(per * contracts)


def settle_entries(
    positions: Iterable[Position], market: Market, ts: int, account: Account | None = None
) -> list[LedgerEntry]:
    """One entry per position, keyed for exactly-once (``settle:<ticker>:<side>``). A position
    opened after its market had already been settled (older versions allowed it) is paid under
    ``settle:<ticker>:<side>:<n>``, n counting the settlements of that ticker and side."""
    out = []
    for p in positions:
        key = f"settle:{p.ticker}:{p.side.value}"
        rec = account.settlements.get((p.ticker, p.side)) if account is not None else None
        if rec is not None:
            key = f"{key}:{rec.times + 1}"
        out.append(
            LedgerEntry(
                ts=ts,
                kind=Kind.SETTLE,
                ticker=p.ticker,
                side=p.side,
                contracts=-p.contracts,
                amount_cc=payout_cc(market, p.side, p.contracts),
                key=key,
            )
        )
    return out


def settlement_fixes(account: Account, market: Market, ts: int) -> list[LedgerEntry]:
    """New entries that bring what was paid for ``market`` to what its (changed) result pays.
    Nothing when they agree: the ledger is append-only, an old entry is never edited."""
    out = []
    for (ticker, side), rec in sorted(account.settlements.items(), key=lambda kv: kv[0][1].value):
        if ticker != market.ticker:
            continue
        diff = payout_cc(market, side, rec.contracts) - rec.paid_cc
        if diff:
            out.append(
                LedgerEntry(
                    ts=ts,
                    kind=Kind.SETTLE_FIX,
                    ticker=ticker,
                    side=side,
                    amount_cc=diff,
                    key=f"settle:{ticker}:{side.value}:fix:{rec.fixes + 1}",
                )
            )
    return out


@dataclass
class _Pos:
    contracts: Decimal = _ZERO
    cost_cc: int = 0
    fee_cc: int = 0
    opened_ts: int = 0


@dataclass
class _Settled:
    contracts: Decimal
    paid_cc: int
    fixes: int = 0
    times: int = 0


@dataclass(frozen=True)
class Closed:
    """A (part of a) position closed by a sale or a settlement, or a settlement's correction."""

    ts: int
    ticker: str
    side: Side
    contracts: Decimal
    cost_cc: int  # the cost basis released, entry fees included
    proceeds_cc: int  # what came back: the settlement payout, or the sale's value
    kind: Kind
    fee_cc: int = 0  # the sale's fee (entry fees are in cost_cc)

    @property
    def pnl_cc(self) -> int:
        return self.proceeds_cc - self.cost_cc - self.fee_cc


@dataclass
class Account:
    """Cash, open positions and realised PnL, folded from ledger entries. Realised PnL counts
    every fee: entry fees through the cost basis, sale fees on the sale they belong to."""

    cash_cc: int = 0
    deposits_cc: int = 0
    realized_cc: int = 0
    fees_cc: int = 0
    positions: dict[tuple[str, Side], _Pos] = field(default_factory=dict)
    closed: list[Closed] = field(default_factory=list)
    settlements: dict[tuple[str, Side], _Settled] = field(default_factory=dict)
    _sales: dict[str, int] = field(default_factory=dict)  # fill key prefix -> index in closed

    @classmethod
    def from_entries(cls, entries: Iterable[LedgerEntry]) -> Account:
        acct = cls()
        for e in entries:
            acct.apply(e)
        return acct

    def apply(self, e: LedgerEntry) -> None:
        self.cash_cc += e.amount_cc
        if e.kind is Kind.DEPOSIT:
            self.deposits_cc += e.amount_cc
            return
        if e.kind is Kind.NOTE:
            return
        assert e.side is not None
        k = (e.ticker, e.side)
        if e.kind is Kind.BUY:
            pos = self.positions.setdefault(k, _Pos(opened_ts=e.ts))
            pos.contracts += e.contracts
            pos.cost_cc += -e.amount_cc
        elif e.kind is Kind.BUY_FEE:
            self.fees_cc += -e.amount_cc
            pos = self.positions.setdefault(k, _Pos(opened_ts=e.ts))
            pos.cost_cc += -e.amount_cc
            pos.fee_cc += -e.amount_cc
        elif e.kind is Kind.SELL_FEE:
            fee = -e.amount_cc
            self.fees_cc += fee
            self.realized_cc -= fee
            i = self._sales.pop(e.key.rsplit(":", 1)[0], None)
            if i is not None:  # the sale this fee belongs to carries it in its PnL
                c = self.closed[i]
                self.closed[i] = Closed(
                    c.ts, c.ticker, c.side, c.contracts, c.cost_cc, c.proceeds_cc, c.kind, c.fee_cc + fee
                )
        elif e.kind is Kind.SETTLE_FIX:
            rec = self.settlements.get(k)
            if rec is not None:
                rec.paid_cc += e.amount_cc
                rec.fixes += 1
            self.realized_cc += e.amount_cc
            self.closed.append(Closed(e.ts, e.ticker, e.side, _ZERO, 0, e.amount_cc, e.kind))
        elif e.kind in (Kind.SELL, Kind.SETTLE):
            closing = -e.contracts
            if k not in self.positions or self.positions[k].contracts < closing:
                raise ValueError(f"ledger entry {e.key} closes more than is held")
            pos = self.positions[k]
            if closing == pos.contracts:
                released, fee_released = pos.cost_cc, pos.fee_cc
            else:
                released = int(Decimal(pos.cost_cc) * closing / pos.contracts)
                fee_released = int(Decimal(pos.fee_cc) * closing / pos.contracts)
            pos.contracts -= closing
            pos.cost_cc -= released
            pos.fee_cc -= fee_released
            self.realized_cc += e.amount_cc - released
            if e.kind is Kind.SELL:
                self._sales[e.key.rsplit(":", 1)[0]] = len(self.closed)
            else:
                rec = self.settlements.setdefault(k, _Settled(_ZERO, 0))
                rec.contracts += closing
                rec.paid_cc += e.amount_cc
                rec.times += 1
            self.closed.append(Closed(e.ts, e.ticker, e.side, closing, released, e.amount_cc, e.kind))
            if pos.contracts == 0:
                del self.positions[k]

    # -- views ----------------------------------------------------------------------
    def open_count(self) -> int:
        """How many positions are open (len(open_positions()) without making them)."""
        return sum(1 for p in self.positions.values() if p.contracts > 0)

    def open_positions(self) -> list[Position]:
        return [
            Position(ticker=t, side=s, contracts=p.contracts, cost_cc=p.cost_cc, fee_cc=p.fee_cc, opened_ts=p.opened_ts)
            for (t, s), p in sorted(self.positions.items(), key=lambda kv: (kv[0][0], kv[0][1].value))
            if p.contracts > 0
        ]

    def tickers_held(self) -> set[str]:
        return {t for (t, _s), p in self.positions.items() if p.contracts > 0}

    def positions_in(self, ticker: str) -> list[Position]:
        return [p for p in self.open_positions() if p.ticker == ticker]


def mark_cc(side: Side, contracts: Decimal, quote: Quote | None, terms: FeeTerms = FeeTerms(), now_ms: int = 0) -> int:
    """The one marking rule (risk_limits.md): a position's liquidation value, what its contracts
    fetch sold into the bids now, after the sale's fees (broker.liquidation_cc walks them); zero
    without bids. Never cost, never the last trade. Every mark goes through here: the equity
    (``equity_cc``: the engine's ticks, caps and desk, ``kakashi status``, the report) and the
    desk's positions panel."""
    return liquidation_cc(side, contracts, quote, terms, now_ms)


#: (ticker, side) -> (quote, contracts, terms, fee waived, liquidation value): what ``equity_cc``
#: last marked a position at, reused while the quote's book and the rest are the same
MarkMemo = dict[tuple[str, Side], tuple[Quote | None, Decimal, FeeTerms, bool, int]]


def equity_cc(
    account: Account,
    marks: Mapping[str, Quote | None],
    terms_of: Callable[[str], FeeTerms] | None = None,
    now_ms: int = 0,
    memo: MarkMemo | None = None,
) -> int:
    """Cash plus every open position marked (``mark_cc``): the one equity (risk_limits.md).
    ``memo`` (kept by the caller across calls) skips re-marking a position whose inputs did
    not change: the same quote, or one with the same prices and book (``Quote.same_book``)."""
    total = account.cash_cc
    for (t, side), p in account.positions.items():
        if p.contracts > 0:
            terms = terms_of(t) if terms_of is not None else FeeTerms()
            q = marks.get(t)
            if memo is None:
                total += mark_cc(side, p.contracts, q, terms, now_ms)
                continue
            waived = terms.waived(now_ms)
            hit = memo.get((t, side))
            if (
                hit is not None
                and (hit[0] is q or (q is not None and q.same_book(hit[0])))
                and hit[1] == p.contracts
                and hit[2] == terms
                and hit[3] == waived
            ):
                total += hit[4]
                continue
            value = mark_cc(side, p.contracts, q, terms, now_ms)
            if len(memo) > 4 * len(account.positions) + 64:  # (closed positions' entries)
                memo.clear()
            memo[(t, side)] = (q, p.contracts, terms, waived, value)
            total += value
    return total
