"""Domain models (pydantic). Units (core/money.py): prices are probabilities in [0, 1] on the
$0.0001 grid, counts are Decimals on the 0.01 grid, money is integer centicents ($0.0001);
time is UTC epoch milliseconds.

Validation rejects corrupt rows with a reason: prices outside [0, 1] or off the $0.0001
grid, counts off the 0.01 grid, ask at or below bid (crossed), depth that disagrees with the
top of book, a missing ticker, a timestamp in the future, absurd or not in UTC. A market with
no resting orders (no bid and no ask; Kalshi's 0.0000 / 1.0000) is a valid quiet quote.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any, NamedTuple

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from kakashi_tui.core.grid import GridError, PriceGrid, grid_of, grid_text
from kakashi_tui.core.money import (
    ONE,
    ZERO,
    cc_to_price,
    count_to_hundredths,
    fmt_count,
    hundredths_to_count,
    on_grid,
    price_to_cc,
)
from kakashi_tui.core.rowrules import (
    COUNT,
    CROSSED,
    DEPTH_ASK,
    DEPTH_BID,
    FUTURE,
    FUTURE_SKEW_MS,
    LEVEL_ORDER,
    LEVEL_PRICE,
    LEVEL_QTY,
    MAX_TS_MS,
    MISSING_TICKER,
    PRICE,
    TS,
)

_SIX_PLACES = Decimal("0.000001")


class Side(str, Enum):
    YES = "yes"
    NO = "no"

    @property
    def other(self) -> Side:
        return Side.NO if self is Side.YES else Side.YES


class MarketStatus(str, Enum):
    """Kalshi's lifecycle words (Trade API v2 market ``status``); the simulator uses the same."""

    INITIALIZED = "initialized"
    INACTIVE = "inactive"
    ACTIVE = "active"
    CLOSED = "closed"
    DETERMINED = "determined"
    DISPUTED = "disputed"
    AMENDED = "amended"
    FINALIZED = "finalized"

    @property
    def tradable(self) -> bool:
        return self is MarketStatus.ACTIVE

    @property
    def settled(self) -> bool:
        """A result is known and pays (rules.md: paid at ``determined``, corrected after)."""
        return self in _SETTLED


_SETTLED = frozenset((MarketStatus.DETERMINED, MarketStatus.AMENDED, MarketStatus.FINALIZED))
#: Words stored by schema versions before 4 (and older recordings), read as today's.
LEGACY_STATUS = {"open": MarketStatus.ACTIVE, "unopened": MarketStatus.INITIALIZED, "settled": MarketStatus.FINALIZED}


class Result(str, Enum):
    YES = "yes"
    NO = "no"
    SCALAR = "scalar"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# The snapshot's rules are declared in core/rowrules.py (bounds, units, reasons); the rule book
# below applies them, as do the quick check (core/validate.py) and the vectorised check.
def _check_ts(v: int, info: ValidationInfo) -> int:
    if v < TS.min_u or v > TS.max_u:
        raise ValueError(TS.low_reason if v < TS.min_u else TS.high_reason)
    now = (info.context or {}).get("now_ms")
    if now is not None and v > now + FUTURE_SKEW_MS:
        raise ValueError(FUTURE.format(v=v, now=now))
    return v


def parse_utc_ms(value: Any) -> int | None:
    """RFC 3339 string (must carry UTC: 'Z' or +00:00) or epoch ms int -> epoch ms."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError("timestamp must not be a boolean")
    if isinstance(value, int):
        if not 0 < value <= MAX_TS_MS:
            raise ValueError(f"timestamp {value} is not epoch ms")
        return value
    if isinstance(value, str):
        s = value.strip()
        try:
            dt = datetime.fromisoformat(s.replace("Z", "+00:00") if s.endswith("Z") else s)
        except ValueError as e:
            raise ValueError(f"bad timestamp {value!r}") from e
        if dt.tzinfo is None or dt.utcoffset() != timedelta(0):
            raise ValueError(f"timestamp {value!r} is not UTC")
        return int(dt.timestamp() * 1000)
    raise ValueError(f"bad timestamp {value!r}")


class Market(BaseModel):
    """A market's metadata (raw-row keys: adapters/source.py RawRow; unknown keys are ignored)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    ticker: str
    title: str = ""
    subtitle: str = ""
    series: str = ""
    event_ticker: str = ""
    status: MarketStatus
    market_type: str = "binary"  # "binary" | "scalar"
    open_ts: int | None = None
    close_ts: int | None = None
    updated_ts: int | None = None  # the exchange's own last-update time
    result: Result | None = None
    settlement_value: Decimal | None = None  # YES's payout per contract (scalar markets)
    fee_multiplier: Decimal | None = None
    fee_type: str | None = None
    fee_waiver_until_ts: int | None = None
    # spec 3.31+: ``floor`` markets pay YES value minus floor (not modelled: never traded)
    settlement_bounds_type: str = "default"
    settlement_floor: Decimal | None = None  # dollars, up to 6 decimals (``settlement_floor_dollars``)
    price_ranges: str | None = None  # the market's price grid, stored form (core/grid.py ``grid_text``)
    exchange_index: int | None = None  # the exchange shard that trades it (None: the default, 0)
    # its event's ``mutually_exclusive`` (at most one of the event's markets resolves YES); None:
    # not known, which the event cap counts as not exclusive (risk_limits.md)
    event_exclusive: bool | None = None

    @field_validator("ticker")
    @classmethod
    def _ticker(cls, v: str) -> str:
        v = v.strip()
        if not v:
            raise ValueError(MISSING_TICKER)
        return v

    @field_validator("settlement_bounds_type", mode="before")
    @classmethod
    def _bounds(cls, v: Any) -> Any:
        return "default" if v is None or v == "" else v

    @field_validator("price_ranges", mode="before")
    @classmethod
    def _ranges(cls, v: Any) -> Any:
        if v is None or v == "":
            return None
        try:
            return grid_text(json.loads(v) if isinstance(v, str) else v)
        except (GridError, ValueError) as e:
            raise ValueError(str(e)) from None

    @field_validator("exchange_index")
    @classmethod
    def _shard(cls, v: int | None) -> int | None:
        if v is not None and not 0 <= v < 1_000_000:
            raise ValueError(f"exchange_index {v} is not a shard number")
        return v

    @property
    def floored(self) -> bool:
        """A settlement floor applies (Kakashi does not model it: such a market is never traded)."""
        return self.settlement_bounds_type != "default"

    @property
    def grid(self) -> PriceGrid | None:
        """The market's price grid (``price_ranges``); None without one (as before 3.29)."""
        return None if self.price_ranges is None else grid_of(self.price_ranges)

    @property
    def shard(self) -> int:
        """The exchange shard that trades it: ``exchange_index``, else the default shard 0."""
        return self.exchange_index or 0

    @field_validator("status", mode="before")
    @classmethod
    def _status(cls, v: Any) -> Any:
        return LEGACY_STATUS.get(v, v) if isinstance(v, str) else v

    @field_validator("market_type", mode="before")
    @classmethod
    def _type(cls, v: Any) -> Any:
        if v is None or v == "":
            return "binary"
        if v not in ("binary", "scalar"):
            raise ValueError(f"unknown market_type {v!r}")
        return v

    @field_validator("result", mode="before")
    @classmethod
    def _result(cls, v: Any) -> Any:
        return None if v == "" else v

    @field_validator("open_ts", "close_ts", "updated_ts", "fee_waiver_until_ts", mode="before")
    @classmethod
    def _times(cls, v: Any) -> int | None:
        return parse_utc_ms(v)

    @field_validator("settlement_value", "settlement_floor")
    @classmethod
    def _value(cls, v: Decimal | None, info: ValidationInfo) -> Decimal | None:
        # spec FixedPointDollars: "up to 6 decimal places"; the payout is floored to the centicent
        if v is not None and (not v.is_finite() or not ZERO <= v <= ONE or not on_grid(v, _SIX_PLACES)):
            raise ValueError(f"{info.field_name} {v} is not a dollar amount in [0, 1] with at most 6 decimals")
        return v

    @field_validator("fee_multiplier")
    @classmethod
    def _mult(cls, v: Decimal | None) -> Decimal | None:
        if v is not None and (not v.is_finite() or not ZERO <= v <= 100):
            raise ValueError(f"fee_multiplier {v} outside [0, 100]")
        return v

    @model_validator(mode="after")
    def _settled_needs_result(self) -> Market:
        if self.status.settled and self.result is None:
            raise ValueError(f"{self.status.value} market has no result")
        if self.result is Result.SCALAR and self.settlement_value is None:
            raise ValueError("scalar result without a settlement_value")
        return self

    def payout(self, side: Side) -> Decimal | None:
        """Dollars per contract of ``side`` at settlement; None while there is no result."""
        if self.result is None:
            return None
        if self.result is Result.SCALAR:
            assert self.settlement_value is not None
            return self.settlement_value if side is Side.YES else ONE - self.settlement_value
        return ONE if self.result.value == side.value else ZERO


class BookLevel(_Frozen):
    """A level: rowrules.LEVEL_PRICE (strictly inside (0, 1)) and LEVEL_QTY (a positive count)."""

    price: Decimal
    qty: Decimal

    @field_validator("price")
    @classmethod
    def _p(cls, v: Decimal) -> Decimal:
        return LEVEL_PRICE.check(v)

    @field_validator("qty")
    @classmethod
    def _q(cls, v: Decimal) -> Decimal:
        return LEVEL_QTY.check(v)


class Level(NamedTuple):
    """One book level of a ``Quote``: price, count."""

    price: Decimal
    qty: Decimal


#: Every price on the $0.0001 grid, by centicents: GRID[4230] == Decimal("0.4230").
GRID: tuple[Decimal, ...] = tuple(Decimal(f"{c / 10_000:.4f}") for c in range(10_001))


def qty_text(h: int) -> str:
    """A count in hundredths as Kalshi writes it: 1300 -> "13.00"."""
    return f"{h // 100}.{h % 100:02d}"


# The book's stored text (data_schema.md), built here only: compact JSON
# ``{"yes":[["0.4230","13.00"],...],"no":[...]}``, ``""`` without depth. The quick check and the
# catalog replay make it from these parts (kept in tables), so every form gives the same bytes.
def level_head(c: int) -> str:
    """A level's text up to its count: ``["0.4230","``."""
    return f'["{GRID[c]}","'


def level_tail(h: int) -> str:
    """A level's text from its count on: ``13.00"]``."""
    return f'{qty_text(h)}"]'


def level_text(c: int, h: int) -> str:
    """One level (centicents, hundredths) as stored: ``["0.4230","13.00"]``."""
    return level_head(c) + level_tail(h)


def book_of_levels(yes: list[str], no: list[str]) -> str:
    """The stored text of a depth with levels from their texts (``level_text``), best first
    (a depth without levels is ``""``: the caller's test, it knows already)."""
    return f'{{"yes":[{",".join(yes)}],"no":[{",".join(no)}]}}'


def book_text(yes: list[tuple[int, int]], no: list[tuple[int, int]]) -> str:
    """Depth as stored from (centicents, hundredths) pairs, best first; ``""`` without depth."""
    if not yes and not no:
        return ""
    return book_of_levels([level_text(c, h) for c, h in yes], [level_text(c, h) for c, h in no])


_NO_BID = PRICE.lo_d  # Kalshi's quiet sides (rowrules.NO_BID_U / NO_ASK_U)
_NO_ASK = PRICE.hi_d


class QuoteRules(_Frozen):
    """The rule book for a raw quote (pydantic names every rejection's reason), not a quote: a
    row it accepts becomes a ``Quote`` (``Quote.from_rules``), the one quote type there is. The
    stored record of a quote keeps its old name, a snapshot (the ``snapshots`` table and the
    catalog's ``snapshots`` folder are stored formats).

    Kalshi lists only bids: ``yes_bids`` and ``no_bids``, each best first. A YES ask at p is a
    NO bid at 1 - p, so ``yes_ask == 1 - best NO bid``. A bid of 0 or an ask of 1 means no
    order on that side (Kalshi's quiet 0.0000 / 1.0000) and is read as none.
    """

    ticker: str
    ts: int
    yes_bid: Decimal | None = None
    yes_ask: Decimal | None = None
    last: Decimal | None = None
    yes_bids: tuple[BookLevel, ...] = ()
    no_bids: tuple[BookLevel, ...] = ()
    volume: Decimal = ZERO

    @field_validator("ticker")
    @classmethod
    def _ticker(cls, v: str) -> str:
        v = v.strip()
        if not v:
            raise ValueError(MISSING_TICKER)
        return v

    @field_validator("yes_bid", "yes_ask", "last")
    @classmethod
    def _prices(cls, v: Decimal | None) -> Decimal | None:
        return None if v is None else PRICE.check(v)

    @field_validator("volume")
    @classmethod
    def _volume(cls, v: Decimal) -> Decimal:
        return COUNT.check(v)

    @field_validator("ts")
    @classmethod
    def _ts(cls, v: int, info: ValidationInfo) -> int:
        return _check_ts(v, info)

    @model_validator(mode="after")
    def _book(self) -> QuoteRules:
        bid = None if self.yes_bid == _NO_BID else self.yes_bid
        ask = None if self.yes_ask == _NO_ASK else self.yes_ask
        if bid is not None and ask is not None and ask <= bid:
            raise ValueError(CROSSED.format(ask=ask, bid=bid))
        if self.yes_bids and bid is not None and self.yes_bids[0].price != bid:
            raise ValueError(DEPTH_BID)
        if self.no_bids and ask is not None and ONE - self.no_bids[0].price != ask:
            raise ValueError(DEPTH_ASK)
        for levels in (self.yes_bids, self.no_bids):
            prices = [lv.price for lv in levels]
            if prices != sorted(prices, reverse=True) or len(set(prices)) != len(prices):
                raise ValueError(LEVEL_ORDER)
        return self


def _cc(p: Decimal | None) -> int | None:
    return None if p is None else price_to_cc(p)


class Quote:
    """A validated quote: the one type the tick, broker, strategy, marking and desk read.

    Made by ``core.validate`` (the quick check, or from a pydantic ``QuoteRules``) and by the
    store from its own rows; treat it as immutable. Depth is kept as centicents and hundredths
    and turned into ``Level`` tuples on first read (most quotes are never read level by
    level). ``prices_cc`` (bid, ask, last), ``volume_hundredths`` and ``book_text`` are the stored forms.
    ``yes_bid`` / ``yes_ask`` are None when that side has no order (a quiet market has neither).
    """

    __slots__ = (
        "ticker",
        "ts",
        "yes_bid",
        "yes_ask",
        "last",
        "volume_hundredths",
        "prices_cc",
        "book_text",
        "_depth",
        "_levels",
    )
    ticker: str
    ts: int
    yes_bid: Decimal | None
    yes_ask: Decimal | None
    last: Decimal | None
    volume_hundredths: int
    prices_cc: tuple[int | None, int | None, int | None]
    book_text: str

    def __init__(
        self,
        ticker: str,
        ts: int,
        bid_cc: int | None,
        ask_cc: int | None,
        last_cc: int | None,
        volume_hundredths: int,
        depth: tuple[Sequence[int], Sequence[int], Sequence[int], Sequence[int]],
        book: str | None = None,
    ) -> None:
        """``depth``: (yes centicents, yes hundredths, no centicents, no hundredths), best first.
        Kept as tuples (lists are copied): the collector stops tracking a tuple of ints, and a
        quote's lists stayed tracked for as long as the quote lived (issue #19)."""
        self.ticker, self.ts, self.volume_hundredths = ticker, ts, volume_hundredths
        self.yes_bid = None if bid_cc is None else GRID[bid_cc]
        self.yes_ask = None if ask_cc is None else GRID[ask_cc]
        self.last = None if last_cc is None else GRID[last_cc]
        self.prices_cc = (bid_cc, ask_cc, last_cc)
        yc, yq, nc, nq = depth
        self._depth = (tuple(yc), tuple(yq), tuple(nc), tuple(nq))  # (a tuple is not copied)
        self._levels: tuple[tuple[Level, ...], tuple[Level, ...]] | None = None
        if book is None:
            book = book_text(list(zip(yc, yq)), list(zip(nc, nq)))
        self.book_text = book

    def unchanged_from(self, other: Quote | None) -> bool:
        """The same quote as ``other`` in every stored form: same market, time, prices, volume
        and book (a source re-sending a market that did not move)."""
        return (
            other is not None
            and other.ts == self.ts
            and other.ticker == self.ticker
            and other.volume_hundredths == self.volume_hundredths
            and self.same_book(other)
        )

    def same_book(self, other: Quote | None) -> bool:
        """The same prices and book as ``other`` (whatever the market or time): they mark alike."""
        return other is not None and other.prices_cc == self.prices_cc and other.book_text == self.book_text

    @classmethod
    def from_rules(cls, s: QuoteRules) -> Quote:
        """The Quote of a row pydantic accepted (quiet sides read as none)."""
        bid = None if s.yes_bid == _NO_BID else s.yes_bid
        ask = None if s.yes_ask == _NO_ASK else s.yes_ask
        depth = (
            [price_to_cc(lv.price) for lv in s.yes_bids],
            [count_to_hundredths(lv.qty) for lv in s.yes_bids],
            [price_to_cc(lv.price) for lv in s.no_bids],
            [count_to_hundredths(lv.qty) for lv in s.no_bids],
        )
        return cls(s.ticker, s.ts, _cc(bid), _cc(ask), _cc(s.last), count_to_hundredths(s.volume), depth)

    # -- reads ------------------------------------------------------------------------
    @property
    def volume(self) -> Decimal:
        return hundredths_to_count(self.volume_hundredths)

    @property
    def quiet(self) -> bool:
        """No resting order on either side: a valid "no quote" state, shown as such."""
        return self.yes_bid is None and self.yes_ask is None

    def _built(self) -> tuple[tuple[Level, ...], tuple[Level, ...]]:
        if self._levels is None:
            yc, yq, nc, nq = self._depth
            self._levels = (
                tuple(Level(GRID[c], hundredths_to_count(q)) for c, q in zip(yc, yq)),
                tuple(Level(GRID[c], hundredths_to_count(q)) for c, q in zip(nc, nq)),
            )
        return self._levels

    @property
    def yes_bids(self) -> tuple[Level, ...]:
        return self._built()[0]

    @property
    def no_bids(self) -> tuple[Level, ...]:
        return self._built()[1]

    def ask(self, side: Side) -> Decimal | None:
        if side is Side.YES:
            return self.yes_ask
        return None if self.yes_bid is None else ONE - self.yes_bid

    def bid(self, side: Side) -> Decimal | None:
        if side is Side.YES:
            return self.yes_bid
        return None if self.yes_ask is None else ONE - self.yes_ask

    def bid_levels(self, side: Side) -> list[tuple[Decimal, Decimal]]:
        """Bids for ``side``, best (highest) first."""
        return [(lv.price, lv.qty) for lv in (self.yes_bids if side is Side.YES else self.no_bids)]

    def ask_levels(self, side: Side) -> list[tuple[Decimal, Decimal]]:
        """Asks for ``side``, best (cheapest) first: the other side's bids mirrored."""
        other = self.no_bids if side is Side.YES else self.yes_bids
        return [(ONE - lv.price, lv.qty) for lv in other]

    def has_ask_depth(self, side: Side) -> bool:
        """``bool(ask_levels(side))``, without building the levels."""
        return bool(self._depth[2] if side is Side.YES else self._depth[0])

    def spread(self) -> Decimal | None:
        if self.yes_bid is None or self.yes_ask is None:
            return None
        return self.yes_ask - self.yes_bid

    def _fields(self) -> tuple[Any, ...]:
        return (self.ticker, self.ts, self.prices_cc, self.volume_hundredths, self._depth)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Quote):
            return NotImplemented
        return self._fields() == other._fields()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"Quote(ticker={self.ticker!r}, ts={self.ts}, yes_bid={self.yes_bid}, yes_ask={self.yes_ask}, "
            f"last={self.last}, depth={len(self._depth[0])}/{len(self._depth[2])}, "
            f"volume={fmt_count(self.volume)})"
        )


def cc_price(cc: int | None) -> Decimal | None:
    """A stored centicent price back as its probability (None stays None)."""
    return None if cc is None else cc_to_price(cc)


class Estimate(_Frozen):
    ticker: str = Field(min_length=1)
    p_hat: Decimal
    source: str = Field(min_length=1)
    ts: int

    @field_validator("p_hat")
    @classmethod
    def _p(cls, v: Decimal) -> Decimal:
        if not v.is_finite() or not (ZERO <= v <= ONE):
            raise ValueError(f"p_hat {v} outside [0, 1]")
        return v


class TradeDecision(NamedTuple):
    """A proposal to buy ``contracts`` (0.01 grid, >= 0) of ``side`` paying at most
    ``limit_price`` each, and the risk gate's verdict. The strategy's own values (nothing from
    outside is validated into one), so a typed tuple: one is made for every row that clears
    the threshold, and a pydantic model cost a replay ~5 µs each. ``_replace`` changes a field."""

    ticker: str
    ts: int
    side: Side
    contracts: Decimal
    limit_price: Decimal
    best_ask: Decimal
    p_hat: Decimal
    ev_per_contract: Decimal
    worst_case_cc: int  # most the trade can lose: cost + fees at the limit, centicents
    equity_cc: int = 0  # liquidation equity when the decision was taken: the per-trade cap's base
    accepted: bool = False
    reason: str = ""

    def verdict(self, accepted: bool, reason: str) -> TradeDecision:
        """This proposal with the risk gate's verdict (the last two fields)."""
        return make_decision((*self[:-2], accepted, reason))


def make_decision(fields: tuple[Any, ...]) -> TradeDecision:
    """A TradeDecision from all its fields, in order, by the plain tuple's maker (the NamedTuple's
    own ``__new__`` is a Python call, and one is made for every row that clears the threshold)."""
    return _tuple_new(TradeDecision, fields)


_tuple_new = tuple.__new__


class Fill(_Frozen):
    """One simulated order's fill. ``value_cc`` is what the contracts cost on a buy, or what
    they fetched on a sale (``action == "sell"``): the sum over levels of price x count, rounded
    against the trader to the centicent per level (Kalshi's rounding fee). ``fee_cc`` is the
    order's trade fee (core/fees.py)."""

    ticker: str
    ts: int
    side: Side
    action: str = "buy"  # "buy" | "sell"
    requested: Decimal
    contracts: Decimal = Field(gt=0)
    value_cc: int
    fee_cc: int
    levels: tuple[tuple[Decimal, Decimal], ...]

    @property
    def avg_price(self) -> Decimal:
        return Decimal(self.value_cc) / 10_000 / self.contracts


class Position(_Frozen):
    ticker: str
    side: Side
    contracts: Decimal
    cost_cc: int  # what was paid for the contracts, fees included
    fee_cc: int = 0
    opened_ts: int = 0

    @property
    def avg_price(self) -> Decimal:
        return Decimal(self.cost_cc - self.fee_cc) / 10_000 / self.contracts


def rejection_reason(err: ValidationError) -> str:
    """One line naming the first failing field and why."""
    parts = []
    for e in err.errors()[:3]:
        loc = ".".join(str(x) for x in e["loc"]) or "row"
        msg = e["msg"].removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}")
    return "; ".join(parts)
