"""A halted exchange shard on the desk (#22 item 3): the status line says SHARD n HALTED while
the exchange says so, at 120x40 and at 80x24, and stops saying it when the shard trades again."""

from __future__ import annotations

import pytest

from kakashi_tui.adapters.store.writer import Store
from kakashi_tui.frontends.desk.app import KakashiApp
from kakashi_tui.frontends.desk.widgets.status_bar import StatusBar
from kakashi_tui.trading.config import KakashiConfig
from kakashi_tui.trading.engine import Engine
from kakashi_tui.trading.service import TradingService
from tests.desk.conftest import Beliefs, KalshiShaped


class Shards(KalshiShaped):
    """The Kalshi-shaped feed, whose exchange can halt a shard."""

    halted: frozenset[int] = frozenset()

    def fetch(self):
        b = super().fetch()
        b.halted_shards = self.halted
        return b


@pytest.mark.parametrize("size", [(120, 40), (80, 24)])
async def test_the_status_line_says_a_shard_is_halted(tmp_path, size):
    src = Shards()
    engine = Engine(Store(tmp_path / "k.db"), src, [Beliefs()], KakashiConfig().engine_config())
    service = TradingService(engine, interval=0.5)
    app = KakashiApp(service, reports_dir=tmp_path / "reports", cursor_blink=False, animations=False, autostart=False)
    try:
        async with app.run_test(size=size) as pilot:
            src.halted = frozenset({1})
            service.step()
            app.refresh_view()
            await pilot.pause()
            bar = str(app.query_one(StatusBar).render())
            assert "SHARD 1 HALTED" in bar and "RUNNING" in bar, bar
            src.halted = frozenset()
            service.step()
            app.refresh_view()
            await pilot.pause()
            assert "HALTED" not in str(app.query_one(StatusBar).render())
    finally:
        engine.store.close()
