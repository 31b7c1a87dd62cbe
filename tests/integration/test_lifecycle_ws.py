"""``market_lifecycle_v2`` over the WebSocket, end to end (issue #22, item 6): frames the loopback
WebSocket sends (``FakeKalshiWS.send_lifecycle``) reach a running engine through ``BookFeed`` and
``LiveBookSource``, with no call into the source: ``determined`` with a settlement value settles
a held market while Kalshi's listing still says active, ``price_level_structure_updated``
replaces a market's grid (its off-grid book is rejected from then on), and an ``exchange_index``
change moves a market to a halted shard (its decisions paused)."""

from __future__ import annotations

import time
from decimal import Decimal as D

from kakashi_tui.adapters.kalshi.client import KalshiClient
from kakashi_tui.adapters.kalshi.source import KalshiSource
from kakashi_tui.adapters.kalshi.ws import BookFeed, LiveBookSource
from kakashi_tui.adapters.source import Estimator
from kakashi_tui.adapters.store.schema import RejectedRow
from kakashi_tui.adapters.store.writer import Store
from kakashi_tui.core.models import Estimate
from kakashi_tui.core.validate import OFF_GRID
from kakashi_tui.testing.fake_kalshi import FakeKalshi, FakeKalshiServer
from kakashi_tui.testing.fake_kalshi_ws import FakeKalshiWS
from kakashi_tui.trading.engine import Engine, EngineConfig

LINEAR = [{"start": "0.0000", "end": "1.0000", "step": "0.0100"}]


class Beliefs(Estimator):
    def __init__(self) -> None:
        self.p: dict[str, D] = {}

    def estimates(self, tickers, now_ms):
        return [Estimate(ticker=t, p_hat=self.p[t], source="test", ts=now_ms) for t in tickers if t in self.p]


def wait_for(cond, what, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, what
        time.sleep(0.005)


def test_lifecycle_frames_over_the_websocket_settle_regrid_and_move_shards(tmp_path):
    state = FakeKalshi.with_markets(3, page_size=100, require_signature=False)
    t0, t1, t2 = (m.ticker for m in state.markets)  # t2: a deci-cent book
    state.halted_shards = {1}  # shard 1 is halted; every market starts on shard 0
    ws = FakeKalshiWS((t0,), interval=0.01)
    ws.start()
    beliefs = Beliefs()
    beliefs.p[t0] = D("0.99")
    try:
        with FakeKalshiServer(state) as rest:
            client = KalshiClient(base_url=rest.base_url, backoff_base=0.01, timeout=2.0, reads_per_s=500)
            polled = KalshiSource(client, depth_for=lambda: set(beliefs.p))
            feed = BookFeed(ws.url, lambda: {}, backoff_base=0.02, lifecycle=True)
            source = LiveBookSource(polled, feed, also=lambda: set(beliefs.p), on_lifecycle=polled.apply_lifecycle)
            engine = Engine(
                Store(tmp_path / "k.db"), source, [beliefs], EngineConfig(insert_latency_ms=0)
            )  # (filled at once)
            source.start()
            try:
                rep = engine.tick()
                assert rep.fills == 1 and engine.held_tickers() == {t0}
                assert rep.rejected == 0 and engine.markets[t1].shard == 0
                # (sent as soon as the feed has subscribed to the channel)
                ws.send_lifecycle(
                    "market_lifecycle_v2",
                    {"market_ticker": t0, "event_type": "determined", "settlement_value": "1.0000"},
                )
                ws.send_lifecycle(
                    "market_lifecycle_v2",
                    {"market_ticker": t2, "event_type": "price_level_structure_updated", "price_ranges": LINEAR},
                )
                ws.send_lifecycle(
                    "market_lifecycle_v2", {"market_ticker": t1, "event_type": "metadata_updated", "exchange_index": 1}
                )
                wait_for(lambda: feed.health.lifecycle >= 3, "the lifecycle frames did not arrive")
                beliefs.p[t1] = D("0.99")  # an edge on the market now on the halted shard
                with state.lock:
                    assert state.market(t0).status == "active"  # the listing has not caught up
                rep = engine.tick()
                assert rep.settled == 1 and not engine.account.open_positions()  # settled without a poll
                assert engine.store.outcome(t0).result.value == "yes"
                assert engine.markets[t1].shard == 1  # moved
                by = {d.ticker: d for d in rep.decisions}
                assert by[t1].accepted is False and by[t1].reason == "exchange shard 1 halted"
                assert rep.rejected == 1  # t2's deci-cent book is off its new cent grid
                assert RejectedRow.get(RejectedRow.ticker == t2).reason.startswith(OFF_GRID)
            finally:
                source.close()
                engine.store.close()
    finally:
        ws.stop()
