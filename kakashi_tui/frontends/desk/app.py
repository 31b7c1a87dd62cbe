"""The Kakashi desk: the operator's live view and controls.

The desk drives a ``TradingService`` and nothing else: the service runs the engine on its
own thread and publishes an immutable ``DeskView`` after each tick (at most ``RENDER_HZ``
a second); keys submit commands to it (a kill is in force the instant it is submitted).
Beside the views the desk keeps the operator's log file, raises alerts (notification, bell,
webhook) and writes post-mortems on schedule; look-ups for its screens read the database
through read-only connections of their own.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import re
import signal
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from decimal import Decimal
from pathlib import Path
from typing import Any

from textual import events, on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Container, Horizontal
from textual.notifications import SeverityLevel
from textual.reactive import reactive
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Input

from kakashi_tui.adapters import alerts as al
from kakashi_tui.adapters.queries import connect_readonly
from kakashi_tui.core.money import fmt_count, hundredths_to_count
from kakashi_tui.core.text import safe_text
from kakashi_tui.frontends.desk.lookups import fills_blotter, market_history, recent_history, rejected_rows
from kakashi_tui.frontends.desk.messages import AlertDue, EngineUpdated, Noted, OrderEnded, OrderFilled
from kakashi_tui.frontends.desk.screens import (
    BlotterScreen,
    ConfirmScreen,
    EstimateScreen,
    FillLine,
    HelpScreen,
    MarketInfo,
    MarketScreen,
    PerformanceScreen,
    RejectedLine,
    RejectedScreen,
    ReportScreen,
)
from kakashi_tui.frontends.desk.widgets.bankroll import BankrollPanel
from kakashi_tui.frontends.desk.widgets.decision_log import DecisionLog, LogEntry
from kakashi_tui.frontends.desk.widgets.equity_chart import EquityChart
from kakashi_tui.frontends.desk.widgets.market_detail import MarketDetail
from kakashi_tui.frontends.desk.widgets.markets_table import MarketsTable, SameLines
from kakashi_tui.frontends.desk.widgets.orders import OrdersPanel
from kakashi_tui.frontends.desk.widgets.positions import PositionsPanel
from kakashi_tui.frontends.desk.widgets.risk_panel import DeskLimits, RiskPanel
from kakashi_tui.frontends.desk.widgets.status_bar import StatusBar
from kakashi_tui.frontends.fmt import event_text, fmt_hms, fmt_signed, fmt_time, key_line, restored_line
from kakashi_tui.frontends.journal import Journal, Notices, previous_run_alert
from kakashi_tui.frontends.logfile import NullLog, OperatorLog
from kakashi_tui.frontends.report.postmortem import PostmortemSchedule, export_postmortem
from kakashi_tui.frontends.report.postmortem import reports_dir as reports_folder
from kakashi_tui.trading import liveness as lv
from kakashi_tui.trading.liveness import LivenessWatch
from kakashi_tui.trading.service import CancelOrder, Flatten, Kill, Pause, Rearm, Resume, SetEstimate, TradingService
from kakashi_tui.trading.view import DeskView, not_open

LOWER_PANELS = ["positions-panel", "bankroll-panel", "risk-panel", "log-panel", "orders-panel"]
NARROW_WIDTH = 100
MEDIUM_WIDTH = 130
DETAIL_WIDTH = 110
SHORT_HEIGHT = 34  # below this the lower panels give the markets three more rows (100x30 shows eight)
RENDER_HZ = 4  # the engine may tick faster; the desk renders the latest state at most this often
LIVENESS_EVERY_S = 1.0  # the heartbeat is read this often, whether or not views arrive
PANEL_FRAME_S = 1 / 60  # one changed panel is painted a frame (Textual's 60 fps): keys wait behind one
TYPING_ACTIONS = frozenset({"set_estimate", "find"})  # keys that open a box to type in (b, /): see on_event
HOLD_KEYS_S = 1.0  # the longest the desk holds typed keys for a box that never opens
ALERT_TITLES = {
    al.FEED_DOWN: "Feed down",
    al.FEED_UP: "Feed up",
    al.DAILY_STOP: "Daily stop",
    al.KILL_EXTERNAL: "Kill switch",
    al.ENGINE_FAILED: "Engine failed",
    al.KEY_REFUSED: "Key refused",
    al.FILL: "Fill",
    al.DAILY_SUMMARY: "Daily summary",
    al.UNCLEAN_STOP: "Previous run",
    al.PLAN_KILL: "Plan",
}


def _shape(note: str) -> str:
    """A note with its numbers masked: "312 markets not looked up yet" is the same news as "250 ..."."""
    return re.sub(r"\d+", "#", note)


class KakashiApp(App[int]):
    CSS_PATH = Path(__file__).parent / "styles" / "app.tcss"  # absolute: subclasses live elsewhere
    TITLE = "Kakashi"
    BINDINGS = [
        Binding("p", "pause", "Pause", id="desk.pause"),
        Binding("k", "kill", "Kill", priority=True, id="desk.kill"),
        Binding("r", "rearm", "Rearm", id="desk.rearm"),
        Binding("f", "flatten", "Flat", id="desk.flatten"),
        # (not in the footer: 80 columns hold no more; in help, the palette and the performance screen)
        Binding("e", "export", "Export", show=False, id="desk.export"),
        Binding("b", "set_estimate", "p̂", id="desk.estimate"),
        Binding("s", "sort", "Sort", id="desk.sort"),
        Binding("slash", "find", "Find", key_display="/", id="desk.find"),
        Binding("m", "performance", "PnL", id="desk.performance"),
        Binding("enter", "market", "Detail", show=False, id="desk.market"),
        Binding("x", "rejected", "Rejects", show=False, id="desk.rejected"),
        Binding("t", "blotter", "Fills", show=False, id="desk.blotter"),  # in help and the palette
        Binding("l", "focus_log", "Log", show=False, id="desk.log"),
        Binding("v", "cycle_panel", "Panel", id="desk.panel"),  # shown only where it does something
        # (130 columns and more: every panel shows; v swaps the decision log and the orders)
        Binding("v", "swap_orders", "Orders", show=False, id="desk.orders"),
        Binding("c", "cancel_order", "Cancel order", show=False, id="desk.cancel"),
        Binding("question_mark", "help", "Help", key_display="?", id="desk.help"),
        Binding("q", "quit", "Quit", id="desk.quit"),
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True, id="desk.interrupt"),
    ]

    view: reactive[DeskView | None] = reactive(None)
    halted_reason: reactive[str] = reactive("")
    lower_panel: reactive[int] = reactive(0)

    def __init__(
        self,
        service: TradingService,
        *,
        autostart: bool = True,
        reports_dir: str | Path | None = None,  # default: reports/ beside the database
        theme: str = "textual-dark",
        cursor_blink: bool = True,
        animations: bool = True,
        clock: Callable[[], float] = time.time,
        zone: str = "utc",
        log: OperatorLog | None = None,
        bell: bool = True,
        webhook: str | None = None,
        on_daily_stop: str = "hold",
        postmortem: str = "off",
        fill_alerts: bool = True,
    ) -> None:
        super().__init__()
        if not animations:
            self.animation_level = "none"
        self.service = service
        self.autostart = autostart
        self.reports_dir = reports_folder(service.db_path, reports_dir)
        self._theme_name = theme
        self.cursor_blink = cursor_blink
        self._clock = clock
        self.last_export: Path | None = None
        self.notes: list[str] = []
        self.stopping = False
        self.zone = zone
        self.oplog = log or NullLog()
        self._webhook = al.Webhook(webhook, on_error=lambda m: self.oplog.error(m)) if webhook else None
        self.alert = al.Alerter(
            log=self.oplog,
            notify=self._notify_alert,
            bell=self.bell if bell else None,
            webhook=self._webhook,
            clock=clock,
        )
        self.feed: al.FeedWatch | None = None  # made with the first view (it knows the stale limit)
        self.on_daily_stop = on_daily_stop
        self.schedule = (
            PostmortemSchedule(service.db_path, self.reports_dir, postmortem, fees=service.fees)
            if postmortem != "off"
            else None
        )
        self._prev: DeskView | None = None
        self._same_lines = SameLines()  # unchanged market lines kept as the same objects (_publish)
        # The panels' paint steps in a fixed order; those still due (painted from the newest view,
        # one a frame), and where the round goes on from: a new view marks every panel due but
        # does not restart the round, so no panel starves when views come faster than a round.
        self._panel_steps: tuple[Callable[[DeskView], None], ...] = (
            self._show_markets,
            self._show_detail,
            *(
                functools.partial(self._show_panel, cls)
                for cls in (PositionsPanel, BankrollPanel, EquityChart, RiskPanel, DecisionLog, OrdersPanel)
            ),
        )
        self._panels_due: set[int] = set()
        self._panel_next = 0
        # The panels' frame clock: one repeating timer (made on mount), paused while none is due.
        self._panel_timer: Timer | None = None
        self._panels_shown = False  # the first view is painted whole, at once
        self._local_kill = False
        self._asked_paused: bool | None = None  # what this desk last asked (None: nothing yet)
        self._last_failure_alert = 0.0
        self.heartbeat_watch = LivenessWatch()
        self.crash_path: Path | None = None
        self.crash_message = ""
        self._held: list[events.Key] | None = None  # keys typed while a box opens (on_event)
        self._held_for: events.Key | None = None  # the key that opens it
        self._hold_timer: Timer | None = None
        service.on_view(self._publish)
        service.on_log(self._noted_from_service)
        # the log file, as a headless run writes it; a settlement's correction said on the desk
        service.on_report(Journal(self.oplog, threshold=service.edge_threshold).on_report)
        service.on_report(self._note_corrections)
        service.on_report(self._note_order_fills)
        # each fill and each day's summary: alerts, raised on the desk's thread (AlertDue)
        notices = Notices(lambda *a: self.post_message(AlertDue(*a)), fills=fill_alerts)
        service.on_report(notices.on_report)
        service.on_day(notices.on_day)

    # -- layout -------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield StatusBar(id="status")
        with Horizontal(id="top"):
            with Container(id="markets-box"):
                yield Input(placeholder="filter: ticker or title · enter keeps · esc clears", id="find", compact=True)
                yield MarketsTable(id="markets")
            yield MarketDetail(id="detail")
        with Container(id="lower"):
            yield PositionsPanel(id="positions-panel", classes="panel")
            with Container(id="bankroll-panel", classes="panel"):
                yield BankrollPanel(id="bankroll")
                yield EquityChart(id="equity-chart")
            yield RiskPanel(id="risk-panel", classes="panel")
            yield DecisionLog(id="log-panel", classes="panel")
            yield OrdersPanel(id="orders-panel", classes="panel")
        yield Footer(compact=True, show_command_palette=False)  # ctrl+p still opens it; 80 columns are few

    def on_mount(self) -> None:
        # Everything built so far (Textual, the engine, the loaded ledger) lives for the whole
        # session: move it out of the garbage collector's full scans, which otherwise stall
        # every thread (keys included) for 100 ms or more with 1,000 markets.
        gc.freeze()
        # A repeating timer, not a one-shot one a frame: Textual drops a one-shot timer whose
        # first deadline has passed by the time it starts (its "skip"), which a loaded machine's
        # scheduler does now and then to a 17 ms timer; the panels then stayed due with nothing
        # scheduled, frozen for good (seen in the freeze test at load 10). An interval skips a
        # missed frame and goes on.
        self._panel_timer = self.set_interval(PANEL_FRAME_S, self._show_next_panel, name="desk-panels", pause=True)
        self.theme = self._theme_name
        titles = {
            "markets": "Markets",
            "detail": "Market detail",
            "positions-panel": "Positions",
            "bankroll-panel": "Bankroll",
            "risk-panel": "Risk caps",
            "log-panel": "Decision log",
            "orders-panel": "Orders",
        }
        for wid, title in titles.items():
            self.query_one(f"#{wid}").border_title = title
        self.query_one(StatusBar).zone = self.zone
        self.query_one(DecisionLog).threshold = self.service.edge_threshold
        find = self.query_one("#find", Input)
        find.cursor_blink = self.cursor_blink
        find.display = False
        self._apply_size(self.size.width, self.size.height)
        self._load_history()
        self.refresh_view()
        self.query_one(MarketsTable).focus()
        for line in self.service.notes:  # what resolving the settings had to say, once
            self.note(line)
        self.oplog.command(f"desk started on {self.service.source_name}: {self.service.state}")
        try:  # SIGTERM ends the desk like q (only possible on the main thread)
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, lambda: self.call_later(self._stop_and_exit))
        except (RuntimeError, ValueError, NotImplementedError):
            pass
        if self.autostart:
            self.service.start()
            if (a := previous_run_alert(self.service)) is not None:  # kill -9, a crash: once, as headless says it
                self.alert(*a)  # (the alert is the log file's line; the decision log shows it too)
                ts = self.view.clock_ms if self.view else int(self._clock() * 1000)
                self.query_one(DecisionLog).add(LogEntry(ts, "alert", "", safe_text(a[1], 1000), "error"))
        self.set_interval(LIVENESS_EVERY_S, self._check_liveness, name="desk-liveness")

    def _load_history(self) -> None:
        """A restarted desk says how it resumed and shows what happened before it stopped."""
        log = self.query_one(DecisionLog)
        try:
            decisions, events = self._read(recent_history)
        except Exception as e:  # a fresh or unreadable DB: nothing to show, and the desk still opens
            self.oplog.error(f"could not load the recent history: {e}")
            return
        for ts, ticker, side, n, limit, ev, accepted, reason in decisions:
            log.add_decision(ts, ticker, side, n, limit, Decimal(str(ev)), bool(accepted), reason)
        for ts, kind, detail in events:
            if kind != "day_start":
                log.add(LogEntry(ts, "event", kind, event_text(kind, detail), "note"))
        last = events[-1][0] if events else (decisions[-1][0] if decisions else None)
        restored = self.service.restored()
        if restored is not None:  # once, in plain words: the state and since when, positions, today, last tick
            self.note(restored_line(restored, self.zone), last)

    def on_resize(self, event) -> None:
        self._apply_size(event.size.width, event.size.height)

    def on_unmount(self) -> None:
        self.service.stop()  # already stopped by q; a test's teardown, or an error exit otherwise
        self.alert.close()

    def _apply_size(self, width: int, height: int) -> None:
        self.set_class(width < NARROW_WIDTH, "-narrow")
        self.set_class(NARROW_WIDTH <= width < MEDIUM_WIDTH, "-medium")
        self.set_class(width < DETAIL_WIDTH, "-nodetail")  # below this, whole tickers need the room
        self.set_class(height < SHORT_HEIGHT, "-short")
        self._show_lower_panel()
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cycle_panel":  # `v` only where some lower panel is out of sight
            return self.has_class("-narrow") or self.has_class("-medium")
        if action == "swap_orders":  # ... and wider, the orders in the decision log's place
            return not (self.has_class("-narrow") or self.has_class("-medium"))
        return True

    def _show_lower_panel(self) -> None:
        for i, pid in enumerate(LOWER_PANELS):
            self.query_one(f"#{pid}").set_class(i == self.lower_panel, "-current")

    # -- service -> UI ----------------------------------------------------------------------
    def _noted_from_service(self, line: str) -> None:
        self.post_message(Noted(line))  # a failed tick and its reason, a kill the policy threw

    def _publish(self, view: DeskView) -> None:
        """The service published a view (from its thread, or from ours after a command). The
        market lines that did not change are handed on as the objects already shown, compared
        here, off the desk's event loop (SameLines): the table's diff is then an identity test."""
        self.post_message(EngineUpdated(self._same_lines(view)))

    def _note_corrections(self, report) -> None:
        """A settlement corrected this tick moved cash with no fill and no settlement: said,
        with why (the engine's thread; the log file has its SETTLE line from the journal)."""
        for ticker, cc in report.corrections:
            why = "its result changed after it paid"
            self.post_message(Noted(f"settlement of {ticker} corrected: {fmt_signed(cc)} ({why})"))

    def _note_order_fills(self, report) -> None:
        """Each paper order's fill in the decision log, beside the decision it came from: the price
        decided on and the price filled at (issue #23; the engine's thread: posted)."""
        if report.order_fills:
            self.post_message(OrderFilled(report.order_fills))
        if report.order_notes:
            self.post_message(OrderEnded(report.order_notes))

    @on(OrderFilled)
    def _on_order_filled(self, message: OrderFilled) -> None:
        for log in self.query(DecisionLog):  # none while the desk is closing
            for f in message.fills:  # (a ticker is the feed's text: escaped)
                what = f"FILL x{fmt_count(hundredths_to_count(f.hundredths))}"
                log.add(LogEntry(f.ts, safe_text(f.ticker, 200), what, safe_text(f.text(), 1000), "ok"))

    @on(OrderEnded)
    def _on_order_ended(self, message: OrderEnded) -> None:
        for log in self.query(DecisionLog):  # none while the desk is closing
            for n in message.notes:  # (a ticker and a reason are outside text: escaped)
                level = "warn" if n.state == "rejected" else "note"
                log.add(LogEntry(n.ts, safe_text(n.ticker, 200), n.state.upper(), safe_text(n.text(), 1000), level))

    @on(AlertDue)
    def _on_alert_due(self, message: AlertDue) -> None:
        self.alert(message.kind, message.text, message.severity)

    def refresh_view(self) -> None:
        """Show the latest state: built here while the loop is not running (before start, or
        a test stepping the service by hand); otherwise the service publishes one soon."""
        if not self.service.running:  # (its lines matched as the published ones are: _publish)
            self.view = self._same_lines(self.service.publish_view())
        else:
            self.service.request_view()

    @on(EngineUpdated)
    def _on_engine_updated(self, message: EngineUpdated) -> None:
        if not self.screen_stack:  # a view that arrived as the desk closed: nothing shows it
            return
        self.view = message.view
        if isinstance(self.screen, PerformanceScreen):  # open: it follows the views
            self.screen.show(message.view)

    def watch_view(self, v: DeskView | None) -> None:
        """A new view: the status line at once; the panels from the newest view, one a frame
        while the service ticks (each changed panel's paint is its own short frame, so a key
        waits behind one panel's paint, not all of them at once: see benchmarks/README.md's
        kill row), or all in one batch when the desk is stepped by hand (tests, snapshots)."""
        if v is None or not self.query(StatusBar):  # nothing yet, or the desk is closing
            return
        self._watch_events(v)
        self.query_one(StatusBar).view = v
        if isinstance(self.screen, EstimateScreen):
            self.screen.recheck()  # the market may have closed while p̂ is being typed
        if not self.service.running or not self._panels_shown:
            self._panels_due = set()
            with self.batch_update():
                for step in self._panel_steps:
                    step(v)
            self._panels_shown = True
            return
        # Every panel is due again, painted from the newest view; the round goes on from where it
        # is. Restarting it at the markets on each view starved the last panels (risk, decision
        # log) for good whenever views came faster than a round of frames (a loaded machine).
        self._panels_due = set(range(len(self._panel_steps)))
        if self._panel_timer is not None:
            self._panel_timer.resume()

    def _show_next_panel(self) -> None:
        """One due panel a frame, on the app's own repeating timer, paused when none is due. It
        survives any screen: ``call_after_refresh`` queues on whichever screen is on top, and a
        step queued while a dialog was open died with the dialog, leaving panels due and nothing
        scheduled (the panels froze for good while the status line kept ticking)."""
        v = self.view
        if not self._panels_due or v is None or not self.query(StatusBar):
            self._panels_due = set()
        else:
            n = len(self._panel_steps)
            i = next(j % n for j in range(self._panel_next, self._panel_next + n) if j % n in self._panels_due)
            self._panels_due.discard(i)
            self._panel_next = (i + 1) % n
            self._panel_steps[i](v)
        if not self._panels_due and self._panel_timer is not None:
            self._panel_timer.pause()

    def _show_markets(self, v: DeskView) -> None:
        table = self.query_one(MarketsTable)
        table.stale_ms = v.max_quote_age_ms
        table.apply(v)
        if table.filter_text:
            self._title_markets(table)  # markets come and go under a kept filter: its count with them

    def _show_detail(self, v: DeskView) -> None:
        detail = self.query_one(MarketDetail)
        detail.view = v
        if detail.ticker != self.selected_ticker():  # first paint, or the selected market settled
            detail.ticker = self.service.focus = self.selected_ticker()

    def _show_panel(self, cls: type, v: DeskView) -> None:
        panel: Any = self.query_one(cls)  # each of them takes the whole view
        if cls is RiskPanel and panel.limits is None:
            panel.limits = DeskLimits(v.edge_threshold, v.max_quote_age_ms, v.max_spread, self.on_daily_stop)
        panel.view = v

    def _check_liveness(self) -> None:
        """Once a second, views or not: the heartbeat on the status line, the panels marked stale
        while the engine is late, and an alert when that changes (liveness.py)."""
        if self.stopping or not self.query(StatusBar):
            return
        hb = self.service.heartbeat()
        now, line = self.heartbeat_watch.update(hb, lambda ms: fmt_hms(ms, self.zone))
        bar = self.query_one(StatusBar)
        bar.liveness = now
        age = hb.tick_age_ms
        bar.tick_age_s = age // 1000 if age is not None and hb.thread == "running" else None
        self.set_class(not now.ok, "-stale")  # every panel's border says its data is not live
        if line is None:
            return
        self.note(line, hb.now_ms)
        if now.level == lv.DOWN:
            self.alert(al.FEED_DOWN, line, "warning")
        elif now.level in (lv.STALLED, lv.DEAD):
            self.alert(al.ENGINE_FAILED, line, "error")
        elif now.ok and self.heartbeat_watch.was == lv.DOWN and not hb.feed_failing:
            self.alert(al.FEED_UP, line, "information")

    def _watch_events(self, v: DeskView) -> None:
        """Alerts on what changed since the last view: the feed, the daily stop, an outside kill."""
        if self.feed is None:
            self.feed = al.FeedWatch(v.max_quote_age_ms)
        ages = [m.age_ms for m in v.markets]
        change = self.feed.update(v.clock_ms, v.feed_errors, min(ages) if ages else None, v.latency_ms)
        self.query_one(StatusBar).feed_down_since = self.feed.down_since
        if change == "down":
            self.alert(al.FEED_DOWN, f"feed down: {self.feed.reason}", "warning")
            self.note(f"FEED DOWN: {self.feed.reason}", v.clock_ms)
        elif change == "up":
            self.alert(al.FEED_UP, "feed back up: fresh quotes", "information")
            self.note("feed back up", v.clock_ms)
        prev = self._prev
        self._prev = v
        said = {_shape(n) for n in prev.feed_notes} if prev is not None else set()
        for line in v.feed_notes:  # a fallback that served, a cap: logged once while it lasts, no alarm
            if _shape(line) not in said:
                self.note(f"feed: {line}", v.clock_ms)
        if v.key_refused != (prev.key_refused if prev is not None else ""):
            if v.key_refused:
                self.alert(al.KEY_REFUSED, key_line(v.key_refused), "error")
                self.note(f"KEY REFUSED: {v.key_refused}", v.clock_ms)
            else:
                self.note(key_line(""), v.clock_ms)
        if prev is None:
            return
        if v.daily_stopped and not prev.daily_stopped:
            what = "open positions flattened" if self.on_daily_stop == "flatten" else "open positions held"
            self.alert(al.DAILY_STOP, f"daily loss cap hit: no new trades until 00:00 UTC; {what}", "error")
            self.note(f"DAILY STOP: no new trades until 00:00 UTC; {what}", v.clock_ms)
        if v.killed and not prev.killed and not self._local_kill:
            if "failed ticks" in v.state:  # the service's failure policy threw it
                self.alert(al.ENGINE_FAILED, f"trading halted: {v.state}", "error")
            else:
                self.alert(al.KILL_EXTERNAL, f"kill switch thrown from outside this desk: {v.state}", "error")
        if not v.killed:
            self._local_kill = False
        if v.paused != prev.paused and v.paused != self._asked_paused:  # `kakashi pause` / `resume`
            self._asked_paused = v.paused
            if v.paused and v.state.startswith("PAUSED (plan "):  # the engine: a plan's kill condition
                self.alert(al.PLAN_KILL, f"trading paused: {v.state}", "error")
            else:
                self.note(f"{'paused' if v.paused else 'resumed'} from outside this desk", v.clock_ms)
        if self.schedule is not None and v.clock_ms // 86_400_000 != prev.clock_ms // 86_400_000:
            self._run_schedule(v.clock_ms)

    @work(thread=True, group="schedule", exclusive=True, exit_on_error=False)
    def _run_schedule(self, now_ms: int) -> None:
        if self.schedule is None:
            return
        try:
            written = self.schedule.run(now_ms, int(self._clock() * 1000))
        except Exception as e:
            self.oplog.error(f"scheduled post-mortem failed: {e}", e)
            self.post_message(Noted(f"scheduled post-mortem failed: {e}"))
            return
        for w in written:
            self.oplog.write("REPORT", f"{w.kind} written to {w.path}")
            self.post_message(Noted(f"{w.kind} post-mortem written to {w.path}"))

    def _notify_alert(self, a: al.Alert) -> None:
        severity: SeverityLevel = (
            "error" if a.severity == "error" else ("warning" if a.severity == "warning" else "information")
        )
        self.notify(
            a.message,
            title=ALERT_TITLES.get(a.kind, "Alert"),
            severity=severity,
            timeout=10 if a.severity == "error" else 5,
        )

    def watch_halted_reason(self, reason: str) -> None:
        for bar in self.query(StatusBar):
            bar.halted_reason = reason  # the bar re-renders and re-colours itself

    def note(self, text: str, ts: int | None = None, category: str = "EVENT") -> None:
        """A line in the desk's log (and the log file): what the desk did (COMMAND) or saw (EVENT).
        It may quote outside text (a feed's error, a kill reason): escaped (core/text.py)."""
        text = safe_text(text, 1000)
        self.notes.append(text)
        self.oplog.write(category, text)
        ts = ts if ts is not None else (self.view.clock_ms if self.view else int(self._clock() * 1000))
        for log in self.query(DecisionLog):  # none while the desk is closing
            log.add(LogEntry(ts, "desk", "", text, "note"))

    @on(Noted)
    def _on_noted(self, message: Noted) -> None:
        self.note(message.text, category=message.category)
        if message.text.startswith("tick failed") and time.monotonic() - self._last_failure_alert > 60:
            self._last_failure_alert = time.monotonic()  # one alert a minute, however many fail
            self.alert(al.ENGINE_FAILED, message.text, "error")

    def _note_when_done(self, fut: Future[object], text: Callable[[object], str]) -> None:
        """Note a command's outcome once the service has applied it (any thread)."""

        def done(f: Future[object]) -> None:
            self.post_message(
                Noted(text(f.result()) if f.exception() is None else f"failed: {f.exception()}", "COMMAND")
            )

        fut.add_done_callback(done)

    # -- selection --------------------------------------------------------------------------
    def selected_ticker(self) -> str | None:
        return self.query_one(MarketsTable).selected

    @on(MarketsTable.Highlighted)
    def _on_row(self, event: MarketsTable.Highlighted) -> None:
        self.service.focus = event.ticker
        for detail in self.query(MarketDetail):  # none while the desk is closing
            detail.ticker = event.ticker
        if self.view is not None and event.ticker is not None and set(self.view.books) != {event.ticker}:
            self.refresh_view()  # the last view was built for another market (the next tick's will do)

    # -- commands: submitted to the service ------------------------------------------------
    def action_pause(self) -> None:
        paused = not self.service.paused  # the intent as last asked: fast presses alternate exactly
        self._asked_paused = paused
        self.service.submit(Pause() if paused else Resume())  # in force at once; stored next tick
        self.note("paused: no new decisions" if paused else "resumed", category="COMMAND")

    def action_kill(self) -> None:
        # The engine refuses orders from this instant, whatever the tick or the DB is doing.
        self._local_kill = True
        self.service.submit(Kill("operator"))
        self.note("KILL SWITCH THROWN: no new orders; press r to re-arm", category="COMMAND")

    def action_rearm(self) -> None:
        drawdown = self.service.drawdown_stopped
        if not self.service.killed and not drawdown:
            self.notify("The kill switch is not thrown.")
            return
        what = "kill switch re-armed" if self.service.killed else "drawdown stop re-armed: the peak restarts here"

        def done(ok: bool | None) -> None:
            if ok:
                self.halted_reason = ""
                self._note_when_done(self.service.submit(Rearm()), lambda _r: what)

        ask = "Re-arm the kill switch and allow new paper orders?"
        if drawdown:
            ask = f"{drawdown}. Re-arm (the peak restarts from the equity now) and allow new paper orders?"
        self.push_screen(ConfirmScreen(ask), done)

    def action_flatten(self) -> None:
        n = len(self.view.positions) if self.view else 0
        if n == 0:
            self.notify("No open positions to flatten.")
            return

        def done(ok: bool | None) -> None:
            if ok:
                # Pause first: otherwise the strategy would buy straight back in on the next tick.
                self._asked_paused = True
                self.service.submit(Pause())
                self._note_when_done(
                    self.service.submit(Flatten()),
                    lambda n: f"flattened: {n} sale(s) at the bids; trading paused (p resumes)",
                )

        self.push_screen(ConfirmScreen(f"Flatten all {n} paper positions at the bids and pause trading?"), done)

    def action_export(self) -> None:
        self._export()

    @work(thread=True, group="commands", exit_on_error=False)
    def _export(self) -> None:
        try:  # a read-only connection of its own: the report never writes
            out = export_postmortem(
                self.service.db_path, self.reports_dir, int(self._clock() * 1000), fees=self.service.fees
            )
        except Exception as e:
            self.call_from_thread(self.notify, f"export failed: {e}", severity="error")
            return
        self.last_export = out.path
        where = out.path.resolve()
        self.call_from_thread(self.notify, f"written to {where}", title="Post-mortem exported")
        self.call_from_thread(self.note, f"exported {where}", None, "REPORT")
        self.call_from_thread(self.push_screen, ReportScreen(out.path, out.figures))

    async def action_set_estimate(self) -> None:
        t = self.selected_ticker()
        if t is None or self.view is None:
            self.notify("No market selected.")
            return

        def why_closed() -> str:  # as the latest view has it (the engine checks again)
            v = self.view
            return not_open(next((m for m in v.markets if m.ticker == t), None), v.clock_ms) if v else ""

        if why := why_closed():
            self.notify(f"{t} is no longer open ({why}): p̂ is for open markets.", severity="warning")
            return
        current = next((m.p_hat for m in self.view.markets if m.ticker == t), None)

        def done(p) -> None:
            if p is not None:
                self._note_when_done(
                    self.service.submit(SetEstimate(t, p)),
                    lambda e: (
                        f"p̂ for {t} set to {p} (operator)"
                        if e is not None
                        else f"p̂ for {t} not set: the market closed before it applied"
                    ),
                )

        screen = EstimateScreen(t, current, why_closed)
        await self.push_screen(screen, done)  # mounted: the keys typed meanwhile wait (on_event) ...
        screen.focus_input()  # ... for its box to have focus

    def action_sort(self) -> None:
        if self.view:
            mode = self.query_one(MarketsTable).cycle_sort({m.ticker: m for m in self.view.markets})
            self.notify(f"sorted by {mode}", timeout=2)

    def action_cycle_panel(self) -> None:
        """Narrow: the next of the lower panels. Medium: the risk caps or the bankroll, in turn, beside
        the positions (no room for both: realised PnL and fees were out of reach at 100-129 columns)."""
        if self.has_class("-medium"):  # risk caps -> bankroll -> orders (in the log's row) -> ...
            if self.has_class("-orders"):
                self.remove_class("-orders")
            elif self.has_class("-bankroll"):
                self.remove_class("-bankroll")
                self.add_class("-orders")
            else:
                self.add_class("-bankroll")
            return
        self.lower_panel = (self.lower_panel + 1) % len(LOWER_PANELS)
        self._show_lower_panel()

    def action_swap_orders(self) -> None:
        """130 columns and more: the orders panel in the decision log's row, and back."""
        self.toggle_class("-orders")

    def _orders_shown(self) -> bool:
        if self.has_class("-narrow"):
            return LOWER_PANELS[self.lower_panel] == "orders-panel"
        return self.has_class("-orders")

    def action_cancel_order(self) -> None:
        """Cancel the order selected in the orders panel, once asked (Enter = No): the engine asks
        the exchange's cancel, in force after the cancel latency (the order can fill until then)."""
        panel = self.query_one(OrdersPanel)
        oid = panel.selected if self._orders_shown() else None
        line = next((o for o in self.view.orders if o.order_id == oid), None) if self.view and oid else None
        if line is None:
            self.notify("No order selected: v shows the orders panel." if oid is None else "That order is done.")
            return
        order_id = line.order_id
        what = f"order {order_id} ({line.ticker} {line.side.value.upper()})"

        def done(ok: bool | None) -> None:
            if ok:
                self._note_when_done(
                    self.service.submit(CancelOrder(order_id)),
                    lambda r: f"cancel asked for {what}" if r else f"{what} not cancelled: no longer live",
                )

        self.push_screen(ConfirmScreen(f"Cancel {what}? It can still fill until the cancel takes effect."), done)

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_performance(self) -> None:
        """Today, this week, since the start (the service sums them from the ledger each view)."""
        if self.view is None or self.view.performance is None:
            self.notify("No figures yet.")
            return
        self.push_screen(PerformanceScreen(self.view, lambda ms, f: fmt_time(ms, self.zone, f), self.action_export))

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        # Textual's own "Keys" (its key panel) would sit beside ours: one "Keys", the desk's help.
        yield from (c for c in super().get_system_commands(screen) if c.title != "Keys")
        yield SystemCommand("Pause / resume trading", "p: stop or restart new decisions", self.action_pause)
        yield SystemCommand("Kill switch", "k: stop all new orders now; persisted", self.action_kill)
        yield SystemCommand("Re-arm kill switch", "r: allow orders again (asks first)", self.action_rearm)
        yield SystemCommand("Flatten all positions", "f: sell every paper position at the bids", self.action_flatten)
        yield SystemCommand(
            "Export post-mortem", "e: write reports/<time>/postmortem.md beside the database", self.action_export
        )
        yield SystemCommand("Set p̂ for the selected market", "b: your own estimate", self.action_set_estimate)
        yield SystemCommand(
            "Performance summary",
            "m: realised, unrealised, fees, win rate: today, this week, since start",
            self.action_performance,
        )
        yield SystemCommand(
            "Fills blotter",
            "t: every fill, newest first: time, side, price, quantity, fee, maker or taker",
            self.action_blotter,
        )
        yield SystemCommand("Sort markets", "s: ticker, edge, quote age", self.action_sort)
        yield SystemCommand("Find markets", "/: filter by ticker or title", self.action_find)
        yield SystemCommand("Market detail", "enter: close time, volume, fee, price chart", self.action_market)
        yield SystemCommand("Rejected rows", "x: what the validator refused, and why", self.action_rejected)
        yield SystemCommand("Keys", "?: the help screen", self.action_help)

    async def action_quit(self) -> None:
        """q, Ctrl-C, SIGTERM: with open positions, ask first (Enter = No); then stop the service
        (at most ~1 s whatever the feed does; queued commands are applied) and leave."""
        n = len(self.view.positions) if self.view else 0
        if n == 0 or self.stopping:
            await self._stop_and_exit()
            return

        def done(ok: bool | None) -> None:
            if ok:
                self.call_later(self._stop_and_exit)

        self.push_screen(
            ConfirmScreen(
                f"Quit with {n} open paper position(s)? They stay open in the ledger and "
                "are marked again when the desk restarts."
            ),
            done,
        )

    async def _stop_and_exit(self) -> None:
        if self.stopping:
            return
        self.stopping = True
        self.oplog.flush_repeats()  # the counts first: the last line says how the run ended
        self.oplog.command("quit")
        self.halted_reason = "stopping…"  # trading stops now; the bar says so at once
        self.notify("stopping…", timeout=5)
        await asyncio.sleep(0)  # let the frame with "stopping…" go out
        await asyncio.to_thread(self.service.stop, clean=True)  # a clean quit (status --health)
        self.exit(0)

    # -- typing ahead -------------------------------------------------------------------------
    async def on_event(self, event: events.Event) -> None:
        """What is typed after a key that opens a box (``b``: p̂, ``/``: the filter) goes into
        that box, in order, however fast.

        A typed key is handed to the focused widget, and its binding acts only when the key
        bubbles back up to the desk; the keys typed after it are handed out meanwhile. They went
        to the markets table, where digits were lost, or reached the box's own binding once it
        had opened: ``b 0 . 6 5 enter`` set p̂ to the old value, or to half of what was typed.
        So from such a key until its box has focus, the keys typed next wait here (a priority
        key, the kill switch, still acts at once), then go on in the order they were typed."""
        if not isinstance(event, events.Key):
            await super().on_event(event)
        elif not event.is_forwarded:  # typed just now
            if self._held is not None:
                if not await self._check_bindings(event.key, priority=True):
                    self._held.append(event)
                return
            if self._opens_box(event.key):
                self._held, self._held_for = [], event
                self._hold_timer = self.set_timer(HOLD_KEYS_S, self._release_keys, name="desk-typing")
            await super().on_event(event)
        else:  # back from the focused widget: its binding acts now
            try:
                await super().on_event(event)
            finally:
                if event is self._held_for:
                    await self._release_keys()

    def _opens_box(self, key: str) -> bool:
        if len(self.screen_stack) != 1 or isinstance(self.focused, Input):
            return False  # a dialog is open, or the filter box has the keys already
        return any(b.action in TYPING_ACTIONS for b in self._bindings.key_to_bindings.get(key, ()))

    async def _release_keys(self) -> None:
        """The keys held while a box opened, to whatever has focus now (the box, if it opened)."""
        held, self._held, self._held_for = self._held or [], None, None
        if self._hold_timer is not None:
            self._hold_timer.stop()
            self._hold_timer = None
        for key in held:
            await super().on_event(key)

    # -- find, inspect ------------------------------------------------------------------------
    def action_find(self) -> None:
        find = self.query_one("#find", Input)
        find.display = True
        find.screen.set_focus(find)  # at once (not a frame later): what is typed next is the filter's

    @on(Input.Changed, "#find")
    def _on_find(self, event: Input.Changed) -> None:
        table = self.query_one(MarketsTable)
        table.filter_text = event.value.strip()
        self._title_markets(table)

    @staticmethod
    def _title_markets(table: MarketsTable) -> None:
        f = table.filter_text
        table.border_title = f"Markets · filter {f!r}: {table.row_count}/{table.total}" if f else "Markets"

    @on(Input.Submitted, "#find")
    def _on_find_done(self, event: Input.Submitted) -> None:
        if not event.value.strip():
            self.query_one("#find", Input).display = False
        self.query_one(MarketsTable).focus()

    def on_key(self, event) -> None:
        """Esc on the desk clears the filter, wherever the focus is: in the box, or on the table
        or the log after enter kept it (a dialog's esc is the dialog's)."""
        if event.key != "escape" or len(self.screen_stack) != 1:
            return
        find = self.query_one("#find", Input)
        if find.has_focus or find.display:
            find.value = ""
            find.display = False
            self.query_one(MarketsTable).focus()
            event.stop()

    def _read(self, query, *args):
        """A look-up on the database through its own read-only connection (never the writer's)."""
        con = connect_readonly(self.service.db_path)
        try:
            return query(con, *args)
        finally:
            con.close()

    def action_focus_log(self) -> None:
        self.query_one(DecisionLog).focus()

    def action_market(self) -> None:
        t = self.selected_ticker()
        if t is None or self.view is None:
            self.notify("No market selected.")
            return
        self._open_market(t)

    @work(thread=True, group="screens", exclusive=True, exit_on_error=False)
    def _open_market(self, ticker: str) -> None:
        try:
            quotes, volume, p_hats = self._read(market_history, ticker)
        except Exception as e:
            self.call_from_thread(self.notify, f"cannot read {ticker}'s history: {e}", severity="error")
            return
        v = self.view
        line = next((m for m in v.markets if m.ticker == ticker), None) if v else None
        info = MarketInfo(
            ticker=ticker,
            title=(line.full_title or line.title) if line else "",
            status=line.status if line else "?",
            close_ts=line.close_ts if line else None,
            volume=volume,
            fee_multiplier=line.fee_multiplier if line else None,
            bid=line.bid if line else None,
            ask=line.ask if line else None,
            p_hat=line.p_hat if line else None,
            p_source=line.p_source if line else "",
            signal=line.signal if line else "",
            quotes=quotes,
            p_hats=p_hats,
        )
        self.call_from_thread(self.push_screen, MarketScreen(info, self._fmt_when))

    def _fmt_when(self, ms: int | None) -> str:
        return fmt_time(ms, self.zone, "%Y-%m-%d %H:%M")

    def action_rejected(self) -> None:
        self._open_rejected()

    @work(thread=True, group="screens", exclusive=True, exit_on_error=False)
    def _open_rejected(self) -> None:
        try:
            rows, total = self._read(rejected_rows)
        except Exception as e:
            self.call_from_thread(self.notify, f"cannot read the rejected rows: {e}", severity="error")
            return
        lines = [  # a rejected row's ticker and reason are the feed's text: escaped (core/text.py)
            RejectedLine(ts, safe_text(t), src, safe_text(why, None), payload, n)
            for ts, t, src, why, payload, n in rows
        ]
        self.call_from_thread(
            self.push_screen, RejectedScreen(lines, total, lambda ms: fmt_time(ms, self.zone).split()[0])
        )

    def action_blotter(self) -> None:
        self._open_blotter()

    @work(thread=True, group="screens", exclusive=True, exit_on_error=False)
    def _open_blotter(self) -> None:
        """Every fill, newest first, read when opened (fills accumulate: a look-up, not the view)."""
        try:
            rows, total = self._read(fills_blotter)
        except Exception as e:
            self.call_from_thread(self.notify, f"cannot read the fills: {e}", severity="error")
            return
        fills = [  # a ticker is the feed's text: escaped (core/text.py)
            FillLine(fid, ts, safe_text(t), side, action, n, avg, value, fee, liq)
            for fid, ts, t, side, action, n, avg, value, fee, liq in rows
        ]
        v = self.view
        as_of = fmt_time(v.clock_ms if v else int(self._clock() * 1000), self.zone)
        self.call_from_thread(
            self.push_screen, BlotterScreen(fills, total, lambda ms, f: fmt_time(ms, self.zone, f), as_of)
        )

    # -- unforeseen errors ----------------------------------------------------------------
    def _handle_exception(self, error: Exception) -> None:
        """A bug in the desk: stop the engine, leave a crash log, exit 70 with one line (no traceback
        on the operator's screen). The ledger is already stored, one transaction per tick."""
        import traceback

        from kakashi_tui.adapters.crashlog import write_crash_log

        self.crash_path = write_crash_log("".join(traceback.format_exception(error)))
        self.oplog.error(f"desk crashed: {error.__class__.__name__}: {error}", error)
        super()._handle_exception(error)
        self._exit_renderables.clear()  # no traceback on the operator's screen: run_desk prints one line
        where = f"; details in {self.crash_path}" if self.crash_path else ""
        self.crash_message = (
            f"kakashi: internal error: {error.__class__.__name__}: {error}{where} (what was stored is intact)"
        )
        self._return_code = 70


def run_desk(opts, cfg, interval: float | None = None, ticks: int | None = None, log_path: str | None = None) -> int:
    from kakashi_tui.frontends.logfile import default_log_path
    from kakashi_tui.trading.runtime import build_service, db_path

    db = db_path(opts, cfg)
    log = OperatorLog(log_path or cfg.desk.log or default_log_path(db), db=db)
    # Under Textual the screen is the desk's: what the service has to say goes to the log file
    # (and, through on_log, to the desk's own log panel), never to the terminal.
    service, close = build_service(
        opts,
        cfg,
        interval=interval,
        ticks=ticks,
        desk=True,
        view_hz=RENDER_HZ,
        log=lambda line: log.write("EVENT", line),
    )
    try:
        app = KakashiApp(
            service,
            zone=cfg.desk.time_zone,
            log=log,
            bell=cfg.alerts.bell,
            webhook=cfg.alerts.webhook_url,
            on_daily_stop=cfg.risk.on_daily_stop,
            postmortem=cfg.desk.postmortem,
            fill_alerts=cfg.alerts.fills,
            reports_dir=reports_folder(db_path(opts, cfg), cfg.desk.reports_dir),
        )
        result = app.run()
        if app.crash_message:
            print(app.crash_message, file=sys.stderr)
        print("kakashi: stopping…", file=sys.stderr, flush=True)
        service.stop()
        print(service.summary(), flush=True)
        return app.return_code if app.return_code else (result or 0)
    finally:
        close()
        log.close()
