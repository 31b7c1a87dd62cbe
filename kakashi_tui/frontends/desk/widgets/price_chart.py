"""A market's quotes and p̂ over time, drawn in the terminal."""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

from kakashi_tui.frontends.desk.widgets.base import Palette
from kakashi_tui.frontends.fmt import fmt_utc as _utc


class PriceChart(Widget):
    """A market's quote history as a small terminal chart: the bid–ask range per time step (┃),
    its mid (•) and p̂ (─), on a price axis scaled to the data. Drawn with plain characters,
    so it needs no dependency and reads in any terminal."""

    DEFAULT_CSS = "PriceChart { height: 12; }"

    def __init__(self, quotes=(), p_hats=(), fmt_time=None, **kw) -> None:
        super().__init__(**kw)
        self.quotes = list(quotes)
        self.p_hats = list(p_hats)
        self.fmt_time = fmt_time or (lambda ms: _utc(ms, "%H:%M"))

    def render(self) -> Text:
        pal = Palette(self)
        w, h = self.size.width - 7, self.size.height - 1
        qs = [(ts, b, a) for ts, b, a in self.quotes if b is not None or a is not None]
        if w < 8 or h < 3 or not qs:
            return Text("no quote history yet", style=pal.dim)
        values = [float(x) for _t, b, a in qs for x in (b, a) if x is not None] + [float(p) for _t, p in self.p_hats]
        lo, hi = max(0.0, min(values) - 0.02), min(1.0, max(values) + 0.02)
        if hi - lo < 0.06:
            mid = (hi + lo) / 2
            lo, hi = max(0.0, mid - 0.03), min(1.0, mid + 0.03)
        t0, t1 = qs[0][0], qs[-1][0]
        span = max(1, t1 - t0)

        def row(y: float) -> int:
            return max(0, min(h - 1, round((hi - y) / (hi - lo) * (h - 1))))

        grid = [[(" ", "")] * w for _ in range(h)]
        qi = pi = 0
        cur_q, cur_p = None, None
        for col in range(w):
            t_col = t0 + span * col / max(1, w - 1)
            while qi < len(qs) and qs[qi][0] <= t_col:
                cur_q = qs[qi]
                qi += 1
            while pi < len(self.p_hats) and self.p_hats[pi][0] <= t_col:
                cur_p = self.p_hats[pi][1]
                pi += 1
            if cur_p is None and self.p_hats and len(self.p_hats) == 1:
                cur_p = self.p_hats[0][1]
            if cur_q is not None:
                _t, b, a = cur_q
                rb = row(float(b)) if b is not None else None
                ra = row(float(a)) if a is not None else None
                if rb is not None and ra is not None:
                    for r in range(ra, rb + 1):
                        grid[r][col] = ("┃", pal.dim)
                    grid[row((float(b) + float(a)) / 2)][col] = ("•", "bold")
                else:
                    one = rb if rb is not None else ra
                    if one is not None:
                        grid[one][col] = ("•", "bold")
            if cur_p is not None:
                r = row(float(cur_p))
                grid[r][col] = ("─" if grid[r][col][0] == " " else "┼", f"bold {pal.held}")
        out = Text()
        for r in range(h):
            y = hi - (hi - lo) * r / (h - 1)
            label = f"{y:5.2f} ┤" if r in (0, h // 2, h - 1) else "      │"
            out.append(label, style=pal.dim)
            for ch, style in grid[r]:
                out.append(ch, style=style)
            out.append("\n")
        left, right = self.fmt_time(t0), self.fmt_time(t1)
        out.append(" " * 7 + left + " " * max(1, w - len(left) - len(right)) + right, style=pal.dim)
        return out
