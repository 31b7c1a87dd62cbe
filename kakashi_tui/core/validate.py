"""Turn a source's raw row into validated models, or a reason it was rejected.

Two checks, one set of rules. ``Snapshot`` (pydantic) is the rule book and names the
reason for every rejection. ``quick_snapshot`` is the hot path: it accepts only rows that
are plainly valid in their usual form (prices as cent-grid strings or Decimals, integer
quantities and timestamps) and returns a ``Quote`` with no model built per row; anything
else, good or bad, goes to pydantic. A property test holds the two together: whatever the
quick check accepts, pydantic accepts with the same values.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, NamedTuple

from pydantic import ValidationError

from kakashi_tui.core.models import FUTURE_SKEW_MS, GRID, Market, Quote, Snapshot, rejection_reason


class Validated(NamedTuple):  # one per row on the hot path: a tuple, not a frozen dataclass
    market: Market | None
    snapshot: Snapshot | Quote | None
    reason: str | None  # None when the row is good


# Every grid price in [0, 1] by the forms sources write it ("0.42", "0.4", Decimal) -> cents.
# Decimal keys also match equal values written otherwise (Decimal("0.420")) and the same
# numbers as int or float (1, 0.5): pydantic reads those as the same Decimal.
_CENTS: dict[Any, int] = {}
for _c, _d in enumerate(GRID):
    _CENTS[_d] = _c
    _CENTS[f"{_c / 100:.2f}"] = _c
    if _c % 10 == 0:
        _CENTS[f"{_c / 100:.1f}"] = _c
_CENTS.update({"0": 0, "1": 100})
_FLOAT = [c / 100 for c in range(101)]  # == float(Decimal("0.42")): both are the nearest double
_LEVEL_TEXT = [f'["{c / 100:.2f}",' for c in range(101)]
_SNAPSHOT_KEYS = frozenset(("ticker", "ts", "yes_bid", "yes_ask", "last", "yes_bids", "no_bids", "volume"))
_PRICE_TYPES = (str, Decimal)


def _levels(levels: Any, cents: list[int], qtys: list[int], text: list[str]) -> bool:
    """Check levels given as {"price", "qty"} dicts or [price, qty] pairs, appending their
    cents, quantities and stored text; False when they are not plainly valid."""
    if type(levels) not in (list, tuple):
        return False
    last = 100
    get = _CENTS.get
    try:
        for lv in levels:
            tp = type(lv)
            if (tp is list or tp is tuple) and len(lv) == 2:
                p, q = lv
            elif tp is dict and len(lv) == 2:
                p, q = lv.get("price"), lv.get("qty")
            else:
                return False
            # Strictly inside (0, 1), best first, distinct; a positive integer quantity. Prices
            # are looked up without a type check: the only other keys that match (bools, 0 and
            # 1, the floats 0.25/0.5/0.75) are out of bounds or exactly what pydantic would read.
            c = get(p)
            if c is None or not 0 < c < last or type(q) is not int or q <= 0:
                return False
            last = c
            cents.append(c)
            qtys.append(q)
            text.append(f"{_LEVEL_TEXT[c]}{q}]")
    except TypeError:  # an unhashable price
        return False
    return True


_NO = -1  # a top-of-book price the quick check does not take


def _top(v: Any) -> int | None:
    """Cents of a top-of-book price; None when absent; _NO when not plainly a grid price."""
    if v is None:
        return None
    if type(v) not in _PRICE_TYPES:
        return _NO
    try:
        c = _CENTS.get(v)
    except TypeError:  # Decimal("sNaN") cannot be hashed
        return _NO
    return _NO if c is None else c


def quick_snapshot(raw: dict[str, Any], now_ms: int | None) -> Quote | None:
    """A ``Quote`` when ``raw`` is plainly a valid snapshot; None means "ask pydantic"."""
    if not raw.keys() <= _SNAPSHOT_KEYS:
        return None
    ticker, ts = raw.get("ticker"), raw.get("ts")
    if type(ticker) is not str or not ticker or ticker.strip() != ticker:
        return None
    if type(ts) is not int or ts <= 0 or (now_ms is not None and ts > now_ms + FUTURE_SKEW_MS):
        return None
    bid, ask, last = _top(raw.get("yes_bid")), _top(raw.get("yes_ask")), _top(raw.get("last"))
    if bid == _NO or ask == _NO or last == _NO:
        return None
    if (bid is not None and not 0 < bid < 100) or (ask is not None and not 0 < ask < 100):
        return None
    if bid is None and ask is None or (bid is not None and ask is not None and ask <= bid):
        return None
    volume = raw.get("volume", 0)
    if type(volume) is not int:
        return None
    yc: list[int] = []
    yq: list[int] = []
    nc: list[int] = []
    nq: list[int] = []
    yt: list[str] = []
    nt: list[str] = []
    if not _levels(raw.get("yes_bids", ()), yc, yq, yt) or not _levels(raw.get("no_bids", ()), nc, nq, nt):
        return None
    if (yc and bid is not None and yc[0] != bid) or (nc and ask is not None and 100 - nc[0] != ask):
        return None
    text = f'{{"yes":[{",".join(yt)}],"no":[{",".join(nt)}]}}' if yc or nc else ""
    return Quote(ticker, ts,
                 None if bid is None else GRID[bid], None if ask is None else GRID[ask],
                 None if last is None else GRID[last], volume, (yc, yq, nc, nq),
                 (None if bid is None else _FLOAT[bid], None if ask is None else _FLOAT[ask],
                  None if last is None else _FLOAT[last]), text)


def model_input(snapshot: dict[str, Any]) -> dict[str, Any]:
    """A raw snapshot as pydantic's Snapshot takes it: [price, qty] level pairs (Kalshi's and
    the replay file's form) become BookLevel dicts; anything else is left for it to judge."""
    def dicts(levels: Any) -> Any:
        if not isinstance(levels, (list, tuple)):
            return levels
        return [{"price": lv[0], "qty": lv[1]} if type(lv) in (list, tuple) and len(lv) == 2 else lv
                for lv in levels]

    return {**snapshot, **{k: dicts(snapshot[k]) for k in ("yes_bids", "no_bids") if k in snapshot}}


def validate_row(market: dict[str, Any], snapshot: dict[str, Any] | None, now_ms: int, known: Market | None = None) -> Validated:
    """``known``: the Market this exact raw market dict validated to before (markets rarely change).

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
    if snapshot is None:
        return Validated(m, None, None)
    s: Snapshot | Quote | None = quick_snapshot(snapshot, now_ms)
    if s is None:
        try:
            s = Snapshot.model_validate(model_input(snapshot), context=ctx)
        except ValidationError as e:
            return Validated(m, None, "snapshot " + rejection_reason(e))
    if s.ticker != m.ticker:
        return Validated(m, None, f"snapshot ticker {s.ticker} does not match market {m.ticker}")
    return Validated(m, s, None)
