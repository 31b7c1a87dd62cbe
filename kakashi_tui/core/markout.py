"""Markouts: how far the market's mid moved from a fill's price after it (issue #23, item 6).

Pure arithmetic, exact in integers (``Fraction`` where a mean price or a half-centicent mid is
not whole). The reads (the as-of quote at each horizon, the closing line) are the report's:
``adapters/queries.py`` and ``frontends/report/markouts.py``.

**Sign.** A markout is per contract, in centicents, signed for the side held: for a buy, the
side's mid at the later time less the price paid per contract; for a sale, the price received
less that mid. The NO side is mirrored: its mid is one minus the YES mid ($1 = 10,000 cc).
Above zero the market moved the fill's way after it; below zero, against it (adverse
selection; a taker's markout at the fill itself is minus the half-spread it crossed). **Net** of
the fee: less the fill's fee per contract, whichever the direction (both pay it).

**When.** The mid at a horizon is the last stored quote at or before ``fill ts + horizon``,
held at the time the market stopped trading (its close or settlement) when that comes first.
A read time past the data's end (the last tick) is *pending*, not zero: the data cannot say yet.
"""

from __future__ import annotations

from fractions import Fraction

#: The horizons, after the fill: (label, ms). "at fill" is the reference (the spread crossed).
HORIZONS: tuple[tuple[str, int], ...] = (
    ("at fill", 0),
    ("1 min", 60_000),
    ("5 min", 300_000),
    ("30 min", 1_800_000),
)
#: The last horizon: the closing line (the last two-sided mid before the market stopped trading).
CLOSE = "close"
LABELS: tuple[str, ...] = (*(h for h, _ms in HORIZONS), CLOSE)

#: A fill's role on the exchange. Every paper fill is a taker's until resting orders land.
MAKER, TAKER = "maker", "taker"
ROLES: tuple[str, ...] = (MAKER, TAKER)

#: $1 in centicents: a contract's payout, so the NO side's mid is this less the YES mid.
ONE_CC = 10_000


def market_stop(close_ts: int | None, settled_ts: int | None, now_ms: int | None) -> int | None:
    """When a market stopped trading: its close or its settlement, whichever came first; None
    while it still trades as of ``now_ms`` (the last tick), or when it has neither."""
    stops = [x for x in (close_ts, settled_ts) if x is not None]
    stop = min(stops) if stops else None
    if stop is None or (settled_ts is None and (now_ms is None or stop > now_ms)):
        return None
    return stop


def read_at(fill_ts: int, horizon_ms: int, stop_ms: int | None, data_end_ms: int | None) -> int | None:
    """When a horizon's mid is read: ``fill_ts + horizon_ms``, held at ``stop_ms`` (the market
    stopped trading) when that is earlier and not before the fill; None (pending) when that time
    is past ``data_end_ms`` (or there is no data at all)."""
    at = fill_ts + horizon_ms
    if stop_ms is not None and fill_ts <= stop_ms < at:
        at = stop_ms
    return None if data_end_ms is None or at > data_end_ms else at


def side_mid_cc(side: str, mid2_cc: int) -> Fraction:
    """The side's mid in centicents from twice the YES mid (``bid + ask``, an integer): YES the
    mid, NO one minus it."""
    yes_mid = Fraction(mid2_cc, 2)
    return yes_mid if side == "yes" else ONE_CC - yes_mid


def price_cc(value_cc: int, contracts_hundredths: int) -> Fraction:
    """A fill's price per contract in centicents (its value over its contracts)."""
    if contracts_hundredths <= 0:
        raise ValueError(f"a fill of {contracts_hundredths} hundredths has no price per contract")
    return Fraction(value_cc * 100, contracts_hundredths)


def markout_cc(
    side: str, action: str, contracts_hundredths: int, value_cc: int, fee_cc: int, mid2_cc: int
) -> tuple[Fraction, Fraction]:
    """(markout, markout net of the fee), per contract, in centicents: the side's mid (from twice
    the YES mid, ``mid2_cc``) less the price paid for a buy, the price received less it for a
    sale; net, less the fee per contract too."""
    diff = side_mid_cc(side, mid2_cc) - price_cc(value_cc, contracts_hundredths)
    gross = diff if action == "buy" else -diff
    return gross, gross - Fraction(fee_cc * 100, contracts_hundredths)
