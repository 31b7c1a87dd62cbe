"""The engine: one ``tick()`` wires the whole loop, the same under the desk, headless and
in replay:

    fetch -> validate -> persist -> estimate -> decide -> risk gate -> fill -> ledger -> settle

The engine computes; it does not run itself, nor keep what a view shows over time: each tick
returns a ``TickReport`` and the service keeps the desk's windows from those
(``view.DeskWindows``). The trading service (``service.py``) owns
the thread that calls ``tick``, the loop, and the only writing connection. Each tick's
writes are one ``BEGIN IMMEDIATE`` transaction, at whose top the service's queued commands
and other processes' requests are applied (``execute``). The one thing another thread may
do is ``throw_kill`` / ``want_paused``: they flip the in-memory flags the risk gate reads,
so a kill stops orders before the very next decision, whatever the tick is doing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction
from functools import lru_cache

from kakashi_tui.adapters import queries
from kakashi_tui.adapters.closing import Candles, catalog_of
from kakashi_tui.adapters.source import CommandRecord, Estimator, FetchBatch, Source, TapeBook, TapeGap, TapePrint
from kakashi_tui.adapters.store.controls import Control, ControlValue, control_value
from kakashi_tui.adapters.store.writer import Store, now_wall_ms
from kakashi_tui.core import broker, risk, slots, strategy
from kakashi_tui.core.errors import StoreError
from kakashi_tui.core.fees import FeeTerms
from kakashi_tui.core.grid import grid_of
from kakashi_tui.core.ledger import (
    Account,
    Kind,
    LedgerEntry,
    MarkMemo,
    buy_entries,
    equity_cc,
    sell_entries,
    settle_entries,
    settlement_fixes,
)
from kakashi_tui.core.models import GRID, Estimate, Fill, Market, Quote, Side, TradeDecision
from kakashi_tui.core.money import count_to_hundredths, hundredths_to_count, price_to_cc
from kakashi_tui.core.orders import (
    DEFAULT_INSERT_LATENCY_MS,
    OrderEvent,
    OrderFill,
    OrderState,
    PaperOrder,
    TimeInForce,
    reserved_cc,
    submit,
)
from kakashi_tui.core.plan import Plan, pause_reason
from kakashi_tui.core.queue import FillsState, MarketFills
from kakashi_tui.core.risk import Leg, RiskContext
from kakashi_tui.core.shadows import ShadowEvent, Shadows, ShadowState
from kakashi_tui.core.text import safe_text
from kakashi_tui.core.validate import validate_row
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
    from_record,
    from_request,
    record_of,
)
from kakashi_tui.trading.config import EngineConfig  # (settings; the engine reads them)
from kakashi_tui.trading.plancheck import PlanWatch

OPERATOR_SOURCE = "operator"
CANCEL_REQUESTED = "cancel_requested"  # an order event that is no state: a cancel asked for (order_events)
#: A resting order's ends the log says (``OrderNote``): those that are no fill
_NOTED = frozenset((OrderState.REJECTED, OrderState.EXPIRED, OrderState.CANCELLED))
_MAX_LATENCY_MS = 3_600_000


def _by_ticker(d: TradeDecision) -> str:
    return d.ticker


def _ranked(c: tuple[TradeDecision, Quote]) -> tuple[Fraction, str]:
    return slots.rank_key(c[0])


@dataclass(frozen=True, slots=True)
class Flags:
    """What stops new orders, in memory; replaced whole (one reference), so a reader on any
    thread sees one consistent picture without a lock."""

    kill: bool = False
    kill_reason: str = ""
    paused: bool = False
    pause_reason: str = ""  # why the engine paused itself (a plan's kill condition); "": the operator's


#: How much of a kill reason a state label shows (the stored reason is kept whole).
KILL_REASON_SHOWN = 200


def run_state(
    killed: bool, kill_reason: str, daily_stopped: bool, paused: bool, drawdown: str = "", pause_reason: str = ""
) -> tuple[str, str]:
    """The one place HALTED is derived: (label, kind), kind being running | paused | halted.
    The hardest stop wins; a pause under a halt is said too (it outlasts a re-arm, and one
    from another terminal would otherwise go unseen until then). ``drawdown``: the drawdown
    stop's reason while it halts trading ("" when it does not); ``pause_reason``: why the engine
    paused itself (a plan's kill condition: ``PAUSED (plan 3 kill: ...)``)."""
    also = "; also paused" if paused else ""
    if killed:  # the reason may come from another process (``kakashi kill --reason``): escaped
        return f"HALTED (kill switch: {safe_text(kill_reason or 'operator', KILL_REASON_SHOWN)}{also})", "halted"
    if drawdown:  # (stored in the database: escaped like any text read back)
        return f"HALTED ({safe_text(drawdown, KILL_REASON_SHOWN)}{also})", "halted"
    if daily_stopped:
        return f"HALTED (daily loss cap{also})", "halted"
    if paused:  # (a plan's reason is stored text: escaped like any text read back)
        return (f"PAUSED ({safe_text(pause_reason, KILL_REASON_SHOWN)})" if pause_reason else "PAUSED"), "paused"
    return "RUNNING", "running"


def state_label(
    killed: bool, kill_reason: str, daily_stopped: bool, paused: bool, drawdown: str = "", pause_reason: str = ""
) -> str:
    """RUNNING, PAUSED or HALTED and why (see ``run_state``)."""
    return run_state(killed, kill_reason, daily_stopped, paused, drawdown, pause_reason)[0]


def shards_halted_text(shards: tuple[int, ...] | frozenset[int]) -> str:
    """The one way a halted exchange shard is said: ``SHARD 1 HALTED``; "" when none is."""
    if not shards:
        return ""
    ns = sorted(shards)
    return f"SHARD{'S' if len(ns) > 1 else ''} {', '.join(map(str, ns))} HALTED"


def utc_day(ms: int) -> str:
    return _day_text(ms // 86_400_000)


@lru_cache(maxsize=64)
def _day_text(day: int) -> str:  # (read several times a tick)
    return datetime.fromtimestamp(day * 86_400, tz=UTC).strftime("%Y-%m-%d")


@dataclass(frozen=True, slots=True)
class OrderFillSeen:
    """A paper order's fill as the log says it (issue #23 item 5): the price decided on beside
    the price filled at. ``fill`` is the ledger's name for it (``fill 12``, as its entries' keys)."""

    fill: str
    order_id: str
    ticker: str
    side: Side
    ts: int
    decided_ts: int
    limit_cc: int  # the decision's limit (the most the order may pay)
    decided_ask_cc: int | None  # the best ask the decision saw (None: not known, a resumed order)
    price_cc: int  # the fill's price (a taker's walk: its average, rounded up to the centicent)
    hundredths: int
    role: str  # maker | taker
    trigger: str
    latency_ms: int

    def text(self) -> str:
        """``order 7 decided @<=0.4200 (ask 0.4100), filled @0.4150 taker, 500 ms latency``."""
        ask = f" (ask {GRID[self.decided_ask_cc]})" if self.decided_ask_cc is not None else ""
        how = self.role if self.trigger == self.role else f"{self.role} ({self.trigger.replace('_', ' ')})"
        return (
            f"order {self.order_id} decided @<={GRID[self.limit_cc]}{ask}, filled @{GRID[self.price_cc]} "
            f"{how}, {self.latency_ms} ms latency"
        )


@dataclass(frozen=True, slots=True)
class OrderNote:
    """A resting order's end that is not a fill, as the log says it (issue #23 items 2-4):
    rejected (with the reason: a post-only order the book crossed by its activation), expired (a
    GTD's), or cancelled (with why its cancel was asked: a re-price, the kill switch, ...)."""

    ts: int
    order_id: str
    ticker: str
    side: Side
    limit_cc: int
    how: str  # "gtc, post-only"
    state: str  # rejected | expired | cancelled
    reason: str

    def text(self) -> str:
        """``order 7 YES @0.4100 gtc, post-only: cancelled (re-price: post YES @0.4200 now)``."""
        why = f" ({self.reason})" if self.reason else ""
        return f"order {self.order_id} {self.side.value.upper()} @{GRID[self.limit_cc]} {self.how}: {self.state}{why}"


@dataclass(frozen=True)
class TickReport:
    tick: int
    ts: int
    saved: int
    rejected: int
    decisions: tuple[TradeDecision, ...]
    fills: int
    settled: int
    errors: tuple[str, ...]
    latency_ms: float
    cash_cc: int
    equity_cc: int
    open_positions: int
    state: str
    notes: tuple[str, ...] = ()  # what works but the operator should know (FetchBatch.notes)
    key_refused: str = ""  # the exchange refuses the API key, and why (FetchBatch.key_refused)
    # every ledger entry written since the last report (this tick's, and any a command wrote
    # between ticks, e.g. a flatten): the log's fill and settlement lines
    entries: tuple[LedgerEntry, ...] = ()
    # the quotes new this tick (one a source re-sent unchanged is not), in fetch order, and the
    # markets the engine let go of this tick (settled: it keeps nothing of them): what a view
    # that keeps each market's recent quotes needs (view.DeskWindows); the engine keeps no history
    quotes: tuple[Quote, ...] = ()
    gone: tuple[str, ...] = ()
    halted_shards: tuple[int, ...] = ()  # exchange shards not trading: their markets are not decided
    # the paper orders' fills booked since the last report (issue #23), each with the price its
    # order was decided at: what the log says beside the fill's own line
    order_fills: tuple[OrderFillSeen, ...] = ()
    # resting orders that ended without filling (rejected, expired, cancelled) since the last report
    order_notes: tuple[OrderNote, ...] = ()

    def shards_text(self) -> str:
        """``SHARD 1 HALTED`` (``SHARDS 1, 3 HALTED``), or "" when every shard trades."""
        return shards_halted_text(self.halted_shards)

    @property
    def corrections(self) -> tuple[tuple[str, int], ...]:
        """Settlements paid before and corrected since the last report (a result amended after
        ``determined``): (ticker, the cash it moved, centicents), from the ``settle_fix``
        entries it wrote; ``settled`` counts positions closed, not these."""
        moved: dict[str, int] = {}
        for e in self.entries:
            if e.kind is Kind.SETTLE_FIX:
                moved[e.ticker] = moved.get(e.ticker, 0) + e.amount_cc
        return tuple(moved.items())

    def corrections_text(self) -> str:
        """``corrected 1 (KXA -$10.00)``, or several summed: ``corrected 2 (+$5.00)``; "" if none."""
        from kakashi_tui.core.money import fmt_cc

        if not self.corrections:
            return ""
        cc = sum(c for _t, c in self.corrections)
        what = f"{self.corrections[0][0]} " if len(self.corrections) == 1 else ""
        return f"corrected {len(self.corrections)} ({what}{'+' if cc > 0 else ''}{fmt_cc(cc)})"

    def log_line(self) -> str:
        from kakashi_tui.core.money import fmt_cc

        accepted = sum(1 for d in self.decisions if d.accepted)
        ts = datetime.fromtimestamp(self.ts / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        # A feed's errors and notes and the exchange's reason are outside text: escaped, bounded.
        err = f" | feed errors {len(self.errors)}: {safe_text(self.errors[0])}" if self.errors else ""
        err += f" | KEY REFUSED: {safe_text(self.key_refused)}" if self.key_refused else ""
        err += f" | notes {len(self.notes)}: {safe_text(self.notes[0])}" if self.notes else ""
        fixed = f" {self.corrections_text()}" if self.corrections else ""
        err = f" | {self.shards_text()}" + err if self.halted_shards else err
        return (
            f"tick {self.tick} {ts} | saved {self.saved} rejected {self.rejected} | "
            f"decisions {len(self.decisions)} ({accepted} accepted) fills {self.fills} settled {self.settled}{fixed} | "
            f"cash {fmt_cc(self.cash_cc)} equity {fmt_cc(self.equity_cc)} | "
            f"open {self.open_positions} | {self.state}{err}"
        )


class Engine:
    def __init__(self, store: Store, source: Source, estimators: list[Estimator], config: EngineConfig) -> None:
        for part, contract in ((source, Source), *((e, Estimator) for e in estimators)):
            if not isinstance(part, contract):  # every hook the engine may call is declared there
                raise TypeError(f"{type(part).__name__} is not a {contract.__name__} (adapters/source.py)")
        self.store = store
        self.source = source
        self.estimators = estimators
        self.cfg = config
        self._said: list[str] = []  # what the estimators had to say, for the service to pass on
        self.fees = config.fees()
        self._flag_writes = threading.Lock()  # serialises flag updates; readers need no lock
        self.markets: dict[str, Market] = {}
        self.quotes: dict[str, Quote] = {}
        self.estimates: dict[str, Estimate] = store.latest_estimates()
        self.overrides: dict[str, Estimate] = {t: e for t, e in self.estimates.items() if e.source == OPERATOR_SOURCE}
        self.last_errors: tuple[str, ...] = ()
        self.last_notes: tuple[str, ...] = ()
        self._written: list[LedgerEntry] = []  # ledger entries not yet in a TickReport
        self.key_refused = ""
        #: exchange shards the exchange says are not trading (``FetchBatch.halted_shards``): their
        #: markets' decisions are refused, the others trade
        self.halted_shards: frozenset[int] = frozenset()
        self.last_latency_ms = 0.0
        self.rejected_total = 0
        self._ctl: dict[Control, ControlValue] = {}  # this tick's control state (_load_controls)
        self._market_cache: dict[str, tuple[dict, Market]] = {}  # raw dict -> validated, per ticker
        self._fees_of: dict[str, tuple[Market, FeeTerms]] = {}  # a market's fee terms, while it is that object
        self._marks: MarkMemo = {}  # each position's liquidation value, while its inputs are those (equity_cc)
        self._events: dict[str, str] = {}  # a held market's event, read from the store while it is not in memory
        self.settled: set[str] = store.settled_tickers()  # settlement booked: never traded again
        #: While a replay commits many ticks at once: each market's newest quote not yet written,
        #: with its fetch time (``hold_quotes``); None: every new quote is written in its tick.
        self._unwritten: dict[str, tuple[Quote, int]] | None = None
        # -- paper orders (issue #23): the live ones (decided, not yet done), each market's fill
        # models while it has any, what each order's decision was (its id, the best ask it saw),
        # the fills not yet in a report, and the markets whose book this fetch was polled
        self.orders: dict[str, PaperOrder] = {}
        self._fills_of: dict[str, MarketFills] = {}
        self._decided: dict[str, tuple[int | None, int | None]] = {}
        self._order_fills: list[OrderFillSeen] = []
        self._order_notes: list[OrderNote] = []
        self._cancel_why: dict[str, str] = {}  # a live order's cancel asked, and why (its note says it)
        self._polled_now: set[str] = set()
        #: each market's fill-model state as the store holds it (``_checkpoint_fills``)
        self._fills_stored: dict[str, FillsState] = {}
        #: the band (issue #23 item 7): the same orders under the other queue models (core/shadows.py)
        self._shadows = Shadows(config.queue_model)
        self._shadows_stored: dict[tuple[str, str], ShadowState] = {}  # (``_checkpoint_shadows``)
        #: the source's clock when this engine started: a new database's deposit is dated by it (a
        #: recording run writes it to the catalog's ``runs``: a replay starts its clock there)
        self.started_ms = start = source.now_ms()
        with store.atomic():
            if store.append_ledger(
                [LedgerEntry(ts=start, kind=Kind.DEPOSIT, amount_cc=config.bankroll_cc, key="deposit:initial")]
            ):
                store.add_event(start, "deposit", f"{config.bankroll_cc} cc")
        self.account: Account = store.account()
        self._load_orders()  # the live paper orders a restart resumes, exactly as stored
        source.watch(self.held_tickers)  # the source keeps what is held fetched, until it settles
        # A restart marks what it holds as the run it resumes did: at each market's last stored
        # quote (a closed market sends none until it settles, and equity sizes the next trade).
        for t in self.held_tickers() - self.settled:
            if (q := store.latest_snapshot(t)) is not None:
                self.quotes[t] = q
        self._resume_fill_models()
        self._load_shadows()
        self.tick_count = int(store.control(Control.TICK_COUNT) or 0)
        #: The last tick completed (number, engine time) and the commands applied since the last
        #: commit, not yet handed to the source (its recorder writes them to the catalog)
        self._last_tick: tuple[int, int | None] = (self.tick_count, self._resumed_tick_ts())
        self._commands_done: list[CommandRecord] = []
        paused = bool(store.control(Control.PAUSED))
        self.flags = Flags(
            kill=bool(store.control(Control.KILL_SWITCH)),
            kill_reason=str(store.control(Control.KILL_REASON) or ""),
            paused=paused,
            pause_reason=str(store.control(Control.PAUSE_REASON) or "") if paused else "",
        )
        #: The drawdown stop (risk_limits.md): the marked-equity peak it measures from (0: none
        #: yet) and why it halted trading ("": it has not). The store keeps both (controls
        #: ``peak_equity``, ``drawdown_stop``), written in the tick that changes them.
        self.peak_cc, self.drawdown_reason = self._stored_drawdown()
        #: The latest plan (core/plan.py: None when none is registered) and, while it has no
        #: outcome, its watch: kill conditions checked as trades settle, success judged once
        self.plan: Plan | None = None
        self.plan_watch: PlanWatch | None = None
        self._load_plan()

    # -- flags: the one thing another thread may touch ------------------------------------
    def _set_flags(self, **changes: bool | str) -> Flags:
        with self._flag_writes:
            self.flags = replace(self.flags, **changes)  # type: ignore[arg-type]
            return self.flags

    def throw_kill(self, reason: str = "operator") -> None:
        """No new orders from this instant (any thread, microseconds, no DB). The service
        queues a Kill beside it, which stores it at the top of the next tick."""
        self._set_flags(kill=True, kill_reason=reason)

    def want_paused(self, paused: bool) -> None:
        """Pause or resume new decisions from this instant (any thread, no DB). The operator's:
        a plan's pause reason goes with it."""
        self._set_flags(paused=paused, pause_reason="")

    @property
    def killed(self) -> bool:
        return self.flags.kill

    @property
    def paused(self) -> bool:
        return self.flags.paused

    # -- commands: the engine's thread, inside its transaction -----------------------------
    def execute(self, cmd: Command, now: int | None = None) -> object:
        """Apply one command and record it (an event or its own row). Returns what the
        command produced: fills for Flatten, the Estimate for SetEstimate (None: refused), else None.
        Each is recorded with its time and the tick it comes before (``commands_committed``)."""
        now = self.source.now_ms() if now is None else now
        out = self._execute(cmd, now)
        done, at = self._last_tick
        self._commands_done.append(record_of(cmd, now, done + 1, at))
        if not self.store.db.in_transaction():  # its own transaction, committed
            self.commands_committed()
        return out

    def _execute(self, cmd: Command, now: int) -> object:
        with self.store.atomic():
            if isinstance(cmd, Kill):
                if self.flags.kill:  # thrown in memory when it was submitted
                    self._set_flags(kill_reason=cmd.reason)
                else:
                    self.throw_kill(cmd.reason)
                self.store.set_kill_switch(True, cmd.reason, now)
                self.cancel_orders(now, f"kill switch: {cmd.reason}")  # (effective after the cancel latency)
            elif isinstance(cmd, Rearm):
                self._set_flags(kill=False, kill_reason="")
                self.store.set_kill_switch(False, cmd.origin, now)
                if self.drawdown_reason:  # the peak restarts from the equity at re-arm
                    eq = self.equity()
                    self.store.set_controls({Control.DRAWDOWN_STOP: "", Control.PEAK_EQUITY: eq})
                    self.store.add_event(now, "drawdown_rearm", f"peak restarts at equity {eq} ({cmd.origin})")
                    self.peak_cc, self.drawdown_reason = eq, ""
            elif isinstance(cmd, (Pause, Resume)):
                self.store.set_paused(isinstance(cmd, Pause), now, cmd.origin)
            elif isinstance(cmd, Flatten):
                return self.flatten(cmd.origin, now)
            elif isinstance(cmd, SetEstimate):
                return self.set_estimate(cmd.ticker, cmd.p_hat, now)
            elif isinstance(cmd, ReloadBeliefs):
                changed = 0
                for est in self.estimators:
                    changed += bool(est.reload())  # a beliefs file re-reads itself
                self.store.add_event(now, "reload_beliefs", f"{changed} file(s) changed ({cmd.origin})")
                return changed
            elif isinstance(cmd, CancelOrder):
                return self.cancel_order(cmd.order_id, now)
            elif isinstance(cmd, Quit):
                pass
        return None

    def adopt_requests(self, now: int) -> list[Command]:
        """Commands other processes wrote (``kakashi kill/pause/resume``), applied once, in
        order, and stamped with this tick."""
        pending = self.store.pending_requests()
        done: list[Command] = []
        for _id, kind, arg in pending:
            cmd = from_request(kind, arg)
            if cmd is None:
                continue
            self._execute_external(cmd, now)
            done.append(cmd)
        if pending:
            self.store.mark_requests_applied([i for i, _k, _a in pending], self.tick_count)
        return done

    def _execute_external(self, cmd: Command, now: int) -> None:
        """A command that did not come through the service's queue (another process's request, a
        replay's recorded command): its flag in memory, as ``submit`` flips it, then ``execute``."""
        if isinstance(cmd, (Pause, Resume)):
            self.want_paused(isinstance(cmd, Pause))
        self.execute(cmd, now)

    def apply_recorded(self, records: Iterable[CommandRecord]) -> int:
        """A replay's recorded operator commands (the catalog's ``commands``), in order, each as
        the live run applied it and at its recorded time (rules.md, "Replay"): how many."""
        n = 0
        for rec in records:
            cmd = from_record(rec)
            if cmd is not None:
                self._execute_external(cmd, rec.ts)
                n += 1
        return n

    def commands_committed(self) -> None:
        """The commands applied since the last call are committed: hand them to the source (a
        recorder writes them to the catalog). The service calls it after each of its commits;
        a transaction the engine opened itself calls it as it commits."""
        done, self._commands_done = self._commands_done, []
        if done:
            self.source.commands_applied(done)

    # kept for the engine's own callers and tests: flag and persistence together
    def kill(self, reason: str = "operator") -> None:
        self.execute(Kill(reason))

    def rearm(self) -> None:
        self.execute(Rearm("operator"))

    def set_paused(self, paused: bool) -> None:
        self.want_paused(paused)
        self.execute(Pause() if paused else Resume())

    _TICK_CONTROLS = (
        Control.KILL_SWITCH,
        Control.KILL_REASON,
        Control.DAY,
        Control.DAY_START_EQUITY,
        Control.DAILY_STOP_DAY,
    )

    def _load_controls(self, now: int) -> None:
        """Read the control state once per tick (one query, not one per decision), after
        adopting other processes' requests. A kill flipped in memory is stored by its own
        queued command (``execute``), in order, once."""
        self.adopt_requests(now)
        self._ctl = self.store.controls(self._TICK_CONTROLS)
        if self._ctl.get(Control.KILL_SWITCH) is True and not self.flags.kill:  # written directly by an older tool
            self.throw_kill(str(self._ctl.get(Control.KILL_REASON) or "external"))

    def _resumed_tick_ts(self) -> int | None:
        """The last stored tick's time (None: none, or a row no run wrote: the reads that need it say so)."""
        try:
            return self.store.last_tick_ts() if self.tick_count else None
        except StoreError:
            return None

    def _stored_drawdown(self) -> tuple[int, str]:
        peak = self.store.control(Control.PEAK_EQUITY)
        reason = self.store.control(Control.DRAWDOWN_STOP)
        return (peak if isinstance(peak, int) and not isinstance(peak, bool) else 0), str(reason or "")

    def _check_drawdown(self, now: int, eq: int) -> bool:
        """Raise the peak to ``eq`` or trip the drawdown stop on it (inside the tick's
        transaction): whether trading is halted by it."""
        if self.drawdown_reason:
            return True  # halted until the operator re-arms; the peak waits with it
        if eq > self.peak_cc:
            self.peak_cc = eq
            self._set_ctl(Control.PEAK_EQUITY, eq)
        elif risk.drawdown_hit(self.peak_cc, eq, self.cfg.limits):
            self.drawdown_reason = risk.drawdown_text(self.peak_cc, eq)
            self._set_ctl(Control.DRAWDOWN_STOP, self.drawdown_reason)
            self.store.add_event(now, "drawdown_stop", self.drawdown_reason)
            self.cancel_orders(now, "drawdown stop")
        return bool(self.drawdown_reason)

    def _set_ctl(self, key: Control, value: ControlValue) -> None:
        """Store a control (its type checked against CONTROL_TYPES) and keep this tick's copy true."""
        self.store.set_control(key, value)
        self._ctl[key] = value

    def _ctl_int(self, key: Control) -> int:
        value = self._ctl.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

    # -- the plan (core/plan.py, trading/plancheck.py) -------------------------------------
    def _load_plan(self) -> None:
        self.plan = queries.latest_plan(self.store.db.connection())
        if self.plan is None or self.plan.done:
            self.plan_watch = None
        else:  # (its closing lines as the report's: the catalog's candlesticks where no quote is stored)
            self.plan_watch = PlanWatch(
                self.store, self.plan, Candles(catalog_of(self.store.path, self.cfg.catalog_dir))
            )

    def _look_at_plan(self, now: int, paid: Iterable[str], eq: int | None = None) -> None:
        """Check the plan in force (inside the tick's transaction): its trades in the markets
        ``paid`` this tick re-read, ``eq`` the tick's stored equity. A kill condition met pauses
        trading with its reason; the sample reached has success judged, once. Either outcome is
        stored once, in the plan's row, and the watch ends."""
        w = self.plan_watch
        if w is None:
            return
        w.tick(now)
        if paid and (hit := w.wants(paid)):
            if self._unwritten:  # a replay holds quotes back: the closing lines the plan reads, first
                self.flush_quotes()
            w.settled(hit)
        if eq is not None:
            w.equity(eq)
        plan = w.plan
        tripped = w.check_kill(now)
        if tripped is not None:
            reason = pause_reason(plan, tripped.condition, tripped.numbers)
            self.store.record_plan_kill(plan.id, now, self.tick_count, tripped.condition.text, tripped.numbers)
            self.store.set_paused(True, now, f"plan {plan.id}", reason)
            self._set_flags(paused=True, pause_reason=reason)
            self._load_plan()
            return
        judged = w.check_success(now)
        if judged is not None:
            self.store.record_plan_verdict(plan.id, now, self.tick_count, judged.verdict, judged.numbers)
            self._load_plan()

    def daily_stopped(self, now_ms: int | None = None) -> bool:
        day = utc_day(self.source.now_ms() if now_ms is None else now_ms)
        return self.store.get_control(Control.DAILY_STOP_DAY) == day

    def state_label(self) -> str:
        return self._state_now(self.daily_stopped())

    def _state_now(self, daily_stopped: bool) -> str:
        f = self.flags
        return state_label(f.kill, f.kill_reason, daily_stopped, f.paused, self.drawdown_reason, f.pause_reason)

    def held_tickers(self) -> set[str]:
        """Markets with open positions or live paper orders (a source keeps fetching them until
        they settle, and hands over their tape; a replay sends their every row through the tick)."""
        held = self.account.tickers_held()  # (a new set)
        if self.orders:
            held.update(o.ticker for o in self.orders.values())
        return held

    # -- helpers ----------------------------------------------------------------------
    def equity(self) -> int:
        """Liquidation equity (ledger.equity_cc): the one marking rule (risk_limits.md)."""
        return equity_cc(self.account, self.quotes, self.fee_terms, self.source.now_ms(), self._marks)

    def _apply(self, entries: list[LedgerEntry]) -> list[LedgerEntry]:
        """Write the entries not yet in the ledger and fold them into the account: those written."""
        written = self.store.append_ledger(entries)
        for e in written:
            self.account.apply(e)
            self._written.append(e)
        return written

    def _take_written(self) -> tuple[LedgerEntry, ...]:
        out, self._written = tuple(self._written), []
        return out

    def _roll_day(self, now: int) -> None:
        day = utc_day(now)
        if self._ctl.get(Control.DAY) != day:
            eq = self.equity()
            self._set_ctl(Control.DAY, day)
            self._set_ctl(Control.DAY_START_EQUITY, eq)
            self.store.add_event(now, "day_start", f"{day} equity {eq}")

    def day_start_equity(self) -> int:
        return int(self.store.control(Control.DAY_START_EQUITY) or 0)

    # -- the tick -------------------------------------------------------------------
    def fetch(self) -> tuple[FetchBatch, float]:
        """The network part of a tick, outside any transaction: (batch, fetch ms)."""
        t0 = time.perf_counter()
        try:
            batch = self.source.fetch()
        except Exception as e:  # a feed that throws must not stop the loop
            batch = FetchBatch(errors=[f"fetch failed: {e.__class__.__name__}: {e}"])
        if batch.now_ms is None:
            batch.now_ms = self.source.now_ms()
        return batch, batch.latency_ms or (time.perf_counter() - t0) * 1000

    def tick(self, top: Callable[[], None] | None = None) -> TickReport:
        """Fetch, then write the tick in one transaction; ``top`` runs first inside it (the
        service applies its queued commands there)."""
        batch, fetch_ms = self.fetch()
        return self.apply_batch(batch, fetch_ms, top)

    def apply_batch(self, batch: FetchBatch, fetch_ms: float, top: Callable[[], None] | None = None) -> TickReport:
        # the tick's time is the fetch's (its rows were received then; the catalog recorded them
        # at it): read once, so the tick's beliefs, decisions and ledger carry that one time
        now = self.source.now_ms() if batch.now_ms is None else batch.now_ms
        wall = now_wall_ms()
        self.tick_count += 1
        written = len(self._written)
        order_fills = len(self._order_fills)
        order_notes = len(self._order_notes)
        quotes = dict(self.quotes)  # (a rolled-back tick's quotes go with it: see resync)
        try:
            with self.store.atomic():
                if top is not None:
                    top()
                if batch.commands:  # a replay's: before the tick's decisions, as the live run applied them
                    self.apply_recorded(batch.commands)
                report = self._tick_body(batch, now, wall, fetch_ms)
        except Exception:
            self.tick_count -= 1
            del self._written[written:]  # rolled back: never logged as written
            del self._order_fills[order_fills:]
            del self._order_notes[order_notes:]
            self.quotes.clear()  # (in place: the view and the service hold this very dict)
            self.quotes.update(quotes)  # kept, they read "unchanged" when fetched again: never stored
            self.resync()
            raise
        self._last_tick = (self.tick_count, now)
        if not self.store.db.in_transaction():
            self.commands_committed()
        return report

    def resync(self) -> None:
        """After a rolled-back transaction: rebuild memory from what the DB holds, which is the
        truth, so the next tick re-writes what this one lost (markets, estimates)."""
        self.account = self.store.account()
        self._commands_done.clear()  # (rolled back: applied again when they are)
        self.peak_cc, self.drawdown_reason = self._stored_drawdown()
        self._load_plan()  # (a kill condition's pause rolled back with the tick: undone in memory too)
        if self.flags.pause_reason and not self.store.control(Control.PAUSED):
            self._set_flags(paused=False, pause_reason="")
        self.estimates = self.store.latest_estimates() | self.overrides
        self.markets.clear()
        self._market_cache.clear()
        self._events.clear()
        self._load_orders()  # the orders as stored (what the failed tick did to them is gone)
        self._resume_fill_models()
        self._load_shadows()

    def _tick_body(self, batch: FetchBatch, now: int, wall: int, fetch_ms: float) -> TickReport:
        decisions: list[TradeDecision] = []
        fills = settled = 0
        self._load_controls(now)
        if self.orders and (self.flags.kill or self.drawdown_reason):  # (a kill another process stored)
            self.cancel_orders(now, f"kill switch: {self.flags.kill_reason}" if self.flags.kill else "drawdown stop")
        self._roll_day(now)
        good_markets, good_snaps, fresh, saved, rejected = self._ingest(batch, now, wall)
        # the paper orders: what happened since the last fetch (the tape), then this fetch's books
        self._polled_now = batch.polled
        fills += self._play_tape(batch, fresh, now)
        if batch.halted_shards is not None:  # (None: the source did not say this fetch: kept)
            if batch.halted_shards != self.halted_shards:
                said = shards_halted_text(batch.halted_shards) or "every exchange shard trading"
                self.store.add_event(now, "exchange_shards", said)
            self.halted_shards = batch.halted_shards
        gone: list[str] = []
        paid: list[str] = []  # markets whose settlement was booked or corrected this tick (the plan's trades)
        # estimate
        tickers = [s.ticker for s in good_snaps]
        for est in self.estimators:
            for e in est.estimates(tickers, now):
                self._set_estimate(e)
        # settle what resolved (before deciding: a settled market frees a slot)
        for m in good_markets:
            # paid at `determined` (or first seen later); an `amended`/`finalized` result that pays
            # otherwise is corrected by new entries (rules.md 5a)
            if m.status.settled:
                moved = m.ticker not in self.settled
                self.settled.add(m.ticker)
                self.store.record_outcome(m, now)
                positions = self.account.positions_in(m.ticker)
                if positions:
                    before = len(self.account.positions)
                    moved |= bool(self._apply(settle_entries(positions, m, now, self.account)))
                    settled += before - len(self.account.positions)
                # (TickReport.corrections says them)
                moved |= bool(self._apply(settlement_fixes(self.account, m, now)))
                if moved:
                    paid.append(m.ticker)
            if m.ticker in self.settled:  # done (disputed too, until its result is final): the DB keeps it
                gone.append(m.ticker)
                for per_market in (
                    self.quotes,
                    self.markets,
                    self._market_cache,
                    self._fees_of,
                    self.estimates,
                    self.overrides,
                ):
                    per_market.pop(m.ticker, None)
        fills += self._cancel_closed(now)  # a closed or settled market's orders are cancelled
        # a position that outlived its market's settlement (older versions bought settled markets again)
        for t in self.account.tickers_held() & self.settled:
            booked = self.store.outcome(t)
            if booked is not None:
                before = len(self.account.positions)
                self._apply(settle_entries(self.account.positions_in(t), booked, now, self.account))
                settled += before - len(self.account.positions)
        # daily stop check on marked equity
        eq = self.equity()
        day_start = self._ctl_int(Control.DAY_START_EQUITY)
        stopped = self._ctl.get(Control.DAILY_STOP_DAY) == utc_day(now)
        if not stopped and risk.daily_cap_hit(day_start, eq, self.cfg.limits):
            stopped = True
            self._set_ctl(Control.DAILY_STOP_DAY, utc_day(now))
            self.store.add_event(now, "daily_stop", f"equity {eq} vs day start {day_start}")
            self.cancel_orders(now, "daily stop")
            if self.cfg.on_daily_stop == "flatten" and self.account.open_positions():
                self.flatten("daily stop")  # in this tick's transaction (a savepoint)
        if stopped and self.orders:  # (stopped before this run: its orders are cancelled as it resumes)
            self.cancel_orders(now, "daily stop")
        down = self._check_drawdown(now, eq)  # beside the daily stop, on the same marked equity
        self._look_at_plan(now, paid)  # a kill condition met pauses before this tick decides
        self._reprice(good_snaps, now)  # live posts whose price no longer stands: cancelled (paused too)
        # decide -> gate -> fill -> ledger
        if not self.paused:
            held = self.held_tickers()  # (positions and live orders: one of either per market)
            estimates = self.estimates
            # every candidate decided first, on the slots and equity the tick found; the refused
            # are final, stored by ticker (whatever the feed's order)
            candidates: list[tuple[TradeDecision, Quote]] = []
            reserved = self.reserved_now(now)  # (no order is placed in this pass)
            for s in good_snaps:
                if s.ticker not in estimates or s.ticker in held:
                    continue  # nothing to decide: no belief about this market, or already in it
                d = self.decide(s, now, eq, day_start, stopped, held, down, self.peak_cc, reserved)
                if d is None:
                    continue
                if d.accepted:
                    candidates.append((d, s))
                else:
                    decisions.append(d)
            decisions.sort(key=_by_ticker)  # (stable: one market's rows keep the feed's order)
            # then the slots by value (core/slots.py): the accepted, best first, decided again
            # (the gate's every check) on the slots, equity and live orders the ones before them left
            candidates.sort(key=_ranked)
            stored = 0  # decisions[:stored] are in the store
            for _first, s in candidates:
                if s.ticker in held:
                    continue  # another row of this market took its slot this tick
                d = self.decide(s, now, eq, day_start, stopped, held, down, self.peak_cc, reserved)
                if d is None:
                    continue
                decisions.append(d)
                if d.accepted:
                    # the decisions before it in one executemany, then this one for its id
                    self.store.insert_decisions(decisions[stored:-1], self.tick_count)
                    stored = len(decisions)
                    did = self.store.insert_decision(d, self.tick_count)
                    filled = self._place(d, did, s, now)  # its paper order (filled now: no latency)
                    held = self.held_tickers()
                    if filled:
                        fills += filled
                        eq = self.equity()  # a fill moves equity by its fee and spread
                        down = self._check_drawdown(now, eq)  # (and may take it past the stop)
                    reserved = self.reserved_now(now)  # (the new order's, what a fill or a stop left)
            self.store.insert_decisions(decisions[stored:], self.tick_count)
        self.store.set_controls(self._checkpoint())
        self._checkpoint_fills()  # (the resting orders' queue places, as of this tick)
        self._checkpoint_shadows()  # (and their copies', the band's)
        eq = self.equity()
        self.store.insert_tick(
            tick=self.tick_count,
            ts=now,
            wall_ms=wall,
            saved=saved,
            rejected=rejected,
            decisions=len(decisions),
            fills=fills,
            settled=settled,
            errors=len(batch.errors),
            latency_ms=round(fetch_ms, 2),
            cash_cc=self.account.cash_cc,
            equity_cc=eq,
        )
        self._look_at_plan(now, (), eq)  # the tick's equity, as stored: the plan's drawdown
        self.last_errors = tuple(batch.errors)
        self.last_notes = tuple(batch.notes)
        self.key_refused = batch.key_refused
        self.last_latency_ms = fetch_ms
        self.rejected_total += rejected
        return TickReport(
            tick=self.tick_count,
            ts=now,
            saved=saved,
            rejected=rejected,
            decisions=tuple(decisions),
            fills=fills,
            settled=settled,
            errors=tuple(batch.errors),
            latency_ms=fetch_ms,
            cash_cc=self.account.cash_cc,
            equity_cc=eq,
            open_positions=self.account.open_count(),
            state=self._state_now(stopped),
            notes=self.last_notes,
            key_refused=self.key_refused,
            entries=self._take_written(),
            quotes=tuple(fresh),
            gone=tuple(gone),
            halted_shards=tuple(sorted(self.halted_shards)),
            order_fills=self._take_order_fills(),
            order_notes=self._take_order_notes(),
        )

    def _ingest(
        self, batch: FetchBatch, now: int, wall: int
    ) -> tuple[list[Market], list[Quote], list[Quote], int, int]:
        """Validate and persist one fetch (inside the caller's transaction): (markets, quotes,
        the quotes new since each market's last, saved, rejected)."""
        good_markets: list[Market] = []
        good_snaps: list[Quote] = []
        rejected = 0
        cache = self._market_cache
        for row in batch.rows:
            known = None
            if row.reason is None:
                hit = cache.get(str(row.market.get("ticker")))
                known = hit[1] if hit is not None and hit[0] == row.market else None
            v = (
                validate_row(row.market, row.snapshot, now, known, self.settled, row.quote)
                if row.reason is None
                else None
            )
            if v is not None and v.market is not None and known is None:
                cache[v.market.ticker] = (dict(row.market), v.market)
            reason = row.reason if v is None else v.reason
            if reason is not None:
                rejected += 1
                self.store.insert_rejected(
                    now,
                    self.source.name,
                    reason,
                    row.raw_payload(),
                    row.market.get("ticker") if isinstance(row.market, dict) else "",
                )
            if v is None:
                continue
            if v.market is not None:
                good_markets.append(v.market)
            if v.snapshot is not None:
                good_snaps.append(v.snapshot)
        if batch.same:  # still followed, unchanged: decided on the quote kept, with its own time
            sent = {s.ticker for s in good_snaps}
            kept = self.quotes
            good_snaps += [q for t in batch.same if t not in sent and (q := kept.get(t)) is not None]
        markets = self.markets
        # a market seen before is usually the very object cached for its raw row: `is` first
        self.store.upsert_markets([m for m in good_markets if (k := markets.get(m.ticker)) is not m and k != m], now)
        snapshots = self.quotes
        # A quote is stored once: one the source hands over again unchanged (a polled listing
        # re-sends markets that did not move, with their old quote time) is not a new row.
        fresh = [s for s in good_snaps if not s.unchanged_from(snapshots.get(s.ticker))]
        unwritten = self._unwritten
        if unwritten is None:
            saved = self.store.insert_snapshots(fresh, wall, self.source.name)
        else:  # written by flush_quotes, the newest of each market only
            for s in fresh:
                unwritten[s.ticker] = (s, wall)
            saved = len(fresh)
        for m in good_markets:
            markets[m.ticker] = m
        for s in fresh:
            snapshots[s.ticker] = s
        return good_markets, good_snaps, fresh, saved, rejected

    def hold_quotes(self, hold: bool) -> None:
        """Hold new quotes in memory and write only each market's newest, at ``flush_quotes``
        (a replay that commits many ticks at once calls it before each commit: the file or
        catalog it plays keeps every quote, the database each market's latest). Off: every new
        quote is written in its tick, as a live run does; what was held and not flushed is dropped."""
        self._unwritten = {} if hold else None

    def flush_quotes(self) -> int:
        """Write the held quotes (inside the caller's transaction): how many rows."""
        held = self._unwritten
        if not held:
            return 0
        n = self.store.insert_quotes(held.values(), self.source.name)
        held.clear()
        return n

    def collect(self) -> tuple[list[Quote], int, list[str]]:
        """One pass of fetch -> validate -> persist, no trading: (saved snapshots, rejected, errors)."""
        batch = self.source.fetch()
        now = self.source.now_ms() if batch.now_ms is None else batch.now_ms
        with self.store.atomic():
            _m, snaps, _fresh, _saved, rejected = self._ingest(batch, now, now_wall_ms())
            self.store.set_controls({k: v for k, v in self._checkpoint().items() if k is not Control.TICK_COUNT})
        self.rejected_total += rejected
        self.last_notes = tuple(batch.notes)  # (what works but the operator should know: said once)
        return snaps, rejected, list(batch.errors)

    def _checkpoint(self) -> dict[Control, ControlValue]:
        """The controls a restart resumes from: the tick count and the source's own (a source's
        ``checkpoint()`` names Control keys with their stored text)."""
        out: dict[Control, ControlValue] = {Control.TICK_COUNT: self.tick_count}
        for name, text in self.source.checkpoint().items():
            key = Control(name)
            if (value := control_value(key, text)) is not None:
                out[key] = value
        return out

    def take_said(self) -> list[str]:
        """What the estimators had to say since the last call (a beliefs re-read, say)."""
        for est in self.estimators:
            self._said += est.take_said()
        out, self._said = self._said, []
        return out

    def fee_terms(self, ticker: str) -> FeeTerms:
        """The market's fee terms: config overrides, else the exchange's series fee (core/fees.py)."""
        return self._fee_terms_of(self.markets.get(ticker))

    def _fee_terms_of(self, m: Market | None) -> FeeTerms:
        if m is None:
            return self.fees.for_market(None)
        hit = self._fees_of.get(m.ticker)
        if hit is not None and hit[0] is m:  # a market's object is replaced when it changes
            return hit[1]
        terms = self.fees.for_market(m)
        self._fees_of[m.ticker] = (m, terms)
        return terms

    def _set_estimate(self, e: Estimate) -> None:
        if e.ticker in self.overrides and e.source != OPERATOR_SOURCE:
            return
        prev = self.estimates.get(e.ticker)
        if prev is None or prev.p_hat != e.p_hat or prev.source != e.source:
            self.store.insert_estimate(e)
        self.estimates[e.ticker] = e

    def set_estimate(self, ticker: str, p_hat: Decimal, now: int | None = None) -> Estimate | None:
        """The operator's own p_hat for a market; it overrides any automatic estimator. None
        (nothing stored) for a market no longer open: it closed while the operator typed."""
        now = self.source.now_ms() if now is None else now
        if self.not_open(ticker, now):
            return None
        e = Estimate(ticker=ticker, p_hat=p_hat, source=OPERATOR_SOURCE, ts=now)
        self.overrides[ticker] = e
        self.store.insert_estimate(e)
        self.estimates[ticker] = e
        return e

    def not_open(self, ticker: str, now_ms: int) -> str:
        """Why ``ticker`` is no longer open (its status, "settled", "past its close time"), or ""."""
        if ticker in self.settled:
            return "settled"
        m = self.markets.get(ticker)
        if m is None:
            return ""  # not seen yet: nothing says it closed
        if not m.status.tradable:
            return m.status.value
        return "past its close time" if m.close_ts is not None and now_ms >= m.close_ts else ""

    def decide(
        self,
        s: Quote,
        now: int,
        equity_cc: int,
        day_start_equity_cc: int,
        daily_stopped: bool,
        held: set[str],
        drawdown_stopped: bool = False,
        peak_equity_cc: int = 0,
        reserved_cc: int | None = None,
    ) -> TradeDecision | None:
        """Strategy then risk gate for one snapshot of a market with a belief and no position
        (the caller skips the others); ``equity_cc``, ``day_start_equity_cc``, ``daily_stopped`` and ``held``
        (the tickers with open positions) are this tick's, kept current by the caller. Writes
        nothing: the tick stores what it decides, and the desk's view asks it for the signal
        column (the one rule, read through this public method, not the engine's insides).
        ``reserved_cc``: ``reserved_now(now)``, when the caller decides many markets while the
        live orders stay as they are (a loop over every market would sum them once a market)."""
        est = self.estimates[s.ticker]
        m = self.markets.get(s.ticker)
        if m is None:
            return None
        if m.market_type == "scalar":
            return None  # Kakashi declines to trade scalar markets (rules.md); a held one still settles
        cfg = self.cfg
        mode = cfg.strategy.mode
        d = None
        if mode != "post":  # take (``both``: take when the taker's EV clears, else post)
            d = strategy.decide(
                s, est, equity_cc, cfg.limits.max_loss_per_trade_pct, self._fee_terms_of(m), cfg.strategy, now, now
            )  # stamped now, with this tick's equity
            if d is not None and m.price_ranges is not None:  # the limit on the market's own grid (core/grid.py)
                d = strategy.limit_on_grid(d, grid_of(m.price_ranges), s, self._fee_terms_of(m), now)
        if d is None and mode != "take":
            d = self._decide_post(s, est, m, equity_cc, now)
        if d is None:
            return None
        # (positional, in RiskContext's field order: one is made per decision) the kill flag is
        # read at the instant of the decision
        ctx = RiskContext(
            now,
            self.flags.kill,
            daily_stopped,
            len(held),
            self.account.cash_cc,
            equity_cc,
            day_start_equity_cc,
            m.status,
            m.close_ts,
            s.ts,
            s.spread(),
            s.has_ask_depth(d.side),
            m.floored,
            m.shard if m.shard in self.halted_shards else None,
            drawdown_stopped,
            peak_equity_cc,
            m.event_ticker,
            m.event_exclusive is True,
            self.event_legs(m.event_ticker or m.ticker, now),
            self.reserved_now(now) if reserved_cc is None else reserved_cc,
        )
        ok, reason = risk.check(d, ctx, cfg.limits)
        if ok and mode != "take" and strategy.is_post(d):
            reason = self._posted_text()  # the decision log says it rests: "posted gtc, post-only"
        return d.verdict(ok, reason)

    def reserved_now(self, now: int) -> int:
        """What the live orders reserve in the caps now (``risk.reservation_cc``)."""
        return risk.reservation_cc(self.orders.values(), self.fee_terms, now) if self.orders else 0

    # -- the event cap ---------------------------------------------------------------
    def event_of(self, ticker: str) -> str:
        """A market's event: its ``event_ticker`` (the market itself when it names none), from
        the market in memory, else as stored (a held market not fetched again since a restart)."""
        m = self.markets.get(ticker)
        if m is not None:
            return m.event_ticker or ticker
        ev = self._events.get(ticker)
        if ev is None:
            if len(self._events) > 4096:  # (held markets only: a few; bounded all the same)
                self._events.clear()
            ev = self._events[ticker] = self.store.market_event(ticker) or ticker
        return ev

    def event_legs(self, event: str, now: int | None = None) -> tuple[Leg, ...]:
        """What is staked on ``event`` now: each open position in its markets, and each live paper
        order in them at what it reserves, as if what remains of it filled (issue #24 item 5:
        "across every position and resting order"): the event cap's ``RiskContext.event_legs``."""
        at = self.source.now_ms() if now is None else now
        held = tuple(
            Leg.held(t, side, p.contracts, p.cost_cc)
            for (t, side), p in self.account.positions.items()
            if p.contracts > 0 and self.event_of(t) == event
        )
        live = tuple(
            Leg.pending(
                o.ticker,
                o.side,
                hundredths_to_count(o.remaining_hundredths),
                reserved_cc(o, self.fee_terms(o.ticker), at),
            )
            for o in self.orders.values()
            if self.event_of(o.ticker) == event
        )
        return held + live

    def event_exposures(self) -> list[tuple[str, int]]:
        """Each event held or with a live order (a resting post reserves in it) and its worst case
        over its outcomes (``risk.event_worst_cc``, as the gate counts it), largest first: what
        the desk's risk panel shows."""
        events: dict[str, bool] = {}
        for t in self.held_tickers():
            ev = self.event_of(t)
            m = self.markets.get(t)
            events[ev] = events.get(ev, False) or (m is not None and m.event_exclusive is True)
        out = [(ev, risk.event_worst_cc(self.event_legs(ev), ex)) for ev, ex in events.items()]
        return sorted(out, key=lambda e: (-e[1], e[0]))

    # -- paper orders (issue #23) ------------------------------------------------------
    def order_latency(self) -> tuple[int, int]:
        """(insert, cancel) latency in ms for an order decided now: ``[fills]``'s, or "auto": the
        median of the source's measured request round trips (a replay: the recorded run's), else
        500 ms where it measures none (the simulator)."""
        rt = self.source.round_trip_ms()
        auto = DEFAULT_INSERT_LATENCY_MS if rt is None else min(max(int(rt), 0), _MAX_LATENCY_MS)
        c = self.cfg
        return (
            auto if c.insert_latency_ms is None else c.insert_latency_ms,
            auto if c.cancel_latency_ms is None else c.cancel_latency_ms,
        )

    def _fill_models(self, ticker: str, now: int, book: Quote | None, polled: bool) -> MarketFills:
        """The market's fill models (made with ``book`` in force from ``now`` when it has none)."""
        fm = self._fills_of.get(ticker)
        if fm is None:
            fm = self._fills_of[ticker] = MarketFills(self.fee_terms(ticker), self.cfg.queue_model)
            if book is not None:
                fm.on_book(now, book, True, polled)
        return fm

    def _place(self, d: TradeDecision, decision_id: int, s: Quote, now: int) -> int:
        """The accepted decision's paper order, stored and handed to its market's fill models,
        which fill it from its activation (``[fills] insert_latency_ms`` after now) on: a take
        (an ``ioc`` limit order at its limit, for its size, against the book in force then), or
        a post (``strategy.is_post``: a resting order at the post price, ``[strategy]
        post_tif`` and ``post_only``, a GTD expiring ``post_expiry_seconds`` after now). Fills
        booked at once (a latency of 0 fills a take now, as the broker's instant fill did): how many."""
        insert, cancel = self.order_latency()
        m = self.markets.get(d.ticker)
        sc = self.cfg.strategy
        post = sc.mode != "take" and strategy.is_post(d)
        expires = None
        if post and sc.post_expiry_seconds is not None:
            expires = now + sc.post_expiry_seconds * 1000
        o = submit(
            str(self.store.next_order_id()),
            d.ticker,
            d.side,
            price_to_cc(d.limit_price),
            count_to_hundredths(d.contracts),
            now,
            TimeInForce(sc.post_tif) if post else TimeInForce.IOC,
            post_only=post and sc.post_only,
            expires_ts=expires,
            insert_latency_ms=insert,
            cancel_latency_ms=cancel,
            grid=m.grid if m is not None else None,
        )
        if not o.state.done and m is not None and m.close_ts is not None and o.activation_ts >= m.close_ts:
            o.reject(now, f"the market closes before the order would be active ({insert} ms after its decision)")
        self.store.insert_order(o, "post" if post else "take", self.cfg.queue_model, decision_id)
        self._decided[o.id] = (decision_id, price_to_cc(d.best_ask))
        if o.state.done:
            return self._book_events([(o, e) for e in o.events])
        self.orders[o.id] = o
        fm = self._fill_models(o.ticker, now, s, s.ticker in self._polled_now)
        self._shadow_add(o, fm, now)  # (before the real models take it: the band's copies start alike)
        return self._book_events(fm.add(o) + fm.advance(now))

    # -- posting (issue #23 item 2): the strategy's resting orders ------------------------------
    def _decide_post(self, s: Quote, est: Estimate, m: Market, equity_cc: int, now: int) -> TradeDecision | None:
        """The post's proposal for ``s`` (``strategy.decide_post``, on the market's grid)."""
        grid = grid_of(m.price_ranges) if m.price_ranges is not None else None
        cfg = self.cfg
        terms = self._fee_terms_of(m)
        return strategy.decide_post(
            s, est, equity_cc, cfg.limits.max_loss_per_trade_pct, terms, cfg.strategy, grid, now, now
        )

    def _posted_text(self) -> str:
        """An accepted post's reason, the decision log's: ``posted gtc, post-only``."""
        return f"posted {self._post_how()}"

    def _post_how(self, o: PaperOrder | None = None) -> str:
        """A post's terms as the log writes them: ``gtc, post-only``, ``gtd 300 s``."""
        tif: str
        if o is None:
            sc = self.cfg.strategy
            tif, only, life = sc.post_tif, sc.post_only, sc.post_expiry_seconds
        else:
            tif, only = o.tif.value, o.post_only
            life = None if o.expires_ts is None else (o.expires_ts - o.decided_ts) // 1000
        return tif + (f" {life} s" if tif == "gtd" and life is not None else "") + (", post-only" if only else "")

    def _reprice(self, snaps: list[Quote], now: int) -> int:
        """Re-pricing (issue #23 item 4): a live post (not yet asked to cancel) in a market quoted
        this tick whose wanted post (``strategy.wanted_post`` on this quote: its side and price)
        is not its own any more, or is none (it no longer clears; ``both``: the taker's EV clears
        now), is asked to cancel: effective ``cancel_latency_ms`` later, fills possible until then.
        Its market is decided afresh once it is done (a later tick), and the new order joins the
        back of its price's queue. A post whose price still stands is left alone, so the churn
        is bounded by the quotes' moves. How many were asked."""
        if self.cfg.strategy.mode == "take" or not self.orders:
            return 0
        live = [o for o in self.orders.values() if o.resting and o.cancel_requested_ts is None]
        if not live:
            return 0
        quotes = {s.ticker: s for s in snaps}
        rows = []
        for o in sorted(live, key=lambda o: int(o.id)):
            s = quotes.get(o.ticker)
            est = self.estimates.get(o.ticker)
            m = self.markets.get(o.ticker)
            if s is None or est is None or m is None:
                continue  # nothing new to price it on
            grid = grid_of(m.price_ranges) if m.price_ranges is not None else None
            want = strategy.wanted_post(s, est.p_hat, self.cfg.strategy, self._fee_terms_of(m), grid, now)
            if want == (o.side, o.limit_cc):
                continue
            why = (
                "re-price: no post wanted now"
                if want is None
                else f"re-price: post {want[0].value.upper()} @{GRID[want[1]]} now"
            )
            o.request_cancel(now)
            self._cancel_why[o.id] = why
            rows.append((int(o.id), now, CANCEL_REQUESTED, why, None))
        self.store.insert_order_events(rows)
        return len(rows)

    def _note_end(self, o: PaperOrder, e: OrderEvent) -> None:
        """A resting order's end that is no fill, for the log (``TickReport.order_notes``)."""
        reason = e.reason
        if e.state is OrderState.CANCELLED:
            reason = self._cancel_why.get(o.id, reason)
        self._order_notes.append(
            OrderNote(e.ts, o.id, o.ticker, o.side, o.limit_cc, self._post_how(o), e.state.value, reason)
        )

    def _play_tape(self, batch: FetchBatch, fresh: list[Quote], now: int) -> int:
        """The markets with live orders: the tape since the last fetch (book updates, prints,
        gaps, by receive time), then this fetch's books (at its time: a polled one known only
        then), then the clock up to now: activations, fills, cancels. Fills booked: how many."""
        self._play_shadows(batch, fresh, now)  # (the band: the same tape under the other queue models)
        models = self._fills_of
        if not models:
            return 0
        return self._book_events(self._feed(models, batch, fresh, now))

    def _feed(
        self, models: dict[str, MarketFills], batch: FetchBatch, fresh: list[Quote], now: int
    ) -> list[tuple[PaperOrder, OrderEvent]]:
        """``_play_tape``'s rule for one set of fill models by market: their orders' new events."""
        for t, model in models.items():
            model.terms = self.fee_terms(t)  # the market's terms as of this fetch (a restart knows them now)
        out: list[tuple[PaperOrder, OrderEvent]] = []
        for ev in batch.tape:
            if isinstance(ev, TapeGap):
                gapped = models.values() if ev.ticker is None else [m for t, m in models.items() if t == ev.ticker]
                for model in gapped:
                    out += model.on_gap(ev.ts)
                continue
            fm = models.get(ev.ticker)
            if fm is None:
                continue
            if isinstance(ev, TapeBook):
                out += fm.on_book(ev.ts, ev.quote, ev.snapshot, ev.polled)
            elif isinstance(ev, TapePrint):
                out += fm.on_print(ev.print)
        polled = batch.polled
        fed = set()
        for q in fresh:
            if (fm := models.get(q.ticker)) is not None:
                out += fm.on_book(now, q, True, q.ticker in polled)
                fed.add(q.ticker)
        for t in sorted(polled - fed):  # fetched again, unchanged: known at this fetch all the same
            kept = self.quotes.get(t)
            if (fm := models.get(t)) is not None and kept is not None:
                out += fm.on_book(now, kept, True, True)
        for model in list(models.values()):
            out += model.advance(now)
        return out

    def _cancel_closed(self, now: int) -> int:
        """A market no longer open (closed, settled, past its close time) cancels its orders at once."""
        out: list[tuple[PaperOrder, OrderEvent]] = []
        for o in list(self.orders.values()):
            why = self.not_open(o.ticker, now)
            if why:
                k = len(o.events)
                o.cancel_rest(now, f"market {why}")
                out += [(o, e) for e in o.events[k:]]
        if self._shadows.markets:  # (the band's copies of them too, and of orders done here)
            self._store_shadow(self._shadows.close_markets(lambda t: self.not_open(t, now), now))
        return self._book_events(out)

    def cancel_orders(self, now: int, why: str) -> int:
        """Ask to cancel every live order (the kill switch, the daily and drawdown stops, a
        flatten): each takes effect ``cancel_latency_ms`` later, and the order can fill until then.
        Stored as a ``cancel_requested`` event; how many were asked."""
        rows = []
        for o in self.orders.values():
            if o.cancel_requested_ts is None:
                o.request_cancel(now)
                self._cancel_why[o.id] = why
                rows.append((int(o.id), now, CANCEL_REQUESTED, why, None))
        self.store.insert_order_events(rows)
        if self._shadows.markets:  # (the band's copies, those of orders done here included)
            self._store_shadow(self._shadows.request_cancels(self.orders, now, why))
        return len(rows)

    def cancel_order(self, order_id: str, now: int, why: str = "operator") -> bool:
        """Ask to cancel one live order (the desk's ``c``), by the same path as ``cancel_orders``:
        in force ``cancel_latency_ms`` later, fills possible until then. Whether it was asked
        (False: no such live order, or its cancel was asked already)."""
        o = self.orders.get(order_id)
        if o is None or o.cancel_requested_ts is not None:
            return False
        o.request_cancel(now)
        self._cancel_why[o.id] = why
        self.store.insert_order_events([(int(o.id), now, CANCEL_REQUESTED, why, None)])
        return True

    def queue_ahead(self, order_id: str) -> int | None:
        """Hundredths ahead of a live resting order in its market's queue model (None: not
        resting, not yet active, or not a live order)."""
        o = self.orders.get(order_id)
        fm = self._fills_of.get(o.ticker) if o is not None else None
        return None if fm is None else fm.queue_ahead(order_id)

    def _book_events(self, events: list[tuple[PaperOrder, OrderEvent]]) -> int:
        """Store orders' new events in order (a fill with its row and ledger entries); let go of
        the orders that are done. Fills booked: how many."""
        if not events:
            return 0
        rows = []
        n = 0
        for o, e in events:
            fid = None
            if e.fill is not None:
                fid = self._book_fill(o, e.fill)
                n += 1
            rows.append((int(o.id), e.ts, e.state.value, e.reason, fid))
            if o.resting and e.fill is None and e.state in _NOTED:
                self._note_end(o, e)
        self.store.insert_order_events(rows)
        for o, _e in events:
            if o.state.done and self.orders.pop(o.id, None) is not None:
                self._decided.pop(o.id, None)
                self._cancel_why.pop(o.id, None)
                fm = self._fills_of.get(o.ticker)
                if fm is not None:
                    fm.forget_done()
                    if not fm.orders:
                        del self._fills_of[o.ticker]
        return n

    def _book_fill(self, o: PaperOrder, f: OrderFill) -> int:
        """One fill of a paper order: its row, its ledger entries, and the log's account of it."""
        fill = Fill(
            ticker=o.ticker,
            ts=f.ts,
            side=o.side,
            action="buy",
            requested=hundredths_to_count(o.quantity_hundredths),
            contracts=hundredths_to_count(f.hundredths),
            value_cc=f.value_cc,
            fee_cc=f.fee_cc,
            levels=tuple((GRID[c], hundredths_to_count(h)) for c, h in f.levels),
        )
        did, ask = self._decided.get(o.id, (None, None))
        fid = self.store.insert_fill(fill, did, int(o.id), f.role.value, f.trigger.value, f.fee_exact)
        self._apply(buy_entries(fill, fid))
        price = -(-sum(c * h for c, h in f.levels) // f.hundredths)  # the levels' average, rounded up
        self._order_fills.append(
            OrderFillSeen(
                f"fill {fid}",
                o.id,
                o.ticker,
                o.side,
                f.ts,
                o.decided_ts,
                o.limit_cc,
                ask,
                price,
                f.hundredths,
                f.role.value,
                f.trigger.value,
                o.insert_latency_ms,
            )
        )
        return fid

    def _take_order_fills(self) -> tuple[OrderFillSeen, ...]:
        out, self._order_fills = tuple(self._order_fills), []
        return out

    def _take_order_notes(self) -> tuple[OrderNote, ...]:
        out, self._order_notes = tuple(self._order_notes), []
        return out

    def _load_orders(self) -> None:
        """The live orders as the store has them (a restart, a rolled-back tick): each rebuilt
        from its row and its events (a cancel asked for included), its fills with them (what
        remains, and its fee accumulator resumed from the fills' exact fees: ``resume_fills``)."""
        self.orders.clear()
        self._decided.clear()
        self._fills_of.clear()
        self._cancel_why.clear()
        for row, events, decided in self.store.live_orders():
            o = self._rebuilt(row[:11], events)
            if o is None:  # (a row without its submitted event: not an order Kakashi wrote whole)
                continue
            self.orders[o.id] = o
            self._decided[o.id] = (row[11], None if decided is None else decided[1])
            for _ts, state, reason, _fill in events:
                if state == CANCEL_REQUESTED:  # why it was asked: the note its cancel gives says it
                    self._cancel_why[o.id] = reason

    def _rebuilt(self, row: tuple, events: Iterable[tuple]) -> PaperOrder | None:
        """A live order (or a band's copy of one) from its stored row (id, ts, ticker, side,
        limit, quantity, tif, post-only, expiry, insert and cancel latency) and its events (fills
        included, a cancel asked for too), with its fills resumed; None without events."""
        oid, ts, ticker, side, limit, qty, tif, post_only, expires, insert, cancel = row
        o = PaperOrder(
            str(oid),
            ticker,
            Side(side),
            limit,
            qty,
            TimeInForce(tif),
            ts,
            post_only=bool(post_only),
            expires_ts=expires,
            insert_latency_ms=insert,
            cancel_latency_ms=cancel,
        )
        for ets, state, reason, fill in events:
            if state == CANCEL_REQUESTED:
                o.request_cancel(ets)
            else:
                o.events.append(OrderEvent(ets, OrderState(state), reason, fill))
        if not o.events:
            return None
        o.resume_fills(self.fee_terms(ticker))
        return o

    def _resume_fill_models(self) -> None:
        """Each live order's market's fill models, with the market's latest quote in force since
        the last tick (as the run that stored them had it; polled when the feed polls), and what
        they knew at the last committed tick put back (``_checkpoint_fills``): each resting
        order's place in the queue, the feed's gap, the liquidity our fills consumed."""
        self._fills_stored = self.store.fill_states()
        if not self.orders:
            return
        since = self.store.last_tick_ts() or 0
        polled = self.source.feed_status()[0] == "polling"
        for o in sorted(self.orders.values(), key=lambda o: int(o.id)):
            fm = self._fill_models(o.ticker, max(since, o.decided_ts), self.quotes.get(o.ticker), polled)
            fm.add(o)
        for t, fm in self._fills_of.items():
            fm.restore_state(self._fills_stored.get(t, FillsState({})))

    def _checkpoint_fills(self) -> None:
        """Store what the fill models know beyond the orders (``MarketFills.export_state``) in the
        tick's transaction, so a restart resumes each resting order at its place in the queue as
        of this tick: only what changed since the last write."""
        if not self._fills_of and not self._fills_stored:
            return
        now = {t: st for t, fm in self._fills_of.items() if not (st := fm.export_state()).empty}
        if now != self._fills_stored:
            self.store.write_fill_states(now, self._fills_stored)
            self._fills_stored = now

    # -- the band (issue #23 item 7): the same orders under the other queue models --------
    def _shadow_add(self, o: PaperOrder, fm: MarketFills, now: int) -> None:
        """A new order's copies in its market's shadow models (when it rests, or its market has
        shadows), taken before ``fm``, its real models, take it."""
        if o.resting or o.ticker in self._shadows.markets:
            self._store_shadow(self._shadows.add(o, fm, now))

    def _play_shadows(self, batch: FetchBatch, fresh: list[Quote], now: int) -> None:
        """The tape, fetch and clock of ``_play_tape`` for each shadow model, after the real
        orders' cancel requests are mirrored onto their copies (an operator's, a re-pricing)."""
        sh = self._shadows
        if not sh.markets:
            return
        out = sh.request_cancels(self.orders, None)
        for m in sh.models:
            got = self._feed(sh.view(m), batch, fresh, now)
            out += [ShadowEvent(m, o, e.ts, e.state.value, e.reason, e.fill) for o, e in got]
        self._store_shadow(out)

    def _store_shadow(self, events: list[ShadowEvent]) -> None:
        """Store shadow events (``shadow_events``: a fill with its count, value and fee); let go
        of the copies that are done."""
        self.store.insert_shadow_events([(int(e.order.id), e.model, e.ts, e.state, e.reason, e.fill) for e in events])
        self._shadows.forget_done()

    def _checkpoint_shadows(self) -> None:
        """Store the shadow models' state (``Shadows.export_states``) in the tick's transaction, as
        ``_checkpoint_fills`` stores the real ones': only what changed since the last write."""
        if not self._shadows.markets and not self._shadows_stored:
            return
        now = self._shadows.export_states()
        if now != self._shadows_stored:
            self.store.write_shadow_fill_states(now, self._shadows_stored)
            self._shadows_stored = now

    def _load_shadows(self) -> None:
        """The band's live copies as stored (a restart, a rolled-back tick), each in its market's
        shadow model from the market's latest quote, and what the models knew at the last
        committed tick put back, as ``_resume_fill_models`` resumes the real orders."""
        sh = self._shadows = Shadows(self.cfg.queue_model)
        self._shadows_stored = self.store.shadow_fill_states()
        rows = self.store.live_shadow_orders()
        if not rows:
            return
        since = self.store.last_tick_ts() or 0
        polled = self.source.feed_status()[0] == "polling"
        for row, model, events in rows:
            if model not in sh.models:  # (a run before traded by another model: this one is real now)
                continue
            o = self._rebuilt(row, events)
            if o is not None:
                terms, book = self.fee_terms(o.ticker), self.quotes.get(o.ticker)
                sh.resume(o, model, terms, book, max(since, o.decided_ts), polled)
        sh.restore_states(self._shadows_stored)

    # -- flatten --------------------------------------------------------------------
    def flatten(self, origin: str = "operator", now: int | None = None) -> int:
        """Sell every open paper position into the bids of its latest snapshot, and cancel the
        live paper orders (effective after the cancel latency: one may still fill until then).
        Returns fills."""
        n = 0
        now = self.source.now_ms() if now is None else now
        with self.store.atomic():
            self.cancel_orders(now, f"flatten ({origin})")
            for p in self.account.open_positions():
                s = self.quotes.get(p.ticker)
                if s is None:
                    continue
                fill = broker.fill_sell(p.ticker, p.side, p.contracts, s, self.fee_terms(p.ticker), now)
                if fill is None:
                    continue
                fid = self.store.insert_fill(fill, None)
                self._apply(sell_entries(fill, fid))
                n += 1
            self.store.add_event(now, "flatten", f"{n} fills ({origin})")
        return n
