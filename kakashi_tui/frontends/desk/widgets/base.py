"""What the desk's widgets share: colours from the theme, and a panel that repaints only when its part
of the view changed.
"""

from __future__ import annotations

from textual.reactive import reactive
from textual.widgets import Static

from kakashi_tui.trading.view import DeskView


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
