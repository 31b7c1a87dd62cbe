"""The strategy's resting orders in the engine (issue #23 item 2, ``[strategy] mode``): a post is a
GTC or GTD order at the post price, post-only per config, stored, reserved in the caps and handed
to its market's fill models; a post whose price no longer stands is cancelled and decided afresh
once done; GTD posts expire; a post-only order the book crossed is rejected and the log says so;
the kill switch, the stops and a flatten cancel posts after the cancel latency. Scripted feeds
(test_engine's) where a test needs a book to move; the simulator for the done-means run."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from kakashi_tui.adapters.source import FetchBatch, TapeBook, TapePrint
from kakashi_tui.adapters.store.controls import Control
from kakashi_tui.adapters.tape import book_quote
from kakashi_tui.core.models import Side
from kakashi_tui.core.queue import Print
from kakashi_tui.core.risk import RiskLimits
from kakashi_tui.core.strategy import StrategyConfig
from kakashi_tui.frontends.journal import Journal
from kakashi_tui.trading.config import KakashiConfig, SimSection, StrategySection
from kakashi_tui.trading.engine import EngineConfig
from tests.conftest import make_engine
from tests.conftest import query as q
from tests.integration.test_engine import NOW, fake_engine, row

MIN = 60_000


def cfg(**strategy) -> EngineConfig:
    return EngineConfig(
        insert_latency_ms=500, cancel_latency_ms=500, strategy=StrategyConfig(**{"mode": "post"} | strategy)
    )


def at(k: int) -> int:
    return NOW + k * MIN


def sold_yes(ts: int, yes_cc: int, hundredths: int, ticker: str = "T") -> TapePrint:
    """A print whose taker sold YES (went long NO): it hits YES bids."""
    return TapePrint(ticker, Print(ts, yes_cc, hundredths, Side.NO, "ask"))


def run(e, k: int):
    e.source.now = at(k)
    return e.tick()


class Lines:
    """What the journal writes to the operator's log, kept."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def tick(self, line: str) -> None:
        pass

    def decision(self, d, threshold=None) -> None:
        self.lines.append(("DECISION", d.reason))

    def write(self, category: str, text: str) -> None:
        self.lines.append((category, text))


def test_a_post_moves_by_a_cancel_then_a_new_order_at_the_back_of_the_queue(db_path):
    """p_hat 0.60 on bid 0.40 / ask 0.45: posted YES @0.41 (one step over the bid). The same book
    again: nothing is cancelled. Bid 0.42 / ask 0.46: the post price is 0.43 now, so the order is
    asked to cancel (effective 500 ms later) and the market is not decided while it lives. Next
    tick it is done, and bid 0.43 x 20 / ask 0.44 makes the new post 0.43 (0.44 would cross): it
    joins the 20 displayed there, behind them."""
    rows = [
        row(ts=at(0)),
        row(ts=at(1)),
        row(ts=at(2), bid="0.42", ask="0.46"),
        row(ts=at(3), bid="0.43", ask="0.44", depth=20),
        row(ts=at(4), bid="0.43", ask="0.44", depth=20),
    ]
    e = fake_engine(db_path, [FetchBatch(rows=[r]) for r in rows], p={"T": 0.60}, cfg=cfg())
    r1 = run(e, 0)
    (d,) = r1.decisions
    assert (d.accepted, d.reason, d.limit_price, d.best_ask) == (True, "posted gtc, post-only", D("0.4100"), D("0.45"))
    assert run(e, 1).decisions == () and [s for (s,) in q(db_path, "SELECT state FROM order_events")] == [
        "submitted",
        "active",
    ]
    r3 = run(e, 2)
    assert r3.decisions == () and list(e.orders) == ["1"]  # held until it is done
    r4 = run(e, 3)
    assert [n.text() for n in r4.order_notes] == [
        "order 1 YES @0.4100 gtc, post-only: cancelled (re-price: post YES @0.4300 now)"
    ]
    assert [(d.limit_price, d.reason) for d in r4.decisions] == [(D("0.4300"), "posted gtc, post-only")]
    run(e, 4)
    assert e.queue_ahead("2") == 2_000  # the 20 contracts displayed at 0.43 when it became active
    assert q(db_path, "SELECT order_id, ts, state, reason FROM order_events ORDER BY id") == [
        (1, at(0), "submitted", ""),
        (1, at(0) + 500, "active", ""),
        (1, at(2), "cancel_requested", "re-price: post YES @0.4300 now"),
        (1, at(2) + 500, "cancelled", "cancel requested"),
        (2, at(3), "submitted", ""),
        (2, at(3) + 500, "active", ""),
    ]
    assert q(db_path, "SELECT id, limit_cc, tif, post_only, expires_ts, mode FROM orders") == [
        (1, 4100, "gtc", 1, None, "post"),
        (2, 4300, "gtc", 1, None, "post"),
    ]


def test_a_re_price_cancel_effective_after_a_restart_still_says_why(db_path):
    """The re-price of the first test asked at 2 min; the engine restarts before it takes effect:
    the cancelled note still says it was a re-price (the reason is read back from the store)."""
    rows = [row(ts=at(0)), row(ts=at(1)), row(ts=at(2), bid="0.42", ask="0.46"), row(ts=at(3), bid="0.43", ask="0.44")]
    e = fake_engine(db_path, [FetchBatch(rows=[r]) for r in rows[:3]], p={"T": 0.60}, cfg=cfg())
    for k in range(3):
        run(e, k)
    e.store.close()
    e = fake_engine(db_path, [FetchBatch(rows=[rows[3]])], p={"T": 0.60}, cfg=cfg())
    assert [n.text() for n in run(e, 3).order_notes] == [
        "order 1 YES @0.4100 gtc, post-only: cancelled (re-price: post YES @0.4300 now)"
    ]


def test_a_re_priced_post_fills_until_its_cancel_takes_effect_and_not_after(db_path):
    """Cancel asked at 1 min (the book moved), effective 500 ms later: a print at our price at
    +200 ms fills 3 of it (nothing displayed at 0.41 ahead of us: a maker at our price); a print
    through it at +700 ms fills nothing."""
    tape = [sold_yes(at(1) + 200, 4100, 300), sold_yes(at(1) + 700, 4000, 500)]
    moved = row(ts=at(1), bid="0.42", ask="0.46")
    batches = [FetchBatch(rows=[row()]), FetchBatch(rows=[moved]), FetchBatch(rows=[moved], tape=tape)]
    e = fake_engine(db_path, batches, p={"T": 0.60}, cfg=cfg())
    run(e, 0)
    run(e, 1)
    r3 = run(e, 2)
    assert [(f.ts, f.hundredths, f.role, f.trigger, f.price_cc) for f in r3.order_fills] == [
        (at(1) + 200, 300, "maker", "at_price_queue", 4100)
    ]
    assert q(db_path, "SELECT ts, state FROM order_events ORDER BY id")[-2:] == [
        (at(1) + 200, "partially_filled"),
        (at(1) + 500, "cancelled"),
    ]
    assert e.orders == {} and r3.decisions == ()  # (a position now: one per market)


def test_a_gtd_post_expires_at_its_time(db_path):
    """GTD 30 s: a print through it at 20 s fills 2; one at 40 s meets an expired order."""
    tape = [sold_yes(NOW + 20_000, 4000, 200), sold_yes(NOW + 40_000, 4000, 500)]
    batches = [FetchBatch(rows=[row()]), FetchBatch(rows=[row(ts=at(1))], tape=tape)]
    e = fake_engine(db_path, batches, p={"T": 0.60}, cfg=cfg(post_tif="gtd", post_expiry_seconds=30))
    assert run(e, 0).decisions[0].reason == "posted gtd 30 s, post-only"
    r2 = run(e, 1)
    assert [(f.ts, f.hundredths, f.trigger) for f in r2.order_fills] == [(NOW + 20_000, 200, "through")]
    assert [n.text() for n in r2.order_notes] == ["order 1 YES @0.4100 gtd 30 s, post-only: expired"]
    assert q(db_path, "SELECT tif, expires_ts FROM orders") == [("gtd", NOW + 30_000)]
    assert q(db_path, "SELECT ts, state FROM order_events ORDER BY id")[-1] == (NOW + 30_000, "expired")


@pytest.mark.parametrize("post_only", [True, False])
def test_a_post_the_book_crossed_by_its_activation_is_rejected_and_the_log_says_why(db_path, post_only):
    """Posted YES @0.41 at NOW; at NOW + 200 the asks fall to 0.41 x 3 (a NO bid at 0.59), so at
    activation (NOW + 500) the order would cross: post-only, it is rejected with the reason, which
    the operator's log writes; not post-only, it takes the 3 there (a taker) and rests the rest."""
    crossed = book_quote("T", NOW + 200, [(4000, 5000)], [(5900, 300)])
    batches = [FetchBatch(rows=[row()]), FetchBatch(rows=[row(ts=at(1))], tape=[TapeBook(NOW + 200, "T", crossed)])]
    e = fake_engine(db_path, batches, p={"T": 0.60}, cfg=cfg(post_only=post_only))
    log = Lines()
    journal = Journal(log)
    journal.on_report(run(e, 0))
    r2 = run(e, 1)
    journal.on_report(r2)
    if post_only:
        said = "order 1 YES @0.4100 gtc, post-only: rejected (post-only would cross: best ask 0.4100 <= limit 0.4100)"
        assert [n.text() for n in r2.order_notes] == [said] and ("ORDER", said) in log.lines
        assert ("DECISION", "posted gtc, post-only") in log.lines and r2.fills == 0
    else:
        assert [(f.ts, f.hundredths, f.role) for f in r2.order_fills] == [(NOW + 500, 300, "taker")]
        assert e.orders["1"].state.value == "partially_filled" and r2.order_notes == ()


def test_both_takes_where_the_takers_ev_clears_else_posts_and_a_post_gives_way_to_a_take(db_path):
    """A: p_hat 0.60 on ask 0.45 clears as a taker (0.60 - 0.45 - 0.0174): an ioc take. B: p_hat
    0.47 does not (0.47 - 0.45 - 0.0174 = 0.0026 < 0.03), but a maker at 0.41 pays no fee on a
    quadratic series (0.47 - 0.41 = 0.06): a post. When B's belief rises to 0.60 its post is
    cancelled (the strategy would take now) and B is taken once the post is done."""
    rows = lambda k: [row("A", ts=at(k)), row("B", ts=at(k))]  # noqa: E731
    batches = [FetchBatch(rows=rows(k)) for k in range(3)]
    e = fake_engine(db_path, batches, p={"A": 0.60, "B": 0.47}, cfg=cfg(mode="both"))
    r1 = run(e, 0)
    assert [(d.ticker, d.limit_price, d.reason) for d in r1.decisions] == [
        ("A", D("0.45"), "accepted"),
        ("B", D("0.4100"), "posted gtc, post-only"),
    ]
    assert q(db_path, "SELECT ticker, tif, post_only, mode, limit_cc FROM orders ORDER BY id") == [
        ("A", "ioc", 0, "take", 4500),
        ("B", "gtc", 1, "post", 4100),
    ]
    e.estimators[0].p["B"] = D("0.60")
    run(e, 1)
    assert q(db_path, "SELECT reason FROM order_events WHERE state = 'cancel_requested'") == [
        ("re-price: no post wanted now",)
    ]
    r3 = run(e, 2)
    assert [(d.ticker, d.reason) for d in r3.decisions] == [("B", "accepted")]
    assert q(db_path, "SELECT ticker, tif, mode FROM orders WHERE id = 3") == [("B", "ioc", "take")]


def test_a_resting_post_reserves_its_worst_case_in_the_caps(db_path):
    """The daily cap (1.5% of $1,000: $15) has room for one post's worst case ($10), not two: A's
    post, active and resting at the second tick, refuses B on what it reserves."""
    c = cfg().model_copy(update={"limits": RiskLimits(daily_loss_cap_pct=D("1.5"))})
    batches = [FetchBatch(rows=[row("A")]), FetchBatch(rows=[row("A", ts=at(1)), row("B", ts=at(1))])]
    e = fake_engine(db_path, batches, p={"A": 0.60, "B": 0.60}, cfg=c)
    run(e, 0)
    (b,) = run(e, 1).decisions
    assert e.orders["1"].state.value == "active" and e.orders["1"].resting
    assert not b.accepted and "reserved by live orders" in b.reason
    assert b.reason.startswith("worst-case loss would breach the daily loss cap ($0.00 lost + $")


@pytest.mark.parametrize("stop", ["kill", "flatten", "daily", "drawdown"])
def test_the_kill_switch_the_stops_and_a_flatten_cancel_a_resting_post_after_the_cancel_latency(db_path, stop):
    """An active post; the kill switch or a flatten asked at 1 min, or the daily or drawdown stop
    hit at the next tick (2 min): the cancel is asked with its reason and takes effect 500 ms later."""
    batches = [FetchBatch(rows=[row(ts=at(k))]) for k in range(4)]
    e = fake_engine(db_path, batches, p={"T": 0.60}, cfg=cfg())
    run(e, 0)
    run(e, 1)
    assert e.orders["1"].state.value == "active"
    asked, why = at(1), {"kill": "kill switch: test", "flatten": "flatten (test)"}.get(stop)
    if stop == "kill":
        e.kill("test")
    elif stop == "flatten":
        e.flatten("test")
    elif stop == "daily":
        e.store.set_control(Control.DAY_START_EQUITY, 2 * e.equity())  # today's loss: half of it
        asked, why = at(2), "daily stop"
    else:
        e.peak_cc = 2 * e.equity()  # 50% under its peak
        asked, why = at(2), "drawdown stop"
    notes = run(e, 2).order_notes + run(e, 3).order_notes
    assert "1" not in e.orders  # (after a flatten the strategy trades on: a new post)
    assert q(db_path, "SELECT ts, state, reason FROM order_events WHERE order_id = 1 ORDER BY id")[-2:] == [
        (asked, "cancel_requested", why),
        (asked + 500, "cancelled", "cancel requested"),
    ]
    assert [n.text() for n in notes] == [f"order 1 YES @0.4100 gtc, post-only: cancelled ({why})"]


def test_a_simulator_run_in_post_mode_fills_posts_from_prints_and_a_kill_cancels_them(tmp_path, monkeypatch):
    """The done-means run: the simulator (4 markets, 1-minute steps, 3 prints a market a step on
    average), ``mode = "post"``, its series
    charging makers (``quadratic_with_maker_fees``, given to every market row as Kalshi's series
    fee type would be). Posts rest and fill from the takers' prints, each fill a maker's whose fee
    is the maker's share (0.0175 x C x P x (1 - P), rounded up to the centicent per order through
    its accumulator); then the kill switch cancels every live post 500 ms after it is thrown."""
    sim = SimSection(markets=4, step_seconds=60, prints_per_step=3.0)
    kcfg = KakashiConfig(sim=sim, strategy=StrategySection(mode="post"))
    e = make_engine(tmp_path / "k.db", cfg=kcfg)
    made = e.source._market_row
    monkeypatch.setattr(
        e.source, "_market_row", lambda *a, **kw: made(*a, **kw) | {"fee_type": "quadratic_with_maker_fees"}
    )
    for _ in range(20):
        e.tick()
    db = tmp_path / "k.db"
    fills = q(
        db,
        "SELECT f.order_id, f.role, f.trigger, f.contracts_hundredths, f.fee_cc, o.limit_cc, o.mode"
        " FROM fills f JOIN orders o ON o.id = f.order_id",
    )
    assert len(fills) >= 3 and {(r, m) for _o, r, _t, _n, _f, _l, m in fills} == {("maker", "post")}
    triggers = {t for _o, _r, t, *_x in fills}
    assert triggers <= {"through", "at_price_queue", "cross"} and triggers & {"through", "at_price_queue"}  # prints
    by_order: dict[int, list[tuple[int, int, int]]] = {}
    for oid, _r, _t, h, fee, limit, _m in fills:
        by_order.setdefault(oid, []).append((h, fee, limit))
    for got in by_order.values():  # the maker's fee, whole order: ceil(0.0175 x C x P x (1 - P)) in cc
        h, p = sum(x[0] for x in got), got[0][2]
        assert sum(x[1] for x in got) == -(-175 * h * p * (10_000 - p) // 10**10)
    assert sum(x[1] for got in by_order.values() for x in got) > 0
    while not e.orders:
        e.tick()
    live = sorted(e.orders)
    e.kill("test")
    killed = e.source.now_ms()
    e.tick()
    assert e.orders == {}
    ends = q(
        db,
        f"SELECT order_id, ts, state FROM order_events WHERE order_id IN ({','.join(live)})"
        " AND state IN ('cancel_requested', 'cancelled', 'filled') ORDER BY id",
    )
    assert {(o, s) for o, _ts, s in ends} >= {(int(o), "cancel_requested") for o in live}
    assert all(ts == killed + 500 for _o, ts, s in ends if s == "cancelled")


def test_the_markets_table_says_post_where_the_gate_would_let_a_post_rest(db_path):
    """B's belief 0.47 gives no taker an edge on ask 0.45 (0.0026 < 0.03) but a post at 0.41 one
    (0.06): its signal is POST YES in post mode, nothing in take mode; A, with its order, ORDER."""
    from kakashi_tui.trading.view import build_view

    signals = {}
    for mode in ("post", "take"):
        rows = [row("A"), row("B")]
        e = fake_engine(db_path.with_name(f"{mode}.db"), [FetchBatch(rows=rows)], p={"A": 0.60}, cfg=cfg(mode=mode))
        run(e, 0)
        e.set_estimate("B", D("0.47"))
        signals[mode] = {m.ticker: m.signal for m in build_view(e).markets}
        e.store.close()
    assert signals == {"post": {"A": "ORDER", "B": "POST YES"}, "take": {"A": "ORDER", "B": ""}}


def test_a_closed_market_cancels_its_post_at_once(db_path):
    """Posted at NOW (active at NOW + 500); the market is closed at 1 min: the post is cancelled
    then, with no cancel latency (rules.md: a closed or settled market cancels its orders at once)."""
    batches = [FetchBatch(rows=[row()]), FetchBatch(rows=[row(status="closed")])]
    e = fake_engine(db_path, batches, p={"T": 0.60}, cfg=cfg())
    run(e, 0)
    notes = run(e, 1).order_notes
    assert e.orders == {}
    assert [n.text() for n in notes] == ["order 1 YES @0.4100 gtc, post-only: cancelled (market closed)"]
    assert q(db_path, "SELECT ts, state FROM order_events ORDER BY id")[-1] == (at(1), "cancelled")
