"""The desk's view model: an immutable picture of the engine after a tick, plus the pure
formatting the panels use. No Textual here, so it is unit-testable and cheap to post
between threads. The trading service builds it on the engine's thread (``build_view``)
and publishes it; front-ends only ever read a ``DeskView``.

What the desk shows over time and no trading rule reads (the decision log, the equity chart,
each market's last few quotes) is kept here, in ``DeskWindows``, which the service feeds from
each ``TickReport``: the engine computes a tick and keeps no view state."""

from __future__ import annotations

import functools
import re
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import TYPE_CHECKING

from kakashi_tui.core import risk
from kakashi_tui.core.ledger import Closed, mark_cc
from kakashi_tui.core.models import Market, MarketStatus, Quote, Side, TradeDecision
from kakashi_tui.core.money import fmt_cc
from kakashi_tui.core.plan import state_of
from kakashi_tui.core.risk import daily_cap_cc, drawdown_cap_cc, event_cap_cc
from kakashi_tui.core.sizing import per_trade_cap_cc
from kakashi_tui.core.strategy import is_post, pick_side, side_evs
from kakashi_tui.core.text import safe_text
from kakashi_tui.trading.engine import KILL_REASON_SHOWN, run_state, shards_halted_text
from kakashi_tui.trading.performance import Performance, PerformanceBook

if TYPE_CHECKING:
    from kakashi_tui.adapters.source import Source
    from kakashi_tui.trading.engine import Engine, TickReport

#: The desk's rolling windows (``DeskWindows``): decisions kept and the log's share of them, the
#: equity chart's points (seeded from the store at start: a restart shows the recent curve), and
#: each market's recent quotes (the detail panel's book history).
DECISIONS_KEPT = 200
DECISIONS_SHOWN = 60
EQUITY_KEPT = 500
QUOTES_KEPT = 4


class DeskWindows:
    """The desk's rolling windows over the run, fed one ``TickReport`` at a time on the service's
    thread (``feed``); ``build_view`` reads them. Bounded: a long run keeps the last
    ``DECISIONS_KEPT`` decisions, ``EQUITY_KEPT`` equity points and ``QUOTES_KEPT`` quotes of each
    market still open (a market the engine let go of is dropped)."""

    def __init__(self, equity: Iterable[int] = ()) -> None:
        self.decisions: deque[TradeDecision] = deque(maxlen=DECISIONS_KEPT)
        self.equity: deque[int] = deque(equity, maxlen=EQUITY_KEPT)
        self.books: dict[str, deque[Quote]] = {}

    def feed(self, report: TickReport) -> None:
        self.decisions.extend(report.decisions)
        self.equity.append(report.equity_cc)
        books = self.books
        for q in report.quotes:
            h = books.get(q.ticker)
            if h is None:
                h = books[q.ticker] = deque(maxlen=QUOTES_KEPT)
            h.append(q)
        for t in report.gone:
            books.pop(t, None)

    def shown_decisions(self) -> tuple[TradeDecision, ...]:
        """The decision log's lines: the newest ``DECISIONS_SHOWN``, oldest first."""
        d = self.decisions
        return tuple(d)[-DECISIONS_SHOWN:] if len(d) > DECISIONS_SHOWN else tuple(d)


@dataclass(frozen=True)
class MarketLine:
    ticker: str
    title: str
    bid: Decimal | None
    ask: Decimal | None
    last: Decimal | None
    p_hat: Decimal | None
    p_source: str
    ev_yes: Decimal | None
    ev_no: Decimal | None
    # what the risk gate would do now: "BUY YES" / "BUY NO" ("POST YES": a resting order), "HELD",
    # "ORDER" (a paper order not yet filled), "NO QUOTE", or why not
    signal: str
    age_ms: int
    close_ts: int | None
    status: str = ""
    fee_multiplier: Decimal | None = None  # the fee coefficient in use for this market
    full_title: str = ""  # the subtitle with the title (``title`` is the part that tells it apart)


def not_open(line: MarketLine | None, now_ms: int) -> str:
    """Why a market of the view is no longer open ("" while it is): gone from it (settled), its
    status, or past its close time (the engine's ``not_open`` on the same facts)."""
    if line is None:
        return "settled"
    if line.status and line.status != MarketStatus.ACTIVE.value:
        return line.status
    return "past its close time" if line.close_ts is not None and now_ms >= line.close_ts else ""


@dataclass(frozen=True)
class PositionLine:
    ticker: str
    side: Side
    contracts: Decimal
    avg_price: Decimal
    mark_cc: int  # liquidation value (ledger.mark_cc): the one marking rule
    cost_cc: int
    close_in_ms: int | None

    @property
    def upnl_cc(self) -> int:
        return self.mark_cc - self.cost_cc


@dataclass(frozen=True)
class OrderLine:
    """A live paper order as the orders panel shows it (issue #23 item 9)."""

    order_id: str
    ticker: str
    side: Side
    limit_cc: int  # the price of the order's own side
    remaining_hundredths: int
    quantity_hundredths: int
    queue_ahead_hundredths: int | None  # the fill model's queue ahead (None: a taker's, or not yet active)
    age_ms: int  # since its decision
    state: str  # the order's state, or "cancelling" once its cancel is asked for
    tif: str = "ioc"


def order_lines(engine: Engine, now: int) -> tuple[OrderLine, ...]:
    """The engine's live paper orders, oldest first (by id), each with its queue ahead."""
    out = []
    for o in sorted(engine.orders.values(), key=lambda o: int(o.id)):
        cancelling = o.cancel_requested_ts is not None and not o.state.done
        out.append(
            OrderLine(
                order_id=o.id,
                ticker=o.ticker,
                side=o.side,
                limit_cc=o.limit_cc,
                remaining_hundredths=o.remaining_hundredths,
                quantity_hundredths=o.quantity_hundredths,
                queue_ahead_hundredths=engine.queue_ahead(o.id),
                age_ms=max(0, now - o.decided_ts),
                state="cancelling" if cancelling else o.state.value,
                tif=o.tif.value,
            )
        )
    return tuple(out)


@dataclass(frozen=True)
class RiskLine:
    name: str
    used: str
    limit: str
    level: str  # "ok" | "warn" | "error"


@dataclass(frozen=True)
class FeedStatus:
    """Which feed is live, and how it is: ``websocket`` (books from Kalshi's WebSocket),
    ``polling`` (REST: no key, or the WebSocket refused, unreachable or out of sync),
    ``simulated`` or ``replay``; ``detail`` says more (``2 live books``, ``websocket down: why``)."""

    kind: str
    detail: str = ""

    @property
    def label(self) -> str:
        return f"{self.kind} ({self.detail})" if self.detail else self.kind

    @property
    def degraded(self) -> bool:
        """Polling because the WebSocket that should be live is not."""
        return self.kind == "polling" and self.detail.startswith("websocket")


def feed_status(source: Source) -> FeedStatus:
    """The feed a source runs on (``Source.feed_status``: the WebSocket source says its own)."""
    kind, detail = source.feed_status()
    return FeedStatus(kind, detail)


@dataclass(frozen=True)
class DeskView:
    source: str
    state: str
    state_kind: str  # running | paused | halted
    tick: int
    clock_ms: int
    latency_ms: float
    feed_errors: tuple[str, ...]
    rejected_total: int
    markets: tuple[MarketLine, ...]
    books: dict[str, tuple[Quote, ...]]
    decisions: tuple[TradeDecision, ...]
    positions: tuple[PositionLine, ...]
    history: tuple[Closed, ...]
    cash_cc: int
    equity_cc: int
    realized_cc: int
    unrealized_cc: int
    today_pnl_cc: int
    fees_cc: int
    equity_series: tuple[int, ...]
    risk: tuple[RiskLine, ...]
    killed: bool
    paused: bool
    daily_stopped: bool
    drawdown_reason: str = ""  # the drawdown stop halted trading, and why ("": it has not)
    edge_threshold: Decimal = Decimal("0.03")  # the limits the operator sees beside the numbers
    max_quote_age_ms: int = 30_000
    max_spread: Decimal = Decimal("0.05")
    daily_cap_cc: int = 0  # today's loss that stops new trades
    feed: FeedStatus = FeedStatus("simulated")  # which feed is live
    feed_notes: tuple[str, ...] = ()  # what works but the operator should know: logged, not an alarm
    key_refused: str = ""  # the exchange refuses the API key, and why
    halted_shards: tuple[int, ...] = ()  # exchange shards not trading (their markets are not decided)

    @property
    def shards_text(self) -> str:
        """``SHARD 1 HALTED`` while a shard is halted (the engine's one wording), else ""."""
        return shards_halted_text(self.halted_shards)

    performance: Performance | None = None  # today, this week, since start (performance.py)
    orders: tuple[OrderLine, ...] = ()  # the live paper orders (the orders panel)


def _level(used: int, limit: int) -> str:
    if limit <= 0 or used >= limit:
        return "error"
    return "warn" if used >= 0.7 * limit else "ok"


#: The risk gate's refusals, in a word for the Signal column (the log keeps the full reason).
GATE_LABELS = {
    risk.KILL_SWITCH: "halted",
    risk.DAILY_STOP: "cap",
    risk.DRAWDOWN_STOP: "halted",
    risk.DRAWDOWN_HEADROOM: "drawdown",
    risk.MARKET_NOT_OPEN: "closed",
    risk.MARKET_CLOSED: "closed",
    risk.STALE_QUOTE: "stale",
    risk.WIDE_SPREAD: "spread",
    risk.NO_SPREAD: "spread",
    risk.MAX_POSITIONS: "max pos",
    risk.ZERO_SIZE: "size",
    risk.PER_TRADE_CAP: "size",
    risk.DAILY_HEADROOM: "cap",
    risk.NO_CASH: "cash",
    risk.NO_DEPTH: "no book",
    risk.SHARD_HALTED: "shard",  # (the markets table's gate column: its shard is halted)
    risk.SETTLEMENT_FLOOR: "floor",
    risk.EVENT_CAP: "event",
}
_HAS_SUBTITLE = "subtitle" in Market.model_fields  # a pydantic miss costs ~10 µs a market per view


_YES_NO = re.compile(r"(?i)^(yes|no)\b[\s:,.·\-–—]*")


def market_titles(m) -> tuple[str, str]:
    """(what the markets table shows, the market's name in full) for a market of the view: Kalshi's
    ``yes_sub_title`` where it tells the market from its siblings ("45° or above"), else the
    market's own title; in full, the subtitle with the title. A subtitle that only says "Yes" (or
    "Yes: <ticker>") says nothing: on Kalshi every row read "Yes · Held…"."""
    if m is None:
        return "", ""
    return _titles(m.ticker, m.title or "", ((m.subtitle or "") if _HAS_SUBTITLE else "").strip())


@functools.lru_cache(maxsize=8192)  # built for every market of every view: the same few texts
def _titles(ticker: str, title: str, sub: str) -> tuple[str, str]:
    core = _YES_NO.sub("", sub, count=1).strip()
    if core and core.casefold() not in (title.strip().casefold(), ticker.casefold()):
        shown, full = core, (f"{core} · {title}" if title else core)
    else:
        shown = full = title or sub
    # the exchange's text: a bidi override or an escape shown, not obeyed
    return safe_text(shown, None), safe_text(full, None)


def gate_signal(decision: TradeDecision | None, paused: bool) -> str:
    """What the gate would do with this market now: BUY <side>, or why not."""
    if decision is None:
        return ""  # no edge past the threshold: nothing to propose
    if decision.accepted:  # (a post rests: POST YES; strategy.is_post)
        verb = "POST" if is_post(decision) else "BUY"
        return "paused" if paused else f"{verb} {decision.side.value.upper()}"
    reason = decision.reason
    return next((label for key, label in GATE_LABELS.items() if reason.startswith(key)), "no")


def _kill_line(killed: bool, reason: str) -> RiskLine:
    shown = safe_text(reason, KILL_REASON_SHOWN) if killed else ""  # outside text (``kakashi kill --reason``)
    return RiskLine("Kill switch", "THROWN" if killed else "armed", shown, "error" if killed else "ok")


def _drawdown_line(peak_cc: int, equity_cc: int, pct: Decimal, reason: str) -> RiskLine:
    """How far marked equity is below its peak, against the drawdown stop's cap."""
    down = max(0, peak_cc - equity_cc) if peak_cc > 0 else 0
    cap = drawdown_cap_cc(peak_cc, pct) if peak_cc > 0 else 0
    level = "error" if reason else ("ok" if cap <= 0 else _level(down, cap))
    return RiskLine("Drawdown", fmt_cc(down), f"{fmt_cc(cap)} ({pct}% of peak)", level)


def plan_line(engine: Engine, now: int) -> RiskLine | None:
    """The plan in force, one short row (None: no plan): ``Plan 3 | 52/200 trades | on track``;
    failed: the kill condition met; at the sample: PASSED or NOT PASSED (core/plan.py)."""
    p = engine.plan
    if p is None:
        return None
    w = engine.plan_watch
    state = state_of(p)
    if w is not None and p.sample.unit == "trades":
        used = f"{min(len(w.trades), p.sample.n)}/{p.sample.n} trades"
    elif w is not None:
        used = f"{min(w.days(now) or 0.0, p.sample.n):.1f}/{p.sample.n} days"
    else:
        used = p.sample.text
    if state == "failed":
        return RiskLine(f"Plan {p.id}", "FAILED", safe_text(p.killed_by, KILL_REASON_SHOWN), "error")
    if state in ("passed", "not passed"):
        return RiskLine(f"Plan {p.id}", state.upper(), f"at {used}", "ok" if state == "passed" else "warn")
    return RiskLine(f"Plan {p.id}", used, state, "ok")


def _event_lines(engine: Engine, equity_cc: int, pct: Decimal) -> tuple[RiskLine, ...]:
    """The largest worst case of an event held (over its outcomes, as the gate counts it: live
    orders too) against the event cap, while some event holds two markets or more (one position
    or order alone is within the per-trade cap, half the event cap: the row would say nothing)."""
    per_event = Counter(engine.event_of(t) for t in engine.held_tickers())
    if not per_event or max(per_event.values()) < 2:
        return ()
    shown = max(0, max((w for _ev, w in engine.event_exposures()), default=0))
    cap = event_cap_cc(equity_cc, pct)
    return (RiskLine("Worst event", fmt_cc(shown), fmt_cc(cap), _level(shown, cap + 1)),)


def build_view(
    engine: Engine,
    focus: str | None = None,
    book: PerformanceBook | None = None,
    windows: DeskWindows | None = None,
) -> DeskView:
    """Picture the engine's state for the desk: the service calls it on the engine's thread.

    ``focus``: the market whose recent quotes the detail panel shows (only its history is
    copied; with thousands of markets the others would be garbage by the next view).
    ``book``: the service's, which keeps the performance summary's sums between views.
    ``windows``: the service's, fed by every tick (none: the view has no log, chart or book history).
    """
    win = windows or DeskWindows()
    now = engine.source.now_ms()
    acct = engine.account
    limits = engine.cfg.limits
    in_positions = acct.tickers_held()
    held = engine.held_tickers()  # (and the markets with live paper orders: the gate counts them)
    edge = engine.cfg.strategy.edge_threshold
    posting = engine.cfg.strategy.mode != "take"  # (a post may clear where no taker's EV does)
    equity = engine.equity()
    day_start = engine.day_start_equity() or equity
    flags = engine.flags  # one consistent picture (replaced whole, never mutated)
    stopped = engine.daily_stopped(now)  # one control read serves the label, the panel and the signals
    peak, drawdown = engine.peak_cc, engine.drawdown_reason
    reserved = engine.reserved_now(now)  # (the view places nothing: one sum serves every market)
    lines = []
    snapshots = engine.quotes
    for t in sorted(snapshots):  # (the keys: 5,000 (ticker, quote) pairs were tracked by the collector)
        s = snapshots[t]
        m = engine.markets.get(t)
        title, full_title = market_titles(m)
        est = engine.estimates.get(t)
        terms = engine.fee_terms(t)
        evs: dict[Side, Decimal | None] = side_evs(s, est.p_hat, terms, now) if est else {Side.YES: None, Side.NO: None}
        if t in in_positions:
            signal = "HELD"
        elif t in held:
            signal = "ORDER"  # a paper order not yet filled (issue #23)
        elif s.quiet:
            signal = "NO QUOTE"
        elif est is not None and (pick_side(evs, edge) is not None or posting):
            # an edge: what the risk gate would say to it now (the same check the tick makes)
            d = engine.decide(s, now, equity, day_start, stopped, held, bool(drawdown), peak, reserved)
            signal = gate_signal(d, flags.paused)
        else:
            signal = ""
        lines.append(
            MarketLine(
                ticker=t,
                title=title,
                bid=s.yes_bid,
                ask=s.yes_ask,
                last=s.last,
                p_hat=est.p_hat if est else None,
                p_source=est.source if est else "",
                ev_yes=evs[Side.YES],
                ev_no=evs[Side.NO],
                signal=signal,
                age_ms=max(0, now - s.ts),
                close_ts=m.close_ts if m else None,
                status=m.status.value if m else "",
                fee_multiplier=terms.coefficient,
                full_title=full_title,
            )
        )
    positions = []
    for p in acct.open_positions():
        m = engine.markets.get(p.ticker)
        positions.append(
            PositionLine(
                ticker=p.ticker,
                side=p.side,
                contracts=p.contracts,
                avg_price=p.avg_price,
                mark_cc=mark_cc(p.side, p.contracts, engine.quotes.get(p.ticker), engine.fee_terms(p.ticker), now),
                cost_cc=p.cost_cc,
                close_in_ms=(m.close_ts - now) if m and m.close_ts else None,
            )
        )
    unreal = sum(pl.upnl_cc for pl in positions)
    today = equity - day_start
    dcap = daily_cap_cc(day_start, limits.daily_loss_cap_pct)
    loss = max(0, -today)
    ptc = per_trade_cap_cc(equity, limits.max_loss_per_trade_pct)
    risk: tuple[RiskLine, ...] = (
        RiskLine(
            "Open positions",
            str(len(positions)),
            str(limits.max_open_positions),
            _level(len(positions), limits.max_open_positions),
        ),
        RiskLine("Today's loss", fmt_cc(loss), fmt_cc(dcap), "error" if stopped else _level(loss, dcap)),
        RiskLine("Per-trade cap", fmt_cc(ptc), f"{limits.max_loss_per_trade_pct}% eq", "ok"),
        _drawdown_line(peak, equity, limits.max_drawdown_pct, drawdown),
        *_event_lines(engine, equity, limits.max_event_loss_pct),
        _kill_line(flags.kill, flags.kill_reason),
    )
    if (plan := plan_line(engine, now)) is not None:  # (only where a plan is registered)
        risk += (plan,)
    state, kind = run_state(flags.kill, flags.kill_reason, stopped, flags.paused, drawdown, flags.pause_reason)
    if focus is None:
        books = {t: tuple(h) for t, h in win.books.items()}
    else:
        books = {focus: tuple(h)} if (h := win.books.get(focus)) is not None else {}
    return DeskView(
        source=engine.source.name,
        state=state,
        state_kind=kind,
        tick=engine.tick_count,
        clock_ms=now,
        latency_ms=engine.last_latency_ms,
        feed_errors=engine.last_errors,
        rejected_total=engine.rejected_total,
        markets=tuple(lines),
        books=books,
        decisions=win.shown_decisions(),
        positions=tuple(positions),
        history=tuple(acct.closed[-30:]),
        cash_cc=acct.cash_cc,
        equity_cc=equity,
        realized_cc=acct.realized_cc,
        unrealized_cc=unreal,
        today_pnl_cc=today,
        fees_cc=acct.fees_cc,
        equity_series=tuple(win.equity),
        risk=risk,
        killed=flags.kill,
        paused=flags.paused,
        daily_stopped=stopped,
        drawdown_reason=drawdown,
        edge_threshold=edge,
        max_quote_age_ms=limits.max_quote_age_ms,
        max_spread=limits.max_spread,
        daily_cap_cc=dcap,
        feed=feed_status(engine.source),
        feed_notes=engine.last_notes,
        key_refused=engine.key_refused,
        halted_shards=tuple(sorted(engine.halted_shards)),
        performance=(book or PerformanceBook(engine.store)).figures(acct, equity, now),
        orders=order_lines(engine, now) if engine.orders else (),
    )


def with_flags(v: DeskView, killed: bool, kill_reason: str, paused: bool, pause_reason: str = "") -> DeskView:
    """The same view with new kill/pause flags (a command flipped them in memory just now)."""
    state, kind = run_state(killed, kill_reason, v.daily_stopped, paused, v.drawdown_reason, pause_reason)
    risk = tuple(_kill_line(killed, kill_reason) if r.name == "Kill switch" else r for r in v.risk)
    return replace(v, state=state, state_kind=kind, killed=killed, paused=paused, risk=risk)
