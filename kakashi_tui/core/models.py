"""Domain models (pydantic). Prices are probabilities in [0, 1]; money is integer cents;
time is UTC epoch milliseconds.

Validation rejects corrupt rows with a reason: prices outside [0, 1] or off the cent
grid, ask below bid (crossed), an empty book given as prices (0 bid / 1 ask), a
missing ticker, a timestamp in the future or not in UTC.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from enum import Enum
from typing import TYPE_CHECKING, Any, NamedTuple

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from kakashi_tui.core.money import ONE, ZERO

#: A timestamp may run ahead of our clock by this much (clock skew) before it is rejected.
FUTURE_SKEW_MS = 5_000


class Side(str, Enum):
    YES = "yes"
    NO = "no"

    @property
    def other(self) -> "Side":
        return Side.NO if self is Side.YES else Side.YES


class MarketStatus(str, Enum):
    UNOPENED = "unopened"
    OPEN = "open"
    CLOSED = "closed"
    SETTLED = "settled"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _check_price(v: Decimal | None) -> Decimal | None:
    if v is None:
        return v
    if not (ZERO <= v <= ONE):
        raise ValueError(f"price {v} outside [0, 1]")
    if v * 100 != (v * 100).to_integral_value():
        raise ValueError(f"price {v} is not on the cent grid")
    return v


def _check_ts(v: int, info: ValidationInfo) -> int:
    if v <= 0:
        raise ValueError("timestamp must be positive UTC epoch ms")
    now = (info.context or {}).get("now_ms")
    if now is not None and v > now + FUTURE_SKEW_MS:
        raise ValueError(f"timestamp {v} is in the future (now {now})")
    return v


def parse_utc_ms(value: Any) -> int | None:
    """RFC 3339 string (must carry UTC: 'Z' or +00:00) or epoch ms int -> epoch ms."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError("timestamp must not be a boolean")
    if isinstance(value, int):
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


class Market(_Frozen):
    ticker: str
    title: str = ""
    series: str = ""
    event_ticker: str = ""
    status: MarketStatus
    open_ts: int | None = None
    close_ts: int | None = None
    result: Side | None = None

    @field_validator("ticker")
    @classmethod
    def _ticker(cls, v: str) -> str:
        v = v.strip()
        if not v:
            raise ValueError("missing ticker")
        return v

    @model_validator(mode="after")
    def _settled_needs_result(self) -> "Market":
        if self.status is MarketStatus.SETTLED and self.result is None:
            raise ValueError("settled market has no result")
        return self


class BookLevel(_Frozen):
    # Strictly inside (0, 1) on the cent grid; checked by pydantic-core (no Python per level).
    price: Decimal = Field(gt=0, lt=1, decimal_places=2)
    qty: int = Field(gt=0)


class QuoteReads:
    """Derived quotes, shared by ``Snapshot`` (validated by pydantic) and ``Quote`` (validated
    by ``core.validate``'s quick check): both have ``yes_bid``, ``yes_ask``, ``last``,
    ``yes_bids`` and ``no_bids`` with the same meaning."""

    __slots__ = ()
    if TYPE_CHECKING:  # declared here for type checkers only: pydantic must not take them as fields
        yes_bid: Decimal | None
        yes_ask: Decimal | None
        last: Decimal | None
        yes_bids: tuple[Any, ...]  # levels with .price and .qty, best first
        no_bids: tuple[Any, ...]

    def ask(self, side: Side) -> Decimal | None:
        if side is Side.YES:
            return self.yes_ask
        return None if self.yes_bid is None else ONE - self.yes_bid

    def bid(self, side: Side) -> Decimal | None:
        if side is Side.YES:
            return self.yes_bid
        return None if self.yes_ask is None else ONE - self.yes_ask

    def ask_levels(self, side: Side) -> list[tuple[Decimal, int]]:
        """Asks for ``side``, best (cheapest) first: the other side's bids mirrored."""
        other = self.no_bids if side is Side.YES else self.yes_bids
        return [(ONE - lv.price, lv.qty) for lv in other]

    def spread(self) -> Decimal | None:
        if self.yes_bid is None or self.yes_ask is None:
            return None
        return self.yes_ask - self.yes_bid

    @property
    def book_text(self) -> str:
        """The depth as stored: compact JSON text, ``""`` without depth (see data_schema.md)."""
        return book_text(self.yes_bids, self.no_bids)

    @property
    def prices_f(self) -> tuple[float | None, float | None, float | None]:
        """Bid, ask and last as stored (REAL columns)."""
        return tuple(None if p is None else float(p) for p in (self.yes_bid, self.yes_ask, self.last))  # type: ignore[return-value]


def book_text(yes_bids: tuple[Any, ...], no_bids: tuple[Any, ...]) -> str:
    """The same bytes as ``json.dumps(..., separators=(",", ":"))`` of the levels as
    ``[["price", qty], ...]`` (prices are plain decimal strings: nothing to escape)."""
    if not yes_bids and not no_bids:
        return ""
    yes = ",".join([f'["{lv.price}",{lv.qty}]' for lv in yes_bids])
    no = ",".join([f'["{lv.price}",{lv.qty}]' for lv in no_bids])
    return f'{{"yes":[{yes}],"no":[{no}]}}'


class Snapshot(QuoteReads, _Frozen):
    """Top of book for the YES side, plus optional depth.

    Kalshi lists only bids: ``yes_bids`` and ``no_bids``, each best first. A YES ask at p
    is a NO bid at 1 - p, so ``yes_ask == 1 - best NO bid``.
    """

    ticker: str
    ts: int
    yes_bid: Decimal | None = None
    yes_ask: Decimal | None = None
    last: Decimal | None = None
    yes_bids: tuple[BookLevel, ...] = ()
    no_bids: tuple[BookLevel, ...] = ()
    volume: int = 0

    @field_validator("ticker")
    @classmethod
    def _ticker(cls, v: str) -> str:
        v = v.strip()
        if not v:
            raise ValueError("missing ticker")
        return v

    @field_validator("yes_bid", "yes_ask", "last")
    @classmethod
    def _prices(cls, v: Decimal | None) -> Decimal | None:
        return _check_price(v)

    @field_validator("ts")
    @classmethod
    def _ts(cls, v: int, info: ValidationInfo) -> int:
        return _check_ts(v, info)

    @model_validator(mode="after")
    def _book(self) -> "Snapshot":
        if self.yes_bid == ZERO or self.yes_ask == ONE:
            raise ValueError("empty book given as a price (0 bid / 1 ask)")
        if self.yes_bid is None and self.yes_ask is None:
            raise ValueError("empty book: no bid and no ask")
        if self.yes_bid is not None and self.yes_ask is not None and self.yes_ask <= self.yes_bid:
            raise ValueError(f"crossed book: ask {self.yes_ask} <= bid {self.yes_bid}")
        if self.yes_bids and self.yes_bid is not None and self.yes_bids[0].price != self.yes_bid:
            raise ValueError("depth disagrees with top of book (yes bid)")
        if self.no_bids and self.yes_ask is not None and ONE - self.no_bids[0].price != self.yes_ask:
            raise ValueError("depth disagrees with top of book (yes ask)")
        for levels in (self.yes_bids, self.no_bids):
            prices = [lv.price for lv in levels]
            if prices != sorted(prices, reverse=True) or len(set(prices)) != len(prices):
                raise ValueError("book levels must be best first with distinct prices")
        return self

#: Every price on the cent grid, by cents: GRID[42] == Decimal("0.42").
GRID: tuple[Decimal, ...] = tuple(Decimal(f"{c / 100:.2f}") for c in range(101))


class Level(NamedTuple):
    """One book level of a ``Quote`` (a ``BookLevel`` without the model)."""

    price: Decimal
    qty: int


class Quote(QuoteReads):
    """A snapshot that passed ``core.validate.quick_snapshot``: the fields, reads and meaning
    of ``Snapshot`` without building pydantic models per row (the hot path of the live loop
    and of replay). Only that check constructs it; treat it as immutable.

    Depth is kept as cents and quantities and turned into ``Level`` tuples on first read
    (most snapshots are never read level by level). ``prices_f`` (bid, ask, last as floats)
    and ``book_text`` are the stored forms, made in the same pass as the check, so the
    store only assembles rows.
    """

    __slots__ = ("ticker", "ts", "yes_bid", "yes_ask", "last", "volume", "prices_f", "book_text",
                 "_depth", "_levels")
    ticker: str
    ts: int
    volume: int
    prices_f: tuple[float | None, float | None, float | None]
    book_text: str  # a slot here, a property on Snapshot

    def __init__(self, ticker: str, ts: int, yes_bid: Decimal | None, yes_ask: Decimal | None,
                 last: Decimal | None, volume: int, depth: tuple[list[int], list[int], list[int], list[int]],
                 prices_f: tuple[float | None, float | None, float | None], book_text: str) -> None:
        self.ticker, self.ts, self.volume = ticker, ts, volume
        self.yes_bid, self.yes_ask, self.last = yes_bid, yes_ask, last
        self._depth = depth  # (yes cents, yes qty, no cents, no qty), best first
        self._levels: tuple[tuple[Level, ...], tuple[Level, ...]] | None = None
        self.prices_f, self.book_text = prices_f, book_text

    def _built(self) -> tuple[tuple[Level, ...], tuple[Level, ...]]:
        if self._levels is None:
            yc, yq, nc, nq = self._depth
            self._levels = (tuple(Level(GRID[c], q) for c, q in zip(yc, yq)),
                            tuple(Level(GRID[c], q) for c, q in zip(nc, nq)))
        return self._levels

    @property
    def yes_bids(self) -> tuple[Level, ...]:  # type: ignore[override]
        return self._built()[0]

    @property
    def no_bids(self) -> tuple[Level, ...]:  # type: ignore[override]
        return self._built()[1]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, (Quote, Snapshot)):
            return NotImplemented
        return _fields(self) == _fields(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (f"Quote(ticker={self.ticker!r}, ts={self.ts}, yes_bid={self.yes_bid}, yes_ask={self.yes_ask}, "
                f"last={self.last}, depth={len(self._depth[0])}/{len(self._depth[2])}, volume={self.volume})")


#: The one quote type that flows through a tick: a Quote from the quick check, or a Snapshot
#: (pydantic's verdict, or read back from the store). Both read the same (QuoteReads).
TickQuote = Snapshot | Quote


def _fields(s: Quote | Snapshot) -> tuple[Any, ...]:
    """What a snapshot says, comparable across ``Quote`` and ``Snapshot``."""
    return (s.ticker, s.ts, s.yes_bid, s.yes_ask, s.last, s.volume,
            tuple((lv.price, lv.qty) for lv in s.yes_bids), tuple((lv.price, lv.qty) for lv in s.no_bids))


class Estimate(_Frozen):
    ticker: str = Field(min_length=1)
    p_hat: Decimal
    source: str = Field(min_length=1)
    ts: int

    @field_validator("p_hat")
    @classmethod
    def _p(cls, v: Decimal) -> Decimal:
        if not (ZERO <= v <= ONE):
            raise ValueError(f"p_hat {v} outside [0, 1]")
        return v


class TradeDecision(_Frozen):
    """A proposal to buy ``contracts`` of ``side`` paying at most ``limit_price`` each."""

    ticker: str
    ts: int
    side: Side
    contracts: int = Field(ge=0)
    limit_price: Decimal
    best_ask: Decimal
    p_hat: Decimal
    ev_per_contract: Decimal
    worst_case_cents: int
    equity_cents: int = 0  # equity when the decision was taken: the per-trade cap's base
    accepted: bool = False
    reason: str = ""


class Fill(_Frozen):
    ticker: str
    ts: int
    side: Side
    requested: int
    contracts: int = Field(gt=0)
    cost_cents: int
    fee_cents: int
    levels: tuple[tuple[Decimal, int], ...]

    @property
    def avg_price(self) -> Decimal:
        return Decimal(self.cost_cents) / 100 / self.contracts


class Position(_Frozen):
    ticker: str
    side: Side
    contracts: int
    cost_cents: int  # what was paid for the contracts, fees included
    fee_cents: int = 0
    opened_ts: int = 0

    @property
    def avg_price(self) -> Decimal:
        return Decimal(self.cost_cents - self.fee_cents) / 100 / self.contracts


class Outcome(_Frozen):
    ticker: str
    result: Side
    ts: int


def rejection_reason(err: ValidationError) -> str:
    """One line naming the first failing field and why."""
    parts = []
    for e in err.errors()[:3]:
        loc = ".".join(str(x) for x in e["loc"]) or "row"
        msg = e["msg"].removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}")
    return "; ".join(parts)
