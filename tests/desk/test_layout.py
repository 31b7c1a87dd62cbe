"""Issue #19 item 8: the desk's layout at 80x24, 100x30, 120x40 and 160x50 (and between): numbers
whole, every market counted, the bankroll and the performance summary reachable, Kalshi's own
titles, the daily stop said in full. Read from the screen as the operator sees it."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from kakashi_tui.adapters.kalshi.client import KalshiClient
from kakashi_tui.adapters.kalshi.source import KalshiSource
from kakashi_tui.adapters.store.controls import Control
from kakashi_tui.adapters.store.writer import Store
from kakashi_tui.core.models import Market, MarketStatus
from kakashi_tui.core.money import fmt_cc, fmt_count
from kakashi_tui.frontends.desk.screens import MarketInfo, MarketScreen, PerformanceScreen, ReportScreen
from kakashi_tui.frontends.desk.widgets.bankroll import BankrollPanel
from kakashi_tui.frontends.desk.widgets.market_detail import MarketDetail
from kakashi_tui.frontends.desk.widgets.markets_table import MarketsTable, ev_cell
from kakashi_tui.frontends.desk.widgets.risk_panel import RiskPanel
from kakashi_tui.frontends.fmt import fmt_age, fmt_price, fmt_signed
from kakashi_tui.testing.fake_kalshi import FakeKalshi, FakeKalshiServer
from kakashi_tui.trading.config import KakashiConfig
from kakashi_tui.trading.engine import Engine, utc_day
from kakashi_tui.trading.view import market_titles
from tests.desk.conftest import Beliefs, KalshiShaped, desk_app, tick
from tests.desk.test_pilot import wait_for

SIZES = [(80, 24), (100, 30), (110, 40), (120, 40), (130, 40), (160, 50)]
DAY_MS = 86_400_000


def region_lines(app, widget) -> list[str]:
    """The lines of ``widget`` as they are on the screen (its border included)."""
    r = widget.region
    strips = app.screen._compositor.render_strips()
    return ["".join(seg.text for seg in strip.crop(r.x, r.right)) for strip in strips[r.y : r.bottom]]


class BigBooks(KalshiShaped):
    """Kalshi-shaped, with what makes numbers wide: prices off the cent grid, deep books with
    quantities in the thousands and millions, and one market whose last quote is 200 days old."""

    def fetch(self):
        batch = super().fetch()
        for i, row in enumerate(r for r in batch.rows if r.snapshot):
            s = row.snapshot
            bid, ask = s["yes_bid"] + Decimal("0.0023"), s["yes_ask"] + Decimal("0.0017")
            s["yes_bid"], s["yes_ask"], s["last"] = bid, ask, bid
            s["yes_bids"] = [{"price": bid - k * Decimal("0.01"), "qty": Decimal("109.25") * 100**k} for k in range(3)]
            s["no_bids"] = [
                {"price": 1 - ask - k * Decimal("0.01"), "qty": Decimal("7.5") + 12_345 * k} for k in range(3)
            ]
            if i == 2:
                s["ts"] = self.t - 200 * DAY_MS
        return batch


@pytest.fixture
def big_engine(tmp_path):
    e = Engine(Store(tmp_path / "big.db"), BigBooks(), [Beliefs()], KakashiConfig().engine_config())
    for _ in range(3):
        tick(e)
    e.last_latency_ms = 12.0
    yield e
    e.store.close()


def market_cells(app, table: MarketsTable) -> dict[str, dict[str, str]]:
    """Each shown market's cells as drawn, cut at the columns' own widths."""
    lines = region_lines(app, table)[2:-1]  # below the border and the header, above the border
    out = {}
    for line in lines:
        body, x = line[1:-1], 0
        cells = {}
        for col, w in table._columns():
            cells[col.key] = body[x : x + w].strip()
            x += w
        if cells.get("ticker"):
            out[cells["ticker"]] = cells
    return out


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_numbers_in_the_markets_and_the_book_are_never_cut(big_engine, tmp_path, size):
    app = desk_app(big_engine, tmp_path)
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        table = app.query_one(MarketsTable)
        shown = market_cells(app, table)
        assert shown, "no market on the screen"
        lines = {m.ticker: m for m in app.view.markets}
        for ticker, cells in shown.items():
            m = lines[ticker]
            want = {k: fmt_price(getattr(m, k)) for k in ("bid", "ask", "last", "p_hat")}
            want |= {k: ev_cell(getattr(m, k), table._pal, m_threshold(app))[0] for k in ("ev_yes", "ev_no")}
            want["age"] = fmt_age(m.age_ms)
            for key, text in want.items():
                if key in cells:
                    assert cells[key] == text, f"{ticker} {key}: {cells[key]!r} drawn for {text!r} at {size}"
        if "age" in table.columns:  # the 200-day-old quote: "4800h" was cut to "48…"
            assert "200d" in {c["age"] for c in shown.values()}
        assert size[0] < 160 or {"p_hat", "age"} <= set(table.columns)
        detail = app.query_one(MarketDetail)
        if not detail.display or size[0] < 110:
            return
        for ticker in list(shown)[:3]:  # each market's book in turn
            table.move_cursor(table.ordered_keys.index(ticker))
            await pilot.pause()
            app.refresh_view()
            await pilot.pause()
            q = app.view.books[ticker][-1]
            numbers = set(re.findall(r"\d[\d.]*", "\n".join(region_lines(app, detail))))
            want = {fmt_price(lv.price) for lv in q.yes_bids} | {fmt_price(1 - lv.price) for lv in q.no_bids}
            want |= {fmt_count(lv.qty) for lv in (*q.yes_bids, *q.no_bids)}
            assert want <= numbers, f"{ticker}: cut or missing at {size}: {sorted(want - numbers)}"
            assert "…" not in "".join(region_lines(app, detail)[:12])


def m_threshold(app) -> Decimal:
    return app.view.edge_threshold


# -- Kalshi's titles: the market's own words, not "Yes · …" on every row ----------------------------
@pytest.mark.parametrize(
    "sub, title, shown, full",
    [
        ("Yes", "Held at 4.25-4.50%", "Held at 4.25-4.50%", "Held at 4.25-4.50%"),
        ("Yes: KXFAKE-26JAN05-T00", "Fake market", "Fake market", "Fake market"),
        ("yes", "", "yes", "yes"),
        ("45° or above", "Highest temperature in NYC?", "45° or above", "45° or above · Highest temperature in NYC?"),
        ("Yes: 45° or above", "NYC high", "45° or above", "45° or above · NYC high"),
        ("Fed holds", "Fed holds", "Fed holds", "Fed holds"),
        ("", "Simulated event #1", "Simulated event #1", "Simulated event #1"),
    ],
)
def test_market_titles_say_what_tells_the_market_apart(sub, title, shown, full):
    m = Market(ticker="KXFAKE-26JAN05-T00", title=title, subtitle=sub, status=MarketStatus.ACTIVE)
    assert market_titles(m) == (shown, full)


async def test_kalshi_titles_from_the_loopback_server(tmp_path):
    """The markets table shows each market's own words as Kalshi sends them (yes_sub_title when it
    tells the market apart, else its title); the detail panel shows both."""
    state = FakeKalshi.with_markets(3)
    state.markets[0].subtitle = "Yes"
    state.markets[2].subtitle = "45° or above"  # markets[1]: the server's "Yes: <ticker>"
    with FakeKalshiServer(state) as srv, KalshiClient(base_url=srv.base_url, backoff_base=0.01) as client:
        engine = Engine(Store(tmp_path / "k.db"), KalshiSource(client), [], KakashiConfig().engine_config())
        try:
            tick(engine)
            app = desk_app(engine, tmp_path)
            async with app.run_test(size=(160, 50)) as pilot:
                await pilot.pause()
                table = app.query_one(MarketsTable)
                titles = {t: c["title"] for t, c in market_cells(app, table).items()}
                assert titles == {
                    "KXFAKE-26JAN05-T00": "Fake market KXFAKE-26JAN05-T00",
                    "KXFAKE-26JAN05-T01": "Fake market KXFAKE-26JAN05-T01",
                    "KXFAKE-26JAN05-T02": "45° or above",
                }
                table.move_cursor(2)
                await pilot.pause()
                lines = region_lines(app, app.query_one(MarketDetail))
                detail = " ".join(" ".join(line[1:-1].split()) for line in lines)
                assert "KXFAKE-26JAN05-T02 45° or above · Fake market KXFAKE-26JAN05-T02" in detail
                await pilot.press("slash", *"fake market")  # the filter reads the whole name
                assert table.row_count == 3
        finally:
            engine.store.close()


# -- the risk panel: the daily stop said in full at every size ------------------------------------
REASON = "operator: spreads blew out on the CPI print, stepping away until the desk lead reviews it"


def risk_text(app) -> str:
    """The risk panel's words, its lines joined (a sentence wrapped at a space reads whole)."""
    lines = region_lines(app, app.query_one(RiskPanel))
    return " ".join(" ".join(line[1:-1].split()) for line in lines[1:-1])


@pytest.mark.parametrize("size", [(80, 24), (100, 30), (120, 40), (160, 50)], ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("worst", [False, True], ids=["stop", "stop+kill+past-cap"])
async def test_daily_stop_is_said_whole_in_the_risk_panel(engine, tmp_path, size, worst):
    """The daily stop alone (positions held), and with the most the panel has to say: a loss past
    the cap and a kill switch thrown with a long reason (positions flattened). The sentence is
    never cut, nor the loss, the kill switch and the cap."""
    engine.store.set_control(Control.DAILY_STOP_DAY, utc_day(engine.source.now_ms()))
    if worst:
        engine.store.set_control(Control.DAY_START_EQUITY, engine.equity() + 1_000_000)  # $100 down
        engine.kill(REASON)
    app = desk_app(engine, tmp_path, on_daily_stop="flatten" if worst else "hold")
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        if app.has_class("-narrow"):
            await pilot.press("v", "v")  # positions, bankroll, risk
            await pilot.pause()
        text = risk_text(app)
        said = "HIT: no new trades until 00:00 UTC; positions " + ("flattened" if worst else "held")
        assert said in text, text
        assert "Loss today" in text and "Daily cap" in text
        assert "Kill switch " + ("THROWN" if worst else "armed") in text
        if worst and size[0] >= 100:  # room for the rest too
            assert "loss past the cap: marks moved after" in text and "operator: spreads" in text


# -- every market counted; more of them at 100x30 --------------------------------------------------
async def test_markets_are_counted_and_all_eight_show_at_100x30(engine, tmp_path):
    app = desk_app(engine, tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        table = app.query_one(MarketsTable)
        n = len(app.view.markets)
        assert n == 8 and set(market_cells(app, table)) == {m.ticker for m in app.view.markets}
        assert region_lines(app, table)[-1].endswith(" 8 markets ─╯")
        await pilot.resize_terminal(100, 26)  # four rows fewer: not all of them fit
        await pilot.pause()
        shown = len(market_cells(app, table))
        assert 0 < shown < n and region_lines(app, table)[-1].endswith(f" 1–{shown} of {n} ↕ ─╯")
        await pilot.press("end")  # the last market: the rows in sight move with it
        await pilot.pause()
        assert region_lines(app, table)[-1].endswith(f" {n - shown + 1}–{n} of {n} ↕ ─╯")
        assert app.selected_ticker() in market_cells(app, table)


# -- the bankroll within reach at every size -------------------------------------------------------
def bankroll_figures(v) -> dict[str, str]:
    return {
        "Cash": fmt_cc(v.cash_cc),
        "Equity": fmt_cc(v.equity_cc),
        "Realised": fmt_signed(v.realized_cc),
        "Unrealised": fmt_signed(v.unrealized_cc),
        "Fees": fmt_cc(v.fees_cc),
    }


@pytest.mark.parametrize("size", [(80, 24), (100, 30), (120, 40), (160, 50)], ids=lambda s: f"{s[0]}x{s[1]}")
async def test_bankroll_is_within_reach_at_every_size(engine, tmp_path, size):
    """Realised PnL and fees could not be seen at 100x30 or 120x40: there `v` now puts the bankroll in
    the risk caps' place (and back); at 80x24 it is the second lower panel; at 160x50 always there."""
    app = desk_app(engine, tmp_path)
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        panel = app.query_one("#bankroll-panel")
        presses = 0
        while not panel.region.area and presses < 4:
            await pilot.press("v")
            await pilot.pause()
            presses += 1
        assert panel.region.area, f"no key shows the bankroll at {size}"
        assert presses == {80: 1, 100: 1, 120: 1, 160: 0}[size[0]]
        text = "\n".join(region_lines(app, app.query_one(BankrollPanel)))
        for label, figure in bankroll_figures(app.view).items():
            assert re.search(rf"{label}\s+{re.escape(figure)}\b", text), (label, figure, text)
        if size[0] in (100, 120):  # and `v` again brings the risk caps back
            await pilot.press("v")
            await pilot.pause()
            assert not panel.region.area and app.query_one(RiskPanel).region.area


# -- the performance summary, reachable at every size --------------------------------------------
@pytest.mark.parametrize("size", [(80, 24), (100, 30), (120, 40), (160, 50)], ids=lambda s: f"{s[0]}x{s[1]}")
async def test_performance_summary_opens_with_m_at_every_size(engine, tmp_path, size):
    """Today, this week, since start; realised, unrealised, total, fees, win rate: as the service summed
    them from the ledger, every figure whole, in a box that fits the terminal; `m` is in the footer."""
    app = desk_app(engine, tmp_path)
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        footer = region_lines(app, app.query_one("Footer"))[0]
        assert "m PnL" in footer and "q Quit" in footer and "? Help" in footer  # all of it fits
        await pilot.press("m")
        await pilot.pause()
        assert isinstance(app.screen, PerformanceScreen)
        box = app.screen.query_one("#performance-box")
        assert box.region.right <= size[0] and box.region.bottom <= size[1]
        lines = region_lines(app, box)
        text = "\n".join(lines)
        perf = app.view.performance
        assert [p.name for p in perf.periods] == ["Today", "This week", "Since start"]
        assert re.search(r"Today\s+This week\s+Since start", text)
        rows = {
            "Realised": [fmt_signed(p.realized_cc) for p in perf.periods],
            "Unrealised": [fmt_signed(p.unrealized_cc) for p in perf.periods],
            "Total": [fmt_signed(p.total_cc) for p in perf.periods],
            "Fees": [fmt_cc(p.fees_cc) for p in perf.periods],
            "Closed trades": [str(p.trades) for p in perf.periods],
            "Win rate": [p.win_rate for p in perf.periods],
        }
        for label, cells in rows.items():
            line = next(x for x in lines if x[1:].lstrip().startswith(label + " "))
            assert line.split(label, 1)[1].strip("█ ").split() == " ".join(cells).split(), (label, line)
        v = app.view  # since the start, the figures are the bankroll's
        assert rows["Unrealised"][2] == fmt_signed(v.unrealized_cc) and rows["Fees"][2] == fmt_cc(v.fees_cc)
        assert rows["Total"][0] == fmt_signed(v.today_pnl_cc)  # the run began today
        await pilot.press("m")
        assert not isinstance(app.screen, PerformanceScreen)


async def test_performance_summary_follows_the_views(engine, tmp_path):
    app = desk_app(engine, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("m")
        await pilot.pause()
        before = app.view.clock_ms
        assert "as of 2026-01-05 00:40:00 UTC" in screen_words(app)
        for _ in range(3):
            app.service.step()
        app.refresh_view()
        assert await wait_for(pilot, lambda: app.view.clock_ms > before and "00:43:00" in screen_words(app))
        assert isinstance(app.screen, PerformanceScreen)


def screen_words(app) -> str:
    box = app.screen.query_one("#performance-box")
    return " ".join(" ".join(line.strip("█▀▄ ").split()) for line in region_lines(app, box))


async def test_e_on_the_performance_summary_exports_the_post_mortem(engine, tmp_path, no_charts):
    """`e` left the footer (80 columns hold no more); the summary says where it went, and it works there."""
    app = desk_app(engine, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("m")
        await pilot.pause()
        assert "e exports the full post-mortem" in screen_words(app)
        await pilot.press("e")
        await app.workers.wait_for_complete()
        assert await wait_for(pilot, lambda: isinstance(app.screen, ReportScreen))
        assert app.last_export is not None and app.last_export.exists()


async def test_a_title_with_brackets_is_shown_as_written(engine, tmp_path):
    """The market screen shows the exchange's title in full, now with its subtitle: text, not markup
    (a title holding "[/b]" stopped the desk with a MarkupError)."""
    app = desk_app(engine, tmp_path)
    title = "45° or above [/b] · NYC [bold]high[/bold]"
    info = MarketInfo("KXHIGHNY-26NOV27-T45", title, "active", None, None, None, None, None, None, "", "", ())
    async with app.run_test(size=(120, 40)) as pilot:
        await app.push_screen(MarketScreen(info, lambda ms: ""))
        await pilot.pause()
        assert title in "\n".join(region_lines(app, app.screen.query_one("#market-title")))
