"""Turn a source's raw row into validated models, or a reason it was rejected. Prices and
counts are converted to the domain's units here, once (core/money.py).

Two checks, one set of rules, declared in core/rowrules.py (bounds, units, reasons) and read
by both. ``QuoteRules`` (pydantic) is the rule book and names the reason for every rejection.
``quick_snapshot`` is the hot path: it accepts only rows that are plainly valid in their usual
form (prices as $0.0001-grid strings or Decimals, counts as integers or 0.01-grid strings,
integer timestamps) and returns a ``Quote`` with no model built per row; anything else, good or
bad, goes to pydantic. Either way the tick gets a ``Quote``. A property test holds the two
together: whatever the quick check accepts, pydantic accepts with the same values.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, NamedTuple

from pydantic import ValidationError

from kakashi_tui.core import rowrules as R
from kakashi_tui.core.grid import grid_of, off_grid
from kakashi_tui.core.models import (
    GRID,
    Market,
    Quote,
    QuoteRules,
    book_of_levels,
    level_head,
    level_tail,
    rejection_reason,
)

#: The reason a quote with a price its market's grid (``price_ranges``) does not have is rejected.
OFF_GRID = "snapshot off the market's price grid"
#: The reason a quote of a market that has settled is rejected (it is never traded again).
SETTLED_QUOTE = "market has settled: quote refused"


class Validated(NamedTuple):  # one per row on the hot path: a tuple, not a frozen dataclass
    market: Market | None
    snapshot: Quote | None
    reason: str | None  # None when the row is good


def _forms(c: int) -> list[str]:
    """The ways a source writes the price of ``c`` centicents: "0.4200", "0.420", "0.42"."""
    s = f"{c // 10_000}.{c % 10_000:04d}"
    out = [s]
    while s.endswith("0") and "." in s:
        s = s[:-1].rstrip(".") if s[:-1].endswith(".") else s[:-1]
        out.append(s)
    return out


# The rules' bounds (core/rowrules.py), as the constants this check compares with.
_MIN_TS, _MAX_TS, _SKEW = R.TS.min_u, R.TS.max_u, R.FUTURE_SKEW_MS
_NO_BID, _NO_ASK, _ONE = R.NO_BID_U, R.NO_ASK_U, R.PRICE.scale  # (a YES ask is 1 - the best NO bid)
_LVL_MIN, _LVL_END = R.LEVEL_PRICE.min_u, R.LEVEL_PRICE.max_u + 1  # a level's price: _LVL_MIN <= c < _LVL_END
_MIN_HUNDREDTHS, _MAX_HUNDREDTHS = R.COUNT.min_u, R.COUNT.max_u  # the volume, in hundredths
_Q_MIN_HUNDREDTHS, _Q_MAX_HUNDREDTHS = R.LEVEL_QTY.min_u, R.LEVEL_QTY.max_u  # a level's count, in hundredths
_Q_MIN, _Q_MAX = (
    -(-_Q_MIN_HUNDREDTHS // 100),
    _Q_MAX_HUNDREDTHS // 100,
)  # ... in whole contracts (the usual integer count)
_SNAPSHOT_KEYS = frozenset(R.FIELDS)

# Every grid price of PRICE's range by the forms sources write it -> centicents. Decimal keys
# also match equal values written otherwise (Decimal("0.420")) and the same numbers as int or
# float (1, 0.5, 0.0625): pydantic reads those as the same Decimal.
_CC: dict[Any, int] = {}
for _c in range(R.PRICE.min_u, R.PRICE.max_u + 1):
    _CC[GRID[_c]] = _c
    for _f in _forms(_c):
        _CC[_f] = _c
# The stored book text's parts (models.level_head / level_tail), for every price and small count.
_LEVEL_TEXT = [level_head(c) for c in range(len(GRID))]
_INT_QTY_TEXT = [level_tail(q * 100) for q in range(1000)]
_PRICE_TYPES = (str, Decimal)
_HUNDRED = Decimal(100)


def _hundredths(q: Any) -> int | None:
    """A count in hundredths when plainly written (int, "2.50", "2", Decimal on the grid); else None."""
    tq = type(q)
    h: int
    if tq is int:
        h = q * 100
    elif tq is str:
        whole, dot, frac = q.partition(".")
        if (
            not (whole.isascii() and whole.isdigit())
            or len(frac) > 2
            or (frac and not (frac.isascii() and frac.isdigit()))
        ):
            return None
        h = int(whole) * 100 + (int(frac.ljust(2, "0")) if frac else 0)
    elif tq is Decimal:
        if not q.is_finite():
            return None
        x = q * _HUNDRED
        if x != x.to_integral_value():
            return None
        return int(x)
    else:
        return None
    return h


def _levels(
    levels: Any,
    prices: list[int],
    qtys: list[int],
    text: list[str],
    # the declared bounds and tables, bound as locals: this loop runs for every level of every
    # quote, and a global look-up per comparison cost the quick check ~5% (make bench)
    _lvl_min: int = _LVL_MIN,
    _lvl_end: int = _LVL_END,
    _q_min: int = _Q_MIN,
    _q_max: int = _Q_MAX,
    _int_qty_text: list[str] = _INT_QTY_TEXT,
    _level_text: list[str] = _LEVEL_TEXT,
) -> bool:
    """Check levels given as {"price", "qty"} dicts or [price, qty] pairs, appending their
    centicents, hundredths and stored text; False when they are not plainly valid."""
    if type(levels) not in (list, tuple):
        return False
    last = _lvl_end
    get = _CC.get
    try:
        for lv in levels:
            tp = type(lv)
            if (tp is list or tp is tuple) and len(lv) == 2:
                p, q = lv
            elif tp is dict and len(lv) == 2:
                p, q = lv.get("price"), lv.get("qty")
            else:
                return False
            # LEVEL_PRICE's range, best first, distinct; LEVEL_QTY's range on the count grid.
            # Prices are looked up without a type check: the only other keys that match (bools,
            # 0 and 1, floats that are exact on the grid) are out of bounds or exactly what
            # pydantic would read.
            c = get(p)
            if c is None or not _lvl_min <= c < last:
                return False
            if type(q) is int and _q_min <= q <= _q_max:  # the usual integer count: no parsing
                h = q * 100
                qt = _int_qty_text[q] if q < 1000 else level_tail(h)
            else:
                h = _hundredths(q)  # type: ignore[assignment]
                if h is None or not _Q_MIN_HUNDREDTHS <= h <= _Q_MAX_HUNDREDTHS:
                    return False
                qt = level_tail(h)
            last = c
            prices.append(c)
            qtys.append(h)
            text.append(_level_text[c] + qt)
    except TypeError:  # an unhashable price
        return False
    return True


_NO = -1  # a top-of-book price the quick check does not take


def _top(v: Any) -> int | None:
    """Centicents of a top-of-book price; None when absent; _NO when not plainly a grid price."""
    if v is None:
        return None
    if type(v) not in _PRICE_TYPES:
        return _NO
    try:
        c = _CC.get(v)
    except TypeError:  # Decimal("sNaN") cannot be hashed
        return _NO
    return _NO if c is None else c


def quick_snapshot(
    raw: dict[str, Any],
    now_ms: int | None,
    # the declared bounds bound as locals, as in ``_levels`` (callgrind: 306 fewer instructions of
    # about 52,000 a row); callers pass only ``raw`` and ``now_ms``
    _keys: frozenset[str] = _SNAPSHOT_KEYS,
    _min_ts: int = _MIN_TS,
    _max_ts: int = _MAX_TS,
    _skew: int = _SKEW,
    _no: int = _NO,
    _no_bid: int = _NO_BID,
    _no_ask: int = _NO_ASK,
    _one: int = _ONE,
    _min_hundredths: int = _MIN_HUNDREDTHS,
    _max_hundredths: int = _MAX_HUNDREDTHS,
) -> Quote | None:
    """A ``Quote`` when ``raw`` is plainly a valid snapshot; None means "ask pydantic"."""
    if not raw.keys() <= _keys:
        return None
    ticker, ts = raw.get("ticker"), raw.get("ts")
    if type(ticker) is not str or not ticker or ticker.strip() != ticker:
        return None
    if type(ts) is not int or not _min_ts <= ts <= _max_ts or (now_ms is not None and ts > now_ms + _skew):
        return None
    bid, ask, last = _top(raw.get("yes_bid")), _top(raw.get("yes_ask")), _top(raw.get("last"))
    if bid == _no or ask == _no or last == _no:
        return None
    if bid == _no_bid:  # Kalshi's quiet side: no bid
        bid = None
    if ask == _no_ask:  # no ask
        ask = None
    if bid is not None and ask is not None and ask <= bid:
        return None
    volume = _hundredths(raw.get("volume", 0))
    if volume is None or not _min_hundredths <= volume <= _max_hundredths:
        return None
    yc: list[int] = []
    yq: list[int] = []
    nc: list[int] = []
    nq: list[int] = []
    yt: list[str] = []
    nt: list[str] = []
    if not _levels(raw.get("yes_bids", ()), yc, yq, yt) or not _levels(raw.get("no_bids", ()), nc, nq, nt):
        return None
    if (yc and bid is not None and yc[0] != bid) or (nc and ask is not None and _one - nc[0] != ask):
        return None
    text = book_of_levels(yt, nt) if yc or nc else ""
    return Quote(ticker, ts, bid, ask, last, volume, (yc, yq, nc, nq), text)


def model_input(snapshot: dict[str, Any]) -> dict[str, Any]:
    """A raw snapshot as pydantic's QuoteRules takes it: [price, qty] level pairs (Kalshi's and
    the replay file's form) become BookLevel dicts; anything else is left for it to judge."""

    def dicts(levels: Any) -> Any:
        if not isinstance(levels, (list, tuple)):
            return levels
        return [{"price": lv[0], "qty": lv[1]} if type(lv) in (list, tuple) and len(lv) == 2 else lv for lv in levels]

    return {**snapshot, **{k: dicts(snapshot[k]) for k in ("yes_bids", "no_bids") if k in snapshot}}


def validate_row(
    market: dict[str, Any],
    snapshot: dict[str, Any] | None,
    now_ms: int,
    known: Market | None = None,
    settled: frozenset[str] | set[str] = frozenset(),
    quote: Quote | None = None,
) -> Validated:
    """``known``: the Market this exact raw market dict validated to before (markets rarely change).
    ``settled``: tickers whose settlement is booked: their quotes are refused (SETTLED_QUOTE).
    ``quote``: ``snapshot`` as the quick check would make it, made by a check with the same
    rules but no clock (a catalog's vectorised check); taken when its time is not ahead of
    ``now_ms`` by more than the allowed skew, else ``snapshot`` is checked here. A ``quote``
    given without its ``snapshot`` is taken as it is: its maker checked its time against the
    tick's clock (a catalog hands plainly valid rows over that way).

    Book levels may be given as {"price", "qty"} dicts or [price, qty] pairs.
    """
    ctx = {"now_ms": now_ms}
    if known is not None:
        m = known
    else:
        try:
            m = Market.model_validate(market, context=ctx)
        except ValidationError as e:
            return Validated(None, None, "market " + rejection_reason(e))
    if snapshot is None and quote is None:
        return Validated(m, None, None)
    if m.status.settled:  # over: its row says so (its last quote is not news, nor bad data)
        return Validated(m, None, None)
    if m.ticker in settled:  # booked as settled, yet quoted as if trading: refused, never traded again
        return Validated(m, None, SETTLED_QUOTE)
    s: Quote | None = quote
    if quote is None or (snapshot is not None and quote.ts > now_ms + _SKEW):
        assert snapshot is not None  # (a quote alone, or a snapshot)
        s = quick_snapshot(snapshot, now_ms)
    if s is None:
        assert snapshot is not None
        try:
            s = Quote.from_rules(QuoteRules.model_validate(model_input(snapshot), context=ctx))
        except ValidationError as e:
            return Validated(m, None, "snapshot " + rejection_reason(e))
    if s.ticker != m.ticker:
        return Validated(m, None, f"snapshot ticker {s.ticker} does not match market {m.ticker}")
    if m.price_ranges is not None:  # the market's own grid (price_ranges), finer checks than $0.0001
        yc, _yq, nc, _nq = s._depth
        off = off_grid(grid_of(m.price_ranges), s.prices_cc, yc, nc)
        if off:
            return Validated(m, None, f"{OFF_GRID}: {off}")
    return Validated(m, s, None)
