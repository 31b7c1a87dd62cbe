"""A quote row's rules, declared once: its fields, their types, units and bounds, and the
reason each rule gives when a row breaks it.

Three forms check a row, and each is built from this declaration:

- the rule book, pydantic's ``QuoteRules`` (core/models.py), which names the reason;
- the quick check, ``validate.quick_snapshot`` (the hot path: plainly valid rows only);
- the vectorised check, ``columnar.check_batch`` (a catalog's columns, numpy).

Numbers are bounded in their stored integer units (money.py): prices in centicents ($0.0001,
the price grid), counts in hundredths of a contract (the count grid), times in epoch ms. A grid
is the stored unit itself, so a value on it is a whole number of units. The quick and
vectorised checks take the integer bounds (``min_u``/``max_u``); the rule book takes the same
bounds and raises the declared reasons. ``RULES`` lists every rule with its reason; a test
builds a hostile row for each and holds all three forms to it (tests/integration/test_row_rules.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import NamedTuple

from kakashi_tui.core.money import CC_PER_DOLLAR, COUNT_STEP, MAX_COUNT, PRICE_STEP, on_grid


@dataclass(frozen=True)
class Bound:
    """A number's rule: a range on a grid, in integer stored units (``scale`` per whole unit)."""

    name: str  # what the rule is called in ``RULES``
    unit: str
    scale: int  # stored units per whole (10,000 centicents a dollar; 100 hundredths a contract)
    step: Decimal  # the grid: one stored unit
    lo: int  # in stored units
    lo_open: bool  # the value must be above ``lo`` (else at or above)
    hi: int
    hi_open: bool
    low_reason: str  # ``{v}``: the value as given
    high_reason: str
    grid_reason: str = ""
    lo_d: Decimal = field(init=False, repr=False)  # the bounds as exact values (the rule book's)
    hi_d: Decimal = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "lo_d", Decimal(self.lo) / self.scale)
        object.__setattr__(self, "hi_d", Decimal(self.hi) / self.scale)

    @property
    def min_u(self) -> int:
        """The smallest value allowed, in stored units."""
        return self.lo + 1 if self.lo_open else self.lo

    @property
    def max_u(self) -> int:
        """The largest value allowed, in stored units."""
        return self.hi - 1 if self.hi_open else self.hi

    def check(self, v: Decimal) -> Decimal:
        """The rule on an exact value (the rule book's form): ``v``, or ValueError with the reason."""
        if not v.is_finite() or v < self.lo_d or (self.lo_open and v == self.lo_d):
            raise ValueError(self.low_reason.format(v=v))
        if v > self.hi_d or (self.hi_open and v == self.hi_d):
            raise ValueError(self.high_reason.format(v=v))
        if self.grid_reason and not on_grid(v, self.step):
            raise ValueError(self.grid_reason.format(v=v))
        return v


_MAX_HUNDREDTHS = int(MAX_COUNT) * 100  # MAX_COUNT in hundredths
_PRICE_RANGE = "price {v} outside [0, 1]"
_PRICE_GRID = "price {v} is not on the $0.0001 grid"
_COUNT_RANGE = f"count {{v}} outside [0, {MAX_COUNT}]"
_COUNT_GRID = "count {v} is not on the 0.01 grid"

#: A top-of-book price (``yes_bid``, ``yes_ask``, ``last``): a probability in [0, 1].
PRICE = Bound(
    "price", "dollars", CC_PER_DOLLAR, PRICE_STEP,
    lo=0, lo_open=False, hi=CC_PER_DOLLAR, hi_open=False,
    low_reason=_PRICE_RANGE, high_reason=_PRICE_RANGE, grid_reason=_PRICE_GRID,
)  # fmt: skip
#: A book level's price: strictly inside (0, 1) (the wording is pydantic's, kept as stored).
LEVEL_PRICE = Bound(
    "level price", "dollars", CC_PER_DOLLAR, PRICE_STEP,
    lo=0, lo_open=True, hi=CC_PER_DOLLAR, hi_open=True,
    low_reason="Input should be greater than 0", high_reason="Input should be less than 1", grid_reason=_PRICE_GRID,
)  # fmt: skip
#: The traded volume: a count in [0, MAX_COUNT].
COUNT = Bound(
    "count", "contracts", 100, COUNT_STEP,
    lo=0, lo_open=False, hi=_MAX_HUNDREDTHS, hi_open=False,
    low_reason=_COUNT_RANGE, high_reason=_COUNT_RANGE, grid_reason=_COUNT_GRID,
)  # fmt: skip
#: A book level's count: positive, at most MAX_COUNT.
LEVEL_QTY = Bound(
    "level count", "contracts", 100, COUNT_STEP,
    lo=0, lo_open=True, hi=_MAX_HUNDREDTHS, hi_open=False,
    low_reason="Input should be greater than 0",
    high_reason=f"Input should be less than or equal to {MAX_COUNT}",
    grid_reason=_COUNT_GRID,
)  # fmt: skip
#: The last epoch ms of year 9999: anything later is not a time (and would not fit SQLite's INTEGER).
MAX_TS_MS = 253_402_300_799_999
_TS_RANGE = "timestamp must be positive UTC epoch ms"
#: The quote's time: positive epoch ms, at most MAX_TS_MS (no grid: whole ms).
TS = Bound(
    "timestamp", "epoch ms", 1, Decimal(1),
    lo=0, lo_open=True, hi=MAX_TS_MS, hi_open=False, low_reason=_TS_RANGE, high_reason=_TS_RANGE,
)  # fmt: skip
#: A timestamp may run ahead of our clock by this much (clock skew) before it is rejected.
FUTURE_SKEW_MS = 5_000
FUTURE = "timestamp {v} is in the future (now {now})"

MISSING_TICKER = "missing ticker"
CROSSED = "crossed book: ask {ask} <= bid {bid}"
DEPTH_BID = "depth disagrees with top of book (yes bid)"
DEPTH_ASK = "depth disagrees with top of book (yes ask)"
LEVEL_ORDER = "book levels must be best first with distinct prices"
#: Kalshi's quiet sides: a bid at PRICE.lo or an ask at PRICE.hi is no order on that side.
NO_BID_U = PRICE.lo
NO_ASK_U = PRICE.hi


class Field(NamedTuple):
    """A snapshot field: its type as a source sends it, its unit and its rule."""

    type: str
    unit: str
    rule: str  # the rule(s) it answers to, by name in ``RULES``


#: The snapshot row: its keys (no others), in the order the rule book declares them.
FIELDS: dict[str, Field] = {
    "ticker": Field("str", "", "ticker"),
    "ts": Field("int", "epoch ms", "timestamp, future"),
    "yes_bid": Field("price | None", "dollars", "price; bid 0 is no bid"),
    "yes_ask": Field("price | None", "dollars", "price; ask 1 is no ask"),
    "last": Field("price | None", "dollars", "price"),
    "yes_bids": Field("[(price, count)], best first", "dollars, contracts", "level price, level count, order, depth"),
    "no_bids": Field("[(price, count)], best first", "dollars, contracts", "level price, level count, order, depth"),
    "volume": Field("count (default 0)", "contracts", "count"),
}


class Rule(NamedTuple):
    """One way a row is rejected: its name, the field it answers for, and its reason."""

    name: str
    field: str
    reason: str


def _bound_rules(b: Bound, field: str) -> list[Rule]:
    out = [Rule(f"{b.name} low", field, b.low_reason), Rule(f"{b.name} high", field, b.high_reason)]
    return out + ([Rule(f"{b.name} grid", field, b.grid_reason)] if b.grid_reason else [])


#: Every rule a snapshot row answers to, with the reason the rule book gives (after the field's
#: name: ``snapshot yes_bid: price 1.5 outside [0, 1]``).
RULES: tuple[Rule, ...] = (
    Rule("ticker", "ticker", MISSING_TICKER),
    *_bound_rules(TS, "ts"),
    Rule("future", "ts", FUTURE),
    *_bound_rules(PRICE, "yes_bid"),
    *_bound_rules(COUNT, "volume"),
    *_bound_rules(LEVEL_PRICE, "yes_bids.0.price"),
    *_bound_rules(LEVEL_QTY, "yes_bids.0.qty"),
    Rule("crossed", "row", CROSSED),
    Rule("depth bid", "row", DEPTH_BID),
    Rule("depth ask", "row", DEPTH_ASK),
    Rule("order", "row", LEVEL_ORDER),
)
