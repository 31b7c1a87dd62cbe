"""Kalshi's payloads as typed wire schemas (pydantic v2), declared once and read at the edge.

The adapter is three parts: the HTTP client (``client``: pacing, one retry policy, bodies as
exact JSON), these schemas, and the source (``source``; ``ws`` for the WebSocket). Every payload
Kakashi reads from Kalshi is a model here: a market, a page of markets or events (with its
cursor), an order book (``orderbook_fp``'s dollar-string levels, alone or in a batch), an event,
a series (its fees), the series' and events' fee changes, the exchange's status, a public
trade, and the WebSocket's messages (``subscribed``, ``error``, ``orderbook_snapshot``,
``orderbook_delta``, ``trade``, ``ticker``, ``event_fee_update``).

Rules the models keep:
- Unknown fields are ignored (``extra="ignore"``): Kalshi adds fields often. Fields Kalshi has
  removed (``liquidity_dollars``, ``fractional_trading_enabled``, ``response_price_units``) are
  never required. Fields from later specs that Kakashi does not act on yet are either left out
  (on the hot paths: a market, a delta) or declared ``Lenient`` (a print's ``ts_ms``, a
  frame's ``sending_ts_ms``; the exchange's shards): read when they have the declared type,
  None otherwise, never a reason to refuse a row. A print's ``is_block_trade`` is the exception:
  a block print is never book liquidity, so one that cannot be read refuses the print.
- A page is parsed as a list of elements, and each element on its own (``parse_market``): a bad
  field in one market is that market's rejected row with its reason (the first failing field,
  in the order below), never the whole page's loss.
- Numbers are exact: bodies are decoded with ``Decimal`` for JSON numbers (``client.parse_body``)
  and dollar strings are never floats. A market's prices stay the text Kalshi sent (a legacy cent
  twin becomes exact dollars): ``core/validate.py`` turns them into centicents once, and judges
  them. The WebSocket's levels, deltas and prints become integer units here, once
  (``price_cc``: $0.0001; ``count_hundredths``: 1/100 contract), as the feed keeps its books in them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo
from pydantic.functional_validators import PlainValidator

from kakashi_tui.core.text import safe_text

MAX_TICKER_LEN = 200  # the spec's maxLength for a ticker in GET /markets/orderbooks
MAX_TEXT_LEN = 2000
MAX_COUNT = Decimal(10) ** 12  # contracts: far above any market's volume, far below SQLite's int
MIN_TS_MS = 946_684_800_000  # 2000-01-01
MAX_TS_MS = 7_258_118_400_000  # 2200-01-01
LIFECYCLE = ("initialized", "inactive", "active", "closed", "determined", "disputed", "amended", "finalized")
E4 = Decimal(10_000)  # dollars -> $0.0001 units
E2 = Decimal(100)  # contracts -> 1/100 contract units
MAX_COUNT_HUNDREDTHS = int(MAX_COUNT * E2)  # (catalog.MAX_COUNT_HUNDREDTHS, the row check's bound)
_MAX_HUNDREDTHS = Decimal(MAX_COUNT_HUNDREDTHS)


def _safe(text: Any, limit: int = 200) -> str:
    """Text fit for one log line: printable ASCII (anything else escaped), bounded (core/text.py)."""
    return safe_text(text, limit, ascii_only=True)


class RowError(ValueError):
    """This payload cannot be a row: the reason is safe to store and show."""


# -- field checks: each returns the typed value or raises RowError with the row's reason ------------
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


def text(v: Any, key: str) -> str:
    """Free text a row can store and a terminal can show ("" when absent)."""
    if v is None:
        return ""
    if not isinstance(v, str):
        raise RowError(f"{key} is not text (got {type(v).__name__})")
    if len(v) > MAX_TEXT_LEN:
        raise RowError(f"{key} too long ({len(v)} characters)")
    if v.isascii() and v.isprintable():  # the usual case, checked in C: no control character
        return v
    for c in v:
        o = ord(c)
        if o < 0x20 or 0x7F <= o < 0xA0 or 0xD800 <= o <= 0xDFFF:
            raise RowError(f"{key} holds a character that cannot be stored or shown (U+{o:04X})")
    return v


def word(v: Any, key: str) -> str | None:
    """One of Kalshi's enum words, passed through (None when absent)."""
    if v is None or v == "":
        return None
    if not isinstance(v, str) or len(v) > 40 or not v.isascii() or not v.isprintable():
        raise RowError(f"{key} is not a word Kalshi uses ({_safe(v, 40)})")
    return v


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def ts_ms(v: Any, key: str) -> int | None:
    """An RFC 3339 UTC time (or epoch ms) as UTC epoch ms, in 2000..2200 (None when absent)."""
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
        ms = (dt - _EPOCH) // timedelta(milliseconds=1)  # exact (a float timestamp can lose the last ms)
    else:
        raise RowError(f"{key} is not a time ({_safe(v, 40)})")
    if not MIN_TS_MS <= ms <= MAX_TS_MS:
        raise RowError(f"{key} out of range ({_safe(v, 40)})")
    return ms


def dec(v: Any) -> Decimal | None:
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


def cents_to_dollars(p: Any) -> Any:
    """A legacy cent price as a dollar string (what validation takes); anything else as sent."""
    d = dec(p)
    return p if d is None else str((Decimal(d) / 100).quantize(Decimal("0.0001")))


def twin_ok(legacy: Decimal | None, exact: Decimal | None, scale: int) -> bool:
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


def _given(v: Any) -> bool:
    return v is not None and v != ""


def price_as_sent(dollars: Any, legacy: Any, name: str) -> Any:
    """``<name>_dollars`` as sent; a legacy cent twin, if present, must say the same. With only
    the legacy field (old recordings), its cents become exact dollars."""
    has_d, has_c = _given(dollars), _given(legacy)
    if has_c:
        cents = dec(legacy)
        if has_d:
            if not twin_ok(cents, dec(dollars), 100):
                raise RowError(
                    f"inconsistent {name}: legacy {_safe(legacy, 30)} vs {name}_dollars {_safe(dollars, 30)}"
                )
        elif cents is not None:
            return str((cents / 100).quantize(Decimal("0.0001")))
        else:
            return legacy
    return dollars if has_d else None  # as sent: validation judges it


def count_text(fp: Any, legacy: Any, name: str) -> str:
    """``<name>_fp`` as sent (a legacy integer twin must agree), bounded; "0" when absent."""
    fp_key = f"{name}_fp"
    has_f, has_i = _given(fp), _given(legacy)
    raw = fp if has_f else (legacy if has_i else None)
    if has_f and has_i and not twin_ok(dec(legacy), dec(fp), 1):
        raise RowError(f"inconsistent {name}: legacy {_safe(legacy, 30)} vs {fp_key} {_safe(fp, 30)}")
    if raw is None:
        return "0"
    d = dec(raw)
    if d is None:
        raise RowError(f"{fp_key if has_f else name} is not a count ({_safe(raw, 30)})")
    if not 0 <= d <= MAX_COUNT:
        raise RowError(f"{fp_key if has_f else name} out of range ({_safe(raw, 30)})")
    return raw if isinstance(raw, str) else str(d)


def _side_levels(dollars: Any, legacy: Any, side: str) -> list[list[Any]]:
    """One side of a Kalshi book (bids ascending, best last) as [price, qty] pairs, best first,
    exactly as sent. A legacy cents twin (``yes`` / ``no``) must list the same levels."""
    if dollars is None and legacy is None:
        return []
    for levels, key in ((dollars, f"{side}_dollars"), (legacy, side)):
        if levels is not None and not isinstance(levels, list):
            raise RowError(f"order book {key} is not a list")
        for lv in levels or ():
            if not isinstance(lv, list) or len(lv) != 2:
                raise RowError(f"order book {key} has a level that is not a [price, count] pair")
    if dollars is not None and legacy is not None:
        a = [(dec(p), dec(q)) for p, q in legacy]
        b = [(dec(p), dec(q)) for p, q in dollars]
        if len(a) != len(b) or not all(twin_ok(pa, pb, 100) and twin_ok(qa, qb, 1) for (pa, qa), (pb, qb) in zip(a, b)):
            raise RowError(f"inconsistent order book: {side} (cents) vs {side}_dollars")
    if dollars is not None:
        out = [[p, q] for p, q in dollars]
    else:
        out = [[cents_to_dollars(p), q] for p, q in legacy or ()]
    for _p, q in out:
        d = dec(q)
        if d is not None and not 0 <= d <= MAX_COUNT:
            raise RowError(f"order book {side} count out of range ({_safe(q, 30)})")
    return out[::-1]


# -- exact integer units (the WebSocket's books and prints) -------------------------------------------
def price_cc(v: Any, what: str = "price") -> int:
    """A dollar string strictly inside (0, 1) on the $0.0001 grid, as $0.0001 units."""
    p: int | None = None
    if isinstance(v, str) and len(v) <= 40:
        try:
            x = Decimal(v) * E4
        except ArithmeticError:  # not a number, or one past Decimal's exponent range
            x = None
        if x is not None and x.is_finite() and -E4 < x < 2 * E4 and x == x.to_integral_value():
            p = int(x)
    if p is None or not 0 < p < 10_000:
        raise RowError(f"bad {what} {_safe(v, 40)}")
    return p


def count_hundredths(v: Any, signed: bool = False, what: str = "count") -> int:
    """A fixed-point count string on the 1/100 grid, as 1/100 contract units, at most 10^12
    contracts either way (the row check's bound); negative only when ``signed`` (a delta)."""
    q: int | None = None
    if isinstance(v, str) and len(v) <= 40:
        try:
            x = Decimal(v) * E2
        except ArithmeticError:  # not a number, or one past Decimal's exponent range
            x = None
        if x is not None and x.is_finite() and abs(x) <= _MAX_HUNDREDTHS and x == x.to_integral_value():
            q = int(x)
    if q is None or (not signed and q < 0) or abs(q) > MAX_COUNT_HUNDREDTHS:
        raise RowError(f"bad {what} {_safe(v, 40)}")
    return q


# -- field types: a validator per field, raising the row's reason -----------------------------------
def _plain(fn: Callable[[Any], Any]) -> PlainValidator:
    return PlainValidator(fn)


def _lenient(*types: type) -> PlainValidator:
    """Read when the value has one of ``types`` (bool is never an int); None otherwise."""

    def read(v: Any) -> Any:
        if isinstance(v, bool) and bool not in types:
            return None
        return v if isinstance(v, types) else None

    return PlainValidator(read)


def _raise(why: str) -> Any:
    raise RowError(why)


AsSent = Any  # a value passed on exactly as Kalshi sent it (a legacy twin; a price validation judges)
Ticker = Annotated[str, _plain(check_ticker)]
LenientStr = Annotated[str | None, _lenient(str)]
LenientInt = Annotated[int | None, _lenient(int)]
LenientBool = Annotated[bool | None, _lenient(bool)]
LenientList = Annotated[list[Any] | None, _lenient(list)]


def _twin() -> Any:
    """A fixed-point field's default: validated even when absent (its legacy twin may be there)."""
    return Field(default=None, validate_default=True)


def _opt_ticker(what: str) -> PlainValidator:
    return _plain(lambda v: "" if v in (None, "") else check_ticker(v, what))


def _text(key: str) -> PlainValidator:
    return _plain(lambda v: text(v, key))


def _word(key: str) -> PlainValidator:
    return _plain(lambda v: word(v, key))


def _time(key: str) -> PlainValidator:
    return _plain(lambda v: ts_ms(v, key))


def _price(name: str) -> PlainValidator:
    """``<name>_dollars``, checked against its legacy twin ``<name>`` (declared just before it)."""

    def read(v: Any, info: ValidationInfo) -> Any:
        return price_as_sent(v, info.data.get(name), name)

    return PlainValidator(read)


def _count(name: str) -> PlainValidator:
    """``<name>_fp`` as exact text ("0" when absent), checked against its legacy twin ``<name>``."""

    def read(v: Any, info: ValidationInfo) -> str:
        return count_text(v, info.data.get(name), name)

    return PlainValidator(read)


def _levels(side: str) -> PlainValidator:
    """``<side>_dollars`` best first, checked against its legacy twin ``<side>`` (before it)."""

    def read(v: Any, info: ValidationInfo) -> list[list[Any]]:
        return _side_levels(v, info.data.get(side), side)

    return PlainValidator(read)


def _list(key: str) -> PlainValidator:
    return _plain(lambda v: v if isinstance(v, list) else _raise(f"'{key}' is not a list"))


def _elements(key: str) -> PlainValidator:
    return _plain(lambda v: [] if v is None else v if isinstance(v, list) else _raise(f"'{key}' is not a list"))


class Wire(BaseModel):
    """A Kalshi payload: unknown fields ignored, values immutable once read."""

    model_config = ConfigDict(extra="ignore", frozen=True)


def first_reason(e: ValidationError) -> str:
    """The first failing field's reason: our own words where a check raised them."""
    errs = e.errors(include_url=False)
    if not errs:
        return "unreadable payload"
    err = errs[0]
    cause = (err.get("ctx") or {}).get("error")
    if isinstance(cause, RowError):
        return str(cause)
    loc = ".".join(str(x) for x in err["loc"]) or "payload"
    return _safe(f"{loc}: {err['msg']}", 200)


W = TypeVar("W", bound=Wire)


def parse(model: type[W], obj: Any, what: str = "payload") -> W:
    """``obj`` as ``model``, or RowError with the first failing field's reason."""
    if not isinstance(obj, dict):
        raise RowError(f"{what} is not an object (got {'null' if obj is None else type(obj).__name__})")
    try:
        return model.model_validate(obj)
    except ValidationError as e:
        raise RowError(first_reason(e)) from None


# -- REST ---------------------------------------------------------------------------------------------
class Market(Wire):
    """A listed market (``GET /markets``, ``/markets/{t}``, ``/historical/markets/{t}``). Fields
    are declared in the order they are checked: the first that fails names the row's reason.
    Prices stay as sent (``core/validate.py`` converts them once); counts are exact text."""

    ticker: Ticker
    event_ticker: Annotated[str, _opt_ticker("event_ticker")] = ""
    status: Annotated[str | None, _word("status")] = None
    result: Annotated[str | None, _word("result")] = None
    settlement_value: AsSent = None  # legacy cents (before 2026-03-12), likewise below
    settlement_value_dollars: Annotated[AsSent, _price("settlement_value")] = _twin()
    title: Annotated[str, _text("title")] = ""
    yes_sub_title: Annotated[str, _text("yes_sub_title")] = ""
    market_type: Annotated[str | None, _word("market_type")] = None
    open_time: Annotated[int | None, _time("open_time")] = None
    close_time: Annotated[int | None, _time("close_time")] = None
    updated_time: Annotated[int | None, _time("updated_time")] = None
    fee_waiver_expiration_time: Annotated[int | None, _time("fee_waiver_expiration_time")] = None
    yes_bid: AsSent = None
    yes_bid_dollars: Annotated[AsSent, _price("yes_bid")] = _twin()
    yes_ask: AsSent = None
    yes_ask_dollars: Annotated[AsSent, _price("yes_ask")] = _twin()
    last_price: AsSent = None
    last_price_dollars: Annotated[AsSent, _price("last_price")] = _twin()
    no_bid: AsSent = None
    no_bid_dollars: Annotated[AsSent, _price("no_bid")] = _twin()
    no_ask: AsSent = None
    no_ask_dollars: Annotated[AsSent, _price("no_ask")] = _twin()
    notional_value: AsSent = None
    notional_value_dollars: Annotated[AsSent, _price("notional_value")] = _twin()
    volume: AsSent = None
    volume_fp: Annotated[str, _count("volume")] = Field(default="0", validate_default=True)
    open_interest: AsSent = None
    open_interest_fp: Annotated[str, _count("open_interest")] = Field(default="0", validate_default=True)
    # Spec 3.31+ (#22): settlement floors, the price grid, the exchange shard. Read as sent (the
    # domain's Market judges them: a grid Kakashi cannot hold rejects the row); missing on older
    # servers: a default market, no grid of its own, shard 0.
    settlement_bounds_type: LenientStr = None
    settlement_floor_dollars: LenientStr = None
    price_ranges: AsSent = None
    exchange_index: LenientInt = None


def parse_market(m: Any) -> Market:
    """One market object, or RowError with the reason of its first bad field."""
    return parse(Market, m, "market")


class OrderBook(Wire):
    """``orderbook_fp`` (``orderbook`` in older recordings): bids only, ascending, best last on
    the wire; read best first, levels as sent. Legacy cent twins (``yes`` / ``no``) must agree."""

    yes: AsSent = None
    yes_dollars: Annotated[list[list[Any]], _levels("yes")] = _twin()
    no: AsSent = None
    no_dollars: Annotated[list[list[Any]], _levels("no")] = _twin()


def parse_book(ob: Any) -> OrderBook:
    return parse(OrderBook, ob, "order book")


class BookEntry(Wire):
    """One entry of ``GET /markets/orderbooks``: the book kept as sent (parsed with its market)."""

    ticker: LenientStr = None
    orderbook_fp: AsSent = None
    orderbook: AsSent = None  # older recordings

    def book(self) -> dict[str, Any] | None:
        """The book object ({} for a null one), None when the entry holds something else."""
        ob = self.orderbook_fp if "orderbook_fp" in self.model_fields_set else self.orderbook
        return ob or {} if isinstance(ob, dict) or ob is None else None


class MarketsPage(Wire):
    """``GET /markets``: one cursor page, its markets as sent (each parsed on its own)."""

    markets: Annotated[list[Any], _elements("markets")] = []
    cursor: LenientStr = None


class EventsPage(Wire):
    """``GET /events``: one cursor page, its events as sent (each parsed on its own)."""

    events: Annotated[list[Any], _elements("events")] = []
    cursor: LenientStr = None


class SeriesList(Wire):
    """``GET /series``: every series in one answer (no cursor), each parsed on its own."""

    series: Annotated[list[Any], _list("series")]


class BookList(Wire):
    """``GET /markets/orderbooks``: entries as sent (``BookEntry`` each)."""

    orderbooks: Annotated[list[Any], _list("orderbooks")]


class Event(Wire):
    """``GET /events/{e}`` and each of ``GET /events``: the series it belongs to (a listing
    also needs its ``event_ticker``, checked there), and whether its markets are mutually
    exclusive."""

    event_ticker: LenientStr = None
    series_ticker: Annotated[str, _plain(lambda v: check_ticker(v, "series_ticker"))]
    exchange_index: LenientInt = None
    # 3.34 EventData: the override in force now (null: none). Read only when sent and readable
    # (``fee_override``); an event is never refused for them.
    fee_type_override: AsSent = None
    fee_multiplier_override: AsSent = None
    # 3.34 EventData (required there): at most one of its markets resolves YES (collateral
    # return MECNET). The event cap reads it; missing or not a boolean: None, not known
    mutually_exclusive: LenientBool = None

    def fee_override(self) -> EventFeeOverride | None:
        """The event's override as sent (null fields: none), or None when it sent no override
        fields or they cannot be read."""
        sent = self.model_fields_set & {"fee_type_override", "fee_multiplier_override"}
        if not sent or self.event_ticker is None:
            return None
        try:
            return parse(
                EventFeeOverride,
                {
                    "event_ticker": self.event_ticker,
                    "fee_type_override": self.fee_type_override,
                    "fee_multiplier_override": self.fee_multiplier_override,
                },
            )
        except RowError:
            return None


def _fee_type(v: Any) -> str | None:
    return v if isinstance(v, str) and v.isascii() and v.isprintable() and len(v) <= 40 else None


def _fee_multiplier(v: Any) -> str | None:
    d = dec(v)
    return str(d) if d is not None and 0 <= d <= 100 else None


class Series(Wire):
    """``GET /series/{s}`` and each of ``GET /series``: the fee Kalshi charges in it. A fee field
    Kakashi cannot read is None (no fee known), never a rejected series."""

    ticker: LenientStr = None  # (a listing needs it, checked there; GET /series/{s} named it)
    fee_type: Annotated[str | None, _plain(_fee_type)] = None
    fee_multiplier: Annotated[str | None, _plain(_fee_multiplier)] = None  # exact decimal text
    exchange_index: LenientInt = None


def _override_type(v: Any) -> str | None:
    """An event's fee type override: null is cleared; anything unreadable refuses the change
    (never read as a clear)."""
    if v is None:
        return None
    t = _fee_type(v)
    if t is None:
        raise RowError(f"fee_type_override {_safe(v, 40)} is not a fee type")
    return t


def _override_multiplier(v: Any) -> str | None:
    """(A WebSocket frame's JSON is read with floats: a float is read as its shortest decimal
    text, the number the exchange wrote.)"""
    if v is None:
        return None
    m = _fee_multiplier(repr(v) if isinstance(v, float) else v)
    if m is None:
        raise RowError(f"fee_multiplier_override {_safe(v, 40)} is not a multiplier in [0, 100]")
    return m


def _scheduled_ts(v: Any) -> int:
    t = ts_ms(v, "scheduled_ts")
    if t is None:
        raise RowError("missing scheduled_ts")
    return t


class SeriesFeeChange(Wire):
    """One of ``GET /series/fee_changes``' ``series_fee_change_arr`` (spec ``SeriesFeeChange``):
    a series' fee type and multiplier from ``scheduled_ts``. A fee field Kakashi cannot read is
    None (that field unchanged); a change without its series or time is refused."""

    id: LenientStr = None
    series_ticker: Annotated[str, _plain(lambda v: check_ticker(v, "series_ticker"))]
    fee_type: Annotated[str | None, _plain(_fee_type)] = None
    fee_multiplier: Annotated[str | None, _plain(_fee_multiplier)] = None
    scheduled_ts: Annotated[int, _plain(_scheduled_ts)]


class SeriesFeeChanges(Wire):
    """``GET /series/fee_changes``: every series' upcoming changes in one answer (no cursor)."""

    series_fee_change_arr: Annotated[list[Any], _elements("series_fee_change_arr")] = []


class EventFeeOverride(Wire):
    """An event's fee override (spec ``EventFeeChange``, the WebSocket's ``event_fee_update``):
    a null field is cleared (back to the series' fee); an unreadable one refuses the change."""

    event_ticker: Annotated[str, _plain(lambda v: check_ticker(v, "event_ticker"))]
    fee_type_override: Annotated[str | None, _plain(_override_type)] = None
    fee_multiplier_override: Annotated[str | None, _plain(_override_multiplier)] = None


class EventFeeChange(EventFeeOverride):
    """One of ``GET /events/fee_changes``' ``event_fee_changes``, in force from ``scheduled_ts``."""

    id: LenientStr = None
    series_ticker: LenientStr = None
    scheduled_ts: Annotated[int, _plain(_scheduled_ts)]


class EventFeeChangesPage(EventsPage):
    """``GET /events/fee_changes``: one cursor page (1..1000 a page), its changes as sent,
    read as ``events`` so the client's cursor walk reads it as it reads ``GET /events``."""

    events: Annotated[list[Any], _elements("event_fee_changes")] = Field(default=[], alias="event_fee_changes")


class ExchangeShard(Wire):
    exchange_index: LenientInt = None
    trading_active: LenientBool = None


class ExchangeStatus(Wire):
    """``GET /exchange/status`` (not polled yet); 3.34 adds one status per shard."""

    exchange_active: LenientBool = None
    trading_active: LenientBool = None
    exchange_estimated_resume_time: LenientStr = None
    exchange_index_statuses: LenientList = None

    def shards(self) -> list[ExchangeShard]:
        return [ExchangeShard.model_validate(s) for s in self.exchange_index_statuses or () if isinstance(s, dict)]


class Trade(Wire):
    """A public print (``GET /markets/trades``, ``GET /historical/trades``; spec 3.34 ``Trade``):
    exact integer units. Its checks against the catalog's rules are ``catalog.trade_problem``'s."""

    ticker: Ticker
    yes_price_dollars: Annotated[int, _plain(lambda v: price_cc(v, "yes_price_dollars"))]
    count_fp: Annotated[int, _plain(lambda v: count_hundredths(v, what="count_fp"))]
    created_time: Annotated[int | None, _time("created_time")] = None
    trade_id: AsSent = None
    taker_side: AsSent = None  # deprecated by 3.34: the fallback for taker_outcome_side
    taker_outcome_side: AsSent = None  # 3.34 (yes | no)
    taker_book_side: AsSent = None  # 3.34 (bid | ask)
    is_block_trade: Annotated[bool | None, _plain(_block_flag)] = None  # 3.34: matched off the book

    def outcome_side(self) -> Any:
        return print_side(self.taker_outcome_side, self.taker_side)


class TradesPage(Wire):
    """``GET /markets/trades`` / ``GET /historical/trades``: one cursor page, its prints as sent
    (each parsed on its own, ``Trade``)."""

    trades: Annotated[list[Any], _elements("trades")] = []
    cursor: LenientStr = None


class Candlesticks(Wire):
    """``GET /series/{s}/markets/{t}/candlesticks`` (spec 3.34 ``GetMarketCandlesticksResponse``)
    and ``GET /historical/markets/{t}/candlesticks``: the candlesticks as sent (each read on its
    own, ``Candle``)."""

    ticker: LenientStr = None
    candlesticks: Annotated[list[Any], _elements("candlesticks")] = []


def _dist_price(v: Any, key: str, book: bool) -> int | None:
    """A price of a candlestick's distribution as $0.0001 units: a trade's strictly inside
    (0, 1), a bid's or ask's in [0, 1] (0 and 1: none resting); null (no trade) is None."""
    if v is None:
        return None
    if not book:
        return price_cc(v, key)
    x = dec(v) if isinstance(v, str) else None
    if x is None or not 0 <= x <= 1 or x * E4 != (x * E4).to_integral_value():
        raise RowError(f"bad {key} {_safe(v, 40)}")
    return int(x * E4)


def _dist(key: str) -> PlainValidator:
    """A candlestick's ``price`` / ``yes_bid`` / ``yes_ask``: {open, low, high, close} in
    $0.0001 units (3.34 names them ``*_dollars``; the historical shape without the suffix)."""

    def read(v: Any) -> dict[str, int | None]:
        if v is None:
            return {}
        if not isinstance(v, dict):
            raise RowError(f"candlestick {key} is not an object")
        out = {}
        for part in ("open", "low", "high", "close"):
            raw = v.get(f"{part}_dollars", v.get(part))
            out[part] = _dist_price(raw, f"{key}.{part}", key != "price")
        return out

    return PlainValidator(read)


def _end_period(v: Any) -> int:
    if type(v) is not int or not MIN_TS_MS // 1000 <= v <= MAX_TS_MS // 1000:
        raise RowError(f"end_period_ts {_safe(v, 30)} is not a time in epoch seconds")
    return v * 1000


def _candle_count(key: str) -> PlainValidator:
    return _plain(lambda v: None if v is None else count_hundredths(v, what=key))


class Candle(Wire):
    """One candlestick (spec 3.34 ``MarketCandlestick``; ``MarketCandlestickHistorical`` names its
    counts ``volume`` / ``open_interest`` and its prices without ``_dollars``), in exact units:
    ``end_period_ts`` as epoch ms, prices $0.0001 (None: no trade, or no bid/ask), counts 1/100."""

    end_period_ts: Annotated[int, _plain(_end_period)]
    price: Annotated[dict[str, int | None], _dist("price")] = {}
    yes_bid: Annotated[dict[str, int | None], _dist("yes_bid")] = {}
    yes_ask: Annotated[dict[str, int | None], _dist("yes_ask")] = {}
    volume_fp: Annotated[int | None, _candle_count("volume_fp")] = None
    volume: Annotated[int | None, _candle_count("volume")] = None
    open_interest_fp: Annotated[int | None, _candle_count("open_interest_fp")] = None
    open_interest: Annotated[int | None, _candle_count("open_interest")] = None


# -- WebSocket ---------------------------------------------------------------------------------------
MAX_INT64 = 2**63 - 1  # (catalog.MAX_INT64)


def serial(name: str, v: Any) -> int:
    """A subscription id or sequence number: an integer a catalog can hold (int64)."""
    if type(v) is not int or not 0 <= v <= MAX_INT64:
        raise RowError(f"{name} {_safe(v, 40)} is not a sequence number")
    return v


class WsMessage(Wire):
    """Any frame: what it is, and its subscription and sequence when it has them (checked where
    they matter). ``msg`` is the body, parsed by the frame's own model."""

    type: LenientStr = None
    id: LenientInt = None
    sid: AsSent = None
    seq: AsSent = None
    msg: AsSent = None
    sending_ts_ms: LenientInt = None  # when Kalshi sent the frame (3.34: every frame since October 2026)


def frame_exchange_ms(body: Any, sending_ts_ms: Any) -> int | None:
    """The exchange's time of a WebSocket frame, UTC epoch ms: its body's ``ts_ms``, else the
    frame's ``sending_ts_ms`` (every frame since October 2026), else its body's ``ts`` (epoch
    seconds, or RFC 3339 text); None when it carries none that reads as a time in 2000..2200
    (then its age counts from when it arrived, as before #22)."""
    b = body if isinstance(body, dict) else {}
    for v, seconds in ((b.get("ts_ms"), False), (sending_ts_ms, False), (b.get("ts"), True)):
        ms: int | None = None
        if type(v) is int:
            ms = v * 1000 if seconds else v
        elif isinstance(v, str) and seconds:
            try:
                ms = ts_ms(v, "ts")
            except RowError:
                ms = None
        if ms is not None and MIN_TS_MS <= ms <= MAX_TS_MS:
            return ms
    return None


class Subscribed(Wire):
    """``subscribed``'s body: which channel, under which subscription id (checked by the book
    channel's reader, ``serial``)."""

    channel: LenientStr = None
    sid: AsSent = None


class WsError(Wire):
    """``error``'s body: Kalshi's code and words (code 25: the reader fell behind)."""

    code: AsSent = None
    msg: Annotated[str, _plain(lambda v: v if isinstance(v, str) else "")] = ""


_ABSENT: Any = object()  # a snapshot side's default: the field was not sent


def _snapshot_side(side: str) -> PlainValidator:
    """``<side>_dollars_fp`` (or, when absent, the older ``<side>_dollars``, declared just
    before it) as price_cc -> qty_hundredths; empty levels dropped."""

    def read(v: Any, info: ValidationInfo) -> dict[int, int]:
        levels = info.data.get(f"{side}_dollars") if v is _ABSENT else v
        if not levels:
            return {}
        if not isinstance(levels, list):
            raise RowError(f"snapshot {side} levels are not a list")
        out: dict[int, int] = {}
        for lv in levels:
            if not isinstance(lv, list) or len(lv) != 2:
                raise RowError(f"bad level {_safe(lv, 60)}")
            q = count_hundredths(lv[1])
            if q:
                out[price_cc(lv[0])] = q
        return out

    return PlainValidator(read)


class BookSnapshot(Wire):
    """``orderbook_snapshot``'s body: each side's bids, price_cc -> qty_hundredths (exact units)."""

    market_ticker: Annotated[str, _plain(lambda v: check_ticker(v, "snapshot's market_ticker"))]
    yes_dollars: AsSent = None  # the older name of yes_dollars_fp
    yes_dollars_fp: Annotated[dict[int, int], _snapshot_side("yes")] = Field(default=_ABSENT, validate_default=True)
    no_dollars: AsSent = None
    no_dollars_fp: Annotated[dict[int, int], _snapshot_side("no")] = Field(default=_ABSENT, validate_default=True)


def _side(v: Any) -> str:
    if v not in ("yes", "no"):
        raise RowError(f"delta with side {_safe(v, 20)}")
    return str(v)


class BookDelta(Wire):
    """``orderbook_delta``'s body: one level's signed change, in exact units."""

    market_ticker: AsSent = None  # looked up among the books held (an unknown one: no book)
    side: Annotated[Literal["yes", "no"], _plain(_side)]
    price_dollars: Annotated[int, _plain(lambda v: price_cc(v))]
    delta_fp: Annotated[int, _plain(lambda v: count_hundredths(v, signed=True))]
    # (``ts`` / ``ts_ms``, the exchange's time of the change, are read by ``frame_exchange_ms``.)


def _print_ts(v: Any) -> int | None:
    return v if type(v) is int else None


def _block_flag(v: Any) -> bool | None:
    """``is_block_trade``: a print matched off the book (3.34). Absent or null: not said (a print
    of an older spec); anything but a boolean refuses the print (it could be a block print)."""
    if v is None or isinstance(v, bool):
        return v
    raise RowError(f"is_block_trade {_safe(v, 20)} is not true or false")


def print_side(outcome_side: Any, taker_side: Any) -> Any:
    """A print's taker side: 3.34's ``taker_outcome_side``, else the deprecated ``taker_side``
    (either as sent; "" or null is "not given", None)."""
    for v in (outcome_side, taker_side):
        if v not in (None, ""):
            return v
    return None


class TradePrint(Wire):
    """``trade``'s body: a public print in exact units (its checks against the catalog's rules
    are ``catalog.trade_problem``'s). ``ts`` is epoch seconds (None when it is not an integer)."""

    market_ticker: Annotated[str, _plain(lambda v: check_ticker(v, "market_ticker"))]
    yes_price_dollars: Annotated[int, _plain(lambda v: price_cc(v))]
    count_fp: Annotated[int, _plain(lambda v: count_hundredths(v))]
    taker_side: AsSent = None  # deprecated by 3.34: the fallback for taker_outcome_side
    trade_id: AsSent = None
    ts: Annotated[int | None, _plain(_print_ts)] = None
    ts_ms: LenientInt = None  # 3.34: taken over ``ts`` where present (it is sometimes missing)
    taker_outcome_side: AsSent = None  # 3.34 (yes | no); checked by ``catalog.trade_problem``
    taker_book_side: AsSent = None  # 3.34 (bid | ask); likewise
    is_block_trade: Annotated[bool | None, _plain(_block_flag)] = None  # 3.34: matched off the book

    def time_ms(self, default: int) -> int:
        """The print's time in epoch ms: ``ts_ms`` where present, else ``ts`` (seconds), else
        ``default`` (when it arrived)."""
        if self.ts_ms is not None:
            return self.ts_ms
        return self.ts * 1000 if self.ts is not None else default

    def outcome_side(self) -> Any:
        """``taker_outcome_side``, falling back to the deprecated ``taker_side`` ("" or null:
        not given)."""
        return print_side(self.taker_outcome_side, self.taker_side)


class EventFeeUpdate(Wire):
    """A WebSocket ``event_fee_update`` frame (on ``market_lifecycle_v2``, handed by the feed to
    ``KalshiSource.apply_ws``): ``msg`` is the event's new override (``EventFeeOverride``, null
    fields cleared)."""

    type: Literal["event_fee_update"]
    msg: Annotated[EventFeeOverride, _plain(lambda v: parse(EventFeeOverride, v, "event_fee_update's msg"))]


class MarketLifecycle(Wire):
    """``market_lifecycle_v2``'s body (a ``market_lifecycle_v2`` frame): what happened to a
    market. Read by the WebSocket feed and handed to ``KalshiSource.apply_lifecycle``:
    ``settlement_value`` (and ``result``) come with ``determined``,
    ``price_ranges`` with ``price_level_structure_updated``, as sent."""

    market_ticker: LenientStr = None
    event_type: LenientStr = None
    result: LenientStr = None
    settlement_value: AsSent = None
    price_ranges: AsSent = None
    exchange_index: LenientInt = None


class TickerMsg(Wire):
    """``ticker``'s body (not subscribed to yet): top of book and activity, exact text."""

    market_ticker: Ticker
    price_dollars: LenientStr = None
    yes_bid_dollars: LenientStr = None
    yes_ask_dollars: LenientStr = None
    yes_bid_size_fp: LenientStr = None  # 3.34: top-of-book sizes
    yes_ask_size_fp: LenientStr = None
    volume_fp: LenientStr = None
    open_interest_fp: LenientStr = None
    ts: AsSent = None
    ts_ms: LenientInt = None
