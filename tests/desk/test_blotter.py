"""#19: the fills blotter (`t`), read from the database's fills table when it opens: every fill,
newest first, each cell whole, at 80x24 and wider; the selected fill in full below the table."""

from __future__ import annotations

import re
import sqlite3
from decimal import Decimal

import pytest

from kakashi_tui.core.money import fmt_cc, fmt_count, hundredths_to_count
from kakashi_tui.frontends.desk.screens import BlotterScreen
from kakashi_tui.frontends.fmt import fmt_price
from tests.conftest import make_engine
from tests.desk.conftest import desk_app, desk_engine, kalshi_engine, tick
from tests.desk.test_layout import region_lines
from tests.desk.test_pilot import wait_for


def db_fills(db) -> list[tuple]:
    with sqlite3.connect(db) as c:
        return c.execute(
            "SELECT id, ts, ticker, side, action, contracts_hundredths, value_cc, fee_cc FROM fills"
            " ORDER BY ts DESC, id DESC"
        ).fetchall()


def table_lines(app) -> list[str]:
    return region_lines(app, app.screen.query_one("#blotter-table"))


def row_of(fill) -> list[str]:
    """A fill as its row reads on the screen, without its time: ticker, side, b/s, qty, price."""
    _id, _ts, ticker, side, action, h, value, _fee = fill
    avg = Decimal(value) / Decimal(100 * h)
    return [ticker, side.upper(), action, fmt_count(hundredths_to_count(h)), fmt_price(avg)]


async def open_blotter(app, pilot) -> None:
    await pilot.press("t")
    await app.workers.wait_for_complete()
    assert await wait_for(pilot, lambda: isinstance(app.screen, BlotterScreen))
    await pilot.pause()


@pytest.fixture
def many(tmp_path):
    """A sim run long enough for more fills than 80x24 shows at once (21 by tick 300)."""
    e = desk_engine(tmp_path / "many.db", ticks=300)
    yield e
    e.store.close()


async def test_t_opens_the_blotter_newest_first_scrolls_and_esc_closes(many, tmp_path):
    app = desk_app(many, tmp_path)
    fills = db_fills(tmp_path / "many.db")
    assert len(fills) > 20
    async with app.run_test(size=(80, 24)) as pilot:
        await open_blotter(app, pilot)
        box = app.screen.query_one("#blotter-box")
        assert box.region.right <= 80 and box.region.bottom <= 24
        title = region_lines(app, app.screen.query_one("#blotter-title"))[0]
        assert f"Fills: {len(fills)} in all, newest first, times UTC" in title
        lines = table_lines(app)
        assert re.search(r"time\s+ticker\s+side\s+b/s\s+qty\s+price\s+value\s+fee\s+liq", lines[0])
        shown = [ln.split() for ln in lines[1:] if ln.strip()]
        assert len(shown) < len(fills)  # more fills than rows: it scrolls
        for words, fill in zip(shown, fills, strict=False):  # newest first, each cell whole
            assert words[0] == "01-05" and re.fullmatch(r"\d\d:\d\d:\d\d", words[1])
            assert words[2:7] == row_of(fill) and words[7] == fmt_cc(fill[6]) and words[8] == fmt_cc(fill[7])
            assert words[9] == "taker"
        detail = " ".join(" ".join(region_lines(app, app.screen.query_one("#blotter-fill"))).split())
        newest = fills[0]
        assert f"fill {newest[0]} " in detail and f"{newest[4]} {newest[2]} {newest[3].upper()} x" in detail
        table = app.screen.query_one("#blotter-table")
        await pilot.press("end")  # the oldest
        await pilot.pause()
        assert table.cursor_row == len(fills) - 1 and table.scroll_y > 0
        oldest = fills[-1]
        detail = " ".join(" ".join(region_lines(app, app.screen.query_one("#blotter-fill"))).split())
        assert f"fill {oldest[0]} · 2026-01-05 " in detail and f"· fee {fmt_cc(oldest[7])}" in detail
        assert row_of(oldest) == [w for ln in table_lines(app) if oldest[2] in ln for w in ln.split()][2:7]
        await pilot.press("pageup")
        await pilot.pause()
        assert table.cursor_row < len(fills) - 1
        await pilot.press("home")  # the newest again
        await pilot.pause()
        assert table.cursor_row == 0 and table.scroll_y == 0
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, BlotterScreen)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=lambda s: f"{s[0]}x{s[1]}")
async def test_kalshi_tickers_whole_in_the_blotter(tmp_path, size):
    """Kalshi's long tickers are never cut: at 80 columns the value column gives way (the line
    under the table still has it); at 120 every column is there with its long header."""
    e = kalshi_engine(tmp_path / "k.db")
    app = desk_app(e, tmp_path)
    fills = db_fills(tmp_path / "k.db")
    try:
        async with app.run_test(size=size) as pilot:
            await open_blotter(app, pilot)
            lines = table_lines(app)
            head = lines[0].split()
            if size[0] == 80:
                assert head == ["time", "ticker", "side", "b/s", "qty", "price", "fee", "liq"]
            else:
                assert " ".join(head) == "time ticker side buy/sell quantity avg price value fee liquidity"
            for fill in fills:
                line = next(ln for ln in lines if f" {fill[2]} " in ln)  # the whole ticker
                assert line.split()[2:7] == row_of(fill) and fmt_cc(fill[7]) in line.split()
            detail = " ".join(" ".join(region_lines(app, app.screen.query_one("#blotter-fill"))).split())
            assert f"· taker {fills[0][4]} {fills[0][2]} {fills[0][3].upper()} x" in detail
            assert f"· value {fmt_cc(fills[0][6])} · fee {fmt_cc(fills[0][7])}" in detail
            await pilot.press("t")  # `t` closes it too
            await pilot.pause()
            assert not isinstance(app.screen, BlotterScreen)
    finally:
        e.store.close()


async def test_an_empty_blotter_says_so(tmp_path):
    e = make_engine(tmp_path / "e.db")
    tick(e)
    app = desk_app(e, tmp_path)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await open_blotter(app, pilot)
            assert "Fills: 0 in all" in region_lines(app, app.screen.query_one("#blotter-title"))[0]
            assert "No fills yet." in " ".join(region_lines(app, app.screen.query_one("#blotter-fill")))
    finally:
        e.store.close()
