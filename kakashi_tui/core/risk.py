"""The risk gate. Every decision passes through ``check`` before it can reach the broker.

Guardrails (see risk_limits.md). The ``HARD_*`` ceilings are the documented limits: a
configuration may tighten them, never loosen them (``RiskLimits`` refuses).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from typing import NamedTuple, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from kakashi_tui.core.fees import FeeTerms
from kakashi_tui.core.models import MarketStatus, Side, TradeDecision
from kakashi_tui.core.money import count_to_hundredths, fmt_cc
from kakashi_tui.core.orders import PaperOrder, reserved_cc
from kakashi_tui.core.sizing import per_trade_cap_cc

HARD_MAX_LOSS_PER_TRADE_PCT = Decimal("1")
HARD_MAX_OPEN_POSITIONS = 5
HARD_DAILY_LOSS_CAP_PCT = Decimal("3")
HARD_MAX_DRAWDOWN_PCT = Decimal("10")
HARD_MAX_EVENT_LOSS_PCT = Decimal("2")


#: Each cap's hard bound, its name in a refusal, and its unit: the one rule for all of them.
_HARD_BOUNDS: dict[str, tuple[Decimal | int, str, str]] = {
    "max_loss_per_trade_pct": (HARD_MAX_LOSS_PER_TRADE_PCT, "the per-trade cap", "%"),
    "max_open_positions": (HARD_MAX_OPEN_POSITIONS, "max open positions", ""),
    "daily_loss_cap_pct": (HARD_DAILY_LOSS_CAP_PCT, "the daily loss cap", "%"),
    "max_drawdown_pct": (HARD_MAX_DRAWDOWN_PCT, "the drawdown stop", "%"),
    "max_event_loss_pct": (HARD_MAX_EVENT_LOSS_PCT, "the event cap", "%"),
}


class RiskLimits(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    max_loss_per_trade_pct: Decimal = Field(default=HARD_MAX_LOSS_PER_TRADE_PCT, gt=0)
    max_open_positions: int = Field(default=HARD_MAX_OPEN_POSITIONS, ge=0)
    daily_loss_cap_pct: Decimal = Field(default=HARD_DAILY_LOSS_CAP_PCT, gt=0)
    max_quote_age_ms: int = Field(default=30_000, gt=0)
    max_spread: Decimal = Field(default=Decimal("0.05"), gt=0, le=1)
    max_drawdown_pct: Decimal = Field(default=HARD_MAX_DRAWDOWN_PCT, gt=0)
    max_event_loss_pct: Decimal = Field(default=HARD_MAX_EVENT_LOSS_PCT, gt=0)

    @field_validator(*_HARD_BOUNDS)
    @classmethod
    def _within_its_hard_bound(cls, v: Decimal | int, info: ValidationInfo) -> Decimal | int:
        """A config may tighten a cap, never loosen it past its ``HARD_*`` bound (risk_limits.md)."""
        bound, words, unit = _HARD_BOUNDS[info.field_name or ""]
        if v > bound:
            raise ValueError(f"{v}{unit} loosens {words} past {bound}{unit} (risk_limits.md)")
        return v


def daily_cap_cc(day_start_equity_cc: int, pct: Decimal) -> int:
    if day_start_equity_cc <= 0:
        return 0
    return int((Decimal(day_start_equity_cc) * pct / 100).to_integral_value(rounding=ROUND_FLOOR))


# -- the event cap: the worst case over an event's outcomes ---------------------------------------
_CC_PER_HUNDREDTH = 100  # a winning contract pays $1 (10,000 cc): 100 cc a hundredth


class Leg(NamedTuple):
    """One stake in an event: an open position, or the trade being decided. Its loss, in
    centicents, whichever way its market resolves: ``lose_cc`` when its side loses, ``win_cc``
    when its side wins (negative: a gain). Binary markets only (Kakashi opens no other)."""

    ticker: str
    side: Side
    lose_cc: int
    win_cc: int

    @classmethod
    def held(cls, ticker: str, side: Side, contracts: Decimal, cost_cc: int) -> Leg:
        """An open position (``Position``'s fields): it loses what it cost, fees included, or
        wins $1 a contract less that."""
        return cls(ticker, side, cost_cc, cost_cc - count_to_hundredths(contracts) * _CC_PER_HUNDREDTH)

    @classmethod
    def pending(cls, ticker: str, side: Side, contracts: Decimal, worst_case_cc: int) -> Leg:
        """A trade not yet filled, counted as the gate counts it: it loses its worst case (its
        contracts at the limit, the largest fee, a centicent of rounding per level), and where it
        wins it is never counted a gain (a partial fill may win less than its full size)."""
        payout = count_to_hundredths(contracts) * _CC_PER_HUNDREDTH
        return cls(ticker, side, worst_case_cc, max(0, worst_case_cc - payout))


def event_worst_cc(legs: Iterable[Leg], exclusive: bool) -> int:
    """The most the ``legs`` staked on one event can lose together, over every way it can resolve
    (centicents; negative when every outcome gains).

    Per market, the legs' loss if it resolves YES and if it resolves NO. A mutually exclusive
    event (Kalshi's ``mutually_exclusive``: at most one market resolves YES) resolves one of
    these ways: market i YES and every other NO, for each market i staked on, or none of them
    YES (another market of the event, or none at all: Kalshi's "at most one" allows it); the
    worst of those. Otherwise the markets may resolve any way at all, each its own worst: the
    sum over markets of the larger of the two."""
    per: dict[str, list[int]] = {}  # ticker -> [loss if YES, loss if NO]
    for leg in legs:
        ifs = per.setdefault(leg.ticker, [0, 0])
        if leg.side is Side.YES:
            ifs[0] += leg.win_cc
            ifs[1] += leg.lose_cc
        else:
            ifs[0] += leg.lose_cc
            ifs[1] += leg.win_cc
    if not exclusive:
        return sum(max(yes, no) for yes, no in per.values())
    all_no = sum(no for _yes, no in per.values())  # none of them YES (0 when nothing is staked)
    return max([all_no, *(all_no - no + yes for yes, no in per.values())])


def event_cap_cc(equity_cc: int, pct: Decimal) -> int:
    """The most an event's worst case may be: ``pct`` percent of equity, floored to a centicent."""
    return daily_cap_cc(equity_cc, pct)


@dataclass(slots=True)
class RiskContext:
    """What the gate needs to know at decision time, all derived from the ledger and feed.
    Equities are liquidation values (ledger.equity_cc), in centicents. Made for every
    decision and read once: treat it as immutable (not frozen: a frozen dataclass costs
    a setattr call per field to build)."""

    now_ms: int
    kill_switch: bool
    daily_stopped: bool
    open_positions: int
    cash_cc: int
    equity_cc: int
    day_start_equity_cc: int
    market_status: MarketStatus
    market_close_ts: int | None
    quote_ts: int
    spread: Decimal | None
    book_depth: bool = True  # the quote carries order-book levels to size and fill against
    floored: bool = False  # the market has a settlement floor (``settlement_bounds_type`` not default)
    halted_shard: int | None = None  # the market's exchange shard, when the exchange says it is halted
    drawdown_stopped: bool = False  # the drawdown stop halted trading (until the operator re-arms)
    peak_equity_cc: int = 0  # the equity peak the drawdown stop measures from (0: none yet)
    # the event cap: the market's event (its ``event_ticker``; "": the market is its own event),
    # whether Kalshi says its markets are mutually exclusive (unknown: not), and what is already
    # staked on it (each open position in the event's markets, ``Leg.held``)
    event: str = ""
    event_exclusive: bool = False
    event_legs: tuple[Leg, ...] = ()
    #: what the live paper orders reserve (``reservation_cc``): each counts in every cap as if
    #: it had filled (its market is in ``open_positions`` too)
    reserved_cc: int = 0


# Reasons, stable strings: they are stored with every rejected decision and counted in reports.
KILL_SWITCH = "kill switch thrown"
DAILY_STOP = "daily loss cap hit: trading stopped for the rest of the UTC day"
DRAWDOWN_STOP = "drawdown stop: trading halted until the operator re-arms"
DRAWDOWN_HEADROOM = "worst-case loss would breach the drawdown stop"
MARKET_NOT_OPEN = "market not open"
MARKET_CLOSED = "market past its close time"
STALE_QUOTE = "stale quote"
WIDE_SPREAD = "spread too wide"
NO_SPREAD = "one-sided book"
MAX_POSITIONS = "max open positions reached"
ZERO_SIZE = "per-trade cap allows 0 contracts"
NO_DEPTH = "no order book depth to fill against"
PER_TRADE_CAP = "worst-case loss exceeds per-trade cap"
DAILY_HEADROOM = "worst-case loss would breach the daily loss cap"
NO_CASH = "insufficient cash"
SETTLEMENT_FLOOR = "settlement floor: not modelled"
SHARD_HALTED = "exchange shard"  # "exchange shard 1 halted"
EVENT_CAP = "event cap"  # "event cap: worst case $x > 2% of equity $y ($z) in EVENT"


class Sized(Protocol):
    """What the gate reads of a decision (a ``TradeDecision``, or the strategy's proposal)."""

    @property
    def ticker(self) -> str: ...

    @property
    def side(self) -> Side: ...

    @property
    def contracts(self) -> Decimal: ...

    @property
    def worst_case_cc(self) -> int: ...


def check(decision: TradeDecision | Sized, ctx: RiskContext, limits: RiskLimits) -> tuple[bool, str]:
    """(accepted, reason). The first failing guardrail wins; order puts the hardest stops first."""
    if ctx.kill_switch:
        return False, KILL_SWITCH
    if ctx.drawdown_stopped:
        return False, DRAWDOWN_STOP
    if ctx.daily_stopped:
        return False, DAILY_STOP
    if not ctx.market_status.tradable:
        return False, f"{MARKET_NOT_OPEN} ({ctx.market_status.value})"
    if ctx.market_close_ts is not None and ctx.now_ms >= ctx.market_close_ts:
        return False, MARKET_CLOSED
    if ctx.halted_shard is not None:
        return False, f"{SHARD_HALTED} {ctx.halted_shard} halted"
    if ctx.floored:
        return False, SETTLEMENT_FLOOR
    age = ctx.now_ms - ctx.quote_ts
    if age > limits.max_quote_age_ms:
        return False, f"{STALE_QUOTE} ({age} ms > {limits.max_quote_age_ms} ms)"
    if ctx.spread is None:
        return False, NO_SPREAD
    if ctx.spread > limits.max_spread:
        return False, f"{WIDE_SPREAD} ({ctx.spread} > {limits.max_spread})"
    if ctx.open_positions >= limits.max_open_positions:
        return False, f"{MAX_POSITIONS} ({ctx.open_positions}/{limits.max_open_positions})"
    if decision.contracts <= 0:
        return False, ZERO_SIZE if ctx.book_depth else NO_DEPTH
    cap = per_trade_cap_cc(ctx.equity_cc, limits.max_loss_per_trade_pct)
    if decision.worst_case_cc > cap:
        return False, f"{PER_TRADE_CAP} ({fmt_cc(decision.worst_case_cc)} > {fmt_cc(cap)})"
    ecap = event_cap_cc(ctx.equity_cc, limits.max_event_loss_pct)
    this = Leg.pending(decision.ticker, decision.side, decision.contracts, decision.worst_case_cc)
    worst = event_worst_cc((*ctx.event_legs, this), ctx.event_exclusive)
    if worst > ecap:
        return False, (
            f"{EVENT_CAP}: worst case {fmt_cc(worst)} > {limits.max_event_loss_pct}% of equity"
            f" {fmt_cc(ctx.equity_cc)} ({fmt_cc(ecap)}) in {ctx.event or decision.ticker}"
        )
    # the live orders' reservations count as losses already taken (as if they had filled)
    held = ctx.reserved_cc
    pending = f" + {fmt_cc(held)} reserved by live orders" if held else ""
    day_loss = max(0, ctx.day_start_equity_cc - ctx.equity_cc)
    dcap = daily_cap_cc(ctx.day_start_equity_cc, limits.daily_loss_cap_pct)
    if day_loss + held + decision.worst_case_cc > dcap:
        return False, (
            f"{DAILY_HEADROOM} ({fmt_cc(day_loss)} lost{pending} + {fmt_cc(decision.worst_case_cc)} > {fmt_cc(dcap)})"
        )
    if ctx.peak_equity_cc > 0:
        down = max(0, ctx.peak_equity_cc - ctx.equity_cc)
        ddcap = drawdown_cap_cc(ctx.peak_equity_cc, limits.max_drawdown_pct)
        if down + held + decision.worst_case_cc > ddcap:
            return False, (
                f"{DRAWDOWN_HEADROOM} ({fmt_cc(down)} below the peak{pending} + {fmt_cc(decision.worst_case_cc)}"
                f" > {fmt_cc(ddcap)})"
            )
    if decision.worst_case_cc > ctx.cash_cc - held:
        return False, NO_CASH
    return True, "accepted"


def reservation_cc(orders: Iterable[PaperOrder], terms_of: Callable[[str], FeeTerms], now_ms: int) -> int:
    """What the live paper orders reserve, summed: each one's worst-case loss as if what remains
    of it filled (``orders.reserved_cc``), at its market's fee terms (``terms_of(ticker)``). The
    gate counts it in the daily cap, the drawdown stop's headroom and the cash check, and each
    order's market as an open position (issue #23 item 5: the one rule for pending orders)."""
    return sum(reserved_cc(o, terms_of(o.ticker), now_ms) for o in orders)


def daily_cap_hit(day_start_equity_cc: int, equity_cc: int, limits: RiskLimits) -> bool:
    cap = daily_cap_cc(day_start_equity_cc, limits.daily_loss_cap_pct)
    return day_start_equity_cc - equity_cc >= cap > 0


def drawdown_cap_cc(peak_equity_cc: int, pct: Decimal) -> int:
    """How far (centicents) marked equity may fall below its peak before the drawdown stop."""
    return daily_cap_cc(peak_equity_cc, pct)


def drawdown_hit(peak_equity_cc: int, equity_cc: int, limits: RiskLimits) -> bool:
    """Marked equity has fallen ``max_drawdown_pct`` (or more) below its peak."""
    cap = drawdown_cap_cc(peak_equity_cc, limits.max_drawdown_pct)
    return peak_equity_cc - equity_cc >= cap > 0


def drawdown_text(peak_equity_cc: int, equity_cc: int) -> str:
    """The drawdown stop's reason: ``drawdown stop: equity $900.00 is 10.00% below its peak $1,000.00``."""
    pct = Decimal(peak_equity_cc - equity_cc) * 100 / Decimal(peak_equity_cc) if peak_equity_cc > 0 else Decimal(0)
    return f"drawdown stop: equity {fmt_cc(equity_cc)} is {pct:.2f}% below its peak {fmt_cc(peak_equity_cc)}"
