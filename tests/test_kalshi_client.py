"""The read-only client against httpx.MockTransport (unit cases; the loopback server is separate)."""

import inspect
from decimal import Decimal as D

import httpx
import pytest

from kakashi_tui.adapters import kalshi
from kakashi_tui.adapters.kalshi import KalshiClient, KalshiHTTPError, KalshiSource, snapshot_row


def client(handler, **kw):
    sleeps: list[float] = []
    c = KalshiClient(base_url="http://test/trade-api/v2", transport=httpx.MockTransport(handler),
                     sleep=sleeps.append, **kw)
    return c, sleeps


def test_pagination_follows_cursor_until_empty():
    pages = {None: (["A", "B"], "c1"), "c1": (["C"], "c2"), "c2": (["D"], "")}
    seen = []

    def h(req):
        cur = req.url.params.get("cursor")
        seen.append(cur)
        tickers, nxt = pages[cur]
        return httpx.Response(200, json={"markets": [{"ticker": t} for t in tickers], "cursor": nxt})

    c, _ = client(h)
    assert [m["ticker"] for m in c.iter_markets()] == ["A", "B", "C", "D"]
    assert seen == [None, "c1", "c2"]


def test_pagination_stops_on_repeated_cursor():
    calls = []

    def h(req):
        calls.append(req.url.params.get("cursor"))
        return httpx.Response(200, json={"markets": [{"ticker": f"T{len(calls)}"}], "cursor": "same"})

    c, _ = client(h)
    assert len(list(c.iter_markets())) == 2
    assert calls == [None, "same"]


def test_retries_429_and_5xx_with_backoff_then_succeeds():
    codes = iter([429, 502, 503, 200])

    def h(req):
        code = next(codes)
        return httpx.Response(code, json={"market": {"ticker": "X"}} if code == 200 else {})

    c, sleeps = client(h, max_retries=4, backoff_base=0.5)
    assert c.get_market("X")["ticker"] == "X"
    assert len(sleeps) == 3 and c.retries_made == 3
    for i, s in enumerate(sleeps):  # full jitter within the exponential envelope
        assert 0 <= s <= 0.5 * 2 ** i


def test_retry_after_is_honoured_and_capped():
    codes = iter([(429, "7"), (429, "999"), (200, None)])

    def h(req):
        code, ra = next(codes)
        return httpx.Response(code, headers={"Retry-After": ra} if ra else {}, json={"market": {"ticker": "X"}})

    c, sleeps = client(h, retry_after_cap=30)
    c.get_market("X")
    assert sleeps == [7.0, 30.0]


def test_retries_are_bounded():
    n = []

    def h(req):
        n.append(1)
        return httpx.Response(500)

    c, sleeps = client(h, max_retries=2)
    with pytest.raises(KalshiHTTPError, match="gave up after 3 attempts"):
        c.get_market("X")
    assert len(n) == 3 and len(sleeps) == 2


def test_timeouts_are_retried():
    n = []

    def h(req):
        n.append(1)
        if len(n) < 3:
            raise httpx.ReadTimeout("slow", request=req)
        return httpx.Response(200, json={"market": {"ticker": "X"}})

    c, sleeps = client(h)
    assert c.get_market("X")["ticker"] == "X" and len(sleeps) == 2


def test_other_4xx_is_not_retried_and_is_clear():
    def h(req):
        return httpx.Response(404, json={"error": {"code": "not_found", "message": "market not found"}})

    c, sleeps = client(h)
    with pytest.raises(KalshiHTTPError, match="HTTP 404 .*market not found") as ei:
        c.get_market("NOPE")
    assert ei.value.status == 404 and sleeps == []


def test_malformed_json_is_a_clear_error():
    c, _ = client(lambda req: httpx.Response(200, content=b"{not json"))
    with pytest.raises(KalshiHTTPError, match="malformed JSON"):
        c.get_market("X")


def test_client_only_sends_get():
    methods = []

    def h(req):
        methods.append(req.method)
        return httpx.Response(200, json={"markets": [], "cursor": "", "market": {"ticker": "X"}, "orderbook": {}})

    c, _ = client(h)
    list(c.iter_markets()); c.get_market("X"); c.get_orderbook("X")
    assert set(methods) == {"GET"}
    # and there is no other verb anywhere in the adapter's source
    src = inspect.getsource(kalshi)
    for verb in (".post(", ".put(", ".delete(", ".patch(", ".request(", ".send("):
        assert verb not in src


def test_parses_dollar_strings_and_cc():
    m = {"ticker": "X", "status": "active", "yes_bid_dollars": "0.4200", "yes_ask_dollars": "0.4400",
         "last_price": 43}
    row = snapshot_row(m, 1000)
    assert row["yes_bid"] == D("0.42") and row["yes_ask"] == D("0.44") and row["last"] == D("0.43")
    m2 = {"ticker": "X", "status": "active", "yes_bid": 42, "yes_ask": 44}
    assert snapshot_row(m2, 1000)["yes_bid"] == D("0.42")
    # 0 bid / 100 ask is no resting order, not a price
    empty = snapshot_row({"ticker": "X", "status": "active", "yes_bid": 0, "yes_ask": 100}, 1000)
    assert empty["yes_bid"] is None and empty["yes_ask"] is None
    # sub-cent quotes on the $0.0001 grid are kept exactly (deci_cent markets)
    sub = snapshot_row({"ticker": "X", "status": "active", "yes_bid_dollars": "0.4250",
                        "yes_ask_dollars": "0.4310"}, 1000)
    assert sub["yes_bid"] == D("0.4250") and sub["yes_ask"] == D("0.4310")


def test_orderbook_levels_best_first_and_string_quantities():
    ob = {"yes_dollars": [["0.4000", "5"], ["0.4200", "7"]], "no_dollars": [["0.5500", 3]]}
    row = snapshot_row({"ticker": "X", "status": "active"}, 1000, ob)
    assert [lv["price"] for lv in row["yes_bids"]] == [D("0.42"), D("0.40")]
    assert row["yes_bids"][0]["qty"] == 7
    assert row["yes_bid"] == D("0.42") and row["yes_ask"] == D("0.45")
    cents = snapshot_row({"ticker": "X", "status": "active"}, 1000, {"yes": [[40, 2], [41, 3]], "no": None})
    assert cents["yes_bids"][0] == {"price": D("0.41"), "qty": 3} and cents["yes_ask"] is None


def test_orderbook_fp_wrapper_is_read():
    def h(req):
        return httpx.Response(200, json={"orderbook_fp": {"yes_dollars": [["0.4100", "3"]], "no_dollars": None}})

    c, _ = client(h)
    assert c.get_orderbook("X") == {"yes_dollars": [["0.4100", "3"]], "no_dollars": None}


def test_source_reports_errors_and_rejects_unreadable_rows():
    def h(req):
        if req.url.path.endswith("/orderbook"):
            return httpx.Response(200, json={"orderbook": {"yes_dollars": [["zz", 1]]}})
        return httpx.Response(200, json={"markets": [
            {"ticker": "GOOD", "status": "active", "yes_bid": 40, "yes_ask": 45},
            {"ticker": "BAD", "status": "active", "yes_bid": 40, "yes_ask": 45},
            "not-a-dict"], "cursor": ""})

    c, _ = client(h)
    src = KalshiSource(c, depth_for=lambda: {"BAD"})
    batch = src.fetch()
    assert len(batch.rows) == 3
    assert batch.rows[0].reason is None
    assert batch.rows[1].reason and "unreadable" in batch.rows[1].reason


def test_source_turns_an_outage_into_a_feed_error():
    c, _ = client(lambda req: httpx.Response(503), max_retries=1)
    batch = KalshiSource(c).fetch()
    assert batch.rows == [] and "503" in batch.errors[0]
