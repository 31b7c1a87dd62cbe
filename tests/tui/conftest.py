from __future__ import annotations

import pytest

from kakashi_tui.service import TradingService
from kakashi_tui.tui.app import KakashiApp
from tests.conftest import SIM_START_MS, make_engine

FIXED_WALL = SIM_START_MS / 1000 + 3600  # exports are stamped with this "wall clock"


def desk_engine(db_path, ticks: int = 40):
    e = make_engine(db_path)
    for _ in range(ticks):
        e.tick()
    e.last_latency_ms = 1.5  # measured latency varies run to run; pin it for pictures
    return e


def desk_app(engine, tmp_path, interval: float = 0.5, ticks: int | None = None, **kw) -> KakashiApp:
    """The desk over a service that owns ``engine`` (tests step it by hand unless autostart)."""
    kw.setdefault("autostart", False)
    service = TradingService(engine, interval=interval, max_ticks=ticks)
    return KakashiApp(service, reports_dir=tmp_path / "reports", theme="textual-dark", cursor_blink=False,
                      animations=False, clock=lambda: FIXED_WALL, **kw)


@pytest.fixture
def engine(tmp_path):
    e = desk_engine(tmp_path / "desk.db")
    yield e
    e.store.close()
