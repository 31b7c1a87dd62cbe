"""The selected market: its book and recent quotes."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.reactive import reactive

from kakashi_tui.core.money import fmt_count
from kakashi_tui.frontends.desk.widgets.base import ContentPanel, Palette
from kakashi_tui.frontends.fmt import fmt_price
from kakashi_tui.frontends.fmt import fmt_utc as _utc
from kakashi_tui.trading.view import DeskView

LADDER_HEADS = (("YES bid", "qty", "YES ask", "qty"), ("bid", "qty", "ask", "qty"))


def book_ladder(bids, asks, width: int, up: str = "", down: str = "") -> Group:
    """The book as a ladder of ``width`` columns with every price and quantity whole (README:
    numbers are never cut): bids beside asks when the widest of each fits, with the short headers
    if need be; else the bids above the asks. ``bids``/``asks``: (price, qty) best first, qty 0
    when the feed gave the top of book only."""
    rows = []
    for i in range(max(len(bids), len(asks))):
        b = bids[i] if i < len(bids) else None
        a = asks[i] if i < len(asks) else None
        rows.append(
            (
                fmt_price(b[0]) if b else "",
                fmt_count(b[1]) if b and b[1] else "",
                fmt_price(a[0]) if a else "",
                fmt_count(a[1]) if a and a[1] else "",
            )
        )
    styles = (up, "", down, "")
    for heads in LADDER_HEADS:
        widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(heads)]
        spare = width - sum(widths) - len(widths)  # one space before each column
        if spare >= 0:
            spare = max(0, spare - 1)  # and one after the last, where there is room (as the table below)
            n = len(widths)
            widths = [w + spare // n + (1 if i >= n - spare % n else 0) for i, w in enumerate(widths)]
            return Group(*_ladder_lines(heads, rows, widths, styles))
    lines = []  # too narrow for both sides on a line: one side, then the other
    for first in (0, 2):
        side_heads = LADDER_HEADS[0][first : first + 2]
        side_rows = [r[first : first + 2] for r in rows if r[first]]
        widths = [max([len(h)] + [len(r[i]) for r in side_rows]) for i, h in enumerate(side_heads)]
        lines += _ladder_lines(side_heads, side_rows, widths, styles[first : first + 2])
    return Group(*lines)


def _ladder_lines(heads, rows, widths, styles) -> list[Text]:
    out = [Text(" " + " ".join(h.rjust(w) for h, w in zip(heads, widths)), style="bold")]
    for r in rows:
        line = Text()
        for cell, w, style in zip(r, widths, styles):
            line.append(" " + cell.rjust(w), style=style)
        out.append(line)
    return out


class MarketDetail(ContentPanel):
    ticker: reactive[str | None] = reactive(None)

    def content_key(self, v: DeskView | None) -> object:
        t = self.ticker
        if v is None or t is None or t not in v.books:
            return None
        hist = v.books[t]
        line = next((m for m in v.markets if m.ticker == t), None)
        return (
            t,
            tuple(hist[-4:]),
            (line.full_title or line.title) if line else None,
            line.close_ts if line else None,
            tuple(d for d in v.decisions if d.ticker == t)[-3:],
        )

    def watch_ticker(self) -> None:
        self._drawn = self.content_key(self.view)  # the ticker's own repaint draws it

    def render(self):
        pal = Palette(self)
        v, t = self.view, self.ticker
        if v is None or t is None or t not in v.books:
            return Text("Select a market to see its book.", style=pal.dim)
        hist = v.books[t]
        s = hist[-1]
        line = next((m for m in v.markets if m.ticker == t), None)
        head = Text(t, style="bold")
        if line is not None and (line.full_title or line.title):
            head.append("\n" + (line.full_title or line.title))
        if line is not None and line.close_ts:
            head.append(f"\ncloses {_utc(line.close_ts, '%Y-%m-%d %H:%M')} UTC", style=pal.dim)
        bids = [(lv.price, lv.qty) for lv in s.yes_bids] or ([(s.yes_bid, 0)] if s.yes_bid else [])
        asks = [(1 - lv.price, lv.qty) for lv in s.no_bids] or ([(s.yes_ask, 0)] if s.yes_ask else [])
        ladder = book_ladder(bids, asks, self.size.width or 36, pal.up, pal.down)
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
            lines.append(("✓ " if d.accepted else "✗ ") + d.reason + "\n", style=pal.up if d.accepted else pal.down)
        return Group(
            head,
            ladder,
            recent,
            Text("decisions", style=pal.dim),
            lines or Text("none yet", style=pal.dim),
            Text("enter: chart, volume, fee", style=pal.dim),
        )
