"""The desk's panels. Each is a small view over ``DeskView``: set ``panel.view`` and it renders."""

from __future__ import annotations


from decimal import Decimal

from rich.segment import Segment
from rich.style import Style
from rich.table import Table
from rich.text import Text
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Sparkline, Static

from kakashi_tui.core.money import fmt_cc, fmt_count
from kakashi_tui.view import fmt_utc as _utc
from kakashi_tui.view import (
    DeskView, fmt_age, fmt_duration, fmt_ev, fmt_price, fmt_signed,
)


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

    def _state_class(self) -> None:
        v = self.view
        kind = "halted" if self.halted_reason else (v.state_kind if v else "running")
        for k in ("running", "paused", "halted"):
            self.set_class(k == kind, f"-{k}")

    def watch_view(self) -> None:
        self._state_class()

    def watch_halted_reason(self) -> None:
        self._state_class()


# Widths include a one-space gutter on the right: 76 columns, the width of the markets
# panel at 80 columns and beside the detail panel at 120.
MARKET_COLUMNS = [
    ("ticker", "Ticker", 14), ("title", "Title", 10), ("bid", "Bid", 5), ("ask", "Ask", 5),
    ("last", "Last", 5), ("p_hat", "p̂", 5), ("src", "Src", 8), ("ev_yes", "EV Y", 6),
    ("ev_no", "EV N", 6), ("signal", "Signal", 8), ("age", "Age", 4),
]
SORTS = ["ticker", "edge", "age"]


class MarketsTable(ScrollView, can_focus=True):
    """The markets panel as a virtual table (Textual's Line API).

    It keeps one cached line per market and renders only the rows on screen, so a refresh
    costs the markets that changed plus one screenful, whatever the number of markets.
    """

    COMPONENT_CLASSES = {"markets--header", "markets--cursor"}
    DEFAULT_CSS = """
    MarketsTable > .markets--header { text-style: bold; background: $primary 30%; }
    MarketsTable > .markets--cursor { background: $block-cursor-background; color: $block-cursor-foreground; }
    MarketsTable:blur > .markets--cursor { background: $block-cursor-blurred-background; }
    """
    BINDINGS = [
        Binding("up", "cursor(-1)", show=False), Binding("down", "cursor(1)", show=False),
        Binding("pageup", "page(-1)", show=False), Binding("pagedown", "page(1)", show=False),
        Binding("home", "edge(0)", show=False), Binding("end", "edge(1)", show=False),
    ]

    class Highlighted(Message):
        def __init__(self, ticker: str | None) -> None:
            super().__init__()
            self.ticker = ticker

    sort_mode: reactive[str] = reactive("ticker")
    cursor_row: reactive[int] = reactive(0)

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self._lines: dict[str, object] = {}
        self._order: list[str] = []
        self._strips: dict[str, Strip] = {}
        self._header: Strip | None = None
        self._pal: Palette | None = None

    # -- data ------------------------------------------------------------------------------
    @property
    def row_count(self) -> int:
        return len(self._order)

    @property
    def ordered_keys(self) -> list[str]:
        return list(self._order)

    @property
    def selected(self) -> str | None:
        return self._order[self.cursor_row] if 0 <= self.cursor_row < len(self._order) else None

    def apply(self, v: DeskView) -> None:
        """Diff the new market lines against what is shown; re-render only the changed rows."""
        keep = self.selected
        live = {m.ticker: m for m in v.markets}
        resort = len(live) != len(self._lines) or any(t not in live for t in self._lines)
        for t in [t for t in self._lines if t not in live]:
            del self._lines[t]
            self._strips.pop(t, None)
        for t, m in live.items():
            old = self._lines.get(t)
            if old == m:
                continue
            self._strips.pop(t, None)
            self._lines[t] = m
            resort = resort or old is None or (
                self.sort_mode == "edge" and (old.ev_yes, old.ev_no) != (m.ev_yes, m.ev_no)) or (
                self.sort_mode == "age" and old.age_ms != m.age_ms)
        if resort:
            self._sort()
            self._restore(keep)
        self.virtual_size = Size(self._width(), len(self._order) + 1)
        self.refresh()

    def _sort(self) -> None:
        lines = self._lines
        if self.sort_mode == "edge":
            def best(t: str):
                m = lines[t]
                return max((e for e in (m.ev_yes, m.ev_no) if e is not None), default=Decimal(-9))
            self._order = sorted(lines, key=lambda t: (-best(t), t))
        elif self.sort_mode == "age":
            self._order = sorted(lines, key=lambda t: (lines[t].age_ms, t))
        else:
            self._order = sorted(lines)

    def _restore(self, ticker: str | None) -> None:
        """Keep the operator's selection on the same market across re-sorts."""
        if ticker is not None and ticker in self._lines:
            idx = self._order.index(ticker)
            if idx != self.cursor_row:
                self.cursor_row = idx
        elif self.cursor_row >= len(self._order):
            self.cursor_row = max(0, len(self._order) - 1)
        else:
            self.post_message(self.Highlighted(self.selected))

    def cycle_sort(self, live=None) -> str:
        keep = self.selected
        self.sort_mode = SORTS[(SORTS.index(self.sort_mode) + 1) % len(SORTS)]
        self._sort()
        self._restore(keep)
        self.refresh()
        return self.sort_mode

    def move_cursor(self, row: int) -> None:
        self.cursor_row = max(0, min(row, len(self._order) - 1))

    # -- cursor ----------------------------------------------------------------------------
    def watch_cursor_row(self, old: int, new: int) -> None:
        top = int(self.scroll_y)
        visible = max(1, self.size.height - 1)
        if new < top:
            self.scroll_to(y=new, animate=False)
        elif new >= top + visible:
            self.scroll_to(y=new - visible + 1, animate=False)
        self.refresh()
        self.post_message(self.Highlighted(self.selected))

    def action_cursor(self, delta: int) -> None:
        self.move_cursor(self.cursor_row + delta)

    def action_page(self, direction: int) -> None:
        self.move_cursor(self.cursor_row + direction * max(1, self.size.height - 1))

    def action_edge(self, end: int) -> None:
        self.move_cursor(len(self._order) - 1 if end else 0)

    def on_click(self, event) -> None:
        if event.y >= 1:
            self.move_cursor(int(self.scroll_y) + event.y - 1)

    # -- rendering -------------------------------------------------------------------------
    def _width(self) -> int:
        return sum(w for _k, _l, w in MARKET_COLUMNS)

    def on_resize(self) -> None:
        self._header = None

    def _cells(self, m, pal: Palette) -> list[tuple[str, str, str]]:
        """(text, style, justify) per column."""
        def ev(e):
            return (fmt_ev(e), pal.up if e is not None and e > 0 else (pal.down if e is not None and e < 0 else pal.dim),
                    "right")
        sig = f"bold {pal.up}" if m.signal.startswith("BUY") else (pal.held if m.signal == "HELD" else "")
        src = "oracle*" if m.p_source.startswith("sim-oracle") else (
            "manual" if m.p_source == "operator" else m.p_source)
        return [(m.ticker, "", "left"), (m.title, "", "left"), (fmt_price(m.bid), "", "right"),
                (fmt_price(m.ask), "", "right"), (fmt_price(m.last), "", "right"), (fmt_price(m.p_hat), "", "right"),
                (src, "", "left"), ev(m.ev_yes), ev(m.ev_no), (m.signal, sig, "left"),
                (fmt_age(m.age_ms), "", "right")]

    @staticmethod
    def _segments(cells, widths) -> list[Segment]:
        segs = []
        for (text, style, justify), w in zip(cells, widths):
            text = text[: w - 1] if len(text) >= w else text
            cell = text.rjust(w - 1) + " " if justify == "right" else text.ljust(w)
            segs.append(Segment(cell, Style.parse(style) if style else None))
        return segs

    def _row_strip(self, t: str) -> Strip:
        strip = self._strips.get(t)
        if strip is None:
            pal = self._pal or Palette(self)
            self._pal = pal
            widths = [w for _k, _l, w in MARKET_COLUMNS]
            strip = Strip(self._segments(self._cells(self._lines[t], pal), widths))
            self._strips[t] = strip
        return strip

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        base = self.rich_style
        if y == 0:
            if self._header is None:
                widths = [w for _k, _l, w in MARKET_COLUMNS]
                cells = [(label.strip(), "", "right" if k in ("bid", "ask", "last", "p_hat", "ev_yes", "ev_no", "age")
                          else "left") for k, label, _w in MARKET_COLUMNS]
                style = self.get_component_rich_style("markets--header")
                self._header = Strip(self._segments(cells, widths)).apply_style(style)
            return self._header.crop_extend(int(self.scroll_x), int(self.scroll_x) + width, base)
        idx = int(self.scroll_y) + y - 1
        if idx >= len(self._order):
            return Strip.blank(width, base)
        strip = self._row_strip(self._order[idx])
        if idx == self.cursor_row:
            strip = strip.apply_style(self.get_component_rich_style("markets--cursor"))
        return strip.crop_extend(int(self.scroll_x), int(self.scroll_x) + width, base)

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strips.clear()
        self._header = None
        self._pal = None


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
            ladder.add_row(fmt_price(b[0]) if b else "", fmt_count(b[1]) if b and b[1] else "",
                           fmt_price(a[0]) if a else "", fmt_count(a[1]) if a and a[1] else "")
        recent = Table(box=None, padding=(0, 1), expand=True, title="recent quotes", title_style=pal.dim)
        recent.add_column("time")
        recent.add_column("bid", justify="right")
        recent.add_column("ask", justify="right")
        for q in list(hist)[-4:][::-1]:
            recent.add_row(_utc(q.ts, "%H:%M:%S"), fmt_price(q.yes_bid), fmt_price(q.yes_ask))
        decs = [d for d in v.decisions if d.ticker == t][-3:][::-1]
        lines = Text()
        for d in decs:
            lines.append(f"{_utc(d.ts, '%H:%M')} {d.side.value.upper()} x{fmt_count(d.contracts)} ", style="bold")
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
            t.add_row(p.ticker, p.side.value.upper(), fmt_count(p.contracts), fmt_price(p.avg_price),
                      fmt_cc(p.mark_cc), Text(fmt_signed(p.upnl_cc), style=pal.money(p.upnl_cc)),
                      fmt_duration(p.close_in_ms))
        if not v.positions:
            t.caption, t.caption_justify, t.caption_style = "no open positions", "left", "dim"
        for c in list(v.history)[-4:][::-1]:
            outcome = (("WON" if c.proceeds_cc > 0 else "LOST") if c.kind.value == "settle"
                       else "CORRECTED" if c.kind.value == "settle_fix" else "SOLD")
            t.add_row(Text(c.ticker, style=pal.dim), Text(c.side.value.upper(), style=pal.dim), Text(fmt_count(c.contracts), style=pal.dim),
                      Text(outcome, style=pal.dim), "", Text(fmt_signed(c.pnl_cc), style=pal.money(c.pnl_cc)),
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
        t.add_row("Cash", fmt_cc(v.cash_cc))
        t.add_row("Equity", Text(fmt_cc(v.equity_cc), style="bold"))
        t.add_row("Realised", Text(fmt_signed(v.realized_cc), style=pal.money(v.realized_cc)))
        t.add_row("Unrealised", Text(fmt_signed(v.unrealized_cc), style=pal.money(v.unrealized_cc)))
        t.add_row("Today", Text(fmt_signed(v.today_pnl_cc), style=pal.money(v.today_pnl_cc)))
        t.add_row("Fees", fmt_cc(v.fees_cc))
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
            t.add_row(_utc(d.ts, "%H:%M:%S"), d.ticker, f"{d.side.value.upper()} x{fmt_count(d.contracts)}",
                      Text.assemble(f"@≤{d.limit_price:.2f} EV {d.ev_per_contract:+.2f} ", verdict))
        return t
