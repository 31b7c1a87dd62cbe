"""The live paper orders (issue #23 item 9): one row an order, the selected one cancelled by `c`."""

from __future__ import annotations

from textual.reactive import reactive
from textual.widgets import DataTable

from kakashi_tui.core.models import GRID
from kakashi_tui.core.money import fmt_count, hundredths_to_count
from kakashi_tui.core.text import safe_text
from kakashi_tui.frontends.fmt import fmt_price
from kakashi_tui.trading.view import DeskView, OrderLine

#: (label, width): fixed widths (a live table is never re-measured); the ticker takes what is needed.
COLUMNS = (("Side", 4), ("Price", 6), ("Left/Qty", 11), ("Ahead", 6), ("Age", 5), ("State", 10))


def order_cells(o: OrderLine) -> tuple[str, ...]:
    """An order as its row reads: ticker, side, limit price, remaining/total, queue ahead ("-":
    a taker's order, or one not active yet), age since its decision, state."""
    left, total = (fmt_count(hundredths_to_count(h)) for h in (o.remaining_hundredths, o.quantity_hundredths))
    qty = f"{left}/{total}"
    q = o.queue_ahead_hundredths
    ahead = "-" if q is None else fmt_count(hundredths_to_count(q))
    s = o.age_ms // 1000
    age = f"{s}s" if s < 60 else (f"{s // 60}m" if s < 3600 else f"{s // 3600}h{s % 3600 // 60:02d}")
    state = {"partially_filled": "partial"}.get(o.state, o.state)
    return (safe_text(o.ticker), o.side.value.upper(), fmt_price(GRID[o.limit_cc]), qty, ahead, age, state)


class OrdersPanel(DataTable):
    """The view's live orders, oldest first; the selection follows its order across views."""

    view: reactive[DeskView | None] = reactive(None, repaint=False, always_update=True)

    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, cursor_type="row", zebra_stripes=False, show_cursor=True, **kw)
        self._shown: tuple[tuple[str, tuple[str, ...]], ...] | None = None
        self._ticker_w = 0

    @property
    def selected(self) -> str | None:
        """The selected order's id (None: no order)."""
        if self.row_count == 0:
            return None
        return str(self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value)

    def watch_view(self, v: DeskView | None) -> None:
        orders = v.orders if v is not None else ()
        rows = tuple((o.order_id, order_cells(o)) for o in orders)
        if rows == self._shown:
            return
        self._shown = rows
        tw = max([10, *(len(c[0]) for _k, c in rows)])
        keep = self.selected
        if tw != self._ticker_w or not self.columns:
            self._ticker_w = tw
            self.clear(columns=True)
            self.add_column("Ticker", width=tw, key="ticker")
            for label, w in COLUMNS:
                self.add_column(label, width=w, key=label)
        else:
            self.clear()
        for key, cells in rows:
            self.add_row(*cells, key=key)
        keys = [k for k, _c in rows]
        if keep in keys:
            self.move_cursor(row=keys.index(keep), animate=False)
        self.border_subtitle = f"{len(rows)} live" if rows else "no live orders"
