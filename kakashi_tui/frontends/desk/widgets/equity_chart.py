"""The equity sparkline."""

from __future__ import annotations

from textual.reactive import reactive
from textual.widgets import Sparkline

from kakashi_tui.trading.view import DeskView


class EquityChart(Sparkline):
    view: reactive[DeskView | None] = reactive(None)

    def watch_view(self, v: DeskView | None) -> None:
        series = v.equity_series if v and v.equity_series else None
        if series != self._series:  # the sparkline redraws on a new list, even an equal one
            self._series = series
            self.data = [float(x) for x in series] if series else [0.0]

    _series: tuple[int, ...] | None = None
