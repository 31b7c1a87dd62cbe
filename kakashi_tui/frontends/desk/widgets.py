"""The desk's panels. Each is a small view over ``DeskView``: set ``panel.view`` and it renders."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import cast

from rich.cells import cell_len
from rich.console import Group
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
from textual.visual import Visual, visualize
from textual.widget import Widget
from textual.widgets import Sparkline, Static

from kakashi_tui.core.money import fmt_cc, fmt_count
from kakashi_tui.frontends.fmt import dollars, fmt_age, fmt_duration, fmt_price, fmt_signed
from kakashi_tui.frontends.fmt import fmt_utc as _utc
from kakashi_tui.trading.liveness import OK, SLOW, Liveness
from kakashi_tui.trading.view import DeskView, MarketLine


class Palette:
    """Colours for Rich renderables, taken from the app's theme (never hard-coded)."""

    def __init__(self, widget) -> None:
        v = widget.app.theme_variables
        self.up = v.get("success", "")
        self.down = v.get("error", "")
        self.warn = v.get("warning", "")
        self.held = v.get("accent", "")
        self.dim = "dim"  # an attribute, not a colour: muted on any theme

    def money(self, cc: int) -> str:
        return self.up if cc > 0 else (self.down if cc < 0 else "")

    def level(self, level: str) -> str:
        return {"ok": self.up, "warn": self.warn, "error": f"bold {self.down}"}[level]


class ContentPanel(Static):
    """A panel that redraws only when the data it draws changed.

    Views arrive up to four times a second and nearly every one differs somewhere; a panel that
    repainted on each (rebuilding its rich ``Table``) made the desk's screen updates long enough
    to hold up a key. Each panel names the part of the view it draws (``content_key``); a new view
    repaints the panel (without a layout pass: its size does not depend on the data) only when
    that part changed.
    """

    view: reactive[DeskView | None] = reactive(None, repaint=False, always_update=True)

    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, **kw)
        self._drawn: object = _NOTHING

    def content_key(self, v: DeskView | None) -> object:  # pragma: no cover - each panel names its own
        return v

    def watch_view(self, v: DeskView | None) -> None:
        key = self.content_key(v)
        if key != self._drawn:
            self._drawn = key
            self.refresh(layout=False)

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self.refresh(layout=False)  # a new theme: the panel's colours come from it


_NOTHING = object()


def fmt_clock(ms: int, source: str, zone: str = "utc", fmt: str = "%H:%M:%S") -> str:
    """The engine clock, labelled: ``sim`` time on the simulator (it runs ahead of the wall),
    ``replay`` time in a replay, ``wall`` time otherwise; in UTC or the operator's zone."""
    kind = "sim" if source.startswith("sim") else ("replay" if source.startswith("replay") else "wall")
    return f"{kind} {fmt_time(ms, zone, fmt)}"


def fmt_time(ms: int | None, zone: str = "utc", fmt: str = "%H:%M:%S") -> str:
    """Epoch ms as text in UTC or local time, the zone named (``UTC`` or e.g. ``CET``)."""
    if ms is None:
        return "—"
    dt = datetime.fromtimestamp(ms / 1000, tz=UTC)
    if zone == "local":
        dt = dt.astimezone()
        return f"{dt.strftime(fmt)} {dt.tzname() or 'local'}"
    return f"{dt.strftime(fmt)} UTC"


class StatusBar(Static):
    """One line: what the desk is doing, whether its data is alive, and when (labelled).

    Segments drop by priority when the terminal is narrow: the state and a dead feed never do.
    """

    view: reactive[DeskView | None] = reactive(None, layout=False)
    halted_reason: reactive[str] = reactive("")
    feed_down_since: reactive[int | None] = reactive(None)
    zone: reactive[str] = reactive("utc")
    # The heartbeat (liveness.py), read once a second while the engine's thread runs: what is
    # late, if anything, and how old the last completed tick is (None: not running).
    liveness: reactive[Liveness] = reactive(Liveness(OK))
    tick_age_s: reactive[int | None] = reactive(None)

    def render(self) -> Text:
        pal = Palette(self)
        v = self.view
        if v is None:
            return Text(" KAKASHI · PAPER │ starting…")
        state = f"HALTED ({self.halted_reason})" if self.halted_reason else v.state
        # (priority: lower survives longer, text, style)
        parts: list[tuple[int, str, str]] = [(0, f"{v.source}", "bold"), *feed_segments(v, pal), (0, state, "bold")]
        if v.key_refused:  # no books, no fills until the key works: never dropped; why, where there is room
            parts.append((0, "KEY REFUSED", f"bold {pal.down} reverse"))
            why = v.key_refused.rsplit("): ", 1)[-1]
            parts.append((2, why if len(why) <= 40 else why[:39] + "…", pal.down))
        late = self.liveness.label(lambda ms: fmt_time(ms, self.zone).removesuffix(" UTC"))
        if late:
            parts.append((0, late, f"bold {pal.down if self.liveness.level != SLOW else pal.warn} reverse"))
        elif self.feed_down_since is not None:
            parts.append(
                (
                    0,
                    f"FEED DOWN since {fmt_time(self.feed_down_since, self.zone).removesuffix(' UTC')}",
                    f"bold {pal.warn} reverse",
                )
            )
        parts.append((1, fmt_clock(v.clock_ms, v.source, self.zone), ""))
        age = "" if self.tick_age_s is None else f" ({self.tick_age_s}s ago)"
        parts.append((3, f"tick {v.tick}{age}", ""))
        parts.append(
            (
                2,
                f"rejected {v.rejected_total}" + (" (x)" if v.rejected_total else ""),
                pal.warn if v.rejected_total else "",
            )
        )
        if v.feed_errors:
            parts.append((1, f"feed errors {len(v.feed_errors)} (log)", f"bold {pal.down}"))
        parts.append((4, f"fetch {v.latency_ms:.0f} ms", ""))
        head = " KAKASHI · PAPER "
        width = max(20, self.size.width or 200)
        keep = list(parts)
        while keep and len(head) + sum(len(t) + 3 for _p, t, _s in keep) > width:
            worst = max(p for p, _t, _s in keep)
            if worst == 0:
                break
            idx = max(i for i, (p, _t, _s) in enumerate(keep) if p == worst)
            keep.pop(idx)
        t = Text(head, style="bold")
        for _p, text, style in keep:
            t.append("│ ")
            t.append(text, style=style)
            t.append(" ")
        return t

    def _state_class(self) -> None:
        v = self.view
        kind = "halted" if self.halted_reason else (v.state_kind if v else "running")
        for k in ("running", "paused", "halted"):
            self.set_class(k == kind, f"-{k}")
        self.set_class(self.feed_down_since is not None or not self.liveness.ok, "-feed-down")

    def watch_view(self) -> None:
        self._state_class()

    def watch_halted_reason(self) -> None:
        self._state_class()

    def watch_feed_down_since(self) -> None:
        self._state_class()

    def watch_liveness(self) -> None:
        self._state_class()


def feed_segments(v: DeskView, pal: Palette, width: int = 24) -> list[tuple[int, str, str]]:
    """Which feed is live, for the status bar (priority, text, style): ``websocket`` and its live
    books; ``polling (ws down)`` in the warning colour, never dropped, and why when there is room;
    a plain ``polling`` (no key) goes before the tick count. The simulator's name says it all."""
    feed = v.feed
    if feed.kind == "simulated":
        return []
    if feed.kind == "websocket":
        return [(1, "websocket", ""), *([(4, feed.detail, "")] if feed.detail else [])]
    if feed.degraded:
        state, _, why = feed.detail.partition(": ")  # "websocket down: <Error>: <why>": the last part
        why = why.rsplit(": ", 1)[-1]  # ("HTTP 503", "[Errno 111] Connect call failed ...")
        why = why if len(why) <= width else why[: width - 1] + "…"
        return [
            (0, f"polling ({state.replace('websocket', 'ws', 1)})", f"bold {pal.warn}"),
            *([(3, why, pal.warn)] if why else []),
        ]
    return [(3, feed.label, "")]


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    width: int  # including a one-space gutter; numbers always fit in it
    justify: str = "right"
    drop: int = 0  # 0: never dropped; higher drops first when the panel is narrow


# Numbers never truncate: each numeric width fits its widest possible value ("+0.05", "59m") and
# its header with the sort arrow ("Age▲").
# The ticker column is as wide as the longest ticker shown; the title takes what is left.
MARKET_COLUMNS = [
    Column("ticker", "Ticker", 0, "left"),
    Column("title", "Title", 0, "left", drop=3),
    Column("bid", "Bid", 5),
    Column("ask", "Ask", 5),
    Column("last", "Last", 5, drop=5),
    Column("p_hat", "p̂", 5),
    Column("src", "Src", 8, "left", drop=4),
    Column("ev_yes", "EV Y", 6),
    Column("ev_no", "EV N", 6),
    Column("signal", "Signal", 9, "left"),
    Column("age", "Age", 5),
]
TICKER_MIN, TICKER_MAX = 10, 40
_CENT = Decimal("0.01")
TITLE_MIN = 8
SORTS = ["ticker", "edge", "age"]
SORT_ARROWS = {"ticker": "▲", "edge": "▼", "age": "▲"}  # the direction each mode sorts in
SORT_COLUMNS = {"ticker": ("ticker",), "edge": ("ev_yes", "ev_no"), "age": ("age",)}  # edge: the better side


PRICE_KEYS = ("bid", "ask", "last", "p_hat")
SUB_CENT_PRICE_WIDTH = 7  # "0.4230 ": Kalshi's $0.0001 grid, never rounded away


def layout_columns(width: int, ticker_width: int, sub_cent: bool = False) -> list[tuple[Column, int]]:
    """The columns that fit ``width``, each with its width: drop by priority, never cut a number.
    ``sub_cent``: some price is off the cent grid, so price columns take four decimals."""
    cols = [c for c in MARKET_COLUMNS]
    tw = max(TICKER_MIN, min(TICKER_MAX, ticker_width + 1))

    def w_of(c: Column) -> int:
        return SUB_CENT_PRICE_WIDTH if (sub_cent and c.key in PRICE_KEYS) else c.width

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


def ev_cell(e: Decimal | None, pal: Palette) -> tuple[str, str]:
    """EV per contract to the cent; a value that rounds to zero is a plain 0.00, never a red -0.00."""
    if e is None:
        return "—", pal.dim
    q = e.quantize(Decimal("0.01"))
    if q == 0:
        return "0.00", pal.dim
    return f"{q:+.2f}", pal.up if q > 0 else pal.down


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
            if not self._sub_cent and any(
                x is not None and x != x.quantize(_CENT) for x in (m.bid, m.ask, m.last, m.p_hat)
            ):
                self._sub_cent = True
                self._relayout()
            resort = (
                resort
                or old is None
                or (self.sort_mode == "edge" and (old.ev_yes, old.ev_no) != (m.ev_yes, m.ev_no))
                or (self.sort_mode == "age" and old.age_ms != m.age_ms)
                or (bool(self.filter_text) and old.title != m.title)
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

    def _matches(self, t: str) -> bool:
        f = self.filter_text.casefold()
        return not f or f in t.casefold() or f in getattr(self._lines[t], "title", "").casefold()

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
                max(1, self.scrollable_content_region.width), self._ticker_width, self._sub_cent
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
                text, style = ev_cell(getattr(m, k), pal)
                out.append((text, style, "right"))
            elif k == "signal":
                sig = m.signal
                style = (
                    f"bold {pal.up}"
                    if sig.startswith("BUY")
                    else (pal.held if sig == "HELD" else (pal.warn if sig else ""))
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
            line.title if line else None,
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
        if line is not None and line.title:
            head.append("\n" + line.title)
        if line is not None and line.close_ts:
            head.append(f"\ncloses {_utc(line.close_ts, '%Y-%m-%d %H:%M')} UTC", style=pal.dim)
        ladder = Table(box=None, padding=(0, 1), expand=True)
        ladder.add_column("YES bid", justify="right", style=pal.up)
        ladder.add_column("qty", justify="right")
        ladder.add_column("YES ask", justify="right", style=pal.down)
        ladder.add_column("qty", justify="right")
        bids = [(lv.price, lv.qty) for lv in s.yes_bids] or ([(s.yes_bid, 0)] if s.yes_bid else [])
        asks = [(1 - lv.price, lv.qty) for lv in s.no_bids] or ([(s.yes_ask, 0)] if s.yes_ask else [])
        for i in range(max(len(bids), len(asks))):
            b = bids[i] if i < len(bids) else None
            a = asks[i] if i < len(asks) else None
            ladder.add_row(
                fmt_price(b[0]) if b else "",
                fmt_count(b[1]) if b and b[1] else "",
                fmt_price(a[0]) if a else "",
                fmt_count(a[1]) if a and a[1] else "",
            )
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


class EquityChart(Sparkline):
    view: reactive[DeskView | None] = reactive(None)

    def watch_view(self, v: DeskView | None) -> None:
        series = v.equity_series if v and v.equity_series else None
        if series != self._series:  # the sparkline redraws on a new list, even an equal one
            self._series = series
            self.data = [float(x) for x in series] if series else [0.0]

    _series: tuple[int, ...] | None = None


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
            t.add_row("Buys when EV", f"≥ +{lim.edge_threshold:.2f} /contract")
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


@dataclass(frozen=True)
class LogEntry:
    ts: int
    who: str  # a ticker, "desk", "feed", "alert"
    what: str  # "BUY x3", a note's kind
    text: str
    level: str  # "ok" | "warn" | "error" | "note"
    rejection: bool = False


class DecisionLog(ScrollView, can_focus=True):
    """Decisions, desk notes, alerts and feed errors, newest first, whole (nothing cut at the edge).

    Focus it (``l`` or tab) to scroll with PgUp/PgDn; ``o`` shows only rejections.

    Drawn with Textual's Line API: a row (one entry, wrapped to the panel's width) is rendered
    when one of its lines is first drawn, and cached; a new view only measures the rows it adds
    (their text's wrapped height), and a repaint draws only the lines on screen. At 1,000
    markets each view brings ~60 new decisions, most of which scroll past unseen. (As one
    ``Static`` holding a 200-row rich ``Table``, every new decision re-measured and re-rendered
    the whole table on the desk's event loop: 100-600 ms on a busy machine at 1,000 markets,
    during which a key, the kill switch's included, waited.)
    """

    BINDINGS = [Binding("o", "toggle_rejections", "Only ✗", id="log.rejections")]
    MAX_NOTES = 500
    MAX_SHOWN = 200
    WHAT_MIN = 9  # "BUY x3", "error"

    view: reactive[DeskView | None] = reactive(None, repaint=False, always_update=True)
    notes: reactive[tuple[LogEntry, ...]] = reactive(())
    only_rejections: reactive[bool] = reactive(False)

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self._history: dict[tuple, LogEntry] = {}  # decisions seen (views carry the latest 60)
        self._drawn: object = _NOTHING  # what the lines show: rebuilt only when that changes
        self._where: list[tuple[object, int]] = []  # every line: (its row, its line in it), newest row first
        self._rows: dict[object, list[Strip]] = {}  # a row -> its lines, for ``_geometry`` (rendered when drawn)
        self._heights: dict[object, int] = {}  # a row -> how many lines it takes
        self._geometry: tuple[int, int, int] | None = None  # (width, who column, what column)
        self._who_w = 8
        self._what_w = self.WHAT_MIN
        self._pal: Palette | None = None

    def add(self, entry: LogEntry) -> None:
        self.notes = (self.notes + (entry,))[-self.MAX_NOTES :]

    def entries(self) -> list[LogEntry]:
        out = list(self.notes) + list(self._history.values())
        if self.only_rejections:
            out = [e for e in out if e.rejection or e.level == "error"]
        return sorted(out, key=lambda e: e.ts, reverse=True)

    def add_decision(
        self, ts: int, ticker: str, side: str, contracts: Decimal, limit_price, ev, accepted: bool, reason: str
    ) -> None:
        """A decision, once (a restart loads the stored ones; views then carry the same again)."""
        key = (ts, ticker, side, contracts, reason)
        if key not in self._history:
            verdict = ("✓ " if accepted else "✗ ") + reason
            self._history[key] = LogEntry(
                ts,
                ticker,
                f"{side.upper()} x{fmt_count(contracts)}",
                f"@≤{limit_price:.2f} EV {ev:+.2f} {dollars(verdict)}",
                "ok" if accepted else "error",
                rejection=not accepted,
            )

    def watch_view(self, v: DeskView | None) -> None:
        if v is None:
            return
        for d in v.decisions:
            self.add_decision(
                d.ts, d.ticker, d.side.value, d.contracts, d.limit_price, d.ev_per_contract, d.accepted, d.reason
            )
        if len(self._history) > self.MAX_NOTES:
            for k in list(self._history)[: len(self._history) - self.MAX_NOTES]:
                del self._history[k]
        self._render_body()

    def watch_notes(self) -> None:
        self._render_body()

    def watch_only_rejections(self) -> None:
        self._render_body()
        self.border_subtitle = "rejections only (o)" if self.only_rejections else ""

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._forget()  # a new theme: the rows' colours come from it
        self.call_later(self._render_body)

    def on_resize(self) -> None:
        self._render_body()  # rows wrap to the new width

    def action_toggle_rejections(self) -> None:
        self.only_rejections = not self.only_rejections

    def _forget(self) -> None:
        self._drawn = _NOTHING
        self._rows.clear()
        self._heights.clear()
        self._pal = None

    def _render_body(self) -> None:
        if not self.is_mounted:
            return
        v = self.view
        entries = self.entries()[: self.MAX_SHOWN]
        errors = (v.clock_ms, v.feed_errors) if v is not None and v.feed_errors else None
        # Columns as wide as their widest entry (a fractional count whole), and sticky: a width
        # that came and went with each view would re-render every row each time.
        self._who_w = who_w = max([self._who_w] + [len(e.who) for e in entries])
        self._what_w = what_w = max([self._what_w] + [len(e.what) for e in entries])
        height = self.content_region.height
        full = self.content_region.width
        # Like a scrolling container: the full width, less the scrollbar when the rows overflow.
        rows: list[object] = [("feed", v.clock_ms, err) for err in v.feed_errors] if errors and v else []
        rows += entries
        if not rows:
            rows = [None]  # "nothing yet"
        narrow = max(1, full - self.styles.scrollbar_size_vertical)
        if self.styles.overflow_y == "scroll" or len(rows) > height:
            widths = [narrow]
        else:
            widths = [full, narrow]
        for width in widths:
            geometry = (width, who_w, what_w)
            if (errors, entries, geometry) == self._drawn:
                return
            if geometry != self._geometry:
                self._geometry = geometry
                self._rows.clear()
                self._heights.clear()
            where: list[tuple[object, int]] = []  # each line: (its row, its line in the row)
            for row in rows:
                where.extend((row, k) for k in range(self._row_height(row, geometry)))
            if len(where) <= height or width == narrow:
                break
        self._drawn = (errors, entries, geometry)
        # Rows no longer shown leave the caches (they hold at most what is on the log).
        shown = set(rows)
        for cache in (self._rows, self._heights):
            for key in [k for k in cache if k not in shown]:
                del cache[key]
        self._where = where
        self.virtual_size = Size(geometry[0], len(where))
        self.refresh()

    def _row_height(self, row: object, geometry: tuple[int, int, int]) -> int:
        """How many lines a row takes, without rendering it: only its text column wraps (the
        others are single-line and fit their width), so this is its text wrapped to that column
        (rich's own wrap: what the row's table does). Rendered only if the columns do not fit."""
        h = self._heights.get(row)
        if h is None:
            width, who_w, what_w = geometry
            text_w = width - (8 + who_w + what_w) - 4 * 2  # each column has a cell of padding either side
            text = row.text if isinstance(row, LogEntry) else (row[2] if isinstance(row, tuple) else "")
            if text_w < 3:  # rich squeezes the columns: ask the row itself
                h = len(self._row_lines(row, geometry))
            elif "\n" not in text and cell_len(text) <= text_w:
                h = 1
            else:
                h = len(Text(text).wrap(self.app.console, text_w, overflow="fold"))
            self._heights[row] = h
        return h

    def _row_lines(self, row: object, geometry: tuple[int, int, int]) -> list[Strip]:
        """One row of the log as lines: a one-row rich ``Table`` with the log's columns (their
        widths do not depend on the other rows' text, so each row renders alone)."""
        cached = self._rows.get(row)
        if cached is not None:
            return cached
        width, who_w, what_w = geometry
        pal = self._pal = self._pal or Palette(self)
        t = Table(box=None, padding=(0, 1), expand=True, show_header=False)
        t.add_column(width=8, style=pal.dim, no_wrap=True)
        t.add_column(width=who_w, no_wrap=True)
        t.add_column(width=what_w, no_wrap=True)
        t.add_column(ratio=1, overflow="fold")
        if row is None:
            t.add_row("", Text("nothing yet", style=pal.dim), "", "")
        elif isinstance(row, LogEntry):
            styles = {"ok": pal.up, "warn": pal.warn, "error": pal.down, "note": pal.warn}
            who = Text(row.who, style=pal.warn if row.who in ("desk", "alert") else "")
            t.add_row(_utc(row.ts, "%H:%M:%S"), who, row.what, Text(row.text, style=styles.get(row.level, "")))
        else:
            _feed, clock_ms, err = cast(tuple[str, int, str], row)
            t.add_row(
                _utc(clock_ms, "%H:%M:%S"), Text("feed", style=f"bold {pal.down}"), "error", Text(err, style=pal.down)
            )
        strips = Visual.to_strips(self, visualize(self, t), width, None, self.visual_style)
        self._rows[row] = strips
        return strips

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        idx = int(self.scroll_y) + y
        base = self.rich_style
        if idx >= len(self._where) or self._geometry is None:
            return Strip.blank(width, base)
        row, k = self._where[idx]
        lines = self._row_lines(row, self._geometry)
        line = lines[k] if k < len(lines) else Strip.blank(width, base)
        return line.crop_extend(int(self.scroll_x), int(self.scroll_x) + width, base)
