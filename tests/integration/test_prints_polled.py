"""Trade prints without a WebSocket (issue #22, item 7): without a key the WebSocket cannot be
opened, so the source polls GET /markets/trades (unsigned) for the markets it watches, and the
prints reach the catalog through the same row check; said once."""

import os
import time

import pytest

from kakashi_tui.adapters import catalog as cat
from kakashi_tui.adapters.catalog import CatalogWriter, Recorder
from kakashi_tui.adapters.kalshi.client import KalshiClient
from kakashi_tui.adapters.kalshi.source import PRINTS_EVERY_S, KalshiSource
from kakashi_tui.testing.fake_kalshi import FakeKalshi, FakeKalshiServer
from tests.clirun import in_process

T0, T1 = "KXFAKE-26JAN05-T00", "KXFAKE-26JAN05-T01"


@pytest.fixture
def kalshi():
    st = FakeKalshi.with_markets(4, require_signature=False, page_size=2)  # 2 prints a page: cursors walked
    with FakeKalshiServer(st) as srv:
        yield srv


def client(srv, **kw):
    return KalshiClient(base_url=srv.base_url, backoff_base=0.01, timeout=2.0, reads_per_s=500, **kw)


def prints_of(root):
    return {r["trade_id"]: r for r in cat.read_table(root, "trades").to_pylist()}


def test_prints_are_polled_unsigned_and_stored_once_with_the_3_34_fields(kalshi, tmp_path):
    st = kalshi.state
    now = int(time.time() * 1000)
    st.add_print(T0, "0.4200", "2.50", ts_ms=now - 60_000, trade_id="a", side="no", book_side="bid")
    st.add_print(T0, "0.4300", "500.00", ts_ms=now - 50_000, trade_id="blk", block=True)
    st.add_print(T0, "0.4400", "1.00", ts_ms=now - 40_000, trade_id="old", old=True)  # a 3.20 print
    st.add_print(T1, "0.0150", "3.00", ts_ms=now - 30_000, trade_id="b")
    st.add_print(T1, "0.5000", "1.00", ts_ms=now - 3_600_000, trade_id="too-old")  # before the lookback
    st.add_print("KXFAKE-26JAN05-T03", "0.5000", "1.00", ts_ms=now - 1000, trade_id="unwatched")
    bad = st.add_print(T1, "0.5000", "1.00", ts_ms=now - 20_000, trade_id="hostile")
    bad["is_block_trade"] = "maybe"
    rec = Recorder(CatalogWriter(tmp_path / "c"))
    with client(kalshi) as c:
        src = KalshiSource(c, watch_for=lambda: {T0}, depth_for=lambda: {T1}, on_trades=rec.trades, prints_every_s=0)
        first = src.fetch()
        st.add_print(T0, "0.4500", "1.00", ts_ms=int(time.time() * 1000), trade_id="later")
        second = src.fetch()
    rec.close()
    assert not first.errors and not second.errors
    got = prints_of(tmp_path / "c")
    assert set(got) == {"a", "blk", "old", "b", "later"}  # each once, though the second poll asks again
    a, blk, old = got["a"], got["blk"], got["old"]
    assert (a["taker_side"], a["taker_book_side"], a["is_block_trade"], a["count_hundredths"]) == (
        "no",
        "bid",
        False,
        250,
    )
    assert a["ts"] == now - 60_000 and a["source"] == "kalshi-rest" and a["sending_ts_ms"] is None
    assert blk["is_block_trade"] is True and old["is_block_trade"] is None and old["taker_side"] == "yes"
    assert got["b"]["yes_price_cc"] == 150
    rejected = [r for r in first.rows + second.rows if r.reason]
    assert [r.reason for r in rejected] == ["trade print: is_block_trade maybe is not true or false"] * 2
    assert rejected[0].market == {"ticker": T1} and rejected[0].payload["trade_id"] == "hostile"
    asked = [p for _, p in st.requests if "/markets/trades" in p]
    assert asked and all("ticker=" in p and "min_ts=" in p for p in asked)
    assert not st.signed  # no key: nothing signed
    # said once, at the start (the notices the run prints), never again in a fetch's notes
    said = [n for n in src.notices if "trade prints come by polling" in n]
    assert len(said) == 1 and not [n for n in first.notes + second.notes if "polling" in n]


def test_polls_are_spaced_and_a_failure_is_a_note_not_a_feed_error(kalshi, tmp_path):
    st = kalshi.state
    got = []
    with client(kalshi, max_retries=0) as c:
        src = KalshiSource(c, tickers=[T0], on_trades=got.extend)
        assert src.prints_every_s == PRINTS_EVERY_S
        src.fetch()
        src.fetch()  # within the interval: not asked again
        assert len([p for _, p in st.requests if "/markets/trades" in p]) == 1
        src._prints_at = 0.0  # (the interval over)
        st.down.add("/markets/trades")
        b = src.fetch()
    assert not b.errors and [n for n in b.notes if n.startswith("trade prints not polled this time")]


def test_a_recording_without_a_key_records_polled_prints_and_says_so_once(kalshi, tmp_path, capfd, monkeypatch):
    for k in [k for k in os.environ if k.startswith("KAKASHI_")]:
        monkeypatch.delenv(k)
    now = int(time.time() * 1000)
    kalshi.state.add_print(T0, "0.4200", "2.00", ts_ms=now - 5000, trade_id="p1", block=True)
    kalshi.state.add_print(T0, "0.4300", "1.00", ts_ms=now - 4000, trade_id="p2")
    root = tmp_path / "c"
    p = in_process(
        capfd,
        "record",
        "--source",
        "kalshi",
        "--api-base",
        kalshi.base_url,
        "--ticker",
        T0,
        "--db",
        str(tmp_path / "k.db"),
        "--catalog",
        str(root),
        "--passes",
        "2",
        "--interval",
        "0",
        "--quiet",
    )
    assert p.returncode == 0, p.stderr
    assert (p.stdout + p.stderr).count("trade prints come by polling") == 1
    assert "2 trade prints" in p.stdout
    got = prints_of(root)
    assert set(got) == {"p1", "p2"} and got["p1"]["is_block_trade"] is True
