"""The desk's modal screens: help, confirmations (default No), p̂ entry (validated in place),
the post-mortem just written, the fills blotter, rejected rows and a market's detail."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, Input, Label, Markdown, Static

from kakashi_tui.core.money import fmt_cc, fmt_count
from kakashi_tui.frontends.desk.widgets.base import Palette
from kakashi_tui.frontends.desk.widgets.price_chart import PriceChart
from kakashi_tui.frontends.fmt import fmt_price, fmt_signed, fmt_utc
from kakashi_tui.trading.view import DeskView

HELP = """\
**Paper trading only.** Nothing here places a real order.

| key | action |
|---|---|
| `p` | pause / resume trading (data keeps flowing) |
| `k` | **kill switch**: immediate, no confirmation; stays thrown across restarts |
| `r` | re-arm the kill switch (asks; Enter = No, `y` = yes) |
| `f` | flatten: sell every paper position into the bids and pause (asks; Enter = No) |
| `e` | export the post-mortem into `reports/` beside the database |
| `m` | performance: realised, unrealised, fees and win rate for today, this week and since the start |
| `t` | fills blotter, newest first: time, ticker, side, buy/sell, quantity, average price, value, fee, maker or taker |
| `b` | set p̂ for the selected open market (a number strictly between 0 and 1) |
| `enter` | the selected market's detail: close time, volume, fee, price chart with p̂ |
| `/` | filter markets by ticker or title (esc clears) |
| `s` | sort markets: ticker → edge → quote age (the header shows ▲/▼) |
| `x` | rejected rows: time, ticker, reason, raw payload |
| `l` | focus the decision log (PgUp/PgDn scroll; `o` rejections only, `n` desk notes and alerts only) |
| `tab` | move focus between the markets and the log |
| `v` | lower panels in turn: risk, bankroll, orders (130 columns and more: orders or the log) |
| `c` | cancel the order selected in the orders panel (asks; Enter = No); in force after the cancel latency |
| `ctrl+p` | command palette |
| `?` | this help (scroll with the arrows) |
| `q` | quit (the ledger is already saved) |

**Signal** says what the risk gate would do now: `BUY YES`/`BUY NO`, or why not (`max pos`,
`paused`, `halted`, `stale`, `spread`, `cap`, `size`, `cash`, `closed`, `no book`: no order
book to fill against, as on Kalshi without an API key); `HELD` = already in it. EV = p̂ − ask − fee,
per contract. `oracle*` is the simulator's labelled oracle: **simulated**, not a model.

The **daily loss cap stops new trades** for the rest of the UTC day; open positions are held
(or flattened, with `on_daily_stop = "flatten"` in the config).
"""


class _ReadOnlyModal(ModalScreen[None]):
    """A modal to read and close: its close keys dismiss it with no result."""

    def action_dismiss(self) -> None:  # type: ignore[override]
        self.dismiss(None)


class HelpScreen(_ReadOnlyModal):
    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "Close", id="help.close")]

    def compose(self) -> ComposeResult:
        with Vertical(id="help-box"):
            yield Label("Kakashi desk: keys", id="help-title")
            with VerticalScroll(id="help-scroll"):
                yield Markdown(HELP)
            yield Label("↑/↓ PgUp/PgDn scroll · esc to close", classes="hint")

    def on_mount(self) -> None:
        self.query_one("#help-scroll").focus()


class PerformanceScreen(_ReadOnlyModal):
    """Today, this week and since the start: realised, unrealised, total, fees, closed trades and
    the win rate, as the service summed them from the ledger (trading/performance.py); follows the
    views while open. Opened with `m` at every size (80x24 included)."""

    BINDINGS = [
        Binding("escape,m,q", "dismiss", "Close", id="performance.close"),
        Binding("e", "export", "Export", id="performance.export"),
    ]

    def __init__(self, view: DeskView, fmt_time: Callable[[int | None, str], str], export: Callable[[], None]) -> None:
        super().__init__()
        self.view = view
        self.fmt_time = fmt_time
        self.export = export

    def action_export(self) -> None:
        """The full post-mortem (the desk's `e`), shown over this summary."""
        self.export()

    def compose(self) -> ComposeResult:
        with Vertical(id="performance-box"):
            yield Label("Performance", id="performance-title")
            yield Static(id="performance-figures")
            yield Label(
                "Realised counts every fee. Unrealised: its change over the period (open positions sold "
                "into the bids, after fees, less their cost). Total = realised + unrealised.",
                classes="hint",
            )
            yield Label("e exports the full post-mortem · esc closes", classes="hint")

    def on_mount(self) -> None:
        self.show(self.view)

    def show(self, v: DeskView) -> None:
        self.view = v
        self.query_one("#performance-figures", Static).update(performance_table(v, self.fmt_time, Palette(self)))


def performance_table(v: DeskView, fmt_time: Callable[[int | None, str], str], pal: Palette) -> Group:
    """The summary as a table, its money whole (never cut: the columns fit the widest figure)."""
    perf = v.performance
    periods = perf.periods if perf is not None else ()
    t = Table(box=None, padding=(0, 1), show_edge=False)
    t.add_column("", style=pal.dim, no_wrap=True)
    for p in periods:
        t.add_column(p.name, justify="right", no_wrap=True, header_style="bold")

    def signed(cc: int) -> Text:
        return Text(fmt_signed(cc), style=pal.money(cc))

    t.add_row("Realised", *[signed(p.realized_cc) for p in periods])
    t.add_row("Unrealised", *[signed(p.unrealized_cc) for p in periods])
    t.add_row("Total", *[Text.assemble(signed(p.total_cc), style="bold") for p in periods])
    t.add_row("Fees", *[fmt_cc(p.fees_cc) for p in periods])
    t.add_row("Closed trades", *[str(p.trades) for p in periods])
    t.add_row("Win rate", *[p.win_rate for p in periods])
    day = next((p.start_ms for p in periods if p.name == "Today"), None)
    week = next((p.start_ms for p in periods if p.name == "This week"), None)
    when = Text(
        f"as of {fmt_time(v.clock_ms, '%Y-%m-%d %H:%M:%S')} · today {fmt_utc(day, '%Y-%m-%d')}, "
        f"the week from Monday {fmt_utc(week, '%Y-%m-%d')} (UTC days)",
        style=pal.dim,
    )
    n = len(v.positions)
    book = Text(f"cash {fmt_cc(v.cash_cc)} · equity {fmt_cc(v.equity_cc)} · {n} open position{'' if n == 1 else 's'}")
    return Group(when, Text(""), t, Text(""), book)


class ReportScreen(_ReadOnlyModal):
    """The post-mortem just exported, with its key figures on top."""

    BINDINGS = [Binding("escape,q", "dismiss", "Close", id="report.close")]

    def __init__(self, path, figures: list[tuple[str, str]]) -> None:
        super().__init__()
        self.path = path
        self.figures = figures

    def compose(self) -> ComposeResult:
        with Vertical(id="report-box"):
            yield Label(f"Post-mortem: {self.path}", id="report-title")
            yield Label("   ".join(f"{k}: [b]{v}[/b]" for k, v in self.figures), id="report-figures")
            with VerticalScroll(id="report-scroll"):
                yield Markdown(self.path.read_text(encoding="utf-8"))
            yield Label(
                "charts: bankroll.png, drawdown.png, edge_hist.png, calibration.png beside it · esc to close",
                classes="hint",
            )


class ConfirmScreen(ModalScreen[bool]):
    """A dangerous action's question. The safe answer is the default: Enter (and esc, n) say No;
    only `y` (or clicking Yes) says yes."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes", id="confirm.yes"),
        Binding("n,escape", "answer(False)", "No", id="confirm.no"),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-box"):
            yield Label(self.question, id="question")
            with Horizontal(id="confirm-buttons"):
                yield Button("No (Enter)", id="no", variant="primary")
                yield Button("Yes (y)", id="yes", variant="error")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, value: bool) -> None:
        self.dismiss(value)


def parse_p_hat(text: str) -> Decimal | str:
    """The operator's p̂, or why not (a line for the dialog): a finite number strictly in (0, 1)."""
    text = text.strip()
    if not text:
        return "type a probability, e.g. 0.62"
    if len(text) > 32:
        return "too long: type a probability, e.g. 0.62"
    try:
        p = Decimal(text)
    except (InvalidOperation, ValueError):
        return f"not a number: {text!r}"
    if not p.is_finite():
        return "must be a finite number (not nan or infinity)"
    if not (0 < p < 1):
        return "must be strictly between 0 and 1"
    if p.as_tuple().exponent < -4:  # type: ignore[operator]
        return "at most 4 decimal places"
    return p


class EstimateScreen(ModalScreen[Decimal | None]):
    """p̂ for one market. ``not_open()`` says why the market is no longer open ("" while it is):
    asked as each view arrives (``recheck``) and again on enter, which then sets nothing."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="estimate.cancel")]

    def __init__(self, ticker: str, current: Decimal | None, not_open: Callable[[], str] = lambda: "") -> None:
        super().__init__()
        self.ticker = ticker
        self.current = current
        self.not_open = not_open
        self.closed = ""

    def compose(self) -> ComposeResult:
        with Vertical(id="estimate-box"):
            yield Label(f"p̂ for {self.ticker}", id="estimate-title")
            yield Label("your probability of YES, strictly between 0 and 1", classes="hint")
            yield Input(
                value="" if self.current is None else f"{self.current}",
                placeholder="e.g. 0.62",
                id="estimate-input",
                select_on_focus=True,
            )
            yield Label("", id="estimate-error")
            yield Label("enter to set · esc to cancel", classes="hint")

    def on_mount(self) -> None:
        inp = self.query_one(Input)
        inp.cursor_blink = getattr(self.app, "cursor_blink", True)
        self.focus_input()
        self.recheck()

    def focus_input(self) -> None:
        """Focus the box now (not a frame later): the keys typed next are its own. Its text is
        selected by that focus, before any of them arrives, so typing replaces it."""
        self.set_focus(self.query_one(Input))

    @property
    def error(self) -> str:
        return str(self.query_one("#estimate-error", Label).content)

    def _show(self, message: str) -> None:
        self.query_one("#estimate-error", Label).update(message)
        self.query_one(Input).set_class(bool(message), "-invalid")

    def recheck(self) -> bool:
        """True while the market is open; else its closing is said in place of any other error."""
        why = self.not_open()
        if why:
            self.closed = f"no longer open ({why}): p̂ not set"  # (the ticker is in the title)
            if self.is_mounted:
                self._show(self.closed)
        return not why

    def on_input_changed(self, event: Input.Changed) -> None:
        if self.closed:
            return
        p = parse_p_hat(event.value)
        self._show(p if isinstance(p, str) and event.value.strip() else "")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if not self.recheck():
            return
        p = parse_p_hat(event.value)
        if isinstance(p, str):
            self._show(p)
            return
        self.dismiss(p)

    def action_cancel(self) -> None:
        self.dismiss(None)


@dataclass(frozen=True)
class FillLine:
    """One fill as the blotter shows it (the desk builds it from a look-up; no engine here)."""

    id: int
    ts: int
    ticker: str
    side: str  # yes | no
    action: str  # buy | sell
    contracts: Decimal
    avg_price: Decimal | None  # its value over its contracts (a fill may take several levels)
    value_cc: int  # cost of a buy, proceeds of a sale
    fee_cc: int
    liquidity: str  # maker or taker (fills.role; a sale, or a fill before v10: taker)


#: The blotter's columns: (long header, short header, justify), in order. Where the terminal is too
#: narrow for all of them the short headers are used, then ``BLOTTER_DROP`` go in turn (each is
#: still in the line under the table, which shows the selected fill in full).
BLOTTER_COLUMNS = (
    ("time", "time", "left"),
    ("ticker", "ticker", "left"),
    ("side", "side", "left"),
    ("buy/sell", "b/s", "left"),
    ("quantity", "qty", "right"),
    ("avg price", "price", "right"),
    ("value", "value", "right"),
    ("fee", "fee", "right"),
    ("liquidity", "liq", "left"),
)
BLOTTER_DROP = ("value", "liquidity")
BLOTTER_CHROME = 5  # the box's border and padding (4) and the table's scroll bar (1)


def blotter_cells(f: FillLine, when: str) -> dict[str, str]:
    return {
        "time": when,
        "ticker": f.ticker,
        "side": f.side.upper(),
        "buy/sell": f.action,
        "quantity": fmt_count(f.contracts),
        "avg price": fmt_price(f.avg_price),
        "value": fmt_cc(f.value_cc),
        "fee": fmt_cc(f.fee_cc),
        "liquidity": f.liquidity,
    }


def align_points(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """The right-justified numbers with their decimal points in line (``0.70`` under ``0.2868``)."""
    for long, _abbr, justify in BLOTTER_COLUMNS:
        if justify != "right":
            continue
        frac = max((len(r[long].partition(".")[2]) for r in rows), default=0)
        for r in rows:
            r[long] += " " * (frac - len(r[long].partition(".")[2]) + (0 if "." in r[long] or not frac else 1))
    return rows


def blotter_layout(rows: list[dict[str, str]], width: int) -> list[tuple[str, str, int, str]]:
    """The columns that fit ``width`` as (key, header, width, justify): every one with its long
    header if they fit, else short headers, then dropping ``BLOTTER_DROP`` in turn. A cell is
    never cut: a column is as wide as its widest cell (one space between columns)."""

    def fit(short: bool, drop: tuple[str, ...]) -> list[tuple[str, str, int, str]]:
        cols = []
        for long, abbr, justify in BLOTTER_COLUMNS:
            if long in drop:
                continue
            head = abbr if short else long
            cols.append((long, head, max([len(head), *(len(r[long]) for r in rows)]), justify))
        return cols

    tries = [fit(False, ()), fit(True, ())] + [fit(True, BLOTTER_DROP[: i + 1]) for i in range(len(BLOTTER_DROP))]
    for cols in tries:
        if sum(w for _k, _head, w, _j in cols) + len(cols) - 1 <= width:
            return cols
    return tries[-1]  # narrower still: the table scrolls sideways


class BlotterTable(DataTable[Text]):
    """The blotter's rows: home and end go to the newest and the oldest fill (not sideways)."""

    BINDINGS = [
        Binding("home", "scroll_top", "Newest", show=False),
        Binding("end", "scroll_bottom", "Oldest", show=False),
    ]


class BlotterScreen(_ReadOnlyModal):
    """Every fill, newest first (a read-only look-up when opened: lookups.fills_blotter), with
    the selected one in full below; `t` on the desk, at every size."""

    BINDINGS = [Binding("escape,q,t", "dismiss", "Close", id="blotter.close")]
    BOX_WIDTH = 110  # the box's width in the stylesheet (#blotter-box)

    def __init__(self, fills: list[FillLine], total: int, fmt_time: Callable[[int, str], str], as_of: str) -> None:
        super().__init__()
        self.fills = fills
        self.total = total
        self.fmt_time = fmt_time  # (ms, strftime format) -> text ending in its zone's name
        self.as_of = as_of
        self._width = 0

    def _when(self, ms: int) -> tuple[str, str]:
        text, _, zone = self.fmt_time(ms, "%m-%d %H:%M:%S").rpartition(" ")
        return text, zone

    def compose(self) -> ComposeResult:
        n, total = len(self.fills), self.total
        zone = self._when(self.fills[0].ts)[1] if self.fills else ""
        shown = f"{total} in all" if n == total else f"the latest {n} of {total}"
        times = f", times {zone}" if zone else ""
        with Vertical(id="blotter-box"):
            yield Label(f"Fills: {shown}, newest first{times} · as of {self.as_of}", id="blotter-title")
            yield BlotterTable(id="blotter-table", cursor_type="row", zebra_stripes=True, cell_padding=0)
            yield Static("", id="blotter-fill")
            yield Label("↑/↓ PgUp/PgDn scroll · home newest, end oldest · esc closes", classes="hint")

    def on_mount(self) -> None:
        self._build(self.app.size.width)
        table = self.query_one(DataTable)
        table.focus()
        self._show(0)

    def on_resize(self, event) -> None:
        if self.is_mounted and event.size.width != self._width:
            self._build(event.size.width)

    def _build(self, screen_width: int) -> None:
        """The table's columns for this width (and its rows under them), the cursor kept."""
        self._width = screen_width
        table = self.query_one(BlotterTable)
        row = table.cursor_row
        rows = align_points([blotter_cells(f, self._when(f.ts)[0]) for f in self.fills])
        cols = blotter_layout(rows, min(self.BOX_WIDTH, screen_width) - BLOTTER_CHROME)
        table.clear(columns=True)
        for i, (key, head, width, justify) in enumerate(cols):
            pad = 0 if i == 0 else 1  # one space between columns (the table's own padding is 0)
            table.add_column(Text(" " * pad + head.rjust(width) if justify == "right" else " " * pad + head), key=key)
        for i, r in enumerate(rows):
            cells = []
            for j, (key, _head, width, justify) in enumerate(cols):
                cell = r[key].rjust(width) if justify == "right" else r[key].ljust(width)
                cells.append(Text((" " if j else "") + cell))
            table.add_row(*cells, key=str(i))
        if rows:
            table.move_cursor(row=min(row, len(rows) - 1))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show(event.cursor_row)

    def _show(self, i: int) -> None:
        box = self.query_one("#blotter-fill", Static)
        if not self.fills:
            box.update(Text("No fills yet.", style="dim"))
            return
        f = self.fills[max(0, min(i, len(self.fills) - 1))]
        when = self.fmt_time(f.ts, "%Y-%m-%d %H:%M:%S")
        box.update(
            Text.assemble(
                (f"fill {f.id} · {when} · {f.liquidity}\n", "dim"),
                (f"{f.action} {f.ticker} {f.side.upper()} x{fmt_count(f.contracts)} @{fmt_price(f.avg_price)}", "bold"),
                f" · value {fmt_cc(f.value_cc)} · fee {fmt_cc(f.fee_cc)}",
            )
        )


@dataclass(frozen=True)
class RejectedLine:
    ts: int
    ticker: str
    source: str
    reason: str
    payload: str
    count: int = 1  # times this (source, ticker, reason) was seen


class RejectedScreen(_ReadOnlyModal):
    """Rows the validator refused, newest first: the counter on the status line made readable."""

    BINDINGS = [Binding("escape,q,x", "dismiss", "Close", id="rejected.close")]

    def __init__(self, rows: list[RejectedLine], total: int, fmt_time) -> None:
        super().__init__()
        self.rows = rows
        self.total = total
        self.fmt_time = fmt_time

    def compose(self) -> ComposeResult:
        with Vertical(id="rejected-box"):
            yield Label(
                f"Rejected rows ({self.total} in all, {len(self.rows)} kinds): never traded on, kept for inspection",
                id="rejected-title",
            )
            table: DataTable[str] = DataTable(id="rejected-table", cursor_type="row", zebra_stripes=True)
            table.add_column("last seen", width=9)
            table.add_column("ticker", width=26)
            table.add_column("times", width=5)
            table.add_column("reason")
            for i, r in enumerate(self.rows):
                table.add_row(self.fmt_time(r.ts), r.ticker or "?", str(r.count), r.reason, key=str(i))
            yield table
            with VerticalScroll(id="rejected-payload-box"):
                yield Static("", id="rejected-payload")
            yield Label("↑/↓ select · the raw payload is below · esc to close", classes="hint")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.focus()
        self._show(0)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show(event.cursor_row)

    def _show(self, i: int) -> None:
        box = self.query_one("#rejected-payload", Static)
        if not self.rows:
            box.update(Text("No rejected rows.", style="dim"))
            return
        r = self.rows[max(0, min(i, len(self.rows) - 1))]
        box.update(
            Text.assemble(
                (f"{r.ticker or '?'} ", "bold"),
                (f"from {r.source}, {r.count} time(s): ", "dim"),
                r.reason,
                "\n",
                (r.payload, ""),
            )
        )


@dataclass(frozen=True)
class MarketInfo:
    """What the detail screen shows of one market (the desk assembles it; no engine here)."""

    ticker: str
    title: str
    status: str
    close_ts: int | None
    volume: Decimal | None
    fee_multiplier: Decimal | None
    bid: Decimal | None
    ask: Decimal | None
    p_hat: Decimal | None
    p_source: str
    signal: str
    quotes: tuple[tuple[int, Decimal | None, Decimal | None], ...]  # (ts, bid, ask), oldest first
    p_hats: tuple[tuple[int, Decimal], ...] = ()  # (ts, p_hat) as the estimate changed


class MarketScreen(_ReadOnlyModal):
    """One market in full: close time, volume, fee multiplier in use, and its quote history
    drawn against p̂."""

    BINDINGS = [Binding("escape,q,enter", "dismiss", "Close", id="market.close")]

    def __init__(self, info: MarketInfo, fmt_time) -> None:
        super().__init__()
        self.info = info
        self.fmt_time = fmt_time

    def compose(self) -> ComposeResult:
        i = self.info

        def p(x):
            return "—" if x is None else f"{x:.2f}"

        facts = Table.grid(padding=(0, 1))
        for _ in range(2):
            facts.add_column(style="dim", no_wrap=True)
            facts.add_column(no_wrap=True)
        facts.add_row("closes", self.fmt_time(i.close_ts) if i.close_ts else "—", "status", i.status)
        facts.add_row(
            "volume",
            "—" if i.volume is None else f"{i.volume.normalize():,f}",
            "fee multiplier",
            "—" if i.fee_multiplier is None else f"{i.fee_multiplier}",
        )
        facts.add_row("bid / ask", f"{p(i.bid)} / {p(i.ask)}", "p̂", f"{p(i.p_hat)} ({i.p_source or 'none'})")
        facts.add_row("signal", i.signal or "—", "", "")
        with Vertical(id="market-box"):
            yield Label(Text(i.ticker, style="bold"), id="market-ticker")
            yield Label(Text(i.title or ""), id="market-title")  # the exchange's words: never markup
            yield Static(facts, id="market-facts")
            yield PriceChart(i.quotes, i.p_hats, fmt_time=self.fmt_time, id="market-chart")
            yield Label("bid–ask range ┃, mid •, p̂ ─ · esc to close", classes="hint")
