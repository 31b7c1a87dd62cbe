"""What a run tells the operator's log, the same from the desk and from a headless run.

``Journal.on_report`` is a service report listener (the engine's thread): the tick's line, its
decisions (a repeating rejection counted, not repeated: logfile.py), one line per fill and per
settlement from the ledger entries the tick wrote, and one line per change of state (paused,
kill switch, daily stop), whoever caused it: this desk, another process's ``kakashi pause``, or
the engine itself. ``Notices`` decides what a run tells the operator as alerts beside the alarms
(each fill, each day's summary), also the same from both. No Textual here.

    FILL     fill 12 buy KXHIGHNY-26NOV27-T45 YES x3.00 @0.4100 value $1.2300 fee $0.0700
    SETTLE   KXHIGHNY-26NOV27-T45 YES x3.00 paid $3.0000
    SETTLE   KXHIGHNY-26NOV27-T45 YES correction -$3.0000 (its result changed after it was paid)
    STATE    RUNNING -> PAUSED (outside)
    ORDER    order 7 YES @0.4100 gtc, post-only: cancelled (re-price: post YES @0.4300 now)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from kakashi_tui.core.ledger import Kind, LedgerEntry
from kakashi_tui.core.money import fmt_cc, fmt_count
from kakashi_tui.frontends.fmt import fmt_signed
from kakashi_tui.frontends.logfile import OperatorLog
from kakashi_tui.trading.engine import TickReport
from kakashi_tui.trading.performance import ClosedDay

_FILL_KINDS = (Kind.BUY, Kind.SELL)
_FEE_KINDS = (Kind.BUY_FEE, Kind.SELL_FEE)


@dataclass(frozen=True)
class FillSeen:
    """A fill among a report's ledger entries: its value and fee entries together."""

    name: str  # "fill 12"
    action: str  # buy | sell
    ticker: str
    side: str  # YES | NO
    contracts: Decimal
    price: Decimal  # its value over its contracts
    value_cc: int
    fee_cc: int


def fills_in(entries: Sequence[LedgerEntry]) -> list[FillSeen]:
    """The fills among ``entries``, in order."""
    fees = {e.key.rsplit(":", 1)[0]: -e.amount_cc for e in entries if e.kind in _FEE_KINDS}
    out = []
    for e in entries:
        if e.kind in _FILL_KINDS:
            fill = e.key.rsplit(":", 1)[0]  # fill:<id>
            n = abs(e.contracts)
            price = Decimal(abs(e.amount_cc)) / 10_000 / n if n else Decimal(0)
            side = e.side.value.upper() if e.side else ""
            value, fee = abs(e.amount_cc), fees.get(fill, 0)
            out.append(FillSeen(fill.replace(":", " "), e.kind.value, e.ticker, side, n, price, value, fee))
    return out


def entry_lines(entries: Sequence[LedgerEntry], orders: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
    """(category, text) for the fills and settlements among ``entries``: one line per fill
    (its value and fee entries together), one per settlement or correction. ``orders``: what a
    paper order's fill says of its order (``fill 12`` -> ``TickReport.order_fills``' text: the
    price decided on beside the price filled at, issue #23)."""
    fills = iter(fills_in(entries))
    orders = orders or {}
    out = []
    for e in entries:
        side = e.side.value.upper() if e.side else ""
        if e.kind in _FILL_KINDS:
            f = next(fills)
            said = f" | {orders[f.name]}" if f.name in orders else ""
            out.append(
                (
                    "FILL",
                    f"{f.name} {f.action} {f.ticker} {f.side} x{fmt_count(f.contracts)} @{f.price:.4f}"
                    f" value {fmt_cc(f.value_cc)} fee {fmt_cc(f.fee_cc)}{said}",
                )
            )
        elif e.kind is Kind.SETTLE:
            out.append(("SETTLE", f"{e.ticker} {side} x{fmt_count(-e.contracts)} paid {fmt_cc(e.amount_cc)}"))
        elif e.kind is Kind.SETTLE_FIX:
            sign = "+" if e.amount_cc > 0 else "-"
            out.append(
                (
                    "SETTLE",
                    f"{e.ticker} {side} correction {sign}{fmt_cc(abs(e.amount_cc))}"
                    " (its result changed after it was paid)",
                )
            )
    return out


class Journal:
    """Writes each report to the log; ``on_state`` (optional) hears each change of state, old
    and new (a headless run raises its alerts from it)."""

    def __init__(
        self,
        log: OperatorLog,
        on_state: Callable[[str, str], None] | None = None,
        threshold: Decimal | None = None,
    ) -> None:
        self.log = log
        self.on_state = on_state
        self.threshold = threshold  # the edge threshold: EVs are written with the digits that decide
        self._state: str | None = None

    def on_report(self, report: TickReport) -> None:
        self.log.tick(report.log_line())
        for d in report.decisions:
            self.log.decision(d, self.threshold)
        for category, text in entry_lines(report.entries, {f.fill: f.text() for f in report.order_fills}):
            self.log.write(category, text)
        for n in report.order_notes:  # a resting order rejected, expired or cancelled (#23)
            self.log.write("ORDER", n.text())
        if self._state is not None and report.state != self._state:
            self.log.write("STATE", f"{self._state} -> {report.state}")
            if self.on_state is not None:
                self.on_state(self._state, report.state)
        self._state = report.state


def state_alert(old: str, new: str) -> tuple[str, str, str] | None:
    """(alert kind, message, severity) for a change of state that must not be missed: a kill
    switch thrown (by anyone, or by the failure policy) or the daily loss cap hit."""
    from kakashi_tui.adapters import alerts as al

    if new.startswith("HALTED (kill switch") and not old.startswith("HALTED (kill switch"):
        if "failed ticks" in new:
            return al.ENGINE_FAILED, f"trading halted: {new}", "error"
        return al.KILL_EXTERNAL, f"kill switch thrown: {new}", "error"
    if new == "HALTED (daily loss cap)" and old != new:
        return al.DAILY_STOP, "daily loss cap hit: no new trades until 00:00 UTC", "error"
    if new.startswith("PAUSED (plan ") and old != new:  # a plan's kill condition paused trading
        return al.PLAN_KILL, f"trading paused: {new.removeprefix('PAUSED (').removesuffix(')')}", "error"
    return None


def fill_alert(f: FillSeen, order: str = "") -> str:
    """A fill's alert: ``filled: buy KXHIGHNY-26NOV27-T45 YES x3 @0.4100, fee $0.07``, and what
    its paper order says (``order``: the price decided on, issue #23) when it has one."""
    said = f" ({order})" if order else ""
    return (
        f"filled: {f.action} {f.ticker} {f.side} x{fmt_count(f.contracts)} @{f.price:.4f}, fee {fmt_cc(f.fee_cc)}{said}"
    )


def day_alert(day: ClosedDay) -> str:
    """A day's summary, from performance.py's figures: ``daily summary 2026-01-05: realised +$1.20,
    fees $0.35, fills 4, closed 2, win rate 1/2 (50%)``."""
    p = day.period
    return (
        f"daily summary {p.name}: realised {fmt_signed(p.realized_cc)}, fees {fmt_cc(p.fees_cc)}, "
        f"fills {day.fills}, closed {p.trades}, win rate {p.win_rate}"
    )


class Notices:
    """What the operator hears of wherever they are, beside the alarms: each fill (unless ``fills``
    is off: ``[alerts] fills``) and each UTC day's summary when it is over. The desk and a headless
    run both register it (``on_report``, ``on_day``: the engine's thread) and hand ``alert`` the
    (kind, message, severity) of each: information, never the bell (alerts.QUIET)."""

    def __init__(self, alert: Callable[[str, str, str], object], fills: bool = True) -> None:
        self.alert = alert
        self.fills = fills

    def on_report(self, report: TickReport) -> None:
        from kakashi_tui.adapters import alerts as al

        if self.fills:
            orders = {o.fill: o.text() for o in report.order_fills}
            for f in fills_in(report.entries):
                self.alert(al.FILL, fill_alert(f, orders.get(f.name, "")), "information")

    def on_day(self, day: ClosedDay) -> None:
        from kakashi_tui.adapters import alerts as al

        self.alert(al.DAILY_SUMMARY, day_alert(day), "information")


def previous_run_alert(service) -> tuple[str, str, str] | None:
    """(alert kind, message, severity) when the run before this one stopped without a clean quit
    (kill -9, a crash, a power cut): ``the previous run (started T) stopped without a clean quit;
    last tick T2``. Read once the service has started (it keeps what that run left)."""
    from kakashi_tui.adapters import alerts as al
    from kakashi_tui.trading.health import previous_run_line

    prev = service.unclean_previous
    line = previous_run_line(prev) if prev is not None else None
    return None if line is None else (al.UNCLEAN_STOP, line, "error")
