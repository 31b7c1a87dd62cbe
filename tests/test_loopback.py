"""Kakashi against a Kalshi-compatible server on 127.0.0.1, with faults."""

import os
import subprocess
import sys

import pytest

from kakashi_tui.adapters.kalshi import KalshiClient, KalshiHTTPError, KalshiSource
from kakashi_tui.adapters.store import MarketRow, RejectedRow, SnapshotRow, Store
from kakashi_tui.engine import Engine, EngineConfig
from kakashi_tui.testing.fake_kalshi import FakeKalshi, FakeKalshiServer

ENV = {k: v for k, v in os.environ.items() if not k.startswith("KAKASHI_")}


@pytest.fixture
def kalshi():
    with FakeKalshiServer(FakeKalshi.with_markets(12)) as srv:
        yield srv


def client(srv, **kw):
    kw.setdefault("backoff_base", 0.01)
    kw.setdefault("timeout", 2.0)
    return KalshiClient(base_url=srv.base_url, **kw)


def test_pages_markets_over_http(kalshi):
    with client(kalshi) as c:
        rows = list(c.iter_markets(limit=1000))
    assert len(rows) == 12 and len({r["ticker"] for r in rows}) == 12
    pages = [p for m, p in kalshi.state.requests if p.startswith("/trade-api/v2/markets?")]
    assert len(pages) == 3  # 5 + 5 + 2
    assert {m for m, _ in kalshi.state.requests} == {"GET"}


def test_repeated_cursor_stops(kalshi):
    kalshi.state.repeat_cursor = True
    with client(kalshi) as c:
        rows = list(c.iter_markets())
    assert len(rows) == 10  # page 1, page 2, then the repeated cursor ends it


@pytest.mark.parametrize("fault", ["429", "500", "502", "503", "drop", "slow"])
def test_each_transient_fault_is_retried(kalshi, fault):
    kalshi.state.slow_seconds = 1.5
    kalshi.state.fail_next(fault)
    with client(kalshi, timeout=0.5) as c:
        m = c.get_market("KXFAKE-26JAN05-T03")
    assert m["ticker"] == "KXFAKE-26JAN05-T03" and c.retries_made == 1


def test_retry_after_is_honoured(kalshi):
    slept = []
    kalshi.state.fail_next("429-retry-after")
    with client(kalshi, sleep=slept.append) as c:
        c.get_market("KXFAKE-26JAN05-T03")
    assert slept == [1.0]


def test_retries_are_bounded(kalshi):
    kalshi.state.fail_next(*["503"] * 6)
    with client(kalshi, max_retries=2) as c:
        with pytest.raises(KalshiHTTPError, match="gave up after 3 attempts"):
            c.get_market("KXFAKE-26JAN05-T03")
    assert len(kalshi.state.requests) == 3


def test_malformed_json_and_404_are_clear_errors(kalshi):
    kalshi.state.fail_next("malformed-json")
    with client(kalshi) as c:
        with pytest.raises(KalshiHTTPError, match="malformed JSON"):
            list(c.iter_markets())
        with pytest.raises(KalshiHTTPError, match="404"):
            c.get_market("NOPE")


def test_bad_rows_rejected_with_reasons_good_rows_stored(kalshi, tmp_path):
    kalshi.state.bad_rows = {"ask-below-bid", "price-over-1", "missing-ticker", "settled-no-result"}
    store = Store(tmp_path / "k.db")
    with client(kalshi) as c:
        engine = Engine(store, KalshiSource(c), [], EngineConfig())
        rep = engine.tick()
    assert rep.saved == 12 and rep.rejected == 4
    reasons = " | ".join(r.reason for r in RejectedRow.select())
    for fragment in ("crossed", "outside [0, 1]", "missing ticker", "no result"):
        assert fragment in reasons
    assert SnapshotRow.select().count() == 12
    # a market whose quote was bad is still a valid market; only its snapshot is refused
    assert MarketRow.select().count() == 14
    assert SnapshotRow.select().where(SnapshotRow.ticker.in_(["KXBAD-ASKBID", "KXBAD-PRICE"])).count() == 0
    store.close()


def test_an_empty_book_is_a_quiet_market_not_a_bad_row(kalshi, tmp_path):
    kalshi.state.empty_books = True
    store = Store(tmp_path / "k.db")
    t = kalshi.state.markets[0].ticker
    with client(kalshi) as c:
        engine = Engine(store, KalshiSource(c, depth_for=lambda: {t}), [], EngineConfig())
        rep = engine.tick()
    assert rep.saved == 12 and rep.rejected == 0  # stored as "no quote" (issue #10)
    assert RejectedRow.select().count() == 0
    store.close()


def test_loop_keeps_ticking_through_an_outage(kalshi, tmp_path):
    store = Store(tmp_path / "k.db")
    with client(kalshi, max_retries=1) as c:
        engine = Engine(store, KalshiSource(c), [], EngineConfig())
        first = engine.tick()
        kalshi.state.fail_next("503", "503")
        outage = engine.tick()
        back = engine.tick()
    assert first.saved == 12 and not first.errors
    assert outage.saved == 0 and "503" in outage.errors[0] and "feed errors 1" in outage.log_line()
    assert back.saved == 12 and not back.errors and engine.tick_count == 3
    store.close()


def kakashi(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "kakashi_tui", *args], capture_output=True, text=True,
                          timeout=timeout, env=ENV)


def fast_config(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[kalshi]\ntimeout_s = 1.0\nmax_retries = 1\nbackoff_base_s = 0.01\n")
    return str(cfg)


def test_snapshot_command_against_the_server(kalshi, tmp_path):
    kalshi.state.bad_rows = {"missing-ticker"}
    p = kakashi("snapshot", "--source", "kalshi", "--api-base", kalshi.base_url, "--db", str(tmp_path / "k.db"),
                "--config", fast_config(tmp_path), "--strict")
    assert p.returncode == 0, p.stderr
    assert sum(1 for ln in p.stdout.splitlines() if ln.startswith("Snapshot saved for KXFAKE-")) == 12
    assert p.stdout.splitlines()[-1] == "snapshot: 12 saved, 1 rejected from kalshi"


def test_headless_loop_against_the_server_through_faults(kalshi, tmp_path):
    kalshi.state.fail_next("503", "503", "drop", "drop")
    p = kakashi("run", "--headless", "--source", "kalshi", "--api-base", kalshi.base_url, "--ticks", "4",
                "--interval", "0", "--db", str(tmp_path / "k.db"), "--config", fast_config(tmp_path))
    assert p.returncode == 0, p.stderr
    ticks = [ln for ln in p.stdout.splitlines() if ln.startswith("tick ")]
    assert len(ticks) == 4
    assert "feed errors 1" in ticks[0] and "feed errors 1" in ticks[1]
    assert "saved 12" in ticks[2] and "saved 12" in ticks[3]
    assert "Traceback" not in p.stderr


def test_a_held_market_that_closes_is_still_fetched_until_it_settles(kalshi, tmp_path):
    """The open-markets listing drops a market when it closes; the position in it must still be
    marked and, once Kalshi settles it, paid out."""
    from decimal import Decimal

    from kakashi_tui.core.models import Estimate
    from kakashi_tui.adapters.store import LedgerRow

    target = kalshi.state.markets[0]

    class Bullish:  # a belief well above the ask, for one market
        def estimates(self, tickers, now_ms):
            return [Estimate(ticker=t, p_hat=Decimal("0.99"), source="test", ts=now_ms)
                    for t in tickers if t == target.ticker]

    store = Store(tmp_path / "k.db")
    with client(kalshi) as c:
        source = KalshiSource(c, depth_for=lambda: {target.ticker})
        engine = Engine(store, source, [Bullish()], EngineConfig())
        source.watch_for = engine.held_tickers
        first = engine.tick()
        assert first.fills == 1 and engine.held_tickers() == {target.ticker}
        target.status = "closed"
        closed = engine.tick()
        assert closed.saved == 12 and not closed.errors  # 11 open + the held, closed one
        assert MarketRow.get(MarketRow.ticker == target.ticker).status == "closed"
        target.status, target.result = "settled", "yes"
        settled = engine.tick()
    assert settled.settled == 1 and engine.held_tickers() == set()
    assert LedgerRow.select().where(LedgerRow.kind == "settle").count() == 1
    store.close()


def test_an_operators_ticker_list_still_includes_what_is_held(kalshi):
    with client(kalshi) as c:
        source = KalshiSource(c, tickers=["KXFAKE-26JAN05-T01"])
        source.watch_for = lambda: {"KXFAKE-26JAN05-T05"}
        rows = source.fetch().rows
    assert sorted(r.market["ticker"] for r in rows) == ["KXFAKE-26JAN05-T01", "KXFAKE-26JAN05-T05"]
