"""The loopback servers cannot drift from Kalshi's own models (#22, "Done means").

Every REST payload the fake server sends parses with the pydantic models of Kalshi's official
SDK of the same spec (``kalshi-python-sync`` 3.34.0, ``kalshi_python_sync.models``; the Makefile
installs it, test-only), and carries no key those models do not know (their ``from_dict``
ignores unknown keys, so a removed or misspelt field would pass it alone). The routes are read
from the handler itself: a route the fake serves without a model here fails the test.

The SDK is REST only: it has no model for any WebSocket message. Those frames are checked
against Kalshi's AsyncAPI document instead (``asyncapi.yaml`` of docs.kalshi.com, as mirrored
daily by the public ``ammario/kalshi-docs`` repository, August 2026: the required and the known
keys of each message below), plus ``sending_ts_ms`` on every frame (October 2026, spec 3.34).
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import json
import textwrap
import typing
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from kalshi_python_sync import models as K
from pydantic import BaseModel

from kakashi_tui.testing import fake_kalshi, fake_kalshi_ws
from kakashi_tui.testing.fake_kalshi import FakeKalshi, FakeKalshiServer
from kakashi_tui.testing.fake_kalshi_ws import FakeKalshiWS

TICKER = "KXFAKE-26JAN05-T00"
SPAN = {"start_ts": 0, "end_ts": 2**31, "period_interval": 60}
EVENT = "KXFAKE-26JAN05"

#: Each route the fake REST server serves (as its handler's conditions spell it; ``{}`` is one
#: path segment) -> the SDK model of its answer and the requests that drive it. Routes another
#: change may add are mapped ahead (trades, history, exchange status, candlesticks).
REST: dict[str, tuple[type[BaseModel], list[tuple[str, Any]]]] = {
    "/markets": (K.GetMarketsResponse, [("/markets", {"limit": 1000}), ("/markets", {"mve_filter": "only"})]),
    "/markets/{}": (K.GetMarketResponse, [(f"/markets/{TICKER}", None), ("/markets/KXSCAL-26JAN05-S2", None)]),
    "/historical/markets/{}": (K.GetMarketResponse, [("/historical/markets/KXOLD-26JAN01-T00", None)]),
    "/markets/{}/orderbook": (K.GetMarketOrderbookResponse, [(f"/markets/{TICKER}/orderbook", None)]),
    "/markets/orderbooks": (
        K.GetMarketOrderbooksResponse,
        [("/markets/orderbooks", [("tickers", TICKER), ("tickers", "KXZOO-26JAN05-TAIL")])],
    ),
    "/events": (K.GetEventsResponse, [("/events", {"limit": 200})]),
    "/events/{}": (K.GetEventResponse, [(f"/events/{EVENT}", None), ("/events/KXZOO-26JAN05", None)]),
    "/series": (K.GetSeriesListResponse, [("/series", None)]),
    "/series/{}": (K.GetSeriesResponse, [("/series/KXFAKE", None), ("/series/KXZOO", None)]),
    "/series/fee_changes": (K.GetSeriesFeeChangesResponse, [("/series/fee_changes", None)]),
    "/events/fee_changes": (K.GetEventFeeChangesResponse, [("/events/fee_changes", {"limit": 100})]),
    "/account/limits": (K.GetAccountApiLimitsResponse, [("/account/limits", None)]),
    "/exchange/status": (K.ExchangeStatus, [("/exchange/status", None)]),
    "/markets/trades": (K.GetTradesResponse, [("/markets/trades", {"ticker": TICKER}), ("/markets/trades", None)]),
    "/historical/trades": (K.GetTradesResponse, [("/historical/trades", {"ticker": TICKER})]),
    "/historical/cutoff": (K.GetHistoricalCutoffResponse, [("/historical/cutoff", None)]),
    "/historical/markets": (K.GetMarketsResponse, [("/historical/markets", None)]),
    "/series/{}/markets/{}/candlesticks": (
        K.GetMarketCandlesticksResponse,
        [(f"/series/KXFAKE/markets/{TICKER}/candlesticks", SPAN)],
    ),
    "/historical/markets/{}/candlesticks": (
        K.GetMarketCandlesticksHistoricalResponse,
        [
            (
                "/historical/markets/KXOLD-26JAN01-T00/candlesticks",
                SPAN,
            )
        ],
    ),
    "/markets/candlesticks": (
        K.BatchGetMarketCandlesticksResponse,
        [("/markets/candlesticks", {"market_tickers": TICKER, **SPAN})],
    ),
}


def _routes(test: ast.expr) -> list[str]:
    """The route templates one ``if`` of the handler serves: ``raw == "/x"`` is ``/x``;
    ``len(parts) == n`` with ``parts[i] == "w"`` (or ``parts[i:j] == [...]``) is a path of n - 1
    segments, ``{}`` where no word is fixed; an ``or`` serves each side."""
    if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.Or):
        return [r for v in test.values for r in _routes(v)]
    terms = test.values if isinstance(test, ast.BoolOp) else [test]
    out: list[str] = []
    n, words = 0, {}  # (the handler's constants: literal_eval gives them typed as Any)
    for t in terms:
        if not (isinstance(t, ast.Compare) and len(t.ops) == 1 and isinstance(t.ops[0], ast.Eq)):
            continue
        left, right = t.left, t.comparators[0]
        if isinstance(left, ast.Name) and left.id == "raw" and isinstance(right, ast.Constant):
            out.append(str(right.value))
        elif isinstance(left, ast.Call) and ast.unparse(left) == "len(parts)" and isinstance(right, ast.Constant):
            n = int(ast.literal_eval(right))
        elif isinstance(left, ast.Subscript) and ast.unparse(left.value) == "parts":
            value: Any = ast.literal_eval(right)
            if isinstance(left.slice, ast.Slice):
                lower: Any = ast.literal_eval(left.slice.lower or ast.Constant(0))
                for k, w in enumerate(value):
                    words[lower + k] = w
            else:
                words[ast.literal_eval(left.slice)] = value
    if n:
        out.append("".join("/" + words.get(i, "{}") for i in range(1, n)))
    return out


def served_routes() -> set[str]:
    """Every route template the fake REST handler answers, read from its source."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(fake_kalshi._Handler.do_GET)))
    return {r for node in ast.walk(tree) if isinstance(node, ast.If) for r in _routes(node.test)}


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def unknown_keys(model: type[BaseModel], data: Any, where: str) -> list[str]:
    """The keys of ``data`` (nested too) that ``model`` does not declare."""
    out: list[str] = []
    if not isinstance(data, dict):
        return out
    for key, value in data.items():
        f = model.model_fields.get(key)
        if f is None:
            out.append(f"{where}.{key}")
            continue
        sub = _model_in(f.annotation)
        if sub is None:
            continue
        for i, item in enumerate(value if isinstance(value, list) else [value]):
            out += unknown_keys(sub, item, f"{where}.{key}[{i}]" if isinstance(value, list) else f"{where}.{key}")
    return out


def _iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def full_state(spec: str = "3.34") -> FakeKalshi:
    """A server with something in every endpoint: the lifecycle zoo, combos, an archived
    market, scheduled series fee changes, event fee changes (a cleared one too), an override."""
    st = FakeKalshi.with_markets(6, require_signature=False, page_size=1000, combos=3, spec=spec)
    st.lifecycle_zoo()
    st.markets.append(fake_kalshi.FakeMarket("KXOLD-26JAN01-T00", None, None, status="finalized", result="no"))
    st.markets[-1].archived = True
    st.add_series("KXOLD", events=["KXOLD-26JAN01"])
    later = _iso(datetime.now(UTC) + timedelta(hours=1))
    st.series_fee_changes = [
        {
            "id": "c1",
            "series_ticker": "KXFAKE",
            "fee_type": "quadratic_with_combo_maker_fees",
            "fee_multiplier": Decimal("0.5"),
            "scheduled_ts": later,
        }
    ]
    st.event_fee_changes = [
        {
            "id": f"e{i}",
            "event_ticker": EVENT,
            "series_ticker": "KXFAKE",
            "fee_type_override": kind,
            "fee_multiplier_override": mult,
            "scheduled_ts": later,
        }
        for i, (kind, mult) in enumerate([("flat", Decimal("2")), (None, None)])
    ]
    st.event_fee_overrides = {"KXZOO-26JAN05": ("quadratic", Decimal("0.25"))}
    st.exclusive_events = {"KXZOO-26JAN05"}  # (mutually_exclusive true, MECNET)
    st.verify = lambda headers, raw_path: None  # type: ignore[method-assign]  # (shapes here, not signatures)
    return st


def test_the_route_reader_sees_every_route_the_handler_serves():
    """The walk of the handler's source finds the routes this file was written against (a
    handler rewritten so that the walk finds none would make the SDK check below check nothing)."""
    assert {
        "/markets",
        "/markets/{}",
        "/historical/markets/{}",
        "/markets/{}/orderbook",
        "/markets/orderbooks",
        "/events",
        "/events/{}",
        "/series",
        "/series/{}",
        "/series/fee_changes",
        "/events/fee_changes",
        "/account/limits",
    } <= served_routes()


def test_every_rest_payload_parses_with_kalshis_own_sdk_models():
    routes = served_routes()
    unmapped = sorted(routes - set(REST))
    assert not unmapped, f"the fake serves routes with no SDK model in REST above: {unmapped}"
    st = full_state()
    checked: dict[str, str] = {}
    with FakeKalshiServer(st) as srv, httpx.Client(base_url=srv.base_url, timeout=30) as http:
        for route in sorted(routes):
            model, requests = REST[route]
            for path, params in requests:
                r = http.get(path, params=params)
                assert r.status_code == 200, (path, r.status_code, r.text[:300])
                body = r.json()
                model.from_dict(body)  # raises on a missing required field, a wrong type or enum
                assert not unknown_keys(model, body, path), unknown_keys(model, body, path)
                assert body, path
            checked[route] = model.__name__
        # Errors: Kalshi's ErrorResponse {code, message} (its 429 body, {"error": ...}, is the
        # documented exception: docs "Rate limits"; the fake sends it only as a fault).
        for path in ("/markets/KXNOPE-1", "/nowhere"):
            r = http.get(path)
            assert r.status_code == 404
            K.ErrorResponse.from_dict(r.json())
            assert not unknown_keys(K.ErrorResponse, r.json(), path)
        checked["404"] = "ErrorResponse"
    # What was checked, by kind (shown with -s; the set is the test's own record).
    print("SDK-checked REST payloads:", ", ".join(f"{k} -> {v}" for k, v in sorted(checked.items())))
    assert set(checked) == routes | {"404"}


def test_the_3_20_mode_is_older_than_the_sdk():
    """``spec="3.20"`` really answers in the older shapes: the 3.34 models refuse its markets
    (no ``settlement_bounds_type``, required from 3.31) and see the removed fields."""
    st = full_state("3.20")
    with FakeKalshiServer(st) as srv, httpx.Client(base_url=srv.base_url) as http:
        body = http.get("/markets", params={"limit": 1000}).json()
    with pytest.raises(Exception, match="settlement_bounds_type"):
        K.GetMarketsResponse.from_dict(body)
    assert {"liquidity_dollars", "fractional_trading_enabled"} <= {
        k.rsplit(".", 1)[1] for k in unknown_keys(K.GetMarketsResponse, body, "")
    }


# --- WebSocket: no SDK model; Kalshi's AsyncAPI (see the module's docstring) -------------------

_ENVELOPE = {"id", "type", "sid", "seq", "msg", "sending_ts_ms"}
_LIFECYCLE_KEYS = {
    "event_type", "market_ticker", "exchange_index", "open_ts", "close_ts", "result", "determination_ts",
    "settlement_value", "settled_ts", "is_deactivated", "price_level_structure", "price_ranges", "strike_type",
    "floor_strike", "cap_strike", "custom_strike", "yes_sub_title", "additional_metadata",
}  # fmt: skip
#: Message type -> (the envelope's required keys, the msg's required keys, the msg's known keys).
WS: dict[str, tuple[set[str], set[str], set[str]]] = {
    "subscribed": ({"type", "msg"}, {"channel", "sid"}, {"channel", "sid"}),
    "unsubscribed": ({"type", "sid", "seq"}, set(), set()),
    "error": ({"type", "msg"}, {"code", "msg"}, {"code", "msg", "market_id", "market_ticker"}),
    "orderbook_snapshot": (
        {"type", "sid", "seq", "msg"},
        {"market_ticker", "market_id"},
        {"market_ticker", "market_id", "yes_dollars_fp", "no_dollars_fp"},
    ),
    "orderbook_delta": (
        {"type", "sid", "seq", "msg"},
        {"market_ticker", "market_id", "price_dollars", "delta_fp", "side"},
        {
            "market_ticker",
            "market_id",
            "price_dollars",
            "delta_fp",
            "side",
            "client_order_id",
            "subaccount",
            "ts",
            "ts_ms",
        },
    ),  # fmt: skip
    "trade": (
        {"type", "sid", "msg"},
        _TRADE := {
            "trade_id",
            "market_ticker",
            "yes_price_dollars",
            "no_price_dollars",
            "count_fp",
            "taker_side",
            "taker_outcome_side",
            "taker_book_side",
            "is_block_trade",
            "ts",
            "ts_ms",
        },
        _TRADE,
    ),  # fmt: skip
    "market_lifecycle_v2": ({"type", "sid", "msg"}, {"event_type", "market_ticker"}, _LIFECYCLE_KEYS),
    "event_fee_update": (
        {"type", "sid", "msg"},
        {"event_ticker", "fee_type_override", "fee_multiplier_override"},
        {"event_ticker", "fee_type_override", "fee_multiplier_override"},
    ),
}
#: Kinds Kalshi sends that the fake does not (so nothing of theirs is checked here).
WS_NOT_SENT = {"ticker", "fill", "market_position", "user_order", "ok", "list_subscriptions", "event_lifecycle"}


def sent_ws_types() -> set[str]:
    """Every message type the fake WebSocket server writes, read from its source: each
    ``"type": "x"`` of a dict it builds and each kind it passes to ``_send_seq``; the lifecycle
    kinds are the caller's (``send_lifecycle``), so they are added by name."""
    tree = ast.parse(inspect.getsource(fake_kalshi_ws))
    kinds: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            for k, v in zip(node.keys, node.values, strict=True):
                if isinstance(k, ast.Constant) and k.value == "type" and isinstance(v, ast.Constant):
                    kinds.add(str(v.value))
        if isinstance(node, ast.Call) and ast.unparse(node.func).endswith("_send_seq"):
            kinds |= {str(a.value) for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)}
    return kinds | {"market_lifecycle_v2", "event_fee_update"}


def check_ws_frame(frame: dict[str, Any]) -> str:
    kind = frame["type"]
    env_required, msg_required, msg_known = WS[kind]
    assert env_required <= set(frame) <= _ENVELOPE, (kind, sorted(frame))
    assert isinstance(frame["sending_ts_ms"], int) and frame["sending_ts_ms"] > 1_700_000_000_000, frame
    for k in ("sid", "seq"):
        assert k not in frame or (isinstance(frame[k], int) and frame[k] >= 1), frame
    msg = frame.get("msg", {})
    assert msg_required <= set(msg) <= msg_known, (kind, sorted(msg))
    if kind == "orderbook_delta":
        assert msg["side"] in ("yes", "no") and isinstance(msg["ts_ms"], int) and isinstance(msg["ts"], str)
        datetime.fromisoformat(msg["ts"])
    if kind == "orderbook_snapshot":
        for side in ("yes_dollars_fp", "no_dollars_fp"):
            assert all(isinstance(p, str) and isinstance(q, str) for p, q in msg.get(side, []))
    if kind == "trade":
        assert msg["taker_outcome_side"] in ("yes", "no") and msg["taker_book_side"] in ("bid", "ask")
        assert (msg["taker_outcome_side"] == "yes") == (msg["taker_book_side"] == "bid")
        assert isinstance(msg["is_block_trade"], bool) and isinstance(msg["ts"], int) and isinstance(msg["ts_ms"], int)
    if kind == "market_lifecycle_v2":
        for pr in msg.get("price_ranges", []):  # the REST PriceRange, as the AsyncAPI spells it too
            K.PriceRange.from_dict(pr)
            assert not unknown_keys(K.PriceRange, pr, "price_ranges")
    if kind == "event_fee_update":
        assert msg["fee_type_override"] in (None, *[f.value for f in K.FeeType])
        assert msg["fee_multiplier_override"] is None or isinstance(msg["fee_multiplier_override"], int | float)
    if kind == "error":
        assert isinstance(msg["code"], int) and 1 <= msg["code"] <= 28
    return kind


def test_every_websocket_frame_has_kalshis_asyncapi_shape():
    kinds = sent_ws_types()
    unmapped = sorted(kinds - set(WS))
    assert not unmapped, f"the fake WebSocket sends message types with no shape in WS above: {unmapped}"
    assert not kinds & WS_NOT_SENT
    server = FakeKalshiWS(("KXA-1", "KXB-2"), interval=0.002)
    server.start()
    server.send_trade(trade_id="sent-by-test")
    server.send_lifecycle(
        "market_lifecycle_v2",
        {"event_type": "determined", "market_ticker": "KXA-1", "result": "yes", "settlement_value": "1.000000",
         "determination_ts": 1_795_651_200},
    )  # fmt: skip
    server.send_lifecycle(
        "market_lifecycle_v2",
        {"event_type": "price_level_structure_updated", "market_ticker": "KXB-2", "exchange_index": 0,
         "price_level_structure": "deci_cent",
         "price_ranges": [{"start": "0.0000", "end": "1.0000", "step": "0.0010"}]},
    )  # fmt: skip
    server.send_lifecycle(
        "event_fee_update", {"event_ticker": "KXA", "fee_type_override": None, "fee_multiplier_override": None}
    )
    frames: list[dict[str, Any]] = []
    want = set(WS)

    async def listen() -> None:
        from websockets.asyncio.client import connect

        async with connect(server.url, proxy=None) as ws:
            await ws.send("not json")  # answered with an error frame
            channels = ["trade", "market_lifecycle_v2"]
            await ws.send(json.dumps({"id": 1, "cmd": "subscribe", "params": {"channels": channels}}))
            params = {"channels": ["orderbook_delta"], "market_tickers": ["KXA-1", "KXB-2"]}
            await ws.send(json.dumps({"id": 2, "cmd": "subscribe", "params": params}))
            unsubscribed = False
            while not want <= {f["type"] for f in frames}:
                frames.append(json.loads(await asyncio.wait_for(ws.recv(), timeout=10)))
                kinds_now = {f["type"] for f in frames}
                if not unsubscribed and want - {"unsubscribed"} <= kinds_now:
                    await ws.send(json.dumps({"id": 3, "cmd": "unsubscribe", "params": {"sids": [3]}}))
                    unsubscribed = True

    try:
        asyncio.run(listen())
    finally:
        server.stop()
    checked = {check_ws_frame(f) for f in frames}
    print("AsyncAPI-checked WebSocket frames (no SDK model):", ", ".join(sorted(checked)))
    assert checked == want


def test_the_3_20_websocket_frames_carry_none_of_the_later_fields():
    server = FakeKalshiWS(("KXA-1",), interval=0.002, spec="3.20")
    server.start()
    server.send_trade(trade_id="old")
    frames: list[dict[str, Any]] = []

    async def listen() -> None:
        from websockets.asyncio.client import connect

        async with connect(server.url, proxy=None) as ws:
            params = {"channels": ["trade", "orderbook_delta"], "market_tickers": ["KXA-1"]}
            await ws.send(json.dumps({"id": 1, "cmd": "subscribe", "params": params}))
            while not {"trade", "orderbook_delta"} <= {f["type"] for f in frames}:
                frames.append(json.loads(await asyncio.wait_for(ws.recv(), timeout=10)))

    try:
        asyncio.run(listen())
    finally:
        server.stop()
    assert not [f for f in frames if "sending_ts_ms" in f]
    later = {"ts_ms", "taker_outcome_side", "taker_book_side", "is_block_trade"}
    assert not [f for f in frames if later & set(f.get("msg", {}))]
