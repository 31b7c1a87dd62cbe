"""Kalshi trading fees, as the exchange computes and rounds them. Every paper fill is a taker's
today; the maker's share is known here for the resting orders to come (``FeeTerms.maker``).

Fee model (Kalshi fee schedule, "General Trading Fees"; Series ``fee_type`` / ``fee_multiplier``
in Trade API spec 3.20, where FeeMultiplier "is a floating point multiplier applied to the fee
calculations"): the taker fee of C contracts at price P is ``0.07 x m x C x P x (1 - P)``
dollars, m the series' ``fee_multiplier`` (1 for standard series). A maker (a resting order
that is hit) pays a share of that, per contract before rounding (spec 3.34 ``FeeType``):
``quadratic`` nothing, ``quadratic_with_maker_fees`` a quarter (0.0175),
``quadratic_with_combo_maker_fees`` half (0.035). ``flat`` ("Specific Trading Fees Table", not
given by the API) is charged the quadratic curve's peak, ``0.07 x m x C x 0.25``, taker and
maker alike: never less than a quadratic series would pay (so is a fee type this code does not
know).

The fee in force at time t (``fee_level_at``, then ``FeeSchedule.terms``; Kalshi's "Get Event
Fee Changes": event fees are "an override layered on top of the parent series' fee
structure"): the series' fee type and multiplier, then the series' scheduled changes due by t
(``GET /series/fee_changes``, the latest wins), then the event's override due by t (``GET
/events/fee_changes`` and the WebSocket's ``event_fee_update``, the latest wins; a null field
is cleared, back to the series' value), then the waiver: a market whose
``fee_waiver_expiration_time`` is still ahead pays no trading fee.

Rounding (docs.kalshi.com, "Fee Rounding"): each fill's trade fee is rounded UP to $0.0001 (a
centicent), and a per-order fee accumulator makes the order's total converge to what one
equivalent fill would cost: fill k is charged ``ceil(sum of exact fees of fills 1..k) - charged
so far``, so an order pays ``ceil_cc(sum of exact fees)``. The fill's value (price x count, up
to six decimals) is rounded against the trader to the centicent (Kalshi's rounding fee) in
``core/broker.py``. Settlement has no fee.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum
from typing import TYPE_CHECKING

from kakashi_tui.core.memo import Memo
from kakashi_tui.core.money import ceil_cc

if TYPE_CHECKING:
    from kakashi_tui.core.models import Market

TAKER_RATE = Decimal("0.07")
DEFAULT_TAKER_MULTIPLIER = TAKER_RATE  # the coefficient when neither exchange nor config says otherwise
_QUARTER = Decimal("0.25")
_HALF = Decimal("0.5")
_ZERO = Decimal(0)


class FeeType(str, Enum):
    QUADRATIC = "quadratic"
    QUADRATIC_WITH_MAKER_FEES = "quadratic_with_maker_fees"
    QUADRATIC_WITH_COMBO_MAKER_FEES = "quadratic_with_combo_maker_fees"
    FLAT = "flat"


_FEE_TYPES = {t.value: t for t in FeeType}
#: What a maker pays per contract before rounding, as a share of the taker's fee (module doc).
MAKER_SHARE: Mapping[FeeType, Decimal] = {
    FeeType.QUADRATIC: _ZERO,
    FeeType.QUADRATIC_WITH_MAKER_FEES: _QUARTER,
    FeeType.QUADRATIC_WITH_COMBO_MAKER_FEES: _HALF,
    FeeType.FLAT: Decimal(1),
}


@dataclass(frozen=True)
class FeeTerms:
    """What one market's taker pays: ``coefficient`` (0.07 x the series' multiplier) on the curve
    of ``fee_type``; nothing before ``waiver_until_ts``."""

    coefficient: Decimal = DEFAULT_TAKER_MULTIPLIER
    fee_type: FeeType = FeeType.QUADRATIC
    waiver_until_ts: int | None = None

    def waived(self, now_ms: int) -> bool:
        return self.waiver_until_ts is not None and now_ms < self.waiver_until_ts

    def exact(self, qty: Decimal, p: Decimal) -> Decimal:
        """The fee model's exact dollars for ``qty`` contracts at ``p`` (before rounding)."""
        if self.fee_type is FeeType.FLAT:
            return self.coefficient * qty * _QUARTER
        return self.coefficient * qty * p * (1 - p)

    def lasting(self) -> FeeTerms:
        """These terms once any waiver has ended: what a resting order may pay (a GTC order, or a
        GTD one, can outlive a waiver; its worst case, reserved and sized, must not count on it)."""
        return self if self.waiver_until_ts is None else FeeTerms(self.coefficient, self.fee_type)

    def maker(self) -> FeeTerms:
        """The terms a maker's fill pays in this market: the taker's coefficient times the fee
        type's ``MAKER_SHARE``, on the same curve, waived alike. Charged through the same
        accumulator and rounding as a taker's (``order_fee_cc(levels, terms.maker(), now)``)."""
        return FeeTerms(self.coefficient * MAKER_SHARE[self.fee_type], self.fee_type, self.waiver_until_ts)


class FeeAccumulator:
    """One order's fee accumulator: ``charge`` returns each fill's trade fee in centicents."""

    __slots__ = ("terms", "now_ms", "_exact", "charged_cc")

    def __init__(self, terms: FeeTerms, now_ms: int, exact: Decimal = _ZERO, charged_cc: int = 0) -> None:
        """``exact`` and ``charged_cc``: where an order's accumulator stood after its fills so far
        (a restart resumes it from its stored fills: the sum of their ``fee_exact`` and of their
        ``fee_cc``); a new order's starts at nothing."""
        self.terms, self.now_ms = terms, now_ms
        self._exact = exact
        self.charged_cc = charged_cc

    @property
    def exact(self) -> Decimal:
        """The exact fees charged so far, in dollars, before rounding (``charged_cc`` is its ceiling)."""
        return self._exact

    def charge(self, qty: Decimal, p: Decimal, terms: FeeTerms | None = None) -> int:
        """Fill ``qty`` at ``p``'s trade fee, at ``terms`` when given (the fill's role: a paper
        order that took and then rests pays its maker fills through the same accumulator, as
        Kalshi's runs "regardless of whether the fills are taker or maker"), else the order's."""
        t = self.terms if terms is None else terms
        if t.waived(self.now_ms):
            return 0
        self._exact += t.exact(qty, p)
        due = ceil_cc(self._exact) - self.charged_cc
        self.charged_cc += due
        return due


# -- the same fees in integer units (the strategy's and the marks' hot paths) ------------------
#: A fee coefficient as integers: (numerator, denominator, flat); (0, 1, False) when waived.
UnitFee = tuple[int, int, bool]
_WAIVED: UnitFee = (0, 1, False)
#: The broker's guard (``unit_fee``): coefficients of up to this many significant digits go its
#: integer way: with counts bounded by the broker, its Decimal fills' products then stay within
#: 28 digits (exact), so the two agree.
COEF_DIGITS = 6
#: id(terms) -> (terms, their integers (None: not a finite coefficient), the broker's guard passed)
_UNIT_FEE_OF: Memo[int, tuple[FeeTerms, UnitFee | None, bool]] = Memo("fees.unit_fee")


def _ratio(terms: FeeTerms) -> tuple[FeeTerms, UnitFee | None, bool]:
    hit = _UNIT_FEE_OF.get(id(terms))  # the same terms object, decision after decision (no hashing)
    if hit is not None and hit[0] is terms:
        return hit
    c = terms.coefficient
    out = None
    if c.is_finite():
        num, den = c.as_integer_ratio()
        out = (num, den, terms.fee_type is FeeType.FLAT)
    short = out is not None and c >= 0 and len(c.as_tuple().digits) <= COEF_DIGITS
    return _UNIT_FEE_OF.put(id(terms), (terms, out, short))  # (kept alive with its id: the id is not reused)


def fee_ratio(terms: FeeTerms, now_ms: int) -> UnitFee:
    """The fee terms as integers, exactly, whatever the coefficient's digits; (0, 1, False) when
    waived. A coefficient that is no number, or negative (config and market both refuse
    one), is a ValueError."""
    if terms.waived(now_ms):
        return _WAIVED
    out = _ratio(terms)[1]
    if out is None or out[0] < 0:
        raise ValueError(f"fee coefficient {terms.coefficient} is not a number >= 0")
    return out


def unit_fee(terms: FeeTerms, now_ms: int) -> UnitFee | None:
    """``fee_ratio`` where the broker's Decimal fills are exact too (a coefficient of at most
    COEF_DIGITS digits, not negative), else None: the broker's guard for its integer paths."""
    if terms.waived(now_ms):
        return _WAIVED
    _t, out, short = _ratio(terms)
    return out if short else None


def _fee_ceil(h: int, weighted: int, fee: UnitFee) -> int:
    """The fee in centicents, rounded up, of ``h`` hundredths of a contract whose sum of
    hundredths x p_cc x (10,000 - p_cc) is ``weighted`` (the quadratic curve's share)."""
    num, den, flat = fee
    if flat:  # coefficient x qty x 0.25 dollars
        return -((-num * h * 25) // den)
    return -((-num * weighted) // (den * 1_000_000))


def fee_cc_units(h: int, p_cc: int, fee: UnitFee) -> int:
    """``taker_fee_cc`` of ``h`` hundredths of a contract at ``p_cc`` centicents."""
    return _fee_ceil(h, h * p_cc * (10_000 - p_cc), fee)


def order_fee_cc_units(levels: list[tuple[int, int]], fee: UnitFee) -> int:
    """``order_fee_cc`` of levels given as (price cc, hundredths): the order pays the ceiling of
    its summed exact fee (what the accumulator charges in all)."""
    return _fee_ceil(sum(h for _c, h in levels), sum(h * c * (10_000 - c) for c, h in levels), fee)


def order_fee_cc(levels: Iterable[tuple[Decimal, Decimal]], terms: FeeTerms, now_ms: int = 0) -> int:
    """The trade fee of one order filled across ``levels`` ((price, qty) pairs), in centicents."""
    acc = FeeAccumulator(terms, now_ms)
    for p, q in levels:
        acc.charge(q, p)
    return acc.charged_cc


def taker_fee_cc(qty: Decimal, p: Decimal, terms: FeeTerms, now_ms: int = 0) -> int:
    """The fee of one order of ``qty`` contracts at one price ``p``."""
    if qty < 0:
        raise ValueError("contracts must be >= 0")
    return order_fee_cc([(p, qty)], terms, now_ms)


@dataclass(frozen=True)
class FeeSchedule:
    """Resolves a market's fee terms. The config wins: a series listed in
    ``series_multipliers`` pays that coefficient; otherwise the exchange's ``fee_multiplier``
    (0.07 x m); otherwise ``taker_multiplier`` (the config's default coefficient, 0.07)."""

    taker_multiplier: Decimal = DEFAULT_TAKER_MULTIPLIER
    series_multipliers: Mapping[str, Decimal] = field(default_factory=dict)

    def multiplier(self, series: str) -> Decimal:
        return self.series_multipliers.get(series, self.taker_multiplier)

    def terms(
        self,
        series: str = "",
        fee_multiplier: Decimal | None = None,
        fee_type: str | None = None,
        waiver_until_ts: int | None = None,
    ) -> FeeTerms:
        if series in self.series_multipliers:
            coef = self.series_multipliers[series]
        elif fee_multiplier is not None:
            coef = TAKER_RATE * fee_multiplier
        else:
            coef = self.taker_multiplier
        return FeeTerms(coef, fee_type_of(fee_type), waiver_until_ts)

    def for_market(self, market: Market | None) -> FeeTerms:
        if market is None:
            return self.terms()
        return self.terms(market.series, market.fee_multiplier, market.fee_type, market.fee_waiver_until_ts)


def fee_type_of(name: str | None) -> FeeType:
    """The exchange's ``fee_type`` word: quadratic when not given; a word this code does not
    know is charged as flat (the quadratic curve's peak, never less)."""
    return FeeType.QUADRATIC if name is None else _FEE_TYPES.get(name, FeeType.FLAT)


# -- the fee in force at a time: series, schedule, event override, waiver -------------------
@dataclass(frozen=True)
class FeeLevel:
    """A fee type and multiplier as the exchange states them (None: not stated)."""

    fee_type: str | None = None
    multiplier: Decimal | None = None


@dataclass(frozen=True)
class FeeChange:
    """A change effective from ``ts`` (UTC epoch ms): a series' scheduled change (both fields
    stated; None only where Kalshi's value could not be read), or an event's override (a None
    field is cleared: back to the series' value)."""

    ts: int
    fee_type: str | None = None
    multiplier: Decimal | None = None


def _latest(changes: Iterable[FeeChange], t: int) -> list[FeeChange]:
    """The changes due by ``t``, oldest first (equal times keep their given order)."""
    return sorted((c for c in changes if c.ts <= t), key=lambda c: c.ts)


def fee_level_at(
    series: FeeLevel, schedule: Sequence[FeeChange] = (), overrides: Sequence[FeeChange] = (), t: int = 0
) -> FeeLevel:
    """The fee type and multiplier in force at ``t``: the series' own, then its scheduled changes
    due by ``t`` (the latest wins, field by field: a value that could not be read leaves the
    one before), then the event's latest override due by ``t`` (its null fields cleared: the
    series' or schedule's value). No I/O: the one rule the feed, the engine and the reports share."""
    fee_type, mult = series.fee_type, series.multiplier
    for c in _latest(schedule, t):
        fee_type = c.fee_type if c.fee_type is not None else fee_type
        mult = c.multiplier if c.multiplier is not None else mult
    due = _latest(overrides, t)
    if due:
        o = due[-1]  # the latest override replaces every earlier one, a cleared one too
        fee_type = o.fee_type if o.fee_type is not None else fee_type
        mult = o.multiplier if o.multiplier is not None else mult
    return FeeLevel(fee_type, mult)
