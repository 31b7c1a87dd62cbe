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


class RiskPanel(ContentPanel):
    limits: reactive[DeskLimits | None] = reactive(None)

    def content_key(self, v: DeskView | None) -> object:
        if v is None:
            return None
        return (v.risk, v.daily_stopped, v.daily_cap_cc, v.today_pnl_cc if v.daily_stopped else None)

    def render(self):
        pal = Palette(self)
        v = self.view
        t = Table(box=None, padding=(0, 1), expand=True, show_header=False)
        t.add_column(style=pal.dim, no_wrap=True)
        t.add_column(justify="right", no_wrap=True)
        if v is None:
            return t
        lim = self.limits
        if lim is not None:
            t.add_row("Buys when EV", f"≥ {fmt_threshold(lim.edge_threshold)} /contract")
        for r in v.risk:
            if r.name == "Per-trade cap":
                t.add_row("Max loss/trade", Text(f"{r.used} ({r.limit})", style=pal.level(r.level)))
            elif r.name == "Kill switch":
                t.add_row("Kill switch", Text(r.used, style=pal.level(r.level)))
                if r.limit:
                    t.add_row("", Text(r.limit, style=pal.down, overflow="fold"))
            elif r.name == "Today's loss":
                t.add_row("Loss today", Text(f"{r.used} / {r.limit}", style=pal.level(r.level)))
            else:
                t.add_row(r.name, Text(f"{r.used} / {r.limit}", style=pal.level(r.level)))
        if lim is not None:
            t.add_row("Quote age/spread", f"≤ {lim.max_quote_age_ms // 1000}s, ≤ {lim.max_spread:.2f}")
        hold = "flattened" if (lim and lim.on_daily_stop == "flatten") else "held"
        notes = Text()
        if v.daily_stopped:
            t.add_row("Daily cap", Text("HIT: no new trades", style=f"bold {pal.down}"))
            notes.append(f" until 00:00 UTC; positions {hold}", style=pal.dim)
            if v.daily_cap_cc and -v.today_pnl_cc > v.daily_cap_cc:
                notes.append("\n loss past the cap: marks moved after", style=pal.warn)
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
