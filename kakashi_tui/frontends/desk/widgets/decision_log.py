"""The decision log: decisions, desk notes, alerts and feed errors, newest first, whole."""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
from typing import cast

from rich.cells import cell_len
from rich.table import Table
from rich.text import Text
from textual.binding import Binding
from textual.geometry import Size
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.visual import Visual, visualize

from kakashi_tui.core.money import fmt_count
from kakashi_tui.frontends.desk.widgets.base import _NOTHING, Palette
from kakashi_tui.frontends.fmt import dollars, fmt_ev, fmt_price
from kakashi_tui.frontends.fmt import fmt_utc as _utc
from kakashi_tui.trading.view import DeskView


@dataclass(frozen=True)
class LogEntry:
    ts: int
    who: str  # a ticker, "desk", "feed", "alert"
    what: str  # "BUY x3", a note's kind
    text: str
    level: str  # "ok" | "warn" | "error" | "note"
    rejection: bool = False
    order: int = 0  # when it reached the log: breaks ties in time (a tick's entries share one)


class DecisionLog(ScrollView, can_focus=True):
    """Decisions, desk notes, alerts and feed errors, newest first, whole (nothing cut at the edge).

    Focus it (``l`` or tab) to scroll with PgUp/PgDn; ``o`` shows only rejections, ``n`` only the
    desk's own notes and alerts (at 1,000 markets rejections would bury them). Entries of one
    tick share its time: the one that arrived last is on top.

    Drawn with Textual's Line API: a row (one entry, wrapped to the panel's width) is rendered
    when one of its lines is first drawn, and cached; a new view only measures the rows it adds
    (their text's wrapped height), and a repaint draws only the lines on screen. At 1,000
    markets each view brings ~60 new decisions, most of which scroll past unseen. (As one
    ``Static`` holding a 200-row rich ``Table``, every new decision re-measured and re-rendered
    the whole table on the desk's event loop: 100-600 ms on a busy machine at 1,000 markets,
    during which a key, the kill switch's included, waited.)
    """

    BINDINGS = [
        Binding("o", "toggle_rejections", "Only ✗", id="log.rejections"),
        Binding("n", "toggle_notes", "Notes", id="log.notes"),
    ]
    MAX_NOTES = 500
    MAX_SHOWN = 200
    WHAT_MIN = 9  # "BUY x3", "error"

    view: reactive[DeskView | None] = reactive(None, repaint=False, always_update=True)
    notes: reactive[tuple[LogEntry, ...]] = reactive(())
    only_rejections: reactive[bool] = reactive(False)
    only_notes: reactive[bool] = reactive(False)

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
        self._arrivals = 0
        self.threshold: Decimal | None = None  # the edge threshold: EVs with the digits that decide

    def _arrived(self, entry: LogEntry) -> LogEntry:
        self._arrivals += 1
        return replace(entry, order=self._arrivals)

    def add(self, entry: LogEntry) -> None:
        self.notes = (self.notes + (self._arrived(entry),))[-self.MAX_NOTES :]

    def entries(self) -> list[LogEntry]:
        out = list(self.notes) + list(self._history.values())
        if self.only_rejections:
            out = [e for e in out if e.rejection or e.level == "error"]
        elif self.only_notes:
            out = [e for e in out if e.who in ("desk", "alert", "feed", "event")]
        return sorted(out, key=lambda e: (e.ts, e.order), reverse=True)

    def add_decision(
        self, ts: int, ticker: str, side: str, contracts: Decimal, limit_price, ev, accepted: bool, reason: str
    ) -> None:
        """A decision, once (a restart loads the stored ones; views then carry the same again)."""
        key = (ts, ticker, side, contracts, reason)
        if key not in self._history:
            verdict = ("✓ " if accepted else "✗ ") + reason
            self._history[key] = self._arrived(
                LogEntry(
                    ts,
                    ticker,
                    f"{side.upper()} x{fmt_count(contracts)}",
                    f"@≤{fmt_price(limit_price)} EV {fmt_ev(ev, self.threshold)} {dollars(verdict)}",
                    "ok" if accepted else "error",
                    rejection=not accepted,
                )
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
        if self.only_rejections:
            self.only_notes = False
        self._filtered()

    def watch_only_notes(self) -> None:
        if self.only_notes:
            self.only_rejections = False
        self._filtered()

    def _filtered(self) -> None:
        self._render_body()
        self.border_subtitle = (
            "rejections only (o)"
            if self.only_rejections
            else ("desk notes and alerts only (n)" if self.only_notes else "")
        )

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._forget()  # a new theme: the rows' colours come from it
        self.call_later(self._render_body)

    def on_resize(self) -> None:
        self._render_body()  # rows wrap to the new width

    def action_toggle_rejections(self) -> None:
        self.only_rejections = not self.only_rejections

    def action_toggle_notes(self) -> None:
        self.only_notes = not self.only_notes

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
            t.add_row("", "", "", Text("nothing yet", style=pal.dim))  # the text column: never cut
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
