"""The risk caps with their current use, and the limits beside the numbers."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.reactive import reactive

from kakashi_tui.frontends.desk.widgets.base import ContentPanel, Palette
from kakashi_tui.frontends.fmt import fmt_threshold
from kakashi_tui.trading.view import DeskView


@dataclass(frozen=True)
class DeskLimits:
    """The limits the operator should see beside the numbers they bound."""

    edge_threshold: Decimal
    max_quote_age_ms: int
    max_spread: Decimal
    on_daily_stop: str = "hold"


#: What goes, in turn, where the panel is too short for every row (RiskPanel.render).
SHRINK = ("quote", "event", "edge", "per_trade", "reason_line", "plan", "positions", "past_cap", "reason")
# ("event": the worst event's row, shown only while an event holds two markets or more)


class RiskPanel(ContentPanel):
    limits: reactive[DeskLimits | None] = reactive(None)

    def content_key(self, v: DeskView | None) -> object:
        if v is None:
            return None
        return (v.risk, v.daily_stopped, v.daily_cap_cc, v.today_pnl_cc if v.daily_stopped else None)

    def render(self):
        """The rows that fit the panel, the daily stop's sentence always whole: where the panel is
        short, the limits that never change go first (quote age/spread, then the worst event's
        exposure, the edge threshold, the per-trade cap), then a long kill reason is shortened to
        a line (the status line and the log keep it whole), then the open-position count; the
        loss, the kill switch and the daily cap never go."""
        v = self.view
        if v is None:
            return Table(box=None, show_header=False)
        width, height = self.size.width, self.size.height
        if not width or not height:
            return self._rows(v, set(), width)

        def fits(drop: set[str]) -> bool:
            return self._lines(self._rows(v, drop, width), width) <= height

        drop: set[str] = set()
        for step in SHRINK:
            if fits(drop):
                break
            drop.add(step)
        for step in reversed(SHRINK):  # what went before the last step may fit again beside it
            if step in drop and fits(drop - {step}):
                drop.discard(step)
        return self._rows(v, drop, width)

    def _lines(self, renderable, width: int) -> int:
        console = self.app.console
        return len(console.render_lines(renderable, console.options.update(width=width, height=None), pad=False))

    def _rows(self, v: DeskView, drop: set[str], width: int):
        pal = Palette(self)
        t = Table(box=None, padding=(0, 1), expand=True, show_header=False)
        t.add_column(style=pal.dim, no_wrap=True)
        t.add_column(justify="right", overflow="fold")
        lim = self.limits
        labels = ["Loss today", "Kill switch", "Daily cap"]  # the label column's width, for the daily stop
        if lim is not None and "edge" not in drop:
            t.add_row("Buys when EV", f"≥ {fmt_threshold(lim.edge_threshold)} /contract")
            labels.append("Buys when EV")
        for r in v.risk:
            if r.name == "Per-trade cap":
                if "per_trade" not in drop:
                    t.add_row("Max loss/trade", Text(f"{r.used} ({r.limit})", style=pal.level(r.level)))
                    labels.append("Max loss/trade")
            elif r.name == "Kill switch":
                t.add_row("Kill switch", Text(r.used, style=pal.level(r.level)))
                if r.limit and "reason" not in drop:
                    short = "reason_line" in drop
                    t.add_row(
                        "", Text(r.limit, style=pal.down, overflow="ellipsis" if short else "fold", no_wrap=short)
                    )
            elif r.name.startswith("Plan "):  # the plan in force: its progress and state, one row
                if "plan" not in drop:  # one line: a long condition is cut (the status line has it whole)
                    # on track: its progress alone (``12/200 trades``); else its state and why
                    words = (
                        r.used if r.limit == "on track" else f"{r.used}{':' if r.level == 'error' else ''} {r.limit}"
                    )
                    t.add_row(r.name, Text(words, style=pal.level(r.level), overflow="ellipsis", no_wrap=True))
            elif r.name == "Worst event":  # the largest event's worst case against the event cap
                if "event" not in drop:
                    t.add_row(r.name, Text(f"{r.used} / {r.limit}", style=pal.level(r.level)))
                    labels.append(r.name)
            elif r.name == "Today's loss":
                t.add_row("Loss today", Text(f"{r.used} / {r.limit}", style=pal.level(r.level)))
            elif r.name != "Open positions" or "positions" not in drop:
                t.add_row(r.name, Text(f"{r.used} / {r.limit}", style=pal.level(r.level)))
                labels.append(r.name)
        if lim is not None and "quote" not in drop:
            t.add_row("Quote age/spread", f"≤ {lim.max_quote_age_ms // 1000}s, ≤ {lim.max_spread:.2f}")
            labels.append("Quote age/spread")
        # the labels whole, the values beside them (a long one wraps, never cut)
        t.columns[0].min_width = max(len(x) for x in labels)
        hold = "flattened" if (lim and lim.on_daily_stop == "flatten") else "held"
        notes = Text()
        if v.daily_stopped:
            hit, until = "HIT: no new trades", f"until 00:00 UTC; positions {hold}"
            room = width - max(len(x) for x in labels) - 4  # the value column: both cells padded by one
            if room >= len(hit) + 1 + len(until):  # the sentence on its row
                t.add_row("Daily cap", Text(f"{hit} {until}", style=f"bold {pal.down}"))
            else:  # else whole on the next line (wrapped at a space, never cut)
                t.add_row("Daily cap", Text(hit, style=f"bold {pal.down}"))
                notes.append(f" {until}", style=pal.dim)
            if v.daily_cap_cc and -v.today_pnl_cc > v.daily_cap_cc and "past_cap" not in drop:
                notes.append(("\n" if notes else "") + " loss past the cap: marks moved after", style=pal.warn)
        else:
            t.add_row("Daily cap", Text("stops new trades", style=pal.up))
        return Group(t, notes) if notes else t

    def watch_view(self, v: DeskView | None) -> None:
        super().watch_view(v)
        worst = max((["ok", "warn", "error"].index(r.level) for r in (v.risk if v else ())), default=0)
        if v is not None and v.daily_stopped:
            worst = 2
        self.set_class(worst == 1, "-warn")
        self.set_class(worst == 2, "-error")
