from __future__ import annotations

from decimal import Decimal, InvalidOperation

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Markdown

HELP = """\
# Kakashi desk — keys

**Paper trading only.** Nothing here places a real order.

| key | action |
|---|---|
| `p` | pause / resume trading (data keeps flowing) |
| `k` | **kill switch**: immediate, no confirmation; no new orders from that instant; stays thrown across restarts |
| `r` | re-arm the kill switch (asks first) |
| `f` | flatten: sell every paper position into the bids and pause (asks first) |
| `e` | export the post-mortem to `reports/<UTC time>/postmortem.md` |
| `b` | set p̂ for the selected market (overrides the estimator) |
| `s` | sort markets: ticker → edge → quote age |
| `v` | narrow terminals: cycle the lower panel |
| `ctrl+p` | command palette |
| `?` | this help |
| `q` | quit (the ledger is already saved) |

EV = p̂ − ask − fee, per contract. `oracle*` is the simulator's labelled oracle: **simulated**, not a model.
"""


class _ReadOnlyModal(ModalScreen[None]):
    """A modal to read and close: its close keys dismiss it with no result."""

    def action_dismiss(self) -> None:  # type: ignore[override]
        self.dismiss(None)


class HelpScreen(_ReadOnlyModal):
    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "Close", id="help.close")]

    def compose(self) -> ComposeResult:
        with Vertical(id="help-box"):
            yield Markdown(HELP)
            yield Label("esc to close", classes="hint")


class ReportScreen(_ReadOnlyModal):
    """The post-mortem just exported, with its key figures on top."""

    BINDINGS = [Binding("escape,q", "dismiss", "Close", id="report.close")]

    def __init__(self, path, figures: list[tuple[str, str]]) -> None:
        super().__init__()
        self.path = path
        self.figures = figures

    def compose(self) -> ComposeResult:
        from textual.containers import VerticalScroll

        with Vertical(id="report-box"):
            yield Label(f"Post-mortem: {self.path}", id="report-title")
            yield Label("   ".join(f"{k}: [b]{v}[/b]" for k, v in self.figures), id="report-figures")
            with VerticalScroll(id="report-scroll"):
                yield Markdown(self.path.read_text(encoding="utf-8"))
            yield Label("charts: bankroll.png, drawdown.png, edge_hist.png, calibration.png beside it · esc to close",
                        classes="hint")


class ConfirmScreen(ModalScreen[bool]):
    BINDINGS = [Binding("y", "answer(True)", "Yes", id="confirm.yes"),
                Binding("n,escape", "answer(False)", "No", id="confirm.no")]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-box"):
            yield Label(self.question, id="question")
            with Horizontal(id="confirm-buttons"):
                yield Button("Yes (y)", id="yes", variant="error")
                yield Button("No (n)", id="no", variant="primary")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, value: bool) -> None:
        self.dismiss(value)


class EstimateScreen(ModalScreen[Decimal | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="estimate.cancel")]

    def __init__(self, ticker: str, current: Decimal | None) -> None:
        super().__init__()
        self.ticker = ticker
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(id="estimate-box"):
            yield Label(f"p̂ for {self.ticker} (probability of YES, 0–1)", id="estimate-title")
            yield Input(value="" if self.current is None else f"{self.current}", placeholder="e.g. 0.62",
                        id="estimate-input", select_on_focus=True)
            yield Label("", id="estimate-error")
            yield Label("enter to set · esc to cancel", classes="hint")

    def on_mount(self) -> None:
        inp = self.query_one(Input)
        inp.cursor_blink = self.app.cursor_blink  # type: ignore[attr-defined]
        inp.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        try:
            p = Decimal(event.value.strip())
        except InvalidOperation:
            self.query_one("#estimate-error", Label).update("not a number")
            return
        if not (0 <= p <= 1):
            self.query_one("#estimate-error", Label).update("must be between 0 and 1")
            return
        self.dismiss(p)

    def action_cancel(self) -> None:
        self.dismiss(None)
