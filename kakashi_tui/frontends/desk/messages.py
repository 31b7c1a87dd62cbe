from __future__ import annotations

from textual.message import Message

from kakashi_tui.trading.view import DeskView


class EngineUpdated(Message):
    """The service published a view (after a tick, or a command): here is the new picture."""

    def __init__(self, view: DeskView) -> None:
        super().__init__()
        self.view = view

    def can_replace(self, message: Message) -> bool:
        # A slow UI only ever renders the latest state.
        return isinstance(message, EngineUpdated)


class Noted(Message):
    """A line for the decision log's notes (a command the service applied, say)."""

    def __init__(self, text: str, category: str = "EVENT") -> None:
        super().__init__()
        self.text = text
        self.category = category  # its line in the log file: COMMAND (the operator's) or EVENT


class AlertDue(Message):
    """An alert a service report brings (a fill, a day's summary): raised on the desk's thread."""

    def __init__(self, kind: str, text: str, severity: str) -> None:
        super().__init__()
        self.kind = kind
        self.text = text
        self.severity = severity


class OrderEnded(Message):
    """Resting orders a service report says ended unfilled (``TickReport.order_notes``): rejected,
    expired or cancelled, each with why: the decision log's lines."""

    def __init__(self, notes: tuple) -> None:
        super().__init__()
        self.notes = notes


class OrderFilled(Message):
    """Paper orders' fills a service report brings (``TickReport.order_fills``): the decision log's lines."""

    def __init__(self, fills: tuple) -> None:
        super().__init__()
        self.fills = fills
