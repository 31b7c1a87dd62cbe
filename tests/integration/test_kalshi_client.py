"""The read-only client and the Kalshi rows, against httpx.MockTransport (unit cases; the
loopback server is in test_loopback.py)."""

import base64
import gzip
import inspect
import json
import threading
import time
from decimal import Decimal as D

import httpx
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kakashi_tui.adapters.kalshi import auth as kalshi_auth
from kakashi_tui.adapters.kalshi import client as kalshi_client
from kakashi_tui.adapters.kalshi import source as kalshi_source
from kakashi_tui.adapters.kalshi import wire as kalshi_wire
from kakashi_tui.adapters.kalshi.auth import Signer, load_private_key, signer_from
from kakashi_tui.adapters.kalshi.client import (
    KalshiAuthError,
    KalshiClient,
    KalshiHTTPError,
    KalshiStopped,
    TokenBucket,
    path_segment,
)
from kakashi_tui.adapters.kalshi.source import NO_KEY_NOTICE, KalshiSource
from kakashi_tui.adapters.kalshi.wire import convert, snapshot_row
from kakashi_tui.core.errors import ConfigError
from kakashi_tui.testing.fake_kalshi import LIFECYCLE, make_test_key

BASE = "http://test/trade-api/v2"


def client(handler, **kw):
    sleeps: list[float] = []
    kw.setdefault("sleep", sleeps.append)
    kw.setdefault("reads_per_s", 1000)
    c = KalshiClient(base_url=BASE, transport=httpx.MockTransport(handler), **kw)
    return c, sleeps


def market(ticker="KXA-26JAN05-T1", **kw):
    m = {
        "ticker": ticker,
        "event_ticker": ticker.rsplit("-", 1)[0],
        "market_type": "binary",
        "status": "active",
        "title": "Old title",
        "yes_sub_title": "Above 40",
        "yes_bid_dollars": "0.4200",
        "yes_ask_dollars": "0.4400",
        "no_bid_dollars": "0.5600",
        "no_ask_dollars": "0.5800",
        "last_price_dollars": "0.4300",
        "volume_fp": "1234.50",
        "open_interest_fp": "600.25",
        "result": "",
        "open_time": "2026-01-01T00:00:00Z",
        "close_time": "2026-01-05T00:00:00Z",
        "updated_time": "2026-01-02T00:00:00Z",
    }
    m.update(kw)
    return m


def meta(req, series="KXA", fee=b"1"):
    """Kalshi's event and series answers, lists included, for the source's look-ups."""
    path = req.url.path.removeprefix("/trade-api/v2")
    if path == "/events":
        return httpx.Response(200, json={"events": [], "cursor": ""})
    if path == "/series":
        return httpx.Response(200, json={"series": []})
    if path.startswith("/events/"):
        return httpx.Response(200, json={"event": {"event_ticker": path[8:], "series_ticker": series}})
    return httpx.Response(
        200,
        content=b'{"series": {"ticker": "%s", "fee_type": "quadratic", "fee_multiplier": %s}}' % (series.encode(), fee),
    )


# -- transport: pages, retries, errors -------------------------------------------------------
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
        return httpx.Response(code, json={"market": {"ticker": "X"}} if code == 200 else {"error": "too many requests"})

    c, sleeps = client(h, max_retries=4, backoff_base=0.5)
    assert c.get_market("X")["ticker"] == "X"
    assert len(sleeps) == 3 and c.retries_made == 3
    for i, s in enumerate(sleeps):  # full jitter within the exponential envelope
        assert 0 <= s <= 0.5 * 2**i


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
        return httpx.Response(404, json={"code": "not_found", "message": "market not found"})

    c, sleeps = client(h)
    with pytest.raises(KalshiHTTPError, match="HTTP 404 .*market not found") as ei:
        c.get_market("NOPE")
    assert ei.value.status == 404 and sleeps == []


@pytest.mark.parametrize(
    "status,body,said",
    [
        (401, {"code": "authentication_error", "message": "API key revoked"}, "API key revoked"),
        (403, {"error": "forbidden: not enabled"}, "forbidden: not enabled"),
        (401, {"error": {"code": "unauthorized", "message": "bad signature"}}, "bad signature"),
    ],
)
def test_401_403_is_one_line_with_kalshis_message_and_no_retry(status, body, said):
    n = []

    def h(req):
        n.append(1)
        return httpx.Response(status, json=body)

    c, sleeps = client(h)
    with pytest.raises(KalshiAuthError) as ei:
        c.get_orderbooks(["X"])
    msg = str(ei.value)
    assert said in msg and f"HTTP {status}" in msg and "\n" not in msg
    assert len(n) == 1 and sleeps == []


@pytest.mark.parametrize(
    "content,headers,match",
    [
        (b"{not json", {}, "malformed JSON"),
        (b"<!DOCTYPE html><html>Maintenance</html>", {"Content-Type": "text/html"}, "HTML"),
        (b"[" * 100_000 + b"]" * 100_000, {}, "malformed JSON"),
        (b'{"a":' * 40 + b"1" + b"}" * 40, {}, "nested too deep"),
        (b"\x1f\x8b garbage that is not gzip", {"Content-Encoding": "gzip"}, "undecodable body"),
        (b"[1, 2]", {}, "unexpected response shape"),
    ],
)
def test_bad_bodies_are_one_clear_error(content, headers, match):
    c, sleeps = client(lambda req: httpx.Response(200, content=content, headers=headers))
    with pytest.raises(KalshiHTTPError, match=match):
        c.get_market("X")
    assert sleeps == []


def test_a_gigantic_body_is_cut_off_not_read_whole():
    served = []

    def chunks():
        for _ in range(1000):  # 64 MB if read to the end
            served.append(1)
            yield b" " * 65536

    c, _ = client(lambda req: httpx.Response(200, content=chunks()), max_body_bytes=1_000_000)
    with pytest.raises(KalshiHTTPError, match="larger than 1000000 bytes"):
        c.get_market("X")
    assert len(served) < 30


def test_a_gzip_bomb_is_cut_off_after_decompression():
    bomb = gzip.compress(b"{" + b" " * 20_000_000 + b"}")
    c, _ = client(
        lambda req: httpx.Response(200, content=bomb, headers={"Content-Encoding": "gzip"}), max_body_bytes=1_000_000
    )
    with pytest.raises(KalshiHTTPError, match="larger than"):
        c.get_market("X")


def test_client_only_sends_get():
    methods = []

    def h(req):
        methods.append(req.method)
        return httpx.Response(
            200,
            json={
                "markets": [],
                "cursor": "",
                "market": {"ticker": "X"},
                "orderbook_fp": {},
                "orderbooks": [],
                "event": {},
                "series": {},
            },
        )

    c, _ = client(h)
    list(c.iter_markets())
    c.get_market("X")
    c.get_orderbook("X")
    c.get_orderbooks(["X"])
    c.get_event("E")
    c.get_series("S")
    c.get_historical_market("X")
    assert set(methods) == {"GET"}
    # and there is no other verb anywhere in the adapter's source
    src = "".join(inspect.getsource(m) for m in (kalshi_client, kalshi_wire, kalshi_source))
    for verb in (".post(", ".put(", ".delete(", ".patch(", ".request(", ".send("):
        assert verb not in src


def test_tickers_are_escaped_in_every_path():
    paths = []

    def h(req):
        paths.append(req.url.raw_path.decode())
        return httpx.Response(200, json={"market": {"ticker": "X"}, "orderbook_fp": {}, "event": {}, "series": {}})

    c, _ = client(h)
    evil = "KX/../../portfolio/orders"
    c.get_market(evil)
    c.get_historical_market(evil)
    c.get_orderbook(evil)
    c.get_event(evil)
    c.get_series(evil)
    c.get_market("..")
    for p in paths:
        assert "/portfolio/" not in p and "/../" not in p, p
        assert p.startswith("/trade-api/v2/")
    assert paths[0] == "/trade-api/v2/markets/KX%2F..%2F..%2Fportfolio%2Forders"
    assert paths[-1] == "/trade-api/v2/markets/%2E%2E"
    assert path_segment("KXA-26JAN05-B4.5") == "KXA-26JAN05-B4.5"


# -- pacing and stopping --------------------------------------------------------------------
def test_token_bucket_paces_reads_to_the_rate():
    now = [0.0]
    b = TokenBucket(20, clock=lambda: now[0])
    assert [b.delay() for _ in range(20)] == [0.0] * 20  # one second's worth at once
    assert b.delay() == pytest.approx(0.05)  # then one every 1/20 s
    now[0] += 0.05
    assert b.delay() == 0.0 and b.delay() > 0
    now[0] += 100
    assert sum(1 for _ in range(40) if b.delay() == 0.0) == 20  # the bucket holds one second


def test_client_waits_on_the_bucket_instead_of_bursting():
    c, _ = client(lambda req: httpx.Response(200, json={"market": {"ticker": "X"}}), reads_per_s=2)
    now = [0.0]
    c.bucket = TokenBucket(2, clock=lambda: now[0])
    waits = []
    c._stop.wait = lambda d: (waits.append(d), now.__setitem__(0, now[0] + d))[0] and False
    for _ in range(5):
        c.get_market("X")
    assert len(waits) == 3 and all(w == pytest.approx(0.5) for w in waits)


def test_stop_interrupts_a_request_in_flight():
    release = threading.Event()

    def h(req):
        release.wait(30)
        return httpx.Response(200, json={"market": {"ticker": "X"}})

    c, _ = client(h)
    threading.Timer(0.2, c.stop).start()
    t0 = time.monotonic()
    with pytest.raises(KalshiStopped):
        c.get_market("X")
    assert time.monotonic() - t0 < 5
    release.set()


def test_stop_interrupts_a_backoff_wait():
    c, _ = client(lambda req: httpx.Response(429, headers={"Retry-After": "25"}), sleep=None)
    threading.Timer(0.2, c.stop).start()
    t0 = time.monotonic()
    with pytest.raises(KalshiStopped):
        c.get_market("X")
    assert time.monotonic() - t0 < 5
    with pytest.raises(KalshiStopped):  # and nothing more is sent
        c.get_market("X")


def test_every_request_has_a_total_deadline():
    release = threading.Event()

    def h(req):
        release.wait(30)
        return httpx.Response(200, json={})

    c, _ = client(h, deadline_s=0.3, max_retries=0)
    t0 = time.monotonic()
    with pytest.raises(KalshiHTTPError, match="deadline"):
        c.get_market("X")
    assert time.monotonic() - t0 < 5
    release.set()


def test_source_stop_makes_fetch_a_feed_error():
    c, _ = client(lambda req: httpx.Response(200, json={"markets": [], "cursor": ""}))
    src = KalshiSource(c)
    src.stop()
    assert src.fetch().errors == ["stopped"]


# -- signed reads ---------------------------------------------------------------------------
@pytest.fixture
def key(tmp_path):
    path, pub = make_test_key(tmp_path)
    return path, pub


def _verify(pub, req):
    ts = req.headers["KALSHI-ACCESS-TIMESTAMP"]
    msg = (ts + "GET" + req.url.raw_path.decode().split("?")[0]).encode()
    pub.verify(
        base64.b64decode(req.headers["KALSHI-ACCESS-SIGNATURE"]),
        msg,
        padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH),
        hashes.SHA256(),
    )
    return True


def test_every_get_is_signed_over_timestamp_method_and_path_without_query(key):
    path, pub = key
    signer, notice = signer_from("kid-123", path, env={})
    assert notice is None
    seen = []

    def h(req):
        seen.append((req.headers.get("KALSHI-ACCESS-KEY"), _verify(pub, req), req.headers["KALSHI-ACCESS-TIMESTAMP"]))
        return httpx.Response(200, json={"markets": [], "cursor": "", "orderbooks": [], "market": {}})

    c, _ = client(h, signer=signer)
    list(c.iter_markets(status="open"))
    c.get_orderbooks(["A", "B"])
    c.get_market("A")
    assert len(seen) == 3 and all(k == "kid-123" and ok and ts.isdigit() and len(ts) == 13 for k, ok, ts in seen)


def test_an_ed25519_key_signs_the_same_text_with_ed25519(tmp_path):
    """#22 item 5: Kalshi takes Ed25519 API keys beside RSA; the signed text is the same."""
    path, pub = make_test_key(tmp_path, kind="ed25519")
    signer, notice = signer_from("kid-ed", path, env={})
    assert notice is None and repr(signer) == "Signer(<key set>)"
    seen = []

    def h(req):
        ts = req.headers["KALSHI-ACCESS-TIMESTAMP"]
        text = (ts + "GET" + req.url.raw_path.decode().split("?")[0]).encode()
        pub.verify(base64.b64decode(req.headers["KALSHI-ACCESS-SIGNATURE"]), text)  # raises if it does not
        seen.append(req.headers["KALSHI-ACCESS-KEY"])
        return httpx.Response(200, json={"market": {"ticker": "A"}})

    c, _ = client(h, signer=signer)
    c.get_market("A")
    assert seen == ["kid-ed"]


def test_a_key_of_another_kind_is_one_clear_line(tmp_path):
    path, _ = make_test_key(tmp_path, kind="ec")
    with pytest.raises(ConfigError, match=r"does not hold an RSA or Ed25519 private key") as ei:
        signer_from("kid", path, env={})
    assert "\n" not in str(ei.value) and "PRIVATE" not in str(ei.value)


def test_a_wrong_key_does_not_verify(key, tmp_path):
    path, pub = key
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    other, _ = make_test_key(other_dir)
    signer, _ = signer_from("kid", other, env={})
    req = []
    c, _ = client(lambda r: (req.append(r), httpx.Response(200, json={"orderbooks": []}))[1], signer=signer)
    c.get_orderbooks(["A"])
    with pytest.raises(InvalidSignature):  # signed with another key: Kalshi's check fails
        _verify(pub, req[0])


def test_secrets_never_show(key):
    path, _ = key
    secret = "KID-SECRET-7f3a"
    signer, _ = signer_from(secret, path, env={})
    c, _ = client(lambda r: httpx.Response(200, json={}), signer=signer)
    for text in (repr(signer), str(signer), repr(c)):
        assert secret not in text and "PRIVATE" not in text
    with pytest.raises(TypeError):
        import pickle

        pickle.dumps(signer)


def test_key_file_others_can_read_is_refused(key):
    path, _ = key
    import os

    os.chmod(path, 0o640)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_private_key(path)


def test_key_file_that_is_not_a_key_is_refused_without_quoting_it(tmp_path):
    p = tmp_path / "k.pem"
    p.write_text("-----BEGIN PRIVATE KEY-----\nSECRETSTUFF\n-----END PRIVATE KEY-----\n")
    p.chmod(0o600)
    with pytest.raises(ConfigError) as ei:
        load_private_key(p)
    assert "SECRETSTUFF" not in str(ei.value) and ei.value.__cause__ is None


def test_environment_wins_and_half_a_pair_is_a_notice(key):
    path, _ = key
    s, n = signer_from(None, None, env={kalshi_auth.ENV_KEY_ID: "env-id", kalshi_auth.ENV_KEY_FILE: path})
    assert isinstance(s, Signer) and n is None
    assert signer_from(None, None, env={}) == (None, None)
    s, n = signer_from("cfg-id", None, env={})
    assert s is None and "no key file" in n
    s, n = signer_from(None, path, env={})
    assert s is None and "no key id" in n


BOOK = {"yes_dollars": [["0.4100", "1.00"], ["0.4200", "2.50"]], "no_dollars": [["0.5600", "3.00"]]}


def test_without_a_key_books_are_asked_for_unsigned_and_the_notice_says_the_websocket_needs_one():
    """#22 item 7: the live exchange serves books unsigned; without a key Kakashi used never to
    ask for one, so it never filled."""
    paths = []

    def h(req):
        paths.append(req.url.path)
        assert not any(k.lower().startswith("kalshi-access") for k in req.headers)
        if "orderbooks" in req.url.path:
            return httpx.Response(200, json={"orderbooks": [{"ticker": "KXA-26JAN05-T1", "orderbook_fp": BOOK}]})
        if req.url.path.endswith("/markets"):
            return httpx.Response(200, json={"markets": [market()], "cursor": ""})
        return meta(req)

    c, _ = client(h)
    src = KalshiSource(c, depth_for=lambda: {"KXA-26JAN05-T1"})
    assert src.notices == [NO_KEY_NOTICE] and "no live WebSocket books (the WebSocket" in NO_KEY_NOTICE
    b = src.fetch()
    assert not b.errors and not b.notes and not b.key_refused and len(b.rows) == 1
    assert b.rows[0].snapshot["yes_bids"] == [["0.4200", "2.50"], ["0.4100", "1.00"]]
    assert sum("orderbooks" in p for p in paths) == 1


def test_without_a_key_a_401_on_books_is_said_once_and_asked_again_with_backoff():
    n = []

    def h(req):
        if "orderbooks" in req.url.path:
            n.append(1)
            return httpx.Response(401, json={"code": "authentication_error", "message": "missing headers"})
        if req.url.path.endswith("/markets"):
            return httpx.Response(200, json={"markets": [market()], "cursor": ""})
        return meta(req)

    c, _ = client(h)
    now = [1_000_000]
    src = KalshiSource(c, depth_for=lambda: {"KXA-26JAN05-T1"}, clock=lambda: now[0])
    first = src.fetch()
    assert len(n) == 1 and not first.errors and first.rows and not first.key_refused  # no key: nothing refused
    assert [x for x in first.notes if "a key is needed" in x] == [
        "Kalshi refused the request (HTTP 401 on GET /markets/orderbooks): missing headers: a key is needed: "
        "no order books and no paper fills until one is set (set KAKASHI_KALSHI_KEY_ID and KAKASHI_KALSHI_KEY_FILE, "
        "or [kalshi] api_key_id / private_key_file); asked again with backoff"
    ]
    second = src.fetch()
    assert len(n) == 1 and not second.errors and not second.notes and second.rows  # the rest keeps polling
    now[0] += 5_000
    third = src.fetch()
    assert len(n) == 2 and not third.notes  # asked again after the wait; said only once


@pytest.mark.parametrize(
    "refused",
    ["/events", "/series", "/events/", "/series/", "tickers", "/historical/", "orderbooks"],
)
def test_a_401_on_any_signed_endpoint_is_a_key_problem_not_a_feed_error(key, refused):
    """#22 item 8: every signed request, not only the books: a 401 is KEY REFUSED (asked again
    with backoff), never a feed error or a "looked up one by one" note."""
    path, _ = key
    signer, _ = signer_from("kid", path, env={})
    held = "KXA-26JAN05-OLD"
    asked = []

    def h(req):
        p = req.url.path.removeprefix("/trade-api/v2")
        if refused in ("/events", "/series"):  # the bulk listings after a full listing
            hit = p == refused
        elif refused.endswith("/"):  # one look-up, one historical market
            hit = p.startswith(refused)
        else:  # the held market's re-listing by ticker, the books
            hit = refused in str(req.url)
        if hit:
            asked.append(p)
            return httpx.Response(401, json={"code": "authentication_error", "message": "clock skew"})
        if p == "/markets":
            return httpx.Response(200, json={"markets": [market()], "cursor": ""})
        if "orderbooks" in p:
            return httpx.Response(200, json={"orderbooks": []})
        if p.startswith("/historical/"):
            return httpx.Response(404, json={"code": "not_found", "message": "no"})
        if p == "/events":
            return httpx.Response(200, json={"events": [], "cursor": ""})
        return meta(req)

    c, _ = client(h, signer=signer)
    now = [1_000_000]
    src = KalshiSource(c, depth_for=lambda: {"KXA-26JAN05-T1"}, watch_for=lambda: {held}, clock=lambda: now[0])
    b = src.fetch()
    assert asked, "the endpoint was not asked"
    assert "clock skew" in b.key_refused
    assert not [e for e in b.errors if "clock skew" in e or "401" in e]
    assert not [x for x in b.notes if "401" in x]
    assert any(r.market.get("ticker") == "KXA-26JAN05-T1" for r in b.rows)  # what works keeps serving


def test_a_refused_key_is_a_key_problem_retried_with_backoff_until_it_works(key):
    """#19 item 10: a 401 is KEY REFUSED with Kalshi's reason (not a feed error), asked again
    after 5 s, 10 s, 20 s ... (never every tick), and forgotten once a signed request succeeds."""
    path, _ = key
    signer, _ = signer_from("kid", path, env={})
    n = []
    revoked = [True]

    def h(req):
        if "orderbooks" in req.url.path:
            n.append(1)
            if revoked[0]:
                return httpx.Response(401, json={"code": "authentication_error", "message": "API key revoked"})
            return httpx.Response(200, json={"orderbooks": []})
        if req.url.path.endswith("/markets"):
            return httpx.Response(200, json={"markets": [market()], "cursor": ""})
        return meta(req)

    c, _ = client(h, signer=signer)
    now = [1_000_000]
    src = KalshiSource(c, depth_for=lambda: {"KXA-26JAN05-T1"}, clock=lambda: now[0])
    first, second = src.fetch(), src.fetch()
    said = "Kalshi refused the request (HTTP 401 on GET /markets/orderbooks): API key revoked"
    assert len(n) == 1 and not first.errors and not second.errors
    assert first.key_refused == second.key_refused == said
    assert len(first.rows) == len(second.rows) == 1  # the listing still serves
    now[0] += 4_999
    src.fetch()
    assert len(n) == 1
    now[0] += 1
    assert src.fetch().key_refused == said and len(n) == 2  # 5 s on: asked again, refused again
    now[0] += 9_999
    src.fetch()
    assert len(n) == 2  # the wait doubled
    now[0] += 1
    revoked[0] = False  # the key was re-enabled (or the clock fixed) while running
    back = src.fetch()
    assert len(n) == 3 and back.key_refused == "" and "Kalshi accepted the API key again" in back.notes
    now[0] += 1
    src.fetch()
    assert len(n) == 4  # no backoff once accepted


def test_a_refused_listing_waits_out_the_backoff_and_says_so(key):
    path, _ = key
    signer, _ = signer_from("kid", path, env={})
    n = []

    def h(req):
        n.append(req.url.path)
        return httpx.Response(401, json={"code": "authentication_error", "message": "clock skew"})

    c, _ = client(h, signer=signer)
    now = [1_000_000]
    src = KalshiSource(c, clock=lambda: now[0])
    first = src.fetch()
    asked = len(n)
    assert "clock skew" in first.key_refused and first.errors  # nothing listed: the feed is down too
    second = src.fetch()
    assert len(n) == asked and second.errors == [f"{first.key_refused} (tried again in 5s)"]
    now[0] += 5_000
    src.fetch()
    assert len(n) > asked


def test_a_404_on_the_series_listing_is_a_fallback_that_serves_not_an_alarm():
    """#19 item 2: a listing endpoint that answers 404 falls back to one look-up per series; the
    fetch succeeds, so the note goes to the log and no FEED DOWN alarm (no errors) is raised."""
    ex = Exchange([market("KXA-26JAN05-T1")])

    def h(req):
        if req.url.path.endswith("/series"):
            return httpx.Response(404, json={"code": "not_found", "message": "no such route"})
        return ex(req)

    c, _ = client(h)
    b = KalshiSource(c).fetch()
    assert not b.errors and b.rows
    assert any(n.startswith("series and fees looked up one by one instead") for n in b.notes)


def _limits(refill, capacity):
    return {"usage_tier": "t", "read": {"refill_rate": refill, "bucket_capacity": capacity}, "write": {}}


def _simulated_pace(c, n=600):
    """Seconds (of a fake clock the client's pacing waits advance) that ``n`` more reads take."""
    now = [0.0]
    c.bucket = TokenBucket(c.bucket.rate, c.bucket.burst, clock=lambda: now[0])
    c._stop.wait = lambda d: (now.__setitem__(0, now[0] + d), False)[1]
    for _ in range(n):
        c.get_market("KXA-26JAN05-T1")
    return now[0]


@pytest.mark.parametrize(
    "limits, rate, burst, seconds",
    [
        (None, 20, 20, (600 - 20) / 20),  # no answer: today's default, 20 reads/s
        (_limits(1000, 2000), 100, 200, (600 - 200) / 100),  # a higher tier: more reads a second
        (_limits(50, 100), 5, 10, (600 - 10) / 5),  # a lower budget: fewer
    ],
)
def test_with_a_key_reads_are_paced_from_the_accounts_limits(key, limits, rate, burst, seconds):
    """#22 item 8: GET /account/limits (signed) gives the account's real read budget, its
    bucket two seconds deep; the default stays when it cannot be read (said once), and it is
    asked again later."""
    path, _ = key
    signer, _ = signer_from("kid", path, env={})
    asked = []

    def h(req):
        p = req.url.path.removeprefix("/trade-api/v2")
        if p == "/account/limits":
            asked.append(p)
            return httpx.Response(200, json=limits) if limits else httpx.Response(404, json={"code": "not_found"})
        if p == "/markets":
            return httpx.Response(200, json={"markets": [market()], "cursor": ""})
        if p.startswith("/markets/"):
            return httpx.Response(200, json={"market": market()})
        return meta(req)

    c, _ = client(h, signer=signer, reads_per_s=20)
    now = [1_000_000]
    src = KalshiSource(c, clock=lambda: now[0])
    b = src.fetch()
    assert asked == ["/account/limits"] and not b.errors
    if limits:
        said = f"Kalshi: reads paced from the account's limits (tier t): {rate:g} reads/s, bursts of {burst:g}"
        assert said in b.notes
    else:
        assert any("rate limits could not be read" in n and "default 20 reads/s" in n for n in b.notes)
        assert not any("rate limits" in n for n in src.fetch().notes)  # said once
    assert (c.bucket.rate, c.bucket.burst) == (rate, burst)
    assert src.believed_per_fetch == kalshi_source.believed_budget(src.interval_s, rate)
    assert _simulated_pace(c) == pytest.approx(seconds, abs=0.5)
    now[0] += kalshi_source.LIMITS_RETRY_MS
    src.fetch()
    assert len(asked) == (2 if limits is None else 1)  # asked again later only when it failed


def test_the_account_pace_never_exceeds_a_rate_the_operator_set_and_429s_still_back_off(key):
    path, _ = key
    signer, _ = signer_from("kid", path, env={})
    codes = iter([429, 429, 200])

    def h(req):
        if req.url.path.endswith("/account/limits"):
            return httpx.Response(200, json=_limits(1000, 2000))
        code = next(codes)
        return httpx.Response(code, json={"market": {"ticker": "X"}} if code == 200 else {"error": "too many requests"})

    c, sleeps = client(h, signer=signer, reads_per_s=30, reads_cap=30)
    assert "capped by [kalshi] reads_per_s = 30" in c.pace_from_account(c.get_account_limits())
    assert (c.bucket.rate, c.bucket.burst) == (30, 60)
    c.get_market("X")
    assert len(sleeps) == 2 and c.retries_made == 2  # a 429 is still retried with backoff


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"read": {"refill_rate": 0, "bucket_capacity": 10}},
        {"read": {"refill_rate": "fast"}},
        {"read": 5},
        {"read": {"refill_rate": True, "bucket_capacity": 10}},
        {"read_limit": "20"},
    ],
)
def test_an_account_limits_answer_that_is_not_one_keeps_the_pace(body):
    c, _ = client(lambda r: httpx.Response(200, json=body))
    with pytest.raises(KalshiHTTPError, match="account/limits"):
        c.pace_from_account(c.get_account_limits())
    assert (c.bucket.rate, c.bucket.burst) == (1000, 1000)


def test_books_are_fetched_100_a_request(key):
    path, _ = key
    signer, _ = signer_from("kid", path, env={})
    tickers = [f"KXA-26JAN05-T{i}" for i in range(150)]
    calls = []

    def h(req):
        if "orderbooks" in req.url.path:
            ts = req.url.params.get_list("tickers")
            calls.append(len(ts))
            return httpx.Response(
                200,
                json={
                    "orderbooks": [
                        {
                            "ticker": t,
                            "orderbook_fp": {
                                "yes_dollars": [["0.4100", "1.00"], ["0.4200", "2.50"]],
                                "no_dollars": [["0.5600", "3.00"]],
                            },
                        }
                        for t in ts
                    ]
                },
            )
        if req.url.path.endswith("/markets"):
            want = req.url.params.get("tickers")
            ms = [market(t) for t in (want.split(",") if want else tickers)]
            return httpx.Response(200, json={"markets": ms, "cursor": ""})
        return meta(req)

    c, _ = client(h, signer=signer)
    b = KalshiSource(c, depth_for=lambda: set(tickers)).fetch()
    assert calls == [100, 50]
    s = b.rows[0].snapshot
    assert s["yes_bids"] == [["0.4200", "2.50"], ["0.4100", "1.00"]] and s["no_bids"] == [["0.5600", "3.00"]]
    assert s["yes_bid"] == "0.4200" and s["yes_ask"] == "0.4400"


# -- rows: today's shapes, exactly -------------------------------------------------------------
def test_prices_and_counts_reach_validation_exactly_as_sent():
    row = convert(
        market(yes_bid_dollars="0.0030", yes_ask_dollars="0.9930", last_price_dollars="0.0040", volume_fp="2.50"), 1000
    )
    assert row.reason is None
    s = row.snapshot
    assert s == {
        "ticker": "KXA-26JAN05-T1",
        "ts": 1000,
        "yes_bid": "0.0030",
        "yes_ask": "0.9930",
        "last": "0.0040",
        "volume": "2.50",
    }
    for v in s.values():
        assert not isinstance(v, float)


def test_a_json_number_is_read_as_its_exact_decimal_never_a_float():
    body = (
        b'{"markets": [{"ticker": "KXA-1", "status": "active", "yes_bid_dollars": 0.1, "yes_ask_dollars": 0.3}],'
        b' "cursor": ""}'
    )
    c, _ = client(lambda req: httpx.Response(200, content=body))
    m = next(c.iter_markets())
    assert m["yes_bid_dollars"] == D("0.1") and type(m["yes_bid_dollars"]) is D


def test_orderbook_levels_best_first_fractional_and_top_from_the_book():
    ob = {
        "yes_dollars": [["0.4000", "5.00"], ["0.4230", "7.25"]],
        "no_dollars": [["0.5500", "3.00"], ["0.5610", "0.50"]],
    }
    s = snapshot_row(market(), 1000, ob)
    assert s["yes_bids"] == [["0.4230", "7.25"], ["0.4000", "5.00"]]
    assert s["no_bids"] == [["0.5610", "0.50"], ["0.5500", "3.00"]]
    assert s["yes_bid"] == "0.4230" and s["yes_ask"] == "0.4390"


@pytest.mark.parametrize(
    "fields,book",
    [
        ({"yes_bid_dollars": "0.0000", "yes_ask_dollars": "1.0000", "yes_bid_size_fp": "0.00"}, None),
        ({}, {"yes_dollars": [], "no_dollars": []}),
        ({}, {}),
    ],
)
def test_a_quiet_market_is_no_quote_not_a_bad_row(fields, book):
    row = convert(market(**fields), 1000, book)
    assert row.reason is None
    if book is not None or fields:
        assert row.snapshot["yes_bid"] is None and row.snapshot["yes_ask"] is None


def test_one_sided_market_keeps_its_side():
    s = snapshot_row(market(yes_bid_dollars="0.0000", yes_ask_dollars="0.0150"), 1000)
    assert s["yes_bid"] is None and s["yes_ask"] == "0.0150"


def test_market_keys_follow_the_contract():
    m = market(
        settlement_value_dollars="0.6250",
        market_type="scalar",
        result="scalar",
        status="finalized",
        fee_waiver_expiration_time="2026-02-01T00:00:00Z",
    )
    row = convert(m, 1000, None, "KXA", kalshi_wire.Fees("quadratic", "0.5"))
    assert row.reason is None and row.snapshot is None
    assert row.market == {
        "ticker": "KXA-26JAN05-T1",
        "title": "Old title",
        "subtitle": "Above 40",
        "event_ticker": "KXA-26JAN05",
        "series": "KXA",
        "status": "finalized",
        "market_type": "scalar",
        "result": "scalar",
        "settlement_value": "0.6250",
        "open_ts": 1767225600000,
        "close_ts": 1767571200000,
        "updated_ts": 1767312000000,
        "fee_type": "quadratic",
        "fee_multiplier": "0.5",
        "fee_waiver_until_ts": 1769904000000,
        "settlement_bounds_type": None,  # (3.31+ fields this older market lacks: a default market)
        "settlement_floor": None,
        "price_ranges": None,
        "exchange_index": None,
        "event_exclusive": None,  # (its event's mutually_exclusive: not given here, so not known)
    }


@pytest.mark.parametrize("status", LIFECYCLE)
def test_every_lifecycle_word_passes_through(status):
    row = convert(market(status=status, result="yes" if status in ("determined", "finalized") else ""), 1000)
    assert row.reason is None and row.market["status"] == status
    assert (row.snapshot is not None) == (status == "active")


def test_legacy_twins_that_agree_are_read():
    m = market(
        yes_bid=42,
        yes_ask=44,
        no_bid=56,
        no_ask=58,
        last_price=43,
        volume=1234,
        volume_fp="1234.00",
        open_interest=600,
        open_interest_fp="600.00",
    )
    row = convert(m, 1000, {"yes": [[41, 3]], "yes_dollars": [["0.4100", "3.00"]], "no_dollars": [], "no": []})
    assert row.reason is None and row.snapshot["volume"] == "1234.00"


@pytest.mark.parametrize(
    "twins,what",
    [
        ({"yes_bid": 41}, "yes_bid"),
        ({"yes_bid": "forty"}, "yes_bid"),
        ({"yes_ask": True}, "yes_ask"),
        ({"last_price": 44}, "last_price"),
        ({"volume": 99}, "volume"),
        ({"open_interest": "many"}, "open_interest"),
        ({"no_bid": 57}, "no_bid"),
    ],
)
def test_legacy_twins_that_disagree_or_are_garbage_are_inconsistent(twins, what):
    row = convert(market(**twins), 1000)
    assert row.reason is not None and row.reason.startswith(f"inconsistent {what}")
    assert row.snapshot is None and row.payload["ticker"] == "KXA-26JAN05-T1"


def test_a_legacy_book_that_disagrees_is_inconsistent():
    ob = {"yes": [[40, 3]], "yes_dollars": [["0.4100", "3.00"]]}
    assert convert(market(), 1000, ob).reason == "inconsistent order book: yes (cents) vs yes_dollars"


def test_cents_only_rows_become_exact_dollars():
    m = {k: v for k, v in market().items() if not k.endswith("_dollars")}
    s = convert({**m, "yes_bid": 42, "yes_ask": 44}, 1000).snapshot
    assert s["yes_bid"] == "0.4200" and s["yes_ask"] == "0.4400"


HOSTILE = [
    (market(volume_fp="1" + "0" * 30 + ".00"), "volume_fp out of range"),
    (market(volume_fp=10**30), "volume_fp out of range"),
    (market(close_time=10**30), "close_time out of range"),
    (market(close_time="9999999-01-01T00:00:00Z"), "close_time is not an RFC 3339 time"),
    (market(open_time="2026-01-01T00:00:00"), "open_time is not in UTC"),
    (market("KXA-\ud800"), "ticker has a character"),
    (market("KXA-\x00"), "ticker has a character"),
    (market("KX" + "L" * 4998), "ticker too long"),
    (market("KX/../../portfolio/orders"), "ticker has a character"),
    ({**market(), "ticker": {"a": 1}}, "ticker is not text"),
    ({**market(), "ticker": ["KXA"]}, "ticker is not text"),
    (None, "market is not an object (got null)"),
    (42, "market is not an object (got int)"),
    ("KXA-1", "market is not an object (got str)"),
    (market(title="bad\x00title"), "title holds a character"),
    (market(yes_sub_title="x\udc80"), "yes_sub_title holds a character"),
    (market(title={"x": 1}), "title is not text"),
    (market(event_ticker="E/../x"), "event_ticker has a character"),
    (market(status={"x": 1}), "status is not a word"),
]


@pytest.mark.parametrize("m,reason", HOSTILE)
def test_each_hostile_market_is_rejected_on_its_own(m, reason):
    row = convert(m, 1000)
    assert row.reason is not None and row.reason.startswith(reason), row.reason
    row.reason.encode("utf-8")  # storable and printable whatever came in
    assert row.reason.isprintable()


def test_hostile_markets_do_not_stop_the_page():
    hostile = [
        {**m, "ticker": f"KXH-{i}"} if isinstance(m, dict) and m.get("ticker") == "KXA-26JAN05-T1" else m
        for i, (m, _) in enumerate(HOSTILE)
    ]  # one market each, as a real page lists them
    page = [market("KXA-1")] + hostile + [market("KXA-2")]

    def h(req):
        if req.url.path.endswith("/markets"):
            return httpx.Response(200, content=json.dumps({"markets": page, "cursor": ""}).encode())
        return meta(req)

    c, _ = client(h)
    b = KalshiSource(c).fetch()
    assert not b.errors
    good = [r.market["ticker"] for r in b.rows if r.reason is None]
    assert good == ["KXA-1", "KXA-2"]
    assert sum(1 for r in b.rows if r.reason) == len(HOSTILE)


# -- listing that scales ------------------------------------------------------------------------
class Exchange:
    """A tiny scripted Kalshi for the listing tests."""

    def __init__(self, markets, pages=1):
        self.markets = {m["ticker"]: m for m in markets}
        self.changed: set[str] = set()
        self.calls: list[tuple[str, dict]] = []
        self.pages = pages
        self.historical: dict[str, dict] = {}
        self.listed_events: set[str] = set()  # what GET /events and GET /series list (bulk look-ups)
        self.listed_series: set[str] = set()

    def __call__(self, req):
        p = dict(req.url.params)
        self.calls.append((req.url.path.removeprefix("/trade-api/v2"), p))
        path = req.url.path.removeprefix("/trade-api/v2")
        if path == "/markets":
            if "min_updated_ts" in p:
                ms = [self.markets[t] for t in sorted(self.changed)]
                self.changed = set()
            elif "tickers" in p:
                ms = [self.markets[t] for t in p["tickers"].split(",") if t in self.markets]
            else:
                ms = list(self.markets.values())
            n = max(1, -(-len(ms) // self.pages))
            i = int(p.get("cursor") or 0)
            return httpx.Response(200, json={"markets": ms[i : i + n], "cursor": str(i + n) if i + n < len(ms) else ""})
        if path == "/markets/orderbooks":  # (served unsigned, as Kalshi does)
            return httpx.Response(200, json={"orderbooks": []})
        if path.startswith("/historical/markets/"):
            t = req.url.raw_path.decode().rsplit("/", 1)[1]
            if t in self.historical:
                return httpx.Response(200, json={"market": self.historical[t]})
            return httpx.Response(404, json={"code": "not_found", "message": "market not found"})
        if path == "/events":
            return httpx.Response(
                200,
                json={
                    "events": [
                        {"event_ticker": e, "series_ticker": e.split("-")[0] + "S"} for e in sorted(self.listed_events)
                    ],
                    "cursor": "",
                },
            )
        if path == "/series":
            return httpx.Response(
                200,
                content=b'{"series": [%s]}'
                % b",".join(
                    b'{"ticker": "%s", "fee_type": "quadratic", "fee_multiplier": 0.35}' % s.encode()
                    for s in sorted(self.listed_series)
                ),
            )
        if path.startswith("/events/"):
            return httpx.Response(200, json={"event": {"series_ticker": path.split("/")[2].split("-")[0] + "S"}})
        if path.startswith("/series/"):
            return httpx.Response(200, content=b'{"series": {"fee_type": "quadratic", "fee_multiplier": 0.35}}')
        if path == "/exchange/status":  # (3.20's shape: no shards)
            return httpx.Response(200, json={"exchange_active": True, "trading_active": True})
        return httpx.Response(404, json={})

    def endpoint_calls(self, prefix):
        return [c for c in self.calls if c[0].startswith(prefix)]


def test_first_listing_excludes_combos_then_only_changes_and_watched_markets_are_asked_for():
    ex = Exchange([market(f"KXA-26JAN05-T{i}") for i in range(30)])
    clock = [1_000_000]
    c, _ = client(ex)
    src = KalshiSource(c, depth_for=lambda: {"KXA-26JAN05-T7"}, clock=lambda: clock[0])
    first = src.fetch()
    assert ex.calls[0] == ("/markets", {"status": "open", "mve_filter": "exclude", "limit": "1000"})
    assert len(first.rows) == 30 and all(r.snapshot["ts"] == 1_000_000 for r in first.rows)
    ex.calls.clear()
    clock[0] = 2_000_000
    ex.markets["KXA-26JAN05-T3"] = market("KXA-26JAN05-T3", yes_bid_dollars="0.4100")
    ex.changed = {"KXA-26JAN05-T3"}
    second = src.fetch()
    listings = [c for c in ex.calls if c[0] == "/markets"]
    # the changes, the believed market and its book: a few requests
    assert len(ex.calls) == 3 and len(listings) == 2 and ex.calls[2][0] == "/markets/orderbooks"
    assert (
        set(listings[0][1]) == {"min_updated_ts", "mve_filter", "limit"} and listings[0][1]["mve_filter"] == "exclude"
    )
    assert listings[1][1]["tickers"] == "KXA-26JAN05-T7"
    ts = {r.market["ticker"]: r.snapshot["ts"] for r in second.rows}
    assert set(ts) == {"KXA-26JAN05-T3", "KXA-26JAN05-T7"}  # only what changed is handed over again
    assert ts["KXA-26JAN05-T3"] == 2_000_000 and ts["KXA-26JAN05-T7"] == 2_000_000
    assert src.cache["KXA-26JAN05-T0"].ts == 1_000_000  # unchanged: its true (old) quote time
    assert {r.market["ticker"]: r.snapshot["yes_bid"] for r in second.rows}["KXA-26JAN05-T3"] == "0.4100"


def test_each_page_is_stamped_with_when_it_arrived():
    ex = Exchange([market(f"KXA-26JAN05-T{i}") for i in range(6)], pages=3)
    ticks = iter(range(10, 1000, 10))
    c, _ = client(ex)
    b = KalshiSource(c, clock=lambda: next(ticks)).fetch()
    assert sorted({r.snapshot["ts"] for r in b.rows}) == [10, 20, 30]


def test_a_capped_listing_warns_instead_of_truncating_silently():
    ex = Exchange([market(f"KXA-26JAN05-T{i}") for i in range(10)], pages=5)
    c, _ = client(ex)
    b = KalshiSource(c, max_pages=2).fetch()
    assert len(b.rows) == 4
    assert not b.errors and len(b.notes) == 1 and "stopped at 2 pages" in b.notes[0]  # said, no alarm


def test_narrowing_by_series_event_and_tickers():
    ex = Exchange([market("KXA-26JAN05-T1"), market("KXB-26JAN05-T1")])
    c, _ = client(ex)
    KalshiSource(c, series=["KXA"], events=["KXB-26JAN05"], tickers=["KXC-1"]).fetch()
    listings = [p for path, p in ex.calls if path == "/markets"]
    assert {"series_ticker": "KXA", "status": "open", "mve_filter": "exclude", "limit": "1000"} in listings
    assert {"event_ticker": "KXB-26JAN05", "mve_filter": "exclude", "limit": "1000"} in listings
    assert {"tickers": "KXC-1", "limit": "1000"} in listings


def test_series_comes_from_the_event_and_fees_from_the_series_cached():
    ex = Exchange([market("KXA-26JAN05-T1"), market("KXA-26JAN05-T2"), market("KXB-26FEB01-T1")])
    c, _ = client(ex)
    src = KalshiSource(c)
    rows = src.fetch().rows
    by = {r.market["ticker"]: r.market for r in rows}
    assert by["KXA-26JAN05-T1"]["series"] == "KXAS"  # from the event, not guessed from the ticker
    assert by["KXA-26JAN05-T1"]["fee_multiplier"] == "0.35" and by["KXA-26JAN05-T1"]["fee_type"] == "quadratic"
    looked_up = [p for p, _ in ex.calls if p.startswith(("/events/", "/series/")) and "fee_changes" not in p]
    assert len([p for p in looked_up if p.startswith("/events/")]) == 2 and len(looked_up) == 4
    ex.calls.clear()
    src.fetch()
    assert not ex.endpoint_calls("/events/") and not ex.endpoint_calls("/series/")  # (the fee changes too: 10 min)


def test_after_a_full_listing_series_and_fees_come_in_bulk_not_one_by_one():
    ms = [market(f"KXE{i}-26JAN05-T1") for i in range(40)]
    ex = Exchange(ms)
    ex.listed_events = {m["event_ticker"] for m in ms}
    ex.listed_series = {f"KXE{i}S" for i in range(40)}
    c, _ = client(ex)
    b = KalshiSource(c, lookups_per_fetch=5).fetch()
    assert not b.errors
    assert [p for p, _ in ex.calls] == [
        "/markets",
        "/events",
        "/series",
        "/series/fee_changes",
        "/events/fee_changes",
        "/exchange/status",
    ]
    assert all(
        r.market["series"] == r.market["ticker"].split("-")[0] + "S" and r.market["fee_multiplier"] == "0.35"
        for r in b.rows
    )


def test_look_ups_past_the_budget_are_a_warning_and_follow_next_time():
    ex = Exchange([market(f"KXE{i}-26JAN05-T1") for i in range(8)])
    c, _ = client(ex)
    src = KalshiSource(c, lookups_per_fetch=4)
    first = src.fetch()
    assert not first.errors  # a working path, not an alarm: a note for the log
    assert any(n.startswith("series or fees of 6 markets not looked up yet") for n in first.notes)
    for _ in range(4):
        last = src.fetch()
    assert not last.errors and all(r.market["fee_multiplier"] == "0.35" for r in last.rows)


def test_a_held_market_past_the_historical_cutoff_is_fetched_from_historical():
    ex = Exchange([market("KXA-26JAN05-T1")])
    gone = "KXA-25JAN05-OLD"
    ex.historical[gone] = market(gone, status="finalized", result="yes")
    c, _ = client(ex)
    src = KalshiSource(c, watch_for=lambda: {gone})
    b = src.fetch()
    old = [r for r in b.rows if r.market["ticker"] == gone]
    assert len(old) == 1 and old[0].market["status"] == "finalized" and old[0].market["result"] == "yes"
    assert ex.endpoint_calls("/historical/markets/")


def test_a_settled_market_nobody_holds_is_said_once_then_forgotten():
    ex = Exchange([market("KXA-26JAN05-T1")])
    c, _ = client(ex)
    src = KalshiSource(c)
    src.fetch()
    ex.markets["KXA-26JAN05-T1"] = market("KXA-26JAN05-T1", status="determined", result="no")
    ex.changed = {"KXA-26JAN05-T1"}
    assert [r.market["status"] for r in src.fetch().rows] == ["determined"]
    assert src.fetch().rows == []


# -- property: every row gets a verdict ------------------------------------------------------------
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text(max_size=12)
    | st.decimals(allow_nan=True, allow_infinity=True, places=4),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
market_keys = st.sampled_from(
    [
        "ticker",
        "event_ticker",
        "status",
        "result",
        "title",
        "yes_sub_title",
        "market_type",
        "yes_bid_dollars",
        "yes_ask_dollars",
        "last_price_dollars",
        "yes_bid",
        "yes_ask",
        "volume_fp",
        "volume",
        "open_interest_fp",
        "close_time",
        "open_time",
        "updated_time",
        "settlement_value_dollars",
        "fee_waiver_expiration_time",
        "no_bid",
        "no_bid_dollars",
    ]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    base=st.sampled_from([market(), market(status="finalized", result="yes"), {}]),
    changes=st.dictionaries(market_keys, json_values, max_size=5),
    book=st.none() | json_values | st.fixed_dictionaries({"yes_dollars": json_values, "no_dollars": json_values}),
    whole=st.none() | json_values,
)
def test_random_json_always_gets_a_verdict(base, changes, book, whole):
    from kakashi_tui.core.validate import validate_row

    m = whole if whole is not None else {**base, **changes}
    row = convert(m, 1_700_000_000_000, book if isinstance(book, dict) else None)
    if row.reason is not None:
        assert isinstance(row.reason, str) and row.reason.isprintable()
        row.reason.encode("utf-8")
        return
    assert isinstance(row.market["ticker"], str) and row.market["ticker"]
    for v in (row.snapshot or {}).values():
        assert not isinstance(v, float)
    validate_row(row.market, row.snapshot, 1_700_000_000_000)  # a verdict, never an exception


def test_a_cent_twin_may_round_a_sub_penny_price_but_not_miss_it():
    assert convert(market(yes_bid_dollars="0.4230", yes_bid=42), 1000).reason is None
    assert convert(market(yes_bid_dollars="0.4230", yes_bid=43), 1000).reason is None
    assert convert(market(yes_bid_dollars="0.4230", yes_bid=41), 1000).reason.startswith("inconsistent yes_bid")
    assert convert(market(yes_bid_dollars="0.4200", yes_bid=43), 1000).reason.startswith("inconsistent yes_bid")
    assert convert(market(volume_fp="2.50", volume=2), 1000).reason is None
    assert convert(market(volume_fp="2.00", volume=3), 1000).reason.startswith("inconsistent volume")


@pytest.mark.parametrize(
    "text,ok",
    [
        ("reads_per_s = 5", True),
        ("reads_per_s = 0", False),
        ("reads_per_s = 1e9", False),
        ('private_key_file = "k.pem"', True),
    ],
)
def test_kalshi_config_fields(tmp_path, text, ok):
    from kakashi_tui.trading.config import load_config

    cfg = tmp_path / "c.toml"
    cfg.write_text(f"[kalshi]\n{text}\n")
    if ok:
        load_config(str(cfg))
    else:
        with pytest.raises(ConfigError, match="reads_per_s"):
            load_config(str(cfg))


def test_a_full_listing_again_after_relist_every_s():
    ex = Exchange([market("KXA-26JAN05-T1")])
    c, _ = client(ex)
    src = KalshiSource(c, relist_every_s=0)
    src.fetch()
    src.fetch()
    full = [p for path, p in ex.calls if path == "/markets" and p.get("status") == "open"]
    assert len(full) == 2 and not any("min_updated_ts" in p for path, p in ex.calls)


@pytest.mark.parametrize(
    "kw",
    [
        {"tickers": ["KX/../../portfolio/orders"]},
        {"series": ["KX SERIES"]},
        {"events": ["E\x00"]},
        {"tickers": ["A,B"]},
    ],
)
def test_a_name_kalshi_could_not_list_is_refused_at_start(kw):
    c, _ = client(lambda req: httpx.Response(200, json={}))
    with pytest.raises(ConfigError, match="not a name Kalshi could list"):
        KalshiSource(c, **kw)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    page=st.lists(
        st.one_of(
            json_values, st.dictionaries(market_keys, json_values, max_size=5).map(lambda ch: {**market(), **ch})
        ),
        max_size=8,
    )
)
def test_a_random_page_never_raises_and_every_market_gets_one_verdict(page):
    page = [
        {**m, "ticker": f"KXP-{i}"} if isinstance(m, dict) and m.get("ticker") == "KXA-26JAN05-T1" else m
        for i, m in enumerate(page)
    ]
    body = json.dumps({"markets": page, "cursor": ""}, default=str).encode()
    c, _ = client(lambda req: httpx.Response(200, content=body) if req.url.path.endswith("/markets") else meta(req))
    b = KalshiSource(c).fetch()
    assert all("unexpected" not in e for e in b.errors), b.errors
    page = kalshi_client.parse_body(body, "page")["markets"]  # what the wire said
    valid = {m["ticker"] for m in page if isinstance(m, dict) and kalshi_source.ticker_ok(m.get("ticker"))}
    invalid = sum(1 for m in page if not (isinstance(m, dict) and kalshi_source.ticker_ok(m.get("ticker"))))
    assert len(b.rows) == len(valid) + invalid
    for r in b.rows:  # a verdict each: rejected with a reason, or a contract row
        assert r.reason is not None or (r.market["ticker"] in valid and "subtitle" in r.market)


def test_an_unchanged_market_is_handed_over_as_the_same_row_until_it_changes():
    ex = Exchange([market("KXA-26JAN05-T1"), market("KXA-26JAN05-T2")])
    c, _ = client(ex)
    src = KalshiSource(c)
    a = {r.market["ticker"]: r for r in src.fetch().rows}
    ex.markets["KXA-26JAN05-T2"] = market("KXA-26JAN05-T2", yes_bid_dollars="0.4100")
    ex.changed = {"KXA-26JAN05-T2"}
    b = {r.market["ticker"]: r for r in src.fetch().rows}
    assert "KXA-26JAN05-T1" not in b and src.cache["KXA-26JAN05-T1"].sent is a["KXA-26JAN05-T1"]
    assert b["KXA-26JAN05-T2"].snapshot["yes_bid"] == "0.4100"
