"""Issue #19, first slice: panels that never freeze silently, and liveness the operator can see."""

from __future__ import annotations

from textual.screen import ModalScreen

from kakashi_tui.tui.widgets import BankrollPanel, DecisionLog, EquityChart, MarketDetail, PositionsPanel, RiskPanel
from tests.tui.conftest import desk_app
from tests.tui.test_pilot import wait_for

SIZE = (120, 40)
PANELS = (MarketDetail, PositionsPanel, BankrollPanel, EquityChart, RiskPanel, DecisionLog)


def panel_ticks(app) -> dict[str, int]:
    """The tick of the view each panel last drew."""
    out = {}
    for cls in PANELS:
        v = app.query_one(cls).view
        out[cls.__name__] = v.tick if v is not None else -1
    return out


async def _open_close(app, pilot, open_keys: tuple[str, ...], close_key: str) -> bool:
    """Open a dialog with ``open_keys``, close it with ``close_key``: True if one opened."""
    await pilot.press(*open_keys)
    opened = await wait_for(pilot, lambda: isinstance(app.screen, ModalScreen), tries=50)
    if opened:
        await pilot.press(close_key)
        await wait_for(pilot, lambda: not isinstance(app.screen, ModalScreen), tries=50)
    return opened


async def test_panels_keep_moving_after_every_dialog_closes(engine, tmp_path):
    """Open and close every dialog many times while the service ticks: after each close, every
    panel catches up with the newest view. A panel step scheduled with ``call_after_refresh``
    while a dialog was on top lived on that dialog's screen and died with it, and the panels
    stopped for good while the status line kept ticking (4 times in 6 after r, y)."""
    app = desk_app(engine, tmp_path, autostart=True, interval=0.25)
    dialogs = [(("question_mark",), "escape"), (("b",), "escape"), (("x",), "escape"),
               (("enter",), "escape"), (("f",), "n"), (("k", "r"), "y"), (("q",), "n")]
    async with app.run_test(size=SIZE) as pilot:
        assert await wait_for(pilot, lambda: app.view is not None and app.view.tick > 42)
        opened = 0
        for round_ in range(3):
            for keys, close in dialogs:
                opened += await _open_close(app, pilot, keys, close)
                target = app.view.tick
                caught_up = await wait_for(pilot, lambda: min(panel_ticks(app).values()) >= target, tries=150)
                assert caught_up, f"round {round_}, after {keys}: panels {panel_ticks(app)} behind view {target}"
        assert opened >= 3 * 5  # every dialog that can open did (flatten and quit need open positions)
        await app._stop_and_exit()
