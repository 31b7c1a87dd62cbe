"""The desk's modal screens: help, confirmations (default No), p̂ entry (validated in place),
the post-mortem just written, rejected rows and a market's detail."""

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

from kakashi_tui.core.money import fmt_cc
from kakashi_tui.frontends.desk.widgets.base import Palette
from kakashi_tui.frontends.desk.widgets.price_chart import PriceChart
from kakashi_tui.frontends.fmt import fmt_signed, fmt_utc
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
| `b` | set p̂ for the selected open market (a number strictly between 0 and 1) |
| `enter` | the selected market's detail: close time, volume, fee, price chart with p̂ |
| `/` | filter markets by ticker or title (esc clears) |
| `s` | sort markets: ticker → edge → quote age (the header shows ▲/▼) |
| `x` | rejected rows: time, ticker, reason, raw payload |
| `l` | focus the decision log (PgUp/PgDn scroll; `o` rejections only, `n` desk notes and alerts only) |
| `tab` | move focus between the markets and the log |
| `v` | below 130 columns: the lower panels in turn (100–129 columns: the risk caps or the bankroll) |
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
