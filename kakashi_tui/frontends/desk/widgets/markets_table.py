"""The markets table: one line a market, drawn by line, columns dropped by width."""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from decimal import Decimal

from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from kakashi_tui.frontends.desk.widgets.base import Palette
from kakashi_tui.frontends.fmt import EV_PLACES, ev_places, fmt_age, fmt_ev, fmt_price
from kakashi_tui.trading.view import DeskView, MarketLine


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    width: int  # including a one-space gutter; numbers always fit in it
    justify: str = "right"
    drop: int = 0  # 0: never dropped; higher drops first when the panel is narrow


# Numbers never truncate: each numeric width fits its widest possible value ("+0.05", "99h") and
# its header with the sort arrow ("Age▲"). Where the ticker and the numbers cannot all fit (Kalshi's
# long tickers, four-decimal prices and EVs at 80 columns), p̂ goes (its EVs stay), then the age.
# The ticker column is as wide as the longest ticker shown; the title takes what is left.
TICKER_MIN, TICKER_MAX = 10, 40
MARKET_COLUMNS = [
    Column("ticker", "Ticker", 0, "left"),
    Column("title", "Title", 0, "left", drop=3),
    Column("bid", "Bid", 5),
    Column("ask", "Ask", 5),
    Column("last", "Last", 5, drop=5),
    Column("p_hat", "p̂", 5, drop=2),
    Column("src", "Src", 8, "left", drop=4),
    Column("ev_yes", "EV Y", 6),
    Column("ev_no", "EV N", 6),
    Column("signal", "Signal", 9, "left"),
    Column("age", "Age", 5, drop=1),
]


_CENT = Decimal("0.01")
TITLE_MIN = 8
SORTS = ["ticker", "edge", "age"]
SORT_ARROWS = {"ticker": "▲", "edge": "▼", "age": "▲"}  # the direction each mode sorts in
SORT_COLUMNS = {"ticker": ("ticker",), "edge": ("ev_yes", "ev_no"), "age": ("age",)}  # edge: the better side
PRICE_KEYS = ("bid", "ask", "last", "p_hat")
SUB_CENT_PRICE_WIDTH = 7  # "0.4230 ": Kalshi's $0.0001 grid, never rounded away
EV_KEYS = ("ev_yes", "ev_no")
FINE_EV_WIDTH = 8  # "+0.0298 ": an EV whose cent would put it on the wrong side of the threshold


def layout_columns(
    width: int, ticker_width: int, sub_cent: bool = False, fine_ev: bool = False
) -> list[tuple[Column, int]]:
    """The columns that fit ``width``, each with its width: drop by priority, never cut a number.
    ``sub_cent``: some price is off the cent grid, so price columns take four decimals;
    ``fine_ev``: some EV needs more than the cent to show which side of the threshold it is on."""
    cols = [c for c in MARKET_COLUMNS]
    tw = max(TICKER_MIN, min(TICKER_MAX, ticker_width + 1))

    def w_of(c: Column) -> int:
        if sub_cent and c.key in PRICE_KEYS:
            return SUB_CENT_PRICE_WIDTH
        return FINE_EV_WIDTH if (fine_ev and c.key in EV_KEYS) else c.width

    def fixed(cs):
        return sum(tw if c.key == "ticker" else w_of(c) for c in cs if c.key != "title")

    while True:
        room = width - fixed(cols)
        has_title = any(c.key == "title" for c in cols)
        if (not has_title or room >= TITLE_MIN) and room >= 0:
            break
        droppable = [c for c in cols if c.drop]
        if not droppable:
            break
        cols.remove(max(droppable, key=lambda c: c.drop))
    room = max(0, width - fixed(cols))
    return [(c, tw if c.key == "ticker" else (room if c.key == "title" else w_of(c))) for c in cols]


def ev_cell(e: Decimal | None, pal: Palette, threshold: Decimal | None = None) -> tuple[str, str]:
    """EV per contract with the digits that decide against the edge ``threshold`` (``fmt_ev``);
    a value that rounds to zero is a plain 0.00, never a red -0.00."""
    if e is None:
        return "—", pal.dim
    text = fmt_ev(e, threshold)
    q = Decimal(text)
    if q == 0:
        return "0.00", pal.dim
    return text, pal.up if q > 0 else pal.down


class SameLines:
    """Each view's market lines with those that did not change since the last view replaced by
    the objects already seen, so the table's diff is an identity test per market.

    The service builds every line anew for each view (thousands of them); comparing them on
    the desk's event loop cost ~30-100 ms a view at 5,000 markets (a key waited behind it).
    The desk calls this where a view is published, on the engine's thread, off its loop. Any
    thread may call it: a view whose markets were seen last (a command's re-flagged view) is
    handed the same lines at once; if another thread is comparing, the view passes as it is
    (the table then compares those lines itself: slower, never wrong)."""

    def __init__(self) -> None:
        self._seen: dict[str, MarketLine] = {}
        self._last: tuple[tuple[MarketLine, ...], tuple[MarketLine, ...]] | None = None
        self._lock = threading.Lock()

    def __call__(self, v: DeskView) -> DeskView:
        last = self._last  # (the markets as published, as handed on): read once, set whole
        if last is not None and v.markets is last[0]:
            return replace(v, markets=last[1])
        if not self._lock.acquire(blocking=False):
            return v
        try:
            seen = self._seen
            get = seen.get
            out = []
            for m in v.markets:
                old = get(m.ticker)
                if old is not None and old == m:
                    out.append(old)
                else:
                    out.append(m)
            markets = tuple(out)
            self._seen = {m.ticker: m for m in markets}
            self._last = (v.markets, markets)
        finally:
            self._lock.release()
        return replace(v, markets=markets)


class MarketsTable(ScrollView, can_focus=True):
    """The markets panel as a virtual table (Textual's Line API).

    It keeps one cached line per market and renders only the rows on screen, so a refresh
    costs the markets that changed plus one screenful, whatever the number of markets.
    Columns fit the panel's width (dropped by priority); ``filter_text`` keeps the markets whose
    ticker or title contains it.
    """

    COMPONENT_CLASSES = {"markets--header", "markets--cursor"}
    DEFAULT_CSS = """
    MarketsTable { scrollbar-gutter: stable; overflow-x: hidden; }
    MarketsTable > .markets--header { text-style: bold; background: $primary 30%; }
    MarketsTable > .markets--cursor { background: $block-cursor-background; color: $block-cursor-foreground; }
    MarketsTable:blur > .markets--cursor { background: $block-cursor-blurred-background; }
    """
    BINDINGS = [
        Binding("up", "cursor(-1)", show=False),
        Binding("down", "cursor(1)", show=False),
        Binding("pageup", "page(-1)", show=False),
        Binding("pagedown", "page(1)", show=False),
        Binding("home", "edge(0)", show=False),
        Binding("end", "edge(1)", show=False),
    ]

    class Highlighted(Message):
        def __init__(self, ticker: str | None) -> None:
            super().__init__()
            self.ticker = ticker

    sort_mode: reactive[str] = reactive("ticker")
    cursor_row: reactive[int] = reactive(0)
    filter_text: reactive[str] = reactive("")
    stale_ms: reactive[int] = reactive(30_000)

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self._lines: dict[str, MarketLine] = {}
        self._order: list[str] = []
        self._strips: dict[str, Strip] = {}
        self._header: Strip | None = None
        self._pal: Palette | None = None
        self._layout: list[tuple[Column, int]] | None = None
        self._ticker_width = TICKER_MIN
        self._sub_cent = False  # sticky: once a price needs four decimals, the columns keep them
        self._fine_ev = False  # sticky too: once an EV needs more than the cent (ev_places)
        self._threshold: Decimal | None = None  # the edge threshold the EVs are shown against

    # -- data ------------------------------------------------------------------------------
    @property
    def row_count(self) -> int:
        return len(self._order)

    @property
    def total(self) -> int:
        return len(self._lines)

    @property
    def ordered_keys(self) -> list[str]:
        return list(self._order)

    @property
    def selected(self) -> str | None:
        return self._order[self.cursor_row] if 0 <= self.cursor_row < len(self._order) else None

    @property
    def columns(self) -> list[str]:
        return [c.key for c, _w in self._columns()]

    def apply(self, v: DeskView) -> None:
        """Diff the new market lines against what is shown; re-render only the changed rows."""
        keep = self.selected
        if v.edge_threshold != self._threshold:
            self._threshold = v.edge_threshold
            self._strips.clear()
        live = {m.ticker: m for m in v.markets}
        lines, strips = self._lines, self._strips
        resort = len(live) != len(lines) or any(t not in live for t in lines)
        for t in [t for t in lines if t not in live]:
            del lines[t]
            strips.pop(t, None)
        # (the reactives read once: a read costs ~1 µs, and thousands of lines may change)
        by_edge, by_age, filtered = self.sort_mode == "edge", self.sort_mode == "age", bool(self.filter_text)
        get = lines.get
        for t, m in live.items():
            old = get(t)
            if old is m:  # the same object where the view's lines were kept (SameLines)
                continue
            if old == m:  # kept by value (a view that passed SameLines by): its object from now on
                lines[t] = m
                continue
            strips.pop(t, None)
            lines[t] = m
            if not self._sub_cent and any(
                x is not None and x != x.quantize(_CENT) for x in (m.bid, m.ask, m.last, m.p_hat)
            ):
                self._sub_cent = True
                self._relayout()
            if not self._fine_ev and any(
                x is not None and ev_places(x, self._threshold) > EV_PLACES for x in (m.ev_yes, m.ev_no)
            ):
                self._fine_ev = True
                self._relayout()
            resort = (
                resort
                or old is None
                or (by_edge and (old.ev_yes, old.ev_no) != (m.ev_yes, m.ev_no))
                or (by_age and old.age_ms != m.age_ms)
                or (filtered and (old.title, old.full_title) != (m.title, m.full_title))
            )
        if resort:
            widest = max((len(t) for t in self._lines), default=TICKER_MIN)
            if widest + 1 != self._ticker_width:
                self._ticker_width = widest + 1
                self._relayout()
            self._sort()
            self._restore(keep)
        self.virtual_size = Size(self._width(), len(self._order) + 1)
        self.refresh()
        self._say_count()

    def _say_count(self) -> None:
        """On the bottom border, how many markets there are, and which rows show when not all of
        them fit (``1–5 of 8``): at 100x30 three of eight were out of sight, and nothing said so."""
        n = len(self._order)
        first = min(n, int(self.scroll_y) + 1)
        last = min(n, int(self.scroll_y) + max(0, self.size.height - 1))
        if n and self.size.height and last - first + 1 < n:
            said = f"{first}–{last} of {n} ↕"
        else:
            said = f"{n} market{'' if n == 1 else 's'}" if n else ""
        if said != self.border_subtitle:
            self.border_subtitle = said

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        self._say_count()

    def _matches(self, t: str) -> bool:
        f = self.filter_text.casefold()
        m = self._lines[t]
        return not f or f in t.casefold() or f in m.title.casefold() or f in m.full_title.casefold()

    def _sort(self) -> None:
        lines = self._lines
        keys = [t for t in lines if self._matches(t)] if self.filter_text else list(lines)
        if self.sort_mode == "edge":

            def best(t: str):
                m = lines[t]
                return max((e for e in (m.ev_yes, m.ev_no) if e is not None), default=Decimal(-9))

            self._order = sorted(keys, key=lambda t: (-best(t), t))
        elif self.sort_mode == "age":
            self._order = sorted(keys, key=lambda t: (lines[t].age_ms, t))
        else:
            self._order = sorted(keys)

    def _restore(self, ticker: str | None) -> None:
        """Keep the operator's selection on the same market across re-sorts."""
        if ticker is not None and ticker in self._order:
            idx = self._order.index(ticker)
            if idx != self.cursor_row:
                self.cursor_row = idx
                return
        elif self.cursor_row >= len(self._order):
            self.cursor_row = max(0, len(self._order) - 1)
            return
        self.post_message(self.Highlighted(self.selected))

    def cycle_sort(self, live=None) -> str:
        keep = self.selected
        self.sort_mode = SORTS[(SORTS.index(self.sort_mode) + 1) % len(SORTS)]
        self._header = None
        self._sort()
        self._restore(keep)
        self.refresh()
        return self.sort_mode

    def watch_filter_text(self) -> None:
        keep = self.selected
        self._sort()
        self._restore(keep)
        self.virtual_size = Size(self._width(), len(self._order) + 1)
        self.scroll_to(y=0, animate=False)
        self.refresh()
        self._say_count()

    def watch_stale_ms(self) -> None:
        self._strips.clear()
        self.refresh()

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
    def _columns(self) -> list[tuple[Column, int]]:
        if self._layout is None:
            self._layout = layout_columns(
                max(1, self.scrollable_content_region.width), self._ticker_width, self._sub_cent, self._fine_ev
            )
        return self._layout

    def _width(self) -> int:
        return sum(w for _c, w in self._columns())

    def _relayout(self) -> None:
        self._layout = None
        self._header = None
        self._strips.clear()

    def on_resize(self) -> None:
        self._relayout()
        self.virtual_size = Size(self._width(), len(self._order) + 1)
        self._say_count()

    def _cells(self, m, pal: Palette, keys) -> list[tuple[str, str, str]]:
        """(text, style, justify) per shown column."""
        out = []
        for c in keys:
            k = c.key
            if k == "ticker":
                out.append((m.ticker, "", "left"))
            elif k == "title":
                out.append((m.title, "", "left"))
            elif k in ("bid", "ask", "last", "p_hat"):
                out.append((fmt_price(getattr(m, k)), "", "right"))
            elif k == "src":
                src = (
                    "oracle*"
                    if m.p_source.startswith("sim-oracle")
                    else ("manual" if m.p_source == "operator" else m.p_source.removesuffix("-file"))
                )
                out.append((src, "", "left"))
            elif k in ("ev_yes", "ev_no"):
                text, style = ev_cell(getattr(m, k), pal, self._threshold)
                out.append((text, style, "right"))
            elif k == "signal":
                sig = m.signal
                style = (
                    f"bold {pal.up}"
                    if sig.startswith(("BUY", "POST"))
                    else (pal.held if sig in ("HELD", "ORDER") else (pal.warn if sig else ""))
                )
                out.append((sig, style, "left"))
            elif k == "age":
                stale = m.age_ms > self.stale_ms
                out.append((fmt_age(m.age_ms), f"bold {pal.warn}" if stale else "", "right"))
        return out

    @staticmethod
    def _segments(cells, widths) -> list[Segment]:
        segs = []
        for (text, style, justify), w in zip(cells, widths):
            if w <= 0:
                continue
            if len(text) >= w:  # only titles (and a ticker past TICKER_MAX) can be this long
                text = text[: max(0, w - 2)] + "…"
            cell = text.rjust(w - 1) + " " if justify == "right" else text.ljust(w)
            segs.append(Segment(cell, Style.parse(style) if style else None))
        return segs

    def _row_strip(self, t: str) -> Strip:
        strip = self._strips.get(t)
        if strip is None:
            pal = self._pal or Palette(self)
            self._pal = pal
            cols = self._columns()
            strip = Strip(
                self._segments(self._cells(self._lines[t], pal, [c for c, _w in cols]), [w for _c, w in cols])
            )
            self._strips[t] = strip
        return strip

    def header_text(self) -> str:
        return "".join(seg.text for seg in self._header_strip())

    def _header_strip(self) -> Strip:
        if self._header is None:
            cols = self._columns()
            sorted_keys = SORT_COLUMNS[self.sort_mode]
            cells = []
            for c, _w in cols:
                label = c.label + (SORT_ARROWS[self.sort_mode] if c.key in sorted_keys else "")
                cells.append((label, "", c.justify))
            style = self.get_component_rich_style("markets--header")
            self._header = Strip(self._segments(cells, [w for _c, w in cols])).apply_style(style)
        return self._header

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        base = self.rich_style
        if y == 0:
            return self._header_strip().crop_extend(int(self.scroll_x), int(self.scroll_x) + width, base)
        idx = int(self.scroll_y) + y - 1
        if idx >= len(self._order):
            if idx == 0 and self.filter_text:
                return Strip([Segment(f" no market matches {self.filter_text!r}", Style(dim=True))]).crop_extend(
                    0, width, base
                )
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
