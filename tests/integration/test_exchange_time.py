"""Freshness from the exchange's time (issue #22, item 2): a WebSocket book that arrives 4 s old
is refused by the stale-quote guard although it was received just now; the catalog keeps both
times, so a replay refuses the same quotes; the desk shows the exchange's age."""

from __future__ import annotations

import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from kakashi_tui.adapters.catalog import CATALOG_VERSION, read_table
from kakashi_tui.adapters.kalshi.schemas import frame_exchange_ms
from kakashi_tui.testing.fake_kalshi import FakeKalshi, FakeKalshiServer, make_test_key
from kakashi_tui.testing.fake_kalshi_ws import FakeKalshiWS
from kakashi_tui.trading.config import CatalogSection, KakashiConfig, KalshiSection, RiskSection
from kakashi_tui.trading.runtime import Options, build_service
from tests.integration.loopback_ws import wait_for
from tests.integration.test_columnar import cash_of
from tests.integration.test_recorded_parity import FAST, replayed, write_beliefs
from tests.integration.test_replay import tables

T0 = 1_796_000_000_000


@pytest.mark.parametrize(
    ("body", "sending", "want"),
    [
        ({"ts_ms": T0, "ts": 1}, T0 + 5, T0),  # ts_ms first
        ({"ts": T0 // 1000}, T0 + 5, T0 + 5),  # then the frame's sending time (ms)
        ({"ts": T0 // 1000}, None, T0 // 1000 * 1000),  # then ts, epoch seconds
        ({"ts": "2026-11-30T08:53:20Z"}, None, 1_796_028_800_000),  # or RFC 3339
        ({"ts_ms": "soon", "ts": "lunch"}, "x", None),  # nothing that reads as a time
        ({"ts_ms": 5}, None, None),  # 1970: not an exchange's time
        ({"ts_ms": True}, None, None),
        (None, T0, T0),
    ],
)
def test_a_frames_exchange_time(body, sending, want):
    assert frame_exchange_ms(body, sending) == want


def test_a_book_that_arrives_4_s_old_is_refused_as_stale_live_and_in_the_replay(tmp_path, monkeypatch):
    key_path, pub = make_test_key(tmp_path)
    state = FakeKalshi.with_markets(3, public_key=pub, key_id="ws-key", account_limits=FAST)
    target = state.markets[0].ticker
    ws = FakeKalshiWS((target, state.markets[1].ticker), interval=0.05)  # (slow: the book keeps both sides)
    ws.require_key = True
    ws.lag_ms = 4_000  # every book frame stamped 4 s before it is sent
    ws.start()
    monkeypatch.setenv("KAKASHI_KALSHI_KEY_ID", "ws-key")
    monkeypatch.setenv("KAKASHI_KALSHI_KEY_FILE", key_path)
    beliefs = tmp_path / "beliefs.toml"
    write_beliefs(beliefs, {target: "0.97"})
    db, root = tmp_path / "live.db", tmp_path / "catalog"
    reports = []
    try:
        with FakeKalshiServer(state) as rest:
            cfg = KakashiConfig(
                kalshi=KalshiSection(api_base=rest.base_url, ws_url=ws.url, backoff_base_s=0.02, timeout_s=2.0),
                catalog=CatalogSection(),
                risk=RiskSection(max_quote_age_s=3),
            )
            opts = Options(source="kalshi", db=str(db), beliefs=str(beliefs), record=True, catalog=str(root))
            service, close = build_service(opts, cfg, interval=0.01)
            try:
                feed = service._engine.source.inner.feed  # (the test looks inside; front-ends never do)
                assert wait_for(lambda: feed.live and target in feed.books() and feed.lag_ms >= 3_500)
                for _ in range(3):
                    reports.append(service.step())
                view = service.publish_view()
                (line,) = [m for m in view.markets if m.ticker == target]
                assert 4_000 <= line.age_ms < 6_000  # the desk's age is the exchange's
                assert "s behind the exchange" in view.feed.detail
                ws.lag_ms = 0  # the feed catches up: the next frames are fresh
                assert wait_for(lambda: feed.lag_ms < 1_000)
                reports.append(service.step())
            finally:
                service.stop()
                close()
    finally:
        ws.stop()
    for rep in reports[:3]:
        (d,) = rep.decisions
        assert not d.accepted and d.reason.startswith("stale quote (") and "> 3000 ms" in d.reason
        assert 4_000 <= int(d.reason.split("(")[1].split()[0]) < 6_000
    assert reports[3].decisions[0].accepted  # received just as late, but fresh by the exchange's clock
    # the catalog keeps both times: the quote's (exchange) and its receipt
    snaps = [r for r in read_table(root, "snapshots").to_pylist() if r["ticker"] == target]
    assert len(snaps) == 4 and all(4_000 <= r["recv_ts"] - r["ts"] < 6_000 for r in snaps[:3])
    assert 0 <= snaps[3]["recv_ts"] - snaps[3]["ts"] < 1_000
    deltas = ds.dataset(root / "book_deltas", format="parquet", partitioning="hive").to_table().to_pylist()
    stamped = [r for r in deltas if r["kind"] != "reset"]
    assert stamped and all(r["exchange_ts"] is not None and r["exchange_ts"] <= r["ts"] for r in stamped)
    assert any(r["ts"] - r["exchange_ts"] >= 4_000 for r in stamped)
    files = list((root / "book_deltas").rglob("*.parquet"))
    version = str(CATALOG_VERSION).encode()  # (3 added exchange_ts: written at the version in force)
    assert CATALOG_VERSION >= 3
    assert all(pq.read_schema(f).metadata[b"kakashi.catalog_version"] == version for f in files)
    # a replay refuses the same quotes at the same ticks, both ways
    live = tables(db)
    for columnar in (False, True):
        out = tmp_path / f"replay-{columnar}.db"
        replayed(out, root, cfg, columnar)
        assert tables(out)["decisions"] == live["decisions"]
        assert tables(out)["ledger"][1:] == live["ledger"][1:] and cash_of(out) == cash_of(db)
