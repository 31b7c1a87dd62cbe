"""Issue #19, first slice: panels that never freeze silently, and liveness the operator can see."""

from __future__ import annotations

import asyncio
import io
import os
import threading
import time
from types import SimpleNamespace

import pytest
from textual.screen import ModalScreen

from kakashi_tui.adapters import alerts as al
from kakashi_tui.adapters.alerts import FeedWatch
from kakashi_tui.adapters.source import FetchBatch
from kakashi_tui.adapters.store.writer import Store
from kakashi_tui.frontends.cli.main import _feed_changes, _liveness_lines
from kakashi_tui.frontends.desk import app as app_module
from kakashi_tui.frontends.desk.app import KakashiApp
from kakashi_tui.frontends.desk.widgets.bankroll import BankrollPanel
from kakashi_tui.frontends.desk.widgets.decision_log import DecisionLog
from kakashi_tui.frontends.desk.widgets.equity_chart import EquityChart
from kakashi_tui.frontends.desk.widgets.market_detail import MarketDetail
from kakashi_tui.frontends.desk.widgets.positions import PositionsPanel
from kakashi_tui.frontends.desk.widgets.risk_panel import RiskPanel
from kakashi_tui.frontends.desk.widgets.status_bar import StatusBar
from kakashi_tui.frontends.fmt import fmt_hms
from kakashi_tui.trading import liveness as lv
from kakashi_tui.trading.config import KakashiConfig
from kakashi_tui.trading.engine import Engine
from kakashi_tui.trading.liveness import Heartbeat, assess
from kakashi_tui.trading.service import TradingService
from tests.desk.conftest import Beliefs, KalshiShaped, desk_app
from tests.desk.test_pilot import wait_for

SIZE = (120, 40)
PANELS = (MarketDetail, PositionsPanel, BankrollPanel, EquityChart, RiskPanel, DecisionLog)


def panel_ticks(app) -> dict[str, int]:
    """The tick of the view each panel last drew."""
    out = {}
    for cls in PANELS:
        v = app.query_one(cls).view
        out[cls.__name__] = v.tick if v is not None else -1
    return out


async def _open_close(app, pilot, open_keys: tuple[str, ...], close_key: str) -> bool:
    """Open a dialog with ``open_keys``, close it with ``close_key``: True if one opened."""
    await pilot.press(*open_keys)
    opened = await wait_for(pilot, lambda: isinstance(app.screen, ModalScreen), tries=50, seconds=0)
    if opened:
        await pilot.press(close_key)
        await wait_for(pilot, lambda: not isinstance(app.screen, ModalScreen), tries=50)
    return opened


#: ``KAKASHI_FREEZE_REPEAT=100 pytest -n 2 tests/desk/test_liveness.py -k dialog_closes`` runs the
#: freeze test 100 times (issue #19 asks for 100 passes in a row); the suite runs it once.
FREEZE_REPEAT = int(os.environ.get("KAKASHI_FREEZE_REPEAT", "1"))


@pytest.mark.parametrize("attempt", range(FREEZE_REPEAT))
async def test_panels_keep_moving_after_every_dialog_closes(engine, tmp_path, attempt):
    """Open and close every dialog many times while the service ticks: after each close, every
    panel catches up with the newest view. A panel step scheduled with ``call_after_refresh``
    while a dialog was on top lived on that dialog's screen and died with it, and the panels
    stopped for good while the status line kept ticking (4 times in 6 after r, y)."""
    app = desk_app(engine, tmp_path, autostart=True, interval=0.25)
    dialogs = [
        (("question_mark",), "escape"),
        (("b",), "escape"),
        (("x",), "escape"),
        (("enter",), "escape"),
        (("f",), "n"),
        (("k", "r"), "y"),
        (("q",), "n"),
    ]
    async with app.run_test(size=SIZE) as pilot:
        assert await wait_for(pilot, lambda: app.view is not None and app.view.tick > 42)
        opened = 0
        for round_ in range(2):  # (KAKASHI_FREEZE_REPEAT runs the whole test again, for more rounds)
            for keys, close in dialogs:
                opened += await _open_close(app, pilot, keys, close)
                target = app.view.tick
                # Up to 30 s: a frozen panel never catches up, a loaded machine (load 10-15 on 2
                # cores, panels painted one a late frame) does, in seconds; 3 s was too short.
                caught_up = await wait_for(pilot, lambda t=target: min(panel_ticks(app).values()) >= t, tries=1500)
                assert caught_up, (
                    f"round {round_}, after {keys}: panels {panel_ticks(app)} behind view {target}; now view "
                    f"{app.view.tick}, due {sorted(app._panels_due)}, timer {app._panel_timer!r}, "
                    f"screens {[type(s).__name__ for s in app.screen_stack]}, running {app.service.running}"
                )
        assert opened >= 2 * 5  # every dialog that can open did (flatten and quit need open positions)
        await app._stop_and_exit()


# -- a hung feed and a stalled engine are visible at once ----------------------------------------
class Hangable(KalshiShaped):
    """The Kalshi-shaped feed, whose next fetch can be made to hang until released (a server that
    accepts and never answers), or to end the engine's thread."""

    def __init__(self) -> None:
        super().__init__()
        self.hang = threading.Event()
        self.release = threading.Event()
        self.hanging = threading.Event()
        self.die = False

    def fetch(self):
        if self.die:
            raise SystemExit("the engine's thread ends")  # not an Exception: nothing catches it
        if self.hang.is_set():
            self.hanging.set()
            self.release.wait(30)
            self.hang.clear()
            self.hanging.clear()
        return super().fetch()


class FakeWall:
    def __init__(self, t: float = 1_767_600_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def hb(
    phase="fetching",
    since=0,
    now=0,
    due=None,
    thread="running",
    interval=0.5,
    stale=30_000,
    last=None,
    feed_failing=False,
):
    return Heartbeat(
        now_ms=now,
        thread=thread,
        phase=phase,
        phase_since_ms=since,
        due_ms=due,
        last_tick_ms=last,
        interval_s=interval,
        stale_ms=stale,
        feed_failing=feed_failing,
    )


@pytest.mark.parametrize(
    "beat, level, since",
    [
        (hb(now=2_999), lv.OK, None),  # a few intervals, never under 3 s
        (hb(now=3_000), lv.SLOW, 0),
        (hb(now=29_999), lv.SLOW, 0),
        (hb(now=30_000), lv.DOWN, 0),  # the stale-quote limit: no quote it brings would be tradable
        (hb(since=5_000, now=64_999, interval=20), lv.OK, None),  # 3 intervals of 20 s: late at 60 s,
        (hb(since=5_000, now=65_000, interval=20), lv.DOWN, 5_000),  # past the stale limit already
        (hb(phase="writing", now=2_000), lv.OK, None),
        (hb(phase="writing", since=1_000, now=4_000), lv.STALLED, 1_000),
        (hb(phase="waiting", due=10_000, now=12_999), lv.OK, None),
        (hb(phase="waiting", due=10_000, now=13_000), lv.STALLED, 10_000),  # due, and no tick since
        (hb(thread="dead", since=7_000, now=8_000), lv.DEAD, 7_000),
        (hb(thread="done", now=99_000), lv.OK, None),  # max ticks reached: nothing is expected
        (hb(thread="stopped", now=99_000), lv.OK, None),
        (hb(thread="not started", now=99_000), lv.OK, None),
    ],
)
def test_liveness_is_judged_from_the_heartbeat(beat, level, since):
    got = assess(beat)
    assert (got.level, got.since_ms) == (level, since)


def test_the_label_names_the_trouble_and_when_it_began():
    assert assess(hb(since=3_600_000, now=3_610_000)).label(fmt_hms) == "FEED SLOW since 01:00:00"
    assert assess(hb(phase="waiting", due=0, now=5_000)).label(fmt_hms) == "STALLED since 00:00:00"
    assert assess(hb(thread="dead")).label(fmt_hms) == "ENGINE STOPPED since 00:00:00"
    assert assess(hb(now=1)).label(fmt_hms) == ""


def _wait(pred, timeout=10.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.01)
    return pred()


def test_the_service_heartbeat_shows_a_hung_fetch_from_when_it_began(tmp_path):
    src, wall = Hangable(), FakeWall()
    engine = Engine(Store(tmp_path / "h.db"), src, [Beliefs()], KakashiConfig().engine_config())
    service = TradingService(engine, interval=0.05, clock=wall)
    try:
        assert assess(service.heartbeat()).ok and service.heartbeat().thread == "not started"
        service.start()
        assert _wait(lambda: service.stats.ticks >= 2)
        assert service.heartbeat().last_tick_ms == int(wall.t * 1000)
        src.hang.set()
        assert _wait(src.hanging.is_set)
        began = int(wall.t * 1000)
        wall.t += 3.0
        slow = assess(service.heartbeat())
        assert (slow.level, slow.since_ms) == (lv.SLOW, began)
        wall.t += 27.0
        down = assess(service.heartbeat())
        assert (down.level, down.since_ms) == (lv.DOWN, began) and "in flight 30s" in down.what
        ticks = service.stats.ticks
        src.release.set()
        assert _wait(lambda: service.stats.ticks > ticks)
        assert assess(service.heartbeat()).ok
        src.die = True
        assert _wait(lambda: not service.running)
        assert service.heartbeat().thread == "dead" and assess(service.heartbeat()).level == lv.DEAD
        assert assess(service.heartbeat()).what == "the engine's thread ended: SystemExit: the engine's thread ends"
    finally:
        src.release.set()
        service.stop()
        engine.store.close()
    assert service.heartbeat().thread == "stopped" and assess(service.heartbeat()).ok


class EndsOnStop(KalshiShaped):
    """A fetch in flight when the run quits: ``stop()`` ends it with an error, as Kalshi's client
    does (``KalshiStopped``: "stopped")."""

    def __init__(self) -> None:
        super().__init__()
        self.hang = threading.Event()
        self.hanging = threading.Event()
        self.stopped = threading.Event()

    def fetch(self):
        if self.hang.is_set():
            self.hanging.set()
            self.stopped.wait(30)
            return FetchBatch(errors=["stopped"])
        return super().fetch()

    def stop(self) -> None:
        self.stopped.set()


def test_quitting_during_a_fetch_writes_no_tick_and_raises_no_feed_down(tmp_path):
    """Quit while a fetch is in flight: the source ends it with "stopped". That used to become a
    tick with "feed errors 1: stopped" and a FEED DOWN alert (webhook included) on every such
    quit, seen in the desk soak. The quit's own error is not a feed failure."""
    src = EndsOnStop()
    engine = Engine(Store(tmp_path / "q.db"), src, [Beliefs()], KakashiConfig().engine_config())
    service = TradingService(engine, interval=0.02)
    reports = []
    service.on_report(reports.append)
    try:
        service.start()
        assert _wait(lambda: service.stats.ticks >= 2)
        src.hang.set()
        assert _wait(src.hanging.is_set)
        ticks = service.stats.ticks
        assert service.stop(clean=True)
        assert service.stats.ticks == ticks
        assert not any(r.errors for r in reports)
        n = engine.store.db.execute_sql("SELECT COUNT(*), SUM(errors) FROM ticks").fetchone()
        assert n == (ticks, 0)
    finally:
        src.stopped.set()
        service.stop()
        engine.store.close()


async def test_the_desk_says_feed_slow_then_down_at_once_and_alerts(tmp_path, monkeypatch):
    """A fetch that never answers: FEED SLOW from the moment it began, then FEED DOWN (with the
    alert and the bell) past the stale limit, panels marked stale; back up when it answers."""
    monkeypatch.setattr(app_module, "LIVENESS_EVERY_S", 0.02)
    src, wall = Hangable(), FakeWall()
    engine = Engine(Store(tmp_path / "h.db"), src, [Beliefs()], KakashiConfig().engine_config())
    service = TradingService(engine, interval=0.05, clock=wall)
    app = KakashiApp(service, reports_dir=tmp_path / "reports", cursor_blink=False, animations=False)
    try:
        async with app.run_test(size=SIZE) as pilot:
            assert await wait_for(pilot, lambda: app.view is not None and app.view.tick >= 3)
            bar = app.query_one(StatusBar)
            assert await wait_for(pilot, lambda: "s ago)" in str(bar.render()))  # the heartbeat's age
            src.hang.set()
            await asyncio.to_thread(src.hanging.wait, 10)
            began = time.strftime("%H:%M:%S", time.gmtime(wall.t))
            wall.t += 4.0
            assert await wait_for(pilot, lambda: f"FEED SLOW since {began}" in str(bar.render()))
            assert app.has_class("-stale") and not [a for a in app.alert.raised if a.kind == al.FEED_DOWN]
            wall.t += 30.0
            assert await wait_for(pilot, lambda: f"FEED DOWN since {began}" in str(bar.render()))
            assert [a for a in app.alert.raised if a.kind == al.FEED_DOWN]
            assert any(f"FEED DOWN since {began}" in n for n in app.notes)
            src.release.set()
            assert await wait_for(pilot, lambda: not app.has_class("-stale"))
            assert await wait_for(pilot, lambda: "FEED" not in str(bar.render()))
            assert [a for a in app.alert.raised if a.kind == al.FEED_UP]
            await app._stop_and_exit()
    finally:
        src.release.set()
        engine.store.close()


def test_headless_prints_a_line_when_liveness_changes(tmp_path):
    beats = iter(
        [hb(now=1_000), hb(now=4_000), hb(now=5_000), hb(now=31_000), hb(phase="waiting", now=32_000, due=32_500)]
    )
    service = SimpleNamespace(heartbeat=lambda: next(beats))
    out = io.StringIO()
    check = _liveness_lines(service, out)
    for _ in range(5):
        check()
    assert out.getvalue().splitlines() == [
        "kakashi: FEED SLOW since 00:00:00: a fetch has been in flight 4s",
        "kakashi: FEED DOWN since 00:00:00: a fetch has been in flight 31s (stale limit 30s)",
        "kakashi: feed back: the fetch completed",
    ]


def test_a_failing_feeds_slow_retries_are_not_said_every_tick():
    """A dead server: each fetch retries its connection for more than 3 s and fails. The first
    slow spell is said; after a fetch has failed, its slow spells are the feed alarm's news, not
    a line a tick ("FEED SLOW", then "feed back: the slow fetch completed" while the feed was
    down, every 5 s for minutes in a desk soak). A hung fetch that ends in failure is not "back"."""
    beats = iter(
        [
            hb(now=1_000),
            hb(now=4_000),  # the first slow fetch: said
            hb(phase="waiting", now=5_000, due=6_000, feed_failing=True),  # it failed: not "back"
            hb(since=6_000, now=10_000, feed_failing=True),  # the next retrying fetch: slow again
            hb(phase="waiting", now=11_000, due=12_000, feed_failing=True),
            hb(since=12_000, now=43_000, feed_failing=True),  # hung past the stale limit: said
            hb(phase="waiting", now=44_000, due=45_000, feed_failing=True),
            hb(since=45_000, now=49_000),  # a fetch that worked, then a slow one: said again
        ]
    )
    service = SimpleNamespace(heartbeat=lambda: next(beats))
    out = io.StringIO()
    check = _liveness_lines(service, out)
    for _ in range(8):
        check()
    assert out.getvalue().splitlines() == [
        "kakashi: FEED SLOW since 00:00:00: a fetch has been in flight 4s",
        "kakashi: FEED DOWN since 00:00:12: a fetch has been in flight 31s (stale limit 30s)",
        "kakashi: the hung fetch ended, and failed (the feed is still down)",
        "kakashi: FEED SLOW since 00:00:45: a fetch has been in flight 4s",
    ]


def test_feed_down_is_dated_from_when_the_failing_fetch_began():
    w = FeedWatch(stale_ms=30_000)
    assert w.update(100_000, ("gave up after 5 attempts",), 1_000, fetch_ms=55_000.0) == "down"
    assert w.down_since == 45_000  # the fetch began 55 s before it gave up
    w2 = FeedWatch(stale_ms=30_000)
    assert w2.update(100_000, (), 44_000) == "down" and w2.down_since == 56_000  # the freshest quote's time


# -- a refused key is said plainly, once, and a fallback that served is no alarm ----------------
class KeyTrouble(KalshiShaped):
    """The Kalshi-shaped feed, whose key the exchange can refuse, and which can report a fallback."""

    refused = ""
    notes: tuple[str, ...] = ()

    def fetch(self):
        b = super().fetch()
        b.key_refused = self.refused
        b.notes = list(self.notes)
        return b


REFUSAL = "Kalshi refused the request (HTTP 401 on GET /markets/orderbooks): API key revoked"


async def test_the_desk_says_key_refused_with_the_reason_and_alerts_once(tmp_path):
    src = KeyTrouble()
    engine = Engine(Store(tmp_path / "k.db"), src, [Beliefs()], KakashiConfig().engine_config())
    service = TradingService(engine, interval=0.5)
    app = KakashiApp(service, reports_dir=tmp_path / "reports", cursor_blink=False, animations=False, autostart=False)
    try:
        async with app.run_test(size=SIZE) as pilot:
            src.refused = REFUSAL
            src.notes = (
                "series and fees looked up one by one instead: HTTP 404 on GET /series",
                "series or fees of 312 markets not looked up yet",
            )
            for _ in range(3):
                service.step()
                app.refresh_view()
                await pilot.pause()
            bar = str(app.query_one(StatusBar).render())
            assert "KEY REFUSED" in bar and "API key revoked" in bar
            assert len([a for a in app.alert.raised if a.kind == al.KEY_REFUSED]) == 1
            assert not [a for a in app.alert.raised if a.kind == al.FEED_DOWN]  # the fallback served
            assert app.query_one(StatusBar).feed_down_since is None
            assert sum("looked up one by one" in n for n in app.notes) == 1  # logged once, not each tick
            src.notes = ("series or fees of 250 markets not looked up yet",)
            service.step()
            app.refresh_view()
            await pilot.pause()
            assert sum("not looked up yet" in n for n in app.notes) == 1  # the same news, fewer markets
            src.refused = ""
            service.step()
            app.refresh_view()
            await pilot.pause()
            assert "KEY REFUSED" not in str(app.query_one(StatusBar).render())
            assert "Kalshi accepts the API key again" in app.notes
    finally:
        engine.store.close()


def test_headless_says_key_refused_once_and_when_accepted_again(tmp_path):
    src = KeyTrouble()
    engine = Engine(Store(tmp_path / "k.db"), src, [Beliefs()], KakashiConfig().engine_config())
    service = TradingService(engine, interval=0)
    out = io.StringIO()
    service.on_report(_feed_changes(service, out))
    lines = []
    service.on_report(lambda r: lines.append(r.log_line()))
    try:
        service.step()
        src.refused = REFUSAL
        service.step()
        service.step()
        src.refused = ""
        service.step()
    finally:
        engine.store.close()
    assert out.getvalue().splitlines()[1:] == [
        f"kakashi: KEY REFUSED: {REFUSAL} (no books, no paper fills; tried again with backoff)",
        "kakashi: Kalshi accepts the API key again",
    ]
    assert lines[1].endswith(f"| KEY REFUSED: {REFUSAL}") and "KEY REFUSED" not in lines[3]


# -- the decision log tells the truth on top, and the desk's own notes stay findable -------------
async def test_the_newest_note_is_on_top_however_many_share_a_tick(engine, tmp_path):
    """#19 item 7: 20 presses of p within one tick leave the desk RUNNING, and the top line says
    so (entries of one tick share its time; the first of them used to stay on top: "paused")."""
    app = desk_app(engine, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        for _ in range(20):
            await pilot.press("p")
        log = app.query_one(DecisionLog)
        assert not engine.paused and app.view.state == "RUNNING"
        assert [e.text for e in log.entries()[:2]] == ["resumed", "paused: no new decisions"]
        await pilot.press("p")
        assert engine.paused and log.entries()[0].text == "paused: no new decisions"


async def test_n_shows_only_the_desks_notes_and_alerts(engine, tmp_path):
    app = desk_app(engine, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("p")
        log = app.query_one(DecisionLog)
        assert any(e.who not in ("desk", "event") for e in log.entries())  # decisions, by ticker
        await pilot.press("l", "n")
        shown = log.entries()
        assert shown and all(e.who in ("desk", "alert", "feed", "event") for e in shown)
        assert shown[0].text.startswith("paused") and "notes and alerts only" in log.border_subtitle
        await pilot.press("o")  # rejections only: the two filters never stack
        assert not log.only_notes and all(e.rejection or e.level == "error" for e in log.entries())


async def test_an_empty_log_says_nothing_yet_whole(engine, tmp_path):
    app = desk_app(engine, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("l", "n")  # a filter that matches nothing yet on this desk
        log = app.query_one(DecisionLog)
        log.notes = ()
        await pilot.pause()
        text = "\n".join("".join(seg.text for seg in log.render_line(y)) for y in range(3))
        assert "nothing yet" in text
