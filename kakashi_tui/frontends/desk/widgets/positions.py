"""Open positions with their marks, and recently settled ones."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text

from kakashi_tui.core.money import fmt_cc, fmt_count
from kakashi_tui.frontends.desk.widgets.base import ContentPanel, Palette
from kakashi_tui.frontends.fmt import fmt_duration, fmt_price, fmt_signed
from kakashi_tui.trading.view import DeskView


class PositionsPanel(ContentPanel):
    """Open positions with whole tickers; at narrow widths the least useful columns go first."""

    def content_key(self, v: DeskView | None) -> object:
        if v is None:
            return None
        return (v.positions, tuple(v.history)[-4:], v.equity_cc, v.today_pnl_cc, v.cash_cc)

    def watch_view(self, v: DeskView | None) -> None:
        super().watch_view(v)
        if v is not None:  # on the border, drawn before the panel renders: set here, not in render
            self.border_subtitle = (
                f"equity {fmt_cc(v.equity_cc)} · today {fmt_signed(v.today_pnl_cc)} · cash {fmt_cc(v.cash_cc)}"
            )

    def render(self):
        pal = Palette(self)
        v = self.view
        t = Table(box=None, padding=(0, 1), expand=True)
        tickers = [p.ticker for p in v.positions] + [c.ticker for c in list(v.history)[-4:]] if v else []
        tw = max([6] + [len(x) for x in tickers])
        cols = [
            ("Ticker", "left"),
            ("Side", "left"),
            ("Qty", "right"),
            ("Avg", "right"),
            ("Mark", "right"),
            ("uPnL", "right"),
            ("Closes", "right"),
        ]
        widths = {"Ticker": tw, "Side": 4, "Qty": 6, "Avg": 6, "Mark": 11, "uPnL": 10, "Closes": 7}  # $1,000.0000
        room = self.size.width or 200
        drop: list[str] = []
        for name in ("Closes", "Avg", "Side", "Mark"):  # least needed first; numbers are never cut
            if sum(w + 2 for k, w in widths.items() if k not in drop) <= room:
                break
            drop.append(name)
        shown = [c for c in cols if c[0] not in drop]
        for name, j in shown:
            t.add_column(name, justify=j, no_wrap=True, min_width=widths[name])
        if v is None:
            return t

        def row(*cells):
            t.add_row(*[c for (name, _j), c in zip(cols, cells) if name not in drop])

        for p in v.positions:
            row(
                p.ticker,
                p.side.value.upper(),
                fmt_count(p.contracts),
                fmt_price(p.avg_price),
                fmt_cc(p.mark_cc),
                Text(fmt_signed(p.upnl_cc), style=pal.money(p.upnl_cc)),
                fmt_duration(p.close_in_ms),
            )
        if not v.positions:
            t.caption, t.caption_justify, t.caption_style = "no open positions", "left", "dim"
        for c in list(v.history)[-4:][::-1]:
            outcome = (
                ("WON" if c.proceeds_cc > 0 else "LOST")
                if c.kind.value == "settle"
                else "CORRECTED"
                if c.kind.value == "settle_fix"
                else "SOLD"
            )
            row(
                Text(c.ticker, style=pal.dim),
                Text(c.side.value.upper(), style=pal.dim),
                Text(fmt_count(c.contracts), style=pal.dim),
                Text(outcome, style=pal.dim),
                "",
                Text(fmt_signed(c.pnl_cc), style=pal.money(c.pnl_cc)),
                Text("settled" if outcome != "SOLD" else "sold", style=pal.dim),
            )
        return t
