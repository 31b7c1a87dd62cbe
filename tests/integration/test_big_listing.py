"""Kalshi at its real size costs what changed (issue #22, item 10): the source hands the engine
only the markets whose row changed, the markets it still follows unchanged by name
(``FetchBatch.same``: the engine decides on the quote it keeps, with its own time), and the
catalog records a quote when it changes plus one ``seen`` row a tick. A quote that stops being
refreshed is refused as stale at the same tick live and in replay (row engine and columnar)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal

from kakashi_tui.adapters.catalog import CatalogWriter, Recorder, read_table
from kakashi_tui.adapters.kalshi.client import KalshiClient, Listing
from kakashi_tui.adapters.kalshi.source import KalshiSource
from kakashi_tui.adapters.source import Estimator
from kakashi_tui.adapters.store.writer import Store
from kakashi_tui.core.models import Estimate
from kakashi_tui.testing.fake_kalshi import FakeKalshi, FakeKalshiServer
from kakashi_tui.trading.config import KakashiConfig, RiskSection
from kakashi_tui.trading.engine import Engine
from tests.integration.test_columnar import cash_of
from tests.integration.test_recorded_parity import replayed
from tests.integration.test_replay import tables

STEP = 20_000  # a tick's clock step: more than the quote-age limit below


class Fixed(Estimator):
    """Beliefs that never change (recorded once by the catalog)."""

    def __init__(self, beliefs: dict[str, str]) -> None:
        self.beliefs = beliefs

    def estimates(self, tickers: list[str], now_ms: int) -> list[Estimate]:
        b = self.beliefs
        return [Estimate(ticker=t, p_hat=Decimal(b[t]), source="test", ts=now_ms) for t in tickers if t in b]


def big_exchange(n: int) -> FakeKalshi:
    """``n`` listed markets whose times stand still (as Kalshi's do: the loopback server's move
    with each request unless told), so a market listed again unchanged is the same."""
    state = FakeKalshi.with_markets(n, page_size=1000)
    fixed = datetime.now(UTC)
    for m in state.markets:
        m.times_from = fixed
    return state


def run(tmp_path, state, beliefs, ticks, faults_at=(), moving=3, at_tick=None):
    """``ticks`` ticks of a recorded loopback Kalshi run on a fake clock (STEP a tick), ``moving``
    markets changing a tick; at the ticks in ``faults_at`` the re-listing and books of the
    followed markets fail (their quotes stop being refreshed). (db, catalog, config, start).
    The clock starts now: the loopback server's markets close hours after its own clock."""
    t0 = int(time.time() * 1000)
    now = [t0]
    cfg = KakashiConfig(risk=RiskSection(max_open_positions=1, max_quote_age_s=15))
    db, root = tmp_path / "live.db", tmp_path / "catalog"
    with FakeKalshiServer(state) as srv:
        c = KalshiClient(base_url=srv.base_url, backoff_base=0.01, timeout=5.0, reads_per_s=10_000, max_retries=0)
        src = KalshiSource(c, clock=lambda: now[0], depth_for=lambda: set(beliefs), page_limit=1000)
        rec = Recorder(CatalogWriter(root))
        source, ests = rec.wrap(src, [Fixed(beliefs)])
        store = Store(db)
        engine = Engine(store, source, ests, cfg.engine_config())
        m = state.markets
        try:
            for i in range(ticks):
                with state.lock:
                    for k in range(moving):
                        mk = m[-1 - (i * moving + k) % (len(m) // 2)]  # (never a believed one)
                        mk.touch(bid=mk.bid + mk.tick if mk.bid + mk.tick < mk.ask else mk.bid - mk.tick)
                if at_tick is not None:
                    at_tick(i)
                if i in faults_at:
                    state.fail_next("ok", "503")  # the changes answer; the re-listing fails (no books then)
                engine.tick()
                now[0] += STEP
        finally:
            rec.close()
            store.close()
            c.close()
    return db, root, cfg, t0


def test_a_quote_that_stops_being_refreshed_is_refused_as_stale_at_the_same_tick_live_and_replayed(tmp_path):
    state = big_exchange(120)
    a, b = state.markets[0].ticker, state.markets[1].ticker
    beliefs = {a: "0.97", b: "0.97"}  # both have an edge: decided every tick
    db, root, cfg, t0 = run(tmp_path, state, beliefs, ticks=8, faults_at=(4,))
    live = tables(db)
    stale = [d for d in live["decisions"] if d[8].startswith("stale quote")]
    assert [d[1] for d in stale] == [5, 5]  # tick 5 (the 5th fetch): the re-listing failed, its quotes 20 s old
    assert len({d[1] for d in live["decisions"]}) == 8  # both decided every tick
    # the catalog: most markets never change; quotes are written when they change, plus one row
    # of the markets followed unchanged at the tick that could not refresh them
    snaps = read_table(root, "snapshots")
    assert snaps.num_rows < 120 + 8 * (3 + 2) + 1  # the first listing, then what moved and the followed ones
    seen = read_table(root, "seen").to_pylist()
    assert [(r["ts"], sorted(r["tickers"])) for r in seen] == [(t0 + 4 * STEP, sorted(beliefs))]
    for columnar in (False, True):
        out = tmp_path / f"replay-{columnar}.db"
        replayed(out, root, cfg, columnar)
        got = tables(out)
        assert got["decisions"] == live["decisions"]  # tick and content, the stale refusal included
        assert got["fills"] == live["fills"]
        assert got["ledger"][1:] == live["ledger"][1:]
        assert cash_of(out) == cash_of(db)


def test_without_the_seen_rows_a_replay_would_not_refuse_the_stale_quote(tmp_path):
    """The ``seen`` row is what the replay decides the stale quote on (a check that the test
    above can fail): dropped from the catalog, the stale refusal is gone from the replay."""
    state = big_exchange(120)
    beliefs = {state.markets[0].ticker: "0.97", state.markets[1].ticker: "0.97"}
    db, root, cfg, _t0 = run(tmp_path, state, beliefs, ticks=6, faults_at=(4,))
    for f in (root / "seen").rglob("*.parquet"):
        f.unlink()
    out = tmp_path / "replay.db"
    replayed(out, root, cfg, True)
    assert [d for d in tables(db)["decisions"] if d[8].startswith("stale")]
    assert not [d for d in tables(out)["decisions"] if d[8].startswith("stale")]


def test_a_steady_tick_at_20000_listed_markets_validates_and_records_what_changed(tmp_path, monkeypatch):
    """At 20,000 listed markets with beliefs on 50 and 50 changing, a steady tick hands the
    engine, validates and records O(changed) rows: counted, not timed. (About 8 s on a loaded
    machine: the first tick ingests and records all 20,000 once.)"""
    import kakashi_tui.adapters.catalog as cat
    import kakashi_tui.trading.engine as eng

    calls = {"n": 0}
    for mod in (cat, eng):
        real = mod.validate_row

        def counted(*a, _real=real, **kw):
            calls["n"] += 1
            return _real(*a, **kw)

        monkeypatch.setattr(mod, "validate_row", counted)
    state = big_exchange(20_000)
    beliefs = {m.ticker: "0.5" for m in state.markets[:50]}
    rows_per_tick, validated = [], []
    real_fetch = KalshiSource.fetch

    def fetch(self):
        b = real_fetch(self)
        rows_per_tick.append(len(b.rows))
        return b

    monkeypatch.setattr(KalshiSource, "fetch", fetch)
    real_tick = Engine.tick

    def tick(self, *a, **kw):
        n, w = calls["n"], self.source.recorder.writer
        before = w.pending_rows + sum(w.rows_written.values())
        out = real_tick(self, *a, **kw)
        validated.append((calls["n"] - n, w.pending_rows + sum(w.rows_written.values()) - before))
        return out

    monkeypatch.setattr(Engine, "tick", tick)
    real_list = KalshiClient.list_markets

    def list_markets(self, params, limit=1000, max_pages=100):
        if params.get("status") != "open":
            return real_list(self, params, limit, max_pages)
        # the first, full listing as the loopback server would answer it, without its 20 pages
        # of HTTP (a test of what a tick costs after it, not of the server)
        now = datetime.now(UTC)
        return Listing(pages=[([mk.to_json(now) for mk in state.markets], self._clock_ms())])

    monkeypatch.setattr(KalshiClient, "list_markets", list_markets)
    run(tmp_path, state, beliefs, ticks=3, moving=50)
    assert rows_per_tick[0] >= 20_000 and validated[0][0] >= 2 * 20_000  # the first listing: everything
    for n_rows, (n_validated, n_recorded) in zip(rows_per_tick[1:], validated[1:], strict=True):
        assert n_rows <= 50 + 50  # what changed, and the believed markets (re-listed for their quotes)
        assert n_validated <= 2 * n_rows  # the recorder's check and the engine's, each row once
        assert n_recorded <= 2 * n_rows  # a quote and a market change a row at most


def test_a_series_fee_that_changes_reaches_the_rows_when_its_cached_fee_is_due(tmp_path):
    """The fees are looked up again when their cache is due (``fee_ttl_s``; 0 here: every fetch),
    and a fee that changed is handed over in every market's row of that series; the markets of a
    fee that did not change are not sent again."""
    state = big_exchange(30)
    with FakeKalshiServer(state) as srv:
        c = KalshiClient(base_url=srv.base_url, backoff_base=0.01, timeout=5.0, reads_per_s=10_000, max_retries=0)
        src = KalshiSource(c, fee_ttl_s=0.0, page_limit=1000)
        with c:
            first = src.fetch()
            assert {r.market["fee_multiplier"] for r in first.rows} == {"1"}
            assert not src.fetch().rows  # nothing changed: nothing sent
            with state.lock:
                state.series["KXFAKE"].fee_multiplier = Decimal("0.5")
            third = src.fetch()
    assert len(third.rows) == 30 and {r.market["fee_multiplier"] for r in third.rows} == {"0.5"}


def test_a_followed_market_that_closed_is_not_decided_on_its_old_quote(tmp_path):
    """A believed market that closed has no quote: when it cannot be listed again it is not
    named as unchanged (the engine would decide on the quote it kept from before it closed)."""
    state = big_exchange(40)
    a, b = state.markets[0], state.markets[1]

    def close_b(i):
        if i == 2:
            with state.lock:
                b.touch(status="closed")
                b.updated_ms -= 600_000  # (out of the changes listing's window: only its re-listing brings it)

    db, _root, _cfg, _t0 = run(tmp_path, state, {a.ticker: "0.97", b.ticker: "0.97"}, 6, (4,), at_tick=close_b)
    decided = tables(db)["decisions"]
    assert [d[1] for d in decided if d[2] == b.ticker] == [1, 2]  # not after it closed (tick 3 on)
    assert [d[8][:11] for d in decided if d[2] == a.ticker][4] == "stale quote"  # (the fault's tick)
