"""The Kakashi desk: the operator's live view and controls.

The engine runs in one thread worker; after each tick it posts an immutable ``DeskView``.
Keys call the engine's thread-safe commands (kill is immediate) and then re-render.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Iterable
from pathlib import Path

from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Container, Horizontal
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Footer
from textual.worker import Worker, WorkerState, get_current_worker

from kakashi_tui.engine import Engine
from kakashi_tui.report import export_postmortem
from kakashi_tui.tui.messages import EngineUpdated
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
    ]

    view: reactive[DeskView | None] = reactive(None)
    halted_reason: reactive[str] = reactive("")
    lower_panel: reactive[int] = reactive(0)

    def __init__(self, engine: Engine, *, interval: float = 0.5, ticks: int | None = None, autostart: bool = True,
                 reports_dir: str | Path = "reports", theme: str = "textual-dark", cursor_blink: bool = True,
                 animations: bool = True, clock=time.time) -> None:
        super().__init__()
        if not animations:
            self.animation_level = "none"
        self.engine = engine
        self.interval = interval
        self.max_ticks = ticks
        self.autostart = autostart
        self.reports_dir = Path(reports_dir)
        self._theme_name = theme
        self.cursor_blink = cursor_blink
        self._clock = clock
        self.last_export: Path | None = None
        self._focus: str | None = None  # the selected market; the worker reads it to build views
        self.notes: list[str] = []

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
        if self.autostart:
            self.run_engine()

    def on_resize(self, event) -> None:
        self._apply_width(event.size.width)

    def _apply_width(self, width: int) -> None:
        self.set_class(width < NARROW_WIDTH, "-narrow")
        self._show_lower_panel()

    def _show_lower_panel(self) -> None:
        for i, pid in enumerate(LOWER_PANELS):
            self.query_one(f"#{pid}").set_class(i == self.lower_panel, "-current")

    # -- engine -> UI -----------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="engine", exit_on_error=False, name="engine")
    def run_engine(self) -> None:
        """Tick as configured; post a view at most RENDER_HZ times a second (and after the last tick)."""
        worker = get_current_worker()
        n = 0
        last_post = 0.0
        while not worker.is_cancelled and (self.max_ticks is None or n < self.max_ticks):
            self.engine.tick()
            n += 1
            now = time.monotonic()
            last = self.max_ticks is not None and n >= self.max_ticks
            if last or now - last_post >= 1 / RENDER_HZ:
                self.post_message(EngineUpdated(build_view(self.engine, self._focus)))
                last_post = now
            if worker.cancelled_event.wait(self.interval):
                break

    def refresh_view(self) -> None:
        """Re-render now if the engine is idle; mid-tick, let a worker wait for it instead of the UI."""
        if self.engine._book.acquire(blocking=False):
            try:
                self.view = build_view(self.engine, self._focus)
            finally:
                self.engine._book.release()
        else:
            self._refresh_soon()

    @work(thread=True, group="view", exclusive=True, exit_on_error=False)
    def _refresh_soon(self) -> None:
        self.post_message(EngineUpdated(build_view(self.engine, self._focus)))

    @on(EngineUpdated)
    def _on_engine_updated(self, message: EngineUpdated) -> None:
        self.view = message.view

    def watch_view(self, v: DeskView | None) -> None:
        if v is None:
            return
        with self.batch_update():
            self.query_one(StatusBar).view = v
            self.query_one(MarketsTable).apply(v)
            detail = self.query_one(MarketDetail)
            detail.view = v
            if detail.ticker != self.selected_ticker():  # first paint, or the selected market settled
                detail.ticker = self._focus = self.selected_ticker()
            for cls in (PositionsPanel, BankrollPanel, EquityChart, RiskPanel, DecisionLog):
                self.query_one(cls).view = v

    def watch_halted_reason(self, reason: str) -> None:
        self.query_one(StatusBar).halted_reason = reason  # the bar re-renders and re-colours itself

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.name != "engine" or event.state != WorkerState.ERROR:
            return
        err = event.worker.error
        reason = f"worker failed: {err.__class__.__name__}: {err}"[:120]
        self.halted_reason = reason
        try:
            self.engine.kill(reason)
        except Exception as e:  # the DB itself may be what failed; trading is stopped either way
            self.note(f"could not persist the kill switch: {e}")
        self.note(reason)
        self.notify(reason, title="Trading halted", severity="error", timeout=10)
        self.refresh_view()

    def note(self, text: str) -> None:
        self.notes.append(text)
        self.query_one(DecisionLog).notes = tuple(self.notes[-3:])

    # -- selection --------------------------------------------------------------------------
    def selected_ticker(self) -> str | None:
        return self.query_one(MarketsTable).selected

    @on(MarketsTable.Highlighted)
    def _on_row(self, event: MarketsTable.Highlighted) -> None:
        self._focus = event.ticker
        self.query_one(MarketDetail).ticker = event.ticker
        if self.view is not None and event.ticker is not None and set(self.view.books) != {event.ticker}:
            self.refresh_view()  # the last view was built for another market

    # -- commands ---------------------------------------------------------------------------
    def action_pause(self) -> None:
        paused = not self.engine.paused
        self.engine.set_paused(paused)
        self.note("paused: no new decisions" if paused else "resumed")
        self.refresh_view()

    def action_kill(self) -> None:
        # First, in memory: the engine refuses orders from this instant, whatever the DB is doing.
        self.engine.kill("operator", persist=False)
        self._persist_kill()
        self.note("KILL SWITCH THROWN: no new orders; press r to re-arm")
        self.refresh_view()

    @work(thread=True, group="kill", exit_on_error=False)
    def _persist_kill(self) -> None:
        self.engine.persist_kill()

    def action_rearm(self) -> None:
        if not self.engine.killed:
            self.notify("The kill switch is not thrown.")
            return

        def done(ok: bool | None) -> None:
            if ok:
                self.engine.rearm()
                self.halted_reason = ""
                self.note("kill switch re-armed")
                self.refresh_view()
                if self.autostart and not self._engine_running():
                    self.run_engine()

        self.push_screen(ConfirmScreen("Re-arm the kill switch and allow new paper orders?"), done)

    def _engine_running(self) -> bool:
        return any(w.name == "engine" and w.state in (WorkerState.PENDING, WorkerState.RUNNING)
                   for w in self.workers)

    def action_flatten(self) -> None:
        n = len(self.view.positions) if self.view else 0
        if n == 0:
            self.notify("No open positions to flatten.")
            return

        def done(ok: bool | None) -> None:
            if ok:
                # Pause first: otherwise the strategy would buy straight back in on the next tick.
                self.engine.set_paused(True)
                self._flatten()

        self.push_screen(ConfirmScreen(f"Flatten all {n} paper positions at the bids and pause trading?"), done)

    @work(thread=True, group="commands", exit_on_error=False)
    def _flatten(self) -> None:
        n = self.engine.flatten()
        self.post_message(EngineUpdated(build_view(self.engine, self._focus)))
        self.call_from_thread(self.note, f"flattened: {n} sale(s) at the bids; trading paused (p resumes)")

    def action_export(self) -> None:
        self._export()

    @work(thread=True, group="commands", exit_on_error=False)
    def _export(self) -> None:
        try:
            out = export_postmortem(self.engine.store.path, self.reports_dir, int(self._clock() * 1000))
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
        current = self.engine.estimates.get(t)

        def done(p) -> None:
            if p is not None:
                self.engine.set_estimate(t, p)
                self.note(f"p̂ for {t} set to {p} (operator)")
                self.refresh_view()

        self.push_screen(EstimateScreen(t, current.p_hat if current else None), done)

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
        self.workers.cancel_group(self, "engine")
        self.exit(0)


def run_desk(opts, cfg, interval: float | None = None, ticks: int | None = None) -> int:
    from kakashi_tui.runtime import build_engine

    engine = build_engine(opts, cfg)
    try:
        if interval is None:
            interval = 0.5 if opts.source == "sim" else 5.0
        app = KakashiApp(engine, interval=interval, ticks=ticks)
        result = app.run()
        return result or 0
    finally:
        engine.source.close()
        engine.store.close()
