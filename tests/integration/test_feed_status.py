"""Which feed is live, as the published view, the desk's status bar and the headless log say it:
``websocket`` while the loopback WebSocket serves books, ``polling (...)`` while it is refused,
``simulated`` on the simulator."""

from __future__ import annotations

import io
import time

import pytest

from kakashi_tui.adapters.source import FetchBatch, Source
from kakashi_tui.trading.service import TradingService
from kakashi_tui.trading.view import FeedStatus, feed_status
from tests.conftest import make_engine
from tests.integration.loopback_ws import signed_loopback, wait_for

TICKERS = ("KXFAKE-26JAN05-T00", "KXFAKE-26JAN05-T01")


@pytest.fixture
def loopback(tmp_path, monkeypatch):
    """A signed REST server and a WebSocket server on 127.0.0.1 with a throwaway key, and a
    function that builds a Kalshi engine over them (through runtime, as `kakashi run` does)."""
    from kakashi_tui.trading.runtime import Options, build_engine

    engines = []
    with signed_loopback(tmp_path, monkeypatch, TICKERS) as (ws, cfg):

        def build():
            e = build_engine(
                Options(source="kalshi", db=str(tmp_path / f"k{len(engines)}.db"), tickers=list(TICKERS)), cfg
            )
            engines.append(e)
            return e

        try:
            yield ws, build
        finally:
            for e in engines:
                e.source.close()
                e.store.close()


def test_a_source_without_a_websocket_says_what_it_is(tmp_path):
    engine = make_engine(tmp_path / "sim.db")
    try:
        engine.tick()
        view = TradingService(engine).publish_view()
        assert view.feed == FeedStatus("simulated") and view.feed.label == "simulated"
    finally:
        engine.store.close()

    class Named(Source):  # a source that says nothing of its own feed: its kind, by its name
        def __init__(self, name):
            self.name = name

        def now_ms(self):
            return 0

        def fetch(self):
            return FetchBatch()

    assert feed_status(Named("kalshi")) == FeedStatus("polling")  # no key: REST polling, not a fault
    assert not feed_status(Named("kalshi")).degraded
    assert feed_status(Named("replay")).label == "replay"


def test_the_view_says_websocket_when_the_loopback_websocket_is_live(loopback):
    ws, build = loopback
    service = TradingService(build(), interval=0)
    feed = service._engine.source.feed  # (the test waits on it; front-ends read only views)
    assert wait_for(lambda: feed.live and len(feed.books()) == 2)
    assert service.step() is not None
    view = service.publish_view()
    assert view.feed == FeedStatus("websocket", "2 live books") and not view.feed.degraded
    assert service.feed == view.feed


def test_the_view_says_polling_and_why_when_the_websocket_is_refused(loopback):
    ws, build = loopback
    ws.refuse = True  # a server that speaks only REST
    service = TradingService(build(), interval=0)
    feed = service._engine.source.feed
    assert wait_for(lambda: "503" in feed.health.detail)
    t0 = time.monotonic()
    assert service.step() is not None  # trading does not wait on the WebSocket
    assert time.monotonic() - t0 < 5
    view = service.publish_view()
    assert view.feed.kind == "polling" and view.feed.degraded
    assert view.feed.detail.startswith("websocket ") and "503" in view.feed.detail
    assert view.feed.label.startswith("polling (websocket ")
    assert {m.ticker for m in view.markets} >= set(TICKERS)  # the polled books trade on


def test_the_headless_log_says_the_feed_once_and_again_only_when_it_switches(loopback):
    from kakashi_tui.frontends.cli.main import _feed_changes

    ws, build = loopback
    ws.refuse = True
    service = TradingService(build(), interval=0)
    feed = service._engine.source.feed
    out = io.StringIO()
    say = _feed_changes(service, out)
    service.on_report(say)
    assert wait_for(lambda: "503" in feed.health.detail)
    for _ in range(3):
        service.step()
    ws.refuse = False
    assert wait_for(lambda: feed.live and len(feed.books()) == 2)
    for _ in range(3):
        service.step()
    lines = out.getvalue().splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith("kakashi: feed polling (websocket ") and "503" in lines[0]
    assert lines[1] == "kakashi: feed websocket (2 live books)"


def status_text(app) -> str:
    from kakashi_tui.frontends.desk.widgets.status_bar import StatusBar

    return app.query_one(StatusBar).render().plain


@pytest.mark.parametrize("size", [(120, 40), (80, 24)])
async def test_the_desk_status_bar_says_which_feed_is_live(loopback, tmp_path, size):
    from tests.desk.conftest import desk_app

    ws, build = loopback
    ws.refuse = True
    engine = build()
    feed = engine.source.feed
    app = desk_app(engine, tmp_path)
    async with app.run_test(size=size) as pilot:
        assert wait_for(lambda: "503" in feed.health.detail)
        app.service.step()
        app.refresh_view()
        await pilot.pause()
        text = status_text(app)
        assert "kalshi │ polling (ws down)" in text and "websocket" not in text
        if size[0] >= 120:
            assert "│ HTTP 503 │" in text  # the reason, when there is room
        ws.refuse = False
        assert wait_for(lambda: feed.live and len(feed.books()) == 2)
        app.service.step()
        app.refresh_view()
        await pilot.pause()
        text = status_text(app)
        assert "kalshi │ websocket" in text and "polling" not in text
        assert len(text.rstrip()) <= size[0]
