"""Property tests: random sequences of snapshots, estimates, settlements and operator actions
through the real engine on a real SQLite file. The guardrails must hold for every one."""

import tempfile
from decimal import Decimal as D
from pathlib import Path

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from kakashi_tui.adapters.source import Estimator, FetchBatch, RawRow, Source
from kakashi_tui.adapters.store.schema import DecisionRow, FillRow, LedgerRow
from kakashi_tui.adapters.store.writer import Store
from kakashi_tui.core.models import Estimate
from kakashi_tui.core.sizing import per_trade_cap_cc
from kakashi_tui.trading.engine import Engine, EngineConfig

T0 = 1_767_571_200_000
TICKERS = [f"M{i}" for i in range(4)]


class Feed(Source):
    name = "prop"

    def __init__(self):
        self.now = T0
        self.batch = FetchBatch()

    def now_ms(self):
        return self.now

    def fetch(self):
        b, self.batch = self.batch, FetchBatch()
        return b

    def close(self):
        pass


class Beliefs(Estimator):
    def __init__(self):
        self.p = {}

    def estimates(self, tickers, now_ms):
        return [Estimate(ticker=t, p_hat=self.p[t], source="prop", ts=now_ms) for t in tickers if t in self.p]


quote = st.builds(
    lambda t, bid, spread, ydepth, ndepth, age, p: (t, bid, min(bid + spread, 99), ydepth, ndepth, age, p),
    st.sampled_from(TICKERS),
    st.one_of(st.sampled_from([20, 35, 50, 65, 80]), st.integers(1, 97)),
    st.one_of(st.sampled_from([1, 2, 3]), st.integers(1, 8)),
    st.lists(st.integers(1, 30_000), min_size=0, max_size=4),
    st.lists(st.integers(1, 30_000), min_size=1, max_size=4),
    st.sampled_from([0, 0, 0, 5_000, 40_000]),
    st.one_of(st.none(), st.sampled_from([2, 10, 50, 90, 98]), st.integers(0, 100)),
)
tick = st.tuples(st.just("tick"), st.lists(quote, min_size=1, max_size=8))
believe = st.tuples(
    st.just("believe"), st.sampled_from(TICKERS), st.one_of(st.sampled_from([2, 10, 50, 90, 98]), st.integers(0, 100))
)
operator = st.one_of(
    st.tuples(st.just("kill")),
    st.tuples(st.just("rearm")),
    st.tuples(st.just("pause")),
    st.tuples(st.just("resume")),
    st.tuples(st.just("flatten")),
    st.tuples(st.just("clock"), st.sampled_from([60_000, 3_600_000, 86_400_000])),
)
settle = st.tuples(
    st.just("settle"),
    st.sampled_from(TICKERS),
    st.sampled_from(["yes", "no"]),
    st.sampled_from(["determined", "amended", "finalized"]),
)
action = st.one_of(tick, tick, tick, believe, settle, operator)


def rows_for(quotes, now):
    """Quotes as a feed sends them, fractional sizes (hundredths) and all; a market that has settled
    may be quoted again (a hostile or confused feed): the engine must never trade it."""
    rows, seen = [], set()
    for t, bid, ask, yd, nd, age, _p in quotes:
        if t in seen:
            continue
        seen.add(t)
        ts = now - age
        yes = [{"price": D(bid - i) / 100, "qty": D(q) / 100} for i, q in enumerate(yd) if bid - i >= 1]
        no = [{"price": D(100 - ask - i) / 100, "qty": D(q) / 100} for i, q in enumerate(nd) if 100 - ask - i >= 1]
        snap = {"ticker": t, "ts": ts, "yes_bid": D(bid) / 100, "yes_ask": D(ask) / 100, "yes_bids": yes, "no_bids": no}
        if yes:
            snap["yes_bid"] = yes[0]["price"]
        if no:
            snap["yes_ask"] = 1 - no[0]["price"]
        rows.append(
            RawRow(market={"ticker": t, "status": "active", "close_ts": now + 7_200_000}, snapshot=snap, payload=t)
        )
    return rows


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    actions=st.lists(action, min_size=5, max_size=50),
    bankroll=st.sampled_from([200_000, 10_000_000, 500_000_000]),
    latency=st.sampled_from([0, 500]),
)
def test_guardrails_hold_for_any_sequence(actions, bankroll, latency):
    """``latency``: the paper orders' insert latency (issue #23): 0 fills at the decision (the
    book decided on); 500 fills a later tick, at activation, on the book in force then."""
    with tempfile.TemporaryDirectory() as d:
        store = Store(Path(d) / "p.db")
        feed, beliefs = Feed(), Beliefs()
        cfg = EngineConfig(bankroll_cc=bankroll, insert_latency_ms=latency)
        engine = Engine(store, feed, [beliefs], cfg)
        settled: set[str] = set()
        try:
            for a in actions:
                kind = a[0]
                if kind == "tick":
                    for q in a[1]:  # a quote may carry a new belief about its market
                        if q[6] is not None:
                            beliefs.p[q[0]] = D(q[6]) / 100
                    feed.batch = FetchBatch(rows=rows_for(a[1], feed.now))
                    killed_before = engine.killed
                    stopped_before = engine.daily_stopped()
                    rep = engine.tick()
                    if killed_before or stopped_before:  # (an order decided before may fill until its cancel)
                        assert not any(dd.accepted for dd in rep.decisions) and (rep.fills == 0 or latency)
                elif kind == "believe":
                    beliefs.p[a[1]] = D(a[2]) / 100
                elif kind == "settle":
                    settled.add(a[1])
                    m = {"ticker": a[1], "status": a[3], "result": a[2]}
                    feed.batch = FetchBatch(rows=[RawRow(market=m, snapshot=None, payload=m)])
                    engine.tick()
                elif kind == "kill":
                    engine.kill("prop")
                elif kind == "rearm":
                    engine.rearm()
                elif kind == "pause":
                    engine.set_paused(True)
                elif kind == "resume":
                    engine.set_paused(False)
                elif kind == "flatten":
                    engine.flatten()
                elif kind == "clock":
                    feed.now += a[1]
                # invariants after every step
                assert len(engine.held_tickers()) <= cfg.limits.max_open_positions  # live orders count
                assert engine.account.cash_cc >= 0
                assert not engine.account.tickers_held() & settled  # no position outlives its settlement
            for dec in DecisionRow.select().where(DecisionRow.accepted == True):  # noqa: E712
                assert dec.worst_case_cc <= per_trade_cap_cc(dec.equity_cc, cfg.limits.max_loss_per_trade_pct)
            for f in FillRow.select().where(FillRow.action == "buy"):
                dec = DecisionRow.get_by_id(f.decision_id)
                assert f.value_cc + f.fee_cc <= dec.worst_case_cc
                # never better than the book: the average paid is at least the best ask seen (at the
                # decision, when it fills then), at most the limit (plus under a centicent of rounding
                # per level taken); nothing fills before its order is active
                assert latency or f.value_cc * 100 >= dec.best_ask_cc * f.contracts_hundredths
                assert f.value_cc * 100 <= dec.limit_price_cc * f.contracts_hundredths + 100 * 4
                assert f.ts >= dec.ts + latency
            event(f"fills: {'some' if FillRow.select().count() else 'none'}")
            keys = [r.key for r in LedgerRow.select()]
            assert len(keys) == len(set(keys))
            fresh = store.account()
            assert fresh.cash_cc == engine.account.cash_cc
            assert fresh.open_positions() == engine.account.open_positions()
        finally:
            store.close()
