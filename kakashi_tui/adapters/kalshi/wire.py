"""Kalshi's wire shapes to Kakashi's raw rows, once, at the edge.

Rows (``convert``, ``market_row``, ``snapshot_row``) follow ``adapters/source.py``: prices and
counts as they came off the wire (exact strings, never float), books best first, a quiet market
as "no quote", the lifecycle status word passed through. A row that cannot be one (not an
object, a ticker no Kalshi market has, a count or time out of any sane range, text SQLite or a
terminal cannot hold, legacy and fixed-point twins that disagree) is rejected on its own with a
reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation
from typing import Any

from kakashi_tui.adapters.source import RawRow
from kakashi_tui.core.text import safe_text

MAX_TICKER_LEN = 200  # the spec's maxLength for a ticker in GET /markets/orderbooks
MAX_TEXT_LEN = 2000
MAX_COUNT = Decimal(10) ** 12  # contracts: far above any market's volume, far below SQLite's int
MIN_TS_MS = 946_684_800_000  # 2000-01-01
MAX_TS_MS = 7_258_118_400_000  # 2200-01-01
LIFECYCLE = ("initialized", "inactive", "active", "closed", "determined", "disputed", "amended", "finalized")


def _safe(text: Any, limit: int = 200) -> str:
    """Text fit for one log line: printable ASCII (anything else escaped), bounded (core/text.py)."""
    return safe_text(text, limit, ascii_only=True)


# -- wire format -> raw rows (adapters/source.py: exact strings, converted once at validation) --------
class RowError(ValueError):
    """This market cannot be a row: the reason is safe to store and show."""


_TICKER_FORBIDDEN = frozenset("/\\?#%,&=;\"'<>`{}|^[]")


def check_ticker(v: Any, what: str = "ticker") -> str:
    """A ticker Kalshi could have issued: printable ASCII, no spaces and nothing a URL or a
    comma-separated list would read as structure, at most 200 characters."""
    if not isinstance(v, str):
        raise RowError(f"{what} is not text (got {type(v).__name__})")
    if not v:
        raise RowError(f"missing {what}")
    if len(v) > MAX_TICKER_LEN:
        raise RowError(f"{what} too long ({len(v)} characters)")
    for c in v:
        if not (" " < c <= "~") or c in _TICKER_FORBIDDEN:
            raise RowError(f"{what} has a character no Kalshi ticker uses (U+{ord(c):04X})")
    return v


def ticker_ok(t: Any) -> bool:
    """Whether ``t`` passes ``check_ticker`` (for filtering, where no reason is needed)."""
    try:
        check_ticker(t)
    except RowError:
        return False
    return True


def _text(m: dict[str, Any], key: str) -> str:
    v = m.get(key)
    if v is None:
        return ""
    if not isinstance(v, str):
        raise RowError(f"{key} is not text (got {type(v).__name__})")
    if len(v) > MAX_TEXT_LEN:
        raise RowError(f"{key} too long ({len(v)} characters)")
    for c in v:
        o = ord(c)
        if o < 0x20 or 0x7F <= o < 0xA0 or 0xD800 <= o <= 0xDFFF:
            raise RowError(f"{key} holds a character that cannot be stored or shown (U+{o:04X})")
    return v


def _word(m: dict[str, Any], key: str) -> str | None:
    v = m.get(key)
    if v is None or v == "":
        return None
    if not isinstance(v, str) or len(v) > 40 or not v.isascii() or not v.isprintable():
        raise RowError(f"{key} is not a word Kalshi uses ({_safe(v, 40)})")
    return v


def _ts_ms(m: dict[str, Any], key: str) -> int | None:
    v = m.get(key)
    if v is None or v == "":
        return None
    if isinstance(v, bool):
        raise RowError(f"{key} is not a time")
    if isinstance(v, int):
        ms = v
    elif isinstance(v, str) and len(v) <= 40:
        s = v.strip()
        try:
            dt = datetime.fromisoformat(s[:-1] + "+00:00" if s.endswith("Z") else s)
        except ValueError:
            raise RowError(f"{key} is not an RFC 3339 time ({_safe(v, 40)})") from None
        if dt.tzinfo is None or dt.utcoffset() != timedelta(0):
            raise RowError(f"{key} is not in UTC ({_safe(v, 40)})")
        ms = int(dt.timestamp() * 1000)
    else:
        raise RowError(f"{key} is not a time ({_safe(v, 40)})")
    if not MIN_TS_MS <= ms <= MAX_TS_MS:
        raise RowError(f"{key} out of range ({_safe(v, 40)})")
    return ms


def _dec(v: Any) -> Decimal | None:
    """A finite Decimal from a wire number or decimal string; None when it is not one."""
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, str):
        if len(v) > 40:
            return None
        try:
            d = Decimal(v.strip()) if v.strip() == v else None
        except InvalidOperation:
            return None
    elif isinstance(v, (int, Decimal)):
        if isinstance(v, int) and abs(v) > 10**30:
            return Decimal(10) ** 31
        d = Decimal(v)
    else:
        return None
    return d if d is not None and d.is_finite() else None


def _cents_to_dollars(p: Any) -> Any:
    """A legacy cent price as a dollar string (what validation takes); anything else as sent."""
    d = _dec(p)
    return p if d is None else str((Decimal(d) / 100).quantize(Decimal("0.0001")))


def _twin_ok(legacy: Decimal | None, exact: Decimal | None, scale: int) -> bool:
    """A legacy integer field (cents, whole contracts) agrees with its fixed-point twin when it
    says the same, or, where the twin is finer than an integer can carry (a sub-penny price, a
    fractional count), when it is one of the two integers around it."""
    if legacy is None or exact is None:
        return False
    x = exact * scale
    if legacy == x:
        return True
    return x != x.to_integral_value() and legacy in (
        x.to_integral_value(ROUND_FLOOR),
        x.to_integral_value(ROUND_CEILING),
    )


def _legacy_price(m: dict[str, Any], name: str) -> Any:
    """``<name>_dollars`` as sent; a legacy cent twin, if present, must say the same. With only
    the legacy field (old recordings), its cents become exact dollars."""
    dollars_key = f"{name}_dollars"
    has_d, has_c = m.get(dollars_key) not in (None, ""), m.get(name) not in (None, "")
    if has_c:
        cents = _dec(m.get(name))
        if has_d:
            if not _twin_ok(cents, _dec(m.get(dollars_key)), 100):
                raise RowError(
                    f"inconsistent {name}: legacy {_safe(m.get(name), 30)} vs "
                    f"{dollars_key} {_safe(m.get(dollars_key), 30)}"
                )
        elif cents is not None:
            return str((cents / 100).quantize(Decimal("0.0001")))
        else:
            return m.get(name)
    return m.get(dollars_key) if has_d else None  # as sent: validation judges it


def _count(m: dict[str, Any], name: str) -> Any:
    """``<name>_fp`` as sent (a legacy integer twin must agree), bounded; "0" when absent."""
    fp_key = f"{name}_fp"
    has_f, has_i = m.get(fp_key) not in (None, ""), m.get(name) not in (None, "")
    raw = m.get(fp_key) if has_f else (m.get(name) if has_i else None)
    if has_f and has_i:
        if not _twin_ok(_dec(m.get(name)), _dec(m.get(fp_key)), 1):
            raise RowError(
                f"inconsistent {name}: legacy {_safe(m.get(name), 30)} vs {fp_key} {_safe(m.get(fp_key), 30)}"
            )
    if raw is None:
        return "0"
    d = _dec(raw)
    if d is None:
        raise RowError(f"{fp_key if has_f else name} is not a count ({_safe(raw, 30)})")
    if not 0 <= d <= MAX_COUNT:
        raise RowError(f"{fp_key if has_f else name} out of range ({_safe(raw, 30)})")
    return raw if isinstance(raw, str) else str(d)


_ONE = Decimal(1)


def _levels(ob: dict[str, Any], side: str) -> list[list[Any]]:
    """One side of a Kalshi book (bids ascending, best last) as [price, qty] pairs, best first,
    exactly as sent. A legacy cents twin (``yes`` / ``no``) must list the same levels."""
    dollars = ob.get(f"{side}_dollars")
    legacy = ob.get(side)
    if dollars is None and legacy is None:
        return []
    for levels, key in ((dollars, f"{side}_dollars"), (legacy, side)):
        if levels is not None and not isinstance(levels, list):
            raise RowError(f"order book {key} is not a list")
        for lv in levels or ():
            if not isinstance(lv, list) or len(lv) != 2:
                raise RowError(f"order book {key} has a level that is not a [price, count] pair")
    if dollars is not None and legacy is not None:
        a = [(_dec(p), _dec(q)) for p, q in legacy]
        b = [(_dec(p), _dec(q)) for p, q in dollars]
        if len(a) != len(b) or not all(
            _twin_ok(pa, pb, 100) and _twin_ok(qa, qb, 1) for (pa, qa), (pb, qb) in zip(a, b)
        ):
            raise RowError(f"inconsistent order book: {side} (cents) vs {side}_dollars")
    if dollars is not None:
        out = [[p, q] for p, q in dollars]
    else:
        out = [[_cents_to_dollars(p), q] for p, q in legacy or ()]
    for _p, q in out:
        d = _dec(q)
        if d is not None and not 0 <= d <= MAX_COUNT:
            raise RowError(f"order book {side} count out of range ({_safe(q, 30)})")
    return out[::-1]


def _no_quote(v: Any, empty: Decimal) -> Any:
    d = _dec(v)
    return None if d is not None and d == empty else v


@dataclass(frozen=True)
class Fees:
    fee_type: str | None = None
    fee_multiplier: str | None = None  # the series' number, exact, as a decimal string


def convert(m: Any, ts: int, ob: dict[str, Any] | None = None, series: str = "", fees: Fees | None = None) -> RawRow:
    """One listed market (and its book, when fetched) as a raw row, or a rejected row with its
    reason. Never raises."""
    try:
        return _convert(m, ts, ob, series, fees or Fees())
    except RowError as e:
        reason = str(e)
    except (ArithmeticError, TypeError, ValueError, RecursionError) as e:  # last resort: a verdict
        reason = f"unreadable market: {e.__class__.__name__}"
    ticker = m.get("ticker") if isinstance(m, dict) else None
    try:
        ticker = check_ticker(ticker)
    except RowError:
        ticker = ""
    return RawRow(
        market={"ticker": ticker},
        snapshot=None,
        payload={"market": m, "orderbook": ob} if ob is not None else m,
        reason=reason,
    )


def _convert(m: Any, ts: int, ob: dict[str, Any] | None, series: str, fees: Fees) -> RawRow:
    if not isinstance(m, dict):
        kind = "null" if m is None else type(m).__name__
        raise RowError(f"market is not an object (got {kind})")
    ticker = check_ticker(m.get("ticker"))
    event = m.get("event_ticker")
    event = "" if event in (None, "") else check_ticker(event, "event_ticker")
    status = _word(m, "status") or ""
    result = _word(m, "result")
    settlement_value = _legacy_price(m, "settlement_value")
    market = {
        "ticker": ticker,
        "title": _text(m, "title"),
        "subtitle": _text(m, "yes_sub_title"),
        "event_ticker": event,
        "series": series,
        "status": status,
        "market_type": _word(m, "market_type") or "binary",
        "result": result,
        "settlement_value": settlement_value,
        "open_ts": _ts_ms(m, "open_time"),
        "close_ts": _ts_ms(m, "close_time"),
        "updated_ts": _ts_ms(m, "updated_time"),
        "fee_type": fees.fee_type,
        "fee_multiplier": fees.fee_multiplier,
        "fee_waiver_until_ts": _ts_ms(m, "fee_waiver_expiration_time"),
    }
    # Read every price and count (the twins are checked even when the row carries no quote).
    bid = _no_quote(_legacy_price(m, "yes_bid"), Decimal(0))
    ask = _no_quote(_legacy_price(m, "yes_ask"), _ONE)
    last = _legacy_price(m, "last_price")
    if _dec(last) is not None and _dec(last) in (0, _ONE):
        last = None  # no trade yet
    for name in ("no_bid", "no_ask", "notional_value"):
        _legacy_price(m, name)
    volume = _count(m, "volume")
    _count(m, "open_interest")
    if ob is not None and not isinstance(ob, dict):
        raise RowError("order book is not an object")
    if status != "active":  # no quote outside trading; the market row carries the lifecycle
        return RawRow(market=market, snapshot=None, payload={"market": m, "orderbook": ob} if ob is not None else m)
    snapshot: dict[str, Any] = {
        "ticker": ticker,
        "ts": ts,
        "yes_bid": bid,
        "yes_ask": ask,
        "last": last,
        "volume": volume,
    }
    if ob is not None:
        yes, no = _levels(ob, "yes"), _levels(ob, "no")
        snapshot["yes_bids"], snapshot["no_bids"] = yes, no
        # The book is the fresher truth for the top: take it from the levels.
        snapshot["yes_bid"] = yes[0][0] if yes else None
        if no:
            p = _dec(no[0][0])
            snapshot["yes_ask"] = str(_ONE - p) if p is not None else no[0][0]
        else:
            snapshot["yes_ask"] = None
    return RawRow(market=market, snapshot=snapshot, payload={"market": m, "orderbook": ob} if ob is not None else m)


def market_row(m: dict[str, Any], series: str = "", fees: Fees | None = None) -> dict[str, Any]:
    """The market dict of a listed market (raises RowError when it cannot be one)."""
    return _convert(m, MIN_TS_MS, None, series, fees or Fees()).market


def snapshot_row(m: dict[str, Any], ts: int, ob: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """The snapshot dict of a listed market (None outside trading; raises RowError)."""
    return _convert(m, ts, ob, "", Fees()).snapshot
