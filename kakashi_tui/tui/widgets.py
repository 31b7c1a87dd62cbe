"""The desk's panels. Each is a small view over ``DeskView``: set ``panel.view`` and it renders."""

from __future__ import annotations

from datetime import datetime, timezone

from rich.table import Table
from rich.text import Text
from textual.reactive import reactive
from textual.widgets import DataTable, Sparkline, Static

from kakashi_tui.core.money import fmt_cents
from kakashi_tui.view import (
    DeskView, fmt_age, fmt_duration, fmt_ev, fmt_price, fmt_signed,
)


def _utc(ms: int, fmt: str = "%Y-%m-%d %H:%M:%SZ") -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime(fmt)


class Palette:
    """Colours for Rich renderables, taken from the app's theme (never hard-coded)."""

    def __init__(self, widget) -> None:
        v = widget.app.theme_variables
        self.up = v.get("success", "")
        self.down = v.get("error", "")
        self.warn = v.get("warning", "")
        self.held = v.get("accent", "")
        self.dim = "dim"  # an attribute, not a colour: muted on any theme

    def money(self, cents: int) -> str:
        return self.up if cents > 0 else (self.down if cents < 0 else "")

    def level(self, level: str) -> str:
        return {"ok": self.up, "warn": self.warn, "error": f"bold {self.down}"}[level]


class StatusBar(Static):
    view: reactive[DeskView | None] = reactive(None, layout=False)
    halted_reason: reactive[str] = reactive("")

    def render(self) -> Text:
        pal = Palette(self)
        v = self.view
        if v is None:
            return Text(" KAKASHI · PAPER │ starting…")
        state = f"HALTED ({self.halted_reason})" if self.halted_reason else v.state
        t = Text(" KAKASHI · PAPER ", style="bold")
        t.append("│ ")
        t.append(f"{v.source} ", style="bold")
        t.append("│ ")
        t.append(state, style="bold")
        t.append(f" │ tick {v.tick} │ {_utc(v.clock_ms, '%Y-%m-%d %H:%M')}Z │ fetch {v.latency_ms:.1f} ms")
        t.append(f" │ feed errors {len(v.feed_errors)}", style=f"bold {pal.down}" if v.feed_errors else "")
        t.append(f" │ rejected rows {v.rejected_total}")
        if v.feed_errors:
            t.append(f" │ {v.feed_errors[0]}", style=pal.down)
        return t

    def watch_view(self, v: DeskView | None) -> None:
        kind = "halted" if self.halted_reason else (v.state_kind if v else "running")
        for k in ("running", "paused", "halted"):
            self.set_class(k == kind, f"-{k}")


# Widths include a one-space gutter (cell padding is 0): 76 columns, the width of the
# markets panel at 80 columns and beside the detail panel at 120.
MARKET_COLUMNS = [
    ("ticker", "Ticker", 14), ("title", "Title", 11), ("bid", "  Bid", 5), ("ask", "  Ask", 5),
    ("last", " Last", 5), ("p_hat", "   p̂", 5), ("src", " Src", 8), ("ev_yes", " EV Y", 6),
    ("ev_no", " EV N", 6), ("signal", " Signal", 8), ("age", "Age", 3),
]
SORTS = ["ticker", "edge", "age"]


class MarketsTable(DataTable):
    """Keyed rows, diffed cell updates, fixed column widths, never cleared."""

    sort_mode: reactive[str] = reactive("ticker")

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = True
        self.cell_padding = 0
        for key, label, width in MARKET_COLUMNS:
            self.add_column(label, key=key, width=width)
        self._cells: dict[str, tuple] = {}
        self._lines: dict = {}

    @staticmethod
    def _cells_for(m, pal: Palette) -> tuple:
        sig_style = f"bold {pal.up}" if m.signal.startswith("BUY") else (pal.held if m.signal == "HELD" else "")
        ev_cells = []
        for ev in (m.ev_yes, m.ev_no):
            style = pal.up if ev is not None and ev > 0 else (pal.down if ev is not None and ev < 0 else pal.dim)
            ev_cells.append(Text(fmt_ev(ev), style=style, justify="right"))
        src = "oracle*" if m.p_source.startswith("sim-oracle") else m.p_source[:9]
        return (m.ticker[:13], m.title[:10], Text(fmt_price(m.bid), justify="right"),
                Text(fmt_price(m.ask), justify="right"), Text(fmt_price(m.last), justify="right"),
                Text(fmt_price(m.p_hat), justify="right"), " " + src[:7], *ev_cells,
                Text(" " + m.signal, style=sig_style), Text(fmt_age(m.age_ms), justify="right"))

    def apply(self, v: DeskView) -> None:
        """Diff the new market lines against what is shown; touch only the cells that changed."""
        pal = Palette(self)
        keys = [k for k, _l, _w in MARKET_COLUMNS]
        live = {m.ticker: m for m in v.markets}
        resort = False
        for gone in [t for t in self._lines if t not in live]:
            self.remove_row(gone)
            del self._lines[gone], self._cells[gone]
            resort = True
        for t, m in live.items():
            old_line = self._lines.get(t)
            if old_line == m:
                continue  # unchanged: no work at all (most rows, most ticks)
            cells = self._cells_for(m, pal)
            if old_line is None:
                self.add_row(*cells, key=t)
                resort = True
            else:
                for k, a, b in zip(keys, self._cells[t], cells):
                    if a != b:
                        self.update_cell(t, k, b)
                resort = resort or (self.sort_mode == "edge" and (old_line.ev_yes, old_line.ev_no) != (m.ev_yes, m.ev_no)) \
                    or (self.sort_mode == "age" and old_line.age_ms != m.age_ms)
            self._lines[t] = m
            self._cells[t] = cells
        if resort:
            self._sort(live)

    def _sort(self, live) -> None:
        if not live:
            return
        if self.sort_mode == "edge":
            best = {t: max((e for e in (m.ev_yes, m.ev_no) if e is not None), default=-9) for t, m in live.items()}
            self.sort("ticker", key=lambda t: (-best.get(str(t), -9), str(t)))
        elif self.sort_mode == "age":
            self.sort("ticker", key=lambda t: (live[str(t)].age_ms if str(t) in live else 0, str(t)))
        else:
            self.sort("ticker")

    def cycle_sort(self, live) -> str:
        self.sort_mode = SORTS[(SORTS.index(self.sort_mode) + 1) % len(SORTS)]
        self._sort(live)
        return self.sort_mode


class MarketDetail(Static):
    view: reactive[DeskView | None] = reactive(None)
    ticker: reactive[str | None] = reactive(None)

    def render(self):
        pal = Palette(self)
        v, t = self.view, self.ticker
        if v is None or t is None or t not in v.books:
            return Text("Select a market to see its book.", style=pal.dim)
        hist = v.books[t]
        s = hist[-1]
        title = next((m.title for m in v.markets if m.ticker == t), "")
        ladder = Table(box=None, padding=(0, 1), expand=True, title=f"{t}\n{title}", title_style="bold")
        ladder.add_column("YES bid", justify="right", style=pal.up)
        ladder.add_column("qty", justify="right")
        ladder.add_column("YES ask", justify="right", style=pal.down)
        ladder.add_column("qty", justify="right")
        bids = [(lv.price, lv.qty) for lv in s.yes_bids] or ([(s.yes_bid, 0)] if s.yes_bid else [])
        asks = [(1 - lv.price, lv.qty) for lv in s.no_bids] or ([(s.yes_ask, 0)] if s.yes_ask else [])
        for i in range(max(len(bids), len(asks))):
            b = bids[i] if i < len(bids) else None
            a = asks[i] if i < len(asks) else None
            ladder.add_row(fmt_price(b[0]) if b else "", str(b[1] or "") if b else "",
                           fmt_price(a[0]) if a else "", str(a[1] or "") if a else "")
        recent = Table(box=None, padding=(0, 1), expand=True, title="recent quotes", title_style=pal.dim)
        recent.add_column("time")
        recent.add_column("bid", justify="right")
        recent.add_column("ask", justify="right")
        for q in list(hist)[-4:][::-1]:
            recent.add_row(_utc(q.ts, "%H:%M:%S"), fmt_price(q.yes_bid), fmt_price(q.yes_ask))
        decs = [d for d in v.decisions if d.ticker == t][-3:][::-1]
        lines = Text()
        for d in decs:
            lines.append(f"{_utc(d.ts, '%H:%M')} {d.side.value.upper()} x{d.contracts} ", style="bold")
            lines.append(("✓ " if d.accepted else "✗ ") + d.reason[:28] + "\n", style=pal.up if d.accepted else pal.down)
        from rich.console import Group

        return Group(ladder, recent, Text("decisions", style=pal.dim), lines or Text("none yet", style=pal.dim))


class PositionsPanel(Static):
    view: reactive[DeskView | None] = reactive(None)

    def render(self):
        pal = Palette(self)
        v = self.view
        t = Table(box=None, padding=(0, 1), expand=True)
        for name, j in [("Ticker", "left"), ("Side", "left"), ("Qty", "right"), ("Avg", "right"), ("Mark", "right"),
                        ("uPnL", "right"), ("Closes", "right")]:
            t.add_column(name, justify=j, no_wrap=True, overflow="ellipsis", min_width=10 if name == "Ticker" else None)
        if v is None:
            return t
        for p in v.positions:
            t.add_row(p.ticker, p.side.value.upper(), str(p.contracts), f"{p.avg_price:.2f}",
                      fmt_cents(p.mark_cents), Text(fmt_signed(p.upnl_cents), style=pal.money(p.upnl_cents)),
                      fmt_duration(p.close_in_ms))
        if not v.positions:
            t.caption, t.caption_justify, t.caption_style = "no open positions", "left", "dim"
        for c in list(v.history)[-4:][::-1]:
            outcome = ("WON" if c.proceeds_cents > 0 else "LOST") if c.kind.value == "settle" else "SOLD"
            t.add_row(Text(c.ticker, style=pal.dim), Text(c.side.value.upper(), style=pal.dim), Text(str(c.contracts), style=pal.dim),
                      Text(outcome, style=pal.dim), "", Text(fmt_signed(c.pnl_cents), style=pal.money(c.pnl_cents)),
                      Text("settled" if outcome != "SOLD" else "sold", style=pal.dim))
        return t


class BankrollPanel(Static):
    view: reactive[DeskView | None] = reactive(None)

    def render(self):
        pal = Palette(self)
        v = self.view
        if v is None:
            return Text("")
        t = Table(box=None, padding=(0, 1), expand=True, show_header=False)
        t.add_column(style=pal.dim)
        t.add_column(justify="right")
        t.add_row("Cash", fmt_cents(v.cash_cents))
        t.add_row("Equity", Text(fmt_cents(v.equity_cents), style="bold"))
        t.add_row("Realised", Text(fmt_signed(v.realized_cents), style=pal.money(v.realized_cents)))
        t.add_row("Unrealised", Text(fmt_signed(v.unrealized_cents), style=pal.money(v.unrealized_cents)))
        t.add_row("Today", Text(fmt_signed(v.today_pnl_cents), style=pal.money(v.today_pnl_cents)))
        t.add_row("Fees", fmt_cents(v.fees_cents))
        return t


class EquityChart(Sparkline):
    view: reactive[DeskView | None] = reactive(None)

    def watch_view(self, v: DeskView | None) -> None:
        self.data = [float(x) for x in v.equity_series] if v and v.equity_series else [0.0]


class RiskPanel(Static):
    view: reactive[DeskView | None] = reactive(None)

    def render(self):
        pal = Palette(self)
        v = self.view
        t = Table(box=None, padding=(0, 1), expand=True, show_header=False)
        t.add_column(style=pal.dim, no_wrap=True)
        t.add_column(justify="right", no_wrap=True)
        if v is None:
            return t
        for r in v.risk:
            if r.name == "Per-trade cap":
                value = f"{r.used} ({r.limit})"
            elif r.name == "Kill switch":
                value = r.used
            else:
                value = f"{r.used} / {r.limit}"
            t.add_row(r.name, Text(value, style=pal.level(r.level)))
            if r.name == "Kill switch" and r.limit:
                t.add_row("", Text(r.limit[:30], style=pal.down))
        t.add_row("Daily stop", Text("HIT until 00:00 UTC", style=f"bold {pal.down}") if v.daily_stopped
                  else Text("not hit", style=pal.up))
        return t

    def watch_view(self, v: DeskView | None) -> None:
        worst = max((["ok", "warn", "error"].index(r.level) for r in (v.risk if v else ())), default=0)
        if v is not None and v.daily_stopped:
            worst = 2
        self.set_class(worst == 1, "-warn")
        self.set_class(worst == 2, "-error")


class DecisionLog(Static):
    view: reactive[DeskView | None] = reactive(None)
    notes: reactive[tuple[str, ...]] = reactive(())

    def render(self):
        pal = Palette(self)
        v = self.view
        t = Table(box=None, padding=(0, 1), expand=True, show_header=False)
        t.add_column(width=8, style=pal.dim)
        t.add_column(width=16)
        t.add_column(width=9)
        t.add_column(ratio=1, no_wrap=True, overflow="ellipsis")
        for n in self.notes[-3:][::-1]:
            t.add_row("", Text("desk", style=pal.warn), "", Text(n, style=pal.warn))
        if v is None:
            return t
        for e in v.feed_errors[:2]:
            t.add_row(_utc(v.clock_ms, "%H:%M:%S"), Text("feed error", style=f"bold {pal.down}"), "", Text(e, style=pal.down))
        for d in list(v.decisions)[::-1][:12]:
            verdict = Text("✓ " + d.reason, style=pal.up) if d.accepted else Text("✗ " + d.reason, style=pal.down)
            t.add_row(_utc(d.ts, "%H:%M:%S"), d.ticker, f"{d.side.value.upper()} x{d.contracts}",
                      Text.assemble(f"@≤{d.limit_price:.2f} EV {d.ev_per_contract:+.2f} ", verdict))
        return t
