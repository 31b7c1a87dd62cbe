"""One fee source (#22): ``kakashi status``, the report and the engine mark a position at the
same fee terms: the stored market's fee (what the feed found in force) through the config."""

from __future__ import annotations

from decimal import Decimal

import pytest

from kakashi_tui.adapters.kalshi.auth import signer_from
from kakashi_tui.adapters.kalshi.client import KalshiClient
from kakashi_tui.adapters.kalshi.source import KalshiSource
from kakashi_tui.adapters.queries import connect_readonly, read_status
from kakashi_tui.adapters.source import Estimator
from kakashi_tui.adapters.store.writer import Store
from kakashi_tui.core.models import Estimate
from kakashi_tui.core.money import fmt_cc
from kakashi_tui.frontends.report.postmortem import gather
from kakashi_tui.testing.fake_kalshi import FakeKalshi, FakeKalshiServer, make_test_key
from kakashi_tui.trading.engine import Engine, EngineConfig
from tests.clirun import in_process

KEY_ID = "fee-key"
HALF = "KXZOO-26JAN05-ACTI"  # a market of the fake's 0.5-multiplier series


@pytest.fixture
def keyed(tmp_path):
    path, pub = make_test_key(tmp_path)
    st = FakeKalshi.with_markets(3, public_key=pub, key_id=KEY_ID, page_size=100)
    st.lifecycle_zoo()
    with FakeKalshiServer(st) as srv:
        srv.key_path = path
        yield srv


class Bullish(Estimator):
    def __init__(self, tickers):
        self.tickers = set(tickers)

    def estimates(self, tickers, now_ms):
        return [
            Estimate(ticker=t, p_hat=Decimal("0.95"), source="test", ts=now_ms) for t in tickers if t in self.tickers
        ]


def _engine(srv, db, cfg=None):
    signer, _ = signer_from(KEY_ID, srv.key_path, env={})
    c = KalshiClient(base_url=srv.base_url, signer=signer, backoff_base=0.01, timeout=2.0, reads_per_s=500)
    source = KalshiSource(c, depth_for=lambda: {HALF})
    return Engine(Store(db), source, [Bullish([HALF])], cfg or EngineConfig(insert_latency_ms=0)), c  # (filled at once)


def test_status_and_the_report_mark_a_half_fee_position_as_the_engine_does(keyed, tmp_path, capfd):
    """A position on a 0.5-multiplier series: ``kakashi status`` once marked its sale at the full
    fee, so its equity was not the engine's."""
    db = tmp_path / "k.db"
    engine, c = _engine(keyed, db)
    with c:
        rep = engine.tick()
        assert rep.fills == 1 and engine.held_tickers() == {HALF}
        assert engine.markets[HALF].fee_multiplier == Decimal("0.5")
        want = engine.equity()
    engine.store.close()
    con = connect_readonly(db)
    try:
        assert read_status(con, db, EngineConfig().fees()).equity_cc == want
    finally:
        con.close()
    assert gather(db, fees=EngineConfig().fees()).end_equity == want
    p = in_process(capfd, "status", "--db", str(db))
    assert p.returncode == 0, p.stderr
    assert f"equity {fmt_cc(want)} |" in p.stdout.splitlines()[0]


def test_status_marks_at_the_configs_series_fee_as_the_engine_does(keyed, tmp_path, capfd):
    db = tmp_path / "k.db"
    cfg_file = tmp_path / "c.toml"
    cfg_file.write_text("[fees.series]\nKXZOO = 0.02\n")
    from kakashi_tui.trading.config import load_config

    cfg = load_config(str(cfg_file)).engine_config().model_copy(update={"insert_latency_ms": 0})
    engine, c = _engine(keyed, db, cfg)
    with c:
        assert engine.tick().fills == 1
        assert engine.fee_terms(HALF).coefficient == Decimal("0.02")
        want = engine.equity()
    engine.store.close()
    p = in_process(capfd, "status", "--db", str(db), "--config", str(cfg_file))
    assert p.returncode == 0, p.stderr
    assert f"equity {fmt_cc(want)} |" in p.stdout.splitlines()[0]


def test_a_hand_edited_fee_column_is_a_corrupt_database(keyed, tmp_path, capfd):
    import sqlite3

    db = tmp_path / "k.db"
    engine, c = _engine(keyed, db)
    with c:
        assert engine.tick().fills == 1
    engine.store.close()
    with sqlite3.connect(db) as w:
        w.execute("UPDATE markets SET fee_multiplier = 'lots' WHERE ticker = ?", (HALF,))
    p = in_process(capfd, "status", "--db", str(db))
    assert p.returncode == 1 and "corrupt database: markets row" in p.stderr and "Traceback" not in p.stderr
