"""Issue #19 (9, 10), driven by keys: what is typed fast lands where it was meant, esc clears the
filter, p̂ only for open markets, EVs with the digits that decide, an outside pause, exports
beside the database, settlement corrections and sub-penny limits said as they are."""

from __future__ import annotations

from decimal import Decimal

from textual import events

from kakashi_tui.core.models import Side, TradeDecision
from kakashi_tui.frontends.desk.screens import EstimateScreen
from kakashi_tui.frontends.desk.widgets.decision_log import DecisionLog
from kakashi_tui.frontends.desk.widgets.markets_table import MarketsTable
from kakashi_tui.frontends.desk.widgets.status_bar import StatusBar
from kakashi_tui.frontends.fmt import fmt_ev, fmt_threshold
from kakashi_tui.frontends.logfile import OperatorLog
from kakashi_tui.trading.service import send_request
from tests.desk.conftest import KALSHI_MARKETS, desk_app, desk_engine, kalshi_engine, tick
from tests.desk.test_desk_trust import screen_text
from tests.desk.test_pilot import wait_for
from tests.integration.test_operator_facts import corrected_engine
from tests.strategy_oracle import net_ev

SIZE = (120, 40)
NAMES = {".": "full_stop", "/": "slash", "\n": "enter", "\x1b": "escape"}


def type_fast(app, keys) -> None:
    """Keys as a fast typist (or a paste into the terminal) sends them: all queued before the
    desk handles the first (``pilot.press`` waits for the desk after each key)."""
    for k in keys:
        key = NAMES.get(k, k)
        ev = events.Key(key, k if len(k) == 1 else None)
        ev.set_sender(app)
        app._driver.send_message(ev)


async def test_p_hat_typed_fast_is_set_whole(engine, tmp_path):
    app = desk_app(engine, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        ticker = app.selected_ticker()
        type_fast(app, ["b", *"0.65", "enter"])
        assert await wait_for(pilot, lambda: app.service.apply_pending() > 0)
        assert engine.estimates[ticker].p_hat == Decimal("0.65")  # not the old value, not "0.6"
        assert not isinstance(app.screen, EstimateScreen)


async def test_p_hat_typed_fast_after_moving_is_for_the_market_moved_to(engine, tmp_path):
    app = desk_app(engine, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one(MarketsTable)
        second = table.ordered_keys[1]
        type_fast(app, ["down", "b", *"0.3", "\x1b"])  # esc: nothing set
        assert await wait_for(pilot, lambda: app.selected_ticker() == second and len(app.screen_stack) == 1)
        type_fast(app, ["b", *"0.31", "enter"])
        assert await wait_for(pilot, lambda: app.service.apply_pending() > 0)
        assert engine.estimates[second].p_hat == Decimal("0.31")


async def test_filter_typed_fast_keeps_every_letter(tmp_path):
    e = kalshi_engine(tmp_path / "k.db")
    app = desk_app(e, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one(MarketsTable)
        type_fast(app, ["/", *"highny"])
        assert await wait_for(pilot, lambda: table.filter_text == "highny"), (table.filter_text, app.focused)
        assert table.ordered_keys == sorted(t for t, *_ in KALSHI_MARKETS if "HIGHNY" in t)
    e.store.close()


async def test_kill_typed_while_the_box_opens_is_immediate(engine, tmp_path):
    app = desk_app(engine, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        type_fast(app, ["b", "k"])
        assert await wait_for(pilot, lambda: engine.killed)
        assert await wait_for(pilot, lambda: getattr(app.focused, "id", "") == "estimate-input")
        assert isinstance(app.screen, EstimateScreen) and app.focused.value != "k"  # the kill switch's key, not text


async def test_esc_clears_a_kept_filter_from_the_table_or_the_log(tmp_path):
    e = kalshi_engine(tmp_path / "k.db")
    app = desk_app(e, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one(MarketsTable)
        await pilot.press("slash", *"highny", "enter")  # enter keeps the filter, back to the table
        assert table.has_focus and table.row_count == 3
        await pilot.press("escape")
        assert table.row_count == len(KALSHI_MARKETS) and table.border_title == "Markets"
        assert not app.query_one("#find").display and table.has_focus
        await pilot.press("slash", *"lakers", "enter", "l")  # from the log too
        assert table.row_count == 1
        await pilot.press("escape")
        assert table.row_count == len(KALSHI_MARKETS)
        await pilot.press("slash", *"fed", "enter", "question_mark", "escape")  # a dialog's esc is the dialog's
        assert len(app.screen_stack) == 1 and table.row_count == 3
    e.store.close()


async def test_a_kept_filter_counts_the_markets_there_are(tmp_path):
    e = kalshi_engine(tmp_path / "k.db")
    gone = "KXHIGHNY-26NOV27-B47.5"
    fetch = e.source.fetch

    def settling():  # the exchange determines one of the filtered markets
        batch = fetch()
        for row in batch.rows:
            if row.market.get("ticker") == gone:
                row.market.update(status="determined", result="no")
        return batch

    app = desk_app(e, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one(MarketsTable)
        await pilot.press("slash", *"highny", "enter")
        assert table.border_title.endswith(f": 3/{len(KALSHI_MARKETS)}")
        e.source.fetch = settling
        tick(e)
        app.refresh_view()
        await pilot.pause()
        assert gone not in table.ordered_keys and table.row_count == 2
        assert table.border_title.endswith(f": 2/{len(KALSHI_MARKETS) - 1}")
    e.store.close()


def closing(e, ticker: str, status: str = "closed", result: str | None = None) -> None:
    """From the next fetch on, the exchange says ``ticker`` is ``status``."""
    fetch = e.source.fetch

    def fetch_closed():
        batch = fetch()
        for row in batch.rows:
            if row.market.get("ticker") == ticker:
                row.market.update(status=status, result=result)
        return batch

    e.source.fetch = fetch_closed


async def test_p_hat_refused_for_a_market_that_closed_while_typing(tmp_path):
    e = kalshi_engine(tmp_path / "k.db")
    app = desk_app(e, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        ticker = app.selected_ticker()
        before = e.estimates[ticker]
        await pilot.press("b", *"0.65")
        closing(e, ticker, "determined", "no")
        tick(e)
        app.refresh_view()  # the view that says it settled reaches the open dialog
        await pilot.pause()
        assert isinstance(app.screen, EstimateScreen) and "no longer open (settled)" in app.screen.error
        await pilot.press("enter")
        assert isinstance(app.screen, EstimateScreen)  # nothing to set: esc closes it
        await pilot.press("escape")
        assert app.service.apply_pending() == 0 and e.estimates.get(ticker, before) == before
    e.store.close()


async def test_p_hat_refused_by_the_engine_when_the_desk_had_not_seen_it_close(tmp_path):
    e = kalshi_engine(tmp_path / "k.db")
    app = desk_app(e, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        ticker = app.selected_ticker()
        await pilot.press("b", *"0.65")
        closing(e, ticker)
        tick(e)  # closed, and no view has said so yet
        await pilot.press("enter")
        assert not isinstance(app.screen, EstimateScreen) and app.service.apply_pending() == 1
        assert e.estimates[ticker].source != "operator"
        want = f"p̂ for {ticker} not set: the market closed before it applied"
        assert await wait_for(pilot, lambda: want in app.notes)
        app.refresh_view()
        await pilot.pause()
        assert app.selected_ticker() == ticker  # closed, not settled: still on the table
        await pilot.press("b")  # now the desk knows: its p̂ is not asked for
        assert len(app.screen_stack) == 1
    e.store.close()


# -- EVs with the digits that decide -------------------------------------------------------------
def test_ev_shows_the_digits_that_decide_against_the_threshold():
    t = Decimal("0.03")
    cases = {  # ev -> shown under "≥ +0.03" (ev >= 0.03 trades)
        "0.0298": "+0.0298",  # the cent would say +0.03: it does not trade
        "0.0295": "+0.0295",
        "0.02999999": "+0.0299",  # past the centicent: rounded toward its own side
        "0.03": "+0.03",  # trades: the cent says so
        "0.0301": "+0.03",
        "0.0349": "+0.03",
        "0.0251": "+0.025",  # below: the cent would round it up onto the threshold
        "0.1": "+0.10",
        "-0.0298": "-0.03",
    }
    for ev, shown in cases.items():
        assert fmt_ev(Decimal(ev), t) == shown, ev
        assert (Decimal(fmt_ev(Decimal(ev), t)) >= t) == (Decimal(ev) >= t)  # never the other side
    assert fmt_ev(Decimal("0.0298")) == "+0.03"  # no threshold to decide against: the cent
    # a threshold finer than the cent: shown whole, and EVs against it
    assert fmt_threshold(Decimal("0.025")) == "+0.025" and fmt_threshold(Decimal("0.03")) == "+0.03"
    assert fmt_ev(Decimal("0.025"), Decimal("0.025")) == "+0.025"  # trades (the cent said +0.02)
    assert fmt_ev(Decimal("0.0249"), Decimal("0.025")) == "+0.02"


async def test_an_ev_just_under_the_threshold_shows_why_there_is_no_signal(tmp_path):
    e = kalshi_engine(tmp_path / "k.db")
    ticker = "KXFEDDECISION-26DEC-H0"  # a tight book: nothing but the edge stands in the way
    s = e.quotes[ticker]
    cost = Decimal("0.5") - net_ev(Decimal("0.5"), Side.YES, s.yes_ask, Decimal(1), e.fee_terms(ticker), s.ts)
    e.set_estimate(ticker, cost + Decimal("0.0298"))  # EV YES 0.0298 under a 0.03 threshold
    app = desk_app(e, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        [line] = [m for m in app.view.markets if m.ticker == ticker]
        assert line.ev_yes == Decimal("0.0298") and line.signal == ""
        row = next(r for r in screen_text(app).splitlines() if ticker in r)
        assert "+0.0298" in row and "+0.03 " not in row
        assert "≥ +0.03 /contract" in screen_text(app)
        log = app.query_one(DecisionLog)
        log.threshold = Decimal("0.03")
        log.add_decision(s.ts, ticker, "yes", Decimal(5), s.yes_ask, Decimal("0.0298"), False, "test")
        assert any("EV +0.0298" in entry.text for entry in log.entries())
    e.store.close()


def test_the_log_file_says_the_digits_that_decide(tmp_path):
    log = OperatorLog(tmp_path / "k.log")
    d = TradeDecision(
        ticker="T",
        ts=0,
        side=Side.YES,
        contracts=Decimal(3),
        limit_price=Decimal("0.41"),
        best_ask=Decimal("0.41"),
        p_hat=Decimal("0.5"),
        ev_per_contract=Decimal("0.0298"),
        worst_case_cc=12_300,
        reason="test",
    )
    log.decision(d, Decimal("0.03"))
    log.close()
    assert "EV +0.0298 rejected: test" in (tmp_path / "k.log").read_text()


# -- an outside pause --------------------------------------------------------------------------
async def test_an_outside_pause_is_seen_while_halted(engine, tmp_path):
    app = desk_app(engine, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("k")
        app.service.step()
        send_request(str(engine.store.path), "pause")  # `kakashi pause` from another terminal
        app.service.step()
        app.refresh_view()
        await pilot.pause()
        bar = str(app.query_one(StatusBar).render())
        assert "HALTED (kill switch: operator; also paused)" in bar
        assert "paused from outside this desk" in app.notes
        send_request(str(engine.store.path), "resume")
        app.service.step()
        app.refresh_view()
        await pilot.pause()
        assert "also paused" not in str(app.query_one(StatusBar).render())
        assert app.notes[-1] == "resumed from outside this desk"
        await pilot.press("p")  # the desk's own pause is no outside news
        app.service.step()
        app.refresh_view()
        await pilot.pause()
        assert app.notes[-1] == "paused: no new decisions" and app.view.state.endswith("; also paused)")


# -- exports beside the database -----------------------------------------------------------------
async def test_export_goes_beside_the_database_and_says_where(tmp_path, monkeypatch, no_charts):
    home, elsewhere = tmp_path / "desk", tmp_path / "elsewhere"
    home.mkdir()
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the desk started from another folder
    e = desk_engine(home / "k.db", ticks=5)
    app = desk_app(e, tmp_path, reports_dir=None)  # no folder configured
    said: list[str] = []  # every notification, kept (one shown expires: on a loaded machine, before it is read)
    shown = app.notify
    app.notify = lambda message, *a, **kw: (said.append(str(message)), shown(message, *a, **kw))[1]  # type: ignore[method-assign]
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("e")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.last_export is not None and app.last_export.parent.parent == home / "reports"
        assert not (elsewhere / "reports").exists()
        # the notification comes from the export's thread (call_from_thread, done when the worker is)
        assert f"written to {app.last_export}" in said, said  # the whole path, in the notification
        assert f"exported {app.last_export}" in app.notes
    e.store.close()


# -- a settlement's correction --------------------------------------------------------------------
async def test_a_settlement_correction_is_noted_on_the_desk_and_in_the_log_file(tmp_path):
    e = corrected_engine(tmp_path / "k.db")
    tick(e)
    tick(e)  # paid at determined
    log = OperatorLog(tmp_path / "kakashi.log")
    app = desk_app(e, tmp_path, log=log)
    async with app.run_test(size=SIZE) as pilot:
        app.service.step()  # amended: the payment is taken back
        want = "settlement of T corrected: -$"
        assert await wait_for(pilot, lambda: any(n.startswith(want) for n in app.notes))
    log.close()
    text = (tmp_path / "kakashi.log").read_text()
    assert "settled 0 corrected 1 (T -$" in text and want in text
    e.store.close()


# -- sub-penny limits ---------------------------------------------------------------------------
def decision(limit: str) -> TradeDecision:
    return TradeDecision(
        ticker="KXTAIL",
        ts=0,
        side=Side.YES,
        contracts=Decimal(100),
        limit_price=Decimal(limit),
        best_ask=Decimal(limit),
        p_hat=Decimal("0.05"),
        ev_per_contract=Decimal("0.04"),
        worst_case_cc=300,
        accepted=True,
        reason="accepted",
    )


async def test_a_sub_penny_limit_is_shown_whole(engine, tmp_path):
    log = OperatorLog(tmp_path / "k.log")
    for limit in ("0.0030", "0.42"):
        log.decision(decision(limit))
    log.close()
    text = (tmp_path / "k.log").read_text()
    assert "@<=0.0030 EV" in text and "@<=0.42 EV" in text and "@<=0.00 " not in text
    app = desk_app(engine, tmp_path)
    async with app.run_test(size=SIZE):
        panel = app.query_one(DecisionLog)
        d = decision("0.0030")
        panel.add_decision(d.ts, d.ticker, "yes", d.contracts, d.limit_price, d.ev_per_contract, True, d.reason)
        assert any(e.text.startswith("@≤0.0030 EV") for e in panel.entries())
