from __future__ import annotations

from textual.message import Message

from kakashi_tui.view import DeskView


class EngineUpdated(Message):
    """The engine finished a tick (or a command changed its state): here is the new picture."""

    def __init__(self, view: DeskView) -> None:
        super().__init__()
        self.view = view

    def can_replace(self, message: Message) -> bool:
        # A slow UI only ever renders the latest state.
        return isinstance(message, EngineUpdated)


class EngineFailed(Message):
    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error
