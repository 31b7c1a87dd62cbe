"""``kakashi catalog backfill`` (issue #22, item 8): Kalshi's own public history (trades,
candlesticks, settled markets) into the catalog, no key needed, through the live rows' checks;
idempotent; one-line errors; end to end through the CLI in a subprocess."""

import os
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from kakashi_tui.adapters import catalog as cat
from kakashi_tui.testing.fake_kalshi import FakeKalshi, FakeKalshiServer, FakeMarket
from tests.clirun import in_process

DAY = "2026-11-20"
DAY_MS = int(datetime(2026, 11, 20, tzinfo=UTC).timestamp() * 1000)
T0, T1 = "KXFAKE-26JAN05-T00", "KXFAKE-26JAN05-T01"
OLD = "KXFAKE-26JAN05-OLD"  # settled before the cutoff: only /historical/*


@pytest.fixture
def clean_env(monkeypatch):
    for k in [k for k in os.environ if k.startswith("KAKASHI_")]:
        monkeypatch.delenv(k)


@pytest.fixture
def kalshi():
    st = FakeKalshi.with_markets(3, page_size=2)  # (order books want a key: backfill never asks for one)
    fixed = datetime(2026, 11, 20, 12, tzinfo=UTC)  # a settled market's times are its own, request after request
    st.markets[1].touch(status="finalized", result="yes", times_from=fixed)
    st.markets.append(
        FakeMarket(
            OLD, None, None, status="finalized", result="no", archived=True, event="KXFAKE-26JAN05", times_from=fixed
        )
    )
    h = DAY_MS + 3_600_000
    st.add_print(T0, "0.4200", "2.50", ts_ms=h + 1, trade_id="t1", side="no", book_side="bid")
    st.add_print(T0, "0.4300", "900.00", ts_ms=h + 2, trade_id="t-block", block=True)
    st.add_print(T0, "0.4400", "1.00", ts_ms=h + 3, trade_id="t-old", old=True)
    st.add_print(T1, "0.9900", "1.00", ts_ms=h + 4, trade_id="t2")
    st.add_print(T0, "0.5000", "1.00", ts_ms=DAY_MS - 86_400_000 * 3, trade_id="before-since")
    st.add_print(OLD, "0.1000", "4.00", ts_ms=h + 5, trade_id="t-hist", historical=True)
    hostile = st.add_print(T1, "0.5000", "1.00", ts_ms=h + 6, trade_id="t-hostile")
    hostile["yes_price_dollars"] = "1.5000"
    for i in range(3):
        st.add_candle(T0, (DAY_MS + (i + 1) * 3_600_000) // 1000, f"0.4{i}00", volume=f"{i + 1}.00")
    st.add_candle(T0, (DAY_MS + 4 * 3_600_000) // 1000, "0.4300", bid="0.0000", ask="1.0000")  # quiet: no bid/ask
    st.add_candle(OLD, (DAY_MS + 3_600_000) // 1000, "0.1000")
    bad = st.add_candle(T1, (DAY_MS + 3_600_000) // 1000, "0.9900")
    bad["volume_fp"] = "lots"
    with FakeKalshiServer(st) as srv:
        yield srv


def backfill(capfd, kalshi, tmp_path, *more):
    return in_process(
        capfd,
        "catalog",
        "backfill",
        "--api-base",
        kalshi.base_url,
        "--catalog",
        str(tmp_path / "c"),
        "--db",
        str(tmp_path / "none.db"),
        "--since",
        DAY,
        "--until",
        DAY,
        *more,
    )


def test_backfill_end_to_end_and_a_second_run_adds_nothing(kalshi, tmp_path, capfd, clean_env):
    p = backfill(capfd, kalshi, tmp_path, "--tickers", f"{T0},{T1}", "--tickers", OLD)
    assert p.returncode == 0, p.stderr
    assert "backfilled 3 of 3 markets" in p.stdout
    assert "5 trade prints, 5 candlesticks, 2 settled markets; 2 rows rejected" in p.stdout, p.stdout
    assert "rejected: KXFAKE-26JAN05-T01: trade print: bad yes_price_dollars 1.5000" in p.stdout
    assert "rejected: KXFAKE-26JAN05-T01: candlestick: bad volume_fp lots" in p.stdout
    root = tmp_path / "c"
    trades = {r["trade_id"]: r for r in cat.read_table(root, "trades").to_pylist()}
    assert set(trades) == {"t1", "t-block", "t-old", "t2", "t-hist"}  # the window's, live and historical
    assert trades["t1"]["taker_side"] == "no" and trades["t1"]["taker_book_side"] == "bid"
    assert trades["t-block"]["is_block_trade"] is True and trades["t-old"]["is_block_trade"] is None
    assert {r["source"] for r in trades.values()} == {"backfill"} and trades["t1"]["ts"] == DAY_MS + 3_600_001
    candles = cat.read_table(root, "candles").to_pylist()
    t0 = sorted((r for r in candles if r["ticker"] == T0), key=lambda r: r["ts"])
    assert [(r["ts"], r["close_cc"], r["period_minutes"]) for r in t0] == [
        (DAY_MS + 3_600_000, 4000, 60),
        (DAY_MS + 7_200_000, 4100, 60),
        (DAY_MS + 10_800_000, 4200, 60),
        (DAY_MS + 14_400_000, 4300, 60),
    ]
    assert t0[0]["volume_hundredths"] == 100 and (t0[3]["yes_bid_close_cc"], t0[3]["yes_ask_close_cc"]) == (0, 10_000)
    assert [r["close_cc"] for r in candles if r["ticker"] == OLD] == [1000]  # the historical shape
    markets = {r["ticker"]: r for r in cat.read_table(root, "markets").to_pylist()}
    assert set(markets) == {T1, OLD} and markets[T1]["result"] == "yes" and markets[OLD]["result"] == "no"
    assert markets[T1]["series"] == "KXFAKE"
    assert not kalshi.state.signed  # no key, nothing signed
    before = {t: cat.read_table(root, t).num_rows for t in cat.TABLES}
    again = backfill(capfd, kalshi, tmp_path, "--tickers", f"{T0},{T1},{OLD}")
    assert again.returncode == 0, again.stderr
    assert "0 trade prints, 0 candlesticks, 0 settled markets" in again.stdout, again.stdout
    assert "12 rows already in the catalog" in again.stdout  # 5 prints, 5 candlesticks, 2 markets
    assert {t: cat.read_table(root, t).num_rows for t in cat.TABLES} == before


def test_the_markets_a_database_held_are_backfilled_without_naming_them(kalshi, tmp_path, capfd, clean_env):
    import sqlite3

    from kakashi_tui.adapters.store.writer import Store

    Store(str(tmp_path / "k.db")).close()
    con = sqlite3.connect(tmp_path / "k.db")
    con.execute(
        "INSERT INTO fills (ts, ticker, side, action, requested_hundredths, contracts_hundredths, value_cc, fee_cc, "
        "levels) VALUES (1, ?, 'yes', 'buy', 100, 100, 4200, 100, '[]')",
        (T1,),
    )
    con.commit()
    con.close()
    p = in_process(
        capfd,
        "catalog",
        "backfill",
        "--api-base",
        kalshi.base_url,
        "--db",
        str(tmp_path / "k.db"),
        "--since",
        DAY,
        "--until",
        DAY,
    )
    assert p.returncode == 0, p.stderr
    assert "backfilled 1 of 1 markets" in p.stdout and "1 trade prints" in p.stdout and "1 settled markets" in p.stdout
    assert {r["ticker"] for r in cat.read_table(tmp_path / "catalog", "trades").to_pylist()} == {T1}


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--tickers", "A B"), "--tickers A B: not a name Kalshi could list"),
        (("--tickers", ","), "--tickers names no market"),
        (("--since", "2026-13-01", "--tickers", "T"), "2026-13-01"),
        (("--since", "2026-11-20", "--until", "2026-11-19", "--tickers", "T"), "--until is before --since"),
        (("--period", "5", "--tickers", "T"), "invalid choice"),
        ((), "backfill needs --tickers"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(tmp_path, args, says, capfd, clean_env):
    p = in_process(
        capfd, "catalog", "backfill", "--db", str(tmp_path / "none.db"), "--catalog", str(tmp_path / "c"), *args
    )
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert p.returncode == 2 and len(lines) == 1 and lines[0].startswith("kakashi: ") and says in lines[0], p.stderr


def test_an_unreachable_server_is_one_line_and_loses_nothing_stored(kalshi, tmp_path, capfd, clean_env):
    ok = backfill(capfd, kalshi, tmp_path, "--tickers", T0)
    assert ok.returncode == 0, ok.stderr
    root = tmp_path / "c"
    before = {t: cat.read_table(root, t).num_rows for t in cat.TABLES}
    p = in_process(
        capfd,
        "catalog",
        "backfill",
        "--api-base",
        "http://127.0.0.1:9/trade-api/v2",  # nothing listens
        "--catalog",
        str(root),
        "--tickers",
        T0,
        "--config",
        str(fast_config(tmp_path)),
    )
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert (
        p.returncode == 1
        and len(lines) == 1
        and lines[0].startswith("kakashi: error: cannot backfill from http://127.0.0.1:9/trade-api/v2: ConnectError")
    )
    assert {t: cat.read_table(root, t).num_rows for t in cat.TABLES} == before


def fast_config(tmp_path):
    cfg = tmp_path / "fast.toml"
    cfg.write_text("[kalshi]\nmax_retries = 0\ntimeout_s = 2\nbackoff_base_s = 0.01\n")
    os.chmod(cfg, 0o600)
    return cfg


def test_candle_rows_are_checked_like_any_row(tmp_path):
    w = cat.CatalogWriter(tmp_path / "c")
    assert w.add_candle(DAY_MS, "KXA-1", 5, "backfill") == "candlestick: period 5 is not one of 1, 60, 1440 minutes"
    assert "close_cc" in w.add_candle(DAY_MS, "KXA-1", 60, "backfill", close_cc=10_001)
    assert "ts" in w.add_candle(10**18, "KXA-1", 60, "backfill")
    assert w.add_candle(DAY_MS, "KXA-1", 60, "backfill", close_cc=Decimal(4200)) is not None  # integers only
    assert w.add_candle(DAY_MS, "KXA-1", 60, "backfill", close_cc=4200) is None
    w.close()
    assert cat.read_table(tmp_path / "c", "candles").num_rows == 1


def test_kalshis_own_sdk_parses_every_history_payload_the_loopback_server_sends(kalshi):
    """The official SDK of spec 3.34 (test-only) reads the prints and candlesticks the loopback
    server serves: the fake cannot drift from Kalshi's own models. (Most of its ~3 s is importing
    the SDK's thousand models, once.)"""
    import httpx
    from kalshi_python_sync.models import (
        GetMarketCandlesticksHistoricalResponse,
        GetMarketCandlesticksResponse,
        GetTradesResponse,
    )

    base = kalshi.base_url
    span = {"start_ts": DAY_MS // 1000, "end_ts": DAY_MS // 1000 + 86_400, "period_interval": 60}
    # (the spoiled print, and the one in 3.20's shape, which 3.34's model rightly refuses)
    kalshi.state.prints[:] = [p for p in kalshi.state.prints if p["trade_id"] not in ("t-hostile", "t-old")]
    kalshi.state.candles[T1] = []  # (the spoiled ones, which no model should read)
    with httpx.Client() as c:
        trades = GetTradesResponse.from_dict(c.get(f"{base}/markets/trades", params={"limit": 1000}).json())
        hist = GetTradesResponse.from_dict(c.get(f"{base}/historical/trades").json())
        candles = GetMarketCandlesticksResponse.from_dict(
            c.get(f"{base}/series/KXFAKE/markets/{T0}/candlesticks", params=span).json()
        )
        old = GetMarketCandlesticksHistoricalResponse.from_dict(
            c.get(f"{base}/historical/markets/{OLD}/candlesticks", params=span).json()
        )
        # (GET /historical/markets answers Market objects, whose 3.34 shape is the loopback
        # server's market work, not this one's: its envelope is checked here)
        listed = c.get(f"{base}/historical/markets", params={"tickers": OLD}).json()
    block = [t for t in trades.trades if t.trade_id == "t-block"]
    assert len(block) == 1 and block[0].is_block_trade is True and block[0].taker_book_side == "ask"
    assert [t.trade_id for t in hist.trades] == ["t-hist"]
    assert [c.price.close_dollars for c in candles.candlesticks] == ["0.4000", "0.4100", "0.4200", "0.4300"]
    assert [c.price.close for c in old.candlesticks] == ["0.1000"]
    assert [m["ticker"] for m in listed["markets"]] == [OLD] and listed["cursor"] == ""
