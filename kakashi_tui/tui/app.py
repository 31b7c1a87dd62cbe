"""The Kakashi desk: the operator's live view and controls.

The desk drives a ``TradingService`` and nothing else: the service runs the engine on its
own thread and publishes an immutable ``DeskView`` after each tick (at most ``RENDER_HZ``
a second); keys submit commands to it (a kill is in force the instant it is submitted).
"""

from __future__ import annotations

import asyncio
import gc
import signal
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from pathlib import Path

from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Container, Horizontal
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Footer

from kakashi_tui.report import export_postmortem
from kakashi_tui.service import Flatten, Kill, Pause, Rearm, Resume, SetEstimate, TradingService
from kakashi_tui.tui.messages import EngineUpdated, Noted
from kakashi_tui.tui.screens import ConfirmScreen, EstimateScreen, HelpScreen, ReportScreen
from kakashi_tui.tui.widgets import (
    BankrollPanel, DecisionLog, EquityChart, MarketDetail, MarketsTable, PositionsPanel, RiskPanel, StatusBar,
)
from kakashi_tui.view import DeskView, build_view

LOWER_PANELS = ["positions-panel", "bankroll-panel", "risk-panel", "log-panel"]
NARROW_WIDTH = 100
RENDER_HZ = 4  # the engine may tick faster; the desk renders the latest state at most this often


class KakashiApp(App[int]):
    CSS_PATH = Path(__file__).parent / "styles" / "app.tcss"  # absolute: subclasses live elsewhere
    TITLE = "Kakashi"
    BINDINGS = [
        Binding("p", "pause", "Pause", id="desk.pause"),
        Binding("k", "kill", "Kill", priority=True, id="desk.kill"),
        Binding("r", "rearm", "Rearm", id="desk.rearm"),
        Binding("f", "flatten", "Flatten", id="desk.flatten"),
        Binding("e", "export", "Export", id="desk.export"),
        Binding("b", "set_estimate", "p̂", id="desk.estimate"),
        Binding("s", "sort", "Sort", show=False, id="desk.sort"),  # in ? and the palette; 80 cols are few
        Binding("v", "cycle_panel", "Panel", id="desk.panel"),
        Binding("question_mark", "help", "Help", id="desk.help"),
        Binding("q", "quit", "Quit", id="desk.quit"),
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True, id="desk.interrupt"),
    ]

    view: reactive[DeskView | None] = reactive(None)
    halted_reason: reactive[str] = reactive("")
    lower_panel: reactive[int] = reactive(0)

    def __init__(self, service: TradingService, *, autostart: bool = True,
                 reports_dir: str | Path = "reports", theme: str = "textual-dark", cursor_blink: bool = True,
                 animations: bool = True, clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        if not animations:
            self.animation_level = "none"
        self.service = service
        self.autostart = autostart
        self.reports_dir = Path(reports_dir)
        self._theme_name = theme
        self.cursor_blink = cursor_blink
        self._clock = clock
        self.last_export: Path | None = None
        self.notes: list[str] = []
        self.stopping = False
        service.on_view(self._publish)
        service.on_log(self._noted_from_service)

    # -- layout -------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield StatusBar(id="status")
        with Horizontal(id="top"):
            yield MarketsTable(id="markets")
            yield MarketDetail(id="detail")
        with Container(id="lower"):
            yield PositionsPanel(id="positions-panel", classes="panel")
            with Container(id="bankroll-panel", classes="panel"):
                yield BankrollPanel(id="bankroll")
                yield EquityChart(id="equity-chart")
            yield RiskPanel(id="risk-panel", classes="panel")
            yield DecisionLog(id="log-panel", classes="panel")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        # Everything built so far (Textual, the engine, the loaded ledger) lives for the whole
        # session: move it out of the garbage collector's full scans, which otherwise stall
        # every thread (keys included) for 100 ms or more with 1,000 markets.
        gc.freeze()
        self.theme = self._theme_name
        titles = {"markets": "Markets", "detail": "Market detail", "positions-panel": "Positions",
                  "bankroll-panel": "Bankroll", "risk-panel": "Risk caps", "log-panel": "Decision log"}
        for wid, title in titles.items():
            self.query_one(f"#{wid}").border_title = title
        self._apply_width(self.size.width)
        self.refresh_view()
        self.query_one(MarketsTable).focus()
        for line in self.service.notes:  # what resolving the settings had to say, once
            self.note(line)
        try:  # SIGTERM ends the desk like q (only possible on the main thread)
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, lambda: self.call_later(self.action_quit))
        except (RuntimeError, ValueError, NotImplementedError):
            pass
        if self.autostart:
            self.service.start()

    def on_resize(self, event) -> None:
        self._apply_width(event.size.width)

    def on_unmount(self) -> None:
        self.service.stop()  # already stopped by q; a test's teardown, or an error exit otherwise

    def _apply_width(self, width: int) -> None:
        self.set_class(width < NARROW_WIDTH, "-narrow")
        self._show_lower_panel()

    def _show_lower_panel(self) -> None:
        for i, pid in enumerate(LOWER_PANELS):
            self.query_one(f"#{pid}").set_class(i == self.lower_panel, "-current")

    # -- service -> UI ----------------------------------------------------------------------
    def _noted_from_service(self, line: str) -> None:
        self.post_message(Noted(line))  # a failed tick and its reason, a kill the policy threw

    def _publish(self, view: DeskView) -> None:
        """The service published a view (from its thread, or from ours after a command)."""
        self.post_message(EngineUpdated(view))

    def refresh_view(self) -> None:
        """Show the latest state: built here while the loop is not running (before start, or
        a test stepping the service by hand); otherwise the service publishes one soon."""
        if not self.service.running:
            self.view = self.service.publish_view()
        else:
            self.service.request_view()

    @on(EngineUpdated)
    def _on_engine_updated(self, message: EngineUpdated) -> None:
        self.view = message.view

    def watch_view(self, v: DeskView | None) -> None:
        if v is None or not self.query(StatusBar):  # nothing yet, or the desk is closing
            return
        with self.batch_update():
            self.query_one(StatusBar).view = v
            self.query_one(MarketsTable).apply(v)
            detail = self.query_one(MarketDetail)
            detail.view = v
            if detail.ticker != self.selected_ticker():  # first paint, or the selected market settled
                detail.ticker = self.service.focus = self.selected_ticker()
            for cls in (PositionsPanel, BankrollPanel, EquityChart, RiskPanel, DecisionLog):
                self.query_one(cls).view = v  # type: ignore[attr-defined]

    def watch_halted_reason(self, reason: str) -> None:
        for bar in self.query(StatusBar):
            bar.halted_reason = reason  # the bar re-renders and re-colours itself

    def note(self, text: str) -> None:
        self.notes.append(text)
        for log in self.query(DecisionLog):  # none while the desk is closing
            log.notes = tuple(self.notes[-3:])

    @on(Noted)
    def _on_noted(self, message: Noted) -> None:
        self.note(message.text)

    def _note_when_done(self, fut: Future[object], text: Callable[[object], str]) -> None:
        """Note a command's outcome once the service has applied it (any thread)."""
        def done(f: Future[object]) -> None:
            self.post_message(Noted(text(f.result()) if f.exception() is None else f"failed: {f.exception()}"))
        fut.add_done_callback(done)

    # -- selection --------------------------------------------------------------------------
    def selected_ticker(self) -> str | None:
        return self.query_one(MarketsTable).selected

    @on(MarketsTable.Highlighted)
    def _on_row(self, event: MarketsTable.Highlighted) -> None:
        self.service.focus = event.ticker
        self.query_one(MarketDetail).ticker = event.ticker
        if self.view is not None and event.ticker is not None and set(self.view.books) != {event.ticker}:
            self.refresh_view()  # the last view was built for another market (the next tick's will do)

    # -- commands: submitted to the service ------------------------------------------------
    def action_pause(self) -> None:
        paused = not self.service.paused  # the intent as last asked: fast presses alternate exactly
        self.service.submit(Pause() if paused else Resume())  # in force at once; stored next tick
        self.note("paused: no new decisions" if paused else "resumed")

    def action_kill(self) -> None:
        # The engine refuses orders from this instant, whatever the tick or the DB is doing.
        self.service.submit(Kill("operator"))
        self.note("KILL SWITCH THROWN: no new orders; press r to re-arm")

    def action_rearm(self) -> None:
        if not self.service.killed:
            self.notify("The kill switch is not thrown.")
            return

        def done(ok: bool | None) -> None:
            if ok:
                self.halted_reason = ""
                self._note_when_done(self.service.submit(Rearm()), lambda _r: "kill switch re-armed")

        self.push_screen(ConfirmScreen("Re-arm the kill switch and allow new paper orders?"), done)

    def action_flatten(self) -> None:
        n = len(self.view.positions) if self.view else 0
        if n == 0:
            self.notify("No open positions to flatten.")
            return

        def done(ok: bool | None) -> None:
            if ok:
                # Pause first: otherwise the strategy would buy straight back in on the next tick.
                self.service.submit(Pause())
                self._note_when_done(self.service.submit(Flatten()),
                                     lambda n: f"flattened: {n} sale(s) at the bids; trading paused (p resumes)")

        self.push_screen(ConfirmScreen(f"Flatten all {n} paper positions at the bids and pause trading?"), done)

    def action_export(self) -> None:
        self._export()

    @work(thread=True, group="commands", exit_on_error=False)
    def _export(self) -> None:
        try:  # a read-only connection of its own: the report never writes
            out = export_postmortem(self.service.db_path, self.reports_dir, int(self._clock() * 1000))
        except Exception as e:
            self.call_from_thread(self.notify, f"export failed: {e}", severity="error")
            return
        self.last_export = out.path
        self.call_from_thread(self.note, f"exported {out.path}")
        self.call_from_thread(self.push_screen, ReportScreen(out.path, out.figures))

    def action_set_estimate(self) -> None:
        t = self.selected_ticker()
        if t is None:
            self.notify("No market selected.")
            return
        current = next((m.p_hat for m in self.view.markets if m.ticker == t), None) if self.view else None

        def done(p) -> None:
            if p is not None:
                self._note_when_done(self.service.submit(SetEstimate(t, p)),
                                     lambda _e: f"p̂ for {t} set to {p} (operator)")

        self.push_screen(EstimateScreen(t, current), done)

    def action_sort(self) -> None:
        if self.view:
            mode = self.query_one(MarketsTable).cycle_sort({m.ticker: m for m in self.view.markets})
            self.notify(f"sorted by {mode}", timeout=2)

    def action_cycle_panel(self) -> None:
        self.lower_panel = (self.lower_panel + 1) % len(LOWER_PANELS)
        self._show_lower_panel()

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Pause / resume trading", "p: stop or restart new decisions", self.action_pause)
        yield SystemCommand("Kill switch", "k: stop all new orders now; persisted", self.action_kill)
        yield SystemCommand("Re-arm kill switch", "r: allow orders again (asks first)", self.action_rearm)
        yield SystemCommand("Flatten all positions", "f: sell every paper position at the bids", self.action_flatten)
        yield SystemCommand("Export post-mortem", "e: write reports/<time>/postmortem.md", self.action_export)
        yield SystemCommand("Set p̂ for the selected market", "b: your own estimate", self.action_set_estimate)
        yield SystemCommand("Sort markets", "s: ticker, edge, quote age", self.action_sort)
        yield SystemCommand("Keys", "?: the help screen", self.action_help)

    async def action_quit(self) -> None:
        """q, Ctrl-C, SIGTERM: say so at once, stop the service (at most ~1 s whatever the
        feed does; queued commands are applied), then leave."""
        if self.stopping:
            return
        self.stopping = True
        self.halted_reason = "stopping…"  # trading stops now; the bar says so at once
        self.notify("stopping…", timeout=5)
        await asyncio.sleep(0)  # let the frame with "stopping…" go out
        await asyncio.to_thread(self.service.stop)
        self.exit(0)


def run_desk(opts, cfg, interval: float | None = None, ticks: int | None = None) -> int:
    from kakashi_tui.runtime import build_service

    service, close = build_service(opts, cfg, interval=interval, ticks=ticks, desk=True, view_hz=RENDER_HZ)
    try:
        app = KakashiApp(service)
        result = app.run()
        print("kakashi: stopping…", file=sys.stderr, flush=True)
        service.stop()
        print(service.summary(), flush=True)
        return result or 0
    finally:
        close()
