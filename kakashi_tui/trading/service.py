"""The trading service: the one owner of the running engine.

Every front-end (the desk, ``run --headless``, ``replay``, the benchmarks) drives the engine
through this service and nothing else. It owns

- the engine's thread, the loop and its cadence, start-up and a prompt shutdown;
- the command queue: front-ends ``submit`` small immutable commands (``commands.py``);
  they are applied in order at the top of the next tick, inside its ``BEGIN IMMEDIATE``
  transaction (or at once, in their own transaction, when the loop is idle between ticks).
  A kill or a pause flips the engine's in-memory flag the moment it is submitted, so the
  risk gate sees it before the very next decision;
- the one failure policy: a failed tick is logged with its reason and retried on the next;
  after ``max_consecutive_failures`` in a row the kill switch is thrown with that reason.
  Retries back off (``RETRY_FIRST_S`` doubling to ``RETRY_CAP_S``, never sooner than the
  interval), and past the limit the same failure is logged only at 8, 16, 32, ... in a row
  (with the default 5): an engine that keeps failing neither spins a core nor floods the front-end's log;
- the only writing connection: one thread writes at a time (``_writer``), and after
  ``stop`` nothing writes again;
- the views: after each tick it publishes a ``TickReport`` (the headless log line) and, if a
  front-end listens, an immutable ``DeskView``, built from the engine and the windows over the
  run it keeps from each report (``view.DeskWindows``: the decision log, the equity chart); on
  the first tick of a UTC day (engine clock), the day before it summed from the ledger
  (``on_day``: the daily summary). Front-ends read only those.
"""

from __future__ import annotations

import gc
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from decimal import Decimal

from kakashi_tui.adapters.source import CommandRecord
from kakashi_tui.adapters.store.controls import Control, ControlValue, RunRecord
from kakashi_tui.adapters.store.writer import db_trouble
from kakashi_tui.core.backoff import Backoff
from kakashi_tui.core.fees import FeeSchedule
from kakashi_tui.core.money import fmt_cc
from kakashi_tui.trading.commands import (
    CancelOrder,
    Command,
    Flatten,
    Kill,
    Pause,
    Quit,
    Rearm,
    ReloadBeliefs,
    Resume,
    SetEstimate,
)
from kakashi_tui.trading.engine import Engine, TickReport, utc_day
from kakashi_tui.trading.liveness import Heartbeat
from kakashi_tui.trading.performance import DAY_MS, ClosedDay, PerformanceBook
from kakashi_tui.trading.requests import send_request  # (its home is requests.py; kept here by name)
from kakashi_tui.trading.view import (
    EQUITY_KEPT,
    DeskView,
    DeskWindows,
    FeedStatus,
    build_view,
    feed_status,
    with_flags,
)

__all__ = [
    "TradingService",
    "ServiceStats",
    "Restored",
    "Command",
    "Pause",
    "Resume",
    "Kill",
    "Rearm",
    "Flatten",
    "SetEstimate",
    "ReloadBeliefs",
    "Quit",
    "CancelOrder",
    "send_request",
]

DEFAULT_MAX_FAILURES = 5
RETRY_FIRST_S = 0.05  # a failed tick is retried after this long, doubling with each failure in a row
RETRY_CAP_S = 5.0  # ... up to this; the configured interval is the floor
TICK_RETRY = Backoff(RETRY_FIRST_S, RETRY_CAP_S, jitter=False)  # (core/backoff.py: the one policy)
STOP_TIMEOUT_S = 1.0  # stop() gives the engine thread this long; the process ends within 2 s
# While the engine's thread runs, a front-end thread (the desk's event loop) gets the GIL back
# within this long. CPython's default (5 ms) is paid by the desk on every event-loop turn: each
# turn's select() hands the GIL to the engine, which ticks pure Python flat out and keeps it
# until forced off, so a key waited behind a view's render for 100-250 ms (see benchmarks/README).
FRONT_END_SWITCH_S = 0.0005
# The collector's thresholds while the service's thread runs (CPython's: 700, 10, 10). Young
# collections every 10,000 allocations instead of 700: a tick of 1,000
# markets allocates tens of thousands of tracked objects, and every ten young collections
# may trigger a full one (100-300 ms with 1,000 markets on a loaded machine) that stops
# every thread, keys included. Fewer young collections, far fewer full ones. A replay on the
# calling thread (run_here) takes the same young threshold: ~5% of its time went to collections.
# The middle and oldest generations' (issue #19): at 5,000 markets a tick leaves
# ~80,000 new tracked objects alive, so a middle collection under (20,000, 10, 10) scanned up
# to 200,000 of them (~90-110 ms CPU, a desk stall each) and a full one (~240 ms) came every
# ~25 ticks. Under (10,000, 5, 200) a middle one scans at most ~60,000 (~25-50 ms) and a full
# one comes after 10 M allocations (~60 ticks), not 2 M: the same collector time, in pieces
# a key does not notice.
FRONT_END_GC_THRESHOLDS = (10_000, 5, 200)
# A replay on the calling thread (run_here) has no desk to stall: the young threshold alone,
# as before issue #19 (its figures were measured so).
RUN_HERE_GC_THRESHOLDS = (20_000, 10, 10)


@dataclass(frozen=True, slots=True)
class Restored:
    """What a restart resumed from its database, for the one line a front-end says about it."""

    state: str  # RUNNING, PAUSED, HALTED (why)
    state_kind: str  # running | paused | halted
    killed: bool  # the kill switch is thrown (a daily stop halts too, and needs no re-arm)
    since_ms: int | None  # when the pause or the kill began (engine clock)
    by: str  # who paused ("operator", "cli", ...)
    open_positions: int
    today_pnl_cc: int
    daily_cap_cc: int  # the loss that stops new trades today
    last_tick_ms: int | None  # the last stored tick (engine clock)
    ticks: int


@dataclass(frozen=True, slots=True)
class ServiceStats:
    ticks: int  # ticks this service ran (successful)
    failed_ticks: int
    consecutive_failures: int
    last_failure: str


class Ticket(Future[object]):
    """A submitted command's future, with its place in the queue (``seq``, from 1)."""

    def __init__(self, seq: int) -> None:
        super().__init__()
        self.seq = seq


@dataclass(slots=True)
class _Pending:
    seq: int
    cmd: Command
    future: Ticket
    result: object = None


class TradingService:
    def __init__(
        self,
        engine: Engine,
        *,
        interval: float = 0.5,
        max_ticks: int | None = None,
        max_consecutive_failures: int = DEFAULT_MAX_FAILURES,
        view_hz: float = 4.0,
        log: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._engine = engine
        self.collect_notes: list[str] = []  # the last collect's notes (FetchBatch.notes)
        self._book = PerformanceBook(engine.store)  # the performance summary's sums, between views
        # the desk's decision log, equity chart and book history, fed by each tick's report (the
        # engine keeps none); the chart starts from the equity the store recorded (a restart)
        self.windows = DeskWindows(engine.store.recent_equity(EQUITY_KEPT))
        self._clock = clock  # wall seconds: the heartbeat's times (liveness.py)
        self.interval = interval
        self.max_ticks = max_ticks
        self.max_consecutive_failures = max(1, max_consecutive_failures)
        self.view_hz = view_hz
        self._log_listeners: list[Callable[[str], None]] = [log] if log else []
        self._queue: deque[_Pending] = deque()
        self._queue_lock = threading.Lock()  # put order = apply order, across threads
        self._seq = 0
        self.applied: list[int] = []  # sequence numbers of applied commands, in order (tests, audit)
        self._writer = threading.RLock()  # held while writing: one writer at a time, none after stop
        self._applied_in_step = False  # the last step applied a command (run_here commits it at once)
        self._closed = False
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.finished = threading.Event()  # max_ticks reached, or stopped
        self._thread: threading.Thread | None = None
        self._ticks = 0
        self._failed = 0
        self._consecutive = 0
        self._last_failure = ""
        self._failure_logged = ""  # the last failure line said (repeats of it are thinned)
        self._view_listeners: list[Callable[[DeskView], None]] = []
        self._report_listeners: list[Callable[[TickReport], None]] = []
        self._day_listeners: list[Callable[[ClosedDay], None]] = []
        self._last_view_at = 0.0
        self._view_wanted = False
        self.view: DeskView | None = None
        self.last_report: TickReport | None = None
        self._report_day: int | None = None  # the UTC day (engine clock) of the last report
        self.focus: str | None = None  # the desk's selected market: its quote history goes in views
        self.notes: list[str] = []  # what resolving the settings had to say (shown once by front-ends)
        self._switch_was: float | None = None  # the GIL switch interval before start() (see FRONT_END_SWITCH_S)
        self._gc_was: tuple[int, int, int] | None = None  # the collector's thresholds before start()
        # The heartbeat (liveness.py): what the loop is doing and since when, written by the
        # engine's thread as one tuple (a reader on another thread never sees it torn).
        self._phase: tuple[str, int, int | None] = ("idle", self._wall_ms(), None)  # (phase, since, due)
        self._fetch_failed = False  # the last completed fetch reported errors (the feed is failing)
        self._last_tick_ms: int | None = None
        self._done = False  # max_ticks reached: the loop only serves commands now
        self.died = ""  # why the engine's thread ended without being asked to
        self._stopping = threading.Lock()  # one stop at a time (a signal's and the main thread's)
        # What the run before this one left, when it stopped without a clean quit (read by start():
        # ``health.previous_run_line`` says it; each front-end raises it as an alert).
        self.unclean_previous: RunRecord | None = None

    # -- what front-ends may read ------------------------------------------------------------
    @property
    def source_name(self) -> str:
        return self._engine.source.name

    @property
    def feed(self) -> FeedStatus:
        """Which feed is live now (the headless log says when it changes)."""
        return feed_status(self._engine.source)

    @property
    def db_path(self) -> str:
        return str(self._engine.store.path)

    @property
    def stats(self) -> ServiceStats:
        return ServiceStats(self._ticks, self._failed, self._consecutive, self._last_failure)

    @property
    def paused(self) -> bool:
        """Paused as last asked (in force at once, whatever the last view shows)."""
        return self._engine.flags.paused

    @property
    def killed(self) -> bool:
        return self._engine.flags.kill

    @property
    def drawdown_stopped(self) -> str:
        """Why the drawdown stop halted trading ("": it has not); a re-arm (``Rearm``) lifts it."""
        return self._engine.drawdown_reason

    @property
    def state(self) -> str:
        return self._engine.state_label()

    @property
    def fees(self) -> FeeSchedule:
        """The engine's fee schedule: reports mark open positions at it, as the engine does."""
        return self._engine.fees

    @property
    def edge_threshold(self) -> Decimal:
        """The EV per contract at or above which the strategy buys (front-ends show EVs against it)."""
        return self._engine.cfg.strategy.edge_threshold

    def _wall_ms(self) -> int:
        return int(self._clock() * 1000)

    def heartbeat(self) -> Heartbeat:
        """What the engine's thread is doing now (any thread; ``liveness.assess`` judges it)."""
        phase, since, due = self._phase
        if self._thread is None:
            thread = "not started"
        elif self._closed or self._stop.is_set():
            thread = "stopped"
        elif not self._thread.is_alive():
            thread = "done" if self._done else "dead"
        else:
            thread = "done" if self._done else "running"
        return Heartbeat(
            now_ms=self._wall_ms(),
            thread=thread,
            phase=phase,
            phase_since_ms=since,
            due_ms=due,
            last_tick_ms=self._last_tick_ms,
            interval_s=self.interval,
            stale_ms=self._engine.cfg.limits.max_quote_age_ms,
            died=self.died,
            feed_failing=self._fetch_failed,
        )

    def restored(self) -> Restored | None:
        """What this run resumes (None for a new database): the state and since when, the open
        positions marked as the run left them, today's PnL against the daily cap, the last tick.
        Read before the loop starts (the engine's thread owns the store afterwards)."""
        e = self._engine
        if not e.tick_count:
            return None
        v = build_view(e)
        since = None
        if v.killed:
            since = e.store.last_event(("kill_switch",))
        elif v.drawdown_reason:
            since = e.store.last_event(("drawdown_stop",))
        elif v.paused:
            since = e.store.last_event(("pause", "flatten"))
        by = since[1] if since and v.paused else ""
        return Restored(
            state=v.state,
            state_kind=v.state_kind,
            killed=v.killed,
            since_ms=since[0] if since else None,
            by="operator" if by in ("", "desk", "operator") else by,
            open_positions=len(v.positions),
            today_pnl_cc=v.today_pnl_cc,
            daily_cap_cc=v.daily_cap_cc,
            last_tick_ms=e.store.last_tick_ts(),
            ticks=e.tick_count,
        )

    def on_view(self, listener: Callable[[DeskView], None]) -> None:
        """Call ``listener`` (from the engine's thread, or a submitter's) with each new view."""
        self._view_listeners.append(listener)

    def on_report(self, listener: Callable[[TickReport], None]) -> None:
        self._report_listeners.append(listener)

    def on_day(self, listener: Callable[[ClosedDay], None]) -> None:
        """Call ``listener`` (on the engine's thread) when a tick begins a new UTC day on the engine's
        clock, with the day before it summed from the ledger (performance.py): the daily summary."""
        self._day_listeners.append(listener)

    def on_log(self, listener: Callable[[str], None]) -> None:
        """Lines the service has to say (a failed tick and its reason, a kill it threw)."""
        self._log_listeners.append(listener)

    def _log(self, line: str) -> None:
        for fn in self._log_listeners:
            fn(line)

    def publish_view(self) -> DeskView:
        """Build and publish a view now (the engine's thread, or before the loop starts)."""
        v = self.view = build_view(self._engine, self.focus, self._book, self.windows)
        self._last_view_at = time.monotonic()
        for fn in self._view_listeners:
            fn(v)
        return v

    def request_view(self) -> None:
        """Ask the running loop for a fresh view soon (the desk's selection changed)."""
        self._view_wanted = True
        self._wake.set()

    # -- commands -----------------------------------------------------------------------------
    def submit(self, cmd: Command) -> Ticket:
        """Queue a command (any thread). Kill, pause and resume take effect in memory at once."""
        with self._queue_lock:
            self._seq += 1
            fut = Ticket(self._seq)
            if isinstance(cmd, Kill):
                self._engine.throw_kill(cmd.reason)
            elif isinstance(cmd, (Pause, Resume)):
                self._engine.want_paused(isinstance(cmd, Pause))
            self._queue.append(_Pending(self._seq, cmd, fut))
        if isinstance(cmd, (Kill, Pause, Resume)) and self.view is not None:
            f = self._engine.flags
            v = self.view = with_flags(self.view, f.kill, f.kill_reason, f.paused, f.pause_reason)
            for fn in self._view_listeners:
                fn(v)
        if isinstance(cmd, Quit):
            self._stop.set()
        self._wake.set()
        return fut

    def _apply_queued(self) -> list[_Pending]:
        """Apply every queued command, in order (inside the caller's transaction). They leave
        the queue only when that transaction commits (``_commit_applied``)."""
        with self._queue_lock:
            batch = list(self._queue)
        now = self._engine.source.now_ms()
        for p in batch:
            p.result = self._engine.execute(p.cmd, now)
        return batch

    def _commit_applied(self, batch: list[_Pending]) -> None:
        self._engine.commands_committed()  # (committed: the catalog records them)
        with self._queue_lock:
            for _ in batch:
                self._queue.popleft()
        for p in batch:
            self.applied.append(p.seq)
            p.future.set_result(p.result)

    def apply_pending(self) -> int:
        """Apply queued commands now, in their own transaction (the loop between ticks; tests)."""
        with self._writer:
            if self._closed or not self._queue:
                return 0
            try:
                with self._engine.store.atomic():
                    batch = self._apply_queued()
            except Exception as e:  # noqa: BLE001 - the same policy as a failed tick
                self._engine.resync()
                self._failed_step(e)
                return 0
            self._commit_applied(batch)
        return len(batch)

    def apply_recorded(self, records: list[CommandRecord]) -> int:
        """A replay's recorded operator commands left after its last tick (a flatten before the
        live run quit), applied now in their own transaction as the live run applied them."""
        with self._writer:
            if self._closed or not records:
                return 0
            with self._engine.store.atomic():
                n = self._engine.apply_recorded(records)
            self._engine.commands_committed()
        return n

    # -- ticking ------------------------------------------------------------------------------
    def step(self) -> TickReport | None:
        """One tick on the calling thread, under the failure policy: the report, or None if it
        failed (logged; retried by the next call) or the service is stopped."""
        if self._closed:
            return None
        self._applied_in_step = False
        self._phase = ("fetching", self._wall_ms(), None)
        batch, fetch_ms = self._engine.fetch()  # the network, outside any transaction and lock
        self._fetch_failed = bool(batch.errors)  # read by heartbeat(): set before the phase moves on
        self._phase = ("writing", self._wall_ms(), None)
        applied: list[_Pending] = []

        def top() -> None:
            applied.extend(self._apply_queued())

        with self._writer:
            if self._closed:
                return None
            if batch.errors and self._stop.is_set():
                # Asked to stop while fetching: the source ended its fetch early (Kalshi's client
                # raises "stopped"). Its errors are the quit's, not the feed's: no tick is written
                # and no FEED DOWN is raised (nor sent to the webhook) on the way out.
                return None
            try:
                report = self._engine.apply_batch(batch, fetch_ms, top)
            except Exception as e:  # noqa: BLE001 - one policy for every failure
                self._failed_step(e)
                return None
            self._commit_applied(applied)
            self._applied_in_step = bool(applied)
        self._ticks += 1
        self._consecutive = 0
        self._last_tick_ms = self._wall_ms()
        self.last_report = report
        self.windows.feed(report)
        for fn in self._report_listeners:
            fn(report)
        self._close_day(report.ts)
        for line in self._engine.take_said():  # a beliefs re-read's summary, refused lines
            self._log(line)
        return report

    def _close_day(self, ts: int) -> None:
        """On the first tick of a new UTC day (engine clock), the day before it, summed, to ``on_day``."""
        day, last = ts // DAY_MS, self._report_day
        self._report_day = day if last is None else max(day, last)
        if last is None or day <= last or not self._day_listeners:
            return
        closed = self._book.closed_day(self._engine.account, last * DAY_MS, utc_day(last * DAY_MS))
        for fn in self._day_listeners:
            fn(closed)

    def _failed_step(self, e: BaseException) -> None:
        self._failed += 1
        self._consecutive = n = self._consecutive + 1
        why = db_trouble(e) or f"{e.__class__.__name__}: {e}"  # a full disk says so, not "cannot rollback"
        self._last_failure = reason = f"tick failed: {why}"[:160]
        if n <= self.max_consecutive_failures or n & (n - 1) == 0 or reason != self._failure_logged:
            self._failure_logged = reason
            self._log(reason if n == 1 else f"{reason} ({n} in a row)")
        if n == self.max_consecutive_failures:
            why = f"{n} failed ticks in a row ({reason})"[:160]
            self.submit(Kill(why))  # in force at once; stored by the next transaction that commits
            self._log(f"kill switch thrown: {why}")

    def retry_delay(self) -> float:
        """How long the loop waits before the next tick: the interval, or longer after failures."""
        if not self._consecutive:
            return self.interval
        return max(self.interval, TICK_RETRY.delay(self._consecutive - 1))

    def collect(self) -> tuple[list[str], int, list[str]]:
        """One pass of fetch -> validate -> persist, no trading (``kakashi snapshot``):
        (tickers saved, rejected rows, feed errors); the pass's notes in ``collect_notes``."""
        with self._writer:
            if self._closed:
                return [], 0, ["stopped"]
            snaps, rejected, errors = self._engine.collect()
            self.collect_notes = list(self._engine.last_notes)
        return [q.ticker for q in snaps], rejected, errors

    def run_here(self, more: Callable[[], bool] = lambda: True, commit_every: int = 1) -> int:
        """Tick on the calling thread, back to back, while ``more()`` (replay, benchmarks).

        ``commit_every`` > 1 writes that many ticks per transaction, each tick a savepoint in
        it (a failed tick still rolls back alone). A replay does: a commit costs about what a
        tick of a thousand rows does, and a replay interrupted is replayed again into a new
        database anyway. A tick that applied a command commits at once (its sender is told
        it took effect). Such a transaction writes each market's newest quote of its ticks,
        not every one (``Engine.hold_quotes``): the replayed file or catalog keeps them all."""
        n = 0

        def going() -> bool:
            return more() and not self._stop.is_set() and (self.max_ticks is None or n < self.max_ticks)

        self._fewer_collections(RUN_HERE_GC_THRESHOLDS)  # (a replay allocates as a live tick does)
        try:
            if commit_every <= 1:
                while going():
                    self.step()
                    n += 1
                return n
            engine = self._engine
            engine.hold_quotes(True)  # each market's newest quote of a commit is written, not every one
            try:
                while going():
                    with self._writer, engine.store.atomic():
                        for _ in range(commit_every):
                            self.step()
                            n += 1
                            if self._applied_in_step or not going():
                                break
                        engine.flush_quotes()
            finally:
                engine.hold_quotes(False)
            return n
        finally:
            self._restore_process_settings()

    def _maybe_view(self, force: bool = False) -> None:
        if self._view_listeners and (force or time.monotonic() - self._last_view_at >= 1 / self.view_hz):
            self.publish_view()

    def _run(self) -> None:
        try:
            n = 0
            while not self._stop.is_set():
                if self.max_ticks is None or n < self.max_ticks:
                    if self.step() is None and self._queue:
                        self.apply_pending()  # a failing tick must not hold the commands (a kill) hostage
                    n += 1
                    last = self.max_ticks is not None and n >= self.max_ticks
                    self._maybe_view(force=last)
                    if last:
                        self._done = True
                        self._record_run({Control.RUN_DONE_MS: self._wall_ms()})  # no tick is due now
                        self.finished.set()
                    delay = self.retry_delay()
                    deadline = time.monotonic() + delay
                    now = self._wall_ms()
                    self._phase = ("waiting", now, now + int(delay * 1000))
                else:
                    deadline = float("inf")  # done ticking: still serve commands until stopped
                    self._phase = ("idle", self._wall_ms(), None)
                while not self._stop.is_set():
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    if self._wake.wait(min(remaining, 3600)):
                        self._wake.clear()
                        if self._stop.is_set():
                            break
                        if self.apply_pending() or self._view_wanted:
                            self._view_wanted = False
                            self._maybe_view(force=True)
        except BaseException as e:  # noqa: BLE001 - the thread ends; its reason must not vanish with it
            self.died = f"{e.__class__.__name__}: {e}"[:160]
            self._log(f"the engine's thread ended: {self.died}")
        finally:
            self._restore_process_settings()  # the loop ended (a Quit, max_ticks): no thread to yield to
            self.finished.set()
            self._close_thread_connection()

    def _fewer_collections(self, thresholds: tuple[int, int, int]) -> None:
        if self._gc_was is None and gc.get_threshold() != thresholds:  # put back by
            self._gc_was = gc.get_threshold()  # _restore_process_settings
            gc.set_threshold(*thresholds)

    def _restore_process_settings(self) -> None:
        """Put back the GIL switch interval and collector threshold start() changed (once)."""
        switch, self._switch_was = self._switch_was, None
        if switch is not None:
            sys.setswitchinterval(switch)
        thresholds, self._gc_was = self._gc_was, None
        if thresholds is not None:
            gc.set_threshold(*thresholds)

    def _close_thread_connection(self) -> None:
        db = self._engine.store.db
        if db is not None and not db.is_closed():
            db.close()  # this thread's connection (peewee keeps one per thread)

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        """Run the loop on the service's own thread (a daemon: a hung feed cannot hold the
        process at exit; stop() stops waiting for it)."""
        if self._thread is not None:
            return
        self._begin_run()
        if sys.getswitchinterval() > FRONT_END_SWITCH_S:  # the process's settings: put back by stop()
            self._switch_was = sys.getswitchinterval()
            sys.setswitchinterval(FRONT_END_SWITCH_S)
        self._fewer_collections(FRONT_END_GC_THRESHOLDS)
        self._thread = threading.Thread(target=self._run, name="kakashi-engine", daemon=True)
        self._thread.start()

    def _begin_run(self) -> None:
        """Record this run for other processes (``kakashi status --health``: when it started, its
        interval and process; no clean quit yet), and keep what the run before it left if that
        one never quit cleanly (``unclean_previous``). A database that cannot take the write
        still trades: the log says health cannot be judged."""
        store = self._engine.store
        try:
            prev = store.run_record()
            self.unclean_previous = prev if prev.started_ms is not None and not prev.quit_cleanly else None
        except Exception as e:  # noqa: BLE001 - a corrupt value is refused by the next tick anyway
            self._log(f"the previous run's record is unreadable: {e}")
        self._record_run(
            {
                Control.RUN_STARTED_MS: self._wall_ms(),
                Control.RUN_INTERVAL_MS: int(round(self.interval * 1000)),
                Control.RUN_PID: os.getpid(),
            },
            clear=(Control.RUN_DONE_MS, Control.RUN_QUIT_MS),
        )

    def _record_run(self, values: dict[Control, ControlValue], clear: tuple[Control, ...] = ()) -> None:
        """Write run markers in their own transaction (never while stopped); a failure is said, not raised."""
        store = self._engine.store
        try:
            with self._writer:
                if self._closed:
                    return
                with store.atomic():
                    store.clear_controls(clear)
                    store.set_controls(values)
        except Exception as e:  # noqa: BLE001 - health markers must never stop trading
            what = ", ".join(k.value for k in values)
            self._log(f"run marker not written ({what}): {db_trouble(e) or e}; kakashi status --health may misjudge")

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = STOP_TIMEOUT_S, clean: bool = False) -> bool:
        """Stop ticking within ``timeout`` whatever the feed does; apply what is still queued;
        write nothing afterwards. True if the engine thread ended in time. ``clean``: a clean
        quit (the desk's q, a headless run's end or SIGTERM), recorded for ``status --health``
        and the next start; a crash's stop is not one. Concurrent calls wait for the first."""
        with self._stopping:
            return self._stop_now(timeout, clean)

    def _stop_now(self, timeout: float, clean: bool) -> bool:
        if self._closed:  # stopped already (q, then the caller's own stop on the way out)
            return not self.running
        self._restore_process_settings()
        deadline = time.monotonic() + timeout
        self._stop.set()
        self._wake.set()
        try:
            self._engine.source.stop()  # interrupts a fetch in progress, retries and back-off waits
        except Exception as e:  # noqa: BLE001 - shutting down regardless
            self._log(f"source stop failed: {e}")
        ended = True
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(max(0.0, deadline - time.monotonic()))
            ended = not self._thread.is_alive()
        # Whatever the thread is doing (a fetch, outside any transaction), once we hold the
        # writer lock no tick writes again; commands still queued are applied here, once.
        if self._writer.acquire(timeout=max(0.05, deadline - time.monotonic())):
            try:
                pending = bool(self._queue)
            finally:
                self._writer.release()
            if pending:
                self.apply_pending()
            if clean and self._thread is not None:  # a run this service started quits cleanly
                self._record_run({Control.RUN_QUIT_MS: self._wall_ms()})
            with self._writer:
                self._closed = True
            if not ended:
                self._close_thread_connection()
        self.finished.set()
        return ended

    def replay_summary(self, target: str) -> str:
        e = self._engine
        acct = e.account
        fills = e.store.fill_count()
        return (
            f"replayed {e.tick_count} ticks into {target} | fills {fills} | closed {len(acct.closed)} | "
            f"rejected rows {e.rejected_total} | cash {fmt_cc(acct.cash_cc)} equity "
            f"{fmt_cc(e.equity())} realised {fmt_cc(acct.realized_cc)}"
        )

    def summary(self) -> str:
        """One line for the operator when the service stops."""
        e = self._engine
        acct = e.account
        failed = f" ({self._failed} failed)" if self._failed else ""
        return (
            f"stopped after {self._ticks} ticks{failed} | cash {fmt_cc(acct.cash_cc)} "
            f"equity {fmt_cc(e.equity())} realised {fmt_cc(acct.realized_cc)} "
            f"fees {fmt_cc(acct.fees_cc)} | open {len(acct.open_positions())} | {e.state_label()}"
        )
