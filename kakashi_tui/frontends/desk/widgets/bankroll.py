"""Bankroll: cash, equity, realised and unrealised PnL, fees."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text

from kakashi_tui.core.money import fmt_cc
from kakashi_tui.frontends.desk.widgets.base import ContentPanel, Palette
from kakashi_tui.frontends.fmt import fmt_signed
from kakashi_tui.trading.view import DeskView


class BankrollPanel(ContentPanel):
    def content_key(self, v: DeskView | None) -> object:
        if v is None:
            return None
        return (v.cash_cc, v.equity_cc, v.realized_cc, v.unrealized_cc, v.today_pnl_cc, v.fees_cc)

    def render(self):
        pal = Palette(self)
        v = self.view
        if v is None:
            return Text("")
        t = Table(box=None, padding=(0, 1), expand=True, show_header=False)
        t.add_column(style=pal.dim, no_wrap=True)
        t.add_column(justify="right", no_wrap=True)
        t.add_row("Cash", fmt_cc(v.cash_cc))
        t.add_row("Equity", Text(fmt_cc(v.equity_cc), style="bold"))
        t.add_row("Realised", Text(fmt_signed(v.realized_cc), style=pal.money(v.realized_cc)))
        t.add_row("Unrealised", Text(fmt_signed(v.unrealized_cc), style=pal.money(v.unrealized_cc)))
        t.add_row("Today", Text(fmt_signed(v.today_pnl_cc), style=pal.money(v.today_pnl_cc)))
        t.add_row("Fees", fmt_cc(v.fees_cc))
        return t
